#include "config.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mamd-json.h"
#include "mamd-license.h"
#include "mamd-plugin.h"

#define MAX_LICENSE_SIZE (64 * 1024)
#define MAX_KEY_SIZE (64 * 1024)
#define MAX_LICENSE_DEPTH 8
#define ED25519_SIGNATURE_SIZE 64
/* clocks of the signer and of this host may disagree a little */
#define ISSUED_AT_SKEW (5 * 60)
/* 9999-12-31T23:59:59Z: the latest time a GDateTime (and so a message) can
 * show; bounding the times also keeps the skew arithmetic from overflowing */
#define MAX_LICENSE_TIME G_GINT64_CONSTANT (253402300799)

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)

/* The last OpenSSL error as text; empties the error queue so that it does
 * not leak into the next, unrelated report. */
static char *
openssl_error (void)
{
  unsigned long code = ERR_peek_last_error ();
  char buf[256];

  ERR_clear_error ();
  if (code == 0)
    return g_strdup ("unknown OpenSSL error");
  ERR_error_string_n (code, buf, sizeof buf);
  return g_strdup (buf);
}

static EVP_PKEY *
read_pem_key (const char *path, gboolean private_key, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *pem = NULL;
  g_autoptr(BIO) bio = NULL;
  g_autoptr(EVP_PKEY) pkey = NULL;
  gsize len = 0;

  if (!mamd_file_read_bounded (path, MAX_KEY_SIZE, &pem, &len, &local_error))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_FAILED, local_error->message);
      return NULL;
    }
  /* PEM_read_bio_PUBKEY() skips other blocks, a private key among them */
  if (!private_key && g_strstr_len (pem, (gssize) len, "PRIVATE KEY-----") != NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_FAILED,
                           "it holds a private key (keep the licence signing key off this "
                           "host)");
      return NULL;
    }
  bio = BIO_new_mem_buf (pem, (int) len);
  if (private_key)
    pkey = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
  else
    pkey = PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL);
  if (pkey == NULL)
    {
      g_autofree char *reason = openssl_error ();
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED, "not a PEM %s key (%s)",
                   private_key ? "private" : "public", reason);
      return NULL;
    }
  if (EVP_PKEY_get_id (pkey) != EVP_PKEY_ED25519)
    {
      const char *type = EVP_PKEY_get0_type_name (pkey);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED, "key type %s is not Ed25519",
                   type != NULL ? type : "unknown");
      return NULL;
    }
  return g_steal_pointer (&pkey);
}

void
mamd_license_free (MamdLicense *license)
{
  if (license == NULL)
    return;
  g_free (license->id);
  g_free (license->licensee);
  g_free (license->sku_short_name);
  g_strfreev (license->servers);
  g_free (license);
}

MamdLicense *
mamd_license_copy (const MamdLicense *license)
{
  MamdLicense *copy;

  if (license == NULL)
    return NULL;
  copy = g_new0 (MamdLicense, 1);
  copy->id = g_strdup (license->id);
  copy->licensee = g_strdup (license->licensee);
  copy->sku_short_name = g_strdup (license->sku_short_name);
  copy->issued_at = license->issued_at;
  copy->expires_at = license->expires_at;
  copy->servers = g_strdupv (license->servers);
  return copy;
}

/* A member this mamd does not know may be a restriction it would ignore
 * (or a misspelt "servers", which would make a licence for every server). */
static gboolean
check_known_members (JsonObject *object, GError **error)
{
  static const char *const known[] = { "id", "licensee", "sku_short_name", "issued_at",
                                       "expires_at", "servers", NULL };
  JsonObjectIter iter;
  const char *name;

  json_object_iter_init (&iter, object);
  while (json_object_iter_next (&iter, &name, NULL))
    if (!g_strv_contains (known, name))
      {
        g_autofree char *shown = g_strescape (name, NULL);
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "unknown member \"%.64s\"",
                     shown);
        return FALSE;
      }
  return TRUE;
}

/* The SKU reaches gate reasons (logs, signals), the licensee and id
 * GetStatus: a line break or a terminal escape sequence there is refused. */
static gboolean
check_printable (const char *member, const char *value, GError **error)
{
  for (const char *p = value; *p != '\0'; p = g_utf8_next_char (p))
    if (g_unichar_iscntrl (g_utf8_get_char (p)))
      {
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                     "member \"%s\" has a control character", member);
        return FALSE;
      }
  return TRUE;
}

/* Parses the payload; MAMD_ERROR_INVALID_ARGS naming the member. */
static MamdLicense *
parse_payload (const char *data, gsize len, GError **error)
{
  g_autoptr(MamdLicense) license = g_new0 (MamdLicense, 1);
  g_autoptr(JsonNode) root = NULL;
  const char *id = NULL, *licensee = NULL, *sku = NULL;
  JsonObject *object;

  root = mamd_json_parse_strict_object (data, len, MAX_LICENSE_SIZE, MAX_LICENSE_DEPTH, error);
  if (root == NULL)
    return NULL;
  object = json_node_get_object (root);
  if (!check_known_members (object, error))
    return NULL;
  if (!mamd_json_object_get_string (object, "id", TRUE, &id, error) ||
      !mamd_json_object_get_string (object, "licensee", TRUE, &licensee, error) ||
      !mamd_json_object_get_string (object, "sku_short_name", TRUE, &sku, error) ||
      !mamd_json_object_get_int64 (object, "issued_at", TRUE, &license->issued_at, error) ||
      !mamd_json_object_get_int64 (object, "expires_at", TRUE, &license->expires_at, error) ||
      !mamd_json_object_get_string_array (object, "servers", FALSE, &license->servers, error) ||
      !check_printable ("id", id, error) || !check_printable ("licensee", licensee, error) ||
      !check_printable ("sku_short_name", sku, error))
    return NULL;
  for (guint i = 0; license->servers != NULL && license->servers[i] != NULL; i++)
    if (!check_printable ("servers", license->servers[i], error))
      return NULL;
  if (license->issued_at < 0 || license->issued_at > MAX_LICENSE_TIME ||
      license->expires_at < 0 || license->expires_at > MAX_LICENSE_TIME)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "member \"%s\" is not a date from 1970 to 9999",
                   license->issued_at < 0 || license->issued_at > MAX_LICENSE_TIME
                     ? "issued_at" : "expires_at");
      return NULL;
    }
  if (license->expires_at <= license->issued_at)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "expires_at is not after issued_at");
      return NULL;
    }
  license->id = g_strdup (id);
  license->licensee = g_strdup (licensee);
  license->sku_short_name = g_strdup (sku);
  return g_steal_pointer (&license);
}

/* Decodes the two members of the licence envelope. */
static gboolean
parse_envelope (const char *data, gsize len, GBytes **payload, GBytes **signature,
                GError **error)
{
  g_autoptr(JsonNode) root = NULL;
  const char *payload_text = NULL, *signature_text = NULL;
  guint8 *decoded;
  gsize decoded_len = 0;
  JsonObject *object;

  root = mamd_json_parse_strict_object (data, len, MAX_LICENSE_SIZE, MAX_LICENSE_DEPTH, error);
  if (root == NULL)
    return FALSE;
  object = json_node_get_object (root);
  if (!mamd_json_object_get_string (object, "payload", TRUE, &payload_text, error) ||
      !mamd_json_object_get_string (object, "signature", TRUE, &signature_text, error))
    return FALSE;
  if (json_object_get_size (object) != 2)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "members other than \"payload\" and \"signature\"");
      return FALSE;
    }

  decoded = mamd_base64url_decode (payload_text, -1, &decoded_len, error);
  if (decoded == NULL)
    {
      g_prefix_error (error, "payload: ");
      return FALSE;
    }
  *payload = g_bytes_new_take (decoded, decoded_len);
  decoded = mamd_base64url_decode (signature_text, -1, &decoded_len, error);
  if (decoded == NULL)
    {
      g_prefix_error (error, "signature: ");
      g_clear_pointer (payload, g_bytes_unref);
      return FALSE;
    }
  *signature = g_bytes_new_take (decoded, decoded_len);
  return TRUE;
}

static gboolean
verify_signature (EVP_PKEY *pkey, GBytes *payload, GBytes *signature)
{
  g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new ();
  gsize payload_len, signature_len;
  const guint8 *payload_data = g_bytes_get_data (payload, &payload_len);
  const guint8 *signature_data = g_bytes_get_data (signature, &signature_len);
  gboolean ok;

  if (ctx == NULL || signature_len != ED25519_SIGNATURE_SIZE)
    return FALSE;
  ok = EVP_DigestVerifyInit (ctx, NULL, NULL, NULL, pkey) == 1 &&
       EVP_DigestVerify (ctx, signature_data, signature_len, payload_data, payload_len) == 1;
  ERR_clear_error ();
  return ok;
}

MamdLicense *
mamd_license_load (const char *license_path, const char *public_key_path, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(EVP_PKEY) pkey = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GBytes) signature = NULL;
  g_autoptr(MamdLicense) license = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (license_path == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                           "no licence file configured: set [Daemon] LicenseFile");
      return NULL;
    }
  if (!mamd_file_read_bounded (license_path, MAX_LICENSE_SIZE, &contents, &len, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                     "no licence file at %s: install an Enterprise Advanced licence",
                     license_path);
      else
        g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                     "licence %s is unreadable: %s: install the licence file as issued, a "
                     "regular file mamd can read", license_path, local_error->message);
      return NULL;
    }
  if (!parse_envelope (contents, len, &payload, &signature, &local_error))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence %s is not valid JSON: %s: install the licence file exactly as issued",
                   license_path, local_error->message);
      return NULL;
    }

  if (public_key_path == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                           "no licence public key configured: set [Daemon] LicensePublicKey");
      return NULL;
    }
  pkey = read_pem_key (public_key_path, FALSE, &local_error);
  if (pkey == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence public key %s unusable: %s: set [Daemon] LicensePublicKey to the "
                   "Ed25519 public key (PEM) of the licence's issuer", public_key_path,
                   local_error->message);
      return NULL;
    }
  if (!verify_signature (pkey, payload, signature))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence signature does not verify (tampered or signed by another key): "
                   "%s against %s; install the licence file exactly as issued, or set "
                   "[Daemon] LicensePublicKey to its issuer's public key",
                   license_path, public_key_path);
      return NULL;
    }

  /* only a verified payload is parsed at all */
  license = parse_payload (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload),
                           &local_error);
  if (license == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence %s is not valid: payload: %s: ask its issuer for a new licence",
                   license_path, local_error->message);
      return NULL;
    }
  return g_steal_pointer (&license);
}

static char *
format_time (gint64 unix_seconds)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_seconds);

  if (dt == NULL)
    return g_strdup_printf ("@%" G_GINT64_FORMAT, unix_seconds);
  return g_date_time_format_iso8601 (dt);
}

gboolean
mamd_license_check_mam (const MamdLicense *license, const char *server_id, gint64 now,
                        GError **error)
{
  if (license == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED, "no licence loaded");
      return FALSE;
    }
  /* "entry" is sold as the same tier as Enterprise Advanced */
  if (g_strcmp0 (license->sku_short_name, "advanced") != 0 &&
      g_strcmp0 (license->sku_short_name, "entry") != 0)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence SKU '%s' does not include Intune MAM: Enterprise Advanced is required",
                   license->sku_short_name);
      return FALSE;
    }
  if (license->issued_at > now + ISSUED_AT_SKEW)
    {
      g_autofree char *when = format_time (license->issued_at);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence is not valid before %s: check the system clock", when);
      return FALSE;
    }
  if (now >= license->expires_at)
    {
      g_autofree char *when = format_time (license->expires_at);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence expired on %s: renew the Enterprise Advanced licence", when);
      return FALSE;
    }
  if (license->servers != NULL &&
      (server_id == NULL || !g_strv_contains ((const char *const *) license->servers, server_id)))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED,
                   "licence does not cover server %s: obtain a licence that lists it",
                   server_id != NULL ? server_id : "(none)");
      return FALSE;
    }
  return TRUE;
}

gint64
mamd_license_next_change (const MamdLicense *license, gint64 now)
{
  if (license->issued_at - ISSUED_AT_SKEW > now)
    return license->issued_at - ISSUED_AT_SKEW;
  return license->expires_at > now ? license->expires_at : 0;
}

static char *
bio_to_string (BIO *bio)
{
  char *data = NULL;
  long len = BIO_get_mem_data (bio, &data);

  return g_strndup (data, (gsize) len);
}

gboolean
mamd_license_generate_key (const char *private_key_path, const char *public_key_path,
                           GError **error)
{
  g_autoptr(EVP_PKEY) pkey = EVP_PKEY_Q_keygen (NULL, NULL, "ED25519");
  g_autoptr(BIO) private_bio = BIO_new (BIO_s_mem ());
  g_autoptr(BIO) public_bio = BIO_new (BIO_s_mem ());
  g_autofree char *private_pem = NULL;
  g_autofree char *public_pem = NULL;

  if (pkey == NULL || private_bio == NULL || public_bio == NULL ||
      PEM_write_bio_PrivateKey (private_bio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
      PEM_write_bio_PUBKEY (public_bio, pkey) != 1)
    {
      g_autofree char *reason = openssl_error ();
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED,
                   "cannot generate an Ed25519 key: %s", reason);
      return FALSE;
    }
  private_pem = bio_to_string (private_bio);
  public_pem = bio_to_string (public_bio);

  if (!g_file_set_contents_full (private_key_path, private_pem, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0600, error) ||
      !g_file_set_contents_full (public_key_path, public_pem, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, error))
    return FALSE;
  return TRUE;
}

char *
mamd_license_sign (const char *payload_json, const char *private_key_path, GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(MamdLicense) check = NULL;
  g_autoptr(EVP_PKEY) pkey = NULL;
  g_autoptr(EVP_MD_CTX) ctx = NULL;
  g_autofree char *payload_b64 = NULL;
  g_autofree char *signature_b64 = NULL;
  guint8 signature[ED25519_SIGNATURE_SIZE];
  gsize signature_len = sizeof signature;
  gsize payload_len;

  g_return_val_if_fail (payload_json != NULL, NULL);

  /* never produce a licence that mamd_license_load would refuse */
  payload_len = strlen (payload_json);
  check = parse_payload (payload_json, payload_len, &local_error);
  if (check == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "invalid licence payload: %s",
                   local_error->message);
      return NULL;
    }

  pkey = read_pem_key (private_key_path, TRUE, &local_error);
  if (pkey == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED, "signing key %s unusable: %s",
                   private_key_path, local_error->message);
      return NULL;
    }
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL ||
      EVP_DigestSignInit (ctx, NULL, NULL, NULL, pkey) != 1 ||
      EVP_DigestSign (ctx, signature, &signature_len, (const guint8 *) payload_json,
                      payload_len) != 1)
    {
      g_autofree char *reason = openssl_error ();
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_FAILED, "cannot sign the licence: %s", reason);
      return NULL;
    }

  payload_b64 = mamd_base64url_encode ((const guint8 *) payload_json, payload_len);
  signature_b64 = mamd_base64url_encode (signature, signature_len);
  return g_strdup_printf ("{\n  \"payload\": \"%s\",\n  \"signature\": \"%s\"\n}\n",
                          payload_b64, signature_b64);
}
