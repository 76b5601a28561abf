/* log.c — error and audit log sinks and their live subscribers (log.h). One mutex guards the
 * sinks and the subscriber list; events are rare next to requests except audit lines, which
 * are formatted outside the lock and written to a buffered sink flushed by log_flush. */
#include "server/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/json.h"
#include "server/log_limit.h"
#include "server/metrics.h"

/* A subscriber that does not drain loses lines beyond this many queued bytes. */
#define LOG_SUBSCRIBER_MAX_BYTES (1024 * 1024)
#define LOG_LINE_MAX             8192

struct log_subscriber {
	enum log_kind kind;
	void (*notify)(void *arg);
	void *arg;
	struct buf queue;
	uint64_t dropped;
	struct log_subscriber *next;
};

static struct {
	pthread_mutex_t lock;
	int error_level;
	int audit_level;
	FILE *error_fp; /* NULL = stderr */
	FILE *audit_fp; /* NULL = stdout */
	struct log_subscriber *subscribers;
	unsigned error_subscribers, audit_subscribers;
	/* audit_level on or an audit subscriber: read without the lock on every request, so
	 * that with audit off a request neither formats a record nor takes the global lock. */
	atomic_bool audit_wanted;
} g_log = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .error_level = LOG_LEVEL_INFO,
    .audit_level = LOG_LEVEL_INFO,
    .audit_wanted = true,
};

/* Called with the lock held after audit_level or audit_subscribers changed. */
static void update_audit_wanted(void)
{
	atomic_store_explicit(&g_log.audit_wanted,
	                      g_log.audit_level != LOG_LEVEL_OFF || g_log.audit_subscribers > 0,
	                      memory_order_relaxed);
}

static FILE *error_sink(void)
{
	return g_log.error_fp ? g_log.error_fp : stderr;
}

static FILE *audit_sink(void)
{
	return g_log.audit_fp ? g_log.audit_fp : stdout;
}

static FILE *open_sink(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "ae");
	if (!f)
		snprintf(err, errlen, "log: cannot open '%s': %s", path, strerror(errno));
	return f;
}

int log_configure(const struct config *cfg, char *err, size_t errlen)
{
	FILE *efp = NULL, *afp = NULL;
	if (cfg && cfg->log.error_file && !(efp = open_sink(cfg->log.error_file, err, errlen)))
		return -1;
	if (cfg && cfg->log.audit_file && !(afp = open_sink(cfg->log.audit_file, err, errlen))) {
		if (efp)
			fclose(efp);
		return -1;
	}
	pthread_mutex_lock(&g_log.lock);
	fflush(error_sink());
	fflush(audit_sink());
	if (g_log.error_fp)
		fclose(g_log.error_fp);
	if (g_log.audit_fp)
		fclose(g_log.audit_fp);
	g_log.error_fp = efp;
	g_log.audit_fp = afp;
	g_log.error_level = cfg ? cfg->log.error_level : LOG_LEVEL_INFO;
	g_log.audit_level = cfg ? cfg->log.audit_level : LOG_LEVEL_INFO;
	update_audit_wanted();
	pthread_mutex_unlock(&g_log.lock);
	return 0;
}

void log_flush(void)
{
	log_limit_tick();
	pthread_mutex_lock(&g_log.lock);
	fflush(error_sink());
	fflush(audit_sink());
	pthread_mutex_unlock(&g_log.lock);
}

void log_shutdown(void)
{
	pthread_mutex_lock(&g_log.lock);
	fflush(error_sink());
	fflush(audit_sink());
	if (g_log.error_fp)
		fclose(g_log.error_fp);
	if (g_log.audit_fp)
		fclose(g_log.audit_fp);
	g_log.error_fp = g_log.audit_fp = NULL;
	pthread_mutex_unlock(&g_log.lock);
}

/* Appends line (with its '\n') to every subscriber of kind. Called with the lock held. */
static void publish_locked(enum log_kind kind, const char *line, size_t len)
{
	for (struct log_subscriber *s = g_log.subscribers; s; s = s->next) {
		if (s->kind != kind)
			continue;
		if (s->queue.len + len > LOG_SUBSCRIBER_MAX_BYTES) {
			s->dropped++;
			continue;
		}
		buf_append(&s->queue, line, len);
		s->notify(s->arg);
	}
}

/* "2026-11-24T21:00:00.123Z" (ms) or with nanoseconds. */
static void format_time(char *out, size_t n, const struct timespec *ts, bool nanos)
{
	struct tm tm;
	char base[32];
	gmtime_r(&ts->tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (nanos)
		snprintf(out, n, "%s.%09ldZ", base, ts->tv_nsec);
	else
		snprintf(out, n, "%s.%03ldZ", base, ts->tv_nsec / 1000000);
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

__attribute__((format(printf, 2, 0))) static void log_event(int level, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&g_log.lock);
	bool wanted = level >= g_log.error_level && g_log.error_level != LOG_LEVEL_OFF;
	pthread_mutex_unlock(&g_log.lock);
	if (!wanted)
		return;

	char msg[LOG_LINE_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	char when[40];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	format_time(when, sizeof(when), &ts, false);

	struct buf line, sub;
	buf_init(&line, 0);
	buf_init(&sub, 0);
	buf_printf(&line, "%s %s %s", when, level_name(level), msg);
	buf_append_str(&sub, "{\"message\":");
	json_escape_string(&sub, line.data, line.len);
	buf_append_str(&sub, "}\n");
	buf_append_char(&line, '\n');

	pthread_mutex_lock(&g_log.lock);
	FILE *f = error_sink();
	fwrite(line.data, 1, line.len, f);
	fflush(f);
	if (g_log.error_subscribers && !buf_failed(&sub))
		publish_locked(LOG_KIND_ERROR, sub.data, sub.len);
	pthread_mutex_unlock(&g_log.lock);
	metrics_log_event(false);
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

bool log_level_enabled(int level)
{
	pthread_mutex_lock(&g_log.lock);
	bool wanted = level >= g_log.error_level && g_log.error_level != LOG_LEVEL_OFF;
	pthread_mutex_unlock(&g_log.lock);
	return wanted;
}

static void json_field(struct buf *b, const char *key, const char *value)
{
	buf_printf(b, "\"%s\":", key);
	json_escape_string(b, value ? value : "", value ? strlen(value) : 0);
}

static void format_audit(const struct audit_record *r, struct buf *b)
{
	struct timespec ts = {.tv_sec = r->time_ns / 1000000000,
	                      .tv_nsec = r->time_ns % 1000000000};
	char when[48];
	format_time(when, sizeof(when), &ts, true);
	buf_printf(b, "{\"time\":\"%s\",\"request\":{", when);
	json_field(b, "ip", r->ip);
	buf_append_char(b, ',');
	json_field(b, "path", r->path);
	buf_append_char(b, ',');
	json_field(b, "identity", r->identity);
	buf_append_char(b, ',');
	json_field(b, "method", r->method);
	buf_printf(b, "},\"response\":{\"code\":%d,\"time\":%lld}}\n", r->status,
	           (long long)r->latency_ns);
}

void log_audit(const struct audit_record *r)
{
	if (!atomic_load_explicit(&g_log.audit_wanted, memory_order_relaxed)) {
		metrics_log_event(true); /* counted as before; only the formatting is skipped */
		return;
	}
	struct buf b;
	buf_init(&b, 64 * 1024);
	format_audit(r, &b);
	if (!buf_failed(&b)) {
		pthread_mutex_lock(&g_log.lock);
		if (g_log.audit_level != LOG_LEVEL_OFF)
			fwrite(b.data, 1, b.len, audit_sink());
		if (g_log.audit_subscribers)
			publish_locked(LOG_KIND_AUDIT, b.data, b.len);
		pthread_mutex_unlock(&g_log.lock);
		metrics_log_event(true);
	}
	buf_free(&b);
}

struct log_subscriber *log_subscribe(enum log_kind kind, void (*notify)(void *arg), void *arg)
{
	struct log_subscriber *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
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
	free(s);
}
