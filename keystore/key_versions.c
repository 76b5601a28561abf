/*
 * key_versions.c — the versioned record (key_versions.h): reading it, writing it, and the two
 * edits made to it (a new version, a new minimum decryption version). Every buffer here holds
 * key material and is zeroed when freed (bytes_free, buf_free, json_free do).
 */
#include "keystore/key_versions.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/json.h"
#include "keystore/key_internal.h"
#include "keystore/secmem.h"

/* The object, its three members and one string per version, with a little room: more values
 * than this cannot be a versioned record, and yajl stops counting there. */
#define VERSIONS_MAX_VALUES (KEY_VERSIONS_MAX + 8)

int key_version_parse(const char *s, size_t n, uint32_t *out)
{
	uint32_t v = 0;

	if (n < 2 || n > 11 || s[0] != 'v' || s[1] < '1' || s[1] > '9')
		return KEY_ERR_INVALID;
	for (size_t i = 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return KEY_ERR_INVALID;
		v = v * 10 + (uint32_t)(s[i] - '0');
		if (v > KEY_VERSIONS_MAX)
			return KEY_ERR_INVALID;
	}
	*out = v;
	return 0;
}

void key_version_format(uint32_t n, char *out, size_t outlen)
{
	snprintf(out, outlen, "v%u", n);
}

void key_versions_free(struct key_versions *v)
{
	if (!v)
		return;
	for (uint32_t i = 0; v->records && i < v->count; i++)
		bytes_free(&v->records[i]);
	free(v->records);
	memset(v, 0, sizeof(*v));
}

/* Whether record starts (after white space) like a JSON object: only then can it be a
 * versioned record. KES records are base64 and never do. */
static bool starts_like_object(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')
			continue;
		return p[i] == '{';
	}
	return false;
}

/* A whole JSON integer in [lo, hi]. */
static bool json_uint_in(const struct json_value *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	const char *num = json_number(v);
	char *end = NULL;

	if (!num || num[0] < '0' || num[0] > '9')
		return false;
	errno = 0;
	unsigned long n = strtoul(num, &end, 10);
	if (errno != 0 || !end || *end != '\0' || n < lo || n > hi)
		return false;
	*out = (uint32_t)n;
	return true;
}

/* Checks that a version's record is a key (not a tombstone, not another versioned record). */
static bool version_record_ok(const char *s, size_t n)
{
	struct secret_key *k = NULL;

	if (starts_like_object((const uint8_t *)s, n)) {
		/* Only a legacy KES record may be JSON here; never a record of ours. */
		char err[64];
		struct json_value *j = json_parse_limited(s, n, 16, err, sizeof(err));
		size_t alen = 0;
		const char *alg = json_string(json_get(j, "algorithm"), &alen);
		bool ours = alg && alen >= 5 && memcmp(alg, "kesc-", 5) == 0;
		json_free(j);
		if (ours)
			return false;
	}
	if (key_record_decode((const uint8_t *)s, n, &k) != 0)
		return false;
	key_free(k);
	return true;
}

/* Fills v from the parsed versioned record j (whose algorithm was checked). */
static int read_versioned(const struct json_value *j, struct key_versions *v)
{
	const struct json_value *list = json_get(j, "versions");
	size_t n = json_count(list);

	/* Exactly the three members: a rule this code does not know is not ignored. */
	if (json_count(j) != 3 || json_type(list) != JSON_ARRAY || n < 2 || n > KEY_VERSIONS_MAX)
		return KEY_ERR_INVALID;
	if (!json_uint_in(json_get(j, "min_decryption_version"), 1, (uint32_t)n,
	                  &v->min_decryption))
		return KEY_ERR_INVALID;
	v->records = calloc(n, sizeof(*v->records));
	if (!v->records)
		return KEY_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *s = json_string(json_at(list, i), &len);

		if (!s || !version_record_ok(s, len))
			return KEY_ERR_INVALID;
		if (bytes_set(&v->records[i], s, len) != 0)
			return KEY_ERR_NOMEM;
		v->count = (uint32_t)i + 1;
	}
	return 0;
}

/* 1: record is a versioned record (parsed into *j); 0: it is not (a KES record, or anything
 * else); KEY_ERR_INVALID: it names our algorithm but is malformed. */
static int parse_versioned(const uint8_t *record, size_t len, struct json_value **j)
{
	char err[64];
	size_t n;

	*j = NULL;
	if (!starts_like_object(record, len))
		return 0;
	*j = json_parse_limited((const char *)record, len, VERSIONS_MAX_VALUES, err, sizeof(err));
	const char *alg = json_string(json_get(*j, "algorithm"), &n);
	if (json_type(*j) == JSON_OBJECT && alg && n == strlen(KEY_VERSIONS_ALGORITHM) &&
	    memcmp(alg, KEY_VERSIONS_ALGORITHM, n) == 0)
		return 1;
	json_free(*j);
	*j = NULL;
	/* A document too large to parse within the bound may still be ours: refuse it rather
	 * than hand it to the legacy reader (which refuses it too, as it has no "bytes"). */
	return 0;
}

int key_versions_read(const uint8_t *record, size_t len, struct key_versions *out)
{
	struct json_value *j;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = parse_versioned(record, len, &j);
	if (rc == 1) {
		rc = read_versioned(j, out);
		json_free(j);
	} else if (!version_record_ok((const char *)record, len)) {
		rc = KEY_ERR_INVALID;
	} else {
		out->records = calloc(1, sizeof(*out->records));
		rc = KEY_ERR_NOMEM;
		if (out->records && bytes_set(&out->records[0], record, len) == 0) {
			out->count = 1;
			out->min_decryption = 1;
			rc = 0;
		}
	}
	if (rc != 0)
		key_versions_free(out);
	return rc;
}

int key_versions_write(const struct key_versions *v, struct bytes *out)
{
	struct json_writer w;
	struct buf b;
	int rc;

	out->data = NULL;
	out->len = 0;
	if (v->count < 1 || v->count > KEY_VERSIONS_MAX || v->min_decryption < 1 ||
	    v->min_decryption > v->count)
		return KEY_ERR_INVALID;
	if (v->count == 1)
		return bytes_set(out, v->records[0].data, v->records[0].len) == 0 ? 0
		                                                                  : KEY_ERR_NOMEM;
	buf_init(&b, 0);
	json_writer_init(&w, &b);
	json_object_begin(&w);
	json_key(&w, "algorithm");
	json_write_string(&w, KEY_VERSIONS_ALGORITHM);
	json_key(&w, "min_decryption_version");
	json_write_uint(&w, v->min_decryption);
	json_key(&w, "versions");
	json_array_begin(&w);
	for (uint32_t i = 0; i < v->count; i++)
		json_write_string_n(&w, (const char *)v->records[i].data, v->records[i].len);
	json_array_end(&w);
	json_object_end(&w);
	rc = buf_take(&b, out) == 0 ? 0 : KEY_ERR_NOMEM;
	buf_free(&b);
	return rc;
}

int key_versions_rotate(struct key_versions *v, const char *created_by)
{
	struct secret_key *cur = NULL, *next = NULL;
	struct bytes rec = {0};
	int rc;

	if (v->count >= KEY_VERSIONS_MAX)
		return KEY_ERR_TOO_MANY;
	rc = key_record_decode(v->records[v->count - 1].data, v->records[v->count - 1].len, &cur);
	if (rc != 0)
		return rc;
	rc = key_generate(cur->algorithm, created_by, &next);
	if (rc != 0)
		goto out;
	if (cur->has_hmac)
		memcpy(next->hmac_key, cur->hmac_key, KEY_HMAC_SIZE);
	rc = key_record_encode(next, &rec);
	if (rc != 0)
		goto out;
	struct bytes *grown = realloc(v->records, ((size_t)v->count + 1) * sizeof(*grown));
	rc = KEY_ERR_NOMEM;
	if (!grown)
		goto out;
	v->records = grown;
	v->records[v->count++] = rec;
	rec = (struct bytes){0};
	rc = 0;
out:
	bytes_free(&rec);
	key_free(next);
	key_free(cur);
	return rc;
}

int key_versions_retire(struct key_versions *v, uint32_t min)
{
	if (min < 1 || min > v->count)
		return KEY_ERR_NO_VERSION;
	v->min_decryption = min;
	return 0;
}

int64_t key_versions_created_at(const struct key_versions *v, uint32_t n)
{
	struct secret_key *k = NULL;
	int64_t at;

	if (n < 1 || n > v->count ||
	    key_record_decode(v->records[n - 1].data, v->records[n - 1].len, &k) != 0)
		return 0;
	/* rounded up: "at least this long ago" must not be a second short */
	at = k->created_at_sec + (k->created_at_nsec > 0);
	key_free(k);
	return at;
}
