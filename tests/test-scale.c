/*
 * mamd at the scale of a large deployment: what an operator meets with tens
 * of thousands of sessions. Sessions are written to the state store before
 * mamd starts (as a restart would find them), so the tests do not spend
 * their time signing in.
 */
#include "config.h"

#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "mamd-dbus-private.h"
#include "mamd-plugin-loader.h"
#include "mamd-store.h"
#include "mamd-test-daemon.h"
#include "mamd-test-engine-fixture.h"
#include "mamd-test-util.h"

#define SERVER "chat"

static void
commit_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (mamd_store_commit_finish (MAMD_STORE (source), res, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

/* @n live sessions of SERVER in the store of @state_dir, as a sign-in
 * through "test" leaves them (enrollment-required where MAM applies,
 * active where it does not), owned by this uid, each with a device id of
 * @device_id_len bytes. */
static void
write_sessions (const char *state_dir, guint n, const char *tenant, gboolean mam,
                gsize device_id_len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdStore) store = mamd_store_sqlite_open (state_dir, &error);
  g_autofree char *pad = g_strnfill (MAX (device_id_len, 8), 'd');
  MamdStoreTxn *txn = mamd_store_txn_new ();
  gboolean done = FALSE;

  g_assert_no_error (error);
  for (guint i = 0; i < n; i++) {
    g_autoptr(MamdSessionRecord) rec = mamd_session_record_new ();

    rec->id = g_strdup_printf ("%032x", i + 1);
    rec->server_id = g_intern_static_string (SERVER);
    rec->method = g_intern_static_string ("test");
    rec->object_id = g_strdup_printf ("%08x-0000-4000-8000-000000000000", i + 1);
    rec->tenant_id = g_intern_string (tenant);
    rec->device_id = g_strdup_printf ("%08u%s", i, pad + 8);
    rec->platform = g_intern_static_string ("ios");
    rec->id_attribute = g_intern_static_string ("object-id");
    rec->id_source = g_intern_static_string ("test credential");
    rec->reason = mam ? g_intern_static_string ("Intune MAM enrollment is required by server chat")
                      : NULL;
    rec->owner_uid = getuid ();
    rec->state = mam ? MAMD_SESSION_STATE_ENROLLMENT_REQUIRED : MAMD_SESSION_STATE_ACTIVE;
    rec->mam_required = mam;
    rec->created = rec->updated = g_get_real_time ();
    rec->seq = i + 1;
    mamd_store_txn_put_session (txn, rec);
  }
  mamd_store_commit_async (store, txn, commit_cb, &done);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
}

static guint
status_sessions (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_autoptr(GVariant) status = NULL;
  guint n = 0;

  g_assert_no_error (error);
  status = g_variant_get_child_value (reply, 0);
  g_assert_true (g_variant_lookup (status, "sessions", "u", &n));
  return n;
}

/* A reply larger than the system bus lets through (its max_message_size,
 * 32 MiB, which the fixture's bus keeps) made dbus-daemon disconnect mamd,
 * which then stopped: ListSessions of some 50,000 sessions took the daemon
 * down and was never answered. It is refused with an error that says why. */
static void
test_list_sessions_too_large (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *remote = NULL;

  mamd_test_daemon_write_default_setup (d, SERVER);
  /* 25,000 sessions of ~1.7 KiB each in the reply: over 40 MiB */
  write_sessions (mamd_test_daemon_get_state_dir (d), 25000, MAMD_TEST_TENANT_ID, TRUE, 1024);
  g_assert_true (mamd_test_daemon_start (d, &error));
  g_assert_no_error (error);

  reply = mamd_test_daemon_call (d, "ListSessions", g_variant_new ("(s)", ""), "(aa{sv})",
                                 &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, "org.mamd.Mamd1.Error.Failed");
  g_assert_nonnull (strstr (error->message, "more than the 32 MiB a D-Bus message may carry"));
  g_assert_nonnull (strstr (error->message, "ListSessionsPage"));
  g_clear_error (&error);

  g_assert_true (mamd_test_daemon_is_running (d));
  g_assert_cmpuint (status_sessions (d), ==, 25000);

  /* mamctl asks for them a page at a time (its output, 25,001 lines, is
   * not logged) */
  {
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autofree char *mamctl = g_build_filename (g_getenv ("MAMD_BUILD_ROOT"), "tools", "mamctl",
                                                NULL);
    g_autoptr(GSubprocess) process = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    guint lines = 0;

    g_subprocess_launcher_setenv (launcher, "MAMD_BUS_ADDRESS",
                                  mamd_test_daemon_get_bus_address (d), TRUE);
    process = g_subprocess_launcher_spawn (launcher, &error, mamctl, "sessions", SERVER, NULL);
    g_assert_no_error (error);
    g_assert_true (g_subprocess_communicate_utf8 (process, NULL, NULL, &out, &err, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (err, ==, "");
    g_assert_true (g_subprocess_get_if_exited (process));
    g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
    for (const char *p = out; *p != '\0'; p++)
      lines += *p == '\n';
    /* a header, then a line per session */
    g_assert_cmpuint (lines, ==, 25001);
  }
}

/* ---- memory after a burst ---- */

/* kB of @field ("VmRSS:", "VmHWM:") in /proc/@pid/status */
static guint64
proc_status_kb (GPid pid, const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) pid);
  g_autofree char *text = NULL;
  const char *line;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  line = strstr (text, field);
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen (field), NULL, 10);
}

typedef struct {
  MamdTestDaemon *d;
  guint64 below_kb;
} RssWait;

static gboolean
rss_below (gpointer user_data)
{
  RssWait *wait = user_data;

  return proc_status_kb (mamd_test_daemon_get_pid (wait->d), "VmRSS:") < wait->below_kb;
}

/* A reload that restricts 20,000 sessions: once its signals are out, mamd
 * gives the memory of the burst back instead of staying at its peak. */
static void
test_burst_memory_returned (void)
{
  const guint n = 20000;
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint64 start_kb, peak_kb;
  RssWait wait = { d, 0 };

  if (g_getenv ("MAMD_TEST_WRAPPER") != NULL) {
    g_test_skip ("valgrind's allocator keeps its own memory");
    return;
  }
#if defined(__SANITIZE_ADDRESS__)
  g_test_skip ("AddressSanitizer's allocator keeps its own memory");
  return;
#endif
  mamd_test_daemon_write_default_setup (d, SERVER);
  mamd_test_daemon_write_mam_server (d, SERVER, FALSE, NULL);
  write_sessions (mamd_test_daemon_get_state_dir (d), n, MAMD_TEST_TENANT_ID, FALSE, 16);
  g_assert_true (mamd_test_daemon_start (d, &error));
  g_assert_no_error (error);
  start_kb = proc_status_kb (mamd_test_daemon_get_pid (d), "VmRSS:");

  mamd_test_daemon_write_mam_server (d, SERVER, TRUE, NULL);
  reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  g_assert_no_error (error);
  peak_kb = proc_status_kb (mamd_test_daemon_get_pid (d), "VmHWM:");
  g_test_message ("VmRSS %" G_GUINT64_FORMAT " kB at start, peak %" G_GUINT64_FORMAT " kB",
                  start_kb, peak_kb);
  /* the burst takes memory: a test that would pass without one proves nothing */
  g_assert_cmpuint (peak_kb, >, start_kb + 20 * 1024);
  /* and gives the most of it back (here 73 MB -> 42 MB from 27 MB at
   * start; without trimming it stays at 73 MB) */
  wait.below_kb = start_kb + (peak_kb - start_kb) / 2;
  if (!mamd_test_daemon_iterate_until (d, rss_below, &wait, 60000))
    g_error ("VmRSS still %" G_GUINT64_FORMAT " kB, peak %" G_GUINT64_FORMAT " kB, %u signals",
             proc_status_kb (mamd_test_daemon_get_pid (d), "VmRSS:"),
             proc_status_kb (mamd_test_daemon_get_pid (d), "VmHWM:"),
             mamd_test_daemon_get_signals (d)->len);
}

/* ---- the signal FIFO against a bus that does not keep up ---- */

/* A message bus on a socket pair that answers Hello and then reads
 * nothing until told to, as a dbus-daemon does that is busy or stalled:
 * mamd's writes then stop when the socket is full. */
typedef struct {
  int bus_fd;
  GDBusConnection *connection;
} SlowBus;

static gboolean
read_exactly (int fd, guchar *buf, gsize size)
{
  while (size > 0) {
    gssize n = read (fd, buf, size);

    if (n <= 0)
      return FALSE;
    buf += n;
    size -= (gsize) n;
  }
  return TRUE;
}

/* The bus's side of the connection's start: reads the Hello call (after
 * the connection's worker runs, so the answer is not read before the call
 * is made) and answers it. */
static gpointer
answer_hello (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusMessage) hello = NULL;
  g_autoptr(GDBusMessage) reply = NULL;
  g_autofree guchar *blob = NULL;
  g_autofree guchar *answer = NULL;
  guchar head[16];
  gssize needed;
  gsize size = 0;

  g_assert_true (read_exactly (fd, head, sizeof head));
  needed = g_dbus_message_bytes_needed (head, sizeof head, &error);
  g_assert_no_error (error);
  blob = g_malloc (needed);
  memcpy (blob, head, sizeof head);
  g_assert_true (read_exactly (fd, blob + sizeof head, needed - sizeof head));
  hello = g_dbus_message_new_from_blob (blob, needed, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_dbus_message_get_member (hello), ==, "Hello");

  reply = g_dbus_message_new_method_reply (hello);
  g_dbus_message_set_sender (reply, "org.freedesktop.DBus");
  g_dbus_message_set_body (reply, g_variant_new ("(s)", ":1.1"));
  answer = g_dbus_message_to_blob (reply, &size, G_DBUS_CAPABILITY_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (write (fd, answer, size), ==, (gssize) size);
  return NULL;
}

static void
slow_bus_open (SlowBus *bus)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) stream = NULL;
  GThread *thread;
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  bus->bus_fd = fds[1];
  thread = g_thread_new ("slow-bus", answer_hello, GINT_TO_POINTER (bus->bus_fd));
  socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  stream = g_socket_connection_factory_create_connection (socket);
  bus->connection = g_dbus_connection_new_sync (G_IO_STREAM (stream), NULL,
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  g_assert_no_error (error);
  g_thread_join (thread);
  g_dbus_connection_set_exit_on_close (bus->connection, FALSE);
}

/* Reads what mamd wrote so far; FALSE when nothing was waiting. */
static gboolean
slow_bus_read (SlowBus *bus)
{
  char buf[65536];
  gssize n = recv (bus->bus_fd, buf, sizeof buf, MSG_DONTWAIT);

  return n > 0;
}

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context until nothing more happens for a while. */
static void
settle (void)
{
  for (guint round = 0; round < 3; round++) {
    gboolean done = FALSE;

    while (g_main_context_iteration (NULL, FALSE))
      ;
    g_timeout_add (100, set_flag, &done);
    while (!done)
      g_main_context_iteration (NULL, TRUE);
  }
}

/* The FIFO handed GDBus a batch every main-loop iteration, whatever the
 * bus took: a reload that touched 100,000 sessions was in GDBus's queue a
 * second later, in memory, and every method reply waited behind all of it
 * (2 s during the burst of 100,000 EnrollmentRequired). The next batch now
 * waits until the last one is written to the bus. */
static void
test_signal_fifo_waits_for_the_bus (void)
{
  const guint n_signals = 20000;
  g_autofree char *dir = g_dir_make_tmp ("mamd-scale-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdStore) store = NULL;
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(MamdEngine) engine = NULL;
  g_autoptr(MamdDbusAdaptor) adaptor = NULL;
  g_autofree char *reason = g_strnfill (200, 'r');
  SlowBus bus = { 0 };
  guint left, rounds = 0;

  g_assert_nonnull (dir);
  store = mamd_store_sqlite_open (dir, &error);
  g_assert_no_error (error);
  engine = mamd_engine_new (store, loader);
  adaptor = mamd_dbus_adaptor_new (engine);
  slow_bus_open (&bus);
  g_assert_true (mamd_dbus_adaptor_export (adaptor, bus.connection, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < n_signals; i++)
    mamd_dbus_adaptor_queue_signal (adaptor, "/org/mamd/Mamd1", MAMD_DBUS_MANAGER_IFACE,
                                    "PolicyChanged",
                                    g_variant_new ("(sbbst)", SERVER, TRUE, TRUE, reason,
                                                   (guint64) i + 1));
  settle ();
  /* what the socket holds went out; the rest waits in order */
  left = mamd_dbus_adaptor_get_n_queued_signals (adaptor);
  g_test_message ("%u of %u signals still queued", left, n_signals);
  g_assert_cmpuint (left, >, n_signals / 2);

  /* once the bus reads, the rest follows */
  while (mamd_dbus_adaptor_get_n_queued_signals (adaptor) > 0) {
    g_assert_cmpuint (++rounds, <, 1000000);
    while (slow_bus_read (&bus))
      ;
    g_main_context_iteration (NULL, FALSE);
  }

  mamd_dbus_adaptor_unexport (adaptor);
  g_dbus_connection_close_sync (bus.connection, NULL, NULL);
  g_object_unref (bus.connection);
  close (bus.bus_fd);
  g_clear_object (&adaptor);
  g_clear_object (&engine);
  g_clear_object (&store);
  mamd_test_rm_rf (dir);
}

/* ---- what a burst holds in memory ---- */

/* Bytes malloc has handed out and not got back, over every arena (0 under
 * valgrind and ASan, whose allocators glibc does not see). */
static gsize
heap_in_use (void)
{
  return mallinfo2 ().uordblks;
}

static gsize
heap_grown_since (gsize before)
{
  gsize now = heap_in_use ();

  return now > before ? now - before : 0;
}

/* A reload that re-evaluates N sessions holds, until it is committed, an
 * event (and its detail), a stored copy and the signals of each. The
 * detail, built as a tree of GVariants, took 4-5 KB a session: a reload of
 * 100,000 sessions peaked at 730 MB. */
static void
test_reload_holds_little_per_session (Fixture *fx, gconstpointer data)
{
  const guint n = 20000;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  gsize before, held;

  write_server (fx, SERVER, "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  write_sessions (fx->state, n, TENANT, FALSE, 16);
  engine_start (fx);
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, n);

  write_server (fx, SERVER, MAM_SERVER (""));
  before = heap_in_use ();
  mamd_engine_reload_async (fx->engine, NULL, got_result, fx);
  held = heap_grown_since (before);
  g_test_message ("a reload that restricts %u sessions holds %" G_GSIZE_FORMAT " bytes, "
                  "%" G_GSIZE_FORMAT " a session", n, held, held / n);
  res = wait_result (fx);
  g_assert_true (mamd_engine_reload_finish (fx->engine, res, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_signals (fx, "enrollment-required"), ==, n);
  g_assert_cmpuint (held / n, <, 3072);
}

/* ---- the main loop during a burst ---- */

typedef struct {
  Fixture *fx;
  guint n;
  guint partial; /* dispatches that saw some of the burst's signals, not all */
} Probe;

static gboolean
probe_cb (gpointer user_data)
{
  Probe *probe = user_data;
  guint seen = count_signals (probe->fx, "enrollment-required");

  if (seen > 0 && seen < probe->n)
    probe->partial++;
  return G_SOURCE_CONTINUE;
}

/* Once a reload that restricted 100,000 sessions was committed, logging its
 * events and emitting its 200,000 signals took the main loop for 2 s in one
 * go: no call was answered meanwhile. Other sources now run in between. */
static void
test_burst_leaves_in_slices (Fixture *fx, gconstpointer data)
{
  const guint n = 5000;
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  Probe probe = { fx, n, 0 };
  guint64 last_seq = 0;
  guint probe_id;

  write_server (fx, SERVER, "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  write_sessions (fx->state, n, TENANT, FALSE, 16);
  engine_start (fx);

  write_server (fx, SERVER, MAM_SERVER (""));
  probe_id = g_idle_add_full (G_PRIORITY_DEFAULT, probe_cb, &probe, NULL);
  mamd_engine_reload_async (fx->engine, NULL, got_result, fx);
  res = wait_result (fx);
  g_source_remove (probe_id);
  g_assert_true (mamd_engine_reload_finish (fx->engine, res, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_signals (fx, "enrollment-required"), ==, n);
  g_assert_cmpuint (probe.partial, >, 0);

  /* in seq order all the same */
  for (guint i = 0; i < fx->signals->len; i++) {
    const char *line = g_ptr_array_index (fx->signals, i);
    guint64 seq;

    if (!g_str_has_prefix (line, "enrollment-required "))
      continue;
    seq = g_ascii_strtoull (strrchr (line, ' ') + 1, NULL, 10);
    g_assert_cmpuint (seq, >, last_seq);
    last_seq = seq;
  }
}

/* The signals of a burst wait in the adaptor's FIFO while the bus takes
 * them, as trees of GVariants they took 2.5 KB each (a PropertiesChanged)
 * instead of their few hundred bytes on the wire. */
static void
test_queued_signals_are_compact (void)
{
  const guint n = 20000;
  g_autofree char *dir = g_dir_make_tmp ("mamd-scale-XXXXXX", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdStore) store = NULL;
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(MamdEngine) engine = NULL;
  g_autoptr(MamdDbusAdaptor) adaptor = NULL;
  gsize before, held;

  store = mamd_store_sqlite_open (dir, &error);
  g_assert_no_error (error);
  engine = mamd_engine_new (store, loader);
  /* not exported: every signal waits in the FIFO */
  adaptor = mamd_dbus_adaptor_new (engine);
  before = heap_in_use ();
  for (guint i = 0; i < n; i++) {
    g_autofree char *path = g_strdup_printf (MAMD_DBUS_SESSION_PREFIX "/%032x", i + 1);
    GVariantBuilder changed;

    g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add (&changed, "{sv}", "State",
                           g_variant_new_string ("enrollment-required"));
    g_variant_builder_add (&changed, "{sv}", "Reason",
                           g_variant_new_string ("Intune MAM enrollment is required by server "
                                                 "chat"));
    g_variant_builder_add (&changed, "{sv}", "MamRequired", g_variant_new_boolean (TRUE));
    g_variant_builder_add (&changed, "{sv}", "Updated", g_variant_new_int64 (g_get_real_time ()));
    g_variant_builder_add (&changed, "{sv}", "Seq", g_variant_new_uint64 (i + 1));
    mamd_dbus_adaptor_queue_signal (adaptor, path, MAMD_DBUS_PROPERTIES_IFACE,
                                    "PropertiesChanged",
                                    g_variant_new ("(sa{sv}as)", MAMD_DBUS_SESSION_IFACE,
                                                   &changed, NULL));
  }
  held = heap_grown_since (before);
  g_test_message ("%u queued PropertiesChanged hold %" G_GSIZE_FORMAT " bytes, %" G_GSIZE_FORMAT
                  " each", n, held, held / n);
  g_assert_cmpuint (mamd_dbus_adaptor_get_n_queued_signals (adaptor), ==, n);
  g_assert_cmpuint (held / n, <, 1024);

  g_clear_object (&adaptor);
  g_clear_object (&engine);
  g_clear_object (&store);
  mamd_test_rm_rf (dir);
}

/* The audit log of 20,000 re-evaluated sessions would fill the test log. */
static GLogWriterOutput
drop_audit_lines (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                  gpointer user_data)
{
  if ((level & G_LOG_LEVEL_MASK) == G_LOG_LEVEL_MESSAGE)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_default (level, fields, n_fields, user_data);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (drop_audit_lines, NULL, NULL);
  g_test_add_func ("/mamd/scale/list-sessions-too-large", test_list_sessions_too_large);
  g_test_add_func ("/mamd/scale/burst-memory-returned", test_burst_memory_returned);
  g_test_add_func ("/mamd/scale/signal-fifo-waits-for-the-bus",
                   test_signal_fifo_waits_for_the_bus);
  g_test_add ("/mamd/scale/reload-holds-little-per-session", Fixture, NULL, fixture_setup,
              test_reload_holds_little_per_session, fixture_teardown);
  g_test_add_func ("/mamd/scale/queued-signals-are-compact", test_queued_signals_are_compact);
  g_test_add ("/mamd/scale/burst-leaves-in-slices", Fixture, NULL, fixture_setup,
              test_burst_leaves_in_slices, fixture_teardown);
  return g_test_run ();
}
