/*
 * test_bulk_body.c — the bulk decrypt body reader (server/bulk_body.c): what Go's json.Decoder
 * decoding []struct{Ciphertext, Context []byte} accepts and refuses, the item limit, and that
 * the limit is checked only after the whole body proved valid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/bulk_body.h"

static int parse(const char *text, struct bulk_body *b)
{
	return bulk_body_parse((const uint8_t *)text, strlen(text), b);
}

static int parse_only(const char *text)
{
	struct bulk_body b;
	int rc = parse(text, &b);
	bulk_body_free(&b);
	return rc;
}

static void test_valid(void)
{
	struct bulk_body b;
	/* "AQI=" = {1,2}, "Aw==" = {3} */
	CHECK_EQ_INT(
	    parse("[{\"ciphertext\":\"AQI=\",\"context\":\"Aw==\"},{\"ciphertext\":\"Aw==\"}]", &b),
	    BULK_OK);
	CHECK_EQ_INT(b.count, 2);
	CHECK_EQ_INT(b.total, 2);
	CHECK(b.items[0].ciphertext.len == 2 && b.items[0].ciphertext.data[1] == 2);
	CHECK(b.items[0].context.len == 1 && b.items[0].context.data[0] == 3);
	CHECK(b.items[1].ciphertext.len == 1 && b.items[1].context.len == 0);
	bulk_body_free(&b);
	CHECK(b.items == NULL && b.count == 0);

	/* null and [] hold no items; a null element is an item without fields */
	CHECK_EQ_INT(parse("null", &b), BULK_OK);
	CHECK_EQ_INT(b.total, 0);
	bulk_body_free(&b);
	CHECK_EQ_INT(parse(" [ ] ", &b), BULK_OK);
	CHECK_EQ_INT(b.total, 0);
	bulk_body_free(&b);
	CHECK_EQ_INT(parse("[null,{}]", &b), BULK_OK);
	CHECK_EQ_INT(b.count, 2);
	CHECK(b.items[0].ciphertext.len == 0 && b.items[1].ciphertext.len == 0);
	bulk_body_free(&b);

	/* Go's member rules: any case, the last match wins, null empties, unknown members of any
	 * shape are ignored; only Kelvin sign and long s fold beyond ASCII, and neither occurs in
	 * these names, so a look-alike is another member */
	CHECK_EQ_INT(parse("[{\"CipherText\":\"AQI=\",\"CONTEXT\":\"Aw==\",\"context\":null,"
	                   "\"x\":{\"y\":[1,{\"ciphertext\":5}]},\"n\":1.5e3,\"t\":true}]",
	                   &b),
	             BULK_OK);
	CHECK(b.items[0].ciphertext.len == 2 && b.items[0].context.len == 0);
	bulk_body_free(&b);
	CHECK_EQ_INT(parse("[{\"ciphertext\":\"AQI=\",\"ciphertext\":\"Aw==\",\"\xc5\xbf\":1,"
	                   "\"conte\xe2\x84\xaat\":\"AQI=\"}]",
	                   &b),
	             BULK_OK);
	CHECK(b.items[0].ciphertext.len == 1 && b.items[0].context.len == 0);
	bulk_body_free(&b);

	/* the first value counts, whatever follows is not read (json.Decoder.Decode) */
	CHECK_EQ_INT(parse("[{\"ciphertext\":\"AQI=\"}] garbage {", &b), BULK_OK);
	CHECK_EQ_INT(b.count, 1);
	bulk_body_free(&b);
	/* base64 as Go: CR and LF skipped */
	CHECK_EQ_INT(parse("[{\"ciphertext\":\"AQ\\r\\nI=\"}]", &b), BULK_OK);
	CHECK_EQ_INT(b.items[0].ciphertext.len, 2);
	bulk_body_free(&b);
}

static void test_invalid(void)
{
	static const char *const bad[] = {
	    "",
	    "   ",
	    "{}",
	    "{\"ciphertext\":\"AQI=\"}",
	    "\"AQI=\"",
	    "1",
	    "true",
	    "[1]",
	    "[\"AQI=\"]",
	    "[[]]",
	    "[{\"ciphertext\":1}]",
	    "[{\"ciphertext\":true}]",
	    "[{\"ciphertext\":[1,2]}]",
	    "[{\"ciphertext\":{}}]",
	    "[{\"context\":\"not base64!\"}]",
	    "[{\"ciphertext\":\"AQI\"}]", /* padding is required */
	    "[{\"ciphertext\":\"AQI=\"}",
	    "[{\"ciphertext\":\"AQI=\"},]",
	    "[{\"ciphertext\" \"AQI=\"}]",
	    "[{\"ciphertext\":\"AQI=\"]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_only(bad[i]);
		if (rc != BULK_INVALID)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK_EQ_INT(rc, BULK_INVALID);
	}
	/* nesting deeper than any reader allows */
	char deep[400];
	size_t n = 0;
	deep[n++] = '[';
	deep[n++] = '{';
	memcpy(deep + n, "\"x\":", 4);
	n += 4;
	for (int i = 0; i < 100; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	CHECK_EQ_INT(parse_only(deep), BULK_INVALID);
}

/* "[" + n copies of item joined by "," + "]" (+ tail) */
static char *items(size_t n, const char *item, const char *tail)
{
	size_t len = 2 + n * (strlen(item) + 1) + strlen(tail) + 1;
	char *s = malloc(len), *p = s;
	*p++ = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		memcpy(p, item, strlen(item));
		p += strlen(item);
	}
	*p++ = ']';
	strcpy(p, tail);
	return s;
}

static void test_limit(void)
{
	struct bulk_body b;
	char *s = items(BULK_MAX_ITEMS, "{\"ciphertext\":\"AQI=\",\"context\":\"Aw==\"}", "");
	CHECK_EQ_INT(parse(s, &b), BULK_OK);
	CHECK_EQ_INT(b.count, BULK_MAX_ITEMS);
	CHECK_EQ_INT(b.items[BULK_MAX_ITEMS - 1].context.len, 1);
	bulk_body_free(&b);
	free(s);

	s = items(BULK_MAX_ITEMS + 1, "{\"ciphertext\":\"AQI=\"}", "");
	CHECK_EQ_INT(parse(s, &b), BULK_TOO_MANY);
	CHECK_EQ_INT(b.total, BULK_MAX_ITEMS + 1);
	CHECK(b.items == NULL && b.count == 0);
	bulk_body_free(&b);
	free(s);

	/* many tiny items cost no tree, and still count */
	s = items(200000, "{}", "");
	CHECK_EQ_INT(parse(s, &b), BULK_TOO_MANY);
	CHECK_EQ_INT(b.total, 200000);
	bulk_body_free(&b);
	free(s);

	/* past the limit, a malformed element is still malformed (Go decodes before counting) */
	s = items(BULK_MAX_ITEMS + 5, "{\"ciphertext\":\"AQI=\"}", "");
	char *bad = strstr(s + strlen(s) - 30, "AQI=");
	memcpy(bad, "A!I=", 4);
	CHECK_EQ_INT(parse_only(s), BULK_INVALID);
	free(s);
	s = items(BULK_MAX_ITEMS + 5, "null", "");
	s[strlen(s) - 1] = ','; /* unterminated array */
	CHECK_EQ_INT(parse_only(s), BULK_INVALID);
	free(s);
}

int main(void)
{
	RUN(test_valid);
	RUN(test_invalid);
	RUN(test_limit);
	return CHECK_DONE();
}
