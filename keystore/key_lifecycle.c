/*
 * key_lifecycle.c — rotate, retire, schedule a deletion, restore, purge (key_lifecycle.h): the
 * decision and the new record, made from the record the store holds now; ks_cache_update does
 * the write and starts over when another writer came first.
 */
#include "keystore/key_lifecycle.h"

#include <stdio.h>
#include <string.h>

#include "keystore/key_versions.h"
#include "keystore/tombstone.h"

/* The state of a name for a change that needs a key: KS_OK and v filled, or why not. */
static int read_key(const struct bytes *cur, struct key_versions *v, struct ks_err *err)
{
	struct tombstone t;
	char what[256];

	if (!cur) {
		ks_err_set(err, "no key under that name");
		return KS_NOT_FOUND;
	}
	if (tombstone_parse(cur->data, cur->len, &t)) {
		tombstone_describe(&t, what, sizeof(what));
		ks_err_set(err, "%s", what);
		return KS_NOT_FOUND;
	}
	if (key_versions_read(cur->data, cur->len, v) != 0) {
		ks_err_set(err, "the stored record is not a key kesc can change (%zu bytes)",
		           cur->len);
		return KS_FAILED;
	}
	return KS_OK;
}

/* Unix second until which a delete at `at` reserves the name (cache.h). */
static int64_t reserved_until(const struct ks_cache *c, int64_t at)
{
	int64_t life = ks_cache_tombstone_lifetime_ms(ks_cache_settings(c));

	return life < 0 ? TOMBSTONE_FOREVER : at + 1 + (life + 999) / 1000;
}

/* ---- rotate ---- */

struct rotate_arg {
	const char *by;
	int64_t older_than_s, now;
	bool rotated;
	uint32_t version;
};

static int rotate_fn(void *arg, const struct bytes *cur, struct bytes *next, struct ks_err *err)
{
	struct rotate_arg *a = arg;
	struct key_versions v;
	int rc = read_key(cur, &v, err);

	a->rotated = false;
	if (rc != KS_OK)
		return rc;
	a->version = v.count;
	if (a->older_than_s > 0 &&
	    key_versions_created_at(&v, v.count) > a->now - a->older_than_s) {
		key_versions_free(&v);
		return KS_OK; /* young enough (rotated by someone else meanwhile, perhaps) */
	}
	rc = key_versions_rotate(&v, a->by);
	if (rc == 0)
		rc = key_versions_write(&v, next);
	if (rc == 0) {
		a->rotated = true;
		a->version = v.count;
	}
	key_versions_free(&v);
	if (rc == KEY_ERR_TOO_MANY) {
		ks_err_set(err, "the key has %d versions, the most a key can have",
		           KEY_VERSIONS_MAX);
		return KS_TOO_MANY;
	}
	if (rc != 0) {
		ks_err_set(err, "cannot make a new version (%d)", rc);
		return KS_FAILED;
	}
	return KS_OK;
}

int key_lifecycle_rotate(struct ks_cache *c, const char *name, const char *by, int64_t older_than_s,
                         int64_t now, bool *rotated, uint32_t *version, struct ks_err *err)
{
	struct rotate_arg a = {.by = by ? by : "", .older_than_s = older_than_s, .now = now};
	int rc = ks_cache_update(c, name, rotate_fn, &a, err);

	*rotated = rc == KS_OK && a.rotated;
	*version = a.version;
	return rc;
}

/* ---- retire ---- */

struct retire_arg {
	uint32_t min, count;
};

static int retire_fn(void *arg, const struct bytes *cur, struct bytes *next, struct ks_err *err)
{
	struct retire_arg *a = arg;
	struct key_versions v;
	int rc = read_key(cur, &v, err);

	if (rc != KS_OK)
		return rc;
	a->count = v.count;
	if (key_versions_retire(&v, a->min) != 0) {
		ks_err_set(err, "the key has versions v1 to v%u", v.count);
		rc = KS_NO_VERSION;
	} else if (key_versions_write(&v, next) != 0) {
		ks_err_set(err, "out of memory");
		rc = KS_FAILED;
	}
	key_versions_free(&v);
	return rc;
}

int key_lifecycle_retire(struct ks_cache *c, const char *name, uint32_t min, uint32_t *count,
                         struct ks_err *err)
{
	struct retire_arg a = {.min = min};
	int rc = ks_cache_update(c, name, retire_fn, &a, err);

	*count = a.count;
	return rc;
}

/* ---- schedule a deletion ---- */

struct schedule_arg {
	const struct ks_cache *c;
	const char *by;
	int64_t window_s, now;
};

static int schedule_fn(void *arg, const struct bytes *cur, struct bytes *next, struct ks_err *err)
{
	struct schedule_arg *a = arg;
	struct tombstone t = {.deleted_at = a->now};
	char what[256];

	if (!cur) {
		ks_err_set(err, "no key under that name");
		return KS_NOT_FOUND;
	}
	if (tombstone_parse(cur->data, cur->len, &t)) {
		tombstone_describe(&t, what, sizeof(what));
		ks_err_set(err, "already %s", what);
		return KS_NOT_FOUND;
	}
	/* Whatever is stored that is no tombstone is a key (keystore.h), also a record that does
	 * not parse: it is kept as it is, to be restored as it was. */
	t = (struct tombstone){.deleted_at = a->now, .restore_until = a->now + a->window_s};
	t.until = reserved_until(a->c, a->now);
	if (t.until != TOMBSTONE_FOREVER && t.until < t.restore_until)
		t.until = t.restore_until;
	snprintf(t.deleted_by, sizeof(t.deleted_by), "%s", a->by);
	if (tombstone_encode_with_key(&t, cur, next) == 0)
		return KS_OK;
	t.deleted_by[0] = '\0'; /* a name the record cannot carry: leave it out */
	if (tombstone_encode_with_key(&t, cur, next) == 0)
		return KS_OK;
	/* Not text: no key record kesc or KES writes. Keeping it in a tombstone would change
	 * it, and a delete must not lose what it promises to keep. */
	ks_err_set(err,
	           "the stored record (%zu bytes) is not text and cannot be kept for a restore; "
	           "it is left in place",
	           cur->len);
	return KS_FAILED;
}

int key_lifecycle_schedule_delete(struct ks_cache *c, const char *name, const char *by,
                                  int64_t window_s, int64_t now, struct ks_err *err)
{
	struct schedule_arg a = {.c = c, .by = by ? by : "", .window_s = window_s, .now = now};

	return ks_cache_update(c, name, schedule_fn, &a, err);
}

/* ---- restore ---- */

static int restore_fn(void *arg, const struct bytes *cur, struct bytes *next, struct ks_err *err)
{
	const int64_t *now = arg;
	struct tombstone t;
	char what[256];

	if (!cur) {
		ks_err_set(err, "no key under that name");
		return KS_NOT_FOUND;
	}
	if (!tombstone_parse(cur->data, cur->len, &t)) {
		ks_err_set(err, "the key is not deleted");
		return KS_EXISTS;
	}
	tombstone_describe(&t, what, sizeof(what));
	if (!tombstone_restorable(&t, *now) || tombstone_key(cur->data, cur->len, next) != 0) {
		ks_err_set(err, "it was %s%s", what,
		           t.restore_until > 0
		               ? "; its restore window is over"
		               : "; it was deleted without a restore window or purged");
		return KS_PURGED;
	}
	return KS_OK;
}

int key_lifecycle_restore(struct ks_cache *c, const char *name, int64_t now, struct ks_err *err)
{
	return ks_cache_update(c, name, restore_fn, &now, err);
}

/* ---- purge ---- */

struct purge_arg {
	const struct ks_cache *c;
	bool only_expired;
	int64_t now;
	bool purged;
};

static int purge_fn(void *arg, const struct bytes *cur, struct bytes *next, struct ks_err *err)
{
	struct purge_arg *a = arg;
	struct bytes key = {0};
	struct tombstone t;
	bool carries;

	a->purged = false;
	if (!cur || !tombstone_parse(cur->data, cur->len, &t)) {
		if (a->only_expired)
			return KS_OK;
		ks_err_set(err, cur ? "the key is not deleted" : "no key under that name");
		return cur ? KS_EXISTS : KS_NOT_FOUND;
	}
	carries = tombstone_key(cur->data, cur->len, &key) == 0;
	bytes_free(&key);
	if (!carries || (a->only_expired && (t.restore_until <= 0 || a->now < t.restore_until))) {
		if (a->only_expired)
			return KS_OK;
		ks_err_set(err, "the key was deleted without a restore window or purged already");
		return KS_NOT_FOUND;
	}
	/* Replicas may serve the key from their caches until the delete's reservation ends. */
	t.until = reserved_until(a->c, t.deleted_at > 0 ? t.deleted_at : a->now);
	if (t.until != TOMBSTONE_FOREVER && t.until < a->now)
		t.until = a->now;
	t.restore_until = 0;
	if (tombstone_encode(&t, next) != 0) {
		ks_err_set(err, "out of memory");
		return KS_FAILED;
	}
	a->purged = true;
	return KS_OK;
}

int key_lifecycle_purge(struct ks_cache *c, const char *name, bool only_expired, int64_t now,
                        bool *purged, struct ks_err *err)
{
	struct purge_arg a = {.c = c, .only_expired = only_expired, .now = now};
	int rc = ks_cache_update(c, name, purge_fn, &a, err);

	*purged = rc == KS_OK && a.purged;
	return rc;
}

/* ---- a server's periodic pass ---- */

struct tend_arg {
	struct rotate_arg rotate;
	struct purge_arg purge;
	enum key_lifecycle_done done;
};

static int tend_fn(void *arg, const struct bytes *cur, struct bytes *next, struct ks_err *err)
{
	struct tend_arg *a = arg;
	struct tombstone t;
	int rc;

	a->done = KEY_LIFECYCLE_NOTHING;
	if (!cur)
		return KS_OK; /* gone since the listing */
	if (tombstone_parse(cur->data, cur->len, &t)) {
		rc = purge_fn(&a->purge, cur, next, err);
		if (rc == KS_OK && a->purge.purged)
			a->done = KEY_LIFECYCLE_PURGED;
		return rc;
	}
	if (a->rotate.older_than_s <= 0)
		return KS_OK;
	rc = rotate_fn(&a->rotate, cur, next, err);
	if (rc == KS_OK && a->rotate.rotated)
		a->done = KEY_LIFECYCLE_ROTATED;
	return rc;
}

int key_lifecycle_tend(struct ks_cache *c, const char *name, const char *by,
                       int64_t rotate_older_than_s, int64_t now, enum key_lifecycle_done *done,
                       uint32_t *version, struct ks_err *err)
{
	struct tend_arg a = {
	    .rotate = {.by = by ? by : "", .older_than_s = rotate_older_than_s, .now = now},
	    .purge = {.c = c, .only_expired = true, .now = now},
	};
	int rc = ks_cache_update(c, name, tend_fn, &a, err);

	*done = rc == KS_OK ? a.done : KEY_LIFECYCLE_NOTHING;
	*version = a.rotate.version;
	return rc;
}
