/* test_json.c — the JSON reader's Go-compatible lookups and the writer's Go-compatible escaping. */
#include "check.h"
#include "keystore/json.h"

static struct json_value *parse(const char *s)
{
	char err[128];
	return json_parse(s, strlen(s), err, sizeof err);
}

static void test_lookup_rules(void)
{
	struct json_value *v = parse("{\"Plaintext\":\"a\",\"plaintext\":\"b\",\"CONTEXT\":\"c\","
	                             "\"context\":null,\"x\":1,\"x\":2}");
	CHECK(v != NULL);
	CHECK_EQ_STR(json_string(json_get(v, "plaintext"), NULL), "b"); /* last match */
	CHECK(json_type(json_get(v, "Context")) == JSON_NULL &&
	      json_get(v, "Context"));                    /* exact null wins */
	CHECK_EQ_STR(json_number(json_get(v, "x")), "2"); /* last duplicate */
	CHECK(json_get(v, "missing") == NULL);
	json_free(v);
	/* Go's decoder assigns every matching member in order, so a later case-folded key
	 * overrides an earlier exact one: KES decrypts with "b" here, and so must kesc. */
	v = parse("{\"plaintext\":\"a\",\"PLAINTEXT\":\"b\"}");
	CHECK(v != NULL);
	CHECK_EQ_STR(json_string(json_get(v, "plaintext"), NULL), "b");
	json_free(v);
	/* "plaintext\u0000x" is another key to Go: it must not stand in for "plaintext". */
	v = parse("{\"plaintext\":\"a\",\"plaintext\\u0000x\":\"b\",\"Context\\u0000\":\"c\"}");
	CHECK(v != NULL);
	CHECK_EQ_STR(json_string(json_get(v, "plaintext"), NULL), "a");
	CHECK(json_get(v, "context") == NULL);
	json_free(v);
	/* Go folds U+212A KELVIN SIGN with 'k' and U+017F LONG S with 's', and nothing else
	 * non-ASCII with an ASCII letter: KES reads "\u212aey" as "key". */
	v = parse("{\"\\u212aey\":\"a\",\"CONTEXT\":\"b\",\"\\u017fealed\":true,"
	          "\"\\u00ecd\":1}");
	CHECK(v != NULL);
	CHECK_EQ_STR(json_string(json_get(v, "key"), NULL), "a");
	CHECK_EQ_STR(json_string(json_get(v, "context"), NULL), "b");
	CHECK(json_bool(json_get(v, "sealed")));
	CHECK(json_get(v, "id") == NULL);
	CHECK(json_get(v, "ke") == NULL && json_get(v, "keys") == NULL);
	json_free(v);
}

static void test_rejects(void)
{
	const char *bad[] = {"",    "{",       "{\"a\":}",    "[1,]",    "{\"a\":1}x",
	                     "nul", "{'a':1}", "{\"a\":1}{}", "\"\xff\""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(parse(bad[i]) == NULL);
	char deep[200];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	char err[64];
	CHECK(json_parse(deep, 200, err, sizeof err) == NULL);
	CHECK_EQ_STR(err, "nesting too deep");
}

static void test_base64_member(void)
{
	struct json_value *v = parse("{\"a\":\"AAEC\",\"b\":\"!!\",\"c\":5,\"d\":null}");
	struct bytes b;
	CHECK_EQ_INT(json_get_base64(v, "a", &b), 0);
	CHECK_EQ_INT(b.len, 3);
	bytes_free(&b);
	CHECK_EQ_INT(json_get_base64(v, "b", &b), -1);
	CHECK_EQ_INT(json_get_base64(v, "c", &b), -1);
	CHECK_EQ_INT(json_get_base64(v, "d", &b), 1);
	CHECK_EQ_INT(json_get_base64(v, "e", &b), 1);
	json_free(v);
}

static void test_writer_matches_go(void)
{
	struct buf out;
	buf_init(&out, 0);
	struct json_writer w;
	json_writer_init(&w, &out);
	json_object_begin(&w);
	json_key(&w, "s");
	json_write_string(&w, "<a&b>\"\\\n\t\x01\xe2\x80\xa8\xff\xc3\xa9");
	json_key(&w, "n");
	json_write_int(&w, -5);
	json_key(&w, "l");
	json_array_begin(&w);
	json_write_bool(&w, true);
	json_write_null(&w);
	json_write_base64(&w, (const uint8_t *)"hi", 2);
	json_array_end(&w);
	json_key(&w, "e");
	json_object_begin(&w);
	json_object_end(&w);
	json_object_end(&w);
	CHECK_EQ_STR(
	    out.data,
	    "{\"s\":\"\\u003ca\\u0026b\\u003e\\\"\\\\\\n\\t\\u0001\\u2028\\ufffd\xc3\xa9\","
	    "\"n\":-5,\"l\":[true,null,\"aGk=\"],\"e\":{}}");
	buf_free(&out);
}

static void test_value_limit(void)
{
	char err[64];
	const char *three = "{\"a\":[1,2]}"; /* object, array, 1, 2: four values */
	struct json_value *v = json_parse_limited(three, strlen(three), 4, err, sizeof err);
	CHECK(v != NULL);
	json_free(v);
	CHECK(json_parse_limited(three, strlen(three), 3, err, sizeof err) == NULL);
	CHECK_EQ_STR(err, "too many values");
	v = json_parse_limited(three, strlen(three), 0, err, sizeof err);
	CHECK(v != NULL);
	json_free(v);
}

/* json_parse_first reads as Go's json.Decoder.Decode: the first complete value, whatever
 * follows unread; json_parse (stored records, replies) stays strict. */
static void test_first_value(void)
{
	char err[64];
	const char *ok[][2] = {
	    {"{\"a\":1}{\"a\":2}", "1"}, {"{\"a\":1}garbage", "1"}, {"{\"a\":1}}", "1"},
	    {" {\"a\":1} \n", "1"},      {"{\"a\":1}[", "1"},       {"{\"a\":1}\xff\x00", "1"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct json_value *v =
		    json_parse_first(ok[i][0], strlen(ok[i][0]), 0, err, sizeof err);
		CHECK(v != NULL && json_type(v) == JSON_OBJECT);
		CHECK_EQ_STR(json_number(json_get(v, "a")), ok[i][1]);
		json_free(v);
		struct json_value *strict = parse(ok[i][0]);
		CHECK((strict == NULL) == (i != 3)); /* only the white-space tail is strict JSON */
		json_free(strict);
	}
	struct json_value *v = json_parse_first("nullx", 5, 0, err, sizeof err);
	CHECK(v != NULL && json_type(v) == JSON_NULL);
	json_free(v);
	v = json_parse_first("[1,2]3", 6, 0, err, sizeof err);
	CHECK(v != NULL && json_count(v) == 2);
	json_free(v);
	const char *bad[] = {"", "  ", "{", "{\"a\":", "{\"a\":1", "x{\"a\":1}", "{\"a\":}{}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(json_parse_first(bad[i], strlen(bad[i]), 0, err, sizeof err) == NULL);
	/* The value limit still applies to the first value. */
	CHECK(json_parse_first("[1,2,3]{}", 9, 3, err, sizeof err) == NULL);
	CHECK_EQ_STR(err, "too many values");
}

int main(void)
{
	RUN(test_first_value);
	RUN(test_value_limit);
	RUN(test_lookup_rules);
	RUN(test_rejects);
	RUN(test_base64_member);
	RUN(test_writer_matches_go);
	return CHECK_DONE();
}
