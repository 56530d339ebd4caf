/*
 * The token helpers shared by the access-token tests (test-oauth-jwt-*.c);
 * see mamd-test-jwt-util.h.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "mamd-idp-mint.h"
#include "mamd-json.h"
#include "mamd-test-jwt-util.h"

EVP_PKEY *key_a;
EVP_PKEY *key_b;
EVP_PKEY *key_ec;
EVP_PKEY *key_small;
MamdJwks *jwks;
gint64 now;

void
mamd_test_jwt_init (void)
{
  g_autoptr(GError) error = NULL;

  now = g_get_real_time () / G_USEC_PER_SEC;
  key_a = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, &error);
  g_assert_no_error (error);
  key_b = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, &error);
  g_assert_no_error (error);
  key_ec = mamd_idp_key_generate (MAMD_IDP_KEY_EC_P256, 0, &error);
  g_assert_no_error (error);
  key_small = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 1024, &error);
  g_assert_no_error (error);
  jwks = jwks_from ("key-a", key_a, NULL, "key-b", key_b, NULL, NULL);
}

void
mamd_test_jwt_cleanup (void)
{
  g_clear_pointer (&jwks, mamd_jwks_unref);
  g_clear_pointer (&key_small, EVP_PKEY_free);
  g_clear_pointer (&key_ec, EVP_PKEY_free);
  g_clear_pointer (&key_b, EVP_PKEY_free);
  g_clear_pointer (&key_a, EVP_PKEY_free);
}

/* ---- building tokens ---- */

char *
object_text (JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonGenerator) gen = json_generator_new ();

  json_node_set_object (node, object);
  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, NULL);
}

/* Applies (name, raw JSON value or NULL to remove) pairs to @object. */
static char *
apply_members (JsonObject *object, const char *first, va_list args)
{
  for (const char *name = first; name != NULL; name = va_arg (args, const char *))
    {
      const char *raw = va_arg (args, const char *);

      if (raw == NULL)
        json_object_remove_member (object, name);
      else
        {
          g_autoptr(GError) error = NULL;
          JsonNode *value = json_from_string (raw, &error);

          g_assert_no_error (error);
          json_object_set_member (object, name, value);
        }
    }
  return object_text (object);
}

/* The claims of a valid token, changed by (name, raw value) pairs. */
char *
claims_with (const char *first, ...)
{
  g_autoptr(JsonObject) claims = json_object_new ();
  va_list args;
  char *text;

  json_object_set_string_member (claims, "aud", CLIENT);
  json_object_set_string_member (claims, "iss", ISSUER);
  json_object_set_int_member (claims, "iat", now);
  json_object_set_int_member (claims, "nbf", now);
  json_object_set_int_member (claims, "exp", now + 3600);
  json_object_set_string_member (claims, "name", "Megan Bowen");
  json_object_set_string_member (claims, "oid", OID);
  json_object_set_string_member (claims, "preferred_username", "megan@contoso.com");
  json_object_set_string_member (claims, "scp", SCOPE);
  json_object_set_string_member (claims, "tid", TENANT);
  json_object_set_string_member (claims, "ver", "2.0");
  va_start (args, first);
  text = apply_members (claims, first, args);
  va_end (args);
  return text;
}

char *
header_with (const char *first, ...)
{
  g_autoptr(JsonObject) header = json_object_new ();
  va_list args;
  char *text;

  json_object_set_string_member (header, "typ", "JWT");
  json_object_set_string_member (header, "alg", "RS256");
  json_object_set_string_member (header, "kid", "key-a");
  va_start (args, first);
  text = apply_members (header, first, args);
  va_end (args);
  return text;
}

char *
sign (const char *header, const char *claims, const char *alg, EVP_PKEY *key)
{
  g_autoptr(GError) error = NULL;
  char *token = mamd_idp_sign_compact (header, claims, alg, key, NULL, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (token);
  return token;
}

/* RS256 with key-a over the default header. */
char *
token_for_claims (const char *claims)
{
  g_autofree char *header = header_with (NULL);

  return sign (header, claims, "RS256", key_a);
}

char *
b64 (const char *text)
{
  return mamd_base64url_encode ((const guint8 *) text, strlen (text));
}

/* ---- checking tokens ---- */

MamdJwtPolicy
policy_at (gint64 at)
{
  MamdJwtPolicy policy = { ISSUER, TENANT, CLIENT, SCOPE, at, SKEW };

  return policy;
}

MamdIdentity *
validate_with (const char *token, MamdJwks *keys, const MamdJwtPolicy *policy, GError **error)
{
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, error);
  const MamdJwk *key;

  if (jwt == NULL)
    return NULL;
  key = mamd_jwks_lookup (keys, mamd_jwt_get_kid (jwt));
  g_assert_nonnull (key);
  return mamd_jwt_verify (jwt, key, policy, error);
}

MamdIdentity *
validate (const char *token, GError **error)
{
  MamdJwtPolicy policy = policy_at (now);

  return validate_with (token, jwks, &policy, error);
}

void
assert_message_starts (const GError *error, const char *prefix)
{
  if (!g_str_has_prefix (error->message, prefix))
    g_error ("message '%s' does not start with '%s'", error->message, prefix);
}

void
assert_message_contains (const GError *error, const char *part)
{
  if (strstr (error->message, part) == NULL)
    g_error ("message '%s' lacks '%s'", error->message, part);
}

/* mamd_jwt_parse () refuses @token: InvalidToken starting with @prefix. */
void
assert_parse_refused (const char *token, const char *prefix)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, &error);

  g_assert_null (jwt);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  assert_message_starts (error, prefix);
}

/* @token parses but validation fails with @code and @prefix. */
GError *
refused_with (const char *token, const MamdJwtPolicy *policy, gint code,
              const char *prefix)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, &error);
  g_autoptr(MamdIdentity) identity = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (jwt);
  identity = mamd_jwt_verify (jwt, mamd_jwks_lookup (jwks, mamd_jwt_get_kid (jwt)), policy,
                              &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, code);
  if (prefix != NULL)
    assert_message_starts (error, prefix);
  return g_steal_pointer (&error);
}

void
assert_refused (const char *token, gint code, const char *prefix)
{
  MamdJwtPolicy policy = policy_at (now);

  g_error_free (refused_with (token, &policy, code, prefix));
}

/* ---- keys ---- */

MamdJwks *
jwks_from (const char *first_kid, EVP_PKEY *first_key, const char *first_issuer, ...)
{
  g_autoptr(JsonArray) keys = json_array_new ();
  g_autoptr(JsonObject) root = json_object_new ();
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  MamdJwks *result;
  va_list args;
  const char *kid = first_kid;
  EVP_PKEY *key = first_key;
  const char *issuer = first_issuer;

  va_start (args, first_issuer);
  while (kid != NULL)
    {
      json_array_add_object_element (keys, mamd_idp_key_to_jwk (key, kid, issuer));
      kid = va_arg (args, const char *);
      if (kid != NULL)
        {
          key = va_arg (args, EVP_PKEY *);
          issuer = va_arg (args, const char *);
        }
    }
  va_end (args);
  json_object_set_array_member (root, "keys", json_array_ref (keys));
  text = object_text (root);
  result = mamd_jwks_parse (text, strlen (text), &error);
  g_assert_no_error (error);
  return result;
}
