/*
 * lifecycle.c — the periodic pass of key_lifecycle: (lifecycle.h). One thread per server state;
 * a reload starts a new one for the new state while the old state's finishes, which is safe for
 * the same reason that replicas are.
 */
#include "server/lifecycle.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/key_lifecycle.h"
#include "server/log.h"

struct lifecycle {
	struct lifecycle_target *targets;
	size_t count;
	const struct config *cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
};

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void audit_step(const char *method, const char *route, const char *name, int64_t start,
                       const char *tenant)
{
	char path[128];
	struct audit_record r = {.time_ns = start,
	                         .ip = "",
	                         .method = method,
	                         .path = path,
	                         .identity = LIFECYCLE_IDENTITY,
	                         .tenant = tenant,
	                         .status = 200};

	snprintf(path, sizeof path, "%s%s", route, name);
	r.latency_ns = wall_ns() - start;
	log_audit(&r);
}

/* One name: rotate or purge if due. */
static void tend(struct ks_cache *cache, const char *tenant, const struct config *cfg,
                 const char *name, int *rotated, int *purged)
{
	struct ks_err err = {{0}};
	enum key_lifecycle_done done;
	uint32_t version = 0;
	int64_t start = wall_ns();
	int64_t older =
	    cfg->lifecycle.rotate_after_ms > 0 ? (cfg->lifecycle.rotate_after_ms + 999) / 1000 : 0;
	const char *by = cfg->admin_identity ? cfg->admin_identity : LIFECYCLE_IDENTITY;
	int rc = key_lifecycle_tend(cache, name, by, older, keystore_now(), &done, &version, &err);

	if (rc != KS_OK) {
		log_error("key_lifecycle: key '%s': %s: %s", name, ks_result_name(rc), err.msg);
		return;
	}
	if (done == KEY_LIFECYCLE_ROTATED) {
		(*rotated)++;
		audit_step("PUT", "/v1/key/rotate/", name, start, tenant);
		log_info("key_lifecycle: key '%s' rotated (its current version was older than "
		         "rotate_after): its current version is v%u",
		         name, version);
	} else if (done == KEY_LIFECYCLE_PURGED) {
		(*purged)++;
		audit_step("DELETE", "/v1/key/purge/", name, start, tenant);
		log_info("key_lifecycle: key '%s' purged: its restore window is over", name);
	}
}

static bool stopping(struct lifecycle *l)
{
	bool s;

	if (!l)
		return false;
	pthread_mutex_lock(&l->lock);
	s = l->stopping;
	pthread_mutex_unlock(&l->lock);
	return s;
}

/* One keystore's names; its error lines carry the tenant's name (keystore_thread_tag). */
static void pass_target(struct lifecycle *l, const struct lifecycle_target *t,
                        const struct config *cfg, int *rotated, int *purged)
{
	struct name_list names = {0};
	struct ks_err err = {{0}};
	struct ks_cache *cache = t->cache;

	keystore_thread_tag_set(t->tenant);
	int rc = ks_cache_list_names(cache, "", &names, &err);
	if (rc != KS_OK)
		log_error("key_lifecycle: cannot list the keys: %s: %s", ks_result_name(rc),
		          err.msg);
	for (size_t i = 0; rc == KS_OK && i < names.count && !stopping(l); i++)
		tend(cache, t->tenant, cfg, names.names[i], rotated, purged);
	name_list_free(&names);
	keystore_thread_tag_set(NULL);
}

static void pass(struct lifecycle *l, const struct lifecycle_target *targets, size_t count,
                 const struct config *cfg, int *rotated, int *purged)
{
	*rotated = *purged = 0;
	if (!log_audit_accepting()) {
		log_warn("key_lifecycle: the audit log refuses records: no key is rotated or "
		         "purged until it takes them again");
		return;
	}
	for (size_t i = 0; i < count && !stopping(l); i++)
		pass_target(l, &targets[i], cfg, rotated, purged);
}

void lifecycle_pass(struct ks_cache *cache, const struct config *cfg, int *rotated, int *purged)
{
	struct lifecycle_target top = {.cache = cache, .tenant = NULL};

	pass(NULL, &top, 1, cfg, rotated, purged);
}

static void *run(void *arg)
{
	struct lifecycle *l = arg;
	int rotated, purged;

	for (;;) {
		struct timespec until;
		int64_t ms = l->cfg->lifecycle.check_interval_ms;

		if (ms <= 0)
			ms = CONFIG_LIFECYCLE_CHECK_MS;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += ms / 1000;
		until.tv_nsec += (ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&l->lock);
		while (!l->stopping &&
		       pthread_cond_timedwait(&l->wake, &l->lock, &until) != ETIMEDOUT)
			;
		bool stop = l->stopping;
		pthread_mutex_unlock(&l->lock);
		if (stop)
			break;
		pass(l, l->targets, l->count, l->cfg, &rotated, &purged);
		if (rotated || purged)
			log_info("key_lifecycle: %d key(s) rotated, %d purged", rotated, purged);
	}
	return NULL;
}

struct lifecycle *lifecycle_start(const struct lifecycle_target *targets, size_t count,
                                  const struct config *cfg)
{
	pthread_condattr_t attr;
	struct lifecycle *l;

	if (cfg->lifecycle.rotate_after_ms <= 0 && cfg->lifecycle.delete_window_ms <= 0)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		goto fail;
	l->targets = calloc(count ? count : 1, sizeof(*l->targets));
	if (!l->targets)
		goto fail_free;
	memcpy(l->targets, targets, count * sizeof(*targets));
	l->count = count;
	l->cfg = cfg;
	if (pthread_mutex_init(&l->lock, NULL) != 0)
		goto fail_free;
	if (pthread_condattr_init(&attr) != 0)
		goto fail_mutex;
	int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&l->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		goto fail_mutex;
	if (pthread_create(&l->thread, NULL, run, l) != 0) {
		pthread_cond_destroy(&l->wake);
		goto fail_mutex;
	}
	return l;
fail_mutex:
	pthread_mutex_destroy(&l->lock);
fail_free:
	free(l->targets);
	free(l);
fail:
	log_error("key_lifecycle: cannot start its thread: keys are not rotated or purged by "
	          "this server");
	return NULL;
}

void lifecycle_stop(struct lifecycle *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l->targets);
	free(l);
}
