/*
 * mamd-test-oauth-keys-server.c: the fixture shared by test-oauth-keys.c and
 * test-oauth-http.c (the identity provider and the misbehaving server on
 * 127.0.0.1) and their key-lookup helpers; see the header.
 */
#include "config.h"

#include <string.h>

#include "mamd-idp-mint.h"
#include "mamd-test-oauth-keys-server.h"

guint order_counter;

/* ---- the misbehaving server ---- */

/* /ok answers "hello"; /same redirects to /ok, /loop to itself, /other-port
 * to the identity provider, /other-host to localhost on its own port, and
 * /post-302 answers a 302 to /ok. /big (CAP + 1), /exact (CAP) and /chunked
 * (640 KiB, no Content-Length) are bodies of zeros; /hang never answers.
 * /echo-token and /echo-value put the form posted to them, or its
 * client_secret, into an AADSTS error; /consent-missing answers AADSTS650057
 * whatever the scope asked for. .../.well-known/openid-configuration
 * is discovery for the misbehaving server, with the jwks_uri on the
 * identity provider under /cross/ and the provider's issuer under
 * /wrong-issuer/; the JWKS it names is what rogue_make_jwks() made (a 404
 * before). Anything else is a 404. Every request is counted. */
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
      g_autoptr(GBytes) form =
        soup_message_body_flatten (soup_server_message_get_request_body (msg));
      g_autofree char *text = g_strndup (g_bytes_get_data (form, NULL), g_bytes_get_size (form));
      g_autofree char *doc = g_strdup_printf ("{\"error\":\"invalid_client\","
                                              "\"error_description\":\"AADSTS7000215: got %s\","
                                              "\"error_codes\":[7000215]}", text);
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, doc,
                                        strlen (doc));
    }
  else if (strcmp (path, "/consent-missing") == 0)
    {
      static const char doc[] = "{\"error\":\"invalid_client\",\"error_description\":"
                                "\"AADSTS650057: Invalid resource.\",\"error_codes\":[650057]}";

      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, doc,
                                        strlen (doc));
    }
  else if (strcmp (path, "/" TENANT JWKS_PATH) == 0 && fx->rogue_jwks != NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                        fx->rogue_jwks, strlen (fx->rogue_jwks));
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

void
rogue_make_jwks (Fixture *fx)
{
  g_autoptr(JsonArray) keys = json_array_new ();
  g_autoptr(JsonObject) root = json_object_new ();
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  EVP_PKEY *strong = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, NULL);
  EVP_PKEY *weak = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 1024, NULL);

  g_assert_nonnull (strong);
  g_assert_nonnull (weak);
  json_array_add_object_element (keys, mamd_idp_key_to_jwk (strong, "strong", NULL));
  json_array_add_object_element (keys, mamd_idp_key_to_jwk (weak, "weak", NULL));
  EVP_PKEY_free (strong);
  EVP_PKEY_free (weak);
  json_object_set_array_member (root, "keys", g_steal_pointer (&keys));
  json_node_set_object (node, root);
  g_free (fx->rogue_jwks);
  fx->rogue_jwks = json_to_string (node, FALSE);
}

guint
rogue_count (Fixture *fx, const char *path)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (fx->rogue_counts, path));
}

guint
idp_count (Fixture *fx, const char *suffix)
{
  return mamd_idp_server_get_request_count (fx->idp, suffix);
}

void
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

void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  soup_server_disconnect (fx->rogue);
  g_clear_object (&fx->rogue);
  g_hash_table_unref (fx->rogue_counts);
  g_free (fx->rogue_base);
  g_free (fx->rogue_jwks);
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

void
iterate_until (const gboolean *flag)
{
  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
}

void
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

void
lookup_start (MamdOauthKeys *keys, const char *kid, Lookup *lookup)
{
  lookup_clear (lookup);
  mamd_oauth_keys_lookup_async (keys, kid, NULL, lookup_done, lookup);
}

void
lookup_run (MamdOauthKeys *keys, const char *kid, Lookup *lookup)
{
  lookup_start (keys, kid, lookup);
  iterate_until (&lookup->done);
}
