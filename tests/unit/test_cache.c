/*
 * test_cache.c — the key cache over a mem store wrapped in a test store that counts reads,
 * can slow them down, can fail status or create on demand, and can hold a create or a get
 * just after the inner store answered (a gate), so a test can put another operation exactly
 * there.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystore/cache.h"
#include "keystore/tombstone.h"
#include "tests/unit/check.h"

#define TOMB_TEXT "{\"algorithm\":\"kesc-tombstone\",\"until\":null}"
/* A tombstone as another server's delete leaves it (never expires). */
static const struct bytes TOMB = {(uint8_t *)TOMB_TEXT, sizeof(TOMB_TEXT) - 1};

/* --- the test store ---------------------------------------------------------------------- */

/* Holds the thread that reaches it until the test opens it. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool armed;   /* the next create/get that passes stops here */
	bool reached; /* a thread is waiting at the gate */
	bool open;
};

struct test_store {
	struct keystore *inner;  /* a mem store */
	struct gate create_gate; /* after the inner create answered */
	struct gate get_gate;    /* after the inner get answered */
	atomic_int gets;
	atomic_int status_calls;
	atomic_int get_delay_ms;
	atomic_int status_delay_ms;
	atomic_bool status_fails;
	atomic_bool create_fails;
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->armed = g->reached = g->open = false;
}

static void gate_destroy(struct gate *g)
{
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
}

static void gate_arm(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->armed = true;
	g->reached = g->open = false;
	pthread_mutex_unlock(&g->lock);
}

/* Called by the store: waits at the gate if it is armed. */
static void gate_pass(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	if (g->armed) {
		g->armed = false;
		g->reached = true;
		pthread_cond_broadcast(&g->cond);
		while (!g->open)
			pthread_cond_wait(&g->cond, &g->lock);
	}
	pthread_mutex_unlock(&g->lock);
}

/* Called by the test: waits until a thread stands at the gate. */
static void gate_wait_reached(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	while (!g->reached)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static int ts_create(void *self, const char *name, const struct bytes *record, struct ks_err *err)
{
	struct test_store *t = self;
	int rc;

	if (atomic_load(&t->create_fails)) {
		ks_err_set(err, "test: create fails");
		return KS_UNREACHABLE;
	}
	rc = keystore_create(t->inner, name, record, err);
	gate_pass(&t->create_gate);
	return rc;
}

static int ts_get(void *self, const char *name, struct bytes *record_out, struct ks_err *err)
{
	struct test_store *t = self;
	int delay = atomic_load(&t->get_delay_ms);
	int rc;

	atomic_fetch_add(&t->gets, 1);
	if (delay > 0)
		sleep_ms(delay);
	rc = t->inner->ops->get(t->inner->self, name, record_out, err); /* as stored */
	gate_pass(&t->get_gate);
	return rc;
}

static int ts_remove(void *self, const char *name, const struct bytes *tombstone,
                     struct ks_err *err)
{
	return keystore_remove(((struct test_store *)self)->inner, name, tombstone, err);
}

static int ts_list(void *self, const char *prefix, struct name_list *out, struct ks_err *err)
{
	return keystore_list(((struct test_store *)self)->inner, prefix, out, err);
}

static int ts_status(void *self, struct ks_status *out, struct ks_err *err)
{
	struct test_store *t = self;

	atomic_fetch_add(&t->status_calls, 1);
	if (atomic_load(&t->status_delay_ms) > 0)
		sleep_ms(atomic_load(&t->status_delay_ms));
	if (atomic_load(&t->status_fails)) {
		ks_err_set(err, "test: store is down");
		return KS_UNREACHABLE;
	}
	out->latency_us = 42;
	return KS_OK;
}

/* The cache closes the store; the counters stay readable in the caller's struct. */
static void ts_close(void *self)
{
	struct test_store *t = self;

	keystore_close(t->inner);
	gate_destroy(&t->create_gate);
	gate_destroy(&t->get_gate);
}

static const struct keystore_ops test_ops = {
    .name = "test",
    .create = ts_create,
    .get = ts_get,
    .remove = ts_remove,
    .list = ts_list,
    .status = ts_status,
    .close = ts_close,
};

static struct ks_cache *open_cache(struct test_store *t, const struct ks_cache_config *cfg)
{
	struct keystore *ks = calloc(1, sizeof(*ks));
	struct ks_cache *c;

	memset(t, 0, sizeof(*t));
	gate_init(&t->create_gate);
	gate_init(&t->get_gate);
	t->inner = mem_keystore_open();
	CHECK(ks != NULL && t->inner != NULL);
	ks->ops = &test_ops;
	ks->self = t;
	c = ks_cache_new(ks, cfg);
	CHECK(c != NULL);
	return c;
}

/* Stores a new key directly in the inner store (as if another instance wrote it). */
static struct secret_key *store_key(struct test_store *t, const char *name)
{
	struct secret_key *k = NULL;
	struct bytes rec = {0};
	struct ks_err err = {{0}};

	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, "test-identity", &k), 0);
	if (!k)
		return NULL;
	CHECK_EQ_INT(key_record_encode(k, &rec), 0);
	CHECK_EQ_INT(keystore_create(t->inner, name, &rec, &err), KS_OK);
	bytes_free(&rec);
	return k;
}

static bool same_key(const struct secret_key *a, const struct secret_key *b)
{
	return a && b && memcmp(a->key, b->key, KEY_SIZE) == 0 &&
	       memcmp(a->hmac_key, b->hmac_key, KEY_HMAC_SIZE) == 0 && a->algorithm == b->algorithm;
}

static struct ks_cache_stats stats_of(struct ks_cache *c)
{
	struct ks_cache_stats s;

	ks_cache_get_stats(c, &s);
	return s;
}

/* Polls until the cache has n entries or timeout_ms passed; returns whether it happened. */
static bool wait_entries(struct ks_cache *c, uint64_t n, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (stats_of(c).entries != n) {
		if (now_ms() > end)
			return false;
		sleep_ms(5);
	}
	return true;
}

static bool wait_offline(struct ks_cache *c, bool offline, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (stats_of(c).offline != offline) {
		if (now_ms() > end)
			return false;
		sleep_ms(5);
	}
	return true;
}

/* --- tests ------------------------------------------------------------------------------- */

static void test_hit_and_miss(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *k = store_key(&t, "k1");
	struct key_ref ref;
	struct ks_err err = {{0}};
	struct ks_cache_stats s;

	CHECK_EQ_INT(ks_cache_get(c, "k1", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k));
	key_ref_release(&ref);
	CHECK(ref.key == NULL);
	CHECK_EQ_INT(ks_cache_get(c, "k1", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k));
	key_ref_release(&ref);
	s = stats_of(c);
	CHECK_EQ_INT(s.hits, 1);
	CHECK_EQ_INT(s.misses, 1);
	CHECK_EQ_INT(s.store_reads, 1);
	CHECK_EQ_INT(s.entries, 1);
	CHECK_EQ_INT(atomic_load(&t.gets), 1);

	/* Not found is not cached: each lookup asks the store again. */
	CHECK_EQ_INT(ks_cache_get(c, "nope", 0, &ref, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(ks_cache_get(c, "nope", 0, &ref, &err), KS_NOT_FOUND);
	CHECK(ref.entry == NULL);
	CHECK_EQ_INT(atomic_load(&t.gets), 3);
	CHECK_EQ_INT(stats_of(c).entries, 1);
	CHECK_EQ_STR(ks_cache_store_name(c), "test");
	key_free(k);
	ks_cache_free(c);
}

struct getter {
	struct ks_cache *c;
	pthread_barrier_t *start;
	const char *name;
	int rc;
	const struct secret_key *key;
	struct key_ref ref;
};

static void *getter_run(void *arg)
{
	struct getter *g = arg;
	struct ks_err err = {{0}};

	pthread_barrier_wait(g->start);
	g->rc = ks_cache_get(g->c, g->name, 0, &g->ref, &err);
	g->key = g->ref.key;
	return NULL;
}

/* n threads look up name at once; returns how many got KS_OK and checks the rest got want. */
static int stampede(struct ks_cache *c, const char *name, int want_rc, const struct secret_key *k)
{
	enum { N = 100 };
	struct getter *g = calloc(N, sizeof(*g));
	pthread_t th[N];
	pthread_barrier_t start;
	int ok = 0;

	pthread_barrier_init(&start, NULL, N);
	for (int i = 0; i < N; i++) {
		g[i] = (struct getter){.c = c, .start = &start, .name = name};
		CHECK(pthread_create(&th[i], NULL, getter_run, &g[i]) == 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(g[i].rc, want_rc);
		if (g[i].rc == KS_OK) {
			ok++;
			CHECK(same_key(g[i].key, k));
			key_ref_release(&g[i].ref);
		}
	}
	pthread_barrier_destroy(&start);
	free(g);
	return ok;
}

static void test_single_flight(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *k = store_key(&t, "hot");

	atomic_store(&t.get_delay_ms, 500);
	CHECK_EQ_INT(stampede(c, "hot", KS_OK, k), 100);
	CHECK_EQ_INT(atomic_load(&t.gets), 1);
	CHECK_EQ_INT(stats_of(c).store_reads, 1);
	CHECK_EQ_INT(stats_of(c).entries, 1);

	/* A shared not-found answer is still one read, and is not cached. */
	CHECK_EQ_INT(stampede(c, "cold", KS_NOT_FOUND, NULL), 0);
	CHECK_EQ_INT(atomic_load(&t.gets), 2);
	CHECK_EQ_INT(stats_of(c).entries, 1);
	key_free(k);
	ks_cache_free(c);
}

static void test_nonblock(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *k = store_key(&t, "k");
	struct key_ref ref;
	struct ks_err err = {{0}};

	CHECK_EQ_INT(ks_cache_get(c, "k", KS_CACHE_NONBLOCK, &ref, &err), KS_WOULD_BLOCK);
	CHECK(ref.key == NULL);
	CHECK_EQ_INT(atomic_load(&t.gets), 0);
	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	CHECK_EQ_INT(ks_cache_get(c, "k", KS_CACHE_NONBLOCK, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k));
	key_ref_release(&ref);
	CHECK_EQ_INT(atomic_load(&t.gets), 1);
	key_free(k);
	ks_cache_free(c);
}

static void test_create(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *original = store_key(&t, "taken");
	struct secret_key *k = NULL;
	struct key_ref ref;
	struct ks_err err = {{0}};

	CHECK_EQ_INT(key_generate(KEY_ALG_CHACHA20, "creator", &k), 0);
	/* A create the store refuses never reaches the cache. */
	CHECK_EQ_INT(ks_cache_create(c, "taken", k, &err), KS_EXISTS);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	atomic_store(&t.create_fails, true);
	CHECK_EQ_INT(ks_cache_create(c, "lost", k, &err), KS_UNREACHABLE);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	CHECK_EQ_INT(stats_of(c).store_errors, 1);
	atomic_store(&t.create_fails, false);
	CHECK_EQ_INT(ks_cache_get(c, "lost", 0, &ref, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(ks_cache_get(c, "taken", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, original));
	key_ref_release(&ref);

	/* A confirmed create is cached: the next get is a hit and reads nothing. */
	atomic_store(&t.gets, 0);
	CHECK_EQ_INT(ks_cache_create(c, "fresh", k, &err), KS_OK);
	CHECK_EQ_INT(ks_cache_get(c, "fresh", KS_CACHE_NONBLOCK, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k));
	CHECK(ref.key != k); /* the cache keeps its own copy */
	CHECK_EQ_STR(ref.key->created_by, "creator");
	key_ref_release(&ref);
	CHECK_EQ_INT(atomic_load(&t.gets), 0);

	/* And what was stored reads back as the same key. */
	{
		struct bytes rec = {0};
		struct secret_key *back = NULL;

		CHECK_EQ_INT(keystore_get(t.inner, "fresh", &rec, &err), KS_OK);
		CHECK_EQ_INT(key_record_decode(rec.data, rec.len, &back), 0);
		CHECK(same_key(back, k));
		key_free(back);
		bytes_free(&rec);
	}
	key_free(k);
	key_free(original);
	ks_cache_free(c);
}

static void test_remove(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *k = store_key(&t, "k");
	struct key_ref held, ref;
	struct ks_err err = {{0}};

	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &held, &err), KS_OK);
	CHECK_EQ_INT(ks_cache_remove(c, "k", "remover", &err), KS_OK);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_NOT_FOUND);
	/* A reference taken before the eviction stays valid until released. */
	CHECK(same_key(held.key, k));
	key_ref_release(&held);

	/* Removed behind the cache's back: remove says not found and still evicts. */
	key_free(k);
	k = store_key(&t, "k2");
	CHECK_EQ_INT(ks_cache_get(c, "k2", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	CHECK_EQ_INT(keystore_remove(t.inner, "k2", &TOMB, &err), KS_OK);
	CHECK_EQ_INT(ks_cache_remove(c, "k2", NULL, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	CHECK_EQ_INT(ks_cache_get(c, "k2", 0, &ref, &err), KS_NOT_FOUND);
	key_free(k);
	ks_cache_free(c);
}

struct create_job {
	struct ks_cache *c;
	const char *name;
	const struct secret_key *key;
	int rc;
};

static void *create_run(void *arg)
{
	struct create_job *j = arg;
	struct ks_err err = {{0}};

	j->rc = ks_cache_create(j->c, j->name, j->key, &err);
	return NULL;
}

/*
 * issue 9, "ghost key": a create whose store write succeeded, then a delete of the same name
 * that completed (store and cache) before the create put its key into the cache. The cache
 * must not hold the deleted key: generate would succeed on a key no store has, and the data
 * keys made with it could never be decrypted once the entry expired.
 */
static void test_create_racing_remove(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *k = NULL;
	struct key_ref ref = {0};
	struct ks_err err = {{0}};
	struct create_job job;
	pthread_t th;

	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, "creator", &k), 0);
	job = (struct create_job){c, "ghost", k, -99};
	gate_arm(&t.create_gate);
	CHECK_EQ_INT(pthread_create(&th, NULL, create_run, &job), 0);
	gate_wait_reached(&t.create_gate); /* the key is in the store, not yet in the cache */
	CHECK_EQ_INT(ks_cache_remove(c, "ghost", NULL, &err), KS_OK);
	gate_open(&t.create_gate);
	pthread_join(th, NULL);
	CHECK_EQ_INT(job.rc, KS_OK); /* the create did happen; the delete came after it */

	CHECK_EQ_INT(keystore_get(t.inner, "ghost", &(struct bytes){0}, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	CHECK_EQ_INT(ks_cache_get(c, "ghost", KS_CACHE_NONBLOCK, &ref, &err), KS_WOULD_BLOCK);
	CHECK_EQ_INT(ks_cache_get(c, "ghost", 0, &ref, &err), KS_NOT_FOUND);
	key_ref_release(&ref);

	/* Without a delete in between, a create is still cached at once. */
	CHECK_EQ_INT(ks_cache_create(c, "kept", k, &err), KS_OK);
	CHECK_EQ_INT(ks_cache_get(c, "kept", KS_CACHE_NONBLOCK, &ref, &err), KS_OK);
	key_ref_release(&ref);
	key_free(k);
	ks_cache_free(c);
}

struct get_job {
	struct ks_cache *c;
	const char *name;
	int rc;
	struct key_ref ref;
};

static void *get_run(void *arg)
{
	struct get_job *j = arg;
	struct ks_err err = {{0}};

	j->rc = ks_cache_get(j->c, j->name, 0, &j->ref, &err);
	return NULL;
}

/* The same for a read: a store read that returned the key before a delete completed must not
 * put the deleted key into the cache afterwards (its caller may still use what it read). */
static void test_get_racing_remove(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *k = store_key(&t, "read");
	struct key_ref ref = {0};
	struct ks_err err = {{0}};
	struct get_job job = {c, "read", -99, {0}};
	pthread_t th;

	gate_arm(&t.get_gate);
	CHECK_EQ_INT(pthread_create(&th, NULL, get_run, &job), 0);
	gate_wait_reached(&t.get_gate);
	CHECK_EQ_INT(ks_cache_remove(c, "read", NULL, &err), KS_OK);
	gate_open(&t.get_gate);
	pthread_join(th, NULL);
	CHECK_EQ_INT(job.rc, KS_OK);
	CHECK(same_key(job.ref.key, k));
	key_ref_release(&job.ref);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	CHECK_EQ_INT(ks_cache_get(c, "read", KS_CACHE_NONBLOCK, &ref, &err), KS_WOULD_BLOCK);
	CHECK_EQ_INT(ks_cache_get(c, "read", 0, &ref, &err), KS_NOT_FOUND);
	key_free(k);
	ks_cache_free(c);
}

/* A read that began after a delete completed never takes the answer of a store read that began
 * before it: a request sent after the delete's reply must not be served the deleted key
 * (seen as "A served the key it had deleted" in test_scaleout under load). */
static void test_get_after_remove_does_not_join_older_read(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *k = store_key(&t, "late");
	struct ks_err err = {{0}};
	struct get_job before = {c, "late", -99, {0}}, after = {c, "late", -99, {0}};
	pthread_t th_before, th_after;
	struct timespec until;

	gate_arm(&t.get_gate);
	CHECK_EQ_INT(pthread_create(&th_before, NULL, get_run, &before), 0);
	gate_wait_reached(&t.get_gate); /* its store read has the key; the flight is still listed */
	CHECK_EQ_INT(ks_cache_remove(c, "late", NULL, &err), KS_OK);
	CHECK_EQ_INT(pthread_create(&th_after, NULL, get_run, &after), 0);
	/* generous: the read after the delete goes to the store itself and is not held up by the
	 * older one (which waits at the gate until the end) */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	int joined = pthread_timedjoin_np(th_after, NULL, &until);
	CHECK_EQ_INT(joined, 0);
	gate_open(&t.get_gate);
	if (joined != 0)
		pthread_join(th_after, NULL);
	pthread_join(th_before, NULL);
	CHECK_EQ_INT(after.rc, KS_NOT_FOUND);
	CHECK_EQ_INT(before.rc, KS_OK); /* it was concurrent with the delete: either is right */
	key_ref_release(&before.ref);
	key_ref_release(&after.ref);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	key_free(k);
	ks_cache_free(c);
}

static void test_list_passes_through(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *a = store_key(&t, "a1"), *b = store_key(&t, "b1");
	struct name_list l = {0};
	struct ks_err err = {{0}};

	CHECK_EQ_INT(ks_cache_list(c, "a", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 1);
	if (l.count == 1)
		CHECK_EQ_STR(l.names[0], "a1");
	name_list_free(&l);
	key_free(a);
	key_free(b);
	ks_cache_free(c);
}

static void test_malformed_record(void)
{
	static const char junk[] = "SECRETJUNK-not-a-record";
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct bytes rec = {(uint8_t *)junk, sizeof(junk) - 1};
	struct key_ref ref;
	struct ks_err err = {{0}};

	CHECK_EQ_INT(keystore_create(t.inner, "bad", &rec, &err), KS_OK);
	CHECK_EQ_INT(ks_cache_get(c, "bad", 0, &ref, &err), KS_FAILED);
	CHECK(err.msg[0] != '\0');
	CHECK(strstr(err.msg, "SECRETJUNK") == NULL);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	ks_cache_free(c);
}

static void test_expiry_any(void)
{
	struct ks_cache_config cfg = {.expiry_any_ms = 200};
	struct test_store t;
	struct ks_cache *c = open_cache(&t, &cfg);
	struct secret_key *k = store_key(&t, "k");
	struct key_ref ref;
	struct ks_err err = {{0}};
	int64_t start = now_ms();

	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	/* Dropped even though it keeps being used. */
	while (stats_of(c).entries == 1 && now_ms() - start < 3000) {
		CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
		key_ref_release(&ref);
		sleep_ms(10);
	}
	CHECK(now_ms() - start < 3000);
	CHECK(atomic_load(&t.gets) >= 1);
	key_free(k);
	ks_cache_free(c);
}

static void test_expiry_unused(void)
{
	struct ks_cache_config cfg = {.expiry_unused_ms = 1000};
	struct test_store t;
	struct ks_cache *c = open_cache(&t, &cfg);
	struct secret_key *a = store_key(&t, "busy"), *b = store_key(&t, "idle");
	struct key_ref ref;
	struct ks_err err = {{0}};
	int64_t start = now_ms();

	CHECK_EQ_INT(ks_cache_get(c, "busy", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	CHECK_EQ_INT(ks_cache_get(c, "idle", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	/* "busy" is used every 20 ms for 3 s: it stays; "idle" goes. */
	while (now_ms() - start < 3000) {
		CHECK_EQ_INT(ks_cache_get(c, "busy", 0, &ref, &err), KS_OK);
		key_ref_release(&ref);
		sleep_ms(20);
	}
	CHECK_EQ_INT(stats_of(c).entries, 1);
	CHECK_EQ_INT(atomic_load(&t.gets), 2);
	CHECK_EQ_INT(ks_cache_get(c, "busy", KS_CACHE_NONBLOCK, &ref, &err), KS_OK);
	key_ref_release(&ref);
	CHECK_EQ_INT(ks_cache_get(c, "idle", KS_CACHE_NONBLOCK, &ref, &err), KS_WOULD_BLOCK);
	key_free(a);
	key_free(b);
	ks_cache_free(c);
}

static void test_offline(void)
{
	struct ks_cache_config cfg = {.status_interval_ms = 50};
	struct test_store t;
	struct ks_cache *c = open_cache(&t, &cfg);
	struct secret_key *k = store_key(&t, "k"), *later;
	struct key_ref ref;
	struct ks_status st = {0};
	struct ks_err err = {{0}};
	int calls;
	int64_t start;

	CHECK_EQ_INT(ks_cache_status(c, &st, &err), KS_OK);
	CHECK_EQ_INT(st.latency_us, 42);
	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);

	/* A store that is down and slow to say so. */
	atomic_store(&t.status_delay_ms, 400);
	atomic_store(&t.status_fails, true);
	CHECK(wait_offline(c, true, 5000));
	/* Offline: status answers at once without asking the store... */
	calls = atomic_load(&t.status_calls);
	start = now_ms();
	CHECK_EQ_INT(ks_cache_status(c, &st, &err), KS_UNREACHABLE);
	CHECK(now_ms() - start < 200);
	CHECK(atomic_load(&t.status_calls) - calls <= 1); /* at most a background probe */
	/* ...cached keys are served, and misses still go to the store. */
	CHECK_EQ_INT(ks_cache_get(c, "k", KS_CACHE_NONBLOCK, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k));
	key_ref_release(&ref);
	later = store_key(&t, "later");
	CHECK_EQ_INT(ks_cache_get(c, "later", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, later));
	key_ref_release(&ref);

	/* The store comes back: so does the cache, by itself. */
	atomic_store(&t.status_delay_ms, 0);
	atomic_store(&t.status_fails, false);
	CHECK(wait_offline(c, false, 5000));
	CHECK_EQ_INT(ks_cache_status(c, &st, &err), KS_OK);
	CHECK_EQ_INT(stats_of(c).store_latency_us, 42);
	key_free(k);
	key_free(later);
	ks_cache_free(c);
}

/* While the store is offline the cache probes it about once a second, whatever the status
 * interval: /v1/ready and the offline expiry must not lag a recovered store by a whole
 * interval (10 s by default). */
static void test_offline_recovery_is_prompt(void)
{
	struct ks_cache_config cfg = {.status_interval_ms = 4000};
	struct test_store t;
	struct ks_cache *c = open_cache(&t, &cfg);
	int64_t back;

	atomic_store(&t.status_fails, true);
	CHECK(wait_offline(c, true, 10000));
	back = now_ms();
	atomic_store(&t.status_fails, false);
	CHECK(wait_offline(c, false, 10000));
	/* A whole interval would be 4 s; a probe a second answers in about one. */
	CHECK(now_ms() - back < 2500);
	ks_cache_free(c);
}

static void test_offline_expiry(void)
{
	/* While offline with an offline expiry the "any" expiry (300 ms) waits; the offline
	 * expiry (2000 ms) drops everything. */
	struct ks_cache_config cfg = {
	    .expiry_any_ms = 300, .expiry_offline_ms = 2000, .status_interval_ms = 30};
	struct test_store t;
	struct ks_cache *c;
	struct secret_key *k;
	struct key_ref ref;
	struct ks_err err = {{0}};
	int64_t start;

	c = open_cache(&t, &cfg);
	k = store_key(&t, "k");
	atomic_store(&t.status_fails, true);
	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	start = now_ms();
	CHECK(wait_offline(c, true, 3000));
	sleep_ms(700);
	CHECK_EQ_INT(stats_of(c).entries, 1);
	CHECK(wait_entries(c, 0, 3000));
	CHECK(now_ms() - start >= 700);
	/* Still offline: misses go to the store, which answers. */
	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k));
	key_ref_release(&ref);
	key_free(k);
	ks_cache_free(c);
}

/* The whole read path on a directory KES's fs keystore wrote: fs store → cache → key. */
static void test_kes_directory(void)
{
	static const char record[] = "CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4"
	                             "yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20Y"
	                             "QZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMD"
	                             "MwZjgxZTk2Yjc1MzM2NWE0Njc2MGFl"
	                             "NmI1Nzg2OThhOTdjNTlmZDIy";
	static const uint8_t want_key[4] = {0xc8, 0x87, 0x1b, 0xb5}; /* "yIcbtes3…" */
	char dir[64], path[128];
	struct ks_err err = {{0}};
	struct key_ref ref;
	struct ks_cache *c;
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/kesc-test-cache-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/minio-default-key", dir);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f) {
		CHECK_EQ_INT(fwrite(record, 1, sizeof(record) - 1, f), sizeof(record) - 1);
		CHECK(fclose(f) == 0);
	}
	c = ks_cache_new(fs_keystore_open(dir, &err), NULL);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(ks_cache_get(c, "minio-default-key", 0, &ref, &err), KS_OK);
		if (ref.key) {
			CHECK_MEM(ref.key->key, want_key, sizeof(want_key));
			CHECK(ref.key->has_hmac);
			CHECK_EQ_STR(
			    ref.key->created_by,
			    "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
		}
		key_ref_release(&ref);
		CHECK_EQ_STR(ks_cache_store_name(c), "fs");
		CHECK_EQ_INT(ks_cache_remove(c, "minio-default-key", NULL, &err), KS_OK);
		CHECK_EQ_INT(ks_cache_get(c, "minio-default-key", 0, &ref, &err), KS_NOT_FOUND);
		ks_cache_free(c);
	}
	CHECK(unlink(path) == 0); /* the tombstone */
	CHECK(rmdir(dir) == 0);
}

/* --- tombstones, ages and ghosts ----------------------------------------------------------- */

/* The error log, as keystore_set_log delivers it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[8192];

static void log_capture(const char *message)
{
	pthread_mutex_lock(&log_lock);
	size_t n = strlen(log_text);
	snprintf(log_text + n, sizeof(log_text) - n, "%s\n", message);
	pthread_mutex_unlock(&log_lock);
}

static int log_count(const char *needle)
{
	int n = 0;

	pthread_mutex_lock(&log_lock);
	for (const char *p = log_text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	pthread_mutex_unlock(&log_lock);
	return n;
}

static void log_reset(void)
{
	pthread_mutex_lock(&log_lock);
	log_text[0] = '\0';
	pthread_mutex_unlock(&log_lock);
	keystore_set_log(log_capture);
}

/* The rule: longer than any replica with these settings serves a key from its cache. */
static void test_tombstone_lifetime(void)
{
	struct ks_cache_config five_min = {.expiry_any_ms = 300000, .expiry_unused_ms = 30000};
	struct ks_cache_config four_s = {.expiry_any_ms = 4000};
	struct ks_cache_config offline = {.expiry_any_ms = 300000, .expiry_offline_ms = 3600000};
	struct ks_cache_config forever = {.expiry_any_ms = 0, .expiry_unused_ms = 30000};

	CHECK_EQ_INT(ks_cache_tombstone_lifetime_ms(&five_min), 360000);
	CHECK_EQ_INT(ks_cache_tombstone_lifetime_ms(&four_s), 8000);
	CHECK_EQ_INT(ks_cache_tombstone_lifetime_ms(&offline), 300000 + 3600000 + 60000);
	CHECK_EQ_INT(ks_cache_tombstone_lifetime_ms(&forever), -1);
}

/* A delete leaves a tombstone that says who and until when, and the name is reserved. */
static void test_remove_writes_tombstone(void)
{
	struct ks_cache_config cfg = {.expiry_any_ms = 4000};
	struct test_store t;
	struct ks_cache *c = open_cache(&t, &cfg);
	struct secret_key *k = store_key(&t, "k"), *again = NULL;
	struct bytes rec = {0};
	struct tombstone tomb;
	struct ks_err err = {{0}};
	int64_t before = keystore_now();

	CHECK_EQ_INT(ks_cache_remove(c, "k", "0123abcd", &err), KS_OK);
	CHECK_EQ_INT(t.inner->ops->get(t.inner->self, "k", &rec, &err), KS_OK);
	CHECK(tombstone_parse(rec.data, rec.len, &tomb));
	CHECK_EQ_STR(tomb.deleted_by, "0123abcd");
	CHECK(tomb.deleted_at >= before && tomb.deleted_at <= keystore_now());
	CHECK_EQ_INT(tomb.until, tomb.deleted_at + 1 + 8);
	bytes_free(&rec);
	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, "again", &again), 0);
	CHECK_EQ_INT(ks_cache_create(c, "k", again, &err), KS_DELETED);
	CHECK_EQ_INT(stats_of(c).entries, 0);
	/* An identity the record cannot carry is left out, the delete still happens. */
	key_free(k);
	k = store_key(&t, "k2");
	CHECK_EQ_INT(ks_cache_remove(c, "k2", "bad\nname", &err), KS_OK);
	CHECK_EQ_INT(t.inner->ops->get(t.inner->self, "k2", &rec, &err), KS_OK);
	CHECK(tombstone_parse(rec.data, rec.len, &tomb));
	CHECK_EQ_STR(tomb.deleted_by, "");
	bytes_free(&rec);
	key_free(k);
	key_free(again);
	ks_cache_free(c);
}

/* Another server deletes a key this one had cached: once the entry expired, the next read
 * finds the tombstone, serves nothing, and says so once. */
static void test_ghost_gone(void)
{
	struct ks_cache_config cfg = {.expiry_any_ms = 150};
	struct test_store t;
	struct ks_cache *c;
	struct secret_key *k;
	struct key_ref ref;
	struct ks_err err = {{0}};
	struct tombstone tomb = {.deleted_at = keystore_now(), .until = TOMBSTONE_FOREVER};
	struct bytes rec = {0};

	log_reset();
	c = open_cache(&t, &cfg);
	k = store_key(&t, "shared");
	CHECK_EQ_INT(ks_cache_get(c, "shared", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	strcpy(tomb.deleted_by, "other-server");
	CHECK_EQ_INT(tombstone_encode(&tomb, &rec), 0);
	CHECK_EQ_INT(keystore_remove(t.inner, "shared", &rec, &err), KS_OK);
	bytes_free(&rec);
	CHECK(wait_entries(c, 0, 3000));
	CHECK_EQ_INT(ks_cache_get(c, "shared", 0, &ref, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(ks_cache_get(c, "shared", 0, &ref, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(log_count("key 'shared', which this server had cached (created "), 1);
	CHECK_EQ_INT(log_count("is gone from the keystore: deleted at "), 1);
	CHECK_EQ_INT(log_count("by other-server"), 1);
	/* A tombstone that says nothing about who or when: also said. */
	key_free(k);
	k = store_key(&t, "plain");
	CHECK_EQ_INT(ks_cache_get(c, "plain", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	CHECK_EQ_INT(keystore_remove(t.inner, "plain", &TOMB, &err), KS_OK);
	CHECK(wait_entries(c, 0, 3000));
	CHECK_EQ_INT(ks_cache_get(c, "plain", 0, &ref, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(log_count("key 'plain', which this server had cached"), 1);
	key_free(k);
	ks_cache_free(c);
	keystore_set_log(NULL);
}

/* The worst case: the name was bound to a new key behind this server's back. Said once, loudly,
 * without key material; the keystore's key is served. A key that is unchanged is no news. */
static void test_ghost_changed(void)
{
	struct ks_cache_config cfg = {.expiry_any_ms = 150};
	struct test_store t;
	struct ks_cache *c;
	struct secret_key *k, *k2;
	struct key_ref ref;
	struct ks_err err = {{0}};
	struct tombstone tomb = {.deleted_at = 1, .until = 2}; /* expired at once */
	struct bytes rec = {0};
	char hex[2 * KEY_SIZE + 1];

	log_reset();
	c = open_cache(&t, &cfg);
	k = store_key(&t, "rebound");
	CHECK_EQ_INT(ks_cache_get(c, "rebound", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	CHECK_EQ_INT(tombstone_encode(&tomb, &rec), 0);
	CHECK_EQ_INT(keystore_remove(t.inner, "rebound", &rec, &err), KS_OK);
	bytes_free(&rec);
	k2 = store_key(&t, "rebound"); /* over the expired tombstone */
	CHECK(k2 != NULL);
	CHECK(wait_entries(c, 0, 3000));
	CHECK_EQ_INT(ks_cache_get(c, "rebound", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k2));
	key_ref_release(&ref);
	CHECK_EQ_INT(log_count("key 'rebound' CHANGED in the keystore"), 1);
	CHECK_EQ_INT(log_count("by test-identity"), 2); /* the old and the new creator */
	hex_encode(hex, k->key, 8);
	hex[16] = '\0';
	CHECK_EQ_INT(log_count(hex), 0);

	/* Expired and read again unchanged: nothing to say. */
	CHECK(wait_entries(c, 0, 3000));
	CHECK_EQ_INT(ks_cache_get(c, "rebound", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	CHECK_EQ_INT(log_count("CHANGED"), 1);
	/* What this server deletes itself is no news either. */
	CHECK_EQ_INT(ks_cache_remove(c, "rebound", NULL, &err), KS_OK);
	CHECK_EQ_INT(ks_cache_get(c, "rebound", 0, &ref, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(log_count("gone from the keystore"), 0);
	key_free(k);
	key_free(k2);
	ks_cache_free(c);
	keystore_set_log(NULL);
}

/*
 * The bound a delete relies on: a key is not served past expiry.any after it was loaded,
 * also when the sweep that would drop it was held back while the store was offline (the
 * offline expiry lets it live longer only while offline).
 */
static void test_age_bound_after_offline(void)
{
	struct ks_cache_config cfg = {
	    .expiry_any_ms = 300, .expiry_offline_ms = 100000, .status_interval_ms = 20};
	struct test_store t;
	struct ks_cache *c = open_cache(&t, &cfg);
	struct secret_key *k = store_key(&t, "k");
	struct key_ref ref;
	struct ks_err err = {{0}};

	atomic_store(&t.status_fails, true);
	CHECK(wait_offline(c, true, 3000));
	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
	key_ref_release(&ref);
	sleep_ms(600); /* twice expiry.any: held while offline */
	CHECK_EQ_INT(ks_cache_get(c, "k", KS_CACHE_NONBLOCK, &ref, &err), KS_OK);
	key_ref_release(&ref);
	atomic_store(&t.status_fails, false);
	CHECK(wait_offline(c, false, 3000));
	/* Online again: too old to serve, whether or not a sweep ran yet. */
	CHECK_EQ_INT(ks_cache_get(c, "k", KS_CACHE_NONBLOCK, &ref, &err), KS_WOULD_BLOCK);
	CHECK_EQ_INT(ks_cache_get(c, "k", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, k));
	key_ref_release(&ref);
	key_free(k);
	ks_cache_free(c);
}

/* List leaves out names that hold a tombstone, reading each uncached name once. */
static void test_list_skips_tombstones(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL);
	struct secret_key *a = store_key(&t, "a1"), *b = store_key(&t, "a2"),
	                  *d = store_key(&t, "a3");
	struct name_list l = {0};
	struct key_ref ref;
	struct ks_err err = {{0}};

	CHECK_EQ_INT(ks_cache_get(c, "a3", 0, &ref, &err), KS_OK); /* cached: not read again */
	key_ref_release(&ref);
	CHECK_EQ_INT(keystore_remove(t.inner, "a2", &TOMB, &err), KS_OK);
	atomic_store(&t.gets, 0);
	CHECK_EQ_INT(ks_cache_list(c, "a", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 2);
	if (l.count == 2) {
		CHECK_EQ_STR(l.names[0], "a1");
		CHECK_EQ_STR(l.names[1], "a3");
	}
	CHECK_EQ_INT(atomic_load(&t.gets), 2);
	name_list_free(&l);
	/* A list is no use: "a1" was read, not cached. */
	CHECK_EQ_INT(stats_of(c).entries, 1);
	key_free(a);
	key_free(b);
	key_free(d);
	ks_cache_free(c);
}

/* cache.max_keys (a tenant's limit): a full cache serves keys without keeping them, and never
 * drops the keys it holds for new ones (issue 15: one tenant cannot evict another's keys, and
 * its own hot keys are not pushed out by a scan). */
static void test_max_keys(void)
{
	struct test_store t;
	struct ks_cache_config cfg = {.expiry_any_ms = 60000, .max_keys = 2};
	struct ks_cache *c = open_cache(&t, &cfg);
	struct secret_key *k[4];
	char name[8];
	struct key_ref ref;
	struct ks_err err = {{0}};

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		k[i] = store_key(&t, name);
	}
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 4; i++) {
			snprintf(name, sizeof(name), "k%d", i);
			CHECK_EQ_INT(ks_cache_get(c, name, 0, &ref, &err), KS_OK);
			CHECK(same_key(ref.key, k[i]));
			key_ref_release(&ref);
		}
	}
	/* k0 and k1 were kept and hit the second time; k2 and k3 were read twice */
	CHECK_EQ_INT(stats_of(c).entries, 2);
	CHECK_EQ_INT(stats_of(c).hits, 2);
	CHECK_EQ_INT(atomic_load(&t.gets), 6);
	CHECK_EQ_INT(ks_cache_get(c, "k2", KS_CACHE_NONBLOCK, &ref, &err), KS_WOULD_BLOCK);
	/* a create while full is stored, and read back on the next get */
	struct secret_key *n = NULL;
	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, "id", &n), 0);
	CHECK_EQ_INT(ks_cache_create(c, "new", n, &err), KS_OK);
	CHECK_EQ_INT(stats_of(c).entries, 2);
	CHECK_EQ_INT(ks_cache_get(c, "new", 0, &ref, &err), KS_OK);
	CHECK(same_key(ref.key, n));
	key_ref_release(&ref);
	key_free(n);
	for (int i = 0; i < 4; i++)
		key_free(k[i]);
	ks_cache_free(c);
}

static void test_free_is_prompt(void)
{
	struct test_store t;
	struct ks_cache *c = open_cache(&t, NULL); /* status probe every 10 s */
	int64_t start;

	sleep_ms(20);
	start = now_ms();
	ks_cache_free(c);
	CHECK(now_ms() - start < 1000);
}

int main(void)
{
	RUN(test_hit_and_miss);
	RUN(test_max_keys);
	RUN(test_single_flight);
	RUN(test_nonblock);
	RUN(test_create);
	RUN(test_remove);
	RUN(test_create_racing_remove);
	RUN(test_get_racing_remove);
	RUN(test_get_after_remove_does_not_join_older_read);
	RUN(test_list_passes_through);
	RUN(test_malformed_record);
	RUN(test_expiry_any);
	RUN(test_expiry_unused);
	RUN(test_offline);
	RUN(test_offline_expiry);
	RUN(test_offline_recovery_is_prompt);
	RUN(test_kes_directory);
	RUN(test_tombstone_lifetime);
	RUN(test_remove_writes_tombstone);
	RUN(test_ghost_gone);
	RUN(test_ghost_changed);
	RUN(test_age_bound_after_offline);
	RUN(test_list_skips_tombstones);
	RUN(test_free_is_prompt);
	return CHECK_DONE();
}
