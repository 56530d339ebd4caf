/*
 * The in-process engine fixture shared by test-engine*.c: a real SQLite
 * store in a temporary directory, the real test plugin module, a real
 * signed licence. Time is moved forward through the engine's private clock
 * hook.
 */
#include "config.h"

#include <string.h>

#include "mamd-test-engine-fixture.h"
#include "mamd-test-util.h"

const MamdCaller user1 = { 1001, FALSE };
const MamdCaller admin = { 0, TRUE };

/* Stands in for the secret part of a real credential (a token, a password):
 * every credential() carries it, and count_events() checks that it reached
 * no event and no file of the store. A word like "credential" would not do:
 * a whole credential stored under another key does not contain it. */
#define CREDENTIAL_MARKER "mamd-test-secret-9d3e6a1f"

static gint64
fixture_clock (gpointer user_data)
{
  Fixture *fx = user_data;

  return g_get_real_time () + fx->clock_offset;
}

/* ---- files ---- */

static void
write_file (const char *path, const char *contents)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

void
write_server (Fixture *fx, const char *id, const char *contents)
{
  g_autofree char *name = g_strdup_printf ("%s.conf", id);
  g_autofree char *path = g_build_filename (fx->conf, "servers.d", name, NULL);

  write_file (path, contents);
}

void
write_daemon (Fixture *fx, const char *extra)
{
  g_autofree char *path = g_build_filename (fx->conf, "mamd.conf", NULL);
  gboolean sets_sync = extra != NULL && strstr (extra, "DirectorySyncInterval=") != NULL;
  g_autofree char *text = g_strdup_printf ("[Daemon]\n%s%s",
                                           sets_sync ? "" : "DirectorySyncInterval=0\n",
                                           extra != NULL ? extra : "");

  write_file (path, text);
}

/* A licence valid from a day ago for @valid_s seconds from now. */
void
write_license (Fixture *fx, const char *sku, gint64 valid_s)
{
  g_autoptr(GError) error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *payload = g_strdup_printf (
    "{\"id\": \"lic-test\", \"licensee\": \"Example Corp\", \"sku_short_name\": \"%s\", "
    "\"issued_at\": %" G_GINT64_FORMAT ", \"expires_at\": %" G_GINT64_FORMAT "}",
    sku, now - 86400, now + valid_s);
  g_autofree char *text = mamd_license_sign (payload, fx->private_key, &error);
  g_autofree char *path = g_build_filename (fx->conf, "license.json", NULL);

  g_assert_no_error (error);
  write_file (path, text);
}

/* ---- fixture ---- */

static void
on_session (MamdEngine *engine, const MamdSessionRecord *rec, const char *reason, guint64 seq,
            gpointer user_data, const char *name)
{
  Fixture *fx = user_data;

  g_ptr_array_add (fx->signals, g_strdup_printf ("%s %s %s %" G_GUINT64_FORMAT, name, rec->id,
                                                 mamd_session_state_to_string (rec->state),
                                                 seq));
}

static void
on_enrollment_required (MamdEngine *e, const MamdSessionRecord *rec, const char *reason,
                        guint64 seq, gpointer fx)
{
  g_assert_nonnull (reason);
  on_session (e, rec, reason, seq, fx, "enrollment-required");
}

static void
on_session_revoked (MamdEngine *e, const MamdSessionRecord *rec, const char *reason,
                    guint64 seq, gpointer fx)
{
  g_assert_nonnull (reason);
  on_session (e, rec, reason, seq, fx, "session-revoked");
}

static void
on_enrolled (MamdEngine *e, const MamdSessionRecord *rec, guint64 seq, gpointer fx)
{
  on_session (e, rec, NULL, seq, fx, "enrolled");
}

static void
on_declined (MamdEngine *e, const MamdSessionRecord *rec, guint64 seq, gpointer fx)
{
  on_session (e, rec, NULL, seq, fx, "enrollment-declined");
}

static void
on_changed (MamdEngine *e, const MamdSessionRecord *rec, gpointer fx)
{
  on_session (e, rec, NULL, 0, fx, "session-changed");
}

static void
on_removed (MamdEngine *e, const char *id, guint64 seq, gpointer user_data)
{
  Fixture *fx = user_data;

  g_ptr_array_add (fx->signals, g_strdup_printf ("session-removed %s", id));
}

static void
on_wipe (MamdEngine *e, const MamdWipeRecord *wipe, guint64 seq, gpointer user_data)
{
  Fixture *fx = user_data;

  g_ptr_array_add (fx->signals, g_strdup_printf ("wipe-requested %s %s %s", wipe->id,
                                                 wipe->server_id, wipe->device_id));
}

static void
on_policy (MamdEngine *e, const char *server, gboolean applies, gboolean gate_open,
           const char *reason, guint64 seq, gpointer user_data)
{
  Fixture *fx = user_data;

  g_ptr_array_add (fx->signals, g_strdup_printf ("policy-changed %s %s %s %s", server,
                                                 applies ? "applies" : "off",
                                                 gate_open ? "open" : "closed", reason));
}

static void
connect_signals (Fixture *fx)
{
  g_signal_connect (fx->engine, "enrollment-required", G_CALLBACK (on_enrollment_required), fx);
  g_signal_connect (fx->engine, "session-revoked", G_CALLBACK (on_session_revoked), fx);
  g_signal_connect (fx->engine, "enrolled", G_CALLBACK (on_enrolled), fx);
  g_signal_connect (fx->engine, "enrollment-declined", G_CALLBACK (on_declined), fx);
  g_signal_connect (fx->engine, "session-changed", G_CALLBACK (on_changed), fx);
  g_signal_connect (fx->engine, "session-removed", G_CALLBACK (on_removed), fx);
  g_signal_connect (fx->engine, "wipe-requested", G_CALLBACK (on_wipe), fx);
  g_signal_connect (fx->engine, "policy-changed", G_CALLBACK (on_policy), fx);
}

gboolean
engine_try_start (Fixture *fx, GError **error)
{
  g_autoptr(GError) local = NULL;

  fx->store = mamd_store_sqlite_open (fx->state, &local);
  g_assert_no_error (local);
  fx->engine = mamd_engine_new (fx->store, fx->loader);
  mamd_engine_set_clock (fx->engine, fixture_clock, fx);
  connect_signals (fx);
  return mamd_engine_start (fx->engine, fx->conf, error);
}

static void
set_committed (const GError *error, gpointer user_data)
{
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

void
wait_committed (Fixture *fx)
{
  gboolean durable = FALSE;

  mamd_engine_when_committed (fx->engine, set_committed, &durable);
  while (!durable)
    g_main_context_iteration (NULL, TRUE);
}

void
engine_start (Fixture *fx)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (engine_try_start (fx, &error));
  g_assert_no_error (error);
  /* what the start changed is durable and its signals are in fx->signals */
  wait_committed (fx);
}

void
engine_stop (Fixture *fx)
{
  g_autoptr(GError) error = NULL;

  if (fx->engine == NULL)
    return;
  g_assert_true (mamd_engine_shutdown (fx->engine, &error));
  g_assert_no_error (error);
  g_assert_finalize_object (fx->engine);
  fx->engine = NULL;
  g_assert_finalize_object (fx->store);
  fx->store = NULL;
}

void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *plugins = g_build_filename (g_getenv ("MAMD_BUILD_ROOT"), "tests",
                                               "plugins", NULL);
  g_autofree char *servers = NULL;
  g_autofree char *public_key = NULL;

  fx->tmp = g_dir_make_tmp ("mamd-engine-XXXXXX", &error);
  g_assert_no_error (error);
  fx->conf = g_build_filename (fx->tmp, "conf", NULL);
  fx->state = g_build_filename (fx->tmp, "state", NULL);
  servers = g_build_filename (fx->conf, "servers.d", NULL);
  g_assert_cmpint (g_mkdir_with_parents (servers, 0700), ==, 0);
  fx->private_key = g_build_filename (fx->tmp, "license-private.pem", NULL);
  public_key = g_build_filename (fx->conf, "license-public.pem", NULL);
  g_assert_true (mamd_license_generate_key (fx->private_key, public_key, &error));
  g_assert_no_error (error);
  write_daemon (fx, NULL);
  write_license (fx, "advanced", 30 * 86400);

  fx->loader = mamd_plugin_loader_new ();
  g_assert_true (mamd_plugin_loader_load_dir (fx->loader, plugins, &error));
  g_assert_no_error (error);
  g_assert_nonnull (mamd_plugin_loader_lookup (fx->loader, "test"));
  fx->signals = g_ptr_array_new_with_free_func (g_free);
}

void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  engine_stop (fx);
  g_clear_object (&fx->loader);
  g_ptr_array_unref (fx->signals);
  mamd_test_rm_rf (fx->tmp);
  g_free (fx->tmp);
  g_free (fx->conf);
  g_free (fx->state);
  g_free (fx->private_key);
}

/* ---- driving async calls ---- */

void
got_result (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Fixture *fx = user_data;

  g_assert_null (fx->result);
  fx->result = g_object_ref (res);
}

GAsyncResult *
wait_result (Fixture *fx)
{
  while (fx->result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return g_steal_pointer (&fx->result);
}

GVariant *
credential (const char *object_id, const char *tenant_id, const char *key, const char *value)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (object_id != NULL)
    g_variant_builder_add (&builder, "{sv}", "object-id", g_variant_new_string (object_id));
  if (tenant_id != NULL)
    g_variant_builder_add (&builder, "{sv}", "tenant-id", g_variant_new_string (tenant_id));
  if (key != NULL)
    g_variant_builder_add (&builder, "{sv}", key, g_variant_new_string (value));
  /* the test plugin ignores it */
  g_variant_builder_add (&builder, "{sv}", "secret", g_variant_new_string (CREDENTIAL_MARKER));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

MamdEngineResult *
sign_in_full (Fixture *fx, const MamdCaller *caller, const char *server, const char *method,
              GVariant *cred, const char *platform, const char *device,
              GCancellable *cancellable, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_sign_in_async (fx->engine, caller, server, method, cred, platform, device,
                             cancellable, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_sign_in_finish (fx->engine, res, error);
}

MamdEngineResult *
sign_in (Fixture *fx, const MamdCaller *caller, const char *server, const char *object_id,
         const char *platform, const char *device, GError **error)
{
  g_autoptr(GVariant) cred = credential (object_id, TENANT, NULL, NULL);

  return sign_in_full (fx, caller, server, "test", cred, platform, device, NULL, error);
}

MamdEngineResult *
sign_in_ok (Fixture *fx, const MamdCaller *caller, const char *server, const char *object_id,
            const char *platform, const char *device)
{
  g_autoptr(GError) error = NULL;
  MamdEngineResult *result = sign_in (fx, caller, server, object_id, platform, device, &error);

  g_assert_no_error (error);
  g_assert_nonnull (result);
  g_assert_nonnull (result->session);
  return result;
}

void
assert_sign_in_fails (Fixture *fx, const char *server, const char *object_id,
                      const char *platform, const char *device, gint code, const char *needle)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = sign_in (fx, &user1, server, object_id, platform,
                                                device, &error);

  g_assert_null (result);
  g_assert_error (error, MAMD_ERROR, code);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("\"%s\" does not mention \"%s\"", error->message, needle);
}

MamdEngineResult *
report (Fixture *fx, const MamdCaller *caller, const char *session, MamdEnrollmentOutcome outcome,
        gint status, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_report_enrollment_async (fx->engine, caller, session, outcome, status, NULL,
                                       got_result, fx);
  res = wait_result (fx);
  return mamd_engine_report_enrollment_finish (fx->engine, res, error);
}

MamdEngineResult *
ack_wipe (Fixture *fx, const MamdCaller *caller, const char *wipe, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_ack_wipe_async (fx->engine, caller, wipe, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_ack_wipe_finish (fx->engine, res, error);
}

MamdSessionState
state_of (Fixture *fx, const char *session)
{
  const MamdSessionRecord *rec = mamd_engine_lookup_session (fx->engine, session);

  g_assert_nonnull (rec);
  return rec->state;
}

gboolean
has_signal (Fixture *fx, const char *prefix)
{
  for (guint i = 0; i < fx->signals->len; i++) {
    if (g_str_has_prefix (g_ptr_array_index (fx->signals, i), prefix))
      return TRUE;
  }
  return FALSE;
}

guint
count_signals (Fixture *fx, const char *prefix)
{
  guint n = 0;

  for (guint i = 0; i < fx->signals->len; i++) {
    if (g_str_has_prefix (g_ptr_array_index (fx->signals, i), prefix))
      n++;
  }
  return n;
}

/* Byte by byte: the secret may sit in a serialized value anywhere in a page. */
static void
assert_no_marker_in_file (const char *dir, const char *name, gboolean may_be_missing)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, &error)) {
    g_assert_true (may_be_missing);
    g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    return;
  }
  if (memmem (contents, len, CREDENTIAL_MARKER, strlen (CREDENTIAL_MARKER)) != NULL)
    g_error ("%s holds the secret of a credential", path);
}

/* Every stored event of @type, after flushing the store. */
guint
count_events (Fixture *fx, const char *type)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) events = NULL;
  guint n = 0;
  guint64 last = 0;

  g_assert_true (mamd_store_flush (fx->store, &error));
  g_assert_no_error (error);
  events = mamd_store_list_events (fx->store, 0, 100000, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < events->len; i++) {
    const MamdEventRecord *event = g_ptr_array_index (events, i);
    g_autofree char *detail = g_variant_print (event->detail, FALSE);

    /* strictly increasing, never a credential */
    g_assert_cmpuint (event->seq, >, last);
    last = event->seq;
    g_assert_null (strstr (detail, "credential"));
    if (strstr (detail, CREDENTIAL_MARKER) != NULL)
      g_error ("event %s (seq %" G_GUINT64_FORMAT ") holds the secret of a credential: %s",
               event->type, event->seq, detail);
    if (g_str_equal (event->type, type))
      n++;
  }
  /* nor anywhere else in the store: the WAL, when there is one, holds what
   * is not checkpointed yet */
  assert_no_marker_in_file (fx->state, "state.db", FALSE);
  assert_no_marker_in_file (fx->state, "state.db-wal", TRUE);
  return n;
}
