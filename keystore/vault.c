/*
 * vault.c — the Vault keystore: the operations table, authenticated requests, and the
 * health poll that makes operations fail fast while Vault is sealed or unreachable.
 * The K/V layout is in vault_kv.c, transit in vault_transit.c, login/renewal in vault_auth.c.
 */
#include "keystore/vault.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/json.h"
#include "keystore/secmem.h"
#include "keystore/vault_internal.h"

#define DEFAULT_PING_MS            15000
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 15000
#define DEFAULT_MAX_RETRIES        2
/* While sealed or down, poll at least this often so recovery is noticed quickly. */
#define DOWN_POLL_MS 1000

/* The SDK's query: every non-active state answers 299 so the body can always be read. */
#define HEALTH_PATH                                                                    \
	"sys/health?uninitcode=299&sealedcode=299&standbycode=299&drsecondarycode=299" \
	"&performancestandbycode=299"

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void poll_wake(struct vault_store *v)
{
	pthread_mutex_lock(&v->poll_lock);
	pthread_cond_broadcast(&v->poll_wake);
	pthread_mutex_unlock(&v->poll_lock);
}

/* Whether a 403 came from a dead token (rather than a policy that denies the path): Vault
 * ≥1.17 says "invalid token"; older Vault and OpenBao say only "permission denied", so ask
 * lookup-self, which the default policy allows for any live token. */
static bool token_dead(struct vault_store *v, const struct vault_response *rs, const char *token)
{
	if (vault_http_error_contains(rs, "invalid token"))
		return true;
	struct vault_request rq = {.method = "GET",
	                           .path = "auth/token/lookup-self",
	                           .token = token,
	                           .namespace_ = vault_auth_namespace(v->auth),
	                           .no_retry = true};
	struct vault_response probe;
	struct ks_err err;
	vault_response_init(&probe);
	bool dead = vault_http_do(v->http, &rq, &probe, &err) == 0 && probe.status == 403;
	vault_response_free(&probe);
	return dead;
}

static int store_fail_fast(struct vault_store *v, struct ks_err *err)
{
	if (atomic_load(&v->sealed)) {
		ks_err_set(err, "vault: key store is sealed");
		return KS_UNREACHABLE;
	}
	if (atomic_load(&v->down)) {
		ks_err_set(err, "vault: unreachable (health check failing)");
		return KS_UNREACHABLE;
	}
	return 0;
}

int vault_store_call(struct vault_store *v, const struct vault_call *call,
                     struct vault_response *rs, struct ks_err *err)
{
	int rc = store_fail_fast(v, err);
	if (rc != 0)
		return rc;
	char token[VAULT_TOKEN_MAX];
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t gen;
		if (vault_auth_token(v->auth, token, sizeof(token), &gen, v->request_timeout_ms) !=
		    0) {
			ks_err_set(err, "vault: no valid token (login failing)");
			rc = KS_UNREACHABLE;
			break;
		}
		struct vault_request rq = {.method = call->method,
		                           .path = call->path,
		                           .token = token,
		                           .namespace_ = v->namespace_,
		                           .body = call->body,
		                           .body_len = call->body_len};
		if (vault_http_do(v->http, &rq, rs, err) != 0) {
			rc = KS_UNREACHABLE;
			break;
		}
		if (rs->status == 503 && vault_http_error_contains(rs, "sealed")) {
			atomic_store(&v->sealed, true);
			poll_wake(v);
			ks_err_set(err, "vault: key store is sealed");
			rc = KS_UNREACHABLE;
			break;
		}
		if (rs->status == 403 && attempt == 0 && token_dead(v, rs, token)) {
			vault_auth_reject(v->auth, gen);
			continue;
		}
		rc = 0;
		break;
	}
	secure_zero(token, sizeof(token));
	return rc;
}

/* ---- health ---- */

static int health_probe(struct vault_store *v, int64_t *latency_us, struct ks_err *err)
{
	/* Never with the namespace header: Vault rejects it on sys/health (kes#511). */
	struct vault_request rq = {.method = "GET", .path = HEALTH_PATH};
	struct vault_response rs;
	vault_response_init(&rs);
	int64_t start = mono_us();
	int rc = vault_http_do(v->http, &rq, &rs, err);
	*latency_us = mono_us() - start;
	if (rc != 0) {
		atomic_store(&v->down, true);
		goto out;
	}
	atomic_store(&v->down, false);
	char perr[64];
	struct json_value *j = json_parse(rs.body.data, rs.body.len, perr, sizeof(perr));
	if (rs.status < 200 || rs.status > 299 || !j) {
		vault_http_error(&rs, "health check failed", "sys/health", err);
		rc = rs.status >= 500 ? KS_UNREACHABLE : KS_FAILED;
	} else if (!json_bool(json_get(j, "initialized"))) {
		ks_err_set(err, "vault: not initialized");
		rc = KS_UNREACHABLE;
	} else if (json_bool(json_get(j, "sealed"))) {
		ks_err_set(err, "vault: key store is sealed");
		rc = KS_UNREACHABLE;
	}
	atomic_store(&v->sealed, rc == KS_UNREACHABLE);
	json_free(j);
out:
	vault_response_free(&rs);
	return rc;
}

static void *poll_thread(void *arg)
{
	struct vault_store *v = arg;
	while (!atomic_load(&v->stop)) {
		int64_t latency;
		struct ks_err err;
		health_probe(v, &latency, &err);
		int64_t ms = v->ping_ms;
		if ((atomic_load(&v->sealed) || atomic_load(&v->down)) && ms > DOWN_POLL_MS)
			ms = DOWN_POLL_MS;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
		ts.tv_sec += ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_mutex_lock(&v->poll_lock);
		if (!atomic_load(&v->stop))
			pthread_cond_timedwait(&v->poll_wake, &v->poll_lock, &ts);
		pthread_mutex_unlock(&v->poll_lock);
	}
	return NULL;
}

/* ---- operations ---- */

/* The record of a stored value: decrypted if it is a transit ciphertext, decoded if marked. */
static int store_unwrap(struct vault_store *v, struct bytes *value, struct bytes *record,
                        struct ks_err *err)
{
	if (!vault_transit_is_ciphertext(value))
		return vault_record_decode(value, record, err);
	if (!v->transit_key) {
		ks_err_set(
		    err,
		    "vault: key is encrypted with vault transit key but transit is not configured");
		return KS_FAILED;
	}
	return vault_transit_decrypt(v, value, record, err);
}

static int vault_get(void *self, const char *name, struct bytes *record_out, struct ks_err *err)
{
	struct vault_store *v = self;
	struct bytes value = {0};
	int rc = vault_kv_read(v, name, &value, err);
	if (rc == KS_OK)
		rc = store_unwrap(v, &value, record_out, err);
	bytes_free(&value);
	if (rc == KS_OK && record_out->len > KS_MAX_RECORD) {
		bytes_free(record_out);
		ks_err_set(err, "vault: stored record of '%s' is too large", name);
		rc = KS_FAILED;
	}
	return rc;
}

/* After a v2 check-and-set failure: was the winner our own write, answered late and retried? */
static bool store_is_ours(struct vault_store *v, const char *name, const struct bytes *record)
{
	struct bytes got = {0};
	struct ks_err err;
	bool ours = vault_get(v, name, &got, &err) == KS_OK && got.len == record->len &&
	            ct_equal(got.data, record->data, got.len);
	bytes_free(&got);
	return ours;
}

static int vault_create_locked(struct vault_store *v, const char *name, const struct bytes *record,
                               struct ks_err *err)
{
	struct bytes existing = {0}, value = {0};
	/* KES's overwrite protection: K/V v1 has no create-only write, so read first. For v2 the
	 * cas=0 write is the real guard; the read gives the clear answer in the common case. */
	int rc = vault_kv_read(v, name, &existing, err);
	bytes_free(&existing);
	if (rc == KS_OK) {
		ks_err_set(err, "vault: key '%s' already exists", name);
		return KS_EXISTS;
	}
	if (rc != KS_NOT_FOUND)
		return rc;
	if (v->transit_key)
		rc = vault_transit_encrypt(v, record, &value, err);
	else if ((rc = vault_record_encode(record, &value)) != KS_OK)
		ks_err_set(err, "vault: out of memory");
	if (rc == KS_OK)
		rc = vault_kv_write(v, name, &value, err);
	if (rc == KS_EXISTS && store_is_ours(v, name, record))
		rc = KS_OK;
	bytes_free(&value);
	return rc;
}

static pthread_mutex_t *create_lock(struct vault_store *v, const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &v->create_locks[h % VAULT_CREATE_LOCKS];
}

static int vault_create(void *self, const char *name, const struct bytes *record,
                        struct ks_err *err)
{
	struct vault_store *v = self;
	if (v->kv_version == 2) /* cas=0 makes Vault itself the arbiter */
		return vault_create_locked(v, name, record, err);
	pthread_mutex_t *m = create_lock(v, name);
	pthread_mutex_lock(m);
	int rc = vault_create_locked(v, name, record, err);
	pthread_mutex_unlock(m);
	return rc;
}

static int vault_remove(void *self, const char *name, struct ks_err *err)
{
	struct vault_store *v = self;
	struct bytes existing = {0};
	int rc = vault_kv_read(v, name, &existing, err);
	bytes_free(&existing);
	if (rc == KS_NOT_FOUND || rc == KS_UNREACHABLE)
		return rc;
	/* KS_FAILED for a malformed entry still lets the entry be deleted. */
	return vault_kv_delete(v, name, err);
}

static int vault_list(void *self, const char *prefix, struct name_list *out, struct ks_err *err)
{
	struct vault_store *v = self;
	struct name_list all = {0};
	int rc = vault_kv_list(v, &all, err);
	size_t plen = prefix ? strlen(prefix) : 0;
	for (size_t i = 0; rc == KS_OK && i < all.count; i++) {
		if (strncmp(all.names[i], prefix ? prefix : "", plen) != 0)
			continue;
		if (name_list_add(out, all.names[i]) != 0) {
			ks_err_set(err, "vault: out of memory");
			rc = KS_FAILED;
		}
	}
	name_list_free(&all);
	if (rc == KS_OK)
		name_list_sort(out);
	return rc;
}

static int vault_status(void *self, struct ks_status *out, struct ks_err *err)
{
	struct vault_store *v = self;
	int64_t latency = 0;
	int rc = health_probe(v, &latency, err);
	out->latency_us = latency;
	return rc;
}

static void store_free(struct vault_store *v)
{
	vault_http_free(v->http);
	free(v->engine);
	free(v->namespace_);
	free(v->prefix);
	free(v->transit_engine);
	free(v->transit_key);
	pthread_cond_destroy(&v->poll_wake);
	pthread_mutex_destroy(&v->poll_lock);
	for (size_t i = 0; v->create_locks_ready && i < VAULT_CREATE_LOCKS; i++)
		pthread_mutex_destroy(&v->create_locks[i]);
	free(v);
}

static void vault_close(void *self)
{
	struct vault_store *v = self;
	if (!v)
		return;
	atomic_store(&v->stop, true);
	poll_wake(v);
	if (v->poll_started)
		pthread_join(v->poll_thread, NULL);
	vault_auth_stop(v->auth);
	store_free(v);
}

static const struct keystore_ops vault_ops = {
    .name = "vault",
    .create = vault_create,
    .get = vault_get,
    .remove = vault_remove,
    .list = vault_list,
    .status = vault_status,
    .close = vault_close,
};

/* ---- open ---- */

static int config_check(const struct vault_config *cfg, struct ks_err *err)
{
	if (!cfg->endpoint || !*cfg->endpoint)
		ks_err_set(err, "vault: no endpoint specified");
	else if (cfg->kv_version != 0 && cfg->kv_version != 1 && cfg->kv_version != 2)
		ks_err_set(err, "vault: invalid K/V version %d", cfg->kv_version);
	else if (cfg->transit && (!cfg->transit_key || !*cfg->transit_key))
		ks_err_set(err, "vault: invalid transit config: no key name specified");
	else if (cfg->auth != VAULT_AUTH_APPROLE && cfg->auth != VAULT_AUTH_KUBERNETES)
		ks_err_set(err, "vault: no authentication method specified");
	else
		return 0;
	return -1;
}

static char *dup_default(const char *s, const char *def, bool *oom)
{
	const char *src = s && *s ? s : def;
	if (!src)
		return NULL;
	char *d = strdup(src);
	*oom |= d == NULL;
	return d;
}

static struct vault_store *store_new(const struct vault_config *cfg)
{
	struct vault_store *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	pthread_condattr_t ca;
	bool ok = pthread_condattr_init(&ca) == 0;
	ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
	ok = ok && pthread_mutex_init(&v->poll_lock, NULL) == 0;
	ok = ok && pthread_cond_init(&v->poll_wake, &ca) == 0;
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; ok && i < VAULT_CREATE_LOCKS; i++)
		ok = pthread_mutex_init(&v->create_locks[i], NULL) == 0; /* cannot fail on Linux */
	if (!ok) {
		free(v);
		return NULL;
	}
	v->create_locks_ready = true;
	bool oom = false;
	v->engine = dup_default(cfg->engine, "kv", &oom);
	v->kv_version = cfg->kv_version == 2 ? 2 : 1;
	v->namespace_ = dup_default(cfg->namespace_, NULL, &oom);
	v->prefix = dup_default(cfg->prefix, NULL, &oom);
	if (cfg->transit) {
		v->transit_engine = dup_default(cfg->transit_engine, "transit", &oom);
		v->transit_key = dup_default(cfg->transit_key, NULL, &oom);
	}
	v->ping_ms = cfg->ping_ms > 0 ? cfg->ping_ms : DEFAULT_PING_MS;
	v->request_timeout_ms =
	    cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
	if (oom) {
		store_free(v);
		return NULL;
	}
	return v;
}

struct keystore *vault_keystore_open(const struct vault_config *cfg, struct ks_err *err)
{
	if (config_check(cfg, err) != 0)
		return NULL;
	struct keystore *ks = calloc(1, sizeof(*ks));
	struct vault_store *v = ks ? store_new(cfg) : NULL;
	if (!v) {
		free(ks);
		ks_err_set(err, "vault: out of memory");
		return NULL;
	}
	struct vault_http_opts o = {
	    .endpoint = cfg->endpoint,
	    .tls_ca = cfg->tls_ca,
	    .tls_cert = cfg->tls_cert,
	    .tls_key = cfg->tls_key,
	    .connect_timeout_ms =
	        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS,
	    .request_timeout_ms = v->request_timeout_ms,
	    .max_retries = cfg->max_retries < 0 ? DEFAULT_MAX_RETRIES : cfg->max_retries,
	    .cancel = &v->stop,
	};
	if (!(v->http = vault_http_new(&o, err)))
		goto fail;
	if (!(v->auth = vault_auth_start(v->http, cfg, &v->sealed, &v->stop, err)))
		goto fail;
	if (pthread_create(&v->poll_thread, NULL, poll_thread, v) != 0) {
		ks_err_set(err, "vault: cannot start health poll thread");
		goto fail;
	}
	v->poll_started = true;
	ks->ops = &vault_ops;
	ks->self = v;
	return ks;
fail:
	vault_close(v);
	free(ks);
	return NULL;
}
