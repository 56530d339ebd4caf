/* An OpenID discovery document, for a loopback and an HTTPS discovery URL. */
#include "config.h"

#include "fuzz-target.h"
#include "mamd-oauth-keys.h"

static const char *const urls[] = {
  "https://login.microsoftonline.com/7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f/v2.0/"
  ".well-known/openid-configuration",
  "http://127.0.0.1:8080/tenant/v2.0/.well-known/openid-configuration",
};

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  for (guint i = 0; i < G_N_ELEMENTS (urls); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *jwks_uri = NULL;
    g_autofree char *token_endpoint = NULL;
    gboolean ok = mamd_oauth_discovery_parse (urls[i], (const char *) data, size, &jwks_uri,
                                              &token_endpoint, &error);

    g_assert (ok == (error == NULL));
    g_assert (!ok || jwks_uri != NULL);
  }
  return 0;
}
