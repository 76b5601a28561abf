/*
 * metrics.h — counters for /v1/metrics in Prometheus text format, with KES's metric names
 * (kes.md §9.1) plus kesc's keystore latency and cache hit/miss counters. Updating a counter
 * is a relaxed atomic add on a per-thread-sharded slot: no lock on the request path.
 */
#ifndef KESC_SERVER_METRICS_H
#define KESC_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore/bytes.h"
#include "keystore/cache.h"

void metrics_init(void);
/* A metered request finished with status after latency_ns. */
void metrics_request_done(int status, int64_t latency_ns);
void metrics_request_active(int delta);
void metrics_log_event(bool audit);
void metrics_connection(int delta); /* open TLS connections (kesc_connections_open) */

/* Appends the exposition text. cache may be NULL. */
void metrics_render(struct buf *out, struct ks_cache *cache);

#endif
