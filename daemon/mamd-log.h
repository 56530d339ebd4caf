#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Installs mamd's log writer (see mamd-log.c); call once, first thing. */
void mamd_log_init (void);

G_END_DECLS
