/* fuzz_record.c — the stored-record readers on arbitrary bytes: key_record_decode
 * (keystore/key_record.c) and tombstone_parse (keystore/tombstone.c). They must never read out
 * of bounds; every record that decodes to a key with an HMAC key must re-encode to a record
 * that decodes to the same key; a record is never both a key and a tombstone; and a tombstone
 * re-encodes to one that reads back the same. */
#include <stdlib.h>
#include <string.h>

#include "keystore/key.h"
#include "keystore/tombstone.h"
#include "tests/fuzz/fuzz.h"

static bool same_key(const struct secret_key *a, const struct secret_key *b)
{
	return memcmp(a->key, b->key, KEY_SIZE) == 0 &&
	       memcmp(a->hmac_key, b->hmac_key, KEY_HMAC_SIZE) == 0 &&
	       a->algorithm == b->algorithm && a->has_hmac == b->has_hmac &&
	       a->created_at_sec == b->created_at_sec && a->created_at_nsec == b->created_at_nsec &&
	       strcmp(a->created_by, b->created_by) == 0;
}

/* 253402300799 is 9999-12-31T23:59:59Z, the last time a tombstone can write. */
static void check_tombstone(const struct tombstone *t)
{
	struct tombstone back;
	struct bytes enc;
	if (tombstone_encode(t, &enc) != 0 || !tombstone_parse(enc.data, enc.len, &back))
		abort();
	if (strcmp(back.deleted_by, t->deleted_by) != 0)
		abort();
	if (t->until >= 0 && t->until <= 253402300799LL && back.until != t->until)
		abort();
	if (t->deleted_at >= 0 && t->deleted_at <= 253402300799LL &&
	    back.deleted_at != t->deleted_at)
		abort();
	bytes_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct secret_key *k, *again;
	struct tombstone t;
	struct bytes enc;
	bool tomb = tombstone_parse(data, size, &t);
	int r = key_record_decode(data, size, &k);
	if (tomb)
		check_tombstone(&t);
	if (r != 0) {
		if (k || (r != KEY_ERR_INVALID && r != KEY_ERR_NOMEM))
			abort();
		return 0;
	}
	if (tomb)
		abort(); /* a tombstone must never also read as a key */
	if (k->algorithm != KEY_ALG_AES256 && k->algorithm != KEY_ALG_CHACHA20)
		abort();
	if (strlen(k->created_by) > KEY_CREATED_BY_MAX || (k->created_at_nsec < 0) ||
	    k->created_at_nsec >= 1000000000)
		abort();
	r = key_record_encode(k, &enc);
	if (!k->has_hmac) {
		if (r != KEY_ERR_INVALID)
			abort();
		key_free(k);
		return 0;
	}
	if (r != 0 || key_record_decode(enc.data, enc.len, &again) != 0)
		abort();
	if (!same_key(k, again))
		abort();
	bytes_free(&enc);
	key_free(again);
	key_free(k);
	return 0;
}
