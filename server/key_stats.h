/*
 * key_stats.h — how many decrypts still need a key's old versions (issue 14), so an operator
 * can tell when retiring them is safe: kesc_key_old_version_decrypts_total{key,version}, one
 * series per key and version older than the key's current one that served a decrypt (or a
 * rewrap) since the server started. The number of series is bounded: beyond
 * KEY_STATS_MAX_SERIES they are counted under {key="_other",version="_other"} and the error
 * log says so once. Decrypts under the current version are not counted here (they are the
 * ordinary case, and kes_http_request_success counts them). With tenants (issue 15) the
 * bound is the process's, shared by all of them.
 */
#ifndef KESC_SERVER_KEY_STATS_H
#define KESC_SERVER_KEY_STATS_H

#include <stdint.h>

#include "keystore/bytes.h"

#define KEY_STATS_MAX_SERIES 512

/* A decrypt of key (a valid key name) of tenant (NULL: the top-level keystore) used version,
 * older than the key's current one. A tenant's series are its own: the same key name in two
 * tenants is two series. */
void key_stats_old_version(const char *tenant, const char *key, uint32_t version);
/* Appends the metric (HELP, TYPE, the series sorted by tenant, key and version) in Prometheus
 * text: every series, a tenant's with a tenant="<name>" label, and the overflow. */
void key_stats_render(struct buf *out);
/* The same for one tenant's own view: its series only, without the tenant label, and not the
 * overflow (whose size depends on the other tenants). */
void key_stats_render_tenant(struct buf *out, const char *tenant);
/* Forgets every series (tests). */
void key_stats_reset(void);

#endif
