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
	int max_retries; /* extra attempts on connection errors, 412, 429 and 5xx (not 501); a
	                    request that timed out is not repeated */
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
 * 503 that says Vault is sealed: waiting will not help, and not after a timeout: the attempt
 * already took the whole request timeout, and Vault may still be carrying it out). Returns 0
 * when Vault answered (any status, in rs), or KS_UNREACHABLE when no answer came (network
 * error, timeout, cancel), with the reason in err. rs is reset between attempts.
 */
int vault_http_do(struct vault_http *h, const struct vault_request *rq, struct vault_response *rs,
                  struct ks_err *err);

/*
 * Probes: unauthenticated single-attempt GETs (sys/health) that run side by side on one
 * thread, so that a probe started now is not stuck behind one sent before Vault recovered.
 * Each has the request timeout; at most VAULT_PROBES_MAX run at once. Not thread-safe except
 * vault_probes_wakeup. Created and freed by the health monitor's thread.
 */
#define VAULT_PROBES_MAX 16

struct vault_probes;

struct vault_probe_result {
	uint64_t id;        /* as given to vault_probes_start */
	bool answered;      /* Vault sent an HTTP answer (status and body in rs) */
	int64_t latency_us; /* from start to answer or failure */
	struct ks_err err;  /* why there was no answer */
};

struct vault_probes *vault_probes_new(struct vault_http *h);
void vault_probes_free(struct vault_probes *p);
size_t vault_probes_running(const struct vault_probes *p);
/* Starts GET /v1/<path>. 0, or -1 when VAULT_PROBES_MAX run already or out of memory. */
int vault_probes_start(struct vault_probes *p, const char *path, uint64_t id);
/* Runs the probes for up to wait_ms. Returns 1 when one finished (out and rs filled; call
 * again at once for the next), 0 when none did in that time or after a wakeup. */
int vault_probes_run(struct vault_probes *p, int64_t wait_ms, struct vault_probe_result *out,
                     struct vault_response *rs);
/* Makes a vault_probes_run that waits return now. Any thread. */
void vault_probes_wakeup(struct vault_probes *p);

/* Fills err with "<what> '<path>': <status> <Vault's errors>" (never request values). */
void vault_http_error(const struct vault_response *rs, const char *what, const char *path,
                      struct ks_err *err);
/* Whether Vault's errors array (or body) contains needle. */
bool vault_http_error_contains(const struct vault_response *rs, const char *needle);

#endif
