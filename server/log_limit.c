/* log_limit.c — per-call-site rate limiting of error log lines (log_limit.h). */
#include "server/log_limit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/log.h"

/* Every site that ever suppressed a line, for log_limit_tick. Sites are static: never removed. */
static pthread_mutex_t g_sites_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_limit *g_sites;

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void register_site(struct log_limit *site)
{
	pthread_mutex_lock(&g_sites_lock);
	site->next = g_sites;
	g_sites = site;
	pthread_mutex_unlock(&g_sites_lock);
}

/* With site->lock held: if the window is over, ends it and formats its summary into out
 * (returns true when there is one to write). */
static bool end_window_locked(struct log_limit *site, int64_t now, char *out, size_t n, int *level)
{
	if (site->window_start_ms && now - site->window_start_ms < site->interval_ms)
		return false;
	bool summary = site->suppressed > 0;
	if (summary) {
		snprintf(out, n,
		         "(%" PRIu64 " similar lines suppressed in the last %" PRId64
		         "s; the last written was \"%s\")",
		         site->suppressed, (site->interval_ms + 999) / 1000, site->last);
		*level = site->level;
	}
	site->window_start_ms = 0;
	site->written = 0;
	site->suppressed = 0;
	return summary;
}

void log_limited(struct log_limit *site, int level, const char *fmt, ...)
{
	if (!log_level_enabled(level))
		return;
	int64_t now = monotonic_ms();
	char summary[512];
	int summary_level = level;
	pthread_mutex_lock(&site->lock);
	bool have_summary = end_window_locked(site, now, summary, sizeof(summary), &summary_level);
	if (!site->window_start_ms)
		site->window_start_ms = now;
	bool write = site->written < site->burst;
	if (write) {
		site->written++;
	} else {
		site->suppressed++;
		site->level = level;
		if (!site->registered) {
			site->registered = true;
			register_site(site);
		}
	}
	pthread_mutex_unlock(&site->lock);

	if (have_summary)
		log_at(summary_level, "%s", summary);
	if (!write)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&site->lock);
	size_t n = strnlen(line, sizeof(site->last) - 1); /* a long line is cut for the summary */
	memcpy(site->last, line, n);
	site->last[n] = '\0';
	pthread_mutex_unlock(&site->lock);
	log_at(level, "%s", line);
}

void log_limit_tick(void)
{
	int64_t now = monotonic_ms();
	pthread_mutex_lock(&g_sites_lock);
	struct log_limit *sites = g_sites;
	pthread_mutex_unlock(&g_sites_lock);
	/* The list only grows at its head, so walking from a snapshot of the head is safe. */
	for (struct log_limit *site = sites; site; site = site->next) {
		char summary[512];
		int level = LOG_LEVEL_INFO;
		pthread_mutex_lock(&site->lock);
		bool have = site->suppressed > 0 &&
		            end_window_locked(site, now, summary, sizeof(summary), &level);
		pthread_mutex_unlock(&site->lock);
		if (have)
			log_at(level, "%s", summary);
	}
}
