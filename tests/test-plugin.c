/*
 * test-plugin.c: the plugin SDK's runner wrappers and the test plugin,
 * loaded as a module exactly as the daemon loads it. The SDK's value types
 * (GUIDs, identity, errors) are in test-plugin-values.c.
 */
#include "config.h"

#include <string.h>

#include "mamd-plugin-loader.h"

#define OID "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define TID "72f988bf-86f1-41af-91ab-2d7cd011db47"

/* ---- the test plugin through the runner wrappers ---- */

typedef struct {
  MamdPluginLoader *loader;
  MamdPlugin *plugin; /* borrowed from the loader */
  GMainLoop *loop;
} Fixture;

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  const char *root = g_getenv ("MAMD_BUILD_ROOT");
  g_autofree char *path = NULL;
  const MamdPluginEntry *entry;

  g_assert_nonnull (root);
  path = g_build_filename (root, "tests", "plugins", "libmamd-test-plugin.so", NULL);
  fx->loader = mamd_plugin_loader_new ();
  entry = mamd_plugin_loader_load_module (fx->loader, path);
  g_assert_null (entry->disabled_reason);
  fx->plugin = entry->plugin;
  g_assert_true (MAMD_IS_PLUGIN (fx->plugin));
  fx->loop = g_main_loop_new (NULL, FALSE);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_main_loop_unref (fx->loop);
  g_object_unref (fx->loader);
}

static GObject *
load_config_text (Fixture *fx, const char *tenant_id, const char *text, GError **error)
{
  g_autoptr(GKeyFile) keyfile = g_key_file_new ();

  g_assert_true (g_key_file_load_from_data (keyfile, text, -1, G_KEY_FILE_NONE, NULL));
  return mamd_plugin_load_config (fx->plugin, "chat1", tenant_id, NULL, keyfile,
                                  "test", error);
}

typedef struct {
  GMainLoop *loop;
  gboolean done;
  MamdIdentity *identity;
  GPtrArray *users;
  GError *error;
} CallResult;

static void
call_result_clear (CallResult *res)
{
  mamd_identity_free (res->identity);
  g_clear_pointer (&res->users, g_ptr_array_unref);
  g_clear_error (&res->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CallResult, call_result_clear)

static void
authenticate_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallResult *res = user_data;

  res->identity = mamd_plugin_authenticate_finish (MAMD_PLUGIN (source), result, &res->error);
  res->done = TRUE;
  g_main_loop_quit (res->loop);
}

static void
sync_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CallResult *res = user_data;

  res->users = mamd_plugin_sync_finish (MAMD_PLUGIN (source), result, &res->error);
  res->done = TRUE;
  g_main_loop_quit (res->loop);
}

static void
run_until_done (CallResult *res)
{
  while (!res->done)
    g_main_loop_run (res->loop);
  /* Exactly one of result and error. */
  g_assert_true ((res->identity != NULL || res->users != NULL) != (res->error != NULL));
}

static void
authenticate (Fixture *fx, GObject *config, GVariant *credential,
              GCancellable *cancellable, CallResult *res)
{
  res->loop = fx->loop;
  mamd_plugin_authenticate_async (fx->plugin, config, credential, cancellable,
                                  authenticate_cb, res);
  /* Never answered synchronously, even when the plugin could be. */
  g_assert_false (res->done);
  run_until_done (res);
}

static GVariant *
credential_new (const char *first_key, ...) G_GNUC_NULL_TERMINATED;

/* Pairs of key and string value. */
static GVariant *
credential_new (const char *first_key, ...)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  va_list args;

  va_start (args, first_key);
  for (const char *key = first_key; key != NULL; key = va_arg (args, const char *))
    g_variant_builder_add (&builder, "{sv}", key,
                           g_variant_new_string (va_arg (args, const char *)));
  va_end (args);
  return g_variant_builder_end (&builder);
}

static void
test_authenticate_ok (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, TID, "", &error);
  g_auto(CallResult) res = { 0 };

  g_assert_no_error (error);
  authenticate (fx, config,
                credential_new ("object-id", "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
                                "tenant-id", "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                                "user-name", "Alex Wilber", NULL),
                NULL, &res);
  g_assert_no_error (res.error);
  g_assert_cmpstr (res.identity->object_id, ==, OID);
  g_assert_cmpstr (res.identity->tenant_id, ==, TID);
  g_assert_cmpstr (res.identity->user_name, ==, "Alex Wilber");
  g_assert_cmpstr (res.identity->id_attribute, ==, "object-id");
  g_assert_cmpstr (res.identity->id_source, ==, "test credential");
}

typedef struct {
  const char *name;
  GVariant *(*make) (void);
  gint code;
  const char *message; /* substring after the "test: " prefix */
} FailCase;

static GVariant *
make_fail (const char *how)
{
  return credential_new ("object-id", OID, "tenant-id", TID, "fail", how, NULL);
}

static GVariant *fail_invalid_token (void) { return make_fail ("invalid-token"); }
static GVariant *fail_key_unavailable (void) { return make_fail ("key-unavailable"); }
static GVariant *fail_missing_account (void) { return make_fail ("missing-auth-account"); }
static GVariant *fail_invalid_resource (void) { return make_fail ("invalid-resource"); }
static GVariant *fail_failed (void) { return make_fail ("failed"); }
static GVariant *fail_unknown_fail (void) { return make_fail ("explode"); }
static GVariant *no_object_id (void) { return credential_new ("tenant-id", TID, NULL); }
static GVariant *empty_object_id (void) { return credential_new ("object-id", "", "tenant-id", TID, NULL); }
static GVariant *upn_object_id (void) { return credential_new ("object-id", "alex@contoso.com", "tenant-id", TID, NULL); }
static GVariant *no_tenant_id (void) { return credential_new ("object-id", OID, NULL); }
static GVariant *bad_tenant_id (void) { return credential_new ("object-id", OID, "tenant-id", "contoso", NULL); }
static GVariant *unknown_key (void) { return credential_new ("object-id", OID, "tenant-id", TID, "email", "a@b.c", NULL); }

static GVariant *
wrong_type (void)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&builder, "{sv}", "object-id", g_variant_new_uint32 (7));
  g_variant_builder_add (&builder, "{sv}", "tenant-id", g_variant_new_string (TID));
  return g_variant_builder_end (&builder);
}

static GVariant *
wrong_delay_type (void)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&builder, "{sv}", "object-id", g_variant_new_string (OID));
  g_variant_builder_add (&builder, "{sv}", "tenant-id", g_variant_new_string (TID));
  g_variant_builder_add (&builder, "{sv}", "delay-ms", g_variant_new_string ("5"));
  return g_variant_builder_end (&builder);
}

static GVariant *
not_a_dict (void)
{
  return g_variant_new ("(ss)", OID, TID);
}

static const FailCase fail_cases[] = {
  { "invalid-token", fail_invalid_token, MAMD_ERROR_INVALID_TOKEN, "invalid" },
  { "key-unavailable", fail_key_unavailable, MAMD_ERROR_KEY_UNAVAILABLE, "unavailable" },
  { "missing-auth-account", fail_missing_account, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
    "credential carries no objectId" },
  { "invalid-resource", fail_invalid_resource, MAMD_ERROR_INVALID_RESOURCE,
    "AADSTS650057: the MAM service permission https://msmamservice.api.application/.default "
    "is missing or lacks admin consent; add it in Microsoft Entra and grant admin consent" },
  { "failed", fail_failed, MAMD_ERROR_FAILED, "asked to fail" },
  { "unknown-fail", fail_unknown_fail, MAMD_ERROR_INVALID_ARGS, "\"fail\"" },
  { "no-object-id", no_object_id, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
    "credential carries no objectId" },
  { "empty-object-id", empty_object_id, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
    "credential carries no objectId" },
  { "upn-object-id", upn_object_id, MAMD_ERROR_MISSING_AUTH_ACCOUNT, "not a GUID" },
  { "no-tenant-id", no_tenant_id, MAMD_ERROR_INVALID_TOKEN, "tenant" },
  { "bad-tenant-id", bad_tenant_id, MAMD_ERROR_INVALID_TOKEN, "not a GUID" },
  { "unknown-key", unknown_key, MAMD_ERROR_INVALID_ARGS, "unknown key" },
  { "wrong-type", wrong_type, MAMD_ERROR_INVALID_ARGS, "\"object-id\" must be of type s" },
  { "wrong-delay-type", wrong_delay_type, MAMD_ERROR_INVALID_ARGS, "\"delay-ms\" must be of type u" },
  { "not-a-dict", not_a_dict, MAMD_ERROR_INVALID_ARGS, "a{sv}" },
};

static void
test_authenticate_fails (Fixture *fx, gconstpointer data)
{
  const FailCase *fail = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, TID, "", &error);
  g_auto(CallResult) res = { 0 };

  g_assert_no_error (error);
  authenticate (fx, config, fail->make (), NULL, &res);
  g_assert_error (res.error, MAMD_ERROR, fail->code);
  g_assert_true (g_str_has_prefix (res.error->message, "test: "));
  if (strstr (res.error->message, fail->message) == NULL)
    g_error ("\"%s\" lacks \"%s\"", res.error->message, fail->message);
}

static void
test_authenticate_bug (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, TID, "", &error);
  g_auto(CallResult) res = { 0 };

  g_assert_no_error (error);
  g_test_expect_message ("mamd-plugin", G_LOG_LEVEL_WARNING,
                         "plugin test: authenticate failed without saying why (plugin bug)");
  authenticate (fx, config, make_fail ("bug-no-error"), NULL, &res);
  g_test_assert_expected_messages ();
  g_assert_error (res.error, MAMD_ERROR, MAMD_ERROR_FAILED);
  g_assert_cmpstr (res.error->message, ==,
                   "test: plugin authenticate failed without saying why (plugin bug)");
}

static gboolean
cancel_idle (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_authenticate_cancelled (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  /* Long enough that only the cancellation can end the call. */
  g_autoptr(GObject) config = load_config_text (fx, TID, "[test]\nDelayMs=600000\n", &error);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_auto(CallResult) res = { 0 };

  g_assert_no_error (error);
  g_idle_add_full (G_PRIORITY_DEFAULT, cancel_idle, g_object_ref (cancellable),
                   g_object_unref);
  authenticate (fx, config, credential_new ("object-id", OID, "tenant-id", TID, NULL),
                cancellable, &res);
  /* Cancellation is not prefixed: callers must still recognise it. */
  g_assert_error (res.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (g_str_has_prefix (res.error->message, "test: "));
}

static void
test_authenticate_precancelled (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, TID, "", &error);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_auto(CallResult) res = { 0 };

  g_assert_no_error (error);
  g_cancellable_cancel (cancellable);
  authenticate (fx, config, credential_new ("object-id", OID, "tenant-id", TID, NULL),
                cancellable, &res);
  g_assert_error (res.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static gboolean
count_iteration (gpointer data)
{
  guint *n = data;

  (*n)++;
  return G_SOURCE_CONTINUE;
}

static void
test_authenticate_delay (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, TID, "[test]\nDelayMs=600000\n", &error);
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto(CallResult) res = { 0 };
  guint iterations = 0;
  guint idle_id;

  g_assert_no_error (error);
  /* The per-call delay overrides DelayMs (which would outlast the test
   * timeout); while it runs the main loop stays free. */
  g_variant_builder_add (&builder, "{sv}", "object-id", g_variant_new_string (OID));
  g_variant_builder_add (&builder, "{sv}", "tenant-id", g_variant_new_string (TID));
  g_variant_builder_add (&builder, "{sv}", "delay-ms", g_variant_new_uint32 (50));
  idle_id = g_idle_add (count_iteration, &iterations);
  authenticate (fx, config, g_variant_builder_end (&builder), NULL, &res);
  g_source_remove (idle_id);
  g_assert_no_error (res.error);
  g_assert_cmpstr (res.identity->object_id, ==, OID);
  g_assert_cmpuint (iterations, >, 1);
}

/* ---- test plugin configuration ---- */

typedef struct {
  const char *name;
  const char *tenant_id;
  const char *text;
  const char *message; /* NULL: valid */
} ConfigCase;

static const ConfigCase config_cases[] = {
  { "empty", TID, "", NULL },
  { "other-group-only", TID, "[Server]\nEnable=true\n", NULL },
  { "defaults", TID, "[test]\n", NULL },
  { "all-keys", TID,
    "[test]\nDelayMs=25\nGate=invalid-resource\nUsers=" OID ":alex;\n", NULL },
  { "gate-open", TID, "[test]\nGate=open\n", NULL },
  { "users-without-tenant-empty", NULL, "[test]\nUsers=\n", NULL },
  { "unknown-key", TID, "[test]\nDelay=5\n", "test: [test] Delay: unknown key" },
  { "delay-text", TID, "[test]\nDelayMs=soon\n", "test: [test] DelayMs: not an unsigned integer" },
  { "delay-negative", TID, "[test]\nDelayMs=-1\n", "test: [test] DelayMs: not an unsigned integer" },
  { "delay-fraction", TID, "[test]\nDelayMs=1.5\n", "test: [test] DelayMs: not an unsigned integer" },
  { "delay-empty", TID, "[test]\nDelayMs=\n", "test: [test] DelayMs: not an unsigned integer" },
  { "delay-huge", TID, "[test]\nDelayMs=99999999999\n", "test: [test] DelayMs: not an unsigned integer" },
  { "gate-bad", TID, "[test]\nGate=closed\n", "test: [test] Gate: must be" },
  { "users-bad-guid", TID, "[test]\nUsers=" OID ":alex;not-a-guid:bob;\n",
    "test: [test] Users: entry 2: objectId is not a GUID" },
  { "users-guid-no-hyphens", TID, "[test]\nUsers=3f2504e04f8911d39a0c0305e82c3301:alex;\n",
    "test: [test] Users: entry 1: objectId is not a GUID" },
  { "users-duplicate", TID,
    "[test]\nUsers=" OID ":alex;{3F2504E0-4F89-11D3-9A0C-0305E82C3301}:alex2;\n",
    "test: [test] Users: entry 2: objectId " OID " is listed twice" },
  { "users-without-tenant", NULL, "[test]\nUsers=" OID ":alex;\n",
    "test: [test] Users: the server has no TenantId" },
  { "bad-server-tenant", "contoso", "", "test: [Server] TenantId is not a GUID" },
};

static void
test_config (Fixture *fx, gconstpointer data)
{
  const ConfigCase *cc = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, cc->tenant_id, cc->text, &error);

  if (cc->message == NULL)
    {
      g_assert_no_error (error);
      g_assert_true (G_IS_OBJECT (config));
      return;
    }
  g_assert_null (config);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  if (!g_str_has_prefix (error->message, cc->message))
    g_error ("\"%s\" does not start with \"%s\"", error->message, cc->message);
}

static void
test_sync (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = NULL;
  g_auto(CallResult) res = { 0 };
  MamdIdentity *user;

  config = load_config_text (fx, "{72F988BF-86F1-41AF-91AB-2D7CD011DB47}",
                             "[test]\nUsers=3F2504E0-4F89-11D3-9A0C-0305E82C3301:Alex Wilber;"
                             "00000000-0000-0000-0000-0000000000a1:bob:the:builder;"
                             "00000000-0000-0000-0000-0000000000a2\n",
                             &error);
  g_assert_no_error (error);

  res.loop = fx->loop;
  mamd_plugin_sync_async (fx->plugin, config, NULL, sync_cb, &res);
  run_until_done (&res);
  g_assert_no_error (res.error);
  g_assert_cmpuint (res.users->len, ==, 3);

  user = g_ptr_array_index (res.users, 0);
  g_assert_cmpstr (user->object_id, ==, OID);
  g_assert_cmpstr (user->tenant_id, ==, TID);
  g_assert_cmpstr (user->user_name, ==, "Alex Wilber");
  g_assert_cmpstr (user->id_attribute, ==, "object-id");
  user = g_ptr_array_index (res.users, 1);
  g_assert_cmpstr (user->object_id, ==, "00000000-0000-0000-0000-0000000000a1");
  g_assert_cmpstr (user->user_name, ==, "bob:the:builder");
  user = g_ptr_array_index (res.users, 2);
  g_assert_cmpstr (user->object_id, ==, "00000000-0000-0000-0000-0000000000a2");
  g_assert_null (user->user_name);
  g_assert_cmpstr (user->tenant_id, ==, TID);
}

static void
test_sync_empty (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, NULL, "", &error);
  g_auto(CallResult) res = { 0 };

  g_assert_no_error (error);
  res.loop = fx->loop;
  mamd_plugin_sync_async (fx->plugin, config, NULL, sync_cb, &res);
  run_until_done (&res);
  g_assert_no_error (res.error);
  g_assert_cmpuint (res.users->len, ==, 0);
}

static void
test_gate (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) open = load_config_text (fx, TID, "", &error);
  g_autoptr(GObject) closed = load_config_text (fx, TID, "[test]\nGate=invalid-resource\n", &error);

  g_assert_no_error (error);
  g_assert_true (mamd_plugin_check_gate (fx->plugin, open, &error));
  g_assert_no_error (error);
  g_assert_false (mamd_plugin_check_gate (fx->plugin, closed, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE);
  g_assert_cmpstr (error->message, ==,
                   "test: AADSTS650057: the MAM service permission "
                   "https://msmamservice.api.application/.default is missing or lacks "
                   "admin consent; add it in Microsoft Entra and grant admin consent");
}

static void
test_diagnose (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config_text (fx, TID,
                                                "[test]\nDelayMs=7\nUsers=" OID ":a;\n",
                                                &error);
  g_autoptr(GPtrArray) findings = g_ptr_array_new_with_free_func (g_free);

  g_assert_no_error (error);
  mamd_plugin_config_activate (fx->plugin, config, TRUE);
  mamd_plugin_diagnose (fx->plugin, config, findings);
  g_assert_cmpuint (findings->len, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (findings, 1), ==, "1 directory users, DelayMs 7, Gate open");
  mamd_plugin_config_activate (fx->plugin, config, FALSE);
}

/* ---- runner wrappers against a deliberately buggy plugin ---- */

typedef enum {
  BUGGY_NULL_NO_ERROR,
  BUGGY_FOREIGN_ERROR,
  BUGGY_HALF_IDENTITY,
  BUGGY_CANCELLED,
  BUGGY_BAD_UTF8,     /* text that is not UTF-8 in errors, identities, findings */
  BUGGY_OTHER_SOURCE, /* answers through a task whose source is not the plugin */
  BUGGY_NEVER,        /* ignores its cancellable; answers when the test says */
  BUGGY_TWICE,        /* calls the callback twice */
} BuggyMode;

static BuggyMode buggy_mode;
static GTask *buggy_held; /* BUGGY_NEVER's call */

typedef struct {
  GObject *source;
  GTask *result;
  GAsyncReadyCallback callback;
  gpointer user_data;
} BuggyAnswer;

static gboolean
buggy_answer_twice (gpointer data)
{
  BuggyAnswer *answer = data;

  answer->callback (answer->source, G_ASYNC_RESULT (answer->result), answer->user_data);
  answer->callback (answer->source, G_ASYNC_RESULT (answer->result), answer->user_data);
  g_object_unref (answer->result);
  g_free (answer);
  return G_SOURCE_REMOVE;
}

static GObject *
buggy_load_config (MamdPlugin *self, const char *server_id, const char *tenant_id,
                   const char *client_id, GKeyFile *keyfile, const char *group,
                   GError **error)
{
  if (buggy_mode == BUGGY_FOREIGN_ERROR)
    g_set_error_literal (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "foreign");
  else if (buggy_mode == BUGGY_CANCELLED)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
  else if (buggy_mode == BUGGY_BAD_UTF8)
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, "caf\xe9");
  return NULL;
}

static void
buggy_diagnose (MamdPlugin *self, GObject *config, GPtrArray *findings)
{
  if (buggy_mode != BUGGY_BAD_UTF8)
    return;
  g_ptr_array_add (findings, NULL);
  g_ptr_array_add (findings, g_strdup ("caf\xe9"));
  g_ptr_array_add (findings, NULL);
}

static gboolean
buggy_check_gate (MamdPlugin *self, GObject *config, GError **error)
{
  return FALSE;
}

static void
buggy_authenticate_async (MamdPlugin *self, GObject *config, GVariant *credential,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (buggy_mode == BUGGY_OTHER_SOURCE ? NULL : self,
                                      cancellable, callback, user_data);
  MamdIdentity *identity = g_new0 (MamdIdentity, 1);

  if (buggy_mode == BUGGY_CANCELLED)
    {
      /* whether or not the call was cancelled */
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
      mamd_identity_free (identity);
      return;
    }
  /* Built by hand, bypassing mamd_identity_new. */
  identity->object_id = g_strdup (OID);
  if (buggy_mode == BUGGY_HALF_IDENTITY)
    identity->tenant_id = g_strdup ("72F988BF-86F1-41AF-91AB-2D7CD011DB47");
  if (buggy_mode >= BUGGY_BAD_UTF8)
    identity->tenant_id = g_strdup (TID);
  if (buggy_mode == BUGGY_BAD_UTF8)
    identity->user_name = g_strdup ("caf\xe9");
  if (buggy_mode == BUGGY_NEVER)
    {
      mamd_identity_free (identity);
      buggy_held = g_steal_pointer (&task);
      return;
    }
  if (buggy_mode == BUGGY_TWICE)
    {
      BuggyAnswer *answer = g_new0 (BuggyAnswer, 1);

      /* a finished task nobody is told of, then two calls by hand */
      answer->result = g_task_new (self, NULL, NULL, NULL);
      g_task_return_pointer (answer->result, identity, (GDestroyNotify) mamd_identity_free);
      answer->source = G_OBJECT (self);
      answer->callback = callback;
      answer->user_data = user_data;
      g_idle_add (buggy_answer_twice, answer);
      return;
    }
  g_task_return_pointer (task, identity, (GDestroyNotify) mamd_identity_free);
}

static MamdIdentity *
buggy_authenticate_finish (MamdPlugin *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
buggy_class_init (gpointer klass, gpointer class_data)
{
  MamdPluginClass *plugin_class = klass;

  plugin_class->method = "buggy";
  plugin_class->capabilities = MAMD_PLUGIN_CAP_SIGN_IN;
  plugin_class->load_config = buggy_load_config;
  plugin_class->check_gate = buggy_check_gate;
  plugin_class->authenticate_async = buggy_authenticate_async;
  plugin_class->authenticate_finish = buggy_authenticate_finish;
  plugin_class->diagnose = buggy_diagnose;
}

static MamdPlugin *
buggy_plugin_new (void)
{
  static GType type = G_TYPE_INVALID;

  if (type == G_TYPE_INVALID)
    {
      const GTypeInfo info = {
        sizeof (MamdPluginClass), NULL, NULL, buggy_class_init, NULL, NULL,
        sizeof (MamdPlugin), 0, NULL, NULL
      };

      type = g_type_register_static (MAMD_TYPE_PLUGIN, "BuggyPlugin", &info, 0);
    }
  return g_object_new (type, NULL);
}

static void
test_runner_bugs (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdPlugin) buggy = buggy_plugin_new ();
  g_autoptr(GKeyFile) keyfile = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = g_object_new (G_TYPE_OBJECT, NULL);

  buggy_mode = BUGGY_NULL_NO_ERROR;
  g_test_expect_message ("mamd-plugin", G_LOG_LEVEL_WARNING, "*load_config*plugin bug*");
  g_assert_null (mamd_plugin_load_config (buggy, "s", NULL, NULL, keyfile, "buggy", &error));
  g_test_assert_expected_messages ();
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==,
                   "buggy: plugin load_config failed without saying why (plugin bug)");
  g_clear_error (&error);

  /* Foreign domains have no D-Bus name: converted, message kept. */
  buggy_mode = BUGGY_FOREIGN_ERROR;
  g_assert_null (mamd_plugin_load_config (buggy, "s", NULL, NULL, keyfile, "buggy", &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "buggy: foreign");
  g_clear_error (&error);

  /* A cancellation where nothing was cancelled is a plugin's failure. */
  buggy_mode = BUGGY_CANCELLED;
  g_assert_null (mamd_plugin_load_config (buggy, "s", NULL, NULL, keyfile, "buggy", &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_FAILED);
  g_assert_cmpstr (error->message, ==, "buggy: Operation was cancelled");
  g_clear_error (&error);

  /* Messages go into D-Bus replies: made UTF-8, code kept. */
  buggy_mode = BUGGY_BAD_UTF8;
  g_assert_null (mamd_plugin_load_config (buggy, "s", NULL, NULL, keyfile, "buggy", &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_cmpstr (error->message, ==, "buggy: caf\xef\xbf\xbd");
  g_clear_error (&error);
  {
    g_autoptr(GPtrArray) findings = g_ptr_array_new_with_free_func (g_free);

    g_ptr_array_add (findings, g_strdup ("the core's own"));
    mamd_plugin_diagnose (buggy, config, findings);
    g_assert_cmpuint (findings->len, ==, 2);
    g_assert_cmpstr (g_ptr_array_index (findings, 0), ==, "the core's own");
    g_assert_cmpstr (g_ptr_array_index (findings, 1), ==, "caf\xef\xbf\xbd");
  }
  buggy_mode = BUGGY_NULL_NO_ERROR;

  g_test_expect_message ("mamd-plugin", G_LOG_LEVEL_WARNING, "*check_gate*plugin bug*");
  g_assert_false (mamd_plugin_check_gate (buggy, config, &error));
  g_test_assert_expected_messages ();
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "plugin bug"));
  g_clear_error (&error);

  /* Optional vfuncs that are missing are harmless. */
  mamd_plugin_config_activate (buggy, config, TRUE);
  {
    g_autoptr(GPtrArray) findings = g_ptr_array_new_with_free_func (g_free);

    mamd_plugin_diagnose (buggy, config, findings);
    g_assert_cmpuint (findings->len, ==, 0);
  }
}

static void
test_runner_not_supported (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdPlugin) buggy = buggy_plugin_new ();
  g_autoptr(GObject) config = g_object_new (G_TYPE_OBJECT, NULL);
  g_auto(CallResult) res = { 0 };

  res.loop = fx->loop;
  mamd_plugin_sync_async (buggy, config, NULL, sync_cb, &res);
  run_until_done (&res);
  g_assert_error (res.error, MAMD_ERROR, MAMD_ERROR_NOT_SUPPORTED);
  g_assert_true (g_str_has_prefix (res.error->message, "buggy: "));
}

static void
test_runner_bad_identity (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdPlugin) buggy = buggy_plugin_new ();
  g_autoptr(GObject) config = g_object_new (G_TYPE_OBJECT, NULL);
  BuggyMode modes[] = { BUGGY_NULL_NO_ERROR, BUGGY_HALF_IDENTITY, BUGGY_BAD_UTF8 };

  /* NULL tenant, a tenant that is not canonical, a user name that is not
   * UTF-8 */
  for (guint i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_auto(CallResult) res = { 0 };

      buggy_mode = modes[i];
      res.loop = fx->loop;
      g_test_expect_message ("mamd-plugin", G_LOG_LEVEL_WARNING, "*authenticate*plugin bug*");
      mamd_plugin_authenticate_async (buggy, config,
                                      credential_new ("object-id", OID, NULL), NULL,
                                      authenticate_cb, &res);
      run_until_done (&res);
      g_test_assert_expected_messages ();
      g_assert_error (res.error, MAMD_ERROR, MAMD_ERROR_FAILED);
      g_assert_nonnull (strstr (res.error->message, "plugin bug"));
    }
}

/* An answer through a task of another source (a plugin that hands its
 * callback on to another object's async call) reaches the caller; a
 * cancellation error counts as one only when the call was cancelled. */
static void
test_runner_answers (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdPlugin) buggy = buggy_plugin_new ();
  g_autoptr(GObject) config = g_object_new (G_TYPE_OBJECT, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_auto(CallResult) other = { 0 };
  g_auto(CallResult) stray = { 0 };
  g_auto(CallResult) cancelled = { 0 };

  buggy_mode = BUGGY_OTHER_SOURCE;
  other.loop = fx->loop;
  mamd_plugin_authenticate_async (buggy, config, credential_new ("object-id", OID, NULL), NULL,
                                  authenticate_cb, &other);
  run_until_done (&other);
  g_assert_no_error (other.error);
  g_assert_cmpstr (other.identity->object_id, ==, OID);

  buggy_mode = BUGGY_CANCELLED;
  stray.loop = fx->loop;
  mamd_plugin_authenticate_async (buggy, config, credential_new ("object-id", OID, NULL),
                                  cancellable, authenticate_cb, &stray);
  run_until_done (&stray);
  g_assert_error (stray.error, MAMD_ERROR, MAMD_ERROR_FAILED);

  g_cancellable_cancel (cancellable);
  cancelled.loop = fx->loop;
  mamd_plugin_authenticate_async (buggy, config, credential_new ("object-id", OID, NULL),
                                  cancellable, authenticate_cb, &cancelled);
  run_until_done (&cancelled);
  g_assert_error (cancelled.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* A plugin that ignores its cancellable does not hold the call: it is
 * answered Cancelled at once, and the plugin's late answer is dropped. A
 * plugin that answers twice gets its second answer ignored. */
static void
test_runner_misbehaving_answers (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdPlugin) buggy = buggy_plugin_new ();
  g_autoptr(GObject) config = g_object_new (G_TYPE_OBJECT, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GTask) late = NULL;
  g_auto(CallResult) never = { 0 };
  g_auto(CallResult) twice = { 0 };

  buggy_mode = BUGGY_NEVER;
  never.loop = fx->loop;
  mamd_plugin_authenticate_async (buggy, config, credential_new ("object-id", OID, NULL),
                                  cancellable, authenticate_cb, &never);
  g_assert_nonnull (buggy_held);
  g_cancellable_cancel (cancellable);
  /* answered from the main loop, not from within the cancel */
  g_assert_false (never.done);
  run_until_done (&never);
  g_assert_error (never.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* the late answer reaches nobody */
  never.done = FALSE;
  late = g_steal_pointer (&buggy_held);
  g_task_return_pointer (late, mamd_identity_new (OID, TID, NULL, NULL, NULL, NULL),
                         (GDestroyNotify) mamd_identity_free);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_false (never.done);

  buggy_mode = BUGGY_TWICE;
  twice.loop = fx->loop;
  g_test_expect_message ("mamd-plugin", G_LOG_LEVEL_WARNING, "*answered one call twice*");
  mamd_plugin_authenticate_async (buggy, config, credential_new ("object-id", OID, NULL), NULL,
                                  authenticate_cb, &twice);
  run_until_done (&twice);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_test_assert_expected_messages ();
  g_assert_no_error (twice.error);
  g_assert_cmpstr (twice.identity->object_id, ==, OID);
}

/* ---- gate-changed ---- */

typedef struct {
  GThread *thread;
  GObject *config;
  guint count;
  GMainLoop *loop;
} GateSeen;

static void
gate_changed_cb (MamdPlugin *plugin, GObject *config, gpointer user_data)
{
  GateSeen *seen = user_data;

  seen->thread = g_thread_self ();
  seen->config = config;
  seen->count++;
  g_main_loop_quit (seen->loop);
}

static gpointer
gate_changed_thread (gpointer data)
{
  gpointer *args = data;

  mamd_plugin_gate_changed (args[0], args[1]);
  return NULL;
}

static void
test_gate_changed (Fixture *fx, gconstpointer data)
{
  g_autoptr(GObject) config = g_object_new (G_TYPE_OBJECT, NULL);
  GateSeen seen = { NULL, NULL, 0, fx->loop };
  gpointer args[2] = { fx->plugin, config };
  GThread *worker;
  gulong handler;

  handler = g_signal_connect (fx->plugin, "gate-changed", G_CALLBACK (gate_changed_cb), &seen);

  /* On the main thread: at once. */
  mamd_plugin_gate_changed (fx->plugin, config);
  g_assert_cmpuint (seen.count, ==, 1);
  g_assert_true (seen.thread == g_thread_self ());
  g_assert_true (seen.config == config);

  /* From a worker: delivered later, on the main thread. */
  seen.thread = NULL;
  worker = g_thread_new ("gate", gate_changed_thread, args);
  g_thread_join (worker);
  g_assert_cmpuint (seen.count, ==, 1);
  while (seen.count < 2)
    g_main_loop_run (fx->loop);
  g_assert_true (seen.thread == g_thread_self ());
  g_assert_true (seen.config == config);

  g_signal_handler_disconnect (fx->plugin, handler);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/mamd/plugin/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("authenticate/ok", test_authenticate_ok);
  ADD ("authenticate/bug-no-error", test_authenticate_bug);
  ADD ("authenticate/cancelled", test_authenticate_cancelled);
  ADD ("authenticate/precancelled", test_authenticate_precancelled);
  ADD ("authenticate/delay", test_authenticate_delay);
  for (guint i = 0; i < G_N_ELEMENTS (fail_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/mamd/plugin/authenticate/fail/%s",
                                               fail_cases[i].name);
      g_test_add (path, Fixture, &fail_cases[i], fixture_setup, test_authenticate_fails,
                  fixture_teardown);
    }
  for (guint i = 0; i < G_N_ELEMENTS (config_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/mamd/plugin/test-plugin/config/%s",
                                               config_cases[i].name);
      g_test_add (path, Fixture, &config_cases[i], fixture_setup, test_config,
                  fixture_teardown);
    }
  ADD ("test-plugin/sync", test_sync);
  ADD ("test-plugin/sync-empty", test_sync_empty);
  ADD ("test-plugin/gate", test_gate);
  ADD ("test-plugin/diagnose", test_diagnose);
  ADD ("runner/bugs", test_runner_bugs);
  ADD ("runner/not-supported", test_runner_not_supported);
  ADD ("runner/bad-identity", test_runner_bad_identity);
  ADD ("runner/answers", test_runner_answers);
  ADD ("runner/misbehaving-answers", test_runner_misbehaving_answers);
  ADD ("gate-changed", test_gate_changed);

#undef ADD

  return g_test_run ();
}
