/*
 * mamd-plugin-loader.c: loads plugin modules through the installed ABI.
 *
 * Every way a module can be broken ends as a disabled entry with a reason
 * that `mamctl plugins` shows; the daemon keeps running with the others.
 * Used from the main thread only.
 */
#include "config.h"

#include <string.h>

#include "mamd-plugin-loader.h"

struct _MamdPluginLoader {
  GObject parent_instance;
  GPtrArray *entries; /* MamdPluginEntry, load order */
};

G_DEFINE_FINAL_TYPE (MamdPluginLoader, mamd_plugin_loader, G_TYPE_OBJECT)

#define METHOD_MAX_LEN 64

static void
entry_free (MamdPluginEntry *entry)
{
  g_free (entry->path);
  g_free (entry->module_name);
  g_free (entry->version);
  g_free (entry->method);
  g_clear_object (&entry->plugin);
  g_free (entry->disabled_reason);
  g_free (entry);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MamdPluginEntry, entry_free)

static void
mamd_plugin_loader_finalize (GObject *object)
{
  MamdPluginLoader *self = MAMD_PLUGIN_LOADER (object);

  g_ptr_array_unref (self->entries);
  G_OBJECT_CLASS (mamd_plugin_loader_parent_class)->finalize (object);
}

static void
mamd_plugin_loader_class_init (MamdPluginLoaderClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = mamd_plugin_loader_finalize;
}

static void
mamd_plugin_loader_init (MamdPluginLoader *self)
{
  self->entries = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
}

MamdPluginLoader *
mamd_plugin_loader_new (void)
{
  return g_object_new (MAMD_TYPE_PLUGIN_LOADER, NULL);
}

static gboolean
method_name_valid (const char *method)
{
  gsize len;

  if (method == NULL)
    return FALSE;
  len = strlen (method);
  if (len == 0 || len > METHOD_MAX_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = method[i];

      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        return FALSE;
    }
  return TRUE;
}

static MamdPluginEntry *
find_enabled (MamdPluginLoader *self, const char *method)
{
  for (guint i = 0; i < self->entries->len; i++)
    {
      MamdPluginEntry *entry = g_ptr_array_index (self->entries, i);

      if (entry->plugin != NULL && g_strcmp0 (entry->method, method) == 0)
        return entry;
    }
  return NULL;
}

/* The checks shared by modules and in-process plugins. */
static gboolean
check_plugin (MamdPluginLoader *self, MamdPlugin *plugin, GError **error)
{
  MamdPluginClass *klass = MAMD_PLUGIN_GET_CLASS (plugin);
  MamdPluginEntry *taken;

  if (!method_name_valid (klass->method))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                           "the class method name must be 1 to 64 characters "
                           "of [a-z0-9_-]: fix the plugin's class_init");
      return FALSE;
    }

  if (klass->description != NULL && !g_utf8_validate (klass->description, -1, NULL))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                           "the class description is not UTF-8: fix the plugin's class_init");
      return FALSE;
    }

  taken = find_enabled (self, klass->method);
  if (taken != NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                   "method '%s' already provided by %s", klass->method,
                   taken->path != NULL ? taken->path : taken->module_name);
      return FALSE;
    }

  if (klass->load_config == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                           "the plugin does not implement load_config, which "
                           "every plugin needs");
      return FALSE;
    }

  if ((klass->capabilities & MAMD_PLUGIN_CAP_SIGN_IN) &&
      (klass->authenticate_async == NULL || klass->authenticate_finish == NULL))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                           "the plugin claims CAP_SIGN_IN but does not implement "
                           "authenticate_async and authenticate_finish");
      return FALSE;
    }

  if ((klass->capabilities & MAMD_PLUGIN_CAP_DIRECTORY_SYNC) &&
      (klass->sync_async == NULL || klass->sync_finish == NULL))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                           "the plugin claims CAP_DIRECTORY_SYNC but does not "
                           "implement sync_async and sync_finish");
      return FALSE;
    }

  return TRUE;
}

static void
entry_set_plugin (MamdPluginEntry *entry, MamdPlugin *plugin)
{
  g_free (entry->method);
  entry->method = g_strdup (mamd_plugin_get_method (plugin));
  entry->capabilities = mamd_plugin_get_capabilities (plugin);
  g_set_object (&entry->plugin, plugin);
}

/* Opens the module and creates the plugin; fills in what the module said
 * about itself even when it fails, so the disabled entry is informative.
 * *@type_registered tells whether the module has registered GTypes, after
 * which it can never be unloaded. */
static MamdPlugin *
instantiate_module (GModule *module, MamdPluginEntry *entry,
                    gboolean *type_registered, char **reason)
{
  gpointer symbol = NULL;
  const MamdPluginModuleInfo *info;
  MamdPluginQueryFunc query;
  GType type;

  if (!g_module_symbol (module, MAMD_PLUGIN_QUERY_SYMBOL, &symbol) || symbol == NULL)
    {
      *reason = g_strdup ("no " MAMD_PLUGIN_QUERY_SYMBOL " symbol: not a mamd "
                          "plugin (use MAMD_PLUGIN_DEFINE)");
      return NULL;
    }
  query = (MamdPluginQueryFunc) symbol;

  info = query ();
  if (info == NULL)
    {
      *reason = g_strdup ("the query function returned no module information");
      return NULL;
    }

  /* Only abi_version is common to every ABI: read nothing else before it
   * has matched. */
  if (info->abi_version != MAMD_PLUGIN_ABI_VERSION)
    {
      *reason = g_strdup_printf ("built for plugin ABI %u, mamd provides %u: "
                                 "rebuild the plugin",
                                 (guint) info->abi_version, MAMD_PLUGIN_ABI_VERSION);
      return NULL;
    }

  if (info->name != NULL)
    {
      g_free (entry->module_name);
      entry->module_name = g_utf8_make_valid (info->name, -1);
    }
  if (info->version != NULL)
    entry->version = g_utf8_make_valid (info->version, -1);

  if (info->get_type == NULL)
    {
      *reason = g_strdup ("the module information has no get_type function");
      return NULL;
    }

  *type_registered = TRUE;
  type = info->get_type ();
  if (!g_type_is_a (type, MAMD_TYPE_PLUGIN))
    {
      const char *name = type != G_TYPE_INVALID ? g_type_name (type) : NULL;

      *reason = g_strdup_printf ("type %s is not a subclass of MamdPlugin",
                                 name != NULL ? name : "(invalid)");
      return NULL;
    }
  if (G_TYPE_IS_ABSTRACT (type))
    {
      *reason = g_strdup_printf ("type %s is abstract: get_type must return "
                                 "the concrete plugin class", g_type_name (type));
      return NULL;
    }

  return g_object_new (type, NULL);
}

const MamdPluginEntry *
mamd_plugin_loader_load_module (MamdPluginLoader *self, const char *path)
{
  g_autoptr(MamdPluginEntry) entry = g_new0 (MamdPluginEntry, 1);
  g_autoptr(MamdPlugin) plugin = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  gboolean type_registered = FALSE;
  GModule *module;
  MamdPluginEntry *result;

  g_return_val_if_fail (MAMD_IS_PLUGIN_LOADER (self), NULL);
  g_return_val_if_fail (path != NULL, NULL);

  entry->path = g_strdup (path);
  entry->module_name = g_path_get_basename (path);

  /* every symbol bound now: a module that needs one mamd lacks is refused
   * here, instead of killing mamd the first time it calls it; and no FIFO
   * may hold the loader up */
  if (g_file_test (path, G_FILE_TEST_EXISTS) && !g_file_test (path, G_FILE_TEST_IS_REGULAR))
    module = NULL;
  else
    module = g_module_open (path, G_MODULE_BIND_LOCAL);
  if (module == NULL && g_file_test (path, G_FILE_TEST_EXISTS) &&
      !g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      reason = g_strdup ("cannot open module: not a regular file");
    }
  else if (module == NULL)
    {
      reason = g_strdup_printf ("cannot open module: %s", g_module_error ());
    }
  else
    {
      plugin = instantiate_module (module, entry, &type_registered, &reason);
      if (plugin != NULL)
        {
          /* The class data is readable only now; keep it even if the
           * checks fail, the entry then says which method was refused. */
          entry->method = g_strdup (MAMD_PLUGIN_GET_CLASS (plugin)->method);
          entry->capabilities = MAMD_PLUGIN_GET_CLASS (plugin)->capabilities;
          if (!check_plugin (self, plugin, &error))
            {
              reason = g_strdup (error->message);
              g_clear_object (&plugin);
            }
        }

      /* GTypes cannot be unregistered: once get_type ran, the code must
       * stay mapped whatever happened next. */
      if (plugin != NULL || type_registered)
        g_module_make_resident (module);
      else
        g_module_close (module);
    }

  if (plugin != NULL)
    {
      entry_set_plugin (entry, plugin);
      g_debug ("loaded plugin %s: method %s, version %s", path, entry->method,
               entry->version != NULL ? entry->version : "unknown");
    }
  else
    {
      if (!method_name_valid (entry->method))
        g_clear_pointer (&entry->method, g_free);
      entry->disabled_reason = g_steal_pointer (&reason);
      g_warning ("skipping plugin %s: %s", path, entry->disabled_reason);
    }

  result = g_steal_pointer (&entry);
  g_ptr_array_add (self->entries, result);
  return result;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

gboolean
mamd_plugin_loader_load_dir (MamdPluginLoader *self, const char *dir, GError **error)
{
  g_autoptr(GDir) gdir = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_return_val_if_fail (MAMD_IS_PLUGIN_LOADER (self), FALSE);
  g_return_val_if_fail (dir != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  gdir = g_dir_open (dir, 0, &local_error);
  if (gdir == NULL)
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_message ("plugin directory %s does not exist: no plugins loaded", dir);
          return TRUE;
        }
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE,
                   "cannot read plugin directory: %s; check that it is a "
                   "directory readable by the mamd user", local_error->message);
      return FALSE;
    }

  while ((name = g_dir_read_name (gdir)) != NULL)
    {
      g_autofree char *path = NULL;

      if (!g_str_has_suffix (name, ".so"))
        continue;
      path = g_build_filename (dir, name, NULL);
      /* No recursion: a directory named "x.so" is not a module. */
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        continue;
      g_ptr_array_add (names, g_steal_pointer (&path));
    }

  /* Sorted so that the first of two modules with the same method wins the
   * same way on every start. */
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    mamd_plugin_loader_load_module (self, g_ptr_array_index (names, i));

  return TRUE;
}

gboolean
mamd_plugin_loader_add (MamdPluginLoader *self, MamdPlugin *plugin, GError **error)
{
  g_autoptr(MamdPluginEntry) entry = NULL;

  g_return_val_if_fail (MAMD_IS_PLUGIN_LOADER (self), FALSE);
  g_return_val_if_fail (MAMD_IS_PLUGIN (plugin), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_plugin (self, plugin, error))
    {
      g_prefix_error (error, "cannot add plugin %s: ", G_OBJECT_TYPE_NAME (plugin));
      return FALSE;
    }

  entry = g_new0 (MamdPluginEntry, 1);
  entry->module_name = g_strdup (G_OBJECT_TYPE_NAME (plugin));
  entry_set_plugin (entry, plugin);
  g_ptr_array_add (self->entries, g_steal_pointer (&entry));
  return TRUE;
}

GPtrArray *
mamd_plugin_loader_get_entries (MamdPluginLoader *self)
{
  g_return_val_if_fail (MAMD_IS_PLUGIN_LOADER (self), NULL);
  return self->entries;
}

MamdPlugin *
mamd_plugin_loader_lookup (MamdPluginLoader *self, const char *method)
{
  MamdPluginEntry *entry;

  g_return_val_if_fail (MAMD_IS_PLUGIN_LOADER (self), NULL);

  if (method == NULL)
    return NULL;
  entry = find_enabled (self, method);
  return entry != NULL ? entry->plugin : NULL;
}

const MamdPluginEntry *
mamd_plugin_loader_lookup_entry (MamdPluginLoader *self, const char *method)
{
  MamdPluginEntry *entry;

  g_return_val_if_fail (MAMD_IS_PLUGIN_LOADER (self), NULL);

  if (method == NULL)
    return NULL;
  entry = find_enabled (self, method);
  if (entry != NULL)
    return entry;
  /* Otherwise the first refused entry for it, so the reason can be shown. */
  for (guint i = 0; i < self->entries->len; i++)
    {
      entry = g_ptr_array_index (self->entries, i);
      if (g_strcmp0 (entry->method, method) == 0)
        return entry;
    }
  return NULL;
}
