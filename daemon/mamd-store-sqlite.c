#include "config.h"

#include "mamd-store-sqlite-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mamd-plugin.h"

/*
 * The SQLite store: opening (lock, integrity check, quarantine, schema and
 * its upgrades) and reads. Writes are in mamd-store-sqlite-writer.c: one
 * writer thread owns every write on its own connection. Reads (load,
 * list_events) use a second connection, which WAL lets run beside the
 * writer and which only ever sees committed state.
 */

#define SCHEMA_VERSION 4

/* Version 2, where every new store starts; the steps to the later versions
 * follow and run in order. Rows are keyed so that a sign-in appends: session ids begin
 * with their creation time and the event log is keyed by seq, so a commit
 * of many sign-ins writes few pages. Every table but the event log is
 * WITHOUT ROWID: one B-tree per table, no separate key index. */
static const char schema_sql[] =
  "CREATE TABLE sessions ("
  " id TEXT PRIMARY KEY NOT NULL, server_id TEXT, method TEXT, object_id TEXT,"
  " tenant_id TEXT, user_name TEXT, device_id TEXT, platform TEXT, id_attribute TEXT,"
  " id_source TEXT, reason TEXT, owner_uid INTEGER NOT NULL, state TEXT NOT NULL,"
  " mam_required INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
  " seq INTEGER NOT NULL) WITHOUT ROWID;"
  "CREATE TABLE users ("
  " server_id TEXT NOT NULL, auth_service TEXT NOT NULL, object_id TEXT NOT NULL,"
  " user_name TEXT, created INTEGER NOT NULL,"
  " PRIMARY KEY (server_id, auth_service, object_id)) WITHOUT ROWID;"
  "CREATE TABLE removed_servers ("
  " server_id TEXT NOT NULL, device_id TEXT NOT NULL, object_id TEXT, reason TEXT,"
  " removed INTEGER NOT NULL, PRIMARY KEY (server_id, device_id)) WITHOUT ROWID;"
  "CREATE TABLE wipes ("
  " id TEXT PRIMARY KEY NOT NULL, server_id TEXT, device_id TEXT, object_id TEXT,"
  " session_id TEXT, reason TEXT, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
  " seq INTEGER NOT NULL) WITHOUT ROWID;"
  /* detail: a serialised a{sv} GVariant (version 1 stored its text form) */
  "CREATE TABLE events ("
  " seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, server_id TEXT,"
  " session_id TEXT, decision_id TEXT, detail BLOB);"
  "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER) WITHOUT ROWID;";

/* Version 1 -> 2: the same columns, rebuilt WITHOUT ROWID; the time index
 * goes. Runs inside the transaction that sets user_version. */
static const char upgrade_from_1_sql[] =
  "ALTER TABLE sessions RENAME TO sessions_v1;"
  "ALTER TABLE users RENAME TO users_v1;"
  "ALTER TABLE removed_servers RENAME TO removed_servers_v1;"
  "ALTER TABLE wipes RENAME TO wipes_v1;"
  "ALTER TABLE events RENAME TO events_v1;"
  "ALTER TABLE meta RENAME TO meta_v1;"
  "DROP INDEX IF EXISTS events_time;"
  "%s"
  "INSERT INTO sessions SELECT * FROM sessions_v1;"
  "INSERT INTO users SELECT * FROM users_v1;"
  "INSERT INTO removed_servers SELECT * FROM removed_servers_v1;"
  "INSERT INTO wipes SELECT * FROM wipes_v1;"
  "INSERT INTO events SELECT * FROM events_v1;"
  "INSERT INTO meta SELECT * FROM meta_v1;"
  "DROP TABLE sessions_v1; DROP TABLE users_v1; DROP TABLE removed_servers_v1;"
  "DROP TABLE wipes_v1; DROP TABLE events_v1; DROP TABLE meta_v1;";

/* Version 2 -> 3: a removal and a wipe belong to the uid whose session's
 * enrollment failed, and a removal is that uid's only (keyed by it too).
 * Rows from before take the uid from that session, found through the wipe
 * or the "server-removed" event that name it; -1 where neither is left
 * (administrators only; such a removal still refuses every uid). Never from
 * another session on the device: another uid may have claimed the same
 * device id. */
static const char upgrade_to_3_sql[] =
  "ALTER TABLE removed_servers ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT -1;"
  "ALTER TABLE wipes ADD COLUMN owner_uid INTEGER NOT NULL DEFAULT -1;"
  "UPDATE wipes SET owner_uid = coalesce("
  " (SELECT owner_uid FROM sessions WHERE sessions.id = wipes.session_id), -1);"
  "UPDATE removed_servers SET owner_uid = coalesce("
  " (SELECT s.owner_uid FROM wipes w JOIN sessions s ON s.id = w.session_id"
  "  WHERE w.server_id = removed_servers.server_id AND w.device_id = removed_servers.device_id"
  "  ORDER BY w.created DESC LIMIT 1),"
  " (SELECT s.owner_uid FROM events e JOIN sessions s ON s.id = e.session_id"
  "  WHERE e.type = 'server-removed' AND e.server_id = removed_servers.server_id"
  "  AND s.device_id = removed_servers.device_id ORDER BY e.seq DESC LIMIT 1),"
  " -1);"
  /* the key's columns first: SQLite 3.40's quick_check misreads NOT NULL
   * columns of a WITHOUT ROWID table whose key columns are not leading */
  "CREATE TABLE removed_servers_v3 ("
  " server_id TEXT NOT NULL, device_id TEXT NOT NULL, owner_uid INTEGER NOT NULL,"
  " object_id TEXT, reason TEXT, removed INTEGER NOT NULL,"
  " PRIMARY KEY (server_id, device_id, owner_uid)) WITHOUT ROWID;"
  "INSERT INTO removed_servers_v3 (server_id, device_id, owner_uid, object_id, reason, removed)"
  " SELECT server_id, device_id, owner_uid, object_id, reason, removed FROM removed_servers;"
  "DROP TABLE removed_servers;"
  "ALTER TABLE removed_servers_v3 RENAME TO removed_servers;";

/* Version 3 -> 4: the policy last announced for each server (PolicyChanged),
 * so that a change made while mamd was stopped is announced at its start.
 * A store from before has none: its first start announces every server. */
static const char upgrade_to_4_sql[] =
  "CREATE TABLE policies ("
  " server_id TEXT PRIMARY KEY NOT NULL, mam_applies INTEGER NOT NULL,"
  " gate_open INTEGER NOT NULL, reason TEXT NOT NULL) WITHOUT ROWID;";

G_DEFINE_FINAL_TYPE (MamdStoreSqlite, mamd_store_sqlite, MAMD_TYPE_STORE)

/* ---- helpers ---- */

static char *
column_dup (sqlite3_stmt *stmt, int index)
{
  return g_strdup ((const char *) sqlite3_column_text (stmt, index));
}

static const char *
column_intern (sqlite3_stmt *stmt, int index)
{
  return g_intern_string ((const char *) sqlite3_column_text (stmt, index));
}

gboolean
mamd_store_sqlite_exec (sqlite3 *db, const char *sql, GError **error)
{
  char *msg = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE, "%s",
                 msg != NULL ? msg : sqlite3_errmsg (db));
    sqlite3_free (msg);
    return FALSE;
  }
  return TRUE;
}

static gboolean
set_read_error (MamdStoreSqlite *self, GError **error)
{
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "could not read state from %s: %s: check the file or restore a backup",
               self->db_path, sqlite3_errmsg (self->reader));
  return FALSE;
}

/* Details are stored little-endian, so the file reads the same on every
 * host; the same call turns them back. */
GVariant *
mamd_store_sqlite_detail_for_file (GVariant *detail)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  return g_variant_byteswap (detail);
#else
  return g_variant_ref (detail);
#endif
}

/* a serialised a{sv}, or its text form in events from schema version 1 */
static GVariant *
column_detail (sqlite3_stmt *stmt, int index, GError **error)
{
  gsize size = (gsize) sqlite3_column_bytes (stmt, index);
  const char *text;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) detail = NULL;

  switch (sqlite3_column_type (stmt, index)) {
  case SQLITE_NULL:
    return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  case SQLITE_TEXT:
    text = (const char *) sqlite3_column_text (stmt, index);
    size = (gsize) sqlite3_column_bytes (stmt, index);
    /* g_variant_parse() can fail on bad UTF-8 without saying why */
    if (!g_utf8_validate (text, (gssize) size, NULL)) {
      g_set_error_literal (error, G_VARIANT_PARSE_ERROR, G_VARIANT_PARSE_ERROR_FAILED,
                           "text that is not UTF-8");
      return NULL;
    }
    return g_variant_parse (G_VARIANT_TYPE_VARDICT, text, text + size, NULL, error);
  case SQLITE_BLOB:
    bytes = g_bytes_new (sqlite3_column_blob (stmt, index), size);
    detail = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes, FALSE));
    /* the file is outside input: only a canonical serialisation is accepted */
    if (!g_variant_is_normal_form (detail)) {
      g_set_error_literal (error, G_VARIANT_PARSE_ERROR, G_VARIANT_PARSE_ERROR_FAILED,
                           "not a serialised a{sv} dictionary");
      return NULL;
    }
    return mamd_store_sqlite_detail_for_file (detail);
  default:
    g_set_error_literal (error, G_VARIANT_PARSE_ERROR, G_VARIANT_PARSE_ERROR_FAILED,
                         "neither text nor a blob");
    return NULL;
  }
}

static MamdEventRecord *
event_from_row (MamdStoreSqlite *self, sqlite3_stmt *stmt, GError **error)
{
  g_autoptr(MamdEventRecord) rec = mamd_event_record_new ();
  g_autoptr(GError) detail_error = NULL;

  rec->seq = (guint64) sqlite3_column_int64 (stmt, 0);
  rec->time = sqlite3_column_int64 (stmt, 1);
  rec->type = column_dup (stmt, 2);
  rec->server_id = column_dup (stmt, 3);
  rec->session_id = column_dup (stmt, 4);
  rec->decision_id = column_dup (stmt, 5);
  rec->detail = column_detail (stmt, 6, &detail_error);
  if (rec->detail == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not read event %" G_GUINT64_FORMAT " from %s: bad detail: %s",
                 rec->seq, self->db_path, detail_error->message);
    return NULL;
  }
  return g_steal_pointer (&rec);
}

static GPtrArray *
mamd_store_sqlite_list_events (MamdStore *store, guint64 after_seq, guint limit,
                               GError **error)
{
  MamdStoreSqlite *self = MAMD_STORE_SQLITE (store);
  g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func (
    (GDestroyNotify) mamd_event_record_free);
  /* callers on any thread share the reader and its cached statement */
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->read_lock);
  sqlite3_stmt *stmt = self->events_stmt;
  int rc;

  sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) after_seq);
  /* a limit of 0 means no limit; a negative LIMIT is unlimited in SQLite */
  sqlite3_bind_int64 (stmt, 2, limit == 0 ? -1 : (sqlite3_int64) limit);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    MamdEventRecord *rec = event_from_row (self, stmt, error);

    if (rec == NULL) {
      sqlite3_reset (stmt);
      return NULL;
    }
    g_ptr_array_add (events, rec);
  }
  sqlite3_reset (stmt);
  if (rc != SQLITE_DONE) {
    set_read_error (self, error);
    return NULL;
  }
  return g_steal_pointer (&events);
}

/* ---- load ---- */

static sqlite3_stmt *
prepare_read (MamdStoreSqlite *self, const char *sql, GError **error)
{
  sqlite3_stmt *stmt = NULL;

  if (sqlite3_prepare_v2 (self->reader, sql, -1, &stmt, NULL) != SQLITE_OK) {
    set_read_error (self, error);
    return NULL;
  }
  return stmt;
}

typedef gpointer (*RowFunc) (MamdStoreSqlite *self, sqlite3_stmt *stmt, GError **error);

/* Another program may have written the file: text goes into GVariant
 * strings (signals, events, replies), so the first @n_columns columns must
 * hold UTF-8 without a NUL, a number or NULL. */
static gboolean
check_text (MamdStoreSqlite *self, sqlite3_stmt *stmt, const char *what, int n_columns,
            GError **error)
{
  for (int i = 0; i < n_columns; i++) {
    const char *text;
    const char *key;
    int type = sqlite3_column_type (stmt, i);

    if (type != SQLITE_TEXT && type != SQLITE_BLOB)
      continue;
    text = (const char *) sqlite3_column_text (stmt, i);
    if (text == NULL || g_utf8_validate_len (text, (gsize) sqlite3_column_bytes (stmt, i), NULL))
      continue;
    key = (const char *) sqlite3_column_text (stmt, 0);
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not read %s %s from %s: %s is not UTF-8 text: restore a backup", what,
                 i > 0 && key != NULL && g_utf8_validate (key, -1, NULL) ? key : "(unreadable)",
                 self->db_path, sqlite3_column_name (stmt, i));
    return FALSE;
  }
  return TRUE;
}

/* Every row of @sql, each column of it checked by check_text(). */
static GPtrArray *
read_table (MamdStoreSqlite *self, const char *sql, const char *what, RowFunc row_func,
            GDestroyNotify free_func, GError **error)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func (free_func);
  sqlite3_stmt *stmt = prepare_read (self, sql, error);
  int rc;

  if (stmt == NULL)
    return NULL;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
    gpointer row = check_text (self, stmt, what, sqlite3_column_count (stmt), error)
                     ? row_func (self, stmt, error)
                     : NULL;

    if (row == NULL) {
      sqlite3_finalize (stmt);
      return NULL;
    }
    g_ptr_array_add (rows, row);
  }
  if (rc != SQLITE_DONE) {
    set_read_error (self, error);
    sqlite3_finalize (stmt);
    return NULL;
  }
  sqlite3_finalize (stmt);
  return g_steal_pointer (&rows);
}

/* Another program may have written the file, even with a schema of its own:
 * a row without a value the engine relies on (a key, what a session's
 * events and signals carry) is refused by name, never handed on. */
static gboolean
check_not_null (MamdStoreSqlite *self, sqlite3_stmt *stmt, const char *what, const int *columns,
                gsize n_columns, GError **error)
{
  for (gsize i = 0; i < n_columns; i++) {
    const char *key = (const char *) sqlite3_column_text (stmt, 0);

    if (sqlite3_column_type (stmt, columns[i]) != SQLITE_NULL)
      continue;
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not read %s %s from %s: no %s (NULL): restore a backup", what,
                 key != NULL ? key : "without an id", self->db_path,
                 sqlite3_column_name (stmt, columns[i]));
    return FALSE;
  }
  return TRUE;
}

/* A session or wipe id names a D-Bus object path or is looked up as one. */
static gboolean
check_id (MamdStoreSqlite *self, sqlite3_stmt *stmt, const char *what, GError **error)
{
  const char *id = (const char *) sqlite3_column_text (stmt, 0);

  if (mamd_id_is_valid (id))
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "could not read a %s from %s: its id is not 32 lowercase hex characters: "
               "restore a backup", what, self->db_path);
  return FALSE;
}

static gpointer
session_from_row (MamdStoreSqlite *self, sqlite3_stmt *stmt, GError **error)
{
  /* id, server_id, method, object_id, device_id, platform */
  static const int required[] = { 0, 1, 2, 3, 6, 7 };
  g_autoptr(MamdSessionRecord) rec = NULL;
  const char *state = (const char *) sqlite3_column_text (stmt, 12);

  if (!check_not_null (self, stmt, "session", required, G_N_ELEMENTS (required), error) ||
      !check_id (self, stmt, "session", error))
    return NULL;
  rec = mamd_session_record_new ();

  rec->id = column_dup (stmt, 0);
  rec->server_id = column_intern (stmt, 1);
  rec->method = column_intern (stmt, 2);
  rec->object_id = column_dup (stmt, 3);
  rec->tenant_id = column_intern (stmt, 4);
  rec->user_name = column_dup (stmt, 5);
  rec->device_id = column_dup (stmt, 6);
  rec->platform = column_intern (stmt, 7);
  rec->id_attribute = column_intern (stmt, 8);
  rec->id_source = column_intern (stmt, 9);
  rec->reason = column_intern (stmt, 10);
  rec->owner_uid = (guint32) sqlite3_column_int64 (stmt, 11);
  if (!mamd_session_state_from_string (state, &rec->state)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not read session %s from %s: unknown state '%s': "
                 "restore a backup or a matching mamd version",
                 rec->id, self->db_path, state != NULL ? state : "");
    return NULL;
  }
  rec->mam_required = sqlite3_column_int (stmt, 13) != 0;
  rec->created = sqlite3_column_int64 (stmt, 14);
  rec->updated = sqlite3_column_int64 (stmt, 15);
  rec->seq = (guint64) sqlite3_column_int64 (stmt, 16);
  return g_steal_pointer (&rec);
}

static gpointer
user_from_row (MamdStoreSqlite *self, sqlite3_stmt *stmt, GError **error)
{
  MamdUserRecord *rec = mamd_user_record_new ();

  rec->server_id = column_intern (stmt, 0);
  rec->auth_service = column_intern (stmt, 1);
  rec->object_id = column_dup (stmt, 2);
  rec->user_name = column_dup (stmt, 3);
  rec->created = sqlite3_column_int64 (stmt, 4);
  return rec;
}

static gpointer
removed_server_from_row (MamdStoreSqlite *self, sqlite3_stmt *stmt, GError **error)
{
  MamdRemovedServerRecord *rec = mamd_removed_server_record_new ();

  rec->server_id = column_intern (stmt, 0);
  rec->device_id = column_dup (stmt, 1);
  rec->object_id = column_dup (stmt, 2);
  rec->reason = column_dup (stmt, 3);
  rec->removed = sqlite3_column_int64 (stmt, 4);
  rec->owner_uid = sqlite3_column_int64 (stmt, 5);
  return rec;
}

static gpointer
wipe_from_row (MamdStoreSqlite *self, sqlite3_stmt *stmt, GError **error)
{
  static const int required[] = { 0 }; /* id */
  MamdWipeRecord *rec;

  if (!check_not_null (self, stmt, "wipe", required, G_N_ELEMENTS (required), error) ||
      !check_id (self, stmt, "wipe", error))
    return NULL;
  rec = mamd_wipe_record_new ();

  rec->id = column_dup (stmt, 0);
  rec->server_id = column_intern (stmt, 1);
  rec->device_id = column_dup (stmt, 2);
  rec->object_id = column_dup (stmt, 3);
  rec->session_id = column_dup (stmt, 4);
  rec->reason = column_dup (stmt, 5);
  rec->created = sqlite3_column_int64 (stmt, 6);
  rec->expires = sqlite3_column_int64 (stmt, 7);
  rec->seq = (guint64) sqlite3_column_int64 (stmt, 8);
  rec->owner_uid = sqlite3_column_int64 (stmt, 9);
  return rec;
}

static gpointer
policy_from_row (MamdStoreSqlite *self, sqlite3_stmt *stmt, GError **error)
{
  static const int required[] = { 0, 3 }; /* server_id, reason */
  MamdPolicyRecord *rec;

  if (!check_not_null (self, stmt, "policy of server", required, G_N_ELEMENTS (required),
                       error))
    return NULL;
  rec = mamd_policy_record_new ();
  rec->server_id = column_intern (stmt, 0);
  rec->mam_applies = sqlite3_column_int (stmt, 1) != 0;
  rec->gate_open = sqlite3_column_int (stmt, 2) != 0;
  rec->reason = column_dup (stmt, 3);
  return rec;
}

static gboolean
read_last_seq (MamdStoreSqlite *self, guint64 *out, GError **error)
{
  sqlite3_stmt *stmt = prepare_read (self,
    "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'last_seq'), 0),"
    " coalesce((SELECT max(seq) FROM events), 0))", error);
  gboolean ok;

  if (stmt == NULL)
    return FALSE;
  ok = sqlite3_step (stmt) == SQLITE_ROW;
  if (ok)
    *out = (guint64) sqlite3_column_int64 (stmt, 0);
  else
    set_read_error (self, error);
  sqlite3_finalize (stmt);
  return ok;
}

static gboolean
load_tables (MamdStoreSqlite *self, MamdStoreSnapshot *snapshot, GError **error)
{
  snapshot->sessions = read_table (self,
    "SELECT id, server_id, method, object_id, tenant_id, user_name, device_id, platform,"
    " id_attribute, id_source, reason, owner_uid, state, mam_required, created, updated,"
    " seq FROM sessions", "session", session_from_row,
    (GDestroyNotify) mamd_session_record_free, error);
  if (snapshot->sessions == NULL)
    return FALSE;
  snapshot->users = read_table (self,
    "SELECT server_id, auth_service, object_id, user_name, created FROM users", "user",
    user_from_row, (GDestroyNotify) mamd_user_record_free, error);
  if (snapshot->users == NULL)
    return FALSE;
  snapshot->removed_servers = read_table (self,
    "SELECT server_id, device_id, object_id, reason, removed, owner_uid FROM removed_servers",
    "removal of server", removed_server_from_row,
    (GDestroyNotify) mamd_removed_server_record_free, error);
  if (snapshot->removed_servers == NULL)
    return FALSE;
  snapshot->wipes = read_table (self,
    "SELECT id, server_id, device_id, object_id, session_id, reason, created, expires,"
    " seq, owner_uid FROM wipes", "wipe", wipe_from_row,
    (GDestroyNotify) mamd_wipe_record_free, error);
  if (snapshot->wipes == NULL)
    return FALSE;
  snapshot->policies = read_table (self,
    "SELECT server_id, mam_applies, gate_open, reason FROM policies", "policy of server",
    policy_from_row, (GDestroyNotify) mamd_policy_record_free, error);
  if (snapshot->policies == NULL)
    return FALSE;
  return read_last_seq (self, &snapshot->last_seq, error);
}

static MamdStoreSnapshot *
mamd_store_sqlite_load (MamdStore *store, GError **error)
{
  MamdStoreSqlite *self = MAMD_STORE_SQLITE (store);
  g_autoptr(MamdStoreSnapshot) snapshot = g_new0 (MamdStoreSnapshot, 1);
  /* callers on any thread share the reader and its cached statement */
  G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&self->read_lock);
  g_autoptr(GError) local_error = NULL;
  gboolean ok;

  /* one read transaction: every table from the same committed state */
  if (!mamd_store_sqlite_exec (self->reader, "BEGIN", &local_error)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not read state from %s: %s", self->db_path, local_error->message);
    return NULL;
  }
  ok = load_tables (self, snapshot, error);
  mamd_store_sqlite_exec (self->reader, "COMMIT", NULL);
  if (!ok)
    return NULL;
  return g_steal_pointer (&snapshot);
}

/* ---- open ---- */

static gboolean
take_lock (MamdStoreSqlite *self, const char *state_dir, GError **error)
{
  g_autofree char *lock_path = g_build_filename (state_dir, "state.lock", NULL);
  g_autofree char *pid_text = NULL;
  int saved_errno;

  self->lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (self->lock_fd < 0) {
    saved_errno = errno;
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not open state store lock %s: %s: check the state directory's "
                 "owner and permissions", lock_path, g_strerror (saved_errno));
    return FALSE;
  }
  if (flock (self->lock_fd, LOCK_EX | LOCK_NB) < 0) {
    char buf[32] = { 0 };
    ssize_t n;

    saved_errno = errno;
    if (saved_errno != EWOULDBLOCK) {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                   "could not lock state store %s: %s", lock_path, g_strerror (saved_errno));
      return FALSE;
    }
    n = pread (self->lock_fd, buf, sizeof buf - 1, 0);
    pid_text = g_strstrip (g_strndup (buf, n > 0 ? (gsize) n : 0));
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "state store %s is in use by another mamd (pid %s): stop it first or "
                 "give this one another state directory",
                 state_dir, pid_text[0] != '\0' ? pid_text : "unknown");
    return FALSE;
  }
  pid_text = g_strdup_printf ("%d\n", (int) getpid ());
  if (ftruncate (self->lock_fd, 0) < 0 ||
      pwrite (self->lock_fd, pid_text, strlen (pid_text), 0) < 0)
    g_debug ("could not write pid to %s: %s", lock_path, g_strerror (errno));
  return TRUE;
}

static sqlite3 *
open_connection (const char *path, GError **error)
{
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2 (path, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);

  if (rc != SQLITE_OK) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not open state store %s: %s: check the state directory's "
                 "owner and permissions",
                 path, db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
    sqlite3_close_v2 (db);
    return NULL;
  }
  sqlite3_busy_timeout (db, MAMD_STORE_SQLITE_BUSY_TIMEOUT_MS);
  return db;
}

/* Returns SQLITE_OK when the file is sound, SQLITE_CORRUPT (with @problem)
 * when it is not a database or fails the check, another code otherwise. */
static int
check_integrity (sqlite3 *db, char **problem)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (db, "PRAGMA quick_check", -1, &stmt, NULL);

  if (rc == SQLITE_OK) {
    rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
      const char *result = (const char *) sqlite3_column_text (stmt, 0);

      rc = g_strcmp0 (result, "ok") == 0 ? SQLITE_OK : SQLITE_CORRUPT;
      if (rc != SQLITE_OK) {
        /* the report spans lines; keep the error on one line and short */
        *problem = g_strdup_printf ("integrity check: %.200s", result != NULL ? result : "");
        g_strdelimit (*problem, "\n", ' ');
      }
    }
  }
  if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT) {
    if (*problem == NULL)
      *problem = g_strdup (sqlite3_errmsg (db));
    rc = SQLITE_CORRUPT;
  }
  sqlite3_finalize (stmt);
  return rc;
}

static void
quarantine (MamdStoreSqlite *self, const char *problem, GError **error)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *target = g_strdup_printf ("%s.corrupt-%" G_GINT64_FORMAT, self->db_path, now);
  static const char *const suffixes[] = { "-wal", "-shm" };
  int saved_errno;

  /* never overwrite an earlier quarantined file */
  for (guint n = 1; g_file_test (target, G_FILE_TEST_EXISTS); n++) {
    g_free (target);
    target = g_strdup_printf ("%s.corrupt-%" G_GINT64_FORMAT ".%u", self->db_path, now, n);
  }
  if (g_rename (self->db_path, target) < 0) {
    saved_errno = errno;
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "state store %s is corrupt (%s) and could not be moved to %s: %s: "
                 "move it away by hand, then restart mamd to begin with an empty store "
                 "or restore a backup",
                 self->db_path, problem, target, g_strerror (saved_errno));
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *from = g_strconcat (self->db_path, suffixes[i], NULL);
    g_autofree char *to = g_strconcat (target, suffixes[i], NULL);

    if (g_rename (from, to) < 0 && errno != ENOENT)
      g_message ("could not move %s to %s: %s", from, to, g_strerror (errno));
  }
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "state store %s is corrupt (%s): moved it to %s; restore a backup to %s, "
               "or move %s out of the state directory to begin with an empty store",
               self->db_path, problem, target, self->db_path, target);
}

/* A quarantined store ("state.db.corrupt-*") in @state_dir, or NULL. */
static char *
find_quarantined (const char *state_dir)
{
  g_autoptr(GDir) dir = g_dir_open (state_dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    if (g_str_has_prefix (name, "state.db.corrupt-") && !g_str_has_suffix (name, "-wal") &&
        !g_str_has_suffix (name, "-shm"))
      return g_build_filename (state_dir, name, NULL);
  }
  return NULL;
}

/* After a quarantine nothing is left where the store was: starting again
 * (systemd restarts mamd) would silently begin with an empty store, losing
 * removals and pending wipes. An administrator decides instead. */
static gboolean
check_not_quarantined (MamdStoreSqlite *self, const char *state_dir, GError **error)
{
  g_autofree char *quarantined = NULL;

  if (g_file_test (self->db_path, G_FILE_TEST_EXISTS))
    return TRUE;
  quarantined = find_quarantined (state_dir);
  if (quarantined == NULL)
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "state directory %s holds the quarantined store %s and no %s: mamd does "
               "not begin with an empty store on its own; restore a backup to %s, or move "
               "%s out of the state directory to begin with an empty store",
               state_dir, quarantined, self->db_path, self->db_path, quarantined);
  return FALSE;
}

static gboolean
query_int (sqlite3 *db, const char *sql, gint64 *out)
{
  sqlite3_stmt *stmt = NULL;
  gboolean ok = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) == SQLITE_OK &&
                sqlite3_step (stmt) == SQLITE_ROW;

  if (ok)
    *out = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  return ok;
}

static gboolean
setup_schema (MamdStoreSqlite *self, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *set_version = NULL;
  g_autofree char *upgrade = NULL;
  sqlite3_stmt *stmt = NULL;
  gboolean wal;
  gint64 version = 0;

  /* a store from a newer mamd is refused before anything in it changes */
  if (!query_int (self->db, "PRAGMA user_version", &version)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE, "could not read state store %s: %s",
                 self->db_path, sqlite3_errmsg (self->db));
    return FALSE;
  }
  if (version > SCHEMA_VERSION) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "state store %s has schema version %" G_GINT64_FORMAT ", newer than this "
                 "mamd understands (%d): run a newer mamd or restore a backup",
                 self->db_path, version, SCHEMA_VERSION);
    return FALSE;
  }
  /* SQLite opens a file it may not write read-only without a word */
  if (sqlite3_db_readonly (self->db, "main") != 0) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "state store %s is read-only for mamd: check the owner and permissions of "
                 "the file and of its directory", self->db_path);
    return FALSE;
  }

  /* WAL lets readers run beside the writer; FULL makes every commit durable */
  if (sqlite3_prepare_v2 (self->db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL) != SQLITE_OK ||
      sqlite3_step (stmt) != SQLITE_ROW) {
    sqlite3_finalize (stmt);
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE, "could not set up state store %s: %s",
                 self->db_path, sqlite3_errmsg (self->db));
    return FALSE;
  }
  wal = g_ascii_strcasecmp ((const char *) sqlite3_column_text (stmt, 0), "wal") == 0;
  sqlite3_finalize (stmt);
  if (!wal) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not switch state store %s to WAL mode: use a local file system",
                 self->db_path);
    return FALSE;
  }
  if (!mamd_store_sqlite_exec (self->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF",
                               &local_error)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE, "could not set up state store %s: %s",
                 self->db_path, local_error->message);
    return FALSE;
  }
  if (version == SCHEMA_VERSION)
    return TRUE;
  /* to version 2, then every later step */
  if (version == 1)
    upgrade = g_strdup_printf (upgrade_from_1_sql, schema_sql);
  set_version = g_strdup_printf ("BEGIN IMMEDIATE; %s %s %s PRAGMA user_version=%d; COMMIT",
                                 version == 0 ? schema_sql : version == 1 ? upgrade : "",
                                 version < 3 ? upgrade_to_3_sql : "", upgrade_to_4_sql,
                                 SCHEMA_VERSION);
  if (!mamd_store_sqlite_exec (self->db, set_version, &local_error)) {
    mamd_store_sqlite_exec (self->db, "ROLLBACK", NULL);
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not %s the schema of state store %s: %s",
                 version > 0 ? "upgrade" : "create", self->db_path, local_error->message);
    return FALSE;
  }
  if (version > 0)
    g_message ("state store %s upgraded from schema version %" G_GINT64_FORMAT " to %d",
               self->db_path, version, SCHEMA_VERSION);
  return TRUE;
}

static gboolean
prepare_statements (MamdStoreSqlite *self, GError **error)
{
  if (!mamd_store_sqlite_prepare_writer (self, error))
    return FALSE;
  self->reader = open_connection (self->db_path, error);
  if (self->reader == NULL)
    return FALSE;
  /* the reader must never write, whatever a bug asks of it */
  if (!mamd_store_sqlite_exec (self->reader, "PRAGMA query_only=1", NULL) ||
      sqlite3_prepare_v3 (self->reader,
                          "SELECT seq, time, type, server_id, session_id, decision_id, detail"
                          " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", -1,
                          SQLITE_PREPARE_PERSISTENT, &self->events_stmt, NULL) != SQLITE_OK) {
    set_read_error (self, error);
    return FALSE;
  }
  return TRUE;
}

/* Every store carries a random id in meta, set once, never changed. */
#define STORE_ID_SQL "SELECT value FROM meta WHERE key = 'store_id'"

/* The store's id as state.db alone has it, without its write-ahead log; 0
 * when that cannot be told (a store that predates the id, say). */
static gint64
file_store_id (MamdStoreSqlite *self)
{
  g_autofree char *escaped = g_uri_escape_string (self->db_path, "/", TRUE);
  g_autofree char *uri = g_strconcat ("file:", escaped, "?immutable=1", NULL);
  sqlite3 *db = NULL;
  gint64 id = 0;

  /* immutable: the file only, no lock, no log, nothing written */
  if (sqlite3_open_v2 (uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW,
                       NULL) == SQLITE_OK &&
      !query_int (db, STORE_ID_SQL, &id))
    id = 0;
  sqlite3_close_v2 (db);
  return id;
}

/* SQLite applies any state.db-wal to state.db, whichever database wrote it,
 * and copies it in at the next checkpoint: a log of another store (left
 * beside a restored backup, copied in with the wrong file) would replace
 * this one's rows for good. Called with checkpoints on close turned off. */
static gboolean
check_log_belongs (MamdStoreSqlite *self, gint64 file_id, GError **error)
{
  gint64 log_id = 0;

  if (file_id == 0 || (query_int (self->db, STORE_ID_SQL, &log_id) && log_id == file_id))
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "the write-ahead log %s-wal belongs to another database than state store %s "
               "(their store ids differ): mamd changed neither; move %s-wal and %s-shm out "
               "of the state directory to start from %s as it is",
               self->db_path, self->db_path, self->db_path, self->db_path, self->db_path);
  return FALSE;
}

/* SQLite takes a state.db of 0 bytes, or none, for a new database, and
 * deletes a write-ahead log it finds beside it with every commit in it: an
 * emptied store is quarantined like a corrupt one, a missing one beside its
 * log refused. (mamd writes the first page of a new state.db before it
 * answers anything: only a kill in that instant leaves 0 bytes of its own.) */
static gboolean
check_not_emptied (MamdStoreSqlite *self, GError **error)
{
  g_autofree char *wal_path = g_strconcat (self->db_path, "-wal", NULL);
  GStatBuf st;

  if (g_lstat (self->db_path, &st) == 0) {
    if (!S_ISREG (st.st_mode) || st.st_size > 0)
      return TRUE;
    quarantine (self, "an empty file of 0 bytes", error);
    return FALSE;
  }
  if (errno != ENOENT || g_lstat (wal_path, &st) < 0)
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
               "state store %s is missing but its write-ahead log %s is there: put "
               "state.db back; otherwise move %s and %s-shm out of the state directory, "
               "then restore a backup or start mamd to begin with an empty store",
               self->db_path, wal_path, wal_path, self->db_path);
  return FALSE;
}

/* umask 077 covers the files mamd creates, but SQLite gives the log and its
 * index the mode of state.db: one restored readable by others (a copy made
 * under umask 022) would make them readable too. */
static void
make_private (MamdStoreSqlite *self)
{
  static const char *const suffixes[] = { "", "-wal", "-shm" };

  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++) {
    g_autofree char *path = g_strconcat (self->db_path, suffixes[i], NULL);
    GStatBuf st;

    if (g_lstat (path, &st) < 0 || !S_ISREG (st.st_mode) || (st.st_mode & 077) == 0)
      continue;
    if (g_chmod (path, st.st_mode & 0700) < 0)
      g_message ("could not make %s private (mode %o): %s", path,
                 (guint) (st.st_mode & 0777), g_strerror (errno));
  }
}

static gboolean
open_database (MamdStoreSqlite *self, GError **error)
{
  g_autofree char *problem = NULL;
  g_autofree char *wal_path = NULL;
  g_autoptr(GError) local_error = NULL;
  GStatBuf st;
  gint64 file_id = 0;
  int rc;

  if (!check_not_emptied (self, error))
    return FALSE;
  make_private (self);
  wal_path = g_strconcat (self->db_path, "-wal", NULL);
  if (g_stat (wal_path, &st) == 0 && st.st_size > 0)
    file_id = file_store_id (self);
  self->db = open_connection (self->db_path, error);
  if (self->db == NULL)
    return FALSE;
  /* nothing of the log reaches state.db before it is known to be sound */
  sqlite3_db_config (self->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  rc = check_integrity (self->db, &problem);
  if (rc == SQLITE_CORRUPT) {
    g_clear_pointer (&self->db, sqlite3_close_v2);
    quarantine (self, problem, error);
    return FALSE;
  }
  if (rc != SQLITE_OK) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not check state store %s: %s: check the file's owner, "
                 "permissions and the disk", self->db_path, sqlite3_errmsg (self->db));
    return FALSE;
  }
  if (!check_log_belongs (self, file_id, error))
    return FALSE;
  sqlite3_db_config (self->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
  if (!setup_schema (self, error))
    return FALSE;
  if (!mamd_store_sqlite_exec (self->db,
                               "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id',"
                               " (random () & 9223372036854775807) | 1)", &local_error)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE, "could not set up state store %s: %s",
                 self->db_path, local_error->message);
    return FALSE;
  }
  return prepare_statements (self, error);
}

MamdStore *
mamd_store_sqlite_open (const char *state_dir, GError **error)
{
  g_autoptr(MamdStoreSqlite) self = NULL;
  g_autoptr(GError) thread_error = NULL;
  int saved_errno;

  g_return_val_if_fail (state_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_mkdir_with_parents (state_dir, 0700) < 0) {
    saved_errno = errno;
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not create state directory %s: %s: check its parent's owner "
                 "and permissions", state_dir, g_strerror (saved_errno));
    return NULL;
  }
  self = g_object_new (MAMD_TYPE_STORE_SQLITE, NULL);
  self->db_path = g_build_filename (state_dir, "state.db", NULL);
  if (!take_lock (self, state_dir, error) || !check_not_quarantined (self, state_dir, error) ||
      !open_database (self, error))
    return NULL;

  self->writer = g_thread_try_new ("mamd-store", mamd_store_sqlite_writer_thread, self, &thread_error);
  if (self->writer == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_STORE,
                 "could not start the state store writer: %s", thread_error->message);
    return NULL;
  }
  return MAMD_STORE (g_steal_pointer (&self));
}

static void
mamd_store_sqlite_dispose (GObject *object)
{
  MamdStoreSqlite *self = MAMD_STORE_SQLITE (object);

  if (self->writer != NULL) {
    g_mutex_lock (&self->lock);
    self->stopping = TRUE;
    g_cond_signal (&self->work_cond);
    g_mutex_unlock (&self->lock);
    /* the thread drains the queue before it exits */
    g_thread_join (g_steal_pointer (&self->writer));
  }
  G_OBJECT_CLASS (mamd_store_sqlite_parent_class)->dispose (object);
}

static void
mamd_store_sqlite_finalize (GObject *object)
{
  MamdStoreSqlite *self = MAMD_STORE_SQLITE (object);

  for (guint i = 0; i < N_STMTS; i++)
    sqlite3_finalize (self->stmts[i]);
  sqlite3_finalize (self->events_stmt);
  if (self->reader != NULL)
    sqlite3_close_v2 (self->reader);
  if (self->db != NULL)
    sqlite3_close_v2 (self->db);
  /* closing the descriptor releases the flock */
  if (self->lock_fd >= 0)
    close (self->lock_fd);
  g_clear_error (&self->broken);
  g_free (self->db_path);
  g_mutex_clear (&self->read_lock);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->work_cond);
  g_cond_clear (&self->idle_cond);
  G_OBJECT_CLASS (mamd_store_sqlite_parent_class)->finalize (object);
}

static void
mamd_store_sqlite_class_init (MamdStoreSqliteClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  MamdStoreClass *store_class = MAMD_STORE_CLASS (klass);

  object_class->dispose = mamd_store_sqlite_dispose;
  object_class->finalize = mamd_store_sqlite_finalize;
  store_class->load = mamd_store_sqlite_load;
  store_class->commit_async = mamd_store_sqlite_commit_async;
  store_class->commit_finish = mamd_store_sqlite_commit_finish;
  store_class->list_events = mamd_store_sqlite_list_events;
  store_class->flush = mamd_store_sqlite_flush;
}

static void
mamd_store_sqlite_init (MamdStoreSqlite *self)
{
  self->lock_fd = -1;
  g_mutex_init (&self->read_lock);
  g_mutex_init (&self->lock);
  g_cond_init (&self->work_cond);
  g_cond_init (&self->idle_cond);
  g_queue_init (&self->queue);
}
