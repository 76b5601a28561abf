/*
 * state.h — everything a running server derives from its configuration: the keystore behind
 * its cache, the policy set, the route settings (api: section), the start time. A SIGHUP
 * builds a new state from the re-read config; requests in flight keep the state they started
 * with (reference counted), new requests get the new one.
 */
#ifndef KESC_SERVER_STATE_H
#define KESC_SERVER_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/cache.h"
#include "policy/policy.h"
#include "server/metrics.h"
#include "server/config.h"

struct server_state;

/*
 * Builds a state from cfg: opens the keystore (a Vault login happens here), wraps it in a
 * cache, builds the policy set, applies the api: overrides, and creates the `keys:` that do
 * not exist yet. May block. Returns NULL with the reason in err. cfg must outlive the state
 * (the state keeps a pointer and frees it on its last release).
 */
struct server_state *server_state_new(struct config *cfg, char *err, size_t errlen);
/* The same for a reload: the views of prev (the running generation) whose configuration did
 * not change keep their keystore, cache, Vault login and metrics (with tenants only; a
 * config without tenants: builds everything anew, as it always did). prev may be NULL. */
struct server_state *server_state_new_from(struct config *cfg, struct server_state *prev, char *err,
                                           size_t errlen);
/* On any view: counts on the generation (its root). */
void server_state_retain(struct server_state *st);
void server_state_release(struct server_state *st);
/* Stops the background work of the generation (tenants' keys still being created) and waits
 * for it: at shutdown, before the last release. */
void server_state_quiesce(struct server_state *st);

/*
 * Tenants (config.h struct config_tenant). A generation has one view per tenant besides its
 * top-level one (the root: the top-level keystore and policies, the admin's). A view is a
 * struct server_state: server_state_cache and server_state_policies give the tenant's own,
 * everything else is the generation's. A request is served from one view, chosen from the
 * client's identity alone (server_state_resolve); only the admin may pick a tenant's view
 * (router.c, ?enclave=).
 */
enum server_caller {
	SERVER_CALLER_NONE = 0, /* no identity, or one no policy names: the top-level view */
	SERVER_CALLER_ADMIN,    /* the admin: the top-level view */
	SERVER_CALLER_POLICY,   /* an identity with a policy: its tenant's view (*policy set) */
};
enum server_caller server_state_resolve(struct server_state *st, const char *identity,
                                        struct server_state **view, const struct policy **policy);
/* Whether identity is the admin or has a policy in any view (connections the server keeps at
 * its connection limit), and whether it has a policy. */
bool server_state_identity_known(const struct server_state *st, const char *identity);
bool server_state_identity_has_policy(const struct server_state *st, const char *identity);
/* The tenant views of st's generation; the named one, or NULL. */
size_t server_state_tenant_count(const struct server_state *st);
struct server_state *server_state_tenant_at(struct server_state *st, size_t i);
struct server_state *server_state_tenant_named(struct server_state *st, const char *name);
/* A view's tenant name, NULL for the top-level view; its metrics scope (NULL likewise). */
const char *server_state_tenant_name(const struct server_state *st);
struct metrics_scope *server_state_metrics_scope(const struct server_state *st);
/* The view's share of the worker pool (worker.h): kept with its keystore across reloads. */
struct worker_group *server_state_worker_group(struct server_state *st);
/* What the view's keystore status was when last logged, so each keystore's changes are logged
 * once (api_status.c); kept with its keystore. */
struct status_memo {
	pthread_mutex_t lock;
	int last_rc;
	char last_msg[512];
};
struct status_memo *server_state_status_memo(struct server_state *st);
/*
 * A connection whose client identity belongs to a tenant counts against that tenant's share
 * of the connections (server.tenant_max_connections), so one tenant holding many cannot keep
 * the others out at server.max_connections. Returns the connection's token (give it back with
 * server_state_connection_leave when it closes; it outlives reloads), or NULL: *refused says
 * whether because the tenant holds its share already (close the connection), else the
 * identity is no tenant's and nothing is counted.
 */
struct tenant_connection;
struct tenant_connection *server_state_connection_admit(struct server_state *st,
                                                        const char *identity, bool *refused);
void server_state_connection_leave(struct tenant_connection *t);

const struct config *server_state_config(const struct server_state *st);
struct ks_cache *server_state_cache(struct server_state *st);
const struct policy_set *server_state_policies(const struct server_state *st);
/* Server start time (kept across reloads), Unix ns; policies report it as created_at. */
int64_t server_state_started_ns(const struct server_state *st);
/* Whether any api.<path>.skip_auth is set: then the TLS layer requests instead of requires a
 * client certificate, as KES does. */
bool server_state_any_skip_auth(const struct server_state *st);

#endif
