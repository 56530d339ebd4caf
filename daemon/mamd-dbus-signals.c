/*
 * Engine GObject signals -> D-Bus signals. The engine lends its records for
 * the emission only, so every argument is copied into a GVariant here and
 * queued; the FIFO in mamd-dbus-adaptor.c emits them in order. Signals go to
 * everyone on the bus: only ids, states, reasons and seq, never a credential.
 */
#include "config.h"

#include "mamd-dbus-private.h"

static const char *
nonnull (const char *text)
{
  return text != NULL ? text : "";
}

static void
queue_session_signal (MamdDbusAdaptor *self, const char *member, GVariant *parameters)
{
  mamd_dbus_adaptor_queue_signal (self, MAMD_OBJECT_PATH, MAMD_DBUS_MANAGER_IFACE, member,
                                  parameters);
}

static void
on_enrollment_required (MamdEngine *engine, const MamdSessionRecord *rec, const char *reason,
                        guint64 seq, gpointer user_data)
{
  g_autofree char *path = mamd_dbus_session_path (rec->id);

  queue_session_signal (user_data, "EnrollmentRequired",
                        g_variant_new ("(osst)", path, nonnull (rec->server_id),
                                       nonnull (reason), seq));
}

static void
on_enrollment_declined (MamdEngine *engine, const MamdSessionRecord *rec, guint64 seq,
                        gpointer user_data)
{
  g_autofree char *path = mamd_dbus_session_path (rec->id);

  queue_session_signal (user_data, "EnrollmentDeclined",
                        g_variant_new ("(ost)", path, nonnull (rec->server_id), seq));
}

static void
on_enrolled (MamdEngine *engine, const MamdSessionRecord *rec, guint64 seq, gpointer user_data)
{
  g_autofree char *path = mamd_dbus_session_path (rec->id);

  queue_session_signal (user_data, "Enrolled",
                        g_variant_new ("(ost)", path, nonnull (rec->server_id), seq));
}

static void
on_session_revoked (MamdEngine *engine, const MamdSessionRecord *rec, const char *reason,
                    guint64 seq, gpointer user_data)
{
  g_autofree char *path = mamd_dbus_session_path (rec->id);

  queue_session_signal (user_data, "SessionRevoked",
                        g_variant_new ("(osst)", path, nonnull (rec->server_id),
                                       nonnull (reason), seq));
}

/* PropertiesChanged by hand: the sessions live in a subtree, not in
 * exported GObjects. The engine hands over only the new record, so every
 * property that can change is sent. */
static void
on_session_changed (MamdEngine *engine, const MamdSessionRecord *rec, gpointer user_data)
{
  static const char *const mutable_properties[] = {
    "State", "Reason", "MamRequired", "Updated", "Seq",
  };
  g_autofree char *path = mamd_dbus_session_path (rec->id);
  GVariantBuilder changed;

  g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
  for (guint i = 0; i < G_N_ELEMENTS (mutable_properties); i++)
    g_variant_builder_add (&changed, "{sv}", mutable_properties[i],
                           mamd_dbus_session_property (rec, mutable_properties[i]));
  mamd_dbus_adaptor_queue_signal (user_data, path, MAMD_DBUS_PROPERTIES_IFACE,
                                  "PropertiesChanged",
                                  g_variant_new ("(sa{sv}as)", MAMD_DBUS_SESSION_IFACE,
                                                 &changed, NULL));
}

static void
on_session_removed (MamdEngine *engine, const char *session_id, guint64 seq,
                    gpointer user_data)
{
  /* the API has no signal for a sign-out: the object simply disappears */
  g_debug ("session %s removed (seq %" G_GUINT64_FORMAT ")", session_id, seq);
}

static void
on_wipe_requested (MamdEngine *engine, const MamdWipeRecord *wipe, guint64 seq,
                   gpointer user_data)
{
  queue_session_signal (user_data, "WipeRequested",
                        g_variant_new ("(sssst)", wipe->id, nonnull (wipe->server_id),
                                       nonnull (wipe->device_id), nonnull (wipe->object_id),
                                       seq));
}

static void
on_policy_changed (MamdEngine *engine, const char *server_id, gboolean mam_applies,
                   gboolean gate_open, const char *reason, guint64 seq, gpointer user_data)
{
  queue_session_signal (user_data, "PolicyChanged",
                        g_variant_new ("(sbbst)", nonnull (server_id), mam_applies, gate_open,
                                       nonnull (reason), seq));
}

void
mamd_dbus_signals_connect (MamdDbusAdaptor *self, MamdEngine *engine)
{
  g_signal_connect (engine, "enrollment-required", G_CALLBACK (on_enrollment_required), self);
  g_signal_connect (engine, "enrollment-declined", G_CALLBACK (on_enrollment_declined), self);
  g_signal_connect (engine, "enrolled", G_CALLBACK (on_enrolled), self);
  g_signal_connect (engine, "session-revoked", G_CALLBACK (on_session_revoked), self);
  g_signal_connect (engine, "session-changed", G_CALLBACK (on_session_changed), self);
  g_signal_connect (engine, "session-removed", G_CALLBACK (on_session_removed), self);
  g_signal_connect (engine, "wipe-requested", G_CALLBACK (on_wipe_requested), self);
  g_signal_connect (engine, "policy-changed", G_CALLBACK (on_policy_changed), self);
}
