/*
 * mamctl output: aligned tables and key/value lists for people, JSON for
 * programs. JSON keys are exactly the D-Bus dict keys, so scripts written
 * against `mamctl --json` and against the D-Bus API read the same names.
 */
#include "config.h"

#include <string.h>

#include "mamctl.h"

struct _MamctlTable {
  guint n_columns;
  GPtrArray *rows; /* GStrv, the first one the headers */
};

MamctlTable *
mamctl_table_new (const char *const *headers)
{
  MamctlTable *table = g_new0 (MamctlTable, 1);

  table->n_columns = g_strv_length ((char **) headers);
  table->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  g_ptr_array_add (table->rows, g_strdupv ((char **) headers));
  return table;
}

void
mamctl_table_add_row (MamctlTable *table, const char *const *cells)
{
  char **row = g_new0 (char *, table->n_columns + 1);
  guint i;

  /* cells are shown as mamd sent them, control characters made visible */
  for (i = 0; i < table->n_columns; i++)
    row[i] = mamctl_escape (cells[i]);
  g_ptr_array_add (table->rows, row);
}

void
mamctl_table_print (MamctlTable *table, FILE *out)
{
  g_autofree guint *widths = g_new0 (guint, table->n_columns);
  guint r, c;

  for (r = 0; r < table->rows->len; r++)
    {
      char **row = g_ptr_array_index (table->rows, r);
      for (c = 0; c < table->n_columns; c++)
        widths[c] = MAX (widths[c], (guint) g_utf8_strlen (row[c], -1));
    }
  for (r = 0; r < table->rows->len; r++)
    {
      char **row = g_ptr_array_index (table->rows, r);
      g_autoptr(GString) line = g_string_new (NULL);

      for (c = 0; c < table->n_columns; c++)
        {
          glong len = g_utf8_strlen (row[c], -1);

          g_string_append (line, row[c]);
          if (c + 1 < table->n_columns)
            for (; len < (glong) widths[c] + 2; len++)
              g_string_append_c (line, ' ');
        }
      /* no trailing blanks when the last cells are empty */
      while (line->len > 0 && line->str[line->len - 1] == ' ')
        g_string_truncate (line, line->len - 1);
      fprintf (out, "%s\n", line->str);
    }
  fflush (out);
}

void
mamctl_table_free (MamctlTable *table)
{
  g_ptr_array_unref (table->rows);
  g_free (table);
}

static gboolean
key_is_timestamp (const char *key)
{
  const char *const keys[] = { "created", "updated", "expires", "license-expires",
                               "Created", "Updated", NULL };

  return key != NULL && g_strv_contains (keys, key);
}

static char *
format_timestamp (gint64 value)
{
  g_autoptr(GDateTime) dt = NULL;

  if (value <= 0)
    return g_strdup ("-");
  /* the API mixes units (session times are microseconds, licence and wipe
   * times may be seconds); a seconds value above 1e14 would be a date
   * millions of years away, so the magnitude tells them apart */
  if (value > G_GINT64_CONSTANT (100000000000000))
    dt = g_date_time_new_from_unix_utc (value / G_USEC_PER_SEC);
  else
    dt = g_date_time_new_from_unix_utc (value);
  if (dt == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, value);
  return g_date_time_format (dt, "%Y-%m-%d %H:%M:%SZ");
}

char *
mamctl_format_value (const char *key, GVariant *value)
{
  g_autoptr(GVariant) inner = NULL;

  if (value == NULL)
    return g_strdup ("");
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      inner = g_variant_get_variant (value);
      return mamctl_format_value (key, inner);
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
      || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH))
    return g_variant_dup_string (value, NULL);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    return g_strdup (g_variant_get_boolean (value) ? "yes" : "no");
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    {
      if (key_is_timestamp (key))
        return format_timestamp (g_variant_get_int64 (value));
      return g_strdup_printf ("%" G_GINT64_FORMAT, g_variant_get_int64 (value));
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    return g_strdup_printf ("%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_strdup_printf ("%u", g_variant_get_uint32 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    return g_strdup_printf ("%d", g_variant_get_int32 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
    {
      g_autofree const char **strv = g_variant_get_strv (value, NULL);
      return g_strjoinv (", ", (char **) strv);
    }
  return g_variant_print (value, FALSE);
}

char *
mamctl_dict_get_string (GVariant *dict, const char *key)
{
  g_autoptr(GVariant) value = g_variant_lookup_value (dict, key, NULL);

  return mamctl_format_value (key, value);
}

static gint
compare_keys (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(const char *const *) a, *(const char *const *) b);
}

/* The keys of @dict: those of @key_order that are present, in that order,
 * then the others sorted, so output is stable whatever order mamd sends. */
static GPtrArray *
ordered_keys (GVariant *dict, const char *const *key_order)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) rest = g_ptr_array_new ();
  GVariantIter iter;
  const char *key;
  guint i;

  for (i = 0; key_order != NULL && key_order[i] != NULL; i++)
    {
      g_autoptr(GVariant) value = g_variant_lookup_value (dict, key_order[i], NULL);
      if (value != NULL)
        g_ptr_array_add (keys, g_strdup (key_order[i]));
    }
  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, NULL))
    if (key_order == NULL || !g_strv_contains (key_order, key))
      g_ptr_array_add (rest, (gpointer) key);
  g_ptr_array_sort (rest, compare_keys);
  for (i = 0; i < rest->len; i++)
    g_ptr_array_add (keys, g_strdup (g_ptr_array_index (rest, i)));
  return keys;
}

void
mamctl_print_dict (GVariant *dict, const char *const *key_order, FILE *out)
{
  g_autoptr(GPtrArray) keys = ordered_keys (dict, key_order);
  const char *const headers[] = { "", "", NULL };
  g_autoptr(MamctlTable) table = mamctl_table_new (headers);
  guint i;

  for (i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);
      g_autofree char *value = mamctl_dict_get_string (dict, key);
      g_autofree char *label = g_strconcat (key, ":", NULL);
      const char *const row[] = { label, *value != '\0' ? value : "-", NULL };
      mamctl_table_add_row (table, row);
    }
  /* a key/value list has no header line */
  g_ptr_array_remove_index (table->rows, 0);
  mamctl_table_print (table, out);
}

JsonNode *
mamctl_dict_to_json (GVariant *dict)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(GPtrArray) keys = ordered_keys (dict, NULL);
  JsonNode *node;
  guint i;

  for (i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);
      g_autoptr(GVariant) value = g_variant_lookup_value (dict, key, NULL);
      json_object_set_member (object, key, json_gvariant_serialize (value));
    }
  node = json_node_new (JSON_NODE_OBJECT);
  json_node_set_object (node, object);
  return node;
}

void
mamctl_print_json_node (JsonNode *node, gboolean pretty, FILE *out)
{
  g_autoptr(JsonGenerator) generator = json_generator_new ();
  g_autofree char *text = NULL;

  json_generator_set_pretty (generator, pretty);
  json_generator_set_root (generator, node);
  text = json_generator_to_data (generator, NULL);
  fprintf (out, "%s\n", text);
  fflush (out);
}

void
mamctl_print_json_dict (GVariant *dict, FILE *out)
{
  g_autoptr(JsonNode) node = mamctl_dict_to_json (dict);

  mamctl_print_json_node (node, TRUE, out);
}

void
mamctl_print_json_dict_array (GVariant *dicts, FILE *out)
{
  g_autoptr(JsonArray) array = json_array_new ();
  g_autoptr(JsonNode) node = json_node_new (JSON_NODE_ARRAY);
  GVariantIter iter;
  GVariant *dict;

  g_variant_iter_init (&iter, dicts);
  while ((dict = g_variant_iter_next_value (&iter)) != NULL)
    {
      json_array_add_element (array, mamctl_dict_to_json (dict));
      g_variant_unref (dict);
    }
  json_node_set_array (node, array);
  mamctl_print_json_node (node, TRUE, out);
}

/* Characters a terminal acts on instead of showing: C0, DEL and C1 controls
 * (escape sequences, line breaks, CSI), and the line/paragraph separators
 * and bidi controls that break or reorder a line, so that a value could
 * pass for another one or for a row of its own. */
static gboolean
unichar_is_unsafe (gunichar c)
{
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
    return TRUE;
  return c == 0x2028 || c == 0x2029 || c == 0x061c || c == 0x200e || c == 0x200f
         || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

static const char *
named_escape (gunichar c)
{
  static const struct {
    gunichar c;
    const char *escape;
  } names[] = {
    { '\a', "\\a" }, { '\b', "\\b" }, { '\t', "\\t" }, { '\n', "\\n" }, { '\v', "\\v" },
    { '\f', "\\f" }, { '\r', "\\r" }, { 0x1b, "\\e" }, { '\\', "\\\\" },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (names); i++)
    if (names[i].c == c)
      return names[i].escape;
  return NULL;
}

/* The one place that knows about control characters: every string mamd
 * sends that mamctl prints for people goes through here. A backslash is
 * doubled, so what is shown reads back unambiguously; bytes that are not
 * UTF-8 become \xNN too (mamd's strings are UTF-8, a local config file's
 * text need not be). With @in_quotes, '"' becomes \" as well. */
static void
append_escaped (GString *s, const char *value, gboolean in_quotes)
{
  const char *p = value;
  const char *end = value + strlen (value);

  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);
      const char *next;
      const char *named;

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          g_string_append_printf (s, "\\x%02x", (guchar) *p);
          p++;
          continue;
        }
      next = g_utf8_next_char (p);
      named = named_escape (c);
      if (named != NULL)
        g_string_append (s, named);
      else if (c == '"' && in_quotes)
        g_string_append (s, "\\\"");
      else if (c < 0x80 && unichar_is_unsafe (c))
        g_string_append_printf (s, "\\x%02x", (guint) c);
      else if (unichar_is_unsafe (c))
        g_string_append_printf (s, "\\u{%x}", (guint) c);
      else
        g_string_append_len (s, p, next - p);
      p = next;
    }
}

static gboolean
needs_escape (const char *value)
{
  const char *p;

  for (p = value; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char_validated (p, -1);
      if (c == (gunichar) -1 || c == (gunichar) -2)
        return TRUE;
      if (c == '\\' || unichar_is_unsafe (c))
        return TRUE;
    }
  return FALSE;
}

char *
mamctl_escape (const char *value)
{
  GString *s;

  if (value == NULL)
    return g_strdup ("");
  if (!needs_escape (value))
    return g_strdup (value);
  s = g_string_new (NULL);
  append_escaped (s, value, FALSE);
  return g_string_free (s, FALSE);
}

/* logfmt-style: bare when safe, else double-quoted and escaped as
 * mamctl_escape does, with \" for a quote */
char *
mamctl_logfmt_quote (const char *value)
{
  GString *s;
  const char *p;
  gboolean bare = *value != '\0' && !needs_escape (value);

  for (p = value; *p != '\0' && bare; p++)
    if (g_ascii_isspace (*p) || *p == '"' || *p == '=')
      bare = FALSE;
  if (bare)
    return g_strdup (value);

  s = g_string_new ("\"");
  append_escaped (s, value, TRUE);
  g_string_append_c (s, '"');
  return g_string_free (s, FALSE);
}
