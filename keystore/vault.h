/*
 * vault.h — the HashiCorp Vault keystore: keys in a K/V v1 or v2 engine, optionally wrapped
 * by a transit key, reached with AppRole or Kubernetes auth, isolated by a K/V prefix or a
 * Vault namespace. The on-Vault layout is KES's (kes.md §5), so kesc and KES can share a Vault.
 */
#ifndef KESC_KEYSTORE_VAULT_H
#define KESC_KEYSTORE_VAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "keystore/keystore.h"

enum vault_auth_method { VAULT_AUTH_APPROLE = 1, VAULT_AUTH_KUBERNETES = 2 };

/* All strings are owned by whoever filled the struct (the config loader). NULL = unset. */
struct vault_config {
	char *endpoint;   /* required, e.g. https://127.0.0.1:8200 */
	char *engine;     /* K/V mount, default "kv" */
	int kv_version;   /* 1 (default) or 2 */
	char *namespace_; /* X-Vault-Namespace for K/V, transit and token calls */
	char *prefix;     /* key "directory" inside the engine */

	bool transit;         /* transit section present */
	char *transit_engine; /* default "transit" */
	char *transit_key;    /* required when transit */

	enum vault_auth_method auth;
	char *auth_engine;    /* default "approle" / "kubernetes" */
	char *auth_namespace; /* "" or NULL = store namespace; "/" = root namespace */
	char *approle_id;
	char *approle_secret;
	char *k8s_role;
	char *k8s_jwt;        /* the JWT itself, or a path to it when k8s_jwt_is_file */
	bool k8s_jwt_is_file; /* KES: the value contains '/' → a file re-read at every login */

	char *tls_ca;   /* file or directory; NULL = system store */
	char *tls_cert; /* client certificate for mTLS to Vault */
	char *tls_key;

	int64_t ping_ms;            /* status poll interval; 0 → 15000 as KES effectively does */
	int64_t connect_timeout_ms; /* 0 → 5000 (kesc extension) */
	int64_t request_timeout_ms; /* one attempt; 0 → 15000 (kesc extension) */
	int max_retries; /* retries on 5xx/429/connection errors (not timeouts); <0 → 2 */
	bool allow_unsafe_kv_v1_update; /* start even if the token may overwrite K/V v1 keys
	                                   (kesc extension; see vault_caps.c) */
	int64_t token_switch_delay_ms;  /* wait before using a token from a new login, so Vault
	                                   replicas know it (kesc extension; capped at half the old
	                                   token's remaining life): 0 → 1000, <0 → none */
};

/*
 * remove: Vault answers a DELETE with 204 whether or not the entry existed, so it cannot say
 * "not found" by itself (KES never returns 404 for a Vault delete). kesc reads the entry
 * first and returns KS_NOT_FOUND when it is absent; a concurrent delete between the read and
 * the DELETE still returns KS_OK.
 * Sealed or unreachable Vault (seen by a request or by the health poll every ping_ms, every
 * second while down) makes every operation fail fast with KS_UNREACHABLE until a probe
 * succeeds; each change is logged once (vault_health.c).
 * create never overwrites: K/V v2 writes with cas=0; K/V v1 reads first, serialises creates of
 * one name inside the process (across reloads too), and relies on a policy without "update"
 * (as KES documents) to make Vault refuse an overwrite by another process — a 403 on a name
 * that now exists is KS_EXISTS. Because that guard is only as good as the policy, open and
 * every create on v1 ask Vault whether the token may update the key path and refuse if so,
 * unless allow_unsafe_kv_v1_update. When a write's outcome is unknown (no answer, or a 5xx
 * other than "sealed"), create reads the key back: exactly our value means KS_OK.
 * Records are stored verbatim (KES's layout) when they are plain text, which every record KES
 * writes is; other bytes, which a JSON string cannot carry, are stored as "kesc:base64:…".
 * Transit ciphertexts of any key version (vault:vN:) are read and accepted on write.
 */

/* Connects and logs in synchronously (a bad secret is a start-up error, in err), then starts
 * background renewal and health polling. Returns NULL on failure. */
struct keystore *vault_keystore_open(const struct vault_config *cfg, struct ks_err *err);

/*
 * A tenant's store on the connection of primary (a store from vault_keystore_open, which it
 * keeps alive until it is closed itself): Vault's address, TLS, connection pool and health
 * monitor are shared; cfg's engine, namespace, prefix and transit key are the tenant's. With
 * own_login the tenant logs in with cfg's credentials on a thread of its own (the first login
 * happens there too, so opening makes no request); else it uses primary's token, which then
 * needs a policy for the tenant's paths (a token of a parent namespace reaches a child
 * namespace if its policy names the child's paths).
 * Isolation: a 503 "sealed" or "locked" from the tenant's namespace makes this tenant alone
 * fail fast, one request per second testing whether it is back, while the shared health
 * monitor decides about Vault as a whole; a tenant whose login fails fails at once, without
 * waiting for a token. What it logs starts with "tenant '<tenant>'". No K/V v1 grant check at
 * open (every create checks its own path). NULL with err on failure.
 */
struct keystore *vault_keystore_open_tenant(struct keystore *primary,
                                            const struct vault_config *cfg, bool own_login,
                                            const char *tenant, struct ks_err *err);

#endif
