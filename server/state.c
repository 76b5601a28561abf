/*
 * state.c — a running server's configuration-derived state (state.h): the cached keystore,
 * the policy set, the per-route api: settings and the start time. Reference counted so a
 * SIGHUP can swap in a new state while requests finish on the old one. Tenant views are built
 * in state_tenants.c.
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
#include "server/state_internal.h"

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

struct policy_set *state_build_policies(const char *admin, const struct config_policy *policies,
                                        size_t count, char *err, size_t errlen)
{
	struct policy_set *ps = policy_set_new(admin ? admin : "");
	if (!ps) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < count; i++) {
		const struct config_policy *p = &policies[i];
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
		int rc = ks_cache_create(st->vs->cache, cfg->keys[i], k, &kerr);
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

/* key_lifecycle: one pass over the top-level keystore and every tenant's. */
static void state_start_lifecycle(struct server_state *st)
{
	struct lifecycle_target *targets = calloc(st->tenant_count + 1, sizeof(*targets));

	if (!targets) {
		log_error("key_lifecycle: out of memory: keys are not rotated or purged by this "
		          "server");
		return;
	}
	targets[0] = (struct lifecycle_target){.cache = st->vs->cache, .tenant = NULL};
	for (size_t i = 0; i < st->tenant_count; i++)
		targets[i + 1] = (struct lifecycle_target){.cache = st->tenants[i].vs->cache,
		                                           .tenant = st->tenants[i].tenant->name};
	st->lifecycle = lifecycle_start(targets, st->tenant_count + 1, st->cfg);
	free(targets);
}

static void state_destroy(struct server_state *st, bool free_cfg)
{
	lifecycle_stop(st->lifecycle); /* it uses the caches and the config */
	state_tenants_free(st);
	view_store_release(st->vs);
	if (st->policies)
		policy_set_free(st->policies);
	if (free_cfg && st->cfg)
		config_free(st->cfg);
	free(st);
}

/* The top-level view's store: prev's when its configuration is the same (with tenants: the
 * tenants on a Vault connection need it unchanged), else store or the one cfg names. */
static int root_store(struct server_state *st, struct server_state *prev, struct keystore *store,
                      char *err, size_t errlen)
{
	uint8_t fp[FINGERPRINT_SIZE];
	state_root_fingerprint(st->cfg, fp);
	if (!store && prev && st->cfg->tenant_count > 0 && prev->root->cfg->tenant_count > 0 &&
	    memcmp(prev->root->vs->fingerprint, fp, sizeof(fp)) == 0) {
		st->vs = prev->root->vs;
		atomic_fetch_add(&st->vs->refs, 1);
		return 0;
	}
	if (!store)
		store = open_store(st->cfg, err, errlen);
	if (!store)
		return -1;
	st->vs = view_store_new(store, &st->cfg->cache, NULL, fp, err, errlen);
	return st->vs ? 0 : -1;
}

/* store NULL: open the one cfg names. On failure cfg stays the caller's; store is closed. */
static struct server_state *state_build(struct config *cfg, struct keystore *store,
                                        struct server_state *prev, char *err, size_t errlen)
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
	st->root = st;
	atomic_init(&st->refs, 1);
	st->cfg = cfg;
	st->started_ns = process_start_ns();
	apply_api(st);
	st->policies = state_build_policies(cfg->admin_identity, cfg->policies, cfg->policy_count,
	                                    err, errlen);
	if (!st->policies)
		goto fail;
	int rc = root_store(st, prev, store, err, errlen);
	store = NULL; /* taken over, also on failure */
	if (rc != 0 || create_keys(st, err, errlen) != 0 ||
	    state_tenants_build(st, prev, err, errlen) != 0)
		goto fail;
	state_tenants_start_keys(st);
	state_start_lifecycle(st);
	return st;
fail:
	keystore_close(store);
	if (st)
		state_destroy(st, false);
	return NULL;
}

struct server_state *server_state_new(struct config *cfg, char *err, size_t errlen)
{
	return state_build(cfg, NULL, NULL, err, errlen);
}

struct server_state *server_state_new_from(struct config *cfg, struct server_state *prev, char *err,
                                           size_t errlen)
{
	return state_build(cfg, NULL, prev, err, errlen);
}

struct server_state *server_state_new_with_store(struct config *cfg, struct keystore *store,
                                                 char *err, size_t errlen)
{
	return state_build(cfg, store, NULL, err, errlen);
}

void server_state_retain(struct server_state *st)
{
	atomic_fetch_add_explicit(&st->root->refs, 1, memory_order_relaxed);
}

void server_state_release(struct server_state *st)
{
	if (!st)
		return;
	st = st->root;
	if (atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
		state_destroy(st, true);
}

const struct config *server_state_config(const struct server_state *st)
{
	return st->root->cfg;
}

struct ks_cache *server_state_cache(struct server_state *st)
{
	return st->vs->cache;
}

const struct policy_set *server_state_policies(const struct server_state *st)
{
	return st->policies;
}

int64_t server_state_started_ns(const struct server_state *st)
{
	return st->root->started_ns;
}

bool server_state_any_skip_auth(const struct server_state *st)
{
	return st->root->any_skip_auth;
}

bool server_state_route_skip_auth(const struct server_state *st, size_t route_index)
{
	return route_index < MAX_ROUTES && st->root->routes[route_index].skip_auth;
}

int64_t server_state_route_timeout_ms(const struct server_state *st, size_t route_index)
{
	if (route_index >= MAX_ROUTES)
		return 0;
	return st->root->routes[route_index].timeout_ms;
}

/* ---- tenants ---- */

enum server_caller server_state_resolve(struct server_state *st, const char *identity,
                                        struct server_state **view, const struct policy **policy)
{
	struct server_state *root = st->root;
	*view = root;
	*policy = NULL;
	if (!identity || !identity[0])
		return SERVER_CALLER_NONE;
	if (policy_set_is_admin(root->policies, identity))
		return SERVER_CALLER_ADMIN;
	if (!root->directory) { /* no tenants: the top-level policies, as always */
		*policy = policy_set_policy_of(root->policies, identity);
		return *policy ? SERVER_CALLER_POLICY : SERVER_CALLER_NONE;
	}
	size_t which;
	if (!identity_directory_find(root->directory, identity, &which, policy))
		return SERVER_CALLER_NONE;
	*view = which == 0 ? root : &root->tenants[which - 1];
	return SERVER_CALLER_POLICY;
}

bool server_state_identity_has_policy(const struct server_state *st, const char *identity)
{
	struct server_state *view;
	const struct policy *p;
	return server_state_resolve((struct server_state *)st, identity, &view, &p) ==
	       SERVER_CALLER_POLICY;
}

bool server_state_identity_known(const struct server_state *st, const char *identity)
{
	struct server_state *view;
	const struct policy *p;
	return server_state_resolve((struct server_state *)st, identity, &view, &p) !=
	       SERVER_CALLER_NONE;
}

size_t server_state_tenant_count(const struct server_state *st)
{
	return st->root->tenant_count;
}

struct server_state *server_state_tenant_at(struct server_state *st, size_t i)
{
	return i < st->root->tenant_count ? &st->root->tenants[i] : NULL;
}

struct server_state *server_state_tenant_named(struct server_state *st, const char *name)
{
	struct server_state *root = st->root;
	for (size_t i = 0; name && i < root->tenant_count; i++)
		if (strcmp(root->tenants[i].tenant->name, name) == 0)
			return &root->tenants[i];
	return NULL;
}

const char *server_state_tenant_name(const struct server_state *st)
{
	return st->tenant ? st->tenant->name : NULL;
}

struct metrics_scope *server_state_metrics_scope(const struct server_state *st)
{
	return st->vs->scope;
}

struct worker_group *server_state_worker_group(struct server_state *st)
{
	return &st->vs->group;
}

struct status_memo *server_state_status_memo(struct server_state *st)
{
	return &st->vs->status;
}

struct tenant_connection *server_state_connection_admit(struct server_state *st,
                                                        const char *identity, bool *refused)
{
	struct server_state *view;
	const struct policy *p;
	*refused = false;
	if (server_state_resolve(st, identity, &view, &p) != SERVER_CALLER_POLICY || !view->tenant)
		return NULL;
	const struct config *cfg = st->root->cfg;
	unsigned max = cfg->server.tenant_max_connections ? cfg->server.tenant_max_connections
	                                                  : cfg->server.max_connections / 4;
	struct view_store *vs = view->vs;
	if (atomic_fetch_add(&vs->connections, 1) >= (max ? max : 1)) {
		atomic_fetch_sub(&vs->connections, 1);
		*refused = true;
		return NULL;
	}
	atomic_fetch_add(&vs->refs, 1); /* the connection may outlive this generation */
	return (struct tenant_connection *)vs;
}

void server_state_connection_leave(struct tenant_connection *t)
{
	struct view_store *vs = (struct view_store *)t;
	if (!vs)
		return;
	atomic_fetch_sub(&vs->connections, 1);
	view_store_release(vs);
}
