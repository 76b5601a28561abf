/* fuzz_json.c — the JSON reader (keystore/json.c) on arbitrary bytes: it must never crash,
 * leak or read out of bounds, and whatever it accepts must re-serialise. json_parse_first (the
 * request-body reader) runs on the same bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "keystore/json.h"
#include "tests/fuzz/fuzz.h"

static void walk(const struct json_value *v, struct json_writer *w)
{
	switch (json_type(v)) {
	case JSON_NULL:
		json_write_null(w);
		break;
	case JSON_BOOL:
		json_write_bool(w, json_bool(v));
		break;
	case JSON_NUMBER:
		json_write_string(w, json_number(v));
		break;
	case JSON_STRING: {
		size_t n;
		const char *s = json_string(v, &n);
		json_write_string_n(w, s, n);
		break;
	}
	case JSON_ARRAY:
		json_array_begin(w);
		for (size_t i = 0; i < json_count(v); i++)
			walk(json_at(v, i), w);
		json_array_end(w);
		break;
	case JSON_OBJECT:
		json_object_begin(w);
		for (size_t i = 0; i < json_count(v); i++) {
			json_key(w, json_key_at(v, i));
			walk(json_at(v, i), w);
		}
		json_object_end(w);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[128];
	/* Request bodies: the first value only; whatever strict parsing accepts, it accepts too. */
	struct json_value *first =
	    json_parse_first((const char *)data, size, 4096, err, sizeof err);
	struct json_value *v = json_parse((const char *)data, size, err, sizeof err);
	if (v && !first) {
		first = json_parse_first((const char *)data, size, 0, err, sizeof err);
		if (!first)
			abort();
	}
	json_free(first);
	if (!v)
		return 0;
	struct buf out;
	buf_init(&out, 0);
	struct json_writer w;
	json_writer_init(&w, &out);
	walk(v, &w);
	struct bytes b;
	json_get_base64(v, "key", &b);
	bytes_free(&b);
	if (!buf_failed(&out)) {
		struct json_value *again = json_parse(out.data, out.len, err, sizeof err);
		if (!again)
			abort();
		json_free(again);
	}
	buf_free(&out);
	json_free(v);
	return 0;
}
