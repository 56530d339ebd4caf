/*
 * Black-box tests of the real mamd binary on a private dbus-daemon: the
 * guide's flows as seen over D-Bus (replies, signals, properties), the
 * documented shapes of every reply and the session objects. Start-up, reload
 * and restarts are in test-dbus-lifecycle.c; error names, secrecy of
 * credentials, the authorization gate and the per-sender caps in
 * test-dbus-errors.c.
 */
#include "config.h"

#include <string.h>

#include "mamd-plugin.h"
#include "mamd-test-dbus-helpers.h"

/* ---- sign-in and the flows ---- */

static void
test_sign_in_signal (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *state = NULL;
  g_autofree char *prop_state = NULL;
  g_autofree char *server = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *log = NULL;
  g_autofree char *audit = NULL;
  g_auto(GStrv) parts = NULL;
  const char *prefix;
  const MamdTestSignal *sig;
  gboolean mam_required = FALSE;
  guint64 seq;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000002", "ios",
                                     "device-1", &path, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (path, "/org/mamd/Mamd1/session/"));
  state = dict_string (result, "state");
  g_assert_cmpstr (state, ==, "enrollment-required");
  g_assert_true (g_variant_lookup (result, "mam-required", "b", &mam_required));
  g_assert_true (mam_required);
  seq = dict_uint64 (result, "seq");
  g_assert_cmpuint (seq, >, 0);

  sig = wait_signal (d, "EnrollmentRequired", path);
  g_variant_get (sig->parameters, "(&osst)", NULL, &server, &reason, NULL);
  g_assert_cmpstr (server, ==, SERVER);
  g_assert_cmpstr (reason, !=, "");
  g_assert_cmpuint (signal_seq (sig), ==, seq);
  /* a new session object gets no PropertiesChanged: it is read with Get */
  g_assert_false (has_state_change (d, path, "enrollment-required"));

  prop_state = session_state (d, path);
  g_assert_cmpstr (prop_state, ==, "enrollment-required");
  g_assert_cmpuint (last_event_seq (d), >=, seq);

  /* the audit line was written once the event was durable, before the
   * reply: one line, in GLib's layout, with the event's seq and ids */
  log = mamd_test_daemon_get_log (d);
  audit = g_strdup_printf ("event session-created #%" G_GUINT64_FORMAT " server %s session %s: "
                           "Intune MAM enrollment is required by server %s\n",
                           seq, SERVER, path + strlen ("/org/mamd/Mamd1/session/"), SERVER);
  parts = g_strsplit (log, audit, -1);
  g_assert_cmpuint (g_strv_length (parts), ==, 2);
  prefix = strrchr (parts[0], '\n');
  prefix = prefix != NULL ? prefix + 1 : parts[0];
  g_assert_true (g_regex_match_simple ("^mamd-Message: [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}: $",
                                       prefix, 0, 0));
}

static void
test_full_flow (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) declined = NULL;
  g_autoptr(GVariant) failed = NULL;
  g_autoptr(GVariant) again = NULL;
  g_autoptr(GVariant) readd = NULL;
  g_autoptr(GVariant) wipes = NULL;
  g_autoptr(GVariant) ack = NULL;
  g_autofree char *path = NULL;
  g_autofree char *path2 = NULL;
  g_autofree char *state = NULL;
  g_autofree char *wipe_id = NULL;
  const char *oid = "0c0ffee0-0000-4000-8000-000000000003";
  const MamdTestSignal *sig;
  guint64 seq_required, seq_declined, seq_revoked, seq_wipe, seq_readd, seq_ack;
  gboolean found = FALSE;

  result = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "device-1", &path, &error);
  g_assert_no_error (error);
  seq_required = dict_uint64 (result, "seq");
  wait_signal (d, "EnrollmentRequired", path);

  /* declined: stays restricted, retry allowed */
  declined = report (d, path, "declined", 219, &error);
  g_assert_no_error (error);
  state = dict_string (declined, "state");
  g_assert_cmpstr (state, ==, "declined");
  sig = wait_signal (d, "EnrollmentDeclined", path);
  seq_declined = signal_seq (sig);
  g_assert_cmpuint (seq_declined, >, seq_required);
  wait_state_change (d, path, "declined");

  /* the retry fails technically: revoked, server removed, wipe requested */
  failed = report (d, path, "", 201, &error);
  g_assert_no_error (error);
  g_clear_pointer (&state, g_free);
  state = dict_string (failed, "state");
  g_assert_cmpstr (state, ==, "revoked");
  sig = wait_signal (d, "SessionRevoked", path);
  seq_revoked = signal_seq (sig);
  g_assert_cmpuint (seq_revoked, >, seq_declined);
  sig = wait_signal (d, "WipeRequested", NULL);
  {
    const char *server, *device, *object_id;
    g_variant_get (sig->parameters, "(s&s&s&st)", &wipe_id, &server, &device, &object_id,
                   &seq_wipe);
    g_assert_cmpstr (server, ==, SERVER);
    g_assert_cmpstr (device, ==, "device-1");
    g_assert_cmpstr (object_id, ==, oid);
  }
  g_assert_cmpuint (seq_wipe, >, seq_revoked);
  wait_state_change (d, path, "revoked");

  wipes = mamd_test_daemon_call (d, "ListWipes", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) list = g_variant_get_child_value (wipes, 0);
    for (gsize i = 0; i < g_variant_n_children (list); i++) {
      g_autoptr(GVariant) entry = g_variant_get_child_value (list, i);
      g_autofree char *id = dict_string (entry, "id");
      found = found || g_strcmp0 (id, wipe_id) == 0;
    }
  }
  g_assert_true (found);

  /* no retry until the server is added again */
  again = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "device-1", NULL, &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.ServerRemoved");
  g_clear_error (&error);
  g_assert_null (again);

  /* no re-add while the wipe is pending: the device acknowledges it first */
  readd = mamd_test_daemon_call (d, "ReAddServer", g_variant_new ("(ss)", SERVER, "device-1"),
                                 "(t)", &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidState");
  g_assert_nonnull (strstr (error->message, wipe_id));
  g_clear_error (&error);

  /* each answer carries the seq of its own, newest event */
  ack = mamd_test_daemon_call (d, "AcknowledgeWipe", g_variant_new ("(s)", wipe_id), "(t)",
                               &error);
  g_assert_no_error (error);
  g_variant_get (ack, "(t)", &seq_ack);
  g_assert_cmpuint (seq_ack, >, seq_wipe);
  g_assert_cmpuint (seq_ack, ==, last_event_seq (d));
  readd = mamd_test_daemon_call (d, "ReAddServer", g_variant_new ("(ss)", SERVER, "device-1"),
                                 "(t)", &error);
  g_assert_no_error (error);
  g_variant_get (readd, "(t)", &seq_readd);
  g_assert_cmpuint (seq_readd, >, seq_ack);
  g_assert_cmpuint (seq_readd, ==, last_event_seq (d));
  again = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", "device-1", &path2, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (path2, !=, path);
  g_assert_cmpuint (dict_uint64 (again, "seq"), >, seq_readd);

  g_clear_pointer (&ack, g_variant_unref);
  ack = mamd_test_daemon_call (d, "AcknowledgeWipe", g_variant_new ("(s)", wipe_id), "(t)",
                               &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.NotFound");
}

/* ---- shapes ---- */

typedef struct {
  const char *key;
  const char *type;
} KeyType;

static void
assert_dict_shape (GVariant *dict, const KeyType *keys, gsize n_keys)
{
  g_assert_cmpstr (g_variant_get_type_string (dict), ==, "a{sv}");
  for (gsize i = 0; i < n_keys; i++) {
    g_autoptr(GVariant) value = g_variant_lookup_value (dict, keys[i].key, NULL);

    if (value == NULL)
      g_error ("key %s missing", keys[i].key);
    if (!g_str_equal (g_variant_get_type_string (value), keys[i].type))
      g_error ("key %s has type %s, documented %s", keys[i].key,
               g_variant_get_type_string (value), keys[i].type);
  }
  g_assert_cmpuint (g_variant_n_children (dict), ==, n_keys);
}

static void
assert_list_shape (MamdTestDaemon *d, const char *method, GVariant *args, const KeyType *keys,
                   gsize n_keys, gsize expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = mamd_test_daemon_call (d, method, args, "(aa{sv})", &error);
  g_autoptr(GVariant) list = NULL;

  g_assert_no_error (error);
  list = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (list), ==, expected);
  for (gsize i = 0; i < g_variant_n_children (list); i++) {
    g_autoptr(GVariant) entry = g_variant_get_child_value (list, i);
    assert_dict_shape (entry, keys, n_keys);
  }
}

static void
test_shapes (void)
{
  static const KeyType status_keys[] = {
    { "version", "s" }, { "licensed", "b" }, { "license-reason", "s" }, { "licensee", "s" },
    { "sku", "s" }, { "license-expires", "x" }, { "servers", "u" }, { "sessions", "u" },
    { "pending-wipes", "u" }, { "last-seq", "t" }, { "plugins", "u" },
    { "plugins-disabled", "u" },
  };
  static const KeyType server_keys[] = {
    { "id", "s" }, { "name", "s" }, { "enable", "b" }, { "tenant-id", "s" },
    { "client-id", "s" }, { "auth-service", "s" }, { "scope", "s" }, { "gate-open", "b" },
    { "gate-reason", "s" }, { "gate-error", "s" }, { "sessions", "u" }, { "findings", "as" },
  };
  static const KeyType session_keys[] = {
    { "id", "s" }, { "object-path", "o" }, { "server", "s" }, { "method", "s" },
    { "object-id", "s" }, { "tenant-id", "s" }, { "user-name", "s" }, { "device-id", "s" },
    { "platform", "s" }, { "state", "s" }, { "reason", "s" }, { "mam-required", "b" },
    { "created", "x" }, { "updated", "x" }, { "seq", "t" },
  };
  static const KeyType plugin_keys[] = {
    { "method", "s" }, { "module", "s" }, { "version", "s" }, { "path", "s" },
    { "capabilities", "as" }, { "enabled", "b" }, { "disabled-reason", "s" },
    { "description", "s" },
  };
  static const KeyType wipe_keys[] = {
    { "id", "s" }, { "server", "s" }, { "device-id", "s" }, { "object-id", "s" },
    { "session", "s" }, { "reason", "s" }, { "created", "x" }, { "expires", "x" }, { "seq", "t" },
  };
  static const KeyType result_keys[] = {
    { "state", "s" }, { "mam-required", "b" }, { "object-id", "s" }, { "tenant-id", "s" },
    { "user-name", "s" }, { "reason", "s" }, { "decision-id", "s" }, { "seq", "t" },
  };
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) dict = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) failed = NULL;
  g_autoptr(GVariant) access = NULL;
  g_autofree char *path = NULL;
  g_autofree char *version = NULL;
  gboolean licensed = FALSE;
  guint32 n_sessions = 0, n_wipes = 0;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-00000000000e", "ios",
                                     "dev-a", &path, &error);
  g_assert_no_error (error);
  assert_dict_shape (result, result_keys, G_N_ELEMENTS (result_keys));
  {
    g_autoptr(GVariant) other = mamd_test_daemon_sign_in (d, SERVER,
                                                          "0c0ffee0-0000-4000-8000-00000000000f",
                                                          "ios", "dev-b", NULL, &error);
    g_assert_no_error (error);
  }
  failed = report (d, path, "failed", 201, &error);
  g_assert_no_error (error);
  assert_dict_shape (failed, result_keys, G_N_ELEMENTS (result_keys));

  access = mamd_test_daemon_call (d, "CheckAccess", g_variant_new ("(o)", path), "(bss)", &error);
  g_assert_no_error (error);
  {
    gboolean allowed = TRUE;
    const char *state = NULL, *reason = NULL;
    g_variant_get (access, "(b&s&s)", &allowed, &state, &reason);
    g_assert_false (allowed);
    g_assert_cmpstr (state, ==, "revoked");
    g_assert_cmpstr (reason, !=, "");
  }

  status = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_assert_no_error (error);
  dict = g_variant_get_child_value (status, 0);
  assert_dict_shape (dict, status_keys, G_N_ELEMENTS (status_keys));
  g_assert_true (g_variant_lookup (dict, "version", "s", &version));
  g_assert_cmpstr (version, ==, MAMD_VERSION);
  g_assert_true (g_variant_lookup (dict, "licensed", "b", &licensed));
  g_assert_true (licensed);
  g_assert_true (g_variant_lookup (dict, "sessions", "u", &n_sessions));
  g_assert_cmpuint (n_sessions, ==, 2);
  g_assert_true (g_variant_lookup (dict, "pending-wipes", "u", &n_wipes));
  g_assert_cmpuint (n_wipes, ==, 1);

  assert_list_shape (d, "ListServers", NULL, server_keys, G_N_ELEMENTS (server_keys), 1);
  assert_list_shape (d, "ListSessions", g_variant_new ("(s)", ""), session_keys,
                     G_N_ELEMENTS (session_keys), 2);
  assert_list_shape (d, "ListSessions", g_variant_new ("(s)", "other-server"), session_keys,
                     G_N_ELEMENTS (session_keys), 0);
  assert_list_shape (d, "ListPlugins", NULL, plugin_keys, G_N_ELEMENTS (plugin_keys), 1);
  assert_list_shape (d, "ListWipes", NULL, wipe_keys, G_N_ELEMENTS (wipe_keys), 1);
}

static void
test_session_objects (void)
{
  static const KeyType property_types[] = {
    { "Id", "s" }, { "Server", "s" }, { "AuthMethod", "s" }, { "ObjectId", "s" },
    { "TenantId", "s" }, { "UserName", "s" }, { "DeviceId", "s" }, { "Platform", "s" },
    { "State", "s" }, { "Reason", "s" }, { "MamRequired", "b" }, { "Created", "x" },
    { "Updated", "x" }, { "Seq", "t" },
  };
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  GDBusConnection *connection = mamd_test_daemon_get_connection (d);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) xml = NULL;
  g_autoptr(GVariant) root_xml = NULL;
  g_autoptr(GVariant) all = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GVariant) gone = NULL;
  g_autoptr(GVariant) signed_out = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GDBusNodeInfo) root = NULL;
  g_autofree char *path = NULL;
  g_autofree char *id = NULL;
  g_autofree char *object_id = NULL;
  const char *text;
  gboolean listed = FALSE;
  guint64 seq = 0;

  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000010", "ios",
                                     "dev", &path, &error);
  g_assert_no_error (error);

  xml = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", path,
                                     "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                     G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                     &error);
  g_assert_no_error (error);
  g_variant_get (xml, "(&s)", &text);
  node = g_dbus_node_info_new_for_xml (text, &error);
  g_assert_no_error (error);
  g_assert_nonnull (g_dbus_node_info_lookup_interface (node, SESSION_IFACE));

  /* the subtree enumerates no session: introspection checks no role, and
   * ids are for their owners (ListSessions); the object answers all the same */
  root_xml = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", "/org/mamd/Mamd1/session",
                                          "org.freedesktop.DBus.Introspectable", "Introspect",
                                          NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                          NULL, &error);
  g_assert_no_error (error);
  g_variant_get (root_xml, "(&s)", &text);
  root = g_dbus_node_info_new_for_xml (text, &error);
  g_assert_no_error (error);
  for (guint i = 0; root->nodes != NULL && root->nodes[i] != NULL; i++)
    listed = listed || g_str_has_suffix (path, root->nodes[i]->path);
  g_assert_false (listed);
  g_assert_true (root->nodes == NULL || root->nodes[0] == NULL);

  all = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", path,
                                     "org.freedesktop.DBus.Properties", "GetAll",
                                     g_variant_new ("(s)", SESSION_IFACE),
                                     G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                     &error);
  g_assert_no_error (error);
  props = g_variant_get_child_value (all, 0);
  assert_dict_shape (props, property_types, G_N_ELEMENTS (property_types));
  g_assert_true (g_variant_lookup (props, "Id", "s", &id));
  g_assert_true (g_str_has_suffix (path, id));
  g_assert_true (g_variant_lookup (props, "ObjectId", "s", &object_id));
  g_assert_cmpstr (object_id, ==, "0c0ffee0-0000-4000-8000-000000000010");

  /* signed out: the object disappears */
  signed_out = mamd_test_daemon_call (d, "SignOut", g_variant_new ("(o)", path), "(t)", &error);
  g_assert_no_error (error);
  g_variant_get (signed_out, "(t)", &seq);
  g_assert_cmpuint (seq, ==, last_event_seq (d));
  gone = g_dbus_connection_call_sync (connection, "org.mamd.Mamd1", path,
                                      "org.freedesktop.DBus.Properties", "GetAll",
                                      g_variant_new ("(s)", SESSION_IFACE),
                                      G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                      &error);
  g_assert_null (gone);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.NotFound");
}

/* Not every event has a signal, so the seqs of the signals have gaps that
 * are no lost signals: a sign-in MAM does not evaluate, and the removal of
 * the server between a failed enrollment's SessionRevoked and its
 * WipeRequested, take a seq each. A session's Seq is that of its last
 * change, not of the last event naming it (its wipe's, say). */
static void
test_seq_gaps (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) plain = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autoptr(GVariant) failed = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) wipes = NULL;
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) entry = NULL;
  g_autofree char *path = NULL;
  g_autofree char *plain_path = NULL;
  g_autofree char *wipe_session = NULL;
  GPtrArray *signals;
  const MamdTestSignal *sig;
  guint64 seq_plain, seq_required, seq_revoked, seq_wipe;
  guint mark;

  mamd_test_daemon_write_mam_server (d, "plain", FALSE, NULL);
  reply = mamd_test_daemon_call (d, "Reload", NULL, NULL, &error);
  g_assert_no_error (error);
  wait_signal (d, "PolicyChanged", "plain");

  mark = mamd_test_daemon_get_signals (d)->len;
  plain = mamd_test_daemon_sign_in (d, "plain", "0c0ffee0-0000-4000-8000-000000000020", "ios",
                                    "device-plain", &plain_path, &error);
  g_assert_no_error (error);
  seq_plain = dict_uint64 (plain, "seq");
  result = mamd_test_daemon_sign_in (d, SERVER, "0c0ffee0-0000-4000-8000-000000000021", "ios",
                                     "device-1", &path, &error);
  g_assert_no_error (error);
  seq_required = dict_uint64 (result, "seq");
  g_assert_cmpuint (seq_required, ==, seq_plain + 1);
  failed = report (d, path, "failed", 201, &error);
  g_assert_no_error (error);
  seq_revoked = dict_uint64 (failed, "seq");
  sig = wait_signal (d, "WipeRequested", NULL);
  seq_wipe = signal_seq (sig);
  g_assert_cmpuint (seq_revoked, ==, seq_required + 1);
  g_assert_cmpuint (seq_wipe, ==, seq_revoked + 2); /* the server's removal is seq_revoked + 1 */

  /* the Manager's signals since: seq_required, seq_revoked, seq_wipe, nothing else */
  signals = mamd_test_daemon_get_signals (d);
  {
    const guint64 expected[] = { seq_required, seq_revoked, seq_wipe };
    guint n = 0;

    for (guint i = mark; i < signals->len; i++) {
      const MamdTestSignal *s = g_ptr_array_index (signals, i);

      if (g_strcmp0 (s->interface, MANAGER_IFACE) != 0)
        continue;
      g_assert_cmpuint (n, <, G_N_ELEMENTS (expected));
      g_assert_cmpuint (signal_seq (s), ==, expected[n]);
      n++;
    }
    g_assert_cmpuint (n, ==, G_N_ELEMENTS (expected));
  }

  /* Seq: the revocation, although the wipe, a later event, names the session */
  g_clear_pointer (&reply, g_variant_unref);
  reply = g_dbus_connection_call_sync (mamd_test_daemon_get_connection (d), "org.mamd.Mamd1",
                                       path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", SESSION_IFACE, "Seq"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  g_assert_cmpuint (g_variant_get_uint64 (value), ==, seq_revoked);
  wipes = mamd_test_daemon_call (d, "ListWipes", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  list = g_variant_get_child_value (wipes, 0);
  g_assert_cmpuint (g_variant_n_children (list), ==, 1);
  entry = g_variant_get_child_value (list, 0);
  wipe_session = dict_string (entry, "session");
  g_assert_true (g_str_has_suffix (path, wipe_session));
  g_assert_cmpuint (dict_uint64 (entry, "seq"), ==, seq_wipe);
}

/* ListSessionsPage walks the ListSessions list a page at a time: same
 * sessions, same order, none twice, also when the session a cursor names
 * is signed out before the next page. */
static void
test_list_pages (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) all_reply = NULL;
  g_autoptr(GVariant) all = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GPtrArray) paged = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *cursor = g_strdup ("");
  guint pages = 0;

  for (guint i = 0; i < 5; i++) {
    g_autofree char *oid = g_strdup_printf ("0c0ffee0-0000-4000-8000-0000000001%02u", i);
    g_autofree char *device = g_strdup_printf ("device-%u", i);
    g_autoptr(GVariant) result = mamd_test_daemon_sign_in (d, SERVER, oid, "ios", device, NULL,
                                                           &error);

    g_assert_no_error (error);
  }
  all_reply = mamd_test_daemon_call (d, "ListSessions", g_variant_new ("(s)", ""), "(aa{sv})",
                                     &error);
  g_assert_no_error (error);
  all = g_variant_get_child_value (all_reply, 0);
  g_assert_cmpuint (g_variant_n_children (all), ==, 5);

  do {
    g_autoptr(GVariant) page = NULL;

    g_clear_pointer (&reply, g_variant_unref);
    reply = mamd_test_daemon_call (d, "ListSessionsPage", g_variant_new ("(ssu)", "", cursor, 2),
                                   "(aa{sv}s)", &error);
    g_assert_no_error (error);
    g_free (cursor);
    g_variant_get (reply, "(@aa{sv}s)", &page, &cursor);
    g_assert_cmpuint (g_variant_n_children (page), ==, pages < 2 ? 2 : 1);
    for (gsize i = 0; i < g_variant_n_children (page); i++) {
      g_autoptr(GVariant) entry = g_variant_get_child_value (page, i);

      g_ptr_array_add (paged, dict_string (entry, "id"));
    }
    /* the session the cursor names goes: the next page starts after it all the same */
    if (pages == 0) {
      g_autoptr(GVariant) last = g_variant_get_child_value (page, 1);
      g_autofree char *path = NULL;
      g_autoptr(GVariant) out = NULL;

      g_assert_true (g_variant_lookup (last, "object-path", "o", &path));
      out = mamd_test_daemon_call (d, "SignOut", g_variant_new ("(o)", path), "(t)", &error);
      g_assert_no_error (error);
    }
    pages++;
  } while (cursor[0] != '\0');
  g_assert_cmpuint (pages, ==, 3);
  g_assert_cmpuint (paged->len, ==, 5);
  for (guint i = 0; i < paged->len; i++) {
    g_autoptr(GVariant) entry = g_variant_get_child_value (all, i);
    g_autofree char *id = dict_string (entry, "id");

    g_assert_cmpstr (g_ptr_array_index (paged, i), ==, id);
  }

  /* 0: the default page, all of the four left */
  g_clear_pointer (&reply, g_variant_unref);
  reply = mamd_test_daemon_call (d, "ListSessionsPage", g_variant_new ("(ssu)", SERVER, "", 0),
                                 "(aa{sv}s)", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) page = NULL;
    const char *next;

    g_variant_get (reply, "(@aa{sv}&s)", &page, &next);
    g_assert_cmpuint (g_variant_n_children (page), ==, 4);
    g_assert_cmpstr (next, ==, "");
  }

  /* a cursor it did not make, a page too large */
  g_clear_pointer (&reply, g_variant_unref);
  reply = mamd_test_daemon_call (d, "ListSessionsPage", g_variant_new ("(ssu)", "", "12:zz", 2),
                                 "(aa{sv}s)", &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_assert_nonnull (strstr (error->message, "cursor"));
  g_clear_error (&error);
  reply = mamd_test_daemon_call (d, "ListSessionsPage", g_variant_new ("(ssu)", "", "", 10001),
                                 "(aa{sv}s)", &error);
  assert_dbus_error (error, "org.mamd.Mamd1.Error.InvalidArgs");
  g_assert_nonnull (strstr (error->message, "at most 10000"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* the client side maps org.mamd.Mamd1.Error.* names too */
  (void) mamd_error_quark ();

  g_test_add_func ("/mamd/dbus/sign-in/enrollment-required", test_sign_in_signal);
  g_test_add_func ("/mamd/dbus/flow/declined-retry-failed", test_full_flow);
  g_test_add_func ("/mamd/dbus/shapes", test_shapes);
  g_test_add_func ("/mamd/dbus/session-objects", test_session_objects);
  g_test_add_func ("/mamd/dbus/seq/gaps", test_seq_gaps);
  g_test_add_func ("/mamd/dbus/list-pages", test_list_pages);
  return g_test_run ();
}
