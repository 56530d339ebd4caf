/*
 * Access tokens: the header and the signature. Which algorithms are
 * refused (none, HS256 with the public key as secret, RS512 ...), keys
 * embedded in the header, crit, typ and kid; a signature by another key or
 * over other claims, key types that cannot verify RS256, the issuer bound
 * to a key, key rotation, JWKS parsing (skipped and invalid keys, the size
 * limit); and the developer IdP's mint helpers checked against OpenSSL
 * directly. Claims are test-oauth-jwt-claims.c, the compact form and JSON
 * strictness test-oauth-jwt-malformed.c.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "mamd-idp-mint.h"
#include "mamd-json.h"
#include "mamd-test-jwt-util.h"

/* mamd_jwks_parse () takes documents of up to 256 KiB (mamd-oauth-jwks.h) */
#define JWKS_MAX_LEN (256 * 1024)

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY_CTX, EVP_PKEY_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OSSL_PARAM, OSSL_PARAM_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ECDSA_SIG, ECDSA_SIG_free)

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
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"application/\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"text/at+jwt\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"application/application/jwt\"}",
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

/* ---- keys ---- */

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

/* An RSA-PSS key with key_a's modulus and exponent: as long as key_a, so
 * only the key type tells it apart. */
static EVP_PKEY *
rsa_pss_copy (EVP_PKEY *rsa)
{
  g_autoptr(EVP_PKEY_CTX) ctx = EVP_PKEY_CTX_new_from_name (NULL, "RSA-PSS", NULL);
  g_autoptr(OSSL_PARAM) params = NULL;
  EVP_PKEY *pss = NULL;

  g_assert_cmpint (EVP_PKEY_todata (rsa, EVP_PKEY_PUBLIC_KEY, &params), ==, 1);
  g_assert_cmpint (EVP_PKEY_fromdata_init (ctx), ==, 1);
  g_assert_cmpint (EVP_PKEY_fromdata (ctx, &pss, EVP_PKEY_PUBLIC_KEY, params), ==, 1);
  g_assert_cmpint (EVP_PKEY_get_base_id (pss), ==, EVP_PKEY_RSA_PSS);
  g_assert_cmpint (EVP_PKEY_get_bits (pss), ==, 2048);
  return pss;
}

/* An RS256 header over @claims with a DER ECDSA signature by key_ec of
 * EVP_PKEY_get_size (key_ec) bytes, the length the validator compares the
 * signature with. DER is shorter when r or s is; ECDSA is randomised, so
 * signing again soon gives a signature of the full length. */
static char *
ec_signed_token (const char *claims)
{
  g_autofree char *header = header_with (NULL);
  g_autofree char *header_b64 = b64 (header);
  g_autofree char *claims_b64 = b64 (claims);
  g_autofree char *input = g_strdup_printf ("%s.%s", header_b64, claims_b64);
  g_autofree char *sig_b64 = NULL;
  gsize want = (gsize) EVP_PKEY_get_size (key_ec);
  guint8 der[256];
  gsize der_len = 0;

  g_assert_cmpuint (want, <=, sizeof der);
  for (guint attempt = 0; attempt < 200 && der_len != want; attempt++)
    {
      g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();

      der_len = sizeof der;
      g_assert_cmpint (EVP_DigestSignInit_ex (ctx, NULL, "SHA256", NULL, NULL, key_ec, NULL),
                       ==, 1);
      g_assert_cmpint (EVP_DigestSign (ctx, der, &der_len, (const guint8 *) input,
                                       strlen (input)), ==, 1);
    }
  g_assert_cmpuint (der_len, ==, want);
  sig_b64 = mamd_base64url_encode (der, der_len);
  return g_strdup_printf ("%s.%s", input, sig_b64);
}

/* What the validator's OpenSSL call would say of the signature: SHA-256
 * with the key's default padding. */
static gboolean
signature_verifies (EVP_PKEY *key, const char *token)
{
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  const char *last_dot = strrchr (token, '.');
  g_autofree guint8 *sig = NULL;
  gsize sig_len = 0;

  sig = mamd_base64url_decode (last_dot + 1, -1, &sig_len, NULL);
  g_assert_nonnull (sig);
  g_assert_cmpuint (sig_len, ==, (gsize) EVP_PKEY_get_size (key));
  g_assert_cmpint (EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, key), ==, 1);
  return EVP_DigestVerify (ctx, sig, sig_len, (const guint8 *) token,
                           (gsize) (last_dot - token)) == 1;
}

/* Each token is signed by the key it is checked with, with a signature of
 * the key's length that OpenSSL accepts, over valid claims: only the rule
 * binding RS256 to an RSA key of at least 2048 bits can refuse it. The
 * RSA-PSS key is as long as key_a, so only the key type refuses that one;
 * the small key is RSA, so only its size refuses it. */
static void
test_verify_key_type (void)
{
  g_autoptr(EVP_PKEY) key_pss = rsa_pss_copy (key_a);
  g_autofree char *header = header_with (NULL); /* RS256, kid key-a */
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *small_token = sign (header, claims, "RS256", key_small);
  g_autofree char *pss_token = sign (header, claims, "PS256", key_a);
  g_autofree char *ec_token = ec_signed_token (claims);
  g_autofree char *a_token = token_for_claims (claims);
  MamdJwtPolicy policy = policy_at (now);
  MamdJwk small = { (char *) "key-a", key_small, NULL };
  MamdJwk pss = { (char *) "key-a", key_pss, NULL };
  MamdJwk ec = { (char *) "key-a", key_ec, NULL };
  struct { const char *why; MamdJwk *key; const char *token; } cases[] = {
    { "1024-bit RSA key", &small, small_token },
    { "2048-bit RSA-PSS key", &pss, pss_token },
    { "P-256 key", &ec, ec_token },
    /* a token of another key is refused for the key, not its signature */
    { "1024-bit RSA key, key_a's token", &small, a_token },
    { "P-256 key, key_a's token", &ec, a_token },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwt) jwt = mamd_jwt_parse (cases[i].token, &error);
      g_autoptr(MamdIdentity) identity = NULL;

      g_test_message ("case: %s", cases[i].why);
      g_assert_no_error (error);
      if (cases[i].token != a_token)
        g_assert_true (signature_verifies (cases[i].key->key, cases[i].token));
      identity = mamd_jwt_verify (jwt, cases[i].key, &policy, &error);
      g_assert_null (identity);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
      g_assert_cmpstr (error->message, ==,
                       "signature: key \"key-a\" is not an RSA key of at least 2048 bits");
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
  g_autofree char *d = jwk_text_with (key_b, "key-b-ops", "key_ops", "[\"sign\",\"verify\"]");
  g_autofree char *text = jwks_text (a, b, c, d, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwks) keys = jwks_parse_text (text, &error);
  MamdJwks *ref;

  g_assert_no_error (error);
  g_assert_cmpuint (mamd_jwks_get_n_keys (keys), ==, 4);
  g_assert_cmpuint (mamd_jwks_get_n_skipped (keys), ==, 0);
  g_assert_cmpstr (mamd_jwks_lookup (keys, "key-a")->issuer, ==, ISSUER);
  g_assert_null (mamd_jwks_lookup (keys, "key-b")->issuer);
  g_assert_cmpint (EVP_PKEY_eq (mamd_jwks_lookup (keys, "key-b")->key, key_b), ==, 1);
  g_assert_null (mamd_jwks_lookup (keys, "key-c"));
  g_assert_null (mamd_jwks_lookup (keys, NULL));

  ref = mamd_jwks_ref (keys);
  mamd_jwks_unref (ref);
  g_assert_cmpuint (mamd_jwks_get_n_keys (keys), ==, 4);

  /* without "use", key_ops alone says what the key is for */
  {
    g_autoptr(JsonObject) jwk = mamd_idp_key_to_jwk (key_a, "ops-only", NULL);
    g_autofree char *e = NULL;
    g_autofree char *one = NULL;
    g_autoptr(MamdJwks) set = NULL;

    json_object_remove_member (jwk, "use");
    json_object_set_member (jwk, "key_ops", json_from_string ("[\"verify\",\"encrypt\"]", NULL));
    e = object_text (jwk);
    one = jwks_text (e, NULL);
    set = jwks_parse_text (one, &error);
    g_assert_no_error (error);
    g_assert_nonnull (mamd_jwks_lookup (set, "ops-only"));
  }
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
    /* RFC 7517 4.3 */
    { "key_ops", "[\"encrypt\",\"wrapKey\"]" }, /* does not allow verify */
    { "key_ops", "[]" },
    { "key_ops", "\"verify\"" },
    { "key_ops", "[\"verify\",7]" },
    { "key_ops", "[[\"verify\"]]" },
    { "key_ops", "[\"verify\",\"encrypt\"]" }, /* disagrees with use: sig */
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
  const char *texts[] = {
    "", "[]", "{}", "{\"keys\":{}}", "{\"keys\":\"x\"}", "{\"keys\":[]}", "{\"keys\":null}",
    "{\"keys\":[{}]}", "not json", dup, dup_member,
  };
  /* a kid listed twice is refused even when one of the keys would be
   * skipped: an EC key, an encryption key, one that is not even RSA */
  g_autofree char *ec = jwk_text_with (key_ec, "same", NULL, NULL);
  g_autofree char *enc = jwk_text_with (key_b, "same", "use", "\"enc\"");
  g_autofree char *dup_ec = jwks_text (ec, a, NULL);
  g_autofree char *dup_enc = jwks_text (a, enc, NULL);
  g_autofree char *dup_skipped = jwks_text (ec, enc, a, NULL);
  const char *dups[] = { dup, dup_ec, dup_enc, dup_skipped };

  for (guint i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwks) keys = jwks_parse_text (texts[i], &error);

      g_assert_null (keys);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
    }
  for (guint i = 0; i < G_N_ELEMENTS (dups); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwks) keys = jwks_parse_text (dups[i], &error);

      g_test_message ("%s", dups[i]);
      g_assert_null (keys);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
      assert_message_contains (error, "more than once");
    }
}

/* A valid JWKS padded with trailing whitespace (which JSON allows) is
 * refused only for its size, and only once past the limit. */
static void
test_jwks_oversize (void)
{
  g_autofree char *a = jwk_text_with (key_a, "key-a", NULL, NULL);
  g_autofree char *valid = jwks_text (a, NULL);
  g_autoptr(GString) text = g_string_new (valid);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwks) keys = NULL;
  g_autofree char *expected = g_strdup_printf ("document of %d bytes is larger than %d",
                                               JWKS_MAX_LEN + 1, JWKS_MAX_LEN);

  g_assert_cmpuint (text->len, <, JWKS_MAX_LEN);
  while (text->len < JWKS_MAX_LEN)
    g_string_append_c (text, ' ');
  keys = mamd_jwks_parse (text->str, text->len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (mamd_jwks_lookup (keys, "key-a"));
  g_clear_pointer (&keys, mamd_jwks_unref);

  g_string_append_c (text, ' ');
  keys = mamd_jwks_parse (text->str, text->len, &error);
  g_assert_null (keys);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  assert_message_contains (error, expected);
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

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  mamd_test_jwt_init ();

  g_test_add_func ("/mamd/oauth/jwt/alg/refused", test_alg_refused);
  g_test_add_func ("/mamd/oauth/jwt/alg/none-empty-signature", test_alg_none_empty_signature);
  g_test_add_func ("/mamd/oauth/jwt/alg/hs256-public-key", test_alg_hs256_public_key);
  g_test_add_func ("/mamd/oauth/jwt/alg/missing", test_alg_missing);
  g_test_add_func ("/mamd/oauth/jwt/header/embedded-keys", test_embedded_keys);
  g_test_add_func ("/mamd/oauth/jwt/header/crit", test_crit);
  g_test_add_func ("/mamd/oauth/jwt/header/typ-and-kid", test_typ_and_kid);
  g_test_add_func ("/mamd/oauth/jwt/keys/key-issuer", test_key_issuer);
  g_test_add_func ("/mamd/oauth/jwt/keys/other-key-signature", test_other_key_signature);
  g_test_add_func ("/mamd/oauth/jwt/keys/verify-key-type", test_verify_key_type);
  g_test_add_func ("/mamd/oauth/jwt/keys/rotation", test_key_rotation);
  g_test_add_func ("/mamd/oauth/jwt/jwks/parse", test_jwks_parse);
  g_test_add_func ("/mamd/oauth/jwt/jwks/skipped", test_jwks_skipped);
  g_test_add_func ("/mamd/oauth/jwt/jwks/invalid", test_jwks_invalid);
  g_test_add_func ("/mamd/oauth/jwt/jwks/oversize", test_jwks_oversize);
  g_test_add_func ("/mamd/oauth/jwt/mint/signatures", test_mint_signatures);

  ret = g_test_run ();
  mamd_test_jwt_cleanup ();
  return ret;
}
