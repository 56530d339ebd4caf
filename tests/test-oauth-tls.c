/*
 * test-oauth-tls.c: the office365 plugin's CaFile over real TLS. The
 * loopback identity provider (MamdIdpServer, in this process) serves https
 * only, with a certificate for 127.0.0.1 signed by a CA made at test time;
 * both ends use GIO's TLS backend (glib-networking, GnuTLS). With CaFile
 * naming that CA the keys come over https and a token validates; with an
 * unrelated CA the handshake fails, the token is KeyUnavailable (retry
 * later), never accepted; and a reload after the file changed from the
 * wrong CA to the right one gets an HTTP client that trusts the new file.
 * The module is loaded as mamd loads it (see test-oauth-plugin.c).
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "mamd-idp-server.h"
#include "mamd-test-oauth-util.h"
#include "mamd-test-util.h"

typedef struct {
  char *dir;
  char *ca;       /* signed the provider's certificate */
  char *other_ca; /* an unrelated CA */
  MamdIdpServer *idp;
} TlsFixture;

static void
tls_setup (TlsFixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;

  fx->dir = g_dir_make_tmp ("mamd-oauth-tls-XXXXXX", &error);
  g_assert_no_error (error);
  fx->ca = write_ca_file_full (fx->dir, "ca.pem", &certificate);
  fx->other_ca = write_ca_file (fx->dir, "other-ca.pem");
  fx->idp = mamd_idp_server_new_full (0, certificate, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (mamd_idp_server_get_authority (fx->idp), "https://"));
}

static void
tls_teardown (TlsFixture *fx, gconstpointer data)
{
  g_clear_object (&fx->idp);
  /* let the closes the provider and the clients queued run */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  mamd_test_rm_rf (fx->dir);
  g_free (fx->ca);
  g_free (fx->other_ca);
  g_free (fx->dir);
}

/* A config against the provider with CaFile=@ca_file. */
static GObject *
tls_config (TlsFixture *fx, const char *ca_file)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *group = g_strdup_printf ("Authority=%s\nCaFile=%s\n",
                                            mamd_idp_server_get_authority (fx->idp), ca_file);
  GObject *config = load_config (group, &error);

  g_assert_no_error (error);
  return config;
}

static char *
tls_mint (TlsFixture *fx)
{
  char *token = mamd_idp_server_mint (fx->idp, TENANT, CLIENT, SCOPE, OID, "alice", 3600);

  g_assert_nonnull (token);
  return token;
}

/* The token is refused because the provider's certificate is not trusted:
 * KeyUnavailable, naming the certificate, and the provider never saw an
 * HTTP request (the handshake failed first). */
static void
assert_untrusted (TlsFixture *fx, GObject *config, const char *token)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = authenticate (config, token, &error);

  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_test_message ("untrusted: %s", error->message);
  g_assert_nonnull (strstr (error->message, "TLS certificate"));
  /* the hint names the setting to look at */
  g_assert_nonnull (strstr (error->message, "check the authority URL and CaFile"));
  g_assert_cmpuint (mamd_idp_server_get_request_count (fx->idp, NULL), ==, 0);
}

static void
test_tls_trusted_ca (TlsFixture *fx, gconstpointer data)
{
  g_autoptr(GObject) config = tls_config (fx, fx->ca);
  g_autofree char *token = tls_mint (fx);
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = authenticate (config, token, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  /* the provider speaks nothing but https: these came over TLS */
  g_assert_cmpuint (mamd_idp_server_get_request_count (fx->idp, "/openid-configuration"), ==, 1);
  g_assert_cmpuint (mamd_idp_server_get_request_count (fx->idp, "/keys"), ==, 1);
}

static void
test_tls_untrusted_ca (TlsFixture *fx, gconstpointer data)
{
  g_autoptr(GObject) config = tls_config (fx, fx->other_ca);
  g_autofree char *token = tls_mint (fx);

  assert_untrusted (fx, config, token);
}

/* What mamd does when the CaFile changed and the configuration is
 * reloaded: the new config goes live, then the old one goes. The new
 * config gets a fresh key cache, whose client trusts the file's new
 * contents, and fetches at once. Keeping the old cache would not do: its
 * last refetch failed, so its cool-down (KeyRefetchCooldown, 300 s) refuses
 * to fetch again, and the token would stay KeyUnavailable. (GIO's GnuTLS
 * backend reads the CA file again for every connection, so the old client
 * would now trust the file too: the cool-down is what tells them apart.) */
static void
test_tls_ca_file_reload (TlsFixture *fx, gconstpointer data)
{
  g_autofree char *ca_file = g_build_filename (fx->dir, "trusted.pem", NULL);
  g_autofree char *contents = NULL;
  g_autofree char *token = tls_mint (fx);
  g_autoptr(GObject) before = NULL;
  g_autoptr(GObject) after = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_get_contents (fx->other_ca, &contents, NULL, &error));
  g_file_set_contents_full (ca_file, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error);
  g_assert_no_error (error);
  before = tls_config (fx, ca_file);
  mamd_plugin_config_activate (get_plugin (), before, TRUE);
  /* the first sign-in waits for the fetch the activation started; the
   * second makes the unknown-kid refetch, which starts the cool-down */
  assert_untrusted (fx, before, token);
  assert_untrusted (fx, before, token);

  /* the administrator puts the right CA in the file, and mamd reloads */
  g_clear_pointer (&contents, g_free);
  g_assert_true (g_file_get_contents (fx->ca, &contents, NULL, &error));
  g_file_set_contents_full (ca_file, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &error);
  g_assert_no_error (error);
  after = tls_config (fx, ca_file);
  mamd_plugin_config_activate (get_plugin (), after, TRUE);
  mamd_plugin_config_activate (get_plugin (), before, FALSE);
  identity = authenticate (after, token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  g_assert_cmpuint (mamd_idp_server_get_request_count (fx->idp, "/keys"), ==, 1);
  mamd_plugin_config_activate (get_plugin (), after, FALSE);
  g_unlink (ca_file);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/mamd/oauth/tls/trusted-ca", TlsFixture, NULL, tls_setup, test_tls_trusted_ca,
              tls_teardown);
  g_test_add ("/mamd/oauth/tls/untrusted-ca", TlsFixture, NULL, tls_setup,
              test_tls_untrusted_ca, tls_teardown);
  g_test_add ("/mamd/oauth/tls/ca-file-reload", TlsFixture, NULL, tls_setup,
              test_tls_ca_file_reload, tls_teardown);
  return g_test_run ();
}
