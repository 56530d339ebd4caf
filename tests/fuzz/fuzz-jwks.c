/* A JWKS document as fetched from jwks_uri. */
#include "config.h"

#include "fuzz-target.h"
#include "mamd-oauth-jwks.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwks) jwks = mamd_jwks_parse ((const char *) data, size, &error);

  g_assert ((jwks == NULL) == (error != NULL));
  if (jwks != NULL) {
    g_assert_null (mamd_jwks_lookup (jwks, "no such kid in any seed"));
    (void) mamd_jwks_get_n_keys (jwks);
    (void) mamd_jwks_get_n_skipped (jwks);
  }
  return 0;
}
