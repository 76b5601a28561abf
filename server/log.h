/*
 * log.h — the error log and the audit log, and their live subscribers (/v1/log/error,
 * /v1/log/audit).
 *
 * Error log: text lines to stderr (or log.error's file) at or above the configured level.
 * A line logged while working for a tenant (keystore_thread_tag) starts "tenant '<name>': ".
 * Audit log: one JSON line per request to stdout (or log.audit's file):
 *   {"time":"…","request":{"ip":"…","path":"…","identity":"…","method":"…"},
 *    "response":{"code":200,"time":<ns>}}
 * kesc adds to "request", only when they apply: "tenant":"<name>" (a request resolved to a
 * tenant of the tenants: section) and "items":<n> (how many ciphertexts a bulk decrypt held).
 * Neither ever contains key material: callers pass paths, identities and texts only.
 *
 * No caller ever waits on a log write: each log has a writer thread with a bounded queue
 * (log_sink.h). Error lines that do not fit are dropped, counted
 * (kesc_log_error_lines_dropped_total) and reported by a line once the log takes lines again.
 *
 * The audit rule (kesc.yml(5), log.audit_failure): with audit on and the default "refuse", a
 * request that needs an audit record (keys, policies, identities, log streams) is answered
 * only after its record was written, i.e. write(2) accepted it (not fsync: that would cost a
 * disk flush per request; a record survives a kesc crash, not a power loss). If the record
 * cannot be written within LOG_AUDIT_WAIT_MS, or the audit log is failing, the answer is 503
 * "audit log unavailable: request not served" (MinIO retries 503s), and while it is failing
 * such requests are refused before they run. "serve" writes records best effort instead.
 */
#ifndef KESC_SERVER_LOG_H
#define KESC_SERVER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"

/* How long a response waits for its audit record before it is refused. */
#define LOG_AUDIT_WAIT_MS 5000

/* (Re)configures sinks and levels from cfg; NULL = defaults (INFO, stderr/stdout). Files are
 * (re)opened, so SIGHUP after a rotation moves the logs to new files. */
int log_configure(const struct config *cfg, char *err, size_t errlen);
/* Writes what is queued (at most a few seconds) and stops the writer threads. */
void log_shutdown(void);
/* Waits (at most about two seconds) until the lines logged so far are written, unless a log
 * is failing or stalled; also writes due rate-limit summaries (log_limit.h). */
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
	const char *tenant;   /* NULL: no tenant (the top-level keystore, or none resolved) */
	bool has_items;       /* a bulk request: items says how many it held */
	size_t items;
	int status;
	int64_t latency_ns;
};
/* Records r best effort (queued; never waits). */
void log_audit(const struct audit_record *r);

/* A record on its way to the audit log with a request waiting for it. */
struct log_audit_wait;

enum log_audit_result {
	LOG_AUDIT_DONE,    /* nothing to wait for (best effort, audit off, or "serve") */
	LOG_AUDIT_PENDING, /* *wait is set; ready(arg) will be called once, on another thread */
	LOG_AUDIT_REFUSED, /* the record cannot be written now: answer 503 instead */
};

/* Whether requests that need an audit record may run now: false while the audit rule is
 * "refuse" and the audit log is failing. */
bool log_audit_accepting(void);
/* Records r. With need_record (the answer depends on the record) under the "refuse" rule, the
 * caller waits: PENDING, or REFUSED at once when the queue is full or there is no audit log
 * to write to. ready must not block (it should wake the caller's loop). */
enum log_audit_result log_audit_submit(const struct audit_record *r, bool need_record,
                                       void (*ready)(void *arg), void *arg,
                                       struct log_audit_wait **wait);
/* After ready: whether the record was written (then it also goes to the subscribers). Frees
 * wait. */
bool log_audit_finish(struct log_audit_wait *wait);
/* Gives up waiting (timed_out: the wait ran out; else the connection closed). false: ready
 * will not be called and wait is freed. true: ready has been called already; call
 * log_audit_finish once it arrives. */
bool log_audit_abandon(struct log_audit_wait *wait, bool timed_out);

/* Live subscribers. A subscriber gets every event line (ndjson, '\n'-terminated) emitted after
 * it subscribed. notify is called from the emitting thread and must not block: it should just
 * wake the subscriber's loop (e.g. write an eventfd). Lines are queued per subscriber up to a
 * bound; a subscriber that falls further behind loses lines (counted in dropped). */
enum log_kind { LOG_KIND_ERROR = 1, LOG_KIND_AUDIT = 2 };
struct log_subscriber;
struct log_subscriber *log_subscribe(enum log_kind kind, void (*notify)(void *arg), void *arg);
/* A subscriber of one tenant (tenant NULL: everything, as log_subscribe): it gets the audit
 * records of requests served for that tenant and the error lines logged while working for it
 * (keystore_thread_tag), nothing else. The name is copied. */
struct log_subscriber *log_subscribe_tenant(enum log_kind kind, const char *tenant,
                                            void (*notify)(void *arg), void *arg);
/* Moves the queued lines into out (appending). Returns the number of lines moved. */
size_t log_subscriber_drain(struct log_subscriber *s, struct buf *out);
void log_unsubscribe(struct log_subscriber *s);
/* The tenant whose lines s gets (NULL: every line). */
const char *log_subscriber_tenant(const struct log_subscriber *s);
/* Lines this subscriber lost because its queue was full. */
uint64_t log_subscriber_dropped(const struct log_subscriber *s);

#endif
