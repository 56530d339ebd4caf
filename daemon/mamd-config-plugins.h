/*
 * The plugin groups of the server files, checked by their plugins: the one
 * place where mamd (start, reload) and `mamctl check` load them, so that a
 * configuration mamd refuses never passes the check.
 */
#pragma once

#include "mamd-config.h"
#include "mamd-plugin-loader.h"

G_BEGIN_DECLS

/* Loads the plugin configs of @server with @plugins, as mamd does: every
 * plugin group through its plugin's load_config, and the AuthService
 * without a group of its own too (its defaults are checked). Each config is
 * inserted into @configs (interned method name -> GObject, the table owns
 * the reference); a method already there is left alone.
 *
 * Problems that make mamd refuse the configuration, one line each naming
 * the file, group and key ("<file>: [<group>]: no plugin provides method
 * '<group>'", "<file>: <plugin>: [<group>] <key>: <message>"), are appended
 * to @problems.
 *
 * A group or AuthService whose plugin is disabled (it failed to load or to
 * start), and an AuthService no plugin provides, do not make mamd refuse:
 * those servers are loaded without that config. With @unusable NULL, mamd's
 * choice, such a group is logged as a warning (the AuthService shows in the
 * server's MAM gate instead); otherwise a line for each is appended to
 * @unusable and nothing is logged.
 *
 * A group naming a method no module provides is such a problem, except
 * while some module failed before it could name its method (an ABI bump
 * leaves a plugin not yet rebuilt): the group may be that module's, so it
 * is skipped like a disabled plugin's, and its line is also returned. The
 * server must then refuse every sign-in, since the group may as well be a
 * misspelt one whose settings would otherwise fall back to defaults.
 * Returns NULL when no group was skipped that way (free the line). */
char *mamd_config_plugins_load (const MamdServerConfig *server, MamdPluginLoader *plugins,
                                GHashTable *configs, GPtrArray *problems, GPtrArray *unusable);

/* mamd_config_plugins_load() for every server of @config, the configs
 * thrown away (never activated). Returns TRUE when no line was appended to
 * @problems, i.e. mamd would accept the plugin groups. */
gboolean mamd_config_plugins_check (const MamdConfig *config, MamdPluginLoader *plugins,
                                    GPtrArray *problems, GPtrArray *unusable);

G_END_DECLS
