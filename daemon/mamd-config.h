/*
 * Configuration: mamd.conf (daemon settings) and servers.d/<id>.conf, one
 * GKeyFile per chat server. Every key is described once, in the key table
 * of mamd-config.c, which the validator, `mamctl check` and the README's
 * configuration reference share.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *path;                  /* mamd.conf that was read, NULL if absent */
  char *license_file;          /* [Daemon] LicenseFile */
  char *license_public_key;    /* [Daemon] LicensePublicKey (PEM) */
  char **client_users;         /* [Daemon] ClientUsers: user names allowed to
                                  call host-integrator methods (root and the
                                  daemon's own user always may) */
  char **admin_users;          /* [Daemon] AdminUsers */
  guint max_sessions_per_uid;  /* [Limits] MaxSessionsPerUser, default 200000 */
  guint max_calls_per_sender;  /* [Limits] MaxCallsInFlightPerSender, default 64 */
  guint max_calls_per_uid;     /* [Limits] MaxCallsInFlightPerUser, default 256 */
  guint sign_in_timeout;       /* [Limits] SignInTimeout seconds, default 60 */
  guint sync_timeout;          /* [Limits] DirectorySyncTimeout seconds, default 600 */
  guint wipe_retention_days;   /* [Daemon] WipeRetentionDays, default 7 */
  guint event_retention_days;  /* [Daemon] EventRetentionDays, default 30 */
  guint directory_sync_interval; /* [Daemon] DirectorySyncInterval seconds, default 3600, 0 off */
} MamdDaemonConfig;

typedef struct {
  char *id;                 /* file name without ".conf": [a-z0-9][a-z0-9_-]* */
  char *path;
  char *name;               /* [Server] Name, display only, defaults to id */
  gboolean enable;          /* [Server] Enable, default false */
  char *tenant_id;          /* [Server] TenantId, canonical GUID or NULL when unset */
  char *client_id;          /* [Server] ClientId, canonical GUID or NULL when unset */
  char *auth_service;       /* [Server] AuthService, NULL when unset */
  char *scope;              /* [Server] Scope: effective IntuneScope, NULL when unset;
                               default api://<ClientId>/login.mattermost */
  char **allowed_platforms; /* [Server] AllowedPlatforms, default ios;android */
  gboolean auto_create_users; /* [Server] AutoCreateUsers, default true */
  GKeyFile *keyfile;        /* the whole file: plugin groups are read from here */
  char **plugin_groups;     /* every group other than [Server], sorted */
} MamdServerConfig;

typedef struct {
  char *dir;
  MamdDaemonConfig *daemon;
  GPtrArray *servers;       /* MamdServerConfig, sorted by id */
} MamdConfig;

/* Loads and validates @config_dir. On any problem returns NULL with
 * MAMD_ERROR_INVALID_CONFIG; every problem, one line each, in the form
 * "<file>: [<group>] <key>: <message>", is appended to @problems when it is
 * not NULL (the error message holds the first one and the count). A missing
 * directory, or a directory with neither mamd.conf nor servers.d/, is an
 * error ("reads no config"). Unknown groups other than plugin groups, unknown
 * keys, wrong types and bad GUIDs are problems. Plugin groups are not
 * validated here: their plugins do that. */
MamdConfig *mamd_config_load (const char *config_dir, GPtrArray *problems, GError **error);
void mamd_config_free (MamdConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdConfig, mamd_config_free)

const MamdServerConfig *mamd_config_lookup_server (const MamdConfig *config, const char *id);

/* Whether @platform is one that AllowedPlatforms may list (ios, android). */
gboolean mamd_config_platform_is_known (const char *platform);

/* Equal in every setting, plugin groups included (for reload). */
gboolean mamd_server_config_equal (const MamdServerConfig *a, const MamdServerConfig *b);

/* The documented key table, for `mamctl config-keys` and the README. */
typedef struct {
  const char *file;        /* "mamd.conf" or "servers.d/<id>.conf" */
  const char *group;
  const char *key;
  const char *type;        /* "boolean", "string", "GUID", "string list", "unsigned" */
  const char *default_value;
  const char *description;
} MamdConfigKey;

const MamdConfigKey *mamd_config_get_keys (guint *n_keys);

G_END_DECLS
