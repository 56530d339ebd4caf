/* A module whose get_type returns a type that is not a MamdPlugin. */
#include <mamd-plugin.h>

static GType
bad_type_get_type (void)
{
  return G_TYPE_OBJECT;
}

MAMD_PLUGIN_DEFINE ("bad-type", "1.0", bad_type_get_type)
