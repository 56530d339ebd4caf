/*
 * The engine end to end, without a bus: a real SQLite store in a temporary
 * directory, the real test plugin module, a real signed licence. Time is
 * moved forward through the engine's private clock hook.
 */
#include "config.h"

#include "mamd-test-util.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mamd-engine-private.h"

#define TENANT "4a7c5e1d-3b2f-4c8e-9d6a-1f0e2b3c4d5e"
#define OTHER_TENANT "99999999-9999-4999-8999-999999999999"
#define CLIENT "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
#define ALICE "11111111-1111-4111-8111-111111111111"
#define BOB "22222222-2222-4222-8222-222222222222"
#define CAROL "33333333-3333-4333-8333-333333333333"
#define DAY_US ((gint64) 86400 * G_USEC_PER_SEC)

#define MAM_SERVER(extra)                                                      \
  "[Server]\nEnable=true\nTenantId=" TENANT "\nClientId=" CLIENT               \
  "\nAuthService=test\n" extra

typedef struct {
  char *tmp;
  char *conf;
  char *state;
  char *private_key;
  MamdPluginLoader *loader;
  MamdStore *store;
  MamdEngine *engine;
  gint64 clock_offset;
  GPtrArray *signals; /* strings, in emission order */
  GAsyncResult *result;
} Fixture;

static const MamdCaller user1 = { 1001, FALSE };
static const MamdCaller user2 = { 1002, FALSE };
static const MamdCaller admin = { 0, TRUE };

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

static void
write_server (Fixture *fx, const char *id, const char *contents)
{
  g_autofree char *name = g_strdup_printf ("%s.conf", id);
  g_autofree char *path = g_build_filename (fx->conf, "servers.d", name, NULL);

  write_file (path, contents);
}

static void
remove_server (Fixture *fx, const char *id)
{
  g_autofree char *name = g_strdup_printf ("%s.conf", id);
  g_autofree char *path = g_build_filename (fx->conf, "servers.d", name, NULL);

  g_assert_cmpint (g_unlink (path), ==, 0);
}

static void
write_daemon (Fixture *fx, const char *extra)
{
  g_autofree char *path = g_build_filename (fx->conf, "mamd.conf", NULL);
  g_autofree char *text = g_strdup_printf ("[Daemon]\nDirectorySyncInterval=0\n%s",
                                           extra != NULL ? extra : "");

  write_file (path, text);
}

/* A licence valid from a day ago for @valid_s seconds from now. */
static void
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
on_policy (MamdEngine *e, const char *server, gboolean applies, const char *reason,
           guint64 seq, gpointer user_data)
{
  Fixture *fx = user_data;

  g_ptr_array_add (fx->signals, g_strdup_printf ("policy-changed %s %s %s", server,
                                                 applies ? "applies" : "off", reason));
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

static gboolean
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
engine_start (Fixture *fx)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (engine_try_start (fx, &error));
  g_assert_no_error (error);
}

static void
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

static void
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


static void
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

static void
got_result (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Fixture *fx = user_data;

  g_assert_null (fx->result);
  fx->result = g_object_ref (res);
}

static GAsyncResult *
wait_result (Fixture *fx)
{
  while (fx->result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return g_steal_pointer (&fx->result);
}

static GVariant *
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
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static MamdEngineResult *
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

static MamdEngineResult *
sign_in (Fixture *fx, const MamdCaller *caller, const char *server, const char *object_id,
         const char *platform, const char *device, GError **error)
{
  g_autoptr(GVariant) cred = credential (object_id, TENANT, NULL, NULL);

  return sign_in_full (fx, caller, server, "test", cred, platform, device, NULL, error);
}

static MamdEngineResult *
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

static void
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

static MamdEngineResult *
report (Fixture *fx, const MamdCaller *caller, const char *session, MamdEnrollmentOutcome outcome,
        gint status, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_report_enrollment_async (fx->engine, caller, session, outcome, status, NULL,
                                       got_result, fx);
  res = wait_result (fx);
  return mamd_engine_report_enrollment_finish (fx->engine, res, error);
}

static MamdEngineResult *
sign_out (Fixture *fx, const MamdCaller *caller, const char *session, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_sign_out_async (fx->engine, caller, session, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_sign_out_finish (fx->engine, res, error);
}

static MamdEngineResult *
readd (Fixture *fx, const char *server, const char *device, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_readd_server_async (fx->engine, &user1, server, device, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_readd_server_finish (fx->engine, res, error);
}

static MamdEngineResult *
ack_wipe (Fixture *fx, const MamdCaller *caller, const char *wipe, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_ack_wipe_async (fx->engine, caller, wipe, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_ack_wipe_finish (fx->engine, res, error);
}

static gboolean
reload (Fixture *fx, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_reload_async (fx->engine, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_reload_finish (fx->engine, res, error);
}

static MamdSessionState
state_of (Fixture *fx, const char *session)
{
  const MamdSessionRecord *rec = mamd_engine_lookup_session (fx->engine, session);

  g_assert_nonnull (rec);
  return rec->state;
}

static gboolean
has_signal (Fixture *fx, const char *prefix)
{
  for (guint i = 0; i < fx->signals->len; i++) {
    if (g_str_has_prefix (g_ptr_array_index (fx->signals, i), prefix))
      return TRUE;
  }
  return FALSE;
}

static guint
count_signals (Fixture *fx, const char *prefix)
{
  guint n = 0;

  for (guint i = 0; i < fx->signals->len; i++) {
    if (g_str_has_prefix (g_ptr_array_index (fx->signals, i), prefix))
      n++;
  }
  return n;
}

/* Every stored event of @type, after flushing the store. */
static guint
count_events (Fixture *fx, const char *type)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) events = NULL;
  guint n = 0;
  guint64 last = 0;

  g_assert_true (mamd_store_flush (fx->store, &error));
  events = mamd_store_list_events (fx->store, 0, 100000, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < events->len; i++) {
    const MamdEventRecord *event = g_ptr_array_index (events, i);
    g_autofree char *detail = g_variant_print (event->detail, FALSE);

    /* strictly increasing, never a credential */
    g_assert_cmpuint (event->seq, >, last);
    last = event->seq;
    g_assert_null (strstr (detail, "credential"));
    if (g_str_equal (event->type, type))
      n++;
  }
  return n;
}

/* ---- sign-in ---- */

static void
test_sign_in_restricted (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  gboolean allowed = TRUE;
  MamdSessionState state;
  g_autofree char *expect = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  result = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  g_assert_true (result->mam_required);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_cmpstr (result->session->reason, ==,
                   "Intune MAM enrollment is required by server chat");
  g_assert_cmpstr (result->session->object_id, ==, ALICE);
  g_assert_cmpuint (result->session->owner_uid, ==, 1001);
  g_assert_cmpuint (result->seq, ==, mamd_engine_get_last_seq (fx->engine));
  g_assert_true (mamd_id_is_valid (result->decision_id));
  expect = g_strdup_printf ("enrollment-required %s", result->session->id);
  g_assert_true (has_signal (fx, expect));
  g_assert_cmpuint (count_events (fx, "session-created"), ==, 1);

  g_assert_true (mamd_engine_check_access (fx->engine, &user1, result->session->id, &allowed,
                                           &state, &reason, &error));
  g_assert_no_error (error);
  g_assert_false (allowed);
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_cmpstr (reason, ==, "Intune MAM enrollment is required by server chat");
}

/* Sign-ins through a method other than the selected AuthService are not
 * evaluated by MAM, even where the gate is closed. */
static void
test_sign_in_other_method (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  gboolean allowed = FALSE;

  write_server (fx, "chat", "[Server]\nEnable=true\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=office365\n[test]\n");
  engine_start (fx);
  result = sign_in_ok (fx, &user1, "chat", ALICE, "android", "dev-1");
  g_assert_false (result->mam_required);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_false (has_signal (fx, "enrollment-required"));
  g_assert_true (mamd_engine_check_access (fx->engine, &user1, result->session->id, &allowed,
                                           NULL, NULL, &error));
  g_assert_true (allowed);
}

static void
test_sign_in_errors (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GVariant) cred = NULL;
  g_autoptr(GVariant) not_dict = g_variant_ref_sink (g_variant_new_string ("token"));
  g_autofree char *long_device = g_strnfill (300, 'd');

  write_server (fx, "chat", MAM_SERVER ("AllowedPlatforms=ios;android\n"));
  engine_start (fx);
  assert_sign_in_fails (fx, "nope", ALICE, "ios", "dev-1", MAMD_ERROR_NOT_FOUND,
                        "no server 'nope' is configured (see mamctl servers)");
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "", MAMD_ERROR_INVALID_ARGS, "device id");
  assert_sign_in_fails (fx, "chat", ALICE, "ios", long_device, MAMD_ERROR_INVALID_ARGS,
                        "device id");
  assert_sign_in_fails (fx, "chat", ALICE, "android", "dev-1",
                        MAMD_ERROR_UNSUPPORTED_PLATFORM,
                        "Intune MAM supports iOS only; Android is not supported yet");
  assert_sign_in_fails (fx, "chat", ALICE, "windows", "dev-1",
                        MAMD_ERROR_UNSUPPORTED_PLATFORM, "AllowedPlatforms");

  result = sign_in_full (fx, &user1, "chat", "test", not_dict, "ios", "dev-1", NULL, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);

  /* guide: MissingAuthAccountError */
  cred = credential (NULL, TENANT, NULL, NULL);
  result = sign_in_full (fx, &user1, "chat", "test", cred, "ios", "dev-1", NULL, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT);
  g_clear_error (&error);
  g_clear_pointer (&cred, g_variant_unref);

  cred = credential (ALICE, TENANT, "fail", "invalid-token");
  result = sign_in_full (fx, &user1, "chat", "test", cred, "ios", "dev-1", NULL, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_clear_error (&error);
  g_clear_pointer (&cred, g_variant_unref);

  cred = credential (ALICE, TENANT, "fail", "key-unavailable");
  result = sign_in_full (fx, &user1, "chat", "test", cred, "ios", "dev-1", NULL, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_clear_error (&error);
  g_clear_pointer (&cred, g_variant_unref);

  /* the runner wrapper turns a plugin bug into an error */
  cred = credential (ALICE, TENANT, "fail", "bug-no-error");
  g_test_expect_message ("mamd-plugin", G_LOG_LEVEL_WARNING, "*plugin bug*");
  result = sign_in_full (fx, &user1, "chat", "test", cred, "ios", "dev-1", NULL, &error);
  g_test_assert_expected_messages ();
  g_assert_nonnull (error);
  g_assert_null (result);
  g_clear_error (&error);
  g_clear_pointer (&cred, g_variant_unref);

  cred = credential (ALICE, OTHER_TENANT, NULL, NULL);
  result = sign_in_full (fx, &user1, "chat", "test", cred, "ios", "dev-1", NULL, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_assert_nonnull (strstr (error->message, "credential is for tenant " OTHER_TENANT
                                            " but server chat expects " TENANT));
  g_clear_error (&error);

  result = sign_in_full (fx, &user1, "chat", "nope", cred, "ios", "dev-1", NULL, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  g_clear_error (&error);

  /* nothing was created by any of the refusals */
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 0);
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, 0);
}

static void
test_sign_in_user_mismatch (Fixture *fx, gconstpointer data)
{
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n"));
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH,
                        "no user of auth service test on server chat has objectId " ALICE
                        ": users must exist (first web login or LDAP provisioning) and be "
                        "matched by Azure AD objectId, never email or UPN");
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 0);
}

static void
test_sign_in_created_user (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) first = NULL;
  g_autoptr(MamdEngineResult) second = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  first = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  engine_stop (fx);
  /* the user created at the first sign-in is durable */
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n"));
  engine_start (fx);
  second = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-2");
  assert_sign_in_fails (fx, "chat", BOB, "ios", "dev-2", MAMD_ERROR_USER_MISMATCH, NULL);
}

static void
test_sign_in_cancel (Fixture *fx, gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GVariant) cred = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  GVariantBuilder builder;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "object-id", g_variant_new_string (ALICE));
  g_variant_builder_add (&builder, "{sv}", "tenant-id", g_variant_new_string (TENANT));
  g_variant_builder_add (&builder, "{sv}", "delay-ms", g_variant_new_uint32 (600000));
  cred = g_variant_ref_sink (g_variant_builder_end (&builder));
  mamd_engine_sign_in_async (fx->engine, &user1, "chat", "test", cred, "ios", "dev-1",
                             cancellable, got_result, fx);
  g_cancellable_cancel (cancellable);
  {
    g_autoptr(GAsyncResult) res = wait_result (fx);

    result = mamd_engine_sign_in_finish (fx->engine, res, &error);
  }
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 0);
}

/* ---- gates ---- */

static void
test_gate_not_licensed (Fixture *fx, gconstpointer data)
{
  g_autofree char *license = g_build_filename (fx->conf, "license.json", NULL);

  write_server (fx, "chat", MAM_SERVER (""));
  write_license (fx, "professional", 86400);
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_NOT_LICENSED,
                        "not licensed for Intune MAM");
  engine_stop (fx);

  g_assert_cmpint (g_unlink (license), ==, 0);
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_NOT_LICENSED,
                        "not licensed for Intune MAM");
}

static void
test_gate_forbidden (Fixture *fx, gconstpointer data)
{
  g_autoptr(GPtrArray) servers = NULL;
  gboolean checked = FALSE;

  write_server (fx, "chat", "[Server]\nEnable=true\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\n");
  write_server (fx, "notenant", "[Server]\nEnable=true\nClientId=" CLIENT
                                "\nAuthService=test\n");
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_FORBIDDEN,
                        "AuthService is not set");
  assert_sign_in_fails (fx, "notenant", ALICE, "ios", "dev-1", MAMD_ERROR_FORBIDDEN,
                        "TenantId is not set");
  servers = mamd_engine_list_servers (fx->engine);
  for (guint i = 0; i < servers->len; i++) {
    const MamdServerStatus *status = g_ptr_array_index (servers, i);

    g_assert_false (status->gate_open);
    g_assert_cmpint (status->gate_error_code, ==, MAMD_ERROR_FORBIDDEN);
    g_assert_nonnull (status->gate_reason);
    checked = TRUE;
  }
  g_assert_true (checked);
}

static void
test_gate_invalid_resource (Fixture *fx, gconstpointer data)
{
  write_server (fx, "chat", MAM_SERVER ("[test]\nGate=invalid-resource\n"));
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_INVALID_RESOURCE,
                        "AADSTS650057");
}

/* ---- enrollment transitions ---- */

static void
test_enroll_success (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) active = NULL;
  g_autoptr(GError) error = NULL;
  gboolean allowed = FALSE;
  g_autofree char *expect = NULL;

  write_server (fx, "chat", MAM_SERVER ("[test]\n"));
  write_server (fx, "plain", "[Server]\nEnable=false\n[test]\n");
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");

  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_SUCCESS, 100, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_ENROLLED);
  g_assert_cmpstr (result->session->reason, ==, "enrolled (100 NewPoliciesReceived)");
  g_assert_cmpuint (result->seq, >, session->seq);
  expect = g_strdup_printf ("enrolled %s", session->session->id);
  g_assert_true (has_signal (fx, expect));
  g_assert_true (mamd_engine_check_access (fx->engine, &user1, session->session->id, &allowed,
                                           NULL, NULL, &error));
  g_assert_true (allowed);
  g_clear_pointer (&result, mamd_engine_result_free);

  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_SUCCESS, 101, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, "already enrolled"));
  g_clear_error (&error);

  /* an ACTIVE session has no enrollment */
  active = sign_in_ok (fx, &user1, "plain", ALICE, "android", "dev-1");
  result = report (fx, &user1, active->session->id, MAMD_ENROLLMENT_SUCCESS, -1, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, "Intune MAM does not apply to this session"));
  g_clear_error (&error);

  /* bad and unknown ids */
  result = report (fx, &user1, "not-an-id", MAMD_ENROLLMENT_SUCCESS, -1, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
  g_clear_error (&error);
  result = report (fx, &user1, "0123456789abcdef0123456789abcdef", MAMD_ENROLLMENT_SUCCESS, -1,
                   &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
}

static void
test_enroll_declined (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  gboolean allowed = TRUE;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");

  /* a decline code with a success outcome is refused */
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_SUCCESS, 219, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_cmpint (state_of (fx, session->session->id), ==,
                   MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);

  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_DECLINED, 219, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_DECLINED);
  g_assert_true (has_signal (fx, "enrollment-declined"));
  g_assert_true (mamd_engine_check_access (fx->engine, &user1, session->session->id, &allowed,
                                           NULL, &reason, &error));
  g_assert_false (allowed);
  g_assert_nonnull (strstr (reason, "retry is allowed; nothing was removed"));
  /* nothing removed, no wipe */
  g_assert_cmpuint (count_signals (fx, "wipe-requested"), ==, 0);
  g_clear_pointer (&result, mamd_engine_result_free);

  /* declined again, then retry succeeds */
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_DECLINED, -1, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_SUCCESS, 103, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_ENROLLED);
}

/* Enrollment Failed on server A: A leaves device D (sessions revoked, wipe
 * requested); server B on D and server A on device E are untouched. */
static void
test_enroll_failed_isolation (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) a1 = NULL;
  g_autoptr(MamdEngineResult) a2 = NULL;
  g_autoptr(MamdEngineResult) b1 = NULL;
  g_autoptr(MamdEngineResult) e1 = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) b2 = NULL;
  g_autoptr(MamdEngineResult) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) wipes = NULL;
  g_autofree char *wipe_id = NULL;
  const MamdWipeRecord *wipe;

  write_server (fx, "alpha", MAM_SERVER (""));
  write_server (fx, "beta", MAM_SERVER (""));
  engine_start (fx);
  a1 = sign_in_ok (fx, &user1, "alpha", ALICE, "ios", "dev-d");
  a2 = sign_in_ok (fx, &user1, "alpha", BOB, "ios", "dev-d");
  b1 = sign_in_ok (fx, &user1, "beta", ALICE, "ios", "dev-d");
  e1 = sign_in_ok (fx, &user2, "alpha", CAROL, "ios", "dev-e");
  result = report (fx, &user1, b1->session->id, MAMD_ENROLLMENT_SUCCESS, 100, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  g_ptr_array_set_size (fx->signals, 0);

  /* status and outcome must agree */
  result = report (fx, &user1, a1->session->id, MAMD_ENROLLMENT_SUCCESS, 200, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_assert_cmpstr (error->message, ==,
                   "status 200 AccountNotLicensed is a failure but outcome 'success' was "
                   "reported");
  g_clear_error (&error);

  result = report (fx, &user1, a1->session->id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_nonnull (strstr (result->session->reason,
                            "Intune MAM enrollment failed (201 InternalError)"));
  g_assert_cmpint (state_of (fx, a1->session->id), ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpint (state_of (fx, a2->session->id), ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpint (state_of (fx, b1->session->id), ==, MAMD_SESSION_STATE_ENROLLED);
  g_assert_cmpint (state_of (fx, e1->session->id), ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_cmpuint (count_signals (fx, "session-revoked"), ==, 2);
  g_assert_cmpuint (count_signals (fx, "wipe-requested"), ==, 1);
  g_assert_cmpuint (count_events (fx, "session-revoked"), ==, 2);
  g_assert_cmpuint (count_events (fx, "server-removed"), ==, 1);
  g_assert_cmpuint (count_events (fx, "wipe-requested"), ==, 1);
  g_clear_pointer (&result, mamd_engine_result_free);

  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 1);
  wipe = g_ptr_array_index (wipes, 0);
  g_assert_cmpstr (wipe->server_id, ==, "alpha");
  g_assert_cmpstr (wipe->device_id, ==, "dev-d");
  g_assert_cmpstr (wipe->session_id, ==, a1->session->id);
  g_assert_cmpint (wipe->expires - wipe->created, ==, 7 * DAY_US);
  wipe_id = g_strdup (wipe->id);
  g_clear_pointer (&wipes, g_ptr_array_unref);

  /* a revoked session takes no more reports */
  result = report (fx, &user1, a2->session->id, MAMD_ENROLLMENT_FAILED, -1, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, "sign in again"));
  g_clear_error (&error);

  /* no retry on A from D; B still works on D, A still works on E */
  assert_sign_in_fails (fx, "alpha", ALICE, "ios", "dev-d", MAMD_ERROR_SERVER_REMOVED,
                        "server alpha was removed from device dev-d: Intune MAM "
                        "enrollment failed (201 InternalError)");
  b2 = sign_in_ok (fx, &user1, "beta", BOB, "ios", "dev-d");
  g_assert_cmpint (b2->session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);

  /* the wipe is acknowledged by the device's client only */
  result = ack_wipe (fx, &user2, wipe_id, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_ACCESS_DENIED);
  g_clear_error (&error);
  result = ack_wipe (fx, &user1, wipe_id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (result->seq, ==, mamd_engine_get_last_seq (fx->engine));
  g_clear_pointer (&result, mamd_engine_result_free);
  result = ack_wipe (fx, &admin, wipe_id, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* re-add: then sign-ins work again */
  result = readd (fx, "alpha", "dev-e", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
  g_clear_error (&error);
  result = readd (fx, "alpha", "dev-d", &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  again = sign_in_ok (fx, &user1, "alpha", ALICE, "ios", "dev-d");
  g_assert_cmpint (again->session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_cmpuint (count_events (fx, "server-readded"), ==, 1);
  g_assert_cmpuint (count_events (fx, "wipe-acknowledged"), ==, 1);
}

/* A failure reported on an enrolled session revokes it too. */
static void
test_enroll_failed_after_enrolled (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_SUCCESS, -1, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_FAILED, 216, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_nonnull (strstr (result->session->reason, "216 Timeout"));
}

/* ---- ownership and caps ---- */

static void
test_owner_checks (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *expect = NULL;
  gboolean allowed;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  id = g_strdup (session->session->id);

  result = report (fx, &user2, id, MAMD_ENROLLMENT_SUCCESS, -1, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_ACCESS_DENIED);
  g_clear_error (&error);
  g_assert_false (mamd_engine_check_access (fx->engine, &user2, id, &allowed, NULL, NULL,
                                            &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_ACCESS_DENIED);
  g_clear_error (&error);
  result = sign_out (fx, &user2, id, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_ACCESS_DENIED);
  g_clear_error (&error);
  g_assert_cmpint (state_of (fx, id), ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);

  /* an administrator may act on anyone's session */
  result = report (fx, &admin, id, MAMD_ENROLLMENT_SUCCESS, -1, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = sign_out (fx, &admin, id, &error);
  g_assert_no_error (error);
  g_assert_null (result->session);
  g_assert_null (mamd_engine_lookup_session (fx->engine, id));
  expect = g_strdup_printf ("session-removed %s", id);
  g_assert_true (has_signal (fx, expect));
  g_assert_cmpuint (count_events (fx, "session-closed"), ==, 1);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = sign_out (fx, &user1, id, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
}

static void
test_uid_cap (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) s1 = NULL;
  g_autoptr(MamdEngineResult) s2 = NULL;
  g_autoptr(MamdEngineResult) s3 = NULL;
  g_autoptr(MamdEngineResult) other = NULL;
  g_autoptr(MamdEngineResult) out = NULL;
  g_autoptr(GError) error = NULL;

  write_daemon (fx, "[Limits]\nMaxSessionsPerUser=2\n");
  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  s1 = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  s2 = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-2");
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-3", MAMD_ERROR_BUSY,
                        "MaxSessionsPerUser");
  other = sign_in_ok (fx, &user2, "chat", BOB, "ios", "dev-3");
  /* revoked sessions do not count */
  out = report (fx, &user1, s1->session->id, MAMD_ENROLLMENT_FAILED, -1, &error);
  g_assert_no_error (error);
  s3 = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-3");
}

/* ---- reload ---- */

static void
test_reload_enable (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) ios = NULL;
  g_autoptr(MamdEngineResult) android = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expect_required = NULL;
  g_autofree char *expect_revoked = NULL;
  guint64 seq;

  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  engine_start (fx);
  ios = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  android = sign_in_ok (fx, &user1, "chat", BOB, "android", "dev-2");
  g_assert_cmpint (ios->session->state, ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_cmpint (android->session->state, ==, MAMD_SESSION_STATE_ACTIVE);

  write_server (fx, "chat", MAM_SERVER (""));
  g_assert_true (reload (fx, &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (fx, ios->session->id), ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_true (mamd_engine_lookup_session (fx->engine, ios->session->id)->mam_required);
  g_assert_cmpint (state_of (fx, android->session->id), ==, MAMD_SESSION_STATE_REVOKED);
  expect_required = g_strdup_printf ("enrollment-required %s", ios->session->id);
  expect_revoked = g_strdup_printf ("session-revoked %s", android->session->id);
  g_assert_true (has_signal (fx, expect_required));
  g_assert_true (has_signal (fx, expect_revoked));
  g_assert_true (has_signal (fx, "policy-changed chat applies"));
  g_assert_cmpuint (count_events (fx, "config-reloaded"), ==, 1);

  /* unchanged configuration: no events at all */
  seq = mamd_engine_get_last_seq (fx->engine);
  g_assert_true (reload (fx, &error));
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, seq);

  /* MAM switched off again: the restriction lifts */
  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  g_assert_true (reload (fx, &error));
  g_assert_cmpint (state_of (fx, ios->session->id), ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_true (has_signal (fx, "policy-changed chat off"));

  /* server removed from the configuration */
  write_server (fx, "other", "[Server]\n");
  remove_server (fx, "chat");
  g_assert_true (reload (fx, &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (fx, ios->session->id), ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpstr (mamd_engine_lookup_session (fx->engine, ios->session->id)->reason, ==,
                   "server chat was removed from the configuration");
}

static void
test_reload_invalid (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(GError) error = NULL;
  const MamdConfig *config;
  guint64 seq;

  write_server (fx, "chat", "[Server]\nEnable=false\nAuthService=test\n");
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  config = mamd_engine_get_config (fx->engine);
  seq = mamd_engine_get_last_seq (fx->engine);

  /* a bad key, and separately a plugin group no plugin provides */
  write_server (fx, "chat", "[Server]\nEnable=maybe\n");
  g_assert_false (reload (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  write_server (fx, "chat", MAM_SERVER ("[nope]\n"));
  g_assert_false (reload (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "no plugin provides method 'nope'"));
  g_clear_error (&error);
  write_server (fx, "chat", MAM_SERVER ("[test]\nDelayMs=soon\n"));
  g_assert_false (reload (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "DelayMs"));
  /* the AuthService's own group is reported once, not once more for being the AuthService */
  g_assert_null (strstr (strstr (error->message, "DelayMs") + 1, "DelayMs"));
  g_clear_error (&error);

  /* nothing changed */
  g_assert_true (mamd_engine_get_config (fx->engine) == config);
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, seq);
  g_assert_cmpint (state_of (fx, session->session->id), ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_false (has_signal (fx, "policy-changed"));
}

static void
test_reload_gate (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  gboolean allowed = TRUE;

  write_server (fx, "chat", MAM_SERVER ("[test]\n"));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_SUCCESS, 100, &error);
  g_assert_no_error (error);

  /* admin consent withdrawn: the gate closes, enrolled sessions lose access */
  write_server (fx, "chat", MAM_SERVER ("[test]\nGate=invalid-resource\n"));
  g_assert_true (reload (fx, &error));
  g_assert_true (has_signal (fx, "policy-changed chat applies"));
  g_assert_true (mamd_engine_check_access (fx->engine, &user1, session->session->id, &allowed,
                                           NULL, &reason, &error));
  g_assert_false (allowed);
  g_assert_nonnull (strstr (reason, "AADSTS650057"));
  g_assert_cmpint (state_of (fx, session->session->id), ==, MAMD_SESSION_STATE_ENROLLED);
}

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* The licence expires while running: its timer closes the gate. */
static void
test_license_expiry (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  gboolean timed_out = FALSE;
  guint timeout_id;

  write_server (fx, "chat", MAM_SERVER (""));
  write_license (fx, "advanced", 2);
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  g_assert_false (has_signal (fx, "policy-changed"));
  /* a guard against hanging, not a measurement */
  timeout_id = g_timeout_add_seconds (60, set_flag, &timed_out);
  while (!has_signal (fx, "policy-changed") && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout_id);
  g_assert_true (has_signal (fx, "policy-changed chat applies"));
  g_assert_cmpuint (count_events (fx, "policy-changed"), ==, 1);
  assert_sign_in_fails (fx, "chat", BOB, "ios", "dev-2", MAMD_ERROR_NOT_LICENSED,
                        "not licensed for Intune MAM");
}

/* ---- restart, expiry, sync ---- */

static void
test_restart (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) s1 = NULL;
  g_autoptr(MamdEngineResult) s2 = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) s3 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id1 = NULL;
  g_autofree char *id2 = NULL;
  guint64 seq;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  s1 = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  s2 = sign_in_ok (fx, &user1, "chat", BOB, "ios", "dev-2");
  result = report (fx, &user1, s1->session->id, MAMD_ENROLLMENT_SUCCESS, 100, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = report (fx, &user1, s2->session->id, MAMD_ENROLLMENT_FAILED, 213, &error);
  g_assert_no_error (error);
  id1 = g_strdup (s1->session->id);
  id2 = g_strdup (s2->session->id);
  seq = mamd_engine_get_last_seq (fx->engine);
  engine_stop (fx);

  g_ptr_array_set_size (fx->signals, 0);
  engine_start (fx);
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 2);
  g_assert_cmpint (state_of (fx, id1), ==, MAMD_SESSION_STATE_ENROLLED);
  g_assert_cmpint (state_of (fx, id2), ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), >=, seq);
  assert_sign_in_fails (fx, "chat", BOB, "ios", "dev-2", MAMD_ERROR_SERVER_REMOVED, NULL);
  g_assert_false (has_signal (fx, "wipe-requested"));
  mamd_engine_announce_pending_wipes (fx->engine);
  g_assert_cmpuint (count_signals (fx, "wipe-requested"), ==, 1);
  s3 = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-3");
  g_assert_cmpuint (s3->seq, >, seq);
}

static void
test_wipe_expiry (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) kept = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) wipes = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  write_license (fx, "advanced", 365 * 86400);
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  kept = sign_in_ok (fx, &user1, "chat", BOB, "ios", "dev-2");
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_no_error (error);
  engine_stop (fx);

  /* six days later: still pending, the revoked session is gone after 24 h */
  fx->clock_offset = 6 * DAY_US;
  engine_start (fx);
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 1);
  g_clear_pointer (&wipes, g_ptr_array_unref);
  g_assert_null (mamd_engine_lookup_session (fx->engine, session->session->id));
  g_assert_nonnull (mamd_engine_lookup_session (fx->engine, kept->session->id));
  g_assert_cmpuint (count_events (fx, "session-expired"), ==, 1);
  engine_stop (fx);

  /* eight days: given up, with a warning */
  fx->clock_offset = 8 * DAY_US;
  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING, "*never acknowledged and expired*");
  engine_start (fx);
  g_test_assert_expected_messages ();
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 0);
  g_assert_cmpuint (count_events (fx, "wipe-expired"), ==, 1);
}

static void
test_directory_sync (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[test]\nUsers=" ALICE
                                        ":alice;" BOB ":bob\n"));
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);

  mamd_engine_sync_directory_async (fx->engine, "chat", NULL, got_result, fx);
  res = wait_result (fx);
  g_assert_true (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 1);
  result = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  assert_sign_in_fails (fx, "chat", CAROL, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);
  g_clear_object (&res);

  mamd_engine_sync_directory_async (fx->engine, "nope", NULL, got_result, fx);
  res = wait_result (fx);
  g_assert_false (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
}

/* With an interval set, the directory is synced at start. */
static void
test_directory_sync_at_start (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) result = NULL;
  gboolean timed_out = FALSE;
  guint timeout_id;

  write_daemon (fx, "DirectorySyncInterval=3600\n");
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[test]\nUsers=" ALICE
                                        ":alice\n"));
  write_server (fx, "nosync", MAM_SERVER ("AutoCreateUsers=false\n"));
  engine_start (fx);
  timeout_id = g_timeout_add_seconds (60, set_flag, &timed_out);
  while (count_events (fx, "directory-synced") == 0 && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout_id);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 1);
  result = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  /* a server without a sync plugin group provisions nobody */
  assert_sign_in_fails (fx, "nosync", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);
}

static void
test_start_invalid (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", "[Server]\nEnable=maybe\nTenantId=nope\n");
  g_assert_false (engine_try_start (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  /* every problem, one per line */
  g_assert_nonnull (strstr (error->message, "Enable"));
  g_assert_nonnull (strstr (error->message, "TenantId"));
  g_assert_nonnull (strchr (error->message, '\n'));
  g_clear_object (&fx->engine);
  g_clear_object (&fx->store);
}

static void
on_fatal (MamdEngine *engine, const GError *error, gpointer user_data)
{
  guint *count = user_data;

  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  (*count)++;
}

/* A real write failure of the real store (the file size limit makes every
 * write fail): the call fails with Store, "fatal" is emitted once, and later
 * calls are refused. Runs in a subprocess because the limit cannot be
 * raised again. */
static void
test_store_failure (Fixture *fx, gconstpointer data)
{
  if (g_test_subprocess ()) {
    g_autoptr(MamdEngineResult) result = NULL;
    g_autoptr(GError) error = NULL;
    struct rlimit limit = { 1, 1 };
    guint fatal = 0;

    /* the warnings are the point here: the parent checks them */
    g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    write_server (fx, "chat", MAM_SERVER (""));
    engine_start (fx);
    g_signal_connect (fx->engine, "fatal", G_CALLBACK (on_fatal), &fatal);
    g_assert_true (mamd_store_flush (fx->store, &error));
    g_assert_no_error (error);
    signal (SIGXFSZ, SIG_IGN);
    g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);

    result = sign_in (fx, &user1, "chat", ALICE, "ios", "dev-1", &error);
    g_assert_null (result);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
    g_assert_cmpuint (fatal, ==, 1);
    g_assert_false (has_signal (fx, "enrollment-required"));
    g_clear_error (&error);
    result = sign_in (fx, &user1, "chat", BOB, "ios", "dev-2", &error);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
    g_assert_cmpuint (fatal, ==, 1);
    mamd_test_rm_rf (fx->tmp);
    _exit (0);
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*state store failed, stopping*");
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/mamd/engine/sign-in/restricted", test_sign_in_restricted);
  ADD ("/mamd/engine/sign-in/other-method", test_sign_in_other_method);
  ADD ("/mamd/engine/sign-in/errors", test_sign_in_errors);
  ADD ("/mamd/engine/sign-in/user-mismatch", test_sign_in_user_mismatch);
  ADD ("/mamd/engine/sign-in/created-user", test_sign_in_created_user);
  ADD ("/mamd/engine/sign-in/cancel", test_sign_in_cancel);
  ADD ("/mamd/engine/gate/not-licensed", test_gate_not_licensed);
  ADD ("/mamd/engine/gate/forbidden", test_gate_forbidden);
  ADD ("/mamd/engine/gate/invalid-resource", test_gate_invalid_resource);
  ADD ("/mamd/engine/enrollment/success", test_enroll_success);
  ADD ("/mamd/engine/enrollment/declined", test_enroll_declined);
  ADD ("/mamd/engine/enrollment/failed-isolation", test_enroll_failed_isolation);
  ADD ("/mamd/engine/enrollment/failed-after-enrolled", test_enroll_failed_after_enrolled);
  ADD ("/mamd/engine/owner", test_owner_checks);
  ADD ("/mamd/engine/uid-cap", test_uid_cap);
  ADD ("/mamd/engine/reload/enable", test_reload_enable);
  ADD ("/mamd/engine/reload/invalid", test_reload_invalid);
  ADD ("/mamd/engine/reload/gate", test_reload_gate);
  ADD ("/mamd/engine/license/expiry", test_license_expiry);
  ADD ("/mamd/engine/restart", test_restart);
  ADD ("/mamd/engine/wipe-expiry", test_wipe_expiry);
  ADD ("/mamd/engine/directory-sync", test_directory_sync);
  ADD ("/mamd/engine/directory-sync/at-start", test_directory_sync_at_start);
  ADD ("/mamd/engine/start/invalid-config", test_start_invalid);
  ADD ("/mamd/engine/store-failure", test_store_failure);

  return g_test_run ();
}
