/*
 * log_limit.h — log lines that may repeat thousands of times a second (accept failing when
 * descriptors run out, failed handshakes, audit write errors) without flooding the log.
 *
 *     static struct log_limit site = LOG_LIMIT_INIT;
 *     log_limited(&site, LOG_LEVEL_WARN, "accept: %s", strerror(errno));
 *
 * Each call site (one struct log_limit of static storage duration) writes at most `burst` lines
 * per `interval`; the calls beyond that are only counted. When the interval is over, one line
 * at the same level says how many were left out and what the last written one was:
 *     (2874 similar lines suppressed in the last 10s; the last written was "accept: …")
 * The summary comes with the next call at that site or, at the latest, within about a second
 * of the interval's end (the logger looks at every site that suppressed something).
 * A line below the error log's level is neither written nor counted. Thread-safe.
 */
#ifndef KESC_SERVER_LOG_LIMIT_H
#define KESC_SERVER_LOG_LIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The fields are private to log_limit.c; they are here only for static initialisation. */
struct log_limit {
	pthread_mutex_t lock;
	unsigned burst;
	int64_t interval_ms;
	int64_t window_start_ms;
	unsigned written;    /* in this window */
	uint64_t suppressed; /* in this window */
	int level;           /* of the suppressed lines */
	bool registered;     /* on the list the logger looks at */
	struct log_limit *next;
	char last[160]; /* the last line written, for the summary */
};

#define LOG_LIMIT_INIT_RATE(burst_, interval_ms_)                     \
	{                                                             \
		.lock = PTHREAD_MUTEX_INITIALIZER, .burst = (burst_), \
		.interval_ms = (interval_ms_)                         \
	}
/* 5 lines per 10 seconds. */
#define LOG_LIMIT_INIT LOG_LIMIT_INIT_RATE(5, 10000)

void log_limited(struct log_limit *site, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the summaries of sites whose interval has ended. The log module calls this about once
 * a second; tests may call it directly. */
void log_limit_tick(void);

#endif
