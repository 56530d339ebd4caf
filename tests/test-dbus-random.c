/*
 * Black-box robustness test of the real mamd binary on a private
 * dbus-daemon: every Manager method of the introspection XML is called
 * many times with arguments of the right signature but random content
 * (empty, huge, hostile and almost-right strings, bogus object paths,
 * credential and device dicts with random keys and values of every type).
 * mamd must answer each call, with a result or an error of its own
 * namespace (or the bus's for arguments it refuses), and stay alive.
 * The random seed is GTest's (--seed to replay).
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "mamd-test-dbus-helpers.h"

#define CALLS_PER_METHOD 60

static const char *const strings[] = {
  "", "chat", "open", "test", "office365", "saml", "ios", "android", "windows", "success",
  "declined", "failed", "0c0ffee0-0000-4000-8000-000000000001",
  "{0C0FFEE0-0000-4000-8000-000000000001}", MAMD_TEST_TENANT_ID, "not-a-guid",
  "../../../etc/passwd", "%s%s%n%x", "é✓ünïcødé", "line\nbreak", "\t", " chat ",
  "0123456789abcdef0123456789abcdef", "Bearer eyJhbGciOiJub25lIn0.e30.",
  /* ListSessionsPage cursors, good and bad */
  "0:00000000000000000000000000000000", "9223372036854775807:ffffffffffffffffffffffffffffffff",
  "9223372036854775808:0123456789abcdef0123456789abcdef", "-1:0123456789abcdef0123456789abcdef",
  ":0123456789abcdef0123456789abcdef", "12:", "12:0123456789ABCDEF0123456789ABCDEF",
};

/* what earlier calls returned: session paths and wipe ids to reuse */
static GPtrArray *known_paths;
static GPtrArray *known_wipes;

static const char *const keys[] = {
  "object-id", "tenant-id", "user-name", "token", "platform", "device-id", "", "x",
  "object_id", "OBJECT-ID",
};

static char *
random_hex (guint len)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < len; i++)
    g_string_append_c (s, "0123456789abcdef"[g_test_rand_int_range (0, 16)]);
  return g_string_free (s, FALSE);
}

static char *
random_string (void)
{
  if (known_wipes->len > 0 && g_test_rand_int_range (0, 10) == 0)
    return g_strdup (g_ptr_array_index (known_wipes,
                                        g_test_rand_int_range (0, known_wipes->len)));
  switch (g_test_rand_int_range (0, 8)) {
  case 0:
    return g_strnfill (g_test_rand_int_range (200, 6000), 'a');
  case 1: {
    /* random printable bytes */
    guint len = g_test_rand_int_range (1, 40);
    char *s = g_malloc (len + 1);

    for (guint i = 0; i < len; i++)
      s[i] = (char) g_test_rand_int_range (0x20, 0x7f);
    s[len] = '\0';
    return s;
  }
  default:
    return g_strdup (strings[g_test_rand_int_range (0, G_N_ELEMENTS (strings))]);
  }
}

static char *
random_object_path (void)
{
  if (known_paths->len > 0 && g_test_rand_bit ())
    return g_strdup (g_ptr_array_index (known_paths,
                                        g_test_rand_int_range (0, known_paths->len)));
  switch (g_test_rand_int_range (0, 5)) {
  case 0:
    return g_strdup ("/");
  case 1:
    return g_strdup ("/org/mamd/Mamd1");
  case 2:
    return g_strdup ("/org/mamd/Mamd1/session/x");
  case 3:
    return g_strdup ("/a/b/c");
  default: {
    g_autofree char *hex = random_hex (32);

    return g_strconcat ("/org/mamd/Mamd1/session/", hex, NULL);
  }
  }
}

static GVariant *random_value (const GVariantType *type, guint depth);

/* A variant of a random type, for a{sv} values. */
static GVariant *
random_any (guint depth)
{
  static const char *const types[] = { "s", "i", "b", "t", "as", "ay", "a{sv}", "o", "(ss)" };
  guint n = depth > 2 ? 6 : G_N_ELEMENTS (types);
  const char *type = types[g_test_rand_int_range (0, n)];

  return random_value (G_VARIANT_TYPE (type), depth + 1);
}

static GVariant *
random_value (const GVariantType *type, guint depth)
{
  if (g_variant_type_equal (type, G_VARIANT_TYPE_BOOLEAN))
    return g_variant_new_boolean (g_test_rand_bit ());
  if (g_variant_type_equal (type, G_VARIANT_TYPE_INT32)) {
    static const gint32 ints[] = { 0, -1, 1, 100, 201, 219, 225, 226, G_MAXINT32, G_MININT32 };

    return g_variant_new_int32 (g_test_rand_bit () ? ints[g_test_rand_int_range (0, 10)]
                                                   : g_test_rand_int ());
  }
  if (g_variant_type_equal (type, G_VARIANT_TYPE_UINT32)) {
    static const guint32 uints[] = { 0, 1, 2, 1000, 10000, 10001, G_MAXUINT32 };

    return g_variant_new_uint32 (g_test_rand_bit () ? uints[g_test_rand_int_range (0, 7)]
                                                    : (guint32) g_test_rand_int ());
  }
  if (g_variant_type_equal (type, G_VARIANT_TYPE_UINT64))
    return g_variant_new_uint64 (g_test_rand_bit () ? 0 : G_MAXUINT64 - g_test_rand_int_range (0, 3));
  if (g_variant_type_equal (type, G_VARIANT_TYPE_STRING)) {
    g_autofree char *s = random_string ();

    return g_variant_new_string (s);
  }
  if (g_variant_type_equal (type, G_VARIANT_TYPE_OBJECT_PATH)) {
    g_autofree char *s = random_object_path ();

    return g_variant_new_object_path (s);
  }
  if (g_variant_type_equal (type, G_VARIANT_TYPE_BYTESTRING)) {
    guint len = g_test_rand_int_range (0, 64);
    g_autofree guint8 *bytes = g_malloc (len + 1);

    for (guint i = 0; i < len; i++)
      bytes[i] = (guint8) g_test_rand_int_range (0, 256);
    return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, len, 1);
  }
  if (g_variant_type_equal (type, G_VARIANT_TYPE_STRING_ARRAY)) {
    GVariantBuilder b;

    g_variant_builder_init (&b, G_VARIANT_TYPE_STRING_ARRAY);
    for (guint i = g_test_rand_int_range (0, 4); i > 0; i--) {
      g_autofree char *s = random_string ();

      g_variant_builder_add (&b, "s", s);
    }
    return g_variant_builder_end (&b);
  }
  if (g_variant_type_equal (type, G_VARIANT_TYPE_VARDICT)) {
    GVariantBuilder b;

    g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
    for (guint i = g_test_rand_int_range (0, 6); i > 0; i--) {
      guint k = g_test_rand_int_range (0, G_N_ELEMENTS (keys));

      /* mostly strings, so some calls get past the argument checks */
      g_variant_builder_add (&b, "{sv}", keys[k],
                             g_test_rand_int_range (0, 10) < 7
                               ? random_value (G_VARIANT_TYPE_STRING, depth + 1)
                               : random_any (depth));
    }
    return g_variant_builder_end (&b);
  }
  if (g_variant_type_is_tuple (type)) {
    GVariantBuilder b;

    g_variant_builder_init (&b, type);
    for (const GVariantType *item = g_variant_type_first (type); item != NULL;
         item = g_variant_type_next (item))
      g_variant_builder_add_value (&b, random_value (item, depth + 1));
    return g_variant_builder_end (&b);
  }
  g_error ("no random values of type %.*s", (int) g_variant_type_get_string_length (type),
           g_variant_type_peek_string (type));
}

/* A sign-in that may well pass: a known server and method, a fresh
 * objectId of the server's tenant, a random platform and device. Until a
 * session exists it is one that must pass (on a device of its own, which no
 * failed enrollment has removed the server from), so that the calls after
 * it have a session to act on. */
static GVariant *
likely_sign_in (void)
{
  static const char *const servers[] = { "chat", "open", "nope" };
  static const char *const platforms[] = { "ios", "ios", "android", "" };
  gboolean first = known_paths->len == 0;
  g_autofree char *hex = random_hex (12);
  g_autofree char *oid = g_strconcat ("0c0ffee0-0000-4000-8000-", hex, NULL);
  g_autofree char *device = first ? g_strdup ("device-first")
                                  : g_strdup_printf ("device-%d", g_test_rand_int_range (0, 8));

  return g_variant_new ("(ss@a{sv}@a{sv})", first ? "chat" : servers[g_test_rand_int_range (0, 3)],
                        "test", mamd_test_credential (oid, MAMD_TEST_TENANT_ID, "user"),
                        mamd_test_device (first ? "ios" : platforms[g_test_rand_int_range (0, 4)],
                                          device));
}

static GVariant *
random_args (const GDBusMethodInfo *method)
{
  GVariantBuilder b;

  if (g_str_equal (method->name, "SignIn") && (known_paths->len == 0 || g_test_rand_bit ()))
    return likely_sign_in ();

  g_variant_builder_init (&b, G_VARIANT_TYPE_TUPLE);
  for (guint i = 0; method->in_args != NULL && method->in_args[i] != NULL; i++)
    g_variant_builder_add_value (&b, random_value (G_VARIANT_TYPE (method->in_args[i]->signature),
                                                   0));
  return g_variant_builder_end (&b);
}

static GDBusInterfaceInfo *
manager_info (GDBusNodeInfo **node)
{
  g_autofree char *path = g_build_filename (g_getenv ("MAMD_SOURCE_ROOT"), "dbus",
                                            "org.mamd.Mamd1.xml", NULL);
  g_autofree char *xml = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_get_contents (path, &xml, NULL, &error));
  *node = g_dbus_node_info_new_for_xml (xml, &error);
  g_assert_no_error (error);
  return g_dbus_node_info_lookup_interface (*node, MANAGER_IFACE);
}

/* An answer mamd may give: a result, or an error of mamd's or the bus's
 * own that refuses the arguments; never a lost reply. */
static void
assert_answered (const char *method, GVariant *args, GVariant *reply, GError *error)
{
  g_autofree char *name = NULL;
  g_autofree char *text = NULL;

  if (reply != NULL)
    return;
  name = g_dbus_error_get_remote_error (error);
  if (name != NULL && (g_str_has_prefix (name, "org.mamd.Mamd1.Error.") ||
                       g_str_equal (name, "org.freedesktop.DBus.Error.InvalidArgs") ||
                       g_str_equal (name, "org.freedesktop.DBus.Error.AccessDenied") ||
                       g_str_equal (name, "org.freedesktop.DBus.Error.LimitsExceeded")))
    return;
  text = g_variant_print (args, FALSE);
  g_error ("%s%.200s got %s: %s", method, text, name != NULL ? name : "no D-Bus error",
           error->message);
}

/* Keeps the session paths and wipe ids that later calls may reuse. */
static void
remember (const char *method, GVariant *reply)
{
  if (g_str_equal (method, "SignIn")) {
    const char *path;

    g_variant_get (reply, "(&o@a{sv})", &path, NULL);
    g_ptr_array_add (known_paths, g_strdup (path));
  } else if (g_str_equal (method, "ListWipes")) {
    g_autoptr(GVariant) list = g_variant_get_child_value (reply, 0);

    for (gsize i = 0; i < g_variant_n_children (list); i++) {
      g_autoptr(GVariant) wipe = g_variant_get_child_value (list, i);
      char *id = NULL;

      if (g_variant_lookup (wipe, "id", "s", &id))
        g_ptr_array_add (known_wipes, id);
    }
  }
}

static void
test_random_calls (void)
{
  g_autoptr(MamdTestDaemon) d = started_daemon (NULL, "AllowedPlatforms=ios;android\n");
  g_autoptr(GDBusNodeInfo) node = NULL;
  GDBusInterfaceInfo *iface = manager_info (&node);
  guint calls = 0, results = 0, sign_ins = 0;
  g_autofree char *log = NULL;

  g_assert_nonnull (iface);
  known_paths = g_ptr_array_new_with_free_func (g_free);
  known_wipes = g_ptr_array_new_with_free_func (g_free);
  for (guint round = 0; round < CALLS_PER_METHOD; round++) {
    for (guint m = 0; iface->methods[m] != NULL; m++) {
      const GDBusMethodInfo *method = iface->methods[m];
      g_autoptr(GVariant) args = g_variant_ref_sink (random_args (method));
      g_autoptr(GVariant) reply = NULL;
      g_autoptr(GError) error = NULL;

      reply = mamd_test_daemon_call (d, method->name, args, NULL, &error);
      assert_answered (method->name, args, reply, error);
      calls++;
      results += reply != NULL;
      if (reply != NULL)
        remember (method->name, reply);
      sign_ins += reply != NULL && g_str_equal (method->name, "SignIn");
    }
  }
  g_test_message ("%u random calls, %u answered with a result (%u sign-ins)", calls, results,
                  sign_ins);

  /* calls get past the argument checks: the first sign-in must pass */
  g_assert_cmpuint (sign_ins, >, 0);
  /* still serving, and nothing went wrong inside */
  g_assert_cmpuint (last_event_seq (d), >=, sign_ins);
  g_assert_cmpint (kill (mamd_test_daemon_get_pid (d), 0), ==, 0);
  log = mamd_test_daemon_get_log (d);
  g_assert_null (strstr (log, "WARNING"));
  g_assert_null (strstr (log, "CRITICAL"));
  g_clear_pointer (&known_paths, g_ptr_array_unref);
  g_clear_pointer (&known_wipes, g_ptr_array_unref);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/mamd/dbus/random-calls", test_random_calls);
  return g_test_run ();
}
