/*
 * key_internal.h — what the parts of the key module (key.c, key_crypto.c, key_ciphertext.c,
 * key_record.c) share with each other and with their tests. Not a public interface: callers
 * outside keystore/key*.c and tests use key.h.
 */
#ifndef KESC_KEYSTORE_KEY_INTERNAL_H
#define KESC_KEYSTORE_KEY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"
#include "keystore/key.h"

#define KEY_IV_SIZE    16
#define KEY_NONCE_SIZE 12
#define KEY_TAG_SIZE   16
/* iv ‖ nonce appended to every raw ciphertext */
#define KEY_RANDOM_SIZE (KEY_IV_SIZE + KEY_NONCE_SIZE)

/* HChaCha20 (draft-irtf-cfrg-xchacha §2.2): derives a 32-byte subkey from key and a 16-byte
 * input. out may not overlap key. */
void key_hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t in[16]);

/* HMAC-SHA256 with a 32-byte key, on stack contexts only (no allocation: this runs per
 * message). Returns 0 or KEY_ERR_CRYPTO. */
int key_hmac_sha256(const uint8_t key[32], const uint8_t *msg, size_t msg_len, uint8_t out[32]);

/*
 * A ciphertext of any of the three formats, normalised to its parts. sealed points into the
 * caller's input (raw, msgpack) or into owned (JSON, whose bytes are base64). alg is the
 * algorithm the ciphertext names (0 for raw, which names none).
 */
struct key_ciphertext {
	const uint8_t *sealed; /* ciphertext ‖ tag */
	size_t sealed_len;
	uint8_t iv[KEY_IV_SIZE];
	uint8_t nonce[KEY_NONCE_SIZE];
	int alg; /* enum key_algorithm, or 0 */
	struct bytes owned;
};

/* Splits input into its parts as KES HEAD does: msgpack when it starts with 0x95, JSON when it
 * starts with '{', raw otherwise and whenever the structured parse fails. Returns 0, or
 * KEY_ERR_NOT_AUTHENTIC when the input cannot be a ciphertext (too short, or a well-formed
 * JSON ciphertext with an unknown aead or a wrong iv/nonce size). Release with
 * key_ciphertext_free on every path. */
int key_ciphertext_parse(const uint8_t *in, size_t len, struct key_ciphertext *out);
void key_ciphertext_free(struct key_ciphertext *c);

/* key_random calls a thread's generator this many times before it reseeds it from the
 * kernel; a call produces up to 512 bytes, a generate request uses 60, so a busy thread
 * reseeds about every 8,000 requests (NIST SP 800-90A allows 2^48 calls). */
#define KEY_RANDOM_RESEED_INTERVAL 1024

/* Current time as Unix seconds and nanoseconds (UTC). */
void key_now(int64_t *sec, int32_t *nsec);

/* Parses an RFC 3339 timestamp as Go's time.Time JSON decoding accepts it (fractional seconds
 * up to 9 digits, Z or ±hh:mm). Returns 0 or KEY_ERR_INVALID. */
int key_parse_rfc3339(const char *s, size_t n, int64_t *sec, int32_t *nsec);

#endif
