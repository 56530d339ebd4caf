#include "config.h"

#include "mamd-store.h"

#include "mamd-plugin.h"

struct _MamdStoreTxn {
  GPtrArray *ops; /* MamdStoreOp */
};

G_DEFINE_ABSTRACT_TYPE (MamdStore, mamd_store, G_TYPE_OBJECT)

/* ---- transactions ---- */

static void
mamd_store_op_free (gpointer data)
{
  MamdStoreOp *op = data;

  if (op->record != NULL) {
    switch (op->kind) {
    case MAMD_STORE_OP_PUT_SESSION:
      mamd_session_record_free (op->record);
      break;
    case MAMD_STORE_OP_PUT_USER:
      mamd_user_record_free (op->record);
      break;
    case MAMD_STORE_OP_PUT_REMOVED_SERVER:
      mamd_removed_server_record_free (op->record);
      break;
    case MAMD_STORE_OP_PUT_WIPE:
      mamd_wipe_record_free (op->record);
      break;
    case MAMD_STORE_OP_APPEND_EVENT:
      mamd_event_record_free (op->record);
      break;
    case MAMD_STORE_OP_PUT_POLICY:
      mamd_policy_record_free (op->record);
      break;
    case MAMD_STORE_OP_DELETE_SESSION:
    case MAMD_STORE_OP_DELETE_REMOVED_SERVER:
    case MAMD_STORE_OP_DELETE_WIPE:
    case MAMD_STORE_OP_PRUNE_EVENTS:
    case MAMD_STORE_OP_DELETE_POLICY:
    default:
      break;
    }
  }
  g_free (op->key1);
  g_free (op->key2);
  g_free (op);
}

static MamdStoreOp *
txn_add (MamdStoreTxn *txn, MamdStoreOpKind kind)
{
  MamdStoreOp *op = g_new0 (MamdStoreOp, 1);

  op->kind = kind;
  g_ptr_array_add (txn->ops, op);
  return op;
}

MamdStoreTxn *
mamd_store_txn_new (void)
{
  MamdStoreTxn *txn = g_new0 (MamdStoreTxn, 1);

  txn->ops = g_ptr_array_new_with_free_func (mamd_store_op_free);
  return txn;
}

void
mamd_store_txn_free (MamdStoreTxn *txn)
{
  if (txn == NULL)
    return;
  g_ptr_array_unref (txn->ops);
  g_free (txn);
}

gboolean
mamd_store_txn_is_empty (const MamdStoreTxn *txn)
{
  g_return_val_if_fail (txn != NULL, TRUE);
  return txn->ops->len == 0;
}

guint
mamd_store_txn_get_n_ops (const MamdStoreTxn *txn)
{
  g_return_val_if_fail (txn != NULL, 0);
  return txn->ops->len;
}

const MamdStoreOp *
mamd_store_txn_get_op (const MamdStoreTxn *txn, guint index)
{
  g_return_val_if_fail (txn != NULL, NULL);
  g_return_val_if_fail (index < txn->ops->len, NULL);
  return g_ptr_array_index (txn->ops, index);
}

void
mamd_store_txn_put_session (MamdStoreTxn *txn, const MamdSessionRecord *rec)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (rec != NULL && rec->id != NULL);
  txn_add (txn, MAMD_STORE_OP_PUT_SESSION)->record = mamd_session_record_copy (rec);
}

void
mamd_store_txn_delete_session (MamdStoreTxn *txn, const char *session_id)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (session_id != NULL);
  txn_add (txn, MAMD_STORE_OP_DELETE_SESSION)->key1 = g_strdup (session_id);
}

void
mamd_store_txn_put_user (MamdStoreTxn *txn, const MamdUserRecord *rec)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (rec != NULL && rec->object_id != NULL);
  txn_add (txn, MAMD_STORE_OP_PUT_USER)->record = mamd_user_record_copy (rec);
}

void
mamd_store_txn_put_removed_server (MamdStoreTxn *txn, const MamdRemovedServerRecord *rec)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (rec != NULL && rec->server_id != NULL && rec->device_id != NULL);
  txn_add (txn, MAMD_STORE_OP_PUT_REMOVED_SERVER)->record =
    mamd_removed_server_record_copy (rec);
}

void
mamd_store_txn_delete_removed_server (MamdStoreTxn *txn, const char *server_id,
                                      const char *device_id, gint64 owner_uid)
{
  MamdStoreOp *op;

  g_return_if_fail (txn != NULL);
  g_return_if_fail (server_id != NULL && device_id != NULL);
  op = txn_add (txn, MAMD_STORE_OP_DELETE_REMOVED_SERVER);
  op->key1 = g_strdup (server_id);
  op->key2 = g_strdup (device_id);
  op->owner_uid = owner_uid;
}

void
mamd_store_txn_put_wipe (MamdStoreTxn *txn, const MamdWipeRecord *rec)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (rec != NULL && rec->id != NULL);
  txn_add (txn, MAMD_STORE_OP_PUT_WIPE)->record = mamd_wipe_record_copy (rec);
}

void
mamd_store_txn_delete_wipe (MamdStoreTxn *txn, const char *wipe_id)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (wipe_id != NULL);
  txn_add (txn, MAMD_STORE_OP_DELETE_WIPE)->key1 = g_strdup (wipe_id);
}

void
mamd_store_txn_append_event (MamdStoreTxn *txn, const MamdEventRecord *rec)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (rec != NULL && rec->type != NULL);
  /* the store prints and parses detail as a{sv}: anything else could not be read back */
  g_return_if_fail (rec->detail == NULL ||
                    g_variant_is_of_type (rec->detail, G_VARIANT_TYPE_VARDICT));
  txn_add (txn, MAMD_STORE_OP_APPEND_EVENT)->record = mamd_event_record_copy (rec);
}

void
mamd_store_txn_put_policy (MamdStoreTxn *txn, const MamdPolicyRecord *rec)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (rec != NULL && rec->server_id != NULL && rec->reason != NULL);
  txn_add (txn, MAMD_STORE_OP_PUT_POLICY)->record = mamd_policy_record_copy (rec);
}

void
mamd_store_txn_delete_policy (MamdStoreTxn *txn, const char *server_id)
{
  g_return_if_fail (txn != NULL);
  g_return_if_fail (server_id != NULL);
  txn_add (txn, MAMD_STORE_OP_DELETE_POLICY)->key1 = g_strdup (server_id);
}

void
mamd_store_txn_prune_events (MamdStoreTxn *txn, gint64 before, guint max_events)
{
  MamdStoreOp *op;

  g_return_if_fail (txn != NULL);
  g_return_if_fail (max_events > 0);
  op = txn_add (txn, MAMD_STORE_OP_PRUNE_EVENTS);
  op->before = before;
  op->max_events = max_events;
}

/* ---- snapshot ---- */

void
mamd_store_snapshot_free (MamdStoreSnapshot *snapshot)
{
  if (snapshot == NULL)
    return;
  g_clear_pointer (&snapshot->sessions, g_ptr_array_unref);
  g_clear_pointer (&snapshot->users, g_ptr_array_unref);
  g_clear_pointer (&snapshot->removed_servers, g_ptr_array_unref);
  g_clear_pointer (&snapshot->wipes, g_ptr_array_unref);
  g_clear_pointer (&snapshot->policies, g_ptr_array_unref);
  g_free (snapshot);
}

/* ---- the abstract class ---- */

static void
mamd_store_class_init (MamdStoreClass *klass)
{
}

static void
mamd_store_init (MamdStore *self)
{
}

/* A backend that fails without saying why would leave the daemon unable to
 * explain itself: turn that bug into an error that names it. */
static void
set_missing_error (MamdStore *self, const char *what, GError **error)
{
  g_critical ("%s %s failed without setting an error", G_OBJECT_TYPE_NAME (self), what);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "state store backend %s failed in %s without a reason: report this bug",
               G_OBJECT_TYPE_NAME (self), what);
}

static void
set_unsupported_error (MamdStore *self, const char *what, GError **error)
{
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_SUPPORTED,
               "state store backend %s does not implement %s",
               G_OBJECT_TYPE_NAME (self), what);
}

MamdStoreSnapshot *
mamd_store_load (MamdStore *self, GError **error)
{
  MamdStoreClass *klass;
  g_autoptr(GError) local_error = NULL;
  MamdStoreSnapshot *snapshot;

  g_return_val_if_fail (MAMD_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  klass = MAMD_STORE_GET_CLASS (self);
  if (klass->load == NULL) {
    set_unsupported_error (self, "load", error);
    return NULL;
  }
  snapshot = klass->load (self, &local_error);
  if (snapshot == NULL) {
    if (local_error == NULL)
      set_missing_error (self, "load", error);
    else
      g_propagate_error (error, g_steal_pointer (&local_error));
  }
  return snapshot;
}

void
mamd_store_commit_async (MamdStore *self, MamdStoreTxn *txn,
                         GAsyncReadyCallback callback, gpointer user_data)
{
  MamdStoreClass *klass;

  g_return_if_fail (MAMD_IS_STORE (self));
  g_return_if_fail (txn != NULL);

  klass = MAMD_STORE_GET_CLASS (self);
  if (klass->commit_async == NULL || klass->commit_finish == NULL) {
    g_autoptr(GTask) task = g_task_new (self, NULL, callback, user_data);
    g_autoptr(GError) error = NULL;

    g_task_set_source_tag (task, mamd_store_commit_async);
    mamd_store_txn_free (txn);
    set_unsupported_error (self, "commit", &error);
    g_task_return_error (task, g_steal_pointer (&error));
    return;
  }
  klass->commit_async (self, txn, callback, user_data);
}

gboolean
mamd_store_commit_finish (MamdStore *self, GAsyncResult *result, GError **error)
{
  MamdStoreClass *klass;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (MAMD_IS_STORE (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* the wrapper's own failure when the backend has no commit */
  if (g_async_result_is_tagged (result, mamd_store_commit_async))
    return g_task_propagate_boolean (G_TASK (result), error);

  klass = MAMD_STORE_GET_CLASS (self);
  if (klass->commit_finish (self, result, &local_error))
    return TRUE;
  if (local_error == NULL)
    set_missing_error (self, "commit", error);
  else
    g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

GPtrArray *
mamd_store_list_events (MamdStore *self, guint64 after_seq, guint limit, GError **error)
{
  MamdStoreClass *klass;
  g_autoptr(GError) local_error = NULL;
  GPtrArray *events;

  g_return_val_if_fail (MAMD_IS_STORE (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  klass = MAMD_STORE_GET_CLASS (self);
  if (klass->list_events == NULL) {
    set_unsupported_error (self, "list_events", error);
    return NULL;
  }
  events = klass->list_events (self, after_seq, limit, &local_error);
  if (events == NULL) {
    if (local_error == NULL)
      set_missing_error (self, "list_events", error);
    else
      g_propagate_error (error, g_steal_pointer (&local_error));
  }
  return events;
}

gboolean
mamd_store_flush (MamdStore *self, GError **error)
{
  MamdStoreClass *klass;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (MAMD_IS_STORE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = MAMD_STORE_GET_CLASS (self);
  if (klass->flush == NULL) {
    set_unsupported_error (self, "flush", error);
    return FALSE;
  }
  if (klass->flush (self, &local_error))
    return TRUE;
  if (local_error == NULL)
    set_missing_error (self, "flush", error);
  else
    g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}
