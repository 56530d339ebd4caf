/*
 * mamctl commands other than monitor: one function per command, each
 * parsing its own options, making one D-Bus call and printing the reply.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mamctl.h"
#include "mamd-config.h"
#include "mamd-config-plugins.h"
#include "mamd-plugin.h"

/* Reload re-reads everything and SyncDirectory talks to directories: give
 * them longer than the default 25 s D-Bus timeout. */
#define SLOW_CALL_TIMEOUT_MSEC (120 * 1000)

static GVariant *
manager_call (MamctlContext *ctx, const char *method, GVariant *parameters,
              const char *reply_type, GError **error)
{
  return mamctl_call (ctx, MAMCTL_OBJECT_PATH, MAMCTL_MANAGER_IFACE, method, parameters,
                      reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL, -1, error);
}

/* sessions per ListSessionsPage call */
#define SESSIONS_PAGE 5000

static void
print_list (MamctlContext *ctx, GVariant *dicts, const char *const *headers,
            const char *const *keys)
{
  g_autoptr(MamctlTable) table = NULL;
  GVariantIter iter;
  GVariant *dict;
  guint n = g_strv_length ((char **) keys);

  if (ctx->json)
    {
      mamctl_print_json_dict_array (dicts, stdout);
      return;
    }
  table = mamctl_table_new (headers);
  g_variant_iter_init (&iter, dicts);
  while ((dict = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func (g_free);
      guint i;

      for (i = 0; i < n; i++)
        {
          char *cell = mamctl_dict_get_string (dict, keys[i]);
          /* empty cells would shift the columns for the eye */
          if (*cell == '\0')
            {
              g_free (cell);
              cell = g_strdup ("-");
            }
          g_ptr_array_add (cells, cell);
        }
      g_ptr_array_add (cells, NULL);
      mamctl_table_add_row (table, (const char *const *) cells->pdata);
      g_variant_unref (dict);
    }
  mamctl_table_print (table, stdout);
}

static void
print_dict (MamctlContext *ctx, GVariant *dict, const char *const *key_order)
{
  if (ctx->json)
    mamctl_print_json_dict (dict, stdout);
  else
    mamctl_print_dict (dict, key_order, stdout);
}

static const MamctlCommand *
command_named (const char *name)
{
  const MamctlCommand *commands;
  guint n, i;

  commands = mamctl_get_commands (&n);
  for (i = 0; i < n; i++)
    if (strcmp (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static int
cmd_status (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  const char *const order[] = { "version", "licensed", "license-reason", "licensee", "sku",
                                "license-expires", "servers", "sessions", "pending-wipes",
                                "plugins", "plugins-disabled", "last-seq", NULL };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) status = NULL;

  context = mamctl_option_context_new (ctx, command_named ("status"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 0, error))
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "GetStatus", NULL, "(a{sv})", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  status = g_variant_get_child_value (reply, 0);
  print_dict (ctx, status, order);
  return MAMCTL_EXIT_OK;
}

static int
cmd_servers (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  const char *const headers[] = { "ID", "ENABLE", "AUTH", "GATE", "SESSIONS", "NAME",
                                  "GATE-REASON", NULL };
  const char *const keys[] = { "id", "enable", "auth-service", "gate-open", "sessions", "name",
                               "gate-reason", NULL };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) servers = NULL;
  GVariantIter iter;
  GVariant *server;

  context = mamctl_option_context_new (ctx, command_named ("servers"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 0, error))
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "ListServers", NULL, "(aa{sv})", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  servers = g_variant_get_child_value (reply, 0);
  print_list (ctx, servers, headers, keys);
  if (ctx->json)
    return MAMCTL_EXIT_OK;

  /* plugin diagnostics do not fit a column */
  g_variant_iter_init (&iter, servers);
  while ((server = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autofree const char **findings = NULL;
      g_autofree char *id = NULL;
      const char *raw_id = NULL;
      guint i;

      g_variant_lookup (server, "id", "&s", &raw_id);
      id = mamctl_escape (raw_id != NULL ? raw_id : "?");
      if (g_variant_lookup (server, "findings", "^a&s", &findings))
        for (i = 0; findings[i] != NULL; i++)
          {
            g_autofree char *finding = mamctl_escape (findings[i]);
            g_print ("%s: %s\n", id, finding);
          }
      g_variant_unref (server);
    }
  return MAMCTL_EXIT_OK;
}

/* An empty list for a server id nobody configured is most likely a typo:
 * said so rather than shown as "no sessions". */
static gboolean
server_is_configured (MamctlContext *ctx, const char *server_id, GError **error)
{
  g_autoptr(GVariant) reply = manager_call (ctx, "ListServers", NULL, "(aa{sv})", error);
  g_autoptr(GVariant) servers = NULL;
  g_autofree char *message = NULL;
  GVariantIter iter;
  GVariant *server;

  if (reply == NULL)
    return FALSE;
  servers = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, servers);
  while ((server = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *id = NULL;
      gboolean found = g_variant_lookup (server, "id", "&s", &id) && g_str_equal (id, server_id);

      g_variant_unref (server);
      if (found)
        return TRUE;
    }
  message = g_strdup_printf ("no server '%s' is configured, and no session has that server "
                             "id: see mamctl servers", server_id);
  *error = g_dbus_error_new_for_dbus_error ("org.mamd.Mamd1.Error.NotFound", message);
  return FALSE;
}

/* Every session of @server ("" for all) the caller may see, a page at a
 * time: one reply of them all may be more than a D-Bus message carries. */
static GVariant *
list_sessions (MamctlContext *ctx, const char *server, GError **error)
{
  g_auto(GVariantBuilder) all = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));
  g_autofree char *cursor = g_strdup ("");

  do
    {
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GVariant) page = NULL;
      GVariantIter iter;
      GVariant *session;

      reply = manager_call (ctx, "ListSessionsPage",
                            g_variant_new ("(ssu)", server, cursor, SESSIONS_PAGE), "(aa{sv}s)",
                            error);
      if (reply == NULL)
        return NULL;
      page = g_variant_get_child_value (reply, 0);
      g_variant_iter_init (&iter, page);
      while ((session = g_variant_iter_next_value (&iter)) != NULL)
        {
          g_variant_builder_add_value (&all, session);
          g_variant_unref (session);
        }
      g_free (cursor);
      g_variant_get_child (reply, 1, "s", &cursor);
    }
  while (cursor[0] != '\0');
  return g_variant_ref_sink (g_variant_builder_end (&all));
}

static int
cmd_sessions (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  const char *const headers[] = { "ID", "SERVER", "STATE", "METHOD", "USER", "DEVICE",
                                  "PLATFORM", "OBJECT-ID", "REASON", NULL };
  const char *const keys[] = { "id", "server", "state", "method", "user-name", "device-id",
                               "platform", "object-id", "reason", NULL };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) sessions = NULL;

  context = mamctl_option_context_new (ctx, command_named ("sessions"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 1, error)
      || !mamctl_args_are_utf8 (argc, argv, error))
    return MAMCTL_EXIT_USAGE;
  sessions = list_sessions (ctx, argc > 1 ? argv[1] : "", error);
  if (sessions == NULL)
    return MAMCTL_EXIT_ERROR;
  if (argc > 1 && g_variant_n_children (sessions) == 0 && !server_is_configured (ctx, argv[1], error))
    return MAMCTL_EXIT_ERROR;
  print_list (ctx, sessions, headers, keys);
  return MAMCTL_EXIT_OK;
}

static int
cmd_session (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  const char *const order[] = { "Id", "Server", "State", "Reason", "MamRequired", "AuthMethod",
                                "ObjectId", "TenantId", "UserName", "DeviceId", "Platform",
                                "Created", "Updated", "Seq", NULL };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autofree char *path = NULL;

  context = mamctl_option_context_new (ctx, command_named ("session"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 1, 1, error))
    return MAMCTL_EXIT_USAGE;
  path = mamctl_session_path (argv[1], error);
  if (path == NULL)
    return MAMCTL_EXIT_USAGE;
  reply = mamctl_call (ctx, path, "org.freedesktop.DBus.Properties", "GetAll",
                       g_variant_new ("(s)", MAMCTL_SESSION_IFACE), G_VARIANT_TYPE ("(a{sv})"),
                       -1, error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  props = g_variant_get_child_value (reply, 0);
  print_dict (ctx, props, order);
  return MAMCTL_EXIT_OK;
}

static int
cmd_plugins (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  const char *const headers[] = { "METHOD", "ENABLED", "VERSION", "CAPABILITIES", "MODULE",
                                  "DESCRIPTION", "DISABLED-REASON", NULL };
  const char *const keys[] = { "method", "enabled", "version", "capabilities", "module",
                               "description", "disabled-reason", NULL };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) plugins = NULL;

  context = mamctl_option_context_new (ctx, command_named ("plugins"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 0, error))
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "ListPlugins", NULL, "(aa{sv})", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  plugins = g_variant_get_child_value (reply, 0);
  print_list (ctx, plugins, headers, keys);
  return MAMCTL_EXIT_OK;
}

static int
cmd_wipes (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  const char *const headers[] = { "ID", "SERVER", "DEVICE", "OBJECT-ID", "SESSION", "CREATED",
                                  "EXPIRES", "REASON", NULL };
  const char *const keys[] = { "id", "server", "device-id", "object-id", "session", "created",
                               "expires", "reason", NULL };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) wipes = NULL;

  context = mamctl_option_context_new (ctx, command_named ("wipes"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 0, error))
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "ListWipes", NULL, "(aa{sv})", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  wipes = g_variant_get_child_value (reply, 0);
  print_list (ctx, wipes, headers, keys);
  return MAMCTL_EXIT_OK;
}

/* For commands whose reply carries nothing but success. */
static void
print_done (MamctlContext *ctx, const char *message)
{
  if (ctx->json)
    {
      g_print ("{}\n");
      return;
    }
  g_print ("%s\n", message);
}

static int
cmd_reload (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;

  context = mamctl_option_context_new (ctx, command_named ("reload"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 0, error))
    return MAMCTL_EXIT_USAGE;
  reply = mamctl_call (ctx, MAMCTL_OBJECT_PATH, MAMCTL_MANAGER_IFACE, "Reload", NULL,
                       G_VARIANT_TYPE_UNIT, SLOW_CALL_TIMEOUT_MSEC, error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  print_done (ctx, "configuration and licence reloaded");
  return MAMCTL_EXIT_OK;
}

static int
cmd_sync (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;

  context = mamctl_option_context_new (ctx, command_named ("sync"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 1, error)
      || !mamctl_args_are_utf8 (argc, argv, error))
    return MAMCTL_EXIT_USAGE;
  reply = mamctl_call (ctx, MAMCTL_OBJECT_PATH, MAMCTL_MANAGER_IFACE, "SyncDirectory",
                       g_variant_new ("(s)", argc > 1 ? argv[1] : ""), G_VARIANT_TYPE_UNIT,
                       SLOW_CALL_TIMEOUT_MSEC, error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  print_done (ctx, "directory sync done");
  return MAMCTL_EXIT_OK;
}

static gboolean
parse_uint (const char *text, guint64 max, guint64 *out)
{
  char *end = NULL;
  guint64 value;

  if (!g_ascii_isdigit (*text))
    return FALSE;
  errno = 0;
  value = g_ascii_strtoull (text, &end, 10);
  if (errno != 0 || *end != '\0' || value > max)
    return FALSE;
  *out = value;
  return TRUE;
}

/* KEY=VALUE (string), KEY:s=VALUE, KEY:u=NUMBER (uint32) */
static gboolean
add_credential (GVariantBuilder *builder, GHashTable *seen, const char *spec, GError **error)
{
  const char *eq = strchr (spec, '=');
  g_autofree char *key = NULL;
  const char *type = "s";
  const char *value;
  char *colon;

  /* the value may be a secret: not quoted */
  if (!g_utf8_validate (spec, -1, NULL))
    {
      g_set_error_literal (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                           "--credential must be UTF-8 text");
      return FALSE;
    }
  if (eq == NULL || eq == spec)
    {
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                   "--credential expects KEY=VALUE or KEY:u=NUMBER");
      return FALSE;
    }
  key = g_strndup (spec, eq - spec);
  value = eq + 1;
  colon = strchr (key, ':');
  if (colon != NULL)
    {
      *colon = '\0';
      type = colon + 1;
    }
  if (*key == '\0' || (strcmp (type, "s") != 0 && strcmp (type, "u") != 0))
    {
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                   "--credential %s: expected KEY=VALUE or KEY:u=NUMBER", key);
      return FALSE;
    }
  if (!g_hash_table_add (seen, g_strdup (key)))
    {
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                   "--credential %s given twice", key);
      return FALSE;
    }
  if (strcmp (type, "u") == 0)
    {
      guint64 number;
      if (!parse_uint (value, G_MAXUINT32, &number))
        {
          g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                       "--credential %s: '%s' is not an unsigned 32-bit number", key, value);
          return FALSE;
        }
      g_variant_builder_add (builder, "{sv}", key, g_variant_new_uint32 ((guint32) number));
    }
  else
    g_variant_builder_add (builder, "{sv}", key, g_variant_new_string (value));
  return TRUE;
}

static void
print_session_result (MamctlContext *ctx, const char *path, GVariant *result)
{
  const char *const order[] = { "id", "object-path", "state", "mam-required", "reason",
                                "object-id", "tenant-id", "user-name", "decision-id", "seq",
                                NULL };
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (result);
  g_autoptr(GVariant) merged = NULL;

  /* the session's id and path join the result dict under the names
   * ListSessions uses for them */
  g_variant_dict_insert (&dict, "id", "s", mamctl_session_id_from_path (path));
  g_variant_dict_insert (&dict, "object-path", "o", path);
  merged = g_variant_ref_sink (g_variant_dict_end (&dict));
  print_dict (ctx, merged, order);
}

static int
cmd_login (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autofree char *platform = NULL;
  g_autofree char *device_id = NULL;
  g_auto(GStrv) credentials = NULL;
  const GOptionEntry entries[] = {
    /* FILENAME: the bytes as given, not converted from the locale's
     * charset (ASCII in the C locale refused every other character) */
    { "platform", 0, 0, G_OPTION_ARG_FILENAME, &platform, "Device platform (ios, android)", "P" },
    { "device-id", 0, 0, G_OPTION_ARG_FILENAME, &device_id, "Device id", "D" },
    { "credential", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &credentials,
      "Credential entry for the plugin (repeatable); KEY:u=NUMBER for a uint32",
      "KEY=VALUE" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GVariantBuilder) credential = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto(GVariantBuilder) device = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) result = NULL;
  const char *path = NULL;
  guint i;

  context = mamctl_option_context_new (ctx, command_named ("login"), entries);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 2, 2, error)
      || !mamctl_args_are_utf8 (argc, argv, error))
    return MAMCTL_EXIT_USAGE;
  if (platform == NULL || device_id == NULL)
    {
      g_set_error_literal (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                           "login needs --platform and --device-id");
      return MAMCTL_EXIT_USAGE;
    }
  if (!g_utf8_validate (platform, -1, NULL) || !g_utf8_validate (device_id, -1, NULL))
    {
      g_set_error_literal (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                           "login: --platform and --device-id must be UTF-8 text");
      return MAMCTL_EXIT_USAGE;
    }
  for (i = 0; credentials != NULL && credentials[i] != NULL; i++)
    if (!add_credential (&credential, seen, credentials[i], error))
      return MAMCTL_EXIT_USAGE;
  g_variant_builder_add (&device, "{sv}", "platform", g_variant_new_string (platform));
  g_variant_builder_add (&device, "{sv}", "device-id", g_variant_new_string (device_id));

  reply = manager_call (ctx, "SignIn",
                        g_variant_new ("(ss@a{sv}@a{sv})", argv[1], argv[2],
                                       g_variant_builder_end (&credential),
                                       g_variant_builder_end (&device)),
                        "(oa{sv})", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  g_variant_get (reply, "(&o@a{sv})", &path, &result);
  print_session_result (ctx, path, result);
  return MAMCTL_EXIT_OK;
}

static int
cmd_report_enrollment (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  const char *const outcomes[] = { "success", "declined", "failed", "", NULL };
  gint status_code = -1;
  const GOptionEntry entries[] = {
    { "status-code", 0, 0, G_OPTION_ARG_INT, &status_code,
      "Intune App SDK status code (e.g. 100, 219, 201); -1 when unknown", "N" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *path = NULL;

  context = mamctl_option_context_new (ctx, command_named ("report-enrollment"), entries);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 2, 2, error))
    return MAMCTL_EXIT_USAGE;
  path = mamctl_session_path (argv[1], error);
  if (path == NULL)
    return MAMCTL_EXIT_USAGE;
  if (!g_strv_contains (outcomes, argv[2]))
    {
      g_set_error (error, MAMCTL_ERROR, MAMCTL_ERROR_USAGE,
                   "outcome '%s': expected success, declined, failed or \"\" (derived from "
                   "--status-code)", argv[2]);
      return MAMCTL_EXIT_USAGE;
    }
  reply = manager_call (ctx, "ReportEnrollment",
                        g_variant_new ("(osi)", path, argv[2], status_code), "(a{sv})", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  result = g_variant_get_child_value (reply, 0);
  print_session_result (ctx, path, result);
  return MAMCTL_EXIT_OK;
}

static int
cmd_check_access (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) result = NULL;
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);
  const char *const order[] = { "allowed", "state", "reason", NULL };
  g_autofree char *path = NULL;
  gboolean allowed;
  const char *state, *reason;

  context = mamctl_option_context_new (ctx, command_named ("check-access"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 1, 1, error))
    return MAMCTL_EXIT_USAGE;
  path = mamctl_session_path (argv[1], error);
  if (path == NULL)
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "CheckAccess", g_variant_new ("(o)", path), "(bss)", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  g_variant_get (reply, "(b&s&s)", &allowed, &state, &reason);
  g_variant_dict_insert (&dict, "allowed", "b", allowed);
  g_variant_dict_insert (&dict, "state", "s", state);
  g_variant_dict_insert (&dict, "reason", "s", reason);
  result = g_variant_ref_sink (g_variant_dict_end (&dict));
  print_dict (ctx, result, order);
  return allowed ? MAMCTL_EXIT_OK : MAMCTL_EXIT_NOT_ALLOWED;
}

static void
print_seq (MamctlContext *ctx, GVariant *reply)
{
  guint64 seq;

  g_variant_get (reply, "(t)", &seq);
  if (ctx->json)
    g_print ("{\n  \"seq\" : %" G_GUINT64_FORMAT "\n}\n", seq);
  else
    g_print ("seq: %" G_GUINT64_FORMAT "\n", seq);
}

static int
cmd_sign_out (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = NULL;

  context = mamctl_option_context_new (ctx, command_named ("sign-out"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 1, 1, error))
    return MAMCTL_EXIT_USAGE;
  path = mamctl_session_path (argv[1], error);
  if (path == NULL)
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "SignOut", g_variant_new ("(o)", path), "(t)", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  if (!ctx->json)
    g_print ("signed out %s\n", mamctl_session_id_from_path (path));
  print_seq (ctx, reply);
  return MAMCTL_EXIT_OK;
}

static int
cmd_re_add (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;

  context = mamctl_option_context_new (ctx, command_named ("re-add"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 2, 2, error)
      || !mamctl_args_are_utf8 (argc, argv, error))
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "ReAddServer", g_variant_new ("(ss)", argv[1], argv[2]), "(t)",
                        error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  print_seq (ctx, reply);
  return MAMCTL_EXIT_OK;
}

static int
cmd_ack_wipe (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GVariant) reply = NULL;

  context = mamctl_option_context_new (ctx, command_named ("ack-wipe"), NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 1, 1, error)
      || !mamctl_args_are_utf8 (argc, argv, error))
    return MAMCTL_EXIT_USAGE;
  reply = manager_call (ctx, "AcknowledgeWipe", g_variant_new ("(s)", argv[1]), "(t)", error);
  if (reply == NULL)
    return MAMCTL_EXIT_ERROR;
  print_seq (ctx, reply);
  return MAMCTL_EXIT_OK;
}

int
mamctl_cmd_config_keys (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  gboolean markdown = FALSE;
  const GOptionEntry entries[] = {
    { "markdown", 0, 0, G_OPTION_ARG_NONE, &markdown, "Print a Markdown table (for README.md)",
      NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  const MamdConfigKey *keys;
  guint n_keys = 0, i;

  context = mamctl_option_context_new (ctx, command_named ("config-keys"), entries);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 0, error))
    return MAMCTL_EXIT_USAGE;
  keys = mamd_config_get_keys (&n_keys);

  if (ctx->json)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autoptr(JsonNode) node = NULL;

      json_builder_begin_array (builder);
      for (i = 0; i < n_keys; i++)
        {
          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "file");
          json_builder_add_string_value (builder, keys[i].file);
          json_builder_set_member_name (builder, "group");
          json_builder_add_string_value (builder, keys[i].group);
          json_builder_set_member_name (builder, "key");
          json_builder_add_string_value (builder, keys[i].key);
          json_builder_set_member_name (builder, "type");
          json_builder_add_string_value (builder, keys[i].type);
          json_builder_set_member_name (builder, "default");
          json_builder_add_string_value (builder, keys[i].default_value);
          json_builder_set_member_name (builder, "description");
          json_builder_add_string_value (builder, keys[i].description);
          json_builder_end_object (builder);
        }
      json_builder_end_array (builder);
      node = json_builder_get_root (builder);
      mamctl_print_json_node (node, TRUE, stdout);
      return MAMCTL_EXIT_OK;
    }

  if (markdown)
    {
      g_print ("| File | Group | Key | Type | Default | Description |\n");
      g_print ("|------|-------|-----|------|---------|-------------|\n");
      for (i = 0; i < n_keys; i++)
        {
          gboolean has_default = keys[i].default_value != NULL && *keys[i].default_value != '\0';
          g_autofree char *def = has_default ? g_strdup_printf ("`%s`", keys[i].default_value)
                                             : g_strdup ("-");
          g_auto(GStrv) parts = g_strsplit (keys[i].description, "|", -1);
          g_autofree char *description = g_strjoinv ("\\|", parts);

          /* backticks keep "<id>" from being read as HTML */
          g_print ("| `%s` | [%s] | `%s` | %s | %s | %s |\n", keys[i].file, keys[i].group,
                   keys[i].key, keys[i].type, def, description);
        }
      return MAMCTL_EXIT_OK;
    }

  {
    const char *const headers[] = { "FILE", "GROUP", "KEY", "TYPE", "DEFAULT", "DESCRIPTION",
                                    NULL };
    g_autoptr(MamctlTable) table = mamctl_table_new (headers);

    for (i = 0; i < n_keys; i++)
      {
        g_autofree char *group = g_strdup_printf ("[%s]", keys[i].group);
        const char *const row[] = {
          keys[i].file, group, keys[i].key, keys[i].type,
          keys[i].default_value != NULL && *keys[i].default_value != '\0'
            ? keys[i].default_value : "-",
          keys[i].description, NULL
        };
        mamctl_table_add_row (table, row);
      }
    mamctl_table_print (table, stdout);
  }
  return MAMCTL_EXIT_OK;
}

/* What the plugins and the loader log while mamctl check loads them: the
 * lines mamd would log at start, shown as the check's warnings. */
typedef struct {
  GPtrArray *warnings;
  GLogFunc old_handler;
  gpointer old_data;
} CheckLog;

static void
check_log_handler (const char *domain, GLogLevelFlags level, const char *message,
                   gpointer user_data)
{
  CheckLog *log = user_data;

  if ((level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE)) != 0)
    g_ptr_array_add (log->warnings, g_strdup (message));
  else
    log->old_handler (domain, level, message, log->old_data);
}

/* Loads the plugins of @plugin_dir and checks every server's plugin groups
 * with them, the way mamd does at start and reload. A plugin directory mamd
 * could not read, a plugin group mamd would refuse, and a group or
 * AuthService whose plugin did not load (the server cannot use it) are
 * problems; a plugin that failed to load but that no server uses is only
 * a warning. */
static void
check_plugins (const MamdConfig *config, const char *plugin_dir, GPtrArray *problems,
               GPtrArray *warnings)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(GPtrArray) unusable = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  CheckLog log = { warnings, NULL, NULL };

  log.old_handler = g_log_set_default_handler (check_log_handler, &log);
  if (!mamd_plugin_loader_load_dir (loader, plugin_dir, &error))
    g_ptr_array_add (problems, g_strdup_printf ("%s: %s", plugin_dir, error->message));
  else if (config != NULL)
    mamd_config_plugins_check (config, loader, problems, unusable);
  g_log_set_default_handler (log.old_handler, log.old_data);
  g_ptr_array_extend_and_steal (problems, g_steal_pointer (&unusable));
}

/* JSON strings are UTF-8; paths from the command line, and the problems
 * and warnings that quote them, need not be */
static void
add_text (JsonBuilder *builder, const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);

  json_builder_add_string_value (builder, valid);
}

static void
print_check_json (const char *dir, const char *plugin_dir, const MamdConfig *config,
                  gboolean valid, GPtrArray *problems, GPtrArray *warnings)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;
  guint i;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "config-dir");
  add_text (builder, dir);
  json_builder_set_member_name (builder, "plugin-dir");
  add_text (builder, plugin_dir);
  json_builder_set_member_name (builder, "valid");
  json_builder_add_boolean_value (builder, valid);
  json_builder_set_member_name (builder, "servers");
  json_builder_begin_array (builder);
  for (i = 0; config != NULL && i < config->servers->len; i++)
    json_builder_add_string_value (
        builder, ((MamdServerConfig *) g_ptr_array_index (config->servers, i))->id);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "problems");
  json_builder_begin_array (builder);
  for (i = 0; i < problems->len; i++)
    add_text (builder, g_ptr_array_index (problems, i));
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "warnings");
  json_builder_begin_array (builder);
  for (i = 0; i < warnings->len; i++)
    add_text (builder, g_ptr_array_index (warnings, i));
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  mamctl_print_json_node (node, TRUE, stdout);
}

static int
cmd_check (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autofree char *plugin_dir = NULL;
  const GOptionEntry entries[] = {
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &plugin_dir,
      "Check plugin groups with the plugins in DIR (default " MAMD_PLUGINDIR ")", "DIR" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(MamdConfig) config = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *dir;
  gboolean valid;
  guint i;

  context = mamctl_option_context_new (ctx, command_named ("check"), entries);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 1, error))
    return MAMCTL_EXIT_USAGE;
  dir = argc > 1 ? argv[1] : MAMD_CONFDIR;
  if (plugin_dir == NULL)
    plugin_dir = g_strdup (MAMD_PLUGINDIR);
  config = mamd_config_load (dir, problems, &local_error);
  if (config == NULL && problems->len == 0)
    g_ptr_array_add (problems, g_strdup (local_error->message));
  /* as mamd: plugin groups are checked only once the rest is valid */
  check_plugins (problems->len == 0 ? config : NULL, plugin_dir, problems, warnings);
  valid = config != NULL && problems->len == 0;

  if (ctx->json)
    print_check_json (dir, plugin_dir, config, valid, problems, warnings);
  else
    {
      /* the problems may quote the files' text, which need not be clean */
      for (i = 0; i < warnings->len; i++)
        {
          g_autofree char *warning = mamctl_escape (g_ptr_array_index (warnings, i));
          g_print ("warning: %s\n", warning);
        }
      for (i = 0; i < problems->len; i++)
        {
          g_autofree char *problem = mamctl_escape (g_ptr_array_index (problems, i));
          g_print ("%s\n", problem);
        }
      if (valid)
        g_print ("%s: valid, %u server(s); plugin groups checked with the plugins in %s\n", dir,
                 config->servers->len, plugin_dir);
    }
  if (!valid)
    {
      g_autofree char *shown = mamctl_escape (dir);

      /* the problems are the output; the exit status says "invalid" */
      g_printerr ("mamctl: InvalidConfig: %s: fix the problems above and check again\n",
                  shown);
      return MAMCTL_EXIT_ERROR;
    }
  return MAMCTL_EXIT_OK;
}

static const MamctlCommand commands[] = {
  { "status", "", "Show the daemon, licence and counters", cmd_status },
  { "servers", "", "List configured chat servers and their MAM gate", cmd_servers },
  { "sessions", "[SERVER]", "List sessions (of one server)", cmd_sessions },
  { "session", "ID|PATH", "Show one session", cmd_session },
  { "plugins", "", "List identity plugins", cmd_plugins },
  { "wipes", "", "List pending wipes", cmd_wipes },
  { "reload", "", "Re-read configuration and licence", cmd_reload },
  { "monitor", "", "Print every mamd signal as it happens", mamctl_cmd_monitor },
  { "login", "SERVER METHOD --platform P --device-id D [--credential KEY=VALUE...]",
    "Sign in (SignIn)", cmd_login },
  { "report-enrollment", "SESSION OUTCOME [--status-code N]",
    "Report an enrollment outcome: success, declined, failed", cmd_report_enrollment },
  { "check-access", "SESSION", "May the session see sensitive content? (exit 4: no)",
    cmd_check_access },
  { "sign-out", "SESSION", "End a session", cmd_sign_out },
  { "re-add", "SERVER DEVICE", "Allow a device back on a server after a failure (once its wipe is acknowledged)", cmd_re_add },
  { "ack-wipe", "WIPE", "Acknowledge a wipe", cmd_ack_wipe },
  { "sync", "[SERVER]", "Run directory sync now", cmd_sync },
  { "check", "[--plugin-dir DIR] [CONFIG_DIR]",
    "Validate a configuration directory and its plugin groups offline (no daemon needed)",
    cmd_check },
  { "config-keys", "[--markdown]", "Print every configuration key (no daemon needed)",
    mamctl_cmd_config_keys },
};

const MamctlCommand *
mamctl_get_commands (guint *n_commands)
{
  if (n_commands != NULL)
    *n_commands = G_N_ELEMENTS (commands);
  return commands;
}
