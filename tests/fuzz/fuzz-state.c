/*
 * State files. The first byte picks what the rest is: 0 (mod 3), a whole
 * state.db as found in the state directory (corrupt files are quarantined,
 * old schemas upgraded); 1, an event's serialised detail; 2, an event's
 * detail in the text form schema version 1 stored. Either way the store
 * must open and read it or refuse it with a Store error.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "fuzz-target.h"
#include "mamd-plugin.h"
#include "mamd-store.h"

static void
read_back (const char *dir)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdStore) store = mamd_store_sqlite_open (dir, &error);
  g_autoptr(MamdStoreSnapshot) snapshot = NULL;
  g_autoptr(GPtrArray) events = NULL;

  g_assert ((store == NULL) == (error != NULL));
  if (store == NULL) {
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
    return;
  }
  snapshot = mamd_store_load (store, &error);
  g_assert ((snapshot == NULL) == (error != NULL));
  g_assert (error == NULL || g_error_matches (error, MAMD_ERROR, MAMD_ERROR_STORE));
  g_clear_error (&error);
  events = mamd_store_list_events (store, 0, 0, &error);
  g_assert ((events == NULL) == (error != NULL));
  g_assert (error == NULL || g_error_matches (error, MAMD_ERROR, MAMD_ERROR_STORE));
}

/* A store holding one event whose detail column is @detail. */
static void
write_event (const char *dir, const uint8_t *detail, gsize len, gboolean text)
{
  g_autofree char *path = g_build_filename (dir, "state.db", NULL);
  g_autoptr(GError) error = NULL;
  sqlite3_stmt *stmt = NULL;
  sqlite3 *db = NULL;
  MamdStore *store;

  /* a store creates its file with the current schema */
  store = mamd_store_sqlite_open (dir, &error);
  g_assert_no_error (error);
  g_object_unref (store);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db,
                                       "INSERT INTO events (seq, time, type, detail)"
                                       " VALUES (1, 1, 'fuzz', ?1)", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  if (text)
    sqlite3_bind_text (stmt, 1, (const char *) detail, (int) len, SQLITE_STATIC);
  else
    sqlite3_bind_blob (stmt, 1, detail, (int) len, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_DONE);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *dir = g_build_filename (fuzz_tmp_dir (), "state", NULL);
  const uint8_t *body = size > 0 ? data + 1 : data;
  gsize len = size > 0 ? size - 1 : 0;
  guint mode = size > 0 ? data[0] % 3 : 0;

  g_mkdir_with_parents (dir, 0700);
  fuzz_clear_dir (dir);
  if (mode == 0)
    fuzz_write_file (dir, "state.db", body, len);
  else
    write_event (dir, body, len, mode == 2);
  read_back (dir);
  return 0;
}
