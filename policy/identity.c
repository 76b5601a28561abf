/*
 * identity.c — identities as KES computes them: lowercase hex SHA-256 of the certificate's DER
 * SubjectPublicKeyInfo (kes.md §2.1), so a client keeps its identity across certificate
 * renewals with the same key, and kesc accepts the identities written in KES configs.
 */
#include "policy/identity.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "keystore/bytes.h"
#include "keystore/secmem.h"
#include "policy/ed25519.h"

#define CERT_FILE_MAX  (1024 * 1024)
#define API_KEY_PREFIX "kes:v1:"
#define API_KEY_LEN    33 /* type byte + 32-byte Ed25519 seed */

static const char PEM_BEGIN[] = "-----BEGIN CERTIFICATE-----";
static const char PEM_END[] = "-----END CERTIFICATE-----";

static int identity_of_spki(const unsigned char *der, size_t len, char out[IDENTITY_HEX_LEN + 1])
{
	unsigned char sum[32];
	if (mbedtls_sha256_ret(der, len, sum, 0) != 0)
		return -1;
	hex_encode(out, sum, sizeof sum);
	return 0;
}

int identity_of_crt(const mbedtls_x509_crt *crt, char out[IDENTITY_HEX_LEN + 1])
{
	if (!crt || !crt->pk_raw.p || crt->pk_raw.len == 0)
		return -1;
	return identity_of_spki(crt->pk_raw.p, crt->pk_raw.len, out);
}

static int read_small_file(const char *path, struct bytes *out, char *err, size_t errlen)
{
	int rc = -1;
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	struct buf b;
	buf_init(&b, CERT_FILE_MAX);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (buf_failed(&b) || buf_take(&b, out) < 0) {
		snprintf(err, errlen, "'%s' is too large for a certificate", path);
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	fclose(f);
	return rc;
}

/* The DER of the first CERTIFICATE block of PEM text, skipping keys and other blocks as
 * KES's FilterPEM does; or, when there is no PEM header at all, the whole input. */
static int first_cert_der(const struct bytes *file, struct bytes *der)
{
	const char *text = (const char *)file->data;
	const char *begin = memmem(text, file->len, PEM_BEGIN, sizeof PEM_BEGIN - 1);
	if (!begin)
		return bytes_set(der, file->data, file->len);
	begin += sizeof PEM_BEGIN - 1;
	size_t rest = file->len - (size_t)(begin - text);
	const char *end = memmem(begin, rest, PEM_END, sizeof PEM_END - 1);
	if (!end)
		return -1;
	while (begin < end && (*begin == '\r' || *begin == '\n'))
		begin++;
	return base64_decode(der, begin, (size_t)(end - begin));
}

struct der {
	const uint8_t *p;
	size_t n;
};

/* Reads one DER TLV with the expected tag from d; its whole encoding goes to tlv. */
static int der_take(struct der *d, uint8_t tag, struct der *tlv, struct der *content)
{
	if (d->n < 2 || d->p[0] != tag)
		return -1;
	size_t len = d->p[1], hdr = 2;
	if (len & 0x80) {
		size_t k = len & 0x7f;
		if (k == 0 || k > 4 || d->n < 2 + k)
			return -1;
		len = 0;
		for (size_t i = 0; i < k; i++)
			len = len << 8 | d->p[2 + i];
		hdr = 2 + k;
	}
	if (len > d->n - hdr)
		return -1;
	if (tlv)
		*tlv = (struct der){d->p, hdr + len};
	if (content)
		*content = (struct der){d->p + hdr, len};
	d->p += hdr + len;
	d->n -= hdr + len;
	return 0;
}

/*
 * The SubjectPublicKeyInfo of a DER certificate found by walking the TBSCertificate, for keys
 * mbedTLS 2.28 cannot parse (Ed25519, which KES and MinIO use for API-key certificates):
 * Certificate { TBSCertificate { [0] version?, serial, signature, issuer, validity, subject,
 * subjectPublicKeyInfo, ... }, ... }.
 */
static int spki_of_der(const struct bytes *der, struct der *spki)
{
	struct der all = {der->data, der->len}, cert, tbs;
	if (der_take(&all, 0x30, NULL, &cert) < 0 || der_take(&cert, 0x30, NULL, &tbs) < 0)
		return -1;
	if (tbs.n > 0 && tbs.p[0] == 0xa0 && der_take(&tbs, 0xa0, NULL, NULL) < 0)
		return -1;
	if (der_take(&tbs, 0x02, NULL, NULL) < 0)
		return -1;
	for (int i = 0; i < 4; i++) /* signature, issuer, validity, subject */
		if (der_take(&tbs, 0x30, NULL, NULL) < 0)
			return -1;
	return der_take(&tbs, 0x30, spki, NULL);
}

int identity_of_cert_file(const char *path, char out[IDENTITY_HEX_LEN + 1], char *err,
                          size_t errlen)
{
	struct bytes file = {0}, der = {0};
	if (read_small_file(path, &file, err, errlen) < 0)
		return -1;
	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	struct der spki;
	int rc = -1;
	if (first_cert_der(&file, &der) < 0) {
		snprintf(err, errlen, "'%s' contains no valid X.509 certificate", path);
		goto out;
	}
	if (mbedtls_x509_crt_parse_der(&crt, der.data, der.len) == 0) {
		rc = identity_of_crt(&crt, out);
	} else if (spki_of_der(&der, &spki) == 0) {
		rc = identity_of_spki(spki.p, spki.n, out);
	} else {
		snprintf(err, errlen, "'%s' contains no valid X.509 certificate", path);
		goto out;
	}
	if (rc < 0)
		snprintf(err, errlen, "cannot compute the identity of '%s'", path);
out:
	mbedtls_x509_crt_free(&crt);
	bytes_free(&der);
	bytes_free(&file);
	return rc;
}

/* DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410): SEQ { SEQ { OID 1.3.101.112 },
 * BIT STRING { 0 unused bits, 32 bytes } }. */
static const uint8_t ED25519_SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                                0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

int identity_of_api_key(const char *api_key, char out[IDENTITY_HEX_LEN + 1], char *err,
                        size_t errlen)
{
	const char *s = api_key;
	/* KES trims the prefix if present, so bare base64 is accepted as well. */
	if (strncmp(s, API_KEY_PREFIX, sizeof API_KEY_PREFIX - 1) == 0)
		s += sizeof API_KEY_PREFIX - 1;
	struct bytes raw = {0};
	uint8_t spki[sizeof ED25519_SPKI_PREFIX + 32];
	int rc = -1;
	if (base64_decode(&raw, s, strlen(s)) < 0 || raw.len != API_KEY_LEN) {
		snprintf(err, errlen, "invalid API key: invalid length");
		goto out;
	}
	if (raw.data[0] != 0) {
		snprintf(err, errlen, "invalid API key: unsupported type");
		goto out;
	}
	memcpy(spki, ED25519_SPKI_PREFIX, sizeof ED25519_SPKI_PREFIX);
	if (ed25519_public_from_seed(spki + sizeof ED25519_SPKI_PREFIX, raw.data + 1) < 0 ||
	    identity_of_spki(spki, sizeof spki, out) < 0) {
		snprintf(err, errlen, "cannot compute the identity of the API key");
		goto out;
	}
	rc = 0;
out:
	bytes_free(&raw); /* zeroes the seed */
	return rc;
}

int identity_is_valid(const char *s)
{
	if (!s || strlen(s) != IDENTITY_HEX_LEN)
		return 0;
	for (size_t i = 0; i < IDENTITY_HEX_LEN; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return 1;
}
