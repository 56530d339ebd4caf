#include "config.h"

#include "mamd-store-sqlite-private.h"

#include "mamd-plugin.h"

/*
 * The writer thread owns the writer connection and commits all queued txns
 * in one database transaction (group commit): with synchronous=FULL each
 * batch costs one fsync however many txns it holds. A commit is answered
 * only after its batch is durable, on the caller's main context.
 */

static const char *const writer_sql[N_STMTS] = {
  [STMT_BEGIN] = "BEGIN IMMEDIATE",
  [STMT_COMMIT] = "COMMIT",
  [STMT_ROLLBACK] = "ROLLBACK",
  [STMT_PUT_SESSION] =
    "INSERT OR REPLACE INTO sessions (id, server_id, method, object_id, tenant_id,"
    " user_name, device_id, platform, id_attribute, id_source, reason, owner_uid,"
    " state, mam_required, created, updated, seq)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
  [STMT_DELETE_SESSION] = "DELETE FROM sessions WHERE id = ?1",
  [STMT_PUT_USER] =
    "INSERT OR REPLACE INTO users (server_id, auth_service, object_id, user_name, created)"
    " VALUES (?1, ?2, ?3, ?4, ?5)",
  [STMT_PUT_REMOVED_SERVER] =
    "INSERT OR REPLACE INTO removed_servers (server_id, device_id, object_id, reason, removed,"
    " owner_uid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
  [STMT_DELETE_REMOVED_SERVER] =
    "DELETE FROM removed_servers WHERE server_id = ?1 AND device_id = ?2 AND owner_uid = ?3",
  [STMT_PUT_WIPE] =
    "INSERT OR REPLACE INTO wipes (id, server_id, device_id, object_id, session_id,"
    " reason, created, expires, seq, owner_uid)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
  [STMT_DELETE_WIPE] = "DELETE FROM wipes WHERE id = ?1",
  [STMT_APPEND_EVENT] =
    "INSERT INTO events (seq, time, type, server_id, session_id, decision_id, detail)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
  /* the highest seq outlives the events that pruning drops */
  [STMT_UPDATE_LAST_SEQ] =
    "INSERT INTO meta (key, value) SELECT 'last_seq', max(seq) FROM events WHERE true"
    " HAVING max(seq) IS NOT NULL"
    " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
  /* in seq order up to the first event that is new enough, so the log never
   * has holes (and needs no index on time: the scan stops there), and no
   * further than ?2 seqs past the oldest, so that a large backlog (after a
   * lower EventRetentionDays, say) goes in bounded steps and never holds
   * the writer, and every caller waiting on it, for seconds */
  [STMT_PRUNE_EVENTS] =
    "DELETE FROM events WHERE seq < coalesce("
    " (SELECT seq FROM events WHERE time >= ?1"
    "  AND seq < (SELECT min(seq) FROM events) + ?2 ORDER BY seq LIMIT 1),"
    " (SELECT min(seq) FROM events) + ?2)",
  [STMT_PUT_POLICY] =
    "INSERT OR REPLACE INTO policies (server_id, mam_applies, gate_open, reason)"
    " VALUES (?1, ?2, ?3, ?4)",
  [STMT_DELETE_POLICY] = "DELETE FROM policies WHERE server_id = ?1",
};

static void
bind_text (sqlite3_stmt *stmt, int index, const char *text)
{
  /* the statement is reset before the txn that owns @text is freed */
  if (text == NULL)
    sqlite3_bind_null (stmt, index);
  else
    sqlite3_bind_text (stmt, index, text, -1, SQLITE_STATIC);
}

static int
run_stmt (sqlite3_stmt *stmt)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int
apply_session (MamdStoreSqlite *self, const MamdSessionRecord *rec)
{
  sqlite3_stmt *stmt = self->stmts[STMT_PUT_SESSION];

  bind_text (stmt, 1, rec->id);
  bind_text (stmt, 2, rec->server_id);
  bind_text (stmt, 3, rec->method);
  bind_text (stmt, 4, rec->object_id);
  bind_text (stmt, 5, rec->tenant_id);
  bind_text (stmt, 6, rec->user_name);
  bind_text (stmt, 7, rec->device_id);
  bind_text (stmt, 8, rec->platform);
  bind_text (stmt, 9, rec->id_attribute);
  bind_text (stmt, 10, rec->id_source);
  bind_text (stmt, 11, rec->reason);
  sqlite3_bind_int64 (stmt, 12, rec->owner_uid);
  bind_text (stmt, 13, mamd_session_state_to_string (rec->state));
  sqlite3_bind_int (stmt, 14, rec->mam_required ? 1 : 0);
  sqlite3_bind_int64 (stmt, 15, rec->created);
  sqlite3_bind_int64 (stmt, 16, rec->updated);
  sqlite3_bind_int64 (stmt, 17, (sqlite3_int64) rec->seq);
  return run_stmt (stmt);
}

static int
apply_user (MamdStoreSqlite *self, const MamdUserRecord *rec)
{
  sqlite3_stmt *stmt = self->stmts[STMT_PUT_USER];

  bind_text (stmt, 1, rec->server_id);
  bind_text (stmt, 2, rec->auth_service);
  bind_text (stmt, 3, rec->object_id);
  bind_text (stmt, 4, rec->user_name);
  sqlite3_bind_int64 (stmt, 5, rec->created);
  return run_stmt (stmt);
}

static int
apply_removed_server (MamdStoreSqlite *self, const MamdRemovedServerRecord *rec)
{
  sqlite3_stmt *stmt = self->stmts[STMT_PUT_REMOVED_SERVER];

  bind_text (stmt, 1, rec->server_id);
  bind_text (stmt, 2, rec->device_id);
  bind_text (stmt, 3, rec->object_id);
  bind_text (stmt, 4, rec->reason);
  sqlite3_bind_int64 (stmt, 5, rec->removed);
  sqlite3_bind_int64 (stmt, 6, rec->owner_uid);
  return run_stmt (stmt);
}

static int
apply_wipe (MamdStoreSqlite *self, const MamdWipeRecord *rec)
{
  sqlite3_stmt *stmt = self->stmts[STMT_PUT_WIPE];

  bind_text (stmt, 1, rec->id);
  bind_text (stmt, 2, rec->server_id);
  bind_text (stmt, 3, rec->device_id);
  bind_text (stmt, 4, rec->object_id);
  bind_text (stmt, 5, rec->session_id);
  bind_text (stmt, 6, rec->reason);
  sqlite3_bind_int64 (stmt, 7, rec->created);
  sqlite3_bind_int64 (stmt, 8, rec->expires);
  sqlite3_bind_int64 (stmt, 9, (sqlite3_int64) rec->seq);
  sqlite3_bind_int64 (stmt, 10, rec->owner_uid);
  return run_stmt (stmt);
}

static int
apply_policy (MamdStoreSqlite *self, const MamdPolicyRecord *rec)
{
  sqlite3_stmt *stmt = self->stmts[STMT_PUT_POLICY];

  bind_text (stmt, 1, rec->server_id);
  sqlite3_bind_int (stmt, 2, rec->mam_applies ? 1 : 0);
  sqlite3_bind_int (stmt, 3, rec->gate_open ? 1 : 0);
  bind_text (stmt, 4, rec->reason);
  return run_stmt (stmt);
}

static int
apply_event (MamdStoreSqlite *self, const MamdEventRecord *rec)
{
  sqlite3_stmt *stmt = self->stmts[STMT_APPEND_EVENT];
  g_autoptr(GVariant) detail = rec->detail != NULL ? mamd_store_sqlite_detail_for_file (rec->detail) : NULL;

  sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) rec->seq);
  sqlite3_bind_int64 (stmt, 2, rec->time);
  bind_text (stmt, 3, rec->type);
  bind_text (stmt, 4, rec->server_id);
  bind_text (stmt, 5, rec->session_id);
  bind_text (stmt, 6, rec->decision_id);
  /* run_stmt resets the statement before @detail goes */
  if (detail != NULL)
    sqlite3_bind_blob64 (stmt, 7, g_variant_get_data (detail), g_variant_get_size (detail),
                         SQLITE_STATIC);
  else
    sqlite3_bind_null (stmt, 7);
  return run_stmt (stmt);
}

static int
apply_keys (sqlite3_stmt *stmt, const char *key1, const char *key2)
{
  bind_text (stmt, 1, key1);
  if (key2 != NULL)
    bind_text (stmt, 2, key2);
  return run_stmt (stmt);
}

static int
apply_op (MamdStoreSqlite *self, const MamdStoreOp *op)
{
  switch (op->kind) {
  case MAMD_STORE_OP_PUT_SESSION:
    return apply_session (self, op->record);
  case MAMD_STORE_OP_DELETE_SESSION:
    return apply_keys (self->stmts[STMT_DELETE_SESSION], op->key1, NULL);
  case MAMD_STORE_OP_PUT_USER:
    return apply_user (self, op->record);
  case MAMD_STORE_OP_PUT_REMOVED_SERVER:
    return apply_removed_server (self, op->record);
  case MAMD_STORE_OP_DELETE_REMOVED_SERVER:
    sqlite3_bind_int64 (self->stmts[STMT_DELETE_REMOVED_SERVER], 3, op->owner_uid);
    return apply_keys (self->stmts[STMT_DELETE_REMOVED_SERVER], op->key1, op->key2);
  case MAMD_STORE_OP_PUT_WIPE:
    return apply_wipe (self, op->record);
  case MAMD_STORE_OP_DELETE_WIPE:
    return apply_keys (self->stmts[STMT_DELETE_WIPE], op->key1, NULL);
  case MAMD_STORE_OP_APPEND_EVENT:
    return apply_event (self, op->record);
  case MAMD_STORE_OP_PRUNE_EVENTS: {
    int rc = run_stmt (self->stmts[STMT_UPDATE_LAST_SEQ]);

    if (rc != SQLITE_DONE)
      return rc;
    sqlite3_bind_int64 (self->stmts[STMT_PRUNE_EVENTS], 1, op->before);
    sqlite3_bind_int64 (self->stmts[STMT_PRUNE_EVENTS], 2, op->max_events);
    return run_stmt (self->stmts[STMT_PRUNE_EVENTS]);
  }
  case MAMD_STORE_OP_PUT_POLICY:
    return apply_policy (self, op->record);
  case MAMD_STORE_OP_DELETE_POLICY:
    return apply_keys (self->stmts[STMT_DELETE_POLICY], op->key1, NULL);
  default:
    return SQLITE_MISUSE;
  }
}

/* Another program holding a write lock (an administrator's sqlite3 shell,
 * say) is waited out, with a warning each time the busy timeout runs out,
 * instead of failing the batch and stopping mamd: nothing is written before
 * BEGIN succeeds, so trying again is safe, and no caller is answered
 * meanwhile. A stop waits too (the queued tasks keep the store alive), until
 * the service manager's stop timeout kills mamd; nothing acknowledged is
 * lost. */
static int
begin_batch (MamdStoreSqlite *self)
{
  for (guint64 tries = 1;; tries++) {
    int rc = run_stmt (self->stmts[STMT_BEGIN]);

    if (rc != SQLITE_BUSY)
      return rc;
    g_warning ("%s is locked by another program (for %" G_GUINT64_FORMAT " s now): "
               "changes wait, unanswered, until it lets go; only mamd may write it",
               self->db_path, tries * MAMD_STORE_SQLITE_BUSY_TIMEOUT_MS / 1000);
  }
}

/* Runs every txn of @batch in one database transaction. */
static gboolean
commit_batch (MamdStoreSqlite *self, GPtrArray *batch, GError **error)
{
  int rc = begin_batch (self);

  for (guint i = 0; rc == SQLITE_DONE && i < batch->len; i++) {
    MamdStoreTxn *txn = g_task_get_task_data (g_ptr_array_index (batch, i));
    guint n_ops = mamd_store_txn_get_n_ops (txn);

    for (guint j = 0; rc == SQLITE_DONE && j < n_ops; j++)
      rc = apply_op (self, mamd_store_txn_get_op (txn, j));
  }
  if (rc == SQLITE_DONE)
    rc = run_stmt (self->stmts[STMT_COMMIT]);
  if (rc == SQLITE_DONE)
    return TRUE;

  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "could not commit state to %s: %s: see the system log, fix the disk "
               "or file system and restart mamd",
               self->db_path, sqlite3_errmsg (self->db));
  if (!sqlite3_get_autocommit (self->db))
    run_stmt (self->stmts[STMT_ROLLBACK]);
  return FALSE;
}

typedef struct {
  GPtrArray *tasks; /* GTask, the writer's references, submission order */
  GError *error;
} Completion;

static void
completion_free (gpointer data)
{
  Completion *completion = data;

  g_ptr_array_unref (completion->tasks);
  g_clear_error (&completion->error);
  g_free (completion);
}

static gboolean
completion_cb (gpointer data)
{
  Completion *completion = data;

  for (guint i = 0; i < completion->tasks->len; i++) {
    GTask *task = g_ptr_array_index (completion->tasks, i);

    if (completion->error != NULL)
      g_task_return_error (task, g_error_copy (completion->error));
    else
      g_task_return_boolean (task, TRUE);
  }
  return G_SOURCE_REMOVE;
}

/* Hands the tasks of @batch (and the writer's references) back to their
 * main contexts, one source per run of tasks that share a context, so a
 * batch costs its context one wake-up. The writer never drops a task
 * reference itself: the last one may hold the last reference to the store,
 * whose dispose joins this thread. Sources of one priority run in the order
 * they were attached, so callbacks keep submission order. */
static void
complete_batch (GPtrArray *batch, const GError *error)
{
  for (guint start = 0; start < batch->len;) {
    GTask *first = g_ptr_array_index (batch, start);
    Completion *completion = g_new0 (Completion, 1);
    g_autoptr(GSource) source = g_idle_source_new ();
    guint end = start;

    completion->tasks = g_ptr_array_new_with_free_func (g_object_unref);
    for (; end < batch->len; end++) {
      GTask *task = g_ptr_array_index (batch, end);

      if (g_task_get_context (task) != g_task_get_context (first) ||
          g_task_get_priority (task) != g_task_get_priority (first))
        break;
      g_ptr_array_add (completion->tasks, task);
    }
    start = end;
    completion->error = error != NULL ? g_error_copy (error) : NULL;
    g_source_set_priority (source, g_task_get_priority (first));
    g_source_set_static_name (source, "[mamd] store commit");
    g_source_set_callback (source, completion_cb, completion, completion_free);
    g_source_attach (source, g_task_get_context (first));
  }
}

gpointer
mamd_store_sqlite_writer_thread (gpointer data)
{
  MamdStoreSqlite *self = data;

  for (;;) {
    g_autoptr(GPtrArray) batch = g_ptr_array_new ();
    g_autoptr(GError) error = NULL;
    gboolean ok;

    g_mutex_lock (&self->lock);
    while (g_queue_is_empty (&self->queue) && !self->stopping)
      g_cond_wait (&self->work_cond, &self->lock);
    if (g_queue_is_empty (&self->queue)) {
      g_mutex_unlock (&self->lock);
      return NULL;
    }
    while (!g_queue_is_empty (&self->queue))
      g_ptr_array_add (batch, g_queue_pop_head (&self->queue));
    /* Changes queued behind a failed commit were built on its state, which
     * the rollback took away: none of them may reach the disk. */
    if (self->broken != NULL)
      error = g_error_copy (self->broken);
    self->busy = TRUE;
    g_mutex_unlock (&self->lock);

    ok = error == NULL && commit_batch (self, batch, &error);

    g_mutex_lock (&self->lock);
    /* every later commit fails with this: the engine reports it */
    if (!ok && self->broken == NULL)
      self->broken = g_error_copy (error);
    self->busy = FALSE;
    g_cond_broadcast (&self->idle_cond);
    g_mutex_unlock (&self->lock);

    complete_batch (batch, error);
  }
}

void
mamd_store_sqlite_commit_async (MamdStore *store, MamdStoreTxn *txn,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  MamdStoreSqlite *self = MAMD_STORE_SQLITE (store);
  g_autoptr(GTask) task = g_task_new (self, NULL, callback, user_data);
  g_autoptr(GError) error = NULL;

  g_task_set_source_tag (task, mamd_store_sqlite_commit_async);
  g_task_set_task_data (task, txn, (GDestroyNotify) mamd_store_txn_free);

  g_mutex_lock (&self->lock);
  if (self->broken != NULL)
    error = g_error_copy (self->broken);
  else if (self->stopping)
    error = g_error_new (MAMD_ERROR, MAMD_ERROR_STORE,
                         "state store %s is closing: commit refused", self->db_path);
  else {
    g_queue_push_tail (&self->queue, g_object_ref (task));
    /* a busy writer takes the whole queue when its batch is done */
    if (!self->busy)
      g_cond_signal (&self->work_cond);
  }
  g_mutex_unlock (&self->lock);

  if (error != NULL)
    g_task_return_error (task, g_steal_pointer (&error));
}

gboolean
mamd_store_sqlite_commit_finish (MamdStore *store, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, store), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
mamd_store_sqlite_flush (MamdStore *store, GError **error)
{
  MamdStoreSqlite *self = MAMD_STORE_SQLITE (store);
  gboolean ok;

  g_mutex_lock (&self->lock);
  while (!g_queue_is_empty (&self->queue) || self->busy)
    g_cond_wait (&self->idle_cond, &self->lock);
  ok = self->broken == NULL;
  if (!ok)
    g_propagate_error (error, g_error_copy (self->broken));
  g_mutex_unlock (&self->lock);
  return ok;
}

gboolean
mamd_store_sqlite_prepare_writer (MamdStoreSqlite *self, GError **error)
{
  for (guint i = 0; i < N_STMTS; i++) {
    if (sqlite3_prepare_v3 (self->db, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &self->stmts[i], NULL) != SQLITE_OK) {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                   "could not prepare state store %s: %s",
                   self->db_path, sqlite3_errmsg (self->db));
      return FALSE;
    }
  }
  return TRUE;
}

