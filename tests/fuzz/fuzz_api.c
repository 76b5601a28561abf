/*
 * fuzz_api.c — api_handle (router, authentication, every handler's body and name parsing) on
 * arbitrary requests against an in-memory server state. Input: a flags byte (identity, may
 * the first call block, body too large), then "METHOD\nPATH\n" and the rest as the body.
 * Checked: a loop-thread call that asks for the worker left the response untouched; every
 * answer has a real status; error bodies have KES's {"message":…\n} shape.
 */
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/config.h"
#include "server/state.h"
#include "tests/fuzz/fuzz.h"

#define ADMIN "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"
#define USER  "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"

static struct server_state *state;

static char **one(const char *s)
{
	char **v = calloc(1, sizeof *v);
	if (v)
		v[0] = strdup(s);
	return v;
}

static struct server_state *make_state(void)
{
	struct config *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->admin_identity = strdup(ADMIN);
	c->keystore = CONFIG_KEYSTORE_MEM;
	c->policies = calloc(1, sizeof *c->policies);
	c->policy_count = 1;
	c->policies[0].name = strdup("app");
	c->policies[0].allow = one("/v1/key/*");
	c->policies[0].allow_count = 1;
	c->policies[0].deny = one("/v1/key/delete/*");
	c->policies[0].deny_count = 1;
	c->policies[0].identities = one(USER);
	c->policies[0].identity_count = 1;
	c->keys = one("k");
	c->key_count = 1;
	char err[256];
	struct server_state *st = server_state_new(c, err, sizeof err);
	if (!st)
		abort();
	return st;
}

static void check_reply(const struct api_response *r)
{
	if (r->status < 200 || r->status > 599)
		abort();
	if (r->status >= 400 && r->content_type && !strcmp(r->content_type, "application/json")) {
		if (r->body.len < 15 || strncmp(r->body.data, "{\"message\":\"", 12) != 0 ||
		    strcmp(r->body.data + r->body.len - 3, "\"\n}") != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!state)
		state = make_state();
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char *method = text;
	char *path = strchr(method, '\n');
	char *body = NULL;
	if (!path)
		goto out;
	*path++ = '\0';
	body = strchr(path, '\n');
	if (!body)
		goto out;
	*body++ = '\0';
	static const char *const ids[] = {ADMIN, USER, "", "00"};
	struct api_request req = {
	    .method = method,
	    .path = path,
	    .query = "",
	    .body = (const uint8_t *)body,
	    .body_len = (size_t)(text + size - 1 - body),
	    .body_too_large = (flags & 0x10) != 0,
	    .identity = ids[flags & 3],
	    .cert_problem = (flags & 3) == 2 ? API_CERT_NONE : API_CERT_OK,
	    .remote_ip = "127.0.0.1",
	};
	struct api_response resp = {.status = -1};
	buf_init(&resp.body, 0);
	enum api_outcome o = api_handle(state, &req, &resp, (flags & 4) != 0);
	if (o == API_NEEDS_WORKER) {
		if ((flags & 4) || resp.status != -1 || resp.body.len != 0)
			abort();
		if (api_handle(state, &req, &resp, true) != API_DONE)
			abort();
	}
	check_reply(&resp);
	buf_free(&resp.body);
out:
	free(text);
	return 0;
}
