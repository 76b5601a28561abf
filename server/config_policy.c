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

/* Where identity is already used: 0 nowhere, else -1 with the message. */
static int check_identity(struct cfg_ctx *x, const struct ynode *n, const char *field,
                          const char *policy, const char *id)
{
	const struct config *c = x->c;
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
	for (size_t p = 0; p < c->policy_count; p++) {
		const struct config_policy *other = &c->policies[p];
		for (size_t i = 0; i < other->identity_count; i++)
			if (strcmp(id, other->identities[i]) == 0)
				return cfg_fail(
				    x, n->line, field,
				    "cannot assign policy '%s' to '%s': identity already "
				    "has a policy ('%s')",
				    policy, id, other->name);
	}
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

static int load_policy(struct cfg_ctx *x, const struct ynode *key, const struct ynode *value)
{
	struct config *c = x->c;
	char field[160];
	if (!policy_name_is_valid(key->value))
		return cfg_fail(
		    x, key->line, "policy",
		    "policy name '%s' is empty, too long or contains invalid characters",
		    key->value);
	struct config_policy *p = &c->policies[c->policy_count];
	p->line = key->line;
	if (cfg_set_string(x, &p->name, key->value) < 0)
		return -1;
	snprintf(field, sizeof field, "policy.%s", key->value);
	if (ynode_is_null(value))
		goto done;
	if (value->kind != YNODE_MAP)
		return cfg_fail(x, value->line, field, "expected 'allow', 'deny' and 'identities'");
	char sub[200];
	snprintf(sub, sizeof sub, "%s.allow", field);
	if (load_patterns(x, value, "allow", sub, &p->allow, &p->allow_count) < 0)
		return -1;
	snprintf(sub, sizeof sub, "%s.deny", field);
	if (load_patterns(x, value, "deny", sub, &p->deny, &p->deny_count) < 0)
		return -1;
	snprintf(sub, sizeof sub, "%s.identities", field);
	if (load_identities(x, value, sub, p) < 0)
		return -1;
done:
	/* counted only now so that check_identity never looks at a half-built entry */
	c->policy_count++;
	return 0;
}

int cfg_load_policies(struct cfg_ctx *x, const struct ynode *root)
{
	const struct ynode *pol;
	if (cfg_get_map(x, root, "policy", "policy", &pol) <= 0)
		return x->err[0] ? -1 : 0;
	if (pol->count == 0)
		return 0;
	x->c->policies = calloc(pol->count, sizeof *x->c->policies);
	if (!x->c->policies)
		return cfg_fail(x, pol->line, "policy", "out of memory");
	for (size_t i = 0; i < pol->count; i++) {
		if (load_policy(x, pol->items[2 * i], pol->items[2 * i + 1]) < 0) {
			x->c->policy_count++; /* so config_free releases the partial entry */
			return -1;
		}
	}
	return 0;
}
