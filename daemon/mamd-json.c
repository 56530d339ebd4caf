#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mamd-json.h"
#include "mamd-plugin.h"

/* ---- the validating scanner ---- */

typedef struct {
  gboolean is_object;
  GHashTable *keys; /* decoded member names seen so far, objects only */
} Frame;

typedef struct {
  const char *data;
  gsize len;
  gsize pos;
  guint max_depth;
  GArray *stack; /* Frame */
} Scanner;

static void
frame_clear (gpointer data)
{
  Frame *frame = data;

  g_clear_pointer (&frame->keys, g_hash_table_unref);
}

static gboolean
scan_fail (Scanner *s, GError **error, const char *what)
{
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
               "%s at byte %" G_GSIZE_FORMAT, what, s->pos);
  return FALSE;
}

static gboolean
scan_unexpected (Scanner *s, GError **error, const char *expected)
{
  g_autofree char *what = NULL;

  if (s->pos >= s->len)
    what = g_strdup_printf ("unexpected end of input, expected %s", expected);
  else if (s->data[s->pos] == '\'')
    what = g_strdup_printf ("single quotes are not JSON, expected %s", expected);
  else if (g_ascii_isprint (s->data[s->pos]))
    what = g_strdup_printf ("unexpected character '%c', expected %s", s->data[s->pos], expected);
  else
    what = g_strdup_printf ("unexpected byte 0x%02x, expected %s",
                            (guint) (guchar) s->data[s->pos], expected);
  return scan_fail (s, error, what);
}

static void
skip_ws (Scanner *s)
{
  while (s->pos < s->len)
    {
      char c = s->data[s->pos];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
        break;
      s->pos++;
    }
}

static gboolean
peek_is (Scanner *s, char c)
{
  return s->pos < s->len && s->data[s->pos] == c;
}

static gint
read_hex4 (Scanner *s)
{
  gint value = 0;

  if (s->len - s->pos < 4)
    return -1;
  for (guint i = 0; i < 4; i++)
    {
      gint digit = g_ascii_xdigit_value (s->data[s->pos + i]);
      if (digit < 0)
        return -1;
      value = value * 16 + digit;
    }
  s->pos += 4;
  return value;
}

/* Scans a string starting at '"'. When @decoded is set, appends the decoded
 * value (member names must be compared decoded: "a" and "\u0061" are the
 * same key). */
static gboolean
scan_string (Scanner *s, GString *decoded, GError **error)
{
  if (!peek_is (s, '"'))
    return scan_unexpected (s, error, "a string");
  s->pos++;

  while (s->pos < s->len)
    {
      guchar c = s->data[s->pos];

      if (c == '"')
        {
          s->pos++;
          return TRUE;
        }
      if (c < 0x20)
        return scan_fail (s, error, "unescaped control character in string");
      if (c != '\\')
        {
          if (decoded != NULL)
            g_string_append_c (decoded, (char) c);
          s->pos++;
          continue;
        }

      s->pos++;
      if (s->pos >= s->len)
        break;
      c = s->data[s->pos++];
      switch (c)
        {
        case '"': case '\\': case '/':
          if (decoded != NULL)
            g_string_append_c (decoded, (char) c);
          break;
        case 'b': if (decoded != NULL) g_string_append_c (decoded, '\b'); break;
        case 'f': if (decoded != NULL) g_string_append_c (decoded, '\f'); break;
        case 'n': if (decoded != NULL) g_string_append_c (decoded, '\n'); break;
        case 'r': if (decoded != NULL) g_string_append_c (decoded, '\r'); break;
        case 't': if (decoded != NULL) g_string_append_c (decoded, '\t'); break;
        case 'u':
          {
            gint unit = read_hex4 (s);
            gunichar ch;

            if (unit < 0)
              return scan_fail (s, error, "invalid \\u escape");
            if (unit == 0)
              return scan_fail (s, error, "\\u0000 in string");
            if (unit >= 0xDC00 && unit <= 0xDFFF)
              return scan_fail (s, error, "lone low surrogate in string");
            ch = (gunichar) unit;
            if (unit >= 0xD800 && unit <= 0xDBFF)
              {
                gint low;

                if (s->len - s->pos < 2 || s->data[s->pos] != '\\' || s->data[s->pos + 1] != 'u')
                  return scan_fail (s, error, "lone high surrogate in string");
                s->pos += 2;
                low = read_hex4 (s);
                if (low < 0xDC00 || low > 0xDFFF)
                  return scan_fail (s, error, "lone high surrogate in string");
                ch = 0x10000 + (((gunichar) unit - 0xD800) << 10) + ((gunichar) low - 0xDC00);
              }
            if (decoded != NULL)
              g_string_append_unichar (decoded, ch);
            break;
          }
        default:
          s->pos--;
          return scan_fail (s, error, "invalid escape in string");
        }
    }

  return scan_fail (s, error, "unterminated string");
}

static gboolean
scan_digits (Scanner *s)
{
  gsize start = s->pos;

  while (s->pos < s->len && g_ascii_isdigit (s->data[s->pos]))
    s->pos++;
  return s->pos > start;
}

static gboolean
scan_number (Scanner *s, GError **error)
{
  gsize start = s->pos;
  gboolean is_integer = TRUE;

  if (peek_is (s, '-'))
    s->pos++;
  if (peek_is (s, '0'))
    {
      s->pos++;
      if (s->pos < s->len && (g_ascii_isdigit (s->data[s->pos]) ||
                              s->data[s->pos] == 'x' || s->data[s->pos] == 'X'))
        return scan_fail (s, error, "leading zeros and hex numbers are not JSON");
    }
  else if (!scan_digits (s))
    return scan_unexpected (s, error, "a digit");

  if (peek_is (s, '.'))
    {
      s->pos++;
      is_integer = FALSE;
      if (!scan_digits (s))
        return scan_unexpected (s, error, "a digit after '.'");
    }
  if (peek_is (s, 'e') || peek_is (s, 'E'))
    {
      s->pos++;
      is_integer = FALSE;
      if (peek_is (s, '+') || peek_is (s, '-'))
        s->pos++;
      if (!scan_digits (s))
        return scan_unexpected (s, error, "a digit in the exponent");
    }

  /* json-glib would silently wrap integers that do not fit a gint64 */
  if (is_integer)
    {
      g_autofree char *text = g_strndup (s->data + start, s->pos - start);
      gint64 value;

      if (!g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, &value, NULL))
        {
          s->pos = start;
          return scan_fail (s, error, "integer out of range");
        }
    }
  return TRUE;
}

static gboolean
scan_literal (Scanner *s, GError **error)
{
  static const char *const literals[] = { "true", "false", "null" };

  for (guint i = 0; i < G_N_ELEMENTS (literals); i++)
    {
      gsize n = strlen (literals[i]);

      if (s->len - s->pos >= n && memcmp (s->data + s->pos, literals[i], n) == 0)
        {
          s->pos += n;
          return TRUE;
        }
    }
  return scan_unexpected (s, error, "a value");
}

static gboolean
push_frame (Scanner *s, gboolean is_object, GError **error)
{
  Frame frame = { is_object, NULL };

  if (s->stack->len >= s->max_depth)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "nesting deeper than %u at byte %" G_GSIZE_FORMAT, s->max_depth, s->pos);
      return FALSE;
    }
  if (is_object)
    frame.keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_array_append_val (s->stack, frame);
  s->pos++;
  return TRUE;
}

static void
pop_frame (Scanner *s)
{
  g_array_set_size (s->stack, s->stack->len - 1);
  s->pos++;
}

/* Scans `"name" :` inside the innermost object and records the name. */
static gboolean
scan_member_name (Scanner *s, GError **error)
{
  Frame *frame = &g_array_index (s->stack, Frame, s->stack->len - 1);
  g_autoptr(GString) name = g_string_new (NULL);
  gsize start = s->pos;

  skip_ws (s);
  if (!scan_string (s, name, error))
    return FALSE;
  if (g_hash_table_contains (frame->keys, name->str))
    {
      g_autofree char *shown = g_strescape (name->str, NULL);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "duplicate key \"%s\" at byte %" G_GSIZE_FORMAT, shown, start);
      return FALSE;
    }
  g_hash_table_add (frame->keys, g_string_free (g_steal_pointer (&name), FALSE));
  skip_ws (s);
  if (!peek_is (s, ':'))
    return scan_unexpected (s, error, "':'");
  s->pos++;
  return TRUE;
}

/* Scans the start of a value. A scalar or an empty container is consumed
 * whole (*need_value FALSE); a non-empty container is opened and, for an
 * object, its first member name read (*need_value TRUE). */
static gboolean
scan_value_start (Scanner *s, gboolean *need_value, GError **error)
{
  char c;

  skip_ws (s);
  if (s->pos >= s->len)
    return scan_unexpected (s, error, "a value");
  c = s->data[s->pos];
  *need_value = FALSE;

  if (c == '{' || c == '[')
    {
      gboolean is_object = (c == '{');

      if (!push_frame (s, is_object, error))
        return FALSE;
      skip_ws (s);
      if (peek_is (s, is_object ? '}' : ']'))
        {
          pop_frame (s);
          return TRUE;
        }
      *need_value = TRUE;
      return is_object ? scan_member_name (s, error) : TRUE;
    }
  if (c == '"')
    return scan_string (s, NULL, error);
  if (c == '-' || g_ascii_isdigit (c))
    return scan_number (s, error);
  return scan_literal (s, error);
}

static gboolean
scan_document (Scanner *s, GError **error)
{
  gboolean need_value = TRUE;

  for (;;)
    {
      Frame *frame;

      if (need_value)
        {
          if (!scan_value_start (s, &need_value, error))
            return FALSE;
          continue;
        }

      skip_ws (s);
      if (s->stack->len == 0)
        break;
      frame = &g_array_index (s->stack, Frame, s->stack->len - 1);
      if (peek_is (s, ','))
        {
          s->pos++;
          need_value = TRUE;
          if (frame->is_object && !scan_member_name (s, error))
            return FALSE;
        }
      else if (peek_is (s, frame->is_object ? '}' : ']'))
        pop_frame (s);
      else
        return scan_unexpected (s, error, frame->is_object ? "',' or '}'" : "',' or ']'");
    }

  if (s->pos != s->len)
    return scan_fail (s, error, "trailing data after the JSON value");
  return TRUE;
}

JsonNode *
mamd_json_parse_strict (const char *data, gsize len, gsize max_len, guint max_depth,
                        GError **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GArray) stack = NULL;
  g_autoptr(GError) local_error = NULL;
  Scanner s = { data, len, 0, max_depth, NULL };
  const char *nul;
  const char *bad_utf8 = NULL;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  if (len > max_len)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "document of %" G_GSIZE_FORMAT " bytes is larger than %" G_GSIZE_FORMAT,
                   len, max_len);
      return NULL;
    }
  nul = len > 0 ? memchr (data, '\0', len) : NULL;
  if (nul != NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "NUL byte at byte %" G_GSIZE_FORMAT, (gsize) (nul - data));
      return NULL;
    }
  if (!g_utf8_validate_len (data, len, &bad_utf8))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "invalid UTF-8 at byte %" G_GSIZE_FORMAT, (gsize) (bad_utf8 - data));
      return NULL;
    }

  stack = g_array_new (FALSE, FALSE, sizeof (Frame));
  g_array_set_clear_func (stack, frame_clear);
  s.stack = stack;
  if (!scan_document (&s, error))
    return NULL;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      /* the scanner should have caught everything json-glib refuses */
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "malformed JSON: %s", local_error->message);
      return NULL;
    }
  return json_parser_steal_root (parser);
}

JsonNode *
mamd_json_parse_strict_object (const char *data, gsize len, gsize max_len, guint max_depth,
                               GError **error)
{
  g_autoptr(JsonNode) root = mamd_json_parse_strict (data, len, max_len, max_depth, error);

  if (root == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS, "not a JSON object");
      return NULL;
    }
  return g_steal_pointer (&root);
}

/* ---- typed getters ---- */

static gboolean
get_member (JsonObject *object, const char *member, gboolean required, JsonNode **out,
            GError **error)
{
  *out = object != NULL ? json_object_get_member (object, member) : NULL;
  if (*out == NULL && required)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "member \"%s\" is missing", member);
      return FALSE;
    }
  return TRUE;
}

static gboolean
wrong_type (const char *member, const char *expected, GError **error)
{
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
               "member \"%s\" must be %s", member, expected);
  return FALSE;
}

static gboolean
node_holds (JsonNode *node, GType type)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

gboolean
mamd_json_object_get_string (JsonObject *object, const char *member, gboolean required,
                             const char **out, GError **error)
{
  JsonNode *node;

  if (!get_member (object, member, required, &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;
  if (!node_holds (node, G_TYPE_STRING))
    return wrong_type (member, "a string", error);
  *out = json_node_get_string (node);
  return TRUE;
}

gboolean
mamd_json_object_get_int64 (JsonObject *object, const char *member, gboolean required,
                            gint64 *out, GError **error)
{
  JsonNode *node;

  if (!get_member (object, member, required, &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;
  if (!node_holds (node, G_TYPE_INT64))
    return wrong_type (member, "an integer", error);
  *out = json_node_get_int (node);
  return TRUE;
}

gboolean
mamd_json_object_get_bool (JsonObject *object, const char *member, gboolean required,
                           gboolean *out, GError **error)
{
  JsonNode *node;

  if (!get_member (object, member, required, &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;
  if (!node_holds (node, G_TYPE_BOOLEAN))
    return wrong_type (member, "true or false", error);
  *out = json_node_get_boolean (node);
  return TRUE;
}

gboolean
mamd_json_object_get_string_array (JsonObject *object, const char *member, gboolean required,
                                   char ***out, GError **error)
{
  g_autoptr(GPtrArray) strv = NULL;
  JsonNode *node;
  JsonArray *array;

  if (!get_member (object, member, required, &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return wrong_type (member, "an array of strings", error);

  array = json_node_get_array (node);
  strv = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);

      if (!node_holds (element, G_TYPE_STRING))
        return wrong_type (member, "an array of strings", error);
      g_ptr_array_add (strv, g_strdup (json_node_get_string (element)));
    }
  g_ptr_array_add (strv, NULL);
  *out = (char **) g_ptr_array_free (g_steal_pointer (&strv), FALSE);
  return TRUE;
}

/* ---- base64url ---- */

static const char b64url_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static gint
b64url_value (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

guint8 *
mamd_base64url_decode (const char *text, gssize len, gsize *out_len, GError **error)
{
  g_autofree guint8 *out = NULL;
  gsize n, o = 0;
  guint32 acc = 0;
  guint bits = 0;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (out_len != NULL, NULL);

  n = len < 0 ? strlen (text) : (gsize) len;
  if (n % 4 == 1)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                   "invalid base64url length %" G_GSIZE_FORMAT, n);
      return NULL;
    }

  out = g_malloc (n / 4 * 3 + 3);
  for (gsize i = 0; i < n; i++)
    {
      gint v = b64url_value (text[i]);

      if (v < 0)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                       "invalid base64url character at offset %" G_GSIZE_FORMAT, i);
          return NULL;
        }
      acc = (acc << 6) | (guint32) v;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          out[o++] = (guint8) (acc >> bits);
          acc &= (1u << bits) - 1;
        }
    }
  /* a different string must not decode to the same bytes */
  if (acc != 0)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_ARGS,
                           "base64url has non-zero trailing bits");
      return NULL;
    }

  out[o] = 0;
  *out_len = o;
  return g_steal_pointer (&out);
}

char *
mamd_base64url_encode (const guint8 *data, gsize len)
{
  GString *out = g_string_sized_new (len / 3 * 4 + 4);
  guint32 acc = 0;
  guint bits = 0;

  for (gsize i = 0; i < len; i++)
    {
      acc = (acc << 8) | data[i];
      bits += 8;
      while (bits >= 6)
        {
          bits -= 6;
          g_string_append_c (out, b64url_alphabet[(acc >> bits) & 0x3f]);
        }
      acc &= (1u << bits) - 1;
    }
  if (bits > 0)
    g_string_append_c (out, b64url_alphabet[(acc << (6 - bits)) & 0x3f]);
  return g_string_free (out, FALSE);
}

/* ---- files ---- */

gboolean
mamd_file_read_bounded (const char *path, gsize max_len, char **contents, gsize *len,
                        GError **error)
{
  g_autofree char *buf = NULL;
  struct stat st;
  gsize got = 0;
  int fd;
  int saved_errno;

  /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
   * below); reads of a regular file are not affected by it */
  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
  if (fd < 0)
    {
      saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot open: %s", g_strerror (saved_errno));
      return FALSE;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a regular file");
      close (fd);
      return FALSE;
    }

  /* read one byte more than allowed: the size may change under us */
  buf = g_malloc (max_len + 2);
  while (got <= max_len)
    {
      gssize r = read (fd, buf + got, max_len + 1 - got);

      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          saved_errno = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       "cannot read: %s", g_strerror (saved_errno));
          close (fd);
          return FALSE;
        }
      if (r == 0)
        break;
      got += (gsize) r;
    }
  close (fd);

  if (got > max_len)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                   "larger than %" G_GSIZE_FORMAT " bytes", max_len);
      return FALSE;
    }
  buf[got] = '\0';
  *contents = g_steal_pointer (&buf);
  if (len != NULL)
    *len = got;
  return TRUE;
}
