/*
 * config_internal.h — what the config loader's files share: the load context, error and
 * warning helpers that prefix "file:line: field:", and typed getters that apply ${ENV}
 * substitution the way KES does. Not part of the public surface (see config.h).
 */
#ifndef KESC_SERVER_CONFIG_INTERNAL_H
#define KESC_SERVER_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/config.h"
#include "server/config_yaml.h"

struct cfg_ctx {
	const char *name;
	char *err;
	size_t errlen;
	config_warn_fn warn;
	void *warn_arg;
	unsigned flags;
	struct config *c;
	unsigned root_line; /* line for "missing field" errors at the top level */
};

/* Whether a string getter may substitute ${ENV} (KES's env[T] fields) or not. */
enum cfg_env { CFG_LITERAL = 0, CFG_ENV = 1 };

/* Formats "name:line: field: reason" into the error buffer and returns -1. */
int cfg_fail(struct cfg_ctx *x, unsigned line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends "name:line: text" to the warning callback, if any. */
void cfg_warn(struct cfg_ctx *x, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Typed getters for map[key]. They return 1 when the key is present (and not a YAML null),
 * 0 when absent (outputs untouched), -1 on error (message set). field is the dotted path
 * used in messages. Strings are returned as fresh heap copies.
 */
int cfg_get_string(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                   enum cfg_env env, char **out);
int cfg_get_duration(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                     int64_t *ms_out);
int cfg_get_bool(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                 bool *out);
int cfg_get_uint(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                 unsigned *out);
/* A mapping under key: 1 with *out set, 0 if absent or null, -1 if it is not a mapping. */
int cfg_get_map(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                const struct ynode **out);
/* A sequence under key: 1 with *out set, 0 if absent or null, -1 if it is not a sequence. */
int cfg_get_seq(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                const struct ynode **out);
/* The text of a scalar node after ${ENV} substitution (points into the node or the
 * environment; not owned). -1 with a message if the node is not a scalar or the variable is
 * unset. */
int cfg_scalar_text(struct cfg_ctx *x, const struct ynode *n, const char *field, enum cfg_env env,
                    const char **text);
/* Line of key in map, or the map's own line when the key is absent. */
unsigned cfg_line_of(const struct ynode *map, const char *key);
/* Line for a problem with parent[section][key]: the key's line if it is there, else the
 * section key's line, else the parent's (1 if there is nothing at all). */
unsigned cfg_line_in(const struct ynode *parent, const char *section, const char *key);

/* Replaces *slot with value (freeing the old one). 0 or -1 (out of memory, message set). */
int cfg_set_string(struct cfg_ctx *x, char **slot, const char *value);
/* Frees a string after zeroing it (for secrets). */
void cfg_free_secret(char *s);

/* Checks every key against the schema: 0, or -1 with every unknown field (file:line, with a
 * did-you-mean) in the error. Fields old KES versions defined are warnings. */
int cfg_check_fields(struct cfg_ctx *x, const struct ynode *root);

/* Section loaders (config_sections.c, config_policy.c, config_keystore.c,
 * config_tenants.c). 0 or -1. */
int cfg_load_top(struct cfg_ctx *x, const struct ynode *root);
int cfg_load_policies(struct cfg_ctx *x, const struct ynode *root);
int cfg_load_keystore(struct cfg_ctx *x, const struct ynode *root);
/* key_lifecycle: (config_lifecycle.c); after the keystore, whose kind it checks. */
int cfg_load_lifecycle(struct cfg_ctx *x, const struct ynode *root);
int cfg_load_tenants(struct cfg_ctx *x, const struct ynode *root);

/* The entries of a policy: mapping into *out (*count of them), checking every identity against
 * the whole file; at prefixes messages ("policy", "tenants.<name>.policy"). 0 or -1. */
int cfg_load_policy_map(struct cfg_ctx *x, const struct ynode *pol, const char *at,
                        struct config_policy **out, size_t *count);
/* The cache: section's fields into *cc (cache.expiry.*, cache.max_keys); at prefixes
 * messages. 0 or -1. */
int cfg_load_cache_map(struct cfg_ctx *x, const struct ynode *cache, const char *at,
                       struct ks_cache_config *cc);
/* A keys: list into *keys / *count; at prefixes messages. 0 or -1. */
int cfg_load_key_list(struct cfg_ctx *x, const struct ynode *keys, const char *at, char ***out,
                      size_t *count);
/* approle: or kubernetes: of a vault mapping into v (at: "keystore.vault" or a tenant's).
 * 1 when one was given, 0 when none was and !required_auth, -1 on error. */
int cfg_load_vault_auth(struct cfg_ctx *x, struct vault_config *v, const struct ynode *vault,
                        unsigned line, const char *at, bool required_auth);
/* Deep copy of a vault configuration (strings duplicated), and its release. 0 or -1. */
int cfg_vault_copy(struct vault_config *dst, const struct vault_config *src);
void cfg_vault_free(struct vault_config *v);
/* Only its login (approle:, kubernetes:, the auth engine and namespace), left empty: what a
 * tenant with its own login does not inherit from the top level. */
void cfg_vault_free_auth(struct vault_config *v);

#endif
