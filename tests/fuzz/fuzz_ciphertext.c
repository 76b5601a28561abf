/* fuzz_ciphertext.c — key_decrypt (keystore/key_ciphertext.c, key_crypto.c) on arbitrary
 * bytes: the three-format parser must never read out of bounds, and nothing may open except
 * with a plaintext exactly 44 bytes (raw) shorter than the sealed part. The keys are the zero
 * key of KES's vectors, typed AES256, typed ChaCha20 and untyped, so the corpus vectors open. */
#include <stdlib.h>
#include <string.h>

#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "tests/fuzz/fuzz.h"

static void check_parse(const uint8_t *data, size_t size)
{
	struct key_ciphertext c;
	if (key_ciphertext_parse(data, size, &c) != 0)
		return;
	bool inside = c.sealed >= data && c.sealed + c.sealed_len <= data + size;
	bool owned = c.owned.data && c.sealed == c.owned.data && c.sealed_len == c.owned.len;
	if (!inside && !owned && c.sealed_len != 0)
		abort();
	if (c.alg != 0 && c.alg != KEY_ALG_AES256 && c.alg != KEY_ALG_CHACHA20)
		abort();
	key_ciphertext_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		enum key_algorithm alg;
		bool typed;
	} keys[] = {{KEY_ALG_AES256, true}, {KEY_ALG_CHACHA20, true}, {KEY_ALG_AES256, false}};

	check_parse(data, size);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		struct secret_key *k = key_alloc();
		if (!k)
			abort();
		k->algorithm = keys[i].alg;
		k->typed = keys[i].typed;
		struct bytes pt;
		int r = key_decrypt(k, data, size, NULL, 0, &pt);
		if (r == 0 && (size == 0 || pt.data == NULL))
			abort();
		if (r != 0 && (r != KEY_ERR_NOT_AUTHENTIC || pt.data || pt.len))
			abort();
		bytes_free(&pt);
		key_free(k);
	}
	return 0;
}
