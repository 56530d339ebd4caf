#include "config.h"

#include "mamd-engine-private.h"

/*
 * Directory sync: plugins with CAP_DIRECTORY_SYNC list a server's users so
 * they exist before their first mobile sign-in (SAML users must already
 * exist) and identity drift is caught between sign-ins.
 */

/* One plugin listing one server's users; applied on its own when it
 * finishes, so a slow or hung plugin holds back no other listing. */
typedef struct {
  GTask *task;         /* the request's, ref */
  char *server_id;
  char *key;           /* in the engine's syncing table while the plugin runs */
  guint64 epoch;       /* of the server when the plugin started */
  MamdPlugin *plugin;  /* ref */
  GObject *config;     /* ref */
  MamdEngineDeadline deadline; /* DirectorySyncTimeout */
  gint64 started;      /* monotonic, µs */
} SyncJob;

typedef struct {
  gboolean background; /* the timer's: nobody waits for the result */
  guint n_left;        /* jobs not finished */
  GError *error;       /* first failure */
} SyncData;

static void
sync_job_free (SyncJob *job)
{
  mamd_engine_deadline_clear (&job->deadline);
  g_clear_object (&job->task);
  g_free (job->server_id);
  g_free (job->key);
  g_clear_object (&job->plugin);
  g_clear_object (&job->config);
  g_free (job);
}

static void
sync_data_free (gpointer data)
{
  SyncData *sd = data;

  g_clear_error (&sd->error);
  g_free (sd);
}

static void
sync_fail (SyncData *sd, GError *error)
{
  if (sd->error == NULL)
    sd->error = error;
  else
    g_error_free (error);
}

/* The request's jobs: one per plugin group of @srv whose plugin syncs. A
 * (server, plugin) pair whose previous sync still runs is not started
 * twice: a timer tick skips it, a caller is told it is Busy. */
static void
add_jobs (MamdEngine *self, MamdEngineServer *srv, GTask *task, GPtrArray *jobs)
{
  const MamdServerConfig *sc = srv->config;
  SyncData *sd = g_task_get_task_data (task);

  for (guint i = 0; sc->plugin_groups != NULL && sc->plugin_groups[i] != NULL; i++) {
    const char *method = g_intern_string (sc->plugin_groups[i]);
    MamdPlugin *plugin = mamd_plugin_loader_lookup (self->plugins, method);
    GObject *config = g_hash_table_lookup (srv->plugin_configs, method);
    g_autofree char *key = NULL;
    const SyncJob *running;
    SyncJob *job;

    if (plugin == NULL || config == NULL ||
        (mamd_plugin_get_capabilities (plugin) & MAMD_PLUGIN_CAP_DIRECTORY_SYNC) == 0)
      continue;
    key = g_strdup_printf ("%s\x1f%s", sc->id, method);
    running = g_hash_table_lookup (self->syncing, key);
    if (running != NULL) {
      gint64 ago = (g_get_monotonic_time () - running->started) / G_USEC_PER_SEC;

      if (sd->background)
        g_message ("directory sync of server %s through %s not started: the one started "
                   "%" G_GINT64_FORMAT " s ago still runs",
                   sc->id, method, ago);
      else
        sync_fail (sd, g_error_new (MAMD_ERROR, MAMD_ERROR_BUSY,
                                    "a directory sync of server %s through %s, started "
                                    "%" G_GINT64_FORMAT " s ago, still runs: wait for it "
                                    "(mamd gives up on it after DirectorySyncTimeout in "
                                    "mamd.conf), then run sync again",
                                    sc->id, method, ago));
      continue;
    }
    job = g_new0 (SyncJob, 1);
    job->task = g_object_ref (task);
    job->server_id = g_strdup (sc->id);
    job->key = g_steal_pointer (&key);
    job->epoch = srv->epoch;
    job->plugin = g_object_ref (plugin);
    job->config = g_object_ref (config);
    g_ptr_array_add (jobs, job);
  }
}

/* Nothing is provisioned under settings that no longer hold: a listing
 * made while the server's file changed (or the server went) is dropped,
 * and the sync fails with Busy. */
static gboolean
is_stale (MamdEngine *self, SyncJob *job, SyncData *sd)
{
  MamdEngineServer *srv = mamd_engine_lookup_server (self, job->server_id);

  if (srv != NULL && srv->epoch == job->epoch)
    return FALSE;
  g_message ("directory sync of server %s through %s discarded: the server's configuration "
             "changed while it ran",
             job->server_id, mamd_plugin_get_method (job->plugin));
  sync_fail (sd, g_error_new (MAMD_ERROR, MAMD_ERROR_BUSY,
                              "the configuration of server %s changed while directory sync "
                              "ran, so its listing was discarded: run sync again",
                              job->server_id));
  return TRUE;
}

/* Upserts the users of one finished job and records one event for it. */
static void
apply_job (MamdEngine *self, SyncJob *job, GPtrArray *identities, MamdEngineOp *op)
{
  MamdEngineServer *srv = mamd_engine_lookup_server (self, job->server_id);
  const char *method = mamd_plugin_get_method (job->plugin);
  guint added = 0, skipped = 0, total = 0;
  GVariantDict dict;

  if (srv->config->auth_service == NULL) {
    g_message ("directory sync of server %s through %s ignored: the server has no "
               "AuthService to provision users for",
               job->server_id, method);
    return;
  }
  for (guint i = 0; i < identities->len; i++) {
    const MamdIdentity *identity = g_ptr_array_index (identities, i);
    g_autoptr(MamdUserRecord) user = NULL;
    g_autofree char *key = NULL;

    if (g_strcmp0 (identity->tenant_id, srv->config->tenant_id) != 0) {
      g_warning ("directory sync of server %s through %s skipped objectId %s: its tenant "
                 "%s is not the server's TenantId",
                 job->server_id, method, identity->object_id, identity->tenant_id);
      skipped++;
      continue;
    }
    key = mamd_engine_user_key (srv->config->id, srv->config->auth_service,
                                identity->object_id);
    user = mamd_user_record_new ();
    user->server_id = g_intern_string (srv->config->id);
    user->auth_service = g_intern_string (srv->config->auth_service);
    user->object_id = g_strdup (identity->object_id);
    user->user_name = g_strdup (identity->user_name);
    user->created = mamd_engine_now (self);
    mamd_store_txn_put_user (op->txn, user);
    if (g_hash_table_add (self->users, g_steal_pointer (&key)))
      added++;
    total++;
  }
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "method", "s", method);
  g_variant_dict_insert (&dict, "auth-service", "s", srv->config->auth_service);
  g_variant_dict_insert (&dict, "users", "u", total);
  g_variant_dict_insert (&dict, "added", "u", added);
  g_variant_dict_insert (&dict, "skipped", "u", skipped);
  mamd_engine_op_event (op, "directory-synced", job->server_id, NULL,
                        g_variant_dict_end (&dict));
}

/* The request answers once every job's listing is durable (or the store
 * failed); what did sync is saved even when another job failed. */
static void
sync_committed (const GError *store_error, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  SyncData *sd = g_task_get_task_data (task);

  if (store_error != NULL)
    g_task_return_error (task, g_error_copy (store_error));
  else if (sd->error != NULL)
    g_task_return_error (task, g_steal_pointer (&sd->error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
job_call_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  SyncJob *job = user_data;
  MamdEngine *self = g_task_get_source_object (job->task);
  SyncData *sd = g_task_get_task_data (job->task);
  g_autoptr(GPtrArray) identities = NULL;
  g_autoptr(GError) error = NULL;

  g_hash_table_remove (self->syncing, job->key);
  identities = mamd_plugin_sync_finish (MAMD_PLUGIN (source), res, &error);
  if (error != NULL && job->deadline.timed_out) {
    g_clear_error (&error);
    g_set_error (&error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                 "plugin %s did not list the users of server %s within %u s "
                 "(DirectorySyncTimeout in mamd.conf), so mamd gave up: check the "
                 "directory it reads and its log lines",
                 mamd_plugin_get_method (job->plugin), job->server_id, job->deadline.seconds);
  }
  if (error != NULL) {
    g_warning ("directory sync of server %s through %s failed: %s", job->server_id,
               mamd_plugin_get_method (job->plugin), error->message);
    sync_fail (sd, g_steal_pointer (&error));
  } else if (!is_stale (self, job, sd)) {
    MamdEngineOp *op = mamd_engine_op_new (self, NULL);

    apply_job (self, job, identities, op);
    mamd_engine_op_commit (op);
  }
  if (--sd->n_left == 0)
    mamd_engine_when_committed (self, sync_committed, g_object_ref (job->task));
  sync_job_free (job);
}

void
mamd_engine_sync_directory_async (MamdEngine *self, const char *server_id,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GPtrArray) jobs = g_ptr_array_new ();
  SyncData *sd = g_new0 (SyncData, 1);

  g_task_set_source_tag (task, mamd_engine_sync_directory_async);
  /* what a finished listing provisioned is the answer's concern, not the
   * caller's cancellable: the jobs are cancelled with it */
  g_task_set_check_cancellable (task, FALSE);
  sd->background = callback == NULL;
  g_task_set_task_data (task, sd, sync_data_free);

  if (server_id != NULL) {
    MamdEngineServer *srv = mamd_engine_lookup_server (self, server_id);

    if (srv == NULL) {
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_NOT_FOUND,
                               "no server '%s' is configured (see mamctl servers)",
                               g_utf8_validate (server_id, -1, NULL) ? server_id : "");
      return;
    }
    add_jobs (self, srv, task, jobs);
  } else if (self->servers != NULL) {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, self->servers);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      add_jobs (self, value, task, jobs);
  }
  if (jobs->len == 0) {
    if (sd->error != NULL)
      g_task_return_error (task, g_steal_pointer (&sd->error));
    else
      g_task_return_boolean (task, TRUE);
    return;
  }
  sd->n_left = jobs->len;
  for (guint i = 0; i < jobs->len; i++) {
    SyncJob *job = g_ptr_array_index (jobs, i);

    job->started = g_get_monotonic_time ();
    g_hash_table_insert (self->syncing, g_strdup (job->key), job);
    mamd_engine_deadline_start (&job->deadline, cancellable,
                                self->config->daemon->sync_timeout);
    mamd_plugin_sync_async (job->plugin, job->config, job->deadline.cancellable, job_call_cb,
                            job);
  }
}

/* At a stop: gives up on every sync under way, whoever started it (its
 * plugin call answers Cancelled at once, from an idle), and waits for them,
 * so that no listing is applied after the last commit and no sync keeps
 * the engine alive. */
void
mamd_engine_stop_syncs (MamdEngine *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->syncing);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_cancellable_cancel (((SyncJob *) value)->deadline.cancellable);
  while (g_hash_table_size (self->syncing) > 0)
    g_main_context_iteration (NULL, TRUE);
}

gboolean
mamd_engine_sync_directory_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
