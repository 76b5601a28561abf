/*
 * certgen.h — ECDSA P-256 keys and self-signed X.509 certificates, for `kesc identity new`
 * and `kesc server --dev`. (Ed25519, KES's choice, is not available in mbedTLS 2.28.)
 */
#ifndef KESC_SERVER_CERTGEN_H
#define KESC_SERVER_CERTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct certgen_options {
	const char *common_name; /* subject CN; NULL → the identity of the new key */
	const char *const *dns;  /* subjectAltName DNS names */
	size_t dns_count;
	const char *const *ips; /* subjectAltName IP addresses (v4 or v6 text) */
	size_t ip_count;
	int64_t valid_seconds; /* 0 → 720h */
	bool server_auth;      /* extendedKeyUsage serverAuth */
	bool client_auth;      /* extendedKeyUsage clientAuth */
};

/* Writes a new private key (PEM, mode 0600, refuses to overwrite unless force) and a
 * self-signed certificate (PEM). identity_out (65 bytes, may be NULL) receives the identity.
 * 0, or -1 with err filled. */
int certgen_self_signed(const struct certgen_options *opt, const char *key_path,
                        const char *cert_path, bool force, char identity_out[65], char *err,
                        size_t errlen);

#endif
