/* Configuration loading and validation, on files written at test time. */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mamd-config.h"
#include "mamd-plugin.h"
#include "mamd-test-util.h"

#define TENANT "0f8fad5b-d9cb-469f-a165-70867728950e"
#define CLIENT "7c9e6679-7425-40de-944b-e07fc1f90ae7"

typedef struct {
  char *dir;
} Fixture;


static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("mamd-config-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  mamd_test_rm_rf (fx->dir);
  g_free (fx->dir);
}

static char *
write_file (Fixture *fx, const char *relpath, const char *contents)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (fx->dir, relpath, NULL);
  g_autofree char *parent = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0700), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return path;
}

static MamdConfig *
load_ok (Fixture *fx)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  MamdConfig *config = mamd_config_load (fx->dir, problems, &error);

  g_assert_no_error (error);
  g_assert_nonnull (config);
  g_assert_cmpuint (problems->len, ==, 0);
  return config;
}

/* Loads, expects failure, and returns the problems. */
static GPtrArray *
load_bad (Fixture *fx, char **message)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(MamdConfig) config = mamd_config_load (fx->dir, problems, &error);

  g_assert_null (config);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_cmpuint (problems->len, >, 0);
  if (message != NULL)
    *message = g_strdup (error->message);
  return g_steal_pointer (&problems);
}

static gboolean
has_problem (GPtrArray *problems, const char *expected)
{
  for (guint i = 0; i < problems->len; i++)
    if (strstr (g_ptr_array_index (problems, i), expected) != NULL)
      return TRUE;
  return FALSE;
}

static void
assert_problem (GPtrArray *problems, const char *expected)
{
  if (!has_problem (problems, expected))
    {
      for (guint i = 0; i < problems->len; i++)
        g_printerr ("problem: %s\n", (const char *) g_ptr_array_index (problems, i));
      g_error ("no problem mentions '%s'", expected);
    }
}

/* A single server file with @contents gives exactly one problem
 * "<path>: <expected>". */
static void
assert_single_server_problem (Fixture *fx, const char *contents, const char *expected)
{
  g_autofree char *path = write_file (fx, "servers.d/chat.conf", contents);
  g_autofree char *message = NULL;
  g_autofree char *full = g_strdup_printf ("%s: %s", path, expected);
  g_autoptr(GPtrArray) problems = load_bad (fx, &message);

  assert_problem (problems, full);
  if (problems->len != 1)
    assert_problem (problems, "only one problem expected");
  g_assert_true (g_str_has_prefix (message, full));
}

static void
test_missing_dir (Fixture *fx, gconstpointer data)
{
  g_autofree char *missing = g_build_filename (fx->dir, "nope", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdConfig) config = mamd_config_load (missing, NULL, &error);
  g_autofree char *expected = g_strdup_printf ("no configuration in %s: ", missing);

  g_assert_null (config);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_true (g_str_has_prefix (error->message, expected));
}

static void
test_empty_dir (Fixture *fx, gconstpointer data)
{
  g_autofree char *message = NULL;
  g_autoptr(GPtrArray) problems = load_bad (fx, &message);
  g_autofree char *expected = g_strdup_printf ("no configuration in %s: ", fx->dir);

  g_assert_true (g_str_has_prefix (message, expected));
  g_assert_cmpuint (problems->len, ==, 1);
}

static void
test_defaults (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdConfig) config = NULL;
  g_autofree char *path = write_file (fx, "servers.d/chat.conf", "[Server]\n");
  g_autofree char *license = g_build_filename (fx->dir, "license.json", NULL);
  const MamdServerConfig *server;

  /* ignored: not *.conf */
  g_free (write_file (fx, "servers.d/README", "not a key file"));
  g_free (write_file (fx, "servers.d/chat.conf.bak", "[Server\n"));

  config = load_ok (fx);
  g_assert_null (config->daemon->path);
  g_assert_cmpstr (config->daemon->license_file, ==, license);
  g_assert_true (g_str_has_prefix (config->daemon->license_public_key, fx->dir));
  g_assert_cmpuint (config->daemon->max_sessions_per_uid, ==, 200000);
  g_assert_cmpuint (config->daemon->max_calls_per_sender, ==, 64);
  g_assert_cmpuint (config->daemon->max_calls_per_uid, ==, 256);
  g_assert_cmpuint (config->daemon->wipe_retention_days, ==, 7);
  g_assert_cmpuint (config->daemon->event_retention_days, ==, 30);
  g_assert_cmpuint (config->daemon->directory_sync_interval, ==, 3600);
  g_assert_cmpuint (config->daemon->sign_in_timeout, ==, 60);
  g_assert_cmpuint (config->daemon->sync_timeout, ==, 600);
  g_assert_nonnull (config->daemon->client_users);
  g_assert_cmpuint (g_strv_length (config->daemon->client_users), ==, 0);
  g_assert_cmpuint (g_strv_length (config->daemon->admin_users), ==, 0);

  g_assert_cmpuint (config->servers->len, ==, 1);
  server = mamd_config_lookup_server (config, "chat");
  g_assert_nonnull (server);
  g_assert_null (mamd_config_lookup_server (config, "other"));
  g_assert_cmpstr (server->path, ==, path);
  g_assert_cmpstr (server->name, ==, "chat");
  g_assert_false (server->enable);
  g_assert_null (server->tenant_id);
  g_assert_null (server->client_id);
  g_assert_null (server->auth_service);
  g_assert_null (server->scope);
  g_assert_true (server->auto_create_users);
  g_assert_cmpuint (g_strv_length (server->allowed_platforms), ==, 2);
  g_assert_cmpstr (server->allowed_platforms[0], ==, "ios");
  g_assert_cmpstr (server->allowed_platforms[1], ==, "android");
  g_assert_cmpuint (g_strv_length (server->plugin_groups), ==, 0);
}

static void
test_full (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdConfig) config = NULL;
  g_autofree char *daemon_path = NULL;
  const MamdServerConfig *a, *b, *c;

  daemon_path = write_file (fx, "mamd.conf",
                            "# comment\n"
                            "[Daemon]\n"
                            "LicenseFile=/etc/licence.json\n"
                            "LicensePublicKey=keys/pub.pem\n"
                            "ClientUsers=chat;gateway\n"
                            "AdminUsers=alice\n"
                            "WipeRetentionDays=3\n"
                            "EventRetentionDays=90\n"
                            "DirectorySyncInterval=0\n"
                            "[Limits]\n"
                            "MaxSessionsPerUser=10\n"
                            "MaxCallsInFlightPerSender=4\n"
                            "MaxCallsInFlightPerUser=5\n"
                            "SignInTimeout=7\n"
                            "DirectorySyncTimeout=8\n");
  /* upper case and braces: canonicalised */
  g_free (write_file (fx, "servers.d/b-2.conf",
                      "[Server]\n"
                      "Enable=true\n"
                      "Name=Second server\n"
                      "TenantId={0F8FAD5B-D9CB-469F-A165-70867728950E}\n"
                      "ClientId=7C9E6679-7425-40DE-944B-E07FC1F90AE7\n"
                      "AuthService=office365\n"
                      "AllowedPlatforms=ios\n"
                      "AutoCreateUsers=false\n"
                      "[office365]\n"
                      "Anything=goes here\n"
                      "[saml]\n"
                      "X=1\n"));
  g_free (write_file (fx, "servers.d/a_1.conf",
                      "[Server]\nClientId=" CLIENT "\nScope=\n"));
  g_free (write_file (fx, "servers.d/c.conf",
                      "[Server]\nClientId=" CLIENT "\nScope=api://custom/scope\n"));

  config = load_ok (fx);
  g_assert_cmpstr (config->daemon->path, ==, daemon_path);
  g_assert_cmpstr (config->daemon->license_file, ==, "/etc/licence.json");
  g_assert_true (g_str_has_suffix (config->daemon->license_public_key, "/keys/pub.pem"));
  g_assert_true (g_path_is_absolute (config->daemon->license_public_key));
  g_assert_cmpstr (config->daemon->client_users[1], ==, "gateway");
  g_assert_cmpstr (config->daemon->admin_users[0], ==, "alice");
  g_assert_cmpuint (config->daemon->wipe_retention_days, ==, 3);
  g_assert_cmpuint (config->daemon->event_retention_days, ==, 90);
  g_assert_cmpuint (config->daemon->directory_sync_interval, ==, 0);
  g_assert_cmpuint (config->daemon->max_sessions_per_uid, ==, 10);
  g_assert_cmpuint (config->daemon->max_calls_per_sender, ==, 4);
  g_assert_cmpuint (config->daemon->max_calls_per_uid, ==, 5);
  g_assert_cmpuint (config->daemon->sign_in_timeout, ==, 7);
  g_assert_cmpuint (config->daemon->sync_timeout, ==, 8);

  /* sorted by id */
  g_assert_cmpuint (config->servers->len, ==, 3);
  a = g_ptr_array_index (config->servers, 0);
  b = g_ptr_array_index (config->servers, 1);
  c = g_ptr_array_index (config->servers, 2);
  g_assert_cmpstr (a->id, ==, "a_1");
  g_assert_cmpstr (b->id, ==, "b-2");
  g_assert_cmpstr (c->id, ==, "c");

  g_assert_true (b->enable);
  g_assert_cmpstr (b->name, ==, "Second server");
  g_assert_cmpstr (b->tenant_id, ==, TENANT);
  g_assert_cmpstr (b->client_id, ==, CLIENT);
  g_assert_cmpstr (b->auth_service, ==, "office365");
  g_assert_cmpstr (b->scope, ==, "api://" CLIENT "/login.mattermost");
  g_assert_cmpuint (g_strv_length (b->allowed_platforms), ==, 1);
  g_assert_false (b->auto_create_users);
  g_assert_cmpuint (g_strv_length (b->plugin_groups), ==, 2);
  g_assert_cmpstr (b->plugin_groups[0], ==, "office365");
  g_assert_cmpstr (b->plugin_groups[1], ==, "saml");
  g_assert_true (g_key_file_has_key (b->keyfile, "office365", "Anything", NULL));

  /* present but empty: unset */
  g_assert_null (a->scope);
  g_assert_cmpstr (c->scope, ==, "api://custom/scope");
}

static void
test_unknown_key (Fixture *fx, gconstpointer data)
{
  assert_single_server_problem (fx, "[Server]\nEnabled=true\n", "[Server] Enabled: unknown key");
}

/* Key[xx]= is a key of its own: GKeyFile, by default, dropped it unless
 * the loader's $LANGUAGE named xx, so whether the file passed depended on
 * the locale of mamd or mamctl check */
static void
test_locale_key (Fixture *fx, gconstpointer data)
{
  g_autofree char *daemon = write_file (fx, "mamd.conf", "[Daemon]\nWipeRetentionDays[xx]=1\n");
  g_autofree char *expected =
    g_strdup_printf ("%s: [Daemon] WipeRetentionDays[xx]: unknown key", daemon);
  g_autoptr(GPtrArray) problems = NULL;

  problems = load_bad (fx, NULL);
  assert_problem (problems, expected);
  g_assert_cmpint (g_unlink (daemon), ==, 0);

  assert_single_server_problem (fx, "[Server]\nEnable=false\nEnable[xx]=true\n",
                                "[Server] Enable[xx]: unknown key");
}

static void
test_unknown_daemon_key_and_group (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = write_file (fx, "mamd.conf",
                                      "[Daemon]\nLicenceFile=x\n"
                                      "[Limits]\nMaxSessions=3\n"
                                      "[Server]\nEnable=true\n");
  g_autoptr(GPtrArray) problems = load_bad (fx, NULL);
  g_autofree char *p1 = g_strdup_printf ("%s: [Daemon] LicenceFile: unknown key", path);
  g_autofree char *p2 = g_strdup_printf ("%s: [Limits] MaxSessions: unknown key", path);
  g_autofree char *p3 = g_strdup_printf ("%s: [Server]: unknown group", path);

  assert_problem (problems, p1);
  assert_problem (problems, p2);
  assert_problem (problems, p3);
  g_assert_cmpuint (problems->len, ==, 3);
}

static void
test_wrong_types (Fixture *fx, gconstpointer data)
{
  static const struct { const char *group, *key, *value, *message; } cases[] = {
    { "Daemon", "WipeRetentionDays", "-1", "expected an unsigned integer, got '-1'" },
    { "Daemon", "EventRetentionDays", "12abc", "expected an unsigned integer" },
    { "Daemon", "DirectorySyncInterval", "1.5", "expected an unsigned integer" },
    { "Daemon", "WipeRetentionDays", "0", "must be at least 1" },
    /* days in microseconds would overflow: "expires" went negative */
    { "Daemon", "WipeRetentionDays", "106751992", "must be at most 36500" },
    { "Daemon", "EventRetentionDays", "36501", "must be at most 36500" },
    { "Daemon", "EventRetentionDays", "99999999999", "expected an unsigned integer" },
    { "Limits", "MaxSessionsPerUser", "5 ", "expected an unsigned integer" },
    { "Limits", "MaxCallsInFlightPerSender", "+5", "expected an unsigned integer" },
    { "Limits", "SignInTimeout", "0", "must be at least 1" },
    { "Limits", "SignInTimeout", "3601", "must be at most 3600" },
    { "Limits", "DirectorySyncTimeout", "0", "must be at least 1" },
    { "Limits", "DirectorySyncTimeout", "86401", "must be at most 86400" },
    { "Daemon", "LicenseFile", "", "empty value" },
    { "Daemon", "ClientUsers", "a;;b", "empty list item" },
    { "Daemon", "AdminUsers", "root;root", "'root' is listed twice" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *contents = g_strdup_printf ("[%s]\n%s=%s\n", cases[i].group,
                                                   cases[i].key, cases[i].value);
      g_autofree char *path = write_file (fx, "mamd.conf", contents);
      g_autofree char *expected = g_strdup_printf ("%s: [%s] %s: %s", path, cases[i].group,
                                                   cases[i].key, cases[i].message);
      g_autoptr(GPtrArray) problems = load_bad (fx, NULL);

      assert_problem (problems, expected);
      g_assert_cmpuint (problems->len, ==, 1);
    }
}

static void
test_wrong_server_types (Fixture *fx, gconstpointer data)
{
  static const struct { const char *line, *expected; } cases[] = {
    { "Enable=yes", "[Server] Enable: expected true or false, got 'yes'" },
    { "Enable=1", "[Server] Enable: expected true or false" },
    { "AutoCreateUsers=TRUE", "[Server] AutoCreateUsers: expected true or false" },
    { "TenantId=not-a-guid", "[Server] TenantId: " },
    { "TenantId=", "[Server] TenantId: empty value" },
    { "ClientId=0f8fad5b-d9cb-469f-a165-70867728950", "[Server] ClientId: " },
    { "ClientId=0f8fad5bd9cb469fa16570867728950e0", "[Server] ClientId: " },
    { "AuthService=Office 365", "[Server] AuthService: 'Office 365' is not a method name" },
    { "AuthService=", "[Server] AuthService: empty value" },
    { "Name=", "[Server] Name: empty value" },
    /* GKeyFile refuses these escapes, but returns the text all the same */
    { "Name=Chat \\o/", "[Server] Name: " },
    { "Scope=api://x/login.mattermost\\", "[Server] Scope: " },
    { "AllowedPlatforms=windows", "[Server] AllowedPlatforms: unknown platform 'windows'" },
    { "AllowedPlatforms=ios;ios", "[Server] AllowedPlatforms: 'ios' is listed twice" },
    { "AllowedPlatforms=", "[Server] AllowedPlatforms: list at least one of ios, android" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *contents = g_strdup_printf ("[Server]\n%s\n", cases[i].line);
      assert_single_server_problem (fx, contents, cases[i].expected);
    }
}

static void
test_bad_server_id (Fixture *fx, gconstpointer data)
{
  static const char *const bad[] = { "Chat.conf", "-chat.conf", "ch at.conf", ".conf", "_x.conf" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *srv = g_build_filename ("servers.d", bad[i], NULL);
      g_autofree char *srv_path = write_file (fx, srv, "[Server]\n");
      g_autofree char *expected = g_strdup_printf ("%s: '", srv_path);
      g_autoptr(GPtrArray) problems = load_bad (fx, NULL);

      assert_problem (problems, expected);
      assert_problem (problems, "is not a valid server id");
      g_assert_cmpuint (problems->len, ==, 1);
      g_unlink (srv_path);
    }
}

static void
test_bad_plugin_group (Fixture *fx, gconstpointer data)
{
  assert_single_server_problem (fx, "[Server]\n[Office365]\nX=1\n",
                                "[Office365]: not a plugin group");
}

static void
test_missing_server_group (Fixture *fx, gconstpointer data)
{
  assert_single_server_problem (fx, "[office365]\nX=1\n", "[Server]: group is missing");
}

static void
test_invalid_syntax (Fixture *fx, gconstpointer data)
{
  assert_single_server_problem (fx, "[Server]\nEnable=true\nthis line is wrong\n",
                                "line 3 is not a key=value pair, a [group] header or a comment");
  assert_single_server_problem (fx, "[Server\n",
                                "line 1 is not a key=value pair, a [group] header or a comment");
  assert_single_server_problem (fx, "Enable=true\n[Server]\n",
                                "line 1: a key before the first [group]");
  /* the line is named by number, never quoted: it may hold a secret */
  assert_single_server_problem (fx, "[Server]\nClientSecret: s3cr3t-value\n",
                                "line 2 is not a key=value pair");
  {
    g_autofree char *message = NULL;
    g_autoptr(GPtrArray) problems = load_bad (fx, &message);

    g_assert_null (strstr (message, "s3cr3t"));
  }
  /* not UTF-8: the problem itself is, for D-Bus and JSON */
  assert_single_server_problem (fx, "[Server]\nName=caf\xff\n", "line 2 is not UTF-8 text");
  assert_single_server_problem (fx, "[Server]\nEnable=tr\xffue\n", "line 2 is not UTF-8 text");
}

/* GKeyFile merges a repeated group and keeps a repeated key's last value:
 * a file whose top says Enable=true would mean false. */
static void
test_duplicates (Fixture *fx, gconstpointer data)
{
  assert_single_server_problem (fx, "[Server]\nEnable=true\nName=a\nEnable = false\n",
                                "[Server] Enable: line 4: set a second time (first on line 2): "
                                "keep one");
  assert_single_server_problem (fx, "[Server]\nEnable=true\n\n[Server]\nName=a\n",
                                "[Server]: line 4: the group appears a second time (first on "
                                "line 1): merge them into one");
  /* the same key in two groups is no repeat */
  g_free (write_file (fx, "servers.d/chat.conf",
                      "[Server]\nEnable=false\n[test]\nEnable=false\n"));
  {
    g_autoptr(MamdConfig) config = load_ok (fx);
  }
}

static void
test_too_large (Fixture *fx, gconstpointer data)
{
  g_autoptr(GString) big = g_string_new ("[Server]\n");

  while (big->len <= 1024 * 1024)
    g_string_append (big, "# padding padding padding padding padding padding padding\n");
  assert_single_server_problem (fx, big->str, "larger than 1048576 bytes");
}

/* A FIFO where a file should be is refused at once: opening it must not
 * wait for a writer (the daemon would hang). */
static void
test_fifo (Fixture *fx, gconstpointer data)
{
  g_autofree char *dir = g_build_filename (fx->dir, "servers.d", NULL);
  g_autofree char *fifo = g_build_filename (dir, "pipe.conf", NULL);
  g_autoptr(GPtrArray) problems = NULL;
  g_autofree char *message = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  problems = load_bad (fx, &message);
  assert_problem (problems, "not a regular file");
}

/* A mamd.conf or servers.d/ that is a symbolic link to nothing (a volume
 * not mounted, say) is refused: it was taken for absent, so mamd ran on
 * defaults, or with no server at all (a reload revoked every session). */
static void
test_dangling_symlink (Fixture *fx, gconstpointer data)
{
  g_autofree char *daemon = g_build_filename (fx->dir, "mamd.conf", NULL);
  g_autofree char *servers = g_build_filename (fx->dir, "servers.d", NULL);
  g_autofree char *missing = g_build_filename (fx->dir, "not-mounted", "x", NULL);
  g_autoptr(GPtrArray) daemon_problems = NULL;
  g_autoptr(GPtrArray) servers_problems = NULL;
  g_autofree char *daemon_expected = g_strdup_printf ("%s: cannot open: ", daemon);
  g_autofree char *servers_expected = g_strdup_printf ("%s: ", servers);

  g_free (write_file (fx, "mamd.conf", "[Daemon]\nWipeRetentionDays=30\n"));
  g_assert_cmpint (symlink (missing, servers), ==, 0);
  servers_problems = load_bad (fx, NULL);
  assert_problem (servers_problems, servers_expected);
  g_assert_cmpuint (servers_problems->len, ==, 1);

  g_assert_cmpint (g_unlink (daemon), ==, 0);
  g_assert_cmpint (g_unlink (servers), ==, 0);
  g_free (write_file (fx, "servers.d/chat.conf", "[Server]\nEnable=false\n"));
  g_assert_cmpint (symlink (missing, daemon), ==, 0);
  daemon_problems = load_bad (fx, NULL);
  assert_problem (daemon_problems, daemon_expected);
  g_assert_cmpuint (daemon_problems->len, ==, 1);
}

static void
test_all_problems (Fixture *fx, gconstpointer data)
{
  g_autofree char *message = NULL;
  g_autoptr(GPtrArray) problems = NULL;

  g_free (write_file (fx, "mamd.conf", "[Daemon]\nWipeRetentionDays=x\n[Extra]\n"));
  g_free (write_file (fx, "servers.d/a.conf",
                      "[Server]\nEnable=yes\nTenantId=x\nClientId=y\nFoo=1\n"));
  g_free (write_file (fx, "servers.d/b.conf", "garbage\n"));
  g_free (write_file (fx, "servers.d/ok.conf", "[Server]\nEnable=true\n"));

  problems = load_bad (fx, &message);
  g_assert_cmpuint (problems->len, ==, 7);
  assert_problem (problems, "WipeRetentionDays");
  assert_problem (problems, "[Extra]: unknown group");
  assert_problem (problems, "[Server] Enable:");
  assert_problem (problems, "[Server] TenantId:");
  assert_problem (problems, "[Server] ClientId:");
  assert_problem (problems, "[Server] Foo: unknown key");
  assert_problem (problems, "b.conf: line 1 is not a key=value pair");
  g_assert_true (g_str_has_prefix (message, g_ptr_array_index (problems, 0)));
  g_assert_true (g_str_has_suffix (message, " (and 6 more)"));
}

static void
test_equal (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdConfig) one = NULL;
  g_autoptr(MamdConfig) two = NULL;
  g_autoptr(MamdConfig) three = NULL;
  g_autoptr(MamdConfig) four = NULL;
  const char *base = "[Server]\nEnable=true\nTenantId=" TENANT "\n[office365]\nKey=1\n";

  g_free (write_file (fx, "servers.d/s.conf", base));
  one = load_ok (fx);
  g_free (write_file (fx, "servers.d/s.conf",
                      "[Server]\nEnable=true\nTenantId=0F8FAD5B-D9CB-469F-A165-70867728950E\n"
                      "[office365]\nKey=1\n"));
  two = load_ok (fx);
  g_free (write_file (fx, "servers.d/s.conf",
                      "[Server]\nEnable=true\nTenantId=" TENANT "\n[office365]\nKey=2\n"));
  three = load_ok (fx);
  g_free (write_file (fx, "servers.d/s.conf",
                      "[Server]\nEnable=false\nTenantId=" TENANT "\n[office365]\nKey=1\n"));
  four = load_ok (fx);

  g_assert_true (mamd_server_config_equal (g_ptr_array_index (one->servers, 0),
                                           g_ptr_array_index (one->servers, 0)));
  g_assert_cmpstr (((MamdServerConfig *) g_ptr_array_index (two->servers, 0))->tenant_id, ==,
                   TENANT);
  /* the raw GUID text differs, so the key file text does too */
  g_assert_false (mamd_server_config_equal (g_ptr_array_index (one->servers, 0),
                                            g_ptr_array_index (two->servers, 0)));
  g_assert_false (mamd_server_config_equal (g_ptr_array_index (one->servers, 0),
                                            g_ptr_array_index (three->servers, 0)));
  g_assert_false (mamd_server_config_equal (g_ptr_array_index (one->servers, 0),
                                            g_ptr_array_index (four->servers, 0)));

  /* an identical reload is equal, comments do not count */
  g_free (write_file (fx, "servers.d/s.conf", "# comment\n[Server]\nEnable=true\nTenantId=" TENANT "\n[office365]\n# too\nKey=1\n"));
  {
    g_autoptr(MamdConfig) again = load_ok (fx);
    g_assert_true (mamd_server_config_equal (g_ptr_array_index (one->servers, 0),
                                             g_ptr_array_index (again->servers, 0)));
  }
}

static void
test_key_table (void)
{
  static const char *const types[] = { "boolean", "string", "GUID", "string list", "unsigned" };
  guint n = 0;
  const MamdConfigKey *keys = mamd_config_get_keys (&n);
  gboolean seen_scope = FALSE;

  g_assert_cmpuint (n, >=, 16);
  for (guint i = 0; i < n; i++)
    {
      g_assert_true (g_strv_contains (types, keys[i].type));
      g_assert_nonnull (keys[i].group);
      g_assert_nonnull (keys[i].key);
      g_assert_nonnull (keys[i].description);
      g_assert_true (g_str_equal (keys[i].file, "mamd.conf") ||
                     g_str_equal (keys[i].file, "servers.d/<id>.conf"));
      if (g_str_equal (keys[i].key, "Scope"))
        seen_scope = TRUE;
    }
  g_assert_true (seen_scope);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/mamd/config/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("missing-dir", test_missing_dir);
  ADD ("empty-dir", test_empty_dir);
  ADD ("defaults", test_defaults);
  ADD ("full", test_full);
  ADD ("unknown-key", test_unknown_key);
  ADD ("locale-key", test_locale_key);
  ADD ("unknown-daemon-key-and-group", test_unknown_daemon_key_and_group);
  ADD ("wrong-types", test_wrong_types);
  ADD ("wrong-server-types", test_wrong_server_types);
  ADD ("bad-server-id", test_bad_server_id);
  ADD ("bad-plugin-group", test_bad_plugin_group);
  ADD ("missing-server-group", test_missing_server_group);
  ADD ("invalid-syntax", test_invalid_syntax);
  ADD ("duplicates", test_duplicates);
  ADD ("too-large", test_too_large);
  ADD ("fifo", test_fifo);
  ADD ("dangling-symlink", test_dangling_symlink);
  ADD ("all-problems", test_all_problems);
  ADD ("equal", test_equal);
#undef ADD
  g_test_add_func ("/mamd/config/key-table", test_key_table);
  return g_test_run ();
}
