/*
 * The fixture and record helpers shared by the state store tests
 * (test-store.c, test-store-file.c); see mamd-test-store.h.
 */
#include "config.h"

#include "mamd-test-store.h"
#include "mamd-test-util.h"

void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("mamd-test-store-XXXXXX", &error);
  g_assert_no_error (error);
}

void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_clear_object (&fx->store);
  mamd_test_rm_rf (fx->dir);
  g_free (fx->dir);
}

void
reopen (Fixture *fx)
{
  g_autoptr(GError) error = NULL;

  g_clear_object (&fx->store);
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->store);
}

char *
db_path (Fixture *fx)
{
  return g_build_filename (fx->dir, "state.db", NULL);
}

/* ---- committing synchronously for the simple cases ---- */

typedef struct {
  gboolean done;
  GError *error;
} CommitResult;

static void
commit_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CommitResult *res = user_data;

  mamd_store_commit_finish (MAMD_STORE (source), result, &res->error);
  res->done = TRUE;
}

gboolean
commit_sync (MamdStore *store, MamdStoreTxn *txn, GError **error)
{
  CommitResult res = { 0 };

  mamd_store_commit_async (store, txn, commit_cb, &res);
  while (!res.done)
    g_main_context_iteration (NULL, TRUE);
  if (res.error != NULL) {
    g_propagate_error (error, res.error);
    return FALSE;
  }
  return TRUE;
}

MamdSessionRecord *
make_session (const char *id, const char *server, const char *user_name, guint64 seq)
{
  MamdSessionRecord *rec = mamd_session_record_new ();

  rec->id = g_strdup (id);
  rec->server_id = g_intern_string (server);
  rec->method = g_intern_static_string ("office365");
  rec->object_id = g_strdup ("0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11");
  rec->tenant_id = g_intern_static_string ("7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f");
  rec->user_name = g_strdup (user_name);
  rec->device_id = g_strdup ("device-1");
  rec->platform = g_intern_static_string ("ios");
  rec->id_attribute = g_intern_static_string ("oid");
  rec->id_source = g_intern_static_string ("https://login.microsoftonline.com/x/v2.0");
  rec->reason = user_name != NULL ? g_intern_static_string ("enrollment required") : NULL;
  rec->owner_uid = 1000;
  rec->state = MAMD_SESSION_STATE_ENROLLMENT_REQUIRED;
  rec->mam_required = TRUE;
  rec->created = 1700000000000000;
  rec->updated = 1700000000500000;
  rec->seq = seq;
  return rec;
}

MamdEventRecord *
make_event (guint64 seq, gint64 time, GVariant *detail)
{
  MamdEventRecord *rec = mamd_event_record_new ();

  rec->seq = seq;
  rec->time = time;
  rec->type = g_strdup ("session-created");
  rec->server_id = g_strdup ("chat");
  rec->session_id = seq % 2 == 0 ? g_strdup ("00000000000000000000000000000001") : NULL;
  rec->decision_id = NULL;
  rec->detail = detail != NULL ? g_variant_ref_sink (detail)
                               : g_variant_ref_sink (g_variant_new_parsed ("@a{sv} {}"));
  return rec;
}

void
commit_events (MamdStore *store, guint64 first, guint64 last, gint64 time)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;

  for (guint64 seq = first; seq <= last; seq++) {
    g_autoptr(MamdEventRecord) ev = make_event (seq, time + (gint64) seq, NULL);

    mamd_store_txn_append_event (txn, ev);
  }
  commit_sync (store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);
}

char *
session_id_for (guint n)
{
  return g_strdup_printf ("%032x", n);
}
