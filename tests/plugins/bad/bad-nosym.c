/* A shared module without the mamd query symbol: must be skipped. */
#include <gmodule.h>

G_MODULE_EXPORT int bad_nosym_answer (void);

G_MODULE_EXPORT int
bad_nosym_answer (void)
{
  return 42;
}
