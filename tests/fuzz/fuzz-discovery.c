/* An OpenID discovery document, for a loopback and an HTTPS discovery URL. */
#include "config.h"

#include <string.h>

#include "fuzz-target.h"
#include "mamd-json.h"
#include "mamd-oauth-http.h"
#include "mamd-oauth-keys.h"

#define SUFFIX "/.well-known/openid-configuration"

static const char *const urls[] = {
  "https://login.microsoftonline.com/7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f/v2.0/"
  ".well-known/openid-configuration",
  "http://127.0.0.1:8080/tenant/v2.0/.well-known/openid-configuration",
};

/* mamd-oauth-keys.h: a URL named by the document is HTTPS, or plain http
 * on the discovery URL's own origin (which only a loopback one can be). */
static void
check_named_url (const char *discovery_url, const char *url)
{
  g_autoptr(GUri) named = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  g_autoptr(GUri) discovery = g_uri_parse (discovery_url, G_URI_FLAGS_NONE, NULL);

  g_assert_true (mamd_oauth_http_check_url (url, NULL));
  g_assert_nonnull (named);
  g_assert_nonnull (discovery);
  if (g_ascii_strcasecmp (g_uri_get_scheme (named), "https") == 0)
    return;
  g_assert_cmpstr (g_uri_get_scheme (discovery), ==, "http");
  g_assert_cmpint (g_ascii_strcasecmp (g_uri_get_scheme (named), "http"), ==, 0);
  g_assert_cmpint (g_ascii_strcasecmp (g_uri_get_host (named), g_uri_get_host (discovery)), ==,
                   0);
  g_assert_cmpint (g_uri_get_port (named), ==, g_uri_get_port (discovery));
}

/* The issuer is the discovery URL without the well-known suffix (OpenID
 * Connect Discovery 1.0 section 4.3), and the URLs returned are the
 * document's own. */
static void
check_discovery (const char *discovery_url, const char *data, size_t size, const char *jwks_uri,
                 const char *token_endpoint)
{
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *expected_issuer = NULL;
  JsonObject *document;

  g_assert_true (g_str_has_suffix (discovery_url, SUFFIX));
  expected_issuer = g_strndup (discovery_url, strlen (discovery_url) - strlen (SUFFIX));
  /* the parser read the same text; its own limits only ever refuse */
  root = mamd_json_parse_strict_object (data, size, size, 64, NULL);
  g_assert_nonnull (root);
  document = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (document, "issuer"), ==, expected_issuer);

  g_assert_nonnull (jwks_uri);
  g_assert_cmpstr (jwks_uri, ==, json_object_get_string_member (document, "jwks_uri"));
  check_named_url (discovery_url, jwks_uri);
  if (token_endpoint == NULL)
    {
      g_assert_false (json_object_has_member (document, "token_endpoint"));
      return;
    }
  g_assert_cmpstr (token_endpoint, ==,
                   json_object_get_string_member (document, "token_endpoint"));
  check_named_url (discovery_url, token_endpoint);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  for (guint i = 0; i < G_N_ELEMENTS (urls); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *jwks_uri = NULL;
      g_autofree char *token_endpoint = NULL;
      gboolean ok = mamd_oauth_discovery_parse (urls[i], (const char *) data, size, &jwks_uri,
                                                &token_endpoint, &error);

      g_assert (ok == (error == NULL));
      if (ok)
        check_discovery (urls[i], (const char *) data, size, jwks_uri, token_endpoint);
    }
  return 0;
}
