/* directory.c — identity → (tenant, policy) in a keyed hash table (directory.h). */
#include "policy/directory.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "keystore/secmem.h"

struct dir_entry {
	struct dir_entry *next;
	size_t tenant;
	const struct policy *policy;
	char identity[];
};

struct identity_directory {
	uint64_t seed[2]; /* random: bucket positions are unpredictable outside the process */
	size_t nbuckets;  /* a power of two */
	struct dir_entry **buckets;
};

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A keyed hash of the whole identity; its time depends only on the length. */
static uint64_t dir_hash(const struct identity_directory *d, const char *s)
{
	uint64_t h = d->seed[0];
	for (; *s; s++)
		h = mix(h ^ (uint8_t)*s ^ d->seed[1]);
	return mix(h ^ d->seed[1]);
}

struct identity_directory *identity_directory_new(size_t expected)
{
	struct identity_directory *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->nbuckets = 16;
	while (d->nbuckets < expected * 2 && d->nbuckets < ((size_t)1 << 24))
		d->nbuckets *= 2;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	if (!d->buckets || getrandom(d->seed, sizeof(d->seed), 0) != (ssize_t)sizeof(d->seed)) {
		identity_directory_free(d);
		return NULL;
	}
	return d;
}

void identity_directory_free(struct identity_directory *d)
{
	if (!d)
		return;
	for (size_t i = 0; d->buckets && i < d->nbuckets; i++) {
		struct dir_entry *e = d->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(d->buckets);
	secure_zero(d->seed, sizeof(d->seed));
	free(d);
}

int identity_directory_add(struct identity_directory *d, const char *identity, size_t tenant,
                           const struct policy *policy)
{
	size_t t;
	const struct policy *p;
	if (identity_directory_find(d, identity, &t, &p))
		return -1;
	size_t len = strlen(identity);
	struct dir_entry *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return -1;
	memcpy(e->identity, identity, len + 1);
	e->tenant = tenant;
	e->policy = policy;
	size_t b = (size_t)dir_hash(d, identity) & (d->nbuckets - 1);
	e->next = d->buckets[b];
	d->buckets[b] = e;
	return 0;
}

bool identity_directory_find(const struct identity_directory *d, const char *identity,
                             size_t *tenant, const struct policy **policy)
{
	if (!identity || !identity[0])
		return false;
	size_t b = (size_t)dir_hash(d, identity) & (d->nbuckets - 1);
	const struct dir_entry *found = NULL;
	/* Every entry of the bucket is compared, whichever matches. */
	for (const struct dir_entry *e = d->buckets[b]; e; e = e->next) {
		uintptr_t eq = (uintptr_t)ct_streq(e->identity, identity);
		uintptr_t mask = (uintptr_t)0 - eq;
		found =
		    (const struct dir_entry *)(((uintptr_t)found & ~mask) | ((uintptr_t)e & mask));
	}
	if (!found)
		return false;
	*tenant = found->tenant;
	*policy = found->policy;
	return true;
}
