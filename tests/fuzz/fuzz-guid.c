/* GUID parsing: objectIds, tenant and client ids from tokens, directories
 * and configuration. Canonical output must be a fixed point. */
#include "config.h"

#include "fuzz-target.h"
#include "mamd-plugin.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(GError) error = NULL;
  g_autofree char *canonical = mamd_guid_canonicalize (text, "fuzz input", &error);
  g_autofree char *from_bytes = NULL;

  g_assert ((canonical == NULL) == (error != NULL));
  if (canonical != NULL) {
    g_autofree char *again = mamd_guid_canonicalize (canonical, "fuzz input", NULL);

    g_assert (mamd_guid_is_canonical (canonical));
    g_assert_cmpstr (again, ==, canonical);
  }
  if (mamd_guid_is_canonical (text))
    g_assert_cmpstr (canonical, ==, text);

  g_clear_error (&error);
  from_bytes = mamd_guid_from_bytes (data, size, &error);
  g_assert ((from_bytes == NULL) == (error != NULL));
  g_assert (from_bytes == NULL || mamd_guid_is_canonical (from_bytes));
  return 0;
}
