/*
 * ed25519.c — Ed25519 public key from seed (RFC 8032 §5.1.5) on edwards25519, field elements
 * in five 51-bit limbs. The scalar multiplication is a fixed double-and-add-always ladder with
 * masked selection, so neither branches nor memory accesses depend on the secret scalar.
 * Only public-key derivation lives here: KES identities are hashes of public keys.
 */
#include "policy/ed25519.h"

#include <string.h>

#include <mbedtls/sha512.h>

#include "keystore/secmem.h"

typedef uint64_t fe[5];
typedef unsigned __int128 u128;

#define MASK51 ((uint64_t)0x7ffffffffffff)

struct point {
	fe x, y, z, t; /* extended coordinates: x = X/Z, y = Y/Z, x*y = T/Z */
};

static const fe fe_d2 = {0x69b9426b2f159ULL, 0x35050762add7aULL, 0x3cf44c0038052ULL,
                         0x6738cc7407977ULL, 0x2406d9dc56dffULL};
static const struct point base = {
    {0x62d608f25d51aULL, 0x412a4b4f6592aULL, 0x75b7171a4b31dULL, 0x1ff60527118feULL,
     0x216936d3cd6e5ULL},
    {0x6666666666658ULL, 0x4ccccccccccccULL, 0x1999999999999ULL, 0x3333333333333ULL,
     0x6666666666666ULL},
    {1, 0, 0, 0, 0},
    {0x68ab3a5b7dda3ULL, 0x00eea2a5eadbbULL, 0x2af8df483c27eULL, 0x332b375274732ULL,
     0x67875f0fd78b7ULL},
};

static void fe_carry(fe h)
{
	for (int i = 0; i < 4; i++) {
		h[i + 1] += h[i] >> 51;
		h[i] &= MASK51;
	}
	h[0] += 19 * (h[4] >> 51);
	h[4] &= MASK51;
	h[1] += h[0] >> 51;
	h[0] &= MASK51;
}

static void fe_add(fe h, const fe f, const fe g)
{
	for (int i = 0; i < 5; i++)
		h[i] = f[i] + g[i];
	fe_carry(h);
}

/* f - g + 4p keeps every limb positive for carried inputs (limbs < 2^52). */
static void fe_sub(fe h, const fe f, const fe g)
{
	h[0] = f[0] + 0x1fffffffffffb4ULL - g[0];
	for (int i = 1; i < 5; i++)
		h[i] = f[i] + 0x1ffffffffffffcULL - g[i];
	fe_carry(h);
}

static void fe_mul(fe h, const fe f, const fe g)
{
	uint64_t g1_19 = 19 * g[1], g2_19 = 19 * g[2], g3_19 = 19 * g[3], g4_19 = 19 * g[4];
	u128 r0 = (u128)f[0] * g[0] + (u128)f[1] * g4_19 + (u128)f[2] * g3_19 + (u128)f[3] * g2_19 +
	          (u128)f[4] * g1_19;
	u128 r1 = (u128)f[0] * g[1] + (u128)f[1] * g[0] + (u128)f[2] * g4_19 + (u128)f[3] * g3_19 +
	          (u128)f[4] * g2_19;
	u128 r2 = (u128)f[0] * g[2] + (u128)f[1] * g[1] + (u128)f[2] * g[0] + (u128)f[3] * g4_19 +
	          (u128)f[4] * g3_19;
	u128 r3 = (u128)f[0] * g[3] + (u128)f[1] * g[2] + (u128)f[2] * g[1] + (u128)f[3] * g[0] +
	          (u128)f[4] * g4_19;
	u128 r4 = (u128)f[0] * g[4] + (u128)f[1] * g[3] + (u128)f[2] * g[2] + (u128)f[3] * g[1] +
	          (u128)f[4] * g[0];
	r1 += (uint64_t)(r0 >> 51);
	h[0] = (uint64_t)r0 & MASK51;
	r2 += (uint64_t)(r1 >> 51);
	h[1] = (uint64_t)r1 & MASK51;
	r3 += (uint64_t)(r2 >> 51);
	h[2] = (uint64_t)r2 & MASK51;
	r4 += (uint64_t)(r3 >> 51);
	h[3] = (uint64_t)r3 & MASK51;
	uint64_t c = (uint64_t)(r4 >> 51);
	h[4] = (uint64_t)r4 & MASK51;
	h[0] += 19 * c;
	h[1] += h[0] >> 51;
	h[0] &= MASK51;
}

/* z^(p-2) = 1/z; the exponent 2^255 - 21 is public, so a plain square-and-multiply is fine. */
static void fe_invert(fe out, const fe z)
{
	fe r = {1, 0, 0, 0, 0};
	for (int bit = 254; bit >= 0; bit--) {
		fe_mul(r, r, r);
		/* p - 2 = 0x7fff...ffeb: every bit set except bits 2 and 4 */
		if (bit != 2 && bit != 4)
			fe_mul(r, r, z);
	}
	memcpy(out, r, sizeof r);
}

/* Canonical little-endian encoding (fully reduced mod p). */
static void fe_tobytes(uint8_t out[32], const fe f)
{
	fe h;
	memcpy(h, f, sizeof h);
	fe_carry(h);
	fe_carry(h);
	/* now h < 2^255 + small; subtract p if h >= p, without branching */
	uint64_t q = (h[0] + 19) >> 51;
	q = (h[1] + q) >> 51;
	q = (h[2] + q) >> 51;
	q = (h[3] + q) >> 51;
	q = (h[4] + q) >> 51;
	h[0] += 19 * q;
	for (int i = 0; i < 4; i++) {
		h[i + 1] += h[i] >> 51;
		h[i] &= MASK51;
	}
	h[4] &= MASK51;
	uint64_t w[4] = {h[0] | h[1] << 51, h[1] >> 13 | h[2] << 38, h[2] >> 26 | h[3] << 25,
	                 h[3] >> 39 | h[4] << 12};
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			out[8 * i + j] = (uint8_t)(w[i] >> (8 * j));
	secure_zero(h, sizeof h);
}

/* Unified addition for a = -1 (add-2008-hwcd-3); complete on edwards25519, so it doubles too. */
static void point_add(struct point *r, const struct point *p, const struct point *q)
{
	fe a, b, c, d, e, f, g, h, t;
	fe_sub(a, p->y, p->x);
	fe_sub(t, q->y, q->x);
	fe_mul(a, a, t);
	fe_add(b, p->y, p->x);
	fe_add(t, q->y, q->x);
	fe_mul(b, b, t);
	fe_mul(c, p->t, q->t);
	fe_mul(c, c, fe_d2);
	fe_mul(d, p->z, q->z);
	fe_add(d, d, d);
	fe_sub(e, b, a);
	fe_sub(f, d, c);
	fe_add(g, d, c);
	fe_add(h, b, a);
	fe_mul(r->x, e, f);
	fe_mul(r->y, g, h);
	fe_mul(r->t, e, h);
	fe_mul(r->z, f, g);
}

/* r = bit ? a : r, by masking. */
static void fe_select(fe r, const fe a, uint64_t mask)
{
	for (int i = 0; i < 5; i++)
		r[i] ^= mask & (r[i] ^ a[i]);
}

static void point_select(struct point *r, const struct point *a, uint64_t bit)
{
	uint64_t mask = (uint64_t)0 - bit;
	fe_select(r->x, a->x, mask);
	fe_select(r->y, a->y, mask);
	fe_select(r->z, a->z, mask);
	fe_select(r->t, a->t, mask);
}

int ed25519_public_from_seed(uint8_t pub[32], const uint8_t seed[32])
{
	uint8_t hash[64];
	if (mbedtls_sha512_ret(seed, 32, hash, 0) != 0)
		return -1;
	hash[0] &= 248;
	hash[31] &= 127;
	hash[31] |= 64;

	struct point q = {{0}, {1}, {1}, {0}}, sum;
	for (int i = 254; i >= 0; i--) {
		uint64_t bit = (hash[i / 8] >> (i % 8)) & 1;
		point_add(&q, &q, &q);
		point_add(&sum, &q, &base);
		point_select(&q, &sum, bit);
	}
	fe zinv, x, y;
	uint8_t xb[32];
	fe_invert(zinv, q.z);
	fe_mul(x, q.x, zinv);
	fe_mul(y, q.y, zinv);
	fe_tobytes(pub, y);
	fe_tobytes(xb, x);
	pub[31] |= (uint8_t)(xb[0] & 1) << 7;

	secure_zero(hash, sizeof hash);
	secure_zero(&q, sizeof q);
	secure_zero(&sum, sizeof sum);
	return 0;
}
