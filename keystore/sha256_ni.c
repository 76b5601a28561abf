/* sha256_ni.c — SHA-256 and HMAC-SHA256 on the x86 SHA extensions (sha256_ni.h).
 *
 * The compression function follows Intel's description of the SHA extensions (SHA256RNDS2
 * does two rounds on the state held as ABEF/CDGH, SHA256MSG1/MSG2 extend the message
 * schedule four words at a time); FIPS 180-4 defines everything else. */
#include "keystore/sha256_ni.h"

#include <pthread.h>
#include <string.h>

#include "keystore/secmem.h"

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#ifdef HAVE_X86
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

/* Compresses nblocks 64-byte blocks into state. */
__attribute__((target("sha,ssse3,sse4.1"))) static void blocks(uint32_t state[8],
                                                               const uint8_t *data, size_t nblocks)
{
	/* Big-endian words: reverse the bytes of each 32-bit lane. */
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);    /* A B C D */
	__m128i state1 = _mm_loadu_si128((const __m128i *)&state[4]); /* E F G H */
	tmp = _mm_shuffle_epi32(tmp, 0xB1);                           /* B A D C */
	state1 = _mm_shuffle_epi32(state1, 0x1B);                     /* H G F E */
	__m128i state0 = _mm_alignr_epi8(tmp, state1, 8);             /* ABEF */
	state1 = _mm_blend_epi16(state1, tmp, 0xF0);                  /* CDGH */

	/* The message schedule of HMAC's first block is derived from the key: zeroed below, as
	 * mbedTLS zeroes its own. */
	__m128i w[4];
	for (; nblocks > 0; nblocks--, data += 64) {
		__m128i abef = state0, cdgh = state1;
		for (int i = 0; i < 16; i++) {
			__m128i m;
			if (i < 4) {
				m = _mm_shuffle_epi8(
				    _mm_loadu_si128((const __m128i *)(data + 16 * i)), bswap);
			} else {
				/* W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], four at a
				 * time: MSG1 adds σ0, the shifted group gives W[t-7], MSG2 σ1. */
				m = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
				m = _mm_add_epi32(
				    m, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
				m = _mm_sha256msg2_epu32(m, w[(i + 3) & 3]);
			}
			w[i & 3] = m;
			__m128i wk = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K[4 * i]));
			state1 = _mm_sha256rnds2_epu32(state1, state0, wk);
			state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(wk, 0x0E));
		}
		state0 = _mm_add_epi32(state0, abef);
		state1 = _mm_add_epi32(state1, cdgh);
	}

	tmp = _mm_shuffle_epi32(state0, 0x1B);       /* F E B A → A B E F in lanes 0..3 */
	state1 = _mm_shuffle_epi32(state1, 0xB1);    /* G H C D */
	state0 = _mm_blend_epi16(tmp, state1, 0xF0); /* A B C D */
	state1 = _mm_alignr_epi8(state1, tmp, 8);    /* E F G H */
	_mm_storeu_si128((__m128i *)&state[0], state0);
	_mm_storeu_si128((__m128i *)&state[4], state1);
	secure_zero(w, sizeof w);
}
#else
static void blocks(uint32_t state[8], const uint8_t *data, size_t nblocks)
{
	(void)state;
	(void)data;
	(void)nblocks;
}
#endif

/* The rest of a message after `prefix` bytes already compressed into state: full blocks,
 * then the padding (0x80, zeros, the bit length of prefix + msg). */
static void finish(uint32_t state[8], size_t prefix, const uint8_t *msg, size_t len,
                   uint8_t out[32])
{
	uint8_t tail[128];
	size_t full = len / 64;
	size_t rest = len - 64 * full;
	/* An empty message may be (NULL, 0): no arithmetic on it, no memcpy from it. */
	if (full)
		blocks(state, msg, full);
	if (rest)
		memcpy(tail, msg + 64 * full, rest);
	tail[rest] = 0x80;
	size_t tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
	memset(tail + rest + 1, 0, tail_len - rest - 1);
	uint64_t bits = (uint64_t)(prefix + len) * 8;
	for (int i = 0; i < 8; i++)
		tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
	blocks(state, tail, tail_len / 64);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(state[i] >> 24);
		out[4 * i + 1] = (uint8_t)(state[i] >> 16);
		out[4 * i + 2] = (uint8_t)(state[i] >> 8);
		out[4 * i + 3] = (uint8_t)state[i];
	}
	secure_zero(tail, sizeof tail);
}

void sha256_ni_digest(const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
	uint32_t state[8];
	memcpy(state, IV, sizeof state);
	finish(state, 0, msg, msg_len, out);
}

void sha256_ni_hmac(const uint8_t key[32], const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
	uint8_t pad[64], inner[32];
	uint32_t state[8];

	memset(pad, 0x36, sizeof pad);
	for (int i = 0; i < 32; i++)
		pad[i] ^= key[i];
	memcpy(state, IV, sizeof state);
	blocks(state, pad, 1);
	finish(state, 64, msg, msg_len, inner);

	memset(pad, 0x5c, sizeof pad);
	for (int i = 0; i < 32; i++)
		pad[i] ^= key[i];
	memcpy(state, IV, sizeof state);
	blocks(state, pad, 1);
	finish(state, 64, inner, sizeof inner, out);

	secure_zero(pad, sizeof pad);
	secure_zero(inner, sizeof inner);
	secure_zero(state, sizeof state);
}

static bool usable;
static pthread_once_t usable_once = PTHREAD_ONCE_INIT;

static bool cpu_has_sha(void)
{
#ifdef HAVE_X86
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return false;
	if (__get_cpuid_max(0, NULL) < 7)
		return false;
	__cpuid_count(7, 0, a, b, c, d);
	return (b & bit_SHA) != 0;
#else
	return false;
#endif
}

/* Known answers before first use (FIPS 180-4's one-block "abc" and two-block example): a CPU
 * or compiler that gets either wrong is not used. The tests compare with mbedTLS at length. */
static void check_usable(void)
{
	static const uint8_t abc_digest[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
	                                       0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
	                                       0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
	                                       0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
	static const char two[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	static const uint8_t two_digest[32] = {0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8,
	                                       0xe5, 0xc0, 0x26, 0x93, 0x0c, 0x3e, 0x60, 0x39,
	                                       0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff, 0x21, 0x67,
	                                       0xf6, 0xec, 0xed, 0xd4, 0x19, 0xdb, 0x06, 0xc1};
	uint8_t out[32];
	if (!cpu_has_sha())
		return;
	sha256_ni_digest((const uint8_t *)"abc", 3, out);
	if (memcmp(out, abc_digest, 32) != 0)
		return;
	sha256_ni_digest((const uint8_t *)two, sizeof two - 1, out);
	if (memcmp(out, two_digest, 32) != 0)
		return;
	usable = true;
}

bool sha256_ni_usable(void)
{
	pthread_once(&usable_once, check_usable);
	return usable;
}
