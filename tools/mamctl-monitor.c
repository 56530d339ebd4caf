/*
 * mamctl monitor: prints every signal of org.mamd.Mamd1.Manager as it
 * arrives, one line each ("seq=N Name arg=value ..."), or one JSON object
 * per line with --json, until interrupted.
 */
#include "config.h"

#include <glib-unix.h>
#include <string.h>

#include "mamctl.h"
#include "mamd-resources.h"

typedef struct {
  MamctlContext *ctx;
  GMainLoop *loop;
  GDBusInterfaceInfo *iface; /* arg names of every signal, from the API XML */
  int status;
} Monitor;

static GDBusNodeInfo *
load_node_info (GError **error)
{
  g_autoptr(GBytes) xml = NULL;

  xml = g_resource_lookup_data (mamd_get_resource (), "/org/mamd/Mamd1/org.mamd.Mamd1.xml",
                                G_RESOURCE_LOOKUP_FLAGS_NONE, error);
  if (xml == NULL)
    return NULL;
  return g_dbus_node_info_new_for_xml (g_bytes_get_data (xml, NULL), error);
}

/* D-Bus arg names use '_', the dict keys everywhere else use '-' */
static char *
arg_key (const char *name)
{
  char *key = g_strdup (name);

  g_strdelimit (key, "_", '-');
  return key;
}

static void
print_human (const char *signal_name, GDBusSignalInfo *info, GVariant *parameters,
             guint64 seq)
{
  GString *line = g_string_new (NULL);
  guint i;

  g_string_append_printf (line, "seq=%" G_GUINT64_FORMAT " %s", seq, signal_name);
  for (i = 0; info->args != NULL && info->args[i] != NULL; i++)
    {
      g_autoptr(GVariant) value = g_variant_get_child_value (parameters, i);
      g_autofree char *key = arg_key (info->args[i]->name);
      g_autofree char *text = NULL;
      g_autofree char *quoted = NULL;

      if (strcmp (key, "seq") == 0)
        continue;
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
        text = g_strdup (mamctl_session_id_from_path (g_variant_get_string (value, NULL)));
      else
        text = mamctl_format_value (key, value);
      quoted = mamctl_logfmt_quote (text);
      g_string_append_printf (line, " %s=%s", key, quoted);
    }
  g_print ("%s\n", line->str);
  g_string_free (line, TRUE);
  fflush (stdout);
}

static void
print_json (const char *signal_name, GDBusSignalInfo *info, GVariant *parameters)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  guint i;

  json_object_set_string_member (object, "signal", signal_name);
  for (i = 0; info->args != NULL && info->args[i] != NULL; i++)
    {
      g_autoptr(GVariant) value = g_variant_get_child_value (parameters, i);
      g_autofree char *key = arg_key (info->args[i]->name);

      if (g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
        {
          const char *path = g_variant_get_string (value, NULL);
          g_autofree char *path_key = g_strconcat (key, "-path", NULL);

          json_object_set_string_member (object, key, mamctl_session_id_from_path (path));
          json_object_set_string_member (object, path_key, path);
        }
      else
        json_object_set_member (object, key, json_gvariant_serialize (value));
    }
  json_node_set_object (node, object);
  mamctl_print_json_node (node, FALSE, stdout);
}

static void
on_signal (GDBusConnection *bus, const char *sender, const char *path, const char *iface,
           const char *signal_name, GVariant *parameters, gpointer user_data)
{
  Monitor *monitor = user_data;
  GDBusSignalInfo *info = g_dbus_interface_info_lookup_signal (monitor->iface, signal_name);
  guint64 seq = 0;
  guint i;

  /* a signal this mamctl does not know (newer daemon): still show it, in
   * GVariant text form, which escapes control characters itself */
  if (info == NULL || g_variant_n_children (parameters) != g_strv_length ((char **) info->args))
    {
      g_autofree char *text = g_variant_print (parameters, FALSE);
      if (monitor->ctx->json)
        {
          g_autoptr(JsonObject) object = json_object_new ();
          g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);

          json_object_set_string_member (object, "signal", signal_name);
          json_object_set_member (object, "args", json_gvariant_serialize (parameters));
          json_node_set_object (node, object);
          mamctl_print_json_node (node, FALSE, stdout);
        }
      else
        {
          g_print ("%s %s\n", signal_name, text);
          fflush (stdout);
        }
      return;
    }

  for (i = 0; info->args[i] != NULL; i++)
    if (strcmp (info->args[i]->name, "seq") == 0)
      g_variant_get_child (parameters, i, "t", &seq);

  if (monitor->ctx->json)
    print_json (signal_name, info, parameters);
  else
    print_human (signal_name, info, parameters, seq);
}

static gboolean
on_quit_signal (gpointer user_data)
{
  Monitor *monitor = user_data;

  g_main_loop_quit (monitor->loop);
  return G_SOURCE_CONTINUE;
}

static void
on_closed (GDBusConnection *bus, gboolean remote_peer_vanished, GError *error,
           gpointer user_data)
{
  Monitor *monitor = user_data;
  g_autofree char *message = mamctl_escape (error != NULL ? error->message : NULL);

  g_printerr ("mamctl: the bus connection closed%s%s\n", error != NULL ? ": " : "", message);
  monitor->status = MAMCTL_EXIT_UNREACHABLE;
  g_main_loop_quit (monitor->loop);
}

static void
on_name_appeared (GDBusConnection *bus, const char *name, const char *owner,
                  gpointer user_data)
{
  g_printerr ("mamctl: %s is on the bus (%s)\n", name, owner);
}

static void
on_name_vanished (GDBusConnection *bus, const char *name, gpointer user_data)
{
  g_printerr ("mamctl: %s left the bus; waiting for it to come back\n", name);
}

int
mamctl_cmd_monitor (MamctlContext *ctx, int argc, char **argv, GError **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  Monitor monitor = { ctx, NULL, NULL, MAMCTL_EXIT_OK };
  const MamctlCommand *commands;
  GDBusConnection *bus;
  guint n, i, subscription, watch, sigint, sigterm;
  gulong closed;

  commands = mamctl_get_commands (&n);
  for (i = 0; i < n && strcmp (commands[i].name, "monitor") != 0; i++)
    ;
  context = mamctl_option_context_new (ctx, &commands[i], NULL);
  if (!mamctl_parse_command (ctx, context, &argc, &argv, 0, 0, error))
    return MAMCTL_EXIT_USAGE;

  node = load_node_info (error);
  if (node == NULL)
    return MAMCTL_EXIT_ERROR;
  monitor.iface = g_dbus_node_info_lookup_interface (node, MAMCTL_MANAGER_IFACE);
  bus = mamctl_get_bus (ctx, error);
  if (bus == NULL)
    return MAMCTL_EXIT_UNREACHABLE;

  loop = g_main_loop_new (NULL, FALSE);
  monitor.loop = loop;
  subscription = g_dbus_connection_signal_subscribe (bus, MAMCTL_BUS_NAME, MAMCTL_MANAGER_IFACE,
                                                     NULL, MAMCTL_OBJECT_PATH, NULL,
                                                     G_DBUS_SIGNAL_FLAGS_NONE, on_signal,
                                                     &monitor, NULL);
  /* the bus handles our messages in order, so once this call returns the
   * match rule is in place: nothing emitted after the "monitoring" line is
   * missed (scripts wait for that line); it also proves mamd is there */
  status = mamctl_call (ctx, MAMCTL_OBJECT_PATH, MAMCTL_MANAGER_IFACE, "GetStatus", NULL,
                        G_VARIANT_TYPE ("(a{sv})"), -1, error);
  if (status == NULL)
    {
      g_dbus_connection_signal_unsubscribe (bus, subscription);
      return MAMCTL_EXIT_ERROR;
    }
  g_printerr ("mamctl: monitoring %s signals (interrupt to stop)\n", MAMCTL_BUS_NAME);

  closed = g_signal_connect (bus, "closed", G_CALLBACK (on_closed), &monitor);
  watch = g_bus_watch_name_on_connection (bus, MAMCTL_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          on_name_appeared, on_name_vanished, NULL, NULL);
  sigint = g_unix_signal_add (SIGINT, on_quit_signal, &monitor);
  sigterm = g_unix_signal_add (SIGTERM, on_quit_signal, &monitor);

  g_main_loop_run (loop);

  g_source_remove (sigint);
  g_source_remove (sigterm);
  g_bus_unwatch_name (watch);
  g_signal_handler_disconnect (bus, closed);
  g_dbus_connection_signal_unsubscribe (bus, subscription);
  if (monitor.status == MAMCTL_EXIT_UNREACHABLE)
    g_set_error_literal (error, MAMCTL_ERROR, MAMCTL_ERROR_UNREACHABLE,
                         "lost the connection to the bus");
  return monitor.status;
}
