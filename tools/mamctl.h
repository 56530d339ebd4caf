/*
 * mamctl: the command-line client of mamd. Shared between the command
 * implementations (mamctl-commands.c, mamctl-monitor.c), the output helpers
 * (mamctl-output.c) and main (mamctl.c).
 */
#pragma once

#include <stdio.h>

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define MAMCTL_BUS_NAME "org.mamd.Mamd1"
#define MAMCTL_OBJECT_PATH "/org/mamd/Mamd1"
#define MAMCTL_SESSION_PATH_PREFIX "/org/mamd/Mamd1/session/"
#define MAMCTL_MANAGER_IFACE "org.mamd.Mamd1.Manager"
#define MAMCTL_SESSION_IFACE "org.mamd.Mamd1.Session"

/* Exit codes, documented in `mamctl --help`. */
enum {
  MAMCTL_EXIT_OK = 0,
  MAMCTL_EXIT_ERROR = 1,       /* mamd returned an error */
  MAMCTL_EXIT_USAGE = 2,
  MAMCTL_EXIT_UNREACHABLE = 3, /* cannot reach mamd */
  MAMCTL_EXIT_NOT_ALLOWED = 4, /* check-access: not allowed */
  MAMCTL_EXIT_NO_ANSWER = 5,   /* mamd did not answer in time: outcome unknown */
};

/* Usage errors (exit code 2), failures to reach mamd (exit code 3) and
 * calls mamd did not answer in time (exit code 5) are told apart from
 * mamd's own errors by this domain. */
#define MAMCTL_ERROR (mamctl_error_quark ())
GQuark mamctl_error_quark (void);
typedef enum {
  MAMCTL_ERROR_USAGE,
  MAMCTL_ERROR_UNREACHABLE,
  MAMCTL_ERROR_NO_ANSWER,
} MamctlError;

typedef enum {
  MAMCTL_BUS_SYSTEM,
  MAMCTL_BUS_SESSION,
  MAMCTL_BUS_ADDRESS,
} MamctlBusKind;

typedef struct {
  MamctlBusKind bus_kind;
  char *bus_address;
  gboolean json;
  int timeout_sec;      /* --timeout; 0: each call's own default */
  GDBusConnection *bus; /* connected on first use */
} MamctlContext;

/* A command: parses its own options and arguments (argv[0] is the command
 * name) and returns an exit code; on failure it sets @error and returns
 * MAMCTL_EXIT_ERROR, and main maps the error to the exit code. */
typedef int (*MamctlCommandFunc) (MamctlContext *ctx, int argc, char **argv, GError **error);

typedef struct {
  const char *name;
  const char *params;  /* parameter string for --help */
  const char *summary;
  MamctlCommandFunc func;
} MamctlCommand;

const MamctlCommand *mamctl_get_commands (guint *n_commands);

/* mamctl.c */
GOptionContext *mamctl_option_context_new (MamctlContext *ctx, const MamctlCommand *command,
                                           const GOptionEntry *entries);
/* Parses a command's options (its own and the global ones) and checks the
 * number of positional arguments; usage errors are MAMCTL_ERROR_USAGE. */
gboolean mamctl_parse_command (MamctlContext *ctx, GOptionContext *context, int *argc,
                               char ***argv, guint min_args, guint max_args, GError **error);
GDBusConnection *mamctl_get_bus (MamctlContext *ctx, GError **error);
GVariant *mamctl_call (MamctlContext *ctx, const char *object_path, const char *interface,
                       const char *method, GVariant *parameters, const GVariantType *reply_type,
                       int timeout_msec, GError **error);
char *mamctl_session_path (const char *id_or_path, GError **error);
/* Arguments 1 to @argc - 1 go to mamd as D-Bus strings, which must be
 * UTF-8: anything else is a usage error (MAMCTL_ERROR_USAGE). */
gboolean mamctl_args_are_utf8 (int argc, char **argv, GError **error);
const char *mamctl_session_id_from_path (const char *path);

/* mamctl-output.c */
typedef struct _MamctlTable MamctlTable;
MamctlTable *mamctl_table_new (const char *const *headers);
void mamctl_table_add_row (MamctlTable *table, const char *const *cells);
void mamctl_table_print (MamctlTable *table, FILE *out);
void mamctl_table_free (MamctlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamctlTable, mamctl_table_free)

char *mamctl_format_value (const char *key, GVariant *value);
char *mamctl_dict_get_string (GVariant *dict, const char *key);
void mamctl_print_dict (GVariant *dict, const char *const *key_order, FILE *out);
void mamctl_print_json_dict (GVariant *dict, FILE *out);
void mamctl_print_json_dict_array (GVariant *dicts, FILE *out);
void mamctl_print_json_node (JsonNode *node, gboolean pretty, FILE *out);
JsonNode *mamctl_dict_to_json (GVariant *dict);
/* Every string from mamd printed for people goes through one of these two:
 * control characters come out as \n, \e, \xNN or \u{NN}, see README.md */
char *mamctl_escape (const char *value);
char *mamctl_logfmt_quote (const char *value);

/* mamctl-monitor.c */
int mamctl_cmd_monitor (MamctlContext *ctx, int argc, char **argv, GError **error);

/* mamctl-commands.c: config-keys needs no bus */
int mamctl_cmd_config_keys (MamctlContext *ctx, int argc, char **argv, GError **error);

G_END_DECLS
