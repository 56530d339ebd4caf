/*
 * `mamctl check` against configuration directories, with and without
 * plugins (the good test plugin, office365, broken modules), and
 * `mamctl config-keys`: no daemon needed. The fixture is in
 * mamd-test-mamctl.c.
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "mamd-test-mamctl.h"

static void
test_config_keys (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) human = { 0 };
  g_auto(MamdTestRun) json = { 0 };
  g_auto(MamdTestRun) md = { 0 };
  g_autoptr(JsonNode) node = NULL;
  JsonArray *keys;
  gboolean saw_enable = FALSE;
  guint i;

  run_mamctl_v (NULL, &human, (const char *const[]) { "config-keys", NULL });
  g_assert_cmpint (human.status, ==, 0);
  g_assert_true (g_str_has_prefix (human.out, "FILE "));
  run_mamctl_v (NULL, &md, (const char *const[]) { "config-keys", "--markdown", NULL });
  g_assert_true (g_str_has_prefix (md.out, "| File |"));
  run_mamctl_v (NULL, &json, (const char *const[]) { "config-keys", "--json", NULL });
  g_assert_cmpint (json.status, ==, 0);
  node = parse_json (json.out);
  keys = json_node_get_array (node);
  g_assert_cmpuint (json_array_get_length (keys), >, 5);
  for (i = 0; i < json_array_get_length (keys); i++)
    {
      JsonObject *k = json_array_get_object_element (keys, i);
      g_assert_true (json_object_has_member (k, "file"));
      g_assert_true (json_object_has_member (k, "description"));
      if (g_strcmp0 (json_object_get_string_member (k, "key"), "Enable") == 0
          && g_strcmp0 (json_object_get_string_member (k, "group"), "Server") == 0)
        saw_enable = TRUE;
    }
  g_assert_true (saw_enable);
}

/* --json output is valid JSON also for paths that are not UTF-8, which the
 * problems quote */
static void
test_check_json_paths (Fixture *f, gconstpointer data)
{
  g_autofree char *dir = g_dir_make_tmp ("mamctl-check-XXXXXX", NULL);
  g_autofree char *config = g_build_filename (dir, "conf\xff", NULL);
  g_autofree char *plugins = g_build_filename (dir, "plugins\xfe", NULL);
  g_autofree char *plugin_opt = g_strconcat ("--plugin-dir=", plugins, NULL);
  g_auto(MamdTestRun) run = { 0 };
  g_autoptr(JsonNode) node = NULL;
  JsonObject *obj;

  g_assert_nonnull (dir);
  run_mamctl_v (NULL, &run, (const char *const[]) { "check", "--json", plugin_opt, config,
                                                    NULL });
  g_assert_cmpint (run.status, ==, 1);
  g_assert_true (g_utf8_validate (run.out, -1, NULL));
  node = parse_json (run.out);
  obj = json_node_get_object (node);
  g_assert_false (json_object_get_boolean_member (obj, "valid"));
  g_assert_true (g_str_has_suffix (json_object_get_string_member (obj, "config-dir"),
                                   "conf\xef\xbf\xbd"));
  g_assert_true (g_str_has_suffix (json_object_get_string_member (obj, "plugin-dir"),
                                   "plugins\xef\xbf\xbd"));
  /* the missing directory, and the plugin directory that is not there */
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj, "problems")), ==,
                    1);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj, "warnings")), ==,
                    1);
  g_rmdir (dir);
}

/* $MAMD_BUILD_ROOT/<subdir>: a plugin directory of this build */
static char *
build_plugin_dir (const char *subdir)
{
  g_autofree char *dir = g_build_filename (g_getenv ("MAMD_BUILD_ROOT"), subdir, NULL);

  /* meson test builds every target first; a missing module is a broken
   * build, not a reason to pass */
  g_assert_true (g_file_test (dir, G_FILE_TEST_IS_DIR));
  return g_steal_pointer (&dir);
}

/* mamctl check validates the shipped examples and names bad keys */
static void
test_check (Fixture *f, gconstpointer data)
{
  g_autofree char *examples = g_build_filename (g_getenv ("MAMD_SOURCE_ROOT"), "data",
                                                "examples", NULL);
  g_autofree char *bad = g_build_filename (mamd_test_daemon_get_config_dir (f->daemon),
                                           "servers.d", "broken.conf", NULL);
  g_autofree char *oauth_dir = build_plugin_dir ("plugins/oauth");
  g_autofree char *plugin_opt = g_strconcat ("--plugin-dir=", oauth_dir, NULL);
  g_auto(MamdTestRun) good = { 0 };
  g_auto(MamdTestRun) good_json = { 0 };
  g_auto(MamdTestRun) broken = { 0 };
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *obj;

  /* the examples' [office365] groups are checked by the office365 plugin */
  run_mamctl_v (NULL, &good, (const char *const[]) { "check", plugin_opt, examples, NULL });
  g_assert_cmpint (good.status, ==, 0);
  g_assert_nonnull (strstr (good.out, "valid"));
  run_mamctl_v (NULL, &good_json,
                (const char *const[]) { "check", "--json", plugin_opt, examples, NULL });
  g_assert_cmpint (good_json.status, ==, 0);
  node = parse_json (good_json.out);
  obj = json_node_get_object (node);
  g_assert_true (json_object_get_boolean_member (obj, "valid"));
  g_assert_cmpstr (json_object_get_string_member (obj, "plugin-dir"), ==, oauth_dir);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj, "servers")), ==, 2);
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (obj, "problems")), ==,
                    0);

  g_file_set_contents (bad, "[Server]\nEnable=yes please\nNoSuchKey=1\n", -1, &error);
  g_assert_no_error (error);
  run_mamctl_v (NULL, &broken, (const char *const[]) {
                  "check", mamd_test_daemon_get_config_dir (f->daemon), NULL });
  g_assert_cmpint (broken.status, ==, 1);
  g_assert_nonnull (strstr (broken.out, "NoSuchKey"));
  g_assert_nonnull (strstr (broken.out, "Enable"));
}

/* Runs `mamctl check [--json] --plugin-dir=$MAMD_BUILD_ROOT/<plugins>` on a
 * configuration directory holding only servers.d/chat.conf = @server. */
static void
check_server (const char *plugins, const char *server, gboolean json, MamdTestRun *run)
{
  g_autofree char *dir = g_dir_make_tmp ("mamctl-check-XXXXXX", NULL);
  g_autofree char *servers_d = g_build_filename (dir, "servers.d", NULL);
  g_autofree char *file = g_build_filename (servers_d, "chat.conf", NULL);
  g_autofree char *plugin_dir = build_plugin_dir (plugins);
  g_autofree char *plugin_opt = g_strconcat ("--plugin-dir=", plugin_dir, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (dir);
  g_assert_cmpint (g_mkdir (servers_d, 0700), ==, 0);
  g_file_set_contents (file, server, -1, &error);
  g_assert_no_error (error);
  run_mamctl_v (NULL, run, (const char *const[]) { "check", json ? "--json" : plugin_opt,
                                                   json ? plugin_opt : dir, json ? dir : NULL,
                                                   NULL });
  g_unlink (file);
  g_rmdir (servers_d);
  g_rmdir (dir);
}

/* the one problem line of a failed check, which must name @what (file,
 * group, key) in order */
static void
assert_check_fails (const char *plugins, const char *server, const char *const *what)
{
  g_auto(MamdTestRun) run = { 0 };
  g_auto(MamdTestRun) json = { 0 };
  g_autoptr(JsonNode) node = NULL;
  JsonObject *obj;
  JsonArray *problems;
  const char *at;
  guint i;

  check_server (plugins, server, FALSE, &run);
  g_assert_cmpint (run.status, ==, 1);
  g_assert_true (g_str_has_prefix (run.err, "mamctl: InvalidConfig: "));
  at = run.out;
  for (i = 0; what[i] != NULL; i++)
    {
      at = strstr (at, what[i]);
      g_assert_nonnull (at);
    }

  check_server (plugins, server, TRUE, &json);
  g_assert_cmpint (json.status, ==, 1);
  node = parse_json (json.out);
  obj = json_node_get_object (node);
  g_assert_false (json_object_get_boolean_member (obj, "valid"));
  problems = json_object_get_array_member (obj, "problems");
  g_assert_cmpuint (json_array_get_length (problems), ==, 1);
  at = json_array_get_string_element (problems, 0);
  for (i = 0; what[i] != NULL; i++)
    {
      at = strstr (at, what[i]);
      g_assert_nonnull (at);
    }
}

#define SERVER_HEAD \
  "[Server]\nEnable=true\nTenantId=" TENANT "\nClientId=" CLIENT "\n"

/* plugin groups are checked by their plugins, exactly as mamd loads them */
static void
test_check_plugin_groups (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) good = { 0 };
  g_auto(MamdTestRun) good_json = { 0 };
  g_autoptr(JsonNode) node = NULL;

  check_server ("tests/plugins", SERVER_HEAD "AuthService=test\n[test]\nDelayMs=5\nGate=open\n",
                FALSE, &good);
  g_assert_cmpint (good.status, ==, 0);
  g_assert_nonnull (strstr (good.out, "valid, 1 server(s)"));
  check_server ("tests/plugins", SERVER_HEAD "AuthService=test\n[test]\nDelayMs=5\n", TRUE,
                &good_json);
  g_assert_cmpint (good_json.status, ==, 0);
  node = parse_json (good_json.out);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (node), "valid"));

  /* an unknown key, a value of the wrong type, a misspelt group */
  assert_check_fails ("tests/plugins", SERVER_HEAD "AuthService=test\n[test]\nDelyMs=5\n",
                      (const char *const[]) { "chat.conf: ", "[test] ", "DelyMs: ",
                                              "unknown key", NULL });
  assert_check_fails ("tests/plugins", SERVER_HEAD "AuthService=test\n[test]\nDelayMs=abc\n",
                      (const char *const[]) { "chat.conf: ", "[test] ", "DelayMs: ", NULL });
  assert_check_fails ("tests/plugins", SERVER_HEAD "AuthService=test\n[tset]\nDelayMs=5\n",
                      (const char *const[]) { "chat.conf: ", "[tset]: ",
                                              "no plugin provides method 'tset'", NULL });
  /* the AuthService without a group of its own needs its plugin too */
  assert_check_fails ("tests/plugins", SERVER_HEAD "AuthService=nosuch\n",
                      (const char *const[]) { "chat.conf: ", "[Server] AuthService: ",
                                              "'nosuch'", NULL });
}

/* the audit's cases, with the office365 plugin */
static void
test_check_office365 (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) good = { 0 };

  check_server ("plugins/oauth",
                SERVER_HEAD "AuthService=office365\n[office365]\nClockSkew=60\nHttpTimeout=5\n",
                FALSE, &good);
  g_assert_cmpint (good.status, ==, 0);

  assert_check_fails ("plugins/oauth", SERVER_HEAD "AuthService=office365\n[office365]\n"
                                       "ClockSkwe=5\n",
                      (const char *const[]) { "chat.conf: ", "[office365] ", "ClockSkwe: ",
                                              "unknown key (known keys: Authority, ",
                                              " ClockSkew, ", NULL });
  assert_check_fails ("plugins/oauth", SERVER_HEAD "AuthService=office365\n[office365]\n"
                                       "HttpTimeout=abc\n",
                      (const char *const[]) { "chat.conf: ", "[office365] ", "HttpTimeout: ",
                                              NULL });
  /* a key with a locale suffix is not dropped, whatever $LANGUAGE says */
  assert_check_fails ("plugins/oauth", SERVER_HEAD "AuthService=office365\n[office365]\n"
                                       "ClientSecretFile[xx]=/nonexistent\n",
                      (const char *const[]) { "chat.conf: ", "[office365] ",
                                              "ClientSecretFile[xx]: ", "unknown key", NULL });
  assert_check_fails ("plugins/oauth", SERVER_HEAD "AuthService=office365\n[ofice365]\n"
                                       "ClockSkew=5\n",
                      (const char *const[]) { "chat.conf: ", "[ofice365]: ",
                                              "no plugin provides method 'ofice365'", NULL });
}

/* a plugin that fails to load is reported, but is no config error while no
 * server uses it */
static void
test_check_broken_plugins (Fixture *f, gconstpointer data)
{
  g_auto(MamdTestRun) human = { 0 };
  g_auto(MamdTestRun) json = { 0 };
  g_autoptr(JsonNode) node = NULL;
  JsonArray *warnings;
  gboolean saw_abi = FALSE;
  guint i;

  check_server ("tests/plugins/bad", "[Server]\nEnable=false\n", FALSE, &human);
  g_assert_cmpint (human.status, ==, 0);
  g_assert_nonnull (strstr (human.out, "warning: skipping plugin "));
  check_server ("tests/plugins/bad", "[Server]\nEnable=false\n", TRUE, &json);
  g_assert_cmpint (json.status, ==, 0);
  node = parse_json (json.out);
  warnings = json_object_get_array_member (json_node_get_object (node), "warnings");
  for (i = 0; i < json_array_get_length (warnings); i++)
    if (strstr (json_array_get_string_element (warnings, i), "libbad-abi.so: built for plugin ABI")
        != NULL)
      saw_abi = TRUE;
  g_assert_true (saw_abi);

  /* mamd starts with a group such a module may provide (skipped, warned),
   * but the check fails: the server cannot use it */
  assert_check_fails ("tests/plugins/bad", "[Server]\nEnable=false\n[saml]\nIdpMetadataFile=x\n",
                      (const char *const[]) { "chat.conf: ", "[saml]: skipped, no plugin provides "
                                              "method 'saml'; modules that could not say which "
                                              "method they provide: ", "libbad-abi.so (", NULL });
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("config-keys", test_config_keys, TRUE);
  ADD ("check", test_check, TRUE);
  ADD ("check-json-paths", test_check_json_paths, TRUE);
  ADD ("check-plugin-groups", test_check_plugin_groups, TRUE);
  ADD ("check-office365", test_check_office365, TRUE);
  ADD ("check-broken-plugins", test_check_broken_plugins, TRUE);

  return g_test_run ();
}
