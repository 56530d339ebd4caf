/*
 * MamdStore: the one interface to durable state. The SQLite backend
 * (mamd-store-sqlite.c) is the only one today; a PostgreSQL backend for
 * cluster mode will implement the same vfuncs.
 *
 * Writes are described backend-neutrally as a MamdStoreTxn and committed
 * asynchronously; a commit's callback runs on the caller's main context only
 * after the change is durable. Commits complete in submission order and are
 * grouped (many txns per database transaction) so throughput holds up.
 */
#pragma once

#include <gio/gio.h>

#include "mamd-records.h"

G_BEGIN_DECLS

typedef struct _MamdStoreTxn MamdStoreTxn;

typedef enum {
  MAMD_STORE_OP_PUT_SESSION,
  MAMD_STORE_OP_DELETE_SESSION,
  MAMD_STORE_OP_PUT_USER,
  MAMD_STORE_OP_PUT_REMOVED_SERVER,
  MAMD_STORE_OP_DELETE_REMOVED_SERVER,
  MAMD_STORE_OP_PUT_WIPE,
  MAMD_STORE_OP_DELETE_WIPE,
  MAMD_STORE_OP_APPEND_EVENT,
  MAMD_STORE_OP_PRUNE_EVENTS,
  MAMD_STORE_OP_PUT_POLICY,
  MAMD_STORE_OP_DELETE_POLICY,
} MamdStoreOpKind;

typedef struct {
  MamdStoreOpKind kind;
  gpointer record;     /* owned copy of the matching record type, or NULL */
  char *key1;          /* DELETE_SESSION: session id; DELETE_REMOVED_SERVER: server id;
                          DELETE_WIPE: wipe id; DELETE_POLICY: server id */
  char *key2;          /* DELETE_REMOVED_SERVER: device id */
  gint64 owner_uid;    /* DELETE_REMOVED_SERVER: the removal's owner uid */
  gint64 before;       /* PRUNE_EVENTS: drop events older than this (unix µs) */
  guint max_events;    /* PRUNE_EVENTS: ... but at most this many */
} MamdStoreOp;

MamdStoreTxn *mamd_store_txn_new (void);
void mamd_store_txn_free (MamdStoreTxn *txn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdStoreTxn, mamd_store_txn_free)
gboolean mamd_store_txn_is_empty (const MamdStoreTxn *txn);
guint mamd_store_txn_get_n_ops (const MamdStoreTxn *txn);
const MamdStoreOp *mamd_store_txn_get_op (const MamdStoreTxn *txn, guint index);
/* each put copies its record */
void mamd_store_txn_put_session (MamdStoreTxn *txn, const MamdSessionRecord *rec);
void mamd_store_txn_delete_session (MamdStoreTxn *txn, const char *session_id);
void mamd_store_txn_put_user (MamdStoreTxn *txn, const MamdUserRecord *rec);
void mamd_store_txn_put_removed_server (MamdStoreTxn *txn, const MamdRemovedServerRecord *rec);
void mamd_store_txn_delete_removed_server (MamdStoreTxn *txn, const char *server_id,
                                           const char *device_id, gint64 owner_uid);
void mamd_store_txn_put_wipe (MamdStoreTxn *txn, const MamdWipeRecord *rec);
void mamd_store_txn_delete_wipe (MamdStoreTxn *txn, const char *wipe_id);
void mamd_store_txn_append_event (MamdStoreTxn *txn, const MamdEventRecord *rec);
void mamd_store_txn_put_policy (MamdStoreTxn *txn, const MamdPolicyRecord *rec);
void mamd_store_txn_delete_policy (MamdStoreTxn *txn, const char *server_id);
/* Drops events older than @before (unix µs) in seq order, stopping at the
 * first one that is new enough (the log never has holes), and at most
 * @max_events of them, so one commit cannot hold the writer for long. */
void mamd_store_txn_prune_events (MamdStoreTxn *txn, gint64 before, guint max_events);

/* Everything the engine needs at start-up. */
typedef struct {
  GPtrArray *sessions;        /* MamdSessionRecord */
  GPtrArray *users;           /* MamdUserRecord */
  GPtrArray *removed_servers; /* MamdRemovedServerRecord */
  GPtrArray *wipes;           /* MamdWipeRecord */
  GPtrArray *policies;        /* MamdPolicyRecord: last announced, per server */
  guint64 last_seq;           /* highest event seq ever committed, 0 if none */
} MamdStoreSnapshot;

void mamd_store_snapshot_free (MamdStoreSnapshot *snapshot);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdStoreSnapshot, mamd_store_snapshot_free)

#define MAMD_TYPE_STORE (mamd_store_get_type ())
G_DECLARE_DERIVABLE_TYPE (MamdStore, mamd_store, MAMD, STORE, GObject)

struct _MamdStoreClass {
  GObjectClass parent_class;

  MamdStoreSnapshot *(*load) (MamdStore *self, GError **error);
  /* takes ownership of @txn */
  void (*commit_async) (MamdStore *self, MamdStoreTxn *txn,
                        GAsyncReadyCallback callback, gpointer user_data);
  gboolean (*commit_finish) (MamdStore *self, GAsyncResult *result, GError **error);
  /* events with seq > @after_seq, oldest first, at most @limit (MamdEventRecord) */
  GPtrArray *(*list_events) (MamdStore *self, guint64 after_seq, guint limit, GError **error);
  /* blocks until every submitted commit is durable (shutdown, tests) */
  gboolean (*flush) (MamdStore *self, GError **error);

  /*< private >*/
  gpointer padding[8];
};

MamdStoreSnapshot *mamd_store_load (MamdStore *self, GError **error);
void mamd_store_commit_async (MamdStore *self, MamdStoreTxn *txn,
                              GAsyncReadyCallback callback, gpointer user_data);
gboolean mamd_store_commit_finish (MamdStore *self, GAsyncResult *result, GError **error);
GPtrArray *mamd_store_list_events (MamdStore *self, guint64 after_seq, guint limit,
                                   GError **error);
gboolean mamd_store_flush (MamdStore *self, GError **error);

/* The SQLite (WAL) backend, in @state_dir/state.db. Creates the directory
 * (0700) and schema when missing. A file that fails its integrity check (or
 * has 0 bytes) is moved aside to state.db.corrupt-<time> and MAMD_ERROR_STORE
 * names both paths; an unusable directory, a write-ahead log without its
 * state.db or written by another store, or a second daemon on the same store
 * is also MAMD_ERROR_STORE. */
MamdStore *mamd_store_sqlite_open (const char *state_dir, GError **error);

G_END_DECLS
