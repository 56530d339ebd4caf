/* The hardened HTTP client, the signing-key cache and the MAM service
 * permission check, against the real developer identity provider (and a
 * second, misbehaving SoupServer) on 127.0.0.1. Keys and tokens are made
 * at test time. Nothing asserts on elapsed time: results are checked by
 * request counts and by the order in which callbacks ran. */
#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "mamd-idp-mint.h"
#include "mamd-idp-server.h"
#include "mamd-oauth-http.h"
#include "mamd-oauth-jwt.h"
#include "mamd-oauth-keys.h"
#include "mamd-oauth-permission.h"
#include "mamd-plugin.h"

#define TENANT "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define CLIENT "0b9a8c7d-6e5f-4d3c-2b1a-0f9e8d7c6b5a"
#define SECRET "s3cr3t-Value_only.unreserved~chars"
/* goes out form-encoded as Ab%2Bc%2Fd%3De%26f%25g%3Fh~i.j_k-lQ~7xyz */
#define ODD_SECRET "Ab+c/d=e&f%g?h~i.j_k-lQ~7xyz"
#define ODD_SECRET_FORM_LOWER "ab%2bc%2fd%3de%26f%25g%3fh~i.j_k-lq~7xyz"
#define USER_OID "11111111-2222-4333-8444-555555555555"
#define MAM_SCOPE "https://msmamservice.api.application/.default"
#define JWKS_PATH "/discovery/v2.0/keys"
#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define TOKEN_PATH "/oauth2/v2.0/token"
#define CAP (256 * 1024)

/* Set when any log line carries a client secret, raw or form-encoded. */
static gboolean secret_logged;

typedef struct {
  MamdIdpServer *idp;
  MamdOauthHttp *http;
  char *discovery_url;
  char *token_endpoint;
  char *issuer;
  SoupServer *rogue;      /* redirects, oversize bodies, hangs, echoes */
  char *rogue_base;
  GHashTable *rogue_counts;
} Fixture;

/* ---- the misbehaving server ---- */

static void
rogue_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
               gpointer user_data)
{
  Fixture *fx = user_data;
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (fx->rogue_counts, path));
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  g_hash_table_insert (fx->rogue_counts, g_strdup (path), GUINT_TO_POINTER (count + 1));
  if (strcmp (path, "/ok") == 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "hello", 5);
    }
  else if (strcmp (path, "/same") == 0)
    soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, "/ok");
  else if (strcmp (path, "/loop") == 0)
    soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, "/loop");
  else if (strcmp (path, "/other-port") == 0)
    {
      g_autofree char *target = g_strdup_printf ("%s/ok", mamd_idp_server_get_authority (fx->idp));
      soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, target);
    }
  else if (strcmp (path, "/other-host") == 0)
    {
      g_autofree char *target = g_strdup_printf ("http://localhost:%s/ok",
                                                 strrchr (fx->rogue_base, ':') + 1);
      soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, target);
    }
  else if (strcmp (path, "/post-302") == 0)
    soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, "/ok");
  else if (strcmp (path, "/big") == 0 || strcmp (path, "/exact") == 0)
    {
      gsize len = strcmp (path, "/big") == 0 ? CAP + 1 : CAP;
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                        g_malloc0 (len), len);
    }
  else if (strcmp (path, "/chunked") == 0)
    {
      SoupMessageBody *body = soup_server_message_get_response_body (msg);

      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      for (guint i = 0; i < 40; i++)
        soup_message_body_append_take (body, g_malloc0 (16 * 1024), 16 * 1024);
      soup_message_body_complete (body);
    }
  else if (strcmp (path, "/hang") == 0)
    soup_server_message_pause (msg); /* never answered */
  else if (strcmp (path, "/echo-value") == 0)
    {
      /* echoes the secret as it was sent, hex in lower case, without
       * naming the field */
      SoupMessageBody *request = soup_server_message_get_request_body (msg);
      g_autoptr(GBytes) form = soup_message_body_flatten (request);
      g_autofree char *text = g_strndup (g_bytes_get_data (form, NULL), g_bytes_get_size (form));
      char *value = strstr (text, "client_secret=") + strlen ("client_secret=");
      g_autofree char *doc = NULL;

      *strchrnul (value, '&') = '\0';
      for (char *p = value; *p != '\0'; p++)
        if (p > value + 1 && p[-2] == '%')
          {
            p[-1] = g_ascii_tolower (p[-1]);
            p[0] = g_ascii_tolower (p[0]);
          }
      doc = g_strdup_printf ("{\"error\":\"invalid_client\",\"error_description\":"
                             "\"AADSTS7000215: got %s and %s\"}", value, value);
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, doc,
                                        strlen (doc));
    }
  else if (strcmp (path, "/echo-token") == 0)
    {
      /* a provider that echoes the request in its error description */
      g_autoptr(GBytes) form = soup_message_body_flatten (soup_server_message_get_request_body (msg));
      g_autofree char *text = g_strndup (g_bytes_get_data (form, NULL), g_bytes_get_size (form));
      g_autofree char *doc = g_strdup_printf ("{\"error\":\"invalid_client\","
                                              "\"error_description\":\"AADSTS7000215: got %s\","
                                              "\"error_codes\":[7000215]}", text);
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, doc,
                                        strlen (doc));
    }
  else if (g_str_has_suffix (path, DISCOVERY_PATH))
    {
      /* /cross/...: jwks_uri on the identity provider's origin, over http;
       * /wrong-issuer/...: an issuer that is not this URL's */
      g_autofree char *tenant = g_strndup (path + 1, strchr (path + 1, '/') - path - 1);
      g_autofree char *issuer = g_strdup_printf ("%s/%s/v2.0", fx->rogue_base, tenant);
      g_autofree char *doc = g_strdup_printf ("{\"issuer\":\"%s\",\"jwks_uri\":\"%s/%s%s\"}",
                                              strcmp (tenant, "wrong-issuer") == 0
                                                ? fx->issuer : issuer,
                                              strcmp (tenant, "cross") == 0
                                                ? mamd_idp_server_get_authority (fx->idp)
                                                : fx->rogue_base,
                                              TENANT, JWKS_PATH);
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, doc,
                                        strlen (doc));
    }
  else
    soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

static guint
rogue_count (Fixture *fx, const char *path)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (fx->rogue_counts, path));
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) local = NULL;
  GSList *listeners;

  fx->idp = mamd_idp_server_new (0, &error);
  g_assert_no_error (error);
  mamd_idp_server_add_client (fx->idp, TENANT, CLIENT, SECRET);
  fx->http = mamd_oauth_http_new (NULL, 10, &error);
  g_assert_no_error (error);
  fx->issuer = g_strdup_printf ("%s/%s/v2.0", mamd_idp_server_get_authority (fx->idp), TENANT);
  fx->discovery_url = g_strconcat (fx->issuer, DISCOVERY_PATH, NULL);
  fx->token_endpoint = g_strdup_printf ("%s/%s%s", mamd_idp_server_get_authority (fx->idp),
                                        TENANT, TOKEN_PATH);

  fx->rogue_counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  fx->rogue = soup_server_new (NULL, NULL);
  soup_server_add_handler (fx->rogue, NULL, rogue_handler, fx, NULL);
  g_assert_true (soup_server_listen (fx->rogue, address, 0, &error));
  g_assert_no_error (error);
  /* not soup_server_get_uris (): libsoup 3.2 leaks an address in it */
  listeners = soup_server_get_listeners (fx->rogue);
  local = g_socket_get_local_address (listeners->data, &error);
  g_assert_no_error (error);
  fx->rogue_base = g_strdup_printf ("http://127.0.0.1:%u",
                                    g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)));
  g_slist_free (listeners);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  soup_server_disconnect (fx->rogue);
  g_clear_object (&fx->rogue);
  g_hash_table_unref (fx->rogue_counts);
  g_free (fx->rogue_base);
  g_clear_object (&fx->http);
  g_clear_object (&fx->idp);
  g_free (fx->discovery_url);
  g_free (fx->token_endpoint);
  g_free (fx->issuer);
  /* let the closes and disconnects queued by the teardown run */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- helpers ---- */

static guint order_counter;

static void
iterate_until (const gboolean *flag)
{
  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
}

static gboolean
set_flag (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Lets a cool-down of @seconds run out; the main loop keeps running. */
static void
let_time_pass (guint seconds)
{
  gboolean done = FALSE;

  g_timeout_add (seconds * 1000 + 100, set_flag, &done);
  iterate_until (&done);
}

typedef struct {
  gboolean done;
  guint order;
  const MamdJwk *key;
  MamdJwks *jwks;
  GError *error;
} Lookup;

static void
lookup_clear (Lookup *lookup)
{
  g_clear_pointer (&lookup->jwks, mamd_jwks_unref);
  g_clear_error (&lookup->error);
  memset (lookup, 0, sizeof *lookup);
}

static void
lookup_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lookup *lookup = user_data;

  lookup->key = mamd_oauth_keys_lookup_finish (MAMD_OAUTH_KEYS (source), result, &lookup->jwks,
                                               &lookup->error);
  g_assert_true ((lookup->key == NULL) != (lookup->error == NULL));
  lookup->order = ++order_counter;
  lookup->done = TRUE;
}

static void
lookup_start (MamdOauthKeys *keys, const char *kid, Lookup *lookup)
{
  lookup_clear (lookup);
  mamd_oauth_keys_lookup_async (keys, kid, NULL, lookup_done, lookup);
}

static void
lookup_run (MamdOauthKeys *keys, const char *kid, Lookup *lookup)
{
  lookup_start (keys, kid, lookup);
  iterate_until (&lookup->done);
}

typedef struct {
  gboolean done;
  GBytes *body;
  guint status;
  GError *error;
} Fetch;

static void
fetch_clear (Fetch *fetch)
{
  g_clear_pointer (&fetch->body, g_bytes_unref);
  g_clear_error (&fetch->error);
  memset (fetch, 0, sizeof *fetch);
}

static void
get_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fetch *fetch = user_data;

  fetch->body = mamd_oauth_http_get_finish (MAMD_OAUTH_HTTP (source), result, &fetch->error);
  fetch->done = TRUE;
}

static void
post_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fetch *fetch = user_data;

  fetch->body = mamd_oauth_http_post_form_finish (MAMD_OAUTH_HTTP (source), result,
                                                  &fetch->status, &fetch->error);
  fetch->done = TRUE;
}

static void
get_run (MamdOauthHttp *http, const char *base, const char *path, gsize max_len,
         GCancellable *cancellable, Fetch *fetch)
{
  g_autofree char *url = g_strconcat (base, path, NULL);

  fetch_clear (fetch);
  mamd_oauth_http_get_async (http, url, max_len, cancellable, get_done, fetch);
  iterate_until (&fetch->done);
}

static guint
idp_count (Fixture *fx, const char *suffix)
{
  return mamd_idp_server_get_request_count (fx->idp, suffix);
}

/* ---- HTTP client ---- */

static void
test_http_check_url (Fixture *fx, gconstpointer data)
{
  const char *good[] = {
    "https://login.microsoftonline.com/x/v2.0", "http://127.0.0.1:8080/x",
    "http://127.3.4.5/x", "http://localhost:1/", "http://[::1]:8080/x",
  };
  const char *bad[] = {
    "http://login.microsoftonline.com/x", "http://128.0.0.1/", "http://localhost.example.com/",
    "http://10.0.0.1/", "ftp://127.0.0.1/", "file:///etc/passwd", "https://user:pw@example.com/",
    "https:///nohost", "not a url", "",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;
      g_assert_true (mamd_oauth_http_check_url (good[i], &error));
      g_assert_no_error (error);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_assert_false (mamd_oauth_http_check_url (bad[i], &error));
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
    }
}

static void
test_http_https_required (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdOauthKeys) keys = NULL;
  Fetch fetch = { 0 };
  Lookup lookup = { 0 };

  /* refused before any connection is attempted (.invalid never resolves) */
  get_run (fx->http, "http://idp.example.invalid", "/x", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (fetch.error->message, "not HTTPS"));

  keys = mamd_oauth_keys_new (fx->http, "http://idp.example.invalid/t/v2.0" DISCOVERY_PATH,
                              3600, 300);
  lookup_run (keys, "any", &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (lookup.error->message, "not HTTPS"));
  g_clear_object (&keys);

  /* discovery on one loopback origin naming plain-http keys on another */
  {
    g_autofree char *url = g_strconcat (fx->rogue_base, "/cross/v2.0", DISCOVERY_PATH, NULL);

    keys = mamd_oauth_keys_new (fx->http, url, 3600, 300);
    lookup_run (keys, mamd_idp_server_get_current_kid (fx->idp), &lookup);
    g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
    g_assert_nonnull (strstr (lookup.error->message, "jwks_uri"));
    g_assert_cmpuint (idp_count (fx, NULL), ==, 0);
    g_clear_object (&keys);
  }
  /* a discovery document whose issuer is not its own URL */
  {
    g_autofree char *url = g_strconcat (fx->rogue_base, "/wrong-issuer/v2.0", DISCOVERY_PATH,
                                        NULL);

    keys = mamd_oauth_keys_new (fx->http, url, 3600, 300);
    lookup_run (keys, mamd_idp_server_get_current_kid (fx->idp), &lookup);
    g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
    g_assert_nonnull (strstr (lookup.error->message, "issuer"));
  }
  lookup_clear (&lookup);
  fetch_clear (&fetch);
}

static void
test_http_redirect (Fixture *fx, gconstpointer data)
{
  Fetch fetch = { 0 };

  get_run (fx->http, fx->rogue_base, "/same", CAP, NULL, &fetch);
  g_assert_no_error (fetch.error);
  g_assert_cmpmem (g_bytes_get_data (fetch.body, NULL), g_bytes_get_size (fetch.body), "hello", 5);

  get_run (fx->http, fx->rogue_base, "/other-port", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (fetch.error->message, "another origin"));
  g_assert_cmpuint (idp_count (fx, NULL), ==, 0);

  get_run (fx->http, fx->rogue_base, "/other-host", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (fetch.error->message, "another origin"));

  get_run (fx->http, fx->rogue_base, "/loop", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (fetch.error->message, "redirects"));
  g_assert_cmpuint (rogue_count (fx, "/loop"), ==, 1 + 3);

  /* only /same led to /ok */
  g_assert_cmpuint (rogue_count (fx, "/ok"), ==, 1);
  fetch_clear (&fetch);
}

static void
test_http_oversize (Fixture *fx, gconstpointer data)
{
  Fetch fetch = { 0 };

  get_run (fx->http, fx->rogue_base, "/big", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (fetch.error->message, "larger than"));

  /* no Content-Length: the cap holds while reading */
  get_run (fx->http, fx->rogue_base, "/chunked", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (fetch.error->message, "larger than"));

  get_run (fx->http, fx->rogue_base, "/exact", CAP, NULL, &fetch);
  g_assert_no_error (fetch.error);
  g_assert_cmpuint (g_bytes_get_size (fetch.body), ==, CAP);

  /* and the client still works after the aborted exchanges */
  get_run (fx->http, fx->rogue_base, "/ok", CAP, NULL, &fetch);
  g_assert_no_error (fetch.error);
  fetch_clear (&fetch);
}

static void
test_http_status_timeout_cancel (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdOauthHttp) quick = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) form = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *url = g_strconcat (fx->rogue_base, "/post-302", NULL);
  Fetch fetch = { 0 };

  get_run (fx->http, fx->rogue_base, "/missing", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (fetch.error->message, "HTTP 404"));

  /* a server that never answers: the timeout ends it */
  quick = mamd_oauth_http_new (NULL, 1, &error);
  g_assert_no_error (error);
  get_run (quick, fx->rogue_base, "/hang", CAP, NULL, &fetch);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);

  g_cancellable_cancel (cancellable);
  get_run (fx->http, fx->rogue_base, "/ok", CAP, cancellable, &fetch);
  g_assert_error (fetch.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* a form POST is not turned into a GET by a 302 */
  g_hash_table_insert (form, "a", "b");
  fetch_clear (&fetch);
  mamd_oauth_http_post_form_async (fx->http, url, form, CAP, NULL, post_done, &fetch);
  iterate_until (&fetch.done);
  g_assert_error (fetch.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_cmpuint (rogue_count (fx, "/ok"), ==, 0);
  fetch_clear (&fetch);

  g_assert_null (mamd_oauth_http_new ("/nonexistent/ca.pem", 10, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
}

/* ---- keys ---- */

static void
test_keys_discovery (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdOauthKeys) keys = mamd_oauth_keys_new (fx->http, fx->discovery_url, 3600, 300);
  g_autofree char *before = mamd_oauth_keys_describe (keys);
  g_autofree char *after = NULL;
  const char *kid = mamd_idp_server_get_current_kid (fx->idp);
  Lookup lookup = { 0 }, second = { 0 };

  g_assert_null (mamd_oauth_keys_get_token_endpoint (keys));
  g_assert_nonnull (strstr (before, "no keys"));

  /* the lookup joins the fetch that start() began */
  mamd_oauth_keys_start (keys);
  mamd_oauth_keys_start (keys);
  lookup_run (keys, kid, &lookup);
  g_assert_no_error (lookup.error);
  g_assert_cmpstr (lookup.key->kid, ==, kid);
  g_assert_cmpstr (lookup.key->issuer, ==, fx->issuer);
  g_assert_nonnull (lookup.jwks);
  g_assert_true (mamd_jwks_lookup (lookup.jwks, kid) == lookup.key);
  g_assert_cmpuint (mamd_oauth_keys_get_n_fetches (keys), ==, 2);
  g_assert_cmpuint (idp_count (fx, DISCOVERY_PATH), ==, 1);
  g_assert_cmpuint (idp_count (fx, JWKS_PATH), ==, 1);
  g_assert_cmpstr (mamd_oauth_keys_get_token_endpoint (keys), ==, fx->token_endpoint);

  /* cached: no further request */
  lookup_run (keys, kid, &second);
  g_assert_no_error (second.error);
  g_assert_cmpuint (idp_count (fx, NULL), ==, 2);
  after = mamd_oauth_keys_describe (keys);
  g_assert_true (g_str_has_prefix (after, "keys: 1 (fetched "));

  /* the first unknown kid refetches the JWKS once (a scheduled fetch does
   * not start the cool-down, so a key rotated in just now is found); the
   * fresh keys lack it */
  lookup_run (keys, "no-such-kid", &second);
  g_assert_error (second.error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_assert_true (g_str_has_prefix (second.error->message, "signature: unknown key id"));
  g_assert_cmpuint (idp_count (fx, JWKS_PATH), ==, 2);
  g_assert_cmpuint (idp_count (fx, NULL), ==, 3);
  lookup_clear (&second);

  /* another unknown kid while the cool-down holds: no request at all */
  lookup_run (keys, "another-kid", &second);
  g_assert_error (second.error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_assert_cmpuint (idp_count (fx, NULL), ==, 3);

  mamd_oauth_keys_stop (keys);
  lookup_clear (&lookup);
  lookup_clear (&second);
}

/* Reads the kid out of a token's header the way the plugin does. */
static char *
token_kid (const char *token)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (token, &error);

  g_assert_no_error (error);
  return g_strdup (mamd_jwt_get_kid (jwt));
}

static void
test_keys_rotation (Fixture *fx, gconstpointer data)
{
  /* no cool-down: each unknown kid may refetch (concurrent ones still share) */
  g_autoptr(MamdOauthKeys) keys = mamd_oauth_keys_new (fx->http, fx->discovery_url, 3600, 0);
  g_autofree char *old_kid = g_strdup (mamd_idp_server_get_current_kid (fx->idp));
  g_autofree char *token = NULL;
  g_autofree char *new_kid = NULL;
  g_autoptr(MamdJwt) jwt = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(GError) error = NULL;
  MamdJwtPolicy policy = { 0 };
  Lookup lookup = { 0 };

  lookup_run (keys, old_kid, &lookup);
  g_assert_no_error (lookup.error);
  g_assert_cmpuint (idp_count (fx, JWKS_PATH), ==, 1);

  mamd_idp_server_rotate_key (fx->idp);
  token = mamd_idp_server_mint (fx->idp, TENANT, CLIENT, "access_as_user", USER_OID, "ann", 600);
  new_kid = token_kid (token);
  g_assert_cmpstr (new_kid, !=, old_kid);

  lookup_run (keys, new_kid, &lookup);
  g_assert_no_error (lookup.error);
  g_assert_cmpstr (lookup.key->kid, ==, new_kid);
  /* one refetch, of the JWKS only */
  g_assert_cmpuint (idp_count (fx, JWKS_PATH), ==, 2);
  g_assert_cmpuint (idp_count (fx, DISCOVERY_PATH), ==, 1);

  /* the found key verifies the token signed after the rotation */
  jwt = mamd_jwt_parse (token, &error);
  g_assert_no_error (error);
  policy.issuer = fx->issuer;
  policy.tenant_id = TENANT;
  policy.client_id = CLIENT;
  policy.required_scope = "access_as_user";
  policy.now = g_get_real_time () / G_USEC_PER_SEC;
  policy.skew = 300;
  identity = mamd_jwt_verify (jwt, lookup.key, &policy, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, USER_OID);

  /* the previous key stays published and cached */
  lookup_run (keys, old_kid, &lookup);
  g_assert_no_error (lookup.error);
  g_assert_cmpuint (idp_count (fx, JWKS_PATH), ==, 2);

  /* a second rotation retires it: gone from the provider after a refetch */
  mamd_idp_server_rotate_key (fx->idp);
  lookup_run (keys, mamd_idp_server_get_current_kid (fx->idp), &lookup);
  g_assert_no_error (lookup.error);
  lookup_run (keys, old_kid, &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  lookup_clear (&lookup);
}

#define STORM 100

static void
test_keys_unknown_kid_storm (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdOauthKeys) keys = mamd_oauth_keys_new (fx->http, fx->discovery_url, 3600, 300);
  g_autofree Lookup *storm = g_new0 (Lookup, STORM);
  Lookup good = { 0 };

  for (guint round = 0; round < 2; round++)
    {
      /* all issued before the main loop runs: they are concurrent */
      for (guint i = 0; i < STORM; i++)
        {
          g_autofree char *kid = g_strdup_printf ("forged-%u-%08x", i, g_random_int ());
          lookup_start (keys, kid, &storm[i]);
        }
      lookup_start (keys, mamd_idp_server_get_current_kid (fx->idp), &good);
      for (guint i = 0; i < STORM; i++)
        iterate_until (&storm[i].done);
      iterate_until (&good.done);

      for (guint i = 0; i < STORM; i++)
        {
          g_assert_error (storm[i].error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
          lookup_clear (&storm[i]);
        }
      g_assert_no_error (good.error);
      /* one discovery and one JWKS fetch for both rounds together */
      g_assert_cmpuint (idp_count (fx, JWKS_PATH), ==, 1);
      g_assert_cmpuint (idp_count (fx, DISCOVERY_PATH), ==, 1);
      g_assert_cmpuint (mamd_oauth_keys_get_n_fetches (keys), ==, 2);
    }
  lookup_clear (&good);
}

static void
test_keys_provider_down (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdOauthKeys) keys = mamd_oauth_keys_new (fx->http, fx->discovery_url, 3600, 1);
  g_autoptr(MamdOauthKeys) cold = mamd_oauth_keys_new (fx->http, fx->discovery_url, 3600, 1);
  g_autofree char *kid = g_strdup (mamd_idp_server_get_current_kid (fx->idp));
  g_autofree char *state = NULL;
  Lookup lookup = { 0 };
  guint requests;

  lookup_run (keys, kid, &lookup);
  g_assert_no_error (lookup.error);
  mamd_idp_server_set_down (fx->idp, TRUE);
  requests = idp_count (fx, NULL);

  /* known kid: from the cache, no request */
  lookup_run (keys, kid, &lookup);
  g_assert_no_error (lookup.error);
  g_assert_cmpuint (idp_count (fx, NULL), ==, requests);

  /* unknown kid after the cool-down: one attempt, which fails */
  let_time_pass (1);
  lookup_run (keys, "rotated-while-down", &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_nonnull (strstr (lookup.error->message, "503"));
  g_assert_cmpuint (idp_count (fx, NULL), ==, requests + 1);
  state = mamd_oauth_keys_describe (keys);
  g_assert_nonnull (strstr (state, "keys: 1"));
  g_assert_nonnull (strstr (state, "last refresh failed"));

  /* the last good keys still serve */
  lookup_run (keys, kid, &lookup);
  g_assert_no_error (lookup.error);

  /* within the cool-down: no attempt, still retryable */
  lookup_run (keys, "rotated-while-down", &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_cmpuint (idp_count (fx, NULL), ==, requests + 1);

  /* after the cool-down a refetch is tried again */
  let_time_pass (1);
  lookup_run (keys, "rotated-while-down", &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_cmpuint (idp_count (fx, NULL), ==, requests + 2);

  /* never had keys: key unavailable, not invalid */
  lookup_run (cold, kid, &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);

  /* back up and rotated: found after the cool-down */
  mamd_idp_server_set_down (fx->idp, FALSE);
  mamd_idp_server_rotate_key (fx->idp);
  let_time_pass (1);
  lookup_run (keys, mamd_idp_server_get_current_kid (fx->idp), &lookup);
  g_assert_no_error (lookup.error);
  g_clear_pointer (&state, g_free);
  state = mamd_oauth_keys_describe (keys);
  g_assert_true (g_str_has_prefix (state, "keys: 2 (fetched "));
  g_assert_null (strstr (state, "failed"));
  lookup_clear (&lookup);
}

static gboolean
record_tick (gpointer data)
{
  guint *tick = data;

  *tick = ++order_counter;
  return G_SOURCE_REMOVE;
}

static void
test_keys_slow_provider (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdOauthKeys) keys = mamd_oauth_keys_new (fx->http, fx->discovery_url, 3600, 0);
  g_autofree char *cached_kid = g_strdup (mamd_idp_server_get_current_kid (fx->idp));
  Lookup slow = { 0 }, fast = { 0 };
  guint tick = 0;

  lookup_run (keys, cached_kid, &fast);
  g_assert_no_error (fast.error);

  /* the provider now takes 2 s; a new kid needs it */
  mamd_idp_server_rotate_key (fx->idp);
  mamd_idp_server_set_delay (fx->idp, 2000);
  lookup_start (keys, mamd_idp_server_get_current_kid (fx->idp), &slow);
  g_timeout_add (50, record_tick, &tick);
  lookup_start (keys, cached_kid, &fast);

  iterate_until (&slow.done);
  g_assert_no_error (slow.error);
  g_assert_no_error (fast.error);
  /* the cached lookup and an unrelated timer both ran while the fetch was
   * in flight: the main loop was never blocked */
  g_assert_true (fast.done);
  g_assert_cmpuint (tick, !=, 0);
  g_assert_cmpuint (fast.order, <, slow.order);
  g_assert_cmpuint (tick, <, slow.order);
  lookup_clear (&slow);
  lookup_clear (&fast);
}

/* ---- MAM service permission ---- */

static void
count_changed (MamdOauthPermission *permission, gpointer user_data)
{
  guint *changed = user_data;

  (*changed)++;
}

/* A check in flight holds a reference on the permission object: it is done
 * when only ours is left. */
static void
wait_check (MamdOauthPermission *permission)
{
  while (G_OBJECT (permission)->ref_count > 1)
    g_main_context_iteration (NULL, TRUE);
}

static MamdOauthPermission *
permission_new (Fixture *fx, const char *endpoint, const char *secret, guint *changed)
{
  MamdOauthPermission *permission;

  permission = mamd_oauth_permission_new (fx->http, endpoint, CLIENT, secret, MAM_SCOPE, 3600);
  g_signal_connect (permission, "changed", G_CALLBACK (count_changed), changed);
  return permission;
}

static void
test_permission_granted (Fixture *fx, gconstpointer data)
{
  guint changed = 0;
  g_autoptr(MamdOauthPermission) permission = permission_new (fx, fx->token_endpoint, SECRET,
                                                              &changed);
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;

  g_assert_cmpint (mamd_oauth_permission_get_state (permission), ==,
                   MAMD_OAUTH_PERMISSION_UNKNOWN);
  mamd_oauth_permission_start (permission);
  wait_check (permission);
  g_assert_cmpint (mamd_oauth_permission_get_state (permission), ==,
                   MAMD_OAUTH_PERMISSION_GRANTED);
  g_assert_cmpuint (changed, ==, 1);
  g_assert_true (mamd_oauth_permission_check_gate (permission, &error));
  g_assert_no_error (error);
  state = mamd_oauth_permission_describe (permission);
  g_assert_true (g_str_has_prefix (state, "granted (checked "));

  /* the same answer again: no signal */
  mamd_oauth_permission_check_now (permission);
  wait_check (permission);
  g_assert_cmpuint (idp_count (fx, TOKEN_PATH), ==, 2);
  g_assert_cmpuint (changed, ==, 1);
  mamd_oauth_permission_stop (permission);
}

static void
test_permission_missing (Fixture *fx, gconstpointer data)
{
  guint changed = 0;
  g_autoptr(MamdOauthPermission) permission = permission_new (fx, fx->token_endpoint, SECRET,
                                                              &changed);
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;

  mamd_idp_server_set_token_error (fx->idp, "AADSTS650057");
  mamd_oauth_permission_check_now (permission);
  wait_check (permission);
  g_assert_cmpint (mamd_oauth_permission_get_state (permission), ==,
                   MAMD_OAUTH_PERMISSION_MISSING);
  g_assert_cmpuint (changed, ==, 1);
  g_assert_false (mamd_oauth_permission_check_gate (permission, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE);
  g_assert_nonnull (strstr (error->message, "AADSTS650057"));
  g_assert_nonnull (strstr (error->message, MAM_SCOPE));
  g_assert_nonnull (strstr (error->message, "admin consent"));
  g_clear_error (&error);
  state = mamd_oauth_permission_describe (permission);
  g_assert_true (g_str_has_prefix (state, "AADSTS650057: "));

  /* the provider goes down: that says nothing about consent, the gate
   * stays closed and the failure is reported */
  mamd_idp_server_set_down (fx->idp, TRUE);
  mamd_oauth_permission_check_now (permission);
  wait_check (permission);
  g_assert_cmpint (mamd_oauth_permission_get_state (permission), ==,
                   MAMD_OAUTH_PERMISSION_MISSING);
  g_assert_false (mamd_oauth_permission_check_gate (permission, &error));
  g_clear_error (&error);
  g_clear_pointer (&state, g_free);
  state = mamd_oauth_permission_describe (permission);
  g_assert_nonnull (strstr (state, "last check failed"));
  g_assert_cmpuint (changed, ==, 1);

  /* back, with an answer about the secret itself (expired): that says
   * nothing about consent either */
  mamd_idp_server_set_down (fx->idp, FALSE);
  mamd_idp_server_set_token_error (fx->idp, "AADSTS7000222");
  mamd_oauth_permission_check_now (permission);
  wait_check (permission);
  g_assert_cmpint (mamd_oauth_permission_get_state (permission), ==,
                   MAMD_OAUTH_PERMISSION_MISSING);
  g_assert_false (mamd_oauth_permission_check_gate (permission, NULL));
  g_clear_pointer (&state, g_free);
  state = mamd_oauth_permission_describe (permission);
  g_assert_nonnull (strstr (state, "last check failed: AADSTS7000222: "));
  g_assert_cmpuint (changed, ==, 1);

  /* consent granted: the gate opens */
  mamd_idp_server_set_down (fx->idp, FALSE);
  mamd_idp_server_set_token_error (fx->idp, NULL);
  mamd_oauth_permission_check_now (permission);
  wait_check (permission);
  g_assert_cmpint (mamd_oauth_permission_get_state (permission), ==,
                   MAMD_OAUTH_PERMISSION_GRANTED);
  g_assert_true (mamd_oauth_permission_check_gate (permission, &error));
  g_assert_cmpuint (changed, ==, 2);
}

static void
test_permission_other_errors (Fixture *fx, gconstpointer data)
{
  guint changed = 0;
  g_autoptr(MamdOauthPermission) wrong = permission_new (fx, fx->token_endpoint, "Wrong-Secret-1",
                                                         &changed);
  g_autoptr(MamdOauthPermission) expired = NULL;
  g_autoptr(MamdOauthPermission) echo = NULL;
  g_autoptr(MamdOauthPermission) echo_value = NULL;
  g_autoptr(MamdOauthPermission) unreachable = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;
  g_autofree char *echo_url = g_strconcat (fx->rogue_base, "/echo-token", NULL);
  g_autofree char *echo_value_url = g_strconcat (fx->rogue_base, "/echo-value", NULL);
  g_autofree char *lower = NULL;

  /* wrong secret: reported with its code, the gate stays open */
  mamd_oauth_permission_check_now (wrong);
  wait_check (wrong);
  g_assert_cmpint (mamd_oauth_permission_get_state (wrong), ==, MAMD_OAUTH_PERMISSION_ERROR);
  g_assert_cmpuint (changed, ==, 1);
  g_assert_true (mamd_oauth_permission_check_gate (wrong, &error));
  g_assert_no_error (error);
  state = mamd_oauth_permission_describe (wrong);
  g_assert_true (g_str_has_prefix (state, "AADSTS7000215: Invalid client secret provided."));
  /* only the first line of the description */
  g_assert_null (strstr (state, "Trace ID"));
  g_assert_null (strstr (state, "Wrong-Secret-1"));
  g_clear_pointer (&state, g_free);

  /* another AADSTS error from the provider */
  expired = permission_new (fx, fx->token_endpoint, SECRET, &changed);
  mamd_idp_server_set_token_error (fx->idp, "AADSTS7000222");
  mamd_oauth_permission_check_now (expired);
  wait_check (expired);
  g_assert_cmpint (mamd_oauth_permission_get_state (expired), ==, MAMD_OAUTH_PERMISSION_ERROR);
  g_assert_true (mamd_oauth_permission_check_gate (expired, NULL));
  state = mamd_oauth_permission_describe (expired);
  g_assert_true (g_str_has_prefix (state, "AADSTS7000222: "));
  g_clear_pointer (&state, g_free);

  /* a provider that echoes the form back: a description that talks about
   * client_secret is withheld, whatever the encoding of the secret */
  echo = permission_new (fx, echo_url, ODD_SECRET, &changed);
  mamd_oauth_permission_check_now (echo);
  wait_check (echo);
  g_assert_cmpint (mamd_oauth_permission_get_state (echo), ==, MAMD_OAUTH_PERMISSION_ERROR);
  state = mamd_oauth_permission_describe (echo);
  g_assert_true (g_str_has_prefix (state, "AADSTS7000215: "));
  g_assert_nonnull (strstr (state, "withheld"));
  g_assert_null (strstr (state, "client_id="));
  g_clear_pointer (&state, g_free);

  /* one that echoes just the value as sent (form-encoded, hex in lower
   * case): scrubbed as well as the raw secret would be */
  echo_value = permission_new (fx, echo_value_url, ODD_SECRET, &changed);
  mamd_oauth_permission_check_now (echo_value);
  wait_check (echo_value);
  state = mamd_oauth_permission_describe (echo_value);
  g_assert_true (g_str_has_prefix (state, "AADSTS7000215: got [secret] and [secret]"));
  lower = g_ascii_strdown (state, -1);
  g_assert_null (strstr (lower, "%2bc%2f"));
  g_clear_pointer (&state, g_free);

  /* nothing listening: a transport failure, the gate stays open */
  unreachable = permission_new (fx, "http://127.0.0.1:1/t/oauth2/v2.0/token", SECRET, &changed);
  mamd_oauth_permission_check_now (unreachable);
  wait_check (unreachable);
  g_assert_cmpint (mamd_oauth_permission_get_state (unreachable), ==,
                   MAMD_OAUTH_PERMISSION_ERROR);
  g_assert_true (mamd_oauth_permission_check_gate (unreachable, NULL));
  state = mamd_oauth_permission_describe (unreachable);
  g_assert_null (strstr (state, SECRET));

  g_assert_false (secret_logged);
}

/* ---- main ---- */

static GLogWriterOutput
log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  for (gsize i = 0; i < n_fields; i++)
    {
      g_autofree char *lower = NULL;

      if (fields[i].length >= 0)
        continue;
      lower = g_ascii_strdown (fields[i].value, -1);
      if (strstr (fields[i].value, SECRET) != NULL || strstr (fields[i].value, ODD_SECRET) != NULL
          || strstr (lower, ODD_SECRET_FORM_LOWER) != NULL)
        secret_logged = TRUE;
    }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_writer, NULL, NULL);

  ADD ("/mamd/oauth/keys/http/check-url", test_http_check_url);
  ADD ("/mamd/oauth/keys/http/https-required", test_http_https_required);
  ADD ("/mamd/oauth/keys/http/redirect", test_http_redirect);
  ADD ("/mamd/oauth/keys/http/oversize", test_http_oversize);
  ADD ("/mamd/oauth/keys/http/status-timeout-cancel", test_http_status_timeout_cancel);
  ADD ("/mamd/oauth/keys/discovery", test_keys_discovery);
  ADD ("/mamd/oauth/keys/rotation", test_keys_rotation);
  ADD ("/mamd/oauth/keys/unknown-kid-storm", test_keys_unknown_kid_storm);
  ADD ("/mamd/oauth/keys/provider-down", test_keys_provider_down);
  ADD ("/mamd/oauth/keys/slow-provider", test_keys_slow_provider);
  ADD ("/mamd/oauth/keys/permission/granted", test_permission_granted);
  ADD ("/mamd/oauth/keys/permission/missing", test_permission_missing);
  ADD ("/mamd/oauth/keys/permission/other-errors", test_permission_other_errors);
  return g_test_run ();
}
