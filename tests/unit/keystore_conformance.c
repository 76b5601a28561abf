/*
 * keystore_conformance.c — see keystore_conformance.h. Each case opens a fresh store through
 * the caller's callback, so cases do not see each other's keys.
 */
#include "tests/unit/keystore_conformance.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/tombstone.h"
#include "tests/unit/check.h"

#define RACE_THREADS      8
#define RACE_ROUNDS       20
#define SPREAD_PER_THREAD 25

static const struct keystore_conformance *conf;

static struct keystore *case_open(void)
{
	struct keystore *ks = conf->open_store(conf->arg);

	CHECK(ks != NULL);
	return ks;
}

static void case_close(struct keystore *ks)
{
	keystore_close(ks);
	if (conf->after_close)
		conf->after_close(conf->arg);
}

/* Deterministic bytes covering every value, different per seed. */
static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)(i < 256 ? i : x);
	}
}

static int create_str(struct keystore *ks, const char *name, const char *record)
{
	struct bytes r = {(uint8_t *)record, strlen(record)};
	struct ks_err err = {{0}};

	return keystore_create(ks, name, &r, &err);
}

/* A tombstone record that expires `in` seconds from now (negative: expired already). */
static struct bytes make_tombstone(int64_t in)
{
	struct tombstone t = {.deleted_at = keystore_now(), .until = keystore_now() + in};
	struct bytes rec = {0};

	strcpy(t.deleted_by, "conformance");
	CHECK_EQ_INT(tombstone_encode(&t, &rec), 0);
	return rec;
}

/* Removes name, leaving a tombstone that expires `in` seconds from now. */
static int remove_for(struct keystore *ks, const char *name, int64_t in)
{
	struct bytes tomb = make_tombstone(in);
	struct ks_err err = {{0}};
	int rc = keystore_remove(ks, name, &tomb, &err);

	bytes_free(&tomb);
	return rc;
}

/* What the store holds under name, as it holds it (a key's record or a tombstone). */
static int get_raw(struct keystore *ks, const char *name, struct bytes *out)
{
	struct ks_err err = {{0}};

	return ks->ops->get(ks->self, name, out, &err);
}

static bool holds_tombstone(struct keystore *ks, const char *name)
{
	struct bytes got = {0};
	struct tombstone t;
	bool is = get_raw(ks, name, &got) == KS_OK && tombstone_parse(got.data, got.len, &t);

	bytes_free(&got);
	return is;
}

/* Checks that name holds exactly want/len. */
static void check_record(struct keystore *ks, const char *name, const void *want, size_t len)
{
	struct bytes got = {0};
	struct ks_err err = {{0}};
	int rc = keystore_get(ks, name, &got, &err);

	CHECK_EQ_INT(rc, KS_OK);
	if (rc != KS_OK) {
		fprintf(stderr, "  get %s: %s\n", name, err.msg);
		return;
	}
	CHECK_EQ_INT(got.len, len);
	if (got.len == len)
		CHECK_MEM(got.data, want, len);
	bytes_free(&got);
}

/* Checks that the keys list(prefix) names are exactly the n names in want (already sorted).
 * Listed names that hold a tombstone are left out, as ks_cache_list leaves them out. */
static void check_list(struct keystore *ks, const char *prefix, const char *const *want, size_t n)
{
	struct name_list l = {0};
	struct ks_err err = {{0}};
	size_t keys = 0;

	CHECK_EQ_INT(keystore_list(ks, prefix, &l, &err), KS_OK);
	for (size_t i = 1; i < l.count; i++)
		CHECK(strcmp(l.names[i - 1], l.names[i]) < 0);
	for (size_t i = 0; i < l.count; i++) {
		if (holds_tombstone(ks, l.names[i]))
			continue;
		if (keys < n)
			CHECK_EQ_STR(l.names[i], want[keys]);
		keys++;
	}
	CHECK_EQ_INT(keys, n);
	name_list_free(&l);
}

static void conformance_round_trip(void)
{
	struct keystore *ks = case_open();
	const char *text = "CiAKBmt5LWtleRIg";
	size_t big_len = conf->max_record ? conf->max_record : KS_MAX_RECORD;
	struct bytes bin = {0}, big = {0};
	struct ks_err err = {{0}};

	if (!ks)
		return;
	CHECK_EQ_INT(create_str(ks, "text-key", text), KS_OK);
	check_record(ks, "text-key", text, strlen(text));

	/* Every byte value, NULs included: stores must not treat records as strings. */
	bin.data = malloc(300);
	bin.len = 300;
	fill_pattern(bin.data, bin.len, 7);
	CHECK_EQ_INT(keystore_create(ks, "binary_key", &bin, &err), KS_OK);
	check_record(ks, "binary_key", bin.data, bin.len);

	big.data = malloc(big_len);
	big.len = big_len;
	fill_pattern(big.data, big.len, 9);
	CHECK_EQ_INT(keystore_create(ks, "big-key", &big, &err), KS_OK);
	check_record(ks, "big-key", big.data, big.len);

	free(bin.data);
	free(big.data);
	case_close(ks);
}

static void conformance_never_overwrites(void)
{
	struct keystore *ks = case_open();

	if (!ks)
		return;
	CHECK_EQ_INT(create_str(ks, "k1", "original"), KS_OK);
	CHECK_EQ_INT(create_str(ks, "k1", "replacement"), KS_EXISTS);
	CHECK_EQ_INT(create_str(ks, "k1", "original"), KS_EXISTS);
	check_record(ks, "k1", "original", 8);
	case_close(ks);
}

static void conformance_not_found(void)
{
	struct keystore *ks = case_open();
	struct bytes got = {0};
	struct ks_err err = {{0}};

	if (!ks)
		return;
	CHECK_EQ_INT(keystore_get(ks, "missing", &got, &err), KS_NOT_FOUND);
	CHECK(got.data == NULL);
	if (conf->remove_reports_not_found)
		CHECK_EQ_INT(remove_for(ks, "missing", 60), KS_NOT_FOUND);

	CHECK_EQ_INT(create_str(ks, "gone", "v1"), KS_OK);
	CHECK_EQ_INT(remove_for(ks, "gone", 3600), KS_OK);
	CHECK_EQ_INT(keystore_get(ks, "gone", &got, &err), KS_NOT_FOUND);
	CHECK(got.data == NULL);
	CHECK(strstr(err.msg, "deleted at ") != NULL);
	CHECK(strstr(err.msg, "by conformance") != NULL);
	/* A tombstone is no key: removing it again finds nothing to remove. */
	CHECK_EQ_INT(remove_for(ks, "gone", 7200), KS_NOT_FOUND);
	/* The name stays reserved until the tombstone expires. */
	CHECK_EQ_INT(create_str(ks, "gone", "v2"), KS_DELETED);
	CHECK(holds_tombstone(ks, "gone"));

	/* Expired: the name is free again (Vault K/V v1: only by hand). */
	CHECK_EQ_INT(create_str(ks, "old", "v1"), KS_OK);
	CHECK_EQ_INT(remove_for(ks, "old", -1), KS_OK);
	CHECK_EQ_INT(keystore_get(ks, "old", &got, &err), KS_NOT_FOUND);
	if (conf->refuses_expired_tombstones) {
		CHECK_EQ_INT(create_str(ks, "old", "v2"), KS_DELETED);
		CHECK(holds_tombstone(ks, "old"));
	} else {
		CHECK_EQ_INT(create_str(ks, "old", "v2"), KS_OK);
		check_record(ks, "old", "v2", 2);
		CHECK_EQ_INT(create_str(ks, "old", "v3"), KS_EXISTS);
		/* And the new key is deleted like any other. */
		CHECK_EQ_INT(remove_for(ks, "old", 3600), KS_OK);
		CHECK(holds_tombstone(ks, "old"));
	}
	case_close(ks);
}

/* What a remove leaves, exactly; what counts as a key. */
static void conformance_tombstone_record(void)
{
	struct keystore *ks = case_open();
	struct bytes tomb = make_tombstone(60), got = {0};
	struct name_list l = {0};
	struct ks_err err = {{0}};

	if (!ks) {
		bytes_free(&tomb);
		return;
	}
	CHECK_EQ_INT(create_str(ks, "doomed", "a-record"), KS_OK);
	CHECK_EQ_INT(keystore_remove(ks, "doomed", &tomb, &err), KS_OK);
	CHECK_EQ_INT(get_raw(ks, "doomed", &got), KS_OK);
	CHECK_EQ_INT(got.len, tomb.len);
	if (got.len == tomb.len)
		CHECK_MEM(got.data, tomb.data, tomb.len);
	bytes_free(&got);
	/* A record that is no key KES or kesc can read is still deleted like a key. */
	CHECK_EQ_INT(create_str(ks, "junk", "{\"not\":\"a key\"}"), KS_OK);
	CHECK_EQ_INT(keystore_remove(ks, "junk", &tomb, &err), KS_OK);
	CHECK(holds_tombstone(ks, "junk"));
	/* The store's own list still names them; telling them apart takes a read. */
	CHECK_EQ_INT(keystore_list(ks, "", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 2);
	name_list_free(&l);
	bytes_free(&tomb);
	case_close(ks);
}

static void conformance_list(void)
{
	static const char *const add[] = {"b-1", "abc", "Z9", "a", "c_x", "ab", "b", "A"};
	static const char *const all[] = {"A", "Z9", "a", "ab", "abc", "b", "b-1", "c_x"};
	static const char *const a[] = {"a", "ab", "abc"};
	static const char *const ab[] = {"ab", "abc"};
	static const char *const b[] = {"b", "b-1"};
	static const char *const a_after[] = {"a", "abc"};
	static const char *const rest[] = {"Z9", "a", "abc", "b", "b-1", "c_x"};
	struct keystore *ks = case_open();
	struct ks_err err = {{0}};

	if (!ks)
		return;
	check_list(ks, "", NULL, 0);
	for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++)
		CHECK_EQ_INT(create_str(ks, add[i], add[i]), KS_OK);
	check_list(ks, "", all, 8);
	check_list(ks, "a", a, 3);
	check_list(ks, "ab", ab, 2);
	check_list(ks, "abc", ab + 1, 1);
	check_list(ks, "b", b, 2);
	check_list(ks, "abcd", NULL, 0);
	check_list(ks, "x", NULL, 0);
	CHECK_EQ_INT(remove_for(ks, "ab", 3600), KS_OK);
	check_list(ks, "a", a_after, 2);
	CHECK_EQ_INT(remove_for(ks, "A", 3600), KS_OK);
	check_list(ks, "", rest, 6);
	(void)err;
	case_close(ks);
}

static void conformance_list_many(void)
{
	struct keystore *ks = case_open();
	struct name_list l = {0};
	struct ks_err err = {{0}};
	char name[32];

	if (!ks)
		return;
	/* Created in an order unrelated to byte order. */
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "key-%d", (i * 7919) % 300);
		CHECK_EQ_INT(create_str(ks, name, name), KS_OK);
	}
	CHECK_EQ_INT(keystore_list(ks, "", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 300);
	for (size_t i = 1; i < l.count; i++)
		CHECK(strcmp(l.names[i - 1], l.names[i]) < 0);
	name_list_free(&l);
	CHECK_EQ_INT(keystore_list(ks, "key-29", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 11); /* key-29 and key-290..299 */
	name_list_free(&l);
	case_close(ks);
}

struct race {
	struct keystore *ks;
	pthread_barrier_t *start;
	const char *name;
	int id;
	int rc;
	char record[32];
};

static void *race_create(void *arg)
{
	struct race *r = arg;
	struct bytes rec = {(uint8_t *)r->record, strlen(r->record)};
	struct ks_err err = {{0}};

	pthread_barrier_wait(r->start);
	r->rc = keystore_create(r->ks, r->name, &rec, &err);
	return NULL;
}

static void race_round(struct keystore *ks, const char *name)
{
	struct race r[RACE_THREADS];
	pthread_t t[RACE_THREADS];
	pthread_barrier_t start;
	int ok = 0, exists = 0, winner = -1;

	pthread_barrier_init(&start, NULL, RACE_THREADS);
	for (int i = 0; i < RACE_THREADS; i++) {
		r[i] = (struct race){.ks = ks, .start = &start, .name = name, .id = i};
		snprintf(r[i].record, sizeof(r[i].record), "record-of-thread-%d", i);
		CHECK(pthread_create(&t[i], NULL, race_create, &r[i]) == 0);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(t[i], NULL);
		if (r[i].rc == KS_OK) {
			ok++;
			winner = i;
		} else if (r[i].rc == KS_EXISTS) {
			exists++;
		}
	}
	pthread_barrier_destroy(&start);
	CHECK_EQ_INT(ok, 1);
	CHECK_EQ_INT(exists, RACE_THREADS - 1);
	if (winner >= 0)
		check_record(ks, name, r[winner].record, strlen(r[winner].record));
}

/* Creates over one expired tombstone at once: exactly one takes the name. */
static void conformance_race_over_tombstone(void)
{
	struct keystore *ks = case_open();
	char name[32];

	if (!ks)
		return;
	for (int round = 0; round < RACE_ROUNDS / 2; round++) {
		snprintf(name, sizeof(name), "reborn-%d", round);
		CHECK_EQ_INT(create_str(ks, name, "first"), KS_OK);
		CHECK_EQ_INT(remove_for(ks, name, -1), KS_OK);
		if (conf->refuses_expired_tombstones)
			CHECK_EQ_INT(create_str(ks, name, "second"), KS_DELETED);
		else
			race_round(ks, name);
	}
	case_close(ks);
}

struct remover {
	struct keystore *ks;
	pthread_barrier_t *start;
	const char *name;
	int rc;
};

static void *race_remove(void *arg)
{
	struct remover *r = arg;

	pthread_barrier_wait(r->start);
	r->rc = remove_for(r->ks, r->name, 3600);
	return NULL;
}

/* Removes of one key at once: exactly one removes it, the others find nothing. */
static void conformance_race_remove(void)
{
	struct keystore *ks = case_open();
	struct remover r[RACE_THREADS];
	pthread_t t[RACE_THREADS];
	pthread_barrier_t start;
	char name[32];

	if (!ks)
		return;
	for (int round = 0; round < RACE_ROUNDS / 2; round++) {
		int ok = 0, not_found = 0;

		snprintf(name, sizeof(name), "removed-%d", round);
		CHECK_EQ_INT(create_str(ks, name, name), KS_OK);
		pthread_barrier_init(&start, NULL, RACE_THREADS);
		for (int i = 0; i < RACE_THREADS; i++) {
			r[i] = (struct remover){.ks = ks, .start = &start, .name = name};
			CHECK(pthread_create(&t[i], NULL, race_remove, &r[i]) == 0);
		}
		for (int i = 0; i < RACE_THREADS; i++) {
			pthread_join(t[i], NULL);
			ok += r[i].rc == KS_OK;
			not_found += r[i].rc == KS_NOT_FOUND;
		}
		pthread_barrier_destroy(&start);
		CHECK_EQ_INT(ok, 1);
		CHECK_EQ_INT(not_found, RACE_THREADS - 1);
		CHECK(holds_tombstone(ks, name));
	}
	case_close(ks);
}

struct watcher {
	struct keystore *ks;
	const char *name;
	volatile int *done;
	int gaps, reads;
};

/* Reads name as the store holds it until done: a key or a tombstone, never nothing. */
static void *watch_name(void *arg)
{
	struct watcher *w = arg;

	while (!__atomic_load_n(w->done, __ATOMIC_ACQUIRE)) {
		struct bytes got = {0};
		int rc = get_raw(w->ks, w->name, &got);

		bytes_free(&got);
		w->reads++;
		if (rc != KS_OK)
			w->gaps++;
	}
	return NULL;
}

/* A remove replaces the key by its tombstone in one step. */
static void conformance_remove_leaves_no_gap(void)
{
	struct keystore *ks = case_open();
	int gaps = 0;

	if (!ks)
		return;
	for (int i = 0; i < 20; i++) {
		char name[32];
		volatile int done = 0;
		pthread_t t;

		snprintf(name, sizeof(name), "watched-%d", i);
		CHECK_EQ_INT(create_str(ks, name, name), KS_OK);
		struct watcher w = {.ks = ks, .name = name, .done = &done};
		CHECK(pthread_create(&t, NULL, watch_name, &w) == 0);
		while (__atomic_load_n(&w.reads, __ATOMIC_RELAXED) < 2)
			sched_yield();
		CHECK_EQ_INT(remove_for(ks, name, 3600), KS_OK);
		__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		gaps += w.gaps;
	}
	if (!conf->remove_leaves_gap)
		CHECK_EQ_INT(gaps, 0);
	case_close(ks);
}

static void conformance_race_same_name(void)
{
	struct keystore *ks = case_open();
	char name[32];

	if (!ks)
		return;
	for (int round = 0; round < RACE_ROUNDS; round++) {
		snprintf(name, sizeof(name), "race-%d", round);
		race_round(ks, name);
	}
	case_close(ks);
}

struct spread {
	struct keystore *ks;
	int thread;
	int failures;
};

static void *spread_create(void *arg)
{
	struct spread *s = arg;
	char name[32];

	for (int i = 0; i < SPREAD_PER_THREAD; i++) {
		snprintf(name, sizeof(name), "t%d-k%d", s->thread, i);
		if (create_str(s->ks, name, name) != KS_OK)
			s->failures++;
	}
	return NULL;
}

static void conformance_concurrent_names(void)
{
	struct keystore *ks = case_open();
	struct spread s[RACE_THREADS];
	pthread_t t[RACE_THREADS];
	struct name_list l = {0};
	struct ks_err err = {{0}};
	char name[32];

	if (!ks)
		return;
	for (int i = 0; i < RACE_THREADS; i++) {
		s[i] = (struct spread){.ks = ks, .thread = i};
		CHECK(pthread_create(&t[i], NULL, spread_create, &s[i]) == 0);
	}
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(s[i].failures, 0);
	}
	CHECK_EQ_INT(keystore_list(ks, "", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, RACE_THREADS * SPREAD_PER_THREAD);
	name_list_free(&l);
	for (int i = 0; i < RACE_THREADS; i++) {
		snprintf(name, sizeof(name), "t%d-k%d", i, SPREAD_PER_THREAD - 1);
		check_record(ks, name, name, strlen(name));
	}
	case_close(ks);
}

struct reader {
	struct keystore *ks;
	const uint8_t *want;
	size_t len;
	int names;
	volatile int *done;
	int torn;
	int seen;
};

/* Reads the names the writer is creating: each read must be absent or whole, never partial. */
static void *reader_loop(void *arg)
{
	struct reader *rd = arg;
	char name[32];

	while (!__atomic_load_n(rd->done, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < rd->names; i++) {
			struct bytes got = {0};
			struct ks_err err = {{0}};
			int rc;

			snprintf(name, sizeof(name), "whole-%d", i);
			rc = keystore_get(rd->ks, name, &got, &err);
			if (rc == KS_OK) {
				rd->seen++;
				if (got.len != rd->len || memcmp(got.data, rd->want, rd->len) != 0)
					rd->torn++;
			} else if (rc != KS_NOT_FOUND) {
				rd->torn++;
			}
			bytes_free(&got);
		}
	}
	return NULL;
}

static void conformance_reads_see_whole_records(void)
{
	struct keystore *ks = case_open();
	struct bytes rec = {0};
	struct ks_err err = {{0}};
	volatile int done = 0;
	struct reader rd;
	pthread_t t;
	char name[32];

	if (!ks)
		return;
	rec.len = 64 * 1024;
	rec.data = malloc(rec.len);
	fill_pattern(rec.data, rec.len, 3);
	rd =
	    (struct reader){.ks = ks, .want = rec.data, .len = rec.len, .names = 40, .done = &done};
	CHECK(pthread_create(&t, NULL, reader_loop, &rd) == 0);
	for (int i = 0; i < rd.names; i++) {
		snprintf(name, sizeof(name), "whole-%d", i);
		CHECK_EQ_INT(keystore_create(ks, name, &rec, &err), KS_OK);
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	CHECK_EQ_INT(rd.torn, 0);
	free(rec.data);
	case_close(ks);
}

static int replace_str(struct keystore *ks, const char *name, const char *expected,
                       const char *record)
{
	struct bytes e = {(uint8_t *)expected, strlen(expected)};
	struct bytes r = {(uint8_t *)record, strlen(record)};
	struct ks_err err = {{0}};

	return keystore_replace(ks, name, &e, &r, &err);
}

/* A replace lands only on the record it expects, and a tombstone can be replaced (restore). */
static void conformance_replace(void)
{
	struct keystore *ks = case_open();
	struct bytes tomb = {0}, got = {0};
	struct ks_err err = {{0}};

	if (!ks)
		return;
	CHECK_EQ_INT(create_str(ks, "turn", "first"), KS_OK);
	if (conf->refuses_replace) {
		CHECK_EQ_INT(replace_str(ks, "turn", "first", "second"), KS_FAILED);
		check_record(ks, "turn", "first", 5);
		case_close(ks);
		return;
	}
	CHECK_EQ_INT(replace_str(ks, "turn", "first", "second"), KS_OK);
	check_record(ks, "turn", "second", 6);
	CHECK_EQ_INT(replace_str(ks, "turn", "first", "third"), KS_EXISTS);
	check_record(ks, "turn", "second", 6);
	CHECK_EQ_INT(replace_str(ks, "absent", "first", "third"), KS_NOT_FOUND);
	CHECK_EQ_INT(get_raw(ks, "absent", &got), KS_NOT_FOUND);
	/* a key becomes a tombstone and back */
	tomb = make_tombstone(3600);
	struct bytes cur = {(uint8_t *)"second", 6};
	CHECK_EQ_INT(keystore_replace(ks, "turn", &cur, &tomb, &err), KS_OK);
	CHECK(holds_tombstone(ks, "turn"));
	CHECK_EQ_INT(keystore_get(ks, "turn", &got, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(keystore_replace(ks, "turn", &tomb, &cur, &err), KS_OK);
	check_record(ks, "turn", "second", 6);
	bytes_free(&tomb);
	case_close(ks);
}

struct appender {
	struct keystore *ks;
	pthread_barrier_t *start;
	const char *name;
	int id, attempts, rc;
};

/* Read, append " t<id>", replace; again when another writer came first. */
static void *append_loop(void *arg)
{
	struct appender *a = arg;

	pthread_barrier_wait(a->start);
	for (a->attempts = 0; a->attempts < 1000; a->attempts++) {
		struct bytes cur = {0}, next = {0};
		struct ks_err err = {{0}};
		char tail[16];

		if ((a->rc = get_raw(a->ks, a->name, &cur)) != KS_OK)
			return NULL;
		snprintf(tail, sizeof(tail), " t%d", a->id);
		next.len = cur.len + strlen(tail);
		next.data = malloc(next.len + 1);
		memcpy(next.data, cur.data, cur.len);
		memcpy(next.data + cur.len, tail, strlen(tail) + 1);
		a->rc = keystore_replace(a->ks, a->name, &cur, &next, &err);
		bytes_free(&cur);
		bytes_free(&next);
		if (a->rc != KS_EXISTS)
			return NULL;
	}
	return NULL;
}

/* Read-modify-writes of one record at once (two servers rotating a key): none is lost. */
static void conformance_race_replace(void)
{
	struct keystore *ks = case_open();
	struct appender a[RACE_THREADS];
	pthread_t t[RACE_THREADS];
	pthread_barrier_t start;
	char name[32];

	if (!ks)
		return;
	if (conf->refuses_replace) {
		case_close(ks);
		return;
	}
	for (int round = 0; round < RACE_ROUNDS / 4; round++) {
		struct bytes got = {0};

		snprintf(name, sizeof(name), "appended-%d", round);
		CHECK_EQ_INT(create_str(ks, name, "base"), KS_OK);
		pthread_barrier_init(&start, NULL, RACE_THREADS);
		for (int i = 0; i < RACE_THREADS; i++) {
			a[i] = (struct appender){.ks = ks, .start = &start, .name = name, .id = i};
			CHECK(pthread_create(&t[i], NULL, append_loop, &a[i]) == 0);
		}
		for (int i = 0; i < RACE_THREADS; i++) {
			pthread_join(t[i], NULL);
			CHECK_EQ_INT(a[i].rc, KS_OK);
		}
		pthread_barrier_destroy(&start);
		CHECK_EQ_INT(get_raw(ks, name, &got), KS_OK);
		for (int i = 0; i < RACE_THREADS && got.data; i++) {
			char tail[16];

			snprintf(tail, sizeof(tail), " t%d", i);
			CHECK(strstr((const char *)got.data, tail) != NULL);
		}
		CHECK_EQ_INT(got.len, 4 + 3 * RACE_THREADS);
		bytes_free(&got);
	}
	case_close(ks);
}

/* A reader sees the old record or the new one while replaces go on, never nothing. */
static void conformance_replace_leaves_no_gap(void)
{
	struct keystore *ks = case_open();
	volatile int done = 0;
	pthread_t t;

	if (!ks)
		return;
	if (conf->refuses_replace) {
		case_close(ks);
		return;
	}
	CHECK_EQ_INT(create_str(ks, "flipped", "r0"), KS_OK);
	struct watcher w = {.ks = ks, .name = "flipped", .done = &done};
	CHECK(pthread_create(&t, NULL, watch_name, &w) == 0);
	for (int i = 0; i < 30; i++) {
		char cur[16], next[16];

		snprintf(cur, sizeof(cur), "r%d", i);
		snprintf(next, sizeof(next), "r%d", i + 1);
		CHECK_EQ_INT(replace_str(ks, "flipped", cur, next), KS_OK);
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	CHECK_EQ_INT(w.gaps, 0);
	check_record(ks, "flipped", "r30", 3);
	case_close(ks);
}

static void conformance_status(void)
{
	struct keystore *ks = case_open();
	struct ks_status st = {-1};
	struct ks_err err = {{0}};

	if (!ks)
		return;
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	CHECK(st.latency_us >= 0);
	CHECK(ks->ops->name != NULL && ks->ops->name[0] != '\0');
	case_close(ks);
}

#define CONFORMANCE_CASE(fn)                                                                \
	do {                                                                                \
		int before_ = check_failures;                                               \
		fn();                                                                       \
		fprintf(stderr, "%s %s: %s\n", check_failures == before_ ? "ok  " : "FAIL", \
		        c->label, #fn);                                                     \
	} while (0)

int keystore_conformance_run(const struct keystore_conformance *c)
{
	int before = check_failures;

	conf = c;
	CONFORMANCE_CASE(conformance_round_trip);
	CONFORMANCE_CASE(conformance_never_overwrites);
	CONFORMANCE_CASE(conformance_not_found);
	CONFORMANCE_CASE(conformance_tombstone_record);
	CONFORMANCE_CASE(conformance_list);
	CONFORMANCE_CASE(conformance_list_many);
	CONFORMANCE_CASE(conformance_race_same_name);
	CONFORMANCE_CASE(conformance_race_over_tombstone);
	CONFORMANCE_CASE(conformance_race_remove);
	CONFORMANCE_CASE(conformance_remove_leaves_no_gap);
	CONFORMANCE_CASE(conformance_concurrent_names);
	CONFORMANCE_CASE(conformance_reads_see_whole_records);
	CONFORMANCE_CASE(conformance_replace);
	CONFORMANCE_CASE(conformance_race_replace);
	CONFORMANCE_CASE(conformance_replace_leaves_no_gap);
	CONFORMANCE_CASE(conformance_status);
	conf = NULL;
	return check_failures - before;
}
