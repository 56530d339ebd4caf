/*
 * Pure policy decisions: functions of (config, licence, plugin state,
 * session state) with no I/O, no store and no bus, so that every rule of
 * the guide can be unit-tested on its own. The engine owns the state and
 * calls these to decide.
 */
#pragma once

#include "mamd-config.h"
#include "mamd-engine.h"
#include "mamd-license.h"
#include "mamd-plugin-loader.h"
#include "mamd-records.h"

G_BEGIN_DECLS

/* Longest method, platform or device id accepted from a caller, in bytes. */
#define MAMD_POLICY_MAX_ARG_LEN 256

/* Asks the AuthService plugin whether it lets the gate open (check_gate). */
typedef gboolean (*MamdPolicyPluginGateFunc) (gpointer user_data, GError **error);

typedef struct {
  const MamdServerConfig *server;
  const char *unknown_group;         /* why a group of the server was skipped, or NULL */
  const MamdPluginEntry *auth_entry; /* entry for server->auth_service, NULL when none */
  const MamdLicense *license;        /* NULL when there is no usable licence */
  const char *license_reason;        /* why there is none (when @license is NULL) */
  gint64 now;                        /* unix seconds */
  MamdPolicyPluginGateFunc plugin_gate; /* may be NULL: open */
  gpointer plugin_gate_data;
} MamdGateInput;

/* Whether MAM evaluates a sign-in of @method on @server: only the
 * AuthService selected for Intune MAM is evaluated. */
gboolean mamd_policy_mam_required (const MamdServerConfig *server, const char *method);

/* The server's MAM gate: first failing condition wins, in the guide's
 * order (Enable, AuthService, its plugin, licence, TenantId, ClientId,
 * Scope, the plugin's own check), after Enable a group skipped because no
 * module provides it. FALSE with the error naming it. */
gboolean mamd_policy_check_gate (const MamdGateInput *input, GError **error);

/* A server with a group skipped because no module provides it (its
 * settings may sit in a misspelt group) refuses every sign-in: FALSE with
 * @code naming @unknown_group, TRUE when it is NULL. */
gboolean mamd_policy_check_groups (const char *server_id, const char *unknown_group,
                                   MamdError code, GError **error);

/* Whether a sign-in of @method on @server may create the missing user
 * record of @object_id: the server's AutoCreateUsers and the plugin's
 * MAMD_PLUGIN_CAP_CREATES_USERS (@caps) must both allow it. FALSE with
 * MAMD_ERROR_USER_MISMATCH naming which does not. */
gboolean mamd_policy_may_create_user (const MamdServerConfig *server, const char *method,
                                      MamdPluginCapabilities caps, const char *object_id,
                                      GError **error);

/* A caller-supplied string: non-empty, valid UTF-8, at most
 * MAMD_POLICY_MAX_ARG_LEN bytes; MAMD_ERROR_INVALID_ARGS naming @what. */
gboolean mamd_policy_check_arg (const char *what, const char *value, GError **error);

/* AllowedPlatforms, then (when MAM applies) iOS only. */
gboolean mamd_policy_check_platform (const MamdServerConfig *server, const char *platform,
                                     gboolean mam_required, GError **error);

/* Whether @status_code (-1: not reported) is a known code that agrees with
 * @outcome; MAMD_ERROR_INVALID_ARGS otherwise. */
gboolean mamd_policy_check_status (MamdEnrollmentOutcome outcome, gint status_code,
                                   GError **error);

/* The enrollment transition table: the new state for @outcome reported in
 * @state, or MAMD_ERROR_INVALID_STATE explaining why not (for a revoked
 * session with its @reason, which says what to do, when there is one).
 * Nothing may be reported where MAM does not apply (@mam_required FALSE). */
gboolean mamd_policy_enrollment_transition (MamdSessionState state, const char *reason,
                                            gboolean mam_required,
                                            MamdEnrollmentOutcome outcome,
                                            MamdSessionState *new_state,
                                            GError **error);

/* The reason recorded on a session after an enrollment outcome (interned). */
const char *mamd_policy_enrollment_reason (const char *server_id,
                                           MamdEnrollmentOutcome outcome, gint status_code);

/* May a session in @state see sensitive content? @gate_open/@gate_reason
 * describe its server's gate now. FALSE with @reason (borrowed) otherwise:
 * for a restricted session MAM applies to, the gate's error while it is
 * closed, else the session's reason. */
gboolean mamd_policy_access (MamdSessionState state, const char *session_reason,
                             gboolean mam_required, gboolean gate_open,
                             const char *gate_reason, const char **reason);

/* Re-evaluation of a live session after the configuration changed.
 * @server is the session's server now (NULL when it was removed). Where
 * MAM newly applies, an active or enrolled session must enroll (iOS) or is
 * revoked (other platforms). Returns TRUE when the session changes, with
 * its new state, whether MAM applies now and the reason (interned). */
gboolean mamd_policy_reevaluate (const MamdSessionRecord *session,
                                 const MamdServerConfig *server,
                                 MamdSessionState *new_state,
                                 gboolean *new_mam_required,
                                 const char **new_reason);

G_END_DECLS
