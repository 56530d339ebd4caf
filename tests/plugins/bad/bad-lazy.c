/* A module that needs a function this mamd lacks (as one built against a
 * newer mamd of the same ABI might): it must be refused when it is opened,
 * not crash mamd when the function is first called. */
#include <mamd-plugin.h>

GType mamd_symbol_from_the_future (void);

G_MODULE_EXPORT const MamdPluginModuleInfo *mamd_plugin_module_query (void);

G_MODULE_EXPORT const MamdPluginModuleInfo *
mamd_plugin_module_query (void)
{
  static const MamdPluginModuleInfo info = {
    MAMD_PLUGIN_ABI_VERSION, "bad-lazy", "1.0", mamd_symbol_from_the_future
  };

  return &info;
}
