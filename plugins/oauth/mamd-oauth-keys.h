/*
 * MamdOauthKeys: the signing keys of one issuer, found by OpenID discovery
 * and fetched over libsoup 3 without ever blocking the main loop.
 * Cache with periodic refresh; an unknown kid causes at most one refetch
 * per cool-down whatever the number of requests (concurrent lookups share
 * one fetch); the last good keys are kept while the provider is down.
 */
#pragma once

#include <gio/gio.h>

#include "mamd-oauth-http.h"
#include "mamd-oauth-jwks.h"

G_BEGIN_DECLS

#define MAMD_TYPE_OAUTH_KEYS (mamd_oauth_keys_get_type ())
G_DECLARE_FINAL_TYPE (MamdOauthKeys, mamd_oauth_keys, MAMD, OAUTH_KEYS, GObject)

/* @discovery_url: e.g. https://login.microsoftonline.com/<tid>/v2.0/.well-known/openid-configuration
 * @refresh_interval, @refetch_cooldown: seconds. */
/* The OpenID discovery document fetched from @discovery_url: its issuer
 * must be that URL's prefix, jwks_uri (and token_endpoint, when present)
 * HTTPS or on the discovery URL's origin. Pure; the keys object uses it,
 * the fuzz target too. */
gboolean mamd_oauth_discovery_parse (const char *discovery_url, const char *data, gsize len,
                                     char **jwks_uri, char **token_endpoint, GError **error);

MamdOauthKeys *mamd_oauth_keys_new (MamdOauthHttp *http, const char *discovery_url,
                                    guint refresh_interval, guint refetch_cooldown);
/* Starts the first fetch and the refresh timer (idempotent). */
void mamd_oauth_keys_start (MamdOauthKeys *self);
void mamd_oauth_keys_stop (MamdOauthKeys *self);

/* Finds the key for @kid, fetching when it is not cached (subject to the
 * cool-down). Errors: MAMD_ERROR_KEY_UNAVAILABLE (retryable: no keys could
 * be fetched, or the provider is down and the kid is unknown), and
 * MAMD_ERROR_INVALID_TOKEN "signature: unknown key id ..." when fresh keys
 * were fetched (or the cool-down holds with keys in hand) and none has that
 * kid. The result holds a reference on the JWKS it came from. */
void mamd_oauth_keys_lookup_async (MamdOauthKeys *self, const char *kid,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
const MamdJwk *mamd_oauth_keys_lookup_finish (MamdOauthKeys *self, GAsyncResult *result,
                                              MamdJwks **jwks_ref, GError **error);

/* The token endpoint from discovery, NULL until discovery succeeded. */
const char *mamd_oauth_keys_get_token_endpoint (MamdOauthKeys *self);
/* Number of HTTP fetches made (discovery + JWKS), for tests and diagnostics. */
guint mamd_oauth_keys_get_n_fetches (MamdOauthKeys *self);
/* Human-readable state for `mamctl servers`: "keys: 3 (fetched 12 s ago)" or the last error. */
char *mamd_oauth_keys_describe (MamdOauthKeys *self);

G_END_DECLS
