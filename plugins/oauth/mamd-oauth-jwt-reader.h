/*
 * The strict JSON reader behind mamd-oauth-jwt.c: one pass over the decoded
 * header or claims, the top-level members recorded as spans into that
 * text. Private to the JWT code.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

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

/* In the header because mamd-oauth-jwt.c walks the already validated
 * "aud" array again with jwt_reader_read_value (). */
typedef struct {
  const char *start;
  const char *p;
  const char *end;
  const char *segment; /* "header" or "claims", for messages */
  guint depth;
  MemberList *members; /* the top-level object's members */
} Reader;

/* Room jwt_reader_b64url_decode () needs for @len characters. */
#define B64URL_DECODED_MAX(len) ((len) / 4 * 3 + 3)

void jwt_reader_member_list_init (MemberList *list, Member *buffer, guint cap);
void jwt_reader_member_list_clear (MemberList *list);

guint8 *jwt_reader_b64url_decode (const char *text, gsize len, guint8 *out, gsize *out_len,
                                  const char *segment, GError **error);

char *jwt_reader_span_dup (const Span *span);
gboolean jwt_reader_span_equal_str (const Span *span, const char *str);
char *jwt_reader_text_show (const char *text);
char *jwt_reader_span_show (const Span *span);

void jwt_reader_skip_ws (Reader *r);
gboolean jwt_reader_read_value (Reader *r, Member *m, GError **error);
gboolean jwt_reader_read_object_text (const char *text, gsize len, const char *segment,
                                      MemberList *members, GError **error);
const Member *jwt_reader_find_member (const MemberList *members, const char *name);

G_END_DECLS
