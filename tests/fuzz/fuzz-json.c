/* Strict JSON (mamd_json_parse_strict): licence, JWKS, discovery and token
 * answers go through it before json-glib sees them. */
#include "config.h"

#include "fuzz-target.h"
#include "mamd-json.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(JsonNode) object = NULL;

  node = mamd_json_parse_strict ((const char *) data, size, 64 * 1024, 16, &error);
  g_assert ((node == NULL) == (error != NULL));
  g_clear_error (&error);
  object = mamd_json_parse_strict_object ((const char *) data, size, 64 * 1024, 16, &error);
  g_assert ((object == NULL) == (error != NULL));
  /* the object variant accepts a subset of what the plain parse does */
  g_assert (object == NULL || (node != NULL && JSON_NODE_HOLDS_OBJECT (object)));
  return 0;
}
