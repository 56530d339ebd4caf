/*
 * mamd: loads plugins, opens the state store, starts the engine, exports
 * the D-Bus API and then owns org.mamd.Mamd1. Reloads on SIGHUP and on
 * configuration or licence file changes; SIGTERM/SIGINT shut down cleanly.
 */
#include "config.h"

#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "mamd-dbus-adaptor.h"
#include "mamd-engine.h"
#include "mamd-log.h"
#include "mamd-plugin-loader.h"
#include "mamd-store.h"

#define RELOAD_DEBOUNCE_MS 500

typedef struct {
  GMainLoop *loop;
  int exit_status;
  char *config_dir;
  char *bus_description;     /* "system bus", "session bus", "bus at <address>" */
  MamdEngine *engine;
  MamdDbusAdaptor *adaptor;
  GDBusConnection *connection;
  guint name_owner_id;
  gboolean name_acquired;
  gboolean connection_closed;
  GPtrArray *watches;        /* Watch */
  guint debounce_id;
  guint rewatch_id;          /* the reload after a monitor was replaced */
  gboolean reload_running;
  gboolean reload_again;
  char *reload_again_origin;
} MamdDaemon;

static void
daemon_quit (MamdDaemon *daemon, int status)
{
  /* the first reason to stop wins */
  if (daemon->exit_status < 0)
    daemon->exit_status = status;
  g_main_loop_quit (daemon->loop);
}

/* ---- reload ---- */

static void daemon_reload (MamdDaemon *daemon, const char *origin);

typedef struct {
  MamdDaemon *daemon;
  char *origin;
} ReloadData;

static void
on_reload_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ReloadData *data = user_data;
  MamdDaemon *daemon = data->daemon;
  g_autoptr(GError) error = NULL;

  daemon->reload_running = FALSE;
  if (mamd_engine_reload_finish (MAMD_ENGINE (source), result, &error))
    g_message ("configuration reloaded (%s)", data->origin);
  else
    g_warning ("reload (%s) refused, the previous configuration stays: %s", data->origin,
               error->message);
  g_free (data->origin);
  g_free (data);

  if (daemon->reload_again) {
    g_autofree char *origin = g_steal_pointer (&daemon->reload_again_origin);

    daemon->reload_again = FALSE;
    daemon_reload (daemon, origin != NULL ? origin : "queued");
  }
}

static void
daemon_reload (MamdDaemon *daemon, const char *origin)
{
  ReloadData *data;

  /* a reload that started while mamd stops might commit after the last
   * signals went out, unannounced */
  if (daemon->exit_status >= 0) {
    g_message ("reload (%s) ignored: mamd is stopping", origin);
    return;
  }
  /* one at a time: a change during a reload is picked up right after it */
  if (daemon->reload_running) {
    daemon->reload_again = TRUE;
    g_free (daemon->reload_again_origin);
    daemon->reload_again_origin = g_strdup (origin);
    return;
  }
  g_debug ("reloading (%s)", origin);
  daemon->reload_running = TRUE;
  data = g_new0 (ReloadData, 1);
  data->daemon = daemon;
  data->origin = g_strdup (origin);
  mamd_engine_reload_async (daemon->engine, NULL, on_reload_done, data);
}

static gboolean
on_debounce (gpointer user_data)
{
  MamdDaemon *daemon = user_data;

  daemon->debounce_id = 0;
  daemon_reload (daemon, "file change");
  return G_SOURCE_REMOVE;
}

static void
on_file_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
                 gpointer user_data)
{
  MamdDaemon *daemon = user_data;

  /* editors write in several steps: wait until they have been quiet for a while */
  g_clear_handle_id (&daemon->debounce_id, g_source_remove);
  daemon->debounce_id = g_timeout_add (RELOAD_DEBOUNCE_MS, on_debounce, daemon);
}

/* A file or directory mamd watches. GIO's inotify backend watches a
 * directory (a file's parent), follows its inode and shares the watch
 * between monitors of one path: another directory at that path (a
 * swapped symlink, say) needs new monitors, all of them. */
typedef struct {
  char *path;
  gboolean directory;
  dev_t dev;           /* of the directory inotify watches */
  ino_t ino;
  GFileMonitor *monitor;
} Watch;

static void
watch_free (gpointer data)
{
  Watch *watch = data;

  g_file_monitor_cancel (watch->monitor);
  g_object_unref (watch->monitor);
  g_free (watch->path);
  g_free (watch);
}

/* stat() of the directory inotify watches for @path */
static gboolean
stat_watched_dir (const char *path, gboolean directory, struct stat *st)
{
  g_autofree char *dir = directory ? g_strdup (path) : g_path_get_dirname (path);

  return stat (dir, st) == 0;
}

static gboolean
watch_is_current (const Watch *watch)
{
  struct stat st;

  return stat_watched_dir (watch->path, watch->directory, &st) && st.st_dev == watch->dev &&
         st.st_ino == watch->ino;
}

static Watch *
watch_new (MamdDaemon *daemon, const char *path, gboolean directory, const struct stat *st)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GError) error = NULL;
  GFileMonitor *monitor;
  Watch *watch;

  if (directory)
    monitor = g_file_monitor_directory (file, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
  else
    monitor = g_file_monitor_file (file, G_FILE_MONITOR_WATCH_MOVES, NULL, &error);
  if (monitor == NULL) {
    g_warning ("cannot watch %s for changes (reload with SIGHUP instead): %s", path,
               error->message);
    return NULL;
  }
  g_signal_connect (monitor, "changed", G_CALLBACK (on_file_changed), daemon);
  watch = g_new0 (Watch, 1);
  watch->path = g_strdup (path);
  watch->directory = directory;
  watch->dev = st->st_dev;
  watch->ino = st->st_ino;
  watch->monitor = monitor;
  return watch;
}

/* Moves the watch of @path from the daemon's watches to @kept, or makes a
 * new one there. TRUE when it made one. */
static gboolean
keep_watch (MamdDaemon *daemon, GPtrArray *kept, const char *path, gboolean directory)
{
  struct stat st;
  Watch *watch;

  if (!stat_watched_dir (path, directory, &st))
    return FALSE;
  for (guint i = 0; i < daemon->watches->len; i++) {
    watch = g_ptr_array_index (daemon->watches, i);
    if (g_str_equal (watch->path, path) && watch->directory == directory) {
      g_ptr_array_add (kept, g_ptr_array_steal_index (daemon->watches, i));
      return FALSE;
    }
  }
  watch = watch_new (daemon, path, directory, &st);
  if (watch == NULL)
    return FALSE;
  g_ptr_array_add (kept, watch);
  return TRUE;
}

static gboolean
on_rewatch (gpointer user_data)
{
  MamdDaemon *daemon = user_data;

  daemon->rewatch_id = 0;
  daemon_reload (daemon, "watch renewed");
  return G_SOURCE_REMOVE;
}

/* Watches the configuration directory, servers.d and the licence file.
 * Monitors whose target is unchanged are kept: a new one misses what
 * changed before it existed, so after a replacement (not at start, just
 * after the files were read) the files are read once more. */
static void
update_watches (MamdDaemon *daemon, gboolean starting)
{
  const MamdConfig *config = mamd_engine_get_config (daemon->engine);
  g_autofree char *servers_dir = g_build_filename (daemon->config_dir, "servers.d", NULL);
  GPtrArray *kept = g_ptr_array_new_with_free_func (watch_free);
  gboolean created = FALSE;

  /* one stale watch, and GIO would hand new monitors its old directory */
  for (guint i = 0; i < daemon->watches->len; i++) {
    if (!watch_is_current (g_ptr_array_index (daemon->watches, i))) {
      g_ptr_array_set_size (daemon->watches, 0);
      break;
    }
  }
  created |= keep_watch (daemon, kept, daemon->config_dir, TRUE);
  created |= keep_watch (daemon, kept, servers_dir, TRUE);
  if (config != NULL && config->daemon != NULL && config->daemon->license_file != NULL)
    created |= keep_watch (daemon, kept, config->daemon->license_file, FALSE);
  g_ptr_array_unref (daemon->watches);
  daemon->watches = kept;
  if (created && !starting && daemon->rewatch_id == 0)
    daemon->rewatch_id = g_idle_add (on_rewatch, daemon);
}

/* Every reload, by SIGHUP, file change or D-Bus, may have moved what is
 * watched: the licence file with mamd.conf, a directory behind a symlink. */
static void
on_engine_reloaded (MamdEngine *engine, gpointer user_data)
{
  update_watches (user_data, FALSE);
}

/* ---- unix signals, engine failure ---- */

static gboolean
on_sigterm (gpointer user_data)
{
  MamdDaemon *daemon = user_data;

  g_message ("shutting down");
  daemon_quit (daemon, EXIT_SUCCESS);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sighup (gpointer user_data)
{
  daemon_reload (user_data, "SIGHUP");
  return G_SOURCE_CONTINUE;
}

static void
on_engine_fatal (MamdEngine *engine, const GError *error, gpointer user_data)
{
  /* a warning, not a critical: a failing disk is not a bug in mamd (and
   * G_DEBUG=fatal-criticals must not turn this clean exit into an abort) */
  g_warning ("exiting: memory may be ahead of the state store; once the disk is fixed a "
             "restart serves exactly the acknowledged state");
  daemon_quit (user_data, EXIT_FAILURE);
}

/* ---- the bus ---- */

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  MamdDaemon *daemon = user_data;

  daemon->name_acquired = TRUE;
  g_message ("serving %s on the %s", name, daemon->bus_description);
  mamd_engine_announce_pending_wipes (daemon->engine);
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer user_data)
{
  MamdDaemon *daemon = user_data;

  if (daemon->connection_closed)
    g_printerr ("mamd: lost the connection to the %s\n", daemon->bus_description);
  else
    g_printerr ("mamd: cannot own %s on the %s: is another mamd running, and does the bus "
                "policy allow this user?\n", name, daemon->bus_description);
  daemon_quit (daemon, EXIT_FAILURE);
}

static void
on_connection_closed (GDBusConnection *connection, gboolean remote_peer_vanished,
                      GError *error, gpointer user_data)
{
  MamdDaemon *daemon = user_data;

  daemon->connection_closed = TRUE;
  g_warning ("the %s connection closed%s%s", daemon->bus_description,
             error != NULL ? ": " : "", error != NULL ? error->message : "");
  daemon_quit (daemon, EXIT_FAILURE);
}

static GDBusConnection *
connect_bus (MamdDaemon *daemon, gboolean session_bus, const char *address, GError **error)
{
  GDBusConnection *connection;

  if (address != NULL) {
    daemon->bus_description = g_strdup_printf ("bus at %s", address);
    connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, error);
  } else {
    daemon->bus_description = g_strdup (session_bus ? "session bus" : "system bus");
    connection = g_bus_get_sync (session_bus ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL,
                                 error);
  }
  if (connection == NULL)
    g_prefix_error (error, "cannot connect to the %s: ", daemon->bus_description);
  return connection;
}

/* ---- start and stop ---- */

typedef struct {
  gboolean session_bus;
  char *bus_address;
  char *config_dir;
  char *state_dir;
  char *plugin_dir;
} MamdOptions;

static gboolean
daemon_start (MamdDaemon *daemon, const MamdOptions *options, GError **error)
{
  g_autoptr(MamdPluginLoader) plugins = mamd_plugin_loader_new ();
  g_autoptr(MamdStore) store = NULL;

  if (!mamd_plugin_loader_load_dir (plugins, options->plugin_dir, error))
    return FALSE;
  store = mamd_store_sqlite_open (options->state_dir, error);
  if (store == NULL)
    return FALSE;
  daemon->engine = mamd_engine_new (store, plugins);
  if (!mamd_engine_start (daemon->engine, options->config_dir, error))
    return FALSE;
  g_signal_connect (daemon->engine, "fatal", G_CALLBACK (on_engine_fatal), daemon);
  g_signal_connect (daemon->engine, "reloaded", G_CALLBACK (on_engine_reloaded), daemon);

  daemon->connection = connect_bus (daemon, options->session_bus, options->bus_address, error);
  if (daemon->connection == NULL)
    return FALSE;
  g_dbus_connection_set_exit_on_close (daemon->connection, FALSE);
  g_signal_connect (daemon->connection, "closed", G_CALLBACK (on_connection_closed), daemon);

  /* objects first, name second: a client that sees the name must find them */
  daemon->adaptor = mamd_dbus_adaptor_new (daemon->engine);
  if (daemon->adaptor == NULL) {
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_FAILED,
                         "the D-Bus interface description is unusable (broken build)");
    return FALSE;
  }
  if (!mamd_dbus_adaptor_export (daemon->adaptor, daemon->connection, error))
    return FALSE;
  daemon->name_owner_id = g_bus_own_name_on_connection (daemon->connection, MAMD_BUS_NAME,
                                                        G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                                        on_name_acquired, on_name_lost, daemon,
                                                        NULL);
  update_watches (daemon, TRUE);
  return TRUE;
}

static int
daemon_stop (MamdDaemon *daemon)
{
  g_autoptr(GError) error = NULL;
  int status = daemon->exit_status < 0 ? EXIT_SUCCESS : daemon->exit_status;

  g_clear_handle_id (&daemon->debounce_id, g_source_remove);
  g_clear_handle_id (&daemon->rewatch_id, g_source_remove);
  if (daemon->engine != NULL)
    g_signal_handlers_disconnect_by_func (daemon->engine, on_engine_reloaded, daemon);
  g_ptr_array_set_size (daemon->watches, 0);
  /* nothing new starts while the commits under way finish; mamd keeps its
   * name until their signals are out, so that clients subscribed by name
   * (mamctl monitor) get them */
  if (daemon->adaptor != NULL)
    mamd_dbus_adaptor_refuse_calls (daemon->adaptor);

  if (daemon->engine != NULL && !mamd_engine_shutdown (daemon->engine, &error)) {
    g_warning ("state may be incomplete: %s", error->message);
    status = EXIT_FAILURE;
  }
  /* every commit has answered; what still runs (a plugin authenticating)
   * is cancelled and answers Busy */
  if (daemon->adaptor != NULL)
    mamd_dbus_adaptor_cancel_calls (daemon->adaptor);
  /* let the cancelled calls answer and signals be queued; bounded, so a
   * client that keeps calling cannot hold the exit up */
  for (guint i = 0; i < 10000 && g_main_context_iteration (NULL, FALSE); i++)
    ;
  if (daemon->adaptor != NULL)
    mamd_dbus_adaptor_unexport (daemon->adaptor);
  if (daemon->connection != NULL && !daemon->connection_closed)
    g_dbus_connection_flush_sync (daemon->connection, NULL, NULL);
  if (daemon->name_owner_id != 0)
    g_bus_unown_name (daemon->name_owner_id);
  return status;
}

static void
daemon_free (MamdDaemon *daemon)
{
  g_clear_object (&daemon->adaptor);
  g_clear_object (&daemon->engine);
  g_clear_object (&daemon->connection);
  g_ptr_array_unref (daemon->watches);
  g_main_loop_unref (daemon->loop);
  g_free (daemon->config_dir);
  g_free (daemon->bus_description);
  g_free (daemon->reload_again_origin);
  g_free (daemon);
}

static void
options_clear (MamdOptions *options)
{
  g_free (options->bus_address);
  g_free (options->config_dir);
  g_free (options->state_dir);
  g_free (options->plugin_dir);
}

int
main (int argc, char **argv)
{
  MamdOptions options = { 0 };
  gboolean verbose = FALSE, version = FALSE;
  guint signal_ids[3];
  const GOptionEntry entries[] = {
    { "session-bus", 0, 0, G_OPTION_ARG_NONE, &options.session_bus,
      "Serve on the session bus instead of the system bus", NULL },
    { "bus-address", 0, 0, G_OPTION_ARG_STRING, &options.bus_address,
      "Serve on the message bus at ADDR (tests, private buses)", "ADDR" },
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &options.config_dir,
      "Read mamd.conf and servers.d/ from DIR (default " MAMD_CONFDIR ")", "DIR" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &options.state_dir,
      "Keep the state store in DIR (default " MAMD_STATEDIR ")", "DIR" },
    { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME, &options.plugin_dir,
      "Load identity plugins from DIR (default " MAMD_PLUGINDIR ")", "DIR" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  MamdDaemon *daemon;
  int status;

  setlocale (LC_ALL, "");
  /* the state store names users and devices: private whatever the caller's
   * umask and the state directory's mode (systemd sets UMask too) */
  umask (0077);
  /* GIO's proxy resolver reads GSettings: no dconf files in the state
   * directory (the mamd user's home) */
  g_setenv ("GSETTINGS_BACKEND", "memory", FALSE);
  mamd_log_init ();
  context = g_option_context_new ("- Intune-style app-management policy daemon");
  g_option_context_set_summary (context,
                                "Enforces mobile app-management (MAM) policy for chat servers "
                                "and serves org.mamd.Mamd1 on D-Bus.\n\n"
                                "Signals: SIGHUP reloads configuration and licence; SIGTERM "
                                "and SIGINT shut down cleanly.\n"
                                "mamd also reloads by itself 0.5 s after the last change to a "
                                "file in the configuration directory or its servers.d/, or to "
                                "the licence file: replace files atomically (write a new file, "
                                "then rename it over the old one).\n"
                                "Exit status: 0 after a clean shutdown, 1 when mamd cannot "
                                "start or must stop.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("mamd: %s (see mamd --help)\n", error->message);
    options_clear (&options);
    return EXIT_FAILURE;
  }
  if (version) {
    g_print ("mamd %s\n", MAMD_VERSION);
    options_clear (&options);
    return EXIT_SUCCESS;
  }
  if (options.session_bus && options.bus_address != NULL) {
    g_printerr ("mamd: --session-bus and --bus-address exclude each other\n");
    options_clear (&options);
    return EXIT_FAILURE;
  }
  if (verbose)
    g_log_set_debug_enabled (TRUE);
  if (options.config_dir == NULL)
    options.config_dir = g_strdup (MAMD_CONFDIR);
  if (options.state_dir == NULL)
    options.state_dir = g_strdup (MAMD_STATEDIR);
  if (options.plugin_dir == NULL)
    options.plugin_dir = g_strdup (MAMD_PLUGINDIR);

  daemon = g_new0 (MamdDaemon, 1);
  daemon->loop = g_main_loop_new (NULL, FALSE);
  daemon->exit_status = -1;
  daemon->config_dir = g_strdup (options.config_dir);
  daemon->watches = g_ptr_array_new_with_free_func (watch_free);

  /* before the name is owned: a SIGHUP (a reload) the moment a client
   * sees the name must not end mamd; the loop handles them once it runs */
  signal_ids[0] = g_unix_signal_add (SIGTERM, on_sigterm, daemon);
  signal_ids[1] = g_unix_signal_add (SIGINT, on_sigterm, daemon);
  signal_ids[2] = g_unix_signal_add (SIGHUP, on_sighup, daemon);
  if (!daemon_start (daemon, &options, &error)) {
    g_printerr ("mamd: cannot start: %s\n", error->message);
    for (guint i = 0; i < G_N_ELEMENTS (signal_ids); i++)
      g_source_remove (signal_ids[i]);
    if (daemon->engine != NULL)
      mamd_engine_shutdown (daemon->engine, NULL);
    daemon_free (daemon);
    options_clear (&options);
    return EXIT_FAILURE;
  }

  g_main_loop_run (daemon->loop);
  status = daemon_stop (daemon);
  daemon_free (daemon);
  options_clear (&options);
  return status;
}
