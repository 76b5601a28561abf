/*
 * versions_cost.c — what finding a ciphertext's version costs (issue 14), measured in
 * instructions with callgrind (wall-clock time on the shared build machine is noise):
 *
 *   valgrind --tool=callgrind --collect-atstart=no --toggle-collect=measure \
 *       build/tests/bench/versions_cost <mark|trial> <versions> <oldest|newest|forged>
 *
 * measure() decrypts one 76-byte ciphertext (a 32-byte data key, as MinIO's) 100 times under a
 * key with <versions> versions, made under the oldest or the newest version, or forged:
 *   mark   key_set_decrypt: the version mark says which version (what kesc does);
 *   trial  no mark: try the versions newest first until one authenticates (the alternative).
 * Not a test and not run by meson test; tests/bench/README.md has the numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/key.h"
#include "keystore/key_versions.h"

#define ROUNDS 100

static struct key_set *make_set(uint32_t n)
{
	struct key_versions v;
	struct secret_key *k = NULL;
	struct bytes rec = {0}, out = {0};
	struct key_set *s = NULL;

	if (key_generate(KEY_ALG_AES256, "", &k) != 0 || key_record_encode(k, &rec) != 0 ||
	    key_versions_read(rec.data, rec.len, &v) != 0)
		abort();
	while (v.count < n)
		if (key_versions_rotate(&v, "") != 0)
			abort();
	if (key_versions_write(&v, &out) != 0 || key_set_decode(out.data, out.len, &s) != 0)
		abort();
	key_free(k);
	bytes_free(&rec);
	bytes_free(&out);
	key_versions_free(&v);
	return s;
}

/* Trial decryption: the raw ciphertext under each version, newest first. */
static int trial(const struct key_set *s, const struct bytes *raw, struct bytes *pt)
{
	for (uint32_t n = s->count; n >= 1; n--)
		if (key_decrypt(key_set_version(s, n), raw->data, raw->len, NULL, 0, pt) == 0)
			return 0;
	return KEY_ERR_NOT_AUTHENTIC;
}

static int ok_count;

void measure(int use_mark, const struct key_set *s, const struct bytes *marked,
             const struct bytes *raw);
__attribute__((noinline)) void measure(int use_mark, const struct key_set *s,
                                       const struct bytes *marked, const struct bytes *raw)
{
	for (int i = 0; i < ROUNDS; i++) {
		struct bytes pt = {0};
		uint32_t used;
		int rc = use_mark
		             ? key_set_decrypt(s, 0, marked->data, marked->len, NULL, 0, &pt, &used)
		             : trial(s, raw, &pt);
		ok_count += rc == 0;
		bytes_free(&pt);
	}
}

int main(int argc, char **argv)
{
	uint8_t dek[32] = {1};
	struct bytes marked = {0}, raw = {0};
	uint32_t used;

	if (argc != 4) {
		fprintf(stderr, "usage: %s <mark|trial> <versions> <oldest|newest|forged>\n",
		        argv[0]);
		return 2;
	}
	int use_mark = strcmp(argv[1], "mark") == 0;
	uint32_t n = (uint32_t)atoi(argv[2]);
	if (n < 1 || n > KEY_VERSIONS_MAX)
		return 2;
	struct key_set *s = make_set(n);
	uint32_t which = strcmp(argv[3], "oldest") == 0 ? 1 : n;
	if (key_set_encrypt(s, which, dek, sizeof dek, NULL, 0, &marked, &used) != 0)
		abort();
	/* the same ciphertext without its mark: what trial decryption would be given */
	size_t skip = which > 1 ? KEY_VERSION_MARK_SIZE : 0;
	if (bytes_set(&raw, marked.data + skip, marked.len - skip) != 0)
		abort();
	if (strcmp(argv[3], "forged") == 0) {
		marked.data[marked.len - 30] ^= 1; /* the tag */
		raw.data[raw.len - 30] ^= 1;
	}
	measure(use_mark, s, &marked, &raw);
	printf("%s, %u versions, %s: %d of %d opened\n", argv[1], n, argv[3], ok_count, ROUNDS);
	bytes_free(&marked);
	bytes_free(&raw);
	key_set_free(s);
	return 0;
}
