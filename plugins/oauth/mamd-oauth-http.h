/*
 * MamdOauthHttp: a hardened libsoup 3 client for identity-provider traffic.
 * HTTPS required except for loopback addresses (127.0.0.0/8, ::1,
 * "localhost"); timeout and idle-timeout set; redirects followed only
 * within the same scheme+host+port (at most 3); bodies capped while
 * reading; the system CA store, or a configured CA file.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define MAMD_TYPE_OAUTH_HTTP (mamd_oauth_http_get_type ())
G_DECLARE_FINAL_TYPE (MamdOauthHttp, mamd_oauth_http, MAMD, OAUTH_HTTP, GObject)

/* @ca_file may be NULL (system store). @timeout seconds. */
MamdOauthHttp *mamd_oauth_http_new (const char *ca_file, guint timeout, GError **error);
/* Refuses non-HTTPS non-loopback URLs (MAMD_ERROR_INVALID_CONFIG). */
gboolean mamd_oauth_http_check_url (const char *url, GError **error);

/* GET @url; the body (<= @max_len) of a 2xx answer. Errors:
 * MAMD_ERROR_KEY_UNAVAILABLE for transport problems, non-2xx status,
 * oversize bodies and refused redirects, with the URL and cause. */
void mamd_oauth_http_get_async (MamdOauthHttp *self, const char *url, gsize max_len,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
GBytes *mamd_oauth_http_get_finish (MamdOauthHttp *self, GAsyncResult *result, GError **error);

/* POST application/x-www-form-urlencoded @form to @url; the status code
 * and body (<= @max_len) whatever the status (token endpoints answer 400
 * with a JSON error body). Transport errors as above. */
void mamd_oauth_http_post_form_async (MamdOauthHttp *self, const char *url, GHashTable *form,
                                      gsize max_len, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
GBytes *mamd_oauth_http_post_form_finish (MamdOauthHttp *self, GAsyncResult *result,
                                          guint *status, GError **error);
/* How post_form encodes every key and value: unreserved characters as
 * they are, every other byte as %XX (upper-case hex, so a space is %20,
 * never '+'). Writes at most 3 * strlen (@text) bytes to @out, without a
 * terminating NUL; returns how many. */
gsize mamd_oauth_http_form_escape (char *out, const char *text);

G_END_DECLS
