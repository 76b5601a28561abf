/*
 * metrics.c — /v1/metrics in Prometheus text format 0.0.4 with KES's metric names
 * (kes.md §9.1), plus kesc's keystore and cache counters.
 *
 * Request counters are sharded: each thread picks one of SHARD_COUNT cache-line-aligned
 * shards the first time it counts and only ever adds to that one (relaxed atomics), so loop
 * threads never contend on a shared line. Rendering sums the shards.
 */
#include "server/metrics.h"

#include <malloc.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SHARD_COUNT 16
#define CODE_MIN    100
#define CODE_COUNT  500 /* 100..599 */

/* KES's histogram buckets, in seconds (and ns for counting). */
static const char *const BUCKET_LABELS[] = {"0.01", "0.05", "0.1", "0.25", "0.5",
                                            "1",    "1.5",  "3",   "5",    "10"};
static const int64_t BUCKET_NS[] = {10000000,   50000000,   100000000,  250000000,  500000000,
                                    1000000000, 1500000000, 3000000000, 5000000000, 10000000000};
#define BUCKET_COUNT (sizeof BUCKET_NS / sizeof BUCKET_NS[0])

struct shard {
	_Atomic uint64_t codes[CODE_COUNT];
	_Atomic uint64_t buckets[BUCKET_COUNT]; /* per bucket, not cumulative */
	_Atomic uint64_t observations;
	_Atomic uint64_t latency_sum_ns;
	_Atomic int64_t active;
	_Atomic int64_t connections;
	_Atomic uint64_t error_events;
	_Atomic uint64_t audit_events;
} __attribute__((aligned(64)));

static struct shard shards[SHARD_COUNT];
static atomic_uint next_shard;
static _Thread_local struct shard *my_shard;
static _Atomic int64_t start_ns;

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
	for (size_t i = 0; i < BUCKET_COUNT; i++) {
		if (latency_ns <= BUCKET_NS[i]) {
			atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
			break;
		}
	}
	atomic_fetch_add_explicit(&s->observations, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->latency_sum_ns, (uint64_t)latency_ns, memory_order_relaxed);
}

void metrics_request_active(int delta)
{
	atomic_fetch_add_explicit(&shard_of_thread()->active, delta, memory_order_relaxed);
}

void metrics_log_event(bool audit)
{
	struct shard *s = shard_of_thread();
	atomic_fetch_add_explicit(audit ? &s->audit_events : &s->error_events, 1,
	                          memory_order_relaxed);
}

void metrics_connection(int delta)
{
	atomic_fetch_add_explicit(&shard_of_thread()->connections, delta, memory_order_relaxed);
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

/* Go prints the shortest text that reads back as the same double; so do we. */
static void write_float(struct buf *out, double v)
{
	char text[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(text, sizeof text, "%.*g", prec, v);
		if (strtod(text, NULL) == v)
			break;
	}
	buf_append_str(out, text);
}

static void family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void request_counter(struct buf *out, const char *name, const char *help, int lo)
{
	family(out, name, "counter", help);
	for (int code = lo; code < lo + 100; code++) {
		uint64_t n = SUM_U(codes[code - CODE_MIN]);
		if (n)
			buf_printf(out, "%s{code=\"%d\"} %llu\n", name, code,
			           (unsigned long long)n);
	}
}

static void histogram(struct buf *out)
{
	const char *name = "kes_http_response_time";
	family(out, name, "histogram",
	       "Histogram of request response times spawning from 10ms to 10s.");
	uint64_t cumulative = 0;
	for (size_t b = 0; b < BUCKET_COUNT; b++) {
		cumulative += SUM_U(buckets[b]);
		buf_printf(out, "%s_bucket{le=\"%s\"} %llu\n", name, BUCKET_LABELS[b],
		           (unsigned long long)cumulative);
	}
	uint64_t count = SUM_U(observations);
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
	gauge(out, "kes_system_num_cpu", "The number of logical CPU cores available on the system.",
	      (double)usable_cpus());
	gauge(out, "kes_system_num_cpu_used",
	      "The number of logical CPU cores usable by the server.", (double)usable_cpus());
	gauge(out, "kes_system_num_threads", "The number of OS threads of the server.",
	      (double)proc_status_value("Threads"));
	gauge(out, "kes_system_mem_heap_used",
	      "The number of bytes that are currently allocated on the heap memory.",
	      (double)(mi.uordblks + mi.hblkhd));
	/* glibc keeps no count of live allocations; the chunks it can count are the mmapped ones
	 * plus the free-list chunks, which says nothing useful, so this stays 0 (unknown). */
	gauge(out, "kes_system_mem_heap_objects",
	      "The number of objects that are currently allocated on the heap memory (0: unknown).",
	      0);
	gauge(out, "kes_system_mem_stack_used",
	      "The number of bytes that are currently used on the stack memory.",
	      (double)proc_status_value("VmStk") * 1024);
}

static void cache_metrics(struct buf *out, struct ks_cache *cache)
{
	struct ks_cache_stats s;
	memset(&s, 0, sizeof s);
	ks_cache_get_stats(cache, &s);
	gauge(out, "kesc_keystore_latency_seconds",
	      "Latency of the last key store status probe in seconds.",
	      (double)s.store_latency_us / 1e6);
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
	        "Number of error log events written to error log targets.", SUM_U(error_events));
	counter(out, "kes_log_audit_events",
	        "Number of audit log events written to audit log targets.", SUM_U(audit_events));
	system_gauges(out);
	if (cache)
		cache_metrics(out, cache);
	gauge(out, "kesc_connections_open", "Open client TLS connections.",
	      (double)SUM_I(connections));
}
