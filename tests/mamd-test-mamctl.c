/*
 * The fixture shared by test-mamctl*.c: a daemon on a private bus with two
 * servers (its start optional) and the helpers that run the real mamctl.
 */
#include "config.h"

#include <string.h>

#include "mamd-test-mamctl.h"

void
run_mamctl_v (const char *bus_address, MamdTestRun *run, const char *const *args)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                        | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_unsetenv (launcher, "DBUS_SESSION_BUS_ADDRESS");
  if (bus_address != NULL)
    g_subprocess_launcher_setenv (launcher, "MAMD_BUS_ADDRESS", bus_address, TRUE);
  else
    g_subprocess_launcher_unsetenv (launcher, "MAMD_BUS_ADDRESS");
  mamd_test_run (launcher, "tools/mamctl", args, run);
}

JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

char *
human_field (const char *out, const char *key)
{
  g_auto(GStrv) lines = g_strsplit (out, "\n", -1);
  g_autofree char *prefix = g_strconcat (key, ":", NULL);
  guint i;

  for (i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_strstrip (g_strdup (lines[i] + strlen (prefix)));
  return NULL;
}

void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->mamctl = mamd_test_build_path ("tools/mamctl");
  f->daemon = mamd_test_daemon_new ();
  mamd_test_daemon_write_daemon_conf (f->daemon, NULL);
  mamd_test_daemon_write_license (f->daemon, "advanced",
                                  g_get_real_time () / G_USEC_PER_SEC + 86400);
  mamd_test_daemon_write_server (f->daemon, "chat",
                                 "[Server]\nEnable=true\nTenantId=" TENANT "\n"
                                 "ClientId=" CLIENT "\nAuthService=test\n");
  mamd_test_daemon_write_server (f->daemon, "open",
                                 "[Server]\nEnable=false\nAuthService=test\n");
  if (data == NULL)
    {
      mamd_test_daemon_start (f->daemon, &error);
      g_assert_no_error (error);
    }
}

void
fixture_teardown (Fixture *f, gconstpointer data)
{
  mamd_test_daemon_free (f->daemon);
  g_free (f->mamctl);
}

char *
login (Fixture *f, const char *server, const char *object_id, const char *device,
       const char *expected_state)
{
  g_auto(MamdTestRun) run = { 0 };
  g_autofree char *cred_oid = g_strconcat ("--credential=object-id=", object_id, NULL);
  g_autofree char *dev = g_strconcat ("--device-id=", device, NULL);
  g_autofree char *state = NULL;

  run_mamctl (f, &run, "login", server, "test", "--platform=ios", dev, cred_oid,
              "--credential=tenant-id=" TENANT, "--credential=user-name=someone");
  g_assert_cmpint (run.status, ==, 0);
  state = human_field (run.out, "state");
  g_assert_cmpstr (state, ==, expected_state);
  g_assert_nonnull (strstr (run.out, "object-path:"));
  return human_field (run.out, "id");
}

