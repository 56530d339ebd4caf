/* Strict JSON scanner, typed getters and strict base64url. */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "mamd-json.h"
#include "mamd-plugin.h"

#define MAX_LEN (1024 * 1024)
#define MAX_DEPTH 32

static JsonNode *
parse (const char *text, GError **error)
{
  return mamd_json_parse_strict (text, strlen (text), MAX_LEN, MAX_DEPTH, error);
}

/* Asserts that @text is refused with a message containing @expected. */
static void
assert_rejected_len (const char *text, gsize len, const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = mamd_json_parse_strict (text, len, MAX_LEN, MAX_DEPTH, &error);

  g_assert_null (node);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  if (strstr (error->message, expected) == NULL)
    g_error ("%s: message '%s' lacks '%s'", text, error->message, expected);
}

static void
assert_rejected (const char *text, const char *expected)
{
  assert_rejected_len (text, strlen (text), expected);
}

static void
test_valid (void)
{
  static const char *const docs[] = {
    "{}", "[]", "0", "-0", "1.5e-3", "\"x\"", "true", "false", "null",
    " { \"a\" : [1, 2.0, \"s\", {\"b\": null}] , \"c\": {} } \n",
    "\"\\u00e9\\ud83d\\ude00\\n\\\"\\/\"",
    "{\"a\": {\"a\": 1}}",               /* same key in different objects */
    "[{\"k\": 1}, {\"k\": 2}]",
    "9223372036854775807", "-9223372036854775808",
  };

  for (guint i = 0; i < G_N_ELEMENTS (docs); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(JsonNode) node = parse (docs[i], &error);
      g_assert_no_error (error);
      g_assert_nonnull (node);
    }
}

static JsonNode *
parse_ok (const char *text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *node = parse (text, &error);

  g_assert_no_error (error);
  return node;
}

/* What the documents above decode to, value by value. */
static void
test_values (void)
{
  g_autoptr(JsonNode) text = parse_ok ("\"\\u00e9\\ud83d\\ude00\\n\\\"\\/\\\\\"");
  g_autoptr(JsonNode) max = parse_ok ("9223372036854775807");
  g_autoptr(JsonNode) min = parse_ok ("-9223372036854775808");
  g_autoptr(JsonNode) small = parse_ok ("1.5e-3");
  g_autoptr(JsonNode) doc = parse_ok (" { \"a\" : [1, 2.0, \"s\", {\"b\": null}] , \"c\": {} } \n");
  JsonArray *a;

  /* é, U+1F600 from its surrogate pair, newline, quote, slash, backslash */
  g_assert_cmpstr (json_node_get_string (text), ==, "\xc3\xa9\xf0\x9f\x98\x80\n\"/\\");
  g_assert_cmpint (json_node_get_int (max), ==, G_MAXINT64);
  g_assert_cmpint (json_node_get_int (min), ==, G_MININT64);
  g_assert_cmpfloat (json_node_get_double (small), ==, 1.5e-3);
  a = json_object_get_array_member (json_node_get_object (doc), "a");
  g_assert_cmpuint (json_array_get_length (a), ==, 4);
  g_assert_cmpint (json_array_get_int_element (a, 0), ==, 1);
  g_assert_cmpfloat (json_array_get_double_element (a, 1), ==, 2.0);
  g_assert_cmpstr (json_array_get_string_element (a, 2), ==, "s");
  g_assert_true (json_object_get_null_member (json_array_get_object_element (a, 3), "b"));
  g_assert_cmpuint (json_object_get_size (json_object_get_object_member (
                      json_node_get_object (doc), "c")), ==, 0);
}

static void
test_duplicate_key (void)
{
  assert_rejected ("{\"sub\": \"a\", \"sub\": \"b\"}", "duplicate key \"sub\"");
  /* the same name spelt with an escape is still the same key */
  assert_rejected ("{\"sub\": 1, \"s\\u0075b\": 2}", "duplicate key \"sub\"");
  assert_rejected ("[{\"x\": {\"a\": 1, \"b\": 2, \"a\": 3}}]", "duplicate key \"a\"");
}

static void
test_deep_nesting (void)
{
  gsize n = 200000;
  g_autofree char *deep = g_malloc (n + 1);
  g_autoptr(GString) ok = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;

  memset (deep, '[', n);
  deep[n] = '\0';
  assert_rejected (deep, "nesting deeper than 32");

  assert_rejected ("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
                   "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
                   "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
                   "{\"a\":{\"a\":{\"a\":1}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}",
                   "nesting deeper than 32");

  /* exactly the limit is fine */
  for (guint i = 0; i < MAX_DEPTH; i++)
    g_string_append_c (ok, '[');
  for (guint i = 0; i < MAX_DEPTH; i++)
    g_string_append_c (ok, ']');
  node = parse (ok->str, &error);
  g_assert_no_error (error);
  g_assert_nonnull (node);
}

static void
test_nul (void)
{
  static const char with_nul[] = "{\"a\": \"x\0y\"}";

  assert_rejected_len (with_nul, sizeof with_nul - 1, "NUL byte at byte 8");
  assert_rejected ("{\"a\": \"x\\u0000y\"}", "\\u0000");
}

static void
test_not_json (void)
{
  assert_rejected ("{'a': 1}", "single quotes");
  assert_rejected ("['a']", "single quotes");
  assert_rejected ("0x10", "hex");
  assert_rejected ("[0x1F]", "hex");
  assert_rejected ("[01]", "leading zeros");
  assert_rejected ("{\"a\": 1} x", "trailing data");
  assert_rejected ("{} {}", "trailing data");
  assert_rejected ("[1,]", "expected a value");
  assert_rejected ("{\"a\": 1,}", "expected a string");
  assert_rejected ("{\"a\" 1}", "expected ':'");
  assert_rejected ("[1 2]", "expected ',' or ']'");
  assert_rejected ("", "unexpected end of input");
  assert_rejected ("   ", "unexpected end of input");
  assert_rejected ("[\"a\tb\"]", "control character");
  assert_rejected ("[\"\\x41\"]", "invalid escape");
  assert_rejected ("[\"\\ud800\"]", "lone high surrogate");
  assert_rejected ("[\"\\udc00\"]", "lone low surrogate");
  assert_rejected ("[\"abc", "unterminated string");
  assert_rejected ("[NaN]", "expected a value");
  assert_rejected ("[tru]", "expected a value");
  assert_rejected ("[1.]", "digit after '.'");
  assert_rejected ("[-]", "a digit");
  assert_rejected ("[9223372036854775808]", "integer out of range");
  assert_rejected ("\xef\xbb\xbf{}", "unexpected byte 0xef");
  assert_rejected ("[\"\xc3\x28\"]", "invalid UTF-8 at byte 2");
  assert_rejected ("[\"\xed\xa0\x80\"]", "invalid UTF-8");
}

static void
test_oversize (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = mamd_json_parse_strict ("[1, 2, 3]", 9, 8, MAX_DEPTH, &error);

  g_assert_null (node);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_assert_nonnull (strstr (error->message, "larger than 8"));
  g_clear_error (&error);

  node = mamd_json_parse_strict ("[1, 2, 3]", 9, 9, MAX_DEPTH, &error);
  g_assert_no_error (error);
  g_assert_nonnull (node);
}

static JsonObject *
object_of (JsonNode *node)
{
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  return json_node_get_object (node);
}

static void
assert_getter_error (GError *error, const char *expected)
{
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  if (strstr (error->message, expected) == NULL)
    g_error ("message '%s' lacks '%s'", error->message, expected);
}

static void
test_getters (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = parse ("{\"s\": \"text\", \"i\": 42, \"f\": 4.2, \"si\": \"42\","
                                    " \"b\": true, \"n\": null, \"a\": [\"x\", \"y\"],"
                                    " \"mixed\": [\"x\", 1], \"empty\": []}", &error);
  JsonObject *obj;
  const char *s = "untouched";
  gint64 i = -1;
  gboolean b = FALSE;
  g_auto(GStrv) strv = NULL;

  g_assert_no_error (error);
  obj = object_of (node);

  g_assert_true (mamd_json_object_get_string (obj, "s", TRUE, &s, &error));
  g_assert_cmpstr (s, ==, "text");
  g_assert_true (mamd_json_object_get_int64 (obj, "i", TRUE, &i, &error));
  g_assert_cmpint (i, ==, 42);
  g_assert_true (mamd_json_object_get_bool (obj, "b", TRUE, &b, &error));
  g_assert_true (b);
  g_assert_true (mamd_json_object_get_string_array (obj, "a", TRUE, &strv, &error));
  g_assert_cmpuint (g_strv_length (strv), ==, 2);
  g_assert_cmpstr (strv[1], ==, "y");
  g_clear_pointer (&strv, g_strfreev);
  g_assert_true (mamd_json_object_get_string_array (obj, "empty", TRUE, &strv, &error));
  g_assert_cmpuint (g_strv_length (strv), ==, 0);
  g_assert_no_error (error);
  g_clear_pointer (&strv, g_strfreev);

  /* absent and optional: untouched */
  s = "default";
  g_assert_true (mamd_json_object_get_string (obj, "missing", FALSE, &s, &error));
  g_assert_cmpstr (s, ==, "default");
  g_assert_no_error (error);

  g_assert_false (mamd_json_object_get_string (obj, "missing", TRUE, &s, &error));
  assert_getter_error (error, "member \"missing\" is missing");
  g_clear_error (&error);

  /* json-glib would read 0 from a string and truncate a float */
  g_assert_false (mamd_json_object_get_int64 (obj, "si", TRUE, &i, &error));
  assert_getter_error (error, "\"si\" must be an integer");
  g_clear_error (&error);
  g_assert_false (mamd_json_object_get_int64 (obj, "f", TRUE, &i, &error));
  assert_getter_error (error, "\"f\" must be an integer");
  g_clear_error (&error);
  g_assert_false (mamd_json_object_get_int64 (obj, "n", FALSE, &i, &error));
  assert_getter_error (error, "\"n\" must be an integer");
  g_clear_error (&error);
  g_assert_cmpint (i, ==, 42);

  g_assert_false (mamd_json_object_get_string (obj, "i", TRUE, &s, &error));
  assert_getter_error (error, "\"i\" must be a string");
  g_clear_error (&error);
  g_assert_false (mamd_json_object_get_string (obj, "n", FALSE, &s, &error));
  assert_getter_error (error, "\"n\" must be a string");
  g_clear_error (&error);
  g_assert_false (mamd_json_object_get_bool (obj, "s", TRUE, &b, &error));
  assert_getter_error (error, "\"s\" must be true or false");
  g_clear_error (&error);
  g_assert_false (mamd_json_object_get_string_array (obj, "mixed", TRUE, &strv, &error));
  assert_getter_error (error, "\"mixed\" must be an array of strings");
  g_clear_error (&error);
  g_assert_false (mamd_json_object_get_string_array (obj, "s", TRUE, &strv, &error));
  assert_getter_error (error, "\"s\" must be an array of strings");
  g_assert_null (strv);
}

static void
test_base64url (void)
{
  static const struct { const char *plain; const char *encoded; } vectors[] = {
    { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
    { "\xfb\xff\xbf", "-_-_" },
  };
  static const char *const bad[] = {
    "Zg==", "Zm9v+", "Zm9v/", "Zm 9v", "Zm9v\n", "Z", "Zh", "Zm9", "Zm8=", "Zm9vY", "*",
  };

  for (guint i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *encoded = mamd_base64url_encode ((const guint8 *) vectors[i].plain,
                                                        strlen (vectors[i].plain));
      g_autofree guint8 *decoded = NULL;
      gsize len = 0;

      g_assert_cmpstr (encoded, ==, vectors[i].encoded);
      decoded = mamd_base64url_decode (vectors[i].encoded, -1, &len, &error);
      g_assert_no_error (error);
      g_assert_cmpmem (decoded, len, vectors[i].plain, strlen (vectors[i].plain));
    }

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      gsize len = 0;
      g_autofree guint8 *decoded = mamd_base64url_decode (bad[i], -1, &len, &error);

      if (decoded != NULL)
        g_error ("'%s' was accepted", bad[i]);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
    }

  /* every byte value survives the round trip */
  {
    guint8 all[256];
    g_autofree char *encoded = NULL;
    g_autofree guint8 *decoded = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;

    for (guint i = 0; i < sizeof all; i++)
      all[i] = (guint8) i;
    for (gsize n = 0; n <= sizeof all; n += 85)
      {
        g_clear_pointer (&encoded, g_free);
        g_clear_pointer (&decoded, g_free);
        encoded = mamd_base64url_encode (all, n);
        decoded = mamd_base64url_decode (encoded, -1, &len, &error);
        g_assert_no_error (error);
        g_assert_cmpmem (decoded, len, all, n);
      }
  }
}

static void
test_read_bounded (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("mamd-json-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "f", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing", NULL);
  g_autofree char *contents = NULL;
  gsize len = 0;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (path, "12345", -1, &error));
  g_assert_true (mamd_file_read_bounded (path, 5, &contents, &len, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (contents, ==, "12345");
  g_assert_cmpuint (len, ==, 5);
  g_clear_pointer (&contents, g_free);

  g_assert_false (mamd_file_read_bounded (path, 4, &contents, &len, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_clear_error (&error);
  g_assert_false (mamd_file_read_bounded (missing, 4, &contents, &len, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_clear_error (&error);
  g_assert_false (mamd_file_read_bounded (dir, 4, &contents, &len, &error));
  g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
  g_clear_error (&error);

  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/mamd/json/valid", test_valid);
  g_test_add_func ("/mamd/json/values", test_values);
  g_test_add_func ("/mamd/json/duplicate-key", test_duplicate_key);
  g_test_add_func ("/mamd/json/deep-nesting", test_deep_nesting);
  g_test_add_func ("/mamd/json/nul", test_nul);
  g_test_add_func ("/mamd/json/not-json", test_not_json);
  g_test_add_func ("/mamd/json/oversize", test_oversize);
  g_test_add_func ("/mamd/json/getters", test_getters);
  g_test_add_func ("/mamd/json/base64url", test_base64url);
  g_test_add_func ("/mamd/json/read-bounded", test_read_bounded);
  return g_test_run ();
}
