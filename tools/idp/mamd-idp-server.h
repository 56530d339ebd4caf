/*
 * MamdIdpServer: a loopback OpenID provider on libsoup 3's SoupServer, for
 * development, the demo and the tests. Serves, for every tenant:
 *   GET  /<tid>/v2.0/.well-known/openid-configuration  (issuer, jwks_uri,
 *        token_endpoint, id_token_signing_alg_values_supported ...)
 *   GET  /<tid>/discovery/v2.0/keys                    JWKS
 *   POST /<tid>/oauth2/v2.0/token                      client credentials (secret
 *        in the form or in an Authorization: Basic header)
 * Keys rotate on demand (mamd_idp_server_rotate_key): the new key is
 * published and signs new tokens, the previous one stays published until the
 * next rotation. Failure injection for tests: down (503 everywhere),
 * requests held unanswered until the test releases them, AADSTS650057 from
 * the token endpoint, any other AADSTS error. Counts requests per path.
 * Plain http, or https with a certificate the caller provides.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <openssl/evp.h>

G_BEGIN_DECLS

#define MAMD_TYPE_IDP_SERVER (mamd_idp_server_get_type ())
G_DECLARE_FINAL_TYPE (MamdIdpServer, mamd_idp_server, MAMD, IDP_SERVER, GObject)

/* Listens on 127.0.0.1, @port 0 = any free port. */
MamdIdpServer *mamd_idp_server_new (guint port, GError **error);
/* The same over TLS when @certificate (with its private key; may be NULL
 * for plain http) is given: the authority and every URL the provider
 * advertises are then https. */
MamdIdpServer *mamd_idp_server_new_full (guint port, GTlsCertificate *certificate,
                                         GError **error);
/* "http://127.0.0.1:<port>" (or https): use as the plugin's Authority. */
const char *mamd_idp_server_get_authority (MamdIdpServer *self);
/* Registers a confidential client allowed to get MAM service tokens. */
void mamd_idp_server_add_client (MamdIdpServer *self, const char *tenant_id,
                                 const char *client_id, const char *client_secret);
void mamd_idp_server_rotate_key (MamdIdpServer *self);
/* mamd_idp_server_rotate_key () that reports a failed key generation
 * instead of logging it (the keys are then unchanged). */
gboolean mamd_idp_server_rotate_key_full (MamdIdpServer *self, GError **error);
const char *mamd_idp_server_get_current_kid (MamdIdpServer *self);
/* The key still published from before the last rotation, NULL before any. */
const char *mamd_idp_server_get_previous_kid (MamdIdpServer *self);
EVP_PKEY *mamd_idp_server_get_current_key (MamdIdpServer *self);
/* A valid v2 access token from the current key (see mamd_idp_mint_access_token). */
char *mamd_idp_server_mint (MamdIdpServer *self, const char *tenant_id, const char *client_id,
                            const char *scope, const char *oid, const char *user,
                            gint64 lifetime);
/* mamd_idp_server_mint () with chosen claims, for the developer tool:
 * @client_id, @scope, @oid and @user may be NULL (aud, scp, oid or
 * preferred_username left out); the claims named in @without
 * (NULL-terminated, may be NULL) are removed; then every member of @set
 * (may be NULL) is set, replacing the default; every member of
 * @header_set (may be NULL) is set in the header (see
 * mamd_idp_mint_claims_full ()). MAMD_ERROR_INVALID_ARGS when @without
 * names a claim that such a token never has (a typo). */
char *mamd_idp_server_mint_custom (MamdIdpServer *self, const char *tenant_id,
                                   const char *client_id, const char *scope, const char *oid,
                                   const char *user, gint64 lifetime, JsonObject *header_set,
                                   JsonObject *set, const char *const *without,
                                   GError **error);

void mamd_idp_server_set_down (MamdIdpServer *self, gboolean down);
/* From now on, requests for paths ending in @path_suffix (NULL: every
 * path) are counted, then paused unanswered until mamd_idp_server_release ():
 * a test learns from mamd_idp_server_get_n_held () that a fetch is in
 * flight, and keeps it there for as long as it checks what must go on
 * meanwhile, without timing anything. */
void mamd_idp_server_hold (MamdIdpServer *self, const char *path_suffix);
/* Stops holding and answers every held request from the provider's state
 * now (its current keys, down or not). */
void mamd_idp_server_release (MamdIdpServer *self);
/* Requests held now (a client that gave up on one is not noticed). */
guint mamd_idp_server_get_n_held (MamdIdpServer *self);
/* NULL: tokens are issued. "AADSTS650057" -> 400 invalid_client with the
 * real message about the missing resource; other codes -> 400 with that code. */
void mamd_idp_server_set_token_error (MamdIdpServer *self, const char *aadsts_code);
guint mamd_idp_server_get_request_count (MamdIdpServer *self, const char *path_suffix);
/* The underlying SoupServer (borrowed), so a tool can add handlers of its
 * own: tools/mamd-dev-idp.c adds the loopback-only /mamd-dev/mint and
 * /mamd-dev/rotate. */
SoupServer *mamd_idp_server_get_soup_server (MamdIdpServer *self);

G_END_DECLS
