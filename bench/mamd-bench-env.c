/*
 * mamd-bench environment: a private dbus-daemon, mamd with the test plugin
 * and an advanced licence, and an echo service in a child process (so that
 * the echo baseline pays the same process and bus hops as mamd does).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mamd-bench.h"
#include "mamd-license.h"

static void
child_setup (gpointer user_data)
{
  /* nothing we start may outlive the bench, even if it is killed */
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static gboolean
write_file (const char *path, const char *contents, GError **error)
{
  return g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                   error);
}

static gboolean
write_config (BenchEnv *env, const BenchEnvOptions *options, GError **error)
{
  g_autofree char *config = g_build_filename (env->dir, "config", NULL);
  g_autofree char *servers = g_build_filename (config, "servers.d", NULL);
  g_autofree char *state = g_build_filename (env->dir, "state", NULL);
  g_autofree char *private_key = g_build_filename (env->dir, "license-private.pem", NULL);
  g_autofree char *public_key = g_build_filename (config, "license-public.pem", NULL);
  g_autofree char *license_path = g_build_filename (config, "license.json", NULL);
  g_autofree char *daemon_conf = NULL;
  g_autofree char *daemon_path = g_build_filename (config, "mamd.conf", NULL);
  g_autofree char *server_path = g_build_filename (servers, BENCH_SERVER ".conf", NULL);
  g_autofree char *payload = NULL;
  g_autofree char *license = NULL;
  g_autofree char *server_conf = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (g_mkdir_with_parents (servers, 0700) != 0 || g_mkdir_with_parents (state, 0700) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create %s", env->dir);
      return FALSE;
    }
  if (!mamd_license_generate_key (private_key, public_key, error))
    return FALSE;
  payload = g_strdup_printf ("{\"id\":\"bench\",\"licensee\":\"mamd-bench\","
                             "\"sku_short_name\":\"advanced\",\"issued_at\":%" G_GINT64_FORMAT
                             ",\"expires_at\":%" G_GINT64_FORMAT "}",
                             now - 60, now + 86400);
  license = mamd_license_sign (payload, private_key, error);
  if (license == NULL || !write_file (license_path, license, error))
    return FALSE;

  daemon_conf = g_strdup_printf ("[Daemon]\nLicenseFile=%s\nLicensePublicKey=%s\n"
                                 "DirectorySyncInterval=0\n"
                                 "[Limits]\nMaxSessionsPerUser=%u\n"
                                 "MaxCallsInFlightPerSender=%u\n"
                                 "MaxCallsInFlightPerUser=%u\n",
                                 license_path, public_key, options->max_sessions,
                                 options->max_in_flight, options->max_in_flight);
  if (!write_file (daemon_path, daemon_conf, error))
    return FALSE;
  server_conf = g_strdup_printf ("[Server]\nEnable=true\nTenantId=" BENCH_TENANT "\n"
                                 "ClientId=" BENCH_CLIENT "\nAuthService=%s\n"
                                 "AllowedPlatforms=ios\nAutoCreateUsers=true\n"
                                 "%s%s%s",
                                 options->auth_service != NULL ? options->auth_service : "test",
                                 options->authority != NULL ? "[office365]\nAuthority=" : "",
                                 options->authority != NULL ? options->authority : "",
                                 options->authority != NULL ? "\n" : "");
  return write_file (server_path, server_conf, error);
}

static gboolean
start_bus (BenchEnv *env, GError **error)
{
  g_autofree char *conf_path = g_build_filename (env->dir, "bus.conf", NULL);
  g_autofree char *conf = NULL;
  g_autofree char *config_arg = NULL;
  g_autoptr(GIOChannel) channel = NULL;
  g_autofree char *line = NULL;
  int out_fd = -1;

  /* the built-in dbus-daemon limits (128 pending replies per connection)
   * are lower than a bench needs; these are the session bus's */
  conf = g_strdup_printf (
      "<busconfig>\n"
      "  <type>session</type>\n"
      "  <listen>unix:dir=%s</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <policy context=\"default\">\n"
      "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
      "    <allow eavesdrop=\"true\"/>\n"
      "    <allow own=\"*\"/>\n"
      "  </policy>\n"
      "  <limit name=\"max_incoming_bytes\">1000000000</limit>\n"
      "  <limit name=\"max_outgoing_bytes\">1000000000</limit>\n"
      "  <limit name=\"max_message_size\">1000000000</limit>\n"
      "  <limit name=\"max_replies_per_connection\">50000</limit>\n"
      "  <limit name=\"reply_timeout\">300000</limit>\n"
      "</busconfig>\n",
      env->dir);
  if (!write_file (conf_path, conf, error))
    return FALSE;
  config_arg = g_strconcat ("--config-file=", conf_path, NULL);
  {
    const char *argv[] = { "dbus-daemon", config_arg, "--nofork", "--print-address=1", NULL };
    if (!g_spawn_async_with_pipes (NULL, (char **) argv, NULL,
                                   G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD
                                     | G_SPAWN_STDERR_TO_DEV_NULL,
                                   child_setup,
                                   NULL, &env->bus_pid, NULL, &out_fd, NULL, error))
      {
        g_prefix_error (error, "cannot start dbus-daemon (install dbus-daemon): ");
        return FALSE;
      }
  }
  channel = g_io_channel_unix_new (out_fd);
  g_io_channel_set_close_on_unref (channel, TRUE);
  if (g_io_channel_read_line (channel, &line, NULL, NULL, error) != G_IO_STATUS_NORMAL
      || line == NULL)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "dbus-daemon printed no address");
      return FALSE;
    }
  env->bus_address = g_strdup (g_strstrip (line));
  env->bus = g_dbus_connection_new_for_address_sync (
      env->bus_address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, error);
  if (env->bus == NULL)
    return FALSE;
  g_dbus_connection_set_exit_on_close (env->bus, FALSE);
  return TRUE;
}

static gboolean
child_exited (GPid pid)
{
  int status;

  return waitpid (pid, &status, WNOHANG) == pid;
}

static gboolean
name_has_owner (GDBusConnection *bus, const char *name)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", name), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

/* Polls: the bench runs no main loop while it sets up. */
static gboolean
wait_for_name (BenchEnv *env, const char *name, GPid pid, const char *what, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      if (name_has_owner (env->bus, name))
        return TRUE;
      if (child_exited (pid))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "%s exited before it owned %s", what, name);
          return FALSE;
        }
      g_usleep (20 * 1000);
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s did not own %s within 30 s", what,
               name);
  return FALSE;
}

static gboolean
start_mamd (BenchEnv *env, const BenchEnvOptions *options, GError **error)
{
  g_autofree char *config = g_build_filename (env->dir, "config", NULL);
  g_autofree char *state = g_build_filename (env->dir, "state", NULL);
  const char *argv[] = { options->mamd_path, "--bus-address", env->bus_address,
                         "--config-dir", config, "--state-dir", state,
                         "--plugin-dir", options->plugin_dir, NULL };

  g_autofree char *log_path = g_build_filename (env->dir, "mamd.log", NULL);
  int log_fd;
  gboolean ok;

  /* mamd logs every event; on the terminal that would drown the results
   * and slow both sides down */
  log_fd = g_open (log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "cannot create %s: %s",
                   log_path, g_strerror (errno));
      return FALSE;
    }
  ok = g_spawn_async_with_fds (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                               child_setup, NULL, &env->mamd_pid, -1, log_fd, log_fd, error);
  close (log_fd);
  if (!ok)
    {
      g_prefix_error (error, "cannot start %s: ", options->mamd_path);
      return FALSE;
    }
  if (!wait_for_name (env, "org.mamd.Mamd1", env->mamd_pid, "mamd", error))
    {
      g_autofree char *log = NULL;
      if (g_file_get_contents (log_path, &log, NULL, NULL))
        g_printerr ("%s", log);
      return FALSE;
    }
  return TRUE;
}

static gboolean
start_echo (BenchEnv *env, GError **error)
{
  /* this very program, by its path: valgrind refuses to run /proc/self/exe */
  g_autofree char *self = g_file_read_link ("/proc/self/exe", error);
  const char *argv[] = { self, "--echo-service", env->bus_address, NULL };

  if (self == NULL)
    return FALSE;
  if (!g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, child_setup, NULL,
                      &env->echo_pid, error))
    return FALSE;
  return wait_for_name (env, BENCH_ECHO_NAME, env->echo_pid, "the echo service", error);
}

BenchEnv *
bench_env_start (const BenchEnvOptions *options, GError **error)
{
  g_autoptr(BenchEnv) env = g_new0 (BenchEnv, 1);

  env->dir = g_dir_make_tmp ("mamd-bench-XXXXXX", error);
  if (env->dir == NULL)
    return NULL;
  if (!write_config (env, options, error) || !start_bus (env, error)
      || !start_mamd (env, options, error) || !start_echo (env, error))
    return NULL;
  return g_steal_pointer (&env);
}

static void
stop_child (GPid pid)
{
  int status;

  if (pid <= 0)
    return;
  kill (pid, SIGTERM);
  waitpid (pid, &status, 0);
  g_spawn_close_pid (pid);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    while ((name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *child = g_build_filename (path, name, NULL);
        if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
          remove_tree (child);
        else
          g_unlink (child);
      }
  g_rmdir (path);
}

void
bench_env_stop (BenchEnv *env)
{
  stop_child (env->echo_pid);
  stop_child (env->mamd_pid);
  g_clear_object (&env->bus);
  stop_child (env->bus_pid);
  if (env->dir != NULL)
    remove_tree (env->dir);
  g_free (env->dir);
  g_free (env->bus_address);
  g_free (env);
}

static void
echo_method_call (GDBusConnection *bus, const char *sender, const char *path,
                  const char *iface, const char *method, GVariant *parameters,
                  GDBusMethodInvocation *invocation, gpointer user_data)
{
  g_dbus_method_invocation_return_value (invocation, g_variant_ref (parameters));
}

static void
echo_closed (GDBusConnection *bus, gboolean vanished, GError *error, gpointer user_data)
{
  g_main_loop_quit (user_data);
}

int
bench_echo_service_run (const char *address)
{
  static const char xml[] =
    "<node><interface name='" BENCH_ECHO_IFACE "'><method name='Echo'>"
    "<arg name='request' type='a{sv}' direction='in'/>"
    "<arg name='reply' type='a{sv}' direction='out'/>"
    "</method></interface></node>";
  const GDBusInterfaceVTable vtable = { echo_method_call, NULL, NULL, { 0 } };
  g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml (xml, NULL);
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  bus = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &error);
  if (bus == NULL
      || g_dbus_connection_register_object (bus, BENCH_ECHO_PATH, node->interfaces[0], &vtable,
                                            NULL, NULL, &error) == 0)
    {
      g_printerr ("mamd-bench echo: %s\n", error->message);
      return 1;
    }
  g_dbus_connection_set_exit_on_close (bus, FALSE);
  g_signal_connect (bus, "closed", G_CALLBACK (echo_closed), loop);
  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "RequestName",
                                       g_variant_new ("(su)", BENCH_ECHO_NAME, 4u),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  if (reply == NULL)
    {
      g_printerr ("mamd-bench echo: %s\n", error->message);
      return 1;
    }
  g_main_loop_run (loop);
  return 0;
}
