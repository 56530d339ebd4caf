#include "config.h"

#include "mamd-engine-private.h"

/*
 * Directory sync: plugins with CAP_DIRECTORY_SYNC list a server's users so
 * they exist before their first mobile sign-in (SAML users must already
 * exist) and identity drift is caught between sign-ins.
 */

typedef struct {
  char *server_id;
  guint64 epoch;       /* of the server when the plugin started */
  MamdPlugin *plugin;  /* ref */
  GObject *config;     /* ref */
  GPtrArray *identities; /* result, NULL on failure */
} SyncJob;

typedef struct {
  GPtrArray *jobs;     /* SyncJob */
  guint n_left;
  GError *error;       /* first failure */
} SyncData;

static void
sync_job_free (gpointer data)
{
  SyncJob *job = data;

  g_free (job->server_id);
  g_clear_object (&job->plugin);
  g_clear_object (&job->config);
  g_clear_pointer (&job->identities, g_ptr_array_unref);
  g_free (job);
}

static void
sync_data_free (gpointer data)
{
  SyncData *sd = data;

  g_ptr_array_unref (sd->jobs);
  g_clear_error (&sd->error);
  g_free (sd);
}

static void
add_jobs (MamdEngine *self, MamdEngineServer *srv, GPtrArray *jobs)
{
  const MamdServerConfig *sc = srv->config;

  for (guint i = 0; sc->plugin_groups != NULL && sc->plugin_groups[i] != NULL; i++) {
    const char *method = g_intern_string (sc->plugin_groups[i]);
    MamdPlugin *plugin = mamd_plugin_loader_lookup (self->plugins, method);
    GObject *config = g_hash_table_lookup (srv->plugin_configs, method);
    SyncJob *job;

    if (plugin == NULL || config == NULL ||
        (mamd_plugin_get_capabilities (plugin) & MAMD_PLUGIN_CAP_DIRECTORY_SYNC) == 0)
      continue;
    job = g_new0 (SyncJob, 1);
    job->server_id = g_strdup (sc->id);
    job->epoch = srv->epoch;
    job->plugin = g_object_ref (plugin);
    job->config = g_object_ref (config);
    g_ptr_array_add (jobs, job);
  }
}

/* Nothing is provisioned under settings that no longer hold: a listing
 * made while the server's file changed (or the server went) is dropped,
 * and the sync fails with Busy. */
static void
drop_if_stale (MamdEngine *self, SyncJob *job, SyncData *sd)
{
  MamdEngineServer *srv = mamd_engine_lookup_server (self, job->server_id);

  if (job->identities == NULL || (srv != NULL && srv->epoch == job->epoch))
    return;
  g_message ("directory sync of server %s through %s discarded: the server's configuration "
             "changed while it ran",
             job->server_id, mamd_plugin_get_method (job->plugin));
  g_clear_pointer (&job->identities, g_ptr_array_unref);
  if (sd->error == NULL)
    sd->error = g_error_new (MAMD_ERROR, MAMD_ERROR_BUSY,
                             "the configuration of server %s changed while directory sync "
                             "ran, so its listing was discarded: run sync again",
                             job->server_id);
}

/* Upserts the users of one finished job and records one event for it. */
static void
apply_job (MamdEngine *self, SyncJob *job, MamdEngineOp *op)
{
  MamdEngineServer *srv = mamd_engine_lookup_server (self, job->server_id);
  const char *method = mamd_plugin_get_method (job->plugin);
  guint added = 0, skipped = 0, total = 0;
  GVariantDict dict;

  if (srv == NULL || job->identities == NULL)
    return;
  if (srv->config->auth_service == NULL) {
    g_message ("directory sync of server %s through %s ignored: the server has no "
               "AuthService to provision users for",
               job->server_id, method);
    return;
  }
  for (guint i = 0; i < job->identities->len; i++) {
    const MamdIdentity *identity = g_ptr_array_index (job->identities, i);
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

static void
sync_finish_all (GTask *task)
{
  MamdEngine *self = g_task_get_source_object (task);
  SyncData *sd = g_task_get_task_data (task);
  MamdEngineOp *op;

  for (guint i = 0; i < sd->jobs->len; i++)
    drop_if_stale (self, g_ptr_array_index (sd->jobs, i), sd);
  op = mamd_engine_op_new (self, sd->error == NULL ? task : NULL);
  for (guint i = 0; i < sd->jobs->len; i++)
    apply_job (self, g_ptr_array_index (sd->jobs, i), op);
  mamd_engine_op_commit (op);
  /* what did sync is saved either way; the caller still learns of the failure */
  if (sd->error != NULL)
    g_task_return_error (task, g_steal_pointer (&sd->error));
}

static void
job_done (GTask *task, SyncJob *job, GPtrArray *identities, GError *error)
{
  SyncData *sd = g_task_get_task_data (task);

  job->identities = identities;
  if (error != NULL) {
    g_warning ("directory sync of server %s through %s failed: %s", job->server_id,
               mamd_plugin_get_method (job->plugin), error->message);
    if (sd->error == NULL)
      sd->error = g_error_copy (error);
  }
  if (--sd->n_left == 0)
    sync_finish_all (task);
}

typedef struct {
  GTask *task; /* ref */
  SyncJob *job;
} JobCall;

static void
job_call_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  JobCall *call = user_data;
  g_autoptr(GTask) task = call->task;
  g_autoptr(GError) error = NULL;
  GPtrArray *identities;

  identities = mamd_plugin_sync_finish (MAMD_PLUGIN (source), res, &error);
  job_done (task, call->job, identities, error);
  g_free (call);
}

void
mamd_engine_sync_directory_async (MamdEngine *self, const char *server_id,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  SyncData *sd = g_new0 (SyncData, 1);

  g_task_set_source_tag (task, mamd_engine_sync_directory_async);
  sd->jobs = g_ptr_array_new_with_free_func (sync_job_free);
  g_task_set_task_data (task, sd, sync_data_free);

  if (server_id != NULL) {
    MamdEngineServer *srv = mamd_engine_lookup_server (self, server_id);

    if (srv == NULL) {
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_NOT_FOUND,
                               "no server '%s' is configured (see mamctl servers)",
                               g_utf8_validate (server_id, -1, NULL) ? server_id : "");
      return;
    }
    add_jobs (self, srv, sd->jobs);
  } else if (self->servers != NULL) {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, self->servers);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      add_jobs (self, value, sd->jobs);
  }
  if (sd->jobs->len == 0) {
    g_task_return_boolean (task, TRUE);
    return;
  }
  sd->n_left = sd->jobs->len;
  for (guint i = 0; i < sd->jobs->len; i++) {
    SyncJob *job = g_ptr_array_index (sd->jobs, i);
    JobCall *call = g_new0 (JobCall, 1);

    call->task = g_object_ref (task);
    call->job = job;
    mamd_plugin_sync_async (job->plugin, job->config, cancellable, job_call_cb, call);
  }
}

gboolean
mamd_engine_sync_directory_finish (MamdEngine *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
