/*
 * MamdOauthPermission: asks the tenant's token endpoint for a
 * client-credentials token for the MAM service. The token itself is never
 * used: that one is issued proves the permission and its admin consent.
 *
 * Only two answers decide the gate: a token opens it, a well-formed
 * AADSTS650057 closes it. Everything else (a network failure, a provider
 * outage, an answer about the request itself such as an expired secret)
 * says nothing about the app registration: it is reported, and leaves a
 * closed gate closed and an open one open.
 *
 * Provider text reaches logs and `mamctl servers`: it is cut to one line
 * and scrubbed of the client secret, raw or form-encoded, and a
 * description that talks about "client_secret" is not shown at all, since
 * a provider that echoes the request could encode the secret in any way.
 */
#include "config.h"

#include <string.h>

#include "mamd-json.h"
#include "mamd-oauth-http.h"
#include "mamd-oauth-permission.h"
#include "mamd-plugin.h"

#define ANSWER_MAX_LEN (64 * 1024)
#define ANSWER_MAX_DEPTH 8
#define DETAIL_MAX_LEN 300
#define MISSING_CODE 650057

#define WITHHELD_MESSAGE "(the provider's description is withheld: it echoed the request)"

/* %s: the scope the check asks for (PermissionScope) */
#define MISSING_FORMAT                                                                      \
  "AADSTS650057: the server's app registration lacks the MAM service permission %s "       \
  "or its admin consent: add it in Microsoft Entra and grant admin consent"

struct _MamdOauthPermission {
  GObject parent_instance;
  MamdOauthHttp *http;
  char *token_endpoint;
  char *client_id;
  char *secret;          /* wiped on finalize */
  gsize secret_len;
  char *scope;
  guint interval;

  MamdOauthPermissionState state;
  char *detail;          /* what describe() says after the state */
  char *last_failure;    /* a failed check that did not change a MISSING state */
  gint64 checked_at;     /* monotonic, 0 never */
  gboolean in_flight;
  gboolean started;
  GSource *timer;
  GCancellable *cancellable;
};

G_DEFINE_TYPE (MamdOauthPermission, mamd_oauth_permission, G_TYPE_OBJECT)

enum { SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static gboolean
mentions_client_secret (const char *text)
{
  g_autofree char *lower = g_ascii_strdown (text, -1);

  return strstr (lower, "client_secret") != NULL;
}

/* Text from the provider goes into messages: single line, bounded, and
 * without the secret even if a server echoes it back, raw or form-encoded
 * as mamd sent it. */
static char *
scrub (const char *secret, const char *text)
{
  gsize secret_len = secret != NULL ? strlen (secret) : 0;
  g_autofree char *valid = NULL;
  g_autoptr(GString) out = NULL;
  char *encoded = NULL;
  gsize encoded_len = 0;
  const char *p;

  if (mentions_client_secret (text))
    return g_strdup (WITHHELD_MESSAGE);
  if (secret_len > 0)
    {
      encoded = g_malloc (3 * secret_len + 1);
      encoded_len = mamd_oauth_http_form_escape (encoded, secret);
    }
  valid = g_utf8_make_valid (text, -1);
  out = g_string_new (NULL);
  p = valid;
  while (*p != '\0' && *p != '\r' && *p != '\n')
    {
      /* in any case: a secret echoed with its case changed, or its %XX
       * spelled with other hex digits, is still as good as the secret */
      if (secret_len > 0 && g_ascii_strncasecmp (p, secret, secret_len) == 0)
        {
          g_string_append (out, "[secret]");
          p += secret_len;
          continue;
        }
      if (encoded_len > 0 && g_ascii_strncasecmp (p, encoded, encoded_len) == 0)
        {
          g_string_append (out, "[secret]");
          p += encoded_len;
          continue;
        }
      g_string_append_c (out, g_ascii_iscntrl (*p) ? ' ' : *p);
      p++;
    }
  if (encoded != NULL)
    {
      explicit_bzero (encoded, 3 * secret_len + 1);
      g_free (encoded);
    }
  if (out->len > DETAIL_MAX_LEN)
    {
      const char *end = g_utf8_find_prev_char (out->str, out->str + DETAIL_MAX_LEN);

      g_string_truncate (out, end != NULL ? (gsize) (end - out->str) : 0);
      g_string_append (out, "...");
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
set_state (MamdOauthPermission *self, MamdOauthPermissionState state, const char *detail)
{
  gboolean changed = state != self->state;

  self->state = state;
  g_free (self->detail);
  self->detail = g_strdup (detail);
  g_clear_pointer (&self->last_failure, g_free);
  if (changed)
    {
      if (state == MAMD_OAUTH_PERMISSION_GRANTED)
        g_info ("MAM service permission granted for client %s", self->client_id);
      else
        g_message ("MAM service permission check for client %s: %s", self->client_id, detail);
      g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
    }
}

/* A check whose answer says nothing about the app registration. */
static void
check_failed (MamdOauthPermission *self, const char *detail)
{
  if (self->state == MAMD_OAUTH_PERMISSION_MISSING)
    {
      g_free (self->last_failure);
      self->last_failure = g_strdup (detail);
      g_info ("MAM service permission check for client %s failed: %s", self->client_id, detail);
      return;
    }
  set_state (self, MAMD_OAUTH_PERMISSION_ERROR, detail);
}

/* The AADSTS code of an error answer: error_codes[0], else the
 * "AADSTS<digits>" the description starts with; 0 when neither. */
static gint64
answer_code (JsonObject *object, const char *description)
{
  JsonNode *codes = json_object_get_member (object, "error_codes");

  if (codes != NULL && JSON_NODE_HOLDS_ARRAY (codes) &&
      json_array_get_length (json_node_get_array (codes)) > 0)
    {
      JsonNode *first = json_array_get_element (json_node_get_array (codes), 0);

      if (JSON_NODE_HOLDS_VALUE (first) && json_node_get_value_type (first) == G_TYPE_INT64)
        return json_node_get_int (first);
    }
  if (description != NULL && g_str_has_prefix (description, "AADSTS") &&
      g_ascii_isdigit (description[6]))
    return g_ascii_strtoll (description + 6, NULL, 10);
  return 0;
}

static gboolean
codes_hold (JsonObject *object, gint64 wanted)
{
  JsonNode *codes = json_object_get_member (object, "error_codes");
  JsonArray *array;

  if (codes == NULL || !JSON_NODE_HOLDS_ARRAY (codes))
    return FALSE;
  array = json_node_get_array (codes);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (JSON_NODE_HOLDS_VALUE (element) && json_node_get_value_type (element) == G_TYPE_INT64 &&
          json_node_get_int (element) == wanted)
        return TRUE;
    }
  return FALSE;
}

/* An OAuth error answer (HTTP 4xx) */
static MamdOauthPermissionState
read_error_answer (guint status, JsonObject *object, const char *secret, const char *scope,
                   char **detail)
{
  const char *error_name = NULL;
  const char *description = NULL;
  g_autofree char *line = NULL;
  g_autofree char *prefix = NULL;
  gint64 code;

  if (!mamd_json_object_get_string (object, "error", FALSE, &error_name, NULL) ||
      !mamd_json_object_get_string (object, "error_description", FALSE, &description, NULL) ||
      (error_name == NULL && description == NULL))
    {
      *detail = g_strdup_printf ("the token endpoint answered HTTP %u without an OAuth error",
                                 status);
      return MAMD_OAUTH_PERMISSION_ERROR;
    }
  code = answer_code (object, description);
  if (codes_hold (object, MISSING_CODE) || code == MISSING_CODE)
    {
      *detail = g_strdup_printf (MISSING_FORMAT, scope);
      return MAMD_OAUTH_PERMISSION_MISSING;
    }
  line = scrub (secret, description != NULL ? description : "");
  if (code > 0)
    {
      prefix = g_strdup_printf ("AADSTS%" G_GINT64_FORMAT ":", code);
      *detail = g_str_has_prefix (line, prefix) ? g_strdup (line)
                                               : g_strdup_printf ("%s %s", prefix, line);
    }
  else
    {
      g_autofree char *name = scrub (secret, error_name != NULL ? error_name : "error");

      *detail = g_strdup_printf ("%s (HTTP %u): %s", name, status, line);
    }
  /* an answer about the request itself (bad or expired secret, unknown
   * client ...): reported, but only the missing permission moves the gate */
  return MAMD_OAUTH_PERMISSION_ERROR;
}

MamdOauthPermissionState
mamd_oauth_permission_read_answer (guint status, const char *data, gsize len, const char *secret,
                                   const char *scope, char **detail)
{
  g_autoptr(JsonNode) root = NULL;
  const char *token = NULL;

  root = mamd_json_parse_strict_object (data, len, ANSWER_MAX_LEN, ANSWER_MAX_DEPTH, NULL);
  if (root == NULL)
    {
      *detail = g_strdup_printf ("the token endpoint answered HTTP %u with no usable JSON: "
                                 "check the authority and the token endpoint", status);
      return MAMD_OAUTH_PERMISSION_ERROR;
    }
  if (status == 200)
    {
      if (mamd_json_object_get_string (json_node_get_object (root), "access_token", FALSE,
                                       &token, NULL) &&
          token != NULL && *token != '\0')
        {
          *detail = g_strdup_printf ("token issued for %s", scope);
          return MAMD_OAUTH_PERMISSION_GRANTED;
        }
      *detail = g_strdup ("the token endpoint answered HTTP 200 without an access token");
      return MAMD_OAUTH_PERMISSION_ERROR;
    }
  if (status >= 400 && status < 500)
    return read_error_answer (status, json_node_get_object (root), secret, scope, detail);
  *detail = g_strdup_printf ("the token endpoint answered HTTP %u: retry later", status);
  return MAMD_OAUTH_PERMISSION_ERROR;
}

static void
handle_answer (MamdOauthPermission *self, guint status, GBytes *body)
{
  g_autofree char *detail = NULL;
  MamdOauthPermissionState state;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  state = mamd_oauth_permission_read_answer (status, data, len, self->secret, self->scope, &detail);
  if (state == MAMD_OAUTH_PERMISSION_ERROR)
    check_failed (self, detail);
  else
    set_state (self, state, detail);
}

/* The answer may hold an access token: wipe it before freeing (the HTTP
 * client wipes its own buffers; libsoup's and json-glib's internal copies
 * are out of reach). */
static void
wipe_bytes (GBytes *bytes)
{
  gsize len = 0;
  gpointer data = g_bytes_unref_to_data (bytes, &len);

  explicit_bzero (data, len);
  g_free (data);
}

static void
answer_received (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(MamdOauthPermission) self = user_data;
  g_autoptr(GError) error = NULL;
  GBytes *body;
  guint status = 0;

  self->in_flight = FALSE;
  body = mamd_oauth_http_post_form_finish (MAMD_OAUTH_HTTP (source), result, &status, &error);
  if (body == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          /* stopped, then maybe started again while this was in flight */
          if (self->started)
            mamd_oauth_permission_check_now (self);
          return;
        }
      {
        g_autofree char *detail = scrub (self->secret, error->message);
        check_failed (self, detail);
      }
      return;
    }
  self->checked_at = g_get_monotonic_time ();
  handle_answer (self, status, body);
  wipe_bytes (body);
}

void
mamd_oauth_permission_check_now (MamdOauthPermission *self)
{
  g_autoptr(GHashTable) form = NULL;

  g_return_if_fail (MAMD_IS_OAUTH_PERMISSION (self));

  if (self->in_flight)
    return;
  if (self->token_endpoint == NULL)
    {
      check_failed (self, "no token endpoint is known: set the authority or the token endpoint");
      return;
    }
  form = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (form, "grant_type", "client_credentials");
  g_hash_table_insert (form, "client_id", self->client_id);
  g_hash_table_insert (form, "client_secret", self->secret);
  g_hash_table_insert (form, "scope", self->scope);
  if (self->cancellable == NULL)
    self->cancellable = g_cancellable_new ();
  self->in_flight = TRUE;
  mamd_oauth_http_post_form_async (self->http, self->token_endpoint, form, ANSWER_MAX_LEN,
                                   self->cancellable, answer_received, g_object_ref (self));
}

static gboolean
check_due (gpointer user_data)
{
  mamd_oauth_permission_check_now (MAMD_OAUTH_PERMISSION (user_data));
  return G_SOURCE_CONTINUE;
}

void
mamd_oauth_permission_carry_over (MamdOauthPermission *self, MamdOauthPermission *previous)
{
  g_return_if_fail (MAMD_IS_OAUTH_PERMISSION (self));
  g_return_if_fail (MAMD_IS_OAUTH_PERMISSION (previous));
  g_return_if_fail (!self->started);

  self->state = previous->state;
  g_free (self->detail);
  self->detail = g_strdup (previous->detail);
  g_free (self->last_failure);
  self->last_failure = g_strdup (previous->last_failure);
  self->checked_at = previous->checked_at;
}

void
mamd_oauth_permission_start (MamdOauthPermission *self)
{
  g_return_if_fail (MAMD_IS_OAUTH_PERMISSION (self));

  if (self->started)
    return;
  self->started = TRUE;
  mamd_oauth_permission_check_now (self);
  /* thread-default context, like the HTTP I/O; no reference: dispose
   * removes the timer */
  self->timer = g_timeout_source_new_seconds (MAX (self->interval, 1));
  g_source_set_callback (self->timer, check_due, self, NULL);
  g_source_attach (self->timer, g_main_context_get_thread_default ());
}

void
mamd_oauth_permission_stop (MamdOauthPermission *self)
{
  g_return_if_fail (MAMD_IS_OAUTH_PERMISSION (self));

  self->started = FALSE;
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  if (self->cancellable != NULL)
    {
      g_cancellable_cancel (self->cancellable);
      g_clear_object (&self->cancellable);
    }
}

gboolean
mamd_oauth_permission_check_gate (MamdOauthPermission *self, GError **error)
{
  g_return_val_if_fail (MAMD_IS_OAUTH_PERMISSION (self), FALSE);

  if (self->state != MAMD_OAUTH_PERMISSION_MISSING)
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE, MISSING_FORMAT, self->scope);
  return FALSE;
}

MamdOauthPermissionState
mamd_oauth_permission_get_state (MamdOauthPermission *self)
{
  g_return_val_if_fail (MAMD_IS_OAUTH_PERMISSION (self), MAMD_OAUTH_PERMISSION_UNKNOWN);
  return self->state;
}

char *
mamd_oauth_permission_describe (MamdOauthPermission *self)
{
  g_autoptr(GString) out = g_string_new (NULL);

  g_return_val_if_fail (MAMD_IS_OAUTH_PERMISSION (self), NULL);

  switch (self->state)
    {
    case MAMD_OAUTH_PERMISSION_UNKNOWN:
      g_string_append (out, self->in_flight ? "not checked yet: checking" : "not checked yet");
      break;
    case MAMD_OAUTH_PERMISSION_GRANTED:
      g_string_append (out, "granted");
      break;
    case MAMD_OAUTH_PERMISSION_MISSING:
    case MAMD_OAUTH_PERMISSION_ERROR:
    default:
      g_string_append (out, self->detail != NULL ? self->detail : "check failed");
      break;
    }
  if (self->checked_at != 0)
    g_string_append_printf (out, " (checked %" G_GINT64_FORMAT " s ago)",
                            (g_get_monotonic_time () - self->checked_at) / G_USEC_PER_SEC);
  if (self->last_failure != NULL)
    g_string_append_printf (out, "; last check failed: %s", self->last_failure);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
mamd_oauth_permission_dispose (GObject *object)
{
  mamd_oauth_permission_stop (MAMD_OAUTH_PERMISSION (object));
  G_OBJECT_CLASS (mamd_oauth_permission_parent_class)->dispose (object);
}

static void
mamd_oauth_permission_finalize (GObject *object)
{
  MamdOauthPermission *self = MAMD_OAUTH_PERMISSION (object);

  if (self->secret != NULL)
    explicit_bzero (self->secret, self->secret_len);
  g_free (self->secret);
  g_clear_object (&self->http);
  g_free (self->token_endpoint);
  g_free (self->client_id);
  g_free (self->scope);
  g_free (self->detail);
  g_free (self->last_failure);
  G_OBJECT_CLASS (mamd_oauth_permission_parent_class)->finalize (object);
}

static void
mamd_oauth_permission_class_init (MamdOauthPermissionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = mamd_oauth_permission_dispose;
  object_class->finalize = mamd_oauth_permission_finalize;

  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass),
                                          G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                          G_TYPE_NONE, 0);
}

static void
mamd_oauth_permission_init (MamdOauthPermission *self)
{
}

MamdOauthPermission *
mamd_oauth_permission_new (MamdOauthHttp *http, const char *token_endpoint,
                           const char *client_id, const char *client_secret, const char *scope,
                           guint interval)
{
  MamdOauthPermission *self;

  g_return_val_if_fail (MAMD_IS_OAUTH_HTTP (http), NULL);
  g_return_val_if_fail (client_id != NULL, NULL);
  g_return_val_if_fail (client_secret != NULL, NULL);
  g_return_val_if_fail (scope != NULL, NULL);

  self = g_object_new (MAMD_TYPE_OAUTH_PERMISSION, NULL);
  self->http = g_object_ref (http);
  self->token_endpoint = g_strdup (token_endpoint);
  self->client_id = g_strdup (client_id);
  self->secret_len = strlen (client_secret);
  self->secret = g_memdup2 (client_secret, self->secret_len + 1);
  self->scope = g_strdup (scope);
  self->interval = interval;
  return self;
}
