/*
 * The method handlers and the one dispatch table. Handlers run only after
 * the gate in mamd-dbus-adaptor.c established the caller's uid and role;
 * they check arguments before the engine sees them and leave ownership
 * rules (a session belongs to the uid that signed it in) to the engine.
 */
#include "config.h"

#include "mamd-dbus-private.h"

/* ---- argument helpers ---- */

static gboolean
call_session_id (MamdDbusCall *call, const char *path, char **out_id)
{
  g_autoptr(GError) error = NULL;

  *out_id = mamd_dbus_session_id_from_path (path, &error);
  if (*out_id == NULL) {
    mamd_dbus_call_return_error (call, error);
    return FALSE;
  }
  return TRUE;
}

static char *
device_string (GVariant *device, const char *key, GError **error)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (device, key, NULL);

  if (value == NULL || !g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                 "the device dict needs \"%s\" as a string (%s): pass {\"platform\": "
                 "<\"ios\">, \"device-id\": <\"...\">}",
                 key, value == NULL ? "it is missing" : "it has another type");
    return NULL;
  }
  return g_variant_dup_string (value, NULL);
}

static const char *
nonnull (const char *text)
{
  return text != NULL ? text : "";
}

/* a{sv} entries; NULL strings become "" (the API has no optional keys) */
static void
add_string (GVariantBuilder *builder, const char *key, const char *value)
{
  g_variant_builder_add (builder, "{sv}", key, g_variant_new_string (nonnull (value)));
}

/* the same for the hot path's entry arrays */
static GVariant *
string_entry (const char *key, const char *value)
{
  return mamd_vardict_entry (key, g_variant_new_string (nonnull (value)));
}

static GVariant *
result_dict (const MamdEngineResult *result)
{
  const MamdSessionRecord *rec = result->session;
  const MamdSessionRecord none = { 0 };
  GVariant *entries[8];
  gsize n = 0;

  if (rec == NULL)
    rec = &none;
  entries[n++] = string_entry ("state", rec != &none ? mamd_session_state_to_string (rec->state)
                                                     : NULL);
  entries[n++] = mamd_vardict_entry ("mam-required",
                                     g_variant_new_boolean (result->mam_required));
  entries[n++] = string_entry ("object-id", rec->object_id);
  entries[n++] = string_entry ("tenant-id", rec->tenant_id);
  entries[n++] = string_entry ("user-name", rec->user_name);
  entries[n++] = string_entry ("reason", rec->reason);
  entries[n++] = string_entry ("decision-id", result->decision_id);
  entries[n++] = mamd_vardict_entry ("seq", g_variant_new_uint64 (result->seq));
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), entries, n);
}

/* ---- state-changing methods ---- */

static void
on_sign_in (GObject *source, GAsyncResult *res, gpointer user_data)
{
  MamdDbusCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autofree char *path = NULL;

  result = mamd_engine_sign_in_finish (MAMD_ENGINE (source), res, &error);
  if (result == NULL) {
    mamd_dbus_call_return_error (call, error);
    return;
  }
  if (result->session == NULL) {
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_FAILED,
                                         "sign-in created no session (engine bug)");
    return;
  }
  path = mamd_dbus_session_path (result->session->id);
  mamd_dbus_call_return_value (call, g_variant_new ("(o@a{sv})", path, result_dict (result)));
}

static void
handle_sign_in (MamdDbusCall *call, GVariant *parameters)
{
  const char *server, *method;
  g_autofree char *platform = NULL;
  g_autofree char *device_id = NULL;
  g_autoptr(GVariant) credential = NULL;
  g_autoptr(GVariant) device = NULL;
  g_autoptr(GError) error = NULL;

  g_variant_get (parameters, "(&s&s@a{sv}@a{sv})", &server, &method, &credential, &device);
  platform = device_string (device, "platform", &error);
  if (platform == NULL) {
    mamd_dbus_call_return_error (call, error);
    return;
  }
  device_id = device_string (device, "device-id", &error);
  if (device_id == NULL) {
    mamd_dbus_call_return_error (call, error);
    return;
  }
  mamd_engine_sign_in_async (call->engine, &call->caller, server, method, credential, platform,
                             device_id, call->cancellable, on_sign_in, call);
}

static void
on_report_enrollment (GObject *source, GAsyncResult *res, gpointer user_data)
{
  MamdDbusCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = NULL;

  result = mamd_engine_report_enrollment_finish (MAMD_ENGINE (source), res, &error);
  if (result == NULL) {
    mamd_dbus_call_return_error (call, error);
    return;
  }
  mamd_dbus_call_return_value (call, g_variant_new ("(@a{sv})", result_dict (result)));
}

static void
handle_report_enrollment (MamdDbusCall *call, GVariant *parameters)
{
  const char *path, *outcome_text;
  gint32 status_code;
  g_autofree char *session_id = NULL;
  MamdEnrollmentOutcome outcome;

  g_variant_get (parameters, "(&o&si)", &path, &outcome_text, &status_code);
  if (!call_session_id (call, path, &session_id))
    return;
  if (outcome_text[0] == '\0') {
    if (!mamd_enrollment_status_code_outcome (status_code, &outcome)) {
      g_autofree char *message = NULL;

      message = g_strdup_printf ("outcome is empty and status code %d is not a known Intune "
                                 "App SDK code: pass \"success\", \"declined\" or \"failed\"",
                                 status_code);
      mamd_dbus_call_return_error_literal (call, MAMD_ERROR_INVALID_ARGS, message);
      return;
    }
  } else if (!mamd_enrollment_outcome_from_string (outcome_text, &outcome)) {
    g_autofree char *message = NULL;

    message = g_strdup_printf ("unknown outcome '%s': pass \"success\", \"declined\", "
                               "\"failed\", or \"\" with an Intune App SDK status code",
                               outcome_text);
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_INVALID_ARGS, message);
    return;
  }
  mamd_engine_report_enrollment_async (call->engine, &call->caller, session_id, outcome,
                                       status_code, call->cancellable, on_report_enrollment,
                                       call);
}

static void
handle_check_access (MamdDbusCall *call, GVariant *parameters)
{
  const char *path;
  g_autofree char *session_id = NULL;
  g_autofree char *reason = NULL;
  g_autoptr(GError) error = NULL;
  gboolean allowed = FALSE;
  MamdSessionState state = MAMD_SESSION_STATE_REVOKED;

  g_variant_get (parameters, "(&o)", &path);
  if (!call_session_id (call, path, &session_id))
    return;
  if (!mamd_engine_check_access (call->engine, &call->caller, session_id, &allowed, &state,
                                 &reason, &error)) {
    mamd_dbus_call_return_error (call, error);
    return;
  }
  mamd_dbus_call_return_value (call, g_variant_new ("(bss)", allowed,
                                                    mamd_session_state_to_string (state),
                                                    nonnull (reason)));
}

static void
on_seq_result (MamdDbusCall *call, MamdEngineResult *result, GError *error)
{
  if (result == NULL) {
    mamd_dbus_call_return_error (call, error);
    return;
  }
  mamd_dbus_call_return_value (call, g_variant_new ("(t)", result->seq));
}

static void
on_sign_out (GObject *source, GAsyncResult *res, gpointer user_data)
{
  MamdDbusCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = NULL;

  result = mamd_engine_sign_out_finish (MAMD_ENGINE (source), res, &error);
  on_seq_result (call, result, error);
}

static void
handle_sign_out (MamdDbusCall *call, GVariant *parameters)
{
  const char *path;
  g_autofree char *session_id = NULL;

  g_variant_get (parameters, "(&o)", &path);
  if (!call_session_id (call, path, &session_id))
    return;
  mamd_engine_sign_out_async (call->engine, &call->caller, session_id, call->cancellable,
                              on_sign_out, call);
}

static void
on_readd_server (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = NULL;

  result = mamd_engine_readd_server_finish (MAMD_ENGINE (source), res, &error);
  on_seq_result (user_data, result, error);
}

static void
handle_readd_server (MamdDbusCall *call, GVariant *parameters)
{
  const char *server, *device_id;

  g_variant_get (parameters, "(&s&s)", &server, &device_id);
  mamd_engine_readd_server_async (call->engine, &call->caller, server, device_id,
                                  call->cancellable, on_readd_server, call);
}

static void
on_ack_wipe (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = NULL;

  result = mamd_engine_ack_wipe_finish (MAMD_ENGINE (source), res, &error);
  on_seq_result (user_data, result, error);
}

static void
handle_acknowledge_wipe (MamdDbusCall *call, GVariant *parameters)
{
  const char *wipe_id;

  g_variant_get (parameters, "(&s)", &wipe_id);
  if (!mamd_id_is_valid (wipe_id)) {
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_INVALID_ARGS,
                                         "a wipe id is 32 lowercase hex characters: pass "
                                         "the id from WipeRequested or ListWipes");
    return;
  }
  mamd_engine_ack_wipe_async (call->engine, &call->caller, wipe_id, call->cancellable,
                              on_ack_wipe, call);
}

static void
on_reload (GObject *source, GAsyncResult *res, gpointer user_data)
{
  MamdDbusCall *call = user_data;
  g_autoptr(GError) error = NULL;

  if (!mamd_engine_reload_finish (MAMD_ENGINE (source), res, &error)) {
    g_warning ("reload asked over D-Bus (uid %u) refused: %s", call->caller.uid,
               error->message);
    mamd_dbus_call_return_error (call, error);
    return;
  }
  g_message ("configuration reloaded (asked over D-Bus by uid %u)", call->caller.uid);
  mamd_dbus_call_return_value (call, NULL);
}

static void
handle_reload (MamdDbusCall *call, GVariant *parameters)
{
  /* not tied to the caller's lifetime: half a reload is worse than one the
   * caller no longer waits for */
  mamd_engine_reload_async (call->engine, NULL, on_reload, call);
}

static void
on_sync_directory (GObject *source, GAsyncResult *res, gpointer user_data)
{
  MamdDbusCall *call = user_data;
  g_autoptr(GError) error = NULL;

  if (!mamd_engine_sync_directory_finish (MAMD_ENGINE (source), res, &error)) {
    mamd_dbus_call_return_error (call, error);
    return;
  }
  mamd_dbus_call_return_value (call, NULL);
}

static void
handle_sync_directory (MamdDbusCall *call, GVariant *parameters)
{
  const char *server;

  g_variant_get (parameters, "(&s)", &server);
  mamd_engine_sync_directory_async (call->engine, server[0] != '\0' ? server : NULL,
                                    call->cancellable, on_sync_directory, call);
}

/* ---- read-only methods ---- */

static void
handle_list_servers (MamdDbusCall *call, GVariant *parameters)
{
  g_autoptr(GPtrArray) servers = mamd_engine_list_servers (call->engine);
  GVariantBuilder list;

  g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; servers != NULL && i < servers->len; i++) {
    const MamdServerStatus *status = g_ptr_array_index (servers, i);
    const MamdServerConfig *config = status->config;
    GVariantBuilder dict, findings;

    g_variant_builder_init (&findings, G_VARIANT_TYPE_STRING_ARRAY);
    for (guint j = 0; status->findings != NULL && j < status->findings->len; j++) {
      const char *finding = g_ptr_array_index (status->findings, j);
      g_variant_builder_add (&findings, "s", finding);
    }
    g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
    add_string (&dict, "id", config->id);
    add_string (&dict, "name", config->name != NULL ? config->name : config->id);
    g_variant_builder_add (&dict, "{sv}", "enable", g_variant_new_boolean (config->enable));
    add_string (&dict, "tenant-id", config->tenant_id);
    add_string (&dict, "client-id", config->client_id);
    add_string (&dict, "auth-service", config->auth_service);
    add_string (&dict, "scope", config->scope);
    g_variant_builder_add (&dict, "{sv}", "gate-open", g_variant_new_boolean (status->gate_open));
    add_string (&dict, "gate-reason", status->gate_reason);
    add_string (&dict, "gate-error",
                status->gate_error_code >= 0 && status->gate_error_code < MAMD_ERROR_LAST
                  ? mamd_error_to_dbus_name (status->gate_error_code)
                  : NULL);
    g_variant_builder_add (&dict, "{sv}", "sessions", g_variant_new_uint32 (status->n_sessions));
    g_variant_builder_add (&dict, "{sv}", "findings", g_variant_builder_end (&findings));
    g_variant_builder_add (&list, "a{sv}", &dict);
  }
  mamd_dbus_call_return_value (call, g_variant_new ("(aa{sv})", &list));
}

static gboolean
caller_sees_session (const MamdDbusCall *call, const MamdSessionRecord *rec)
{
  return call->caller.is_admin || rec->owner_uid == call->caller.uid;
}

static GVariant *
session_list_entry (const MamdSessionRecord *rec)
{
  g_autofree char *path = mamd_dbus_session_path (rec->id);
  GVariantBuilder dict;

  g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&dict, "{sv}", "id", g_variant_new_string (rec->id));
  g_variant_builder_add (&dict, "{sv}", "object-path", g_variant_new_object_path (path));
  add_string (&dict, "server", rec->server_id);
  add_string (&dict, "method", rec->method);
  add_string (&dict, "object-id", rec->object_id);
  add_string (&dict, "tenant-id", rec->tenant_id);
  add_string (&dict, "user-name", rec->user_name);
  add_string (&dict, "device-id", rec->device_id);
  add_string (&dict, "platform", rec->platform);
  g_variant_builder_add (&dict, "{sv}", "state",
                         g_variant_new_string (mamd_session_state_to_string (rec->state)));
  add_string (&dict, "reason", rec->reason);
  g_variant_builder_add (&dict, "{sv}", "mam-required", g_variant_new_boolean (rec->mam_required));
  g_variant_builder_add (&dict, "{sv}", "created", g_variant_new_int64 (rec->created));
  g_variant_builder_add (&dict, "{sv}", "updated", g_variant_new_int64 (rec->updated));
  g_variant_builder_add (&dict, "{sv}", "seq", g_variant_new_uint64 (rec->seq));
  return g_variant_builder_end (&dict);
}

/* The sessions of @server ("" for all) the caller sees (non-admins: their
 * own), oldest first, from after the cursor (@after_id NULL: from the
 * first), at most @limit of them (0: all); when more follow, *@next gets
 * the cursor of the last one listed, "<created>:<id>". */
static GVariant *
visible_sessions (MamdDbusCall *call, const char *server, gint64 after_created,
                  const char *after_id, guint limit, char **next)
{
  g_autoptr(GPtrArray) sessions = NULL;
  const MamdSessionRecord *last = NULL;
  GVariantBuilder list;
  guint n = 0;

  sessions = mamd_engine_list_sessions (call->engine, server[0] != '\0' ? server : NULL,
                                        after_created, after_id);
  g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < sessions->len; i++) {
    const MamdSessionRecord *rec = g_ptr_array_index (sessions, i);

    if (!caller_sees_session (call, rec))
      continue;
    if (limit != 0 && n == limit) {
      *next = g_strdup_printf ("%" G_GINT64_FORMAT ":%s", last->created, last->id);
      break;
    }
    g_variant_builder_add_value (&list, session_list_entry (rec));
    last = rec;
    n++;
  }
  return g_variant_builder_end (&list);
}

static void
handle_list_sessions (MamdDbusCall *call, GVariant *parameters)
{
  const char *server;

  g_variant_get (parameters, "(&s)", &server);
  mamd_dbus_call_return_value (call, g_variant_new ("(@aa{sv})",
                                                    visible_sessions (call, server, 0, NULL, 0,
                                                                      NULL)));
}

#define PAGE_DEFAULT 1000
#define PAGE_MAX 10000

/* A page's cursor, "<created>:<id>" of its last session: where the next
 * page starts even if that session is gone by then. */
static gboolean
parse_cursor (const char *cursor, gint64 *created, const char **id)
{
  const char *colon = strchr (cursor, ':');
  g_autofree char *number = NULL;
  guint64 value;

  if (colon == NULL || !mamd_id_is_valid (colon + 1))
    return FALSE;
  number = g_strndup (cursor, (gsize) (colon - cursor));
  if (!g_ascii_string_to_unsigned (number, 10, 0, G_MAXINT64, &value, NULL))
    return FALSE;
  *created = (gint64) value;
  *id = colon + 1;
  return TRUE;
}

static void
handle_list_sessions_page (MamdDbusCall *call, GVariant *parameters)
{
  const char *server, *cursor, *after_id = NULL;
  g_autofree char *next = NULL;
  gint64 after_created = 0;
  GVariant *page;
  guint limit;

  g_variant_get (parameters, "(&s&su)", &server, &cursor, &limit);
  if (limit > PAGE_MAX) {
    g_autofree char *message = g_strdup_printf ("a page holds at most %u sessions, not %u: "
                                                "pass a smaller limit (0: %u)", PAGE_MAX,
                                                limit, PAGE_DEFAULT);
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_INVALID_ARGS, message);
    return;
  }
  if (cursor[0] != '\0' && !parse_cursor (cursor, &after_created, &after_id)) {
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_INVALID_ARGS,
                                         "the cursor is not one ListSessionsPage returned: "
                                         "pass \"\" for the first page, then each page's "
                                         "next cursor");
    return;
  }
  page = visible_sessions (call, server, after_created, after_id,
                           limit != 0 ? limit : PAGE_DEFAULT, &next);
  mamd_dbus_call_return_value (call, g_variant_new ("(@aa{sv}s)", page,
                                                    next != NULL ? next : ""));
}

static GVariant *
capabilities_variant (MamdPluginCapabilities caps)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_STRING_ARRAY);
  if (caps & MAMD_PLUGIN_CAP_SIGN_IN)
    g_variant_builder_add (&builder, "s", "sign-in");
  if (caps & MAMD_PLUGIN_CAP_DIRECTORY_SYNC)
    g_variant_builder_add (&builder, "s", "directory-sync");
  if (caps & MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE)
    g_variant_builder_add (&builder, "s", "mam-auth-service");
  if (caps & MAMD_PLUGIN_CAP_CREATES_USERS)
    g_variant_builder_add (&builder, "s", "creates-users");
  return g_variant_builder_end (&builder);
}

static void
handle_list_plugins (MamdDbusCall *call, GVariant *parameters)
{
  GPtrArray *entries = mamd_plugin_loader_get_entries (mamd_engine_get_plugins (call->engine));
  GVariantBuilder list;

  g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; entries != NULL && i < entries->len; i++) {
    const MamdPluginEntry *entry = g_ptr_array_index (entries, i);
    GVariantBuilder dict;

    g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
    add_string (&dict, "method", entry->method);
    add_string (&dict, "module", entry->module_name);
    add_string (&dict, "version", entry->version);
    add_string (&dict, "path", entry->path);
    g_variant_builder_add (&dict, "{sv}", "capabilities",
                           capabilities_variant (entry->capabilities));
    g_variant_builder_add (&dict, "{sv}", "enabled", g_variant_new_boolean (entry->plugin != NULL));
    add_string (&dict, "disabled-reason", entry->disabled_reason);
    add_string (&dict, "description",
                entry->plugin != NULL ? mamd_plugin_get_description (entry->plugin) : NULL);
    g_variant_builder_add (&list, "a{sv}", &dict);
  }
  mamd_dbus_call_return_value (call, g_variant_new ("(aa{sv})", &list));
}

static void
handle_list_wipes (MamdDbusCall *call, GVariant *parameters)
{
  g_autoptr(GPtrArray) wipes = mamd_engine_list_wipes (call->engine);
  GVariantBuilder list;

  g_variant_builder_init (&list, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; wipes != NULL && i < wipes->len; i++) {
    const MamdWipeRecord *wipe = g_ptr_array_index (wipes, i);
    GVariantBuilder dict;

    /* a client sees the wipes it may acknowledge */
    if (!mamd_engine_caller_may_ack_wipe (call->engine, &call->caller, wipe))
      continue;
    g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add (&dict, "{sv}", "id", g_variant_new_string (wipe->id));
    add_string (&dict, "server", wipe->server_id);
    add_string (&dict, "device-id", wipe->device_id);
    add_string (&dict, "object-id", wipe->object_id);
    add_string (&dict, "session", wipe->session_id);
    add_string (&dict, "reason", wipe->reason);
    g_variant_builder_add (&dict, "{sv}", "created", g_variant_new_int64 (wipe->created));
    g_variant_builder_add (&dict, "{sv}", "expires", g_variant_new_int64 (wipe->expires));
    g_variant_builder_add (&dict, "{sv}", "seq", g_variant_new_uint64 (wipe->seq));
    g_variant_builder_add (&list, "a{sv}", &dict);
  }
  mamd_dbus_call_return_value (call, g_variant_new ("(aa{sv})", &list));
}

static void
handle_get_status (MamdDbusCall *call, GVariant *parameters)
{
  const char *license_reason = NULL;
  const MamdLicense *license = mamd_engine_get_license (call->engine, &license_reason);
  const MamdConfig *config = mamd_engine_get_config (call->engine);
  GPtrArray *entries = mamd_plugin_loader_get_entries (mamd_engine_get_plugins (call->engine));
  g_autoptr(GPtrArray) wipes = mamd_engine_list_wipes (call->engine);
  guint n_enabled = 0, n_disabled = 0;
  g_autoptr(GError) license_error = NULL;
  gboolean licensed = FALSE;
  GVariantBuilder dict;

  /* "licensed" means MAM may run under this licence (tier, dates), not just
   * that a signed file was read; per-server coverage shows in ListServers */
  if (license != NULL) {
    licensed = mamd_license_check_mam (license, license->servers != NULL ? license->servers[0]
                                                                         : NULL,
                                       g_get_real_time () / G_USEC_PER_SEC, &license_error);
    if (!licensed)
      license_reason = license_error->message;
  }

  for (guint i = 0; entries != NULL && i < entries->len; i++) {
    const MamdPluginEntry *entry = g_ptr_array_index (entries, i);
    if (entry->plugin != NULL)
      n_enabled++;
    else
      n_disabled++;
  }
  g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&dict, "{sv}", "version", g_variant_new_string (MAMD_VERSION));
  g_variant_builder_add (&dict, "{sv}", "licensed", g_variant_new_boolean (licensed));
  add_string (&dict, "license-reason", licensed ? NULL : license_reason);
  add_string (&dict, "licensee", license != NULL ? license->licensee : NULL);
  add_string (&dict, "sku", license != NULL ? license->sku_short_name : NULL);
  g_variant_builder_add (&dict, "{sv}", "license-expires",
                         g_variant_new_int64 (license != NULL ? license->expires_at : 0));
  g_variant_builder_add (&dict, "{sv}", "servers",
                         g_variant_new_uint32 (config != NULL && config->servers != NULL
                                                 ? config->servers->len : 0));
  g_variant_builder_add (&dict, "{sv}", "sessions",
                         g_variant_new_uint32 (mamd_engine_get_n_sessions (call->engine)));
  g_variant_builder_add (&dict, "{sv}", "pending-wipes",
                         g_variant_new_uint32 (wipes != NULL ? wipes->len : 0));
  g_variant_builder_add (&dict, "{sv}", "last-seq",
                         g_variant_new_uint64 (mamd_engine_get_last_seq (call->engine)));
  g_variant_builder_add (&dict, "{sv}", "plugins", g_variant_new_uint32 (n_enabled));
  g_variant_builder_add (&dict, "{sv}", "plugins-disabled", g_variant_new_uint32 (n_disabled));
  mamd_dbus_call_return_value (call, g_variant_new ("(a{sv})", &dict));
}

/* ---- properties ---- */

static GVariant *
manager_property (MamdDbusCall *call, const char *name)
{
  if (g_str_equal (name, "Version"))
    return g_variant_new_string (MAMD_VERSION);
  if (g_str_equal (name, "LastEventSeq"))
    return g_variant_new_uint64 (mamd_engine_get_last_seq (call->engine));
  return NULL;
}

static gboolean
check_interface (MamdDbusCall *call, const char *interface, const char *expected)
{
  g_autofree char *message = NULL;

  if (g_strcmp0 (interface, expected) == 0)
    return TRUE;
  message = g_strdup_printf ("this object has no interface '%s': its properties are on %s",
                             interface, expected);
  mamd_dbus_call_return_error_literal (call, MAMD_ERROR_INVALID_ARGS, message);
  return FALSE;
}

/* Properties.Get's answer: @value (floating), or InvalidArgs when NULL. */
static void
return_property (MamdDbusCall *call, const char *interface, const char *name, GVariant *value)
{
  if (value == NULL) {
    g_autofree char *message = g_strdup_printf ("no property '%s' on %s", name, interface);
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_INVALID_ARGS, message);
    return;
  }
  mamd_dbus_call_return_value (call, g_variant_new ("(v)", value));
}

static void
handle_manager_get (MamdDbusCall *call, GVariant *parameters)
{
  const char *interface, *name;

  g_variant_get (parameters, "(&s&s)", &interface, &name);
  if (!check_interface (call, interface, MAMD_DBUS_MANAGER_IFACE))
    return;
  return_property (call, interface, name, manager_property (call, name));
}

static void
handle_manager_get_all (MamdDbusCall *call, GVariant *parameters)
{
  const char *interface;
  GVariantBuilder dict;

  g_variant_get (parameters, "(&s)", &interface);
  if (!check_interface (call, interface, MAMD_DBUS_MANAGER_IFACE))
    return;
  g_variant_builder_init (&dict, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&dict, "{sv}", "Version", manager_property (call, "Version"));
  g_variant_builder_add (&dict, "{sv}", "LastEventSeq", manager_property (call, "LastEventSeq"));
  mamd_dbus_call_return_value (call, g_variant_new ("(a{sv})", &dict));
}

/* The session the call's object path names, if the caller may see it. */
static const MamdSessionRecord *
call_visible_session (MamdDbusCall *call)
{
  g_autofree char *session_id = NULL;
  const MamdSessionRecord *rec;

  if (!call_session_id (call, call->object_path, &session_id))
    return NULL;
  rec = mamd_engine_lookup_session (call->engine, session_id);
  if (rec == NULL) {
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_NOT_FOUND,
                                         "no such session: it was signed out or expired");
    return NULL;
  }
  if (!caller_sees_session (call, rec)) {
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_ACCESS_DENIED,
                                         "this session belongs to another user: only its owner "
                                         "or an administrator may read it");
    return NULL;
  }
  return rec;
}

static void
handle_session_get (MamdDbusCall *call, GVariant *parameters)
{
  const char *interface, *name;
  const MamdSessionRecord *rec;

  g_variant_get (parameters, "(&s&s)", &interface, &name);
  if (!check_interface (call, interface, MAMD_DBUS_SESSION_IFACE))
    return;
  rec = call_visible_session (call);
  if (rec == NULL)
    return;
  return_property (call, interface, name, mamd_dbus_session_property (rec, name));
}

static void
handle_session_get_all (MamdDbusCall *call, GVariant *parameters)
{
  const char *interface;
  const MamdSessionRecord *rec;

  g_variant_get (parameters, "(&s)", &interface);
  if (!check_interface (call, interface, MAMD_DBUS_SESSION_IFACE))
    return;
  rec = call_visible_session (call);
  if (rec == NULL)
    return;
  mamd_dbus_call_return_value (call, g_variant_new ("(@a{sv})",
                                                    mamd_dbus_session_properties (rec)));
}

/* ---- the dispatch table ---- */

#define MANAGER MAMD_DBUS_OBJECT_MANAGER
#define SESSION MAMD_DBUS_OBJECT_SESSION
#define READ MAMD_DBUS_ROLE_READ
#define CLIENT MAMD_DBUS_ROLE_CLIENT
#define ADMIN MAMD_DBUS_ROLE_ADMIN
#define READS TRUE
#define WRITES FALSE

static const MamdDbusMethod methods[] = {
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "SignIn", CLIENT, WRITES, handle_sign_in },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "ReportEnrollment", CLIENT, WRITES,
    handle_report_enrollment },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "CheckAccess", CLIENT, READS, handle_check_access },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "SignOut", CLIENT, WRITES, handle_sign_out },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "ReAddServer", CLIENT, WRITES, handle_readd_server },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "AcknowledgeWipe", CLIENT, WRITES, handle_acknowledge_wipe },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "Reload", ADMIN, WRITES, handle_reload },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "SyncDirectory", ADMIN, WRITES, handle_sync_directory },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "ListServers", READ, READS, handle_list_servers },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "ListSessions", READ, READS, handle_list_sessions },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "ListSessionsPage", READ, READS, handle_list_sessions_page },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "ListPlugins", READ, READS, handle_list_plugins },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "ListWipes", READ, READS, handle_list_wipes },
  { MANAGER, MAMD_DBUS_MANAGER_IFACE, "GetStatus", READ, READS, handle_get_status },
  { MANAGER, MAMD_DBUS_PROPERTIES_IFACE, "Get", READ, READS, handle_manager_get },
  { MANAGER, MAMD_DBUS_PROPERTIES_IFACE, "GetAll", READ, READS, handle_manager_get_all },
  { SESSION, MAMD_DBUS_PROPERTIES_IFACE, "Get", READ, READS, handle_session_get },
  { SESSION, MAMD_DBUS_PROPERTIES_IFACE, "GetAll", READ, READS, handle_session_get_all },
};

const MamdDbusMethod *
mamd_dbus_lookup_method (MamdDbusObjectKind object, const char *interface, const char *member)
{
  for (guint i = 0; i < G_N_ELEMENTS (methods); i++) {
    if (methods[i].object == object && g_strcmp0 (methods[i].interface, interface) == 0 &&
        g_strcmp0 (methods[i].member, member) == 0)
      return &methods[i];
  }
  return NULL;
}
