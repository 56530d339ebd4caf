/*
 * Black-box tests of the real mamd binary on a private dbus-daemon: what a
 * caller is refused and what it never sees. Error names, secrecy of
 * credentials, the authorization gate (also for another uid) and the
 * per-sender caps.
 */
#include "config.h"

#include <grp.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mamd-plugin.h"
#include "mamd-test-dbus-helpers.h"

#define NOBODY_UID 65534

/* this binary, for peer mode (not /proc/self/exe: that is valgrind under
 * the valgrind test setup) */
static char *self_path;

/* ---- error names ---- */

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
  /* a plugin that quotes its credential: cut out of the reply and the log */
  expect_no_marker_error (d, g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>, "
                                                   "'user-name': <%s>, "
                                                   "'fail': <'bug-quote-credential'>}",
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
  } else if (g_str_equal (action, "list-sessions-page")) {
    /* a page of one session at a time: "ok SESSIONS PAGES" */
    g_autofree char *cursor = g_strdup ("");
    guint n = 0, pages = 0;

    do {
      g_autoptr(GVariant) page = NULL;

      g_clear_pointer (&reply, g_variant_unref);
      reply = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                           MANAGER_IFACE, "ListSessionsPage",
                                           g_variant_new ("(ssu)", "", cursor, 1),
                                           G_VARIANT_TYPE ("(aa{sv}s)"), G_DBUS_CALL_FLAGS_NONE,
                                           -1, NULL, &error);
      if (reply == NULL)
        break;
      g_free (cursor);
      g_variant_get (reply, "(@aa{sv}s)", &page, &cursor);
      n += (guint) g_variant_n_children (page);
      pages++;
    } while (cursor[0] != '\0');
    if (reply != NULL)
      g_print ("ok %u %u\n", n, pages);
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

/* Runs this test binary as uid 65534 in peer mode; NULL only when that
 * cannot start here (the build dir is not reachable for nobody, or the uid
 * cannot be taken). Any other failure of the peer fails the test. */
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
  /* 126: become_nobody failed; 127: the dynamic loader could not run it */
  if (WIFEXITED (status) && (WEXITSTATUS (status) == 126 || WEXITSTATUS (status) == 127)) {
    g_test_message ("cannot run as nobody (exit %d)", WEXITSTATUS (status));
    g_free (out);
    return NULL;
  }
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("the peer running as nobody failed (%s): %s", error->message, out);
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
  /* pages count the sessions the caller sees: one page, no cursor past it */
  out = run_as_nobody (d, "list-sessions-page", NULL);
  g_assert_cmpstr (out, ==, "ok 1 1");
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

static void
write_passwd (const char *path, const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

/* ClientUsers names users, mamd authorises uids: a reload resolves the
 * names again even when the list is the same, so a user deleted (or whose
 * name now belongs to another uid) loses access and one created gets it.
 * mamd runs with mamd-test-passwd preloaded: nobody (65534) is "gateway"
 * while the test's passwd file says so. */
static void
test_roles_users_change (void)
{
  g_autoptr(MamdTestDaemon) d = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *passwd = NULL;
  g_autofree char *preload = NULL;
  g_autofree char *asan = NULL;
  g_autofree char *out = NULL;

  if (getuid () != 0) {
    g_test_skip ("needs root to call mamd as another uid");
    return;
  }
  d = mamd_test_daemon_new ();
  passwd = g_build_filename (mamd_test_daemon_get_tmp_dir (d), "passwd", NULL);
  preload = g_build_filename (g_getenv ("MAMD_BUILD_ROOT"), "tests", "libmamd-test-passwd.so",
                              NULL);
  write_passwd (passwd, "gateway:65534\n");
  mamd_test_daemon_write_daemon_conf (d, "ClientUsers=gateway\n");
  mamd_test_daemon_write_license (d, "advanced",
                                  g_get_real_time () / G_USEC_PER_SEC + 86400 * 365);
  mamd_test_daemon_write_mam_server (d, SERVER, TRUE, NULL);
  mamd_test_daemon_setenv (d, "LD_PRELOAD", preload);
  mamd_test_daemon_setenv (d, "MAMD_TEST_PASSWD", passwd);
  /* the asan setup: the shim is loaded before the sanitizer's runtime */
  asan = g_strconcat (g_getenv ("ASAN_OPTIONS") != NULL ? g_getenv ("ASAN_OPTIONS") : "",
                      ":verify_asan_link_order=0", NULL);
  mamd_test_daemon_setenv (d, "ASAN_OPTIONS", asan);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);

  out = run_as_nobody (d, "sign-in", "0c0ffee0-0000-4000-8000-00000000000f");
  if (out == NULL) {
    g_test_skip ("this test binary cannot run as nobody here");
    return;
  }
  g_assert_cmpstr (out, ==, "ok");
  g_free (out);

  /* gateway is deleted and its uid given to someone else: after a reload
   * with the same ClientUsers, uid 65534 is nobody's client any more */
  write_passwd (passwd, "other:65534\n");
  reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  g_assert_no_error (error);
  out = run_as_nobody (d, "sign-in", "0c0ffee0-0000-4000-8000-000000000010");
  g_assert_cmpstr (out, ==, "error org.mamd.Mamd1.Error.AccessDenied");
  g_free (out);

  /* gateway is created again: the next reload lets it in */
  write_passwd (passwd, "gateway:65534\n");
  g_clear_pointer (&reply, g_variant_unref);
  reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  g_assert_no_error (error);
  out = run_as_nobody (d, "sign-in", "0c0ffee0-0000-4000-8000-000000000011");
  g_assert_cmpstr (out, ==, "ok");
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

static GDBusConnection *
new_bus_connection (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection = g_dbus_connection_new_for_address_sync (
    mamd_test_daemon_get_bus_address (d),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);

  g_assert_no_error (error);
  return connection;
}

/* A sign-in the test plugin holds for ten minutes. */
static void
start_slow_sign_in (GDBusConnection *connection, PendingCalls *pending)
{
  g_autofree char *oid = mamd_test_random_guid ();
  GVariant *credential = g_variant_new_parsed ("{'object-id': <%s>, 'tenant-id': <%s>, "
                                               "'delay-ms': <uint32 600000>}",
                                               oid, MAMD_TEST_TENANT_ID);

  g_dbus_connection_call (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1", MANAGER_IFACE,
                          "SignIn",
                          g_variant_new ("(ss@a{sv}@a{sv})", SERVER, "test", credential,
                                         mamd_test_device ("ios", "slow")),
                          G_VARIANT_TYPE ("(oa{sv})"), G_DBUS_CALL_FLAGS_NONE, 700000, NULL,
                          on_slow_sign_in, pending);
}

static void
test_busy_and_cancel (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon ("[Limits]\nMaxCallsInFlightPerSender=2\n", NULL);
  g_autoptr(GDBusConnection) other = new_bus_connection (d);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) ok = NULL;
  PendingCalls pending = { 0 };
  LogWait wait = { d, "left the bus: cancelling 2 call(s) in flight" };
  LogWait cancelled = { d, "): Operation was cancelled", 2 };

  start_slow_sign_in (other, &pending);
  start_slow_sign_in (other, &pending);
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

  /* the sender leaves: its calls are cancelled (the plugin would hold them
   * for ten minutes), no session is created */
  g_dbus_connection_close_sync (other, NULL, NULL);
  g_assert_true (mamd_test_daemon_iterate_until (d, log_contains, &wait, WAIT_MS));
  g_assert_true (mamd_test_daemon_iterate_until (d, log_contains, &cancelled, WAIT_MS));
  list = mamd_test_daemon_call (d, "ListSessions", g_variant_new ("(s)", ""), "(aa{sv})", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) sessions = g_variant_get_child_value (list, 0);
    g_assert_cmpuint (g_variant_n_children (sessions), ==, 0);
  }
}

static void
assert_busy_per_uid (GDBusConnection *connection)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1",
                                                           "/org/mamd/Mamd1", MANAGER_IFACE,
                                                           "GetStatus", NULL,
                                                           G_VARIANT_TYPE ("(a{sv})"),
                                                           G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                                           &error);

  assert_dbus_error (error, "org.mamd.Mamd1.Error.Busy");
  g_assert_nonnull (strstr (error->message, "MaxCallsInFlightPerUser"));
}

/* One uid on several connections: the per-uid cap counts all of them. */
static void
test_busy_per_uid (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon ("[Limits]\nMaxCallsInFlightPerUser=1\n", NULL);
  g_autoptr(GDBusConnection) first = new_bus_connection (d);
  g_autoptr(GDBusConnection) second = new_bus_connection (d);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) ok = NULL;
  PendingCalls pending = { 0 };
  LogWait wait = { d, "left the bus: cancelling 1 call(s) in flight" };

  start_slow_sign_in (first, &pending);
  /* refused after the sign-in passed the gate (one sender's calls run in
   * order), on its connection and on another one of the same uid */
  assert_busy_per_uid (first);
  assert_busy_per_uid (second);

  /* the connection leaves: its call is cancelled and, once it has
   * finished (asynchronously), no longer counts */
  g_dbus_connection_close_sync (first, NULL, NULL);
  g_assert_true (mamd_test_daemon_iterate_until (d, log_contains, &wait, WAIT_MS));
  for (gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;;) {
    g_clear_error (&error);
    g_clear_pointer (&ok, g_variant_unref);
    ok = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
    if (ok != NULL || g_get_monotonic_time () > deadline)
      break;
    assert_dbus_error (error, "org.mamd.Mamd1.Error.Busy");
    g_usleep (20 * G_TIME_SPAN_MILLISECOND);
  }
  g_assert_no_error (error);
}

/* The bus peers mamd tracks when @connection's first call arrives, from
 * the debug log; G_MAXUINT when that line is not there (yet). */
static guint
tracked_peers (MamdTestDaemon *d, GDBusConnection *connection)
{
  g_autofree char *log = mamd_test_daemon_get_log (d);
  g_autofree char *prefix = g_strdup_printf ("%s: first call, ",
                                             g_dbus_connection_get_unique_name (connection));
  const char *line = strstr (log, prefix);

  if (line == NULL)
    return G_MAXUINT;
  return (guint) g_ascii_strtoull (line + strlen (prefix), NULL, 10);
}

/* A call to a session object may be dispatched after its sender's
 * NameOwnerChanged (GDBus takes one more idle for a subtree): mamd must not
 * keep a per-sender entry for it, or every peer that calls and leaves at once
 * costs memory for ever. */
static void
test_sender_left_before_dispatch (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *path = NULL;
  guint peers = G_MAXUINT;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-00000000000e", "ios",
                                     "device", &path, &error);
  g_assert_no_error (error);
  /* several calls per peer make it likely that GDBus dispatches some after
   * the peer's NameOwnerChanged */
  for (guint i = 0; i < 60; i++) {
    g_autoptr(GDBusConnection) connection = new_bus_connection (d);

    for (guint j = 0; j < 8; j++) {
      g_autoptr(GDBusMessage) message = g_dbus_message_new_method_call (
        "org.mamd.Mamd1", path, "org.freedesktop.DBus.Properties", "GetAll");

      g_dbus_message_set_body (message, g_variant_new ("(s)", SESSION_IFACE));
      g_dbus_connection_send_message (connection, message, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL,
                                      &error);
      g_assert_no_error (error);
    }
    /* closing drops what is not written yet */
    g_dbus_connection_flush_sync (connection, NULL, &error);
    g_assert_no_error (error);
    g_dbus_connection_close_sync (connection, NULL, &error);
    g_assert_no_error (error);
  }

  /* once those peers are forgotten, mamd tracks the fixture's connection,
   * the new one and at most the one before, whose leaving may be on its way */
  for (gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;
       g_get_monotonic_time () < deadline;) {
    g_autoptr(GDBusConnection) connection = new_bus_connection (d);
    g_autoptr(GVariant) status = NULL;

    status = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                          MANAGER_IFACE, "GetStatus", NULL,
                                          G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                                          NULL, &error);
    g_assert_no_error (error);
    peers = tracked_peers (d, connection);
    if (peers <= 3)
      break;
    g_dbus_connection_close_sync (connection, NULL, NULL);
    g_usleep (100 * G_TIME_SPAN_MILLISECOND);
  }
  g_assert_cmpuint (peers, <=, 3);
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

  g_test_add_func ("/mamd/dbus/errors/names", test_errors);
  g_test_add_func ("/mamd/dbus/errors/not-licensed", test_not_licensed);
  g_test_add_func ("/mamd/dbus/secrecy/credential-never-echoed", test_credential_never_echoed);
  g_test_add_func ("/mamd/dbus/gate/access-denied", test_access_denied);
  g_test_add_func ("/mamd/dbus/gate/other-uid", test_roles_other_uid);
  g_test_add_func ("/mamd/dbus/gate/users-change", test_roles_users_change);
  g_test_add_func ("/mamd/dbus/gate/busy-and-cancel", test_busy_and_cancel);
  g_test_add_func ("/mamd/dbus/gate/busy-per-uid", test_busy_per_uid);
  g_test_add_func ("/mamd/dbus/gate/sender-left-before-dispatch",
                   test_sender_left_before_dispatch);
  status = g_test_run ();
  g_free (self_path);
  return status;
}
