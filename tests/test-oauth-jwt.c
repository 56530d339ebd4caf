/*
 * Access-token validation and JWKS parsing, one test per rule. Every key and
 * token is generated here at run time with the developer IdP's mint helpers.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "mamd-idp-mint.h"
#include "mamd-json.h"
#include "mamd-oauth-jwks.h"
#include "mamd-oauth-jwt.h"
#include "mamd-plugin.h"

#define AUTHORITY "https://login.microsoftonline.com"
#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define OTHER_TENANT "0b5e7a1c-9d2f-4e83-a6b4-1c2d3e4f5a6b"
#define CLIENT "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
#define OID "6e8d4e7b-2b0c-4c5b-9f1f-3d3e4f5a6b7c"
#define ISSUER AUTHORITY "/" TENANT "/v2.0"
#define SCOPE "login.mattermost"
#define SKEW 300

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ECDSA_SIG, ECDSA_SIG_free)

/* generated once in main () */
static EVP_PKEY *key_a;     /* RSA 2048, kid "key-a": signs the valid tokens */
static EVP_PKEY *key_b;     /* RSA 2048, kid "key-b" */
static EVP_PKEY *key_ec;    /* P-256 */
static EVP_PKEY *key_small; /* RSA 1024 */
static MamdJwks *jwks;      /* key-a and key-b */
static gint64 now;

/* ---- building tokens ---- */

static char *
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
static char *
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

static char *
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

static char *
sign (const char *header, const char *claims, const char *alg, EVP_PKEY *key)
{
  g_autoptr(GError) error = NULL;
  char *token = mamd_idp_sign_compact (header, claims, alg, key, NULL, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (token);
  return token;
}

/* RS256 with key-a over the default header. */
static char *
token_for_claims (const char *claims)
{
  g_autofree char *header = header_with (NULL);

  return sign (header, claims, "RS256", key_a);
}

static char *
b64 (const char *text)
{
  return mamd_base64url_encode ((const guint8 *) text, strlen (text));
}

/* ---- checking tokens ---- */

static MamdJwtPolicy
policy_at (gint64 at)
{
  MamdJwtPolicy policy = { ISSUER, TENANT, CLIENT, SCOPE, at, SKEW };

  return policy;
}

static MamdIdentity *
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

static MamdIdentity *
validate (const char *token, GError **error)
{
  MamdJwtPolicy policy = policy_at (now);

  return validate_with (token, jwks, &policy, error);
}

static void
assert_message_starts (const GError *error, const char *prefix)
{
  if (!g_str_has_prefix (error->message, prefix))
    g_error ("message '%s' does not start with '%s'", error->message, prefix);
}

static void
assert_message_contains (const GError *error, const char *part)
{
  if (strstr (error->message, part) == NULL)
    g_error ("message '%s' lacks '%s'", error->message, part);
}

/* mamd_jwt_parse () refuses @token: InvalidToken starting with @prefix. */
static void
assert_parse_refused (const char *token, const char *prefix)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, &error);

  g_assert_null (jwt);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  assert_message_starts (error, prefix);
}

/* @token parses but validation fails with @code and @prefix. */
static GError *
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

static void
assert_refused (const char *token, gint code, const char *prefix)
{
  MamdJwtPolicy policy = policy_at (now);

  g_error_free (refused_with (token, &policy, code, prefix));
}

static void
assert_claims_refused (const char *claims, gint code, const char *prefix)
{
  g_autofree char *token = token_for_claims (claims);

  assert_refused (token, code, prefix);
}

static void
assert_accepted_at (const char *token, gint64 at)
{
  g_autoptr(GError) error = NULL;
  MamdJwtPolicy policy = policy_at (at);
  g_autoptr(MamdIdentity) identity = validate_with (token, jwks, &policy, &error);

  g_assert_no_error (error);
  g_assert_nonnull (identity);
  g_assert_cmpstr (identity->object_id, ==, OID);
}

/* ---- valid tokens ---- */

static void
test_valid (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(MamdJwt) jwt = NULL;
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *token = token_for_claims (claims);

  jwt = mamd_jwt_parse (token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (mamd_jwt_get_kid (jwt), ==, "key-a");
  g_assert_cmpstr (mamd_jwt_peek_issuer (jwt), ==, ISSUER);

  identity = validate (token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  g_assert_cmpstr (identity->tenant_id, ==, TENANT);
  g_assert_cmpstr (identity->user_name, ==, "megan@contoso.com");
  g_assert_cmpstr (identity->id_attribute, ==, "oid");
  g_assert_cmpstr (identity->id_source, ==, ISSUER);
}

static void
test_valid_minted (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autofree char *token = NULL;

  /* the developer IdP's convenience minting, trailing slash on the authority */
  token = mamd_idp_mint_access_token (key_b, "key-b", AUTHORITY "/", TENANT, CLIENT,
                                      SCOPE " User.Read", OID, NULL, now, 600, &error);
  g_assert_no_error (error);
  identity = validate (token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  g_assert_null (identity->user_name);
}

static void
test_valid_variants (void)
{
  static const char *const headers[] = {
    "{\"alg\":\"RS256\",\"kid\":\"key-a\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"at+jwt\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"AT+JWT\",\"x5t\":\"abc\"}",
    " { \"alg\" : \"RS256\" , \"kid\" : \"key\\u002da\" } ",
  };
  g_autofree char *aud_array = claims_with ("aud", "[\"api://other\", \"" CLIENT "\"]",
                                            "scp", "\"User.Read " SCOPE " openid\"",
                                            "preferred_username", NULL, NULL);
  g_autofree char *aud_upper = claims_with ("aud", "\"7C1D2E3F-4A5B-4C6D-8E7F-9A0B1C2D3E4F\"",
                                            "tid", "\"72F988BF-86F1-41AF-91AB-2D7CD011DB47\"",
                                            "nbf", NULL, "iat", NULL, NULL);
  g_autofree char *array_token = token_for_claims (aud_array);
  g_autofree char *upper_token = token_for_claims (aud_upper);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    {
      g_autofree char *claims = claims_with (NULL);
      g_autofree char *token = sign (headers[i], claims, "RS256", key_a);
      g_autoptr(MamdIdentity) id = validate (token, &error);

      g_assert_no_error (error);
      g_assert_nonnull (id);
    }

  identity = validate (array_token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->user_name, ==, "Megan Bowen"); /* name when no preferred_username */
  g_clear_pointer (&identity, mamd_identity_free);

  identity = validate (upper_token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->tenant_id, ==, TENANT);
}

/* ---- the header ---- */

static void
test_alg_refused (void)
{
  static const struct { const char *header_alg; const char *sign_alg; } cases[] = {
    { "none", "none" }, { "None", "none" }, { "NONE", "none" }, { "none", "RS256" },
    { "RS512", "RS512" }, { "PS256", "PS256" }, { "ES256", "ES256" },
    { "RS384", "RS256" }, { "rs256", "RS256" }, { "EdDSA", "RS256" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *alg = g_strdup_printf ("\"%s\"", cases[i].header_alg);
      g_autofree char *header = header_with ("alg", alg, NULL);
      g_autofree char *claims = claims_with (NULL);
      EVP_PKEY *key = g_str_equal (cases[i].sign_alg, "ES256") ? key_ec : key_a;
      g_autofree char *token = sign (header, claims, cases[i].sign_alg, key);

      assert_parse_refused (token, "algorithm: ");
    }
}

static void
test_alg_none_empty_signature (void)
{
  g_autofree char *header = header_with ("alg", "\"none\"", NULL);
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *token = sign (header, claims, "none", NULL);
  g_autofree char *with_sig = NULL;
  g_autofree char *valid = token_for_claims (claims);
  const char *sig = strrchr (valid, '.') + 1;

  /* an unsigned token has an empty third segment; refused for its alg */
  g_assert_true (g_str_has_suffix (token, "."));
  assert_parse_refused (token, "algorithm: ");
  /* the same with a signature segment */
  with_sig = g_strconcat (token, sig, NULL);
  assert_parse_refused (with_sig, "algorithm: ");
}

static void
test_alg_hs256_public_key (void)
{
  g_autofree char *pem = mamd_idp_key_public_pem (key_a);
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *hs_header = header_with ("alg", "\"HS256\"", NULL);
  g_autofree char *rs_header = header_with (NULL);
  g_autofree char *token = NULL;
  g_autofree char *lying = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (pem);
  token = mamd_idp_sign_compact (hs_header, claims, "HS256", NULL, (const guint8 *) pem,
                                 strlen (pem), &error);
  g_assert_no_error (error);
  assert_parse_refused (token, "algorithm: ");

  /* the same MAC under a header that claims RS256 fails the signature */
  lying = mamd_idp_sign_compact (rs_header, claims, "HS256", NULL, (const guint8 *) pem,
                                 strlen (pem), &error);
  g_assert_no_error (error);
  assert_refused (lying, MAMD_ERROR_INVALID_TOKEN, "signature: ");
}

static void
test_alg_missing (void)
{
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *no_alg = header_with ("alg", NULL, NULL);
  g_autofree char *number_alg = header_with ("alg", "256", NULL);
  g_autofree char *t1 = sign (no_alg, claims, "RS256", key_a);
  g_autofree char *t2 = sign (number_alg, claims, "RS256", key_a);

  assert_parse_refused (t1, "algorithm: ");
  assert_parse_refused (t2, "algorithm: ");
}

static void
test_embedded_keys (void)
{
  g_autoptr(JsonObject) jwk = mamd_idp_key_to_jwk (key_a, "key-a", NULL);
  g_autofree char *jwk_text = object_text (jwk);
  g_autofree char *claims = claims_with (NULL);
  const char *members[][2] = {
    { "jwk", jwk_text },
    { "jku", "\"https://attacker.example/keys\"" },
    { "x5u", "\"https://attacker.example/cert.pem\"" },
    { "x5c", "[\"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\"]" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (members); i++)
    {
      g_autofree char *header = header_with (members[i][0], members[i][1], NULL);
      g_autofree char *token = sign (header, claims, "RS256", key_a);
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, &error);

      g_assert_null (jwt);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
      assert_message_starts (error, "malformed: ");
      assert_message_contains (error, members[i][0]);
    }
}

static void
test_crit (void)
{
  static const char *const crits[] = { "[\"exp\"]", "[\"b64\"]", "[]" };
  g_autofree char *claims = claims_with (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (crits); i++)
    {
      g_autofree char *header = header_with ("crit", crits[i], "exp", "1", "b64", "false", NULL);
      g_autofree char *token = sign (header, claims, "RS256", key_a);

      assert_parse_refused (token, "malformed: ");
    }
}

static void
test_typ_and_kid (void)
{
  const char *headers[] = {
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"JOSE\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"id_token\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":1}",
    "{\"alg\":\"RS256\"}",
    "{\"alg\":\"RS256\",\"kid\":\"\"}",
    "{\"alg\":\"RS256\",\"kid\":7}",
    "{\"alg\":\"RS256\",\"kid\":null}",
  };
  g_autofree char *claims = claims_with (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    {
      g_autofree char *token = sign (headers[i], claims, "RS256", key_a);

      assert_parse_refused (token, "malformed: ");
    }
}

/* ---- compact form ---- */

static void
test_malformed_compact (void)
{
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *valid = token_for_claims (claims);
  g_auto(GStrv) seg = g_strsplit (valid, ".", -1);
  g_autofree char *h_pad = g_strconcat (seg[0], "=", NULL);
  struct { char *token; const char *why; } cases[] = {
    { g_strdup (""), "empty" },
    { g_strdup ("abc"), "one segment" },
    { g_strdup_printf ("%s.%s", seg[0], seg[1]), "two segments" },
    { g_strdup_printf ("%s.%s.%s.%s", seg[0], seg[1], seg[2], seg[2]), "four segments" },
    { g_strdup_printf ("%s.%s.%s.", seg[0], seg[1], seg[2]), "trailing dot" },
    { g_strdup_printf (".%s.%s.%s", seg[0], seg[1], seg[2]), "leading dot" },
    { g_strdup_printf ("%s..%s", seg[0], seg[2]), "empty claims" },
    { g_strdup_printf (".%s.%s", seg[1], seg[2]), "empty header" },
    { g_strdup_printf ("%s.%s.", seg[0], seg[1]), "empty signature" },
    { g_strdup (".."), "all empty" },
    { g_strdup_printf ("%s.%s.%s=", seg[0], seg[1], seg[2]), "padded signature" },
    { g_strdup_printf ("%s.%s=.%s", seg[0], seg[1], seg[2]), "padded claims" },
    { g_strdup_printf ("%s.%s.%s", h_pad, seg[1], seg[2]), "padded header" },
    { g_strdup_printf (" %s.%s.%s", seg[0], seg[1], seg[2]), "leading space" },
    { g_strdup_printf ("%s.%s.%s\n", seg[0], seg[1], seg[2]), "trailing newline" },
    { g_strdup_printf ("%s.%s .%s", seg[0], seg[1], seg[2]), "inner space" },
    { g_strdup_printf ("Bearer %s.%s.%s", seg[0], seg[1], seg[2]), "bearer prefix" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("case: %s", cases[i].why);
      assert_parse_refused (cases[i].token, "malformed: ");
      g_free (cases[i].token);
    }
}

/* Standard base64 characters where base64url has '-' and '_'. */
static void
test_malformed_plus_slash (void)
{
  /* this header encodes to base64url with both '-' and '_' in it */
  const char *header = "{\"alg\":\"RS256\",\"kid\":\">>>???\"}";
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *token = sign (header, claims, "RS256", key_a);
  g_autofree char *std = g_strdup (token);
  char *dot = strchr (std, '.');
  gboolean changed = FALSE;

  for (char *p = std; p < dot; p++)
    {
      if (*p == '-' || *p == '_')
        {
          *p = *p == '-' ? '+' : '/';
          changed = TRUE;
        }
    }
  g_assert_true (changed);
  assert_parse_refused (std, "malformed: ");

  /* the same in the signature segment */
  g_free (std);
  std = g_strdup (token);
  for (char *p = strrchr (std, '.'); *p != '\0'; p++)
    if (*p == '-' || *p == '_')
      *p = *p == '-' ? '+' : '/';
  if (!g_str_equal (std, token))
    assert_parse_refused (std, "malformed: ");
}

static void
test_not_objects (void)
{
  static const char *const texts[] = {
    "[]", "\"claims\"", "123", "null", "", " ", "{", "{\"a\":1", "{\"a\":1}x",
    "{\"a\":1}{}", "{'a':1}", "{\"a\":0x10}", "{\"a\":01}", "{\"a\":\"\\u0000\"}",
    "{\"a\":\"\\ud800\"}", "{\"a\":\"\xff\"}", "{\"a\":9223372036854775808}",
    "{\"a\":-9223372036854775809}", "{\"a\":\"tab\there\"}", "{\"a\":tru}",
    "{\"a\":1,}", "{,}", "{\"a\" 1}", "{\"a\":[1,]}", "{\"a\":\"x\\q\"}",
  };
  g_autofree char *header_b64 = NULL;
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *claims_b64 = b64 (claims);
  g_autofree char *header = header_with (NULL);

  header_b64 = b64 (header);
  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autofree char *bad = mamd_base64url_encode ((const guint8 *) texts[i], strlen (texts[i]));
      g_autofree char *as_claims = g_strdup_printf ("%s.%s.AAAA", header_b64, bad);
      g_autofree char *as_header = g_strdup_printf ("%s.%s.AAAA", bad, claims_b64);

      g_test_message ("text: %s", texts[i]);
      if (*bad == '\0')
        continue; /* an empty segment: covered by the compact form test */
      assert_parse_refused (as_claims, "malformed: claims: ");
      assert_parse_refused (as_header, "malformed: header: ");
    }
}

static void
test_duplicate_keys (void)
{
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *dup_claims = NULL;
  g_autofree char *escaped_claims = NULL;
  g_autofree char *nested_claims = NULL;
  g_autofree char *big_claims = NULL;
  g_autoptr(GString) big = g_string_new ("{");
  const char *dup_header = "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"kid\":\"key-b\"}";
  const char *escaped_header = "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"\\u0061lg\":\"none\"}";
  g_autofree char *t = NULL;

  t = sign (dup_header, claims, "RS256", key_a);
  assert_parse_refused (t, "malformed: header: duplicate member \"kid\"");
  g_free (t);
  t = sign (escaped_header, claims, "RS256", key_a);
  assert_parse_refused (t, "malformed: header: duplicate member");
  g_free (t);

  /* a second oid after the first must not replace it */
  dup_claims = g_strdup_printf ("%.*s,\"oid\":\"00000000-0000-0000-0000-000000000001\"}",
                                (int) strlen (claims) - 1, claims);
  t = token_for_claims (dup_claims);
  assert_parse_refused (t, "malformed: claims: duplicate member \"oid\"");
  g_free (t);
  escaped_claims = g_strdup_printf ("%.*s,\"\\u0074id\":\"" OTHER_TENANT "\"}",
                                    (int) strlen (claims) - 1, claims);
  t = token_for_claims (escaped_claims);
  assert_parse_refused (t, "malformed: claims: duplicate member");
  g_free (t);
  nested_claims = g_strdup_printf ("%.*s,\"x\":[{\"a\":1,\"b\":2,\"a\":3}]}",
                                   (int) strlen (claims) - 1, claims);
  t = token_for_claims (nested_claims);
  assert_parse_refused (t, "malformed: claims: duplicate member \"a\"");
  g_free (t);

  /* past the small-object path, duplicates are still found */
  for (guint i = 0; i < 100; i++)
    g_string_append_printf (big, "\"m%u\":%u,", i, i);
  g_string_append (big, "\"m57\":0}");
  big_claims = g_string_free (g_steal_pointer (&big), FALSE);
  t = token_for_claims (big_claims);
  assert_parse_refused (t, "malformed: claims: duplicate member \"m57\"");
}

static char *
nested (guint depth, gboolean closed)
{
  GString *text = g_string_new ("{\"x\":");

  for (guint i = 0; i < depth; i++)
    g_string_append_c (text, '[');
  if (closed)
    {
      for (guint i = 0; i < depth; i++)
        g_string_append_c (text, ']');
      g_string_append_c (text, '}');
    }
  return g_string_free (text, FALSE);
}

static void
test_deep_nesting (void)
{
  g_autofree char *ok_claims = nested (15, TRUE);  /* 16 levels with the object */
  g_autofree char *deep_claims = nested (16, TRUE);
  g_autofree char *very_deep = nested (10000, FALSE);
  g_autofree char *huge = nested (10000, TRUE);
  g_autofree char *ok = token_for_claims (ok_claims);
  g_autofree char *deep = token_for_claims (deep_claims);
  g_autofree char *t_very_deep = token_for_claims (very_deep);
  g_autofree char *t_huge = token_for_claims (huge);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (ok, &error);

  g_assert_no_error (error);
  g_assert_nonnull (jwt);
  assert_parse_refused (deep, "malformed: claims: nesting deeper than 16");
  /* 10,000 levels: refused at level 17, long before the end */
  g_assert_cmpuint (strlen (t_very_deep), <=, MAMD_JWT_MAX_LEN);
  assert_parse_refused (t_very_deep, "malformed: claims: nesting deeper than 16");
  /* closed, the same nesting does not even fit the size cap */
  assert_parse_refused (t_huge, "malformed: the token is longer than");
}

static void
test_oversize (void)
{
  g_autofree char *pad_ok = g_strnfill (MAMD_JWT_MAX_LEN / 2, 'a');
  g_autofree char *pad_big = g_strnfill (MAMD_JWT_MAX_LEN * 3 / 4, 'a');
  g_autofree char *pad_ok_json = g_strdup_printf ("\"%s\"", pad_ok);
  g_autofree char *pad_big_json = g_strdup_printf ("\"%s\"", pad_big);
  g_autofree char *ok_claims = claims_with ("pad", pad_ok_json, NULL);
  g_autofree char *big_claims = claims_with ("pad", pad_big_json, NULL);
  g_autofree char *ok = token_for_claims (ok_claims);
  g_autofree char *big = token_for_claims (big_claims);
  g_autofree char *huge = g_strnfill (1024 * 1024, 'A');
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;

  g_assert_cmpuint (strlen (ok), <=, MAMD_JWT_MAX_LEN);
  identity = validate (ok, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (strlen (big), >, MAMD_JWT_MAX_LEN);
  assert_parse_refused (big, "malformed: the token is longer than");
  assert_parse_refused (huge, "malformed: the token is longer than");
}

/* ---- claims ---- */

static void
test_exp_types (void)
{
  const char *values[] = { NULL, "\"2000000000\"", "2000000000.0", "2e9", "true", "null",
                           "[2000000000]" };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *claims = claims_with ("exp", values[i], NULL);

      assert_claims_refused (claims, MAMD_ERROR_INVALID_TOKEN, "malformed: ");
    }
  for (guint i = 1; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *nbf = claims_with ("nbf", values[i], NULL);
      g_autofree char *iat = claims_with ("iat", values[i], NULL);

      assert_claims_refused (nbf, MAMD_ERROR_INVALID_TOKEN, "malformed: ");
      assert_claims_refused (iat, MAMD_ERROR_INVALID_TOKEN, "malformed: ");
    }
}

static void
test_expiry_skew (void)
{
  gint64 exp = now - 1000;
  g_autofree char *exp_json = g_strdup_printf ("%" G_GINT64_FORMAT, exp);
  g_autofree char *claims = claims_with ("exp", exp_json, "nbf", NULL, NULL);
  g_autofree char *token = token_for_claims (claims);
  MamdJwtPolicy policy = policy_at (exp + SKEW);
  g_autoptr(GError) error = NULL;

  /* valid while now < exp + skew */
  assert_accepted_at (token, exp + SKEW - 1);
  assert_accepted_at (token, exp - 1);
  error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "expired: ");
  g_clear_error (&error);
  policy.now = now;
  error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "expired: ");
  g_clear_error (&error);

  /* no skew at all */
  policy.skew = 0;
  policy.now = exp;
  error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "expired: ");
  g_clear_error (&error);
  {
    g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, &error);
    g_autoptr(MamdIdentity) identity = NULL;

    policy.now = exp - 1;
    identity = mamd_jwt_verify (jwt, mamd_jwks_lookup (jwks, "key-a"), &policy, &error);
    g_assert_no_error (error);
    g_assert_nonnull (identity);
  }
}

static void
test_not_before_skew (void)
{
  gint64 nbf = now + 1000;
  g_autofree char *nbf_json = g_strdup_printf ("%" G_GINT64_FORMAT, nbf);
  g_autofree char *exp_json = g_strdup_printf ("%" G_GINT64_FORMAT, nbf + 3600);
  g_autofree char *claims = claims_with ("nbf", nbf_json, "exp", exp_json, NULL);
  g_autofree char *token = token_for_claims (claims);
  MamdJwtPolicy policy = policy_at (nbf - SKEW - 1);
  g_autoptr(GError) error = NULL;

  /* valid from nbf - skew */
  assert_accepted_at (token, nbf - SKEW);
  assert_accepted_at (token, nbf);
  error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "not yet valid: ");
  g_clear_error (&error);
  policy.now = now;
  error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "not yet valid: ");
}

static void
test_extreme_times (void)
{
  g_autofree char *min = g_strdup_printf ("%" G_GINT64_FORMAT, G_MININT64);
  g_autofree char *max = g_strdup_printf ("%" G_GINT64_FORMAT, G_MAXINT64);
  g_autofree char *exp_min = claims_with ("exp", min, NULL);
  g_autofree char *nbf_max = claims_with ("nbf", max, NULL);
  g_autofree char *exp_max = claims_with ("exp", max, "nbf", min, NULL);
  g_autofree char *token = token_for_claims (exp_max);

  /* no overflow makes a token valid */
  assert_claims_refused (exp_min, MAMD_ERROR_INVALID_TOKEN, "expired: ");
  assert_claims_refused (nbf_max, MAMD_ERROR_INVALID_TOKEN, "not yet valid: ");
  assert_accepted_at (token, now);
}

static void
test_wrong_issuer (void)
{
  g_autofree char *a = claims_with ("iss", "\"https://login.microsoftonline.com/" TENANT "/v2.0/\"",
                                    NULL);
  g_autofree char *b = claims_with ("iss", "\"https://evil.example/" TENANT "/v2.0\"", NULL);
  g_autofree char *c = claims_with ("iss", NULL, NULL);
  g_autofree char *d = claims_with ("iss", "[\"" ISSUER "\"]", NULL);

  assert_claims_refused (a, MAMD_ERROR_INVALID_TOKEN, "issuer: ");
  assert_claims_refused (b, MAMD_ERROR_INVALID_TOKEN, "issuer: ");
  assert_claims_refused (c, MAMD_ERROR_INVALID_TOKEN, "issuer: ");
  assert_claims_refused (d, MAMD_ERROR_INVALID_TOKEN, "malformed: ");
}

static void
test_wrong_tenant (void)
{
  g_autofree char *other = claims_with ("tid", "\"" OTHER_TENANT "\"", NULL);
  g_autofree char *missing = claims_with ("tid", NULL, NULL);
  g_autofree char *not_guid = claims_with ("tid", "\"common\"", NULL);
  g_autofree char *number = claims_with ("tid", "42", NULL);
  g_autofree char *foreign = claims_with ("tid", "\"" OTHER_TENANT "\"",
                                          "iss", "\"" AUTHORITY "/" OTHER_TENANT "/v2.0\"", NULL);
  MamdJwtPolicy policy = policy_at (now);
  g_autofree char *token = token_for_claims (other);
  g_autoptr(GError) error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "tenant: ");

  assert_message_contains (error, OTHER_TENANT);
  assert_claims_refused (missing, MAMD_ERROR_INVALID_TOKEN, "tenant: ");
  assert_claims_refused (not_guid, MAMD_ERROR_INVALID_TOKEN, "tenant: ");
  assert_claims_refused (number, MAMD_ERROR_INVALID_TOKEN, "malformed: ");

  /* a genuine token of another tenant (its issuer names that tenant too)
   * is refused for the tenant, the real cause */
  assert_claims_refused (foreign, MAMD_ERROR_INVALID_TOKEN, "tenant: ");
}

static void
test_wrong_audience (void)
{
  const char *values[] = { "\"00000003-0000-0000-c000-000000000000\"", "\"api://" CLIENT "\"",
                           "[]", "[\"api://other\"]", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *claims = claims_with ("aud", values[i], NULL);

      assert_claims_refused (claims, MAMD_ERROR_INVALID_TOKEN, "audience: ");
    }
  {
    g_autofree char *a = claims_with ("aud", "[\"" CLIENT "\", 1]", NULL);
    g_autofree char *b = claims_with ("aud", "{\"aud\":\"" CLIENT "\"}", NULL);

    assert_claims_refused (a, MAMD_ERROR_INVALID_TOKEN, "malformed: ");
    assert_claims_refused (b, MAMD_ERROR_INVALID_TOKEN, "malformed: ");
  }
}

static void
test_wrong_version (void)
{
  const char *values[] = { "\"3.0\"", "\"2\"", "2.0", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *claims = claims_with ("ver", values[i], NULL);
      g_autofree char *token = token_for_claims (claims);
      MamdJwtPolicy policy = policy_at (now);
      g_autoptr(GError) error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, NULL);

      g_assert_true (g_str_has_prefix (error->message, "version: ") ||
                     g_str_has_prefix (error->message, "malformed: "));
    }
}

static void
test_v1_token (void)
{
  g_autofree char *claims = claims_with ("ver", "\"1.0\"",
                                         "iss", "\"https://sts.windows.net/" TENANT "/\"",
                                         "aud", "\"api://" CLIENT "\"",
                                         "upn", "\"megan@contoso.com\"", NULL);
  g_autofree char *no_ver = claims_with ("ver", NULL,
                                         "iss", "\"https://sts.windows.net/" TENANT "/\"", NULL);
  MamdJwtPolicy policy = policy_at (now);
  g_autofree char *token = token_for_claims (claims);
  g_autofree char *token2 = token_for_claims (no_ver);
  g_autoptr(GError) error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "version: ");

  assert_message_contains (error, "accessTokenAcceptedVersion");
  g_clear_error (&error);
  error = refused_with (token2, &policy, MAMD_ERROR_INVALID_TOKEN, "version: ");
  assert_message_contains (error, "accessTokenAcceptedVersion");
}

static void
test_app_only (void)
{
  g_autofree char *claims = claims_with ("scp", NULL, "roles", "[\"Sessions.Read.All\"]",
                                         "idtyp", "\"app\"", NULL);
  MamdJwtPolicy policy = policy_at (now);
  g_autofree char *token = token_for_claims (claims);
  g_autoptr(GError) error = refused_with (token, &policy, MAMD_ERROR_INVALID_TOKEN, "scope: ");

  assert_message_contains (error, "app-only");
}

static void
test_scope (void)
{
  const char *values[] = { "\"User.Read\"", "\"login.mattermostX\"", "\"xlogin.mattermost\"",
                           "\"api://" CLIENT "/login.mattermost\"", "\"\"", "\"  \"", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *claims = claims_with ("scp", values[i], NULL);

      assert_claims_refused (claims, MAMD_ERROR_INVALID_TOKEN, "scope: ");
    }
  {
    g_autofree char *wrong_type = claims_with ("scp", "[\"" SCOPE "\"]", NULL);
    g_autofree char *spaced = claims_with ("scp", "\"  User.Read   " SCOPE "  \"", NULL);
    g_autofree char *token = token_for_claims (spaced);

    assert_claims_refused (wrong_type, MAMD_ERROR_INVALID_TOKEN, "malformed: ");
    assert_accepted_at (token, now);
  }
}

static void
test_oid_missing (void)
{
  g_autofree char *claims = claims_with ("oid", NULL, NULL);
  /* mutable identifiers never stand in for oid */
  g_autofree char *others = claims_with ("oid", NULL, "email", "\"megan@contoso.com\"",
                                         "upn", "\"megan@contoso.com\"",
                                         "unique_name", "\"megan@contoso.com\"",
                                         "sub", "\"AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ\"",
                                         NULL);

  assert_claims_refused (claims, MAMD_ERROR_MISSING_AUTH_ACCOUNT, NULL);
  assert_claims_refused (others, MAMD_ERROR_MISSING_AUTH_ACCOUNT, NULL);
}

static void
test_oid_malformed (void)
{
  const char *values[] = { "\"megan@contoso.com\"", "\"\"", "\"6e8d4e7b2b0c4c5b9f1f3d3e4f5a6b7c\"",
                           "\"6e8d4e7b-2b0c-4c5b-9f1f-3d3e4f5a6b7\"",
                           "\"6e8d4e7b-2b0c-4c5b-9f1f-3d3e4f5a6b7c0\"",
                           "\"6e8d4e7b-2b0c-4c5b-9f1f-3d3e4f5a6b7g\"", "42", "null",
                           "[\"" OID "\"]" };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autofree char *claims = claims_with ("oid", values[i], NULL);

      assert_claims_refused (claims, MAMD_ERROR_MISSING_AUTH_ACCOUNT, NULL);
    }
}

static void
test_oid_canonical (void)
{
  g_autofree char *claims = claims_with ("oid", "\"6E8D4E7B-2B0C-4C5B-9F1F-3D3E4F5A6B7C\"", NULL);
  g_autofree char *braced = claims_with ("oid", "\"{6e8d4e7b-2b0c-4c5b-9F1F-3d3e4f5a6b7c}\"", NULL);
  g_autofree char *token = token_for_claims (claims);
  g_autofree char *token2 = token_for_claims (braced);

  assert_accepted_at (token, now);
  assert_accepted_at (token2, now);
}

/* ---- keys ---- */

static MamdJwks *
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

static void
test_key_issuer (void)
{
  g_autoptr(MamdJwks) wrong = jwks_from ("key-a", key_a, AUTHORITY "/" OTHER_TENANT "/v2.0", NULL);
  g_autoptr(MamdJwks) right = jwks_from ("key-a", key_a, ISSUER, NULL);
  g_autoptr(MamdJwks) templated = jwks_from ("key-a", key_a, AUTHORITY "/{tenantid}/v2.0", NULL);
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *token = token_for_claims (claims);
  MamdJwtPolicy policy = policy_at (now);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;

  identity = validate_with (token, wrong, &policy, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  assert_message_starts (error, "issuer: ");
  g_clear_error (&error);

  identity = validate_with (token, right, &policy, &error);
  g_assert_no_error (error);
  g_clear_pointer (&identity, mamd_identity_free);
  identity = validate_with (token, templated, &policy, &error);
  g_assert_no_error (error);
  g_assert_nonnull (identity);
}

static void
test_other_key_signature (void)
{
  g_autofree char *header = header_with (NULL); /* kid key-a */
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *token = sign (header, claims, "RS256", key_b);
  g_autofree char *valid = token_for_claims (claims);
  g_autofree char *tampered = NULL;
  g_autofree char *other_claims = claims_with ("oid", "\"00000000-0000-0000-0000-000000000001\"",
                                               NULL);
  g_autofree char *other_b64 = b64 (other_claims);
  g_auto(GStrv) seg = g_strsplit (valid, ".", -1);

  assert_refused (token, MAMD_ERROR_INVALID_TOKEN, "signature: ");
  /* the signature of one claims set on another */
  tampered = g_strdup_printf ("%s.%s.%s", seg[0], other_b64, seg[2]);
  assert_refused (tampered, MAMD_ERROR_INVALID_TOKEN, "signature: ");
}

static void
test_verify_key_type (void)
{
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *token = token_for_claims (claims);
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, NULL);
  MamdJwtPolicy policy = policy_at (now);
  MamdJwk small = { (char *) "key-a", key_small, NULL };
  MamdJwk ec = { (char *) "key-a", key_ec, NULL };
  MamdJwk *keys[] = { &small, &ec };

  g_assert_nonnull (jwt);
  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdIdentity) identity = mamd_jwt_verify (jwt, keys[i], &policy, &error);

      g_assert_null (identity);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
      assert_message_starts (error, "signature: ");
    }
}

static void
test_key_rotation (void)
{
  g_autoptr(EVP_PKEY) key_c = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, NULL);
  g_autoptr(MamdJwks) before = jwks_from ("key-a", key_a, NULL, NULL);
  g_autoptr(MamdJwks) after = jwks_from ("key-a", key_a, NULL, "key-c", key_c, NULL, NULL);
  g_autofree char *header = header_with ("kid", "\"key-c\"", NULL);
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *token = sign (header, claims, "RS256", key_c);
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, NULL);
  MamdJwtPolicy policy = policy_at (now);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;

  g_assert_nonnull (jwt);
  /* the new kid is unknown to the old set and found in the new one */
  g_assert_null (mamd_jwks_lookup (before, mamd_jwt_get_kid (jwt)));
  identity = mamd_jwt_verify (jwt, mamd_jwks_lookup (after, "key-c"), &policy, &error);
  g_assert_no_error (error);
  g_assert_nonnull (identity);
}

static char *
jwks_text (const char *first, ...)
{
  g_autoptr(GString) text = g_string_new ("{\"keys\":[");
  va_list args;

  va_start (args, first);
  for (const char *key = first; key != NULL; key = va_arg (args, const char *))
    {
      if (key != first)
        g_string_append_c (text, ',');
      g_string_append (text, key);
    }
  va_end (args);
  g_string_append (text, "]}");
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static char *
jwk_text_with (EVP_PKEY *key, const char *kid, const char *member, const char *raw)
{
  g_autoptr(JsonObject) jwk = mamd_idp_key_to_jwk (key, kid, NULL);

  if (member != NULL && raw == NULL)
    json_object_remove_member (jwk, member);
  else if (member != NULL)
    json_object_set_member (jwk, member, json_from_string (raw, NULL));
  return object_text (jwk);
}

static MamdJwks *
jwks_parse_text (const char *text, GError **error)
{
  return mamd_jwks_parse (text, strlen (text), error);
}

static void
test_jwks_parse (void)
{
  g_autofree char *a = jwk_text_with (key_a, "key-a", "issuer", "\"" ISSUER "\"");
  g_autofree char *b = jwk_text_with (key_b, "key-b", "alg", NULL);  /* Entra omits alg */
  g_autofree char *c = jwk_text_with (key_b, "key-b-use", "use", NULL);
  g_autofree char *text = jwks_text (a, b, c, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwks) keys = jwks_parse_text (text, &error);
  MamdJwks *ref;

  g_assert_no_error (error);
  g_assert_cmpuint (mamd_jwks_get_n_keys (keys), ==, 3);
  g_assert_cmpuint (mamd_jwks_get_n_skipped (keys), ==, 0);
  g_assert_cmpstr (mamd_jwks_lookup (keys, "key-a")->issuer, ==, ISSUER);
  g_assert_null (mamd_jwks_lookup (keys, "key-b")->issuer);
  g_assert_cmpint (EVP_PKEY_eq (mamd_jwks_lookup (keys, "key-b")->key, key_b), ==, 1);
  g_assert_null (mamd_jwks_lookup (keys, "key-c"));
  g_assert_null (mamd_jwks_lookup (keys, NULL));

  ref = mamd_jwks_ref (keys);
  mamd_jwks_unref (ref);
  g_assert_cmpuint (mamd_jwks_get_n_keys (keys), ==, 3);
}

static void
test_jwks_skipped (void)
{
  g_autofree char *good = jwk_text_with (key_a, "good", NULL, NULL);
  /* the usable one is listed between the skipped ones */
  const char *cases[][2] = {
    { "small", NULL },        /* 1024-bit RSA */
    { "ec", NULL },           /* EC key */
    { "n", "\"AQAB=\"" },     /* padding in n */
    { "n", "\"a+b/\"" },      /* base64, not base64url */
    { "n", "\"\"" },
    { "n", "42" },
    { "e", "\"AQA\"" },       /* even exponent (256) */
    { "e", "\"AQ\"" },        /* exponent 1 */
    { "e", "\"AQAAAAAAAAAAAQ\"" }, /* > 64 bits */
    { "use", "\"enc\"" },
    { "alg", "\"RS512\"" },
    { "alg", "\"PS256\"" },
    { "kty", "\"oct\"" },
    { "kid", NULL },
    { "kid", "\"\"" },
    { "kid", "7" },
    { "issuer", "7" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *bad = NULL;
      g_autofree char *text = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwks) keys = NULL;
      g_autofree char *alone = NULL;

      if (g_str_equal (cases[i][0], "small"))
        bad = jwk_text_with (key_small, "bad", NULL, NULL);
      else if (g_str_equal (cases[i][0], "ec"))
        bad = jwk_text_with (key_ec, "bad", NULL, NULL);
      else
        bad = jwk_text_with (key_b, "bad", cases[i][0], cases[i][1]);
      g_test_message ("case %s = %s", cases[i][0], cases[i][1]);

      text = jwks_text (bad, good, "\"not a key\"", NULL);
      keys = jwks_parse_text (text, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (mamd_jwks_get_n_keys (keys), ==, 1);
      g_assert_cmpuint (mamd_jwks_get_n_skipped (keys), ==, 2);
      g_assert_nonnull (mamd_jwks_lookup (keys, "good"));
      g_assert_null (mamd_jwks_lookup (keys, "bad"));

      /* alone, it leaves no usable key */
      g_clear_pointer (&keys, mamd_jwks_unref);
      alone = jwks_text (bad, NULL);
      keys = jwks_parse_text (alone, &error);
      g_assert_null (keys);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
      assert_message_contains (error, "no usable key");
    }
}

static void
test_jwks_invalid (void)
{
  g_autofree char *a = jwk_text_with (key_a, "same", NULL, NULL);
  g_autofree char *b = jwk_text_with (key_b, "same", NULL, NULL);
  g_autofree char *dup = jwks_text (a, b, NULL);
  g_autofree char *dup_member = g_strdup_printf ("{\"keys\":[%s],\"keys\":[]}", a);
  g_autofree char *big = g_strnfill (256 * 1024 + 1, ' ');
  const char *texts[] = {
    "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":\"x\"}", "{\"keys\":[]}", "{\"keys\":null}",
    "{\"keys\":[{}]}", "not json", dup, dup_member, big,
  };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwks) keys = jwks_parse_text (texts[i], &error);

      g_assert_null (keys);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
    }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(MamdJwks) keys = jwks_parse_text (dup, &error);

    g_assert_null (keys);
    assert_message_contains (error, "more than once");
  }
}

/* ---- the mint helpers themselves, checked with OpenSSL directly ---- */

static gboolean
openssl_verifies (EVP_PKEY *key, const char *digest, int padding, const char *token)
{
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  const char *last_dot = strrchr (token, '.');
  g_autofree guint8 *sig = NULL;
  g_autofree guint8 *der = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  gsize sig_len = 0;
  gsize der_len;

  sig = mamd_base64url_decode (last_dot + 1, -1, &sig_len, NULL);
  g_assert_nonnull (sig);
  if (EVP_PKEY_get_base_id (key) == EVP_PKEY_EC)
    {
      g_autoptr(ECDSA_SIG) ecdsa = ECDSA_SIG_new ();
      guint8 *p;
      int n;

      /* back from JOSE r || s to DER */
      g_assert_cmpuint (sig_len, ==, 64);
      ECDSA_SIG_set0 (ecdsa, BN_bin2bn (sig, 32, NULL), BN_bin2bn (sig + 32, 32, NULL));
      n = i2d_ECDSA_SIG (ecdsa, NULL);
      der = g_malloc (n);
      p = der;
      i2d_ECDSA_SIG (ecdsa, &p);
      der_len = (gsize) n;
    }
  else
    {
      der = g_memdup2 (sig, sig_len);
      der_len = sig_len;
    }
  g_assert_cmpint (EVP_DigestVerifyInit_ex (ctx, &pctx, digest, NULL, NULL, key, NULL), ==, 1);
  if (padding != 0)
    {
      g_assert_cmpint (EVP_PKEY_CTX_set_rsa_padding (pctx, padding), ==, 1);
      if (padding == RSA_PKCS1_PSS_PADDING)
        g_assert_cmpint (EVP_PKEY_CTX_set_rsa_pss_saltlen (pctx, 32), ==, 1);
    }
  return EVP_DigestVerify (ctx, der, der_len, (const guint8 *) token,
                           (gsize) (last_dot - token)) == 1;
}

static void
test_mint_signatures (void)
{
  g_autofree char *header = header_with (NULL);
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *rs256 = sign (header, claims, "RS256", key_a);
  g_autofree char *rs512 = sign (header, claims, "RS512", key_a);
  g_autofree char *ps256 = sign (header, claims, "PS256", key_a);
  g_autofree char *es256 = sign (header, claims, "ES256", key_ec);
  g_autoptr(GError) error = NULL;
  g_autofree char *nope = NULL;
  g_autoptr(JsonObject) ec_jwk = mamd_idp_key_to_jwk (key_ec, "ec", "iss");

  g_assert_true (openssl_verifies (key_a, "SHA256", RSA_PKCS1_PADDING, rs256));
  g_assert_false (openssl_verifies (key_b, "SHA256", RSA_PKCS1_PADDING, rs256));
  g_assert_true (openssl_verifies (key_a, "SHA512", RSA_PKCS1_PADDING, rs512));
  g_assert_true (openssl_verifies (key_a, "SHA256", RSA_PKCS1_PSS_PADDING, ps256));
  g_assert_false (openssl_verifies (key_a, "SHA256", RSA_PKCS1_PADDING, ps256));
  g_assert_true (openssl_verifies (key_ec, "SHA256", 0, es256));

  g_assert_cmpstr (json_object_get_string_member (ec_jwk, "kty"), ==, "EC");
  g_assert_cmpstr (json_object_get_string_member (ec_jwk, "crv"), ==, "P-256");
  g_assert_cmpstr (json_object_get_string_member (ec_jwk, "issuer"), ==, "iss");

  nope = mamd_idp_sign_compact (header, claims, "RS256", key_ec, NULL, 0, &error);
  g_assert_null (nope);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  nope = mamd_idp_sign_compact (header, claims, "HS256", NULL, NULL, 0, &error);
  g_assert_null (nope);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
}

/* ---- the reader against the reference parser ---- */

static gboolean
reference_accepts (const char *text, gsize len)
{
  g_autoptr(JsonNode) node = mamd_json_parse_strict (text, len, MAMD_JWT_MAX_LEN, 16, NULL);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node);
}

/* Mutated claims sets: the token reader accepts exactly what
 * mamd_json_parse_strict () accepts as an object. */
static void
test_reader_differential (void)
{
  static const char *const pieces[] = {
    "{", "}", "[", "]", "\"", ",", ":", "\\", "\\u", "\\ud83d", "\\ude00", "\\u0000", "0", "-",
    ".", "e", "E", "+", "1", " ", "\t", "\n", "t", "true", "null", "\x01", "\xc3\xa9", "\xff",
    "\"a\":1", "\"oid\":", "00", "9223372036854775808", "\\n", "'", "x",
  };
  const char *base =
    "{\"aud\":\"" CLIENT "\",\"iss\":\"" ISSUER "\",\"exp\":2000000000,\"n\":-1.5e-3,"
    "\"esc\":\"\\u00e9\\ud83d\\ude00\\n\\\"\\/\",\"t\":true,\"f\":false,\"z\":null,"
    "\"nest\":{\"a\":[1,{\"b\":[]},\"c\"],\"d\":{}},\"big\":-9223372036854775808}";
  g_autofree char *header = header_with (NULL);
  g_autofree char *header_b64 = b64 (header);
  guint accepted = 0, refused = 0;

  g_assert_true (reference_accepts (base, strlen (base)));
  for (guint i = 0; i < 3000; i++)
    {
      g_autoptr(GString) text = g_string_new (base);
      guint edits = 1 + g_test_rand_int_range (0, 3);
      g_autofree char *claims_b64 = NULL;
      g_autofree char *token = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwt) jwt = NULL;
      gboolean expected;

      for (guint e = 0; e < edits; e++)
        {
          guint pos = g_test_rand_int_range (0, (gint) text->len + 1);
          const char *piece = pieces[g_test_rand_int_range (0, G_N_ELEMENTS (pieces))];

          switch (g_test_rand_int_range (0, 3))
            {
            case 0:
              g_string_insert (text, pos, piece);
              break;
            case 1:
              if (pos < text->len)
                {
                  gint n = g_test_rand_int_range (1, 4);

                  g_string_erase (text, pos, MIN (n, (gint) (text->len - pos)));
                }
              break;
            default:
              if (pos < text->len)
                g_string_erase (text, pos, 1);
              g_string_insert (text, MIN (pos, text->len), piece);
              break;
            }
        }
      expected = reference_accepts (text->str, text->len);
      claims_b64 = mamd_base64url_encode ((const guint8 *) text->str, text->len);
      if (*claims_b64 == '\0')
        continue;
      token = g_strdup_printf ("%s.%s.AAAA", header_b64, claims_b64);
      jwt = mamd_jwt_parse (token, &error);
      if ((jwt != NULL) != expected)
        g_error ("reader and reference disagree (reader %s) on: %s",
                 jwt != NULL ? "accepts" : error->message, text->str);
      if (jwt == NULL)
        assert_message_starts (error, "malformed: claims: ");
      if (expected)
        accepted++;
      else
        refused++;
    }
  /* the mutations exercise both sides */
  g_assert_cmpuint (accepted, >, 50);
  g_assert_cmpuint (refused, >, 50);
}

/* The header segment decoder against mamd_base64url_decode (). */
static void
test_base64url_differential (void)
{
  const char alphabet[] = "AQgwBZaz09-_+/= \n%";
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *claims_b64 = b64 (claims);

  for (guint i = 0; i < 3000; i++)
    {
      guint len = g_test_rand_int_range (1, 13);
      char segment[16];
      g_autofree char *token = NULL;
      g_autofree guint8 *decoded = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwt) jwt = NULL;
      gboolean reference_ok, mine_ok;
      gsize out_len;

      for (guint j = 0; j < len; j++)
        segment[j] = alphabet[g_test_rand_int_range (0, sizeof alphabet - 1)];
      segment[len] = '\0';
      decoded = mamd_base64url_decode (segment, -1, &out_len, NULL);
      reference_ok = decoded != NULL;
      token = g_strdup_printf ("%s.%s.AAAA", segment, claims_b64);
      jwt = mamd_jwt_parse (token, &error);
      g_assert_null (jwt); /* no such short header is a valid one */
      mine_ok = strstr (error->message, "not strict base64url") == NULL;
      if (mine_ok != reference_ok)
        g_error ("decoders disagree on \"%s\": %s", segment, error->message);
    }
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EVP_PKEY) a = NULL;
  g_autoptr(EVP_PKEY) b = NULL;
  g_autoptr(EVP_PKEY) ec = NULL;
  g_autoptr(EVP_PKEY) small = NULL;
  g_autoptr(MamdJwks) keys = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);

  now = g_get_real_time () / G_USEC_PER_SEC;
  a = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, &error);
  g_assert_no_error (error);
  b = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, &error);
  g_assert_no_error (error);
  ec = mamd_idp_key_generate (MAMD_IDP_KEY_EC_P256, 0, &error);
  g_assert_no_error (error);
  small = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 1024, &error);
  g_assert_no_error (error);
  key_a = a;
  key_b = b;
  key_ec = ec;
  key_small = small;
  keys = jwks_from ("key-a", key_a, NULL, "key-b", key_b, NULL, NULL);
  jwks = keys;

  g_test_add_func ("/mamd/oauth/jwt/valid", test_valid);
  g_test_add_func ("/mamd/oauth/jwt/valid-minted", test_valid_minted);
  g_test_add_func ("/mamd/oauth/jwt/valid-variants", test_valid_variants);
  g_test_add_func ("/mamd/oauth/jwt/alg/refused", test_alg_refused);
  g_test_add_func ("/mamd/oauth/jwt/alg/none-empty-signature", test_alg_none_empty_signature);
  g_test_add_func ("/mamd/oauth/jwt/alg/hs256-public-key", test_alg_hs256_public_key);
  g_test_add_func ("/mamd/oauth/jwt/alg/missing", test_alg_missing);
  g_test_add_func ("/mamd/oauth/jwt/header/embedded-keys", test_embedded_keys);
  g_test_add_func ("/mamd/oauth/jwt/header/crit", test_crit);
  g_test_add_func ("/mamd/oauth/jwt/header/typ-and-kid", test_typ_and_kid);
  g_test_add_func ("/mamd/oauth/jwt/malformed/compact", test_malformed_compact);
  g_test_add_func ("/mamd/oauth/jwt/malformed/plus-slash", test_malformed_plus_slash);
  g_test_add_func ("/mamd/oauth/jwt/malformed/not-objects", test_not_objects);
  g_test_add_func ("/mamd/oauth/jwt/malformed/duplicate-keys", test_duplicate_keys);
  g_test_add_func ("/mamd/oauth/jwt/malformed/deep-nesting", test_deep_nesting);
  g_test_add_func ("/mamd/oauth/jwt/malformed/oversize", test_oversize);
  g_test_add_func ("/mamd/oauth/jwt/malformed/reader-differential", test_reader_differential);
  g_test_add_func ("/mamd/oauth/jwt/malformed/base64url-differential",
                   test_base64url_differential);
  g_test_add_func ("/mamd/oauth/jwt/claims/exp-types", test_exp_types);
  g_test_add_func ("/mamd/oauth/jwt/claims/expiry-skew", test_expiry_skew);
  g_test_add_func ("/mamd/oauth/jwt/claims/not-before-skew", test_not_before_skew);
  g_test_add_func ("/mamd/oauth/jwt/claims/extreme-times", test_extreme_times);
  g_test_add_func ("/mamd/oauth/jwt/claims/issuer", test_wrong_issuer);
  g_test_add_func ("/mamd/oauth/jwt/claims/tenant", test_wrong_tenant);
  g_test_add_func ("/mamd/oauth/jwt/claims/audience", test_wrong_audience);
  g_test_add_func ("/mamd/oauth/jwt/claims/version", test_wrong_version);
  g_test_add_func ("/mamd/oauth/jwt/claims/v1-token", test_v1_token);
  g_test_add_func ("/mamd/oauth/jwt/claims/app-only", test_app_only);
  g_test_add_func ("/mamd/oauth/jwt/claims/scope", test_scope);
  g_test_add_func ("/mamd/oauth/jwt/claims/oid-missing", test_oid_missing);
  g_test_add_func ("/mamd/oauth/jwt/claims/oid-malformed", test_oid_malformed);
  g_test_add_func ("/mamd/oauth/jwt/claims/oid-canonical", test_oid_canonical);
  g_test_add_func ("/mamd/oauth/jwt/keys/key-issuer", test_key_issuer);
  g_test_add_func ("/mamd/oauth/jwt/keys/other-key-signature", test_other_key_signature);
  g_test_add_func ("/mamd/oauth/jwt/keys/verify-key-type", test_verify_key_type);
  g_test_add_func ("/mamd/oauth/jwt/keys/rotation", test_key_rotation);
  g_test_add_func ("/mamd/oauth/jwt/jwks/parse", test_jwks_parse);
  g_test_add_func ("/mamd/oauth/jwt/jwks/skipped", test_jwks_skipped);
  g_test_add_func ("/mamd/oauth/jwt/jwks/invalid", test_jwks_invalid);
  g_test_add_func ("/mamd/oauth/jwt/mint/signatures", test_mint_signatures);

  ret = g_test_run ();
  jwks = NULL;
  return ret;
}
