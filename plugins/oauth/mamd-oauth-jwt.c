/*
 * Access-token validation: compact JWS (RFC 7515) under the RFC 8725 rules.
 *
 * The token's JSON is read by the strict one-pass reader in
 * mamd-oauth-jwt-reader.c (which says why it is not json-glib).
 */
#include "config.h"

#include <string.h>

#include <openssl/err.h>

#include "mamd-oauth-jwt.h"
#include "mamd-oauth-jwt-reader.h"

#define RSA_MIN_BITS 2048

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)

#define CLAIMS_INLINE 32
#define HEADER_INLINE 8
#define HEADER_STACK 1024

/* One allocation holds the token: the struct, then in data[] the signing
 * input, the decoded claims (which the members point into) and the decoded
 * signature. Sign-ins are the hot path and malloc shows in the profile. */
struct _MamdJwt {
  const char *signing_input; /* "<header>.<claims>" as received: what was signed */
  gsize signing_input_len;
  const guint8 *signature;
  gsize signature_len;
  MemberList claims;
  Member claims_inline[CLAIMS_INLINE];
  char *kid;
  char *issuer; /* unverified "iss", or NULL */
  char data[];
};

/* ---- parsing ---- */

void
mamd_jwt_free (MamdJwt *jwt)
{
  if (jwt == NULL)
    return;
  jwt_reader_member_list_clear (&jwt->claims);
  g_free (jwt->kid);
  g_free (jwt->issuer);
  g_free (jwt);
}

static gboolean
token_fail (GError **error, const char *message)
{
  g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN, message);
  return FALSE;
}

static gboolean
check_alg (const Member *alg, GError **error)
{
  g_autofree char *shown = NULL;

  if (alg == NULL)
    return token_fail (error, "algorithm: the header has no \"alg\"; only RS256 is accepted");
  if (alg->type != VALUE_STRING)
    return token_fail (error, "algorithm: \"alg\" is not a string; only RS256 is accepted");
  if (jwt_reader_span_equal_str (&alg->value, "RS256"))
    return TRUE;

  shown = jwt_reader_span_show (&alg->value);
  if (alg->value.len == 4 && g_ascii_strncasecmp (alg->value.text, "none", 4) == 0)
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                 "algorithm: %s: unsigned tokens are refused; only RS256 is accepted", shown);
  else if (alg->value.len >= 2 && g_ascii_strncasecmp (alg->value.text, "HS", 2) == 0)
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                 "algorithm: %s (HMAC with a shared secret) is refused; only RS256 with the "
                 "provider's RSA keys is accepted", shown);
  else
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                 "algorithm: %s is refused; only RS256 is accepted", shown);
  return FALSE;
}

/* RFC 7515 4.1.9: "typ" is a media type whose "application/" prefix may be
 * left out, compared without regard to case; RFC 9068 names at+jwt. */
static gboolean
typ_names_access_token (const Span *typ)
{
  g_autofree char *decoded = NULL;
  const char *text = typ->text;
  gsize len = typ->len;

  if (typ->escaped)
    {
      decoded = jwt_reader_span_dup (typ);
      text = decoded;
      len = strlen (decoded);
    }
  if (len > 12 && g_ascii_strncasecmp (text, "application/", 12) == 0)
    {
      text += 12;
      len -= 12;
    }
  return (len == 3 && g_ascii_strncasecmp (text, "JWT", 3) == 0) ||
         (len == 6 && g_ascii_strncasecmp (text, "at+jwt", 6) == 0);
}

/* RFC 8725 rules for the JOSE header; sets jwt->kid. */
static gboolean
check_header (MamdJwt *jwt, const MemberList *header, GError **error)
{
  static const char *const embedded[] = { "jwk", "jku", "x5u", "x5c" };
  const Member *kid, *typ;

  if (!check_alg (jwt_reader_find_member (header, "alg"), error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (embedded); i++)
    {
      if (jwt_reader_find_member (header, embedded[i]) != NULL)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                       "malformed: the header carries \"%s\": keys come only from the "
                       "provider's JWKS, never from the token", embedded[i]);
          return FALSE;
        }
    }
  if (jwt_reader_find_member (header, "crit") != NULL)
    return token_fail (error, "malformed: the header lists critical extensions (\"crit\") "
                              "and none is understood");
  typ = jwt_reader_find_member (header, "typ");
  if (typ != NULL && (typ->type != VALUE_STRING || !typ_names_access_token (&typ->value)))
    return token_fail (error, "malformed: the header's \"typ\" is neither JWT nor at+jwt: "
                              "not an access token");
  kid = jwt_reader_find_member (header, "kid");
  if (kid == NULL)
    return token_fail (error, "malformed: the header has no \"kid\" naming the signing key");
  if (kid->type != VALUE_STRING || kid->value.len == 0)
    return token_fail (error, "malformed: the header's \"kid\" is not a non-empty string");
  jwt->kid = jwt_reader_span_dup (&kid->value);
  return TRUE;
}

/* The header is only needed during parsing: decoded on the stack. */
static gboolean
parse_header (MamdJwt *jwt, const char *text, gsize len, GError **error)
{
  guint8 stack[HEADER_STACK];
  g_autofree guint8 *heap = NULL;
  guint8 *json = stack;
  Member inline_members[HEADER_INLINE];
  MemberList members;
  gsize json_len = 0;
  gboolean ok;

  if (B64URL_DECODED_MAX (len) > sizeof stack)
    json = heap = g_malloc (B64URL_DECODED_MAX (len));
  if (jwt_reader_b64url_decode (text, len, json, &json_len, "header", error) == NULL)
    return FALSE;
  jwt_reader_member_list_init (&members, inline_members, HEADER_INLINE);
  ok = jwt_reader_read_object_text ((const char *) json, json_len, "header", &members, error) &&
       check_header (jwt, &members, error);
  jwt_reader_member_list_clear (&members);
  return ok;
}

static gboolean
parse_claims (MamdJwt *jwt, const char *text, gsize len, guint8 *out, GError **error)
{
  const Member *iss;
  gsize json_len = 0;

  if (jwt_reader_b64url_decode (text, len, out, &json_len, "claims", error) == NULL ||
      !jwt_reader_read_object_text ((const char *) out, json_len, "claims", &jwt->claims, error))
    return FALSE;
  iss = jwt_reader_find_member (&jwt->claims, "iss");
  if (iss != NULL && iss->type == VALUE_STRING)
    jwt->issuer = jwt_reader_span_dup (&iss->value);
  return TRUE;
}

MamdJwt *
mamd_jwt_parse (const char *compact, GError **error)
{
  g_autoptr(MamdJwt) jwt = NULL;
  const char *dot1, *dot2, *end;
  gsize len, signing_input_len, claims_len, signature_len;
  guint8 *claims_out, *signature_out;

  g_return_val_if_fail (compact != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* the size cap comes before anything else looks at the token */
  len = strnlen (compact, MAMD_JWT_MAX_LEN + 1);
  if (len > MAMD_JWT_MAX_LEN)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "malformed: the token is longer than %d bytes", MAMD_JWT_MAX_LEN);
      return NULL;
    }
  end = compact + len;
  dot1 = memchr (compact, '.', len);
  dot2 = dot1 != NULL ? memchr (dot1 + 1, '.', (gsize) (end - dot1 - 1)) : NULL;
  if (dot2 == NULL)
    {
      token_fail (error, "malformed: not a compact JWS (three base64url segments "
                         "separated by dots)");
      return NULL;
    }
  if (memchr (dot2 + 1, '.', (gsize) (end - dot2 - 1)) != NULL)
    {
      token_fail (error, "malformed: more than three segments (an encrypted token?); "
                         "only compact JWS is accepted");
      return NULL;
    }
  if (dot1 == compact || dot2 == dot1 + 1)
    {
      token_fail (error, "malformed: empty header or claims segment");
      return NULL;
    }

  signing_input_len = (gsize) (dot2 - compact);
  claims_len = (gsize) (dot2 - dot1 - 1);
  signature_len = (gsize) (end - dot2 - 1);
  jwt = g_malloc (sizeof (MamdJwt) + signing_input_len + 1 +
                  B64URL_DECODED_MAX (claims_len) + B64URL_DECODED_MAX (signature_len));
  memset (jwt, 0, sizeof (MamdJwt));
  jwt_reader_member_list_init (&jwt->claims, jwt->claims_inline, CLAIMS_INLINE);
  claims_out = (guint8 *) jwt->data + signing_input_len + 1;
  signature_out = claims_out + B64URL_DECODED_MAX (claims_len);

  if (!parse_header (jwt, compact, (gsize) (dot1 - compact), error))
    return NULL;
  /* after the header, so that alg "none" is refused as such */
  if (dot2 + 1 == end)
    {
      token_fail (error, "malformed: the signature segment is empty");
      return NULL;
    }
  if (!parse_claims (jwt, dot1 + 1, claims_len, claims_out, error))
    return NULL;
  jwt->signature = jwt_reader_b64url_decode (dot2 + 1, signature_len, signature_out, &jwt->signature_len,
                                             "signature", error);
  if (jwt->signature == NULL)
    return NULL;
  memcpy (jwt->data, compact, signing_input_len);
  jwt->data[signing_input_len] = '\0';
  jwt->signing_input = jwt->data;
  jwt->signing_input_len = signing_input_len;
  return g_steal_pointer (&jwt);
}

const char *
mamd_jwt_get_kid (const MamdJwt *jwt)
{
  g_return_val_if_fail (jwt != NULL, NULL);

  return jwt->kid;
}

const char *
mamd_jwt_peek_issuer (const MamdJwt *jwt)
{
  g_return_val_if_fail (jwt != NULL, NULL);

  return jwt->issuer;
}

/* ---- verification ---- */

static gboolean
check_signature (const MamdJwt *jwt, const MamdJwk *key, GError **error)
{
  g_autoptr(EVP_MD_CTX) ctx = NULL;
  g_autofree char *kid = NULL; /* for messages only */
  gboolean ok;

  /* the algorithm is bound to the key: RS256 needs an RSA key (not RSA-PSS) */
  if (key->key == NULL || EVP_PKEY_get_base_id (key->key) != EVP_PKEY_RSA ||
      EVP_PKEY_get_bits (key->key) < RSA_MIN_BITS)
    {
      kid = jwt_reader_text_show (key->kid);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "signature: key %s is not an RSA key of at least %d bits",
                   kid, RSA_MIN_BITS);
      return FALSE;
    }
  if (jwt->signature_len != (gsize) EVP_PKEY_get_size (key->key))
    return token_fail (error, "signature: its length does not match the signing key");

  /* PKCS #1 v1.5 is the only padding of an EVP_PKEY_RSA key unless set
   * otherwise (PSS belongs to RSA-PSS keys, refused above), and setting it
   * again costs a parameter round trip on every sign-in */
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL ||
      EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, key->key) != 1)
    {
      ERR_clear_error ();
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_FAILED,
                           "signature: cannot set up RS256 verification in OpenSSL");
      return FALSE;
    }
  ok = EVP_DigestVerify (ctx, jwt->signature, jwt->signature_len,
                         (const guint8 *) jwt->signing_input, jwt->signing_input_len) == 1;
  if (ok)
    return TRUE;
  ERR_clear_error ();
  kid = jwt_reader_text_show (key->kid);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "signature: does not verify with the provider's key %s", kid);
  return FALSE;
}

/* A string claim, decoded. Absent: TRUE with *out NULL. */
static gboolean
claim_string (const MamdJwt *jwt, const char *name, char **out, GError **error)
{
  const Member *m = jwt_reader_find_member (&jwt->claims, name);

  *out = NULL;
  if (m == NULL)
    return TRUE;
  if (m->type != VALUE_STRING)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "malformed: claim \"%s\" is not a string", name);
      return FALSE;
    }
  *out = jwt_reader_span_dup (&m->value);
  return TRUE;
}

/* An integer claim (NumericDate). Absent: TRUE with *present FALSE. */
static gboolean
claim_integer (const MamdJwt *jwt, const char *name, gboolean *present, gint64 *out,
               GError **error)
{
  const Member *m = jwt_reader_find_member (&jwt->claims, name);

  *present = (m != NULL);
  if (m == NULL)
    return TRUE;
  if (m->type != VALUE_INTEGER)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "malformed: claim \"%s\" is not an integer number of seconds", name);
      return FALSE;
    }
  *out = m->integer;
  return TRUE;
}

static gboolean
check_version (const MamdJwt *jwt, GError **error)
{
  const Member *m = jwt_reader_find_member (&jwt->claims, "ver");
  g_autofree char *ver = NULL;

  if (m != NULL && m->type == VALUE_STRING && jwt_reader_span_equal_str (&m->value, "2.0"))
    return TRUE;
  if (!claim_string (jwt, "ver", &ver, error))
    return FALSE;
  if (ver != NULL && g_str_equal (ver, "2.0"))
    return TRUE;
  if ((ver != NULL && g_str_equal (ver, "1.0")) ||
      (ver == NULL && jwt->issuer != NULL &&
       g_str_has_prefix (jwt->issuer, "https://sts.windows.net/")))
    return token_fail (error, "version: this is a v1.0 access token; set "
                              "accessTokenAcceptedVersion = 2 in the API app registration's "
                              "manifest so that Entra issues v2.0 tokens");
  if (ver == NULL)
    return token_fail (error, "version: the token has no \"ver\" claim; only v2.0 access "
                              "tokens are accepted (accessTokenAcceptedVersion = 2)");
  return token_fail (error, "version: only v2.0 access tokens are accepted; set "
                            "accessTokenAcceptedVersion = 2 in the app manifest");
}

static gboolean
check_issuer (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  g_autofree char *shown = NULL;

  if (jwt->issuer == NULL)
    {
      const Member *iss = jwt_reader_find_member (&jwt->claims, "iss");

      if (iss != NULL)
        return token_fail (error, "malformed: claim \"iss\" is not a string");
      return token_fail (error, "issuer: the token has no \"iss\" claim");
    }
  if (g_str_equal (jwt->issuer, policy->issuer))
    return TRUE;
  shown = jwt_reader_text_show (jwt->issuer);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "issuer: the token was issued by %s, expected \"%s\"; check Authority and TenantId",
               shown, policy->issuer);
  return FALSE;
}

/* *tid_out: the canonical tenant, owned by *tid_owned or by @policy. */
static gboolean
check_tenant (const MamdJwt *jwt, const MamdJwtPolicy *policy, const char **tid_out,
              char **tid_owned, GError **error)
{
  const Member *m = jwt_reader_find_member (&jwt->claims, "tid");
  g_autofree char *tid = NULL;
  g_autofree char *canonical = NULL;

  if (m != NULL && m->type == VALUE_STRING && jwt_reader_span_equal_str (&m->value, policy->tenant_id))
    {
      *tid_out = policy->tenant_id;
      return TRUE;
    }
  if (!claim_string (jwt, "tid", &tid, error))
    return FALSE;
  if (tid == NULL)
    return token_fail (error, "tenant: the token has no \"tid\" claim");
  canonical = mamd_guid_canonicalize (tid, "tid", NULL);
  if (canonical == NULL)
    return token_fail (error, "tenant: the token's \"tid\" is not a GUID");
  if (!g_str_equal (canonical, policy->tenant_id) &&
      g_ascii_strcasecmp (canonical, policy->tenant_id) != 0)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "tenant: the token is from tenant %s, this server accepts only tenant %s",
                   canonical, policy->tenant_id);
      return FALSE;
    }
  *tid_out = *tid_owned = g_steal_pointer (&canonical);
  return TRUE;
}

/* Entra's multi-tenant key sets name the issuer with a {tenantid} template. */
static gboolean
check_key_issuer (const MamdJwt *jwt, const MamdJwk *key, const char *tid, GError **error)
{
  g_autofree char *expected = NULL;
  g_autofree char *shown = NULL;
  const char *template;

  if (key->issuer == NULL)
    return TRUE;
  template = strstr (key->issuer, "{tenantid}");
  if (template == NULL && g_str_equal (key->issuer, jwt->issuer))
    return TRUE;
  if (template != NULL)
    {
      expected = g_strdup_printf ("%.*s%s%s", (int) (template - key->issuer), key->issuer, tid,
                                  template + strlen ("{tenantid}"));
      if (g_str_equal (expected, jwt->issuer))
        return TRUE;
    }
  shown = jwt_reader_text_show (key->kid);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "issuer: the signing key %s belongs to another issuer than the token's; "
               "check Authority", shown);
  return FALSE;
}

static gboolean
audience_matches (const Span *value, const char *client_id)
{
  g_autofree char *aud = NULL;

  if (jwt_reader_span_equal_str (value, client_id))
    return TRUE;
  aud = jwt_reader_span_dup (value);
  /* GUIDs compare without regard to case */
  return mamd_guid_is_canonical (client_id) && g_ascii_strcasecmp (aud, client_id) == 0;
}

/* aud is a string or an array of strings (RFC 7519 4.1.3). */
static gboolean
check_audience (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  const Member *aud = jwt_reader_find_member (&jwt->claims, "aud");
  gboolean found = FALSE;

  if (aud == NULL)
    return token_fail (error, "audience: the token has no \"aud\" claim");
  if (aud->type == VALUE_STRING)
    found = audience_matches (&aud->value, policy->client_id);
  else if (aud->type == VALUE_ARRAY)
    {
      Reader r = { aud->value.text, aud->value.text + 1, aud->value.text + aud->value.len,
                   "claims", 1, NULL };

      /* the reader has validated the array already: walk its elements */
      for (;;)
        {
          Member element = { { 0 } };

          jwt_reader_skip_ws (&r);
          if (*r.p == ']')
            break;
          if (!jwt_reader_read_value (&r, &element, error))
            return FALSE;
          if (element.type != VALUE_STRING)
            return token_fail (error, "malformed: claim \"aud\" holds a value that is "
                                      "not a string");
          found = found || audience_matches (&element.value, policy->client_id);
          jwt_reader_skip_ws (&r);
          if (*r.p == ',')
            r.p++;
        }
    }
  else
    return token_fail (error, "malformed: claim \"aud\" is neither a string nor an array");

  if (!found)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "audience: the token is not for this server's client id %s; request the "
                   "token for that application", policy->client_id);
      return FALSE;
    }
  return TRUE;
}

static char *
format_time (gint64 unix_time)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_time);

  if (dt == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, unix_time);
  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* Unsigned differences: no overflow whatever the claims hold. */
static gboolean
check_lifetime (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  guint64 skew = policy->skew > 0 ? (guint64) policy->skew : 0;
  gboolean present = FALSE;
  gint64 exp = 0, nbf = 0, iat = 0;

  if (!claim_integer (jwt, "exp", &present, &exp, error))
    return FALSE;
  if (!present)
    return token_fail (error, "malformed: the token has no \"exp\" claim; access tokens "
                              "must expire");
  if (exp <= policy->now && (guint64) policy->now - (guint64) exp >= skew)
    {
      g_autofree char *when = format_time (exp);

      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "expired: the token expired at %s (allowed clock skew %" G_GUINT64_FORMAT
                   " s); sign in again to get a new token", when, skew);
      return FALSE;
    }
  if (!claim_integer (jwt, "nbf", &present, &nbf, error))
    return FALSE;
  if (present && nbf > policy->now && (guint64) nbf - (guint64) policy->now > skew)
    {
      g_autofree char *when = format_time (nbf);

      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "not yet valid: the token is valid from %s (allowed clock skew %"
                   G_GUINT64_FORMAT " s); check the clocks of this host and the device",
                   when, skew);
      return FALSE;
    }
  return claim_integer (jwt, "iat", &present, &iat, error);
}

static gboolean
scope_listed (const char *scp, gsize scp_len, const char *required)
{
  const char *end = scp + scp_len;
  gsize n = strlen (required);

  for (const char *p = scp; p < end;)
    {
      const char *space = memchr (p, ' ', (gsize) (end - p));
      gsize len = space != NULL ? (gsize) (space - p) : (gsize) (end - p);

      if (len == n && memcmp (p, required, n) == 0)
        return TRUE;
      p += len;
      while (p < end && *p == ' ')
        p++;
    }
  return FALSE;
}

static gboolean
check_scope (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  const Member *m = jwt_reader_find_member (&jwt->claims, "scp");
  g_autofree char *scp = NULL;

  if (m != NULL && m->type == VALUE_STRING && !m->value.escaped &&
      scope_listed (m->value.text, m->value.len, policy->required_scope))
    return TRUE;
  if (!claim_string (jwt, "scp", &scp, error))
    return FALSE;
  if (scp == NULL && jwt_reader_find_member (&jwt->claims, "roles") != NULL)
    return token_fail (error, "scope: this is an app-only token (\"roles\" without \"scp\"); "
                              "a user must sign in with a delegated token");
  if (scp == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "scope: the token has no \"scp\" claim; request the delegated scope %s",
                   policy->required_scope);
      return FALSE;
    }
  if (!scope_listed (scp, strlen (scp), policy->required_scope))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "scope: the token lacks the scope %s; request it at sign-in and grant "
                   "consent", policy->required_scope);
      return FALSE;
    }
  return TRUE;
}

/* The identity is oid and nothing else: email, upn and preferred_username
 * are mutable and never stand in for it. */
static char *
get_object_id (const MamdJwt *jwt, GError **error)
{
  const Member *oid = jwt_reader_find_member (&jwt->claims, "oid");
  g_autofree char *text = NULL;
  char *canonical;

  if (oid == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
                           "the access token has no \"oid\" claim with the user's Entra "
                           "objectId (email, upn and preferred_username are never used "
                           "instead); configure the provider to issue oid");
      return NULL;
    }
  if (oid->type == VALUE_STRING)
    text = jwt_reader_span_dup (&oid->value);
  if (text != NULL && mamd_guid_is_canonical (text))
    return g_steal_pointer (&text);
  canonical = text != NULL ? mamd_guid_canonicalize (text, "oid", NULL) : NULL;
  if (canonical == NULL)
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
                         "the access token's \"oid\" claim is not a GUID; it must hold the "
                         "user's Entra objectId");
  return canonical;
}

MamdIdentity *
mamd_jwt_verify (const MamdJwt *jwt, const MamdJwk *key, const MamdJwtPolicy *policy,
                 GError **error)
{
  g_autofree char *tid_owned = NULL;
  g_autofree char *oid = NULL;
  g_autofree char *user = NULL;
  const char *tid = NULL;

  g_return_val_if_fail (jwt != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (policy != NULL && policy->issuer != NULL, NULL);
  g_return_val_if_fail (policy->tenant_id != NULL && policy->client_id != NULL, NULL);
  g_return_val_if_fail (policy->required_scope != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* nothing in the claims counts before the signature does; the tenant is
   * checked before the issuer (which embeds it) so that a token of another
   * tenant is refused with that reason */
  if (!check_signature (jwt, key, error) ||
      !check_version (jwt, error) ||
      !check_tenant (jwt, policy, &tid, &tid_owned, error) ||
      !check_issuer (jwt, policy, error) ||
      !check_key_issuer (jwt, key, tid, error) ||
      !check_audience (jwt, policy, error) ||
      !check_lifetime (jwt, policy, error) ||
      !check_scope (jwt, policy, error))
    return NULL;
  oid = get_object_id (jwt, error);
  if (oid == NULL)
    return NULL;

  /* display only; a wrongly typed one is just not shown */
  if (!claim_string (jwt, "preferred_username", &user, NULL) || user == NULL)
    claim_string (jwt, "name", &user, NULL);
  return mamd_identity_new (oid, tid, user, "oid", jwt->issuer, error);
}
