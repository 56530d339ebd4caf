/*
 * MamdOauthKeys: discovery document, then the JWKS it names, cached.
 *
 * At most one fetch is ever in flight; lookups that need fresh keys queue
 * behind it and are all answered when it ends. A fetch for an unknown kid
 * is allowed once per cool-down, so a storm of forged kids costs one
 * request. A failed fetch keeps the last good JWKS: known kids keep
 * working while the provider is down.
 */
#include "config.h"

#include <string.h>

#include "mamd-json.h"
#include "mamd-oauth-keys.h"
#include "mamd-plugin.h"

#define DISCOVERY_MAX_LEN (64 * 1024)
#define JWKS_MAX_LEN (256 * 1024)
#define DISCOVERY_MAX_DEPTH 8
#define DISCOVERY_SUFFIX "/.well-known/openid-configuration"
/* after a failed fetch the timer retries sooner than the refresh interval */
#define RETRY_MIN_SECONDS 60

struct _MamdOauthKeys {
  GObject parent_instance;
  MamdOauthHttp *http;
  char *discovery_url;
  guint refresh_interval;
  guint refetch_cooldown;

  char *jwks_uri;        /* from discovery */
  char *token_endpoint;  /* from discovery, may stay NULL */
  gboolean rediscover;   /* the JWKS URL failed: ask discovery again */
  MamdJwks *jwks;        /* the last good keys */
  gint64 fetched_at;     /* monotonic, when jwks was fetched */
  gint64 last_attempt;   /* monotonic, when the last unknown-kid refetch started; 0 never */
  gboolean last_failed;  /* the last fetch failed */
  GError *last_error;
  guint n_fetches;

  gboolean started;
  gboolean fetching;
  GQueue waiters;        /* GTask*, lookups waiting for the fetch in flight */
  GCancellable *cancellable;
  GSource *timer;
};

G_DEFINE_TYPE (MamdOauthKeys, mamd_oauth_keys, G_TYPE_OBJECT)

typedef struct {
  char *kid;
  MamdJwks *jwks;        /* the JWKS the key came from (owned ref) */
  const MamdJwk *key;
} Lookup;

static void
lookup_free (gpointer data)
{
  Lookup *lookup = data;

  g_free (lookup->kid);
  g_clear_pointer (&lookup->jwks, mamd_jwks_unref);
  g_free (lookup);
}

static void fetch_start (MamdOauthKeys *self, gboolean full);

/* Timers go to the thread-default context, like libsoup's I/O. */
static void
schedule_refresh (MamdOauthKeys *self, guint seconds);

static gboolean
refresh_due (gpointer user_data)
{
  MamdOauthKeys *self = user_data;

  g_clear_pointer (&self->timer, g_source_unref);
  if (!self->fetching)
    fetch_start (self, TRUE);
  return G_SOURCE_REMOVE;
}

static void
schedule_refresh (MamdOauthKeys *self, guint seconds)
{
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  if (!self->started)
    return;
  self->timer = g_timeout_source_new_seconds (MAX (seconds, 1));
  g_source_set_callback (self->timer, refresh_due, self, NULL);
  g_source_attach (self->timer, g_main_context_get_thread_default ());
}

/* A kid is outside input: shorten and escape it for messages. */
static char *
kid_display (const char *kid)
{
  g_autofree char *cut = g_utf8_make_valid (kid, MIN (strlen (kid), 64));

  return g_strescape (cut, NULL);
}

static gboolean
answer_from (MamdOauthKeys *self, GTask *task)
{
  Lookup *lookup = g_task_get_task_data (task);
  const MamdJwk *key;

  if (self->jwks == NULL)
    return FALSE;
  key = mamd_jwks_lookup (self->jwks, lookup->kid);
  if (key == NULL)
    return FALSE;
  lookup->jwks = mamd_jwks_ref (self->jwks);
  lookup->key = key;
  g_task_return_boolean (task, TRUE);
  return TRUE;
}

/* A lookup that cannot be answered from the cache and gets no fetch. */
static void
answer_unknown (MamdOauthKeys *self, GTask *task)
{
  Lookup *lookup = g_task_get_task_data (task);
  g_autofree char *kid = kid_display (lookup->kid);
  const char *skipped = self->jwks != NULL ? mamd_jwks_get_skip_reason (self->jwks, lookup->kid)
                                           : NULL;

  if (skipped != NULL)
    g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                             "signature: the provider lists key id \"%s\", but that key cannot "
                             "verify RS256 tokens (%s): only RSA signing keys of at least 2048 "
                             "bits are used", kid, skipped);
  else if (self->jwks != NULL && !self->last_failed)
    g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                             "signature: unknown key id \"%s\": none of the provider's %u "
                             "signing keys, fetched %" G_GINT64_FORMAT " s ago, has it (an "
                             "unknown key id fetches the keys again at most once every %u s, "
                             "KeyRefetchCooldown)",
                             kid, mamd_jwks_get_n_keys (self->jwks),
                             (g_get_monotonic_time () - self->fetched_at) / G_USEC_PER_SEC,
                             self->refetch_cooldown);
  else
    g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE,
                             "key unavailable: signing key \"%s\" cannot be fetched (%s); "
                             "retry later", kid,
                             self->last_error != NULL ? self->last_error->message
                                                      : "no keys fetched yet");
}

static void
fetch_finished (MamdOauthKeys *self, GError *error)
{
  GTask *task;

  self->fetching = FALSE;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* stopped: says nothing about the provider, and must not hold the
       * cool-down; whoever still waits (or a restart) gets a new fetch */
      self->last_attempt = 0;
      if (self->started || !g_queue_is_empty (&self->waiters))
        fetch_start (self, TRUE);
      return;
    }
  self->last_failed = error != NULL;
  g_clear_error (&self->last_error);
  if (error != NULL)
    {
      g_info ("fetching signing keys from %s failed: %s", self->discovery_url, error->message);
      self->last_error = g_error_copy (error);
    }
  schedule_refresh (self, error == NULL ? self->refresh_interval
                                        : MIN (self->refresh_interval,
                                               MAX (self->refetch_cooldown, RETRY_MIN_SECONDS)));
  while ((task = g_queue_pop_head (&self->waiters)) != NULL)
    {
      if (!answer_from (self, task))
        answer_unknown (self, task);
      g_object_unref (task);
    }
}

static void
jwks_fetched (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(MamdOauthKeys) self = user_data;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(MamdJwks) jwks = NULL;
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data;

  body = mamd_oauth_http_get_finish (MAMD_OAUTH_HTTP (source), result, &error);
  if (body == NULL)
    {
      self->rediscover = TRUE;
      fetch_finished (self, error);
      return;
    }
  data = g_bytes_get_data (body, &len);
  jwks = mamd_jwks_parse (data, len, &error);
  if (jwks == NULL)
    {
      g_autoptr(GError) coded = g_error_new (MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE,
                                             "the JWKS at %s is unusable: %s", self->jwks_uri,
                                             error->message);
      self->rediscover = TRUE;
      fetch_finished (self, coded);
      return;
    }
  g_clear_pointer (&self->jwks, mamd_jwks_unref);
  self->jwks = g_steal_pointer (&jwks);
  self->fetched_at = g_get_monotonic_time ();
  self->rediscover = FALSE;
  g_debug ("fetched %u signing keys from %s (%u skipped)", mamd_jwks_get_n_keys (self->jwks),
           self->jwks_uri, mamd_jwks_get_n_skipped (self->jwks));
  fetch_finished (self, NULL);
}

static void
fetch_jwks (MamdOauthKeys *self)
{
  self->n_fetches++;
  mamd_oauth_http_get_async (self->http, self->jwks_uri, JWKS_MAX_LEN, self->cancellable,
                             jwks_fetched, g_object_ref (self));
}

/* A URL named by the discovery document: HTTPS, or plain http only on the
 * discovery URL's own (loopback) origin. */
static gboolean
check_named_url (const char *discovery_url, const char *member, const char *url,
                 GError **error)
{
  g_autoptr(GUri) named = NULL;
  g_autoptr(GUri) discovery = NULL;

  if (!mamd_oauth_http_check_url (url, error))
    {
      g_prefix_error (error, "%s: ", member);
      return FALSE;
    }
  named = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  discovery = g_uri_parse (discovery_url, G_URI_FLAGS_NONE, NULL);
  if (named == NULL || discovery == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, "%s is not a valid URL", member);
      return FALSE;
    }
  if (g_ascii_strcasecmp (g_uri_get_scheme (named), "https") == 0)
    return TRUE;
  if (g_ascii_strcasecmp (g_uri_get_scheme (discovery), g_uri_get_scheme (named)) == 0 &&
      g_ascii_strcasecmp (g_uri_get_host (discovery), g_uri_get_host (named)) == 0 &&
      g_uri_get_port (discovery) == g_uri_get_port (named))
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
               "%s %s is neither HTTPS nor on the discovery URL's origin: refused", member, url);
  return FALSE;
}

gboolean
mamd_oauth_discovery_parse (const char *discovery_url, const char *data, gsize len,
                            char **jwks_uri, char **token_endpoint, GError **error)
{
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  const char *issuer = NULL;
  const char *jwks = NULL;
  const char *token = NULL;

  root = mamd_json_parse_strict_object (data, len, DISCOVERY_MAX_LEN, DISCOVERY_MAX_DEPTH, error);
  if (root == NULL)
    return FALSE;
  object = json_node_get_object (root);
  if (!mamd_json_object_get_string (object, "issuer", TRUE, &issuer, error) ||
      !mamd_json_object_get_string (object, "jwks_uri", TRUE, &jwks, error) ||
      !mamd_json_object_get_string (object, "token_endpoint", FALSE, &token, error))
    return FALSE;
  /* OpenID Connect Discovery 1.0 section 4.3: the issuer must be the URL
   * the document was fetched under, or keys of another issuer could be
   * substituted */
  if (g_str_has_suffix (discovery_url, DISCOVERY_SUFFIX) &&
      (strlen (issuer) != strlen (discovery_url) - strlen (DISCOVERY_SUFFIX) ||
       strncmp (issuer, discovery_url, strlen (issuer)) != 0))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "issuer %s does not match the discovery URL: check the authority and "
                   "tenant settings", issuer);
      return FALSE;
    }
  if (!check_named_url (discovery_url, "jwks_uri", jwks, error))
    return FALSE;
  if (token != NULL && !check_named_url (discovery_url, "token_endpoint", token, error))
    return FALSE;
  *jwks_uri = g_strdup (jwks);
  *token_endpoint = g_strdup (token);
  return TRUE;
}

static gboolean
parse_discovery (MamdOauthKeys *self, GBytes *body, GError **error)
{
  g_autofree char *jwks_uri = NULL;
  g_autofree char *token_endpoint = NULL;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  if (!mamd_oauth_discovery_parse (self->discovery_url, data, len, &jwks_uri, &token_endpoint,
                                   error))
    return FALSE;
  g_free (self->jwks_uri);
  self->jwks_uri = g_steal_pointer (&jwks_uri);
  g_free (self->token_endpoint);
  self->token_endpoint = g_steal_pointer (&token_endpoint);
  return TRUE;
}

static void
discovery_fetched (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(MamdOauthKeys) self = user_data;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;

  body = mamd_oauth_http_get_finish (MAMD_OAUTH_HTTP (source), result, &error);
  if (body == NULL)
    {
      fetch_finished (self, error);
      return;
    }
  if (!parse_discovery (self, body, &error))
    {
      g_autoptr(GError) coded = g_error_new (MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE,
                                             "the discovery document at %s is unusable: %s",
                                             self->discovery_url, error->message);
      fetch_finished (self, coded);
      return;
    }
  fetch_jwks (self);
}

static void
fetch_start (MamdOauthKeys *self, gboolean full)
{
  self->fetching = TRUE;
  if (self->cancellable == NULL)
    self->cancellable = g_cancellable_new ();
  /* the timer is re-armed when this fetch ends */
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  /* a scheduled refresh also re-reads discovery so that a moved jwks_uri
   * or token endpoint is noticed; unknown-kid refetches only need the JWKS */
  if (full || self->jwks_uri == NULL || self->rediscover)
    {
      self->n_fetches++;
      mamd_oauth_http_get_async (self->http, self->discovery_url, DISCOVERY_MAX_LEN,
                                 self->cancellable, discovery_fetched, g_object_ref (self));
    }
  else
    fetch_jwks (self);
}

static gboolean
cooldown_over (MamdOauthKeys *self)
{
  return self->last_attempt == 0 ||
         g_get_monotonic_time () - self->last_attempt >=
           (gint64) self->refetch_cooldown * G_USEC_PER_SEC;
}

void
mamd_oauth_keys_lookup_async (MamdOauthKeys *self, const char *kid, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  Lookup *lookup;

  g_return_if_fail (MAMD_IS_OAUTH_KEYS (self));
  g_return_if_fail (kid != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, mamd_oauth_keys_lookup_async);
  lookup = g_new0 (Lookup, 1);
  lookup->kid = g_strdup (kid);
  g_task_set_task_data (task, lookup, lookup_free);

  if (answer_from (self, task))
    return;
  if (self->fetching)
    {
      g_queue_push_tail (&self->waiters, g_steal_pointer (&task));
      return;
    }
  if (!cooldown_over (self))
    {
      answer_unknown (self, task);
      return;
    }
  g_queue_push_tail (&self->waiters, g_steal_pointer (&task));
  /* only unknown-kid refetches start the cool-down: a key that rotates in
   * just after a scheduled refresh is still picked up at once */
  self->last_attempt = g_get_monotonic_time ();
  fetch_start (self, FALSE);
}

const MamdJwk *
mamd_oauth_keys_lookup_finish (MamdOauthKeys *self, GAsyncResult *result, MamdJwks **jwks_ref,
                               GError **error)
{
  Lookup *lookup;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  lookup = g_task_get_task_data (G_TASK (result));
  if (jwks_ref != NULL)
    *jwks_ref = mamd_jwks_ref (lookup->jwks);
  return lookup->key;
}

void
mamd_oauth_keys_start (MamdOauthKeys *self)
{
  g_return_if_fail (MAMD_IS_OAUTH_KEYS (self));

  if (self->started)
    return;
  self->started = TRUE;
  if (self->fetching)
    return;
  if (self->jwks != NULL && !self->last_failed)
    {
      gint64 age = (g_get_monotonic_time () - self->fetched_at) / G_USEC_PER_SEC;

      if (age < self->refresh_interval)
        {
          schedule_refresh (self, self->refresh_interval - (guint) age);
          return;
        }
    }
  fetch_start (self, TRUE);
}

void
mamd_oauth_keys_stop (MamdOauthKeys *self)
{
  g_return_if_fail (MAMD_IS_OAUTH_KEYS (self));

  self->started = FALSE;
  schedule_refresh (self, 0);
  /* the fetch in flight, if any, ends with G_IO_ERROR_CANCELLED and answers
   * its waiters; the cached keys stay for a later start */
  if (self->cancellable != NULL)
    {
      g_cancellable_cancel (self->cancellable);
      g_clear_object (&self->cancellable);
    }
}

const char *
mamd_oauth_keys_get_token_endpoint (MamdOauthKeys *self)
{
  g_return_val_if_fail (MAMD_IS_OAUTH_KEYS (self), NULL);
  return self->token_endpoint;
}

guint
mamd_oauth_keys_get_n_fetches (MamdOauthKeys *self)
{
  g_return_val_if_fail (MAMD_IS_OAUTH_KEYS (self), 0);
  return self->n_fetches;
}

char *
mamd_oauth_keys_describe (MamdOauthKeys *self)
{
  g_autofree char *keys = NULL;

  g_return_val_if_fail (MAMD_IS_OAUTH_KEYS (self), NULL);

  if (self->jwks != NULL)
    keys = g_strdup_printf ("keys: %u (fetched %" G_GINT64_FORMAT " s ago)",
                            mamd_jwks_get_n_keys (self->jwks),
                            (g_get_monotonic_time () - self->fetched_at) / G_USEC_PER_SEC);
  if (keys != NULL && self->last_failed && self->last_error != NULL)
    return g_strdup_printf ("%s; last refresh failed: %s", keys, self->last_error->message);
  if (keys != NULL)
    return g_steal_pointer (&keys);
  if (self->last_error != NULL)
    return g_strdup_printf ("no keys: %s", self->last_error->message);
  return g_strdup (self->fetching ? "no keys yet: fetching" : "no keys yet: not fetched");
}

static void
mamd_oauth_keys_dispose (GObject *object)
{
  MamdOauthKeys *self = MAMD_OAUTH_KEYS (object);

  /* fetches hold a reference: none is in flight once we get here */
  mamd_oauth_keys_stop (self);
  G_OBJECT_CLASS (mamd_oauth_keys_parent_class)->dispose (object);
}

static void
mamd_oauth_keys_finalize (GObject *object)
{
  MamdOauthKeys *self = MAMD_OAUTH_KEYS (object);

  g_clear_object (&self->http);
  g_free (self->discovery_url);
  g_free (self->jwks_uri);
  g_free (self->token_endpoint);
  g_clear_pointer (&self->jwks, mamd_jwks_unref);
  g_clear_error (&self->last_error);
  G_OBJECT_CLASS (mamd_oauth_keys_parent_class)->finalize (object);
}

static void
mamd_oauth_keys_class_init (MamdOauthKeysClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = mamd_oauth_keys_dispose;
  object_class->finalize = mamd_oauth_keys_finalize;
}

static void
mamd_oauth_keys_init (MamdOauthKeys *self)
{
  g_queue_init (&self->waiters);
}

MamdOauthKeys *
mamd_oauth_keys_new (MamdOauthHttp *http, const char *discovery_url, guint refresh_interval,
                     guint refetch_cooldown)
{
  MamdOauthKeys *self;

  g_return_val_if_fail (MAMD_IS_OAUTH_HTTP (http), NULL);
  g_return_val_if_fail (discovery_url != NULL, NULL);

  self = g_object_new (MAMD_TYPE_OAUTH_KEYS, NULL);
  self->http = g_object_ref (http);
  self->discovery_url = g_strdup (discovery_url);
  self->refresh_interval = MAX (refresh_interval, 1);
  self->refetch_cooldown = refetch_cooldown;
  return self;
}
