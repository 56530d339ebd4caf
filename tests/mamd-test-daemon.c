/*
 * The black-box fixture: a private dbus-daemon, the real mamd binary and a
 * temporary directory tree. See mamd-test-daemon.h.
 */
#include "config.h"

#include "mamd-test-daemon.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "mamd-license.h"
#include "mamd-plugin.h"
#include "mamd-test-util.h"

#define START_TIMEOUT_MS 20000
#define WRAPPED_START_TIMEOUT_MS 120000

struct _MamdTestDaemon {
  char *tmp_dir;
  char *config_dir;
  char *state_dir;
  char *plugin_dir; /* NULL: $MAMD_BUILD_ROOT/tests/plugins */
  char *license_file;
  char *private_key;
  char *public_key;
  char *bus_address;
  GSubprocess *bus;
  GDBusConnection *connection;
  guint signal_id;
  GPtrArray *signals; /* MamdTestSignal */

  GSubprocess *mamd;
  goffset file_size_limit; /* RLIMIT_FSIZE of the next daemon, 0: none */
  char **env;              /* variables set for the next daemons, or NULL */
  char *log_path;
  char *last_owner;
  guint n_starts;
  int exit_status;
};

static const char *
build_root (void)
{
  const char *root = g_getenv ("MAMD_BUILD_ROOT");

  g_assert_nonnull (root);
  return root;
}

static void
test_signal_free (MamdTestSignal *sig)
{
  g_free (sig->sender);
  g_free (sig->object_path);
  g_free (sig->interface);
  g_free (sig->member);
  g_variant_unref (sig->parameters);
  g_free (sig);
}

static void
on_signal (GDBusConnection *connection, const char *sender, const char *object_path,
           const char *interface, const char *member, GVariant *parameters, gpointer user_data)
{
  MamdTestDaemon *d = user_data;
  MamdTestSignal *sig;

  if (!g_str_has_prefix (object_path, "/org/mamd/Mamd1"))
    return;
  sig = g_new0 (MamdTestSignal, 1);
  sig->sender = g_strdup (sender);
  sig->object_path = g_strdup (object_path);
  sig->interface = g_strdup (interface);
  sig->member = g_strdup (member);
  sig->parameters = g_variant_ref (parameters);
  g_ptr_array_add (d->signals, sig);
}

static void
write_file (const char *path, const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}


/* A test that fails aborts without running mamd_test_daemon_free(): the
 * children must not outlive it. Runs between fork and exec. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, GPOINTER_TO_INT (user_data));
}

/* The daemon's child setup: dies with the test, and writes past
 * file_size_limit fail with EFBIG (SIGXFSZ ignored), as on a full disk. */
static void
mamd_child_setup (gpointer user_data)
{
  MamdTestDaemon *d = user_data;
  struct rlimit limit = { (rlim_t) d->file_size_limit, (rlim_t) d->file_size_limit };

  prctl (PR_SET_PDEATHSIG, SIGTERM);
  if (d->file_size_limit > 0) {
    signal (SIGXFSZ, SIG_IGN);
    setrlimit (RLIMIT_FSIZE, &limit);
  }
}

static void
start_bus (MamdTestDaemon *d)
{
  g_autofree char *bus_dir = g_build_filename (d->tmp_dir, "bus", NULL);
  g_autofree char *conf_path = g_build_filename (d->tmp_dir, "bus.conf", NULL);
  g_autofree char *conf = NULL;
  g_autofree char *line = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;

  /* other uids may connect (role tests): the socket dir is world-readable
   * and the bus policy allows every user; mamd does the authorization */
  g_assert_cmpint (g_mkdir (bus_dir, 0755), ==, 0);
  conf = g_strdup_printf (
    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
    " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
    "<busconfig>\n"
    "  <type>session</type>\n"
    "  <listen>unix:dir=%s</listen>\n"
    "  <auth>EXTERNAL</auth>\n"
    "  <policy context=\"default\">\n"
    "    <allow user=\"*\"/>\n"
    "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
    "    <allow eavesdrop=\"true\"/>\n"
    "    <allow own=\"*\"/>\n"
    "  </policy>\n"
    "  <limit name=\"max_incoming_bytes\">1000000000</limit>\n"
    "  <limit name=\"max_outgoing_bytes\">1000000000</limit>\n"
    /* the system bus's default: a peer that sends more is disconnected */
    "  <limit name=\"max_message_size\">33554432</limit>\n"
    "  <limit name=\"max_replies_per_connection\">50000</limit>\n"
    "  <limit name=\"max_match_rules_per_connection\">50000</limit>\n"
    "  <limit name=\"max_connections_per_user\">10000</limit>\n"
    "  <limit name=\"reply_timeout\">300000</limit>\n"
    "</busconfig>\n",
    bus_dir);
  write_file (conf_path, conf);

  /* silenced: its only chatter is that it may not raise its fd limit */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, GINT_TO_POINTER (SIGKILL),
                                         NULL);
  d->bus = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", "--config-file",
                                        conf_path, "--nofork", "--print-address", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (d->bus));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  d->bus_address = g_strdup (g_strstrip (line));

  d->connection = g_dbus_connection_new_for_address_sync (
    d->bus_address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_set_exit_on_close (d->connection, FALSE);
  d->signal_id = g_dbus_connection_signal_subscribe (d->connection, NULL, NULL, NULL, NULL, NULL,
                                                     G_DBUS_SIGNAL_FLAGS_NONE, on_signal, d,
                                                     NULL);
}

MamdTestDaemon *
mamd_test_daemon_new (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *servers_dir = NULL;
  MamdTestDaemon *d = g_new0 (MamdTestDaemon, 1);

  d->tmp_dir = g_dir_make_tmp ("mamd-test-XXXXXX", &error);
  g_assert_no_error (error);
  /* traversable (not listable) for other uids, who need the bus socket */
  g_chmod (d->tmp_dir, 0711);
  d->config_dir = g_build_filename (d->tmp_dir, "config", NULL);
  d->state_dir = g_build_filename (d->tmp_dir, "state", NULL);
  servers_dir = g_build_filename (d->config_dir, "servers.d", NULL);
  g_assert_cmpint (g_mkdir_with_parents (servers_dir, 0700), ==, 0);
  g_assert_cmpint (g_mkdir (d->state_dir, 0700), ==, 0);

  d->private_key = g_build_filename (d->tmp_dir, "license-private.pem", NULL);
  d->public_key = g_build_filename (d->tmp_dir, "license-public.pem", NULL);
  d->license_file = g_build_filename (d->tmp_dir, "license.json", NULL);
  mamd_license_generate_key (d->private_key, d->public_key, &error);
  g_assert_no_error (error);

  d->signals = g_ptr_array_new_with_free_func ((GDestroyNotify) test_signal_free);
  d->exit_status = -1;
  start_bus (d);
  return d;
}

static void
print_log_on_failure (MamdTestDaemon *d)
{
  g_autofree char *log = NULL;

  if (!g_test_failed () || d->log_path == NULL)
    return;
  log = mamd_test_daemon_get_log (d);
  g_test_message ("mamd output (%s):\n%s", d->log_path, log != NULL ? log : "(none)");
}

void
mamd_test_daemon_free (MamdTestDaemon *d)
{
  if (d == NULL)
    return;
  if (d->mamd != NULL)
    mamd_test_daemon_stop (d);
  print_log_on_failure (d);
  if (d->signal_id != 0)
    g_dbus_connection_signal_unsubscribe (d->connection, d->signal_id);
  if (d->connection != NULL) {
    g_dbus_connection_close_sync (d->connection, NULL, NULL);
    g_clear_object (&d->connection);
  }
  /* drain idles GDBus scheduled (signal unsubscribe, close) */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  if (d->bus != NULL) {
    g_subprocess_send_signal (d->bus, SIGTERM);
    g_subprocess_wait (d->bus, NULL, NULL);
    g_clear_object (&d->bus);
  }
  g_ptr_array_unref (d->signals);
  mamd_test_rm_rf (d->tmp_dir);
  g_free (d->tmp_dir);
  g_free (d->config_dir);
  g_free (d->state_dir);
  g_free (d->plugin_dir);
  g_strfreev (d->env);
  g_free (d->license_file);
  g_free (d->private_key);
  g_free (d->public_key);
  g_free (d->bus_address);
  g_free (d->log_path);
  g_free (d->last_owner);
  g_free (d);
}

/* ---- configuration ---- */

void
mamd_test_daemon_write_daemon_conf (MamdTestDaemon *d, const char *extra)
{
  g_autofree char *path = g_build_filename (d->config_dir, "mamd.conf", NULL);
  g_autofree char *contents = NULL;

  g_mkdir_with_parents (d->config_dir, 0700);
  contents = g_strdup_printf ("[Daemon]\nLicenseFile=%s\nLicensePublicKey=%s\n%s",
                              d->license_file, d->public_key, extra != NULL ? extra : "");
  write_file (path, contents);
}

void
mamd_test_daemon_write_license (MamdTestDaemon *d, const char *sku, gint64 expires_unix)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *payload = NULL;
  g_autofree char *text = NULL;
  gint64 issued = MIN (g_get_real_time () / G_USEC_PER_SEC, expires_unix) - 86400;

  payload = g_strdup_printf ("{\"id\": \"test-licence\", \"licensee\": \"mamd tests\", "
                             "\"sku_short_name\": \"%s\", \"issued_at\": %" G_GINT64_FORMAT ", "
                             "\"expires_at\": %" G_GINT64_FORMAT "}",
                             sku, issued, expires_unix);
  text = mamd_license_sign (payload, d->private_key, &error);
  g_assert_no_error (error);
  if (g_path_is_absolute (d->license_file)) {
    write_file (d->license_file, text);
  } else {
    g_autofree char *path = g_build_filename (d->config_dir, d->license_file, NULL);

    write_file (path, text);
  }
}

void
mamd_test_daemon_write_server (MamdTestDaemon *d, const char *id, const char *contents)
{
  g_autofree char *name = g_strconcat (id, ".conf", NULL);
  g_autofree char *dir = g_build_filename (d->config_dir, "servers.d", NULL);
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_mkdir_with_parents (dir, 0700);
  write_file (path, contents);
}

void
mamd_test_daemon_write_mam_server (MamdTestDaemon *d, const char *id, gboolean enable,
                                   const char *extra)
{
  g_autofree char *contents = NULL;

  contents = g_strdup_printf ("[Server]\nEnable=%s\nTenantId=%s\nClientId=%s\n"
                              "AuthService=test\n%s",
                              enable ? "true" : "false", MAMD_TEST_TENANT_ID,
                              MAMD_TEST_CLIENT_ID, extra != NULL ? extra : "");
  mamd_test_daemon_write_server (d, id, contents);
}

void
mamd_test_daemon_remove_server (MamdTestDaemon *d, const char *id)
{
  g_autofree char *name = g_strconcat (id, ".conf", NULL);
  g_autofree char *path = g_build_filename (d->config_dir, "servers.d", name, NULL);

  g_assert_cmpint (g_unlink (path), ==, 0);
}

void
mamd_test_daemon_write_default_setup (MamdTestDaemon *d, const char *server_id)
{
  mamd_test_daemon_write_daemon_conf (d, NULL);
  mamd_test_daemon_write_license (d, "advanced",
                                  g_get_real_time () / G_USEC_PER_SEC + 365 * 86400);
  mamd_test_daemon_write_mam_server (d, server_id, TRUE, NULL);
}

void
mamd_test_daemon_set_license_file (MamdTestDaemon *d, const char *path)
{
  g_free (d->license_file);
  d->license_file = g_strdup (path);
}

const char *
mamd_test_daemon_get_tmp_dir (MamdTestDaemon *d)
{
  return d->tmp_dir;
}

const char *
mamd_test_daemon_get_config_dir (MamdTestDaemon *d)
{
  return d->config_dir;
}

const char *
mamd_test_daemon_get_state_dir (MamdTestDaemon *d)
{
  return d->state_dir;
}

void
mamd_test_daemon_set_config_dir (MamdTestDaemon *d, const char *path)
{
  g_free (d->config_dir);
  d->config_dir = g_strdup (path);
}

void
mamd_test_daemon_set_state_dir (MamdTestDaemon *d, const char *path)
{
  g_free (d->state_dir);
  d->state_dir = g_strdup (path);
}

void
mamd_test_daemon_set_plugin_dir (MamdTestDaemon *d, const char *path)
{
  g_free (d->plugin_dir);
  d->plugin_dir = g_strdup (path);
}

/* ---- the daemon process ---- */

typedef struct {
  gboolean appeared;
  gboolean exited;
  gboolean timed_out;
  char *owner;          /* the new daemon's unique name */
  const char *ignore[2]; /* owners that are not the new daemon */
} StartWait;

/* shared with the exit callback, which may run after start() returned */
typedef StartWait StartWaitBox;
static void
start_wait_clear (gpointer data)
{
  g_free (((StartWait *) data)->owner);
}

static void
start_wait_release (StartWaitBox *wait)
{
  g_rc_box_release_full (wait, start_wait_clear);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StartWaitBox, start_wait_release)

static void
on_name_appeared (GDBusConnection *connection, const char *name, const char *owner,
                  gpointer user_data)
{
  StartWait *wait = user_data;

  /* the previous daemon may not have left the bus yet, and a test may hold
   * the name itself on purpose */
  if (g_strcmp0 (owner, wait->ignore[0]) == 0 || g_strcmp0 (owner, wait->ignore[1]) == 0)
    return;
  g_free (wait->owner);
  wait->owner = g_strdup (owner);
  wait->appeared = TRUE;
}

static void
on_mamd_exited (GObject *source, GAsyncResult *result, gpointer user_data)
{
  StartWait *wait = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  wait->exited = TRUE;
  start_wait_release (wait);
}

static gboolean
on_start_timeout (gpointer user_data)
{
  ((StartWait *) user_data)->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static int
subprocess_status (GSubprocess *process)
{
  if (g_subprocess_get_if_exited (process))
    return g_subprocess_get_exit_status (process);
  if (g_subprocess_get_if_signaled (process))
    return 128 + g_subprocess_get_term_sig (process);
  return -1;
}

gboolean
mamd_test_daemon_start (MamdTestDaemon *d, GError **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_auto(GStrv) wrapper = NULL;
  g_autofree char *log_name = NULL;
  g_autoptr(GSource) timeout = NULL;
  const char *wrapper_text = g_getenv ("MAMD_TEST_WRAPPER");
  g_autoptr(StartWaitBox) wait = NULL;
  guint watch_id;

  g_return_val_if_fail (d->mamd == NULL, FALSE);

  if (wrapper_text != NULL && wrapper_text[0] != '\0' &&
      !g_shell_parse_argv (wrapper_text, NULL, &wrapper, error))
    return FALSE;
  for (guint i = 0; wrapper != NULL && wrapper[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (wrapper[i]));
  g_ptr_array_add (argv, g_build_filename (build_root (), "daemon", "mamd", NULL));
  g_ptr_array_add (argv, g_strdup_printf ("--bus-address=%s", d->bus_address));
  g_ptr_array_add (argv, g_strdup_printf ("--config-dir=%s", d->config_dir));
  g_ptr_array_add (argv, g_strdup_printf ("--state-dir=%s", d->state_dir));
  if (d->plugin_dir != NULL)
    g_ptr_array_add (argv, g_strdup_printf ("--plugin-dir=%s", d->plugin_dir));
  else
    g_ptr_array_add (argv, g_strdup_printf ("--plugin-dir=%s/tests/plugins", build_root ()));
  g_ptr_array_add (argv, g_strdup ("--verbose"));
  g_ptr_array_add (argv, NULL);

  d->n_starts++;
  log_name = g_strdup_printf ("mamd-%u.log", d->n_starts);
  g_free (d->log_path);
  d->log_path = g_build_filename (d->tmp_dir, log_name, NULL);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  for (guint i = 0; d->env != NULL && d->env[i] != NULL; i++) {
    g_auto(GStrv) pair = g_strsplit (d->env[i], "=", 2);
    g_subprocess_launcher_setenv (launcher, pair[0], pair[1], TRUE);
  }
  g_subprocess_launcher_set_stdout_file_path (launcher, d->log_path);
  g_subprocess_launcher_set_child_setup (launcher, mamd_child_setup, d, NULL);
  d->mamd = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, error);
  if (d->mamd == NULL)
    return FALSE;
  g_test_message ("mamd started, output in %s", d->log_path);

  wait = g_rc_box_new0 (StartWait);
  wait->ignore[0] = d->last_owner;
  wait->ignore[1] = g_dbus_connection_get_unique_name (d->connection);
  watch_id = g_bus_watch_name_on_connection (d->connection, "org.mamd.Mamd1",
                                             G_BUS_NAME_WATCHER_FLAGS_NONE, on_name_appeared,
                                             NULL, wait, NULL);
  g_subprocess_wait_async (d->mamd, NULL, on_mamd_exited, g_rc_box_acquire (wait));
  timeout = g_timeout_source_new (wrapper != NULL ? WRAPPED_START_TIMEOUT_MS : START_TIMEOUT_MS);
  g_source_set_callback (timeout, on_start_timeout, wait, NULL);
  g_source_attach (timeout, NULL);
  while (!wait->appeared && !wait->exited && !wait->timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (timeout);
  g_bus_unwatch_name (watch_id);

  if (wait->appeared && !wait->exited) {
    g_free (d->last_owner);
    d->last_owner = g_strdup (wait->owner);
    return TRUE;
  }
  if (!wait->exited) {
    g_subprocess_force_exit (d->mamd);
    while (!wait->exited)
      g_main_context_iteration (NULL, TRUE);
  }
  d->exit_status = subprocess_status (d->mamd);
  g_clear_object (&d->mamd);
  {
    g_autofree char *log = mamd_test_daemon_get_log (d);
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                 "mamd %s (status %d): %s", wait->timed_out ? "did not start in time" : "exited",
                 d->exit_status, log != NULL ? log : "");
  }
  return FALSE;
}

gboolean
mamd_test_daemon_is_running (MamdTestDaemon *d)
{
  return d->mamd != NULL;
}

GPid
mamd_test_daemon_get_pid (MamdTestDaemon *d)
{
  const char *id;

  if (d->mamd == NULL)
    return 0;
  id = g_subprocess_get_identifier (d->mamd);
  return id != NULL ? (GPid) atoi (id) : 0;
}

int
mamd_test_daemon_kill (MamdTestDaemon *d, int signo)
{
  g_autoptr(GError) error = NULL;

  if (d->mamd == NULL)
    return -1;
  g_subprocess_send_signal (d->mamd, signo);
  g_subprocess_wait (d->mamd, NULL, &error);
  g_assert_no_error (error);
  d->exit_status = subprocess_status (d->mamd);
  g_clear_object (&d->mamd);
  return d->exit_status;
}

int
mamd_test_daemon_stop (MamdTestDaemon *d)
{
  return mamd_test_daemon_kill (d, SIGTERM);
}

typedef struct {
  gboolean done;
  gboolean exited;
} ExitWait;

static void
on_exited_by_itself (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ExitWait *wait = user_data;

  wait->exited = g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  wait->done = TRUE;
}

static gboolean
exit_wait_done (gpointer user_data)
{
  return ((ExitWait *) user_data)->done;
}

int
mamd_test_daemon_wait_exit (MamdTestDaemon *d, guint timeout_ms)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  ExitWait wait = { FALSE, FALSE };

  if (d->mamd == NULL)
    return -1;
  g_subprocess_wait_async (d->mamd, cancellable, on_exited_by_itself, &wait);
  if (!mamd_test_daemon_iterate_until (d, exit_wait_done, &wait, timeout_ms)) {
    /* the callback runs once more, cancelled: @wait must outlive it */
    g_cancellable_cancel (cancellable);
    while (!wait.done)
      g_main_context_iteration (NULL, TRUE);
  }
  if (!wait.exited)
    return -1;
  d->exit_status = subprocess_status (d->mamd);
  g_clear_object (&d->mamd);
  return d->exit_status;
}

void
mamd_test_daemon_set_file_size_limit (MamdTestDaemon *d, goffset bytes)
{
  d->file_size_limit = bytes;
}

void
mamd_test_daemon_setenv (MamdTestDaemon *d, const char *variable, const char *value)
{
  d->env = g_environ_setenv (d->env, variable, value, TRUE);
}

int
mamd_test_daemon_get_exit_status (MamdTestDaemon *d)
{
  return d->exit_status;
}

char *
mamd_test_daemon_get_log (MamdTestDaemon *d)
{
  char *contents = NULL;

  if (d->log_path == NULL || !g_file_get_contents (d->log_path, &contents, NULL, NULL))
    return NULL;
  return contents;
}

/* ---- the bus ---- */

GDBusConnection *
mamd_test_daemon_get_connection (MamdTestDaemon *d)
{
  return d->connection;
}

const char *
mamd_test_daemon_get_bus_address (MamdTestDaemon *d)
{
  return d->bus_address;
}

GVariant *
mamd_test_daemon_call (MamdTestDaemon *d, const char *method, GVariant *parameters,
                       const char *reply_type, GError **error)
{
  return g_dbus_connection_call_sync (d->connection, "org.mamd.Mamd1", "/org/mamd/Mamd1",
                                      "org.mamd.Mamd1.Manager", method, parameters,
                                      reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NO_AUTO_START, 120000, NULL, error);
}

GVariant *
mamd_test_credential (const char *object_id, const char *tenant_id, const char *user_name)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (object_id != NULL)
    g_variant_builder_add (&builder, "{sv}", "object-id", g_variant_new_string (object_id));
  if (tenant_id != NULL)
    g_variant_builder_add (&builder, "{sv}", "tenant-id", g_variant_new_string (tenant_id));
  if (user_name != NULL)
    g_variant_builder_add (&builder, "{sv}", "user-name", g_variant_new_string (user_name));
  return g_variant_builder_end (&builder);
}

GVariant *
mamd_test_device (const char *platform, const char *device_id)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "platform", g_variant_new_string (platform));
  g_variant_builder_add (&builder, "{sv}", "device-id", g_variant_new_string (device_id));
  return g_variant_builder_end (&builder);
}

GVariant *
mamd_test_daemon_sign_in (MamdTestDaemon *d, const char *server, const char *object_id,
                          const char *platform, const char *device_id, char **out_path,
                          GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *result = NULL;
  const char *path = NULL;

  reply = mamd_test_daemon_call (d, "SignIn",
                                 g_variant_new ("(ss@a{sv}@a{sv})", server, "test",
                                                mamd_test_credential (object_id,
                                                                      MAMD_TEST_TENANT_ID, NULL),
                                                mamd_test_device (platform, device_id)),
                                 "(oa{sv})", error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(&o@a{sv})", &path, &result);
  if (out_path != NULL)
    *out_path = g_strdup (path);
  return result;
}

char *
mamd_test_random_guid (void)
{
  return g_uuid_string_random ();
}

/* ---- recorded signals ---- */

GPtrArray *
mamd_test_daemon_get_signals (MamdTestDaemon *d)
{
  return d->signals;
}

static gboolean
on_wait_timeout (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
on_poll_tick (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

gboolean
mamd_test_daemon_iterate_until (MamdTestDaemon *d, gboolean (*done) (gpointer user_data),
                                gpointer user_data, guint timeout_ms)
{
  gboolean timed_out = FALSE;
  g_autoptr(GSource) timeout = g_timeout_source_new (timeout_ms);
  /* @done may watch what no source wakes the loop for (a log file, a
   * database, an answer to a synchronous call): look every 10 ms */
  g_autoptr(GSource) tick = g_timeout_source_new (10);

  g_source_set_callback (timeout, on_wait_timeout, &timed_out, NULL);
  g_source_attach (timeout, NULL);
  g_source_set_callback (tick, on_poll_tick, NULL, NULL);
  g_source_attach (tick, NULL);
  while (!done (user_data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (tick);
  g_source_destroy (timeout);
  return done (user_data);
}

static MamdTestSignal *
find_signal (MamdTestDaemon *d, const char *member, const char *arg0)
{
  for (guint i = 0; i < d->signals->len; i++) {
    MamdTestSignal *sig = g_ptr_array_index (d->signals, i);
    g_autoptr(GVariant) first = NULL;

    if (sig->consumed || g_strcmp0 (sig->member, member) != 0)
      continue;
    if (arg0 == NULL)
      return sig;
    if (g_variant_n_children (sig->parameters) == 0)
      continue;
    first = g_variant_get_child_value (sig->parameters, 0);
    if ((g_variant_is_of_type (first, G_VARIANT_TYPE_STRING) ||
         g_variant_is_of_type (first, G_VARIANT_TYPE_OBJECT_PATH)) &&
        g_strcmp0 (g_variant_get_string (first, NULL), arg0) == 0)
      return sig;
  }
  return NULL;
}

typedef struct {
  MamdTestDaemon *d;
  const char *member;
  const char *arg0;
} SignalWait;

static gboolean
signal_arrived (gpointer user_data)
{
  SignalWait *wait = user_data;

  return find_signal (wait->d, wait->member, wait->arg0) != NULL;
}

const MamdTestSignal *
mamd_test_daemon_wait_signal (MamdTestDaemon *d, const char *member, const char *arg0,
                              guint timeout_ms)
{
  SignalWait wait = { d, member, arg0 };
  MamdTestSignal *sig;

  mamd_test_daemon_iterate_until (d, signal_arrived, &wait, timeout_ms);
  sig = find_signal (d, member, arg0);
  if (sig != NULL)
    sig->consumed = TRUE;
  return sig;
}

typedef struct {
  MamdTestDaemon *d;
  const char *text;
} LogText;

static gboolean
log_says (gpointer user_data)
{
  const LogText *wait = user_data;
  g_autofree char *log = mamd_test_daemon_get_log (wait->d);

  return strstr (log, wait->text) != NULL;
}

gboolean
mamd_test_daemon_wait_log (MamdTestDaemon *d, const char *text, guint timeout_ms)
{
  LogText wait = { d, text };

  return mamd_test_daemon_iterate_until (d, log_says, &wait, timeout_ms);
}
