/*
 * Licence files. The first byte picks what the rest is: even, the licence
 * file as installed (envelope, base64, signature); odd, the signed payload
 * JSON, which this target signs with its own key so that the payload
 * parser behind the signature check is reached.
 */
#include "config.h"

#include "fuzz-target.h"
#include "mamd-license.h"
#include "mamd-plugin.h"

static char *private_key;
static char *public_key;
static char *license_path;

static void
init (void)
{
  g_autoptr(GError) error = NULL;

  private_key = g_build_filename (fuzz_tmp_dir (), "license-private.pem", NULL);
  public_key = g_build_filename (fuzz_tmp_dir (), "license-public.pem", NULL);
  license_path = g_build_filename (fuzz_tmp_dir (), "license.json", NULL);
  if (!mamd_license_generate_key (private_key, public_key, &error))
    g_error ("cannot make the fuzz licence key: %s", error->message);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdLicense) license = NULL;
  g_autofree char *payload = NULL;
  g_autofree char *signed_file = NULL;
  const char *body = size > 0 ? (const char *) data + 1 : "";
  gsize len = size > 0 ? size - 1 : 0;

  if (private_key == NULL)
    init ();
  if (size > 0 && data[0] % 2 == 1) {
    payload = g_strndup (body, len);
    signed_file = mamd_license_sign (payload, private_key, &error);
    g_assert ((signed_file == NULL) == (error != NULL));
    if (signed_file == NULL)
      return 0;
    fuzz_write_file (fuzz_tmp_dir (), "license.json", signed_file, strlen (signed_file));
  } else {
    fuzz_write_file (fuzz_tmp_dir (), "license.json", body, len);
  }

  license = mamd_license_load (license_path, public_key, &error);
  g_assert ((license == NULL) == (error != NULL));
  if (license != NULL) {
    g_autoptr(GError) check_error = NULL;
    gboolean ok = mamd_license_check_mam (license, "chat", 1700000000, &check_error);

    gint64 next = mamd_license_next_change (license, 1700000000);

    g_assert (ok == (check_error == NULL));
    g_assert (next == 0 || next > 1700000000);
  } else {
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED);
  }
  return 0;
}
