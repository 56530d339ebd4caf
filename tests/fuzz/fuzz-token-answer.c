/*
 * The token endpoint's answer to the MAM service permission check. The
 * first byte picks the HTTP status (200, 400, 401, 500); the rest is the
 * body. Whatever comes back, the detail is one line and never holds the
 * client secret, raw or form-encoded, in any case, even when the provider
 * echoes it; only a token is GRANTED.
 */
#include "config.h"

#include <string.h>

#include "fuzz-target.h"
#include "mamd-oauth-permission.h"

#define SECRET "fuzz-client-secret-0123456789"
/* with reserved characters, so that its form-encoded spelling differs;
 * no letters, so that lower-casing the detail only folds the hex */
#define ODD_SECRET "0123+456/789=01&23%45~6.7_8-9"
#define ODD_SECRET_FORM "0123%2b456%2f789%3d01%2623%2545~6.7_8-9"
#define SCOPE "https://msmamservice.api.application/.default"

static void
check_answer (guint status, const uint8_t *data, size_t size, const char *secret,
              const char *secret_form)
{
  g_autofree char *detail = NULL;
  g_autofree char *lower = NULL;
  MamdOauthPermissionState state;

  state = mamd_oauth_permission_read_answer (status, (const char *) data, size, secret, SCOPE,
                                             &detail);
  g_assert_nonnull (detail);
  g_assert_null (strchr (detail, '\n'));
  g_assert_null (strstr (detail, secret));
  lower = g_ascii_strdown (detail, -1);
  g_assert_null (strstr (lower, secret_form));
  g_assert (state == MAMD_OAUTH_PERMISSION_GRANTED || state == MAMD_OAUTH_PERMISSION_MISSING ||
            state == MAMD_OAUTH_PERMISSION_ERROR);
  g_assert (state != MAMD_OAUTH_PERMISSION_GRANTED || status == 200);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static const guint statuses[] = { 200, 400, 401, 500 };
  guint status = size > 0 ? statuses[data[0] % G_N_ELEMENTS (statuses)] : 200;

  check_answer (status, size > 0 ? data + 1 : (const uint8_t *) "", size > 0 ? size - 1 : 0,
                SECRET, SECRET);
  check_answer (status, size > 0 ? data + 1 : (const uint8_t *) "", size > 0 ? size - 1 : 0,
                ODD_SECRET, ODD_SECRET_FORM);
  return 0;
}
