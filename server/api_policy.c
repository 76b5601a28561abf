/*
 * api_policy.c — read-only views of the configured policies and identities (kes.md §1.7).
 * Policies and identities report the server start time as created_at and the admin as
 * created_by, as KES does. These never touch the keystore, so they answer on the loop thread.
 */
#include <stdlib.h>
#include <string.h>

#include "server/api_errors.h"
#include "server/api_util.h"
#include "server/router.h"
#include "server/state.h"

static void write_created(struct api_call *c, struct json_writer *w, bool with_by)
{
	char created[40];
	api_format_time_ns(created, sizeof created, server_state_started_ns(c->st));
	json_key(w, "created_at");
	json_write_string(w, created);
	const char *admin = policy_set_admin(server_state_policies(c->st));
	if (with_by && admin && admin[0]) { /* omitempty */
		json_key(w, "created_by");
		json_write_string(w, admin);
	}
}

/* KES encodes allow/deny as Go maps of empty structs: keys sorted, values {}. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void write_rules(struct json_writer *w, const char *name, char **rules, size_t n,
                        bool omit_empty)
{
	if (n == 0 && omit_empty)
		return;
	const char **sorted = n ? calloc(n, sizeof *sorted) : NULL;
	json_key(w, name);
	json_object_begin(w);
	if (sorted) {
		memcpy(sorted, rules, n * sizeof *sorted);
		qsort(sorted, n, sizeof *sorted, cmp_str);
		for (size_t i = 0; i < n; i++) {
			if (i > 0 && strcmp(sorted[i], sorted[i - 1]) == 0)
				continue; /* a map holds each pattern once */
			json_key(w, sorted[i]);
			json_object_begin(w);
			json_object_end(w);
		}
		free(sorted);
	} else if (n) {
		w->out->failed = true; /* out of memory: api_handle turns this into a 500 */
	}
	json_object_end(w);
}

static const struct policy *find_policy(struct api_call *c)
{
	if (!api_valid_name(c->arg)) {
		api_error(c->resp, API_ERR_POLICY_NAME, c->arg, NULL);
		return NULL;
	}
	const struct policy *p = policy_set_find(server_state_policies(c->st), c->arg);
	if (!p)
		api_error(c->resp, API_ERR_POLICY_NOT_FOUND, NULL, NULL);
	return p;
}

enum api_outcome api_policy_describe(struct api_call *c)
{
	if (!find_policy(c))
		return API_DONE;
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "name");
	json_write_string(&w, c->arg);
	write_created(c, &w, true);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}

enum api_outcome api_policy_read(struct api_call *c)
{
	const struct policy *p = find_policy(c);
	if (!p)
		return API_DONE;
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "name");
	json_write_string(&w, c->arg);
	write_rules(&w, "allow", p->allow, p->allow_count, true);
	write_rules(&w, "deny", p->deny, p->deny_count, true);
	write_created(c, &w, true);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}

/* Writes {"<field>":[sorted matches…],"continue_at":""}; extra (may be NULL) is one more
 * candidate merged in order (the admin identity for identity lists). */
static void write_name_list(struct api_call *c, const char *field, const char **names, size_t n,
                            const char *extra)
{
	char prefix[96];
	api_pattern_prefix(c->arg, prefix, sizeof prefix);
	size_t plen = strlen(prefix);
	bool extra_ok = extra && extra[0] && strncmp(extra, prefix, plen) == 0;
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, field);
	json_array_begin(&w);
	for (size_t i = 0; i <= n; i++) {
		if (extra_ok && (i == n || strcmp(extra, names[i]) <= 0)) {
			json_write_string(&w, extra);
			extra_ok = false;
		}
		if (i < n && strncmp(names[i], prefix, plen) == 0)
			json_write_string(&w, names[i]);
	}
	json_array_end(&w);
	json_key(&w, "continue_at");
	json_write_string(&w, "");
	json_object_end(&w);
	api_reply_json_end(c->resp);
}

enum api_outcome api_policy_list(struct api_call *c)
{
	if (!api_valid_pattern(c->arg)) {
		api_error(c->resp, API_ERR_PATTERN, c->arg, NULL);
		return API_DONE;
	}
	const char **names;
	size_t n = policy_set_names(server_state_policies(c->st), &names);
	write_name_list(c, "names", names, n, NULL);
	return API_DONE;
}

enum api_outcome api_identity_list(struct api_call *c)
{
	if (!api_valid_pattern(c->arg)) {
		api_error(c->resp, API_ERR_PATTERN, c->arg, NULL);
		return API_DONE;
	}
	const struct policy_set *ps = server_state_policies(c->st);
	const char **ids;
	size_t n = policy_set_identities(ps, &ids);
	write_name_list(c, "identities", ids, n, policy_set_admin(ps));
	return API_DONE;
}

enum api_outcome api_identity_describe(struct api_call *c)
{
	if (!api_valid_name(c->arg)) {
		api_error(c->resp, API_ERR_IDENTITY_NAME, c->arg, NULL);
		return API_DONE;
	}
	const struct policy_set *ps = server_state_policies(c->st);
	struct json_writer w;
	if (policy_set_is_admin(ps, c->arg)) {
		api_reply_json_begin(c->resp, &w);
		json_object_begin(&w);
		json_key(&w, "admin");
		json_write_bool(&w, true);
		write_created(c, &w, false);
		json_object_end(&w);
		api_reply_json_end(c->resp);
		return API_DONE;
	}
	const struct policy *p = policy_set_policy_of(ps, c->arg);
	if (!p) {
		api_error(c->resp, API_ERR_IDENTITY_NOT_FOUND, NULL, NULL);
		return API_DONE;
	}
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "policy");
	json_write_string(&w, p->name);
	write_created(c, &w, true);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}

/*
 * Deliberate fix of KES HEAD, which answers 404 to every non-admin (it looks up the empty
 * route argument instead of the caller). We answer what kms-go's DescribeSelf decodes: the
 * policy's name as a string with its allow/deny rules at the top level.
 */
enum api_outcome api_identity_self(struct api_call *c)
{
	const struct policy_set *ps = server_state_policies(c->st);
	struct json_writer w;
	/* The admin, also while it looks at a tenant (?enclave=), whose views do not list it. */
	struct server_state *view;
	const struct policy *mine;
	if (server_state_resolve(c->st, c->identity, &view, &mine) == SERVER_CALLER_ADMIN) {
		api_reply_json_begin(c->resp, &w);
		json_object_begin(&w);
		json_key(&w, "identity");
		json_write_string(&w, c->identity);
		json_key(&w, "admin");
		json_write_bool(&w, true);
		write_created(c, &w, false);
		json_object_end(&w);
		api_reply_json_end(c->resp);
		return API_DONE;
	}
	const struct policy *p = c->identity[0] ? policy_set_policy_of(ps, c->identity) : NULL;
	if (!p) {
		api_error(c->resp, API_ERR_IDENTITY_NOT_FOUND, NULL, NULL);
		return API_DONE;
	}
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "identity");
	json_write_string(&w, c->identity);
	json_key(&w, "policy");
	json_write_string(&w, p->name);
	write_rules(&w, "allow", p->allow, p->allow_count, false);
	write_rules(&w, "deny", p->deny, p->deny_count, false);
	write_created(c, &w, true);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}
