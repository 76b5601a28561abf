/*
 * key_crypto.c — KES's encryption primitive (reference kes.md §7.2): a per-message key
 * K' = HMAC-SHA256(K, iv) for AES-256-GCM or K' = HChaCha20(K, iv) for ChaCha20-Poly1305,
 * then a 12-byte-nonce AEAD. Contexts live on the stack and are freed (which zeroes them) on
 * every path; the only heap memory is the output.
 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>
#include <mbedtls/sha256.h>

#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "keystore/secmem.h"
#include "keystore/sha256_ni.h"

/* One line per row of the RFC 8439 quarter round, so it reads like the RFC. */
/* clang-format off */
#define ROTL32(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QUARTER_ROUND(a, b, c, d)                                                         \
	do {                                                                              \
		a += b; d ^= a; d = ROTL32(d, 16);                                        \
		c += d; b ^= c; b = ROTL32(b, 12);                                        \
		a += b; d ^= a; d = ROTL32(d, 8);                                         \
		c += d; b ^= c; b = ROTL32(b, 7);                                         \
	} while (0)
/* clang-format on */

static uint32_t load32_le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store32_le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* mbedTLS 2.28 implements ChaCha20 but does not export HChaCha20, so it is done here. */
void key_hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t in[16])
{
	uint32_t x[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
	for (int i = 0; i < 8; i++)
		x[4 + i] = load32_le(key + 4 * i);
	for (int i = 0; i < 4; i++)
		x[12 + i] = load32_le(in + 4 * i);
	for (int round = 0; round < 10; round++) {
		QUARTER_ROUND(x[0], x[4], x[8], x[12]);
		QUARTER_ROUND(x[1], x[5], x[9], x[13]);
		QUARTER_ROUND(x[2], x[6], x[10], x[14]);
		QUARTER_ROUND(x[3], x[7], x[11], x[15]);
		QUARTER_ROUND(x[0], x[5], x[10], x[15]);
		QUARTER_ROUND(x[1], x[6], x[11], x[12]);
		QUARTER_ROUND(x[2], x[7], x[8], x[13]);
		QUARTER_ROUND(x[3], x[4], x[9], x[14]);
	}
	for (int i = 0; i < 4; i++) {
		store32_le(out + 4 * i, x[i]);
		store32_le(out + 16 + 4 * i, x[12 + i]);
	}
	secure_zero(x, sizeof x);
}

/* One SHA-256 pass over pad (64 bytes) followed by msg. */
static int sha256_padded(const uint8_t pad[64], const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
	mbedtls_sha256_context ctx;
	mbedtls_sha256_init(&ctx);
	int ret = mbedtls_sha256_starts_ret(&ctx, 0);
	if (ret == 0)
		ret = mbedtls_sha256_update_ret(&ctx, pad, 64);
	if (ret == 0 && msg_len)
		ret = mbedtls_sha256_update_ret(&ctx, msg, msg_len);
	if (ret == 0)
		ret = mbedtls_sha256_finish_ret(&ctx, out);
	mbedtls_sha256_free(&ctx);
	return ret;
}

/* HMAC by hand (RFC 2104) because mbedtls_md_hmac allocates its context on the heap. With the
 * CPU's SHA extensions it costs ~1,000 instructions instead of ~17,000 (sha256_ni.h). */
int key_hmac_sha256(const uint8_t key[32], const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
	uint8_t pad[64], inner[32];
	int ret = KEY_ERR_CRYPTO;

	if (sha256_ni_usable()) {
		sha256_ni_hmac(key, msg, msg_len, out);
		return 0;
	}

	memset(pad, 0x36, sizeof pad);
	for (int i = 0; i < 32; i++)
		pad[i] ^= key[i];
	if (sha256_padded(pad, msg, msg_len, inner) != 0)
		goto out;
	memset(pad, 0x5c, sizeof pad);
	for (int i = 0; i < 32; i++)
		pad[i] ^= key[i];
	if (sha256_padded(pad, inner, sizeof inner, out) != 0)
		goto out;
	ret = 0;
out:
	secure_zero(pad, sizeof pad);
	secure_zero(inner, sizeof inner);
	return ret;
}

/* The per-message key for alg from K and iv. */
static int derive_message_key(enum key_algorithm alg, const uint8_t key[32],
                              const uint8_t iv[KEY_IV_SIZE], uint8_t out[32])
{
	switch (alg) {
	case KEY_ALG_AES256:
		return key_hmac_sha256(key, iv, KEY_IV_SIZE, out);
	case KEY_ALG_CHACHA20:
		key_hchacha20(out, key, iv);
		return 0;
	}
	return KEY_ERR_CRYPTO;
}

/* AEAD seal of len bytes from in to out with tag appended at out + len. */
static int aead_seal(enum key_algorithm alg, const uint8_t mkey[32],
                     const uint8_t nonce[KEY_NONCE_SIZE], const uint8_t *ad, size_t ad_len,
                     const uint8_t *in, size_t len, uint8_t *out)
{
	int ret;
	if (alg == KEY_ALG_AES256) {
		mbedtls_gcm_context gcm;
		mbedtls_gcm_init(&gcm);
		ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, mkey, 256);
		if (ret == 0)
			ret = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, nonce,
			                                KEY_NONCE_SIZE, ad, ad_len, in, out,
			                                KEY_TAG_SIZE, out + len);
		mbedtls_gcm_free(&gcm);
	} else {
		mbedtls_chachapoly_context cp;
		mbedtls_chachapoly_init(&cp);
		ret = mbedtls_chachapoly_setkey(&cp, mkey);
		if (ret == 0)
			ret = mbedtls_chachapoly_encrypt_and_tag(&cp, len, nonce, ad, ad_len, in,
			                                         out, out + len);
		mbedtls_chachapoly_free(&cp);
	}
	return ret == 0 ? 0 : KEY_ERR_CRYPTO;
}

/* AEAD open of sealed (ciphertext ‖ tag, at least the tag) into out. Any failure, including
 * a library error, is "not authentic": the caller must not learn more. */
static int aead_open(enum key_algorithm alg, const uint8_t mkey[32],
                     const uint8_t nonce[KEY_NONCE_SIZE], const uint8_t *ad, size_t ad_len,
                     const uint8_t *sealed, size_t sealed_len, uint8_t *out)
{
	size_t len = sealed_len - KEY_TAG_SIZE;
	const uint8_t *tag = sealed + len;
	int ret;
	if (alg == KEY_ALG_AES256) {
		mbedtls_gcm_context gcm;
		mbedtls_gcm_init(&gcm);
		ret = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, mkey, 256);
		if (ret == 0)
			ret = mbedtls_gcm_auth_decrypt(&gcm, len, nonce, KEY_NONCE_SIZE, ad, ad_len,
			                               tag, KEY_TAG_SIZE, sealed, out);
		mbedtls_gcm_free(&gcm);
	} else {
		mbedtls_chachapoly_context cp;
		mbedtls_chachapoly_init(&cp);
		ret = mbedtls_chachapoly_setkey(&cp, mkey);
		if (ret == 0)
			ret = mbedtls_chachapoly_auth_decrypt(&cp, len, nonce, ad, ad_len, tag,
			                                      sealed, out);
		mbedtls_chachapoly_free(&cp);
	}
	return ret == 0 ? 0 : KEY_ERR_NOT_AUTHENTIC;
}

static bool algorithm_valid(enum key_algorithm alg)
{
	return alg == KEY_ALG_AES256 || alg == KEY_ALG_CHACHA20;
}

int key_encrypt(const struct secret_key *k, const uint8_t *plaintext, size_t plaintext_len,
                const uint8_t *ad, size_t ad_len, struct bytes *ciphertext_out)
{
	uint8_t random[KEY_RANDOM_SIZE], mkey[32];
	uint8_t *out = NULL;
	size_t total = plaintext_len + KEY_TAG_SIZE + KEY_RANDOM_SIZE;
	int ret;

	ciphertext_out->data = NULL;
	ciphertext_out->len = 0;
	if (!algorithm_valid(k->algorithm) || plaintext_len > SIZE_MAX / 2)
		return KEY_ERR_INVALID;
	ret = key_random(random, sizeof random);
	if (ret != 0)
		goto out;
	ret = derive_message_key(k->algorithm, k->key, random, mkey);
	if (ret != 0)
		goto out;
	ret = KEY_ERR_NOMEM;
	out = malloc(total + 1); /* + NUL, as struct bytes promises */
	if (!out)
		goto out;
	ret = aead_seal(k->algorithm, mkey, random + KEY_IV_SIZE, ad, ad_len, plaintext,
	                plaintext_len, out);
	if (ret != 0)
		goto out;
	memcpy(out + plaintext_len + KEY_TAG_SIZE, random, KEY_RANDOM_SIZE);
	out[total] = 0;
	ciphertext_out->data = out;
	ciphertext_out->len = total;
	out = NULL;
out:
	if (out) {
		secure_zero(out, total + 1);
		free(out);
	}
	secure_zero(mkey, sizeof mkey);
	secure_zero(random, sizeof random);
	return ret;
}

/* KES HEAD always uses the key's own algorithm; a legacy key that never recorded one (typed
 * false) follows what the ciphertext names, so its ChaCha20 ciphertexts also open. */
static enum key_algorithm decrypt_algorithm(const struct secret_key *k, int named)
{
	if (!k->typed && (named == KEY_ALG_AES256 || named == KEY_ALG_CHACHA20))
		return (enum key_algorithm)named;
	return k->algorithm;
}

int key_decrypt(const struct secret_key *k, const uint8_t *ciphertext, size_t ciphertext_len,
                const uint8_t *ad, size_t ad_len, struct bytes *plaintext_out)
{
	struct key_ciphertext c;
	uint8_t mkey[32];
	uint8_t *out = NULL;
	size_t len = 0;
	int ret;

	plaintext_out->data = NULL;
	plaintext_out->len = 0;
	ret = key_ciphertext_parse(ciphertext, ciphertext_len, &c);
	if (ret != 0)
		return ret;
	enum key_algorithm alg = decrypt_algorithm(k, c.alg);
	ret = KEY_ERR_NOT_AUTHENTIC;
	if (!algorithm_valid(alg) || c.sealed_len < KEY_TAG_SIZE)
		goto out;
	if (derive_message_key(alg, k->key, c.iv, mkey) != 0)
		goto out;
	len = c.sealed_len - KEY_TAG_SIZE;
	ret = KEY_ERR_NOMEM;
	out = malloc(len + 1);
	if (!out)
		goto out;
	ret = aead_open(alg, mkey, c.nonce, ad, ad_len, c.sealed, c.sealed_len, out);
	if (ret != 0)
		goto out;
	out[len] = 0;
	plaintext_out->data = out;
	plaintext_out->len = len;
	out = NULL;
out:
	if (out) {
		secure_zero(out, len + 1);
		free(out);
	}
	secure_zero(mkey, sizeof mkey);
	key_ciphertext_free(&c);
	return ret;
}
