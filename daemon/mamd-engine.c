#include "config.h"

#include "mamd-engine-private.h"

#include <string.h>

/*
 * The engine core: the GObject, the commit path (memory first, then the
 * store, then signals) and the views. Sign-in and enrollment live in
 * mamd-engine-session.c, reload, gates and background work in
 * mamd-engine-reload.c.
 */

enum {
  SIGNAL_ENROLLMENT_REQUIRED,
  SIGNAL_ENROLLMENT_DECLINED,
  SIGNAL_ENROLLED,
  SIGNAL_SESSION_REVOKED,
  SIGNAL_SESSION_CHANGED,
  SIGNAL_SESSION_REMOVED,
  SIGNAL_WIPE_REQUESTED,
  SIGNAL_POLICY_CHANGED,
  SIGNAL_FATAL,
  SIGNAL_RELOADED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (MamdEngine, mamd_engine, G_TYPE_OBJECT)

typedef struct {
  MamdEmitKind kind;
  MamdSessionRecord *session;
  MamdWipeRecord *wipe;
  char *text;
  char *server_id;
  gboolean flag;
  gboolean gate_open;
  guint64 seq;
} MamdEmit;

static void
mamd_emit_free (gpointer data)
{
  MamdEmit *emit = data;

  mamd_session_record_free (emit->session);
  mamd_wipe_record_free (emit->wipe);
  g_free (emit->text);
  g_free (emit->server_id);
  g_free (emit);
}

void
mamd_engine_result_free (MamdEngineResult *result)
{
  if (result == NULL)
    return;
  mamd_session_record_free (result->session);
  g_free (result->decision_id);
  g_free (result);
}

void
mamd_server_status_free (MamdServerStatus *status)
{
  if (status == NULL)
    return;
  g_free (status->gate_reason);
  g_clear_pointer (&status->findings, g_ptr_array_unref);
  g_free (status);
}

/* ---- clock ---- */

gint64
mamd_engine_now (MamdEngine *self)
{
  if (self->clock != NULL)
    return self->clock (self->clock_data);
  return g_get_real_time ();
}

static void
cancel_with_caller (GCancellable *caller_cancellable, gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
}

static gboolean
deadline_passed (gpointer data)
{
  MamdEngineDeadline *deadline = data;

  deadline->timeout_id = 0;
  deadline->timed_out = TRUE;
  g_cancellable_cancel (deadline->cancellable);
  return G_SOURCE_REMOVE;
}

void
mamd_engine_deadline_start (MamdEngineDeadline *deadline, GCancellable *caller_cancellable,
                            guint seconds)
{
  deadline->cancellable = g_cancellable_new ();
  if (caller_cancellable != NULL) {
    deadline->caller_cancellable = g_object_ref (caller_cancellable);
    deadline->caller_cancelled_id =
      g_cancellable_connect (caller_cancellable, G_CALLBACK (cancel_with_caller),
                             g_object_ref (deadline->cancellable), g_object_unref);
  }
  deadline->seconds = seconds;
  deadline->timeout_id = g_timeout_add_seconds (seconds, deadline_passed, deadline);
}

void
mamd_engine_deadline_clear (MamdEngineDeadline *deadline)
{
  g_clear_handle_id (&deadline->timeout_id, g_source_remove);
  /* not g_cancellable_disconnect(), which deadlocks within the emission */
  if (deadline->caller_cancelled_id != 0)
    g_signal_handler_disconnect (deadline->caller_cancellable, deadline->caller_cancelled_id);
  deadline->caller_cancelled_id = 0;
  g_clear_object (&deadline->caller_cancellable);
  g_clear_object (&deadline->cancellable);
}

void
mamd_engine_set_clock (MamdEngine *self, MamdEngineClock clock, gpointer user_data)
{
  self->clock = clock;
  self->clock_data = user_data;
}

/* ---- keys ---- */

char *
mamd_engine_user_key (const char *server_id, const char *method, const char *object_id)
{
  return g_strconcat (server_id, "\x1f", method, "\x1f", object_id, NULL);
}

char *
mamd_engine_removed_key (const char *server_id, const char *device_id, gint64 owner_uid)
{
  return g_strdup_printf ("%s\x1f%s\x1f%" G_GINT64_FORMAT, server_id, device_id, owner_uid);
}

/* ---- sessions and per-uid counts ---- */

static void
uid_count_add (MamdEngine *self, guint32 uid, gint delta)
{
  gpointer key = GUINT_TO_POINTER (uid);
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->uid_counts, key));

  if (delta < 0 && count == 0)
    return;
  count = (guint) ((gint) count + delta);
  if (count == 0)
    g_hash_table_remove (self->uid_counts, key);
  else
    g_hash_table_insert (self->uid_counts, key, GUINT_TO_POINTER (count));
}

void
mamd_engine_session_insert (MamdEngine *self, MamdSessionRecord *rec)
{
  if (rec->state != MAMD_SESSION_STATE_REVOKED)
    uid_count_add (self, rec->owner_uid, 1);
  g_hash_table_replace (self->sessions, rec->id, rec);
}

void
mamd_engine_session_remove (MamdEngine *self, const char *session_id)
{
  MamdSessionRecord *rec = g_hash_table_lookup (self->sessions, session_id);

  if (rec == NULL)
    return;
  if (rec->state != MAMD_SESSION_STATE_REVOKED)
    uid_count_add (self, rec->owner_uid, -1);
  g_hash_table_remove (self->sessions, session_id);
}

void
mamd_engine_session_set_state (MamdEngine *self, MamdSessionRecord *rec,
                               MamdSessionState state)
{
  gboolean was_live = rec->state != MAMD_SESSION_STATE_REVOKED;
  gboolean is_live = state != MAMD_SESSION_STATE_REVOKED;

  if (was_live && !is_live)
    uid_count_add (self, rec->owner_uid, -1);
  else if (!was_live && is_live)
    uid_count_add (self, rec->owner_uid, 1);
  rec->state = state;
}

MamdEngineServer *
mamd_engine_lookup_server (MamdEngine *self, const char *server_id)
{
  if (server_id == NULL || self->servers == NULL)
    return NULL;
  return g_hash_table_lookup (self->servers, server_id);
}

/* ---- operations and the commit path ---- */

MamdEngineOp *
mamd_engine_op_new (MamdEngine *self, GTask *task)
{
  MamdEngineOp *op = g_new0 (MamdEngineOp, 1);

  op->engine = g_object_ref (self);
  op->txn = mamd_store_txn_new ();
  op->decision_id = mamd_random_id ();
  op->emits = g_ptr_array_new_with_free_func (mamd_emit_free);
  op->events = g_ptr_array_new_with_free_func ((GDestroyNotify) mamd_event_record_free);
  op->task = task != NULL ? g_object_ref (task) : NULL;
  return op;
}

void
mamd_engine_op_free (MamdEngineOp *op)
{
  g_clear_pointer (&op->txn, mamd_store_txn_free);
  g_free (op->decision_id);
  g_ptr_array_unref (op->emits);
  g_ptr_array_unref (op->events);
  g_clear_object (&op->task);
  mamd_engine_result_free (op->result);
  g_object_unref (op->engine);
  g_free (op);
}

static void
audit_log (const MamdEventRecord *event)
{
  const char *summary = NULL;
  char seq[24];
  g_autofree char *message = NULL;

  g_variant_lookup (event->detail, "reason", "&s", &summary);
  g_snprintf (seq, sizeof seq, "%" G_GUINT64_FORMAT, event->seq);
  message = g_strconcat ("event ", event->type, " #", seq,
                         event->server_id != NULL ? " server " : "",
                         event->server_id != NULL ? event->server_id : "",
                         event->session_id != NULL ? " session " : "",
                         event->session_id != NULL ? event->session_id : "", ": ",
                         summary != NULL ? summary : "recorded", NULL);
  const GLogField fields[] = {
    { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
    { "PRIORITY", "5", -1 },
    { "MESSAGE", message, -1 },
    { "MAMD_EVENT", event->type, -1 },
    { "MAMD_SESSION", event->session_id != NULL ? event->session_id : "", -1 },
    { "MAMD_SERVER", event->server_id != NULL ? event->server_id : "", -1 },
    { "MAMD_SEQ", seq, -1 },
    { "MAMD_DECISION", event->decision_id != NULL ? event->decision_id : "", -1 },
  };

  g_log_structured_array (G_LOG_LEVEL_MESSAGE, fields, G_N_ELEMENTS (fields));
}

guint64
mamd_engine_op_event (MamdEngineOp *op, const char *type, const char *server_id,
                      const char *session_id, GVariant *detail)
{
  MamdEngine *self = op->engine;
  MamdEventRecord *event = mamd_event_record_new ();

  event->seq = self->next_seq++;
  event->time = mamd_engine_now (self);
  event->type = g_strdup (type);
  event->server_id = g_strdup (server_id);
  event->session_id = g_strdup (session_id);
  event->decision_id = g_strdup (op->decision_id);
  if (detail == NULL)
    detail = g_variant_new ("a{sv}", NULL);
  event->detail = g_variant_ref_sink (detail);
  /* serialised now: built with g_variant_new the detail of a session is a
   * tree of some 40 allocations (4-5 KB), serialised one buffer of 300
   * bytes, and a reload may hold 100,000 of them until they are committed */
  (void) g_variant_get_data (event->detail);
  mamd_store_txn_append_event (op->txn, event);
  g_ptr_array_add (op->events, event);
  return event->seq;
}

GVariant *
mamd_engine_session_detail (const MamdSessionRecord *rec)
{
  GVariant *entries[9];
  gsize n = 0;

  entries[n++] = mamd_vardict_entry ("object-id", g_variant_new_string (rec->object_id));
  entries[n++] = mamd_vardict_entry ("tenant-id", g_variant_new_string (
                                       rec->tenant_id != NULL ? rec->tenant_id : ""));
  entries[n++] = mamd_vardict_entry ("device-id", g_variant_new_string (rec->device_id));
  entries[n++] = mamd_vardict_entry ("platform", g_variant_new_string (rec->platform));
  entries[n++] = mamd_vardict_entry ("method", g_variant_new_string (rec->method));
  entries[n++] = mamd_vardict_entry ("state", g_variant_new_string (
                                       mamd_session_state_to_string (rec->state)));
  entries[n++] = mamd_vardict_entry ("mam-required", g_variant_new_boolean (rec->mam_required));
  entries[n++] = mamd_vardict_entry ("owner-uid", g_variant_new_uint32 (rec->owner_uid));
  if (rec->reason != NULL)
    entries[n++] = mamd_vardict_entry ("reason", g_variant_new_string (rec->reason));
  return g_variant_new_array (G_VARIANT_TYPE ("{sv}"), entries, n);
}

void
mamd_engine_op_emit_session (MamdEngineOp *op, MamdEmitKind kind, const MamdSessionRecord *rec,
                             const char *reason, guint64 seq)
{
  MamdEmit *emit = g_new0 (MamdEmit, 1);

  emit->kind = kind;
  if (kind == MAMD_EMIT_SESSION_REMOVED) {
    emit->text = g_strdup (rec->id);
  } else {
    emit->session = mamd_session_record_copy (rec);
    emit->text = g_strdup (reason);
  }
  emit->seq = seq;
  g_ptr_array_add (op->emits, emit);
}

void
mamd_engine_op_emit_wipe (MamdEngineOp *op, const MamdWipeRecord *wipe, guint64 seq)
{
  MamdEmit *emit = g_new0 (MamdEmit, 1);

  emit->kind = MAMD_EMIT_WIPE_REQUESTED;
  emit->wipe = mamd_wipe_record_copy (wipe);
  emit->seq = seq;
  g_ptr_array_add (op->emits, emit);
}

void
mamd_engine_op_emit_policy (MamdEngineOp *op, const char *server_id, gboolean mam_applies,
                            gboolean gate_open, const char *reason, guint64 seq)
{
  MamdEmit *emit = g_new0 (MamdEmit, 1);

  emit->kind = MAMD_EMIT_POLICY_CHANGED;
  emit->server_id = g_strdup (server_id);
  emit->text = g_strdup (reason != NULL ? reason : "");
  emit->flag = mam_applies;
  emit->gate_open = gate_open;
  emit->seq = seq;
  g_ptr_array_add (op->emits, emit);
}

static void
op_emit (MamdEngine *self, const MamdEmit *emit)
{
  switch (emit->kind) {
  case MAMD_EMIT_ENROLLMENT_REQUIRED:
    g_signal_emit (self, signals[SIGNAL_ENROLLMENT_REQUIRED], 0, emit->session,
                   emit->text != NULL ? emit->text : emit->session->reason, emit->seq);
    break;
  case MAMD_EMIT_ENROLLMENT_DECLINED:
    g_signal_emit (self, signals[SIGNAL_ENROLLMENT_DECLINED], 0, emit->session, emit->seq);
    break;
  case MAMD_EMIT_ENROLLED:
    g_signal_emit (self, signals[SIGNAL_ENROLLED], 0, emit->session, emit->seq);
    break;
  case MAMD_EMIT_SESSION_REVOKED:
    g_signal_emit (self, signals[SIGNAL_SESSION_REVOKED], 0, emit->session,
                   emit->text != NULL ? emit->text : emit->session->reason, emit->seq);
    break;
  case MAMD_EMIT_SESSION_CHANGED:
    g_signal_emit (self, signals[SIGNAL_SESSION_CHANGED], 0, emit->session);
    break;
  case MAMD_EMIT_SESSION_REMOVED:
    g_signal_emit (self, signals[SIGNAL_SESSION_REMOVED], 0, emit->text, emit->seq);
    break;
  case MAMD_EMIT_WIPE_REQUESTED:
    g_signal_emit (self, signals[SIGNAL_WIPE_REQUESTED], 0, emit->wipe, emit->seq);
    break;
  case MAMD_EMIT_POLICY_CHANGED:
    g_signal_emit (self, signals[SIGNAL_POLICY_CHANGED], 0, emit->server_id, emit->flag,
                   emit->gate_open, emit->text, emit->seq);
    break;
  default:
    break;
  }
}

static void
op_complete (MamdEngineOp *op)
{
  if (op->task == NULL)
    return;
  if (op->result != NULL)
    g_task_return_pointer (op->task, g_steal_pointer (&op->result),
                           (GDestroyNotify) mamd_engine_result_free);
  else
    g_task_return_boolean (op->task, TRUE);
}

/* Events logged plus signals emitted per main-loop iteration, about 5 ms:
 * a reload that restricts 100,000 sessions logs 100,000 events and emits
 * 200,000 signals, which took the main loop for 2 s in one go. */
#define DONE_SLICE 1024

/* Logs the op's events and emits its signals, at most *@budget of them, and
 * once all are out answers and frees the op: TRUE then. */
static gboolean
op_done_slice (MamdEngineOp *op, guint *budget)
{
  guint n_events = op->events->len;
  guint total = n_events + op->emits->len;

  for (; op->n_done < total && *budget > 0; op->n_done++, (*budget)--) {
    if (op->n_done < n_events)
      audit_log (g_ptr_array_index (op->events, op->n_done));
    else
      op_emit (op->engine, g_ptr_array_index (op->emits, op->n_done - n_events));
  }
  if (op->n_done < total)
    return FALSE;
  op_complete (op);
  mamd_engine_op_free (op);
  return TRUE;
}

static gboolean done_cb (gpointer user_data);

/* Finishes the committed ops in commit order, a slice per main-loop
 * iteration, so calls are answered in between; an op that fits in a slice
 * while nothing waits is finished at once, its signals just before its
 * answer. */
static void
run_done (MamdEngine *self)
{
  g_autoptr(MamdEngine) hold = g_object_ref (self); /* the last op may hold the last ref */
  guint budget = DONE_SLICE;
  MamdEngineOp *op;

  /* a task's callback may finish another op: it queues behind */
  if (self->running_done)
    return;
  self->running_done = TRUE;
  while (budget > 0 && (op = g_queue_peek_head (&self->done)) != NULL) {
    if (!op_done_slice (op, &budget))
      break;
    g_queue_pop_head (&self->done);
  }
  self->running_done = FALSE;
  if (!g_queue_is_empty (&self->done) && self->done_id == 0)
    self->done_id = g_idle_add_full (G_PRIORITY_DEFAULT, done_cb, self, NULL);
}

static gboolean
done_cb (gpointer user_data)
{
  MamdEngine *self = user_data;

  self->done_id = 0;
  run_done (self);
  return G_SOURCE_REMOVE;
}

/* The op's change is durable: log its events, emit its signals, answer. */
static void
op_done (MamdEngineOp *op)
{
  MamdEngine *self = op->engine;

  for (guint i = 0; i < op->events->len; i++) {
    const MamdEventRecord *event = g_ptr_array_index (op->events, i);

    self->committed_seq = MAX (self->committed_seq, event->seq);
  }
  g_queue_push_tail (&self->done, op);
  if (self->done_id == 0)
    run_done (self);
}

typedef struct {
  guint64 target; /* runs once n_completed reaches this */
  MamdEngineCommittedFunc func;
  gpointer user_data;
} CommittedWaiter;

/* Once the store failed, memory may be ahead of it for good. */
static void
run_committed_func (MamdEngine *self, MamdEngineCommittedFunc func, gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (self->fatal)
    error = g_error_new_literal (MAMD_ERROR, MAMD_ERROR_STORE,
                                 "the state store failed, so the answer could show a change "
                                 "that was not saved: restart mamd");
  func (error, user_data);
}

void
mamd_engine_when_committed (MamdEngine *self, MamdEngineCommittedFunc func, gpointer user_data)
{
  CommittedWaiter *waiter;

  if (self->n_completed == self->n_submitted) {
    run_committed_func (self, func, user_data);
    return;
  }
  waiter = g_new (CommittedWaiter, 1);
  waiter->target = self->n_submitted;
  waiter->func = func;
  waiter->user_data = user_data;
  g_queue_push_tail (&self->committed_waiters, waiter);
}

static void
run_committed_waiters (MamdEngine *self)
{
  CommittedWaiter *waiter;

  while ((waiter = g_queue_peek_head (&self->committed_waiters)) != NULL &&
         waiter->target <= self->n_completed) {
    g_queue_pop_head (&self->committed_waiters);
    run_committed_func (self, waiter->func, waiter->user_data);
    g_free (waiter);
  }
}

static void
op_commit_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  MamdEngineOp *op = user_data;
  g_autoptr(MamdEngine) self = g_object_ref (op->engine); /* the op may hold the last ref */
  g_autoptr(GError) error = NULL;

  self->n_completed++;
  if (!mamd_store_commit_finish (MAMD_STORE (source), res, &error)) {
    g_autoptr(GError) fatal = g_error_new (MAMD_ERROR, MAMD_ERROR_STORE,
                                           "the state store failed, the change was not "
                                           "saved: %s", error->message);
    if (!self->fatal) {
      self->fatal = TRUE;
      /* not g_critical: the daemon runs with fatal criticals in tests, and
       * must get to emit "fatal" and exit cleanly */
      g_warning ("state store failed, stopping: %s", error->message);
      g_signal_emit (self, signals[SIGNAL_FATAL], 0, fatal);
    }
    if (op->task != NULL)
      g_task_return_error (op->task, g_steal_pointer (&fatal));
    mamd_engine_op_free (op);
  } else {
    op_done (op);
  }
  run_committed_waiters (self);
}

static void
empty_op_committed (const GError *error, gpointer user_data)
{
  MamdEngineOp *op = user_data;

  if (error == NULL) {
    op_done (op);
    return;
  }
  if (op->task != NULL)
    g_task_return_error (op->task, g_error_copy (error));
  mamd_engine_op_free (op);
}

void
mamd_engine_op_commit (MamdEngineOp *op)
{
  MamdEngine *self = op->engine;

  if (self->fatal) {
    if (op->task != NULL)
      g_task_return_new_error (op->task, MAMD_ERROR, MAMD_ERROR_STORE,
                               "the state store failed earlier: restart mamd");
    mamd_engine_op_free (op);
    return;
  }
  if (mamd_store_txn_is_empty (op->txn)) {
    /* nothing to save, but no answer before what came earlier is saved */
    mamd_engine_when_committed (self, empty_op_committed, op);
    return;
  }
  self->n_submitted++;
  mamd_store_commit_async (self->store, g_steal_pointer (&op->txn), op_commit_cb, op);
}

/* ---- GObject ---- */

static void
mamd_engine_dispose (GObject *object)
{
  MamdEngine *self = MAMD_ENGINE (object);

  mamd_engine_stop_timers (self);
  mamd_engine_disconnect_plugins (self);
  mamd_engine_release_servers (self);
  G_OBJECT_CLASS (mamd_engine_parent_class)->dispose (object);
}

static void
mamd_engine_finalize (GObject *object)
{
  MamdEngine *self = MAMD_ENGINE (object);

  g_warn_if_fail (g_queue_is_empty (&self->committed_waiters)); /* pending ops hold refs */
  g_warn_if_fail (g_queue_is_empty (&self->done));
  g_clear_pointer (&self->sessions, g_hash_table_unref);
  g_clear_pointer (&self->uid_counts, g_hash_table_unref);
  g_clear_pointer (&self->users, g_hash_table_unref);
  g_clear_pointer (&self->removed, g_hash_table_unref);
  g_clear_pointer (&self->wipes, g_hash_table_unref);
  g_clear_pointer (&self->policies, g_hash_table_unref);
  g_clear_pointer (&self->gate_handlers, g_ptr_array_unref);
  g_clear_pointer (&self->syncing, g_hash_table_unref);
  g_clear_pointer (&self->config, mamd_config_free);
  g_clear_pointer (&self->license, mamd_license_free);
  g_free (self->license_reason);
  g_free (self->config_dir);
  g_clear_object (&self->store);
  g_clear_object (&self->plugins);
  G_OBJECT_CLASS (mamd_engine_parent_class)->finalize (object);
}

static void
mamd_engine_class_init (MamdEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = mamd_engine_dispose;
  object_class->finalize = mamd_engine_finalize;

  signals[SIGNAL_ENROLLMENT_REQUIRED] =
    g_signal_new ("enrollment-required", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_POINTER, G_TYPE_STRING,
                  G_TYPE_UINT64);
  signals[SIGNAL_ENROLLMENT_DECLINED] =
    g_signal_new ("enrollment-declined", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_POINTER, G_TYPE_UINT64);
  signals[SIGNAL_ENROLLED] =
    g_signal_new ("enrolled", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_POINTER, G_TYPE_UINT64);
  signals[SIGNAL_SESSION_REVOKED] =
    g_signal_new ("session-revoked", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_POINTER, G_TYPE_STRING,
                  G_TYPE_UINT64);
  signals[SIGNAL_SESSION_CHANGED] =
    g_signal_new ("session-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIGNAL_SESSION_REMOVED] =
    g_signal_new ("session-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_UINT64);
  signals[SIGNAL_WIPE_REQUESTED] =
    g_signal_new ("wipe-requested", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_POINTER, G_TYPE_UINT64);
  signals[SIGNAL_POLICY_CHANGED] =
    g_signal_new ("policy-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 5, G_TYPE_STRING, G_TYPE_BOOLEAN,
                  G_TYPE_BOOLEAN, G_TYPE_STRING, G_TYPE_UINT64);
  signals[SIGNAL_FATAL] =
    g_signal_new ("fatal", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  /* a reload ran, applied or refused */
  signals[SIGNAL_RELOADED] =
    g_signal_new ("reloaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
mamd_engine_init (MamdEngine *self)
{
  self->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) mamd_session_record_free);
  self->uid_counts = g_hash_table_new (g_direct_hash, g_direct_equal);
  self->users = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->removed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) mamd_removed_server_record_free);
  self->wipes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) mamd_wipe_record_free);
  self->policies = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) mamd_policy_record_free);
  self->gate_handlers = g_ptr_array_new_with_free_func (g_free);
  self->syncing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->next_seq = 1;
}

MamdEngine *
mamd_engine_new (MamdStore *store, MamdPluginLoader *plugins)
{
  MamdEngine *self = g_object_new (MAMD_TYPE_ENGINE, NULL);

  self->store = g_object_ref (store);
  self->plugins = g_object_ref (plugins);
  return self;
}

/* ---- start and shutdown ---- */

static void
load_snapshot (MamdEngine *self, MamdStoreSnapshot *snapshot)
{
  for (guint i = 0; i < snapshot->sessions->len; i++) {
    MamdSessionRecord *rec = g_ptr_array_index (snapshot->sessions, i);

    /* re-intern: the store may hand out its own strings */
    rec->server_id = g_intern_string (rec->server_id);
    rec->method = g_intern_string (rec->method);
    rec->tenant_id = g_intern_string (rec->tenant_id);
    rec->platform = g_intern_string (rec->platform);
    rec->id_attribute = g_intern_string (rec->id_attribute);
    rec->id_source = g_intern_string (rec->id_source);
    rec->reason = g_intern_string (rec->reason);
    mamd_engine_session_insert (self, mamd_session_record_copy (rec));
  }
  for (guint i = 0; i < snapshot->users->len; i++) {
    MamdUserRecord *rec = g_ptr_array_index (snapshot->users, i);

    g_hash_table_add (self->users,
                      mamd_engine_user_key (rec->server_id, rec->auth_service, rec->object_id));
  }
  for (guint i = 0; i < snapshot->removed_servers->len; i++) {
    MamdRemovedServerRecord *rec = g_ptr_array_index (snapshot->removed_servers, i);
    MamdRemovedServerRecord *copy = mamd_removed_server_record_copy (rec);

    copy->server_id = g_intern_string (copy->server_id);
    g_hash_table_replace (self->removed,
                          mamd_engine_removed_key (copy->server_id, copy->device_id,
                                                   copy->owner_uid),
                          copy);
  }
  for (guint i = 0; i < snapshot->wipes->len; i++) {
    MamdWipeRecord *copy = mamd_wipe_record_copy (g_ptr_array_index (snapshot->wipes, i));

    copy->server_id = g_intern_string (copy->server_id);
    g_hash_table_replace (self->wipes, copy->id, copy);
  }
  for (guint i = 0; i < snapshot->policies->len; i++) {
    MamdPolicyRecord *copy = mamd_policy_record_copy (g_ptr_array_index (snapshot->policies, i));

    copy->server_id = g_intern_string (copy->server_id);
    g_hash_table_replace (self->policies, (gpointer) copy->server_id, copy);
  }
  self->next_seq = snapshot->last_seq + 1;
  self->committed_seq = snapshot->last_seq;
}

gboolean
mamd_engine_start (MamdEngine *self, const char *config_dir, GError **error)
{
  g_autoptr(MamdStoreSnapshot) snapshot = NULL;
  MamdEngineOp *op;

  g_return_val_if_fail (MAMD_IS_ENGINE (self), FALSE);
  g_return_val_if_fail (!self->started, FALSE);

  snapshot = mamd_store_load (self->store, error);
  if (snapshot == NULL)
    return FALSE;
  load_snapshot (self, snapshot);

  op = mamd_engine_op_new (self, NULL);
  if (!mamd_engine_load_all (self, config_dir, TRUE, op, error)) {
    mamd_engine_op_free (op);
    return FALSE;
  }
  self->config_dir = g_strdup (config_dir);
  self->started = TRUE;
  mamd_engine_run_maintenance (self, op);
  mamd_engine_op_commit (op);
  mamd_engine_connect_plugins (self);
  mamd_engine_start_timers (self);
  return TRUE;
}

void
mamd_engine_announce_pending_wipes (MamdEngine *self)
{
  g_autoptr(GPtrArray) wipes = mamd_engine_list_wipes (self);

  for (guint i = 0; i < wipes->len; i++) {
    const MamdWipeRecord *wipe = g_ptr_array_index (wipes, i);

    g_signal_emit (self, signals[SIGNAL_WIPE_REQUESTED], 0, wipe, wipe->seq);
  }
}

gboolean
mamd_engine_shutdown (MamdEngine *self, GError **error)
{
  mamd_engine_stop_timers (self);
  mamd_engine_disconnect_plugins (self);
  mamd_engine_stop_syncs (self);
  if (!mamd_store_flush (self->store, error))
    return FALSE;
  /* the commits are durable; let their callbacks finish the callers' tasks */
  while (self->n_completed < self->n_submitted || !g_queue_is_empty (&self->done))
    g_main_context_iteration (NULL, TRUE);
  return TRUE;
}

/* ---- views ---- */

const MamdSessionRecord *
mamd_engine_lookup_session (MamdEngine *self, const char *session_id)
{
  if (session_id == NULL)
    return NULL;
  return g_hash_table_lookup (self->sessions, session_id);
}

static gint
compare_sessions (gconstpointer a, gconstpointer b)
{
  const MamdSessionRecord *sa = *(const MamdSessionRecord *const *) a;
  const MamdSessionRecord *sb = *(const MamdSessionRecord *const *) b;

  if (sa->created != sb->created)
    return sa->created < sb->created ? -1 : 1;
  return strcmp (sa->id, sb->id);
}

GPtrArray *
mamd_engine_list_sessions (MamdEngine *self, const char *server_id, gint64 after_created,
                           const char *after_id)
{
  GPtrArray *out = g_ptr_array_new ();
  MamdSessionRecord after = { 0 };
  const MamdSessionRecord *after_ptr = &after;
  GHashTableIter iter;
  gpointer value;

  after.created = after_created;
  after.id = (char *) after_id;
  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdSessionRecord *rec = value;

    if ((server_id == NULL || g_strcmp0 (rec->server_id, server_id) == 0) &&
        (after_id == NULL || compare_sessions (&rec, &after_ptr) > 0))
      g_ptr_array_add (out, rec);
  }
  g_ptr_array_sort (out, compare_sessions);
  return out;
}

static gint
compare_wipes (gconstpointer a, gconstpointer b)
{
  const MamdWipeRecord *wa = *(const MamdWipeRecord *const *) a;
  const MamdWipeRecord *wb = *(const MamdWipeRecord *const *) b;

  return wa->seq < wb->seq ? -1 : wa->seq > wb->seq ? 1 : 0;
}

/* g_hash_table_get_values_as_ptr_array() is newer than GLib 2.74 */
static GPtrArray *
table_values (GHashTable *table)
{
  GPtrArray *out = g_ptr_array_sized_new (g_hash_table_size (table));
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (out, value);
  return out;
}

GPtrArray *
mamd_engine_list_wipes (MamdEngine *self)
{
  GPtrArray *out = table_values (self->wipes);

  g_ptr_array_sort (out, compare_wipes);
  return out;
}

GPtrArray *
mamd_engine_list_servers (MamdEngine *self)
{
  GPtrArray *out = g_ptr_array_new_with_free_func ((GDestroyNotify) mamd_server_status_free);
  g_autoptr(GHashTable) counts = g_hash_table_new (g_direct_hash, g_direct_equal);
  GHashTableIter iter;
  gpointer value;

  if (self->config == NULL)
    return out;
  g_hash_table_iter_init (&iter, self->sessions);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    MamdSessionRecord *rec = value;
    guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, rec->server_id));

    g_hash_table_insert (counts, (gpointer) rec->server_id, GUINT_TO_POINTER (n + 1));
  }
  for (guint i = 0; i < self->config->servers->len; i++) {
    const MamdServerConfig *config = g_ptr_array_index (self->config->servers, i);
    MamdEngineServer *srv = mamd_engine_lookup_server (self, config->id);
    MamdServerStatus *status = g_new0 (MamdServerStatus, 1);
    GHashTableIter piter;
    gpointer method, plugin_config;

    status->config = config;
    status->gate_open = srv != NULL && srv->gate_open;
    status->gate_reason = srv != NULL ? g_strdup (srv->gate_reason) : NULL;
    status->gate_error_code = srv != NULL ? srv->gate_code : MAMD_ERROR_FAILED;
    status->n_sessions = GPOINTER_TO_UINT (g_hash_table_lookup (counts,
                                                                g_intern_string (config->id)));
    status->findings = g_ptr_array_new_with_free_func (g_free);
    if (srv != NULL) {
      g_hash_table_iter_init (&piter, srv->plugin_configs);
      while (g_hash_table_iter_next (&piter, &method, &plugin_config)) {
        MamdPlugin *plugin = mamd_plugin_loader_lookup (self->plugins, method);

        if (plugin != NULL)
          mamd_plugin_diagnose (plugin, plugin_config, status->findings);
      }
    }
    g_ptr_array_add (out, status);
  }
  return out;
}

MamdPluginLoader *
mamd_engine_get_plugins (MamdEngine *self)
{
  return self->plugins;
}

const MamdConfig *
mamd_engine_get_config (MamdEngine *self)
{
  return self->config;
}

guint
mamd_engine_get_config_serial (MamdEngine *self)
{
  return self->config_serial;
}

const MamdLicense *
mamd_engine_get_license (MamdEngine *self, const char **reason)
{
  if (reason != NULL)
    *reason = self->license == NULL ? self->license_reason : NULL;
  return self->license;
}

guint64
mamd_engine_get_last_seq (MamdEngine *self)
{
  return self->committed_seq;
}

guint
mamd_engine_get_n_sessions (MamdEngine *self)
{
  return g_hash_table_size (self->sessions);
}
