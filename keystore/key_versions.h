/*
 * key_versions.h — the versions of a key (issue 14): rotation, the record that holds every
 * version, and ciphertexts that name the version they were made with.
 *
 * A key that was never rotated is exactly a KES key: one version (v1), its record is KES's
 * record (key.h) and its ciphertexts are KES's. Rotating it adds a version and turns the record
 * into a versioned record, a JSON object KES refuses cleanly (a legacy-looking record with an
 * algorithm KES does not know and no "bytes": "crypto: secret key type 'kesc-versioned-key' is
 * not supported"):
 *
 *   {"algorithm":"kesc-versioned-key","min_decryption_version":1,
 *    "versions":["<KES record of v1>","<KES record of v2>",…]}
 *
 * Version n is versions[n-1]; each is a complete KES record as key_record_decode reads it, v1
 * byte for byte the record the key had before its first rotation (a legacy JSON record
 * included). Versions older than min_decryption_version are retired: they still authenticate,
 * but a decrypt under them is refused. Nothing else may be in the object (fail closed: a later
 * format that adds a rule must not be served by code that ignores the rule).
 *
 * Ciphertexts: version 1 writes KES's raw format (so a key's existing ciphertexts and the
 * ciphertexts of keys never rotated are KES's). Versions 2 and up write
 *
 *   0x6b 0x76 0x01 ‖ version (uint32, big endian) ‖ KES raw ciphertext under that version
 *
 * ("kv", format 1). The first byte is neither msgpack's 0x95 nor JSON's '{', so the two legacy
 * formats stay unambiguous; a raw ciphertext is random bytes and may begin with the marker by
 * chance (2^-24, and then the version must also be one the key has), so a marked reading that
 * does not authenticate is tried once more as a raw ciphertext of v1. KES, given a marked
 * ciphertext, takes it for raw and answers "not authentic".
 *
 * Rotation keeps the HMAC key: every version carries the HMAC key of the version before it (a
 * legacy key without one gets a new one at its first rotation), so /v1/key/hmac answers stay
 * the same across rotations (MinIO derives its root credentials from them).
 */
#ifndef KESC_KEYSTORE_KEY_VERSIONS_H
#define KESC_KEYSTORE_KEY_VERSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"
#include "keystore/key.h"

#define KEY_VERSIONS_ALGORITHM "kesc-versioned-key"
/* Most versions a key can have: a versioned record stays below ~250 KB (each version is a KES
 * record of ~200 bytes), and a cached key below ~250 KB of locked memory. Daily rotation for
 * more than two and a half years. */
#define KEY_VERSIONS_MAX 1000
/* Bytes a marked ciphertext adds to KES's raw one. */
#define KEY_VERSION_MARK_SIZE 7

enum key_versions_error {
	KEY_ERR_RETIRED = -20,    /* authentic, but its version is below min_decryption_version */
	KEY_ERR_NO_VERSION = -21, /* a version the set does not have (it may be newer than it) */
	KEY_ERR_TOO_MANY = -22,   /* rotate: already KEY_VERSIONS_MAX versions */
};

/* ---- the parsed form the cache holds: every version's key in secret memory ---- */

struct key_set {
	uint32_t count;           /* versions 1..count; the current one is count */
	uint32_t min_decryption;  /* 1..count */
	struct secret_key **keys; /* keys[n-1] is version n; each from key_alloc */
};

/* Reads a KES record (one version) or a versioned record. KEY_ERR_INVALID for anything else
 * (a tombstone included), KEY_ERR_NOMEM. Free with key_set_free. */
int key_set_decode(const uint8_t *record, size_t len, struct key_set **out);
/* A one-version set taking ownership of k (also on failure: then k is freed). NULL: no memory. */
struct key_set *key_set_of(struct secret_key *k);
void key_set_free(struct key_set *s);
/* Whether the key was rotated (its record is a versioned record). */
static inline bool key_set_versioned(const struct key_set *s)
{
	return s->count > 1;
}
static inline const struct secret_key *key_set_current(const struct key_set *s)
{
	return s->keys[s->count - 1];
}
/* Version n, or NULL. */
const struct secret_key *key_set_version(const struct key_set *s, uint32_t n);

/* Encrypts under version (0: the current one): KES raw for v1, marked for v2 and up. A version
 * the set does not have is KEY_ERR_NO_VERSION; a retired one KEY_ERR_RETIRED. *used (may be
 * NULL) is the version used. Else as key_encrypt. */
int key_set_encrypt(const struct key_set *s, uint32_t version, const uint8_t *plaintext,
                    size_t plaintext_len, const uint8_t *ad, size_t ad_len, struct bytes *out,
                    uint32_t *used);
/* Decrypts a ciphertext of any version and any format. version 0: the ciphertext says which
 * (marked: that version; anything else: v1); else only that version is tried. Results: 0
 * (*used set), KEY_ERR_NOT_AUTHENTIC, KEY_ERR_RETIRED (authentic; *used is the retired version;
 * no plaintext), KEY_ERR_NO_VERSION (the ciphertext or the request names a version the set
 * does not have, and nothing else authenticated: the caller may read the key again, another
 * server may have rotated it), or KEY_ERR_NOMEM / KEY_ERR_CRYPTO. */
int key_set_decrypt(const struct key_set *s, uint32_t version, const uint8_t *ciphertext,
                    size_t ciphertext_len, const uint8_t *ad, size_t ad_len,
                    struct bytes *plaintext_out, uint32_t *used);

/* The version a marked ciphertext names (2..KEY_VERSIONS_MAX), with the KES ciphertext after
 * the mark; false for anything else. */
bool key_version_mark_parse(const uint8_t *in, size_t len, uint32_t *version, const uint8_t **inner,
                            size_t *inner_len);

/* "v<n>" ↔ n (1..KEY_VERSIONS_MAX; no sign, no leading zero). parse: 0 or KEY_ERR_INVALID. */
int key_version_parse(const char *s, size_t n, uint32_t *out);
void key_version_format(uint32_t n, char *out, size_t outlen);

/* ---- the record, as rotate and retire edit it ---- */

/* Every version's KES record (heap, zeroed when freed). */
struct key_versions {
	uint32_t count;
	uint32_t min_decryption;
	struct bytes *records; /* records[n-1]: version n */
};

/* Reads a KES record (count 1, the record copied verbatim) or a versioned record; checks that
 * every version decodes. KEY_ERR_INVALID / KEY_ERR_NOMEM. Release with key_versions_free. */
int key_versions_read(const uint8_t *record, size_t len, struct key_versions *out);
void key_versions_free(struct key_versions *v);
/* The stored form: one version unretired is its KES record verbatim (a key never rotated stays
 * a KES key), else a versioned record. */
int key_versions_write(const struct key_versions *v, struct bytes *out);
/* Adds a version: a new random key of the current version's algorithm, the current version's
 * HMAC key (a new one if it has none), created now by created_by. KEY_ERR_TOO_MANY at the
 * limit. */
int key_versions_rotate(struct key_versions *v, const char *created_by);
/* Sets min_decryption_version; KEY_ERR_NO_VERSION unless 1 <= min <= count. */
int key_versions_retire(struct key_versions *v, uint32_t min);
/* Creation time of version n (1..count) in Unix seconds, rounded up: 0 if it cannot be read. */
int64_t key_versions_created_at(const struct key_versions *v, uint32_t n);

#endif
