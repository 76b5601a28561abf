/* curl_loader.c — dlopen libcurl on first use and forward to it. See curl_loader.h. */
#define KESC_CURL_LOADER_IMPL 1
#include "keystore/curl_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

static struct {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_reset)(CURL *);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLM *(*multi_init)(void);
	CURLMcode (*multi_add_handle)(CURLM *, CURL *);
	CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
	CURLMcode (*multi_perform)(CURLM *, int *);
	CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned, int, int *);
	CURLMcode (*multi_wakeup)(CURLM *);
	CURLMsg *(*multi_info_read)(CURLM *, int *);
	CURLMcode (*multi_cleanup)(CURLM *);
} api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_result = -1;
static char load_error[256] = "libcurl was not loaded";

/* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
#define RESOLVE(lib, field, name)                                                           \
	do {                                                                                \
		*(void **)&api.field = dlsym(lib, name);                                    \
		if (!api.field) {                                                           \
			snprintf(load_error, sizeof(load_error), "libcurl lacks %s", name); \
			return;                                                             \
		}                                                                           \
	} while (0)

static void load(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(load_error, sizeof(load_error), "cannot load libcurl: %s", dlerror());
		return;
	}
	RESOLVE(lib, global_init, "curl_global_init");
	RESOLVE(lib, easy_init, "curl_easy_init");
	RESOLVE(lib, easy_setopt, "curl_easy_setopt");
	RESOLVE(lib, easy_perform, "curl_easy_perform");
	RESOLVE(lib, easy_getinfo, "curl_easy_getinfo");
	RESOLVE(lib, easy_reset, "curl_easy_reset");
	RESOLVE(lib, easy_cleanup, "curl_easy_cleanup");
	RESOLVE(lib, easy_strerror, "curl_easy_strerror");
	RESOLVE(lib, slist_append, "curl_slist_append");
	RESOLVE(lib, slist_free_all, "curl_slist_free_all");
	RESOLVE(lib, multi_init, "curl_multi_init");
	RESOLVE(lib, multi_add_handle, "curl_multi_add_handle");
	RESOLVE(lib, multi_remove_handle, "curl_multi_remove_handle");
	RESOLVE(lib, multi_perform, "curl_multi_perform");
	RESOLVE(lib, multi_poll, "curl_multi_poll");     /* libcurl >= 7.66 */
	RESOLVE(lib, multi_wakeup, "curl_multi_wakeup"); /* libcurl >= 7.68 */
	RESOLVE(lib, multi_info_read, "curl_multi_info_read");
	RESOLVE(lib, multi_cleanup, "curl_multi_cleanup");
	if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(load_error, sizeof(load_error), "curl_global_init failed");
		return;
	}
	load_result = 0; /* the library stays loaded for the life of the process */
}

int curl_loader_load(char *err, size_t errlen)
{
	pthread_once(&load_once, load);
	if (load_result != 0 && err && errlen)
		snprintf(err, errlen, "%s", load_error);
	return load_result;
}

CURLcode kesc_curl_global_init(long flags)
{
	(void)flags; /* done once by the loader with CURL_GLOBAL_DEFAULT */
	return curl_loader_load(NULL, 0) == 0 ? CURLE_OK : CURLE_FAILED_INIT;
}

CURL *kesc_curl_easy_init(void)
{
	return curl_loader_load(NULL, 0) == 0 ? api.easy_init() : NULL;
}

/* Forwards the one variadic argument with the type libcurl reads for that option range. */
CURLcode kesc_curl_easy_setopt(CURL *h, CURLoption option, ...)
{
	if (curl_loader_load(NULL, 0) != 0)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT) {
		long v = va_arg(ap, long);
		rc = api.easy_setopt(h, option, v);
	} else if (option < CURLOPTTYPE_FUNCTIONPOINT) {
		void *v = va_arg(ap, void *);
		rc = api.easy_setopt(h, option, v);
	} else if (option < CURLOPTTYPE_OFF_T) {
		void (*v)(void) = va_arg(ap, void (*)(void));
		rc = api.easy_setopt(h, option, v);
	} else if (option < CURLOPTTYPE_BLOB) {
		curl_off_t v = va_arg(ap, curl_off_t);
		rc = api.easy_setopt(h, option, v);
	} else {
		void *v = va_arg(ap, void *);
		rc = api.easy_setopt(h, option, v);
	}
	va_end(ap);
	return rc;
}

CURLcode kesc_curl_easy_perform(CURL *h)
{
	return curl_loader_load(NULL, 0) == 0 ? api.easy_perform(h) : CURLE_FAILED_INIT;
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode kesc_curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	if (curl_loader_load(NULL, 0) != 0)
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	void *out = va_arg(ap, void *);
	va_end(ap);
	return api.easy_getinfo(h, info, out);
}

void kesc_curl_easy_reset(CURL *h)
{
	if (curl_loader_load(NULL, 0) == 0)
		api.easy_reset(h);
}

void kesc_curl_easy_cleanup(CURL *h)
{
	if (h && curl_loader_load(NULL, 0) == 0)
		api.easy_cleanup(h);
}

const char *kesc_curl_easy_strerror(CURLcode code)
{
	return curl_loader_load(NULL, 0) == 0 ? api.easy_strerror(code) : load_error;
}

struct curl_slist *kesc_curl_slist_append(struct curl_slist *list, const char *s)
{
	return curl_loader_load(NULL, 0) == 0 ? api.slist_append(list, s) : NULL;
}

void kesc_curl_slist_free_all(struct curl_slist *list)
{
	if (list && curl_loader_load(NULL, 0) == 0)
		api.slist_free_all(list);
}

CURLM *kesc_curl_multi_init(void)
{
	return curl_loader_load(NULL, 0) == 0 ? api.multi_init() : NULL;
}

/* The other multi calls need a handle from kesc_curl_multi_init, so libcurl is loaded. */
CURLMcode kesc_curl_multi_add_handle(CURLM *m, CURL *h)
{
	return api.multi_add_handle(m, h);
}

CURLMcode kesc_curl_multi_remove_handle(CURLM *m, CURL *h)
{
	return api.multi_remove_handle(m, h);
}

CURLMcode kesc_curl_multi_perform(CURLM *m, int *running)
{
	return api.multi_perform(m, running);
}

CURLMcode kesc_curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
                               int *numfds)
{
	return api.multi_poll(m, extra, n, timeout_ms, numfds);
}

CURLMcode kesc_curl_multi_wakeup(CURLM *m)
{
	return api.multi_wakeup(m);
}

CURLMsg *kesc_curl_multi_info_read(CURLM *m, int *left)
{
	return api.multi_info_read(m, left);
}

CURLMcode kesc_curl_multi_cleanup(CURLM *m)
{
	return m ? api.multi_cleanup(m) : CURLM_OK;
}
