/*
 * config_tenants.c — the tenants: section (a kesc extension, config.h struct config_tenant):
 * many tenants behind one listener, each with its own keystore layout on the top-level
 * keystore's connection, its own policies and identities, its own cache settings and keys.
 *
 * Everything that would let two tenants reach each other's keys is refused here, with the
 * line: an identity in two places, two tenants on one location (the same directory or one
 * inside the other; the same Vault namespace, engine and prefix), a path that leaves the
 * top-level directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "server/config_internal.h"

#define AT_MAX 200

/* A directory below keystore.fs.path: relative, plain segments, no "." or "..". */
static bool fs_subdir_valid(const char *p)
{
	if (!p[0] || p[0] == '/')
		return false;
	const char *seg = p;
	for (const char *c = p;; c++) {
		if (*c != '/' && *c != '\0') {
			bool ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
			          (*c >= 'A' && *c <= 'Z') || *c == '_' || *c == '-' || *c == '.';
			if (!ok)
				return false;
			continue;
		}
		size_t n = (size_t)(c - seg);
		if (n == 0 || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		if (*c == '\0')
			return true;
		seg = c + 1;
	}
}

static int load_tenant_fs(struct cfg_ctx *x, struct config_tenant *t, const struct ynode *fs,
                          const char *at)
{
	char field[AT_MAX + 32], *sub = NULL;
	snprintf(field, sizeof field, "%s.keystore.fs.path", at);
	if (cfg_get_string(x, fs, "path", field, CFG_ENV, &sub) < 0)
		return -1;
	if (sub) { /* "a/b/" is "a/b" */
		size_t len = strlen(sub);
		while (len > 1 && sub[len - 1] == '/')
			sub[--len] = '\0';
	}
	const char *dir = sub && sub[0] ? sub : t->name;
	if (!fs_subdir_valid(dir)) {
		cfg_fail(x, cfg_line_of(fs, "path"), field,
		         "'%s' is not a directory below keystore.fs.path (a relative path of "
		         "[0-9A-Za-z_.-] names, without '.' or '..')",
		         dir);
		free(sub);
		return -1;
	}
	size_t n = strlen(x->c->fs_path) + strlen(dir) + 2;
	t->fs_path = malloc(n);
	if (t->fs_path) {
		const char *top = x->c->fs_path;
		size_t tl = strlen(top);
		while (tl > 1 && top[tl - 1] == '/')
			tl--;
		snprintf(t->fs_path, n, "%.*s/%s", (int)tl, top, dir);
	}
	free(sub);
	return t->fs_path ? 0 : cfg_fail(x, 0, field, "out of memory");
}

/* A namespace or prefix the tenant sets: 1 present (NULL when empty: none), 0 absent. */
static int tenant_location_field(struct cfg_ctx *x, const struct ynode *vault, const char *key,
                                 const char *at, char **slot)
{
	char field[AT_MAX + 40];
	snprintf(field, sizeof field, "%s.keystore.vault.%s", at, key);
	if (!ynode_get(vault, key, NULL))
		return 0;
	char *v = NULL;
	if (cfg_get_string(x, vault, key, field, CFG_ENV, &v) < 0)
		return -1;
	free(*slot);
	*slot = v && v[0] ? v : NULL;
	if (v && !v[0])
		free(v);
	return 1;
}

/* A tenant's own K/V mount and version (a kesc that served it alone may have used others);
 * absent: the top level's. */
static int load_tenant_engine(struct cfg_ctx *x, struct vault_config *v, const struct ynode *vault,
                              const char *at)
{
	char field[AT_MAX + 40], *engine = NULL, *version = NULL;
	snprintf(field, sizeof field, "%s.keystore.vault.engine", at);
	if (cfg_get_string(x, vault, "engine", field, CFG_ENV, &engine) < 0)
		return -1;
	if (engine && engine[0]) {
		free(v->engine);
		v->engine = engine;
	} else {
		free(engine);
	}
	snprintf(field, sizeof field, "%s.keystore.vault.version", at);
	if (cfg_get_string(x, vault, "version", field, CFG_ENV, &version) < 0)
		return -1;
	int rc = 0;
	if (version && (!strcmp(version, "v1") || !strcmp(version, "v2")))
		v->kv_version = version[1] - '0';
	else if (version && version[0])
		rc = cfg_fail(x, cfg_line_of(vault, "version"), field,
		              "invalid K/V engine version '%s' (v1 or v2)", version);
	free(version);
	return rc;
}

static int load_tenant_vault(struct cfg_ctx *x, struct config_tenant *t, const struct ynode *vault,
                             const char *at)
{
	struct vault_config *v = &t->vault;
	if (cfg_vault_copy(v, &x->c->vault) != 0)
		return cfg_fail(x, 0, at, "out of memory");
	int ns = tenant_location_field(x, vault, "namespace", at, &v->namespace_);
	int prefix = ns < 0 ? -1 : tenant_location_field(x, vault, "prefix", at, &v->prefix);
	if (ns < 0 || prefix < 0)
		return -1;
	if (!ns && !prefix && cfg_set_string(x, &v->prefix, t->name) < 0)
		return -1; /* neither given: the tenant's keys are below its name */
	if (load_tenant_engine(x, v, vault, at) < 0)
		return -1;
	const struct ynode *a = ynode_get(vault, "approle", NULL);
	const struct ynode *k = ynode_get(vault, "kubernetes", NULL);
	if (!ynode_is_null(a) || !ynode_is_null(k)) {
		struct vault_config own = {0};
		char sub[AT_MAX + 16];
		snprintf(sub, sizeof sub, "%s.keystore.vault", at);
		int r =
		    cfg_load_vault_auth(x, &own, vault, cfg_line_of(vault, "approle"), sub, false);
		if (r > 0) {
			cfg_vault_free_auth(v); /* its own login only */
			v->auth = own.auth;
			v->auth_engine = own.auth_engine;
			v->auth_namespace = own.auth_namespace;
			v->approle_id = own.approle_id;
			v->approle_secret = own.approle_secret;
			v->k8s_role = own.k8s_role;
			v->k8s_jwt = own.k8s_jwt;
			v->k8s_jwt_is_file = own.k8s_jwt_is_file;
			t->vault_own_auth = true;
			return 0;
		}
		cfg_vault_free(&own);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int load_tenant_keystore(struct cfg_ctx *x, struct config_tenant *t,
                                const struct ynode *value, const char *at)
{
	char field[AT_MAX + 32];
	const struct ynode *ks = NULL, *fs = NULL, *vault = NULL;
	snprintf(field, sizeof field, "%s.keystore", at);
	if (cfg_get_map(x, value, "keystore", field, &ks) < 0)
		return -1;
	snprintf(field, sizeof field, "%s.keystore.fs", at);
	if (cfg_get_map(x, ks, "fs", field, &fs) < 0)
		return -1;
	snprintf(field, sizeof field, "%s.keystore.vault", at);
	if (cfg_get_map(x, ks, "vault", field, &vault) < 0)
		return -1;
	bool is_fs = x->c->keystore == CONFIG_KEYSTORE_FS;
	if (is_fs && vault)
		return cfg_fail(x, cfg_line_of(ks, "vault"), field,
		                "the top-level keystore is fs: a tenant's keys are a directory "
		                "below keystore.fs.path ('fs: {path: …}')");
	if (!is_fs && fs)
		return cfg_fail(x, cfg_line_of(ks, "fs"), field,
		                "the top-level keystore is vault: a tenant's keys are a namespace "
		                "and/or prefix on its connection ('vault: {namespace, prefix}')");
	return is_fs ? load_tenant_fs(x, t, fs, at) : load_tenant_vault(x, t, vault, at);
}

static int load_tenant(struct cfg_ctx *x, const struct ynode *key, const struct ynode *value,
                       struct config_tenant *t)
{
	char at[AT_MAX], field[AT_MAX + 16];
	t->line = key->line;
	if (!policy_name_is_valid(key->value))
		return cfg_fail(
		    x, key->line, "tenants",
		    "tenant name '%s' is empty, too long or contains invalid characters",
		    key->value);
	if (cfg_set_string(x, &t->name, key->value) < 0)
		return -1;
	snprintf(at, sizeof at, "tenants.%s", key->value);
	if (!ynode_is_null(value) && value->kind != YNODE_MAP)
		return cfg_fail(x, value->line, at,
		                "expected 'keystore', 'policy', 'cache' and/or 'keys'");
	t->cache = x->c->cache; /* the top level's settings, unless the tenant has its own */
	const struct ynode *pol = NULL, *cache = NULL;
	snprintf(field, sizeof field, "%s.policy", at);
	if (load_tenant_keystore(x, t, value, at) < 0 ||
	    cfg_get_map(x, value, "policy", field, &pol) < 0 ||
	    cfg_load_policy_map(x, pol, field, &t->policies, &t->policy_count) < 0)
		return -1;
	snprintf(field, sizeof field, "%s.cache", at);
	if (cfg_get_map(x, value, "cache", field, &cache) < 0 ||
	    cfg_load_cache_map(x, cache, field, &t->cache) < 0)
		return -1;
	snprintf(field, sizeof field, "%s.keys", at);
	return cfg_load_key_list(x, ynode_get(value, "keys", NULL), field, &t->keys, &t->key_count);
}

/* "a/b/" and "/a/b" → "a/b": namespaces and prefixes compared as Vault resolves them. */
static void trim_slashes(const char *s, char *out, size_t n)
{
	s = s ? s : "";
	while (*s == '/')
		s++;
	size_t len = strlen(s);
	while (len > 0 && s[len - 1] == '/')
		len--;
	snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), s);
}

/* Whether a equals b or one is a directory inside the other ("a" and "a/b"). */
static bool paths_nest(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;
	if (strncmp(a, b, n) != 0)
		return false;
	return la == lb || (la < lb ? b[la] == '/' : a[lb] == '/');
}

struct location {
	char ns[512], engine[256], prefix[512];
};

static void vault_location(const struct vault_config *v, struct location *l)
{
	trim_slashes(v->namespace_, l->ns, sizeof l->ns);
	trim_slashes(v->engine ? v->engine : "kv", l->engine, sizeof l->engine);
	trim_slashes(v->prefix, l->prefix, sizeof l->prefix);
}

/* Two tenants, or a tenant and the top level (top: b is the top level), on one location. */
static bool locations_clash(const struct location *a, const struct location *b, bool top)
{
	if (strcmp(a->ns, b->ns) != 0 || strcmp(a->engine, b->engine) != 0)
		return false;
	/* The top level may hold tenants' prefixes below its own: a key name is one segment,
	 * so no name of one reaches the other's entries. */
	return top ? strcmp(a->prefix, b->prefix) == 0 : paths_nest(a->prefix, b->prefix);
}

static int check_vault_locations(struct cfg_ctx *x)
{
	const struct config *c = x->c;
	struct location top, *l = calloc(c->tenant_count, sizeof(*l));
	if (!l)
		return cfg_fail(x, 0, "tenants", "out of memory");
	vault_location(&c->vault, &top);
	int rc = 0;
	for (size_t i = 0; i < c->tenant_count && rc == 0; i++) {
		const struct config_tenant *t = &c->tenants[i];
		vault_location(&t->vault, &l[i]);
		if (locations_clash(&l[i], &top, true))
			rc = cfg_fail(
			    x, t->line, "tenants",
			    "tenant '%s' uses the top-level keystore's location (namespace "
			    "'%s', prefix '%s'): give it a prefix or namespace of its own",
			    t->name, top.ns, top.prefix);
		for (size_t j = 0; j < i && rc == 0; j++)
			if (locations_clash(&l[i], &l[j], false))
				rc = cfg_fail(x, t->line, "tenants",
				              "tenants '%s' and '%s' share a keystore location "
				              "(namespace '%s', prefixes '%s' and '%s')",
				              c->tenants[j].name, t->name, l[i].ns, l[j].prefix,
				              l[i].prefix);
	}
	free(l);
	return rc;
}

static int check_fs_locations(struct cfg_ctx *x)
{
	const struct config *c = x->c;
	for (size_t i = 0; i < c->tenant_count; i++)
		for (size_t j = 0; j < i; j++)
			if (paths_nest(c->tenants[i].fs_path, c->tenants[j].fs_path))
				return cfg_fail(x, c->tenants[i].line, "tenants",
				                "tenants '%s' and '%s' share a keystore location "
				                "('%s' and '%s')",
				                c->tenants[j].name, c->tenants[i].name,
				                c->tenants[j].fs_path, c->tenants[i].fs_path);
	return 0;
}

int cfg_load_tenants(struct cfg_ctx *x, const struct ynode *root)
{
	struct config *c = x->c;
	const struct ynode *map;
	if (cfg_get_map(x, root, "tenants", "tenants", &map) <= 0)
		return x->err[0] ? -1 : 0;
	if (map->count == 0)
		return 0;
	if (c->keystore != CONFIG_KEYSTORE_FS && c->keystore != CONFIG_KEYSTORE_VAULT)
		return cfg_fail(
		    x, cfg_line_of(root, "tenants"), "tenants",
		    "tenants need keystore.fs or keystore.vault at the top level (their "
		    "keys live below it)");
	c->tenants = calloc(map->count, sizeof(*c->tenants));
	if (!c->tenants)
		return cfg_fail(x, map->line, "tenants", "out of memory");
	for (size_t i = 0; i < map->count; i++) {
		/* counted first, so that identities of its policies are checked against each other
		 * and config_free releases a partial entry */
		c->tenant_count++;
		if (load_tenant(x, map->items[2 * i], map->items[2 * i + 1], &c->tenants[i]) < 0)
			return -1;
	}
	return c->keystore == CONFIG_KEYSTORE_FS ? check_fs_locations(x) : check_vault_locations(x);
}
