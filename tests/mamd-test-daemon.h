/*
 * MamdTestDaemon: a test fixture that runs the real mamd binary on a
 * private dbus-daemon, with its own temporary config/, config/servers.d/,
 * state/ and licence key pair. Tests find the build through the environment
 * variable MAMD_BUILD_ROOT (tests/meson.build sets it); MAMD_TEST_WRAPPER
 * (e.g. "valgrind --error-exitcode=1 --leak-check=full") runs mamd under a
 * wrapper.
 *
 * Every org.mamd.Mamd1 signal the test connection receives is recorded, in
 * arrival order, from mamd_test_daemon_new() on. Waits iterate the default
 * main context; their timeouts only stop a hung test, they assert nothing
 * about speed.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Identity used by the helpers: the servers written by
 * mamd_test_daemon_write_mam_server() expect this tenant. */
#define MAMD_TEST_TENANT_ID "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define MAMD_TEST_CLIENT_ID "3c9ab5d1-0a5e-4f1a-8f4e-5a2b7c1d9e80"

typedef struct _MamdTestDaemon MamdTestDaemon;

typedef struct {
  char *sender;
  char *object_path;
  char *interface;
  char *member;
  GVariant *parameters;
  gboolean consumed; /* returned by mamd_test_daemon_wait_signal() already */
} MamdTestSignal;

MamdTestDaemon *mamd_test_daemon_new (void);
void mamd_test_daemon_free (MamdTestDaemon *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdTestDaemon, mamd_test_daemon_free)

/* ---- configuration ---- */

/* mamd.conf with [Daemon] LicenseFile and LicensePublicKey, then @extra
 * verbatim (may hold more [Daemon] keys and further groups, e.g.
 * "[Limits]\nMaxCallsInFlightPerSender=2\n"). */
void mamd_test_daemon_write_daemon_conf (MamdTestDaemon *d, const char *extra);
/* A licence signed with the fixture's key: sku_short_name @sku, expiring at
 * @expires_unix (seconds). */
void mamd_test_daemon_write_license (MamdTestDaemon *d, const char *sku, gint64 expires_unix);
/* LicenseFile for the next mamd.conf and where the next licence is
 * written; a relative @path is in the configuration directory, as
 * "license.json" by default in production. */
void mamd_test_daemon_set_license_file (MamdTestDaemon *d, const char *path);
void mamd_test_daemon_write_server (MamdTestDaemon *d, const char *id, const char *contents);
/* servers.d/<id>.conf with Enable=@enable, TenantId/ClientId from above,
 * AuthService=test, then @extra verbatim (may be NULL). */
void mamd_test_daemon_write_mam_server (MamdTestDaemon *d, const char *id, gboolean enable,
                                        const char *extra);
void mamd_test_daemon_remove_server (MamdTestDaemon *d, const char *id);
/* The usual setup: mamd.conf, an "advanced" licence valid for a year and one
 * MAM-enabled server @server_id. */
void mamd_test_daemon_write_default_setup (MamdTestDaemon *d, const char *server_id);

const char *mamd_test_daemon_get_tmp_dir (MamdTestDaemon *d);
const char *mamd_test_daemon_get_config_dir (MamdTestDaemon *d);
const char *mamd_test_daemon_get_state_dir (MamdTestDaemon *d);
/* Overrides the directories passed to mamd (startup failure tests). */
void mamd_test_daemon_set_config_dir (MamdTestDaemon *d, const char *path);
void mamd_test_daemon_set_state_dir (MamdTestDaemon *d, const char *path);
/* The --plugin-dir for the next start (default $MAMD_BUILD_ROOT/tests/plugins). */
void mamd_test_daemon_set_plugin_dir (MamdTestDaemon *d, const char *path);

/* ---- the daemon process ---- */

/* Spawns $MAMD_BUILD_ROOT/daemon/mamd --bus-address ADDR --config-dir ...
 * --state-dir ... --plugin-dir $MAMD_BUILD_ROOT/tests/plugins and waits
 * until org.mamd.Mamd1 has an owner, or fails with the daemon's output when
 * it exits first. */
gboolean mamd_test_daemon_start (MamdTestDaemon *d, GError **error);
gboolean mamd_test_daemon_is_running (MamdTestDaemon *d);
GPid mamd_test_daemon_get_pid (MamdTestDaemon *d);
/* Sends @signo and waits for the exit. Returns the exit code, 128 + the
 * signal number when a signal ended it, -1 when nothing was running. */
int mamd_test_daemon_kill (MamdTestDaemon *d, int signo);
/* SIGTERM + wait; same return value. */
int mamd_test_daemon_stop (MamdTestDaemon *d);
/* Waits up to @timeout_ms for the daemon to exit by itself; same return
 * value, -1 when it is still running (it is left running). */
int mamd_test_daemon_wait_exit (MamdTestDaemon *d, guint timeout_ms);
/* From the next start on, the daemon's writes past @bytes in any file fail
 * with EFBIG, as on a full disk (RLIMIT_FSIZE, SIGXFSZ ignored); 0: no
 * limit. */
void mamd_test_daemon_set_file_size_limit (MamdTestDaemon *d, goffset bytes);
/* Sets @variable in the environment of the daemons started from now on
 * (LD_PRELOAD of a test shim, say), not in the test's own. */
void mamd_test_daemon_setenv (MamdTestDaemon *d, const char *variable, const char *value);
/* Exit status of the last daemon that ended (same encoding), -1 if none. */
int mamd_test_daemon_get_exit_status (MamdTestDaemon *d);
/* Everything the last (or current) daemon wrote to stdout and stderr. */
char *mamd_test_daemon_get_log (MamdTestDaemon *d);

/* ---- the bus ---- */

GDBusConnection *mamd_test_daemon_get_connection (MamdTestDaemon *d);
const char *mamd_test_daemon_get_bus_address (MamdTestDaemon *d);

/* Synchronous call of an org.mamd.Mamd1.Manager method on /org/mamd/Mamd1. */
GVariant *mamd_test_daemon_call (MamdTestDaemon *d, const char *method, GVariant *parameters,
                                 const char *reply_type, GError **error);
/* The test plugin's credential (see tests/plugins): @user_name may be NULL. */
GVariant *mamd_test_credential (const char *object_id, const char *tenant_id,
                                const char *user_name);
GVariant *mamd_test_device (const char *platform, const char *device_id);
/* SignIn through method "test" with mamd_test_credential (@object_id,
 * MAMD_TEST_TENANT_ID, NULL). Returns the result dict; *@out_path gets the
 * session object path when not NULL. */
GVariant *mamd_test_daemon_sign_in (MamdTestDaemon *d, const char *server,
                                    const char *object_id, const char *platform,
                                    const char *device_id, char **out_path, GError **error);
/* A random canonical GUID. */
char *mamd_test_random_guid (void);

/* ---- recorded signals ---- */

/* MamdTestSignal, arrival order (owned by the fixture). */
GPtrArray *mamd_test_daemon_get_signals (MamdTestDaemon *d);
/* The first recorded signal named @member, not returned before, whose first
 * argument (string or object path) equals @arg0 (any when NULL). Iterates
 * the main context until it arrives; NULL after @timeout_ms. */
const MamdTestSignal *mamd_test_daemon_wait_signal (MamdTestDaemon *d, const char *member,
                                                    const char *arg0, guint timeout_ms);
/* Iterates the main context until @done (@user_data) is TRUE, asking it
 * on every event and every 10 ms; FALSE after @timeout_ms. */
gboolean mamd_test_daemon_iterate_until (MamdTestDaemon *d,
                                         gboolean (*done) (gpointer user_data),
                                         gpointer user_data, guint timeout_ms);
/* Iterates until mamd's log holds @text; FALSE after @timeout_ms. */
gboolean mamd_test_daemon_wait_log (MamdTestDaemon *d, const char *text, guint timeout_ms);

G_END_DECLS
