/*
 * Access-token validation: compact JWS (RFC 7515) under the RFC 8725 rules.
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

#include <openssl/err.h>

#include "mamd-oauth-jwt.h"

#define JWT_MAX_DEPTH 16
#define RSA_MIN_BITS 2048
/* up to this many member names per object are compared pairwise; a bigger
 * object switches to a hash set so that duplicate checks stay linear */
#define SMALL_KEYS 16
#define SHOWN_MAX 64

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)

typedef enum {
  VALUE_STRING,
  VALUE_INTEGER,
  VALUE_FLOAT,
  VALUE_BOOL,
  VALUE_NULL,
  VALUE_OBJECT,
  VALUE_ARRAY,
} ValueType;

/* The raw text of a string between its quotes, or of any other value. */
typedef struct {
  const char *text;
  gsize len;
  gboolean escaped;
} Span;

typedef struct {
  Span name;
  ValueType type;
  Span value;
  gint64 integer; /* VALUE_INTEGER */
} Member;

/* A small vector: the caller's buffer first, the heap for big objects. */
typedef struct {
  Member *items;
  guint len;
  guint cap;
  Member *heap;
} MemberList;

#define CLAIMS_INLINE 32
#define HEADER_INLINE 8
#define HEADER_STACK 1024

/* One allocation holds the token: the struct, then in data[] the signing
 * input, the decoded claims (which the members point into) and the decoded
 * signature. Sign-ins are the hot path and malloc shows in the profile. */
struct _MamdJwt {
  const char *signing_input; /* "<header>.<claims>" as received: what was signed */
  gsize signing_input_len;
  const guint8 *signature;
  gsize signature_len;
  MemberList claims;
  Member claims_inline[CLAIMS_INLINE];
  char *kid;
  char *issuer; /* unverified "iss", or NULL */
  char data[];
};

static void
member_list_init (MemberList *list, Member *buffer, guint cap)
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

static void
member_list_clear (MemberList *list)
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

/* Room b64url_decode () needs for @len characters. */
#define B64URL_DECODED_MAX(len) ((len) / 4 * 3 + 3)

/* No padding, no '+' '/' '=' or whitespace, zero unused bits: exactly one
 * text per byte string (same rules as mamd_base64url_decode). Writes into
 * @out, which has B64URL_DECODED_MAX (@len) bytes. */
static guint8 *
b64url_decode (const char *text, gsize len, guint8 *out, gsize *out_len, const char *segment,
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
static char *
span_dup (const Span *span)
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

static gboolean
span_equal_str (const Span *span, const char *str)
{
  g_autofree char *decoded = NULL;

  if (!span->escaped)
    return strlen (str) == span->len && memcmp (span->text, str, span->len) == 0;
  decoded = span_dup (span);
  return g_str_equal (decoded, str);
}

static gboolean
span_equal (const Span *a, const Span *b)
{
  g_autofree char *da = NULL;
  g_autofree char *db = NULL;

  if (!a->escaped && !b->escaped)
    return a->len == b->len && memcmp (a->text, b->text, a->len) == 0;
  da = span_dup (a);
  db = span_dup (b);
  return g_str_equal (da, db);
}

/* Token text is attacker-controlled (and error messages must stay valid
 * UTF-8 for D-Bus): show it only when short and plain ASCII. */
static char *
text_show (const char *text)
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

static char *
span_show (const Span *span)
{
  g_autofree char *decoded = span_dup (span);

  return text_show (decoded);
}

/* ---- the strict reader ---- */

typedef struct {
  const char *start;
  const char *p;
  const char *end;
  const char *segment; /* "header" or "claims", for messages */
  guint depth;
  MemberList *members; /* the top-level object's members */
} Reader;

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

static void
skip_ws (Reader *r)
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
        g_hash_table_add (keys->set, span_dup (&keys->small[i]));
    }
  decoded = span_dup (name);
  if (g_hash_table_contains (keys->set, decoded))
    {
      g_free (decoded);
      return FALSE;
    }
  g_hash_table_add (keys->set, decoded);
  return TRUE;
}

static gboolean read_value (Reader *r, Member *m, GError **error);

static gboolean
read_members (Reader *r, KeySet *keys, GError **error)
{
  skip_ws (r);
  if (r->p < r->end && *r->p == '}')
    {
      r->p++;
      return TRUE;
    }
  for (;;)
    {
      Member m = { { 0 } };
      const char *name_start;

      skip_ws (r);
      if (r->p >= r->end || *r->p != '"')
        return reader_fail (r, "expected a member name", error);
      name_start = r->p;
      if (!read_string (r, &m.name, error))
        return FALSE;
      if (!keyset_add (keys, &m.name))
        {
          g_autofree char *shown = span_show (&m.name);
          g_autofree char *what = g_strdup_printf ("duplicate member %s", shown);

          r->p = name_start;
          return reader_fail (r, what, error);
        }
      skip_ws (r);
      if (r->p >= r->end || *r->p != ':')
        return reader_fail (r, "expected ':'", error);
      r->p++;
      if (!read_value (r, &m, error))
        return FALSE;
      if (r->depth == 1)
        member_list_append (r->members, &m);

      skip_ws (r);
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
  skip_ws (r);
  if (r->p < r->end && *r->p == ']')
    {
      r->p++;
      return TRUE;
    }
  for (;;)
    {
      Member element = { { 0 } };

      if (!read_value (r, &element, error))
        return FALSE;
      skip_ws (r);
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

static gboolean
read_value (Reader *r, Member *m, GError **error)
{
  const char *start;
  gboolean ok;

  skip_ws (r);
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
static gboolean
read_object_text (const char *text, gsize len, const char *segment, MemberList *members,
                  GError **error)
{
  Reader r = { text, text, text + len, segment, 0, members };
  Member root = { { 0 } };

  /* no UTF-8 check of the whole text: outside strings the grammar allows
   * only ASCII, and read_string () checks strings with other bytes */
  skip_ws (&r);
  if (r.p >= r.end || *r.p != '{')
    return reader_fail (&r, "not a JSON object", error);
  if (!read_value (&r, &root, error))
    return FALSE;
  skip_ws (&r);
  if (r.p != r.end)
    return reader_fail (&r, "trailing data after the object", error);
  return TRUE;
}

static const Member *
find_member (const MemberList *members, const char *name)
{
  gsize n = strlen (name);

  for (guint i = 0; i < members->len; i++)
    {
      const Member *m = &members->items[i];

      if (m->name.escaped ? span_equal_str (&m->name, name)
                          : m->name.len == n && memcmp (m->name.text, name, n) == 0)
        return m;
    }
  return NULL;
}

/* ---- parsing ---- */

void
mamd_jwt_free (MamdJwt *jwt)
{
  if (jwt == NULL)
    return;
  member_list_clear (&jwt->claims);
  g_free (jwt->kid);
  g_free (jwt->issuer);
  g_free (jwt);
}

static gboolean
token_fail (GError **error, const char *message)
{
  g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN, message);
  return FALSE;
}

static gboolean
check_alg (const Member *alg, GError **error)
{
  g_autofree char *shown = NULL;

  if (alg == NULL)
    return token_fail (error, "algorithm: the header has no \"alg\"; only RS256 is accepted");
  if (alg->type != VALUE_STRING)
    return token_fail (error, "algorithm: \"alg\" is not a string; only RS256 is accepted");
  if (span_equal_str (&alg->value, "RS256"))
    return TRUE;

  shown = span_show (&alg->value);
  if (alg->value.len == 4 && g_ascii_strncasecmp (alg->value.text, "none", 4) == 0)
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                 "algorithm: %s: unsigned tokens are refused; only RS256 is accepted", shown);
  else if (alg->value.len >= 2 && g_ascii_strncasecmp (alg->value.text, "HS", 2) == 0)
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                 "algorithm: %s (HMAC with a shared secret) is refused; only RS256 with the "
                 "provider's RSA keys is accepted", shown);
  else
    g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                 "algorithm: %s is refused; only RS256 is accepted", shown);
  return FALSE;
}

/* RFC 8725 rules for the JOSE header; sets jwt->kid. */
static gboolean
check_header (MamdJwt *jwt, const MemberList *header, GError **error)
{
  static const char *const embedded[] = { "jwk", "jku", "x5u", "x5c" };
  const Member *kid, *typ;

  if (!check_alg (find_member (header, "alg"), error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (embedded); i++)
    {
      if (find_member (header, embedded[i]) != NULL)
        {
          g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                       "malformed: the header carries \"%s\": keys come only from the "
                       "provider's JWKS, never from the token", embedded[i]);
          return FALSE;
        }
    }
  if (find_member (header, "crit") != NULL)
    return token_fail (error, "malformed: the header lists critical extensions (\"crit\") "
                              "and none is understood");
  typ = find_member (header, "typ");
  if (typ != NULL &&
      (typ->type != VALUE_STRING ||
       !((typ->value.len == 3 && g_ascii_strncasecmp (typ->value.text, "JWT", 3) == 0) ||
         (typ->value.len == 6 && g_ascii_strncasecmp (typ->value.text, "at+jwt", 6) == 0))))
    return token_fail (error, "malformed: the header's \"typ\" is neither JWT nor at+jwt: "
                              "not an access token");
  kid = find_member (header, "kid");
  if (kid == NULL)
    return token_fail (error, "malformed: the header has no \"kid\" naming the signing key");
  if (kid->type != VALUE_STRING || kid->value.len == 0)
    return token_fail (error, "malformed: the header's \"kid\" is not a non-empty string");
  jwt->kid = span_dup (&kid->value);
  return TRUE;
}

/* The header is only needed during parsing: decoded on the stack. */
static gboolean
parse_header (MamdJwt *jwt, const char *text, gsize len, GError **error)
{
  guint8 stack[HEADER_STACK];
  g_autofree guint8 *heap = NULL;
  guint8 *json = stack;
  Member inline_members[HEADER_INLINE];
  MemberList members;
  gsize json_len = 0;
  gboolean ok;

  if (B64URL_DECODED_MAX (len) > sizeof stack)
    json = heap = g_malloc (B64URL_DECODED_MAX (len));
  if (b64url_decode (text, len, json, &json_len, "header", error) == NULL)
    return FALSE;
  member_list_init (&members, inline_members, HEADER_INLINE);
  ok = read_object_text ((const char *) json, json_len, "header", &members, error) &&
       check_header (jwt, &members, error);
  member_list_clear (&members);
  return ok;
}

static gboolean
parse_claims (MamdJwt *jwt, const char *text, gsize len, guint8 *out, GError **error)
{
  const Member *iss;
  gsize json_len = 0;

  if (b64url_decode (text, len, out, &json_len, "claims", error) == NULL ||
      !read_object_text ((const char *) out, json_len, "claims", &jwt->claims, error))
    return FALSE;
  iss = find_member (&jwt->claims, "iss");
  if (iss != NULL && iss->type == VALUE_STRING)
    jwt->issuer = span_dup (&iss->value);
  return TRUE;
}

MamdJwt *
mamd_jwt_parse (const char *compact, GError **error)
{
  g_autoptr(MamdJwt) jwt = NULL;
  const char *dot1, *dot2, *end;
  gsize len, signing_input_len, claims_len, signature_len;
  guint8 *claims_out, *signature_out;

  g_return_val_if_fail (compact != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* the size cap comes before anything else looks at the token */
  len = strnlen (compact, MAMD_JWT_MAX_LEN + 1);
  if (len > MAMD_JWT_MAX_LEN)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "malformed: the token is longer than %d bytes", MAMD_JWT_MAX_LEN);
      return NULL;
    }
  end = compact + len;
  dot1 = memchr (compact, '.', len);
  dot2 = dot1 != NULL ? memchr (dot1 + 1, '.', (gsize) (end - dot1 - 1)) : NULL;
  if (dot2 == NULL)
    {
      token_fail (error, "malformed: not a compact JWS (three base64url segments "
                         "separated by dots)");
      return NULL;
    }
  if (memchr (dot2 + 1, '.', (gsize) (end - dot2 - 1)) != NULL)
    {
      token_fail (error, "malformed: more than three segments (an encrypted token?); "
                         "only compact JWS is accepted");
      return NULL;
    }
  if (dot1 == compact || dot2 == dot1 + 1)
    {
      token_fail (error, "malformed: empty header or claims segment");
      return NULL;
    }

  signing_input_len = (gsize) (dot2 - compact);
  claims_len = (gsize) (dot2 - dot1 - 1);
  signature_len = (gsize) (end - dot2 - 1);
  jwt = g_malloc (sizeof (MamdJwt) + signing_input_len + 1 +
                  B64URL_DECODED_MAX (claims_len) + B64URL_DECODED_MAX (signature_len));
  memset (jwt, 0, sizeof (MamdJwt));
  member_list_init (&jwt->claims, jwt->claims_inline, CLAIMS_INLINE);
  claims_out = (guint8 *) jwt->data + signing_input_len + 1;
  signature_out = claims_out + B64URL_DECODED_MAX (claims_len);

  if (!parse_header (jwt, compact, (gsize) (dot1 - compact), error))
    return NULL;
  /* after the header, so that alg "none" is refused as such */
  if (dot2 + 1 == end)
    {
      token_fail (error, "malformed: the signature segment is empty");
      return NULL;
    }
  if (!parse_claims (jwt, dot1 + 1, claims_len, claims_out, error))
    return NULL;
  jwt->signature = b64url_decode (dot2 + 1, signature_len, signature_out, &jwt->signature_len,
                                  "signature", error);
  if (jwt->signature == NULL)
    return NULL;
  memcpy (jwt->data, compact, signing_input_len);
  jwt->data[signing_input_len] = '\0';
  jwt->signing_input = jwt->data;
  jwt->signing_input_len = signing_input_len;
  return g_steal_pointer (&jwt);
}

const char *
mamd_jwt_get_kid (const MamdJwt *jwt)
{
  g_return_val_if_fail (jwt != NULL, NULL);

  return jwt->kid;
}

const char *
mamd_jwt_peek_issuer (const MamdJwt *jwt)
{
  g_return_val_if_fail (jwt != NULL, NULL);

  return jwt->issuer;
}

/* ---- verification ---- */

static gboolean
check_signature (const MamdJwt *jwt, const MamdJwk *key, GError **error)
{
  g_autoptr(EVP_MD_CTX) ctx = NULL;
  g_autofree char *kid = NULL; /* for messages only */
  gboolean ok;

  /* the algorithm is bound to the key: RS256 needs an RSA key (not RSA-PSS) */
  if (key->key == NULL || EVP_PKEY_get_base_id (key->key) != EVP_PKEY_RSA ||
      EVP_PKEY_get_bits (key->key) < RSA_MIN_BITS)
    {
      kid = text_show (key->kid);
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "signature: key %s is not an RSA key of at least %d bits",
                   kid, RSA_MIN_BITS);
      return FALSE;
    }
  if (jwt->signature_len != (gsize) EVP_PKEY_get_size (key->key))
    return token_fail (error, "signature: its length does not match the signing key");

  /* PKCS #1 v1.5 is the only padding of an EVP_PKEY_RSA key unless set
   * otherwise (PSS belongs to RSA-PSS keys, refused above), and setting it
   * again costs a parameter round trip on every sign-in */
  ctx = EVP_MD_CTX_new ();
  if (ctx == NULL ||
      EVP_DigestVerifyInit (ctx, NULL, EVP_sha256 (), NULL, key->key) != 1)
    {
      ERR_clear_error ();
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_FAILED,
                           "signature: cannot set up RS256 verification in OpenSSL");
      return FALSE;
    }
  ok = EVP_DigestVerify (ctx, jwt->signature, jwt->signature_len,
                         (const guint8 *) jwt->signing_input, jwt->signing_input_len) == 1;
  if (ok)
    return TRUE;
  ERR_clear_error ();
  kid = text_show (key->kid);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "signature: does not verify with the provider's key %s", kid);
  return FALSE;
}

/* A string claim, decoded. Absent: TRUE with *out NULL. */
static gboolean
claim_string (const MamdJwt *jwt, const char *name, char **out, GError **error)
{
  const Member *m = find_member (&jwt->claims, name);

  *out = NULL;
  if (m == NULL)
    return TRUE;
  if (m->type != VALUE_STRING)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "malformed: claim \"%s\" is not a string", name);
      return FALSE;
    }
  *out = span_dup (&m->value);
  return TRUE;
}

/* An integer claim (NumericDate). Absent: TRUE with *present FALSE. */
static gboolean
claim_integer (const MamdJwt *jwt, const char *name, gboolean *present, gint64 *out,
               GError **error)
{
  const Member *m = find_member (&jwt->claims, name);

  *present = (m != NULL);
  if (m == NULL)
    return TRUE;
  if (m->type != VALUE_INTEGER)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "malformed: claim \"%s\" is not an integer number of seconds", name);
      return FALSE;
    }
  *out = m->integer;
  return TRUE;
}

static gboolean
check_version (const MamdJwt *jwt, GError **error)
{
  const Member *m = find_member (&jwt->claims, "ver");
  g_autofree char *ver = NULL;

  if (m != NULL && m->type == VALUE_STRING && span_equal_str (&m->value, "2.0"))
    return TRUE;
  if (!claim_string (jwt, "ver", &ver, error))
    return FALSE;
  if (ver != NULL && g_str_equal (ver, "2.0"))
    return TRUE;
  if ((ver != NULL && g_str_equal (ver, "1.0")) ||
      (ver == NULL && jwt->issuer != NULL &&
       g_str_has_prefix (jwt->issuer, "https://sts.windows.net/")))
    return token_fail (error, "version: this is a v1.0 access token; set "
                              "accessTokenAcceptedVersion = 2 in the API app registration's "
                              "manifest so that Entra issues v2.0 tokens");
  if (ver == NULL)
    return token_fail (error, "version: the token has no \"ver\" claim; only v2.0 access "
                              "tokens are accepted (accessTokenAcceptedVersion = 2)");
  return token_fail (error, "version: only v2.0 access tokens are accepted; set "
                            "accessTokenAcceptedVersion = 2 in the app manifest");
}

static gboolean
check_issuer (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  g_autofree char *shown = NULL;

  if (jwt->issuer == NULL)
    {
      const Member *iss = find_member (&jwt->claims, "iss");

      if (iss != NULL)
        return token_fail (error, "malformed: claim \"iss\" is not a string");
      return token_fail (error, "issuer: the token has no \"iss\" claim");
    }
  if (g_str_equal (jwt->issuer, policy->issuer))
    return TRUE;
  shown = text_show (jwt->issuer);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "issuer: the token was issued by %s, expected \"%s\"; check Authority and TenantId",
               shown, policy->issuer);
  return FALSE;
}

/* *tid_out: the canonical tenant, owned by *tid_owned or by @policy. */
static gboolean
check_tenant (const MamdJwt *jwt, const MamdJwtPolicy *policy, const char **tid_out,
              char **tid_owned, GError **error)
{
  const Member *m = find_member (&jwt->claims, "tid");
  g_autofree char *tid = NULL;
  g_autofree char *canonical = NULL;

  if (m != NULL && m->type == VALUE_STRING && span_equal_str (&m->value, policy->tenant_id))
    {
      *tid_out = policy->tenant_id;
      return TRUE;
    }
  if (!claim_string (jwt, "tid", &tid, error))
    return FALSE;
  if (tid == NULL)
    return token_fail (error, "tenant: the token has no \"tid\" claim");
  canonical = mamd_guid_canonicalize (tid, "tid", NULL);
  if (canonical == NULL)
    return token_fail (error, "tenant: the token's \"tid\" is not a GUID");
  if (!g_str_equal (canonical, policy->tenant_id) &&
      g_ascii_strcasecmp (canonical, policy->tenant_id) != 0)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "tenant: the token is from tenant %s, this server accepts only tenant %s",
                   canonical, policy->tenant_id);
      return FALSE;
    }
  *tid_out = *tid_owned = g_steal_pointer (&canonical);
  return TRUE;
}

/* Entra's multi-tenant key sets name the issuer with a {tenantid} template. */
static gboolean
check_key_issuer (const MamdJwt *jwt, const MamdJwk *key, const char *tid, GError **error)
{
  g_autofree char *expected = NULL;
  g_autofree char *shown = NULL;
  const char *template;

  if (key->issuer == NULL)
    return TRUE;
  template = strstr (key->issuer, "{tenantid}");
  if (template == NULL && g_str_equal (key->issuer, jwt->issuer))
    return TRUE;
  if (template != NULL)
    {
      expected = g_strdup_printf ("%.*s%s%s", (int) (template - key->issuer), key->issuer, tid,
                                  template + strlen ("{tenantid}"));
      if (g_str_equal (expected, jwt->issuer))
        return TRUE;
    }
  shown = text_show (key->kid);
  g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
               "issuer: the signing key %s belongs to another issuer than the token's; "
               "check Authority", shown);
  return FALSE;
}

static gboolean
audience_matches (const Span *value, const char *client_id)
{
  g_autofree char *aud = NULL;

  if (span_equal_str (value, client_id))
    return TRUE;
  aud = span_dup (value);
  /* GUIDs compare without regard to case */
  return mamd_guid_is_canonical (client_id) && g_ascii_strcasecmp (aud, client_id) == 0;
}

/* aud is a string or an array of strings (RFC 7519 4.1.3). */
static gboolean
check_audience (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  const Member *aud = find_member (&jwt->claims, "aud");
  gboolean found = FALSE;

  if (aud == NULL)
    return token_fail (error, "audience: the token has no \"aud\" claim");
  if (aud->type == VALUE_STRING)
    found = audience_matches (&aud->value, policy->client_id);
  else if (aud->type == VALUE_ARRAY)
    {
      Reader r = { aud->value.text, aud->value.text + 1, aud->value.text + aud->value.len,
                   "claims", 1, NULL };

      /* the reader has validated the array already: walk its elements */
      for (;;)
        {
          Member element = { { 0 } };

          skip_ws (&r);
          if (*r.p == ']')
            break;
          if (!read_value (&r, &element, error))
            return FALSE;
          if (element.type != VALUE_STRING)
            return token_fail (error, "malformed: claim \"aud\" holds a value that is "
                                      "not a string");
          found = found || audience_matches (&element.value, policy->client_id);
          skip_ws (&r);
          if (*r.p == ',')
            r.p++;
        }
    }
  else
    return token_fail (error, "malformed: claim \"aud\" is neither a string nor an array");

  if (!found)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "audience: the token is not for this server's client id %s; request the "
                   "token for that application", policy->client_id);
      return FALSE;
    }
  return TRUE;
}

static char *
format_time (gint64 unix_time)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_time);

  if (dt == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, unix_time);
  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* Unsigned differences: no overflow whatever the claims hold. */
static gboolean
check_lifetime (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  guint64 skew = policy->skew > 0 ? (guint64) policy->skew : 0;
  gboolean present = FALSE;
  gint64 exp = 0, nbf = 0, iat = 0;

  if (!claim_integer (jwt, "exp", &present, &exp, error))
    return FALSE;
  if (!present)
    return token_fail (error, "malformed: the token has no \"exp\" claim; access tokens "
                              "must expire");
  if (exp <= policy->now && (guint64) policy->now - (guint64) exp >= skew)
    {
      g_autofree char *when = format_time (exp);

      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "expired: the token expired at %s (allowed clock skew %" G_GUINT64_FORMAT
                   " s); sign in again to get a new token", when, skew);
      return FALSE;
    }
  if (!claim_integer (jwt, "nbf", &present, &nbf, error))
    return FALSE;
  if (present && nbf > policy->now && (guint64) nbf - (guint64) policy->now > skew)
    {
      g_autofree char *when = format_time (nbf);

      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "not yet valid: the token is valid from %s (allowed clock skew %"
                   G_GUINT64_FORMAT " s); check the clocks of this host and the device",
                   when, skew);
      return FALSE;
    }
  return claim_integer (jwt, "iat", &present, &iat, error);
}

static gboolean
scope_listed (const char *scp, gsize scp_len, const char *required)
{
  const char *end = scp + scp_len;
  gsize n = strlen (required);

  for (const char *p = scp; p < end;)
    {
      const char *space = memchr (p, ' ', (gsize) (end - p));
      gsize len = space != NULL ? (gsize) (space - p) : (gsize) (end - p);

      if (len == n && memcmp (p, required, n) == 0)
        return TRUE;
      p += len;
      while (p < end && *p == ' ')
        p++;
    }
  return FALSE;
}

static gboolean
check_scope (const MamdJwt *jwt, const MamdJwtPolicy *policy, GError **error)
{
  const Member *m = find_member (&jwt->claims, "scp");
  g_autofree char *scp = NULL;

  if (m != NULL && m->type == VALUE_STRING && !m->value.escaped &&
      scope_listed (m->value.text, m->value.len, policy->required_scope))
    return TRUE;
  if (!claim_string (jwt, "scp", &scp, error))
    return FALSE;
  if (scp == NULL && find_member (&jwt->claims, "roles") != NULL)
    return token_fail (error, "scope: this is an app-only token (\"roles\" without \"scp\"); "
                              "a user must sign in with a delegated token");
  if (scp == NULL)
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "scope: the token has no \"scp\" claim; request the delegated scope %s",
                   policy->required_scope);
      return FALSE;
    }
  if (!scope_listed (scp, strlen (scp), policy->required_scope))
    {
      g_set_error (error, MAMD_ERROR, MAMD_ERROR_INVALID_TOKEN,
                   "scope: the token lacks the scope %s; request it at sign-in and grant "
                   "consent", policy->required_scope);
      return FALSE;
    }
  return TRUE;
}

/* The identity is oid and nothing else: email, upn and preferred_username
 * are mutable and never stand in for it. */
static char *
get_object_id (const MamdJwt *jwt, GError **error)
{
  const Member *oid = find_member (&jwt->claims, "oid");
  g_autofree char *text = NULL;
  char *canonical;

  if (oid == NULL)
    {
      g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
                           "the access token has no \"oid\" claim with the user's Entra "
                           "objectId (email, upn and preferred_username are never used "
                           "instead); configure the provider to issue oid");
      return NULL;
    }
  if (oid->type == VALUE_STRING)
    text = span_dup (&oid->value);
  if (text != NULL && mamd_guid_is_canonical (text))
    return g_steal_pointer (&text);
  canonical = text != NULL ? mamd_guid_canonicalize (text, "oid", NULL) : NULL;
  if (canonical == NULL)
    g_set_error_literal (error, MAMD_ERROR, MAMD_ERROR_MISSING_AUTH_ACCOUNT,
                         "the access token's \"oid\" claim is not a GUID; it must hold the "
                         "user's Entra objectId");
  return canonical;
}

MamdIdentity *
mamd_jwt_verify (const MamdJwt *jwt, const MamdJwk *key, const MamdJwtPolicy *policy,
                 GError **error)
{
  g_autofree char *tid_owned = NULL;
  g_autofree char *oid = NULL;
  g_autofree char *user = NULL;
  const char *tid = NULL;

  g_return_val_if_fail (jwt != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  g_return_val_if_fail (policy != NULL && policy->issuer != NULL, NULL);
  g_return_val_if_fail (policy->tenant_id != NULL && policy->client_id != NULL, NULL);
  g_return_val_if_fail (policy->required_scope != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  /* nothing in the claims counts before the signature does */
  if (!check_signature (jwt, key, error) ||
      !check_version (jwt, error) ||
      !check_issuer (jwt, policy, error) ||
      !check_tenant (jwt, policy, &tid, &tid_owned, error) ||
      !check_key_issuer (jwt, key, tid, error) ||
      !check_audience (jwt, policy, error) ||
      !check_lifetime (jwt, policy, error) ||
      !check_scope (jwt, policy, error))
    return NULL;
  oid = get_object_id (jwt, error);
  if (oid == NULL)
    return NULL;

  /* display only; a wrongly typed one is just not shown */
  if (!claim_string (jwt, "preferred_username", &user, NULL) || user == NULL)
    claim_string (jwt, "name", &user, NULL);
  return mamd_identity_new (oid, tid, user, "oid", jwt->issuer, error);
}
