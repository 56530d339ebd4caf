/*
 * Strict JSON and base64url for everything that reads outside input
 * (licences, tokens, claims, JWKS). json-glib 1.6 is lax: it has no depth
 * limit, keeps the last of duplicate keys, accepts single quotes and hex
 * numbers and cuts strings at \u0000. So the input is first checked against
 * RFC 8259 by a small scanner, and only then handed to json-glib. Errors are
 * MAMD_ERROR_INVALID_ARGS; callers may re-code them.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Parses exactly one RFC 8259 value. Rejects input longer than @max_len,
 * NUL bytes, invalid UTF-8, nesting deeper than @max_depth, duplicate keys
 * in any object, "\u0000", lone surrogates, integers outside gint64 and
 * anything after the value but whitespace. */
JsonNode *mamd_json_parse_strict (const char *data,
                                  gsize       len,
                                  gsize       max_len,
                                  guint       max_depth,
                                  GError    **error);

/* mamd_json_parse_strict() for documents that must be one JSON object:
 * anything else is MAMD_ERROR_INVALID_ARGS "not a JSON object". */
JsonNode *mamd_json_parse_strict_object (const char *data,
                                         gsize       len,
                                         gsize       max_len,
                                         guint       max_depth,
                                         GError    **error);

/* Typed getters. An absent member is an error when @required, otherwise
 * they return TRUE and leave *out untouched (so callers preset defaults).
 * A member of another type (null included) is always an error. */
gboolean mamd_json_object_get_string (JsonObject  *object,
                                      const char  *member,
                                      gboolean     required,
                                      const char **out,
                                      GError     **error);
/* Integers only: not a float, not a string. */
gboolean mamd_json_object_get_int64 (JsonObject *object,
                                     const char *member,
                                     gboolean    required,
                                     gint64     *out,
                                     GError    **error);
gboolean mamd_json_object_get_bool (JsonObject *object,
                                    const char *member,
                                    gboolean    required,
                                    gboolean   *out,
                                    GError    **error);
/* *out becomes a new string vector (free with g_strfreev); every element
 * must be a string. */
gboolean mamd_json_object_get_string_array (JsonObject *object,
                                            const char *member,
                                            gboolean    required,
                                            char     ***out,
                                            GError    **error);

/* Strict base64url (RFC 4648 section 5) without padding: no '+', '/', '=',
 * no whitespace, unused trailing bits must be zero. @len -1 means @text is
 * NUL-terminated. Returns a buffer of *out_len bytes (NUL-terminated for
 * convenience), or NULL with MAMD_ERROR_INVALID_ARGS. */
guint8 *mamd_base64url_decode (const char *text,
                               gssize      len,
                               gsize      *out_len,
                               GError    **error);
char *mamd_base64url_encode (const guint8 *data, gsize len);

/* Reads a regular file of at most @max_len bytes without reading more than
 * that into memory. G_FILE_ERROR on failure (G_FILE_ERROR_NOENT when it is
 * missing, G_FILE_ERROR_INVAL when not a regular file or too large); the
 * message does not repeat @path. *contents is NUL-terminated. */
gboolean mamd_file_read_bounded (const char *path,
                                 gsize       max_len,
                                 char      **contents,
                                 gsize      *len,
                                 GError    **error);

G_END_DECLS
