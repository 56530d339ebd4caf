#include "config.h"

#include "mamd-test-util.h"

#include <glib/gstdio.h>
#include <sqlite3.h>

void
mamd_test_rm_rf (const char *path)
{
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (g_file_test (path, G_FILE_TEST_IS_SYMLINK) || !g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_unlink (path);
    return;
  }
  g_chmod (path, 0700);
  dir = g_dir_open (path, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *child = g_build_filename (path, name, NULL);

    mamd_test_rm_rf (child);
  }
  g_rmdir (path);
}

char *
mamd_test_build_path (const char *relpath)
{
  const char *root = g_getenv ("MAMD_BUILD_ROOT");

  g_assert_nonnull (root);
  return g_build_filename (root, relpath, NULL);
}

void
mamd_test_run_clear (MamdTestRun *run)
{
  g_clear_pointer (&run->out, g_free);
  g_clear_pointer (&run->err, g_free);
}

void
mamd_test_run (GSubprocessLauncher *launcher, const char *relpath, const char *const *args,
               MamdTestRun *run)
{
  g_autoptr(GSubprocessLauncher) plain = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;

  if (launcher == NULL)
    launcher = plain = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                  G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_ptr_array_add (argv, mamd_test_build_path (relpath));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &run->out, &run->err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  run->status = g_subprocess_get_exit_status (proc);
  g_test_message ("%s %s -> %d\n%s%s", relpath, args[0] != NULL ? args[0] : "", run->status,
                  run->out, run->err);
}

sqlite3 *
mamd_test_lock_store (const char *state_dir)
{
  g_autofree char *path = g_build_filename (state_dir, "state.db", NULL);
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 60000);
  g_assert_cmpint (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
  return db;
}

void
mamd_test_unlock_store (sqlite3 *db)
{
  g_assert_cmpint (sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
}
