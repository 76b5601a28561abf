/*
 * key_lifecycle.h — every change to a key after its creation (issue 14): rotate, retire old
 * versions, schedule a deletion, restore it, purge it. Each is one read-modify-write of the
 * key's record through ks_cache_update: the store's replace lands it only on the record it was
 * computed from (fs: under the directory lock, temp file + rename; Vault K/V v2: check-and-set),
 * so a kill -9 at any moment leaves the old record or the new one, and two servers changing a
 * key at once each start again from the other's result instead of undoing it. The decision
 * ("is the key old enough to rotate?", "is its window over?") is made again on every attempt
 * from the record the write depends on: that is what makes an automatic rotation run by every
 * replica happen once.
 *
 * Results (keystore.h): KS_OK; KS_NOT_FOUND (no key: absent or deleted; err says which);
 * KS_EXISTS (restore or purge of a key that is not deleted); KS_PURGED (restore of a key whose
 * window is over, or that was deleted without one); KS_NO_VERSION; KS_TOO_MANY; KS_FAILED (the
 * stored record is not a key kesc can change, or the store refused: err says why);
 * KS_UNREACHABLE.
 */
#ifndef KESC_KEYSTORE_KEY_LIFECYCLE_H
#define KESC_KEYSTORE_KEY_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore/cache.h"

/* Adds a version (key_versions_rotate) created by `by`; *version is the new current version.
 * With older_than_s > 0, only if the current version was created at least that long before
 * now (Unix seconds): *rotated says whether it happened, *version is the current one either
 * way. */
int key_lifecycle_rotate(struct ks_cache *c, const char *name, const char *by, int64_t older_than_s,
                         int64_t now, bool *rotated, uint32_t *version, struct ks_err *err);
/* Sets the minimum decryption version (1 un-retires everything). *count is the number of
 * versions (for the answer). */
int key_lifecycle_retire(struct ks_cache *c, const char *name, uint32_t min, uint32_t *count,
                         struct ks_err *err);
/* A delete with a restore window: the key is replaced by a tombstone that keeps it until
 * now + window_s, and reserves the name at least as long as replicas may cache the key. */
int key_lifecycle_schedule_delete(struct ks_cache *c, const char *name, const char *by,
                                  int64_t window_s, int64_t now, struct ks_err *err);
/* Puts a scheduled deletion's key back (same key, same versions). */
int key_lifecycle_restore(struct ks_cache *c, const char *name, int64_t now, struct ks_err *err);
/* Destroys a scheduled deletion's key now: a tombstone without the key takes its place (the
 * name stays reserved while replicas may cache the key). With only_expired, only once its
 * restore window is over (*purged says whether it happened; a name that holds anything else is
 * KS_OK and left alone). */
int key_lifecycle_purge(struct ks_cache *c, const char *name, bool only_expired, int64_t now,
                        bool *purged, struct ks_err *err);

/* What a server's periodic pass does to one name (lifecycle.c in server/), with one store read:
 * a scheduled deletion past its window is purged; a key whose current version was created at
 * least rotate_older_than_s (> 0; 0: never) before now is rotated by `by`. *done says which
 * happened (*version: the new version after a rotation). Anything else is left alone. */
enum key_lifecycle_done { KEY_LIFECYCLE_NOTHING, KEY_LIFECYCLE_ROTATED, KEY_LIFECYCLE_PURGED };
int key_lifecycle_tend(struct ks_cache *c, const char *name, const char *by,
                       int64_t rotate_older_than_s, int64_t now, enum key_lifecycle_done *done,
                       uint32_t *version, struct ks_err *err);

#endif
