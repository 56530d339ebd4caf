#pragma once

/* The libFuzzer entry point every target defines, and small helpers. */

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A private directory for the whole run, removed at exit. */
const char *fuzz_tmp_dir (void);
/* Writes @len bytes to @dir/@name (mode 0600), aborting on failure. */
void fuzz_write_file (const char *dir, const char *name, const void *data, gsize len);
/* Removes every file in @dir (not subdirectories' contents). */
void fuzz_clear_dir (const char *dir);
