/*
 * config_policy.c — the policy: section. Patterns are plain strings (KES does not substitute
 * ${ENV} there); identities may be ${ENV}. Everything KES would reject at start-up (bad
 * names, an identity that is the admin or a proxy or already has a policy) is rejected here
 * with the line of the offending entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "server/config_internal.h"

static int load_patterns(struct cfg_ctx *x, const struct ynode *pol, const char *key,
                         const char *field, char ***out, size_t *count)
{
	const struct ynode *seq;
	if (cfg_get_seq(x, pol, key, field, &seq) <= 0)
		return x->err[0] ? -1 : 0;
	if (seq->count == 0)
		return 0;
	*out = calloc(seq->count, sizeof **out);
	if (!*out)
		return cfg_fail(x, seq->line, field, "out of memory");
	for (size_t i = 0; i < seq->count; i++) {
		const struct ynode *n = seq->items[i];
		const char *text;
		if (cfg_scalar_text(x, n, field, CFG_LITERAL, &text) < 0 ||
		    cfg_set_string(x, &(*out)[i], text) < 0)
			return -1;
		(*count)++;
		if (!text[0])
			cfg_warn(x, n->line, "%s: an empty pattern never matches", field);
		else if (!policy_pattern_is_useful(text))
			cfg_warn(
			    x, n->line,
			    "%s: pattern '%s' can never match ('*' is only a wildcard at the end)",
			    field, text);
	}
	return 0;
}

/* Whether one policy of list holds id; fills *which. */
static bool policies_hold(const struct config_policy *list, size_t n, const char *id,
                          const struct config_policy **which)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < list[p].identity_count; i++)
			if (strcmp(id, list[p].identities[i]) == 0) {
				*which = &list[p];
				return true;
			}
	return false;
}

/* Where identity is already used, in the whole file (top level and every tenant loaded so far):
 * 0 nowhere, else -1 with the message. */
static int check_identity(struct cfg_ctx *x, const struct ynode *n, const char *field,
                          const char *policy, const char *id)
{
	const struct config *c = x->c;
	const struct config_policy *other;
	if (!policy_name_is_valid(id))
		return cfg_fail(x, n->line, field,
		                "identity '%s' is empty, too long or contains invalid characters",
		                id);
	if (strcmp(id, c->admin_identity) == 0)
		return cfg_fail(x, n->line, field, "identity '%s' is already admin", id);
	for (size_t i = 0; i < c->tls.proxy_identity_count; i++)
		if (strcmp(id, c->tls.proxy_identities[i]) == 0)
			return cfg_fail(x, n->line, field, "identity '%s' is already a TLS proxy",
			                id);
	if (policies_hold(c->policies, c->policy_count, id, &other))
		return cfg_fail(x, n->line, field,
		                "cannot assign policy '%s' to '%s': identity already has a policy "
		                "('%s')",
		                policy, id, other->name);
	for (size_t t = 0; t < c->tenant_count; t++)
		if (policies_hold(c->tenants[t].policies, c->tenants[t].policy_count, id, &other))
			return cfg_fail(x, n->line, field,
			                "cannot assign policy '%s' to '%s': identity already has a "
			                "policy ('%s' of tenant '%s')",
			                policy, id, other->name, c->tenants[t].name);
	return 0;
}

static int load_identities(struct cfg_ctx *x, const struct ynode *pol, const char *field,
                           struct config_policy *p)
{
	const struct ynode *seq;
	if (cfg_get_seq(x, pol, "identities", field, &seq) <= 0)
		return x->err[0] ? -1 : 0;
	if (seq->count == 0)
		return 0;
	p->identities = calloc(seq->count, sizeof *p->identities);
	if (!p->identities)
		return cfg_fail(x, seq->line, field, "out of memory");
	for (size_t i = 0; i < seq->count; i++) {
		const struct ynode *n = seq->items[i];
		const char *text;
		if (cfg_scalar_text(x, n, field, CFG_ENV, &text) < 0)
			return -1;
		if (!text[0]) {
			/* e.g. ${MINIO_IDENTITY} set but empty: nobody to assign */
			cfg_warn(x, n->line, "%s: empty identity ignored", field);
			continue;
		}
		if (check_identity(x, n, field, p->name, text) < 0)
			return -1;
		for (size_t j = 0; j < p->identity_count; j++)
			if (strcmp(p->identities[j], text) == 0)
				return cfg_fail(x, n->line, field, "identity '%s' is listed twice",
				                text);
		if (cfg_set_string(x, &p->identities[p->identity_count], text) < 0)
			return -1;
		p->identity_count++;
	}
	return 0;
}

/* One entry of a policy map into *p (whose count the caller raises afterwards). at is the
 * field prefix of messages ("policy" or "tenants.<name>.policy"). */
static int load_policy(struct cfg_ctx *x, const char *at, const struct ynode *key,
                       const struct ynode *value, struct config_policy *p)
{
	char field[256];
	if (!policy_name_is_valid(key->value))
		return cfg_fail(
		    x, key->line, at,
		    "policy name '%s' is empty, too long or contains invalid characters",
		    key->value);
	p->line = key->line;
	if (cfg_set_string(x, &p->name, key->value) < 0)
		return -1;
	snprintf(field, sizeof field, "%s.%s", at, key->value);
	if (ynode_is_null(value))
		return 0;
	if (value->kind != YNODE_MAP)
		return cfg_fail(x, value->line, field, "expected 'allow', 'deny' and 'identities'");
	char sub[300];
	snprintf(sub, sizeof sub, "%s.allow", field);
	if (load_patterns(x, value, "allow", sub, &p->allow, &p->allow_count) < 0)
		return -1;
	snprintf(sub, sizeof sub, "%s.deny", field);
	if (load_patterns(x, value, "deny", sub, &p->deny, &p->deny_count) < 0)
		return -1;
	snprintf(sub, sizeof sub, "%s.identities", field);
	return load_identities(x, value, sub, p);
}

int cfg_load_policy_map(struct cfg_ctx *x, const struct ynode *pol, const char *at,
                        struct config_policy **out, size_t *count)
{
	if (!pol || pol->count == 0)
		return 0;
	*out = calloc(pol->count, sizeof **out);
	if (!*out)
		return cfg_fail(x, pol->line, at, "out of memory");
	for (size_t i = 0; i < pol->count; i++) {
		int rc = load_policy(x, at, pol->items[2 * i], pol->items[2 * i + 1], &(*out)[i]);
		/* counted only now so that check_identity never looks at a half-built entry; on
		 * failure too, so that config_free releases the partial entry */
		(*count)++;
		if (rc < 0)
			return -1;
	}
	return 0;
}

int cfg_load_policies(struct cfg_ctx *x, const struct ynode *root)
{
	const struct ynode *pol;
	if (cfg_get_map(x, root, "policy", "policy", &pol) <= 0)
		return x->err[0] ? -1 : 0;
	return cfg_load_policy_map(x, pol, "policy", &x->c->policies, &x->c->policy_count);
}
