/*
 * Replays fuzz inputs without libFuzzer: every file named on the command
 * line, or every regular file in a directory named there, goes through the
 * target's LLVMFuzzerTestOneInput() once. This is how the corpora run as
 * ordinary tests; a crash, an assertion or a sanitizer report fails them.
 */
#include "config.h"

#include "fuzz-target.h"

#include <stdio.h>

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

static void
replay_file (const char *path, guint *count)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, &error))
    g_error ("cannot read fuzz input: %s", error->message);
  LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
  (*count)++;
}

static void
replay_path (const char *path, guint *count)
{
  g_autoptr(GPtrArray) names = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR)) {
    replay_file (path, count);
    return;
  }
  dir = g_dir_open (path, 0, &error);
  if (dir == NULL)
    g_error ("cannot list fuzz inputs: %s", error->message);
  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_build_filename (path, name, NULL));
  /* a stable order, so that a failure is reproducible from the log */
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++) {
    const char *child = g_ptr_array_index (names, i);

    if (g_file_test (child, G_FILE_TEST_IS_REGULAR))
      replay_file (child, count);
  }
}

int
main (int argc, char **argv)
{
  guint count = 0;

  if (argc < 2) {
    fprintf (stderr, "usage: %s INPUT-OR-DIRECTORY...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++)
    replay_path (argv[i], &count);
  /* an empty corpus would make this test pass without testing anything */
  if (count == 0) {
    fprintf (stderr, "%s: no inputs found\n", argv[0]);
    return 1;
  }
  printf ("%s: %u inputs replayed\n", argv[0], count);
  return 0;
}
