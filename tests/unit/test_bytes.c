/* test_bytes.c — base64 (Go StdEncoding semantics), hex, bounded buffers, secmem helpers. */
#include "check.h"
#include "keystore/bytes.h"
#include "keystore/secmem.h"

static void test_base64_round_trip(void)
{
	const char *vectors[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		struct buf b;
		buf_init(&b, 0);
		base64_encode(&b, (const uint8_t *)vectors[i][0], strlen(vectors[i][0]));
		CHECK_EQ_STR(b.len ? b.data : "", vectors[i][1]);
		struct bytes d;
		CHECK_EQ_INT(base64_decode(&d, vectors[i][1], strlen(vectors[i][1])), 0);
		CHECK_EQ_INT(d.len, strlen(vectors[i][0]));
		CHECK_MEM(d.data, vectors[i][0], d.len);
		bytes_free(&d);
		buf_free(&b);
	}
}

static void test_base64_all_bytes(void)
{
	uint8_t all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	struct buf b;
	buf_init(&b, 0);
	base64_encode(&b, all, sizeof all);
	struct bytes d;
	CHECK_EQ_INT(base64_decode(&d, b.data, b.len), 0);
	CHECK_EQ_INT(d.len, 256);
	CHECK_MEM(d.data, all, 256);
	bytes_free(&d);
	buf_free(&b);
}

static void test_base64_rejects(void)
{
	const char *bad[] = {"Zg",   "Zg=",   "Z===", "Zm9v=", "Zg==Zg==", "Zm9-",
	                     "Zm9_", "Zm 9v", "=Zm9", "Zm9vY", "*AAA"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct bytes d;
		CHECK_EQ_INT(base64_decode(&d, bad[i], strlen(bad[i])), -1);
		CHECK(d.data == NULL && d.len == 0);
	}
	/* Go skips CR and LF. */
	struct bytes d;
	CHECK_EQ_INT(base64_decode(&d, "Zm9v\r\nYmFy", 10), 0);
	CHECK_EQ_INT(d.len, 6);
	bytes_free(&d);
}

static void test_hex(void)
{
	uint8_t in[] = {0x00, 0xab, 0xff, 0x10};
	char out[9];
	hex_encode(out, in, 4);
	CHECK_EQ_STR(out, "00abff10");
	uint8_t back[4];
	CHECK_EQ_INT(hex_decode(back, 4, "00ABff10", 8), 0);
	CHECK_MEM(back, in, 4);
	CHECK_EQ_INT(hex_decode(back, 4, "00abff1", 7), -1);
	CHECK_EQ_INT(hex_decode(back, 4, "00abff1g", 8), -1);
}

static void test_buf_limit(void)
{
	struct buf b;
	buf_init(&b, 8);
	buf_append_str(&b, "12345678");
	CHECK(!buf_failed(&b));
	buf_append_char(&b, '9');
	CHECK(buf_failed(&b));
	CHECK_EQ_INT(b.len, 8);
	buf_printf(&b, "%d", 1);
	CHECK_EQ_INT(b.len, 8);
	buf_reset(&b);
	CHECK(!buf_failed(&b));
	buf_printf(&b, "%s-%d", "ab", 42);
	CHECK_EQ_STR(b.data, "ab-42");
	struct bytes t;
	CHECK_EQ_INT(buf_take(&b, &t), 0);
	CHECK_EQ_INT(t.len, 5);
	bytes_free(&t);
	buf_free(&b);
}

static void test_buf_append_decimal(void)
{
	static const int64_t values[] = {
	    0, 7, 10, 200, -1, 1500, 9223372036854775807LL, -9223372036854775807LL - 1};
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		char want[32];
		snprintf(want, sizeof want, "%lld", (long long)values[i]);
		struct buf b;
		buf_init(&b, 0);
		buf_append_str(&b, "x");
		buf_append_decimal(&b, values[i]);
		CHECK(!buf_failed(&b));
		CHECK_EQ_STR(b.data + 1, want);
		buf_free(&b);
	}
	struct buf small;
	buf_init(&small, 3);
	buf_append_decimal(&small, 1234);
	CHECK(buf_failed(&small));
	buf_free(&small);
}

static void test_ct(void)
{
	CHECK(ct_equal("abc", "abc", 3));
	CHECK(!ct_equal("abc", "abd", 3));
	CHECK(ct_equal("", "", 0));
	CHECK(ct_streq("abc", "abc"));
	CHECK(!ct_streq("abc", "abcd"));
	CHECK(!ct_streq("", "a"));
	CHECK(ct_streq("", ""));
}

static void test_secure_alloc(void)
{
	void *p[100];
	for (int i = 0; i < 100; i++) {
		p[i] = secure_alloc(200);
		CHECK(p[i] != NULL);
		memset(p[i], 0xaa, 200);
	}
	for (int i = 0; i < 100; i++)
		secure_free(p[i], 200);
	void *big = secure_alloc(10000);
	CHECK(big != NULL);
	memset(big, 1, 10000);
	secure_free(big, 10000);
	/* Reused slots come back zeroed. */
	unsigned char *q = secure_alloc(16);
	int zero = 1;
	for (int i = 0; i < 16; i++)
		zero &= q[i] == 0;
	CHECK(zero);
	secure_free(q, 16);
}

int main(void)
{
	RUN(test_base64_round_trip);
	RUN(test_base64_all_bytes);
	RUN(test_base64_rejects);
	RUN(test_hex);
	RUN(test_buf_limit);
	RUN(test_buf_append_decimal);
	RUN(test_ct);
	RUN(test_secure_alloc);
	return CHECK_DONE();
}
