/*
 * directory.h — which tenant an identity belongs to, and with which policy: the lookup that
 * resolves every request of a multi-tenant server (server/state.h) from the client's identity
 * alone.
 *
 * A hash table keyed with a random per-directory secret, so that how long a lookup takes says
 * nothing an attacker can use about which identities are configured: the bucket an identity
 * falls into depends on the secret, and inside a bucket every entry is compared, in constant
 * time (ct_streq). Built once per configuration generation, then read-only: lookups from any
 * thread need no lock.
 */
#ifndef KESC_POLICY_DIRECTORY_H
#define KESC_POLICY_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

struct identity_directory;

/* A directory sized for about expected identities. NULL if out of memory. */
struct identity_directory *identity_directory_new(size_t expected);
void identity_directory_free(struct identity_directory *d);

/* Records identity (copied) as belonging to tenant (an index of the caller's) with policy (not
 * copied: it must outlive the directory). -1 if the identity is there already or on no memory. */
int identity_directory_add(struct identity_directory *d, const char *identity, size_t tenant,
                           const struct policy *policy);

/* The tenant and policy of identity: true, or false when it is in no tenant. */
bool identity_directory_find(const struct identity_directory *d, const char *identity,
                             size_t *tenant, const struct policy **policy);

#endif
