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

G_END_DECLS
