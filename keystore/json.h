/*
 * json.h — JSON in and out, shaped for KES compatibility and for secrets.
 *
 * Reading: json_parse builds a small tree with yajl's event parser. Every allocation it makes
 * (yajl's own lexer buffers included) goes through an allocator that zeroes memory on free,
 * because request bodies and Vault responses carry key material. Object member lookup follows
 * Go's encoding/json, which KES uses: keys match case-insensitively and, as Go assigns every
 * matching member in document order, the last matching member wins ({"a":1,"A":2} → 2).
 *
 * Writing: json_writer appends to a struct buf and escapes strings exactly as Go's
 * json.Encoder does (<, >, & as \u003c \u003e \u0026; U+2028/U+2029 escaped; invalid UTF-8 as
 * \ufffd), so replies are byte-identical to KES's.
 */
#ifndef KESC_KEYSTORE_JSON_H
#define KESC_KEYSTORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value;

/* Nesting deeper than this is refused as malformed. */
#define JSON_MAX_DEPTH 64

/* Parses exactly one JSON value (surrounding white space allowed, nothing else). Returns NULL
 * on error with a short reason in err (never containing input bytes). Free with json_free. */
struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
/* The same, refusing input with more than max_values values ("too many values"); 0 = no
 * limit. Request bodies use it so that a body of half a million tiny values costs a few
 * microseconds to refuse instead of building a tree on a loop thread. */
struct json_value *json_parse_limited(const char *text, size_t len, size_t max_values, char *err,
                                      size_t errlen);
/* The same, reading only the first JSON value, as Go's json.Decoder.Decode does: whatever
 * follows a complete value (white space, another value, any bytes) is ignored unread. KES
 * decodes request bodies that way, so {"a":1}{"b":2} or {"a":1}garbage mean {"a":1}. */
struct json_value *json_parse_first(const char *text, size_t len, size_t max_values, char *err,
                                    size_t errlen);
/* Zeroes every string and frees the tree. NULL is fine. */
void json_free(struct json_value *v);

enum json_type json_type(const struct json_value *v);
/* Object member per Go's rules (see above); NULL if v is not an object or has no such key. */
const struct json_value *json_get(const struct json_value *v, const char *key);
/* Whether member key k (n bytes, any UTF-8) names the ASCII field as Go's encoding/json
 * decides: ASCII letters ignore case, U+212A KELVIN SIGN folds with 'k' and U+017F LONG S
 * with 's'; any other difference (a NUL included) is another key. For readers that match
 * keys themselves (streaming parsers). */
bool json_key_matches(const char *k, size_t n, const char *field);
/* String value and its length (strings may contain NUL); NULL if v is NULL or not a string. */
const char *json_string(const struct json_value *v, size_t *len);
/* Raw number text as written; NULL if not a number. */
const char *json_number(const struct json_value *v);
/* Boolean value; false if not a boolean. */
bool json_bool(const struct json_value *v);
/* Arrays and objects: element count, and element (or member value) i; NULL if out of range. */
size_t json_count(const struct json_value *v);
const struct json_value *json_at(const struct json_value *v, size_t i);
/* Objects: the key of member i; NULL if out of range. */
const char *json_key_at(const struct json_value *v, size_t i);

/*
 * Decodes the base64 string member `key` of object v (KES's []byte fields). Returns 0 and
 * fills out; 1 if the member is absent or null (out is left empty); -1 if it is present but
 * not a string or not valid base64.
 */
int json_get_base64(const struct json_value *v, const char *key, struct bytes *out);

/* Writer. Structural mistakes (a value where a key is due, unbalanced ends) are programming
 * errors and abort in debug builds; output errors (buffer limit) show as buf_failed(out). */
struct json_writer {
	struct buf *out;
	int depth;
	bool first[JSON_MAX_DEPTH];
	bool after_key;
};

void json_writer_init(struct json_writer *w, struct buf *out);
void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_write_string(struct json_writer *w, const char *s);
void json_write_string_n(struct json_writer *w, const char *s, size_t n);
void json_write_base64(struct json_writer *w, const uint8_t *data, size_t n);
void json_write_int(struct json_writer *w, long long v);
void json_write_uint(struct json_writer *w, unsigned long long v);
void json_write_bool(struct json_writer *w, bool v);
void json_write_null(struct json_writer *w);
/* Appends s as a JSON string literal with Go's escaping, outside any writer state. */
void json_escape_string(struct buf *out, const char *s, size_t n);

#endif
