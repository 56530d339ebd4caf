/*
 * mamd-test-plugin.c: the "test" identity plugin. It trusts the identity
 * written in its credential, so the daemon can be driven end to end without
 * an identity provider. Tests and demo only; never installed.
 *
 * Written against the installed <mamd-plugin.h> only, like any outside
 * plugin.
 *
 * Method "test", capabilities SIGN_IN | DIRECTORY_SYNC | MAM_AUTH_SERVICE |
 * CREATES_USERS.
 *
 * Config group [test] (all optional; unknown keys are errors):
 *   Users    list of "objectId:userName" returned by directory sync, with
 *            the server's TenantId as tenant
 *   DelayMs  delay before every authentication completes (default 0)
 *   SyncDelayMs  delay before every directory sync completes (default 0)
 *   Gate     "open" (default) or "invalid-resource" (check_gate fails with
 *            AADSTS650057)
 *
 * Credential a{sv}:
 *   "object-id" s  required (missing/empty/not a GUID: MissingAuthAccount)
 *   "tenant-id" s  required (missing/not a GUID: InvalidToken)
 *   "user-name" s  optional
 *   "fail"      s  forces an error: invalid-token, key-unavailable,
 *                  missing-auth-account, invalid-resource, failed, or
 *                  bug-no-error (NULL without an error, a deliberate bug),
 *                  or bug-quote-credential (an error that quotes "user-name",
 *                  as a careless plugin might quote a token)
 *   "delay-ms"  u  per-call delay, overrides DelayMs
 *   "secret"    s  ignored: stands in for the token or password of a real
 *                  credential, so tests can check that it is kept nowhere
 *   anything else, or a wrong type: InvalidArgs
 * The identity has id_attribute "object-id", id_source "test credential".
 * Authentication honours the GCancellable.
 */
#include <mamd-plugin.h>

#include "mamd-test-config.h"

#define INVALID_RESOURCE_MESSAGE                                              \
  "AADSTS650057: the MAM service permission "                                \
  "https://msmamservice.api.application/.default is missing or lacks admin " \
  "consent; add it in Microsoft Entra and grant admin consent"

/* Per-call delays are for tests: bounded like DelayMs. */
#define DELAY_MS_MAX 600000u

#define MAMD_TYPE_TEST_PLUGIN (mamd_test_plugin_get_type ())
G_DECLARE_FINAL_TYPE (MamdTestPlugin, mamd_test_plugin, MAMD, TEST_PLUGIN, MamdPlugin)

struct _MamdTestPlugin {
  MamdPlugin parent_instance;
};

G_DEFINE_FINAL_TYPE (MamdTestPlugin, mamd_test_plugin, MAMD_TYPE_PLUGIN)

static GObject *
test_load_config (MamdPlugin  *plugin,
                  const char  *server_id,
                  const char  *tenant_id,
                  const char  *client_id,
                  GKeyFile    *keyfile,
                  const char  *group,
                  GError     **error)
{
  return G_OBJECT (mamd_test_config_new_from_keyfile (server_id, tenant_id, keyfile,
                                                      group, error));
}

/* ---- delayed answers ---- */

/* The first member of a delayed call's task data: whichever comes first,
 * the delay or the cancellation, returns. */
typedef struct {
  GSource *timeout;
  GSource *cancel;
} Delay;

/* The pending sources hold references on the task: drop them once it has
 * returned, or the task would keep itself alive. */
static void
delay_drop_sources (Delay *delay)
{
  if (delay->timeout != NULL)
    g_source_destroy (delay->timeout);
  if (delay->cancel != NULL)
    g_source_destroy (delay->cancel);
}

static void
delay_clear (Delay *delay)
{
  delay_drop_sources (delay);
  g_clear_pointer (&delay->timeout, g_source_unref);
  g_clear_pointer (&delay->cancel, g_source_unref);
}

static gboolean
delay_cancelled_cb (GCancellable *cancellable, gpointer user_data)
{
  GTask *task = user_data;

  delay_drop_sources (g_task_get_task_data (task));
  g_task_return_error_if_cancelled (task);
  return G_SOURCE_REMOVE;
}

/* Runs @answer after @delay_ms, unless the call is cancelled first. */
static void
delay_start (GTask *task, guint delay_ms, GSourceFunc answer)
{
  Delay *delay = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);

  delay->timeout = g_timeout_source_new (delay_ms);
  g_task_attach_source (task, delay->timeout, answer);
  if (cancellable != NULL)
    {
      delay->cancel = g_cancellable_source_new (cancellable);
      g_task_attach_source (task, delay->cancel, G_SOURCE_FUNC (delay_cancelled_cb));
    }
}

/* ---- authentication ---- */

typedef struct {
  Delay delay;            /* first */
  MamdIdentity *identity; /* the answer, or NULL with error, or NULL alone */
  GError *error;
} AuthData;

static void
auth_data_free (gpointer data)
{
  AuthData *auth = data;

  delay_clear (&auth->delay);
  mamd_identity_free (auth->identity);
  g_clear_error (&auth->error);
  g_free (auth);
}

static const struct {
  const char *name;
  MamdError code;
  const char *message;
} forced_failures[] = {
  { "invalid-token", MAMD_ERROR_INVALID_TOKEN,
    "the test credential is marked invalid: sign in again with a valid credential" },
  { "key-unavailable", MAMD_ERROR_KEY_UNAVAILABLE,
    "the test signing key is unavailable: retry later" },
  { "missing-auth-account", MAMD_ERROR_MISSING_AUTH_ACCOUNT,
    "credential carries no objectId: put the Entra objectId in \"object-id\"" },
  { "invalid-resource", MAMD_ERROR_INVALID_RESOURCE, INVALID_RESOURCE_MESSAGE },
  { "failed", MAMD_ERROR_FAILED,
    "the test credential asked to fail: remove \"fail\" from the credential" },
};

/* Checks keys and types; fills the borrowed strings. */
static gboolean
parse_credential (GVariant *credential, const char **object_id,
                  const char **tenant_id, const char **user_name,
                  const char **fail, gint64 *delay_ms, GError **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *next_value;
  const char *secret = NULL; /* type-checked like the others, then ignored */

  g_variant_iter_init (&iter, credential);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &next_value))
    {
      g_autoptr(GVariant) value = next_value;
      const char **target = NULL;

      if (g_strcmp0 (key, "object-id") == 0)
        target = object_id;
      else if (g_strcmp0 (key, "tenant-id") == 0)
        target = tenant_id;
      else if (g_strcmp0 (key, "user-name") == 0)
        target = user_name;
      else if (g_strcmp0 (key, "fail") == 0)
        target = fail;
      else if (g_strcmp0 (key, "secret") == 0)
        target = &secret;
      else if (g_strcmp0 (key, "delay-ms") == 0)
        {
          if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
            {
              g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                                   "credential key \"delay-ms\" must be of type u");
              return FALSE;
            }
          *delay_ms = MIN (g_variant_get_uint32 (value), DELAY_MS_MAX);
          continue;
        }
      else
        {
          /* The key is chosen by the caller: keep it out of the message. */
          g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                               "credential has an unknown key: the test plugin "
                               "knows object-id, tenant-id, user-name, fail, "
                               "delay-ms and secret");
          return FALSE;
        }

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                       "credential key \"%s\" must be of type s", key);
          return FALSE;
        }
      /* Valid while @credential lives: the child shares its data. */
      *target = g_variant_get_string (value, NULL);
    }
  return TRUE;
}

/* NULL without an error only for "bug-no-error". */
static MamdIdentity *
authenticate_now (GVariant *credential, gint64 *delay_ms, GError **error)
{
  const char *object_id = NULL;
  const char *tenant_id = NULL;
  const char *user_name = NULL;
  const char *fail = NULL;

  if (!parse_credential (credential, &object_id, &tenant_id, &user_name, &fail,
                         delay_ms, error))
    return NULL;

  if (fail != NULL)
    {
      if (g_strcmp0 (fail, "bug-no-error") == 0)
        return NULL;
      if (g_strcmp0 (fail, "bug-quote-credential") == 0)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                       "the credential of user %s is not valid", user_name);
          return NULL;
        }
      for (guint i = 0; i < G_N_ELEMENTS (forced_failures); i++)
        {
          if (g_strcmp0 (fail, forced_failures[i].name) == 0)
            {
              g_set_error_literal (error, MAMD_ERROR, forced_failures[i].code,
                                   forced_failures[i].message);
              return NULL;
            }
        }
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "credential key \"fail\" has an unknown value");
      return NULL;
    }

  if (object_id == NULL || *object_id == '\0')
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
                           "credential carries no objectId: put the Entra "
                           "objectId in \"object-id\"");
      return NULL;
    }

  return mamd_identity_new (object_id, tenant_id, user_name, "object-id",
                            "test credential", error);
}

static void
auth_complete (GTask *task)
{
  AuthData *auth = g_task_get_task_data (task);

  delay_drop_sources (&auth->delay);

  if (auth->error != NULL)
    g_task_return_error (task, g_steal_pointer (&auth->error));
  else
    /* With neither identity nor error this returns NULL: bug-no-error. */
    g_task_return_pointer (task, g_steal_pointer (&auth->identity),
                           (GDestroyNotify) mamd_identity_free);
}

static gboolean
auth_timeout_cb (gpointer user_data)
{
  GTask *task = user_data;

  if (g_task_return_error_if_cancelled (task))
    delay_drop_sources (g_task_get_task_data (task));
  else
    auth_complete (task);
  return G_SOURCE_REMOVE;
}

static void
test_authenticate_async (MamdPlugin         *plugin,
                         GObject            *config,
                         GVariant           *credential,
                         GCancellable       *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer            user_data)
{
  g_autoptr(GTask) task = g_task_new (plugin, cancellable, callback, user_data);
  AuthData *auth = g_new0 (AuthData, 1);
  gint64 delay_ms = -1;

  g_task_set_source_tag (task, test_authenticate_async);
  g_task_set_task_data (task, auth, auth_data_free);

  if (!MAMD_IS_TEST_CONFIG (config))
    {
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                               "no test plugin configuration: the server must "
                               "use the test plugin's load_config");
      return;
    }

  auth->identity = authenticate_now (credential, &delay_ms, &auth->error);
  if (delay_ms < 0)
    delay_ms = mamd_test_config_get_delay_ms (MAMD_TEST_CONFIG (config));

  if (delay_ms == 0)
    {
      if (!g_task_return_error_if_cancelled (task))
        auth_complete (task);
      return;
    }

  delay_start (task, (guint) delay_ms, auth_timeout_cb);
}

static MamdIdentity *
test_authenticate_finish (MamdPlugin *plugin, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, plugin), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- directory sync ---- */

typedef struct {
  Delay delay; /* first */
  GPtrArray *users;
} SyncData;

static void
sync_data_free (gpointer data)
{
  SyncData *sync = data;

  delay_clear (&sync->delay);
  g_clear_pointer (&sync->users, g_ptr_array_unref);
  g_free (sync);
}

static gboolean
sync_timeout_cb (gpointer user_data)
{
  GTask *task = user_data;
  SyncData *sync = g_task_get_task_data (task);

  delay_drop_sources (&sync->delay);
  if (!g_task_return_error_if_cancelled (task))
    g_task_return_pointer (task, g_steal_pointer (&sync->users),
                           (GDestroyNotify) g_ptr_array_unref);
  return G_SOURCE_REMOVE;
}

static void
test_sync_async (MamdPlugin         *plugin,
                 GObject            *config,
                 GCancellable       *cancellable,
                 GAsyncReadyCallback callback,
                 gpointer            user_data)
{
  g_autoptr(GTask) task = g_task_new (plugin, cancellable, callback, user_data);
  SyncData *sync = g_new0 (SyncData, 1);
  GPtrArray *configured;
  guint delay_ms;

  g_task_set_source_tag (task, test_sync_async);
  g_task_set_task_data (task, sync, sync_data_free);
  if (g_task_return_error_if_cancelled (task))
    return;
  if (!MAMD_IS_TEST_CONFIG (config))
    {
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                               "no test plugin configuration: the server must "
                               "use the test plugin's load_config");
      return;
    }

  configured = mamd_test_config_get_users (MAMD_TEST_CONFIG (config));
  sync->users = g_ptr_array_new_full (configured->len, (GDestroyNotify) mamd_identity_free);
  for (guint i = 0; i < configured->len; i++)
    g_ptr_array_add (sync->users, mamd_identity_copy (g_ptr_array_index (configured, i)));
  delay_ms = mamd_test_config_get_sync_delay_ms (MAMD_TEST_CONFIG (config));
  if (delay_ms == 0)
    {
      g_task_return_pointer (task, g_steal_pointer (&sync->users),
                             (GDestroyNotify) g_ptr_array_unref);
      return;
    }
  delay_start (task, delay_ms, sync_timeout_cb);
}

static GPtrArray *
test_sync_finish (MamdPlugin *plugin, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, plugin), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- gate and diagnostics ---- */

static gboolean
test_check_gate (MamdPlugin *plugin, GObject *config, GError **error)
{
  if (MAMD_IS_TEST_CONFIG (config) &&
      mamd_test_config_get_gate (MAMD_TEST_CONFIG (config)) == MAMD_TEST_GATE_INVALID_RESOURCE)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE,
                           INVALID_RESOURCE_MESSAGE);
      return FALSE;
    }
  return TRUE;
}

static void
test_diagnose (MamdPlugin *plugin, GObject *config, GPtrArray *findings)
{
  MamdTestConfig *test_config;

  g_ptr_array_add (findings,
                   g_strdup ("the test plugin trusts any credential: use it for "
                             "tests and demos only"));
  if (!MAMD_IS_TEST_CONFIG (config))
    return;
  test_config = MAMD_TEST_CONFIG (config);
  g_ptr_array_add (findings,
                   g_strdup_printf ("%u directory users, DelayMs %u, Gate %s",
                                    mamd_test_config_get_users (test_config)->len,
                                    mamd_test_config_get_delay_ms (test_config),
                                    mamd_test_config_get_gate (test_config) == MAMD_TEST_GATE_OPEN
                                      ? "open" : "invalid-resource"));
}

static void
mamd_test_plugin_class_init (MamdTestPluginClass *klass)
{
  MamdPluginClass *plugin_class = MAMD_PLUGIN_CLASS (klass);

  plugin_class->method = "test";
  plugin_class->description = "test plugin: trusts the identity in its credential (tests and demo only)";
  plugin_class->capabilities = MAMD_PLUGIN_CAP_SIGN_IN |
                               MAMD_PLUGIN_CAP_DIRECTORY_SYNC |
                               MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE |
                               MAMD_PLUGIN_CAP_CREATES_USERS;
  plugin_class->load_config = test_load_config;
  plugin_class->authenticate_async = test_authenticate_async;
  plugin_class->authenticate_finish = test_authenticate_finish;
  plugin_class->sync_async = test_sync_async;
  plugin_class->sync_finish = test_sync_finish;
  plugin_class->check_gate = test_check_gate;
  plugin_class->diagnose = test_diagnose;
}

static void
mamd_test_plugin_init (MamdTestPlugin *self)
{
}

MAMD_PLUGIN_DEFINE ("mamd-test-plugin", "1.0", mamd_test_plugin_get_type)
