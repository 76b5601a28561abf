/* fuzz_versions.c — the formats of key versions (issue 14) on arbitrary bytes:
 *   first byte 0: a stored record, read by key_versions_read and key_set_decode (versioned
 *     records, KES records) and, as a scheduled deletion, by tombstone_parse/tombstone_key.
 *     Both readers must agree; what reads must write back to a record that reads the same
 *     (versions, minimum) and writes back byte for byte; a record is never both a key and a
 *     tombstone; a tombstone that carries a key re-encodes (when it encodes) to one that
 *     carries exactly the same key.
 *   first byte 1: a ciphertext, given to key_set_decrypt under a fixed three-version key whose
 *     v1 is retired (and to key_version_mark_parse): it must never read out of bounds and never
 *     open (nothing here can forge the AEAD under v2 or v3; v1's authentic ciphertexts, KES's
 *     vectors, are refused as retired), and only the errors key_set_decrypt documents. */
#include <stdlib.h>
#include <string.h>

#include "keystore/key.h"
#include "keystore/key_versions.h"
#include "keystore/tombstone.h"
#include "tests/fuzz/fuzz.h"

static void check_tombstone_key(const uint8_t *data, size_t size)
{
	struct tombstone t, back;
	struct bytes key = {0}, enc = {0}, again = {0};

	if (!tombstone_parse(data, size, &t) || tombstone_key(data, size, &key) != 0)
		return;
	/* A key that is not UTF-8 text is refused (it would not come back the same). */
	if (t.restore_until > 0 && tombstone_encode_with_key(&t, &key, &enc) == 0) {
		if (!tombstone_parse(enc.data, enc.len, &back) ||
		    tombstone_key(enc.data, enc.len, &again) != 0)
			abort();
		if (again.len != key.len || memcmp(again.data, key.data, key.len) != 0)
			abort();
		if (back.restore_until != t.restore_until && t.restore_until <= 253402300799LL)
			abort();
	}
	bytes_free(&key);
	bytes_free(&enc);
	bytes_free(&again);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
	struct key_versions v, w;
	struct key_set *s = NULL;
	struct bytes out = {0}, out2 = {0};
	struct tombstone t;
	int r = key_versions_read(data, size, &v);
	int rs = key_set_decode(data, size, &s);

	check_tombstone_key(data, size);
	if ((r == 0) != (rs == 0))
		abort(); /* the two readers disagree */
	if (r != 0) {
		if (s)
			abort();
		return;
	}
	if (tombstone_parse(data, size, &t))
		abort();
	if (s->count != v.count || s->min_decryption != v.min_decryption || v.count < 1 ||
	    v.count > KEY_VERSIONS_MAX || v.min_decryption < 1 || v.min_decryption > v.count)
		abort();
	if (key_versions_write(&v, &out) != 0 || key_versions_read(out.data, out.len, &w) != 0)
		abort();
	if (w.count != v.count || w.min_decryption != v.min_decryption)
		abort();
	for (uint32_t i = 0; i < v.count; i++)
		if (w.records[i].len != v.records[i].len ||
		    memcmp(w.records[i].data, v.records[i].data, v.records[i].len) != 0)
			abort();
	if (key_versions_write(&w, &out2) != 0 || out2.len != out.len ||
	    memcmp(out2.data, out.data, out.len) != 0)
		abort();
	bytes_free(&out);
	bytes_free(&out2);
	key_versions_free(&v);
	key_versions_free(&w);
	key_set_free(s);
}

/* v1: KES's all-zero AES256 key (retired: KES's own vectors authenticate and are refused),
 * v2 and v3: keys of 0x01 and 0x02 bytes. Fixed, not random: every run behaves the same. */
static struct key_set *fixed_set(void)
{
	static const char *const recs[] = {
	    "CiQKIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAESJAogAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAQAQ==",
	    "CiQKIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBEAESJAogAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAQAQ==",
	    "CiQKIAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICEAESJAogAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAQAQ==",
	};
	struct key_versions v = {.count = 3, .min_decryption = 2};
	struct bytes out = {0};
	struct key_set *s = NULL;

	v.records = calloc(3, sizeof(*v.records));
	for (int i = 0; i < 3; i++)
		if (!v.records || bytes_set(&v.records[i], recs[i], strlen(recs[i])) != 0)
			abort();
	if (key_versions_write(&v, &out) != 0 || key_set_decode(out.data, out.len, &s) != 0)
		abort();
	key_versions_free(&v);
	bytes_free(&out);
	return s;
}

static void fuzz_ciphertext(const uint8_t *data, size_t size)
{
	static struct key_set *s;
	struct bytes pt = {0};
	const uint8_t *inner;
	size_t inner_len;
	uint32_t version, used = 0;

	if (!s)
		s = fixed_set();
	if (key_version_mark_parse(data, size, &version, &inner, &inner_len) &&
	    (version < 2 || version > KEY_VERSIONS_MAX || inner + inner_len != data + size))
		abort();
	for (uint32_t asked = 0; asked <= 4; asked++) {
		int r = key_set_decrypt(s, asked, data, size, NULL, 0, &pt, &used);
		if (r == 0 || pt.data)
			abort(); /* a forgery opened */
		if (r != KEY_ERR_NOT_AUTHENTIC && r != KEY_ERR_NO_VERSION && r != KEY_ERR_RETIRED &&
		    r != KEY_ERR_NOMEM)
			abort();
		if (r == KEY_ERR_RETIRED && used != 1)
			abort(); /* only v1 is retired */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] == 0)
		fuzz_record(data + 1, size - 1);
	else if (data[0] == 1)
		fuzz_ciphertext(data + 1, size - 1);
	return 0;
}
