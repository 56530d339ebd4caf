/*
 * JWKS parsing. The document comes from the identity provider over HTTPS,
 * but it is still outside input: strict JSON, bounded size, every member
 * type-checked. Only keys that can verify RS256 are kept, so the key a
 * token names already fixes the algorithm.
 */
#include "config.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "mamd-json.h"
#include "mamd-oauth-jwks.h"
#include "mamd-plugin.h"

#define JWKS_MAX_LEN (256 * 1024)
#define JWKS_MAX_DEPTH 8
#define RSA_MIN_BITS 2048
/* OpenSSL refuses to verify with larger moduli; a huge public exponent
 * would make every verification slow */
#define RSA_MAX_BITS 16384
#define RSA_MAX_E_BYTES 8

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OSSL_PARAM_BLD, OSSL_PARAM_BLD_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OSSL_PARAM, OSSL_PARAM_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY_CTX, EVP_PKEY_CTX_free)

struct _MamdJwks {
  GHashTable *by_kid; /* kid (owned by the MamdJwk) -> MamdJwk */
  GHashTable *skipped; /* kid -> why that key is not used */
  guint n_skipped;
};

static void
jwk_free (gpointer data)
{
  MamdJwk *jwk = data;

  g_free (jwk->kid);
  EVP_PKEY_free (jwk->key);
  g_free (jwk->issuer);
  g_free (jwk);
}

static void
jwks_clear (gpointer data)
{
  MamdJwks *jwks = data;

  g_clear_pointer (&jwks->by_kid, g_hash_table_unref);
  g_clear_pointer (&jwks->skipped, g_hash_table_unref);
}

/* Decodes a strict base64url big-endian unsigned integer. */
static BIGNUM *
decode_bignum (const char *text, const char *member, GError **error)
{
  g_autofree guint8 *bytes = NULL;
  gsize len = 0;
  BIGNUM *bn;

  bytes = mamd_base64url_decode (text, -1, &len, error);
  if (bytes == NULL)
    {
      g_prefix_error (error, "\"%s\": ", member);
      return NULL;
    }
  if (len == 0)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "\"%s\" is empty", member);
      return NULL;
    }
  bn = BN_bin2bn (bytes, (int) len, NULL);
  if (bn == NULL)
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED, "out of memory for \"%s\"", member);
  return bn;
}

static EVP_PKEY *
rsa_key_from_members (const char *n_text, const char *e_text, GError **error)
{
  g_autoptr(BIGNUM) n = NULL;
  g_autoptr(BIGNUM) e = NULL;
  g_autoptr(OSSL_PARAM_BLD) bld = NULL;
  g_autoptr(OSSL_PARAM) params = NULL;
  g_autoptr(EVP_PKEY_CTX) ctx = NULL;
  EVP_PKEY *key = NULL;
  int bits;

  n = decode_bignum (n_text, "n", error);
  if (n == NULL)
    return NULL;
  e = decode_bignum (e_text, "e", error);
  if (e == NULL)
    return NULL;

  bits = BN_num_bits (n);
  if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "%d-bit modulus (need %d to %d bits)", bits, RSA_MIN_BITS, RSA_MAX_BITS);
      return NULL;
    }
  if (!BN_is_odd (n))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "the modulus is even");
      return NULL;
    }
  if (!BN_is_odd (e) || BN_is_one (e) || BN_num_bytes (e) > RSA_MAX_E_BYTES)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "the public exponent must be odd, greater than 1 and at most 64 bits");
      return NULL;
    }

  bld = OSSL_PARAM_BLD_new ();
  if (bld == NULL ||
      OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
      OSSL_PARAM_BLD_push_BN (bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
      (params = OSSL_PARAM_BLD_to_param (bld)) == NULL ||
      (ctx = EVP_PKEY_CTX_new_from_name (NULL, "RSA", NULL)) == NULL ||
      EVP_PKEY_fromdata_init (ctx) != 1 ||
      EVP_PKEY_fromdata (ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
      char buf[256] = "";

      ERR_error_string_n (ERR_peek_last_error (), buf, sizeof buf);
      ERR_clear_error ();
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "OpenSSL refused the key: %s", buf);
      return NULL;
    }
  return key;
}

/* RFC 7517 4.3: key_ops, when present, is an array of strings, and must
 * allow "verify" for the key to check signatures; with "use" present as
 * well they must agree, so every operation must be a signature one. */
static gboolean
check_key_ops (JsonObject *object, gboolean has_use, GError **error)
{
  JsonNode *node = json_object_get_member (object, "key_ops");
  JsonArray *ops;
  gboolean verify = FALSE;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "\"key_ops\" is not an array");
      return FALSE;
    }
  ops = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (ops); i++)
    {
      JsonNode *op = json_array_get_element (ops, i);
      const char *name;

      if (!JSON_NODE_HOLDS_VALUE (op) || json_node_get_value_type (op) != G_TYPE_STRING)
        {
          g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                               "\"key_ops\" holds a value that is not a string");
          return FALSE;
        }
      name = json_node_get_string (op);
      if (g_str_equal (name, "verify"))
        verify = TRUE;
      else if (has_use && !g_str_equal (name, "sign"))
        {
          g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                               "\"key_ops\" disagrees with \"use\": \"sig\"");
          return FALSE;
        }
    }
  if (!verify)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "\"key_ops\" does not allow \"verify\"");
      return FALSE;
    }
  return TRUE;
}

/* Returns the usable key, NULL with @error saying why it is skipped. */
static MamdJwk *
parse_key (JsonNode *node, GError **error)
{
  g_autoptr(EVP_PKEY) key = NULL;
  JsonObject *object;
  const char *kty = NULL, *use = NULL, *alg = NULL, *kid = NULL;
  const char *n = NULL, *e = NULL, *issuer = NULL;
  MamdJwk *jwk;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "not an object");
      return NULL;
    }
  object = json_node_get_object (node);
  if (!mamd_json_object_get_string (object, "kty", TRUE, &kty, error) ||
      !mamd_json_object_get_string (object, "use", FALSE, &use, error) ||
      !mamd_json_object_get_string (object, "alg", FALSE, &alg, error) ||
      !mamd_json_object_get_string (object, "kid", TRUE, &kid, error) ||
      !mamd_json_object_get_string (object, "issuer", FALSE, &issuer, error))
    return NULL;
  if (!g_str_equal (kty, "RSA"))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "not an RSA key");
      return NULL;
    }
  if (use != NULL && !g_str_equal (use, "sig"))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "not a signing key");
      return NULL;
    }
  if (alg != NULL && !g_str_equal (alg, "RS256"))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "not an RS256 key");
      return NULL;
    }
  if (!check_key_ops (object, use != NULL, error))
    return NULL;
  if (*kid == '\0')
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "empty \"kid\"");
      return NULL;
    }
  if (!mamd_json_object_get_string (object, "n", TRUE, &n, error) ||
      !mamd_json_object_get_string (object, "e", TRUE, &e, error))
    return NULL;
  key = rsa_key_from_members (n, e, error);
  if (key == NULL)
    return NULL;

  jwk = g_new0 (MamdJwk, 1);
  jwk->kid = g_strdup (kid);
  jwk->key = g_steal_pointer (&key);
  jwk->issuer = g_strdup (issuer);
  return jwk;
}

/* A kid must name one key, or which key signed would be a guess: every
 * string kid counts, those of keys that would be skipped too (an EC or
 * "enc" key under the kid of a signing key says the set is inconsistent). */
static gboolean
check_unique_kids (JsonArray *keys, GError **error)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < json_array_get_length (keys); i++)
    {
      JsonNode *node = json_array_get_element (keys, i);
      JsonNode *kid;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      kid = json_object_get_member (json_node_get_object (node), "kid");
      if (kid == NULL || !JSON_NODE_HOLDS_VALUE (kid) ||
          json_node_get_value_type (kid) != G_TYPE_STRING)
        continue;
      if (!g_hash_table_add (seen, (gpointer) json_node_get_string (kid)))
        {
          g_autofree char *shown = g_strescape (json_node_get_string (kid), NULL);

          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                       "the JWKS lists key id \"%.64s\" more than once; "
                       "the provider's key set is inconsistent", shown);
          return FALSE;
        }
    }
  return TRUE;
}

MamdJwks *
mamd_jwks_parse (const char *json, gsize len, GError **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(MamdJwks) jwks = NULL;
  g_autoptr(GError) local_error = NULL;
  JsonNode *keys_node;
  JsonArray *keys;

  g_return_val_if_fail (json != NULL || len == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  root = mamd_json_parse_strict (json, len, JWKS_MAX_LEN, JWKS_MAX_DEPTH, &local_error);
  if (root == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "the JWKS is not valid JSON: %s", local_error->message);
      return NULL;
    }
  keys_node = JSON_NODE_HOLDS_OBJECT (root)
                ? json_object_get_member (json_node_get_object (root), "keys") : NULL;
  if (keys_node == NULL || !JSON_NODE_HOLDS_ARRAY (keys_node))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "not a JWKS: expected an object with a \"keys\" array; "
                           "check the provider's jwks_uri");
      return NULL;
    }

  keys = json_node_get_array (keys_node);
  if (!check_unique_kids (keys, error))
    return NULL;
  jwks = g_atomic_rc_box_new0 (MamdJwks);
  jwks->by_kid = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, jwk_free);
  jwks->skipped = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < json_array_get_length (keys); i++)
    {
      JsonNode *node = json_array_get_element (keys, i);
      MamdJwk *jwk = parse_key (node, &local_error);
      const char *kid = NULL;

      if (jwk == NULL)
        {
          g_debug ("jwks: skipping key %u: %s", i, local_error->message);
          /* a token naming this key is told why, not that no key has its kid */
          if (JSON_NODE_HOLDS_OBJECT (node) &&
              mamd_json_object_get_string (json_node_get_object (node), "kid", FALSE, &kid,
                                           NULL) &&
              kid != NULL)
            g_hash_table_insert (jwks->skipped, g_strdup (kid), g_strdup (local_error->message));
          g_clear_error (&local_error);
          jwks->n_skipped++;
          continue;
        }
      g_hash_table_insert (jwks->by_kid, jwk->kid, jwk);
    }

  if (g_hash_table_size (jwks->by_kid) == 0)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "the JWKS holds no usable key (%u skipped): RS256 needs RSA signing keys "
                   "of at least %d bits", jwks->n_skipped, RSA_MIN_BITS);
      return NULL;
    }
  return g_steal_pointer (&jwks);
}

MamdJwks *
mamd_jwks_ref (MamdJwks *jwks)
{
  g_return_val_if_fail (jwks != NULL, NULL);

  return g_atomic_rc_box_acquire (jwks);
}

void
mamd_jwks_unref (MamdJwks *jwks)
{
  if (jwks != NULL)
    g_atomic_rc_box_release_full (jwks, jwks_clear);
}

const MamdJwk *
mamd_jwks_lookup (MamdJwks *jwks, const char *kid)
{
  g_return_val_if_fail (jwks != NULL, NULL);

  if (kid == NULL)
    return NULL;
  return g_hash_table_lookup (jwks->by_kid, kid);
}

guint
mamd_jwks_get_n_keys (MamdJwks *jwks)
{
  g_return_val_if_fail (jwks != NULL, 0);

  return g_hash_table_size (jwks->by_kid);
}

const char *
mamd_jwks_get_skip_reason (MamdJwks *jwks, const char *kid)
{
  g_return_val_if_fail (jwks != NULL, NULL);

  if (kid == NULL)
    return NULL;
  return g_hash_table_lookup (jwks->skipped, kid);
}

guint
mamd_jwks_get_n_skipped (MamdJwks *jwks)
{
  g_return_val_if_fail (jwks != NULL, 0);

  return jwks->n_skipped;
}
