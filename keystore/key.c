/*
 * key.c — the life of a secret key: allocation in secure memory, algorithm names and the
 * CPU-dependent default, generation and import, HMAC, and the random source. The
 * crypto is in key_crypto.c, the formats in key_ciphertext.c and key_record.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>

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

/* The kernel's CSPRNG, the only entropy source: it seeds and reseeds the generators below. */
static int kernel_random(void *ctx, unsigned char *buf, size_t len)
{
	(void)ctx;
	while (len > 0) {
		ssize_t n = getrandom(buf, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return MBEDTLS_ERR_CTR_DRBG_ENTROPY_SOURCE_FAILED;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

#define RNG_AHEAD 512

/*
 * One CTR-DRBG (AES-256) per thread, seeded from getrandom(2) and reseeded from it every
 * KEY_RANDOM_RESEED_INTERVAL generator calls: a generate request needs random bytes twice (the
 * data key, then the ciphertext's iv and nonce), and a system call each was a measurable part
 * of a cached request. Per thread, so the event loops share no lock. The state is key
 * material: it lives in locked memory (secure_alloc) and is zeroed when its thread ends. A
 * forked child reseeds before its first draw, so it never repeats its parent's output.
 */
struct thread_rng {
	mbedtls_ctr_drbg_context drbg;
	unsigned fork_generation;
	/* Output drawn ahead (one CTR-DRBG call per RNG_AHEAD bytes instead of one per request,
	 * each with its own state update); bytes handed out are zeroed at once, so memory holds
	 * no output that was used. */
	size_t ahead_off;
	uint8_t ahead[RNG_AHEAD];
};

static pthread_once_t rng_once = PTHREAD_ONCE_INIT;
static pthread_key_t rng_key;
static bool rng_key_ok;
static atomic_uint fork_generation;
static __thread struct thread_rng *thread_rng;

/* Runs on the thread that owns r (its exit, or a failed set-up). */
static void rng_free(void *p)
{
	struct thread_rng *r = p;
	mbedtls_ctr_drbg_free(&r->drbg); /* zeroes it */
	secure_free(r, sizeof(*r));
	thread_rng = NULL; /* a later draw in this thread's exit seeds a new one */
}

static void rng_after_fork(void)
{
	atomic_fetch_add(&fork_generation, 1);
}

static void rng_init_once(void)
{
	rng_key_ok = pthread_key_create(&rng_key, rng_free) == 0;
	(void)pthread_atfork(NULL, NULL, rng_after_fork);
}

static struct thread_rng *rng_new(void)
{
	struct thread_rng *r = secure_alloc(sizeof(*r));
	if (!r)
		return NULL;
	mbedtls_ctr_drbg_init(&r->drbg);
	static const unsigned char label[] = "kesc key_random";
	r->fork_generation = atomic_load(&fork_generation);
	r->ahead_off = RNG_AHEAD; /* nothing drawn yet */
	if (mbedtls_ctr_drbg_seed(&r->drbg, kernel_random, NULL, label, sizeof(label) - 1) != 0 ||
	    pthread_setspecific(rng_key, r) != 0) {
		rng_free(r);
		return NULL;
	}
	mbedtls_ctr_drbg_set_reseed_interval(&r->drbg, KEY_RANDOM_RESEED_INTERVAL);
	return r;
}

int key_random(void *buf, size_t len)
{
	pthread_once(&rng_once, rng_init_once);
	if (!rng_key_ok)
		return kernel_random(NULL, buf, len) == 0 ? 0 : KEY_ERR_CRYPTO;
	struct thread_rng *r = thread_rng;
	if (!r && !(r = thread_rng = rng_new()))
		return KEY_ERR_CRYPTO;
	unsigned gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
	if (r->fork_generation != gen) {
		/* The parent's drawn-ahead bytes and state are the parent's: drop, reseed. */
		secure_zero(r->ahead, sizeof(r->ahead));
		r->ahead_off = RNG_AHEAD;
		if (mbedtls_ctr_drbg_reseed(&r->drbg, NULL, 0) != 0)
			return KEY_ERR_CRYPTO;
		r->fork_generation = gen;
	}
	uint8_t *p = buf;
	if (len <= RNG_AHEAD) {
		if (RNG_AHEAD - r->ahead_off < len) {
			secure_zero(r->ahead, r->ahead_off);
			/* The unlocked call: the state is this thread's alone. */
			if (mbedtls_ctr_drbg_random_with_add(&r->drbg, r->ahead, RNG_AHEAD, NULL,
			                                     0) != 0) {
				r->ahead_off = RNG_AHEAD;
				return KEY_ERR_CRYPTO;
			}
			r->ahead_off = 0;
		}
		memcpy(p, r->ahead + r->ahead_off, len);
		secure_zero(r->ahead + r->ahead_off, len);
		r->ahead_off += len;
		return 0;
	}
	while (len > 0) {
		size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
		if (mbedtls_ctr_drbg_random_with_add(&r->drbg, p, n, NULL, 0) != 0)
			return KEY_ERR_CRYPTO;
		p += n;
		len -= n;
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
