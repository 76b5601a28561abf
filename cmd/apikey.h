/*
 * apikey.h — KES API keys on the command line ("kes:v1:" + base64(0x00 ‖ Ed25519 seed),
 * kes.md §2.2): making a new one, as `kes identity` does, and reading the API key of an
 * Ed25519 private key file, as `kes identity FILE` does. kesc cannot log in with an API key
 * (mbedTLS 2.28 has no Ed25519 in TLS), but KES, MinIO and other KES clients can, and a kesc
 * server accepts the identity of one in its policies.
 */
#ifndef KESC_CMD_APIKEY_H
#define KESC_CMD_APIKEY_H

#include <stddef.h>

/* "kes:v1:" and 44 base64 characters. */
#define APIKEY_LEN 51

/* A fresh API key from the kernel's random generator. 0, or -1 with err filled. */
int apikey_generate(char out[APIKEY_LEN + 1], char *err, size_t errlen);

enum apikey_file_kind {
	APIKEY_FILE_CERTIFICATE = 0, /* the file starts with a certificate (or is not PEM) */
	APIKEY_FILE_PRIVATE_KEY = 1, /* an Ed25519 PKCS#8 private key: out holds its API key */
	APIKEY_FILE_ERROR = -1,      /* err says why (unreadable, another kind of key, …) */
};
/* Looks at the first certificate or private key of a PEM file, as kes does. */
enum apikey_file_kind apikey_of_file(const char *path, char out[APIKEY_LEN + 1], char *err,
                                     size_t errlen);

#endif
