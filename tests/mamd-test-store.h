/*
 * Shared by the state store tests (test-store.c, test-store-file.c): a
 * fixture with a temporary state directory, records to store, and commits
 * that wait for their acknowledgement.
 */
#pragma once

#include "mamd-store.h"

G_BEGIN_DECLS

typedef struct {
  char *dir;
  MamdStore *store;
} Fixture;

/* g_test_add () setup and teardown: a fresh temporary directory, no store
 * open yet; teardown closes the store and removes the directory. */
void fixture_setup (Fixture *fx, gconstpointer data);
void fixture_teardown (Fixture *fx, gconstpointer data);
/* Closes the store, if open, and opens it again on the same directory. */
void reopen (Fixture *fx);
/* The path of the store's database file in the fixture's directory. */
char *db_path (Fixture *fx);

/* Commits @txn (taking it) and iterates the default main context until the
 * commit is acknowledged. */
gboolean commit_sync (MamdStore *store, MamdStoreTxn *txn, GError **error);
/* A session in state enrollment-required with every field set (no reason
 * when @user_name is NULL). */
MamdSessionRecord *make_session (const char *id, const char *server, const char *user_name,
                                 guint64 seq);
/* A "session-created" event; an empty detail when @detail is NULL. */
MamdEventRecord *make_event (guint64 seq, gint64 time, GVariant *detail);
/* Commits events @first to @last, each at @time + its seq, and asserts it
 * worked. */
void commit_events (MamdStore *store, guint64 first, guint64 last, gint64 time);
/* A valid session id made from @n. */
char *session_id_for (guint n);

G_END_DECLS
