/*
 * state_internal.h — what state.c (a configuration generation) and state_tenants.c (its
 * tenant views) share. Private to those two files.
 */
#ifndef KESC_SERVER_STATE_INTERNAL_H
#define KESC_SERVER_STATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "keystore/cache.h"
#include "policy/directory.h"
#include "policy/policy.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/worker.h"

#define MAX_ROUTES       32
#define FINGERPRINT_SIZE 32

struct route_setting {
	bool skip_auth;
	int64_t timeout_ms;
};

/*
 * A view's keystore and cache, and a tenant's metrics: what a reload keeps for a view whose
 * configuration did not change (same fingerprint), so its cached keys, Vault login and
 * counters survive. Shared by the generations that use it, freed by the last.
 */
struct view_store {
	atomic_int refs;
	uint8_t fingerprint[FINGERPRINT_SIZE];
	char *tenant; /* NULL: the top-level view */
	struct ks_cache *cache;
	struct metrics_scope *scope; /* tenants only */
	struct worker_group group;   /* its share of the workers (worker.h) */
	struct status_memo status;   /* what its keystore status last logged (api_status.c) */
	atomic_uint connections;     /* client connections of the tenant (conn.c) */
};

/* Creating the tenants' `keys:` in the background (state_tenants.c). */
struct bringup;

/*
 * The root of a generation is its top-level view too; each tenant has a view of its own.
 * A view is a struct server_state, so handlers work on it unchanged; everything but the cache
 * and the policies is the root's.
 */
struct server_state {
	struct server_state *root; /* the root: itself */
	struct view_store *vs;
	struct policy_set *policies;
	const struct config_tenant *tenant; /* NULL: the top-level view */

	/* the root's */
	atomic_int refs;
	struct config *cfg;
	struct route_setting routes[MAX_ROUTES];
	bool any_skip_auth;
	int64_t started_ns;
	struct server_state *tenants; /* tenant_count views */
	size_t tenant_count;
	struct identity_directory *directory; /* identity → view; with tenants only */
	struct bringup *bringup;
	struct lifecycle *lifecycle; /* key_lifecycle: over every view's keys (NULL: none) */
};

/* state_tenants.c */

/* A view store for a fresh keystore (the cache takes it over, also on failure). NULL with
 * err set. */
struct view_store *view_store_new(struct keystore *store, const struct ks_cache_config *cc,
                                  const char *tenant, const uint8_t *fingerprint, char *err,
                                  size_t errlen);
void view_store_release(struct view_store *vs);
/* The top-level view's fingerprint: its keystore and cache settings. */
void state_root_fingerprint(const struct config *cfg, uint8_t out[FINGERPRINT_SIZE]);
/* Opens (or, from prev, reuses) every tenant's view, builds their policies and the identity
 * directory. 0, or -1 with err set (nothing to undo: state_tenants_free cleans up). */
int state_tenants_build(struct server_state *root, struct server_state *prev, char *err,
                        size_t errlen);
/* Starts creating the tenants' keys in the background (the thread holds a reference). */
void state_tenants_start_keys(struct server_state *root);
void state_tenants_free(struct server_state *root);
/* Builds a policy set of cfg's policies (admin may be "" for none). NULL with err. */
struct policy_set *state_build_policies(const char *admin, const struct config_policy *policies,
                                        size_t count, char *err, size_t errlen);

#endif
