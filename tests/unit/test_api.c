/*
 * test_api.c — the KES API behind api_handle, driven with constructed requests against an
 * in-memory store: exact status codes and body bytes for every route's success and error
 * paths (what MinIO's kms-go compares), the loop/worker contract, and policy enforcement.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "keystore/key.h"
#include "keystore/keystore.h"
#include "keystore/tombstone.h"
#include "server/api.h"
#include "server/api_errors.h"
#include "server/api_util.h"
#include "server/key_stats.h"
#include "server/lifecycle.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/state.h"

#include "kesc_version.h"

#define ADMIN    "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
#define MINIO    "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
#define LIMITED  "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"
#define STRANGER "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"

#define ZERO_KEY "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define P0       "AAAAAAAAAAAAAAAAAAAAAA=="

/* ---- a store that counts calls and fails on demand, around the in-memory store ---- */

struct spy {
	struct keystore *inner;
	atomic_int creates, gets, removes, lists;
	atomic_bool down;
};

static int spy_create(void *self, const char *name, const struct bytes *rec, struct ks_err *err)
{
	struct spy *s = self;
	atomic_fetch_add(&s->creates, 1);
	if (atomic_load(&s->down))
		return KS_UNREACHABLE;
	return keystore_create(s->inner, name, rec, err);
}

static int spy_get(void *self, const char *name, struct bytes *out, struct ks_err *err)
{
	struct spy *s = self;
	atomic_fetch_add(&s->gets, 1);
	if (atomic_load(&s->down)) {
		ks_err_set(err, "spy store is down");
		return KS_UNREACHABLE;
	}
	return s->inner->ops->get(s->inner->self, name, out, err); /* as stored */
}

static int spy_remove(void *self, const char *name, const struct bytes *tombstone,
                      struct ks_err *err)
{
	struct spy *s = self;
	atomic_fetch_add(&s->removes, 1);
	if (atomic_load(&s->down))
		return KS_UNREACHABLE;
	return keystore_remove(s->inner, name, tombstone, err);
}

static int spy_list(void *self, const char *prefix, struct name_list *out, struct ks_err *err)
{
	struct spy *s = self;
	atomic_fetch_add(&s->lists, 1);
	if (atomic_load(&s->down))
		return KS_UNREACHABLE;
	return keystore_list(s->inner, prefix, out, err);
}

static int spy_status(void *self, struct ks_status *out, struct ks_err *err)
{
	struct spy *s = self;
	if (atomic_load(&s->down)) {
		ks_err_set(err, "spy store is down");
		return KS_UNREACHABLE;
	}
	return keystore_status(s->inner, out, err);
}

static int spy_replace(void *self, const char *name, const struct bytes *expected,
                       const struct bytes *rec, struct ks_err *err)
{
	struct spy *s = self;
	if (atomic_load(&s->down))
		return KS_UNREACHABLE;
	return keystore_replace(s->inner, name, expected, rec, err);
}

static void spy_close(void *self)
{
	struct spy *s = self;
	keystore_close(s->inner);
	free(s);
}

static const struct keystore_ops SPY_OPS = {
    .name = "spy",
    .create = spy_create,
    .get = spy_get,
    .remove = spy_remove,
    .list = spy_list,
    .status = spy_status,
    .close = spy_close,
    .replace = spy_replace,
};

/* ---- configuration and state ---- */

static char **strv(const char *const *v, size_t n)
{
	char **out = calloc(n ? n : 1, sizeof *out);
	for (size_t i = 0; i < n; i++)
		out[i] = strdup(v[i]);
	return out;
}

#define STRV(...)                                \
	strv((const char *const[]){__VA_ARGS__}, \
	     sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* MinIO's recommended policy (kes.md §11.6) plus KES's own deny/allow test vector. */
static struct config *make_config(void)
{
	struct config *c = calloc(1, sizeof *c);
	c->admin_identity = strdup(ADMIN);
	c->keystore = CONFIG_KEYSTORE_MEM;
	c->cache.expiry_any_ms = 300000;
	c->cache.expiry_unused_ms = 30000;
	c->policy_count = 2;
	c->policies = calloc(2, sizeof *c->policies);
	struct config_policy *p = &c->policies[0];
	p->name = strdup("minio");
	p->allow = STRV("/v1/key/create/*", "/v1/key/generate/*", "/v1/key/decrypt/*",
	                "/v1/key/bulk/decrypt", "/v1/key/list/*", "/v1/status", "/v1/metrics",
	                "/v1/log/audit", "/v1/log/error");
	p->allow_count = 9;
	p->identities = STRV(MINIO);
	p->identity_count = 1;
	p = &c->policies[1];
	p->name = strdup("limited");
	p->allow = STRV("/v1/key/create/my*", "/v1/key/create/your*");
	p->allow_count = 2;
	p->deny = STRV("/v1/key/create/my-key*");
	p->deny_count = 1;
	p->identities = STRV(LIMITED);
	p->identity_count = 1;
	return c;
}

static struct spy *spy_of_state;

/* A state over a spy store; spy_of_state points at the spy. */
static struct server_state *make_state(struct config *c)
{
	struct spy *s = calloc(1, sizeof *s);
	s->inner = mem_keystore_open();
	struct keystore *ks = calloc(1, sizeof *ks);
	ks->ops = &SPY_OPS;
	ks->self = s;
	spy_of_state = s;
	char err[256] = "";
	struct server_state *st = server_state_new_with_store(c, ks, err, sizeof err);
	if (!st)
		fprintf(stderr, "server_state_new_with_store: %s\n", err);
	return st;
}

/* ---- requests ---- */

struct reply {
	enum api_outcome first; /* the loop-thread answer */
	int status;
	const char *content_type;
	const char *allow;
	char body[8192];
	size_t body_len;
	enum api_stream stream;
	bool metered;
	bool has_items;
	size_t items;
};

static struct reply R;

struct call_opts {
	const char *identity;
	enum api_cert_problem cert;
	bool too_large;
	bool may_block_first; /* call with may_block = true at once */
};

/* Sends one request as the transport does: first on the loop thread; if that asks for the
 * worker, checks that nothing was answered and calls again with may_block. */
static int call_full(struct server_state *st, const char *method, const char *path,
                     const char *body, const struct call_opts *o)
{
	struct api_request req = {
	    .method = method,
	    .path = path,
	    .query = "",
	    .body = (const uint8_t *)body,
	    .body_len = body ? strlen(body) : 0,
	    .body_too_large = o->too_large,
	    .identity = o->identity ? o->identity : "",
	    .cert_problem = o->cert,
	    .remote_ip = "127.0.0.1",
	};
	struct api_response resp = {.status = -1, .content_type = "untouched"};
	buf_init(&resp.body, 0);
	memset(&R, 0, sizeof R);
	R.first = api_handle(st, &req, &resp, o->may_block_first);
	if (R.first == API_NEEDS_WORKER) {
		CHECK_EQ_INT(resp.status, -1);
		CHECK_EQ_STR(resp.content_type, "untouched");
		CHECK_EQ_INT(resp.body.len, 0);
		CHECK(api_handle(st, &req, &resp, true) == API_DONE);
	}
	R.status = resp.status;
	R.content_type = resp.content_type;
	R.allow = resp.allow;
	R.stream = resp.stream;
	R.metered = resp.metered;
	R.has_items = resp.audit_has_items;
	R.items = resp.audit_items;
	R.body_len = resp.body.len < sizeof R.body - 1 ? resp.body.len : sizeof R.body - 1;
	if (resp.body.data)
		memcpy(R.body, resp.body.data, R.body_len);
	R.body[R.body_len] = '\0';
	buf_free(&resp.body);
	return R.status;
}

static int call_as(struct server_state *st, const char *identity, const char *method,
                   const char *path, const char *body)
{
	struct call_opts o = {.identity = identity, .cert = API_CERT_OK};
	return call_full(st, method, path, body, &o);
}

static int call(struct server_state *st, const char *method, const char *path, const char *body)
{
	return call_as(st, ADMIN, method, path, body);
}

#define CHECK_REPLY(st_, body_)                \
	do {                                   \
		CHECK_EQ_INT(R.status, (st_)); \
		CHECK_EQ_STR(R.body, (body_)); \
	} while (0)

#define CHECK_ERROR(st_, msg_)                                    \
	do {                                                      \
		CHECK_REPLY(st_, "{\"message\":\"" msg_ "\"\n}"); \
		CHECK_EQ_STR(R.content_type, "application/json"); \
	} while (0)

#define STARTS_WITH(s_, lit_) (strncmp((s_), (lit_), strlen(lit_)) == 0)

#define CHECK_EMPTY_OK()                       \
	do {                                   \
		CHECK_REPLY(200, "");          \
		CHECK(R.content_type == NULL); \
	} while (0)

/* Base64 member of the last reply's JSON body. */
static int reply_field(const char *key, struct bytes *out)
{
	char err[64];
	struct json_value *v = json_parse(R.body, R.body_len, err, sizeof err);
	int rc = v ? json_get_base64(v, key, out) : -1;
	json_free(v);
	return rc;
}

/* ---- tests ---- */

static void test_names(void)
{
	static const char *const valid[] = {"my-key",    "abc123", "0",   "123ABC321",
	                                    "_-___---_", "_0",     "0-Z", "my_key-0"};
	static const char *const invalid[] = {
	    "", "my.key", "key/", "\xe2\x98\xb0", "hel<lo", "\xce\x95macs", "-a", "a-", "_"};
	for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
		CHECK(api_valid_name(valid[i]));
		CHECK(api_valid_pattern(valid[i]));
	}
	for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
		CHECK(!api_valid_name(invalid[i]));
	char a81[82];
	memset(a81, 'a', 81);
	a81[81] = '\0';
	CHECK(!api_valid_name(a81));
	CHECK(!api_valid_pattern(a81));
	CHECK(api_valid_name(a81 + 1));
	CHECK(api_valid_pattern(""));
	CHECK(api_valid_pattern("*"));
	CHECK(api_valid_pattern("my-*"));
	CHECK(api_valid_pattern("pre*"));
	CHECK(!api_valid_pattern("*-*"));
	CHECK(!api_valid_pattern("my.key"));
	CHECK(!api_valid_pattern("key/"));
	CHECK(!api_valid_pattern("_"));
	CHECK(!api_valid_pattern("-*"));
	CHECK(!api_valid_pattern("a**"));
}

static void test_time_format(void)
{
	char t[40];
	api_format_time(t, sizeof t, 0, 0);
	CHECK_EQ_STR(t, "0001-01-01T00:00:00Z");
	api_format_time(t, sizeof t, 1705055960, 886816000); /* KES's test key's created_at */
	CHECK_EQ_STR(t, "2024-01-12T10:39:20.886816Z");
	api_format_time(t, sizeof t, 1705055960, 0);
	CHECK_EQ_STR(t, "2024-01-12T10:39:20Z");
	api_format_time(t, sizeof t, 1705055960, 1);
	CHECK_EQ_STR(t, "2024-01-12T10:39:20.000000001Z");
	api_format_time(t, sizeof t, 1705055960, 500000000);
	CHECK_EQ_STR(t, "2024-01-12T10:39:20.5Z");
	api_format_time_ns(t, sizeof t, 1705055960886816123LL);
	CHECK_EQ_STR(t, "2024-01-12T10:39:20.886816123Z");
}

static void test_error_table(void)
{
	/* The texts kms-go compares (kes.md §1.4). */
	CHECK_EQ_INT(api_error_status(API_ERR_NOT_ALLOWED), 403);
	CHECK_EQ_STR(api_error_text(API_ERR_NOT_ALLOWED),
	             "not authorized: insufficient permissions");
	CHECK_EQ_INT(api_error_status(API_ERR_KEY_NOT_FOUND), 404);
	CHECK_EQ_STR(api_error_text(API_ERR_KEY_NOT_FOUND), "key does not exist");
	CHECK_EQ_INT(api_error_status(API_ERR_KEY_EXISTS), 400);
	CHECK_EQ_STR(api_error_text(API_ERR_KEY_EXISTS), "key already exists");
	CHECK_EQ_INT(api_error_status(API_ERR_DECRYPT), 400);
	CHECK_EQ_STR(api_error_text(API_ERR_DECRYPT),
	             "decryption failed: ciphertext is not authentic");
	for (int i = 0; i < API_ERR_COUNT; i++)
		CHECK(api_error_text((enum api_error_id)i) != NULL);
}

static void test_routing(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	CHECK(st != NULL);
	if (!st)
		return;

	CHECK_EQ_INT(call(st, "GET", "/", NULL), 404);
	CHECK_EQ_STR(R.body, "404 page not found\n");
	CHECK_EQ_STR(R.content_type, "text/plain; charset=utf-8");
	CHECK(!R.metered);
	CHECK_EQ_INT(call(st, "GET", "/v1/key/", NULL), 404);
	CHECK_EQ_INT(call(st, "GET", "/v1/status/", NULL), 404);
	CHECK_EQ_INT(call(st, "GET", "/v1/statusx", NULL), 404);
	CHECK_EQ_INT(call(st, "GET", "/v2/key/create/a", NULL), 404);

	/* Wrong method: 405, the route's method in the Accept header, KES's message. */
	call(st, "GET", "/v1/key/create/k1", NULL);
	CHECK_ERROR(405, "received method 'GET' expected 'PUT'");
	CHECK_EQ_STR(R.allow, "PUT");
	call(st, "DELETE", "/v1/status", NULL);
	CHECK_ERROR(405, "received method 'DELETE' expected 'GET'");
	CHECK_EQ_STR(R.allow, "GET");
	call(st, "HEAD", "/version", NULL);
	CHECK_ERROR(405, "received method 'HEAD' expected 'GET'");
	call(st, "POST", "/v1/key/delete/k1", NULL);
	CHECK_ERROR(405, "received method 'POST' expected 'DELETE'");
	/* The method check comes before authentication. */
	call_as(st, STRANGER, "GET", "/v1/key/create/k1", NULL);
	CHECK_EQ_INT(R.status, 405);

	/* POST is accepted on every PUT route (kms-go sends POST). */
	call(st, "POST", "/v1/key/create/k1", NULL);
	CHECK_EMPTY_OK();
	CHECK(R.metered);
	call(st, "PUT", "/v1/key/create/k2", NULL);
	CHECK_EMPTY_OK();

	/* Subtree roots without the slash are the route with an empty argument. */
	call(st, "PUT", "/v1/key/create", NULL);
	CHECK_ERROR(400, "key name '' is empty, too long or contains invalid characters");
	call(st, "GET", "/v1/key/list", NULL);
	CHECK_REPLY(200, "{\"names\":[\"k1\",\"k2\"]}\n");
	CHECK_EQ_STR(R.content_type, "application/json");

	server_state_release(st);
}

static void test_auth(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	struct call_opts none = {.cert = API_CERT_NONE};
	struct call_opts many = {.cert = API_CERT_MULTIPLE};

	call_full(st, "GET", "/v1/status", NULL, &none);
	CHECK_ERROR(400, "tls: client certificate is required");
	call_full(st, "PUT", "/v1/key/create/x", NULL, &many);
	CHECK_ERROR(400, "tls: received more than one client certificate");
	/* /version needs no identity at all. */
	call_full(st, "GET", "/version", NULL, &none);
	CHECK_EQ_INT(R.status, 200);

	/* An identity without a policy, and policy enforcement before name validation. */
	call_as(st, STRANGER, "PUT", "/v1/key/create/x", NULL);
	CHECK_ERROR(403, "not authorized: insufficient permissions");
	call_as(st, STRANGER, "PUT", "/v1/key/create/bad.name", NULL);
	CHECK_ERROR(403, "not authorized: insufficient permissions");
	call_as(st, STRANGER, "GET", "/v1/status", NULL);
	CHECK_EQ_INT(R.status, 403);

	/* MinIO's policy: create/generate/decrypt/list/status allowed, the rest not. */
	call_as(st, MINIO, "POST", "/v1/key/generate/minio-default", "{}");
	CHECK_ERROR(404, "key does not exist");
	call_as(st, MINIO, "POST", "/v1/key/create/minio-default", NULL);
	CHECK_EMPTY_OK();
	call_as(st, MINIO, "POST", "/v1/key/generate/minio-default", "{}");
	CHECK_EQ_INT(R.status, 200);
	call_as(st, MINIO, "DELETE", "/v1/key/delete/minio-default", NULL);
	CHECK_ERROR(403, "not authorized: insufficient permissions");
	call_as(st, MINIO, "GET", "/v1/key/describe/minio-default", NULL);
	CHECK_EQ_INT(R.status, 403);
	call_as(st, MINIO, "PUT", "/v1/key/hmac/minio-default", "{}");
	CHECK_EQ_INT(R.status, 403);
	call_as(st, MINIO, "GET", "/v1/api", NULL);
	CHECK_EQ_INT(R.status, 403);
	call_as(st, MINIO, "GET", "/v1/policy/list/", NULL);
	CHECK_EQ_INT(R.status, 403);
	call_as(st, MINIO, "GET", "/v1/status", NULL);
	CHECK_EQ_INT(R.status, 200);
	call_as(st, MINIO, "GET", "/v1/key/list/*", NULL);
	CHECK_REPLY(200, "{\"names\":[\"minio-default\"]}\n");
	/* kms-go sends "/v1/key/list" for an empty pattern; KES redirects it to
	 * "/v1/key/list/" before the policy sees it, so MinIO's list rule allows it. */
	call_as(st, MINIO, "GET", "/v1/key/list", NULL);
	CHECK_REPLY(200, "{\"names\":[\"minio-default\"]}\n");
	call_as(st, MINIO, "GET", "/v1/log/audit", NULL);
	CHECK_EQ_INT(R.status, 200);
	CHECK(R.stream == API_STREAM_AUDIT_LOG);
	CHECK_EQ_STR(R.content_type, "application/x-ndjson");
	call_as(st, MINIO, "GET", "/v1/log/error", NULL);
	CHECK(R.stream == API_STREAM_ERROR_LOG);
	CHECK(!R.metered);

	/* KES's policy test vector: deny wins over allow. */
	call_as(st, LIMITED, "PUT", "/v1/key/create/my-key", NULL);
	CHECK_EQ_INT(R.status, 403);
	call_as(st, LIMITED, "PUT", "/v1/key/create/my-key1", NULL);
	CHECK_EQ_INT(R.status, 403);
	call_as(st, LIMITED, "PUT", "/v1/key/create/my-minio-key", NULL);
	CHECK_EMPTY_OK();
	call_as(st, LIMITED, "PUT", "/v1/key/create/your-minio-key", NULL);
	CHECK_EMPTY_OK();
	call_as(st, LIMITED, "GET", "/v1/status", NULL);
	CHECK_EQ_INT(R.status, 403);

	/* Created keys record their creator. */
	call(st, "GET", "/v1/key/describe/my-minio-key", NULL);
	CHECK(strstr(R.body, "\"created_by\":\"" LIMITED "\"}\n") != NULL);
	server_state_release(st);

	/* api.<path>.skip_auth: identify only, no certificate needed, no policy applied. */
	c = make_config();
	c->api_count = 1;
	c->api = calloc(1, sizeof *c->api);
	c->api[0].path = strdup("/v1/status");
	c->api[0].skip_auth = true;
	st = make_state(c);
	if (!st)
		return;
	CHECK(server_state_any_skip_auth(st));
	call_full(st, "GET", "/v1/status", NULL, &none);
	CHECK_EQ_INT(R.status, 200);
	call_as(st, STRANGER, "GET", "/v1/status", NULL);
	CHECK_EQ_INT(R.status, 200);
	call_full(st, "GET", "/v1/ready", NULL, &none);
	CHECK_ERROR(400, "tls: client certificate is required");
	server_state_release(st);
}

static void test_key_names(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	static const char *const valid[] = {"my-key",    "abc123", "0",   "123ABC321",
	                                    "_-___---_", "_0",     "0-Z", "my_key-0"};
	char path[256];
	for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
		snprintf(path, sizeof path, "/v1/key/create/%s", valid[i]);
		call(st, "PUT", path, NULL);
		CHECK_EMPTY_OK();
	}
	call(st, "PUT", "/v1/key/create/my-key", NULL);
	CHECK_ERROR(400, "key already exists");

	call(st, "PUT", "/v1/key/create/", NULL);
	CHECK_ERROR(400, "key name '' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/create/my.key", NULL);
	CHECK_ERROR(400, "key name 'my.key' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/create/key/", NULL);
	CHECK_ERROR(400, "key name 'key/' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/create/a/b", NULL);
	CHECK_ERROR(400, "key name 'a/b' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/create/\xe2\x98\xb0", NULL);
	CHECK_ERROR(400,
	            "key name '\xe2\x98\xb0' is empty, too long or contains invalid characters");
	/* Go's encoder escapes <, > and & even inside error messages. */
	call(st, "PUT", "/v1/key/create/hel<lo", NULL);
	CHECK_ERROR(400,
	            "key name 'hel\\u003clo' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/create/\xce\x95macs", NULL);
	CHECK_ERROR(400,
	            "key name '\xce\x95macs' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/create/a\"b", NULL);
	CHECK_ERROR(400, "key name 'a\\\"b' is empty, too long or contains invalid characters");
	/* Invalid UTF-8 is replaced as Go does. */
	call(st, "PUT", "/v1/key/create/\xff", NULL);
	CHECK_ERROR(400, "key name '\\ufffd' is empty, too long or contains invalid characters");
	char longname[82];
	memset(longname, 'a', 81);
	longname[81] = '\0';
	snprintf(path, sizeof path, "/v1/key/create/%s", longname);
	call(st, "PUT", path, NULL);
	CHECK_EQ_INT(R.status, 400);
	snprintf(path, sizeof path, "/v1/key/create/%s", longname + 1);
	call(st, "PUT", path, NULL);
	CHECK_EMPTY_OK();

	/* The same validation on every key route. */
	call(st, "GET", "/v1/key/describe/my.key", NULL);
	CHECK_ERROR(400, "key name 'my.key' is empty, too long or contains invalid characters");
	call(st, "DELETE", "/v1/key/delete/", NULL);
	CHECK_ERROR(400, "key name '' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/generate/-x", "{}");
	CHECK_ERROR(400, "key name '-x' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/encrypt/_", "{}");
	CHECK_ERROR(400, "key name '_' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/decrypt/x-", "{}");
	CHECK_ERROR(400, "key name 'x-' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/hmac/a.b", "{}");
	CHECK_ERROR(400, "key name 'a.b' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/import/a.b", "{}");
	CHECK_ERROR(400, "key name 'a.b' is empty, too long or contains invalid characters");
	server_state_release(st);
}

static void test_key_lifecycle(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	static const char *const names[] = {"pre-b", "pre-a", "other", "pre", "prefix_1", "zz"};
	char path[128];
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		snprintf(path, sizeof path, "/v1/key/create/%s", names[i]);
		call(st, "PUT", path, NULL);
		CHECK_EMPTY_OK();
	}

	/* describe */
	call(st, "GET", "/v1/key/describe/pre-a", NULL);
	CHECK_EQ_INT(R.status, 200);
	CHECK_EQ_STR(R.content_type, "application/json");
	char head[128];
	snprintf(head, sizeof head, "{\"name\":\"pre-a\",\"algorithm\":\"%s\",\"created_at\":\"",
	         key_algorithm_name(key_default_algorithm()));
	CHECK(strncmp(R.body, head, strlen(head)) == 0);
	const char *tail = "Z\",\"created_by\":\"" ADMIN "\"}\n";
	CHECK(R.body_len > strlen(tail) && strcmp(R.body + R.body_len - strlen(tail), tail) == 0);
	call(st, "GET", "/v1/key/describe/missing", NULL);
	CHECK_ERROR(404, "key does not exist");

	/* list: "" and "*" are everything; a trailing '*' is a prefix; so is a bare prefix */
	const char *all =
	    "{\"names\":[\"other\",\"pre\",\"pre-a\",\"pre-b\",\"prefix_1\",\"zz\"]}\n";
	call(st, "GET", "/v1/key/list/", NULL);
	CHECK_REPLY(200, all);
	call(st, "GET", "/v1/key/list/*", NULL);
	CHECK_REPLY(200, all);
	call(st, "GET", "/v1/key/list/pre*", NULL);
	CHECK_REPLY(200, "{\"names\":[\"pre\",\"pre-a\",\"pre-b\",\"prefix_1\"]}\n");
	call(st, "GET", "/v1/key/list/pre", NULL);
	CHECK_REPLY(200, "{\"names\":[\"pre\",\"pre-a\",\"pre-b\",\"prefix_1\"]}\n");
	call(st, "GET", "/v1/key/list/pre-*", NULL);
	CHECK_REPLY(200, "{\"names\":[\"pre-a\",\"pre-b\"]}\n");
	call(st, "GET", "/v1/key/list/nothing*", NULL);
	CHECK_REPLY(200, "{\"names\":[]}\n");
	call(st, "GET", "/v1/key/list/*-*", NULL);
	CHECK_ERROR(400, "listing pattern '*-*' is empty, too long or is invalid");
	call(st, "GET", "/v1/key/list/my.key", NULL);
	CHECK_ERROR(400, "listing pattern 'my.key' is empty, too long or is invalid");

	/* delete */
	call(st, "DELETE", "/v1/key/delete/pre", NULL);
	CHECK_EMPTY_OK();
	call(st, "DELETE", "/v1/key/delete/pre", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "GET", "/v1/key/describe/pre", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "PUT", "/v1/key/generate/pre", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "GET", "/v1/key/list/pre", NULL);
	CHECK_REPLY(200, "{\"names\":[\"pre-a\",\"pre-b\",\"prefix_1\"]}\n");
	/* a deleted name is reserved while replicas may still cache the old key (not KES's
	 * 400 "key already exists", which MinIO would take for success), import included */
	call(st, "PUT", "/v1/key/create/pre", NULL);
	CHECK_ERROR(409, "key was deleted recently: its name cannot be used again yet");
	call(st, "PUT", "/v1/key/import/pre",
	     "{\"key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"cipher\":\"AES256\"}");
	CHECK_ERROR(409, "key was deleted recently: its name cannot be used again yet");

	/* a store failure is a 502 with KES's text; the detail goes to the error log only */
	atomic_store(&spy_of_state->down, true);
	call(st, "GET", "/v1/key/list/", NULL);
	CHECK_ERROR(502, "failed to list keys");
	call(st, "PUT", "/v1/key/create/new", NULL);
	CHECK_ERROR(502, "failed to create key");
	call(st, "DELETE", "/v1/key/delete/zz", NULL);
	CHECK_ERROR(502, "failed to delete key");
	call(st, "GET", "/v1/key/describe/never-cached", NULL);
	CHECK_ERROR(502, "failed to read key");
	atomic_store(&spy_of_state->down, false);
	server_state_release(st);
}

/* generate → decrypt with the same context; MinIO's flow. */
static void test_crypto(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	call(st, "PUT", "/v1/key/create/k", NULL);
	CHECK_EMPTY_OK();

	const char *ctx = "eyJidWNrZXQiOiJidWNrZXQvb2JqZWN0In0="; /* {"bucket":"bucket/object"} */
	char body[1024];
	snprintf(body, sizeof body, "{\"context\":\"%s\"}", ctx);
	call(st, "POST", "/v1/key/generate/k", body);
	CHECK_EQ_INT(R.status, 200);
	CHECK_EQ_STR(R.content_type, "application/json");
	CHECK(STARTS_WITH(R.body, "{\"plaintext\":\""));
	CHECK(R.body[R.body_len - 1] == '\n');
	struct bytes dek = {0}, ct = {0};
	CHECK_EQ_INT(reply_field("plaintext", &dek), 0);
	CHECK_EQ_INT(reply_field("ciphertext", &ct), 0);
	CHECK_EQ_INT(dek.len, 32);
	CHECK_EQ_INT(ct.len, 32 + 44); /* KES HEAD's raw format */

	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "{\"ciphertext\":\"");
	base64_encode(&b, ct.data, ct.len);
	buf_printf(&b, "\",\"context\":\"%s\"}", ctx);
	call(st, "POST", "/v1/key/decrypt/k", b.data);
	CHECK_EQ_INT(R.status, 200);
	struct bytes pt = {0};
	CHECK_EQ_INT(reply_field("plaintext", &pt), 0);
	CHECK(pt.len == 32 && memcmp(pt.data, dek.data, 32) == 0);
	bytes_free(&pt);

	/* another context, no context, another key: not authentic */
	buf_reset(&b);
	buf_append_str(&b, "{\"ciphertext\":\"");
	base64_encode(&b, ct.data, ct.len);
	buf_append_str(&b, "\",\"context\":\"e30=\"}");
	call(st, "POST", "/v1/key/decrypt/k", b.data);
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	buf_reset(&b);
	buf_append_str(&b, "{\"ciphertext\":\"");
	base64_encode(&b, ct.data, ct.len);
	buf_append_str(&b, "\"}");
	call(st, "POST", "/v1/key/decrypt/k", b.data);
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	call(st, "PUT", "/v1/key/create/k2", NULL);
	buf_reset(&b);
	buf_append_str(&b, "{\"ciphertext\":\"");
	base64_encode(&b, ct.data, ct.len);
	buf_printf(&b, "\",\"context\":\"%s\"}", ctx);
	call(st, "POST", "/v1/key/decrypt/k2", b.data);
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	call(st, "POST", "/v1/key/decrypt/k", "{\"ciphertext\":\"AAAA\"}");
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	call(st, "POST", "/v1/key/decrypt/missing", b.data);
	CHECK_ERROR(404, "key does not exist");
	bytes_free(&dek);
	bytes_free(&ct);

	/* generate without body / null body / no context: decrypt without context works */
	call(st, "POST", "/v1/key/generate/k", NULL);
	CHECK_EQ_INT(R.status, 200);
	call(st, "POST", "/v1/key/generate/k", "null");
	CHECK_EQ_INT(R.status, 200);
	call(st, "POST", "/v1/key/generate/k", "{\"version\":\"v1\",\"unknown\":[1,2]}");
	CHECK_EQ_INT(R.status, 200);
	CHECK_EQ_INT(reply_field("ciphertext", &ct), 0);
	buf_reset(&b);
	buf_append_str(&b, "{\"ciphertext\":\"");
	base64_encode(&b, ct.data, ct.len);
	buf_append_str(&b, "\",\"context\":null}");
	call(st, "POST", "/v1/key/decrypt/k", b.data);
	CHECK_EQ_INT(R.status, 200);
	bytes_free(&ct);

	/* bad bodies */
	static const char *const bad[] = {"{", "[]", "\"x\"", "1", "true", "{\"a\":}"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		call(st, "POST", "/v1/key/generate/k", bad[i]);
		CHECK_ERROR(400, "invalid request body");
		call(st, "POST", "/v1/key/encrypt/k", bad[i]);
		CHECK_ERROR(400, "invalid request body");
		call(st, "POST", "/v1/key/decrypt/k", bad[i]);
		CHECK_ERROR(400, "invalid request body");
		call(st, "PUT", "/v1/key/hmac/k", bad[i]);
		CHECK_ERROR(400, "invalid request body");
	}
	/* a member of the wrong type or invalid base64; members a route does not read are
	 * ignored, as Go's decoder does */
	static const char *const bad_ctx[] = {"{\"context\":5}", "{\"context\":\"!!!\"}",
	                                      "{\"context\":{}}"};
	for (size_t i = 0; i < sizeof bad_ctx / sizeof *bad_ctx; i++) {
		call(st, "POST", "/v1/key/generate/k", bad_ctx[i]);
		CHECK_ERROR(400, "invalid request body");
		call(st, "POST", "/v1/key/encrypt/k", bad_ctx[i]);
		CHECK_ERROR(400, "invalid request body");
		call(st, "POST", "/v1/key/decrypt/k", bad_ctx[i]);
		CHECK_ERROR(400, "invalid request body");
		call(st, "PUT", "/v1/key/hmac/k", bad_ctx[i]);
		CHECK_EQ_INT(R.status, 200);
	}
	call(st, "PUT", "/v1/key/hmac/k", "{\"message\":5}");
	CHECK_ERROR(400, "invalid request body");
	call(st, "PUT", "/v1/key/hmac/k", "{\"message\":\"a\"}");
	CHECK_ERROR(400, "invalid request body");
	call(st, "POST", "/v1/key/encrypt/k", "{\"plaintext\":[]}");
	CHECK_ERROR(400, "invalid request body");
	call(st, "POST", "/v1/key/decrypt/k", "{\"ciphertext\":\"%%%\"}");
	CHECK_ERROR(400, "invalid request body");
	/* encrypt, decrypt and hmac read a body always: an empty one is an error (Go: EOF) */
	call(st, "POST", "/v1/key/encrypt/k", NULL);
	CHECK_ERROR(400, "invalid request body");
	call(st, "POST", "/v1/key/decrypt/k", NULL);
	CHECK_ERROR(400, "invalid request body");
	call(st, "PUT", "/v1/key/hmac/k", NULL);
	CHECK_ERROR(400, "invalid request body");
	/* a body over the route's limit fails as a body error, after auth and name checks */
	struct call_opts big = {.identity = ADMIN, .cert = API_CERT_OK, .too_large = true};
	call_full(st, "POST", "/v1/key/generate/k", NULL, &big);
	CHECK_ERROR(400, "invalid request body");
	call_full(st, "POST", "/v1/key/generate/bad.name", NULL, &big);
	CHECK_EQ_INT(R.status, 400);
	CHECK(strstr(R.body, "key name 'bad.name'") != NULL);
	call_full(st, "PUT", "/v1/key/import/k9", NULL, &big);
	CHECK_ERROR(400, "invalid import key request body");
	struct call_opts big_stranger = {.identity = STRANGER, .too_large = true};
	call_full(st, "POST", "/v1/key/generate/k", NULL, &big_stranger);
	CHECK_EQ_INT(R.status, 403);
	/* routes that read no body ignore one */
	call_full(st, "PUT", "/v1/key/create/k3", NULL, &big);
	CHECK_EMPTY_OK();

	/* encrypt → decrypt */
	call(st, "POST", "/v1/key/encrypt/k", "{\"plaintext\":\"aGVsbG8=\",\"context\":\"YQ==\"}");
	CHECK_EQ_INT(R.status, 200);
	CHECK(STARTS_WITH(R.body, "{\"ciphertext\":\""));
	CHECK_EQ_INT(reply_field("ciphertext", &ct), 0);
	CHECK_EQ_INT(ct.len, 5 + 44);
	buf_reset(&b);
	buf_append_str(&b, "{\"ciphertext\":\"");
	base64_encode(&b, ct.data, ct.len);
	buf_append_str(&b, "\",\"context\":\"YQ==\"}");
	call(st, "POST", "/v1/key/decrypt/k", b.data);
	CHECK_REPLY(200, "{\"plaintext\":\"aGVsbG8=\"}\n");
	bytes_free(&ct);
	call(st, "POST", "/v1/key/encrypt/missing", "{\"plaintext\":\"aGVsbG8=\"}");
	CHECK_ERROR(404, "key does not exist");

	/* hmac: 32 bytes, stable for one key, different for another */
	call(st, "PUT", "/v1/key/hmac/k", "{\"message\":\"cm9vdCBhY2Nlc3Mga2V5\"}");
	CHECK_EQ_INT(R.status, 200);
	CHECK(STARTS_WITH(R.body, "{\"hmac\":\""));
	struct bytes mac1 = {0}, mac2 = {0};
	CHECK_EQ_INT(reply_field("hmac", &mac1), 0);
	CHECK_EQ_INT(mac1.len, 32);
	call(st, "POST", "/v1/key/hmac/k", "{\"message\":\"cm9vdCBhY2Nlc3Mga2V5\"}");
	CHECK_EQ_INT(reply_field("hmac", &mac2), 0);
	CHECK(mac1.len == 32 && mac2.len == 32 && memcmp(mac1.data, mac2.data, 32) == 0);
	bytes_free(&mac2);
	call(st, "PUT", "/v1/key/hmac/k2", "{\"message\":\"cm9vdCBhY2Nlc3Mga2V5\"}");
	CHECK_EQ_INT(reply_field("hmac", &mac2), 0);
	CHECK(mac2.len == 32 && memcmp(mac1.data, mac2.data, 32) != 0);
	bytes_free(&mac1);
	bytes_free(&mac2);
	call(st, "PUT", "/v1/key/hmac/missing", "{}");
	CHECK_ERROR(404, "key does not exist");

	buf_free(&b);
	server_state_release(st);
}

static void test_import(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	call(st, "POST", "/v1/key/import/zero", "{\"key\":\"" ZERO_KEY "\",\"cipher\":\"AES256\"}");
	CHECK_EMPTY_OK();
	call(st, "POST", "/v1/key/import/zero", "{\"key\":\"" ZERO_KEY "\",\"cipher\":\"AES256\"}");
	CHECK_ERROR(400, "key already exists");
	call(st, "GET", "/v1/key/describe/zero", NULL);
	CHECK(STARTS_WITH(R.body, "{\"name\":\"zero\",\"algorithm\":\"AES256\","));
	call(st, "PUT", "/v1/key/import/cha",
	     "{\"key\":\"" ZERO_KEY "\",\"cipher\":\"XCHACHA20-POLY1305\"}");
	CHECK_EMPTY_OK();
	call(st, "GET", "/v1/key/describe/cha", NULL);
	CHECK(STARTS_WITH(R.body, "{\"name\":\"cha\",\"algorithm\":\"ChaCha20\","));

	call(st, "PUT", "/v1/key/import/x", "{");
	CHECK_ERROR(400, "invalid import key request body");
	call(st, "PUT", "/v1/key/import/x", NULL);
	CHECK_ERROR(400, "invalid import key request body");
	call(st, "PUT", "/v1/key/import/x", "{\"key\":\"!!\",\"cipher\":\"AES256\"}");
	CHECK_ERROR(400, "invalid import key request body");
	call(st, "PUT", "/v1/key/import/x", "{\"key\":\"" ZERO_KEY "\",\"cipher\":5}");
	CHECK_ERROR(400, "invalid import key request body");
	call(st, "PUT", "/v1/key/import/x", "{\"key\":\"" ZERO_KEY "\",\"cipher\":\"DES\"}");
	CHECK_ERROR(406, "algorithm 'DES' is not supported");
	/* kes-go v0.1's {"bytes"} body has no cipher */
	call(st, "PUT", "/v1/key/import/x", "{\"bytes\":\"" ZERO_KEY "\"}");
	CHECK_ERROR(406, "algorithm '' is not supported");
	call(st, "PUT", "/v1/key/import/x", "{\"key\":\"AAAA\",\"cipher\":\"AES256\"}");
	CHECK_ERROR(406, "invalid key size for 'AES256'");
	call(st, "PUT", "/v1/key/import/x", "{\"cipher\":\"ChaCha20\"}");
	CHECK_ERROR(406, "invalid key size for 'ChaCha20'");
	call(st, "PUT", "/v1/key/import/x", "{\"key\":\"" ZERO_KEY "\",\"cipher\":\"<b>\"}");
	CHECK_ERROR(406, "algorithm '\\u003cb\\u003e' is not supported");
	call(st, "GET", "/v1/key/describe/x", NULL);
	CHECK_ERROR(404, "key does not exist");

	/* KES's own ciphertexts under the all-zero key decrypt (kes.md §7.4 #0, #3, #5) */
	static const char *const vectors[] = {
	    "eyJhZWFkIjoiQUVTLTI1Ni1HQ00tSE1BQy1TSEEtMjU2IiwiaXYiOiJ4THhJTjN0U0NrZzJ4TWFmdXZ3VXdnPT"
	    "0iLCJub25jZSI6Imd1MG1Hd1Vrd2N2TUVvaTUiLCJieXRlcyI6IldWZ1JqZUlKbTN3NTBDL2wreTd5Mmk2bWJO"
	    "ZzVOQ0FxTjF6dk9ZV1pLbWM9In0=",
	    "lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0Sa"
	    "HZrX5LBufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ=",
	    "zwdDgHeRlIFRnJ7+DIhs/ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc",
	};
	char body[1024];
	for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
		snprintf(body, sizeof body, "{\"ciphertext\":\"%s\"}", vectors[i]);
		call(st, "POST", "/v1/key/decrypt/zero", body);
		CHECK_REPLY(200, "{\"plaintext\":\"" P0 "\"}\n");
	}
	/* #5 with a context it was not sealed with */
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"" P0 "\"}", vectors[2]);
	call(st, "POST", "/v1/key/decrypt/zero", body);
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	server_state_release(st);
}

/* A record written by KES before HMAC keys existed: describe works, hmac is 409. */
static void test_legacy_key(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	const char *rec =
	    "{\"bytes\":\"" ZERO_KEY "\",\"algorithm\":\"AES256-GCM_SHA256\","
	    "\"created_at\":\"2024-01-12T10:39:20.886816Z\",\"created_by\":\"" ADMIN "\"}";
	struct bytes r = {(uint8_t *)rec, strlen(rec)};
	struct ks_err err = {{0}};
	CHECK_EQ_INT(keystore_create(spy_of_state->inner, "legacy", &r, &err), KS_OK);

	call(st, "GET", "/v1/key/describe/legacy", NULL);
	CHECK_REPLY(200, "{\"name\":\"legacy\",\"algorithm\":\"AES256\",\"created_at\":"
	                 "\"2024-01-12T10:39:20.886816Z\",\"created_by\":\"" ADMIN "\"}\n");
	call(st, "PUT", "/v1/key/hmac/legacy", "{\"message\":\"aGk=\"}");
	CHECK_ERROR(409, "key does not support HMAC");
	call(st, "POST", "/v1/key/decrypt/legacy",
	     "{\"ciphertext\":\"zwdDgHeRlIFRnJ7+DIhs/"
	     "ka7GFK2CFSfDELqg1VCyTQzZ58o7MAdupMLk3ZjlMo2ZUDwldL2o41nAWDc\"}");
	CHECK_REPLY(200, "{\"plaintext\":\"" P0 "\"}\n");

	/* No creator, no time: created_by is omitted, created_at is Go's zero time. */
	const char *bare = "{\"bytes\":\"" ZERO_KEY "\"}";
	struct bytes r2 = {(uint8_t *)bare, strlen(bare)};
	CHECK_EQ_INT(keystore_create(spy_of_state->inner, "bare", &r2, &err), KS_OK);
	call(st, "GET", "/v1/key/describe/bare", NULL);
	CHECK_REPLY(200, "{\"name\":\"bare\",\"algorithm\":\"AES256\",\"created_at\":"
	                 "\"0001-01-01T00:00:00Z\"}\n");
	server_state_release(st);
}

/* The loop thread never touches the store: a miss asks for the worker without side effects. */
static void test_worker_contract(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	struct spy *s = spy_of_state;
	struct api_request req = {.method = "PUT",
	                          .path = "/v1/key/create/w",
	                          .query = "",
	                          .identity = ADMIN,
	                          .remote_ip = "127.0.0.1"};
	struct api_response resp = {.status = -1};
	buf_init(&resp.body, 0);

	/* create on the loop thread: nothing happens */
	int creates = atomic_load(&s->creates);
	CHECK(api_handle(st, &req, &resp, false) == API_NEEDS_WORKER);
	CHECK_EQ_INT(resp.status, -1);
	CHECK_EQ_INT(resp.body.len, 0);
	CHECK(!resp.metered);
	CHECK_EQ_INT(atomic_load(&s->creates), creates);
	struct bytes rec = {0};
	struct ks_err err = {{0}};
	CHECK_EQ_INT(keystore_get(s->inner, "w", &rec, &err), KS_NOT_FOUND);
	CHECK(api_handle(st, &req, &resp, true) == API_DONE);
	CHECK_EQ_INT(resp.status, 200);
	CHECK(resp.metered);
	CHECK_EQ_INT(atomic_load(&s->creates), creates + 1);
	buf_free(&resp.body);

	/* a key only in the store: the first generate needs the worker, then it is cached */
	struct secret_key *k = NULL;
	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, ADMIN, &k), 0);
	CHECK_EQ_INT(key_record_encode(k, &rec), 0);
	key_free(k);
	CHECK_EQ_INT(keystore_create(s->inner, "cold", &rec, &err), KS_OK);
	bytes_free(&rec);
	int gets = atomic_load(&s->gets);
	struct call_opts loop = {.identity = ADMIN};
	call_full(st, "PUT", "/v1/key/generate/cold", "{}", &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	CHECK_EQ_INT(R.status, 200);
	CHECK_EQ_INT(atomic_load(&s->gets), gets + 1);
	call_full(st, "PUT", "/v1/key/generate/cold", "{}", &loop);
	CHECK(R.first == API_DONE);
	CHECK_EQ_INT(R.status, 200);
	call_full(st, "GET", "/v1/key/describe/cold", NULL, &loop);
	CHECK(R.first == API_DONE);
	CHECK_EQ_INT(atomic_load(&s->gets), gets + 1);

	/* errors found before any I/O are answered on the loop thread */
	call_full(st, "PUT", "/v1/key/generate/bad.name", "{}", &loop);
	CHECK(R.first == API_DONE);
	CHECK_EQ_INT(R.status, 400);
	call_full(st, "GET", "/v1/key/describe/unknown", NULL, &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	CHECK_EQ_INT(R.status, 404);

	/* routes that always need the store */
	int lists = atomic_load(&s->lists), removes = atomic_load(&s->removes);
	call_full(st, "GET", "/v1/key/list/", NULL, &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	CHECK_EQ_INT(atomic_load(&s->lists), lists + 1);
	call_full(st, "DELETE", "/v1/key/delete/cold", NULL, &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	CHECK_EQ_INT(atomic_load(&s->removes), removes + 1);
	call_full(st, "PUT", "/v1/key/import/imp",
	          "{\"key\":\"" ZERO_KEY "\",\"cipher\":\"AES256\"}", &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	CHECK_EQ_INT(R.status, 200);
	call_full(st, "GET", "/v1/ready", NULL, &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	call_full(st, "GET", "/v1/status", NULL, &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	/* views of the configuration never need it */
	call_full(st, "GET", "/v1/policy/list/", NULL, &loop);
	CHECK(R.first == API_DONE);
	call_full(st, "GET", "/v1/api", NULL, &loop);
	CHECK(R.first == API_DONE);
	call_full(st, "GET", "/version", NULL, &loop);
	CHECK(R.first == API_DONE);
	server_state_release(st);
}

/* A generated data key: its plaintext and ciphertext under key `name` with context ctx. */
static void gen_dek(struct server_state *st, const char *name, const char *ctx, struct bytes *pt,
                    struct bytes *ct)
{
	char body[256], path[128];
	snprintf(body, sizeof body, "{\"context\":\"%s\"}", ctx);
	snprintf(path, sizeof path, "/v1/key/generate/%s", name);
	call(st, "POST", path, body);
	CHECK_EQ_INT(R.status, 200);
	CHECK_EQ_INT(reply_field("plaintext", pt), 0);
	CHECK_EQ_INT(reply_field("ciphertext", ct), 0);
}

static void bulk_item(struct buf *b, const struct bytes *ct, const char *ctx)
{
	buf_append_str(b, b->len > 1 ? ",{\"ciphertext\":\"" : "{\"ciphertext\":\"");
	base64_encode(b, ct->data, ct->len);
	if (ctx)
		buf_printf(b, "\",\"context\":\"%s\"}", ctx);
	else
		buf_append_str(b, "\"}");
}

/* POST /v1/key/bulk/decrypt/<name> (issue 15 §5): KES's contract until 2023-10-24. */
static void test_bulk_decrypt(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	call(st, "PUT", "/v1/key/create/bk", NULL);
	CHECK_EMPTY_OK();
	static const char *const ctx[3] = {"e30=", "eyJhIjoiYiJ9", NULL}; /* {}, {"a":"b"}, none */
	struct bytes pt[3] = {{0}}, ct[3] = {{0}};
	for (int i = 0; i < 3; i++)
		gen_dek(st, "bk", ctx[i] ? ctx[i] : "", &pt[i], &ct[i]);
	struct buf b;
	buf_init(&b, 0);
	buf_append_char(&b, '[');
	for (int i = 0; i < 3; i++)
		bulk_item(&b, &ct[i], ctx[i]);
	buf_append_char(&b, ']');

	/* the plaintexts in order, as KES's json.Encoder wrote them */
	call(st, "POST", "/v1/key/bulk/decrypt/bk", b.data);
	CHECK_EQ_INT(R.status, 200);
	CHECK_EQ_STR(R.content_type, "application/json");
	CHECK(R.metered);
	CHECK(R.has_items && R.items == 3);
	struct buf want;
	buf_init(&want, 0);
	buf_append_char(&want, '[');
	for (int i = 0; i < 3; i++) {
		buf_append_str(&want, i ? ",{\"plaintext\":\"" : "{\"plaintext\":\"");
		base64_encode(&want, pt[i].data, pt[i].len);
		buf_append_str(&want, "\"}");
	}
	buf_append_str(&want, "]\n");
	CHECK_EQ_STR(R.body, want.data);

	/* no items: an empty array back */
	call(st, "POST", "/v1/key/bulk/decrypt/bk", "[]");
	CHECK_REPLY(200, "[]\n");
	CHECK(R.has_items && R.items == 0);
	call(st, "POST", "/v1/key/bulk/decrypt/bk", "null");
	CHECK_REPLY(200, "[]\n");

	/* one item that fails fails the whole request with the single decrypt's error */
	buf_reset(&b);
	buf_append_char(&b, '[');
	bulk_item(&b, &ct[0], ctx[0]);
	bulk_item(&b, &ct[1], ctx[0]); /* wrong context */
	bulk_item(&b, &ct[2], NULL);
	buf_append_char(&b, ']');
	call(st, "POST", "/v1/key/bulk/decrypt/bk", b.data);
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	CHECK(R.has_items && R.items == 3);
	call(st, "POST", "/v1/key/bulk/decrypt/bk", "[null]");
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");

	/* body errors, the item limit, the key, the name, the method */
	call(st, "POST", "/v1/key/bulk/decrypt/bk", "{\"ciphertext\":\"AAAA\"}");
	CHECK_ERROR(400, "invalid request body");
	CHECK(!R.has_items);
	call(st, "POST", "/v1/key/bulk/decrypt/bk", "[{\"ciphertext\":5}]");
	CHECK_ERROR(400, "invalid request body");
	call(st, "POST", "/v1/key/bulk/decrypt/bk", NULL);
	CHECK_ERROR(400, "invalid request body");
	buf_reset(&b);
	buf_append_char(&b, '[');
	for (int i = 0; i < 1001; i++)
		bulk_item(&b, &ct[2], NULL);
	buf_append_char(&b, ']');
	call(st, "POST", "/v1/key/bulk/decrypt/bk", b.data);
	CHECK_ERROR(400, "too many ciphertexts");
	CHECK(R.has_items && R.items == 1001);
	struct call_opts big = {.identity = ADMIN, .cert = API_CERT_OK, .too_large = true};
	call_full(st, "POST", "/v1/key/bulk/decrypt/bk", NULL, &big);
	CHECK_ERROR(400, "invalid request body");
	call(st, "POST", "/v1/key/bulk/decrypt/nokey", "[]");
	CHECK_ERROR(404, "key does not exist");
	call(st, "POST", "/v1/key/bulk/decrypt/no.key", "[]");
	CHECK_ERROR(400, "key name 'no.key' is empty, too long or contains invalid characters");
	call(st, "PUT", "/v1/key/bulk/decrypt/bk", "[]");
	CHECK_ERROR(405, "received method 'PUT' expected 'POST'");

	/* 1000 items decrypt; a large body is decoded on a worker, a small one on the loop */
	buf_reset(&b);
	buf_append_char(&b, '[');
	for (int i = 0; i < 1000; i++)
		bulk_item(&b, &ct[i % 3], ctx[i % 3]);
	buf_append_char(&b, ']');
	struct call_opts loop = {.identity = ADMIN, .cert = API_CERT_OK};
	call_full(st, "POST", "/v1/key/bulk/decrypt/bk", b.data, &loop);
	CHECK(R.first == API_NEEDS_WORKER);
	CHECK_EQ_INT(R.status, 200);
	CHECK(R.has_items && R.items == 1000);
	call_full(st, "POST", "/v1/key/bulk/decrypt/bk", "[]", &loop);
	CHECK(R.first == API_DONE);
	CHECK_EQ_INT(R.status, 200);

	/* policies: MinIO's pattern must cover the subtree (KES HEAD matching) */
	call_as(st, MINIO, "POST", "/v1/key/bulk/decrypt/bk", "[]");
	CHECK_ERROR(403, "not authorized: insufficient permissions");
	for (int i = 0; i < 3; i++) {
		bytes_free(&pt[i]);
		bytes_free(&ct[i]);
	}
	buf_free(&want);
	buf_free(&b);
	server_state_release(st);
}

static void test_policy_views(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	if (!st)
		return;
	char started[40];
	api_format_time_ns(started, sizeof started, server_state_started_ns(st));
	char want[2048];

	call(st, "GET", "/v1/policy/describe/minio", NULL);
	snprintf(want, sizeof want,
	         "{\"name\":\"minio\",\"created_at\":\"%s\",\"created_by\":\"" ADMIN "\"}\n",
	         started);
	CHECK_REPLY(200, want);
	CHECK(R.metered);
	call(st, "GET", "/v1/policy/describe/nope", NULL);
	CHECK_ERROR(404, "policy does not exist");
	call(st, "GET", "/v1/policy/describe/a.b", NULL);
	CHECK_ERROR(400, "policy name 'a.b' is empty, too long or contains invalid characters");

	call(st, "GET", "/v1/policy/read/limited", NULL);
	snprintf(want, sizeof want,
	         "{\"name\":\"limited\",\"allow\":{\"/v1/key/create/my*\":{},"
	         "\"/v1/key/create/your*\":{}},\"deny\":{\"/v1/key/create/my-key*\":{}},"
	         "\"created_at\":\"%s\",\"created_by\":\"" ADMIN "\"}\n",
	         started);
	CHECK_REPLY(200, want);
	call(st, "GET", "/v1/policy/read/minio", NULL);
	CHECK(STARTS_WITH(R.body, "{\"name\":\"minio\",\"allow\":{\"/v1/key/bulk/decrypt\":{},"));
	CHECK(strstr(R.body, "\"deny\"") == NULL); /* omitted when empty */
	call(st, "GET", "/v1/policy/read/", NULL);
	CHECK_ERROR(400, "policy name '' is empty, too long or contains invalid characters");

	call(st, "GET", "/v1/policy/list/", NULL);
	CHECK_REPLY(200, "{\"names\":[\"limited\",\"minio\"],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/policy/list", NULL);
	CHECK_REPLY(200, "{\"names\":[\"limited\",\"minio\"],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/policy/list/*", NULL);
	CHECK_REPLY(200, "{\"names\":[\"limited\",\"minio\"],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/policy/list/mi*", NULL);
	CHECK_REPLY(200, "{\"names\":[\"minio\"],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/policy/list/x*", NULL);
	CHECK_REPLY(200, "{\"names\":[],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/policy/list/a.*", NULL);
	CHECK_ERROR(400, "listing pattern 'a.*' is empty, too long or is invalid");

	call(st, "GET", "/v1/identity/describe/" ADMIN, NULL);
	snprintf(want, sizeof want, "{\"admin\":true,\"created_at\":\"%s\"}\n", started);
	CHECK_REPLY(200, want);
	call(st, "GET", "/v1/identity/describe/" MINIO, NULL);
	snprintf(want, sizeof want,
	         "{\"policy\":\"minio\",\"created_at\":\"%s\",\"created_by\":\"" ADMIN "\"}\n",
	         started);
	CHECK_REPLY(200, want);
	call(st, "GET", "/v1/identity/describe/" STRANGER, NULL);
	CHECK_ERROR(404, "identity does not exist");
	call(st, "GET", "/v1/identity/describe/", NULL);
	CHECK_ERROR(400, "identity '' is empty, too long or contains invalid characters");

	/* identity lists include the admin, sorted in */
	call(st, "GET", "/v1/identity/list/", NULL);
	CHECK_REPLY(200, "{\"identities\":[\"" LIMITED "\",\"" ADMIN "\",\"" MINIO
	                 "\"],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/identity/list/3e*", NULL);
	CHECK_REPLY(200, "{\"identities\":[\"" ADMIN "\"],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/identity/list/e*", NULL);
	CHECK_REPLY(200, "{\"identities\":[\"" MINIO "\"],\"continue_at\":\"\"}\n");
	call(st, "GET", "/v1/identity/list/f*", NULL);
	CHECK_REPLY(200, "{\"identities\":[],\"continue_at\":\"\"}\n");

	/* self/describe: admin, a policy member (KES answers 404 here; we answer), strangers */
	call(st, "GET", "/v1/identity/self/describe", NULL);
	snprintf(want, sizeof want,
	         "{\"identity\":\"" ADMIN "\",\"admin\":true,\"created_at\":\"%s\"}\n", started);
	CHECK_REPLY(200, want);
	call_as(st, LIMITED, "GET", "/v1/identity/self/describe", NULL);
	snprintf(want, sizeof want,
	         "{\"identity\":\"" LIMITED "\",\"policy\":\"limited\",\"allow\":{"
	         "\"/v1/key/create/my*\":{},\"/v1/key/create/your*\":{}},\"deny\":{"
	         "\"/v1/key/create/my-key*\":{}},\"created_at\":\"%s\",\"created_by\":\"" ADMIN
	         "\"}\n",
	         started);
	CHECK_REPLY(200, want);
	call_as(st, MINIO, "GET", "/v1/identity/self/describe", NULL);
	CHECK_EQ_INT(R.status, 200);
	CHECK(strstr(R.body, "\"deny\":{}") != NULL);
	call_as(st, STRANGER, "GET", "/v1/identity/self/describe", NULL);
	CHECK_ERROR(404, "identity does not exist");
	struct call_opts none = {.cert = API_CERT_NONE};
	call_full(st, "GET", "/v1/identity/self/describe", NULL, &none);
	CHECK_ERROR(404, "identity does not exist");
	/* the other views need a policy that allows them */
	call_as(st, LIMITED, "GET", "/v1/identity/describe/" LIMITED, NULL);
	CHECK_EQ_INT(R.status, 403);
	server_state_release(st);
}

static void test_status_routes(void)
{
	struct config *c = make_config();
	c->api_count = 2;
	c->api = calloc(2, sizeof *c->api);
	c->api[0].path = strdup("/v1/key/create/");
	c->api[0].timeout_ms = 30000;
	c->api[1].path = strdup("/v1/metrics");
	c->api[1].timeout_ms = 0; /* = default */
	struct server_state *st = make_state(c);
	if (!st)
		return;

	call(st, "GET", "/version", NULL);
	/* The commit is the build's git revision, or KES's "<unknown>" outside a checkout. */
	{
		static const char prefix[] = "{\"version\":\"" KESC_VERSION "\",\"commit\":\"";
		CHECK_EQ_INT(R.status, 200);
		CHECK(strncmp(R.body, prefix, sizeof prefix - 1) == 0);
		CHECK(strlen(R.body) >= 3 && strcmp(R.body + strlen(R.body) - 3, "\"}\n") == 0);
	}
	CHECK_EQ_STR(R.content_type, "application/json");
	CHECK(!R.metered);

	call(st, "GET", "/v1/api", NULL);
	const char *api =
	    "[{\"method\":\"GET\",\"path\":\"/version\",\"max_body\":0,\"timeout\":10},"
	    "{\"method\":\"GET\",\"path\":\"/v1/ready\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/status\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/metrics\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/api\",\"max_body\":0,\"timeout\":10},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/create/\",\"max_body\":0,\"timeout\":30},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/import/\",\"max_body\":1000000,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/key/describe/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/key/list/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"DELETE\",\"path\":\"/v1/key/delete/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/generate/"
	    "\",\"max_body\":1000000,\"timeout\":15},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/encrypt/"
	    "\",\"max_body\":1000000,\"timeout\":15},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/decrypt/"
	    "\",\"max_body\":1000000,\"timeout\":15},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/hmac/\",\"max_body\":1000000,\"timeout\":15},"
	    "{\"method\":\"POST\",\"path\":\"/v1/key/bulk/decrypt/"
	    "\",\"max_body\":1048576,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/policy/describe/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/policy/read/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/policy/list/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/identity/describe/"
	    "\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/identity/list/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/identity/self/"
	    "describe\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"GET\",\"path\":\"/v1/log/error\",\"max_body\":0,\"timeout\":0},"
	    "{\"method\":\"GET\",\"path\":\"/v1/log/audit\",\"max_body\":0,\"timeout\":0},"
	    /* kesc's own, after KES's */
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/rotate/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/rewrap/"
	    "\",\"max_body\":1000000,\"timeout\":15},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/retire/\",\"max_body\":4096,\"timeout\":15},"
	    "{\"method\":\"PUT\",\"path\":\"/v1/key/restore/\",\"max_body\":0,\"timeout\":15},"
	    "{\"method\":\"DELETE\",\"path\":\"/v1/key/purge/\",\"max_body\":0,\"timeout\":15}]"
	    "\n";
	CHECK_REPLY(200, api);

	/* what the transport asks before reading a body */
	struct api_route_limits lim;
	api_route_limits(st, "/v1/key/generate/k", &lim);
	CHECK_EQ_INT(lim.max_body, 1000000);
	CHECK_EQ_INT(lim.timeout_ms, 15000);
	api_route_limits(st, "/v1/key/create/k", &lim);
	CHECK_EQ_INT(lim.max_body, 0);
	CHECK_EQ_INT(lim.timeout_ms, 30000);
	api_route_limits(st, "/v1/log/audit", &lim);
	CHECK_EQ_INT(lim.timeout_ms, 0);
	api_route_limits(st, "/nowhere", &lim);
	CHECK_EQ_INT(lim.max_body, 0);
	CHECK(lim.timeout_ms > 0);

	/* ready and status with the store up */
	call(st, "GET", "/v1/ready", NULL);
	CHECK_EMPTY_OK();
	call(st, "GET", "/v1/status", NULL);
	CHECK_EQ_INT(R.status, 200);
	const char *head = "{\"version\":\"" KESC_VERSION "\",\"os\":\"linux\",\"arch\":\"";
	CHECK(strncmp(R.body, head, strlen(head)) == 0);
	static const char *const fields[] = {
	    "\",\"uptime\":",      ",\"num_cpu\":",        ",\"num_cpu_used\":",
	    ",\"mem_heap_used\":", ",\"mem_stack_used\":", ",\"keystore_latency\":"};
	const char *p = R.body;
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
		const char *f = strstr(p, fields[i]);
		CHECK(f != NULL);
		if (f)
			p = f + strlen(fields[i]);
	}
	CHECK(strstr(R.body, "unreachable") == NULL);
	CHECK(R.body[R.body_len - 2] == '}' && R.body[R.body_len - 1] == '\n');

	/* the store down: status still 200, with both flags kms-go needs; ready 504 */
	atomic_store(&spy_of_state->down, true);
	call(st, "GET", "/v1/status", NULL);
	CHECK_EQ_INT(R.status, 200);
	const char *tail = ",\"keystore_unavailable\":true,\"keystore_unreachable\":true}\n";
	CHECK(R.body_len > strlen(tail) && strcmp(R.body + R.body_len - strlen(tail), tail) == 0);
	CHECK(strstr(R.body, "keystore_latency") == NULL);
	call(st, "GET", "/v1/ready", NULL);
	CHECK_ERROR(504, "key store is not reachable");
	atomic_store(&spy_of_state->down, false);

	/* metrics: KES's names, Prometheus text */
	call(st, "PUT", "/v1/key/create/m", NULL);
	call(st, "GET", "/v1/metrics", NULL);
	CHECK_EQ_INT(R.status, 200);
	CHECK_EQ_STR(R.content_type, "text/plain; version=0.0.4; charset=utf-8");
	static const char *const names[] = {
	    "# TYPE kes_http_request_active gauge\n",
	    "# TYPE kes_http_response_time histogram\n",
	    "kes_http_response_time_bucket{le=\"0.01\"} ",
	    "kes_http_response_time_bucket{le=\"+Inf\"} ",
	    "kes_http_response_time_count ",
	    "# TYPE kes_log_error_events counter\n",
	    "# TYPE kes_log_audit_events counter\n",
	    "\nkes_system_up_time ",
	    "\nkes_system_num_cpu ",
	    "\nkes_system_num_cpu_used ",
	    "\nkes_system_num_threads ",
	    "\nkes_system_mem_heap_used ",
	    "\nkes_system_mem_heap_objects ",
	    "\nkes_system_mem_stack_used ",
	    "\nkesc_keystore_latency_seconds ",
	    "\nkesc_log_audit_records_total ",
	    "\nkesc_log_error_lines_total ",
	    "\nkesc_cache_hits_total ",
	    "\nkesc_cache_misses_total ",
	    "\nkesc_keystore_reads_total ",
	    "\nkesc_connections_open ",
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		CHECK(strstr(R.body, names[i]) != NULL);
		if (!strstr(R.body, names[i]))
			fprintf(stderr, "missing metric text: %s\n", names[i]);
	}
	server_state_release(st);
}

static void test_metrics_counting(void)
{
	metrics_init();
	struct buf b;
	buf_init(&b, 0);
	metrics_request_done(200, 5000000);     /* 5 ms */
	metrics_request_done(404, 2000000000);  /* 2 s */
	metrics_request_done(502, 20000000000); /* 20 s */
	metrics_request_active(1);
	metrics_log_written(true);
	metrics_log_streamed(true, 3);
	metrics_connection(1);
	metrics_render(&b, NULL);
	CHECK(strstr(b.data, "kes_http_request_success{code=\"200\"} 1\n") != NULL);
	CHECK(strstr(b.data, "kes_http_request_error{code=\"404\"} 1\n") != NULL);
	CHECK(strstr(b.data, "kes_http_request_failure{code=\"502\"} 1\n") != NULL);
	CHECK(strstr(b.data, "kes_http_response_time_bucket{le=\"0.01\"} 1\n") != NULL);
	CHECK(strstr(b.data, "kes_http_response_time_bucket{le=\"1.5\"} 1\n") != NULL);
	CHECK(strstr(b.data, "kes_http_response_time_bucket{le=\"3\"} 2\n") != NULL);
	CHECK(strstr(b.data, "kes_http_response_time_bucket{le=\"10\"} 2\n") != NULL);
	CHECK(strstr(b.data, "kes_http_response_time_bucket{le=\"+Inf\"} 3\n") != NULL);
	CHECK(strstr(b.data, "kes_http_response_time_sum 22.005\n") != NULL);
	CHECK(strstr(b.data, "kes_http_response_time_count 3\n") != NULL);
	CHECK(strstr(b.data, "\nkes_http_request_active 1\n") != NULL);
	/* KES's meaning: events delivered to /v1/log/audit subscribers; kesc's own counter
	 * has the records written to the audit log. */
	CHECK(strstr(b.data, "\nkes_log_audit_events 3\n") != NULL);
	CHECK(strstr(b.data, "\nkesc_log_audit_records_total 1\n") != NULL);
	CHECK(strstr(b.data, "\nkes_log_error_events ") != NULL);
	CHECK(strstr(b.data, "\nkesc_connections_open 1\n") != NULL);
	CHECK(strstr(b.data, "kesc_cache_hits_total") == NULL); /* no cache given */
	metrics_request_active(-1);
	metrics_connection(-1);
	buf_free(&b);
}

/* A string member of the last reply's JSON body, copied into out. */
static void reply_string(const char *key, char *out, size_t n)
{
	char err[64];
	size_t len = 0;
	struct json_value *v = json_parse(R.body, R.body_len, err, sizeof err);
	const char *s = json_string(json_get(v, key), &len);
	snprintf(out, n, "%.*s", s ? (int)len : 0, s ? s : "");
	json_free(v);
}

/* The last reply's "ciphertext", as a JSON string for the next request. */
static void reply_ciphertext(char *out, size_t n)
{
	reply_string("ciphertext", out, n);
}

/*
 * Key versions through the API (issue 14): a key never rotated answers as KES; rotate, then
 * generate/encrypt say their version, describe lists the versions, decrypt needs no version,
 * rewrap moves a ciphertext to the current version, retire refuses old ones (and says so).
 */
static void test_key_versions(void)
{
	struct config *c = make_config();
	struct server_state *st = make_state(c);
	char ct1[256], ct2[256], body[512], v[16];
	if (!st)
		return;
	key_stats_reset();
	call(st, "PUT", "/v1/key/create/rot", NULL);
	CHECK_EMPTY_OK();
	call(st, "PUT", "/v1/key/generate/rot", "{\"context\":\"e30=\"}");
	CHECK_EQ_INT(R.status, 200);
	CHECK(strstr(R.body, "\"version\"") == NULL); /* KES's reply */
	reply_ciphertext(ct1, sizeof ct1);
	call(st, "GET", "/v1/key/describe/rot", NULL);
	CHECK(strstr(R.body, "version") == NULL);

	call(st, "PUT", "/v1/key/rotate/rot", NULL);
	CHECK_REPLY(200, "{\"version\":\"v2\"}\n");
	call(st, "POST", "/v1/key/rotate/rot", NULL);
	CHECK_REPLY(200, "{\"version\":\"v3\"}\n");
	call(st, "PUT", "/v1/key/rotate/nope", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "PUT", "/v1/key/rotate/my.key", NULL);
	CHECK_ERROR(400, "key name 'my.key' is empty, too long or contains invalid characters");
	call_as(st, MINIO, "PUT", "/v1/key/rotate/rot", NULL);
	CHECK_ERROR(403, "not authorized: insufficient permissions");

	call(st, "GET", "/v1/key/describe/rot", NULL);
	CHECK_EQ_INT(R.status, 200);
	CHECK(strstr(R.body, "\"version\":\"v3\",\"min_decryption_version\":\"v1\",\"versions\":"
	                     "[{\"version\":\"v1\",\"algorithm\":") != NULL);
	CHECK(strstr(R.body, "{\"version\":\"v3\",\"algorithm\":") != NULL);

	call(st, "PUT", "/v1/key/generate/rot", "{\"context\":\"e30=\"}");
	reply_string("version", v, sizeof v);
	CHECK_EQ_STR(v, "v3");
	reply_ciphertext(ct2, sizeof ct2);
	/* MinIO's decrypt: no version, old and new ciphertexts alike */
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"e30=\"}", ct1);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_EQ_INT(R.status, 200);
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"e30=\"}", ct2);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_EQ_INT(R.status, 200);
	CHECK(strstr(R.body, "version") == NULL); /* decrypt answers as KES */
	/* with a version: the right one, a wrong one, one that does not exist, a bad one */
	snprintf(body, sizeof body,
	         "{\"ciphertext\":\"%s\",\"context\":\"e30=\",\"version\":\"v3\"}", ct2);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_EQ_INT(R.status, 200);
	snprintf(body, sizeof body,
	         "{\"ciphertext\":\"%s\",\"context\":\"e30=\",\"version\":\"v1\"}", ct2);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	snprintf(body, sizeof body,
	         "{\"ciphertext\":\"%s\",\"context\":\"e30=\",\"version\":\"v9\"}", ct2);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_ERROR(400, "key version 'v9' does not exist");
	snprintf(body, sizeof body,
	         "{\"ciphertext\":\"%s\",\"context\":\"e30=\",\"version\":\"2\"}", ct2);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_ERROR(400, "key version '2' does not exist");
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"e30=\",\"version\":2}",
	         ct2);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_ERROR(400, "invalid request body");
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"e30=\",\"version\":\"\"}",
	         ct2);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_EQ_INT(R.status, 200);
	/* encrypt: under the current version, or the one asked for */
	call(st, "PUT", "/v1/key/encrypt/rot", "{\"plaintext\":\"aGk=\"}");
	CHECK_EQ_INT(R.status, 200);
	reply_string("version", v, sizeof v);
	CHECK_EQ_STR(v, "v3");
	call(st, "PUT", "/v1/key/encrypt/rot", "{\"plaintext\":\"aGk=\",\"version\":\"v1\"}");
	reply_string("version", v, sizeof v);
	CHECK_EQ_STR(v, "v1");
	call(st, "PUT", "/v1/key/generate/rot", "{\"version\":\"v4\"}");
	CHECK_ERROR(400, "key version 'v4' does not exist");

	/* rewrap: the old ciphertext under the current version, same context */
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"e30=\"}", ct1);
	call(st, "PUT", "/v1/key/rewrap/rot", body);
	CHECK_EQ_INT(R.status, 200);
	reply_string("version", v, sizeof v);
	CHECK_EQ_STR(v, "v3");
	char rewrapped[256];
	reply_ciphertext(rewrapped, sizeof rewrapped);
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"e30=\"}", rewrapped);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_EQ_INT(R.status, 200);
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"eyJhIjoxfQ==\"}", ct1);
	call(st, "PUT", "/v1/key/rewrap/rot", body);
	CHECK_ERROR(400, "decryption failed: ciphertext is not authentic");
	call(st, "PUT", "/v1/key/rewrap/rot", "{");
	CHECK_ERROR(400, "invalid request body");

	/* the old version served decrypts (ct1 twice, counting the rewrap) */
	struct buf m;
	buf_init(&m, 0);
	key_stats_render(&m);
	CHECK(m.data && strstr(m.data, "kesc_key_old_version_decrypts_total{key=\"rot\","
	                               "version=\"v1\"} 2\n") != NULL);
	buf_free(&m);

	/* retire: v1 and v2 refused, said so; undone by retiring less */
	call(st, "PUT", "/v1/key/retire/rot", "{\"min_decryption_version\":\"v3\"}");
	CHECK_REPLY(200, "{\"min_decryption_version\":\"v3\",\"version\":\"v3\"}\n");
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\",\"context\":\"e30=\"}", ct1);
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_ERROR(400, "key version 'v1' is retired");
	call(st, "PUT", "/v1/key/rewrap/rot", body);
	CHECK_ERROR(400, "key version 'v1' is retired");
	call(st, "PUT", "/v1/key/encrypt/rot", "{\"plaintext\":\"aGk=\",\"version\":\"v1\"}");
	CHECK_ERROR(400, "key version 'v1' is retired");
	call(st, "GET", "/v1/key/describe/rot", NULL);
	CHECK(strstr(R.body, "\"min_decryption_version\":\"v3\"") != NULL);
	call(st, "PUT", "/v1/key/retire/rot", "{\"min_decryption_version\":\"v4\"}");
	CHECK_ERROR(400, "key version 'v4' does not exist");
	call(st, "PUT", "/v1/key/retire/rot", "{\"min_decryption_version\":3}");
	CHECK_ERROR(400, "invalid request body");
	call(st, "PUT", "/v1/key/retire/rot", "{}");
	CHECK_ERROR(400, "invalid request body");
	call(st, "PUT", "/v1/key/retire/rot", "{\"min_decryption_version\":\"v1\"}");
	CHECK_REPLY(200, "{\"min_decryption_version\":\"v1\",\"version\":\"v3\"}\n");
	call(st, "PUT", "/v1/key/decrypt/rot", body);
	CHECK_EQ_INT(R.status, 200);
	/* the HMAC key did not change */
	server_state_release(st);
}

/* Deletion protection: a delete is scheduled, the key can be restored within the window,
 * purged by an admin, and purged by the server's pass once the window is over. */
static void test_deletion_protection(void)
{
	struct config *c = make_config();
	c->lifecycle.delete_window_ms = 3600 * 1000;
	struct server_state *st = make_state(c);
	char ct[256], body[512], mac[64], mac2[64];
	if (!st)
		return;
	call(st, "PUT", "/v1/key/create/keep", NULL);
	CHECK_EMPTY_OK();
	call(st, "PUT", "/v1/key/generate/keep", NULL);
	reply_ciphertext(ct, sizeof ct);
	call(st, "PUT", "/v1/key/hmac/keep", "{\"message\":\"aGk=\"}");
	reply_string("hmac", mac, sizeof mac);
	call(st, "PUT", "/v1/key/restore/keep", NULL);
	CHECK_ERROR(409, "key is not scheduled for deletion");
	call(st, "DELETE", "/v1/key/purge/keep", NULL);
	CHECK_ERROR(409, "key is not scheduled for deletion");

	call(st, "DELETE", "/v1/key/delete/keep", NULL);
	CHECK_EMPTY_OK();
	call(st, "GET", "/v1/key/describe/keep", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "DELETE", "/v1/key/delete/keep", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "PUT", "/v1/key/create/keep", NULL);
	CHECK_ERROR(409, "key was deleted recently: its name cannot be used again yet");
	call(st, "GET", "/v1/key/list/", NULL);
	CHECK_REPLY(200, "{\"names\":[]}\n");
	call(st, "PUT", "/v1/key/rotate/keep", NULL);
	CHECK_ERROR(404, "key does not exist");

	call(st, "PUT", "/v1/key/restore/keep", NULL);
	CHECK_EMPTY_OK();
	snprintf(body, sizeof body, "{\"ciphertext\":\"%s\"}", ct);
	call(st, "PUT", "/v1/key/decrypt/keep", body);
	CHECK_EQ_INT(R.status, 200);
	call(st, "PUT", "/v1/key/hmac/keep", "{\"message\":\"aGk=\"}");
	reply_string("hmac", mac2, sizeof mac2);
	CHECK_EQ_STR(mac2, mac);

	call(st, "DELETE", "/v1/key/delete/keep", NULL);
	CHECK_EMPTY_OK();
	call(st, "DELETE", "/v1/key/purge/keep", NULL);
	CHECK_EMPTY_OK();
	call(st, "PUT", "/v1/key/restore/keep", NULL);
	CHECK_ERROR(404, "key was deleted and cannot be restored");
	call(st, "DELETE", "/v1/key/purge/keep", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "PUT", "/v1/key/restore/never", NULL);
	CHECK_ERROR(404, "key does not exist");
	call(st, "DELETE", "/v1/key/purge/never", NULL);
	CHECK_ERROR(404, "key does not exist");

	/* the server's pass purges a scheduled deletion whose window is over, and only that */
	struct ks_err err = {{0}};
	struct tombstone t = {.deleted_at = keystore_now() - 7200,
	                      .until = keystore_now() - 3600,
	                      .restore_until = keystore_now() - 3600};
	struct bytes key = {(uint8_t *)"a key record", 12}, rec = {0};
	CHECK_EQ_INT(tombstone_encode_with_key(&t, &key, &rec), 0);
	CHECK_EQ_INT(keystore_create(spy_of_state->inner, "expired", &rec, &err), KS_OK);
	bytes_free(&rec);
	call(st, "PUT", "/v1/key/create/pending", NULL);
	call(st, "DELETE", "/v1/key/delete/pending", NULL);
	int rotated = -1, purged = -1;
	lifecycle_pass(server_state_cache(st), c, &rotated, &purged);
	CHECK_EQ_INT(rotated, 0);
	CHECK_EQ_INT(purged, 1);
	call(st, "PUT", "/v1/key/restore/expired", NULL);
	CHECK_ERROR(404, "key was deleted and cannot be restored");
	call(st, "PUT", "/v1/key/restore/pending", NULL);
	CHECK_EMPTY_OK();
	server_state_release(st);
}

/* Automatic rotation: the pass rotates a key whose current version is older than
 * rotate_after, once, and leaves young keys alone. */
static void test_rotate_after(void)
{
	struct config *c = make_config();
	c->lifecycle.rotate_after_ms = 3600 * 1000;
	struct server_state *st = make_state(c);
	struct ks_err err = {{0}};
	struct secret_key *k = NULL;
	struct bytes rec = {0};
	if (!st)
		return;
	CHECK_EQ_INT(key_generate(KEY_ALG_AES256, ADMIN, &k), 0);
	k->created_at_sec -= 7200;
	CHECK_EQ_INT(key_record_encode(k, &rec), 0);
	CHECK_EQ_INT(keystore_create(spy_of_state->inner, "aged", &rec, &err), KS_OK);
	bytes_free(&rec);
	key_free(k);
	call(st, "PUT", "/v1/key/create/young", NULL);
	int rotated = -1, purged = -1;
	lifecycle_pass(server_state_cache(st), c, &rotated, &purged);
	CHECK_EQ_INT(rotated, 1);
	CHECK_EQ_INT(purged, 0);
	lifecycle_pass(server_state_cache(st), c, &rotated, &purged);
	CHECK_EQ_INT(rotated, 0);
	call(st, "GET", "/v1/key/describe/aged", NULL);
	CHECK(strstr(R.body, "\"version\":\"v2\"") != NULL);
	CHECK(strstr(R.body, "\"created_by\":\"" ADMIN "\"") != NULL);
	call(st, "GET", "/v1/key/describe/young", NULL);
	CHECK(strstr(R.body, "versions") == NULL);
	server_state_release(st);
}

static void test_state_errors(void)
{
	char err[256] = "";
	struct config *c = make_config();
	c->api_count = 1;
	c->api = calloc(1, sizeof *c->api);
	c->api[0].path = strdup("/v1/key/create"); /* route keys keep their trailing slash */
	c->api[0].skip_auth = true;
	/* KES ignores an api: key that names no route, so does kesc (the server warns) */
	struct server_state *ignored = server_state_new(c, err, sizeof err);
	CHECK(ignored != NULL);
	if (ignored) {
		CHECK(!server_state_any_skip_auth(ignored));
		server_state_release(ignored);
	} else {
		config_free(c);
	}

	c = make_config();
	free(c->policies[1].identities[0]);
	c->policies[1].identities[0] = strdup(MINIO);
	CHECK(server_state_new(c, err, sizeof err) == NULL);
	CHECK(strstr(err, "already has a policy") != NULL);
	config_free(c);

	/* keys: are created at start-up; creating them again is fine */
	c = make_config();
	c->keys = STRV("minio-default", "other");
	c->key_count = 2;
	struct server_state *st = server_state_new(c, err, sizeof err);
	CHECK(st != NULL);
	if (!st)
		return;
	call(st, "GET", "/v1/key/list/", NULL);
	CHECK_REPLY(200, "{\"names\":[\"minio-default\",\"other\"]}\n");
	call(st, "GET", "/v1/key/describe/minio-default", NULL);
	CHECK_EQ_INT(R.status, 200);
	int64_t started = server_state_started_ns(st);
	server_state_retain(st);
	server_state_release(st);
	call(st, "GET", "/version", NULL); /* still alive after retain + release */
	CHECK_EQ_INT(R.status, 200);
	server_state_release(st);

	/* a configured key whose name a delete still reserves: the server starts, the name
	 * stays reserved (created by a later start or reload) */
	c = make_config();
	c->keys = STRV("reserved", "fresh");
	c->key_count = 2;
	{
		struct keystore *mem = mem_keystore_open();
		struct tombstone t = {.deleted_at = keystore_now(), .until = keystore_now() + 3600};
		struct bytes rec = {(uint8_t *)"old-key", 7}, tomb = {0};
		struct ks_err kerr = {{0}};
		CHECK_EQ_INT(keystore_create(mem, "reserved", &rec, &kerr), KS_OK);
		CHECK_EQ_INT(tombstone_encode(&t, &tomb), 0);
		CHECK_EQ_INT(keystore_remove(mem, "reserved", &tomb, &kerr), KS_OK);
		bytes_free(&tomb);
		struct server_state *rs = server_state_new_with_store(c, mem, err, sizeof err);
		CHECK(rs != NULL);
		if (rs) {
			call(rs, "GET", "/v1/key/describe/reserved", NULL);
			CHECK_ERROR(404, "key does not exist");
			call(rs, "GET", "/v1/key/describe/fresh", NULL);
			CHECK_EQ_INT(R.status, 200);
			server_state_release(rs);
		}
	}

	/* a reload keeps the first start time */
	c = make_config();
	st = server_state_new(c, err, sizeof err);
	CHECK(st != NULL);
	if (st) {
		CHECK_EQ_INT(server_state_started_ns(st), started);
		server_state_release(st);
	}
}

int main(void)
{
	RUN(test_names);
	RUN(test_time_format);
	RUN(test_error_table);
	RUN(test_routing);
	RUN(test_auth);
	RUN(test_key_names);
	RUN(test_key_lifecycle);
	RUN(test_crypto);
	RUN(test_import);
	RUN(test_legacy_key);
	RUN(test_worker_contract);
	RUN(test_bulk_decrypt);
	RUN(test_policy_views);
	RUN(test_status_routes);
	RUN(test_metrics_counting);
	RUN(test_state_errors);
	RUN(test_key_versions);
	RUN(test_deletion_protection);
	RUN(test_rotate_after);
	return CHECK_DONE();
}
