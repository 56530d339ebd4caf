/*
 * Pure policy rules: no store, no bus, no plugin module. Server
 * configurations, plugin entries and licences are plain structs built here.
 */
#include "config.h"

#include <string.h>

#include "mamd-policy.h"

#define TENANT "4a7c5e1d-3b2f-4c8e-9d6a-1f0e2b3c4d5e"
#define CLIENT "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
#define NOW 1900000000
#define OID "6e8d4e7b-2b0c-4c5b-9f1f-3d3e4f5a6b7c"

typedef struct {
  MamdServerConfig server;
  MamdPluginEntry entry;
  MamdLicense license;
  MamdGateInput input;
  guint plugin_gate_calls;
  gint plugin_gate_result; /* 0 open, 1 invalid resource, 2 FALSE without error */
  char *platforms[3];
} Fixture;

static gboolean
fixture_plugin_gate (gpointer user_data, GError **error)
{
  Fixture *fx = user_data;

  fx->plugin_gate_calls++;
  if (fx->plugin_gate_result == 1) {
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE,
                         "test: AADSTS650057: the MAM service permission is missing");
    return FALSE;
  }
  return fx->plugin_gate_result == 0;
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  fx->server.id = (char *) "chat";
  fx->server.path = (char *) "/etc/mamd/servers.d/chat.conf";
  fx->server.enable = TRUE;
  fx->server.tenant_id = (char *) TENANT;
  fx->server.client_id = (char *) CLIENT;
  fx->server.auth_service = (char *) "office365";
  fx->server.scope = (char *) "api://" CLIENT "/login.mattermost";
  fx->platforms[0] = (char *) "ios";
  fx->platforms[1] = (char *) "android";
  fx->platforms[2] = NULL;
  fx->server.allowed_platforms = fx->platforms;
  fx->server.auto_create_users = TRUE;

  fx->entry.method = (char *) "office365";
  fx->entry.capabilities = MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE;
  /* any non-NULL pointer marks the entry enabled; policy never calls it */
  fx->entry.plugin = (MamdPlugin *) fx;

  fx->license.id = (char *) "lic-1";
  fx->license.licensee = (char *) "Example Corp";
  fx->license.sku_short_name = (char *) "advanced";
  fx->license.issued_at = NOW - 86400;
  fx->license.expires_at = NOW + 86400;

  fx->input.server = &fx->server;
  fx->input.auth_entry = &fx->entry;
  fx->input.license = &fx->license;
  fx->input.now = NOW;
  fx->input.plugin_gate = fixture_plugin_gate;
  fx->input.plugin_gate_data = fx;
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
}

static void
assert_gate_closed (Fixture *fx, gint code, const char *needle)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (mamd_policy_check_gate (&fx->input, &error));
  g_assert_error (error, MAMD_ERROR, code);
  if (strstr (error->message, needle) == NULL)
    g_error ("gate error \"%s\" does not mention \"%s\"", error->message, needle);
  g_assert_nonnull (strstr (error->message, "chat"));
}

/* ---- mam_required ---- */

static void
test_mam_required (Fixture *fx, gconstpointer data)
{
  g_assert_true (mamd_policy_mam_required (&fx->server, "office365"));
  g_assert_false (mamd_policy_mam_required (&fx->server, "saml"));
  g_assert_false (mamd_policy_mam_required (&fx->server, "ldap"));
  fx->server.auth_service = NULL;
  /* no AuthService: every method is evaluated (and the gate will say why not) */
  g_assert_true (mamd_policy_mam_required (&fx->server, "saml"));
  fx->server.enable = FALSE;
  g_assert_false (mamd_policy_mam_required (&fx->server, "saml"));
  fx->server.auth_service = (char *) "office365";
  g_assert_false (mamd_policy_mam_required (&fx->server, "office365"));
}

/* ---- the gate, one row at a time ---- */

static void
test_gate_open (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (mamd_policy_check_gate (&fx->input, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (fx->plugin_gate_calls, ==, 1);
  /* no plugin check at all: open */
  fx->input.plugin_gate = NULL;
  g_assert_true (mamd_policy_check_gate (&fx->input, &error));
  g_assert_no_error (error);
}

static void
test_gate_not_enabled (Fixture *fx, gconstpointer data)
{
  fx->server.enable = FALSE;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "Enable");
}

static void
test_gate_auth_service_unset (Fixture *fx, gconstpointer data)
{
  fx->server.auth_service = NULL;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN,
                      "AuthService is not set in /etc/mamd/servers.d/chat.conf: set it to "
                      "the authentication method selected for Intune MAM");
}

static void
test_gate_plugin_missing (Fixture *fx, gconstpointer data)
{
  fx->input.auth_entry = NULL;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "'office365'");
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "not provided by any loaded plugin");
}

static void
test_gate_plugin_disabled (Fixture *fx, gconstpointer data)
{
  fx->entry.plugin = NULL;
  fx->entry.disabled_reason = (char *) "ABI version 7, expected 1";
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "'office365'");
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "ABI version 7, expected 1");
}

static void
test_gate_plugin_lacks_capability (Fixture *fx, gconstpointer data)
{
  fx->entry.capabilities = MAMD_PLUGIN_CAP_DIRECTORY_SYNC;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "cannot be selected for Intune MAM");
}

static void
test_gate_license_none (Fixture *fx, gconstpointer data)
{
  fx->input.license = NULL;
  fx->input.license_reason = "licence file /etc/mamd/license.json is missing";
  assert_gate_closed (fx, MAMD_ERROR_NOT_LICENSED, "/etc/mamd/license.json is missing");
}

static void
test_gate_license_tier (Fixture *fx, gconstpointer data)
{
  fx->license.sku_short_name = (char *) "professional";
  assert_gate_closed (fx, MAMD_ERROR_NOT_LICENSED, "not licensed for Intune MAM");
  /* entry maps to the same tier as advanced */
  fx->license.sku_short_name = (char *) "entry";
  g_assert_true (mamd_policy_check_gate (&fx->input, NULL));
}

static void
test_gate_license_expired (Fixture *fx, gconstpointer data)
{
  fx->input.now = fx->license.expires_at + 1;
  assert_gate_closed (fx, MAMD_ERROR_NOT_LICENSED, "not licensed for Intune MAM");
}

static void
test_gate_license_coverage (Fixture *fx, gconstpointer data)
{
  char *covered[] = { (char *) "other", NULL };

  fx->license.servers = covered;
  assert_gate_closed (fx, MAMD_ERROR_NOT_LICENSED, "not licensed for Intune MAM");
  covered[0] = (char *) "chat";
  g_assert_true (mamd_policy_check_gate (&fx->input, NULL));
  fx->license.servers = NULL;
}

static void
test_gate_tenant (Fixture *fx, gconstpointer data)
{
  fx->server.tenant_id = NULL;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "TenantId is not set");
}

static void
test_gate_client (Fixture *fx, gconstpointer data)
{
  fx->server.client_id = NULL;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "ClientId is not set");
}

static void
test_gate_scope (Fixture *fx, gconstpointer data)
{
  fx->server.scope = NULL;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "IntuneScope is not set");
}

static void
test_gate_admin_consent (Fixture *fx, gconstpointer data)
{
  fx->plugin_gate_result = 1;
  assert_gate_closed (fx, MAMD_ERROR_INVALID_RESOURCE, "AADSTS650057");
  /* a plugin that closes the gate without saying why is caught */
  fx->plugin_gate_result = 2;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "plugin bug");
}

/* Break everything, then repair one condition at a time: each step must
 * report the next condition of the guide's order. */
static void
test_gate_order (Fixture *fx, gconstpointer data)
{
  fx->server.enable = FALSE;
  fx->server.auth_service = NULL;
  fx->input.license = NULL;
  fx->input.license_reason = "no licence is configured";
  fx->server.tenant_id = NULL;
  fx->server.client_id = NULL;
  fx->server.scope = NULL;
  fx->plugin_gate_result = 1;

  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "not enabled");
  fx->server.enable = TRUE;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "AuthService is not set");
  fx->server.auth_service = (char *) "office365";
  fx->input.auth_entry = NULL;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "not provided by any loaded plugin");
  fx->input.auth_entry = &fx->entry;
  assert_gate_closed (fx, MAMD_ERROR_NOT_LICENSED, "no licence is configured");
  fx->input.license = &fx->license;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "TenantId");
  fx->server.tenant_id = (char *) TENANT;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "ClientId");
  fx->server.client_id = (char *) CLIENT;
  assert_gate_closed (fx, MAMD_ERROR_FORBIDDEN, "IntuneScope");
  /* the plugin is asked only once everything before it passes */
  g_assert_cmpuint (fx->plugin_gate_calls, ==, 0);
  fx->server.scope = (char *) "api://" CLIENT "/login.mattermost";
  assert_gate_closed (fx, MAMD_ERROR_INVALID_RESOURCE, "AADSTS650057");
  g_assert_cmpuint (fx->plugin_gate_calls, ==, 1);
  fx->plugin_gate_result = 0;
  g_assert_true (mamd_policy_check_gate (&fx->input, NULL));
}

/* ---- arguments and platforms ---- */

static void
test_args (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *max = g_strnfill (MAMD_POLICY_MAX_ARG_LEN, 'a');
  g_autofree char *over = g_strnfill (MAMD_POLICY_MAX_ARG_LEN + 1, 'a');

  g_assert_true (mamd_policy_check_arg ("device id", "device-1", NULL));
  g_assert_true (mamd_policy_check_arg ("device id", max, NULL));
  g_assert_false (mamd_policy_check_arg ("device id", over, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_assert_nonnull (strstr (error->message, "device id"));
  g_clear_error (&error);
  g_assert_false (mamd_policy_check_arg ("platform", "", &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_false (mamd_policy_check_arg ("platform", NULL, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_false (mamd_policy_check_arg ("method", "te\xffst", &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_assert_nonnull (strstr (error->message, "UTF-8"));
}

static void
test_platforms (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  char *ios_only[] = { (char *) "ios", NULL };

  g_assert_true (mamd_policy_check_platform (&fx->server, "ios", TRUE, NULL));
  g_assert_true (mamd_policy_check_platform (&fx->server, "android", FALSE, NULL));
  g_assert_false (mamd_policy_check_platform (&fx->server, "android", TRUE, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_UNSUPPORTED_PLATFORM);
  g_assert_nonnull (strstr (error->message,
                            "Intune MAM supports iOS only; Android is not supported yet"));
  g_clear_error (&error);
  /* AllowedPlatforms takes only ios and android: an unknown platform is
   * the client's mistake, not a setting to add */
  g_assert_false (mamd_policy_check_platform (&fx->server, "windows", FALSE, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_UNSUPPORTED_PLATFORM);
  g_assert_nonnull (strstr (error->message, "platform 'windows' is unknown"));
  g_assert_nonnull (strstr (error->message, "report ios or android"));
  g_assert_null (strstr (error->message, "add it to AllowedPlatforms"));
  g_clear_error (&error);
  g_assert_false (mamd_policy_check_platform (&fx->server, "iOS", FALSE, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_UNSUPPORTED_PLATFORM);
  g_assert_null (strstr (error->message, "add it to AllowedPlatforms"));
  g_clear_error (&error);
  fx->server.allowed_platforms = ios_only;
  g_assert_false (mamd_policy_check_platform (&fx->server, "android", FALSE, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_UNSUPPORTED_PLATFORM);
  g_assert_nonnull (strstr (error->message, "not allowed on server chat"));
  g_assert_nonnull (strstr (error->message, "add it to AllowedPlatforms"));
}

/* ---- status codes and outcomes ---- */

static void
test_status_codes (Fixture *fx, gconstpointer data)
{
  static const struct {
    gint code;
    const char *name;
    MamdEnrollmentOutcome outcome;
  } rows[] = {
    { 100, "NewPoliciesReceived", MAMD_ENROLLMENT_SUCCESS },
    { 101, "PoliciesHaveNotChanged", MAMD_ENROLLMENT_SUCCESS },
    { 102, "WipeReceived", MAMD_ENROLLMENT_SUCCESS },
    { 103, "NoPolicyReceived", MAMD_ENROLLMENT_SUCCESS },
    { 104, "UnenrollmentSuccess", MAMD_ENROLLMENT_SUCCESS },
    { 200, "AccountNotLicensed", MAMD_ENROLLMENT_FAILED },
    { 201, "InternalError", MAMD_ENROLLMENT_FAILED },
    { 202, "Status202", MAMD_ENROLLMENT_FAILED },
    { 203, "AuthRequired", MAMD_ENROLLMENT_FAILED },
    { 205, "EnrollmentEndPointNetworkFailure", MAMD_ENROLLMENT_FAILED },
    { 206, "ParsingFailure", MAMD_ENROLLMENT_FAILED },
    { 207, "NilAccount", MAMD_ENROLLMENT_FAILED },
    { 208, "AlreadyEnrolled", MAMD_ENROLLMENT_FAILED },
    { 212, "PolicyEndPointNetworkFailure", MAMD_ENROLLMENT_FAILED },
    { 213, "AppNotEnrolled", MAMD_ENROLLMENT_FAILED },
    { 214, "NotEnrolledAccount", MAMD_ENROLLMENT_FAILED },
    { 216, "Timeout", MAMD_ENROLLMENT_FAILED },
    { 219, "LoginCanceled", MAMD_ENROLLMENT_DECLINED },
    { 220, "Status220", MAMD_ENROLLMENT_FAILED },
    { 225, "LicensedNotTargeted", MAMD_ENROLLMENT_FAILED },
  };
  static const gint unknown[] = { -1, 0, 99, 105, 150, 199, 226, 300 };

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++) {
    MamdEnrollmentOutcome outcome;

    g_assert_cmpstr (mamd_enrollment_status_code_name (rows[i].code), ==, rows[i].name);
    g_assert_true (mamd_enrollment_status_code_outcome (rows[i].code, &outcome));
    g_assert_cmpint (outcome, ==, rows[i].outcome);
    g_assert_true (mamd_policy_check_status (rows[i].outcome, rows[i].code, NULL));
  }
  for (guint i = 0; i < G_N_ELEMENTS (unknown); i++) {
    MamdEnrollmentOutcome outcome;

    g_assert_null (mamd_enrollment_status_code_name (unknown[i]));
    g_assert_false (mamd_enrollment_status_code_outcome (unknown[i], &outcome));
  }
}

static void
test_status_agreement (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  for (guint o = MAMD_ENROLLMENT_SUCCESS; o <= MAMD_ENROLLMENT_FAILED; o++)
    g_assert_true (mamd_policy_check_status (o, -1, NULL));
  g_assert_false (mamd_policy_check_status (MAMD_ENROLLMENT_SUCCESS, 200, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_assert_cmpstr (error->message, ==,
                   "status 200 AccountNotLicensed is a failure but outcome 'success' "
                   "was reported");
  g_clear_error (&error);
  g_assert_false (mamd_policy_check_status (MAMD_ENROLLMENT_FAILED, 219, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_false (mamd_policy_check_status (MAMD_ENROLLMENT_DECLINED, 100, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_false (mamd_policy_check_status (MAMD_ENROLLMENT_FAILED, 150, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
}

static void
test_outcome_strings (Fixture *fx, gconstpointer data)
{
  static const char *const names[] = { "success", "declined", "failed" };
  MamdEnrollmentOutcome outcome;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    g_assert_true (mamd_enrollment_outcome_from_string (names[i], &outcome));
    g_assert_cmpint (outcome, ==, i);
    g_assert_cmpstr (mamd_enrollment_outcome_to_string (outcome), ==, names[i]);
  }
  g_assert_false (mamd_enrollment_outcome_from_string ("Success", &outcome));
  g_assert_false (mamd_enrollment_outcome_from_string (NULL, &outcome));
}

/* ---- the transition table ---- */

static void
test_transitions (Fixture *fx, gconstpointer data)
{
  /* expected new state, or -1 for INVALID_STATE; rows: states, columns:
   * success, declined, failed */
  static const gint table[5][3] = {
    [MAMD_SESSION_STATE_ACTIVE] = { -1, -1, -1 },
    [MAMD_SESSION_STATE_ENROLLMENT_REQUIRED] = { MAMD_SESSION_STATE_ENROLLED,
                                                 MAMD_SESSION_STATE_DECLINED,
                                                 MAMD_SESSION_STATE_REVOKED },
    [MAMD_SESSION_STATE_ENROLLED] = { -1, -1, MAMD_SESSION_STATE_REVOKED },
    [MAMD_SESSION_STATE_DECLINED] = { MAMD_SESSION_STATE_ENROLLED,
                                      MAMD_SESSION_STATE_DECLINED,
                                      MAMD_SESSION_STATE_REVOKED },
    [MAMD_SESSION_STATE_REVOKED] = { -1, -1, -1 },
  };
  g_autoptr(GError) error = NULL;
  MamdSessionState next;

  for (guint s = 0; s < 5; s++) {
    for (guint o = 0; o < 3; o++) {
      gboolean ok = mamd_policy_enrollment_transition (s, NULL, TRUE, o, &next, &error);

      if (table[s][o] == -1) {
        g_assert_false (ok);
        g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
        g_clear_error (&error);
      } else {
        g_assert_true (ok);
        g_assert_no_error (error);
        g_assert_cmpint (next, ==, table[s][o]);
      }
    }
  }
  g_assert_false (mamd_policy_enrollment_transition (MAMD_SESSION_STATE_ACTIVE, NULL, FALSE,
                                                     MAMD_ENROLLMENT_SUCCESS, &next, &error));
  g_assert_nonnull (strstr (error->message, "Intune MAM does not apply to this session"));
  g_clear_error (&error);
  g_assert_false (mamd_policy_enrollment_transition (MAMD_SESSION_STATE_REVOKED, NULL, TRUE,
                                                     MAMD_ENROLLMENT_FAILED, &next, &error));
  g_assert_cmpstr (error->message, ==, "the session is revoked: sign in again");
  g_clear_error (&error);
  /* revoked by a failed enrollment: its reason says to re-add the server */
  g_assert_false (mamd_policy_enrollment_transition (
    MAMD_SESSION_STATE_REVOKED,
    mamd_policy_enrollment_reason ("chat", MAMD_ENROLLMENT_FAILED, 201), TRUE,
    MAMD_ENROLLMENT_SUCCESS, &next, &error));
  g_assert_nonnull (strstr (error->message, "the session is revoked: Intune MAM enrollment "
                                            "failed"));
  g_assert_nonnull (strstr (error->message, "fix the underlying issue before re-adding the "
                                            "server"));
  g_clear_error (&error);
  g_assert_false (mamd_policy_enrollment_transition (MAMD_SESSION_STATE_ENROLLED, NULL, TRUE,
                                                     MAMD_ENROLLMENT_SUCCESS, &next, &error));
  g_assert_nonnull (strstr (error->message, "already enrolled"));
  g_clear_error (&error);
  /* enrolled, then MAM was switched off: a failure removes nothing */
  g_assert_false (mamd_policy_enrollment_transition (MAMD_SESSION_STATE_ENROLLED, NULL, FALSE,
                                                     MAMD_ENROLLMENT_FAILED, &next, &error));
  g_assert_nonnull (strstr (error->message, "Intune MAM does not apply to this session"));
}

static void
test_enrollment_reasons (Fixture *fx, gconstpointer data)
{
  g_assert_cmpstr (mamd_policy_enrollment_reason ("chat", MAMD_ENROLLMENT_SUCCESS, 100), ==,
                   "enrolled (100 NewPoliciesReceived)");
  g_assert_cmpstr (mamd_policy_enrollment_reason ("chat", MAMD_ENROLLMENT_DECLINED, 219), ==,
                   "enrollment declined by the user: retry is allowed; nothing was removed");
  g_assert_nonnull (strstr (mamd_policy_enrollment_reason ("chat", MAMD_ENROLLMENT_FAILED, 201),
                            "Intune MAM enrollment failed (201 InternalError)"));
  g_assert_nonnull (strstr (mamd_policy_enrollment_reason ("chat", MAMD_ENROLLMENT_FAILED, -1),
                            "re-adding the server"));
}

/* ---- access and re-evaluation ---- */

static void
test_access (Fixture *fx, gconstpointer data)
{
  const char *reason = NULL;

  g_assert_true (mamd_policy_access (MAMD_SESSION_STATE_ACTIVE, NULL, FALSE, FALSE, "x",
                                     &reason));
  g_assert_true (mamd_policy_access (MAMD_SESSION_STATE_ENROLLED, NULL, TRUE, TRUE, NULL,
                                     &reason));
  g_assert_true (mamd_policy_access (MAMD_SESSION_STATE_ENROLLED, NULL, FALSE, FALSE, "closed",
                                     &reason));
  g_assert_false (mamd_policy_access (MAMD_SESSION_STATE_ENROLLED, NULL, TRUE, FALSE,
                                      "licence expired", &reason));
  g_assert_cmpstr (reason, ==, "licence expired");
  g_assert_false (mamd_policy_access (MAMD_SESSION_STATE_ENROLLMENT_REQUIRED, "enroll first",
                                      TRUE, TRUE, NULL, &reason));
  g_assert_cmpstr (reason, ==, "enroll first");
  g_assert_false (mamd_policy_access (MAMD_SESSION_STATE_DECLINED, "declined", TRUE, TRUE, NULL,
                                      &reason));
  g_assert_cmpstr (reason, ==, "declined");
  /* restricted while the gate is closed: the gate's error is the one to fix */
  g_assert_false (mamd_policy_access (MAMD_SESSION_STATE_ENROLLMENT_REQUIRED, "enroll first",
                                      TRUE, FALSE, "not licensed", &reason));
  g_assert_cmpstr (reason, ==, "not licensed");
  g_assert_false (mamd_policy_access (MAMD_SESSION_STATE_DECLINED, "declined", TRUE, FALSE,
                                      "not licensed", &reason));
  g_assert_cmpstr (reason, ==, "not licensed");
  g_assert_false (mamd_policy_access (MAMD_SESSION_STATE_REVOKED, "gone", FALSE, TRUE, NULL,
                                      &reason));
  g_assert_cmpstr (reason, ==, "gone");
}

static void
session_init (MamdSessionRecord *rec, MamdSessionState state, const char *method,
              const char *platform, gboolean mam_required)
{
  memset (rec, 0, sizeof (*rec));
  rec->id = (char *) "0123456789abcdef0123456789abcdef";
  rec->server_id = g_intern_string ("chat");
  rec->method = g_intern_string (method);
  rec->tenant_id = g_intern_string (TENANT);
  rec->platform = g_intern_string (platform);
  rec->state = state;
  rec->mam_required = mam_required;
}

static void
test_reevaluate (Fixture *fx, gconstpointer data)
{
  MamdSessionRecord rec;
  MamdSessionState state;
  gboolean required;
  const char *reason;

  /* server removed from the configuration */
  session_init (&rec, MAMD_SESSION_STATE_ACTIVE, "office365", "ios", FALSE);
  g_assert_true (mamd_policy_reevaluate (&rec, NULL, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpstr (reason, ==, "server chat was removed from the configuration");

  /* MAM newly applies: iOS is restricted, Android revoked */
  g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_true (required);
  g_assert_cmpstr (reason, ==, "Intune MAM now applies to server chat: enrollment required");
  session_init (&rec, MAMD_SESSION_STATE_ACTIVE, "office365", "android", FALSE);
  g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_nonnull (strstr (reason, "UnsupportedPlatform"));

  /* another method stays unevaluated */
  session_init (&rec, MAMD_SESSION_STATE_ACTIVE, "saml", "android", FALSE);
  g_assert_false (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ACTIVE);

  /* tenant changed: every live state MAM applies to is revoked, including a
   * session signed in while MAM did not apply, whatever its platform */
  {
    static const MamdSessionState live[] = {
      MAMD_SESSION_STATE_ACTIVE, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED,
      MAMD_SESSION_STATE_DECLINED, MAMD_SESSION_STATE_ENROLLED,
    };

    for (guint i = 0; i < G_N_ELEMENTS (live); i++) {
      gboolean was_required = live[i] != MAMD_SESSION_STATE_ACTIVE;

      session_init (&rec, live[i], "office365", "ios", was_required);
      fx->server.tenant_id = (char *) TENANT;
      g_assert_cmpint (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason),
                       ==, !was_required);
      g_assert_cmpint (state, !=, MAMD_SESSION_STATE_REVOKED);
      fx->server.tenant_id = (char *) "99999999-9999-4999-8999-999999999999";
      g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
      g_assert_cmpint (state, ==, MAMD_SESSION_STATE_REVOKED);
      g_assert_nonnull (strstr (reason, "expects tenant 99999999-9999-4999-8999-999999999999"));
      g_assert_nonnull (strstr (reason, "sign in again"));
    }
    /* a session MAM does not apply to keeps any tenant */
    session_init (&rec, MAMD_SESSION_STATE_ACTIVE, "saml", "ios", FALSE);
    g_assert_false (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
    g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ACTIVE);
    fx->server.tenant_id = (char *) TENANT;
  }

  /* MAM no longer applies */
  fx->server.enable = FALSE;
  session_init (&rec, MAMD_SESSION_STATE_DECLINED, "office365", "ios", TRUE);
  g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_false (required);
  g_assert_cmpstr (reason, ==, "Intune MAM no longer applies to server chat");
  session_init (&rec, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED, "office365", "ios", TRUE);
  g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ACTIVE);
  /* enrolled stays enrolled, only the flag changes */
  session_init (&rec, MAMD_SESSION_STATE_ENROLLED, "office365", "ios", TRUE);
  g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ENROLLED);
  g_assert_false (required);

  /* MAM applies again: that enrolled session must enroll again; one MAM
   * applied to all along keeps its enrollment */
  fx->server.enable = TRUE;
  session_init (&rec, MAMD_SESSION_STATE_ENROLLED, "office365", "ios", FALSE);
  g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_true (required);
  g_assert_cmpstr (reason, ==, "Intune MAM now applies to server chat: enrollment required");
  session_init (&rec, MAMD_SESSION_STATE_ENROLLED, "office365", "ios", TRUE);
  g_assert_false (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_ENROLLED);
  fx->server.enable = FALSE;

  /* a platform no longer allowed: revoked, whatever the method and state */
  {
    static const char *const android_only[] = { "android", NULL };
    static const MamdSessionState live[] = {
      MAMD_SESSION_STATE_ACTIVE, MAMD_SESSION_STATE_ENROLLED, MAMD_SESSION_STATE_DECLINED,
    };

    fx->server.allowed_platforms = (char **) android_only;
    for (guint i = 0; i < G_N_ELEMENTS (live); i++) {
      session_init (&rec, live[i], i == 0 ? "saml" : "office365", "ios", i != 0);
      g_assert_true (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
      g_assert_cmpint (state, ==, MAMD_SESSION_STATE_REVOKED);
      g_assert_cmpstr (reason, ==, "platform 'ios' is no longer allowed on server chat "
                                   "(AllowedPlatforms: android): sign in from an allowed "
                                   "platform");
    }
    session_init (&rec, MAMD_SESSION_STATE_ACTIVE, "saml", "android", FALSE);
    g_assert_false (mamd_policy_reevaluate (&rec, &fx->server, &state, &required, &reason));
    fx->server.allowed_platforms = fx->platforms;
  }

  /* revoked is terminal */
  session_init (&rec, MAMD_SESSION_STATE_REVOKED, "office365", "ios", TRUE);
  g_assert_false (mamd_policy_reevaluate (&rec, NULL, &state, &required, &reason));
  g_assert_cmpint (state, ==, MAMD_SESSION_STATE_REVOKED);
}

/* A first sign-in creates the user only where both the server
 * (AutoCreateUsers) and the method's plugin (CAP_CREATES_USERS) allow it. */
static void
test_create_user (Fixture *fx, gconstpointer data)
{
  const MamdPluginCapabilities oauth = MAMD_PLUGIN_CAP_SIGN_IN |
                                       MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE |
                                       MAMD_PLUGIN_CAP_CREATES_USERS;
  /* like a SAML plugin: its users must exist already */
  const MamdPluginCapabilities saml = MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE;
  g_autoptr(GError) error = NULL;

  g_assert_true (mamd_policy_may_create_user (&fx->server, "office365", oauth, OID, &error));
  g_assert_no_error (error);

  g_assert_false (mamd_policy_may_create_user (&fx->server, "saml", saml, OID, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_USER_MISMATCH);
  g_assert_nonnull (strstr (error->message, "sign-ins through this method never create users"));
  g_assert_nonnull (strstr (error->message, "first web login or LDAP provisioning"));
  g_clear_error (&error);

  fx->server.auto_create_users = FALSE;
  g_assert_false (mamd_policy_may_create_user (&fx->server, "office365", oauth, OID, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_USER_MISMATCH);
  g_assert_nonnull (strstr (error->message, "AutoCreateUsers is off"));
  /* the guide's cause and next step */
  g_assert_nonnull (strstr (error->message, "mutable identifier (email, preferred_username)"));
  g_assert_nonnull (strstr (error->message, "use the Azure AD objectId exclusively"));
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/mamd/policy/mam-required", test_mam_required);
  ADD ("/mamd/policy/gate/open", test_gate_open);
  ADD ("/mamd/policy/gate/not-enabled", test_gate_not_enabled);
  ADD ("/mamd/policy/gate/auth-service-unset", test_gate_auth_service_unset);
  ADD ("/mamd/policy/gate/plugin-missing", test_gate_plugin_missing);
  ADD ("/mamd/policy/gate/plugin-disabled", test_gate_plugin_disabled);
  ADD ("/mamd/policy/gate/plugin-lacks-capability", test_gate_plugin_lacks_capability);
  ADD ("/mamd/policy/license/not-licensed", test_gate_license_none);
  ADD ("/mamd/policy/license/tier", test_gate_license_tier);
  ADD ("/mamd/policy/license/expired", test_gate_license_expired);
  ADD ("/mamd/policy/license/coverage", test_gate_license_coverage);
  ADD ("/mamd/policy/gate/tenant-id", test_gate_tenant);
  ADD ("/mamd/policy/gate/client-id", test_gate_client);
  ADD ("/mamd/policy/gate/scope", test_gate_scope);
  ADD ("/mamd/policy/gate/admin-consent", test_gate_admin_consent);
  ADD ("/mamd/policy/gate/order", test_gate_order);
  ADD ("/mamd/policy/args", test_args);
  ADD ("/mamd/policy/platforms", test_platforms);
  ADD ("/mamd/policy/status/codes", test_status_codes);
  ADD ("/mamd/policy/status/agreement", test_status_agreement);
  ADD ("/mamd/policy/outcome/strings", test_outcome_strings);
  ADD ("/mamd/policy/transitions", test_transitions);
  ADD ("/mamd/policy/transitions/reasons", test_enrollment_reasons);
  ADD ("/mamd/policy/access", test_access);
  ADD ("/mamd/policy/reevaluate", test_reevaluate);
  ADD ("/mamd/policy/create-user", test_create_user);

  return g_test_run ();
}
