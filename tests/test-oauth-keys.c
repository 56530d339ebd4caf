/*
 * The signing-key cache against the real developer identity provider on
 * 127.0.0.1: discovery and caching, key rotation, a storm of unknown kids,
 * a provider that is down and one that is slow (a request it holds until
 * the test releases it). Keys and tokens are made at test time. Nothing
 * asserts on elapsed time: results are checked by request counts and by
 * the order in which callbacks ran. The HTTP client's rules
 * and the MAM service permission check are test-oauth-http.c; the fixture
 * is mamd-test-oauth-keys-server.c.
 */
#include "config.h"

#include <string.h>

#include "mamd-oauth-jwt.h"
#include "mamd-plugin.h"
#include "mamd-test-oauth-keys-server.h"

#define USER_OID "11111111-2222-4333-8444-555555555555"

/* ---- helpers ---- */

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
  /* says why a key published just now is not there yet */
  g_assert_nonnull (strstr (second.error->message, " s ago, has it (an unknown key id fetches "
                                                   "the keys again at most once every "));
  g_assert_nonnull (strstr (second.error->message, "KeyRefetchCooldown"));
  g_assert_cmpuint (idp_count (fx, NULL), ==, 3);

  mamd_oauth_keys_stop (keys);
  lookup_clear (&lookup);
  lookup_clear (&second);
}

/* A token naming a key that the provider lists but mamd cannot use (RSA
 * 1024) is told so, not that no key has its kid, which reads as forged. */
static void
test_keys_skipped_kid (Fixture *fx, gconstpointer data)
{
  g_autofree char *url = g_strconcat (fx->rogue_base, "/" TENANT "/v2.0", DISCOVERY_PATH, NULL);
  g_autoptr(MamdOauthKeys) keys = mamd_oauth_keys_new (fx->http, url, 3600, 300);
  Lookup lookup = { 0 };

  rogue_make_jwks (fx);
  lookup_run (keys, "strong", &lookup);
  g_assert_no_error (lookup.error);
  lookup_run (keys, "weak", &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_assert_true (g_str_has_prefix (lookup.error->message,
                                   "signature: the provider lists key id \"weak\", but that "
                                   "key cannot verify RS256 tokens (1024-bit modulus"));
  /* a kid that the provider does not list at all is still unknown */
  lookup_run (keys, "absent", &lookup);
  g_assert_error (lookup.error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_assert_true (g_str_has_prefix (lookup.error->message, "signature: unknown key id"));

  mamd_oauth_keys_stop (keys);
  lookup_clear (&lookup);
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
flag_is_set (gpointer data)
{
  return *(gboolean *) data;
}

static gboolean
request_held (gpointer data)
{
  return mamd_idp_server_get_n_held (data) > 0;
}

/* Runs the main context until @condition holds. Unlike iterate_until (), a
 * wait that would never end fails the test: the guard is far longer than
 * any answer here takes, and no result depends on how long anything took. */
static void
wait_until (gboolean (*condition) (gpointer data), gpointer data)
{
  gboolean timed_out = FALSE;
  g_autoptr(GSource) guard = g_timeout_source_new_seconds (60);

  g_source_set_callback (guard, set_flag, &timed_out, NULL);
  g_source_attach (guard, NULL);
  while (!condition (data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (guard);
  g_assert_true (condition (data));
}

/* A slow provider without a clock: the provider holds the JWKS request for
 * a new kid unanswered until the test releases it. While it is held, a
 * lookup of a cached kid is answered. A cache that queued every lookup
 * behind the fetch in flight, or a fetch that blocked the main loop (the
 * provider runs on it too), answers nothing while the request is held, and
 * the wait for the cached lookup fails (or the slow lookup ends first, with
 * the error of a fetch given up). */
static void
test_keys_slow_provider (Fixture *fx, gconstpointer data)
{
  g_autoptr(MamdOauthKeys) keys = mamd_oauth_keys_new (fx->http, fx->discovery_url, 3600, 0);
  g_autofree char *cached_kid = g_strdup (mamd_idp_server_get_current_kid (fx->idp));
  Lookup slow = { 0 }, fast = { 0 };

  lookup_run (keys, cached_kid, &fast);
  g_assert_no_error (fast.error);

  /* a new kid needs the JWKS again: held, so the fetch is surely in flight */
  mamd_idp_server_rotate_key (fx->idp);
  mamd_idp_server_hold (fx->idp, JWKS_PATH);
  lookup_start (keys, mamd_idp_server_get_current_kid (fx->idp), &slow);
  wait_until (request_held, fx->idp);

  lookup_start (keys, cached_kid, &fast);
  wait_until (flag_is_set, &fast.done);
  g_assert_no_error (fast.error);
  g_assert_cmpstr (fast.key->kid, ==, cached_kid);
  g_assert_false (slow.done);
  g_assert_cmpuint (mamd_idp_server_get_n_held (fx->idp), ==, 1);

  /* answered now, with the rotated key */
  mamd_idp_server_release (fx->idp);
  wait_until (flag_is_set, &slow.done);
  g_assert_no_error (slow.error);
  g_assert_cmpstr (slow.key->kid, ==, mamd_idp_server_get_current_kid (fx->idp));
  g_assert_cmpuint (idp_count (fx, JWKS_PATH), ==, 2);
  g_assert_cmpuint (fast.order, <, slow.order);
  lookup_clear (&slow);
  lookup_clear (&fast);
}

/* ---- main ---- */

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/mamd/oauth/keys/discovery", test_keys_discovery);
  ADD ("/mamd/oauth/keys/skipped-kid", test_keys_skipped_kid);
  ADD ("/mamd/oauth/keys/rotation", test_keys_rotation);
  ADD ("/mamd/oauth/keys/unknown-kid-storm", test_keys_unknown_kid_storm);
  ADD ("/mamd/oauth/keys/provider-down", test_keys_provider_down);
  ADD ("/mamd/oauth/keys/slow-provider", test_keys_slow_provider);
  return g_test_run ();
}
