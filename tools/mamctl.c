/*
 * mamctl: inspect and drive mamd over D-Bus.
 *
 * Global options come before or after the command; each command has its own
 * options (`mamctl COMMAND --help`). Output is an aligned table or key/value
 * list for people, or JSON with --json whose keys are the D-Bus dict keys.
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "mamctl.h"

G_DEFINE_QUARK (mamctl-error-quark, mamctl_error)

/* a day: longer than any call should take, and far from overflowing the
 * milliseconds GDBus takes */
#define MAX_TIMEOUT_SEC (24 * 3600)

static gboolean opt_system;
static int opt_timeout = G_MININT; /* G_MININT: not given */
static gboolean opt_session_bus;

static const char *
bus_description (const MamctlContext *ctx)
{
  switch (ctx->bus_kind)
    {
    case MAMCTL_BUS_SESSION:
      return "the session bus";
    case MAMCTL_BUS_ADDRESS:
      return "the bus at the given address";
    case MAMCTL_BUS_SYSTEM:
    default:
      return "the system bus";
    }
}

static GOptionEntry *
global_entries (MamctlContext *ctx)
{
  static GOptionEntry entries[6];
  const GOptionEntry init[] = {
    { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system,
      "Talk to mamd on the system bus (default)", NULL },
    { "session-bus", 0, 0, G_OPTION_ARG_NONE, &opt_session_bus,
      "Talk to mamd on the session bus", NULL },
    { "bus-address", 0, 0, G_OPTION_ARG_STRING, &ctx->bus_address,
      "Talk to mamd on the bus at ADDR (also $MAMD_BUS_ADDRESS)", "ADDR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctx->json,
      "Print JSON instead of tables", NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout,
      "Wait at most SECONDS for mamd's answer (default 25, reload and sync 120)", "SECONDS" },
    G_OPTION_ENTRY_NULL
  };

  memcpy (entries, init, sizeof init);
  return entries;
}

GOptionContext *
mamctl_option_context_new (MamctlContext *ctx, const MamctlCommand *command,
                           const GOptionEntry *entries)
{
  g_autofree char *params = g_strdup_printf ("%s %s", command->name, command->params);
  GOptionContext *context = g_option_context_new (params);

  g_option_context_set_summary (context, command->summary);
  g_option_context_set_help_enabled (context, TRUE);
  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, global_entries (ctx), NULL);
  return context;
}

static gboolean resolve_global_options (MamctlContext *ctx, GError **error);

gboolean
mamctl_parse_command (MamctlContext *ctx, GOptionContext *context, int *argc, char ***argv,
                      guint min_args, guint max_args, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  guint n_args;

  if (!g_option_context_parse (context, argc, argv, &local_error))
    {
      g_set_error_literal (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE, local_error->message);
      return FALSE;
    }
  /* (*argv)[0] is the command name */
  n_args = (guint) *argc - 1;
  if (n_args < min_args)
    {
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE, "%s: missing argument",
                   (*argv)[0]);
      return FALSE;
    }
  if (n_args > max_args)
    {
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE, "%s: unexpected argument '%s'",
                   (*argv)[0], (*argv)[max_args + 1]);
      return FALSE;
    }
  return resolve_global_options (ctx, error);
}

static gboolean
resolve_global_options (MamctlContext *ctx, GError **error)
{
  guint n = (opt_system ? 1 : 0) + (opt_session_bus ? 1 : 0) + (ctx->bus_address ? 1 : 0);

  if (opt_timeout != G_MININT)
    {
      if (opt_timeout < 1 || opt_timeout > MAX_TIMEOUT_SEC)
        {
          g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                       "--timeout expects a number of seconds from 1 to %d", MAX_TIMEOUT_SEC);
          return FALSE;
        }
      ctx->timeout_sec = opt_timeout;
    }
  if (n > 1)
    {
      g_set_error_literal (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                           "use only one of --system, --session-bus and --bus-address");
      return FALSE;
    }
  if (opt_session_bus)
    ctx->bus_kind = MAMCTL_BUS_SESSION;
  else if (ctx->bus_address != NULL)
    ctx->bus_kind = MAMCTL_BUS_ADDRESS;
  else if (!opt_system && g_getenv ("MAMD_BUS_ADDRESS") != NULL
           && *g_getenv ("MAMD_BUS_ADDRESS") != '\0')
    {
      ctx->bus_kind = MAMCTL_BUS_ADDRESS;
      ctx->bus_address = g_strdup (g_getenv ("MAMD_BUS_ADDRESS"));
    }
  else
    ctx->bus_kind = MAMCTL_BUS_SYSTEM;
  return TRUE;
}

GDBusConnection *
mamctl_get_bus (MamctlContext *ctx, GError **error)
{
  g_autoptr(GError) local_error = NULL;

  if (ctx->bus != NULL)
    return ctx->bus;

  if (ctx->bus_kind == MAMCTL_BUS_ADDRESS)
    ctx->bus = g_dbus_connection_new_for_address_sync (
        ctx->bus_address,
        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
        NULL, NULL, &local_error);
  else
    ctx->bus = g_bus_get_sync (ctx->bus_kind == MAMCTL_BUS_SESSION ? G_BUS_TYPE_SESSION
                                                                   : G_BUS_TYPE_SYSTEM,
                               NULL, &local_error);
  if (ctx->bus == NULL)
    {
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_UNREACHABLE,
                   "cannot connect to %s: %s", bus_description (ctx), local_error->message);
      return NULL;
    }
  /* a vanished bus must end mamctl with an error, not kill it */
  g_dbus_connection_set_exit_on_close (ctx->bus, FALSE);
  return ctx->bus;
}

/* Errors that mean mamd is not there (not running, not activatable, no
 * bus) rather than that mamd refused the request. GIO's own errors count
 * only when raised here, not when sent by mamd. */
static gboolean
error_is_unreachable (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_SERVER)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_EXEC_FAILED)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_FAILED)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_CHILD_EXITED)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND)
    || (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED)
        && !g_dbus_error_is_remote_error (error));
}

/* Errors that mean the request went out but no answer came back: our
 * timeout ran out, the bus gave up waiting (NoReply), or mamd left the bus
 * before answering. mamd may well be up, and the request may or may not
 * have taken effect. */
static gboolean
error_is_no_answer (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_TIMEOUT)
    || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_TIMED_OUT)
    || (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
        && !g_dbus_error_is_remote_error (error));
}

GVariant *
mamctl_call (MamctlContext *ctx, const char *object_path, const char *interface,
             const char *method, GVariant *parameters, const GVariantType *reply_type,
             int timeout_msec, GError **error)
{
  GDBusConnection *bus = mamctl_get_bus (ctx, error);
  g_autoptr(GError) local_error = NULL;
  GVariant *reply;

  if (bus == NULL)
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      return NULL;
    }
  if (ctx->timeout_sec > 0)
    timeout_msec = ctx->timeout_sec * 1000;
  reply = g_dbus_connection_call_sync (bus, MAMCTL_BUS_NAME, object_path, interface, method,
                                       parameters, reply_type, G_DBUS_CALL_FLAGS_NONE,
                                       timeout_msec, NULL, &local_error);
  if (reply != NULL)
    return reply;

  if (error_is_unreachable (local_error))
    {
      g_dbus_error_strip_remote_error (local_error);
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_UNREACHABLE,
                   "cannot reach mamd (%s) on %s: %s", MAMCTL_BUS_NAME,
                   bus_description (ctx), local_error->message);
      return NULL;
    }
  if (error_is_no_answer (local_error))
    {
      g_dbus_error_strip_remote_error (local_error);
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_NO_ANSWER,
                   "no answer from mamd to %s (%s): the request may or may not have taken "
                   "effect; 'mamctl status' shows whether mamd is up, and 'mamctl sessions' "
                   "or 'mamctl wipes' whether the change was made; if those get no answer "
                   "either, mamd's log says what it waits for (its state store, say)",
                   method, local_error->message);
      return NULL;
    }
  g_propagate_error (error, g_steal_pointer (&local_error));
  return NULL;
}

static gboolean
is_session_id (const char *text)
{
  gsize i;

  for (i = 0; text[i] != '\0'; i++)
    if (!g_ascii_isxdigit (text[i]))
      return FALSE;
  return i == 32;
}

char *
mamctl_session_path (const char *id_or_path, GError **error)
{
  const char *id = id_or_path;

  if (g_str_has_prefix (id_or_path, MAMCTL_SESSION_PATH_PREFIX))
    id = id_or_path + strlen (MAMCTL_SESSION_PATH_PREFIX);
  if (is_session_id (id))
    {
      g_autofree char *lower = g_ascii_strdown (id, -1);
      return g_strconcat (MAMCTL_SESSION_PATH_PREFIX, lower, NULL);
    }
  g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
               "'%s' is not a session: give its 32-hex id or its object path "
               MAMCTL_SESSION_PATH_PREFIX "<id> (see mamctl sessions)", id_or_path);
  return NULL;
}

gboolean
mamctl_args_are_utf8 (int argc, char **argv, GError **error)
{
  for (int i = 1; i < argc; i++)
    if (!g_utf8_validate (argv[i], -1, NULL))
      {
        g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE, "%s: '%s' is not UTF-8 text",
                     argv[0], argv[i]);
        return FALSE;
      }
  return TRUE;
}

const char *
mamctl_session_id_from_path (const char *path)
{
  const char *slash = strrchr (path, '/');

  return slash != NULL ? slash + 1 : path;
}

static char *
commands_summary (void)
{
  GString *s = g_string_new ("Commands:\n");
  const MamctlCommand *commands;
  guint n, i;

  commands = mamctl_get_commands (&n);
  for (i = 0; i < n; i++)
    {
      g_autofree char *usage = g_strdup_printf ("%s %s", commands[i].name, commands[i].params);
      if (strlen (usage) > 34)
        g_string_append_printf (s, "  %s\n  %-34s %s\n", usage, "", commands[i].summary);
      else
        g_string_append_printf (s, "  %-34s %s\n", usage, commands[i].summary);
    }
  g_string_append (s, "\nRun 'mamctl COMMAND --help' for the options of a command.");
  return g_string_free (s, FALSE);
}

static const char help_description[] =
  "Exit status:\n"
  "  0  success (check-access: the session is allowed)\n"
  "  1  mamd returned an error, printed as 'mamctl: <ErrorName>: <message>'\n"
  "  2  usage error\n"
  "  3  cannot reach mamd (not running, not activatable, or no bus)\n"
  "  4  check-access: the session is not allowed\n"
  "  5  no answer from mamd in time (--timeout), or mamd left the bus before\n"
  "     answering: the request may or may not have taken effect\n"
  "\n"
  "Tables and key/value lists show control characters in mamd's strings as\n"
  "\\n, \\e, \\xNN or \\u{NN}, and a backslash as \\\\ (--json output is plain JSON).\n"
  "\n"
  "Environment:\n"
  "  MAMD_BUS_ADDRESS  bus address to use when no bus option is given\n"
  "\n"
  "Credentials given with --credential are visible to other local users in\n"
  "the process list: use mamctl login for tests and diagnosis only.";

static int
report_error (const GError *error)
{
  g_autofree char *message = mamctl_escape (error->message);
  g_autofree char *name = NULL;
  g_autoptr(GError) copy = NULL;
  const char *short_name;

  if (error->domain == MAMCTL_ERROR && error->code == MAMCTL_ERROR_USAGE)
    {
      g_printerr ("mamctl: %s\nTry 'mamctl --help'.\n", message);
      return MAMCTL_EXIT_USAGE;
    }
  if (error->domain == MAMCTL_ERROR && error->code == MAMCTL_ERROR_UNREACHABLE)
    {
      g_printerr ("mamctl: %s\n", message);
      return MAMCTL_EXIT_UNREACHABLE;
    }
  if (error->domain == MAMCTL_ERROR && error->code == MAMCTL_ERROR_NO_ANSWER)
    {
      g_printerr ("mamctl: %s\n", message);
      return MAMCTL_EXIT_NO_ANSWER;
    }

  name = g_dbus_error_get_remote_error (error);
  copy = g_error_copy (error);
  g_dbus_error_strip_remote_error (copy);
  g_free (message);
  /* mamd's messages may quote what a client sent */
  message = mamctl_escape (copy->message);
  if (name == NULL)
    {
      g_printerr ("mamctl: %s\n", message);
      return MAMCTL_EXIT_ERROR;
    }
  short_name = name;
  if (g_str_has_prefix (name, "org.mamd.Mamd1.Error."))
    short_name = name + strlen ("org.mamd.Mamd1.Error.");
  else if (g_str_has_prefix (name, "org.freedesktop.DBus.Error."))
    short_name = name + strlen ("org.freedesktop.DBus.Error.");
  g_printerr ("mamctl: %s: %s\n", short_name, message);
  return MAMCTL_EXIT_ERROR;
}

static const MamctlCommand *
find_command (const char *name)
{
  const MamctlCommand *commands;
  guint n, i;

  commands = mamctl_get_commands (&n);
  for (i = 0; i < n; i++)
    if (g_strcmp0 (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

int
main (int argc, char **argv)
{
  MamctlContext ctx = { 0 };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *summary = NULL;
  const MamctlCommand *command;
  gboolean version = FALSE;
  const GOptionEntry version_entries[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    G_OPTION_ENTRY_NULL
  };
  int status;

  setlocale (LC_ALL, "");
  /* monitor output must reach pipes line by line, as it happens */
  setvbuf (stdout, NULL, _IOLBF, 0);

  context = g_option_context_new ("COMMAND [ARGUMENTS...]");
  summary = commands_summary ();
  g_option_context_set_summary (context, summary);
  g_option_context_set_description (context, help_description);
  g_option_context_add_main_entries (context, global_entries (&ctx), NULL);
  g_option_context_add_main_entries (context, version_entries, NULL);
  /* stop at the command: its options are parsed by the command */
  g_option_context_set_strict_posix (context, TRUE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_autoptr(GError) usage = g_error_new_literal (MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                                                     error->message);
      return report_error (usage);
    }
  if (version)
    {
      g_print ("mamctl %s\n", MAMD_VERSION);
      return MAMCTL_EXIT_OK;
    }
  if (argc < 2)
    {
      g_printerr ("mamctl: no command given\nTry 'mamctl --help'.\n");
      return MAMCTL_EXIT_USAGE;
    }
  command = find_command (argv[1]);
  if (command == NULL)
    {
      g_printerr ("mamctl: unknown command '%s'\nTry 'mamctl --help'.\n", argv[1]);
      return MAMCTL_EXIT_USAGE;
    }

  status = command->func (&ctx, argc - 1, argv + 1, &error);
  if (error != NULL)
    status = report_error (error);

  g_clear_object (&ctx.bus);
  g_free (ctx.bus_address);
  return status;
}
