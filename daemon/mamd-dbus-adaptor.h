/*
 * MamdDbusAdaptor: the only part of mamd that talks to the bus. It exports
 * the manager object /org/mamd/Mamd1 and the session subtree
 * /org/mamd/Mamd1/session/<id>, authorises every call through one dispatch
 * table (deny by default), turns engine GObject signals into D-Bus signals
 * (paced through a FIFO) and engine errors into org.mamd.Mamd1.Error.*.
 */
#pragma once

#include <gio/gio.h>

#include "mamd-engine.h"

G_BEGIN_DECLS

#define MAMD_TYPE_DBUS_ADAPTOR (mamd_dbus_adaptor_get_type ())
G_DECLARE_FINAL_TYPE (MamdDbusAdaptor, mamd_dbus_adaptor, MAMD, DBUS_ADAPTOR, GObject)

MamdDbusAdaptor *mamd_dbus_adaptor_new (MamdEngine *engine);

/* Registers the objects on @connection (before the name is requested) and
 * subscribes to NameOwnerChanged. Fails when an object path is taken. */
gboolean mamd_dbus_adaptor_export (MamdDbusAdaptor *self, GDBusConnection *connection,
                                   GError **error);
/* On the way out, first: every new call is answered Busy. */
void mamd_dbus_adaptor_refuse_calls (MamdDbusAdaptor *self);
/* Then, once the commits under way have answered: the calls still running
 * (a plugin authenticating) are cancelled and answer Busy. */
void mamd_dbus_adaptor_cancel_calls (MamdDbusAdaptor *self);
/* Emits every queued signal now (shutdown), then unregisters everything and
 * cancels calls still in flight. Safe to call more than once. */
void mamd_dbus_adaptor_unexport (MamdDbusAdaptor *self);

/* Path of a session object (mamd-dbus-session.c); the other returns the id
 * inside @path or NULL (with MAMD_ERROR_INVALID_ARGS) when @path is not
 * /org/mamd/Mamd1/session/<32 lowercase hex>. */
char *mamd_dbus_session_path (const char *session_id);
char *mamd_dbus_session_id_from_path (const char *path, GError **error);

G_END_DECLS
