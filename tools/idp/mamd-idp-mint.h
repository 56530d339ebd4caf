/*
 * Token minting for the developer identity provider and the tests: keys,
 * their JWK form, and compact JWS over arbitrary header and claims JSON
 * (including deliberately bad ones: alg none, HS256 with a public key as the
 * secret, RS512, PS256, ES256). Never used by the daemon or plugins.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <openssl/evp.h>

G_BEGIN_DECLS

typedef enum {
  MAMD_IDP_KEY_RSA,  /* @bits */
  MAMD_IDP_KEY_EC_P256,
} MamdIdpKeyType;

EVP_PKEY *mamd_idp_key_generate (MamdIdpKeyType type, guint bits, GError **error);
/* The public JWK object for @key: kty, kid, use "sig", alg (RS256 / ES256),
 * n/e or crv/x/y; "issuer" when @issuer is not NULL. */
JsonObject *mamd_idp_key_to_jwk (EVP_PKEY *key, const char *kid, const char *issuer);
/* PEM of the public key (for "HS256 with the public key as secret" tests). */
char *mamd_idp_key_public_pem (EVP_PKEY *key);

/* Signs base64url(@header_json) "." base64url(@claims_json) with @alg:
 * "RS256" "RS512" "PS256" (RSA key), "ES256" (EC key, JOSE r||s form),
 * "HS256" (HMAC with @hmac_secret), "none" (empty signature). The JSON
 * texts are used byte for byte (so tests can send duplicate keys etc.). */
char *mamd_idp_sign_compact (const char *header_json, const char *claims_json,
                             const char *alg, EVP_PKEY *key,
                             const guint8 *hmac_secret, gsize hmac_secret_len,
                             GError **error);

/* Convenience: a valid Entra v2 access token for @oid with RS256 and @kid.
 * Claims: ver 2.0, iss <authority>/<tid>/v2.0, aud @client_id, tid, oid,
 * scp @scope, iat/nbf now, exp now + @lifetime, preferred_username @user. */
char *mamd_idp_mint_access_token (EVP_PKEY *key, const char *kid, const char *authority,
                                  const char *tenant_id, const char *client_id,
                                  const char *scope, const char *oid, const char *user,
                                  gint64 now, gint64 lifetime, GError **error);

/* The claims of that token, for callers that change some before signing
 * with mamd_idp_mint_claims (). @client_id, @scope, @oid and @user may be
 * NULL: aud, scp, oid or preferred_username is then left out. */
JsonObject *mamd_idp_access_token_claims (const char *authority, const char *tenant_id,
                                          const char *client_id, const char *scope,
                                          const char *oid, const char *user,
                                          gint64 now, gint64 lifetime);
/* RS256 with @key over @claims as they are, under the header
 * {"typ":"JWT","alg":"RS256","kid":@kid}. */
char *mamd_idp_mint_claims (EVP_PKEY *key, const char *kid, JsonObject *claims,
                            GError **error);
/* The same with every member of @header_set (may be NULL) set in the
 * header, replacing typ, alg or kid: the signature is RS256 with @key
 * whatever "alg" then says, so tokens with another alg, an unknown kid,
 * embedded keys or crit can be minted for the validator to refuse. */
char *mamd_idp_mint_claims_full (EVP_PKEY *key, const char *kid, JsonObject *header_set,
                                 JsonObject *claims, GError **error);

G_END_DECLS
