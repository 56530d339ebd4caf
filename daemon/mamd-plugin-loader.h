/*
 * MamdPluginLoader: loads every plugin module of a directory through the
 * installed ABI. A module that is broken or built for another ABI version
 * is skipped with a log line and kept listed as disabled with the reason.
 */
#pragma once

#include "mamd-plugin.h"

G_BEGIN_DECLS

typedef struct {
  char *path;                      /* module file, NULL for plugins added in-process */
  char *module_name;               /* from the query function, or the file name */
  char *version;                   /* plugin version, may be NULL */
  char *method;                    /* NULL when the module could not say */
  MamdPluginCapabilities capabilities;
  MamdPlugin *plugin;              /* NULL when disabled */
  char *disabled_reason;           /* NULL when enabled */
} MamdPluginEntry;

#define MAMD_TYPE_PLUGIN_LOADER (mamd_plugin_loader_get_type ())
G_DECLARE_FINAL_TYPE (MamdPluginLoader, mamd_plugin_loader, MAMD, PLUGIN_LOADER, GObject)

MamdPluginLoader *mamd_plugin_loader_new (void);
/* Loads every "*.so" in @dir. A missing directory is not an error (no
 * plugins, logged); an unreadable one is. Modules are made resident. */
gboolean mamd_plugin_loader_load_dir (MamdPluginLoader *self, const char *dir, GError **error);
/* Loads one module file; failures become a disabled entry, never an error. */
const MamdPluginEntry *mamd_plugin_loader_load_module (MamdPluginLoader *self, const char *path);
/* Registers an in-process plugin instance (tests, bench). */
gboolean mamd_plugin_loader_add (MamdPluginLoader *self, MamdPlugin *plugin, GError **error);
/* Entries in load order (MamdPluginEntry, owned by the loader). */
GPtrArray *mamd_plugin_loader_get_entries (MamdPluginLoader *self);
/* The enabled plugin for @method, or NULL. */
MamdPlugin *mamd_plugin_loader_lookup (MamdPluginLoader *self, const char *method);
/* The entry for @method, enabled or not, or NULL. */
const MamdPluginEntry *mamd_plugin_loader_lookup_entry (MamdPluginLoader *self, const char *method);

G_END_DECLS
