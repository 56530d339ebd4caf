/*
 * MamdEngine: policy and session lifecycle for every configured chat server.
 * Knows nothing of D-Bus: it takes events, returns decisions and emits
 * GObject signals. State changes are committed to the store before the
 * operation completes and before any signal about them is emitted; every
 * change carries a new event sequence number. If a commit fails the engine
 * stops (the "fatal" signal) rather than run with memory ahead of disk.
 *
 * Signals (main thread only, after commit, in seq order):
 *   "enrollment-required" (const MamdSessionRecord *, const char *reason, guint64 seq)
 *   "enrollment-declined" (const MamdSessionRecord *, guint64 seq)
 *   "enrolled"            (const MamdSessionRecord *, guint64 seq)
 *   "session-revoked"     (const MamdSessionRecord *, const char *reason, guint64 seq)
 *   "session-changed"     (const MamdSessionRecord *) any change of an existing
 *                         session's properties (not its creation)
 *   "session-removed"     (const char *session_id, guint64 seq) signed out
 *   "wipe-requested"      (const MamdWipeRecord *, guint64 seq) new, or re-announced
 *   "policy-changed"      (const char *server_id, gboolean mam_applies,
 *                          const char *reason, guint64 seq)
 *   "fatal"               (const GError *) the store failed; the daemon must exit
 * Records passed to signals are borrowed for the emission only.
 */
#pragma once

#include <gio/gio.h>

#include "mamd-config.h"
#include "mamd-license.h"
#include "mamd-plugin-loader.h"
#include "mamd-records.h"
#include "mamd-store.h"

G_BEGIN_DECLS

/* Who is asking. The transport authenticates; the engine applies ownership
 * (a session belongs to the uid that signed it in) and per-uid caps. */
typedef struct {
  guint32 uid;
  gboolean is_admin; /* may act on anyone's sessions and wipes */
} MamdCaller;

typedef enum {
  MAMD_ENROLLMENT_SUCCESS,
  MAMD_ENROLLMENT_DECLINED,
  MAMD_ENROLLMENT_FAILED,
} MamdEnrollmentOutcome;

gboolean mamd_enrollment_outcome_from_string (const char *text, MamdEnrollmentOutcome *out);
const char *mamd_enrollment_outcome_to_string (MamdEnrollmentOutcome outcome);
/* Intune App SDK status code -> outcome (-1 = unknown code) and its name. */
gboolean mamd_enrollment_status_code_outcome (gint code, MamdEnrollmentOutcome *out);
const char *mamd_enrollment_status_code_name (gint code);

/* Result of a state-changing call. */
typedef struct {
  MamdSessionRecord *session; /* copy, may be NULL (sign-out) */
  char *decision_id;          /* id of the decision, for logs and Explain */
  guint64 seq;                /* event sequence number of the change */
  gboolean mam_required;
} MamdEngineResult;

void mamd_engine_result_free (MamdEngineResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdEngineResult, mamd_engine_result_free)

/* One server as `mamctl servers` shows it. */
typedef struct {
  const MamdServerConfig *config; /* borrowed */
  gboolean gate_open;             /* MAM sign-ins can be served */
  char *gate_reason;              /* why the gate is closed (error message), or NULL */
  gint gate_error_code;           /* MamdError of the closed gate, -1 when open */
  guint n_sessions;
  GPtrArray *findings;            /* plugin diagnostics (strings) */
} MamdServerStatus;

void mamd_server_status_free (MamdServerStatus *status);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdServerStatus, mamd_server_status_free)

#define MAMD_TYPE_ENGINE (mamd_engine_get_type ())
G_DECLARE_FINAL_TYPE (MamdEngine, mamd_engine, MAMD, ENGINE, GObject)

MamdEngine *mamd_engine_new (MamdStore *store, MamdPluginLoader *plugins);

/* Loads configuration and licence from @config_dir, configures plugins and
 * loads state from the store. Fails with the configuration problems or a
 * store error. Does not yet announce pending wipes. */
gboolean mamd_engine_start (MamdEngine *self, const char *config_dir, GError **error);
/* Emits "wipe-requested" for every pending wipe (after a restart). */
void mamd_engine_announce_pending_wipes (MamdEngine *self);
/* Waits for outstanding commits (shutdown). */
gboolean mamd_engine_shutdown (MamdEngine *self, GError **error);

/* Re-reads configuration and licence. Invalid configuration is refused with
 * MAMD_ERROR_INVALID_CONFIG and the old one stays. Every live session is
 * re-evaluated: where MAM newly applies it is restricted at once. */
void mamd_engine_reload_async (MamdEngine *self, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);
gboolean mamd_engine_reload_finish (MamdEngine *self, GAsyncResult *result, GError **error);

/* The guide's sign-in: platform, MAM enabled, auth service, licence, then
 * the plugin's authentication, then the user record. @credential is a{sv}. */
void mamd_engine_sign_in_async (MamdEngine *self, const MamdCaller *caller,
                                const char *server_id, const char *method,
                                GVariant *credential, const char *platform,
                                const char *device_id, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
MamdEngineResult *mamd_engine_sign_in_finish (MamdEngine *self, GAsyncResult *result,
                                              GError **error);

/* @status_code is the Intune App SDK code or -1 when unknown; when both are
 * given they must agree. */
void mamd_engine_report_enrollment_async (MamdEngine *self, const MamdCaller *caller,
                                          const char *session_id,
                                          MamdEnrollmentOutcome outcome, gint status_code,
                                          GCancellable *cancellable,
                                          GAsyncReadyCallback callback, gpointer user_data);
MamdEngineResult *mamd_engine_report_enrollment_finish (MamdEngine *self,
                                                        GAsyncResult *result,
                                                        GError **error);

void mamd_engine_sign_out_async (MamdEngine *self, const MamdCaller *caller,
                                 const char *session_id, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
MamdEngineResult *mamd_engine_sign_out_finish (MamdEngine *self, GAsyncResult *result,
                                               GError **error);

/* Re-adds a server removed from a device after an enrollment failure. */
void mamd_engine_readd_server_async (MamdEngine *self, const MamdCaller *caller,
                                     const char *server_id, const char *device_id,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
MamdEngineResult *mamd_engine_readd_server_finish (MamdEngine *self, GAsyncResult *result,
                                                   GError **error);

void mamd_engine_ack_wipe_async (MamdEngine *self, const MamdCaller *caller,
                                 const char *wipe_id, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
MamdEngineResult *mamd_engine_ack_wipe_finish (MamdEngine *self, GAsyncResult *result,
                                               GError **error);

/* Runs directory sync now for @server_id (every server when NULL). */
void mamd_engine_sync_directory_async (MamdEngine *self, const char *server_id,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);
gboolean mamd_engine_sync_directory_finish (MamdEngine *self, GAsyncResult *result,
                                            GError **error);

/* May this session see sensitive content now? Read-only. FALSE with
 * @reason set when it may not; an error only for a bad or unknown id. */
gboolean mamd_engine_check_access (MamdEngine *self, const MamdCaller *caller,
                                   const char *session_id, gboolean *allowed,
                                   MamdSessionState *state, char **reason, GError **error);

/* Read-only views; pointers are borrowed and valid until the next
 * main-loop iteration. */
const MamdSessionRecord *mamd_engine_lookup_session (MamdEngine *self, const char *session_id);
/* Sessions of @server_id (NULL: all) in the order (created, then id), those
 * after (@after_created, @after_id) only; @after_id NULL: from the first.
 * Borrowed records. */
GPtrArray *mamd_engine_list_sessions (MamdEngine *self, const char *server_id,
                                      gint64 after_created, const char *after_id);
GPtrArray *mamd_engine_list_wipes (MamdEngine *self);                           /* borrowed records */
/* Who may see and acknowledge @wipe: an administrator, or the uid whose
 * session's enrollment failed (the device's client). */
gboolean mamd_engine_caller_may_ack_wipe (MamdEngine *self, const MamdCaller *caller,
                                          const MamdWipeRecord *wipe);
GPtrArray *mamd_engine_list_servers (MamdEngine *self);                         /* MamdServerStatus, owned */
MamdPluginLoader *mamd_engine_get_plugins (MamdEngine *self);
const MamdConfig *mamd_engine_get_config (MamdEngine *self);
/* Changes with every configuration (re)load, even of the same files. */
guint mamd_engine_get_config_serial (MamdEngine *self);
/* The licence in force, or NULL with @reason why there is none. */
const MamdLicense *mamd_engine_get_license (MamdEngine *self, const char **reason);
/* The seq of the most recent committed event, 0 when there is none. */
guint64 mamd_engine_get_last_seq (MamdEngine *self);
guint mamd_engine_get_n_sessions (MamdEngine *self);

/* The views above show changes as soon as they are made, before their
 * commit. A caller that must not answer with a change that may still be
 * lost (a read's reply) waits for this: @func runs once every commit
 * submitted before the call has completed, at once when none is under way.
 * @error (MAMD_ERROR_STORE) is set when the store has failed. */
typedef void (*MamdEngineCommittedFunc) (const GError *error, gpointer user_data);
void mamd_engine_when_committed (MamdEngine *self, MamdEngineCommittedFunc func,
                                 gpointer user_data);

G_END_DECLS
