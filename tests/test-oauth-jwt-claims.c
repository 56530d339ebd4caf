/*
 * Access tokens: the claims. Valid tokens and the variants that must stay
 * valid, then one test per claim rule: exp/nbf/iat types and the clock skew,
 * extreme times, issuer, tenant, audience, version (v1 tokens), app-only
 * tokens, scope and the oid that identifies the user. The header and the
 * signature are test-oauth-jwt-signing.c, the compact form and JSON
 * strictness test-oauth-jwt-malformed.c.
 */
#include "config.h"

#include "mamd-idp-mint.h"
#include "mamd-test-jwt-util.h"

/* ---- checking tokens ---- */

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
    /* RFC 7515 4.1.9 and RFC 9068 2.1: the full media type names the same */
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"application/at+jwt\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"Application/JWT\"}",
    "{\"alg\":\"RS256\",\"kid\":\"key-a\",\"typ\":\"application\\/at+jwt\"}",
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

  /* the v1 diagnosis: the messages for a missing or another "ver" name
   * accessTokenAcceptedVersion too */
  assert_message_contains (error, "this is a v1.0 access token");
  g_clear_error (&error);
  /* without "ver", a v1 token is known by its sts.windows.net issuer */
  error = refused_with (token2, &policy, MAMD_ERROR_INVALID_TOKEN, "version: ");
  assert_message_contains (error, "this is a v1.0 access token");
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

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  mamd_test_jwt_init ();

  g_test_add_func ("/mamd/oauth/jwt/valid", test_valid);
  g_test_add_func ("/mamd/oauth/jwt/valid-minted", test_valid_minted);
  g_test_add_func ("/mamd/oauth/jwt/valid-variants", test_valid_variants);
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

  ret = g_test_run ();
  mamd_test_jwt_cleanup ();
  return ret;
}
