/*
 * The strict JSON reader and strict base64url decoding behind
 * mamd-oauth-jwt.c.
 *
 * This is the sign-in hot path, so the token is read without json-glib:
 * parsing a claims set with json-glib costs as much as the RSA verification
 * itself. The reader below enforces the same strict grammar as
 * mamd_json_parse_strict() (RFC 8259, no duplicate keys, no \u0000, lone
 * surrogates or out-of-range integers, bounded depth) in one pass over the
 * decoded text, and records the top-level members as spans into it. The
 * tests check it against mamd_json_parse_strict() on mutated inputs.
 */
#include "config.h"

#include <string.h>

#include "mamd-oauth-jwt-reader.h"
#include "mamd-plugin.h"

#define JWT_MAX_DEPTH 16
/* up to this many member names per object are compared pairwise; a bigger
 * object switches to a hash set so that duplicate checks stay linear */
#define SMALL_KEYS 16
#define SHOWN_MAX 64

void
jwt_reader_member_list_init (MemberList *list, Member *buffer, guint cap)
{
  list->items = buffer;
  list->len = 0;
  list->cap = cap;
  list->heap = NULL;
}

static void
member_list_append (MemberList *list, const Member *m)
{
  if (list->len == list->cap)
    {
      Member *grown = g_new (Member, list->cap * 2);

      memcpy (grown, list->items, list->len * sizeof (Member));
      g_free (list->heap);
      list->items = list->heap = grown;
      list->cap *= 2;
    }
  list->items[list->len++] = *m;
}

void
jwt_reader_member_list_clear (MemberList *list)
{
  g_clear_pointer (&list->heap, g_free);
}

/* ---- strict base64url, table driven ---- */

static const guint8 b64url_table[256] = {
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff,
  0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
  0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0x3f,
  0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
  0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static guint8 *
b64url_invalid (const char *segment, GError **error)
{
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "malformed: the %s segment is not strict base64url "
               "(no padding, '+', '/' or whitespace)", segment);
  return NULL;
}

/* No padding, no '+' '/' '=' or whitespace, zero unused bits: exactly one
 * text per byte string (same rules as mamd_base64url_decode). Writes into
 * @out, which has B64URL_DECODED_MAX (@len) bytes. */
guint8 *
jwt_reader_b64url_decode (const char *text, gsize len, guint8 *out, gsize *out_len, const char *segment,
                          GError **error)
{
  const guchar *s = (const guchar *) text;
  gsize rest = len % 4;
  guint8 *o = out;
  guint32 a, b, c, d;

  if (rest == 1)
    return b64url_invalid (segment, error);
  for (gsize i = 0; i < len / 4; i++, s += 4)
    {
      guint32 v;

      a = b64url_table[s[0]];
      b = b64url_table[s[1]];
      c = b64url_table[s[2]];
      d = b64url_table[s[3]];
      if ((a | b | c | d) & 0x80)
        return b64url_invalid (segment, error);
      v = a << 18 | b << 12 | c << 6 | d;
      *o++ = (guint8) (v >> 16);
      *o++ = (guint8) (v >> 8);
      *o++ = (guint8) v;
    }
  if (rest > 0)
    {
      a = b64url_table[s[0]];
      b = b64url_table[s[1]];
      c = rest == 3 ? b64url_table[s[2]] : 0;
      if ((a | b | c) & 0x80)
        return b64url_invalid (segment, error);
      /* a different text must not decode to the same bytes */
      if ((rest == 2 && (b & 0x0f) != 0) || (rest == 3 && (c & 0x03) != 0))
        return b64url_invalid (segment, error);
      *o++ = (guint8) ((a << 2) | (b >> 4));
      if (rest == 3)
        *o++ = (guint8) ((b << 4) | (c >> 2));
    }
  *o = 0;
  *out_len = (gsize) (o - out);
  return out;
}

/* ---- spans ---- */

static gint
hex4 (const char *p)
{
  gint value = 0;

  for (guint i = 0; i < 4; i++)
    {
      gint digit = g_ascii_xdigit_value (p[i]);

      if (digit < 0)
        return -1;
      value = value * 16 + digit;
    }
  return value;
}

/* Decodes a string span that the reader has already validated. */
char *
jwt_reader_span_dup (const Span *span)
{
  GString *out;

  if (!span->escaped)
    return g_strndup (span->text, span->len);

  out = g_string_sized_new (span->len);
  for (gsize i = 0; i < span->len; i++)
    {
      char c = span->text[i];
      gunichar ch;

      if (c != '\\')
        {
          g_string_append_c (out, c);
          continue;
        }
      c = span->text[++i];
      switch (c)
        {
        case 'b': g_string_append_c (out, '\b'); break;
        case 'f': g_string_append_c (out, '\f'); break;
        case 'n': g_string_append_c (out, '\n'); break;
        case 'r': g_string_append_c (out, '\r'); break;
        case 't': g_string_append_c (out, '\t'); break;
        case 'u':
          ch = (gunichar) hex4 (span->text + i + 1);
          i += 4;
          if (ch >= 0xD800 && ch <= 0xDBFF)
            {
              gunichar low = (gunichar) hex4 (span->text + i + 3);

              ch = 0x10000 + ((ch - 0xD800) << 10) + (low - 0xDC00);
              i += 6;
            }
          g_string_append_unichar (out, ch);
          break;
        default: /* '"' '\\' '/' */
          g_string_append_c (out, c);
          break;
        }
    }
  return g_string_free (out, FALSE);
}

gboolean
jwt_reader_span_equal_str (const Span *span, const char *str)
{
  g_autofree char *decoded = NULL;

  if (!span->escaped)
    return strlen (str) == span->len && memcmp (span->text, str, span->len) == 0;
  decoded = jwt_reader_span_dup (span);
  return g_str_equal (decoded, str);
}

static gboolean
span_equal (const Span *a, const Span *b)
{
  g_autofree char *da = NULL;
  g_autofree char *db = NULL;

  if (!a->escaped && !b->escaped)
    return a->len == b->len && memcmp (a->text, b->text, a->len) == 0;
  da = jwt_reader_span_dup (a);
  db = jwt_reader_span_dup (b);
  return g_str_equal (da, db);
}

/* Token text is attacker-controlled (and error messages must stay valid
 * UTF-8 for D-Bus): show it only when short and plain ASCII. */
char *
jwt_reader_text_show (const char *text)
{
  if (text == NULL)
    return g_strdup ("(none)");
  if (strlen (text) > SHOWN_MAX)
    return g_strdup ("(a long value)");
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isprint (*p) || *p == '"' || *p == '\\')
      return g_strdup ("(a value with unusual characters)");
  return g_strdup_printf ("\"%s\"", text);
}

char *
jwt_reader_span_show (const Span *span)
{
  g_autofree char *decoded = jwt_reader_span_dup (span);

  return jwt_reader_text_show (decoded);
}

/* ---- the strict reader ---- */

typedef struct {
  Span small[SMALL_KEYS];
  guint n;
  GHashTable *set; /* decoded names, once the object is big */
} KeySet;

static gboolean
reader_fail (Reader *r, const char *what, GError **error)
{
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "malformed: %s: %s at byte %" G_GSIZE_FORMAT,
               r->segment, what, (gsize) (r->p - r->start));
  return FALSE;
}

void
jwt_reader_skip_ws (Reader *r)
{
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

/* Bytes that end the fast path through a string: '"', '\\', control
 * characters (refused) and non-ASCII (UTF-8 checked once at the end). */
static gboolean
ends_plain_run (guchar c)
{
  return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

static gboolean
read_string (Reader *r, Span *out, GError **error)
{
  const char *start = ++r->p; /* past the opening quote */
  gboolean escaped = FALSE, non_ascii = FALSE;

  while (r->p < r->end)
    {
      guchar c;
      gint unit;

      while (r->p < r->end && !ends_plain_run ((guchar) *r->p))
        r->p++;
      if (r->p >= r->end)
        break;
      c = (guchar) *r->p;
      if (c == '"')
        {
          out->text = start;
          out->len = (gsize) (r->p - start);
          out->escaped = escaped;
          if (non_ascii && !g_utf8_validate_len (start, out->len, NULL))
            {
              r->p = start;
              return reader_fail (r, "invalid UTF-8 in a string", error);
            }
          r->p++;
          return TRUE;
        }
      if (c < 0x20)
        return reader_fail (r, "control character in a string", error);
      r->p++;
      if (c >= 0x80)
        {
          non_ascii = TRUE;
          continue;
        }

      escaped = TRUE;
      if (r->p >= r->end)
        break;
      c = (guchar) *r->p++;
      if (c != '\0' && strchr ("\"\\/bfnrt", c) != NULL)
        continue;
      if (c != 'u')
        return reader_fail (r, "invalid escape in a string", error);
      unit = r->end - r->p >= 4 ? hex4 (r->p) : -1;
      if (unit < 0)
        return reader_fail (r, "invalid \\u escape", error);
      if (unit == 0)
        return reader_fail (r, "\\u0000 in a string", error);
      if (unit >= 0xDC00 && unit <= 0xDFFF)
        return reader_fail (r, "lone low surrogate in a string", error);
      r->p += 4;
      if (unit >= 0xD800 && unit <= 0xDBFF)
        {
          gint low = -1;

          if (r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u')
            low = hex4 (r->p + 2);
          if (low < 0xDC00 || low > 0xDFFF)
            return reader_fail (r, "lone high surrogate in a string", error);
          r->p += 6;
        }
    }
  return reader_fail (r, "unterminated string", error);
}

static gboolean
read_digits (Reader *r, guint64 *magnitude, gboolean *overflow)
{
  const char *start = r->p;

  for (; r->p < r->end && g_ascii_isdigit (*r->p); r->p++)
    {
      guint digit = (guint) (*r->p - '0');

      if (*magnitude > (G_MAXUINT64 - digit) / 10)
        *overflow = TRUE;
      else
        *magnitude = *magnitude * 10 + digit;
    }
  return r->p > start;
}

static gboolean
read_number (Reader *r, Member *m, GError **error)
{
  const char *start = r->p;
  gboolean negative = FALSE, overflow = FALSE;
  guint64 magnitude = 0, ignored = 0;

  if (*r->p == '-')
    {
      negative = TRUE;
      r->p++;
    }
  if (r->p < r->end && *r->p == '0')
    {
      r->p++;
      if (r->p < r->end && g_ascii_isdigit (*r->p))
        return reader_fail (r, "number with a leading zero", error);
    }
  else if (!read_digits (r, &magnitude, &overflow))
    return reader_fail (r, "expected a digit", error);

  m->type = VALUE_INTEGER;
  if (r->p < r->end && *r->p == '.')
    {
      r->p++;
      m->type = VALUE_FLOAT;
      if (!read_digits (r, &ignored, &overflow))
        return reader_fail (r, "expected a digit after '.'", error);
    }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
    {
      r->p++;
      m->type = VALUE_FLOAT;
      if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
        r->p++;
      if (!read_digits (r, &ignored, &overflow))
        return reader_fail (r, "expected a digit in the exponent", error);
    }

  if (m->type == VALUE_INTEGER)
    {
      if (overflow || magnitude > (guint64) G_MAXINT64 + (negative ? 1 : 0))
        {
          r->p = start;
          return reader_fail (r, "integer out of range", error);
        }
      m->integer = negative ? (gint64) (0 - magnitude) : (gint64) magnitude;
    }
  return TRUE;
}

static gboolean
read_literal (Reader *r, Member *m, GError **error)
{
  static const struct { const char *text; ValueType type; } literals[] = {
    { "true", VALUE_BOOL }, { "false", VALUE_BOOL }, { "null", VALUE_NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (literals); i++)
    {
      gsize n = strlen (literals[i].text);

      if ((gsize) (r->end - r->p) >= n && memcmp (r->p, literals[i].text, n) == 0)
        {
          r->p += n;
          m->type = literals[i].type;
          return TRUE;
        }
    }
  return reader_fail (r, "expected a value", error);
}

/* FALSE when @name is already in @keys. */
static gboolean
keyset_add (KeySet *keys, const Span *name)
{
  char *decoded;

  if (keys->set == NULL && keys->n < SMALL_KEYS)
    {
      for (guint i = 0; i < keys->n; i++)
        if (span_equal (&keys->small[i], name))
          return FALSE;
      keys->small[keys->n++] = *name;
      return TRUE;
    }
  if (keys->set == NULL)
    {
      keys->set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      for (guint i = 0; i < keys->n; i++)
        g_hash_table_add (keys->set, jwt_reader_span_dup (&keys->small[i]));
    }
  decoded = jwt_reader_span_dup (name);
  if (g_hash_table_contains (keys->set, decoded))
    {
      g_free (decoded);
      return FALSE;
    }
  g_hash_table_add (keys->set, decoded);
  return TRUE;
}

static gboolean
read_members (Reader *r, KeySet *keys, GError **error)
{
  jwt_reader_skip_ws (r);
  if (r->p < r->end && *r->p == '}')
    {
      r->p++;
      return TRUE;
    }
  for (;;)
    {
      Member m = { { 0 } };
      const char *name_start;

      jwt_reader_skip_ws (r);
      if (r->p >= r->end || *r->p != '"')
        return reader_fail (r, "expected a member name", error);
      name_start = r->p;
      if (!read_string (r, &m.name, error))
        return FALSE;
      if (!keyset_add (keys, &m.name))
        {
          g_autofree char *shown = jwt_reader_span_show (&m.name);
          g_autofree char *what = g_strdup_printf ("duplicate member %s", shown);

          r->p = name_start;
          return reader_fail (r, what, error);
        }
      jwt_reader_skip_ws (r);
      if (r->p >= r->end || *r->p != ':')
        return reader_fail (r, "expected ':'", error);
      r->p++;
      if (!jwt_reader_read_value (r, &m, error))
        return FALSE;
      if (r->depth == 1)
        member_list_append (r->members, &m);

      jwt_reader_skip_ws (r);
      if (r->p < r->end && *r->p == ',')
        {
          r->p++;
          continue;
        }
      if (r->p < r->end && *r->p == '}')
        {
          r->p++;
          return TRUE;
        }
      return reader_fail (r, "expected ',' or '}'", error);
    }
}

static gboolean
read_elements (Reader *r, GError **error)
{
  jwt_reader_skip_ws (r);
  if (r->p < r->end && *r->p == ']')
    {
      r->p++;
      return TRUE;
    }
  for (;;)
    {
      Member element = { { 0 } };

      if (!jwt_reader_read_value (r, &element, error))
        return FALSE;
      jwt_reader_skip_ws (r);
      if (r->p < r->end && *r->p == ',')
        {
          r->p++;
          continue;
        }
      if (r->p < r->end && *r->p == ']')
        {
          r->p++;
          return TRUE;
        }
      return reader_fail (r, "expected ',' or ']'", error);
    }
}

static gboolean
read_container (Reader *r, Member *m, GError **error)
{
  gboolean is_object = (*r->p == '{');
  gboolean ok;

  if (r->depth >= JWT_MAX_DEPTH)
    return reader_fail (r, "nesting deeper than 16", error);
  r->depth++;
  r->p++;
  m->type = is_object ? VALUE_OBJECT : VALUE_ARRAY;
  if (is_object)
    {
      KeySet keys = { { { 0 } } };

      ok = read_members (r, &keys, error);
      g_clear_pointer (&keys.set, g_hash_table_unref);
    }
  else
    ok = read_elements (r, error);
  r->depth--;
  return ok;
}

gboolean
jwt_reader_read_value (Reader *r, Member *m, GError **error)
{
  const char *start;
  gboolean ok;

  jwt_reader_skip_ws (r);
  if (r->p >= r->end)
    return reader_fail (r, "expected a value", error);
  start = r->p;
  switch (*r->p)
    {
    case '{':
    case '[':
      ok = read_container (r, m, error);
      break;
    case '"':
      m->type = VALUE_STRING;
      return read_string (r, &m->value, error);
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      ok = read_number (r, m, error);
      break;
    default:
      ok = read_literal (r, m, error);
      break;
    }
  m->value.text = start;
  m->value.len = (gsize) (r->p - start);
  m->value.escaped = FALSE;
  return ok;
}

/* Reads one JSON object (the whole text) into @members. */
gboolean
jwt_reader_read_object_text (const char *text, gsize len, const char *segment, MemberList *members,
                             GError **error)
{
  Reader r = { text, text, text + len, segment, 0, members };
  Member root = { { 0 } };

  /* no UTF-8 check of the whole text: outside strings the grammar allows
   * only ASCII, and read_string () checks strings with other bytes */
  jwt_reader_skip_ws (&r);
  if (r.p >= r.end || *r.p != '{')
    return reader_fail (&r, "not a JSON object", error);
  if (!jwt_reader_read_value (&r, &root, error))
    return FALSE;
  jwt_reader_skip_ws (&r);
  if (r.p != r.end)
    return reader_fail (&r, "trailing data after the object", error);
  return TRUE;
}

const Member *
jwt_reader_find_member (const MemberList *members, const char *name)
{
  gsize n = strlen (name);

  for (guint i = 0; i < members->len; i++)
    {
      const Member *m = &members->items[i];

      if (m->name.escaped ? jwt_reader_span_equal_str (&m->name, name)
          : m->name.len == n && memcmp (m->name.text, name, n) == 0)
        return m;
    }
  return NULL;
}
