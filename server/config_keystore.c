/*
 * config_keystore.c — the keystore: section. kesc stores keys on the filesystem or in
 * HashiCorp Vault; the other KES keystores are recognised so that their configs fail with a
 * clear message instead of "no keystore specified".
 *
 * Which sections count: KES's own server-config.yaml template lists every keystore with empty
 * values, so a section (keystore, or vault's approle / kubernetes / transit) counts as
 * specified only when some value below it is non-empty. The timer fields the template fills
 * in (vault.status.ping, gemalto ...credentials.retry) do not count.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/secmem.h"
#include "server/config_internal.h"

static const char *const unsupported_keystores[] = {
    "aws", "gcp", "azure", "gemalto", "fortanix", "entrust", "kes", "encryptedfs", "generic",
};

static bool has_value(const struct ynode *n)
{
	if (!n)
		return false;
	switch (n->kind) {
	case YNODE_SCALAR:
		return !ynode_is_null(n) && n->len > 0;
	case YNODE_SEQ:
		for (size_t i = 0; i < n->count; i++)
			if (has_value(n->items[i]))
				return true;
		return false;
	case YNODE_MAP:
		for (size_t i = 0; i < n->count; i++) {
			const char *k = n->items[2 * i]->value;
			if (strcmp(k, "ping") == 0 || strcmp(k, "retry") == 0)
				continue;
			if (has_value(n->items[2 * i + 1]))
				return true;
		}
		return false;
	}
	return false;
}

static int required(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                    enum cfg_env env, char **slot, unsigned line, const char *section,
                    const char *reason)
{
	if (cfg_get_string(x, map, key, field, env, slot) < 0)
		return -1;
	if (!*slot || !(*slot)[0])
		return cfg_fail(x, line, section, "%s", reason);
	return 0;
}

static int optional(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                    char **slot, const char *fallback)
{
	if (cfg_get_string(x, map, key, field, CFG_ENV, slot) < 0)
		return -1;
	if (*slot && !(*slot)[0]) {
		free(*slot);
		*slot = NULL;
	}
	if (!*slot && fallback)
		return cfg_set_string(x, slot, fallback);
	return 0;
}

static int load_fs(struct cfg_ctx *x, const struct ynode *fs, unsigned line)
{
	return required(x, fs, "path", "keystore.fs.path", CFG_ENV, &x->c->fs_path, line,
	                "keystore.fs", "no path specified");
}

static int check_jwt_file(struct cfg_ctx *x, const char *path, unsigned line, const char *field)
{
#ifdef KESC_FUZZING
	(void)x, (void)path, (void)line, (void)field;
	return 0; /* never touch the filesystem on fuzzer input */
#else
	FILE *f = fopen(path, "rb");
	char probe[1];
	if (!f)
		return cfg_fail(x, line, field, "failed to read vault kubernetes JWT from '%s': %s",
		                path, strerror(errno));
	/* Unbuffered, so no stdio buffer holds a piece of the token after fclose. */
	size_t n = setvbuf(f, NULL, _IONBF, 0) == 0 ? fread(probe, 1, sizeof probe, f) : 0;
	int failed = ferror(f) || n == 0;
	secure_zero(probe, sizeof probe);
	fclose(f);
	if (failed)
		return cfg_fail(
		    x, line, field,
		    "failed to read vault kubernetes JWT from '%s': empty or unreadable", path);
	return 0;
#endif
}

/* "<prefix>.<suffix>" into a buffer of the caller: the field names of messages. */
static const char *field_name(char *buf, size_t n, const char *prefix, const char *suffix)
{
	snprintf(buf, n, "%s.%s", prefix, suffix);
	return buf;
}

static int load_approle(struct cfg_ctx *x, struct vault_config *v, const struct ynode *a,
                        unsigned line, const char *at)
{
	char f[4][192], s[160];
	v->auth = VAULT_AUTH_APPROLE;
	snprintf(s, sizeof s, "%s.approle", at);
	if (optional(x, a, "engine", field_name(f[0], sizeof f[0], s, "engine"), &v->auth_engine,
	             "approle") < 0 ||
	    optional(x, a, "namespace", field_name(f[1], sizeof f[1], s, "namespace"),
	             &v->auth_namespace, NULL) < 0 ||
	    required(x, a, "id", field_name(f[2], sizeof f[2], s, "id"), CFG_ENV, &v->approle_id,
	             line, s, "no approle ID specified") < 0 ||
	    required(x, a, "secret", field_name(f[3], sizeof f[3], s, "secret"), CFG_ENV,
	             &v->approle_secret, line, s, "no approle secret specified") < 0)
		return -1;
	return 0;
}

static int load_kubernetes(struct cfg_ctx *x, struct vault_config *v, const struct ynode *k,
                           unsigned line, const char *at)
{
	char f[4][192], s[160];
	v->auth = VAULT_AUTH_KUBERNETES;
	snprintf(s, sizeof s, "%s.kubernetes", at);
	if (optional(x, k, "engine", field_name(f[0], sizeof f[0], s, "engine"), &v->auth_engine,
	             "kubernetes") < 0 ||
	    optional(x, k, "namespace", field_name(f[1], sizeof f[1], s, "namespace"),
	             &v->auth_namespace, NULL) < 0 ||
	    optional(x, k, "role", field_name(f[2], sizeof f[2], s, "role"), &v->k8s_role, NULL) <
	        0 ||
	    required(x, k, "jwt", field_name(f[3], sizeof f[3], s, "jwt"), CFG_ENV, &v->k8s_jwt,
	             line, s, "no JWT specified") < 0)
		return -1;
	/* KES: a JWT never contains '/', so a value with one is a file (re-read at login). */
	if (strchr(v->k8s_jwt, '/')) {
		v->k8s_jwt_is_file = true;
		return check_jwt_file(x, v->k8s_jwt, cfg_line_of(k, "jwt"), f[3]);
	}
	return 0;
}

int cfg_load_vault_auth(struct cfg_ctx *x, struct vault_config *v, const struct ynode *vault,
                        unsigned line, const char *at, bool required_auth)
{
	const struct ynode *approle, *k8s;
	char f[2][192];
	if (cfg_get_map(x, vault, "approle", field_name(f[0], sizeof f[0], at, "approle"),
	                &approle) < 0 ||
	    cfg_get_map(x, vault, "kubernetes", field_name(f[1], sizeof f[1], at, "kubernetes"),
	                &k8s) < 0)
		return -1;
	bool use_approle = has_value(approle), use_k8s = has_value(k8s);
	if (!use_approle && !use_k8s)
		return required_auth ? cfg_fail(x, line, at, "no authentication method specified")
		                     : 0;
	if (use_approle && use_k8s)
		return cfg_fail(x, cfg_line_of(vault, "kubernetes"), at,
		                "more than one authentication method specified");
	if (use_approle)
		return load_approle(x, v, approle, cfg_line_of(vault, "approle"), at) < 0 ? -1 : 1;
	return load_kubernetes(x, v, k8s, cfg_line_of(vault, "kubernetes"), at) < 0 ? -1 : 1;
}

static int load_vault_extras(struct cfg_ctx *x, const struct ynode *vault)
{
	struct vault_config *v = &x->c->vault;
	const struct ynode *transit, *tls, *status;
	if (cfg_get_map(x, vault, "transit", "keystore.vault.transit", &transit) < 0 ||
	    cfg_get_map(x, vault, "tls", "keystore.vault.tls", &tls) < 0 ||
	    cfg_get_map(x, vault, "status", "keystore.vault.status", &status) < 0)
		return -1;
	if (has_value(transit)) {
		v->transit = true;
		if (optional(x, transit, "engine", "keystore.vault.transit.engine",
		             &v->transit_engine, "transit") < 0 ||
		    required(x, transit, "key", "keystore.vault.transit.key", CFG_ENV,
		             &v->transit_key, cfg_line_of(vault, "transit"),
		             "keystore.vault.transit", "no key name specified") < 0)
			return -1;
	}
	if (optional(x, tls, "key", "keystore.vault.tls.key", &v->tls_key, NULL) < 0 ||
	    optional(x, tls, "cert", "keystore.vault.tls.cert", &v->tls_cert, NULL) < 0 ||
	    optional(x, tls, "ca", "keystore.vault.tls.ca", &v->tls_ca, NULL) < 0)
		return -1;
	if (v->tls_key && !v->tls_cert)
		return cfg_fail(x, cfg_line_of(vault, "tls"), "keystore.vault.tls",
		                "no TLS certificate provided");
	if (!v->tls_key && v->tls_cert)
		return cfg_fail(x, cfg_line_of(vault, "tls"), "keystore.vault.tls",
		                "no TLS private key provided");
	int64_t ping = 0;
	if (cfg_get_duration(x, status, "ping", "keystore.vault.status.ping", &ping) < 0)
		return -1;
	if (ping < 0)
		return cfg_fail(x, cfg_line_of(status, "ping"), "keystore.vault.status.ping",
		                "invalid status ping interval '%s'",
		                ynode_get(status, "ping", NULL)->value);
	if (ping > 0)
		v->ping_ms = ping;
	return 0;
}

/* A kesc extension duration: 0 or absent keeps vault.c's default; else min_ms..max_ms. */
static int vault_duration(struct cfg_ctx *x, const struct ynode *vault, const char *key,
                          const char *field, int64_t min_ms, int64_t max_ms, const char *range,
                          int64_t *slot)
{
	int64_t ms = 0;
	int r = cfg_get_duration(x, vault, key, field, &ms);
	if (r <= 0 || ms == 0)
		return r < 0 ? -1 : 0;
	if (ms < min_ms || ms > max_ms)
		return cfg_fail(x, cfg_line_of(vault, key), field, "must be between %s", range);
	*slot = ms;
	return 0;
}

/* kesc extensions: the transport to Vault, and the K/V v1 overwrite opt-in. */
static int load_vault_client(struct cfg_ctx *x, const struct ynode *vault)
{
	struct vault_config *v = &x->c->vault;
	unsigned retries = 0;
	int r;
	if (vault_duration(x, vault, "connect_timeout", "keystore.vault.connect_timeout", 100,
	                   60 * 1000, "100ms and 1m (0 = the default, 5s)",
	                   &v->connect_timeout_ms) < 0 ||
	    vault_duration(x, vault, "request_timeout", "keystore.vault.request_timeout", 100,
	                   5 * 60 * 1000, "100ms and 5m (0 = the default, 15s)",
	                   &v->request_timeout_ms) < 0 ||
	    cfg_get_bool(x, vault, "allow_unsafe_kv_v1_update",
	                 "keystore.vault.allow_unsafe_kv_v1_update",
	                 &v->allow_unsafe_kv_v1_update) < 0)
		return -1;
	if ((r = cfg_get_uint(x, vault, "max_retries", "keystore.vault.max_retries", &retries)) < 0)
		return -1;
	if (r > 0 && retries > 10)
		return cfg_fail(x, cfg_line_of(vault, "max_retries"), "keystore.vault.max_retries",
		                "must be between 0 and 10 (default 2)");
	if (r > 0)
		v->max_retries = (int)retries;
	return 0;
}

static int load_vault(struct cfg_ctx *x, const struct ynode *vault, unsigned line)
{
	struct vault_config *v = &x->c->vault;
	char *version = NULL;
	if (required(x, vault, "endpoint", "keystore.vault.endpoint", CFG_ENV, &v->endpoint, line,
	             "keystore.vault", "no endpoint specified") < 0 ||
	    optional(x, vault, "engine", "keystore.vault.engine", &v->engine, "kv") < 0 ||
	    optional(x, vault, "namespace", "keystore.vault.namespace", &v->namespace_, NULL) < 0 ||
	    optional(x, vault, "prefix", "keystore.vault.prefix", &v->prefix, NULL) < 0 ||
	    optional(x, vault, "version", "keystore.vault.version", &version, "v1") < 0)
		return -1;
	if (strcmp(version, "v1") == 0 || strcmp(version, "v2") == 0) {
		v->kv_version = version[1] - '0';
	} else {
		cfg_fail(x, cfg_line_of(vault, "version"), "keystore.vault.version",
		         "invalid K/V engine version '%s' (v1 or v2)", version);
		free(version);
		return -1;
	}
	free(version);
	if (cfg_load_vault_auth(x, v, vault, line, "keystore.vault", true) < 0 ||
	    load_vault_extras(x, vault) < 0 || load_vault_client(x, vault) < 0)
		return -1;
	return 0;
}

static bool is_unsupported(const char *name)
{
	for (size_t i = 0; i < sizeof unsupported_keystores / sizeof *unsupported_keystores; i++)
		if (strcmp(name, unsupported_keystores[i]) == 0)
			return true;
	return false;
}

int cfg_load_keystore(struct cfg_ctx *x, const struct ynode *root)
{
	const struct ynode *ks, *chosen = NULL, *chosen_key = NULL;
	if (cfg_get_map(x, root, "keystore", "keystore", &ks) < 0)
		return -1;
	for (size_t i = 0; ks && i < ks->count; i++) {
		const struct ynode *k = ks->items[2 * i], *v = ks->items[2 * i + 1];
		bool known = strcmp(k->value, "fs") == 0 || strcmp(k->value, "vault") == 0 ||
		             is_unsupported(k->value);
		if (!known || !has_value(v))
			continue;
		if (chosen)
			return cfg_fail(x, k->line, "keystore",
			                "more than one keystore specified ('%s' and '%s')",
			                chosen_key->value, k->value);
		chosen = v;
		chosen_key = k;
	}
	if (!chosen) {
		if (x->flags & CONFIG_ALLOW_NO_KEYSTORE)
			return 0;
		return cfg_fail(x, root ? cfg_line_of(root, "keystore") : 1, "keystore",
		                "no keystore specified");
	}
	char field[64];
	snprintf(field, sizeof field, "keystore.%s", chosen_key->value);
	if (chosen->kind != YNODE_MAP)
		return cfg_fail(x, chosen->line, field, "expected a mapping (key: value lines)");
	if (strcmp(chosen_key->value, "fs") == 0) {
		x->c->keystore = CONFIG_KEYSTORE_FS;
		return load_fs(x, chosen, chosen_key->line);
	}
	if (strcmp(chosen_key->value, "vault") == 0) {
		x->c->keystore = CONFIG_KEYSTORE_VAULT;
		return load_vault(x, chosen, chosen_key->line);
	}
	return cfg_fail(x, chosen_key->line, field, "not supported by kesc (supported: fs, vault)");
}
