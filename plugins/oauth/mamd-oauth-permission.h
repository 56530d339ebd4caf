/*
 * MamdOauthPermission: the guide's mandatory server permission. With the
 * server app's client secret it requests a client-credentials token for the
 * MAM service scope (https://msmamservice.api.application/.default) at the
 * tenant's token endpoint, at start, on demand and periodically.
 * AADSTS650057 closes the server's MAM gate with MAMD_ERROR_INVALID_RESOURCE
 * naming the missing permission and admin consent, and only an issued token
 * opens it again; other failures are reported with their AADSTS code and
 * description and leave the gate as it was.
 */
#pragma once

#include <gio/gio.h>

#include "mamd-oauth-http.h"

G_BEGIN_DECLS

typedef enum {
  MAMD_OAUTH_PERMISSION_UNKNOWN,  /* not checked yet */
  MAMD_OAUTH_PERMISSION_GRANTED,  /* a token was issued */
  MAMD_OAUTH_PERMISSION_MISSING,  /* AADSTS650057: gate closed */
  MAMD_OAUTH_PERMISSION_ERROR,    /* a check failed while the gate was open:
                                   * reported, the gate stays open */
} MamdOauthPermissionState;

/* What the token endpoint's answer (HTTP @status, body @data) means: a
 * token (GRANTED), AADSTS650057 (MISSING), or anything else (ERROR: another
 * OAuth error, or no usable answer), which is a failed check that leaves a
 * MISSING state as it is. *detail says why, one line, scrubbed of @secret
 * (raw and form-encoded). Pure; the permission object uses it, the fuzz
 * target too. */
MamdOauthPermissionState mamd_oauth_permission_read_answer (guint status, const char *data,
                                                            gsize len, const char *secret,
                                                            const char *scope, char **detail);

#define MAMD_TYPE_OAUTH_PERMISSION (mamd_oauth_permission_get_type ())
G_DECLARE_FINAL_TYPE (MamdOauthPermission, mamd_oauth_permission, MAMD, OAUTH_PERMISSION, GObject)

/* @client_secret is copied into memory that is wiped on finalize; it never
 * reaches a log or an error. @interval seconds between checks. Emits
 * "changed" (no args) on the main thread when the state changes. */
MamdOauthPermission *mamd_oauth_permission_new (MamdOauthHttp *http, const char *token_endpoint,
                                                const char *client_id, const char *client_secret,
                                                const char *scope, guint interval);
/* Takes over what @previous (the permission of the config this one
 * replaces on reload) last found, so the gate keeps its state until this
 * object's own first check answers. Before start (). */
void mamd_oauth_permission_carry_over (MamdOauthPermission *self,
                                       MamdOauthPermission *previous);
void mamd_oauth_permission_start (MamdOauthPermission *self);
void mamd_oauth_permission_stop (MamdOauthPermission *self);
void mamd_oauth_permission_check_now (MamdOauthPermission *self);
/* FALSE with MAMD_ERROR_INVALID_RESOURCE only in state MISSING. */
gboolean mamd_oauth_permission_check_gate (MamdOauthPermission *self, GError **error);
MamdOauthPermissionState mamd_oauth_permission_get_state (MamdOauthPermission *self);
/* "granted (checked 5 s ago)", "AADSTS650057: ...", "AADSTS7000215: invalid client secret ..." */
char *mamd_oauth_permission_describe (MamdOauthPermission *self);

G_END_DECLS
