/*
 * mamd-plugin-probe: loads one plugin module with the daemon's loader,
 * prints what the loader made of it and authenticates a sample credential
 * {"object-id", "tenant-id"}. Exits 0 only when the plugin loaded and
 * returned the sample identity. Used by the out-of-tree plugin test.
 */
#include "config.h"

#include <stdio.h>

#include "mamd-plugin-loader.h"

#define SAMPLE_OBJECT_ID "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
#define SAMPLE_TENANT_ID "{72F988BF-86F1-41AF-91AB-2D7CD011DB47}"

typedef struct {
  GMainLoop *loop;
  MamdIdentity *identity;
  GError *error;
} ProbeData;

static void
authenticate_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ProbeData *data = user_data;

  data->identity = mamd_plugin_authenticate_finish (MAMD_PLUGIN (source), result,
                                                    &data->error);
  g_main_loop_quit (data->loop);
}

static gboolean
probe_authenticate (MamdPlugin *plugin)
{
  g_autoptr(GKeyFile) keyfile = g_key_file_new ();
  g_autoptr(GObject) config = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr(GVariantDict) dict = g_variant_dict_new (NULL);
  g_autofree char *want_object = NULL;
  g_autofree char *want_tenant = NULL;
  ProbeData data = { loop, NULL, NULL };
  gboolean ok;

  config = mamd_plugin_load_config (plugin, "probe", SAMPLE_TENANT_ID, NULL, keyfile,
                                    mamd_plugin_get_method (plugin), &error);
  if (config == NULL)
    {
      g_printerr ("load_config failed: %s\n", error->message);
      return FALSE;
    }

  g_variant_dict_insert (dict, "object-id", "s", SAMPLE_OBJECT_ID);
  g_variant_dict_insert (dict, "tenant-id", "s", SAMPLE_TENANT_ID);
  mamd_plugin_authenticate_async (plugin, config, g_variant_dict_end (dict), NULL,
                                  authenticate_cb, &data);
  g_main_loop_run (loop);

  if (data.identity == NULL)
    {
      g_printerr ("authenticate failed: %s\n", data.error->message);
      g_clear_error (&data.error);
      return FALSE;
    }

  want_object = g_ascii_strdown (SAMPLE_OBJECT_ID, -1);
  want_tenant = mamd_guid_canonicalize (SAMPLE_TENANT_ID, "tenant", NULL);
  printf ("identity: %s tenant %s (%s from %s)\n", data.identity->object_id,
          data.identity->tenant_id,
          data.identity->id_attribute != NULL ? data.identity->id_attribute : "-",
          data.identity->id_source != NULL ? data.identity->id_source : "-");
  ok = g_strcmp0 (data.identity->object_id, want_object) == 0 &&
       g_strcmp0 (data.identity->tenant_id, want_tenant) == 0;
  mamd_identity_free (data.identity);
  if (!ok)
    g_printerr ("authenticate returned another identity than the sample\n");
  return ok;
}

int
main (int argc, char **argv)
{
  g_autoptr(MamdPluginLoader) loader = NULL;
  const MamdPluginEntry *entry;

  if (argc != 2)
    {
      g_printerr ("usage: %s MODULE.so\n", argv[0]);
      return 2;
    }

  loader = mamd_plugin_loader_new ();
  entry = mamd_plugin_loader_load_module (loader, argv[1]);

  printf ("module: %s\n", entry->module_name);
  printf ("version: %s\n", entry->version != NULL ? entry->version : "-");
  printf ("method: %s\n", entry->method != NULL ? entry->method : "-");
  printf ("capabilities: 0x%x\n", (guint) entry->capabilities);
  printf ("enabled: %s\n", entry->plugin != NULL ? "yes" : "no");
  printf ("reason: %s\n", entry->disabled_reason != NULL ? entry->disabled_reason : "-");

  if (entry->plugin == NULL)
    return 1;
  if (!(entry->capabilities & MAMD_PLUGIN_CAP_SIGN_IN))
    {
      g_printerr ("the plugin cannot sign in: nothing to authenticate with\n");
      return 1;
    }
  if (!probe_authenticate (entry->plugin))
    return 1;
  printf ("authenticated: yes\n");
  return 0;
}
