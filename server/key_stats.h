/*
 * key_stats.h — how many decrypts still need a key's old versions (issue 14), so an operator
 * can tell when retiring them is safe: kesc_key_old_version_decrypts_total{key,version}, one
 * series per key and version older than the key's current one that served a decrypt (or a
 * rewrap) since the server started. The number of series is bounded: beyond
 * KEY_STATS_MAX_SERIES they are counted under {key="_other",version="_other"} and the error
 * log says so once. Decrypts under the current version are not counted here (they are the
 * ordinary case, and kes_http_request_success counts them).
 */
#ifndef KESC_SERVER_KEY_STATS_H
#define KESC_SERVER_KEY_STATS_H

#include <stdint.h>

#include "keystore/bytes.h"

#define KEY_STATS_MAX_SERIES 512

/* A decrypt of key (a valid key name) used version, older than the key's current one. */
void key_stats_old_version(const char *key, uint32_t version);
/* Appends the metric (HELP, TYPE, the series sorted by key and version) in Prometheus text. */
void key_stats_render(struct buf *out);
/* Forgets every series (tests). */
void key_stats_reset(void);

#endif
