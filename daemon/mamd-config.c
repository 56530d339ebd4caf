#include "config.h"

#include <string.h>

#include "mamd-config.h"
#include "mamd-json.h"
#include "mamd-plugin.h"

#define DAEMON_FILE "mamd.conf"
#define SERVER_FILE "servers.d/<id>.conf"
#define MAX_CONFIG_FILE_SIZE (1024 * 1024)

/* The one description of every key: the validator walks it to know which
 * keys exist and what type they have, defaults are parsed from it, and
 * `mamctl config-keys` and the README print it. NULL default: unset. */
static const MamdConfigKey config_keys[] = {
  { DAEMON_FILE, "Daemon", "LicenseFile", "string", "license.json",
    "Signed licence file; a relative path is resolved against the configuration directory" },
  { DAEMON_FILE, "Daemon", "LicensePublicKey", "string", "license-public.pem",
    "Ed25519 public key (PEM) that verifies the licence; relative to the configuration "
    "directory; a file that also holds a private key is refused" },
  { DAEMON_FILE, "Daemon", "ClientUsers", "string list", "",
    "User names allowed to call host-integrator methods (root and the daemon's own user always "
    "may); resolved to uids at start and at every reload, so reload after adding, renaming or "
    "deleting one" },
  { DAEMON_FILE, "Daemon", "AdminUsers", "string list", "",
    "User names allowed to call administrative methods (root and the daemon's own user always "
    "may); resolved like `ClientUsers`" },
  { DAEMON_FILE, "Daemon", "WipeRetentionDays", "unsigned", "7",
    "Days an unacknowledged wipe is kept and re-announced before it is given up (1 to 36500)" },
  { DAEMON_FILE, "Daemon", "EventRetentionDays", "unsigned", "30",
    "Days audit events are kept in the state store (1 to 36500)" },
  { DAEMON_FILE, "Daemon", "DirectorySyncInterval", "unsigned", "3600",
    "Seconds between directory syncs of plugins that provision users; 0 turns sync off" },
  { DAEMON_FILE, "Limits", "MaxSessionsPerUser", "unsigned", "200000",
    "Live sessions one calling uid may hold (at least 1)" },
  { DAEMON_FILE, "Limits", "MaxCallsInFlightPerSender", "unsigned", "64",
    "D-Bus calls one bus peer may have in flight (at least 1)" },
  { DAEMON_FILE, "Limits", "MaxCallsInFlightPerUser", "unsigned", "256",
    "D-Bus calls one calling uid may have in flight over all its connections (at least 1)" },
  { DAEMON_FILE, "Limits", "SignInTimeout", "unsigned", "60",
    "Seconds a plugin may take to authenticate a sign-in before mamd gives up on it with "
    "PluginUnavailable (1 to 3600)" },
  { DAEMON_FILE, "Limits", "DirectorySyncTimeout", "unsigned", "600",
    "Seconds a plugin may take to list a server's users before mamd gives up on that "
    "directory sync (1 to 86400)" },
  { SERVER_FILE, "Server", "Enable", "boolean", "false",
    "Whether Intune MAM is enforced for this server" },
  { SERVER_FILE, "Server", "Name", "string", NULL,
    "Display name; defaults to the server id" },
  { SERVER_FILE, "Server", "TenantId", "GUID", NULL,
    "Microsoft Entra tenant (directory) id" },
  { SERVER_FILE, "Server", "ClientId", "GUID", NULL,
    "Application (client) id of the server's Entra app registration" },
  { SERVER_FILE, "Server", "AuthService", "string", NULL,
    "Authentication method MAM applies to, e.g. office365 or saml ([a-z0-9_-]+)" },
  { SERVER_FILE, "Server", "Scope", "string", "api://<ClientId>/login.mattermost",
    "IntuneScope the mobile token is requested for; empty means unset" },
  { SERVER_FILE, "Server", "AllowedPlatforms", "string list", "ios;android",
    "Mobile platforms that may sign in: ios, android" },
  { SERVER_FILE, "Server", "AutoCreateUsers", "boolean", "true",
    "Whether a first sign-in may create the user record, through methods whose plugin "
    "creates users (office365; not saml)" },
};

static const char *const known_platforms[] = { "ios", "android", NULL };

gboolean
mamd_config_platform_is_known (const char *platform)
{
  return platform != NULL && g_strv_contains (known_platforms, platform);
}

const MamdConfigKey *
mamd_config_get_keys (guint *n_keys)
{
  if (n_keys != NULL)
    *n_keys = G_N_ELEMENTS (config_keys);
  return config_keys;
}

static const MamdConfigKey *
find_key (const char *file, const char *group, const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (config_keys); i++)
    {
      const MamdConfigKey *k = &config_keys[i];
      if (g_str_equal (k->file, file) && g_str_equal (k->group, group) && g_str_equal (k->key, key))
        return k;
    }
  return NULL;
}

static gboolean
group_is_known (const char *file, const char *group)
{
  for (guint i = 0; i < G_N_ELEMENTS (config_keys); i++)
    if (g_str_equal (config_keys[i].file, file) && g_str_equal (config_keys[i].group, group))
      return TRUE;
  return FALSE;
}

static gboolean
is_name (const char *text, gboolean first_alnum)
{
  if (text == NULL || *text == '\0')
    return FALSE;
  if (first_alnum && !g_ascii_islower (*text) && !g_ascii_isdigit (*text))
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

/* ---- problems ---- */

typedef struct {
  GPtrArray *problems; /* char* */
} Loader;

G_GNUC_PRINTF (5, 6) static void
add_problem (Loader *ld, const char *path, const char *group, const char *key,
             const char *format, ...)
{
  g_autofree char *message = NULL;
  g_autofree char *problem = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  /* names and values come from files: problems go to D-Bus and JSON as UTF-8 */
  if (group != NULL && key != NULL)
    problem = g_strdup_printf ("%s: [%s] %s: %s", path, group, key, message);
  else if (group != NULL)
    problem = g_strdup_printf ("%s: [%s]: %s", path, group, message);
  else
    problem = g_strdup_printf ("%s: %s", path, message);
  g_ptr_array_add (ld->problems, g_utf8_make_valid (problem, -1));
}

/* ---- typed values ---- */

static gboolean
parse_boolean (const char *raw, gboolean *out)
{
  if (g_strcmp0 (raw, "true") == 0)
    *out = TRUE;
  else if (g_strcmp0 (raw, "false") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_unsigned (const char *raw, guint *out)
{
  guint64 value;

  if (raw == NULL || *raw == '\0')
    return FALSE;
  for (const char *p = raw; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p))
      return FALSE;
  if (!g_ascii_string_to_unsigned (raw, 10, 0, G_MAXUINT, &value, NULL))
    return FALSE;
  *out = (guint) value;
  return TRUE;
}

static guint
unsigned_minimum (const MamdConfigKey *k)
{
  /* only the sync interval has a meaning for 0 (off) */
  return g_str_equal (k->key, "DirectorySyncInterval") ? 0 : 1;
}

/* Retentions become microseconds: a century keeps them far from overflow. */
static guint
unsigned_maximum (const MamdConfigKey *k)
{
  if (g_str_equal (k->key, "SignInTimeout"))
    return 3600;
  if (g_str_equal (k->key, "DirectorySyncTimeout"))
    return 86400;
  return g_str_has_suffix (k->key, "RetentionDays") ? 36500 : G_MAXUINT;
}

static void
check_string_list (Loader *ld, const char *path, const MamdConfigKey *k, char **items)
{
  gboolean is_platforms = g_str_equal (k->key, "AllowedPlatforms");

  if (is_platforms && g_strv_length (items) == 0)
    add_problem (ld, path, k->group, k->key, "list at least one of ios, android");

  for (guint i = 0; items[i] != NULL; i++)
    {
      if (*items[i] == '\0')
        {
          add_problem (ld, path, k->group, k->key, "empty list item");
          continue;
        }
      for (guint j = 0; j < i; j++)
        if (g_str_equal (items[i], items[j]))
          add_problem (ld, path, k->group, k->key, "'%s' is listed twice", items[i]);
      if (is_platforms && !g_strv_contains (known_platforms, items[i]))
        add_problem (ld, path, k->group, k->key,
                     "unknown platform '%s': use ios or android", items[i]);
    }
}

static void
check_value (Loader *ld, const char *path, GKeyFile *kf, const MamdConfigKey *k)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *raw = g_key_file_get_value (kf, k->group, k->key, NULL);

  if (g_str_equal (k->type, "boolean"))
    {
      gboolean b;
      if (!parse_boolean (raw, &b))
        add_problem (ld, path, k->group, k->key, "expected true or false, got '%s'", raw);
    }
  else if (g_str_equal (k->type, "unsigned"))
    {
      guint u;
      if (!parse_unsigned (raw, &u))
        add_problem (ld, path, k->group, k->key, "expected an unsigned integer, got '%s'", raw);
      else if (u < unsigned_minimum (k))
        add_problem (ld, path, k->group, k->key, "must be at least %u", unsigned_minimum (k));
      else if (u > unsigned_maximum (k))
        add_problem (ld, path, k->group, k->key, "must be at most %u", unsigned_maximum (k));
    }
  else if (g_str_equal (k->type, "string list"))
    {
      g_auto(GStrv) items = g_key_file_get_string_list (kf, k->group, k->key, NULL, &error);
      if (items == NULL)
        add_problem (ld, path, k->group, k->key, "%s", error->message);
      else
        check_string_list (ld, path, k, items);
    }
  else
    {
      g_autofree char *value = g_key_file_get_string (kf, k->group, k->key, &error);

      /* a bad escape sets the error, yet the text still comes back */
      if (error != NULL)
        add_problem (ld, path, k->group, k->key, "%s", error->message);
      else if (*value == '\0' && !g_str_equal (k->key, "Scope"))
        add_problem (ld, path, k->group, k->key, "empty value: set it or remove the key");
      else if (g_str_equal (k->type, "GUID"))
        {
          g_autofree char *guid = mamd_guid_canonicalize (value, "the value", &error);
          if (guid == NULL)
            add_problem (ld, path, k->group, k->key, "%s",
                         error != NULL ? error->message : "not a GUID");
        }
      else if (g_str_equal (k->key, "AuthService") && !is_name (value, FALSE))
        add_problem (ld, path, k->group, k->key,
                     "'%s' is not a method name: use lowercase letters, digits, '-' and '_'",
                     value);
    }
}

static char *
known_keys (const char *file, const char *group)
{
  g_autoptr(GString) known = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (config_keys); i++)
    if (g_str_equal (config_keys[i].file, file) && g_str_equal (config_keys[i].group, group))
      g_string_append_printf (known, "%s%s", known->len > 0 ? ", " : "", config_keys[i].key);
  return g_string_free (g_steal_pointer (&known), FALSE);
}

/* Checks every key of @group against the table. */
static void
check_group (Loader *ld, const char *path, const char *file, GKeyFile *kf, const char *group)
{
  g_auto(GStrv) keys = g_key_file_get_keys (kf, group, NULL, NULL);

  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      const MamdConfigKey *k = find_key (file, group, keys[i]);

      if (k == NULL)
        {
          g_autofree char *known = known_keys (file, group);
          add_problem (ld, path, group, keys[i], "unknown key (known keys: %s)", known);
        }
      else
        check_value (ld, path, kf, k);
    }
}

/* The getters below run only on validated files; defaults come from the
 * table so they are written down once. */

static char *
get_string (GKeyFile *kf, const char *file, const char *group, const char *key)
{
  const MamdConfigKey *k = find_key (file, group, key);

  if (g_key_file_has_key (kf, group, key, NULL))
    return g_key_file_get_string (kf, group, key, NULL);
  return g_strdup (k->default_value);
}

static guint
get_unsigned (GKeyFile *kf, const char *file, const char *group, const char *key)
{
  const MamdConfigKey *k = find_key (file, group, key);
  g_autofree char *raw = g_key_file_get_value (kf, group, key, NULL);
  guint value = 0;

  if (raw == NULL || !parse_unsigned (raw, &value))
    parse_unsigned (k->default_value, &value);
  return value;
}

static gboolean
get_boolean (GKeyFile *kf, const char *file, const char *group, const char *key)
{
  const MamdConfigKey *k = find_key (file, group, key);
  g_autofree char *raw = g_key_file_get_value (kf, group, key, NULL);
  gboolean value = FALSE;

  if (raw == NULL || !parse_boolean (raw, &value))
    parse_boolean (k->default_value, &value);
  return value;
}

static char **
get_strv (GKeyFile *kf, const char *file, const char *group, const char *key)
{
  const MamdConfigKey *k = find_key (file, group, key);
  char **items = NULL;

  if (g_key_file_has_key (kf, group, key, NULL))
    items = g_key_file_get_string_list (kf, group, key, NULL, NULL);
  else if (*k->default_value != '\0')
    items = g_strsplit (k->default_value, ";", -1);
  return items != NULL ? items : g_new0 (char *, 1);
}

static char *
get_guid (GKeyFile *kf, const char *group, const char *key)
{
  g_autofree char *value = get_string (kf, SERVER_FILE, group, key);

  return value != NULL ? mamd_guid_canonicalize (value, key, NULL) : NULL;
}

/* ---- files ---- */

/* What GKeyFile lets pass or words badly, checked line by line first: text
 * that is not UTF-8, a group or a key given twice (GKeyFile merges groups
 * and keeps the last value, so the file would not say what it means), and
 * lines that are none of comment, [group] and key=value. Problems name the
 * line by number, never quote it: it may hold a secret. */
static gboolean
check_layout (Loader *ld, const char *path, const char *contents, gsize len)
{
  g_autoptr(GHashTable) groups = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) lines = NULL;
  g_autofree char *group = NULL;
  const char *bad;
  guint n_problems = ld->problems->len;

  if (!g_utf8_validate_len (contents, len, &bad))
    {
      guint line = 1;

      for (const char *p = contents; p < bad; p++)
        line += *p == '\n';
      add_problem (ld, path, NULL, NULL, "line %u is not UTF-8 text%s", line,
                   memchr (contents, '\0', len) != NULL ? " (it holds a NUL byte)" : "");
      return FALSE;
    }
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *equals = strchr (line, '=');
      guint number = i + 1;
      gpointer first;

      if (*line == '\0' || *line == '#')
        continue;
      if (*line == '[' && g_str_has_suffix (line, "]"))
        {
          g_free (group);
          group = g_strndup (line + 1, strlen (line) - 2);
          if (g_hash_table_lookup_extended (groups, group, NULL, &first))
            add_problem (ld, path, group, NULL,
                         "line %u: the group appears a second time (first on line %u): "
                         "merge them into one", number, GPOINTER_TO_UINT (first));
          else
            g_hash_table_insert (groups, g_strdup (group), GUINT_TO_POINTER (number));
          continue;
        }
      if (equals == NULL)
        {
          add_problem (ld, path, NULL, NULL,
                       "line %u is not a key=value pair, a [group] header or a comment",
                       number);
          continue;
        }
      if (group == NULL)
        {
          add_problem (ld, path, NULL, NULL, "line %u: a key before the first [group]", number);
          continue;
        }
      *equals = '\0';
      g_strchomp (line);
      {
        g_autofree char *id = g_strconcat (group, "]", line, NULL);

        if (g_hash_table_lookup_extended (keys, id, NULL, &first))
          add_problem (ld, path, group, line,
                       "line %u: set a second time (first on line %u): keep one", number,
                       GPOINTER_TO_UINT (first));
        else
          g_hash_table_insert (keys, g_steal_pointer (&id), GUINT_TO_POINTER (number));
      }
    }
  return ld->problems->len == n_problems;
}

static GKeyFile *
load_keyfile (Loader *ld, const char *path)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (!mamd_file_read_bounded (path, MAX_CONFIG_FILE_SIZE, &contents, &len, &error))
    {
      add_problem (ld, path, NULL, NULL, "%s", error->message);
      return NULL;
    }
  if (!check_layout (ld, path, contents, len))
    return NULL;
  /* GKeyFile's messages quote the line, which may hold a secret. Without
   * G_KEY_FILE_KEEP_TRANSLATIONS it drops Key[xx]= lines for languages
   * outside $LANGUAGE and friends: such a key would pass unnoticed, or not,
   * depending on the locale of whoever loads the file. Kept, it is an
   * unknown key like any other. */
  if (!g_key_file_load_from_data (kf, contents, len, G_KEY_FILE_KEEP_TRANSLATIONS, &error))
    {
      add_problem (ld, path, NULL, NULL,
                   "not a valid key file: a group or key name GKeyFile refuses");
      return NULL;
    }
  return g_steal_pointer (&kf);
}

static void
daemon_config_free (MamdDaemonConfig *daemon)
{
  if (daemon == NULL)
    return;
  g_free (daemon->path);
  g_free (daemon->license_file);
  g_free (daemon->license_public_key);
  g_strfreev (daemon->client_users);
  g_strfreev (daemon->admin_users);
  g_free (daemon);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdDaemonConfig, daemon_config_free)

static char *
resolve_path (const char *dir, const char *path)
{
  return g_canonicalize_filename (path, dir);
}

static MamdDaemonConfig *
load_daemon (Loader *ld, const char *dir, const char *path)
{
  g_autoptr(MamdDaemonConfig) daemon = g_new0 (MamdDaemonConfig, 1);
  g_autoptr(GKeyFile) kf = NULL;
  g_auto(GStrv) groups = NULL;
  g_autofree char *license_file = NULL;
  g_autofree char *public_key = NULL;
  guint before = ld->problems->len;

  if (path != NULL)
    {
      kf = load_keyfile (ld, path);
      if (kf == NULL)
        return NULL;
      groups = g_key_file_get_groups (kf, NULL);
      for (guint i = 0; groups[i] != NULL; i++)
        {
          if (group_is_known (DAEMON_FILE, groups[i]))
            check_group (ld, path, DAEMON_FILE, kf, groups[i]);
          else
            add_problem (ld, path, groups[i], NULL,
                         "unknown group: mamd.conf has only [Daemon] and [Limits]");
        }
      if (ld->problems->len != before)
        return NULL;
    }
  else
    kf = g_key_file_new ();

  daemon->path = g_strdup (path);
  license_file = get_string (kf, DAEMON_FILE, "Daemon", "LicenseFile");
  public_key = get_string (kf, DAEMON_FILE, "Daemon", "LicensePublicKey");
  daemon->license_file = resolve_path (dir, license_file);
  daemon->license_public_key = resolve_path (dir, public_key);
  daemon->client_users = get_strv (kf, DAEMON_FILE, "Daemon", "ClientUsers");
  daemon->admin_users = get_strv (kf, DAEMON_FILE, "Daemon", "AdminUsers");
  daemon->wipe_retention_days = get_unsigned (kf, DAEMON_FILE, "Daemon", "WipeRetentionDays");
  daemon->event_retention_days = get_unsigned (kf, DAEMON_FILE, "Daemon", "EventRetentionDays");
  daemon->directory_sync_interval =
    get_unsigned (kf, DAEMON_FILE, "Daemon", "DirectorySyncInterval");
  daemon->max_sessions_per_uid = get_unsigned (kf, DAEMON_FILE, "Limits", "MaxSessionsPerUser");
  daemon->max_calls_per_sender =
    get_unsigned (kf, DAEMON_FILE, "Limits", "MaxCallsInFlightPerSender");
  daemon->max_calls_per_uid = get_unsigned (kf, DAEMON_FILE, "Limits", "MaxCallsInFlightPerUser");
  daemon->sign_in_timeout = get_unsigned (kf, DAEMON_FILE, "Limits", "SignInTimeout");
  daemon->sync_timeout = get_unsigned (kf, DAEMON_FILE, "Limits", "DirectorySyncTimeout");
  return g_steal_pointer (&daemon);
}

static void
server_config_free (MamdServerConfig *server)
{
  if (server == NULL)
    return;
  g_free (server->id);
  g_free (server->path);
  g_free (server->name);
  g_free (server->tenant_id);
  g_free (server->client_id);
  g_free (server->auth_service);
  g_free (server->scope);
  g_strfreev (server->allowed_platforms);
  g_clear_pointer (&server->keyfile, g_key_file_unref);
  g_strfreev (server->plugin_groups);
  g_free (server);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdServerConfig, server_config_free)

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static MamdServerConfig *
load_server (Loader *ld, const char *path, const char *id)
{
  g_autoptr(MamdServerConfig) server = g_new0 (MamdServerConfig, 1);
  g_autoptr(GPtrArray) plugin_groups = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GKeyFile) kf = NULL;
  g_auto(GStrv) groups = NULL;
  g_autofree char *scope = NULL;
  guint before = ld->problems->len;

  if (!is_name (id, TRUE))
    add_problem (ld, path, NULL, NULL,
                 "'%s' is not a valid server id: name the file <id>.conf with lowercase "
                 "letters, digits, '-' and '_', starting with a letter or digit", id);

  kf = load_keyfile (ld, path);
  if (kf == NULL)
    return NULL;

  if (!g_key_file_has_group (kf, "Server"))
    add_problem (ld, path, "Server", NULL, "group is missing");
  groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      if (g_str_equal (groups[i], "Server"))
        check_group (ld, path, SERVER_FILE, kf, groups[i]);
      else if (!is_name (groups[i], FALSE))
        add_problem (ld, path, groups[i], NULL,
                     "not a plugin group: plugin group names use lowercase letters, digits, "
                     "'-' and '_'");
      else
        g_ptr_array_add (plugin_groups, g_strdup (groups[i]));
    }
  if (ld->problems->len != before)
    return NULL;

  g_ptr_array_sort (plugin_groups, compare_strings);
  g_ptr_array_add (plugin_groups, NULL);

  server->id = g_strdup (id);
  server->path = g_strdup (path);
  server->name = get_string (kf, SERVER_FILE, "Server", "Name");
  if (server->name == NULL)
    server->name = g_strdup (id);
  server->enable = get_boolean (kf, SERVER_FILE, "Server", "Enable");
  server->tenant_id = get_guid (kf, "Server", "TenantId");
  server->client_id = get_guid (kf, "Server", "ClientId");
  server->auth_service = get_string (kf, SERVER_FILE, "Server", "AuthService");
  if (g_key_file_has_key (kf, "Server", "Scope", NULL))
    {
      scope = get_string (kf, SERVER_FILE, "Server", "Scope");
      server->scope = (scope != NULL && *scope != '\0') ? g_steal_pointer (&scope) : NULL;
    }
  else if (server->client_id != NULL)
    server->scope = g_strdup_printf ("api://%s/login.mattermost", server->client_id);
  server->allowed_platforms = get_strv (kf, SERVER_FILE, "Server", "AllowedPlatforms");
  server->auto_create_users = get_boolean (kf, SERVER_FILE, "Server", "AutoCreateUsers");
  server->keyfile = g_steal_pointer (&kf);
  server->plugin_groups = (char **) g_ptr_array_free (g_steal_pointer (&plugin_groups), FALSE);
  return g_steal_pointer (&server);
}

static gint
compare_servers (gconstpointer a, gconstpointer b)
{
  const MamdServerConfig *sa = *(const MamdServerConfig *const *) a;
  const MamdServerConfig *sb = *(const MamdServerConfig *const *) b;

  return strcmp (sa->id, sb->id);
}

static void
load_servers (Loader *ld, const char *servers_dir, GPtrArray *servers)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) gdir = g_dir_open (servers_dir, 0, &error);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (gdir == NULL)
    {
      add_problem (ld, servers_dir, NULL, NULL, "%s", error->message);
      return;
    }
  while ((name = g_dir_read_name (gdir)) != NULL)
    if (g_str_has_suffix (name, ".conf"))
      g_ptr_array_add (names, g_strdup (name));
  /* sorted, so that problems come out in the same order every time */
  g_ptr_array_sort (names, compare_strings);

  for (guint i = 0; i < names->len; i++)
    {
      const char *file_name = g_ptr_array_index (names, i);
      g_autofree char *id = g_strndup (file_name, strlen (file_name) - strlen (".conf"));
      g_autofree char *path = g_build_filename (servers_dir, file_name, NULL);
      MamdServerConfig *server = load_server (ld, path, id);

      if (server != NULL)
        g_ptr_array_add (servers, server);
    }
  g_ptr_array_sort (servers, compare_servers);
}

static void
problems_to_error (GPtrArray *problems, GError **error)
{
  const char *first = g_ptr_array_index (problems, 0);

  if (problems->len == 1)
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, first);
  else
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG, "%s (and %u more)",
                 first, problems->len - 1);
}

MamdConfig *
mamd_config_load (const char *config_dir, GPtrArray *problems, GError **error)
{
  g_autoptr(GPtrArray) own_problems = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(MamdConfig) config = g_new0 (MamdConfig, 1);
  g_autofree char *dir = NULL;
  g_autofree char *daemon_path = NULL;
  g_autofree char *servers_dir = NULL;
  gboolean has_daemon, has_servers;
  Loader ld = { own_problems };

  g_return_val_if_fail (config_dir != NULL, NULL);

  dir = g_canonicalize_filename (config_dir, NULL);
  daemon_path = g_build_filename (dir, "mamd.conf", NULL);
  servers_dir = g_build_filename (dir, "servers.d", NULL);
  config->dir = g_strdup (dir);
  config->servers = g_ptr_array_new_with_free_func ((GDestroyNotify) server_config_free);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    g_ptr_array_add (own_problems,
                     g_strdup_printf ("no configuration in %s: the directory does not exist", dir));
  else
    {
      /* a dangling symbolic link is configuration that cannot be read,
       * not an absent file: loading it names the problem */
      has_daemon = g_file_test (daemon_path, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK);
      has_servers = g_file_test (servers_dir, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK);
      if (!has_daemon && !has_servers)
        g_ptr_array_add (own_problems,
                         g_strdup_printf ("no configuration in %s: neither mamd.conf nor "
                                          "servers.d/ exists", dir));
      else
        {
          config->daemon = load_daemon (&ld, dir, has_daemon ? daemon_path : NULL);
          if (has_servers)
            load_servers (&ld, servers_dir, config->servers);
        }
    }

  if (own_problems->len > 0)
    {
      problems_to_error (own_problems, error);
      if (problems != NULL)
        for (guint i = 0; i < own_problems->len; i++)
          g_ptr_array_add (problems, g_strdup (g_ptr_array_index (own_problems, i)));
      return NULL;
    }
  return g_steal_pointer (&config);
}

void
mamd_config_free (MamdConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->dir);
  daemon_config_free (config->daemon);
  g_clear_pointer (&config->servers, g_ptr_array_unref);
  g_free (config);
}

const MamdServerConfig *
mamd_config_lookup_server (const MamdConfig *config, const char *id)
{
  g_return_val_if_fail (config != NULL, NULL);

  if (id == NULL)
    return NULL;
  for (guint i = 0; i < config->servers->len; i++)
    {
      const MamdServerConfig *server = g_ptr_array_index (config->servers, i);
      if (g_str_equal (server->id, id))
        return server;
    }
  return NULL;
}

static gboolean
strv_equal0 (char **a, char **b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_strv_equal ((const char *const *) a, (const char *const *) b);
}

gboolean
mamd_server_config_equal (const MamdServerConfig *a, const MamdServerConfig *b)
{
  g_autofree char *data_a = NULL;
  g_autofree char *data_b = NULL;

  if (a == NULL || b == NULL)
    return a == b;
  if (g_strcmp0 (a->id, b->id) != 0 || g_strcmp0 (a->path, b->path) != 0 ||
      g_strcmp0 (a->name, b->name) != 0 || a->enable != b->enable ||
      g_strcmp0 (a->tenant_id, b->tenant_id) != 0 ||
      g_strcmp0 (a->client_id, b->client_id) != 0 ||
      g_strcmp0 (a->auth_service, b->auth_service) != 0 ||
      g_strcmp0 (a->scope, b->scope) != 0 ||
      !strv_equal0 (a->allowed_platforms, b->allowed_platforms) ||
      a->auto_create_users != b->auto_create_users ||
      !strv_equal0 (a->plugin_groups, b->plugin_groups))
    return FALSE;

  /* plugin groups are opaque here: compare their text */
  if (a->keyfile == NULL || b->keyfile == NULL)
    return a->keyfile == b->keyfile;
  data_a = g_key_file_to_data (a->keyfile, NULL, NULL);
  data_b = g_key_file_to_data (b->keyfile, NULL, NULL);
  return g_strcmp0 (data_a, data_b) == 0;
}
