#include "config.h"

#include "mamd-engine-private.h"

/*
 * Session lifecycle: sign-in (the guide's login flow), enrollment outcomes,
 * sign-out, server re-add and wipe acknowledgement. Decisions mutate memory
 * at once, so that concurrent calls see them, then go through the commit
 * path of mamd-engine.c.
 */

static void
log_refusal (const char *what, const char *decision_id, const char *server_id,
             const GError *error)
{
  g_autofree char *message = g_strdup_printf ("%s refused (decision %s): %s", what,
                                              decision_id, error->message);
  const GLogField fields[] = {
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    { "PRIORITY", "5", -1 },
    { "MESSAGE", message, -1 },
    { "MAMD_EVENT", "sign-in-refused", -1 },
    { "MAMD_SERVER", server_id != NULL ? server_id : "", -1 },
    { "MAMD_DECISION", decision_id, -1 },
  };

  g_log_structured_array (G_LOG_LEVEL_MESSAGE, fields, G_N_ELEMENTS (fields));
}

/* A plugin's error may quote its credential: every string value of it is
 * cut out before the message reaches a log or a caller. GUIDs stay (the
 * messages must name them), as do values shorter than 8 bytes, which would
 * blank out ordinary words. */
static void
scrub_credential (GError *error, GVariant *credential)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, credential);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value)) {
    const char *secret;

    if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
      continue;
    secret = g_variant_get_string (value, NULL);
    if (strlen (secret) < 8 || mamd_guid_is_canonical (secret))
      continue;
    if (strstr (error->message, secret) != NULL) {
      g_auto(GStrv) parts = g_strsplit (error->message, secret, -1);

      g_free (error->message);
      error->message = g_strjoinv ("[credential]", parts);
    }
  }
}

static gboolean
caller_may_act (const MamdCaller *caller, const MamdSessionRecord *rec, GError **error)
{
  if (caller->is_admin || caller->uid == rec->owner_uid)
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_ACCESS_DENIED,
               "session %s belongs to another user: only its owner or an administrator "
               "may act on it",
               rec->id);
  return FALSE;
}

static MamdSessionRecord *
find_session (MamdEngine *self, const char *session_id, GError **error)
{
  MamdSessionRecord *rec = NULL;

  if (session_id != NULL && mamd_id_is_valid (session_id))
    rec = g_hash_table_lookup (self->sessions, session_id);
  if (rec == NULL)
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND,
                 "no session '%s': it was signed out, expired or never existed "
                 "(see mamctl sessions)",
                 session_id != NULL && g_utf8_validate (session_id, -1, NULL) ? session_id : "");
  return rec;
}

static MamdEngineServer *
find_server (MamdEngine *self, const char *server_id, GError **error)
{
  MamdEngineServer *srv = NULL;

  if (server_id != NULL && g_utf8_validate (server_id, -1, NULL))
    srv = mamd_engine_lookup_server (self, server_id);
  if (srv == NULL)
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND,
                 "no server '%s' is configured (see mamctl servers)",
                 server_id != NULL && g_utf8_validate (server_id, -1, NULL) ? server_id : "");
  return srv;
}

/* The caller's own removal of (server, device), or one whose owner is
 * unknown. */
static MamdRemovedServerRecord *
lookup_removed (MamdEngine *self, const char *server_id, const char *device_id, guint32 uid)
{
  g_autofree char *own = mamd_engine_removed_key (server_id, device_id, uid);
  g_autofree char *unknown = mamd_engine_removed_key (server_id, device_id, -1);
  MamdRemovedServerRecord *removed = g_hash_table_lookup (self->removed, own);

  return removed != NULL ? removed : g_hash_table_lookup (self->removed, unknown);
}

static gboolean
check_not_removed (MamdEngine *self, const char *server_id, const char *device_id,
                   guint32 uid, GError **error)
{
  MamdRemovedServerRecord *removed = lookup_removed (self, server_id, device_id, uid);

  if (removed == NULL)
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_SERVER_REMOVED,
               "server %s was removed from device %s: %s; fix the underlying issue and, "
               "once the device has acknowledged the wipe of the server's data "
               "(AcknowledgeWipe, mamctl ack-wipe), re-add the server (ReAddServer, "
               "mamctl re-add)",
               server_id, device_id,
               removed->reason != NULL ? removed->reason : "Intune MAM enrollment failed");
  return FALSE;
}

/* Platform rules, then the gate when MAM applies. */
static gboolean
check_policy (MamdEngine *self, MamdEngineServer *srv, const char *method,
              const char *platform, gboolean *mam_required, GError **error)
{
  *mam_required = mamd_policy_mam_required (srv->config, method);
  if (!mamd_policy_check_platform (srv->config, platform, *mam_required, error))
    return FALSE;
  if (*mam_required && !mamd_engine_compute_gate (self, srv, error))
    return FALSE;
  return TRUE;
}

/* ---- sign-in ---- */

/* authentications of one sign-in when reloads keep changing its server's
 * file */
#define SIGN_IN_MAX_ATTEMPTS 3

typedef struct {
  MamdCaller caller;
  char *server_id;
  char *method;
  char *platform;
  char *device_id;
  char *decision_id;
  MamdPlugin *plugin;
  GObject *plugin_config;
  GVariant *credential; /* kept only to check it again after a reload */
  guint64 epoch;        /* of the server when the plugin started */
  guint attempts;
  MamdEngineDeadline deadline; /* the plugin's: SignInTimeout */
} SignInData;

static void
sign_in_data_free (gpointer data)
{
  SignInData *sd = data;

  mamd_engine_deadline_clear (&sd->deadline);
  g_free (sd->server_id);
  g_free (sd->method);
  g_free (sd->platform);
  g_free (sd->device_id);
  g_free (sd->decision_id);
  g_clear_object (&sd->plugin);
  g_clear_object (&sd->plugin_config);
  g_clear_pointer (&sd->credential, g_variant_unref);
  g_free (sd);
}

static gboolean
sign_in_check_args (const char *method, GVariant *credential, const char *platform,
                    const char *device_id, GError **error)
{
  if (!mamd_policy_check_arg ("method", method, error) ||
      !mamd_policy_check_arg ("platform", platform, error) ||
      !mamd_policy_check_arg ("device id", device_id, error))
    return FALSE;
  if (credential == NULL || !g_variant_is_of_type (credential, G_VARIANT_TYPE_VARDICT)) {
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                         "credential is not a dictionary (a{sv}): pass the credential "
                         "fields the authentication method expects");
    return FALSE;
  }
  return TRUE;
}

static gboolean
sign_in_find_plugin (MamdEngine *self, MamdEngineServer *srv, const char *method,
                     MamdPlugin **plugin, GObject **plugin_config, GError **error)
{
  const MamdPluginEntry *entry = mamd_plugin_loader_lookup_entry (self->plugins, method);
  GObject *config;

  /* also for methods MAM does not evaluate, whose settings may be the ones
   * in a misspelt group */
  if (!mamd_policy_check_groups (srv->config->id, srv->unknown_group,
                                 MAMD_ERROR_PLUGIN_UNAVAILABLE, error))
    return FALSE;
  if (entry == NULL || entry->plugin == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                 "no enabled plugin provides authentication method '%s'%s%s%s: "
                 "see mamctl plugins",
                 method, entry != NULL ? " (disabled: " : "",
                 entry != NULL && entry->disabled_reason != NULL ? entry->disabled_reason : "",
                 entry != NULL ? ")" : "");
    return FALSE;
  }
  if ((mamd_plugin_get_capabilities (entry->plugin) & MAMD_PLUGIN_CAP_SIGN_IN) == 0) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_SUPPORTED,
                 "authentication method '%s' does not sign users in (it only provisions "
                 "them): sign in through the server's AuthService",
                 method);
    return FALSE;
  }
  config = g_hash_table_lookup (srv->plugin_configs, g_intern_string (method));
  if (config == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                 "authentication method '%s' is not configured for server %s: add a [%s] "
                 "group to %s, then reload",
                 method, srv->config->id, method, srv->config->path);
    return FALSE;
  }
  *plugin = g_object_ref (entry->plugin);
  *plugin_config = g_object_ref (config);
  return TRUE;
}

static void sign_in_auth_cb (GObject *source, GAsyncResult *res, gpointer user_data);

void
mamd_engine_sign_in_async (MamdEngine *self, const MamdCaller *caller, const char *server_id,
                           const char *method, GVariant *credential, const char *platform,
                           const char *device_id, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  SignInData *sd = g_new0 (SignInData, 1);
  MamdEngineServer *srv;
  gboolean mam_required;

  g_task_set_source_tag (task, mamd_engine_sign_in_async);
  /* a session once committed is the answer, cancelled or not */
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_task_data (task, sd, sign_in_data_free);
  sd->caller = *caller;
  sd->decision_id = mamd_random_id ();

  srv = find_server (self, server_id, &error);
  if (srv == NULL ||
      !sign_in_check_args (method, credential, platform, device_id, &error) ||
      !check_not_removed (self, srv->config->id, device_id, caller->uid, &error) ||
      !check_policy (self, srv, method, platform, &mam_required, &error) ||
      !sign_in_find_plugin (self, srv, method, &sd->plugin, &sd->plugin_config, &error)) {
    log_refusal ("sign-in", sd->decision_id, srv != NULL ? srv->config->id : NULL, error);
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  sd->server_id = g_strdup (srv->config->id);
  sd->method = g_strdup (method);
  sd->platform = g_strdup (platform);
  sd->device_id = g_strdup (device_id);
  sd->credential = g_variant_ref (credential);
  sd->epoch = srv->epoch;
  sd->attempts = 1;
  mamd_engine_deadline_start (&sd->deadline, cancellable, self->config->daemon->sign_in_timeout);
  mamd_plugin_authenticate_async (sd->plugin, sd->plugin_config, credential,
                                  sd->deadline.cancellable,
                                  sign_in_auth_cb, g_steal_pointer (&task));
}

/* A reload may have changed the server's configuration while the plugin
 * ran. Nothing is accepted under settings that no longer hold (an old
 * ClientId, scope or issuer): the credential is authenticated again under
 * the live configuration, a bounded number of times. A reload that left
 * the server's file as it was changes nothing. TRUE when it was started
 * again (the task went with it); FALSE with @error when the method is gone,
 * FALSE without when what it was checked against still holds. */
static gboolean
sign_in_restart_if_stale (MamdEngine *self, GTask **task, SignInData *sd, GError **error)
{
  g_autoptr(MamdPlugin) plugin = NULL;
  g_autoptr(GObject) config = NULL;
  MamdEngineServer *srv = find_server (self, sd->server_id, error);

  if (srv == NULL || !sign_in_find_plugin (self, srv, sd->method, &plugin, &config, error))
    return FALSE;
  if (srv->epoch == sd->epoch)
    return FALSE;
  if (sd->attempts >= SIGN_IN_MAX_ATTEMPTS) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_BUSY,
                 "the configuration of server %s changed %u times during the sign-in: "
                 "sign in again",
                 sd->server_id, sd->attempts);
    return FALSE;
  }
  sd->attempts++;
  sd->epoch = srv->epoch;
  g_set_object (&sd->plugin, plugin);
  g_set_object (&sd->plugin_config, config);
  mamd_plugin_authenticate_async (sd->plugin, sd->plugin_config, sd->credential,
                                  sd->deadline.cancellable, sign_in_auth_cb,
                                  g_steal_pointer (task));
  return TRUE;
}

/* After authentication: the world may have changed while the plugin ran. */
static gboolean
sign_in_recheck (MamdEngine *self, SignInData *sd, const MamdIdentity *identity,
                 MamdEngineServer **srv_out, gboolean *mam_required, GError **error)
{
  MamdEngineServer *srv = find_server (self, sd->server_id, error);

  if (srv == NULL ||
      !check_not_removed (self, sd->server_id, sd->device_id, sd->caller.uid, error) ||
      !check_policy (self, srv, sd->method, sd->platform, mam_required, error))
    return FALSE;
  if (*mam_required && g_strcmp0 (identity->tenant_id, srv->config->tenant_id) != 0) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                 "credential is for tenant %s but server %s expects %s: sign in with an "
                 "account of the server's Entra tenant",
                 identity->tenant_id, sd->server_id, srv->config->tenant_id);
    return FALSE;
  }
  *srv_out = srv;
  return TRUE;
}

/* Only decides: the user is created once every check has passed. */
static gboolean
sign_in_match_user (MamdEngine *self, MamdEngineServer *srv, SignInData *sd,
                    const MamdIdentity *identity, gboolean *create, GError **error)
{
  g_autofree char *key = mamd_engine_user_key (sd->server_id, sd->method, identity->object_id);

  *create = FALSE;
  if (g_hash_table_contains (self->users, key))
    return TRUE;
  if (!mamd_policy_may_create_user (srv->config, sd->method,
                                    mamd_plugin_get_capabilities (sd->plugin),
                                    identity->object_id, error))
    return FALSE;
  *create = TRUE;
  return TRUE;
}

static void
sign_in_create_user (MamdEngine *self, SignInData *sd, const MamdIdentity *identity,
                     MamdEngineOp *op)
{
  g_autoptr(MamdUserRecord) user = mamd_user_record_new ();

  user->server_id = g_intern_string (sd->server_id);
  user->auth_service = g_intern_string (sd->method);
  user->object_id = g_strdup (identity->object_id);
  user->user_name = g_strdup (identity->user_name);
  user->created = mamd_engine_now (self);
  mamd_store_txn_put_user (op->txn, user);
  g_hash_table_add (self->users,
                    mamd_engine_user_key (sd->server_id, sd->method, identity->object_id));
}

static gboolean
sign_in_check_cap (MamdEngine *self, guint32 uid, GError **error)
{
  guint max = self->config->daemon->max_sessions_per_uid;
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->uid_counts,
                                                       GUINT_TO_POINTER (uid)));

  if (count < max)
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_BUSY,
               "uid %u already has %u live sessions (MaxSessionsPerUser): sign out "
               "unused sessions or raise the limit in mamd.conf",
               uid, count);
  return FALSE;
}

static MamdSessionRecord *
sign_in_create_session (MamdEngine *self, SignInData *sd, const MamdIdentity *identity,
                        gboolean mam_required)
{
  MamdSessionRecord *rec = mamd_session_record_new ();
  g_autofree char *reason = NULL;

  rec->created = rec->updated = mamd_engine_now (self);
  rec->id = mamd_time_ordered_id (rec->created);
  rec->server_id = g_intern_string (sd->server_id);
  rec->method = g_intern_string (sd->method);
  rec->object_id = g_strdup (identity->object_id);
  rec->tenant_id = g_intern_string (identity->tenant_id);
  rec->user_name = g_strdup (identity->user_name);
  rec->device_id = g_strdup (sd->device_id);
  rec->platform = g_intern_string (sd->platform);
  rec->id_attribute = g_intern_string (identity->id_attribute);
  rec->id_source = g_intern_string (identity->id_source);
  rec->owner_uid = sd->caller.uid;
  rec->mam_required = mam_required;
  if (mam_required) {
    reason = g_strdup_printf ("Intune MAM enrollment is required by server %s",
                              sd->server_id);
    rec->state = MAMD_SESSION_STATE_ENROLLMENT_REQUIRED;
    rec->reason = g_intern_string (reason);
  } else {
    rec->state = MAMD_SESSION_STATE_ACTIVE;
  }
  return rec;
}

static void
sign_in_auth_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  MamdEngine *self = g_task_get_source_object (task);
  SignInData *sd = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  MamdEngineServer *srv = NULL;
  MamdSessionRecord *rec;
  MamdEngineOp *op;
  gboolean mam_required = FALSE;
  gboolean create_user = FALSE;
  guint64 seq;

  identity = mamd_plugin_authenticate_finish (MAMD_PLUGIN (source), res, &error);
  if (error != NULL)
    scrub_credential (error, sd->credential);
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_autoptr(GError) stale = NULL;

    if (sign_in_restart_if_stale (self, &task, sd, &stale))
      return;
    if (stale != NULL) {
      g_clear_pointer (&identity, mamd_identity_free);
      g_clear_error (&error);
      error = g_steal_pointer (&stale);
    }
  } else if (sd->deadline.timed_out) {
    g_clear_error (&error);
    g_set_error (&error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                 "plugin %s did not authenticate within %u s (SignInTimeout in mamd.conf), "
                 "so mamd gave up: check what the plugin depends on (identity provider, "
                 "directory) and its log lines",
                 sd->method, sd->deadline.seconds);
  }
  if (identity == NULL ||
      !sign_in_recheck (self, sd, identity, &srv, &mam_required, &error) ||
      !sign_in_match_user (self, srv, sd, identity, &create_user, &error) ||
      !sign_in_check_cap (self, sd->caller.uid, &error)) {
    log_refusal ("sign-in", sd->decision_id, sd->server_id, error);
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }

  op = mamd_engine_op_new (self, task);
  g_free (op->decision_id);
  op->decision_id = g_strdup (sd->decision_id);
  /* the new user and the session are committed in one transaction */
  if (create_user)
    sign_in_create_user (self, sd, identity, op);

  rec = sign_in_create_session (self, sd, identity, mam_required);
  seq = mamd_engine_op_event (op, "session-created", rec->server_id, rec->id,
                              mamd_engine_session_detail (rec));
  rec->seq = seq;
  mamd_engine_session_insert (self, rec);
  mamd_store_txn_put_session (op->txn, rec);
  /* no "session-changed" for a new session: nothing about it changed yet,
   * and one signal less per sign-in matters at bus throughput */
  if (mam_required)
    mamd_engine_op_emit_session (op, MAMD_EMIT_ENROLLMENT_REQUIRED, rec, rec->reason, seq);

  op->result = g_new0 (MamdEngineResult, 1);
  op->result->session = mamd_session_record_copy (rec);
  op->result->decision_id = g_strdup (op->decision_id);
  op->result->seq = seq;
  op->result->mam_required = mam_required;
  mamd_engine_op_commit (op);
}

MamdEngineResult *
mamd_engine_sign_in_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- enrollment outcome ---- */

static MamdEngineResult *
result_new (MamdEngineOp *op, const MamdSessionRecord *rec, guint64 seq)
{
  MamdEngineResult *result = g_new0 (MamdEngineResult, 1);

  result->session = rec != NULL ? mamd_session_record_copy (rec) : NULL;
  result->decision_id = g_strdup (op->decision_id);
  result->seq = seq;
  result->mam_required = rec != NULL && rec->mam_required;
  return result;
}

static guint64
change_session (MamdEngine *self, MamdEngineOp *op, MamdSessionRecord *rec,
                MamdSessionState state, const char *reason, const char *event_type,
                gint status_code)
{
  g_autoptr(GVariant) base = NULL;
  GVariantDict dict;
  guint64 seq;

  mamd_engine_session_set_state (self, rec, state);
  rec->reason = g_intern_string (reason);
  rec->updated = mamd_engine_now (self);
  base = g_variant_ref_sink (mamd_engine_session_detail (rec));
  g_variant_dict_init (&dict, base);
  if (status_code != -1)
    g_variant_dict_insert (&dict, "status-code", "i", status_code);
  seq = mamd_engine_op_event (op, event_type, rec->server_id, rec->id,
                              g_variant_dict_end (&dict));
  rec->seq = seq;
  mamd_store_txn_put_session (op->txn, rec);
  return seq;
}

/* A technical failure: the server leaves the device. Every live session of
 * (server, device) that the failed session's owner holds is revoked, the
 * removal recorded for that owner and a wipe requested; other servers,
 * other devices and other uids (device ids are the callers' word) are
 * untouched. Returns the seq of @failed's revocation. */
static guint64
enrollment_failed (MamdEngine *self, MamdEngineOp *op, MamdSessionRecord *failed,
                   const char *reason, gint status_code)
{
  g_autoptr(GPtrArray) affected = g_ptr_array_new ();
  g_autoptr(MamdRemovedServerRecord) removed = mamd_removed_server_record_new ();
  g_autoptr(MamdWipeRecord) wipe = mamd_wipe_record_new ();
  const char *code_name = mamd_enrollment_status_code_name (status_code);
  /* the removal and the wipe keep the cause only: the advice is in the errors */
  g_autofree char *cause =
    code_name != NULL
      ? g_strdup_printf ("Intune MAM enrollment failed (%d %s)", status_code, code_name)
      : g_strdup ("Intune MAM enrollment failed (status not reported)");
  MamdWipeRecord *stored;
  GHashTableIter iter;
  gpointer value;
  GVariantDict dict;
  guint64 seq, result_seq;
  gint64 now = mamd_engine_now (self);

  g_ptr_array_add (affected, failed);
  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdSessionRecord *rec = value;

    if (rec != failed && rec->server_id == failed->server_id &&
        rec->owner_uid == failed->owner_uid && rec->state != MAMD_SESSION_STATE_REVOKED &&
        g_strcmp0 (rec->device_id, failed->device_id) == 0)
      g_ptr_array_add (affected, rec);
  }
  result_seq = 0;
  for (guint i = 0; i < affected->len; i++) {
    MamdSessionRecord *rec = g_ptr_array_index (affected, i);

    seq = change_session (self, op, rec, MAMD_SESSION_STATE_REVOKED, reason,
                          "session-revoked", rec == failed ? status_code : -1);
    if (rec == failed)
      result_seq = seq;
    mamd_engine_op_emit_session (op, MAMD_EMIT_SESSION_CHANGED, rec, NULL, seq);
    mamd_engine_op_emit_session (op, MAMD_EMIT_SESSION_REVOKED, rec, reason, seq);
  }

  removed->server_id = failed->server_id;
  removed->device_id = g_strdup (failed->device_id);
  removed->object_id = g_strdup (failed->object_id);
  removed->reason = g_strdup (cause);
  removed->removed = now;
  removed->owner_uid = failed->owner_uid;
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "device-id", "s", removed->device_id);
  g_variant_dict_insert (&dict, "object-id", "s", removed->object_id);
  g_variant_dict_insert (&dict, "reason", "s", cause);
  mamd_engine_op_event (op, "server-removed", failed->server_id, failed->id,
                        g_variant_dict_end (&dict));
  mamd_store_txn_put_removed_server (op->txn, removed);
  g_hash_table_replace (self->removed,
                        mamd_engine_removed_key (removed->server_id, removed->device_id,
                                                 removed->owner_uid),
                        mamd_removed_server_record_copy (removed));

  wipe->id = mamd_random_id ();
  wipe->server_id = failed->server_id;
  wipe->device_id = g_strdup (failed->device_id);
  wipe->object_id = g_strdup (failed->object_id);
  wipe->session_id = g_strdup (failed->id);
  wipe->reason = g_strdup (cause);
  wipe->created = now;
  wipe->owner_uid = failed->owner_uid;
  wipe->expires = now + (gint64) self->config->daemon->wipe_retention_days * 86400 *
                          G_USEC_PER_SEC;
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "wipe-id", "s", wipe->id);
  g_variant_dict_insert (&dict, "device-id", "s", wipe->device_id);
  g_variant_dict_insert (&dict, "object-id", "s", wipe->object_id);
  g_variant_dict_insert (&dict, "expires", "x", wipe->expires);
  g_variant_dict_insert (&dict, "reason", "s", cause);
  wipe->seq = mamd_engine_op_event (op, "wipe-requested", failed->server_id, failed->id,
                                    g_variant_dict_end (&dict));
  mamd_store_txn_put_wipe (op->txn, wipe);
  mamd_engine_op_emit_wipe (op, wipe, wipe->seq);
  stored = mamd_wipe_record_copy (wipe);
  g_hash_table_replace (self->wipes, stored->id, stored);
  return result_seq;
}

void
mamd_engine_report_enrollment_async (MamdEngine *self, const MamdCaller *caller,
                                     const char *session_id, MamdEnrollmentOutcome outcome,
                                     gint status_code, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  MamdSessionRecord *rec;
  MamdSessionState new_state;
  MamdEngineOp *op;
  const char *reason;
  guint64 seq;

  g_task_set_source_tag (task, mamd_engine_report_enrollment_async);
  rec = find_session (self, session_id, &error);
  if (rec == NULL || !caller_may_act (caller, rec, &error) ||
      !mamd_policy_check_status (outcome, status_code, &error) ||
      !mamd_policy_enrollment_transition (rec->state, rec->reason, rec->mam_required, outcome,
                                          &new_state, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }

  op = mamd_engine_op_new (self, task);
  reason = mamd_policy_enrollment_reason (rec->server_id, outcome, status_code);
  switch (outcome) {
  case MAMD_ENROLLMENT_SUCCESS:
    seq = change_session (self, op, rec, new_state, reason, "enrolled", status_code);
    mamd_engine_op_emit_session (op, MAMD_EMIT_SESSION_CHANGED, rec, NULL, seq);
    mamd_engine_op_emit_session (op, MAMD_EMIT_ENROLLED, rec, NULL, seq);
    break;
  case MAMD_ENROLLMENT_DECLINED:
    seq = change_session (self, op, rec, new_state, reason, "enrollment-declined",
                          status_code);
    mamd_engine_op_emit_session (op, MAMD_EMIT_SESSION_CHANGED, rec, NULL, seq);
    mamd_engine_op_emit_session (op, MAMD_EMIT_ENROLLMENT_DECLINED, rec, NULL, seq);
    break;
  case MAMD_ENROLLMENT_FAILED:
  default:
    seq = enrollment_failed (self, op, rec, reason, status_code);
    break;
  }
  op->result = result_new (op, rec, seq);
  mamd_engine_op_commit (op);
}

MamdEngineResult *
mamd_engine_report_enrollment_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- sign-out ---- */

void
mamd_engine_sign_out_async (MamdEngine *self, const MamdCaller *caller,
                            const char *session_id, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  MamdSessionRecord *rec;
  MamdEngineOp *op;
  guint64 seq;

  g_task_set_source_tag (task, mamd_engine_sign_out_async);
  rec = find_session (self, session_id, &error);
  if (rec == NULL || !caller_may_act (caller, rec, &error)) {
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  op = mamd_engine_op_new (self, task);
  seq = mamd_engine_op_event (op, "session-closed", rec->server_id, rec->id,
                              mamd_engine_session_detail (rec));
  mamd_store_txn_delete_session (op->txn, rec->id);
  mamd_engine_op_emit_session (op, MAMD_EMIT_SESSION_REMOVED, rec, NULL, seq);
  op->result = result_new (op, NULL, seq);
  id = g_strdup (rec->id);
  mamd_engine_session_remove (self, id);
  mamd_engine_op_commit (op);
}

MamdEngineResult *
mamd_engine_sign_out_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- re-adding a removed server ---- */

/* The removals of (server, device) @caller may undo: its own, and one whose
 * owner is unknown (an old store) only for an administrator; every uid's
 * for an administrator. */
static GPtrArray *
removals_to_undo (MamdEngine *self, const MamdCaller *caller, const char *server_id,
                  const char *device_id)
{
  GPtrArray *found = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->removed);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdRemovedServerRecord *removed = value;

    if (g_strcmp0 (removed->server_id, server_id) == 0 &&
        g_strcmp0 (removed->device_id, device_id) == 0 &&
        (caller->is_admin || removed->owner_uid == (gint64) caller->uid))
      g_ptr_array_add (found, removed);
  }
  return found;
}

/* The wipe the failure behind @removed requested, while it is pending: the
 * server's old data may still be on the device, and a client acting on the
 * wipe late would take the new data with it. A wipe or removal whose owner
 * is unknown (-1, from a store of schema 2) may be any uid's: it matches
 * every removal or wipe of its server and device. */
static const MamdWipeRecord *
pending_wipe_of (MamdEngine *self, const MamdRemovedServerRecord *removed)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->wipes);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    const MamdWipeRecord *wipe = value;

    if (g_strcmp0 (wipe->server_id, removed->server_id) == 0 &&
        (wipe->owner_uid == removed->owner_uid || wipe->owner_uid == -1 ||
         removed->owner_uid == -1) &&
        g_strcmp0 (wipe->device_id, removed->device_id) == 0)
      return wipe;
  }
  return NULL;
}

void
mamd_engine_readd_server_async (MamdEngine *self, const MamdCaller *caller,
                                const char *server_id, const char *device_id,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GPtrArray) undo = NULL;
  gboolean valid;
  MamdEngineOp *op;
  guint64 seq = 0;

  g_task_set_source_tag (task, mamd_engine_readd_server_async);
  valid = server_id != NULL && device_id != NULL && g_utf8_validate (server_id, -1, NULL) &&
          g_utf8_validate (device_id, -1, NULL);
  undo = valid ? removals_to_undo (self, caller, server_id, device_id) : g_ptr_array_new ();
  if (undo->len == 0) {
    g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_NOT_FOUND,
                             "server '%s' was not removed from device '%s'%s: there is "
                             "nothing to re-add; check both ids against the ServerRemoved "
                             "error of the refused sign-in",
                             valid ? server_id : "", valid ? device_id : "",
                             caller->is_admin ? "" : " for this uid's sessions");
    return;
  }
  for (guint i = 0; i < undo->len; i++) {
    const MamdWipeRecord *wipe = pending_wipe_of (self, g_ptr_array_index (undo, i));

    if (wipe != NULL) {
      /* one whose owner is unknown only an administrator may acknowledge */
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_STATE,
                               "the wipe of server %s's data on device '%s' is still "
                               "pending: the app must wipe that server's data and %s "
                               "wipe %s (AcknowledgeWipe, mamctl ack-wipe) before the "
                               "server is re-added",
                               wipe->server_id, wipe->device_id,
                               mamd_engine_caller_may_ack_wipe (self, caller, wipe)
                                 ? "acknowledge" : "an administrator acknowledge",
                               wipe->id);
      return;
    }
  }
  op = mamd_engine_op_new (self, task);
  for (guint i = 0; i < undo->len; i++) {
    MamdRemovedServerRecord *removed = g_ptr_array_index (undo, i);
    g_autofree char *key = mamd_engine_removed_key (removed->server_id, removed->device_id,
                                                    removed->owner_uid);
    GVariantDict dict;

    g_variant_dict_init (&dict, NULL);
    g_variant_dict_insert (&dict, "device-id", "s", removed->device_id);
    g_variant_dict_insert (&dict, "object-id", "s", removed->object_id);
    g_variant_dict_insert (&dict, "owner-uid", "x", removed->owner_uid);
    g_variant_dict_insert (&dict, "reason", "s", "server re-added to the device");
    g_variant_dict_insert (&dict, "uid", "u", caller->uid);
    seq = mamd_engine_op_event (op, "server-readded", removed->server_id, NULL,
                                g_variant_dict_end (&dict));
    mamd_store_txn_delete_removed_server (op->txn, removed->server_id, removed->device_id,
                                          removed->owner_uid);
    g_hash_table_remove (self->removed, key);
  }
  op->result = result_new (op, NULL, seq);
  mamd_engine_op_commit (op);
}

MamdEngineResult *
mamd_engine_readd_server_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- wipe acknowledgement ---- */

/* An administrator, or the uid whose session's enrollment failed: the
 * client app acting for that device. Not any uid with a session on a device
 * of that id: device ids are the callers' word. */
gboolean
mamd_engine_caller_may_ack_wipe (MamdEngine *self, const MamdCaller *caller,
                                 const MamdWipeRecord *wipe)
{
  return caller->is_admin || (gint64) caller->uid == wipe->owner_uid;
}

void
mamd_engine_ack_wipe_async (MamdEngine *self, const MamdCaller *caller, const char *wipe_id,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  MamdWipeRecord *wipe = NULL;
  MamdEngineOp *op;
  GVariantDict dict;
  guint64 seq;

  g_task_set_source_tag (task, mamd_engine_ack_wipe_async);
  if (wipe_id != NULL && mamd_id_is_valid (wipe_id))
    wipe = g_hash_table_lookup (self->wipes, wipe_id);
  if (wipe == NULL) {
    g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_NOT_FOUND,
                             "no pending wipe '%s': it was acknowledged or expired "
                             "(see mamctl wipes)",
                             wipe_id != NULL && mamd_id_is_valid (wipe_id) ? wipe_id : "");
    return;
  }
  if (!mamd_engine_caller_may_ack_wipe (self, caller, wipe)) {
    g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_ACCESS_DENIED,
                             "wipe %s is for another uid's session than uid %u's: only "
                             "the device's client or an administrator may acknowledge it",
                             wipe->id, caller->uid);
    return;
  }
  op = mamd_engine_op_new (self, task);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "wipe-id", "s", wipe->id);
  g_variant_dict_insert (&dict, "device-id", "s", wipe->device_id);
  g_variant_dict_insert (&dict, "object-id", "s", wipe->object_id);
  g_variant_dict_insert (&dict, "uid", "u", caller->uid);
  seq = mamd_engine_op_event (op, "wipe-acknowledged", wipe->server_id, wipe->session_id,
                              g_variant_dict_end (&dict));
  mamd_store_txn_delete_wipe (op->txn, wipe->id);
  g_hash_table_remove (self->wipes, wipe->id);
  op->result = result_new (op, NULL, seq);
  mamd_engine_op_commit (op);
}

MamdEngineResult *
mamd_engine_ack_wipe_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- access ---- */

gboolean
mamd_engine_check_access (MamdEngine *self, const MamdCaller *caller, const char *session_id,
                          gboolean *allowed, MamdSessionState *state, char **reason,
                          GError **error)
{
  const MamdSessionRecord *rec = find_session (self, session_id, error);
  MamdEngineServer *srv;
  const char *why = NULL;
  gboolean ok;

  if (rec == NULL || !caller_may_act (caller, rec, error))
    return FALSE;
  srv = mamd_engine_lookup_server (self, rec->server_id);
  ok = mamd_policy_access (rec->state, rec->reason, rec->mam_required,
                           srv != NULL && srv->gate_open,
                           srv != NULL ? srv->gate_reason : "the server is no longer configured",
                           &why);
  if (allowed != NULL)
    *allowed = ok;
  if (state != NULL)
    *state = rec->state;
  if (reason != NULL)
    *reason = g_strdup (why);
  return TRUE;
}
