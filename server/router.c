/*
 * router.c — KES's route table and the request pipeline in front of the handlers:
 * route lookup → method → authentication → handler (kes.md §1.2). The body limit is
 * enforced by the transport (api_route_limits); a body that was too large reaches the
 * handler flagged and fails its JSON decoding there, after authentication and name
 * validation, exactly where KES's MaxBytesReader makes it fail.
 */
#include "server/router.h"

#include <stdio.h>
#include <string.h>

#include "keystore/keystore.h"
#include "server/api_errors.h"
#include "server/state.h"

#define S(n) ((int64_t)(n)*1000)
#define MB   API_MAX_BODY

/* clang-format off: one route per line reads as the table it is */
static const struct route ROUTES[] = {
    {"GET", "/version", false, 0, S(10), ROUTE_AUTH_NONE, api_status_version, false},
    {"GET", "/v1/ready", false, 0, S(15), ROUTE_AUTH_VERIFY, api_status_ready, false},
    {"GET", "/v1/status", false, 0, S(15), ROUTE_AUTH_VERIFY, api_status_status, false},
    {"GET", "/v1/metrics", false, 0, S(15), ROUTE_AUTH_VERIFY, api_status_metrics, false},
    {"GET", "/v1/api", false, 0, S(10), ROUTE_AUTH_VERIFY, api_status_api, false},
    {"PUT", "/v1/key/create/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_key_create, true},
    {"PUT", "/v1/key/import/", true, MB, S(15), ROUTE_AUTH_VERIFY, api_key_import, true},
    {"GET", "/v1/key/describe/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_key_describe, true},
    {"GET", "/v1/key/list/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_key_list, true},
    {"DELETE", "/v1/key/delete/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_key_delete, true},
    {"PUT", "/v1/key/generate/", true, MB, S(15), ROUTE_AUTH_VERIFY, api_key_generate, true},
    {"PUT", "/v1/key/encrypt/", true, MB, S(15), ROUTE_AUTH_VERIFY, api_key_encrypt, true},
    {"PUT", "/v1/key/decrypt/", true, MB, S(15), ROUTE_AUTH_VERIFY, api_key_decrypt, true},
    {"PUT", "/v1/key/hmac/", true, MB, S(15), ROUTE_AUTH_VERIFY, api_key_hmac, true},
    /* KES until 2023-10-24 (older MinIO calls it): POST only, a MiB of body */
    {"POST", "/v1/key/bulk/decrypt/", true, API_MAX_BULK_BODY, S(15), ROUTE_AUTH_VERIFY,
     api_key_bulk_decrypt, true},
    {"GET", "/v1/policy/describe/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_policy_describe, true},
    {"GET", "/v1/policy/read/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_policy_read, true},
    {"GET", "/v1/policy/list/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_policy_list, true},
    {"GET", "/v1/identity/describe/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_identity_describe,
     true},
    {"GET", "/v1/identity/list/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_identity_list, true},
    {"GET", "/v1/identity/self/describe", false, 0, S(15), ROUTE_AUTH_IDENTIFY, api_identity_self,
     true},
    {"GET", "/v1/log/error", false, 0, 0, ROUTE_AUTH_VERIFY, api_log_error, false},
    {"GET", "/v1/log/audit", false, 0, 0, ROUTE_AUTH_VERIFY, api_log_audit, false},
    /* kesc: key versions and deletion protection (api_key_lifecycle.c), after KES's routes so
     * that /v1/api lists those first and in KES's order */
    {"PUT", "/v1/key/rotate/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_key_rotate, true},
    {"PUT", "/v1/key/rewrap/", true, MB, S(15), ROUTE_AUTH_VERIFY, api_key_rewrap, true},
    {"PUT", "/v1/key/retire/", true, 4096, S(15), ROUTE_AUTH_VERIFY, api_key_retire, true},
    {"PUT", "/v1/key/restore/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_key_restore, true},
    {"DELETE", "/v1/key/purge/", true, 0, S(15), ROUTE_AUTH_VERIFY, api_key_purge, true},
};
/* clang-format on */

#define ROUTE_COUNT (sizeof ROUTES / sizeof ROUTES[0])

/* Unknown paths: KES has no route, so the timeout the transport applies is our choice. */
#define DEFAULT_TIMEOUT_MS S(15)

size_t router_route_count(void)
{
	return ROUTE_COUNT;
}

const struct route *router_route_at(size_t i)
{
	return i < ROUTE_COUNT ? &ROUTES[i] : NULL;
}

int router_find_key(const char *key)
{
	for (size_t i = 0; i < ROUTE_COUNT; i++)
		if (strcmp(ROUTES[i].path, key) == 0)
			return (int)i;
	return -1;
}

int router_match(const char *path, const char **arg)
{
	for (size_t i = 0; i < ROUTE_COUNT; i++) {
		const struct route *r = &ROUTES[i];
		size_t n = strlen(r->path);
		if (!r->prefix) {
			if (strcmp(path, r->path) == 0) {
				*arg = "";
				return (int)i;
			}
			continue;
		}
		if (strncmp(path, r->path, n) == 0) {
			*arg = path + n;
			return (int)i;
		}
		/* "/v1/key/list" is "/v1/key/list/" with an empty argument: kms-go sends it for
		 * an empty pattern and KES answers it through a 301 we need not make. */
		if (strncmp(path, r->path, n - 1) == 0 && path[n - 1] == '\0') {
			*arg = "";
			return (int)i;
		}
	}
	return -1;
}

void api_route_limits(const struct server_state *st, const char *path, struct api_route_limits *out)
{
	const char *arg;
	int i = router_match(path, &arg);
	if (i < 0) {
		out->max_body = 0;
		out->timeout_ms = DEFAULT_TIMEOUT_MS;
		return;
	}
	out->max_body = ROUTES[i].max_body;
	out->timeout_ms = st ? server_state_route_timeout_ms(st, (size_t)i) : ROUTES[i].timeout_ms;
}

/* The method check: POST is accepted for every PUT route, as KES does. */
static bool method_ok(const struct route *r, const char *method)
{
	if (strcmp(method, r->method) == 0)
		return true;
	return strcmp(r->method, "PUT") == 0 && strcmp(method, "POST") == 0;
}

/* The first "enclave" parameter of the query, URL-decoded into out ("" when absent); false
 * when it does not fit or is malformed. Go's url.Query().Get takes the first one too. */
static bool query_enclave(const char *q, char *out, size_t n)
{
	out[0] = '\0';
	for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
		if (strncmp(p, "enclave=", 8) != 0)
			continue;
		size_t len = 0;
		for (p += 8; *p && *p != '&'; p++) {
			char ch = *p;
			if (ch == '+') {
				ch = ' ';
			} else if (ch == '%') {
				unsigned v;
				if (!p[1] || !p[2] || sscanf(p + 1, "%2x", &v) != 1)
					return false;
				ch = (char)v;
				p += 2;
			}
			if (len + 1 >= n)
				return false;
			out[len++] = ch;
		}
		out[len] = '\0';
		return true;
	}
	return true;
}

/*
 * Picks the view the request is served from (state.h): the tenant of the caller's identity,
 * from the identity alone. Only the admin may name another with ?enclave=<tenant> (the kes
 * CLI's -e flag of KES's enclave days), and only when the configuration has tenants: MinIO's
 * MINIO_KMS_KES_ENCLAVE sends the parameter too, which KES ignores, so a configuration without
 * tenants and every identity but the admin's ignore it. False with resp written (an admin's
 * enclave that does not exist).
 */
static bool select_view(struct api_call *c, enum server_caller who, struct server_state *view)
{
	if (who == SERVER_CALLER_ADMIN && server_state_tenant_count(c->st) > 0) {
		char name[96];
		bool ok = query_enclave(c->req->query, name, sizeof(name));
		if (!ok || name[0]) {
			view = ok ? server_state_tenant_named(c->st, name) : NULL;
			if (!view) {
				api_error(c->resp, API_ERR_NO_ENCLAVE, NULL, NULL);
				return false;
			}
		}
	}
	c->st = view;
	c->resp->tenant = server_state_tenant_name(view);
	c->resp->scope = server_state_metrics_scope(view);
	c->resp->group = server_state_worker_group(view);
	return true;
}

/* Returns true when the caller may go on; else resp holds KES's answer. */
static bool authenticate(struct api_call *c, const struct route *r)
{
	const struct api_request *req = c->req;
	enum route_auth mode = r->auth;
	if (mode == ROUTE_AUTH_VERIFY && server_state_route_skip_auth(c->st, c->route_index))
		mode = ROUTE_AUTH_IDENTIFY;
	c->identity = "";
	if (mode == ROUTE_AUTH_NONE)
		return true;
	if (req->cert_problem == API_CERT_OK && req->identity)
		c->identity = req->identity;
	struct server_state *view;
	const struct policy *policy;
	enum server_caller who = server_state_resolve(c->st, c->identity, &view, &policy);
	if (mode == ROUTE_AUTH_IDENTIFY)
		return select_view(c, who, view);
	if (req->cert_problem == API_CERT_MULTIPLE) {
		api_error(c->resp, API_ERR_CERT_MULTIPLE, NULL, NULL);
		return false;
	}
	if (req->cert_problem != API_CERT_OK || !c->identity[0]) {
		api_error(c->resp, API_ERR_CERT_REQUIRED, NULL, NULL);
		return false;
	}
	/* KES redirects "/v1/key/list" to "/v1/key/list/" before any policy sees it, so a
	 * subtree root is checked in its canonical form (an allow pattern "/v1/key/list/" plus
	 * star covers it). */
	const char *path = req->path;
	if (r->prefix && strlen(path) < strlen(r->path))
		path = r->path;
	if (who != SERVER_CALLER_ADMIN && !policy_allows(policy, path)) {
		api_error(c->resp, API_ERR_NOT_ALLOWED, NULL, NULL);
		return false;
	}
	return select_view(c, who, view);
}

bool router_stream_still_allowed(struct server_state *st, const char *identity, const char *path,
                                 const char *tenant)
{
	const char *arg;
	int i = router_match(path, &arg);
	if (i < 0)
		return false;
	struct server_state *view;
	const struct policy *policy;
	enum server_caller who = server_state_resolve(st, identity, &view, &policy);
	if (who == SERVER_CALLER_ADMIN)
		return true; /* the admin may stream any view (?enclave=) */
	if (!server_state_route_skip_auth(st, (size_t)i) &&
	    (who != SERVER_CALLER_POLICY || !policy_allows(policy, path)))
		return false;
	const char *now = server_state_tenant_name(view);
	if (!now || !tenant)
		return !now && !tenant;
	return strcmp(now, tenant) == 0;
}

/*
 * What every request goes through before its handler: route lookup, the method check and
 * authentication, in KES's order. Returns the route, or NULL when resp already holds the
 * answer (404, 405, 400 or 403). call is filled for the handler.
 */
static const struct route *route_admit(struct api_call *call, struct server_state *st,
                                       const struct api_request *req, struct api_response *resp)
{
	const char *arg = "";
	int i = router_match(req->path, &arg);
	if (i < 0) {
		resp->allow = NULL;
		resp->metered = false;
		api_error(resp, API_ERR_PAGE_NOT_FOUND, NULL, NULL);
		return NULL;
	}
	const struct route *r = &ROUTES[i];
	resp->tenant = NULL;
	resp->scope = NULL;
	resp->group = NULL;
	*call = (struct api_call){
	    .st = st,
	    .req = req,
	    .resp = resp,
	    .arg = arg,
	    .identity = "",
	    .route_index = (size_t)i,
	};
	/* resp stays untouched when the request is admitted: a handler that needs the worker
	 * must leave no trace (api.h). */
	if (!method_ok(r, req->method)) {
		api_error(resp, API_ERR_METHOD, req->method, r->method);
		resp->allow = r->method;
		resp->metered = false; /* KES answers before its counters, as below */
		return NULL;
	}
	if (!authenticate(call, r)) {
		resp->metered = false;
		return NULL;
	}
	return r;
}

bool api_precheck(struct server_state *st, const struct api_request *req, struct api_response *resp)
{
	struct api_call call;
	return route_admit(&call, st, req, resp) != NULL;
}

enum api_outcome api_handle(struct server_state *st, const struct api_request *req,
                            struct api_response *resp, bool may_block)
{
	struct api_call call;
	const struct route *r = route_admit(&call, st, req, resp);
	if (!r)
		return API_DONE;
	call.may_block = may_block;
	/* What the handler (and the keystore under it) logs names the tenant and reaches its
	 * error stream. */
	keystore_thread_tag_set(resp->tenant);
	enum api_outcome out = r->handler(&call);
	keystore_thread_tag_set(NULL);
	if (out == API_NEEDS_WORKER)
		return API_NEEDS_WORKER; /* resp untouched: the worker answers */
	resp->metered = r->metered;
	if (buf_failed(&resp->body))
		api_error(resp, API_ERR_INTERNAL, NULL, NULL);
	return API_DONE;
}
