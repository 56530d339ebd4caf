#pragma once

/* Small helpers shared by the test programs and fuzz targets. */

#include <gio/gio.h>

G_BEGIN_DECLS

/* Removes @path and, for a directory, everything below it (symlinks are
 * removed, never followed); read-only directories are made writable first. */
void mamd_test_rm_rf (const char *path);

/* $MAMD_BUILD_ROOT/@relpath: a program of the build under test. */
char *mamd_test_build_path (const char *relpath);

/* A program run to completion: its exit status and what it printed. */
typedef struct {
  int status;
  char *out;
  char *err;
} MamdTestRun;

void mamd_test_run_clear (MamdTestRun *run);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MamdTestRun, mamd_test_run_clear)

/* Runs $MAMD_BUILD_ROOT/@relpath with @args (NULL-terminated) from
 * @launcher (NULL: a plain one; it must pipe stdout and stderr) to
 * completion; the run is logged with g_test_message(). */
void mamd_test_run (GSubprocessLauncher *launcher, const char *relpath, const char *const *args,
                    MamdTestRun *run);

/* Takes the write lock of @state_dir's state.db, as another program might,
 * waiting for the commits under way; mamd_test_unlock_store() lets go. */
typedef struct sqlite3 sqlite3;
sqlite3 *mamd_test_lock_store (const char *state_dir);
void mamd_test_unlock_store (sqlite3 *db);

G_END_DECLS
