/*
 * mamd-oauth-config.c: parsing of the office365 plugin's [office365] group.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mamd-plugin.h>

#include "mamd-oauth-config.h"
#include "mamd-oauth-http.h"

/* A client secret is a few dozen characters; anything much larger is not one. */
#define SECRET_MAX_LEN 4096
/* Below this, a storm of tokens with forged kids would become a storm of
 * JWKS fetches (SECURITY.md: at most one per cool-down). */
#define REFETCH_COOLDOWN_MIN 10

struct _MamdOauthConfig {
  GObject parent_instance;

  char *server_id;
  char *tenant_id;
  char *client_id;
  char *authority;
  char *discovery_url;
  char *issuer;
  char *token_endpoint;
  char *required_scope;
  guint clock_skew;
  guint key_refresh_interval;
  guint key_refetch_cooldown;
  guint http_timeout;
  char *ca_file;
  char *ca_file_digest; /* SHA-256 of its contents at load time */
  char *client_secret_file;
  char *client_secret; /* wiped on finalize */
  gsize client_secret_len;
  char *permission_scope;
  guint permission_check_interval;
  char *keys_id;

  MamdOauthPermission *permission;
};

G_DEFINE_FINAL_TYPE (MamdOauthConfig, mamd_oauth_config, G_TYPE_OBJECT)

typedef struct {
  const char *name;
  guint def;
  guint min;
  guint max;
  gsize offset;
} UintKey;

static const UintKey uint_keys[] = {
  { "ClockSkew", 300, 0, 3600, G_STRUCT_OFFSET (MamdOauthConfig, clock_skew) },
  { "KeyRefreshInterval", 86400, 60, 7 * 86400,
    G_STRUCT_OFFSET (MamdOauthConfig, key_refresh_interval) },
  { "KeyRefetchCooldown", 300, REFETCH_COOLDOWN_MIN, 86400,
    G_STRUCT_OFFSET (MamdOauthConfig, key_refetch_cooldown) },
  { "HttpTimeout", 10, 1, 300, G_STRUCT_OFFSET (MamdOauthConfig, http_timeout) },
  { "PermissionCheckInterval", 3600, 10, 7 * 86400,
    G_STRUCT_OFFSET (MamdOauthConfig, permission_check_interval) },
};

static const char *const string_keys[] = {
  "Authority", "DiscoveryUrl", "Issuer", "TokenEndpoint", "RequiredScope",
  "CaFile", "ClientSecretFile", "PermissionScope",
};

static void
wipe_secret (MamdOauthConfig *self)
{
  if (self->client_secret == NULL)
    return;
  explicit_bzero (self->client_secret, self->client_secret_len);
  g_clear_pointer (&self->client_secret, g_free);
  self->client_secret_len = 0;
}

static void
mamd_oauth_config_finalize (GObject *object)
{
  MamdOauthConfig *self = MAMD_OAUTH_CONFIG (object);

  if (self->permission != NULL)
    mamd_oauth_permission_stop (self->permission);
  g_clear_object (&self->permission);
  wipe_secret (self);
  g_free (self->server_id);
  g_free (self->tenant_id);
  g_free (self->client_id);
  g_free (self->authority);
  g_free (self->discovery_url);
  g_free (self->issuer);
  g_free (self->token_endpoint);
  g_free (self->required_scope);
  g_free (self->ca_file);
  g_free (self->ca_file_digest);
  g_free (self->client_secret_file);
  g_free (self->permission_scope);
  g_free (self->keys_id);
  G_OBJECT_CLASS (mamd_oauth_config_parent_class)->finalize (object);
}

static void
mamd_oauth_config_class_init (MamdOauthConfigClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = mamd_oauth_config_finalize;
}

static void
mamd_oauth_config_init (MamdOauthConfig *self)
{
}

static gboolean
is_known_key (const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (string_keys); i++)
    if (g_strcmp0 (key, string_keys[i]) == 0)
      return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (uint_keys); i++)
    if (g_strcmp0 (key, uint_keys[i].name) == 0)
      return TRUE;
  return FALSE;
}

/* plugins/oauth/README.md is not installed: name the keys themselves, as
 * mamd does for its own groups */
static char *
known_keys (void)
{
  g_autoptr(GString) known = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (string_keys); i++)
    g_string_append_printf (known, "%s%s", known->len > 0 ? ", " : "", string_keys[i]);
  for (guint i = 0; i < G_N_ELEMENTS (uint_keys); i++)
    g_string_append_printf (known, ", %s", uint_keys[i].name);
  return g_string_free (g_steal_pointer (&known), FALSE);
}

static gboolean
check_unknown_keys (GKeyFile *keyfile, const char *group, GError **error)
{
  g_auto(GStrv) keys = NULL;

  if (!g_key_file_has_group (keyfile, group))
    return TRUE;
  keys = g_key_file_get_keys (keyfile, group, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (!is_known_key (keys[i]))
        {
          g_autofree char *known = known_keys ();

          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                       "[%s] %s: unknown key (known keys: %s)", group, keys[i], known);
          return FALSE;
        }
    }
  return TRUE;
}

/* *out stays NULL when the key is absent. */
static gboolean
get_string (GKeyFile *keyfile, const char *group, const char *key, char **out,
            GError **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autofree char *value = NULL;

  if (!g_key_file_has_key (keyfile, group, key, NULL))
    return TRUE;
  value = g_key_file_get_string (keyfile, group, key, &local_error);
  /* a bad escape sets the error, yet the text still comes back */
  if (local_error != NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] %s: not a valid string (%s)", group, key, local_error->message);
      return FALSE;
    }
  g_strstrip (value);
  if (*value == '\0')
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] %s: must not be empty; remove the key to use the default",
                   group, key);
      return FALSE;
    }
  *out = g_steal_pointer (&value);
  return TRUE;
}

static gboolean
parse_uints (MamdOauthConfig *self, GKeyFile *keyfile, const char *group, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (uint_keys); i++)
    {
      const UintKey *k = &uint_keys[i];
      guint *target = G_STRUCT_MEMBER_P (self, k->offset);
      g_autofree char *value = NULL;
      guint64 parsed = 0;

      *target = k->def;
      if (!g_key_file_has_key (keyfile, group, k->name, NULL))
        continue;
      value = g_key_file_get_value (keyfile, group, k->name, NULL);
      if (value == NULL
          || !g_ascii_string_to_unsigned (g_strstrip (value), 10, k->min, k->max, &parsed, NULL))
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                       "[%s] %s: must be a number of seconds from %u to %u (default %u)",
                       group, k->name, k->min, k->max, k->def);
          return FALSE;
        }
      *target = (guint) parsed;
    }
  return TRUE;
}

/* Identity-provider URLs that mamd fetches: HTTPS, or loopback for tests
 * and the developer IdP. */
static gboolean
check_url (const char *url, const char *group, const char *key, GError **error)
{
  g_autoptr(GError) local_error = NULL;

  if (mamd_oauth_http_check_url (url, &local_error))
    return TRUE;
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, "[%s] %s: %s", group, key,
               local_error->message);
  return FALSE;
}

static gboolean
parse_urls (MamdOauthConfig *self, GKeyFile *keyfile, const char *group, GError **error)
{
  g_autofree char *authority = NULL;
  gsize len;

  if (!get_string (keyfile, group, "Authority", &authority, error)
      || !get_string (keyfile, group, "DiscoveryUrl", &self->discovery_url, error)
      || !get_string (keyfile, group, "Issuer", &self->issuer, error)
      || !get_string (keyfile, group, "TokenEndpoint", &self->token_endpoint, error))
    return FALSE;

  if (authority == NULL)
    authority = g_strdup (MAMD_OAUTH_DEFAULT_AUTHORITY);
  /* "https://login.microsoftonline.com/" is how the portal writes it */
  len = strlen (authority);
  while (len > 0 && authority[len - 1] == '/')
    authority[--len] = '\0';
  if (!check_url (authority, group, "Authority", error))
    return FALSE;
  self->authority = g_steal_pointer (&authority);

  if (self->discovery_url == NULL)
    self->discovery_url = g_strdup_printf ("%s/%s/v2.0/.well-known/openid-configuration",
                                           self->authority, self->tenant_id);
  if (self->issuer == NULL)
    self->issuer = g_strdup_printf ("%s/%s/v2.0", self->authority, self->tenant_id);
  if (self->token_endpoint == NULL)
    self->token_endpoint = g_strdup_printf ("%s/%s/oauth2/v2.0/token", self->authority,
                                            self->tenant_id);
  return check_url (self->discovery_url, group, "DiscoveryUrl", error)
         && check_url (self->token_endpoint, group, "TokenEndpoint", error);
}

/* The scp claim holds bare scope names ("login.mattermost") while the app
 * asks for api://<ClientId>/login.mattermost: the default is that last
 * path segment of [Server] Scope. */
static gboolean
parse_required_scope (MamdOauthConfig *self, GKeyFile *keyfile, const char *group,
                      GError **error)
{
  g_autofree char *server_scope = NULL;
  const char *slash;

  if (!get_string (keyfile, group, "RequiredScope", &self->required_scope, error))
    return FALSE;
  if (self->required_scope == NULL)
    {
      server_scope = g_key_file_get_string (keyfile, "Server", "Scope", NULL);
      if (server_scope != NULL)
        g_strstrip (server_scope);
      if (server_scope == NULL || *server_scope == '\0')
        self->required_scope = g_strdup (MAMD_OAUTH_DEFAULT_REQUIRED_SCOPE);
      else
        {
          slash = strrchr (server_scope, '/');
          self->required_scope = g_strdup (slash != NULL ? slash + 1 : server_scope);
        }
      if (*self->required_scope == '\0')
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                       "[%s] RequiredScope: [Server] Scope ends in '/', so no scope name "
                       "can be derived from it; set RequiredScope", group);
          return FALSE;
        }
    }
  if (strpbrk (self->required_scope, " \t\r\n") != NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] RequiredScope: must be one scope name without spaces, e.g. %s",
                   group, MAMD_OAUTH_DEFAULT_REQUIRED_SCOPE);
      return FALSE;
    }
  return TRUE;
}

/* The CA file is loaded now, so that a file GnuTLS cannot use is refused
 * with the configuration rather than found at the first fetch. A digest of
 * its contents goes into the key-cache id: a file replaced or rewritten in
 * place gives the next reload a new HTTP client that trusts what it holds
 * (a timestamp could miss a rewrite within one clock tick). */
static gboolean
parse_ca_file (MamdOauthConfig *self, GKeyFile *keyfile, const char *group, GError **error)
{
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!get_string (keyfile, group, "CaFile", &self->ca_file, error))
    return FALSE;
  if (self->ca_file == NULL)
    return TRUE;
  if (!g_path_is_absolute (self->ca_file) || !g_file_test (self->ca_file, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] CaFile: %s is not an absolute path to an existing file of "
                   "PEM certificates; fix the path or remove the key to use the "
                   "system CA store", group, self->ca_file);
      return FALSE;
    }
  database = g_tls_file_database_new (self->ca_file, &local_error);
  if (database == NULL || !g_file_get_contents (self->ca_file, &contents, &len, &local_error))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] CaFile: cannot load %s (%s); give a file of PEM CA certificates, "
                   "or remove the key to use the system CA store", group, self->ca_file,
                   local_error->message);
      return FALSE;
    }
  self->ca_file_digest =
    g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) contents, len);
  return TRUE;
}

/* Who may own the secret file: the user reading it (mamd, or mamctl check
 * run as that user), root (mamd run as root), or the service user, so that
 * `mamctl check` run by root accepts the file the service reads. */
static gboolean
secret_owner_ok (uid_t owner)
{
  struct passwd pw, *found = NULL;
  char buf[1024];

  if (owner == geteuid () || owner == 0)
    return TRUE;
  return getpwnam_r (MAMD_SERVICE_USER, &pw, buf, sizeof buf, &found) == 0 && found != NULL &&
         found->pw_uid == owner;
}

/* The secret file must be private to mamd (no group or other bits) and
 * owned by mamd's user (or root), as ssh does for private keys. */
static gboolean
read_secret_file (MamdOauthConfig *self, const char *group, GError **error)
{
  const char *path = self->client_secret_file;
  char buf[SECRET_MAX_LEN + 1];
  struct stat st;
  gssize n;
  gsize len;
  int fd;

  if (!g_path_is_absolute (path))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: %s is not an absolute path", group, path);
      return FALSE;
    }
  /* no symbolic link: it could make any file that passes the checks
   * below, wherever it is, the secret that is sent to the token endpoint */
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: %s is a symbolic link; name the secret file "
                   "itself", group, path);
      return FALSE;
    }
  if (fd < 0 && errno == EACCES)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: uid %u cannot read %s: make it owned by the user "
                   "mamd runs as, mode 0600 (install -o " MAMD_SERVICE_USER " -g "
                   MAMD_SERVICE_USER " -m 0600)",
                   group, (guint) geteuid (), path);
      return FALSE;
    }
  if (fd < 0)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: cannot open %s: %s; create it with mode 0600",
                   group, path, g_strerror (errno));
      return FALSE;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: %s is not a regular file", group, path);
      return FALSE;
    }
  if ((st.st_mode & 077) != 0)
    {
      close (fd);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: %s has mode %04o; it must not be readable by "
                   "group or others: chmod 0600 %s", group, path,
                   (guint) (st.st_mode & 07777), path);
      return FALSE;
    }
  if (!secret_owner_ok (st.st_uid))
    {
      close (fd);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: %s is owned by uid %u; it must be owned by the "
                   "user mamd runs as (" MAMD_SERVICE_USER "): chown " MAMD_SERVICE_USER
                   " %s", group, path, (guint) st.st_uid, path);
      return FALSE;
    }
  n = read (fd, buf, sizeof buf);
  close (fd);
  if (n < 0 || n > SECRET_MAX_LEN)
    {
      explicit_bzero (buf, sizeof buf);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: cannot read %s, or it is larger than %u bytes",
                   group, path, SECRET_MAX_LEN);
      return FALSE;
    }
  len = (gsize) n;
  while (len > 0 && g_ascii_isspace (buf[len - 1]))
    len--;
  if (len == 0 || memchr (buf, '\0', len) != NULL || memchr (buf, '\n', len) != NULL)
    {
      explicit_bzero (buf, sizeof buf);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] ClientSecretFile: %s must hold the client secret on one line",
                   group, path);
      return FALSE;
    }
  self->client_secret = g_strndup (buf, len);
  self->client_secret_len = len;
  explicit_bzero (buf, sizeof buf);
  return TRUE;
}

static gboolean
parse_permission (MamdOauthConfig *self, GKeyFile *keyfile, const char *group, GError **error)
{
  if (!get_string (keyfile, group, "PermissionScope", &self->permission_scope, error)
      || !get_string (keyfile, group, "ClientSecretFile", &self->client_secret_file, error))
    return FALSE;
  if (self->permission_scope == NULL)
    self->permission_scope = g_strdup (MAMD_OAUTH_DEFAULT_PERMISSION_SCOPE);
  if (self->client_secret_file == NULL)
    return TRUE;
  return read_secret_file (self, group, error);
}

static gboolean
parse_ids (MamdOauthConfig *self, const char *tenant_id, const char *client_id,
           const char *group, GError **error)
{
  g_autoptr(GError) local_error = NULL;

  if (tenant_id == NULL || client_id == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s]: the office365 plugin needs TenantId and ClientId in [Server]; "
                   "set them to the Entra tenant and the app's client id", group);
      return FALSE;
    }
  self->tenant_id = mamd_guid_canonicalize (tenant_id, "TenantId", &local_error);
  if (self->tenant_id == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, "[Server] TenantId: %s",
                   local_error->message);
      return FALSE;
    }
  self->client_id = mamd_guid_canonicalize (client_id, "ClientId", &local_error);
  if (self->client_id == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, "[Server] ClientId: %s",
                   local_error->message);
      return FALSE;
    }
  return TRUE;
}

MamdOauthConfig *
mamd_oauth_config_new_from_keyfile (const char  *server_id,
                                    const char  *tenant_id,
                                    const char  *client_id,
                                    GKeyFile    *keyfile,
                                    const char  *group,
                                    GError     **error)
{
  g_autoptr(MamdOauthConfig) self = g_object_new (MAMD_TYPE_OAUTH_CONFIG, NULL);

  g_return_val_if_fail (keyfile != NULL && group != NULL, NULL);

  self->server_id = g_strdup (server_id);
  if (!parse_ids (self, tenant_id, client_id, group, error)
      || !check_unknown_keys (keyfile, group, error)
      || !parse_uints (self, keyfile, group, error)
      || !parse_urls (self, keyfile, group, error)
      || !parse_required_scope (self, keyfile, group, error)
      || !parse_ca_file (self, keyfile, group, error)
      || !parse_permission (self, keyfile, group, error))
    return NULL;

  self->keys_id = g_strdup_printf ("%s\n%s\n%s\n%u\n%u\n%u", self->discovery_url,
                                   self->ca_file != NULL ? self->ca_file : "",
                                   self->ca_file_digest != NULL ? self->ca_file_digest : "",
                                   self->http_timeout, self->key_refresh_interval,
                                   self->key_refetch_cooldown);
  return g_steal_pointer (&self);
}

#define GETTER(type, name) \
  type mamd_oauth_config_get_##name (MamdOauthConfig *self) \
  { \
    g_return_val_if_fail (MAMD_IS_OAUTH_CONFIG (self), 0); \
    return self->name; \
  }

GETTER (const char *, server_id)
GETTER (const char *, tenant_id)
GETTER (const char *, client_id)
GETTER (const char *, authority)
GETTER (const char *, discovery_url)
GETTER (const char *, issuer)
GETTER (const char *, token_endpoint)
GETTER (const char *, required_scope)
GETTER (guint, clock_skew)
GETTER (guint, key_refresh_interval)
GETTER (guint, key_refetch_cooldown)
GETTER (guint, http_timeout)
GETTER (const char *, ca_file)
GETTER (const char *, client_secret_file)
GETTER (const char *, client_secret)
GETTER (const char *, permission_scope)
GETTER (guint, permission_check_interval)
GETTER (const char *, keys_id)
GETTER (MamdOauthPermission *, permission)

void
mamd_oauth_config_set_permission (MamdOauthConfig *self, MamdOauthPermission *permission)
{
  g_return_if_fail (MAMD_IS_OAUTH_CONFIG (self));
  if (self->permission != NULL && self->permission != permission)
    mamd_oauth_permission_stop (self->permission);
  g_set_object (&self->permission, permission);
}
