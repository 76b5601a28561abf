/* test_key.c — secret keys against KES's own vectors (reference kes.md §7): the encryption
 * primitive, the three ciphertext formats, the stored-record codec, HMAC and names. */
#include <stdlib.h>

#include "check.h"
#include "keystore/bytes.h"
#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "keystore/tombstone.h"

static const char *Z_B64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
static const char *K2_B64 = "dDHbTWgo+Yh3u804SYB5OyVMy6RiLeJYBQth1f6KlEU=";
static const uint8_t P0[16];
static const uint8_t AD16[16];
static const uint8_t P6[28] = {0x08, 0xb7, 0x09, 0xa3, 0x29, 0x05, 0x09, 0x66, 0x43, 0x90,
                               0x42, 0x22, 0x52, 0xaf, 0x5b, 0x25, 0x1a, 0xb0, 0x0b, 0x05,
                               0xbd, 0x64, 0x3b, 0xdd, 0x82, 0xef, 0x04, 0x30};

static struct bytes b64(const char *s)
{
	struct bytes b = {NULL, 0};
	if (base64_decode(&b, s, strlen(s)) != 0)
		abort();
	return b;
}

static struct bytes unhex(const char *s)
{
	struct bytes b;
	size_t n = strlen(s) / 2;
	if (bytes_set(&b, s, n) != 0 || hex_decode(b.data, n, s, 2 * n) != 0)
		abort();
	return b;
}

/* A key with the given base64 bytes, as KES's tests build them (typed, with zero HMAC key). */
static struct secret_key *make_key(enum key_algorithm alg, const char *key_b64, bool typed)
{
	struct bytes raw = b64(key_b64);
	struct secret_key *k = key_alloc();
	if (!k || raw.len != KEY_SIZE)
		abort();
	memcpy(k->key, raw.data, KEY_SIZE);
	k->algorithm = alg;
	k->typed = typed;
	k->has_hmac = true;
	bytes_free(&raw);
	return k;
}

static int decrypt_text(const struct secret_key *k, const char *ct, struct bytes *pt)
{
	return key_decrypt(k, (const uint8_t *)ct, strlen(ct), NULL, 0, pt);
}

static void test_hchacha20_vector(void)
{
	struct bytes key =
	    unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
	struct bytes in = unhex("000000090000004a0000000031415927");
	struct bytes want =
	    unhex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
	uint8_t out[32];
	key_hchacha20(out, key.data, in.data);
	CHECK_MEM(out, want.data, 32);
	bytes_free(&key);
	bytes_free(&in);
	bytes_free(&want);
}

static void test_hmac_vector(void)
{
	struct secret_key *k = make_key(KEY_ALG_AES256, Z_B64, true);
	struct bytes want =
	    unhex("50082da69e7e4780c867be198e795b9cd5e94e739ee9485aa95a70f60e36e73f");
	uint8_t out[32];
	CHECK_EQ_INT(key_hmac(k, (const uint8_t *)"Hello World", 11, out), 0);
	CHECK_MEM(out, want.data, 32);
	k->has_hmac = false;
	CHECK_EQ_INT(key_hmac(k, (const uint8_t *)"Hello World", 11, out), KEY_ERR_NO_HMAC);
	bytes_free(&want);
	key_free(k);
}

/* The per-message key of KES's raw vector #5, step by step. */
static void test_message_key_vector(void)
{
	struct bytes iv = unhex("33679f28ecc01dba930b93766394ca36");
	struct bytes want =
	    unhex("80ebfc99a687d9377850d80a16b2b1d185beb953349212d44638bba321661f6a");
	struct bytes z = b64(Z_B64);
	uint8_t out[32];
	CHECK_EQ_INT(key_hmac_sha256(z.data, iv.data, iv.len, out), 0);
	CHECK_MEM(out, want.data, 32);
	bytes_free(&iv);
	bytes_free(&want);
	bytes_free(&z);
}

static const char *DECRYPT_OK[] = {
    /* 0 JSON */
    "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
    "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
};
static const char *MSGP_B64 =
    "lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0SaHZrX5"
    "LBufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ=";
static const char *RAW_B64 =
    "zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc";

static void check_decrypts_p0(const struct secret_key *k, const uint8_t *ct, size_t n)
{
	struct bytes pt;
	CHECK_EQ_INT(key_decrypt(k, ct, n, NULL, 0, &pt), 0);
	CHECK_EQ_INT(pt.len, sizeof P0);
	if (pt.len == sizeof P0)
		CHECK_MEM(pt.data, P0, sizeof P0);
	bytes_free(&pt);
}

static void test_decrypt_vectors_ok(void)
{
	struct secret_key *k = make_key(KEY_ALG_AES256, Z_B64, true);
	check_decrypts_p0(k, (const uint8_t *)DECRYPT_OK[0], strlen(DECRYPT_OK[0]));
	struct bytes m = b64(MSGP_B64), r = b64(RAW_B64);
	CHECK_EQ_INT(m.data[0], 0x95);
	check_decrypts_p0(k, m.data, m.len);
	CHECK_EQ_INT(r.len, 16 + 44);
	check_decrypts_p0(k, r.data, r.len);
	/* The same vectors with an untyped legacy key (which follows the named algorithm). */
	k->typed = false;
	check_decrypts_p0(k, (const uint8_t *)DECRYPT_OK[0], strlen(DECRYPT_OK[0]));
	check_decrypts_p0(k, m.data, m.len);
	check_decrypts_p0(k, r.data, r.len);
	bytes_free(&m);
	bytes_free(&r);
	key_free(k);
}

static const struct {
	enum key_algorithm alg;
	const char *ct;
} DECRYPT_FAIL[] = {
    {KEY_ALG_AES256, /* 8 invalid algorithm */
     "{\"aead\":\"AES-256-GCM\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":\"gu0mGwUkwcvMEoi5\","
     "\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}"},
    {KEY_ALG_AES256, /* 9 IV length */
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"EjOY4JKqjIrPmQ5z1KSR8zlhggY=\",\"nonce\":"
     "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}"},
    {KEY_ALG_CHACHA20, /* 10 nonce length */
     "{\"aead\":\"ChaCha20Poly1305\",\"iv\":\"s3fSZ6vk5m+DfQA8yZWeUg==\",\"nonce\":\"SXAbms731/"
     "c=\","
     "\"bytes\":\"cw22HjLq/4cx8507SW4hhSrYbDiMuRao4b5+GE+XfbE=\"}"},
    {KEY_ALG_AES256, /* 11 nonce length */
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
     "\"efY+4kYF9n8=\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}"},
    {KEY_ALG_AES256, /* 12 not authentic */
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
     "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"QTza1g5oX3f9cGJMbY1xJwWPj1F7R2VnNl6XpFKYQy0=\"}"},
    {KEY_ALG_CHACHA20, /* 13 not authentic */
     "{\"aead\":\"ChaCha20Poly1305\",\"iv\":\"s3fSZ6vk5m+DfQA8yZWeUg==\",\"nonce\":"
     "\"8/kHMnCMs3h9NZ2a\",\"bytes\":\"TTi8pkO+Jh1JWAHvPxZeUk/iVoBPUCE4ZSVGBy3fW2s=\"}"},
    {KEY_ALG_AES256, /* 14 invalid JSON */
     "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\" \"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
     "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}"},
};

static void test_decrypt_vectors_fail(void)
{
	for (size_t i = 0; i < sizeof DECRYPT_FAIL / sizeof DECRYPT_FAIL[0]; i++) {
		for (int typed = 0; typed < 2; typed++) {
			struct secret_key *k = make_key(DECRYPT_FAIL[i].alg, Z_B64, typed);
			struct bytes pt = {(uint8_t *)"x", 1};
			CHECK_EQ_INT(decrypt_text(k, DECRYPT_FAIL[i].ct, &pt),
			             KEY_ERR_NOT_AUTHENTIC);
			CHECK(pt.data == NULL && pt.len == 0);
			key_free(k);
		}
	}
}

static void round_trip(enum key_algorithm alg, const char *key_b64, const uint8_t *p, size_t n,
                       const uint8_t *ad, size_t ad_len)
{
	struct secret_key *k = make_key(alg, key_b64, true);
	struct bytes ct, pt;
	CHECK_EQ_INT(key_encrypt(k, p, n, ad, ad_len, &ct), 0);
	CHECK_EQ_INT(ct.len, n + 44);
	CHECK_EQ_INT(key_decrypt(k, ct.data, ct.len, ad, ad_len, &pt), 0);
	CHECK_EQ_INT(pt.len, n);
	if (pt.len == n && n)
		CHECK_MEM(pt.data, p, n);
	bytes_free(&pt);
	/* the other algorithm with the same key bytes must not open it */
	k->algorithm = alg == KEY_ALG_AES256 ? KEY_ALG_CHACHA20 : KEY_ALG_AES256;
	CHECK_EQ_INT(key_decrypt(k, ct.data, ct.len, ad, ad_len, &pt), KEY_ERR_NOT_AUTHENTIC);
	/* two encryptions of the same plaintext differ (fresh iv and nonce) */
	struct bytes ct2;
	k->algorithm = alg;
	CHECK_EQ_INT(key_encrypt(k, p, n, ad, ad_len, &ct2), 0);
	CHECK(ct2.len == ct.len && memcmp(ct2.data, ct.data, ct.len) != 0);
	bytes_free(&ct2);
	bytes_free(&ct);
	key_free(k);
}

static void test_encrypt_round_trips(void)
{
	/* KES's secretKeyEncryptTests */
	round_trip(KEY_ALG_AES256, Z_B64, P0, sizeof P0, NULL, 0);
	round_trip(KEY_ALG_AES256, K2_B64, P0, sizeof P0, NULL, 0);
	round_trip(KEY_ALG_AES256, K2_B64, P6, sizeof P6, AD16, sizeof AD16);
	round_trip(KEY_ALG_CHACHA20, K2_B64, P6, sizeof P6, AD16, sizeof AD16);
	/* and the rest of the grid, empty plaintext included */
	round_trip(KEY_ALG_CHACHA20, Z_B64, P0, sizeof P0, NULL, 0);
	round_trip(KEY_ALG_AES256, K2_B64, NULL, 0, NULL, 0);
	round_trip(KEY_ALG_CHACHA20, K2_B64, NULL, 0, NULL, 0);
	round_trip(KEY_ALG_AES256, K2_B64, NULL, 0, AD16, sizeof AD16);
	round_trip(KEY_ALG_CHACHA20, K2_B64, NULL, 0, AD16, sizeof AD16);
	uint8_t big[4096];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	round_trip(KEY_ALG_AES256, K2_B64, big, sizeof big, big, 100);
	round_trip(KEY_ALG_CHACHA20, K2_B64, big, sizeof big, big, 100);
}

/* Every single flipped bit of a raw ciphertext, and of its context, fails authentication. */
static void flip_all_bits(enum key_algorithm alg)
{
	struct secret_key *k = make_key(alg, K2_B64, true);
	const uint8_t msg[5] = "hello";
	uint8_t ad[8] = "context!";
	struct bytes ct, pt;
	int opened = 0;
	CHECK_EQ_INT(key_encrypt(k, msg, sizeof msg, ad, sizeof ad, &ct), 0);
	for (size_t bit = 0; bit < ct.len * 8; bit++) {
		ct.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (key_decrypt(k, ct.data, ct.len, ad, sizeof ad, &pt) != KEY_ERR_NOT_AUTHENTIC)
			opened++;
		bytes_free(&pt);
		ct.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ_INT(opened, 0);
	for (size_t bit = 0; bit < sizeof ad * 8; bit++) {
		ad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (key_decrypt(k, ct.data, ct.len, ad, sizeof ad, &pt) != KEY_ERR_NOT_AUTHENTIC)
			opened++;
		ad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ_INT(opened, 0);
	/* missing context, shortened context */
	CHECK_EQ_INT(key_decrypt(k, ct.data, ct.len, NULL, 0, &pt), KEY_ERR_NOT_AUTHENTIC);
	CHECK_EQ_INT(key_decrypt(k, ct.data, ct.len, ad, sizeof ad - 1, &pt),
	             KEY_ERR_NOT_AUTHENTIC);
	CHECK_EQ_INT(key_decrypt(k, ct.data, ct.len, ad, sizeof ad, &pt), 0);
	CHECK(pt.len == sizeof msg && memcmp(pt.data, msg, sizeof msg) == 0);
	bytes_free(&pt);
	bytes_free(&ct);
	key_free(k);
}

static void test_bit_flips(void)
{
	flip_all_bits(KEY_ALG_AES256);
	flip_all_bits(KEY_ALG_CHACHA20);
}

static void test_malformed_inputs(void)
{
	struct secret_key *k = make_key(KEY_ALG_AES256, Z_B64, true);
	struct bytes r = b64(RAW_B64), m = b64(MSGP_B64), pt;
	/* every truncation of a valid raw and msgpack ciphertext, and the empty input */
	for (size_t n = 0; n < r.len; n++)
		CHECK_EQ_INT(key_decrypt(k, r.data, n, NULL, 0, &pt), KEY_ERR_NOT_AUTHENTIC);
	for (size_t n = 0; n < m.len; n++)
		CHECK_EQ_INT(key_decrypt(k, m.data, n, NULL, 0, &pt), KEY_ERR_NOT_AUTHENTIC);
	/* a trailing byte after the msgpack array, or an oversized raw input */
	uint8_t big[256];
	memset(big, 0xab, sizeof big);
	memcpy(big, m.data, m.len);
	CHECK_EQ_INT(key_decrypt(k, big, m.len + 1, NULL, 0, &pt), KEY_ERR_NOT_AUTHENTIC);
	memcpy(big, r.data, r.len);
	CHECK_EQ_INT(key_decrypt(k, big, sizeof big, NULL, 0, &pt), KEY_ERR_NOT_AUTHENTIC);
	/* msgpack with a 15-byte iv (c4 10 → c4 0f) and a str where a bin belongs */
	memcpy(big, m.data, m.len);
	big[54] = 0x0f;
	CHECK_EQ_INT(key_decrypt(k, big, m.len, NULL, 0, &pt), KEY_ERR_NOT_AUTHENTIC);
	memcpy(big, m.data, m.len);
	big[53] = 0xd9;
	CHECK_EQ_INT(key_decrypt(k, big, m.len, NULL, 0, &pt), KEY_ERR_NOT_AUTHENTIC);
	/* JSON with bad base64, wrong member types, not an object */
	static const char *bad_json[] = {
	    "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUw!==\",\"nonce\":"
	    "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
	    "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
	    "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc\"}",
	    "{\"aead\":1,\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":\"gu0mGwUkwcvMEoi5\","
	    "\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}",
	    "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
	    "\"gu0mGwUkwcvMEoi5\"}",
	    "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
	    "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"AAAA\"}",
	    "{}",
	    "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\"}",
	    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]",
	};
	for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
		CHECK_EQ_INT(decrypt_text(k, bad_json[i], &pt), KEY_ERR_NOT_AUTHENTIC);
	bytes_free(&r);
	bytes_free(&m);
	key_free(k);
}

/* Builds msgpack [alg, id, iv, nonce, sealed] from a raw ciphertext, with wide length forms
 * (str8 alg, str16 id, bin16 sealed) to check the parser takes every width. */
static size_t to_msgpack(const struct bytes *raw, const char *alg, uint8_t *out)
{
	size_t sealed = raw->len - 28, n = 0, alg_len = strlen(alg);
	out[n++] = 0x95;
	out[n++] = 0xd9;
	out[n++] = (uint8_t)alg_len;
	memcpy(out + n, alg, alg_len);
	n += alg_len;
	out[n++] = 0xda;
	out[n++] = 0;
	out[n++] = 2;
	out[n++] = 'i';
	out[n++] = 'd';
	out[n++] = 0xc4;
	out[n++] = 16;
	memcpy(out + n, raw->data + sealed, 16);
	n += 16;
	out[n++] = 0xc4;
	out[n++] = 12;
	memcpy(out + n, raw->data + sealed + 16, 12);
	n += 12;
	out[n++] = 0xc5;
	out[n++] = (uint8_t)(sealed >> 8);
	out[n++] = (uint8_t)sealed;
	memcpy(out + n, raw->data, sealed);
	return n + sealed;
}

/* A JSON ciphertext (G1) from a raw one. */
static void to_json(const struct bytes *raw, const char *aead, struct buf *out)
{
	size_t sealed = raw->len - 28;
	buf_printf(out, "{\"aead\":\"%s\",\"id\":\"x\",\"iv\":\"", aead);
	base64_encode(out, raw->data + sealed, 16);
	buf_append_str(out, "\",\"nonce\":\"");
	base64_encode(out, raw->data + sealed + 16, 12);
	buf_append_str(out, "\",\"bytes\":\"");
	base64_encode(out, raw->data, sealed);
	buf_append_str(out, "\"}");
}

/* Untyped legacy keys follow the algorithm the ciphertext names; typed keys ignore it. */
static void test_legacy_formats_follow_named_algorithm(void)
{
	static const struct {
		enum key_algorithm alg;
		const char *msgp, *aead;
	} names[] = {
	    {KEY_ALG_AES256, "AES256-GCM_SHA256", "AES-256-GCM-HMAC-SHA-256"},
	    {KEY_ALG_AES256, "AES256", "AES-256-GCM-HMAC-SHA-256"},
	    {KEY_ALG_CHACHA20, "XCHACHA20-POLY1305", "ChaCha20Poly1305"},
	    {KEY_ALG_CHACHA20, "ChaCha20", "ChaCha20Poly1305"},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		enum key_algorithm other =
		    names[i].alg == KEY_ALG_AES256 ? KEY_ALG_CHACHA20 : KEY_ALG_AES256;
		struct secret_key *k = make_key(names[i].alg, K2_B64, true);
		struct bytes raw, pt;
		uint8_t mp[512];
		struct buf js;
		buf_init(&js, 0);
		CHECK_EQ_INT(key_encrypt(k, P6, sizeof P6, AD16, sizeof AD16, &raw), 0);
		size_t mp_len = to_msgpack(&raw, names[i].msgp, mp);
		to_json(&raw, names[i].aead, &js);
		/* typed with the right algorithm: opens */
		CHECK_EQ_INT(key_decrypt(k, mp, mp_len, AD16, sizeof AD16, &pt), 0);
		CHECK(pt.len == sizeof P6 && memcmp(pt.data, P6, sizeof P6) == 0);
		bytes_free(&pt);
		CHECK_EQ_INT(key_decrypt(k, (uint8_t *)js.data, js.len, AD16, sizeof AD16, &pt), 0);
		bytes_free(&pt);
		/* untyped, recorded as the other algorithm: the ciphertext's name wins */
		k->typed = false;
		k->algorithm = other;
		CHECK_EQ_INT(key_decrypt(k, mp, mp_len, AD16, sizeof AD16, &pt), 0);
		bytes_free(&pt);
		CHECK_EQ_INT(key_decrypt(k, (uint8_t *)js.data, js.len, AD16, sizeof AD16, &pt), 0);
		bytes_free(&pt);
		CHECK_EQ_INT(key_decrypt(k, raw.data, raw.len, AD16, sizeof AD16, &pt),
		             KEY_ERR_NOT_AUTHENTIC);
		/* typed as the other algorithm: the name is ignored, as in KES */
		k->typed = true;
		CHECK_EQ_INT(key_decrypt(k, mp, mp_len, AD16, sizeof AD16, &pt),
		             KEY_ERR_NOT_AUTHENTIC);
		CHECK_EQ_INT(key_decrypt(k, (uint8_t *)js.data, js.len, AD16, sizeof AD16, &pt),
		             KEY_ERR_NOT_AUTHENTIC);
		buf_free(&js);
		bytes_free(&raw);
		key_free(k);
	}
}

/* A JSON document of about n bytes: {"a":[0,0,…]} (prefix/suffix allow other shapes). */
static void fill_values(struct buf *out, const char *prefix, size_t n, const char *suffix)
{
	buf_append_str(out, prefix);
	while (out->len + 2 + strlen(suffix) < n)
		buf_append_str(out, "0,");
	buf_append_str(out, "0");
	buf_append_str(out, suffix);
}

/*
 * issue 9: a 1 MB decrypt whose ciphertext was {"a":[0,0,…]} built a tree of half a million
 * values (~52 MB, 160 ms) on a loop thread before failing. A real JSON ciphertext is one flat
 * object of five strings, so a document with more values than that can hold is not parsed as
 * one: it is raw (as any input that is not a JSON ciphertext), and fails authentication with
 * the same 400. Its size is not the bound: G1's /v1/key/encrypt made JSON ciphertexts as large
 * as the plaintext, and those must keep decrypting.
 */
static void test_json_ciphertext_bounded(void)
{
	struct secret_key *k = make_key(KEY_ALG_AES256, K2_B64, true);
	struct key_ciphertext c;
	struct bytes raw, pt;
	struct buf doc;
	static const char *shapes[][2] = {
	    {"{\"a\":[", "]}"},
	    {"{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"pad\":[", "]}"},
	    {"{\"a\":[[],", "]}"},
	};

	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		buf_init(&doc, 0);
		fill_values(&doc, shapes[i][0], 1000000, shapes[i][1]);
		CHECK(!buf_failed(&doc));
		/* Not built into a tree: taken as raw, so it points into the input. */
		CHECK_EQ_INT(key_ciphertext_parse((uint8_t *)doc.data, doc.len, &c), 0);
		CHECK(c.owned.data == NULL && c.sealed == (const uint8_t *)doc.data);
		key_ciphertext_free(&c);
		CHECK_EQ_INT(key_decrypt(k, (uint8_t *)doc.data, doc.len, NULL, 0, &pt),
		             KEY_ERR_NOT_AUTHENTIC);
		buf_free(&doc);
	}

	/* A JSON ciphertext of a 700 kB plaintext, as G1's encrypt made them, still opens. */
	size_t big = 700000;
	uint8_t *p = calloc(1, big);
	CHECK(p != NULL);
	if (p) {
		p[big - 1] = 0x5a;
		CHECK_EQ_INT(key_encrypt(k, p, big, AD16, sizeof AD16, &raw), 0);
		buf_init(&doc, 0);
		to_json(&raw, "AES-256-GCM-HMAC-SHA-256", &doc);
		CHECK(doc.len > 900000);
		CHECK_EQ_INT(key_decrypt(k, (uint8_t *)doc.data, doc.len, AD16, sizeof AD16, &pt),
		             0);
		CHECK(pt.len == big && memcmp(pt.data, p, big) == 0);
		bytes_free(&pt);
		buf_free(&doc);
		bytes_free(&raw);
		free(p);
	}

	/* What Go accepts around a real one (white space, unknown members, nulls) still does. */
	const char *spaced =
	    "{ \"aead\" : \"AES-256-GCM-HMAC-SHA-256\", \"id\": null, \"x\": \"y\",\n"
	    "  \"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":\"gu0mGwUkwcvMEoi5\","
	    "\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\" }";
	struct secret_key *z = make_key(KEY_ALG_AES256, Z_B64, true);
	CHECK_EQ_INT(decrypt_text(z, spaced, &pt), 0);
	CHECK(pt.len == sizeof P0 && memcmp(pt.data, P0, sizeof P0) == 0);
	bytes_free(&pt);
	key_free(z);
	key_free(k);
}

static const char *PB_RECORD =
    "CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20Y"
    "QZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MGFl"
    "NmI1Nzg2OThhOTdjNTlmZDIy";
static const char *PB_BY = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";

/* KES's parseKeyVersionTests protobuf vector: the stated fields, and the exact bytes back. */
static void test_record_protobuf_vector(void)
{
	struct secret_key *k;
	CHECK_EQ_INT(key_record_decode((const uint8_t *)PB_RECORD, strlen(PB_RECORD), &k), 0);
	if (!k)
		return;
	struct bytes key = b64("yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY=");
	struct bytes hmac = b64("nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=");
	CHECK_MEM(k->key, key.data, 32);
	CHECK_MEM(k->hmac_key, hmac.data, 32);
	CHECK_EQ_INT(k->algorithm, KEY_ALG_AES256);
	CHECK(k->typed && k->has_hmac);
	CHECK_EQ_INT(k->created_at_sec, 1705055960); /* 2024-01-12T11:39:20.886816+01:00 */
	CHECK_EQ_INT(k->created_at_nsec, 886816000);
	CHECK_EQ_STR(k->created_by, PB_BY);
	struct bytes enc;
	CHECK_EQ_INT(key_record_encode(k, &enc), 0);
	CHECK_EQ_STR((const char *)enc.data, PB_RECORD);
	/* the decoded protobuf is the reference byte breakdown */
	struct bytes pb = b64(PB_RECORD);
	CHECK(pb.len == 2 + 36 + 2 + 36 + 2 + 12 + 2 + 64);
	CHECK_MEM(pb.data, "\x0a\x24\x0a\x20", 4);
	CHECK_MEM(pb.data + 36, "\x10\x01\x12\x24\x0a\x20", 6);
	CHECK_MEM(pb.data + 74,
	          "\x10\x01\x1a\x0c\x08\xd8\xad\x84\xad\x06\x10\x80\xfa\xee\xa6\x03"
	          "\x22\x40",
	          18);
	bytes_free(&pb);
	bytes_free(&enc);
	/* encodeSecretKeyVersionTests: without an HMAC key encoding fails */
	k->has_hmac = false;
	CHECK_EQ_INT(key_record_encode(k, &enc), KEY_ERR_INVALID);
	k->has_hmac = true;
	k->algorithm = 0;
	CHECK_EQ_INT(key_record_encode(k, &enc), KEY_ERR_INVALID);
	bytes_free(&key);
	bytes_free(&hmac);
	key_free(k);
}

static void test_record_round_trip(void)
{
	static const enum key_algorithm algs[] = {KEY_ALG_AES256, KEY_ALG_CHACHA20};
	const char *bys[] = {"", PB_BY};
	for (size_t i = 0; i < 4; i++) {
		struct secret_key *k, *d;
		struct bytes enc;
		CHECK_EQ_INT(key_generate(algs[i % 2], bys[i / 2], &k), 0);
		CHECK_EQ_INT(key_record_encode(k, &enc), 0);
		CHECK_EQ_INT(key_record_decode(enc.data, enc.len, &d), 0);
		if (d) {
			CHECK_MEM(d->key, k->key, 32);
			CHECK_MEM(d->hmac_key, k->hmac_key, 32);
			CHECK_EQ_INT(d->algorithm, k->algorithm);
			CHECK(d->typed && d->has_hmac);
			CHECK_EQ_INT(d->created_at_sec, k->created_at_sec);
			CHECK_EQ_INT(d->created_at_nsec, k->created_at_nsec);
			CHECK_EQ_STR(d->created_by, k->created_by);
		}
		/* zero time and nanos are omitted (proto3) and still round-trip */
		k->created_at_sec = 0;
		k->created_at_nsec = 0;
		bytes_free(&enc);
		key_free(d);
		CHECK_EQ_INT(key_record_encode(k, &enc), 0);
		CHECK_EQ_INT(key_record_decode(enc.data, enc.len, &d), 0);
		if (d)
			CHECK(d->created_at_sec == 0 && d->created_at_nsec == 0);
		bytes_free(&enc);
		key_free(d);
		key_free(k);
	}
}

static void test_record_json_vectors(void)
{
	static const struct {
		const char *rec;
		uint8_t last;
		enum key_algorithm alg;
		bool typed;
	} ok[] = {
	    {"{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}", 0, KEY_ALG_AES256,
	     false},
	    {"{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=\"}", 1, KEY_ALG_AES256,
	     false},
	    {"{\"bytes\":\"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=\"}", 0x41, KEY_ALG_AES256,
	     false},
	    {"{\"bytes\":\"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=\",\"algorithm\":"
	     "\"AES256-GCM_SHA256\",\"created_at\":\"2009-11-10T23:00:00Z\",\"created_by\":"
	     "\"40235905b7b83e0537a002db523cd019d6709b899adc249c957860cd00fa9f78\"}",
	     0x41, KEY_ALG_AES256, true},
	    {"{\"bytes\":\"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=\",\"algorithm\":"
	     "\"XCHACHA20-POLY1305\",\"version\":\"v1\",\"created_at\":null}",
	     0x41, KEY_ALG_CHACHA20, true},
	    {"{\"bytes\":\"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=\",\"algorithm\":\"\"}",
	     0x41, KEY_ALG_AES256, false},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct secret_key *k;
		CHECK_EQ_INT(key_record_decode((const uint8_t *)ok[i].rec, strlen(ok[i].rec), &k),
		             0);
		if (!k)
			continue;
		CHECK_EQ_INT(k->key[31], ok[i].last);
		CHECK_EQ_INT(k->algorithm, ok[i].alg);
		CHECK_EQ_INT(k->typed, ok[i].typed);
		CHECK(!k->has_hmac);
		uint8_t mac[32];
		CHECK_EQ_INT(key_hmac(k, (const uint8_t *)"x", 1, mac), KEY_ERR_NO_HMAC);
		struct bytes enc;
		CHECK_EQ_INT(key_record_encode(k, &enc), KEY_ERR_INVALID);
		if (i == 3) {
			CHECK_EQ_INT(k->created_at_sec, 1257894000);
			CHECK_EQ_INT(k->created_at_nsec, 0);
			CHECK_EQ_STR(
			    k->created_by,
			    "40235905b7b83e0537a002db523cd019d6709b899adc249c957860cd00fa9f78");
		}
		key_free(k);
	}
	static const char *bad[] = {
	    /* KES's must-fail list */
	    "\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
	    "{bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
	    "{\"bytes\"\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}",
	    "\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
	    /* and: short key, unknown algorithm, bad time, wrong types, not an object */
	    "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"}",
	    "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"algorithm\":\"AES128\"}",
	    "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"created_at\":"
	    "\"yesterday\"}",
	    "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"created_at\":5}",
	    "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"created_at\":\"\"}",
	    "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"created_by\":[]}",
	    "{\"bytes\":5}",
	    "{}",
	    "null",
	    "[]",
	    "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct secret_key *k = (struct secret_key *)1;
		CHECK_EQ_INT(key_record_decode((const uint8_t *)bad[i], strlen(bad[i]), &k),
		             KEY_ERR_INVALID);
		CHECK(k == NULL);
	}
}

/* issue 9, the same class for stored records (read on a cache miss): a legacy JSON record is
 * an object of at most five members, so a 1 MB record of half a million values is refused
 * without building its tree, even if it carries a valid "bytes" member. */
static void test_record_json_bounded(void)
{
	struct secret_key *k = (struct secret_key *)1;
	struct buf doc;

	buf_init(&doc, 0);
	fill_values(&doc, "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"x\":[",
	            1000000, "]}");
	CHECK_EQ_INT(key_record_decode((uint8_t *)doc.data, doc.len, &k), KEY_ERR_INVALID);
	CHECK(k == NULL);
	buf_free(&doc);
}

/* Encodes a protobuf (given as hex) as a record and decodes it. */
static int decode_pb_hex(const char *hex, struct secret_key **k)
{
	struct bytes pb = unhex(hex);
	struct buf b;
	buf_init(&b, 0);
	base64_encode(&b, pb.data, pb.len);
	int r = key_record_decode((const uint8_t *)(b.data ? b.data : ""), b.len, k);
	buf_free(&b);
	bytes_free(&pb);
	return r;
}

#define KEY32  \
	"0a20" \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HMAC32 \
	"0a20" \
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"

static void test_record_protobuf_strict(void)
{
	struct secret_key *k;
	/* minimal valid: ChaCha20 key + HMAC key, no time, no creator */
	CHECK_EQ_INT(decode_pb_hex("0a24" KEY32 "1002"
	                           "1224" HMAC32 "1001",
	                           &k),
	             0);
	if (k) {
		CHECK_EQ_INT(k->algorithm, KEY_ALG_CHACHA20);
		CHECK_EQ_INT(k->key[31], 0x1f);
		CHECK_EQ_INT(k->hmac_key[0], 0x20);
		CHECK(k->created_at_sec == 0 && k->created_by[0] == 0);
	}
	key_free(k);
	/* unknown fields of every wire type are skipped, at both levels */
	CHECK_EQ_INT(decode_pb_hex("2801"
	                           "0a29" KEY32 "1001"
	                           "3d01020304"
	                           "1224" HMAC32 "1001"
	                           "4101020304050607082a03616263",
	                           &k),
	             0);
	key_free(k);
	static const char *bad[] = {
	    "1224" HMAC32 "1001", /* no secret key */
	    "0a24" KEY32 "1001",  /* no HMAC key */
	    "0a24" KEY32 "1003"
	    "1224" HMAC32 "1001", /* unknown type */
	    "0a24" KEY32 "1000"
	    "1224" HMAC32 "1001", /* type 0 */
	    "0a24" KEY32 "1001"
	    "1224" HMAC32 "1002", /* unknown hash */
	    "0a23"
	    "0a1f000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e"
	    "1001"
	    "1224" HMAC32 "1001", /* 31-byte key */
	    "0a24" KEY32 "1001"
	    "1224" HMAC32 "1001"
	    "2202c328", /* creator not UTF-8 */
	    "0a24" KEY32 "1001"
	    "1224" HMAC32 "1001"
	    "220161"
	    "2301", /* group */
	    "0a24" KEY32 "1001"
	    "1224" HMAC32 "1001"
	    "08ffffffffffffffffff02", /* varint > 64 bit */
	    "0a24" KEY32 "1001"
	    "1224" HMAC32 "1001"
	    "0a", /* truncated tag */
	    "0a24" KEY32 "1001"
	    "1224" HMAC32 "1001"
	    "0a05", /* length past end */
	    "0a24" KEY32 "1001"
	    "1224" HMAC32 "1001"
	    "0aff", /* truncated varint */
	    "",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_EQ_INT(decode_pb_hex(bad[i], &k), KEY_ERR_INVALID);
		CHECK(k == NULL);
	}
	/* every truncation of the reference record fails, except the two at a field boundary
	 * after both keys (76: no time, no creator; 90: no creator) */
	struct bytes pb = b64(PB_RECORD);
	for (size_t n = 0; n < pb.len; n++) {
		char hex[512];
		hex_encode(hex, pb.data, n);
		int want = n == 76 || n == 90 ? 0 : KEY_ERR_INVALID;
		CHECK_EQ_INT(decode_pb_hex(hex, &k), want);
		if (k && n == 90)
			CHECK(k->created_at_nsec == 886816000 && k->created_by[0] == 0);
		key_free(k);
	}
	for (size_t n = 0; n < strlen(PB_RECORD); n++) {
		int want = n == 120 ? 0 : KEY_ERR_INVALID; /* 120 characters = the first 90 bytes */
		CHECK_EQ_INT(key_record_decode((const uint8_t *)PB_RECORD, n, &k), want);
		key_free(k);
	}
	bytes_free(&pb);
	CHECK_EQ_INT(key_record_decode((const uint8_t *)"CiQK!!==", 8, &k), KEY_ERR_INVALID);
}

/* A stored Timestamp may hold any int64 seconds: carrying the nanoseconds into them wraps as
 * Go's time.Unix does, and must not be signed overflow (UBSan halts the test if it is). */
static void test_record_time_extremes(void)
{
	struct secret_key *k;
	/* seconds INT64_MAX, nanos 1e9: Go carries one second and wraps to INT64_MIN */
	CHECK_EQ_INT(decode_pb_hex("0a24" KEY32 "1001"
	                           "1224" HMAC32 "1001"
	                           "1a10"
	                           "08ffffffffffffffff7f"
	                           "108094ebdc03",
	                           &k),
	             0);
	if (k)
		CHECK(k->created_at_sec == INT64_MIN && k->created_at_nsec == 0);
	key_free(k);
	/* seconds INT64_MIN, nanos -1: Go borrows one second and wraps to INT64_MAX */
	CHECK_EQ_INT(decode_pb_hex("0a24" KEY32 "1001"
	                           "1224" HMAC32 "1001"
	                           "1a16"
	                           "0880808080808080808001"
	                           "10ffffffffffffffffff01",
	                           &k),
	             0);
	if (k)
		CHECK(k->created_at_sec == INT64_MAX && k->created_at_nsec == 999999999);
	key_free(k);
}

static void test_import_sizes(void)
{
	uint8_t raw[33] = {1, 2, 3};
	struct secret_key *k = (struct secret_key *)1;
	CHECK_EQ_INT(key_import(KEY_ALG_AES256, raw, 31, "", &k), KEY_ERR_INVALID);
	CHECK(k == NULL);
	CHECK_EQ_INT(key_import(KEY_ALG_AES256, raw, 33, "", &k), KEY_ERR_INVALID);
	CHECK_EQ_INT(key_import(KEY_ALG_AES256, raw, 0, "", &k), KEY_ERR_INVALID);
	CHECK_EQ_INT(key_import(KEY_ALG_AES256, NULL, 32, "", &k), KEY_ERR_INVALID);
	CHECK_EQ_INT(key_import(7, raw, 32, "", &k), KEY_ERR_INVALID);
	CHECK_EQ_INT(key_import(KEY_ALG_CHACHA20, raw, 32, PB_BY, &k), 0);
	if (!k)
		return;
	CHECK_MEM(k->key, raw, 32);
	CHECK(k->typed && k->has_hmac && k->algorithm == KEY_ALG_CHACHA20);
	CHECK_EQ_STR(k->created_by, PB_BY);
	CHECK(k->created_at_sec > 1700000000);
	struct secret_key *k2;
	CHECK_EQ_INT(key_import(KEY_ALG_CHACHA20, raw, 32, PB_BY, &k2), 0);
	if (k2) /* a fresh random HMAC key each time */
		CHECK(memcmp(k->hmac_key, k2->hmac_key, 32) != 0);
	key_free(k2);
	key_free(k);
	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, NULL, &k), 0);
	key_free(k);
}

static void test_algorithm_names(void)
{
	enum key_algorithm a = 0;
	CHECK_EQ_INT(key_algorithm_parse("AES256", &a), 0);
	CHECK_EQ_INT(a, KEY_ALG_AES256);
	CHECK_EQ_INT(key_algorithm_parse("AES256-GCM_SHA256", &a), 0);
	CHECK_EQ_INT(a, KEY_ALG_AES256);
	CHECK_EQ_INT(key_algorithm_parse("ChaCha20", &a), 0);
	CHECK_EQ_INT(a, KEY_ALG_CHACHA20);
	CHECK_EQ_INT(key_algorithm_parse("XCHACHA20-POLY1305", &a), 0);
	CHECK_EQ_INT(a, KEY_ALG_CHACHA20);
	static const char *bad[] = {
	    "",        "aes256", "CHACHA20", "AES-256-GCM-HMAC-SHA-256", "ChaCha20Poly1305",
	    "AES256 ", NULL};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(key_algorithm_parse(bad[i], &a), KEY_ERR_INVALID);
	CHECK_EQ_STR(key_algorithm_name(KEY_ALG_AES256), "AES256");
	CHECK_EQ_STR(key_algorithm_name(KEY_ALG_CHACHA20), "ChaCha20");
}

/* The default agrees with what the kernel reports about the CPU. */
static void test_default_algorithm(void)
{
	enum key_algorithm want = KEY_ALG_CHACHA20;
#if defined(__x86_64__)
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[8192];
	while (f && fgets(line, sizeof line, f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		if (strstr(line, " aes") && strstr(line, " pclmulqdq"))
			want = KEY_ALG_AES256;
		break;
	}
	if (f)
		fclose(f);
	CHECK_EQ_INT(key_default_algorithm(), want);
#else
	(void)want;
	CHECK(key_default_algorithm() == KEY_ALG_AES256 ||
	      key_default_algorithm() == KEY_ALG_CHACHA20);
#endif
}

static void test_rfc3339(void)
{
	static const struct {
		const char *s;
		int64_t sec;
		int32_t nsec;
	} ok[] = {
	    {"1970-01-01T00:00:00Z", 0, 0},
	    {"2009-11-10T23:00:00Z", 1257894000, 0},
	    {"2024-01-12T11:39:20.886816+01:00", 1705055960, 886816000},
	    {"2024-01-12T10:39:20.1234567891-00:00", 1705055960, 123456789},
	    {"2000-02-29T23:59:59.5-05:30", 951888599, 500000000},
	    {"1969-12-31T23:59:59Z", -1, 0},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t sec = 7;
		int32_t nsec = 7;
		CHECK_EQ_INT(key_parse_rfc3339(ok[i].s, strlen(ok[i].s), &sec, &nsec), 0);
		CHECK_EQ_INT(sec, ok[i].sec);
		CHECK_EQ_INT(nsec, ok[i].nsec);
	}
	static const char *bad[] = {
	    "",
	    "2024-01-12",
	    "2024-01-12T11:39:20",
	    "2024-01-12 11:39:20Z",
	    "2023-02-29T00:00:00Z",
	    "2024-13-01T00:00:00Z",
	    "2024-01-12T24:00:00Z",
	    "2024-01-12T11:60:00Z",
	    "2024-01-12T11:00:60Z",
	    "2024-01-12T11:00:00.Z",
	    "2024-01-12T11:00:00+0100",
	    "2024-01-12T11:00:00+24:00",
	    "2024-01-12T11:00:00ZZ",
	    "2024-01-12T11:00:00.5",
	    "+024-01-12T11:00:00Z",
	    "2024-01-12t11:00:00Z",
	    "2024-01-12T11:00:00z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t sec;
		int32_t nsec;
		CHECK_EQ_INT(key_parse_rfc3339(bad[i], strlen(bad[i]), &sec, &nsec),
		             KEY_ERR_INVALID);
	}
}

static void test_alloc_is_zeroed(void)
{
	struct secret_key *k = key_alloc();
	static const struct secret_key zero;
	CHECK(k != NULL);
	if (k)
		CHECK_MEM(k, &zero, sizeof zero);
	key_free(k);
	key_free(NULL);
}

/* ---- tombstones (tombstone.h) ---- */

static bool parse_str(const char *s, struct tombstone *t)
{
	return tombstone_parse((const uint8_t *)s, strlen(s), t);
}

/* The exact bytes a delete stores, and they read back. */
static void test_tombstone_encode(void)
{
	struct tombstone t = {.deleted_at = 1748779200, .until = 1748779800}, back;
	struct bytes rec;

	strcpy(t.deleted_by, "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
	CHECK_EQ_INT(tombstone_encode(&t, &rec), 0);
	CHECK_EQ_STR((const char *)rec.data,
	             "{\"algorithm\":\"kesc-tombstone\",\"deleted_at\":\"2025-06-01T12:00:00Z\","
	             "\"deleted_by\":\"3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c"
	             "59fd22\",\"until\":\"2025-06-01T12:10:00Z\"}");
	CHECK(tombstone_parse(rec.data, rec.len, &back));
	CHECK_EQ_INT(back.deleted_at, t.deleted_at);
	CHECK_EQ_INT(back.until, t.until);
	CHECK_EQ_STR(back.deleted_by, t.deleted_by);
	bytes_free(&rec);

	/* No expiry: null, and read back as never. */
	t.until = TOMBSTONE_FOREVER;
	t.deleted_by[0] = '\0';
	CHECK_EQ_INT(tombstone_encode(&t, &rec), 0);
	CHECK_EQ_STR((const char *)rec.data,
	             "{\"algorithm\":\"kesc-tombstone\",\"deleted_at\":\"2025-06-01T12:00:00Z\","
	             "\"deleted_by\":\"\",\"until\":null}");
	CHECK(tombstone_parse(rec.data, rec.len, &back));
	CHECK_EQ_INT(back.until, TOMBSTONE_FOREVER);
	bytes_free(&rec);

	/* Nothing that could break a log line goes in. */
	strcpy(t.deleted_by, "evil\nline");
	CHECK_EQ_INT(tombstone_encode(&t, &rec), KEY_ERR_INVALID);
	CHECK(rec.data == NULL);
}

/* Expiry, the fail-closed readings, and what is not a tombstone. */
static void test_tombstone_parse(void)
{
	struct tombstone t;
	char desc[256];

	CHECK(
	    parse_str(" {\"algorithm\":\"kesc-tombstone\",\"deleted_at\":\"2025-06-01T12:00:00Z\","
	              "\"until\":\"2025-06-01T12:10:00.5Z\",\"state\":\"scheduled\","
	              "\"restore\":{\"a\":[1,2]}}\n",
	              &t));
	CHECK_EQ_INT(t.until, 1748779801); /* fractions round up: reserved a little longer */
	CHECK(!tombstone_expired(&t, 1748779800));
	CHECK(tombstone_expired(&t, 1748779801));
	tombstone_describe(&t, desc, sizeof(desc));
	CHECK_EQ_STR(desc, "deleted at 2025-06-01T12:00:00Z by (unknown), name reserved until "
	                   "2025-06-01T12:10:01Z");

	/* Go's member matching, as KES reads the same record. */
	CHECK(parse_str("{\"ALGORITHM\":\"kesc-tombstone\"}", &t));
	/* Times that cannot be read: never expires by itself; unknown deletion time. */
	CHECK(parse_str("{\"algorithm\":\"kesc-tombstone\",\"until\":\"soon\",\"deleted_at\":7}",
	                &t));
	CHECK_EQ_INT(t.until, TOMBSTONE_FOREVER);
	CHECK_EQ_INT(t.deleted_at, 0);
	CHECK(!tombstone_expired(&t, INT64_MAX - 1));
	tombstone_describe(&t, desc, sizeof(desc));
	CHECK_EQ_STR(desc, "deleted at (unknown time) by (unknown), name reserved until it is "
	                   "purged");
	CHECK(parse_str("{\"algorithm\":\"kesc-tombstone\",\"deleted_by\":\"a b\"}", &t));
	CHECK_EQ_STR(t.deleted_by, "");

	/* Not tombstones: keys in both formats, other algorithms, other shapes, oversize. */
	CHECK(!parse_str("{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\","
	                 "\"algorithm\":\"AES256\"}",
	                 &t));
	CHECK(!parse_str("CiIKIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &t));
	CHECK(!parse_str("{\"algorithm\":\"kesc-tombstone2\"}", &t));
	CHECK(!parse_str("{\"algorithm\":[\"kesc-tombstone\"]}", &t));
	CHECK(!parse_str("[\"kesc-tombstone\"]", &t));
	CHECK(!parse_str("{\"algorithm\":\"kesc-tombstone\"", &t));
	CHECK(!parse_str("", &t));
	char big[TOMBSTONE_MAX_LEN + 64];
	int n = snprintf(big, sizeof(big), "{\"algorithm\":\"kesc-tombstone\",\"pad\":\"");
	memset(big + n, 'x', sizeof(big) - (size_t)n - 3);
	strcpy(big + sizeof(big) - 3, "\"}");
	CHECK(!parse_str(big, &t));
}

/* No path takes a tombstone for a key: the record decoder refuses every one, also one that
 * carries key bytes. */
static void test_tombstone_is_no_key(void)
{
	struct tombstone t = {.deleted_at = 1, .until = 2};
	struct secret_key *k = NULL;
	struct bytes rec;
	const char *with_bytes = "{\"algorithm\":\"kesc-tombstone\","
	                         "\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}";

	CHECK_EQ_INT(tombstone_encode(&t, &rec), 0);
	CHECK_EQ_INT(key_record_decode(rec.data, rec.len, &k), KEY_ERR_INVALID);
	CHECK(k == NULL);
	bytes_free(&rec);
	CHECK(parse_str(with_bytes, &t));
	CHECK_EQ_INT(key_record_decode((const uint8_t *)with_bytes, strlen(with_bytes), &k),
	             KEY_ERR_INVALID);
	CHECK(k == NULL);
}

int main(void)
{
	RUN(test_hchacha20_vector);
	RUN(test_hmac_vector);
	RUN(test_message_key_vector);
	RUN(test_decrypt_vectors_ok);
	RUN(test_decrypt_vectors_fail);
	RUN(test_encrypt_round_trips);
	RUN(test_bit_flips);
	RUN(test_malformed_inputs);
	RUN(test_legacy_formats_follow_named_algorithm);
	RUN(test_json_ciphertext_bounded);
	RUN(test_record_protobuf_vector);
	RUN(test_record_round_trip);
	RUN(test_record_json_vectors);
	RUN(test_record_json_bounded);
	RUN(test_record_protobuf_strict);
	RUN(test_record_time_extremes);
	RUN(test_import_sizes);
	RUN(test_algorithm_names);
	RUN(test_default_algorithm);
	RUN(test_rfc3339);
	RUN(test_alloc_is_zeroed);
	RUN(test_tombstone_encode);
	RUN(test_tombstone_parse);
	RUN(test_tombstone_is_no_key);
	return CHECK_DONE();
}
