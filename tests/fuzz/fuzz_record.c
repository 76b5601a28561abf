/* fuzz_record.c — key_record_decode (keystore/key_record.c) on arbitrary bytes: the JSON and
 * protobuf readers must never read out of bounds, and every record that decodes to a key with
 * an HMAC key must re-encode to a record that decodes to the same key. */
#include <stdlib.h>
#include <string.h>

#include "keystore/key.h"
#include "tests/fuzz/fuzz.h"

static bool same_key(const struct secret_key *a, const struct secret_key *b)
{
	return memcmp(a->key, b->key, KEY_SIZE) == 0 &&
	       memcmp(a->hmac_key, b->hmac_key, KEY_HMAC_SIZE) == 0 &&
	       a->algorithm == b->algorithm && a->has_hmac == b->has_hmac &&
	       a->created_at_sec == b->created_at_sec && a->created_at_nsec == b->created_at_nsec &&
	       strcmp(a->created_by, b->created_by) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct secret_key *k, *again;
	struct bytes enc;
	int r = key_record_decode(data, size, &k);
	if (r != 0) {
		if (k || (r != KEY_ERR_INVALID && r != KEY_ERR_NOMEM))
			abort();
		return 0;
	}
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
