/*
 * policy.h — who may call what (kes.md §3). The admin identity bypasses every policy; any
 * other identity must be assigned to exactly one policy, whose deny patterns are checked first
 * (any match rejects) and whose allow patterns then must match. A pattern matches a path
 * exactly, or as a prefix when it ends in '*' (KES HEAD semantics). Identities are compared
 * in constant time.
 */
#ifndef KESC_POLICY_POLICY_H
#define KESC_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

struct policy {
	char *name;
	char **allow;
	size_t allow_count;
	char **deny;
	size_t deny_count;
};

struct policy_set;

/* admin: hex identity, or anything else (e.g. "disabled") for no admin. Copied. */
struct policy_set *policy_set_new(const char *admin_identity);
void policy_set_free(struct policy_set *s);

/* Adds a policy with its identities; everything is copied. Fails (-1, reason in err) on an
 * invalid policy name or identity, a duplicate policy name, an identity that is the admin, or
 * an identity already assigned to another policy (KES's messages). */
int policy_set_add(struct policy_set *s, const char *name, const char *const *allow,
                   size_t allow_count, const char *const *deny, size_t deny_count,
                   const char *const *identities, size_t identity_count, char *err, size_t errlen);

/* The admin identity as configured ("disabled" etc. included). */
const char *policy_set_admin(const struct policy_set *s);
bool policy_set_is_admin(const struct policy_set *s, const char *identity);
/* The policy assigned to identity, or NULL. */
const struct policy *policy_set_policy_of(const struct policy_set *s, const char *identity);
/* The policy named name, or NULL. */
const struct policy *policy_set_find(const struct policy_set *s, const char *name);
/* Policy names / assigned identities, sorted; pointers into s, valid while s lives. */
size_t policy_set_names(const struct policy_set *s, const char ***out);
size_t policy_set_identities(const struct policy_set *s, const char ***out);

/* The full decision for a request path: admin, or assigned policy allows it. */
bool policy_set_allows(const struct policy_set *s, const char *identity, const char *path);
/* Policy check alone: deny first, then allow. */
bool policy_allows(const struct policy *p, const char *path);
/* KES HEAD pattern match: exact, or prefix when pattern ends in '*'; "" never matches. */
bool policy_pattern_matches(const char *pattern, const char *path);
/* KES validName: 1..80 bytes of [0-9A-Za-z_-], '-' neither first nor last, "_" alone invalid.
 * Used for policy names, identities and key names. */
bool policy_name_is_valid(const char *s);
/* False for patterns that can never match anything a client can send (a '*' that is not the
 * last character, or an empty pattern): the server warns about them at start-up. */
bool policy_pattern_is_useful(const char *pattern);

#endif
