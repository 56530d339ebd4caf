/*
 * Configuration files, through the loader mamd, `mamctl check` and reload
 * use. The first byte picks the file: even, servers.d/fuzz.conf next to an
 * empty mamd.conf; odd, mamd.conf beside a minimal server file.
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "fuzz-target.h"
#include "mamd-config.h"
#include "mamd-plugin.h"

static const char minimal_server[] = "[Server]\nEnable=false\n";

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *servers = g_build_filename (fuzz_tmp_dir (), "servers.d", NULL);
  g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdConfig) config = NULL;
  gboolean server_file = size == 0 || data[0] % 2 == 0;
  const uint8_t *body = size > 0 ? data + 1 : data;
  gsize len = size > 0 ? size - 1 : 0;

  g_mkdir_with_parents (servers, 0700);
  fuzz_clear_dir (servers);
  if (server_file) {
    fuzz_write_file (fuzz_tmp_dir (), "mamd.conf", "", 0);
    fuzz_write_file (servers, "fuzz.conf", body, len);
  } else {
    fuzz_write_file (fuzz_tmp_dir (), "mamd.conf", body, len);
    fuzz_write_file (servers, "fuzz.conf", minimal_server, strlen (minimal_server));
  }

  config = mamd_config_load (fuzz_tmp_dir (), problems, &error);
  g_assert ((config == NULL) == (error != NULL));
  if (config == NULL) {
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
    g_assert_cmpuint (problems->len, >, 0);
  } else {
    g_assert_cmpuint (problems->len, ==, 0);
    g_assert_nonnull (mamd_config_lookup_server (config, "fuzz"));
  }
  return 0;
}
