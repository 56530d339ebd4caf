/* A complete plugin whose method duplicates the test plugin's "test". */
#include <mamd-plugin.h>

#define BAD_TYPE_DUP_PLUGIN (bad_dup_plugin_get_type ())
G_DECLARE_FINAL_TYPE (BadDupPlugin, bad_dup_plugin, BAD, DUP_PLUGIN, MamdPlugin)

struct _BadDupPlugin {
  MamdPlugin parent_instance;
};

G_DEFINE_FINAL_TYPE (BadDupPlugin, bad_dup_plugin, MAMD_TYPE_PLUGIN)

static GObject *
bad_dup_load_config (MamdPlugin *plugin, const char *server_id, const char *tenant_id,
                     const char *client_id, GKeyFile *keyfile, const char *group,
                     GError **error)
{
  return g_object_new (G_TYPE_OBJECT, NULL);
}

static void
bad_dup_plugin_class_init (BadDupPluginClass *klass)
{
  MamdPluginClass *plugin_class = MAMD_PLUGIN_CLASS (klass);

  plugin_class->method = "test";
  plugin_class->description = "duplicate of the test plugin's method";
  plugin_class->load_config = bad_dup_load_config;
}

static void
bad_dup_plugin_init (BadDupPlugin *self)
{
}

MAMD_PLUGIN_DEFINE ("bad-dup", "1.0", bad_dup_plugin_get_type)
