/*
 * Client-side helpers shared by the D-Bus test programs (test-dbus*.c):
 * calls, property reads and waits for signals of the real mamd on the
 * MamdTestDaemon fixture's private bus.
 */
#include "config.h"

#include <string.h>

#include "mamd-test-dbus-helpers.h"

MamdTestDaemon *
started_daemon (const char *daemon_conf_extra, const char *server_extra)
{
  g_autoptr(GError) error = NULL;
  MamdTestDaemon *d = mamd_test_daemon_new ();

  mamd_test_daemon_write_daemon_conf (d, daemon_conf_extra);
  mamd_test_daemon_write_license (d, "advanced", g_get_real_time () / G_USEC_PER_SEC + 86400 * 365);
  mamd_test_daemon_write_mam_server (d, SERVER, TRUE, server_extra);
  mamd_test_daemon_start (d, &error);
  g_assert_no_error (error);
  return d;
}

void
assert_dbus_error (const GError *error, const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, name) != 0)
    g_error ("expected %s, got %s: %s", name, remote, error->message);
}

guint64
dict_uint64 (GVariant *dict, const char *key)
{
  guint64 value = 0;

  g_assert_true (g_variant_lookup (dict, key, "t", &value));
  return value;
}

char *
dict_string (GVariant *dict, const char *key)
{
  char *value = NULL;

  g_assert_true (g_variant_lookup (dict, key, "s", &value));
  return value;
}

static GVariant *
get_property (MamdTestDaemon *d, const char *path, const char *iface, const char *name,
              GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (mamd_test_daemon_get_connection (d), "org.mamd.Mamd1",
                                       path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", iface, name), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return value;
}

char *
session_state (MamdTestDaemon *d, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = get_property (d, path, SESSION_IFACE, "State", &error);

  g_assert_no_error (error);
  return g_variant_dup_string (value, NULL);
}

guint64
last_event_seq (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = get_property (d, "/org/mamd/Mamd1", MANAGER_IFACE, "LastEventSeq",
                                            &error);

  g_assert_no_error (error);
  return g_variant_get_uint64 (value);
}

GVariant *
report (MamdTestDaemon *d, const char *path, const char *outcome, gint status, GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *result = NULL;

  reply = mamd_test_daemon_call (d, "ReportEnrollment",
                                 g_variant_new ("(osi)", path, outcome, status), "(a{sv})", error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(@a{sv})", &result);
  return result;
}

/* The seq carried as the last argument of a Manager signal. */
guint64
signal_seq (const MamdTestSignal *sig)
{
  gsize n = g_variant_n_children (sig->parameters);
  g_autoptr(GVariant) last = g_variant_get_child_value (sig->parameters, n - 1);

  return g_variant_get_uint64 (last);
}

const MamdTestSignal *
wait_signal (MamdTestDaemon *d, const char *member, const char *arg0)
{
  const MamdTestSignal *sig = mamd_test_daemon_wait_signal (d, member, arg0, WAIT_MS);

  if (sig == NULL)
    g_error ("no %s signal for %s arrived", member, arg0 != NULL ? arg0 : "anything");
  return sig;
}

/* A PropertiesChanged on @path whose State is @state. */
gboolean
has_state_change (MamdTestDaemon *d, const char *path, const char *state)
{
  GPtrArray *signals = mamd_test_daemon_get_signals (d);

  for (guint i = 0; i < signals->len; i++) {
    const MamdTestSignal *sig = g_ptr_array_index (signals, i);
    const char *iface = NULL, *value = NULL;
    g_autoptr(GVariant) changed = NULL;

    if (g_strcmp0 (sig->member, "PropertiesChanged") != 0 ||
        g_strcmp0 (sig->object_path, path) != 0)
      continue;
    g_variant_get (sig->parameters, "(&s@a{sv}@as)", &iface, &changed, NULL);
    if (g_strcmp0 (iface, SESSION_IFACE) == 0 &&
        g_variant_lookup (changed, "State", "&s", &value) && g_strcmp0 (value, state) == 0)
      return TRUE;
  }
  return FALSE;
}

typedef struct {
  MamdTestDaemon *d;
  const char *path;
  const char *state;
} StateWait;

static gboolean
state_change_arrived (gpointer user_data)
{
  StateWait *wait = user_data;

  return has_state_change (wait->d, wait->path, wait->state);
}

void
wait_state_change (MamdTestDaemon *d, const char *path, const char *state)
{
  StateWait wait = { d, path, state };

  if (!mamd_test_daemon_iterate_until (d, state_change_arrived, &wait, WAIT_MS))
    g_error ("no PropertiesChanged State=%s for %s", state, path);
}

gboolean
log_contains (gpointer user_data)
{
  LogWait *wait = user_data;
  g_autofree char *log = mamd_test_daemon_get_log (wait->d);
  guint found = 0;

  for (const char *at = log; at != NULL && (at = strstr (at, wait->text)) != NULL; at++)
    found++;
  return found >= MAX (wait->times, 1);
}
