/* log.c — error and audit log lines, the audit rule, and live subscribers (log.h). The writes
 * themselves happen on the sinks' writer threads (log_sink.c). */
#include "server/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/json.h"
#include "keystore/keystore.h"
#include "server/log_limit.h"
#include "server/log_sink.h"
#include "server/metrics.h"

/* A subscriber that does not drain loses lines beyond this many queued bytes. */
#define LOG_SUBSCRIBER_MAX_BYTES (1024 * 1024)
#define LOG_LINE_MAX             8192
/* Queued bytes per sink: a few seconds of lines at full load, a bounded amount of memory. */
#define ERROR_QUEUE_BYTES (1024 * 1024)
#define AUDIT_QUEUE_BYTES (4 * 1024 * 1024)
#define FLUSH_MS          2000

struct log_subscriber {
	enum log_kind kind;
	char *tenant; /* NULL: every line */
	void (*notify)(void *arg);
	void *arg;
	struct buf queue;
	uint64_t dropped;
	struct log_subscriber *next;
};

struct log_audit_wait {
	struct log_entry entry; /* the record; the wait is the entry itself */
};

static struct {
	/* Guards the subscriber list. Never held while calling into a sink (a sink completes
	 * entries under its own lock; keeping the order one-way keeps it deadlock-free). */
	pthread_mutex_t lock;
	_Atomic int error_level;
	_Atomic int audit_level;
	atomic_bool audit_serve; /* log.audit_failure: serve */
	/* audit_level on or an audit subscriber: read without the lock on every request, so
	 * that with audit off a request neither formats a record nor takes the global lock. */
	atomic_bool audit_wanted;
	struct log_sink *error_sink, *audit_sink;
	struct log_subscriber *subscribers;
	unsigned error_subscribers, audit_subscribers;
} g_log = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .error_level = LOG_LEVEL_INFO,
    .audit_level = LOG_LEVEL_INFO,
    .audit_wanted = true,
};

static pthread_once_t g_start_once = PTHREAD_ONCE_INIT;

/* Called with the lock held after audit_level or audit_subscribers changed. */
static void update_audit_wanted(void)
{
	atomic_store_explicit(&g_log.audit_wanted,
	                      atomic_load(&g_log.audit_level) != LOG_LEVEL_OFF ||
	                          g_log.audit_subscribers > 0,
	                      memory_order_relaxed);
}

/* ---- sink hooks (writer threads, no lock held) ---- */

static void error_written(size_t n)
{
	for (size_t i = 0; i < n; i++)
		metrics_log_written(false);
}

static void error_lost(size_t n, enum log_loss why)
{
	(void)why;
	metrics_count_log_dropped(n);
}

static int error_drop_notice(uint64_t lost, char *out, size_t n);

static void audit_written(size_t n)
{
	for (size_t i = 0; i < n; i++)
		metrics_log_written(true);
}

static void audit_lost(size_t n, enum log_loss why)
{
	enum metrics_audit_failure reason = why == LOG_LOSS_TIMEOUT ? METRICS_AUDIT_TIMEOUT
	                                    : why == LOG_LOSS_QUEUE_FULL
	                                        ? METRICS_AUDIT_QUEUE_FULL
	                                        : METRICS_AUDIT_WRITE_ERROR;
	for (size_t i = 0; i < n; i++)
		metrics_count_audit_failure(reason);
}

static const char *audit_consequence(void)
{
	return atomic_load(&g_log.audit_serve)
	           ? "requests are served without audit records (log.audit_failure: serve)"
	           : "requests that need an audit record are refused (503) until it works again";
}

static void audit_failed(const char *target, int err)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	log_limited(&site, LOG_LEVEL_ERROR, "audit: cannot write to %s: %s; %s", target,
	            strerror(err), audit_consequence());
}

static void audit_recovered(const char *target, uint64_t failed)
{
	log_info("audit: writing to %s works again (%" PRIu64 " records failed meanwhile)", target,
	         failed);
}

static void start_sinks(void)
{
	static const struct log_sink_hooks error_hooks = {
	    .written = error_written,
	    .lost = error_lost,
	    .drop_notice = error_drop_notice,
	    .tick = log_limit_tick,
	};
	static const struct log_sink_hooks audit_hooks = {
	    .written = audit_written,
	    .lost = audit_lost,
	    .failed = audit_failed,
	    .recovered = audit_recovered,
	};
	struct log_target t;
	char err[64];
	g_log.error_sink = log_sink_start(ERROR_QUEUE_BYTES, &error_hooks);
	g_log.audit_sink = log_sink_start(AUDIT_QUEUE_BYTES, &audit_hooks);
	if (g_log.error_sink && log_target_open(NULL, 2, &t, err, sizeof(err)) == 0)
		log_sink_set_target(g_log.error_sink, &t);
	if (g_log.audit_sink && log_target_open(NULL, 1, &t, err, sizeof(err)) == 0)
		log_sink_set_target(g_log.audit_sink, &t);
}

static void ensure_started(void)
{
	pthread_once(&g_start_once, start_sinks);
}

/* ---- configuration ---- */

int log_configure(const struct config *cfg, char *err, size_t errlen)
{
	ensure_started();
	struct log_target et, at;
	int audit_level = cfg ? cfg->log.audit_level : LOG_LEVEL_INFO;
	if (log_target_open(cfg ? cfg->log.error_file : NULL, 2, &et, err, errlen) < 0)
		return -1;
	if (audit_level == LOG_LEVEL_OFF) {
		at.fd = -1;
	} else if (log_target_open(cfg ? cfg->log.audit_file : NULL, 1, &at, err, errlen) < 0) {
		log_target_close(&et);
		return -1;
	}
	bool serve = cfg && cfg->log.audit_failure_serve;
	bool was_serve = atomic_exchange(&g_log.audit_serve, serve);
	if (g_log.error_sink)
		log_sink_set_target(g_log.error_sink, &et);
	else
		log_target_close(&et);
	if (g_log.audit_sink)
		log_sink_set_target(g_log.audit_sink, at.fd >= 0 ? &at : NULL);
	else
		log_target_close(&at);
	atomic_store(&g_log.error_level, cfg ? cfg->log.error_level : LOG_LEVEL_INFO);
	pthread_mutex_lock(&g_log.lock);
	atomic_store(&g_log.audit_level, audit_level);
	update_audit_wanted();
	pthread_mutex_unlock(&g_log.lock);
	if (!g_log.error_sink || !g_log.audit_sink) {
		snprintf(err, errlen, "log: cannot start the log writer threads");
		return -1;
	}
	if (serve && !was_serve && audit_level != LOG_LEVEL_OFF)
		log_warn("log.audit_failure: serve — requests are answered even when their audit "
		         "record cannot be written; the audit log may have gaps");
	return 0;
}

void log_flush(void)
{
	ensure_started();
	log_limit_tick();
	if (g_log.error_sink)
		log_sink_flush(g_log.error_sink, FLUSH_MS);
	if (g_log.audit_sink)
		log_sink_flush(g_log.audit_sink, FLUSH_MS);
}

void log_shutdown(void)
{
	ensure_started();
	log_limit_tick();
	log_sink_stop(g_log.audit_sink, FLUSH_MS);
	log_sink_stop(g_log.error_sink, FLUSH_MS);
	g_log.audit_sink = g_log.error_sink = NULL;
}

/* ---- subscribers ---- */

/* Appends line (with its '\n') to every subscriber of kind that may see a line of tenant
 * (NULL: none): the global ones, and that tenant's. Called with the lock held. */
static void publish_locked(enum log_kind kind, const char *tenant, const char *line, size_t len)
{
	for (struct log_subscriber *s = g_log.subscribers; s; s = s->next) {
		if (s->kind != kind)
			continue;
		if (s->tenant && (!tenant || strcmp(s->tenant, tenant) != 0))
			continue;
		if (s->queue.len + len > LOG_SUBSCRIBER_MAX_BYTES) {
			s->dropped++;
			continue;
		}
		buf_append(&s->queue, line, len);
		s->notify(s->arg);
	}
}

static void publish(enum log_kind kind, const char *tenant, const char *line, size_t len)
{
	pthread_mutex_lock(&g_log.lock);
	if (kind == LOG_KIND_ERROR ? g_log.error_subscribers : g_log.audit_subscribers)
		publish_locked(kind, tenant, line, len);
	pthread_mutex_unlock(&g_log.lock);
}

/* ---- error lines ---- */

/* "2026-11-24T21:00:00.123Z" (ms) or with nanoseconds. */
/* An error line's time, to the millisecond. */
static void format_time(char *out, size_t n, const struct timespec *ts)
{
	struct tm tm;
	char base[32];
	gmtime_r(&ts->tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	int ms = (int)((ts->tv_nsec / 1000000) % 1000);
	snprintf(out, n, "%s.%03dZ", base, ms < 0 ? 0 : ms);
}

static const char *level_name(int level)
{
	if (level >= LOG_LEVEL_ERROR)
		return "ERROR";
	if (level >= LOG_LEVEL_WARN)
		return "WARN";
	if (level >= LOG_LEVEL_INFO)
		return "INFO";
	return "DEBUG";
}

static void format_error_line(struct buf *line, int level, const char *msg)
{
	char when[40];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	format_time(when, sizeof(when), &ts);
	buf_printf(line, "%s %s %s", when, level_name(level), msg);
}

static int error_drop_notice(uint64_t lost, char *out, size_t n)
{
	char msg[128];
	struct buf line;
	snprintf(msg, sizeof(msg),
	         "log: %" PRIu64 " lines dropped (the error log could not keep up)", lost);
	buf_init(&line, 0);
	format_error_line(&line, LOG_LEVEL_WARN, msg);
	int len = buf_failed(&line) ? -1 : snprintf(out, n, "%s\n", line.data);
	buf_free(&line);
	return len > 0 && (size_t)len < n ? len : -1;
}

bool log_level_enabled(int level)
{
	int configured = atomic_load_explicit(&g_log.error_level, memory_order_relaxed);
	return level >= configured && configured != LOG_LEVEL_OFF;
}

__attribute__((format(printf, 2, 0))) static void log_event(int level, const char *fmt, va_list ap)
{
	if (!log_level_enabled(level))
		return;
	ensure_started();
	char msg[LOG_LINE_MAX];
	const char *tenant = keystore_thread_tag();
	int n = tenant ? snprintf(msg, sizeof(msg), "tenant '%s': ", tenant) : 0;
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	struct buf line, sub;
	buf_init(&line, 0);
	buf_init(&sub, 0);
	format_error_line(&line, level, msg);
	buf_append_str(&sub, "{\"message\":");
	json_escape_string(&sub, line.data, line.len);
	buf_append_str(&sub, "}\n");
	buf_append_char(&line, '\n');
	if (!buf_failed(&sub))
		publish(LOG_KIND_ERROR, tenant, sub.data, sub.len);
	struct log_entry *e = buf_failed(&line) ? NULL : log_entry_new(line.data, line.len);
	if (!e || !g_log.error_sink || log_sink_submit(g_log.error_sink, e) < 0) {
		log_entry_free(e);
		metrics_count_log_dropped(1);
	}
	buf_free(&line);
	buf_free(&sub);
}

#define LOG_FN(name, level)                \
	void name(const char *fmt, ...)    \
	{                                  \
		va_list ap;                \
		va_start(ap, fmt);         \
		log_event(level, fmt, ap); \
		va_end(ap);                \
	}
LOG_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_error, LOG_LEVEL_ERROR)

void log_at(int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_event(level, fmt, ap);
	va_end(ap);
}

/* ---- audit records ---- */

/* key_quoted_colon is the member's name with its quotes and the colon: "\"ip\":". */
static void json_field(struct buf *b, const char *key_quoted_colon, const char *value)
{
	buf_append_str(b, key_quoted_colon);
	json_escape_string(b, value ? value : "", value ? strlen(value) : 0);
}

/* "2006-01-02T15:04:05.999999999Z" for the audit record's time. The seconds part is formatted
 * once per second and thread: every audited request writes one, so it avoids strftime and
 * printf. */
static void append_audit_time(struct buf *b, int64_t time_ns)
{
	static __thread int64_t cached_second = INT64_MIN;
	static __thread char cached[32];
	static __thread size_t cached_len;
	int64_t sec = time_ns / 1000000000, nsec = time_ns % 1000000000;
	if (nsec < 0) {
		nsec += 1000000000;
		sec--;
	}
	if (sec != cached_second) {
		struct tm tm;
		time_t t = (time_t)sec;
		if (!gmtime_r(&t, &tm))
			memset(&tm, 0, sizeof(tm));
		cached_len = strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_second = sec;
	}
	char frac[11] = ".000000000";
	for (int i = 9; i >= 1; i--, nsec /= 10)
		frac[i] = (char)('0' + nsec % 10);
	buf_append(b, cached, cached_len);
	buf_append(b, frac, 10);
	buf_append_char(b, 'Z');
}

/* Appended piece by piece: with printf, formatting the record cost ~10,000 instructions of an
 * audited request (more than parsing and routing it). */
static void format_audit(const struct audit_record *r, struct buf *b)
{
	buf_append_str(b, "{\"time\":\"");
	append_audit_time(b, r->time_ns);
	buf_append_str(b, "\",\"request\":{");
	json_field(b, "\"ip\":", r->ip);
	json_field(b, ",\"path\":", r->path);
	json_field(b, ",\"identity\":", r->identity);
	json_field(b, ",\"method\":", r->method);
	if (r->tenant && r->tenant[0])
		json_field(b, ",\"tenant\":", r->tenant);
	if (r->has_items) {
		buf_append_str(b, ",\"items\":");
		buf_append_decimal(b, (int64_t)r->items);
	}
	buf_append_str(b, "},\"response\":{\"code\":");
	buf_append_decimal(b, r->status);
	buf_append_str(b, ",\"time\":");
	buf_append_decimal(b, r->latency_ns);
	buf_append_str(b, "}}\n");
}

static bool audit_sink_on(void)
{
	return atomic_load_explicit(&g_log.audit_level, memory_order_relaxed) != LOG_LEVEL_OFF &&
	       g_log.audit_sink;
}

bool log_audit_accepting(void)
{
	ensure_started();
	if (atomic_load(&g_log.audit_serve) || !audit_sink_on())
		return true;
	return !log_sink_failing(g_log.audit_sink);
}

static void audit_refused_now(void)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	log_limited(&site, LOG_LEVEL_ERROR,
	            "audit: the audit log's queue is full (it cannot keep up); %s",
	            audit_consequence());
}

enum log_audit_result log_audit_submit(const struct audit_record *r, bool need_record,
                                       void (*ready)(void *arg), void *arg,
                                       struct log_audit_wait **wait)
{
	*wait = NULL;
	if (!atomic_load_explicit(&g_log.audit_wanted, memory_order_relaxed))
		return LOG_AUDIT_DONE;
	ensure_started();
	bool sink_on = audit_sink_on();
	bool must_wait = need_record && sink_on && !atomic_load(&g_log.audit_serve);
	struct buf b;
	buf_init(&b, 64 * 1024);
	format_audit(r, &b);
	if (buf_failed(&b)) {
		buf_free(&b);
		return must_wait ? LOG_AUDIT_REFUSED : LOG_AUDIT_DONE;
	}
	if (!must_wait) /* a record someone waits for goes to the subscribers once written */
		publish(LOG_KIND_AUDIT, r->tenant, b.data, b.len);
	enum log_audit_result result = LOG_AUDIT_DONE;
	struct log_entry *e = sink_on ? log_entry_new(b.data, b.len) : NULL;
	if (e && must_wait) {
		e->done = ready;
		e->arg = arg;
		e->tenant = r->tenant; /* the waiter's request keeps it alive */
	} else if (e) {
		e->retry = true; /* best effort, but kept while the audit log fails */
	}
	int submitted = e ? log_sink_submit(g_log.audit_sink, e) : sink_on ? -1 : 1;
	if (submitted < 0) {
		log_entry_free(e);
		audit_lost(1, LOG_LOSS_QUEUE_FULL);
		audit_refused_now();
		result = must_wait ? LOG_AUDIT_REFUSED : LOG_AUDIT_DONE;
	} else if (submitted == 1 && must_wait) {
		publish(LOG_KIND_AUDIT, r->tenant, b.data, b.len); /* written by this thread */
	} else if (must_wait) {
		*wait = (struct log_audit_wait *)e;
		result = LOG_AUDIT_PENDING;
	}
	buf_free(&b);
	return result;
}

bool log_audit_finish(struct log_audit_wait *wait)
{
	struct log_entry *e = &wait->entry;
	/* ready was called after the final state was set, and the caller learnt of it through
	 * its loop's mailbox (a mutex): the state is settled and the line is ours to read until
	 * our reference goes. */
	bool written = e->state == LOG_ENTRY_WRITTEN;
	if (written)
		publish(LOG_KIND_AUDIT, e->tenant, e->data, e->len);
	(void)log_sink_finish(g_log.audit_sink, e);
	return written;
}

bool log_audit_abandon(struct log_audit_wait *wait, bool timed_out)
{
	bool called = log_sink_abandon(g_log.audit_sink, &wait->entry, timed_out);
	if (timed_out && !called) {
		static struct log_limit site = LOG_LIMIT_INIT;
		log_limited(&site, LOG_LEVEL_ERROR,
		            "audit: the audit log did not take a record within %d ms (is its "
		            "reader stalled?); %s",
		            LOG_AUDIT_WAIT_MS, audit_consequence());
	}
	return called;
}

void log_audit(const struct audit_record *r)
{
	struct log_audit_wait *wait;
	(void)log_audit_submit(r, false, NULL, NULL, &wait);
}

/* ---- subscriptions ---- */

struct log_subscriber *log_subscribe(enum log_kind kind, void (*notify)(void *arg), void *arg)
{
	return log_subscribe_tenant(kind, NULL, notify, arg);
}

struct log_subscriber *log_subscribe_tenant(enum log_kind kind, const char *tenant,
                                            void (*notify)(void *arg), void *arg)
{
	struct log_subscriber *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (tenant && !(s->tenant = strdup(tenant))) {
		free(s);
		return NULL;
	}
	s->kind = kind;
	s->notify = notify;
	s->arg = arg;
	buf_init(&s->queue, LOG_SUBSCRIBER_MAX_BYTES + LOG_LINE_MAX);
	pthread_mutex_lock(&g_log.lock);
	s->next = g_log.subscribers;
	g_log.subscribers = s;
	if (kind == LOG_KIND_ERROR)
		g_log.error_subscribers++;
	else
		g_log.audit_subscribers++;
	update_audit_wanted();
	pthread_mutex_unlock(&g_log.lock);
	return s;
}

size_t log_subscriber_drain(struct log_subscriber *s, struct buf *out)
{
	size_t lines = 0;
	pthread_mutex_lock(&g_log.lock);
	for (size_t i = 0; i < s->queue.len; i++)
		lines += s->queue.data[i] == '\n';
	buf_append(out, s->queue.data, s->queue.len);
	s->queue.len = 0;
	if (s->queue.data)
		s->queue.data[0] = '\0';
	pthread_mutex_unlock(&g_log.lock);
	return lines;
}

const char *log_subscriber_tenant(const struct log_subscriber *s)
{
	return s->tenant; /* set at subscription, never changed */
}

uint64_t log_subscriber_dropped(const struct log_subscriber *s)
{
	pthread_mutex_lock(&g_log.lock);
	uint64_t n = s->dropped;
	pthread_mutex_unlock(&g_log.lock);
	return n;
}

void log_unsubscribe(struct log_subscriber *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&g_log.lock);
	for (struct log_subscriber **p = &g_log.subscribers; *p; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	if (s->kind == LOG_KIND_ERROR)
		g_log.error_subscribers--;
	else
		g_log.audit_subscribers--;
	update_audit_wanted();
	pthread_mutex_unlock(&g_log.lock);
	buf_free(&s->queue);
	free(s->tenant);
	free(s);
}
