/*
 * Black-box tests of the real mamd binary on a private dbus-daemon: its life
 * cycle. Start-up failures, SIGTERM, reload (by method, SIGHUP and file
 * change, and a burst of signals it causes) and restarts (pending wipes
 * announced again, seq keeps increasing).
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "mamd-plugin.h"
#include "mamd-test-dbus-helpers.h"

/* ---- start-up ---- */

static void
test_startup_no_config (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (mamd_test_daemon_get_tmp_dir (d), "nowhere", NULL);
  g_autofree char *log = NULL;

  mamd_test_daemon_set_config_dir (d, missing);
  g_assert_false (mamd_test_daemon_start (d, &error));
  g_assert_cmpint (mamd_test_daemon_get_exit_status (d), ==, 1);
  log = mamd_test_daemon_get_log (d);
  g_assert_nonnull (strstr (log, "mamd: cannot start: "));
  g_assert_nonnull (strstr (log, missing));
}

static void
test_startup_name_taken (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *log = NULL;
  guint32 result = 0;

  mamd_test_daemon_write_default_setup (d, SERVER);
  reply = g_dbus_connection_call_sync (mamd_test_daemon_get_connection (d), "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "RequestName", g_variant_new ("(su)", "org.mamd.Mamd1", 4),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  g_assert_cmpuint (result, ==, 1); /* primary owner */

  g_assert_false (mamd_test_daemon_start (d, &error));
  g_assert_cmpint (mamd_test_daemon_get_exit_status (d), ==, 1);
  log = mamd_test_daemon_get_log (d);
  g_assert_nonnull (strstr (log, "mamd: cannot own org.mamd.Mamd1 on the "));
  g_assert_nonnull (strstr (log, "is another mamd running"));
}

static void
test_startup_state_unusable (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *file = g_build_filename (mamd_test_daemon_get_tmp_dir (d), "state-file", NULL);
  g_autofree char *log = NULL;

  mamd_test_daemon_write_default_setup (d, SERVER);
  g_file_set_contents (file, "not a directory", -1, &error);
  g_assert_no_error (error);
  mamd_test_daemon_set_state_dir (d, file);
  g_assert_false (mamd_test_daemon_start (d, &error));
  g_assert_cmpint (mamd_test_daemon_get_exit_status (d), ==, 1);
  log = mamd_test_daemon_get_log (d);
  g_assert_nonnull (strstr (log, "mamd: cannot start: "));
}

static void
on_call_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GError **error = user_data;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), res,
                                                             error);

  g_assert_null (reply);
  g_assert_nonnull (*error);
}

/* SIGTERM: a call still running (the plugin holds it) is answered, Busy,
 * before mamd exits; it does not vanish into NoReply. */
static void
test_sigterm (void)
{
  /* a permissive umask: the state files stay private all the same */
  mode_t old_umask = umask (022);
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  GDBusConnection *connection = mamd_test_daemon_get_connection (d);
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GError) error = NULL;
  GError *slow_error = NULL;
  GVariant *credential;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000001", "ios",
                                     "device-1", NULL, &error);
  g_assert_no_error (error);
  umask (old_umask);
  for (guint i = 0; i < 3; i++) {
    static const char *const files[] = { "state.db", "state.db-wal", "state.db-shm" };
    g_autofree char *file = g_build_filename (mamd_test_daemon_get_state_dir (d), files[i],
                                              NULL);
    struct stat st;

    g_assert_cmpint (stat (file, &st), ==, 0);
    g_assert_cmpint (st.st_mode & 077, ==, 0);
  }

  credential = g_variant_new_parsed ("{'object-id': <'0c0ffee0-0000-4000-8000-000000000002'>, "
                                     "'tenant-id': <%s>, 'delay-ms': <uint32 600000>}",
                                     MAMD_TEST_TENANT_ID);
  g_dbus_connection_call (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1", MANAGER_IFACE,
                          "SignIn",
                          g_variant_new ("(ss@a{sv}@a{sv})", SERVER, "test", credential,
                                         mamd_test_device ("ios", "slow")),
                          G_VARIANT_TYPE ("(oa{sv})"), G_DBUS_CALL_FLAGS_NONE, 700000, NULL,
                          on_call_done, &slow_error);
  /* answered after the sign-in started: mamd takes one sender's calls in order */
  status = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_assert_no_error (error);

  g_assert_cmpint (mamd_test_daemon_kill (d, SIGTERM), ==, 0);
  g_assert_false (mamd_test_daemon_is_running (d));
  while (slow_error == NULL)
    g_main_context_iteration (NULL, TRUE);
  assert_dbus_error (slow_error, "org.mamd.Mamd1.Error.Busy");
  g_assert_nonnull (strstr (slow_error->message, "mamd is stopping"));
  g_error_free (slow_error);
}

/* ---- reload ---- */

typedef enum {
  RELOAD_METHOD,
  RELOAD_SIGHUP,
  RELOAD_FILE_CHANGE,
} ReloadVia;

/* Points the symlink @link at a new configuration directory @target with
 * mamd.conf, the licence (in the directory, as by default) and SERVER
 * (@enable). The swap is one rename in the parent, which mamd does not
 * watch: its monitors stay on the old directory, so only an explicit
 * reload can see the change. */
static void
swap_config_dir (MamdTestDaemon *d, const char *link, const char *target, gboolean enable)
{
  g_autofree char *tmp_link = g_strconcat (link, ".new", NULL);

  mamd_test_daemon_set_config_dir (d, target);
  mamd_test_daemon_set_license_file (d, "license.json");
  mamd_test_daemon_write_daemon_conf (d, NULL);
  mamd_test_daemon_write_license (d, "advanced", g_get_real_time () / G_USEC_PER_SEC + 86400);
  mamd_test_daemon_write_mam_server (d, SERVER, enable, NULL);
  mamd_test_daemon_set_config_dir (d, link);
  g_assert_cmpint (symlink (target, tmp_link), ==, 0);
  g_assert_cmpint (rename (tmp_link, link), ==, 0);
}

static void
test_reload (gconstpointer data)
{
  ReloadVia via = GPOINTER_TO_INT (data);
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = NULL;
  g_autofree char *state = NULL;
  g_autofree char *now_state = NULL;
  g_autofree char *unchanged = NULL;
  g_autofree char *first = g_strdup (mamd_test_daemon_get_config_dir (d));
  g_autofree char *second = g_build_filename (mamd_test_daemon_get_tmp_dir (d), "config-2",
                                              NULL);
  g_autofree char *link = g_build_filename (mamd_test_daemon_get_tmp_dir (d), "config-link",
                                            NULL);
  const MamdTestSignal *sig;
  gboolean applies = FALSE, gate_open = FALSE;

  mamd_test_daemon_write_license (d, "advanced", g_get_real_time () / G_USEC_PER_SEC + 86400);
  if (via == RELOAD_FILE_CHANGE) {
    mamd_test_daemon_write_daemon_conf (d, NULL);
    mamd_test_daemon_write_mam_server (d, SERVER, FALSE, NULL);
  } else {
    /* mamd reads its configuration through a symlink that the test swaps */
    swap_config_dir (d, link, first, FALSE);
  }
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  /* the first start announces the server: MAM does not apply yet */
  sig = wait_signal (d, "PolicyChanged", SERVER);
  g_variant_get (sig->parameters, "(sbbst)", NULL, &applies, &gate_open, NULL, NULL);
  g_assert_false (applies);

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000007", "ios",
                                     "dev", &path, &error);
  g_assert_no_error (error);
  state = dict_string (result, "state");
  g_assert_cmpstr (state, ==, "active");

  /* MAM newly applies: the live session is restricted at once */
  if (via == RELOAD_FILE_CHANGE)
    mamd_test_daemon_write_mam_server (d, SERVER, TRUE, NULL);
  else
    swap_config_dir (d, link, second, TRUE);
  if (via == RELOAD_SIGHUP) {
    LogWait wait = { d, "configuration reloaded (SIGHUP)" };

    g_assert_cmpint (kill (mamd_test_daemon_get_pid (d), SIGHUP), ==, 0);
    g_assert_true (mamd_test_daemon_iterate_until (d, log_contains, &wait, WAIT_MS));
  } else if (via == RELOAD_METHOD) {
    reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
    g_assert_no_error (error);
  } else {
    /* nobody asks: the file monitor notices the change on its own */
    LogWait wait = { d, "configuration reloaded (file change)" };

    g_assert_true (mamd_test_daemon_iterate_until (d, log_contains, &wait, WAIT_MS));
  }
  sig = wait_signal (d, "EnrollmentRequired", path);
  g_assert_cmpuint (signal_seq (sig), >, dict_uint64 (result, "seq"));
  /* MAM applies now, and its gate is open */
  sig = wait_signal (d, "PolicyChanged", SERVER);
  g_assert_true (g_variant_is_of_type (sig->parameters, G_VARIANT_TYPE ("(sbbst)")));
  g_variant_get (sig->parameters, "(sbbst)", NULL, &applies, &gate_open, NULL, NULL);
  g_assert_true (applies);
  g_assert_true (gate_open);
  wait_state_change (d, path, "enrollment-required");
  now_state = session_state (d, path);
  g_assert_cmpstr (now_state, ==, "enrollment-required");

  /* mamd now watches the directory it reloaded from: an edit there (of
   * mamd.conf, beside the licence) is picked up without being asked */
  if (via != RELOAD_FILE_CHANGE) {
    LogWait wait = { d, "configuration reloaded (file change)" };

    mamd_test_daemon_write_daemon_conf (d, NULL);
    g_assert_true (mamd_test_daemon_iterate_until (d, log_contains, &wait, WAIT_MS));
  }

  /* invalid configuration is refused and nothing changes */
  mamd_test_daemon_write_server (d, SERVER, "[Server]\nEnable=maybe\n");
  g_clear_pointer (&reply, g_variant_unref);
  reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidConfig");
  unchanged = session_state (d, path);
  g_assert_cmpstr (unchanged, ==, "enrollment-required");
}

typedef struct {
  MamdTestDaemon *d;
  gboolean enable;
} EnableWait;

/* SERVER's "enable" in ListServers is @enable */
static gboolean
server_enable_is (gpointer user_data)
{
  EnableWait *wait = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = mamd_test_daemon_call (wait->d, "ListServers", NULL,
                                                     "(aa{sv})", &error);
  g_autoptr(GVariant) servers = NULL;
  GVariantIter iter;
  GVariant *server;
  gboolean found = FALSE;

  g_assert_no_error (error);
  servers = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, servers);
  while ((server = g_variant_iter_next_value (&iter)) != NULL) {
    const char *id = NULL;
    gboolean enable = FALSE;

    g_variant_lookup (server, "id", "&s", &id);
    g_variant_lookup (server, "enable", "b", &enable);
    found |= g_strcmp0 (id, SERVER) == 0 && enable == wait->enable;
    g_variant_unref (server);
  }
  return found;
}

/* An edit saved while a SIGHUP reload runs is not lost: the reload may
 * have read the file before the edit, and the file monitors that see it
 * are kept across reloads (replacing them dropped events queued for the
 * old ones). A few rounds, since the timing varies. */
static void
test_edit_during_sighup (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);

  for (guint round = 1; round <= 6; round++) {
    EnableWait wait = { d, round % 2 == 0 }; /* it starts enabled */

    g_assert_cmpint (kill (mamd_test_daemon_get_pid (d), SIGHUP), ==, 0);
    mamd_test_daemon_write_mam_server (d, SERVER, wait.enable, NULL);
    if (!mamd_test_daemon_iterate_until (d, server_enable_is, &wait, 5000))
      g_error ("round %u: Enable=%s was saved, mamd did not pick it up", round,
               wait.enable ? "true" : "false");
  }
}

/* A reload that restricts many sessions at once: every signal arrives, in
 * seq order, and the daemon still answers calls afterwards. */
#define N_BURST 300

typedef struct {
  MamdTestDaemon *d;
  guint from;
  guint want;
} CountWait;

static guint
count_signals (MamdTestDaemon *d, guint from, const char *member)
{
  GPtrArray *signals = mamd_test_daemon_get_signals (d);
  guint n = 0;

  for (guint i = from; i < signals->len; i++) {
    const MamdTestSignal *sig = g_ptr_array_index (signals, i);
    n += g_strcmp0 (sig->member, member) == 0;
  }
  return n;
}

static gboolean
enough_enrollment_required (gpointer user_data)
{
  CountWait *wait = user_data;

  return count_signals (wait->d, wait->from, "EnrollmentRequired") >= wait->want;
}

static void
test_signal_burst_ordered (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) status = NULL;
  GPtrArray *signals;
  CountWait wait = { d, 0, N_BURST };
  guint64 previous = 0;

  mamd_test_daemon_write_daemon_conf (d, NULL);
  mamd_test_daemon_write_license (d, "advanced", g_get_real_time () / G_USEC_PER_SEC + 86400);
  mamd_test_daemon_write_mam_server (d, SERVER, FALSE, NULL);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < N_BURST; i++) {
    g_autofree char *oid = mamd_test_random_guid ();
    g_autofree char *device = g_strdup_printf ("device-%u", i);
    g_autoptr(GVariant) result = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", device, NULL,
                                                           &error);
    g_assert_no_error (error);
  }

  wait.from = mamd_test_daemon_get_signals (d)->len;
  mamd_test_daemon_write_mam_server (d, SERVER, TRUE, NULL);
  reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  g_assert_no_error (error);
  status = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_assert_no_error (error);
  g_assert_true (mamd_test_daemon_iterate_until (d, enough_enrollment_required, &wait, WAIT_MS));
  g_assert_cmpuint (count_signals (d, wait.from, "EnrollmentRequired"), ==, N_BURST);

  /* the Manager's signals leave in seq order */
  signals = mamd_test_daemon_get_signals (d);
  for (guint i = wait.from; i < signals->len; i++) {
    const MamdTestSignal *sig = g_ptr_array_index (signals, i);

    if (g_strcmp0 (sig->interface, MANAGER_IFACE) != 0)
      continue;
    g_assert_cmpuint (signal_seq (sig), >, previous);
    previous = signal_seq (sig);
  }
}

/* ---- restarts ---- */

static void
restart (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (mamd_test_daemon_stop (d), ==, 0);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
}

static gboolean
wipe_announced_since (MamdTestDaemon *d, guint from, const char *wipe_id)
{
  GPtrArray *signals = mamd_test_daemon_get_signals (d);

  for (guint i = from; i < signals->len; i++) {
    const MamdTestSignal *sig = g_ptr_array_index (signals, i);
    const char *id = NULL;

    if (g_strcmp0 (sig->member, "WipeRequested") != 0)
      continue;
    g_variant_get (sig->parameters, "(&sssst)", &id, NULL, NULL, NULL, NULL);
    if (g_strcmp0 (id, wipe_id) == 0)
      return TRUE;
  }
  return FALSE;
}

/* The unique bus name that owns org.mamd.Mamd1 now. */
static char *
name_owner (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  char *owner = NULL;

  reply = g_dbus_connection_call_sync (mamd_test_daemon_get_connection (d),
                                       "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetNameOwner",
                                       g_variant_new ("(s)", "org.mamd.Mamd1"),
                                       G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(s)", &owner);
  return owner;
}

static void
test_wipe_restart (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) failed = NULL;
  g_autoptr(GVariant) ack = NULL;
  g_autoptr(GVariant) wipes = NULL;
  g_autoptr(GVariant) other = NULL;
  g_autofree char *path = NULL;
  g_autofree char *other_path = NULL;
  g_autofree char *wipe_id = NULL;
  g_autofree char *owner = NULL;
  const MamdTestSignal *sig;
  guint64 wipe_seq, ack_seq;
  guint mark;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000008", "ios",
                                     "dev-wipe", &path, &error);
  g_assert_no_error (error);
  failed = report (d, path, "failed", 205, &error);
  g_assert_no_error (error);
  sig = wait_signal (d, "WipeRequested", NULL);
  g_variant_get (sig->parameters, "(sssst)", &wipe_id, NULL, NULL, NULL, NULL);
  wipe_seq = signal_seq (sig);
  g_assert_cmpuint (wipe_seq, >, dict_uint64 (failed, "seq")); /* after the revocation */

  /* pending wipes are announced again by the next daemon, with their seq */
  restart (d);
  owner = name_owner (d);
  sig = wait_signal (d, "WipeRequested", wipe_id);
  g_assert_cmpstr (sig->sender, ==, owner);
  g_assert_cmpuint (signal_seq (sig), ==, wipe_seq);

  ack = mamd_test_daemon_call (d, "AcknowledgeWipe", g_variant_new ("(s)", wipe_id), "(t)",
                               &error);
  g_assert_no_error (error);
  g_variant_get (ack, "(t)", &ack_seq);
  g_assert_cmpuint (ack_seq, >, wipe_seq);
  g_assert_cmpuint (ack_seq, ==, last_event_seq (d));

  restart (d);
  mark = mamd_test_daemon_get_signals (d)->len;
  wipes = mamd_test_daemon_call (d, "ListWipes", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (wipes), ==, "(aa{sv})");
  {
    g_autoptr(GVariant) list = g_variant_get_child_value (wipes, 0);
    g_assert_cmpuint (g_variant_n_children (list), ==, 0);
  }
  /* signals leave in order: once this sign-in's signal is here, any
   * re-announcement queued at start-up would have arrived before it */
  other = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000009", "ios",
                                    "dev-other", &other_path, &error);
  g_assert_no_error (error);
  wait_signal (d, "EnrollmentRequired", other_path);
  g_assert_false (wipe_announced_since (d, mark, wipe_id));
}

static void
test_seq_across_restart (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  g_autofree char *path = NULL;
  guint64 seq1, last1, last2, seq2;

  first = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-00000000000a", "ios",
                                    "dev", &path, &error);
  g_assert_no_error (error);
  seq1 = dict_uint64 (first, "seq");
  last1 = last_event_seq (d);
  g_assert_cmpuint (last1, >=, seq1);

  restart (d);
  last2 = last_event_seq (d);
  g_assert_cmpuint (last2, >=, last1);
  second = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-00000000000b", "ios",
                                     "dev", NULL, &error);
  g_assert_no_error (error);
  seq2 = dict_uint64 (second, "seq");
  g_assert_cmpuint (seq2, >, last1);
  g_assert_cmpuint (seq2, >, seq1);
  {
    g_autofree char *state = session_state (d, path);
    g_assert_cmpstr (state, ==, "enrollment-required");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* the client side maps org.mamd.Mamd1.Error.* names too */
  (void) mamd_error_quark ();

  g_test_add_func ("/mamd/dbus/startup/no-config-dir", test_startup_no_config);
  g_test_add_func ("/mamd/dbus/startup/name-taken", test_startup_name_taken);
  g_test_add_func ("/mamd/dbus/startup/state-dir-unusable", test_startup_state_unusable);
  g_test_add_func ("/mamd/dbus/sigterm", test_sigterm);
  g_test_add_data_func ("/mamd/dbus/reload/method", GINT_TO_POINTER (RELOAD_METHOD), test_reload);
  g_test_add_data_func ("/mamd/dbus/reload/sighup", GINT_TO_POINTER (RELOAD_SIGHUP), test_reload);
  g_test_add_data_func ("/mamd/dbus/reload/file-change", GINT_TO_POINTER (RELOAD_FILE_CHANGE),
                        test_reload);
  g_test_add_func ("/mamd/dbus/reload/edit-during-sighup", test_edit_during_sighup);
  g_test_add_func ("/mamd/dbus/reload/signal-burst-ordered", test_signal_burst_ordered);
  g_test_add_func ("/mamd/dbus/restart/wipe-reannounced", test_wipe_restart);
  g_test_add_func ("/mamd/dbus/restart/seq-increasing", test_seq_across_restart);
  return g_test_run ();
}
