/*
 * config_schema.c — the set of keys a kesc config may contain, used only to warn about the
 * others. KES ignores unknown keys silently, which turns a typo such as "adress" into a
 * default; kesc keeps loading (so KES configs keep working) but names the line and suggests
 * the nearest known key.
 */
#include <stdio.h>
#include <string.h>

#include "server/config_internal.h"

enum schema_kind {
	SCHEMA_LEAF,   /* a value; not descended into */
	SCHEMA_MAP,    /* fixed keys (fields) */
	SCHEMA_MAP_OF, /* any keys; every value is a mapping with the keys in fields */
	SCHEMA_SEQ_OF, /* a list of mappings with the keys in fields */
	SCHEMA_OPAQUE, /* a section kesc does not read (other KES keystores): anything goes */
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
#define END                             \
	{                               \
		NULL, SCHEMA_LEAF, NULL \
	}

static const struct schema s_admin[] = {LEAF("identity"), END};
static const struct schema s_header[] = {LEAF("cert"), END};
static const struct schema s_proxy[] = {LEAF("identities"), {"header", SCHEMA_MAP, s_header}, END};
static const struct schema s_tls[] = {LEAF("key"),  LEAF("cert"), LEAF("password"),
                                      LEAF("auth"), LEAF("ca"),   {"proxy", SCHEMA_MAP, s_proxy},
                                      END};
static const struct schema s_policy[] = {LEAF("allow"), LEAF("deny"), LEAF("identities"), END};
static const struct schema s_expiry[] = {LEAF("any"), LEAF("unused"), LEAF("offline"), END};
static const struct schema s_cache[] = {{"expiry", SCHEMA_MAP, s_expiry}, END};
static const struct schema s_log[] = {LEAF("error"), LEAF("audit"), END};
static const struct schema s_api[] = {LEAF("skip_auth"), LEAF("timeout"), END};
static const struct schema s_key[] = {LEAF("name"), END};
static const struct schema s_fs[] = {LEAF("path"), END};
static const struct schema s_transit[] = {LEAF("engine"), LEAF("key"), END};
static const struct schema s_approle[] = {LEAF("engine"), LEAF("namespace"), LEAF("id"),
                                          LEAF("secret"), END};
static const struct schema s_k8s[] = {LEAF("engine"), LEAF("namespace"), LEAF("role"), LEAF("jwt"),
                                      END};
static const struct schema s_vault_tls[] = {LEAF("key"), LEAF("cert"), LEAF("ca"), END};
static const struct schema s_status[] = {LEAF("ping"), END};
static const struct schema s_vault[] = {LEAF("endpoint"),
                                        LEAF("engine"),
                                        LEAF("version"),
                                        LEAF("namespace"),
                                        LEAF("prefix"),
                                        {"transit", SCHEMA_MAP, s_transit},
                                        {"approle", SCHEMA_MAP, s_approle},
                                        {"kubernetes", SCHEMA_MAP, s_k8s},
                                        {"tls", SCHEMA_MAP, s_vault_tls},
                                        {"status", SCHEMA_MAP, s_status},
                                        END};
static const struct schema s_keystore[] = {
    {"fs", SCHEMA_MAP, s_fs},          {"vault", SCHEMA_MAP, s_vault},
    {"aws", SCHEMA_OPAQUE, NULL},      {"gcp", SCHEMA_OPAQUE, NULL},
    {"azure", SCHEMA_OPAQUE, NULL},    {"gemalto", SCHEMA_OPAQUE, NULL},
    {"fortanix", SCHEMA_OPAQUE, NULL}, {"entrust", SCHEMA_OPAQUE, NULL},
    {"kes", SCHEMA_OPAQUE, NULL},      {"encryptedfs", SCHEMA_OPAQUE, NULL},
    {"generic", SCHEMA_OPAQUE, NULL},  END};
static const struct schema s_server[] = {LEAF("max_connections"), LEAF("handshake_timeout"),
                                         LEAF("header_timeout"),  LEAF("idle_timeout"),
                                         LEAF("threads"),         END};
static const struct schema s_root[] = {LEAF("version"),
                                       LEAF("address"),
                                       LEAF("root"),
                                       {"admin", SCHEMA_MAP, s_admin},
                                       {"tls", SCHEMA_MAP, s_tls},
                                       {"policy", SCHEMA_MAP_OF, s_policy},
                                       {"cache", SCHEMA_MAP, s_cache},
                                       {"log", SCHEMA_MAP, s_log},
                                       {"api", SCHEMA_MAP_OF, s_api},
                                       {"keys", SCHEMA_SEQ_OF, s_key},
                                       {"keystore", SCHEMA_MAP, s_keystore},
                                       {"server", SCHEMA_MAP, s_server},
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

static const char *suggest(const struct schema *fields, const char *key)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (const struct schema *f = fields; f->key; f++) {
		size_t d = edit_distance(f->key, key);
		if (d < best_d && d < strlen(f->key)) {
			best = f->key;
			best_d = d;
		}
	}
	return best;
}

static void check_node(struct cfg_ctx *x, const struct ynode *n, const struct schema *s,
                       const char *path);

#define PATH_MAX_LEN 512

/* path + sep + key into out; an over-long path is cut, which only shortens a warning. */
static void join_path(char out[PATH_MAX_LEN], const char *path, const char *sep, const char *key)
{
	int n = snprintf(out, PATH_MAX_LEN, "%s%s%s", path, path[0] ? sep : "", key);
	if (n < 0)
		out[0] = '\0';
}

static void check_map(struct cfg_ctx *x, const struct ynode *map, const struct schema *fields,
                      const char *path)
{
	for (size_t i = 0; i < map->count; i++) {
		const struct ynode *k = map->items[2 * i];
		char sub[PATH_MAX_LEN];
		join_path(sub, path, ".", k->value);
		const struct schema *f = fields;
		while (f->key && strcmp(f->key, k->value) != 0)
			f++;
		if (f->key) {
			check_node(x, map->items[2 * i + 1], f, sub);
			continue;
		}
		const char *hint = suggest(fields, k->value);
		if (hint)
			cfg_warn(x, k->line, "unknown field '%s' (ignored; did you mean '%s'?)",
			         sub, hint);
		else
			cfg_warn(x, k->line, "unknown field '%s' (ignored)", sub);
	}
}

static void check_node(struct cfg_ctx *x, const struct ynode *n, const struct schema *s,
                       const char *path)
{
	switch (s->kind) {
	case SCHEMA_MAP:
		if (n->kind == YNODE_MAP)
			check_map(x, n, s->fields, path);
		break;
	case SCHEMA_MAP_OF:
		if (n->kind != YNODE_MAP)
			break;
		for (size_t i = 0; i < n->count; i++) {
			const struct ynode *v = n->items[2 * i + 1];
			char sub[PATH_MAX_LEN];
			join_path(sub, path, ".", n->items[2 * i]->value);
			if (v->kind == YNODE_MAP)
				check_map(x, v, s->fields, sub);
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
				check_map(x, n->items[i], s->fields, sub);
		}
		break;
	case SCHEMA_LEAF:
	case SCHEMA_OPAQUE:
		break;
	}
}

void cfg_warn_unknown_fields(struct cfg_ctx *x, const struct ynode *root)
{
	if (root && root->kind == YNODE_MAP)
		check_map(x, root, s_root, "");
}
