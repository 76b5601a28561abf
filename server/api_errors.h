/*
 * api_errors.h — every error text a KES API client can see, in one table, and the writer of
 * KES's error body.
 *
 * Clients (MinIO through kms-go) compare errors by status AND message, so these texts are part
 * of the wire contract (kes.md §1.4, §1.6–§1.8, §11.4). A message may carry up to two "%s"
 * slots, filled with request data (a key name, a method) by plain substitution, never by
 * printf, and then JSON-escaped as Go does.
 */
#ifndef KESC_SERVER_API_ERRORS_H
#define KESC_SERVER_API_ERRORS_H

#include "server/api.h"

enum api_error_id {
	API_ERR_PAGE_NOT_FOUND,     /* 404 text/plain "404 page not found\n" (Go's ServeMux) */
	API_ERR_METHOD,             /* 405 received method '%s' expected '%s' */
	API_ERR_CERT_REQUIRED,      /* 400 */
	API_ERR_CERT_MULTIPLE,      /* 400 */
	API_ERR_NOT_ALLOWED,        /* 403 */
	API_ERR_KEY_NAME,           /* 400 key name '%s' … */
	API_ERR_POLICY_NAME,        /* 400 policy name '%s' … */
	API_ERR_IDENTITY_NAME,      /* 400 identity '%s' … */
	API_ERR_PATTERN,            /* 400 listing pattern '%s' … */
	API_ERR_BODY,               /* 400 invalid request body */
	API_ERR_IMPORT_BODY,        /* 400 invalid import key request body */
	API_ERR_BULK_COUNT,         /* 400 too many ciphertexts (bulk decrypt) */
	API_ERR_NO_ENCLAVE,         /* 404 enclave does not exist (admin's ?enclave=) */
	API_ERR_ALGORITHM,          /* 406 algorithm '%s' is not supported */
	API_ERR_KEY_SIZE,           /* 406 invalid key size for '%s' */
	API_ERR_KEY_NOT_FOUND,      /* 404 */
	API_ERR_KEY_EXISTS,         /* 400 */
	API_ERR_KEY_DELETED,        /* 409 create of a name a delete still reserves (kesc) */
	API_ERR_DECRYPT,            /* 400 decryption failed: ciphertext is not authentic */
	API_ERR_NO_HMAC,            /* 409 */
	API_ERR_POLICY_NOT_FOUND,   /* 404 */
	API_ERR_IDENTITY_NOT_FOUND, /* 404 */
	API_ERR_CREATE_KEY,         /* 502 failed to create key */
	API_ERR_READ_KEY,           /* 502 failed to read key */
	API_ERR_DELETE_KEY,         /* 502 failed to delete key */
	API_ERR_LIST_KEYS,          /* 502 failed to list keys */
	API_ERR_IMPORT_INTERNAL,    /* 500 failed to create key */
	API_ERR_GENERATE,           /* 500 failed to generate encryption key */
	API_ERR_ENCRYPT,            /* 500 failed to encrypt plaintext */
	API_ERR_DECRYPT_INTERNAL,   /* 500 failed to decrypt ciphertext */
	API_ERR_HMAC_INTERNAL,      /* 500 failed to compute HMAC */
	API_ERR_STORE_UNREACHABLE,  /* 504 key store is not reachable */
	API_ERR_STORE_UNAVAILABLE,  /* 502 key store is unavailable */
	API_ERR_TIMEOUT,            /* 504 request timeout exceeded (the transport's deadline) */
	API_ERR_INTERNAL,           /* 500 internal server error (out of memory) */
	API_ERR_AUDIT,              /* 503 audit log unavailable: request not served (kesc) */
	/* kesc: key versions and deletion protection (issue 14) */
	API_ERR_VERSION_UNKNOWN, /* 400 key version '%s' does not exist */
	API_ERR_VERSION_RETIRED, /* 400 key version '%s' is retired */
	API_ERR_VERSIONS_MAX,    /* 409 key has the maximum number of versions */
	API_ERR_KEY_NOT_DELETED, /* 409 key is not scheduled for deletion */
	API_ERR_KEY_PURGED,      /* 404 key was deleted and cannot be restored */
	API_ERR_UPDATE_KEY,      /* 502 failed to update key */
	API_ERR_COUNT
};

/* Replaces resp's status, content type and body with the error. a and b fill the "%s" slots
 * in order (NULL = ""). */
void api_error(struct api_response *resp, enum api_error_id id, const char *a, const char *b);
/* The table entry, for tests and documentation. */
int api_error_status(enum api_error_id id);
const char *api_error_text(enum api_error_id id);

#endif
