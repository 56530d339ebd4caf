/*
 * Shared by the office365 plugin tests: test-oauth-plugin.c (the module
 * loaded in process) and test-oauth-dbus.c (sign-in through the real mamd).
 * The identities the tokens carry, waiting on the default main context
 * (where the in-process identity provider serves), client secret and CA
 * files, and the SignIn credential.
 */
#pragma once

#include <glib.h>

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
/* The a{sv} credential {"access-token": @token}, floating reference sunk. */
GVariant *token_credential (const char *token);

G_END_DECLS
