/*
 * The hardened HTTP client and the MAM service permission check, against
 * the real developer identity provider and a second, misbehaving SoupServer
 * on 127.0.0.1: which URLs are allowed, HTTPS and origin rules for discovery
 * and redirects, body caps, status codes, timeouts and cancellation; then
 * the client-credentials check of the MAM service permission, its states
 * and the scrubbing of secrets out of what providers answer. No log line
 * may carry a client secret. Nothing asserts on elapsed time. The
 * signing-key cache is test-oauth-keys.c; the fixture is
 * mamd-test-oauth-keys-server.c.
 */
#include "config.h"

#include <string.h>

#include "mamd-oauth-permission.h"
#include "mamd-plugin.h"
#include "mamd-test-oauth-keys-server.h"

/* goes out form-encoded as Ab%2Bc%2Fd%3De%26f%25g%3Fh~i.j_k-lQ~7xyz */
#define ODD_SECRET "Ab+c/d=e&f%g?h~i.j_k-lQ~7xyz"
#define ODD_SECRET_FORM_LOWER "ab%2bc%2fd%3de%26f%25g%3fh~i.j_k-lq~7xyz"
#define MAM_SCOPE "https://msmamservice.api.application/.default"
#define OTHER_SCOPE "https://mam.idp.example/.default"

/* Set when any log line carries a client secret, raw or form-encoded. */
static gboolean secret_logged;

/* ---- helpers ---- */

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

/* PermissionScope is configurable (another cloud, another provider): the
 * closed gate names the scope that was asked for, not the default one. */
static void
test_permission_missing_other_scope (Fixture *fx, gconstpointer data)
{
  g_autofree char *url = g_strconcat (fx->rogue_base, "/consent-missing", NULL);
  g_autoptr(MamdOauthPermission) permission = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;

  permission = mamd_oauth_permission_new (fx->http, url, CLIENT, SECRET, OTHER_SCOPE, 3600);
  mamd_oauth_permission_check_now (permission);
  wait_check (permission);
  g_assert_cmpint (mamd_oauth_permission_get_state (permission), ==,
                   MAMD_OAUTH_PERMISSION_MISSING);
  g_assert_false (mamd_oauth_permission_check_gate (permission, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE);
  g_assert_nonnull (strstr (error->message, OTHER_SCOPE));
  g_assert_null (strstr (error->message, MAM_SCOPE));
  state = mamd_oauth_permission_describe (permission);
  g_assert_nonnull (strstr (state, OTHER_SCOPE));
  g_assert_null (strstr (state, MAM_SCOPE));
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

int
main (int argc, char **argv)
{
  /* a proxy in the environment (port 9 refuses on loopback) must not be
   * used for the loopback providers every test here talks to */
  g_setenv ("http_proxy", "http://127.0.0.1:9", TRUE);
  g_setenv ("https_proxy", "http://127.0.0.1:9", TRUE);
  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_writer, NULL, NULL);

  ADD ("/mamd/oauth/keys/http/check-url", test_http_check_url);
  ADD ("/mamd/oauth/keys/http/https-required", test_http_https_required);
  ADD ("/mamd/oauth/keys/http/redirect", test_http_redirect);
  ADD ("/mamd/oauth/keys/http/oversize", test_http_oversize);
  ADD ("/mamd/oauth/keys/http/status-timeout-cancel", test_http_status_timeout_cancel);
  ADD ("/mamd/oauth/keys/permission/granted", test_permission_granted);
  ADD ("/mamd/oauth/keys/permission/missing", test_permission_missing);
  ADD ("/mamd/oauth/keys/permission/missing-other-scope", test_permission_missing_other_scope);
  ADD ("/mamd/oauth/keys/permission/other-errors", test_permission_other_errors);
  return g_test_run ();
}
