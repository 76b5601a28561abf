/*
 * config.h — the server configuration, read from KES's YAML format (kes.md §4, Appendix A/B)
 * with libyaml, so an existing KES config.yml works unchanged.
 *
 * ${ENV} substitution works as in KES: a whole scalar "${NAME}" is replaced by the variable's
 * value, for the fields KES allows it on; an unset variable is an error. Errors name the file,
 * line and field ("config.yml:12: keystore.vault.approle: no approle ID specified").
 *
 * Fail closed: a key the schema does not know is an error (KES ignores it silently, so a typo
 * such as "atuh: on" would run the server without the check it asks for). The error lists
 * every unknown field with its line and the nearest known key, joined by "; ". The schema is
 * KES's whole schema, the keystores kesc does not serve included. Accepted with a warning:
 * the old `root:` spelling of the admin identity, fields older KES versions defined that KES
 * HEAD ignores (vault approle/kubernetes `retry`, gemalto credentials `retry`), `tls.ca`
 * without `tls.auth: on` (the CA is unused) and `tls.proxy` identities (parsed as KES does,
 * never used, so a proxy is an ordinary client). An `api:` key that names no route kesc
 * serves is not a config error: KES ignores it, and the server warns (server/config_check.c).
 *
 * ${ENV} applies to every value except `version`, `policy.*.allow`, `policy.*.deny` and the
 * `api` path keys. Spaces around the scalar and inside the braces are ignored; "x-${A}" is
 * literal; a variable that is set but empty counts as an empty value (for optional fields,
 * as if absent). Durations use Go syntax ("1h30m", "300ms", "0"); a bare number such as "30"
 * is refused. Booleans: true/false/on/off/yes/no, any case. YAML aliases (*x) are refused;
 * duplicate keys are errors.
 *
 * Keystore selection. Exactly one keystore section may be specified. KES's own template
 * (server-config.yaml) lists every keystore with empty values, so a section counts as
 * specified only when some value below it is non-empty; the timer fields the template fills
 * in (vault.status.ping, gemalto.keysecure.credentials.retry) do not count. The same rule
 * picks vault's approle / kubernetes / transit subsections. fs and vault are supported; a
 * specified aws, gcp, azure, gemalto, fortanix, entrust, kes (or old encryptedfs, generic)
 * section fails with "keystore.aws: not supported by kesc (supported: fs, vault)". No
 * keystore at all is "keystore: no keystore specified" unless CONFIG_ALLOW_NO_KEYSTORE.
 *
 * Defaults (struct config after loading a minimal config):
 *   address "0.0.0.0:7373"; tls.auth OFF; tls.proxy_cert_header "X-Tls-Client-Cert";
 *   cache any 5m, unused 30s, offline 0 (off) — a configured 0 for any/unused also means the
 *   default, as KES intends (kesc does not copy KES's configureCache bug, kes.md §10);
 *   cache.status_interval_ms 0 (the cache's own default);
 *   log levels INFO, files NULL (stderr / stdout);
 *   vault: engine "kv", kv_version 1, transit engine "transit", auth engine "approle" /
 *   "kubernetes", ping_ms 15000, connect/request timeouts 0 (vault.c defaults),
 *   max_retries -1 (vault.c default);
 *   server: max_connections 10240, handshake 5 s, header 5 s, idle 90 s, shutdown 10 s,
 *   threads 0.
 * Optional strings that are absent or empty are NULL (tls.password, tls.ca, vault namespace,
 * prefix, auth_namespace, k8s_role, vault tls_*, log files); required ones are never NULL.
 * Policy identities that are empty after ${ENV} substitution are dropped with a warning.
 *
 * kesc extensions (all optional, ignored by nothing because KES never sees kesc configs):
 *   log.audit / log.error may name a file path instead of a level word (any value containing
 *     '/'): events go there at level INFO.
 *   log.audit_failure: refuse (default) | serve — see log.h for the audit rule.
 *   server: { max_connections, tenant_max_connections, handshake_timeout, header_timeout,
 *             idle_timeout, shutdown_timeout, threads }
 *     max_connections >= 1; timeouts > 0; threads 0..1024 (0 = one per core).
 *   keystore.vault: { connect_timeout 100ms..1m, request_timeout 100ms..5m (0 = default),
 *     max_retries 0..10, allow_unsafe_kv_v1_update bool }
 *   key_lifecycle: { rotate_after, delete_window, check_interval } durations, 0 = off (check
 *     1h by default), each 1s..10 years; with rotate_after or delete_window on a Vault K/V v1
 *     mount, allow_unsafe_kv_v1_update is required.
 *
 * Secrets (tls.password, approle secret, inline Kubernetes JWT) are zeroed by config_free, as
 * are the file text and the YAML tree; libyaml's own internal copies are freed unzeroed.
 */
#ifndef KESC_SERVER_CONFIG_H
#define KESC_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/cache.h"
#include "keystore/vault.h"

enum config_tls_auth { CONFIG_TLS_AUTH_OFF = 0, CONFIG_TLS_AUTH_ON = 1 };
enum config_keystore {
	CONFIG_KEYSTORE_NONE = 0,
	CONFIG_KEYSTORE_FS,
	CONFIG_KEYSTORE_VAULT,
	CONFIG_KEYSTORE_MEM
};

/* slog-compatible levels: DEBUG -4, INFO 0, WARN 4, ERROR 8; "off" = LOG_LEVEL_OFF. */
#define LOG_LEVEL_DEBUG (-4)
#define LOG_LEVEL_INFO  0
#define LOG_LEVEL_WARN  4
#define LOG_LEVEL_ERROR 8
#define LOG_LEVEL_OFF   9

struct config_policy {
	char *name;
	char **allow;
	size_t allow_count;
	char **deny;
	size_t deny_count;
	char **identities;
	size_t identity_count;
	unsigned line;
};

/*
 * A tenant (the tenants: section, a kesc extension): its own keystore layout on the shared
 * keystore connection, its own policies and identities, its own cache and `keys:`. Requests
 * are resolved to a tenant by the client's identity alone (server/state.h).
 *   tenants:
 *     <name>:                   1..80 of [0-9A-Za-z_-], as policy names
 *       keystore:
 *         fs:    {path: <dir>}  a directory below keystore.fs.path (default: the name)
 *         vault: {namespace, prefix, engine, version, approle | kubernetes}
 *                               on keystore.vault's connection; namespace, prefix, engine
 *                               and version replace the top-level ones (absent: inherited;
 *                               namespace and prefix both absent: prefix = the name);
 *                               approle/kubernetes: the tenant's own login (in its namespace
 *                               unless their namespace says otherwise), else the top-level
 *                               token is used
 *       policy: {…}             as the top-level policy: section
 *       cache: {expiry: {any, unused, offline}, max_keys}   absent fields: the top level's
 *       keys: [{name}]
 * Every identity belongs to at most one policy in the whole file (top level or tenant); the
 * admin identity belongs to none. Two tenants (or a tenant and the top level) never share a
 * keystore location: the same fs directory (or one inside the other), or the same Vault
 * namespace, engine and prefix.
 */
struct config_tenant {
	char *name;
	unsigned line;
	char *fs_path;             /* fs: keystore.fs.path joined with the tenant's path */
	struct vault_config vault; /* vault: the top level's, with the tenant's fields; owned */
	bool vault_own_auth;       /* the tenant logs in itself (approle or kubernetes given) */
	struct config_policy *policies;
	size_t policy_count;
	struct ks_cache_config cache;
	char **keys;
	size_t key_count;
};

struct config_api {
	char *path; /* route key as written, e.g. "/v1/status" or "/v1/key/create/" */
	bool skip_auth;
	int64_t timeout_ms; /* 0 = route default */
	unsigned line;
};

struct config {
	char *file;    /* path as given */
	char *address; /* default "0.0.0.0:7373" */
	char *admin_identity;

	struct {
		char *key;
		char *cert;
		char *password;
		char *ca;
		enum config_tls_auth auth;
		char **proxy_identities;
		size_t proxy_identity_count;
		char *proxy_cert_header;
	} tls;

	struct config_policy *policies;
	size_t policy_count;

	struct ks_cache_config cache; /* defaults 5m / 30s / 0 (not KES's 30 s bug) */

	struct {
		int error_level;  /* default INFO */
		int audit_level;  /* default INFO (KES HEAD: empty = on) */
		char *error_file; /* NULL = stderr */
		char *audit_file; /* NULL = stdout */
		/* log.audit_failure: false = "refuse" (default): a request whose audit record
		 * cannot be written is not served; true = "serve" (records best effort). */
		bool audit_failure_serve;
	} log;

	struct config_api *api;
	size_t api_count;

	char **keys; /* names to create at start-up when missing */
	size_t key_count;

	enum config_keystore keystore;
	char *fs_path;
	struct vault_config vault;

	struct config_tenant *tenants; /* the tenants: section; none: a KES config */
	size_t tenant_count;

	struct {
		unsigned max_connections; /* default 10240 */
		/* Connections one tenant may hold (tenants only); 0 = max_connections / 4. */
		unsigned tenant_max_connections;
		int64_t handshake_timeout_ms; /* default 5000 (KES: Go's is ReadHeaderTimeout) */
		int64_t header_timeout_ms;    /* default 5000 (KES ReadHeaderTimeout) */
		int64_t idle_timeout_ms;      /* default 90000 */
		int64_t shutdown_timeout_ms;  /* default 10000: SIGTERM drain deadline */
		unsigned threads;             /* event loops; 0 = one per core */
	} server;

	/* key_lifecycle: (kesc only, config_lifecycle.c). 0 = off. */
	struct {
		int64_t rotate_after_ms;   /* rotate keys whose current version is older */
		int64_t delete_window_ms;  /* deletes can be undone this long, then purged */
		int64_t check_interval_ms; /* how often due rotations and purges are looked for */
	} lifecycle;
};

/* key_lifecycle.check_interval when not set. */
#define CONFIG_LIFECYCLE_CHECK_MS (3600 * 1000)

/* A warning produced while loading: "file:line: field: text". */
typedef void (*config_warn_fn)(void *arg, const char *message);

/*
 * Loads and validates path. On success returns 0 and *out (free with config_free). On failure
 * returns -1 with "file:line: field: reason" in err. Warnings (unknown keys, `root:`, useless
 * policy patterns) go to warn (may be NULL).
 */
int config_load(const char *path, struct config **out, char *err, size_t errlen,
                config_warn_fn warn, void *warn_arg);
/* The same from a memory buffer; name is used in messages. */
int config_parse(const char *name, const char *text, size_t len, struct config **out, char *err,
                 size_t errlen, config_warn_fn warn, void *warn_arg);

/* A config without any keystore is accepted (keystore = CONFIG_KEYSTORE_NONE) because the
 * caller supplies one itself (--dev / in-memory). Without this flag it is KES's error
 * "keystore: no keystore specified". */
#define CONFIG_ALLOW_NO_KEYSTORE 0x1u
/* config_load / config_parse with flags (CONFIG_*). */
int config_load_flags(const char *path, unsigned flags, struct config **out, char *err,
                      size_t errlen, config_warn_fn warn, void *warn_arg);
int config_parse_flags(const char *name, const char *text, size_t len, unsigned flags,
                       struct config **out, char *err, size_t errlen, config_warn_fn warn,
                       void *warn_arg);
void config_free(struct config *c);

/* The candidate nearest to word (at most two edits, and fewer edits than the candidate has
 * characters), or NULL: the "did you mean" of config messages. */
const char *config_suggest(const char *word, const char *const *candidates, size_t count);

/* Go time.ParseDuration syntax ("5m0s", "1h30m", "300ms", "0"). 0 or -1. */
int config_parse_duration(const char *s, int64_t *ms_out);
/* Log level words as KES: "", on, off, DEBUG, INFO, WARN, ERROR, LEVEL+N, integers. */
int config_parse_log_level(const char *s, int *level_out);

#endif
