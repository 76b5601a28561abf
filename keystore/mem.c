/*
 * mem.c — the in-memory key store, for `--dev` and tests. Same semantics as the fs store; the
 * keys live in a name-sorted array under one rwlock, so list is a walk and lookups a binary
 * search. A remove replaces the record with the tombstone; a create replaces an expired one.
 * Records are zeroed when replaced and when the store closes.
 */
#include "keystore/keystore.h"

#include "keystore/secmem.h"
#include "keystore/tombstone.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct mem_entry {
	char *name;
	struct bytes record;
};

struct mem_store {
	pthread_rwlock_t lock;
	struct mem_entry *entries; /* sorted by name, byte order */
	size_t count;
	size_t cap;
};

/* Index of name, or of where it would go; *found says which. Caller holds the lock. */
static size_t mem_find(const struct mem_store *m, const char *name, bool *found)
{
	size_t lo = 0, hi = m->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(m->entries[mid].name, name);

		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static int mem_grow(struct mem_store *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct mem_entry *e;

	if (m->count < m->cap)
		return 0;
	e = realloc(m->entries, cap * sizeof(*e));
	if (!e)
		return -1;
	m->entries = e;
	m->cap = cap;
	return 0;
}

static int mem_create(void *self, const char *name, const struct bytes *record, struct ks_err *err)
{
	struct mem_store *m = self;
	struct mem_entry entry = {0};
	bool found;
	size_t at;
	int rc = KS_OK;

	if (record->len > KS_MAX_RECORD) {
		ks_err_set(err, "mem: record for '%s' is larger than %d bytes", name,
		           KS_MAX_RECORD);
		return KS_FAILED;
	}
	if (!(entry.name = strdup(name)) || bytes_set(&entry.record, record->data, record->len)) {
		ks_err_set(err, "mem: out of memory");
		free(entry.name);
		return KS_FAILED;
	}
	pthread_rwlock_wrlock(&m->lock);
	at = mem_find(m, name, &found);
	if (found) {
		rc = keystore_check_taken(name, &m->entries[at].record, keystore_now(), err);
		if (rc == KS_OK) {
			/* An expired tombstone: the new record takes its place, entry keeps the
			 * tombstone to be freed below. */
			struct bytes tomb = m->entries[at].record;
			m->entries[at].record = entry.record;
			entry.record = tomb;
		}
	} else if (mem_grow(m) != 0) {
		ks_err_set(err, "mem: out of memory");
		rc = KS_FAILED;
	} else {
		memmove(&m->entries[at + 1], &m->entries[at], (m->count - at) * sizeof(entry));
		m->entries[at] = entry;
		m->count++;
		entry = (struct mem_entry){0};
	}
	pthread_rwlock_unlock(&m->lock);
	bytes_free(&entry.record);
	free(entry.name);
	return rc;
}

static int mem_get(void *self, const char *name, struct bytes *record_out, struct ks_err *err)
{
	struct mem_store *m = self;
	bool found;
	size_t at;
	int rc = KS_OK;

	pthread_rwlock_rdlock(&m->lock);
	at = mem_find(m, name, &found);
	if (!found) {
		rc = KS_NOT_FOUND;
	} else if (bytes_set(record_out, m->entries[at].record.data, m->entries[at].record.len)) {
		ks_err_set(err, "mem: out of memory");
		rc = KS_FAILED;
	}
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

static int mem_remove(void *self, const char *name, const struct bytes *tombstone,
                      struct ks_err *err)
{
	struct mem_store *m = self;
	struct bytes copy = {0}, gone = {0};
	struct tombstone t;
	bool found;
	size_t at;
	int rc = KS_NOT_FOUND;

	if (bytes_set(&copy, tombstone->data, tombstone->len) != 0) {
		ks_err_set(err, "mem: out of memory");
		return KS_FAILED;
	}
	pthread_rwlock_wrlock(&m->lock);
	at = mem_find(m, name, &found);
	if (found && !tombstone_parse(m->entries[at].record.data, m->entries[at].record.len, &t)) {
		gone = m->entries[at].record;
		m->entries[at].record = copy;
		copy = (struct bytes){0};
		rc = KS_OK;
	}
	pthread_rwlock_unlock(&m->lock);
	bytes_free(&gone);
	bytes_free(&copy);
	return rc;
}

static int mem_replace(void *self, const char *name, const struct bytes *expected,
                       const struct bytes *record, struct ks_err *err)
{
	struct mem_store *m = self;
	struct bytes copy = {0};
	bool found;
	size_t at;
	int rc = KS_NOT_FOUND;

	if (record->len > KS_MAX_RECORD) {
		ks_err_set(err, "mem: record for '%s' is larger than %d bytes", name,
		           KS_MAX_RECORD);
		return KS_FAILED;
	}
	if (bytes_set(&copy, record->data, record->len) != 0) {
		ks_err_set(err, "mem: out of memory");
		return KS_FAILED;
	}
	pthread_rwlock_wrlock(&m->lock);
	at = mem_find(m, name, &found);
	if (found) {
		struct bytes *cur = &m->entries[at].record;

		rc = KS_EXISTS;
		if (cur->len == expected->len && ct_equal(cur->data, expected->data, cur->len)) {
			struct bytes gone = *cur;

			*cur = copy;
			copy = gone; /* the old record, zeroed and freed below */
			rc = KS_OK;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	if (rc == KS_EXISTS)
		ks_err_set(err, "mem: '%s' changed since it was read", name);
	bytes_free(&copy);
	return rc;
}

static int mem_list(void *self, const char *prefix, struct name_list *out, struct ks_err *err)
{
	struct mem_store *m = self;
	size_t plen = strlen(prefix), i;
	bool found;
	int rc = KS_OK;

	pthread_rwlock_rdlock(&m->lock);
	/* Names with the prefix form one run starting where the prefix would sort. */
	for (i = mem_find(m, prefix, &found); i < m->count; i++) {
		if (strncmp(m->entries[i].name, prefix, plen) != 0)
			break;
		if (name_list_add(out, m->entries[i].name) != 0) {
			ks_err_set(err, "mem: out of memory");
			rc = KS_FAILED;
			break;
		}
	}
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

static int mem_status(void *self, struct ks_status *out, struct ks_err *err)
{
	(void)self;
	(void)err;
	out->latency_us = 1000; /* nothing to measure; KES reports a fixed 1 ms */
	return KS_OK;
}

static void mem_close(void *self)
{
	struct mem_store *m = self;
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->count; i++) {
		bytes_free(&m->entries[i].record);
		free(m->entries[i].name);
	}
	free(m->entries);
	pthread_rwlock_destroy(&m->lock);
	free(m);
}

static const struct keystore_ops mem_ops = {
    .name = "mem",
    .create = mem_create,
    .get = mem_get,
    .remove = mem_remove,
    .list = mem_list,
    .status = mem_status,
    .close = mem_close,
    .replace = mem_replace,
};

struct keystore *mem_keystore_open(void)
{
	struct keystore *ks = calloc(1, sizeof(*ks));
	struct mem_store *m = calloc(1, sizeof(*m));

	if (!ks || !m || pthread_rwlock_init(&m->lock, NULL) != 0) {
		free(m);
		free(ks);
		return NULL;
	}
	ks->ops = &mem_ops;
	ks->self = m;
	return ks;
}
