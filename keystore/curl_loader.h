/*
 * curl_loader.h — libcurl, loaded the first time something needs it.
 *
 * A server on the filesystem keystore never talks HTTP to anyone, yet linking libcurl maps it
 * and some thirty libraries it pulls in (OpenSSL, GnuTLS, Kerberos, LDAP…) at start-up: about
 * 5 MiB of resident memory. So the Vault store and the CLI client include this header instead
 * of <curl/curl.h>: the curl_* calls they make go to wrappers that dlopen("libcurl.so.4")
 * once (thread-safe) and forward. The first failing call reports CURLE_FAILED_INIT (or NULL).
 */
#ifndef KESC_KEYSTORE_CURL_LOADER_H
#define KESC_KEYSTORE_CURL_LOADER_H

#ifndef CURL_DISABLE_TYPECHECK
#define CURL_DISABLE_TYPECHECK 1
#endif
#include <curl/curl.h>

#include <stddef.h>

/* Loads libcurl and runs curl_global_init once. 0, or -1 with the reason in err (may be NULL). */
int curl_loader_load(char *err, size_t errlen);

CURLcode kesc_curl_global_init(long flags);
CURL *kesc_curl_easy_init(void);
CURLcode kesc_curl_easy_setopt(CURL *h, CURLoption option, ...);
CURLcode kesc_curl_easy_perform(CURL *h);
CURLcode kesc_curl_easy_getinfo(CURL *h, CURLINFO info, ...);
void kesc_curl_easy_reset(CURL *h);
void kesc_curl_easy_cleanup(CURL *h);
const char *kesc_curl_easy_strerror(CURLcode code);
struct curl_slist *kesc_curl_slist_append(struct curl_slist *list, const char *s);
void kesc_curl_slist_free_all(struct curl_slist *list);
/* The multi interface: the Vault health monitor runs overlapping probes with it. */
CURLM *kesc_curl_multi_init(void);
CURLMcode kesc_curl_multi_add_handle(CURLM *m, CURL *h);
CURLMcode kesc_curl_multi_remove_handle(CURLM *m, CURL *h);
CURLMcode kesc_curl_multi_perform(CURLM *m, int *running);
CURLMcode kesc_curl_multi_poll(CURLM *m, struct curl_waitfd extra[], unsigned n, int timeout_ms,
                               int *numfds);
CURLMcode kesc_curl_multi_wakeup(CURLM *m);
CURLMsg *kesc_curl_multi_info_read(CURLM *m, int *left);
CURLMcode kesc_curl_multi_cleanup(CURLM *m);

#ifndef KESC_CURL_LOADER_IMPL
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init         kesc_curl_global_init
#define curl_easy_init           kesc_curl_easy_init
#define curl_easy_setopt         kesc_curl_easy_setopt
#define curl_easy_perform        kesc_curl_easy_perform
#define curl_easy_getinfo        kesc_curl_easy_getinfo
#define curl_easy_reset          kesc_curl_easy_reset
#define curl_easy_cleanup        kesc_curl_easy_cleanup
#define curl_easy_strerror       kesc_curl_easy_strerror
#define curl_slist_append        kesc_curl_slist_append
#define curl_slist_free_all      kesc_curl_slist_free_all
#define curl_multi_init          kesc_curl_multi_init
#define curl_multi_add_handle    kesc_curl_multi_add_handle
#define curl_multi_remove_handle kesc_curl_multi_remove_handle
#define curl_multi_perform       kesc_curl_multi_perform
#define curl_multi_poll          kesc_curl_multi_poll
#define curl_multi_wakeup        kesc_curl_multi_wakeup
#define curl_multi_info_read     kesc_curl_multi_info_read
#define curl_multi_cleanup       kesc_curl_multi_cleanup
#endif

#endif
