/*
 * transport_shim.h — TEMPORARY stand-ins, with the same names, for the rate-limited log lines
 * (server/log_limit.h) and the connection counters (server/metrics.h) that the log-audit
 * branch adds. The transport's call sites are written against those interfaces; this file is
 * deleted when they land.
 */
#ifndef KESC_SERVER_TRANSPORT_SHIM_H
#define KESC_SERVER_TRANSPORT_SHIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "server/log.h"

struct log_limit {
	pthread_mutex_t lock;
	unsigned burst;
	int64_t interval_ms;
	int64_t window_start_ms;
	unsigned written;
};
#define LOG_LIMIT_INIT                                                              \
	{                                                                           \
		.lock = PTHREAD_MUTEX_INITIALIZER, .burst = 5, .interval_ms = 10000 \
	}

static inline bool log_limit_pass_(struct log_limit *site)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pthread_mutex_lock(&site->lock);
	if (!site->window_start_ms || now - site->window_start_ms >= site->interval_ms) {
		site->window_start_ms = now;
		site->written = 0;
	}
	bool pass = site->written < site->burst;
	if (pass)
		site->written++;
	pthread_mutex_unlock(&site->lock);
	return pass;
}

#define log_limited(site, level, ...)                       \
	do {                                                \
		if (log_limit_pass_(site)) {                \
			if ((level) >= LOG_LEVEL_ERROR)     \
				log_error(__VA_ARGS__);     \
			else if ((level) >= LOG_LEVEL_WARN) \
				log_warn(__VA_ARGS__);      \
			else if ((level) >= LOG_LEVEL_INFO) \
				log_info(__VA_ARGS__);      \
			else                                \
				log_debug(__VA_ARGS__);     \
		}                                           \
	} while (0)

enum metrics_handshake_failure {
	METRICS_HANDSHAKE_NO_CERT,
	METRICS_HANDSHAKE_UNTRUSTED,
	METRICS_HANDSHAKE_EXPIRED,
	METRICS_HANDSHAKE_BAD_CERT,
	METRICS_HANDSHAKE_PROTOCOL,
	METRICS_HANDSHAKE_TIMEOUT,
	METRICS_HANDSHAKE_PLAIN_HTTP,
	METRICS_HANDSHAKE_CLOSED,
	METRICS_HANDSHAKE_OTHER,
	METRICS_HANDSHAKE_REASONS
};
static inline void metrics_count_handshake_failure(enum metrics_handshake_failure reason)
{
	(void)reason;
}

enum metrics_conn_refusal {
	METRICS_REFUSED_MAX_CONNECTIONS,
	METRICS_REFUSED_DESCRIPTORS,
	METRICS_REFUSED_PER_CLIENT,
	METRICS_REFUSED_SHED,
	METRICS_REFUSED_OTHER,
	METRICS_REFUSED_REASONS
};
static inline void metrics_count_conn_refused(enum metrics_conn_refusal reason)
{
	(void)reason;
}

#endif
