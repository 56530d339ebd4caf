#include "config.h"

#include "mamd-policy.h"

#include <string.h>

/* ---- enum helpers declared in mamd-engine.h ---- */

static const char *const outcome_names[] = {
  [MAMD_ENROLLMENT_SUCCESS] = "success",
  [MAMD_ENROLLMENT_DECLINED] = "declined",
  [MAMD_ENROLLMENT_FAILED] = "failed",
};

gboolean
mamd_enrollment_outcome_from_string (const char *text, MamdEnrollmentOutcome *out)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (outcome_names); i++) {
    if (g_str_equal (text, outcome_names[i])) {
      *out = (MamdEnrollmentOutcome) i;
      return TRUE;
    }
  }
  return FALSE;
}

const char *
mamd_enrollment_outcome_to_string (MamdEnrollmentOutcome outcome)
{
  if ((guint) outcome >= G_N_ELEMENTS (outcome_names))
    return "unknown";
  return outcome_names[outcome];
}

/* Intune App SDK enrollment status codes (IntuneMAMEnrollmentStatus). */
static const struct {
  gint code;
  const char *name;
} status_names[] = {
  { 100, "NewPoliciesReceived" },
  { 101, "PoliciesHaveNotChanged" },
  { 102, "WipeReceived" },
  { 103, "NoPolicyReceived" },
  { 104, "UnenrollmentSuccess" },
  { 200, "AccountNotLicensed" },
  { 201, "InternalError" },
  { 203, "AuthRequired" },
  { 205, "EnrollmentEndPointNetworkFailure" },
  { 206, "ParsingFailure" },
  { 207, "NilAccount" },
  { 208, "AlreadyEnrolled" },
  { 212, "PolicyEndPointNetworkFailure" },
  { 213, "AppNotEnrolled" },
  { 214, "NotEnrolledAccount" },
  { 216, "Timeout" },
  { 219, "LoginCanceled" },
  { 225, "LicensedNotTargeted" },
};

static gboolean
status_code_in_range (gint code)
{
  return (code >= 100 && code <= 104) || (code >= 200 && code <= 225);
}

gboolean
mamd_enrollment_status_code_outcome (gint code, MamdEnrollmentOutcome *out)
{
  if (!status_code_in_range (code))
    return FALSE;
  if (code < 200)
    *out = MAMD_ENROLLMENT_SUCCESS;
  else if (code == 219)
    *out = MAMD_ENROLLMENT_DECLINED;
  else
    *out = MAMD_ENROLLMENT_FAILED;
  return TRUE;
}

const char *
mamd_enrollment_status_code_name (gint code)
{
  g_autofree char *name = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (status_names); i++) {
    if (status_names[i].code == code)
      return status_names[i].name;
  }
  if (!status_code_in_range (code))
    return NULL;
  /* interned: the set is bounded by the range, and callers keep it */
  name = g_strdup_printf ("Status%d", code);
  return g_intern_string (name);
}

/* ---- sign-in rules ---- */

gboolean
mamd_policy_mam_required (const MamdServerConfig *server, const char *method)
{
  if (!server->enable)
    return FALSE;
  return server->auth_service == NULL || g_strcmp0 (method, server->auth_service) == 0;
}

static const char *
server_file (const MamdServerConfig *server)
{
  return server->path != NULL ? server->path : server->id;
}

static gboolean
check_auth_service (const MamdGateInput *input, GError **error)
{
  const MamdServerConfig *server = input->server;
  const MamdPluginEntry *entry = input->auth_entry;

  if (server->auth_service == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "Intune MAM is enabled for server %s but AuthService is not set in %s: "
                 "set it to the authentication method selected for Intune MAM",
                 server->id, server_file (server));
    return FALSE;
  }
  if (entry == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "AuthService '%s' of server %s is not provided by any loaded plugin: "
                 "install its plugin or set AuthService in %s to a loaded method "
                 "(see mamctl plugins)",
                 server->auth_service, server->id, server_file (server));
    return FALSE;
  }
  if (entry->plugin == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "AuthService '%s' of server %s is provided by a disabled plugin (%s): "
                 "fix the plugin, then reload",
                 server->auth_service, server->id,
                 entry->disabled_reason != NULL ? entry->disabled_reason : "no reason given");
    return FALSE;
  }
  if ((entry->capabilities & MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE) == 0) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "AuthService '%s' of server %s cannot be selected for Intune MAM "
                 "(its plugin resolves no Entra objectId at sign-in): set AuthService "
                 "in %s to a method that does, such as office365 or saml",
                 server->auth_service, server->id, server_file (server));
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_license (const MamdGateInput *input, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (input->license == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                 "server %s is not licensed for Intune MAM: %s", input->server->id,
                 input->license_reason != NULL ? input->license_reason
                                               : "no licence is loaded");
    return FALSE;
  }
  if (!mamd_license_check_mam (input->license, input->server->id, input->now, &local)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                 "server %s is not licensed for Intune MAM: %s", input->server->id,
                 local->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_identifiers (const MamdServerConfig *server, GError **error)
{
  if (server->tenant_id == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "Intune MAM is enabled for server %s but TenantId is not set in %s: "
                 "set it to the Microsoft Entra tenant ID",
                 server->id, server_file (server));
    return FALSE;
  }
  if (server->client_id == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "Intune MAM is enabled for server %s but ClientId is not set in %s: "
                 "set it to the Application (client) ID of the Entra app registration",
                 server->id, server_file (server));
    return FALSE;
  }
  if (server->scope == NULL) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "Intune MAM is enabled for server %s but IntuneScope is not set "
                 "(Scope in %s): set it to the scope the mobile app requests, "
                 "e.g. api://%s/login.mattermost",
                 server->id, server_file (server), server->client_id);
    return FALSE;
  }
  return TRUE;
}

gboolean
mamd_policy_check_groups (const char *server_id, const char *unknown_group, MamdError code,
                          GError **error)
{
  if (unknown_group == NULL)
    return TRUE;
  g_set_error (error, MAMD_ERROR, code,
               "server %s refuses sign-ins: %s; rebuild or reinstall that plugin, or fix the "
               "group's name, then reload",
               server_id, unknown_group);
  return FALSE;
}

gboolean
mamd_policy_check_gate (const MamdGateInput *input, GError **error)
{
  const MamdServerConfig *server = input->server;
  g_autoptr(GError) local = NULL;

  if (!server->enable) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                 "Intune MAM is not enabled for server %s: set Enable=true in %s",
                 server->id, server_file (server));
    return FALSE;
  }
  if (!mamd_policy_check_groups (server->id, input->unknown_group, MAMD_ERROR_FORBIDDEN, error))
    return FALSE;
  if (!check_auth_service (input, error))
    return FALSE;
  if (!check_license (input, error))
    return FALSE;
  if (!check_identifiers (server, error))
    return FALSE;
  if (input->plugin_gate != NULL && !input->plugin_gate (input->plugin_gate_data, &local)) {
    if (local == NULL) {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_FORBIDDEN,
                   "the %s plugin closed the Intune MAM gate of server %s without a "
                   "reason: report this plugin bug",
                   server->auth_service, server->id);
      return FALSE;
    }
    g_propagate_prefixed_error (error, g_steal_pointer (&local), "server %s: ", server->id);
    return FALSE;
  }
  return TRUE;
}

gboolean
mamd_policy_check_arg (const char *what, const char *value, GError **error)
{
  if (value == NULL || value[0] == '\0') {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                 "%s is empty: pass a non-empty value", what);
    return FALSE;
  }
  if (strlen (value) > MAMD_POLICY_MAX_ARG_LEN) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                 "%s is longer than %d bytes: pass a shorter value", what,
                 MAMD_POLICY_MAX_ARG_LEN);
    return FALSE;
  }
  if (!g_utf8_validate (value, -1, NULL)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                 "%s is not valid UTF-8: pass a UTF-8 string", what);
    return FALSE;
  }
  return TRUE;
}

gboolean
mamd_policy_check_platform (const MamdServerConfig *server, const char *platform,
                            gboolean mam_required, GError **error)
{
  if (server->allowed_platforms == NULL ||
      !g_strv_contains ((const char *const *) server->allowed_platforms, platform)) {
    g_autofree char *allowed = server->allowed_platforms != NULL
                                 ? g_strjoinv (", ", server->allowed_platforms)
                                 : g_strdup ("none");
    /* AllowedPlatforms refuses what mamd does not know: do not send the
     * administrator there for a platform the client misnamed */
    if (!mamd_config_platform_is_known (platform))
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_UNSUPPORTED_PLATFORM,
                   "platform '%s' is unknown (server %s allows: %s): the client must "
                   "report ios or android",
                   platform, server->id, allowed);
    else
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_UNSUPPORTED_PLATFORM,
                   "platform '%s' is not allowed on server %s (AllowedPlatforms: %s): "
                   "sign in from an allowed platform or add it to AllowedPlatforms in %s",
                   platform, server->id, allowed, server_file (server));
    return FALSE;
  }
  if (mam_required && !g_str_equal (platform, "ios")) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_UNSUPPORTED_PLATFORM,
                 "Intune MAM supports iOS only; Android is not supported yet "
                 "(server %s requires Intune MAM, platform '%s'): sign in from an iOS device",
                 server->id, platform);
    return FALSE;
  }
  return TRUE;
}

/* ---- enrollment ---- */

gboolean
mamd_policy_check_status (MamdEnrollmentOutcome outcome, gint status_code, GError **error)
{
  MamdEnrollmentOutcome implied;

  if (status_code == -1)
    return TRUE;
  if (!mamd_enrollment_status_code_outcome (status_code, &implied)) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                 "status %d is not an Intune App SDK enrollment status (100..104, "
                 "200..225): pass the SDK's code, or -1 when unknown",
                 status_code);
    return FALSE;
  }
  if (implied != outcome) {
    const char *kind = implied == MAMD_ENROLLMENT_SUCCESS  ? "a success"
                       : implied == MAMD_ENROLLMENT_DECLINED ? "a decline"
                                                             : "a failure";
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                 "status %d %s is %s but outcome '%s' was reported", status_code,
                 mamd_enrollment_status_code_name (status_code), kind,
                 mamd_enrollment_outcome_to_string (outcome));
    return FALSE;
  }
  return TRUE;
}

gboolean
mamd_policy_enrollment_transition (MamdSessionState state, const char *reason,
                                   gboolean mam_required, MamdEnrollmentOutcome outcome,
                                   MamdSessionState *new_state, GError **error)
{
  /* enrolled while MAM applied, then MAM was switched off: as for an active
   * session, no failure may remove the server or wipe its data */
  if (state == MAMD_SESSION_STATE_ENROLLED && !mam_required)
    state = MAMD_SESSION_STATE_ACTIVE;
  switch (state) {
  case MAMD_SESSION_STATE_ENROLLMENT_REQUIRED:
  case MAMD_SESSION_STATE_DECLINED:
    break;
  case MAMD_SESSION_STATE_ENROLLED:
    if (outcome != MAMD_ENROLLMENT_FAILED) {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE,
                   "the session is already enrolled: only a later technical "
                   "failure may be reported for it");
      return FALSE;
    }
    break;
  case MAMD_SESSION_STATE_ACTIVE:
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE,
                         "Intune MAM does not apply to this session: there is no "
                         "enrollment to report");
    return FALSE;
  case MAMD_SESSION_STATE_REVOKED:
  default:
    /* a failed enrollment's reason: re-add the server, not just sign in */
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE, "the session is revoked: %s",
                 reason != NULL ? reason : "sign in again");
    return FALSE;
  }

  switch (outcome) {
  case MAMD_ENROLLMENT_SUCCESS:
    *new_state = MAMD_SESSION_STATE_ENROLLED;
    return TRUE;
  case MAMD_ENROLLMENT_DECLINED:
    *new_state = MAMD_SESSION_STATE_DECLINED;
    return TRUE;
  case MAMD_ENROLLMENT_FAILED:
    *new_state = MAMD_SESSION_STATE_REVOKED;
    return TRUE;
  default:
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                         "unknown enrollment outcome: pass success, declined or failed");
    return FALSE;
  }
}

const char *
mamd_policy_enrollment_reason (const char *server_id, MamdEnrollmentOutcome outcome,
                               gint status_code)
{
  const char *name = mamd_enrollment_status_code_name (status_code);
  g_autofree char *code = name != NULL ? g_strdup_printf ("%d %s", status_code, name)
                                       : g_strdup ("status not reported");
  g_autofree char *reason = NULL;

  switch (outcome) {
  case MAMD_ENROLLMENT_SUCCESS:
    reason = g_strdup_printf ("enrolled (%s)", code);
    break;
  case MAMD_ENROLLMENT_DECLINED:
    reason = g_strdup ("enrollment declined by the user: retry is allowed; "
                       "nothing was removed");
    break;
  case MAMD_ENROLLMENT_FAILED:
  default:
    reason = g_strdup_printf ("Intune MAM enrollment failed (%s): the server was removed "
                              "from the device and a wipe of its data requested; fix the underlying "
                              "issue before re-adding the server",
                              code);
    break;
  }
  return g_intern_string (reason);
}

gboolean
mamd_policy_access (MamdSessionState state, const char *session_reason,
                    gboolean mam_required, gboolean gate_open, const char *gate_reason,
                    const char **reason)
{
  switch (state) {
  case MAMD_SESSION_STATE_ACTIVE:
    *reason = NULL;
    return TRUE;
  case MAMD_SESSION_STATE_ENROLLED:
    if (!mam_required || gate_open) {
      *reason = NULL;
      return TRUE;
    }
    *reason = gate_reason != NULL ? gate_reason : "the Intune MAM gate of the server is closed";
    return FALSE;
  /* restricted: while the gate is closed, its error (NotLicensed, say, with
   * its next step) is what stands in the way, not the enrollment */
  case MAMD_SESSION_STATE_ENROLLMENT_REQUIRED:
    if (mam_required && !gate_open && gate_reason != NULL)
      *reason = gate_reason;
    else
      *reason = session_reason != NULL ? session_reason : "Intune MAM enrollment is required";
    return FALSE;
  case MAMD_SESSION_STATE_DECLINED:
    if (mam_required && !gate_open && gate_reason != NULL)
      *reason = gate_reason;
    else
      *reason = session_reason != NULL ? session_reason : "Intune MAM enrollment was declined";
    return FALSE;
  case MAMD_SESSION_STATE_REVOKED:
  default:
    *reason = session_reason != NULL ? session_reason : "the session is revoked: sign in again";
    return FALSE;
  }
}

gboolean
mamd_policy_reevaluate (const MamdSessionRecord *session, const MamdServerConfig *server,
                        MamdSessionState *new_state, gboolean *new_mam_required,
                        const char **new_reason)
{
  g_autofree char *reason = NULL;
  gboolean now_required;
  MamdSessionState state = session->state;

  *new_state = state;
  *new_mam_required = session->mam_required;
  *new_reason = session->reason;
  if (state == MAMD_SESSION_STATE_REVOKED)
    return FALSE;

  if (server == NULL) {
    reason = g_strdup_printf ("server %s was removed from the configuration",
                              session->server_id);
    *new_state = MAMD_SESSION_STATE_REVOKED;
    *new_reason = g_intern_string (reason);
    return TRUE;
  }

  /* the first check of a sign-in holds for every live session, whichever
   * its method */
  if (server->allowed_platforms == NULL ||
      !g_strv_contains ((const char *const *) server->allowed_platforms, session->platform)) {
    g_autofree char *allowed = server->allowed_platforms != NULL
                                 ? g_strjoinv (", ", server->allowed_platforms)
                                 : g_strdup ("none");

    reason = g_strdup_printf ("platform '%s' is no longer allowed on server %s "
                              "(AllowedPlatforms: %s): sign in from an allowed platform",
                              session->platform, server->id, allowed);
    *new_state = MAMD_SESSION_STATE_REVOKED;
    *new_reason = g_intern_string (reason);
    return TRUE;
  }

  now_required = mamd_policy_mam_required (server, session->method);
  *new_mam_required = now_required;
  /* whatever its state, a session MAM applies to must be of the server's
   * tenant: one signed in for another tenant (before a TenantId change, or
   * while MAM did not apply) may never enroll under this one */
  if (now_required && server->tenant_id != NULL &&
      g_strcmp0 (session->tenant_id, server->tenant_id) != 0) {
    reason = g_strdup_printf ("Intune MAM for server %s expects tenant %s but the session is "
                              "for tenant %s: sign in again with an account of that tenant",
                              server->id, server->tenant_id,
                              session->tenant_id != NULL ? session->tenant_id : "(none)");
    *new_state = MAMD_SESSION_STATE_REVOKED;
  } else if (now_required && !session->mam_required &&
             (state == MAMD_SESSION_STATE_ACTIVE || state == MAMD_SESSION_STATE_ENROLLED)) {
    /* newly required, also for a session enrolled before MAM was switched
     * off: its enrollment may not hold any more, and nobody bypasses it */
    if (g_strcmp0 (session->platform, "ios") != 0) {
      reason = g_strdup_printf ("Intune MAM now applies to server %s but supports iOS only; "
                                "Android is not supported yet (UnsupportedPlatform): "
                                "sign in from an iOS device",
                                server->id);
      *new_state = MAMD_SESSION_STATE_REVOKED;
    } else {
      reason = g_strdup_printf ("Intune MAM now applies to server %s: enrollment required",
                                server->id);
      *new_state = MAMD_SESSION_STATE_ENROLLMENT_REQUIRED;
    }
  } else if (!now_required && (state == MAMD_SESSION_STATE_ENROLLMENT_REQUIRED ||
                               state == MAMD_SESSION_STATE_DECLINED)) {
    reason = g_strdup_printf ("Intune MAM no longer applies to server %s", server->id);
    *new_state = MAMD_SESSION_STATE_ACTIVE;
  }

  if (reason != NULL)
    *new_reason = g_intern_string (reason);
  return *new_state != state || now_required != session->mam_required;
}

/* ---- users ---- */

gboolean
mamd_policy_may_create_user (const MamdServerConfig *server, const char *method,
                             MamdPluginCapabilities caps, const char *object_id, GError **error)
{
  const char *why;

  if (server->auto_create_users && (caps & MAMD_PLUGIN_CAP_CREATES_USERS) != 0)
    return TRUE;
  why = !server->auto_create_users ? "AutoCreateUsers is off for this server"
                                   : "sign-ins through this method never create users";
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_USER_MISMATCH,
               "no user of auth service %s on server %s has objectId %s (%s): users must "
               "exist (first web login or LDAP provisioning) and be matched by Azure AD "
               "objectId, never email or UPN; if the user exists, its record was likely "
               "keyed by a mutable identifier (email, preferred_username) or its email/UPN "
               "changed: reconfigure identity to use the Azure AD objectId exclusively",
               method, server->id, object_id, why);
  return FALSE;
}
