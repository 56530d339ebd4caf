#include "config.h"

#include "mamd-test-util.h"

#include "fuzz-target.h"

#include <stdlib.h>

#include <glib/gstdio.h>

static char *tmp_dir;


static void
remove_tmp_dir (void)
{
  mamd_test_rm_rf (tmp_dir);
}

const char *
fuzz_tmp_dir (void)
{
  if (tmp_dir == NULL) {
    g_autoptr(GError) error = NULL;

    tmp_dir = g_dir_make_tmp ("mamd-fuzz-XXXXXX", &error);
    if (tmp_dir == NULL)
      g_error ("cannot create a temporary directory: %s", error->message);
    atexit (remove_tmp_dir);
  }
  return tmp_dir;
}

void
fuzz_write_file (const char *dir, const char *name, const void *data, gsize len)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents_full (path, data, (gssize) len, G_FILE_SET_CONTENTS_NONE, 0600,
                                 &error))
    g_error ("cannot write %s: %s", path, error->message);
}

void
fuzz_clear_dir (const char *dir)
{
  g_autoptr(GDir) handle = g_dir_open (dir, 0, NULL);
  const char *name;

  while (handle != NULL && (name = g_dir_read_name (handle)) != NULL) {
    g_autofree char *child = g_build_filename (dir, name, NULL);

    if (!g_file_test (child, G_FILE_TEST_IS_DIR))
      g_unlink (child);
  }
}
