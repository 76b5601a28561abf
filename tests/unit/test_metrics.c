/* test_metrics.c — /v1/metrics rendering (server/metrics.c): the latency histogram's buckets,
 * its consistency while other threads count, and kesc's own counters and gauges. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "tests/unit/check.h"

static char *render(void)
{
	struct buf b;
	buf_init(&b, 0);
	metrics_render(&b, NULL);
	char *text = strdup(b.data ? b.data : "");
	buf_free(&b);
	return text;
}

/* The value of the sample line that starts with prefix (e.g. "name{le=\"1\"} "), or -1. */
static double sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, prefix, n))
			return strtod(p + n, NULL);
	return -1;
}

static void test_fine_buckets(void)
{
	metrics_init();
	char *before = render();
	metrics_request_done(200, 80 * 1000);       /* 80 µs */
	metrics_request_done(200, 700 * 1000);      /* 0.7 ms */
	metrics_request_done(200, 3 * 1000 * 1000); /* 3 ms */
	char *text = render();
	struct {
		const char *le;
		double added;
	} want[] = {
	    {"5e-05", 0}, {"0.0001", 1}, {"0.00025", 1}, {"0.0005", 1}, {"0.001", 2}, {"0.0025", 2},
	    {"0.005", 3}, {"0.01", 3},   {"0.05", 3},    {"0.1", 3},    {"0.25", 3},  {"0.5", 3},
	    {"1", 3},     {"1.5", 3},    {"3", 3},       {"5", 3},      {"10", 3},    {"+Inf", 3},
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		char prefix[96];
		snprintf(prefix, sizeof prefix, "kes_http_response_time_bucket{le=\"%s\"} ",
		         want[i].le);
		double b = sample(before, prefix), a = sample(text, prefix);
		CHECK(a >= 0 && b >= 0);
		CHECK_EQ_INT((long long)(a - b), (long long)want[i].added);
		if ((long long)(a - b) != (long long)want[i].added)
			fprintf(stderr, "  bucket le=%s\n", want[i].le);
	}
	CHECK(strstr(text, "# HELP kes_http_response_time ") != NULL);
	free(before);
	free(text);
}

static atomic_bool stop_counting;

static void *count_requests(void *arg)
{
	int64_t step = (int64_t)(intptr_t)arg;
	int64_t latency = 0;
	while (!atomic_load(&stop_counting)) {
		latency = (latency + step) % 12000000000LL; /* 0 .. 12 s: every bucket and above */
		metrics_request_done(200, latency);
	}
	return NULL;
}

/* Every render is a valid histogram while other threads count: buckets never decrease with
 * le, +Inf equals _count and is at least every bucket. Before the one-pass read, +Inf came
 * from a separate counter read after the buckets and could be smaller than le="10". */
static void test_histogram_consistent_while_counting(void)
{
	pthread_t t[3];
	atomic_store(&stop_counting, false);
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, count_requests,
		               (void *)(intptr_t)(7919 * (i + 1) + 13));
	int bad = 0;
	for (int round = 0; round < 5000 && !bad; round++) {
		char *text = render();
		double prev = 0, inf = -1, count = sample(text, "kes_http_response_time_count ");
		for (const char *p = strstr(text, "kes_http_response_time_bucket{le=\""); p;
		     p = strstr(p + 1, "kes_http_response_time_bucket{le=\"")) {
			const char *v = strstr(p, "} ");
			double x = strtod(v + 2, NULL);
			if (x < prev)
				bad++;
			prev = x;
			if (!strncmp(p + 34, "+Inf", 4))
				inf = x;
		}
		if (inf < 0 || inf != count || inf < prev)
			bad++;
		free(text);
	}
	atomic_store(&stop_counting, true);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(bad, 0);
}

static void test_kesc_counters(void)
{
	metrics_count_handshake_failure(METRICS_HANDSHAKE_NO_CERT);
	metrics_count_handshake_failure(METRICS_HANDSHAKE_EXPIRED);
	metrics_count_handshake_failure(METRICS_HANDSHAKE_EXPIRED);
	metrics_count_conn_refused(METRICS_REFUSED_MAX_CONNECTIONS);
	metrics_count_conn_refused(METRICS_REFUSED_DESCRIPTORS);
	metrics_count_reload(true);
	metrics_count_reload(false);
	metrics_count_reload(false);
	metrics_count_audit_failure(METRICS_AUDIT_WRITE_ERROR);
	metrics_count_audit_failure(METRICS_AUDIT_TIMEOUT);
	metrics_count_log_dropped(7);
	metrics_set_server_cert_expiry(1900000000);
	char *text = render();
	static const char *const lines[] = {
	    "# TYPE kesc_tls_handshake_failures_total counter\n",
	    "kesc_tls_handshake_failures_total{reason=\"no_certificate\"} 1\n",
	    "kesc_tls_handshake_failures_total{reason=\"expired\"} 2\n",
	    "kesc_tls_handshake_failures_total{reason=\"untrusted\"} 0\n",
	    "# TYPE kesc_connections_refused_total counter\n",
	    "kesc_connections_refused_total{reason=\"max_connections\"} 1\n",
	    "kesc_connections_refused_total{reason=\"descriptors\"} 1\n",
	    "# TYPE kesc_config_reloads_total counter\n",
	    "kesc_config_reloads_total{result=\"ok\"} 1\n",
	    "kesc_config_reloads_total{result=\"failed\"} 2\n",
	    "# TYPE kesc_log_audit_write_failures_total counter\n",
	    "kesc_log_audit_write_failures_total{reason=\"error\"} 1\n",
	    "kesc_log_audit_write_failures_total{reason=\"timeout\"} 1\n",
	    "kesc_log_audit_write_failures_total{reason=\"queue_full\"} 0\n",
	    "# TYPE kesc_log_error_lines_dropped_total counter\n",
	    "\nkesc_log_error_lines_dropped_total 7\n",
	    "# TYPE kesc_tls_server_certificate_expiry_timestamp_seconds gauge\n",
	    "\nkesc_tls_server_certificate_expiry_timestamp_seconds 1900000000\n",
	};
	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
		CHECK(strstr(text, lines[i]) != NULL);
		if (!strstr(text, lines[i]))
			fprintf(stderr, "  missing: %s", lines[i]);
	}
	/* No client certificate seen: no sample, so no family (as Go's client). */
	CHECK(strstr(text, "kesc_tls_client_certificate_expiry_timestamp_seconds") == NULL);
	/* No client certificate seen yet: the family has no sample rather than a misleading 0. */
	CHECK(strstr(text, "\nkesc_tls_client_certificate_expiry_timestamp_seconds ") == NULL);
	free(text);

	/* Client certificates: the earliest notAfter seen counts. */
	metrics_observe_client_cert_expiry(2000000000);
	metrics_observe_client_cert_expiry(1800000000);
	metrics_observe_client_cert_expiry(1850000000);
	text = render();
	CHECK(strstr(text, "\nkesc_tls_client_certificate_expiry_timestamp_seconds 1800000000\n") !=
	      NULL);
	free(text);
}

int main(void)
{
	RUN(test_fine_buckets);
	RUN(test_histogram_consistent_while_counting);
	RUN(test_kesc_counters);
	return CHECK_DONE();
}
