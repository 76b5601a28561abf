/* test_key_versions.c — key versions (keystore/key_versions.h, key_set.c): the versioned record,
 * rotation and retirement on records, the version mark on ciphertexts, decryption without a
 * version across rotations, and scheduled deletions in tombstones (tombstone.h). */
#include <stdlib.h>

#include <mbedtls/gcm.h>

#include "check.h"
#include "keystore/bytes.h"
#include "keystore/json.h"
#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "keystore/key_versions.h"
#include "keystore/tombstone.h"

/* KES's encodeSecretKeyVersionTests record (kes.md §7.1): AES256, all-zero key and HMAC key. */
static const char *KES_RECORD =
    "CiQKIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAESJAogAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2M"
    "GFlNmI1Nzg2OThhOTdjNTlmZDIy";
/* KES's raw vector #5 under that key (kes.md §7.4): 16 zero bytes, no context. */
static const char *RAW_B64 =
    "zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc";
static const char *MSGP_B64 =
    "lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0SaHZrX5"
    "LBufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ=";
static const char *JSON_CT =
    "{\"aead\":\"AES-256-GCM-HMAC-SHA-256\",\"iv\":\"xLxIN3tSCkg2xMafuvwUwg==\",\"nonce\":"
    "\"gu0mGwUkwcvMEoi5\",\"bytes\":\"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc=\"}";
static const uint8_t P0[16];

static struct bytes b64(const char *s)
{
	struct bytes b = {NULL, 0};
	if (base64_decode(&b, s, strlen(s)) != 0)
		abort();
	return b;
}

static struct bytes text(const char *s)
{
	struct bytes b;
	if (bytes_set(&b, s, strlen(s)) != 0)
		abort();
	return b;
}

/* The record after n rotations of KES_RECORD. */
static struct bytes rotated(int n)
{
	struct key_versions v;
	struct bytes out;
	if (key_versions_read((const uint8_t *)KES_RECORD, strlen(KES_RECORD), &v) != 0)
		abort();
	for (int i = 0; i < n; i++)
		if (key_versions_rotate(&v, "rotator") != 0)
			abort();
	if (key_versions_write(&v, &out) != 0)
		abort();
	key_versions_free(&v);
	return out;
}

static struct key_set *set_of(const struct bytes *record)
{
	struct key_set *s = NULL;
	if (key_set_decode(record->data, record->len, &s) != 0)
		abort();
	return s;
}

static void check_p0(int rc, struct bytes *pt)
{
	CHECK_EQ_INT(rc, 0);
	CHECK(pt->len == sizeof(P0) && memcmp(pt->data, P0, sizeof(P0)) == 0);
	bytes_free(pt);
}

static void test_version_names(void)
{
	uint32_t v = 0;
	char out[16];
	CHECK_EQ_INT(key_version_parse("v1", 2, &v), 0);
	CHECK_EQ_INT(v, 1);
	CHECK_EQ_INT(key_version_parse("v1000", 5, &v), 0);
	CHECK_EQ_INT(v, 1000);
	static const char *const bad[] = {"",      "v",   "1",   "v0",          "v01", "V1",
	                                  "v1001", "v-1", "v1 ", "v4294967297", "vx"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(key_version_parse(bad[i], strlen(bad[i]), &v), KEY_ERR_INVALID);
	key_version_format(42, out, sizeof(out));
	CHECK_EQ_STR(out, "v42");
}

/* A key never rotated: its record is KES's, unchanged by read + write; its set has one version
 * and its ciphertexts are KES's raw format. */
static void test_unrotated_is_kes(void)
{
	struct key_versions v;
	struct bytes out, ct, pt;
	uint32_t used = 0;
	CHECK_EQ_INT(key_versions_read((const uint8_t *)KES_RECORD, strlen(KES_RECORD), &v), 0);
	CHECK_EQ_INT(v.count, 1);
	CHECK_EQ_INT(key_versions_write(&v, &out), 0);
	CHECK(out.len == strlen(KES_RECORD) && memcmp(out.data, KES_RECORD, out.len) == 0);
	/* retiring nothing leaves it a KES record */
	CHECK_EQ_INT(key_versions_retire(&v, 1), 0);
	CHECK_EQ_INT(key_versions_retire(&v, 2), KEY_ERR_NO_VERSION);
	key_versions_free(&v);

	struct key_set *s = set_of(&out);
	CHECK(!key_set_versioned(s));
	CHECK_EQ_INT(key_set_encrypt(s, 0, P0, sizeof(P0), NULL, 0, &ct, &used), 0);
	CHECK_EQ_INT(used, 1);
	CHECK_EQ_INT(ct.len, sizeof(P0) + 44); /* KES raw: sealed‖tag‖iv‖nonce */
	CHECK_EQ_INT(key_decrypt(key_set_current(s), ct.data, ct.len, NULL, 0, &pt), 0);
	bytes_free(&pt);
	bytes_free(&ct);
	key_set_free(s);
	bytes_free(&out);
}

static void test_rotate_record(void)
{
	struct bytes r2 = rotated(2);
	struct json_value *j;
	char err[64];
	size_t n;

	j = json_parse((const char *)r2.data, r2.len, err, sizeof(err));
	CHECK(j != NULL);
	CHECK_EQ_STR(json_string(json_get(j, "algorithm"), &n), KEY_VERSIONS_ALGORITHM);
	CHECK_EQ_STR(json_number(json_get(j, "min_decryption_version")), "1");
	CHECK_EQ_INT(json_count(json_get(j, "versions")), 3);
	/* v1 is the KES record byte for byte */
	CHECK_EQ_STR(json_string(json_at(json_get(j, "versions"), 0), &n), KES_RECORD);
	json_free(j);

	struct key_set *s = set_of(&r2);
	CHECK_EQ_INT(s->count, 3);
	CHECK(key_set_versioned(s));
	for (uint32_t i = 2; i <= 3; i++) {
		const struct secret_key *k = key_set_version(s, i);
		CHECK_EQ_INT(k->algorithm, KEY_ALG_AES256);
		CHECK_EQ_STR(k->created_by, "rotator");
		CHECK(memcmp(k->key, key_set_version(s, 1)->key, KEY_SIZE) != 0);
		/* the HMAC key stays: HMACs do not change across rotations */
		CHECK_MEM(k->hmac_key, key_set_version(s, 1)->hmac_key, KEY_HMAC_SIZE);
	}
	CHECK(memcmp(key_set_version(s, 2)->key, key_set_version(s, 3)->key, KEY_SIZE) != 0);
	CHECK(key_set_version(s, 4) == NULL && key_set_version(s, 0) == NULL);
	key_set_free(s);
	bytes_free(&r2);
}

/* A legacy JSON record (no HMAC key, no algorithm) stays verbatim as v1; v2 gets an HMAC key. */
static void test_rotate_legacy(void)
{
	const char *legacy = "{\"bytes\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}";
	struct key_versions v;
	struct bytes out;
	CHECK_EQ_INT(key_versions_read((const uint8_t *)legacy, strlen(legacy), &v), 0);
	CHECK_EQ_INT(key_versions_rotate(&v, ""), 0);
	CHECK(v.records[0].len == strlen(legacy) &&
	      !memcmp(v.records[0].data, legacy, v.records[0].len));
	CHECK_EQ_INT(key_versions_write(&v, &out), 0);
	key_versions_free(&v);
	struct key_set *s = set_of(&out);
	CHECK(!key_set_version(s, 1)->has_hmac && key_set_version(s, 2)->has_hmac);
	/* KES's JSON ciphertext under the legacy key still opens, without a version */
	struct bytes pt;
	uint32_t used = 0;
	check_p0(
	    key_set_decrypt(s, 0, (const uint8_t *)JSON_CT, strlen(JSON_CT), NULL, 0, &pt, &used),
	    &pt);
	CHECK_EQ_INT(used, 1);
	key_set_free(s);
	bytes_free(&out);
}

/* MinIO's case: ciphertexts of every version, decrypted without a version after several
 * rotations; KES's own three formats included. */
static void test_decrypt_without_version(void)
{
	struct bytes rec = text(KES_RECORD);
	struct bytes cts[5], pt;
	struct key_versions v;
	uint32_t made[5], used;

	for (int i = 0; i < 5; i++) {
		struct key_set *s = set_of(&rec);
		CHECK_EQ_INT(key_set_encrypt(s, 0, P0, sizeof(P0), (const uint8_t *)"ctx", 3,
		                             &cts[i], &made[i]),
		             0);
		CHECK_EQ_INT(made[i], (uint32_t)i + 1);
		CHECK_EQ_INT(cts[i].len, sizeof(P0) + 44 + (i ? KEY_VERSION_MARK_SIZE : 0));
		key_set_free(s);
		/* rotate the record this set came from */
		CHECK_EQ_INT(key_versions_read(rec.data, rec.len, &v), 0);
		CHECK_EQ_INT(key_versions_rotate(&v, "rotator"), 0);
		bytes_free(&rec);
		CHECK_EQ_INT(key_versions_write(&v, &rec), 0);
		key_versions_free(&v);
	}
	struct key_set *s = set_of(&rec); /* six versions now */
	CHECK_EQ_INT(s->count, 6);
	for (int i = 0; i < 5; i++) {
		used = 0;
		check_p0(key_set_decrypt(s, 0, cts[i].data, cts[i].len, (const uint8_t *)"ctx", 3,
		                         &pt, &used),
		         &pt);
		CHECK_EQ_INT(used, made[i]);
		/* with its version given, too; with another version, not */
		check_p0(key_set_decrypt(s, made[i], cts[i].data, cts[i].len,
		                         (const uint8_t *)"ctx", 3, &pt, &used),
		         &pt);
		CHECK_EQ_INT(key_set_decrypt(s, made[i] % 5 + 1, cts[i].data, cts[i].len,
		                             (const uint8_t *)"ctx", 3, &pt, &used),
		             KEY_ERR_NOT_AUTHENTIC);
		CHECK_EQ_INT(key_set_decrypt(s, 0, cts[i].data, cts[i].len, (const uint8_t *)"cty",
		                             3, &pt, &used),
		             KEY_ERR_NOT_AUTHENTIC);
	}
	/* a mark names the version: v2's ciphertext starts 6b 76 01 00 00 00 02 */
	static const uint8_t mark2[] = {0x6b, 0x76, 0x01, 0, 0, 0, 2};
	CHECK_MEM(cts[1].data, mark2, sizeof(mark2));
	/* KES's vectors under v1 */
	struct bytes raw = b64(RAW_B64), msgp = b64(MSGP_B64);
	check_p0(key_set_decrypt(s, 0, raw.data, raw.len, NULL, 0, &pt, &used), &pt);
	check_p0(key_set_decrypt(s, 0, msgp.data, msgp.len, NULL, 0, &pt, &used), &pt);
	check_p0(
	    key_set_decrypt(s, 0, (const uint8_t *)JSON_CT, strlen(JSON_CT), NULL, 0, &pt, &used),
	    &pt);
	CHECK_EQ_INT(used, 1);
	bytes_free(&raw);
	bytes_free(&msgp);
	for (int i = 0; i < 5; i++)
		bytes_free(&cts[i]);
	key_set_free(s);
	bytes_free(&rec);
}

/* A ciphertext of a version this set does not have (another server rotated since it loaded
 * the key): KEY_ERR_NO_VERSION, so the caller reads the key again. */
static void test_unknown_version(void)
{
	struct bytes r3 = rotated(3), r1 = rotated(1), ct, pt;
	struct key_set *newer = set_of(&r3), *older = set_of(&r1);
	uint32_t used;

	CHECK_EQ_INT(key_set_encrypt(newer, 0, P0, sizeof(P0), NULL, 0, &ct, &used), 0);
	CHECK_EQ_INT(used, 4);
	CHECK_EQ_INT(key_set_decrypt(older, 0, ct.data, ct.len, NULL, 0, &pt, &used),
	             KEY_ERR_NO_VERSION);
	CHECK_EQ_INT(key_set_decrypt(older, 4, ct.data, ct.len, NULL, 0, &pt, &used),
	             KEY_ERR_NO_VERSION);
	check_p0(key_set_decrypt(newer, 0, ct.data, ct.len, NULL, 0, &pt, &used), &pt);
	/* encrypt under a version the set does not have */
	bytes_free(&ct);
	CHECK_EQ_INT(key_set_encrypt(older, 3, P0, sizeof(P0), NULL, 0, &ct, &used),
	             KEY_ERR_NO_VERSION);
	key_set_free(newer);
	key_set_free(older);
	bytes_free(&r3);
	bytes_free(&r1);
}

static void test_retire(void)
{
	struct bytes r2 = rotated(2), ct1, ct3, pt, rec;
	struct key_set *s = set_of(&r2);
	struct key_versions v;
	uint32_t used;

	CHECK_EQ_INT(key_set_encrypt(s, 1, P0, sizeof(P0), NULL, 0, &ct1, &used), 0);
	CHECK_EQ_INT(ct1.len, sizeof(P0) + 44); /* v1 made on request: raw, as KES */
	CHECK_EQ_INT(key_set_encrypt(s, 0, P0, sizeof(P0), NULL, 0, &ct3, &used), 0);
	key_set_free(s);
	CHECK_EQ_INT(key_versions_read(r2.data, r2.len, &v), 0);
	CHECK_EQ_INT(key_versions_retire(&v, 3), 0);
	CHECK_EQ_INT(key_versions_retire(&v, 4), KEY_ERR_NO_VERSION);
	CHECK_EQ_INT(key_versions_retire(&v, 0), KEY_ERR_NO_VERSION);
	CHECK_EQ_INT(key_versions_write(&v, &rec), 0);
	key_versions_free(&v);
	s = set_of(&rec);
	CHECK_EQ_INT(s->min_decryption, 3);
	used = 0;
	CHECK_EQ_INT(key_set_decrypt(s, 0, ct1.data, ct1.len, NULL, 0, &pt, &used),
	             KEY_ERR_RETIRED);
	CHECK(pt.data == NULL && used == 1);
	/* a forgery is not authentic, retired or not */
	ct1.data[0] ^= 1;
	CHECK_EQ_INT(key_set_decrypt(s, 0, ct1.data, ct1.len, NULL, 0, &pt, &used),
	             KEY_ERR_NOT_AUTHENTIC);
	check_p0(key_set_decrypt(s, 0, ct3.data, ct3.len, NULL, 0, &pt, &used), &pt);
	/* nothing is made under a retired version */
	CHECK_EQ_INT(key_set_encrypt(s, 2, P0, sizeof(P0), NULL, 0, &pt, &used), KEY_ERR_RETIRED);
	key_set_free(s);
	bytes_free(&ct1);
	bytes_free(&ct3);
	bytes_free(&rec);
	bytes_free(&r2);
}

/* A raw v1 ciphertext that happens to begin with the mark of a version the key has still opens
 * (the marked reading fails to authenticate, the raw one is tried next). Built with a chosen
 * plaintext: GCM is a stream cipher, so with a fixed iv and nonce the first seven ciphertext
 * bytes are the plaintext's XOR the key stream. */
static void test_raw_that_looks_marked(void)
{
	struct bytes r1 = rotated(1);
	struct key_set *s = set_of(&r1);
	const struct secret_key *k1 = key_set_version(s, 1);
	uint8_t iv[16] = {1, 2, 3}, nonce[12] = {4, 5, 6}, mkey[32], pt[32] = {0}, ct[32 + 16 + 28];
	static const uint8_t mark2[] = {0x6b, 0x76, 0x01, 0, 0, 0, 2};
	mbedtls_gcm_context gcm;
	struct bytes out;
	uint32_t used = 0;

	CHECK_EQ_INT(key_hmac_sha256(k1->key, iv, sizeof(iv), mkey), 0);
	mbedtls_gcm_init(&gcm);
	CHECK_EQ_INT(mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, mkey, 256), 0);
	/* key stream: the encryption of zeros */
	CHECK_EQ_INT(mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, 32, nonce, 12, NULL, 0,
	                                       pt, ct, 16, ct + 32),
	             0);
	for (int i = 0; i < 7; i++)
		pt[i] = ct[i] ^ mark2[i];
	CHECK_EQ_INT(mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, 32, nonce, 12, NULL, 0,
	                                       pt, ct, 16, ct + 32),
	             0);
	mbedtls_gcm_free(&gcm);
	memcpy(ct + 48, iv, 16);
	memcpy(ct + 64, nonce, 12);
	CHECK_MEM(ct, mark2, sizeof(mark2));
	CHECK_EQ_INT(key_set_decrypt(s, 0, ct, sizeof(ct), NULL, 0, &out, &used), 0);
	CHECK_EQ_INT(used, 1);
	CHECK(out.len == 32 && memcmp(out.data, pt, 32) == 0);
	bytes_free(&out);
	key_set_free(s);
	bytes_free(&r1);
}

static int read_text(const char *s)
{
	struct key_versions v;
	int rc = key_versions_read((const uint8_t *)s, strlen(s), &v);
	key_versions_free(&v);
	return rc;
}

static void test_malformed_records(void)
{
	struct bytes r1 = rotated(1);
	char buf[2048];
	/* the real one reads */
	CHECK_EQ_INT(read_text((const char *)r1.data), 0);
	/* one version only, unknown member, bad minimum, a tombstone or a record of ours as a
	 * version, a version that is no key */
	snprintf(buf, sizeof(buf),
	         "{\"algorithm\":\"kesc-versioned-key\",\"min_decryption_version\":1,"
	         "\"versions\":[\"%s\"]}",
	         KES_RECORD);
	CHECK_EQ_INT(read_text(buf), KEY_ERR_INVALID);
	snprintf(buf, sizeof(buf),
	         "{\"algorithm\":\"kesc-versioned-key\",\"min_decryption_version\":1,"
	         "\"versions\":[\"%s\",\"%s\"],\"min_encryption_version\":2}",
	         KES_RECORD, KES_RECORD);
	CHECK_EQ_INT(read_text(buf), KEY_ERR_INVALID);
	static const char *const mins[] = {"0", "3", "-1", "1.5", "\"1\"", "null", "1e0"};
	for (size_t i = 0; i < sizeof(mins) / sizeof(mins[0]); i++) {
		snprintf(buf, sizeof(buf),
		         "{\"algorithm\":\"kesc-versioned-key\",\"min_decryption_version\":%s,"
		         "\"versions\":[\"%s\",\"%s\"]}",
		         mins[i], KES_RECORD, KES_RECORD);
		CHECK_EQ_INT(read_text(buf), KEY_ERR_INVALID);
	}
	snprintf(buf, sizeof(buf),
	         "{\"algorithm\":\"kesc-versioned-key\",\"min_decryption_version\":1,"
	         "\"versions\":[\"%s\",\"{\\\"algorithm\\\":\\\"kesc-tombstone\\\"}\"]}",
	         KES_RECORD);
	CHECK_EQ_INT(read_text(buf), KEY_ERR_INVALID);
	snprintf(buf, sizeof(buf),
	         "{\"algorithm\":\"kesc-versioned-key\",\"min_decryption_version\":1,"
	         "\"versions\":[\"%s\",\"{\\\"algorithm\\\":\\\"kesc-versioned-key\\\","
	         "\\\"bytes\\\":\\\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\\\"}\"]}",
	         KES_RECORD);
	CHECK_EQ_INT(read_text(buf), KEY_ERR_INVALID);
	snprintf(buf, sizeof(buf),
	         "{\"algorithm\":\"kesc-versioned-key\",\"min_decryption_version\":1,"
	         "\"versions\":[\"%s\",\"QUJD\"]}",
	         KES_RECORD);
	CHECK_EQ_INT(read_text(buf), KEY_ERR_INVALID);
	CHECK_EQ_INT(read_text("{\"algorithm\":\"kesc-versioned-key\"}"), KEY_ERR_INVALID);
	/* a tombstone is no key */
	CHECK_EQ_INT(read_text("{\"algorithm\":\"kesc-tombstone\",\"until\":null}"),
	             KEY_ERR_INVALID);
	/* the legacy reader (what KES does) refuses a versioned record */
	struct secret_key *k = NULL;
	CHECK_EQ_INT(key_record_decode(r1.data, r1.len, &k), KEY_ERR_INVALID);
	CHECK(k == NULL);
	bytes_free(&r1);
}

/* At the limit a rotation is refused; the record stays readable. */
static void test_version_limit(void)
{
	struct key_versions v;
	struct bytes out;
	struct key_set *s;
	CHECK_EQ_INT(key_versions_read((const uint8_t *)KES_RECORD, strlen(KES_RECORD), &v), 0);
	while (v.count < KEY_VERSIONS_MAX)
		if (key_versions_rotate(&v, "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b57869"
		                            "8a97c59fd22") != 0)
			break;
	CHECK_EQ_INT(v.count, KEY_VERSIONS_MAX);
	CHECK_EQ_INT(key_versions_rotate(&v, ""), KEY_ERR_TOO_MANY);
	CHECK_EQ_INT(key_versions_write(&v, &out), 0);
	fprintf(stderr, "a record of %d versions is %zu bytes\n", KEY_VERSIONS_MAX, out.len);
	CHECK(out.len < 300 * 1024);
	CHECK_EQ_INT(key_set_decode(out.data, out.len, &s), 0);
	CHECK_EQ_INT(s->count, KEY_VERSIONS_MAX);
	key_set_free(s);
	key_versions_free(&v);
	bytes_free(&out);
}

/* ---- scheduled deletions in tombstones ---- */

static void test_tombstone_with_key(void)
{
	struct tombstone t = {.deleted_at = 1748779200,
	                      .until = 1749384000,
	                      .restore_until = 1749384000},
	                 back;
	struct bytes key = text(KES_RECORD), rec, got = {0};
	strcpy(t.deleted_by, "abc");
	CHECK_EQ_INT(tombstone_encode_with_key(&t, &key, &rec), 0);
	char want[1024];
	snprintf(want, sizeof(want),
	         "{\"algorithm\":\"kesc-tombstone\",\"deleted_at\":\"2025-06-01T12:00:00Z\","
	         "\"deleted_by\":\"abc\",\"until\":\"2025-06-08T12:00:00Z\",\"restore_until\":"
	         "\"2025-06-08T12:00:00Z\",\"key\":\"%s\"}",
	         KES_RECORD);
	CHECK_EQ_STR((const char *)rec.data, want);
	CHECK(tombstone_parse(rec.data, rec.len, &back));
	CHECK_EQ_INT(back.restore_until, 1749384000);
	CHECK(tombstone_restorable(&back, 1749383999));
	CHECK(!tombstone_restorable(&back, 1749384000));
	CHECK(!tombstone_expired(&back, 1749383999));
	CHECK_EQ_INT(tombstone_key(rec.data, rec.len, &got), 0);
	CHECK(got.len == key.len && memcmp(got.data, key.data, key.len) == 0);
	bytes_free(&got);
	/* it is no key, to kesc or to KES's reader */
	struct key_set *s = NULL;
	struct secret_key *k = NULL;
	CHECK_EQ_INT(key_set_decode(rec.data, rec.len, &s), KEY_ERR_INVALID);
	CHECK_EQ_INT(key_record_decode(rec.data, rec.len, &k), KEY_ERR_INVALID);
	bytes_free(&rec);
	/* a plain tombstone carries nothing and restores nothing */
	CHECK_EQ_INT(tombstone_encode(&t, &rec), 0);
	CHECK(tombstone_parse(rec.data, rec.len, &back));
	CHECK_EQ_INT(back.restore_until, 0);
	CHECK_EQ_INT(tombstone_key(rec.data, rec.len, &got), -1);
	bytes_free(&rec);
	/* a key that is not UTF-8 text would not come back the same: refused */
	struct bytes binary = {(uint8_t *)"AA\xc1\xbe\xff", 5};
	CHECK_EQ_INT(tombstone_encode_with_key(&t, &binary, &rec), KEY_ERR_INVALID);
	/* without a window or a key nothing is written */
	t.restore_until = 0;
	CHECK_EQ_INT(tombstone_encode_with_key(&t, &key, &rec), KEY_ERR_INVALID);
	/* a window that cannot be read means "not restorable"; the record still reads as deleted */
	const char *odd =
	    "{\"algorithm\":\"kesc-tombstone\",\"until\":null,\"restore_until\":\"soon\","
	    "\"key\":\"QUJD\"}";
	CHECK(tombstone_parse((const uint8_t *)odd, strlen(odd), &back));
	CHECK_EQ_INT(back.restore_until, 0);
	bytes_free(&key);
}

int main(void)
{
	RUN(test_version_names);
	RUN(test_unrotated_is_kes);
	RUN(test_rotate_record);
	RUN(test_rotate_legacy);
	RUN(test_decrypt_without_version);
	RUN(test_unknown_version);
	RUN(test_retire);
	RUN(test_raw_that_looks_marked);
	RUN(test_malformed_records);
	RUN(test_version_limit);
	RUN(test_tombstone_with_key);
	return CHECK_DONE();
}
