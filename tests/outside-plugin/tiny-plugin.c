/*
 * tiny-plugin.c: the smallest useful plugin, built the way an outside
 * author builds one: only <mamd-plugin.h>, compiled with
 *   cc -shared -fPIC tiny-plugin.c $(pkg-config --cflags --libs mamd-plugin)
 * Method "tiny", signs in by trusting {"object-id", "tenant-id"}.
 */
#include <mamd-plugin.h>

#define TINY_TYPE_PLUGIN (tiny_plugin_get_type ())
G_DECLARE_FINAL_TYPE (TinyPlugin, tiny_plugin, TINY, PLUGIN, MamdPlugin)

struct _TinyPlugin {
  MamdPlugin parent_instance;
};

G_DEFINE_FINAL_TYPE (TinyPlugin, tiny_plugin, MAMD_TYPE_PLUGIN)

static GObject *
tiny_load_config (MamdPlugin *plugin, const char *server_id, const char *tenant_id,
                  const char *client_id, GKeyFile *keyfile, const char *group,
                  GError **error)
{
  /* No settings: any object will do as the config handle. */
  return g_object_new (G_TYPE_OBJECT, NULL);
}

static void
tiny_authenticate_async (MamdPlugin *plugin, GObject *config, GVariant *credential,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (plugin, cancellable, callback, user_data);
  const char *object_id = NULL;
  const char *tenant_id = NULL;
  MamdIdentity *identity;
  GError *error = NULL;

  g_variant_lookup (credential, "object-id", "&s", &object_id);
  g_variant_lookup (credential, "tenant-id", "&s", &tenant_id);
  identity = mamd_identity_new (object_id, tenant_id, NULL, "object-id", "tiny", &error);
  if (identity == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, identity, (GDestroyNotify) mamd_identity_free);
}

static MamdIdentity *
tiny_authenticate_finish (MamdPlugin *plugin, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
tiny_plugin_class_init (TinyPluginClass *klass)
{
  MamdPluginClass *plugin_class = MAMD_PLUGIN_CLASS (klass);

  plugin_class->method = "tiny";
  plugin_class->description = "tiny out-of-tree example plugin";
  plugin_class->capabilities = MAMD_PLUGIN_CAP_SIGN_IN;
  plugin_class->load_config = tiny_load_config;
  plugin_class->authenticate_async = tiny_authenticate_async;
  plugin_class->authenticate_finish = tiny_authenticate_finish;
}

static void
tiny_plugin_init (TinyPlugin *self)
{
}

MAMD_PLUGIN_DEFINE ("tiny", "0.1", tiny_plugin_get_type)
