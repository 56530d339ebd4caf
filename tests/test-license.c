/* Licence verification with keys generated at test time, and the licence
 * tool driven end to end. */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mamd-json.h"
#include "mamd-license.h"
#include "mamd-plugin.h"

#define DAY (24 * 3600)

typedef struct {
  char *dir;
  char *private_key;
  char *public_key;
  char *other_private_key;
  char *other_public_key;
  char *license;
  gint64 now;
} Fixture;

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("mamd-license-XXXXXX", &error);
  g_assert_no_error (error);
  fx->private_key = g_build_filename (fx->dir, "private.pem", NULL);
  fx->public_key = g_build_filename (fx->dir, "public.pem", NULL);
  fx->other_private_key = g_build_filename (fx->dir, "other-private.pem", NULL);
  fx->other_public_key = g_build_filename (fx->dir, "other-public.pem", NULL);
  fx->license = g_build_filename (fx->dir, "license.json", NULL);
  fx->now = g_get_real_time () / G_USEC_PER_SEC;

  g_assert_true (mamd_license_generate_key (fx->private_key, fx->public_key, &error));
  g_assert_no_error (error);
  g_assert_true (mamd_license_generate_key (fx->other_private_key, fx->other_public_key, &error));
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data)
{
  g_autoptr(GDir) dir = g_dir_open (fx->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fx->dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (fx->dir);
  g_free (fx->dir);
  g_free (fx->private_key);
  g_free (fx->public_key);
  g_free (fx->other_private_key);
  g_free (fx->other_public_key);
  g_free (fx->license);
}

static char *
payload_for (const char *sku, gint64 issued_at, gint64 expires_at, const char *servers_json)
{
  return g_strdup_printf ("{\"id\": \"lic-1\", \"licensee\": \"Example Corp\", "
                          "\"sku_short_name\": \"%s\", \"issued_at\": %" G_GINT64_FORMAT ", "
                          "\"expires_at\": %" G_GINT64_FORMAT "%s%s}",
                          sku, issued_at, expires_at,
                          servers_json != NULL ? ", \"servers\": " : "",
                          servers_json != NULL ? servers_json : "");
}

static void
write_signed (Fixture *fx, const char *payload, const char *private_key)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = mamd_license_sign (payload, private_key, &error);

  g_assert_no_error (error);
  g_assert_nonnull (text);
  g_file_set_contents (fx->license, text, -1, &error);
  g_assert_no_error (error);
}

/* Signs @payload as it is, without the checks mamd_license_sign() makes:
 * what another issuer's tool could produce. */
static void
write_signed_raw (Fixture *fx, const char *payload)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *pem = NULL;
  g_autofree char *payload_b64 = NULL;
  g_autofree char *signature_b64 = NULL;
  g_autofree char *text = NULL;
  guint8 signature[64];
  size_t signature_len = sizeof signature;
  EVP_PKEY *pkey;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  BIO *bio;

  g_file_get_contents (fx->private_key, &pem, NULL, &error);
  g_assert_no_error (error);
  bio = BIO_new_mem_buf (pem, -1);
  pkey = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
  g_assert_nonnull (pkey);
  g_assert_cmpint (EVP_DigestSignInit (ctx, NULL, NULL, NULL, pkey), ==, 1);
  g_assert_cmpint (EVP_DigestSign (ctx, signature, &signature_len, (const guint8 *) payload,
                                   strlen (payload)), ==, 1);
  payload_b64 = mamd_base64url_encode ((const guint8 *) payload, strlen (payload));
  signature_b64 = mamd_base64url_encode (signature, signature_len);
  text = g_strdup_printf ("{\"payload\": \"%s\", \"signature\": \"%s\"}", payload_b64,
                          signature_b64);
  g_file_set_contents (fx->license, text, -1, &error);
  g_assert_no_error (error);
  EVP_MD_CTX_free (ctx);
  EVP_PKEY_free (pkey);
  BIO_free (bio);
}

static MamdLicense *
load_ok (Fixture *fx)
{
  g_autoptr(GError) error = NULL;
  MamdLicense *license = mamd_license_load (fx->license, fx->public_key, &error);

  g_assert_no_error (error);
  g_assert_nonnull (license);
  return license;
}

static void
assert_message (GError *error, const char *expected)
{
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_NOT_LICENSED);
  if (strstr (error->message, expected) == NULL)
    g_error ("message '%s' lacks '%s'", error->message, expected);
}

static void
assert_load_fails (Fixture *fx, const char *public_key, const char *expected)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdLicense) license = mamd_license_load (fx->license, public_key, &error);

  g_assert_null (license);
  assert_message (error, expected);
}

static void
assert_check_fails (const MamdLicense *license, const char *server, gint64 now,
                    const char *expected)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (mamd_license_check_mam (license, server, now, &error));
  assert_message (error, expected);
}

static void
test_valid (Fixture *fx, gconstpointer data)
{
  static const char *const skus[] = { "advanced", "entry" };

  for (guint i = 0; i < G_N_ELEMENTS (skus); i++)
    {
      g_autofree char *payload = payload_for (skus[i], fx->now - DAY, fx->now + DAY, NULL);
      g_autoptr(MamdLicense) license = NULL;
      g_autoptr(MamdLicense) copy = NULL;
      g_autoptr(GError) error = NULL;

      write_signed (fx, payload, fx->private_key);
      license = load_ok (fx);
      g_assert_cmpstr (license->id, ==, "lic-1");
      g_assert_cmpstr (license->licensee, ==, "Example Corp");
      g_assert_cmpstr (license->sku_short_name, ==, skus[i]);
      g_assert_cmpint (license->issued_at, ==, fx->now - DAY);
      g_assert_cmpint (license->expires_at, ==, fx->now + DAY);
      g_assert_null (license->servers);
      g_assert_true (mamd_license_check_mam (license, "any-server", fx->now, &error));
      g_assert_no_error (error);

      copy = mamd_license_copy (license);
      g_assert_cmpstr (copy->sku_short_name, ==, skus[i]);
      g_assert_cmpint (copy->expires_at, ==, license->expires_at);
    }
}

static void
test_wrong_tier (Fixture *fx, gconstpointer data)
{
  g_autofree char *payload = payload_for ("professional", fx->now - DAY, fx->now + DAY, NULL);
  g_autoptr(MamdLicense) license = NULL;

  write_signed (fx, payload, fx->private_key);
  license = load_ok (fx);
  assert_check_fails (license, "chat", fx->now,
                      "licence SKU 'professional' does not include Intune MAM: "
                      "Enterprise Advanced is required");
}

static void
test_expired (Fixture *fx, gconstpointer data)
{
  /* 2026-01-01T00:00:00Z */
  g_autofree char *payload = payload_for ("advanced", 1735689600, 1767225600, NULL);
  g_autoptr(MamdLicense) license = NULL;
  g_autoptr(GError) error = NULL;

  write_signed (fx, payload, fx->private_key);
  license = load_ok (fx);
  /* expiry is judged at the time given, not the wall clock */
  g_assert_true (mamd_license_check_mam (license, "chat", 1767225599, &error));
  g_assert_no_error (error);
  assert_check_fails (license, "chat", 1767225600,
                      "licence expired on 2026-01-01T00:00:00Z: "
                      "renew the Enterprise Advanced licence");
  /* issued in the future, beyond the clock skew allowed */
  assert_check_fails (license, "chat", 1735689600 - 301, "licence is not valid before");
  /* valid from exactly the moment next_change () names below */
  g_assert_true (mamd_license_check_mam (license, "chat", 1735689600 - 300, &error));
  g_assert_no_error (error);

  /* the gates are checked again when the answer changes: valid, then expired */
  g_assert_cmpint (mamd_license_next_change (license, 1735689600 - 86400), ==, 1735689600 - 300);
  g_assert_cmpint (mamd_license_next_change (license, 1735689600 - 300), ==, 1767225600);
  g_assert_cmpint (mamd_license_next_change (license, 1767225599), ==, 1767225600);
  g_assert_cmpint (mamd_license_next_change (license, 1767225600), ==, 0);
}

static void
test_servers (Fixture *fx, gconstpointer data)
{
  g_autofree char *payload = payload_for ("advanced", fx->now - DAY, fx->now + DAY,
                                          "[\"chat\", \"ops\"]");
  g_autoptr(MamdLicense) license = NULL;
  g_autoptr(GError) error = NULL;

  write_signed (fx, payload, fx->private_key);
  license = load_ok (fx);
  g_assert_cmpuint (g_strv_length (license->servers), ==, 2);
  g_assert_true (mamd_license_check_mam (license, "ops", fx->now, &error));
  g_assert_no_error (error);
  assert_check_fails (license, "other", fx->now, "licence does not cover server other");
}

static void
test_no_licence (Fixture *fx, gconstpointer data)
{
  g_autofree char *expected = g_strdup_printf ("no licence file at %s: install an Enterprise "
                                               "Advanced licence", fx->license);

  assert_check_fails (NULL, "chat", fx->now, "no licence loaded");
  assert_load_fails (fx, fx->public_key, expected);
}

static void
test_tampered (Fixture *fx, gconstpointer data)
{
  g_autofree char *payload = payload_for ("advancez", fx->now - DAY, fx->now + DAY, NULL);
  g_autofree char *text = NULL;
  g_autofree char *forged_payload = NULL;
  g_autofree char *forged = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *raw = NULL;
  gsize raw_len = 0;
  const char *payload_b64 = NULL, *signature_b64 = NULL;
  char *sku;

  text = mamd_license_sign (payload, fx->private_key, &error);
  g_assert_no_error (error);
  root = mamd_json_parse_strict (text, strlen (text), 65536, 4, &error);
  g_assert_no_error (error);
  g_assert_true (mamd_json_object_get_string (json_node_get_object (root), "payload", TRUE,
                                              &payload_b64, &error));
  g_assert_true (mamd_json_object_get_string (json_node_get_object (root), "signature", TRUE,
                                              &signature_b64, &error));

  /* one changed byte turns a licence of another tier into an advanced one */
  raw = mamd_base64url_decode (payload_b64, -1, &raw_len, &error);
  g_assert_no_error (error);
  sku = strstr ((char *) raw, "advancez");
  g_assert_nonnull (sku);
  sku[7] = 'd';
  forged_payload = mamd_base64url_encode (raw, raw_len);
  forged = g_strdup_printf ("{\"payload\": \"%s\", \"signature\": \"%s\"}",
                            forged_payload, signature_b64);
  g_file_set_contents (fx->license, forged, -1, &error);
  g_assert_no_error (error);
  assert_load_fails (fx, fx->public_key,
                     "licence signature does not verify (tampered or signed by another key)");

  /* and the untouched licence does verify */
  g_file_set_contents (fx->license, text, -1, &error);
  g_assert_no_error (error);
  {
    g_autoptr(MamdLicense) genuine = load_ok (fx);
    g_assert_cmpstr (genuine->sku_short_name, ==, "advancez");
  }
}

static void
test_other_key (Fixture *fx, gconstpointer data)
{
  g_autofree char *payload = payload_for ("advanced", fx->now - DAY, fx->now + DAY, NULL);

  write_signed (fx, payload, fx->other_private_key);
  assert_load_fails (fx, fx->public_key, "licence signature does not verify");
  /* the guide's NotLicensed row: the cause and what to do, with the files */
  assert_load_fails (fx, fx->public_key, fx->license);
  assert_load_fails (fx, fx->public_key, fx->public_key);
  assert_load_fails (fx, fx->public_key,
                     "install the licence file exactly as issued, or set [Daemon] "
                     "LicensePublicKey");
}

static void
test_malformed (Fixture *fx, gconstpointer data)
{
  /* each with the words of the check that must refuse it */
  static const struct {
    const char *text;
    const char *why;
  } bad[] = {
    { "not json", "unexpected character 'n'" },
    { "{\"payload\": \"e30\", \"signature\": \"AA\", \"signature\": \"AA\"}",
      "duplicate key \"signature\"" },
    { "{\"payload\": \"e30\"}", "member \"signature\" is missing" },
    { "{\"payload\": \"e30=\", \"signature\": \"AA\"}",
      "payload: invalid base64url character" },
    { "{\"payload\": 1, \"signature\": \"AA\"}", "member \"payload\" must be a string" },
    { "[]", "not a JSON object" },
    { "{\"payload\": \"e30\", \"signature\": \"AA\", \"servers\": [\"chat\"]}",
      "members other than \"payload\" and \"signature\"" },
  };
  g_autofree char *prefix = g_strdup_printf ("licence %s is not valid JSON: ", fx->license);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *expected = g_strconcat (prefix, bad[i].why, NULL);

      g_file_set_contents (fx->license, bad[i].text, -1, &error);
      g_assert_no_error (error);
      assert_load_fails (fx, fx->public_key, expected);
    }
}

static void
test_bad_payload_refused (Fixture *fx, gconstpointer data)
{
  static const char *const bad[] = {
    "{\"id\": \"x\"}",
    "{\"id\": \"x\", \"licensee\": \"y\", \"sku_short_name\": \"advanced\", "
    "\"issued_at\": \"1\", \"expires_at\": 2}",
    "{\"id\": \"x\", \"licensee\": \"y\", \"sku_short_name\": \"advanced\", "
    "\"issued_at\": 5, \"expires_at\": 2}",
    "{\"id\": \"x\", \"id\": \"y\"}",
    /* times that overflow the skew arithmetic or no date can show */
    "{\"id\": \"x\", \"licensee\": \"y\", \"sku_short_name\": \"advanced\", "
    "\"issued_at\": -9223372036854775808, \"expires_at\": 1800000000}",
    "{\"id\": \"x\", \"licensee\": \"y\", \"sku_short_name\": \"advanced\", "
    "\"issued_at\": 1700000000, \"expires_at\": 9223372036854775807}",
    "{\"id\": \"x\", \"licensee\": \"y\", \"sku_short_name\": \"advanced\", "
    "\"issued_at\": -10, \"expires_at\": 1800000000}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *text = mamd_license_sign (bad[i], fx->private_key, &error);
      g_assert_null (text);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
    }
}

static void
test_times_out_of_range (Fixture *fx, gconstpointer data)
{
  g_autofree char *payload = NULL;

  /* issued_at - skew would overflow in mamd_license_next_change () */
  payload = payload_for ("advanced", G_MININT64, 1800000000, NULL);
  write_signed_raw (fx, payload);
  assert_load_fails (fx, fx->public_key, "member \"issued_at\" is not a date from 1970 to 9999");
  g_clear_pointer (&payload, g_free);
  payload = payload_for ("advanced", 1700000000, G_MAXINT64, NULL);
  write_signed_raw (fx, payload);
  assert_load_fails (fx, fx->public_key, "member \"expires_at\" is not a date from 1970 to 9999");

  /* the last second of 9999 is the latest a licence may name */
  g_clear_pointer (&payload, g_free);
  payload = payload_for ("advanced", 0, 253402300799, NULL);
  write_signed_raw (fx, payload);
  {
    g_autoptr(MamdLicense) license = load_ok (fx);
    g_assert_cmpint (mamd_license_next_change (license, fx->now), ==, 253402300799);
  }
}

static void
test_unknown_member (Fixture *fx, gconstpointer data)
{
  /* a misspelt "servers" must not make a licence for every server, nor a
   * restriction this mamd does not know be ignored */
  static const char *const extra[] = { "\"server\": [\"chat\"]", "\"not_before\": 1900000000" };

  for (guint i = 0; i < G_N_ELEMENTS (extra); i++)
    {
      g_autofree char *payload = g_strdup_printf (
        "{\"id\": \"x\", \"licensee\": \"y\", \"sku_short_name\": \"advanced\", "
        "\"issued_at\": 1700000000, \"expires_at\": 1800000000, %s}", extra[i]);
      g_autoptr(GError) error = NULL;
      g_autofree char *text = mamd_license_sign (payload, fx->private_key, &error);

      g_assert_null (text);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
      write_signed_raw (fx, payload);
      assert_load_fails (fx, fx->public_key, "unknown member \"");
    }
}

static void
test_control_characters (Fixture *fx, gconstpointer data)
{
  /* the SKU reaches gate reasons (logs, signals), the licensee GetStatus */
  static const struct {
    const char *sku, *licensee, *why;
  } bad[] = {
    { "x\\nmamd: licence accepted", "y", "member \"sku_short_name\" has a control character" },
    { "advanced", "y\\u001b[2J", "member \"licensee\" has a control character" },
    { "advanced", "y\\u0085", "member \"licensee\" has a control character" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *payload = g_strdup_printf (
        "{\"id\": \"x\", \"licensee\": \"%s\", \"sku_short_name\": \"%s\", "
        "\"issued_at\": 1700000000, \"expires_at\": 1800000000}", bad[i].licensee, bad[i].sku);
      g_autoptr(GError) error = NULL;
      g_autofree char *text = mamd_license_sign (payload, fx->private_key, &error);

      g_assert_null (text);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
      write_signed_raw (fx, payload);
      assert_load_fails (fx, fx->public_key, bad[i].why);
    }

  /* letters of any script are names, not controls */
  {
    g_autofree char *payload = g_strdup_printf (
      "{\"id\": \"x\", \"licensee\": \"M\xc3\xbcller \\u00c4G\", \"sku_short_name\": "
      "\"advanced\", \"issued_at\": %" G_GINT64_FORMAT ", \"expires_at\": %" G_GINT64_FORMAT "}",
      fx->now - DAY, fx->now + DAY);
    g_autoptr(MamdLicense) license = NULL;

    write_signed (fx, payload, fx->private_key);
    license = load_ok (fx);
    g_assert_cmpstr (license->licensee, ==, "M\xc3\xbcller \xc3\x84G");
  }
}

/* Every reason a licence is refused says what to do next. */
static void
test_next_steps (Fixture *fx, gconstpointer data)
{
  g_autofree char *payload = payload_for ("advanced", fx->now - DAY, fx->now + DAY, NULL);
  g_autoptr(GError) error = NULL;

  /* a directory where the licence file belongs */
  {
    g_autoptr(MamdLicense) license = mamd_license_load (fx->dir, fx->public_key, &error);

    g_assert_null (license);
    assert_message (error, "not a regular file: install the licence file as issued, "
                           "a regular file mamd can read");
    g_clear_error (&error);
  }

  g_file_set_contents (fx->license, "{\"payload\": \"e30\"}", -1, &error);
  g_assert_no_error (error);
  assert_load_fails (fx, fx->public_key, "\"signature\" is missing: install the licence file "
                                         "exactly as issued");

  write_signed (fx, payload, fx->private_key);
  assert_load_fails (fx, fx->dir, "not a regular file: set [Daemon] LicensePublicKey to the "
                                  "Ed25519 public key (PEM) of the licence's issuer");

  /* signed, so only its issuer can mend it */
  g_clear_pointer (&payload, g_free);
  payload = g_strdup ("{\"id\": \"x\", \"licensee\": \"y\", \"sku_short_name\": \"advanced\", "
                      "\"issued_at\": 1700000000, \"expires_at\": 1800000000, \"extra\": 1}");
  write_signed_raw (fx, payload);
  assert_load_fails (fx, fx->public_key, "unknown member \"extra\": ask its issuer for a new "
                                         "licence");
}

static void
write_rsa_public_key (const char *path)
{
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 2048);
  BIO *bio = BIO_new (BIO_s_mem ());
  char *pem = NULL;
  long len;
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (pkey);
  g_assert_cmpint (PEM_write_bio_PUBKEY (bio, pkey), ==, 1);
  len = BIO_get_mem_data (bio, &pem);
  g_file_set_contents (path, pem, len, &error);
  g_assert_no_error (error);
  BIO_free (bio);
  EVP_PKEY_free (pkey);
}

static void
test_public_key (Fixture *fx, gconstpointer data)
{
  g_autofree char *payload = payload_for ("advanced", fx->now - DAY, fx->now + DAY, NULL);
  g_autofree char *rsa = g_build_filename (fx->dir, "rsa.pem", NULL);
  g_autofree char *junk = g_build_filename (fx->dir, "junk.pem", NULL);
  g_autofree char *missing = g_build_filename (fx->dir, "missing.pem", NULL);
  g_autofree char *expected = NULL;
  g_autoptr(GError) error = NULL;
  struct stat st;

  write_signed (fx, payload, fx->private_key);

  write_rsa_public_key (rsa);
  expected = g_strdup_printf ("licence public key %s unusable: key type RSA is not Ed25519", rsa);
  assert_load_fails (fx, rsa, expected);

  g_file_set_contents (junk, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                       -1, &error);
  g_assert_no_error (error);
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("licence public key %s unusable: not a PEM public key", junk);
  assert_load_fails (fx, junk, expected);

  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("licence public key %s unusable: ", missing);
  assert_load_fails (fx, missing, expected);

  /* a private key is not where the public key belongs */
  g_clear_pointer (&expected, g_free);
  expected = g_strdup_printf ("licence public key %s unusable: ", fx->private_key);
  assert_load_fails (fx, fx->private_key, expected);

  /* nor beside it: a key file that also holds the private key (cat
   * private.pem public.pem) leaks the signing key wherever it is copied */
  {
    g_autofree char *private_pem = NULL;
    g_autofree char *public_pem = NULL;
    g_autofree char *both = NULL;

    g_file_get_contents (fx->private_key, &private_pem, NULL, &error);
    g_assert_no_error (error);
    g_file_get_contents (fx->public_key, &public_pem, NULL, &error);
    g_assert_no_error (error);
    both = g_strconcat (private_pem, public_pem, NULL);
    g_file_set_contents (junk, both, -1, &error);
    g_assert_no_error (error);
    g_clear_pointer (&expected, g_free);
    expected = g_strdup_printf ("licence public key %s unusable: it holds a private key", junk);
    assert_load_fails (fx, junk, expected);
  }

  g_assert_cmpint (g_stat (fx->private_key, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_unlink (junk), ==, 0);
  g_assert_cmpint (g_unlink (rsa), ==, 0);
}

/* ---- the licence tool ---- */

static int
run_tool (const char *const *args, char **out, char **err)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  const char *root = g_getenv ("MAMD_BUILD_ROOT");
  int wait_status = 0;

  g_assert_nonnull (root);
  g_ptr_array_add (argv, g_build_filename (root, "tools", "mamd-license-tool", NULL));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                out, err, &wait_status, &error);
  g_assert_no_error (error);
  g_assert_true (WIFEXITED (wait_status));
  return WEXITSTATUS (wait_status);
}

static void
assert_tool (const char *const *args, int expected_status, const char *expected_output)
{
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = run_tool (args, &out, &err);

  if (status != expected_status)
    g_error ("%s: exit %d, expected %d; stderr: %s", args[0], status, expected_status, err);
  if (expected_output != NULL && strstr (out, expected_output) == NULL &&
      strstr (err, expected_output) == NULL)
    g_error ("%s: output lacks '%s'; stdout: %s stderr: %s", args[0], expected_output, out, err);
}

static void
test_tool (Fixture *fx, gconstpointer data)
{
  g_autofree char *priv = g_build_filename (fx->dir, "tool-private.pem", NULL);
  g_autofree char *pub = g_build_filename (fx->dir, "tool-public.pem", NULL);
  g_autofree char *expired = g_build_filename (fx->dir, "expired.json", NULL);
  g_autoptr(MamdLicense) license = NULL;
  g_autoptr(GError) error = NULL;
  struct stat st;

  if (g_getenv ("MAMD_BUILD_ROOT") == NULL)
    {
      g_test_skip ("MAMD_BUILD_ROOT is not set: run through meson test");
      return;
    }

  assert_tool ((const char *[]) { "generate-key", priv, pub, NULL }, 0, NULL);
  g_assert_cmpint (g_stat (priv, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  assert_tool ((const char *[]) { "sign", "--key", priv, "--sku", "advanced", "--licensee",
                                  "Example Corp", "--days", "30", "--servers", "chat,ops",
                                  "--id", "lic-42", "--output", fx->license, NULL }, 0, NULL);
  license = mamd_license_load (fx->license, pub, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (license->id, ==, "lic-42");
  g_assert_cmpstr (license->licensee, ==, "Example Corp");
  g_assert_cmpstr (license->servers[1], ==, "ops");
  g_assert_cmpint (license->expires_at - license->issued_at, ==, 30 * DAY);
  g_assert_true (mamd_license_check_mam (license, "chat", fx->now, &error));
  g_assert_no_error (error);

  assert_tool ((const char *[]) { "verify", "--public-key", pub, fx->license, NULL }, 0,
               "licensee: Example Corp");
  assert_tool ((const char *[]) { "verify", "--public-key", pub, fx->license, NULL }, 0,
               "servers: chat,ops");
  /* another key: the verification fails, which is not a usage error */
  assert_tool ((const char *[]) { "verify", "--public-key", fx->public_key, fx->license, NULL },
               1, "licence signature does not verify");

  assert_tool ((const char *[]) { "sign", "--key", priv, "--sku", "advanced", "--licensee",
                                  "Old", "--expires", "2020-02-29", "--output", expired, NULL },
               0, NULL);
  assert_tool ((const char *[]) { "verify", "--public-key", pub, expired, NULL }, 0,
               "expires_at: 2020-02-29T00:00:00Z");
  g_clear_pointer (&license, mamd_license_free);
  license = mamd_license_load (expired, pub, &error);
  g_assert_no_error (error);
  g_assert_null (license->servers);
  assert_check_fails (license, "chat", fx->now, "licence expired on 2020-02-29T00:00:00Z");
  g_assert_cmpint (g_unlink (expired), ==, 0);

  /* usage errors */
  assert_tool ((const char *[]) { NULL }, 2, "no command");
  assert_tool ((const char *[]) { "frobnicate", NULL }, 2, "unknown command");
  assert_tool ((const char *[]) { "generate-key", priv, NULL }, 2, "PRIVATE.pem");
  assert_tool ((const char *[]) { "sign", "--sku", "advanced", "--output", expired, NULL }, 2,
               "--key");
  assert_tool ((const char *[]) { "sign", "--key", priv, "--sku", "advanced", "--licensee", "x",
                                  "--days", "3", "--expires", "2030-01-01", "--output",
                                  expired, NULL }, 2, "not both");
  assert_tool ((const char *[]) { "sign", "--key", priv, "--sku", "advanced", "--licensee", "x",
                                  "--expires", "2030-02-30", "--output", expired, NULL }, 2,
               "YYYY-MM-DD");
  assert_tool ((const char *[]) { "sign", "--bogus", NULL }, 2, "--bogus");
  assert_tool ((const char *[]) { "verify", fx->license, NULL }, 2, "--public-key");
  g_assert_false (g_file_test (expired, G_FILE_TEST_EXISTS));

  /* failures that are not usage errors */
  assert_tool ((const char *[]) { "sign", "--key", pub, "--sku", "advanced", "--licensee", "x",
                                  "--output", expired, NULL }, 1, "not a PEM private key");

  assert_tool ((const char *[]) { "--help", NULL }, 0, "generate-key PRIVATE.pem PUBLIC.pem");
  assert_tool ((const char *[]) { "sign", "--help", NULL }, 0, "--licensee");

  g_assert_cmpint (g_unlink (priv), ==, 0);
  g_assert_cmpint (g_unlink (pub), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/mamd/license/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("valid", test_valid);
  ADD ("wrong-tier", test_wrong_tier);
  ADD ("expired", test_expired);
  ADD ("servers", test_servers);
  ADD ("no-licence", test_no_licence);
  ADD ("tampered", test_tampered);
  ADD ("other-key", test_other_key);
  ADD ("malformed", test_malformed);
  ADD ("bad-payload-refused", test_bad_payload_refused);
  ADD ("times-out-of-range", test_times_out_of_range);
  ADD ("unknown-member", test_unknown_member);
  ADD ("control-characters", test_control_characters);
  ADD ("next-steps", test_next_steps);
  ADD ("public-key", test_public_key);
  ADD ("tool", test_tool);
#undef ADD
  return g_test_run ();
}
