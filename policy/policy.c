/*
 * policy.c — the policy set: admin identity, named policies, identity → policy assignments,
 * and KES HEAD's pattern matching (exact, or prefix when the pattern ends in '*').
 *
 * Identity lookups touch every assignment and compare with ct_streq, so how long a lookup takes
 * does not tell a caller how many leading characters of some configured identity it guessed.
 */
#include "policy/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/secmem.h"

#define POLICY_NAME_MAX 80

struct assignment {
	char *identity;
	size_t policy; /* index into policies */
};

struct policy_set {
	char *admin;
	struct policy *policies;
	size_t policy_count;
	struct assignment *assigned;
	size_t assigned_count;
	const char **sorted_names; /* built on demand, freed with the set */
	const char **sorted_identities;
};

/* KES validName (auth.go): 1..80 of [0-9A-Za-z_-], '-' not first or last, "_" alone invalid. */
bool policy_name_is_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > POLICY_NAME_MAX)
		return false;
	if (s[0] == '-' || s[n - 1] == '-')
		return false;
	if (n == 1 && s[0] == '_')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		          (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

struct policy_set *policy_set_new(const char *admin_identity)
{
	struct policy_set *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->admin = strdup(admin_identity ? admin_identity : "");
	if (!s->admin) {
		free(s);
		return NULL;
	}
	return s;
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void policy_set_free(struct policy_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->policy_count; i++) {
		free(s->policies[i].name);
		free_strings(s->policies[i].allow, s->policies[i].allow_count);
		free_strings(s->policies[i].deny, s->policies[i].deny_count);
	}
	free(s->policies);
	for (size_t i = 0; i < s->assigned_count; i++)
		free(s->assigned[i].identity);
	free(s->assigned);
	free(s->sorted_names);
	free(s->sorted_identities);
	free(s->admin);
	free(s);
}

static int copy_strings(char ***out, const char *const *in, size_t n)
{
	*out = NULL;
	if (n == 0)
		return 0;
	char **v = calloc(n, sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(in[i] ? in[i] : "");
		if (!v[i]) {
			free_strings(v, i);
			return -1;
		}
	}
	*out = v;
	return 0;
}

/* Index of the policy assigned to identity, or SIZE_MAX. Looks at every entry. */
static size_t assignment_find(const struct policy_set *s, const char *identity)
{
	size_t found = SIZE_MAX;
	for (size_t i = 0; i < s->assigned_count; i++) {
		size_t eq = (size_t)ct_streq(s->assigned[i].identity, identity);
		size_t mask = (size_t)0 - eq; /* all ones when equal */
		found = (found & ~mask) | (s->assigned[i].policy & mask);
	}
	return found;
}

static int check_new_policy(const struct policy_set *s, const char *name,
                            const char *const *identities, size_t identity_count, char *err,
                            size_t errlen)
{
	if (!policy_name_is_valid(name)) {
		snprintf(err, errlen,
		         "policy name '%s' is empty, too long or contains invalid characters",
		         name);
		return -1;
	}
	if (policy_set_find(s, name)) {
		snprintf(err, errlen, "policy '%s' is defined multiple times", name);
		return -1;
	}
	for (size_t i = 0; i < identity_count; i++) {
		const char *id = identities[i];
		if (!policy_name_is_valid(id)) {
			snprintf(err, errlen,
			         "identity '%s' is empty, too long or contains invalid characters",
			         id);
			return -1;
		}
		if (policy_set_is_admin(s, id)) {
			snprintf(err, errlen, "invalid policy '%s': identity '%s' is already admin",
			         name, id);
			return -1;
		}
		bool dup_here = false;
		for (size_t j = 0; j < i; j++)
			dup_here |= strcmp(identities[j], id) == 0;
		if (dup_here || assignment_find(s, id) != SIZE_MAX) {
			snprintf(err, errlen,
			         "cannot assign policy '%s' to '%s': identity already has a policy",
			         name, id);
			return -1;
		}
	}
	return 0;
}

static int append_assignments(struct policy_set *s, size_t policy, const char *const *identities,
                              size_t identity_count)
{
	if (identity_count == 0)
		return 0;
	struct assignment *a =
	    realloc(s->assigned, (s->assigned_count + identity_count) * sizeof *a);
	if (!a)
		return -1;
	s->assigned = a;
	for (size_t i = 0; i < identity_count; i++) {
		char *id = strdup(identities[i]);
		if (!id)
			return -1; /* the entries added so far stay valid */
		s->assigned[s->assigned_count].identity = id;
		s->assigned[s->assigned_count].policy = policy;
		s->assigned_count++;
	}
	return 0;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted listings are rebuilt on every add so that readers (any thread, after set-up)
 * never write to the set. */
static int rebuild_sorted(struct policy_set *s)
{
	const char **names = calloc(s->policy_count + 1, sizeof *names);
	const char **ids = calloc(s->assigned_count + 1, sizeof *ids);
	if (!names || !ids) {
		free(names);
		free(ids);
		return -1;
	}
	for (size_t i = 0; i < s->policy_count; i++)
		names[i] = s->policies[i].name;
	for (size_t i = 0; i < s->assigned_count; i++)
		ids[i] = s->assigned[i].identity;
	qsort(names, s->policy_count, sizeof *names, compare_strings);
	qsort(ids, s->assigned_count, sizeof *ids, compare_strings);
	free(s->sorted_names);
	free(s->sorted_identities);
	s->sorted_names = names;
	s->sorted_identities = ids;
	return 0;
}

int policy_set_add(struct policy_set *s, const char *name, const char *const *allow,
                   size_t allow_count, const char *const *deny, size_t deny_count,
                   const char *const *identities, size_t identity_count, char *err, size_t errlen)
{
	if (check_new_policy(s, name, identities, identity_count, err, errlen) < 0)
		return -1;
	struct policy p = {0};
	p.name = strdup(name);
	if (!p.name || copy_strings(&p.allow, allow, allow_count) < 0 ||
	    copy_strings(&p.deny, deny, deny_count) < 0)
		goto oom;
	p.allow_count = allow_count;
	p.deny_count = deny_count;
	struct policy *v = realloc(s->policies, (s->policy_count + 1) * sizeof *v);
	if (!v)
		goto oom;
	s->policies = v;
	s->policies[s->policy_count] = p;
	s->policy_count++;
	if (append_assignments(s, s->policy_count - 1, identities, identity_count) < 0 ||
	    rebuild_sorted(s) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
oom:
	free(p.name);
	free_strings(p.allow, allow_count);
	free_strings(p.deny, deny_count);
	snprintf(err, errlen, "out of memory");
	return -1;
}

const char *policy_set_admin(const struct policy_set *s)
{
	return s->admin;
}

bool policy_set_is_admin(const struct policy_set *s, const char *identity)
{
	/* An empty identity (no certificate) must never be mistaken for an unset admin. */
	if (!identity || !identity[0] || !s->admin[0])
		return false;
	return ct_streq(s->admin, identity) == 1;
}

const struct policy *policy_set_policy_of(const struct policy_set *s, const char *identity)
{
	if (!identity)
		return NULL;
	size_t i = assignment_find(s, identity);
	return i == SIZE_MAX ? NULL : &s->policies[i];
}

const struct policy *policy_set_find(const struct policy_set *s, const char *name)
{
	for (size_t i = 0; i < s->policy_count; i++)
		if (strcmp(s->policies[i].name, name) == 0)
			return &s->policies[i];
	return NULL;
}

size_t policy_set_names(const struct policy_set *s, const char ***out)
{
	*out = s->sorted_names;
	return s->sorted_names ? s->policy_count : 0;
}

size_t policy_set_identities(const struct policy_set *s, const char ***out)
{
	*out = s->sorted_identities;
	return s->sorted_identities ? s->assigned_count : 0;
}

bool policy_pattern_matches(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);
	if (n == 0)
		return false;
	if (pattern[n - 1] == '*')
		return strncmp(pattern, path, n - 1) == 0;
	return strcmp(pattern, path) == 0;
}

bool policy_pattern_is_useful(const char *pattern)
{
	size_t n = strlen(pattern);
	if (n == 0)
		return false;
	/* A '*' before the end is a literal in HEAD. Key, policy and identity names cannot
	 * contain '*', so such a pattern only matches paths every handler rejects anyway. */
	const char *star = strchr(pattern, '*');
	return star == NULL || star == pattern + n - 1;
}

bool policy_allows(const struct policy *p, const char *path)
{
	if (!p || !path)
		return false;
	for (size_t i = 0; i < p->deny_count; i++)
		if (policy_pattern_matches(p->deny[i], path))
			return false;
	for (size_t i = 0; i < p->allow_count; i++)
		if (policy_pattern_matches(p->allow[i], path))
			return true;
	return false;
}

bool policy_set_allows(const struct policy_set *s, const char *identity, const char *path)
{
	if (policy_set_is_admin(s, identity))
		return true;
	return policy_allows(policy_set_policy_of(s, identity), path);
}
