/*
 * The fixture shared by test-mamctl*.c: a daemon on a private bus with
 * servers "chat" (MAM, tenant TENANT) and "open" (no MAM), started unless
 * the test data is "no-start", and the helpers that run the real mamctl.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "mamd-test-daemon.h"
#include "mamd-test-util.h"

G_BEGIN_DECLS

#define TENANT "8f2c6a7e-3b1d-4c5e-9a0f-1d2e3f4a5b6c"
#define CLIENT "4b7e9d21-6c3a-4f8b-b2e1-9a8c7d6e5f40"
#define ALICE "2d9c1f3e-7a4b-4e6d-8c5f-0b1a2c3d4e5f"
#define BOB "6e5d4c3b-2a19-4807-b6f5-e4d3c2b1a098"

typedef struct {
  MamdTestDaemon *daemon;
  char *mamctl;
} Fixture;

/* Runs mamctl with @args (NULL-terminated) against @bus_address (NULL: no
 * MAMD_BUS_ADDRESS at all). */
void run_mamctl_v (const char *bus_address, MamdTestRun *run, const char *const *args);
#define run_mamctl(f, run, ...) \
  G_STMT_START { \
    const char *const args_[] = { __VA_ARGS__, NULL }; \
    run_mamctl_v (mamd_test_daemon_get_bus_address ((f)->daemon), (run), args_); \
  } G_STMT_END

JsonNode *parse_json (const char *text);
/* the value of "KEY: value" in human output */
char *human_field (const char *out, const char *key);
void fixture_setup (Fixture *f, gconstpointer data);
void fixture_teardown (Fixture *f, gconstpointer data);
/* Signs @object_id in on @server from @device and returns the session id. */
char *login (Fixture *f, const char *server, const char *object_id, const char *device,
             const char *expected_state);

#define ADD(path, func, no_start) \
  g_test_add ("/mamd/mamctl/" path, Fixture, (no_start) ? "no-start" : NULL, fixture_setup, \
              func, fixture_teardown)

G_END_DECLS
