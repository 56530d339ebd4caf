#pragma once

/* Shared by the two halves of the SQLite store; nothing else includes it. */

#include <sqlite3.h>

#include "mamd-store.h"

G_BEGIN_DECLS

#define MAMD_TYPE_STORE_SQLITE (mamd_store_sqlite_get_type ())
G_DECLARE_FINAL_TYPE (MamdStoreSqlite, mamd_store_sqlite, MAMD, STORE_SQLITE, MamdStore)

typedef enum {
  STMT_BEGIN,
  STMT_COMMIT,
  STMT_ROLLBACK,
  STMT_PUT_SESSION,
  STMT_DELETE_SESSION,
  STMT_PUT_USER,
  STMT_PUT_REMOVED_SERVER,
  STMT_DELETE_REMOVED_SERVER,
  STMT_PUT_WIPE,
  STMT_DELETE_WIPE,
  STMT_APPEND_EVENT,
  STMT_UPDATE_LAST_SEQ,
  STMT_PRUNE_EVENTS,
  STMT_PUT_POLICY,
  STMT_DELETE_POLICY,
  N_STMTS
} WriterStmt;

/* How long a statement waits for another program's lock before SQLITE_BUSY. */
#define MAMD_STORE_SQLITE_BUSY_TIMEOUT_MS 5000

struct _MamdStoreSqlite {
  MamdStore parent_instance;

  char *db_path;
  int lock_fd;
  sqlite3 *db;     /* writer connection: only the writer thread uses it after open */
  sqlite3_stmt *stmts[N_STMTS];

  GMutex read_lock; /* guards reader and events_stmt */
  sqlite3 *reader;
  sqlite3_stmt *events_stmt;

  GMutex lock;      /* guards everything below */
  GCond work_cond;  /* queue gained a txn or stopping */
  GCond idle_cond;  /* a batch finished */
  GQueue queue;     /* GTask, txn as task data */
  gboolean busy;    /* the writer holds a batch */
  gboolean stopping;
  GError *broken;   /* the failure that stopped all commits */
  GThread *writer;
};

/* mamd-store-sqlite.c */
gboolean mamd_store_sqlite_exec (sqlite3 *db, const char *sql, GError **error);
/* event details are stored little-endian; the same call turns them back */
GVariant *mamd_store_sqlite_detail_for_file (GVariant *detail);

/* mamd-store-sqlite-writer.c */
gboolean mamd_store_sqlite_prepare_writer (MamdStoreSqlite *self, GError **error);
gpointer mamd_store_sqlite_writer_thread (gpointer data);
void mamd_store_sqlite_commit_async (MamdStore *store, MamdStoreTxn *txn,
                                     GAsyncReadyCallback callback, gpointer user_data);
gboolean mamd_store_sqlite_commit_finish (MamdStore *store, GAsyncResult *result,
                                          GError **error);
gboolean mamd_store_sqlite_flush (MamdStore *store, GError **error);

G_END_DECLS
