/*
 * config_sections.c — the top-level sections of a config: version, address, admin (and the
 * old `root:`), tls, cache, log, api, keys, server, and policy. Reason texts follow KES's
 * kesconf messages (without the "kesconf: " prefix) so users can search for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "server/config_internal.h"

/* A string that stays NULL when absent or empty (optional paths, passwords). */
static int get_optional(struct cfg_ctx *x, const struct ynode *map, const char *key,
                        const char *field, enum cfg_env env, char **slot)
{
	int r = cfg_get_string(x, map, key, field, env, slot);
	if (r > 0 && (*slot)[0] == '\0') {
		free(*slot);
		*slot = NULL;
		return 0;
	}
	return r;
}

static int load_version(struct cfg_ctx *x, const struct ynode *root)
{
	const struct ynode *v = ynode_get(root, "version", NULL);
	const char *text;
	if (ynode_is_null(v))
		return 0;
	if (cfg_scalar_text(x, v, "version", CFG_LITERAL, &text) < 0)
		return -1;
	if (strcmp(text, "v1") != 0)
		return cfg_fail(x, v->line, "version", "invalid config version '%s'", text);
	return 0;
}

static int load_admin(struct cfg_ctx *x, const struct ynode *root)
{
	struct config *c = x->c;
	const struct ynode *admin;
	char *old = NULL;
	if (cfg_get_map(x, root, "admin", "admin", &admin) < 0 ||
	    get_optional(x, admin, "identity", "admin.identity", CFG_ENV, &c->admin_identity) < 0 ||
	    get_optional(x, root, "root", "root", CFG_ENV, &old) < 0)
		return -1;
	if (old) {
		unsigned line = cfg_line_of(root, "root");
		if (c->admin_identity) {
			free(old);
			return cfg_fail(x, line, "root",
			                "both 'root' and 'admin.identity' are set; keep only "
			                "'admin.identity'");
		}
		cfg_warn(x, line, "'root' is the old spelling of 'admin.identity' (accepted)");
		c->admin_identity = old;
	}
	if (!c->admin_identity)
		return cfg_fail(x, cfg_line_in(root, "admin", "identity"), "admin.identity",
		                "no admin identity");
	return 0;
}

static int load_proxy(struct cfg_ctx *x, const struct ynode *tls)
{
	struct config *c = x->c;
	const struct ynode *proxy, *ids, *header;
	if (cfg_get_map(x, tls, "proxy", "tls.proxy", &proxy) < 0 ||
	    cfg_get_seq(x, proxy, "identities", "tls.proxy.identities", &ids) < 0 ||
	    cfg_get_map(x, proxy, "header", "tls.proxy.header", &header) < 0)
		return -1;
	char *h = NULL;
	if (get_optional(x, header, "cert", "tls.proxy.header.cert", CFG_ENV, &h) < 0)
		return -1;
	if (h) {
		free(c->tls.proxy_cert_header);
		c->tls.proxy_cert_header = h;
	}
	if (!ids || ids->count == 0)
		return 0;
	c->tls.proxy_identities = calloc(ids->count, sizeof *c->tls.proxy_identities);
	if (!c->tls.proxy_identities)
		return cfg_fail(x, ids->line, "tls.proxy.identities", "out of memory");
	for (size_t i = 0; i < ids->count; i++) {
		const char *text;
		const struct ynode *n = ids->items[i];
		if (cfg_scalar_text(x, n, "tls.proxy.identities", CFG_ENV, &text) < 0)
			return -1;
		if (!text[0])
			continue;
		if (strcmp(text, c->admin_identity) == 0)
			return cfg_fail(x, n->line, "tls.proxy.identities",
			                "identity '%s' is already admin", text);
		if (cfg_set_string(x, &c->tls.proxy_identities[c->tls.proxy_identity_count], text) <
		    0)
			return -1;
		c->tls.proxy_identity_count++;
	}
	return 0;
}

static int load_tls(struct cfg_ctx *x, const struct ynode *root)
{
	struct config *c = x->c;
	const struct ynode *tls;
	char *auth = NULL;
	if (cfg_get_map(x, root, "tls", "tls", &tls) < 0 ||
	    get_optional(x, tls, "key", "tls.key", CFG_ENV, &c->tls.key) < 0 ||
	    get_optional(x, tls, "cert", "tls.cert", CFG_ENV, &c->tls.cert) < 0 ||
	    get_optional(x, tls, "password", "tls.password", CFG_ENV, &c->tls.password) < 0 ||
	    get_optional(x, tls, "ca", "tls.ca", CFG_ENV, &c->tls.ca) < 0 ||
	    get_optional(x, tls, "auth", "tls.auth", CFG_ENV, &auth) < 0)
		return -1;
	if (!c->tls.key) {
		free(auth);
		return cfg_fail(x, cfg_line_in(root, "tls", "key"), "tls.key", "no private key");
	}
	if (!c->tls.cert) {
		free(auth);
		return cfg_fail(x, cfg_line_in(root, "tls", "cert"), "tls.cert", "no certificate");
	}
	if (auth && strcasecmp(auth, "on") == 0) {
		c->tls.auth = CONFIG_TLS_AUTH_ON;
	} else if (auth && strcasecmp(auth, "off") != 0) {
		cfg_fail(x, cfg_line_of(tls, "auth"), "tls.auth", "invalid auth '%s'", auth);
		free(auth);
		return -1;
	}
	free(auth);
	if (c->tls.ca && c->tls.auth == CONFIG_TLS_AUTH_OFF)
		cfg_warn(x, cfg_line_of(tls, "ca"),
		         "tls.ca is set but tls.auth is off: client certificates are not verified "
		         "against it (set 'auth: on' to verify them)");
	if (load_proxy(x, tls) < 0)
		return -1;
	if (c->tls.proxy_identity_count > 0)
		cfg_warn(
		    x, cfg_line_of(tls, "proxy"),
		    "tls.proxy is not supported (as in KES): a proxy's requests are authorized "
		    "by the proxy's own certificate");
	return 0;
}

int cfg_load_cache_map(struct cfg_ctx *x, const struct ynode *cache, const char *at,
                       struct ks_cache_config *cc)
{
	static const struct {
		const char *key, *reason;
	} expiries[] = {
	    {"any", "invalid cache expiry"},
	    {"unused", "invalid cache unused expiry"},
	    {"offline", "invalid offline cache expiry"},
	};
	int64_t *slots[] = {&cc->expiry_any_ms, &cc->expiry_unused_ms, &cc->expiry_offline_ms};
	const struct ynode *expiry;
	char field[200];
	snprintf(field, sizeof field, "%s.expiry", at);
	if (cfg_get_map(x, cache, "expiry", field, &expiry) < 0)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		int64_t ms = 0;
		snprintf(field, sizeof field, "%s.expiry.%s", at, expiries[i].key);
		int r = cfg_get_duration(x, expiry, expiries[i].key, field, &ms);
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		if (ms < 0) {
			const struct ynode *v = ynode_get(expiry, expiries[i].key, NULL);
			return cfg_fail(x, v->line, field, "%s '%s'", expiries[i].reason, v->value);
		}
		/* KES treats 0 as "not set" for any/unused (then its defaults apply); for offline
		 * 0 means off, which is also its default. */
		if (ms > 0 || i == 2)
			*slots[i] = ms;
	}
	/* kesc extension: at most this many keys cached (0 = no limit). */
	unsigned max_keys = 0;
	snprintf(field, sizeof field, "%s.max_keys", at);
	int r = cfg_get_uint(x, cache, "max_keys", field, &max_keys);
	if (r < 0)
		return -1;
	if (r > 0)
		cc->max_keys = max_keys;
	return 0;
}

static int load_cache(struct cfg_ctx *x, const struct ynode *root)
{
	const struct ynode *cache;
	if (cfg_get_map(x, root, "cache", "cache", &cache) < 0)
		return -1;
	return cfg_load_cache_map(x, cache, "cache", &x->c->cache);
}

static int load_log_target(struct cfg_ctx *x, const struct ynode *log, const char *key,
                           const char *field, int *level, char **file)
{
	char *text = NULL;
	int r = cfg_get_string(x, log, key, field, CFG_ENV, &text);
	if (r <= 0)
		return r;
	int rc = 0;
	if (strchr(text, '/')) {
		/* kesc extension: a path means "log there at INFO". */
		*file = text;
		*level = LOG_LEVEL_INFO;
		return 0;
	}
	if (config_parse_log_level(text, level) < 0)
		rc = cfg_fail(x, cfg_line_of(log, key), field, "invalid log level '%s'", text);
	free(text);
	return rc;
}

static int load_log(struct cfg_ctx *x, const struct ynode *root)
{
	struct config *c = x->c;
	const struct ynode *log;
	if (cfg_get_map(x, root, "log", "log", &log) < 0 ||
	    load_log_target(x, log, "error", "log.error", &c->log.error_level, &c->log.error_file) <
	        0 ||
	    load_log_target(x, log, "audit", "log.audit", &c->log.audit_level, &c->log.audit_file) <
	        0)
		return -1;
	/* kesc extension: what a request gets when its audit record cannot be written. */
	char *failure = NULL;
	int r = cfg_get_string(x, log, "audit_failure", "log.audit_failure", CFG_ENV, &failure);
	if (r < 0)
		return -1;
	int rc = 0;
	if (r > 0 && !strcmp(failure, "serve"))
		c->log.audit_failure_serve = true;
	else if (r > 0 && strcmp(failure, "refuse"))
		rc = cfg_fail(x, cfg_line_of(log, "audit_failure"), "log.audit_failure",
		              "invalid value '%s' (expected 'refuse' or 'serve')", failure);
	free(failure);
	return rc;
}

static int load_api_route(struct cfg_ctx *x, const struct ynode *key, const struct ynode *value,
                          struct config_api *out)
{
	char field[512];
	const struct ynode *m = value;
	snprintf(field, sizeof field, "api.%s", key->value);
	out->line = key->line;
	if (cfg_set_string(x, &out->path, key->value) < 0)
		return -1;
	if (ynode_is_null(value))
		return 0;
	if (value->kind != YNODE_MAP)
		return cfg_fail(x, value->line, field, "expected 'skip_auth' and/or 'timeout'");
	char sub[560];
	snprintf(sub, sizeof sub, "%s.skip_auth", field);
	if (cfg_get_bool(x, m, "skip_auth", sub, &out->skip_auth) < 0)
		return -1;
	snprintf(sub, sizeof sub, "%s.timeout", field);
	if (cfg_get_duration(x, m, "timeout", sub, &out->timeout_ms) < 0)
		return -1;
	if (out->timeout_ms < 0) {
		const struct ynode *t = ynode_get(m, "timeout", NULL);
		return cfg_fail(x, t->line, sub, "invalid timeout '%s'", t->value);
	}
	return 0;
}

static int load_api(struct cfg_ctx *x, const struct ynode *root)
{
	struct config *c = x->c;
	const struct ynode *api;
	if (cfg_get_map(x, root, "api", "api", &api) < 0)
		return -1;
	if (!api || api->count == 0)
		return 0;
	c->api = calloc(api->count, sizeof *c->api);
	if (!c->api)
		return cfg_fail(x, api->line, "api", "out of memory");
	for (size_t i = 0; i < api->count; i++) {
		const struct ynode *k = api->items[2 * i];
		if (k->value[0] != '/')
			return cfg_fail(x, k->line, "api",
			                "'%s' is not an API path (for example /v1/status)",
			                k->value);
		c->api_count++;
		if (load_api_route(x, k, api->items[2 * i + 1], &c->api[i]) < 0)
			return -1;
	}
	return 0;
}

static int load_key_entry(struct cfg_ctx *x, const struct ynode *item, const char *at, size_t index,
                          char **keys, size_t *count)
{
	char field[200];
	char *name = NULL;
	snprintf(field, sizeof field, "%s[%zu]", at, index);
	if (item->kind != YNODE_MAP)
		return cfg_fail(x, item->line, field, "expected '- name: <key name>'");
	snprintf(field, sizeof field, "%s[%zu].name", at, index);
	if (cfg_get_string(x, item, "name", field, CFG_ENV, &name) < 0)
		return -1;
	if (!name || !policy_name_is_valid(name)) {
		cfg_fail(x, cfg_line_of(item, "name"), field,
		         "key name '%s' is empty, too long or contains invalid characters",
		         name ? name : "");
		free(name);
		return -1;
	}
	for (size_t i = 0; i < *count; i++) {
		if (strcmp(keys[i], name) == 0) {
			cfg_fail(x, item->line, at, "key '%s' is defined multiple times", name);
			free(name);
			return -1;
		}
	}
	keys[(*count)++] = name;
	return 0;
}

int cfg_load_key_list(struct cfg_ctx *x, const struct ynode *keys, const char *at, char ***out,
                      size_t *count)
{
	if (ynode_is_null(keys))
		return 0;
	if (keys->kind == YNODE_MAP)
		return cfg_fail(x, keys->line, at,
		                "expected a list of '- name: <key name>' entries (the keystore "
		                "section of old KES configs is now called 'keystore')");
	if (keys->kind != YNODE_SEQ)
		return cfg_fail(x, keys->line, at, "expected a list of '- name: <key name>'");
	if (keys->count == 0)
		return 0;
	*out = calloc(keys->count, sizeof **out);
	if (!*out)
		return cfg_fail(x, keys->line, at, "out of memory");
	for (size_t i = 0; i < keys->count; i++)
		if (load_key_entry(x, keys->items[i], at, i, *out, count) < 0)
			return -1;
	return 0;
}

static int load_keys(struct cfg_ctx *x, const struct ynode *root)
{
	return cfg_load_key_list(x, ynode_get(root, "keys", NULL), "keys", &x->c->keys,
	                         &x->c->key_count);
}

static int positive_duration(struct cfg_ctx *x, const struct ynode *server, const char *key,
                             const char *field, int64_t *slot)
{
	int64_t ms = 0;
	int r = cfg_get_duration(x, server, key, field, &ms);
	if (r <= 0)
		return r;
	if (ms <= 0)
		return cfg_fail(x, cfg_line_of(server, key), field, "must be a positive duration");
	*slot = ms;
	return 0;
}

static int load_server(struct cfg_ctx *x, const struct ynode *root)
{
	struct config *c = x->c;
	const struct ynode *server;
	int r = cfg_get_map(x, root, "server", "server", &server);
	if (r <= 0)
		return r;
	if (cfg_get_uint(x, server, "max_connections", "server.max_connections",
	                 &c->server.max_connections) < 0 ||
	    cfg_get_uint(x, server, "tenant_max_connections", "server.tenant_max_connections",
	                 &c->server.tenant_max_connections) < 0 ||
	    cfg_get_uint(x, server, "threads", "server.threads", &c->server.threads) < 0 ||
	    positive_duration(x, server, "handshake_timeout", "server.handshake_timeout",
	                      &c->server.handshake_timeout_ms) < 0 ||
	    positive_duration(x, server, "header_timeout", "server.header_timeout",
	                      &c->server.header_timeout_ms) < 0 ||
	    positive_duration(x, server, "idle_timeout", "server.idle_timeout",
	                      &c->server.idle_timeout_ms) < 0 ||
	    positive_duration(x, server, "shutdown_timeout", "server.shutdown_timeout",
	                      &c->server.shutdown_timeout_ms) < 0)
		return -1;
	if (c->server.max_connections == 0)
		return cfg_fail(x, cfg_line_of(server, "max_connections"), "server.max_connections",
		                "must be at least 1");
	if (c->server.threads > 1024)
		return cfg_fail(x, cfg_line_of(server, "threads"), "server.threads",
		                "at most 1024 (0 = one per CPU core)");
	return 0;
}

int cfg_load_top(struct cfg_ctx *x, const struct ynode *root)
{
	char *addr = NULL;
	if (load_version(x, root) < 0)
		return -1;
	if (get_optional(x, root, "address", "address", CFG_ENV, &addr) < 0)
		return -1;
	if (addr) {
		free(x->c->address);
		x->c->address = addr;
	}
	if (load_admin(x, root) < 0 || load_tls(x, root) < 0 || load_cache(x, root) < 0 ||
	    load_log(x, root) < 0 || load_api(x, root) < 0 || load_keys(x, root) < 0 ||
	    load_server(x, root) < 0)
		return -1;
	return 0;
}
