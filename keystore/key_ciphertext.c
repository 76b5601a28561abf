/*
 * key_ciphertext.c — the three ciphertext formats in circulation (reference kes.md §7.3):
 * raw sealed‖iv‖nonce (KES HEAD), a msgpack 5-array (v0.19.2 … 2024-01) and a JSON object
 * (≤ v0.19.1). Parsing follows KES HEAD: a structured format that does not parse is treated as
 * raw, because a raw ciphertext may begin with 0x95 or '{' by chance.
 */
#include <string.h>

#include "keystore/json.h"
#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "keystore/secmem.h"

/* A read cursor over a msgpack buffer; every read checks the remaining length first. */
struct mp_reader {
	const uint8_t *p;
	size_t left;
};

static int mp_read_len(struct mp_reader *r, size_t width, size_t *out)
{
	if (r->left < width)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < width; i++)
		n = n << 8 | r->p[i];
	r->p += width;
	r->left -= width;
	*out = n;
	return 0;
}

/* Takes n bytes of payload from the cursor. */
static int mp_take(struct mp_reader *r, size_t n, const uint8_t **data)
{
	if (r->left < n)
		return -1;
	*data = r->p;
	r->p += n;
	r->left -= n;
	return 0;
}

/* A msgpack str (fixstr, str8/16/32). */
static int mp_read_str(struct mp_reader *r, const uint8_t **s, size_t *n)
{
	if (r->left < 1)
		return -1;
	uint8_t t = *r->p++;
	r->left--;
	if ((t & 0xe0) == 0xa0)
		*n = t & 0x1f;
	else if (t == 0xd9 || t == 0xda || t == 0xdb) {
		if (mp_read_len(r, (size_t)1 << (t - 0xd9), n) != 0)
			return -1;
	} else
		return -1;
	return mp_take(r, *n, s);
}

/* A msgpack bin (bin8/16/32). */
static int mp_read_bin(struct mp_reader *r, const uint8_t **b, size_t *n)
{
	if (r->left < 1)
		return -1;
	uint8_t t = *r->p++;
	r->left--;
	if (t != 0xc4 && t != 0xc5 && t != 0xc6)
		return -1;
	if (mp_read_len(r, (size_t)1 << (t - 0xc4), n) != 0)
		return -1;
	return mp_take(r, *n, b);
}

/* The algorithm names kms-go's KeyAlgorithm accepts in a msgpack ciphertext. */
static int msgpack_algorithm(const uint8_t *s, size_t n)
{
	static const struct {
		const char *name;
		int alg;
	} names[] = {
	    {"AES256", KEY_ALG_AES256},
	    {"AES256-GCM_SHA256", KEY_ALG_AES256},
	    {"ChaCha20", KEY_ALG_CHACHA20},
	    {"XCHACHA20-POLY1305", KEY_ALG_CHACHA20},
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0)
			return names[i].alg;
	return 0;
}

/* [alg, id, bin iv(16), bin nonce(12), bin sealed] with nothing after it. -1 if not that. */
static int parse_msgpack(const uint8_t *in, size_t len, struct key_ciphertext *out)
{
	struct mp_reader r = {in + 1, len - 1}; /* in[0] == 0x95 was checked */
	const uint8_t *alg, *id, *iv, *nonce, *sealed;
	size_t alg_len, id_len, iv_len, nonce_len, sealed_len;

	if (mp_read_str(&r, &alg, &alg_len) != 0 || mp_read_str(&r, &id, &id_len) != 0)
		return -1;
	if (mp_read_bin(&r, &iv, &iv_len) != 0 || iv_len != KEY_IV_SIZE)
		return -1;
	if (mp_read_bin(&r, &nonce, &nonce_len) != 0 || nonce_len != KEY_NONCE_SIZE)
		return -1;
	if (mp_read_bin(&r, &sealed, &sealed_len) != 0 || r.left != 0)
		return -1;
	int named = msgpack_algorithm(alg, alg_len);
	if (!named)
		return -1;
	memcpy(out->iv, iv, KEY_IV_SIZE);
	memcpy(out->nonce, nonce, KEY_NONCE_SIZE);
	out->sealed = sealed;
	out->sealed_len = sealed_len;
	out->alg = named;
	return 0;
}

/* Copies the base64 member key of v, which must decode to exactly n bytes, into dst. */
static int json_fixed_bytes(const struct json_value *v, const char *key, uint8_t *dst, size_t n,
                            bool *ok)
{
	struct bytes b;
	int r = json_get_base64(v, key, &b);
	if (r < 0)
		return -1; /* not a base64 string: Go's Unmarshal fails */
	*ok = r == 0 && b.len == n;
	if (*ok)
		memcpy(dst, b.data, n);
	bytes_free(&b);
	return 0;
}

/* A string member (or absent/null). -1 when present with another type. */
static int json_opt_string(const struct json_value *v, const char *key, const char **s, size_t *n)
{
	const struct json_value *m = json_get(v, key);
	*s = "";
	*n = 0;
	if (!m || json_type(m) == JSON_NULL)
		return 0;
	*s = json_string(m, n);
	return *s ? 0 : -1;
}

/*
 * The most values a JSON ciphertext is parsed with: the object and its five strings, with
 * room for the nulls and unknown members Go would also accept. The bound is on values, not
 * bytes: "bytes" is as long as the plaintext (G1's encrypt took up to 1 MiB), but each value
 * costs a tree node, so without it {"a":[0,0,…]} turned 1 MB of input into ~52 MB and 160 ms
 * on a loop thread. With it yajl stops at the 17th value, and the input counts as raw, as
 * every input that does not parse as a JSON ciphertext (it then fails authentication with the
 * same 400; KES answers such a document with that 400 too).
 */
#define JSON_CIPHERTEXT_MAX_VALUES 16

/*
 * {"aead","id","iv","nonce","bytes"}. Returns -1 when Go's json.Unmarshal would fail (so the
 * input is raw), or when the document has more values than a JSON ciphertext can (see above),
 * KEY_ERR_NOT_AUTHENTIC for a well-formed object with a bad aead or sizes.
 */
static int parse_json(const uint8_t *in, size_t len, struct key_ciphertext *out)
{
	char err[64];
	const char *aead, *id;
	size_t aead_len, id_len;
	bool iv_ok = false, nonce_ok = false;
	int ret = -1;

	struct json_value *v =
	    json_parse_limited((const char *)in, len, JSON_CIPHERTEXT_MAX_VALUES, err, sizeof err);
	if (!v || json_type(v) != JSON_OBJECT)
		goto out;
	if (json_opt_string(v, "aead", &aead, &aead_len) != 0 ||
	    json_opt_string(v, "id", &id, &id_len) != 0)
		goto out;
	if (json_fixed_bytes(v, "iv", out->iv, KEY_IV_SIZE, &iv_ok) != 0 ||
	    json_fixed_bytes(v, "nonce", out->nonce, KEY_NONCE_SIZE, &nonce_ok) != 0)
		goto out;
	if (json_get_base64(v, "bytes", &out->owned) < 0)
		goto out;
	ret = KEY_ERR_NOT_AUTHENTIC;
	if (aead_len == 24 && memcmp(aead, "AES-256-GCM-HMAC-SHA-256", 24) == 0)
		out->alg = KEY_ALG_AES256;
	else if (aead_len == 16 && memcmp(aead, "ChaCha20Poly1305", 16) == 0)
		out->alg = KEY_ALG_CHACHA20;
	else
		goto out;
	if (!iv_ok || !nonce_ok)
		goto out;
	out->sealed = out->owned.data;
	out->sealed_len = out->owned.len;
	ret = 0;
out:
	json_free(v);
	return ret;
}

int key_ciphertext_parse(const uint8_t *in, size_t len, struct key_ciphertext *out)
{
	memset(out, 0, sizeof *out);
	if (len > 0 && in[0] == 0x95) {
		if (parse_msgpack(in, len, out) == 0)
			return 0;
		memset(out, 0, sizeof *out);
	} else if (len > 0 && in[0] == '{') {
		int r = parse_json(in, len, out);
		if (r == 0)
			return 0;
		key_ciphertext_free(out);
		if (r == KEY_ERR_NOT_AUTHENTIC)
			return r;
	}
	if (len <= KEY_RANDOM_SIZE)
		return KEY_ERR_NOT_AUTHENTIC;
	out->sealed = in;
	out->sealed_len = len - KEY_RANDOM_SIZE;
	memcpy(out->iv, in + out->sealed_len, KEY_IV_SIZE);
	memcpy(out->nonce, in + out->sealed_len + KEY_IV_SIZE, KEY_NONCE_SIZE);
	return 0;
}

void key_ciphertext_free(struct key_ciphertext *c)
{
	bytes_free(&c->owned);
	secure_zero(c, sizeof *c);
}
