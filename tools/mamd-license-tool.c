/*
 * mamd-license-tool: makes signing keys and signed licences for tests and
 * the demo. Not installed: real licences are signed elsewhere.
 *
 * Exit status: 0 success, 1 the operation failed, 2 usage error.
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "mamd-license.h"
#include "mamd-plugin.h"

#define EXIT_USAGE 2

static const char summary[] =
  "Commands:\n"
  "  generate-key PRIVATE.pem PUBLIC.pem\n"
  "      Write a new Ed25519 key pair (the private key with mode 0600).\n"
  "  sign --key PRIVATE.pem --sku SKU --licensee NAME\n"
  "       [--expires YYYY-MM-DD | --days N] [--servers a,b] [--id ID] --output FILE\n"
  "      Write a signed licence. --expires is midnight UTC of that day;\n"
  "      --days counts from now (default 365). Without --servers the licence\n"
  "      covers every server.\n"
  "  verify --public-key PUBLIC.pem FILE\n"
  "      Check the signature and print the licence fields.\n"
  "\n"
  "Run 'mamd-license-tool COMMAND --help' for the options of a command.\n"
  "Exit status: 0 success, 1 failure, 2 usage error.";

static int
usage_error (GOptionContext *context, const char *message)
{
  g_autofree char *help = context != NULL ? g_option_context_get_help (context, TRUE, NULL) : NULL;

  g_printerr ("mamd-license-tool: %s\n", message);
  if (help != NULL)
    g_printerr ("\n%s", help);
  else
    g_printerr ("Try 'mamd-license-tool --help'.\n");
  return EXIT_USAGE;
}

static int
fail (const char *what, const GError *error)
{
  g_printerr ("mamd-license-tool: %s: %s\n", what, error->message);
  return EXIT_FAILURE;
}

static gboolean
parse_args (GOptionContext *context, int *argc, char ***argv, int *status)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse (context, argc, argv, &error))
    {
      *status = usage_error (context, error->message);
      return FALSE;
    }
  return TRUE;
}

static int
cmd_generate_key (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("PRIVATE.pem PUBLIC.pem");
  g_autoptr(GError) error = NULL;
  int status = 0;

  g_option_context_set_summary (context, "Write a new Ed25519 licence signing key pair.");
  if (!parse_args (context, &argc, &argv, &status))
    return status;
  if (argc != 3)
    return usage_error (context, "generate-key needs PRIVATE.pem and PUBLIC.pem");
  if (!mamd_license_generate_key (argv[1], argv[2], &error))
    return fail ("generate-key", error);
  return EXIT_SUCCESS;
}

/* Midnight UTC of a YYYY-MM-DD date. */
static gboolean
parse_date (const char *text, gint64 *out)
{
  g_autoptr(GDateTime) dt = NULL;
  guint year, month, day;
  char tail;

  if (strlen (text) != 10 || sscanf (text, "%4u-%2u-%2u%c", &year, &month, &day, &tail) != 3 ||
      text[4] != '-' || text[7] != '-')
    return FALSE;
  dt = g_date_time_new_utc ((gint) year, (gint) month, (gint) day, 0, 0, 0);
  if (dt == NULL)
    return FALSE;
  *out = g_date_time_to_unix (dt);
  return TRUE;
}

static char *
build_payload (const char *id, const char *licensee, const char *sku, gint64 issued_at,
               gint64 expires_at, char **servers)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "id");
  json_builder_add_string_value (builder, id);
  json_builder_set_member_name (builder, "licensee");
  json_builder_add_string_value (builder, licensee);
  json_builder_set_member_name (builder, "sku_short_name");
  json_builder_add_string_value (builder, sku);
  json_builder_set_member_name (builder, "issued_at");
  json_builder_add_int_value (builder, issued_at);
  json_builder_set_member_name (builder, "expires_at");
  json_builder_add_int_value (builder, expires_at);
  if (servers != NULL)
    {
      json_builder_set_member_name (builder, "servers");
      json_builder_begin_array (builder);
      for (guint i = 0; servers[i] != NULL; i++)
        json_builder_add_string_value (builder, servers[i]);
      json_builder_end_array (builder);
    }
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

static int
cmd_sign (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *key = NULL, *sku = NULL, *licensee = NULL, *expires = NULL;
  g_autofree char *servers = NULL, *id = NULL, *output = NULL;
  g_autofree char *payload = NULL, *license = NULL;
  g_auto(GStrv) server_list = NULL;
  gint days = -1;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 expires_at;
  int status = 0;
  const GOptionEntry entries[] = {
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key, "Ed25519 private key (PEM)", "PRIVATE.pem" },
    { "sku", 0, 0, G_OPTION_ARG_STRING, &sku, "SKU short name, e.g. advanced", "SKU" },
    { "licensee", 0, 0, G_OPTION_ARG_STRING, &licensee, "Licensee name", "NAME" },
    { "expires", 0, 0, G_OPTION_ARG_STRING, &expires, "Expiry date (midnight UTC)", "YYYY-MM-DD" },
    { "days", 0, 0, G_OPTION_ARG_INT, &days, "Days from now until expiry (default 365)", "N" },
    { "servers", 0, 0, G_OPTION_ARG_STRING, &servers, "Comma-separated server ids covered", "a,b" },
    { "id", 0, 0, G_OPTION_ARG_STRING, &id, "Licence id (default: a random UUID)", "ID" },
    { "output", 0, 0, G_OPTION_ARG_FILENAME, &output, "Where to write the licence", "FILE" },
    { NULL }
  };

  g_option_context_set_summary (context, "Write a signed licence.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!parse_args (context, &argc, &argv, &status))
    return status;
  if (argc != 1)
    return usage_error (context, "sign takes no positional arguments");
  if (key == NULL || sku == NULL || licensee == NULL || output == NULL)
    return usage_error (context, "sign needs --key, --sku, --licensee and --output");
  if (expires != NULL && days != -1)
    return usage_error (context, "use --expires or --days, not both");

  if (expires != NULL)
    {
      if (!parse_date (expires, &expires_at))
        return usage_error (context, "--expires must be a date YYYY-MM-DD");
    }
  else
    {
      if (days == -1)
        days = 365;
      if (days < 1)
        return usage_error (context, "--days must be at least 1 (use --expires for a past date)");
      expires_at = now + (gint64) days * 24 * 3600;
    }
  if (servers != NULL)
    {
      server_list = g_strsplit (servers, ",", -1);
      for (guint i = 0; server_list[i] != NULL; i++)
        if (*server_list[i] == '\0')
          return usage_error (context, "--servers has an empty server id");
    }
  if (id == NULL)
    id = g_uuid_string_random ();

  /* a licence must be issued before it expires, even one made to test expiry */
  payload = build_payload (id, licensee, sku, MIN (now, expires_at - 1), expires_at, server_list);
  license = mamd_license_sign (payload, key, &error);
  if (license == NULL)
    return fail ("sign", error);
  if (!g_file_set_contents_full (output, license, -1,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0644, &error))
    return fail ("sign", error);
  return EXIT_SUCCESS;
}

static char *
format_time (gint64 unix_seconds)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_seconds);

  return dt != NULL ? g_date_time_format_iso8601 (dt) : g_strdup ("(out of range)");
}

static int
cmd_verify (int argc, char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("FILE");
  g_autoptr(GError) error = NULL;
  g_autoptr(MamdLicense) license = NULL;
  g_autofree char *public_key = NULL;
  g_autofree char *issued = NULL, *expires = NULL, *servers = NULL;
  int status = 0;
  const GOptionEntry entries[] = {
    { "public-key", 0, 0, G_OPTION_ARG_FILENAME, &public_key, "Ed25519 public key (PEM)",
      "PUBLIC.pem" },
    { NULL }
  };

  g_option_context_set_summary (context, "Verify a licence and print its fields.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!parse_args (context, &argc, &argv, &status))
    return status;
  if (public_key == NULL || argc != 2)
    return usage_error (context, "verify needs --public-key PUBLIC.pem and one FILE");

  license = mamd_license_load (argv[1], public_key, &error);
  if (license == NULL)
    return fail ("verify", error);

  issued = format_time (license->issued_at);
  expires = format_time (license->expires_at);
  servers = license->servers != NULL ? g_strjoinv (",", license->servers) : g_strdup ("(all)");
  g_print ("id: %s\nlicensee: %s\nsku: %s\nissued_at: %s\nexpires_at: %s\nservers: %s\n",
           license->id, license->licensee, license->sku_short_name, issued, expires, servers);
  return EXIT_SUCCESS;
}

int
main (int argc, char **argv)
{
  const char *command;

  setlocale (LC_ALL, "");
  if (argc < 2)
    return usage_error (NULL, "no command given");
  command = argv[1];
  if (g_str_equal (command, "--help") || g_str_equal (command, "-h") ||
      g_str_equal (command, "help"))
    {
      g_print ("Usage: mamd-license-tool COMMAND [OPTIONS...]\n\n%s\n", summary);
      return EXIT_SUCCESS;
    }

  if (!g_str_equal (command, "generate-key") && !g_str_equal (command, "sign") &&
      !g_str_equal (command, "verify"))
    return usage_error (NULL, "unknown command (use generate-key, sign or verify)");

  /* hand the command its own argv, named after it for --help; the string
   * lives as long as the process */
  argv[1] = g_strdup_printf ("mamd-license-tool %s", command);
  if (g_str_equal (command, "generate-key"))
    return cmd_generate_key (argc - 1, argv + 1);
  if (g_str_equal (command, "sign"))
    return cmd_sign (argc - 1, argv + 1);
  return cmd_verify (argc - 1, argv + 1);
}
