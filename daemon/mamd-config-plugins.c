/*
 * mamd-config-plugins.c: plugin groups checked by their plugins, for the
 * engine (start, reload) and `mamctl check` alike.
 */
#include "config.h"

#include "mamd-config-plugins.h"

/* The modules refused before they could name their method (another ABI
 * version, a missing symbol), "; modules that could not say ..." or "". One
 * of them may be the plugin a configuration names: after an upgrade that
 * bumps the ABI, a plugin not yet rebuilt. */
static char *
nameless_modules (MamdPluginLoader *plugins)
{
  GPtrArray *entries = mamd_plugin_loader_get_entries (plugins);
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < entries->len; i++)
    {
      const MamdPluginEntry *entry = g_ptr_array_index (entries, i);

      if (entry->method != NULL)
        continue;
      g_string_append (text, text->len == 0 ? "; modules that could not say which method they "
                                              "provide: "
                                            : ", ");
      g_string_append_printf (text, "%s (%s)",
                              entry->path != NULL ? entry->path : entry->module_name,
                              entry->disabled_reason != NULL ? entry->disabled_reason : "disabled");
    }
  return g_string_free (text, FALSE);
}

/* @nameless: from nameless_modules () when there is no @entry. Returns a
 * copy of the line of a group no module provides, else NULL. */
static char *
add_unusable (const MamdServerConfig *server, const char *method, gboolean from_group,
              const MamdPluginEntry *entry, const char *nameless, GPtrArray *unusable)
{
  const char *reason =
    entry != NULL && entry->disabled_reason != NULL ? entry->disabled_reason : "";
  g_autofree char *line = NULL;
  char *unknown = NULL;

  if (from_group && entry != NULL)
    line = g_strdup_printf ("%s: [%s]: skipped, the plugin for method '%s' is disabled: %s",
                            server->path, method, method, reason);
  else if (from_group)
    line = g_strdup_printf ("%s: [%s]: skipped, no plugin provides method '%s'%s",
                            server->path, method, method, nameless);
  else if (entry != NULL)
    line = g_strdup_printf ("%s: [Server] AuthService: the plugin for method '%s' is disabled: "
                            "%s",
                            server->path, method, reason);
  else
    line = g_strdup_printf ("%s: [Server] AuthService: no plugin provides method '%s'%s",
                            server->path, method, nameless);

  if (from_group && entry == NULL)
    unknown = g_strdup (line);
  if (unusable != NULL)
    g_ptr_array_add (unusable, g_steal_pointer (&line));
  else if (from_group)
    g_warning ("%s; the server refuses every sign-in until the group is fixed or its plugin "
               "loads", line);
  /* else: the server's MAM gate says why its AuthService is unusable */
  return unknown;
}

/* Returns add_unusable ()'s line of a group no module provides, else NULL. */
static char *
load_one (const MamdServerConfig *server, MamdPluginLoader *plugins, const char *method,
          gboolean from_group, GHashTable *configs, GPtrArray *problems, GPtrArray *unusable)
{
  const MamdPluginEntry *entry = mamd_plugin_loader_lookup_entry (plugins, method);
  g_autofree char *nameless = entry == NULL ? nameless_modules (plugins) : NULL;
  g_autoptr(GError) error = NULL;
  GObject *object;

  if (g_hash_table_contains (configs, g_intern_string (method)))
    return NULL;
  /* a misspelt group is an error, unless a module that could not say its
   * method may be the one it configures */
  if (entry == NULL && from_group && nameless[0] == '\0')
    {
      g_ptr_array_add (problems, g_strdup_printf ("%s: [%s]: no plugin provides method '%s'",
                                                  server->path, method, method));
      return NULL;
    }
  if (entry == NULL || entry->plugin == NULL)
    return add_unusable (server, method, from_group, entry, nameless, unusable);
  object = mamd_plugin_load_config (entry->plugin, server->id, server->tenant_id, server->client_id,
                                    server->keyfile, method, &error);
  if (object == NULL)
    {
      g_ptr_array_add (problems, g_strdup_printf ("%s: %s", server->path, error->message));
      return NULL;
    }
  g_hash_table_insert (configs, (gpointer) g_intern_string (method), object);
  return NULL;
}

char *
mamd_config_plugins_load (const MamdServerConfig *server, MamdPluginLoader *plugins,
                          GHashTable *configs, GPtrArray *problems, GPtrArray *unusable)
{
  const char *const *groups;
  char *unknown = NULL;

  g_return_val_if_fail (server != NULL, NULL);
  g_return_val_if_fail (MAMD_IS_PLUGIN_LOADER (plugins), NULL);
  g_return_val_if_fail (configs != NULL, NULL);
  g_return_val_if_fail (problems != NULL, NULL);

  groups = (const char *const *) server->plugin_groups;
  for (guint i = 0; groups != NULL && groups[i] != NULL; i++)
    {
      char *line = load_one (server, plugins, groups[i], TRUE, configs, problems, unusable);

      if (unknown == NULL)
        unknown = line;
      else
        g_free (line);
    }
  /* the AuthService without a group of its own still gets a config (its
   * defaults); one with a group was loaded, or reported, just above */
  if (server->auth_service != NULL
      && (groups == NULL || !g_strv_contains (groups, server->auth_service)))
    g_free (load_one (server, plugins, server->auth_service, FALSE, configs, problems, unusable));
  return unknown;
}

gboolean
mamd_config_plugins_check (const MamdConfig *config, MamdPluginLoader *plugins, GPtrArray *problems,
                           GPtrArray *unusable)
{
  guint before;

  g_return_val_if_fail (config != NULL, FALSE);
  g_return_val_if_fail (problems != NULL, FALSE);

  before = problems->len;
  for (guint i = 0; i < config->servers->len; i++)
    {
      const MamdServerConfig *server = g_ptr_array_index (config->servers, i);
      g_autoptr(GHashTable) configs =
        g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_object_unref);

      g_free (mamd_config_plugins_load (server, plugins, configs, problems, unusable));
    }
  return problems->len == before;
}
