/*
 * mamd-test-config.c: parsing of the test plugin's [test] group.
 */
#include <string.h>

#include "mamd-test-config.h"

/* Long enough for any test of slowness, short enough to notice a typo. */
#define DELAY_MS_MAX 600000u

struct _MamdTestConfig {
  GObject parent_instance;
  char *server_id;
  guint delay_ms;
  guint sync_delay_ms;
  MamdTestGate gate;
  GPtrArray *users; /* MamdIdentity */
};

G_DEFINE_FINAL_TYPE (MamdTestConfig, mamd_test_config, G_TYPE_OBJECT)

static void
mamd_test_config_finalize (GObject *object)
{
  MamdTestConfig *self = MAMD_TEST_CONFIG (object);

  g_free (self->server_id);
  g_ptr_array_unref (self->users);
  G_OBJECT_CLASS (mamd_test_config_parent_class)->finalize (object);
}

static void
mamd_test_config_class_init (MamdTestConfigClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = mamd_test_config_finalize;
}

static void
mamd_test_config_init (MamdTestConfig *self)
{
  self->users = g_ptr_array_new_with_free_func ((GDestroyNotify) mamd_identity_free);
}

static gboolean
parse_delay (GKeyFile *keyfile, const char *group, const char *key, guint *out,
             GError **error)
{
  g_autofree char *value = g_key_file_get_value (keyfile, group, key, NULL);
  guint64 delay = 0;

  if (value == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (value, 10, 0, DELAY_MS_MAX, &delay, NULL))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] %s: not an unsigned integer of at most %u", group, key,
                   DELAY_MS_MAX);
      return FALSE;
    }
  *out = (guint) delay;
  return TRUE;
}

static gboolean
parse_gate (MamdTestConfig *self, GKeyFile *keyfile, const char *group, GError **error)
{
  g_autofree char *value = g_key_file_get_string (keyfile, group, "Gate", NULL);

  if (value == NULL || g_strcmp0 (value, "open") == 0)
    self->gate = MAMD_TEST_GATE_OPEN;
  else if (g_strcmp0 (value, "invalid-resource") == 0)
    self->gate = MAMD_TEST_GATE_INVALID_RESOURCE;
  else
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] Gate: must be \"open\" or \"invalid-resource\"", group);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_users (MamdTestConfig *self, const char *tenant_id, GKeyFile *keyfile,
             const char *group, GError **error)
{
  g_auto(GStrv) entries = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize n_entries = 0;

  if (!g_key_file_has_key (keyfile, group, "Users", NULL))
    return TRUE;

  entries = g_key_file_get_string_list (keyfile, group, "Users", &n_entries, &local_error);
  if (entries == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] Users: not a list of objectId:userName entries (%s)",
                   group, local_error->message);
      return FALSE;
    }
  if (n_entries > 0 && tenant_id == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                   "[%s] Users: the server has no TenantId; set TenantId in [Server]",
                   group);
      return FALSE;
    }

  for (gsize i = 0; i < n_entries; i++)
    {
      g_autoptr(MamdIdentity) identity = NULL;
      g_autofree char *object_id = NULL;
      const char *user_name = NULL;
      const char *colon = strchr (entries[i], ':');

      if (colon != NULL)
        {
          object_id = g_strndup (entries[i], (gsize) (colon - entries[i]));
          user_name = *(colon + 1) != '\0' ? colon + 1 : NULL;
        }
      else
        {
          object_id = g_strdup (entries[i]);
        }

      identity = mamd_identity_new (object_id, tenant_id, user_name, "object-id",
                                    "test directory", &local_error);
      if (identity == NULL)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                       "[%s] Users: entry %" G_GSIZE_FORMAT ": %s", group, i + 1,
                       local_error->message);
          return FALSE;
        }
      for (guint j = 0; j < self->users->len; j++)
        {
          MamdIdentity *other = g_ptr_array_index (self->users, j);

          if (g_strcmp0 (other->object_id, identity->object_id) == 0)
            {
              g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                           "[%s] Users: entry %" G_GSIZE_FORMAT ": objectId %s "
                           "is listed twice", group, i + 1, identity->object_id);
              return FALSE;
            }
        }
      g_ptr_array_add (self->users, g_steal_pointer (&identity));
    }
  return TRUE;
}

MamdTestConfig *
mamd_test_config_new_from_keyfile (const char *server_id,
                                   const char *tenant_id,
                                   GKeyFile   *keyfile,
                                   const char *group,
                                   GError    **error)
{
  static const char *const known_keys[] = { "Users", "DelayMs", "SyncDelayMs", "Gate", NULL };
  g_autoptr(MamdTestConfig) self = g_object_new (MAMD_TYPE_TEST_CONFIG, NULL);
  g_auto(GStrv) keys = NULL;
  g_autofree char *tenant = NULL;

  if (group == NULL)
    group = "test";
  self->server_id = g_strdup (server_id);

  if (tenant_id != NULL)
    {
      g_autoptr(GError) local_error = NULL;

      tenant = mamd_guid_canonicalize (tenant_id, "TenantId", &local_error);
      if (tenant == NULL)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                       "[Server] %s", local_error->message);
          return NULL;
        }
    }

  /* An absent group means every default. */
  if (!g_key_file_has_group (keyfile, group))
    return g_steal_pointer (&self);

  keys = g_key_file_get_keys (keyfile, group, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      if (!g_strv_contains (known_keys, keys[i]))
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_CONFIG,
                       "[%s] %s: unknown key; the test plugin knows Users, "
                       "DelayMs, SyncDelayMs and Gate", group, keys[i]);
          return NULL;
        }
    }

  if (!parse_delay (keyfile, group, "DelayMs", &self->delay_ms, error) ||
      !parse_delay (keyfile, group, "SyncDelayMs", &self->sync_delay_ms, error) ||
      !parse_gate (self, keyfile, group, error) ||
      !parse_users (self, tenant, keyfile, group, error))
    return NULL;

  return g_steal_pointer (&self);
}

const char *
mamd_test_config_get_server_id (MamdTestConfig *self)
{
  g_return_val_if_fail (MAMD_IS_TEST_CONFIG (self), NULL);
  return self->server_id;
}

guint
mamd_test_config_get_delay_ms (MamdTestConfig *self)
{
  g_return_val_if_fail (MAMD_IS_TEST_CONFIG (self), 0);
  return self->delay_ms;
}

guint
mamd_test_config_get_sync_delay_ms (MamdTestConfig *self)
{
  g_return_val_if_fail (MAMD_IS_TEST_CONFIG (self), 0);
  return self->sync_delay_ms;
}

MamdTestGate
mamd_test_config_get_gate (MamdTestConfig *self)
{
  g_return_val_if_fail (MAMD_IS_TEST_CONFIG (self), MAMD_TEST_GATE_OPEN);
  return self->gate;
}

GPtrArray *
mamd_test_config_get_users (MamdTestConfig *self)
{
  g_return_val_if_fail (MAMD_IS_TEST_CONFIG (self), NULL);
  return self->users;
}
