/*
 * Client-side helpers shared by the D-Bus test programs (test-dbus*.c),
 * on top of the MamdTestDaemon fixture. They assert on failure unless they
 * take a GError.
 */
#pragma once

#include "mamd-test-daemon.h"

G_BEGIN_DECLS

#define WAIT_MS 30000
#define SERVER "chat"
#define MANAGER_IFACE "org.mamd.Mamd1.Manager"
#define SESSION_IFACE "org.mamd.Mamd1.Session"

/* A running daemon: mamd.conf (+ @daemon_conf_extra), an "advanced" licence
 * valid for a year, MAM-enabled server SERVER (+ @server_extra). */
MamdTestDaemon *started_daemon (const char *daemon_conf_extra, const char *server_extra);
/* @error is set and is the remote error @name. */
void assert_dbus_error (const GError *error, const char *name);
guint64 dict_uint64 (GVariant *dict, const char *key);
char *dict_string (GVariant *dict, const char *key);
/* The State property of the session object at @path. */
char *session_state (MamdTestDaemon *d, const char *path);
/* The Manager's LastEventSeq property. */
guint64 last_event_seq (MamdTestDaemon *d);
/* ReportEnrollment; the result dict. */
GVariant *report (MamdTestDaemon *d, const char *path, const char *outcome, gint status,
                  GError **error);
/* The seq carried as the last argument of a Manager signal. */
guint64 signal_seq (const MamdTestSignal *sig);
/* Like mamd_test_daemon_wait_signal(), failing the test after WAIT_MS. */
const MamdTestSignal *wait_signal (MamdTestDaemon *d, const char *member, const char *arg0);
/* A PropertiesChanged on @path whose State is @state. */
gboolean has_state_change (MamdTestDaemon *d, const char *path, const char *state);
/* Waits for has_state_change(), failing the test after WAIT_MS. */
void wait_state_change (MamdTestDaemon *d, const char *path, const char *state);

/* For mamd_test_daemon_iterate_until (d, log_contains, &wait, ...): the
 * daemon's log holds @text, at least @times times (0: once). */
typedef struct {
  MamdTestDaemon *d;
  const char *text;
  guint times;
} LogWait;

gboolean log_contains (gpointer user_data);

G_END_DECLS
