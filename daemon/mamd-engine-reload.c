#include "config.h"

#include "mamd-config-plugins.h"
#include "mamd-engine-private.h"

/*
 * Configuration, licence and gates: start, reload, the licence expiry
 * timer and plugin "gate-changed" all end in the same re-evaluation, so
 * that MAM newly applying restricts every affected session at once.
 * Also background work: maintenance and directory sync.
 */

#define MAINTENANCE_INTERVAL_S 60
/* events pruned per maintenance at most: about 30 ms of the writer's time,
 * 1.2 million an hour */
#define PRUNE_MAX_EVENTS 20000
#define REVOKED_KEEP_US ((gint64) 24 * 3600 * G_USEC_PER_SEC)
#define DAY_US ((gint64) 86400 * G_USEC_PER_SEC)

typedef struct {
  MamdPlugin *plugin; /* ref */
  gulong handler;
} GateHandler;

void
mamd_engine_server_free (MamdEngineServer *srv)
{
  if (srv == NULL)
    return;
  g_clear_pointer (&srv->plugin_configs, g_hash_table_unref);
  g_free (srv->gate_reason);
  g_free (srv->unknown_group);
  g_free (srv);
}

static MamdEngineServer *
server_new (const MamdServerConfig *config)
{
  MamdEngineServer *srv = g_new0 (MamdEngineServer, 1);

  srv->config = config;
  srv->plugin_configs = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                               g_object_unref);
  srv->gate_code = MAMD_ERROR_FORBIDDEN;
  return srv;
}

static GHashTable *
servers_table_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                (GDestroyNotify) mamd_engine_server_free);
}

/* ---- gates ---- */

typedef struct {
  MamdPlugin *plugin;
  GObject *config;
} PluginGate;

static gboolean
plugin_gate_cb (gpointer user_data, GError **error)
{
  PluginGate *gate = user_data;

  return mamd_plugin_check_gate (gate->plugin, gate->config, error);
}

gboolean
mamd_engine_compute_gate (MamdEngine *self, MamdEngineServer *srv, GError **error)
{
  const MamdServerConfig *config = srv->config;
  MamdGateInput input = { 0 };
  PluginGate gate = { 0 };

  input.server = config;
  input.unknown_group = srv->unknown_group;
  input.license = self->license;
  input.license_reason = self->license_reason;
  input.now = mamd_engine_now (self) / G_USEC_PER_SEC;
  if (config->auth_service != NULL) {
    input.auth_entry = mamd_plugin_loader_lookup_entry (self->plugins, config->auth_service);
    gate.plugin = input.auth_entry != NULL ? input.auth_entry->plugin : NULL;
    gate.config = g_hash_table_lookup (srv->plugin_configs,
                                       g_intern_string (config->auth_service));
  }
  if (gate.plugin != NULL && gate.config != NULL) {
    input.plugin_gate = plugin_gate_cb;
    input.plugin_gate_data = &gate;
  }
  return mamd_policy_check_gate (&input, error);
}

static void
refresh_gate (MamdEngine *self, MamdEngineServer *srv)
{
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&srv->gate_reason, g_free);
  srv->gate_open = mamd_engine_compute_gate (self, srv, &error);
  srv->gate_code = srv->gate_open ? -1 : error->code;
  if (!srv->gate_open)
    srv->gate_reason = g_strdup (error->message);
}

/* Announces (event, then PolicyChanged once durable) and stores the policy
 * of @server_id when it differs from the one last announced; @now NULL:
 * the server left the configuration. */
static void
policy_update (MamdEngine *self, MamdEngineOp *op, const char *server_id,
               const MamdPolicyRecord *now)
{
  const MamdPolicyRecord *last = g_hash_table_lookup (self->policies, server_id);
  g_autofree char *gone = NULL;
  const char *reason;
  gboolean applies, open;
  GVariantDict dict;
  guint64 seq;

  if (now == NULL ? last == NULL : last != NULL && mamd_policy_record_equal (last, now))
    return; /* announced already */
  if (now != NULL) {
    applies = now->mam_applies;
    open = now->gate_open;
    reason = now->reason;
    mamd_store_txn_put_policy (op->txn, now);
    g_hash_table_replace (self->policies, (gpointer) now->server_id,
                          mamd_policy_record_copy (now));
  } else {
    applies = open = FALSE;
    reason = gone = g_strdup_printf ("server %s was removed from the configuration",
                                     server_id);
    mamd_store_txn_delete_policy (op->txn, server_id);
  }
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "mam-applies", "b", applies);
  g_variant_dict_insert (&dict, "gate-open", "b", open);
  g_variant_dict_insert (&dict, "reason", "s", reason);
  seq = mamd_engine_op_event (op, "policy-changed", server_id, NULL,
                              g_variant_dict_end (&dict));
  mamd_engine_op_emit_policy (op, server_id, applies, open, reason, seq);
  if (now == NULL)
    g_hash_table_remove (self->policies, server_id);
}

/* Refreshes every gate and announces each server whose policy moved since
 * it was last announced: by this change, or while mamd was stopped. */
static void
refresh_gates (MamdEngine *self, MamdEngineOp *op)
{
  const MamdConfig *config = self->config;
  g_autoptr(GPtrArray) gone = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  for (guint i = 0; i < config->servers->len; i++) {
    const MamdServerConfig *sc = g_ptr_array_index (config->servers, i);
    MamdEngineServer *srv = mamd_engine_lookup_server (self, sc->id);
    g_autofree char *open_reason = NULL;
    MamdPolicyRecord now = { 0 };

    refresh_gate (self, srv);
    now.server_id = g_intern_string (sc->id);
    now.mam_applies = sc->enable;
    now.gate_open = srv->gate_open;
    if (srv->gate_open)
      open_reason = g_strdup_printf ("Intune MAM applies to server %s: its gate is open", sc->id);
    now.reason = srv->gate_open ? open_reason : srv->gate_reason;
    policy_update (self, op, sc->id, &now);
  }
  g_hash_table_iter_init (&iter, self->policies);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (mamd_engine_lookup_server (self, key) == NULL)
      g_ptr_array_add (gone, key);
  for (guint i = 0; i < gone->len; i++)
    policy_update (self, op, g_ptr_array_index (gone, i), NULL);
}

/* ---- session re-evaluation ---- */

static const char *
reevaluated_event (MamdSessionState state)
{
  switch (state) {
  case MAMD_SESSION_STATE_REVOKED:
    return "session-revoked";
  case MAMD_SESSION_STATE_ENROLLMENT_REQUIRED:
    return "enrollment-required";
  case MAMD_SESSION_STATE_ACTIVE:
    return "session-activated";
  default:
    return "session-updated";
  }
}

static void
reevaluate_sessions (MamdEngine *self, MamdEngineOp *op)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdSessionRecord *rec = value;
    MamdEngineServer *srv = mamd_engine_lookup_server (self, rec->server_id);
    MamdSessionState state;
    gboolean mam_required;
    const char *reason;
    gboolean state_changed;
    guint64 seq;

    if (!mamd_policy_reevaluate (rec, srv != NULL ? srv->config : NULL, &state,
                                 &mam_required, &reason))
      continue;
    state_changed = state != rec->state;
    mamd_engine_session_set_state (self, rec, state);
    rec->mam_required = mam_required;
    rec->reason = reason;
    rec->updated = mamd_engine_now (self);
    seq = mamd_engine_op_event (op, state_changed ? reevaluated_event (state) : "session-updated",
                                rec->server_id, rec->id, mamd_engine_session_detail (rec));
    rec->seq = seq;
    mamd_store_txn_put_session (op->txn, rec);
    mamd_engine_op_emit_session (op, MAMD_EMIT_SESSION_CHANGED, rec, NULL, seq);
    if (state_changed && state == MAMD_SESSION_STATE_REVOKED)
      mamd_engine_op_emit_session (op, MAMD_EMIT_SESSION_REVOKED, rec, reason, seq);
    else if (state_changed && state == MAMD_SESSION_STATE_ENROLLMENT_REQUIRED)
      mamd_engine_op_emit_session (op, MAMD_EMIT_ENROLLMENT_REQUIRED, rec, reason, seq);
  }
}

/* ---- loading ---- */

static char *
join_problems (GPtrArray *problems, const GError *error)
{
  g_autoptr(GString) text = g_string_new (NULL);

  for (guint i = 0; i < problems->len; i++) {
    if (i > 0)
      g_string_append_c (text, '\n');
    g_string_append (text, g_ptr_array_index (problems, i));
  }
  if (text->len == 0)
    g_string_append (text, error != NULL ? error->message : "the configuration is invalid");
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static void
load_license (const MamdDaemonConfig *daemon, MamdLicense **license, char **reason)
{
  g_autoptr(GError) error = NULL;

  *license = NULL;
  *reason = NULL;
  if (daemon->license_file == NULL || daemon->license_public_key == NULL) {
    *reason = g_strdup ("no licence is configured: set LicenseFile and LicensePublicKey "
                        "in [Daemon] of mamd.conf");
    return;
  }
  *license = mamd_license_load (daemon->license_file, daemon->license_public_key, &error);
  if (*license == NULL)
    *reason = g_strdup (error->message);
}

/* Builds the server table for @config. Every plugin group is loaded again,
 * also for servers whose file did not change: a plugin reads files the
 * server file only names (a client secret), and a reload must re-read and
 * re-check them. activate_configs() lets plugins carry background work over. */
static GHashTable *
build_servers (MamdEngine *self, const MamdConfig *config, GPtrArray *problems)
{
  GHashTable *servers = servers_table_new ();

  for (guint i = 0; i < config->servers->len; i++) {
    const MamdServerConfig *sc = g_ptr_array_index (config->servers, i);
    MamdEngineServer *srv = server_new (sc);

    g_hash_table_insert (servers, sc->id, srv);
    /* shared with mamctl check; NULL: a disabled plugin's group is logged */
    srv->unknown_group = mamd_config_plugins_load (sc, self->plugins, srv->plugin_configs,
                                                   problems, NULL);
  }
  return servers;
}

static GHashTable *
plugin_config_set (GHashTable *servers)
{
  GHashTable *set = g_hash_table_new (g_direct_hash, g_direct_equal);
  GHashTableIter iter, piter;
  gpointer value, method, object;

  if (servers == NULL)
    return set;
  g_hash_table_iter_init (&iter, servers);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdEngineServer *srv = value;

    g_hash_table_iter_init (&piter, srv->plugin_configs);
    while (g_hash_table_iter_next (&piter, &method, &object))
      g_hash_table_insert (set, object, method);
  }
  return set;
}

/* Activates configs that became live, then deactivates those replaced: a
 * plugin sees a server's new config while the old one is still active, so
 * it can carry state over (shared key caches, the last permission check). */
static void
activate_configs (MamdEngine *self, GHashTable *old_servers, GHashTable *new_servers)
{
  g_autoptr(GHashTable) old_set = plugin_config_set (old_servers);
  g_autoptr(GHashTable) new_set = plugin_config_set (new_servers);
  GHashTableIter iter;
  gpointer object, method;

  g_hash_table_iter_init (&iter, new_set);
  while (g_hash_table_iter_next (&iter, &object, &method)) {
    MamdPlugin *plugin = mamd_plugin_loader_lookup (self->plugins, method);

    if (!g_hash_table_contains (old_set, object) && plugin != NULL)
      mamd_plugin_config_activate (plugin, object, TRUE);
  }
  g_hash_table_iter_init (&iter, old_set);
  while (g_hash_table_iter_next (&iter, &object, &method)) {
    MamdPlugin *plugin = mamd_plugin_loader_lookup (self->plugins, method);

    if (!g_hash_table_contains (new_set, object) && plugin != NULL)
      mamd_plugin_config_activate (plugin, object, FALSE);
  }
}

/* A server whose file is unchanged keeps its epoch, although its plugin
 * configs are loaded again: what a sign-in in flight was checked against
 * still holds. */
static void
carry_epochs (MamdEngine *self, GHashTable *old_servers, GHashTable *new_servers)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, new_servers);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdEngineServer *srv = value;
    MamdEngineServer *old = old_servers != NULL
                              ? g_hash_table_lookup (old_servers, srv->config->id) : NULL;

    if (old != NULL && mamd_server_config_equal (old->config, srv->config))
      srv->epoch = old->epoch;
    else
      srv->epoch = ++self->last_epoch;
  }
}

static gboolean
servers_changed (const MamdConfig *old_config, const MamdConfig *config)
{
  if (old_config == NULL || old_config->servers->len != config->servers->len)
    return TRUE;
  for (guint i = 0; i < config->servers->len; i++) {
    const MamdServerConfig *sc = g_ptr_array_index (config->servers, i);
    const MamdServerConfig *old = mamd_config_lookup_server (old_config, sc->id);

    if (old == NULL || !mamd_server_config_equal (old, sc))
      return TRUE;
  }
  return FALSE;
}

static void rearm_timers (MamdEngine *self);

gboolean
mamd_engine_load_all (MamdEngine *self, const char *config_dir, gboolean starting,
                      MamdEngineOp *op, GError **error)
{
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) local = NULL;
  g_autoptr(MamdConfig) config = NULL;
  g_autoptr(MamdLicense) license = NULL;
  g_autofree char *license_reason = NULL;
  g_autoptr(GHashTable) servers = NULL;
  g_autoptr(MamdConfig) old_config = NULL;
  g_autoptr(GHashTable) old_servers = NULL;
  gboolean changed;

  config = mamd_config_load (config_dir, problems, &local);
  if (config == NULL) {
    g_autofree char *text = join_problems (problems, local);

    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, text);
    return FALSE;
  }
  servers = build_servers (self, config, problems);
  if (problems->len > 0) {
    g_autofree char *text = join_problems (problems, NULL);

    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, text);
    return FALSE;
  }
  /* a licence failure is not a refusal: it closes the gates */
  load_license (config->daemon, &license, &license_reason);

  /* nothing below can fail: swap */
  changed = servers_changed (self->config, config);
  carry_epochs (self, self->servers, servers);
  activate_configs (self, self->servers, servers);
  old_servers = g_steal_pointer (&self->servers);
  old_config = g_steal_pointer (&self->config);
  self->servers = g_steal_pointer (&servers);
  self->config = g_steal_pointer (&config);
  self->config_serial++;
  g_clear_pointer (&self->license, mamd_license_free);
  g_free (self->license_reason);
  self->license = g_steal_pointer (&license);
  self->license_reason = g_steal_pointer (&license_reason);

  if (!starting && changed) {
    GVariantDict dict;

    g_variant_dict_init (&dict, NULL);
    g_variant_dict_insert (&dict, "servers", "u", self->config->servers->len);
    g_variant_dict_insert (&dict, "config-dir", "s", config_dir);
    mamd_engine_op_event (op, "config-reloaded", NULL, NULL, g_variant_dict_end (&dict));
  }
  refresh_gates (self, op);
  if (starting || changed)
    reevaluate_sessions (self, op);
  if (!starting)
    rearm_timers (self);
  return TRUE;
}

/* Same path as a reload with the same configuration: the licence may have
 * expired or a plugin's answer changed. */
void
mamd_engine_reevaluate_gates (MamdEngine *self)
{
  MamdEngineOp *op;

  if (self->config == NULL)
    return;
  op = mamd_engine_op_new (self, NULL);
  refresh_gates (self, op);
  mamd_engine_op_commit (op);
  rearm_timers (self);
}

void
mamd_engine_reload_async (MamdEngine *self, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  MamdEngineOp *op;

  g_task_set_source_tag (task, mamd_engine_reload_async);
  if (!self->started) {
    g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_STATE,
                             "the engine has not started: start it before reloading");
    return;
  }
  op = mamd_engine_op_new (self, task);
  if (mamd_engine_load_all (self, self->config_dir, FALSE, op, &error)) {
    mamd_engine_op_commit (op);
  } else {
    g_message ("reload refused, the configuration in force is unchanged: %s",
               error->message);
    g_clear_object (&op->task);
    mamd_engine_op_free (op);
    g_task_return_error (task, g_steal_pointer (&error));
  }
  /* applied or refused, what it read may have moved (the licence file with
   * mamd.conf, a directory behind a symlink): for whoever watches files */
  g_signal_emit_by_name (self, "reloaded");
}

gboolean
mamd_engine_reload_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- maintenance ---- */

void
mamd_engine_run_maintenance (MamdEngine *self, MamdEngineOp *op)
{
  gint64 now = mamd_engine_now (self);
  g_autoptr(GPtrArray) expired_wipes = g_ptr_array_new ();
  g_autoptr(GPtrArray) expired_sessions = g_ptr_array_new ();
  g_autoptr(GHashTable) wiped_sessions = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->wipes);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdWipeRecord *wipe = value;

    if (wipe->expires < now)
      g_ptr_array_add (expired_wipes, wipe);
  }
  for (guint i = 0; i < expired_wipes->len; i++) {
    MamdWipeRecord *wipe = g_ptr_array_index (expired_wipes, i);
    GVariantDict dict;

    g_warning ("wipe %s of server %s for device %s was never acknowledged and expired: "
               "the device may still hold the server's data",
               wipe->id, wipe->server_id, wipe->device_id);
    g_variant_dict_init (&dict, NULL);
    g_variant_dict_insert (&dict, "wipe-id", "s", wipe->id);
    g_variant_dict_insert (&dict, "device-id", "s", wipe->device_id);
    g_variant_dict_insert (&dict, "object-id", "s", wipe->object_id);
    g_variant_dict_insert (&dict, "reason", "s", "wipe expired unacknowledged");
    mamd_engine_op_event (op, "wipe-expired", wipe->server_id, wipe->session_id,
                          g_variant_dict_end (&dict));
    mamd_store_txn_delete_wipe (op->txn, wipe->id);
    g_hash_table_remove (self->wipes, wipe->id);
  }

  /* a revoked session stays while a wipe of its is pending, so that its
   * owner, the device's client, still gets the reason from CheckAccess */
  g_hash_table_iter_init (&iter, self->wipes);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdWipeRecord *wipe = value;

    if (wipe->session_id != NULL)
      g_hash_table_add (wiped_sessions, wipe->session_id);
  }
  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdSessionRecord *rec = value;

    if (rec->state == MAMD_SESSION_STATE_REVOKED && rec->updated < now - REVOKED_KEEP_US &&
        !g_hash_table_contains (wiped_sessions, rec->id))
      g_ptr_array_add (expired_sessions, rec);
  }
  for (guint i = 0; i < expired_sessions->len; i++) {
    MamdSessionRecord *rec = g_ptr_array_index (expired_sessions, i);
    g_autofree char *id = g_strdup (rec->id);

    mamd_engine_op_event (op, "session-expired", rec->server_id, rec->id,
                          mamd_engine_session_detail (rec));
    mamd_store_txn_delete_session (op->txn, id);
    mamd_engine_session_remove (self, id);
  }

  mamd_store_txn_prune_events (op->txn,
                               now - (gint64) self->config->daemon->event_retention_days * DAY_US,
                               PRUNE_MAX_EVENTS);
}

static gboolean
maintenance_cb (gpointer user_data)
{
  MamdEngine *self = user_data;
  MamdEngineOp *op = mamd_engine_op_new (self, NULL);

  mamd_engine_run_maintenance (self, op);
  mamd_engine_op_commit (op);
  return G_SOURCE_CONTINUE;
}

/* ---- timers ---- */

static gboolean
license_cb (gpointer user_data)
{
  MamdEngine *self = user_data;

  self->license_id = 0;
  mamd_engine_reevaluate_gates (self);
  return G_SOURCE_REMOVE;
}

static gboolean
sync_cb (gpointer user_data)
{
  mamd_engine_sync_directory_async (user_data, NULL, NULL, NULL, NULL);
  return G_SOURCE_CONTINUE;
}

static void
rearm_timers (MamdEngine *self)
{
  gint64 now_s = mamd_engine_now (self) / G_USEC_PER_SEC;
  gint64 next = self->license != NULL ? mamd_license_next_change (self->license, now_s) : 0;
  guint interval = self->config->daemon->directory_sync_interval;

  /* the gates are checked again when the licence becomes valid or expires */
  g_clear_handle_id (&self->license_id, g_source_remove);
  if (next > 0) {
    /* re-armed every minute at most: the licence's times are wall-clock
     * times, and the wall clock may jump while the timer's monotonic clock
     * stands still during a suspend; CheckAccess uses the gate this keeps */
    gint64 delay = MIN (next - now_s + 1, 60);

    self->license_id = g_timeout_add_seconds ((guint) delay, license_cb, self);
  }
  if (interval != self->sync_interval || (interval > 0 && self->sync_id == 0)) {
    g_clear_handle_id (&self->sync_id, g_source_remove);
    self->sync_interval = interval;
    if (interval > 0)
      self->sync_id = g_timeout_add_seconds (interval, sync_cb, self);
  }
}

void
mamd_engine_start_timers (MamdEngine *self)
{
  self->maintenance_id = g_timeout_add_seconds (MAINTENANCE_INTERVAL_S, maintenance_cb, self);
  self->sync_interval = 0;
  rearm_timers (self);
  if (self->sync_interval > 0)
    mamd_engine_sync_directory_async (self, NULL, NULL, NULL, NULL);
}

void
mamd_engine_stop_timers (MamdEngine *self)
{
  g_clear_handle_id (&self->maintenance_id, g_source_remove);
  g_clear_handle_id (&self->license_id, g_source_remove);
  g_clear_handle_id (&self->sync_id, g_source_remove);
  g_clear_handle_id (&self->gate_idle_id, g_source_remove);
}

/* ---- plugin gate changes ---- */

static gboolean
gate_idle_cb (gpointer user_data)
{
  MamdEngine *self = user_data;

  self->gate_idle_id = 0;
  mamd_engine_reevaluate_gates (self);
  return G_SOURCE_REMOVE;
}

static void
on_gate_changed (MamdPlugin *plugin, GObject *config, gpointer user_data)
{
  MamdEngine *self = user_data;

  /* coalesce bursts, and never re-enter the plugin from its own signal */
  if (self->gate_idle_id == 0)
    self->gate_idle_id = g_idle_add (gate_idle_cb, self);
}

void
mamd_engine_connect_plugins (MamdEngine *self)
{
  GPtrArray *entries = mamd_plugin_loader_get_entries (self->plugins);

  for (guint i = 0; entries != NULL && i < entries->len; i++) {
    const MamdPluginEntry *entry = g_ptr_array_index (entries, i);
    GateHandler *handler;

    if (entry->plugin == NULL)
      continue;
    handler = g_new0 (GateHandler, 1);
    handler->plugin = g_object_ref (entry->plugin);
    handler->handler = g_signal_connect (entry->plugin, "gate-changed",
                                         G_CALLBACK (on_gate_changed), self);
    g_ptr_array_add (self->gate_handlers, handler);
  }
}

void
mamd_engine_disconnect_plugins (MamdEngine *self)
{
  for (guint i = 0; self->gate_handlers != NULL && i < self->gate_handlers->len; i++) {
    GateHandler *handler = g_ptr_array_index (self->gate_handlers, i);

    g_clear_signal_handler (&handler->handler, handler->plugin);
    g_clear_object (&handler->plugin);
  }
  if (self->gate_handlers != NULL)
    g_ptr_array_set_size (self->gate_handlers, 0);
}

void
mamd_engine_release_servers (MamdEngine *self)
{
  activate_configs (self, self->servers, NULL);
  g_clear_pointer (&self->servers, g_hash_table_unref);
}
