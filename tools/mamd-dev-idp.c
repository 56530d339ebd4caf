/*
 * mamd-dev-idp: a loopback OpenID provider for development and the demo.
 * It publishes discovery, a JWKS and a token endpoint for every tenant
 * (tools/idp/mamd-idp-server.h) and mints real RS256 access tokens with its
 * current key, so the office365 plugin can be tried without Entra.
 *
 *   mamd-dev-idp serve [--port N] [--tenant T --client C --secret S]...
 *                      [--token-error AADSTS650057] [--ready-file F]
 *   mamd-dev-idp mint --authority URL --tenant T --client C --scope S
 *                     --oid O [--user U] [--lifetime S]
 *
 * Never for production: anyone who can reach its port can mint tokens, so
 * it listens on 127.0.0.1 only and answers minting to loopback peers only.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>
#include <libsoup/soup.h>

#include "mamd-idp-server.h"

#define MINT_PATH "/mamd-dev/mint"
#define MINT_LIFETIME_MAX (24 * 3600)
#define TOKEN_MAX_LEN (64 * 1024)

static int
usage (void)
{
  g_printerr ("usage: mamd-dev-idp serve [--port N] [--tenant T --client C --secret S]...\n"
              "                          [--token-error AADSTSnnn] [--ready-file FILE]\n"
              "       mamd-dev-idp mint --authority URL --tenant T --client C --scope S\n"
              "                         --oid O [--user U] [--lifetime SECONDS]\n");
  return 2;
}

/* ---- serve ---- */

static gboolean
remote_is_loopback (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  GInetAddress *address;

  if (remote == NULL || !G_IS_INET_SOCKET_ADDRESS (remote))
    return FALSE;
  address = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  return g_inet_address_get_is_loopback (address);
}

static void
answer_text (SoupServerMessage *msg, guint status, const char *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY, text,
                                    strlen (text));
}

/* POST /mamd-dev/mint, form tenant client scope oid [user] [lifetime]:
 * a token signed with the server's current key. */
static void
mint_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
              gpointer user_data)
{
  MamdIdpServer *idp = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GHashTable) form = NULL;
  g_autofree char *token = NULL;
  g_autofree char *text = NULL;
  const char *tenant, *client, *scope, *oid, *user, *lifetime_text;
  guint64 lifetime = 3600;

  if (!remote_is_loopback (msg))
    {
      answer_text (msg, SOUP_STATUS_FORBIDDEN, "minting is for loopback peers only\n");
      return;
    }
  if (g_strcmp0 (soup_server_message_get_method (msg), SOUP_METHOD_POST) != 0)
    {
      answer_text (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "use POST with a form\n");
      return;
    }
  bytes = soup_message_body_flatten (body);
  text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  form = soup_form_decode (text);
  tenant = g_hash_table_lookup (form, "tenant");
  client = g_hash_table_lookup (form, "client");
  scope = g_hash_table_lookup (form, "scope");
  oid = g_hash_table_lookup (form, "oid");
  user = g_hash_table_lookup (form, "user");
  lifetime_text = g_hash_table_lookup (form, "lifetime");
  if (tenant == NULL || client == NULL || scope == NULL || oid == NULL)
    {
      answer_text (msg, SOUP_STATUS_BAD_REQUEST, "tenant, client, scope and oid are required\n");
      return;
    }
  if (lifetime_text != NULL
      && !g_ascii_string_to_unsigned (lifetime_text, 10, 1, MINT_LIFETIME_MAX, &lifetime, NULL))
    {
      answer_text (msg, SOUP_STATUS_BAD_REQUEST, "lifetime: 1 to 86400 seconds\n");
      return;
    }
  token = mamd_idp_server_mint (idp, tenant, client, scope, oid, user, (gint64) lifetime);
  if (token == NULL)
    {
      answer_text (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "minting failed\n");
      return;
    }
  answer_text (msg, SOUP_STATUS_OK, token);
}

static gboolean
on_quit_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

static int
cmd_serve (int argc, char **argv)
{
  int port = 0;
  g_auto(GStrv) tenants = NULL;
  g_auto(GStrv) clients = NULL;
  g_auto(GStrv) secrets = NULL;
  g_autofree char *token_error = NULL;
  g_autofree char *ready_file = NULL;
  const GOptionEntry entries[] = {
    { "port", 0, 0, G_OPTION_ARG_INT, &port, "Port on 127.0.0.1 (default: any free one)", "N" },
    { "tenant", 0, 0, G_OPTION_ARG_STRING_ARRAY, &tenants,
      "Tenant of a confidential client (repeat with --client and --secret)", "GUID" },
    { "client", 0, 0, G_OPTION_ARG_STRING_ARRAY, &clients, "Client id", "GUID" },
    { "secret", 0, 0, G_OPTION_ARG_STRING_ARRAY, &secrets, "Client secret", "SECRET" },
    { "token-error", 0, 0, G_OPTION_ARG_STRING, &token_error,
      "Make the token endpoint answer this AADSTS error, e.g. AADSTS650057", "CODE" },
    { "ready-file", 0, 0, G_OPTION_ARG_FILENAME, &ready_file,
      "Write the authority to FILE once listening", "FILE" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- serve a loopback OpenID provider");
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autofree char *line = NULL;
  guint n_clients;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return 2;
    }
  n_clients = tenants != NULL ? g_strv_length (tenants) : 0;
  if (argc > 1 || port < 0 || port > 65535
      || n_clients != (clients != NULL ? g_strv_length (clients) : 0)
      || n_clients != (secrets != NULL ? g_strv_length (secrets) : 0))
    {
      g_printerr ("mamd-dev-idp: give --tenant, --client and --secret together, once per "
                  "client, and a --port from 0 to 65535\n");
      return 2;
    }

  idp = mamd_idp_server_new ((guint) port, &error);
  if (idp == NULL)
    {
      g_printerr ("mamd-dev-idp: cannot listen: %s\n", error->message);
      return 1;
    }
  for (guint i = 0; i < n_clients; i++)
    mamd_idp_server_add_client (idp, tenants[i], clients[i], secrets[i]);
  if (token_error != NULL)
    mamd_idp_server_set_token_error (idp, token_error);
  soup_server_add_handler (mamd_idp_server_get_soup_server (idp), MINT_PATH, mint_handler,
                           idp, NULL);

  line = g_strdup_printf ("%s\n", mamd_idp_server_get_authority (idp));
  if (ready_file != NULL
      && !g_file_set_contents_full (ready_file, line, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                    &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return 1;
    }
  fputs (line, stdout);
  fflush (stdout);

  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, on_quit_signal, loop);
  g_unix_signal_add (SIGINT, on_quit_signal, loop);
  g_main_loop_run (loop);
  return 0;
}

/* ---- mint ---- */

/* The mint endpoint hands out tokens: only ever ask a loopback server. */
static gboolean
check_loopback_authority (const char *authority, GError **error)
{
  g_autoptr(GUri) uri = g_uri_parse (authority, G_URI_FLAGS_NONE, error);
  g_autoptr(GInetAddress) address = NULL;
  const char *host;

  if (uri == NULL)
    return FALSE;
  host = g_uri_get_host (uri);
  if (host != NULL)
    address = g_inet_address_new_from_string (host);
  if (g_strcmp0 (g_uri_get_scheme (uri), "http") != 0
      || (g_strcmp0 (host, "localhost") != 0
          && (address == NULL || !g_inet_address_get_is_loopback (address))))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s is not a loopback http:// authority of mamd-dev-idp serve", authority);
      return FALSE;
    }
  return TRUE;
}

static int
cmd_mint (int argc, char **argv)
{
  g_autofree char *authority = NULL, *tenant = NULL, *client = NULL, *scope = NULL;
  g_autofree char *oid = NULL, *user = NULL;
  int lifetime = 3600;
  const GOptionEntry entries[] = {
    { "authority", 0, 0, G_OPTION_ARG_STRING, &authority,
      "What mamd-dev-idp serve printed", "URL" },
    { "tenant", 0, 0, G_OPTION_ARG_STRING, &tenant, "tid claim", "GUID" },
    { "client", 0, 0, G_OPTION_ARG_STRING, &client, "aud claim (the app's client id)", "GUID" },
    { "scope", 0, 0, G_OPTION_ARG_STRING, &scope, "scp claim, e.g. login.mattermost", "S" },
    { "oid", 0, 0, G_OPTION_ARG_STRING, &oid, "oid claim (the user's objectId)", "GUID" },
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "preferred_username claim", "NAME" },
    { "lifetime", 0, 0, G_OPTION_ARG_INT, &lifetime, "Seconds until exp (default 3600)", "S" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- mint an access token");
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupSession) session = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GHashTable) form = NULL;
  g_autofree char *url = NULL;
  g_autofree char *lifetime_text = NULL;
  g_autofree char *text = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return 2;
    }
  if (argc > 1 || authority == NULL || tenant == NULL || client == NULL || scope == NULL
      || oid == NULL || lifetime < 1 || lifetime > MINT_LIFETIME_MAX)
    {
      g_printerr ("mamd-dev-idp: mint needs --authority, --tenant, --client, --scope and "
                  "--oid, and a --lifetime from 1 to %d\n", MINT_LIFETIME_MAX);
      return 2;
    }
  if (!check_loopback_authority (authority, &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return 2;
    }

  lifetime_text = g_strdup_printf ("%d", lifetime);
  form = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (form, "tenant", tenant);
  g_hash_table_insert (form, "client", client);
  g_hash_table_insert (form, "scope", scope);
  g_hash_table_insert (form, "oid", oid);
  g_hash_table_insert (form, "lifetime", lifetime_text);
  if (user != NULL)
    g_hash_table_insert (form, "user", user);

  url = g_strconcat (authority, MINT_PATH, NULL);
  msg = soup_message_new_from_encoded_form (SOUP_METHOD_POST, url,
                                            soup_form_encode_hash (form));
  if (msg == NULL)
    {
      g_printerr ("mamd-dev-idp: %s is not a valid URL\n", url);
      return 2;
    }
  session = soup_session_new_with_options ("timeout", 10, NULL);
  body = soup_session_send_and_read (session, msg, NULL, &error);
  if (body == NULL)
    {
      g_printerr ("mamd-dev-idp: cannot reach %s: %s; is mamd-dev-idp serve running?\n", url,
                  error->message);
      return 1;
    }
  if (g_bytes_get_size (body) > TOKEN_MAX_LEN)
    {
      g_printerr ("mamd-dev-idp: %s answered more than %d bytes\n", url, TOKEN_MAX_LEN);
      return 1;
    }
  text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  if (soup_message_get_status (msg) != SOUP_STATUS_OK)
    {
      g_printerr ("mamd-dev-idp: %s answered %u: %s", url, soup_message_get_status (msg), text);
      return 1;
    }
  printf ("%s\n", text);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    return usage ();
  if (g_strcmp0 (argv[1], "serve") == 0)
    return cmd_serve (argc - 1, argv + 1);
  if (g_strcmp0 (argv[1], "mint") == 0)
    return cmd_mint (argc - 1, argv + 1);
  if (g_strcmp0 (argv[1], "--help") == 0 || g_strcmp0 (argv[1], "-h") == 0)
    {
      usage ();
      return 0;
    }
  return usage ();
}
