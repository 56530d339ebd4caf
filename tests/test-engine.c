/*
 * The engine end to end, without a bus (the fixture is in
 * mamd-test-engine-fixture.c): sign-in, the MAM gates, enrollment
 * transitions, session ownership and the per-uid cap. Reload, restarts,
 * expiry, directory sync and store failures are in test-engine-lifecycle.c.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "mamd-test-engine-fixture.h"

#define OTHER_TENANT "99999999-9999-4999-8999-999999999999"

static const MamdCaller user2 = { 1002, FALSE };

/* ---- driving async calls ---- */

static MamdEngineResult *
sign_out (Fixture *fx, const MamdCaller *caller, const char *session, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_sign_out_async (fx->engine, caller, session, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_sign_out_finish (fx->engine, res, error);
}

static MamdEngineResult *
readd (Fixture *fx, const MamdCaller *caller, const char *server, const char *device,
       GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_readd_server_async (fx->engine, caller, server, device, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_readd_server_finish (fx->engine, res, error);
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

/* LastEventSeq counts committed events only: a seq still on its way to the
 * store may be handed out again after a crash. */
static void
test_last_seq_committed (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;
  guint64 before;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  before = mamd_engine_get_last_seq (fx->engine);
  g_assert_cmpuint (before, ==, session->seq);
  mamd_engine_report_enrollment_async (fx->engine, &user1, session->session->id,
                                       MAMD_ENROLLMENT_DECLINED, -1, NULL, got_result, fx);
  /* its event has a seq, but the commit has not completed */
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, before);
  res = wait_result (fx);
  result = mamd_engine_report_enrollment_finish (fx->engine, res, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (result->seq, >, before);
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, result->seq);
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
  /* the start announced the server's policy: seq 1 */
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, 1);
  assert_sign_in_fails (fx, "nope", ALICE, "ios", "dev-1", MAMD_ERROR_NOT_FOUND,
                        "no server 'nope' is configured (see mamctl servers)");
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "", MAMD_ERROR_INVALID_ARGS, "device id");
  assert_sign_in_fails (fx, "chat", ALICE, "ios", long_device, MAMD_ERROR_INVALID_ARGS,
                        "device id");
  assert_sign_in_fails (fx, "chat", ALICE, "android", "dev-1",
                        MAMD_ERROR_UNSUPPORTED_PLATFORM,
                        "Intune MAM supports iOS only; Android is not supported yet");
  assert_sign_in_fails (fx, "chat", ALICE, "windows", "dev-1",
                        MAMD_ERROR_UNSUPPORTED_PLATFORM, "report ios or android");

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
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, 1);
}

static void
test_sign_in_user_mismatch (Fixture *fx, gconstpointer data)
{
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n"));
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH,
                        "no user of auth service test on server chat has objectId " ALICE
                        " (AutoCreateUsers is off for this server): users must exist (first "
                        "web login or LDAP provisioning) and be "
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

/* An in-process sign-in plugin without MAMD_PLUGIN_CAP_CREATES_USERS, as a
 * SAML plugin will be: it trusts the object-id of its credential. */
G_DECLARE_FINAL_TYPE (StrictPlugin, strict_plugin, STRICT, PLUGIN, MamdPlugin)
struct _StrictPlugin {
  MamdPlugin parent_instance;
};
G_DEFINE_FINAL_TYPE (StrictPlugin, strict_plugin, MAMD_TYPE_PLUGIN)

static GObject *
strict_load_config (MamdPlugin *plugin, const char *server_id, const char *tenant_id,
                    const char *client_id, GKeyFile *keyfile, const char *group,
                    GError **error)
{
  return g_object_new (G_TYPE_OBJECT, NULL);
}

static void
strict_authenticate_async (MamdPlugin *plugin, GObject *config, GVariant *credential,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (plugin, cancellable, callback, user_data);
  const char *object_id = NULL;
  GError *error = NULL;
  MamdIdentity *identity;

  g_variant_lookup (credential, "object-id", "&s", &object_id);
  identity = mamd_identity_new (object_id, TENANT, NULL, "objectId", "strict", &error);
  if (identity == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, identity, (GDestroyNotify) mamd_identity_free);
}

static MamdIdentity *
strict_authenticate_finish (MamdPlugin *plugin, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
strict_plugin_class_init (StrictPluginClass *klass)
{
  MamdPluginClass *plugin_class = MAMD_PLUGIN_CLASS (klass);

  plugin_class->method = "strict";
  plugin_class->description = "sign-in without creating users (test)";
  plugin_class->capabilities = MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE;
  plugin_class->load_config = strict_load_config;
  plugin_class->authenticate_async = strict_authenticate_async;
  plugin_class->authenticate_finish = strict_authenticate_finish;
}

static void
strict_plugin_init (StrictPlugin *self)
{
}

/* A method whose plugin does not create users never does, whatever
 * AutoCreateUsers says; one that does (the test plugin) still may. */
static void
test_sign_in_plugin_creates_no_users (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdPlugin) strict = g_object_new (strict_plugin_get_type (), NULL);
  g_autoptr(GVariant) cred = credential (ALICE, TENANT, NULL, NULL);
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) created = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (mamd_plugin_loader_add (fx->loader, strict, &error));
  g_assert_no_error (error);
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=true\n[strict]\n"));
  engine_start (fx);
  result = sign_in_full (fx, &user1, "chat", "strict", cred, "ios", "dev-1", NULL, &error);
  g_assert_null (result);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_USER_MISMATCH);
  g_assert_nonnull (strstr (error->message, "sign-ins through this method never create users"));
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 0);
  created = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
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
  /* the guide's order: the platform comes before the gate */
  assert_sign_in_fails (fx, "chat", ALICE, "android", "dev-1", MAMD_ERROR_UNSUPPORTED_PLATFORM,
                        "Intune MAM supports iOS only");
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
  g_autoptr(MamdEngineResult) squatter = NULL;
  g_autoptr(MamdEngineResult) other = NULL;
  g_autoptr(MamdEngineResult) other_again = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) wipes = NULL;
  g_autofree char *wipe_id = NULL;
  g_auto(GStrv) wipe_ids = g_new0 (char *, 3);
  const MamdWipeRecord *wipe;

  write_server (fx, "alpha", MAM_SERVER (""));
  write_server (fx, "beta", MAM_SERVER (""));
  engine_start (fx);
  a1 = sign_in_ok (fx, &user1, "alpha", ALICE, "ios", "dev-d");
  a2 = sign_in_ok (fx, &user1, "alpha", BOB, "ios", "dev-d");
  b1 = sign_in_ok (fx, &user1, "beta", ALICE, "ios", "dev-d");
  e1 = sign_in_ok (fx, &user2, "alpha", CAROL, "ios", "dev-e");
  /* another uid claiming the same device id on the same server */
  other = sign_in_ok (fx, &user2, "alpha", CAROL, "ios", "dev-d");
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
  /* the failure is uid 1001's: uid 1002's session on that device id stays */
  g_assert_cmpint (state_of (fx, other->session->id), ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
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

  /* a revoked session takes no more reports; the answer says what to do */
  result = report (fx, &user1, a2->session->id, MAMD_ENROLLMENT_FAILED, -1, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, "fix the underlying issue before re-adding the "
                                            "server"));
  g_clear_error (&error);

  /* no retry on A from D; B still works on D, A still works on E */
  assert_sign_in_fails (fx, "alpha", ALICE, "ios", "dev-d", MAMD_ERROR_SERVER_REMOVED,
                        "server alpha was removed from device dev-d: Intune MAM "
                        "enrollment failed (201 InternalError)");
  /* the next step names both, in order */
  assert_sign_in_fails (fx, "alpha", ALICE, "ios", "dev-d", MAMD_ERROR_SERVER_REMOVED,
                        "once the device has acknowledged the wipe of the server's data "
                        "(AcknowledgeWipe, mamctl ack-wipe), re-add the server");
  b2 = sign_in_ok (fx, &user1, "beta", BOB, "ios", "dev-d");
  g_assert_cmpint (b2->session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);

  /* the wipe is seen and acknowledged by the failed session's uid only: not
   * by another uid that claims the same device id on another server, and
   * still after that uid signed the revoked session out */
  squatter = sign_in_ok (fx, &user2, "beta", CAROL, "ios", "dev-d");
  g_clear_pointer (&result, mamd_engine_result_free);
  result = sign_out (fx, &user1, a1->session->id, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_true (mamd_engine_caller_may_ack_wipe (fx->engine, &user1,
                                                  g_ptr_array_index (wipes, 0)));
  g_assert_true (mamd_engine_caller_may_ack_wipe (fx->engine, &admin,
                                                  g_ptr_array_index (wipes, 0)));
  g_assert_false (mamd_engine_caller_may_ack_wipe (fx->engine, &user2,
                                                   g_ptr_array_index (wipes, 0)));
  g_clear_pointer (&wipes, g_ptr_array_unref);
  /* no re-add while the wipe is pending, not even by an administrator: the
   * server's old data may still be on the device */
  result = readd (fx, &admin, "alpha", "dev-d", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, wipe_id));
  g_assert_nonnull (strstr (error->message, "must wipe that server's data and acknowledge"));
  g_clear_error (&error);
  assert_sign_in_fails (fx, "alpha", ALICE, "ios", "dev-d", MAMD_ERROR_SERVER_REMOVED, NULL);
  g_assert_cmpuint (count_events (fx, "server-readded"), ==, 0);
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

  /* re-add, by that uid or an administrator only: then sign-ins work again */
  result = readd (fx, &user1, "alpha", "dev-e", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
  g_clear_error (&error);
  result = readd (fx, &user2, "alpha", "dev-d", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "for this uid's sessions"));
  g_clear_error (&error);
  /* and the removal refuses uid 1001 only */
  other_again = sign_in_ok (fx, &user2, "alpha", CAROL, "ios", "dev-d");
  result = readd (fx, &user1, "alpha", "dev-d", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (result->seq, ==, mamd_engine_get_last_seq (fx->engine));
  g_clear_pointer (&result, mamd_engine_result_free);
  again = sign_in_ok (fx, &user1, "alpha", ALICE, "ios", "dev-d");
  g_assert_cmpint (again->session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_cmpuint (count_events (fx, "server-readded"), ==, 1);
  g_assert_cmpuint (count_events (fx, "wipe-acknowledged"), ==, 1);

  /* both uids fail on that device: an administrator re-adds it for both */
  result = report (fx, &user1, again->session->id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = report (fx, &user2, other_again->session->id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  assert_sign_in_fails (fx, "alpha", ALICE, "ios", "dev-d", MAMD_ERROR_SERVER_REMOVED, NULL);
  /* one wipe acknowledged, the other still pending: nothing is re-added */
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 2);
  wipe_ids[0] = g_strdup (((MamdWipeRecord *) g_ptr_array_index (wipes, 0))->id);
  wipe_ids[1] = g_strdup (((MamdWipeRecord *) g_ptr_array_index (wipes, 1))->id);
  g_clear_pointer (&wipes, g_ptr_array_unref);
  result = ack_wipe (fx, &admin, wipe_ids[0], &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = readd (fx, &admin, "alpha", "dev-d", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_clear_error (&error);
  g_assert_cmpuint (count_events (fx, "server-readded"), ==, 1);
  result = ack_wipe (fx, &admin, wipe_ids[1], &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = readd (fx, &admin, "alpha", "dev-d", &error);
  g_assert_no_error (error);
  /* one event per uid's removal; the answer carries the last */
  g_assert_cmpuint (result->seq, ==, mamd_engine_get_last_seq (fx->engine));
  g_assert_cmpuint (count_events (fx, "server-readded"), ==, 3);
  g_clear_pointer (&result, mamd_engine_result_free);
  g_clear_pointer (&again, mamd_engine_result_free);
  again = sign_in_ok (fx, &user1, "alpha", ALICE, "ios", "dev-d");
}

/* Sets the owner of the one row of @table (removed_servers or wipes) to
 * @uid; -1 is what the upgrade from schema 2 leaves where the failed
 * session was gone (signed out, say). The engine must be stopped. */
static void
set_owner (Fixture *fx, const char *table, gint64 uid)
{
  g_autofree char *path = g_build_filename (fx->state, "state.db", NULL);
  g_autofree char *sql = g_strdup_printf ("UPDATE %s SET owner_uid = %" G_GINT64_FORMAT,
                                          table, uid);
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_changes (db), ==, 1);
  sqlite3_close (db);
}

/* A wipe or removal carried over from schema 2 without an owner: whose
 * failure it came from is unknown, so it holds up the re-adding of every
 * removal of its server and device while the wipe is pending. */
static void
test_readd_unknown_owner (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GPtrArray) wipes = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *wipe_id = NULL;

  write_server (fx, "alpha", MAM_SERVER (""));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "alpha", ALICE, "ios", "dev-u");
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 1);
  wipe_id = g_strdup (((MamdWipeRecord *) g_ptr_array_index (wipes, 0))->id);
  g_clear_pointer (&wipes, g_ptr_array_unref);
  engine_stop (fx);

  /* the wipe's owner is unknown, the removal is uid 1001's */
  set_owner (fx, "wipes", -1);
  engine_start (fx);
  result = readd (fx, &user1, "alpha", "dev-u", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, wipe_id));
  g_assert_nonnull (strstr (error->message, "an administrator"));
  g_clear_error (&error);
  result = readd (fx, &admin, "alpha", "dev-u", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_clear_error (&error);
  g_assert_cmpuint (count_events (fx, "server-readded"), ==, 0);
  engine_stop (fx);

  /* the removal's owner is unknown (it refuses every uid), the wipe is
   * uid 1001's: no re-add while it is pending either */
  set_owner (fx, "wipes", 1001);
  set_owner (fx, "removed_servers", -1);
  engine_start (fx);
  result = readd (fx, &admin, "alpha", "dev-u", &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, wipe_id));
  g_clear_error (&error);
  assert_sign_in_fails (fx, "alpha", ALICE, "ios", "dev-u", MAMD_ERROR_SERVER_REMOVED, NULL);

  /* acknowledged: the administrator re-adds it */
  result = ack_wipe (fx, &user1, wipe_id, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = readd (fx, &admin, "alpha", "dev-u", &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  g_clear_pointer (&session, mamd_engine_result_free);
  session = sign_in_ok (fx, &user1, "alpha", ALICE, "ios", "dev-u");
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

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/mamd/engine/sign-in/restricted", test_sign_in_restricted);
  ADD ("/mamd/engine/sign-in/other-method", test_sign_in_other_method);
  ADD ("/mamd/engine/last-seq-committed", test_last_seq_committed);
  ADD ("/mamd/engine/sign-in/errors", test_sign_in_errors);
  ADD ("/mamd/engine/sign-in/user-mismatch", test_sign_in_user_mismatch);
  ADD ("/mamd/engine/sign-in/created-user", test_sign_in_created_user);
  ADD ("/mamd/engine/sign-in/plugin-creates-no-users", test_sign_in_plugin_creates_no_users);
  ADD ("/mamd/engine/sign-in/cancel", test_sign_in_cancel);
  ADD ("/mamd/engine/gate/not-licensed", test_gate_not_licensed);
  ADD ("/mamd/engine/gate/forbidden", test_gate_forbidden);
  ADD ("/mamd/engine/gate/invalid-resource", test_gate_invalid_resource);
  ADD ("/mamd/engine/enrollment/success", test_enroll_success);
  ADD ("/mamd/engine/enrollment/declined", test_enroll_declined);
  ADD ("/mamd/engine/enrollment/failed-isolation", test_enroll_failed_isolation);
  ADD ("/mamd/engine/enrollment/failed-after-enrolled", test_enroll_failed_after_enrolled);
  ADD ("/mamd/engine/readd/unknown-owner", test_readd_unknown_owner);
  ADD ("/mamd/engine/owner", test_owner_checks);
  ADD ("/mamd/engine/uid-cap", test_uid_cap);

  return g_test_run ();
}
