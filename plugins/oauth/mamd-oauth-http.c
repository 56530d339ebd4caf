/*
 * MamdOauthHttp: libsoup 3 with the guards libsoup leaves off by default.
 * Redirects are handled here rather than by libsoup so that every hop can
 * be checked against the origin; bodies are read chunk by chunk so that a
 * hostile server cannot make us buffer more than the caller's cap; an
 * overall deadline bounds servers that dribble a byte per timeout period.
 */
#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "mamd-oauth-http.h"
#include "mamd-plugin.h"

#define MAX_REDIRECTS 3
#define READ_CHUNK (16 * 1024)

struct _MamdOauthHttp {
  GObject parent_instance;
  SoupSession *session;
  guint timeout;
};

G_DEFINE_TYPE (MamdOauthHttp, mamd_oauth_http, G_TYPE_OBJECT)

typedef struct {
  MamdOauthHttp *http;
  char *method;
  GUri *origin;       /* the URL the caller gave: every hop must share its origin */
  GUri *uri;          /* the current hop */
  GBytes *form;       /* POST body, wiped when freed */
  gsize max_len;
  gboolean want_any_status;
  guint hops;
  guint status;
  SoupMessage *msg;
  GInputStream *stream;
  GByteArray *body;      /* wiped when freed here */
  gsize body_cap;        /* what body was sized for: it never reallocates */
  guint8 *chunk;         /* READ_CHUNK bytes, wiped after every read */
  GCancellable *abort;   /* ours: cancels the exchange on oversize, deadline, caller cancel */
  GCancellable *caller;  /* the caller's, may be NULL */
  gulong caller_handler;
  GSource *deadline;
  GTask *task;           /* unowned: the task this is the data of */
  gboolean returned;     /* the deadline may answer before libsoup does */
} Request;

static void request_send (GTask *task);

/* An answer may hold a token (the permission check's): no copy of it is
 * freed unwiped, here or in body_append. */
static void
wipe_byte_array (GByteArray *array)
{
  explicit_bzero (array->data, array->len);
  g_byte_array_unref (array);
}

static void
request_free (gpointer data)
{
  Request *req = data;

  if (req->caller != NULL && req->caller_handler != 0)
    g_cancellable_disconnect (req->caller, req->caller_handler);
  g_clear_object (&req->caller);
  if (req->deadline != NULL)
    {
      g_source_destroy (req->deadline);
      g_source_unref (req->deadline);
    }
  if (req->stream != NULL)
    {
      /* a synchronous close would read the rest of the body on the main
       * thread: close asynchronously after making sure the exchange is over */
      g_cancellable_cancel (req->abort);
      g_input_stream_close_async (req->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
      g_object_unref (req->stream);
    }
  g_clear_object (&req->abort);
  g_clear_object (&req->msg);
  if (req->body != NULL)
    wipe_byte_array (req->body);
  if (req->chunk != NULL)
    explicit_bzero (req->chunk, READ_CHUNK);
  g_free (req->chunk);
  g_clear_pointer (&req->form, g_bytes_unref);
  g_clear_pointer (&req->uri, g_uri_unref);
  g_clear_pointer (&req->origin, g_uri_unref);
  g_free (req->method);
  g_clear_object (&req->http);
  g_free (req);
}

/* The URL for messages: no user info, query or fragment. */
static char *
uri_display (GUri *uri)
{
  return g_uri_to_string_partial (uri, G_URI_HIDE_USERINFO | G_URI_HIDE_QUERY |
                                         G_URI_HIDE_FRAGMENT | G_URI_HIDE_AUTH_PARAMS);
}

static void
request_fail (GTask *task, MamdError code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static void
request_fail (GTask *task, MamdError code, const char *format, ...)
{
  Request *req = g_task_get_task_data (task);
  g_autofree char *url = uri_display (req->uri);
  g_autofree char *cause = NULL;
  va_list args;

  if (req->returned)
    return;
  req->returned = TRUE;
  va_start (args, format);
  cause = g_strdup_vprintf (format, args);
  va_end (args);
  g_task_return_new_error (task, MAMD_ERROR, code, "%s %s failed: %s", req->method, url, cause);
}

/* Maps a libsoup/GIO error, keeping caller cancellation recognisable. */
static void
request_fail_gerror (GTask *task, GError *error)
{
  Request *req = g_task_get_task_data (task);

  if (req->returned)
    return;
  if (req->caller != NULL && g_cancellable_is_cancelled (req->caller))
    {
      req->returned = TRUE;
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "request cancelled");
      return;
    }
  if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE))
    request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE,
                  "%s: the provider's TLS certificate is not trusted; check the authority URL "
                  "and CaFile (unset: the system CA store)",
                  error->message);
  else if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_UNAVAILABLE))
    request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE,
                  "%s: GIO has no TLS backend; install glib-networking", error->message);
  else
    request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE, "%s: check the network and the authority URL",
                  error->message);
}

static gboolean
is_loopback_host (const char *host)
{
  g_autoptr(GInetAddress) address = NULL;

  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  address = g_inet_address_new_from_string (host);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

/* The system's proxy settings (http_proxy and the like, through
 * glib-networking) for every host but a loopback one, which no proxy can
 * reach for us: a developer identity provider is always asked directly. */
#define MAMD_TYPE_LOOPBACK_DIRECT (mamd_loopback_direct_get_type ())
G_DECLARE_FINAL_TYPE (MamdLoopbackDirect, mamd_loopback_direct, MAMD, LOOPBACK_DIRECT, GObject)

struct _MamdLoopbackDirect {
  GObject parent_instance;
};

static void mamd_loopback_direct_iface_init (GProxyResolverInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (MamdLoopbackDirect, mamd_loopback_direct, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_PROXY_RESOLVER,
                                                      mamd_loopback_direct_iface_init))

static gboolean
uri_is_loopback (const char *uri)
{
  g_autoptr(GUri) parsed = g_uri_parse (uri, G_URI_FLAGS_NONE, NULL);

  return parsed != NULL && g_uri_get_host (parsed) != NULL &&
         is_loopback_host (g_uri_get_host (parsed));
}

static char **
direct_only (void)
{
  char **proxies = g_new0 (char *, 2);

  proxies[0] = g_strdup ("direct://");
  return proxies;
}

static gboolean
loopback_direct_is_supported (GProxyResolver *resolver)
{
  return TRUE;
}

static char **
loopback_direct_lookup (GProxyResolver *resolver, const char *uri, GCancellable *cancellable,
                        GError **error)
{
  if (uri_is_loopback (uri))
    return direct_only ();
  return g_proxy_resolver_lookup (g_proxy_resolver_get_default (), uri, cancellable, error);
}

static void
default_lookup_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  char **proxies = g_proxy_resolver_lookup_finish (G_PROXY_RESOLVER (source), result, &error);

  if (proxies == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, proxies, (GDestroyNotify) g_strfreev);
}

static void
loopback_direct_lookup_async (GProxyResolver *resolver, const char *uri,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (resolver, cancellable, callback, user_data);

  if (uri_is_loopback (uri))
    g_task_return_pointer (task, direct_only (), (GDestroyNotify) g_strfreev);
  else
    g_proxy_resolver_lookup_async (g_proxy_resolver_get_default (), uri, cancellable,
                                   default_lookup_cb, g_steal_pointer (&task));
}

static char **
loopback_direct_lookup_finish (GProxyResolver *resolver, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
mamd_loopback_direct_iface_init (GProxyResolverInterface *iface)
{
  iface->is_supported = loopback_direct_is_supported;
  iface->lookup = loopback_direct_lookup;
  iface->lookup_async = loopback_direct_lookup_async;
  iface->lookup_finish = loopback_direct_lookup_finish;
}

static void
mamd_loopback_direct_class_init (MamdLoopbackDirectClass *klass)
{
}

static void
mamd_loopback_direct_init (MamdLoopbackDirect *self)
{
}

static gboolean
check_uri (GUri *uri, const char *url, GError **error)
{
  const char *scheme = g_uri_get_scheme (uri);
  const char *host = g_uri_get_host (uri);

  if (host == NULL || *host == '\0')
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "URL %s has no host: give an absolute https:// URL", url);
      return FALSE;
    }
  if (g_uri_get_userinfo (uri) != NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                           "URL carries user info: remove the user name and password from it");
      return FALSE;
    }
  if (g_ascii_strcasecmp (scheme, "https") == 0)
    return TRUE;
  if (g_ascii_strcasecmp (scheme, "http") == 0 && is_loopback_host (host))
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
               "URL %s is not HTTPS: identity provider URLs must use https:// "
               "(plain http is allowed only for loopback addresses)", url);
  return FALSE;
}

static GUri *
parse_checked (const char *url, GError **error)
{
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) local_error = NULL;

  uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, &local_error);
  if (uri == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, "invalid URL %s: %s", url,
                   local_error->message);
      return NULL;
    }
  if (!check_uri (uri, url, error))
    return NULL;
  return g_steal_pointer (&uri);
}

gboolean
mamd_oauth_http_check_url (const char *url, GError **error)
{
  g_autoptr(GUri) uri = NULL;

  g_return_val_if_fail (url != NULL, FALSE);
  uri = parse_checked (url, error);
  return uri != NULL;
}

static int
effective_port (GUri *uri)
{
  int port = g_uri_get_port (uri);

  if (port > 0)
    return port;
  return g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0 ? 443 : 80;
}

static gboolean
same_origin (GUri *a, GUri *b)
{
  return g_ascii_strcasecmp (g_uri_get_scheme (a), g_uri_get_scheme (b)) == 0 &&
         g_ascii_strcasecmp (g_uri_get_host (a), g_uri_get_host (b)) == 0 &&
         effective_port (a) == effective_port (b);
}

/* Moves @n bytes from the chunk to the body. GByteArray would realloc as
 * it grows, freeing the old buffer unwiped: grow by hand instead. */
static void
body_append (Request *req, gsize n)
{
  if (req->body->len + n > req->body_cap)
    {
      gsize cap = MAX (req->body_cap * 2, req->body->len + n);
      GByteArray *bigger = g_byte_array_sized_new ((guint) cap);

      g_byte_array_append (bigger, req->body->data, req->body->len);
      wipe_byte_array (req->body);
      req->body = bigger;
      req->body_cap = cap;
    }
  g_byte_array_append (req->body, req->chunk, (guint) n);
  explicit_bzero (req->chunk, n);
}

static void read_next (GTask *task);

static void
read_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  Request *req = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (req->returned)
    return;
  if (n < 0)
    {
      request_fail_gerror (task, error);
      return;
    }
  if (n == 0)
    {
      GBytes *bytes = g_byte_array_free_to_bytes (g_steal_pointer (&req->body));

      /* finished normally: the async close is immediate */
      g_input_stream_close_async (req->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
      g_clear_object (&req->stream);
      req->returned = TRUE;
      g_task_return_pointer (task, bytes, (GDestroyNotify) g_bytes_unref);
      return;
    }
  body_append (req, (gsize) n);
  if (req->body->len > req->max_len)
    {
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE,
                    "answer larger than %" G_GSIZE_FORMAT " bytes: refused", req->max_len);
      return;
    }
  read_next (g_steal_pointer (&task));
}

static void
read_next (GTask *task)
{
  Request *req = g_task_get_task_data (task);
  /* never more than one byte past the cap in memory */
  gsize want = MIN ((gsize) READ_CHUNK, req->max_len - req->body->len + 1);

  g_input_stream_read_async (req->stream, req->chunk, want, G_PRIORITY_DEFAULT, req->abort,
                             read_done, task);
}

/* Follows one redirect hop if it stays on the origin; FALSE when it failed
 * the task. */
static gboolean
follow_redirect (GTask *task)
{
  Request *req = g_task_get_task_data (task);
  SoupMessageHeaders *headers = soup_message_get_response_headers (req->msg);
  const char *location = soup_message_headers_get_one (headers, "Location");
  g_autoptr(GUri) target = NULL;
  g_autoptr(GError) error = NULL;
  gboolean keeps_method = req->status == SOUP_STATUS_TEMPORARY_REDIRECT ||
                          req->status == SOUP_STATUS_PERMANENT_REDIRECT;

  if (location == NULL)
    {
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE, "HTTP %u without a Location header",
                    req->status);
      return FALSE;
    }
  target = g_uri_parse_relative (req->uri, location, SOUP_HTTP_URI_FLAGS, &error);
  if (target == NULL)
    {
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE, "redirect to an invalid URL");
      return FALSE;
    }
  if (!same_origin (req->origin, target))
    {
      g_autofree char *shown = uri_display (target);
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE,
                    "redirect to another origin (%s) refused: configure the provider's "
                    "final URL", shown);
      return FALSE;
    }
  if (++req->hops > MAX_REDIRECTS)
    {
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE, "more than %d redirects: refused",
                    MAX_REDIRECTS);
      return FALSE;
    }
  /* a form POST turned into a GET would lose its body */
  if (req->form != NULL && !keeps_method)
    {
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE,
                    "HTTP %u redirect of a POST refused: configure the final token endpoint",
                    req->status);
      return FALSE;
    }
  g_uri_unref (req->uri);
  req->uri = g_steal_pointer (&target);
  return TRUE;
}

static void
send_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  Request *req = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  SoupMessageHeaders *headers;
  goffset length;

  req->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (req->returned)
    return;
  if (req->stream == NULL)
    {
      request_fail_gerror (task, error);
      return;
    }
  req->status = soup_message_get_status (req->msg);
  if (req->status >= 300 && req->status < 400)
    {
      /* request_free would cancel too: drop this hop's stream now */
      g_cancellable_cancel (req->abort);
      g_input_stream_close_async (req->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
      g_clear_object (&req->stream);
      g_clear_object (&req->abort);
      req->abort = g_cancellable_new ();
      if (follow_redirect (task))
        request_send (g_steal_pointer (&task));
      return;
    }
  if (!req->want_any_status && !SOUP_STATUS_IS_SUCCESSFUL (req->status))
    {
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE, "HTTP %u %s", req->status,
                    soup_message_get_reason_phrase (req->msg) != NULL
                      ? soup_message_get_reason_phrase (req->msg) : "");
      return;
    }
  headers = soup_message_get_response_headers (req->msg);
  length = soup_message_headers_get_content_length (headers);
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
      soup_message_headers_get_one (headers, "Content-Encoding") == NULL &&
      length > 0 && (guint64) length > req->max_len)
    {
      request_fail (task, MAMD_ERROR_KEY_UNAVAILABLE,
                    "answer of %" G_GINT64_FORMAT " bytes is larger than %" G_GSIZE_FORMAT
                    " bytes: refused", (gint64) length, req->max_len);
      return;
    }
  req->body_cap = READ_CHUNK;
  req->body = g_byte_array_sized_new (READ_CHUNK);
  req->chunk = g_malloc (READ_CHUNK);
  read_next (g_steal_pointer (&task));
}

static void
request_send (GTask *task)
{
  Request *req = g_task_get_task_data (task);

  /* a cancellation that came while a redirect replaced req->abort */
  if (req->caller != NULL && g_cancellable_is_cancelled (req->caller))
    g_cancellable_cancel (req->abort);
  g_clear_object (&req->msg);
  req->msg = soup_message_new_from_uri (req->method, req->uri);
  soup_message_add_flags (req->msg, SOUP_MESSAGE_NO_REDIRECT);
  soup_message_headers_replace (soup_message_get_request_headers (req->msg), "Accept",
                                "application/json");
  /* identity-provider requests are rare (one per cool-down or check
   * interval): a pooled connection saves nothing, and a connection that the
   * idle timeout closes just as a request is queued on it can leave that
   * request unanswered */
  soup_message_headers_replace (soup_message_get_request_headers (req->msg), "Connection",
                                "close");
  if (req->form != NULL)
    soup_message_set_request_body_from_bytes (req->msg, "application/x-www-form-urlencoded",
                                              req->form);
  soup_session_send_async (req->http->session, req->msg, G_PRIORITY_DEFAULT, req->abort,
                           send_done, task);
}

static void
caller_cancelled (GCancellable *caller, gpointer user_data)
{
  Request *req = user_data;

  g_cancellable_cancel (req->abort);
}

static gboolean
deadline_reached (gpointer user_data)
{
  Request *req = user_data;

  /* answer first, then cancel: libsoup may call back from inside the
   * cancellation, and a late callback finds req->returned. Answering here
   * does not rely on every libsoup state honouring the cancellation. The
   * pending libsoup operation holds the task, so req stays valid. */
  request_fail (req->task, MAMD_ERROR_KEY_UNAVAILABLE,
                "no complete answer within %u s: check the provider and the network",
                req->http->timeout);
  g_cancellable_cancel (req->abort);
  return G_SOURCE_REMOVE;
}

static void
request_start (MamdOauthHttp *self, const char *method, const char *url, GBytes *form,
               gsize max_len, gboolean want_any_status, GCancellable *cancellable,
               GAsyncReadyCallback callback, gpointer user_data, gpointer source_tag)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  Request *req;
  GUri *uri;

  g_task_set_source_tag (task, source_tag);
  /* our own GError mapping reports cancellation */
  g_task_set_check_cancellable (task, FALSE);
  uri = parse_checked (url, &error);
  if (uri == NULL)
    {
      g_clear_pointer (&form, g_bytes_unref);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  req = g_new0 (Request, 1);
  req->http = g_object_ref (self);
  req->method = g_strdup (method);
  req->origin = g_uri_ref (uri);
  req->uri = uri;
  req->form = form;
  req->max_len = max_len;
  req->want_any_status = want_any_status;
  req->abort = g_cancellable_new ();
  req->task = task;
  g_task_set_task_data (task, req, request_free);
  if (cancellable != NULL)
    {
      req->caller = g_object_ref (cancellable);
      /* disconnected in request_free; req->abort changes at each redirect */
      req->caller_handler = g_cancellable_connect (cancellable, G_CALLBACK (caller_cancelled),
                                                   req, NULL);
    }
  req->deadline = g_timeout_source_new_seconds (MAX (self->timeout, 1));
  g_source_set_callback (req->deadline, deadline_reached, req, NULL);
  g_source_attach (req->deadline, g_main_context_get_thread_default ());
  request_send (g_steal_pointer (&task));
}

void
mamd_oauth_http_get_async (MamdOauthHttp *self, const char *url, gsize max_len,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_return_if_fail (MAMD_IS_OAUTH_HTTP (self));
  g_return_if_fail (url != NULL);

  request_start (self, SOUP_METHOD_GET, url, NULL, max_len, FALSE, cancellable, callback,
                 user_data, mamd_oauth_http_get_async);
}

GBytes *
mamd_oauth_http_get_finish (MamdOauthHttp *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct {
  char *data;
  gsize len;
} WipedBuffer;

static void
wiped_buffer_free (gpointer data)
{
  WipedBuffer *buffer = data;

  explicit_bzero (buffer->data, buffer->len);
  g_free (buffer->data);
  g_free (buffer);
}

gsize
mamd_oauth_http_form_escape (char *out, const char *text)
{
  static const char hex[] = "0123456789ABCDEF";
  gsize n = 0;

  for (const guchar *p = (const guchar *) text; *p != '\0'; p++)
    {
      if (g_ascii_isalnum (*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
        out[n++] = (char) *p;
      else
        {
          out[n++] = '%';
          out[n++] = hex[*p >> 4];
          out[n++] = hex[*p & 0xf];
        }
    }
  return n;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The form carries the client secret: it is encoded into one exactly sized
 * buffer (no reallocation leaves copies behind) that is wiped when freed. */
static GBytes *
form_encode (GHashTable *form)
{
  g_autofree gpointer *keys = NULL;
  guint n_keys = 0;
  gsize capacity = 1;
  WipedBuffer *buffer;
  gsize len = 0;

  keys = g_hash_table_get_keys_as_array (form, &n_keys);
  qsort (keys, n_keys, sizeof (gpointer), compare_strings);
  for (guint i = 0; i < n_keys; i++)
    capacity += 3 * strlen (keys[i]) + 3 * strlen (g_hash_table_lookup (form, keys[i])) + 2;
  buffer = g_new0 (WipedBuffer, 1);
  buffer->data = g_malloc (capacity);
  buffer->len = capacity;
  for (guint i = 0; i < n_keys; i++)
    {
      if (i > 0)
        buffer->data[len++] = '&';
      len += mamd_oauth_http_form_escape (buffer->data + len, keys[i]);
      buffer->data[len++] = '=';
      len += mamd_oauth_http_form_escape (buffer->data + len, g_hash_table_lookup (form, keys[i]));
    }
  return g_bytes_new_with_free_func (buffer->data, len, wiped_buffer_free, buffer);
}

void
mamd_oauth_http_post_form_async (MamdOauthHttp *self, const char *url, GHashTable *form,
                                 gsize max_len, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (MAMD_IS_OAUTH_HTTP (self));
  g_return_if_fail (url != NULL);
  g_return_if_fail (form != NULL);

  request_start (self, SOUP_METHOD_POST, url, form_encode (form), max_len, TRUE, cancellable,
                 callback, user_data, mamd_oauth_http_post_form_async);
}

GBytes *
mamd_oauth_http_post_form_finish (MamdOauthHttp *self, GAsyncResult *result, guint *status,
                                  GError **error)
{
  Request *req;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  req = g_task_get_task_data (G_TASK (result));
  if (status != NULL)
    *status = req != NULL ? req->status : 0;
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
mamd_oauth_http_finalize (GObject *object)
{
  MamdOauthHttp *self = MAMD_OAUTH_HTTP (object);

  g_clear_object (&self->session);
  G_OBJECT_CLASS (mamd_oauth_http_parent_class)->finalize (object);
}

static void
mamd_oauth_http_class_init (MamdOauthHttpClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = mamd_oauth_http_finalize;
}

static void
mamd_oauth_http_init (MamdOauthHttp *self)
{
}

MamdOauthHttp *
mamd_oauth_http_new (const char *ca_file, guint timeout, GError **error)
{
  g_autoptr(MamdOauthHttp) self = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GProxyResolver) resolver = NULL;

  if (timeout == 0)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                           "HTTP timeout must be at least 1 second");
      return NULL;
    }
  if (ca_file != NULL)
    {
      g_autoptr(GError) local_error = NULL;

      database = g_tls_file_database_new (ca_file, &local_error);
      if (database == NULL)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                       "cannot load the CA file %s: %s; give a PEM file of trusted CAs",
                       ca_file, local_error->message);
          return NULL;
        }
    }
  self = g_object_new (MAMD_TYPE_OAUTH_HTTP, NULL);
  self->timeout = timeout;
  resolver = g_object_new (MAMD_TYPE_LOOPBACK_DIRECT, NULL);
  self->session = soup_session_new_with_options ("timeout", timeout,
                                                 "idle-timeout", timeout,
                                                 "user-agent", "mamd/" MAMD_VERSION,
                                                 "proxy-resolver", resolver,
                                                 NULL);
  if (database != NULL)
    soup_session_set_tls_database (self->session, database);
  return g_steal_pointer (&self);
}
