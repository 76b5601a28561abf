/*
 * router.h — the KES route table as data, and the handler interface behind api_handle.
 *
 * One row per KES HEAD route (kes.md §1.5), and kesc's own (key versions and deletion
 * protection, api_key_lifecycle.c): method, path, whether the path is a subtree
 * prefix, the body limit, the default timeout, the authentication mode, the handler and
 * whether the route counts in the kes_http_* metrics. /v1/api prints this table.
 */
#ifndef KESC_SERVER_ROUTER_H
#define KESC_SERVER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/api.h"

enum route_auth {
	ROUTE_AUTH_NONE,     /* no identity computed (KES api.InsecureSkipVerify) */
	ROUTE_AUTH_IDENTIFY, /* identity if a certificate was sent, never rejects */
	ROUTE_AUTH_VERIFY,   /* admin, or an identity whose policy allows the path */
};

/* One request on its way through a handler. */
struct api_call {
	struct server_state *st;
	const struct api_request *req;
	struct api_response *resp;
	const char *arg;      /* the path after the route's prefix; "" for exact routes */
	const char *identity; /* caller identity after authentication, "" if none */
	bool may_block;       /* false on a loop thread: keystore I/O → API_NEEDS_WORKER */
	size_t route_index;
};

typedef enum api_outcome (*api_handler_fn)(struct api_call *call);

struct route {
	const char *method;
	const char *path; /* the route key, as in KES and the config's api: section */
	bool prefix;      /* subtree: path + argument */
	size_t max_body;
	int64_t timeout_ms; /* default; 0 = none */
	enum route_auth auth;
	api_handler_fn handler;
	bool metered;
};

size_t router_route_count(void);
const struct route *router_route_at(size_t i);
/* Index of the route whose key is exactly key (for api: overrides), or -1. */
int router_find_key(const char *key);
/* Index of the route serving path, with *arg the argument part; -1 if none. A subtree root
 * without its trailing slash ("/v1/key/list") is that route with an empty argument. */
int router_match(const char *path, const char **arg);

/* Whether a log stream of path ("/v1/log/audit", "/v1/log/error") that identity opened for
 * tenant (NULL: every line) may go on under st: the same answer and the same view as when
 * it began. A reload can take the identity out of that view (its tenant removed, a new
 * tenant of the same name, a policy that no longer allows the stream). */
struct server_state;
bool router_stream_still_allowed(struct server_state *st, const char *identity, const char *path,
                                 const char *tenant);

/* As server_state_new, but serving store (owned from now on, closed also on failure)
 * instead of the keystore cfg names: for tests with a store that fails on demand
 * (implemented in state.c). */
struct keystore;
struct config;
struct server_state *server_state_new_with_store(struct config *cfg, struct keystore *store,
                                                 char *err, size_t errlen);

/* Effective per-route settings after the config's api: section (implemented in state.c). */
bool server_state_route_skip_auth(const struct server_state *st, size_t route_index);
int64_t server_state_route_timeout_ms(const struct server_state *st, size_t route_index);

/* Handlers (api_key.c, api_key_lifecycle.c, api_bulk.c, api_status.c, api_policy.c, api_log.c). */
enum api_outcome api_key_create(struct api_call *c);
enum api_outcome api_key_import(struct api_call *c);
enum api_outcome api_key_describe(struct api_call *c);
enum api_outcome api_key_list(struct api_call *c);
enum api_outcome api_key_delete(struct api_call *c);
enum api_outcome api_key_generate(struct api_call *c);
enum api_outcome api_key_encrypt(struct api_call *c);
enum api_outcome api_key_decrypt(struct api_call *c);
enum api_outcome api_key_hmac(struct api_call *c);
enum api_outcome api_key_rotate(struct api_call *c);
enum api_outcome api_key_rewrap(struct api_call *c);
enum api_outcome api_key_retire(struct api_call *c);
enum api_outcome api_key_restore(struct api_call *c);
enum api_outcome api_key_purge(struct api_call *c);
enum api_outcome api_key_bulk_decrypt(struct api_call *c); /* api_bulk.c */
enum api_outcome api_status_version(struct api_call *c);
enum api_outcome api_status_ready(struct api_call *c);
enum api_outcome api_status_status(struct api_call *c);
enum api_outcome api_status_metrics(struct api_call *c);
enum api_outcome api_status_api(struct api_call *c);
enum api_outcome api_policy_describe(struct api_call *c);
enum api_outcome api_policy_read(struct api_call *c);
enum api_outcome api_policy_list(struct api_call *c);
enum api_outcome api_identity_describe(struct api_call *c);
enum api_outcome api_identity_list(struct api_call *c);
enum api_outcome api_identity_self(struct api_call *c);
enum api_outcome api_log_error(struct api_call *c);
enum api_outcome api_log_audit(struct api_call *c);

#endif
