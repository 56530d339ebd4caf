/*
 * Access tokens. Input starting with '{' is token JSON that this target
 * signs with its own RS256 key, so the claim checks behind the signature
 * are reached: "<header JSON>\n<claims JSON>", or only claims under a
 * standard header. Anything else is a compact token as a client sends it.
 */
#include "config.h"

#include "fuzz-target.h"
#include "mamd-idp-mint.h"
#include "mamd-oauth-jwt.h"

#define TENANT "7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f"
#define ISSUER "https://login.microsoftonline.com/" TENANT "/v2.0"
#define CLIENT "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11"
#define HEADER "{\"alg\":\"RS256\",\"kid\":\"fuzz\",\"typ\":\"JWT\"}"

static EVP_PKEY *key;
static MamdJwks *jwks;

static void
init (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) jwk = NULL;
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonObject) document = json_object_new ();
  g_autoptr(JsonArray) keys = json_array_new ();
  g_autofree char *text = NULL;

  key = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, &error);
  g_assert_no_error (error);
  jwk = mamd_idp_key_to_jwk (key, "fuzz", NULL);
  json_array_add_object_element (keys, json_object_ref (jwk));
  json_object_set_array_member (document, "keys", json_array_ref (keys));
  json_node_set_object (root, document);
  text = json_to_string (root, FALSE);
  jwks = mamd_jwks_parse (text, strlen (text), &error);
  g_assert_no_error (error);
}

static char *
sign (const char *text)
{
  const char *newline = strchr (text, '\n');
  g_autofree char *header = NULL;

  if (newline != NULL && newline[1] == '{')
    header = g_strndup (text, (gsize) (newline - text));
  return mamd_idp_sign_compact (header != NULL ? header : HEADER,
                                header != NULL ? newline + 1 : text, "RS256", key, NULL, 0,
                                NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const MamdJwtPolicy policy = { ISSUER, TENANT, CLIENT, "access_as_user", 1700000000, 300 };
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autofree char *compact = NULL;
  g_autoptr(MamdJwt) jwt = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(GError) error = NULL;
  const MamdJwk *jwk;

  if (key == NULL)
    init ();
  compact = text[0] == '{' ? sign (text) : g_strdup (text);
  if (compact == NULL)
    return 0;
  jwt = mamd_jwt_parse (compact, &error);
  g_assert ((jwt == NULL) == (error != NULL));
  if (jwt == NULL)
    return 0;
  (void) mamd_jwt_peek_issuer (jwt);
  jwk = mamd_jwks_lookup (jwks, mamd_jwt_get_kid (jwt) != NULL ? mamd_jwt_get_kid (jwt) : "");
  /* an unknown kid still meets the real key: the signature check must hold */
  identity = mamd_jwt_verify (jwt, jwk != NULL ? jwk : mamd_jwks_lookup (jwks, "fuzz"), &policy,
                              &error);
  g_assert ((identity == NULL) == (error != NULL));
  if (identity != NULL) {
    g_assert (mamd_guid_is_canonical (identity->object_id));
    g_assert_cmpstr (identity->tenant_id, ==, TENANT);
  }
  return 0;
}
