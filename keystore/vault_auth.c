/*
 * vault_auth.c — logging in to Vault (AppRole, Kubernetes) and keeping a valid token.
 *
 * The renewal thread follows KES's final algorithm (kes#428, #481, #488, #501, #504):
 *   - renew at 80% of the token's TTL with renew-self, up to 3 tries (no retry on a 4xx);
 *   - if the token is not renewable, renewal failed, or the renewed TTL stopped growing,
 *     log in again; a failed login is retried every 3 s;
 *   - a token from a new login replaces the old one only after a short delay (bounded by half
 *     the old token's remaining life), so Vault replicas can learn about it first;
 *   - nothing happens while Vault is sealed.
 * Request threads copy the current token under a mutex (a few hundred bytes, never held across
 * I/O) and only wait when no valid token exists. When Vault rejects a token, a request thread
 * calls vault_auth_reject: the thread logs in at once and switches without delay (the old
 * token is dead anyway).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystore/json.h"
#include "keystore/secmem.h"
#include "keystore/vault_internal.h"

#define RENEW_TRIES             3
#define LOGIN_RETRY_MS          3000
#define SEALED_PAUSE_MS         1000
#define DEFAULT_SWITCH_DELAY_MS 1000
#define JWT_FILE_MAX            (64 * 1024)

struct vault_auth {
	struct vault_http *http;
	enum vault_auth_method method;
	char *engine;
	char *login_namespace; /* NULL = root; also where the token lives, so renew-self and
	                          lookup-self go there (KES sends the store namespace, which
	                          fails when the token came from another namespace) */
	char *role_id;
	char *secret_id; /* zeroed on free */
	char *k8s_role;
	char *k8s_jwt; /* the JWT or its file; zeroed on free */
	bool k8s_jwt_is_file;
	int64_t switch_delay_ms;
	const atomic_bool *sealed;
	const atomic_bool *stop;
	vault_login_hook on_login;
	void *hook_arg;

	pthread_mutex_t lock;
	pthread_cond_t changed; /* token replaced or stop: for waiting request threads */
	pthread_cond_t wake;    /* relogin requested or stop: for the auth thread */
	char token[VAULT_TOKEN_MAX];
	bool token_valid;
	uint64_t generation;
	bool relogin;
	pthread_t thread;
	bool started;
	int64_t init_ttl_s; /* lease of the synchronous first login, handed to the thread */
	bool init_renewable;

	/* vault_auth_start_deferred: the thread logs in first; what it logs starts with tag. */
	bool deferred;
	char *tag;
	bool login_failed; /* the last login failed (guarded by lock) */
	char failure[sizeof(((struct ks_err *)0)->msg)]; /* why (Vault's or libcurl's words) */
};

/* Deferred logins running at once, process-wide: a thousand tenants starting together reach
 * Vault a few at a time. */
#define DEFERRED_LOGINS_MAX 8
static pthread_mutex_t login_slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t login_slots_free = PTHREAD_COND_INITIALIZER;
static int login_slots_used;

struct login_result {
	char token[VAULT_TOKEN_MAX];
	int64_t ttl_s;
	bool renewable;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on cond until deadline (monotonic ms; <0 = none). Call with a->lock held. */
static void wait_until(struct vault_auth *a, pthread_cond_t *cond, int64_t deadline)
{
	if (deadline < 0) {
		pthread_cond_wait(cond, &a->lock);
		return;
	}
	struct timespec ts = {deadline / 1000, (deadline % 1000) * 1000000};
	pthread_cond_timedwait(cond, &a->lock, &ts);
}

/* Sleeps ms unless stop or a relogin request comes first. Returns true if woken early. */
static bool auth_sleep(struct vault_auth *a, int64_t ms)
{
	int64_t deadline = mono_ms() + ms;
	bool early = false;
	pthread_mutex_lock(&a->lock);
	while (!atomic_load(a->stop) && !a->relogin && mono_ms() < deadline)
		wait_until(a, &a->wake, deadline);
	early = atomic_load(a->stop) || a->relogin;
	pthread_mutex_unlock(&a->lock);
	return early;
}

static void auth_set_token(struct vault_auth *a, const char *token)
{
	pthread_mutex_lock(&a->lock);
	secure_zero(a->token, sizeof(a->token));
	snprintf(a->token, sizeof(a->token), "%s", token);
	a->token_valid = true;
	a->generation++;
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->lock);
}

static const char *method_name(const struct vault_auth *a)
{
	return a->method == VAULT_AUTH_KUBERNETES ? "kubernetes" : "approle";
}

/* The service-account token: the configured value, or the file re-read now (projected tokens
 * rotate, kes#491). */
static int auth_read_jwt(const struct vault_auth *a, struct buf *out, struct ks_err *err)
{
	if (!a->k8s_jwt_is_file) {
		buf_append_str(out, a->k8s_jwt);
		return 0;
	}
	FILE *f = fopen(a->k8s_jwt, "rb");
	if (!f) {
		ks_err_set(err, "vault: kubernetes login failed: cannot read JWT file '%s': %s",
		           a->k8s_jwt, strerror(errno));
		return -1;
	}
	/* Unbuffered: stdio's buffer would keep a copy of the token in freed memory. */
	setvbuf(f, NULL, _IONBF, 0);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(out, chunk, n);
	secure_zero(chunk, sizeof(chunk));
	int bad = ferror(f) || buf_failed(out);
	fclose(f);
	while (out->len > 0 && (out->data[out->len - 1] == '\n' ||
	                        out->data[out->len - 1] == '\r' || out->data[out->len - 1] == ' '))
		out->data[--out->len] = 0;
	if (bad || out->len == 0) {
		ks_err_set(err,
		           "vault: kubernetes login failed: JWT file '%s' is unreadable or empty",
		           a->k8s_jwt);
		return -1;
	}
	return 0;
}

static int auth_login_body(const struct vault_auth *a, struct buf *body, struct ks_err *err)
{
	struct json_writer w;
	json_writer_init(&w, body);
	json_object_begin(&w);
	if (a->method == VAULT_AUTH_KUBERNETES) {
		struct buf jwt;
		buf_init(&jwt, JWT_FILE_MAX);
		if (auth_read_jwt(a, &jwt, err) != 0) {
			buf_free(&jwt);
			return -1;
		}
		json_key(&w, "role");
		json_write_string(&w, a->k8s_role);
		json_key(&w, "jwt");
		json_write_string_n(&w, jwt.data, jwt.len);
		buf_free(&jwt);
	} else {
		json_key(&w, "role_id");
		json_write_string(&w, a->role_id);
		json_key(&w, "secret_id");
		json_write_string(&w, a->secret_id);
	}
	json_object_end(&w);
	if (buf_failed(body)) {
		ks_err_set(err, "vault: %s login failed: cannot encode request", method_name(a));
		return -1;
	}
	return 0;
}

/* A lease longer than ten years is as good as none, and keeps ms arithmetic safe. */
#define VAULT_TTL_MAX_S (10LL * 365 * 24 * 3600)

int vault_auth_parse(const char *body, size_t len, char *token, size_t token_len, int64_t *ttl_s,
                     bool *renewable)
{
	char perr[64];
	struct json_value *j = json_parse(body, len, perr, sizeof(perr));
	const struct json_value *auth = json_get(j, "auth");
	size_t n;
	const char *tok = json_string(json_get(auth, "client_token"), &n);
	const char *ttl = json_number(json_get(auth, "lease_duration"));
	int rc = -1;
	if (tok && n > 0 && n < token_len && strlen(tok) == n) {
		memcpy(token, tok, n + 1);
		*ttl_s = ttl ? strtoll(ttl, NULL, 10) : 0;
		if (*ttl_s < 0)
			*ttl_s = 0;
		if (*ttl_s > VAULT_TTL_MAX_S)
			*ttl_s = VAULT_TTL_MAX_S;
		*renewable = json_bool(json_get(auth, "renewable"));
		rc = 0;
	}
	json_free(j);
	return rc;
}

static int auth_parse(const struct vault_response *rs, struct login_result *r)
{
	return vault_auth_parse(rs->body.data, rs->body.len, r->token, sizeof(r->token), &r->ttl_s,
	                        &r->renewable);
}

static int auth_login(struct vault_auth *a, struct login_result *r, struct ks_err *err)
{
	char path[VAULT_PATH_MAX];
	const char *parts[] = {"auth", a->engine, "login", NULL};
	struct buf body;
	buf_init(&body, JWT_FILE_MAX * 2);
	struct vault_response rs;
	vault_response_init(&rs);
	int rc = -1;
	if (vault_path_join(path, sizeof(path), parts) != 0 || auth_login_body(a, &body, err) != 0)
		goto out;
	struct vault_request rq = {.method = "PUT",
	                           .path = path,
	                           .namespace_ = a->login_namespace,
	                           .body = body.data,
	                           .body_len = body.len};
	struct ks_err net;
	if (vault_http_do(a->http, &rq, &rs, &net) != 0) {
		ks_err_set(err, "vault: %s login failed: %s", method_name(a), net.msg);
		goto out;
	}
	if (rs.status != 200) {
		vault_http_error(&rs, "login failed at", path, &net);
		ks_err_set(err, "vault: %s login failed: %s", method_name(a), net.msg);
		goto out;
	}
	if (auth_parse(&rs, r) != 0) {
		ks_err_set(err, "vault: %s login failed: Vault returned no token", method_name(a));
		goto out;
	}
	rc = 0;
out:
	buf_free(&body);
	vault_response_free(&rs);
	return rc;
}

/* renew-self with the current token; up to RENEW_TRIES, stopping at a 4xx. */
static int auth_renew(struct vault_auth *a, struct login_result *r)
{
	char token[VAULT_TOKEN_MAX];
	pthread_mutex_lock(&a->lock);
	memcpy(token, a->token, sizeof(token));
	pthread_mutex_unlock(&a->lock);
	struct vault_request rq = {.method = "POST",
	                           .path = "auth/token/renew-self",
	                           .token = token,
	                           .namespace_ = a->login_namespace,
	                           .body = "{}",
	                           .body_len = 2,
	                           .no_retry = true};
	int rc = -1;
	for (int i = 0; i < RENEW_TRIES && rc != 0 && !atomic_load(a->stop); i++) {
		struct vault_response rs;
		struct ks_err err;
		vault_response_init(&rs);
		if (vault_http_do(a->http, &rq, &rs, &err) == 0) {
			if (rs.status == 200 && auth_parse(&rs, r) == 0)
				rc = 0;
			else if (rs.status >= 400 && rs.status < 500)
				i = RENEW_TRIES; /* refused (not renewable, expired): retrying won't
				                    help */
		}
		vault_response_free(&rs);
		if (rc != 0 && i + 1 < RENEW_TRIES)
			auth_sleep(a, 1000);
	}
	secure_zero(token, sizeof(token));
	return rc;
}

static void login_slot_take(const struct vault_auth *a)
{
	pthread_mutex_lock(&login_slots_lock);
	while (login_slots_used >= DEFERRED_LOGINS_MAX && !atomic_load(a->stop))
		pthread_cond_wait(&login_slots_free, &login_slots_lock);
	login_slots_used++;
	pthread_mutex_unlock(&login_slots_lock);
}

static void login_slot_give(void)
{
	pthread_mutex_lock(&login_slots_lock);
	login_slots_used--;
	pthread_cond_signal(&login_slots_free);
	pthread_mutex_unlock(&login_slots_lock);
}

/* Remembers whether the last login worked; logs the change back to working once. */
static void auth_note_login(struct vault_auth *a, bool ok, const char *why)
{
	pthread_mutex_lock(&a->lock);
	bool was_failing = a->login_failed;
	a->login_failed = !ok;
	snprintf(a->failure, sizeof(a->failure), "%s", ok ? "" : why);
	if (!ok)
		pthread_cond_broadcast(&a->changed); /* waiting requests give up now */
	pthread_mutex_unlock(&a->lock);
	if (ok && was_failing)
		ks_log("vault: %s login works again", method_name(a));
}

/* auth_login for the background thread: a failure has no caller, so it goes to the log. */
static int auth_login_logged(struct vault_auth *a, struct login_result *r, struct ks_err *err)
{
	if (a->deferred)
		login_slot_take(a);
	int rc = auth_login(a, r, err);
	if (a->deferred) {
		login_slot_give();
		auth_note_login(a, rc == 0, err->msg);
	}
	if (rc != 0)
		ks_log("%s", err->msg);
	return rc;
}

/* Logs in after a rejected token (or with no token): switch at once. */
static bool auth_relogin_now(struct vault_auth *a, int64_t *ttl_s, bool *renewable, int64_t *since)
{
	struct login_result r = {0};
	struct ks_err err;
	bool ok = auth_login_logged(a, &r, &err) == 0;
	if (ok) {
		auth_set_token(a, r.token);
		*ttl_s = r.ttl_s;
		*renewable = r.renewable;
		*since = mono_ms();
	}
	secure_zero(&r, sizeof(r));
	if (ok && a->on_login)
		a->on_login(a->hook_arg);
	return ok;
}

/* One renewal cycle at 80% of ttl: renew, or log in and switch after the delay. Returns false
 * if no new lease was obtained (the caller then logs in every LOGIN_RETRY_MS). */
static bool auth_cycle(struct vault_auth *a, int64_t *ttl_s, bool *renewable, int64_t *since)
{
	int64_t renew_at = *since + *ttl_s * 800;
	if (auth_sleep(a, renew_at - mono_ms()))
		return true; /* stop or relogin request: the loop handles it */
	if (atomic_load(a->sealed))
		return true;
	struct login_result r = {0};
	struct ks_err err;
	bool ok = false;
	if (*renewable && auth_renew(a, &r) == 0 && r.ttl_s * 2 >= *ttl_s) {
		/* Same token, longer life: nothing to switch. */
		*ttl_s = r.ttl_s;
		*renewable = r.renewable;
		*since = mono_ms();
		ok = true;
	} else if (auth_login_logged(a, &r, &err) == 0) {
		int64_t left = *since + *ttl_s * 1000 - mono_ms();
		int64_t delay = a->switch_delay_ms < left / 2 ? a->switch_delay_ms : left / 2;
		if (delay > 0)
			auth_sleep(a, delay);
		auth_set_token(a, r.token);
		*ttl_s = r.ttl_s;
		*renewable = r.renewable;
		*since = mono_ms();
		ok = true;
		if (a->on_login)
			a->on_login(a->hook_arg);
	}
	secure_zero(&r, sizeof(r));
	return ok;
}

static bool auth_take_relogin(struct vault_auth *a)
{
	pthread_mutex_lock(&a->lock);
	bool r = a->relogin;
	a->relogin = false;
	pthread_mutex_unlock(&a->lock);
	return r;
}

static void *auth_thread(void *arg)
{
	struct vault_auth *a = arg;
	keystore_thread_tag_set(a->tag); /* a tenant's: what it logs names the tenant */
	int64_t ttl_s = 0, since = mono_ms();
	bool renewable = false, need_login = a->deferred; /* deferred: no token yet */
	ttl_s = a->init_ttl_s;
	renewable = a->init_renewable;
	while (!atomic_load(a->stop)) {
		if (atomic_load(a->sealed)) {
			auth_sleep(a, SEALED_PAUSE_MS);
			continue;
		}
		if (auth_take_relogin(a) || need_login) {
			need_login = !auth_relogin_now(a, &ttl_s, &renewable, &since);
			if (need_login)
				auth_sleep(a, LOGIN_RETRY_MS);
			continue;
		}
		if (ttl_s == 0) { /* a token that never expires: only a rejection wakes us */
			auth_sleep(a, 60 * 1000);
			continue;
		}
		need_login = !auth_cycle(a, &ttl_s, &renewable, &since);
		if (need_login)
			auth_sleep(a, LOGIN_RETRY_MS);
	}
	return NULL;
}

static void auth_free(struct vault_auth *a)
{
	if (!a)
		return;
	secure_zero(a->token, sizeof(a->token));
	if (a->secret_id)
		secure_zero(a->secret_id, strlen(a->secret_id));
	if (a->k8s_jwt)
		secure_zero(a->k8s_jwt, strlen(a->k8s_jwt));
	free(a->engine);
	free(a->login_namespace);
	free(a->role_id);
	free(a->secret_id);
	free(a->k8s_role);
	free(a->k8s_jwt);
	free(a->tag);
	pthread_cond_destroy(&a->changed);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static char *dup_opt(const char *s, bool *oom)
{
	if (!s || !*s)
		return NULL;
	char *d = strdup(s);
	*oom |= d == NULL;
	return d;
}

static int auth_init_sync(struct vault_auth *a)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0)
		return -1;
	int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0 && pthread_mutex_init(&a->lock, NULL) != 0)
		rc = -1;
	if (rc == 0 && pthread_cond_init(&a->changed, &ca) != 0)
		rc = -1;
	if (rc == 0 && pthread_cond_init(&a->wake, &ca) != 0)
		rc = -1;
	pthread_condattr_destroy(&ca);
	return rc;
}

/* Copies what the thread needs out of the config (the loader owns cfg). */
static int auth_copy_config(struct vault_auth *a, const struct vault_config *cfg)
{
	bool oom = false;
	bool k8s = cfg->auth == VAULT_AUTH_KUBERNETES;
	a->method = k8s ? VAULT_AUTH_KUBERNETES : VAULT_AUTH_APPROLE;
	a->engine =
	    strdup(cfg->auth_engine && *cfg->auth_engine ? cfg->auth_engine
	                                                 : (k8s ? "kubernetes" : "approle"));
	oom |= a->engine == NULL;
	/* "/" = the root namespace (no header); unset = the store's namespace. */
	const char *ns = cfg->auth_namespace;
	if (!ns || !*ns)
		ns = cfg->namespace_;
	else if (strcmp(ns, "/") == 0)
		ns = NULL;
	a->login_namespace = dup_opt(ns, &oom);
	a->role_id = dup_opt(cfg->approle_id, &oom);
	a->secret_id = dup_opt(cfg->approle_secret, &oom);
	a->k8s_role = dup_opt(cfg->k8s_role, &oom);
	a->k8s_jwt = dup_opt(cfg->k8s_jwt, &oom);
	a->k8s_jwt_is_file = cfg->k8s_jwt_is_file;
	a->switch_delay_ms = cfg->token_switch_delay_ms == 0  ? DEFAULT_SWITCH_DELAY_MS
	                     : cfg->token_switch_delay_ms < 0 ? 0
	                                                      : cfg->token_switch_delay_ms;
	return oom ? -1 : 0;
}

static bool auth_credentials_present(const struct vault_auth *a)
{
	if (a->method == VAULT_AUTH_KUBERNETES)
		return a->k8s_role && a->k8s_jwt;
	return a->role_id && a->secret_id;
}

struct vault_auth *vault_auth_start(struct vault_http *http, const struct vault_config *cfg,
                                    const atomic_bool *sealed, const atomic_bool *stop,
                                    vault_login_hook on_login, void *hook_arg, struct ks_err *err)
{
	struct vault_auth *a = calloc(1, sizeof(*a));
	if (!a || auth_init_sync(a) != 0) {
		free(a);
		ks_err_set(err, "vault: out of memory");
		return NULL;
	}
	a->http = http;
	a->sealed = sealed;
	a->stop = stop;
	a->on_login = on_login;
	a->hook_arg = hook_arg;
	struct login_result r = {0};
	if (auth_copy_config(a, cfg) != 0) {
		ks_err_set(err, "vault: out of memory");
		goto fail;
	}
	if (!auth_credentials_present(a)) {
		ks_err_set(err, "vault: %s login failed: no credentials configured",
		           method_name(a));
		goto fail;
	}
	if (auth_login(a, &r, err) != 0)
		goto fail;
	auth_set_token(a, r.token);
	a->init_ttl_s = r.ttl_s;
	a->init_renewable = r.renewable;
	secure_zero(&r, sizeof(r));
	if (pthread_create(&a->thread, NULL, auth_thread, a) != 0) {
		ks_err_set(err, "vault: cannot start token renewal thread");
		goto fail;
	}
	a->started = true;
	return a;
fail:
	secure_zero(&r, sizeof(r));
	auth_free(a);
	return NULL;
}

/* The renewal thread of a started auth; 0 or -1 (err set). */
static int auth_thread_start(struct vault_auth *a, struct ks_err *err)
{
	if (pthread_create(&a->thread, NULL, auth_thread, a) != 0) {
		ks_err_set(err, "vault: cannot start token renewal thread");
		return -1;
	}
	a->started = true;
	return 0;
}

struct vault_auth *vault_auth_start_deferred(struct vault_http *http,
                                             const struct vault_config *cfg,
                                             const atomic_bool *sealed, const atomic_bool *stop,
                                             vault_login_hook on_login, void *hook_arg,
                                             const char *tag, struct ks_err *err)
{
	struct vault_auth *a = calloc(1, sizeof(*a));
	if (!a || auth_init_sync(a) != 0) {
		free(a);
		ks_err_set(err, "vault: out of memory");
		return NULL;
	}
	a->http = http;
	a->sealed = sealed;
	a->stop = stop;
	a->on_login = on_login;
	a->hook_arg = hook_arg;
	a->deferred = true;
	if (auth_copy_config(a, cfg) != 0 || (tag && !(a->tag = strdup(tag)))) {
		ks_err_set(err, "vault: out of memory");
		auth_free(a);
		return NULL;
	}
	if (!auth_credentials_present(a)) {
		ks_err_set(err, "vault: %s login failed: no credentials configured",
		           method_name(a));
		auth_free(a);
		return NULL;
	}
	if (auth_thread_start(a, err) != 0) {
		auth_free(a);
		return NULL;
	}
	return a;
}

void vault_auth_failure(struct vault_auth *a, char *out, size_t n)
{
	pthread_mutex_lock(&a->lock);
	snprintf(out, n, "%s", a->login_failed ? a->failure : "");
	pthread_mutex_unlock(&a->lock);
}

int vault_auth_token(struct vault_auth *a, char *out, size_t outlen, uint64_t *generation,
                     int64_t wait_ms)
{
	int64_t deadline = mono_ms() + wait_ms;
	int rc = -1;
	pthread_mutex_lock(&a->lock);
	/* A deferred login that failed: no use waiting for the next try (3 s away at best). */
	while (!a->token_valid && !a->login_failed && !atomic_load(a->stop) && mono_ms() < deadline)
		wait_until(a, &a->changed, deadline);
	if (a->token_valid && strlen(a->token) < outlen) {
		memcpy(out, a->token, strlen(a->token) + 1);
		*generation = a->generation;
		rc = 0;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void vault_auth_reject(struct vault_auth *a, uint64_t generation)
{
	pthread_mutex_lock(&a->lock);
	if (a->generation == generation && a->token_valid) {
		a->token_valid = false;
		a->relogin = true;
		pthread_cond_signal(&a->wake);
	}
	pthread_mutex_unlock(&a->lock);
}

void vault_auth_stop(struct vault_auth *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	pthread_cond_broadcast(&a->wake);
	pthread_cond_broadcast(&a->changed);
	pthread_mutex_unlock(&a->lock);
	if (a->started)
		pthread_join(a->thread, NULL);
	auth_free(a);
}

const char *vault_auth_namespace(const struct vault_auth *a)
{
	return a->login_namespace;
}
