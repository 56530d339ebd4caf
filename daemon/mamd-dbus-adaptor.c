/*
 * The D-Bus export layer: object registration, the authorization gate
 * every call passes through, per-sender bookkeeping (uid cache, calls in
 * flight, cancellation) and the paced signal FIFO. The method handlers live
 * in mamd-dbus-methods.c, the engine-signal mapping in mamd-dbus-signals.c,
 * session paths and properties in mamd-dbus-session.c.
 */
#include "config.h"

#include "mamd-dbus-private.h"

#include <pwd.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "mamd-resources.h"

#define SIGNAL_BATCH 256
#define DEFAULT_MAX_CALLS 64
#define DEFAULT_MAX_CALLS_PER_UID 256
#define STOPPING_MESSAGE "mamd is stopping and did not carry the call out: retry once it is back"
/* The system bus's default max_message_size, less room for the header:
 * dbus-daemon disconnects a peer that sends a larger message, and mamd
 * stops when it loses the bus */
#define REPLY_MAX_BYTES (32 * 1024 * 1024 - 64 * 1024)

typedef struct {
  char *name;
  gboolean uid_known;
  guint32 uid;
  GCancellable *lookup; /* set while GetConnectionUnixUser is pending */
  GPtrArray *waiting;   /* MamdDbusCall (owned) waiting for the uid */
  GPtrArray *in_flight; /* MamdDbusCall (borrowed), waiting ones included */
  gboolean gone;
} MamdDbusSender;

typedef struct {
  char *object_path;
  const char *interface; /* static string */
  const char *member;    /* static string */
  GVariant *parameters;
} QueuedSignal;

/* A flush of the connection under way; the adaptor may go first. */
typedef struct {
  MamdDbusAdaptor *adaptor; /* NULL once the adaptor let go */
  gboolean trim;            /* the end of a burst: give the memory back */
} FlushWait;

/* Signals queued in one burst after which the heap is trimmed: a reload
 * that restricts 100,000 sessions leaves mamd at some 300 MB otherwise,
 * its free memory kept by malloc. */
#define TRIM_AFTER_SIGNALS 10000

typedef struct {
  guint config_serial; /* of the configuration the uids were resolved for */
  GArray *uids;
} UserCache;

struct _MamdDbusAdaptor {
  GObject parent_instance;

  MamdEngine *engine;
  GDBusConnection *connection;
  GDBusNodeInfo *node_info;
  guint manager_id;
  guint subtree_id;
  guint name_owner_id;
  guint filter_id;
  gboolean filter_added;
  GHashTable *senders; /* unique name -> MamdDbusSender (one ref) */
  GQueue signals;      /* QueuedSignal, waiting for the next iteration */
  guint drain_id;
  FlushWait *flush_wait; /* the FIFO waits until GDBus wrote its last batch out */
  guint burst;         /* signals queued since the queue was last empty */
  guint signal_budget; /* signals this main-loop iteration may still emit */
  GSource *pace;       /* renews signal_budget once per iteration */
  guint32 own_uid;
  UserCache admins;
  UserCache clients;
  gboolean stopping;   /* new calls are refused, cancelled ones say why */
  GHashTable *uid_calls; /* uid -> calls in flight that passed the gate */
};

G_DEFINE_TYPE (MamdDbusAdaptor, mamd_dbus_adaptor, G_TYPE_OBJECT)

/* ---- senders ---- */

static void
sender_clear (gpointer data)
{
  MamdDbusSender *sender = data;

  g_free (sender->name);
  g_clear_object (&sender->lookup);
  g_ptr_array_unref (sender->waiting);
  g_ptr_array_unref (sender->in_flight);
}

static MamdDbusSender *
sender_ref (MamdDbusSender *sender)
{
  return g_rc_box_acquire (sender);
}

static void
sender_unref (gpointer sender)
{
  g_rc_box_release_full (sender, sender_clear);
}

static MamdDbusSender *
sender_lookup_or_add (MamdDbusAdaptor *self, const char *name)
{
  MamdDbusSender *sender = g_hash_table_lookup (self->senders, name);

  if (sender != NULL)
    return sender;
  sender = g_rc_box_new0 (MamdDbusSender);
  sender->name = g_strdup (name);
  sender->waiting = g_ptr_array_new ();
  sender->in_flight = g_ptr_array_new ();
  g_hash_table_insert (self->senders, g_strdup (name), sender);
  g_debug ("%s: first call, %u bus peer(s) tracked", name, g_hash_table_size (self->senders));
  return sender;
}

static void
sender_cancel_calls (MamdDbusSender *sender, const char *why)
{
  g_autoptr(GPtrArray) cancellables = g_ptr_array_new_with_free_func (g_object_unref);

  /* cancelling may finish calls synchronously, which edits in_flight */
  for (guint i = 0; i < sender->in_flight->len; i++) {
    MamdDbusCall *call = g_ptr_array_index (sender->in_flight, i);
    g_ptr_array_add (cancellables, g_object_ref (call->cancellable));
  }
  if (cancellables->len > 0)
    g_debug ("%s %s: cancelling %u call(s) in flight", sender->name, why, cancellables->len);
  for (guint i = 0; i < cancellables->len; i++)
    g_cancellable_cancel (g_ptr_array_index (cancellables, i));
}

/* The caller left the bus: forget its uid and cancel what it started. */
static void
sender_gone (MamdDbusAdaptor *self, const char *name)
{
  MamdDbusSender *sender = g_hash_table_lookup (self->senders, name);

  if (sender == NULL)
    return;
  sender->gone = TRUE;
  if (sender->lookup != NULL)
    g_cancellable_cancel (sender->lookup);
  sender_cancel_calls (sender, "left the bus");
  g_hash_table_remove (self->senders, name);
}

static void
on_name_owner_changed (GDBusConnection *connection, const char *sender_name,
                       const char *object_path, const char *interface_name,
                       const char *signal_name, GVariant *parameters, gpointer user_data)
{
  MamdDbusAdaptor *self = user_data;
  const char *name, *old_owner, *new_owner;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (name[0] == ':' && new_owner[0] == '\0')
    sender_gone (self, name);
}

/* ---- calls ---- */

/* Counts @delta more calls in flight for @uid; returns the new count. */
static guint
uid_calls_add (MamdDbusAdaptor *self, guint32 uid, gint delta)
{
  gpointer key = GUINT_TO_POINTER (uid);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->uid_calls, key)) + delta;

  if (n == 0)
    g_hash_table_remove (self->uid_calls, key);
  else
    g_hash_table_insert (self->uid_calls, key, GUINT_TO_POINTER (n));
  return n;
}

static void
call_free (MamdDbusCall *call)
{
  MamdDbusSender *sender = call->sender;

  g_ptr_array_remove_fast (sender->in_flight, call);
  sender_unref (sender);
  if (call->uid_counted)
    uid_calls_add (call->adaptor, call->caller.uid, -1);
  g_clear_object (&call->invocation);
  g_clear_object (&call->cancellable);
  g_free (call->object_path);
  g_object_unref (call->adaptor);
  g_free (call);
}

/* A reply the bus would refuse (ListSessions of some 50,000 sessions, say)
 * becomes an error that says so. */
static GError *
reply_too_large (MamdDbusCall *call, GVariant *value)
{
  gsize size = value != NULL ? g_variant_get_size (value) : 0;

  if (size <= REPLY_MAX_BYTES)
    return NULL;
  g_warning ("%s: reply of %" G_GSIZE_FORMAT " bytes not sent: the bus refuses messages over "
             "32 MiB", call->method->member, size);
  return g_error_new (MAMD_ERROR, MAMD_ERROR_FAILED,
                      "%s: the answer would take %.1f MiB, more than the 32 MiB a D-Bus "
                      "message may carry on the system bus: ask for less (ListSessionsPage, which "
                      "mamctl sessions uses)",
                      call->method->member, size / (1024.0 * 1024.0));
}

/* Sends the reply, @value (floating or owned by the caller) or @error
 * (already a MAMD_ERROR), and ends the call. */
static void
call_send (MamdDbusCall *call, GVariant *value, const GError *error)
{
  g_autoptr(GError) too_large = error == NULL ? reply_too_large (call, value) : NULL;

  if (too_large != NULL) {
    g_variant_unref (g_variant_ref_sink (value));
    error = too_large;
  }
  if (error != NULL)
    g_dbus_method_invocation_return_gerror (g_steal_pointer (&call->invocation), error);
  else
    g_dbus_method_invocation_return_value (g_steal_pointer (&call->invocation), value);
  call_free (call);
}

typedef struct {
  MamdDbusCall *call;
  GVariant *value;
  GError *error;
} HeldReply;

static void
on_committed (const GError *store_error, gpointer user_data)
{
  HeldReply *held = user_data;

  call_send (held->call, held->value, store_error != NULL ? store_error : held->error);
  g_clear_pointer (&held->value, g_variant_unref);
  g_clear_error (&held->error);
  g_free (held);
}

/* A reply waits for the commits under way when it may rest on their
 * changes: a read's, and any error (a write refused because of a change not
 * yet saved, a session signed out a moment ago, say). A write's success
 * follows its own commit, and the commits before it are done by then. */
static void
call_reply (MamdDbusCall *call, GVariant *value, const GError *error)
{
  HeldReply *held;

  if (!call->method->reads && error == NULL) {
    call_send (call, value, error);
    return;
  }
  held = g_new0 (HeldReply, 1);
  held->call = call;
  held->value = value != NULL ? g_variant_ref_sink (value) : NULL;
  held->error = error != NULL ? g_error_copy (error) : NULL;
  mamd_engine_when_committed (call->engine, on_committed, held);
}

void
mamd_dbus_call_return_value (MamdDbusCall *call, GVariant *value)
{
  call_reply (call, value, NULL);
}

void
mamd_dbus_call_return_error (MamdDbusCall *call, const GError *error)
{
  g_autoptr(GError) reply = NULL;

  if (error->domain == MAMD_ERROR && error->code >= 0 && error->code < MAMD_ERROR_LAST) {
    reply = g_error_new_literal (MAMD_ERROR, error->code, error->message);
  } else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
             call->adaptor->stopping) {
    reply = g_error_new_literal (MAMD_ERROR, MAMD_ERROR_BUSY, STOPPING_MESSAGE);
  } else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    reply = g_error_new_literal (MAMD_ERROR, MAMD_ERROR_FAILED,
                                 "the call was cancelled because its caller left the bus");
  } else {
    g_autofree char *clean = NULL;

    /* foreign errors carry library wording and remote prefixes: keep the
     * text, drop the decoration, and point at the log for the rest */
    if (g_dbus_error_is_remote_error (error)) {
      g_autoptr(GError) copy = g_error_copy (error);
      g_dbus_error_strip_remote_error (copy);
      clean = g_strdup (copy->message);
    } else {
      clean = g_strdup (error->message);
    }
    g_warning ("%s failed: %s (%s %d)", call->method->member, clean,
               g_quark_to_string (error->domain), error->code);
    reply = g_error_new (MAMD_ERROR, MAMD_ERROR_FAILED,
                         "%s failed: %s; see the mamd log for details",
                         call->method->member, clean);
  }
  call_reply (call, NULL, reply);
}

void
mamd_dbus_call_return_error_literal (MamdDbusCall *call, MamdError code, const char *message)
{
  g_autoptr(GError) error = g_error_new_literal (MAMD_ERROR, code, message);

  mamd_dbus_call_return_error (call, error);
}

/* ---- roles ---- */

static void
user_cache_clear (UserCache *cache)
{
  g_clear_pointer (&cache->uids, g_array_unref);
}

/* Resolves user names to uids, again at every configuration reload (even
 * with the same list: a user may have been deleted, renamed or created
 * since), so a call costs no NSS lookup. */
static gboolean
user_cache_contains (UserCache *cache, guint config_serial, char **names, guint32 uid)
{
  const char *const empty[] = { NULL };
  const char *const *wanted = names != NULL ? (const char *const *) names : empty;

  if (cache->uids == NULL || cache->config_serial != config_serial) {
    user_cache_clear (cache);
    cache->config_serial = config_serial;
    cache->uids = g_array_new (FALSE, FALSE, sizeof (guint32));
    for (guint i = 0; wanted[i] != NULL; i++) {
      struct passwd pwd, *result = NULL;
      char buf[4096];

      if (getpwnam_r (wanted[i], &pwd, buf, sizeof buf, &result) == 0 && result != NULL) {
        guint32 found = (guint32) result->pw_uid;
        g_array_append_val (cache->uids, found);
      } else {
        g_warning ("user '%s' named in mamd.conf does not exist: it gets no access",
                   wanted[i]);
      }
    }
  }
  for (guint i = 0; i < cache->uids->len; i++) {
    if (g_array_index (cache->uids, guint32, i) == uid)
      return TRUE;
  }
  return FALSE;
}

static gboolean
uid_is_admin (MamdDbusAdaptor *self, guint32 uid)
{
  const MamdConfig *config = mamd_engine_get_config (self->engine);

  if (uid == 0 || uid == self->own_uid)
    return TRUE;
  if (config == NULL || config->daemon == NULL)
    return FALSE;
  return user_cache_contains (&self->admins, mamd_engine_get_config_serial (self->engine),
                              config->daemon->admin_users, uid);
}

static gboolean
uid_is_client (MamdDbusAdaptor *self, guint32 uid)
{
  const MamdConfig *config = mamd_engine_get_config (self->engine);

  if (uid_is_admin (self, uid))
    return TRUE;
  if (config == NULL || config->daemon == NULL)
    return FALSE;
  return user_cache_contains (&self->clients, mamd_engine_get_config_serial (self->engine),
                              config->daemon->client_users, uid);
}

static const char *
role_to_string (MamdDbusRole role)
{
  switch (role) {
  case MAMD_DBUS_ROLE_READ:
    return "read";
  case MAMD_DBUS_ROLE_CLIENT:
    return "client";
  case MAMD_DBUS_ROLE_ADMIN:
    return "admin";
  default:
    return "unknown";
  }
}

static guint
max_calls_per_sender (MamdDbusAdaptor *self)
{
  const MamdConfig *config = mamd_engine_get_config (self->engine);

  if (config == NULL || config->daemon == NULL || config->daemon->max_calls_per_sender == 0)
    return DEFAULT_MAX_CALLS;
  return config->daemon->max_calls_per_sender;
}

static guint
max_calls_per_uid (MamdDbusAdaptor *self)
{
  const MamdConfig *config = mamd_engine_get_config (self->engine);

  if (config == NULL || config->daemon == NULL || config->daemon->max_calls_per_uid == 0)
    return DEFAULT_MAX_CALLS_PER_UID;
  return config->daemon->max_calls_per_uid;
}

/* The gate: the uid is established, now match it against the row's role. */
static void
call_authorize_and_run (MamdDbusCall *call, guint32 uid)
{
  MamdDbusAdaptor *self = call->adaptor;
  gboolean admin = uid_is_admin (self, uid);
  gboolean allowed;
  guint limit, others;

  switch (call->method->role) {
  case MAMD_DBUS_ROLE_READ:
    allowed = TRUE;
    break;
  case MAMD_DBUS_ROLE_CLIENT:
    allowed = uid_is_client (self, uid);
    break;
  case MAMD_DBUS_ROLE_ADMIN:
    allowed = admin;
    break;
  default:
    allowed = FALSE;
    break;
  }
  if (self->stopping) {
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_BUSY, STOPPING_MESSAGE);
    return;
  }
  if (!allowed) {
    g_autofree char *message = NULL;

    message = g_strdup_printf ("%s needs the %s role: uid %u is not root, the daemon's user "
                               "or listed in [Daemon] %s of mamd.conf",
                               call->method->member, role_to_string (call->method->role), uid,
                               call->method->role == MAMD_DBUS_ROLE_ADMIN
                                 ? "AdminUsers" : "ClientUsers or AdminUsers");
    g_info ("denied %s to uid %u (%s)", call->method->member, uid,
            g_dbus_method_invocation_get_sender (call->invocation));
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_ACCESS_DENIED, message);
    return;
  }
  call->caller.uid = uid;
  call->caller.is_admin = admin;
  call->uid_counted = TRUE;
  limit = max_calls_per_uid (self);
  others = uid_calls_add (self, uid, 1) - 1;
  if (others >= limit) {
    g_autofree char *message = g_strdup_printf ("too many calls in flight from uid %u (limit "
                                                "%u, [Limits] MaxCallsInFlightPerUser): wait "
                                                "for replies before sending more",
                                                uid, limit);

    g_info ("refused %s from uid %u: %u calls in flight", call->method->member, uid, others);
    mamd_dbus_call_return_error_literal (call, MAMD_ERROR_BUSY, message);
    return;
  }
  g_debug ("%s from %s (uid %u)", call->method->member,
           g_dbus_method_invocation_get_sender (call->invocation), uid);
  call->method->handler (call, g_dbus_method_invocation_get_parameters (call->invocation));
}

typedef struct {
  MamdDbusAdaptor *adaptor; /* owned ref */
  MamdDbusSender *sender;   /* owned ref */
} UnixUserLookup;

static void
on_unix_user (GObject *source, GAsyncResult *result, gpointer user_data)
{
  UnixUserLookup *lookup = user_data;
  g_autoptr(MamdDbusAdaptor) self = lookup->adaptor;
  MamdDbusSender *sender = lookup->sender;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GPtrArray) waiting = NULL;

  g_free (lookup);
  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_clear_object (&sender->lookup);
  if (reply != NULL && !sender->gone) {
    sender->uid_known = TRUE;
    g_variant_get (reply, "(u)", &sender->uid);
  } else if (g_hash_table_lookup (self->senders, sender->name) == sender) {
    /* GDBus runs a session object's call one idle later than a manager's,
     * so it may come after its sender's NameOwnerChanged: its new entry
     * would stay for ever. A live sender gets a new entry with its next call. */
    g_hash_table_remove (self->senders, sender->name);
  }
  waiting = g_steal_pointer (&sender->waiting);
  sender->waiting = g_ptr_array_new ();
  for (guint i = 0; i < waiting->len; i++) {
    MamdDbusCall *call = g_ptr_array_index (waiting, i);

    if (sender->uid_known) {
      call_authorize_and_run (call, sender->uid);
    } else {
      g_info ("cannot establish the uid of %s: %s", sender->name,
              error != NULL ? error->message : "it left the bus");
      mamd_dbus_call_return_error_literal (call, MAMD_ERROR_ACCESS_DENIED,
                                           "the caller's uid could not be established: "
                                           "access denied");
    }
  }
  sender_unref (sender);
}

static void
return_denied (GDBusMethodInvocation *invocation, const char *interface, const char *member)
{
  g_dbus_method_invocation_return_error (invocation, MAMD_ERROR, MAMD_ERROR_ACCESS_DENIED,
                                         "%s.%s is not available to callers: access denied",
                                         interface, member);
}

/* Entry point of every method call on our objects. */
static void
dispatch (MamdDbusAdaptor *self, MamdDbusObjectKind kind, const char *sender_name,
          const char *object_path, const char *interface_name, const char *method_name,
          GDBusMethodInvocation *invocation)
{
  const MamdDbusMethod *method = mamd_dbus_lookup_method (kind, interface_name, method_name);
  MamdDbusSender *sender;
  MamdDbusCall *call;
  guint limit;

  if (method == NULL || sender_name == NULL) {
    return_denied (invocation, interface_name, method_name);
    return;
  }
  if (self->stopping) {
    g_dbus_method_invocation_return_error_literal (invocation, MAMD_ERROR, MAMD_ERROR_BUSY,
                                                   STOPPING_MESSAGE);
    return;
  }
  sender = sender_lookup_or_add (self, sender_name);
  limit = max_calls_per_sender (self);
  if (sender->in_flight->len >= limit) {
    g_info ("refused %s from %s: %u calls in flight", method_name, sender_name, limit);
    g_dbus_method_invocation_return_error (invocation, MAMD_ERROR, MAMD_ERROR_BUSY,
                                           "too many calls in flight from %s (limit %u, "
                                           "[Limits] MaxCallsInFlightPerSender): wait for "
                                           "replies before sending more", sender_name, limit);
    return;
  }

  call = g_new0 (MamdDbusCall, 1);
  call->adaptor = g_object_ref (self);
  call->engine = self->engine;
  call->invocation = invocation;
  call->method = method;
  call->sender = sender_ref (sender);
  call->cancellable = g_cancellable_new ();
  call->object_path = g_strdup (object_path);
  g_ptr_array_add (sender->in_flight, call);

  if (sender->uid_known) {
    call_authorize_and_run (call, sender->uid);
    return;
  }
  g_ptr_array_add (sender->waiting, call);
  if (sender->lookup == NULL) {
    UnixUserLookup *lookup = g_new (UnixUserLookup, 1);

    lookup->adaptor = g_object_ref (self);
    lookup->sender = sender_ref (sender);
    sender->lookup = g_cancellable_new ();
    g_dbus_connection_call (self->connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "GetConnectionUnixUser",
                            g_variant_new ("(s)", sender_name), G_VARIANT_TYPE ("(u)"),
                            G_DBUS_CALL_FLAGS_NONE, -1, sender->lookup, on_unix_user, lookup);
  }
}

static void
on_manager_method_call (GDBusConnection *connection, const char *sender,
                        const char *object_path, const char *interface_name,
                        const char *method_name, GVariant *parameters,
                        GDBusMethodInvocation *invocation, gpointer user_data)
{
  dispatch (user_data, MAMD_DBUS_OBJECT_MANAGER, sender, object_path, interface_name,
            method_name, invocation);
}

static void
on_session_method_call (GDBusConnection *connection, const char *sender,
                        const char *object_path, const char *interface_name,
                        const char *method_name, GVariant *parameters,
                        GDBusMethodInvocation *invocation, gpointer user_data)
{
  dispatch (user_data, MAMD_DBUS_OBJECT_SESSION, sender, object_path, interface_name,
            method_name, invocation);
}

/* get_property NULL: GDBus routes Properties.Get/GetAll through method_call,
 * so property reads pass the same gate as methods */
static const GDBusInterfaceVTable manager_vtable = { on_manager_method_call, NULL, NULL, { 0 } };
static const GDBusInterfaceVTable session_vtable = { on_session_method_call, NULL, NULL, { 0 } };

/* ---- the session subtree: one registration for every session ---- */

/* Introspection lists no session: it reaches no role check, and method
 * calls (ListSessions, the session properties) show a session only to its
 * owner and admins. This is not secrecy: the Manager signals and the
 * sessions' PropertiesChanged are broadcast, so every local user on the bus
 * sees session paths, device ids and object ids as they change.
 * Calls still reach every session: the subtree dispatches to nodes it does
 * not enumerate. */
static char **
subtree_enumerate (GDBusConnection *connection, const char *sender, const char *object_path,
                   gpointer user_data)
{
  return g_new0 (char *, 1);
}

static GDBusInterfaceInfo **
subtree_introspect (GDBusConnection *connection, const char *sender, const char *object_path,
                    const char *node, gpointer user_data)
{
  MamdDbusAdaptor *self = user_data;
  GDBusInterfaceInfo **infos;

  /* a well-formed id whose session is gone keeps its interface so that
   * property reads reach the handler and get NotFound, as methods do */
  if (node == NULL || !mamd_id_is_valid (node))
    return NULL;
  infos = g_new0 (GDBusInterfaceInfo *, 2);
  infos[0] = g_dbus_interface_info_ref (
    g_dbus_node_info_lookup_interface (self->node_info, MAMD_DBUS_SESSION_IFACE));
  return infos;
}

static const GDBusInterfaceVTable *
subtree_dispatch (GDBusConnection *connection, const char *sender, const char *object_path,
                  const char *interface_name, const char *node, gpointer *out_user_data,
                  gpointer user_data)
{
  MamdDbusAdaptor *self = user_data;

  /* a well-formed id whose session is gone still reaches the handler, which
   * answers NotFound rather than GDBus's UnknownMethod */
  if (node == NULL || g_strcmp0 (interface_name, MAMD_DBUS_SESSION_IFACE) != 0 ||
      !mamd_id_is_valid (node))
    return NULL;
  *out_user_data = self;
  return &session_vtable;
}

static const GDBusSubtreeVTable subtree_vtable = {
  subtree_enumerate, subtree_introspect, subtree_dispatch, { 0 }
};

/* ---- deny by default, before GDBus answers on its own ---- */

static gboolean
path_is_ours (const char *path, MamdDbusObjectKind *kind)
{
  if (g_strcmp0 (path, MAMD_OBJECT_PATH) == 0) {
    *kind = MAMD_DBUS_OBJECT_MANAGER;
    return TRUE;
  }
  if (path != NULL && g_str_has_prefix (path, MAMD_DBUS_SESSION_PREFIX "/")) {
    *kind = MAMD_DBUS_OBJECT_SESSION;
    return TRUE;
  }
  return FALSE;
}

/* Runs on the GDBus worker thread and reads only static data. A call to one
 * of our objects through our interfaces or Properties whose member is not in
 * the dispatch table is refused here with AccessDenied, instead of GDBus's
 * UnknownMethod, so nothing outside the table is ever reachable. */
static GDBusMessage *
deny_filter (GDBusConnection *connection, GDBusMessage *message, gboolean incoming,
             gpointer user_data)
{
  const char *interface, *member;
  MamdDbusObjectKind kind;
  g_autoptr(GDBusMessage) reply = NULL;
  g_autofree char *text = NULL;

  if (!incoming || g_dbus_message_get_message_type (message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL)
    return message;
  if (!path_is_ours (g_dbus_message_get_path (message), &kind))
    return message;
  interface = g_dbus_message_get_interface (message);
  member = g_dbus_message_get_member (message);
  if (g_strcmp0 (interface, "org.freedesktop.DBus.Introspectable") == 0 ||
      g_strcmp0 (interface, "org.freedesktop.DBus.Peer") == 0)
    return message;
  if (interface != NULL && member != NULL && mamd_dbus_lookup_method (kind, interface, member))
    return message;

  if ((g_dbus_message_get_flags (message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED) == 0) {
    text = g_strdup_printf ("%s.%s is not available to callers: access denied",
                            interface != NULL ? interface : "(no interface)",
                            member != NULL ? member : "(no member)");
    reply = g_dbus_message_new_method_error_literal (message,
                                                     "org.mamd.Mamd1.Error.AccessDenied", text);
    g_dbus_connection_send_message (connection, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE, NULL,
                                    NULL);
  }
  g_object_unref (message);
  return NULL;
}

/* ---- the signal FIFO ---- */

static void
queued_signal_free (QueuedSignal *sig)
{
  g_free (sig->object_path);
  g_variant_unref (sig->parameters);
  g_free (sig);
}

static void
emit_one (MamdDbusAdaptor *self, QueuedSignal *sig)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_emit_signal (self->connection, NULL, sig->object_path, sig->interface,
                                      sig->member, sig->parameters, &error))
    g_warning ("cannot emit %s: %s", sig->member, error->message);
  queued_signal_free (sig);
}

static gboolean drain_signals (gpointer user_data);

static void
schedule_drain (MamdDbusAdaptor *self)
{
  if (self->drain_id == 0 && self->flush_wait == NULL && self->connection != NULL &&
      !g_queue_is_empty (&self->signals))
    self->drain_id = g_idle_add (drain_signals, self);
}

static void
on_flushed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  FlushWait *wait = user_data;
  MamdDbusAdaptor *self = wait->adaptor;

  /* an error means the connection closed: mamd stops, and unexport sends
   * (or reports) what is still queued */
  g_dbus_connection_flush_finish (G_DBUS_CONNECTION (source), result, NULL);
#ifdef __GLIBC__
  if (wait->trim)
    malloc_trim (0);
#endif
  g_free (wait);
  if (self == NULL)
    return;
  self->flush_wait = NULL;
  schedule_drain (self);
}

/* At most SIGNAL_BATCH signals per main-loop iteration, and the next batch
 * only once GDBus has written the last one to the bus: GDBus queues
 * whatever it is given, so without waiting a reload that touches 100,000
 * sessions would hand it every signal within a second, and each method
 * reply would leave behind all of them (and sit in memory with them).
 * Signals go out at once while the iteration's budget lasts and nothing is
 * waiting (so a sign-in's signal leaves with its reply); the rest wait in
 * order. */
static gboolean
drain_signals (gpointer user_data)
{
  MamdDbusAdaptor *self = user_data;
  gboolean trim;

  self->drain_id = 0;
  for (; self->signal_budget > 0 && !g_queue_is_empty (&self->signals); self->signal_budget--)
    emit_one (self, g_queue_pop_head (&self->signals));
  /* the burst's last batch too is waited for, once it was a large one */
  trim = g_queue_is_empty (&self->signals) && self->burst >= TRIM_AFTER_SIGNALS;
  if (g_queue_is_empty (&self->signals))
    self->burst = 0;
  if (!g_queue_is_empty (&self->signals) || trim) {
    self->flush_wait = g_new0 (FlushWait, 1);
    self->flush_wait->adaptor = self;
    self->flush_wait->trim = trim;
    g_dbus_connection_flush (self->connection, NULL, on_flushed, self->flush_wait);
  }
  return G_SOURCE_REMOVE;
}

typedef struct {
  GSource source;
  MamdDbusAdaptor *adaptor;
} PaceSource;

/* never dispatches: prepare runs once before every poll */
static gboolean
pace_prepare (GSource *source, gint *timeout)
{
  ((PaceSource *) source)->adaptor->signal_budget = SIGNAL_BATCH;
  *timeout = -1;
  return FALSE;
}

static GSource *
pace_source_new (MamdDbusAdaptor *self)
{
  static GSourceFuncs funcs = { pace_prepare, NULL, NULL, NULL, NULL, NULL };
  GSource *source = g_source_new (&funcs, sizeof (PaceSource));

  ((PaceSource *) source)->adaptor = self;
  /* prepare is skipped for sources below an already ready priority */
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_static_name (source, "[mamd] signal pace");
  g_source_attach (source, NULL);
  return source;
}

void
mamd_dbus_adaptor_queue_signal (MamdDbusAdaptor *self, const char *object_path,
                                const char *interface, const char *member,
                                GVariant *parameters)
{
  QueuedSignal *sig = g_new0 (QueuedSignal, 1);

  sig->object_path = g_strdup (object_path);
  sig->interface = interface;
  sig->member = member;
  sig->parameters = g_variant_ref_sink (parameters);
  if (self->connection != NULL && self->signal_budget > 0 && g_queue_is_empty (&self->signals)) {
    self->signal_budget--;
    emit_one (self, sig);
    return;
  }
  /* serialised, as GDBus would do anyway: a burst waits here in the size
   * it has on the wire, not as trees of GVariants (a session's
   * PropertiesChanged: 2.5 KB) */
  (void) g_variant_get_data (sig->parameters);
  g_queue_push_tail (&self->signals, sig);
  self->burst++;
  schedule_drain (self);
}

guint
mamd_dbus_adaptor_get_n_queued_signals (MamdDbusAdaptor *self)
{
  g_return_val_if_fail (MAMD_IS_DBUS_ADAPTOR (self), 0);
  return g_queue_get_length (&self->signals);
}

/* ---- lifecycle ---- */

gboolean
mamd_dbus_adaptor_export (MamdDbusAdaptor *self, GDBusConnection *connection, GError **error)
{
  GDBusInterfaceInfo *manager_info;

  g_return_val_if_fail (MAMD_IS_DBUS_ADAPTOR (self), FALSE);
  g_return_val_if_fail (self->connection == NULL, FALSE);

  manager_info = g_dbus_node_info_lookup_interface (self->node_info, MAMD_DBUS_MANAGER_IFACE);
  self->connection = g_object_ref (connection);
  self->filter_id = g_dbus_connection_add_filter (connection, deny_filter, NULL, NULL);
  self->filter_added = TRUE;
  self->manager_id = g_dbus_connection_register_object (connection, MAMD_OBJECT_PATH,
                                                        manager_info, &manager_vtable, self,
                                                        NULL, error);
  if (self->manager_id == 0) {
    g_prefix_error (error, "cannot export %s: ", MAMD_OBJECT_PATH);
    mamd_dbus_adaptor_unexport (self);
    return FALSE;
  }
  /* DISPATCH_TO_UNENUMERATED_NODES: without it GDBus would enumerate every
   * session on every call; dispatch looks the one node up instead */
  self->subtree_id = g_dbus_connection_register_subtree (
    connection, MAMD_DBUS_SESSION_PREFIX, &subtree_vtable,
    G_DBUS_SUBTREE_FLAGS_DISPATCH_TO_UNENUMERATED_NODES, self, NULL, error);
  if (self->subtree_id == 0) {
    g_prefix_error (error, "cannot export %s: ", MAMD_DBUS_SESSION_PREFIX);
    mamd_dbus_adaptor_unexport (self);
    return FALSE;
  }
  self->name_owner_id = g_dbus_connection_signal_subscribe (
    connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
    "/org/freedesktop/DBus", NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed, self,
    NULL);
  self->pace = pace_source_new (self);
  schedule_drain (self);
  return TRUE;
}

void
mamd_dbus_adaptor_refuse_calls (MamdDbusAdaptor *self)
{
  g_return_if_fail (MAMD_IS_DBUS_ADAPTOR (self));

  self->stopping = TRUE;
}

void
mamd_dbus_adaptor_cancel_calls (MamdDbusAdaptor *self)
{
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GPtrArray) senders = g_ptr_array_new_with_free_func (sender_unref);

  g_return_if_fail (MAMD_IS_DBUS_ADAPTOR (self));

  self->stopping = TRUE;
  g_hash_table_iter_init (&iter, self->senders);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (senders, sender_ref (value));
  for (guint i = 0; i < senders->len; i++)
    sender_cancel_calls (g_ptr_array_index (senders, i), "(mamd is stopping)");
}

void
mamd_dbus_adaptor_unexport (MamdDbusAdaptor *self)
{
  g_autoptr(GList) names = NULL;

  g_return_if_fail (MAMD_IS_DBUS_ADAPTOR (self));

  if (self->connection != NULL) {
    while (!g_queue_is_empty (&self->signals))
      emit_one (self, g_queue_pop_head (&self->signals));
  }
  g_clear_handle_id (&self->drain_id, g_source_remove);
  if (self->flush_wait != NULL) {
    self->flush_wait->adaptor = NULL;
    self->flush_wait = NULL;
  }
  if (self->pace != NULL) {
    g_source_destroy (self->pace);
    g_clear_pointer (&self->pace, g_source_unref);
  }
  self->signal_budget = 0;
  if (self->connection == NULL)
    return;
  if (self->name_owner_id != 0)
    g_dbus_connection_signal_unsubscribe (self->connection, self->name_owner_id);
  if (self->subtree_id != 0)
    g_dbus_connection_unregister_subtree (self->connection, self->subtree_id);
  if (self->manager_id != 0)
    g_dbus_connection_unregister_object (self->connection, self->manager_id);
  if (self->filter_added)
    g_dbus_connection_remove_filter (self->connection, self->filter_id);
  self->name_owner_id = self->subtree_id = self->manager_id = self->filter_id = 0;
  self->filter_added = FALSE;

  /* whatever is still running will answer into the void: stop it */
  names = g_hash_table_get_keys (self->senders);
  for (GList *l = names; l != NULL; l = l->next) {
    g_autofree char *name = g_strdup (l->data);
    sender_gone (self, name);
  }
  g_clear_object (&self->connection);
}

static void
mamd_dbus_adaptor_dispose (GObject *object)
{
  MamdDbusAdaptor *self = MAMD_DBUS_ADAPTOR (object);

  mamd_dbus_adaptor_unexport (self);
  if (self->engine != NULL)
    g_signal_handlers_disconnect_by_data (self->engine, self);
  g_clear_object (&self->engine);
  G_OBJECT_CLASS (mamd_dbus_adaptor_parent_class)->dispose (object);
}

static void
mamd_dbus_adaptor_finalize (GObject *object)
{
  MamdDbusAdaptor *self = MAMD_DBUS_ADAPTOR (object);

  g_queue_clear_full (&self->signals, (GDestroyNotify) queued_signal_free);
  g_hash_table_unref (self->senders);
  g_hash_table_unref (self->uid_calls);
  g_clear_pointer (&self->node_info, g_dbus_node_info_unref);
  user_cache_clear (&self->admins);
  user_cache_clear (&self->clients);
  G_OBJECT_CLASS (mamd_dbus_adaptor_parent_class)->finalize (object);
}

static void
mamd_dbus_adaptor_class_init (MamdDbusAdaptorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = mamd_dbus_adaptor_dispose;
  object_class->finalize = mamd_dbus_adaptor_finalize;
}

static void
mamd_dbus_adaptor_init (MamdDbusAdaptor *self)
{
  self->senders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, sender_unref);
  self->uid_calls = g_hash_table_new (NULL, NULL);
  g_queue_init (&self->signals);
  self->own_uid = (guint32) getuid ();
}

static GDBusNodeInfo *
load_node_info (void)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  GDBusNodeInfo *info;

  /* looked up in the resource itself: the core is a static library, so a
   * constructor-registered resource could be dropped by the linker */
  bytes = g_resource_lookup_data (mamd_get_resource (), "/org/mamd/Mamd1/org.mamd.Mamd1.xml",
                                  G_RESOURCE_LOOKUP_FLAGS_NONE, &error);
  if (bytes == NULL) {
    g_critical ("the D-Bus interface description is missing from the build: %s",
                error->message);
    return NULL;
  }
  info = g_dbus_node_info_new_for_xml (g_bytes_get_data (bytes, NULL), &error);
  if (info == NULL)
    g_critical ("the D-Bus interface description does not parse: %s", error->message);
  return info;
}

MamdDbusAdaptor *
mamd_dbus_adaptor_new (MamdEngine *engine)
{
  MamdDbusAdaptor *self;

  g_return_val_if_fail (MAMD_IS_ENGINE (engine), NULL);

  /* registers the org.mamd.Mamd1.Error.* names before the first reply */
  (void) mamd_error_quark ();
  self = g_object_new (MAMD_TYPE_DBUS_ADAPTOR, NULL);
  self->engine = g_object_ref (engine);
  self->node_info = load_node_info ();
  if (self->node_info == NULL) {
    g_object_unref (self);
    return NULL;
  }
  mamd_dbus_signals_connect (self, engine);
  return self;
}
