/* test_log.c — the error and audit logs (server/log.c): line formats, levels, file sinks, and
 * live subscribers with their bounded queues. */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
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

/* The value of one sample in /v1/metrics' text (0 when absent). */
static double metric_value(const char *sample)
{
	struct buf b;
	buf_init(&b, 0);
	metrics_render(&b, NULL);
	double v = 0;
	char *p = b.data ? strstr(b.data, sample) : NULL;
	if (p)
		v = strtod(p + strlen(sample), NULL);
	buf_free(&b);
	return v;
}

/* Reads what the pipe has until it stayed empty for about a second. */
static void drain_pipe(int fd, struct buf *into)
{
	char chunk[65536];
	for (int quiet = 0; quiet < 100;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n > 0) {
			buf_append(into, chunk, (size_t)n);
			quiet = 0;
		} else {
			usleep(10 * 1000);
			quiet++;
		}
	}
}

static unsigned long long dropped_noticed(const char *text)
{
	unsigned long long sum = 0;
	for (const char *p = text; (p = strstr(p, "WARN log: ")); p++) {
		unsigned long long n;
		if (sscanf(p, "WARN log: %llu lines dropped", &n) == 1)
			sum += n;
	}
	return sum;
}

/* Standard error is a pipe nobody reads (issue 10 §3: every thread blocked once its 64 KiB
 * were full). Logging must return at once; lines beyond the queue are dropped and counted,
 * and once the pipe is read again, notices account for every dropped line. */
static void test_stalled_stderr_never_blocks(void)
{
	int saved = dup(2), p[2];
	CHECK(saved >= 0 && pipe(p) == 0);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	dup2(p[1], 2);
	close(p[1]);
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.error_level = LOG_LEVEL_INFO;
	cfg.log.audit_level = LOG_LEVEL_OFF;
	char err[256];
	CHECK_EQ_INT(log_configure(&cfg, err, sizeof(err)), 0); /* stderr: the pipe */
	double dropped0 = metric_value("\nkesc_log_error_lines_dropped_total ");

	char filler[101];
	memset(filler, 'x', 100);
	filler[100] = '\0';
	for (int i = 0; i < 30000; i++) /* 3.6 MB: the pipe's 64 KiB and the 1 MiB queue */
		log_warn("stalled %d %s", i, filler);
	double dropped = metric_value("\nkesc_log_error_lines_dropped_total ") - dropped0;
	CHECK(dropped > 0);

	struct buf got;
	buf_init(&got, 0);
	drain_pipe(p[0], &got);
	log_warn("carrier"); /* the next line written brings the last notice */
	log_flush();
	drain_pipe(p[0], &got);
	buf_append_char(&got, '\0');
	CHECK(strstr(got.data, "WARN stalled 0 xxx") != NULL);
	CHECK(strstr(got.data, "WARN carrier") != NULL);
	CHECK(matches(got.data, "Z WARN log: [0-9]+ lines dropped \\(the error log could not "
	                        "keep up\\)$"));
	CHECK_EQ_INT((long long)dropped_noticed(got.data), (long long)dropped);
	/* Every line that arrived is whole. */
	size_t lines = 0, whole = 0;
	for (char *line = strtok(got.data, "\n"); line; line = strtok(NULL, "\n")) {
		lines++;
		whole += matches(line, "^[0-9]{4}-[0-9-]+T[0-9:.]+Z (WARN|INFO|ERROR) ");
	}
	CHECK(lines > 100);
	CHECK_EQ_INT(whole, lines);
	buf_free(&got);

	dup2(saved, 2);
	close(saved);
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO); /* lets go of the pipe */
	close(p[0]);
}

static atomic_int ready_calls;
static void on_ready(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ready_calls, 1);
}

static bool wait_ready(int want)
{
	for (int i = 0; i < 3000 && atomic_load(&ready_calls) < want; i++)
		usleep(10 * 1000);
	return atomic_load(&ready_calls) >= want;
}

static const struct audit_record AUDITED = {
    .time_ns = 1764018000123456789LL,
    .ip = "10.0.0.1",
    .method = "POST",
    .path = "/v1/key/create/audited",
    .identity = "ab12",
    .status = 200,
    .latency_ns = 1000,
};

/* The audit log on a full disk (/dev/full: every write is ENOSPC): the record is reported
 * as not written, audited requests are refused until the audit log works again, the failure
 * is counted and logged. */
static void test_audit_full_disk(void)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.error_level = LOG_LEVEL_INFO;
	cfg.log.audit_level = LOG_LEVEL_INFO;
	cfg.log.error_file = error_path;
	cfg.log.audit_file = "/dev/full";
	char err[256];
	CHECK_EQ_INT(log_configure(&cfg, err, sizeof(err)), 0);
	CHECK(log_audit_accepting());
	double failures0 = metric_value("kesc_log_audit_write_failures_total{reason=\"error\"} ");
	double events0 = metric_value("\nkesc_log_audit_records_total ");

	atomic_store(&ready_calls, 0);
	struct log_audit_wait *w = NULL;
	CHECK_EQ_INT(log_audit_submit(&AUDITED, true, on_ready, NULL, &w), LOG_AUDIT_PENDING);
	CHECK(wait_ready(1));
	CHECK(!log_audit_finish(w));
	CHECK(!log_audit_accepting());
	CHECK(metric_value("kesc_log_audit_write_failures_total{reason=\"error\"} ") > failures0);
	CHECK_EQ_INT(metric_value("\nkesc_log_audit_records_total "), events0);
	/* A best-effort record (a refusal's) is kept and retried; it never waits. */
	struct audit_record refusal = AUDITED;
	refusal.status = 503;
	refusal.path = "/v1/key/create/refused";
	CHECK_EQ_INT(log_audit_submit(&refusal, false, on_ready, NULL, &w), LOG_AUDIT_DONE);
	CHECK(w == NULL);
	log_flush();
	char *text = slurp(error_path);
	CHECK(matches(text, "ERROR audit: cannot write to '/dev/full': No space left on device; "
	                    "requests that need an audit record are refused"));
	free(text);

	/* A working audit log (SIGHUP to another file): accepting again, and the kept refusal
	 * record is written there. */
	unlink(audit_path);
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
	CHECK(log_audit_accepting());
	for (int i = 0; i < 300; i++) {
		log_flush();
		text = slurp(audit_path);
		bool found = strstr(text, "/v1/key/create/refused") != NULL;
		free(text);
		if (found)
			break;
		usleep(10 * 1000);
	}
	text = slurp(audit_path);
	CHECK(strstr(text, "\"path\":\"/v1/key/create/refused\"") != NULL);
	CHECK(strstr(text, "\"code\":503") != NULL);
	CHECK(strstr(text, "/v1/key/create/audited") == NULL);
	free(text);

	/* "serve": never waits, never refuses. */
	cfg.log.audit_failure_serve = true;
	CHECK_EQ_INT(log_configure(&cfg, err, sizeof(err)), 0);
	struct audit_record served = AUDITED;
	served.path = "/v1/key/create/served"; /* kept and retried: it may land in a later test */
	CHECK_EQ_INT(log_audit_submit(&served, true, on_ready, NULL, &w), LOG_AUDIT_DONE);
	log_flush();
	CHECK(log_audit_accepting());
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
}

/* The audit log on a FIFO whose reader stopped reading: a waiting record is abandoned after
 * the caller's deadline and then never written; audited requests are refused until a write
 * succeeds again. */
static void test_audit_stalled_reader(void)
{
	char fifo[300];
	snprintf(fifo, sizeof(fifo), "%s/audit.fifo", dir);
	CHECK_EQ_INT(mkfifo(fifo, 0600), 0);
	int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
	int wfd = open(fifo, O_WRONLY | O_NONBLOCK);
	CHECK(rfd >= 0 && wfd >= 0);
	char fill[4096];
	memset(fill, '#', sizeof(fill));
	while (write(wfd, fill, sizeof(fill)) > 0) /* full */
		;
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.error_level = LOG_LEVEL_INFO;
	cfg.log.audit_level = LOG_LEVEL_INFO;
	cfg.log.error_file = error_path;
	cfg.log.audit_file = fifo;
	char err[256];
	CHECK_EQ_INT(log_configure(&cfg, err, sizeof(err)), 0);

	atomic_store(&ready_calls, 0);
	struct log_audit_wait *w = NULL;
	CHECK_EQ_INT(log_audit_submit(&AUDITED, true, on_ready, NULL, &w), LOG_AUDIT_PENDING);
	usleep(100 * 1000);
	CHECK_EQ_INT(atomic_load(&ready_calls), 0); /* nowhere to write it */
	CHECK(!log_audit_abandon(w, true));
	CHECK(!log_audit_accepting());

	/* The reader reads again: the withdrawn record never shows up, the next one does. */
	struct buf got;
	buf_init(&got, 0);
	drain_pipe(rfd, &got);
	struct audit_record next = AUDITED;
	next.path = "/v1/key/create/next";
	log_audit(&next);
	log_flush();
	drain_pipe(rfd, &got);
	buf_append_char(&got, '\0');
	CHECK(strstr(got.data, "/v1/key/create/next") != NULL);
	CHECK(strstr(got.data, "/v1/key/create/audited") == NULL);
	CHECK(log_audit_accepting());
	buf_free(&got);
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
	close(wfd);
	close(rfd);
	unlink(fifo);
}

/* Files are created 0600 whatever the umask, never through a symbolic link. */
static void test_log_file_mode_and_links(void)
{
	unlink(audit_path);
	mode_t old = umask(0);
	configure(LOG_LEVEL_INFO, LOG_LEVEL_INFO);
	umask(old);
	struct stat st;
	CHECK(stat(audit_path, &st) == 0 && (st.st_mode & 07777) == 0600);
	char link_path[300], target[300];
	snprintf(link_path, sizeof(link_path), "%s/link.log", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	CHECK_EQ_INT(symlink(target, link_path), 0);
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.audit_level = LOG_LEVEL_INFO;
	cfg.log.audit_file = link_path;
	char err[256] = "";
	CHECK_EQ_INT(log_configure(&cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "is a symbolic link") != NULL);
	CHECK(access(target, F_OK) != 0);
	unlink(link_path);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	metrics_init();
	if (!mkdtemp(dir))
		return 1;
	snprintf(error_path, sizeof(error_path), "%s/error.log", dir);
	snprintf(audit_path, sizeof(audit_path), "%s/audit.log", dir);
	RUN(test_error_log_levels);
	RUN(test_audit_line);
	RUN(test_subscribers);
	RUN(test_rate_limited_lines);
	RUN(test_stalled_stderr_never_blocks);
	RUN(test_audit_full_disk);
	RUN(test_audit_stalled_reader);
	RUN(test_log_file_mode_and_links);
	log_shutdown();
	unlink(error_path);
	unlink(audit_path);
	rmdir(dir);
	return CHECK_DONE();
}
