/* json.c — JSON reader (yajl events → tree, zeroing allocator) and Go-compatible writer. */
#include "keystore/json.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_parse.h>

#include "keystore/secmem.h"

/* ---- zeroing allocator: a size header in front of every block ---- */

#define ZHDR 16

static void *zmalloc(void *ctx, size_t n)
{
	(void)ctx;
	unsigned char *p = malloc(n + ZHDR);
	if (!p)
		return NULL;
	memcpy(p, &n, sizeof n);
	return p + ZHDR;
}

static void zfree(void *ctx, void *ptr)
{
	(void)ctx;
	if (!ptr)
		return;
	unsigned char *p = (unsigned char *)ptr - ZHDR;
	size_t n;
	memcpy(&n, p, sizeof n);
	secure_zero(ptr, n);
	free(p);
}

static void *zrealloc(void *ctx, void *ptr, size_t n)
{
	if (!ptr)
		return zmalloc(ctx, n);
	unsigned char *q = zmalloc(ctx, n);
	if (!q)
		return NULL;
	size_t old;
	memcpy(&old, (unsigned char *)ptr - ZHDR, sizeof old);
	memcpy(q, ptr, old < n ? old : n);
	zfree(ctx, ptr);
	return q;
}

/* ---- tree ---- */

struct json_value {
	enum json_type type;
	bool boolean;
	char *str; /* string value or number text, NUL-terminated */
	size_t len;
	size_t count, cap;
	struct json_value **items; /* array elements or object values */
	char **keys;               /* object keys, NUL-terminated... */
	size_t *key_lens;          /* ...but may contain NUL: their true lengths */
};

struct parse_state {
	struct json_value *root;
	struct json_value *stack[JSON_MAX_DEPTH + 1];
	int depth;
	char *pending_key;
	size_t pending_key_len;
	bool failed;
	const char *why;
	size_t values, max_values; /* max_values 0 = unlimited */
};

static char *zstrndup(const char *s, size_t n)
{
	char *p = zmalloc(NULL, n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

static struct json_value *new_value(enum json_type t)
{
	struct json_value *v = zmalloc(NULL, sizeof *v);
	if (v) {
		memset(v, 0, sizeof *v);
		v->type = t;
	}
	return v;
}

static int attach(struct parse_state *st, struct json_value *v)
{
	if (!v) {
		st->why = "out of memory";
		return 0;
	}
	if (st->max_values && ++st->values > st->max_values) {
		json_free(v);
		st->why = "too many values";
		return 0;
	}
	if (st->depth == 0) {
		st->root = v;
		return 1;
	}
	struct json_value *parent = st->stack[st->depth - 1];
	if (parent->count == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		struct json_value **items = zrealloc(NULL, parent->items, cap * sizeof *items);
		if (!items)
			goto oom;
		parent->items = items;
		if (parent->type == JSON_OBJECT) {
			char **keys = zrealloc(NULL, parent->keys, cap * sizeof *keys);
			if (!keys)
				goto oom;
			parent->keys = keys;
			size_t *lens = zrealloc(NULL, parent->key_lens, cap * sizeof *lens);
			if (!lens)
				goto oom;
			parent->key_lens = lens;
		}
		parent->cap = cap;
	}
	if (parent->type == JSON_OBJECT) {
		parent->keys[parent->count] = st->pending_key;
		parent->key_lens[parent->count] = st->pending_key_len;
		st->pending_key = NULL;
	}
	parent->items[parent->count++] = v;
	return 1;
oom:
	json_free(v);
	st->why = "out of memory";
	return 0;
}

static int on_null(void *ctx)
{
	return attach(ctx, new_value(JSON_NULL));
}

static int on_bool(void *ctx, int b)
{
	struct json_value *v = new_value(JSON_BOOL);
	if (v)
		v->boolean = b != 0;
	return attach(ctx, v);
}

static int on_scalar_text(void *ctx, enum json_type t, const unsigned char *s, size_t n)
{
	struct json_value *v = new_value(t);
	if (v) {
		v->str = zstrndup((const char *)s, n);
		v->len = n;
		if (!v->str) {
			zfree(NULL, v);
			v = NULL;
		}
	}
	return attach(ctx, v);
}

static int on_number(void *ctx, const char *s, size_t n)
{
	return on_scalar_text(ctx, JSON_NUMBER, (const unsigned char *)s, n);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	return on_scalar_text(ctx, JSON_STRING, s, n);
}

static int open_container(struct parse_state *st, enum json_type t)
{
	if (st->depth >= JSON_MAX_DEPTH) {
		st->why = "nesting too deep";
		return 0;
	}
	struct json_value *v = new_value(t);
	if (!attach(st, v))
		return 0;
	st->stack[st->depth++] = v;
	return 1;
}

static int on_start_map(void *ctx)
{
	return open_container(ctx, JSON_OBJECT);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t n)
{
	struct parse_state *st = ctx;
	zfree(NULL, st->pending_key);
	st->pending_key = zstrndup((const char *)s, n);
	st->pending_key_len = n;
	if (!st->pending_key) {
		st->why = "out of memory";
		return 0;
	}
	return 1;
}

static int on_end_container(void *ctx)
{
	struct parse_state *st = ctx;
	st->depth--;
	return 1;
}

static int on_start_array(void *ctx)
{
	return open_container(ctx, JSON_ARRAY);
}

static const yajl_callbacks CALLBACKS = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_container,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_container,
};

static yajl_alloc_funcs ZALLOC = {zmalloc, zrealloc, zfree, NULL};

static struct json_value *parse(const char *text, size_t len, size_t max_values, bool first_only,
                                char *err, size_t errlen);

struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	return parse(text, len, 0, false, err, errlen);
}

struct json_value *json_parse_limited(const char *text, size_t len, size_t max_values, char *err,
                                      size_t errlen)
{
	return parse(text, len, max_values, false, err, errlen);
}

struct json_value *json_parse_first(const char *text, size_t len, size_t max_values, char *err,
                                    size_t errlen)
{
	return parse(text, len, max_values, true, err, errlen);
}

static struct json_value *parse(const char *text, size_t len, size_t max_values, bool first_only,
                                char *err, size_t errlen)
{
	struct parse_state st;
	memset(&st, 0, sizeof st);
	st.max_values = max_values;
	if (err && errlen)
		err[0] = 0;
	yajl_handle h = yajl_alloc(&CALLBACKS, &ZALLOC, &st);
	if (!h) {
		if (err)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* yajl then stops at the end of the first value without looking at what follows, as
	 * Go's json.Decoder does. */
	if (first_only && !yajl_config(h, yajl_allow_trailing_garbage, 1)) {
		if (err)
			snprintf(err, errlen, "out of memory");
		yajl_free(h);
		return NULL;
	}
	yajl_status s = yajl_parse(h, (const unsigned char *)text, len);
	if (s == yajl_status_ok)
		s = yajl_complete_parse(h);
	if (s != yajl_status_ok || !st.root) {
		if (err) {
			if (st.why)
				snprintf(err, errlen, "%s", st.why);
			else if (!st.root && s == yajl_status_ok)
				snprintf(err, errlen, "empty input");
			else
				snprintf(err, errlen, "malformed JSON at offset %zu",
				         yajl_get_bytes_consumed(h));
		}
		yajl_free(h);
		zfree(NULL, st.pending_key);
		json_free(st.root);
		return NULL;
	}
	yajl_free(h);
	zfree(NULL, st.pending_key);
	return st.root;
}

void json_free(struct json_value *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->count; i++) {
		json_free(v->items[i]);
		if (v->keys)
			zfree(NULL, v->keys[i]);
	}
	zfree(NULL, v->items);
	zfree(NULL, v->keys);
	zfree(NULL, v->key_lens);
	zfree(NULL, v->str);
	zfree(NULL, v);
}

enum json_type json_type(const struct json_value *v)
{
	return v ? v->type : JSON_NULL;
}

/*
 * Whether document key k (n bytes, any UTF-8) folds to the same name as the ASCII field name,
 * as Go's encoding/json foldName decides: ASCII letters ignore case, and the only non-ASCII
 * runes whose fold set reaches ASCII are U+212A KELVIN SIGN (folds with 'k') and U+017F
 * LATIN SMALL LETTER LONG S (folds with 's'). Any other byte difference, including a NUL,
 * makes it another key.
 */
bool json_key_matches(const char *k, size_t n, const char *field)
{
	const unsigned char *p = (const unsigned char *)k, *end = p + n;
	for (; *field; field++) {
		unsigned char want = (unsigned char)toupper((unsigned char)*field);
		if (p == end)
			return false;
		if (*p < 0x80) {
			if (toupper(*p) != want)
				return false;
			p++;
		} else if (end - p >= 3 && p[0] == 0xe2 && p[1] == 0x84 && p[2] == 0xaa) {
			if (want != 'K')
				return false;
			p += 3;
		} else if (end - p >= 2 && p[0] == 0xc5 && p[1] == 0xbf) {
			if (want != 'S')
				return false;
			p += 2;
		} else {
			return false;
		}
	}
	return p == end;
}

const struct json_value *json_get(const struct json_value *v, const char *key)
{
	if (!v || v->type != JSON_OBJECT)
		return NULL;
	/* Go decodes members in document order and every member whose key matches the field,
	 * exactly or by folding (json_key_matches), overwrites it: the last matching member wins.
	 */
	const struct json_value *found = NULL;
	for (size_t i = 0; i < v->count; i++)
		if (json_key_matches(v->keys[i], v->key_lens[i], key))
			found = v->items[i];
	return found;
}

const char *json_string(const struct json_value *v, size_t *len)
{
	if (!v || v->type != JSON_STRING)
		return NULL;
	if (len)
		*len = v->len;
	return v->str;
}

const char *json_number(const struct json_value *v)
{
	return v && v->type == JSON_NUMBER ? v->str : NULL;
}

bool json_bool(const struct json_value *v)
{
	return v && v->type == JSON_BOOL && v->boolean;
}

size_t json_count(const struct json_value *v)
{
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->count : 0;
}

const struct json_value *json_at(const struct json_value *v, size_t i)
{
	return i < json_count(v) ? v->items[i] : NULL;
}

const char *json_key_at(const struct json_value *v, size_t i)
{
	return v && v->type == JSON_OBJECT && i < v->count ? v->keys[i] : NULL;
}

int json_get_base64(const struct json_value *v, const char *key, struct bytes *out)
{
	out->data = NULL;
	out->len = 0;
	const struct json_value *m = json_get(v, key);
	if (!m || m->type == JSON_NULL)
		return 1;
	if (m->type != JSON_STRING)
		return -1;
	return base64_decode(out, m->str, m->len) == 0 ? 0 : -1;
}

/* ---- writer ---- */

void json_writer_init(struct json_writer *w, struct buf *out)
{
	memset(w, 0, sizeof *w);
	w->out = out;
}

static void before_value(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth > 0) {
		if (!w->first[w->depth - 1])
			buf_append_char(w->out, ',');
		w->first[w->depth - 1] = false;
	}
}

static void writer_open(struct json_writer *w, char c)
{
	before_value(w);
	assert(w->depth < JSON_MAX_DEPTH);
	buf_append_char(w->out, c);
	w->first[w->depth++] = true;
}

static void writer_close(struct json_writer *w, char c)
{
	assert(w->depth > 0);
	w->depth--;
	buf_append_char(w->out, c);
}

void json_object_begin(struct json_writer *w)
{
	writer_open(w, '{');
}

void json_object_end(struct json_writer *w)
{
	writer_close(w, '}');
}

void json_array_begin(struct json_writer *w)
{
	writer_open(w, '[');
}

void json_array_end(struct json_writer *w)
{
	writer_close(w, ']');
}

void json_key(struct json_writer *w, const char *key)
{
	before_value(w);
	json_escape_string(w->out, key, strlen(key));
	buf_append_char(w->out, ':');
	w->after_key = true;
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if invalid (Go's rules: no overlongs,
 * no surrogates, max U+10FFFF). *cp receives the code point. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2, min = 0x80, c &= 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, min = 0x800, c &= 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

void json_escape_string(struct buf *out, const char *str, size_t n)
{
	static const char HEX[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	buf_append_char(out, '"');
	size_t start = 0, i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' &&
		    c < 0x80) {
			i++;
			continue;
		}
		if (c < 0x80) {
			buf_append(out, s + start, i - start);
			switch (c) {
			case '"':
				buf_append_str(out, "\\\"");
				break;
			case '\\':
				buf_append_str(out, "\\\\");
				break;
			case '\n':
				buf_append_str(out, "\\n");
				break;
			case '\r':
				buf_append_str(out, "\\r");
				break;
			case '\t':
				buf_append_str(out, "\\t");
				break;
			default: {
				char esc[7] = {'\\', 'u', '0', '0', HEX[c >> 4], HEX[c & 15], 0};
				buf_append_str(out, esc);
			}
			}
			start = ++i;
			continue;
		}
		unsigned cp;
		size_t len = utf8_decode(s + i, n - i, &cp);
		if (len == 0) {
			buf_append(out, s + start, i - start);
			buf_append_str(out, "\\ufffd");
			start = ++i;
			continue;
		}
		if (cp == 0x2028 || cp == 0x2029) {
			buf_append(out, s + start, i - start);
			buf_append_str(out, cp == 0x2028 ? "\\u2028" : "\\u2029");
			start = i + len;
		}
		i += len;
	}
	buf_append(out, s + start, n - start);
	buf_append_char(out, '"');
}

void json_write_string_n(struct json_writer *w, const char *s, size_t n)
{
	before_value(w);
	json_escape_string(w->out, s, n);
}

void json_write_string(struct json_writer *w, const char *s)
{
	json_write_string_n(w, s, strlen(s));
}

void json_write_base64(struct json_writer *w, const uint8_t *data, size_t n)
{
	before_value(w);
	buf_append_char(w->out, '"');
	base64_encode(w->out, data, n);
	buf_append_char(w->out, '"');
}

void json_write_int(struct json_writer *w, long long v)
{
	before_value(w);
	buf_printf(w->out, "%lld", v);
}

void json_write_uint(struct json_writer *w, unsigned long long v)
{
	before_value(w);
	buf_printf(w->out, "%llu", v);
}

void json_write_bool(struct json_writer *w, bool v)
{
	before_value(w);
	buf_append_str(w->out, v ? "true" : "false");
}

void json_write_null(struct json_writer *w)
{
	before_value(w);
	buf_append_str(w->out, "null");
}
