/*
 * Shared by the signing-key cache tests (test-oauth-keys.c) and the HTTP
 * client and MAM service permission tests (test-oauth-http.c): the fixture
 * that starts the developer identity provider and a second, misbehaving
 * SoupServer on 127.0.0.1, the request counts of both, and key lookups run
 * to completion on the default main context.
 */
#pragma once

#include <libsoup/soup.h>

#include "mamd-idp-server.h"
#include "mamd-oauth-keys.h"

G_BEGIN_DECLS

#define TENANT "6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define CLIENT "0b9a8c7d-6e5f-4d3c-2b1a-0f9e8d7c6b5a"
#define SECRET "s3cr3t-Value_only.unreserved~chars"
#define JWKS_PATH "/discovery/v2.0/keys"
#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define TOKEN_PATH "/oauth2/v2.0/token"
/* the body cap the tests fetch with: the misbehaving server's /big is one
 * byte over it, /exact just fits */
#define CAP (256 * 1024)

typedef struct {
  MamdIdpServer *idp;
  MamdOauthHttp *http;
  char *discovery_url;
  char *token_endpoint;
  char *issuer;
  SoupServer *rogue;      /* redirects, oversize bodies, hangs, echoes */
  char *rogue_base;
  GHashTable *rogue_counts;
  char *rogue_jwks;       /* what its JWKS path serves, once rogue_make_jwks() made it */
} Fixture;

/* Starts the identity provider (client CLIENT of TENANT, secret SECRET), an
 * HTTP client with a 10 s timeout and the misbehaving server; the paths the
 * latter serves are listed in mamd-test-oauth-keys-server.c. */
void fixture_setup (Fixture *fx, gconstpointer data);
/* Stops both servers and runs what their closing queued. */
void fixture_teardown (Fixture *fx, gconstpointer data);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

/* Makes the JWKS the misbehaving server then serves: "strong" (RSA 2048) and
 * "weak" (RSA 1024, which the parser skips). Generating the keys takes long
 * under valgrind, so it is done here, not while a client's request waits. */
void rogue_make_jwks (Fixture *fx);
/* Requests the misbehaving server has had for @path. */
guint rogue_count (Fixture *fx, const char *path);
/* Requests the identity provider has had for paths ending in @suffix; all of
 * them when NULL. */
guint idp_count (Fixture *fx, const char *suffix);

/* Runs the default main context until *@flag is set. */
void iterate_until (const gboolean *flag);

/* Incremented by each lookup as it finishes (and by whatever else a test
 * wants to place in that order). */
extern guint order_counter;

typedef struct {
  gboolean done;
  guint order;
  const MamdJwk *key;
  MamdJwks *jwks;
  GError *error;
} Lookup;

/* Frees what @lookup holds and zeroes it. */
void lookup_clear (Lookup *lookup);
/* Clears @lookup and starts mamd_oauth_keys_lookup_async () of @kid into it;
 * when it finishes, done is set and order says when. */
void lookup_start (MamdOauthKeys *keys, const char *kid, Lookup *lookup);
/* lookup_start (), then runs the main context until it is done. */
void lookup_run (MamdOauthKeys *keys, const char *kid, Lookup *lookup);

G_END_DECLS
