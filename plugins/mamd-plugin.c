#include "mamd-plugin.h"
