/*
 * mamd-test-oauth-util.c: helpers shared by the office365 plugin tests
 * (test-oauth-plugin.c and test-oauth-dbus.c); see the header.
 */
#include "config.h"

#include <glib/gstdio.h>

#include "mamd-test-oauth-util.h"

gboolean
on_wait_timeout (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main context (the provider's too) until *@flag is set; a hung
 * plugin fails the test instead of hanging it. */
void
wait_for_flag (const gboolean *flag)
{
  gboolean timed_out = FALSE;
  g_autoptr(GSource) timeout = g_timeout_source_new (WAIT_MS);

  g_source_set_callback (timeout, on_wait_timeout, &timed_out, NULL);
  g_source_attach (timeout, NULL);
  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_source_destroy (timeout);
  g_assert_true (*flag);
}

char *
write_secret (const char *dir, const char *name, const char *contents, int mode)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents_full (path, contents, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
  return g_steal_pointer (&path);
}

GVariant *
token_credential (const char *token)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", "access-token", g_variant_new_string (token));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}
