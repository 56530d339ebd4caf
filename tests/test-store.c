#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "mamd-plugin.h"
#include "mamd-test-util.h"
#include "mamd-store.h"

static const char *self_exe;

typedef struct {
  char *dir;
  MamdStore *store;
} Fixture;

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("mamd-test-store-XXXXXX", &error);
  g_assert_no_error (error);
}


static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_clear_object (&fx->store);
  mamd_test_rm_rf (fx->dir);
  g_free (fx->dir);
}

static void
reopen (Fixture *fx)
{
  g_autoptr(GError) error = NULL;

  g_clear_object (&fx->store);
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->store);
}

static char *
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

static gboolean
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

static MamdSessionRecord *
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

static MamdEventRecord *
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

static void
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

/* ---- txn ---- */

static void
test_txn (void)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdSessionRecord) rec = make_session ("00000000000000000000000000000001",
                                                   "chat", "alice", 1);
  const MamdStoreOp *op;

  g_assert_true (mamd_store_txn_is_empty (txn));
  mamd_store_txn_put_session (txn, rec);
  mamd_store_txn_delete_removed_server (txn, "chat", "device-1");
  mamd_store_txn_prune_events (txn, 42);
  g_assert_false (mamd_store_txn_is_empty (txn));
  g_assert_cmpuint (mamd_store_txn_get_n_ops (txn), ==, 3);

  /* the txn holds its own copy: changing the caller's record changes nothing */
  op = mamd_store_txn_get_op (txn, 0);
  g_assert_cmpint (op->kind, ==, MAMD_STORE_OP_PUT_SESSION);
  g_assert_true (op->record != rec);
  g_free (rec->user_name);
  rec->user_name = g_strdup ("mallory");
  g_assert_cmpstr (((MamdSessionRecord *) op->record)->user_name, ==, "alice");

  op = mamd_store_txn_get_op (txn, 1);
  g_assert_cmpint (op->kind, ==, MAMD_STORE_OP_DELETE_REMOVED_SERVER);
  g_assert_cmpstr (op->key1, ==, "chat");
  g_assert_cmpstr (op->key2, ==, "device-1");
  op = mamd_store_txn_get_op (txn, 2);
  g_assert_cmpint (op->kind, ==, MAMD_STORE_OP_PRUNE_EVENTS);
  g_assert_cmpint (op->before, ==, 42);
}

/* ---- round trip ---- */

static void
commit_everything (Fixture *fx)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdSessionRecord) s1 = make_session ("00000000000000000000000000000001",
                                                  "chat", "alice", 1);
  g_autoptr(MamdSessionRecord) s2 = make_session ("00000000000000000000000000000002",
                                                  "other", NULL, 2);
  g_autoptr(MamdSessionRecord) s3 = make_session ("00000000000000000000000000000003",
                                                  "chat", "bob", 3);
  MamdUserRecord user = { g_intern_static_string ("chat"), g_intern_static_string ("office365"),
                          (char *) "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11", NULL, 17 };
  MamdRemovedServerRecord rm1 = { g_intern_static_string ("chat"), (char *) "device-1",
                                  (char *) "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11",
                                  (char *) "enrollment failed", 18 };
  MamdRemovedServerRecord rm2 = { g_intern_static_string ("chat"), (char *) "device-2",
                                  NULL, NULL, 19 };
  MamdWipeRecord w1 = { (char *) "000000000000000000000000000000a1",
                        g_intern_static_string ("chat"), (char *) "device-1",
                        (char *) "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11",
                        (char *) "00000000000000000000000000000001",
                        (char *) "admin request", 20, 21, 4 };
  MamdWipeRecord w2 = w1;
  g_autoptr(GVariantBuilder) builder = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
  g_autoptr(MamdEventRecord) e1 = NULL;
  g_autoptr(MamdEventRecord) e2 = NULL;
  g_autoptr(GError) error = NULL;

  s2->state = MAMD_SESSION_STATE_REVOKED;
  s2->mam_required = FALSE;
  s2->owner_uid = G_MAXUINT32;
  w2.id = (char *) "000000000000000000000000000000a2";

  g_variant_builder_add (builder, "{sv}", "state", g_variant_new_string ("enrolled"));
  g_variant_builder_add (builder, "{sv}", "uid", g_variant_new_uint32 (1000));
  g_variant_builder_add (builder, "{sv}", "big", g_variant_new_uint64 (G_MAXUINT64));
  g_variant_builder_add (builder, "{sv}", "neg", g_variant_new_int64 (G_MININT64));
  g_variant_builder_add (builder, "{sv}", "byte", g_variant_new_byte (7));
  g_variant_builder_add (builder, "{sv}", "ok", g_variant_new_boolean (TRUE));
  g_variant_builder_add (builder, "{sv}", "ratio", g_variant_new_double (0.25));
  g_variant_builder_add (builder, "{sv}", "quote", g_variant_new_string ("it's \"x\"\n\\"));
  g_variant_builder_add (builder, "{sv}", "list", g_variant_new_parsed ("['a', 'b']"));
  g_variant_builder_add (builder, "{sv}", "empty", g_variant_new_parsed ("@as []"));
  g_variant_builder_add (builder, "{sv}", "nested", g_variant_new_parsed ("{'k': <int16 -3>}"));
  e1 = make_event (1, 1000, g_variant_builder_end (builder));
  e2 = make_event (2, 2000, NULL);
  e2->decision_id = g_strdup ("000000000000000000000000000000d1");

  mamd_store_txn_put_session (txn, s1);
  mamd_store_txn_put_session (txn, s2);
  mamd_store_txn_put_session (txn, s3);
  mamd_store_txn_put_user (txn, &user);
  mamd_store_txn_put_removed_server (txn, &rm1);
  mamd_store_txn_put_removed_server (txn, &rm2);
  mamd_store_txn_put_wipe (txn, &w1);
  mamd_store_txn_put_wipe (txn, &w2);
  mamd_store_txn_append_event (txn, e1);
  mamd_store_txn_append_event (txn, e2);
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);

  /* deletes and a replacing put */
  txn = mamd_store_txn_new ();
  mamd_store_txn_delete_session (txn, s3->id);
  mamd_store_txn_delete_removed_server (txn, "chat", "device-2");
  mamd_store_txn_delete_wipe (txn, w2.id);
  s1->state = MAMD_SESSION_STATE_ENROLLED;
  s1->seq = 5;
  mamd_store_txn_put_session (txn, s1);
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);
}

static const MamdSessionRecord *
find_session (GPtrArray *sessions, const char *id)
{
  for (guint i = 0; i < sessions->len; i++) {
    const MamdSessionRecord *rec = g_ptr_array_index (sessions, i);

    if (g_str_equal (rec->id, id))
      return rec;
  }
  return NULL;
}

static void
check_sessions (GPtrArray *sessions)
{
  const MamdSessionRecord *s1 = find_session (sessions, "00000000000000000000000000000001");
  const MamdSessionRecord *s2 = find_session (sessions, "00000000000000000000000000000002");

  g_assert_cmpuint (sessions->len, ==, 2);
  g_assert_nonnull (s1);
  g_assert_nonnull (s2);
  g_assert_null (find_session (sessions, "00000000000000000000000000000003"));

  /* interned fields come back interned: pointer equality */
  g_assert_true (s1->server_id == g_intern_string ("chat"));
  g_assert_true (s1->method == g_intern_string ("office365"));
  g_assert_true (s1->tenant_id == g_intern_string ("7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f"));
  g_assert_true (s1->platform == g_intern_string ("ios"));
  g_assert_true (s1->id_attribute == g_intern_string ("oid"));
  g_assert_true (s1->id_source == g_intern_string ("https://login.microsoftonline.com/x/v2.0"));
  g_assert_true (s1->reason == g_intern_string ("enrollment required"));
  g_assert_cmpstr (s1->object_id, ==, "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11");
  g_assert_cmpstr (s1->user_name, ==, "alice");
  g_assert_cmpstr (s1->device_id, ==, "device-1");
  g_assert_cmpuint (s1->owner_uid, ==, 1000);
  g_assert_cmpint (s1->state, ==, MAMD_SESSION_STATE_ENROLLED);
  g_assert_true (s1->mam_required);
  g_assert_cmpint (s1->created, ==, 1700000000000000);
  g_assert_cmpint (s1->updated, ==, 1700000000500000);
  g_assert_cmpuint (s1->seq, ==, 5);

  g_assert_true (s2->server_id == g_intern_string ("other"));
  g_assert_null (s2->user_name);
  g_assert_null (s2->reason);
  g_assert_cmpuint (s2->owner_uid, ==, G_MAXUINT32);
  g_assert_cmpint (s2->state, ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_false (s2->mam_required);
  g_assert_cmpuint (s2->seq, ==, 2);
}

static void
check_others (MamdStoreSnapshot *snap)
{
  const MamdUserRecord *user;
  const MamdRemovedServerRecord *rm;
  const MamdWipeRecord *wipe;

  g_assert_cmpuint (snap->users->len, ==, 1);
  user = g_ptr_array_index (snap->users, 0);
  g_assert_true (user->server_id == g_intern_string ("chat"));
  g_assert_true (user->auth_service == g_intern_string ("office365"));
  g_assert_cmpstr (user->object_id, ==, "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11");
  g_assert_null (user->user_name);
  g_assert_cmpint (user->created, ==, 17);

  g_assert_cmpuint (snap->removed_servers->len, ==, 1);
  rm = g_ptr_array_index (snap->removed_servers, 0);
  g_assert_true (rm->server_id == g_intern_string ("chat"));
  g_assert_cmpstr (rm->device_id, ==, "device-1");
  g_assert_cmpstr (rm->object_id, ==, "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11");
  g_assert_cmpstr (rm->reason, ==, "enrollment failed");
  g_assert_cmpint (rm->removed, ==, 18);

  g_assert_cmpuint (snap->wipes->len, ==, 1);
  wipe = g_ptr_array_index (snap->wipes, 0);
  g_assert_cmpstr (wipe->id, ==, "000000000000000000000000000000a1");
  g_assert_true (wipe->server_id == g_intern_string ("chat"));
  g_assert_cmpstr (wipe->device_id, ==, "device-1");
  g_assert_cmpstr (wipe->object_id, ==, "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11");
  g_assert_cmpstr (wipe->session_id, ==, "00000000000000000000000000000001");
  g_assert_cmpstr (wipe->reason, ==, "admin request");
  g_assert_cmpint (wipe->created, ==, 20);
  g_assert_cmpint (wipe->expires, ==, 21);
  g_assert_cmpuint (wipe->seq, ==, 4);
  g_assert_cmpuint (snap->last_seq, ==, 2);
}

static void
check_events (MamdStore *store)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) events = mamd_store_list_events (store, 0, 100, &error);
  g_autoptr(GVariant) expected = g_variant_ref_sink (g_variant_new_parsed (
    "{'state': <'enrolled'>, 'uid': <uint32 1000>, 'big': <uint64 18446744073709551615>,"
    " 'neg': <int64 -9223372036854775808>, 'byte': <byte 7>, 'ok': <true>,"
    " 'ratio': <0.25>, 'quote': <'it\\'s \"x\"\\n\\\\'>, 'list': <['a', 'b']>,"
    " 'empty': <@as []>, 'nested': <{'k': <int16 -3>}>}"));
  const MamdEventRecord *e1, *e2;

  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 2);
  e1 = g_ptr_array_index (events, 0);
  e2 = g_ptr_array_index (events, 1);
  g_assert_cmpuint (e1->seq, ==, 1);
  g_assert_cmpint (e1->time, ==, 1000);
  g_assert_cmpstr (e1->type, ==, "session-created");
  g_assert_cmpstr (e1->server_id, ==, "chat");
  g_assert_null (e1->session_id);
  g_assert_null (e1->decision_id);
  g_assert_true (g_variant_is_of_type (e1->detail, G_VARIANT_TYPE_VARDICT));
  g_assert_true (g_variant_equal (e1->detail, expected));

  g_assert_cmpuint (e2->seq, ==, 2);
  g_assert_cmpstr (e2->session_id, ==, "00000000000000000000000000000001");
  g_assert_cmpstr (e2->decision_id, ==, "000000000000000000000000000000d1");
  g_assert_cmpuint (g_variant_n_children (e2->detail), ==, 0);
}

static void
test_round_trip (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdStoreSnapshot) empty = NULL;
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;

  reopen (fx);
  empty = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (empty->sessions->len, ==, 0);
  g_assert_cmpuint (empty->last_seq, ==, 0);

  commit_everything (fx);
  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  check_sessions (snap->sessions);
  check_others (snap);
  check_events (fx->store);

  /* prune drops events strictly older than the cut-off */
  {
    g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();

    mamd_store_txn_prune_events (txn, 2000);
    commit_sync (fx->store, g_steal_pointer (&txn), &error);
    g_assert_no_error (error);
  }
  reopen (fx);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 1);
  g_assert_cmpuint (((MamdEventRecord *) g_ptr_array_index (events, 0))->seq, ==, 2);
}

/* ---- group commit ---- */

#define N_GROUP 2000

typedef struct {
  sqlite3 *db;        /* an independent connection: sees only committed data */
  sqlite3_stmt *stmt;
  guint next;         /* index of the callback expected next */
  guint failures;
} GroupState;

typedef struct {
  GroupState *state;
  guint index;
} GroupCall;

static char *
session_id_for (guint n)
{
  return g_strdup_printf ("%032x", n);
}

static void
group_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree GroupCall *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = session_id_for (call->index);
  GroupState *state = call->state;

  mamd_store_commit_finish (MAMD_STORE (source), result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (call->index, ==, state->next);
  state->next++;

  /* acknowledged means committed: another connection must see it now */
  sqlite3_bind_text (state->stmt, 1, id, -1, SQLITE_STATIC);
  g_assert_cmpint (sqlite3_step (state->stmt), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (state->stmt, 0), ==, 1);
  sqlite3_reset (state->stmt);
}

static void
test_group_commit (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;
  GroupState state = { 0 };

  reopen (fx);
  g_assert_cmpint (sqlite3_open_v2 (path, &state.db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (state.db, 5000);
  g_assert_cmpint (sqlite3_prepare_v2 (state.db, "SELECT count(*) FROM sessions WHERE id = ?1",
                                       -1, &state.stmt, NULL), ==, SQLITE_OK);

  for (guint i = 0; i < N_GROUP; i++) {
    g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
    g_autofree char *id = session_id_for (i);
    g_autoptr(MamdSessionRecord) rec = make_session (id, "chat", "user", i + 1);
    g_autoptr(MamdEventRecord) ev = make_event (i + 1, i, NULL);
    GroupCall *call = g_new0 (GroupCall, 1);

    call->state = &state;
    call->index = i;
    mamd_store_txn_put_session (txn, rec);
    mamd_store_txn_append_event (txn, ev);
    mamd_store_commit_async (fx->store, g_steal_pointer (&txn), group_cb, call);
  }
  while (state.next < N_GROUP)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (state.next, ==, N_GROUP);
  sqlite3_finalize (state.stmt);
  sqlite3_close (state.db);

  g_assert_true (mamd_store_flush (fx->store, &error));
  g_assert_no_error (error);
  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, N_GROUP);
  g_assert_cmpuint (snap->last_seq, ==, N_GROUP);
}

/* ---- last_seq ---- */

static void
test_last_seq_after_prune (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;

  reopen (fx);
  commit_events (fx->store, 5, 7, 100);
  /* an older seq committed later must not lower last_seq */
  commit_events (fx->store, 3, 3, 100);
  mamd_store_txn_prune_events (txn, G_MAXINT64);
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);

  reopen (fx);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 0);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->last_seq, ==, 7);
}

/* ---- ids ---- */

static void
test_time_ordered_id (void)
{
  g_autofree char *a = mamd_time_ordered_id (1700000000000000);
  g_autofree char *b = mamd_time_ordered_id (1700000000000000);
  g_autofree char *later = mamd_time_ordered_id (1700000000001000);

  g_assert_true (mamd_id_is_valid (a));
  g_assert_true (mamd_id_is_valid (later));
  /* 48 bits of milliseconds first, then randomness */
  g_assert_true (g_str_has_prefix (a, "018bcfe56800"));
  g_assert_cmpstr (a, !=, b);
  g_assert_cmpint (strncmp (a, b, 12), ==, 0);
  g_assert_cmpstr (a, <, later);
  g_assert_cmpstr (b, <, later);
}

/* ---- pruning ---- */

static guint64
event_seq_at (GPtrArray *events, guint index)
{
  return ((MamdEventRecord *) g_ptr_array_index (events, index))->seq;
}

/* Pruning walks the log in seq order and stops at the first event that is
 * new enough, so an older time behind a newer one (the clock went back)
 * waits for the next prune instead of leaving a hole. */
static void
test_prune_in_seq_order (Fixture *fx, gconstpointer data)
{
  static const gint64 times[] = { 10, 50, 20, 60 };
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdStoreTxn) prune = mamd_store_txn_new ();
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;

  reopen (fx);
  for (guint i = 0; i < G_N_ELEMENTS (times); i++) {
    g_autoptr(MamdEventRecord) ev = make_event (i + 1, times[i], NULL);

    mamd_store_txn_append_event (txn, ev);
  }
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);

  mamd_store_txn_prune_events (prune, 30);
  commit_sync (fx->store, g_steal_pointer (&prune), &error);
  g_assert_no_error (error);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 3);
  g_assert_cmpuint (event_seq_at (events, 0), ==, 2);
  g_assert_cmpuint (event_seq_at (events, 1), ==, 3);
  g_assert_cmpuint (event_seq_at (events, 2), ==, 4);
}

/* ---- event details in the file ---- */

static void
test_bad_detail (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;
  sqlite3 *db = NULL;

  reopen (fx);
  commit_events (fx->store, 1, 2, 100);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  /* not the serialisation of any a{sv} */
  g_assert_cmpint (sqlite3_exec (db, "UPDATE events SET detail = x'ff01' WHERE seq = 2",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_null (events);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "event 2"));
  g_assert_nonnull (strstr (error->message, "bad detail"));

  /* the text form of schema version 1, with bytes that are not UTF-8 */
  g_clear_error (&error);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "UPDATE events SET detail = CAST (x'7b2773273a203c27cbcb'"
                                     " AS TEXT) WHERE seq = 2", NULL, NULL, NULL), ==,
                   SQLITE_OK);
  sqlite3_close (db);
  g_clear_pointer (&events, g_ptr_array_unref);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_null (events);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "not UTF-8"));
}

/* ---- schema upgrades ---- */

/* the layout mamd wrote before schema version 2, verbatim */
static const char schema_v1_sql[] =
  "CREATE TABLE sessions ("
  " id TEXT PRIMARY KEY NOT NULL, server_id TEXT, method TEXT, object_id TEXT,"
  " tenant_id TEXT, user_name TEXT, device_id TEXT, platform TEXT, id_attribute TEXT,"
  " id_source TEXT, reason TEXT, owner_uid INTEGER NOT NULL, state TEXT NOT NULL,"
  " mam_required INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
  " seq INTEGER NOT NULL);"
  "CREATE TABLE users ("
  " server_id TEXT NOT NULL, auth_service TEXT NOT NULL, object_id TEXT NOT NULL,"
  " user_name TEXT, created INTEGER NOT NULL,"
  " PRIMARY KEY (server_id, auth_service, object_id));"
  "CREATE TABLE removed_servers ("
  " server_id TEXT NOT NULL, device_id TEXT NOT NULL, object_id TEXT, reason TEXT,"
  " removed INTEGER NOT NULL, PRIMARY KEY (server_id, device_id));"
  "CREATE TABLE wipes ("
  " id TEXT PRIMARY KEY NOT NULL, server_id TEXT, device_id TEXT, object_id TEXT,"
  " session_id TEXT, reason TEXT, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
  " seq INTEGER NOT NULL);"
  "CREATE TABLE events ("
  " seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, server_id TEXT,"
  " session_id TEXT, decision_id TEXT, detail TEXT);"
  "CREATE INDEX events_time ON events (time);"
  "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER);"
  "INSERT INTO sessions VALUES ('0123456789abcdef0123456789abcdef', 'chat', 'office365',"
  " '0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11', '7f2c1e52-0d8b-4f3c-b5a1-2a6b9c0d1e2f', 'ada',"
  " 'device-1', 'ios', 'oid', 'issuer', 'enrollment required', 1000, 'enrollment-required',"
  " 1, 100, 200, 7);"
  "INSERT INTO users VALUES ('chat', 'office365', '0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11',"
  " 'ada', 100);"
  "INSERT INTO removed_servers VALUES ('chat', 'device-2', 'oid-2', 'failed', 300);"
  "INSERT INTO wipes VALUES ('fedcba9876543210fedcba9876543210', 'chat', 'device-2', 'oid-2',"
  " NULL, 'failed', 300, 900, 8);"
  "INSERT INTO events VALUES (6, 100, 'session-created', 'chat', NULL, NULL,"
  " '{''state'': <''active''>}');"
  "INSERT INTO events VALUES (8, 300, 'wipe-requested', 'chat', NULL, NULL, NULL);"
  "INSERT INTO meta VALUES ('last_seq', 9);"
  "PRAGMA user_version=1;";

static void
test_upgrade_from_1 (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GPtrArray) events = NULL;
  g_autoptr(GError) error = NULL;
  const MamdSessionRecord *session;
  const MamdEventRecord *event;
  const char *state = NULL;
  sqlite3 *db = NULL;
  gint64 version = 0, indexes = -1;
  sqlite3_stmt *stmt = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, schema_v1_sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, 1);
  session = g_ptr_array_index (snap->sessions, 0);
  g_assert_cmpstr (session->id, ==, "0123456789abcdef0123456789abcdef");
  g_assert_cmpstr (session->user_name, ==, "ada");
  g_assert_cmpint (session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_cmpuint (session->seq, ==, 7);
  g_assert_cmpuint (snap->users->len, ==, 1);
  g_assert_cmpuint (snap->removed_servers->len, ==, 1);
  g_assert_cmpuint (snap->wipes->len, ==, 1);
  g_assert_cmpuint (snap->last_seq, ==, 9);

  /* version 1 details are text, new ones serialised; both read back */
  commit_events (fx->store, 10, 10, 400);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 3);
  event = g_ptr_array_index (events, 0);
  g_assert_cmpuint (event->seq, ==, 6);
  g_assert_true (g_variant_lookup (event->detail, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "active");
  event = g_ptr_array_index (events, 1);
  g_assert_cmpuint (g_variant_n_children (event->detail), ==, 0);
  event = g_ptr_array_index (events, 2);
  g_assert_cmpuint (event->seq, ==, 10);
  g_assert_true (g_variant_is_of_type (event->detail, G_VARIANT_TYPE_VARDICT));

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  version = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  g_assert_cmpint (sqlite3_prepare_v2 (db,
                                       "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                       " AND name = 'events_time'",
                                       -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  indexes = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  g_assert_cmpint (version, ==, 2);
  g_assert_cmpint (indexes, ==, 0);
}

/* ---- locking ---- */

static void
test_locked (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdStore) second = NULL;
  g_autofree char *pid = g_strdup_printf ("pid %d", (int) getpid ());

  reopen (fx);
  second = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (second);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "in use by another mamd"));
  g_assert_nonnull (strstr (error->message, pid));
  g_clear_error (&error);

  /* closing the first releases the lock */
  g_clear_object (&fx->store);
  second = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (second);
}

/* ---- corruption ---- */

static guint
count_quarantined (Fixture *fx, char **found)
{
  g_autoptr(GDir) dir = g_dir_open (fx->dir, 0, NULL);
  const char *name;
  guint n = 0;

  while ((name = g_dir_read_name (dir)) != NULL) {
    if (g_str_has_prefix (name, "state.db.corrupt-") && !g_str_has_suffix (name, "-wal") &&
        !g_str_has_suffix (name, "-shm")) {
      n++;
      if (found != NULL) {
        g_free (*found);
        *found = g_build_filename (fx->dir, name, NULL);
      }
    }
  }
  return n;
}

static void
test_corrupt (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autofree char *garbage = g_strnfill (8192, 'x');
  g_autofree char *moved = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_set_contents (path, garbage, -1, NULL));
  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);

  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_quarantined (fx, &moved), ==, 1);
  g_assert_nonnull (strstr (error->message, moved));
  g_assert_nonnull (strstr (error->message, path));
  g_assert_true (g_file_get_contents (moved, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, garbage);
  g_clear_error (&error);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, 0);
  g_assert_cmpuint (snap->last_seq, ==, 0);
}

static void
test_newer_schema (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autoptr(GError) error = NULL;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "PRAGMA user_version=99", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_nonnull (strstr (error->message, "schema version 99"));
  /* not corrupt: left in place */
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (count_quarantined (fx, NULL), ==, 0);
}

static void
test_corrupt_page (Fixture *fx, gconstpointer data)
{
  g_autofree char *path = db_path (fx);
  g_autofree char *moved = NULL;
  g_autofree char *garbage = g_strnfill (4096, 'x');
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileIOStream) stream = NULL;
  GOutputStream *out;

  /* a real database whose table pages were overwritten: the header is fine,
   * only the integrity check can tell */
  reopen (fx);
  commit_events (fx->store, 1, 200, 0);
  g_clear_object (&fx->store);

  file = g_file_new_for_path (path);
  stream = g_file_open_readwrite (file, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_seekable_seek (G_SEEKABLE (stream), 4096, G_SEEK_SET, NULL, &error));
  out = g_io_stream_get_output_stream (G_IO_STREAM (stream));
  g_assert_true (g_output_stream_write_all (out, garbage, 4096, NULL, NULL, &error));
  g_assert_true (g_seekable_seek (G_SEEKABLE (stream), 3 * 4096, G_SEEK_SET, NULL, &error));
  g_assert_true (g_output_stream_write_all (out, garbage, 4096, NULL, NULL, &error));
  g_assert_true (g_io_stream_close (G_IO_STREAM (stream), NULL, &error));

  fx->store = mamd_store_sqlite_open (fx->dir, &error);
  g_assert_null (fx->store);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_test_message ("%s", error->message);
  g_assert_cmpuint (count_quarantined (fx, &moved), ==, 1);
  g_assert_nonnull (strstr (error->message, moved));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

/* ---- a failed commit breaks the store ---- */

static void
test_broken (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdSessionRecord) rec = make_session ("00000000000000000000000000000009",
                                                   "chat", "eve", 1);
  g_autoptr(MamdEventRecord) dup = make_event (1, 10, NULL);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GError) error = NULL;

  reopen (fx);
  commit_events (fx->store, 1, 1, 0);

  /* a reused seq violates the events primary key: the whole txn rolls back */
  mamd_store_txn_put_session (txn, rec);
  mamd_store_txn_append_event (txn, dup);
  g_assert_false (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_assert_true (g_str_has_prefix (error->message, "could not commit state to "));
  g_clear_error (&error);

  /* refuses everything after */
  txn = mamd_store_txn_new ();
  mamd_store_txn_delete_session (txn, rec->id);
  g_assert_false (commit_sync (fx->store, g_steal_pointer (&txn), &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_clear_error (&error);
  g_assert_false (mamd_store_flush (fx->store, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  g_clear_error (&error);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->sessions->len, ==, 0);
  g_assert_cmpuint (snap->last_seq, ==, 1);
}

/* ---- list_events paging ---- */

static void
check_page (MamdStore *store, guint64 after, guint limit, guint64 first, guint n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) events = mamd_store_list_events (store, after, limit, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (((MamdEventRecord *) g_ptr_array_index (events, i))->seq, ==, first + i);
}

static void
test_list_events (Fixture *fx, gconstpointer data)
{
  reopen (fx);
  check_page (fx->store, 0, 10, 0, 0);
  commit_events (fx->store, 1, 12, 0);
  commit_events (fx->store, 13, 25, 0);

  check_page (fx->store, 0, 10, 1, 10);
  check_page (fx->store, 10, 10, 11, 10);
  check_page (fx->store, 20, 10, 21, 5);
  check_page (fx->store, 25, 10, 0, 0);
  check_page (fx->store, 3, 1, 4, 1);
  check_page (fx->store, 0, 0, 1, 25);
}

/* ---- kill -9 ---- */

#define CHILD_IN_FLIGHT 16

typedef struct {
  MamdStore *store;
  guint next;
} ChildState;

static void child_submit (ChildState *state);

static void
child_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree char *line = user_data;
  ChildState *state = g_object_get_data (source, "child-state");
  g_autoptr(GError) error = NULL;
  gsize len = strlen (line);

  if (!mamd_store_commit_finish (MAMD_STORE (source), result, &error)) {
    g_printerr ("child commit failed: %s\n", error->message);
    _exit (3);
  }
  /* acknowledged: tell the parent at once, unbuffered */
  for (gsize done = 0; done < len;) {
    ssize_t n = write (STDOUT_FILENO, line + done, len - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      _exit (4);
    done += (gsize) n;
  }
  child_submit (state);
}

static void
child_submit (ChildState *state)
{
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autofree char *id = session_id_for (state->next);
  g_autoptr(MamdSessionRecord) rec = make_session (id, "chat", "user", state->next + 1);
  g_autoptr(MamdEventRecord) ev = make_event (state->next + 1, state->next, NULL);

  state->next++;
  mamd_store_txn_put_session (txn, rec);
  mamd_store_txn_append_event (txn, ev);
  mamd_store_commit_async (state->store, g_steal_pointer (&txn), child_cb,
                           g_strdup_printf ("%s\n", id));
}

static int
run_writer_child (const char *dir)
{
  g_autoptr(GError) error = NULL;
  ChildState state = { 0 };

  state.store = mamd_store_sqlite_open (dir, &error);
  if (state.store == NULL) {
    g_printerr ("child: %s\n", error->message);
    return 2;
  }
  g_object_set_data (G_OBJECT (state.store), "child-state", &state);
  for (guint i = 0; i < CHILD_IN_FLIGHT; i++)
    child_submit (&state);
  for (;;)
    g_main_context_iteration (NULL, TRUE);
  return 0;
}

static void
test_sigkill (Fixture *fx, gconstpointer data)
{
  const char *argv[] = { self_exe, "--store-writer-child", fx->dir, NULL };
  g_autoptr(GPtrArray) acked = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) pending = g_string_new (NULL);
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(GHashTable) present = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = db_path (fx);
  GPid pid;
  int out_fd = -1, status = 0;
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;

  g_spawn_async_with_pipes (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                            &pid, NULL, &out_fd, NULL, &error);
  g_assert_no_error (error);

  while (acked->len < 400) {
    char buf[4096];
    ssize_t n = read (out_fd, buf, sizeof buf);
    char *nl;

    if (n < 0 && errno == EINTR)
      continue;
    g_assert_cmpint (n, >, 0);
    g_string_append_len (pending, buf, n);
    while ((nl = strchr (pending->str, '\n')) != NULL) {
      g_ptr_array_add (acked, g_strndup (pending->str, nl - pending->str));
      g_string_erase (pending, 0, nl - pending->str + 1);
    }
  }
  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  g_assert_true (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL);
  close (out_fd);
  g_spawn_close_pid (pid);

  /* the database must be sound before mamd touches it again */
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1, &stmt, NULL), ==,
                   SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  g_assert_cmpstr ((const char *) sqlite3_column_text (stmt, 0), ==, "ok");
  sqlite3_finalize (stmt);
  sqlite3_close (db);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_test_message ("%u acknowledged, %u present after SIGKILL", acked->len, snap->sessions->len);
  for (guint i = 0; i < snap->sessions->len; i++) {
    MamdSessionRecord *rec = g_ptr_array_index (snap->sessions, i);

    g_hash_table_add (present, rec->id);
  }
  for (guint i = 0; i < acked->len; i++) {
    const char *id = g_ptr_array_index (acked, i);

    if (!g_hash_table_contains (present, id))
      g_error ("acknowledged session %s lost after SIGKILL", id);
  }
  g_assert_cmpuint (snap->sessions->len, >=, acked->len);
  g_assert_cmpuint (snap->last_seq, >=, acked->len);
}

int
main (int argc, char **argv)
{
  if (argc == 3 && g_str_equal (argv[1], "--store-writer-child"))
    return run_writer_child (argv[2]);

  self_exe = g_file_read_link ("/proc/self/exe", NULL);
  if (self_exe == NULL)
    self_exe = argv[0];

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/mamd/store/txn", test_txn);
  g_test_add_func ("/mamd/store/time-ordered-id", test_time_ordered_id);
#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/mamd/store/round-trip", test_round_trip);
  ADD ("/mamd/store/group-commit", test_group_commit);
  ADD ("/mamd/store/last-seq-after-prune", test_last_seq_after_prune);
  ADD ("/mamd/store/prune-in-seq-order", test_prune_in_seq_order);
  ADD ("/mamd/store/bad-detail", test_bad_detail);
  ADD ("/mamd/store/upgrade-from-1", test_upgrade_from_1);
  ADD ("/mamd/store/locked", test_locked);
  ADD ("/mamd/store/corrupt", test_corrupt);
  ADD ("/mamd/store/corrupt-page", test_corrupt_page);
  ADD ("/mamd/store/newer-schema", test_newer_schema);
  ADD ("/mamd/store/broken", test_broken);
  ADD ("/mamd/store/list-events", test_list_events);
  ADD ("/mamd/store/sigkill", test_sigkill);
#undef ADD
  return g_test_run ();
}
