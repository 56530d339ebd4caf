/*
 * mamd-plugin.h: the installed, versioned ABI for mamd identity plugins.
 *
 * A plugin turns a credential into a verified identity whose key is the
 * Entra objectId. It is a GObject subclass of MamdPlugin living in a shared
 * module that exports one query function (see MAMD_PLUGIN_DEFINE).
 *
 * ABI rules: MAMD_PLUGIN_ABI_VERSION changes whenever a public struct or the
 * vtable changes incompatibly. New vfuncs are appended by taking a slot from
 * the class padding, which keeps the version.
 */
#pragma once

#include <gio/gio.h>
#include <gmodule.h>

G_BEGIN_DECLS

#define MAMD_PLUGIN_ABI_VERSION 1u

/* ---- errors: one domain for daemon and plugins, append-only codes ---- */

#define MAMD_ERROR (mamd_error_quark ())
GQuark mamd_error_quark (void);

/* D-Bus name of each code: org.mamd.Mamd1.Error.<Name> */
typedef enum {
  MAMD_ERROR_FAILED,               /* Failed */
  MAMD_ERROR_INVALID_ARGS,         /* InvalidArgs */
  MAMD_ERROR_ACCESS_DENIED,        /* AccessDenied */
  MAMD_ERROR_BUSY,                 /* Busy */
  MAMD_ERROR_FORBIDDEN,            /* Forbidden: the MAM gate is closed */
  MAMD_ERROR_NOT_LICENSED,         /* NotLicensed */
  MAMD_ERROR_MISSING_AUTH_ACCOUNT, /* MissingAuthAccount: no oid / bad IdAttribute */
  MAMD_ERROR_USER_MISMATCH,        /* UserMismatch */
  MAMD_ERROR_INVALID_RESOURCE,     /* InvalidResource: AADSTS650057 */
  MAMD_ERROR_ENROLLMENT_FAILED,    /* EnrollmentFailed */
  MAMD_ERROR_ENROLLMENT_DECLINED,  /* EnrollmentDeclined */
  MAMD_ERROR_UNSUPPORTED_PLATFORM, /* UnsupportedPlatform */
  MAMD_ERROR_INVALID_TOKEN,        /* InvalidToken: signature, expired, issuer, ... */
  MAMD_ERROR_KEY_UNAVAILABLE,      /* KeyUnavailable: retryable, signing key not fetchable */
  MAMD_ERROR_NOT_FOUND,            /* NotFound: no such server, session, wipe */
  MAMD_ERROR_SERVER_REMOVED,       /* ServerRemoved: removed from the device after a failure */
  MAMD_ERROR_INVALID_CONFIG,       /* InvalidConfig */
  MAMD_ERROR_STORE,                /* Store: the state store failed */
  MAMD_ERROR_PLUGIN_UNAVAILABLE,   /* PluginUnavailable */
  MAMD_ERROR_INVALID_STATE,        /* InvalidState: transition not allowed */
  MAMD_ERROR_NOT_SUPPORTED,        /* NotSupported */
  MAMD_ERROR_LAST                  /*< skip >*/
} MamdError;

const char *mamd_error_to_dbus_name (MamdError code);

/* ---- GUIDs ---- */

/* Returns the canonical (lowercase, hyphenated 8-4-4-4-12) form of @text,
 * accepting upper or lower case hex and an optional pair of braces; NULL with
 * MAMD_ERROR_INVALID_ARGS otherwise. @what names the value in the error. */
char *mamd_guid_canonicalize (const char *text, const char *what, GError **error);
/* Canonical string of a 16-byte binary GUID in Microsoft mixed-endian layout
 * (as stored in AD attributes such as msDS-aadObjectId). */
char *mamd_guid_from_bytes (const guint8 *bytes, gsize len, GError **error);
gboolean mamd_guid_is_canonical (const char *text);

/* ---- verified identity ---- */

typedef struct {
  char *object_id;    /* canonical objectId GUID: the identity */
  char *tenant_id;    /* canonical tenant GUID */
  char *user_name;    /* display only, never used for matching; may be NULL */
  char *id_attribute; /* provenance: claim or attribute name, e.g. "oid" */
  char *id_source;    /* provenance: where it came from, e.g. the token issuer */
} MamdIdentity;

#define MAMD_TYPE_IDENTITY (mamd_identity_get_type ())
GType mamd_identity_get_type (void);
/* Validates and canonicalises both GUIDs; MAMD_ERROR_MISSING_AUTH_ACCOUNT
 * when @object_id is missing or not a GUID, MAMD_ERROR_INVALID_TOKEN when
 * @tenant_id is. */
MamdIdentity *mamd_identity_new (const char *object_id,
                                 const char *tenant_id,
                                 const char *user_name,
                                 const char *id_attribute,
                                 const char *id_source,
                                 GError    **error);
MamdIdentity *mamd_identity_copy (const MamdIdentity *identity);
void mamd_identity_free (MamdIdentity *identity);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdIdentity, mamd_identity_free)

/* ---- the plugin base class ---- */

typedef enum {
  MAMD_PLUGIN_CAP_NONE = 0,
  MAMD_PLUGIN_CAP_SIGN_IN = 1 << 0,          /* authenticates credentials */
  MAMD_PLUGIN_CAP_DIRECTORY_SYNC = 1 << 1,   /* provisions users proactively */
  MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE = 1 << 2, /* may be a server's AuthService */
  /* a first sign-in may create the user record (where the server's
   * AutoCreateUsers allows it), as an OAuth sign-in may; without it users
   * must exist already (SAML: first web login or LDAP provisioning) */
  MAMD_PLUGIN_CAP_CREATES_USERS = 1 << 3,
} MamdPluginCapabilities;

#define MAMD_TYPE_PLUGIN (mamd_plugin_get_type ())
G_DECLARE_DERIVABLE_TYPE (MamdPlugin, mamd_plugin, MAMD, PLUGIN, GObject)

struct _MamdPluginClass {
  GObjectClass parent_class;

  /* class data, set in class_init */
  const char *method;      /* auth method name: [a-z0-9_-]+, e.g. "office365" */
  const char *description; /* one line for `mamctl plugins`, UTF-8 */
  MamdPluginCapabilities capabilities;

  /* Parses and validates the plugin's group of one server's configuration
   * file. Pure: no I/O beyond reading files the keys name, no side effects.
   * @group may be absent from @keyfile (defaults apply). Errors are
   * MAMD_ERROR_INVALID_CONFIG naming the key. Returns a new object holding
   * the parsed settings; the daemon owns it and hands it back to the other
   * vfuncs. @server_id, @tenant_id and @client_id come from the [Server]
   * group (tenant and client may be NULL). Required. */
  GObject *(*load_config) (MamdPlugin  *self,
                           const char  *server_id,
                           const char  *tenant_id,
                           const char  *client_id,
                           GKeyFile    *keyfile,
                           const char  *group,
                           GError     **error);

  /* Called on the main thread when @config becomes live (start, reload) and
   * when it stops being live (@active FALSE): start or stop background
   * work such as key prefetch or permission checks. Every reload loads a
   * new config for each server and activates it before it deactivates the
   * one it replaces, so state worth keeping can be carried over. Optional. */
  void (*config_activate) (MamdPlugin *self, GObject *config, gboolean active);

  /* Authenticates @credential (a{sv}, plugin-defined keys) into a verified
   * identity. Must not block the main loop. Required with CAP_SIGN_IN. */
  void (*authenticate_async) (MamdPlugin         *self,
                              GObject            *config,
                              GVariant           *credential,
                              GCancellable       *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer            user_data);
  MamdIdentity *(*authenticate_finish) (MamdPlugin   *self,
                                        GAsyncResult *result,
                                        GError      **error);

  /* Lists the directory's users (GPtrArray of MamdIdentity). Required with
   * CAP_DIRECTORY_SYNC. */
  void (*sync_async) (MamdPlugin         *self,
                      GObject            *config,
                      GCancellable       *cancellable,
                      GAsyncReadyCallback callback,
                      gpointer            user_data);
  GPtrArray *(*sync_finish) (MamdPlugin *self, GAsyncResult *result, GError **error);

  /* Whether the plugin lets the MAM gate of this server open, e.g. FALSE with
   * MAMD_ERROR_INVALID_RESOURCE when the MAM service permission lacks admin
   * consent. Optional (open when unset). Call mamd_plugin_gate_changed()
   * when the answer changes. */
  gboolean (*check_gate) (MamdPlugin *self, GObject *config, GError **error);

  /* Appends human-readable findings about a live @config (strings) to
   * @findings, for `mamctl servers` (`mamctl check` only loads configs:
   * load_config is its check). Optional. */
  void (*diagnose) (MamdPlugin *self, GObject *config, GPtrArray *findings);

  /*< private >*/
  gpointer padding[16];
};

const char *mamd_plugin_get_method (MamdPlugin *self);
const char *mamd_plugin_get_description (MamdPlugin *self);
MamdPluginCapabilities mamd_plugin_get_capabilities (MamdPlugin *self);

/* Runner wrappers: the daemon calls vfuncs only through these. They catch
 * plugin bugs (missing vfunc, FALSE/NULL without error, an identity whose
 * GUIDs are not canonical or whose strings are not UTF-8) and prefix every
 * error with the plugin's method name. Error messages and findings that
 * are not UTF-8 are made valid; errors outside MAMD_ERROR become
 * MAMD_ERROR_FAILED; G_IO_ERROR_CANCELLED passes as such only when the
 * call's own cancellable was cancelled. A plugin may finish through a task
 * whose source object is not the plugin. */
GObject *mamd_plugin_load_config (MamdPlugin *self, const char *server_id,
                                  const char *tenant_id, const char *client_id,
                                  GKeyFile *keyfile, const char *group,
                                  GError **error);
void mamd_plugin_config_activate (MamdPlugin *self, GObject *config, gboolean active);
void mamd_plugin_authenticate_async (MamdPlugin *self, GObject *config,
                                     GVariant *credential, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
MamdIdentity *mamd_plugin_authenticate_finish (MamdPlugin *self, GAsyncResult *result,
                                               GError **error);
void mamd_plugin_sync_async (MamdPlugin *self, GObject *config, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *mamd_plugin_sync_finish (MamdPlugin *self, GAsyncResult *result, GError **error);
gboolean mamd_plugin_check_gate (MamdPlugin *self, GObject *config, GError **error);
void mamd_plugin_diagnose (MamdPlugin *self, GObject *config, GPtrArray *findings);

/* For plugins: announce that check_gate() may answer differently now for
 * @config. Emits the "gate-changed" signal (GObject *config) on the main
 * thread. */
void mamd_plugin_gate_changed (MamdPlugin *self, GObject *config);

/* ---- the module entry point ---- */

typedef struct {
  guint32 abi_version;     /* MAMD_PLUGIN_ABI_VERSION the module was built with */
  const char *name;        /* module name for logs */
  const char *version;     /* the plugin's own version string */
  GType (*get_type) (void);
} MamdPluginModuleInfo;

#define MAMD_PLUGIN_QUERY_SYMBOL "mamd_plugin_module_query"
typedef const MamdPluginModuleInfo *(*MamdPluginQueryFunc) (void);

/* Put once in a plugin module:
 *   MAMD_PLUGIN_DEFINE ("example", "1.0", example_plugin_get_type)
 */
#define MAMD_PLUGIN_DEFINE(name_, version_, get_type_)                          \
  G_MODULE_EXPORT const MamdPluginModuleInfo *mamd_plugin_module_query (void); \
  G_MODULE_EXPORT const MamdPluginModuleInfo *mamd_plugin_module_query (void)  \
  {                                                                             \
    static const MamdPluginModuleInfo info = {                                 \
      MAMD_PLUGIN_ABI_VERSION, name_, version_, get_type_                      \
    };                                                                          \
    return &info;                                                               \
  }

G_END_DECLS
