/* apikey.c — making KES API keys and reading them from Ed25519 key files (apikey.h). */
#include "cmd/apikey.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "keystore/bytes.h"
#include "keystore/secmem.h"

#define APIKEY_PREFIX "kes:v1:"
#define SEED_LEN      32
#define KEY_FILE_MAX  ((size_t)1 << 20)

/* The DER of an Ed25519 PKCS#8 PrivateKeyInfo up to its 32-byte seed (RFC 8410 §7): what
 * Go's x509.MarshalPKCS8PrivateKey writes for an ed25519.PrivateKey. */
static const unsigned char PKCS8_ED25519_PREFIX[] = {
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

/* "kes:v1:" + base64(0x00 ‖ seed). */
static int encode(const unsigned char seed[SEED_LEN], char out[APIKEY_LEN + 1])
{
	unsigned char raw[1 + SEED_LEN];
	raw[0] = 0x00; /* key type 0: Ed25519 */
	memcpy(raw + 1, seed, SEED_LEN);
	struct buf b;
	buf_init(&b, 128);
	buf_append_str(&b, APIKEY_PREFIX);
	base64_encode(&b, raw, sizeof raw);
	int rc = !buf_failed(&b) && b.len == APIKEY_LEN ? 0 : -1;
	if (rc == 0)
		memcpy(out, b.data, APIKEY_LEN + 1);
	secure_zero(raw, sizeof raw);
	buf_free(&b);
	return rc;
}

int apikey_generate(char out[APIKEY_LEN + 1], char *err, size_t errlen)
{
	unsigned char seed[SEED_LEN];
	size_t got = 0;
	while (got < sizeof seed) {
		ssize_t n = getrandom(seed + got, sizeof seed - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "failed to generate API key: %s", strerror(errno));
			secure_zero(seed, sizeof seed);
			return -1;
		}
		got += (size_t)n;
	}
	int rc = encode(seed, out);
	secure_zero(seed, sizeof seed);
	if (rc < 0)
		snprintf(err, errlen, "failed to generate API key: out of memory");
	return rc;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return NULL;
	}
	char *data = malloc(KEY_FILE_MAX + 1);
	size_t n = data ? fread(data, 1, KEY_FILE_MAX + 1, f) : 0;
	bool bad = !data || ferror(f) || n > KEY_FILE_MAX;
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "'%s' cannot be read or is too large", path);
		if (data) {
			secure_zero(data, n);
			free(data);
		}
		return NULL;
	}
	data[n] = '\0';
	*len = n;
	return data;
}

/* The API key of one PEM private-key block body (base64 between BEGIN and END lines). */
static enum apikey_file_kind key_block(const char *path, const char *body, size_t n,
                                       char out[APIKEY_LEN + 1], char *err, size_t errlen)
{
	struct bytes der = {0};
	enum apikey_file_kind kind = APIKEY_FILE_ERROR;
	if (base64_decode(&der, body, n) < 0) {
		snprintf(err, errlen, "'%s' contains no valid PEM certificate or private key",
		         path);
		return kind;
	}
	if (der.len != sizeof PKCS8_ED25519_PREFIX + SEED_LEN ||
	    memcmp(der.data, PKCS8_ED25519_PREFIX, sizeof PKCS8_ED25519_PREFIX) != 0)
		snprintf(err, errlen,
		         "'%s' contains unsupported private key. Only ed25519 private keys are "
		         "supported",
		         path);
	else if (encode(der.data + sizeof PKCS8_ED25519_PREFIX, out) < 0)
		snprintf(err, errlen, "out of memory");
	else
		kind = APIKEY_FILE_PRIVATE_KEY;
	bytes_free(&der);
	return kind;
}

enum apikey_file_kind apikey_of_file(const char *path, char out[APIKEY_LEN + 1], char *err,
                                     size_t errlen)
{
	size_t len = 0;
	char *data = read_file(path, &len, err, errlen);
	if (!data)
		return APIKEY_FILE_ERROR;
	/* kes takes the first CERTIFICATE or "… PRIVATE KEY" block and skips any other. A file
	 * without PEM blocks is left to the certificate reader (kesc also reads DER). */
	enum apikey_file_kind kind = APIKEY_FILE_CERTIFICATE;
	for (const char *p = data; (p = strstr(p, "-----BEGIN ")) != NULL;) {
		const char *type = p + 11, *type_end = strstr(type, "-----");
		if (!type_end)
			break;
		size_t type_len = (size_t)(type_end - type);
		const char *body = type_end + 5, *end = strstr(body, "-----END ");
		if (!end)
			break;
		if (type_len == 11 && !memcmp(type, "CERTIFICATE", 11))
			break;
		if (type_len >= 11 && memmem(type, type_len, "PRIVATE KEY", 11)) {
			kind = key_block(path, body, (size_t)(end - body), out, err, errlen);
			break;
		}
		p = end + 9;
	}
	secure_zero(data, len);
	free(data);
	return kind;
}
