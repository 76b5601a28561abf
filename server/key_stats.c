/*
 * key_stats.c — the bounded table behind kesc_key_old_version_decrypts_total (key_stats.h):
 * open addressing on (key, version) under one mutex. Only decrypts under an old version come
 * here, so the lock is off the common path.
 */
#include "server/key_stats.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"

#define SLOTS           (2 * KEY_STATS_MAX_SERIES) /* a power of two, half full at most */
#define STATS_NAME_MAX  80                         /* the API's longest key name */
#define TENANT_NAME_MAX 80                         /* the longest tenant (policy) name */

struct series {
	char tenant[TENANT_NAME_MAX + 1]; /* "" = the top-level keystore */
	char key[STATS_NAME_MAX + 1];     /* "" = free slot */
	uint32_t version;
	uint64_t count;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[SLOTS];
static size_t used;
static uint64_t other;
static bool overflow_logged;

static size_t slot_of(const char *tenant, const char *key, uint32_t version)
{
	uint64_t h = 14695981039346656037ull ^ version; /* FNV-1a */

	for (; *tenant; tenant++)
		h = (h ^ (uint8_t)*tenant) * 1099511628211ull;
	h = (h ^ 0xffu) * 1099511628211ull; /* a byte no name has: "a"+"bc" is not "ab"+"c" */
	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 1099511628211ull;
	return (size_t)(h ^ h >> 29) & (SLOTS - 1);
}

void key_stats_old_version(const char *tenant, const char *key, uint32_t version)
{
	size_t n = strlen(key);
	size_t tn;
	bool log_overflow = false;

	if (!tenant)
		tenant = "";
	tn = strlen(tenant);
	if (n == 0 || n > STATS_NAME_MAX || tn > TENANT_NAME_MAX)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = slot_of(tenant, key, version);; i = (i + 1) & (SLOTS - 1)) {
		struct series *s = &table[i];

		if (s->key[0] && s->version == version && strcmp(s->key, key) == 0 &&
		    strcmp(s->tenant, tenant) == 0) {
			s->count++;
			break;
		}
		if (s->key[0])
			continue;
		if (used >= KEY_STATS_MAX_SERIES) {
			other++;
			log_overflow = !overflow_logged;
			overflow_logged = true;
			break;
		}
		memcpy(s->key, key, n + 1);
		memcpy(s->tenant, tenant, tn + 1);
		s->version = version;
		s->count = 1;
		used++;
		break;
	}
	pthread_mutex_unlock(&lock);
	if (log_overflow)
		log_warn(
		    "metrics: more than %d keys and old versions served decrypts; further ones "
		    "are counted in kesc_key_old_version_decrypts_total{key=\"_other\"}",
		    KEY_STATS_MAX_SERIES);
}

static int series_order(const void *a, const void *b)
{
	const struct series *x = a, *y = b;
	int c = strcmp(x->tenant, y->tenant);

	if (!c)
		c = strcmp(x->key, y->key);
	return c ? c : (x->version > y->version) - (x->version < y->version);
}

/* only: NULL renders every series (tenants labelled) and the overflow; else that tenant's
 * series only, unlabelled. */
static void render(struct buf *out, const char *only)
{
	struct series *copy = malloc(sizeof(table));
	size_t n = 0;
	uint64_t rest;

	buf_append_str(out, "# HELP kesc_key_old_version_decrypts_total Decrypts served by a "
	                    "version older than the key's current one.\n"
	                    "# TYPE kesc_key_old_version_decrypts_total counter\n");
	if (!copy)
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < SLOTS; i++)
		if (table[i].key[0] && (!only || strcmp(table[i].tenant, only) == 0))
			copy[n++] = table[i];
	rest = only ? 0 : other;
	pthread_mutex_unlock(&lock);
	qsort(copy, n, sizeof(*copy), series_order);
	for (size_t i = 0; i < n; i++) {
		buf_append_str(out, "kesc_key_old_version_decrypts_total{");
		if (!only && copy[i].tenant[0])
			buf_printf(out, "tenant=\"%s\",", copy[i].tenant);
		buf_printf(out, "key=\"%s\",version=\"v%u\"} %llu\n", copy[i].key, copy[i].version,
		           (unsigned long long)copy[i].count);
	}
	if (rest)
		buf_printf(out,
		           "kesc_key_old_version_decrypts_total{key=\"_other\",version=\"_other\"} "
		           "%llu\n",
		           (unsigned long long)rest);
	free(copy);
}

void key_stats_render(struct buf *out)
{
	render(out, NULL);
}

void key_stats_render_tenant(struct buf *out, const char *tenant)
{
	render(out, tenant ? tenant : "");
}

void key_stats_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(table, 0, sizeof(table));
	used = 0;
	other = 0;
	overflow_logged = false;
	pthread_mutex_unlock(&lock);
}
