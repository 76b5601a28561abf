/* bulk_body.c — a streaming reader for the bulk decrypt body (bulk_body.h), on yajl's events. */
#include "server/bulk_body.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "keystore/json.h"

enum field { FIELD_NONE, FIELD_CIPHERTEXT, FIELD_CONTEXT, FIELD_OTHER };

/* Depths: 0 outside everything, 1 inside the array, 2 inside an element object, deeper only
 * inside the value of a member nobody reads. */
struct reader {
	struct bulk_body *out;
	size_t cap;
	int depth;
	enum field field; /* the member whose value comes next (depth 2) */
	bool current;     /* the element being read is kept (within the limit) */
	int result;
};

static int fail(struct reader *r, int result)
{
	r->result = result;
	return 0; /* stops the parse */
}

/* A new element of the array: kept while within the limit, else only checked. */
static int element_begin(struct reader *r)
{
	struct bulk_body *b = r->out;
	b->total++;
	r->current = b->count < BULK_MAX_ITEMS;
	if (!r->current)
		return 1;
	if (b->count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		if (cap > BULK_MAX_ITEMS)
			cap = BULK_MAX_ITEMS;
		struct bulk_item *items = realloc(b->items, cap * sizeof(*items));
		if (!items)
			return fail(r, BULK_NO_MEMORY);
		b->items = items;
		r->cap = cap;
	}
	memset(&b->items[b->count], 0, sizeof(b->items[0]));
	b->count++;
	return 1;
}

static struct bytes *field_slot(struct reader *r)
{
	if (!r->current)
		return NULL;
	struct bulk_item *it = &r->out->items[r->out->count - 1];
	return r->field == FIELD_CIPHERTEXT ? &it->ciphertext : &it->context;
}

/* A scalar (s, n: string bytes when is_string; NULL for null) at the current depth. */
static int scalar(struct reader *r, bool is_null, bool is_string, const unsigned char *s, size_t n)
{
	switch (r->depth) {
	case 0: /* the whole body: only null (no items) */
		return is_null ? 1 : fail(r, BULK_INVALID);
	case 1: /* an element: only null (an item without fields) */
		if (!is_null)
			return fail(r, BULK_INVALID);
		return element_begin(r);
	case 2:
		break;
	default:
		return 1; /* inside an ignored member */
	}
	if (r->field == FIELD_OTHER || r->field == FIELD_NONE)
		return 1;
	if (!is_null && !is_string)
		return fail(r, BULK_INVALID);
	struct bytes decoded = {0}, *slot = field_slot(r);
	if (is_string && base64_decode(&decoded, (const char *)s, n) != 0)
		return fail(r, BULK_INVALID);
	if (slot) {
		bytes_free(slot);
		*slot = decoded; /* null: the field is empty again, as Go sets a nil slice */
	} else {
		bytes_free(&decoded);
	}
	return 1;
}

static int on_null(void *ctx)
{
	return scalar(ctx, true, false, NULL, 0);
}

static int on_bool(void *ctx, int b)
{
	(void)b;
	return scalar(ctx, false, false, NULL, 0);
}

static int on_number(void *ctx, const char *s, size_t n)
{
	(void)s, (void)n;
	return scalar(ctx, false, false, NULL, 0);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	return scalar(ctx, false, true, s, n);
}

static int open_container(struct reader *r, bool is_map)
{
	switch (r->depth) {
	case 0:
		if (is_map)
			return fail(r, BULK_INVALID);
		break;
	case 1:
		if (!is_map)
			return fail(r, BULK_INVALID); /* an element that is no object */
		if (!element_begin(r))
			return 0;
		r->field = FIELD_NONE;
		break;
	case 2:
		if (r->field != FIELD_OTHER)
			return fail(r, BULK_INVALID); /* ciphertext/context must be strings */
		break;
	default:
		break;
	}
	if (++r->depth > JSON_MAX_DEPTH)
		return fail(r, BULK_INVALID);
	return 1;
}

static int on_start_map(void *ctx)
{
	return open_container(ctx, true);
}

static int on_start_array(void *ctx)
{
	return open_container(ctx, false);
}

static int on_map_key(void *ctx, const unsigned char *k, size_t n)
{
	struct reader *r = ctx;
	if (r->depth != 2)
		return 1;
	if (json_key_matches((const char *)k, n, "ciphertext"))
		r->field = FIELD_CIPHERTEXT;
	else if (json_key_matches((const char *)k, n, "context"))
		r->field = FIELD_CONTEXT;
	else
		r->field = FIELD_OTHER;
	return 1;
}

static int on_end(void *ctx)
{
	struct reader *r = ctx;
	r->depth--;
	return 1;
}

static const yajl_callbacks CALLBACKS = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

int bulk_body_parse(const uint8_t *body, size_t len, struct bulk_body *out)
{
	struct reader r = {.out = out};
	memset(out, 0, sizeof(*out));
	yajl_handle h = yajl_alloc(&CALLBACKS, NULL, &r);
	/* yajl stops at the end of the first value, as Go's json.Decoder does. */
	if (!h || !yajl_config(h, yajl_allow_trailing_garbage, 1)) {
		if (h)
			yajl_free(h);
		return BULK_NO_MEMORY;
	}
	yajl_status s = yajl_parse(h, body, len);
	if (s == yajl_status_ok)
		s = yajl_complete_parse(h);
	yajl_free(h);
	int rc = r.result;
	if (rc == BULK_OK && s != yajl_status_ok)
		rc = BULK_INVALID; /* a syntax error, or no value at all (Go: EOF) */
	if (rc == BULK_OK && out->total > BULK_MAX_ITEMS)
		rc = BULK_TOO_MANY;
	if (rc != BULK_OK) {
		size_t total = out->total;
		bulk_body_free(out);
		out->total = total;
	}
	return rc;
}

void bulk_body_free(struct bulk_body *b)
{
	for (size_t i = 0; b->items && i < b->count; i++) {
		bytes_free(&b->items[i].ciphertext);
		bytes_free(&b->items[i].context);
	}
	free(b->items);
	memset(b, 0, sizeof(*b));
}
