/*
 * config_schema.c — the set of keys a kesc config may contain. KES ignores unknown keys
 * silently, which turns a typo such as "atuh: on" into a server that runs weaker than written;
 * kesc refuses them (fail closed): every unknown field is listed in the error with its line
 * and the nearest known key. The schema covers every section KES knows, including the
 * keystores kesc does not serve, so a typo in an unused template section is found too.
 * Fields that older KES versions defined and KES HEAD ignores (the Vault login retry delays,
 * gemalto's credentials.retry in KES's own template) are accepted with a warning: they never
 * change what the server does.
 */
#include <stdio.h>
#include <string.h>

#include "server/config_internal.h"

enum schema_kind {
	SCHEMA_LEAF,   /* a value (scalar or list of scalars); not descended into */
	SCHEMA_MAP,    /* fixed keys (fields) */
	SCHEMA_MAP_OF, /* any keys; every value is a mapping with the keys in fields */
	SCHEMA_SEQ_OF, /* a list of mappings with the keys in fields */
	SCHEMA_LEGACY, /* defined by older KES versions, ignored by KES HEAD: a warning */
};

struct schema {
	const char *key;
	enum schema_kind kind;
	const struct schema *fields; /* terminated by a NULL key */
};

#define LEAF(k)                      \
	{                            \
		k, SCHEMA_LEAF, NULL \
	}
#define LEGACY(k)                      \
	{                              \
		k, SCHEMA_LEGACY, NULL \
	}
#define MAP(k, f)                \
	{                        \
		k, SCHEMA_MAP, f \
	}
#define END                             \
	{                               \
		NULL, SCHEMA_LEAF, NULL \
	}

static const struct schema s_admin[] = {LEAF("identity"), END};
static const struct schema s_header[] = {LEAF("cert"), END};
static const struct schema s_proxy[] = {LEAF("identities"), MAP("header", s_header), END};
static const struct schema s_tls[] = {LEAF("key"),  LEAF("cert"), LEAF("password"),
                                      LEAF("auth"), LEAF("ca"),   MAP("proxy", s_proxy),
                                      END};
static const struct schema s_policy[] = {LEAF("allow"), LEAF("deny"), LEAF("identities"), END};
static const struct schema s_expiry[] = {LEAF("any"), LEAF("unused"), LEAF("offline"), END};
static const struct schema s_cache[] = {MAP("expiry", s_expiry), LEAF("max_keys"), END};
static const struct schema s_log[] = {LEAF("error"), LEAF("audit"), LEAF("audit_failure"), END};
static const struct schema s_api[] = {LEAF("skip_auth"), LEAF("timeout"), END};
static const struct schema s_key[] = {LEAF("name"), END};
static const struct schema s_lifecycle[] = {LEAF("rotate_after"), LEAF("delete_window"),
                                            LEAF("check_interval"), END};
static const struct schema s_server[] = {LEAF("max_connections"),   LEAF("tenant_max_connections"),
                                         LEAF("handshake_timeout"), LEAF("header_timeout"),
                                         LEAF("idle_timeout"),      LEAF("shutdown_timeout"),
                                         LEAF("threads"),           END};

/* keystore.fs and keystore.vault: the ones kesc serves. */
static const struct schema s_fs[] = {LEAF("path"), END};
static const struct schema s_transit[] = {LEAF("engine"), LEAF("key"), END};
static const struct schema s_approle[] = {LEAF("engine"), LEAF("namespace"), LEAF("id"),
                                          LEAF("secret"), LEGACY("retry"),   END};
static const struct schema s_k8s[] = {LEAF("engine"), LEAF("namespace"), LEAF("role"),
                                      LEAF("jwt"),    LEGACY("retry"),   END};
static const struct schema s_client_tls[] = {LEAF("key"), LEAF("cert"), LEAF("ca"), END};
static const struct schema s_status[] = {LEAF("ping"), END};
static const struct schema s_vault[] = {LEAF("endpoint"),
                                        LEAF("engine"),
                                        LEAF("version"),
                                        LEAF("namespace"),
                                        LEAF("prefix"),
                                        MAP("transit", s_transit),
                                        MAP("approle", s_approle),
                                        MAP("kubernetes", s_k8s),
                                        MAP("tls", s_client_tls),
                                        MAP("status", s_status),
                                        LEAF("connect_timeout"),
                                        LEAF("request_timeout"),
                                        LEAF("max_retries"),
                                        LEAF("allow_unsafe_kv_v1_update"),
                                        END};

/* KES's other keystores (kesconf/config.go at HEAD; generic from KES v0.22, encryptedfs from
 * later KES): refused by name when filled in, checked field by field all the same. */
static const struct schema s_ca_only[] = {LEAF("ca"), END};
static const struct schema s_kes[] = {LEAF("endpoint"), LEAF("enclave"), MAP("tls", s_client_tls),
                                      END};
static const struct schema s_fortanix_credentials[] = {LEAF("key"), END};
static const struct schema s_sdkms[] = {LEAF("endpoint"), LEAF("group_id"),
                                        MAP("credentials", s_fortanix_credentials),
                                        MAP("tls", s_ca_only), END};
static const struct schema s_fortanix[] = {MAP("sdkms", s_sdkms), END};
static const struct schema s_keysecure_credentials[] = {LEAF("token"), LEAF("domain"),
                                                        LEGACY("retry"), END};
static const struct schema s_keysecure[] = {
    LEAF("endpoint"), MAP("credentials", s_keysecure_credentials), MAP("tls", s_ca_only), END};
static const struct schema s_gemalto[] = {MAP("keysecure", s_keysecure), END};
static const struct schema s_gcp_credentials[] = {LEAF("client_email"), LEAF("client_id"),
                                                  LEAF("private_key_id"), LEAF("private_key"), END};
static const struct schema s_secretmanager[] = {LEAF("project_id"), LEAF("endpoint"),
                                                LEAF("scopes"),
                                                MAP("credentials", s_gcp_credentials), END};
static const struct schema s_gcp[] = {MAP("secretmanager", s_secretmanager), END};
static const struct schema s_aws_credentials[] = {LEAF("accesskey"), LEAF("secretkey"),
                                                  LEAF("token"), END};
static const struct schema s_secretsmanager[] = {LEAF("endpoint"), LEAF("region"), LEAF("kmskey"),
                                                 MAP("credentials", s_aws_credentials), END};
static const struct schema s_aws[] = {MAP("secretsmanager", s_secretsmanager), END};
static const struct schema s_azure_credentials[] = {LEAF("tenant_id"), LEAF("client_id"),
                                                    LEAF("client_secret"), END};
static const struct schema s_managed_identity[] = {LEAF("client_id"), END};
static const struct schema s_keyvault[] = {LEAF("endpoint"),
                                           MAP("credentials", s_azure_credentials),
                                           MAP("managed_identity", s_managed_identity), END};
static const struct schema s_azure[] = {MAP("keyvault", s_keyvault), END};
static const struct schema s_entrust_credentials[] = {LEAF("username"), LEAF("password"), END};
static const struct schema s_keycontrol[] = {
    LEAF("endpoint"),      LEAF("vault_id"),
    LEAF("box_id"),        MAP("credentials", s_entrust_credentials),
    MAP("tls", s_ca_only), END};
static const struct schema s_entrust[] = {MAP("keycontrol", s_keycontrol), END};
static const struct schema s_encryptedfs[] = {LEAF("masterKeyPath"), LEAF("masterKeyCipher"),
                                              LEAF("path"), END};
static const struct schema s_generic[] = {LEAF("endpoint"), MAP("tls", s_client_tls), END};

static const struct schema s_keystore[] = {MAP("fs", s_fs),
                                           MAP("vault", s_vault),
                                           MAP("aws", s_aws),
                                           MAP("gcp", s_gcp),
                                           MAP("azure", s_azure),
                                           MAP("gemalto", s_gemalto),
                                           MAP("fortanix", s_fortanix),
                                           MAP("entrust", s_entrust),
                                           MAP("kes", s_kes),
                                           MAP("encryptedfs", s_encryptedfs),
                                           MAP("generic", s_generic),
                                           END};
/* tenants: (kesc): a layout on the top-level keystore, policies, cache, keys per tenant. */
static const struct schema s_tenant_vault[] = {LEAF("namespace"),
                                               LEAF("prefix"),
                                               LEAF("engine"),
                                               LEAF("version"),
                                               MAP("approle", s_approle),
                                               MAP("kubernetes", s_k8s),
                                               END};
static const struct schema s_tenant_keystore[] = {MAP("fs", s_fs), MAP("vault", s_tenant_vault),
                                                  END};
static const struct schema s_tenant[] = {MAP("keystore", s_tenant_keystore),
                                         {"policy", SCHEMA_MAP_OF, s_policy},
                                         MAP("cache", s_cache),
                                         {"keys", SCHEMA_SEQ_OF, s_key},
                                         END};
static const struct schema s_root[] = {LEAF("version"),
                                       LEAF("address"),
                                       LEAF("root"),
                                       MAP("admin", s_admin),
                                       MAP("tls", s_tls),
                                       {"policy", SCHEMA_MAP_OF, s_policy},
                                       MAP("cache", s_cache),
                                       MAP("log", s_log),
                                       {"api", SCHEMA_MAP_OF, s_api},
                                       {"keys", SCHEMA_SEQ_OF, s_key},
                                       MAP("keystore", s_keystore),
                                       MAP("server", s_server),
                                       MAP("key_lifecycle", s_lifecycle),
                                       {"tenants", SCHEMA_MAP_OF, s_tenant},
                                       END};

/* Levenshtein distance, capped: only small distances matter for a suggestion. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return 99;
	size_t row[33];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* A suggestion is worth showing for up to two edits, and never for a word the edits would
 * rewrite completely ("a" → "id"). */
static bool close_enough(const char *candidate, const char *word, size_t *best_d)
{
	size_t d = edit_distance(candidate, word);
	if (d < *best_d && d < strlen(candidate)) {
		*best_d = d;
		return true;
	}
	return false;
}

const char *config_suggest(const char *word, const char *const *candidates, size_t count)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < count; i++)
		if (close_enough(candidates[i], word, &best_d))
			best = candidates[i];
	return best;
}

static const char *suggest(const struct schema *fields, const char *key)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (const struct schema *f = fields; f->key; f++)
		if (close_enough(f->key, key, &best_d))
			best = f->key;
	return best;
}

#define PATH_MAX_LEN 512

/* The unknown fields found so far; the error text lists as many as fit. */
struct unknown_fields {
	struct cfg_ctx *x;
	size_t found;
	size_t listed;
};

/* Room kept at the end of the error for " (and N more unknown fields)". */
#define MORE_SUFFIX_LEN 48

static void report_unknown(struct unknown_fields *u, unsigned line, const char *path,
                           const char *hint)
{
	struct cfg_ctx *x = u->x;
	char one[PATH_MAX_LEN + 160];
	if (hint)
		snprintf(one, sizeof one, "%s:%u: unknown field '%s' (did you mean '%s'?)", x->name,
		         line, path, hint);
	else
		snprintf(one, sizeof one, "%s:%u: unknown field '%s'", x->name, line, path);
	u->found++;
	if (u->listed == 0) {
		snprintf(x->err, x->errlen, "%s", one);
		u->listed = 1;
		return;
	}
	size_t used = strlen(x->err);
	if (u->found != u->listed + 1 || used + 2 + strlen(one) + MORE_SUFFIX_LEN >= x->errlen)
		return; /* once one is left out, the rest is only counted: the list stays in order
		         */
	snprintf(x->err + used, x->errlen - used, "; %s", one);
	u->listed++;
}

static void check_node(struct unknown_fields *u, const struct ynode *n, const struct schema *s,
                       const char *path);

/* path + sep + key into out; an over-long path is cut, which only shortens a message. */
static void join_path(char out[PATH_MAX_LEN], const char *path, const char *sep, const char *key)
{
	int n = snprintf(out, PATH_MAX_LEN, "%s%s%s", path, path[0] ? sep : "", key);
	if (n < 0)
		out[0] = '\0';
}

static void check_map(struct unknown_fields *u, const struct ynode *map,
                      const struct schema *fields, const char *path)
{
	for (size_t i = 0; i < map->count; i++) {
		const struct ynode *k = map->items[2 * i];
		char sub[PATH_MAX_LEN];
		join_path(sub, path, ".", k->value);
		const struct schema *f = fields;
		while (f->key && strcmp(f->key, k->value) != 0)
			f++;
		if (f->key && f->kind == SCHEMA_LEGACY)
			cfg_warn(u->x, k->line, "'%s' is no longer used (ignored, as KES does)",
			         sub);
		else if (f->key)
			check_node(u, map->items[2 * i + 1], f, sub);
		else
			report_unknown(u, k->line, sub, suggest(fields, k->value));
	}
}

/* A node of the wrong shape (a scalar where a mapping belongs) is left to the section
 * loaders, whose messages say what was expected. */
static void check_node(struct unknown_fields *u, const struct ynode *n, const struct schema *s,
                       const char *path)
{
	switch (s->kind) {
	case SCHEMA_MAP:
		if (n->kind == YNODE_MAP)
			check_map(u, n, s->fields, path);
		break;
	case SCHEMA_MAP_OF:
		if (n->kind != YNODE_MAP)
			break;
		for (size_t i = 0; i < n->count; i++) {
			const struct ynode *v = n->items[2 * i + 1];
			char sub[PATH_MAX_LEN];
			join_path(sub, path, ".", n->items[2 * i]->value);
			if (v->kind == YNODE_MAP)
				check_map(u, v, s->fields, sub);
		}
		break;
	case SCHEMA_SEQ_OF:
		if (n->kind != YNODE_SEQ)
			break;
		for (size_t i = 0; i < n->count; i++) {
			char sub[PATH_MAX_LEN], index[32];
			snprintf(index, sizeof index, "[%zu]", i);
			join_path(sub, path, "", index);
			if (n->items[i]->kind == YNODE_MAP)
				check_map(u, n->items[i], s->fields, sub);
		}
		break;
	case SCHEMA_LEAF:
	case SCHEMA_LEGACY:
		break;
	}
}

int cfg_check_fields(struct cfg_ctx *x, const struct ynode *root)
{
	struct unknown_fields u = {.x = x};
	if (!root || root->kind != YNODE_MAP)
		return 0;
	check_map(&u, root, s_root, "");
	if (u.found == 0)
		return 0;
	if (u.found > u.listed) {
		size_t used = strlen(x->err);
		snprintf(x->err + used, x->errlen - used, " (and %zu more unknown fields)",
		         u.found - u.listed);
	}
	return -1;
}
