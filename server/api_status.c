/*
 * api_status.c — /version, /v1/ready, /v1/status, /v1/metrics and /v1/api (kes.md §1.7).
 */
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kesc_version.h"
#include "server/api_errors.h"
#include "server/api_util.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/state.h"

#include "kesc_commit.h"
#ifndef KESC_COMMIT
#define KESC_COMMIT "<unknown>" /* KES's text when the build carries no VCS revision */
#endif

#if defined(__x86_64__)
#define KESC_ARCH "amd64"
#elif defined(__aarch64__)
#define KESC_ARCH "arm64"
#elif defined(__i386__)
#define KESC_ARCH "386"
#elif defined(__arm__)
#define KESC_ARCH "arm"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define KESC_ARCH "ppc64le"
#elif defined(__s390x__)
#define KESC_ARCH "s390x"
#elif defined(__riscv) && __riscv_xlen == 64
#define KESC_ARCH "riscv64"
#else
#define KESC_ARCH "unknown"
#endif

enum api_outcome api_status_version(struct api_call *c)
{
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "version");
	json_write_string(&w, KESC_VERSION);
	json_key(&w, "commit");
	json_write_string(&w, KESC_COMMIT);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}

/*
 * Readiness probes come every few seconds; while the store is down each would log the same
 * line. Log a store status only when it differs from the last one logged (a new result or a
 * new reason), and once when it is ok again. The store logs its own transitions too.
 */
static void status_log(struct status_memo *m, int rc, const char *msg)
{
	pthread_mutex_lock(&m->lock);
	char *last = m->last_msg; /* (GCC 12 misjudges the array's size through the struct) */
	bool changed = rc != m->last_rc || (rc != KS_OK && strcmp(msg, last) != 0);
	if (changed) {
		if (rc == KS_OK)
			log_info("key store status: ok");
		else
			log_warn("key store status: %s: %s", ks_result_name(rc), msg);
		m->last_rc = rc;
		snprintf(m->last_msg, sizeof(m->last_msg), "%s", rc == KS_OK ? "" : msg);
	}
	pthread_mutex_unlock(&m->lock);
}

enum api_outcome api_status_ready(struct api_call *c)
{
	if (!c->may_block)
		return API_NEEDS_WORKER;
	struct ks_status status;
	struct ks_err err = {{0}};
	int rc = ks_cache_status(server_state_cache(c->st), &status, &err);
	status_log(server_state_status_memo(c->st), rc, err.msg);
	if (rc == KS_OK) {
		api_reply_empty(c->resp);
		return API_DONE;
	}
	api_error(c->resp,
	          rc == KS_UNREACHABLE ? API_ERR_STORE_UNREACHABLE : API_ERR_STORE_UNAVAILABLE,
	          NULL, NULL);
	return API_DONE;
}

/* CPUs this process may run on (Go's runtime.NumCPU). */
static long usable_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

/* Bytes of the main thread's stack in use (VmStk), 0 if unknown. */
static unsigned long long stack_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 0;
	char line[256];
	unsigned long long kb = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmStk: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * Always 200. When the store is down we send keystore_unavailable AND keystore_unreachable:
 * KES HEAD sends only the latter, which kms-go refuses to decode ("keystore is unreachable
 * but not unavailable"), so MinIO marked the endpoint offline instead of reporting why.
 */
enum api_outcome api_status_status(struct api_call *c)
{
	if (!c->may_block)
		return API_NEEDS_WORKER;
	struct ks_status status = {0};
	struct ks_err err = {{0}};
	int rc = ks_cache_status(server_state_cache(c->st), &status, &err);
	status_log(server_state_status_memo(c->st), rc, err.msg);
	const struct config *cfg = server_state_config(c->st);
	long cpus = usable_cpus();
	long used = cfg && cfg->server.threads ? (long)cfg->server.threads : cpus;
	int64_t up_ns = now_ns() - server_state_started_ns(c->st);
	struct mallinfo2 mi = mallinfo2();

	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "version");
	json_write_string(&w, KESC_VERSION);
	json_key(&w, "os");
	json_write_string(&w, "linux");
	json_key(&w, "arch");
	json_write_string(&w, KESC_ARCH);
	json_key(&w, "uptime");
	json_write_uint(&w, up_ns > 0 ? (unsigned long long)((up_ns + 500000000) / 1000000000) : 0);
	json_key(&w, "num_cpu");
	json_write_int(&w, cpus);
	json_key(&w, "num_cpu_used");
	json_write_int(&w, used);
	json_key(&w, "mem_heap_used");
	json_write_uint(&w, (unsigned long long)mi.uordblks + mi.hblkhd);
	json_key(&w, "mem_stack_used");
	json_write_uint(&w, stack_bytes());
	if (rc == KS_OK) {
		/* milliseconds, rounded, at least 1 (KES) */
		long long ms = (long long)((status.latency_us + 500) / 1000);
		json_key(&w, "keystore_latency");
		json_write_int(&w, ms < 1 ? 1 : ms);
	} else {
		json_key(&w, "keystore_unavailable");
		json_write_bool(&w, true);
		json_key(&w, "keystore_unreachable");
		json_write_bool(&w, true);
	}
	json_object_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}

enum api_outcome api_status_metrics(struct api_call *c)
{
	buf_reset(&c->resp->body);
	c->resp->status = 200;
	c->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	c->resp->stream = API_STREAM_NONE;
	struct metrics_scope *scope = server_state_metrics_scope(c->st);
	if (scope) { /* a tenant sees its own numbers only */
		metrics_render_scope(&c->resp->body, scope, server_state_cache(c->st),
		                     server_state_tenant_name(c->st));
		return API_DONE;
	}
	metrics_render(&c->resp->body, server_state_cache(c->st));
	size_t n = server_state_tenant_count(c->st);
	struct metrics_tenant *t = n ? calloc(n, sizeof(*t)) : NULL;
	for (size_t i = 0; t && i < n; i++) {
		struct server_state *v = server_state_tenant_at(c->st, i);
		t[i] = (struct metrics_tenant){.name = server_state_tenant_name(v),
		                               .scope = server_state_metrics_scope(v),
		                               .cache = server_state_cache(v)};
	}
	if (n && !t)
		c->resp->body.failed = true; /* out of memory: api_handle answers 500 */
	else if (n)
		metrics_render_tenants(&c->resp->body, t, n);
	free(t);
	return API_DONE;
}

enum api_outcome api_status_api(struct api_call *c)
{
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_array_begin(&w);
	for (size_t i = 0; i < router_route_count(); i++) {
		const struct route *r = router_route_at(i);
		json_object_begin(&w);
		json_key(&w, "method");
		json_write_string(&w, r->method);
		json_key(&w, "path");
		json_write_string(&w, r->path);
		json_key(&w, "max_body");
		json_write_int(&w, (long long)r->max_body);
		json_key(&w, "timeout");
		/* whole seconds, truncated as KES does */
		json_write_int(&w, (long long)(server_state_route_timeout_ms(c->st, i) / 1000));
		json_object_end(&w);
	}
	json_array_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}
