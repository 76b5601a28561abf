/* fuzz_identity.c — the identity parsers (policy/identity.c) on arbitrary bytes: API keys
 * ("kes:v1:" + base64), DER certificates, and certificate files (PEM or DER, including the
 * SubjectPublicKeyInfo walker used for keys mbedTLS cannot parse), and client certificate
 * chains (policy/client_chain.c). Nothing may crash; whatever yields an identity must yield 64
 * lowercase hex characters, and a chain's identity is always its first certificate's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mbedtls/x509_crt.h>

#include "policy/client_chain.h"
#include "policy/identity.h"
#include "tests/fuzz/fuzz.h"

/* The input as a chain: up to four DER certificates, each preceded by its length in two
 * big-endian bytes (the framing of a TLS Certificate message, shortened). */
static void fuzz_chain(const uint8_t *data, size_t size)
{
	mbedtls_x509_crt chain;
	mbedtls_x509_crt_init(&chain);
	for (int i = 0; i < 4 && size >= 2; i++) {
		size_t len = (size_t)data[0] << 8 | data[1];
		if (len > size - 2)
			break;
		if (mbedtls_x509_crt_parse_der(&chain, data + 2, len) != 0)
			break;
		data += 2 + len;
		size -= 2 + len;
	}
	char id[IDENTITY_HEX_LEN + 1], first[IDENTITY_HEX_LEN + 1];
	enum client_chain_verdict v = client_chain_identity(&chain, id);
	if (v == CLIENT_CHAIN_OK) {
		if (!identity_is_valid(id) || chain.ca_istrue ||
		    identity_of_crt(&chain, first) != 0 || strcmp(id, first) != 0)
			abort();
	} else if (id[0] != '\0') {
		abort();
	}
	mbedtls_x509_crt_free(&chain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_chain(data, size);

	char id[IDENTITY_HEX_LEN + 1], err[256];
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (identity_of_api_key(s, id, err, sizeof err) == 0 && !identity_is_valid(id))
		abort();
	free(s);

	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	if (mbedtls_x509_crt_parse_der(&crt, data, size) == 0 && identity_of_crt(&crt, id) == 0 &&
	    !identity_is_valid(id))
		abort();
	mbedtls_x509_crt_free(&crt);

	/* the file path: an in-memory file, so the fuzzer never touches the disk */
	int fd = memfd_create("fuzz-cert", 0);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		if (identity_of_cert_file(path, id, err, sizeof err) == 0 && !identity_is_valid(id))
			abort();
	}
	close(fd);
	return 0;
}
