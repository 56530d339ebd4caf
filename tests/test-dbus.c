/*
 * Black-box tests of the real mamd binary on a private dbus-daemon: start-up
 * failures, the guide's flows as seen over D-Bus (replies, signals,
 * properties), error names, secrecy of credentials, reload, restarts, the
 * authorization gate and the per-sender caps.
 */
#include "config.h"

#include <grp.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mamd-plugin.h"
#include "mamd-test-daemon.h"

#define WAIT_MS 30000
#define SERVER "chat"
#define MANAGER_IFACE "org.mamd.Mamd1.Manager"
#define SESSION_IFACE "org.mamd.Mamd1.Session"
#define NOBODY_UID 65534

/* this binary, for peer mode (not /proc/self/exe: that is valgrind under
 * the valgrind test setup) */
static char *self_path;

/* ---- helpers ---- */

static MamdTestDaemon *
started_daemon (const char *daemon_conf_extra, const char *server_extra)
{
  g_autoptr(GError) error = NULL;
  MamdTestDaemon *d = mamd_test_daemon_new ();

  mamd_test_daemon_write_daemon_conf (d, daemon_conf_extra);
  mamd_test_daemon_write_license (d, "advanced", g_get_real_time () / G_USEC_PER_SEC + 86400 * 365);
  mamd_test_daemon_write_mam_server (d, SERVER, TRUE, server_extra);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  return d;
}

static void
assert_dbus_error (const GError *error, const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, name) != 0)
    g_error ("expected %s, got %s: %s", name, remote, error->message);
}

static guint64
dict_uint64 (GVariant *dict, const char *key)
{
  guint64 value = 0;

  g_assert_true (g_variant_lookup (dict, key, "t", &value));
  return value;
}

static char *
dict_string (GVariant *dict, const char *key)
{
  char *value = NULL;

  g_assert_true (g_variant_lookup (dict, key, "s", &value));
  return value;
}

static GVariant *
get_property (MamdTestDaemon *d, const char *path, const char *iface, const char *name,
              GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (mamd_test_daemon_get_connection (d), "org.mamd.Mamd1",
                                       path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", iface, name), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return value;
}

static char *
session_state (MamdTestDaemon *d, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = get_property (d, path, SESSION_IFACE, "State", &error);

  g_assert_no_error (error);
  return g_variant_dup_string (value, NULL);
}

static guint64
last_event_seq (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = get_property (d, "/org/mamd/Mamd1", MANAGER_IFACE, "LastEventSeq",
                                            &error);

  g_assert_no_error (error);
  return g_variant_get_uint64 (value);
}

static GVariant *
report (MamdTestDaemon *d, const char *path, const char *outcome, gint status, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *result = NULL;

  reply = mamd_test_daemon_call (d, "ReportEnrollment",
                                 g_variant_new ("(osi)", path, outcome, status), "(a{sv})", error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(@a{sv})", &result);
  return result;
}

static GVariant *
sign_in_with (MamdTestDaemon *d, const char *server, GVariant *credential, GVariant *device,
              char **out_path, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *result = NULL;
  const char *path;

  reply = mamd_test_daemon_call (d, "SignIn",
                                 g_variant_new ("(ss@a{sv}@a{sv})", server, "test", credential,
                                                device),
                                 "(oa{sv})", error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(&o@a{sv})", &path, &result);
  if (out_path != NULL)
    *out_path = g_strdup (path);
  return result;
}

/* The seq carried as the last argument of a Manager signal. */
static guint64
signal_seq (const MamdTestSignal *sig)
{
  gsize n = g_variant_n_children (sig->parameters);
  g_autoptr(GVariant) last = g_variant_get_child_value (sig->parameters, n - 1);

  return g_variant_get_uint64 (last);
}

static const MamdTestSignal *
wait_signal (MamdTestDaemon *d, const char *member, const char *arg0)
{
  const MamdTestSignal *sig = mamd_test_daemon_wait_signal (d, member, arg0, WAIT_MS);

  if (sig == NULL)
    g_error ("no %s signal for %s arrived", member, arg0 != NULL ? arg0 : "anything");
  return sig;
}

/* A PropertiesChanged on @path whose State is @state. */
static gboolean
has_state_change (MamdTestDaemon *d, const char *path, const char *state)
{
  GPtrArray *signals = mamd_test_daemon_get_signals (d);

  for (guint i = 0; i < signals->len; i++) {
    const MamdTestSignal *sig = g_ptr_array_index (signals, i);
    const char *iface = NULL, *value = NULL;
    g_autoptr(GVariant) changed = NULL;

    if (g_strcmp0 (sig->member, "PropertiesChanged") != 0 ||
        g_strcmp0 (sig->object_path, path) != 0)
      continue;
    g_variant_get (sig->parameters, "(&s@a{sv}@as)", &iface, &changed, NULL);
    if (g_strcmp0 (iface, SESSION_IFACE) == 0 &&
        g_variant_lookup (changed, "State", "&s", &value) && g_strcmp0 (value, state) == 0)
      return TRUE;
  }
  return FALSE;
}

typedef struct {
  MamdTestDaemon *d;
  const char *path;
  const char *state;
} StateWait;

static gboolean
state_change_arrived (gpointer user_data)
{
  StateWait *wait = user_data;

  return has_state_change (wait->d, wait->path, wait->state);
}

static void
wait_state_change (MamdTestDaemon *d, const char *path, const char *state)
{
  StateWait wait = { d, path, state };

  if (!mamd_test_daemon_iterate_until (d, state_change_arrived, &wait, WAIT_MS))
    g_error ("no PropertiesChanged State=%s for %s", state, path);
}

static void
restart (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (mamd_test_daemon_stop (d), ==, 0);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
}

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
test_sigterm (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000001", "ios",
                                     "device-1", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (mamd_test_daemon_kill (d, SIGTERM), ==, 0);
  g_assert_false (mamd_test_daemon_is_running (d));
}

/* ---- sign-in and the flows ---- */

static void
test_sign_in_signal (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *state = NULL;
  g_autofree char *prop_state = NULL;
  g_autofree char *server = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *log = NULL;
  g_autofree char *audit = NULL;
  g_auto(GStrv) parts = NULL;
  const char *prefix;
  const MamdTestSignal *sig;
  gboolean mam_required = FALSE;
  guint64 seq;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000002", "ios",
                                     "device-1", &path, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (path, "/org/mamd/Mamd1/session/"));
  state = dict_string (result, "state");
  g_assert_cmpstr (state, ==, "enrollment-required");
  g_assert_true (g_variant_lookup (result, "mam-required", "b", &mam_required));
  g_assert_true (mam_required);
  seq = dict_uint64 (result, "seq");
  g_assert_cmpuint (seq, >, 0);

  sig = wait_signal (d, "EnrollmentRequired", path);
  g_variant_get (sig->parameters, "(&osst)", NULL, &server, &reason, NULL);
  g_assert_cmpstr (server, ==, SERVER);
  g_assert_cmpstr (reason, !=, "");
  g_assert_cmpuint (signal_seq (sig), ==, seq);
  /* a new session object gets no PropertiesChanged: it is read with Get */
  g_assert_false (has_state_change (d, path, "enrollment-required"));

  prop_state = session_state (d, path);
  g_assert_cmpstr (prop_state, ==, "enrollment-required");
  g_assert_cmpuint (last_event_seq (d), >=, seq);

  /* the audit line was written once the event was durable, before the
   * reply: one line, in GLib's layout, with the event's seq and ids */
  log = mamd_test_daemon_get_log (d);
  audit = g_strdup_printf ("event session-created #%" G_GUINT64_FORMAT " server %s session %s: "
                           "Intune MAM enrollment is required by server %s\n",
                           seq, SERVER, path + strlen ("/org/mamd/Mamd1/session/"), SERVER);
  parts = g_strsplit (log, audit, -1);
  g_assert_cmpuint (g_strv_length (parts), ==, 2);
  prefix = strrchr (parts[0], '\n');
  prefix = prefix != NULL ? prefix + 1 : parts[0];
  g_assert_true (g_regex_match_simple ("^mamd-Message: [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}: $",
                                       prefix, 0, 0));
}

static void
test_full_flow (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) declined = NULL;
  g_autoptr(GVariant) failed = NULL;
  g_autoptr(GVariant) again = NULL;
  g_autoptr(GVariant) readd = NULL;
  g_autoptr(GVariant) wipes = NULL;
  g_autoptr(GVariant) ack = NULL;
  g_autofree char *path = NULL;
  g_autofree char *path2 = NULL;
  g_autofree char *state = NULL;
  g_autofree char *wipe_id = NULL;
  const char *oid = "0c0ffee0-0000-4000-8000-000000000003";
  const MamdTestSignal *sig;
  guint64 seq_required, seq_declined, seq_revoked, seq_wipe;
  gboolean found = FALSE;

  result = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "device-1", &path, &error);
  g_assert_no_error (error);
  seq_required = dict_uint64 (result, "seq");
  wait_signal (d, "EnrollmentRequired", path);

  /* declined: stays restricted, retry allowed */
  declined = report (d, path, "declined", 219, &error);
  g_assert_no_error (error);
  state = dict_string (declined, "state");
  g_assert_cmpstr (state, ==, "declined");
  sig = wait_signal (d, "EnrollmentDeclined", path);
  seq_declined = signal_seq (sig);
  g_assert_cmpuint (seq_declined, >, seq_required);
  wait_state_change (d, path, "declined");

  /* the retry fails technically: revoked, server removed, wipe requested */
  failed = report (d, path, "", 201, &error);
  g_assert_no_error (error);
  g_clear_pointer (&state, g_free);
  state = dict_string (failed, "state");
  g_assert_cmpstr (state, ==, "revoked");
  sig = wait_signal (d, "SessionRevoked", path);
  seq_revoked = signal_seq (sig);
  g_assert_cmpuint (seq_revoked, >, seq_declined);
  sig = wait_signal (d, "WipeRequested", NULL);
  {
    const char *server, *device, *object_id;
    g_variant_get (sig->parameters, "(s&s&s&st)", &wipe_id, &server, &device, &object_id,
                   &seq_wipe);
    g_assert_cmpstr (server, ==, SERVER);
    g_assert_cmpstr (device, ==, "device-1");
    g_assert_cmpstr (object_id, ==, oid);
  }
  g_assert_cmpuint (seq_wipe, >, seq_revoked);
  wait_state_change (d, path, "revoked");

  wipes = mamd_test_daemon_call (d, "ListWipes", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) list = g_variant_get_child_value (wipes, 0);
    for (gsize i = 0; i < g_variant_n_children (list); i++) {
      g_autoptr(GVariant) entry = g_variant_get_child_value (list, i);
      g_autofree char *id = dict_string (entry, "id");
      found = found || g_strcmp0 (id, wipe_id) == 0;
    }
  }
  g_assert_true (found);

  /* no retry until the server is added again */
  again = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "device-1", NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.ServerRemoved");
  g_clear_error (&error);
  g_assert_null (again);

  readd = mamd_test_daemon_call (d, "ReAddServer", g_variant_new ("(ss)", SERVER, "device-1"),
                                 "(t)", &error);
  g_assert_no_error (error);
  again = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "device-1", &path2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (path2, !=, path);

  ack = mamd_test_daemon_call (d, "AcknowledgeWipe", g_variant_new ("(s)", wipe_id), "(t)",
                               &error);
  g_assert_no_error (error);
  g_clear_pointer (&ack, g_variant_unref);
  ack = mamd_test_daemon_call (d, "AcknowledgeWipe", g_variant_new ("(s)", wipe_id), "(t)",
                               &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.NotFound");
}

/* ---- error names ---- */

static void
expect_sign_in_error (MamdTestDaemon *d, const char *server, GVariant *credential,
                      GVariant *device, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = sign_in_with (d, server, credential, device, NULL, &error);
  g_assert_null (result);
  assert_dbus_error (error, name);
  /* every message names a cause: never empty */
  g_assert_cmpuint (strlen (error->message), >, strlen ("GDBus.Error:") + strlen (name) + 4);
}

static void
test_errors (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = NULL;
  g_autofree char *unknown_path = NULL;
  const char *oid = "0c0ffee0-0000-4000-8000-000000000004";

  mamd_test_daemon_write_default_setup (d, SERVER);
  /* gate closed: MAM enabled, AuthService missing */
  mamd_test_daemon_write_server (d, "noauth", "[Server]\nEnable=true\nTenantId="
                                 MAMD_TEST_TENANT_ID "\nClientId=" MAMD_TEST_CLIENT_ID "\n");
  mamd_test_daemon_write_mam_server (d, "strict", TRUE, "AutoCreateUsers=false\n");
  mamd_test_daemon_write_mam_server (d, "noconsent", TRUE, "[test]\nGate=invalid-resource\n");
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);

  expect_sign_in_error (d, "noauth", mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                        mamd_test_device ("ios", "dev"), "org.mamd.Mamd1.Error.Forbidden");
  expect_sign_in_error (d, SERVER, mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                        mamd_test_device ("android", "dev"),
                        "org.mamd.Mamd1.Error.UnsupportedPlatform");
  expect_sign_in_error (d, "strict", mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                        mamd_test_device ("ios", "dev"), "org.mamd.Mamd1.Error.UserMismatch");
  expect_sign_in_error (d, "noconsent", mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                        mamd_test_device ("ios", "dev"), "org.mamd.Mamd1.Error.InvalidResource");
  expect_sign_in_error (d, SERVER, mamd_test_credential (NULL, MAMD_TEST_TENANT_ID, NULL),
                        mamd_test_device ("ios", "dev"),
                        "org.mamd.Mamd1.Error.MissingAuthAccount");
  expect_sign_in_error (d, "no-such-server", mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                        mamd_test_device ("ios", "dev"), "org.mamd.Mamd1.Error.NotFound");

  /* the device dict is checked before the engine sees anything */
  {
    GVariantBuilder device;

    expect_sign_in_error (d, SERVER, mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                          g_variant_new_parsed ("@a{sv} {'device-id': <'dev'>}"),
                          "org.mamd.Mamd1.Error.InvalidArgs");
    g_variant_builder_init (&device, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add (&device, "{sv}", "platform", g_variant_new_string ("ios"));
    g_variant_builder_add (&device, "{sv}", "device-id", g_variant_new_uint32 (7));
    expect_sign_in_error (d, SERVER, mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                          g_variant_builder_end (&device), "org.mamd.Mamd1.Error.InvalidArgs");
  }
  {
    g_autoptr(GVariant) result = NULL;

    result = sign_in_with (d, SERVER, mamd_test_credential (oid, MAMD_TEST_TENANT_ID, NULL),
                           g_variant_new_parsed ("@a{sv} {'platform': <'ios'>}"), NULL, &error);
    assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
    g_assert_nonnull (strstr (error->message, "device-id"));
    g_clear_error (&error);
  }

  /* bad session paths, unknown sessions, bad outcomes */
  g_clear_pointer (&reply, g_variant_unref);
  reply = report (d, "/org/mamd/Mamd1/session/nothex", "success", 100, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_clear_error (&error);
  reply = report (d, "/org/mamd/Mamd1", "success", 100, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_clear_error (&error);
  unknown_path = g_strdup ("/org/mamd/Mamd1/session/0123456789abcdef0123456789abcdef");
  reply = report (d, unknown_path, "success", 100, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.NotFound");
  g_clear_error (&error);

  {
    g_autoptr(GVariant) result = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "dev", &path,
                                                           &error);
    g_assert_no_error (error);
  }
  reply = report (d, path, "maybe", -1, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_clear_error (&error);
  reply = report (d, path, "", 999, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_clear_error (&error);
  reply = mamd_test_daemon_call (d, "CheckAccess", g_variant_new ("(o)", "/org/mamd/Mamd1/x"),
                                 "(bss)", &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_clear_error (&error);
  reply = mamd_test_daemon_call (d, "SignOut", g_variant_new ("(o)", unknown_path), NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.NotFound");
  g_clear_error (&error);
  reply = mamd_test_daemon_call (d, "AcknowledgeWipe", g_variant_new ("(s)", "not-a-wipe-id"),
                                 "(t)", &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_clear_error (&error);
  reply = mamd_test_daemon_call (d, "ReAddServer", g_variant_new ("(ss)", SERVER, "never-removed"),
                                 "(t)", &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.NotFound");
  g_clear_error (&error);
}

static void
test_not_licensed (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;

  mamd_test_daemon_write_daemon_conf (d, NULL);
  mamd_test_daemon_write_license (d, "professional",
                                  g_get_real_time () / G_USEC_PER_SEC + 86400 * 365);
  mamd_test_daemon_write_mam_server (d, SERVER, TRUE, NULL);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  expect_sign_in_error (d, SERVER,
                        mamd_test_credential ("0c0ffee0-0000-4000-8000-000000000005",
                                              MAMD_TEST_TENANT_ID, NULL),
                        mamd_test_device ("ios", "dev"), "org.mamd.Mamd1.Error.NotLicensed");

  /* GetStatus says why */
  {
    g_autoptr(GVariant) status = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
    g_autoptr(GVariant) dict = NULL;
    g_autofree char *reason = NULL;
    g_autofree char *sku = NULL;
    gboolean licensed = TRUE;

    g_assert_no_error (error);
    dict = g_variant_get_child_value (status, 0);
    g_assert_true (g_variant_lookup (dict, "licensed", "b", &licensed));
    g_assert_false (licensed);
    reason = dict_string (dict, "license-reason");
    g_assert_nonnull (strstr (reason, "professional"));
    sku = dict_string (dict, "sku");
    g_assert_cmpstr (sku, ==, "professional");
  }
}

/* ---- secrecy ---- */

#define MARKER "s3cr3t-Marker-7f1e9a"

static void
assert_no_marker_in_signals (MamdTestDaemon *d)
{
  GPtrArray *signals = mamd_test_daemon_get_signals (d);

  g_assert_cmpuint (signals->len, >, 0);
  for (guint i = 0; i < signals->len; i++) {
    const MamdTestSignal *sig = g_ptr_array_index (signals, i);
    g_autofree char *text = g_variant_print (sig->parameters, TRUE);

    if (strstr (text, MARKER) != NULL)
      g_error ("signal %s carries the credential: %s", sig->member, text);
  }
}

static void
expect_no_marker_error (MamdTestDaemon *d, GVariant *credential)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;

  result = sign_in_with (d, SERVER, credential, mamd_test_device ("ios", "dev-secret"), NULL,
                         &error);
  g_assert_null (result);
  g_assert_nonnull (error);
  if (strstr (error->message, MARKER) != NULL)
    g_error ("error echoes the credential: %s", error->message);
}

static void
test_credential_never_echoed (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) failed = NULL;
  g_autofree char *path = NULL;
  g_autofree char *log = NULL;
  const char *oid = "0c0ffee0-0000-4000-8000-000000000006";

  expect_no_marker_error (d, g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>}",
                                                   MARKER, MAMD_TEST_TENANT_ID));
  expect_no_marker_error (d, g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>}", oid,
                                                   "tenant-" MARKER));
  expect_no_marker_error (d, g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>, "
                                                   "'access-token': <%s>}",
                                                   oid, MAMD_TEST_TENANT_ID, "eyJ" MARKER));
  expect_no_marker_error (d, g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>, "
                                                   "'fail': <%s>}",
                                                   oid, MAMD_TEST_TENANT_ID, "weird-" MARKER));
  expect_no_marker_error (d, g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>, "
                                                   "'user-name': <%s>, 'fail': <'invalid-token'>}",
                                                   oid, MAMD_TEST_TENANT_ID, MARKER));

  /* a session whose credential holds the marker goes through its whole life */
  result = sign_in_with (d, SERVER, mamd_test_credential (oid, MAMD_TEST_TENANT_ID, MARKER),
                         mamd_test_device ("ios", "dev-secret"), &path, &error);
  g_assert_no_error (error);
  failed = report (d, path, "failed", 201, &error);
  g_assert_no_error (error);
  wait_signal (d, "WipeRequested", NULL);
  wait_state_change (d, path, "revoked");
  assert_no_marker_in_signals (d);

  g_assert_cmpint (mamd_test_daemon_stop (d), ==, 0);
  log = mamd_test_daemon_get_log (d);
  g_assert_null (strstr (log, MARKER));
}

/* ---- reload ---- */

typedef enum {
  RELOAD_METHOD,
  RELOAD_SIGHUP,
  RELOAD_FILE_CHANGE,
} ReloadVia;

typedef struct {
  MamdTestDaemon *d;
  const char *text;
} LogWait;

static gboolean
log_contains (gpointer user_data)
{
  LogWait *wait = user_data;
  g_autofree char *log = mamd_test_daemon_get_log (wait->d);

  if (log != NULL && strstr (log, wait->text) != NULL)
    return TRUE;
  /* the log is a file, not a main-loop source: poll it gently */
  g_usleep (10000);
  return FALSE;
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
  const MamdTestSignal *sig;

  mamd_test_daemon_write_daemon_conf (d, NULL);
  mamd_test_daemon_write_license (d, "advanced", g_get_real_time () / G_USEC_PER_SEC + 86400);
  mamd_test_daemon_write_mam_server (d, SERVER, FALSE, NULL);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000007", "ios",
                                     "dev", &path, &error);
  g_assert_no_error (error);
  state = dict_string (result, "state");
  g_assert_cmpstr (state, ==, "active");

  /* MAM newly applies: the live session is restricted at once */
  mamd_test_daemon_write_mam_server (d, SERVER, TRUE, NULL);
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
  wait_state_change (d, path, "enrollment-required");
  now_state = session_state (d, path);
  g_assert_cmpstr (now_state, ==, "enrollment-required");

  /* invalid configuration is refused and nothing changes */
  mamd_test_daemon_write_server (d, SERVER, "[Server]\nEnable=maybe\n");
  g_clear_pointer (&reply, g_variant_unref);
  reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidConfig");
  unchanged = session_state (d, path);
  g_assert_cmpstr (unchanged, ==, "enrollment-required");
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
  const MamdTestSignal *sig;
  guint mark;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000008", "ios",
                                     "dev-wipe", &path, &error);
  g_assert_no_error (error);
  failed = report (d, path, "failed", 205, &error);
  g_assert_no_error (error);
  sig = wait_signal (d, "WipeRequested", NULL);
  g_variant_get (sig->parameters, "(sssst)", &wipe_id, NULL, NULL, NULL, NULL);

  /* pending wipes are announced again by the next daemon */
  restart (d);
  sig = wait_signal (d, "WipeRequested", wipe_id);
  g_assert_cmpstr (sig->sender, !=, NULL);

  ack = mamd_test_daemon_call (d, "AcknowledgeWipe", g_variant_new ("(s)", wipe_id), "(t)",
                               &error);
  g_assert_no_error (error);

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

/* ---- the gate ---- */

static void
test_access_denied (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  GDBusConnection *connection = mamd_test_daemon_get_connection (d);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = mamd_test_daemon_call (d, "Bogus", NULL, NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.AccessDenied");
  g_clear_error (&error);

  reply = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                       "org.mamd.Mamd1.Secret", "Dump", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.AccessDenied");
  g_clear_error (&error);

  reply = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                       "org.freedesktop.DBus.Properties", "Set",
                                       g_variant_new ("(ssv)", MANAGER_IFACE, "Version",
                                                      g_variant_new_string ("9")),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.AccessDenied");
  g_clear_error (&error);

  /* what the table allows still works on the same connection */
  reply = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_assert_no_error (error);
}

/* Runs as another uid (see main): one action per invocation, one line out. */
static int
peer_main (const char *address, const char *action, const char *arg)
{
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  connection = g_dbus_connection_new_for_address_sync (
    address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  if (connection == NULL) {
    g_print ("connect-failed %s\n", error->message);
    return 1;
  }
  if (g_str_equal (action, "list-sessions")) {
    reply = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                         MANAGER_IFACE, "ListSessions", g_variant_new ("(s)", ""),
                                         G_VARIANT_TYPE ("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                                         NULL, &error);
    if (reply != NULL) {
      g_autoptr(GVariant) list = g_variant_get_child_value (reply, 0);
      g_print ("ok %" G_GSIZE_FORMAT "\n", g_variant_n_children (list));
    }
  } else if (g_str_equal (action, "sign-in")) {
    reply = g_dbus_connection_call_sync (
      connection, "org.mamd.Mamd1", "/org/mamd/Mamd1", MANAGER_IFACE, "SignIn",
      g_variant_new ("(ss@a{sv}@a{sv})", SERVER, "test",
                     mamd_test_credential (arg, MAMD_TEST_TENANT_ID, NULL),
                     mamd_test_device ("ios", "peer-device")),
      G_VARIANT_TYPE ("(oa{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
    if (reply != NULL)
      g_print ("ok\n");
  } else if (g_str_equal (action, "get-all")) {
    reply = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", arg,
                                         "org.freedesktop.DBus.Properties", "GetAll",
                                         g_variant_new ("(s)", SESSION_IFACE),
                                         G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                                         NULL, &error);
    if (reply != NULL)
      g_print ("ok\n");
  } else if (g_str_equal (action, "reload")) {
    reply = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                         MANAGER_IFACE, "Reload", NULL, NULL,
                                         G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
    if (reply != NULL)
      g_print ("ok\n");
  } else {
    g_print ("unknown-action\n");
    return 1;
  }
  if (reply == NULL) {
    g_autofree char *name = g_dbus_error_get_remote_error (error);
    g_print ("error %s\n", name != NULL ? name : error->message);
  }
  return 0;
}

static void
become_nobody (gpointer user_data)
{
  /* async-signal-safe calls only: this runs between fork and exec */
  if (setgroups (0, NULL) != 0 || setgid (NOBODY_UID) != 0 || setuid (NOBODY_UID) != 0)
    _exit (126);
}

/* Runs this test binary as uid 65534 in peer mode; NULL when that is not
 * possible here (not root, or the build dir is not reachable for nobody). */
static char *
run_as_nobody (MamdTestDaemon *d, const char *action, const char *arg)
{
  const char *argv[] = { self_path, "--peer", mamd_test_daemon_get_bus_address (d), action, arg,
                         NULL };
  g_autoptr(GError) error = NULL;
  char *out = NULL;
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, become_nobody, NULL, &out, NULL,
                     &status, &error)) {
    g_test_message ("cannot run as nobody: %s", error->message);
    return NULL;
  }
  if (!g_spawn_check_wait_status (status, NULL)) {
    g_test_message ("peer as nobody failed (status %d): %s", status, out);
    g_free (out);
    return NULL;
  }
  return g_strstrip (out);
}

static void
test_roles_other_uid (void)
{
  g_autoptr(MamdTestDaemon) d = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) sessions = NULL;
  g_autofree char *root_path = NULL;
  g_autofree char *out = NULL;

  if (getuid () != 0) {
    g_test_skip ("needs root to call mamd as another uid");
    return;
  }
  d = started_daemon (NULL, NULL);
  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-00000000000c", "ios",
                                     "root-device", &root_path, &error);
  g_assert_no_error (error);

  out = run_as_nobody (d, "list-sessions", NULL);
  if (out == NULL) {
    g_test_skip ("this test binary cannot run as nobody here");
    return;
  }
  /* READ: allowed, but a non-admin sees only its own sessions */
  g_assert_cmpstr (out, ==, "ok 0");
  g_free (out);
  /* CLIENT and ADMIN methods are denied to an unlisted uid */
  out = run_as_nobody (d, "sign-in", "0c0ffee0-0000-4000-8000-00000000000d");
  g_assert_cmpstr (out, ==, "error org.mamd.Mamd1.Error.AccessDenied");
  g_free (out);
  out = run_as_nobody (d, "reload", NULL);
  g_assert_cmpstr (out, ==, "error org.mamd.Mamd1.Error.AccessDenied");
  g_free (out);
  out = run_as_nobody (d, "get-all", root_path);
  g_assert_cmpstr (out, ==, "error org.mamd.Mamd1.Error.AccessDenied");
  g_free (out);

  /* listed in ClientUsers: may sign in and sees exactly its own session */
  mamd_test_daemon_write_daemon_conf (d, "ClientUsers=nobody\n");
  g_clear_pointer (&result, g_variant_unref);
  result = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  g_assert_no_error (error);
  out = run_as_nobody (d, "sign-in", "0c0ffee0-0000-4000-8000-00000000000d");
  g_assert_cmpstr (out, ==, "ok");
  g_free (out);
  out = run_as_nobody (d, "list-sessions", NULL);
  g_assert_cmpstr (out, ==, "ok 1");
  g_free (out);
  out = run_as_nobody (d, "reload", NULL);
  g_assert_cmpstr (out, ==, "error org.mamd.Mamd1.Error.AccessDenied");

  /* root (admin) sees both */
  sessions = mamd_test_daemon_call (d, "ListSessions", g_variant_new ("(s)", ""), "(aa{sv})",
                                    &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) list = g_variant_get_child_value (sessions, 0);
    g_assert_cmpuint (g_variant_n_children (list), ==, 2);
  }
}

/* ---- caps and cancellation ---- */

typedef struct {
  guint done;
  GError *error;
} PendingCalls;

static void
on_slow_sign_in (GObject *source, GAsyncResult *result, gpointer user_data)
{
  PendingCalls *pending = user_data;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             NULL);

  pending->done++;
}

static void
test_busy_and_cancel (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon ("[Limits]\nMaxCallsInFlightPerSender=2\n", NULL);
  g_autoptr(GDBusConnection) other = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) ok = NULL;
  PendingCalls pending = { 0 };
  LogWait wait = { d, "left the bus: cancelling 2 call(s) in flight" };

  other = g_dbus_connection_new_for_address_sync (
    mamd_test_daemon_get_bus_address (d),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);

  /* two sign-ins the test plugin holds for ten minutes */
  for (guint i = 0; i < 2; i++) {
    g_autofree char *oid = mamd_test_random_guid ();
    GVariant *credential = g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>, "
                                                 "'delay-ms': <uint32 600000>}",
                                                 oid, MAMD_TEST_TENANT_ID);
    g_dbus_connection_call (other, "org.mamd.Mamd1", "/org/mamd/Mamd1", MANAGER_IFACE, "SignIn",
                            g_variant_new ("(ss@a{sv}@a{sv})", SERVER, "test", credential,
                                           mamd_test_device ("ios", "slow")),
                            G_VARIANT_TYPE ("(oa{sv})"), G_DBUS_CALL_FLAGS_NONE, 700000, NULL,
                            on_slow_sign_in, &pending);
  }
  /* the third call of that sender is over the cap */
  reply = g_dbus_connection_call_sync (other, "org.mamd.Mamd1", "/org/mamd/Mamd1", MANAGER_IFACE,
                                       "GetStatus", NULL, G_VARIANT_TYPE ("(a{sv})"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.Busy");
  g_clear_error (&error);
  g_assert_cmpuint (pending.done, ==, 0);

  /* other senders are not affected */
  ok = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_assert_no_error (error);

  /* the sender leaves: its calls are cancelled, no session is created */
  g_dbus_connection_close_sync (other, NULL, NULL);
  g_assert_true (mamd_test_daemon_iterate_until (d, log_contains, &wait, WAIT_MS));
  list = mamd_test_daemon_call (d, "ListSessions", g_variant_new ("(s)", ""), "(aa{sv})", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) sessions = g_variant_get_child_value (list, 0);
    g_assert_cmpuint (g_variant_n_children (sessions), ==, 0);
  }
}

/* ---- shapes ---- */

typedef struct {
  const char *key;
  const char *type;
} KeyType;

static void
assert_dict_shape (GVariant *dict, const KeyType *keys, gsize n_keys)
{
  g_assert_cmpstr (g_variant_get_type_string (dict), ==, "a{sv}");
  for (gsize i = 0; i < n_keys; i++) {
    g_autoptr(GVariant) value = g_variant_lookup_value (dict, keys[i].key, NULL);

    if (value == NULL)
      g_error ("key %s missing", keys[i].key);
    if (!g_str_equal (g_variant_get_type_string (value), keys[i].type))
      g_error ("key %s has type %s, documented %s", keys[i].key,
               g_variant_get_type_string (value), keys[i].type);
  }
  g_assert_cmpuint (g_variant_n_children (dict), ==, n_keys);
}

static void
assert_list_shape (MamdTestDaemon *d, const char *method, GVariant *args, const KeyType *keys,
                   gsize n_keys, gsize expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = mamd_test_daemon_call (d, method, args, "(aa{sv})", &error);
  g_autoptr(GVariant) list = NULL;

  g_assert_no_error (error);
  list = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (list), ==, expected);
  for (gsize i = 0; i < g_variant_n_children (list); i++) {
    g_autoptr(GVariant) entry = g_variant_get_child_value (list, i);
    assert_dict_shape (entry, keys, n_keys);
  }
}

static void
test_shapes (void)
{
  static const KeyType status_keys[] = {
    { "version", "s" }, { "licensed", "b" }, { "license-reason", "s" }, { "licensee", "s" },
    { "sku", "s" }, { "license-expires", "x" }, { "servers", "u" }, { "sessions", "u" },
    { "pending-wipes", "u" }, { "last-seq", "t" }, { "plugins", "u" },
    { "plugins-disabled", "u" },
  };
  static const KeyType server_keys[] = {
    { "id", "s" }, { "name", "s" }, { "enable", "b" }, { "tenant-id", "s" },
    { "client-id", "s" }, { "auth-service", "s" }, { "scope", "s" }, { "gate-open", "b" },
    { "gate-reason", "s" }, { "gate-error", "s" }, { "sessions", "u" }, { "findings", "as" },
  };
  static const KeyType session_keys[] = {
    { "id", "s" }, { "object-path", "o" }, { "server", "s" }, { "method", "s" },
    { "object-id", "s" }, { "tenant-id", "s" }, { "user-name", "s" }, { "device-id", "s" },
    { "platform", "s" }, { "state", "s" }, { "reason", "s" }, { "mam-required", "b" },
    { "created", "x" }, { "updated", "x" }, { "seq", "t" },
  };
  static const KeyType plugin_keys[] = {
    { "method", "s" }, { "module", "s" }, { "version", "s" }, { "path", "s" },
    { "capabilities", "as" }, { "enabled", "b" }, { "disabled-reason", "s" },
    { "description", "s" },
  };
  static const KeyType wipe_keys[] = {
    { "id", "s" }, { "server", "s" }, { "device-id", "s" }, { "object-id", "s" },
    { "session", "s" }, { "reason", "s" }, { "created", "x" }, { "expires", "x" }, { "seq", "t" },
  };
  static const KeyType result_keys[] = {
    { "state", "s" }, { "mam-required", "b" }, { "object-id", "s" }, { "tenant-id", "s" },
    { "user-name", "s" }, { "reason", "s" }, { "decision-id", "s" }, { "seq", "t" },
  };
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) dict = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) failed = NULL;
  g_autoptr(GVariant) access = NULL;
  g_autofree char *path = NULL;
  g_autofree char *version = NULL;
  gboolean licensed = FALSE;
  guint32 n_sessions = 0, n_wipes = 0;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-00000000000e", "ios",
                                     "dev-a", &path, &error);
  g_assert_no_error (error);
  assert_dict_shape (result, result_keys, G_N_ELEMENTS (result_keys));
  {
    g_autoptr(GVariant) other = mamd_test_daemon_sign_in (d, SERVER,
                                                          "0c0ffee0-0000-4000-8000-00000000000f",
                                                          "ios", "dev-b", NULL, &error);
    g_assert_no_error (error);
  }
  failed = report (d, path, "failed", 201, &error);
  g_assert_no_error (error);
  assert_dict_shape (failed, result_keys, G_N_ELEMENTS (result_keys));

  access = mamd_test_daemon_call (d, "CheckAccess", g_variant_new ("(o)", path), "(bss)", &error);
  g_assert_no_error (error);
  {
    gboolean allowed = TRUE;
    const char *state = NULL, *reason = NULL;
    g_variant_get (access, "(b&s&s)", &allowed, &state, &reason);
    g_assert_false (allowed);
    g_assert_cmpstr (state, ==, "revoked");
    g_assert_cmpstr (reason, !=, "");
  }

  status = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_assert_no_error (error);
  dict = g_variant_get_child_value (status, 0);
  assert_dict_shape (dict, status_keys, G_N_ELEMENTS (status_keys));
  g_assert_true (g_variant_lookup (dict, "version", "s", &version));
  g_assert_cmpstr (version, ==, MAMD_VERSION);
  g_assert_true (g_variant_lookup (dict, "licensed", "b", &licensed));
  g_assert_true (licensed);
  g_assert_true (g_variant_lookup (dict, "sessions", "u", &n_sessions));
  g_assert_cmpuint (n_sessions, ==, 2);
  g_assert_true (g_variant_lookup (dict, "pending-wipes", "u", &n_wipes));
  g_assert_cmpuint (n_wipes, ==, 1);

  assert_list_shape (d, "ListServers", NULL, server_keys, G_N_ELEMENTS (server_keys), 1);
  assert_list_shape (d, "ListSessions", g_variant_new ("(s)", ""), session_keys,
                     G_N_ELEMENTS (session_keys), 2);
  assert_list_shape (d, "ListSessions", g_variant_new ("(s)", "other-server"), session_keys,
                     G_N_ELEMENTS (session_keys), 0);
  assert_list_shape (d, "ListPlugins", NULL, plugin_keys, G_N_ELEMENTS (plugin_keys), 1);
  assert_list_shape (d, "ListWipes", NULL, wipe_keys, G_N_ELEMENTS (wipe_keys), 1);
}

static void
test_session_objects (void)
{
  static const KeyType property_types[] = {
    { "Id", "s" }, { "Server", "s" }, { "AuthMethod", "s" }, { "ObjectId", "s" },
    { "TenantId", "s" }, { "UserName", "s" }, { "DeviceId", "s" }, { "Platform", "s" },
    { "State", "s" }, { "Reason", "s" }, { "MamRequired", "b" }, { "Created", "x" },
    { "Updated", "x" }, { "Seq", "t" },
  };
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  GDBusConnection *connection = mamd_test_daemon_get_connection (d);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) xml = NULL;
  g_autoptr(GVariant) root_xml = NULL;
  g_autoptr(GVariant) all = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) gone = NULL;
  g_autoptr(GVariant) signed_out = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GDBusNodeInfo) root = NULL;
  g_autofree char *path = NULL;
  g_autofree char *id = NULL;
  g_autofree char *object_id = NULL;
  const char *text;
  gboolean listed = FALSE;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000010", "ios",
                                     "dev", &path, &error);
  g_assert_no_error (error);

  xml = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", path,
                                     "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                     G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                     &error);
  g_assert_no_error (error);
  g_variant_get (xml, "(&s)", &text);
  node = g_dbus_node_info_new_for_xml (text, &error);
  g_assert_no_error (error);
  g_assert_nonnull (g_dbus_node_info_lookup_interface (node, SESSION_IFACE));

  /* the subtree enumerates live sessions */
  root_xml = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1/session",
                                          "org.freedesktop.DBus.Introspectable", "Introspect",
                                          NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                          NULL, &error);
  g_assert_no_error (error);
  g_variant_get (root_xml, "(&s)", &text);
  root = g_dbus_node_info_new_for_xml (text, &error);
  g_assert_no_error (error);
  for (guint i = 0; root->nodes != NULL && root->nodes[i] != NULL; i++)
    listed = listed || g_str_has_suffix (path, root->nodes[i]->path);
  g_assert_true (listed);

  all = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", path,
                                     "org.freedesktop.DBus.Properties", "GetAll",
                                     g_variant_new ("(s)", SESSION_IFACE),
                                     G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                     &error);
  g_assert_no_error (error);
  props = g_variant_get_child_value (all, 0);
  assert_dict_shape (props, property_types, G_N_ELEMENTS (property_types));
  g_assert_true (g_variant_lookup (props, "Id", "s", &id));
  g_assert_true (g_str_has_suffix (path, id));
  g_assert_true (g_variant_lookup (props, "ObjectId", "s", &object_id));
  g_assert_cmpstr (object_id, ==, "0c0ffee0-0000-4000-8000-000000000010");

  /* signed out: the object disappears */
  signed_out = mamd_test_daemon_call (d, "SignOut", g_variant_new ("(o)", path), NULL, &error);
  g_assert_no_error (error);
  gone = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", path,
                                      "org.freedesktop.DBus.Properties", "GetAll",
                                      g_variant_new ("(s)", SESSION_IFACE),
                                      G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                      &error);
  g_assert_null (gone);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.NotFound");
}

int
main (int argc, char **argv)
{
  int status;

  if (argc == 5 && g_str_equal (argv[1], "--peer"))
    return peer_main (argv[2], argv[3], argv[4]);
  if (argc == 4 && g_str_equal (argv[1], "--peer"))
    return peer_main (argv[2], argv[3], NULL);

  self_path = g_canonicalize_filename (argv[0], NULL);
  g_test_init (&argc, &argv, NULL);
  /* the client side maps org.mamd.Mamd1.Error.* names too */
  (void) mamd_error_quark ();

  g_test_add_func ("/mamd/dbus/startup/no-config-dir", test_startup_no_config);
  g_test_add_func ("/mamd/dbus/startup/name-taken", test_startup_name_taken);
  g_test_add_func ("/mamd/dbus/startup/state-dir-unusable", test_startup_state_unusable);
  g_test_add_func ("/mamd/dbus/sigterm", test_sigterm);
  g_test_add_func ("/mamd/dbus/sign-in/enrollment-required", test_sign_in_signal);
  g_test_add_func ("/mamd/dbus/flow/declined-retry-failed", test_full_flow);
  g_test_add_func ("/mamd/dbus/errors/names", test_errors);
  g_test_add_func ("/mamd/dbus/errors/not-licensed", test_not_licensed);
  g_test_add_func ("/mamd/dbus/secrecy/credential-never-echoed", test_credential_never_echoed);
  g_test_add_data_func ("/mamd/dbus/reload/method", GINT_TO_POINTER (RELOAD_METHOD), test_reload);
  g_test_add_data_func ("/mamd/dbus/reload/sighup", GINT_TO_POINTER (RELOAD_SIGHUP), test_reload);
  g_test_add_data_func ("/mamd/dbus/reload/file-change", GINT_TO_POINTER (RELOAD_FILE_CHANGE),
                        test_reload);
  g_test_add_func ("/mamd/dbus/reload/signal-burst-ordered", test_signal_burst_ordered);
  g_test_add_func ("/mamd/dbus/restart/wipe-reannounced", test_wipe_restart);
  g_test_add_func ("/mamd/dbus/restart/seq-increasing", test_seq_across_restart);
  g_test_add_func ("/mamd/dbus/gate/access-denied", test_access_denied);
  g_test_add_func ("/mamd/dbus/gate/other-uid", test_roles_other_uid);
  g_test_add_func ("/mamd/dbus/gate/busy-and-cancel", test_busy_and_cancel);
  g_test_add_func ("/mamd/dbus/shapes", test_shapes);
  g_test_add_func ("/mamd/dbus/session-objects", test_session_objects);
  status = g_test_run ();
  g_free (self_path);
  return status;
}
