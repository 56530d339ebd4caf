/*
 * mamd-plugin.c: the plugin SDK: error domain, GUID helpers, identity and
 * the MamdPlugin base class with its runner wrappers.
 *
 * The daemon never calls a plugin vfunc directly: the wrappers below turn
 * plugin bugs into errors so that a broken plugin cannot make the daemon
 * act on an undefined answer.
 */
#include "config.h"

#include <string.h>

#include "mamd-plugin.h"

/* ---- errors ---- */

static const GDBusErrorEntry mamd_error_entries[] = {
  { MAMD_ERROR_FAILED, "org.mamd.Mamd1.Error.Failed" },
  { MAMD_ERROR_INVALID_ARGS, "org.mamd.Mamd1.Error.InvalidArgs" },
  { MAMD_ERROR_ACCESS_DENIED, "org.mamd.Mamd1.Error.AccessDenied" },
  { MAMD_ERROR_BUSY, "org.mamd.Mamd1.Error.Busy" },
  { MAMD_ERROR_FORBIDDEN, "org.mamd.Mamd1.Error.Forbidden" },
  { MAMD_ERROR_NOT_LICENSED, "org.mamd.Mamd1.Error.NotLicensed" },
  { MAMD_ERROR_MISSING_AUTH_ACCOUNT, "org.mamd.Mamd1.Error.MissingAuthAccount" },
  { MAMD_ERROR_USER_MISMATCH, "org.mamd.Mamd1.Error.UserMismatch" },
  { MAMD_ERROR_INVALID_RESOURCE, "org.mamd.Mamd1.Error.InvalidResource" },
  { MAMD_ERROR_ENROLLMENT_FAILED, "org.mamd.Mamd1.Error.EnrollmentFailed" },
  { MAMD_ERROR_ENROLLMENT_DECLINED, "org.mamd.Mamd1.Error.EnrollmentDeclined" },
  { MAMD_ERROR_UNSUPPORTED_PLATFORM, "org.mamd.Mamd1.Error.UnsupportedPlatform" },
  { MAMD_ERROR_INVALID_TOKEN, "org.mamd.Mamd1.Error.InvalidToken" },
  { MAMD_ERROR_KEY_UNAVAILABLE, "org.mamd.Mamd1.Error.KeyUnavailable" },
  { MAMD_ERROR_NOT_FOUND, "org.mamd.Mamd1.Error.NotFound" },
  { MAMD_ERROR_SERVER_REMOVED, "org.mamd.Mamd1.Error.ServerRemoved" },
  { MAMD_ERROR_INVALID_CONFIG, "org.mamd.Mamd1.Error.InvalidConfig" },
  { MAMD_ERROR_STORE, "org.mamd.Mamd1.Error.Store" },
  { MAMD_ERROR_PLUGIN_UNAVAILABLE, "org.mamd.Mamd1.Error.PluginUnavailable" },
  { MAMD_ERROR_INVALID_STATE, "org.mamd.Mamd1.Error.InvalidState" },
  { MAMD_ERROR_NOT_SUPPORTED, "org.mamd.Mamd1.Error.NotSupported" },
};

/* Codes are append-only: a new code without a D-Bus name must not build. */
G_STATIC_ASSERT (G_N_ELEMENTS (mamd_error_entries) == MAMD_ERROR_LAST);

GQuark
mamd_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("mamd-error-quark", &quark,
                                      mamd_error_entries,
                                      G_N_ELEMENTS (mamd_error_entries));
  return (GQuark) quark;
}

const char *
mamd_error_to_dbus_name (MamdError code)
{
  if ((guint) code >= G_N_ELEMENTS (mamd_error_entries))
    return NULL;
  return mamd_error_entries[code].dbus_error_name;
}

/* ---- GUIDs ---- */

#define GUID_LEN 36

static gboolean
guid_shape_ok (const char *text, gsize len, gboolean lower_only)
{
  if (len != GUID_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (i == 8 || i == 13 || i == 18 || i == 23)
        {
          if (c != '-')
            return FALSE;
        }
      else if (lower_only ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                          : !g_ascii_isxdigit (c))
        {
          return FALSE;
        }
    }
  return TRUE;
}

char *
mamd_guid_canonicalize (const char *text, const char *what, GError **error)
{
  const char *start = text;
  gsize len;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (what == NULL)
    what = "value";

  if (text == NULL || *text == '\0')
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "%s is empty: expected a GUID of 8-4-4-4-12 hexadecimal "
                   "digits such as 00000000-0000-0000-0000-000000000000", what);
      return NULL;
    }

  len = strlen (text);
  /* Braces come as a pair or not at all: "{guid" is a typo, not a GUID. */
  if (text[0] == '{' && len >= 2 && text[len - 1] == '}')
    {
      start = text + 1;
      len -= 2;
    }

  if (!guid_shape_ok (start, len, FALSE))
    {
      /* The value itself stays out of the message: it may be anything. */
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "%s is not a GUID: expected 8-4-4-4-12 hexadecimal digits "
                   "such as 00000000-0000-0000-0000-000000000000", what);
      return NULL;
    }

  return g_ascii_strdown (start, (gssize) len);
}

char *
mamd_guid_from_bytes (const guint8 *bytes, gsize len, GError **error)
{
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (bytes == NULL || len != 16)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "binary GUID has %" G_GSIZE_FORMAT " bytes, expected 16: "
                   "check the attribute holds a GUID",
                   bytes == NULL ? (gsize) 0 : len);
      return NULL;
    }

  /* Microsoft layout: Data1 (4 bytes), Data2 and Data3 (2 bytes each) are
   * little-endian, Data4 (8 bytes) is in order. */
  return g_strdup_printf ("%02x%02x%02x%02x-%02x%02x-%02x%02x-"
                          "%02x%02x-%02x%02x%02x%02x%02x%02x",
                          bytes[3], bytes[2], bytes[1], bytes[0],
                          bytes[5], bytes[4],
                          bytes[7], bytes[6],
                          bytes[8], bytes[9],
                          bytes[10], bytes[11], bytes[12], bytes[13],
                          bytes[14], bytes[15]);
}

gboolean
mamd_guid_is_canonical (const char *text)
{
  if (text == NULL)
    return FALSE;
  return guid_shape_ok (text, strlen (text), TRUE);
}

/* ---- identity ---- */

G_DEFINE_BOXED_TYPE (MamdIdentity, mamd_identity, mamd_identity_copy, mamd_identity_free)

/* Identity strings end up in D-Bus replies and signals, where invalid
 * UTF-8 would be fatal, so they are made valid here once. */
static char *
dup_valid_utf8 (const char *text)
{
  if (text == NULL)
    return NULL;
  return g_utf8_make_valid (text, -1);
}

MamdIdentity *
mamd_identity_new (const char *object_id,
                   const char *tenant_id,
                   const char *user_name,
                   const char *id_attribute,
                   const char *id_source,
                   GError    **error)
{
  g_autoptr(MamdIdentity) identity = g_new0 (MamdIdentity, 1);
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (object_id == NULL || *object_id == '\0')
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
                           "the identity has no objectId: the credential must "
                           "carry the user's Entra objectId (oid)");
      return NULL;
    }
  identity->object_id = mamd_guid_canonicalize (object_id, "objectId", &local_error);
  if (identity->object_id == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
                   "%s; use the Entra objectId as IdAttribute, no other identifier",
                   local_error->message);
      return NULL;
    }

  identity->tenant_id = mamd_guid_canonicalize (tenant_id, "tenant id", &local_error);
  if (identity->tenant_id == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "%s; the credential must name its Entra tenant",
                   local_error->message);
      return NULL;
    }

  identity->user_name = dup_valid_utf8 (user_name);
  identity->id_attribute = dup_valid_utf8 (id_attribute);
  identity->id_source = dup_valid_utf8 (id_source);
  return g_steal_pointer (&identity);
}

MamdIdentity *
mamd_identity_copy (const MamdIdentity *identity)
{
  MamdIdentity *copy;

  if (identity == NULL)
    return NULL;
  copy = g_new0 (MamdIdentity, 1);
  copy->object_id = g_strdup (identity->object_id);
  copy->tenant_id = g_strdup (identity->tenant_id);
  copy->user_name = g_strdup (identity->user_name);
  copy->id_attribute = g_strdup (identity->id_attribute);
  copy->id_source = g_strdup (identity->id_source);
  return copy;
}

void
mamd_identity_free (MamdIdentity *identity)
{
  if (identity == NULL)
    return;
  g_free (identity->object_id);
  g_free (identity->tenant_id);
  g_free (identity->user_name);
  g_free (identity->id_attribute);
  g_free (identity->id_source);
  g_free (identity);
}

/* ---- the plugin base class ---- */

typedef struct {
  /* The thread that created the instance, i.e. the daemon's main thread:
   * "gate-changed" is emitted there only. */
  GThread *owner_thread;
} MamdPluginPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (MamdPlugin, mamd_plugin, G_TYPE_OBJECT)

enum {
  SIGNAL_GATE_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
mamd_plugin_class_init (MamdPluginClass *klass)
{
  /**
   * MamdPlugin::gate-changed:
   * @config: the config object whose gate may have changed
   */
  signals[SIGNAL_GATE_CHANGED] =
    g_signal_new ("gate-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_OBJECT);
}

static void
mamd_plugin_init (MamdPlugin *self)
{
  MamdPluginPrivate *priv = mamd_plugin_get_instance_private (self);

  priv->owner_thread = g_thread_self ();
}

const char *
mamd_plugin_get_method (MamdPlugin *self)
{
  g_return_val_if_fail (MAMD_IS_PLUGIN (self), NULL);
  return MAMD_PLUGIN_GET_CLASS (self)->method;
}

const char *
mamd_plugin_get_description (MamdPlugin *self)
{
  g_return_val_if_fail (MAMD_IS_PLUGIN (self), NULL);
  return MAMD_PLUGIN_GET_CLASS (self)->description;
}

MamdPluginCapabilities
mamd_plugin_get_capabilities (MamdPlugin *self)
{
  g_return_val_if_fail (MAMD_IS_PLUGIN (self), MAMD_PLUGIN_CAP_NONE);
  return MAMD_PLUGIN_GET_CLASS (self)->capabilities;
}

static const char *
plugin_name (MamdPlugin *self)
{
  const char *method = MAMD_PLUGIN_GET_CLASS (self)->method;

  return method != NULL ? method : G_OBJECT_TYPE_NAME (self);
}

static void
set_not_supported (MamdPlugin *self, const char *vfunc, GError **error)
{
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_SUPPORTED,
               "%s: the plugin does not implement %s", plugin_name (self), vfunc);
}

static void
set_plugin_bug (MamdPlugin *self, const char *vfunc, const char *what, GError **error)
{
  g_warning ("plugin %s: %s %s (plugin bug)", plugin_name (self), vfunc, what);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED,
               "%s: plugin %s %s (plugin bug)", plugin_name (self), vfunc, what);
}

/* Gives a plugin error its context. A cancellation passes unchanged so
 * that callers can still recognise it, but only when @cancellable (the
 * call's own) was cancelled; foreign domains become MAMD_ERROR_FAILED
 * because only MAMD_ERROR codes have stable D-Bus names. Messages go into
 * D-Bus replies, so text that is not UTF-8 is made valid. */
static void
propagate_plugin_error (MamdPlugin *self, GCancellable *cancellable, GError *plugin_error,
                        GError **error)
{
  gboolean ours;

  if (g_error_matches (plugin_error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
      g_cancellable_is_cancelled (cancellable))
    {
      g_propagate_error (error, plugin_error);
      return;
    }
  ours = plugin_error->domain == MAMD_ERROR &&
         plugin_error->code >= 0 && plugin_error->code < MAMD_ERROR_LAST;
  if (!ours || !g_utf8_validate (plugin_error->message, -1, NULL))
    {
      g_autofree char *message = g_utf8_make_valid (plugin_error->message, -1);
      GError *converted = g_error_new_literal (MAMD_ERROR,
                                               ours ? plugin_error->code : MAMD_ERROR_FAILED,
                                               message);
      g_error_free (plugin_error);
      plugin_error = converted;
    }
  g_propagate_prefixed_error (error, plugin_error, "%s: ", plugin_name (self));
}

static gboolean
text_is_valid (const char *text)
{
  return text == NULL || g_utf8_validate (text, -1, NULL);
}

/* Both GUIDs canonical, and every string UTF-8: they go into D-Bus
 * replies and the state store. */
static gboolean
identity_is_valid (const MamdIdentity *identity)
{
  return identity != NULL &&
         mamd_guid_is_canonical (identity->object_id) &&
         mamd_guid_is_canonical (identity->tenant_id) &&
         text_is_valid (identity->user_name) &&
         text_is_valid (identity->id_attribute) &&
         text_is_valid (identity->id_source);
}

GObject *
mamd_plugin_load_config (MamdPlugin *self, const char *server_id,
                         const char *tenant_id, const char *client_id,
                         GKeyFile *keyfile, const char *group,
                         GError **error)
{
  MamdPluginClass *klass;
  g_autoptr(GObject) config = NULL;
  GError *local_error = NULL;

  g_return_val_if_fail (MAMD_IS_PLUGIN (self), NULL);
  g_return_val_if_fail (keyfile != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  klass = MAMD_PLUGIN_GET_CLASS (self);
  if (klass->load_config == NULL)
    {
      set_not_supported (self, "load_config", error);
      return NULL;
    }

  config = klass->load_config (self, server_id, tenant_id, client_id, keyfile,
                               group, &local_error);
  if (local_error != NULL)
    {
      /* A result with an error is a plugin bug too; the error wins. */
      propagate_plugin_error (self, NULL, local_error, error);
      return NULL;
    }
  if (config == NULL)
    {
      set_plugin_bug (self, "load_config", "failed without saying why", error);
      return NULL;
    }
  if (!G_IS_OBJECT (config))
    {
      /* Not ours to free: whatever it is, it is not a GObject. */
      g_steal_pointer (&config);
      set_plugin_bug (self, "load_config", "returned something that is not a GObject", error);
      return NULL;
    }
  return g_steal_pointer (&config);
}

void
mamd_plugin_config_activate (MamdPlugin *self, GObject *config, gboolean active)
{
  MamdPluginClass *klass;

  g_return_if_fail (MAMD_IS_PLUGIN (self));

  klass = MAMD_PLUGIN_GET_CLASS (self);
  if (klass->config_activate != NULL)
    klass->config_activate (self, config, active);
}

/* ---- calls into a plugin's async vfuncs ---- */

/* One call of authenticate_async or sync_async. The caller's task is
 * answered by whichever comes first: the plugin's answer, or the
 * cancellation of the call's cancellable, so that a plugin that ignores
 * its cancellable cannot hold a call (and its caller's quota) forever; a
 * late answer is dropped. The plugin's callback gets the call's serial,
 * not a pointer: an answer after the first (a plugin bug) finds nothing
 * and is ignored, instead of touching freed memory. */
typedef struct {
  MamdPlugin *plugin;        /* ref */
  GTask *task;               /* the caller's; NULL once answered */
  GCancellable *cancellable; /* ref, or NULL */
  gulong cancelled_id;
} PluginCall;

static GMutex calls_lock;
static GHashTable *calls; /* serial (guint) -> PluginCall */
static guint last_serial;

static void
plugin_call_free (PluginCall *call)
{
  /* not g_cancellable_disconnect(), which deadlocks when the plugin
   * answers from a "cancelled" handler; ours only looks up the table */
  if (call->cancelled_id != 0)
    g_signal_handler_disconnect (call->cancellable, call->cancelled_id);
  g_clear_object (&call->cancellable);
  g_clear_object (&call->task);
  g_object_unref (call->plugin);
  g_free (call);
}

static gboolean
return_cancelled (gpointer data)
{
  g_task_return_error_if_cancelled (G_TASK (data));
  return G_SOURCE_REMOVE;
}

static void
plugin_call_cancelled (GCancellable *cancellable, gpointer serial)
{
  PluginCall *call;
  GTask *task = NULL;

  g_mutex_lock (&calls_lock);
  call = g_hash_table_lookup (calls, serial);
  if (call != NULL)
    task = g_steal_pointer (&call->task);
  g_mutex_unlock (&calls_lock);
  if (task != NULL)
    {
      /* from an idle: the canceller (a loop over calls, say) is not
       * re-entered */
      GSource *idle = g_idle_source_new ();

      g_source_set_callback (idle, return_cancelled, task, g_object_unref);
      g_source_set_static_name (idle, "[mamd] plugin call cancelled");
      g_source_attach (idle, g_task_get_context (task));
      g_source_unref (idle);
    }
}

/* Registers a call answering @task (taken); returns the user_data for the
 * plugin's callback. */
static gpointer
plugin_call_start (MamdPlugin *self, GTask *task, GCancellable *cancellable)
{
  PluginCall *call = g_new0 (PluginCall, 1);
  gpointer serial;

  call->plugin = g_object_ref (self);
  call->task = task;
  g_mutex_lock (&calls_lock);
  if (calls == NULL)
    calls = g_hash_table_new (NULL, NULL);
  do
    serial = GUINT_TO_POINTER (++last_serial);
  while (serial == NULL || g_hash_table_contains (calls, serial));
  g_hash_table_insert (calls, serial, call);
  g_mutex_unlock (&calls_lock);
  if (cancellable != NULL)
    {
      call->cancellable = g_object_ref (cancellable);
      call->cancelled_id = g_cancellable_connect (cancellable,
                                                  G_CALLBACK (plugin_call_cancelled),
                                                  serial, NULL);
    }
  return serial;
}

/* The call answered with @serial, out of the table, and its caller's task
 * in @task (NULL when cancelled first); NULL when it was answered before. */
static PluginCall *
plugin_call_take (gpointer serial, GTask **task)
{
  PluginCall *call = NULL;

  g_mutex_lock (&calls_lock);
  if (g_hash_table_steal_extended (calls, serial, NULL, (gpointer *) &call))
    *task = g_steal_pointer (&call->task);
  g_mutex_unlock (&calls_lock);
  if (call == NULL)
    g_warning ("a plugin answered one call twice (plugin bug): the second answer is ignored");
  return call;
}

static void
authenticate_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  PluginCall *call = plugin_call_take (user_data, &task);
  MamdPlugin *self;
  g_autoptr(MamdIdentity) identity = NULL;
  GError *local_error = NULL;
  g_autoptr(GError) error = NULL;

  if (call == NULL)
    return;
  /* not @source: a plugin may answer through another object's task; the
   * plugin outlives the call as @task's source object */
  self = call->plugin;
  identity = MAMD_PLUGIN_GET_CLASS (self)->authenticate_finish (self, result, &local_error);
  plugin_call_free (call);
  if (task == NULL)
    {
      /* cancelled, and answered so already */
      g_clear_error (&local_error);
      return;
    }
  if (local_error != NULL)
    {
      propagate_plugin_error (self, g_task_get_cancellable (task), local_error, &error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (identity == NULL)
    {
      set_plugin_bug (self, "authenticate", "failed without saying why", &error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (!identity_is_valid (identity))
    {
      set_plugin_bug (self, "authenticate",
                      "returned an identity without a canonical objectId and tenant id, "
                      "or with text that is not UTF-8",
                      &error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&identity),
                         (GDestroyNotify) mamd_identity_free);
}

void
mamd_plugin_authenticate_async (MamdPlugin *self, GObject *config,
                                GVariant *credential, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
  MamdPluginClass *klass;
  g_autoptr(GTask) task = NULL;
  g_autoptr(GVariant) owned_credential = NULL;

  g_return_if_fail (MAMD_IS_PLUGIN (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, mamd_plugin_authenticate_async);

  if (credential != NULL)
    owned_credential = g_variant_ref_sink (credential);
  if (owned_credential == NULL ||
      !g_variant_is_of_type (owned_credential, G_VARIANT_TYPE_VARDICT))
    {
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                               "%s: the credential must be a dictionary (a{sv})",
                               plugin_name (self));
      return;
    }

  klass = MAMD_PLUGIN_GET_CLASS (self);
  if (klass->authenticate_async == NULL || klass->authenticate_finish == NULL)
    {
      g_autoptr(GError) error = NULL;

      set_not_supported (self, "authenticate", &error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  klass->authenticate_async (self, config, owned_credential, cancellable, authenticate_cb,
                             plugin_call_start (self, g_steal_pointer (&task), cancellable));
}

MamdIdentity *
mamd_plugin_authenticate_finish (MamdPlugin *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        mamd_plugin_authenticate_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
sync_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  PluginCall *call = plugin_call_take (user_data, &task);
  MamdPlugin *self;
  g_autoptr(GPtrArray) users = NULL;
  GError *local_error = NULL;
  g_autoptr(GError) error = NULL;

  if (call == NULL)
    return;
  /* not @source: a plugin may answer through another object's task; the
   * plugin outlives the call as @task's source object */
  self = call->plugin;
  users = MAMD_PLUGIN_GET_CLASS (self)->sync_finish (self, result, &local_error);
  plugin_call_free (call);
  if (task == NULL)
    {
      /* cancelled, and answered so already */
      g_clear_error (&local_error);
      return;
    }
  if (local_error != NULL)
    {
      propagate_plugin_error (self, g_task_get_cancellable (task), local_error, &error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (users == NULL)
    {
      set_plugin_bug (self, "sync", "failed without saying why", &error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* The contract says the array owns MamdIdentity elements; make that true
   * even when the plugin forgot, so the caller never leaks. */
  g_ptr_array_set_free_func (users, (GDestroyNotify) mamd_identity_free);
  for (guint i = 0; i < users->len; i++)
    {
      if (!identity_is_valid (g_ptr_array_index (users, i)))
        {
          set_plugin_bug (self, "sync",
                          "returned a user without a canonical objectId and tenant id, "
                          "or with text that is not UTF-8",
                          &error);
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
    }
  g_task_return_pointer (task, g_steal_pointer (&users), (GDestroyNotify) g_ptr_array_unref);
}

void
mamd_plugin_sync_async (MamdPlugin *self, GObject *config, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
  MamdPluginClass *klass;
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (MAMD_IS_PLUGIN (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, mamd_plugin_sync_async);

  klass = MAMD_PLUGIN_GET_CLASS (self);
  if (klass->sync_async == NULL || klass->sync_finish == NULL)
    {
      g_autoptr(GError) error = NULL;

      set_not_supported (self, "sync", &error);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  klass->sync_async (self, config, cancellable, sync_cb,
                     plugin_call_start (self, g_steal_pointer (&task), cancellable));
}

GPtrArray *
mamd_plugin_sync_finish (MamdPlugin *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        mamd_plugin_sync_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

gboolean
mamd_plugin_check_gate (MamdPlugin *self, GObject *config, GError **error)
{
  MamdPluginClass *klass;
  GError *local_error = NULL;
  gboolean open;

  g_return_val_if_fail (MAMD_IS_PLUGIN (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = MAMD_PLUGIN_GET_CLASS (self);
  if (klass->check_gate == NULL)
    return TRUE;

  open = klass->check_gate (self, config, &local_error);
  if (local_error != NULL)
    {
      /* An error with TRUE is a plugin bug; closed is the safe reading. */
      propagate_plugin_error (self, NULL, local_error, error);
      return FALSE;
    }
  if (!open)
    {
      set_plugin_bug (self, "check_gate", "failed without saying why", error);
      return FALSE;
    }
  return TRUE;
}

void
mamd_plugin_diagnose (MamdPlugin *self, GObject *config, GPtrArray *findings)
{
  MamdPluginClass *klass;
  guint first;

  g_return_if_fail (MAMD_IS_PLUGIN (self));
  g_return_if_fail (findings != NULL);

  klass = MAMD_PLUGIN_GET_CLASS (self);
  if (klass->diagnose == NULL)
    return;
  first = findings->len;
  klass->diagnose (self, config, findings);
  /* findings are shown and sent over D-Bus: no NULL, only UTF-8 */
  for (guint i = findings->len; i > first; i--)
    {
      char *finding = g_ptr_array_index (findings, i - 1);

      if (finding == NULL)
        g_ptr_array_remove_index (findings, i - 1);
      else if (!g_utf8_validate (finding, -1, NULL))
        {
          findings->pdata[i - 1] = g_utf8_make_valid (finding, -1);
          g_free (finding);
        }
    }
}

typedef struct {
  MamdPlugin *plugin;
  GObject *config;
} GateChangedData;

static void
gate_changed_data_free (gpointer data)
{
  GateChangedData *gcd = data;

  g_object_unref (gcd->plugin);
  g_clear_object (&gcd->config);
  g_free (gcd);
}

static gboolean
gate_changed_idle (gpointer data)
{
  GateChangedData *gcd = data;

  g_signal_emit (gcd->plugin, signals[SIGNAL_GATE_CHANGED], 0, gcd->config);
  return G_SOURCE_REMOVE;
}

void
mamd_plugin_gate_changed (MamdPlugin *self, GObject *config)
{
  MamdPluginPrivate *priv;
  GateChangedData *gcd;

  g_return_if_fail (MAMD_IS_PLUGIN (self));
  g_return_if_fail (config == NULL || G_IS_OBJECT (config));

  priv = mamd_plugin_get_instance_private (self);
  if (g_thread_self () == priv->owner_thread)
    {
      g_signal_emit (self, signals[SIGNAL_GATE_CHANGED], 0, config);
      return;
    }

  /* Plugins may notice a change on a worker thread; listeners only ever
   * run on the main thread. */
  gcd = g_new0 (GateChangedData, 1);
  gcd->plugin = g_object_ref (self);
  gcd->config = config != NULL ? g_object_ref (config) : NULL;
  {
    g_autoptr(GSource) source = g_idle_source_new ();

    g_source_set_callback (source, gate_changed_idle, gcd, gate_changed_data_free);
    g_source_set_static_name (source, "[mamd] gate-changed");
    g_source_attach (source, g_main_context_default ());
  }
}
