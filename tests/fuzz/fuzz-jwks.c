/* A JWKS document as fetched from jwks_uri. */
#include "config.h"

#include "fuzz-target.h"
#include "mamd-json.h"
#include "mamd-oauth-jwks.h"

/* mamd-oauth-jwks.h: a parsed JWKS holds at least one usable key, each an
 * RSA key of at least 2048 bits under a unique kid, and every other
 * element of "keys" is counted as skipped. */
static void
check_jwks (MamdJwks *jwks, const char *data, size_t size)
{
  g_autoptr(JsonNode) root = NULL;
  JsonArray *keys;
  guint found = 0;

  g_assert_null (mamd_jwks_lookup (jwks, "no such kid in any seed"));
  g_assert_cmpuint (mamd_jwks_get_n_keys (jwks), >=, 1);

  /* the parser read the same text; its own limits only ever refuse */
  root = mamd_json_parse_strict (data, size, size, 64, NULL);
  g_assert_nonnull (root);
  keys = json_object_get_array_member (json_node_get_object (root), "keys");
  g_assert_cmpuint (mamd_jwks_get_n_keys (jwks) + mamd_jwks_get_n_skipped (jwks), ==,
                    json_array_get_length (keys));
  for (guint i = 0; i < json_array_get_length (keys); i++)
    {
      JsonNode *node = json_array_get_element (keys, i);
      JsonNode *kid;
      const MamdJwk *jwk;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        continue;
      kid = json_object_get_member (json_node_get_object (node), "kid");
      if (kid == NULL || !JSON_NODE_HOLDS_VALUE (kid) ||
          json_node_get_value_type (kid) != G_TYPE_STRING)
        continue;
      jwk = mamd_jwks_lookup (jwks, json_node_get_string (kid));
      if (jwk == NULL)
        continue;
      found++;
      g_assert_cmpstr (jwk->kid, ==, json_node_get_string (kid));
      g_assert_cmpint (EVP_PKEY_get_base_id (jwk->key), ==, EVP_PKEY_RSA);
      g_assert_cmpint (EVP_PKEY_get_bits (jwk->key), >=, 2048);
    }
  g_assert_cmpuint (found, ==, mamd_jwks_get_n_keys (jwks));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwks) jwks = mamd_jwks_parse ((const char *) data, size, &error);

  g_assert ((jwks == NULL) == (error != NULL));
  if (jwks != NULL)
    check_jwks (jwks, (const char *) data, size);
  return 0;
}
