/*
 * MamdIdpServer: a loopback OpenID provider that answers like Microsoft
 * Entra ID does (document shapes, error bodies with AADSTS codes, keys
 * carrying their issuer), with real keys and real signatures, so that the
 * plugin is exercised exactly as in production. Development and tests only.
 */
#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "mamd-idp-mint.h"
#include "mamd-idp-server.h"
#include "mamd-plugin.h"

#define MAM_SERVICE_SCOPE "https://msmamservice.api.application/.default"
#define MAM_SERVICE_RESOURCE "https://msmamservice.api.application"
#define MAM_SERVICE_APP_ID "0a5f63c0-b750-4f38-a71c-4fc0d58b89e2"
#define RSA_BITS 2048
#define APP_TOKEN_LIFETIME 3599

struct _MamdIdpServer {
  GObject parent_instance;
  SoupServer *server;
  char *authority;

  EVP_PKEY *current_key;
  char *current_kid;
  EVP_PKEY *previous_key; /* still published until the next rotation */
  char *previous_kid;
  guint serial;

  GHashTable *clients;    /* "<tid> <client id>" -> secret */
  gboolean down;
  gboolean holding;
  char *hold_suffix;      /* NULL: hold every path */
  char *token_error;      /* "AADSTS<n>" or NULL */
  GHashTable *counts;     /* path -> count */
  GPtrArray *held;        /* Held*, requests paused until mamd_idp_server_release () */
};

G_DEFINE_TYPE (MamdIdpServer, mamd_idp_server, G_TYPE_OBJECT)

typedef struct {
  SoupServerMessage *msg;
  char *path;
} Held;

static void
held_free (gpointer data)
{
  Held *held = data;

  g_object_unref (held->msg);
  g_free (held->path);
  g_free (held);
}

/* ---- answers ---- */

static void
respond_json (SoupServerMessage *msg, guint status, JsonObject *object)
{
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  gsize len = 0;
  char *data;

  json_node_set_object (node, object);
  json_generator_set_root (generator, node);
  data = json_generator_to_data (generator, &len);
  soup_server_message_set_status (msg, status, NULL);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Cache-Control",
                                "no-store");
  soup_server_message_set_response (msg, "application/json; charset=utf-8", SOUP_MEMORY_TAKE,
                                    data, len);
}

static JsonArray *
string_array (const char *first, ...) G_GNUC_NULL_TERMINATED;

static JsonArray *
string_array (const char *first, ...)
{
  JsonArray *array = json_array_new ();
  va_list args;

  va_start (args, first);
  for (const char *s = first; s != NULL; s = va_arg (args, const char *))
    json_array_add_string_element (array, s);
  va_end (args);
  return array;
}

static char *
issuer_for (MamdIdpServer *self, const char *tenant_id)
{
  return g_strdup_printf ("%s/%s/v2.0", self->authority, tenant_id);
}

static void
serve_discovery (MamdIdpServer *self, SoupServerMessage *msg, const char *tenant_id)
{
  g_autoptr(JsonObject) doc = json_object_new ();
  g_autofree char *issuer = issuer_for (self, tenant_id);
  g_autofree char *token = g_strdup_printf ("%s/%s/oauth2/v2.0/token", self->authority,
                                            tenant_id);
  g_autofree char *authorize = g_strdup_printf ("%s/%s/oauth2/v2.0/authorize", self->authority,
                                                tenant_id);
  g_autofree char *keys = g_strdup_printf ("%s/%s/discovery/v2.0/keys", self->authority,
                                           tenant_id);

  json_object_set_string_member (doc, "token_endpoint", token);
  json_object_set_array_member (doc, "token_endpoint_auth_methods_supported",
                                string_array ("client_secret_post", "private_key_jwt",
                                              "client_secret_basic", NULL));
  json_object_set_string_member (doc, "jwks_uri", keys);
  json_object_set_array_member (doc, "response_modes_supported",
                                string_array ("query", "fragment", "form_post", NULL));
  json_object_set_array_member (doc, "subject_types_supported", string_array ("pairwise", NULL));
  json_object_set_array_member (doc, "id_token_signing_alg_values_supported",
                                string_array ("RS256", NULL));
  json_object_set_array_member (doc, "response_types_supported",
                                string_array ("code", "id_token", "code id_token",
                                              "id_token token", NULL));
  json_object_set_array_member (doc, "scopes_supported",
                                string_array ("openid", "profile", "email", "offline_access",
                                              NULL));
  json_object_set_string_member (doc, "issuer", issuer);
  json_object_set_boolean_member (doc, "request_uri_parameter_supported", FALSE);
  json_object_set_string_member (doc, "authorization_endpoint", authorize);
  json_object_set_array_member (doc, "claims_supported",
                                string_array ("sub", "iss", "aud", "exp", "iat", "nbf", "tid",
                                              "oid", "ver", "preferred_username", "name",
                                              NULL));
  respond_json (msg, SOUP_STATUS_OK, doc);
}

static void
serve_keys (MamdIdpServer *self, SoupServerMessage *msg, const char *tenant_id)
{
  g_autoptr(JsonObject) doc = json_object_new ();
  g_autofree char *issuer = issuer_for (self, tenant_id);
  g_autoptr(JsonObject) current = NULL;
  g_autoptr(JsonObject) previous = NULL;
  JsonArray *keys;

  current = mamd_idp_key_to_jwk (self->current_key, self->current_kid, issuer);
  if (self->previous_key != NULL)
    previous = mamd_idp_key_to_jwk (self->previous_key, self->previous_kid, issuer);
  if (current == NULL || (self->previous_key != NULL && previous == NULL))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
      return;
    }
  keys = json_array_new ();
  json_array_add_object_element (keys, g_steal_pointer (&current));
  if (previous != NULL)
    json_array_add_object_element (keys, g_steal_pointer (&previous));
  json_object_set_array_member (doc, "keys", keys);
  respond_json (msg, SOUP_STATUS_OK, doc);
}

/* An error answer shaped like Entra's: the description's first line holds
 * the code and the message, then trace lines. Entra answers a failed client
 * authentication (invalid_client: AADSTS7000215, 7000218, 7000222) with 401,
 * most other errors with 400. */
static void
respond_aadsts (MamdIdpServer *self, SoupServerMessage *msg, guint status, const char *error,
                gint64 code, const char *message)
{
  g_autoptr(JsonObject) doc = json_object_new ();
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *timestamp = g_date_time_format (now, "%Y-%m-%d %H:%M:%SZ");
  g_autofree char *trace = g_uuid_string_random ();
  g_autofree char *correlation = g_uuid_string_random ();
  g_autofree char *description = NULL;
  g_autofree char *uri = NULL;
  JsonArray *codes = json_array_new ();

  description = g_strdup_printf ("AADSTS%" G_GINT64_FORMAT ": %s\r\nTrace ID: %s\r\n"
                                 "Correlation ID: %s\r\nTimestamp: %s", code, message, trace,
                                 correlation, timestamp);
  uri = g_strdup_printf ("%s/error?code=%" G_GINT64_FORMAT, self->authority, code);
  json_array_add_int_element (codes, code);
  json_object_set_string_member (doc, "error", error);
  json_object_set_string_member (doc, "error_description", description);
  json_object_set_array_member (doc, "error_codes", codes);
  json_object_set_string_member (doc, "timestamp", timestamp);
  json_object_set_string_member (doc, "trace_id", trace);
  json_object_set_string_member (doc, "correlation_id", correlation);
  json_object_set_string_member (doc, "error_uri", uri);
  respond_json (msg, status, doc);
}

/* An app-only token for the MAM service, signed like any other. */
static char *
mint_app_token (MamdIdpServer *self, const char *tenant_id, const char *client_id)
{
  g_autoptr(JsonObject) header = json_object_new ();
  g_autoptr(JsonObject) claims = json_object_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *header_json = NULL;
  g_autofree char *claims_json = NULL;
  g_autofree char *issuer = issuer_for (self, tenant_id);
  g_autofree char *oid = g_uuid_string_random ();
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  char *token;

  json_object_set_string_member (header, "typ", "JWT");
  json_object_set_string_member (header, "alg", "RS256");
  json_object_set_string_member (header, "kid", self->current_kid);
  json_object_set_string_member (claims, "aud", MAM_SERVICE_RESOURCE);
  json_object_set_string_member (claims, "iss", issuer);
  json_object_set_int_member (claims, "iat", now);
  json_object_set_int_member (claims, "nbf", now);
  json_object_set_int_member (claims, "exp", now + APP_TOKEN_LIFETIME);
  json_object_set_string_member (claims, "azp", client_id);
  json_object_set_string_member (claims, "azpacr", "1");
  json_object_set_string_member (claims, "idtyp", "app");
  json_object_set_string_member (claims, "oid", oid);
  json_object_set_string_member (claims, "sub", oid);
  json_object_set_string_member (claims, "tid", tenant_id);
  json_object_set_string_member (claims, "ver", "2.0");

  node = json_node_init_object (json_node_alloc (), header);
  header_json = json_to_string (node, FALSE);
  json_node_set_object (node, claims);
  claims_json = json_to_string (node, FALSE);
  token = mamd_idp_sign_compact (header_json, claims_json, "RS256", self->current_key, NULL, 0,
                                 &error);
  if (token == NULL)
    g_warning ("cannot sign an app token: %s", error->message);
  return token;
}

static void
respond_injected_error (MamdIdpServer *self, SoupServerMessage *msg, const char *client_id)
{
  gint64 code = g_ascii_strtoll (self->token_error + strlen ("AADSTS"), NULL, 10);
  g_autofree char *message = NULL;

  if (code == 650057)
    {
      message = g_strdup_printf ("Invalid resource. The client has requested access to a resource "
                                 "which is not listed in the requested permissions in the "
                                 "client's application registration. Client app ID: %s(mamd). "
                                 "Resource value from request: %s. Resource app ID: %s. List of "
                                 "valid resources from app registration: "
                                 "00000003-0000-0000-c000-000000000000.",
                                 client_id, MAM_SERVICE_RESOURCE, MAM_SERVICE_APP_ID);
      respond_aadsts (self, msg, SOUP_STATUS_BAD_REQUEST, "invalid_client", code, message);
      return;
    }
  if (code == 7000215)
    {
      message = g_strdup_printf ("Invalid client secret provided. Ensure the secret being sent "
                                 "in the request is the client secret value, not the client "
                                 "secret ID, for a secret added to app '%s'.", client_id);
      respond_aadsts (self, msg, SOUP_STATUS_UNAUTHORIZED, "invalid_client", code, message);
      return;
    }
  if (code == 7000222)
    {
      message = g_strdup_printf ("The provided client secret keys for app '%s' are expired. "
                                 "Visit the Azure portal to create new keys for your app.",
                                 client_id);
      respond_aadsts (self, msg, SOUP_STATUS_UNAUTHORIZED, "invalid_client", code, message);
      return;
    }
  respond_aadsts (self, msg, SOUP_STATUS_BAD_REQUEST, "invalid_request", code,
                  "Injected failure of the developer identity provider.");
}

static char *
form_component_decode (const char *text, gsize len)
{
  g_autofree char *copy = g_strndup (text, len);

  g_strdelimit (copy, "+", ' ');
  return g_uri_unescape_string (copy, NULL);
}

/* client_secret_basic, which the discovery document advertises as Entra's
 * does (RFC 6749 2.3.1): "Basic " base64 (form-encoded client id ":"
 * form-encoded secret). FALSE when the request carries no such header. */
static gboolean
basic_credentials (SoupMessageHeaders *headers, char **client_id, char **client_secret)
{
  const char *value = soup_message_headers_get_one (headers, "Authorization");
  g_autofree guchar *decoded = NULL;
  g_autofree char *text = NULL;
  const char *colon;
  gsize len = 0;

  if (value == NULL || g_ascii_strncasecmp (value, "Basic ", strlen ("Basic ")) != 0)
    return FALSE;
  decoded = g_base64_decode (value + strlen ("Basic "), &len);
  text = g_strndup ((const char *) decoded, len);
  colon = strchr (text, ':');
  if (colon == NULL)
    return FALSE;
  *client_id = form_component_decode (text, (gsize) (colon - text));
  *client_secret = form_component_decode (colon + 1, strlen (colon + 1));
  return *client_id != NULL && *client_secret != NULL;
}

static void
serve_token (MamdIdpServer *self, SoupServerMessage *msg, const char *tenant_id)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *content_type = soup_message_headers_get_content_type (headers, NULL);
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autofree char *text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  g_autoptr(GHashTable) form = NULL;
  g_autofree char *client_key = NULL;
  g_autofree char *token = NULL;
  g_autoptr(JsonObject) doc = NULL;
  g_autofree char *basic_id = NULL;
  g_autofree char *basic_secret = NULL;
  const char *grant_type, *client_id, *client_secret, *scope, *registered;

  if (g_strcmp0 (content_type, "application/x-www-form-urlencoded") != 0)
    {
      respond_aadsts (self, msg, SOUP_STATUS_BAD_REQUEST, "invalid_request", 900144,
                      "The request body must contain the following parameter: 'grant_type'.");
      return;
    }
  form = soup_form_decode (text);
  grant_type = g_hash_table_lookup (form, "grant_type");
  client_id = g_hash_table_lookup (form, "client_id");
  client_secret = g_hash_table_lookup (form, "client_secret");
  scope = g_hash_table_lookup (form, "scope");
  if (basic_credentials (headers, &basic_id, &basic_secret))
    {
      client_id = basic_id;
      client_secret = basic_secret;
    }
  if (g_strcmp0 (grant_type, "client_credentials") != 0)
    {
      respond_aadsts (self, msg, SOUP_STATUS_BAD_REQUEST, "unsupported_grant_type", 70003,
                      "The app requested an unsupported grant type.");
      return;
    }
  client_key = g_strdup_printf ("%s %s", tenant_id, client_id != NULL ? client_id : "");
  registered = g_hash_table_lookup (self->clients, client_key);
  if (client_id == NULL || registered == NULL)
    {
      g_autofree char *message = NULL;

      message = g_strdup_printf ("Application with identifier '%s' was not found in the "
                                 "directory '%s'.", client_id != NULL ? client_id : "",
                                 tenant_id);
      respond_aadsts (self, msg, SOUP_STATUS_BAD_REQUEST, "unauthorized_client", 700016,
                      message);
      return;
    }
  if (client_secret == NULL)
    {
      respond_aadsts (self, msg, SOUP_STATUS_UNAUTHORIZED, "invalid_client", 7000218,
                      "The request body must contain the following parameter: "
                      "'client_assertion' or 'client_secret'.");
      return;
    }
  if (strcmp (client_secret, registered) != 0)
    {
      g_autofree char *saved = g_steal_pointer (&self->token_error);

      self->token_error = g_strdup ("AADSTS7000215");
      respond_injected_error (self, msg, client_id);
      g_free (self->token_error);
      self->token_error = g_steal_pointer (&saved);
      return;
    }
  if (g_strcmp0 (scope, MAM_SERVICE_SCOPE) != 0)
    {
      respond_aadsts (self, msg, SOUP_STATUS_BAD_REQUEST, "invalid_scope", 1002012,
                      "The provided value for scope is not valid. Client credential flows "
                      "must have a scope value with /.default suffixed to the resource "
                      "identifier (application ID URI).");
      return;
    }
  if (self->token_error != NULL)
    {
      respond_injected_error (self, msg, client_id);
      return;
    }
  token = mint_app_token (self, tenant_id, client_id);
  if (token == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
      return;
    }
  doc = json_object_new ();
  json_object_set_string_member (doc, "token_type", "Bearer");
  json_object_set_int_member (doc, "expires_in", APP_TOKEN_LIFETIME);
  json_object_set_int_member (doc, "ext_expires_in", APP_TOKEN_LIFETIME);
  json_object_set_string_member (doc, "access_token", token);
  respond_json (msg, SOUP_STATUS_OK, doc);
}

/* ---- dispatch ---- */

static gboolean
valid_tenant (const char *tenant_id, gsize len)
{
  if (len == 0 || len > 64)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (tenant_id[i]) && tenant_id[i] != '-' && tenant_id[i] != '.' &&
        tenant_id[i] != '_')
      return FALSE;
  return TRUE;
}

static void
respond (MamdIdpServer *self, SoupServerMessage *msg, const char *path)
{
  const char *method = soup_server_message_get_method (msg);
  const char *slash;
  g_autofree char *tenant_id = NULL;
  const char *rest;

  if (self->down)
    {
      g_autoptr(JsonObject) doc = json_object_new ();

      json_object_set_string_member (doc, "error", "temporarily_unavailable");
      respond_json (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, doc);
      return;
    }
  slash = path[0] == '/' ? strchr (path + 1, '/') : NULL;
  if (slash == NULL || !valid_tenant (path + 1, (gsize) (slash - path - 1)))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  tenant_id = g_strndup (path + 1, (gsize) (slash - path - 1));
  rest = slash + 1;
  if (strcmp (rest, "v2.0/.well-known/openid-configuration") == 0 &&
      strcmp (method, SOUP_METHOD_GET) == 0)
    serve_discovery (self, msg, tenant_id);
  else if (strcmp (rest, "discovery/v2.0/keys") == 0 && strcmp (method, SOUP_METHOD_GET) == 0)
    serve_keys (self, msg, tenant_id);
  else if (strcmp (rest, "oauth2/v2.0/token") == 0 && strcmp (method, SOUP_METHOD_POST) == 0)
    serve_token (self, msg, tenant_id);
  else
    soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

static void
handle_request (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer user_data)
{
  MamdIdpServer *self = user_data;
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (self->counts, path));
  Held *held;

  g_hash_table_insert (self->counts, g_strdup (path), GUINT_TO_POINTER (count + 1));
  if (!self->holding || (self->hold_suffix != NULL && !g_str_has_suffix (path, self->hold_suffix)))
    {
      respond (self, msg, path);
      return;
    }
  held = g_new0 (Held, 1);
  held->msg = g_object_ref (msg);
  held->path = g_strdup (path);
  g_ptr_array_add (self->held, held);
  soup_server_message_pause (msg);
}

/* ---- public API ---- */

static gboolean
new_key (MamdIdpServer *self, GError **error)
{
  EVP_PKEY *key = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, RSA_BITS, error);
  guint32 tag = g_random_int ();

  if (key == NULL)
    return FALSE;
  if (self->previous_key != NULL)
    EVP_PKEY_free (self->previous_key);
  g_free (self->previous_kid);
  self->previous_key = g_steal_pointer (&self->current_key);
  self->previous_kid = g_steal_pointer (&self->current_kid);
  self->current_key = key;
  self->current_kid = g_strdup_printf ("mamd-dev-%u-%08x", ++self->serial, tag);
  return TRUE;
}

MamdIdpServer *
mamd_idp_server_new (guint port, GError **error)
{
  return mamd_idp_server_new_full (port, NULL, error);
}

MamdIdpServer *
mamd_idp_server_new_full (guint port, GTlsCertificate *certificate, GError **error)
{
  g_autoptr(MamdIdpServer) self = g_object_new (MAMD_TYPE_IDP_SERVER, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = NULL;
  SoupServerListenOptions options = 0;
  GSList *listeners;
  int bound = -1;

  g_return_val_if_fail (port <= G_MAXUINT16, NULL);
  g_return_val_if_fail (certificate == NULL || G_IS_TLS_CERTIFICATE (certificate), NULL);

  if (!new_key (self, error))
    return NULL;
  if (certificate != NULL)
    {
      soup_server_set_tls_certificate (self->server, certificate);
      options = SOUP_SERVER_LISTEN_HTTPS;
    }
  address = g_inet_socket_address_new (loopback, (guint16) port);
  if (!soup_server_listen (self->server, address, options, error))
    {
      g_prefix_error (error, "cannot listen on 127.0.0.1:%u: ", port);
      return NULL;
    }
  /* not soup_server_get_uris (): libsoup 3.2 leaks an address in it */
  listeners = soup_server_get_listeners (self->server);
  if (listeners != NULL)
    {
      g_autoptr(GSocketAddress) local = g_socket_get_local_address (listeners->data, NULL);

      if (G_IS_INET_SOCKET_ADDRESS (local))
        bound = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
    }
  g_slist_free (listeners);
  if (bound <= 0)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_FAILED, "no listening port");
      return NULL;
    }
  self->authority = g_strdup_printf ("%s://127.0.0.1:%d", certificate != NULL ? "https" : "http",
                                     bound);
  return g_steal_pointer (&self);
}

const char *
mamd_idp_server_get_authority (MamdIdpServer *self)
{
  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), NULL);
  return self->authority;
}

void
mamd_idp_server_add_client (MamdIdpServer *self, const char *tenant_id, const char *client_id,
                            const char *client_secret)
{
  g_return_if_fail (MAMD_IS_IDP_SERVER (self));
  g_return_if_fail (tenant_id != NULL && client_id != NULL && client_secret != NULL);

  g_hash_table_insert (self->clients, g_strdup_printf ("%s %s", tenant_id, client_id),
                       g_strdup (client_secret));
}

void
mamd_idp_server_rotate_key (MamdIdpServer *self)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (MAMD_IS_IDP_SERVER (self));
  if (!new_key (self, &error))
    g_warning ("cannot rotate the signing key: %s", error->message);
}

gboolean
mamd_idp_server_rotate_key_full (MamdIdpServer *self, GError **error)
{
  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!new_key (self, error))
    {
      g_prefix_error (error, "cannot rotate the signing key: ");
      return FALSE;
    }
  return TRUE;
}

const char *
mamd_idp_server_get_current_kid (MamdIdpServer *self)
{
  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), NULL);
  return self->current_kid;
}

const char *
mamd_idp_server_get_previous_kid (MamdIdpServer *self)
{
  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), NULL);
  return self->previous_kid;
}

EVP_PKEY *
mamd_idp_server_get_current_key (MamdIdpServer *self)
{
  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), NULL);
  return self->current_key;
}

char *
mamd_idp_server_mint (MamdIdpServer *self, const char *tenant_id, const char *client_id,
                      const char *scope, const char *oid, const char *user, gint64 lifetime)
{
  g_autoptr(GError) error = NULL;
  char *token;

  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), NULL);

  token = mamd_idp_mint_access_token (self->current_key, self->current_kid, self->authority,
                                      tenant_id, client_id, scope, oid, user,
                                      g_get_real_time () / G_USEC_PER_SEC, lifetime, &error);
  if (token == NULL)
    g_warning ("cannot mint a token: %s", error->message);
  return token;
}

char *
mamd_idp_server_mint_custom (MamdIdpServer *self, const char *tenant_id, const char *client_id,
                             const char *scope, const char *oid, const char *user,
                             gint64 lifetime, JsonObject *header_set, JsonObject *set,
                             const char *const *without, GError **error)
{
  static const char *const removable[] = {
    "aud", "iss", "iat", "nbf", "exp", "oid", "preferred_username", "scp", "tid", "ver", NULL
  };
  g_autoptr(JsonObject) claims = NULL;
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), NULL);
  g_return_val_if_fail (tenant_id != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  claims = mamd_idp_access_token_claims (self->authority, tenant_id, client_id, scope, oid, user,
                                         g_get_real_time () / G_USEC_PER_SEC, lifetime);
  for (guint i = 0; without != NULL && without[i] != NULL; i++)
    {
      /* a silently ignored removal would hide a typo in a test case */
      if (!g_strv_contains (removable, without[i]))
        {
          g_autofree char *names = g_strjoinv (" ", (char **) removable);

          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                       "cannot remove claim \"%s\": the token has no such claim (it has: %s)",
                       without[i], names);
          return NULL;
        }
      if (json_object_has_member (claims, without[i]))
        json_object_remove_member (claims, without[i]);
    }
  if (set != NULL)
    {
      json_object_iter_init (&iter, set);
      while (json_object_iter_next (&iter, &name, &value))
        json_object_set_member (claims, name, json_node_copy (value));
    }
  return mamd_idp_mint_claims_full (self->current_key, self->current_kid, header_set, claims,
                                    error);
}

void
mamd_idp_server_set_down (MamdIdpServer *self, gboolean down)
{
  g_return_if_fail (MAMD_IS_IDP_SERVER (self));
  self->down = down;
}

void
mamd_idp_server_hold (MamdIdpServer *self, const char *path_suffix)
{
  g_return_if_fail (MAMD_IS_IDP_SERVER (self));

  self->holding = TRUE;
  g_free (self->hold_suffix);
  self->hold_suffix = g_strdup (path_suffix);
}

void
mamd_idp_server_release (MamdIdpServer *self)
{
  g_autoptr(GPtrArray) held = NULL;

  g_return_if_fail (MAMD_IS_IDP_SERVER (self));

  self->holding = FALSE;
  g_clear_pointer (&self->hold_suffix, g_free);
  held = g_steal_pointer (&self->held);
  self->held = g_ptr_array_new_with_free_func (held_free);
  for (guint i = 0; i < held->len; i++)
    {
      Held *h = g_ptr_array_index (held, i);

      /* a client that gave up meanwhile just finds its connection closed */
      respond (self, h->msg, h->path);
      soup_server_message_unpause (h->msg);
    }
}

guint
mamd_idp_server_get_n_held (MamdIdpServer *self)
{
  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), 0);
  return self->held->len;
}

void
mamd_idp_server_set_token_error (MamdIdpServer *self, const char *aadsts_code)
{
  g_return_if_fail (MAMD_IS_IDP_SERVER (self));
  g_return_if_fail (aadsts_code == NULL || (g_str_has_prefix (aadsts_code, "AADSTS") &&
                                            g_ascii_isdigit (aadsts_code[6])));

  g_free (self->token_error);
  self->token_error = g_strdup (aadsts_code);
}

guint
mamd_idp_server_get_request_count (MamdIdpServer *self, const char *path_suffix)
{
  GHashTableIter iter;
  gpointer path, count;
  guint total = 0;

  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), 0);

  g_hash_table_iter_init (&iter, self->counts);
  while (g_hash_table_iter_next (&iter, &path, &count))
    if (path_suffix == NULL || g_str_has_suffix (path, path_suffix))
      total += GPOINTER_TO_UINT (count);
  return total;
}

SoupServer *
mamd_idp_server_get_soup_server (MamdIdpServer *self)
{
  g_return_val_if_fail (MAMD_IS_IDP_SERVER (self), NULL);
  return self->server;
}

static void
mamd_idp_server_dispose (GObject *object)
{
  MamdIdpServer *self = MAMD_IDP_SERVER (object);

  if (self->server != NULL)
    soup_server_disconnect (self->server);
  g_clear_pointer (&self->held, g_ptr_array_unref);
  g_clear_object (&self->server);
  G_OBJECT_CLASS (mamd_idp_server_parent_class)->dispose (object);
}

static void
mamd_idp_server_finalize (GObject *object)
{
  MamdIdpServer *self = MAMD_IDP_SERVER (object);

  g_free (self->authority);
  if (self->current_key != NULL)
    EVP_PKEY_free (self->current_key);
  if (self->previous_key != NULL)
    EVP_PKEY_free (self->previous_key);
  g_free (self->current_kid);
  g_free (self->previous_kid);
  g_hash_table_unref (self->clients);
  g_hash_table_unref (self->counts);
  g_free (self->token_error);
  g_free (self->hold_suffix);
  G_OBJECT_CLASS (mamd_idp_server_parent_class)->finalize (object);
}

static void
mamd_idp_server_class_init (MamdIdpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = mamd_idp_server_dispose;
  object_class->finalize = mamd_idp_server_finalize;
}

static void
mamd_idp_server_init (MamdIdpServer *self)
{
  self->server = soup_server_new ("server-header", "mamd-dev-idp ", NULL);
  soup_server_add_handler (self->server, NULL, handle_request, self, NULL);
  self->clients = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->held = g_ptr_array_new_with_free_func (held_free);
}
