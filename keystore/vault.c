/*
 * vault.c — the Vault keystore: the operations table and authenticated requests.
 * The K/V layout is in vault_kv.c, transit in vault_transit.c, login/renewal in vault_auth.c,
 * the health monitor that makes operations fail fast while Vault is sealed or unreachable in
 * vault_health.c, the check that the token cannot overwrite K/V v1 keys in vault_caps.c.
 */
#include "keystore/vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/json.h"
#include "keystore/secmem.h"
#include "keystore/tombstone.h"
#include "keystore/vault_internal.h"

#define DEFAULT_PING_MS            15000
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_REQUEST_TIMEOUT_MS 15000
#define DEFAULT_MAX_RETRIES        2
/* K/V v1 creates of one name are serialised in this process, striped by a hash of the key's
 * Vault path. The stripes are process-wide, not per store: a SIGHUP opens a new store while
 * creates on the old one may still run, and the two must not both write a name. */
#define CREATE_LOCKS 64

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
	struct vault_http *http = v->conn ? v->conn->http : v->http;
	bool dead = vault_http_do(http, &rq, &probe, &err) == 0 && probe.status == 403;
	vault_response_free(&probe);
	return dead;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How often a tenant whose namespace is sealed or locked lets a request through to see. */
#define TENANT_RETRY_MS 1000

/* A tenant's namespace answered "sealed" or "locked" (Vault itself may be fine: OpenBao seals
 * namespaces one by one, Vault Enterprise locks them): this tenant alone fails fast. */
static void tenant_down(struct vault_store *v, const struct vault_response *rs)
{
	struct ks_err why;
	vault_http_error(rs, "namespace unavailable at", v->namespace_ ? v->namespace_ : "/", &why);
	pthread_mutex_lock(&v->health_lock);
	bool was = atomic_exchange(&v->ns_down, true);
	int64_t now = now_ms();
	v->ns_retry_ms = now + TENANT_RETRY_MS;
	if (!was)
		v->ns_since_ms = now;
	snprintf(v->ns_reason, sizeof(v->ns_reason), "%s", why.msg);
	pthread_mutex_unlock(&v->health_lock);
	if (!was)
		ks_log("%s; its requests fail fast until it answers again", why.msg);
}

static void tenant_up(struct vault_store *v)
{
	pthread_mutex_lock(&v->health_lock);
	bool was = atomic_exchange(&v->ns_down, false);
	int64_t for_ms = now_ms() - v->ns_since_ms;
	pthread_mutex_unlock(&v->health_lock);
	if (was)
		ks_log("vault: namespace '%s' answers again (was unavailable for %lld.%01lld s)",
		       v->namespace_ ? v->namespace_ : "/", (long long)(for_ms / 1000),
		       (long long)(for_ms % 1000 / 100));
}

/* While the tenant's namespace is down: fail fast, except one request per TENANT_RETRY_MS,
 * which goes through (*probe) to find out. */
static int tenant_gate(struct vault_store *v, bool *probe, struct ks_err *err)
{
	*probe = false;
	if (!atomic_load(&v->ns_down))
		return 0;
	int rc = 0;
	pthread_mutex_lock(&v->health_lock);
	int64_t now = now_ms();
	if (atomic_load(&v->ns_down) && now < v->ns_retry_ms) {
		ks_err_set(err, "%s", v->ns_reason);
		rc = KS_UNREACHABLE;
	} else if (atomic_load(&v->ns_down)) {
		v->ns_retry_ms = now + TENANT_RETRY_MS;
		*probe = true;
	}
	pthread_mutex_unlock(&v->health_lock);
	return rc;
}

/* No token: for a tenant with its own login, say why the login fails. */
static void no_token(struct vault_store *v, struct ks_err *err)
{
	char why[sizeof(((struct ks_err *)0)->msg)] = "";
	if (v->own_auth)
		vault_auth_failure(v->auth, why, sizeof(why));
	if (why[0])
		ks_err_set(err, "vault: no valid token (%s)", why);
	else
		ks_err_set(err, "vault: no valid token (login failing)");
}

int vault_store_call(struct vault_store *v, const struct vault_call *call,
                     struct vault_response *rs, struct ks_err *err)
{
	struct vault_store *c = v->conn ? v->conn : v; /* the connection */
	int rc = vault_health_fail_fast(c, err);
	bool probe = false;
	if (rc != 0 || (v->conn && (rc = tenant_gate(v, &probe, err)) != 0))
		return rc;
	char token[VAULT_TOKEN_MAX];
	for (int attempt = 0; attempt < 2; attempt++) {
		uint64_t gen;
		if (vault_auth_token(v->auth, token, sizeof(token), &gen, v->request_timeout_ms) !=
		    0) {
			no_token(v, err);
			rc = KS_UNREACHABLE;
			break;
		}
		struct vault_request rq = {.method = call->method,
		                           .path = call->path,
		                           .token = token,
		                           .namespace_ = call->token_namespace
		                                             ? vault_auth_namespace(v->auth)
		                                             : v->namespace_,
		                           .body = call->body,
		                           .body_len = call->body_len};
		if (vault_http_do(c->http, &rq, rs, err) != 0) {
			vault_health_poke(c);
			rc = KS_UNREACHABLE;
			break;
		}
		if (v->conn && rs->status == 503 &&
		    (vault_http_error_contains(rs, "sealed") ||
		     vault_http_error_contains(rs, "locked"))) {
			/* The tenant's namespace, or all of Vault: the health probe tells. */
			tenant_down(v, rs);
			vault_health_poke(c);
			ks_err_set(err, "%s", v->ns_reason);
			rc = KS_UNREACHABLE;
			probe = false;
			break;
		}
		if (rs->status == 503 && vault_http_error_contains(rs, "sealed")) {
			vault_health_saw_sealed(c);
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
	if (probe && rc == 0)
		tenant_up(v);
	return rc;
}

/* ---- operations ---- */

/* A plain tombstone whose key (a scheduled deletion's) is a transit ciphertext: the same
 * tombstone with the key decrypted, into record. KS_NOT_FOUND when value is no such thing. */
static int unwrap_tombstone_key(struct vault_store *v, const struct bytes *value,
                                struct bytes *record, struct ks_err *err)
{
	struct bytes wrapped = {0}, key = {0};
	struct tombstone t;
	int rc = KS_NOT_FOUND;

	if (!tombstone_parse(value->data, value->len, &t) ||
	    tombstone_key(value->data, value->len, &wrapped) != 0)
		return KS_NOT_FOUND;
	if (vault_transit_is_ciphertext(&wrapped)) {
		if (!v->transit_key) {
			ks_err_set(err,
			           "vault: a deleted key is encrypted with a vault transit key "
			           "but transit is not configured");
			rc = KS_FAILED;
		} else if ((rc = vault_transit_decrypt(v, &wrapped, &key, err)) == KS_OK &&
		           tombstone_encode_with_key(&t, &key, record) != 0) {
			ks_err_set(err, "vault: cannot read a deleted key's tombstone");
			rc = KS_FAILED;
		}
	}
	bytes_free(&wrapped);
	bytes_free(&key);
	return rc;
}

int vault_store_unwrap(struct vault_store *v, struct bytes *value, struct bytes *record,
                       struct ks_err *err)
{
	if (!vault_transit_is_ciphertext(value)) {
		int rc = unwrap_tombstone_key(v, value, record, err);

		return rc == KS_NOT_FOUND ? vault_record_decode(value, record, err) : rc;
	}
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
		rc = vault_store_unwrap(v, &value, record_out, err);
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

/*
 * The write's answer was lost or was a server error, so Vault may have stored it anyway
 * (issue 10 §3: a create answered 500 had in fact been stored). Read back: exactly the value
 * we wrote (our record with its fresh random key, or our transit ciphertext with its random
 * nonce) means the create took effect. Anything else — absent, another value, no answer —
 * leaves the failure standing: never report success for someone else's key.
 */
static int create_read_back(struct vault_store *v, const char *name, const struct bytes *value,
                            int rc, struct ks_err *err)
{
	struct bytes got = {0};
	struct ks_err rerr;
	int r = vault_kv_read(v, name, &got, &rerr);
	bool ours = r == KS_OK && got.len == value->len && ct_equal(got.data, value->data, got.len);
	bytes_free(&got);
	if (ours) {
		ks_log("vault: create of '%s': %s; read back: the key was stored, create succeeded",
		       name, err->msg);
		return KS_OK;
	}
	if (r == KS_OK)
		ks_log("vault: create of '%s': %s; read back: another value is stored there", name,
		       err->msg);
	return rc;
}

/* A scheduled deletion: the tombstone stays plain text (an operator reads it with `vault kv
 * get`, and a list tells it from a key without transit), the key it carries is wrapped.
 * KS_NOT_FOUND when record is no tombstone carrying a key. */
static int wrap_tombstone_key(struct vault_store *v, const struct bytes *record,
                              struct bytes *value, struct ks_err *err)
{
	struct bytes key = {0}, wrapped = {0};
	struct tombstone t;
	int rc;

	if (!tombstone_parse(record->data, record->len, &t) ||
	    tombstone_key(record->data, record->len, &key) != 0)
		return KS_NOT_FOUND;
	rc = vault_transit_encrypt(v, &key, &wrapped, err);
	if (rc == KS_OK && tombstone_encode_with_key(&t, &wrapped, value) != 0) {
		ks_err_set(err, "vault: cannot write a deleted key's tombstone");
		rc = KS_FAILED;
	}
	bytes_free(&key);
	bytes_free(&wrapped);
	return rc;
}

int vault_store_wrap(struct vault_store *v, const struct bytes *record, struct bytes *value,
                     struct ks_err *err)
{
	int rc;
	struct tombstone t;

	if (v->transit_key) {
		rc = wrap_tombstone_key(v, record, value, err);
		if (rc != KS_NOT_FOUND)
			return rc;
		/* A tombstone without a key holds no secret: plain, as the delete writes it. */
		if (!tombstone_parse(record->data, record->len, &t))
			return vault_transit_encrypt(v, record, value, err);
	}
	if ((rc = vault_record_encode(record, value)) != KS_OK)
		ks_err_set(err, "vault: out of memory");
	return rc;
}

static int vault_create_locked(struct vault_store *v, const char *name, const struct bytes *record,
                               struct ks_err *err)
{
	struct bytes value = {0};
	int64_t cas = 0;
	/* KES's overwrite protection: K/V v1 has no create-only write, so read first. For v2 the
	 * cas write is the real guard; the read gives the clear answer in the common case, and
	 * the version of an expired tombstone to write over (vault_tomb.c). */
	int rc = vault_tomb_create_check(v, name, &cas, err);
	if (rc != KS_OK)
		return rc;
	/* v1: a token that may update could overwrite another server's key (vault_caps.c). */
	if ((rc = vault_caps_check(v, name, err)) != KS_OK)
		return rc;
	rc = vault_store_wrap(v, record, &value, err);
	bool maybe_stored = false;
	if (rc == KS_OK && cas > 0)
		rc = vault_kv_write_cas(v, name, &value, cas, &maybe_stored, err);
	else if (rc == KS_OK)
		rc = vault_kv_write(v, name, &value, &maybe_stored, err);
	if (rc == KS_EXISTS && store_is_ours(v, name, record))
		rc = KS_OK;
	else if (rc != KS_OK && maybe_stored)
		rc = create_read_back(v, name, &value, rc, err);
	bytes_free(&value);
	return rc;
}

static pthread_mutex_t create_locks[CREATE_LOCKS];
static pthread_once_t create_locks_once = PTHREAD_ONCE_INIT;

static void create_locks_init(void)
{
	for (size_t i = 0; i < CREATE_LOCKS; i++)
		pthread_mutex_init(&create_locks[i], NULL); /* cannot fail on Linux */
}

/* The stripe of a key, by its namespace and full K/V path: the same for every store (every
 * configuration generation) that writes that Vault entry, whatever the endpoint is called. */
pthread_mutex_t *vault_create_lock(const struct vault_store *v, const char *path)
{
	pthread_once(&create_locks_once, create_locks_init);
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = v->namespace_ ? v->namespace_ : ""; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ '\n') * 16777619u;
	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h ^= h >> 16; /* FNV's low bits see only the low bits of each byte */
	return &create_locks[h % CREATE_LOCKS];
}

static int vault_create(void *self, const char *name, const struct bytes *record,
                        struct ks_err *err)
{
	struct vault_store *v = self;
	if (v->kv_version == 2) /* cas=0 makes Vault itself the arbiter */
		return vault_create_locked(v, name, record, err);
	char path[VAULT_PATH_MAX];
	int rc = vault_kv_path(v, name, path, sizeof(path), err);
	if (rc != KS_OK)
		return rc;
	pthread_mutex_t *m = vault_create_lock(v, path);
	pthread_mutex_lock(m);
	rc = vault_create_locked(v, name, record, err);
	pthread_mutex_unlock(m);
	return rc;
}

static int vault_remove(void *self, const char *name, const struct bytes *tombstone,
                        struct ks_err *err)
{
	struct vault_store *v = self;
	if (v->kv_version == 2)
		return vault_tomb_remove(v, name, tombstone, err);
	/* v1 deletes, then writes the tombstone: no create of this process in between. */
	char path[VAULT_PATH_MAX];
	int rc = vault_kv_path(v, name, path, sizeof(path), err);
	if (rc != KS_OK)
		return rc;
	pthread_mutex_t *m = vault_create_lock(v, path);
	pthread_mutex_lock(m);
	rc = vault_tomb_remove(v, name, tombstone, err);
	pthread_mutex_unlock(m);
	return rc;
}

/* For a list: the stored value tells a key from a tombstone (plain text, never wrapped: a
 * scheduled deletion wraps only the key it carries), so no transit decryption is needed. */
static int vault_holds_key(void *self, const char *name, bool *key, struct ks_err *err)
{
	struct vault_store *v = self;
	struct bytes value = {0};
	struct tombstone t;
	int rc = vault_kv_read(v, name, &value, err);
	*key = rc == KS_OK && !tombstone_parse(value.data, value.len, &t);
	bytes_free(&value);
	return rc;
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

/* A tenant's status costs Vault nothing while all is well: the connection's health monitor
 * knows whether Vault is up, the tenant whether its login and namespace work. While the
 * namespace is down, the probe is a list of the tenant's own keys (which its policy grants). */
static int tenant_status(struct vault_store *v, struct ks_status *out, struct ks_err *err)
{
	int rc = vault_health_fail_fast(v->conn, err);
	if (rc != 0)
		return rc;
	char why[sizeof(((struct ks_err *)0)->msg)] = "";
	if (v->own_auth)
		vault_auth_failure(v->auth, why, sizeof(why));
	if (why[0]) {
		ks_err_set(err, "vault: no valid token (%s)", why);
		return KS_UNREACHABLE;
	}
	out->latency_us = atomic_load(&v->conn->health_latency_us);
	if (!atomic_load(&v->ns_down))
		return KS_OK;
	struct name_list names = {0};
	int64_t t0 = now_ms();
	rc = vault_kv_list(v, &names, err);
	name_list_free(&names);
	out->latency_us = (now_ms() - t0) * 1000;
	return rc == KS_OK || rc == KS_NOT_FOUND ? KS_OK : rc;
}

static int vault_status(void *self, struct ks_status *out, struct ks_err *err)
{
	struct vault_store *v = self;
	if (v->conn)
		return tenant_status(v, out, err);
	return vault_health_status(self, out, err);
}

static void store_free(struct vault_store *v)
{
	if (!v->conn)
		vault_http_free(v->http);
	free(v->tag);
	free(v->engine);
	free(v->namespace_);
	free(v->prefix);
	free(v->transit_engine);
	free(v->transit_key);
	pthread_mutex_destroy(&v->health_lock);
	free(v);
}

/* A connection ends when its last user (itself, or a tenant on it) closes. */
static void connection_release(struct vault_store *v)
{
	if (atomic_fetch_sub(&v->users, 1) != 1)
		return;
	atomic_store(&v->stop, true);
	/* The auth thread first: its login hook may poke the health monitor. */
	vault_auth_stop(v->auth);
	vault_health_stop(v);
	store_free(v);
}

static void vault_close(void *self)
{
	struct vault_store *v = self;
	if (!v)
		return;
	if (!v->conn) {
		connection_release(v);
		return;
	}
	atomic_store(&v->stop, true);
	if (v->own_auth)
		vault_auth_stop(v->auth);
	struct vault_store *conn = v->conn;
	store_free(v);
	connection_release(conn);
}

static const struct keystore_ops vault_ops = {
    .name = "vault",
    .create = vault_create,
    .get = vault_get,
    .remove = vault_remove,
    .list = vault_list,
    .status = vault_status,
    .close = vault_close,
    .holds_key = vault_holds_key,
    .replace = vault_replace,
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
	if (pthread_mutex_init(&v->health_lock, NULL) != 0) {
		free(v);
		return NULL;
	}
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
	v->allow_v1_update = cfg->allow_unsafe_kv_v1_update;
	if (oom) {
		store_free(v);
		return NULL;
	}
	return v;
}

/* After every re-login: the new token may come with other policies. Creates check the grant
 * of their own path anyway; this says so in the log as soon as it is known. */
static void store_on_login(void *arg)
{
	struct vault_store *v = arg;
	struct ks_err err = {{0}};
	if (vault_caps_check(v, NULL, &err) == KS_FAILED)
		ks_log("%s", err.msg);
}

/* At start-up, on a v1 mount: refuse a token that may overwrite keys. */
static int store_check_grant(struct vault_store *v, struct ks_err *err)
{
	if (v->kv_version != 1)
		return 0;
	if (v->allow_v1_update) {
		ks_log(
		    "vault: keystore.vault.allow_unsafe_kv_v1_update is set: kesc does not check "
		    "whether its token may overwrite keys on the K/V v1 mount '%s'; two servers "
		    "creating the same key can silently replace each other's key",
		    v->engine);
		return 0;
	}
	return vault_caps_check(v, NULL, err) == KS_OK ? 0 : -1;
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
	if (!(v->auth =
	          vault_auth_start(v->http, cfg, &v->sealed, &v->stop, store_on_login, v, err)))
		goto fail;
	if (store_check_grant(v, err) != 0 || vault_health_start(v, err) != 0)
		goto fail;
	atomic_init(&v->users, 1);
	ks->ops = &vault_ops;
	ks->self = v;
	return ks;
fail:
	atomic_init(&v->users, 1);
	vault_close(v);
	free(ks);
	return NULL;
}

struct keystore *vault_keystore_open_tenant(struct keystore *primary,
                                            const struct vault_config *cfg, bool own_login,
                                            const char *tenant, struct ks_err *err)
{
	if (!primary || primary->ops != &vault_ops) {
		ks_err_set(err, "vault: a tenant needs the top-level vault keystore");
		return NULL;
	}
	struct vault_store *conn = primary->self;
	if (conn->conn)
		conn = conn->conn; /* a tenant of a tenant is on the same connection */
	if (config_check(cfg, err) != 0)
		return NULL;
	struct keystore *ks = calloc(1, sizeof(*ks));
	struct vault_store *v = ks ? store_new(cfg) : NULL;
	char *tag = v ? strdup(tenant) : NULL;
	if (!tag) {
		if (v)
			store_free(v);
		free(ks);
		ks_err_set(err, "vault: out of memory");
		return NULL;
	}
	v->tag = tag;
	atomic_fetch_add(&conn->users, 1);
	v->conn = conn;
	v->http = conn->http;
	v->own_auth = own_login;
	v->auth = conn->auth;
	/* Its own login runs on its own thread: opening a thousand tenants makes no request. */
	if (own_login &&
	    !(v->auth = vault_auth_start_deferred(conn->http, cfg, &conn->sealed, &v->stop,
	                                          store_on_login, v, tag, err))) {
		v->own_auth = false;
		vault_close(v);
		free(ks);
		return NULL;
	}
	ks->ops = &vault_ops;
	ks->self = v;
	return ks;
}
