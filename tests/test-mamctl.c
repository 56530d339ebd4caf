/*
 * mamctl against the real daemon on a private bus: every command in human
 * and JSON form, the exit codes 0-5, control characters in mamd's strings
 * made visible, and monitor printing a sign-in's signals as they happen.
 * `mamctl check` is in test-mamctl-check.c; the fixture in
 * mamd-test-mamctl.c.
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>

#include "mamd-test-mamctl.h"

static void
test_usage (Fixture *f, gconstpointer data)
{
  const char *const cases[][6] = {
    { "frobnicate", NULL },
    { "session", NULL },
    { "session", "not-a-session", NULL },
    { "login", "chat", "test", NULL },                        /* no --platform/--device-id */
    { "sessions", "a", "b", NULL },
    { "report-enrollment", "0123456789abcdef0123456789abcdef", "maybe", NULL },
    { "--system", "--session-bus", "status", NULL },
    { "status", "--no-such-option", NULL },
    { "--timeout=0", "status", NULL },
    { "status", "--timeout=-1", NULL },
    { "status", "--timeout=soon", NULL },
    { "status", "--timeout=86401", NULL },
    /* D-Bus strings are UTF-8: these were sent mangled, after a critical */
    { "sessions", "\xff", NULL },
    { "sync", "chat\xc3", NULL },
    { "ack-wipe", "\xfe", NULL },
    { "re-add", "chat", "phone\xff", NULL },
    { "login", "\xff", "test", "--platform=ios", "--device-id=d", NULL },
  };
  g_auto(MamdTestRun) none = { 0 };
  g_auto(MamdTestRun) help = { 0 };
  g_auto(MamdTestRun) cred = { 0 };
  g_auto(MamdTestRun) version = { 0 };
  guint i;

  run_mamctl (f, &version, "--version");
  g_assert_cmpint (version.status, ==, 0);
  g_assert_cmpstr (version.out, ==, "mamctl " MAMD_VERSION "\n");

  run_mamctl_v (NULL, &none, (const char *const[]) { NULL });
  g_assert_cmpint (none.status, ==, 2);
  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(MamdTestRun) run = { 0 };
      run_mamctl_v (NULL, &run, cases[i]);
      g_assert_cmpint (run.status, ==, 2);
      g_assert_true (g_str_has_prefix (run.err, "mamctl: "));
    }
  run_mamctl_v (NULL, &cred, (const char *const[]) { "login", "chat", "test", "--platform=ios",
                                                     "--device-id=d", "--credential=delay-ms:u=x",
                                                     NULL });
  g_assert_cmpint (cred.status, ==, 2);

  run_mamctl_v (NULL, &help, (const char *const[]) { "--help", NULL });
  g_assert_cmpint (help.status, ==, 0);
  /* the exit codes are documented */
  g_assert_nonnull (strstr (help.out, "cannot reach mamd"));
  g_assert_nonnull (strstr (help.out, "check-access"));
  g_assert_nonnull (strstr (help.out, "  5  no answer from mamd in time"));
  g_assert_nonnull (strstr (help.out, "--timeout"));
}

static void
test_unreachable (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) no_bus = { 0 };
  g_auto(MamdTestRun) no_mamd = { 0 };
  g_autofree char *address = NULL;
  g_autofree char *dir = g_dir_make_tmp ("mamctl-test-XXXXXX", NULL);

  /* no bus at all */
  address = g_strdup_printf ("unix:path=%s/nothing-here", dir);
  run_mamctl_v (address, &no_bus, (const char *const[]) { "status", NULL });
  g_assert_cmpint (no_bus.status, ==, 3);
  g_assert_nonnull (strstr (no_bus.err, "cannot connect"));
  g_rmdir (dir);

  /* a bus without mamd (the fixture did not start it) */
  run_mamctl (f, &no_mamd, "servers");
  g_assert_cmpint (no_mamd.status, ==, 3);
  g_assert_nonnull (strstr (no_mamd.err, "cannot reach mamd"));
}

static void
test_status (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) human = { 0 };
  g_auto(MamdTestRun) json = { 0 };
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *licensed = NULL;
  JsonObject *obj;
  const char *const keys[] = { "version", "licensed", "license-reason", "licensee", "sku",
                               "license-expires", "servers", "sessions", "pending-wipes",
                               "last-seq", "plugins", "plugins-disabled", NULL };
  guint i;

  run_mamctl (f, &human, "status");
  g_assert_cmpint (human.status, ==, 0);
  licensed = human_field (human.out, "licensed");
  g_assert_cmpstr (licensed, ==, "yes");

  run_mamctl (f, &json, "status", "--json");
  g_assert_cmpint (json.status, ==, 0);
  node = parse_json (json.out);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  obj = json_node_get_object (node);
  for (i = 0; keys[i] != NULL; i++)
    g_assert_true (json_object_has_member (obj, keys[i]));
  g_assert_true (json_object_get_boolean_member (obj, "licensed"));
  g_assert_cmpint (json_object_get_int_member (obj, "servers"), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (obj, "sku"), ==, "advanced");
}

static JsonObject *
find_by (JsonArray *array, const char *key, const char *value)
{
  guint i;

  for (i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *o = json_array_get_object_element (array, i);
      if (g_strcmp0 (json_object_get_string_member_with_default (o, key, NULL), value) == 0)
        return o;
    }
  return NULL;
}

static void
test_servers_plugins (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) human = { 0 };
  g_auto(MamdTestRun) json = { 0 };
  g_auto(MamdTestRun) plugins = { 0 };
  g_auto(MamdTestRun) plugins_json = { 0 };
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonNode) pnode = NULL;
  JsonObject *chat, *open, *test;
  JsonArray *caps;

  run_mamctl (f, &human, "servers");
  g_assert_cmpint (human.status, ==, 0);
  g_assert_true (g_str_has_prefix (human.out, "ID "));
  g_assert_nonnull (strstr (human.out, "\nchat "));
  g_assert_nonnull (strstr (human.out, "\nopen "));

  run_mamctl (f, &json, "--json", "servers");
  g_assert_cmpint (json.status, ==, 0);
  node = parse_json (json.out);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
  chat = find_by (json_node_get_array (node), "id", "chat");
  open = find_by (json_node_get_array (node), "id", "open");
  g_assert_nonnull (chat);
  g_assert_nonnull (open);
  g_assert_true (json_object_get_boolean_member (chat, "enable"));
  g_assert_true (json_object_get_boolean_member (chat, "gate-open"));
  g_assert_false (json_object_get_boolean_member (open, "enable"));
  g_assert_cmpstr (json_object_get_string_member (chat, "tenant-id"), ==, TENANT);
  g_assert_true (json_object_has_member (chat, "findings"));
  g_assert_true (json_object_has_member (chat, "sessions"));

  run_mamctl (f, &plugins, "plugins");
  g_assert_cmpint (plugins.status, ==, 0);
  g_assert_true (g_str_has_prefix (plugins.out, "METHOD "));
  g_assert_nonnull (strstr (plugins.out, "\ntest "));
  run_mamctl (f, &plugins_json, "plugins", "--json");
  pnode = parse_json (plugins_json.out);
  test = find_by (json_node_get_array (pnode), "method", "test");
  g_assert_nonnull (test);
  g_assert_true (json_object_get_boolean_member (test, "enabled"));
  caps = json_object_get_array_member (test, "capabilities");
  g_assert_nonnull (caps);
  g_assert_cmpuint (json_array_get_length (caps), ==, 4);
  g_assert_cmpstr (json_array_get_string_element (caps, 0), ==, "sign-in");
  g_assert_cmpstr (json_array_get_string_element (caps, 1), ==, "directory-sync");
  g_assert_cmpstr (json_array_get_string_element (caps, 2), ==, "mam-auth-service");
  g_assert_cmpstr (json_array_get_string_element (caps, 3), ==, "creates-users");
}

static void
assert_access (Fixture *f, const char *session, int expected_status, gboolean allowed)
{
  g_auto(MamdTestRun) human = { 0 };
  g_auto(MamdTestRun) json = { 0 };
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *field = NULL;

  run_mamctl (f, &human, "check-access", session);
  g_assert_cmpint (human.status, ==, expected_status);
  field = human_field (human.out, "allowed");
  g_assert_cmpstr (field, ==, allowed ? "yes" : "no");
  run_mamctl (f, &json, "check-access", session, "--json");
  g_assert_cmpint (json.status, ==, expected_status);
  node = parse_json (json.out);
  g_assert_cmpint (json_object_get_boolean_member (json_node_get_object (node), "allowed"), ==,
                   allowed);
  g_assert_true (json_object_has_member (json_node_get_object (node), "state"));
}

static void
test_session_flow (Fixture *f, gconstpointer data)
{
  g_autofree char *s1 = login (f, "chat", ALICE, "iphone-alice", "enrollment-required");
  g_autofree char *path = g_strconcat ("/org/mamd/Mamd1/session/", s1, NULL);
  g_auto(MamdTestRun) declined = { 0 };
  g_auto(MamdTestRun) success = { 0 };
  g_auto(MamdTestRun) sessions = { 0 };
  g_auto(MamdTestRun) sessions_json = { 0 };
  g_auto(MamdTestRun) by_path = { 0 };
  g_auto(MamdTestRun) by_id = { 0 };
  g_auto(MamdTestRun) signout = { 0 };
  g_auto(MamdTestRun) gone = { 0 };
  g_autoptr(JsonNode) list = NULL;
  g_autoptr(JsonNode) props = NULL;
  g_autoptr(JsonNode) result = NULL;
  g_autofree char *state = NULL;
  JsonObject *row;

  g_assert_cmpuint (strlen (s1), ==, 32);
  assert_access (f, s1, 4, FALSE);

  /* "" derives the outcome from the status code: 219 LoginCanceled declines */
  run_mamctl (f, &declined, "report-enrollment", s1, "", "--status-code=219");
  g_assert_cmpint (declined.status, ==, 0);
  state = human_field (declined.out, "state");
  g_assert_cmpstr (state, ==, "declined");
  assert_access (f, path, 4, FALSE);

  run_mamctl (f, &success, "--json", "report-enrollment", path, "success", "--status-code=100");
  g_assert_cmpint (success.status, ==, 0);
  result = parse_json (success.out);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (result), "state"), ==,
                   "enrolled");
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (result), "id"), ==, s1);
  g_assert_true (json_object_has_member (json_node_get_object (result), "seq"));
  assert_access (f, s1, 0, TRUE);

  run_mamctl (f, &sessions, "sessions", "chat");
  g_assert_cmpint (sessions.status, ==, 0);
  g_assert_true (g_str_has_prefix (sessions.out, "ID "));
  g_assert_nonnull (strstr (sessions.out, s1));
  run_mamctl (f, &sessions_json, "sessions", "--json");
  list = parse_json (sessions_json.out);
  row = find_by (json_node_get_array (list), "id", s1);
  g_assert_nonnull (row);
  g_assert_cmpstr (json_object_get_string_member (row, "state"), ==, "enrolled");
  g_assert_cmpstr (json_object_get_string_member (row, "object-path"), ==, path);
  g_assert_cmpstr (json_object_get_string_member (row, "object-id"), ==, ALICE);
  g_assert_cmpstr (json_object_get_string_member (row, "device-id"), ==, "iphone-alice");

  run_mamctl (f, &by_id, "session", s1);
  g_assert_cmpint (by_id.status, ==, 0);
  g_free (state);
  state = human_field (by_id.out, "State");
  g_assert_cmpstr (state, ==, "enrolled");
  run_mamctl (f, &by_path, "session", path, "--json");
  props = parse_json (by_path.out);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (props), "Id"), ==, s1);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (props), "Server"), ==,
                   "chat");

  run_mamctl (f, &signout, "sign-out", s1);
  g_assert_cmpint (signout.status, ==, 0);
  g_assert_nonnull (strstr (signout.out, "seq: "));
  run_mamctl (f, &gone, "check-access", s1);
  g_assert_cmpint (gone.status, ==, 1);
  g_assert_true (g_str_has_prefix (gone.err, "mamctl: "));
}

static void
test_wipe_flow (Fixture *f, gconstpointer data)
{
  g_autofree char *s2 = login (f, "chat", BOB, "ipad-bob", "enrollment-required");
  g_auto(MamdTestRun) failed = { 0 };
  g_auto(MamdTestRun) wipes = { 0 };
  g_auto(MamdTestRun) wipes_json = { 0 };
  g_auto(MamdTestRun) refused = { 0 };
  g_auto(MamdTestRun) readd = { 0 };
  g_auto(MamdTestRun) early = { 0 };
  g_auto(MamdTestRun) ack = { 0 };
  g_auto(MamdTestRun) ack_again = { 0 };
  g_autoptr(JsonNode) list = NULL;
  g_autoptr(JsonNode) seq = NULL;
  g_autofree char *state = NULL;
  g_autofree char *wipe = NULL;
  g_autofree char *again = NULL;
  JsonObject *row;

  run_mamctl (f, &failed, "report-enrollment", s2, "failed", "--status-code=201");
  g_assert_cmpint (failed.status, ==, 0);
  state = human_field (failed.out, "state");
  g_assert_cmpstr (state, ==, "revoked");

  run_mamctl (f, &wipes, "wipes");
  g_assert_cmpint (wipes.status, ==, 0);
  g_assert_true (g_str_has_prefix (wipes.out, "ID "));
  g_assert_nonnull (strstr (wipes.out, "ipad-bob"));
  /* the failed session it came from, as in --json */
  g_assert_nonnull (strstr (wipes.out, " SESSION "));
  g_assert_nonnull (strstr (wipes.out, s2));
  run_mamctl (f, &wipes_json, "wipes", "--json");
  list = parse_json (wipes_json.out);
  row = find_by (json_node_get_array (list), "device-id", "ipad-bob");
  g_assert_nonnull (row);
  g_assert_cmpstr (json_object_get_string_member (row, "server"), ==, "chat");
  g_assert_cmpstr (json_object_get_string_member (row, "object-id"), ==, BOB);
  wipe = g_strdup (json_object_get_string_member (row, "id"));

  /* a mamd error: exit 1 and the short D-Bus error name */
  run_mamctl (f, &refused, "login", "chat", "test", "--platform=ios", "--device-id=ipad-bob",
              "--credential=object-id=" BOB, "--credential=tenant-id=" TENANT);
  g_assert_cmpint (refused.status, ==, 1);
  g_assert_true (g_str_has_prefix (refused.err, "mamctl: ServerRemoved: "));

  /* the wipe first, then the server comes back */
  run_mamctl (f, &early, "re-add", "chat", "ipad-bob");
  g_assert_cmpint (early.status, ==, 1);
  g_assert_true (g_str_has_prefix (early.err, "mamctl: InvalidState: "));
  g_assert_nonnull (strstr (early.err, wipe));
  run_mamctl (f, &ack, "ack-wipe", wipe, "--json");
  g_assert_cmpint (ack.status, ==, 0);
  seq = parse_json (ack.out);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (seq), "seq"), >, 0);
  run_mamctl (f, &ack_again, "ack-wipe", wipe);
  g_assert_cmpint (ack_again.status, ==, 1);
  g_assert_true (g_str_has_prefix (ack_again.err, "mamctl: NotFound: "));

  run_mamctl (f, &readd, "re-add", "chat", "ipad-bob");
  g_assert_cmpint (readd.status, ==, 0);
  g_assert_true (g_str_has_prefix (readd.out, "seq: "));
  again = login (f, "chat", BOB, "ipad-bob", "enrollment-required");
}

static void
test_errors_admin (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) no_server = { 0 };
  g_auto(MamdTestRun) no_session = { 0 };
  g_autofree char *s = NULL;

  run_mamctl (f, &no_server, "login", "nosuch", "test", "--platform=ios", "--device-id=d",
              "--credential=object-id=" ALICE, "--credential=tenant-id=" TENANT);
  g_assert_cmpint (no_server.status, ==, 1);
  g_assert_true (g_str_has_prefix (no_server.err, "mamctl: NotFound: "));

  run_mamctl (f, &no_session, "report-enrollment", "0123456789abcdef0123456789abcdef",
              "success");
  g_assert_cmpint (no_session.status, ==, 1);
  g_assert_true (g_str_has_prefix (no_session.err, "mamctl: NotFound: "));

  /* a server without MAM: the session is active at once */
  s = login (f, "open", ALICE, "iphone-alice", "active");
  assert_access (f, s, 0, TRUE);

}

#define CAROL "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

/* `mamctl sync` provisions the users a plugin's directory lists (here the
 * only way: no periodic sync, no auto-creation); `mamctl reload` reports
 * what mamd refuses in a changed configuration. */
static void
test_reload_sync (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *session = NULL;
  g_auto(MamdTestRun) unknown = { 0 };
  g_auto(MamdTestRun) sync = { 0 };
  g_auto(MamdTestRun) sync_json = { 0 };
  g_auto(MamdTestRun) sync_nosuch = { 0 };
  g_auto(MamdTestRun) reload = { 0 };
  g_auto(MamdTestRun) reload_json = { 0 };
  g_auto(MamdTestRun) refused = { 0 };

  mamd_test_daemon_write_daemon_conf (f->daemon, "DirectorySyncInterval=0\n");
  mamd_test_daemon_write_server (f->daemon, "chat",
                                 "[Server]\nEnable=true\nTenantId=" TENANT "\n"
                                 "ClientId=" CLIENT "\nAuthService=test\n"
                                 "AutoCreateUsers=false\n\n[test]\nUsers=" CAROL ":carol\n");
  mamd_test_daemon_start (f->daemon, &error);
  g_assert_no_error (error);

  run_mamctl (f, &unknown, "login", "chat", "test", "--platform=ios", "--device-id=iphone-carol",
              "--credential=object-id=" CAROL, "--credential=tenant-id=" TENANT);
  g_assert_cmpint (unknown.status, ==, 1);
  g_assert_true (g_str_has_prefix (unknown.err, "mamctl: UserMismatch: "));

  run_mamctl (f, &sync, "sync", "chat");
  g_assert_cmpint (sync.status, ==, 0);
  g_assert_cmpstr (sync.out, ==, "directory sync done\n");
  session = login (f, "chat", CAROL, "iphone-carol", "enrollment-required");
  run_mamctl (f, &sync_json, "sync", "--json");
  g_assert_cmpint (sync_json.status, ==, 0);
  g_assert_cmpstr (sync_json.out, ==, "{}\n");
  run_mamctl (f, &sync_nosuch, "sync", "nosuch");
  g_assert_cmpint (sync_nosuch.status, ==, 1);
  g_assert_true (g_str_has_prefix (sync_nosuch.err, "mamctl: NotFound: "));

  run_mamctl (f, &reload, "reload");
  g_assert_cmpint (reload.status, ==, 0);
  g_assert_cmpstr (reload.out, ==, "configuration and licence reloaded\n");
  /* mamd keeps the configuration it has and says what is wrong */
  mamd_test_daemon_write_server (f->daemon, "broken", "[Server]\nEnable=maybe\n");
  run_mamctl (f, &refused, "reload");
  g_assert_cmpint (refused.status, ==, 1);
  g_assert_true (g_str_has_prefix (refused.err, "mamctl: InvalidConfig: "));
  g_assert_nonnull (strstr (refused.err, "broken.conf"));
  g_assert_nonnull (strstr (refused.err, "Enable"));
  assert_access (f, session, 4, FALSE);
  mamd_test_daemon_remove_server (f->daemon, "broken");
  run_mamctl (f, &reload_json, "reload", "--json");
  g_assert_cmpint (reload_json.status, ==, 0);
  g_assert_cmpstr (reload_json.out, ==, "{}\n");
}

/* A server id nobody configured (a typo) is said to be unknown rather than
 * shown as an empty list; a configured server without sessions is empty. */
static void
test_sessions_unknown_server (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) typo = { 0 };
  g_auto(MamdTestRun) empty = { 0 };

  run_mamctl (f, &typo, "sessions", "caht");
  g_assert_cmpint (typo.status, ==, 1);
  g_assert_cmpstr (typo.out, ==, "");
  g_assert_true (g_str_has_prefix (typo.err, "mamctl: NotFound: no server 'caht' is "
                                             "configured"));
  run_mamctl (f, &empty, "sessions", "--json", "open");
  g_assert_cmpint (empty.status, ==, 0);
  g_assert_cmpstr (empty.out, ==, "[]\n");
}

static void
store_result (GObject *source, GAsyncResult *res, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (res);
}

static gboolean
have_result (gpointer user_data)
{
  return *(GAsyncResult **) user_data != NULL;
}

/* A directory that does not answer: while its sync runs, `mamctl sync`
 * says Busy; after DirectorySyncTimeout mamd gives up on it
 * (PluginUnavailable), and the next sync starts afresh. */
static void
test_sync_hung (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *session = NULL;
  g_autofree char *remote_error = NULL;
  g_auto(MamdTestRun) busy = { 0 };
  g_auto(MamdTestRun) reload = { 0 };
  g_auto(MamdTestRun) sync = { 0 };

  mamd_test_daemon_write_daemon_conf (f->daemon, "DirectorySyncInterval=0\n"
                                                 "[Limits]\nDirectorySyncTimeout=3\n");
  mamd_test_daemon_write_server (f->daemon, "chat",
                                 "[Server]\nEnable=true\nTenantId=" TENANT "\n"
                                 "ClientId=" CLIENT "\nAuthService=test\n"
                                 "AutoCreateUsers=false\n\n[test]\nUsers=" CAROL ":carol\n"
                                 "SyncDelayMs=600000\n");
  mamd_test_daemon_start (f->daemon, &error);
  g_assert_no_error (error);

  g_dbus_connection_call (mamd_test_daemon_get_connection (f->daemon), "org.mamd.Mamd1",
                          "/org/mamd/Mamd1", "org.mamd.Mamd1.Manager", "SyncDirectory",
                          g_variant_new ("(s)", "chat"), NULL, G_DBUS_CALL_FLAGS_NONE, -1,
                          NULL, store_result, &res);
  g_assert_true (mamd_test_daemon_wait_log (f->daemon, "SyncDirectory from ", 30000));
  run_mamctl (f, &busy, "sync", "chat");
  g_assert_cmpint (busy.status, ==, 1);
  g_assert_true (g_str_has_prefix (busy.err, "mamctl: Busy: a directory sync of server chat "
                                             "through test, started "));
  g_assert_nonnull (strstr (busy.err, "still runs"));

  g_assert_true (mamd_test_daemon_iterate_until (f->daemon, have_result, &res, 30000));
  reply = g_dbus_connection_call_finish (mamd_test_daemon_get_connection (f->daemon), res,
                                         &error);
  g_assert_null (reply);
  remote_error = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote_error, ==, "org.mamd.Mamd1.Error.PluginUnavailable");
  g_assert_nonnull (strstr (error->message, "did not list the users of server chat within 3 s "
                                            "(DirectorySyncTimeout in mamd.conf)"));

  /* a directory that answers again */
  mamd_test_daemon_write_server (f->daemon, "chat",
                                 "[Server]\nEnable=true\nTenantId=" TENANT "\n"
                                 "ClientId=" CLIENT "\nAuthService=test\n"
                                 "AutoCreateUsers=false\n\n[test]\nUsers=" CAROL ":carol\n");
  run_mamctl (f, &reload, "reload");
  g_assert_cmpint (reload.status, ==, 0);
  run_mamctl (f, &sync, "sync", "chat");
  g_assert_cmpint (sync.status, ==, 0);
  session = login (f, "chat", CAROL, "iphone-carol", "enrollment-required");
}

/* What a D-Bus client may put in its device id and user name: an SGR and an
 * OSC escape, line breaks that would fake a row, a C1 CSI, a bidi override
 * and a backslash. */
#define EVIL_DEVICE "dev\x1b[31mred\nfake-row\\x"
#define EVIL_USER "eve\x1b]0;pwned\x07\r\nroot\xc2\x9b" "2J\xe2\x80\xae" "moc.evil"
/* ... and how mamctl shows them */
#define SHOWN_DEVICE "dev\\e[31mred\\nfake-row\\\\x"
#define SHOWN_USER "eve\\e]0;pwned\\a\\r\\nroot\\u{9b}2J\\u{202e}moc.evil"

/* @text holds no character a terminal would act on except the line ends,
 * and exactly @n_lines of them */
static void
assert_printable (const char *text, guint n_lines)
{
  const char *p;
  guint lines = 0;

  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c == '\n')
        lines++;
      else
        g_assert_false (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x202e);
    }
  if (n_lines > 0)
    g_assert_cmpuint (lines, ==, n_lines);
}

/* the row of @array whose "device-id" is EVIL_DEVICE, exactly as sent */
static JsonObject *
find_evil_row (JsonArray *array)
{
  JsonObject *row = find_by (array, "device-id", EVIL_DEVICE);

  g_assert_nonnull (row);
  return row;
}

/* Daemon strings reach the terminal with their control characters made
 * visible; --json carries them intact, as valid JSON. */
static void
test_escape (Fixture *f, gconstpointer data)
{
  g_autofree char *session = NULL;
  g_autofree char *field = NULL;
  g_auto(MamdTestRun) signin = { 0 };
  g_auto(MamdTestRun) sessions = { 0 };
  g_auto(MamdTestRun) sessions_json = { 0 };
  g_auto(MamdTestRun) one = { 0 };
  g_auto(MamdTestRun) one_json = { 0 };
  g_auto(MamdTestRun) failed = { 0 };
  g_auto(MamdTestRun) wipes = { 0 };
  g_auto(MamdTestRun) wipes_json = { 0 };
  g_auto(MamdTestRun) refused = { 0 };
  g_autoptr(JsonNode) list = NULL;
  g_autoptr(JsonNode) props = NULL;
  g_autoptr(JsonNode) wipe_list = NULL;
  g_auto(GStrv) lines = NULL;
  JsonObject *row;
  guint i;

  run_mamctl (f, &signin, "login", "chat", "test", "--platform=ios", "--device-id=" EVIL_DEVICE,
              "--credential=object-id=" BOB, "--credential=tenant-id=" TENANT,
              "--credential=user-name=" EVIL_USER);
  g_assert_cmpint (signin.status, ==, 0);
  assert_printable (signin.out, 0);
  field = human_field (signin.out, "user-name");
  g_assert_cmpstr (field, ==, SHOWN_USER);
  session = human_field (signin.out, "id");
  g_assert_cmpuint (strlen (session), ==, 32);

  /* the header and one row, the values escaped in place */
  run_mamctl (f, &sessions, "sessions");
  g_assert_cmpint (sessions.status, ==, 0);
  assert_printable (sessions.out, 2);
  g_assert_nonnull (strstr (sessions.out, " " SHOWN_USER " "));
  g_assert_nonnull (strstr (sessions.out, " " SHOWN_DEVICE " "));
  lines = g_strsplit (sessions.out, "\n", -1);
  g_assert_true (g_str_has_prefix (lines[1], session));
  run_mamctl (f, &sessions_json, "sessions", "--json");
  g_assert_cmpint (sessions_json.status, ==, 0);
  g_assert_null (strchr (sessions_json.out, '\x1b'));
  list = parse_json (sessions_json.out);
  row = find_evil_row (json_node_get_array (list));
  g_assert_cmpstr (json_object_get_string_member (row, "user-name"), ==, EVIL_USER);
  g_assert_cmpstr (json_object_get_string_member (row, "id"), ==, session);

  /* one line per property, each "Key: value" */
  run_mamctl (f, &one, "session", session);
  g_assert_cmpint (one.status, ==, 0);
  assert_printable (one.out, 0);
  g_strfreev (lines);
  lines = g_strsplit (one.out, "\n", -1);
  for (i = 0; lines[i] != NULL && *lines[i] != '\0'; i++)
    g_assert_true (g_ascii_isupper (lines[i][0]) && strchr (lines[i], ':') != NULL);
  g_assert_null (lines[i + 1]);
  g_free (field);
  field = human_field (one.out, "DeviceId");
  g_assert_cmpstr (field, ==, SHOWN_DEVICE);
  g_free (field);
  field = human_field (one.out, "UserName");
  g_assert_cmpstr (field, ==, SHOWN_USER);
  run_mamctl (f, &one_json, "session", session, "--json");
  g_assert_cmpint (one_json.status, ==, 0);
  props = parse_json (one_json.out);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (props), "DeviceId"), ==,
                   EVIL_DEVICE);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (props), "UserName"), ==,
                   EVIL_USER);

  /* a failed enrollment leaves a wipe of the device */
  run_mamctl (f, &failed, "report-enrollment", session, "failed", "--status-code=201");
  g_assert_cmpint (failed.status, ==, 0);
  run_mamctl (f, &wipes, "wipes");
  g_assert_cmpint (wipes.status, ==, 0);
  assert_printable (wipes.out, 2);
  g_assert_nonnull (strstr (wipes.out, "  chat  "));
  g_assert_nonnull (strstr (wipes.out, " " SHOWN_DEVICE " "));
  run_mamctl (f, &wipes_json, "wipes", "--json");
  g_assert_cmpint (wipes_json.status, ==, 0);
  g_assert_null (strchr (wipes_json.out, '\x1b'));
  wipe_list = parse_json (wipes_json.out);
  row = find_evil_row (json_node_get_array (wipe_list));
  g_assert_cmpstr (json_object_get_string_member (row, "object-id"), ==, BOB);

  /* mamd's error messages are escaped too, whatever they quote */
  run_mamctl (f, &refused, "login", "chat", "test", "--platform=ios", "--device-id=" EVIL_DEVICE,
              "--credential=object-id=" BOB, "--credential=tenant-id=" TENANT);
  g_assert_cmpint (refused.status, ==, 1);
  g_assert_true (g_str_has_prefix (refused.err, "mamctl: ServerRemoved: "));
  assert_printable (refused.err, 1);
}

/* In the C locale (LANG unset: cron, containers) option values are UTF-8
 * bytes passed on as they are, like the positional arguments; GOption used
 * to convert them from ASCII and refused any other character as a usage
 * error. */
static void
test_c_locale (Fixture *f, gconstpointer data)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_auto(MamdTestRun) run = { 0 };
  g_auto(MamdTestRun) bad = { 0 };
  g_autofree char *session = NULL;
  g_autofree char *field = NULL;
  g_auto(MamdTestRun) props = { 0 };

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "MAMD_BUS_ADDRESS",
                                mamd_test_daemon_get_bus_address (f->daemon), TRUE);
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C", TRUE);
  mamd_test_run (launcher, "tools/mamctl",
                 (const char *const[]) { "login", "chat", "test", "--platform=ios",
                                         "--device-id=iPad de Zo\xc3\xa9",
                                         "--credential=object-id=" ALICE,
                                         "--credential=tenant-id=" TENANT,
                                         "--credential=user-name=Zo\xc3\xa9", NULL },
                 &run);
  g_assert_cmpint (run.status, ==, 0);
  field = human_field (run.out, "user-name");
  g_assert_cmpstr (field, ==, "Zo\xc3\xa9");
  session = human_field (run.out, "id");
  run_mamctl (f, &props, "session", session, "--json");
  g_assert_cmpint (props.status, ==, 0);
  g_assert_nonnull (strstr (props.out, "iPad de Zo\xc3\xa9"));

  /* bytes that are not UTF-8 are still refused */
  run_mamctl (f, &bad, "login", "chat", "test", "--platform=ios", "--device-id=d\xff",
              "--credential=object-id=" ALICE);
  g_assert_cmpint (bad.status, ==, 2);
}

/* A call mamd does not answer in time is not "cannot reach mamd": exit 5,
 * and the message says the outcome is unknown and how to find out. */
static void
test_no_answer (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) slow = { 0 };
  g_auto(MamdTestRun) status = { 0 };
  g_auto(MamdTestRun) fast = { 0 };

  run_mamctl (f, &slow, "--timeout=1", "login", "chat", "test", "--platform=ios",
              "--device-id=slow-phone", "--credential=object-id=" ALICE,
              "--credential=tenant-id=" TENANT, "--credential=delay-ms:u=60000");
  g_assert_cmpint (slow.status, ==, 5);
  g_assert_true (g_str_has_prefix (slow.err, "mamctl: no answer from mamd to SignIn"));
  g_assert_null (strstr (slow.err, "cannot reach"));
  g_assert_nonnull (strstr (slow.err, "may or may not have taken effect"));
  g_assert_nonnull (strstr (slow.err, "mamctl status"));
  g_assert_nonnull (strstr (slow.err, "mamctl sessions"));
  g_assert_nonnull (strstr (slow.err, "mamd's log"));

  /* mamd is up all along */
  run_mamctl (f, &status, "status");
  g_assert_cmpint (status.status, ==, 0);
  /* and --timeout after the command works as well, for a call in time */
  run_mamctl (f, &fast, "login", "chat", "test", "--timeout=60", "--platform=ios",
              "--device-id=quick-phone", "--credential=object-id=" ALICE,
              "--credential=tenant-id=" TENANT, "--credential=delay-ms:u=10");
  g_assert_cmpint (fast.status, ==, 0);
}

/* ---- monitor ---- */

typedef struct {
  GMainLoop *loop;
  GString *out;
  GString *err;
  gboolean ready;
  const char *wanted; /* text the output must come to contain */
  gboolean timed_out;
  guint open_streams;
} MonitorWatch;

static void read_more (GInputStream *stream, MonitorWatch *w, GString *into);

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  MonitorWatch *w = user_data;
  GInputStream *stream = G_INPUT_STREAM (source);
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (stream, result, NULL);
  GString *into = g_object_get_data (source, "into");

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      w->open_streams--;
      return;
    }
  g_string_append_len (into, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  if (strstr (w->err->str, "monitoring") != NULL)
    w->ready = TRUE;
  if (w->wanted != NULL && strstr (w->out->str, w->wanted) != NULL)
    g_main_loop_quit (w->loop);
  if (w->wanted == NULL && w->ready)
    g_main_loop_quit (w->loop);
  read_more (stream, w, into);
}

static void
read_more (GInputStream *stream, MonitorWatch *w, GString *into)
{
  g_object_set_data (G_OBJECT (stream), "into", into);
  g_input_stream_read_bytes_async (stream, 4096, G_PRIORITY_DEFAULT, NULL, on_read, w);
}

static gboolean
on_timeout (gpointer user_data)
{
  MonitorWatch *w = user_data;

  /* a safety net so a broken monitor fails the test instead of hanging
   * it; no assertion depends on how long anything took */
  w->timed_out = TRUE;
  g_main_loop_quit (w->loop);
  return G_SOURCE_REMOVE;
}

static void
wait_for (MonitorWatch *w, const char *wanted)
{
  guint timeout;

  w->wanted = wanted;
  if ((wanted == NULL && w->ready) || (wanted != NULL && strstr (w->out->str, wanted) != NULL))
    return;
  timeout = g_timeout_add_seconds (60, on_timeout, w);
  g_main_loop_run (w->loop);
  if (!w->timed_out)
    g_source_remove (timeout);
  g_assert_false (w->timed_out);
}

static void
run_monitor (Fixture *f, gboolean json)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  MonitorWatch w = { loop, g_string_new (NULL), g_string_new (NULL), FALSE, NULL, FALSE, 2 };
  const char *argv[] = { f->mamctl, "monitor", json ? "--json" : NULL, NULL };
  g_autofree char *s = NULL;
  g_autofree char *wanted = NULL;
  g_auto(GStrv) lines = NULL;
  guint i;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "MAMD_BUS_ADDRESS",
                                mamd_test_daemon_get_bus_address (f->daemon), TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  read_more (g_subprocess_get_stdout_pipe (proc), &w, w.out);
  read_more (g_subprocess_get_stderr_pipe (proc), &w, w.err);
  wait_for (&w, NULL);

  /* the monitor is subscribed: everything from here on must show up */
  s = login (f, "chat", ALICE, "iphone-alice", "enrollment-required");
  if (json)
    wanted = g_strdup_printf ("\"session\":\"%s\"", s);
  else
    wanted = g_strdup_printf (" EnrollmentRequired session=%s server=chat", s);
  wait_for (&w, wanted);

  g_subprocess_send_signal (proc, SIGINT);
  g_subprocess_wait_check (proc, NULL, &error);
  g_assert_no_error (error);
  /* the reads still pending point at this stack frame: let them end */
  while (w.open_streams > 0)
    g_main_context_iteration (NULL, TRUE);

  lines = g_strsplit (w.out->str, "\n", -1);
  for (i = 0; lines[i] != NULL && *lines[i] != '\0'; i++)
    {
      if (json)
        {
          g_autoptr(JsonNode) node = parse_json (lines[i]);
          JsonObject *o = json_node_get_object (node);
          g_assert_true (json_object_has_member (o, "signal"));
          g_assert_cmpint (json_object_get_int_member (o, "seq"), >, 0);
          if (g_strcmp0 (json_object_get_string_member (o, "signal"), "EnrollmentRequired") == 0)
            {
              g_assert_cmpstr (json_object_get_string_member (o, "session"), ==, s);
              g_assert_cmpstr (json_object_get_string_member (o, "server"), ==, "chat");
              g_assert_true (json_object_has_member (o, "reason"));
            }
        }
      else
        g_assert_true (g_str_has_prefix (lines[i], "seq="));
    }
  g_assert_cmpuint (i, >=, 1);
  g_string_free (w.out, TRUE);
  g_string_free (w.err, TRUE);
}

static void
test_monitor (Fixture *f, gconstpointer data)
{
  run_monitor (f, FALSE);
}

static void
test_monitor_json (Fixture *f, gconstpointer data)
{
  run_monitor (f, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("usage", test_usage, TRUE);
  ADD ("unreachable", test_unreachable, TRUE);
  ADD ("status", test_status, FALSE);
  ADD ("servers-plugins", test_servers_plugins, FALSE);
  ADD ("session-flow", test_session_flow, FALSE);
  ADD ("wipe-flow", test_wipe_flow, FALSE);
  ADD ("errors-admin", test_errors_admin, FALSE);
  ADD ("reload-sync", test_reload_sync, TRUE);
  ADD ("sync-hung", test_sync_hung, TRUE);
  ADD ("sessions-unknown-server", test_sessions_unknown_server, FALSE);
  ADD ("escape", test_escape, FALSE);
  ADD ("no-answer", test_no_answer, FALSE);
  ADD ("c-locale", test_c_locale, FALSE);
  ADD ("monitor", test_monitor, FALSE);
  ADD ("monitor-json", test_monitor_json, FALSE);

  return g_test_run ();
}
