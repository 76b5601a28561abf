/*
 * state.c — a running server's configuration-derived state (state.h): the cached keystore,
 * the policy set, the per-route api: settings and the start time. Reference counted so a
 * SIGHUP can swap in a new state while requests finish on the old one.
 */
#include "server/state.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/key.h"
#include "keystore/vault.h"
#include "server/lifecycle.h"
#include "server/log.h"
#include "server/router.h"

#define MAX_ROUTES 32

struct route_setting {
	bool skip_auth;
	int64_t timeout_ms;
};

struct server_state {
	atomic_int refs;
	struct config *cfg;
	struct ks_cache *cache;
	struct lifecycle *lifecycle; /* key_lifecycle: rotations and purges (NULL: none) */
	struct policy_set *policies;
	struct route_setting routes[MAX_ROUTES];
	bool any_skip_auth;
	int64_t started_ns;
};

/* The first start of this process: reloads keep reporting it, as KES's uptime does. */
static _Atomic int64_t first_start_ns;

static int64_t process_start_ns(void)
{
	int64_t seen = atomic_load(&first_start_ns);
	if (seen)
		return seen;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	int64_t expected = 0;
	if (atomic_compare_exchange_strong(&first_start_ns, &expected, now))
		return now;
	return expected;
}

static struct keystore *open_store(const struct config *cfg, char *err, size_t errlen)
{
	struct ks_err kerr = {{0}};
	struct keystore *ks = NULL;
	switch (cfg->keystore) {
	case CONFIG_KEYSTORE_FS:
		ks = fs_keystore_open(cfg->fs_path, &kerr);
		break;
	case CONFIG_KEYSTORE_MEM:
		ks = mem_keystore_open();
		if (!ks)
			snprintf(kerr.msg, sizeof kerr.msg, "out of memory");
		break;
	case CONFIG_KEYSTORE_VAULT:
		ks = vault_keystore_open(&cfg->vault, &kerr);
		break;
	default:
		snprintf(kerr.msg, sizeof kerr.msg, "no keystore specified");
		break;
	}
	if (!ks)
		snprintf(err, errlen, "keystore: %s", kerr.msg);
	return ks;
}

static struct policy_set *build_policies(const struct config *cfg, char *err, size_t errlen)
{
	struct policy_set *ps = policy_set_new(cfg->admin_identity ? cfg->admin_identity : "");
	if (!ps) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->policy_count; i++) {
		const struct config_policy *p = &cfg->policies[i];
		if (policy_set_add(ps, p->name, (const char *const *)p->allow, p->allow_count,
		                   (const char *const *)p->deny, p->deny_count,
		                   (const char *const *)p->identities, p->identity_count, err,
		                   errlen) != 0) {
			policy_set_free(ps);
			return NULL;
		}
	}
	return ps;
}

static void apply_api(struct server_state *st)
{
	for (size_t i = 0; i < router_route_count() && i < MAX_ROUTES; i++)
		st->routes[i].timeout_ms = router_route_at(i)->timeout_ms;
	for (size_t i = 0; i < st->cfg->api_count; i++) {
		const struct config_api *a = &st->cfg->api[i];
		int r = router_find_key(a->path);
		if (r < 0)
			continue; /* KES ignores it too; config_check_warnings says so */
		st->routes[r].skip_auth = a->skip_auth;
		if (a->timeout_ms > 0)
			st->routes[r].timeout_ms = a->timeout_ms;
		st->any_skip_auth |= a->skip_auth;
	}
}

/* Creates the config's `keys:` that do not exist yet; an existing key is left alone. */
static int create_keys(struct server_state *st, char *err, size_t errlen)
{
	const struct config *cfg = st->cfg;
	for (size_t i = 0; i < cfg->key_count; i++) {
		struct secret_key *k = NULL;
		const char *by = cfg->admin_identity ? cfg->admin_identity : "";
		if (key_generate(key_default_algorithm(), by, &k) != 0) {
			snprintf(err, errlen, "keys: failed to generate key '%s'", cfg->keys[i]);
			return -1;
		}
		struct ks_err kerr = {{0}};
		int rc = ks_cache_create(st->cache, cfg->keys[i], k, &kerr);
		key_free(k);
		/* Deleted through the API: the name stays reserved while replicas may cache the
		 * old key; a later start or reload creates it. Refusing to start would only take
		 * this replica down too. */
		if (rc == KS_DELETED)
			log_warn("keys: key '%s' is not created now: %s", cfg->keys[i], kerr.msg);
		else if (rc != KS_OK && rc != KS_EXISTS) {
			snprintf(err, errlen, "keys: failed to create key '%s': %s", cfg->keys[i],
			         kerr.msg[0] ? kerr.msg : ks_result_name(rc));
			return -1;
		}
	}
	return 0;
}

static void state_destroy(struct server_state *st, bool free_cfg)
{
	lifecycle_stop(st->lifecycle); /* it uses the cache and the config */
	if (st->cache)
		ks_cache_free(st->cache);
	if (st->policies)
		policy_set_free(st->policies);
	if (free_cfg && st->cfg)
		config_free(st->cfg);
	free(st);
}

/* store NULL: open the one cfg names. On failure cfg stays the caller's; store is closed. */
static struct server_state *state_build(struct config *cfg, struct keystore *store, char *err,
                                        size_t errlen)
{
	struct server_state *st = NULL;
	if (router_route_count() > MAX_ROUTES) {
		snprintf(err, errlen, "internal: route table larger than %d", MAX_ROUTES);
		goto fail;
	}
	st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	atomic_init(&st->refs, 1);
	st->cfg = cfg;
	st->started_ns = process_start_ns();
	apply_api(st);
	st->policies = build_policies(cfg, err, errlen);
	if (!st->policies)
		goto fail;
	if (!store)
		store = open_store(cfg, err, errlen);
	if (!store)
		goto fail;
	st->cache = ks_cache_new(store, &cfg->cache); /* owns the store, also on failure */
	store = NULL;
	if (!st->cache) {
		snprintf(err, errlen, "keystore: failed to start the key cache");
		goto fail;
	}
	if (create_keys(st, err, errlen) != 0)
		goto fail;
	st->lifecycle = lifecycle_start(st->cache, st->cfg);
	return st;
fail:
	keystore_close(store);
	if (st)
		state_destroy(st, false);
	return NULL;
}

struct server_state *server_state_new(struct config *cfg, char *err, size_t errlen)
{
	return state_build(cfg, NULL, err, errlen);
}

struct server_state *server_state_new_with_store(struct config *cfg, struct keystore *store,
                                                 char *err, size_t errlen)
{
	return state_build(cfg, store, err, errlen);
}

void server_state_retain(struct server_state *st)
{
	atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
}

void server_state_release(struct server_state *st)
{
	if (!st)
		return;
	if (atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
		state_destroy(st, true);
}

const struct config *server_state_config(const struct server_state *st)
{
	return st->cfg;
}

struct ks_cache *server_state_cache(struct server_state *st)
{
	return st->cache;
}

const struct policy_set *server_state_policies(const struct server_state *st)
{
	return st->policies;
}

int64_t server_state_started_ns(const struct server_state *st)
{
	return st->started_ns;
}

bool server_state_any_skip_auth(const struct server_state *st)
{
	return st->any_skip_auth;
}

bool server_state_route_skip_auth(const struct server_state *st, size_t route_index)
{
	return route_index < MAX_ROUTES && st->routes[route_index].skip_auth;
}

int64_t server_state_route_timeout_ms(const struct server_state *st, size_t route_index)
{
	if (route_index >= MAX_ROUTES)
		return 0;
	return st->routes[route_index].timeout_ms;
}
