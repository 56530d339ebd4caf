/*
 * Engine internals shared by mamd-engine.c (sessions, sign-in, enrollment)
 * and mamd-engine-reload.c (configuration, gates, maintenance, directory
 * sync). Not installed; tests use only the clock hook.
 */
#pragma once

#include "mamd-engine.h"
#include "mamd-policy.h"

G_BEGIN_DECLS

/* Returns unix time in microseconds; lets tests move time forward. */
typedef gint64 (*MamdEngineClock) (gpointer user_data);

/* For tests: replaces the real-time clock. Set before mamd_engine_start. */
void mamd_engine_set_clock (MamdEngine *self, MamdEngineClock clock, gpointer user_data);

/* One configured server and what the engine derived from it. */
typedef struct {
  const MamdServerConfig *config; /* borrowed from the MamdConfig it came with */
  GHashTable *plugin_configs;     /* interned method -> GObject (ref) */
  guint64 epoch;                  /* changes when the server's file does */
  gboolean gate_open;
  gint gate_code;                 /* MamdError, -1 when open */
  char *gate_reason;              /* NULL when open */
  char *unknown_group;            /* a skipped group no module provides: every sign-in
                                     is refused (mamd_config_plugins_load) */
} MamdEngineServer;

struct _MamdEngine {
  GObject parent_instance;

  MamdStore *store;
  MamdPluginLoader *plugins;
  char *config_dir;
  MamdConfig *config;
  guint config_serial;            /* counts the loads of config */
  MamdLicense *license;
  char *license_reason;           /* why there is no licence */
  GHashTable *servers;            /* id -> MamdEngineServer */

  GHashTable *sessions;           /* id -> MamdSessionRecord */
  GHashTable *uid_counts;         /* uid -> live non-revoked sessions */
  GHashTable *users;              /* "server\x1fmethod\x1fobject-id" set */
  GHashTable *removed;            /* "server\x1fdevice\x1fuid" -> MamdRemovedServerRecord */
  GHashTable *wipes;              /* id -> MamdWipeRecord */
  GHashTable *policies;           /* interned server id -> MamdPolicyRecord: the
                                     policy last announced, stored */

  guint64 next_seq;               /* the next event's seq */
  guint64 last_epoch;             /* the latest MamdEngineServer epoch */
  guint64 committed_seq;          /* the highest seq committed (ops commit in order) */
  guint64 n_submitted;            /* commits ever submitted */
  guint64 n_completed;            /* ... and completed, durable or failed: the
                                     difference is in flight */
  GQueue committed_waiters;       /* CommittedWaiter, in target order */
  GQueue done;                    /* MamdEngineOp committed, whose events are logged
                                     and signals emitted a slice at a time */
  guint done_id;                  /* runs the next slice */
  gboolean running_done;
  gboolean fatal;
  gboolean started;

  guint maintenance_id;
  guint sync_id;
  guint sync_interval;
  GHashTable *syncing;            /* "server\x1fmethod" of the directory syncs
                                     under way -> their job (not owned) */
  guint license_id;
  guint gate_idle_id;
  GPtrArray *gate_handlers;       /* GateHandler */

  MamdEngineClock clock;
  gpointer clock_data;
};

/* Signals emitted after a commit, in the order they were added. */
typedef enum {
  MAMD_EMIT_ENROLLMENT_REQUIRED,
  MAMD_EMIT_ENROLLMENT_DECLINED,
  MAMD_EMIT_ENROLLED,
  MAMD_EMIT_SESSION_REVOKED,
  MAMD_EMIT_SESSION_CHANGED,
  MAMD_EMIT_SESSION_REMOVED,
  MAMD_EMIT_WIPE_REQUESTED,
  MAMD_EMIT_POLICY_CHANGED,
} MamdEmitKind;

/* One state-changing operation: its transaction, the signals to emit once
 * it is durable, and the task to complete. */
typedef struct {
  MamdEngine *engine;   /* ref */
  MamdStoreTxn *txn;
  char *decision_id;
  GPtrArray *emits;     /* MamdEmit */
  GPtrArray *events;    /* MamdEventRecord, audit-logged once durable */
  GTask *task;          /* NULL for background work */
  MamdEngineResult *result; /* returned by @task; NULL: the task returns TRUE */
  guint n_done;         /* events logged, then signals emitted, once committed */
} MamdEngineOp;

gint64 mamd_engine_now (MamdEngine *self);

/* A plugin call's cancellable: cancelled with the caller's, or when
 * @seconds have passed, and then @timed_out is set. A plugin that does not
 * answer in time is given up on (the SDK answers the call Cancelled at
 * once), so it cannot hold a caller, a quota or a sync for ever. */
typedef struct {
  GCancellable *cancellable;
  GCancellable *caller_cancellable; /* ref, or NULL */
  gulong caller_cancelled_id;
  guint seconds;
  guint timeout_id;
  gboolean timed_out;
} MamdEngineDeadline;

void mamd_engine_deadline_start (MamdEngineDeadline *deadline,
                                 GCancellable *caller_cancellable, guint seconds);
void mamd_engine_deadline_clear (MamdEngineDeadline *deadline);

MamdEngineOp *mamd_engine_op_new (MamdEngine *self, GTask *task);
/* Appends an event to the op's transaction (and, once that is durable, to
 * the audit log); returns its seq.
 * @detail is a floating or owned a{sv}, may be NULL. */
guint64 mamd_engine_op_event (MamdEngineOp *op, const char *type, const char *server_id,
                              const char *session_id, GVariant *detail);
GVariant *mamd_engine_session_detail (const MamdSessionRecord *rec);
void mamd_engine_op_emit_session (MamdEngineOp *op, MamdEmitKind kind,
                                  const MamdSessionRecord *rec, const char *reason,
                                  guint64 seq);
void mamd_engine_op_emit_wipe (MamdEngineOp *op, const MamdWipeRecord *wipe, guint64 seq);
void mamd_engine_op_emit_policy (MamdEngineOp *op, const char *server_id,
                                 gboolean mam_applies, gboolean gate_open, const char *reason,
                                 guint64 seq);
/* Commits (or, when empty, completes at once) and frees @op. */
void mamd_engine_op_commit (MamdEngineOp *op);

/* Session bookkeeping that keeps the per-uid counts right. */
void mamd_engine_session_set_state (MamdEngine *self, MamdSessionRecord *rec,
                                    MamdSessionState state);
void mamd_engine_session_remove (MamdEngine *self, const char *session_id);
void mamd_engine_session_insert (MamdEngine *self, MamdSessionRecord *rec);

char *mamd_engine_user_key (const char *server_id, const char *method, const char *object_id);
/* A removal belongs to the uid whose session failed (-1: unknown, from an
 * old store; it applies to every uid). */
char *mamd_engine_removed_key (const char *server_id, const char *device_id, gint64 owner_uid);

MamdEngineServer *mamd_engine_lookup_server (MamdEngine *self, const char *server_id);
/* Computes the gate of @srv now (fresh: licence time, plugin check). */
gboolean mamd_engine_compute_gate (MamdEngine *self, MamdEngineServer *srv, GError **error);

/* mamd-engine.c */
void mamd_engine_op_free (MamdEngineOp *op);

/* mamd-engine-reload.c */
void mamd_engine_server_free (MamdEngineServer *srv);
gboolean mamd_engine_load_all (MamdEngine *self, const char *config_dir, gboolean starting,
                               MamdEngineOp *op, GError **error);
void mamd_engine_reevaluate_gates (MamdEngine *self);
void mamd_engine_run_maintenance (MamdEngine *self, MamdEngineOp *op);
void mamd_engine_start_timers (MamdEngine *self);
void mamd_engine_stop_timers (MamdEngine *self);
void mamd_engine_connect_plugins (MamdEngine *self);
void mamd_engine_disconnect_plugins (MamdEngine *self);
/* Deactivates every live plugin config and drops the server table. */
void mamd_engine_release_servers (MamdEngine *self);

/* mamd-engine-sync.c */
/* Gives up on every directory sync under way and waits until each has
 * answered (at a stop, before the last flush). */
void mamd_engine_stop_syncs (MamdEngine *self);

G_END_DECLS
