/*
 * mamd-test-oauth-util.c: helpers shared by the office365 plugin tests
 * (test-oauth-plugin.c and test-oauth-dbus.c); see the header.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mamd-idp-mint.h"
#include "mamd-test-oauth-util.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)

gboolean
on_wait_timeout (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context (the provider's too) until *@flag is set; a hung
 * plugin fails the test instead of hanging it. */
void
wait_for_flag (const gboolean *flag)
{
  gboolean timed_out = FALSE;
  g_autoptr(GSource) timeout = g_timeout_source_new (WAIT_MS);

  g_source_set_callback (timeout, on_wait_timeout, &timed_out, NULL);
  g_source_attach (timeout, NULL);
  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (timeout);
  g_assert_true (*flag);
}

char *
write_secret (const char *dir, const char *name, const char *contents, int mode)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
  return g_steal_pointer (&path);
}

GVariant *
token_credential (const char *token)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "access-token", g_variant_new_string (token));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

char *
write_ca_file (const char *dir, const char *name)
{
  static guint serial;
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(X509) cert = X509_new ();
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  EVP_PKEY *key = mamd_idp_key_generate (MAMD_IDP_KEY_EC_P256, 0, &error);
  X509_NAME *subject;
  char *pem = NULL;
  long pem_len;

  g_assert_no_error (error);
  g_assert_cmpint (X509_set_version (cert, 2), ==, 1);
  g_assert_cmpint (ASN1_INTEGER_set (X509_get_serialNumber (cert), (long) ++serial), ==, 1);
  g_assert_nonnull (X509_gmtime_adj (X509_getm_notBefore (cert), 0));
  g_assert_nonnull (X509_gmtime_adj (X509_getm_notAfter (cert), 3600));
  subject = X509_get_subject_name (cert);
  g_assert_cmpint (X509_NAME_add_entry_by_txt (subject, "CN", MBSTRING_ASC,
                                               (const unsigned char *) "mamd test CA", -1, -1,
                                               0), ==, 1);
  g_assert_cmpint (X509_set_issuer_name (cert, subject), ==, 1);
  g_assert_cmpint (X509_set_pubkey (cert, key), ==, 1);
  g_assert_cmpint (X509_sign (cert, key, EVP_sha256 ()), >, 0);
  EVP_PKEY_free (key);
  g_assert_cmpint (PEM_write_bio_X509 (bio, cert), ==, 1);
  pem_len = BIO_get_mem_data (bio, &pem);
  g_file_set_contents_full (path, pem, pem_len, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}
