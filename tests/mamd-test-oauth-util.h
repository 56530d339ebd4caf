/*
 * Shared by the office365 plugin tests: test-oauth-plugin.c and
 * test-oauth-tls.c (the module loaded in process) and test-oauth-dbus.c
 * (sign-in through the real mamd). The identities the tokens carry, waiting
 * on the default main context (where the in-process identity provider
 * serves), client secret and CA files with the certificates they sign, the
 * SignIn credential, and the module loaded as mamd loads it.
 */
#pragma once

#include <gio/gio.h>

#include "mamd-plugin.h"

G_BEGIN_DECLS

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT "3c9ab5d1-0a5e-4f1a-8f4e-5a2b7c1d9e80"
#define OTHER_TENANT "0c3f5d2a-7b61-4e9a-9f10-2b3c4d5e6f70"
#define OID "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define SCOPE "login.mattermost"
#define SECRET "dev-secret-value-Q~7"
#define GROUP "office365"
#define WAIT_MS 60000

/* A GSourceFunc: sets the gboolean at @user_data, then removes itself. */
gboolean on_wait_timeout (gpointer user_data);
/* Runs the default main context until *@flag is set, at most WAIT_MS;
 * asserts it was set. */
void wait_for_flag (const gboolean *flag);
/* Writes @contents to @dir/@name with permissions @mode; the path. */
char *write_secret (const char *dir, const char *name, const char *contents, int mode);
/* Writes a new self-signed CA certificate (PEM) to @dir/@name, replacing
 * the file; the path. */
char *write_ca_file (const char *dir, const char *name);
/* write_ca_file (), and when @server is not NULL a certificate for
 * 127.0.0.1 (subjectAltName IP:127.0.0.1) that this CA signed, with its
 * private key: what an https identity provider on loopback serves. */
char *write_ca_file_full (const char *dir, const char *name, GTlsCertificate **server);
/* The a{sv} credential {"access-token": @token}, floating reference sunk. */
GVariant *token_credential (const char *token);

/* The office365 module, loaded (once) through the plugin loader as mamd
 * loads it, from $MAMD_BUILD_ROOT/plugins/oauth. */
MamdPlugin *get_plugin (void);
/* A server's key file with [Server] from the arguments and @group_text
 * (may be NULL: no [office365] group at all), loaded by the plugin. */
GObject *load_config_full (const char *tenant, const char *client, const char *server_extra,
                           const char *group_text, GError **error);
/* load_config_full () for TENANT and CLIENT. */
GObject *load_config (const char *group_text, GError **error);

typedef struct {
  gboolean done;
  MamdIdentity *identity;
  GError *error;
} AuthWait;

/* Starts an authentication of @credential with @config; *@wait is filled
 * when it ends. */
void auth_start (GObject *config, GVariant *credential, AuthWait *wait);
/* Runs the main context until *@wait is filled (see wait_for_flag ()). */
void auth_wait (AuthWait *wait);
/* Authenticates @token with @config; the identity, or NULL with @error,
 * whose message never holds the token. */
MamdIdentity *authenticate (GObject *config, const char *token, GError **error);

G_END_DECLS
