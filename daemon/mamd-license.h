/*
 * Licence: a signed JSON file. Format (UTF-8 JSON object):
 *   { "payload": "<base64url, no padding, of the payload JSON>",
 *     "signature": "<base64url, no padding, Ed25519 signature over the
 *                    decoded payload bytes>" }
 * Payload: { "id": string, "licensee": string, "sku_short_name": string,
 *            "issued_at": integer unix seconds, "expires_at": integer unix
 *            seconds, "servers": optional array of server ids covered };
 *          no other member (one this mamd does not know is refused), no
 *          control character in a string.
 * Verified with OpenSSL against the configured PEM public key.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *id;
  char *licensee;
  char *sku_short_name;
  gint64 issued_at;  /* unix seconds */
  gint64 expires_at; /* unix seconds */
  char **servers;    /* NULL: every server */
} MamdLicense;

/* Reads and verifies. MAMD_ERROR_NOT_LICENSED with the reason: file missing,
 * unreadable, malformed, bad signature (tampered), unusable public key. */
MamdLicense *mamd_license_load (const char *license_path, const char *public_key_path,
                                GError **error);
MamdLicense *mamd_license_copy (const MamdLicense *license);
void mamd_license_free (MamdLicense *license);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdLicense, mamd_license_free)

/* Whether @license allows MAM for @server_id at @now (unix seconds): tier
 * advanced (or entry, the same tier), not expired, covers the server.
 * MAMD_ERROR_NOT_LICENSED with the reason otherwise. */
gboolean mamd_license_check_mam (const MamdLicense *license, const char *server_id,
                                 gint64 now, GError **error);
/* The next time (unix seconds) after @now at which the answer of
 * mamd_license_check_mam() changes: the licence becomes valid, or expires;
 * 0 when it never will. */
gint64 mamd_license_next_change (const MamdLicense *license, gint64 now);

/* For tools/ and tests only: the daemon never signs. */
gboolean mamd_license_generate_key (const char *private_key_path, const char *public_key_path,
                                    GError **error);
char *mamd_license_sign (const char *payload_json, const char *private_key_path,
                         GError **error);

G_END_DECLS
