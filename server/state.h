/*
 * state.h — everything a running server derives from its configuration: the keystore behind
 * its cache, the policy set, the route settings (api: section), the start time. A SIGHUP
 * builds a new state from the re-read config; requests in flight keep the state they started
 * with (reference counted), new requests get the new one.
 */
#ifndef KESC_SERVER_STATE_H
#define KESC_SERVER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/cache.h"
#include "policy/policy.h"
#include "server/config.h"

struct server_state;

/*
 * Builds a state from cfg: opens the keystore (a Vault login happens here), wraps it in a
 * cache, builds the policy set, applies the api: overrides, and creates the `keys:` that do
 * not exist yet. May block. Returns NULL with the reason in err. cfg must outlive the state
 * (the state keeps a pointer and frees it on its last release).
 */
struct server_state *server_state_new(struct config *cfg, char *err, size_t errlen);
void server_state_retain(struct server_state *st);
void server_state_release(struct server_state *st);

const struct config *server_state_config(const struct server_state *st);
struct ks_cache *server_state_cache(struct server_state *st);
const struct policy_set *server_state_policies(const struct server_state *st);
/* Server start time (kept across reloads), Unix ns; policies report it as created_at. */
int64_t server_state_started_ns(const struct server_state *st);
/* Whether any api.<path>.skip_auth is set: then the TLS layer requests instead of requires a
 * client certificate, as KES does. */
bool server_state_any_skip_auth(const struct server_state *st);

#endif
