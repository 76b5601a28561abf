/*
 * identity.h — a client's identity: lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of
 * its certificate (kes.md §2.1), and of KES API keys (§2.2).
 */
#ifndef KESC_POLICY_IDENTITY_H
#define KESC_POLICY_IDENTITY_H

#include <stddef.h>

#include <mbedtls/x509_crt.h>

#define IDENTITY_HEX_LEN 64

/* Identity of one parsed certificate. out receives 64 hex chars + NUL. 0 or -1. */
int identity_of_crt(const mbedtls_x509_crt *crt, char out[IDENTITY_HEX_LEN + 1]);
/* Identity of the first CERTIFICATE in a PEM (or DER) file. 0, or -1 with err filled. */
int identity_of_cert_file(const char *path, char out[IDENTITY_HEX_LEN + 1], char *err,
                          size_t errlen);
/* Identity of a KES API key "kes:v1:<base64(0x00‖ed25519 seed)>". 0, or -1 with err filled
 * (KES's texts: "invalid API key: invalid length" / "unsupported type"). */
int identity_of_api_key(const char *api_key, char out[IDENTITY_HEX_LEN + 1], char *err,
                        size_t errlen);
/* True if s is 64 lowercase hex chars (a value that can equal a computed identity). */
int identity_is_valid(const char *s);

#endif
