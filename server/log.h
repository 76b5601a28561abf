/*
 * log.h — the error log and the audit log, and their live subscribers (/v1/log/error,
 * /v1/log/audit).
 *
 * Error log: text lines to stderr (or log.error's file) at or above the configured level.
 * Audit log: one JSON line per request to stdout (or log.audit's file):
 *   {"time":"…","request":{"ip":"…","path":"…","identity":"…","method":"…"},
 *    "response":{"code":200,"time":<ns>}}
 * Neither ever contains key material: callers pass paths, identities and texts only.
 */
#ifndef KESC_SERVER_LOG_H
#define KESC_SERVER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

/* (Re)configures sinks and levels from cfg; NULL = defaults (INFO, stderr/stdout). */
int log_configure(const struct config *cfg, char *err, size_t errlen);
void log_shutdown(void);
/* Writes out buffered audit lines (the audit sink is block-buffered; the server calls this
 * about once a second and at exit). */
void log_flush(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line at any level (LOG_LEVEL_*). */
void log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether a line at level would be written to the error log now. */
bool log_level_enabled(int level);

struct audit_record {
	int64_t time_ns; /* request start, Unix ns */
	const char *ip;
	const char *method;
	const char *path;
	const char *identity; /* "" if none */
	int status;
	int64_t latency_ns;
};
void log_audit(const struct audit_record *r);

/* Live subscribers. A subscriber gets every event line (ndjson, '\n'-terminated) emitted after
 * it subscribed. notify is called from the emitting thread and must not block: it should just
 * wake the subscriber's loop (e.g. write an eventfd). Lines are queued per subscriber up to a
 * bound; a subscriber that falls further behind loses lines (counted in dropped). */
enum log_kind { LOG_KIND_ERROR = 1, LOG_KIND_AUDIT = 2 };
struct log_subscriber;
struct log_subscriber *log_subscribe(enum log_kind kind, void (*notify)(void *arg), void *arg);
/* Moves the queued lines into out (appending). Returns the number of lines moved. */
size_t log_subscriber_drain(struct log_subscriber *s, struct buf *out);
void log_unsubscribe(struct log_subscriber *s);
/* Lines this subscriber lost because its queue was full. */
uint64_t log_subscriber_dropped(const struct log_subscriber *s);

#endif
