/*
 * cache.h — the key cache in front of any store, with KES's expiry semantics (kes.md §10):
 *   expiry.any      drop every entry this often                              (default 5m)
 *   expiry.unused   drop entries not used within this window                 (default 30s)
 *   expiry.offline  while the store is offline, keep serving cached keys for this long,
 *                   then drop them; 0 = off (cached keys are not kept specially)   (default 0)
 * A background thread probes the store's status every 10 s to know whether it is offline.
 *
 * A key is served from the cache at most expiry.any after the store read that loaded it
 * began (expiry.any + expiry.offline while the store is offline); the sweeps above only free
 * memory sooner. When a key that left the cache by expiry is read again and the keystore
 * holds no key or another key under its name, the error log says so, once (a ghost of the
 * key's fingerprint, never the key, is kept for that).
 *
 * Concurrent misses for one name make one store read (single flight). A key enters the cache
 * only from a successful store read or after the store confirmed a create.
 *
 * The cache owns the store it wraps. All functions are thread-safe.
 */
#ifndef KESC_KEYSTORE_CACHE_H
#define KESC_KEYSTORE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore/key.h"
#include "keystore/key_versions.h"
#include "keystore/keystore.h"

struct ks_cache_config {
	int64_t expiry_any_ms;      /* <= 0: no periodic full drop */
	int64_t expiry_unused_ms;   /* <= 0: no unused eviction */
	int64_t expiry_offline_ms;  /* <= 0: offline mode off */
	int64_t status_interval_ms; /* store probe period; 0 → 10000 */
	/* Most keys held at once; 0 = no limit. A key read while the cache is full is served
	 * but not kept, so one cache's keys never push out another's (a tenant's limit). */
	uint64_t max_keys;
};

struct ks_cache;

/* Takes ownership of store (closed by ks_cache_free, also on failure). */
struct ks_cache *ks_cache_new(struct keystore *store, const struct ks_cache_config *cfg);
void ks_cache_free(struct ks_cache *c);

/* A counted reference to a cached key, valid until key_ref_release. Holding one never blocks
 * eviction for long: eviction unlinks the entry and the last release frees it. key is the
 * current version (what generate, encrypt and hmac use), set every version (key_versions.h). */
struct key_ref {
	const struct secret_key *key;
	const struct key_set *set;
	void *entry; /* private */
};
void key_ref_release(struct key_ref *ref);

#define KS_CACHE_NONBLOCK 1u /* on a miss return KS_WOULD_BLOCK instead of reading the store */

/* Looks name up; on a miss reads and parses the record (KS_FAILED if it does not parse).
 * Results: KS_OK (ref filled), KS_NOT_FOUND, KS_WOULD_BLOCK, KS_UNREACHABLE, KS_FAILED. */
int ks_cache_get(struct ks_cache *c, const char *name, unsigned flags, struct key_ref *ref,
                 struct ks_err *err);
/* How old a key read again by ks_cache_get_fresh must be before it is read again: a stream of
 * ciphertexts naming versions that do not exist costs at most one store read per name and
 * second. */
#define KS_CACHE_REFRESH_MIN_MS 1000
/* As ks_cache_get (blocking), but the key is read from the store again first: for a ciphertext
 * that names a version newer than the cached key has, made by a server that rotated the key
 * since. Unless the cached key was itself read again this way less than
 * KS_CACHE_REFRESH_MIN_MS ago: then it is what the store had just now. */
int ks_cache_get_fresh(struct ks_cache *c, const char *name, struct key_ref *ref,
                       struct ks_err *err);
/* Encodes and stores a new key; never overwrites (KS_EXISTS). On KS_OK the key is cached,
 * unless an eviction in its shard (a delete of the same name, say) happened while the store
 * wrote it: the cache never holds a key that this process deleted. */
int ks_cache_create(struct ks_cache *c, const char *name, const struct secret_key *key,
                    struct ks_err *err);
/* Replaces the key in the store with a tombstone (tombstone.h) that reserves the name for
 * ks_cache_tombstone_lifetime_ms, then evicts. deleted_by (an identity, may be NULL) goes
 * into the tombstone. */
int ks_cache_remove(struct ks_cache *c, const char *name, const char *deleted_by,
                    struct ks_err *err);
/*
 * A read-modify-write of the record stored at name (key_lifecycle.h builds every change of a
 * key on it). fn gets what the store holds now (a key record or a tombstone; NULL when the name
 * holds nothing) and returns KS_OK with the record to store in *next (allocated; left empty: no
 * change), or any other KS_* code, which ks_cache_update returns as it is. The change is made
 * with the store's replace (keystore.h): one step that lands only on the record fn saw; when
 * another writer changed the record in between, fn is called again with the new one (a few
 * times, then KS_FAILED). The name is evicted from the cache afterwards, so this server uses
 * the new record from its next request on; other servers within their cache expiry.
 */
typedef int (*ks_update_fn)(void *arg, const struct bytes *current, struct bytes *next,
                            struct ks_err *err);
int ks_cache_update(struct ks_cache *c, const char *name, ks_update_fn fn, void *arg,
                    struct ks_err *err);
/* The settings the cache was made with. */
const struct ks_cache_config *ks_cache_settings(const struct ks_cache *c);
/* How long a delete reserves the name: longer than any replica with these settings can
 * serve the deleted key from its cache (see cache.c). -1: forever (expiry.any off). */
int64_t ks_cache_tombstone_lifetime_ms(const struct ks_cache_config *cfg);
/* The names of keys starting with prefix: the store lists names, and each that is not a key
 * cached here is read to leave out names that hold a tombstone (one store read per name). */
int ks_cache_list(struct ks_cache *c, const char *prefix, struct name_list *out,
                  struct ks_err *err);
/* Every name the store lists under prefix, the ones that hold a tombstone included (a
 * scheduled deletion is one): for a pass over every key, which reads each name anyway. */
int ks_cache_list_names(struct ks_cache *c, const char *prefix, struct name_list *out,
                        struct ks_err *err);
/* While the store is considered offline returns KS_UNREACHABLE at once; else asks the store. */
int ks_cache_status(struct ks_cache *c, struct ks_status *out, struct ks_err *err);
/* The wrapped store's name ("fs", "vault", …). */
const char *ks_cache_store_name(const struct ks_cache *c);
/* The wrapped store itself (still owned by the cache): for stores that others build on, as a
 * Vault tenant on its connection (vault.h). */
struct keystore *ks_cache_keystore(struct ks_cache *c);

struct ks_cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t store_reads; /* reads that reached the store */
	uint64_t store_errors;
	uint64_t entries;
	bool offline;
	int64_t store_latency_us; /* last status probe */
	uint64_t store_ops;       /* store calls made (any op), and their summed latency */
	uint64_t store_latency_sum_us;
};
void ks_cache_get_stats(struct ks_cache *c, struct ks_cache_stats *out);

#endif
