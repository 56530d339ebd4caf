/*
 * test-oauth-dbus.c: the office365 plugin end to end over D-Bus: the real
 * mamd (MamdTestDaemon, --plugin-dir $BUILD/plugins/oauth) signs users in
 * against a loopback identity provider (MamdIdpServer) running in this
 * process: a valid sign-in, a token from another tenant, a slow provider
 * (a key request it holds until the test releases it) that must not hold
 * up sign-ins with cached keys, and a reload that
 * checks the MAM service permission again. The in-process module tests
 * are in test-oauth-plugin.c.
 *
 * Every token is minted at test time with the provider's current key. The
 * provider serves from this process's default main context, so the tests
 * only ever wait by iterating it (never a synchronous D-Bus call).
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "mamd-idp-server.h"
#include "mamd-test-daemon.h"
#include "mamd-test-oauth-util.h"

typedef struct {
  gboolean done;
  GVariant *reply;
  GError *error;
} CallWait;

static void
on_call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallWait *wait = user_data;

  wait->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &wait->error);
  wait->done = TRUE;
}

static gboolean
call_is_done (gpointer user_data)
{
  return ((CallWait *) user_data)->done;
}

static void
sign_in_start (MamdTestDaemon *d, const char *server, const char *token, const char *device_id,
               CallWait *wait)
{
  g_autoptr(GVariant) credential = token_credential (token);

  g_dbus_connection_call (mamd_test_daemon_get_connection (d), "org.mamd.Mamd1",
                          "/org/mamd/Mamd1", "org.mamd.Mamd1.Manager", "SignIn",
                          g_variant_new ("(ss@a{sv}@a{sv})", server, "office365", credential,
                                         mamd_test_device ("ios", device_id)),
                          G_VARIANT_TYPE ("(oa{sv})"), G_DBUS_CALL_FLAGS_NO_AUTO_START, 120000,
                          NULL, on_call_done, wait);
}

/* The provider lives in this process: wait by running its main context. */
static void
call_wait (MamdTestDaemon *d, CallWait *wait)
{
  g_assert_true (mamd_test_daemon_iterate_until (d, call_is_done, wait, 120000));
}

typedef struct {
  MamdTestDaemon *d;
  MamdIdpServer *idp;
} DbusFixture;

/* Writes servers.d/chat.conf: office365 against the fixture's provider,
 * @extra appended to its [office365] group. The longest HttpTimeout: a
 * request the provider holds is never given up by the plugin before the
 * test's own waits (WAIT_MS) end. */
static void
dbus_write_server (DbusFixture *f, const char *extra)
{
  g_autofree char *conf = NULL;

  conf = g_strdup_printf ("[Server]\nEnable=true\nTenantId=%s\nClientId=%s\n"
                          "AuthService=office365\nAllowedPlatforms=ios\nAutoCreateUsers=true\n"
                          "[office365]\nAuthority=%s\nHttpTimeout=300\n%s",
                          MAMD_TEST_TENANT_ID, MAMD_TEST_CLIENT_ID,
                          mamd_idp_server_get_authority (f->idp), extra != NULL ? extra : "");
  mamd_test_daemon_write_server (f->d, "chat", conf);
}

static void
dbus_setup (DbusFixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *plugin_dir = g_build_filename (g_getenv ("MAMD_BUILD_ROOT"), "plugins",
                                                  "oauth", NULL);

  f->idp = mamd_idp_server_new (0, &error);
  g_assert_no_error (error);
  f->d = mamd_test_daemon_new ();
  mamd_test_daemon_write_daemon_conf (f->d, NULL);
  mamd_test_daemon_write_license (f->d, "advanced",
                                  g_get_real_time () / G_USEC_PER_SEC + 365 * 86400);
  dbus_write_server (f, NULL);
  mamd_test_daemon_set_plugin_dir (f->d, plugin_dir);
  mamd_test_daemon_start (f->d, &error);
  g_assert_no_error (error);
}

static void
dbus_teardown (DbusFixture *f, gconstpointer data)
{
  g_clear_pointer (&f->d, mamd_test_daemon_free);
  g_clear_object (&f->idp);
}

static char *
dbus_mint (DbusFixture *f, const char *tenant, const char *oid)
{
  char *token = mamd_idp_server_mint (f->idp, tenant, MAMD_TEST_CLIENT_ID, SCOPE, oid, "alice",
                                      3600);

  g_assert_nonnull (token);
  return token;
}

static void
test_dbus_sign_in (DbusFixture *f, gconstpointer data)
{
  g_autofree char *oid = mamd_test_random_guid ();
  g_autofree char *token = dbus_mint (f, MAMD_TEST_TENANT_ID, oid);
  g_autoptr(GVariant) result = NULL;
  g_autofree char *log = NULL;
  const MamdTestSignal *sig;
  CallWait wait = { 0 };
  const char *path = NULL;
  const char *object_id = NULL;
  const char *state = NULL;

  sign_in_start (f->d, "chat", token, "iphone-1", &wait);
  call_wait (f->d, &wait);
  g_assert_no_error (wait.error);
  g_variant_get (wait.reply, "(&o@a{sv})", &path, &result);
  g_assert_true (g_variant_lookup (result, "object-id", "&s", &object_id));
  g_assert_cmpstr (object_id, ==, oid);
  g_assert_true (g_variant_lookup (result, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "enrollment-required");
  sig = mamd_test_daemon_wait_signal (f->d, "EnrollmentRequired", path, WAIT_MS);
  g_assert_nonnull (sig);

  /* the token reached no log and no signal */
  log = mamd_test_daemon_get_log (f->d);
  g_assert_null (strstr (log, token));
  for (guint i = 0; i < mamd_test_daemon_get_signals (f->d)->len; i++)
    {
      MamdTestSignal *s = g_ptr_array_index (mamd_test_daemon_get_signals (f->d), i);
      g_autofree char *text = g_variant_print (s->parameters, FALSE);
      g_assert_null (strstr (text, token));
    }
  g_variant_unref (wait.reply);
}

static void
test_dbus_other_tenant (DbusFixture *f, gconstpointer data)
{
  g_autofree char *oid = mamd_test_random_guid ();
  g_autofree char *token = dbus_mint (f, OTHER_TENANT, oid);
  CallWait wait = { 0 };
  g_autofree char *name = NULL;

  sign_in_start (f->d, "chat", token, "iphone-2", &wait);
  call_wait (f->d, &wait);
  g_assert_null (wait.reply);
  g_assert_nonnull (wait.error);
  name = g_dbus_error_get_remote_error (wait.error);
  g_assert_cmpstr (name, ==, "org.mamd.Mamd1.Error.InvalidToken");
  g_assert_null (strstr (wait.error->message, token));
  g_clear_error (&wait.error);
}

static gboolean
request_held (gpointer user_data)
{
  return mamd_idp_server_get_n_held (user_data) > 0;
}

/* A slow provider without a clock: after a rotation the provider holds the
 * JWKS request for the new kid until the test releases it. While the fetch
 * is surely in flight, a sign-in whose key is cached goes through; once
 * released, the held sign-in completes too. A mamd whose main loop waited
 * for the fetch, or a plugin that queued every sign-in behind it, answers
 * nothing while the request is held: the wait for the cached sign-in fails
 * (HttpTimeout is longer than that wait, so the plugin never gives up the
 * held request first). */
static void
test_dbus_slow_provider (DbusFixture *f, gconstpointer data)
{
  g_autofree char *oid1 = mamd_test_random_guid ();
  g_autofree char *oid2 = mamd_test_random_guid ();
  g_autofree char *oid3 = mamd_test_random_guid ();
  g_autofree char *first = dbus_mint (f, MAMD_TEST_TENANT_ID, oid1);
  g_autofree char *cached = dbus_mint (f, MAMD_TEST_TENANT_ID, oid2);
  g_autofree char *rotated = NULL;
  g_autoptr(GVariant) result = NULL;
  CallWait w1 = { 0 }, slow = { 0 }, fast = { 0 };
  const char *object_id = NULL;

  sign_in_start (f->d, "chat", first, "device-1", &w1);
  call_wait (f->d, &w1);
  g_assert_no_error (w1.error);
  g_variant_unref (w1.reply);

  mamd_idp_server_rotate_key (f->idp);
  rotated = dbus_mint (f, MAMD_TEST_TENANT_ID, oid3);
  mamd_idp_server_hold (f->idp, "/discovery/v2.0/keys");
  sign_in_start (f->d, "chat", rotated, "device-3", &slow);
  g_assert_true (mamd_test_daemon_iterate_until (f->d, request_held, f->idp, WAIT_MS));

  sign_in_start (f->d, "chat", cached, "device-2", &fast);
  g_assert_true (mamd_test_daemon_iterate_until (f->d, call_is_done, &fast, WAIT_MS));
  g_assert_no_error (fast.error);
  g_assert_false (slow.done);
  g_assert_cmpuint (mamd_idp_server_get_n_held (f->idp), ==, 1);

  mamd_idp_server_release (f->idp);
  call_wait (f->d, &slow);
  g_assert_no_error (slow.error);
  g_variant_get (slow.reply, "(&o@a{sv})", NULL, &result);
  g_assert_true (g_variant_lookup (result, "object-id", "&s", &object_id));
  g_assert_cmpstr (object_id, ==, oid3);
  g_variant_unref (fast.reply);
  g_variant_unref (slow.reply);
}

/* Reload over D-Bus; the remote error name, or NULL when it worked. */
static char *
dbus_reload (DbusFixture *f)
{
  CallWait wait = { 0 };
  char *name = NULL;

  g_dbus_connection_call (mamd_test_daemon_get_connection (f->d), "org.mamd.Mamd1",
                          "/org/mamd/Mamd1", "org.mamd.Mamd1.Manager", "Reload", NULL, NULL,
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, 120000, NULL, on_call_done, &wait);
  call_wait (f->d, &wait);
  if (wait.error != NULL)
    {
      g_test_message ("Reload: %s", wait.error->message);
      name = g_dbus_error_get_remote_error (wait.error);
      g_clear_error (&wait.error);
    }
  g_clear_pointer (&wait.reply, g_variant_unref);
  return name;
}

static gboolean
flag_set (gpointer user_data)
{
  return *(gboolean *) user_data;
}

/* Signs new users in until a sign-in ends with the remote error @name
 * (NULL: success); the permission check runs in the background. */
static void
dbus_sign_in_until (DbusFixture *f, const char *name)
{
  for (guint attempt = 0; attempt < 200; attempt++)
    {
      g_autofree char *oid = mamd_test_random_guid ();
      g_autofree char *token = dbus_mint (f, MAMD_TEST_TENANT_ID, oid);
      g_autofree char *got = NULL;
      gboolean pause_over = FALSE;
      CallWait wait = { 0 };

      sign_in_start (f->d, "chat", token, oid, &wait);
      call_wait (f->d, &wait);
      if (wait.error != NULL)
        got = g_dbus_error_get_remote_error (wait.error);
      g_clear_error (&wait.error);
      g_clear_pointer (&wait.reply, g_variant_unref);
      if (g_strcmp0 (got, name) == 0)
        return;
      g_timeout_add (50, on_wait_timeout, &pause_over);
      g_assert_true (mamd_test_daemon_iterate_until (f->d, flag_set, &pause_over, WAIT_MS));
    }
  g_error ("sign-ins never ended with %s", name != NULL ? name : "success");
}

/* A reload checks the MAM service permission again and re-reads the client
 * secret, also when the server file did not change: once admin consent is
 * granted, a reload opens the gate without waiting for the next periodic
 * check; a secret file that is no longer private makes the reload fail. */
static void
test_dbus_reload_permission (DbusFixture *f, gconstpointer data)
{
  g_autofree char *secret = write_secret (mamd_test_daemon_get_tmp_dir (f->d), "secret",
                                          SECRET "\n", 0600);
  g_autofree char *extra = g_strdup_printf ("ClientSecretFile=%s\n", secret);
  g_autofree char *name = NULL;

  mamd_idp_server_add_client (f->idp, MAMD_TEST_TENANT_ID, MAMD_TEST_CLIENT_ID, SECRET);
  mamd_idp_server_set_token_error (f->idp, "AADSTS650057");
  dbus_write_server (f, extra);
  g_assert_null (dbus_reload (f));
  dbus_sign_in_until (f, "org.mamd.Mamd1.Error.InvalidResource");

  mamd_idp_server_set_token_error (f->idp, NULL);
  g_assert_null (dbus_reload (f));
  dbus_sign_in_until (f, NULL);

  g_assert_cmpint (g_chmod (secret, 0644), ==, 0);
  name = dbus_reload (f);
  g_assert_cmpstr (name, ==, "org.mamd.Mamd1.Error.InvalidConfig");
}

static void
add_dbus_tests (void)
{
  g_test_add ("/mamd/oauth/plugin/dbus/reload-permission", DbusFixture, NULL, dbus_setup,
              test_dbus_reload_permission, dbus_teardown);
  g_test_add ("/mamd/oauth/plugin/dbus/sign-in", DbusFixture, NULL, dbus_setup,
              test_dbus_sign_in, dbus_teardown);
  g_test_add ("/mamd/oauth/plugin/dbus/other-tenant", DbusFixture, NULL, dbus_setup,
              test_dbus_other_tenant, dbus_teardown);
  g_test_add ("/mamd/oauth/plugin/dbus/slow-provider", DbusFixture, NULL, dbus_setup,
              test_dbus_slow_provider, dbus_teardown);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  add_dbus_tests ();
  return g_test_run ();
}
