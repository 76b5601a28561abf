/* test_key_stats.c — kesc_key_old_version_decrypts_total (server/key_stats.c): one series per
 * key and old version, a bounded number of them (the rest under "_other"), counts that add up
 * while several threads count at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/key_stats.h"
#include "tests/unit/check.h"

static char *render(void)
{
	struct buf b;
	buf_init(&b, 0);
	key_stats_render(&b);
	char *text = strdup(b.data ? b.data : "");
	buf_free(&b);
	return text;
}

/* Sample lines (not HELP/TYPE) of the metric. */
static size_t series_count(const char *text)
{
	size_t n = 0;
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, "kesc_key_old_version_decrypts_total{", 36))
			n++;
	return n;
}

static void test_one_series_per_key_and_version(void)
{
	key_stats_reset();
	key_stats_old_version(NULL, "minio", 1);
	key_stats_old_version(NULL, "minio", 1);
	key_stats_old_version(NULL, "minio", 2);
	key_stats_old_version(NULL, "backup", 3);
	char *t = render();
	CHECK(strstr(t, "# TYPE kesc_key_old_version_decrypts_total counter\n") != NULL);
	/* sorted by key, then version */
	CHECK(strstr(t, "kesc_key_old_version_decrypts_total{key=\"backup\",version=\"v3\"} 1\n"
	                "kesc_key_old_version_decrypts_total{key=\"minio\",version=\"v1\"} 2\n"
	                "kesc_key_old_version_decrypts_total{key=\"minio\",version=\"v2\"} 1\n") !=
	      NULL);
	CHECK_EQ_INT((int)series_count(t), 3);
	CHECK(strstr(t, "_other") == NULL);
	free(t);
}

/* Cardinality is bounded: a client decrypting under many keys' old versions cannot make the
 * metric grow without limit; what does not fit is counted, not dropped. */
static void test_series_are_bounded(void)
{
	char name[32];

	key_stats_reset();
	for (int i = 0; i < KEY_STATS_MAX_SERIES + 300; i++) {
		snprintf(name, sizeof name, "k%d", i);
		key_stats_old_version(NULL, name, 1);
	}
	/* the series that fit keep counting; the new ones go to _other */
	key_stats_old_version(NULL, "k0", 1);
	key_stats_old_version(NULL, "k0", 2);
	char *t = render();
	CHECK_EQ_INT((int)series_count(t), KEY_STATS_MAX_SERIES + 1);
	CHECK(strstr(t, "kesc_key_old_version_decrypts_total{key=\"k0\",version=\"v1\"} 2\n") !=
	      NULL);
	CHECK(strstr(t, "kesc_key_old_version_decrypts_total{key=\"_other\",version=\"_other\"} "
	                "301\n") != NULL);
	free(t);
	/* a name longer than any key name is not a series (it cannot come from the API) */
	key_stats_reset();
	char longname[100];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	key_stats_old_version(NULL, longname, 2);
	key_stats_old_version(NULL, "", 2);
	t = render();
	CHECK_EQ_INT((int)series_count(t), 0);
	free(t);
}

static char *render_tenant(const char *tenant)
{
	struct buf b;
	buf_init(&b, 0);
	key_stats_render_tenant(&b, tenant);
	char *text = strdup(b.data ? b.data : "");
	buf_free(&b);
	return text;
}

/* With tenants: the same key name in two tenants is two series; the process-wide view labels
 * them with their tenant, a tenant's own view shows only its own, and never the overflow (whose
 * size depends on the other tenants). */
static void test_tenants_are_separate(void)
{
	key_stats_reset();
	key_stats_old_version(NULL, "minio", 1);
	key_stats_old_version("acme", "minio", 1);
	key_stats_old_version("acme", "minio", 1);
	key_stats_old_version("beta", "minio", 1);
	key_stats_old_version("beta", "secret-name", 2);
	char *all = render();
	CHECK(
	    strstr(all, "kesc_key_old_version_decrypts_total{key=\"minio\",version=\"v1\"} 1\n") !=
	    NULL);
	CHECK(strstr(all, "kesc_key_old_version_decrypts_total{tenant=\"acme\",key=\"minio\","
	                  "version=\"v1\"} 2\n") != NULL);
	CHECK(strstr(all, "kesc_key_old_version_decrypts_total{tenant=\"beta\",key=\"minio\","
	                  "version=\"v1\"} 1\n") != NULL);
	CHECK_EQ_INT((int)series_count(all), 4);
	free(all);
	char *acme = render_tenant("acme");
	CHECK(strstr(acme, "# TYPE kesc_key_old_version_decrypts_total counter\n") != NULL);
	CHECK(
	    strstr(acme, "kesc_key_old_version_decrypts_total{key=\"minio\",version=\"v1\"} 2\n") !=
	    NULL);
	CHECK_EQ_INT((int)series_count(acme), 1);
	CHECK(strstr(acme, "secret-name") == NULL && strstr(acme, "beta") == NULL);
	free(acme);
	/* the overflow is the process's, not shown to a tenant */
	char name[32];
	for (int i = 0; i < KEY_STATS_MAX_SERIES + 5; i++) {
		snprintf(name, sizeof name, "k%d", i);
		key_stats_old_version("beta", name, 1);
	}
	acme = render_tenant("acme");
	CHECK(strstr(acme, "_other") == NULL);
	CHECK_EQ_INT((int)series_count(acme), 1);
	free(acme);
}

#define THREADS    4
#define PER_THREAD 5000

static void *count(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++)
		key_stats_old_version(NULL, "shared", 1 + (uint32_t)(i % 2));
	return NULL;
}

static void test_threads_add_up(void)
{
	pthread_t t[THREADS];

	key_stats_reset();
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, count, NULL) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	char *text = render();
	char want[160];
	snprintf(want, sizeof want,
	         "kesc_key_old_version_decrypts_total{key=\"shared\",version=\"v1\"} %d\n"
	         "kesc_key_old_version_decrypts_total{key=\"shared\",version=\"v2\"} %d\n",
	         THREADS * PER_THREAD / 2, THREADS * PER_THREAD / 2);
	CHECK(strstr(text, want) != NULL);
	free(text);
}

int main(void)
{
	RUN(test_one_series_per_key_and_version);
	RUN(test_series_are_bounded);
	RUN(test_threads_add_up);
	RUN(test_tenants_are_separate);
	return CHECK_DONE();
}
