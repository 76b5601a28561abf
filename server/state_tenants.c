/*
 * state_tenants.c — the tenant views of a configuration generation (state.h): each tenant's
 * keystore and cache (kept across reloads while its configuration is unchanged), its policy
 * set, the directory that maps every identity to its view, and the creation of the tenants'
 * `keys:` in the background.
 *
 * Opening a tenant makes no network request: an fs tenant opens its directory, a Vault
 * tenant is a layout on the top-level connection whose own login (if any) happens on its own
 * thread. So starting or reloading a thousand tenants costs local work, not a thousand
 * sequential Vault round trips; their keys are created afterwards, a few tenants at a time,
 * and a tenant whose keys cannot be created says so in the log without holding up the others.
 */
#include <mbedtls/sha256.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/key.h"
#include "keystore/vault.h"
#include "server/log.h"
#include "server/state.h"
#include "server/state_internal.h"

/* Threads creating the tenants' keys after a start or reload. */
#define BRINGUP_THREADS 4

struct bringup {
	atomic_size_t next; /* the next tenant to look at */
};

/* Every generation's key threads (a reload may come while the last one's still run): shutdown
 * stops and waits for all of them. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int running;
	atomic_bool stop;
} g_bringup = {.lock = PTHREAD_MUTEX_INITIALIZER, .idle = PTHREAD_COND_INITIALIZER};

/* ---- fingerprints: what a view's keystore and cache depend on ---- */

static void fp_bytes(mbedtls_sha256_context *h, const void *p, size_t n)
{
	uint64_t len = n;
	/* length first, so that ("ab","c") and ("a","bc") differ */
	(void)mbedtls_sha256_update_ret(h, (const unsigned char *)&len, sizeof(len));
	if (n)
		(void)mbedtls_sha256_update_ret(h, p, n);
}

static void fp_str(mbedtls_sha256_context *h, const char *s)
{
	fp_bytes(h, s ? s : "", s ? strlen(s) + 1 : 0); /* NULL and "" differ */
}

static void fp_int(mbedtls_sha256_context *h, int64_t v)
{
	fp_bytes(h, &v, sizeof(v));
}

static void fp_cache(mbedtls_sha256_context *h, const struct ks_cache_config *c)
{
	fp_int(h, c->expiry_any_ms);
	fp_int(h, c->expiry_unused_ms);
	fp_int(h, c->expiry_offline_ms);
	fp_int(h, c->status_interval_ms);
	fp_int(h, (int64_t)c->max_keys);
}

/* Every field of a Vault configuration (secrets too: a new AppRole secret is a new login;
 * only their hash is kept). */
static void fp_vault(mbedtls_sha256_context *h, const struct vault_config *v)
{
	const char *s[] = {v->endpoint,       v->engine,         v->namespace_,  v->prefix,
	                   v->transit_engine, v->transit_key,    v->auth_engine, v->auth_namespace,
	                   v->approle_id,     v->approle_secret, v->k8s_role,    v->k8s_jwt,
	                   v->tls_ca,         v->tls_cert,       v->tls_key};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		fp_str(h, s[i]);
	const int64_t n[] = {v->kv_version,           v->transit,     v->auth,
	                     v->k8s_jwt_is_file,      v->ping_ms,     v->connect_timeout_ms,
	                     v->request_timeout_ms,   v->max_retries, v->allow_unsafe_kv_v1_update,
	                     v->token_switch_delay_ms};
	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		fp_int(h, n[i]);
}

static void fp_begin(mbedtls_sha256_context *h)
{
	mbedtls_sha256_init(h);
	(void)mbedtls_sha256_starts_ret(h, 0);
}

static void fp_end(mbedtls_sha256_context *h, uint8_t out[FINGERPRINT_SIZE])
{
	(void)mbedtls_sha256_finish_ret(h, out);
	mbedtls_sha256_free(h);
}

void state_root_fingerprint(const struct config *cfg, uint8_t out[FINGERPRINT_SIZE])
{
	mbedtls_sha256_context h;
	fp_begin(&h);
	fp_int(&h, cfg->keystore);
	fp_str(&h, cfg->fs_path);
	if (cfg->keystore == CONFIG_KEYSTORE_VAULT)
		fp_vault(&h, &cfg->vault);
	fp_cache(&h, &cfg->cache);
	fp_end(&h, out);
}

/* A Vault tenant lives on the top-level connection: a new top-level store is a new tenant. */
static void tenant_fingerprint(const struct server_state *root, const struct config_tenant *t,
                               uint8_t out[FINGERPRINT_SIZE])
{
	mbedtls_sha256_context h;
	fp_begin(&h);
	fp_int(&h, root->cfg->keystore);
	fp_str(&h, t->name);
	fp_cache(&h, &t->cache);
	if (root->cfg->keystore == CONFIG_KEYSTORE_FS) {
		fp_str(&h, t->fs_path);
	} else if (root->cfg->keystore == CONFIG_KEYSTORE_VAULT) {
		fp_bytes(&h, root->vs->fingerprint, FINGERPRINT_SIZE);
		fp_vault(&h, &t->vault);
		fp_int(&h, t->vault_own_auth);
	}
	fp_end(&h, out);
}

/* ---- view stores ---- */

struct view_store *view_store_new(struct keystore *store, const struct ks_cache_config *cc,
                                  const char *tenant, const uint8_t *fingerprint, char *err,
                                  size_t errlen)
{
	struct view_store *vs = calloc(1, sizeof(*vs));
	if (vs)
		pthread_mutex_init(&vs->status.lock, NULL);
	if (!vs || (tenant && !(vs->tenant = strdup(tenant))) ||
	    (tenant && !(vs->scope = metrics_scope_new()))) {
		keystore_close(store);
		view_store_release(vs);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&vs->refs, 1);
	memcpy(vs->fingerprint, fingerprint, FINGERPRINT_SIZE);
	vs->cache = ks_cache_new(store, cc); /* owns the store, also on failure */
	if (!vs->cache) {
		view_store_release(vs);
		snprintf(err, errlen, "keystore: failed to start the key cache");
		return NULL;
	}
	return vs;
}

void view_store_release(struct view_store *vs)
{
	if (!vs || atomic_fetch_sub(&vs->refs, 1) > 1)
		return;
	if (vs->cache)
		ks_cache_free(vs->cache);
	pthread_mutex_destroy(&vs->status.lock);
	metrics_scope_free(vs->scope);
	free(vs->tenant);
	free(vs);
}

/* The tenant's store, newly opened; NULL with err set. */
static struct keystore *tenant_open(struct server_state *root, const struct config_tenant *t,
                                    char *err, size_t errlen)
{
	struct ks_err kerr = {{0}};
	struct keystore *ks = NULL;
	switch (root->cfg->keystore) {
	case CONFIG_KEYSTORE_FS:
		ks = fs_keystore_open(t->fs_path, &kerr);
		break;
	case CONFIG_KEYSTORE_VAULT:
		ks = vault_keystore_open_tenant(ks_cache_keystore(root->vs->cache), &t->vault,
		                                t->vault_own_auth, t->name, &kerr);
		break;
	case CONFIG_KEYSTORE_MEM: /* tests: a store of its own per tenant */
		ks = mem_keystore_open();
		if (!ks)
			ks_err_set(&kerr, "out of memory");
		break;
	default:
		ks_err_set(&kerr, "no keystore for tenants");
		break;
	}
	if (!ks)
		snprintf(err, errlen, "tenant '%s': keystore: %s", t->name, kerr.msg);
	return ks;
}

/* prev's store of tenant t when its fingerprint is fp: the reload keeps it. */
static struct view_store *tenant_reuse(struct server_state *prev, const char *name,
                                       const uint8_t *fp)
{
	for (size_t i = 0; prev && i < prev->root->tenant_count; i++) {
		struct view_store *vs = prev->root->tenants[i].vs;
		if (vs && strcmp(vs->tenant, name) == 0 &&
		    memcmp(vs->fingerprint, fp, FINGERPRINT_SIZE) == 0) {
			atomic_fetch_add(&vs->refs, 1);
			return vs;
		}
	}
	return NULL;
}

static int tenant_view(struct server_state *root, struct server_state *prev, size_t i, char *err,
                       size_t errlen)
{
	const struct config_tenant *t = &root->cfg->tenants[i];
	struct server_state *v = &root->tenants[i];
	v->root = root;
	v->tenant = t;
	/* No admin in a tenant's policy set: its views show the tenant's identities only. */
	v->policies = state_build_policies("", t->policies, t->policy_count, err, errlen);
	if (!v->policies) {
		char why[256];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "tenant '%s': %s", t->name, why);
		return -1;
	}
	uint8_t fp[FINGERPRINT_SIZE];
	tenant_fingerprint(root, t, fp);
	v->vs = tenant_reuse(prev, t->name, fp);
	if (v->vs)
		return 0;
	struct keystore *ks = tenant_open(root, t, err, errlen);
	if (!ks)
		return -1;
	v->vs = view_store_new(ks, &t->cache, t->name, fp, err, errlen);
	return v->vs ? 0 : -1;
}

/* Every identity of policies (a built policy set ps of the same config) → view which. */
static int directory_add_all(struct identity_directory *d, const struct policy_set *ps,
                             const struct config_policy *policies, size_t count, size_t which)
{
	for (size_t p = 0; p < count; p++) {
		const struct policy *pol = policy_set_find(ps, policies[p].name);
		for (size_t i = 0; pol && i < policies[p].identity_count; i++)
			if (identity_directory_add(d, policies[p].identities[i], which, pol) != 0)
				return -1;
	}
	return 0;
}

static int build_directory(struct server_state *root, char *err, size_t errlen)
{
	const struct config *cfg = root->cfg;
	size_t n = 0;
	for (size_t p = 0; p < cfg->policy_count; p++)
		n += cfg->policies[p].identity_count;
	for (size_t t = 0; t < cfg->tenant_count; t++)
		for (size_t p = 0; p < cfg->tenants[t].policy_count; p++)
			n += cfg->tenants[t].policies[p].identity_count;
	root->directory = identity_directory_new(n);
	int rc = root->directory ? directory_add_all(root->directory, root->policies, cfg->policies,
	                                             cfg->policy_count, 0)
	                         : -1;
	for (size_t t = 0; rc == 0 && t < root->tenant_count; t++)
		rc = directory_add_all(root->directory, root->tenants[t].policies,
		                       cfg->tenants[t].policies, cfg->tenants[t].policy_count,
		                       t + 1);
	if (rc != 0) /* the config loader refuses an identity in two places */
		snprintf(err, errlen, "tenants: cannot build the identity directory");
	return rc;
}

int state_tenants_build(struct server_state *root, struct server_state *prev, char *err,
                        size_t errlen)
{
	const struct config *cfg = root->cfg;
	if (cfg->tenant_count == 0)
		return 0;
	root->tenants = calloc(cfg->tenant_count, sizeof(*root->tenants));
	if (!root->tenants) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->tenant_count; i++) {
		root->tenant_count = i + 1; /* so that state_tenants_free sees it */
		if (tenant_view(root, prev, i, err, errlen) != 0)
			return -1;
	}
	return build_directory(root, err, errlen);
}

void state_tenants_free(struct server_state *root)
{
	for (size_t i = 0; root->tenants && i < root->tenant_count; i++) {
		view_store_release(root->tenants[i].vs);
		if (root->tenants[i].policies)
			policy_set_free(root->tenants[i].policies);
	}
	free(root->tenants);
	root->tenants = NULL;
	root->tenant_count = 0;
	identity_directory_free(root->directory);
	root->directory = NULL;
	free(root->bringup);
	root->bringup = NULL;
}

/* ---- the tenants' keys, in the background ---- */

static void tenant_create_keys(struct server_state *root, struct server_state *v)
{
	const struct config_tenant *t = v->tenant;
	const char *by = root->cfg->admin_identity ? root->cfg->admin_identity : "";
	for (size_t i = 0; i < t->key_count && !atomic_load(&g_bringup.stop); i++) {
		struct ks_err kerr = {{0}};
		struct key_ref ref;
		int rc = ks_cache_get(v->vs->cache, t->keys[i], 0, &ref, &kerr);
		if (rc == KS_OK) {
			key_ref_release(&ref);
			continue;
		}
		struct secret_key *k = NULL;
		if (rc == KS_NOT_FOUND) {
			memset(&kerr, 0, sizeof(kerr));
			rc = key_generate(key_default_algorithm(), by, &k) != 0
			         ? KS_FAILED
			         : ks_cache_create(v->vs->cache, t->keys[i], k, &kerr);
			key_free(k);
		}
		if (rc == KS_DELETED)
			log_warn("tenant '%s': keys: key '%s' is not created now: %s", t->name,
			         t->keys[i], kerr.msg);
		else if (rc != KS_OK && rc != KS_EXISTS)
			log_error("tenant '%s': keys: failed to create key '%s': %s", t->name,
			          t->keys[i], kerr.msg[0] ? kerr.msg : ks_result_name(rc));
	}
}

static void *bringup_main(void *arg)
{
	struct server_state *root = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&root->bringup->next, 1);
		if (i >= root->tenant_count || atomic_load(&g_bringup.stop))
			break;
		if (root->tenants[i].tenant->key_count)
			tenant_create_keys(root, &root->tenants[i]);
	}
	server_state_release(root);
	pthread_mutex_lock(&g_bringup.lock);
	g_bringup.running--;
	pthread_cond_broadcast(&g_bringup.idle);
	pthread_mutex_unlock(&g_bringup.lock);
	return NULL;
}

void state_tenants_start_keys(struct server_state *root)
{
	size_t with_keys = 0;
	for (size_t i = 0; i < root->tenant_count; i++)
		with_keys += root->tenants[i].tenant->key_count > 0;
	if (!with_keys)
		return;
	root->bringup = calloc(1, sizeof(*root->bringup));
	if (!root->bringup) {
		log_error("tenants: out of memory: the tenants' keys: are not created");
		return;
	}
	size_t n = with_keys < BRINGUP_THREADS ? with_keys : BRINGUP_THREADS;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (size_t i = 0; i < n; i++) {
		pthread_t t;
		server_state_retain(root);
		pthread_mutex_lock(&g_bringup.lock);
		g_bringup.running++;
		pthread_mutex_unlock(&g_bringup.lock);
		if (pthread_create(&t, &attr, bringup_main, root) != 0) {
			pthread_mutex_lock(&g_bringup.lock);
			g_bringup.running--;
			pthread_mutex_unlock(&g_bringup.lock);
			server_state_release(root);
			log_error("tenants: cannot start a thread to create the tenants' keys");
			break;
		}
	}
	pthread_attr_destroy(&attr);
}

void server_state_quiesce(struct server_state *st)
{
	(void)st; /* every generation's: an older one may still create keys */
	atomic_store(&g_bringup.stop, true);
	pthread_mutex_lock(&g_bringup.lock);
	while (g_bringup.running > 0)
		pthread_cond_wait(&g_bringup.idle, &g_bringup.lock);
	pthread_mutex_unlock(&g_bringup.lock);
}
