/*
 * The token endpoint's answer to the MAM service permission check. The
 * first byte picks the HTTP status (200, 400, 401, 500); the rest is the
 * body. Whatever comes back, the detail is one line and never holds the
 * client secret, even when the provider echoes it.
 */
#include "config.h"

#include <string.h>

#include "fuzz-target.h"
#include "mamd-oauth-permission.h"

#define SECRET "fuzz-client-secret-0123456789"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const guint statuses[] = { 200, 400, 401, 500 };
  g_autofree char *detail = NULL;
  gboolean failed = FALSE;
  MamdOauthPermissionState state;

  state = mamd_oauth_permission_read_answer (
    size > 0 ? statuses[data[0] % G_N_ELEMENTS (statuses)] : 200,
    size > 0 ? (const char *) data + 1 : "", size > 0 ? size - 1 : 0, SECRET,
    "https://msmamservice.api.application/.default", &failed, &detail);
  g_assert_nonnull (detail);
  g_assert_null (strchr (detail, '\n'));
  g_assert_null (strstr (detail, SECRET));
  g_assert (!failed || state == MAMD_OAUTH_PERMISSION_ERROR);
  g_assert (state == MAMD_OAUTH_PERMISSION_GRANTED || state == MAMD_OAUTH_PERMISSION_MISSING ||
            state == MAMD_OAUTH_PERMISSION_ERROR);
  return 0;
}
