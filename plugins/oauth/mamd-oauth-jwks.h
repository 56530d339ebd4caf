/*
 * JWKS: the identity provider's signing keys. Only RSA keys of at least
 * 2048 bits usable for RS256 are kept; others are skipped (and counted).
 */
#pragma once

#include <glib.h>
#include <openssl/evp.h>

G_BEGIN_DECLS

typedef struct {
  char *kid;
  EVP_PKEY *key;  /* RSA public key, >= 2048 bits */
  char *issuer;   /* the key's own "issuer" member, NULL when absent */
} MamdJwk;

typedef struct _MamdJwks MamdJwks;

/* Parses a JWKS document (strict JSON, <= 256 KiB). Keys with kty != "RSA",
 * "use" other than "sig", "alg" other than "RS256", "key_ops" that is not
 * an array of strings allowing "verify" (or, next to "use", names an
 * operation other than "sign" and "verify"), missing kid, bad n/e (strict
 * base64url, e odd and > 1) or fewer than 2048 bits are skipped. A
 * document that is not a JWKS at all, or holds no usable key, is an error
 * (MAMD_ERROR_INVALID_ARGS). A string kid listed twice, even by a key that
 * would be skipped: the document is refused. */
MamdJwks *mamd_jwks_parse (const char *json, gsize len, GError **error);
MamdJwks *mamd_jwks_ref (MamdJwks *jwks);
void mamd_jwks_unref (MamdJwks *jwks);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdJwks, mamd_jwks_unref)
const MamdJwk *mamd_jwks_lookup (MamdJwks *jwks, const char *kid);
guint mamd_jwks_get_n_keys (MamdJwks *jwks);
guint mamd_jwks_get_n_skipped (MamdJwks *jwks);
/* Why the listed key named @kid was skipped; NULL when no skipped key has
 * that kid. */
const char *mamd_jwks_get_skip_reason (MamdJwks *jwks, const char *kid);

G_END_DECLS
