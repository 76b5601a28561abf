/* test_sha256_ni.c — keystore/sha256_ni.c against mbedTLS: SHA-256 of every length from 0 to
 * 300 bytes and HMAC-SHA256 with random 32-byte keys over the same lengths (every padding
 * case: one block, two blocks, the length field crossing a block), and key_hmac_sha256, which
 * KES's per-message key derivation calls, answering the same on either path. */
#include <stdlib.h>

#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include "check.h"
#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "keystore/sha256_ni.h"

static void mbed_hmac(const uint8_t key[32], const uint8_t *msg, size_t len, uint8_t out[32])
{
	if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key, 32, msg, len, out))
		abort();
}

static void test_digest_matches_mbedtls(void)
{
	if (!sha256_ni_usable()) {
		fprintf(stderr, "note: no SHA extensions on this CPU; mbedTLS is used\n");
		return;
	}
	static uint8_t msg[300];
	CHECK_EQ_INT(key_random(msg, sizeof msg), 0);
	for (size_t len = 0; len <= sizeof msg; len++) {
		uint8_t a[32], b[32];
		sha256_ni_digest(msg, len, a);
		CHECK_EQ_INT(mbedtls_sha256_ret(msg, len, b, 0), 0);
		CHECK_MEM(a, b, 32);
	}
}

static void test_hmac_matches_mbedtls(void)
{
	if (!sha256_ni_usable())
		return;
	static uint8_t msg[300];
	uint8_t key[32];
	for (size_t len = 0; len <= sizeof msg; len++) {
		uint8_t a[32], b[32];
		CHECK_EQ_INT(key_random(key, sizeof key), 0);
		CHECK_EQ_INT(key_random(msg, len), 0);
		sha256_ni_hmac(key, msg, len, a);
		mbed_hmac(key, msg, len, b);
		CHECK_MEM(a, b, 32);
	}
}

/* The derivation KES uses (HMAC-SHA256(K, 16-byte iv)) and the HMAC API, whichever path
 * key_hmac_sha256 takes on this CPU. */
static void test_key_hmac_sha256(void)
{
	uint8_t key[32], iv[16], a[32], b[32];
	for (int i = 0; i < 100; i++) {
		CHECK_EQ_INT(key_random(key, sizeof key), 0);
		CHECK_EQ_INT(key_random(iv, sizeof iv), 0);
		CHECK_EQ_INT(key_hmac_sha256(key, iv, sizeof iv, a), 0);
		mbed_hmac(key, iv, sizeof iv, b);
		CHECK_MEM(a, b, 32);
	}
	static uint8_t big[100000];
	CHECK_EQ_INT(key_random(big, sizeof big), 0);
	CHECK_EQ_INT(key_hmac_sha256(key, big, sizeof big, a), 0);
	mbed_hmac(key, big, sizeof big, b);
	CHECK_MEM(a, b, 32);
}

/* An empty message may come as (NULL, 0), as the HMAC API passes an empty body: defined, and
 * the HMAC of nothing (UBSan halts on memcpy from NULL). */
static void test_empty_message_as_null(void)
{
	uint8_t key[32], a[32], b[32];
	CHECK_EQ_INT(key_random(key, sizeof key), 0);
	mbed_hmac(key, (const uint8_t *)"", 0, b);
	CHECK_EQ_INT(key_hmac_sha256(key, NULL, 0, a), 0);
	CHECK_MEM(a, b, 32);
	if (!sha256_ni_usable())
		return;
	sha256_ni_hmac(key, NULL, 0, a);
	CHECK_MEM(a, b, 32);
	sha256_ni_digest(NULL, 0, a);
	CHECK_EQ_INT(mbedtls_sha256_ret((const uint8_t *)"", 0, b, 0), 0);
	CHECK_MEM(a, b, 32);
}

int main(void)
{
	RUN(test_digest_matches_mbedtls);
	RUN(test_hmac_matches_mbedtls);
	RUN(test_key_hmac_sha256);
	RUN(test_empty_message_as_null);
	return CHECK_DONE();
}
