/*
 * mamd-bench: load generator. The environment half (mamd-bench-env.c)
 * starts a private bus, mamd and an echo service; the measuring half
 * (mamd-bench.c) drives them.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BENCH_ECHO_NAME "org.mamd.Bench1"
#define BENCH_ECHO_PATH "/org/mamd/Bench1"
#define BENCH_ECHO_IFACE "org.mamd.Bench1.Echo"
#define BENCH_SERVER "bench"
#define BENCH_TENANT "0b5e7a1c-9d2f-4e83-a6b4-1c2d3e4f5a6b"
#define BENCH_CLIENT "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
#define BENCH_SCOPE "login.mattermost"

typedef struct {
  char *dir;          /* temporary: config/, state/, bus.conf */
  char *bus_address;
  GPid bus_pid;
  GPid mamd_pid;
  GPid echo_pid;
  GDBusConnection *bus;
} BenchEnv;

typedef struct {
  const char *mamd_path;
  const char *plugin_dir;
  guint max_sessions;  /* MaxSessionsPerUser */
  guint max_in_flight; /* MaxCallsInFlightPerSender */
  const char *auth_service;    /* the server's AuthService: "test" or "office365" */
  const char *authority;       /* office365: [office365] Authority, the bench IdP */
} BenchEnvOptions;

BenchEnv *bench_env_start (const BenchEnvOptions *options, GError **error);
void bench_env_stop (BenchEnv *env);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BenchEnv, bench_env_stop)

/* The child process: serves Echo on @address until the bus goes away. */
int bench_echo_service_run (const char *address);

/* --plugin office365: a loopback identity provider serving from a thread
 * of its own, and @n_tokens distinct access tokens minted up front (one
 * user each) for BENCH_TENANT, BENCH_CLIENT and BENCH_SCOPE. */
typedef struct _BenchIdp BenchIdp;
BenchIdp *bench_idp_start (guint n_tokens, GError **error);
const char *bench_idp_get_authority (BenchIdp *idp);
/* token @n modulo the number minted */
const char *bench_idp_get_token (BenchIdp *idp, guint64 n);
void bench_idp_stop (BenchIdp *idp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BenchIdp, bench_idp_stop)

G_END_DECLS
