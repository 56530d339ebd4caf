/*
 * Access-token validation (RFC 7515 compact JWS, RFC 8725 rules) for Entra
 * v2 access tokens and any OpenID provider issuing oid-style claims.
 * Two steps: mamd_jwt_parse() checks the structure and the header and gives
 * the kid; mamd_jwt_verify() checks the signature with the key the caller
 * looked up and then every claim. Pure: no I/O, time passed in.
 */
#pragma once

#include <glib.h>

#include "mamd-oauth-jwks.h"
#include "mamd-plugin.h"

G_BEGIN_DECLS

#define MAMD_JWT_MAX_LEN (16 * 1024) /* checked before any decoding */

typedef struct _MamdJwt MamdJwt;

/* Compact form only: exactly three non-empty strict-base64url segments;
 * header and claims must be JSON objects without duplicate keys, depth <= 16.
 * Header: "alg" must be "RS256" (none/None, HS*, RS512, PS*, ES* ... refused
 * naming the alg), "kid" a non-empty string, "jwk" "jku" "x5u" "x5c"
 * refused, "crit" refused (no extension is understood), "typ" if present
 * "JWT" or "at+jwt" (case-insensitive, "application/" prefix optional).
 * Errors MAMD_ERROR_INVALID_TOKEN
 * "malformed: ...", "algorithm: ...". */
MamdJwt *mamd_jwt_parse (const char *compact, GError **error);
void mamd_jwt_free (MamdJwt *jwt);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdJwt, mamd_jwt_free)
const char *mamd_jwt_get_kid (const MamdJwt *jwt);
/* the unverified "iss" and "tid" claims (or NULL), for choosing key sources
 * and for messages only: never trust them before mamd_jwt_verify */
const char *mamd_jwt_peek_issuer (const MamdJwt *jwt);

typedef struct {
  const char *issuer;          /* expected iss, e.g. https://login.microsoftonline.com/<tid>/v2.0 */
  const char *tenant_id;       /* expected tid (canonical GUID) */
  const char *client_id;       /* expected aud (canonical GUID) */
  const char *required_scope;  /* must be one of the space-separated scp values */
  gint64 now;                  /* unix seconds */
  gint64 skew;                 /* allowed clock skew in seconds (exp and nbf) */
} MamdJwtPolicy;

/* Verifies the RS256 signature with @key (EVP, RSA >= 2048 bits; a key
 * whose own issuer is set must equal the token's iss), then the claims:
 * "ver" "2.0" ("1.0" -> InvalidToken saying to set
 * accessTokenAcceptedVersion = 2 in the app manifest), "iss" == issuer,
 * "tid" == tenant, "aud" == client id (string, or array holding it),
 * "exp" required integer, now < exp + skew; "nbf" optional integer,
 * now >= nbf - skew; "iat" optional integer; "roles" without "scp" -> an
 * app-only token, refused; "scp" must hold required_scope; "oid" present
 * and a GUID (canonicalised) else MAMD_ERROR_MISSING_AUTH_ACCOUNT. Never
 * falls back to email, upn or preferred_username. All other failures are
 * MAMD_ERROR_INVALID_TOKEN with the reason first: "signature: ...",
 * "expired: ...", "not yet valid: ...", "issuer: ...", "tenant: ...",
 * "audience: ...", "version: ...", "scope: ...", "malformed: ...".
 * The identity: object_id = oid, tenant_id = tid, user_name =
 * preferred_username or name (display only), id_attribute "oid",
 * id_source = iss. */
MamdIdentity *mamd_jwt_verify (const MamdJwt *jwt, const MamdJwk *key,
                               const MamdJwtPolicy *policy, GError **error);

G_END_DECLS
