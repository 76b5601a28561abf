/* test_log.c — the error and audit logs (server/log.c): line formats, levels, file sinks, and
 * live subscribers with their bounded queues. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/log.h"
#include "server/log_limit.h"
#include "server/metrics.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/kesc-test-log-XXXXXX";
static char error_path[256], audit_path[256];

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	static char data[1 << 20];
	size_t n = fread(data, 1, sizeof(data) - 1, f);
	fclose(f);
	data[n] = '\0';
	return strdup(data);
}

static bool matches(const char *text, const char *pattern)
{
	regex_t re;
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE) != 0)
		return false;
	bool ok = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static void configure(int error_level, int audit_level)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.error_level = error_level;
	cfg.log.audit_level = audit_level;
	cfg.log.error_file = error_path;
	cfg.log.audit_file = audit_path;
	char err[256];
	CHECK_EQ_INT(log_configure(&cfg, err, sizeof(err)), 0);
}

static int notified;
static void count_notify(void *arg)
{
	(void)arg;
	notified++;
}

static void test_error_log_levels(void)
{
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
	log_debug("hidden %d", 1);
	log_info("shown %d", 2);
	log_error("broken \"%s\"", "x");
	log_flush();
	char *text = slurp(error_path);
	CHECK(!strstr(text, "hidden"));
	CHECK(matches(text, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
	                    "INFO shown 2$"));
	CHECK(matches(text, "Z ERROR broken \"x\"$"));
	free(text);

	configure(LOG_LEVEL_OFF, LOG_LEVEL_INFO);
	log_error("silenced");
	log_flush();
	text = slurp(error_path);
	CHECK(!strstr(text, "silenced"));
	free(text);
}

static void test_audit_line(void)
{
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
	struct audit_record r = {
	    .time_ns = 1764018000123456789LL,
	    .ip = "127.0.0.1",
	    .method = "PUT",
	    .path = "/v1/key/create/a\"b",
	    .identity = "ab12",
	    .status = 200,
	    .latency_ns = 1500,
	};
	log_audit(&r);
	log_flush();
	char *text = slurp(audit_path);
	CHECK_EQ_STR(text, "{\"time\":\"2025-11-24T21:00:00.123456789Z\",\"request\":{\"ip\":"
	                   "\"127.0.0.1\",\"path\":\"/v1/key/create/a\\\"b\",\"identity\":\"ab12\","
	                   "\"method\":\"PUT\"},\"response\":{\"code\":200,\"time\":1500}}\n");
	free(text);

	configure(LOG_LEVEL_INFO, LOG_LEVEL_OFF);
	log_audit(&r);
	log_flush();
	text = slurp(audit_path);
	CHECK_EQ_INT(strlen(text) > 0, 1);
	CHECK(strstr(text, "\n") == text + strlen(text) - 1); /* still one line */
	free(text);
}

static void test_subscribers(void)
{
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
	notified = 0;
	struct log_subscriber *e = log_subscribe(LOG_KIND_ERROR, count_notify, NULL);
	struct log_subscriber *a = log_subscribe(LOG_KIND_AUDIT, count_notify, NULL);
	CHECK(e && a);
	log_warn("to the stream");
	struct audit_record r = {.time_ns = 0,
	                         .ip = "::1",
	                         .method = "GET",
	                         .path = "/v1/status",
	                         .identity = "",
	                         .status = 403,
	                         .latency_ns = 7};
	log_audit(&r);
	CHECK_EQ_INT(notified, 2);

	struct buf out;
	buf_init(&out, 0);
	CHECK_EQ_INT(log_subscriber_drain(e, &out), 1);
	CHECK(matches(out.data, "^\\{\"message\":\"[0-9T:.Z-]+ WARN to the stream\"\\}$"));
	CHECK(out.len && out.data[out.len - 1] == '\n');
	buf_reset(&out);
	CHECK_EQ_INT(log_subscriber_drain(a, &out), 1);
	CHECK(strstr(out.data, "\"code\":403") != NULL);
	buf_reset(&out);
	CHECK_EQ_INT(log_subscriber_drain(a, &out), 0);

	/* A subscriber that never drains loses lines instead of growing without bound. */
	for (int i = 0; i < 20000; i++)
		log_audit(&r);
	CHECK(log_subscriber_dropped(a) > 0);
	size_t lines = log_subscriber_drain(a, &out);
	CHECK(lines > 1000 && lines < 20000);
	CHECK(out.len <= 1024 * 1024);
	buf_free(&out);

	log_unsubscribe(e);
	log_unsubscribe(a);
	notified = 0;
	log_warn("after");
	log_audit(&r);
	CHECK_EQ_INT(notified, 0);
}

static size_t count_substr(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Sum of N over "(N similar lines suppressed" in text. */
static unsigned long long suppressed_total(const char *text)
{
	unsigned long long sum = 0;
	for (const char *p = text; (p = strchr(p, '(')); p++) {
		unsigned long long n;
		char rest[32];
		if (sscanf(p, "(%llu similar lines %31[a-z]", &n, rest) == 2 &&
		    !strcmp(rest, "suppressed"))
			sum += n;
	}
	return sum;
}

static void test_rate_limited_lines(void)
{
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
	/* A flood at one site: only the burst is written (a minute-long window cannot end
	 * during this loop, so the count is exact). */
	static struct log_limit flood = LOG_LIMIT_INIT_RATE(3, 60000);
	for (int i = 0; i < 1000; i++)
		log_limited(&flood, LOG_LEVEL_WARN, "accept failed: %s (%d)", "Too many open files",
		            i);
	/* Below the level: neither written nor counted. */
	static struct log_limit quiet = LOG_LIMIT_INIT_RATE(1, 10);
	for (int i = 0; i < 10; i++)
		log_limited(&quiet, LOG_LEVEL_DEBUG, "hidden %d", i);
	log_flush();
	char *text = slurp(error_path);
	CHECK_EQ_INT(count_substr(text, "WARN accept failed: Too many open files"), 3);
	CHECK(strstr(text, "(2)") && !strstr(text, "(3)"));
	CHECK(!strstr(text, "hidden"));
	free(text);

	/* A short window: once it is over, the logger's tick writes the summary, at the
	 * site's level, naming the last line written. Written + suppressed = calls, however
	 * the windows fell. */
	static struct log_limit brief = LOG_LIMIT_INIT_RATE(2, 50);
	for (int i = 0; i < 10; i++)
		log_limited(&brief, LOG_LEVEL_ERROR, "handshake failed: %d", i);
	usleep(120 * 1000);
	log_limit_tick();
	log_flush();
	text = slurp(error_path);
	size_t written = count_substr(text, "ERROR handshake failed: ");
	unsigned long long suppressed = suppressed_total(text);
	CHECK(suppressed > 0);
	CHECK_EQ_INT(written + suppressed, 10);
	CHECK(matches(text, "ERROR \\([0-9]+ similar lines suppressed in the last 1s; the last "
	                    "written was \"handshake failed: [0-9]\"\\)$"));
	/* Nothing more to say: a second tick adds nothing. */
	size_t len = strlen(text);
	free(text);
	log_limit_tick();
	log_flush();
	text = slurp(error_path);
	CHECK_EQ_INT(strlen(text), len);
	free(text);
}

int main(void)
{
	metrics_init();
	if (!mkdtemp(dir))
		return 1;
	snprintf(error_path, sizeof(error_path), "%s/error.log", dir);
	snprintf(audit_path, sizeof(audit_path), "%s/audit.log", dir);
	RUN(test_error_log_levels);
	RUN(test_audit_line);
	RUN(test_subscribers);
	RUN(test_rate_limited_lines);
	log_shutdown();
	unlink(error_path);
	unlink(audit_path);
	rmdir(dir);
	return CHECK_DONE();
}
