/*
 * Session objects /org/mamd/Mamd1/session/<id>: the path of a session id
 * and back, and the properties of the org.mamd.Mamd1.Session interface.
 * Pure functions, shared by the adaptor and the method handlers.
 */
#include "config.h"

#include "mamd-dbus-private.h"

#include <string.h>

char *
mamd_dbus_session_path (const char *session_id)
{
  return g_strconcat (MAMD_DBUS_SESSION_PREFIX "/", session_id, NULL);
}

char *
mamd_dbus_session_id_from_path (const char *path, GError **error)
{
  const char *prefix = MAMD_DBUS_SESSION_PREFIX "/";

  if (path == NULL || !g_str_has_prefix (path, prefix) ||
      !mamd_id_is_valid (path + strlen (prefix))) {
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                 "'%s' is not a session object path: use the path SignIn returned "
                 "(" MAMD_DBUS_SESSION_PREFIX "/<32 hex characters>)",
                 path != NULL ? path : "");
    return NULL;
  }
  return g_strdup (path + strlen (prefix));
}

static const char *const session_property_names[] = {
  "Id", "Server", "AuthMethod", "ObjectId", "TenantId", "UserName", "DeviceId",
  "Platform", "State", "Reason", "MamRequired", "Created", "Updated", "Seq",
};

static GVariant *
string_or_empty (const char *text)
{
  return g_variant_new_string (text != NULL ? text : "");
}

GVariant *
mamd_dbus_session_property (const MamdSessionRecord *rec, const char *name)
{
  if (g_str_equal (name, "Id"))
    return string_or_empty (rec->id);
  if (g_str_equal (name, "Server"))
    return string_or_empty (rec->server_id);
  if (g_str_equal (name, "AuthMethod"))
    return string_or_empty (rec->method);
  if (g_str_equal (name, "ObjectId"))
    return string_or_empty (rec->object_id);
  if (g_str_equal (name, "TenantId"))
    return string_or_empty (rec->tenant_id);
  if (g_str_equal (name, "UserName"))
    return string_or_empty (rec->user_name);
  if (g_str_equal (name, "DeviceId"))
    return string_or_empty (rec->device_id);
  if (g_str_equal (name, "Platform"))
    return string_or_empty (rec->platform);
  if (g_str_equal (name, "State"))
    return g_variant_new_string (mamd_session_state_to_string (rec->state));
  if (g_str_equal (name, "Reason"))
    return string_or_empty (rec->reason);
  if (g_str_equal (name, "MamRequired"))
    return g_variant_new_boolean (rec->mam_required);
  if (g_str_equal (name, "Created"))
    return g_variant_new_int64 (rec->created);
  if (g_str_equal (name, "Updated"))
    return g_variant_new_int64 (rec->updated);
  if (g_str_equal (name, "Seq"))
    return g_variant_new_uint64 (rec->seq);
  return NULL;
}

GVariant *
mamd_dbus_session_properties (const MamdSessionRecord *rec)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  for (guint i = 0; i < G_N_ELEMENTS (session_property_names); i++)
    g_variant_builder_add (&builder, "{sv}", session_property_names[i],
                           mamd_dbus_session_property (rec, session_property_names[i]));
  return g_variant_builder_end (&builder);
}
