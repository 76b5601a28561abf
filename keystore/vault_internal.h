/*
 * vault_internal.h — what the parts of the Vault keystore share: the store state, the
 * authenticated request helper (vault.c), the K/V layout (vault_kv.c), transit wrapping
 * (vault_transit.c) and login/renewal (vault_auth.c). Private to keystore/vault*.c.
 */
#ifndef KESC_KEYSTORE_VAULT_INTERNAL_H
#define KESC_KEYSTORE_VAULT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "keystore/bytes.h"
#include "keystore/keystore.h"
#include "keystore/vault.h"
#include "keystore/vault_http.h"

/* Longest Vault token accepted (tokens are opaque; hvs. tokens are ~100 bytes). */
#define VAULT_TOKEN_MAX 2048
/* Longest path below /v1/ we build. */
#define VAULT_PATH_MAX     2048
#define VAULT_CREATE_LOCKS 64

struct vault_auth;

struct vault_store {
	struct vault_http *http;
	struct vault_auth *auth;

	char *engine;
	int kv_version;
	char *namespace_; /* NULL = none */
	char *prefix;     /* NULL = none */
	char *transit_engine;
	char *transit_key; /* NULL = no transit */
	int64_t ping_ms;
	int64_t request_timeout_ms;

	atomic_bool stop;   /* set by close: threads end, transfers are cancelled */
	atomic_bool sealed; /* last health poll (or a request) saw Vault sealed */
	atomic_bool down;   /* last health poll got no answer */
	pthread_mutex_t poll_lock;
	pthread_cond_t poll_wake;
	pthread_t poll_thread;
	bool poll_started;
	/* K/V v1 has no create-only write: creates of the same name are serialised in this
	 * process (striped by name hash). Writers in other processes can still race (as in KES). */
	pthread_mutex_t create_locks[VAULT_CREATE_LOCKS];
	bool create_locks_ready;
};

/* ---- vault.c: one authenticated request ---- */

struct vault_call {
	const char *method;
	const char *path;
	const char *body;
	size_t body_len;
};

/*
 * Sends an authenticated request with the store namespace. Fails fast with KS_UNREACHABLE
 * while Vault is known to be sealed or down; on a 403 caused by a dead token it has the auth
 * thread log in again and retries once. Returns 0 when Vault answered (status in rs; a 503
 * "sealed" answer is already turned into KS_UNREACHABLE), else a KS_* code with err set.
 */
int vault_store_call(struct vault_store *v, const struct vault_call *call,
                     struct vault_response *rs, struct ks_err *err);

/* ---- vault_kv.c: the K/V layout (KES's) ---- */

/* Go path.Join of the NULL-terminated parts into out, each segment percent-escaped; empty
 * and "." segments vanish, ".." removes the previous one. 0, or -1 if it does not fit. */
int vault_path_join(char *out, size_t n, const char *const *parts);

/* A name is one plain path segment (no '/', not "." or "..", printable ASCII). */
bool vault_name_valid(const char *name);

/* Read the stored string of key name. KS_OK (value filled, caller bytes_free's it),
 * KS_NOT_FOUND, or another KS_* code with err. */
int vault_kv_read(struct vault_store *v, const char *name, struct bytes *value, struct ks_err *err);
/* Create-only write of value. KS_OK, KS_EXISTS (v2 check-and-set lost), or an error. */
int vault_kv_write(struct vault_store *v, const char *name, const struct bytes *value,
                   struct ks_err *err);
int vault_kv_delete(struct vault_store *v, const char *name, struct ks_err *err);
/* The value of field name in a K/V read response body (v1 data, v2 data.data). KS_NOT_FOUND
 * for a deleted v2 version. */
int vault_kv_parse_read(int kv_version, const char *name, const char *body, size_t len,
                        struct bytes *value, struct ks_err *err);
/* The keys (folders skipped) of a list response body, appended to out. */
int vault_kv_parse_list(const char *body, size_t len, const char *path, struct name_list *out,
                        struct ks_err *err);
/* Every entry directly below the prefix (folders skipped), unsorted; 404 → empty. */
int vault_kv_list(struct vault_store *v, struct name_list *out, struct ks_err *err);

/* ---- vault_transit.c ---- */

/* plaintext → "vault:vN:…" (into out). */
int vault_transit_encrypt(struct vault_store *v, const struct bytes *plain, struct bytes *out,
                          struct ks_err *err);
/* "vault:vN:…" → plaintext. */
int vault_transit_decrypt(struct vault_store *v, const struct bytes *ciphertext, struct bytes *out,
                          struct ks_err *err);
/* Whether a stored value is a transit ciphertext ("vault:v<digits>:"). */
bool vault_transit_is_ciphertext(const struct bytes *value);

/* Record ↔ K/V string value without transit: verbatim for plain text (every record KES
 * writes), RAW_MARKER + base64 for anything a JSON string cannot carry or that would be
 * misread. decode moves value into record when it is verbatim. */
int vault_record_encode(const struct bytes *record, struct bytes *value);
int vault_record_decode(struct bytes *value, struct bytes *record, struct ks_err *err);

/* ---- vault_auth.c ---- */

/* Logs in synchronously (err: "vault: approle login failed: …"), then starts the renewal
 * thread. The thread pauses while *sealed and ends when *stop is set (and the cond woken by
 * vault_auth_stop). */
struct vault_auth *vault_auth_start(struct vault_http *http, const struct vault_config *cfg,
                                    const atomic_bool *sealed, const atomic_bool *stop,
                                    struct ks_err *err);
/* Copies the current token into out. When no valid token exists, waits up to wait_ms for the
 * auth thread to get one. *generation identifies the token for vault_auth_reject. 0 or -1. */
int vault_auth_token(struct vault_auth *a, char *out, size_t outlen, uint64_t *generation,
                     int64_t wait_ms);
/* Vault refused token `generation` as invalid: log in again now (if it is still current). */
void vault_auth_reject(struct vault_auth *a, uint64_t generation);
/* auth.{client_token, lease_duration, renewable} of a login or renew-self answer. 0 or -1. */
int vault_auth_parse(const char *body, size_t len, char *token, size_t token_len, int64_t *ttl_s,
                     bool *renewable);
/* The namespace the token was issued in (NULL = root): token calls go there. */
const char *vault_auth_namespace(const struct vault_auth *a);
/* Stops the thread (caller has set *stop), zeroes the token and credentials, frees. */
void vault_auth_stop(struct vault_auth *a);

#endif
