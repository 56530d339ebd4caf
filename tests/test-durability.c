/*
 * kill -9 loses nothing that was acknowledged. A burst of sign-ins (and
 * failed enrollments, which request wipes) runs with 16 calls in flight;
 * the daemon is SIGKILLed in the middle of it, restarted on the same state
 * directory, and every acknowledged session, state, wipe and seq must be
 * there. Several rounds on the same store kill at different moments.
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include <sqlite3.h>

#include "mamd-plugin.h"
#include "mamd-test-daemon.h"
#include "mamd-test-util.h"

#define SERVER "chat"
#define IN_FLIGHT 16
#define WAIT_MS 60000
#define MANAGER_IFACE "org.mamd.Mamd1.Manager"

typedef struct _Burst Burst;

typedef struct {
  Burst *burst;
  char *path;
  gboolean revoked; /* the revoking ReportEnrollment was acknowledged */
} Expected;

struct _Burst {
  MamdTestDaemon *d;
  GHashTable *sessions; /* path -> Expected, every acknowledged session so far */
  GHashTable *wipes;    /* wipe id -> NULL, from WipeRequested signals */
  guint64 max_seq;      /* highest acknowledged seq */
  GHashTable *seqs;     /* every acknowledged seq (as pointers) */

  /* the current round */
  guint acked;
  guint kill_after;
  gboolean killed;
  guint in_flight;
  guint started;
  guint unexpected_errors;
};

static void
expected_free (Expected *e)
{
  g_free (e->path);
  g_free (e);
}

static void send_sign_in (Burst *burst);

static void
note_seq (Burst *burst, guint64 seq)
{
  burst->max_seq = MAX (burst->max_seq, seq);
  g_hash_table_add (burst->seqs, GSIZE_TO_POINTER ((gsize) seq));
}

/* Counts an acknowledged reply; SIGKILL exactly when the round's count is
 * reached, while the other calls are still in flight. */
static void
acknowledged (Burst *burst)
{
  burst->acked++;
  if (!burst->killed && burst->acked >= burst->kill_after) {
    burst->killed = TRUE;
    g_assert_cmpint (kill (mamd_test_daemon_get_pid (burst->d), SIGKILL), ==, 0);
  }
}

static void
call_failed (Burst *burst, const char *what, GError *error)
{
  /* after the kill, calls in flight fail: that is the point */
  if (burst->killed)
    return;
  g_test_message ("%s failed before the kill: %s", what, error->message);
  burst->unexpected_errors++;
}

static void
on_report (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Expected *expected = user_data;
  Burst *burst = expected->burst;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  burst->in_flight--;
  if (reply == NULL) {
    call_failed (burst, "ReportEnrollment", error);
  } else {
    g_autoptr(GVariant) dict = g_variant_get_child_value (reply, 0);
    guint64 seq = 0;

    g_assert_true (g_variant_lookup (dict, "seq", "t", &seq));
    note_seq (burst, seq);
    expected->revoked = TRUE;
    acknowledged (burst);
  }
  if (!burst->killed)
    send_sign_in (burst);
}

static void
on_sign_in (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Burst *burst = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) dict = NULL;
  const char *path;
  Expected *expected;
  guint64 seq = 0;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  burst->in_flight--;
  if (reply == NULL) {
    call_failed (burst, "SignIn", error);
    if (!burst->killed)
      send_sign_in (burst);
    return;
  }
  g_variant_get (reply, "(&o@a{sv})", &path, &dict);
  g_assert_true (g_variant_lookup (dict, "seq", "t", &seq));
  note_seq (burst, seq);
  expected = g_new0 (Expected, 1);
  expected->burst = burst;
  expected->path = g_strdup (path);
  g_hash_table_insert (burst->sessions, expected->path, expected);
  acknowledged (burst);
  if (burst->killed)
    return;

  /* every fourth session fails its enrollment: revoked, wipe requested */
  if (g_hash_table_size (burst->sessions) % 4 == 0) {
    burst->in_flight++;
    g_dbus_connection_call (G_DBUS_CONNECTION (source), "org.mamd.Mamd1", "/org/mamd/Mamd1",
                            MANAGER_IFACE, "ReportEnrollment",
                            g_variant_new ("(osi)", path, "failed", 201),
                            G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL,
                            on_report, expected);
  } else {
    send_sign_in (burst);
  }
}

static void
send_sign_in (Burst *burst)
{
  GDBusConnection *connection = mamd_test_daemon_get_connection (burst->d);
  g_autofree char *oid = mamd_test_random_guid ();
  g_autofree char *device = g_strdup_printf ("device-%u", burst->started++);

  burst->in_flight++;
  g_dbus_connection_call (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1", MANAGER_IFACE,
                          "SignIn",
                          g_variant_new ("(ss@a{sv}@a{sv})", SERVER, "test",
                                         mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                                         mamd_test_device ("ios", device)),
                          G_VARIANT_TYPE ("(oa{sv})"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL,
                          on_sign_in, burst);
}

static gboolean
burst_settled (gpointer user_data)
{
  Burst *burst = user_data;

  return burst->killed && burst->in_flight == 0;
}

/* Every WipeRequested seen so far was emitted after its commit: durable. */
static void
collect_wipes_and_consume (Burst *burst)
{
  GPtrArray *signals = mamd_test_daemon_get_signals (burst->d);

  for (guint i = 0; i < signals->len; i++) {
    MamdTestSignal *sig = g_ptr_array_index (signals, i);

    if (g_strcmp0 (sig->member, "WipeRequested") == 0) {
      const char *id = NULL;
      guint64 seq = 0;

      g_variant_get (sig->parameters, "(&sssst)", &id, NULL, NULL, NULL, &seq);
      g_hash_table_add (burst->wipes, g_strdup (id));
      note_seq (burst, seq);
    }
    /* so waits after the restart only see the new daemon's signals */
    sig->consumed = TRUE;
  }
}

static GVariant *
call_list (MamdTestDaemon *d, const char *method, GVariant *args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = mamd_test_daemon_call (d, method, args, "(aa{sv})", &error);

  g_assert_no_error (error);
  return g_variant_get_child_value (reply, 0);
}

static void
verify_after_restart (Burst *burst)
{
  MamdTestDaemon *d = burst->d;
  g_autoptr(GVariant) sessions = call_list (d, "ListSessions", g_variant_new ("(s)", ""));
  g_autoptr(GVariant) wipes = call_list (d, "ListWipes", NULL);
  g_autoptr(GHashTable) listed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr(GHashTable) pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) seq_reply = NULL;
  g_autoptr(GVariant) seq_value = NULL;
  GHashTableIter iter;
  gpointer key, value;

  for (gsize i = 0; i < g_variant_n_children (sessions); i++) {
    g_autoptr(GVariant) entry = g_variant_get_child_value (sessions, i);
    char *path = NULL, *state = NULL;

    g_assert_true (g_variant_lookup (entry, "object-path", "o", &path));
    g_assert_true (g_variant_lookup (entry, "state", "s", &state));
    g_hash_table_insert (listed, path, state);
  }
  g_hash_table_iter_init (&iter, burst->sessions);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    const Expected *expected = value;
    const char *state = g_hash_table_lookup (listed, expected->path);

    if (state == NULL)
      g_error ("acknowledged session %s is lost", expected->path);
    if (expected->revoked)
      g_assert_cmpstr (state, ==, "revoked");
    else if (g_strcmp0 (state, "enrollment-required") != 0)
      /* only an unacknowledged failure report may have moved it on */
      g_assert_cmpstr (state, ==, "revoked");
  }

  for (gsize i = 0; i < g_variant_n_children (wipes); i++) {
    g_autoptr(GVariant) entry = g_variant_get_child_value (wipes, i);
    char *id = NULL;

    g_assert_true (g_variant_lookup (entry, "id", "s", &id));
    g_hash_table_add (pending, id);
  }
  g_hash_table_iter_init (&iter, burst->wipes);
  while (g_hash_table_iter_next (&iter, &key, NULL)) {
    if (!g_hash_table_contains (pending, key))
      g_error ("acknowledged wipe %s is not pending any more", (const char *) key);
    if (mamd_test_daemon_wait_signal (d, "WipeRequested", key, WAIT_MS) == NULL)
      g_error ("wipe %s was not announced again after the restart", (const char *) key);
  }

  seq_reply = g_dbus_connection_call_sync (mamd_test_daemon_get_connection (d), "org.mamd.Mamd1",
                                           "/org/mamd/Mamd1", "org.freedesktop.DBus.Properties",
                                           "Get", g_variant_new ("(ss)", MANAGER_IFACE,
                                                                 "LastEventSeq"),
                                           G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                           NULL, &error);
  g_assert_no_error (error);
  g_variant_get (seq_reply, "(v)", &seq_value);
  g_assert_cmpuint (g_variant_get_uint64 (seq_value), >=, burst->max_seq);
}

/* The event log holds a row for every acknowledged seq (LastEventSeq alone
 * would not show lost rows). */
static void
assert_events_kept (Burst *burst)
{
  g_autofree char *db_path = g_build_filename (mamd_test_daemon_get_state_dir (burst->d),
                                               "state.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  GHashTableIter iter;
  gpointer key;

  g_assert_cmpint (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) FROM events WHERE seq = ?1", -1,
                                       &stmt, NULL), ==, SQLITE_OK);
  g_hash_table_iter_init (&iter, burst->seqs);
  while (g_hash_table_iter_next (&iter, &key, NULL)) {
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) GPOINTER_TO_SIZE (key));
    g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
    if (sqlite3_column_int (stmt, 0) != 1)
      g_error ("the event of acknowledged seq %" G_GSIZE_FORMAT " is lost",
               GPOINTER_TO_SIZE (key));
    sqlite3_reset (stmt);
  }
  sqlite3_finalize (stmt);
  sqlite3_close (db);
}

static void
assert_store_integrity (MamdTestDaemon *d)
{
  g_autofree char *db_path = g_build_filename (mamd_test_daemon_get_state_dir (d), "state.db",
                                               NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (stmt, 0), ==, "ok");
  sqlite3_finalize (stmt);
  sqlite3_close (db);
}

static void
test_kill_rounds (void)
{
  static const guint kill_points[] = { 3, 40, 150 };
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  Burst burst = { 0 };

  burst.d = d;
  burst.sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) expected_free);
  burst.wipes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  burst.seqs = g_hash_table_new (g_direct_hash, g_direct_equal);
  mamd_test_daemon_write_default_setup (d, SERVER);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);

  for (guint round = 0; round < G_N_ELEMENTS (kill_points); round++) {
    burst.acked = 0;
    burst.killed = FALSE;
    burst.kill_after = kill_points[round];
    for (guint i = 0; i < IN_FLIGHT; i++)
      send_sign_in (&burst);
    g_assert_true (mamd_test_daemon_iterate_until (d, burst_settled, &burst, WAIT_MS * 5));
    g_assert_cmpuint (burst.unexpected_errors, ==, 0);
    g_assert_cmpint (mamd_test_daemon_kill (d, SIGKILL), ==, 128 + SIGKILL);
    g_test_message ("round %u: killed after %u acknowledged replies, %u sessions, %u wipes "
                    "so far", round, burst.acked, g_hash_table_size (burst.sessions),
                    g_hash_table_size (burst.wipes));
    collect_wipes_and_consume (&burst);
    assert_store_integrity (d);
    assert_events_kept (&burst);

    /* the store took the kill: a new daemon starts on it and has it all */
    mamd_test_daemon_start (d, &error);
    g_assert_no_error (error);
    verify_after_restart (&burst);
  }
  g_assert_cmpuint (g_hash_table_size (burst.wipes), >, 0);
  g_assert_cmpint (mamd_test_daemon_stop (d), ==, 0);
  assert_store_integrity (d);

  g_hash_table_unref (burst.sessions);
  g_hash_table_unref (burst.wipes);
  g_hash_table_unref (burst.seqs);
}

/* ---- a failing disk ---- */

#define DISK_LIMIT (192 * 1024)
#define MAX_SIGN_INS 1000

static guint
count_sessions (MamdTestDaemon *d)
{
  g_autoptr(GVariant) sessions = call_list (d, "ListSessions", g_variant_new ("(s)", ""));

  return (guint) g_variant_n_children (sessions);
}

/* Writes start failing (as on a full disk): the sign-in that hits it gets
 * Store, mamd says why and exits 1 instead of serving state it cannot keep,
 * and a new daemon on the same store has every session acknowledged before. */
static void
test_disk_full (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *remote = NULL;
  g_autofree char *log = NULL;
  guint acked = 0;

  mamd_test_daemon_write_default_setup (d, SERVER);
  mamd_test_daemon_set_file_size_limit (d, DISK_LIMIT);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  while (error == NULL && acked < MAX_SIGN_INS) {
    g_autofree char *oid = mamd_test_random_guid ();
    g_autofree char *device = g_strdup_printf ("device-%u", acked);
    g_autoptr(GVariant) result = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", device, NULL,
                                                           &error);
    if (result != NULL)
      acked++;
  }
  g_test_message ("%u sign-ins acknowledged before the store failed", acked);
  g_assert_cmpuint (acked, >, 0);
  g_assert_cmpuint (acked, <, MAX_SIGN_INS);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, "org.mamd.Mamd1.Error.Store");
  g_clear_error (&error);

  g_assert_cmpint (mamd_test_daemon_wait_exit (d, WAIT_MS), ==, 1);
  log = mamd_test_daemon_get_log (d);
  g_assert_nonnull (strstr (log, "state store failed, stopping: could not commit state"));
  g_assert_nonnull (strstr (log, "exiting: memory may be ahead of the state store"));

  mamd_test_daemon_set_file_size_limit (d, 0);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_sessions (d), ==, acked);
  g_assert_cmpint (mamd_test_daemon_stop (d), ==, 0);
  assert_store_integrity (d);
}

/* ---- answers wait for the commits under way ---- */

typedef struct {
  GPtrArray *order; /* labels of the calls, in the order their replies came */
  GVariant *check;  /* CheckAccess's reply */
  GError *report_b; /* the second ReportEnrollment's error */
} Replies;

typedef struct {
  Replies *r;
  const char *label;
} Pending;

static void
on_reply (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Pending *p = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res,
                                                             &error);

  if (g_str_equal (p->label, "check"))
    p->r->check = g_steal_pointer (&reply);
  if (g_str_equal (p->label, "report-b"))
    p->r->report_b = g_steal_pointer (&error);
  g_assert_no_error (error);
  g_ptr_array_add (p->r->order, (gpointer) p->label);
}

static void
call (MamdTestDaemon *d, const char *method, GVariant *args, Pending *p)
{
  g_dbus_connection_call (mamd_test_daemon_get_connection (d), "org.mamd.Mamd1",
                          "/org/mamd/Mamd1", MANAGER_IFACE, method, args, NULL,
                          G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, on_reply, p);
}

static gboolean
all_replied (gpointer user_data)
{
  Replies *r = user_data;

  return r->order->len == 4;
}

static gboolean
never (gpointer user_data)
{
  return FALSE;
}

/* No answer may show a change that a crash could still undo. Another
 * program holds the store's write lock, so commits wait. CheckAccess right
 * after a successful enrollment report must not say "allowed" before the
 * report is durable; a report on a session signed out a moment ago must not
 * say NotFound before the sign-out is durable. On one connection mamd
 * handles the calls in order; each answer must come after the one it rests
 * on. */
static void
test_answers_wait_for_commits (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) b = NULL;
  g_autofree char *oid_a = mamd_test_random_guid ();
  g_autofree char *oid_b = mamd_test_random_guid ();
  g_autofree char *path_a = NULL;
  g_autofree char *path_b = NULL;
  g_autoptr(GPtrArray) order = g_ptr_array_new ();
  Replies r = { order, NULL, NULL };
  Pending report_a = { &r, "report-a" }, check = { &r, "check" };
  Pending sign_out = { &r, "sign-out-b" }, report_b = { &r, "report-b" };
  sqlite3 *db = NULL;
  gboolean allowed;
  const char *state;

  mamd_test_daemon_write_default_setup (d, SERVER);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  a = mamd_test_daemon_sign_in (d, SERVER, oid_a, "ios", "device-a", &path_a, &error);
  g_assert_no_error (error);
  b = mamd_test_daemon_sign_in (d, SERVER, oid_b, "ios", "device-b", &path_b, &error);
  g_assert_no_error (error);

  db = mamd_test_lock_store (mamd_test_daemon_get_state_dir (d));

  call (d, "ReportEnrollment", g_variant_new ("(osi)", path_a, "success", -1), &report_a);
  call (d, "CheckAccess", g_variant_new ("(o)", path_a), &check);
  call (d, "SignOut", g_variant_new ("(o)", path_b), &sign_out);
  call (d, "ReportEnrollment", g_variant_new ("(osi)", path_b, "success", -1), &report_b);
  /* while the lock is held (mamd waits it out), nothing may answer; an
   * answer that does not wait comes at once */
  mamd_test_daemon_iterate_until (d, never, NULL, 500);
  g_assert_cmpuint (order->len, ==, 0);

  mamd_test_unlock_store (db);
  g_assert_true (mamd_test_daemon_iterate_until (d, all_replied, &r, WAIT_MS));
  g_assert_cmpstr (g_ptr_array_index (order, 0), ==, "report-a");
  g_assert_cmpstr (g_ptr_array_index (order, 1), ==, "check");
  g_assert_cmpstr (g_ptr_array_index (order, 2), ==, "sign-out-b");
  g_assert_cmpstr (g_ptr_array_index (order, 3), ==, "report-b");
  g_variant_get (r.check, "(b&s&s)", &allowed, &state, NULL);
  g_assert_true (allowed);
  g_assert_cmpstr (state, ==, "enrolled");
  g_variant_unref (r.check);
  g_assert_nonnull (r.report_b);
  g_assert_true (g_dbus_error_is_remote_error (r.report_b));
  {
    g_autofree char *name = g_dbus_error_get_remote_error (r.report_b);
    g_assert_cmpstr (name, ==, "org.mamd.Mamd1.Error.NotFound");
  }
  g_error_free (r.report_b);
  g_assert_cmpint (mamd_test_daemon_stop (d), ==, 0);
}

static void
on_enrolled (GDBusConnection *connection, const char *sender, const char *object_path,
             const char *interface, const char *member, GVariant *parameters,
             gpointer user_data)
{
  char **session = user_data;

  g_free (*session);
  g_variant_get (parameters, "(ost)", session, NULL, NULL);
}

static gboolean
have_reply (gpointer user_data)
{
  Replies *r = user_data;

  return r->order->len == 1;
}

/* A change whose commit is under way when SIGTERM comes is answered and
 * announced before mamd lets go of its name: a client that subscribes by
 * the name (as mamctl monitor does) gets the signal. */
static void
test_stop_mid_commit (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) a = NULL;
  g_autofree char *oid = mamd_test_random_guid ();
  g_autofree char *path = NULL;
  g_autofree char *enrolled = NULL;
  g_autoptr(GPtrArray) order = g_ptr_array_new ();
  Replies r = { order, NULL, NULL };
  Pending report = { &r, "report" };
  g_autofree char *log = NULL;
  GDBusConnection *connection;
  sqlite3 *db = NULL;
  guint subscription;

  mamd_test_daemon_write_default_setup (d, SERVER);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  connection = mamd_test_daemon_get_connection (d);
  subscription = g_dbus_connection_signal_subscribe (connection, "org.mamd.Mamd1",
                                                     MANAGER_IFACE, "Enrolled", NULL, NULL,
                                                     G_DBUS_SIGNAL_FLAGS_NONE, on_enrolled,
                                                     &enrolled, NULL);
  a = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "device-a", &path, &error);
  g_assert_no_error (error);

  db = mamd_test_lock_store (mamd_test_daemon_get_state_dir (d));
  call (d, "ReportEnrollment", g_variant_new ("(osi)", path, "success", -1), &report);
  /* mamd logs the call as its handler starts, which submits the commit that
   * then waits for the lock */
  g_assert_true (mamd_test_daemon_wait_log (d, "ReportEnrollment from ", WAIT_MS));
  g_assert_cmpint (kill (mamd_test_daemon_get_pid (d), SIGTERM), ==, 0);
  g_assert_true (mamd_test_daemon_wait_log (d, "shutting down", WAIT_MS));
  /* a reload now could commit after the last signals went out: mamd
   * handles the signal once the commit under way lets its loop run */
  g_assert_cmpint (kill (mamd_test_daemon_get_pid (d), SIGHUP), ==, 0);
  mamd_test_daemon_iterate_until (d, never, NULL, 200);
  g_assert_cmpuint (order->len, ==, 0);

  mamd_test_unlock_store (db);
  g_assert_true (mamd_test_daemon_iterate_until (d, have_reply, &r, WAIT_MS));
  g_assert_true (mamd_test_daemon_wait_log (d, "reload (SIGHUP) ignored: mamd is stopping",
                                            WAIT_MS));
  g_assert_cmpint (mamd_test_daemon_wait_exit (d, WAIT_MS), ==, 0);
  log = mamd_test_daemon_get_log (d);
  g_assert_null (strstr (log, "configuration reloaded (SIGHUP)"));
  /* the signal was sent before the reply, on the same connection */
  mamd_test_daemon_iterate_until (d, never, NULL, 100);
  g_assert_cmpstr (enrolled, ==, path);
  g_dbus_connection_signal_unsubscribe (connection, subscription);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  (void) mamd_error_quark ();
  g_test_add_func ("/mamd/durability/sigkill-mid-burst", test_kill_rounds);
  g_test_add_func ("/mamd/durability/disk-full", test_disk_full);
  g_test_add_func ("/mamd/durability/answers-wait-for-commits", test_answers_wait_for_commits);
  g_test_add_func ("/mamd/durability/stop-mid-commit", test_stop_mid_commit);
  return g_test_run ();
}
