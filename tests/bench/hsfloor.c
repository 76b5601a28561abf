/*
 * hsfloor.c — the server's compute floor for one full TLS 1.2 mTLS handshake with mbedTLS, on
 * the machine it runs on.
 *
 *   hsfloor [-n ITERATIONS] [--kv]
 *
 * A full ECDHE-ECDSA handshake with a client certificate costs the server four public-key
 * operations that nothing can avoid: an ECDSA P-256 signature (ServerKeyExchange), an ECDSA
 * P-256 verification (the client's CertificateVerify), and an ECDHE key pair plus a shared
 * secret, with P-256 or X25519. Each is measured the way the TLS stack does it:
 *
 *  - sign: mbedtls_pk_sign on a key set up once and held as an MBEDTLS_PK_ECDSA context, whose
 *    group keeps the generator's comb table after the first signature. Also shown (not in the
 *    floor): the same key held as MBEDTLS_PK_ECKEY, what mbedtls_pk_parse_key gives for a PEM
 *    EC key; mbedTLS 2.28 copies such a key into a fresh ECDSA context per signature, which
 *    reloads the curve and recomputes the comb table every time.
 *  - verify: the client's public key parsed from its DER SubjectPublicKeyInfo (the server
 *    parses the client's certificate per handshake), then mbedtls_pk_verify.
 *  - ECDHE: mbedtls_ecdh_setup (loads the group: a fresh group per handshake, as ssl_srv.c),
 *    mbedtls_ecdh_make_params (key generation), then mbedtls_ecdh_read_public and
 *    mbedtls_ecdh_calc_secret (shared secret) on the client's share.
 *
 * Times are the median CPU time of this thread (CLOCK_THREAD_CPUTIME_ID) over the iterations,
 * so another process on the same core inflates them less than wall time would (it still
 * inflates them: compare with figures taken in the same minutes). The floor is sign (kept) +
 * verify + key generation + shared secret. --kv prints one line of key=value pairs
 * (microseconds) for tests/bench/run instead of the table.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static int iterations = 100;
/* Runs of each operation before the measured ones (caches, lazy set-up). */
#define WARMUP 3

static double cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void check(int ret, const char *what)
{
	if (ret != 0) {
		fprintf(stderr, "hsfloor: %s failed (-0x%04x)\n", what, (unsigned)-ret);
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return v[n / 2];
}

static const unsigned char HASH[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                       12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                       23, 24, 25, 26, 27, 28, 29, 30, 31};

static void pk_make(mbedtls_pk_context *pk)
{
	mbedtls_pk_init(pk);
	check(mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), "pk_setup");
	check(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk),
	                          mbedtls_ctr_drbg_random, &drbg),
	      "ecp_gen_key");
}

/* One operation each, never inlined: `tests/bench/run callgrind` reads their instruction
 * counts by name (callgrind_annotate --inclusive=yes), independent of the machine's load. */
#if defined(__clang__)
#define OP __attribute__((noinline)) /* clang has no noipa; it does not clone by default */
#else
#define OP __attribute__((noipa))
#endif

OP static void op_sign(mbedtls_pk_context *key, unsigned char *sig, size_t *slen)
{
	check(mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, HASH, sizeof HASH, sig, slen,
	                      mbedtls_ctr_drbg_random, &drbg),
	      "pk_sign");
}

OP static void op_verify(const unsigned char *spki, size_t len, const unsigned char *sig,
                         size_t slen)
{
	mbedtls_pk_context peer;
	mbedtls_pk_init(&peer);
	check(mbedtls_pk_parse_public_key(&peer, spki, len), "pk_parse_public_key");
	check(mbedtls_pk_verify(&peer, MBEDTLS_MD_SHA256, HASH, sizeof HASH, sig, slen),
	      "pk_verify");
	mbedtls_pk_free(&peer);
}

static void ecdhe_keygen(mbedtls_ecdh_context *srv, mbedtls_ecp_group_id gid, unsigned char *params,
                         size_t size, size_t *plen)
{
	check(mbedtls_ecdh_setup(srv, gid), "ecdh_setup");
	check(mbedtls_ecdh_make_params(srv, plen, params, size, mbedtls_ctr_drbg_random, &drbg),
	      "ecdh_make_params");
}

static void ecdhe_shared(mbedtls_ecdh_context *srv, const unsigned char *pub, size_t publen)
{
	unsigned char secret[66];
	size_t slen;
	check(mbedtls_ecdh_read_public(srv, pub, publen), "ecdh_read_public");
	check(mbedtls_ecdh_calc_secret(srv, &slen, secret, sizeof secret, mbedtls_ctr_drbg_random,
	                               &drbg),
	      "ecdh_calc_secret");
}

OP static void op_p256_keygen(mbedtls_ecdh_context *srv, unsigned char *params, size_t size,
                              size_t *plen)
{
	ecdhe_keygen(srv, MBEDTLS_ECP_DP_SECP256R1, params, size, plen);
}

OP static void op_x25519_keygen(mbedtls_ecdh_context *srv, unsigned char *params, size_t size,
                                size_t *plen)
{
	ecdhe_keygen(srv, MBEDTLS_ECP_DP_CURVE25519, params, size, plen);
}

OP static void op_p256_shared(mbedtls_ecdh_context *srv, const unsigned char *pub, size_t len)
{
	ecdhe_shared(srv, pub, len);
}

OP static void op_x25519_shared(mbedtls_ecdh_context *srv, const unsigned char *pub, size_t len)
{
	ecdhe_shared(srv, pub, len);
}

static double bench_sign(void)
{
	mbedtls_pk_context key;
	pk_make(&key);
	unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t slen;
	double *t = calloc((size_t)iterations, sizeof *t);
	for (int i = -WARMUP; i < iterations; i++) {
		double t0 = cpu_us();
		op_sign(&key, sig, &slen);
		if (i >= 0)
			t[i] = cpu_us() - t0;
	}
	double m = median(t, iterations);
	free(t);
	mbedtls_pk_free(&key);
	return m;
}

OP static void op_sign_kept(mbedtls_pk_context *key, unsigned char *sig, size_t *slen)
{
	check(mbedtls_pk_sign(key, MBEDTLS_MD_SHA256, HASH, sizeof HASH, sig, slen,
	                      mbedtls_ctr_drbg_random, &drbg),
	      "pk_sign (ECDSA context)");
}

/* The same signature on a key held as an MBEDTLS_PK_ECDSA context: mbedtls_pk_sign then signs
 * with that context itself, whose group keeps the generator's comb table after the first
 * signature. A server can hold its key this way (mbedtls_ssl_conf_own_cert takes any pk that
 * can do ECDSA), so this, not the EC-key copy, is the floor's signature. */
static double bench_sign_kept(void)
{
	mbedtls_pk_context key;
	mbedtls_pk_init(&key);
	check(mbedtls_pk_setup(&key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECDSA)), "pk_setup");
	check(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(key),
	                          mbedtls_ctr_drbg_random, &drbg),
	      "ecp_gen_key");
	unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t slen;
	double *t = calloc((size_t)iterations, sizeof *t);
	for (int i = -WARMUP; i < iterations; i++) {
		double t0 = cpu_us();
		op_sign_kept(&key, sig, &slen);
		if (i >= 0)
			t[i] = cpu_us() - t0;
	}
	double m = median(t, iterations);
	free(t);
	mbedtls_pk_free(&key);
	return m;
}

static double bench_verify(void)
{
	mbedtls_pk_context client;
	pk_make(&client);
	unsigned char sig[MBEDTLS_ECDSA_MAX_LEN], der[200];
	size_t slen;
	check(mbedtls_pk_sign(&client, MBEDTLS_MD_SHA256, HASH, sizeof HASH, sig, &slen,
	                      mbedtls_ctr_drbg_random, &drbg),
	      "pk_sign");
	int dlen = mbedtls_pk_write_pubkey_der(&client, der, sizeof der);
	if (dlen <= 0)
		check(dlen ? dlen : -1, "pk_write_pubkey_der");
	const unsigned char *spki = der + sizeof der - dlen; /* written at the end of the buffer */
	double *t = calloc((size_t)iterations, sizeof *t);
	for (int i = -WARMUP; i < iterations; i++) {
		double t0 = cpu_us();
		op_verify(spki, (size_t)dlen, sig, slen);
		if (i >= 0)
			t[i] = cpu_us() - t0;
	}
	double m = median(t, iterations);
	free(t);
	mbedtls_pk_free(&client);
	return m;
}

/* Server side of one ECDHE exchange per iteration: *keygen and *shared get the medians. */
static void bench_ecdhe(mbedtls_ecp_group_id gid, double *keygen, double *shared)
{
	double *tk = calloc((size_t)iterations, sizeof *tk);
	double *ts = calloc((size_t)iterations, sizeof *ts);
	for (int i = -WARMUP; i < iterations; i++) {
		mbedtls_ecdh_context srv, cli;
		mbedtls_ecdh_init(&srv);
		mbedtls_ecdh_init(&cli);
		unsigned char params[200], pub[200];
		size_t plen, publen;

		double t0 = cpu_us();
		if (gid == MBEDTLS_ECP_DP_CURVE25519)
			op_x25519_keygen(&srv, params, sizeof params, &plen);
		else
			op_p256_keygen(&srv, params, sizeof params, &plen);
		double t1 = cpu_us();

		/* The client's share (not timed). */
		const unsigned char *p = params;
		check(mbedtls_ecdh_read_params(&cli, &p, params + plen), "ecdh_read_params");
		check(mbedtls_ecdh_make_public(&cli, &publen, pub, sizeof pub,
		                               mbedtls_ctr_drbg_random, &drbg),
		      "ecdh_make_public");

		double t2 = cpu_us();
		if (gid == MBEDTLS_ECP_DP_CURVE25519)
			op_x25519_shared(&srv, pub, publen);
		else
			op_p256_shared(&srv, pub, publen);
		double t3 = cpu_us();
		if (i >= 0) {
			tk[i] = t1 - t0;
			ts[i] = t3 - t2;
		}
		mbedtls_ecdh_free(&srv);
		mbedtls_ecdh_free(&cli);
	}
	*keygen = median(tk, iterations);
	*shared = median(ts, iterations);
	free(tk);
	free(ts);
}

int main(int argc, char **argv)
{
	bool kv = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--kv"))
			kv = true;
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			iterations = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: hsfloor [-n ITERATIONS] [--kv]\n");
			return 2;
		}
	}
	if (iterations < 1)
		iterations = 1;
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	check(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
	                            (const unsigned char *)"hsfloor", 7),
	      "ctr_drbg_seed");

	double sign = bench_sign(), sign_kept = bench_sign_kept(), verify = bench_verify();
	double p256_gen, p256_shared, x_gen, x_shared;
	bench_ecdhe(MBEDTLS_ECP_DP_SECP256R1, &p256_gen, &p256_shared);
	bench_ecdhe(MBEDTLS_ECP_DP_CURVE25519, &x_gen, &x_shared);
	double floor_p256 = sign_kept + verify + p256_gen + p256_shared;
	double floor_x25519 = sign_kept + verify + x_gen + x_shared;

	if (kv) {
		printf("mbedtls=%s iterations=%d warmup=%d sign_us=%.0f sign_kept_us=%.0f "
		       "verify_us=%.0f"
		       " p256_keygen_us=%.0f p256_shared_us=%.0f x25519_keygen_us=%.0f"
		       " x25519_shared_us=%.0f floor_p256_us=%.0f floor_x25519_us=%.0f\n",
		       MBEDTLS_VERSION_STRING, iterations, WARMUP, sign, sign_kept, verify,
		       p256_gen, p256_shared, x_gen, x_shared, floor_p256, floor_x25519);
	} else {
		printf("Server compute floor of one full TLS 1.2 mTLS handshake, mbedTLS %s\n"
		       "(median thread CPU time of %d runs, µs)\n\n",
		       MBEDTLS_VERSION_STRING, iterations);
		printf("  ECDSA P-256 sign, key held as an ECDSA context  %7.0f\n", sign_kept);
		printf("  ECDSA P-256 verify, client key parsed each time %7.0f\n", verify);
		printf("  ECDHE P-256 key generation (fresh group)        %7.0f\n", p256_gen);
		printf("  ECDHE P-256 shared secret                       %7.0f\n", p256_shared);
		printf("  X25519 key generation (fresh group)             %7.0f\n", x_gen);
		printf("  X25519 shared secret                            %7.0f\n", x_shared);
		printf("\n  floor with P-256 ECDHE                          %7.0f\n", floor_p256);
		printf("  floor with X25519                               %7.0f\n", floor_x25519);
		printf("\n  (not in the floor: ECDSA P-256 sign with the key held as a parsed EC "
		       "key,\n"
		       "   copied into a fresh context per signature by mbedTLS 2.28: %.0f µs)\n",
		       sign);
	}
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return 0;
}
