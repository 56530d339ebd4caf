/*
 * mamd-test-oauth-util.c: helpers shared by the office365 plugin tests
 * (test-oauth-plugin.c, test-oauth-tls.c and test-oauth-dbus.c); see the
 * header.
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "mamd-idp-mint.h"
#include "mamd-plugin-loader.h"
#include "mamd-test-oauth-util.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)

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

/* ---- certificates ---- */

static void
add_extension (X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509_EXTENSION *extension;

  X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
  extension = X509V3_EXT_nconf_nid (NULL, &ctx, nid, value);
  g_assert_nonnull (extension);
  g_assert_cmpint (X509_add_ext (cert, extension, -1), ==, 1);
  X509_EXTENSION_free (extension);
}

/* A certificate for @key named @common_name, valid from an hour ago to an
 * hour from now, signed by @issuer_key as @issuer (a server certificate
 * for 127.0.0.1), or a self-signed CA when @issuer is NULL. */
static X509 *
make_cert (EVP_PKEY *key, const char *common_name, X509 *issuer, EVP_PKEY *issuer_key)
{
  static guint serial;
  X509 *cert = X509_new ();
  X509_NAME *subject = X509_get_subject_name (cert);

  g_assert_cmpint (X509_set_version (cert, 2), ==, 1);
  g_assert_cmpint (ASN1_INTEGER_set (X509_get_serialNumber (cert), (long) ++serial), ==, 1);
  g_assert_nonnull (X509_gmtime_adj (X509_getm_notBefore (cert), -3600));
  g_assert_nonnull (X509_gmtime_adj (X509_getm_notAfter (cert), 3600));
  g_assert_cmpint (X509_NAME_add_entry_by_txt (subject, "CN", MBSTRING_ASC,
                                               (const unsigned char *) common_name, -1, -1, 0),
                   ==, 1);
  if (issuer == NULL)
    issuer = cert;
  g_assert_cmpint (X509_set_issuer_name (cert, X509_get_subject_name (issuer)), ==, 1);
  g_assert_cmpint (X509_set_pubkey (cert, key), ==, 1);
  if (issuer == cert)
    {
      add_extension (cert, cert, NID_basic_constraints, "critical,CA:TRUE");
      add_extension (cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
      add_extension (cert, cert, NID_subject_key_identifier, "hash");
    }
  else
    {
      add_extension (cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
      add_extension (cert, issuer, NID_key_usage, "critical,digitalSignature");
      add_extension (cert, issuer, NID_ext_key_usage, "serverAuth");
      add_extension (cert, issuer, NID_subject_alt_name, "IP:127.0.0.1");
      add_extension (cert, issuer, NID_authority_key_identifier, "keyid:always");
    }
  g_assert_cmpint (X509_sign (cert, issuer_key != NULL ? issuer_key : key, EVP_sha256 ()), >, 0);
  return cert;
}

char *
write_ca_file_full (const char *dir, const char *name, GTlsCertificate **server)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *common_name = g_strdup_printf ("mamd test CA %s", uuid);
  g_autoptr(GError) error = NULL;
  g_autoptr(EVP_PKEY) key = mamd_idp_key_generate (MAMD_IDP_KEY_EC_P256, 0, &error);
  g_autoptr(X509) ca = NULL;
  g_autoptr(BIO) bio = BIO_new (BIO_s_mem ());
  char *pem = NULL;
  long len;

  g_assert_no_error (error);
  /* a name of its own: another CA is not even a candidate issuer of this
   * one's certificates, it is simply unrelated */
  ca = make_cert (key, common_name, NULL, NULL);
  g_assert_cmpint (PEM_write_bio_X509 (bio, ca), ==, 1);
  len = BIO_get_mem_data (bio, &pem);
  g_file_set_contents_full (path, pem, len, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error);
  g_assert_no_error (error);

  if (server != NULL)
    {
      g_autoptr(EVP_PKEY) server_key = mamd_idp_key_generate (MAMD_IDP_KEY_EC_P256, 0, &error);
      g_autoptr(X509) cert = NULL;
      g_autoptr(BIO) server_bio = BIO_new (BIO_s_mem ());

      g_assert_no_error (error);
      cert = make_cert (server_key, "127.0.0.1", ca, key);
      g_assert_cmpint (PEM_write_bio_X509 (server_bio, cert), ==, 1);
      g_assert_cmpint (PEM_write_bio_PrivateKey (server_bio, server_key, NULL, NULL, 0, NULL,
                                                 NULL), ==, 1);
      len = BIO_get_mem_data (server_bio, &pem);
      *server = g_tls_certificate_new_from_pem (pem, len, &error);
      g_assert_no_error (error);
    }
  return g_steal_pointer (&path);
}

char *
write_ca_file (const char *dir, const char *name)
{
  return write_ca_file_full (dir, name, NULL);
}

/* ---- the plugin ---- */

MamdPlugin *
get_plugin (void)
{
  static MamdPluginLoader *loader;
  MamdPlugin *plugin;

  if (loader == NULL)
    {
      g_autofree char *path = g_build_filename (g_getenv ("MAMD_BUILD_ROOT"), "plugins",
                                                "oauth", "mamd-oauth.so", NULL);
      const MamdPluginEntry *entry;

      loader = mamd_plugin_loader_new ();
      entry = mamd_plugin_loader_load_module (loader, path);
      g_assert_nonnull (entry);
      g_assert_cmpstr (entry->disabled_reason, ==, NULL);
    }
  plugin = mamd_plugin_loader_lookup (loader, "office365");
  g_assert_nonnull (plugin);
  return plugin;
}

GObject *
load_config_full (const char *tenant, const char *client, const char *server_extra,
                  const char *group_text, GError **error)
{
  g_autoptr(GKeyFile) keyfile = g_key_file_new ();
  g_autofree char *text = NULL;
  g_autoptr(GError) parse_error = NULL;

  text = g_strdup_printf ("[Server]\nEnable=true\nAuthService=office365\n%s%s%s",
                          server_extra != NULL ? server_extra : "",
                          group_text != NULL ? "[" GROUP "]\n" : "",
                          group_text != NULL ? group_text : "");
  g_key_file_load_from_data (keyfile, text, -1, G_KEY_FILE_NONE, &parse_error);
  g_assert_no_error (parse_error);
  return mamd_plugin_load_config (get_plugin (), "chat", tenant, client, keyfile, GROUP, error);
}

GObject *
load_config (const char *group_text, GError **error)
{
  return load_config_full (TENANT, CLIENT, NULL, group_text, error);
}

static void
on_authenticated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AuthWait *wait = user_data;

  wait->identity = mamd_plugin_authenticate_finish (MAMD_PLUGIN (source), result, &wait->error);
  wait->done = TRUE;
}

void
auth_start (GObject *config, GVariant *credential, AuthWait *wait)
{
  mamd_plugin_authenticate_async (get_plugin (), config, credential, NULL, on_authenticated,
                                  wait);
}

void
auth_wait (AuthWait *wait)
{
  wait_for_flag (&wait->done);
}

MamdIdentity *
authenticate (GObject *config, const char *token, GError **error)
{
  g_autoptr(GVariant) credential = token_credential (token);
  AuthWait wait = { 0 };

  auth_start (config, credential, &wait);
  auth_wait (&wait);
  if (wait.error != NULL)
    {
      g_assert_null (wait.identity);
      /* no credential ever reaches a message */
      g_assert_null (strstr (wait.error->message, token));
      g_propagate_error (error, wait.error);
    }
  return wait.identity;
}

