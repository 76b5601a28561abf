/*
 * ed25519.h — the one Ed25519 operation kesc needs and mbedTLS 2.28 lacks: deriving the public
 * key from a 32-byte seed (RFC 8032 §5.1.5), so that the identity of a KES API key can be
 * computed. Constant time in the seed.
 */
#ifndef KESC_POLICY_ED25519_H
#define KESC_POLICY_ED25519_H

#include <stdint.h>

/* pub = the RFC 8032 encoding of [clamp(SHA-512(seed)[0..32])]B. 0, or -1 if SHA-512 failed. */
int ed25519_public_from_seed(uint8_t pub[32], const uint8_t seed[32]);

#endif
