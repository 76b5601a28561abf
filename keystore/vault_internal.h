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
#define VAULT_PATH_MAX 2048

struct vault_auth;

/* What the health monitor last concluded (vault_health.c). */
enum vault_health_state { VAULT_HEALTH_UP, VAULT_HEALTH_SEALED, VAULT_HEALTH_DOWN };

struct vault_store {
	struct vault_http *http; /* a tenant's is its connection's */
	struct vault_auth *auth; /* a tenant's own, or its connection's token */

	/* Tenants (vault_keystore_open_tenant): conn is the store whose connection (HTTP pool,
	 * health monitor, token unless own_auth) this one uses, and holds a reference on it; a
	 * connection (conn NULL) is freed when its last user closes. */
	struct vault_store *conn;
	atomic_int users;
	bool own_auth;
	char *tag; /* the tenant's name (keystore_thread_tag of its threads); NULL: a connection */
	/* A tenant's namespace that answered "sealed" or "locked" while Vault itself is up: this
	 * store alone fails fast, and lets one request through per second to see whether it is
	 * back (vault.c, tenant_gate). Guarded by health_lock. */
	atomic_bool ns_down;
	int64_t ns_retry_ms;
	int64_t ns_since_ms;
	char ns_reason[sizeof(((struct ks_err *)0)->msg)];

	char *engine;
	int kv_version;
	char *namespace_; /* NULL = none */
	char *prefix;     /* NULL = none */
	char *transit_engine;
	char *transit_key; /* NULL = no transit */
	int64_t ping_ms;
	int64_t request_timeout_ms;
	bool allow_v1_update; /* the operator accepts a token that may overwrite K/V v1 keys */

	atomic_bool stop;   /* set by close: threads end, transfers are cancelled */
	atomic_bool sealed; /* health is VAULT_HEALTH_SEALED: fail fast, the auth thread pauses */
	atomic_bool down;   /* health is VAULT_HEALTH_DOWN: fail fast */

	/* The health monitor (vault_health.c). */
	pthread_t poll_thread;
	bool poll_started;
	struct vault_probes *probes; /* owned by the poll thread once it runs */
	atomic_bool poll_wake;       /* probe now (a request saw a failure) */
	_Atomic uint64_t probe_seq;  /* numbers every health observation in start order */
	pthread_mutex_t health_lock; /* guards the fields below */
	enum vault_health_state health;
	uint64_t health_seq; /* of the observation health comes from: older ones are stale */
	int64_t health_since_ms;
	_Atomic int64_t health_latency_us; /* of the last probe that Vault answered */
	char health_reason[sizeof(
	    ((struct ks_err *)0)->msg)]; /* why not up (no secrets: Vault's or libcurl's words) */
};

/* ---- vault.c: one authenticated request ---- */

struct vault_call {
	const char *method;
	const char *path;
	const char *body;
	size_t body_len;
	bool token_namespace; /* send to the token's namespace instead of the store's */
};

/*
 * Sends an authenticated request with the store namespace. Fails fast with KS_UNREACHABLE
 * while Vault is known to be sealed or down; on a 403 caused by a dead token it has the auth
 * thread log in again and retries once. Returns 0 when Vault answered (status in rs; a 503
 * "sealed" answer is already turned into KS_UNREACHABLE), else a KS_* code with err set.
 */
int vault_store_call(struct vault_store *v, const struct vault_call *call,
                     struct vault_response *rs, struct ks_err *err);

/* The record of a stored value: decrypted if it is a transit ciphertext, decoded if marked,
 * and a scheduled deletion with its key decrypted. value may be consumed (moved into record). */
int vault_store_unwrap(struct vault_store *v, struct bytes *value, struct bytes *record,
                       struct ks_err *err);
/* The value to store for record: its transit ciphertext when transit is configured, else
 * vault_record_encode's form. Tombstones stay plain text; a scheduled deletion's key is wrapped
 * inside it. */
int vault_store_wrap(struct vault_store *v, const struct bytes *record, struct bytes *value,
                     struct ks_err *err);
/* The process-wide lock that serialises writes of one K/V v1 entry (creates, deletes, and
 * replaces where the operator allows them). */
pthread_mutex_t *vault_create_lock(const struct vault_store *v, const char *path);

/* ---- vault_replace.c ---- */

/* The store's replace (keystore.h). K/V v2: read the latest version n, compare, write with
 * cas=n, then destroy versions 1..n (KES reads version 1: it must not find a key there that is
 * no longer the key). K/V v1: only with allow_unsafe_kv_v1_update (serialised in this process,
 * not across servers), else KS_FAILED saying why. */
int vault_replace(void *self, const char *name, const struct bytes *expected,
                  const struct bytes *record, struct ks_err *err);

/* ---- vault_health.c: is Vault up, sealed or down? ---- */

/* Starts the monitor thread (probes sys/health every ping_ms; while Vault is sealed or down,
 * a new probe every second even while older ones still wait for an answer). 0 or -1. */
int vault_health_start(struct vault_store *v, struct ks_err *err);
/* Stops the thread (the caller has set v->stop). */
void vault_health_stop(struct vault_store *v);
/* KS_UNREACHABLE with the reason while Vault is known to be sealed or down, else 0. */
int vault_health_fail_fast(struct vault_store *v, struct ks_err *err);
/* A request saw Vault sealed: record it (logged once) and probe now. */
void vault_health_saw_sealed(struct vault_store *v);
/* A request got no answer: probe now (the probe decides whether Vault is down). */
void vault_health_poke(struct vault_store *v);
/* The status operation: fail fast while not up, else one probe now (its latency in out). */
int vault_health_status(struct vault_store *v, struct ks_status *out, struct ks_err *err);
/* What a sys/health answer says (a 4xx is not an outage); reason (n bytes) filled when not
 * up. */
enum vault_health_state vault_health_judge(const struct vault_response *rs, char *reason, size_t n);

/* ---- vault_caps.c ---- */

/* On K/V v1 (unless the operator opted in), refuses with KS_FAILED and an operator-readable
 * reason when the token's policy grants "update" (or root) on the K/V path of name (NULL: a
 * sample name), since Vault would then let another server overwrite the key; also fails when
 * Vault cannot be asked. KS_OK when writes cannot overwrite. */
int vault_caps_check(struct vault_store *v, const char *name, struct ks_err *err);
/* Whether a capabilities-self answer grants path "update" (or "root"). KS_OK with *update
 * set, or KS_FAILED when the answer has no capability list for path. */
int vault_caps_parse(const char *body, size_t len, const char *path, bool *update,
                     struct ks_err *err);

/* ---- vault_kv.c: the K/V layout (KES's) ---- */

/* The path a key's value is written to (v1: engine/prefix/name, v2: engine/data/prefix/name). */
int vault_kv_path(const struct vault_store *v, const char *name, char *out, size_t n,
                  struct ks_err *err);

/* Go path.Join of the NULL-terminated parts into out, each segment percent-escaped; empty
 * and "." segments vanish, ".." removes the previous one. 0, or -1 if it does not fit. */
int vault_path_join(char *out, size_t n, const char *const *parts);

/* A name is one plain path segment (no '/', not "." or "..", printable ASCII). */
bool vault_name_valid(const char *name);

/* Read the stored string of key name. KS_OK (value filled, caller bytes_free's it),
 * KS_NOT_FOUND, or another KS_* code with err. */
int vault_kv_read(struct vault_store *v, const char *name, struct bytes *value, struct ks_err *err);
/* Create-only write of value. KS_OK, KS_EXISTS (v2 check-and-set lost), or an error; on an
 * error *maybe_stored says whether the write may still have taken effect (no answer, or a
 * 5xx other than "sealed"), so the caller must read back before it answers. */
int vault_kv_write(struct vault_store *v, const char *name, const struct bytes *value,
                   bool *maybe_stored, struct ks_err *err);
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

/* K/V v2 reads and writes that know versions (for vault_tomb.c). */
/* data.metadata.version of a v2 read answer (also a 404 for a deleted version): 0 or -1. */
int vault_kv_parse_version(const char *body, size_t len, int64_t *version);
/* As vault_kv_read, and *version is the latest version (v2; 0 for v1 and for no entry). A
 * latest version that is deleted or destroyed is KS_NOT_FOUND with its version. A value that
 * cannot be read is KS_FAILED, with the version when Vault said it. */
int vault_kv_read_entry(struct vault_store *v, const char *name, struct bytes *value,
                        int64_t *version, struct ks_err *err);
/* v2 write with check-and-set cas (the current version, or 0 for a new entry): KS_OK,
 * KS_EXISTS when the version is no longer cas, KS_FAILED (403: the token may not update;
 * err says so) or another error; *maybe_stored as for vault_kv_write. */
int vault_kv_write_cas(struct vault_store *v, const char *name, const struct bytes *value,
                       int64_t cas, bool *maybe_stored, struct ks_err *err);
/* v2: destroys versions 1..upto of name (at most the last 1024 of them); nothing if upto < 1. */
int vault_kv_destroy(struct vault_store *v, const char *name, int64_t upto, struct ks_err *err);

/* ---- vault_tomb.c: deletes that leave tombstones ---- */

/* Before a create: may the name take a new key? KS_OK with *cas = the version to write over
 * (0: a new entry), KS_EXISTS, KS_DELETED (a tombstone that has not expired, or any tombstone
 * on K/V v1), or an error. */
int vault_tomb_create_check(struct vault_store *v, const char *name, int64_t *cas,
                            struct ks_err *err);
/* The store's remove (keystore.h): the key becomes the tombstone. On K/V v1 the caller holds
 * the name's create lock. */
int vault_tomb_remove(struct vault_store *v, const char *name, const struct bytes *tombstone,
                      struct ks_err *err);

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

/* Called on the auth thread after every login that replaced the token (not after the first,
 * synchronous one, nor after a renewal of the same token). */
typedef void (*vault_login_hook)(void *arg);

/* Logs in synchronously (err: "vault: approle login failed: …"), then starts the renewal
 * thread. The thread pauses while *sealed and ends when *stop is set (and the cond woken by
 * vault_auth_stop). */
struct vault_auth *vault_auth_start(struct vault_http *http, const struct vault_config *cfg,
                                    const atomic_bool *sealed, const atomic_bool *stop,
                                    vault_login_hook on_login, void *hook_arg, struct ks_err *err);
/* The same without the synchronous login: the thread logs in first (at most a few logins of
 * all deferred auths run at once, so a thousand tenants do not hit Vault together), logs
 * failures (with tag as its keystore_thread_tag) and retries them. Requests wait for the first token, but once a
 * login has failed, vault_auth_token fails at once until one succeeds: a tenant whose
 * credentials Vault refuses does not hold workers the other tenants need. */
struct vault_auth *vault_auth_start_deferred(struct vault_http *http,
                                             const struct vault_config *cfg,
                                             const atomic_bool *sealed, const atomic_bool *stop,
                                             vault_login_hook on_login, void *hook_arg,
                                             const char *tag, struct ks_err *err);
/* Why the last login failed ("" while logins succeed), into out. */
void vault_auth_failure(struct vault_auth *a, char *out, size_t n);
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
