/* vault_http.c — libcurl transport to Vault: TLS, timeouts, retries, handle pool. */
#include "keystore/vault_http.h"

#include "keystore/curl_loader.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore/backoff.h"
#include "keystore/json.h"
#include "keystore/secmem.h"

/* Backoff between attempts: doubling from the base, capped, with jitter in [d/2, d]. */
#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS  2000
/* A Retry-After longer than this is not honoured (the caller has a deadline too). */
#define RETRY_AFTER_MAX_MS 5000
/* Largest CA bundle read from a directory. */
#define CA_BUNDLE_MAX ((size_t)8 * 1024 * 1024)

struct vault_http {
	char *endpoint;
	char *tls_ca_file;  /* set when tls_ca is a file */
	struct buf ca_blob; /* concatenated *.pem / *.crt when tls_ca is a directory */
	bool have_ca_blob;
	char *tls_cert;
	char *tls_key;
	int64_t connect_timeout_ms;
	int64_t request_timeout_ms;
	int max_retries;
	const atomic_bool *cancel;

	pthread_mutex_t lock; /* guards pool */
	CURL *pool[VAULT_HTTP_POOL_MAX];
	size_t pooled;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void http_global_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int read_file_into(struct buf *out, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	int rc = ferror(f) ? -1 : 0;
	fclose(f);
	buf_append_char(out, '\n');
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* CURLOPT_CAPATH needs an OpenSSL hashed (c_rehash) directory, which users rarely have; KES
 * loads every file of the directory. We load every *.pem / *.crt into one in-memory bundle. */
static int http_load_ca_dir(struct vault_http *h, const char *dir, struct ks_err *err)
{
	DIR *d = opendir(dir);
	if (!d) {
		ks_err_set(err, "vault: cannot open CA directory '%s': %s", dir, strerror(errno));
		return -1;
	}
	struct name_list files = {0};
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' ||
		    !(has_suffix(e->d_name, ".pem") || has_suffix(e->d_name, ".crt")))
			continue;
		if (name_list_add(&files, e->d_name) != 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	if (rc == 0)
		qsort(files.names, files.count, sizeof(char *), name_cmp);
	buf_init(&h->ca_blob, CA_BUNDLE_MAX);
	for (size_t i = 0; rc == 0 && i < files.count; i++) {
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/%s", dir, files.names[i]) >=
		        (int)sizeof(path) ||
		    read_file_into(&h->ca_blob, path) != 0) {
			ks_err_set(err, "vault: cannot read CA file '%s/%s'", dir, files.names[i]);
			rc = -1;
		}
	}
	name_list_free(&files);
	if (rc == 0 && (buf_failed(&h->ca_blob) || h->ca_blob.len == 0)) {
		ks_err_set(err, "vault: no usable *.pem or *.crt file in CA directory '%s'", dir);
		rc = -1;
	}
	if (rc == 0)
		h->have_ca_blob = true;
	return rc;
}

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s || !*s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

struct vault_http *vault_http_new(const struct vault_http_opts *opts, struct ks_err *err)
{
	pthread_once(&curl_once, http_global_init);
	if (curl_init_result != CURLE_OK) {
		ks_err_set(err, "vault: libcurl init failed: %s",
		           curl_easy_strerror(curl_init_result));
		return NULL;
	}
	struct vault_http *h = calloc(1, sizeof(*h));
	if (!h) {
		ks_err_set(err, "vault: out of memory");
		return NULL;
	}
	bool oom = false;
	size_t n = strlen(opts->endpoint);
	while (n > 0 && opts->endpoint[n - 1] == '/')
		n--;
	h->endpoint = strndup(opts->endpoint, n);
	oom |= h->endpoint == NULL;
	h->tls_cert = dup_or_null(opts->tls_cert, &oom);
	h->tls_key = dup_or_null(opts->tls_key, &oom);
	h->connect_timeout_ms = opts->connect_timeout_ms;
	h->request_timeout_ms = opts->request_timeout_ms;
	h->max_retries = opts->max_retries;
	h->cancel = opts->cancel;
	if (pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h->endpoint);
		free(h->tls_cert);
		free(h->tls_key);
		free(h);
		ks_err_set(err, "vault: mutex init failed");
		return NULL;
	}
	if (oom) {
		ks_err_set(err, "vault: out of memory");
		goto fail;
	}
	if (opts->tls_ca && *opts->tls_ca) {
		struct stat st;
		if (stat(opts->tls_ca, &st) != 0) {
			ks_err_set(err, "vault: cannot access CA '%s': %s", opts->tls_ca,
			           strerror(errno));
			goto fail;
		}
		if (S_ISDIR(st.st_mode)) {
			if (http_load_ca_dir(h, opts->tls_ca, err) != 0)
				goto fail;
		} else if (!(h->tls_ca_file = strdup(opts->tls_ca))) {
			ks_err_set(err, "vault: out of memory");
			goto fail;
		}
	}
	return h;
fail:
	vault_http_free(h);
	return NULL;
}

void vault_http_free(struct vault_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->pooled; i++)
		curl_easy_cleanup(h->pool[i]);
	pthread_mutex_destroy(&h->lock);
	buf_free(&h->ca_blob);
	free(h->endpoint);
	free(h->tls_ca_file);
	free(h->tls_cert);
	free(h->tls_key);
	free(h);
}

void vault_response_init(struct vault_response *rs)
{
	rs->status = 0;
	buf_init(&rs->body, VAULT_HTTP_MAX_BODY);
}

void vault_response_free(struct vault_response *rs)
{
	buf_free(&rs->body);
	rs->status = 0;
}

static CURL *pool_take(struct vault_http *h)
{
	CURL *c = NULL;
	pthread_mutex_lock(&h->lock);
	if (h->pooled > 0)
		c = h->pool[--h->pooled];
	pthread_mutex_unlock(&h->lock);
	if (c) {
		/* Forget the previous request's options but keep its live connection. */
		curl_easy_reset(c);
		return c;
	}
	return curl_easy_init();
}

static void pool_give(struct vault_http *h, CURL *c, bool keep)
{
	if (keep) {
		pthread_mutex_lock(&h->lock);
		if (h->pooled < VAULT_HTTP_POOL_MAX) {
			h->pool[h->pooled++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&h->lock);
	}
	if (c)
		curl_easy_cleanup(c);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;
	buf_append(b, data, n);
	return buf_failed(b) ? 0 : n; /* 0 makes libcurl abort: the cap was passed */
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	const atomic_bool *cancel = userdata;
	return cancel && atomic_load(cancel) ? 1 : 0;
}

/* Sets every option of one attempt; any failure is a programming or memory error. */
static CURLcode http_setup(struct vault_http *h, CURL *c, const struct vault_request *rq,
                           const char *url, struct curl_slist *headers, struct buf *body)
{
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                       \
	do {                                                \
		if (rc == CURLE_OK)                         \
			rc = curl_easy_setopt(c, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_CUSTOMREQUEST, rq->method);
	if (rq->body) {
		SET(CURLOPT_POSTFIELDS, rq->body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	}
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, body);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)h->request_timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, (void *)h->cancel);
	if (h->tls_ca_file)
		SET(CURLOPT_CAINFO, h->tls_ca_file);
	if (h->have_ca_blob) {
		struct curl_blob blob = {h->ca_blob.data, h->ca_blob.len,
		                         CURL_BLOB_NOCOPY}; /* h outlives its handles */
		SET(CURLOPT_CAINFO_BLOB, &blob);
	}
	if (h->tls_cert)
		SET(CURLOPT_SSLCERT, h->tls_cert);
	if (h->tls_key)
		SET(CURLOPT_SSLKEY, h->tls_key);
#undef SET
	return rc;
}

static struct curl_slist *http_headers(const struct vault_request *rq, struct buf *scratch)
{
	struct curl_slist *l = NULL, *t;
	const char *fixed[] = {"Content-Type: application/json", "X-Vault-Request: true",
	                       "Expect:"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (!(t = curl_slist_append(l, fixed[i])))
			goto fail;
		l = t;
	}
	if (rq->token) {
		buf_reset(scratch);
		buf_printf(scratch, "X-Vault-Token: %s", rq->token);
		if (buf_failed(scratch) || !(t = curl_slist_append(l, scratch->data)))
			goto fail;
		l = t;
	}
	if (rq->namespace_ && *rq->namespace_) {
		buf_reset(scratch);
		buf_printf(scratch, "X-Vault-Namespace: %s", rq->namespace_);
		if (buf_failed(scratch) || !(t = curl_slist_append(l, scratch->data)))
			goto fail;
		l = t;
	}
	buf_reset(scratch);
	return l;
fail:
	buf_reset(scratch);
	curl_slist_free_all(l);
	return NULL;
}

/* curl_slist_free_all does not zero; the token header is a secret. */
static void headers_free(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		secure_zero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static bool status_retryable(long status)
{
	return status == 412 || status == 429 || (status >= 500 && status != 501);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms in small steps so a cancel (store close) ends it promptly. */
static void http_sleep(const struct vault_http *h, int64_t ms)
{
	int64_t end = now_ms() + ms;
	for (int64_t left = ms; left > 0; left = end - now_ms()) {
		if (h->cancel && atomic_load(h->cancel))
			return;
		int64_t step = left < 50 ? left : 50;
		struct timespec ts = {step / 1000, (step % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

static int64_t backoff_ms(int attempt, long retry_after_s)
{
	if (retry_after_s > 0)
		return retry_after_s < RETRY_AFTER_MAX_MS / 1000 ? retry_after_s * 1000
		                                                 : RETRY_AFTER_MAX_MS;
	return backoff_delay(BACKOFF_BASE_MS, BACKOFF_MAX_MS, attempt);
}

/* One attempt: 0 with rs->status set, or with err set (no HTTP answer) -1, or -2 when the
 * attempt timed out or was cancelled (not worth repeating). */
static int http_attempt(struct vault_http *h, const struct vault_request *rq, const char *url,
                        struct curl_slist *headers, struct vault_response *rs, long *retry_after,
                        struct ks_err *err)
{
	CURL *c = pool_take(h);
	if (!c) {
		ks_err_set(err, "vault: out of memory (curl handle)");
		return -1;
	}
	buf_reset(&rs->body);
	rs->status = 0;
	CURLcode rc = http_setup(h, c, rq, url, headers, &rs->body);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		if (rc == CURLE_WRITE_ERROR && buf_failed(&rs->body))
			ks_err_set(err, "vault: %s %s: response larger than %zu bytes", rq->method,
			           rq->path, VAULT_HTTP_MAX_BODY);
		else
			ks_err_set(err, "vault: %s %s: %s", rq->method, rq->path,
			           curl_easy_strerror(rc));
		buf_reset(&rs->body);
		pool_give(h, c, false);
		return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_ABORTED_BY_CALLBACK ? -2 : -1;
	}
	curl_off_t ra = 0;
	if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status) != CURLE_OK ||
	    curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK)
		ra = 0;
	*retry_after = (long)ra;
	pool_give(h, c, true);
	return 0;
}

int vault_http_do(struct vault_http *h, const struct vault_request *rq, struct vault_response *rs,
                  struct ks_err *err)
{
	struct buf url, scratch;
	buf_init(&url, 16384);
	buf_init(&scratch, 16384);
	buf_printf(&url, "%s/v1/%s", h->endpoint, rq->path);
	struct curl_slist *headers = http_headers(rq, &scratch);
	int result = KS_UNREACHABLE;
	if (buf_failed(&url) || !headers) {
		ks_err_set(err, "vault: cannot build request for %s", rq->path);
		goto out;
	}
	int tries = rq->no_retry || h->max_retries < 0 ? 1 : h->max_retries + 1;
	for (int attempt = 0; attempt < tries; attempt++) {
		if (attempt > 0 && h->cancel && atomic_load(h->cancel)) {
			ks_err_set(err, "vault: %s %s: cancelled", rq->method, rq->path);
			break;
		}
		long retry_after = 0;
		int got = http_attempt(h, rq, url.data, headers, rs, &retry_after, err);
		if (got == 0) {
			/* Sealed, or a namespace an administrator locked: waiting will not help. */
			bool sealed =
			    rs->status == 503 && (vault_http_error_contains(rs, "sealed") ||
			                          vault_http_error_contains(rs, "locked"));
			if (!status_retryable(rs->status) || sealed || attempt + 1 == tries) {
				result = 0;
				break;
			}
		} else if (got == -2) {
			break;
		}
		if (attempt + 1 < tries)
			http_sleep(h, backoff_ms(attempt, retry_after));
	}
out:
	headers_free(headers);
	buf_free(&url);
	buf_free(&scratch);
	return result;
}

/* Vault's error text: errors[] joined, control characters flattened, bounded. */
static void error_text(const struct vault_response *rs, char *out, size_t n)
{
	out[0] = 0;
	if (rs->body.len == 0)
		return;
	char perr[64];
	struct json_value *v = json_parse(rs->body.data, rs->body.len, perr, sizeof(perr));
	const struct json_value *errs = json_get(v, "errors");
	size_t used = 0;
	for (size_t i = 0; errs && i < json_count(errs) && used + 1 < n; i++) {
		size_t len;
		const char *s = json_string(json_at(errs, i), &len);
		if (!s)
			continue;
		if (used > 0 && used + 2 < n) {
			out[used++] = ';';
			out[used++] = ' ';
		}
		for (size_t j = 0; j < len && used + 1 < n; j++)
			out[used++] = (unsigned char)s[j] < 0x20 ? ' ' : s[j];
	}
	out[used] = 0;
	json_free(v);
}

bool vault_http_error_contains(const struct vault_response *rs, const char *needle)
{
	char text[512];
	error_text(rs, text, sizeof(text));
	return strstr(text, needle) != NULL;
}

void vault_http_error(const struct vault_response *rs, const char *what, const char *path,
                      struct ks_err *err)
{
	char text[200];
	error_text(rs, text, sizeof(text));
	ks_err_set(err, "vault: %s '%s': server responded with %ld%s%s", what, path, rs->status,
	           text[0] ? ": " : "", text);
}

/* ---- probes (multi interface) ---- */

struct probe {
	CURL *c; /* kept between probes: its connection stays in the multi's cache */
	bool running;
	uint64_t id;
	int64_t start_us;
	struct curl_slist *headers;
	struct buf url;
	struct vault_response rs;
};

struct vault_probes {
	struct vault_http *h;
	CURLM *multi;
	struct probe slot[VAULT_PROBES_MAX];
	size_t running;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct vault_probes *vault_probes_new(struct vault_http *h)
{
	struct vault_probes *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->h = h;
	if (!(p->multi = curl_multi_init())) {
		free(p);
		return NULL;
	}
	for (size_t i = 0; i < VAULT_PROBES_MAX; i++) {
		buf_init(&p->slot[i].url, 16384);
		vault_response_init(&p->slot[i].rs);
	}
	return p;
}

static void probe_release(struct vault_probes *p, struct probe *s)
{
	if (s->running) {
		curl_multi_remove_handle(p->multi, s->c);
		s->running = false;
		p->running--;
	}
	curl_slist_free_all(s->headers); /* no token in a probe's headers */
	s->headers = NULL;
}

void vault_probes_free(struct vault_probes *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < VAULT_PROBES_MAX; i++) {
		probe_release(p, &p->slot[i]);
		curl_easy_cleanup(p->slot[i].c);
		buf_free(&p->slot[i].url);
		vault_response_free(&p->slot[i].rs);
	}
	curl_multi_cleanup(p->multi);
	free(p);
}

size_t vault_probes_running(const struct vault_probes *p)
{
	return p->running;
}

int vault_probes_start(struct vault_probes *p, const char *path, uint64_t id)
{
	struct probe *s = NULL;
	for (size_t i = 0; !s && i < VAULT_PROBES_MAX; i++)
		if (!p->slot[i].running)
			s = &p->slot[i];
	if (!s)
		return -1;
	if (s->c)
		curl_easy_reset(s->c);
	else if (!(s->c = curl_easy_init()))
		return -1;
	struct vault_request rq = {.method = "GET", .path = path};
	struct buf scratch;
	buf_init(&scratch, 16384);
	s->headers = http_headers(&rq, &scratch);
	buf_free(&scratch);
	buf_reset(&s->url);
	buf_printf(&s->url, "%s/v1/%s", p->h->endpoint, path);
	buf_reset(&s->rs.body);
	s->rs.status = 0;
	if (!s->headers || buf_failed(&s->url) ||
	    http_setup(p->h, s->c, &rq, s->url.data, s->headers, &s->rs.body) != CURLE_OK ||
	    curl_multi_add_handle(p->multi, s->c) != CURLM_OK) {
		curl_slist_free_all(s->headers);
		s->headers = NULL;
		return -1;
	}
	s->running = true;
	s->id = id;
	s->start_us = now_us();
	p->running++;
	return 0;
}

/* The finished transfer msg as a result; releases its slot. */
static void probe_finish(struct vault_probes *p, const CURLMsg *msg, struct vault_probe_result *out,
                         struct vault_response *rs)
{
	struct probe *s = NULL;
	for (size_t i = 0; !s && i < VAULT_PROBES_MAX; i++)
		if (p->slot[i].running && p->slot[i].c == msg->easy_handle)
			s = &p->slot[i];
	if (!s)
		return;
	memset(out, 0, sizeof(*out));
	out->id = s->id;
	out->latency_us = now_us() - s->start_us;
	buf_reset(&rs->body);
	rs->status = 0;
	CURLcode rc = msg->data.result;
	if (rc == CURLE_OK &&
	    curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &rs->status) == CURLE_OK) {
		out->answered = true;
		buf_append(&rs->body, s->rs.body.data, s->rs.body.len);
	} else {
		ks_err_set(&out->err, "vault: GET %s: %s", s->url.data + strlen(p->h->endpoint) + 4,
		           curl_easy_strerror(rc));
	}
	probe_release(p, s);
}

int vault_probes_run(struct vault_probes *p, int64_t wait_ms, struct vault_probe_result *out,
                     struct vault_response *rs)
{
	for (bool waited = false;; waited = true) {
		int active = 0, left = 0;
		curl_multi_perform(p->multi, &active);
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(p->multi, &left)) != NULL) {
			if (msg->msg == CURLMSG_DONE) {
				probe_finish(p, msg, out, rs);
				return 1;
			}
		}
		if (waited || wait_ms <= 0)
			return 0;
		curl_multi_poll(p->multi, NULL, 0, wait_ms > 60000 ? 60000 : (int)wait_ms, NULL);
	}
}

void vault_probes_wakeup(struct vault_probes *p)
{
	curl_multi_wakeup(p->multi);
}
