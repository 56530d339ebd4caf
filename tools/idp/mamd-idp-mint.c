/*
 * Token minting for the developer identity provider, the tests and the
 * bench: real keys and real signatures, including the deliberately bad
 * algorithms that the validator must refuse.
 */
#include "config.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "mamd-idp-mint.h"
#include "mamd-plugin.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ECDSA_SIG, ECDSA_SIG_free)

#define ES256_COORD_LEN 32

static gpointer
openssl_failed (GError **error, const char *what)
{
  char buf[256] = "";

  ERR_error_string_n (ERR_peek_last_error (), buf, sizeof buf);
  ERR_clear_error ();
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED, "%s failed: %s", what, buf);
  return NULL;
}

/* This library is also linked without the daemon's JSON helpers (the
 * developer IdP tool), so it encodes with OpenSSL and maps to base64url. */
static char *
b64url_encode (const guint8 *data, gsize len)
{
  char *out = g_malloc (4 * ((len + 2) / 3) + 1);
  int n = EVP_EncodeBlock ((unsigned char *) out, data, (int) len);

  while (n > 0 && out[n - 1] == '=')
    n--;
  out[n] = '\0';
  for (char *p = out; *p != '\0'; p++)
    {
      if (*p == '+')
        *p = '-';
      else if (*p == '/')
        *p = '_';
    }
  return out;
}

EVP_PKEY *
mamd_idp_key_generate (MamdIdpKeyType type, guint bits, GError **error)
{
  EVP_PKEY *key = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (type == MAMD_IDP_KEY_RSA)
    key = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) bits);
  else if (type == MAMD_IDP_KEY_EC_P256)
    key = EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  else
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "unknown key type %d", type);
      return NULL;
    }
  if (key == NULL)
    openssl_failed (error, "key generation");
  return key;
}

static char *
bn_param_to_b64url (EVP_PKEY *key, const char *param)
{
  g_autoptr(BIGNUM) bn = NULL;
  g_autofree guint8 *bytes = NULL;
  int len;

  if (EVP_PKEY_get_bn_param (key, param, &bn) != 1)
    return NULL;
  len = BN_num_bytes (bn);
  bytes = g_malloc (MAX (len, 1));
  BN_bn2bin (bn, bytes);
  return b64url_encode (bytes, (gsize) len);
}

static gboolean
add_rsa_members (JsonObject *jwk, EVP_PKEY *key)
{
  g_autofree char *n = bn_param_to_b64url (key, OSSL_PKEY_PARAM_RSA_N);
  g_autofree char *e = bn_param_to_b64url (key, OSSL_PKEY_PARAM_RSA_E);

  if (n == NULL || e == NULL)
    return FALSE;
  json_object_set_string_member (jwk, "kty", "RSA");
  json_object_set_string_member (jwk, "alg", "RS256");
  json_object_set_string_member (jwk, "n", n);
  json_object_set_string_member (jwk, "e", e);
  return TRUE;
}

static gboolean
add_ec_members (JsonObject *jwk, EVP_PKEY *key)
{
  guint8 point[1 + 2 * ES256_COORD_LEN];
  g_autofree char *x = NULL;
  g_autofree char *y = NULL;
  size_t len = 0;

  /* the uncompressed point is 0x04 || x || y, each coordinate padded */
  if (EVP_PKEY_get_octet_string_param (key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                       point, sizeof point, &len) != 1 ||
      len != sizeof point || point[0] != 0x04)
    return FALSE;
  x = b64url_encode (point + 1, ES256_COORD_LEN);
  y = b64url_encode (point + 1 + ES256_COORD_LEN, ES256_COORD_LEN);
  json_object_set_string_member (jwk, "kty", "EC");
  json_object_set_string_member (jwk, "alg", "ES256");
  json_object_set_string_member (jwk, "crv", "P-256");
  json_object_set_string_member (jwk, "x", x);
  json_object_set_string_member (jwk, "y", y);
  return TRUE;
}

JsonObject *
mamd_idp_key_to_jwk (EVP_PKEY *key, const char *kid, const char *issuer)
{
  g_autoptr(JsonObject) jwk = json_object_new ();
  gboolean ok;

  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (kid != NULL, NULL);

  json_object_set_string_member (jwk, "kid", kid);
  json_object_set_string_member (jwk, "use", "sig");
  if (EVP_PKEY_get_base_id (key) == EVP_PKEY_RSA)
    ok = add_rsa_members (jwk, key);
  else if (EVP_PKEY_get_base_id (key) == EVP_PKEY_EC)
    ok = add_ec_members (jwk, key);
  else
    ok = FALSE;
  if (!ok)
    {
      ERR_clear_error ();
      return NULL;
    }
  if (issuer != NULL)
    json_object_set_string_member (jwk, "issuer", issuer);
  return g_steal_pointer (&jwk);
}

char *
mamd_idp_key_public_pem (EVP_PKEY *key)
{
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  char *data = NULL;
  long len;

  g_return_val_if_fail (key != NULL, NULL);

  if (bio == NULL || PEM_write_bio_PUBKEY (bio, key) != 1)
    {
      ERR_clear_error ();
      return NULL;
    }
  len = BIO_get_mem_data (bio, &data);
  return g_strndup (data, (gsize) len);
}

static gboolean
require_key (EVP_PKEY *key, int base_id, const char *alg, GError **error)
{
  if (key == NULL || EVP_PKEY_get_base_id (key) != base_id)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "%s needs %s key", alg, base_id == EVP_PKEY_RSA ? "an RSA" : "an EC P-256");
      return FALSE;
    }
  return TRUE;
}

/* RS256, RS512 and PS256: EVP_DigestSign with the matching padding. */
static GBytes *
sign_rsa (EVP_PKEY *key, const char *digest, gboolean pss, const char *input, gsize len,
          GError **error)
{
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  EVP_PKEY_CTX *pctx = NULL;
  g_autofree guint8 *sig = NULL;
  size_t sig_len = 0;

  if (ctx == NULL ||
      EVP_DigestSignInit_ex (ctx, &pctx, digest, NULL, NULL, key, NULL) != 1)
    return openssl_failed (error, "signing setup");
  /* RFC 7518 3.5: PSS with MGF1 on the same hash and a salt as long as it */
  if (pss &&
      (EVP_PKEY_CTX_set_rsa_padding (pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
       EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    return openssl_failed (error, "PSS setup");
  if (EVP_DigestSign (ctx, NULL, &sig_len, (const guint8 *) input, len) != 1)
    return openssl_failed (error, "signing");
  sig = g_malloc (sig_len);
  if (EVP_DigestSign (ctx, sig, &sig_len, (const guint8 *) input, len) != 1)
    return openssl_failed (error, "signing");
  return g_bytes_new_take (g_steal_pointer (&sig), sig_len);
}

/* ES256: OpenSSL gives a DER ECDSA-Sig-Value, JOSE wants r || s. */
static GBytes *
sign_es256 (EVP_PKEY *key, const char *input, gsize len, GError **error)
{
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  g_autoptr(ECDSA_SIG) ecdsa = NULL;
  g_autofree guint8 *der = NULL;
  g_autofree guint8 *jose = NULL;
  const guint8 *p;
  const BIGNUM *r, *s;
  size_t der_len = 0;

  if (ctx == NULL ||
      EVP_DigestSignInit_ex (ctx, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
      EVP_DigestSign (ctx, NULL, &der_len, (const guint8 *) input, len) != 1)
    return openssl_failed (error, "ES256 signing");
  der = g_malloc (der_len);
  if (EVP_DigestSign (ctx, der, &der_len, (const guint8 *) input, len) != 1)
    return openssl_failed (error, "ES256 signing");
  p = der;
  ecdsa = d2i_ECDSA_SIG (NULL, &p, (long) der_len);
  if (ecdsa == NULL)
    return openssl_failed (error, "ES256 signature decoding");
  ECDSA_SIG_get0 (ecdsa, &r, &s);
  jose = g_malloc (2 * ES256_COORD_LEN);
  if (BN_bn2binpad (r, jose, ES256_COORD_LEN) != ES256_COORD_LEN ||
      BN_bn2binpad (s, jose + ES256_COORD_LEN, ES256_COORD_LEN) != ES256_COORD_LEN)
    return openssl_failed (error, "ES256 signature encoding");
  return g_bytes_new_take (g_steal_pointer (&jose), 2 * ES256_COORD_LEN);
}

static GBytes *
sign_hs256 (const guint8 *secret, gsize secret_len, const char *input, gsize len,
            GError **error)
{
  guint8 mac[EVP_MAX_MD_SIZE];
  size_t mac_len = 0;

  if (secret == NULL || secret_len == 0)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "HS256 needs a secret");
      return NULL;
    }
  if (EVP_Q_mac (NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len,
                 (const guint8 *) input, len, mac, sizeof mac, &mac_len) == NULL)
    return openssl_failed (error, "HMAC");
  return g_bytes_new (mac, mac_len);
}

char *
mamd_idp_sign_compact (const char *header_json, const char *claims_json, const char *alg,
                       EVP_PKEY *key, const guint8 *hmac_secret, gsize hmac_secret_len,
                       GError **error)
{
  g_autofree char *header = NULL;
  g_autofree char *claims = NULL;
  g_autofree char *input = NULL;
  g_autofree char *signature = NULL;
  g_autoptr(GBytes) sig = NULL;
  gsize input_len;

  g_return_val_if_fail (header_json != NULL, NULL);
  g_return_val_if_fail (claims_json != NULL, NULL);
  g_return_val_if_fail (alg != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  header = b64url_encode ((const guint8 *) header_json, strlen (header_json));
  claims = b64url_encode ((const guint8 *) claims_json, strlen (claims_json));
  input = g_strconcat (header, ".", claims, NULL);
  input_len = strlen (input);

  if (g_ascii_strcasecmp (alg, "none") == 0)
    sig = g_bytes_new (NULL, 0);
  else if (g_str_equal (alg, "RS256") || g_str_equal (alg, "RS512") || g_str_equal (alg, "PS256"))
    {
      if (!require_key (key, EVP_PKEY_RSA, alg, error))
        return NULL;
      sig = sign_rsa (key, g_str_equal (alg, "RS512") ? "SHA512" : "SHA256",
                      g_str_equal (alg, "PS256"), input, input_len, error);
    }
  else if (g_str_equal (alg, "ES256"))
    {
      if (!require_key (key, EVP_PKEY_EC, alg, error))
        return NULL;
      sig = sign_es256 (key, input, input_len, error);
    }
  else if (g_str_equal (alg, "HS256"))
    sig = sign_hs256 (hmac_secret, hmac_secret_len, input, input_len, error);
  else
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "cannot sign with %s", alg);
      return NULL;
    }
  if (sig == NULL)
    return NULL;

  signature = b64url_encode (g_bytes_get_data (sig, NULL), g_bytes_get_size (sig));
  return g_strconcat (input, ".", signature, NULL);
}

static char *
object_to_json (JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonGenerator) gen = json_generator_new ();

  json_node_set_object (node, object);
  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, NULL);
}

JsonObject *
mamd_idp_access_token_claims (const char *authority, const char *tenant_id,
                              const char *client_id, const char *scope, const char *oid,
                              const char *user, gint64 now, gint64 lifetime)
{
  g_autoptr(JsonObject) claims = json_object_new ();
  g_autofree char *base = NULL;
  g_autofree char *issuer = NULL;

  g_return_val_if_fail (authority != NULL && tenant_id != NULL, NULL);

  /* tolerate "https://host/" as well as "https://host" */
  base = g_strdup (authority);
  while (g_str_has_suffix (base, "/"))
    base[strlen (base) - 1] = '\0';
  issuer = g_strdup_printf ("%s/%s/v2.0", base, tenant_id);

  if (client_id != NULL)
    json_object_set_string_member (claims, "aud", client_id);
  json_object_set_string_member (claims, "iss", issuer);
  json_object_set_int_member (claims, "iat", now);
  json_object_set_int_member (claims, "nbf", now);
  json_object_set_int_member (claims, "exp", now + lifetime);
  if (oid != NULL)
    json_object_set_string_member (claims, "oid", oid);
  if (user != NULL)
    json_object_set_string_member (claims, "preferred_username", user);
  if (scope != NULL)
    json_object_set_string_member (claims, "scp", scope);
  json_object_set_string_member (claims, "tid", tenant_id);
  json_object_set_string_member (claims, "ver", "2.0");
  return g_steal_pointer (&claims);
}

char *
mamd_idp_mint_claims (EVP_PKEY *key, const char *kid, JsonObject *claims, GError **error)
{
  return mamd_idp_mint_claims_full (key, kid, NULL, claims, error);
}

char *
mamd_idp_mint_claims_full (EVP_PKEY *key, const char *kid, JsonObject *header_set,
                           JsonObject *claims, GError **error)
{
  g_autoptr(JsonObject) header = json_object_new ();
  g_autofree char *header_json = NULL;
  g_autofree char *claims_json = NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  g_return_val_if_fail (kid != NULL && claims != NULL, NULL);

  json_object_set_string_member (header, "typ", "JWT");
  json_object_set_string_member (header, "alg", "RS256");
  json_object_set_string_member (header, "kid", kid);
  if (header_set != NULL)
    {
      json_object_iter_init (&iter, header_set);
      while (json_object_iter_next (&iter, &name, &value))
        json_object_set_member (header, name, json_node_copy (value));
    }
  header_json = object_to_json (header);
  claims_json = object_to_json (claims);
  return mamd_idp_sign_compact (header_json, claims_json, "RS256", key, NULL, 0, error);
}

char *
mamd_idp_mint_access_token (EVP_PKEY *key, const char *kid, const char *authority,
                            const char *tenant_id, const char *client_id,
                            const char *scope, const char *oid, const char *user,
                            gint64 now, gint64 lifetime, GError **error)
{
  g_autoptr(JsonObject) claims = NULL;

  g_return_val_if_fail (kid != NULL && authority != NULL && tenant_id != NULL, NULL);
  g_return_val_if_fail (client_id != NULL && scope != NULL && oid != NULL, NULL);

  claims = mamd_idp_access_token_claims (authority, tenant_id, client_id, scope, oid, user, now,
                                         lifetime);
  return mamd_idp_mint_claims (key, kid, claims, error);
}
