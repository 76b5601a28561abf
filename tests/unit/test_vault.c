/*
 * test_vault.c — the Vault keystore against the Vault test server (tests/vault/vault_server.py):
 * the keystore conformance suite on K/V v1 and v2, with and without transit, with a prefix and
 * with a namespace, each through an AppRole limited to the smallest policy that works; token
 * renewal and re-login; sealed / failing / slow / dropping Vault; transit key rotation;
 * records written by KES; tombstones (what a delete leaves, what KES then sees, the policy a
 * delete needs); the K/V v1 "update" grant check; K/V v1 creates serialised across
 * store generations (SIGHUP); ambiguous writes read back; recovery from a stall as soon as
 * Vault answers, with one log line per change.
 *
 * The server script path comes from argv[1] or VAULT_SERVER_SCRIPT. The server is killed at
 * exit (atexit) and, should this process die, by PR_SET_PDEATHSIG.
 */
#include "keystore/curl_loader.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keystore/bytes.h"
#include "keystore/json.h"
#include "keystore/keystore.h"
#include "keystore/tombstone.h"
#include "keystore/vault.h"
#include "tests/unit/check.h"
#include "tests/unit/keystore_conformance.h"

#define ROOT_TOKEN "kesc-test-root"

/* The servers this test started: [0] plain HTTP for most tests, [1] HTTPS with client certs. */
static pid_t server_pids[2];
static char server_url[256]; /* the server admin() and config_fill() talk to */
static char tmpdir[256];
static char script_path[1024];

static void server_kill(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 50 && *pid > 0; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid)
			*pid = 0;
		else
			usleep(100 * 1000);
	}
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		*pid = 0;
	}
}

static void servers_stop(void)
{
	for (size_t i = 0; i < sizeof(server_pids) / sizeof(server_pids[0]); i++)
		server_kill(&server_pids[i]);
	if (tmpdir[0]) {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
		tmpdir[0] = 0;
	}
}

/* Starts server `slot` with the extra arguments (NULL-terminated, up to 6); its URL → url. */
static int server_start(int slot, const char *const *extra, char *url, size_t urllen)
{
	char ready[300];
	snprintf(ready, sizeof(ready), "%s/ready-%d", tmpdir, slot);
	const char *argv[16] = {"python3",      script_path, "--listen",     "127.0.0.1:0",
	                        "--ready-file", ready,       "--root-token", ROOT_TOKEN};
	size_t n = 8;
	for (; extra && *extra && n < 15; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	server_pids[slot] = pid;
	for (int i = 0; i < 300; i++) {
		FILE *f = fopen(ready, "r");
		if (f) {
			bool ok = fgets(url, (int)urllen, f) != NULL;
			fclose(f);
			url[strcspn(url, "\r\n")] = 0;
			if (ok && url[0])
				return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			server_pids[slot] = 0;
			return -1;
		}
		usleep(100 * 1000);
	}
	return -1;
}

/* TLS material for the admin client when server_url is the HTTPS server. */
static const char *admin_ca, *admin_cert, *admin_key;

/* ---- admin calls with the root token ---- */

static size_t on_admin_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	buf_append(userdata, data, size * nmemb);
	return size * nmemb;
}

/* Returns the HTTP status (0 on transport failure); the body goes to out if given. */
static long admin(const char *method, const char *ns, const char *path, const char *body,
                  struct buf *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[1024], hdr[512];
	struct buf sink;
	long status = 0;
	buf_init(&sink, 0);
	snprintf(url, sizeof(url), "%s%s", server_url, path);
	h = curl_slist_append(h, "X-Vault-Token: " ROOT_TOKEN);
	h = curl_slist_append(h, "Content-Type: application/json");
	if (ns) {
		snprintf(hdr, sizeof(hdr), "X-Vault-Namespace: %s", ns);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (admin_ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, admin_ca);
	if (admin_cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, admin_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, admin_key);
	}
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_admin_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &sink);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	buf_free(&sink);
	return status;
}

static bool admin_ok(const char *method, const char *ns, const char *path, const char *body)
{
	struct buf out;
	buf_init(&out, 0);
	long st = admin(method, ns, path, body, &out);
	bool ok = st >= 200 && st < 300;
	if (!ok)
		fprintf(stderr, "admin %s %s%s%s → %ld %s\n", method, ns ? ns : "", ns ? ":" : "",
		        path, st, out.data ? out.data : "");
	buf_free(&out);
	return ok;
}

/* A string member of the response's data (admin GET/POST), copied into out. */
static bool admin_data_string(const char *method, const char *ns, const char *path,
                              const char *body, const char *key, char *out, size_t n)
{
	struct buf resp;
	char perr[64];
	buf_init(&resp, 0);
	bool ok = false;
	if (admin(method, ns, path, body, &resp) == 200) {
		struct json_value *j = json_parse(resp.data, resp.len, perr, sizeof(perr));
		size_t len;
		const char *s = json_string(json_get(json_get(j, "data"), key), &len);
		if (s && len < n) {
			memcpy(out, s, len + 1);
			ok = true;
		}
		json_free(j);
	}
	buf_free(&resp);
	return ok;
}

/* ---- Vault set-up: mounts, policies, AppRoles ---- */

struct role {
	char role_id[128];
	char secret_id[128];
};

static bool mount(const char *ns, const char *path, const char *type, const char *version)
{
	char p[256], body[256];
	snprintf(p, sizeof(p), "/v1/sys/mounts/%s", path);
	if (version)
		snprintf(body, sizeof(body), "{\"type\":\"%s\",\"options\":{\"version\":\"%s\"}}",
		         type, version);
	else
		snprintf(body, sizeof(body), "{\"type\":\"%s\"}", type);
	return admin_ok("POST", ns, p, body);
}

static bool policy(const char *ns, const char *name, const char *hcl)
{
	char p[256];
	struct buf body;
	buf_init(&body, 0);
	snprintf(p, sizeof(p), "/v1/sys/policies/acl/%s", name);
	struct json_writer w;
	json_writer_init(&w, &body);
	json_object_begin(&w);
	json_key(&w, "policy");
	json_write_string(&w, hcl);
	json_object_end(&w);
	bool ok = admin_ok("PUT", ns, p, body.data);
	buf_free(&body);
	return ok;
}

/* Creates AppRole role `name` (policies, ttl, extra JSON members) and issues a secret ID. */
static bool approle(const char *ns, const char *name, const char *policies, const char *ttl,
                    const char *extra, struct role *r)
{
	char p[256], body[512];
	snprintf(p, sizeof(p), "/v1/auth/approle/role/%s", name);
	snprintf(body, sizeof(body), "{\"token_policies\":[%s],\"token_ttl\":\"%s\"%s%s}", policies,
	         ttl, extra ? "," : "", extra ? extra : "");
	if (!admin_ok("POST", ns, p, body))
		return false;
	snprintf(p, sizeof(p), "/v1/auth/approle/role/%s/role-id", name);
	if (!admin_data_string("GET", ns, p, NULL, "role_id", r->role_id, sizeof(r->role_id)))
		return false;
	snprintf(p, sizeof(p), "/v1/auth/approle/role/%s/secret-id", name);
	return admin_data_string("POST", ns, p, "{}", "secret_id", r->secret_id,
	                         sizeof(r->secret_id));
}

/*
 * The smallest policies that work (documented in deploy/examples/vault-*.yml and kesc.yml(5)):
 *   K/V v1: path "<engine>/…"          { capabilities = ["create", "read", "delete", "list"] }
 *   K/V v2: path "<engine>/data/…"     { capabilities = ["create", "read", "update"] }
 *           path "<engine>/destroy/…"  { capabilities = ["update"] }
 *           path "<engine>/metadata/…" { capabilities = ["list"] }
 *   transit: path "transit/encrypt/<key>" and "transit/decrypt/<key>" { capabilities = ["update"] }
 * plus the built-in default policy (lookup-self and renew-self). On v2 a delete writes a
 * tombstone over the key (update, always with check-and-set) and destroys the key's versions;
 * KES's v2 policy (data: create, read; metadata: list, delete) serves everything but delete.
 */
static const char POLICY_V1[] =
    "path \"kv/*\" { capabilities = [\"create\", \"read\", \"delete\", \"list\"] }\n";
static const char POLICY_V2[] =
    "path \"kv2/data/*\" { capabilities = [\"create\", \"read\", \"update\"] }\n"
    "path \"kv2/destroy/*\" { capabilities = [\"update\"] }\n"
    "path \"kv2/metadata/*\" { capabilities = [\"list\"] }\n";
/* KES's documented v2 policy, and one that may write tombstones but not destroy versions. */
static const char POLICY_V2_KES[] =
    "path \"kv2/data/*\" { capabilities = [\"create\", \"read\"] }\n"
    "path \"kv2/metadata/*\" { capabilities = [\"list\", \"delete\"] }\n";
static const char POLICY_V2_NO_DESTROY[] =
    "path \"kv2/data/*\" { capabilities = [\"create\", \"read\", \"update\"] }\n"
    "path \"kv2/metadata/*\" { capabilities = [\"list\"] }\n";
static const char POLICY_TRANSIT[] =
    "path \"transit/encrypt/kesc\" { capabilities = [\"update\"] }\n"
    "path \"transit/decrypt/kesc\" { capabilities = [\"update\"] }\n";

#define NAMESPACE "tenant-1"

/* A tenant confined to its prefix (deploy/examples/vault-tenant-prefix.yml). */
static const char POLICY_PREFIX[] =
    "path \"kv/tenant/a/*\" { capabilities = [\"create\", \"read\", \"delete\", \"list\"] }\n"
    "path \"kv2/data/tenant/b/*\" { capabilities = [\"create\", \"read\", \"update\"] }\n"
    "path \"kv2/destroy/tenant/b/*\" { capabilities = [\"update\"] }\n"
    "path \"kv2/metadata/tenant/b/*\" { capabilities = [\"list\"] }\n";

/* What operators write when they copy a read/write example: "update" lets a K/V v1 write
 * replace an existing key. kesc refuses it unless allow_unsafe_kv_v1_update. */
static const char POLICY_V1_UPDATE[] =
    "path \"kv/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", "
    "\"list\"] }\n";

static struct role role_v1, role_v2, role_ns, role_short, role_batch, role_prefix, role_update,
    role_nodefault, role_v2_kes, role_v2_no_destroy;

static bool vault_setup_ns(const char *ns, struct role *r)
{
	return mount(ns, "kv", "kv", "1") && mount(ns, "kv2", "kv", "2") &&
	       mount(ns, "transit", "transit", NULL) &&
	       admin_ok("POST", ns, "/v1/transit/keys/kesc", "{}") &&
	       admin_ok("POST", ns, "/v1/sys/auth/approle", "{\"type\":\"approle\"}") &&
	       policy(ns, "kes-v1", POLICY_V1) && policy(ns, "kes-v2", POLICY_V2) &&
	       policy(ns, "kes-transit", POLICY_TRANSIT) &&
	       approle(ns, "kes-all", "\"kes-v1\",\"kes-v2\",\"kes-transit\"", "1h", NULL, r);
}

static bool vault_setup(void)
{
	return vault_setup_ns(NULL, &role_v1) &&
	       approle(NULL, "kes-v2", "\"kes-v2\",\"kes-transit\"", "1h", NULL, &role_v2) &&
	       approle(NULL, "kes-v1", "\"kes-v1\",\"kes-transit\"", "1h", NULL, &role_v1) &&
	       policy(NULL, "kes-prefix", POLICY_PREFIX) &&
	       approle(NULL, "kes-prefix", "\"kes-prefix\",\"kes-transit\"", "1h", NULL,
	               &role_prefix) &&
	       approle(NULL, "kes-short", "\"kes-v1\"", "3s", "\"token_max_ttl\":\"1h\"",
	               &role_short) &&
	       approle(NULL, "kes-batch", "\"kes-v1\"", "3s", "\"token_type\":\"batch\"",
	               &role_batch) &&
	       policy(NULL, "kes-v1-update", POLICY_V1_UPDATE) &&
	       approle(NULL, "kes-update", "\"kes-v1-update\"", "1h", NULL, &role_update) &&
	       approle(NULL, "kes-nodefault", "\"kes-v1\"", "1h",
	               "\"token_no_default_policy\":true", &role_nodefault) &&
	       policy(NULL, "kes-v2-kes", POLICY_V2_KES) &&
	       approle(NULL, "kes-v2-kes", "\"kes-v2-kes\"", "1h", NULL, &role_v2_kes) &&
	       policy(NULL, "kes-v2-no-destroy", POLICY_V2_NO_DESTROY) &&
	       approle(NULL, "kes-v2-no-destroy", "\"kes-v2-no-destroy\"", "1h", NULL,
	               &role_v2_no_destroy) &&
	       admin_ok("POST", NULL, "/v1/sys/namespaces/" NAMESPACE, "{}") &&
	       vault_setup_ns(NAMESPACE, &role_ns);
}

/* ---- store configurations ---- */

struct store_case {
	const char *label;
	const char *engine;
	int version;
	const char *prefix;
	const char *ns;
	bool transit;
	const struct role *role;
};

static void config_fill(struct vault_config *cfg, const struct store_case *sc)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->endpoint = server_url;
	cfg->engine = (char *)sc->engine;
	cfg->kv_version = sc->version;
	cfg->prefix = (char *)sc->prefix;
	cfg->namespace_ = (char *)sc->ns;
	cfg->transit = sc->transit;
	cfg->transit_key = sc->transit ? "kesc" : NULL;
	cfg->auth = VAULT_AUTH_APPROLE;
	cfg->approle_id = (char *)sc->role->role_id;
	cfg->approle_secret = (char *)sc->role->secret_id;
	cfg->ping_ms = 200;
	cfg->request_timeout_ms = 10000;
	cfg->max_retries = -1;
	cfg->token_switch_delay_ms = 100;
}

/* Deletes every entry below dir (recursively) with the root token. */
static void wipe(const char *ns, const char *engine, int version, const char *dir)
{
	char p[1024];
	struct buf resp;
	char perr[64];
	buf_init(&resp, 0);
	snprintf(p, sizeof(p), "/v1/%s%s%s%s/?list=true", engine, version == 2 ? "/metadata" : "",
	         dir[0] ? "/" : "", dir);
	if (admin("GET", ns, p, NULL, &resp) == 200) {
		struct json_value *j = json_parse(resp.data, resp.len, perr, sizeof(perr));
		const struct json_value *keys = json_get(json_get(j, "data"), "keys");
		for (size_t i = 0; i < json_count(keys); i++) {
			const char *k = json_string(json_at(keys, i), NULL);
			char sub[512];
			snprintf(sub, sizeof(sub), "%s%s%s", dir, dir[0] ? "/" : "", k);
			size_t n = strlen(sub);
			if (n && sub[n - 1] == '/') {
				sub[n - 1] = 0;
				wipe(ns, engine, version, sub);
				continue;
			}
			snprintf(p, sizeof(p), "/v1/%s%s/%s", engine,
			         version == 2 ? "/metadata" : "", sub);
			admin("DELETE", ns, p, NULL, NULL);
		}
		json_free(j);
	}
	buf_free(&resp);
}

static struct keystore *open_case(void *arg)
{
	const struct store_case *sc = arg;
	struct vault_config cfg;
	struct ks_err err = {{0}};
	wipe(sc->ns, sc->engine, sc->version, "");
	config_fill(&cfg, sc);
	struct keystore *ks = vault_keystore_open(&cfg, &err);
	if (!ks)
		fprintf(stderr, "%s: open failed: %s\n", sc->label, err.msg);
	return ks;
}

static const struct store_case CASES[] = {
    {"kv-v1", "kv", 1, NULL, NULL, false, &role_v1},
    {"kv-v2", "kv2", 2, NULL, NULL, false, &role_v2},
    {"kv-v1+transit", "kv", 1, NULL, NULL, true, &role_v1},
    {"kv-v2+transit", "kv2", 2, NULL, NULL, true, &role_v2},
    {"kv-v1/prefix", "kv", 1, "tenant/a", NULL, false, &role_prefix},
    {"kv-v2/prefix+transit", "kv2", 2, "tenant/b", NULL, true, &role_prefix},
    {"kv-v1@namespace", "kv", 1, NULL, NAMESPACE, false, &role_ns},
    {"kv-v2@namespace+transit", "kv2", 2, "p", NAMESPACE, true, &role_ns},
};

static void test_conformance(void)
{
	const char *only =
	    getenv("VAULT_TEST_CASE"); /* a substring of the label, for development */
	for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
		if (only && !strstr(CASES[i].label, only))
			continue;
		struct keystore_conformance c = {
		    .label = CASES[i].label,
		    .open_store = open_case,
		    .arg = (void *)&CASES[i],
		    .remove_reports_not_found = true,
		    /* K/V v1 has no conditional write (vault_tomb.c) */
		    .refuses_expired_tombstones = CASES[i].version == 1,
		    .remove_leaves_gap = CASES[i].version == 1,
		    .refuses_replace = CASES[i].version == 1,
		};
		int failed = keystore_conformance_run(&c);
		if (failed)
			fprintf(stderr, "conformance %s: %d failed checks\n", CASES[i].label,
			        failed);
		CHECK_EQ_INT(failed, 0);
	}
}

/* ---- helpers for the other tests ---- */

static struct keystore *open_with(const struct store_case *sc, void (*tweak)(struct vault_config *))
{
	struct vault_config cfg;
	struct ks_err err = {{0}};
	config_fill(&cfg, sc);
	if (tweak)
		tweak(&cfg);
	struct keystore *ks = vault_keystore_open(&cfg, &err);
	if (!ks)
		fprintf(stderr, "open failed: %s\n", err.msg);
	return ks;
}

static int put_str(struct keystore *ks, const char *name, const char *rec)
{
	struct bytes b = {(uint8_t *)rec, strlen(rec)};
	struct ks_err err = {{0}};
	int rc = keystore_create(ks, name, &b, &err);
	if (rc != KS_OK)
		fprintf(stderr, "create %s: %s: %s\n", name, ks_result_name(rc), err.msg);
	return rc;
}

static int get_is(struct keystore *ks, const char *name, const char *want)
{
	struct bytes b = {0};
	struct ks_err err = {{0}};
	int rc = keystore_get(ks, name, &b, &err);
	if (rc == KS_OK && (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0))
		rc = KS_FAILED;
	if (rc != KS_OK)
		fprintf(stderr, "get %s: %s: %s\n", name, ks_result_name(rc), err.msg);
	bytes_free(&b);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	usleep((useconds_t)ms * 1000);
}

/* How often "METHOD /v1/path" was requested, from GET /_test/stats. */
static long stat_count(const char *key)
{
	struct buf resp;
	char perr[64];
	long v = -1;
	buf_init(&resp, 0);
	if (admin("GET", NULL, "/_test/stats", NULL, &resp) == 200) {
		struct json_value *j = json_parse(resp.data, resp.len, perr, sizeof(perr));
		const struct json_value *x = json_get(json_get(j, "by_path"), key);
		v = 0;
		if (json_number(x))
			v = strtol(json_number(x), NULL, 10);
		json_free(j);
	}
	buf_free(&resp);
	return v;
}

static const struct store_case V1 = {"kv-v1", "kv", 1, "misc", NULL, false, &role_v1};

/* ---- auth ---- */

static void test_auth_bad_secret(void)
{
	struct role bad = role_v1;
	snprintf(bad.secret_id, sizeof(bad.secret_id), "not-the-secret");
	struct store_case sc = V1;
	sc.role = &bad;
	struct vault_config cfg;
	struct ks_err err = {{0}};
	config_fill(&cfg, &sc);
	int64_t t0 = now_ms();
	struct keystore *ks = vault_keystore_open(&cfg, &err);
	CHECK(ks == NULL);
	CHECK(strstr(err.msg, "vault: approle login failed") != NULL);
	CHECK(strstr(err.msg, "invalid role or secret ID") != NULL);
	CHECK(strstr(err.msg, "not-the-secret") == NULL); /* secrets never in messages */
	CHECK(now_ms() - t0 < 3000);                      /* a 400 is not retried */
	keystore_close(ks);
}

/* Short-lived tokens (3 s TTL): renewal keeps requests working for several TTLs. */
static void test_auth_renewal(void)
{
	struct store_case sc = V1;
	sc.role = &role_short;
	sc.prefix = "renew";
	wipe(NULL, "kv", 1, "renew");
	struct keystore *ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "renewed", "r1"), KS_OK);
	int failures = 0;
	for (int64_t end = now_ms() + 10000; now_ms() < end; sleep_ms(250))
		failures += get_is(ks, "renewed", "r1") != KS_OK;
	CHECK_EQ_INT(failures, 0);
	long renews = stat_count("POST /v1/auth/token/renew-self");
	CHECK(renews >= 2);
	int64_t t0 = now_ms();
	keystore_close(ks);
	CHECK(now_ms() - t0 < 1000); /* the renewal and poll threads stop promptly */
}

/* Batch tokens are not renewable: the thread logs in again instead. */
static void test_auth_not_renewable(void)
{
	struct store_case sc = V1;
	sc.role = &role_batch;
	sc.prefix = "batch";
	wipe(NULL, "kv", 1, "batch");
	struct keystore *ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "batched", "b1"), KS_OK);
	int failures = 0;
	for (int64_t end = now_ms() + 8000; now_ms() < end; sleep_ms(250))
		failures += get_is(ks, "batched", "b1") != KS_OK;
	CHECK_EQ_INT(failures, 0);
	keystore_close(ks);
}

/* Every token dies at once: the next request is refused, re-logs in and succeeds. */
static void test_auth_expired_tokens(void)
{
	struct keystore *ks = open_with(&V1, NULL);
	CHECK(ks != NULL);
	if (!ks)
		return;
	wipe(NULL, "kv", 1, "misc");
	CHECK_EQ_INT(put_str(ks, "expiring", "e1"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/expire-tokens", "{}"));
	CHECK_EQ_INT(get_is(ks, "expiring", "e1"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/expire-tokens", "{}"));
	CHECK_EQ_INT(put_str(ks, "expiring-2", "e2"), KS_OK);
	keystore_close(ks);
}

static bool wait_until_ok(struct keystore *ks, const char *name, const char *want, int ms);

/* An unsigned service-account JWT (the test server reads the claims only). */
static void k8s_jwt(const char *sa, char *out, size_t n)
{
	struct buf claims, b64;
	buf_init(&claims, 0);
	buf_init(&b64, 0);
	buf_printf(&claims,
	           "{\"iss\":\"kubernetes/serviceaccount\","
	           "\"kubernetes.io/serviceaccount/service-account.name\":\"%s\","
	           "\"kubernetes.io/serviceaccount/namespace\":\"minio\"}",
	           sa);
	base64_encode(&b64, (const uint8_t *)claims.data, claims.len);
	for (size_t i = 0; i < b64.len; i++)
		b64.data[i] = b64.data[i] == '+' ? '-' : b64.data[i] == '/' ? '_' : b64.data[i];
	while (b64.len && b64.data[b64.len - 1] == '=')
		b64.data[--b64.len] = 0;
	snprintf(out, n, "eyJhbGciOiJSUzI1NiJ9.%s.c2lnbmF0dXJl", b64.data);
	buf_free(&claims);
	buf_free(&b64);
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

static char jwt_path[300];

static void k8s_config(struct vault_config *cfg)
{
	cfg->auth = VAULT_AUTH_KUBERNETES;
	cfg->approle_id = cfg->approle_secret = NULL;
	cfg->k8s_role = "kesc";
	cfg->k8s_jwt = jwt_path;
	cfg->k8s_jwt_is_file = true;
	cfg->request_timeout_ms = 1500;
}

/* Kubernetes auth re-reads the JWT file at every login (projected tokens rotate). */
static void test_auth_kubernetes(void)
{
	char jwt[1024], bad[1024];
	k8s_jwt("kesc", jwt, sizeof(jwt));
	k8s_jwt("intruder", bad, sizeof(bad));
	snprintf(jwt_path, sizeof(jwt_path), "%s/sa-token", tmpdir);
	CHECK(admin_ok("POST", NULL, "/v1/sys/auth/kubernetes", "{\"type\":\"kubernetes\"}"));
	CHECK(admin_ok("POST", NULL, "/v1/auth/kubernetes/config",
	               "{\"kubernetes_host\":\"https://127.0.0.1:6443\"}"));
	CHECK(admin_ok(
	    "POST", NULL, "/v1/auth/kubernetes/role/kesc",
	    "{\"bound_service_account_names\":[\"kesc\"],\"bound_service_account_namespaces\":"
	    "[\"minio\"],\"token_policies\":[\"kes-v1\"],\"token_ttl\":\"1h\"}"));
	CHECK(write_file(jwt_path, bad));
	struct vault_config cfg;
	struct ks_err err = {{0}};
	config_fill(&cfg, &V1);
	k8s_config(&cfg);
	CHECK(vault_keystore_open(&cfg, &err) == NULL);
	CHECK(strstr(err.msg, "vault: kubernetes login failed") != NULL);
	CHECK(strstr(err.msg, "not authorized") != NULL);

	CHECK(write_file(jwt_path, jwt));
	struct keystore *ks = open_with(&V1, k8s_config);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "k8s-key", "k1"), KS_OK);
	/* The service account token now maps to an unauthorised account: the next login fails. */
	CHECK(write_file(jwt_path, bad));
	CHECK(admin_ok("POST", NULL, "/_test/expire-tokens", "{}"));
	struct bytes b = {0};
	CHECK_EQ_INT(keystore_get(ks, "k8s-key", &b, &err), KS_UNREACHABLE);
	/* Rotated back to a good token: the 3 s login retry picks it up. */
	CHECK(write_file(jwt_path, jwt));
	CHECK(wait_until_ok(ks, "k8s-key", "k1", 8000));
	keystore_close(ks);
}

/* Log in at the root namespace ("/"), keep keys in a child namespace: the token is renewed
 * where it was issued, and the K/V calls carry the tenant's namespace. */
static void test_auth_namespace_root(void)
{
	static const char hcl[] =
	    "path \"" NAMESPACE
	    "/kv/*\" { capabilities = [\"create\", \"read\", \"delete\", \"list\"] }\n";
	struct role r;
	CHECK(policy(NULL, "kes-tenant-from-root", hcl));
	/* 6 s TTL: renewal at 80 % leaves 1.2 s of slack, enough on a loaded CI machine. */
	CHECK(approle(NULL, "kes-tenant-from-root", "\"kes-tenant-from-root\"", "6s",
	              "\"token_max_ttl\":\"1h\"", &r));
	struct store_case sc = {"ns-root-login", "kv", 1, "from-root", NAMESPACE, false, &r};
	wipe(NAMESPACE, "kv", 1, "from-root");
	struct vault_config cfg;
	struct ks_err err = {{0}};
	config_fill(&cfg, &sc);
	cfg.auth_namespace = "/";
	struct keystore *ks = vault_keystore_open(&cfg, &err);
	CHECK(ks != NULL);
	if (!ks) {
		fprintf(stderr, "open: %s\n", err.msg);
		return;
	}
	CHECK(admin_ok("POST", NULL, "/_test/stats/reset", "{}"));
	CHECK_EQ_INT(put_str(ks, "tenant-key", "t1"), KS_OK);
	int failures = 0;
	for (int64_t end = now_ms() + 14000; now_ms() < end; sleep_ms(250))
		failures += get_is(ks, "tenant-key", "t1") != KS_OK;
	CHECK_EQ_INT(failures, 0);
	CHECK(stat_count("POST /v1/auth/token/renew-self") >= 2);
	CHECK_EQ_INT(stat_count("PUT /v1/auth/approle/login"), 0); /* renewed, never re-logged in */
	keystore_close(ks);
	struct buf resp;
	buf_init(&resp, 0);
	CHECK_EQ_INT(admin("GET", NAMESPACE, "/v1/kv/from-root/tenant-key", NULL, &resp), 200);
	buf_free(&resp);
}

/* ---- faults ---- */

static void short_timeouts(struct vault_config *cfg)
{
	cfg->request_timeout_ms = 1000;
	cfg->max_retries = 0;
}

static void three_retries(struct vault_config *cfg)
{
	cfg->max_retries = 3;
}

static bool wait_until_ok(struct keystore *ks, const char *name, const char *want, int ms)
{
	for (int64_t end = now_ms() + ms; now_ms() < end; sleep_ms(100)) {
		struct bytes b = {0};
		struct ks_err err = {{0}};
		int rc = keystore_get(ks, name, &b, &err);
		bool ok = rc == KS_OK && b.len == strlen(want) && memcmp(b.data, want, b.len) == 0;
		bytes_free(&b);
		if (ok)
			return true;
	}
	return false;
}

static void test_fault_sealed(void)
{
	struct keystore *ks = open_with(&V1, NULL);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "sealed-key", "s1"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/seal", "{}"));
	struct bytes b = {0};
	struct ks_err err = {{0}};
	int64_t t0 = now_ms();
	CHECK_EQ_INT(keystore_get(ks, "sealed-key", &b, &err), KS_UNREACHABLE);
	CHECK(strstr(err.msg, "sealed") != NULL);
	CHECK_EQ_INT(keystore_get(ks, "sealed-key", &b, &err), KS_UNREACHABLE);
	struct ks_status st;
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_UNREACHABLE);
	CHECK(now_ms() - t0 < 1500); /* no retries, no timeouts */
	CHECK(admin_ok("POST", NULL, "/_test/unseal", "{}"));
	CHECK(wait_until_ok(ks, "sealed-key", "s1", 5000));
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	keystore_close(ks);
}

static void test_fault_retries(void)
{
	struct keystore *ks = open_with(&V1, three_retries);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "retried", "x1"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":3,\"status\":503,\"path_prefix\":\"/v1/kv/\","
	               "\"message\":\"overloaded, try again later\"}"));
	CHECK_EQ_INT(get_is(ks, "retried", "x1"), KS_OK);
	/* A 4xx is not retried: a failure injected for 1 request is seen by the caller. */
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":1,\"status\":400,\"path_prefix\":\"/v1/kv/\"}"));
	CHECK_EQ_INT(get_is(ks, "retried", "x1"), KS_FAILED);
	CHECK_EQ_INT(get_is(ks, "retried", "x1"), KS_OK);
	/* 429 with Retry-After: honoured, then retried. */
	CHECK(
	    admin_ok("POST", NULL, "/_test/fail",
	             "{\"count\":1,\"status\":429,\"retry_after\":1,\"path_prefix\":\"/v1/kv/\"}"));
	int64_t t0 = now_ms();
	CHECK_EQ_INT(get_is(ks, "retried", "x1"), KS_OK);
	CHECK(now_ms() - t0 >= 900);
	/* A 503 "Vault is sealed" is not retried: it fails fast until the health poll sees Vault
	 * unsealed (which it is: only one request was failed). */
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":1,\"status\":503,\"path_prefix\":\"/v1/kv/\"}"));
	t0 = now_ms();
	CHECK_EQ_INT(get_is(ks, "retried", "x1"), KS_UNREACHABLE);
	CHECK(now_ms() - t0 < 500);
	CHECK(wait_until_ok(ks, "retried", "x1", 3000));
	/* Dropped connections are retried too. */
	CHECK(admin_ok("POST", NULL, "/_test/drop", "{\"count\":2}"));
	CHECK_EQ_INT(get_is(ks, "retried", "x1"), KS_OK);
	keystore_close(ks);
}

static void test_fault_latency(void)
{
	struct keystore *ks = open_with(&V1, short_timeouts);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "slow", "l1"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/latency", "{\"ms\":300}"));
	CHECK_EQ_INT(get_is(ks, "slow", "l1"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/latency", "{\"ms\":2500}"));
	struct bytes b = {0};
	struct ks_err err = {{0}};
	int64_t t0 = now_ms();
	CHECK_EQ_INT(keystore_get(ks, "slow", &b, &err), KS_UNREACHABLE);
	CHECK(now_ms() - t0 < 2500);
	CHECK(admin_ok("POST", NULL, "/_test/latency", "{\"ms\":0}"));
	CHECK(wait_until_ok(ks, "slow", "l1", 5000));
	keystore_close(ks);
}

/* ---- K/V v1: may the token overwrite keys? (vault_caps.c) ---- */

static void allow_update(struct vault_config *cfg)
{
	cfg->allow_unsafe_kv_v1_update = true;
}

static void test_v1_update_grant(void)
{
	struct store_case sc = V1;
	sc.role = &role_update;
	struct vault_config cfg;
	struct ks_err err = {{0}};
	config_fill(&cfg, &sc);
	struct keystore *ks = vault_keystore_open(&cfg, &err);
	CHECK(ks == NULL);
	CHECK(strstr(err.msg, "grants 'update' on K/V v1 path 'kv/misc/") != NULL);
	CHECK(strstr(err.msg, "allow_unsafe_kv_v1_update") != NULL);
	keystore_close(ks);
	/* Opted in: it starts, and creates do not ask again. */
	ks = open_with(&sc, allow_update);
	CHECK(ks != NULL);
	keystore_close(ks);
	/* Without the default policy the token cannot ask: kesc cannot be sure, so it refuses. */
	sc.role = &role_nodefault;
	config_fill(&cfg, &sc);
	memset(&err, 0, sizeof(err));
	ks = vault_keystore_open(&cfg, &err);
	CHECK(ks == NULL);
	CHECK(strstr(err.msg, "cannot ask 'sys/capabilities-self'") != NULL);
	CHECK(strstr(err.msg, "403") != NULL);
	keystore_close(ks);
}

/* ---- K/V v1 creates of one name are serialised across store generations ---- */

struct gen_create {
	struct keystore *ks;
	const char *name;
	const char *record;
	pthread_barrier_t *start;
	int rc;
};

static void *gen_create_run(void *arg)
{
	struct gen_create *g = arg;
	pthread_barrier_wait(g->start);
	struct bytes b = {(uint8_t *)g->record, strlen(g->record)};
	struct ks_err err = {{0}};
	g->rc = keystore_create(g->ks, g->name, &b, &err);
	return NULL;
}

/*
 * A SIGHUP opens a new store while creates on the old one may still run. With a token that
 * may update (opted in), only kesc's own lock keeps two creates of one name in one process
 * from both writing; it must be shared by the two generations. Slow reads (300 ms) make both
 * see "not found" unless the second waits for the first.
 */
static void test_create_lock_across_generations(void)
{
	struct store_case sc = V1;
	sc.role = &role_update;
	sc.prefix = "generations";
	wipe(NULL, "kv", 1, "generations");
	struct keystore *old_gen = open_with(&sc, allow_update);
	struct keystore *new_gen = open_with(&sc, allow_update);
	CHECK(old_gen && new_gen);
	if (!old_gen || !new_gen) {
		keystore_close(old_gen);
		keystore_close(new_gen);
		return;
	}
	CHECK(admin_ok("POST", NULL, "/_test/latency",
	               "{\"ms\":300,\"path_prefix\":\"/v1/kv/generations/\",\"method\":\"GET\"}"));
	int both = 0, one = 0;
	for (int i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "reloaded-%d", i);
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, 2);
		struct gen_create g[2] = {{old_gen, name, "record-of-old", &start, 0},
		                          {new_gen, name, "record-of-new", &start, 0}};
		pthread_t t[2];
		for (int k = 0; k < 2; k++)
			pthread_create(&t[k], NULL, gen_create_run, &g[k]);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		pthread_barrier_destroy(&start);
		both += g[0].rc == KS_OK && g[1].rc == KS_OK;
		one += (g[0].rc == KS_OK) + (g[1].rc == KS_OK) == 1 &&
		       (g[0].rc == KS_EXISTS || g[1].rc == KS_EXISTS);
		/* Whoever won, both generations now read the winner's record. */
		const char *won = g[0].rc == KS_OK ? "record-of-old" : "record-of-new";
		CHECK_EQ_INT(get_is(old_gen, name, won), KS_OK);
		CHECK_EQ_INT(get_is(new_gen, name, won), KS_OK);
	}
	CHECK(admin_ok("POST", NULL, "/_test/reset-faults", "{}"));
	CHECK_EQ_INT(both, 0);
	CHECK_EQ_INT(one, 4);
	keystore_close(old_gen);
	keystore_close(new_gen);
}

/* ---- ambiguous write outcomes are read back ---- */

static void no_retries(struct vault_config *cfg)
{
	cfg->max_retries = 0;
}

static void test_create_read_back(void)
{
	struct store_case sc = V1;
	sc.prefix = "readback";
	wipe(NULL, "kv", 1, "readback");
	struct keystore *ks = open_with(&sc, no_retries);
	CHECK(ks != NULL);
	if (!ks)
		return;
	/* Stored, then answered 500: the create took effect, and says so. */
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":1,\"status\":500,\"method\":\"PUT\",\"after\":true,"
	               "\"path_prefix\":\"/v1/kv/readback/stored\"}"));
	CHECK_EQ_INT(put_str(ks, "stored", "mine"), KS_OK);
	CHECK_EQ_INT(get_is(ks, "stored", "mine"), KS_OK);
	/* Not stored, answered 500: still an error, and nothing is there. */
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":1,\"status\":500,\"method\":\"PUT\","
	               "\"path_prefix\":\"/v1/kv/readback/lost\"}"));
	struct bytes b = {(uint8_t *)"mine", 4};
	struct ks_err err = {{0}};
	CHECK_EQ_INT(keystore_create(ks, "lost", &b, &err), KS_FAILED);
	CHECK_EQ_INT(admin("GET", NULL, "/v1/kv/readback/lost", NULL, NULL), 404);
	/* Someone else's value is there (our first read was told "not found", our write failed):
	 * never a success for their key. */
	CHECK(admin_ok("PUT", NULL, "/v1/kv/readback/theirs", "{\"theirs\":\"their-record\"}"));
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":1,\"status\":404,\"method\":\"GET\","
	               "\"path_prefix\":\"/v1/kv/readback/theirs\",\"message\":\"\"}"));
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":1,\"status\":500,\"method\":\"PUT\","
	               "\"path_prefix\":\"/v1/kv/readback/theirs\"}"));
	CHECK(keystore_create(ks, "theirs", &b, &err) != KS_OK);
	CHECK_EQ_INT(get_is(ks, "theirs", "their-record"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/reset-faults", "{}"));
	keystore_close(ks);
	/* With retries: every attempt stores (or finds its own value) and answers 500. */
	ks = open_with(&sc, three_retries);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK(admin_ok("POST", NULL, "/_test/fail",
	               "{\"count\":4,\"status\":500,\"method\":\"PUT\",\"after\":true,"
	               "\"path_prefix\":\"/v1/kv/readback/retried\"}"));
	CHECK_EQ_INT(put_str(ks, "retried", "mine-too"), KS_OK);
	CHECK_EQ_INT(get_is(ks, "retried", "mine-too"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/_test/reset-faults", "{}"));
	keystore_close(ks);
}

/* ---- health: recovery as soon as Vault does, one log line per change ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_down, log_up, log_other;

static void count_log(const char *message)
{
	pthread_mutex_lock(&log_lock);
	if (strstr(message, "vault: unreachable:"))
		log_down++;
	else if (strstr(message, "vault: reachable again"))
		log_up++;
	else
		log_other++;
	pthread_mutex_unlock(&log_lock);
}

static void slow_episode_config(struct vault_config *cfg)
{
	cfg->request_timeout_ms = 8000;
	cfg->max_retries = 0;
	cfg->ping_ms = 200;
}

/*
 * Vault stalls for longer than the request timeout: kesc marks it down and fails fast. Then
 * Vault recovers while probes sent during the stall are still waiting (they end only when the
 * stall or their 8 s timeout does). Requests must work again within about a second of the
 * recovery — before, they kept failing fast until the stuck probe gave up (up to the request
 * timeout; 19.9 s with the defaults, issue 10 §3). And the episode is two log lines.
 */
static void test_health_recovers_at_once(void)
{
	struct store_case sc = V1;
	sc.prefix = "episode";
	wipe(NULL, "kv", 1, "episode");
	struct keystore *ks = open_with(&sc, slow_episode_config);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "calm", "c1"), KS_OK);
	keystore_set_log(count_log);
	CHECK(admin_ok("POST", NULL, "/_test/latency", "{\"ms\":20000}"));
	/* Down once the first probe of the stall times out (8 s), then requests fail fast. */
	bool down = false;
	for (int64_t end = now_ms() + 20000; !down && now_ms() < end; sleep_ms(200)) {
		struct ks_status st;
		struct ks_err err = {{0}};
		int64_t t0 = now_ms();
		down = keystore_status(ks, &st, &err) == KS_UNREACHABLE && now_ms() - t0 < 1000;
	}
	CHECK(down);
	/* Stay down a little: several probes are now in flight, each stuck for 8 s. */
	sleep_ms(2500);
	struct bytes b = {0};
	struct ks_err err = {{0}};
	int64_t t0 = now_ms();
	CHECK_EQ_INT(keystore_get(ks, "calm", &b, &err), KS_UNREACHABLE);
	CHECK(now_ms() - t0 < 1000); /* fail fast */
	CHECK(admin_ok("POST", NULL, "/_test/latency", "{\"ms\":0}"));
	int64_t healed = now_ms();
	CHECK(wait_until_ok(ks, "calm", "c1", 15000));
	int64_t recovery = now_ms() - healed;
	fprintf(stderr, "  recovered %lld ms after Vault did\n", (long long)recovery);
	CHECK(recovery < 4000); /* probes start every second; the stuck ones needed up to 8 s */
	sleep_ms(1000);
	keystore_set_log(NULL);
	pthread_mutex_lock(&log_lock);
	CHECK_EQ_INT(log_down, 1);
	CHECK_EQ_INT(log_up, 1);
	pthread_mutex_unlock(&log_lock);
	keystore_close(ks);
}

/* ---- transit and KES records ---- */

static void test_transit_rotation(void)
{
	struct store_case sc = {"kv-v2+transit", "kv2", 2, "rot", NULL, true, &role_v2};
	wipe(NULL, "kv2", 2, "rot");
	struct keystore *ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "before", "old-record"), KS_OK);
	CHECK(admin_ok("POST", NULL, "/v1/transit/keys/kesc/rotate", "{}"));
	CHECK_EQ_INT(put_str(ks, "after", "new-record"), KS_OK);
	CHECK_EQ_INT(get_is(ks, "before", "old-record"), KS_OK);
	CHECK_EQ_INT(get_is(ks, "after", "new-record"), KS_OK);
	struct buf resp;
	buf_init(&resp, 0);
	CHECK_EQ_INT(admin("GET", NULL, "/v1/kv2/data/rot/after", NULL, &resp), 200);
	CHECK(resp.data && strstr(resp.data, "\"after\":\"vault:v2:") != NULL);
	buf_reset(&resp);
	CHECK_EQ_INT(admin("GET", NULL, "/v1/kv2/data/rot/before", NULL, &resp), 200);
	CHECK(resp.data && strstr(resp.data, "\"before\":\"vault:v1:") != NULL);
	buf_free(&resp);
	keystore_close(ks);
}

/* A KES HEAD record: base64 of the KeyVersion protobuf (kes.md §7.1 test vector layout). */
static void kes_record(struct buf *out)
{
	static const char key_b64[] = "yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY=";
	static const char hmac_b64[] = "nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20YQZa9Hg=";
	static const char by[] = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";
	static const uint8_t ts[] = {0x1a, 0x0c, 0x08, 0xd8, 0xad, 0x84, 0xad,
	                             0x06, 0x10, 0x80, 0xfa, 0xee, 0xa6, 0x03};
	struct bytes k = {0}, h = {0};
	struct buf pb;
	buf_init(&pb, 0);
	if (base64_decode(&k, key_b64, strlen(key_b64)) != 0 ||
	    base64_decode(&h, hmac_b64, strlen(hmac_b64)) != 0)
		return;
	buf_append(&pb, "\x0a\x24\x0a\x20", 4);
	buf_append(&pb, k.data, 32);
	buf_append(&pb, "\x10\x01\x12\x24\x0a\x20", 6);
	buf_append(&pb, h.data, 32);
	buf_append(&pb, "\x10\x01", 2);
	buf_append(&pb, ts, sizeof(ts));
	buf_append(&pb, "\x22\x40", 2);
	buf_append(&pb, by, 64);
	base64_encode(out, (const uint8_t *)pb.data, pb.len);
	bytes_free(&k);
	bytes_free(&h);
	buf_free(&pb);
}

static void test_kes_records(void)
{
	struct buf rec, body;
	buf_init(&rec, 0);
	buf_init(&body, 0);
	kes_record(&rec);
	CHECK(rec.len > 100);
	/* K/V v1, plain: exactly what KES writes. */
	wipe(NULL, "kv", 1, "kes");
	buf_printf(&body, "{\"kes-key\":\"%s\"}", rec.data);
	CHECK(admin_ok("PUT", NULL, "/v1/kv/kes/kes-key", body.data));
	/* K/V v2 with transit: KES encrypts base64(record) and stores the ciphertext. */
	char ct[4096];
	buf_reset(&body);
	buf_printf(&body, "{\"plaintext\":\"");
	base64_encode(&body, (const uint8_t *)rec.data, rec.len);
	buf_printf(&body, "\"}");
	CHECK(admin_data_string("POST", NULL, "/v1/transit/encrypt/kesc", body.data, "ciphertext",
	                        ct, sizeof(ct)));
	buf_reset(&body);
	buf_printf(&body, "{\"options\":{\"cas\":0},\"data\":{\"kes-key\":\"%s\"}}", ct);
	wipe(NULL, "kv2", 2, "kes");
	CHECK(admin_ok("PUT", NULL, "/v1/kv2/data/kes/kes-key", body.data));

	struct store_case v1 = {"kes-v1", "kv", 1, "kes", NULL, false, &role_v1};
	struct store_case v2 = {"kes-v2", "kv2", 2, "kes", NULL, true, &role_v2};
	struct keystore *ks = open_with(&v1, NULL);
	CHECK(ks != NULL);
	if (ks) {
		CHECK_EQ_INT(get_is(ks, "kes-key", rec.data), KS_OK);
		CHECK_EQ_INT(put_str(ks, "kes-key", "other"), KS_EXISTS);
		keystore_close(ks);
	}
	ks = open_with(&v2, NULL);
	CHECK(ks != NULL);
	if (ks) {
		CHECK_EQ_INT(get_is(ks, "kes-key", rec.data), KS_OK);
		keystore_close(ks);
	}
	/* And the other way round: what kesc writes is KES's layout. */
	ks = open_with(&v1, NULL);
	if (ks) {
		CHECK_EQ_INT(put_str(ks, "from-kesc", rec.data), KS_OK);
		struct buf resp;
		buf_init(&resp, 0);
		CHECK_EQ_INT(admin("GET", NULL, "/v1/kv/kes/from-kesc", NULL, &resp), 200);
		buf_reset(&body);
		buf_printf(&body, "\"data\":{\"from-kesc\":\"%s\"}", rec.data);
		CHECK(resp.data && strstr(resp.data, body.data) != NULL);
		buf_free(&resp);
		keystore_close(ks);
	}
	buf_free(&rec);
	buf_free(&body);
}

/* ---- tombstones on Vault (vault_tomb.c) ---- */

static struct bytes tomb_for(int64_t in)
{
	struct tombstone t = {.deleted_at = keystore_now(), .until = keystore_now() + in};
	struct bytes b = {0};
	strcpy(t.deleted_by, "vault-test");
	CHECK_EQ_INT(tombstone_encode(&t, &b), 0);
	return b;
}

static int remove_with(struct keystore *ks, const char *name, int64_t in, struct ks_err *err)
{
	struct bytes t = tomb_for(in);
	int rc = keystore_remove(ks, name, &t, err);
	bytes_free(&t);
	return rc;
}

/* The admin's view of a v2 version: its HTTP status, and whether the body says destroyed. */
static long v2_version(const char *name, int version, bool *destroyed, struct buf *body)
{
	char p[256];
	snprintf(p, sizeof(p), "/v1/kv2/data/tomb/%s%s%d", name, version ? "?version=" : "",
	         version);
	if (!version)
		p[strlen(p) - 1] = '\0'; /* latest: no query */
	buf_reset(body);
	long st = admin("GET", NULL, p, NULL, body);
	*destroyed = body->data && strstr(body->data, "\"destroyed\":true") != NULL;
	return st;
}

/*
 * K/V v2: the tombstone is the latest version, the key's versions are destroyed (KES reads
 * version 1: destroyed, "not found"), a create over an expired tombstone writes the next
 * version with check-and-set; KES's policy cannot delete (and nothing changes), a policy
 * without destroy leaves the delete half done until a delete with the right policy.
 */
static void test_tombstones_v2(void)
{
	struct store_case sc = {"tomb-v2", "kv2", 2, "tomb", NULL, true, &role_v2};
	struct ks_err err = {{0}};
	struct buf body;
	bool destroyed;
	buf_init(&body, 0);
	wipe(NULL, "kv2", 2, "tomb");
	struct keystore *ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (!ks)
		goto out;
	CHECK_EQ_INT(put_str(ks, "k", "record-1"), KS_OK);
	CHECK_EQ_INT(remove_with(ks, "k", 3600, &err), KS_OK);
	CHECK_EQ_INT(v2_version("k", 1, &destroyed, &body), 404);
	CHECK(destroyed);
	CHECK_EQ_INT(v2_version("k", 0, &destroyed, &body), 200);
	CHECK(body.data && strstr(body.data, "kesc-tombstone") != NULL);
	CHECK(body.data && strstr(body.data, "\"version\":2") != NULL);
	CHECK(body.data && strstr(body.data, "vault:v") == NULL); /* plain, never wrapped */
	CHECK_EQ_INT(put_str(ks, "k", "record-2"), KS_DELETED);

	/* Expired: the next version, with check-and-set; KES still finds version 1 destroyed. */
	CHECK_EQ_INT(put_str(ks, "old", "record-1"), KS_OK);
	CHECK_EQ_INT(remove_with(ks, "old", -1, &err), KS_OK);
	CHECK_EQ_INT(put_str(ks, "old", "record-2"), KS_OK);
	CHECK_EQ_INT(get_is(ks, "old", "record-2"), KS_OK);
	CHECK_EQ_INT(v2_version("old", 3, &destroyed, &body), 200);
	CHECK(!destroyed);
	CHECK_EQ_INT(v2_version("old", 1, &destroyed, &body), 404);
	CHECK(destroyed);
	/* What a list asks: one read, no transit decryption. */
	long reads = stat_count("GET /v1/kv2/data/tomb/old"),
	     unwraps = stat_count("POST /v1/transit/decrypt/kesc");
	CHECK_EQ_INT(keystore_holds_key(ks, "old", &err), KS_OK);
	CHECK_EQ_INT(keystore_holds_key(ks, "k", &err), KS_NOT_FOUND);
	CHECK_EQ_INT(keystore_holds_key(ks, "never", &err), KS_NOT_FOUND);
	CHECK_EQ_INT(stat_count("GET /v1/kv2/data/tomb/old"), reads + 1);
	CHECK_EQ_INT(stat_count("POST /v1/transit/decrypt/kesc"), unwraps);
	/* Deleted again: everything before the new tombstone is destroyed. */
	CHECK_EQ_INT(remove_with(ks, "old", 3600, &err), KS_OK);
	CHECK_EQ_INT(v2_version("old", 3, &destroyed, &body), 404);
	CHECK(destroyed);
	keystore_close(ks);

	/* KES's policy: create and read work, delete is refused and changes nothing. */
	sc.role = &role_v2_kes;
	sc.transit = false;
	ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (ks) {
		CHECK_EQ_INT(put_str(ks, "kes-policy", "record"), KS_OK);
		CHECK_EQ_INT(remove_with(ks, "kes-policy", 3600, &err), KS_FAILED);
		CHECK(strstr(err.msg, "'update'") != NULL);
		CHECK_EQ_INT(get_is(ks, "kes-policy", "record"), KS_OK);
		keystore_close(ks);
	}

	/* No destroy grant: the tombstone is written, the old version stays until a delete
	 * with the grant finishes the job. */
	sc.role = &role_v2_no_destroy;
	ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (ks) {
		CHECK_EQ_INT(put_str(ks, "half", "record"), KS_OK);
		CHECK_EQ_INT(remove_with(ks, "half", 3600, &err), KS_FAILED);
		CHECK(strstr(err.msg, "not destroyed") != NULL);
		CHECK(strstr(err.msg, "record") == NULL);
		CHECK_EQ_INT(keystore_get(ks, "half", &(struct bytes){0}, &err), KS_NOT_FOUND);
		CHECK_EQ_INT(v2_version("half", 1, &destroyed, &body), 200);
		keystore_close(ks);
	}
	sc.role = &role_v2;
	ks = open_with(&sc, NULL);
	if (ks) {
		CHECK_EQ_INT(remove_with(ks, "half", 3600, &err), KS_NOT_FOUND);
		CHECK_EQ_INT(v2_version("half", 1, &destroyed, &body), 404);
		CHECK(destroyed);
		keystore_close(ks);
	}
out:
	buf_free(&body);
}

/* K/V v1: the tombstone replaces the value at the key's own path (KES reads it and refuses
 * it); an expired one is not replaced by a create, only removed by hand. */
static void test_tombstones_v1(void)
{
	struct store_case sc = {"tomb-v1", "kv", 1, "tomb", NULL, true, &role_v1};
	struct ks_err err = {{0}};
	struct buf body;
	buf_init(&body, 0);
	wipe(NULL, "kv", 1, "tomb");
	struct keystore *ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (!ks)
		goto out;
	CHECK_EQ_INT(put_str(ks, "k", "record-1"), KS_OK);
	CHECK_EQ_INT(remove_with(ks, "k", -1, &err), KS_OK);
	CHECK_EQ_INT(admin("GET", NULL, "/v1/kv/tomb/k", NULL, &body), 200);
	CHECK(body.data && strstr(body.data, "{\\\"algorithm\\\":\\\"kesc-tombstone\\\"") != NULL);
	err.msg[0] = '\0';
	struct bytes rec = {(uint8_t *)"record-2", 8};
	CHECK_EQ_INT(keystore_create(ks, "k", &rec, &err), KS_DELETED);
	CHECK(strstr(err.msg, "vault kv delete") != NULL);
	CHECK(admin_ok("DELETE", NULL, "/v1/kv/tomb/k", NULL));
	CHECK_EQ_INT(put_str(ks, "k", "record-2"), KS_OK);
	keystore_close(ks);
out:
	buf_free(&body);
}

/*
 * Replace (rotations, scheduled deletions, restores: key_lifecycle.h). K/V v2: each change is
 * the next version, written with check-and-set, and the versions before it are destroyed, so
 * KES (reading version 1) never finds an outdated record. A scheduled deletion with transit is
 * a plain tombstone whose key is wrapped: a list still needs no transit.
 */
static void test_replace_v2(void)
{
	struct store_case sc = {"repl-v2", "kv2", 2, "tomb", NULL, true, &role_v2};
	struct ks_err err = {{0}};
	struct buf body;
	bool destroyed;
	buf_init(&body, 0);
	wipe(NULL, "kv2", 2, "tomb");
	struct keystore *ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (!ks)
		goto out;
	CHECK_EQ_INT(put_str(ks, "r", "record-1"), KS_OK);
	struct bytes r1 = {(uint8_t *)"record-1", 8}, r2 = {(uint8_t *)"record-2", 8};
	CHECK_EQ_INT(keystore_replace(ks, "r", &r1, &r2, &err), KS_OK);
	CHECK_EQ_INT(get_is(ks, "r", "record-2"), KS_OK);
	CHECK_EQ_INT(v2_version("r", 1, &destroyed, &body), 404);
	CHECK(destroyed);
	CHECK_EQ_INT(v2_version("r", 2, &destroyed, &body), 200);
	CHECK(body.data && strstr(body.data, "vault:v") != NULL); /* a key: wrapped */
	CHECK_EQ_INT(keystore_replace(ks, "r", &r1, &r2, &err), KS_EXISTS);

	/* scheduled deletion: a tombstone carrying the key */
	struct tombstone t = {.deleted_at = keystore_now(),
	                      .until = keystore_now() + 3600,
	                      .restore_until = keystore_now() + 3600};
	struct bytes pending = {0}, got = {0};
	CHECK_EQ_INT(tombstone_encode_with_key(&t, &r2, &pending), 0);
	CHECK_EQ_INT(keystore_replace(ks, "r", &r2, &pending, &err), KS_OK);
	CHECK_EQ_INT(v2_version("r", 0, &destroyed, &body), 200);
	CHECK(body.data && strstr(body.data, "kesc-tombstone") != NULL);
	CHECK(body.data && strstr(body.data, "record-2") == NULL); /* the key is wrapped */
	CHECK(body.data && strstr(body.data, "vault:v") != NULL);
	CHECK_EQ_INT(v2_version("r", 2, &destroyed, &body), 404);
	CHECK(destroyed);
	long unwraps = stat_count("POST /v1/transit/decrypt/kesc");
	CHECK_EQ_INT(keystore_holds_key(ks, "r", &err), KS_NOT_FOUND);
	CHECK_EQ_INT(stat_count("POST /v1/transit/decrypt/kesc"), unwraps);
	/* read back as written (the key decrypted), and restored */
	CHECK_EQ_INT(keystore_get_raw(ks, "r", &got, &err), KS_OK);
	CHECK(got.len == pending.len && memcmp(got.data, pending.data, got.len) == 0);
	bytes_free(&got);
	CHECK_EQ_INT(keystore_create(ks, "r", &r1, &err), KS_DELETED);
	CHECK_EQ_INT(keystore_remove(ks, "r", &pending, &err), KS_NOT_FOUND);
	CHECK_EQ_INT(keystore_replace(ks, "r", &pending, &r2, &err), KS_OK);
	CHECK_EQ_INT(get_is(ks, "r", "record-2"), KS_OK);
	bytes_free(&pending);
	keystore_close(ks);

	/* No destroy grant: a scheduled deletion and a purge are written, but the older versions
	 * (the key, which KES reads as version 1) stay in Vault: that is a failure, said so, not
	 * a success, as for a delete (test_tombstones_v2). */
	sc.transit = false;
	ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (ks) {
		CHECK_EQ_INT(put_str(ks, "nd", "record-1"), KS_OK);
		keystore_close(ks);
	}
	sc.role = &role_v2_no_destroy;
	ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (ks) {
		struct bytes purged = {0};
		struct tombstone p = t;
		p.restore_until = 0;
		CHECK_EQ_INT(tombstone_encode_with_key(&t, &r1, &pending), 0);
		CHECK_EQ_INT(tombstone_encode(&p, &purged), 0);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(keystore_replace(ks, "nd", &r1, &pending, &err), KS_FAILED);
		CHECK(strstr(err.msg, "not destroyed") != NULL);
		CHECK(strstr(err.msg, "record-1") == NULL);
		CHECK_EQ_INT(keystore_get(ks, "nd", &(struct bytes){0}, &err), KS_NOT_FOUND);
		CHECK_EQ_INT(v2_version("nd", 1, &destroyed, &body), 200);
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(keystore_replace(ks, "nd", &pending, &purged, &err), KS_FAILED);
		CHECK(strstr(err.msg, "not destroyed") != NULL);
		CHECK(strstr(err.msg, "vault kv destroy") != NULL);
		CHECK_EQ_INT(v2_version("nd", 2, &destroyed, &body), 200);
		/* a rotation's older versions are only older versions of the key: logged, done */
		CHECK_EQ_INT(put_str(ks, "nd-rot", "record-1"), KS_OK);
		CHECK_EQ_INT(keystore_replace(ks, "nd-rot", &r1, &r2, &err), KS_OK);
		bytes_free(&pending);
		bytes_free(&purged);
		keystore_close(ks);
	}
	sc.role = &role_v2;
	/* with the grant, deleting the name again finishes the job */
	ks = open_with(&sc, NULL);
	if (ks) {
		CHECK_EQ_INT(remove_with(ks, "nd", 3600, &err), KS_NOT_FOUND);
		CHECK_EQ_INT(v2_version("nd", 1, &destroyed, &body), 404);
		CHECK(destroyed);
		CHECK_EQ_INT(v2_version("nd", 2, &destroyed, &body), 404);
		CHECK(destroyed);
		keystore_close(ks);
	}

	/* KES's policy (no update): a replace is refused and changes nothing */
	ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (ks) {
		CHECK_EQ_INT(put_str(ks, "p", "record-1"), KS_OK);
		keystore_close(ks);
	}
	sc.role = &role_v2_kes;
	ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (ks) {
		memset(&err, 0, sizeof(err));
		CHECK_EQ_INT(keystore_replace(ks, "p", &r1, &r2, &err), KS_FAILED);
		CHECK(strstr(err.msg, "permission denied") != NULL);
		CHECK_EQ_INT(get_is(ks, "p", "record-1"), KS_OK);
		keystore_close(ks);
	}
out:
	buf_free(&body);
}

/* K/V v1: a replace overwrites, so it is refused unless the operator opted in. */
static void test_replace_v1(void)
{
	struct store_case sc = V1;
	struct ks_err err = {{0}};
	struct bytes r1 = {(uint8_t *)"record-1", 8}, r2 = {(uint8_t *)"record-2", 8};
	struct keystore *ks = open_with(&sc, NULL);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(put_str(ks, "v1-replaced", "record-1"), KS_OK);
	CHECK_EQ_INT(keystore_replace(ks, "v1-replaced", &r1, &r2, &err), KS_FAILED);
	CHECK(strstr(err.msg, "allow_unsafe_kv_v1_update") != NULL);
	keystore_close(ks);
	sc.role = &role_update;
	ks = open_with(&sc, allow_update);
	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(keystore_replace(ks, "v1-replaced", &r1, &r2, &err), KS_OK);
	CHECK_EQ_INT(get_is(ks, "v1-replaced", "record-2"), KS_OK);
	CHECK_EQ_INT(keystore_replace(ks, "v1-replaced", &r1, &r2, &err), KS_EXISTS);
	keystore_close(ks);
}

/* ---- TLS to Vault: CA file, CA directory, client certificate ---- */

static bool make_tls_material(const char *dir)
{
	char cmd[4096];
	snprintf(
	    cmd, sizeof(cmd),
	    "set -e; cd '%s'; mkdir -p cadir; exec 2>openssl.log;"
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key"
	    " -out ca.pem -days 2 -subj /CN=kesc-test-ca >/dev/null;"
	    "printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext;"
	    "printf 'extendedKeyUsage=clientAuth\\n' > client.ext;"
	    "for n in server client; do"
	    " openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key"
	    "  -out $n.csr -subj /CN=kesc-$n >/dev/null;"
	    " openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
	    "  -extfile $n.ext -out $n.pem >/dev/null;"
	    "done; cp ca.pem cadir/vault-ca.crt; echo not-a-cert > cadir/README",
	    dir);
	return system(cmd) == 0;
}

struct tls_case {
	const char *ca, *cert, *key;
};

static const struct tls_case *tls_now;

static void tls_config(struct vault_config *cfg)
{
	cfg->tls_ca = (char *)tls_now->ca;
	cfg->tls_cert = (char *)tls_now->cert;
	cfg->tls_key = (char *)tls_now->key;
	cfg->max_retries = 0;
}

static void test_tls(void)
{
	char dir[300], ca[400], cadir[400], cert[400], key[400], url[256], saved[256];
	snprintf(dir, sizeof(dir), "%s/tls", tmpdir);
	CHECK(mkdir(dir, 0700) == 0);
	if (!make_tls_material(dir)) {
		CHECK(!"openssl could not make test certificates");
		return;
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cadir, sizeof(cadir), "%s/cadir", dir);
	snprintf(cert, sizeof(cert), "%s/client.pem", dir);
	snprintf(key, sizeof(key), "%s/client.key", dir);
	char scert[400], skey[400];
	snprintf(scert, sizeof(scert), "%s/server.pem", dir);
	snprintf(skey, sizeof(skey), "%s/server.key", dir);
	const char *extra[] = {"--tls-cert", scert, "--tls-key", skey, "--client-ca", ca, NULL};
	if (server_start(1, extra, url, sizeof(url)) != 0) {
		CHECK(!"could not start the HTTPS Vault test server");
		return;
	}
	CHECK(strncmp(url, "https://", 8) == 0);
	memcpy(saved, server_url, sizeof(saved));
	snprintf(server_url, sizeof(server_url), "%s", url);
	admin_ca = ca, admin_cert = cert, admin_key = key;
	struct role r;
	bool ready = mount(NULL, "kv", "kv", "1") &&
	             admin_ok("POST", NULL, "/v1/sys/auth/approle", "{\"type\":\"approle\"}") &&
	             policy(NULL, "kes-v1", POLICY_V1) &&
	             approle(NULL, "kes", "\"kes-v1\"", "1h", NULL, &r);
	CHECK(ready);
	struct store_case sc = {"tls", "kv", 1, NULL, NULL, false, &r};
	const struct tls_case good[] = {{ca, cert, key}, {cadir, cert, key}};
	for (size_t i = 0; ready && i < 2; i++) {
		tls_now = &good[i];
		struct keystore *ks = open_with(&sc, tls_config);
		CHECK(ks != NULL);
		if (!ks)
			continue;
		char name[16];
		snprintf(name, sizeof(name), "tls-%zu", i);
		CHECK_EQ_INT(put_str(ks, name, "over-tls"), KS_OK);
		CHECK_EQ_INT(get_is(ks, name, "over-tls"), KS_OK);
		keystore_close(ks);
	}
	/* Without a client certificate, or without our CA, there is no connection. */
	const struct tls_case bad[] = {{ca, NULL, NULL}, {NULL, cert, key}};
	for (size_t i = 0; ready && i < 2; i++) {
		struct vault_config cfg;
		struct ks_err err = {{0}};
		tls_now = &bad[i];
		config_fill(&cfg, &sc);
		tls_config(&cfg);
		struct keystore *ks = vault_keystore_open(&cfg, &err);
		CHECK(ks == NULL);
		CHECK(strstr(err.msg, "approle login failed") != NULL);
		keystore_close(ks);
	}
	admin_ca = admin_cert = admin_key = NULL;
	memcpy(server_url, saved, sizeof(saved));
	server_kill(&server_pids[1]);
}

int main(int argc, char **argv)
{
	const char *script = argc > 1 ? argv[1] : getenv("VAULT_SERVER_SCRIPT");
	if (!script) {
		fprintf(stderr, "usage: test_vault <path to tests/vault/vault_server.py>\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	snprintf(script_path, sizeof(script_path), "%s", script);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kesc-vault-test-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(servers_stop);
	if (server_start(0, NULL, server_url, sizeof(server_url)) != 0) {
		fprintf(stderr, "could not start the Vault test server %s\n", script);
		return 1;
	}
	if (!vault_setup()) {
		fprintf(stderr, "could not set up the Vault test server\n");
		return 1;
	}
	/* VAULT_TEST_ONLY=<substring> runs only the matching tests (for development). */
	const char *only = getenv("VAULT_TEST_ONLY");
#define RUN_SOME(fn)                            \
	do {                                    \
		if (!only || strstr(#fn, only)) \
			RUN(fn);                \
	} while (0)
	RUN_SOME(test_auth_bad_secret);
	RUN_SOME(test_tls);
	RUN_SOME(test_kes_records);
	RUN_SOME(test_tombstones_v2);
	RUN_SOME(test_tombstones_v1);
	RUN_SOME(test_replace_v2);
	RUN_SOME(test_replace_v1);
	RUN_SOME(test_transit_rotation);
	RUN_SOME(test_fault_sealed);
	RUN_SOME(test_fault_retries);
	RUN_SOME(test_fault_latency);
	RUN_SOME(test_v1_update_grant);
	RUN_SOME(test_create_lock_across_generations);
	RUN_SOME(test_create_read_back);
	RUN_SOME(test_health_recovers_at_once);
	RUN_SOME(test_auth_expired_tokens);
	RUN_SOME(test_auth_renewal);
	RUN_SOME(test_auth_not_renewable);
	RUN_SOME(test_auth_kubernetes);
	RUN_SOME(test_auth_namespace_root);
	RUN_SOME(test_conformance);
	return CHECK_DONE();
}
