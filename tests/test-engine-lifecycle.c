/*
 * The engine end to end, without a bus (the fixture is in
 * mamd-test-engine-fixture.c), across configuration changes and time:
 * reload, licence expiry, restart, wipe expiry, directory sync, invalid
 * configuration at start and a failing store.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mamd-test-engine-fixture.h"
#include "mamd-test-util.h"

/* ---- helpers ---- */

static void
remove_server (Fixture *fx, const char *id)
{
  g_autofree char *name = g_strdup_printf ("%s.conf", id);
  g_autofree char *path = g_build_filename (fx->conf, "servers.d", name, NULL);

  g_assert_cmpint (g_unlink (path), ==, 0);
}

static gboolean
reload (Fixture *fx, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_reload_async (fx->engine, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_reload_finish (fx->engine, res, error);
}

/* ---- reload ---- */

static void
test_reload_enable (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) ios = NULL;
  g_autoptr(MamdEngineResult) android = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expect_required = NULL;
  g_autofree char *expect_revoked = NULL;
  guint64 seq;

  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  engine_start (fx);
  ios = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  android = sign_in_ok (fx, &user1, "chat", BOB, "android", "dev-2");
  g_assert_cmpint (ios->session->state, ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_cmpint (android->session->state, ==, MAMD_SESSION_STATE_ACTIVE);

  write_server (fx, "chat", MAM_SERVER (""));
  g_assert_true (reload (fx, &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (fx, ios->session->id), ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  g_assert_true (mamd_engine_lookup_session (fx->engine, ios->session->id)->mam_required);
  g_assert_cmpint (state_of (fx, android->session->id), ==, MAMD_SESSION_STATE_REVOKED);
  expect_required = g_strdup_printf ("enrollment-required %s", ios->session->id);
  expect_revoked = g_strdup_printf ("session-revoked %s", android->session->id);
  g_assert_true (has_signal (fx, expect_required));
  g_assert_true (has_signal (fx, expect_revoked));
  g_assert_true (has_signal (fx, "policy-changed chat applies open"));
  g_assert_cmpuint (count_events (fx, "config-reloaded"), ==, 1);

  /* unchanged configuration: no events at all */
  seq = mamd_engine_get_last_seq (fx->engine);
  g_assert_true (reload (fx, &error));
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, seq);

  /* MAM switched off again: the restriction lifts */
  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  g_assert_true (reload (fx, &error));
  g_assert_cmpint (state_of (fx, ios->session->id), ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_true (has_signal (fx, "policy-changed chat off"));

  /* server removed from the configuration */
  write_server (fx, "other", "[Server]\n");
  remove_server (fx, "chat");
  g_assert_true (reload (fx, &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (fx, ios->session->id), ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpstr (mamd_engine_lookup_session (fx->engine, ios->session->id)->reason, ==,
                   "server chat was removed from the configuration");
}

/* An enrollment made while MAM applied does not carry over a time MAM was
 * switched off: when it applies again, the session must enroll again and is
 * restricted at once (the guide: "users cannot bypass enforcement"). */
static void
test_reload_enable_again (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) enrolled = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expect_required = NULL;
  g_autofree char *reason = NULL;
  MamdSessionState state;
  gboolean allowed = TRUE;
  const char *id;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  id = session->session->id;
  enrolled = report (fx, &user1, id, MAMD_ENROLLMENT_SUCCESS, -1, &error);
  g_assert_no_error (error);

  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  g_assert_true (reload (fx, &error));
  g_assert_cmpint (state_of (fx, id), ==, MAMD_SESSION_STATE_ENROLLED);
  g_assert_false (mamd_engine_lookup_session (fx->engine, id)->mam_required);

  write_server (fx, "chat", MAM_SERVER (""));
  g_assert_true (reload (fx, &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (fx, id), ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  expect_required = g_strdup_printf ("enrollment-required %s", id);
  g_assert_cmpuint (count_signals (fx, expect_required), ==, 2);
  g_assert_true (mamd_engine_check_access (fx->engine, &user1, id, &allowed, &state, &reason,
                                           &error));
  g_assert_false (allowed);
  g_assert_cmpstr (reason, ==, "Intune MAM now applies to server chat: enrollment required");

  /* while the gate is closed, access names what closed it, with its next
   * step, rather than an enrollment that cannot help */
  g_clear_pointer (&reason, g_free);
  write_license (fx, "professional", 30 * 86400);
  g_assert_true (reload (fx, &error));
  g_assert_true (mamd_engine_check_access (fx->engine, &user1, id, &allowed, &state, &reason,
                                           &error));
  g_assert_false (allowed);
  g_assert_nonnull (strstr (reason, "server chat is not licensed for Intune MAM"));
}

/* Once MAM is switched off, an enrollment made while it applied enforces
 * nothing: like a session that never needed it, a failure reported for it
 * is refused, and removes no server and requests no wipe (only where MAM
 * applies does a technical failure take the server off the device). */
static void
test_reload_failure_mam_off (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) again = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) wipes = NULL;
  const char *id;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  id = session->session->id;
  result = report (fx, &user1, id, MAMD_ENROLLMENT_SUCCESS, 100, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  g_assert_true (reload (fx, &error));
  g_assert_false (mamd_engine_lookup_session (fx->engine, id)->mam_required);

  result = report (fx, &user1, id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_STATE);
  g_assert_nonnull (strstr (error->message, "Intune MAM does not apply to this session"));
  g_assert_cmpint (state_of (fx, id), ==, MAMD_SESSION_STATE_ENROLLED);
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 0);
  g_assert_cmpuint (count_events (fx, "server-removed"), ==, 0);
  again = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  g_assert_cmpint (again->session->state, ==, MAMD_SESSION_STATE_ACTIVE);
}

static void
test_reload_invalid (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(GError) error = NULL;
  const MamdConfig *config;
  guint64 seq;

  write_server (fx, "chat", "[Server]\nEnable=false\nAuthService=test\n");
  engine_start (fx);
  g_ptr_array_set_size (fx->signals, 0);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  config = mamd_engine_get_config (fx->engine);
  seq = mamd_engine_get_last_seq (fx->engine);

  /* a bad key, and separately a plugin group no plugin provides */
  write_server (fx, "chat", "[Server]\nEnable=maybe\n");
  g_assert_false (reload (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_clear_error (&error);
  write_server (fx, "chat", MAM_SERVER ("[nope]\n"));
  g_assert_false (reload (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "no plugin provides method 'nope'"));
  g_clear_error (&error);
  write_server (fx, "chat", MAM_SERVER ("[test]\nDelayMs=soon\n"));
  g_assert_false (reload (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "DelayMs"));
  /* the AuthService's own group is reported once, not once more for being the AuthService */
  g_assert_null (strstr (strstr (error->message, "DelayMs") + 1, "DelayMs"));
  g_clear_error (&error);

  /* nothing changed */
  g_assert_true (mamd_engine_get_config (fx->engine) == config);
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, seq);
  g_assert_cmpint (state_of (fx, session->session->id), ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_false (has_signal (fx, "policy-changed"));
}

static void
test_reload_gate (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  gboolean allowed = TRUE;

  write_server (fx, "chat", MAM_SERVER ("[test]\n"));
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_SUCCESS, 100, &error);
  g_assert_no_error (error);

  /* admin consent withdrawn: the gate closes, enrolled sessions lose access */
  write_server (fx, "chat", MAM_SERVER ("[test]\nGate=invalid-resource\n"));
  g_assert_true (reload (fx, &error));
  g_assert_true (has_signal (fx, "policy-changed chat applies closed"));
  g_assert_true (mamd_engine_check_access (fx->engine, &user1, session->session->id, &allowed,
                                           NULL, &reason, &error));
  g_assert_false (allowed);
  g_assert_nonnull (strstr (reason, "AADSTS650057"));
  g_assert_cmpint (state_of (fx, session->session->id), ==, MAMD_SESSION_STATE_ENROLLED);
}

/* An in-process plugin whose authentications and directory syncs wait
 * until the test releases them, so a reload can happen while one is in
 * flight, deterministically. */
G_DECLARE_FINAL_TYPE (HeldPlugin, held_plugin, HELD, PLUGIN, MamdPlugin)
struct _HeldPlugin {
  MamdPlugin parent_instance;
  GQueue held;        /* GTasks; task data: the credential's object-id */
  GQueue syncs;       /* GTasks of directory syncs */
  GPtrArray *configs; /* the config of every authentication, in order */
};
G_DEFINE_FINAL_TYPE (HeldPlugin, held_plugin, MAMD_TYPE_PLUGIN)

static GObject *
held_load_config (MamdPlugin *plugin, const char *server_id, const char *tenant_id,
                  const char *client_id, GKeyFile *keyfile, const char *group, GError **error)
{
  return g_object_new (G_TYPE_OBJECT, NULL);
}

static void
held_authenticate_async (MamdPlugin *plugin, GObject *config, GVariant *credential,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  HeldPlugin *self = HELD_PLUGIN (plugin);
  GTask *task = g_task_new (plugin, cancellable, callback, user_data);
  const char *object_id = NULL;

  /* answers even when cancelled meanwhile, as a careless plugin might */
  g_task_set_check_cancellable (task, FALSE);

  g_variant_lookup (credential, "object-id", "&s", &object_id);
  g_task_set_task_data (task, g_strdup (object_id), g_free);
  g_ptr_array_add (self->configs, g_object_ref (config));
  g_queue_push_tail (&self->held, task);
}

static MamdIdentity *
held_authenticate_finish (MamdPlugin *plugin, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
held_sync_async (MamdPlugin *plugin, GObject *config, GCancellable *cancellable,
                 GAsyncReadyCallback callback, gpointer user_data)
{
  g_queue_push_tail (&HELD_PLUGIN (plugin)->syncs,
                     g_task_new (plugin, cancellable, callback, user_data));
}

static GPtrArray *
held_sync_finish (MamdPlugin *plugin, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
held_finalize (GObject *object)
{
  HeldPlugin *self = HELD_PLUGIN (object);

  g_assert_true (g_queue_is_empty (&self->held));
  g_assert_true (g_queue_is_empty (&self->syncs));
  g_ptr_array_unref (self->configs);
  G_OBJECT_CLASS (held_plugin_parent_class)->finalize (object);
}

static void
held_plugin_class_init (HeldPluginClass *klass)
{
  MamdPluginClass *plugin_class = MAMD_PLUGIN_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = held_finalize;
  plugin_class->method = "held";
  plugin_class->description = "authentications wait for the test (test)";
  plugin_class->capabilities = MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_CREATES_USERS |
                               MAMD_PLUGIN_CAP_DIRECTORY_SYNC;
  plugin_class->load_config = held_load_config;
  plugin_class->authenticate_async = held_authenticate_async;
  plugin_class->authenticate_finish = held_authenticate_finish;
  plugin_class->sync_async = held_sync_async;
  plugin_class->sync_finish = held_sync_finish;
}

static void
held_plugin_init (HeldPlugin *self)
{
  g_queue_init (&self->held);
  g_queue_init (&self->syncs);
  self->configs = g_ptr_array_new_with_free_func (g_object_unref);
}

/* A new HeldPlugin, added to the engine's plugins (method "held"). */
static HeldPlugin *
held_plugin_add (Fixture *fx)
{
  HeldPlugin *held = g_object_new (held_plugin_get_type (), NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (mamd_plugin_loader_add (fx->loader, MAMD_PLUGIN (held), &error));
  g_assert_no_error (error);
  return held;
}

/* Waits for the next authentication and lets it succeed. */
static void
held_release (HeldPlugin *self)
{
  g_autoptr(GTask) task = NULL;
  MamdIdentity *identity;

  while (g_queue_is_empty (&self->held))
    g_main_context_iteration (NULL, TRUE);
  task = g_queue_pop_head (&self->held);
  identity = mamd_identity_new (g_task_get_task_data (task), TENANT, NULL, "objectId", "held",
                                NULL);
  g_task_return_pointer (task, identity, (GDestroyNotify) mamd_identity_free);
}

/* Waits for the next directory sync and lets it list @object_id. */
static void
held_release_sync (HeldPlugin *self, const char *object_id)
{
  g_autoptr(GTask) task = NULL;
  GPtrArray *users = g_ptr_array_new_with_free_func ((GDestroyNotify) mamd_identity_free);

  while (g_queue_is_empty (&self->syncs))
    g_main_context_iteration (NULL, TRUE);
  task = g_queue_pop_head (&self->syncs);
  g_ptr_array_add (users, mamd_identity_new (object_id, TENANT, NULL, "objectId", "held", NULL));
  g_task_return_pointer (task, users, (GDestroyNotify) g_ptr_array_unref);
}

static void
store_result (GObject *source, GAsyncResult *res, gpointer user_data)
{
  GAsyncResult **out = user_data;

  g_assert_null (*out);
  *out = g_object_ref (res);
}

static MamdEngineResult *
finish_sign_in (Fixture *fx, GAsyncResult **res, GError **error)
{
  g_autoptr(GAsyncResult) done = NULL;

  while (*res == NULL)
    g_main_context_iteration (NULL, TRUE);
  done = g_steal_pointer (res);
  return mamd_engine_sign_in_finish (fx->engine, done, error);
}

/* A reload while the plugin authenticates: nothing is accepted under a
 * configuration that no longer holds. The credential is authenticated
 * again under the new one (a bounded number of times), and refused when
 * its method is no longer configured; a reload that left the server's file
 * as it was changes nothing. */
static void
test_reload_during_sign_in (Fixture *fx, gconstpointer data)
{
  g_autoptr(HeldPlugin) held = held_plugin_add (fx);
  g_autoptr(GVariant) cred = credential (ALICE, TENANT, NULL, NULL);
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *res = NULL;

  write_server (fx, "other", "[Server]\n[held]\n");
  engine_start (fx);

  /* a reload of the same files (and of another server's): one authentication */
  mamd_engine_sign_in_async (fx->engine, &user1, "other", "held", cred, "ios", "dev-0", NULL,
                             store_result, &res);
  g_assert_true (reload (fx, &error));
  write_server (fx, "chat", MAM_SERVER (""));
  g_assert_true (reload (fx, &error));
  held_release (held);
  result = finish_sign_in (fx, &res, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (held->configs->len, ==, 1);
  g_clear_pointer (&result, mamd_engine_result_free);

  /* the server's file changed: authenticated again under the new config */
  mamd_engine_sign_in_async (fx->engine, &user1, "other", "held", cred, "ios", "dev-1", NULL,
                             store_result, &res);
  write_server (fx, "other", "[Server]\nName=Other\n[held]\n");
  g_assert_true (reload (fx, &error));
  held_release (held);
  held_release (held);
  result = finish_sign_in (fx, &res, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_ACTIVE);
  g_assert_cmpuint (held->configs->len, ==, 3);
  g_assert_true (held->configs->pdata[1] != held->configs->pdata[2]);
  g_clear_pointer (&result, mamd_engine_result_free);

  /* a change before every answer: refused after three authentications */
  mamd_engine_sign_in_async (fx->engine, &user1, "other", "held", cred, "ios", "dev-2", NULL,
                             store_result, &res);
  for (guint i = 0; i < 3; i++) {
    g_autofree char *contents = g_strdup_printf ("[Server]\nName=Other %u\n[held]\n", i);

    write_server (fx, "other", contents);
    g_assert_true (reload (fx, &error));
    held_release (held);
    /* until the engine has seen the answer: authenticated again, or done */
    while (g_queue_is_empty (&held->held) && res == NULL)
      g_main_context_iteration (NULL, TRUE);
  }
  result = finish_sign_in (fx, &res, &error);
  g_assert_null (result);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "changed 3 times during the sign-in"));
  g_assert_cmpuint (held->configs->len, ==, 6);
  g_clear_error (&error);

  /* the caller gone (its call cancelled) before the plugin answered:
   * nothing is created, and the answer says so (the plugin SDK's wrapper
   * sees to it, whatever the plugin does) */
  {
    g_autoptr(GCancellable) cancellable = g_cancellable_new ();

    mamd_engine_sign_in_async (fx->engine, &user1, "other", "held", cred, "ios", "dev-c",
                               cancellable, store_result, &res);
    g_cancellable_cancel (cancellable);
    held_release (held);
    result = finish_sign_in (fx, &res, &error);
    g_assert_null (result);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&error);
    g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 2);
    g_assert_cmpuint (held->configs->len, ==, 7);
  }

  /* the method's group removed meanwhile */
  mamd_engine_sign_in_async (fx->engine, &user1, "other", "held", cred, "ios", "dev-3", NULL,
                             store_result, &res);
  write_server (fx, "other", "[Server]\n");
  g_assert_true (reload (fx, &error));
  held_release (held);
  result = finish_sign_in (fx, &res, &error);
  g_assert_null (result);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 2);
  engine_stop (fx);
}

/* Runs a directory sync of @server_id (every server when NULL) to the end. */
static gboolean
sync_directory (Fixture *fx, const char *server_id, GError **error)
{
  g_autoptr(GAsyncResult) res = NULL;

  mamd_engine_sync_directory_async (fx->engine, server_id, NULL, got_result, fx);
  res = wait_result (fx);
  return mamd_engine_sync_directory_finish (fx->engine, res, error);
}

/* One sync of a server through a plugin at a time: while one runs, a
 * caller is told Busy and the timer starts none. A plugin that does not
 * list within DirectorySyncTimeout is given up on, and the next sync
 * starts afresh. */
static void
test_sync_hung (Fixture *fx, gconstpointer data)
{
  g_autoptr(HeldPlugin) held = held_plugin_add (fx);
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  write_daemon (fx, "[Limits]\nDirectorySyncTimeout=1\n");
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[held]\n"));
  engine_start (fx);

  mamd_engine_sync_directory_async (fx->engine, "chat", NULL, got_result, fx);
  g_assert_cmpuint (g_queue_get_length (&held->syncs), ==, 1);
  g_assert_false (sync_directory (fx, "chat", &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "directory sync of server chat through held"));
  g_assert_nonnull (strstr (error->message, "still runs"));
  g_clear_error (&error);
  mamd_engine_sync_directory_async (fx->engine, NULL, NULL, NULL, NULL); /* a timer tick */
  g_assert_cmpuint (g_queue_get_length (&held->syncs), ==, 1);

  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING,
                         "directory sync of server chat through held failed: *");
  res = wait_result (fx);
  g_test_assert_expected_messages ();
  g_assert_false (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "did not list the users of server chat within 1 s "
                                            "(DirectorySyncTimeout"));
  g_clear_error (&error);
  g_clear_object (&res);
  /* the late answer provisions nobody */
  held_release_sync (held, ALICE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 0);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);

  mamd_engine_sync_directory_async (fx->engine, "chat", NULL, got_result, fx);
  held_release_sync (held, ALICE);
  res = wait_result (fx);
  g_assert_true (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 1);
  g_clear_object (&res);
  engine_stop (fx);
}

/* Each listing is applied when its plugin answers: one server's hung
 * directory holds back no other server's users. */
static void
test_sync_per_job (Fixture *fx, gconstpointer data)
{
  g_autoptr(HeldPlugin) held = held_plugin_add (fx);
  g_autoptr(MamdEngineResult) chat = NULL;
  g_autoptr(MamdEngineResult) other = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[held]\n"));
  write_server (fx, "other", MAM_SERVER ("AutoCreateUsers=false\n[held]\n"));
  engine_start (fx);

  mamd_engine_sync_directory_async (fx->engine, NULL, NULL, got_result, fx);
  g_assert_cmpuint (g_queue_get_length (&held->syncs), ==, 2);
  held_release_sync (held, ALICE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_null (fx->result);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 1);

  held_release_sync (held, ALICE);
  res = wait_result (fx);
  g_assert_true (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 2);
  g_clear_object (&res);
  chat = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  other = sign_in_ok (fx, &user1, "other", ALICE, "ios", "dev-1");
  engine_stop (fx);
}

/* A stop gives up on the directory syncs under way, the timer's and a
 * caller's: the caller is answered, no listing is applied after the last
 * commit, and no sync keeps the engine alive. */
static void
test_sync_shutdown (Fixture *fx, gconstpointer data)
{
  g_autoptr(HeldPlugin) held = held_plugin_add (fx);
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[held]\n"));
  write_server (fx, "other", MAM_SERVER ("AutoCreateUsers=false\n[held]\n"));
  engine_start (fx);
  mamd_engine_sync_directory_async (fx->engine, "chat", NULL, NULL, NULL); /* a timer tick */
  mamd_engine_sync_directory_async (fx->engine, "other", NULL, got_result, fx);
  g_assert_cmpuint (g_queue_get_length (&held->syncs), ==, 2);

  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING,
                         "directory sync of server * through held failed: *");
  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING,
                         "directory sync of server * through held failed: *");
  g_assert_true (mamd_engine_shutdown (fx->engine, &error));
  g_assert_no_error (error);
  g_test_assert_expected_messages ();
  g_assert_nonnull (fx->result);
  res = wait_result (fx);
  g_assert_false (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&res);
  engine_stop (fx);

  /* the plugins' late answers provision nobody */
  held_release_sync (held, ALICE);
  held_release_sync (held, ALICE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  engine_start (fx);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 0);
  engine_stop (fx);
}

/* A plugin that does not answer within SignInTimeout is given up on: the
 * sign-in fails with PluginUnavailable, and the late answer creates
 * nothing. */
static void
test_sign_in_timeout (Fixture *fx, gconstpointer data)
{
  g_autoptr(HeldPlugin) held = held_plugin_add (fx);
  g_autoptr(GVariant) cred = credential (ALICE, TENANT, NULL, NULL);
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *res = NULL;

  write_daemon (fx, "[Limits]\nSignInTimeout=1\n");
  write_server (fx, "other", "[Server]\n[held]\n");
  engine_start (fx);

  mamd_engine_sign_in_async (fx->engine, &user1, "other", "held", cred, "ios", "dev-0", NULL,
                             store_result, &res);
  result = finish_sign_in (fx, &res, &error);
  g_assert_null (result);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "did not authenticate within 1 s (SignInTimeout"));
  held_release (held);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 0);
  engine_stop (fx);
}

/* A reload that takes a platform out of AllowedPlatforms revokes the live
 * sessions of that platform, as a sign-in from it would be refused. */
static void
test_reload_platform_removed (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) ios = NULL;
  g_autoptr(MamdEngineResult) android = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expect_revoked = NULL;

  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\n");
  engine_start (fx);
  ios = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  android = sign_in_ok (fx, &user1, "chat", BOB, "android", "dev-2");

  write_server (fx, "chat", "[Server]\nEnable=false\nTenantId=" TENANT "\nClientId=" CLIENT
                            "\nAuthService=test\nAllowedPlatforms=android\n");
  g_assert_true (reload (fx, &error));
  g_assert_no_error (error);
  g_assert_cmpint (state_of (fx, ios->session->id), ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpint (state_of (fx, android->session->id), ==, MAMD_SESSION_STATE_ACTIVE);
  expect_revoked = g_strdup_printf ("session-revoked %s", ios->session->id);
  g_assert_true (has_signal (fx, expect_revoked));
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_UNSUPPORTED_PLATFORM,
                        NULL);
}

/* A reload while the plugin lists the directory: the listing was made
 * under settings that no longer hold (another base or filter, say), so
 * nobody is provisioned from it and the caller is told to sync again. */
static void
test_reload_during_sync (Fixture *fx, gconstpointer data)
{
  g_autoptr(HeldPlugin) held = held_plugin_add (fx);
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[held]\n"));
  engine_start (fx);

  mamd_engine_sync_directory_async (fx->engine, "chat", NULL, got_result, fx);
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\nName=Chat\n[held]\n"));
  g_assert_true (reload (fx, &error));
  held_release_sync (held, ALICE);
  res = wait_result (fx);
  g_assert_false (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_BUSY);
  g_assert_nonnull (strstr (error->message, "run sync again"));
  g_clear_error (&error);
  g_clear_object (&res);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 0);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);

  /* a reload that leaves the file as it was changes nothing */
  mamd_engine_sync_directory_async (fx->engine, "chat", NULL, got_result, fx);
  g_assert_true (reload (fx, &error));
  held_release_sync (held, ALICE);
  res = wait_result (fx);
  g_assert_true (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 1);
  g_clear_object (&res);
  result = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  engine_stop (fx);
}

/* Starts a sign-in of ALICE and iterates until its commit is under way. */
static void
sign_in_until_committing (Fixture *fx, GCancellable *cancellable, GAsyncResult **res)
{
  g_autoptr(GVariant) cred = credential (ALICE, TENANT, NULL, NULL);
  guint before = mamd_engine_get_n_sessions (fx->engine);

  mamd_engine_sign_in_async (fx->engine, &user1, "chat", "test", cred, "ios", "dev-1",
                             cancellable, store_result, res);
  while (mamd_engine_get_n_sessions (fx->engine) == before)
    g_main_context_iteration (NULL, TRUE);
}

/* The caller goes away while its sign-in's commit is under way (another
 * program holds the store's write lock): the session is committed, so the
 * answer is the session, not "cancelled". */
static void
test_cancel_during_commit (Fixture *fx, gconstpointer data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *res = NULL;
  sqlite3 *db;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  db = mamd_test_lock_store (fx->state);
  sign_in_until_committing (fx, cancellable, &res);
  g_cancellable_cancel (cancellable);
  mamd_test_unlock_store (db);
  result = finish_sign_in (fx, &res, &error);
  g_assert_no_error (error);
  g_assert_nonnull (result);
  g_assert_cmpint (result->session->state, ==, MAMD_SESSION_STATE_ENROLLMENT_REQUIRED);
  engine_stop (fx);
}

/* A call that changes nothing (a reload of unchanged files) still answers
 * only after the changes submitted before it are saved. */
static void
test_nothing_to_save_waits (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *res = NULL;
  GAsyncResult *reloaded = NULL;
  sqlite3 *db;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  db = mamd_test_lock_store (fx->state);
  sign_in_until_committing (fx, NULL, &res);
  mamd_engine_reload_async (fx->engine, NULL, store_result, &reloaded);
  for (guint i = 0; i < 20; i++) {
    while (g_main_context_iteration (NULL, FALSE))
      ;
    g_usleep (10000);
  }
  g_assert_null (reloaded);
  g_assert_null (res);
  mamd_test_unlock_store (db);
  while (reloaded == NULL)
    g_main_context_iteration (NULL, TRUE);
  /* the sign-in's answer came first */
  g_assert_nonnull (res);
  g_assert_true (mamd_engine_reload_finish (fx->engine, reloaded, &error));
  g_assert_no_error (error);
  g_clear_object (&reloaded);
  result = finish_sign_in (fx, &res, &error);
  g_assert_no_error (error);
  engine_stop (fx);
}

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* The licence expires while running: its timer closes the gate. Time moves
 * through the engine's clock and the test runs what the timer runs, so a
 * slow run (valgrind) cannot overtake a real-time expiry. */
static void
test_license_expiry (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  write_license (fx, "advanced", 7 * 86400);
  engine_start (fx);
  /* the first start announces the server */
  g_assert_cmpuint (count_signals (fx, "policy-changed chat applies open"), ==, 1);
  g_assert_cmpuint (count_events (fx, "policy-changed"), ==, 1);
  g_ptr_array_set_size (fx->signals, 0);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  /* a change of the licence is ahead: the timer waits for it, a minute at
   * a time (the wall clock may jump, or stand still for the timer during a
   * suspend) */
  g_assert_cmpuint (fx->engine->license_id, !=, 0);
  {
    GSource *timer = g_main_context_find_source_by_id (NULL, fx->engine->license_id);

    g_assert_nonnull (timer);
    g_assert_cmpint (g_source_get_ready_time (timer) - g_get_monotonic_time (), <=,
                     61 * G_USEC_PER_SEC);
  }

  fx->clock_offset = 8 * DAY_US;
  /* what the timer runs when it fires (its delay is in real seconds) */
  mamd_engine_reevaluate_gates (fx->engine);
  wait_committed (fx);
  g_assert_true (has_signal (fx, "policy-changed chat applies closed"));
  g_assert_cmpuint (count_signals (fx, "policy-changed"), ==, 1);
  g_assert_cmpuint (count_events (fx, "policy-changed"), ==, 2);
  /* expired for good: nothing left to wait for */
  g_assert_cmpuint (fx->engine->license_id, ==, 0);
  assert_sign_in_fails (fx, "chat", BOB, "ios", "dev-2", MAMD_ERROR_NOT_LICENSED,
                        "not licensed for Intune MAM");
}

/* ---- restart, expiry, sync ---- */

static void
test_restart (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) s1 = NULL;
  g_autoptr(MamdEngineResult) s2 = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) s3 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *id1 = NULL;
  g_autofree char *id2 = NULL;
  guint64 seq;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  s1 = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  s2 = sign_in_ok (fx, &user1, "chat", BOB, "ios", "dev-2");
  result = report (fx, &user1, s1->session->id, MAMD_ENROLLMENT_SUCCESS, 100, &error);
  g_assert_no_error (error);
  g_clear_pointer (&result, mamd_engine_result_free);
  result = report (fx, &user1, s2->session->id, MAMD_ENROLLMENT_FAILED, 213, &error);
  g_assert_no_error (error);
  id1 = g_strdup (s1->session->id);
  id2 = g_strdup (s2->session->id);
  seq = mamd_engine_get_last_seq (fx->engine);
  engine_stop (fx);

  g_ptr_array_set_size (fx->signals, 0);
  engine_start (fx);
  g_assert_cmpuint (mamd_engine_get_n_sessions (fx->engine), ==, 2);
  g_assert_cmpint (state_of (fx, id1), ==, MAMD_SESSION_STATE_ENROLLED);
  g_assert_cmpint (state_of (fx, id2), ==, MAMD_SESSION_STATE_REVOKED);
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), >=, seq);
  assert_sign_in_fails (fx, "chat", BOB, "ios", "dev-2", MAMD_ERROR_SERVER_REMOVED, NULL);
  g_assert_false (has_signal (fx, "wipe-requested"));
  mamd_engine_announce_pending_wipes (fx->engine);
  g_assert_cmpuint (count_signals (fx, "wipe-requested"), ==, 1);
  s3 = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-3");
  g_assert_cmpuint (s3->seq, >, seq);
}

/* What changed while mamd was stopped is announced at its start, once:
 * the policy last announced for each server is stored. */
static void
test_restart_policy (Fixture *fx, gconstpointer data)
{
  guint64 seq;

  write_server (fx, "chat", MAM_SERVER (""));
  write_server (fx, "intranet", "[Server]\nEnable=false\n");
  write_license (fx, "advanced", 7 * 86400);
  engine_start (fx);
  g_assert_cmpuint (count_signals (fx, "policy-changed chat applies open"), ==, 1);
  g_assert_cmpuint (count_signals (fx, "policy-changed intranet off"), ==, 1);
  g_assert_cmpuint (count_events (fx, "policy-changed"), ==, 2);
  seq = mamd_engine_get_last_seq (fx->engine);
  engine_stop (fx);

  /* nothing changed: nothing is announced */
  g_ptr_array_set_size (fx->signals, 0);
  engine_start (fx);
  g_assert_false (has_signal (fx, "policy-changed"));
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), ==, seq);
  engine_stop (fx);

  /* while stopped: the licence expires, a server goes, another comes */
  fx->clock_offset = 8 * DAY_US;
  remove_server (fx, "intranet");
  write_server (fx, "beta", MAM_SERVER (""));
  engine_start (fx);
  g_assert_cmpuint (count_signals (fx, "policy-changed chat applies closed"), ==, 1);
  g_assert_cmpuint (count_signals (fx, "policy-changed beta applies closed"), ==, 1);
  g_assert_cmpuint (count_signals (fx, "policy-changed intranet off closed server intranet "
                                       "was removed from the configuration"), ==, 1);
  g_assert_cmpuint (count_signals (fx, "policy-changed"), ==, 3);
  g_assert_cmpuint (count_events (fx, "policy-changed"), ==, 5);
  g_assert_cmpuint (mamd_engine_get_last_seq (fx->engine), >=, seq + 3);
  engine_stop (fx);

  /* and only once */
  g_ptr_array_set_size (fx->signals, 0);
  engine_start (fx);
  g_assert_false (has_signal (fx, "policy-changed"));
}

static void
test_wipe_expiry (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) kept = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) wipes = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  write_license (fx, "advanced", 365 * 86400);
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  kept = sign_in_ok (fx, &user1, "chat", BOB, "ios", "dev-2");
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_no_error (error);
  engine_stop (fx);

  /* six days later: still pending; the revoked session, which goes after
   * 24 h, stays while its wipe is pending */
  fx->clock_offset = 6 * DAY_US;
  engine_start (fx);
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 1);
  g_clear_pointer (&wipes, g_ptr_array_unref);
  g_assert_nonnull (mamd_engine_lookup_session (fx->engine, session->session->id));
  g_assert_nonnull (mamd_engine_lookup_session (fx->engine, kept->session->id));
  g_assert_cmpuint (count_events (fx, "session-expired"), ==, 0);
  engine_stop (fx);

  /* eight days: given up, with a warning; then the session goes too */
  fx->clock_offset = 8 * DAY_US;
  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING, "*never acknowledged and expired*");
  engine_start (fx);
  g_test_assert_expected_messages ();
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 0);
  g_assert_cmpuint (count_events (fx, "wipe-expired"), ==, 1);
  g_assert_null (mamd_engine_lookup_session (fx->engine, session->session->id));
  g_assert_cmpuint (count_events (fx, "session-expired"), ==, 1);
}

/* Days after a failed enrollment the device's client, not only an
 * administrator, may still acknowledge the wipe; the revoked session goes
 * at the next maintenance after that. */
static void
test_wipe_ack_late (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) session = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(MamdEngineResult) acked = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) wipes = NULL;
  g_autofree char *wipe_id = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  write_license (fx, "advanced", 365 * 86400);
  engine_start (fx);
  session = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  result = report (fx, &user1, session->session->id, MAMD_ENROLLMENT_FAILED, 201, &error);
  g_assert_no_error (error);
  engine_stop (fx);

  fx->clock_offset = 2 * DAY_US;
  engine_start (fx);
  wipes = mamd_engine_list_wipes (fx->engine);
  g_assert_cmpuint (wipes->len, ==, 1);
  wipe_id = g_strdup (((MamdWipeRecord *) g_ptr_array_index (wipes, 0))->id);
  acked = ack_wipe (fx, &user1, wipe_id, &error);
  g_assert_no_error (error);
  g_assert_nonnull (acked);
  engine_stop (fx);

  fx->clock_offset = 3 * DAY_US;
  engine_start (fx);
  g_assert_null (mamd_engine_lookup_session (fx->engine, session->session->id));
  g_assert_cmpuint (count_events (fx, "session-expired"), ==, 1);
}

static void
test_directory_sync (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[test]\nUsers=" ALICE
                                        ":alice;" BOB ":bob\n"));
  engine_start (fx);
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);

  mamd_engine_sync_directory_async (fx->engine, "chat", NULL, got_result, fx);
  res = wait_result (fx);
  g_assert_true (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 1);
  result = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  assert_sign_in_fails (fx, "chat", CAROL, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);
  g_clear_object (&res);

  mamd_engine_sync_directory_async (fx->engine, "nope", NULL, got_result, fx);
  res = wait_result (fx);
  g_assert_false (mamd_engine_sync_directory_finish (fx->engine, res, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_FOUND);
}

/* With an interval set, the directory is synced at start. */
static void
test_directory_sync_at_start (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) result = NULL;
  gboolean timed_out = FALSE;
  guint timeout_id;

  write_daemon (fx, "DirectorySyncInterval=3600\n");
  write_server (fx, "chat", MAM_SERVER ("AutoCreateUsers=false\n[test]\nUsers=" ALICE
                                        ":alice\n"));
  write_server (fx, "nosync", MAM_SERVER ("AutoCreateUsers=false\n"));
  engine_start (fx);
  timeout_id = g_timeout_add_seconds (60, set_flag, &timed_out);
  while (count_events (fx, "directory-synced") == 0 && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout_id);
  g_assert_cmpuint (count_events (fx, "directory-synced"), ==, 1);
  result = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  /* a server without a sync plugin group provisions nobody */
  assert_sign_in_fails (fx, "nosync", ALICE, "ios", "dev-1", MAMD_ERROR_USER_MISMATCH, NULL);
}

static void
test_start_invalid (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", "[Server]\nEnable=maybe\nTenantId=nope\n");
  g_assert_false (engine_try_start (fx, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  /* every problem, one per line */
  g_assert_nonnull (strstr (error->message, "Enable"));
  g_assert_nonnull (strstr (error->message, "TenantId"));
  g_assert_nonnull (strchr (error->message, '\n'));
  g_clear_object (&fx->engine);
  g_clear_object (&fx->store);
}

/* After an upgrade that bumps the ABI, a plugin not yet rebuilt cannot say
 * its method: a group no module provides may be its, so the configuration
 * is not refused (that would stop every server), but the group is skipped
 * with a warning naming the module, and its server refuses every sign-in:
 * the group may as well be a misspelt one (here of the AuthService, whose
 * Gate setting would otherwise be lost). The other servers work. */
static void
test_nameless_module (Fixture *fx, gconstpointer data)
{
  g_autofree char *bad = g_build_filename (g_getenv ("MAMD_BUILD_ROOT"), "tests", "plugins",
                                           "bad", "libbad-abi.so", NULL);
  g_autoptr(MamdEngineResult) signed_in = NULL;
  g_autoptr(MamdEngineResult) result = NULL;
  g_autoptr(GVariant) cred = NULL;
  g_autoptr(GError) error = NULL;

  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING, "skipping plugin *libbad-abi.so*");
  g_assert_null (mamd_plugin_loader_load_module (fx->loader, bad)->method);
  write_server (fx, "chat", MAM_SERVER ("[tset]\nGate=invalid-resource\n"));
  write_server (fx, "plain", "[Server]\nEnable=false\n[saml]\nIdpMetadataFile=/etc/idp.xml\n");
  write_server (fx, "other", MAM_SERVER (""));
  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING,
                         "*chat.conf: [tset]: skipped, no plugin provides method 'tset'; modules "
                         "that could not say which method they provide: *libbad-abi.so (*"
                         "the server refuses every sign-in*");
  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING, "*plain.conf: [saml]: skipped*");
  engine_start (fx);
  g_test_assert_expected_messages ();

  /* MAM applies: the gate says why */
  assert_sign_in_fails (fx, "chat", ALICE, "ios", "dev-1", MAMD_ERROR_FORBIDDEN,
                        "server chat refuses sign-ins: ");
  /* MAM does not apply: refused all the same */
  cred = credential (ALICE, TENANT, NULL, NULL);
  result = sign_in_full (fx, &user1, "plain", "test", cred, "ios", "dev-1", NULL, &error);
  g_assert_null (result);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "[saml]: skipped, no plugin provides method"));
  g_clear_error (&error);
  signed_in = sign_in_ok (fx, &user1, "other", ALICE, "ios", "dev-1");

  /* without such a module a misspelt group is an error */
  engine_stop (fx);
  g_clear_object (&fx->loader);
  fx->loader = mamd_plugin_loader_new ();
  g_assert_true (engine_try_start (fx, &error) == FALSE);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, "[tset]: no plugin provides method 'tset'"));
  g_clear_object (&fx->engine);
  g_clear_object (&fx->store);
}

static void
on_committed (const GError *error, gpointer user_data)
{
  GError **out = user_data;

  g_assert_null (*out);
  *out = error != NULL ? g_error_copy (error) : g_error_new_literal (G_IO_ERROR, 0, "none");
}

/* A waiter runs once every commit submitted before it is durable: at once
 * when none is under way, else after the commit's own callback. */
static void
test_when_committed (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdEngineResult) signed_in = NULL;
  g_autoptr(MamdEngineResult) reported = NULL;
  g_autoptr(GAsyncResult) res = NULL;
  g_autoptr(GError) waited = NULL;
  g_autoptr(GError) error = NULL;

  write_server (fx, "chat", MAM_SERVER (""));
  engine_start (fx);
  signed_in = sign_in_ok (fx, &user1, "chat", ALICE, "ios", "dev-1");
  mamd_engine_when_committed (fx->engine, on_committed, &waited);
  g_assert_error (waited, G_IO_ERROR, 0); /* at once, without an error */
  g_clear_error (&waited);

  mamd_engine_report_enrollment_async (fx->engine, &user1, signed_in->session->id,
                                       MAMD_ENROLLMENT_SUCCESS, -1, NULL, got_result, fx);
  /* the change is visible before it is durable; the waiter is not run */
  g_assert_cmpint (state_of (fx, signed_in->session->id), ==, MAMD_SESSION_STATE_ENROLLED);
  mamd_engine_when_committed (fx->engine, on_committed, &waited);
  g_assert_null (waited);
  res = wait_result (fx);
  reported = mamd_engine_report_enrollment_finish (fx->engine, res, &error);
  g_assert_no_error (error);
  while (waited == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (waited, G_IO_ERROR, 0);
  g_assert_true (has_signal (fx, "enrolled"));
}

static void
on_fatal (MamdEngine *engine, const GError *error, gpointer user_data)
{
  guint *count = user_data;

  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
  (*count)++;
}

/* A real write failure of the real store (the file size limit makes every
 * write fail): the call fails with Store, "fatal" is emitted once, and later
 * calls are refused. Runs in a subprocess because the limit cannot be
 * raised again. */
static void
test_store_failure (Fixture *fx, gconstpointer data)
{
  if (g_test_subprocess ()) {
    g_autoptr(MamdEngineResult) result = NULL;
    g_autoptr(GError) error = NULL;
    struct rlimit limit = { 1, 1 };
    guint fatal = 0;

    /* the warnings are the point here: the parent checks them */
    g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    write_server (fx, "chat", MAM_SERVER (""));
    engine_start (fx);
    g_signal_connect (fx->engine, "fatal", G_CALLBACK (on_fatal), &fatal);
    g_assert_true (mamd_store_flush (fx->store, &error));
    g_assert_no_error (error);
    signal (SIGXFSZ, SIG_IGN);
    g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);

    result = sign_in (fx, &user1, "chat", ALICE, "ios", "dev-1", &error);
    g_assert_null (result);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
    g_assert_cmpuint (fatal, ==, 1);
    g_assert_false (has_signal (fx, "enrollment-required"));
    g_clear_error (&error);
    result = sign_in (fx, &user1, "chat", BOB, "ios", "dev-2", &error);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
    g_assert_cmpuint (fatal, ==, 1);
    /* memory may be ahead of the store now: a read must not answer */
    g_clear_error (&error);
    mamd_engine_when_committed (fx->engine, on_committed, &error);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_STORE);
    mamd_test_rm_rf (fx->tmp);
    _exit (0);
  }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*state store failed, stopping*");
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/mamd/engine/reload/enable", test_reload_enable);
  ADD ("/mamd/engine/reload/enable-again", test_reload_enable_again);
  ADD ("/mamd/engine/reload/failure-mam-off", test_reload_failure_mam_off);
  ADD ("/mamd/engine/reload/invalid", test_reload_invalid);
  ADD ("/mamd/engine/reload/gate", test_reload_gate);
  ADD ("/mamd/engine/reload/during-sign-in", test_reload_during_sign_in);
  ADD ("/mamd/engine/reload/during-sync", test_reload_during_sync);
  ADD ("/mamd/engine/reload/platform-removed", test_reload_platform_removed);
  ADD ("/mamd/engine/sign-in-timeout", test_sign_in_timeout);
  ADD ("/mamd/engine/cancel-during-commit", test_cancel_during_commit);
  ADD ("/mamd/engine/nothing-to-save-waits", test_nothing_to_save_waits);
  ADD ("/mamd/engine/license/expiry", test_license_expiry);
  ADD ("/mamd/engine/restart", test_restart);
  ADD ("/mamd/engine/restart/policy", test_restart_policy);
  ADD ("/mamd/engine/wipe-expiry", test_wipe_expiry);
  ADD ("/mamd/engine/wipe-ack-late", test_wipe_ack_late);
  ADD ("/mamd/engine/directory-sync", test_directory_sync);
  ADD ("/mamd/engine/directory-sync/at-start", test_directory_sync_at_start);
  ADD ("/mamd/engine/directory-sync/hung", test_sync_hung);
  ADD ("/mamd/engine/directory-sync/per-job", test_sync_per_job);
  ADD ("/mamd/engine/directory-sync/shutdown", test_sync_shutdown);
  ADD ("/mamd/engine/start/invalid-config", test_start_invalid);
  ADD ("/mamd/engine/store-failure", test_store_failure);
  ADD ("/mamd/engine/when-committed", test_when_committed);
  ADD ("/mamd/engine/start/nameless-module", test_nameless_module);

  return g_test_run ();
}
