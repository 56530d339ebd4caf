/*
 * The SQLite state store in normal use: transactions, ids, every record
 * type round-tripped through the file, group commit (acknowledged means
 * visible to another connection), last_seq, pruning and event paging.
 * The file itself (schema upgrades, corruption, locking, failed commits,
 * kill -9) is test-store-file.c.
 */
#include "config.h"

#include <string.h>

#include <sqlite3.h>

#include "mamd-store.h"
#include "mamd-test-store.h"

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
  mamd_store_txn_delete_removed_server (txn, "chat", "device-1", 1001);
  mamd_store_txn_prune_events (txn, 42, 100);
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
  g_assert_cmpint (op->owner_uid, ==, 1001);
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
  /* the same server and device for another uid: a removal of its own */
  MamdRemovedServerRecord rm3 = { g_intern_static_string ("chat"), (char *) "device-2",
                                  NULL, NULL, 20, 1001 };
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
  mamd_store_txn_put_removed_server (txn, &rm3);
  mamd_store_txn_put_wipe (txn, &w1);
  mamd_store_txn_put_wipe (txn, &w2);
  mamd_store_txn_append_event (txn, e1);
  mamd_store_txn_append_event (txn, e2);
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);

  /* deletes and a replacing put */
  txn = mamd_store_txn_new ();
  mamd_store_txn_delete_session (txn, s3->id);
  mamd_store_txn_delete_removed_server (txn, "chat", "device-2", 0);
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

  g_assert_cmpuint (snap->removed_servers->len, ==, 2);
  rm = g_ptr_array_index (snap->removed_servers, 0);
  g_assert_true (rm->server_id == g_intern_string ("chat"));
  g_assert_cmpstr (rm->device_id, ==, "device-1");
  g_assert_cmpstr (rm->object_id, ==, "0b5ed7a2-7c5c-4a53-9a4e-3f1e1d7c2a11");
  g_assert_cmpstr (rm->reason, ==, "enrollment failed");
  g_assert_cmpint (rm->removed, ==, 18);
  g_assert_cmpint (rm->owner_uid, ==, 0);
  /* uid 0's removal of device-2 was deleted, uid 1001's stays */
  rm = g_ptr_array_index (snap->removed_servers, 1);
  g_assert_cmpstr (rm->device_id, ==, "device-2");
  g_assert_cmpint (rm->owner_uid, ==, 1001);

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

    mamd_store_txn_prune_events (txn, 2000, 100);
    commit_sync (fx->store, g_steal_pointer (&txn), &error);
    g_assert_no_error (error);
  }
  reopen (fx);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 1);
  g_assert_cmpuint (((MamdEventRecord *) g_ptr_array_index (events, 0))->seq, ==, 2);
}

/* The policy last announced per server: put replaces, delete forgets. */
static void
test_policies (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdStoreSnapshot) snap = NULL;
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(MamdStoreTxn) txn2 = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;
  MamdPolicyRecord chat = { "chat", TRUE, FALSE, "no licence" };
  MamdPolicyRecord chat2 = { "chat", TRUE, TRUE, "open" };
  MamdPolicyRecord intranet = { "intranet", FALSE, TRUE, "open" };
  const MamdPolicyRecord *got;

  reopen (fx);
  mamd_store_txn_put_policy (txn, &chat);
  mamd_store_txn_put_policy (txn, &intranet);
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);
  mamd_store_txn_put_policy (txn2, &chat2);
  mamd_store_txn_delete_policy (txn2, "intranet");
  commit_sync (fx->store, g_steal_pointer (&txn2), &error);
  g_assert_no_error (error);

  reopen (fx);
  snap = mamd_store_load (fx->store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (snap->policies->len, ==, 1);
  got = g_ptr_array_index (snap->policies, 0);
  g_assert_true (mamd_policy_record_equal (got, &chat2));
  g_assert_false (mamd_policy_record_equal (got, &chat));
  g_assert_cmpstr (got->reason, ==, "open");
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
  mamd_store_txn_prune_events (txn, G_MAXINT64, 100);
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

  mamd_store_txn_prune_events (prune, 30, 100);
  commit_sync (fx->store, g_steal_pointer (&prune), &error);
  g_assert_no_error (error);
  events = mamd_store_list_events (fx->store, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (events->len, ==, 3);
  g_assert_cmpuint (event_seq_at (events, 0), ==, 2);
  g_assert_cmpuint (event_seq_at (events, 1), ==, 3);
  g_assert_cmpuint (event_seq_at (events, 2), ==, 4);
}

/* A backlog goes in bounded steps: at most max_events a commit, still in
 * seq order and never past the first event that is new enough. */
static void
test_prune_bounded (Fixture *fx, gconstpointer data)
{
  static const guint64 first_left[] = { 5, 9, 11, 11 };
  g_autoptr(MamdStoreTxn) txn = mamd_store_txn_new ();
  g_autoptr(GError) error = NULL;

  reopen (fx);
  /* an empty log */
  mamd_store_txn_prune_events (txn, 100, 4);
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);

  txn = mamd_store_txn_new ();
  for (guint i = 1; i <= 12; i++) {
    g_autoptr(MamdEventRecord) ev = make_event (i, i <= 10 ? 10 : 200, NULL);

    mamd_store_txn_append_event (txn, ev);
  }
  commit_sync (fx->store, g_steal_pointer (&txn), &error);
  g_assert_no_error (error);

  for (guint round = 0; round < G_N_ELEMENTS (first_left); round++) {
    g_autoptr(MamdStoreTxn) prune = mamd_store_txn_new ();
    g_autoptr(GPtrArray) events = NULL;

    mamd_store_txn_prune_events (prune, 100, 4);
    commit_sync (fx->store, g_steal_pointer (&prune), &error);
    g_assert_no_error (error);
    events = mamd_store_list_events (fx->store, 0, 0, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (event_seq_at (events, 0), ==, first_left[round]);
    g_assert_cmpuint (event_seq_at (events, events->len - 1), ==, 12);
    g_assert_cmpuint (events->len, ==, 12 - first_left[round] + 1);
  }
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/mamd/store/txn", test_txn);
  g_test_add_func ("/mamd/store/time-ordered-id", test_time_ordered_id);
#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/mamd/store/round-trip", test_round_trip);
  ADD ("/mamd/store/policies", test_policies);
  ADD ("/mamd/store/group-commit", test_group_commit);
  ADD ("/mamd/store/last-seq-after-prune", test_last_seq_after_prune);
  ADD ("/mamd/store/prune-in-seq-order", test_prune_in_seq_order);
  ADD ("/mamd/store/prune-bounded", test_prune_bounded);
  ADD ("/mamd/store/list-events", test_list_events);
#undef ADD
  return g_test_run ();
}
