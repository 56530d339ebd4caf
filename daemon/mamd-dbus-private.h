/*
 * Private to the D-Bus adaptor: the dispatch table shared by the gate
 * (mamd-dbus-adaptor.c) and the method handlers (mamd-dbus-methods.c).
 */
#pragma once

#include "mamd-dbus-adaptor.h"

G_BEGIN_DECLS

#define MAMD_DBUS_MANAGER_IFACE "org.mamd.Mamd1.Manager"
#define MAMD_DBUS_SESSION_IFACE "org.mamd.Mamd1.Session"
#define MAMD_DBUS_PROPERTIES_IFACE "org.freedesktop.DBus.Properties"
#define MAMD_DBUS_SESSION_PREFIX "/org/mamd/Mamd1/session"

typedef enum {
  MAMD_DBUS_ROLE_READ,   /* any local uid the bus can vouch for */
  MAMD_DBUS_ROLE_CLIENT, /* host integrators */
  MAMD_DBUS_ROLE_ADMIN,
} MamdDbusRole;

typedef enum {
  MAMD_DBUS_OBJECT_MANAGER,
  MAMD_DBUS_OBJECT_SESSION,
} MamdDbusObjectKind;

typedef struct _MamdDbusCall MamdDbusCall;

/* A handler owns @call: it must end it with one of the
 * mamd_dbus_call_return_* functions, now or later. */
typedef void (*MamdDbusHandler) (MamdDbusCall *call, GVariant *parameters);

typedef struct {
  MamdDbusObjectKind object;
  const char *interface;
  const char *member;
  MamdDbusRole role;
  /* Changes nothing: the reply waits until every commit under way when it
   * was built is durable, so that it never shows a change a crash could
   * still undo. A method that changes state replies after its own commit;
   * its errors wait like a read's reply. */
  gboolean reads;
  MamdDbusHandler handler;
} MamdDbusMethod;

/* The one dispatch table; a call that matches no row is denied. */
const MamdDbusMethod *mamd_dbus_lookup_method (MamdDbusObjectKind object,
                                               const char *interface,
                                               const char *member);

struct _MamdDbusCall {
  MamdDbusAdaptor *adaptor;          /* owned ref */
  MamdEngine *engine;                /* borrowed from the adaptor */
  GDBusMethodInvocation *invocation; /* owned until returned */
  const MamdDbusMethod *method;
  gpointer sender;                   /* owned MamdDbusSender (adaptor-private) */
  GCancellable *cancellable;         /* cancelled when the caller leaves the bus */
  MamdCaller caller;
  char *object_path;
  gboolean uid_counted;              /* counted in the adaptor's calls per uid */
};

void mamd_dbus_call_return_value (MamdDbusCall *call, GVariant *value);
/* Maps @error to org.mamd.Mamd1.Error.*: MAMD_ERROR keeps its code, foreign
 * errors become Failed. The message is scrubbed of credential values. */
void mamd_dbus_call_return_error (MamdDbusCall *call, const GError *error);
void mamd_dbus_call_return_error_literal (MamdDbusCall *call, MamdError code,
                                          const char *message);

/* The Session interface's properties (mamd-dbus-session.c). */
GVariant *mamd_dbus_session_properties (const MamdSessionRecord *rec);
GVariant *mamd_dbus_session_property (const MamdSessionRecord *rec, const char *name);

/* Queues a signal behind every earlier one (the FIFO keeps seq order). */
void mamd_dbus_adaptor_queue_signal (MamdDbusAdaptor *self, const char *object_path,
                                     const char *interface, const char *member,
                                     GVariant *parameters);

/* Signals queued and not yet handed to GDBus (tests). */
guint mamd_dbus_adaptor_get_n_queued_signals (MamdDbusAdaptor *self);

/* Connects the engine's GObject signals to D-Bus signals (mamd-dbus-signals.c). */
void mamd_dbus_signals_connect (MamdDbusAdaptor *self, MamdEngine *engine);

G_END_DECLS
