#pragma once

/* Small helpers shared by the test programs and fuzz targets. */

#include <glib.h>

G_BEGIN_DECLS

/* Removes @path and, for a directory, everything below it (symlinks are
 * removed, never followed); read-only directories are made writable first. */
void mamd_test_rm_rf (const char *path);

G_END_DECLS
