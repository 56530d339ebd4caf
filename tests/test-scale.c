/*
 * mamd at the scale of a large deployment: what an operator meets with tens
 * of thousands of sessions. Sessions are written to the state store before
 * mamd starts (as a restart would find them), so the tests do not spend
 * their time signing in.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "mamd-store.h"
#include "mamd-test-daemon.h"

#define SERVER "chat"

static void
commit_cb (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GError **error = user_data;

  if (!mamd_store_commit_finish (MAMD_STORE (source), res, error) && *error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "commit failed");
  if (*error == NULL)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_EXISTS, "done");
}

/* @n live sessions of SERVER as a MAM sign-in through "test" leaves them
 * (enrollment-required), owned by this uid, each with a device id of
 * @device_id_len bytes. */
static void
write_sessions (MamdTestDaemon *d, guint n, gsize device_id_len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdStore) store = mamd_store_sqlite_open (mamd_test_daemon_get_state_dir (d),
                                                       &error);
  MamdStoreTxn *txn = mamd_store_txn_new ();

  g_assert_no_error (error);
  for (guint i = 0; i < n; i++) {
    g_autoptr(MamdSessionRecord) rec = mamd_session_record_new ();
    g_autofree char *pad = g_strnfill (device_id_len, 'd');

    rec->id = g_strdup_printf ("%032x", i + 1);
    rec->server_id = g_intern_static_string (SERVER);
    rec->method = g_intern_static_string ("test");
    rec->object_id = g_strdup_printf ("%08x-0000-4000-8000-000000000000", i + 1);
    rec->tenant_id = g_intern_static_string (MAMD_TEST_TENANT_ID);
    rec->device_id = g_strdup_printf ("%08u%s", i, pad + 8);
    rec->platform = g_intern_static_string ("ios");
    rec->id_attribute = g_intern_static_string ("object-id");
    rec->id_source = g_intern_static_string ("test credential");
    rec->reason = g_intern_static_string ("Intune MAM enrollment is required by server chat");
    rec->owner_uid = getuid ();
    rec->state = MAMD_SESSION_STATE_ENROLLMENT_REQUIRED;
    rec->mam_required = TRUE;
    rec->created = rec->updated = g_get_real_time ();
    rec->seq = i + 1;
    mamd_store_txn_put_session (txn, rec);
  }
  mamd_store_commit_async (store, txn, commit_cb, &error);
  while (error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
}

static guint
status_sessions (MamdTestDaemon *d)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = mamd_test_daemon_call (d, "GetStatus", NULL, "(a{sv})", &error);
  g_autoptr(GVariant) status = NULL;
  guint n = 0;

  g_assert_no_error (error);
  status = g_variant_get_child_value (reply, 0);
  g_assert_true (g_variant_lookup (status, "sessions", "u", &n));
  return n;
}

/* A reply larger than the system bus lets through (its max_message_size,
 * 32 MiB, which the fixture's bus keeps) made dbus-daemon disconnect mamd,
 * which then stopped: ListSessions of some 50,000 sessions took the daemon
 * down and was never answered. It is refused with an error that says why. */
static void
test_list_sessions_too_large (void)
{
  g_autoptr(MamdTestDaemon) d = mamd_test_daemon_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *remote = NULL;

  mamd_test_daemon_write_default_setup (d, SERVER);
  /* 25,000 sessions of ~1.7 KiB each in the reply: over 40 MiB */
  write_sessions (d, 25000, 1024);
  g_assert_true (mamd_test_daemon_start (d, &error));
  g_assert_no_error (error);

  reply = mamd_test_daemon_call (d, "ListSessions", g_variant_new ("(s)", ""), "(aa{sv})",
                                 &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, "org.mamd.Mamd1.Error.Failed");
  g_assert_nonnull (strstr (error->message, "more than the 32 MiB a D-Bus message may carry"));
  g_assert_nonnull (strstr (error->message, "ListSessions with a server id"));
  g_clear_error (&error);

  g_assert_true (mamd_test_daemon_is_running (d));
  g_assert_cmpuint (status_sessions (d), ==, 25000);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/mamd/scale/list-sessions-too-large", test_list_sessions_too_large);
  return g_test_run ();
}
