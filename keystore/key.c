/*
 * key.c — the life of a secret key: allocation in secure memory, algorithm names and the
 * CPU-dependent default, generation and import, HMAC, and the kernel random source. The
 * crypto is in key_crypto.c, the formats in key_ciphertext.c and key_record.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "keystore/secmem.h"

struct secret_key *key_alloc(void)
{
	struct secret_key *k = secure_alloc(sizeof *k);
	if (k)
		memset(k, 0, sizeof *k);
	return k;
}

void key_free(struct secret_key *k)
{
	if (k)
		secure_free(k, sizeof *k);
}

/* Go's crypto/aes and GCM are only fast (and constant-time) with these instructions, which is
 * why KES picks AES only when they exist. */
enum key_algorithm key_default_algorithm(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, c, d;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_AES) && (c & bit_PCLMUL))
		return KEY_ALG_AES256;
#elif defined(__aarch64__)
	unsigned long caps = getauxval(AT_HWCAP);
	if ((caps & HWCAP_AES) && (caps & HWCAP_PMULL))
		return KEY_ALG_AES256;
#endif
	return KEY_ALG_CHACHA20;
}

const char *key_algorithm_name(enum key_algorithm alg)
{
	switch (alg) {
	case KEY_ALG_AES256:
		return "AES256";
	case KEY_ALG_CHACHA20:
		return "ChaCha20";
	}
	return "";
}

int key_algorithm_parse(const char *name, enum key_algorithm *out)
{
	if (!name)
		return KEY_ERR_INVALID;
	if (strcmp(name, "AES256") == 0 || strcmp(name, "AES256-GCM_SHA256") == 0) {
		*out = KEY_ALG_AES256;
		return 0;
	}
	if (strcmp(name, "ChaCha20") == 0 || strcmp(name, "XCHACHA20-POLY1305") == 0) {
		*out = KEY_ALG_CHACHA20;
		return 0;
	}
	return KEY_ERR_INVALID;
}

int key_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return KEY_ERR_CRYPTO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void key_now(int64_t *sec, int32_t *nsec)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
		*sec = (int64_t)time(NULL);
		*nsec = 0;
		return;
	}
	*sec = (int64_t)ts.tv_sec;
	*nsec = (int32_t)ts.tv_nsec;
}

/* A key with the given (or, raw == NULL, random) key bytes, a random HMAC key, now. */
static int key_new(enum key_algorithm alg, const uint8_t *raw, const char *created_by,
                   struct secret_key **out)
{
	*out = NULL;
	if (alg != KEY_ALG_AES256 && alg != KEY_ALG_CHACHA20)
		return KEY_ERR_INVALID;
	if (!created_by)
		created_by = "";
	if (strlen(created_by) > KEY_CREATED_BY_MAX)
		return KEY_ERR_INVALID;
	struct secret_key *k = key_alloc();
	if (!k)
		return KEY_ERR_NOMEM;
	int ret = raw ? 0 : key_random(k->key, KEY_SIZE);
	if (raw)
		memcpy(k->key, raw, KEY_SIZE);
	if (ret == 0)
		ret = key_random(k->hmac_key, KEY_HMAC_SIZE);
	if (ret != 0) {
		key_free(k);
		return ret;
	}
	k->algorithm = alg;
	k->typed = true;
	k->has_hmac = true;
	key_now(&k->created_at_sec, &k->created_at_nsec);
	memcpy(k->created_by, created_by, strlen(created_by) + 1);
	*out = k;
	return 0;
}

int key_generate(enum key_algorithm alg, const char *created_by, struct secret_key **out)
{
	return key_new(alg, NULL, created_by, out);
}

int key_import(enum key_algorithm alg, const uint8_t *raw, size_t raw_len, const char *created_by,
               struct secret_key **out)
{
	*out = NULL;
	if (!raw || raw_len != KEY_SIZE)
		return KEY_ERR_INVALID;
	return key_new(alg, raw, created_by, out);
}

int key_hmac(const struct secret_key *k, const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
	if (!k->has_hmac)
		return KEY_ERR_NO_HMAC;
	return key_hmac_sha256(k->hmac_key, msg, msg_len, out);
}
