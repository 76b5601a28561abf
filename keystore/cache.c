/*
 * cache.c — the key cache (cache.h). Parsed keys by name in 16 shards, each a chained hash
 * table under its own rwlock, so a hit takes one shard's read lock, bumps a refcount and
 * allocates nothing. A miss becomes a "flight": the first thread reads the store, the others
 * for the same name wait on the flight and share its answer. A background thread runs KES's
 * expiry tasks (kes.md §10) and probes the store to know whether it is offline.
 *
 * Entries are refcounted: the table holds one reference, every key_ref and every flight one
 * more; eviction drops the table's and the last release frees (key_free zeroes the keys). An
 * entry holds every version of its key (key_versions.h); ref->key is the current one.
 *
 * An entry is served only while it is younger than expiry.any (plus expiry.offline while the
 * store is offline), counted from when the store read that loaded it began: the sweeps free
 * memory, this age is the bound a delete relies on (ks_cache_tombstone_lifetime_ms).
 *
 * When an entry leaves the cache by expiry, a "ghost" remembers its key's fingerprint (a keyed
 * hash, never the key), so that the next store read of the name can tell whether the key is
 * gone or has changed since this server served it, and say so once in the error log. A delete
 * or create by this process leaves no ghost: it knows what changed.
 */
#include "keystore/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/backoff.h"
#include "keystore/key_internal.h"
#include "keystore/key_versions.h"
#include "keystore/secmem.h"
#include "keystore/tombstone.h"

#define CACHE_SHARDS            16
#define CACHE_MIN_BUCKETS       16
#define CACHE_DEFAULT_STATUS_MS 10000
/* While the store is offline it is probed this often, whatever the status interval: a store
 * that came back is noticed within about a second (readiness, offline expiry). */
#define CACHE_OFFLINE_PROBE_MS 1000
/* Ghosts kept per shard; beyond that the oldest are forgotten. */
#define CACHE_GHOSTS_PER_SHARD 256
#define CACHE_FP_SIZE          16
/* Margin a tombstone outlives the longest cache residence by, for clocks that disagree. */
#define CACHE_CLOCK_MARGIN_MS (60 * 1000)

struct cache_entry {
	struct cache_entry *next; /* hash chain */
	uint64_t hash;
	struct key_set *set;
	const struct secret_key *key; /* the current version, in set */
	int64_t loaded_us; /* coarse monotonic time the load began: the age bound counts from it */
	atomic_bool refreshed; /* loaded by ks_cache_get_fresh (which then waits before another) */
	uint8_t fp[CACHE_FP_SIZE];
	atomic_uint refs;
	atomic_bool used; /* set by hits, cleared by the unused sweep */
	char name[];
};

/* What an entry that expired leaves behind (see the top of the file). */
struct cache_ghost {
	struct cache_ghost *next;
	uint64_t hash;
	uint8_t fp[CACHE_FP_SIZE];
	int64_t created_at_sec;
	char created_by[KEY_CREATED_BY_MAX + 1];
	char name[];
};

/* A store read in progress; owned by the leader and every waiter (users). */
struct cache_flight {
	struct cache_flight *next;
	uint64_t hash;
	const char *name;    /* the leader's, valid while the flight is listed */
	uint64_t generation; /* the shard's when the read began: joinable while it is current */
	unsigned users;
	bool done;
	int rc;
	struct cache_entry *entry; /* on KS_OK; the flight holds a reference */
	struct ks_err err;
	pthread_cond_t cond;
};

struct cache_shard {
	pthread_rwlock_t lock; /* the table */
	struct cache_entry **buckets;
	size_t nbuckets;
	size_t count;
	/* Bumped under the write lock by every eviction, so a read that began before a remove
	 * does not put the removed key back. */
	uint64_t generation;
	pthread_mutex_t flight_lock; /* taken before lock, never after */
	struct cache_flight *flights;
	pthread_mutex_t ghost_lock; /* taken after lock, never before */
	struct cache_ghost *ghosts; /* newest first */
	size_t ghost_count;
	atomic_uint_fast64_t hits;
	atomic_uint_fast64_t misses;
} __attribute__((aligned(64)));

struct ks_cache {
	struct cache_shard shards[CACHE_SHARDS];
	struct keystore *store;
	struct ks_cache_config cfg;
	uint8_t fp_key[32]; /* random: fingerprints are useless outside this process */
	atomic_bool offline;
	atomic_uint_fast64_t entries;
	atomic_uint_fast64_t store_reads;
	atomic_uint_fast64_t store_errors;
	atomic_uint_fast64_t store_ops;
	atomic_uint_fast64_t store_latency_sum_us;
	atomic_int_fast64_t store_latency_us;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t bg_lock;
	pthread_cond_t bg_cond;
	bool stopping;
};

static int64_t cache_now_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0; /* cannot fail for CLOCK_MONOTONIC */
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The clock entry ages are kept in: a hit reads it, so the cheap one (a few ms resolution,
 * far below any expiry). */
static int64_t cache_coarse_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
		return cache_now_us();
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* How old an entry may be and still be served now. */
static int64_t cache_age_limit_us(struct ks_cache *c)
{
	int64_t limit;

	if (c->cfg.expiry_any_ms <= 0)
		return INT64_MAX;
	limit = c->cfg.expiry_any_ms * 1000;
	if (c->cfg.expiry_offline_ms > 0 && atomic_load_explicit(&c->offline, memory_order_relaxed))
		limit += c->cfg.expiry_offline_ms * 1000;
	return limit;
}

static bool entry_fresh(const struct cache_entry *e, int64_t now_us, int64_t limit_us)
{
	return now_us - e->loaded_us < limit_us;
}

/* FNV-1a: names are short and not attacker-chosen beyond what the policy allows. */
static uint64_t cache_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211ull;
	return h;
}

static struct cache_shard *cache_shard_of(struct ks_cache *c, uint64_t hash)
{
	return &c->shards[hash % CACHE_SHARDS];
}

static size_t cache_bucket_of(const struct cache_shard *s, uint64_t hash)
{
	return (size_t)(hash / CACHE_SHARDS) & (s->nbuckets - 1);
}

/* Counts a store call and its latency; returns rc. */
static int cache_store_done(struct ks_cache *c, int64_t start, int rc)
{
	atomic_fetch_add_explicit(&c->store_ops, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->store_latency_sum_us, (uint64_t)(cache_now_us() - start),
	                          memory_order_relaxed);
	if (rc == KS_UNREACHABLE || rc == KS_FAILED)
		atomic_fetch_add_explicit(&c->store_errors, 1, memory_order_relaxed);
	return rc;
}

/* A keyed hash of the key material: tells two keys apart, says nothing about either. */
static void cache_fingerprint(const struct ks_cache *c, const struct secret_key *k,
                              uint8_t fp[CACHE_FP_SIZE])
{
	uint8_t both[KEY_SIZE + KEY_HMAC_SIZE], mac[32];

	memcpy(both, k->key, KEY_SIZE);
	memcpy(both + KEY_SIZE, k->hmac_key, KEY_HMAC_SIZE);
	if (key_hmac_sha256(c->fp_key, both, sizeof(both), mac) != 0)
		memset(mac, 0, sizeof(mac)); /* cannot fail; all-zero only hides a change */
	memcpy(fp, mac, CACHE_FP_SIZE);
	secure_zero(both, sizeof(both));
	secure_zero(mac, sizeof(mac));
}

/* Takes set on success. The fingerprint is of version 1, which rotation never changes: a key
 * another server rotated is the same key, one created again under the name is not. */
static struct cache_entry *entry_new(const struct ks_cache *c, const char *name, uint64_t hash,
                                     struct key_set *set, int64_t loaded_us)
{
	size_t len = strlen(name);
	struct cache_entry *e = malloc(sizeof(*e) + len + 1);

	if (!e)
		return NULL;
	e->next = NULL;
	e->hash = hash;
	e->set = set;
	e->key = key_set_current(set);
	e->loaded_us = loaded_us;
	cache_fingerprint(c, set->keys[0], e->fp);
	atomic_init(&e->refs, 1);
	atomic_init(&e->used, true);
	atomic_init(&e->refreshed, false);
	memcpy(e->name, name, len + 1);
	return e;
}

static void entry_retain(struct cache_entry *e)
{
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

static void entry_release(struct cache_entry *e)
{
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
		return;
	key_set_free(e->set);
	free(e);
}

void key_ref_release(struct key_ref *ref)
{
	if (!ref || !ref->entry)
		return;
	entry_release(ref->entry);
	ref->entry = NULL;
	ref->key = NULL;
	ref->set = NULL;
}

static void ref_fill(struct key_ref *ref, struct cache_entry *e)
{
	ref->entry = e;
	ref->key = e->key;
	ref->set = e->set;
}

/* Caller holds s->lock (read or write). */
static struct cache_entry *shard_find(struct cache_shard *s, const char *name, uint64_t hash)
{
	struct cache_entry *e = s->buckets[cache_bucket_of(s, hash)];

	for (; e; e = e->next)
		if (e->hash == hash && strcmp(e->name, name) == 0)
			return e;
	return NULL;
}

/* Doubles the bucket array; on no memory keeps the old one (chains just get longer). */
static void shard_grow(struct cache_shard *s)
{
	size_t n = s->nbuckets * 2;
	struct cache_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct cache_entry *e = s->buckets[i], *next;

		for (; e; e = next) {
			size_t at = (size_t)(e->hash / CACHE_SHARDS) & (n - 1);

			next = e->next;
			e->next = b[at];
			b[at] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/* Links e (taking over the caller's reference as the table's). Caller holds the write lock
 * and knows the name is not in the table. */
static void shard_insert(struct ks_cache *c, struct cache_shard *s, struct cache_entry *e)
{
	size_t at;

	if (s->count >= s->nbuckets)
		shard_grow(s);
	at = cache_bucket_of(s, e->hash);
	e->next = s->buckets[at];
	s->buckets[at] = e;
	s->count++;
	atomic_fetch_add_explicit(&c->entries, 1, memory_order_relaxed);
}

/* Unlinks and releases the table's reference. Caller holds the write lock. */
static void shard_unlink(struct ks_cache *c, struct cache_shard *s, struct cache_entry **link)
{
	struct cache_entry *e = *link;

	*link = e->next;
	s->count--;
	atomic_fetch_sub_explicit(&c->entries, 1, memory_order_relaxed);
	entry_release(e);
}

/* ---- ghosts (see the top of the file) ---- */

/* Takes the ghost of name out of the shard: the caller frees it. NULL if there is none. */
static struct cache_ghost *ghost_take(struct cache_shard *s, const char *name, uint64_t hash)
{
	struct cache_ghost **link, *g = NULL;

	pthread_mutex_lock(&s->ghost_lock);
	for (link = &s->ghosts; *link; link = &(*link)->next) {
		if ((*link)->hash == hash && strcmp((*link)->name, name) == 0) {
			g = *link;
			*link = g->next;
			s->ghost_count--;
			break;
		}
	}
	pthread_mutex_unlock(&s->ghost_lock);
	return g;
}

/* Remembers an entry that leaves the cache by expiry. Caller holds s->lock. */
static void ghost_put(struct cache_shard *s, const struct cache_entry *e)
{
	size_t len = strlen(e->name);
	struct cache_ghost *g = ghost_take(s, e->name, e->hash);

	free(g); /* one ghost per name: the newer one counts */
	g = malloc(sizeof(*g) + len + 1);
	if (!g)
		return; /* only a log line is lost */
	g->hash = e->hash;
	memcpy(g->fp, e->fp, CACHE_FP_SIZE);
	g->created_at_sec = e->set->keys[0]->created_at_sec;
	memcpy(g->created_by, e->set->keys[0]->created_by, sizeof(g->created_by));
	memcpy(g->name, e->name, len + 1);
	pthread_mutex_lock(&s->ghost_lock);
	if (s->ghost_count >= CACHE_GHOSTS_PER_SHARD) {
		struct cache_ghost **link = &s->ghosts;

		while ((*link)->next)
			link = &(*link)->next;
		free(*link); /* the oldest */
		*link = NULL;
		s->ghost_count--;
	}
	g->next = s->ghosts;
	s->ghosts = g;
	s->ghost_count++;
	pthread_mutex_unlock(&s->ghost_lock);
}

static void ghost_forget(struct cache_shard *s, const char *name, uint64_t hash)
{
	free(ghost_take(s, name, hash));
}

static void ghost_free_all(struct cache_shard *s)
{
	while (s->ghosts) {
		struct cache_ghost *g = s->ghosts;

		s->ghosts = g->next;
		free(g);
	}
	s->ghost_count = 0;
}

/* "2025-06-01T12:00:00Z by <identity>" */
static void describe_creation(int64_t at, const char *by, char *out, size_t n)
{
	char t[32];

	tombstone_format_time(at, t, sizeof(t));
	snprintf(out, n, "created %s by %s", t, by[0] ? by : "(unknown)");
}

/*
 * After a store read of name answered rc (now: the entry read, when KS_OK): if this server
 * had the key cached before and the keystore now holds no key or another key under the name,
 * say so loudly, once. Another server deleted it, or worse, the name was bound to a new key:
 * data keys this server issued under the old key do not decrypt under the new one.
 */
static void ghost_check(struct cache_shard *s, const char *name, uint64_t hash, int rc,
                        const struct cache_entry *now, const struct ks_err *err)
{
	char was[200], is[200];
	struct cache_ghost *g;

	if (rc != KS_OK && rc != KS_NOT_FOUND)
		return; /* the store did not answer: nothing learnt */
	g = ghost_take(s, name, hash);
	if (!g)
		return;
	describe_creation(g->created_at_sec, g->created_by, was, sizeof(was));
	if (rc == KS_NOT_FOUND) {
		ks_log("cache: key '%s', which this server had cached (%s), is gone from the "
		       "keystore: %s; it is no longer served",
		       name, was, err && err->msg[0] ? err->msg : "no entry under that name");
	} else if (!ct_equal(g->fp, now->fp, CACHE_FP_SIZE)) {
		describe_creation(now->set->keys[0]->created_at_sec, now->set->keys[0]->created_by,
		                  is, sizeof(is));
		ks_log(
		    "cache: key '%s' CHANGED in the keystore since this server cached it (cached: "
		    "%s; now: %s): the keystore's key is served from now on, and data keys this "
		    "server issued under the old key do not decrypt under the new one",
		    name, was, is);
	}
	free(g);
}

/* This process deleted or created name: drop its entry (and ghost) at once. */
static void cache_evict(struct ks_cache *c, const char *name)
{
	uint64_t hash = cache_hash(name);
	struct cache_shard *s = cache_shard_of(c, hash);
	struct cache_entry **link;

	pthread_rwlock_wrlock(&s->lock);
	s->generation++;
	for (link = &s->buckets[cache_bucket_of(s, hash)]; *link; link = &(*link)->next) {
		if ((*link)->hash == hash && strcmp((*link)->name, name) == 0) {
			shard_unlink(c, s, link);
			break;
		}
	}
	ghost_forget(s, name, hash);
	pthread_rwlock_unlock(&s->lock);
}

/* Drops every entry of one shard, or (only_unused) those not used since the last sweep,
 * clearing the flag on the rest. Entries dropped leave ghosts unless the cache is closing. */
static void shard_sweep(struct ks_cache *c, struct cache_shard *s, bool only_unused, bool ghosts)
{
	pthread_rwlock_wrlock(&s->lock);
	s->generation++;
	for (size_t b = 0; b < s->nbuckets; b++) {
		struct cache_entry **link = &s->buckets[b];

		while (*link) {
			if (!only_unused || !atomic_exchange_explicit(&(*link)->used, false,
			                                              memory_order_relaxed)) {
				if (ghosts)
					ghost_put(s, *link);
				shard_unlink(c, s, link);
			} else {
				link = &(*link)->next;
			}
		}
	}
	pthread_rwlock_unlock(&s->lock);
}

static void cache_sweep(struct ks_cache *c, bool only_unused)
{
	for (int i = 0; i < CACHE_SHARDS; i++)
		shard_sweep(c, &c->shards[i], only_unused, true);
}

/* The hit path: a read lock, a refcount, a flag, the age. A list's look does not count as a
 * use (mark_used false). */
static bool cache_lookup(struct ks_cache *c, struct cache_shard *s, const char *name, uint64_t hash,
                         struct key_ref *ref, bool mark_used)
{
	int64_t now = cache_coarse_us(), limit = cache_age_limit_us(c);
	struct cache_entry *e;

	pthread_rwlock_rdlock(&s->lock);
	e = shard_find(s, name, hash);
	if (e && !entry_fresh(e, now, limit))
		e = NULL; /* too old to serve: the next store read replaces it */
	if (e) {
		entry_retain(e);
		if (mark_used && !atomic_load_explicit(&e->used, memory_order_relaxed))
			atomic_store_explicit(&e->used, true, memory_order_relaxed);
	}
	pthread_rwlock_unlock(&s->lock);
	if (e)
		ref_fill(ref, e);
	return e != NULL;
}

/* After a store read answered: an entry of name too old to be served leaves the table now,
 * as a ghost, so that ghost_check compares the answer with it. */
static void cache_retire_expired(struct ks_cache *c, struct cache_shard *s, const char *name,
                                 uint64_t hash)
{
	int64_t now = cache_coarse_us(), limit = cache_age_limit_us(c);
	struct cache_entry **link;

	pthread_rwlock_wrlock(&s->lock);
	for (link = &s->buckets[cache_bucket_of(s, hash)]; *link; link = &(*link)->next) {
		if ((*link)->hash == hash && strcmp((*link)->name, name) == 0) {
			if (!entry_fresh(*link, now, limit)) {
				ghost_put(s, *link);
				shard_unlink(c, s, link);
			}
			break;
		}
	}
	pthread_rwlock_unlock(&s->lock);
}

/* The shard's generation now: an operation that takes it before touching the store can tell
 * afterwards whether anything was evicted from the shard in between. */
static uint64_t shard_generation(struct cache_shard *s)
{
	uint64_t g;

	pthread_rwlock_rdlock(&s->lock);
	g = s->generation;
	pthread_rwlock_unlock(&s->lock);
	return g;
}

/* Reads and parses name from the store into a new (unlisted) entry holding one reference. */
static int cache_read_store(struct ks_cache *c, const char *name, uint64_t hash,
                            struct cache_entry **out, struct ks_err *err)
{
	struct bytes record = {0};
	struct key_set *set = NULL;
	int64_t start = cache_now_us(), loaded = cache_coarse_us();
	int rc;

	atomic_fetch_add_explicit(&c->store_reads, 1, memory_order_relaxed);
	rc = cache_store_done(c, start, keystore_get(c->store, name, &record, err));
	if (rc != KS_OK)
		return rc;
	if (key_set_decode(record.data, record.len, &set) != 0) {
		/* Never the record itself: it is key material. */
		ks_err_set(err, "cache: stored record of key '%s' is malformed (%zu bytes)", name,
		           record.len);
		rc = KS_FAILED;
	} else if (!(*out = entry_new(c, name, hash, set, loaded))) {
		ks_err_set(err, "cache: out of memory");
		key_set_free(set);
		rc = KS_FAILED;
	}
	bytes_free(&record);
	return rc;
}

/* Whether one more key may be kept (cfg.max_keys). Racing inserts in other shards may pass it
 * by a few: the limit bounds memory, it is not an exact count. */
static bool cache_has_room(struct ks_cache *c)
{
	return c->cfg.max_keys == 0 ||
	       atomic_load_explicit(&c->entries, memory_order_relaxed) < c->cfg.max_keys;
}

/* Puts a freshly read entry into the table unless the name was evicted since the read began
 * (generation), someone else already put it there, or the cache is full (then the entry serves
 * this read only). Returns the entry the caller should use, holding one reference for it. */
static struct cache_entry *cache_publish(struct ks_cache *c, struct cache_shard *s,
                                         struct cache_entry *e, uint64_t generation)
{
	int64_t now = cache_coarse_us(), limit = cache_age_limit_us(c);
	struct cache_entry *existing, **link;

	pthread_rwlock_wrlock(&s->lock);
	existing = shard_find(s, e->name, e->hash);
	if (existing && !entry_fresh(existing, now, limit)) {
		/* Too old to serve (it aged since cache_retire_expired): ours replaces it. */
		for (link = &s->buckets[cache_bucket_of(s, e->hash)]; *link != existing;
		     link = &(*link)->next)
			;
		shard_unlink(c, s, link);
		existing = NULL;
	}
	if (existing) {
		entry_retain(existing);
	} else if (s->generation == generation && cache_has_room(c)) {
		entry_retain(e); /* one for the table, one for the caller */
		shard_insert(c, s, e);
	}
	pthread_rwlock_unlock(&s->lock);
	if (existing) {
		entry_release(e);
		return existing;
	}
	return e;
}

/* Leaves a flight; the last user frees it. Caller holds s->flight_lock. */
static void flight_leave(struct cache_flight *f)
{
	if (--f->users > 0)
		return;
	if (f->entry)
		entry_release(f->entry);
	pthread_cond_destroy(&f->cond);
	free(f);
}

/* Waits for another thread's read of the same name and takes its answer. Caller holds
 * s->flight_lock; returns with it held. */
static int flight_wait(struct cache_shard *s, struct cache_flight *f, struct key_ref *ref,
                       struct ks_err *err)
{
	int rc;

	f->users++;
	while (!f->done)
		pthread_cond_wait(&f->cond, &s->flight_lock);
	rc = f->rc;
	if (rc == KS_OK) {
		entry_retain(f->entry);
		ref_fill(ref, f->entry);
	} else if (err) {
		*err = f->err;
	}
	flight_leave(f);
	return rc;
}

static struct cache_flight *flight_find(struct cache_shard *s, const char *name, uint64_t hash)
{
	struct cache_flight *f = s->flights;

	for (; f; f = f->next)
		if (f->hash == hash && strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static void flight_unlist(struct cache_shard *s, struct cache_flight *f)
{
	struct cache_flight **link = &s->flights;

	while (*link != f)
		link = &(*link)->next;
	*link = f->next;
}

/* The leader: reads the store, publishes, wakes the waiters. */
static int flight_lead(struct ks_cache *c, struct cache_shard *s, struct cache_flight *f,
                       uint64_t generation, struct key_ref *ref, struct ks_err *err)
{
	struct cache_entry *e = NULL;
	int rc = cache_read_store(c, f->name, f->hash, &e, &f->err);

	if (rc == KS_OK || rc == KS_NOT_FOUND)
		cache_retire_expired(c, s, f->name, f->hash);
	ghost_check(s, f->name, f->hash, rc, e, &f->err);
	if (rc == KS_OK)
		e = cache_publish(c, s, e, generation);
	pthread_mutex_lock(&s->flight_lock);
	f->done = true;
	f->rc = rc;
	if (rc == KS_OK) {
		f->entry = e; /* the caller's reference becomes the flight's */
		entry_retain(e);
		ref_fill(ref, e);
	} else if (err) {
		*err = f->err;
	}
	flight_unlist(s, f);
	pthread_cond_broadcast(&f->cond);
	flight_leave(f);
	pthread_mutex_unlock(&s->flight_lock);
	return rc;
}

static int cache_miss(struct ks_cache *c, struct cache_shard *s, const char *name, uint64_t hash,
                      struct key_ref *ref, struct ks_err *err)
{
	struct cache_flight *f;
	uint64_t generation;
	int rc;

	pthread_mutex_lock(&s->flight_lock);
	/* A flight may have landed between the lookup and here. */
	if (cache_lookup(c, s, name, hash, ref, true)) {
		pthread_mutex_unlock(&s->flight_lock);
		return KS_OK;
	}
	generation = shard_generation(s);
	f = flight_find(s, name, hash);
	/* Only a read that began after the last eviction of this shard (a delete, or a write) can
	 * answer for us: an older one may hold a key deleted before our request came. */
	if (f && f->generation == generation) {
		rc = flight_wait(s, f, ref, err);
		pthread_mutex_unlock(&s->flight_lock);
		return rc;
	}
	f = calloc(1, sizeof(*f));
	if (!f || pthread_cond_init(&f->cond, NULL) != 0) {
		pthread_mutex_unlock(&s->flight_lock);
		free(f);
		ks_err_set(err, "cache: out of memory");
		return KS_FAILED;
	}
	f->hash = hash;
	f->name = name;
	f->generation = generation;
	f->users = 1;
	f->next = s->flights; /* in front: flight_find finds the newest read of a name first */
	s->flights = f;
	pthread_mutex_unlock(&s->flight_lock);
	return flight_lead(c, s, f, generation, ref, err);
}

int ks_cache_get(struct ks_cache *c, const char *name, unsigned flags, struct key_ref *ref,
                 struct ks_err *err)
{
	uint64_t hash = cache_hash(name);
	struct cache_shard *s = cache_shard_of(c, hash);

	ref->key = NULL;
	ref->set = NULL;
	ref->entry = NULL;
	if (cache_lookup(c, s, name, hash, ref, true)) {
		atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
		return KS_OK;
	}
	/* Not counted as a miss: the caller retries off the loop thread, and that counts. */
	if (flags & KS_CACHE_NONBLOCK)
		return KS_WOULD_BLOCK;
	atomic_fetch_add_explicit(&s->misses, 1, memory_order_relaxed);
	return cache_miss(c, s, name, hash, ref, err);
}

/* Takes e (seen in the table, too old) out of it, unless it was replaced meanwhile. */
static void cache_unlink_entry(struct ks_cache *c, struct cache_shard *s, struct cache_entry *e)
{
	struct cache_entry **link;

	pthread_rwlock_wrlock(&s->lock);
	for (link = &s->buckets[cache_bucket_of(s, e->hash)]; *link; link = &(*link)->next) {
		if (*link == e) {
			s->generation++;
			shard_unlink(c, s, link);
			break;
		}
	}
	pthread_rwlock_unlock(&s->lock);
}

int ks_cache_get_fresh(struct ks_cache *c, const char *name, struct key_ref *ref,
                       struct ks_err *err)
{
	uint64_t hash = cache_hash(name);
	struct cache_shard *s = cache_shard_of(c, hash);

	ref->key = NULL;
	ref->set = NULL;
	ref->entry = NULL;
	if (cache_lookup(c, s, name, hash, ref, true)) {
		struct cache_entry *e = ref->entry;

		if (atomic_load(&e->refreshed) &&
		    cache_coarse_us() - e->loaded_us < KS_CACHE_REFRESH_MIN_MS * 1000) {
			atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
			return KS_OK;
		}
		key_ref_release(ref);
		cache_unlink_entry(c, s, e);
	}
	atomic_fetch_add_explicit(&s->misses, 1, memory_order_relaxed);
	int rc = cache_miss(c, s, name, hash, ref, err);
	if (rc == KS_OK)
		atomic_store(&((struct cache_entry *)ref->entry)->refreshed, true);
	return rc;
}

/*
 * After the store confirmed a create: the cache gets its own copy of the key, unless something
 * was evicted from the shard since the create began (generation). That eviction may be a
 * delete of this very name that reached the store after our write and finished before we got
 * here; caching then would hold a key the store no longer has (issue 9). Skipping costs only
 * one store read on the next get.
 */
static void cache_insert_created(struct ks_cache *c, const char *name, const struct secret_key *key,
                                 uint64_t generation, int64_t loaded_us)
{
	uint64_t hash = cache_hash(name);
	struct cache_shard *s = cache_shard_of(c, hash);
	struct secret_key *copy = key_alloc();
	struct key_set *set;
	struct cache_entry *e, **link;

	ghost_forget(s, name, hash); /* a new key by our own hand is no news */
	if (!copy)
		return; /* stored all the same; the first get will read it */
	*copy = *key;
	if (!(set = key_set_of(copy)))
		return;
	e = entry_new(c, name, hash, set, loaded_us);
	if (!e) {
		key_set_free(set);
		return;
	}
	pthread_rwlock_wrlock(&s->lock);
	if (s->generation != generation) {
		pthread_rwlock_unlock(&s->lock);
		entry_release(e);
		return;
	}
	s->generation++; /* a read that began before the create must not win */
	for (link = &s->buckets[cache_bucket_of(s, hash)]; *link; link = &(*link)->next) {
		if ((*link)->hash == hash && strcmp((*link)->name, name) == 0) {
			shard_unlink(c, s, link);
			break;
		}
	}
	if (cache_has_room(c)) {
		shard_insert(c, s, e);
		e = NULL;
	}
	pthread_rwlock_unlock(&s->lock);
	if (e)
		entry_release(e); /* full: the first get reads it */
}

int ks_cache_create(struct ks_cache *c, const char *name, const struct secret_key *key,
                    struct ks_err *err)
{
	struct bytes record = {0};
	uint64_t generation;
	int64_t start, loaded;
	int rc;

	if (key_record_encode(key, &record) != 0) {
		ks_err_set(err, "cache: cannot encode key '%s'", name);
		return KS_FAILED;
	}
	/* Taken before the write: a delete can only undo this create after the write. */
	generation = shard_generation(cache_shard_of(c, cache_hash(name)));
	start = cache_now_us();
	loaded = cache_coarse_us();
	rc = cache_store_done(c, start, keystore_create(c->store, name, &record, err));
	bytes_free(&record);
	/* Only a confirmed write enters the cache (minio#17377): KS_EXISTS and errors never do. */
	if (rc == KS_OK)
		cache_insert_created(c, name, key, generation, loaded);
	return rc;
}

/*
 * A cached key is served at most expiry.any after the store read that loaded it began, or
 * expiry.any + expiry.offline while the store is offline (cache_age_limit_us). A replica that
 * read the key before the tombstone was written therefore stops serving it by
 * write time + that residence. The tombstone outlives that by a margin for replicas whose
 * clocks disagree and for the time the write takes to reach the store: the residence again,
 * at most a minute. Every replica must use the same cache settings (or the deleting one the
 * longest): the rule is computed where the delete happens.
 */
int64_t ks_cache_tombstone_lifetime_ms(const struct ks_cache_config *cfg)
{
	int64_t residence;

	if (cfg->expiry_any_ms <= 0)
		return -1; /* keys may be cached forever: so the name stays reserved */
	residence = cfg->expiry_any_ms + (cfg->expiry_offline_ms > 0 ? cfg->expiry_offline_ms : 0);
	return residence + (residence < CACHE_CLOCK_MARGIN_MS ? residence : CACHE_CLOCK_MARGIN_MS);
}

static int cache_make_tombstone(struct ks_cache *c, const char *deleted_by, struct bytes *out)
{
	int64_t life = ks_cache_tombstone_lifetime_ms(&c->cfg);
	struct tombstone t = {.deleted_at = keystore_now()};

	/* deleted_at is the second now falls in: count from its end, never shorter. */
	t.until = life < 0 ? TOMBSTONE_FOREVER : t.deleted_at + 1 + (life + 999) / 1000;
	snprintf(t.deleted_by, sizeof(t.deleted_by), "%s", deleted_by ? deleted_by : "");
	if (tombstone_encode(&t, out) == 0)
		return 0;
	t.deleted_by[0] = '\0'; /* a name the record cannot carry: leave it out */
	return tombstone_encode(&t, out);
}

int ks_cache_remove(struct ks_cache *c, const char *name, const char *deleted_by,
                    struct ks_err *err)
{
	struct bytes tomb = {0};
	int64_t start;
	int rc;

	if (cache_make_tombstone(c, deleted_by, &tomb) != 0) {
		ks_err_set(err, "cache: out of memory");
		return KS_FAILED;
	}
	start = cache_now_us();
	rc = cache_store_done(c, start, keystore_remove(c->store, name, &tomb, err));
	bytes_free(&tomb);
	/* Also on errors: whether the key is still there is unknown, and a miss is only slower. */
	cache_evict(c, name);
	return rc;
}

/* Changes that keep colliding with other writers give up after this many attempts; between
 * attempts a writer that lost waits a random while, doubling up to a cap, so that two replicas
 * rotating the same key in a tight loop do not keep colliding in step (seen under load: one
 * of them lost eight times in a row). The waits add up to about a second at most. */
#define CACHE_UPDATE_TRIES       16
#define CACHE_UPDATE_BACKOFF_US  200
#define CACHE_UPDATE_BACKOFF_MAX 100000

static void update_backoff(int attempt)
{
	int64_t us = backoff_delay(CACHE_UPDATE_BACKOFF_US, CACHE_UPDATE_BACKOFF_MAX, attempt);
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool same_record(const struct bytes *a, const struct bytes *b)
{
	return a->len == b->len && ct_equal(a->data, b->data, a->len);
}

/* One read-modify-write. *retry: the store saw another change come first. */
static int cache_update_once(struct ks_cache *c, const char *name, ks_update_fn fn, void *arg,
                             bool *retry, struct ks_err *err)
{
	struct bytes cur = {0}, next = {0};
	int64_t start = cache_now_us();
	int rc = cache_store_done(c, start, keystore_get_raw(c->store, name, &cur, err));

	*retry = false;
	if (rc != KS_OK && rc != KS_NOT_FOUND)
		return rc;
	rc = fn(arg, rc == KS_OK ? &cur : NULL, &next, err);
	if (rc == KS_OK && next.data && !(cur.data && same_record(&cur, &next))) {
		start = cache_now_us();
		rc = cache_store_done(c, start, keystore_replace(c->store, name, &cur, &next, err));
		/* Also on errors: whether the change landed may be unknown. */
		cache_evict(c, name);
		*retry = rc == KS_EXISTS || rc == KS_NOT_FOUND;
	}
	bytes_free(&cur);
	bytes_free(&next);
	return rc;
}

int ks_cache_update(struct ks_cache *c, const char *name, ks_update_fn fn, void *arg,
                    struct ks_err *err)
{
	for (int attempt = 0; attempt < CACHE_UPDATE_TRIES; attempt++) {
		bool retry;
		int rc = cache_update_once(c, name, fn, arg, &retry, err);

		if (!retry)
			return rc;
		if (attempt + 1 < CACHE_UPDATE_TRIES)
			update_backoff(attempt);
	}
	ks_err_set(err, "cache: key '%s' kept changing while it was being changed (%d attempts)",
	           name, CACHE_UPDATE_TRIES);
	return KS_FAILED;
}

const struct ks_cache_config *ks_cache_settings(const struct ks_cache *c)
{
	return &c->cfg;
}

/* Whether a listed name holds a key: a key cached here does; else the store says (a
 * tombstone is no key; an entry that cannot be read is listed, as any store lists it). */
static int cache_name_is_key(struct ks_cache *c, const char *name, bool *live, struct ks_err *err)
{
	uint64_t hash = cache_hash(name);
	struct key_ref ref;
	struct ks_err e = {{0}};
	int64_t start;
	int rc;

	*live = true;
	if (cache_lookup(c, cache_shard_of(c, hash), name, hash, &ref, false)) {
		key_ref_release(&ref);
		return KS_OK;
	}
	start = cache_now_us();
	rc = cache_store_done(c, start, keystore_holds_key(c->store, name, &e));
	if (rc == KS_NOT_FOUND)
		*live = false;
	if (rc == KS_OK || rc == KS_NOT_FOUND || rc == KS_FAILED)
		return KS_OK;
	*err = e;
	return rc;
}

int ks_cache_list(struct ks_cache *c, const char *prefix, struct name_list *out, struct ks_err *err)
{
	struct name_list all = {0};
	int64_t start = cache_now_us();
	int rc = cache_store_done(c, start, keystore_list(c->store, prefix, &all, err));

	for (size_t i = 0; rc == KS_OK && i < all.count; i++) {
		bool live;

		rc = cache_name_is_key(c, all.names[i], &live, err);
		if (rc == KS_OK && live && name_list_add(out, all.names[i]) != 0) {
			ks_err_set(err, "cache: out of memory");
			rc = KS_FAILED;
		}
	}
	name_list_free(&all);
	return rc;
}

int ks_cache_list_names(struct ks_cache *c, const char *prefix, struct name_list *out,
                        struct ks_err *err)
{
	int64_t start = cache_now_us();

	return cache_store_done(c, start, keystore_list(c->store, prefix, out, err));
}

/* Asks the store; remembers the latency. */
static int cache_probe(struct ks_cache *c, struct ks_status *out, struct ks_err *err)
{
	int64_t start = cache_now_us();
	int rc = cache_store_done(c, start, keystore_status(c->store, out, err));

	if (rc == KS_OK)
		atomic_store_explicit(&c->store_latency_us, out->latency_us, memory_order_relaxed);
	return rc;
}

int ks_cache_status(struct ks_cache *c, struct ks_status *out, struct ks_err *err)
{
	if (atomic_load_explicit(&c->offline, memory_order_relaxed)) {
		ks_err_set(err, "cache: key store '%s' is offline", c->store->ops->name);
		return KS_UNREACHABLE;
	}
	return cache_probe(c, out, err);
}

const char *ks_cache_store_name(const struct ks_cache *c)
{
	return c->store->ops->name;
}

struct keystore *ks_cache_keystore(struct ks_cache *c)
{
	return c->store;
}

void ks_cache_get_stats(struct ks_cache *c, struct ks_cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < CACHE_SHARDS; i++) {
		out->hits += atomic_load_explicit(&c->shards[i].hits, memory_order_relaxed);
		out->misses += atomic_load_explicit(&c->shards[i].misses, memory_order_relaxed);
	}
	out->store_reads = atomic_load_explicit(&c->store_reads, memory_order_relaxed);
	out->store_errors = atomic_load_explicit(&c->store_errors, memory_order_relaxed);
	out->entries = atomic_load_explicit(&c->entries, memory_order_relaxed);
	out->offline = atomic_load_explicit(&c->offline, memory_order_relaxed);
	out->store_latency_us = atomic_load_explicit(&c->store_latency_us, memory_order_relaxed);
	out->store_ops = atomic_load_explicit(&c->store_ops, memory_order_relaxed);
	out->store_latency_sum_us =
	    atomic_load_explicit(&c->store_latency_sum_us, memory_order_relaxed);
}

/* --- background tasks ------------------------------------------------------------------ */

struct cache_task {
	int64_t interval_us; /* <= 0: task off */
	int64_t due_us;
};

enum { TASK_ANY, TASK_UNUSED, TASK_OFFLINE, TASK_STATUS, TASK_COUNT };

static void cache_run_task(struct ks_cache *c, int task)
{
	bool offline = atomic_load_explicit(&c->offline, memory_order_relaxed);
	/* While offline with an offline expiry, the normal expiries wait (KES). */
	bool hold = offline && c->cfg.expiry_offline_ms > 0;
	struct ks_status st;
	struct ks_err err;

	switch (task) {
	case TASK_ANY:
		if (!hold)
			cache_sweep(c, false);
		break;
	case TASK_UNUSED:
		if (!hold)
			cache_sweep(c, true);
		break;
	case TASK_OFFLINE:
		if (offline)
			cache_sweep(c, false);
		break;
	case TASK_STATUS:
		atomic_store_explicit(&c->offline, cache_probe(c, &st, &err) != KS_OK,
		                      memory_order_relaxed);
		break;
	}
}

static void cache_tasks_init(const struct ks_cache *c, struct cache_task *t, int64_t now)
{
	int64_t status_ms =
	    c->cfg.status_interval_ms > 0 ? c->cfg.status_interval_ms : CACHE_DEFAULT_STATUS_MS;

	t[TASK_ANY].interval_us = c->cfg.expiry_any_ms * 1000;
	t[TASK_UNUSED].interval_us =
	    c->cfg.expiry_unused_ms > 0
	        ? (c->cfg.expiry_unused_ms * 1000 / 2 > 0 ? c->cfg.expiry_unused_ms * 1000 / 2 : 1)
	        : 0;
	t[TASK_OFFLINE].interval_us = c->cfg.expiry_offline_ms * 1000;
	t[TASK_STATUS].interval_us = status_ms * 1000;
	for (int i = 0; i < TASK_COUNT; i++)
		t[i].due_us = now + t[i].interval_us;
}

/* The time to the task's next run: its interval, except the status probe, which runs about
 * once a second while the store is offline. */
static int64_t cache_task_interval_us(struct ks_cache *c, int task, const struct cache_task *t)
{
	if (task == TASK_STATUS && atomic_load_explicit(&c->offline, memory_order_relaxed) &&
	    t->interval_us > CACHE_OFFLINE_PROBE_MS * 1000)
		return CACHE_OFFLINE_PROBE_MS * 1000;
	return t->interval_us;
}

/* Sleeps until the earliest due task or until asked to stop; false when stopping. */
static bool cache_sleep_until(struct ks_cache *c, int64_t due_us)
{
	int64_t now = cache_now_us();
	struct timespec until;
	bool stopping;

	if (clock_gettime(CLOCK_MONOTONIC, &until) != 0)
		until = (struct timespec){now / 1000000, now % 1000000 * 1000};
	if (due_us > now) {
		int64_t ns = until.tv_nsec + (due_us - now) % 1000000 * 1000;

		until.tv_sec += (due_us - now) / 1000000 + ns / 1000000000;
		until.tv_nsec = ns % 1000000000;
	}
	pthread_mutex_lock(&c->bg_lock);
	while (!c->stopping && due_us > cache_now_us())
		if (pthread_cond_timedwait(&c->bg_cond, &c->bg_lock, &until) == ETIMEDOUT)
			break;
	stopping = c->stopping;
	pthread_mutex_unlock(&c->bg_lock);
	return !stopping;
}

static void *cache_background(void *arg)
{
	struct ks_cache *c = arg;
	struct cache_task tasks[TASK_COUNT];

	cache_tasks_init(c, tasks, cache_now_us());
	for (;;) {
		int64_t next = INT64_MAX, now;

		for (int i = 0; i < TASK_COUNT; i++)
			if (tasks[i].interval_us > 0 && tasks[i].due_us < next)
				next = tasks[i].due_us;
		if (!cache_sleep_until(c, next))
			break;
		now = cache_now_us();
		for (int i = 0; i < TASK_COUNT; i++) {
			if (tasks[i].interval_us <= 0 || tasks[i].due_us > now)
				continue;
			cache_run_task(c, i);
			tasks[i].due_us = cache_now_us() + cache_task_interval_us(c, i, &tasks[i]);
		}
	}
	return NULL;
}

/* --- life cycle ------------------------------------------------------------------------ */

/* A shard with buckets is fully initialised: ks_cache_free relies on that. */
static int shard_init(struct cache_shard *s)
{
	struct cache_entry **buckets = calloc(CACHE_MIN_BUCKETS, sizeof(*buckets));

	if (!buckets)
		return -1;
	if (pthread_rwlock_init(&s->lock, NULL) != 0)
		goto fail;
	if (pthread_mutex_init(&s->flight_lock, NULL) != 0) {
		pthread_rwlock_destroy(&s->lock);
		goto fail;
	}
	if (pthread_mutex_init(&s->ghost_lock, NULL) != 0) {
		pthread_mutex_destroy(&s->flight_lock);
		pthread_rwlock_destroy(&s->lock);
		goto fail;
	}
	atomic_init(&s->hits, 0);
	atomic_init(&s->misses, 0);
	s->buckets = buckets;
	s->nbuckets = CACHE_MIN_BUCKETS;
	return 0;
fail:
	free(buckets);
	return -1;
}

static int cache_shards_init(struct ks_cache *c)
{
	for (int i = 0; i < CACHE_SHARDS; i++)
		if (shard_init(&c->shards[i]) != 0)
			return -1;
	return 0;
}

static int cache_thread_start(struct ks_cache *c)
{
	pthread_condattr_t attr;
	int rc;

	if (pthread_mutex_init(&c->bg_lock, NULL) != 0)
		return -1;
	if (pthread_condattr_init(&attr) != 0)
		goto fail_mutex;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&c->bg_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0)
		goto fail_mutex;
	if (pthread_create(&c->thread, NULL, cache_background, c) != 0) {
		pthread_cond_destroy(&c->bg_cond);
		goto fail_mutex;
	}
	c->thread_started = true;
	return 0;
fail_mutex:
	pthread_mutex_destroy(&c->bg_lock);
	return -1;
}

struct ks_cache *ks_cache_new(struct keystore *store, const struct ks_cache_config *cfg)
{
	struct ks_cache *c;

	if (!store)
		return NULL;
	c = aligned_alloc(64, sizeof(*c));
	if (!c) {
		keystore_close(store);
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->store = store;
	if (cfg)
		c->cfg = *cfg;
	if (key_random(c->fp_key, sizeof(c->fp_key)) != 0 || cache_shards_init(c) != 0 ||
	    cache_thread_start(c) != 0) {
		ks_cache_free(c);
		return NULL;
	}
	return c;
}

static void cache_thread_stop(struct ks_cache *c)
{
	if (!c->thread_started)
		return;
	pthread_mutex_lock(&c->bg_lock);
	c->stopping = true;
	pthread_cond_signal(&c->bg_cond);
	pthread_mutex_unlock(&c->bg_lock);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->bg_cond);
	pthread_mutex_destroy(&c->bg_lock);
	c->thread_started = false;
}

void ks_cache_free(struct ks_cache *c)
{
	if (!c)
		return;
	cache_thread_stop(c);
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &c->shards[i];

		if (!s->buckets)
			break;
		shard_sweep(c, s, false, false);
		ghost_free_all(s);
		pthread_rwlock_destroy(&s->lock);
		pthread_mutex_destroy(&s->flight_lock);
		pthread_mutex_destroy(&s->ghost_lock);
		free(s->buckets);
	}
	keystore_close(c->store);
	secure_zero(c->fp_key, sizeof(c->fp_key));
	free(c);
}
