/*
 * key.h — secret keys, byte-compatible with KES (reference kes.md §7).
 *
 * A secret key is 32 bytes plus its algorithm, an independent 32-byte HMAC key (absent for
 * legacy records) and who/when created it. Keys live in secure memory (secmem.h) and are
 * zeroed on free. This module does the crypto (per-message key derivation + AEAD), the three
 * ciphertext formats in circulation, and the stored-record codec (base64 protobuf KeyVersion,
 * legacy JSON). It does no I/O.
 */
#ifndef KESC_KEYSTORE_KEY_H
#define KESC_KEYSTORE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"

enum key_algorithm {
	KEY_ALG_AES256 = 1,   /* protobuf Type 1: HMAC-SHA256(key, iv) → AES-256-GCM */
	KEY_ALG_CHACHA20 = 2, /* protobuf Type 2: HChaCha20(key, iv) → ChaCha20-Poly1305 */
};

#define KEY_SIZE           32
#define KEY_HMAC_SIZE      32
#define KEY_CREATED_BY_MAX 128

struct secret_key {
	uint8_t key[KEY_SIZE];
	uint8_t hmac_key[KEY_HMAC_SIZE];
	enum key_algorithm algorithm;
	/* false for legacy records that named no algorithm: decryption then honours the algorithm
	 * the ciphertext names (KES cannot), and describe reports AES256 as KES does. */
	bool typed;
	bool has_hmac;
	int64_t created_at_sec; /* Unix seconds, UTC; 0 with created_at_nsec 0 = unknown */
	int32_t created_at_nsec;
	char created_by[KEY_CREATED_BY_MAX + 1]; /* identity hex, may be "" */
};

enum key_error {
	KEY_ERR_INVALID = -1, /* malformed input (record, key size, algorithm name) */
	KEY_ERR_NOT_AUTHENTIC =
	    -2, /* decrypt: API 400 "decryption failed: ciphertext is not authentic" */
	KEY_ERR_NO_HMAC = -3, /* hmac on a legacy key: API 409 "key does not support HMAC" */
	KEY_ERR_CRYPTO = -4,  /* RNG or library failure: API 500 */
	KEY_ERR_NOMEM = -5,
};

/* Allocates a zeroed key in secure memory; free with key_free (zeroes). */
struct secret_key *key_alloc(void);
void key_free(struct secret_key *k);

/* The algorithm a new key gets: AES256 when the CPU has AES and carry-less multiply
 * instructions (as KES decides), else ChaCha20. */
enum key_algorithm key_default_algorithm(void);
/* "AES256" / "ChaCha20" — the names describe and the HEAD API use. */
const char *key_algorithm_name(enum key_algorithm alg);
/* Import cipher names: AES256, AES256-GCM_SHA256 → AES256; ChaCha20, XCHACHA20-POLY1305 →
 * ChaCha20. Returns 0, or KEY_ERR_INVALID for anything else (including ""). */
int key_algorithm_parse(const char *name, enum key_algorithm *out);

/* A new random key and random HMAC key, created now by created_by. */
int key_generate(enum key_algorithm alg, const char *created_by, struct secret_key **out);
/* An imported key: the given 32 bytes (else KEY_ERR_INVALID), a random HMAC key, now. */
int key_import(enum key_algorithm alg, const uint8_t *raw, size_t raw_len, const char *created_by,
               struct secret_key **out);

/* Stored record: writes base64(protobuf KeyVersion) exactly as KES HEAD does. */
int key_record_encode(const struct secret_key *k, struct bytes *out);
/* Reads a HEAD record or a legacy JSON record ({"bytes","algorithm","created_at",…}). */
int key_record_decode(const uint8_t *record, size_t len, struct secret_key **out);

/* Seals plaintext with associated data into KES's current raw format
 * sealed‖tag‖iv(16)‖nonce(12) (len = plaintext + 44). */
int key_encrypt(const struct secret_key *k, const uint8_t *plaintext, size_t plaintext_len,
                const uint8_t *ad, size_t ad_len, struct bytes *ciphertext_out);
/* Opens any of the three formats (raw, msgpack 5-array, legacy JSON). Any malformed or
 * unauthentic input is KEY_ERR_NOT_AUTHENTIC; the plaintext is only returned when authentic. */
int key_decrypt(const struct secret_key *k, const uint8_t *ciphertext, size_t ciphertext_len,
                const uint8_t *ad, size_t ad_len, struct bytes *plaintext_out);
/* HMAC-SHA256 with the key's HMAC key. KEY_ERR_NO_HMAC for legacy keys. */
int key_hmac(const struct secret_key *k, const uint8_t *msg, size_t msg_len, uint8_t out[32]);

/* Fills buf with random bytes: a per-thread CTR-DRBG that the kernel CSPRNG seeds and
 * reseeds (key.c). Any thread. 0 or KEY_ERR_CRYPTO (the kernel refused to seed it). */
int key_random(void *buf, size_t len);

#endif
