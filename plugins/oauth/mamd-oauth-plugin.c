/*
 * mamd-oauth-plugin.c: the "office365" identity plugin. It validates Entra
 * ID v2 access tokens (or those of any OpenID provider issuing oid-style
 * claims) and checks the server's MAM service permission.
 *
 * Written against the installed <mamd-plugin.h> only, like any outside
 * plugin; see plugins/oauth/README.md for the configuration keys.
 *
 * Credential a{sv}: "access-token" s, nothing else.
 *
 * Signing keys are cached per discovery URL (and HTTP settings, and the CA
 * file's contents), shared by every server that uses the same identity
 * provider, so that a tenant's keys are fetched once however many chat
 * servers point at it.
 */
#include "config.h"

#include <mamd-plugin.h>

#include "mamd-oauth-config.h"
#include "mamd-oauth-http.h"
#include "mamd-oauth-jwt.h"
#include "mamd-oauth-keys.h"
#include "mamd-oauth-permission.h"

#define CREDENTIAL_TOKEN_KEY "access-token"

typedef struct {
  MamdOauthHttp *http;
  MamdOauthKeys *keys;
  guint n_active; /* live configs using it: the refresh timer runs while > 0 */
} KeysEntry;

#define MAMD_TYPE_OAUTH_PLUGIN (mamd_oauth_plugin_get_type ())
G_DECLARE_FINAL_TYPE (MamdOauthPlugin, mamd_oauth_plugin, MAMD, OAUTH_PLUGIN, MamdPlugin)

struct _MamdOauthPlugin {
  MamdPlugin parent_instance;
  GHashTable *keys;   /* keys id -> KeysEntry; kept while a live config uses it:
                       * a reload activates the new config before it
                       * deactivates the old, so the last good keys stay */
  GHashTable *active; /* MamdOauthConfig (unowned) -> KeysEntry (unowned) */
};

G_DEFINE_FINAL_TYPE (MamdOauthPlugin, mamd_oauth_plugin, MAMD_TYPE_PLUGIN)

static void
keys_entry_free (gpointer data)
{
  KeysEntry *entry = data;

  mamd_oauth_keys_stop (entry->keys);
  g_object_unref (entry->keys);
  g_object_unref (entry->http);
  g_free (entry);
}

/* The shared cache for @config, created on first use (an authentication
 * with a config that is not live yet gets one too, without a timer). */
static KeysEntry *
get_keys_entry (MamdOauthPlugin *self, MamdOauthConfig *config, GError **error)
{
  const char *id = mamd_oauth_config_get_keys_id (config);
  KeysEntry *entry = g_hash_table_lookup (self->keys, id);
  g_autoptr(MamdOauthHttp) http = NULL;

  if (entry != NULL)
    return entry;
  http = mamd_oauth_http_new (mamd_oauth_config_get_ca_file (config),
                              mamd_oauth_config_get_http_timeout (config), error);
  if (http == NULL)
    return NULL;
  entry = g_new0 (KeysEntry, 1);
  entry->keys = mamd_oauth_keys_new (http, mamd_oauth_config_get_discovery_url (config),
                                     mamd_oauth_config_get_key_refresh_interval (config),
                                     mamd_oauth_config_get_key_refetch_cooldown (config));
  entry->http = g_steal_pointer (&http);
  g_hash_table_insert (self->keys, g_strdup (id), entry);
  return entry;
}

static GObject *
oauth_load_config (MamdPlugin  *plugin,
                   const char  *server_id,
                   const char  *tenant_id,
                   const char  *client_id,
                   GKeyFile    *keyfile,
                   const char  *group,
                   GError     **error)
{
  return G_OBJECT (mamd_oauth_config_new_from_keyfile (server_id, tenant_id, client_id,
                                                       keyfile, group, error));
}

/* ---- the MAM service permission ---- */

typedef struct {
  MamdPlugin *plugin; /* plugins are never unloaded */
  GWeakRef config;
} PermissionWatch;

static void
permission_watch_free (gpointer data, GClosure *closure)
{
  PermissionWatch *watch = data;

  g_weak_ref_clear (&watch->config);
  g_free (watch);
}

static void
on_permission_changed (MamdOauthPermission *permission, gpointer user_data)
{
  PermissionWatch *watch = user_data;
  g_autoptr(GObject) config = g_weak_ref_get (&watch->config);

  if (config != NULL)
    mamd_plugin_gate_changed (watch->plugin, config);
}

/* The permission of another live config of @config's server: the one that
 * @config replaces on reload (still active until @config is). */
static MamdOauthPermission *
find_previous_permission (MamdOauthPlugin *self, MamdOauthConfig *config)
{
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, self->active);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      MamdOauthConfig *other = key;

      if (other != config && mamd_oauth_config_get_permission (other) != NULL &&
          g_str_equal (mamd_oauth_config_get_server_id (other),
                       mamd_oauth_config_get_server_id (config)))
        return mamd_oauth_config_get_permission (other);
    }
  return NULL;
}

/* Checks at once, also on reload: the secret may be new, or admin consent
 * granted since; until the answer the gate stays as the previous config's
 * check left it. */
static void
start_permission (MamdOauthPlugin *self, MamdOauthConfig *config, KeysEntry *entry)
{
  g_autoptr(MamdOauthPermission) permission = NULL;
  MamdOauthPermission *previous;
  PermissionWatch *watch;

  if (mamd_oauth_config_get_client_secret (config) == NULL)
    return;
  permission = mamd_oauth_permission_new (entry->http,
                                          mamd_oauth_config_get_token_endpoint (config),
                                          mamd_oauth_config_get_client_id (config),
                                          mamd_oauth_config_get_client_secret (config),
                                          mamd_oauth_config_get_permission_scope (config),
                                          mamd_oauth_config_get_permission_check_interval (config));
  previous = find_previous_permission (self, config);
  if (previous != NULL)
    mamd_oauth_permission_carry_over (permission, previous);
  watch = g_new0 (PermissionWatch, 1);
  watch->plugin = MAMD_PLUGIN (self);
  g_weak_ref_init (&watch->config, config);
  g_signal_connect_data (permission, "changed", G_CALLBACK (on_permission_changed), watch,
                         permission_watch_free, 0);
  mamd_oauth_config_set_permission (config, permission);
  mamd_oauth_permission_start (permission);
}

static void
stop_permission (MamdOauthConfig *config)
{
  MamdOauthPermission *permission = mamd_oauth_config_get_permission (config);

  if (permission == NULL)
    return;
  /* a check still in flight may hold the object a little longer: it must
   * not announce anything for a config that is no longer live */
  g_signal_handlers_disconnect_matched (permission, G_SIGNAL_MATCH_FUNC, 0, 0, NULL,
                                        on_permission_changed, NULL);
  mamd_oauth_config_set_permission (config, NULL);
}

static void
release_active (MamdOauthPlugin *self, MamdOauthConfig *config, KeysEntry *entry)
{
  g_hash_table_remove (self->active, config);
  if (--entry->n_active == 0)
    mamd_oauth_keys_stop (entry->keys);
}

static gboolean
entry_is_unused (gpointer key, gpointer value, gpointer user_data)
{
  return ((KeysEntry *) value)->n_active == 0;
}

/* After a reload, caches that no live config uses (another discovery URL,
 * timeout or CA file now, or made for a config that never went live) go:
 * lookups in flight hold their own references. */
static void
drop_unused_entries (MamdOauthPlugin *self)
{
  g_hash_table_foreach_remove (self->keys, entry_is_unused, NULL);
}

/* The daemon deactivates a config before dropping it; this covers a host
 * that does not, so the refresh timer cannot outlive every user. */
static void
on_active_config_finalized (gpointer user_data, GObject *where_the_object_was)
{
  MamdOauthPlugin *self = user_data;
  KeysEntry *entry;

  if (self->active == NULL)
    return;
  entry = g_hash_table_lookup (self->active, where_the_object_was);
  if (entry == NULL)
    return;
  release_active (self, (MamdOauthConfig *) where_the_object_was, entry);
  drop_unused_entries (self);
}

static void
oauth_config_activate (MamdPlugin *plugin, GObject *object, gboolean active)
{
  MamdOauthPlugin *self = MAMD_OAUTH_PLUGIN (plugin);
  MamdOauthConfig *config;
  KeysEntry *entry;
  g_autoptr(GError) error = NULL;

  if (!MAMD_IS_OAUTH_CONFIG (object))
    return;
  config = MAMD_OAUTH_CONFIG (object);
  entry = g_hash_table_lookup (self->active, config);

  if (!active)
    {
      if (entry == NULL)
        return;
      g_object_weak_unref (object, on_active_config_finalized, self);
      stop_permission (config);
      release_active (self, config, entry);
      drop_unused_entries (self);
      return;
    }

  if (entry != NULL)
    return;
  entry = get_keys_entry (self, config, &error);
  if (entry == NULL)
    {
      g_warning ("server %s: cannot start key fetching: %s",
                 mamd_oauth_config_get_server_id (config), error->message);
      return;
    }
  g_hash_table_insert (self->active, config, entry);
  g_object_weak_ref (object, on_active_config_finalized, self);
  if (entry->n_active++ == 0)
    mamd_oauth_keys_start (entry->keys);
  start_permission (self, config, entry);
}

/* ---- authentication ---- */

typedef struct {
  MamdJwt *jwt;
  MamdOauthConfig *config;
  MamdOauthKeys *keys;
} AuthData;

static void
auth_data_free (gpointer data)
{
  AuthData *auth = data;

  mamd_jwt_free (auth->jwt);
  g_clear_object (&auth->config);
  g_clear_object (&auth->keys);
  g_free (auth);
}

/* The token, borrowed from @credential. Key names are chosen by the caller
 * and stay out of messages, like the token itself. */
static const char *
credential_get_token (GVariant *credential, GError **error)
{
  g_autoptr(GVariant) value = NULL;

  if (credential == NULL || !g_variant_is_of_type (credential, G_VARIANT_TYPE_VARDICT))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "the credential must be a{sv} holding \"access-token\"");
      return NULL;
    }
  value = g_variant_lookup_value (credential, CREDENTIAL_TOKEN_KEY, NULL);
  if (g_variant_n_children (credential) != 1 || value == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "the office365 credential holds exactly one key, "
                           "\"access-token\": the Entra access token for the app's scope");
      return NULL;
    }
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "credential key \"access-token\" must be of type s");
      return NULL;
    }
  return g_variant_get_string (value, NULL);
}

static void
on_key_found (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  AuthData *auth = g_task_get_task_data (task);
  g_autoptr(MamdJwks) jwks = NULL;
  g_autoptr(GError) error = NULL;
  const MamdJwk *key;
  MamdJwtPolicy policy = { 0 };
  MamdIdentity *identity;

  key = mamd_oauth_keys_lookup_finish (MAMD_OAUTH_KEYS (source), result, &jwks, &error);
  if (key == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  policy.issuer = mamd_oauth_config_get_issuer (auth->config);
  policy.tenant_id = mamd_oauth_config_get_tenant_id (auth->config);
  policy.client_id = mamd_oauth_config_get_client_id (auth->config);
  policy.required_scope = mamd_oauth_config_get_required_scope (auth->config);
  policy.now = g_get_real_time () / G_USEC_PER_SEC;
  policy.skew = mamd_oauth_config_get_clock_skew (auth->config);
  identity = mamd_jwt_verify (auth->jwt, key, &policy, &error);
  if (identity == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, identity, (GDestroyNotify) mamd_identity_free);
}

static void
oauth_authenticate_async (MamdPlugin         *plugin,
                          GObject            *object,
                          GVariant           *credential,
                          GCancellable       *cancellable,
                          GAsyncReadyCallback callback,
                          gpointer            user_data)
{
  MamdOauthPlugin *self = MAMD_OAUTH_PLUGIN (plugin);
  g_autoptr(GTask) task = g_task_new (plugin, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwt) jwt = NULL;
  const char *token;
  KeysEntry *entry;
  AuthData *auth;

  g_task_set_source_tag (task, oauth_authenticate_async);
  if (!MAMD_IS_OAUTH_CONFIG (object))
    {
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                               "no office365 configuration: the server must use the "
                               "office365 plugin's load_config");
      return;
    }
  token = credential_get_token (credential, &error);
  if (token != NULL)
    jwt = mamd_jwt_parse (token, &error);
  if (jwt == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  entry = get_keys_entry (self, MAMD_OAUTH_CONFIG (object), &error);
  if (entry == NULL)
    {
      g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE,
                               "cannot reach the identity provider: %s", error->message);
      return;
    }

  auth = g_new0 (AuthData, 1);
  auth->jwt = g_steal_pointer (&jwt);
  auth->config = g_object_ref (MAMD_OAUTH_CONFIG (object));
  auth->keys = g_object_ref (entry->keys);
  g_task_set_task_data (task, auth, auth_data_free);
  mamd_oauth_keys_lookup_async (auth->keys, mamd_jwt_get_kid (auth->jwt), cancellable,
                                on_key_found, g_steal_pointer (&task));
}

static MamdIdentity *
oauth_authenticate_finish (MamdPlugin *plugin, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, plugin), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- gate and diagnostics ---- */

static gboolean
oauth_check_gate (MamdPlugin *plugin, GObject *object, GError **error)
{
  MamdOauthPermission *permission;

  if (!MAMD_IS_OAUTH_CONFIG (object))
    return TRUE;
  permission = mamd_oauth_config_get_permission (MAMD_OAUTH_CONFIG (object));
  if (permission == NULL)
    return TRUE;
  return mamd_oauth_permission_check_gate (permission, error);
}

static void
oauth_diagnose (MamdPlugin *plugin, GObject *object, GPtrArray *findings)
{
  MamdOauthPlugin *self = MAMD_OAUTH_PLUGIN (plugin);
  MamdOauthConfig *config;
  MamdOauthPermission *permission;
  KeysEntry *entry;
  const char *ca_file;
  g_autofree char *state = NULL;

  if (!MAMD_IS_OAUTH_CONFIG (object))
    return;
  config = MAMD_OAUTH_CONFIG (object);
  ca_file = mamd_oauth_config_get_ca_file (config);
  g_ptr_array_add (findings,
                   g_strdup_printf ("tokens: issuer %s, audience %s, scope %s, clock skew %u s",
                                    mamd_oauth_config_get_issuer (config),
                                    mamd_oauth_config_get_client_id (config),
                                    mamd_oauth_config_get_required_scope (config),
                                    mamd_oauth_config_get_clock_skew (config)));

  entry = g_hash_table_lookup (self->keys, mamd_oauth_config_get_keys_id (config));
  if (entry != NULL)
    state = mamd_oauth_keys_describe (entry->keys);
  g_ptr_array_add (findings,
                   g_strdup_printf ("signing keys from %s (refresh %u s, refetch cool-down "
                                    "%u s, HTTP timeout %u s, CA %s): %s",
                                    mamd_oauth_config_get_discovery_url (config),
                                    mamd_oauth_config_get_key_refresh_interval (config),
                                    mamd_oauth_config_get_key_refetch_cooldown (config),
                                    mamd_oauth_config_get_http_timeout (config),
                                    ca_file != NULL ? ca_file : "system store",
                                    state != NULL ? state : "not fetched yet"));
  g_clear_pointer (&state, g_free);

  permission = mamd_oauth_config_get_permission (config);
  if (permission != NULL)
    state = mamd_oauth_permission_describe (permission);
  if (mamd_oauth_config_get_client_secret_file (config) != NULL)
    g_ptr_array_add (findings,
                     g_strdup_printf ("MAM service permission %s at %s (every %u s): %s",
                                      mamd_oauth_config_get_permission_scope (config),
                                      mamd_oauth_config_get_token_endpoint (config),
                                      mamd_oauth_config_get_permission_check_interval (config),
                                      state != NULL ? state
                                                    : "checked while the configuration is live"));
  else
    g_ptr_array_add (findings, g_strdup ("MAM service permission: not checked; set "
                                         "ClientSecretFile in [office365] to check it"));
}

static void
mamd_oauth_plugin_dispose (GObject *object)
{
  MamdOauthPlugin *self = MAMD_OAUTH_PLUGIN (object);
  GHashTableIter iter;
  gpointer config;

  if (self->active != NULL)
    {
      g_hash_table_iter_init (&iter, self->active);
      while (g_hash_table_iter_next (&iter, &config, NULL))
        {
          g_object_weak_unref (config, on_active_config_finalized, self);
          /* the config may outlive us: its checks would call back into a
           * freed plugin */
          stop_permission (config);
        }
    }
  g_clear_pointer (&self->active, g_hash_table_unref);
  g_clear_pointer (&self->keys, g_hash_table_unref);
  G_OBJECT_CLASS (mamd_oauth_plugin_parent_class)->dispose (object);
}

static void
mamd_oauth_plugin_class_init (MamdOauthPluginClass *klass)
{
  MamdPluginClass *plugin_class = MAMD_PLUGIN_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = mamd_oauth_plugin_dispose;
  plugin_class->method = "office365";
  plugin_class->description = "Entra ID (OpenID Connect) v2 access tokens, MAM service permission";
  /* PRODUCT.md: an office365 sign-in may create the user on first login */
  plugin_class->capabilities = MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE |
                               MAMD_PLUGIN_CAP_CREATES_USERS;
  plugin_class->load_config = oauth_load_config;
  plugin_class->config_activate = oauth_config_activate;
  plugin_class->authenticate_async = oauth_authenticate_async;
  plugin_class->authenticate_finish = oauth_authenticate_finish;
  plugin_class->check_gate = oauth_check_gate;
  plugin_class->diagnose = oauth_diagnose;
}

static void
mamd_oauth_plugin_init (MamdOauthPlugin *self)
{
  self->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, keys_entry_free);
  self->active = g_hash_table_new (g_direct_hash, g_direct_equal);
}

MAMD_PLUGIN_DEFINE ("oauth", MAMD_VERSION, mamd_oauth_plugin_get_type)
