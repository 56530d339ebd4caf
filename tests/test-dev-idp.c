/*
 * mamd-dev-idp as a developer runs it: `serve` started by each test as a
 * subprocess on a loopback port and stopped with SIGTERM, `mint` and
 * `rotate` run against it, and its endpoints spoken to over real HTTP. The
 * tokens are decoded and checked against the JWKS it publishes with the
 * office365 plugin's own parser and validator, so a token minted with
 * chosen claims is shown to be refused for the reason it was made for.
 */
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "mamd-json.h"
#include "mamd-oauth-jwks.h"
#include "mamd-oauth-jwt.h"
#include "mamd-plugin.h"
#include "mamd-test-util.h"

#define TENANT "3c9e1b2a-5d4f-4a6b-8c7d-9e0f1a2b3c4d"
#define CLIENT "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
#define OID "5f4e3d2c-1b0a-4978-a695-b4c3d2e1f0a9"
#define SCOPE "login.mattermost"
#define WAIT_SECONDS 20

typedef struct {
  char *dir;
  char *log_path;
  GSubprocess *serve;
  char *authority;
} Fixture;

/* Runs mamd-dev-idp with @args (NULL-terminated) to completion. */
static void
run_idp_v (MamdTestRun *run, const char *const *args)
{
  mamd_test_run (NULL, "tools/mamd-dev-idp", args, run);
}

#define run_idp(run, ...) \
  G_STMT_START { \
    const char *const args_[] = { __VA_ARGS__, NULL }; \
    run_idp_v ((run), args_); \
  } G_STMT_END

/* ---- the server under test ---- */

/* A failed assertion aborts before the teardown: the server must not
 * outlive the test then. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

/* @data: extra arguments of serve (NULL-terminated) or NULL. */
static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const char *const *extra = data;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  f->dir = g_dir_make_tmp ("mamd-dev-idp-XXXXXX", &error);
  g_assert_no_error (error);
  f->log_path = g_build_filename (f->dir, "serve.log", NULL);
  g_ptr_array_add (argv, mamd_test_build_path ("tools/mamd-dev-idp"));
  g_ptr_array_add (argv, g_strdup ("serve"));
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (extra[i]));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_stderr_file_path (launcher, f->log_path);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  f->serve = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  /* serve prints its authority once it listens */
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->serve));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "http://127.0.0.1:"));
  f->authority = g_steal_pointer (&line);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_send_signal (f->serve, SIGTERM);
  g_subprocess_wait (f->serve, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (f->serve));
  g_assert_cmpint (g_subprocess_get_exit_status (f->serve), ==, 0);
  g_clear_object (&f->serve);
  g_unlink (f->log_path);
  g_rmdir (f->dir);
  g_free (f->log_path);
  g_free (f->dir);
  g_free (f->authority);
}

static char *
read_log (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (f->log_path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

/* ---- HTTP ---- */

/* @method on @authority@path, @form the body of a POST; @origin sets the
 * Origin header, @host the Host header (NULL: the authority's). Returns
 * the status, *body the answer. */
static guint
http_request_full (Fixture *f, const char *method, const char *path, const char *form,
                   const char *origin, const char *host, char **body)
{
  g_autoptr(SoupSession) session = soup_session_new_with_options ("timeout", 10, NULL);
  g_autofree char *url = g_strconcat (f->authority, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (msg);
  if (form != NULL)
    {
      g_autoptr(GBytes) request = g_bytes_new (form, strlen (form));

      soup_message_set_request_body_from_bytes (msg, "application/x-www-form-urlencoded",
                                                request);
    }
  if (origin != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Origin", origin);
  if (host != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg), "Host", host);
  bytes = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  *body = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_test_message ("%s %s -> %u %s", method, path, soup_message_get_status (msg), *body);
  return soup_message_get_status (msg);
}

static guint
http_request (Fixture *f, const char *method, const char *path, const char *form,
              const char *origin, char **body)
{
  return http_request_full (f, method, path, form, origin, NULL, body);
}

static char *
fetch_jwks_text (Fixture *f)
{
  char *body = NULL;

  g_assert_cmpuint (http_request (f, SOUP_METHOD_GET, "/" TENANT "/discovery/v2.0/keys", NULL,
                                  NULL, &body), ==, SOUP_STATUS_OK);
  return body;
}

/* The kids of the published JWKS, in document order (current key first). */
static GStrv
fetch_kids (Fixture *f)
{
  g_autofree char *text = fetch_jwks_text (f);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = mamd_json_parse_strict_object (text, strlen (text), 256 * 1024, 16,
                                                            &error);
  g_autoptr(GStrvBuilder) kids = g_strv_builder_new ();
  JsonArray *keys;

  g_assert_no_error (error);
  keys = json_object_get_array_member (json_node_get_object (root), "keys");
  g_assert_nonnull (keys);
  for (guint i = 0; i < json_array_get_length (keys); i++)
    g_strv_builder_add (kids, json_object_get_string_member (
                                json_array_get_object_element (keys, i), "kid"));
  return g_strv_builder_end (kids);
}

static MamdJwks *
fetch_jwks (Fixture *f)
{
  g_autofree char *text = fetch_jwks_text (f);
  g_autoptr(GError) error = NULL;
  MamdJwks *jwks = mamd_jwks_parse (text, strlen (text), &error);

  g_assert_no_error (error);
  return jwks;
}

/* ---- tokens ---- */

static JsonObject *
decode_segment (const char *segment)
{
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *json = NULL;
  g_autoptr(JsonNode) node = NULL;
  gsize len = 0;

  json = mamd_base64url_decode (segment, -1, &len, &error);
  g_assert_no_error (error);
  node = mamd_json_parse_strict_object ((const char *) json, len, 64 * 1024, 16, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (node));
}

/* Splits a compact JWS into its decoded header and claims. */
static void
decode_token (const char *token, JsonObject **header, JsonObject **claims)
{
  g_auto(GStrv) parts = g_strsplit (token, ".", -1);

  g_assert_cmpuint (g_strv_length (parts), ==, 3);
  g_assert_cmpstr (parts[2], !=, "");
  *header = decode_segment (parts[0]);
  *claims = decode_segment (parts[1]);
}

static char *
token_kid (const char *token)
{
  g_autoptr(JsonObject) header = NULL;
  g_autoptr(JsonObject) claims = NULL;

  decode_token (token, &header, &claims);
  g_assert_cmpstr (json_object_get_string_member (header, "alg"), ==, "RS256");
  return g_strdup (json_object_get_string_member (header, "kid"));
}

/* What the office365 plugin makes of @token with the keys now published:
 * the identity, or NULL and @error (from parsing, the key lookup or the
 * verification). */
static MamdIdentity *
verify (Fixture *f, const char *token, GError **error)
{
  g_autoptr(MamdJwks) jwks = fetch_jwks (f);
  g_autoptr(MamdJwt) jwt = NULL;
  g_autofree char *issuer = g_strdup_printf ("%s/%s/v2.0", f->authority, TENANT);
  const MamdJwk *key;
  MamdJwtPolicy policy = {
    .issuer = issuer,
    .tenant_id = TENANT,
    .client_id = CLIENT,
    .required_scope = SCOPE,
    .now = g_get_real_time () / G_USEC_PER_SEC,
    .skew = 300,
  };

  jwt = mamd_jwt_parse (token, error);
  if (jwt == NULL)
    return NULL;
  key = mamd_jwks_lookup (jwks, mamd_jwt_get_kid (jwt));
  if (key == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE, "kid %s is not published",
                   mamd_jwt_get_kid (jwt));
      return NULL;
    }
  return mamd_jwt_verify (jwt, key, &policy, error);
}

/* mamd-dev-idp mint with the identity of a valid token plus @args
 * (NULL-terminated); asserts it worked and returns the token. */
static char *
mint_v (Fixture *f, gboolean with_identity, const char *const *args)
{
  g_auto(MamdTestRun) run = { 0 };
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  const char *const identity[] = { "--client", CLIENT, "--scope", SCOPE, "--oid", OID, NULL };

  g_ptr_array_add (argv, "mint");
  g_ptr_array_add (argv, "--authority");
  g_ptr_array_add (argv, f->authority);
  g_ptr_array_add (argv, "--tenant");
  g_ptr_array_add (argv, TENANT);
  for (guint i = 0; with_identity && identity[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) identity[i]);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  run_idp_v (&run, (const char *const *) argv->pdata);
  g_assert_cmpint (run.status, ==, 0);
  g_assert_cmpstr (run.err, ==, "");
  g_assert_true (g_str_has_suffix (run.out, "\n"));
  g_strchomp (run.out);
  return g_steal_pointer (&run.out);
}

static char *mint (Fixture *f, const char *first, ...) G_GNUC_NULL_TERMINATED;

/* mint_v () of a valid identity and the arguments up to NULL */
static char *
mint (Fixture *f, const char *first, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  va_list ap;

  va_start (ap, first);
  for (const char *arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return mint_v (f, TRUE, (const char *const *) args->pdata);
}

static void
assert_json_equal (JsonNode *node, const char *expected_json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) expected = mamd_json_parse_strict (expected_json, strlen (expected_json),
                                                         4096, 16, &error);

  g_assert_no_error (error);
  g_assert_nonnull (node);
  if (!json_node_equal (node, expected))
    {
      g_autofree char *got = json_to_string (node, FALSE);

      g_error ("claim is %s, expected %s", got, expected_json);
    }
}

/* ---- mint ---- */

static void
test_mint_default (Fixture *f, gconstpointer data)
{
  g_autofree char *token = mint (f, "--user", "alice", "--lifetime", "600", NULL);
  g_autoptr(JsonObject) header = NULL;
  g_autoptr(JsonObject) claims = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) kids = fetch_kids (f);
  g_autofree char *issuer = g_strdup_printf ("%s/%s/v2.0", f->authority, TENANT);

  decode_token (token, &header, &claims);
  g_assert_cmpstr (json_object_get_string_member (header, "kid"), ==, kids[0]);
  g_assert_cmpstr (json_object_get_string_member (claims, "ver"), ==, "2.0");
  g_assert_cmpstr (json_object_get_string_member (claims, "iss"), ==, issuer);
  g_assert_cmpstr (json_object_get_string_member (claims, "tid"), ==, TENANT);
  g_assert_cmpstr (json_object_get_string_member (claims, "aud"), ==, CLIENT);
  g_assert_cmpstr (json_object_get_string_member (claims, "scp"), ==, SCOPE);
  g_assert_cmpstr (json_object_get_string_member (claims, "oid"), ==, OID);
  g_assert_cmpstr (json_object_get_string_member (claims, "preferred_username"), ==, "alice");
  g_assert_cmpint (json_object_get_int_member (claims, "exp")
                   - json_object_get_int_member (claims, "iat"), ==, 600);
  g_assert_false (json_object_has_member (claims, "roles"));

  identity = verify (f, token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  g_assert_cmpstr (identity->tenant_id, ==, TENANT);
}

/* v1, app-only, another audience, nested values: the identity options may
 * be left out when the claim they make is set or removed. */
static void
test_mint_chosen_claims (Fixture *f, gconstpointer data)
{
  const char *const args[] = {
    "--claim", "ver=\"1.0\"",
    "--claim", "roles=[\"Mam.Read\",\"Mam.Write\"]",
    "--claim", "aud=\"api://other\"",
    "--claim", "extra={\"a\":[1,2.5,null,true],\"s\":\"x y&z=%2B \\u00e9\"}",
    "--claim", "tid=  \"" TENANT "\"  ",
    "--without", "scp",
    "--without", "oid",
    NULL
  };
  g_autofree char *token = mint_v (f, FALSE, args);
  g_autoptr(JsonObject) header = NULL;
  g_autoptr(JsonObject) claims = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(GError) error = NULL;

  decode_token (token, &header, &claims);
  assert_json_equal (json_object_get_member (claims, "ver"), "\"1.0\"");
  assert_json_equal (json_object_get_member (claims, "roles"), "[\"Mam.Read\",\"Mam.Write\"]");
  assert_json_equal (json_object_get_member (claims, "aud"), "\"api://other\"");
  assert_json_equal (json_object_get_member (claims, "extra"),
                     "{\"a\":[1,2.5,null,true],\"s\":\"x y&z=%2B \\u00e9\"}");
  assert_json_equal (json_object_get_member (claims, "tid"), "\"" TENANT "\"");
  g_assert_false (json_object_has_member (claims, "scp"));
  g_assert_false (json_object_has_member (claims, "oid"));
  /* the rest of the defaults stay */
  g_assert_true (json_object_has_member (claims, "iss"));
  g_assert_true (json_object_has_member (claims, "exp"));
  g_assert_true (json_object_has_member (claims, "nbf"));

  /* signed with a published key: the validator gets past the signature */
  identity = verify (f, token, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_assert_true (g_str_has_prefix (error->message, "version: this is a v1.0 access token"));
}

/* One change each, refused by the plugin for exactly that reason. */
static void
test_mint_refused_tokens (Fixture *f, gconstpointer data)
{
  g_autofree char *expired_at = g_strdup_printf ("exp=%" G_GINT64_FORMAT,
                                                 g_get_real_time () / G_USEC_PER_SEC - 3600);
  const struct {
    const char *args[5];
    GQuark domain;
    int code;
    const char *prefix;
  } cases[] = {
    { { "--claim", expired_at, NULL }, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN, "expired:" },
    { { "--claim", "iss=\"https://login.example/other/v2.0\"", NULL }, MAMD_ERROR,
      MAMD_ERROR_INVALID_TOKEN, "issuer: the token was issued by" },
    { { "--claim", "aud=\"api://another-app\"", NULL }, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
      "audience:" },
    { { "--claim", "roles=[\"Mam.Read\"]", "--without", "scp", NULL }, MAMD_ERROR,
      MAMD_ERROR_INVALID_TOKEN, "scope: this is an app-only token" },
    { { "--without", "oid", NULL }, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT, "" },
    { { "--claim", "oid=42", NULL }, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT, "" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *token = mint_v (f, TRUE, cases[i].args);
      g_autoptr(MamdIdentity) identity = NULL;
      g_autoptr(GError) error = NULL;

      identity = verify (f, token, &error);
      g_test_message ("%s %s -> %s", cases[i].args[0], cases[i].args[1],
                      error != NULL ? error->message : "accepted");
      g_assert_null (identity);
      g_assert_error (error, cases[i].domain, cases[i].code);
      g_assert_true (g_str_has_prefix (error->message, cases[i].prefix));
    }
}

/* --header sets header members; the token is still signed with the current
 * key, and the plugin refuses it for what its header says. */
static void
test_mint_header (Fixture *f, gconstpointer data)
{
  const struct {
    const char *member;
    int code;
  } cases[] = {
    { "kid=\"mamd-dev-no-such-key\"", MAMD_ERROR_KEY_UNAVAILABLE },
    { "alg=\"HS256\"", MAMD_ERROR_INVALID_TOKEN },
    { "alg=\"none\"", MAMD_ERROR_INVALID_TOKEN },
    { "jku=\"https://evil.example/keys\"", MAMD_ERROR_INVALID_TOKEN },
    { "crit=[\"x-unknown\"]", MAMD_ERROR_INVALID_TOKEN },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *token = mint (f, "--header", cases[i].member, NULL);
      g_autofree char *name = g_strndup (cases[i].member, strcspn (cases[i].member, "="));
      g_autoptr(JsonObject) header = NULL;
      g_autoptr(JsonObject) claims = NULL;
      g_autoptr(MamdIdentity) identity = NULL;
      g_autoptr(GError) error = NULL;

      decode_token (token, &header, &claims);
      assert_json_equal (json_object_get_member (header, name), strchr (cases[i].member, '=') + 1);
      g_assert_cmpstr (json_object_get_string_member (header, "typ"), ==, "JWT");
      g_assert_cmpstr (json_object_get_string_member (claims, "oid"), ==, OID);
      identity = verify (f, token, &error);
      g_test_message ("--header %s -> %s", cases[i].member,
                      error != NULL ? error->message : "accepted");
      g_assert_null (identity);
      g_assert_error (error, MAMD_ERROR, cases[i].code);
    }
}

static char *
nested_arrays (guint depth)
{
  GString *text = g_string_new ("deep=");

  for (guint i = 0; i < depth; i++)
    g_string_append_c (text, '[');
  for (guint i = 0; i < depth; i++)
    g_string_append_c (text, ']');
  return g_string_free (text, FALSE);
}

/* Exit 2, nothing on stdout, and a message naming the problem. */
static void
test_mint_usage_errors (Fixture *f, gconstpointer data)
{
  g_autofree char *deep = nested_arrays (40);
  const char *a = f->authority;
  const struct {
    const char *args[16];
    const char *message;
  } cases[] = {
    { { "mint", "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE, "--oid", OID },
      "mint needs --authority" },
    { { "mint", "--authority", "http://192.0.2.1:8080", "--tenant", TENANT, "--client", CLIENT,
        "--scope", SCOPE, "--oid", OID }, "not a loopback http:// authority" },
    { { "mint", "--authority", a, "--client", CLIENT, "--scope", SCOPE, "--oid", OID },
      "mint needs --tenant" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE },
      "mint needs --oid, or a --claim or --without for the oid claim" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--scope", SCOPE, "--oid", OID },
      "mint needs --client, or a --claim or --without for the aud claim" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--oid", OID,
        "--claim", "roles=[]" }, "mint needs --scope" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "stray" }, "unexpected argument stray" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--lifetime", "0" }, "--lifetime takes 1 to 86400 seconds" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "ver" }, "--claim ver: expected NAME=JSON" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "=\"x\"" }, "the claim name is empty" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "ver=" }, "value of claim \"ver\" is not one JSON value" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "ver=\"1.0\" \"2.0\"" }, "trailing data" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "roles=[\"a\"] x" }, "trailing data" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "roles=[\"a\"" }, "not one JSON value" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "x={\"a\":1,\"a\":2}" }, "duplicate" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "x='single'" }, "not one JSON value" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "x=0x10" }, "not one JSON value" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", deep }, "not one JSON value" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "ver=1.0x" }, "not one JSON value" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "ver=two" }, "a string needs JSON quotes, e.g. 'ver=\"two\"'" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--without", "" }, "--without : the claim name is empty" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "ver=\"1.0\"", "--claim", "ver=\"2.0\"" },
      "claim \"ver\" is set twice" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim", "oid=null", "--without", "oid" },
      "claim \"oid\" is both set and removed" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--without", "oid", "--without", "oid" }, "claim \"oid\" is removed twice" },
    /* refused by the server (400): still a usage error */
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--without", "oidd" },
      "cannot remove claim \"oidd\": the token has no such claim" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--claim" }, "Missing argument for --claim" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--header", "kid" }, "--header kid: expected NAME=JSON" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--header", "kid=abc" },
      "the value of header member \"kid\" is not one JSON value" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--header", "=1" }, "the header member name is empty" },
    { { "mint", "--authority", a, "--tenant", TENANT, "--client", CLIENT, "--scope", SCOPE,
        "--oid", OID, "--header", "alg=\"none\"", "--header", "alg=\"HS256\"" },
      "header member \"alg\" is set twice" },
    { { "rotate" }, "rotate needs --authority" },
    { { "rotate", "--authority", "https://127.0.0.1:1" }, "not a loopback http:// authority" },
    { { "rotate", "--authority", a, "now" }, "rotate: unexpected argument now" },
    { { "serve", "--rotate-every", "0" }, "--rotate-every takes 1 to 2592000 seconds" },
    { { "serve", "--rotate-every", "-5" }, "--rotate-every takes 1 to 2592000 seconds" },
    { { "serve", "--rotate-every", "2592001" }, "--rotate-every takes 1 to 2592000 seconds" },
    { { "serve", "--rotate-every", "soon" }, "soon" },
    /* first: without the check they abort on the library's critical
     * (G_DEBUG=fatal-criticals) instead of serving with no error injected */
    { { "serve", "--token-error", "650057" }, "--token-error takes an AADSTS code" },
    { { "serve", "--token-error", "AADSTS" }, "not AADSTS" },
    { { "serve", "--token-error", "AADSTS65x" }, "not AADSTS65x" },
    { { "serve", "--token-error", "AADSTS6500570000" }, "--token-error takes" },
    { { "frobnicate" }, "usage: mamd-dev-idp serve" },
  };
  g_auto(GStrv) kids_before = fetch_kids (f);
  g_auto(GStrv) kids_after = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(MamdTestRun) run = { 0 };

      run_idp_v (&run, cases[i].args);
      g_assert_cmpint (run.status, ==, 2);
      g_assert_cmpstr (run.out, ==, "");
      if (strstr (run.err, cases[i].message) == NULL)
        g_error ("case %u: expected \"%s\" in: %s", i, cases[i].message, run.err);
    }
  /* none of them reached the keys */
  kids_after = fetch_kids (f);
  g_assert_cmpstrv (kids_after, kids_before);
}

/* The form the CLI sends, spoken directly: repeated claim and without
 * fields, strict decoding, the same checks as the CLI. */
static void
test_mint_endpoint (Fixture *f, gconstpointer data)
{
  const char *const refused[][2] = {
    { "client=" CLIENT "&scope=" SCOPE "&oid=" OID, "field tenant is required" },
    { "tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE, "field oid is required unless" },
    { "tenant=" TENANT "&tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE "&oid=" OID,
      "field tenant given twice" },
    { "tenant=" TENANT "&claims=x&client=" CLIENT "&scope=" SCOPE "&oid=" OID,
      "unknown field claims" },
    { "tenant=%ZZ&client=" CLIENT "&scope=" SCOPE "&oid=" OID, "not valid UTF-8" },
    { "tenant=a%00b&client=" CLIENT "&scope=" SCOPE "&oid=" OID, "not valid UTF-8" },
    { "tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE "&oid=" OID "&claim=ver%3D1%202",
      "trailing data" },
    { "tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE "&oid=" OID "&claim=%3D1",
      "the claim name is empty" },
    { "tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE "&oid=" OID "&without=x",
      "cannot remove claim \"x\"" },
    { "tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE "&oid=" OID "&lifetime=90000",
      "lifetime: 1 to 86400 seconds" },
  };
  g_autofree char *body = NULL;
  g_autofree char *big = NULL;
  g_autoptr(JsonObject) header = NULL;
  g_autoptr(JsonObject) claims = NULL;

  g_assert_cmpuint (http_request (f, SOUP_METHOD_POST, "/mamd-dev/mint",
                                  "tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE
                                  "&claim=ver%3D%221.0%22&claim=roles%3D%5B%22r%22%5D"
                                  "&without=oid&without=nbf",
                                  NULL, &body),
                    ==, SOUP_STATUS_OK);
  decode_token (body, &header, &claims);
  assert_json_equal (json_object_get_member (claims, "ver"), "\"1.0\"");
  assert_json_equal (json_object_get_member (claims, "roles"), "[\"r\"]");
  g_assert_false (json_object_has_member (claims, "oid"));
  g_assert_false (json_object_has_member (claims, "nbf"));
  g_assert_cmpstr (json_object_get_string_member (claims, "scp"), ==, SCOPE);
  g_clear_pointer (&body, g_free);

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_assert_cmpuint (http_request (f, SOUP_METHOD_POST, "/mamd-dev/mint", refused[i][0],
                                      NULL, &body), ==, SOUP_STATUS_BAD_REQUEST);
      if (strstr (body, refused[i][1]) == NULL)
        g_error ("form %s: expected \"%s\" in: %s", refused[i][0], refused[i][1], body);
      g_clear_pointer (&body, g_free);
    }

  big = g_strnfill (70 * 1024, 'a');
  g_assert_cmpuint (http_request (f, SOUP_METHOD_POST, "/mamd-dev/mint", big, NULL, &body),
                    ==, SOUP_STATUS_BAD_REQUEST);
  g_assert_nonnull (strstr (body, "at most"));
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (http_request (f, SOUP_METHOD_GET, "/mamd-dev/mint", NULL, NULL, &body),
                    ==, SOUP_STATUS_METHOD_NOT_ALLOWED);
}

/* ---- token endpoint ---- */

#define CLIENT_SECRET "s3cr+t/~x"
#define MAM_SCOPE_FORM "scope=https%3A%2F%2Fmsmamservice.api.application%2F.default"

/* POST @form to the tenant's token endpoint, with "Authorization: Basic"
 * of @user and @password (form-encoded first, RFC 6749 2.3.1) unless
 * NULL. Returns the status, *answer the JSON object answered. */
static guint
token_request (Fixture *f, const char *user, const char *password, const char *form,
               JsonObject **answer)
{
  g_autoptr(SoupSession) session = soup_session_new_with_options ("timeout", 10, NULL);
  g_autofree char *url = g_strconcat (f->authority, "/" TENANT "/oauth2/v2.0/token", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_POST, url);
  g_autoptr(GBytes) request = g_bytes_new (form, strlen (form));
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = NULL;

  soup_message_set_request_body_from_bytes (msg, "application/x-www-form-urlencoded", request);
  if (user != NULL)
    {
      g_autofree char *escaped_user = g_uri_escape_string (user, NULL, FALSE);
      g_autofree char *escaped_password = g_uri_escape_string (password, NULL, FALSE);
      g_autofree char *pair = g_strconcat (escaped_user, ":", escaped_password, NULL);
      g_autofree char *encoded = g_base64_encode ((const guchar *) pair, strlen (pair));
      g_autofree char *value = g_strconcat ("Basic ", encoded, NULL);

      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                    value);
    }
  bytes = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  node = mamd_json_parse_strict_object (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                        64 * 1024, 16, &error);
  g_assert_no_error (error);
  *answer = json_object_ref (json_node_get_object (node));
  return soup_message_get_status (msg);
}

static gint64
answer_code (JsonObject *answer)
{
  JsonArray *codes = json_object_get_array_member (answer, "error_codes");

  g_assert_nonnull (codes);
  g_assert_cmpuint (json_array_get_length (codes), ==, 1);
  return json_array_get_int_element (codes, 0);
}

/* The client authentication methods the discovery document advertises:
 * the secret in the form (client_secret_post, what mamd sends) or in an
 * Authorization: Basic header (client_secret_basic). */
static void
test_token_client_auth (Fixture *f, gconstpointer data)
{
  g_autoptr(JsonObject) answer = NULL;

  g_assert_cmpuint (token_request (f, NULL, NULL,
                                   "grant_type=client_credentials&client_id=" CLIENT
                                   "&client_secret=s3cr%2Bt%2F~x&" MAM_SCOPE_FORM, &answer),
                    ==, SOUP_STATUS_OK);
  g_assert_true (json_object_has_member (answer, "access_token"));
  g_clear_pointer (&answer, json_object_unref);

  g_assert_cmpuint (token_request (f, CLIENT, CLIENT_SECRET,
                                   "grant_type=client_credentials&" MAM_SCOPE_FORM, &answer),
                    ==, SOUP_STATUS_OK);
  g_assert_true (json_object_has_member (answer, "access_token"));
  g_clear_pointer (&answer, json_object_unref);

  /* a failed client authentication is 401, as from Entra (and RFC 6749
   * 5.2 requires for a Basic header) */
  g_assert_cmpuint (token_request (f, CLIENT, "wrong",
                                   "grant_type=client_credentials&" MAM_SCOPE_FORM, &answer),
                    ==, SOUP_STATUS_UNAUTHORIZED);
  g_assert_cmpstr (json_object_get_string_member (answer, "error"), ==, "invalid_client");
  g_assert_cmpint (answer_code (answer), ==, 7000215);
  g_clear_pointer (&answer, json_object_unref);

  g_assert_cmpuint (token_request (f, NULL, NULL,
                                   "grant_type=client_credentials&client_id=" CLIENT
                                   "&client_secret=wrong&" MAM_SCOPE_FORM, &answer),
                    ==, SOUP_STATUS_UNAUTHORIZED);
  g_assert_cmpint (answer_code (answer), ==, 7000215);
  g_clear_pointer (&answer, json_object_unref);

  g_assert_cmpuint (token_request (f, NULL, NULL,
                                   "grant_type=client_credentials&client_id=" CLIENT
                                   "&" MAM_SCOPE_FORM, &answer),
                    ==, SOUP_STATUS_UNAUTHORIZED);
  g_assert_cmpstr (json_object_get_string_member (answer, "error"), ==, "invalid_client");
  g_assert_cmpint (answer_code (answer), ==, 7000218);
}

/* ---- rotate ---- */

static char *
rotate (Fixture *f)
{
  g_auto(MamdTestRun) run = { 0 };

  run_idp (&run, "rotate", "--authority", f->authority);
  g_assert_cmpint (run.status, ==, 0);
  g_assert_cmpstr (run.err, ==, "");
  g_strchomp (run.out);
  g_assert_cmpstr (run.out, !=, "");
  g_assert_null (strchr (run.out, '\n'));
  return g_steal_pointer (&run.out);
}

static void
test_rotate_on_demand (Fixture *f, gconstpointer data)
{
  g_auto(GStrv) kids0 = fetch_kids (f);
  g_auto(GStrv) kids1 = NULL;
  g_auto(GStrv) kids2 = NULL;
  g_autofree char *token0 = mint (f, "--user", "before", NULL);
  g_autofree char *kid0 = token_kid (token0);
  g_autofree char *kid1 = NULL;
  g_autofree char *kid2 = NULL;
  g_autofree char *token1 = NULL;
  g_autofree char *token1_kid = NULL;
  g_autofree char *log = NULL;
  g_autofree char *logged = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (g_strv_length (kids0), ==, 1);
  g_assert_cmpstr (kids0[0], ==, kid0);

  kid1 = rotate (f);
  g_assert_cmpstr (kid1, !=, kid0);
  kids1 = fetch_kids (f);
  g_assert_cmpstrv (kids1, ((const char *const[]) { kid1, kid0, NULL }));

  /* new tokens carry the new kid; both verify against the JWKS */
  token1 = mint (f, "--user", "after", NULL);
  token1_kid = token_kid (token1);
  g_assert_cmpstr (token1_kid, ==, kid1);
  identity = verify (f, token1, &error);
  g_assert_no_error (error);
  g_clear_pointer (&identity, mamd_identity_free);
  identity = verify (f, token0, &error);
  g_assert_no_error (error);
  g_clear_pointer (&identity, mamd_identity_free);

  /* the key before the previous one is gone */
  kid2 = rotate (f);
  kids2 = fetch_kids (f);
  g_assert_cmpstrv (kids2, ((const char *const[]) { kid2, kid1, NULL }));
  identity = verify (f, token0, &error);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_assert_null (identity);

  log = read_log (f);
  logged = g_strdup_printf ("rotated the signing key on request: new kid %s, previous kid %s",
                            kid2, kid1);
  g_assert_nonnull (strstr (log, logged));
}

/* Loopback only is the same guard as minting's; POST only; and a web page
 * (Origin) cannot rotate behind the developer's back. */
static void
test_rotate_endpoint_refusals (Fixture *f, gconstpointer data)
{
  g_auto(GStrv) before = fetch_kids (f);
  g_auto(GStrv) after = NULL;
  g_autofree char *body = NULL;

  g_assert_cmpuint (http_request (f, SOUP_METHOD_GET, "/mamd-dev/rotate", NULL, NULL, &body),
                    ==, SOUP_STATUS_METHOD_NOT_ALLOWED);
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (http_request (f, SOUP_METHOD_POST, "/mamd-dev/rotate", "", "http://evil.example",
                                  &body), ==, SOUP_STATUS_FORBIDDEN);
  after = fetch_kids (f);
  g_assert_cmpstrv (after, before);
  g_clear_pointer (&body, g_free);

  g_assert_cmpuint (http_request (f, SOUP_METHOD_POST, "/mamd-dev/rotate", "", NULL, &body),
                    ==, SOUP_STATUS_OK);
  g_strchomp (body);
  g_strfreev (after);
  after = fetch_kids (f);
  g_assert_cmpstrv (after, ((const char *const[]) { body, before[0], NULL }));
}

/* Both developer endpoints refuse web pages, even same-origin ones after
 * DNS rebinding: an Origin header, or a Host that is not a loopback name
 * with this server's port. */
static void
test_dev_endpoint_guards (Fixture *f, gconstpointer data)
{
  const char *port = strrchr (f->authority, ':') + 1;
  const char *const paths[] = { "/mamd-dev/mint", "/mamd-dev/rotate" };
  g_autofree char *evil = g_strdup_printf ("evil.example:%s", port);
  g_autofree char *other_port = g_strdup_printf ("127.0.0.1:%u",
                                                 (guint) g_ascii_strtoull (port, NULL, 10) + 1);
  g_autofree char *localhost = g_strdup_printf ("LocalHost:%s", port);
  g_autofree char *suffixed = g_strdup_printf ("localhost.evil.example:%s", port);
  const char *const bad_hosts[] = { evil, other_port, suffixed, "127.0.0.1",
                                    "127.0.0.1.evil.example" };
  const char *form = "tenant=" TENANT "&client=" CLIENT "&scope=" SCOPE "&oid=" OID;
  g_auto(GStrv) before = fetch_kids (f);
  g_auto(GStrv) after = NULL;
  g_autofree char *body = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_assert_cmpuint (http_request_full (f, SOUP_METHOD_POST, paths[i], form,
                                           "http://evil.example", evil, &body),
                        ==, SOUP_STATUS_FORBIDDEN);
      g_clear_pointer (&body, g_free);
      g_assert_cmpuint (http_request (f, SOUP_METHOD_POST, paths[i], form, "null", &body),
                        ==, SOUP_STATUS_FORBIDDEN);
      g_clear_pointer (&body, g_free);
      for (guint j = 0; j < G_N_ELEMENTS (bad_hosts); j++)
        {
          g_assert_cmpuint (http_request_full (f, SOUP_METHOD_POST, paths[i], form, NULL,
                                               bad_hosts[j], &body),
                            ==, SOUP_STATUS_FORBIDDEN);
          g_assert_nonnull (strstr (body, "Host"));
          g_clear_pointer (&body, g_free);
        }
    }
  after = fetch_kids (f);
  g_assert_cmpstrv (after, before);

  /* loopback names, in any case, with the port */
  g_assert_cmpuint (http_request_full (f, SOUP_METHOD_POST, "/mamd-dev/mint", form, NULL,
                                       localhost, &body), ==, SOUP_STATUS_OK);
  g_clear_pointer (&body, g_free);
  g_assert_cmpuint (http_request_full (f, SOUP_METHOD_POST, "/mamd-dev/rotate", "", NULL,
                                       f->authority + strlen ("http://"), &body),
                    ==, SOUP_STATUS_OK);
}

/* mint and rotate only ever talk to a loopback server: a proxy from the
 * environment (as on many a developer's machine) must not get the request,
 * nor the token in the answer. The "proxy" here is a loopback port that
 * refuses every connection, so a client that uses it fails. */
static void
test_client_ignores_proxy (Fixture *f, gconstpointer data)
{
  g_autoptr(GSocket) closed = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *proxy = NULL;
  const char *const variables[] = { "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY" };
  const char *const mint_args[] = { "mint", "--authority", f->authority, "--tenant", TENANT,
                                    "--client", CLIENT, "--scope", SCOPE, "--oid", OID, NULL };
  const char *const rotate_args[] = { "rotate", "--authority", f->authority, NULL };
  g_auto(MamdTestRun) minted = { 0 };
  g_auto(MamdTestRun) rotated = { 0 };
  g_auto(GStrv) kids = fetch_kids (f);
  g_autofree char *kid = NULL;

  /* bound, never listening: connections to it are refused */
  closed = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                         &error);
  g_assert_no_error (error);
  g_socket_bind (closed, any_port, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (closed, &error);
  g_assert_no_error (error);
  proxy = g_strdup_printf ("http://127.0.0.1:%u",
                           g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  for (guint i = 0; i < G_N_ELEMENTS (variables); i++)
    g_subprocess_launcher_setenv (launcher, variables[i], proxy, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "no_proxy");
  g_subprocess_launcher_unsetenv (launcher, "NO_PROXY");

  mamd_test_run (launcher, "tools/mamd-dev-idp", mint_args, &minted);
  g_assert_cmpstr (minted.err, ==, "");
  g_assert_cmpint (minted.status, ==, 0);
  kid = token_kid (g_strchomp (minted.out));
  g_assert_cmpstr (kid, ==, kids[0]);
  mamd_test_run (launcher, "tools/mamd-dev-idp", rotate_args, &rotated);
  g_assert_cmpstr (rotated.err, ==, "");
  g_assert_cmpint (rotated.status, ==, 0);
}

/* The scheduled rotations logged so far, as (new, previous) kid pairs in
 * order. */
static GPtrArray *
scheduled_rotations (Fixture *f)
{
  g_autoptr(GRegex) line = g_regex_new ("rotated the signing key on schedule: new kid (\\S+), "
                                        "previous kid (\\S+) still published", 0, 0, NULL);
  g_autofree char *log = read_log (f);
  g_autoptr(GMatchInfo) match = NULL;
  GPtrArray *pairs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);

  g_regex_match (line, log, 0, &match);
  for (; g_match_info_matches (match); g_match_info_next (match, NULL))
    {
      char **pair = g_new0 (char *, 3);

      pair[0] = g_match_info_fetch (match, 1);
      pair[1] = g_match_info_fetch (match, 2);
      g_ptr_array_add (pairs, pair);
    }
  return pairs;
}

/* The key rotates by itself (every 2 s here): each rotation is logged, the
 * JWKS publishes the new key first and keeps the previous one, and new
 * tokens are signed with the new key. The JWKS is read between two reads of
 * the log that agree, so a rotation in between cannot mislead the test. */
static void
test_rotate_on_schedule (Fixture *f, gconstpointer data)
{
  g_auto(GStrv) kids = NULL;
  g_autoptr(GPtrArray) rotations = NULL;
  g_autofree char *token = NULL;
  g_autofree char *kid = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + WAIT_SECONDS * G_USEC_PER_SEC;
  const char *const *last;

  for (;;)
    {
      g_autoptr(GPtrArray) again = NULL;

      g_clear_pointer (&rotations, g_ptr_array_unref);
      g_clear_pointer (&kids, g_strfreev);
      rotations = scheduled_rotations (f);
      kids = fetch_kids (f);
      again = scheduled_rotations (f);
      if (rotations->len > 0 && again->len == rotations->len)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (G_USEC_PER_SEC / 10);
    }
  /* each rotation keeps the key the one before it made */
  for (guint i = 1; i < rotations->len; i++)
    g_assert_cmpstr (((char **) rotations->pdata[i])[1], ==,
                     ((char **) rotations->pdata[i - 1])[0]);
  last = rotations->pdata[rotations->len - 1];
  g_assert_cmpuint (g_strv_length (kids), ==, 2);
  g_assert_cmpstr (kids[0], ==, last[0]);
  g_assert_cmpstr (kids[1], ==, last[1]);

  /* a new token no longer uses the key the server started with */
  token = mint (f, "--user", "scheduled", NULL);
  kid = token_kid (token);
  g_assert_cmpstr (kid, !=, ((char **) rotations->pdata[0])[1]);
  identity = verify (f, token, &error);
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  static const char *const every_two_seconds[] = { "--rotate-every", "2", NULL };
  static const char *const with_client[] = { "--tenant", TENANT, "--client", CLIENT,
                                              "--secret", CLIENT_SECRET, NULL };

  g_test_init (&argc, &argv, NULL);
  g_test_add ("/mamd/dev-idp/mint/default", Fixture, NULL, fixture_setup, test_mint_default,
              fixture_teardown);
  g_test_add ("/mamd/dev-idp/mint/chosen-claims", Fixture, NULL, fixture_setup,
              test_mint_chosen_claims, fixture_teardown);
  g_test_add ("/mamd/dev-idp/mint/refused-tokens", Fixture, NULL, fixture_setup,
              test_mint_refused_tokens, fixture_teardown);
  g_test_add ("/mamd/dev-idp/mint/header", Fixture, NULL, fixture_setup, test_mint_header,
              fixture_teardown);
  g_test_add ("/mamd/dev-idp/mint/usage-errors", Fixture, NULL, fixture_setup,
              test_mint_usage_errors, fixture_teardown);
  g_test_add ("/mamd/dev-idp/mint/endpoint", Fixture, NULL, fixture_setup, test_mint_endpoint,
              fixture_teardown);
  g_test_add ("/mamd/dev-idp/token/client-auth", Fixture, with_client, fixture_setup,
              test_token_client_auth, fixture_teardown);
  g_test_add ("/mamd/dev-idp/rotate/on-demand", Fixture, NULL, fixture_setup,
              test_rotate_on_demand, fixture_teardown);
  g_test_add ("/mamd/dev-idp/dev-endpoint-guards", Fixture, NULL, fixture_setup,
              test_dev_endpoint_guards, fixture_teardown);
  g_test_add ("/mamd/dev-idp/rotate/endpoint-refusals", Fixture, NULL, fixture_setup,
              test_rotate_endpoint_refusals, fixture_teardown);
  g_test_add ("/mamd/dev-idp/client-ignores-proxy", Fixture, NULL, fixture_setup,
              test_client_ignores_proxy, fixture_teardown);
  g_test_add ("/mamd/dev-idp/rotate/on-schedule", Fixture, every_two_seconds, fixture_setup,
              test_rotate_on_schedule, fixture_teardown);
  return g_test_run ();
}
