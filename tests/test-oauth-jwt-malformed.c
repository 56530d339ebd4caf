/*
 * Access tokens that are not well-formed: the compact form (segments,
 * padding, standard base64 characters, spaces), header and claims that are
 * not JSON objects, duplicate members, deep nesting, oversize tokens; and
 * the token's JSON reader and base64url decoder checked against the
 * reference implementations with random mutations. The header and the
 * signature are test-oauth-jwt-signing.c, the claims test-oauth-jwt-claims.c.
 */
#include "config.h"

#include <string.h>

#include "mamd-json.h"
#include "mamd-test-jwt-util.h"

/* ---- compact form ---- */

/* Each case names the part of the message that only its own check gives:
 * every refusal of the parser starts "malformed: ". */
static void
test_malformed_compact (void)
{
  static const char not_jws[] = "malformed: not a compact JWS (three base64url segments "
                                "separated by dots)";
  static const char jwe[] = "malformed: more than three segments (an encrypted token?); "
                            "only compact JWS is accepted";
  static const char empty[] = "malformed: empty header or claims segment";
  static const char no_sig[] = "malformed: the signature segment is empty";
  static const char bad_header[] = "malformed: the header segment is not strict base64url";
  static const char bad_claims[] = "malformed: the claims segment is not strict base64url";
  static const char bad_sig[] = "malformed: the signature segment is not strict base64url";
  g_autofree char *claims = claims_with (NULL);
  g_autofree char *valid = token_for_claims (claims);
  g_auto(GStrv) seg = g_strsplit (valid, ".", -1);
  g_autofree char *h_pad = g_strconcat (seg[0], "=", NULL);
  struct { char *token; const char *why; const char *message; } cases[] = {
    { g_strdup (""), "empty", not_jws },
    { g_strdup ("abc"), "one segment", not_jws },
    { g_strdup_printf ("%s.%s", seg[0], seg[1]), "two segments", not_jws },
    { g_strdup_printf ("%s.%s.%s.%s", seg[0], seg[1], seg[2], seg[2]), "four segments", jwe },
    /* JWE compact serialisation: header.key.iv.ciphertext.tag */
    { g_strdup_printf ("%s.%s.%s.%s.%s", seg[0], seg[1], seg[2], seg[1], seg[2]),
      "five segments (JWE)", jwe },
    { g_strdup_printf ("%s.%s.%s.", seg[0], seg[1], seg[2]), "trailing dot", jwe },
    { g_strdup_printf (".%s.%s.%s", seg[0], seg[1], seg[2]), "leading dot", jwe },
    { g_strdup_printf ("%s..%s", seg[0], seg[2]), "empty claims", empty },
    { g_strdup_printf (".%s.%s", seg[1], seg[2]), "empty header", empty },
    { g_strdup_printf ("%s.%s.", seg[0], seg[1]), "empty signature", no_sig },
    { g_strdup (".."), "all empty", empty },
    { g_strdup_printf ("%s.%s.%s=", seg[0], seg[1], seg[2]), "padded signature", bad_sig },
    { g_strdup_printf ("%s.%s=.%s", seg[0], seg[1], seg[2]), "padded claims", bad_claims },
    { g_strdup_printf ("%s.%s.%s", h_pad, seg[1], seg[2]), "padded header", bad_header },
    { g_strdup_printf (" %s.%s.%s", seg[0], seg[1], seg[2]), "leading space", bad_header },
    { g_strdup_printf ("%s.%s.%s\n", seg[0], seg[1], seg[2]), "trailing newline", bad_sig },
    { g_strdup_printf ("%s.%s .%s", seg[0], seg[1], seg[2]), "inner space", bad_claims },
    { g_strdup_printf ("Bearer %s.%s.%s", seg[0], seg[1], seg[2]), "bearer prefix", bad_header },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdJwt) jwt = NULL;

      g_test_message ("case: %s", cases[i].why);
      jwt = mamd_jwt_parse (cases[i].token, &error);
      g_assert_null (jwt);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
      assert_message_starts (error, cases[i].message);
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
  int ret;

  g_test_init (&argc, &argv, NULL);
  mamd_test_jwt_init ();

  g_test_add_func ("/mamd/oauth/jwt/malformed/compact", test_malformed_compact);
  g_test_add_func ("/mamd/oauth/jwt/malformed/plus-slash", test_malformed_plus_slash);
  g_test_add_func ("/mamd/oauth/jwt/malformed/not-objects", test_not_objects);
  g_test_add_func ("/mamd/oauth/jwt/malformed/duplicate-keys", test_duplicate_keys);
  g_test_add_func ("/mamd/oauth/jwt/malformed/deep-nesting", test_deep_nesting);
  g_test_add_func ("/mamd/oauth/jwt/malformed/oversize", test_oversize);
  g_test_add_func ("/mamd/oauth/jwt/malformed/reader-differential", test_reader_differential);
  g_test_add_func ("/mamd/oauth/jwt/malformed/base64url-differential",
                   test_base64url_differential);

  ret = g_test_run ();
  mamd_test_jwt_cleanup ();
  return ret;
}
