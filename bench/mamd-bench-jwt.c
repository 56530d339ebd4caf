/*
 * mamd-bench-jwt: in-process token validation rate next to the raw OpenSSL
 * RS256 verification rate on the same 2048-bit key and signing input.
 *
 *   mamd-bench-jwt [--seconds D] [--json]
 *
 * Goal: mamd_jwt_parse + mamd_jwt_verify >= 85% of raw verifications/s.
 * The two loops alternate in batches of 64 calls and each is timed in
 * thread CPU time, so that a busy machine slows both alike rather than
 * whichever happened to run at the wrong moment.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-glib/json-glib.h>
#include <openssl/evp.h>

#include "mamd-idp-mint.h"
#include "mamd-json.h"
#include "mamd-oauth-jwks.h"
#include "mamd-oauth-jwt.h"

#define RATIO_GOAL 0.85
#define BATCH 64

#define AUTHORITY "https://login.microsoftonline.com"
#define TENANT "0b5e7a1c-9d2f-4e83-a6b4-1c2d3e4f5a6b"
#define CLIENT "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
#define OID "6e8d4e7b-2b0c-4c5b-9f1f-3d3e4f5a6b7c"
#define SCOPE "login.mattermost"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)

typedef struct {
  EVP_PKEY *key;
  MamdJwks *jwks;
  char *token;
  const char *signing_input; /* into token */
  gsize signing_input_len;
  guint8 *signature;
  gsize signature_len;
  MamdJwtPolicy policy;
} Bench;

typedef gboolean (*OpFunc) (Bench *bench, GError **error);

static gboolean
raw_verify (Bench *bench, GError **error)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  gboolean ok;

  ok = ctx != NULL &&
       EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, bench->key) == 1 &&
       EVP_DigestVerify (ctx, bench->signature, bench->signature_len,
                         (const guint8 *) bench->signing_input, bench->signing_input_len) == 1;
  EVP_MD_CTX_free (ctx);
  if (!ok)
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "raw RS256 verification failed");
  return ok;
}

static gboolean
full_validate (Bench *bench, GError **error)
{
  g_autoptr(MamdJwt) jwt = mamd_jwt_parse (bench->token, error);
  g_autoptr(MamdIdentity) identity = NULL;
  const MamdJwk *key;

  if (jwt == NULL)
    return FALSE;
  key = mamd_jwks_lookup (bench->jwks, mamd_jwt_get_kid (jwt));
  if (key == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "kid not in the JWKS");
      return FALSE;
    }
  identity = mamd_jwt_verify (jwt, key, &bench->policy, error);
  return identity != NULL;
}

/* CPU time of this thread: other processes on a busy machine then slow
 * neither loop down, and the rates compare the work itself. */
static gint64
thread_cpu_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct {
  OpFunc op;
  guint64 ops;
  gint64 ns;
} Phase;

static gboolean
run_batch (Bench *bench, Phase *phase, GError **error)
{
  gint64 start = thread_cpu_ns ();

  for (guint i = 0; i < BATCH; i++)
    if (!phase->op (bench, error))
      return FALSE;
  phase->ns += thread_cpu_ns () - start;
  phase->ops += BATCH;
  return TRUE;
}

static gboolean
bench_setup (Bench *bench, GError **error)
{
  g_autoptr(JsonObject) jwk = NULL;
  g_autoptr(JsonArray) keys = json_array_new ();
  g_autoptr(JsonObject) root = json_object_new ();
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autofree char *jwks_text = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *dot;

  bench->key = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, error);
  if (bench->key == NULL)
    return FALSE;

  /* the key reaches the validator the way the plugin gets it: via a JWKS */
  jwk = mamd_idp_key_to_jwk (bench->key, "bench-key", NULL);
  json_array_add_object_element (keys, g_steal_pointer (&jwk));
  json_object_set_array_member (root, "keys", g_steal_pointer (&keys));
  json_node_set_object (node, root);
  json_generator_set_root (gen, node);
  jwks_text = json_generator_to_data (gen, NULL);
  bench->jwks = mamd_jwks_parse (jwks_text, strlen (jwks_text), error);
  if (bench->jwks == NULL)
    return FALSE;

  bench->token = mamd_idp_mint_access_token (bench->key, "bench-key", AUTHORITY, TENANT, CLIENT,
                                             SCOPE, OID, "megan@contoso.com", now, 24 * 3600,
                                             error);
  if (bench->token == NULL)
    return FALSE;
  dot = strrchr (bench->token, '.');
  bench->signing_input = bench->token;
  bench->signing_input_len = (gsize) (dot - bench->token);
  bench->signature = mamd_base64url_decode (dot + 1, -1, &bench->signature_len, error);
  if (bench->signature == NULL)
    return FALSE;

  bench->policy.issuer = AUTHORITY "/" TENANT "/v2.0";
  bench->policy.tenant_id = TENANT;
  bench->policy.client_id = CLIENT;
  bench->policy.required_scope = SCOPE;
  bench->policy.now = now;
  bench->policy.skew = 300;
  return TRUE;
}

static void
bench_clear (Bench *bench)
{
  EVP_PKEY_free (bench->key);
  g_clear_pointer (&bench->jwks, mamd_jwks_unref);
  g_free (bench->token);
  g_free (bench->signature);
}

static void
print_json (double seconds, gsize token_len, double raw, double full, double ratio)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonGenerator) gen = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "cpu-seconds-per-phase");
  json_builder_add_double_value (b, seconds);
  json_builder_set_member_name (b, "key-bits");
  json_builder_add_int_value (b, 2048);
  json_builder_set_member_name (b, "token-bytes");
  json_builder_add_int_value (b, (gint64) token_len);
  json_builder_set_member_name (b, "raw-verifies-per-second");
  json_builder_add_double_value (b, raw);
  json_builder_set_member_name (b, "validations-per-second");
  json_builder_add_double_value (b, full);
  json_builder_set_member_name (b, "ratio");
  json_builder_add_double_value (b, ratio);
  json_builder_set_member_name (b, "ratio-goal");
  json_builder_add_double_value (b, RATIO_GOAL);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

int
main (int argc, char **argv)
{
  double seconds = 3.0;
  gboolean json = FALSE;
  const GOptionEntry entries[] = {
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "CPU seconds per phase (default 3)", "D" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new ("- JWT validation benchmark");
  g_autoptr(GError) error = NULL;
  Bench bench = { 0 };
  Phase raw_phase = { raw_verify, 0, 0 };
  Phase full_phase = { full_validate, 0, 0 };
  gint64 budget_ns;
  double raw, full, ratio;
  gboolean ok = TRUE;

  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (context,
      "Measures raw OpenSSL RS256 verifications/s (EVP_DigestVerifyInit +\n"
      "EVP_DigestVerify) and full mamd_jwt_parse + mamd_jwt_verify validations/s\n"
      "of an access token signed by the same 2048-bit key, in alternating batches\n"
      "timed in thread CPU time.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("mamd-bench-jwt: %s\n", error->message);
      return 2;
    }
  if (!(seconds > 0 && seconds <= 3600))
    {
      g_printerr ("mamd-bench-jwt: --seconds must be in (0, 3600]\n");
      return 2;
    }
  if (!bench_setup (&bench, &error))
    {
      g_printerr ("mamd-bench-jwt: cannot set up: %s\n", error->message);
      bench_clear (&bench);
      return 1;
    }

  budget_ns = (gint64) (seconds * 1e9);
  while (ok && (raw_phase.ns < budget_ns || full_phase.ns < budget_ns))
    ok = run_batch (&bench, &raw_phase, &error) && run_batch (&bench, &full_phase, &error);
  if (!ok)
    {
      g_printerr ("mamd-bench-jwt: %s\n", error->message);
      bench_clear (&bench);
      return 1;
    }

  raw = raw_phase.ops / (raw_phase.ns / 1e9);
  full = full_phase.ops / (full_phase.ns / 1e9);
  ratio = full / raw;
  if (json)
    print_json (seconds, strlen (bench.token), raw, full, ratio);
  else
    {
      printf ("mamd-bench-jwt: RSA 2048, %" G_GSIZE_FORMAT "-byte token, %.1f CPU s per phase\n",
              strlen (bench.token), seconds);
      printf ("raw OpenSSL RS256 verify      %10.1f /s\n", raw);
      printf ("mamd_jwt_parse + verify       %10.1f /s\n", full);
      printf ("validation/raw %.1f%% (goal >= %.0f%%): %s\n", ratio * 100, RATIO_GOAL * 100,
              ratio >= RATIO_GOAL ? "met" : "MISSED");
    }
  bench_clear (&bench);
  return 0;
}
