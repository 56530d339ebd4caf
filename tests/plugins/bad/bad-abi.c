/* A module built for a future plugin ABI: must be skipped with
 * "built for plugin ABI 99". Only abi_version may be read from it. */
#include <mamd-plugin.h>

G_MODULE_EXPORT const MamdPluginModuleInfo *mamd_plugin_module_query (void);

G_MODULE_EXPORT const MamdPluginModuleInfo *
mamd_plugin_module_query (void)
{
  static const MamdPluginModuleInfo info = { 99, "bad-abi", "1.0", NULL };

  return &info;
}
