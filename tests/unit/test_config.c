/*
 * test_config.c — the config loader against KES's own example configs (kes.md Appendix A/B,
 * copied to tests/data/config/), and every validation error with its exact "file:line: field:
 * reason" text, ${ENV} substitution, durations, log levels, defaults and warnings.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "tests/unit/check.h"

#define ADMIN "c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d"
#define ID_A  "df7281ca3fed4ef7d06297eb7cb9d590a4edc863b4425f4762bb2afaebfd3258"
#define ID_B  "c0ecd5962eaf937422268b80a93dde4786dc9783fb2480ddea0f3e5fe471a731"

/* A valid config whose lines 1-8 are fixed; the error tests append from line 9 on. */
#define BASE                      \
	"admin:\n"                \
	"  identity: " ADMIN "\n" \
	"tls:\n"                  \
	"  key: k.pem\n"          \
	"  cert: c.pem\n"         \
	"keystore:\n"             \
	"  fs:\n"                 \
	"    path: /tmp/k\n"

static char data_dir[PATH_MAX];
static char tmp_dir[64];

struct warnings {
	char text[16][512];
	size_t count;
};

static void collect(void *arg, const char *message)
{
	struct warnings *w = arg;
	if (w->count < 16)
		snprintf(w->text[w->count], sizeof w->text[0], "%s", message);
	w->count++;
}

static struct config *parse_w(const char *text, struct warnings *w, char *err, size_t errlen)
{
	struct config *c = NULL;
	int rc = config_parse("config.yml", text, strlen(text), &c, err, errlen, collect, w);
	CHECK((rc == 0) == (c != NULL));
	return c;
}

/* Parses text expecting failure with exactly want. */
static void expect_error(const char *text, const char *want)
{
	char err[1024] = "";
	struct warnings w = {0};
	struct config *c = parse_w(text, &w, err, sizeof err);
	CHECK(c == NULL);
	CHECK_EQ_STR(err, want);
	config_free(c);
}

static struct config *load_example(const char *file, unsigned flags, char *err, size_t errlen,
                                   struct warnings *w)
{
	char path[PATH_MAX + 64];
	struct config *c = NULL;
	snprintf(path, sizeof path, "%s/%s", data_dir, file);
	int rc = config_load_flags(path, flags, &c, err, errlen, collect, w);
	if (rc != 0)
		fprintf(stderr, "  %s: %s\n", file, err);
	return c;
}

static void test_example_fs(void)
{
	char err[1024];
	struct warnings w = {0};
	struct config *c = load_example("fs.yml", 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ_INT(w.count, 0);
	CHECK_EQ_STR(c->address, "0.0.0.0:7373");
	CHECK_EQ_STR(c->admin_identity, ADMIN);
	CHECK_EQ_STR(c->tls.key, "./server.key");
	CHECK_EQ_STR(c->tls.cert, "./server.cert");
	CHECK(c->tls.password == NULL);
	CHECK(c->tls.ca == NULL);
	CHECK_EQ_INT(c->tls.auth, CONFIG_TLS_AUTH_OFF);
	CHECK_EQ_INT(c->keystore, CONFIG_KEYSTORE_FS);
	CHECK_EQ_STR(c->fs_path, "/tmp/keys");
	CHECK(strstr(c->file, "fs.yml") != NULL);
	config_free(c);
}

static void test_example_custom_api(void)
{
	char err[1024];
	struct warnings w = {0};
	struct config *c = load_example("custom-api.yml", 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ_INT(w.count, 0);
	CHECK_EQ_STR(c->admin_identity, "disabled");
	CHECK_EQ_STR(c->tls.key, "./private.key");
	CHECK_EQ_INT(c->cache.expiry_any_ms, 300000);
	CHECK_EQ_INT(c->cache.expiry_unused_ms, 30000);
	CHECK_EQ_INT(c->cache.expiry_offline_ms, 0);
	CHECK_EQ_INT(c->api_count, 2);
	CHECK_EQ_STR(c->api[0].path, "/v1/status");
	CHECK_EQ_INT(c->api[0].timeout_ms, 17000);
	CHECK(c->api[0].skip_auth);
	CHECK_EQ_INT(c->api[0].line, 17);
	CHECK_EQ_STR(c->api[1].path, "/v1/metrics");
	CHECK_EQ_INT(c->api[1].timeout_ms, 22000);
	CHECK(c->api[1].skip_auth);
	CHECK_EQ_STR(c->fs_path, "/tmp/kes");
	config_free(c);
}

static void check_vault_approle(const char *file)
{
	char err[1024];
	struct warnings w = {0};
	struct config *c = load_example(file, 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ_INT(w.count, 0);
	CHECK_EQ_INT(c->keystore, CONFIG_KEYSTORE_VAULT);
	const struct vault_config *v = &c->vault;
	CHECK_EQ_STR(v->endpoint, "https://127.0.0.1:8200");
	CHECK_EQ_STR(v->engine, "kv");
	CHECK_EQ_INT(v->kv_version, 2);
	CHECK_EQ_STR(v->namespace_, "ns1");
	CHECK_EQ_STR(v->prefix, "tenant-1");
	CHECK(!v->transit);
	CHECK_EQ_INT(v->auth, VAULT_AUTH_APPROLE);
	CHECK_EQ_STR(v->auth_engine, "approle");
	CHECK(v->auth_namespace == NULL);
	CHECK_EQ_STR(v->approle_id, "db02de05-fa39-4855-059b-67221c5c2f63");
	CHECK_EQ_STR(v->approle_secret, "6a174c20-f6de-a53c-74d2-6018fcceff64");
	CHECK_EQ_INT(v->ping_ms, 15000);
	CHECK_EQ_INT(v->max_retries, -1);
	CHECK(v->tls_ca == NULL && v->tls_cert == NULL && v->tls_key == NULL);
	config_free(c);
}

static void test_example_vault(void)
{
	check_vault_approle("vault.yml");
	check_vault_approle("vault-approle.yml");
}

static void test_example_vault_k8s(void)
{
	char err[1024];
	struct warnings w = {0};
	struct config *c = load_example("vault-k8s.yml", 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (!c)
		return;
	const struct vault_config *v = &c->vault;
	CHECK_EQ_STR(v->endpoint, "https://127.0.0.1:8201");
	CHECK_EQ_STR(v->engine, "secrets");
	CHECK_EQ_INT(v->kv_version, 1);
	CHECK_EQ_INT(v->auth, VAULT_AUTH_KUBERNETES);
	CHECK_EQ_STR(v->auth_engine, "kubernetes");
	CHECK_EQ_STR(v->k8s_role, "default");
	CHECK(!v->k8s_jwt_is_file);
	CHECK(strncmp(v->k8s_jwt, "eyJhbGciOiJSUzI1NiIs", 20) == 0);
	CHECK(v->k8s_jwt[strlen(v->k8s_jwt) - 1] == 'w'); /* trailing spaces are not part of it */
	config_free(c);
}

/* The JWT path is relative ("./testdata/..."): it must be readable from the working dir. */
static void test_example_vault_k8s_file(void)
{
	char err[1024], cwd[PATH_MAX];
	struct warnings w = {0};
	CHECK(getcwd(cwd, sizeof cwd) != NULL);
	CHECK_EQ_INT(chdir(tmp_dir), 0);

	struct config *c =
	    load_example("vault-k8s-with-service-account-file.yml", 0, err, sizeof err, &w);
	CHECK(c == NULL);
	char want[PATH_MAX + 256];
	snprintf(want, sizeof want,
	         "%s/vault-k8s-with-service-account-file.yml:22: keystore.vault.kubernetes.jwt: "
	         "failed to read vault kubernetes JWT from './testdata/vault-k8s-service-account': "
	         "No such file or directory",
	         data_dir);
	CHECK_EQ_STR(err, want);

	CHECK_EQ_INT(mkdir("testdata", 0700), 0);
	FILE *f = fopen("testdata/vault-k8s-service-account", "w");
	CHECK(f != NULL);
	if (f) {
		fputs("eyJhbGciOiJSUzI1NiIsImtpZCI6IkJQbGNNeTdBeXdLQmZMaGw2N1dFZkJvUmtsdnVvdkxX",
		      f);
		fclose(f);
	}
	c = load_example("vault-k8s-with-service-account-file.yml", 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (c) {
		CHECK(c->vault.k8s_jwt_is_file);
		CHECK_EQ_STR(c->vault.k8s_jwt, "./testdata/vault-k8s-service-account");
		CHECK_EQ_STR(c->vault.namespace_, "ns2");
		CHECK_EQ_STR(c->vault.prefix, "tenant-2");
	}
	config_free(c);
	CHECK_EQ_INT(unlink("testdata/vault-k8s-service-account"), 0);
	CHECK_EQ_INT(rmdir("testdata"), 0);
	CHECK_EQ_INT(chdir(cwd), 0);
}

static void test_example_aws(void)
{
	const char *files[] = {"aws.yml", "aws-no-credentials.yml"};
	for (size_t i = 0; i < 2; i++) {
		char err[1024], want[PATH_MAX + 128];
		struct warnings w = {0};
		struct config *c = load_example(files[i], 0, err, sizeof err, &w);
		CHECK(c == NULL);
		snprintf(want, sizeof want,
		         "%s/%s:13: keystore.aws: not supported by kesc (supported: fs, vault)",
		         data_dir, files[i]);
		CHECK_EQ_STR(err, want);
		CHECK_EQ_INT(w.count, 0);
	}
}

static void check_template(const struct config *c)
{
	CHECK_EQ_STR(c->address, "0.0.0.0:7373");
	CHECK_EQ_STR(c->admin_identity, ADMIN);
	CHECK_EQ_STR(c->tls.key, "./server.key");
	CHECK_EQ_STR(c->tls.cert, "./server.cert");
	CHECK(c->tls.password == NULL);
	CHECK_EQ_INT(c->tls.auth, CONFIG_TLS_AUTH_OFF);
	CHECK_EQ_INT(c->tls.proxy_identity_count, 0);
	CHECK_EQ_STR(c->tls.proxy_cert_header, "X-Tls-Client-Cert");
	CHECK_EQ_INT(c->api_count, 1);
	CHECK_EQ_STR(c->api[0].path, "/v1/ready");
	CHECK(!c->api[0].skip_auth);
	CHECK_EQ_INT(c->api[0].timeout_ms, 15000);
	CHECK_EQ_INT(c->policy_count, 2);
	CHECK_EQ_STR(c->policies[0].name, "my-app");
	CHECK_EQ_INT(c->policies[0].allow_count, 3);
	CHECK_EQ_INT(c->policies[0].deny_count, 2);
	CHECK_EQ_STR(c->policies[0].deny[1], "/v1/key/decrypt/my-app-internal*");
	CHECK_EQ_INT(c->policies[0].identity_count, 2);
	CHECK_EQ_STR(c->policies[0].identities[1], ID_B);
	CHECK_EQ_STR(c->policies[1].name, "my-app-ops");
	CHECK_EQ_INT(c->policies[1].deny_count, 0);
	CHECK_EQ_INT(c->cache.expiry_any_ms, 300000);
	CHECK_EQ_INT(c->cache.expiry_unused_ms, 20000);
	CHECK_EQ_INT(c->cache.expiry_offline_ms, 0);
	CHECK_EQ_INT(c->log.error_level, LOG_LEVEL_INFO);
	CHECK_EQ_INT(c->log.audit_level, LOG_LEVEL_OFF);
	CHECK_EQ_INT(c->key_count, 2);
	CHECK_EQ_STR(c->keys[0], "some-key-name");
	CHECK_EQ_STR(c->keys[1], "another-key-name");
}

/*
 * KES's server-config.yaml lists every keystore with empty values. Decision: such sections do
 * not count as specified, so the template has no keystore: an error for config_load (as in
 * KES), accepted with CONFIG_ALLOW_NO_KEYSTORE, and a filled-in fs path makes it a normal
 * fs config.
 */
static void test_example_template(void)
{
	char err[1024], want[PATH_MAX + 128];
	struct warnings w = {0};
	struct config *c = load_example("server-config.yaml", 0, err, sizeof err, &w);
	CHECK(c == NULL);
	snprintf(want, sizeof want, "%s/server-config.yaml:226: keystore: no keystore specified",
	         data_dir);
	CHECK_EQ_STR(err, want);

	w.count = 0;
	c = load_example("server-config.yaml", CONFIG_ALLOW_NO_KEYSTORE, err, sizeof err, &w);
	CHECK(c != NULL);
	/* KES's own template still carries gemalto's retry, which KES HEAD no longer reads */
	CHECK_EQ_INT(w.count, 1);
	snprintf(want, sizeof want,
	         "%s/server-config.yaml:299: 'keystore.gemalto.keysecure.credentials.retry' is no "
	         "longer used (ignored, as KES does)",
	         data_dir);
	CHECK_EQ_STR(w.text[0], want);
	if (c) {
		CHECK_EQ_INT(c->keystore, CONFIG_KEYSTORE_NONE);
		check_template(c);
	}
	config_free(c);

	/* the same template with the fs path filled in */
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/server-config.yaml", data_dir);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	static char text[65536];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	char *p = strstr(text, "path: \"\" # Path to directory");
	CHECK(p != NULL);
	if (!p)
		return;
	memcpy(p, "path: /x", 8); /* the comment after it stays */
	c = parse_w(text, &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->keystore, CONFIG_KEYSTORE_FS);
		CHECK_EQ_STR(c->fs_path, "/x");
		check_template(c);
	}
	config_free(c);
}

static void test_example_minio(void)
{
	char err[1024];
	struct warnings w = {0};
	setenv("ROOT_IDENTITY", ADMIN, 1);
	setenv("MINIO_IDENTITY", ID_A, 1);
	struct config *c = load_example("minio.yml", 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_STR(c->admin_identity, ADMIN);
		CHECK_EQ_INT(c->policy_count, 1);
		CHECK_EQ_STR(c->policies[0].name, "minio");
		CHECK_EQ_INT(c->policies[0].allow_count, 9);
		CHECK_EQ_STR(c->policies[0].allow[3], "/v1/key/bulk/decrypt");
		CHECK_EQ_INT(c->policies[0].identity_count, 1);
		CHECK_EQ_STR(c->policies[0].identities[0], ID_A);
		CHECK_EQ_INT(c->policies[0].line, 10);
	}
	CHECK_EQ_INT(w.count, 0);
	config_free(c);

	/* MINIO_IDENTITY unset: the error names the variable and the line */
	unsetenv("MINIO_IDENTITY");
	c = load_example("minio.yml", 0, err, sizeof err, &w);
	CHECK(c == NULL);
	CHECK(strstr(err, "/minio.yml:22: policy.minio.identities: referenced env. variable "
	                  "'MINIO_IDENTITY' not found") != NULL);
	/* set but empty: nobody is assigned, with a warning */
	setenv("MINIO_IDENTITY", "", 1);
	w.count = 0;
	c = load_example("minio.yml", 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_INT(c->policies[0].identity_count, 0);
	CHECK_EQ_INT(w.count, 1);
	CHECK(strstr(w.text[0], "/minio.yml:22: policy.minio.identities: empty identity ignored") !=
	      NULL);
	config_free(c);
	/* the MinIO identity may not be the admin */
	setenv("MINIO_IDENTITY", ADMIN, 1);
	c = load_example("minio.yml", 0, err, sizeof err, &w);
	CHECK(c == NULL);
	CHECK(strstr(err, "/minio.yml:22: policy.minio.identities: identity '" ADMIN
	                  "' is already admin") != NULL);
	unsetenv("MINIO_IDENTITY");
	unsetenv("ROOT_IDENTITY");
}

static void test_example_vault_transit(void)
{
	char err[1024];
	struct warnings w = {0};
	setenv("VAULT_APPROLE_SECRET", "s3cr3t", 1);
	struct config *c = load_example("vault-transit.yml", 0, err, sizeof err, &w);
	CHECK(c != NULL);
	if (c) {
		const struct vault_config *v = &c->vault;
		CHECK_EQ_INT(c->tls.auth, CONFIG_TLS_AUTH_ON);
		CHECK_EQ_INT(c->log.error_level, LOG_LEVEL_INFO);
		CHECK(c->log.error_file == NULL);
		CHECK_EQ_STR(c->log.audit_file, "/var/log/kesc/audit.log");
		CHECK_EQ_INT(c->log.audit_level, LOG_LEVEL_INFO);
		CHECK_EQ_INT(c->key_count, 1);
		CHECK(v->transit);
		CHECK_EQ_STR(v->transit_engine, "transit");
		CHECK_EQ_STR(v->transit_key, "kesc-wrap");
		CHECK_EQ_STR(v->approle_secret, "s3cr3t");
		CHECK_EQ_STR(v->tls_ca, "/etc/kesc/vault-ca.pem");
		CHECK_EQ_INT(v->ping_ms, 30000);
		CHECK_EQ_INT(v->kv_version, 1);
		CHECK_EQ_INT(c->server.max_connections, 4096);
		CHECK_EQ_INT(c->server.handshake_timeout_ms, 5000);
		CHECK_EQ_INT(c->server.header_timeout_ms, 2000);
		CHECK_EQ_INT(c->server.idle_timeout_ms, 60000);
		CHECK_EQ_INT(c->server.shutdown_timeout_ms, 20000);
		CHECK_EQ_INT(c->server.threads, 2);
	}
	CHECK_EQ_INT(w.count, 0);
	config_free(c);
	unsetenv("VAULT_APPROLE_SECRET");
}

static void test_defaults(void)
{
	char err[512];
	struct warnings w = {0};
	struct config *c = parse_w(BASE, &w, err, sizeof err);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ_STR(c->file, "config.yml");
	CHECK_EQ_STR(c->address, "0.0.0.0:7373");
	CHECK_EQ_INT(c->tls.auth, CONFIG_TLS_AUTH_OFF);
	CHECK_EQ_STR(c->tls.proxy_cert_header, "X-Tls-Client-Cert");
	CHECK_EQ_INT(c->cache.expiry_any_ms, 5 * 60 * 1000);
	CHECK_EQ_INT(c->cache.expiry_unused_ms, 30 * 1000);
	CHECK_EQ_INT(c->cache.expiry_offline_ms, 0);
	CHECK_EQ_INT(c->cache.status_interval_ms, 0);
	CHECK_EQ_INT(c->log.error_level, LOG_LEVEL_INFO);
	CHECK_EQ_INT(c->log.audit_level, LOG_LEVEL_INFO);
	CHECK(c->log.error_file == NULL && c->log.audit_file == NULL);
	CHECK_EQ_INT(c->api_count, 0);
	CHECK_EQ_INT(c->key_count, 0);
	CHECK_EQ_INT(c->policy_count, 0);
	CHECK_EQ_INT(c->server.max_connections, 10240);
	CHECK_EQ_INT(c->server.handshake_timeout_ms, 5000);
	CHECK_EQ_INT(c->server.header_timeout_ms, 5000);
	CHECK_EQ_INT(c->server.idle_timeout_ms, 90000);
	CHECK_EQ_INT(c->server.shutdown_timeout_ms, 10000);
	CHECK_EQ_INT(c->server.threads, 0);
	CHECK_EQ_INT(w.count, 0);
	config_free(c);

	/* KES treats 0 for any/unused as "not set"; offline 0 is off */
	c = parse_w(BASE "cache:\n  expiry:\n    any: 0s\n    unused: 0\n    offline: 1h\n", &w,
	            err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->cache.expiry_any_ms, 300000);
		CHECK_EQ_INT(c->cache.expiry_unused_ms, 30000);
		CHECK_EQ_INT(c->cache.expiry_offline_ms, 3600000);
	}
	config_free(c);
	/* only `any` given: unused keeps its own default (KES's configureCache bug not copied) */
	c = parse_w(BASE "cache:\n  expiry:\n    any: 1m\n", &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->cache.expiry_any_ms, 60000);
		CHECK_EQ_INT(c->cache.expiry_unused_ms, 30000);
	}
	config_free(c);
}

static void test_errors_top(void)
{
	expect_error("version: v2\n" BASE, "config.yml:1: version: invalid config version 'v2'");
	expect_error("tls:\n  key: k\n  cert: c\nkeystore:\n  fs:\n    path: /p\n",
	             "config.yml:1: admin.identity: no admin identity");
	expect_error("admin:\n  identity: \"\"\ntls:\n  key: k\n  cert: c\n",
	             "config.yml:2: admin.identity: no admin identity");
	expect_error(BASE "root: " ADMIN "\n",
	             "config.yml:9: root: both 'root' and 'admin.identity' are set; keep only "
	             "'admin.identity'");
	expect_error("admin:\n  identity: x\nkeystore:\n  fs:\n    path: /p\n",
	             "config.yml:1: tls.key: no private key");
	expect_error("admin:\n  identity: x\ntls:\n  cert: c\n",
	             "config.yml:3: tls.key: no private key");
	expect_error("admin:\n  identity: x\ntls:\n  key: k\n  cert: \"\"\n",
	             "config.yml:5: tls.cert: no certificate");
	expect_error("admin:\n  identity: x\ntls:\n  key: k\n  cert: c\n  auth: maybe\n",
	             "config.yml:6: tls.auth: invalid auth 'maybe'");
	expect_error(BASE "address: ${KESC_TEST_UNSET_VAR}\n",
	             "config.yml:9: address: referenced env. variable 'KESC_TEST_UNSET_VAR' not "
	             "found");
	expect_error(BASE "admin:\n  identity: x\n",
	             "config.yml:9: duplicate key 'admin' (first at line 1)");
	expect_error(BASE "tls2: &a x\nother: *a\n",
	             "config.yml:10: YAML aliases (*a) are not supported; write the value out");
	expect_error("- a\n- b\n",
	             "config.yml:1: the configuration must be a YAML mapping (key: value lines)");
	expect_error(BASE "address:\n  host: x\n",
	             "config.yml:10: address: expected a single value, not a mapping");
	expect_error(BASE "---\na: b\n", "config.yml:9: more than one YAML document in the file");
	expect_error("", "config.yml:1: admin.identity: no admin identity");

	char err[512];
	struct warnings w = {0};
	struct config *c = parse_w("a: [1, 2\n", &w, err, sizeof err);
	CHECK(c == NULL);
	CHECK(strncmp(err, "config.yml:2: invalid YAML: ", 28) == 0);
	c = parse_w("a: b\n\tc: d\n", &w, err, sizeof err);
	CHECK(c == NULL);
	CHECK(strncmp(err, "config.yml:", 11) == 0 && strstr(err, "invalid YAML") != NULL);
}

static void test_errors_sections(void)
{
	expect_error(BASE "version: v1\ncache:\n  expiry:\n    any: -1s\n",
	             "config.yml:12: cache.expiry.any: invalid cache expiry '-1s'");
	expect_error(BASE "cache:\n  expiry:\n    unused: -5m\n",
	             "config.yml:11: cache.expiry.unused: invalid cache unused expiry '-5m'");
	expect_error(BASE "cache:\n  expiry:\n    offline: -1h\n",
	             "config.yml:11: cache.expiry.offline: invalid offline cache expiry '-1h'");
	expect_error(BASE "cache:\n  expiry:\n    any: 30\n",
	             "config.yml:11: cache.expiry.any: invalid duration '30': missing unit (for "
	             "example '30s')");
	expect_error(BASE "cache:\n  expiry:\n    any: 5 minutes\n",
	             "config.yml:11: cache.expiry.any: invalid duration '5 minutes' (use Go syntax "
	             "such as '30s', '5m', '1h30m')");
	expect_error(BASE "cache: 5m\n",
	             "config.yml:9: cache: expected a mapping (key: value lines)");
	expect_error(BASE "log:\n  error: loud\n",
	             "config.yml:10: log.error: invalid log level 'loud'");
	expect_error(BASE "log:\n  audit: INFO-1\n",
	             "config.yml:10: log.audit: invalid log level 'INFO-1'");
	expect_error(BASE "api:\n  /v1/status:\n    timeout: -1s\n",
	             "config.yml:11: api./v1/status.timeout: invalid timeout '-1s'");
	expect_error(
	    BASE "api:\n  /v1/status:\n    skip_auth: maybe\n",
	    "config.yml:11: api./v1/status.skip_auth: invalid boolean 'maybe' (use true or "
	    "false)");
	expect_error(BASE "api:\n  v1/status:\n    skip_auth: true\n",
	             "config.yml:10: api: 'v1/status' is not an API path (for example /v1/status)");
	expect_error(BASE "keys:\n  - name: a\n  - name: b\n  - name: a\n",
	             "config.yml:12: keys: key 'a' is defined multiple times");
	expect_error(
	    BASE "keys:\n  - name: my.key\n",
	    "config.yml:10: keys[0].name: key name 'my.key' is empty, too long or contains "
	    "invalid characters");
	expect_error(BASE "keys:\n  - a\n",
	             "config.yml:10: keys[0]: expected '- name: <key name>'");
	expect_error(BASE "keys:\n  fs:\n    path: /x\n",
	             "config.yml:10: keys: expected a list of '- name: <key name>' entries (the "
	             "keystore section of old KES configs is now called 'keystore')");
	expect_error(BASE "server:\n  max_connections: 0\n",
	             "config.yml:10: server.max_connections: must be at least 1");
	expect_error(BASE "server:\n  max_connections: lots\n",
	             "config.yml:10: server.max_connections: invalid number 'lots'");
	expect_error(BASE "server:\n  threads: 5000\n",
	             "config.yml:10: server.threads: at most 1024 (0 = one per CPU core)");
	expect_error(BASE "server:\n  idle_timeout: 0s\n",
	             "config.yml:10: server.idle_timeout: must be a positive duration");
	expect_error(BASE "server:\n  shutdown_timeout: -1s\n",
	             "config.yml:10: server.shutdown_timeout: must be a positive duration");
}

/* key_lifecycle: (kesc only): rotation by age and deletion protection. */
static void test_key_lifecycle(void)
{
	char err[1024] = "";
	struct warnings w = {0};
	struct config *c = parse_w(BASE, &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) { /* off by default: KES's immediate delete, no rotation */
		CHECK_EQ_INT(c->lifecycle.rotate_after_ms, 0);
		CHECK_EQ_INT(c->lifecycle.delete_window_ms, 0);
		CHECK_EQ_INT(c->lifecycle.check_interval_ms, 3600 * 1000);
	}
	config_free(c);
	c = parse_w(BASE "key_lifecycle:\n  rotate_after: 2160h\n  delete_window: 168h\n"
	                 "  check_interval: 10m\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->lifecycle.rotate_after_ms, 2160LL * 3600 * 1000);
		CHECK_EQ_INT(c->lifecycle.delete_window_ms, 168LL * 3600 * 1000);
		CHECK_EQ_INT(c->lifecycle.check_interval_ms, 600 * 1000);
	}
	config_free(c);
	c = parse_w(BASE "key_lifecycle:\n  rotate_after: 0\n  check_interval: 0s\n", &w, err,
	            sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->lifecycle.rotate_after_ms, 0);
		CHECK_EQ_INT(c->lifecycle.check_interval_ms, 3600 * 1000);
	}
	config_free(c);
	expect_error(BASE "key_lifecycle:\n  rotate_after: 500ms\n",
	             "config.yml:10: key_lifecycle.rotate_after: must be 0 (off) or between 1s and "
	             "10 years");
	expect_error(BASE "key_lifecycle:\n  delete_window: -1h\n",
	             "config.yml:10: key_lifecycle.delete_window: must be 0 (off) or between 1s "
	             "and 10 years");
	expect_error(BASE "key_lifecycle:\n  delete_window: 7d\n",
	             "config.yml:10: key_lifecycle.delete_window: invalid duration '7d' (use Go "
	             "syntax such as '30s', '5m', '1h30m')");
	expect_error(BASE "key_lifecycle:\n  rotate_afte: 1h\n",
	             "config.yml:10: unknown field 'key_lifecycle.rotate_afte' (did you mean "
	             "'rotate_after'?)");
	/* A K/V v1 mount can only overwrite: refused unless the operator opted in. */
	static const char v1[] = "admin:\n  identity: " ADMIN "\ntls:\n  key: k\n  cert: c\n"
	                         "keystore:\n  vault:\n    endpoint: https://v:8200\n"
	                         "    approle:\n      id: i\n      secret: s\n";
	char text[1024];
	snprintf(text, sizeof text, "%skey_lifecycle:\n  delete_window: 1h\n", v1);
	char want[512];
	snprintf(want, sizeof want,
	         "config.yml:13: key_lifecycle: rotation and deletion protection change stored "
	         "keys in place, which a K/V v1 mount can only do by overwriting them: use a K/V "
	         "v2 mount, or set keystore.vault.allow_unsafe_kv_v1_update (see kesc.yml(5))");
	expect_error(text, want);
	snprintf(text, sizeof text,
	         "%s    allow_unsafe_kv_v1_update: true\nkey_lifecycle:\n  delete_window: 1h\n",
	         v1);
	c = parse_w(text, &w, err, sizeof err);
	CHECK(c != NULL);
	config_free(c);
	snprintf(text, sizeof text, "%s    version: v2\nkey_lifecycle:\n  rotate_after: 1h\n", v1);
	c = parse_w(text, &w, err, sizeof err);
	if (!c)
		fprintf(stderr, "  %s\n", err);
	CHECK(c != NULL);
	config_free(c);
}

static void test_errors_policy(void)
{
	expect_error(BASE "version: v1\npolicy:\n  p:\n    identities:\n    - " ADMIN "\n",
	             "config.yml:13: policy.p.identities: identity '" ADMIN "' is already admin");
	expect_error(BASE "policy:\n  p:\n    identities: [" ID_A "]\n  q:\n    identities:\n"
	                  "    - " ID_B "\n    - " ID_A "\n",
	             "config.yml:15: policy.q.identities: cannot assign policy 'q' to '" ID_A
	             "': identity already has a policy ('p')");
	expect_error(BASE "policy:\n  my.app:\n    allow: [/v1/status]\n",
	             "config.yml:10: policy: policy name 'my.app' is empty, too long or contains "
	             "invalid characters");
	expect_error(
	    BASE "policy:\n  _:\n    allow: [/v1/status]\n",
	    "config.yml:10: policy: policy name '_' is empty, too long or contains invalid "
	    "characters");
	expect_error(BASE "policy:\n  p:\n    identities: [\"a b\"]\n",
	             "config.yml:11: policy.p.identities: identity 'a b' is empty, too long or "
	             "contains invalid characters");
	expect_error(BASE "policy:\n  p:\n    allow: /v1/status\n",
	             "config.yml:11: policy.p.allow: expected a list");
	expect_error(BASE "tls2:\ntls:\n", "config.yml:10: duplicate key 'tls' (first at line 3)");
	expect_error("admin:\n  identity: " ADMIN "\ntls:\n  key: k\n  cert: c\n  proxy:\n"
	             "    identities:\n    - " ADMIN "\n",
	             "config.yml:8: tls.proxy.identities: identity '" ADMIN "' is already admin");
	expect_error("admin:\n  identity: " ADMIN "\ntls:\n  key: k\n  cert: c\n  proxy:\n"
	             "    identities: [" ID_B "]\npolicy:\n  p:\n    identities: [" ID_B "]\n",
	             "config.yml:10: policy.p.identities: identity '" ID_B
	             "' is already a TLS proxy");
}

#define HEAD                      \
	"admin:\n"                \
	"  identity: " ADMIN "\n" \
	"tls:\n"                  \
	"  key: k.pem\n"          \
	"  cert: c.pem\n"         \
	"keystore:\n"

#define ID_C "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"

/* A Vault keystore whose lines 1-13 are fixed; tenants start at line 14. */
#define VAULT_BASE                           \
	HEAD "  vault:\n"                    \
	     "    endpoint: https://v:8200\n" \
	     "    namespace: ops\n"           \
	     "    prefix: kes\n"              \
	     "    approle:\n"                 \
	     "      id: top-id\n"             \
	     "      secret: top-secret\n"

/* tenants: (issue 15): layouts, inheritance, isolation checks, the tenant's own login. */
static void test_tenants(void)
{
	char err[1024] = "";
	struct warnings w = {0};
	/* a config without tenants: has none (KES's format, unchanged) */
	struct config *c = parse_w(BASE, &w, err, sizeof err);
	CHECK(c && c->tenant_count == 0 && c->tenants == NULL);
	config_free(c);

	c = parse_w(BASE "cache:\n  expiry:\n    any: 1m\n  max_keys: 7\n"
	                 "policy:\n  top:\n    identities: [" ID_C "]\n"
	                 "tenants:\n"
	                 "  acme:\n"
	                 "    policy:\n"
	                 "      minio:\n"
	                 "        allow: [/v1/key/*]\n"
	                 "        identities: [" ID_A "]\n"
	                 "    cache:\n      expiry:\n        unused: 5s\n"
	                 "    keys:\n    - name: minio-default-key\n"
	                 "  beta:\n"
	                 "    keystore:\n      fs:\n        path: b/deep/\n"
	                 "    policy:\n      minio:\n        identities: [" ID_B "]\n"
	                 "    cache:\n      max_keys: 3\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(c->cache.max_keys == 7);
	CHECK_EQ_INT(c->tenant_count, 2);
	CHECK_EQ_STR(c->tenants[0].name, "acme");
	CHECK_EQ_STR(c->tenants[0].fs_path, "/tmp/k/acme");
	CHECK_EQ_STR(c->tenants[1].fs_path, "/tmp/k/b/deep");
	CHECK_EQ_INT(c->tenants[0].policy_count, 1);
	CHECK_EQ_STR(c->tenants[0].policies[0].identities[0], ID_A);
	CHECK_EQ_INT(c->tenants[0].cache.expiry_any_ms, 60000);
	CHECK_EQ_INT(c->tenants[0].cache.expiry_unused_ms, 5000);
	CHECK(c->tenants[0].cache.max_keys == 7);
	CHECK(c->tenants[1].cache.max_keys == 3);
	CHECK_EQ_INT(c->tenants[0].key_count, 1);
	CHECK_EQ_STR(c->tenants[0].keys[0], "minio-default-key");
	config_free(c);

	/* vault: namespace and prefix replace the top level's, absent ones are inherited, and
	 * a tenant with neither is below its own name; own login or the top-level token */
	c = parse_w(VAULT_BASE "tenants:\n"
	                       "  a:\n"
	                       "  b:\n    keystore:\n      vault:\n        namespace: tenants/b\n"
	                       "  c:\n    keystore:\n      vault:\n        prefix: c-keys\n"
	                       "        engine: kv-c\n        version: v2\n"
	                       "        namespace: \"\"\n"
	                       "        approle:\n          id: c-id\n          secret: c-secret\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		const struct config_tenant *t = c->tenants;
		CHECK_EQ_STR(t[0].vault.namespace_, "ops");
		CHECK_EQ_STR(t[0].vault.prefix, "a");
		CHECK(!t[0].vault_own_auth);
		CHECK_EQ_STR(t[0].vault.endpoint, "https://v:8200");
		CHECK_EQ_STR(t[1].vault.namespace_, "tenants/b");
		CHECK_EQ_STR(t[1].vault.prefix, "kes");
		CHECK(t[2].vault.namespace_ == NULL);
		CHECK_EQ_STR(t[2].vault.prefix, "c-keys");
		CHECK_EQ_STR(t[2].vault.engine, "kv-c");
		CHECK_EQ_INT(t[2].vault.kv_version, 2);
		CHECK_EQ_INT(t[1].vault.kv_version, 1);
		CHECK_EQ_STR(t[1].vault.engine, "kv");
		CHECK(t[2].vault_own_auth);
		CHECK_EQ_STR(t[2].vault.approle_id, "c-id");
		CHECK_EQ_STR(t[2].vault.approle_secret, "c-secret");
		CHECK_EQ_STR(c->vault.approle_id, "top-id");
	}
	config_free(c);

	/* identities are unique in the whole file; the admin is nobody's */
	expect_error(BASE "policy:\n  p:\n    identities: [" ID_A "]\n"
	                  "tenants:\n  t:\n    policy:\n      q:\n        identities: [" ID_A "]\n",
	             "config.yml:16: tenants.t.policy.q.identities: cannot assign policy 'q' to '" ID_A
	             "': identity already has a policy ('p')");
	expect_error(BASE "tenants:\n  t:\n    policy:\n      q:\n        identities: [" ID_A "]\n"
	                  "  u:\n    policy:\n      q:\n        identities: [" ID_A "]\n",
	             "config.yml:17: tenants.u.policy.q.identities: cannot assign policy 'q' to '" ID_A
	             "': identity already has a policy ('q' of tenant 't')");
	expect_error(BASE "tenants:\n  t:\n    policy:\n      q:\n        identities: [" ADMIN "]\n",
	             "config.yml:13: tenants.t.policy.q.identities: identity '" ADMIN
	             "' is already admin");
	/* locations: never shared, never outside the top-level directory */
	expect_error(BASE "tenants:\n  t:\n    keystore:\n      fs:\n        path: x\n"
	                  "  u:\n    keystore:\n      fs:\n        path: x/y\n",
	             "config.yml:14: tenants: tenants 't' and 'u' share a keystore location "
	             "('/tmp/k/x' and '/tmp/k/x/y')");
	expect_error(BASE "tenants:\n  t:\n    keystore:\n      fs:\n        path: ../other\n",
	             "config.yml:13: tenants.t.keystore.fs.path: '../other' is not a directory below "
	             "keystore.fs.path (a relative path of [0-9A-Za-z_.-] names, without '.' or "
	             "'..')");
	expect_error(BASE "tenants:\n  t:\n    keystore:\n      fs:\n        path: /abs\n",
	             "config.yml:13: tenants.t.keystore.fs.path: '/abs' is not a directory below "
	             "keystore.fs.path (a relative path of [0-9A-Za-z_.-] names, without '.' or "
	             "'..')");
	expect_error(VAULT_BASE "tenants:\n  t:\n    keystore:\n      vault:\n        prefix: kes\n",
	             "config.yml:15: tenants: tenant 't' uses the top-level keystore's location "
	             "(namespace 'ops', prefix 'kes'): give it a prefix or namespace of its own");
	expect_error(VAULT_BASE "tenants:\n  t:\n    keystore:\n      vault:\n        prefix: p/\n"
	                        "  u:\n    keystore:\n      vault:\n        prefix: /p\n",
	             "config.yml:19: tenants: tenants 't' and 'u' share a keystore location "
	             "(namespace 'ops', prefixes 'p' and 'p')");
	expect_error(BASE "tenants:\n  t:\n    keystore:\n      vault:\n        prefix: p\n",
	             "config.yml:12: tenants.t.keystore.vault: the top-level keystore is fs: a "
	             "tenant's keys are a directory below keystore.fs.path ('fs: {path: …}')");
	expect_error(BASE "tenants:\n  bad.name:\n",
	             "config.yml:10: tenants: tenant name 'bad.name' is empty, too long or contains "
	             "invalid characters");
	expect_error(BASE "tenants:\n  t:\n    keystore:\n      fs:\n        pth: x\n",
	             "config.yml:13: unknown field 'tenants.t.keystore.fs.pth' (did you mean "
	             "'path'?)");
	expect_error(VAULT_BASE "tenants:\n  t:\n    keystore:\n      vault:\n        version: v3\n",
	             "config.yml:18: tenants.t.keystore.vault.version: invalid K/V engine version "
	             "'v3' (v1 or v2)");
	expect_error(BASE "tenants:\n  t:\n    cache:\n      max_keys: lots\n",
	             "config.yml:12: tenants.t.cache.max_keys: invalid number 'lots'");
	expect_error(VAULT_BASE "tenants:\n  t:\n    keystore:\n      vault:\n        approle:\n"
	                        "          id: x\n",
	             "config.yml:18: tenants.t.keystore.vault.approle: no approle secret specified");
	const char *no_store = "admin:\n  identity: " ADMIN "\ntls:\n  key: k\n  cert: c\n"
	                       "tenants:\n  t:\n";
	c = NULL;
	CHECK(config_parse_flags("config.yml", no_store, strlen(no_store), CONFIG_ALLOW_NO_KEYSTORE,
	                         &c, err, sizeof err, NULL, NULL) != 0);
	CHECK_EQ_STR(err, "config.yml:6: tenants: tenants need keystore.fs or keystore.vault at the "
	                  "top level (their keys live below it)");
	config_free(c);
}

static void test_errors_keystore(void)
{
	expect_error(HEAD, "config.yml:6: keystore: no keystore specified");
	expect_error("admin:\n  identity: x\ntls:\n  key: k\n  cert: c\n",
	             "config.yml:1: keystore: no keystore specified");
	expect_error(HEAD "  fs:\n    path: \"\"\n",
	             "config.yml:6: keystore: no keystore specified");
	setenv("KESC_TEST_EMPTY", "", 1);
	expect_error(HEAD "  fs:\n    path: ${KESC_TEST_EMPTY}\n",
	             "config.yml:7: keystore.fs: no path specified");
	unsetenv("KESC_TEST_EMPTY");
	expect_error(HEAD "  fs:\n    path: /a\n  vault:\n    endpoint: https://v\n",
	             "config.yml:9: keystore: more than one keystore specified ('fs' and 'vault')");
	expect_error(HEAD "  gcp:\n    secretmanager:\n      project_id: p\n",
	             "config.yml:7: keystore.gcp: not supported by kesc (supported: fs, vault)");
	expect_error(HEAD "  kes:\n    endpoint: [https://a]\n",
	             "config.yml:7: keystore.kes: not supported by kesc (supported: fs, vault)");
	expect_error(HEAD "  vault:\n    approle:\n      id: a\n      secret: b\n",
	             "config.yml:7: keystore.vault: no endpoint specified");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n",
	             "config.yml:7: keystore.vault: no authentication method specified");
	expect_error(
	    HEAD "  vault:\n    endpoint: https://v\n    approle:\n      id: a\n"
	         "    kubernetes:\n      jwt: j\n",
	    "config.yml:11: keystore.vault: more than one authentication method specified");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    approle:\n      secret: s\n",
	             "config.yml:9: keystore.vault.approle: no approle ID specified");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    approle:\n      id: a\n"
	                  "      secret: \"\"\n",
	             "config.yml:9: keystore.vault.approle: no approle secret specified");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    kubernetes:\n      role: r\n",
	             "config.yml:9: keystore.vault.kubernetes: no JWT specified");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    approle: {id: a, secret: b}\n"
	                  "    transit:\n      engine: t\n",
	             "config.yml:10: keystore.vault.transit: no key name specified");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    approle: {id: a, secret: b}\n"
	                  "    tls:\n      key: k\n",
	             "config.yml:10: keystore.vault.tls: no TLS certificate provided");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    approle: {id: a, secret: b}\n"
	                  "    tls:\n      cert: c\n",
	             "config.yml:10: keystore.vault.tls: no TLS private key provided");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    version: v3\n"
	                  "    approle: {id: a, secret: b}\n",
	             "config.yml:9: keystore.vault.version: invalid K/V engine version 'v3' (v1 or "
	             "v2)");
	expect_error(
	    HEAD "  vault:\n    endpoint: https://v\n    approle: {id: a, secret: b}\n"
	         "    status:\n      ping: -1s\n",
	    "config.yml:11: keystore.vault.status.ping: invalid status ping interval '-1s'");
	expect_error(
	    HEAD "  vault:\n    endpoint: https://v\n    kubernetes:\n"
	         "      jwt: /nonexistent/kesc/jwt\n",
	    "config.yml:10: keystore.vault.kubernetes.jwt: failed to read vault kubernetes "
	    "JWT from '/nonexistent/kesc/jwt': No such file or directory");
	expect_error(HEAD "  fs: /path\n",
	             "config.yml:7: keystore.fs: expected a mapping (key: value "
	             "lines)");
}

static void test_vault_defaults(void)
{
	char err[512];
	struct warnings w = {0};
	struct config *c = parse_w(HEAD "  vault:\n    endpoint: https://v\n    kubernetes:\n"
	                                "      jwt: abc\n      namespace: /\n    transit:\n"
	                                "      key: wrap\n",
	                           &w, err, sizeof err);
	CHECK(c != NULL);
	if (!c)
		return;
	const struct vault_config *v = &c->vault;
	CHECK_EQ_STR(v->engine, "kv");
	CHECK_EQ_INT(v->kv_version, 1);
	CHECK(v->namespace_ == NULL && v->prefix == NULL);
	CHECK_EQ_INT(v->auth, VAULT_AUTH_KUBERNETES);
	CHECK_EQ_STR(v->auth_engine, "kubernetes");
	CHECK_EQ_STR(v->auth_namespace, "/");
	CHECK(v->k8s_role == NULL);
	CHECK_EQ_STR(v->k8s_jwt, "abc");
	CHECK(!v->k8s_jwt_is_file);
	CHECK(v->transit);
	CHECK_EQ_STR(v->transit_engine, "transit");
	CHECK_EQ_INT(v->ping_ms, 15000);
	CHECK_EQ_INT(v->connect_timeout_ms, 0);
	CHECK_EQ_INT(v->request_timeout_ms, 0);
	config_free(c);

	/* template-style empty sections beside the used one do not count */
	c = parse_w(HEAD
	            "  fs:\n    path: \"\"\n  vault:\n    endpoint: https://v\n"
	            "    transit:\n      key: \"\"\n    approle:\n      id: a\n      secret: b\n"
	            "    kubernetes:\n      jwt: \"\"\n    status:\n      ping: 10s\n"
	            "  gemalto:\n    keysecure:\n      credentials:\n        retry: 15s\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->keystore, CONFIG_KEYSTORE_VAULT);
		CHECK_EQ_INT(c->vault.auth, VAULT_AUTH_APPROLE);
		CHECK(!c->vault.transit);
		CHECK_EQ_INT(c->vault.ping_ms, 10000);
	}
	config_free(c);
}

/* kesc extensions under keystore.vault: the transport's timeouts and retries, the K/V v1
 * overwrite opt-in. */
static void test_vault_transport(void)
{
#define VAULT_HEAD HEAD "  vault:\n    endpoint: https://v\n    approle: {id: a, secret: b}\n"
	char err[512];
	struct warnings w = {0};
	struct config *c =
	    parse_w(VAULT_HEAD "    connect_timeout: 2s\n    request_timeout: 1m30s\n"
	                       "    max_retries: 0\n"
	                       "    allow_unsafe_kv_v1_update: true\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->vault.connect_timeout_ms, 2000);
		CHECK_EQ_INT(c->vault.request_timeout_ms, 90000);
		CHECK_EQ_INT(c->vault.max_retries, 0);
		CHECK(c->vault.allow_unsafe_kv_v1_update);
		CHECK_EQ_INT(w.count, 0); /* known keys: no "unknown key" warning */
	}
	config_free(c);
	c = parse_w(VAULT_HEAD "    connect_timeout: 0s\n    max_retries: 10\n", &w, err,
	            sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(c->vault.connect_timeout_ms, 0); /* 0: vault.c's default */
		CHECK_EQ_INT(c->vault.max_retries, 10);
		CHECK(!c->vault.allow_unsafe_kv_v1_update);
	}
	config_free(c);
	expect_error(VAULT_HEAD "    connect_timeout: 50ms\n",
	             "config.yml:10: keystore.vault.connect_timeout: must be between 100ms and 1m "
	             "(0 = the default, 5s)");
	expect_error(VAULT_HEAD "    connect_timeout: -1s\n",
	             "config.yml:10: keystore.vault.connect_timeout: must be between 100ms and 1m "
	             "(0 = the default, 5s)");
	expect_error(VAULT_HEAD "    request_timeout: 6m\n",
	             "config.yml:10: keystore.vault.request_timeout: must be between 100ms and 5m "
	             "(0 = the default, 15s)");
	expect_error(
	    VAULT_HEAD "    request_timeout: 15\n",
	    "config.yml:10: keystore.vault.request_timeout: invalid duration '15': missing "
	    "unit (for example '15s')");
	expect_error(
	    VAULT_HEAD "    max_retries: 11\n",
	    "config.yml:10: keystore.vault.max_retries: must be between 0 and 10 (default 2)");
	expect_error(VAULT_HEAD "    max_retries: -1\n",
	             "config.yml:10: keystore.vault.max_retries: invalid number '-1'");
	expect_error(VAULT_HEAD "    allow_unsafe_kv_v1_update: maybe\n",
	             "config.yml:10: keystore.vault.allow_unsafe_kv_v1_update: invalid boolean "
	             "'maybe' (use true or false)");
#undef VAULT_HEAD
}

static void test_env(void)
{
	char err[512];
	struct warnings w = {0};
	setenv("KESC_T_ADDR", "127.0.0.1:7000", 1);
	setenv("KESC_T_PATH", "/srv/keys", 1);
	setenv("KESC_T_EMPTY", "", 1);
	setenv("KESC_T_DUR", "90s", 1);
	setenv("KESC_T_BOOL", "on", 1);
	struct config *c = parse_w("admin:\n  identity: \"${ KESC_T_EMPTY }x\"\n"
	                           "address: \"  ${ KESC_T_ADDR }  \"\n"
	                           "tls:\n  key: prefix-${KESC_T_PATH}\n  cert: ${KESC_T_PATH}\n"
	                           "  password: ${KESC_T_EMPTY}\n"
	                           "cache:\n  expiry:\n    any: ${KESC_T_DUR}\n"
	                           "api:\n  /v1/ready:\n    skip_auth: ${KESC_T_BOOL}\n"
	                           "policy:\n  p:\n    allow: [\"${KESC_T_PATH}\"]\n"
	                           "keystore:\n  fs:\n    path: ${KESC_T_PATH}\n",
	                           &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		/* only a whole scalar is substituted; spaces around and inside braces trimmed */
		CHECK_EQ_STR(c->admin_identity, "${ KESC_T_EMPTY }x");
		CHECK_EQ_STR(c->address, "127.0.0.1:7000");
		CHECK_EQ_STR(c->tls.key, "prefix-${KESC_T_PATH}");
		CHECK_EQ_STR(c->tls.cert, "/srv/keys");
		CHECK(c->tls.password == NULL); /* set but empty is allowed */
		CHECK_EQ_INT(c->cache.expiry_any_ms, 90000);
		CHECK(c->api[0].skip_auth);
		CHECK_EQ_STR(c->policies[0].allow[0], "${KESC_T_PATH}"); /* patterns are literal */
		CHECK_EQ_STR(c->fs_path, "/srv/keys");
	}
	config_free(c);

	/* version is never substituted */
	setenv("KESC_T_VERSION", "v1", 1);
	expect_error("version: ${KESC_T_VERSION}\n" BASE,
	             "config.yml:1: version: invalid config version '${KESC_T_VERSION}'");
	/* a substituted value is then checked like a literal one */
	setenv("KESC_T_DUR", "-1s", 1);
	expect_error(BASE "cache:\n  expiry:\n    any: ${KESC_T_DUR}\n",
	             "config.yml:11: cache.expiry.any: invalid cache expiry '${KESC_T_DUR}'");
	expect_error(BASE "version: v1\nlog:\n  error: ${ KESC_T_NOT_THERE }\n",
	             "config.yml:11: log.error: referenced env. variable 'KESC_T_NOT_THERE' not "
	             "found");
	unsetenv("KESC_T_ADDR");
	unsetenv("KESC_T_PATH");
	unsetenv("KESC_T_EMPTY");
	unsetenv("KESC_T_DUR");
	unsetenv("KESC_T_BOOL");
	unsetenv("KESC_T_VERSION");
}

static void test_durations(void)
{
	static const struct {
		const char *in;
		int64_t ms;
	} good[] = {
	    {"0", 0},
	    {"0s", 0},
	    {"5m0s", 300000},
	    {"30s", 30000},
	    {"1h30m", 5400000},
	    {"1.5h", 5400000},
	    {"300ms", 300},
	    {"1m1.5s", 61500},
	    {".5s", 500},
	    {"1.s", 1000},
	    {"+2s", 2000},
	    {"-1s", -1000},
	    {"-0", 0},
	    {"1ns", 1},
	    {"999us", 1},
	    {"1000us", 1},
	    {"2000\xc2\xb5s", 2},
	    {"2000\xce\xbcs", 2},
	    {"1h1m1s1ms", 3661001},
	    {"24h", 86400000},
	    {"2562047h", 9223369200000},
	};
	static const char *const bad[] = {"",         "30",   "s",  "1",     "1x",   "1 s",
	                                  " 1s",      "1s ",  ".s", "1h-1m", "--1s", "5 minutes",
	                                  "2562048h", "1e3s", "-",  "1.5.5s"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		int64_t ms = -42;
		int rc = config_parse_duration(good[i].in, &ms);
		if (rc != 0 || ms != good[i].ms)
			fprintf(stderr, "  duration '%s' -> rc %d, %lld ms\n", good[i].in, rc,
			        (long long)ms);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int64_t ms;
		int rc = config_parse_duration(bad[i], &ms);
		if (rc == 0)
			fprintf(stderr, "  duration '%s' accepted\n", bad[i]);
		CHECK_EQ_INT(rc, -1);
	}
}

static void test_log_levels(void)
{
	static const struct {
		const char *in;
		int level;
	} good[] = {
	    {"", LOG_LEVEL_INFO},       {"on", LOG_LEVEL_INFO},
	    {"ON", LOG_LEVEL_INFO},     {"off", LOG_LEVEL_OFF},
	    {"Off", LOG_LEVEL_OFF},     {"debug", LOG_LEVEL_DEBUG},
	    {"INFO", LOG_LEVEL_INFO},   {"warn", LOG_LEVEL_WARN},
	    {"error", LOG_LEVEL_ERROR}, {"INFO+2", 2},
	    {"error+1", LOG_LEVEL_OFF}, {"DEBUG+-1", -5},
	    {"-4", LOG_LEVEL_DEBUG},    {"8", LOG_LEVEL_ERROR},
	    {" warn ", LOG_LEVEL_WARN}, {"+3", 3},
	};
	static const char *const bad[] = {"loud",    "INFO-1", "INFO+",   "INFO+x",
	                                  "WARNING", "1.5",    "INFO +1", "trace"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		int level = -99;
		int rc = config_parse_log_level(good[i].in, &level);
		if (rc != 0 || level != good[i].level)
			fprintf(stderr, "  level '%s' -> rc %d, %d\n", good[i].in, rc, level);
		CHECK_EQ_INT(rc, 0);
		CHECK_EQ_INT(level, good[i].level);
	}
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int level;
		CHECK_EQ_INT(config_parse_log_level(bad[i], &level), -1);
	}
	/* file paths (kesc extension) */
	char err[512];
	struct warnings w = {0};
	struct config *c = parse_w(
	    BASE "log:\n  error: /var/log/kesc/error.log\n  audit: \"off\"\n", &w, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_STR(c->log.error_file, "/var/log/kesc/error.log");
		CHECK_EQ_INT(c->log.error_level, LOG_LEVEL_INFO);
		CHECK(c->log.audit_file == NULL);
		CHECK_EQ_INT(c->log.audit_level, LOG_LEVEL_OFF);
		CHECK(!c->log.audit_failure_serve); /* the default: refuse */
	}
	config_free(c);
	/* log.audit_failure (kesc extension): refuse | serve */
	c = parse_w(BASE "log:\n  audit_failure: serve\n", &w, err, sizeof err);
	CHECK(c != NULL && c->log.audit_failure_serve);
	config_free(c);
	c = parse_w(BASE "log:\n  audit_failure: refuse\n", &w, err, sizeof err);
	CHECK(c != NULL && !c->log.audit_failure_serve);
	config_free(c);
	expect_error(BASE "log:\n  audit_failure: ignore\n",
	             "config.yml:10: log.audit_failure: invalid value 'ignore' (expected 'refuse' "
	             "or 'serve')");
}

static void test_bools(void)
{
	static const struct {
		const char *word;
		bool value;
	} words[] = {{"true", true},   {"True", true}, {"on", true},  {"yes", true},
	             {"false", false}, {"off", false}, {"NO", false}, {"\"true\"", true}};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
		char text[512], err[512];
		struct warnings w = {0};
		snprintf(text, sizeof text, BASE "api:\n  /v1/metrics:\n    skip_auth: %s\n",
		         words[i].word);
		struct config *c = parse_w(text, &w, err, sizeof err);
		CHECK(c != NULL);
		if (c)
			CHECK_EQ_INT(c->api[0].skip_auth, words[i].value);
		config_free(c);
	}
}

/*
 * Fail closed: a field the schema does not know is an error, not a warning, because a typo
 * such as "atuh: on" otherwise runs the server weaker than written. Every unknown field is
 * listed (file:line, with a suggestion), so one run shows them all.
 */
static void test_unknown_fields(void)
{
	expect_error("admin:\n  identity: " ADMIN "\ntls:\n  key: k.pem\n  cert: c.pem\n"
	             "  ca: ca.pem\n  atuh: on\nkeystore:\n  fs:\n    path: /tmp/k\n",
	             "config.yml:7: unknown field 'tls.atuh' (did you mean 'auth'?)");
	expect_error(BASE "adress: 1.2.3.4:7373\nlog:\n  eror: off\n"
	                  "keys:\n  - name: a\n    nmae: b\n"
	                  "policy:\n  p:\n    alow: [/v1/status]\n"
	                  "api:\n  /v1/status:\n    skipauth: true\n"
	                  "completely_unrelated: 1\n",
	             "config.yml:9: unknown field 'adress' (did you mean 'address'?); "
	             "config.yml:11: unknown field 'log.eror' (did you mean 'error'?); "
	             "config.yml:14: unknown field 'keys[0].nmae' (did you mean 'name'?); "
	             "config.yml:17: unknown field 'policy.p.alow' (did you mean 'allow'?); "
	             "config.yml:20: unknown field 'api./v1/status.skipauth' (did you mean "
	             "'skip_auth'?); "
	             "config.yml:21: unknown field 'completely_unrelated'");
	/* every section: server:, cache.expiry, tls.proxy.header, vault subsections */
	expect_error(BASE "server:\n  max_conections: 5\n",
	             "config.yml:10: unknown field 'server.max_conections' (did you mean "
	             "'max_connections'?)");
	expect_error(BASE "cache:\n  expiry:\n    unsued: 1m\n",
	             "config.yml:11: unknown field 'cache.expiry.unsued' (did you mean 'unused'?)");
	expect_error("admin:\n  identity: " ADMIN "\ntls:\n  key: k.pem\n  cert: c.pem\n"
	             "  proxy:\n    header:\n      crt: X\nkeystore:\n  fs:\n    path: /k\n",
	             "config.yml:8: unknown field 'tls.proxy.header.crt' (did you mean 'cert'?)");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    approle: {id: a, secret: b}\n"
	                  "    tls:\n      ca_path: /ca\n",
	             "config.yml:11: unknown field 'keystore.vault.tls.ca_path'");
	expect_error(HEAD "  vault:\n    endpoint: https://v\n    approle: {id: a, secret: b}\n"
	                  "    transit:\n      kye: k\n",
	             "config.yml:11: unknown field 'keystore.vault.transit.kye' (did you mean "
	             "'key'?)");
	/* an unknown keystore is not "no keystore specified" but a typo */
	expect_error(HEAD "  vualt:\n    endpoint: https://v\n",
	             "config.yml:7: unknown field 'keystore.vualt' (did you mean 'vault'?)");
	/* KES's other keystores have their full schema: a typo there is found as well */
	expect_error(HEAD "  aws:\n    secretsmanager:\n      endpont: \"\"\n",
	             "config.yml:9: unknown field 'keystore.aws.secretsmanager.endpont' (did you "
	             "mean 'endpoint'?)");
	expect_error(HEAD "  azure:\n    keyvault:\n      credentials:\n        tenant: \"\"\n",
	             "config.yml:10: unknown field 'keystore.azure.keyvault.credentials.tenant'");
	/* a NULL warning callback changes nothing */
	struct config *c = (struct config *)1;
	char err[512];
	CHECK_EQ_INT(config_parse("x", BASE "adress: x\n", strlen(BASE "adress: x\n"), &c, err,
	                          sizeof err, NULL, NULL),
	             -1);
	CHECK(c == NULL);
	CHECK_EQ_STR(err, "x:9: unknown field 'adress' (did you mean 'address'?)");
	/* more unknown fields than the buffer holds: the rest is counted */
	char big[4096] = BASE;
	for (int i = 0; i < 40; i++)
		snprintf(big + strlen(big), sizeof big - strlen(big), "unknown_%02d: x\n", i);
	CHECK_EQ_INT(config_parse("x", big, strlen(big), &c, err, sizeof err, NULL, NULL), -1);
	CHECK(strncmp(err, "x:9: unknown field 'unknown_00'; x:10: unknown field 'unknown_01'",
	              60) == 0);
	CHECK(strlen(err) < sizeof err);
	CHECK(strstr(err, " more unknown fields)") != NULL);
}

/* Every keystore KES knows and kesc does not serve is refused by name, never ignored. */
static void test_unsupported_keystores(void)
{
	static const char *const sections[] = {
	    "aws:\n    secretsmanager:\n      region: r\n",
	    "gcp:\n    secretmanager:\n      project_id: p\n",
	    "azure:\n    keyvault:\n      endpoint: https://a\n",
	    "fortanix:\n    sdkms:\n      endpoint: https://f\n",
	    "gemalto:\n    keysecure:\n      endpoint: https://g\n",
	    "entrust:\n    keycontrol:\n      endpoint: https://e\n",
	    "kes:\n    endpoint: [https://k]\n",
	    "encryptedfs:\n    path: /p\n",
	    "generic:\n    endpoint: https://g\n",
	};
	for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
		char text[512], want[256], name[32];
		snprintf(text, sizeof text, HEAD "  %s", sections[i]);
		snprintf(name, sizeof name, "%.*s", (int)strcspn(sections[i], ":"), sections[i]);
		snprintf(want, sizeof want,
		         "config.yml:7: keystore.%s: not supported by kesc (supported: fs, vault)",
		         name);
		expect_error(text, want);
	}
}

/* Fields old KES versions defined and KES HEAD ignores are accepted, with a warning. */
static void test_legacy_fields(void)
{
	char err[512];
	struct warnings w = {0};
	struct config *c = parse_w(HEAD "  vault:\n    endpoint: https://v\n"
	                                "    approle:\n      id: a\n      secret: b\n"
	                                "      retry: 15s\n",
	                           &w, err, sizeof err);
	CHECK(c != NULL);
	CHECK_EQ_INT(w.count, 1);
	CHECK_EQ_STR(w.text[0], "config.yml:12: 'keystore.vault.approle.retry' is no longer used "
	                        "(ignored, as KES does)");
	config_free(c);
}

static void test_warnings(void)
{
	char err[512];
	struct warnings w = {0};
	struct config *c;

	/* tls.ca without tls.auth: the CA would verify nothing */
	c = parse_w("admin:\n  identity: " ADMIN "\ntls:\n  key: k.pem\n  cert: c.pem\n"
	            "  ca: ca.pem\nkeystore:\n  fs:\n    path: /tmp/k\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	CHECK_EQ_INT(w.count, 1);
	CHECK_EQ_STR(w.text[0], "config.yml:6: tls.ca is set but tls.auth is off: client "
	                        "certificates are not verified against it (set 'auth: on' to "
	                        "verify them)");
	config_free(c);

	/* tls.proxy: parsed as KES does, but neither KES nor kesc forwards identities */
	w.count = 0;
	c = parse_w("admin:\n  identity: " ADMIN "\ntls:\n  key: k.pem\n  cert: c.pem\n"
	            "  proxy:\n    identities: [" ID_A "]\nkeystore:\n  fs:\n    path: /k\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	CHECK_EQ_INT(w.count, 1);
	CHECK_EQ_STR(w.text[0], "config.yml:6: tls.proxy is not supported (as in KES): a proxy's "
	                        "requests are authorized by the proxy's own certificate");
	config_free(c);

	/* the old `root:` spelling works, with a warning */
	w.count = 0;
	c = parse_w("root: " ADMIN "\ntls:\n  key: k\n  cert: c\nkeystore:\n  fs:\n    path: /p\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_STR(c->admin_identity, ADMIN);
	CHECK_EQ_INT(w.count, 1);
	CHECK_EQ_STR(w.text[0],
	             "config.yml:1: 'root' is the old spelling of 'admin.identity' (accepted)");
	config_free(c);

	/* patterns that can never match */
	w.count = 0;
	c = parse_w(BASE "policy:\n  p:\n    allow:\n    - /v1/key/*/my-key\n    - \"\"\n"
	                 "    - /v1/key/create/*\n",
	            &w, err, sizeof err);
	CHECK(c != NULL);
	CHECK_EQ_INT(w.count, 2);
	CHECK_EQ_STR(w.text[0], "config.yml:12: policy.p.allow: pattern '/v1/key/*/my-key' can "
	                        "never match ('*' is only a wildcard at the end)");
	CHECK_EQ_STR(w.text[1], "config.yml:13: policy.p.allow: an empty pattern never matches");
	config_free(c);
}

static void test_policy_fields(void)
{
	char err[512];
	struct warnings w = {0};
	struct config *c = parse_w(BASE "policy:\n  empty:\n  p:\n    allow: [/a, /b*]\n"
	                                "    deny:\n    - /b/x*\n    identities:\n    - " ID_A "\n"
	                                "    - " ID_B "\n",
	                           &w, err, sizeof err);
	CHECK(c != NULL);
	if (!c)
		return;
	CHECK_EQ_INT(c->policy_count, 2);
	CHECK_EQ_STR(c->policies[0].name, "empty");
	CHECK_EQ_INT(c->policies[0].allow_count, 0);
	CHECK_EQ_INT(c->policies[0].identity_count, 0);
	CHECK_EQ_INT(c->policies[0].line, 10);
	CHECK_EQ_STR(c->policies[1].allow[1], "/b*");
	CHECK_EQ_STR(c->policies[1].deny[0], "/b/x*");
	CHECK_EQ_INT(c->policies[1].identity_count, 2);
	CHECK_EQ_INT(c->policies[1].line, 11);
	config_free(c);
}

/* The shipped examples (deploy/examples) must load under the strict schema, too. */
static void test_deploy_examples(void)
{
	static const char *const files[] = {
	    "fs.yml",
	    "minio.yml",
	    "vault-kv-v1.yml",
	    "vault-kv-v2.yml",
	    "vault-transit.yml",
	    "vault-tenant-namespace.yml",
	    "vault-tenant-prefix.yml",
	    "vault-tenants.yml",
	};
	static const char *const env[][2] = {
	    {"KESC_PROMETHEUS_IDENTITY", ID_C}, {"TENANT_A_MINIO_IDENTITY", ID_A},
	    {"TENANT_B_MINIO_IDENTITY", ID_B},  {"TENANT_A_ROLE_ID", "a-role"},
	    {"TENANT_A_SECRET_ID", "a-secret"}, {"TENANT_B_ROLE_ID", "b-role"},
	    {"TENANT_B_SECRET_ID", "b-secret"},
	};
	for (size_t i = 0; i < sizeof env / sizeof *env; i++)
		setenv(env[i][0], env[i][1], 1);
	setenv("KESC_ADMIN_IDENTITY", ADMIN, 1);
	setenv("MINIO_IDENTITY", ID_A, 1);
	setenv("KESC_VAULT_ROLE_ID", "role", 1);
	setenv("KESC_VAULT_SECRET_ID", "secret", 1);
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char path[PATH_MAX + 64], err[1024];
		struct warnings w = {0};
		struct config *c = NULL;
		snprintf(path, sizeof path, "%s/../../../deploy/examples/%s", data_dir, files[i]);
		int rc = config_load(path, &c, err, sizeof err, collect, &w);
		/* vault-transit.yml logs in with the Kubernetes service account token file, which
		 * the loader reads; it exists only inside a pod. The schema check runs before it.
		 */
		if (rc != 0 && strstr(err, "/var/run/secrets/kubernetes.io/serviceaccount/token"))
			rc = 0;
		else if (rc != 0)
			fprintf(stderr, "  %s: %s\n", files[i], err);
		CHECK_EQ_INT(rc, 0);
		for (size_t j = 0; j < w.count && j < 16; j++)
			fprintf(stderr, "  %s: warning: %s\n", files[i], w.text[j]);
		CHECK_EQ_INT(w.count, 0);
		config_free(c);
	}
	unsetenv("KESC_ADMIN_IDENTITY");
	unsetenv("MINIO_IDENTITY");
	unsetenv("KESC_VAULT_ROLE_ID");
	unsetenv("KESC_VAULT_SECRET_ID");
	for (size_t i = 0; i < sizeof env / sizeof *env; i++)
		unsetenv(env[i][0]);
}

static void test_load_missing(void)
{
	struct config *c = (struct config *)1;
	char err[512];
	CHECK_EQ_INT(config_load("/nonexistent/kesc.yml", &c, err, sizeof err, NULL, NULL), -1);
	CHECK(c == NULL);
	CHECK_EQ_STR(err, "/nonexistent/kesc.yml: cannot open: No such file or directory");
}

static int find_data_dir(void)
{
	char src[PATH_MAX];
	snprintf(src, sizeof src, "%s", __FILE__);
	char candidate[PATH_MAX + 32];
	snprintf(candidate, sizeof candidate, "%s/../data/config", dirname(src));
	if (!realpath(candidate, data_dir)) {
		fprintf(stderr, "cannot find tests/data/config from %s\n", __FILE__);
		return -1;
	}
	return 0;
}

int main(void)
{
	if (find_data_dir() < 0)
		return 1;
	snprintf(tmp_dir, sizeof tmp_dir, "/tmp/kesc-test-config-XXXXXX");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_example_fs);
	RUN(test_example_custom_api);
	RUN(test_example_vault);
	RUN(test_example_vault_k8s);
	RUN(test_example_vault_k8s_file);
	RUN(test_example_aws);
	RUN(test_example_template);
	RUN(test_example_minio);
	RUN(test_example_vault_transit);
	RUN(test_defaults);
	RUN(test_errors_top);
	RUN(test_errors_sections);
	RUN(test_errors_policy);
	RUN(test_errors_keystore);
	RUN(test_tenants);
	RUN(test_vault_defaults);
	RUN(test_vault_transport);
	RUN(test_env);
	RUN(test_durations);
	RUN(test_log_levels);
	RUN(test_bools);
	RUN(test_unknown_fields);
	RUN(test_unsupported_keystores);
	RUN(test_legacy_fields);
	RUN(test_warnings);
	RUN(test_policy_fields);
	RUN(test_deploy_examples);
	RUN(test_load_missing);
	RUN(test_key_lifecycle);
	rmdir(tmp_dir);
	return CHECK_DONE();
}
