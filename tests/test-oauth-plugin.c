/*
 * test-oauth-plugin.c: the office365 plugin, loaded as a module exactly as
 * the daemon loads it, against a loopback identity provider (MamdIdpServer)
 * running in this process: configuration, authentication and the MAM
 * service permission gate. End to end over D-Bus with the real mamd is in
 * test-oauth-dbus.c.
 *
 * Every token is minted at test time with the provider's current key. The
 * provider serves from this process's default main context, so the tests
 * only ever wait by iterating it.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mamd-idp-mint.h"
#include "mamd-idp-server.h"
#include "mamd-test-oauth-util.h"

/* ---- helpers ---- */

static char *
findings_text (GObject *config)
{
  g_autoptr(GPtrArray) findings = g_ptr_array_new_with_free_func (g_free);

  mamd_plugin_diagnose (get_plugin (), config, findings);
  g_ptr_array_add (findings, NULL);
  return g_strjoinv ("\n", (char **) findings->pdata);
}

static void
assert_contains (const char *haystack, const char *needle)
{
  if (strstr (haystack, needle) == NULL)
    g_error ("\"%s\" not found in \"%s\"", needle, haystack);
}

static char *
idp_config (MamdIdpServer *idp, const char *extra)
{
  return g_strdup_printf ("Authority=%s\n%s",
                          mamd_idp_server_get_authority (idp), extra != NULL ? extra : "");
}

static char *
mint (MamdIdpServer *idp, const char *tenant, const char *oid)
{
  char *token = mamd_idp_server_mint (idp, tenant, CLIENT, SCOPE, oid, "alice", 3600);

  g_assert_nonnull (token);
  return token;
}

/* ---- module and configuration ---- */

static void
test_module (void)
{
  MamdPlugin *plugin = get_plugin ();

  g_assert_cmpstr (mamd_plugin_get_method (plugin), ==, "office365");
  g_assert_cmpint (mamd_plugin_get_capabilities (plugin), ==,
                   MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE |
                   MAMD_PLUGIN_CAP_CREATES_USERS);
}

static void
test_config_defaults (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = load_config (NULL, &error);
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  text = findings_text (config);
  g_test_message ("%s", text);
  assert_contains (text, "issuer https://login.microsoftonline.com/" TENANT "/v2.0,");
  assert_contains (text, "audience " CLIENT ",");
  assert_contains (text, "scope login.mattermost,");
  assert_contains (text, "clock skew 300 s");
  assert_contains (text, "https://login.microsoftonline.com/" TENANT
                         "/v2.0/.well-known/openid-configuration");
  assert_contains (text, "refresh 86400 s, refetch cool-down 300 s, HTTP timeout 10 s, "
                         "CA system store");
  assert_contains (text, "ClientSecretFile");

  /* upper-case GUIDs from [Server] are canonicalised */
  g_clear_object (&config);
  config = load_config_full ("72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                             "{3C9AB5D1-0A5E-4F1A-8F4E-5A2B7C1D9E80}", NULL, "", &error);
  g_assert_no_error (error);
  g_free (text);
  text = findings_text (config);
  assert_contains (text, "audience " CLIENT ",");
  assert_contains (text, "/" TENANT "/v2.0,");
}

static void
test_config_every_key (void)
{
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  g_autofree char *secret = write_secret (dir, "secret", SECRET "\n", 0600);
  g_autofree char *ca = write_ca_file (dir, "ca.pem");
  g_autofree char *group = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) config = NULL;

  group = g_strdup_printf ("Authority=https://idp.example.com/\n"
                           "DiscoveryUrl=https://idp.example.com/custom/.well-known/openid-configuration\n"
                           "Issuer=https://issuer.example.com/" TENANT "/v2.0\n"
                           "TokenEndpoint=https://idp.example.com/custom/token\n"
                           "RequiredScope=chat.read\n"
                           "ClockSkew=60\nKeyRefreshInterval=3600\nKeyRefetchCooldown=30\n"
                           "HttpTimeout=5\nCaFile=%s\nClientSecretFile=%s\n"
                           "PermissionScope=https://mam.example.com/.default\n"
                           "PermissionCheckInterval=600\n", ca, secret);
  config = load_config (group, &error);
  g_assert_no_error (error);
  text = findings_text (config);
  g_test_message ("%s", text);
  assert_contains (text, "issuer https://issuer.example.com/" TENANT "/v2.0,");
  assert_contains (text, "scope chat.read,");
  assert_contains (text, "clock skew 60 s");
  assert_contains (text, "signing keys from https://idp.example.com/custom/.well-known/"
                         "openid-configuration (refresh 3600 s, refetch cool-down 30 s, "
                         "HTTP timeout 5 s, CA ");
  assert_contains (text, ca);
  assert_contains (text, "MAM service permission https://mam.example.com/.default at "
                         "https://idp.example.com/custom/token (every 600 s)");
  /* the secret is read, never shown */
  g_assert_null (strstr (text, SECRET));

  /* defaults derived from Authority, and RequiredScope from [Server] Scope */
  g_clear_object (&config);
  config = load_config_full (TENANT, CLIENT,
                             "Scope=api://" CLIENT "/chat.mobile\n",
                             "Authority=https://idp.example.com\n", &error);
  g_assert_no_error (error);
  g_free (text);
  text = findings_text (config);
  assert_contains (text, "issuer https://idp.example.com/" TENANT "/v2.0,");
  assert_contains (text, "scope chat.mobile,");
  assert_contains (text, "https://idp.example.com/" TENANT "/v2.0/.well-known/openid-configuration");

  g_unlink (secret);
  g_unlink (ca);
  g_rmdir (dir);
}

typedef struct {
  const char *group;   /* [office365] contents; %s is replaced by the temp dir */
  const char *key;     /* the key the message must name */
} BadConfig;

static const BadConfig bad_configs[] = {
  { "Colour=blue\n", "Colour" },
  { "authority=https://idp.example.com\n", "authority" },
  { "Authority=http://idp.example.com\n", "Authority" },
  { "Authority=ftp://idp.example.com\n", "Authority" },
  { "Authority=not a url\n", "Authority" },
  { "Authority=\n", "Authority" },
  { "DiscoveryUrl=http://idp.example.com/x\n", "DiscoveryUrl" },
  { "TokenEndpoint=http://10.0.0.1/token\n", "TokenEndpoint" },
  { "Issuer=\n", "Issuer" },
  { "Issuer=https://idp.example.com/\\o/\n", "Issuer" },  /* an escape GKeyFile refuses */
  { "Issuer=https://idp.example.com/\\\n", "Issuer" },    /* a backslash at the end */
  { "RequiredScope=a b\n", "RequiredScope" },
  { "RequiredScope=\n", "RequiredScope" },
  { "ClockSkew=-1\n", "ClockSkew" },
  { "ClockSkew=3601\n", "ClockSkew" },
  { "ClockSkew=five\n", "ClockSkew" },
  { "KeyRefreshInterval=0\n", "KeyRefreshInterval" },
  { "KeyRefreshInterval=1e3\n", "KeyRefreshInterval" },
  { "KeyRefetchCooldown=86401\n", "KeyRefetchCooldown" },
  { "KeyRefetchCooldown=0\n", "KeyRefetchCooldown" },
  { "KeyRefetchCooldown=9\n", "KeyRefetchCooldown" },
  { "HttpTimeout=0\n", "HttpTimeout" },
  { "HttpTimeout=10s\n", "HttpTimeout" },
  { "PermissionCheckInterval=1\n", "PermissionCheckInterval" },
  { "PermissionScope=\n", "PermissionScope" },
  { "CaFile=%s/missing.pem\n", "CaFile" },
  { "CaFile=relative.pem\n", "CaFile" },
  { "CaFile=%s/not-pem\n", "CaFile" },
  { "CaFile=%s/empty\n", "CaFile" },
  { "ClientSecretFile=%s/missing\n", "ClientSecretFile" },
  { "ClientSecretFile=%s/group-readable\n", "ClientSecretFile" },
  { "ClientSecretFile=%s/world-readable\n", "ClientSecretFile" },
  { "ClientSecretFile=%s/empty\n", "ClientSecretFile" },
  { "ClientSecretFile=%s\n", "ClientSecretFile" }, /* a directory */
  { "ClientSecretFile=secret\n", "ClientSecretFile" },
  { "ClientSecretFile=%s/link\n", "ClientSecretFile" }, /* to a private file */
};

static void
test_config_invalid (void)
{
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  g_autofree char *f1 = write_secret (dir, "group-readable", SECRET, 0640);
  g_autofree char *f2 = write_secret (dir, "world-readable", SECRET, 0604);
  g_autofree char *f3 = write_secret (dir, "empty", "\n", 0600);
  g_autofree char *f4 = write_secret (dir, "not-pem", "-----BEGIN CERTIFICATE-----\n", 0644);
  g_autofree char *target = write_secret (dir, "target", SECRET, 0600);
  g_autofree char *link = g_build_filename (dir, "link", NULL);

  g_assert_cmpint (symlink (target, link), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (bad_configs); i++)
    {
      g_autoptr(GString) group = g_string_new (bad_configs[i].group);
      g_autoptr(GError) error = NULL;
      g_autoptr(GObject) config = NULL;
      g_autofree char *want = g_strdup_printf ("[office365] %s:", bad_configs[i].key);

      g_string_replace (group, "%s", dir, 0);
      g_test_message ("case %u: %s", i, group->str);
      config = load_config (group->str, &error);
      g_assert_null (config);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
      assert_contains (error->message, want);
      g_assert_null (strstr (error->message, SECRET));
    }

  /* TenantId and ClientId are required and must be GUIDs */
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GObject) config = load_config_full (NULL, CLIENT, NULL, "", &error);

    g_assert_null (config);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
    assert_contains (error->message, "TenantId");
    g_clear_error (&error);
    config = load_config_full (TENANT, "not-a-guid", NULL, "", &error);
    g_assert_null (config);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
    assert_contains (error->message, "ClientId");
  }

  /* owned by another user than mamd's: the hint is the owner, not the mode */
  if (geteuid () == 0)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *other = write_secret (dir, "other-owner", SECRET, 0600);
      g_autofree char *group = g_strdup_printf ("ClientSecretFile=%s\n", other);
      g_autoptr(GObject) config = NULL;

      g_assert_cmpint (chown (other, 12345, 12345), ==, 0);
      config = load_config (group, &error);
      g_assert_null (config);
      g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG);
      assert_contains (error->message, "is owned by uid 12345");
      assert_contains (error->message, "chown mamd");
      g_assert_null (strstr (error->message, "chmod"));
      g_unlink (other);
    }

  /* a private secret file is accepted, read-only too */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *ok = write_secret (dir, "ok", SECRET, 0400);
    g_autofree char *group = g_strdup_printf ("ClientSecretFile=%s\n", ok);
    g_autoptr(GObject) config = load_config (group, &error);

    g_assert_no_error (error);
    g_assert_nonnull (config);
    g_unlink (ok);
  }
  g_unlink (f1);
  g_unlink (f2);
  g_unlink (f3);
  g_unlink (f4);
  g_unlink (link);
  g_unlink (target);
  g_rmdir (dir);
}

/* ---- authentication against the loopback provider ---- */

static void
test_authenticate_valid (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *group = NULL;
  g_autoptr(GObject) config = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autofree char *token = NULL;
  g_autofree char *issuer = NULL;
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  group = idp_config (idp, NULL);
  config = load_config (group, &error);
  g_assert_no_error (error);

  /* an upper-case oid is canonicalised */
  token = mint (idp, TENANT, "3F2504E0-4F89-11D3-9A0C-0305E82C3301");
  identity = authenticate (config, token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  g_assert_cmpstr (identity->tenant_id, ==, TENANT);
  g_assert_cmpstr (identity->id_attribute, ==, "oid");
  issuer = g_strdup_printf ("%s/%s/v2.0", mamd_idp_server_get_authority (idp), TENANT);
  g_assert_cmpstr (identity->id_source, ==, issuer);

  text = findings_text (config);
  g_test_message ("%s", text);
  g_assert_null (strstr (text, "not fetched yet"));
}

static void
test_authenticate_credential (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *group = idp_config (idp, NULL);
  g_autoptr(GObject) config = load_config (group, &error);
  g_autofree char *token = mint (idp, TENANT, OID);
  const char *bad[] = { "@a{sv} {}", "{'access-token': <42>}", "{'token': <'x'>}",
                        "{'access-token': <'%s'>, 'user': <'alice'>}" };

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GString) text = g_string_new (bad[i]);
      g_autoptr(GVariant) credential = NULL;
      AuthWait wait = { 0 };

      g_string_replace (text, "%s", token, 0);
      credential = g_variant_ref_sink (g_variant_new_parsed (text->str));
      auth_start (config, credential, &wait);
      auth_wait (&wait);
      g_assert_null (wait.identity);
      g_assert_error (wait.error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
      assert_contains (wait.error->message, "access-token");
      g_assert_null (strstr (wait.error->message, token));
      g_clear_error (&wait.error);
    }

  /* not a token at all: invalid, and no network needed to say so */
  {
    g_autoptr(MamdIdentity) identity = authenticate (config, "not.a.jwt", &error);
    g_assert_null (identity);
    g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
    g_assert_cmpuint (mamd_idp_server_get_request_count (idp, "/keys"), ==, 0);
  }
}

static void
test_authenticate_other_tenant (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *group = idp_config (idp, NULL);
  g_autoptr(GObject) config = load_config (group, &error);
  g_autofree char *token = mint (idp, OTHER_TENANT, OID);
  g_autofree char *wrong_scope = mamd_idp_server_mint (idp, TENANT, CLIENT, "other.scope", OID,
                                                       NULL, 3600);
  g_autoptr(MamdIdentity) identity = NULL;

  g_assert_no_error (error);
  identity = authenticate (config, token, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  g_test_message ("%s", error->message);
  g_clear_error (&error);

  identity = authenticate (config, wrong_scope, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  assert_contains (error->message, "scope");
}

/* The provider is down from the start: no key can be had, which is
 * retryable, and stays so for the rest of the cool-down (one fetch however
 * many sign-ins); the configuration going live (start-up or reload)
 * fetches again, and the same token signs in. */
static void
test_authenticate_key_unavailable (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *group = idp_config (idp, NULL);
  g_autoptr(GObject) config = load_config (group, &error);
  g_autofree char *token = mint (idp, TENANT, OID);
  g_autoptr(MamdIdentity) identity = NULL;
  guint fetches;

  g_assert_no_error (error);
  mamd_idp_server_set_down (idp, TRUE);
  identity = authenticate (config, token, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_clear_error (&error);

  mamd_idp_server_set_down (idp, FALSE);
  fetches = mamd_idp_server_get_request_count (idp, "/keys");
  identity = authenticate (config, token, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_cmpuint (mamd_idp_server_get_request_count (idp, "/keys"), ==, fetches);

  mamd_plugin_config_activate (get_plugin (), config, TRUE);
  identity = authenticate (config, token, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  mamd_plugin_config_activate (get_plugin (), config, FALSE);
}

/* Down later: the last good keys still serve the known kid, and a new kid
 * cannot be fetched, which is not the token's fault. */
static void
test_authenticate_provider_down (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *group = idp_config (idp, NULL);
  g_autoptr(GObject) config = load_config (group, &error);
  g_autofree char *token = mint (idp, TENANT, OID);
  g_autofree char *rotated = NULL;
  g_autoptr(MamdIdentity) identity = NULL;

  g_assert_no_error (error);
  mamd_plugin_config_activate (get_plugin (), config, TRUE);
  identity = authenticate (config, token, &error);
  g_assert_no_error (error);
  g_clear_pointer (&identity, mamd_identity_free);

  mamd_idp_server_rotate_key (idp);
  rotated = mint (idp, TENANT, OID);
  mamd_idp_server_set_down (idp, TRUE);
  identity = authenticate (config, token, &error);
  g_assert_no_error (error);
  g_clear_pointer (&identity, mamd_identity_free);
  identity = authenticate (config, rotated, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_KEY_UNAVAILABLE);
  mamd_plugin_config_activate (get_plugin (), config, FALSE);
}

static void
test_authenticate_unknown_kid (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *group = idp_config (idp, NULL);
  g_autoptr(GObject) config = load_config (group, &error);
  g_autofree char *first = mint (idp, TENANT, OID);
  g_autofree char *rotated = NULL;
  g_autofree char *forged = NULL;
  g_autofree char *header = NULL;
  g_autofree char *claims = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  EVP_PKEY *own_key;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  guint fetches;

  g_assert_no_error (error);
  /* live, as mamd runs it: the keys are fetched at once, outside the
   * unknown-kid cool-down */
  mamd_plugin_config_activate (get_plugin (), config, TRUE);
  identity = authenticate (config, first, &error);
  g_assert_no_error (error);
  g_clear_pointer (&identity, mamd_identity_free);
  fetches = mamd_idp_server_get_request_count (idp, "/keys");
  g_assert_cmpuint (fetches, >=, 1);

  /* a rotation: the new kid is unknown, fetched once, then accepted */
  mamd_idp_server_rotate_key (idp);
  rotated = mint (idp, TENANT, OID);
  identity = authenticate (config, rotated, &error);
  g_assert_no_error (error);
  g_clear_pointer (&identity, mamd_identity_free);
  g_assert_cmpuint (mamd_idp_server_get_request_count (idp, "/keys"), ==, fetches + 1);

  /* a well-formed token under a kid the provider never published */
  own_key = mamd_idp_key_generate (MAMD_IDP_KEY_RSA, 2048, &error);
  g_assert_no_error (error);
  header = g_strdup ("{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"never-published\"}");
  claims = g_strdup_printf ("{\"ver\":\"2.0\",\"iss\":\"%s/%s/v2.0\",\"aud\":\"%s\","
                            "\"tid\":\"%s\",\"oid\":\"%s\",\"scp\":\"%s\","
                            "\"iat\":%" G_GINT64_FORMAT ",\"nbf\":%" G_GINT64_FORMAT ","
                            "\"exp\":%" G_GINT64_FORMAT "}",
                            mamd_idp_server_get_authority (idp), TENANT, CLIENT, TENANT, OID,
                            SCOPE, now, now, now + 3600);
  forged = mamd_idp_sign_compact (header, claims, "RS256", own_key, NULL, 0, &error);
  EVP_PKEY_free (own_key);
  g_assert_no_error (error);
  identity = authenticate (config, forged, &error);
  g_assert_null (identity);
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN);
  assert_contains (error->message, "signature");
  mamd_plugin_config_activate (get_plugin (), config, FALSE);
}

/* A reload reads the CA file again: while it is unchanged the new config
 * shares the key cache (no fetch), once it is replaced the cache starts
 * afresh (a new HTTP client, made from the new file), and the old cache,
 * which no live config uses, is dropped. The provider here is plain http,
 * which never consults the CA file: that the new client trusts the new
 * file, and only it, is test-oauth-tls.c's ca-file-reload, over TLS. */
static void
test_ca_file_reload (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  g_autofree char *ca = write_ca_file (dir, "ca.pem");
  g_autofree char *extra = g_strdup_printf ("CaFile=%s\n", ca);
  g_autofree char *group = idp_config (idp, extra);
  g_autofree char *token = mint (idp, TENANT, OID);
  GObject *configs[3] = { NULL, NULL, NULL };
  guint fetches = 0;

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++)
    {
      g_autoptr(MamdIdentity) identity = NULL;

      if (i == 2)
        g_free (write_ca_file (dir, "ca.pem"));
      configs[i] = load_config (group, &error);
      g_assert_no_error (error);
      /* what mamd does on reload: the new config goes live, then the old goes */
      mamd_plugin_config_activate (get_plugin (), configs[i], TRUE);
      if (i > 0)
        mamd_plugin_config_activate (get_plugin (), configs[i - 1], FALSE);
      identity = authenticate (configs[i], token, &error);
      g_assert_no_error (error);
      if (i == 1)
        g_assert_cmpuint (mamd_idp_server_get_request_count (idp, "/keys"), ==, fetches);
      else
        g_assert_cmpuint (mamd_idp_server_get_request_count (idp, "/keys"), >, fetches);
      fetches = mamd_idp_server_get_request_count (idp, "/keys");
    }
  /* no live config uses the cache any more: it is dropped, and the next
   * activation starts afresh */
  mamd_plugin_config_activate (get_plugin (), configs[2], FALSE);
  mamd_plugin_config_activate (get_plugin (), configs[2], TRUE);
  {
    g_autoptr(MamdIdentity) identity = authenticate (configs[2], token, &error);

    g_assert_no_error (error);
  }
  g_assert_cmpuint (mamd_idp_server_get_request_count (idp, "/keys"), >, fetches);
  mamd_plugin_config_activate (get_plugin (), configs[2], FALSE);
  for (guint i = 0; i < G_N_ELEMENTS (configs); i++)
    g_object_unref (configs[i]);
  g_unlink (ca);
  g_rmdir (dir);
}

/* ---- the MAM service permission and the gate ---- */

typedef struct {
  GObject *config;
  gboolean changed;
} GateWait;

static void
on_gate_changed (MamdPlugin *plugin, GObject *config, gpointer user_data)
{
  GateWait *wait = user_data;

  if (config == wait->config)
    wait->changed = TRUE;
}

/* Activates a config with a client secret against @idp; the permission
 * check starts, *@wait is set when its answer changes the gate. */
static GObject *
activate_with_secret_async (MamdIdpServer *idp, const char *dir, GateWait *wait,
                            gulong *handler)
{
  g_autofree char *secret = write_secret (dir, "secret", SECRET "\n", 0600);
  g_autofree char *extra = g_strdup_printf ("ClientSecretFile=%s\n", secret);
  g_autofree char *group = idp_config (idp, extra);
  g_autoptr(GError) error = NULL;
  GObject *config = load_config (group, &error);

  g_assert_no_error (error);
  wait->config = config;
  *handler = g_signal_connect (get_plugin (), "gate-changed", G_CALLBACK (on_gate_changed), wait);
  mamd_plugin_config_activate (get_plugin (), config, TRUE);
  g_unlink (secret);
  return config;
}

/* The same, waiting for the first permission answer. */
static GObject *
activate_with_secret (MamdIdpServer *idp, const char *dir, GateWait *wait, gulong *handler)
{
  GObject *config = activate_with_secret_async (idp, dir, wait, handler);

  wait_for_flag (&wait->changed);
  return config;
}

static void
deactivate (GObject *config, gulong handler)
{
  g_signal_handler_disconnect (get_plugin (), handler);
  mamd_plugin_config_activate (get_plugin (), config, FALSE);
  g_object_unref (config);
}

static void
test_gate_granted (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  g_autofree char *text = NULL;
  GateWait wait = { 0 };
  GObject *config;
  gulong handler;

  g_assert_no_error (error);
  mamd_idp_server_add_client (idp, TENANT, CLIENT, SECRET);
  config = activate_with_secret (idp, dir, &wait, &handler);
  g_assert_true (mamd_plugin_check_gate (get_plugin (), config, &error));
  g_assert_no_error (error);
  text = findings_text (config);
  g_test_message ("%s", text);
  assert_contains (text, "granted");
  g_assert_null (strstr (text, SECRET));
  g_assert_cmpuint (mamd_idp_server_get_request_count (idp, "/token"), >=, 1);
  deactivate (config, handler);
  g_rmdir (dir);
}

static void
test_gate_invalid_resource (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  g_autofree char *text = NULL;
  GateWait wait = { 0 };
  GObject *config;
  gulong handler;

  g_assert_no_error (error);
  mamd_idp_server_add_client (idp, TENANT, CLIENT, SECRET);
  mamd_idp_server_set_token_error (idp, "AADSTS650057");
  config = activate_with_secret (idp, dir, &wait, &handler);
  g_assert_false (mamd_plugin_check_gate (get_plugin (), config, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE);
  g_test_message ("%s", error->message);
  assert_contains (error->message, "AADSTS650057");
  assert_contains (error->message, "admin consent");
  g_assert_null (strstr (error->message, SECRET));
  text = findings_text (config);
  assert_contains (text, "AADSTS650057");
  deactivate (config, handler);
  g_rmdir (dir);
}

static void
test_gate_other_error (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  g_autofree char *text = NULL;
  GateWait wait = { 0 };
  GObject *config;
  gulong handler;

  g_assert_no_error (error);
  mamd_idp_server_add_client (idp, TENANT, CLIENT, SECRET);
  mamd_idp_server_set_token_error (idp, "AADSTS7000215");
  config = activate_with_secret (idp, dir, &wait, &handler);
  /* reported, but only a missing permission closes the gate */
  g_assert_true (mamd_plugin_check_gate (get_plugin (), config, &error));
  g_assert_no_error (error);
  text = findings_text (config);
  g_test_message ("%s", text);
  assert_contains (text, "AADSTS7000215");
  g_assert_null (strstr (text, SECRET));
  deactivate (config, handler);
  g_rmdir (dir);
}

/* What mamd does on reload: a new config for the same server is activated
 * while the old one is still live, then the old one goes. The new one
 * keeps the closed gate until its own check, made at once, answers. */
static void
test_gate_reload (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  GateWait wait = { 0 }, wait2 = { 0 };
  GObject *config, *config2;
  gulong handler, handler2;

  g_assert_no_error (error);
  mamd_idp_server_add_client (idp, TENANT, CLIENT, SECRET);
  mamd_idp_server_set_token_error (idp, "AADSTS650057");
  config = activate_with_secret (idp, dir, &wait, &handler);
  g_assert_false (mamd_plugin_check_gate (get_plugin (), config, NULL));

  /* admin consent granted, then a reload */
  mamd_idp_server_set_token_error (idp, NULL);
  config2 = activate_with_secret_async (idp, dir, &wait2, &handler2);
  g_assert_false (mamd_plugin_check_gate (get_plugin (), config2, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_RESOURCE);
  g_clear_error (&error);
  deactivate (config, handler);
  wait_for_flag (&wait2.changed);
  g_assert_true (mamd_plugin_check_gate (get_plugin (), config2, &error));
  g_assert_no_error (error);
  deactivate (config2, handler2);
  g_rmdir (dir);
}

/* A host that drops the plugin while a config it activated is still held
 * (the daemon deactivates first; plugin authors' hosts need not): the
 * config's permission check, in flight or periodic, must stop with the
 * plugin, or its answer would announce the gate change through the freed
 * plugin. The answer would make the findings say "granted"; until then,
 * and for good once the check is stopped, they say that the permission is
 * checked while the config is live. */
static void
test_gate_plugin_disposed (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdpServer) idp = mamd_idp_server_new (0, &error);
  g_autofree char *dir = g_dir_make_tmp ("mamd-oauth-XXXXXX", NULL);
  g_autofree char *secret = write_secret (dir, "secret", SECRET "\n", 0600);
  g_autofree char *extra = g_strdup_printf ("ClientSecretFile=%s\n", secret);
  g_autofree char *group = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GObject) config = NULL;
  MamdPlugin *plugin;
  gpointer alive;

  g_assert_no_error (error);
  mamd_idp_server_add_client (idp, TENANT, CLIENT, SECRET);
  group = idp_config (idp, extra);
  config = load_config (group, &error);
  g_assert_no_error (error);
  plugin = g_object_new (G_OBJECT_TYPE (get_plugin ()), NULL);
  alive = plugin;
  g_object_add_weak_pointer (G_OBJECT (plugin), &alive);
  mamd_plugin_config_activate (plugin, config, TRUE);
  g_object_unref (plugin);
  g_assert_null (alive);

  text = findings_text (config);
  while (strstr (text, "checked while the configuration is live") == NULL &&
         strstr (text, "granted") == NULL)
    {
      g_main_context_iteration (NULL, TRUE);
      g_free (text);
      text = findings_text (config);
    }
  g_test_message ("%s", text);
  assert_contains (text, "checked while the configuration is live");
  g_unlink (secret);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/mamd/oauth/plugin/module", test_module);
  g_test_add_func ("/mamd/oauth/plugin/config/defaults", test_config_defaults);
  g_test_add_func ("/mamd/oauth/plugin/config/every-key", test_config_every_key);
  g_test_add_func ("/mamd/oauth/plugin/config/invalid", test_config_invalid);
  g_test_add_func ("/mamd/oauth/plugin/config/ca-file-reload", test_ca_file_reload);
  g_test_add_func ("/mamd/oauth/plugin/authenticate/valid", test_authenticate_valid);
  g_test_add_func ("/mamd/oauth/plugin/authenticate/credential", test_authenticate_credential);
  g_test_add_func ("/mamd/oauth/plugin/authenticate/other-tenant", test_authenticate_other_tenant);
  g_test_add_func ("/mamd/oauth/plugin/authenticate/key-unavailable",
                   test_authenticate_key_unavailable);
  g_test_add_func ("/mamd/oauth/plugin/authenticate/provider-down",
                   test_authenticate_provider_down);
  g_test_add_func ("/mamd/oauth/plugin/authenticate/unknown-kid", test_authenticate_unknown_kid);
  g_test_add_func ("/mamd/oauth/plugin/gate/granted", test_gate_granted);
  g_test_add_func ("/mamd/oauth/plugin/gate/invalid-resource", test_gate_invalid_resource);
  g_test_add_func ("/mamd/oauth/plugin/gate/other-error", test_gate_other_error);
  g_test_add_func ("/mamd/oauth/plugin/gate/reload", test_gate_reload);
  g_test_add_func ("/mamd/oauth/plugin/gate/plugin-disposed", test_gate_plugin_disposed);
  return g_test_run ();
}
