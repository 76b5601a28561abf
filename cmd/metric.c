/*
 * metric.c — `kesc metric [--rate 5s] [--raw]` (kes.md §9.1; cmd/kes/metric.go): reads the
 * server's Prometheus metrics every --rate until interrupted. When standard output is not a
 * terminal each reading is one line of kms-go's Metric as JSON, exactly as kes prints it; on a
 * terminal kesc prints its own summary. --raw (a kesc extension) prints the exposition text
 * once.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "keystore/json.h"

static const char METRIC_USAGE[] =
    "Usage:\n    kesc metric [options]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --rate <duration>    Scrape rate when monitoring metrics. (default: 5s)\n"
    "        --raw                Print the Prometheus exposition text once, as sent.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Reads the metrics every --rate until interrupted. When standard output is not a\n"
    "terminal each reading is one line of JSON, as kes prints it; on a terminal a\n"
    "summary.\n\n"
    "Examples:\n    $ kesc metric\n    $ kesc metric --rate 1s | jq .kes_http_request_success\n";

/* kms-go's Metric, the fields in its order. */
enum {
	M_REQUEST_OK,
	M_REQUEST_ERR,
	M_REQUEST_FAIL,
	M_REQUEST_ACTIVE,
	M_AUDIT_EVENTS,
	M_ERROR_EVENTS,
	M_UP_TIME,
	M_CPUS,
	M_USABLE_CPUS,
	M_THREADS,
	M_HEAP_ALLOC,
	M_HEAP_OBJECTS,
	M_STACK_ALLOC,
	M_COUNT
};

static const char *const FAMILIES[M_COUNT] = {
    [M_REQUEST_OK] = "kes_http_request_success",
    [M_REQUEST_ERR] = "kes_http_request_error",
    [M_REQUEST_FAIL] = "kes_http_request_failure",
    [M_REQUEST_ACTIVE] = "kes_http_request_active",
    [M_AUDIT_EVENTS] = "kes_log_audit_events",
    [M_ERROR_EVENTS] = "kes_log_error_events",
    [M_UP_TIME] = "kes_system_up_time",
    [M_CPUS] = "kes_system_num_cpu",
    [M_USABLE_CPUS] = "kes_system_num_cpu_used",
    [M_THREADS] = "kes_system_num_threads",
    [M_HEAP_ALLOC] = "kes_system_mem_heap_used",
    [M_HEAP_OBJECTS] = "kes_system_mem_heap_objects",
    [M_STACK_ALLOC] = "kes_system_mem_stack_used",
};

#define HISTOGRAM   "kes_http_response_time"
#define MAX_BUCKETS 32

struct bucket {
	int64_t le_ns; /* Go: time.Duration(1000*upper bound) * time.Millisecond */
	uint64_t count;
};

struct metric {
	double value[M_COUNT];
	struct bucket buckets[MAX_BUCKETS];
	size_t bucket_count;
	bool has_histogram;
};

/* The value of one sample line "name{…} value" or "name value" of family name, if it is one. */
static bool sample_of(const char *line, const char *name, const char **labels, double *value)
{
	size_t n = strlen(name);
	if (strncmp(line, name, n) != 0 || (line[n] != ' ' && line[n] != '{'))
		return false;
	const char *p = line + n;
	*labels = p;
	if (*p == '{') {
		p = strchr(p, '}');
		if (!p)
			return false;
		p++;
	}
	char *end = NULL;
	*value = strtod(p, &end);
	return end != p;
}

static void histogram_bucket(struct metric *m, const char *labels, double count)
{
	const char *le = strstr(labels, "le=\"");
	if (!le || m->bucket_count >= MAX_BUCKETS)
		return;
	double bound = strtod(le + 4, NULL);
	m->has_histogram = true;
	if (isinf(bound) || isnan(bound)) /* kms-go skips +Inf */
		return;
	/* kms-go's key: whole milliseconds, so bounds below 1 ms all become 0, which it deletes,
	 * and bounds within the same millisecond share a key, the later bucket's count winning. */
	int64_t le_ns = (int64_t)(1000 * bound) * GO_MILLISECOND;
	if (le_ns <= 0)
		return;
	for (size_t i = 0; i < m->bucket_count; i++)
		if (m->buckets[i].le_ns == le_ns) {
			m->buckets[i].count = (uint64_t)count;
			return;
		}
	m->buckets[m->bucket_count].le_ns = le_ns;
	m->buckets[m->bucket_count].count = (uint64_t)count;
	m->bucket_count++;
}

/* What kms-go's Client.Metrics reads from the text: the three request counters summed over
 * their codes, the last sample of every other family, the histogram's finite buckets. */
static void metric_parse(const char *text, struct metric *m)
{
	memset(m, 0, sizeof *m);
	for (const char *line = text; line && *line;) {
		const char *next = strchr(line, '\n');
		const char *labels;
		double v;
		if (*line != '#') {
			for (int i = 0; i < M_COUNT; i++)
				if (sample_of(line, FAMILIES[i], &labels, &v))
					m->value[i] = i <= M_REQUEST_FAIL ? m->value[i] + v : v;
			if (sample_of(line, HISTOGRAM "_bucket", &labels, &v))
				histogram_bucket(m, labels, v);
		}
		line = next ? next + 1 : NULL;
	}
}

static int bucket_key_cmp(const void *a, const void *b)
{
	/* Go's encoding/json sorts map keys by their text: "1000000000" < "10000000". */
	char x[32], y[32];
	snprintf(x, sizeof x, "%" PRId64, ((const struct bucket *)a)->le_ns);
	snprintf(y, sizeof y, "%" PRId64, ((const struct bucket *)b)->le_ns);
	return strcmp(x, y);
}

static void metric_json(struct buf *out, struct metric *m)
{
	struct json_writer w;
	json_writer_init(&w, out);
	json_object_begin(&w);
	for (int i = 0; i < M_COUNT; i++) {
		if (i == M_UP_TIME) {
			json_key(&w, HISTOGRAM);
			if (!m->has_histogram) {
				json_write_null(&w);
			} else {
				qsort(m->buckets, m->bucket_count, sizeof m->buckets[0],
				      bucket_key_cmp);
				json_object_begin(&w);
				for (size_t b = 0; b < m->bucket_count; b++) {
					char key[32];
					snprintf(key, sizeof key, "%" PRId64, m->buckets[b].le_ns);
					json_key(&w, key);
					json_write_uint(&w, m->buckets[b].count);
				}
				json_object_end(&w);
			}
		}
		json_key(&w, FAMILIES[i]);
		if (i == M_UP_TIME) /* time.Duration(seconds) * time.Second: whole seconds */
			json_write_int(&w, (long long)m->value[i] * GO_SECOND);
		else if (i == M_CPUS || i == M_USABLE_CPUS || i == M_THREADS)
			json_write_int(&w, (long long)m->value[i]);
		else
			json_write_uint(&w, m->value[i] > 0 ? (unsigned long long)m->value[i] : 0);
	}
	json_object_end(&w);
	buf_append_char(out, '\n');
}

static void print_duration(int width, const char *label, uint64_t seconds)
{
	uint64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
	         s = seconds % 60;
	printf("%-*s ", width, label);
	if (d)
		printf("%" PRIu64 "d ", d);
	printf("%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s\n", h, m, s);
}

/* kesc's summary for people. */
static void metric_summary(const char *text)
{
	double count = cli_metric_sum(text, "kes_http_response_time_count");
	double sum = cli_metric_sum(text, "kes_http_response_time_sum");
	printf("%-22s %.0f\n", "Requests OK (2xx)", cli_metric_sum(text, FAMILIES[M_REQUEST_OK]));
	printf("%-22s %.0f\n", "Requests denied (4xx)",
	       cli_metric_sum(text, FAMILIES[M_REQUEST_ERR]));
	printf("%-22s %.0f\n", "Requests failed (5xx)",
	       cli_metric_sum(text, FAMILIES[M_REQUEST_FAIL]));
	printf("%-22s %.0f\n", "Requests active", cli_metric_sum(text, FAMILIES[M_REQUEST_ACTIVE]));
	printf("%-22s %.3f ms\n", "Mean response time", count > 0 ? sum / count * 1000 : 0.0);
	printf("%-22s %.0f\n", "Audit events", cli_metric_sum(text, FAMILIES[M_AUDIT_EVENTS]));
	printf("%-22s %.0f\n", "Error events", cli_metric_sum(text, FAMILIES[M_ERROR_EVENTS]));
	print_duration(22, "Uptime", (uint64_t)cli_metric_sum(text, FAMILIES[M_UP_TIME]));
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Sleeps until the next reading is due; false once interrupted (SIGINT ends kes metric
 * with exit code 0). */
static bool wait_for_next(const struct timespec *due)
{
	while (!interrupted) {
		int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, due, NULL);
		if (rc == 0)
			return !interrupted;
		if (rc != EINTR)
			return false;
	}
	return false;
}

static int metric_loop(struct client *c, int64_t rate_ns, bool raw)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_interrupt; /* no SA_RESTART: the sleep is cut short */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0)
		return cli_fail("cannot handle SIGINT: %s", strerror(errno));
	bool terminal = cli_stdout_is_terminal();
	struct timespec due;
	clock_gettime(CLOCK_MONOTONIC, &due);
	while (!interrupted) {
		struct client_reply reply;
		if (client_call(c, "GET", "/v1/metrics", NULL, 0, &reply) < 0) {
			int rc = interrupted
			             ? 0
			             : cli_fail("failed to fetch metrics: %s", reply.message);
			client_reply_free(&reply);
			return rc;
		}
		const char *text = reply.body.data ? reply.body.data : "";
		if (raw) {
			fwrite(text, 1, reply.body.len, stdout);
			client_reply_free(&reply);
			return 0;
		}
		if (terminal) {
			fputs("\033[H\033[2J", stdout); /* redraw in place, as kes's UI does */
			metric_summary(text);
		} else {
			struct metric m;
			struct buf out;
			metric_parse(text, &m);
			buf_init(&out, BUF_DEFAULT_MAX);
			metric_json(&out, &m);
			fwrite(out.data ? out.data : "", 1, out.len, stdout);
			buf_free(&out);
		}
		fflush(stdout);
		client_reply_free(&reply);
		due.tv_sec += (time_t)(rate_ns / GO_SECOND);
		due.tv_nsec += (long)(rate_ns % GO_SECOND);
		if (due.tv_nsec >= GO_SECOND) {
			due.tv_sec++;
			due.tv_nsec -= GO_SECOND;
		}
		if (!wait_for_next(&due))
			break;
	}
	return 0;
}

int cmd_metric(int argc, char **argv)
{
	bool raw = false;
	const char *rate = NULL;
	const struct cli_flag flags[] = {{"raw", 0, CLI_BOOL, &raw},
	                                 {"rate", 0, CLI_STRING, &rate}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 2, true, "metric", METRIC_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	int64_t rate_ns = 5 * GO_SECOND;
	char err[256];
	if (a.count > 0) {
		rc = cli_usage_error("metric", "too many arguments");
	} else if (rate && goformat_parse_duration(rate, &rate_ns, err, sizeof err) < 0) {
		/* pflag's text for a bad --rate (a duration is no secret). */
		rc = cli_usage_error("metric", "invalid argument \"%s\" for \"--rate\" flag: %s",
		                     rate, err);
	} else if (rate_ns <= 0) {
		/* Go's time.NewTicker panics on a non-positive rate; kesc says why. */
		rc = cli_usage_error("metric", "--rate must be positive");
	} else {
		struct client *c = client_open_or_report(&a.client);
		rc = c ? metric_loop(c, rate_ns, raw) : 1;
		client_close(c);
	}
	cli_args_free(&a);
	return rc;
}
