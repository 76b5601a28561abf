/*
 * key_set.c — a key's versions as the cache holds them (key_versions.h), and encryption and
 * decryption across versions: the version mark on ciphertexts of v2 and up, and the choice of
 * the version a ciphertext is opened with.
 *
 * Why a mark and not trial decryption: a ciphertext without a version (MinIO never sends one)
 * must open under whichever version made it. Trying the versions one after another costs one
 * key derivation and AEAD open per version tried, so an old ciphertext of a key rotated N
 * times costs N times a current one and a forged one always costs N; the mark makes every
 * decrypt one attempt (two for the rare raw ciphertext that looks marked), tells a retired
 * version from a forgery, and counts decrypts per version exactly. The numbers are in
 * tests/bench/versions_cost.c and kesc.yml(5).
 */
#include <stdlib.h>
#include <string.h>

#include "keystore/key_internal.h"
#include "keystore/key_versions.h"
#include "keystore/secmem.h"

static const uint8_t MARK[3] = {0x6b, 0x76, 0x01};

void key_set_free(struct key_set *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; s->keys && i < s->count; i++)
		key_free(s->keys[i]);
	free(s->keys);
	free(s);
}

struct key_set *key_set_of(struct secret_key *k)
{
	struct key_set *s = calloc(1, sizeof(*s));

	if (s)
		s->keys = calloc(1, sizeof(*s->keys));
	if (!s || !s->keys) {
		free(s);
		key_free(k);
		return NULL;
	}
	s->keys[0] = k;
	s->count = 1;
	s->min_decryption = 1;
	return s;
}

int key_set_decode(const uint8_t *record, size_t len, struct key_set **out)
{
	struct key_versions v;
	struct key_set *s;
	int rc;

	*out = NULL;
	rc = key_versions_read(record, len, &v);
	if (rc != 0)
		return rc;
	rc = KEY_ERR_NOMEM;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->keys = calloc(v.count, sizeof(*s->keys))))
		goto fail;
	s->min_decryption = v.min_decryption;
	for (uint32_t i = 0; i < v.count; i++) {
		rc = key_record_decode(v.records[i].data, v.records[i].len, &s->keys[i]);
		if (rc != 0)
			goto fail;
		s->count = i + 1;
	}
	key_versions_free(&v);
	*out = s;
	return 0;
fail:
	key_set_free(s);
	key_versions_free(&v);
	return rc;
}

const struct secret_key *key_set_version(const struct key_set *s, uint32_t n)
{
	return n >= 1 && n <= s->count ? s->keys[n - 1] : NULL;
}

bool key_version_mark_parse(const uint8_t *in, size_t len, uint32_t *version, const uint8_t **inner,
                            size_t *inner_len)
{
	if (len <= KEY_VERSION_MARK_SIZE || memcmp(in, MARK, sizeof(MARK)) != 0)
		return false;
	uint32_t v = (uint32_t)in[3] << 24 | (uint32_t)in[4] << 16 | (uint32_t)in[5] << 8 | in[6];
	if (v < 2 || v > KEY_VERSIONS_MAX)
		return false;
	*version = v;
	*inner = in + KEY_VERSION_MARK_SIZE;
	*inner_len = len - KEY_VERSION_MARK_SIZE;
	return true;
}

/* raw, a KES ciphertext, becomes mark(version) ‖ raw. */
static int mark(uint32_t version, struct bytes *raw)
{
	size_t len = raw->len + KEY_VERSION_MARK_SIZE;
	uint8_t *p = malloc(len + 1);

	if (!p)
		return KEY_ERR_NOMEM;
	memcpy(p, MARK, sizeof(MARK));
	p[3] = (uint8_t)(version >> 24);
	p[4] = (uint8_t)(version >> 16);
	p[5] = (uint8_t)(version >> 8);
	p[6] = (uint8_t)version;
	memcpy(p + KEY_VERSION_MARK_SIZE, raw->data, raw->len);
	p[len] = 0;
	bytes_free(raw);
	raw->data = p;
	raw->len = len;
	return 0;
}

int key_set_encrypt(const struct key_set *s, uint32_t version, const uint8_t *plaintext,
                    size_t plaintext_len, const uint8_t *ad, size_t ad_len, struct bytes *out,
                    uint32_t *used)
{
	int rc;

	out->data = NULL;
	out->len = 0;
	if (version == 0)
		version = s->count;
	if (!key_set_version(s, version))
		return KEY_ERR_NO_VERSION;
	if (version < s->min_decryption)
		return KEY_ERR_RETIRED; /* what nobody may decrypt must not be made */
	rc = key_encrypt(s->keys[version - 1], plaintext, plaintext_len, ad, ad_len, out);
	if (rc == 0 && version > 1 && (rc = mark(version, out)) != 0)
		bytes_free(out);
	if (rc == 0 && used)
		*used = version;
	return rc;
}

/* One attempt: the ciphertext in (KES format) under version n of s. */
static int try_version(const struct key_set *s, uint32_t n, const uint8_t *in, size_t len,
                       const uint8_t *ad, size_t ad_len, struct bytes *out)
{
	const struct secret_key *k = key_set_version(s, n);

	if (!k)
		return KEY_ERR_NO_VERSION;
	return key_decrypt(k, in, len, ad, ad_len, out);
}

int key_set_decrypt(const struct key_set *s, uint32_t version, const uint8_t *ciphertext,
                    size_t ciphertext_len, const uint8_t *ad, size_t ad_len,
                    struct bytes *plaintext_out, uint32_t *used)
{
	/* At most two readings: the marked one (if the ciphertext is marked), then raw as v1. */
	struct {
		uint32_t version;
		const uint8_t *in;
		size_t len;
	} reading[2];
	size_t readings = 0;
	bool unknown = false;
	int rc = KEY_ERR_NOT_AUTHENTIC;

	plaintext_out->data = NULL;
	plaintext_out->len = 0;
	if (key_version_mark_parse(ciphertext, ciphertext_len, &reading[0].version, &reading[0].in,
	                           &reading[0].len))
		readings++;
	reading[readings].version = 1;
	reading[readings].in = ciphertext;
	reading[readings].len = ciphertext_len;
	readings++;
	if (version > s->count)
		unknown = true; /* asked for a version this set does not have (yet) */
	for (size_t i = 0; i < readings && rc != 0; i++) {
		if (version != 0 && reading[i].version != version)
			continue;
		rc = try_version(s, reading[i].version, reading[i].in, reading[i].len, ad, ad_len,
		                 plaintext_out);
		if (rc == KEY_ERR_NO_VERSION) {
			unknown = true;
			rc = KEY_ERR_NOT_AUTHENTIC;
		} else if (rc == 0) {
			*used = reading[i].version;
		} else if (rc != KEY_ERR_NOT_AUTHENTIC && rc != KEY_ERR_INVALID) {
			return rc; /* no memory, or the library failed: not the client's fault */
		} else {
			rc = KEY_ERR_NOT_AUTHENTIC;
		}
	}
	if (rc == 0 && *used < s->min_decryption) {
		/* Authentic, so the version is really retired (not a forged mark): say so, but
		 * the plaintext never leaves. */
		bytes_free(plaintext_out);
		return KEY_ERR_RETIRED;
	}
	if (rc != 0 && unknown)
		return KEY_ERR_NO_VERSION;
	return rc;
}
