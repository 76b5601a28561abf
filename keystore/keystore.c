/*
 * keystore.c — what every store shares: error details, result names, name lists and the
 * thin wrappers that dispatch through a store's ops table.
 */
#include "keystore/keystore.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/tombstone.h"

void ks_err_set(struct ks_err *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

static _Atomic(ks_log_fn) log_hook;

static _Thread_local const char *thread_tag;

void keystore_thread_tag_set(const char *tenant)
{
	thread_tag = tenant;
}

const char *keystore_thread_tag(void)
{
	return thread_tag;
}

void keystore_set_log(ks_log_fn fn)
{
	atomic_store(&log_hook, fn);
}

void ks_log(const char *fmt, ...)
{
	ks_log_fn fn = atomic_load(&log_hook);
	if (!fn)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(msg);
}

const char *ks_result_name(int result)
{
	switch (result) {
	case KS_OK:
		return "ok";
	case KS_NOT_FOUND:
		return "not found";
	case KS_EXISTS:
		return "exists";
	case KS_UNREACHABLE:
		return "unreachable";
	case KS_FAILED:
		return "failed";
	case KS_WOULD_BLOCK:
		return "would block";
	case KS_DELETED:
		return "deleted";
	case KS_NO_VERSION:
		return "no such version";
	case KS_TOO_MANY:
		return "too many versions";
	case KS_PURGED:
		return "purged";
	default:
		return "unknown";
	}
}

int name_list_add(struct name_list *l, const char *name)
{
	char *copy;

	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **names = realloc(l->names, cap * sizeof(*names));

		if (!names)
			return -1;
		l->names = names;
		l->cap = cap;
	}
	copy = strdup(name);
	if (!copy)
		return -1;
	l->names[l->count++] = copy;
	return 0;
}

static int name_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Strictly ascending: sorted and without duplicates. */
static bool name_list_is_sorted(const struct name_list *l)
{
	for (size_t i = 1; i < l->count; i++)
		if (strcmp(l->names[i - 1], l->names[i]) >= 0)
			return false;
	return true;
}

void name_list_sort(struct name_list *l)
{
	size_t in, out = 0;

	/* A list is sorted by its store and again by the API: the second time costs one pass
	 * instead of an n log n sort (100,000 keys: the list's only superlinear step). */
	if (l->count < 2 || name_list_is_sorted(l))
		return;
	qsort(l->names, l->count, sizeof(*l->names), name_compare);
	for (in = 0; in < l->count; in++) {
		if (out > 0 && strcmp(l->names[out - 1], l->names[in]) == 0) {
			free(l->names[in]);
			continue;
		}
		l->names[out++] = l->names[in];
	}
	l->count = out;
}

void name_list_free(struct name_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	l->names = NULL;
	l->count = 0;
	l->cap = 0;
}

int keystore_create(struct keystore *ks, const char *name, const struct bytes *record,
                    struct ks_err *err)
{
	return ks->ops->create(ks->self, name, record, err);
}

int keystore_get(struct keystore *ks, const char *name, struct bytes *record_out,
                 struct ks_err *err)
{
	struct tombstone t;
	char what[256];
	int rc = ks->ops->get(ks->self, name, record_out, err);

	if (rc != KS_OK || !tombstone_parse(record_out->data, record_out->len, &t))
		return rc;
	bytes_free(record_out);
	tombstone_describe(&t, what, sizeof(what));
	ks_err_set(err, "%s", what);
	return KS_NOT_FOUND;
}

int keystore_holds_key(struct keystore *ks, const char *name, struct ks_err *err)
{
	struct bytes record = {0};
	bool key = false;
	int rc;

	if (ks->ops->holds_key) {
		rc = ks->ops->holds_key(ks->self, name, &key, err);
		return rc == KS_OK && !key ? KS_NOT_FOUND : rc;
	}
	rc = keystore_get(ks, name, &record, err);
	bytes_free(&record);
	return rc;
}

int keystore_remove(struct keystore *ks, const char *name, const struct bytes *tombstone,
                    struct ks_err *err)
{
	return ks->ops->remove(ks->self, name, tombstone, err);
}

int keystore_get_raw(struct keystore *ks, const char *name, struct bytes *record_out,
                     struct ks_err *err)
{
	return ks->ops->get(ks->self, name, record_out, err);
}

int keystore_replace(struct keystore *ks, const char *name, const struct bytes *expected,
                     const struct bytes *record, struct ks_err *err)
{
	if (!ks->ops->replace) {
		ks_err_set(err, "%s: this keystore cannot replace a record in one step",
		           ks->ops->name);
		return KS_FAILED;
	}
	return ks->ops->replace(ks->self, name, expected, record, err);
}

int keystore_check_taken(const char *name, const struct bytes *record, int64_t now,
                         struct ks_err *err)
{
	struct tombstone t;
	char what[256];

	if (!tombstone_parse(record->data, record->len, &t)) {
		ks_err_set(err, "key '%s' already exists", name);
		return KS_EXISTS;
	}
	if (tombstone_expired(&t, now))
		return KS_OK;
	tombstone_describe(&t, what, sizeof(what));
	ks_err_set(err, "key '%s' was %s", name, what);
	return KS_DELETED;
}

int64_t keystore_now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return (int64_t)time(NULL);
	return (int64_t)ts.tv_sec;
}

int keystore_list(struct keystore *ks, const char *prefix, struct name_list *out,
                  struct ks_err *err)
{
	return ks->ops->list(ks->self, prefix, out, err);
}

int keystore_status(struct keystore *ks, struct ks_status *out, struct ks_err *err)
{
	return ks->ops->status(ks->self, out, err);
}

void keystore_close(struct keystore *ks)
{
	if (!ks)
		return;
	if (ks->ops && ks->ops->close)
		ks->ops->close(ks->self);
	free(ks);
}
