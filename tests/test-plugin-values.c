/*
 * test-plugin-values.c: the plugin SDK's value types without a plugin:
 * GUID canonicalisation, MamdIdentity and the MAMD_ERROR domain with its
 * D-Bus names. The runner wrappers and the test plugin are in test-plugin.c.
 */
#include "config.h"

#include <string.h>

#include <mamd-plugin.h>

#define OID "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define TID "72f988bf-86f1-41af-91ab-2d7cd011db47"

/* ---- GUIDs ---- */

typedef struct {
  const char *input;
  const char *canonical; /* NULL: must be refused */
} GuidCase;

static const GuidCase guid_cases[] = {
  { OID, OID },
  { "3F2504E0-4F89-11D3-9A0C-0305E82C3301", OID },
  { "3f2504E0-4f89-11D3-9a0c-0305e82C3301", OID },
  { "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", OID },
  { "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", OID },
  { "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000" },
  /* wrong lengths */
  { "", NULL },
  { "3f2504e0-4f89-11d3-9a0c-0305e82c330", NULL },
  { "3f2504e0-4f89-11d3-9a0c-0305e82c33011", NULL },
  { "{}", NULL },
  { "{", NULL },
  /* braces: a pair or nothing */
  { "{3f2504e0-4f89-11d3-9a0c-0305e82c3301", NULL },
  { "3f2504e0-4f89-11d3-9a0c-0305e82c3301}", NULL },
  { "{{3f2504e0-4f89-11d3-9a0c-0305e82c3301}}", NULL },
  { "(3f2504e0-4f89-11d3-9a0c-0305e82c3301)", NULL },
  /* bad characters */
  { "3f2504g0-4f89-11d3-9a0c-0305e82c3301", NULL },
  { "3f2504e0-4f89-11d3-9a0c-0305e82c330z", NULL },
  { "3f2504e0_4f89_11d3_9a0c_0305e82c3301", NULL },
  { " 3f2504e0-4f89-11d3-9a0c-0305e82c3301", NULL },
  { "3f2504e0-4f89-11d3-9a0c-0305e82c3301 ", NULL },
  { "3f2504e0-4f89-11d3-9a0c-0305e82c 301", NULL },
  { "3f2504e0-4f89-11d3-9a0c-0305e82c330\xc3\xa9", NULL },
  { "+f2504e0-4f89-11d3-9a0c-0305e82c3301", NULL },
  /* hyphens missing or misplaced */
  { "3f2504e04f8911d39a0c0305e82c3301", NULL },
  { "{3f2504e04f8911d39a0c0305e82c3301}", NULL },
  { "3f2504e0-4f8911d3-9a0c-0305e82c3301", NULL },
  { "3f2504e04-f89-11d3-9a0c-0305e82c3301", NULL },
  { "3f2504e0-4f89-11d3-9a0c0305-e82c3301", NULL },
  { "------------------------------------", NULL },
};

static void
test_guid_canonicalize (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (guid_cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *out = mamd_guid_canonicalize (guid_cases[i].input, "objectId", &error);

      g_test_message ("case %u: \"%s\"", i, guid_cases[i].input);
      if (guid_cases[i].canonical != NULL)
        {
          g_assert_no_error (error);
          g_assert_cmpstr (out, ==, guid_cases[i].canonical);
          g_assert_true (mamd_guid_is_canonical (out));
        }
      else
        {
          g_assert_null (out);
          g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
          /* Names the value and says what is expected. */
          g_assert_true (g_str_has_prefix (error->message, "objectId "));
          g_assert_nonnull (strstr (error->message, "8-4-4-4-12"));
        }
    }
}

static void
test_guid_canonicalize_null (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_null (mamd_guid_canonicalize (NULL, NULL, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_assert_true (g_str_has_prefix (error->message, "value "));
}

static void
test_guid_is_canonical (void)
{
  g_assert_true (mamd_guid_is_canonical (OID));
  g_assert_false (mamd_guid_is_canonical ("3F2504E0-4F89-11D3-9A0C-0305E82C3301"));
  g_assert_false (mamd_guid_is_canonical ("{" OID "}"));
  g_assert_false (mamd_guid_is_canonical ("3f2504e04f8911d39a0c0305e82c3301"));
  g_assert_false (mamd_guid_is_canonical (""));
  g_assert_false (mamd_guid_is_canonical (NULL));
}

static void
test_guid_from_bytes (void)
{
  /* objectGUID / msDS-aadObjectId as AD stores {3F2504E0-4F89-11D3-9A0C-0305E82C3301}
   * (the example of Microsoft's GUID documentation): Data1..Data3 are
   * little-endian, Data4 in order. */
  static const guint8 bytes[16] = {
    0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11,
    0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c, 0x33, 0x01,
  };
  /* A layout-sensitive second value: every byte differs. */
  static const guint8 seq[16] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *out2 = NULL;

  out = mamd_guid_from_bytes (bytes, sizeof bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, OID);

  out2 = mamd_guid_from_bytes (seq, sizeof seq, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out2, ==, "03020100-0504-0706-0809-0a0b0c0d0e0f");

  g_assert_null (mamd_guid_from_bytes (bytes, 15, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_null (mamd_guid_from_bytes (bytes, 0, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_null (mamd_guid_from_bytes (NULL, 16, &error));
  g_assert_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS);
}

/* ---- identity ---- */

static void
test_identity (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;
  g_autoptr(MamdIdentity) copy = NULL;
  MamdIdentity *boxed;

  identity = mamd_identity_new ("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
                                "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                                "Alex Wilber", "oid", "issuer", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (identity->object_id, ==, OID);
  g_assert_cmpstr (identity->tenant_id, ==, TID);
  g_assert_cmpstr (identity->user_name, ==, "Alex Wilber");
  g_assert_cmpstr (identity->id_attribute, ==, "oid");
  g_assert_cmpstr (identity->id_source, ==, "issuer");

  copy = mamd_identity_copy (identity);
  g_assert_true (copy != identity);
  g_assert_true (copy->object_id != identity->object_id);
  g_assert_cmpstr (copy->object_id, ==, OID);
  g_assert_cmpstr (copy->user_name, ==, "Alex Wilber");

  boxed = g_boxed_copy (MAMD_TYPE_IDENTITY, identity);
  g_assert_cmpstr (boxed->tenant_id, ==, TID);
  g_boxed_free (MAMD_TYPE_IDENTITY, boxed);
  g_assert_true (G_TYPE_IS_BOXED (MAMD_TYPE_IDENTITY));
  g_assert_null (mamd_identity_copy (NULL));
  mamd_identity_free (NULL);
}

static void
test_identity_optional (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdIdentity) identity = NULL;

  identity = mamd_identity_new (OID, TID, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (identity->user_name);
  g_assert_null (identity->id_attribute);
  g_assert_null (identity->id_source);
  mamd_identity_free (g_steal_pointer (&identity));

  /* Display strings go onto the bus: invalid UTF-8 is repaired. */
  identity = mamd_identity_new (OID, TID, "bad\xff name", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_utf8_validate (identity->user_name, -1, NULL));
  g_assert_true (g_str_has_prefix (identity->user_name, "bad"));
}

static void
test_identity_invalid (void)
{
  static const struct {
    const char *object_id;
    const char *tenant_id;
    gint code;
  } cases[] = {
    { NULL, TID, MAMD_ERROR_MISSING_AUTH_ACCOUNT },
    { "", TID, MAMD_ERROR_MISSING_AUTH_ACCOUNT },
    { "alex@contoso.com", TID, MAMD_ERROR_MISSING_AUTH_ACCOUNT },
    { "3f2504e04f8911d39a0c0305e82c3301", TID, MAMD_ERROR_MISSING_AUTH_ACCOUNT },
    { OID, NULL, MAMD_ERROR_INVALID_TOKEN },
    { OID, "", MAMD_ERROR_INVALID_TOKEN },
    { OID, "contoso.onmicrosoft.com", MAMD_ERROR_INVALID_TOKEN },
    /* objectId is checked first */
    { NULL, NULL, MAMD_ERROR_MISSING_AUTH_ACCOUNT },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(MamdIdentity) identity = NULL;

      g_test_message ("case %u", i);
      identity = mamd_identity_new (cases[i].object_id, cases[i].tenant_id, "x", NULL,
                                    NULL, &error);
      g_assert_null (identity);
      g_assert_error (error, MAMD_ERROR, cases[i].code);
      /* Never echoes the rejected value. */
      if (cases[i].object_id != NULL && *cases[i].object_id != '\0')
        g_assert_null (strstr (error->message, cases[i].object_id));
      if (cases[i].tenant_id != NULL && *cases[i].tenant_id != '\0')
        g_assert_null (strstr (error->message, cases[i].tenant_id));
    }
}

/* ---- errors ---- */

static const char *const dbus_names[] = {
  "Failed", "InvalidArgs", "AccessDenied", "Busy", "Forbidden", "NotLicensed",
  "MissingAuthAccount", "UserMismatch", "InvalidResource", "EnrollmentFailed",
  "EnrollmentDeclined", "UnsupportedPlatform", "InvalidToken", "KeyUnavailable",
  "NotFound", "ServerRemoved", "InvalidConfig", "Store", "PluginUnavailable",
  "InvalidState", "NotSupported",
};

static void
test_error_dbus_names (void)
{
  G_STATIC_ASSERT (G_N_ELEMENTS (dbus_names) == MAMD_ERROR_LAST);

  g_assert_cmpstr (g_quark_to_string (MAMD_ERROR), ==, "mamd-error-quark");
  for (gint code = 0; code < MAMD_ERROR_LAST; code++)
    {
      g_autofree char *expected = g_strdup_printf ("org.mamd.Mamd1.Error.%s",
                                                   dbus_names[code]);
      g_autoptr(GError) error = g_error_new (MAMD_ERROR, code, "cause %d; next step", code);
      g_autoptr(GError) back = NULL;
      g_autofree char *encoded = NULL;

      g_assert_cmpstr (mamd_error_to_dbus_name (code), ==, expected);

      encoded = g_dbus_error_encode_gerror (error);
      g_assert_cmpstr (encoded, ==, expected);

      back = g_dbus_error_new_for_dbus_error (encoded, error->message);
      g_assert_error (back, MAMD_ERROR, code);
      {
        g_autofree char *remote = g_dbus_error_get_remote_error (back);

        g_assert_cmpstr (remote, ==, expected);
      }
      g_assert_true (g_dbus_error_strip_remote_error (back));
      g_assert_cmpstr (back->message, ==, error->message);
    }
  g_assert_null (mamd_error_to_dbus_name (MAMD_ERROR_LAST));
  g_assert_null (mamd_error_to_dbus_name ((MamdError) -1));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/mamd/plugin/guid/canonicalize", test_guid_canonicalize);
  g_test_add_func ("/mamd/plugin/guid/canonicalize-null", test_guid_canonicalize_null);
  g_test_add_func ("/mamd/plugin/guid/is-canonical", test_guid_is_canonical);
  g_test_add_func ("/mamd/plugin/guid/from-bytes", test_guid_from_bytes);
  g_test_add_func ("/mamd/plugin/identity/new", test_identity);
  g_test_add_func ("/mamd/plugin/identity/optional", test_identity_optional);
  g_test_add_func ("/mamd/plugin/identity/invalid", test_identity_invalid);
  g_test_add_func ("/mamd/plugin/error/dbus-names", test_error_dbus_names);

  return g_test_run ();
}
