/*
 * test-plugin-loader.c: the plugin loader against real modules: the test
 * plugin, broken modules in tests/plugins/bad/ and in-process plugins.
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mamd-plugin-loader.h"

static char *
build_path (const char *first, ...) G_GNUC_NULL_TERMINATED;

static char *
build_path (const char *first, ...)
{
  const char *root = g_getenv ("MAMD_BUILD_ROOT");
  g_autoptr(GPtrArray) parts = g_ptr_array_new ();
  va_list args;

  g_assert_nonnull (root);
  g_ptr_array_add (parts, (gpointer) root);
  va_start (args, first);
  for (const char *part = first; part != NULL; part = va_arg (args, const char *))
    g_ptr_array_add (parts, (gpointer) part);
  va_end (args);
  g_ptr_array_add (parts, NULL);
  return g_build_filenamev ((char **) parts->pdata);
}

/* ---- in-process plugins, one GType per shape ---- */

typedef struct {
  const char *type_name;
  const char *method;
  MamdPluginCapabilities capabilities;
  gboolean with_config;
  gboolean with_auth;
  gboolean with_sync;
  const char *description; /* NULL: "in-process test plugin" */
} PluginShape;

static GObject *
shape_load_config (MamdPlugin *self, const char *server_id, const char *tenant_id,
                   const char *client_id, GKeyFile *keyfile, const char *group,
                   GError **error)
{
  return g_object_new (G_TYPE_OBJECT, NULL);
}

static void
shape_authenticate_async (MamdPlugin *self, GObject *config, GVariant *credential,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_return_new_error (task, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN, "never valid");
}

static MamdIdentity *
shape_authenticate_finish (MamdPlugin *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
shape_sync_async (MamdPlugin *self, GObject *config, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_return_pointer (task, g_ptr_array_new (), (GDestroyNotify) g_ptr_array_unref);
}

static GPtrArray *
shape_sync_finish (MamdPlugin *self, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
shape_class_init (gpointer klass, gpointer class_data)
{
  MamdPluginClass *plugin_class = klass;
  const PluginShape *shape = class_data;

  plugin_class->method = shape->method;
  plugin_class->description = shape->description != NULL ? shape->description
                                                         : "in-process test plugin";
  plugin_class->capabilities = shape->capabilities;
  if (shape->with_config)
    plugin_class->load_config = shape_load_config;
  if (shape->with_auth)
    {
      plugin_class->authenticate_async = shape_authenticate_async;
      plugin_class->authenticate_finish = shape_authenticate_finish;
    }
  if (shape->with_sync)
    {
      plugin_class->sync_async = shape_sync_async;
      plugin_class->sync_finish = shape_sync_finish;
    }
}

static MamdPlugin *
new_shape_plugin (const PluginShape *shape)
{
  GType type = g_type_from_name (shape->type_name);

  if (type == G_TYPE_INVALID)
    {
      const GTypeInfo info = {
        sizeof (MamdPluginClass), NULL, NULL, shape_class_init, NULL, shape,
        sizeof (MamdPlugin), 0, NULL, NULL
      };

      type = g_type_register_static (MAMD_TYPE_PLUGIN, shape->type_name, &info, 0);
    }
  return g_object_new (type, NULL);
}

static const PluginShape shape_good = {
  "InprocGoodPlugin", "inproc", MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_DIRECTORY_SYNC,
  TRUE, TRUE, TRUE
};
static const PluginShape shape_good_twin = {
  "InprocTwinPlugin", "inproc", MAMD_PLUGIN_CAP_SIGN_IN, TRUE, TRUE, FALSE
};
static const PluginShape shape_bad_name = {
  "InprocBadNamePlugin", "Bad Name", MAMD_PLUGIN_CAP_NONE, TRUE, FALSE, FALSE
};
static const PluginShape shape_no_name = {
  "InprocNoNamePlugin", NULL, MAMD_PLUGIN_CAP_NONE, TRUE, FALSE, FALSE
};
static const PluginShape shape_bad_description = {
  "InprocBadDescriptionPlugin", "baddesc", MAMD_PLUGIN_CAP_NONE, TRUE, FALSE, FALSE,
  "caf\xe9 (Latin-1)"
};
static const PluginShape shape_no_config = {
  "InprocNoConfigPlugin", "noconfig", MAMD_PLUGIN_CAP_NONE, FALSE, FALSE, FALSE
};
static const PluginShape shape_no_auth = {
  "InprocNoAuthPlugin", "noauth", MAMD_PLUGIN_CAP_SIGN_IN, TRUE, FALSE, TRUE
};
static const PluginShape shape_no_sync = {
  "InprocNoSyncPlugin", "nosync", MAMD_PLUGIN_CAP_DIRECTORY_SYNC, TRUE, TRUE, FALSE
};

/* ---- modules ---- */

static void
test_good_dir (void)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = build_path ("tests", "plugins", NULL);
  g_autofree char *path = g_build_filename (dir, "libmamd-test-plugin.so", NULL);
  GPtrArray *entries;
  const MamdPluginEntry *entry;
  MamdPlugin *plugin;

  g_assert_true (mamd_plugin_loader_load_dir (loader, dir, &error));
  g_assert_no_error (error);

  /* The directory of good plugins holds only the test plugin. */
  entries = mamd_plugin_loader_get_entries (loader);
  g_assert_cmpuint (entries->len, ==, 1);
  entry = g_ptr_array_index (entries, 0);
  g_assert_cmpstr (entry->path, ==, path);
  g_assert_cmpstr (entry->module_name, ==, "mamd-test-plugin");
  g_assert_cmpstr (entry->version, ==, "1.0");
  g_assert_cmpstr (entry->method, ==, "test");
  g_assert_cmpint (entry->capabilities, ==,
                   MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_DIRECTORY_SYNC |
                   MAMD_PLUGIN_CAP_MAM_AUTH_SERVICE | MAMD_PLUGIN_CAP_CREATES_USERS);
  g_assert_null (entry->disabled_reason);
  g_assert_true (MAMD_IS_PLUGIN (entry->plugin));

  plugin = mamd_plugin_loader_lookup (loader, "test");
  g_assert_true (plugin == entry->plugin);
  g_assert_true (mamd_plugin_loader_lookup_entry (loader, "test") == entry);
  g_assert_cmpstr (mamd_plugin_get_description (plugin), ==,
                   "test plugin: trusts the identity in its credential (tests and demo only)");
  g_assert_null (mamd_plugin_loader_lookup (loader, "office365"));
  g_assert_null (mamd_plugin_loader_lookup_entry (loader, "office365"));
  g_assert_null (mamd_plugin_loader_lookup (loader, NULL));
}

typedef struct {
  const char *file;
  const char *reason;      /* pattern the disabled reason must match */
  const char *method;      /* NULL when the module could not say */
  const char *module_name; /* expected module name */
} BadModule;

static const BadModule bad_modules[] = {
  /* In the sorted order load_dir uses. */
  { "bad-text.so", "cannot open module: *", NULL, "bad-text.so" },
  { "libbad-abi.so", "built for plugin ABI 99, mamd provides 1: rebuild the plugin",
    NULL, "libbad-abi.so" },
  { "libbad-dup.so", "method 'test' already provided by */tests/plugins/libmamd-test-plugin.so",
    "test", "bad-dup" },
  { "libbad-lazy.so", "cannot open module: *undefined symbol: mamd_symbol_from_the_future*",
    NULL, "libbad-lazy.so" },
  { "libbad-nosym.so", "no mamd_plugin_module_query symbol: *", NULL, "libbad-nosym.so" },
  { "libbad-type.so", "type GObject is not a subclass of MamdPlugin", NULL, "bad-type" },
};

static void
check_bad_entry (const MamdPluginEntry *entry, const BadModule *bad)
{
  g_autofree char *base = g_path_get_basename (entry->path);

  g_assert_cmpstr (base, ==, bad->file);
  g_assert_null (entry->plugin);
  g_assert_nonnull (entry->disabled_reason);
  if (!g_pattern_match_simple (bad->reason, entry->disabled_reason))
    g_error ("%s: reason \"%s\" does not match \"%s\"", bad->file,
             entry->disabled_reason, bad->reason);
  g_assert_cmpstr (entry->method, ==, bad->method);
  g_assert_cmpstr (entry->module_name, ==, bad->module_name);
}

static void
expect_skip (const char *file)
{
  g_autofree char *pattern = g_strdup_printf ("skipping plugin */%s: *", file);

  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING, pattern);
}

static void
test_bad_dir (void)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *good = build_path ("tests", "plugins", NULL);
  g_autofree char *bad = build_path ("tests", "plugins", "bad", NULL);
  GPtrArray *entries;

  g_assert_true (mamd_plugin_loader_load_dir (loader, good, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (bad_modules); i++)
    expect_skip (bad_modules[i].file);
  g_assert_true (mamd_plugin_loader_load_dir (loader, bad, &error));
  g_assert_no_error (error);
  g_test_assert_expected_messages ();

  entries = mamd_plugin_loader_get_entries (loader);
  g_assert_cmpuint (entries->len, ==, 1 + G_N_ELEMENTS (bad_modules));
  for (guint i = 0; i < G_N_ELEMENTS (bad_modules); i++)
    check_bad_entry (g_ptr_array_index (entries, i + 1), &bad_modules[i]);

  /* The refused duplicate does not shadow the good plugin. */
  g_assert_true (mamd_plugin_loader_lookup (loader, "test") ==
                 ((MamdPluginEntry *) g_ptr_array_index (entries, 0))->plugin);
  g_assert_nonnull (mamd_plugin_loader_lookup_entry (loader, "test")->plugin);
}

/* Each bad module on its own, so every reason is checked in isolation. */
static void
test_bad_module (gconstpointer data)
{
  const BadModule *bad = data;
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autofree char *path = build_path ("tests", "plugins", "bad", bad->file, NULL);
  const MamdPluginEntry *entry;

  if (g_strcmp0 (bad->method, "test") == 0)
    {
      g_autofree char *good = build_path ("tests", "plugins", "libmamd-test-plugin.so", NULL);

      entry = mamd_plugin_loader_load_module (loader, good);
      g_assert_nonnull (entry->plugin);
    }

  expect_skip (bad->file);
  entry = mamd_plugin_loader_load_module (loader, path);
  g_test_assert_expected_messages ();
  check_bad_entry (entry, bad);
}

static void
test_dup_alone_loads (void)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autofree char *path = build_path ("tests", "plugins", "bad", "libbad-dup.so", NULL);
  const MamdPluginEntry *entry;

  /* Proves the duplicate is refused for being a duplicate only. */
  entry = mamd_plugin_loader_load_module (loader, path);
  g_assert_null (entry->disabled_reason);
  g_assert_nonnull (entry->plugin);
  g_assert_cmpstr (entry->method, ==, "test");
}

static void
test_missing_file (void)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  const MamdPluginEntry *entry;

  g_test_expect_message ("mamd", G_LOG_LEVEL_WARNING,
                         "skipping plugin /nonexistent/libnothing.so: cannot open module*");
  entry = mamd_plugin_loader_load_module (loader, "/nonexistent/libnothing.so");
  g_test_assert_expected_messages ();
  g_assert_null (entry->plugin);
  g_assert_true (g_str_has_prefix (entry->disabled_reason, "cannot open module"));
  g_assert_null (strstr (entry->disabled_reason, "not a regular file"));
}

static void
test_missing_dir (void)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("mamd-loader-XXXXXX", &error);
  g_autofree char *missing = NULL;
  g_autofree char *file = NULL;

  g_assert_no_error (error);
  missing = g_build_filename (tmp, "no-such-dir", NULL);
  g_assert_true (mamd_plugin_loader_load_dir (loader, missing, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (mamd_plugin_loader_get_entries (loader)->len, ==, 0);

  /* A file where the directory should be is an error, not "no plugins". */
  file = g_build_filename (tmp, "plain-file", NULL);
  g_assert_true (g_file_set_contents (file, "x", -1, &error));
  g_assert_false (mamd_plugin_loader_load_dir (loader, file, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  g_assert_cmpuint (mamd_plugin_loader_get_entries (loader)->len, ==, 0);

  g_assert_cmpint (g_unlink (file), ==, 0);
  g_assert_cmpint (g_rmdir (tmp), ==, 0);
}

static void
test_dir_filters (void)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("mamd-loader-XXXXXX", &error);
  g_autofree char *text = build_path ("tests", "plugins", "bad", "bad-text.so", NULL);
  g_autofree char *notes = NULL;
  g_autofree char *subdir = NULL;
  g_autofree char *nested = NULL;
  g_autofree char *link = NULL;
  g_autofree char *fifo = NULL;
  GPtrArray *entries;

  g_assert_no_error (error);
  notes = g_build_filename (tmp, "notes.txt", NULL);
  fifo = g_build_filename (tmp, "fifo.so", NULL);
  subdir = g_build_filename (tmp, "sub.so", NULL);
  nested = g_build_filename (subdir, "libnested.so", NULL);
  link = g_build_filename (tmp, "a.so", NULL);
  g_assert_true (g_file_set_contents (notes, "not a module", -1, &error));
  g_assert_cmpint (g_mkdir (subdir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (nested, "not reached", -1, &error));
  g_assert_cmpint (symlink (text, link), ==, 0);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);

  /* Only a.so and fifo.so are module candidates: no .txt, no directories,
   * no recursion; the FIFO is refused without waiting for a writer. */
  expect_skip ("a.so");
  expect_skip ("fifo.so");
  g_assert_true (mamd_plugin_loader_load_dir (loader, tmp, &error));
  g_assert_no_error (error);
  g_test_assert_expected_messages ();
  entries = mamd_plugin_loader_get_entries (loader);
  g_assert_cmpuint (entries->len, ==, 2);
  g_assert_cmpstr (((MamdPluginEntry *) g_ptr_array_index (entries, 0))->path, ==, link);
  g_assert_cmpstr (((MamdPluginEntry *) g_ptr_array_index (entries, 1))->disabled_reason, ==,
                   "cannot open module: not a regular file");
  g_assert_cmpint (g_unlink (fifo), ==, 0);

  g_assert_cmpint (g_unlink (link), ==, 0);
  g_assert_cmpint (g_unlink (nested), ==, 0);
  g_assert_cmpint (g_rmdir (subdir), ==, 0);
  g_assert_cmpint (g_unlink (notes), ==, 0);
  g_assert_cmpint (g_rmdir (tmp), ==, 0);
}

/* ---- in-process ---- */

static void
test_add (void)
{
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(MamdPlugin) good = new_shape_plugin (&shape_good);
  g_autoptr(MamdPlugin) twin = new_shape_plugin (&shape_good_twin);
  g_autoptr(GError) error = NULL;
  const MamdPluginEntry *entry;

  g_assert_true (mamd_plugin_loader_add (loader, good, &error));
  g_assert_no_error (error);
  g_assert_true (mamd_plugin_loader_lookup (loader, "inproc") == good);
  entry = mamd_plugin_loader_lookup_entry (loader, "inproc");
  g_assert_null (entry->path);
  g_assert_cmpstr (entry->module_name, ==, "InprocGoodPlugin");
  g_assert_cmpint (entry->capabilities, ==,
                   MAMD_PLUGIN_CAP_SIGN_IN | MAMD_PLUGIN_CAP_DIRECTORY_SYNC);

  g_assert_false (mamd_plugin_loader_add (loader, twin, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "method 'inproc' already provided by InprocGoodPlugin"));
  g_assert_cmpuint (mamd_plugin_loader_get_entries (loader)->len, ==, 1);
}

typedef struct {
  const PluginShape *shape;
  const char *message; /* substring of the error */
} RefusedShape;

static const RefusedShape refused_shapes[] = {
  { &shape_bad_name, "method name must be 1 to 64 characters of [a-z0-9_-]" },
  { &shape_no_name, "method name must be 1 to 64 characters of [a-z0-9_-]" },
  { &shape_bad_description, "description is not UTF-8" },
  { &shape_no_config, "does not implement load_config" },
  { &shape_no_auth, "claims CAP_SIGN_IN but does not implement authenticate_async" },
  { &shape_no_sync, "claims CAP_DIRECTORY_SYNC but does not implement sync_async" },
};

static void
test_add_refused (gconstpointer data)
{
  const RefusedShape *refused = data;
  g_autoptr(MamdPluginLoader) loader = mamd_plugin_loader_new ();
  g_autoptr(MamdPlugin) plugin = new_shape_plugin (refused->shape);
  g_autoptr(GError) error = NULL;

  g_assert_false (mamd_plugin_loader_add (loader, plugin, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_PLUGIN_UNAVAILABLE);
  if (strstr (error->message, refused->message) == NULL)
    g_error ("error \"%s\" lacks \"%s\"", error->message, refused->message);
  g_assert_cmpuint (mamd_plugin_loader_get_entries (loader)->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/mamd/plugin-loader/good-dir", test_good_dir);
  g_test_add_func ("/mamd/plugin-loader/bad-dir", test_bad_dir);
  for (guint i = 0; i < G_N_ELEMENTS (bad_modules); i++)
    {
      g_autofree char *name = g_strdup_printf ("/mamd/plugin-loader/bad-module/%s",
                                               bad_modules[i].file);
      g_test_add_data_func (name, &bad_modules[i], test_bad_module);
    }
  g_test_add_func ("/mamd/plugin-loader/duplicate-alone-loads", test_dup_alone_loads);
  g_test_add_func ("/mamd/plugin-loader/missing-file", test_missing_file);
  g_test_add_func ("/mamd/plugin-loader/missing-dir", test_missing_dir);
  g_test_add_func ("/mamd/plugin-loader/dir-filters", test_dir_filters);
  g_test_add_func ("/mamd/plugin-loader/add", test_add);
  for (guint i = 0; i < G_N_ELEMENTS (refused_shapes); i++)
    {
      g_autofree char *name = g_strdup_printf ("/mamd/plugin-loader/add-refused/%s",
                                               refused_shapes[i].shape->type_name);
      g_test_add_data_func (name, &refused_shapes[i], test_add_refused);
    }

  return g_test_run ();
}
