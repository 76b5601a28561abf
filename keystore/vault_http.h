/*
 * vault_http.h — the libcurl transport to Vault: TLS settings (CA file or directory, client
 * certificate), connect and request timeouts, bounded retries with jittered backoff, a small
 * pool of keep-alive easy handles, and a capped response body that is zeroed when freed
 * (Vault responses carry key material).
 *
 * Private to keystore/vault*.c.
 */
#ifndef KESC_KEYSTORE_VAULT_HTTP_H
#define KESC_KEYSTORE_VAULT_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"
#include "keystore/keystore.h"

/* Largest Vault response body read (KES: 32 MiB for lists). */
#define VAULT_HTTP_MAX_BODY ((size_t)32 * 1024 * 1024)
/* Idle easy handles (each keeping its connection alive) kept for reuse. */
#define VAULT_HTTP_POOL_MAX 8

struct vault_http_opts {
	const char *endpoint; /* scheme://host:port, a trailing '/' is fine */
	const char *tls_ca;   /* file or directory; NULL = system store */
	const char *tls_cert;
	const char *tls_key;
	int64_t connect_timeout_ms;
	int64_t request_timeout_ms;
	int max_retries; /* extra attempts on network errors, 412, 429 and 5xx (not 501) */
	const atomic_bool
	    *cancel; /* when set, transfers and backoff sleeps end early; may be NULL */
};

struct vault_http;

/* Returns NULL with the reason in err (bad CA directory, out of memory). The opts strings are
 * copied. */
struct vault_http *vault_http_new(const struct vault_http_opts *opts, struct ks_err *err);
void vault_http_free(struct vault_http *h);

struct vault_request {
	const char *method;     /* "GET", "PUT", "POST", "DELETE" */
	const char *path;       /* below /v1/, already escaped, may carry a query */
	const char *token;      /* X-Vault-Token; NULL = none */
	const char *namespace_; /* X-Vault-Namespace; NULL or "" = none */
	const char *body;       /* JSON; NULL = no body */
	size_t body_len;
	bool no_retry; /* a single attempt (the caller retries on its own terms) */
};

struct vault_response {
	long status;     /* HTTP status of the last attempt */
	struct buf body; /* NUL-terminated; zeroed on vault_response_free */
};

void vault_response_init(struct vault_response *rs);
void vault_response_free(struct vault_response *rs);

/*
 * Sends the request, retrying on network errors, 412, 429 and 5xx except 501 (but not on a
 * 503 that says Vault is sealed: waiting will not help). Returns 0 when Vault answered (any
 * status, in rs), or KS_UNREACHABLE when no answer came (network error, timeout, cancel),
 * with the reason in err. rs is reset between attempts.
 */
int vault_http_do(struct vault_http *h, const struct vault_request *rq, struct vault_response *rs,
                  struct ks_err *err);

/* Fills err with "<what> '<path>': <status> <Vault's errors>" (never request values). */
void vault_http_error(const struct vault_response *rs, const char *what, const char *path,
                      struct ks_err *err);
/* Whether Vault's errors array (or body) contains needle. */
bool vault_http_error_contains(const struct vault_response *rs, const char *needle);

#endif
