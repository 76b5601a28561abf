/*
 * sha256_ni.h — HMAC-SHA256 with a 32-byte key on the x86 SHA extensions (SHA-NI), for
 * key_crypto.c.
 *
 * KES derives a fresh AES key per message as HMAC-SHA256(K, iv): four SHA-256 compressions per
 * encrypt or decrypt. mbedTLS 2.28 computes them in portable C (~4,000 instructions each, a
 * quarter of a cached generate request); with the SHA extensions, which every AMD Zen and Intel
 * CPU since Ice Lake (and the Atoms since Goldmont) have, one costs ~100.
 *
 * sha256_ni_usable says whether this CPU has the instructions and the implementation gave the
 * known answers on it (checked once); when it says false, callers use mbedTLS.
 */
#ifndef KESC_KEYSTORE_SHA256_NI_H
#define KESC_KEYSTORE_SHA256_NI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool sha256_ni_usable(void);
/* HMAC-SHA256(key, msg) into out. Only when sha256_ni_usable(); zeroes what it derives. */
void sha256_ni_hmac(const uint8_t key[32], const uint8_t *msg, size_t msg_len, uint8_t out[32]);
/* SHA-256 of msg (for the tests, which compare it with mbedTLS). Only when usable. */
void sha256_ni_digest(const uint8_t *msg, size_t msg_len, uint8_t out[32]);

#endif
