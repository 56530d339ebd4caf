/*
 * The SQLite state store's file: event details that do not decode, rows
 * without a value the engine needs, the upgrade from schema version 1, the
 * lock against a second mamd, another program's write lock waited out,
 * corrupt files quarantined (and a newer schema left alone), a failed commit
 * that breaks the store, and kill -9 in the middle of a burst of commits
 * losing nothing that was acknowledged. Normal use is test-store.c.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mamd-plugin.h"
#include "mamd-store.h"
#include "mamd-test-store.h"
#include "mamd-test-util.h"

static const char *self_exe;

/* ---- event details in the file ---- */

static void
test_bad_detail (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;
  sqlite3 *db = NULL;

  reopen (fx);
  commit_events (fx->store, 1, 2, 100);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  /* not the serialisation of any a{sv} */
  g_assert_cmpint (sqlite3_exec (db, "UPDATE events SET detail = x'ff01' WHERE seq = 2",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_null (events);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "event 2"));
  g_assert_nonnull (strstr (error->message, "bad detail"));

  /* the text form of schema version 1, with bytes that are not UTF-8 */
  g_clear_error (&error);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "UPDATE events SET detail = CAST (x'7b2773273a203c27cbcb'"
                                     " AS TEXT) WHERE seq = 2", NULL, NULL, NULL), ==,
                   SQLITE_OK);
  sqlite3_close (db);
  g_clear_pointer (&events, g_ptr_array_unref);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_null (events);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "not UTF-8"));
}

/* ---- rows another program wrote ---- */

/* Runs @sql on @fx's file with the store closed. */
static void
exec_on_file (Fixture *fx, const char *sql)
{
  g_autofree char *path = db_path (fx);
  sqlite3 *db = NULL;

  g_clear_object (&fx->store);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
}

/* Runs @sql on @fx's file and asserts that a load then fails, naming the
 * file and @column. */
static void
assert_load_refuses (Fixture *fx, const char *sql, const char *column)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;

  exec_on_file (fx, sql);
  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_null (snap);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, column));
}

/* The engine takes these columns for granted (a session without a method
 * crashed it at the first event about the session): a NULL in one is
 * refused by name. */
static void
test_null_column (Fixture *fx, gconstpointer data)
{
  static const char *const columns[] = { "server_id", "method", "object_id", "device_id",
                                         "platform" };
  g_autoptr(MamdSessionRecord) rec = make_session ("00000000000000000000000000000001", "chat",
                                                   "ada", 1);
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;

  mamd_store_txn_put_session (txn, rec);
  reopen (fx);
  g_assert_true (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (columns); i++) {
    g_autofree char *set_null = g_strdup_printf ("UPDATE sessions SET %s = NULL", columns[i]);
    g_autofree char *set_back = g_strdup_printf ("UPDATE sessions SET %s = 'x'", columns[i]);

    assert_load_refuses (fx, set_null, columns[i]);
    exec_on_file (fx, set_back);
  }
  /* a table rebuilt without its constraints, as another tool might: a wipe
   * without an id is a NULL hash table key in the engine */
  assert_load_refuses (fx,
                       "DROP TABLE wipes;"
                       "CREATE TABLE wipes (id TEXT PRIMARY KEY, server_id TEXT, device_id TEXT,"
                       " object_id TEXT, session_id TEXT, reason TEXT, created INTEGER,"
                       " expires INTEGER, seq INTEGER, owner_uid INTEGER);"
                       "INSERT INTO wipes (id, server_id) VALUES (NULL, 'chat')",
                       "wipe");
}

/* Text the engine puts into GVariant strings (signals, events, replies)
 * and object paths: bytes that are not UTF-8, a NUL, or an id that is not
 * one of mamd's, written by another tool, are refused by name. */
static void
test_bad_text (Fixture *fx, gconstpointer data)
{
  static const struct {
    const char *table, *column, *bad, *refused;
  } cases[] = {
    { "sessions", "server_id", "x'6368ff'", "server_id is not UTF-8 text" },
    { "sessions", "user_name", "'a' || char(0) || 'b'", "user_name is not UTF-8 text" },
    { "sessions", "reason", "x'c0af'", "reason is not UTF-8 text" },
    { "sessions", "id", "'not-an-id'", "id is not 32 lowercase hex characters" },
    { "users", "object_id", "x'ff'", "object_id is not UTF-8 text" },
    { "removed_servers", "device_id", "x'ff'", "device_id is not UTF-8 text" },
    { "wipes", "object_id", "x'ff'", "object_id is not UTF-8 text" },
    { "wipes", "id", "'ABCDEF0123456789ABCDEF0123456789'",
      "id is not 32 lowercase hex characters" },
    { "policies", "reason", "x'ff'", "reason is not UTF-8 text" },
  };
  g_autoptr(MamdSessionRecord) rec = make_session ("00000000000000000000000000000001", "chat",
                                                   "ada", 1);
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *path = db_path (fx);
  MamdUserRecord user = { "chat", "test", "oid-1", "ada", 1 };
  MamdRemovedServerRecord removed = { "chat", "device-1", "oid-1", "failed", 1, 1000 };
  MamdWipeRecord wipe = { "0123456789abcdef0123456789abcdef", "chat", "device-1", "oid-1",
                          "00000000000000000000000000000001", "failed", 1, 2, 3, 1000 };
  MamdPolicyRecord policy = { "chat", TRUE, TRUE, "open" };

  mamd_store_txn_put_session (txn, rec);
  mamd_store_txn_put_user (txn, &user);
  mamd_store_txn_put_removed_server (txn, &removed);
  mamd_store_txn_put_wipe (txn, &wipe);
  mamd_store_txn_put_policy (txn, &policy);
  reopen (fx);
  g_assert_true (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_assert_no_error (error);
  g_clear_object (&fx->store);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *keep = g_strdup_printf ("CREATE TABLE saved AS SELECT * FROM %s",
                                             cases[i].table);
    g_autofree char *spoil = g_strdup_printf ("UPDATE %s SET %s = %s", cases[i].table,
                                              cases[i].column, cases[i].bad);
    g_autofree char *restore = g_strdup_printf ("DELETE FROM %s; INSERT INTO %s SELECT * FROM "
                                                "saved; DROP TABLE saved", cases[i].table,
                                                cases[i].table);

    g_test_message ("%s.%s = %s", cases[i].table, cases[i].column, cases[i].bad);
    exec_on_file (fx, keep);
    assert_load_refuses (fx, spoil, cases[i].refused);
    g_clear_object (&fx->store);
    exec_on_file (fx, restore);
  }
  /* as it was: loads */
  reopen (fx);
  {
    g_autoptr(MamdStoreSnapshot) snap = mamd_store_load (fx->store, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (snap->sessions->len, ==, 1);
    g_assert_cmpuint (snap->wipes->len, ==, 1);
    g_assert_cmpuint (snap->policies->len, ==, 1);
  }
}

/* ---- schema upgrades ---- */

/* the layout mamd wrote before schema version 2, verbatim */
static const char schema_v1_sql[] =
  "CREATE TABLE sessions ("
  " id TEXT PRIMARY KEY NOT NULL, server_id TEXT, method TEXT, object_id TEXT,"
  " tenant_id TEXT, user_name TEXT, device_id TEXT, platform TEXT, id_attribute TEXT,"
  " id_source TEXT, reason TEXT, owner_uid INTEGER NOT NULL, state TEXT NOT NULL,"
  " mam_required INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
  " seq INTEGER NOT NULL);"
  "CREATE TABLE users ("
  " server_id TEXT NOT NULL, auth_service TEXT NOT NULL, object_id TEXT NOT NULL,"
  " user_name TEXT, created INTEGER NOT NULL,"
  " PRIMARY KEY (server_id, auth_service, object_id));"
  "CREATE TABLE removed_servers ("
  " server_id TEXT NOT NULL, device_id TEXT NOT NULL, object_id TEXT, reason TEXT,"
  " removed INTEGER NOT NULL, PRIMARY KEY (server_id, device_id));"
  "CREATE TABLE wipes ("
  " id TEXT PRIMARY KEY NOT NULL, server_id TEXT, device_id TEXT, object_id TEXT,"
  " session_id TEXT, reason TEXT, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
  " seq INTEGER NOT NULL);"
  "CREATE TABLE events ("
  " seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, server_id TEXT,"
  " session_id TEXT, decision_id TEXT, detail TEXT);"
  "CREATE INDEX events_time ON events (time);"
  "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER);"
  "INSERT INTO sessions VALUES ('0123456789abcdef0123456789abcdef', 'chat', 'office365',"
  " '0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11', '7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f', 'ada',"
  " 'device-1', 'ios', 'oid', 'issuer', 'enrollment required', 1000, 'enrollment-required',"
  " 1, 100, 200, 7);"
  "INSERT INTO sessions VALUES ('f123456789abcdef0123456789abcdef', 'chat', 'office365',"
  " 'oid-2', '7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f', 'bob', 'device-2', 'ios', 'oid',"
  " 'issuer', 'failed', 1001, 'revoked', 1, 100, 300, 8);"
  "INSERT INTO users VALUES ('chat', 'office365', '0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11',"
  " 'ada', 100);"
  "INSERT INTO removed_servers VALUES ('chat', 'device-2', 'oid-2', 'failed', 300);"
  "INSERT INTO wipes VALUES ('fedcba9876543210fedcba9876543210', 'chat', 'device-2', 'oid-2',"
  " 'f123456789abcdef0123456789abcdef', 'failed', 300, 900, 8);"
  "INSERT INTO wipes VALUES ('eedcba9876543210fedcba9876543210', 'chat', 'device-3', 'oid-3',"
  " NULL, 'failed', 300, 900, 8);"
  "INSERT INTO events VALUES (6, 100, 'session-created', 'chat', NULL, NULL,"
  " '{''state'': <''active''>}');"
  "INSERT INTO events VALUES (8, 300, 'wipe-requested', 'chat', NULL, NULL, NULL);"
  "INSERT INTO meta VALUES ('last_seq', 9);"
  "PRAGMA user_version=1;";

static void
test_upgrade_from_1 (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;
  const MamdSessionRecord *session;
  const MamdEventRecord *event;
  const char *state = NULL;
  sqlite3 *db = NULL;
  gint64 version = 0, indexes = -1;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, schema_v1_sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, 2);
  session = g_ptr_array_index (snap->sessions, 0);
  g_assert_cmpstr (session->id, ==, "0123456789abcdef0123456789abcdef");
  g_assert_cmpstr (session->user_name, ==, "ada");
  g_assert_cmpint (session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_cmpuint (session->seq, ==, 7);
  g_assert_cmpuint (snap->users->len, ==, 1);
  g_assert_cmpuint (snap->last_seq, ==, 9);
  /* version 4: no policy announced yet */
  g_assert_cmpuint (snap->policies->len, ==, 0);
  /* version 3: removals and wipes belong to the failed session's uid */
  g_assert_cmpuint (snap->removed_servers->len, ==, 1);
  g_assert_cmpint (((MamdRemovedServerRecord *) snap->removed_servers->pdata[0])->owner_uid, ==,
                   1001);
  g_assert_cmpuint (snap->wipes->len, ==, 2);
  for (guint i = 0; i < snap->wipes->len; i++) {
    const MamdWipeRecord *wipe = snap->wipes->pdata[i];

    /* the second wipe's session is gone: administrators only */
    g_assert_cmpint (wipe->owner_uid, ==, g_str_equal (wipe->device_id, "device-2") ? 1001 : -1);
  }

  /* version 1 details are text, new ones serialised; both read back */
  commit_events (fx->store, 10, 10, 400);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 3);
  event = g_ptr_array_index (events, 0);
  g_assert_cmpuint (event->seq, ==, 6);
  g_assert_true (g_variant_lookup (event->detail, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "active");
  event = g_ptr_array_index (events, 1);
  g_assert_cmpuint (g_variant_n_children (event->detail), ==, 0);
  event = g_ptr_array_index (events, 2);
  g_assert_cmpuint (event->seq, ==, 10);
  g_assert_true (g_variant_is_of_type (event->detail, G_VARIANT_TYPE_VARDICT));

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  version = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_prepare_v2 (db,
                                       "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                       " AND name = 'events_time'",
                                       -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  indexes = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  g_assert_cmpint (version, ==, 4);
  g_assert_cmpint (indexes, ==, 0);
}

/* A version 2 store: made here from a new one without the version 3
 * columns, as mamd wrote it before. On device-2 uid 1001's enrollment
 * failed while uid 1002, which claimed the same device id, had a session
 * there too (revoked a moment later); device-3's wipe was acknowledged, its
 * "server-removed" event names the failed session; device-4 has neither.
 * (Nor has it the version 4 table.) */
static void
test_upgrade_from_2 (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;
  const MamdWipeRecord *wipe;

  reopen (fx);
  exec_on_file (fx,
    "DROP TABLE policies;"
    "ALTER TABLE wipes DROP COLUMN owner_uid;"
    "DROP TABLE removed_servers;"
    "CREATE TABLE removed_servers ("
    " server_id TEXT NOT NULL, device_id TEXT NOT NULL, object_id TEXT, reason TEXT,"
    " removed INTEGER NOT NULL, PRIMARY KEY (server_id, device_id)) WITHOUT ROWID;"
    "INSERT INTO sessions VALUES ('f123456789abcdef0123456789abcdef', 'chat', 'office365',"
    " 'oid-2', '7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f', 'bob', 'device-2', 'ios', 'oid',"
    " 'issuer', 'failed', 1001, 'revoked', 1, 100, 300, 8);"
    "INSERT INTO sessions VALUES ('f223456789abcdef0123456789abcdef', 'chat', 'office365',"
    " 'oid-9', '7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f', 'eve', 'device-2', 'ios', 'oid',"
    " 'issuer', 'failed', 1002, 'revoked', 1, 90, 301, 9);"
    "INSERT INTO sessions VALUES ('f323456789abcdef0123456789abcdef', 'chat', 'office365',"
    " 'oid-3', '7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f', 'ann', 'device-3', 'ios', 'oid',"
    " 'issuer', 'failed', 1003, 'revoked', 1, 100, 300, 10);"
    "INSERT INTO sessions VALUES ('f423456789abcdef0123456789abcdef', 'chat', 'office365',"
    " 'oid-4', '7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f', 'joe', 'device-4', 'ios', 'oid',"
    " 'issuer', 'failed', 1004, 'revoked', 1, 100, 300, 11);"
    "INSERT INTO removed_servers VALUES ('chat', 'device-2', 'oid-2', 'failed', 300);"
    "INSERT INTO removed_servers VALUES ('chat', 'device-3', 'oid-3', 'failed', 300);"
    "INSERT INTO removed_servers VALUES ('chat', 'device-4', 'oid-4', 'failed', 300);"
    "INSERT INTO wipes VALUES ('fedcba9876543210fedcba9876543210', 'chat', 'device-2', 'oid-2',"
    " 'f123456789abcdef0123456789abcdef', 'failed', 300, 900, 8);"
    "INSERT INTO events VALUES (12, 300, 'server-removed', 'chat',"
    " 'f323456789abcdef0123456789abcdef', NULL, NULL);"
    "PRAGMA user_version=2;");

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->wipes->len, ==, 1);
  wipe = g_ptr_array_index (snap->wipes, 0);
  g_assert_cmpint (wipe->owner_uid, ==, 1001);
  g_assert_cmpuint (snap->removed_servers->len, ==, 3);
  for (guint i = 0; i < snap->removed_servers->len; i++) {
    const MamdRemovedServerRecord *removed = snap->removed_servers->pdata[i];
    gint64 expected = g_str_equal (removed->device_id, "device-2")   ? 1001
                      : g_str_equal (removed->device_id, "device-3") ? 1003
                                                                     : -1;

    g_assert_cmpint (removed->owner_uid, ==, expected);
  }
  g_assert_cmpuint (snap->policies->len, ==, 0);
}

/* A version 3 store, as mamd wrote it before: no policies table. The
 * upgrade keeps what there is and policies can be stored from then on. */
static void
test_upgrade_from_3 (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;
  MamdPolicyRecord policy = { "chat", TRUE, FALSE, "no licence" };

  reopen (fx);
  exec_on_file (fx,
    "DROP TABLE policies;"
    "INSERT INTO wipes VALUES ('fedcba9876543210fedcba9876543210', 'chat', 'device-2', 'oid-2',"
    " 'f123456789abcdef0123456789abcdef', 'failed', 300, 900, 8, 1001);"
    "PRAGMA user_version=3;");

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->wipes->len, ==, 1);
  g_assert_cmpuint (snap->policies->len, ==, 0);
  g_clear_pointer (&snap, mamd_store_snapshot_free);
  mamd_store_txn_put_policy (txn, &policy);
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);
  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->policies->len, ==, 1);
  g_assert_true (mamd_policy_record_equal (snap->policies->pdata[0], &policy));
}

/* ---- locking ---- */

static void
test_locked (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdStore) second = NULL;
  g_autofree char *pid = g_strdup_printf ("pid %d", (int) getpid ());

  reopen (fx);
  second = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (second);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "in use by another mamd"));
  g_assert_nonnull (strstr (error->message, pid));
  g_clear_error (&error);

  /* closing the first releases the lock */
  g_clear_object (&fx->store);
  second = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (second);
}

/* Another program holding the write lock past the busy timeout delays
 * commits, with a warning naming the file; it does not break the store. */

typedef struct {
  GMutex lock;
  guint warnings; /* "is locked by another program" */
} LockWarnings;

static GLogWriterOutput
count_lock_warnings (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                     gpointer user_data)
{
  LockWarnings *seen = user_data;

  for (gsize i = 0; i < n_fields; i++) {
    if (g_str_equal (fields[i].key, "MESSAGE") && fields[i].length < 0 &&
        strstr (fields[i].value, "is locked by another program") != NULL) {
      g_mutex_lock (&seen->lock);
      seen->warnings++;
      g_mutex_unlock (&seen->lock);
    }
  }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static void
on_commit_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (mamd_store_commit_finish (MAMD_STORE (source), res, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

/* Iterates until the writer has warned once that the lock is held (its
 * busy timeout ran out). */
static void
wait_lock_warning (LockWarnings *seen)
{
  guint warnings = 0;

  while (warnings == 0) {
    g_main_context_iteration (NULL, FALSE);
    g_usleep (10000);
    g_mutex_lock (&seen->lock);
    warnings = seen->warnings;
    g_mutex_unlock (&seen->lock);
  }
}

/* Holds the write lock of @fx's state.db from another connection, with
 * @seen counting the writer's warnings. */
static sqlite3 *
hold_write_lock (Fixture *fx, LockWarnings *seen)
{
  /* the warning is expected here; the parent checks it reached stderr */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  g_log_set_writer_func (count_lock_warnings, seen, NULL);
  return mamd_test_lock_store (fx->dir);
}

static void
test_write_locked (Fixture *fx, gconstpointer data)
{
  if (g_test_subprocess ()) {
    g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
    g_autoptr(MamdEventRecord) event = make_event (1, 10, NULL);
    g_autoptr(MamdStoreSnapshot) snap = NULL;
    g_autoptr(GError) error = NULL;
    LockWarnings seen = { 0 };
    gboolean done = FALSE;
    sqlite3 *db = NULL;

    reopen (fx);
    db = hold_write_lock (fx, &seen);

    mamd_store_txn_append_event (txn, event);
    mamd_store_commit_async (fx->store, g_steal_pointer (&txn), on_commit_done, &done);
    /* without the wait the commit fails right there (on_commit_done asserts) */
    wait_lock_warning (&seen);
    g_assert_false (done);
    mamd_test_unlock_store (db);
    while (!done)
      g_main_context_iteration (NULL, TRUE);

    reopen (fx);
    snap = mamd_store_load (fx->store, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (snap->last_seq, ==, 1);
    g_clear_object (&fx->store);
    mamd_test_rm_rf (fx->dir);
    _exit (0);
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*state.db is locked by another program (for 5 s now)*");
}

static void
on_commit_refused (GObject *source, GAsyncResult *res, gpointer user_data)
{
  guint *refused = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_false (mamd_store_commit_finish (MAMD_STORE (source), res, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  (*refused)++;
}

/* A commit queued behind one that fails was built on the failed one's
 * state, which the rollback took away: it fails too, unwritten. */
static void
test_broken_queued (Fixture *fx, gconstpointer data)
{
  if (g_test_subprocess ()) {
    g_autoptr(MamdStoreTxn) bad = mamd_store_txn_new ();
    g_autoptr(MamdStoreTxn) good = mamd_store_txn_new ();
    g_autoptr(MamdSessionRecord) first = make_session ("0000000000000000000000000000000a",
                                                       "chat", "eve", 1);
    g_autoptr(MamdSessionRecord) second = make_session ("0000000000000000000000000000000b",
                                                        "chat", "eve", 2);
    g_autoptr(MamdEventRecord) dup = make_event (1, 10, NULL);
    g_autoptr(MamdEventRecord) next = make_event (2, 10, NULL);
    g_autoptr(MamdStoreSnapshot) snap = NULL;
    g_autoptr(GError) error = NULL;
    LockWarnings seen = { 0 };
    guint refused = 0;
    sqlite3 *db = NULL;

    reopen (fx);
    commit_events (fx->store, 1, 1, 0);
    db = hold_write_lock (fx, &seen);
    /* a reused seq: this one fails once it gets the lock */
    mamd_store_txn_put_session (bad, first);
    mamd_store_txn_append_event (bad, dup);
    mamd_store_commit_async (fx->store, g_steal_pointer (&bad), on_commit_refused, &refused);
    /* the writer waits with that batch; this one queues behind it */
    wait_lock_warning (&seen);
    mamd_store_txn_put_session (good, second);
    mamd_store_txn_append_event (good, next);
    mamd_store_commit_async (fx->store, g_steal_pointer (&good), on_commit_refused, &refused);
    mamd_test_unlock_store (db);
    while (refused < 2)
      g_main_context_iteration (NULL, TRUE);

    reopen (fx);
    snap = mamd_store_load (fx->store, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (snap->sessions->len, ==, 0);
    g_assert_cmpuint (snap->last_seq, ==, 1);
    g_clear_object (&fx->store);
    mamd_test_rm_rf (fx->dir);
    _exit (0);
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* ---- corruption ---- */

static guint
count_quarantined (Fixture *fx, char **found)
{
  g_autoptr(GDir) dir = g_dir_open (fx->dir, 0, NULL);
  const char *name;
  guint n = 0;

  while ((name = g_dir_read_name (dir)) != NULL) {
    if (g_str_has_prefix (name, "state.db.corrupt-") && !g_str_has_suffix (name, "-wal") &&
        !g_str_has_suffix (name, "-shm")) {
      n++;
      if (found != NULL) {
        g_free (*found);
        *found = g_build_filename (fx->dir, name, NULL);
      }
    }
  }
  return n;
}

static void
test_corrupt (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autofree char *garbage = g_strnfill (8192, 'x');
  g_autofree char *moved = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_set_contents (path, garbage, -1, NULL));
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);

  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_quarantined (fx, &moved), ==, 1);
  g_assert_nonnull (strstr (error->message, moved));
  g_assert_nonnull (strstr (error->message, path));
  g_assert_true (g_file_get_contents (moved, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, garbage);
  g_clear_error (&error);

  /* no empty store while the quarantined one is there (systemd restarts) */
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "does not begin with an empty store on its own"));
  g_assert_nonnull (strstr (error->message, moved));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  /* the administrator moves it away: an empty store */
  {
    g_autofree char *kept = g_strconcat (fx->dir, ".kept", NULL);

    g_assert_cmpint (g_rename (moved, kept), ==, 0);
    reopen (fx);
    g_assert_cmpint (g_unlink (kept), ==, 0);
  }
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, 0);
  g_assert_cmpuint (snap->last_seq, ==, 0);
}

static void
test_newer_schema (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(GError) error = NULL;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version=99", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "schema version 99"));
  /* refused before anything changed: still in rollback-journal mode */
  {
    g_autofree char *header = NULL;
    gsize len = 0;

    g_assert_true (g_file_get_contents (path, &header, &len, NULL));
    g_assert_cmpuint (len, >=, 20);
    g_assert_cmpint (header[18], ==, 1);
    g_assert_cmpint (header[19], ==, 1);
  }
  /* not corrupt: left in place */
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_quarantined (fx, NULL), ==, 0);
}

/* A store of 0 bytes, or none beside its write-ahead log: SQLite takes
 * either for a new database and deletes the log, with every commit in it. */
static void
test_emptied (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autofree char *wal_path = g_strconcat (path, "-wal", NULL);
  g_autofree char *wal = NULL;
  g_autofree char *left = NULL;
  g_autofree char *moved = NULL;
  g_autofree char *moved_wal = NULL;
  g_autoptr(MamdSessionRecord) rec = make_session ("00000000000000000000000000000001", "chat",
                                                   "ada", 1);
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;
  gsize wal_len = 0;

  /* the log as kill -9 leaves it: the commit is in it, not in state.db */
  mamd_store_txn_put_session (txn, rec);
  reopen (fx);
  g_assert_true (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_assert_true (g_file_get_contents (wal_path, &wal, &wal_len, NULL));
  g_assert_cmpuint (wal_len, >, 0);
  g_clear_object (&fx->store);

  /* state.db gone, its log left */
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_true (g_file_set_contents (wal_path, wal, wal_len, NULL));
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, wal_path));
  g_assert_true (g_file_get_contents (wal_path, &left, NULL, NULL));
  g_assert_cmpmem (left, wal_len, wal, wal_len);
  g_clear_error (&error);

  /* state.db emptied, its log left: quarantined with the log */
  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "0 bytes"));
  g_assert_cmpuint (count_quarantined (fx, &moved), ==, 1);
  g_assert_nonnull (strstr (error->message, moved));
  moved_wal = g_strconcat (moved, "-wal", NULL);
  g_clear_pointer (&left, g_free);
  g_assert_true (g_file_get_contents (moved_wal, &left, NULL, NULL));
  g_assert_cmpmem (left, wal_len, wal, wal_len);
  g_clear_error (&error);
  g_assert_cmpint (g_unlink (moved), ==, 0);
  g_assert_cmpint (g_unlink (moved_wal), ==, 0);

  /* state.db emptied alone: no empty store either */
  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "0 bytes"));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* The write-ahead log of another store beside state.db (left there when a
 * backup was restored, say): SQLite would apply it and, at the next
 * checkpoint, write the other store over this one. */
static void
test_foreign_log (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autofree char *wal_path = g_strconcat (path, "-wal", NULL);
  g_autofree char *other_dir = g_strconcat (fx->dir, "/other", NULL);
  g_autofree char *other_wal = g_build_filename (other_dir, "state.db-wal", NULL);
  g_autofree char *wal = NULL;
  g_autoptr(MamdSessionRecord) mine = make_session ("00000000000000000000000000000001", "chat",
                                                    "ada", 1);
  g_autoptr(MamdSessionRecord) theirs = make_session ("00000000000000000000000000000002",
                                                      "chat", "bob", 1);
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdStore) other = NULL;
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;
  gsize wal_len = 0;

  mamd_store_txn_put_session (txn, mine);
  reopen (fx);
  g_assert_true (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_clear_object (&fx->store);

  /* another store's log as kill -9 leaves it */
  other = mamd_store_sqlite_open (other_dir, &error);
  g_assert_no_error (error);
  txn = mamd_store_txn_new ();
  mamd_store_txn_put_session (txn, theirs);
  g_assert_true (commit_sync (other, g_steal_pointer (&txn), &error));
  g_assert_true (g_file_get_contents (other_wal, &wal, &wal_len, NULL));
  g_clear_object (&other);

  g_assert_true (g_file_set_contents (wal_path, wal, wal_len, NULL));
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, wal_path));
  g_clear_error (&error);

  /* untouched: without the log, the store is what it was */
  g_assert_cmpint (g_unlink (wal_path), ==, 0);
  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, 1);
  g_assert_cmpstr (((MamdSessionRecord *) g_ptr_array_index (snap->sessions, 0))->id, ==,
                   mine->id);
}

/* A state.db restored readable by others (copied under umask 022): SQLite
 * gave the log and its index the same mode, whatever mamd's umask. */
static void
test_private_files (Fixture *fx, gconstpointer data)
{
  static const char *const suffixes[] = { "", "-wal", "-shm" };
  g_autofree char *path = db_path (fx);
  g_autoptr(MamdSessionRecord) rec = make_session ("00000000000000000000000000000001", "chat",
                                                   "ada", 1);
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;
  mode_t old_umask;

  reopen (fx);
  g_clear_object (&fx->store);
  g_assert_cmpint (g_chmod (path, 0644), ==, 0);
  old_umask = umask (077);
  reopen (fx);
  mamd_store_txn_put_session (txn, rec);
  g_assert_true (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  umask (old_umask);
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *file = g_strconcat (path, suffixes[i], NULL);
    GStatBuf st;

    g_assert_cmpint (g_stat (file, &st), ==, 0);
    g_test_message ("%s: %o", file, (guint) (st.st_mode & 0777));
    g_assert_cmpuint (st.st_mode & 077, ==, 0);
  }
}

static void
test_corrupt_page (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autofree char *moved = NULL;
  g_autofree char *garbage = g_strnfill (4096, 'x');
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileIOStream) stream = NULL;
  GOutputStream *out;

  /* a real database whose table pages were overwritten: the header is fine,
   * only the integrity check can tell */
  reopen (fx);
  commit_events (fx->store, 1, 200, 0);
  g_clear_object (&fx->store);

  file = g_file_new_for_path (path);
  stream = g_file_open_readwrite (file, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_seekable_seek (G_SEEKABLE (stream), 4096, G_SEEK_SET, NULL, &error));
  out = g_io_stream_get_output_stream (G_IO_STREAM (stream));
  g_assert_true (g_output_stream_write_all (out, garbage, 4096, NULL, NULL, &error));
  g_assert_true (g_seekable_seek (G_SEEKABLE (stream), 3 * 4096, G_SEEK_SET, NULL, &error));
  g_assert_true (g_output_stream_write_all (out, garbage, 4096, NULL, NULL, &error));
  g_assert_true (g_io_stream_close (G_IO_STREAM (stream), NULL, &error));

  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);
  g_assert_cmpuint (count_quarantined (fx, &moved), ==, 1);
  g_assert_nonnull (strstr (error->message, moved));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* ---- a failed commit breaks the store ---- */

static void
test_broken (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdSessionRecord) rec = make_session ("00000000000000000000000000000009",
                                                   "chat", "eve", 1);
  g_autoptr(MamdEventRecord) dup = make_event (1, 10, NULL);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;

  reopen (fx);
  commit_events (fx->store, 1, 1, 0);

  /* a reused seq violates the events primary key: the whole txn rolls back */
  mamd_store_txn_put_session (txn, rec);
  mamd_store_txn_append_event (txn, dup);
  g_assert_false (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_true (g_str_has_prefix (error->message, "could not commit state to "));
  g_clear_error (&error);

  /* refuses everything after */
  txn = mamd_store_txn_new ();
  mamd_store_txn_delete_session (txn, rec->id);
  g_assert_false (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_clear_error (&error);
  g_assert_false (mamd_store_flush (fx->store, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_clear_error (&error);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, 0);
  g_assert_cmpuint (snap->last_seq, ==, 1);
}

/* ---- kill -9 ---- */

#define CHILD_IN_FLIGHT 16

typedef struct {
  MamdStore *store;
  guint next;
} ChildState;

static void child_submit (ChildState *state);

static void
child_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree char *line = user_data;
  ChildState *state = g_object_get_data (source, "child-state");
  g_autoptr(GError) error = NULL;
  gsize len = strlen (line);

  if (!mamd_store_commit_finish (MAMD_STORE (source), result, &error)) {
    g_printerr ("child commit failed: %s\n", error->message);
    _exit (3);
  }
  /* acknowledged: tell the parent at once, unbuffered */
  for (gsize done = 0; done < len;) {
    ssize_t n = write (STDOUT_FILENO, line + done, len - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      _exit (4);
    done += (gsize) n;
  }
  child_submit (state);
}

static void
child_submit (ChildState *state)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autofree char *id = session_id_for (state->next);
  g_autoptr(MamdSessionRecord) rec = make_session (id, "chat", "user", state->next + 1);
  g_autoptr(MamdEventRecord) ev = make_event (state->next + 1, state->next, NULL);

  state->next++;
  mamd_store_txn_put_session (txn, rec);
  mamd_store_txn_append_event (txn, ev);
  mamd_store_commit_async (state->store, g_steal_pointer (&txn), child_cb,
                           g_strdup_printf ("%s\n", id));
}

static int
run_writer_child (const char *dir)
{
  g_autoptr(GError) error = NULL;
  ChildState state = { 0 };

  state.store = mamd_store_sqlite_open (dir, &error);
  if (state.store == NULL) {
    g_printerr ("child: %s\n", error->message);
    return 2;
  }
  g_object_set_data (G_OBJECT (state.store), "child-state", &state);
  for (guint i = 0; i < CHILD_IN_FLIGHT; i++)
    child_submit (&state);
  for (;;)
    g_main_context_iteration (NULL, TRUE);
  return 0;
}

static void
test_sigkill (Fixture *fx, gconstpointer data)
{
  const char *argv[] = { self_exe, "--store-writer-child", fx->dir, NULL };
  g_autoptr(GPtrArray) acked = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) pending = g_string_new (NULL);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GHashTable) present = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = db_path (fx);
  GPid pid;
  int out_fd = -1, status = 0;
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                            &pid, NULL, &out_fd, NULL, &error);
  g_assert_no_error (error);

  while (acked->len < 400) {
    char buf[4096];
    ssize_t n = read (out_fd, buf, sizeof buf);
    char *nl;

    if (n < 0 && errno == EINTR)
      continue;
    g_assert_cmpint (n, >, 0);
    g_string_append_len (pending, buf, n);
    while ((nl = strchr (pending->str, '\n')) != NULL) {
      g_ptr_array_add (acked, g_strndup (pending->str, nl - pending->str));
      g_string_erase (pending, 0, nl - pending->str + 1);
    }
  }
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  close (out_fd);
  g_spawn_close_pid (pid);

  /* the database must be sound before mamd touches it again */
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (stmt, 0), ==, "ok");
  sqlite3_finalize (stmt);
  sqlite3_close (db);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_test_message ("%u acknowledged, %u present after SIGKILL", acked->len, snap->sessions->len);
  for (guint i = 0; i < snap->sessions->len; i++) {
    MamdSessionRecord *rec = g_ptr_array_index (snap->sessions, i);

    g_hash_table_add (present, rec->id);
  }
  for (guint i = 0; i < acked->len; i++) {
    const char *id = g_ptr_array_index (acked, i);

    if (!g_hash_table_contains (present, id))
      g_error ("acknowledged session %s lost after SIGKILL", id);
  }
  g_assert_cmpuint (snap->sessions->len, >=, acked->len);
  g_assert_cmpuint (snap->last_seq, >=, acked->len);
}

int
main (int argc, char **argv)
{
  if (argc == 3 && g_str_equal (argv[1], "--store-writer-child"))
    return run_writer_child (argv[2]);

  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  if (self_exe == NULL)
    self_exe = argv[0];

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/mamd/store/bad-detail", test_bad_detail);
  ADD ("/mamd/store/null-column", test_null_column);
  ADD ("/mamd/store/bad-text", test_bad_text);
  ADD ("/mamd/store/upgrade-from-1", test_upgrade_from_1);
  ADD ("/mamd/store/upgrade-from-2", test_upgrade_from_2);
  ADD ("/mamd/store/upgrade-from-3", test_upgrade_from_3);
  ADD ("/mamd/store/locked", test_locked);
  ADD ("/mamd/store/write-locked", test_write_locked);
  ADD ("/mamd/store/corrupt", test_corrupt);
  ADD ("/mamd/store/corrupt-page", test_corrupt_page);
  ADD ("/mamd/store/emptied", test_emptied);
  ADD ("/mamd/store/foreign-log", test_foreign_log);
  ADD ("/mamd/store/private-files", test_private_files);
  ADD ("/mamd/store/newer-schema", test_newer_schema);
  ADD ("/mamd/store/broken", test_broken);
  ADD ("/mamd/store/broken-queued", test_broken_queued);
  ADD ("/mamd/store/sigkill", test_sigkill);
#undef ADD
  return g_test_run ();
}
