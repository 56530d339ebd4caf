/*
 * The in-process engine fixture shared by test-engine*.c (no bus): a real
 * SQLite store in a temporary directory, the real test plugin module, a real
 * signed licence. The engine's signals are recorded in fx->signals as
 * strings ("<signal> <id> <state> <seq>", ...); its async calls are driven
 * to completion on the default main context. The helpers assert on failure
 * unless they take a GError.
 */
#pragma once

#include "mamd-engine-private.h"

G_BEGIN_DECLS

#define TENANT "4a7c5e1d-3b2f-4c8e-9d6a-1f0e2b3c4d5e"
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

extern const MamdCaller user1; /* uid 1001 */
extern const MamdCaller admin; /* uid 0 */

/* ---- files ---- */

void write_server (Fixture *fx, const char *id, const char *contents);
/* mamd.conf: [Daemon] with DirectorySyncInterval=0 unless @extra (may be
 * NULL) sets it, then @extra. */
void write_daemon (Fixture *fx, const char *extra);
/* A licence valid from a day ago for @valid_s seconds from now. */
void write_license (Fixture *fx, const char *sku, gint64 valid_s);

/* ---- fixture ---- */

/* g_test_add() setup and teardown: mamd.conf and a 30-day "advanced"
 * licence are written, the engine is not started. */
void fixture_setup (Fixture *fx, gconstpointer data);
void fixture_teardown (Fixture *fx, gconstpointer data);
/* Opens the store and starts a new engine on it (its clock runs
 * fx->clock_offset ahead). */
gboolean engine_try_start (Fixture *fx, GError **error);
/* Starts the engine and waits until what the start changed is durable. */
void engine_start (Fixture *fx);
/* Waits until every change submitted so far is durable. */
void wait_committed (Fixture *fx);
/* Shuts the engine down and finalizes it and the store; no-op if stopped. */
void engine_stop (Fixture *fx);

/* ---- driving async calls ---- */

/* Pass got_result with fx as the callback of an async call, then
 * wait_result (fx) for its result. */
void got_result (GObject *source, GAsyncResult *res, gpointer user_data);
GAsyncResult *wait_result (Fixture *fx);
/* The test plugin's credential; @key (may be NULL) = @value added. It also
 * carries a marker secret under "secret", which count_events() looks for. */
GVariant *credential (const char *object_id, const char *tenant_id, const char *key,
                      const char *value);
MamdEngineResult *sign_in_full (Fixture *fx, const MamdCaller *caller, const char *server,
                                const char *method, GVariant *cred, const char *platform,
                                const char *device, GCancellable *cancellable, GError **error);
/* Method "test", tenant TENANT. */
MamdEngineResult *sign_in (Fixture *fx, const MamdCaller *caller, const char *server,
                           const char *object_id, const char *platform, const char *device,
                           GError **error);
MamdEngineResult *sign_in_ok (Fixture *fx, const MamdCaller *caller, const char *server,
                              const char *object_id, const char *platform, const char *device);
/* Signing in as user1 fails with MAMD_ERROR @code, mentioning @needle. */
void assert_sign_in_fails (Fixture *fx, const char *server, const char *object_id,
                           const char *platform, const char *device, gint code, const char *needle);
MamdEngineResult *report (Fixture *fx, const MamdCaller *caller, const char *session,
                          MamdEnrollmentOutcome outcome, gint status, GError **error);
MamdEngineResult *ack_wipe (Fixture *fx, const MamdCaller *caller, const char *wipe,
                            GError **error);

/* ---- inspecting ---- */

MamdSessionState state_of (Fixture *fx, const char *session);
/* A recorded signal starts with @prefix. */
gboolean has_signal (Fixture *fx, const char *prefix);
guint count_signals (Fixture *fx, const char *prefix);
/* Every stored event of @type, after flushing the store. Also asserts
 * that no event detail and no byte of state.db or state.db-wal holds the
 * marker secret of credential(). */
guint count_events (Fixture *fx, const char *type);

G_END_DECLS
