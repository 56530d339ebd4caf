/*
 * mamd-dev-idp: a loopback OpenID provider for development and the demo.
 * It publishes discovery, a JWKS and a token endpoint for every tenant
 * (tools/idp/mamd-idp-server.h) and mints real RS256 access tokens with its
 * current key, so the office365 plugin can be tried without Entra.
 *
 *   mamd-dev-idp serve [--port N] [--tenant T --client C --secret S]...
 *                      [--token-error AADSTS650057] [--ready-file F]
 *                      [--rotate-every SECONDS]
 *   mamd-dev-idp mint --authority URL --tenant T [--client C] [--scope S]
 *                     [--oid O] [--user U] [--lifetime S]
 *                     [--claim NAME=JSON]... [--without NAME]...
 *                     [--header NAME=JSON]...
 *   mamd-dev-idp rotate --authority URL
 *
 * mint starts from a valid v2 access token (ver, iss, aud, tid, oid, scp,
 * iat, nbf, exp, preferred_username with --user), removes every --without
 * claim, then sets every --claim to its JSON value, so tokens the plugin
 * must refuse (v1, app-only, no oid, another aud or iss, expired ...) can
 * be minted too. --client, --scope and --oid may be left out when their
 * claim (aud, scp, oid) is named by a --claim or --without. --header sets a
 * member of the header (alg, kid, jku, crit ...); the signature stays RS256
 * with the current key, so the validator's refusals of those can be seen.
 *
 * Keys rotate like Entra's: the new key signs from then on and is published
 * first in the JWKS, the previous one stays published (for tokens already
 * minted) until the next rotation. serve --rotate-every rotates on a timer,
 * rotate (POST /mamd-dev/rotate) on demand; both log the new kid.
 *
 * Exit status: 0 done, 1 failure (server unreachable, error answer), 2 usage
 * error (including a request the server refused as invalid).
 *
 * Never for production: anyone who can reach its port can mint tokens, so
 * it listens on 127.0.0.1 only and answers minting and rotation only to
 * loopback peers that name it by a loopback Host and send no Origin (no web
 * page, even one that rebinds its DNS name to 127.0.0.1).
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>
#include <libsoup/soup.h>

#include "mamd-idp-server.h"
#include "mamd-json.h"
#include "mamd-plugin.h"

#define MINT_PATH "/mamd-dev/mint"
#define ROTATE_PATH "/mamd-dev/rotate"
#define MINT_LIFETIME_MAX (24 * 3600)
#define ROTATE_EVERY_MAX (30 * 24 * 3600)
#define TOKEN_MAX_LEN (64 * 1024)
#define REQUEST_MAX_LEN (64 * 1024)
#define CLAIM_NAME_MAX 256
#define CLAIM_VALUE_MAX (16 * 1024)
#define CLAIM_DEPTH_MAX 16
#define CLAIM_CHANGES_MAX 64
#define KID_MAX_LEN 256

static int
usage (void)
{
  g_printerr ("usage: mamd-dev-idp serve [--port N] [--tenant T --client C --secret S]...\n"
              "                          [--token-error AADSTSnnn] [--ready-file FILE]\n"
              "                          [--rotate-every SECONDS]\n"
              "       mamd-dev-idp mint --authority URL --tenant T [--client C] [--scope S]\n"
              "                         [--oid O] [--user U] [--lifetime SECONDS]\n"
              "                         [--claim NAME=JSON]... [--without NAME]...\n"
              "                         [--header NAME=JSON]...\n"
              "       mamd-dev-idp rotate --authority URL\n"
              "mint: --claim sets claim NAME to a JSON value (quote strings: ver='\"1.0\"'),\n"
              "--without removes a claim; --client, --scope and --oid may be left out when\n"
              "aud, scp or oid is named by a --claim or --without. --header sets a header\n"
              "member (alg, kid ...); the signature stays RS256 with the current key.\n");
  return 2;
}

/* ---- chosen claims (shared by the mint command and the mint endpoint) ---- */

typedef struct {
  JsonObject *set;    /* claim name -> JSON value */
  GPtrArray *without; /* claim names, NULL-terminated */
  JsonObject *header; /* header member name -> JSON value */
} ClaimChanges;

static void
claim_changes_init (ClaimChanges *changes)
{
  changes->set = json_object_new ();
  changes->without = g_ptr_array_new_null_terminated (0, g_free, TRUE);
  changes->header = json_object_new ();
}

static void
claim_changes_clear (ClaimChanges *changes)
{
  g_clear_pointer (&changes->set, json_object_unref);
  g_clear_pointer (&changes->without, g_ptr_array_unref);
  g_clear_pointer (&changes->header, json_object_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ClaimChanges, claim_changes_clear)

static gboolean
claim_changes_removes (ClaimChanges *changes, const char *name)
{
  for (guint i = 0; i < changes->without->len; i++)
    if (strcmp (g_ptr_array_index (changes->without, i), name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
claim_changes_names (ClaimChanges *changes, const char *name)
{
  return json_object_has_member (changes->set, name) || claim_changes_removes (changes, name);
}

/* Any JSON member name would do, but one that cannot be typed or printed
 * back in an error message is a mistake. */
static gboolean
check_claim_name (ClaimChanges *changes, const char *name, gboolean removing, gboolean header,
                  GError **error)
{
  const char *what = header ? "header member" : "claim";
  const char *bad = NULL;

  if (name[0] == '\0')
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "the %s name is empty", what);
      return FALSE;
    }
  if (strlen (name) > CLAIM_NAME_MAX || !g_utf8_validate (name, -1, &bad))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "the %s name must be UTF-8 of at most %d bytes", what, CLAIM_NAME_MAX);
      return FALSE;
    }
  for (const char *p = name; *p != '\0'; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      {
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                     "the %s name holds a control character", what);
        return FALSE;
      }
  if (json_object_get_size (changes->set) + changes->without->len
      + json_object_get_size (changes->header) >= CLAIM_CHANGES_MAX)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "more than %d claims or header members set or removed", CLAIM_CHANGES_MAX);
      return FALSE;
    }
  if (header)
    {
      if (!json_object_has_member (changes->header, name))
        return TRUE;
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "header member \"%s\" is set twice", name);
      return FALSE;
    }
  if (claim_changes_names (changes, name))
    {
      gboolean was_removed = claim_changes_removes (changes, name);

      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "claim \"%s\" is %s", name,
                   was_removed == removing ? (removing ? "removed twice" : "set twice")
                                           : (removing ? "both set and removed"
                                                       : "both removed and set"));
      return FALSE;
    }
  return TRUE;
}

/* @assignment is NAME=JSON, split at the first '='; the value must be
 * exactly one strict JSON value (nothing after it but whitespace). A claim,
 * or with @header a member of the header. */
static gboolean
claim_changes_add_claim (ClaimChanges *changes, const char *assignment, gboolean header,
                         GError **error)
{
  const char *what = header ? "header member" : "claim";
  const char *eq = strchr (assignment, '=');
  g_autofree char *name = NULL;
  g_autoptr(JsonNode) value = NULL;
  g_autoptr(GError) local_error = NULL;

  if (eq == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "expected NAME=JSON, e.g. ver=\"1.0\" or roles=[\"Mam.Read\"]");
      return FALSE;
    }
  name = g_strndup (assignment, (gsize) (eq - assignment));
  if (!check_claim_name (changes, name, FALSE, header, error))
    return FALSE;
  value = mamd_json_parse_strict (eq + 1, strlen (eq + 1), CLAIM_VALUE_MAX, CLAIM_DEPTH_MAX,
                                  &local_error);
  if (value == NULL)
    {
      /* the usual slip: the shell ate the quotes of a string */
      if (g_ascii_isalpha (eq[1]))
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                     "the value of %s \"%s\" is not one JSON value (%s); a string needs "
                     "JSON quotes, e.g. '%s=\"%s\"'", what, name, local_error->message, name,
                     eq + 1);
      else
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                     "the value of %s \"%s\" is not one JSON value (%s)", what, name,
                     local_error->message);
      return FALSE;
    }
  json_object_set_member (header ? changes->header : changes->set, name,
                          g_steal_pointer (&value));
  return TRUE;
}

static gboolean
claim_changes_add_without (ClaimChanges *changes, const char *name, GError **error)
{
  if (!check_claim_name (changes, name, TRUE, FALSE, error))
    return FALSE;
  g_ptr_array_add (changes->without, g_strdup (name));
  return TRUE;
}

/* --tenant always (it makes iss and tid); --client, --scope and --oid
 * unless the claim they make is named by a --claim or --without. @cli
 * picks the wording: options of the command, or fields of the form. */
static gboolean
check_mint_identity (const char *tenant, const char *client, const char *scope, const char *oid,
                     ClaimChanges *changes, gboolean cli, GError **error)
{
  const struct {
    const char *value;
    const char *option;
    const char *claim;
  } needed[] = {
    { client, "client", "aud" },
    { scope, "scope", "scp" },
    { oid, "oid", "oid" },
  };

  if (tenant == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "%s is required",
                   cli ? "mint needs --tenant, which" : "field tenant");
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (needed); i++)
    {
      if (needed[i].value != NULL || claim_changes_names (changes, needed[i].claim))
        continue;
      if (cli)
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                     "mint needs --%s, or a --claim or --without for the %s claim",
                     needed[i].option, needed[i].claim);
      else
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                     "field %s is required unless a claim or without field names %s",
                     needed[i].option, needed[i].claim);
      return FALSE;
    }
  return TRUE;
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

/* Whether @host (a Host header) names this server by a loopback name:
 * 127.0.0.1, [::1] or localhost, with the port @msg came in on. A web page
 * that rebinds its own DNS name to 127.0.0.1 still sends that name. */
static gboolean
host_is_loopback (SoupServerMessage *msg, const char *host)
{
  static const char *const names[] = { "127.0.0.1", "[::1]", "localhost" };
  GSocketAddress *local = soup_server_message_get_local_address (msg);
  guint16 port;

  if (host == NULL || local == NULL || !G_IS_INET_SOCKET_ADDRESS (local))
    return FALSE;
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      gsize len = strlen (names[i]);
      guint64 given = 0;

      if (g_ascii_strncasecmp (host, names[i], len) != 0)
        continue;
      if (host[len] == '\0')
        return port == 80;
      if (host[len] != ':'
          || !g_ascii_string_to_unsigned (host + len + 1, 10, 1, 65535, &given, NULL))
        return FALSE;
      return given == port;
    }
  return FALSE;
}

/* The guard of every developer-only endpoint (they hand out tokens and
 * change keys): a loopback peer, no web page (a browser sends Origin with
 * every cross-site POST) and a loopback Host (DNS rebinding). Answers 403
 * and returns FALSE when @msg fails it. */
static gboolean
dev_request_allowed (SoupServerMessage *msg, const char *what)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autofree char *text = NULL;

  if (!remote_is_loopback (msg))
    text = g_strdup_printf ("%s is for loopback peers only\n", what);
  else if (soup_message_headers_get_one (headers, "Origin") != NULL)
    text = g_strdup_printf ("%s is not for web pages\n", what);
  else if (!host_is_loopback (msg, soup_message_headers_get_one (headers, "Host")))
    text = g_strdup_printf ("%s needs a Host of 127.0.0.1, [::1] or localhost with this "
                            "server's port\n", what);
  if (text == NULL)
    return TRUE;
  answer_text (msg, SOUP_STATUS_FORBIDDEN, text);
  return FALSE;
}

static void
answer_error (SoupServerMessage *msg, guint status, const GError *error)
{
  g_autofree char *text = g_strdup_printf ("%s\n", error->message);

  answer_text (msg, status, text);
}

static char *
form_unescape (const char *text, gsize len, GError **error)
{
  g_autofree char *copy = g_strndup (text, len);
  g_autofree char *decoded = NULL;

  g_strdelimit (copy, "+", ' ');
  /* NULL for a bad escape or an escaped NUL */
  decoded = g_uri_unescape_string (copy, NULL);
  if (decoded == NULL || !g_utf8_validate (decoded, -1, NULL))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "the form is not valid UTF-8 application/x-www-form-urlencoded");
      return NULL;
    }
  return g_steal_pointer (&decoded);
}

/* Unlike soup_form_decode (), keeps every value of a repeated field:
 * returns name, value, name, value ... in order. */
static GPtrArray *
form_decode_all (GBytes *body, GError **error)
{
  gsize len = g_bytes_get_size (body);
  const char *data = g_bytes_get_data (body, NULL);
  g_autoptr(GPtrArray) fields = g_ptr_array_new_with_free_func (g_free);
  gsize start = 0;

  if (len > REQUEST_MAX_LEN || (len > 0 && memchr (data, '\0', len) != NULL))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "the form must be text of at most %d bytes", REQUEST_MAX_LEN);
      return NULL;
    }
  while (start < len)
    {
      const char *piece = data + start;
      const char *amp = memchr (piece, '&', len - start);
      gsize piece_len = amp != NULL ? (gsize) (amp - piece) : len - start;
      const char *eq = memchr (piece, '=', piece_len);
      gsize name_len = eq != NULL ? (gsize) (eq - piece) : piece_len;
      char *name, *value;

      start += piece_len + 1;
      if (piece_len == 0)
        continue;
      name = form_unescape (piece, name_len, error);
      if (name == NULL)
        return NULL;
      g_ptr_array_add (fields, name);
      value = eq != NULL ? form_unescape (eq + 1, piece_len - name_len - 1, error) : g_strdup ("");
      if (value == NULL)
        return NULL;
      g_ptr_array_add (fields, value);
    }
  return g_steal_pointer (&fields);
}

typedef struct {
  const char *tenant, *client, *scope, *oid, *user, *lifetime;
} MintForm;

/* Sorts the fields into @form (borrowed from @fields) and @changes. */
static gboolean
mint_form_read (GPtrArray *fields, MintForm *form, ClaimChanges *changes, GError **error)
{
  for (guint i = 0; i + 1 < fields->len; i += 2)
    {
      const char *name = g_ptr_array_index (fields, i);
      const char *value = g_ptr_array_index (fields, i + 1);
      const char **slot = NULL;

      if (strcmp (name, "claim") == 0 || strcmp (name, "header") == 0)
        {
          if (!claim_changes_add_claim (changes, value, strcmp (name, "header") == 0, error))
            return FALSE;
          continue;
        }
      if (strcmp (name, "without") == 0)
        {
          if (!claim_changes_add_without (changes, value, error))
            return FALSE;
          continue;
        }
      if (strcmp (name, "tenant") == 0)
        slot = &form->tenant;
      else if (strcmp (name, "client") == 0)
        slot = &form->client;
      else if (strcmp (name, "scope") == 0)
        slot = &form->scope;
      else if (strcmp (name, "oid") == 0)
        slot = &form->oid;
      else if (strcmp (name, "user") == 0)
        slot = &form->user;
      else if (strcmp (name, "lifetime") == 0)
        slot = &form->lifetime;
      if (slot == NULL || *slot != NULL)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                       slot == NULL ? "unknown field %s" : "field %s given twice", name);
          return FALSE;
        }
      *slot = value;
    }
  return TRUE;
}

/* POST /mamd-dev/mint, form tenant [client] [scope] [oid] [user] [lifetime]
 * [claim=NAME=JSON]... [without=NAME]... [header=NAME=JSON]...: a token
 * signed with the server's current key. */
static void
mint_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
              gpointer user_data)
{
  MamdIdpServer *idp = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GPtrArray) fields = NULL;
  g_auto(ClaimChanges) changes = { NULL, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *token = NULL;
  MintForm form = { NULL, NULL, NULL, NULL, NULL, NULL };
  guint64 lifetime = 3600;

  if (!dev_request_allowed (msg, "minting"))
    return;
  if (g_strcmp0 (soup_server_message_get_method (msg), SOUP_METHOD_POST) != 0)
    {
      answer_text (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "use POST with a form\n");
      return;
    }
  claim_changes_init (&changes);
  bytes = soup_message_body_flatten (body);
  fields = form_decode_all (bytes, &error);
  if (fields == NULL || !mint_form_read (fields, &form, &changes, &error)
      || !check_mint_identity (form.tenant, form.client, form.scope, form.oid, &changes, FALSE,
                               &error))
    {
      answer_error (msg, SOUP_STATUS_BAD_REQUEST, error);
      return;
    }
  if (form.lifetime != NULL
      && !g_ascii_string_to_unsigned (form.lifetime, 10, 1, MINT_LIFETIME_MAX, &lifetime, NULL))
    {
      answer_text (msg, SOUP_STATUS_BAD_REQUEST, "lifetime: 1 to 86400 seconds\n");
      return;
    }
  token = mamd_idp_server_mint_custom (idp, form.tenant, form.client, form.scope, form.oid,
                                       form.user, (gint64) lifetime, changes.header, changes.set,
                                       changes.without->len > 0
                                         ? (const char *const *) changes.without->pdata
                                         : NULL,
                                       &error);
  if (token == NULL)
    {
      if (g_error_matches (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS))
        answer_error (msg, SOUP_STATUS_BAD_REQUEST, error);
      else
        {
          g_warning ("cannot mint a token: %s", error->message);
          answer_text (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "minting failed\n");
        }
      return;
    }
  answer_text (msg, SOUP_STATUS_OK, token);
}

static gboolean
rotate_and_log (MamdIdpServer *idp, const char *why, GError **error)
{
  if (!mamd_idp_server_rotate_key_full (idp, error))
    return FALSE;
  g_message ("rotated the signing key %s: new kid %s, previous kid %s still published", why,
             mamd_idp_server_get_current_kid (idp), mamd_idp_server_get_previous_kid (idp));
  return TRUE;
}

/* POST /mamd-dev/rotate: a new signing key; answers its kid. */
static void
rotate_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer user_data)
{
  MamdIdpServer *idp = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  if (!dev_request_allowed (msg, "rotating"))
    return;
  if (g_strcmp0 (soup_server_message_get_method (msg), SOUP_METHOD_POST) != 0)
    {
      answer_text (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "use POST\n");
      return;
    }
  if (!rotate_and_log (idp, "on request", &error))
    {
      g_warning ("%s", error->message);
      answer_text (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "rotation failed\n");
      return;
    }
  text = g_strdup_printf ("%s\n", mamd_idp_server_get_current_kid (idp));
  answer_text (msg, SOUP_STATUS_OK, text);
}

static gboolean
on_rotate_timer (gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  if (!rotate_and_log (user_data, "on schedule", &error))
    g_warning ("%s", error->message);
  return G_SOURCE_CONTINUE;
}

/* "AADSTS" and its number, as Entra writes it. A mistyped code (650057
 * without the prefix) must be refused here: the library would only log a
 * critical and go on issuing tokens, not the error the developer asked for. */
static gboolean
valid_aadsts_code (const char *code)
{
  const char *digits;

  if (!g_str_has_prefix (code, "AADSTS"))
    return FALSE;
  digits = code + strlen ("AADSTS");
  if (*digits == '\0' || strlen (digits) > 9)
    return FALSE;
  for (const char *p = digits; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p))
      return FALSE;
  return TRUE;
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
  int rotate_every = -1;
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
    { "rotate-every", 0, 0, G_OPTION_ARG_INT, &rotate_every,
      "Rotate the signing key every SECONDS (default: only on request)", "SECONDS" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- serve a loopback OpenID provider");
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autofree char *line = NULL;
  guint n_clients;
  guint rotate_source = 0;

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
  if (rotate_every != -1 && (rotate_every < 1 || rotate_every > ROTATE_EVERY_MAX))
    {
      g_printerr ("mamd-dev-idp: --rotate-every takes 1 to %d seconds\n", ROTATE_EVERY_MAX);
      return 2;
    }
  if (token_error != NULL && !valid_aadsts_code (token_error))
    {
      g_printerr ("mamd-dev-idp: --token-error takes an AADSTS code such as AADSTS650057, "
                  "not %s\n", token_error);
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
  soup_server_add_handler (mamd_idp_server_get_soup_server (idp), ROTATE_PATH, rotate_handler,
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
  if (rotate_every > 0)
    rotate_source = g_timeout_add_seconds ((guint) rotate_every, on_rotate_timer, idp);
  g_main_loop_run (loop);
  if (rotate_source != 0)
    g_source_remove (rotate_source);
  return 0;
}

/* ---- mint and rotate: clients of the running server ---- */

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

static void
form_add (GString *form, const char *name, const char *value)
{
  g_autofree char *escaped = g_uri_escape_string (value, NULL, FALSE);

  g_string_append_printf (form, "%s%s=%s", form->len > 0 ? "&" : "", name, escaped);
}

/* POSTs @form to @authority@path and sets *answer to the text of a 200
 * answer. Returns the exit status: 0, 1 (unreachable, failed), 2 (the
 * server refused the request as invalid). */
static int
post_form (const char *authority, const char *path, const char *form, char **answer)
{
  g_autofree char *base = g_strdup (authority);
  g_autofree char *url = NULL;
  g_autoptr(SoupSession) session = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  guint status;

  while (g_str_has_suffix (base, "/"))
    base[strlen (base) - 1] = '\0';
  url = g_strconcat (base, path, NULL);
  msg = soup_message_new (SOUP_METHOD_POST, url);
  if (msg == NULL)
    {
      g_printerr ("mamd-dev-idp: %s is not a valid URL\n", url);
      return 2;
    }
  request = g_bytes_new (form, strlen (form));
  soup_message_set_request_body_from_bytes (msg, "application/x-www-form-urlencoded", request);
  session = soup_session_new_with_options ("timeout", 10, NULL);
  /* the server is on loopback: a proxy from the environment would get the
   * request (and the token in the answer), and cannot reach it anyway */
  soup_session_set_proxy_resolver (session, NULL);
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
  status = soup_message_get_status (msg);
  if (status != SOUP_STATUS_OK)
    {
      g_printerr ("mamd-dev-idp: %s answered %u: %s%s", url, status, text,
                  g_str_has_suffix (text, "\n") ? "" : "\n");
      return status == SOUP_STATUS_BAD_REQUEST ? 2 : 1;
    }
  *answer = g_steal_pointer (&text);
  return 0;
}

/* Checks what every client command needs: no stray argument, an authority
 * of a loopback server. */
static gboolean
check_client_args (int argc, char **argv, const char *command, const char *authority)
{
  g_autoptr(GError) error = NULL;

  if (argc > 1)
    {
      g_printerr ("mamd-dev-idp: %s: unexpected argument %s\n", command, argv[1]);
      return FALSE;
    }
  if (authority == NULL)
    {
      g_printerr ("mamd-dev-idp: %s needs --authority (what mamd-dev-idp serve printed)\n",
                  command);
      return FALSE;
    }
  if (!check_loopback_authority (authority, &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return FALSE;
    }
  return TRUE;
}

static int
cmd_mint (int argc, char **argv)
{
  g_autofree char *authority = NULL, *tenant = NULL, *client = NULL, *scope = NULL;
  g_autofree char *oid = NULL, *user = NULL;
  g_auto(GStrv) claims = NULL;
  g_auto(GStrv) without = NULL;
  g_auto(GStrv) headers = NULL;
  int lifetime = 3600;
  const GOptionEntry entries[] = {
    { "authority", 0, 0, G_OPTION_ARG_STRING, &authority,
      "What mamd-dev-idp serve printed", "URL" },
    { "tenant", 0, 0, G_OPTION_ARG_STRING, &tenant, "tid claim (and iss)", "GUID" },
    { "client", 0, 0, G_OPTION_ARG_STRING, &client, "aud claim (the app's client id)", "GUID" },
    { "scope", 0, 0, G_OPTION_ARG_STRING, &scope, "scp claim, e.g. login.mattermost", "S" },
    { "oid", 0, 0, G_OPTION_ARG_STRING, &oid, "oid claim (the user's objectId)", "GUID" },
    { "user", 0, 0, G_OPTION_ARG_STRING, &user, "preferred_username claim", "NAME" },
    { "lifetime", 0, 0, G_OPTION_ARG_INT, &lifetime, "Seconds until exp (default 3600)", "S" },
    { "claim", 0, 0, G_OPTION_ARG_STRING_ARRAY, &claims,
      "Set claim NAME to a JSON value, e.g. 'ver=\"1.0\"' (repeatable)", "NAME=JSON" },
    { "without", 0, 0, G_OPTION_ARG_STRING_ARRAY, &without,
      "Leave claim NAME out (repeatable)", "NAME" },
    { "header", 0, 0, G_OPTION_ARG_STRING_ARRAY, &headers,
      "Set header member NAME to a JSON value, e.g. 'kid=\"unknown\"' (repeatable)",
      "NAME=JSON" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- mint an access token");
  g_autoptr(GError) error = NULL;
  g_auto(ClaimChanges) changes = { NULL, NULL };
  g_autoptr(GString) form = g_string_new (NULL);
  g_autofree char *lifetime_text = NULL;
  g_autofree char *token = NULL;
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return 2;
    }
  if (!check_client_args (argc, argv, "mint", authority))
    return 2;
  claim_changes_init (&changes);
  for (guint i = 0; claims != NULL && claims[i] != NULL; i++)
    if (!claim_changes_add_claim (&changes, claims[i], FALSE, &error))
      {
        g_printerr ("mamd-dev-idp: --claim %s: %s\n", claims[i], error->message);
        return 2;
      }
  for (guint i = 0; without != NULL && without[i] != NULL; i++)
    if (!claim_changes_add_without (&changes, without[i], &error))
      {
        g_printerr ("mamd-dev-idp: --without %s: %s\n", without[i], error->message);
        return 2;
      }
  for (guint i = 0; headers != NULL && headers[i] != NULL; i++)
    if (!claim_changes_add_claim (&changes, headers[i], TRUE, &error))
      {
        g_printerr ("mamd-dev-idp: --header %s: %s\n", headers[i], error->message);
        return 2;
      }
  if (!check_mint_identity (tenant, client, scope, oid, &changes, TRUE, &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return 2;
    }
  if (lifetime < 1 || lifetime > MINT_LIFETIME_MAX)
    {
      g_printerr ("mamd-dev-idp: --lifetime takes 1 to %d seconds (for an expired token use "
                  "--claim exp=UNIX-TIME)\n", MINT_LIFETIME_MAX);
      return 2;
    }

  lifetime_text = g_strdup_printf ("%d", lifetime);
  form_add (form, "tenant", tenant);
  if (client != NULL)
    form_add (form, "client", client);
  if (scope != NULL)
    form_add (form, "scope", scope);
  if (oid != NULL)
    form_add (form, "oid", oid);
  if (user != NULL)
    form_add (form, "user", user);
  form_add (form, "lifetime", lifetime_text);
  /* as given: the server checks them again with the same rules */
  for (guint i = 0; claims != NULL && claims[i] != NULL; i++)
    form_add (form, "claim", claims[i]);
  for (guint i = 0; without != NULL && without[i] != NULL; i++)
    form_add (form, "without", without[i]);
  for (guint i = 0; headers != NULL && headers[i] != NULL; i++)
    form_add (form, "header", headers[i]);

  status = post_form (authority, MINT_PATH, form->str, &token);
  if (status != 0)
    return status;
  printf ("%s\n", token);
  return 0;
}

static gboolean
valid_kid (const char *kid)
{
  gsize len = strlen (kid);

  if (len == 0 || len > KID_MAX_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isgraph (kid[i]))
      return FALSE;
  return TRUE;
}

static int
cmd_rotate (int argc, char **argv)
{
  g_autofree char *authority = NULL;
  const GOptionEntry entries[] = {
    { "authority", 0, 0, G_OPTION_ARG_STRING, &authority,
      "What mamd-dev-idp serve printed", "URL" },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- rotate the signing key");
  g_autoptr(GError) error = NULL;
  g_autofree char *kid = NULL;
  int status;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("mamd-dev-idp: %s\n", error->message);
      return 2;
    }
  if (!check_client_args (argc, argv, "rotate", authority))
    return 2;
  status = post_form (authority, ROTATE_PATH, "", &kid);
  if (status != 0)
    return status;
  g_strchomp (kid);
  if (!valid_kid (kid))
    {
      g_printerr ("mamd-dev-idp: the server answered no key id\n");
      return 1;
    }
  printf ("%s\n", kid);
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
  if (g_strcmp0 (argv[1], "rotate") == 0)
    return cmd_rotate (argc - 1, argv + 1);
  if (g_strcmp0 (argv[1], "--help") == 0 || g_strcmp0 (argv[1], "-h") == 0)
    {
      usage ();
      return 0;
    }
  return usage ();
}
