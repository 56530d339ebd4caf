/*
 * MamdOauthConfig: one server's [office365] group, parsed and validated by
 * load_config (pure: it reads only the files its keys name). Every key is
 * listed in plugins/oauth/README.md. The client secret, when configured,
 * is held in memory that is wiped on finalize.
 */
#pragma once

#include <glib-object.h>

#include "mamd-oauth-permission.h"

G_BEGIN_DECLS

#define MAMD_OAUTH_DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define MAMD_OAUTH_DEFAULT_PERMISSION_SCOPE "https://msmamservice.api.application/.default"
#define MAMD_OAUTH_DEFAULT_REQUIRED_SCOPE "login.mattermost"

#define MAMD_TYPE_OAUTH_CONFIG (mamd_oauth_config_get_type ())
G_DECLARE_FINAL_TYPE (MamdOauthConfig, mamd_oauth_config, MAMD, OAUTH_CONFIG, GObject)

/* @tenant_id and @client_id come from [Server] and are required; @keyfile
 * may lack @group (defaults apply). Errors: MAMD_ERROR_INVALID_CONFIG
 * naming group and key. */
MamdOauthConfig *mamd_oauth_config_new_from_keyfile (const char  *server_id,
                                                     const char  *tenant_id,
                                                     const char  *client_id,
                                                     GKeyFile    *keyfile,
                                                     const char  *group,
                                                     GError     **error);

const char *mamd_oauth_config_get_server_id (MamdOauthConfig *self);
const char *mamd_oauth_config_get_tenant_id (MamdOauthConfig *self);
const char *mamd_oauth_config_get_client_id (MamdOauthConfig *self);
const char *mamd_oauth_config_get_authority (MamdOauthConfig *self);
const char *mamd_oauth_config_get_discovery_url (MamdOauthConfig *self);
const char *mamd_oauth_config_get_issuer (MamdOauthConfig *self);
const char *mamd_oauth_config_get_token_endpoint (MamdOauthConfig *self);
const char *mamd_oauth_config_get_required_scope (MamdOauthConfig *self);
guint mamd_oauth_config_get_clock_skew (MamdOauthConfig *self);
guint mamd_oauth_config_get_key_refresh_interval (MamdOauthConfig *self);
guint mamd_oauth_config_get_key_refetch_cooldown (MamdOauthConfig *self);
guint mamd_oauth_config_get_http_timeout (MamdOauthConfig *self);
/* NULL: the system CA store */
const char *mamd_oauth_config_get_ca_file (MamdOauthConfig *self);
/* NULL when no ClientSecretFile is set (no permission check) */
const char *mamd_oauth_config_get_client_secret_file (MamdOauthConfig *self);
const char *mamd_oauth_config_get_client_secret (MamdOauthConfig *self);
const char *mamd_oauth_config_get_permission_scope (MamdOauthConfig *self);
guint mamd_oauth_config_get_permission_check_interval (MamdOauthConfig *self);
/* Identifies the signing-key cache this config may share with others:
 * equal for equal discovery URL, HTTP/cache settings and CA file (its path
 * and a digest of its contents at load time, so that a CA file changed on
 * disk gets a new HTTP client at the next reload). */
const char *mamd_oauth_config_get_keys_id (MamdOauthConfig *self);

/* Runtime state attached by the plugin while the config is live. */
MamdOauthPermission *mamd_oauth_config_get_permission (MamdOauthConfig *self);
void mamd_oauth_config_set_permission (MamdOauthConfig *self, MamdOauthPermission *permission);

G_END_DECLS
