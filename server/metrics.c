/*
 * metrics.c — /v1/metrics in Prometheus text format 0.0.4 with KES's metric names
 * (kes.md §9.1), plus kesc's keystore, cache, TLS, connection, reload and log counters.
 *
 * Request counters are sharded: each thread picks one of SHARD_COUNT cache-line-aligned
 * shards the first time it counts and only ever adds to that one (relaxed atomics), so loop
 * threads never contend on a shared line. Rendering sums the shards.
 */
#include "server/metrics.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/x509_crt.h>

#include "keystore/secmem.h"
#include "server/key_stats.h"

#define SHARD_COUNT 16
#define CODE_MIN    100
#define CODE_COUNT  500 /* 100..599 */

/* Upper bounds of the latency histogram in ns: finer ones from 50 µs (a cache hit takes tens of
 * µs, so KES's smallest bucket, 10 ms, held every request), then exactly KES's buckets, so
 * queries on le="0.01" … le="10" keep working. The labels are printed as Go prints floats. */
static const int64_t BUCKET_NS[] = {50000,      100000,     250000,     500000,     1000000,
                                    2500000,    5000000,    10000000,   50000000,   100000000,
                                    250000000,  500000000,  1000000000, 1500000000, 3000000000,
                                    5000000000, 10000000000};
#define BUCKET_COUNT (sizeof BUCKET_NS / sizeof BUCKET_NS[0])

static const char *const HANDSHAKE_LABELS[METRICS_HANDSHAKE_REASONS] = {
    [METRICS_HANDSHAKE_NO_CERT] = "no_certificate",
    [METRICS_HANDSHAKE_UNTRUSTED] = "untrusted",
    [METRICS_HANDSHAKE_EXPIRED] = "expired",
    [METRICS_HANDSHAKE_BAD_CERT] = "bad_certificate",
    [METRICS_HANDSHAKE_PROTOCOL] = "protocol",
    [METRICS_HANDSHAKE_TIMEOUT] = "timeout",
    [METRICS_HANDSHAKE_PLAIN_HTTP] = "plain_http",
    [METRICS_HANDSHAKE_CLOSED] = "closed",
    [METRICS_HANDSHAKE_OTHER] = "other",
};
static const char *const REFUSAL_LABELS[METRICS_REFUSED_REASONS] = {
    [METRICS_REFUSED_MAX_CONNECTIONS] = "max_connections",
    [METRICS_REFUSED_DESCRIPTORS] = "descriptors",
    [METRICS_REFUSED_PER_CLIENT] = "per_client",
    [METRICS_REFUSED_SHED] = "shed",
    [METRICS_REFUSED_TENANT] = "tenant",
    [METRICS_REFUSED_OTHER] = "other",
};
static const char *const AUDIT_FAILURE_LABELS[METRICS_AUDIT_REASONS] = {
    [METRICS_AUDIT_WRITE_ERROR] = "error",
    [METRICS_AUDIT_TIMEOUT] = "timeout",
    [METRICS_AUDIT_QUEUE_FULL] = "queue_full",
};

struct shard {
	_Atomic uint64_t codes[CODE_COUNT];
	/* Per bucket, not cumulative; the last one counts what is above every bound. The
	 * histogram's count is their sum, so +Inf and _count always agree with the buckets. */
	_Atomic uint64_t buckets[BUCKET_COUNT + 1];
	_Atomic uint64_t latency_sum_ns;
	_Atomic int64_t active;
	_Atomic int64_t connections;
	_Atomic uint64_t error_events;  /* delivered to /v1/log/error subscribers (KES's meaning) */
	_Atomic uint64_t audit_events;  /* delivered to /v1/log/audit subscribers (KES's meaning) */
	_Atomic uint64_t error_lines;   /* written to the error log */
	_Atomic uint64_t audit_records; /* written to the audit log */
	_Atomic uint64_t handshake_failures[METRICS_HANDSHAKE_REASONS];
	_Atomic uint64_t refused[METRICS_REFUSED_REASONS];
} __attribute__((aligned(64)));

static struct shard shards[SHARD_COUNT];
static atomic_uint next_shard;
static _Thread_local struct shard *my_shard;
static _Atomic int64_t start_ns;

/* Rare events: plain atomics. */
static _Atomic uint64_t reloads_ok, reloads_failed, log_dropped;
static _Atomic uint64_t audit_failures[METRICS_AUDIT_REASONS];
static _Atomic int64_t server_cert_expiry;

/* The earliest client certificate expiry of the current and the previous window. */
#define CLIENT_CERT_WINDOW_S (15 * 60)
static struct {
	pthread_mutex_t lock;
	int64_t window_start;
	int64_t current, previous; /* 0 = none seen */
} client_certs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void remember_start(void)
{
	int64_t zero = 0;
	atomic_compare_exchange_strong(&start_ns, &zero, now_ns());
}

static struct shard *shard_of_thread(void)
{
	if (!my_shard)
		my_shard = &shards[atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) %
		                   SHARD_COUNT];
	return my_shard;
}

void metrics_init(void)
{
	remember_start();
}

void metrics_request_done(int status, int64_t latency_ns)
{
	struct shard *s = shard_of_thread();
	if (status >= CODE_MIN && status < CODE_MIN + CODE_COUNT)
		atomic_fetch_add_explicit(&s->codes[status - CODE_MIN], 1, memory_order_relaxed);
	if (latency_ns < 0)
		latency_ns = 0;
	size_t b = 0;
	while (b < BUCKET_COUNT && latency_ns > BUCKET_NS[b])
		b++;
	atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->latency_sum_ns, (uint64_t)latency_ns, memory_order_relaxed);
}

void metrics_request_active(int delta)
{
	atomic_fetch_add_explicit(&shard_of_thread()->active, delta, memory_order_relaxed);
}

void metrics_log_written(bool audit)
{
	struct shard *s = shard_of_thread();
	atomic_fetch_add_explicit(audit ? &s->audit_records : &s->error_lines, 1,
	                          memory_order_relaxed);
}

void metrics_log_streamed(bool audit, uint64_t n)
{
	struct shard *s = shard_of_thread();
	atomic_fetch_add_explicit(audit ? &s->audit_events : &s->error_events, n,
	                          memory_order_relaxed);
}

void metrics_connection(int delta)
{
	atomic_fetch_add_explicit(&shard_of_thread()->connections, delta, memory_order_relaxed);
}

void metrics_count_handshake_failure(enum metrics_handshake_failure reason)
{
	if ((unsigned)reason >= METRICS_HANDSHAKE_REASONS)
		reason = METRICS_HANDSHAKE_OTHER;
	atomic_fetch_add_explicit(&shard_of_thread()->handshake_failures[reason], 1,
	                          memory_order_relaxed);
}

void metrics_count_conn_refused(enum metrics_conn_refusal reason)
{
	if ((unsigned)reason >= METRICS_REFUSED_REASONS)
		reason = METRICS_REFUSED_OTHER;
	atomic_fetch_add_explicit(&shard_of_thread()->refused[reason], 1, memory_order_relaxed);
}

void metrics_count_reload(bool ok)
{
	atomic_fetch_add_explicit(ok ? &reloads_ok : &reloads_failed, 1, memory_order_relaxed);
}

void metrics_count_audit_failure(enum metrics_audit_failure reason)
{
	if ((unsigned)reason >= METRICS_AUDIT_REASONS)
		reason = METRICS_AUDIT_WRITE_ERROR;
	atomic_fetch_add_explicit(&audit_failures[reason], 1, memory_order_relaxed);
}

void metrics_count_log_dropped(uint64_t lines)
{
	atomic_fetch_add_explicit(&log_dropped, lines, memory_order_relaxed);
}

void metrics_set_server_cert_expiry(int64_t not_after)
{
	atomic_store_explicit(&server_cert_expiry, not_after, memory_order_relaxed);
}

/* Starts a new window when the current one is over. Called with the lock held. */
static void rotate_client_window(int64_t now)
{
	if (now - client_certs.window_start < CLIENT_CERT_WINDOW_S)
		return;
	/* More than one window passed: the previous one saw nothing either. */
	bool adjacent = now - client_certs.window_start < 2 * CLIENT_CERT_WINDOW_S;
	client_certs.previous = adjacent ? client_certs.current : 0;
	client_certs.current = 0;
	client_certs.window_start = now;
}

void metrics_observe_client_cert_expiry(int64_t not_after)
{
	if (not_after <= 0)
		return;
	pthread_mutex_lock(&client_certs.lock);
	rotate_client_window((int64_t)time(NULL));
	if (!client_certs.current || not_after < client_certs.current)
		client_certs.current = not_after;
	pthread_mutex_unlock(&client_certs.lock);
}

static int64_t client_cert_earliest(void)
{
	pthread_mutex_lock(&client_certs.lock);
	rotate_client_window((int64_t)time(NULL));
	int64_t a = client_certs.current, b = client_certs.previous;
	pthread_mutex_unlock(&client_certs.lock);
	if (!a || (b && b < a))
		return b;
	return a;
}

int64_t metrics_cert_not_after(const struct mbedtls_x509_crt *crt)
{
	if (!crt)
		return 0;
	const mbedtls_x509_time *t = &crt->valid_to;
	struct tm tm = {
	    .tm_year = t->year - 1900,
	    .tm_mon = t->mon - 1,
	    .tm_mday = t->day,
	    .tm_hour = t->hour,
	    .tm_min = t->min,
	    .tm_sec = t->sec,
	};
	return (int64_t)timegm(&tm);
}

/* Sum of one field over all shards; offset into struct shard. */
#define SUM_U(field)                                                                           \
	({                                                                                     \
		uint64_t sum_ = 0;                                                             \
		for (size_t i_ = 0; i_ < SHARD_COUNT; i_++)                                    \
			sum_ += atomic_load_explicit(&shards[i_].field, memory_order_relaxed); \
		sum_;                                                                          \
	})
#define SUM_I(field)                                                                           \
	({                                                                                     \
		int64_t sum_ = 0;                                                              \
		for (size_t i_ = 0; i_ < SHARD_COUNT; i_++)                                    \
			sum_ += atomic_load_explicit(&shards[i_].field, memory_order_relaxed); \
		sum_;                                                                          \
	})

/* As Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus's Go client uses: the
 * shortest digits that read back as v, in exponent form when the exponent is below -4 or at
 * least 6 (10 is "10", 5e-05 is "5e-05", 1234567 is "1.234567e+06"). */
static void write_float(struct buf *out, double v)
{
	char text[48];
	if (v == 0) {
		buf_append_char(out, '0');
		return;
	}
	int digits = 1;
	for (; digits <= 17; digits++) {
		snprintf(text, sizeof text, "%.*e", digits - 1, v);
		if (strtod(text, NULL) == v)
			break;
	}
	const char *e = strchr(text, 'e');
	int exp = e ? atoi(e + 1) : 0;
	if (exp >= -4 && exp < 6) {
		int decimals = digits - 1 - exp;
		snprintf(text, sizeof text, "%.*f", decimals > 0 ? decimals : 0, v);
	}
	buf_append_str(out, text);
}

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Go's client prints a labelled family only once it has a sample: so does this. */
static void request_counter(struct buf *out, const char *name, const char *help, int lo)
{
	uint64_t n[100];
	bool any = false;
	for (int i = 0; i < 100; i++) {
		n[i] = SUM_U(codes[lo + i - CODE_MIN]);
		any |= n[i] != 0;
	}
	if (!any)
		return;
	family(out, name, "counter", help);
	for (int i = 0; i < 100; i++)
		if (n[i])
			buf_printf(out, "%s{code=\"%d\"} %llu\n", name, lo + i,
			           (unsigned long long)n[i]);
}

/* One pass over the shards: every bucket, +Inf and _count come from the same reads, so the
 * exposition is a valid histogram even while other threads count. */
static void histogram(struct buf *out)
{
	const char *name = "kes_http_response_time";
	uint64_t per_bucket[BUCKET_COUNT + 1] = {0};
	for (size_t i = 0; i < SHARD_COUNT; i++)
		for (size_t b = 0; b <= BUCKET_COUNT; b++)
			per_bucket[b] +=
			    atomic_load_explicit(&shards[i].buckets[b], memory_order_relaxed);
	family(out, name, "histogram",
	       "Histogram of request response times spawning from 50us to 10s (KES: 10ms to "
	       "10s).");
	uint64_t cumulative = 0;
	for (size_t b = 0; b < BUCKET_COUNT; b++) {
		cumulative += per_bucket[b];
		buf_printf(out, "%s_bucket{le=\"", name);
		write_float(out, (double)BUCKET_NS[b] / 1e9);
		buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
	}
	uint64_t count = cumulative + per_bucket[BUCKET_COUNT];
	buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
	buf_printf(out, "%s_sum ", name);
	write_float(out, (double)SUM_U(latency_sum_ns) / 1e9);
	buf_append_char(out, '\n');
	buf_printf(out, "%s_count %llu\n", name, (unsigned long long)count);
}

static void gauge(struct buf *out, const char *name, const char *help, double v)
{
	family(out, name, "gauge", help);
	buf_printf(out, "%s ", name);
	write_float(out, v);
	buf_append_char(out, '\n');
}

static void counter(struct buf *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "counter", help);
	buf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

/* A counter family with one sample per label value (all of them, zeros included, so that
 * rate() sees a series from the start). */
static void labelled_counter(struct buf *out, const char *name, const char *help, const char *label,
                             const char *const *values, const uint64_t *counts, size_t n)
{
	family(out, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
		           (unsigned long long)counts[i]);
}

static void kesc_metrics(struct buf *out)
{
	uint64_t hs[METRICS_HANDSHAKE_REASONS], refused[METRICS_REFUSED_REASONS];
	uint64_t audit[METRICS_AUDIT_REASONS];
	for (size_t r = 0; r < METRICS_HANDSHAKE_REASONS; r++)
		hs[r] = SUM_U(handshake_failures[r]);
	for (size_t r = 0; r < METRICS_REFUSED_REASONS; r++)
		refused[r] = SUM_U(refused[r]);
	for (size_t r = 0; r < METRICS_AUDIT_REASONS; r++)
		audit[r] = atomic_load_explicit(&audit_failures[r], memory_order_relaxed);
	labelled_counter(out, "kesc_tls_handshake_failures_total",
	                 "TLS handshakes that failed, by reason.", "reason", HANDSHAKE_LABELS, hs,
	                 METRICS_HANDSHAKE_REASONS);
	labelled_counter(out, "kesc_connections_refused_total",
	                 "Connections refused or closed before being served, by reason.", "reason",
	                 REFUSAL_LABELS, refused, METRICS_REFUSED_REASONS);
	static const char *const results[] = {"ok", "failed"};
	uint64_t reloads[] = {atomic_load(&reloads_ok), atomic_load(&reloads_failed)};
	labelled_counter(out, "kesc_config_reloads_total",
	                 "Configuration reloads (SIGHUP) applied (ok) or refused (failed).",
	                 "result", results, reloads, 2);
	labelled_counter(out, "kesc_log_audit_write_failures_total",
	                 "Audit records that could not be written, by reason.", "reason",
	                 AUDIT_FAILURE_LABELS, audit, METRICS_AUDIT_REASONS);
	counter(out, "kesc_log_error_lines_total", "Lines written to the error log.",
	        SUM_U(error_lines));
	counter(out, "kesc_log_audit_records_total",
	        "Audit records written to the audit log (write(2) returned).",
	        SUM_U(audit_records));
	counter(out, "kesc_log_error_lines_dropped_total",
	        "Error log lines lost because the error log could not keep up or failed.",
	        atomic_load(&log_dropped));
	int64_t server_cert = atomic_load(&server_cert_expiry);
	if (server_cert) {
		family(out, "kesc_tls_server_certificate_expiry_timestamp_seconds", "gauge",
		       "When the server's TLS certificate expires (notAfter), in Unix seconds.");
		buf_printf(out, "kesc_tls_server_certificate_expiry_timestamp_seconds %lld\n",
		           (long long)server_cert);
	}
	int64_t client_cert = client_cert_earliest();
	if (client_cert) {
		family(
		    out, "kesc_tls_client_certificate_expiry_timestamp_seconds", "gauge",
		    "The earliest expiry (notAfter, Unix seconds) among client certificates seen "
		    "in the last 15 to 30 minutes.");
		buf_printf(out, "kesc_tls_client_certificate_expiry_timestamp_seconds %lld\n",
		           (long long)client_cert);
	}
}

/* All CPUs the system has online (Go's runtime.NumCPU reports the usable ones; KES's help
 * text promises the available ones here, which is what a dashboard compares with). */
static long online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

static long usable_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

/* A "Name:   <number>" line of /proc/self/status, 0 if absent. */
static unsigned long long proc_status_value(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 0;
	char line[256];
	unsigned long long v = 0;
	size_t klen = strlen(key);
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			sscanf(line + klen + 1, "%llu", &v);
			break;
		}
	}
	fclose(f);
	return v;
}

static void system_gauges(struct buf *out)
{
	struct mallinfo2 mi = mallinfo2();
	int64_t start = atomic_load(&start_ns);
	double up = (double)(now_ns() - start) / 1e9;
	gauge(out, "kes_system_up_time", "The time the server has been up and running in seconds.",
	      up > 0 ? up : 0);
	gauge(out, "kes_system_num_cpu",
	      "The number of logical CPUs available on the system. It may be larger than the "
	      "number of usable CPUs.",
	      (double)online_cpus());
	gauge(out, "kes_system_num_cpu_used",
	      "The number of logical CPUs usable by the server. It may be smaller than the number "
	      "of available CPUs.",
	      (double)usable_cpus());
	gauge(out, "kes_system_num_threads",
	      "The number of concurrent co-routines/threads that currently exists.",
	      (double)proc_status_value("Threads"));
	gauge(out, "kes_system_mem_heap_used",
	      "The number of bytes that are currently allocated on the heap memory.",
	      (double)(mi.uordblks + mi.hblkhd));
	/* glibc keeps no count of live allocations; the chunks it can count are the mmapped ones
	 * plus the free-list chunks, which says nothing useful, so this stays 0 (unknown). */
	gauge(out, "kes_system_mem_heap_objects",
	      "The number of objects that are currently allocated on the heap memory.", 0);
	gauge(out, "kes_system_mem_stack_used", "The bytes of stack memory obtained from the OS.",
	      (double)proc_status_value("VmStk") * 1024);
	/* The start-up banner says whether mlock worked then; a limit reached later (a
	 * container's RLIMIT_MEMLOCK filled by a growing cache) shows only here. */
	gauge(out, "kesc_secret_memory_locked",
	      "1 while every allocation of key memory was locked in RAM (mlock), 0 once one was "
	      "refused.",
	      secmem_locking_works() ? 1.0 : 0.0);
}

static void cache_metrics(struct buf *out, struct ks_cache *cache)
{
	struct ks_cache_stats s;
	memset(&s, 0, sizeof s);
	ks_cache_get_stats(cache, &s);
	gauge(out, "kesc_keystore_latency_seconds",
	      "Latency of the last key store status probe in seconds.",
	      (double)s.store_latency_us / 1e6);
	gauge(out, "kesc_keystore_reachable",
	      "1 while the key store answers its status probe, 0 while it is offline.",
	      s.offline ? 0.0 : 1.0);
	counter(out, "kesc_cache_hits_total", "Key lookups answered from the key cache.", s.hits);
	counter(out, "kesc_cache_misses_total", "Key lookups that missed the key cache.", s.misses);
	counter(out, "kesc_keystore_reads_total", "Key reads that reached the key store.",
	        s.store_reads);
}

void metrics_render(struct buf *out, struct ks_cache *cache)
{
	remember_start();
	request_counter(out, "kes_http_request_success",
	                "Number of requests that have been served successfully.", 200);
	request_counter(out, "kes_http_request_error",
	                "Number of request that failed due to some error. (HTTP 4xx status code)",
	                400);
	request_counter(out, "kes_http_request_failure",
	                "Number of request that failed due to some internal failure. (HTTP 5xx "
	                "status code)",
	                500);
	gauge(out, "kes_http_request_active",
	      "Number of active requests that are not finished, yet.", (double)SUM_I(active));
	histogram(out);
	counter(out, "kes_log_error_events",
	        "Number of error log events written to the error log targets.",
	        SUM_U(error_events));
	counter(out, "kes_log_audit_events",
	        "Number of audit log events written to the audit log targets.",
	        SUM_U(audit_events));
	system_gauges(out);
	if (cache)
		cache_metrics(out, cache);
	gauge(out, "kesc_connections_open", "Open client TLS connections.",
	      (double)SUM_I(connections));
	kesc_metrics(out);
	key_stats_render(out); /* decrypts under old key versions (issue 14) */
}

/* ---- tenants ---- */

/* The statuses a metered request can end with; others are counted by class only. */
static const int SCOPE_CODES[] = {200, 400, 401, 403, 404, 405, 406, 409,
                                  413, 429, 500, 501, 502, 503, 504};
#define SCOPE_CODE_COUNT (sizeof SCOPE_CODES / sizeof SCOPE_CODES[0])

struct metrics_scope {
	_Atomic uint64_t codes[SCOPE_CODE_COUNT];
	_Atomic uint64_t classes[6]; /* by status / 100 */
	_Atomic uint64_t buckets[BUCKET_COUNT + 1];
	_Atomic uint64_t latency_sum_ns;
};

struct metrics_scope *metrics_scope_new(void)
{
	return calloc(1, sizeof(struct metrics_scope));
}

void metrics_scope_free(struct metrics_scope *s)
{
	free(s);
}

void metrics_scope_request_done(struct metrics_scope *s, int status, int64_t latency_ns)
{
	if (!s)
		return;
	for (size_t i = 0; i < SCOPE_CODE_COUNT; i++)
		if (SCOPE_CODES[i] == status)
			atomic_fetch_add_explicit(&s->codes[i], 1, memory_order_relaxed);
	if (status >= 100 && status < 600)
		atomic_fetch_add_explicit(&s->classes[status / 100], 1, memory_order_relaxed);
	if (latency_ns < 0)
		latency_ns = 0;
	size_t b = 0;
	while (b < BUCKET_COUNT && latency_ns > BUCKET_NS[b])
		b++;
	atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->latency_sum_ns, (uint64_t)latency_ns, memory_order_relaxed);
}

static void scope_request_counter(struct buf *out, const struct metrics_scope *s, const char *name,
                                  const char *help, int lo)
{
	family(out, name, "counter", help);
	for (size_t i = 0; i < SCOPE_CODE_COUNT; i++) {
		uint64_t n = atomic_load_explicit(&s->codes[i], memory_order_relaxed);
		if (n && SCOPE_CODES[i] >= lo && SCOPE_CODES[i] < lo + 100)
			buf_printf(out, "%s{code=\"%d\"} %llu\n", name, SCOPE_CODES[i],
			           (unsigned long long)n);
	}
}

static void scope_histogram(struct buf *out, const struct metrics_scope *s)
{
	const char *name = "kes_http_response_time";
	family(out, name, "histogram",
	       "Histogram of request response times spawning from 50us to 10s (KES: 10ms to "
	       "10s).");
	uint64_t cumulative = 0;
	for (size_t b = 0; b < BUCKET_COUNT; b++) {
		cumulative += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
		buf_printf(out, "%s_bucket{le=\"", name);
		write_float(out, (double)BUCKET_NS[b] / 1e9);
		buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
	}
	uint64_t count =
	    cumulative + atomic_load_explicit(&s->buckets[BUCKET_COUNT], memory_order_relaxed);
	buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
	buf_printf(out, "%s_sum ", name);
	write_float(out, (double)atomic_load(&s->latency_sum_ns) / 1e9);
	buf_append_char(out, '\n');
	buf_printf(out, "%s_count %llu\n", name, (unsigned long long)count);
}

void metrics_render_scope(struct buf *out, const struct metrics_scope *s, struct ks_cache *cache,
                          const char *tenant)
{
	remember_start();
	scope_request_counter(out, s, "kes_http_request_success",
	                      "Number of requests that have been served successfully.", 200);
	scope_request_counter(out, s, "kes_http_request_error",
	                      "Number of request that failed due to some error. (HTTP 4xx status "
	                      "code)",
	                      400);
	scope_request_counter(out, s, "kes_http_request_failure",
	                      "Number of request that failed due to some internal failure. (HTTP "
	                      "5xx status code)",
	                      500);
	scope_histogram(out, s);
	system_gauges(out);
	if (cache)
		cache_metrics(out, cache);
	key_stats_render_tenant(out, tenant); /* its own keys' old versions */
}

/* One sample per tenant of a family; value(i) gives tenant i's. */
static void tenant_family(struct buf *out, const char *name, const char *type, const char *help,
                          const struct metrics_tenant *t, size_t n, const char *extra_label,
                          const char *extra_value,
                          uint64_t (*value)(const struct metrics_tenant *, const void *),
                          const void *arg)
{
	if (type)
		family(out, name, type, help);
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "%s{tenant=\"%s\"", name, t[i].name);
		if (extra_label)
			buf_printf(out, ",%s=\"%s\"", extra_label, extra_value);
		buf_printf(out, "} %llu\n", (unsigned long long)value(&t[i], arg));
	}
}

static uint64_t v_class(const struct metrics_tenant *t, const void *arg)
{
	return t->scope ? atomic_load(&t->scope->classes[*(const int *)arg]) : 0;
}

static uint64_t v_count(const struct metrics_tenant *t, const void *arg)
{
	(void)arg;
	uint64_t n = 0;
	for (size_t b = 0; t->scope && b <= BUCKET_COUNT; b++)
		n += atomic_load(&t->scope->buckets[b]);
	return n;
}

static uint64_t v_cache(const struct metrics_tenant *t, const void *arg)
{
	struct ks_cache_stats st;
	memset(&st, 0, sizeof st);
	if (t->cache)
		ks_cache_get_stats(t->cache, &st);
	switch (*(const int *)arg) {
	case 0:
		return st.hits;
	case 1:
		return st.misses;
	case 2:
		return st.entries;
	default:
		return t->cache && !st.offline;
	}
}

void metrics_render_tenants(struct buf *out, const struct metrics_tenant *t, size_t n)
{
	static const int classes[] = {2, 4, 5};
	static const char *const class_names[] = {"2xx", "4xx", "5xx"};
	family(out, "kesc_tenant_requests_total", "counter",
	       "Metered requests of a tenant, by class of status code.");
	for (size_t c = 0; c < 3; c++)
		tenant_family(out, "kesc_tenant_requests_total", NULL, NULL, t, n, "class",
		              class_names[c], v_class, &classes[c]);
	family(out, "kesc_tenant_request_duration_seconds", "summary",
	       "Time a tenant's metered requests took, in seconds.");
	for (size_t i = 0; i < n; i++) {
		buf_printf(out, "kesc_tenant_request_duration_seconds_sum{tenant=\"%s\"} ",
		           t[i].name);
		write_float(out, t[i].scope ? (double)atomic_load(&t[i].scope->latency_sum_ns) / 1e9
		                            : 0);
		buf_append_char(out, '\n');
	}
	tenant_family(out, "kesc_tenant_request_duration_seconds_count", NULL, NULL, t, n, NULL,
	              NULL, v_count, NULL);
	static const int which[] = {0, 1, 2, 3};
	tenant_family(out, "kesc_tenant_cache_hits_total", "counter",
	              "Key lookups of a tenant answered from its cache.", t, n, NULL, NULL, v_cache,
	              &which[0]);
	tenant_family(out, "kesc_tenant_cache_misses_total", "counter",
	              "Key lookups of a tenant that missed its cache.", t, n, NULL, NULL, v_cache,
	              &which[1]);
	tenant_family(out, "kesc_tenant_cache_keys", "gauge", "Keys a tenant's cache holds.", t, n,
	              NULL, NULL, v_cache, &which[2]);
	tenant_family(out, "kesc_tenant_keystore_up", "gauge",
	              "1 while a tenant's keystore answers its cache's probes, else 0.", t, n, NULL,
	              NULL, v_cache, &which[3]);
}
