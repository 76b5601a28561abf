/*
 * metrics.h — counters for /v1/metrics in Prometheus text format, with KES's metric names
 * (kes.md §9.1) plus kesc's own under a kesc_ prefix (every one is listed in kesc.1, METRICS).
 * Updating a counter is a relaxed atomic add on a per-thread-sharded slot: no lock on the
 * request path.
 *
 * The counting functions below are the stable interface for the transport, TLS and server
 * code; adding a reason means adding an enum value and its label in metrics.c.
 */
#ifndef KESC_SERVER_METRICS_H
#define KESC_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore/bytes.h"
#include "keystore/cache.h"

struct mbedtls_x509_crt;

void metrics_init(void);
/* A metered request finished with status after latency_ns. */
void metrics_request_done(int status, int64_t latency_ns);
void metrics_request_active(int delta);
/* A line was written to the error log (false) or an audit record to the audit log (true):
 * kesc_log_error_lines_total / kesc_log_audit_records_total. */
void metrics_log_written(bool audit);
/* n events were delivered to a /v1/log/error (false) or /v1/log/audit (true) subscriber:
 * kes_log_error_events / kes_log_audit_events, which is what KES counts under those names. */
void metrics_log_streamed(bool audit, uint64_t n);
void metrics_connection(int delta); /* open TLS connections (kesc_connections_open) */

/* Why a TLS handshake failed: kesc_tls_handshake_failures_total{reason}. */
enum metrics_handshake_failure {
	METRICS_HANDSHAKE_NO_CERT,    /* "no_certificate": none sent where one is required */
	METRICS_HANDSHAKE_UNTRUSTED,  /* "untrusted": the chain does not verify (unknown CA) */
	METRICS_HANDSHAKE_EXPIRED,    /* "expired": a certificate expired or is not yet valid */
	METRICS_HANDSHAKE_BAD_CERT,   /* "bad_certificate": any other refused certificate */
	METRICS_HANDSHAKE_PROTOCOL,   /* "protocol": version, cipher suites, malformed records */
	METRICS_HANDSHAKE_TIMEOUT,    /* "timeout": not finished within the handshake timeout */
	METRICS_HANDSHAKE_PLAIN_HTTP, /* "plain_http": plain HTTP sent to the TLS port */
	METRICS_HANDSHAKE_CLOSED,     /* "closed": the peer closed or reset the connection */
	METRICS_HANDSHAKE_OTHER,      /* "other" */
	METRICS_HANDSHAKE_REASONS
};
void metrics_count_handshake_failure(enum metrics_handshake_failure reason);

/* Why a connection was refused or closed unserved: kesc_connections_refused_total{reason}. */
enum metrics_conn_refusal {
	METRICS_REFUSED_MAX_CONNECTIONS, /* "max_connections": server.max_connections reached */
	METRICS_REFUSED_DESCRIPTORS,     /* "descriptors": accept failed, no descriptor left */
	METRICS_REFUSED_PER_CLIENT,      /* "per_client": the client address has too many */
	METRICS_REFUSED_SHED,            /* "shed": an idle unauthenticated one closed for room */
	METRICS_REFUSED_TENANT,          /* "tenant": its tenant holds its share already */
	METRICS_REFUSED_OTHER,           /* "other" */
	METRICS_REFUSED_REASONS
};
void metrics_count_conn_refused(enum metrics_conn_refusal reason);

/* A SIGHUP reload was applied (ok) or refused: kesc_config_reloads_total{result}. */
void metrics_count_reload(bool ok);

/* Why an audit record was not written: kesc_log_audit_write_failures_total{reason}. */
enum metrics_audit_failure {
	METRICS_AUDIT_WRITE_ERROR, /* "error": the write failed (full disk, closed pipe, …) */
	METRICS_AUDIT_TIMEOUT,     /* "timeout": not written within the wait (stalled reader) */
	METRICS_AUDIT_QUEUE_FULL,  /* "queue_full": the sink's queue was full */
	METRICS_AUDIT_REASONS
};
void metrics_count_audit_failure(enum metrics_audit_failure reason);
/* Error log lines lost because the sink could not keep up or failed. */
void metrics_count_log_dropped(uint64_t lines);

/* Certificate expiry, Unix seconds: the server's certificate (replaced on reload), and the
 * earliest notAfter among client certificates seen in the last 15 to 30 minutes. */
void metrics_set_server_cert_expiry(int64_t not_after);
void metrics_observe_client_cert_expiry(int64_t not_after);
/* crt's notAfter in Unix seconds; 0 for NULL. */
int64_t metrics_cert_not_after(const struct mbedtls_x509_crt *crt);

/* Appends the exposition text. cache may be NULL. */
void metrics_render(struct buf *out, struct ks_cache *cache);

/*
 * Tenants (the tenants: section). Each tenant counts its own metered requests in a scope; the
 * scope outlives configuration reloads with the tenant's cache.
 *
 * Label cardinality: a tenant adds a fixed handful of series to the global exposition (the
 * kesc_tenant_* families of metrics_render_tenants: requests by class 2xx/4xx/5xx, latency sum
 * and count, cache hits, misses and keys, keystore up) — never per status code, per route or
 * per histogram bucket, so 1,000 tenants are 9,000 series, not hundreds of thousands. A
 * tenant's own /v1/metrics (metrics_render_scope) has KES's families with its own numbers.
 */
struct metrics_scope;
struct metrics_scope *metrics_scope_new(void);
void metrics_scope_free(struct metrics_scope *s);
/* A metered request of the scope's tenant finished (besides metrics_request_done). */
void metrics_scope_request_done(struct metrics_scope *s, int status, int64_t latency_ns);
/* A tenant's own /v1/metrics: KES's request families from its requests alone, the process's
 * kes_system_* gauges (facts about the host, as a separate process on it would show), and its
 * keystore and cache, and its keys' old-version decrypts (key_stats.h). Nothing of other
 * tenants. */
void metrics_render_scope(struct buf *out, const struct metrics_scope *s, struct ks_cache *cache,
                          const char *tenant);

struct metrics_tenant {
	const char *name;
	const struct metrics_scope *scope;
	struct ks_cache *cache;
};
/* The kesc_tenant_* families over n tenants (for the global view). */
void metrics_render_tenants(struct buf *out, const struct metrics_tenant *t, size_t n);

#endif
