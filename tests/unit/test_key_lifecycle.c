/*
 * test_key_lifecycle.c — rotate, retire, scheduled deletion, restore and purge through the
 * cache (keystore/key_lifecycle.h, ks_cache_update, ks_cache_get_fresh), with two caches on one
 * mem store standing for two replicas on one keystore.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/cache.h"
#include "keystore/key_lifecycle.h"
#include "keystore/key_versions.h"
#include "keystore/tombstone.h"
#include "tests/unit/check.h"

/* ---- one mem store shared by several caches (each cache closes only its wrapper) ---- */

static int sh_create(void *self, const char *name, const struct bytes *r, struct ks_err *err)
{
	return keystore_create(self, name, r, err);
}
static int sh_get(void *self, const char *name, struct bytes *out, struct ks_err *err)
{
	return keystore_get_raw(self, name, out, err);
}
static int sh_remove(void *self, const char *name, const struct bytes *t, struct ks_err *err)
{
	return keystore_remove(self, name, t, err);
}
static int sh_list(void *self, const char *prefix, struct name_list *out, struct ks_err *err)
{
	return keystore_list(self, prefix, out, err);
}
static int sh_status(void *self, struct ks_status *out, struct ks_err *err)
{
	return keystore_status(self, out, err);
}
static int sh_replace(void *self, const char *name, const struct bytes *expected,
                      const struct bytes *r, struct ks_err *err)
{
	return keystore_replace(self, name, expected, r, err);
}
static void sh_close(void *self)
{
	(void)self;
}

static const struct keystore_ops shared_ops = {
    .name = "shared",
    .create = sh_create,
    .get = sh_get,
    .remove = sh_remove,
    .list = sh_list,
    .status = sh_status,
    .close = sh_close,
    .replace = sh_replace,
};

static struct keystore *store; /* the mem store all caches share */

static struct ks_cache *replica(void)
{
	struct keystore *ks = calloc(1, sizeof(*ks));
	struct ks_cache_config cfg = {.expiry_any_ms = 300000, .expiry_unused_ms = 30000};

	ks->ops = &shared_ops;
	ks->self = store;
	struct ks_cache *c = ks_cache_new(ks, &cfg);
	CHECK(c != NULL);
	return c;
}

static void create(struct ks_cache *c, const char *name)
{
	struct secret_key *k = NULL;
	struct ks_err err = {{0}};

	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, "creator", &k), 0);
	CHECK_EQ_INT(ks_cache_create(c, name, k, &err), KS_OK);
	key_free(k);
}

static struct bytes raw(const char *name)
{
	struct bytes out = {0};
	struct ks_err err = {{0}};

	CHECK_EQ_INT(keystore_get_raw(store, name, &out, &err), KS_OK);
	return out;
}

/* A data key sealed under the cache's current view of name. */
static struct bytes seal(struct ks_cache *c, const char *name, uint32_t *version)
{
	struct key_ref ref;
	struct ks_err err = {{0}};
	struct bytes ct = {0};
	static const uint8_t dek[32] = {7};

	CHECK_EQ_INT(ks_cache_get(c, name, 0, &ref, &err), KS_OK);
	if (ref.set)
		CHECK_EQ_INT(key_set_encrypt(ref.set, 0, dek, sizeof(dek), (const uint8_t *)"{}", 2,
		                             &ct, version),
		             0);
	key_ref_release(&ref);
	return ct;
}

/* Opens ct as a server does: the cached key, and once more from the store when the ciphertext
 * names a version the cached key does not have. */
static int open_ct(struct ks_cache *c, const char *name, const struct bytes *ct, uint32_t *used)
{
	struct key_ref ref;
	struct ks_err err = {{0}};
	struct bytes pt = {0};
	int rc;

	CHECK_EQ_INT(ks_cache_get(c, name, 0, &ref, &err), KS_OK);
	rc = key_set_decrypt(ref.set, 0, ct->data, ct->len, (const uint8_t *)"{}", 2, &pt, used);
	key_ref_release(&ref);
	if (rc == KEY_ERR_NO_VERSION) {
		CHECK_EQ_INT(ks_cache_get_fresh(c, name, &ref, &err), KS_OK);
		rc = key_set_decrypt(ref.set, 0, ct->data, ct->len, (const uint8_t *)"{}", 2, &pt,
		                     used);
		key_ref_release(&ref);
	}
	bytes_free(&pt);
	return rc;
}

static void test_rotate(void)
{
	struct ks_cache *c = replica();
	struct ks_err err = {{0}};
	struct bytes before, cts[4];
	uint32_t v = 0, used = 0;
	bool rotated;

	create(c, "rot");
	before = raw("rot");
	for (int i = 0; i < 4; i++) {
		cts[i] = seal(c, "rot", &v);
		CHECK_EQ_INT(v, (uint32_t)i + 1);
		CHECK_EQ_INT(key_lifecycle_rotate(c, "rot", "admin", 0, 0, &rotated, &v, &err),
		             KS_OK);
		CHECK(rotated);
		CHECK_EQ_INT(v, (uint32_t)i + 2);
	}
	/* every ciphertext opens without a version; the record keeps v1 as it was */
	for (int i = 0; i < 4; i++) {
		CHECK_EQ_INT(open_ct(c, "rot", &cts[i], &used), 0);
		CHECK_EQ_INT(used, (uint32_t)i + 1);
		bytes_free(&cts[i]);
	}
	struct bytes after = raw("rot");
	CHECK(after.len > before.len && memmem(after.data, after.len, before.data, before.len));
	bytes_free(&after);
	bytes_free(&before);
	CHECK_EQ_INT(key_lifecycle_rotate(c, "nope", "admin", 0, 0, &rotated, &v, &err),
	             KS_NOT_FOUND);
	ks_cache_free(c);
}

struct rotator {
	struct ks_cache *c;
	const char *name;
	int rounds, failed;
	int64_t older_than, now;
	int rotated;
};

static void *rotate_loop(void *arg)
{
	struct rotator *r = arg;
	for (int i = 0; i < r->rounds; i++) {
		struct ks_err err = {{0}};
		bool rotated;
		uint32_t v;
		if (key_lifecycle_rotate(r->c, r->name, "x", r->older_than, r->now, &rotated, &v,
		                         &err) != KS_OK)
			r->failed++;
		r->rotated += rotated;
	}
	return NULL;
}

/* Two replicas rotating at once: every rotation lands, none is lost; an automatic rotation
 * ("older than") by both happens once. */
static void test_two_replicas_rotate(void)
{
	struct ks_cache *a = replica(), *b = replica();
	struct rotator ra = {.c = a, .name = "shared", .rounds = 20},
	               rb = {.c = b, .name = "shared", .rounds = 20};
	struct key_ref ref;
	struct ks_err err = {{0}};
	pthread_t ta, tb;

	create(a, "shared");
	pthread_create(&ta, NULL, rotate_loop, &ra);
	pthread_create(&tb, NULL, rotate_loop, &rb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_EQ_INT(ra.failed + rb.failed, 0);
	CHECK_EQ_INT(ks_cache_get(a, "shared", 0, &ref, &err), KS_OK);
	CHECK_EQ_INT(ref.set->count, 41);
	key_ref_release(&ref);

	/* a key created two hours ago; both replicas decide "its current version is more than an
	 * hour old, rotate it", again and again: it is rotated once */
	struct secret_key *k = NULL;
	struct bytes rec = {0};
	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, "creator", &k), 0);
	k->created_at_sec -= 7200;
	CHECK_EQ_INT(key_record_encode(k, &rec), 0);
	CHECK_EQ_INT(keystore_create(store, "auto", &rec, &err), KS_OK);
	bytes_free(&rec);
	key_free(k);
	int64_t now = keystore_now();
	ra = (struct rotator){.c = a, .name = "auto", .rounds = 5, .older_than = 3600, .now = now};
	rb = (struct rotator){.c = b, .name = "auto", .rounds = 5, .older_than = 3600, .now = now};
	pthread_create(&ta, NULL, rotate_loop, &ra);
	pthread_create(&tb, NULL, rotate_loop, &rb);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_EQ_INT(ra.failed + rb.failed, 0);
	CHECK_EQ_INT(ra.rotated + rb.rotated, 1);
	CHECK_EQ_INT(ks_cache_get(b, "auto", 0, &ref, &err), KS_OK);
	CHECK_EQ_INT(ref.set->count, 2);
	key_ref_release(&ref);
	ks_cache_free(a);
	ks_cache_free(b);
}

/* A replica that cached the key before another rotated it keeps opening everything, the new
 * version's ciphertexts included (it reads the key again), and seals under what it has. */
static void test_stale_replica(void)
{
	struct ks_cache *a = replica(), *b = replica();
	struct ks_err err = {{0}};
	uint32_t v, used = 0;
	bool rotated;

	create(a, "stale");
	struct bytes old = seal(b, "stale", &v); /* b caches v1 */
	CHECK_EQ_INT(key_lifecycle_rotate(a, "stale", "admin", 0, 0, &rotated, &v, &err), KS_OK);
	struct bytes fresh = seal(a, "stale", &v);
	CHECK_EQ_INT(v, 2);
	struct bytes from_b = seal(b, "stale", &v);
	CHECK_EQ_INT(v, 1); /* still its cached view, until its cache expires */
	/* at once, although b loaded the key only just now */
	CHECK_EQ_INT(open_ct(b, "stale", &fresh, &used), 0);
	CHECK_EQ_INT(used, 2);
	CHECK_EQ_INT(open_ct(b, "stale", &old, &used), 0);
	CHECK_EQ_INT(open_ct(a, "stale", &from_b, &used), 0);
	/* b read the key again: it seals under v2 now */
	bytes_free(&from_b);
	from_b = seal(b, "stale", &v);
	CHECK_EQ_INT(v, 2);
	/* a ciphertext of a version nobody made: b read the key again just now, so no store
	 * read for a second */
	struct bytes v3 = seal(a, "stale", &v);
	v3.data[6] = 9; /* marked v9 */
	struct ks_cache_stats before, after;
	ks_cache_get_stats(b, &before);
	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(open_ct(b, "stale", &v3, &used), KEY_ERR_NO_VERSION);
	ks_cache_get_stats(b, &after);
	CHECK_EQ_INT(after.store_reads, before.store_reads);
	bytes_free(&v3);
	bytes_free(&old);
	bytes_free(&fresh);
	bytes_free(&from_b);
	ks_cache_free(a);
	ks_cache_free(b);
}

static void test_retire(void)
{
	struct ks_cache *c = replica();
	struct ks_err err = {{0}};
	uint32_t v, used = 0, count = 0;
	bool rotated;

	create(c, "old");
	struct bytes v1 = seal(c, "old", &v);
	CHECK_EQ_INT(key_lifecycle_retire(c, "old", 1, &count, &err), KS_OK); /* no change */
	CHECK_EQ_INT(count, 1);
	CHECK_EQ_INT(key_lifecycle_rotate(c, "old", "admin", 0, 0, &rotated, &v, &err), KS_OK);
	CHECK_EQ_INT(key_lifecycle_retire(c, "old", 3, &count, &err), KS_NO_VERSION);
	CHECK_EQ_INT(key_lifecycle_retire(c, "old", 2, &count, &err), KS_OK);
	CHECK_EQ_INT(open_ct(c, "old", &v1, &used), KEY_ERR_RETIRED);
	CHECK_EQ_INT(key_lifecycle_retire(c, "old", 1, &count, &err), KS_OK); /* undone */
	CHECK_EQ_INT(open_ct(c, "old", &v1, &used), 0);
	bytes_free(&v1);
	ks_cache_free(c);
}

static void test_scheduled_deletion(void)
{
	struct ks_cache *c = replica();
	struct ks_err err = {{0}};
	struct key_ref ref;
	struct tombstone t;
	uint32_t v, used;
	bool purged;
	int64_t now = keystore_now();

	create(c, "doomed");
	struct bytes ct = seal(c, "doomed", &v);
	struct bytes key = raw("doomed");
	CHECK_EQ_INT(key_lifecycle_restore(c, "doomed", now, &err), KS_EXISTS);
	CHECK_EQ_INT(key_lifecycle_purge(c, "doomed", false, now, &purged, &err), KS_EXISTS);
	CHECK_EQ_INT(key_lifecycle_schedule_delete(c, "doomed", "admin", 3600, now, &err), KS_OK);
	/* it stops serving at once, the name is reserved, it reads as a tombstone */
	CHECK_EQ_INT(ks_cache_get(c, "doomed", 0, &ref, &err), KS_NOT_FOUND);
	struct secret_key *k = NULL;
	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, "", &k), 0);
	CHECK_EQ_INT(ks_cache_create(c, "doomed", k, &err), KS_DELETED);
	CHECK_EQ_INT(key_lifecycle_schedule_delete(c, "doomed", "admin", 3600, now, &err),
	             KS_NOT_FOUND);
	struct bytes tomb = raw("doomed");
	CHECK(tombstone_parse(tomb.data, tomb.len, &t));
	CHECK_EQ_INT(t.restore_until, now + 3600);
	CHECK(t.until >= now + 3600);
	bytes_free(&tomb);
	/* restored: the same key, its ciphertexts open */
	CHECK_EQ_INT(key_lifecycle_restore(c, "doomed", now, &err), KS_OK);
	struct bytes back = raw("doomed");
	CHECK(back.len == key.len && memcmp(back.data, key.data, key.len) == 0);
	bytes_free(&back);
	CHECK_EQ_INT(open_ct(c, "doomed", &ct, &used), 0);
	/* deleted again, then purged: gone for good */
	CHECK_EQ_INT(key_lifecycle_schedule_delete(c, "doomed", "admin", 3600, now, &err), KS_OK);
	CHECK_EQ_INT(key_lifecycle_purge(c, "doomed", true, now, &purged, &err), KS_OK);
	CHECK(!purged); /* the window is not over */
	CHECK_EQ_INT(key_lifecycle_purge(c, "doomed", false, now, &purged, &err), KS_OK);
	CHECK(purged);
	tomb = raw("doomed");
	CHECK(tombstone_parse(tomb.data, tomb.len, &t));
	CHECK_EQ_INT(t.restore_until, 0);
	CHECK(!memmem(tomb.data, tomb.len, key.data, key.len));
	bytes_free(&tomb);
	CHECK_EQ_INT(key_lifecycle_restore(c, "doomed", now, &err), KS_PURGED);
	CHECK_EQ_INT(key_lifecycle_purge(c, "doomed", false, now, &purged, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(key_lifecycle_restore(c, "never", now, &err), KS_NOT_FOUND);
	/* a rotated key is kept whole by a scheduled deletion, and comes back whole */
	create(c, "versioned");
	bool rotated;
	CHECK_EQ_INT(key_lifecycle_rotate(c, "versioned", "a", 0, 0, &rotated, &v, &err), KS_OK);
	struct bytes ct2 = seal(c, "versioned", &v);
	CHECK_EQ_INT(key_lifecycle_schedule_delete(c, "versioned", "a", 60, now, &err), KS_OK);
	CHECK_EQ_INT(key_lifecycle_restore(c, "versioned", now + 61, &err), KS_PURGED);
	CHECK_EQ_INT(key_lifecycle_restore(c, "versioned", now + 59, &err), KS_OK);
	CHECK_EQ_INT(open_ct(c, "versioned", &ct2, &used), 0);
	CHECK_EQ_INT(used, 2);
	/* the server's sweep purges only what is past its window */
	CHECK_EQ_INT(key_lifecycle_schedule_delete(c, "versioned", "a", 60, now, &err), KS_OK);
	CHECK_EQ_INT(key_lifecycle_purge(c, "versioned", true, now + 59, &purged, &err), KS_OK);
	CHECK(!purged);
	CHECK_EQ_INT(key_lifecycle_purge(c, "versioned", true, now + 60, &purged, &err), KS_OK);
	CHECK(purged);
	CHECK_EQ_INT(key_lifecycle_purge(c, "versioned", true, now + 60, &purged, &err), KS_OK);
	CHECK(!purged);
	/* a stored record that is not text cannot be kept for a restore: the delete is refused
	 * and the record stays as it was */
	struct bytes odd = {(uint8_t *)"\xc1\xbe not a key", 11}, back2 = {0};
	CHECK_EQ_INT(keystore_create(store, "binary", &odd, &err), KS_OK);
	CHECK_EQ_INT(key_lifecycle_schedule_delete(c, "binary", "a", 60, now, &err), KS_FAILED);
	CHECK(strstr(err.msg, "not text") != NULL);
	CHECK_EQ_INT(keystore_get_raw(store, "binary", &back2, &err), KS_OK);
	CHECK(back2.len == odd.len && memcmp(back2.data, odd.data, odd.len) == 0);
	bytes_free(&back2);
	key_free(k);
	bytes_free(&ct);
	bytes_free(&ct2);
	bytes_free(&key);
	ks_cache_free(c);
}

int main(void)
{
	store = mem_keystore_open();
	RUN(test_rotate);
	RUN(test_two_replicas_rotate);
	RUN(test_stale_replica);
	RUN(test_retire);
	RUN(test_scheduled_deletion);
	keystore_close(store);
	return CHECK_DONE();
}
