/*
 * vault_caps.c — may our token overwrite keys? Asked of Vault with sys/capabilities-self.
 *
 * K/V v1 has no create-only write: a PUT to an existing entry replaces it whenever the
 * token's policy grants "update" on the path. kesc's own guard (read first, serialise
 * creates of a name in this process) cannot stop another kesc replica, so two replicas
 * creating the same name would both succeed and one key would silently replace the other.
 * With KES's documented policy (create, read, delete, list — no update) Vault itself refuses
 * the second write. So on a v1 mount kesc checks the grant: at start-up and after every login
 * for a sample name, and before every create for the key's own path (policies can be written
 * per name, and a policy change applies to a live token at once). K/V v2 writes with cas=0,
 * which Vault enforces whatever the policy, so it is not checked.
 */
#include <stdio.h>
#include <string.h>

#include "keystore/json.h"
#include "keystore/vault_internal.h"

/* The name checked when no create is at hand (start-up, login). Any valid key name does;
 * this one says what it is if an operator finds it in Vault's audit log. */
#define PROBE_NAME "kesc-capability-probe"

/* "a/b/" → "a/b" without leading or trailing slashes, into out. */
static void ns_trim(const char *ns, char *out, size_t n)
{
	const char *s = ns ? ns : "";
	while (*s == '/')
		s++;
	size_t len = strlen(s);
	while (len > 0 && s[len - 1] == '/')
		len--;
	snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), s);
}

/*
 * capabilities-self answers for the token's own namespace: its default policy (which grants
 * the call) lives there, and in a child namespace a parent's token is not granted the call.
 * So the question is sent where the token lives, about the store namespace's path expressed
 * relative to it. Returns the prefix ("" or "child/ns") or NULL when the store namespace is
 * not below the token's, in which case the question is asked in the store namespace.
 */
static const char *caps_relative_ns(const struct vault_store *v, char *buf, size_t n)
{
	char store[VAULT_PATH_MAX / 2], token[VAULT_PATH_MAX / 2];
	ns_trim(v->namespace_, store, sizeof(store));
	ns_trim(vault_auth_namespace(v->auth), token, sizeof(token));
	size_t tl = strlen(token);
	if (tl == 0) {
		snprintf(buf, n, "%s", store);
		return buf;
	}
	if (strcmp(store, token) == 0) {
		buf[0] = 0;
		return buf;
	}
	if (strncmp(store, token, tl) == 0 && store[tl] == '/') {
		snprintf(buf, n, "%s", store + tl + 1);
		return buf;
	}
	return NULL;
}

int vault_caps_parse(const char *body, size_t len, const char *path, bool *update,
                     struct ks_err *err)
{
	char perr[64];
	struct json_value *j = json_parse(body, len, perr, sizeof(perr));
	const struct json_value *caps = json_get(json_get(j, "data"), path);
	int rc = KS_OK;
	if (json_type(caps) != JSON_ARRAY) {
		ks_err_set(err, "vault: capabilities-self gave no answer for '%s'", path);
		rc = KS_FAILED;
	}
	*update = false;
	for (size_t i = 0; rc == KS_OK && i < json_count(caps); i++) {
		const char *c = json_string(json_at(caps, i), NULL);
		if (c && (strcmp(c, "update") == 0 || strcmp(c, "root") == 0))
			*update = true;
	}
	json_free(j);
	return rc;
}

int vault_caps_check(struct vault_store *v, const char *name, struct ks_err *err)
{
	if (v->kv_version != 1 || v->allow_v1_update)
		return KS_OK;
	char kv[VAULT_PATH_MAX], rel[VAULT_PATH_MAX / 2], path[VAULT_PATH_MAX];
	int rc = vault_kv_path(v, name ? name : PROBE_NAME, kv, sizeof(kv), err);
	if (rc != KS_OK)
		return rc;
	const char *ns = caps_relative_ns(v, rel, sizeof(rel));
	const char *parts[] = {ns ? ns : "", kv, NULL};
	if (vault_path_join(path, sizeof(path), parts) != 0) {
		ks_err_set(err, "vault: key path too long");
		return KS_FAILED;
	}
	struct buf body;
	buf_init(&body, 2 * VAULT_PATH_MAX);
	struct json_writer w;
	json_writer_init(&w, &body);
	json_object_begin(&w);
	json_key(&w, "paths");
	json_array_begin(&w);
	json_write_string(&w, path);
	json_array_end(&w);
	json_object_end(&w);
	struct vault_response rs;
	vault_response_init(&rs);
	struct vault_call call = {.method = "POST",
	                          .path = "sys/capabilities-self",
	                          .body = body.data,
	                          .body_len = body.len,
	                          .token_namespace = ns != NULL};
	bool update = false;
	if (buf_failed(&body)) {
		ks_err_set(err, "vault: out of memory");
		rc = KS_FAILED;
	} else if ((rc = vault_store_call(v, &call, &rs, err)) != 0) {
		/* unreachable or sealed: err says so */
	} else if (rs.status != 200) {
		struct ks_err why;
		vault_http_error(&rs, "cannot ask", "sys/capabilities-self", &why);
		ks_err_set(err,
		           "%s — kesc must know whether its token may overwrite keys on K/V v1 "
		           "path '%s' (grant the token the default policy, or see "
		           "keystore.vault.allow_unsafe_kv_v1_update)",
		           why.msg, kv);
		rc = rs.status >= 500 ? KS_UNREACHABLE : KS_FAILED;
	} else if ((rc = vault_caps_parse(rs.body.data, rs.body.len, path, &update, err)) ==
	               KS_OK &&
	           update) {
		ks_err_set(
		    err,
		    "vault: refusing to write keys: the token's policy grants 'update' on K/V "
		    "v1 path '%s', so another server could overwrite a key this one created "
		    "(K/V v1 has no check-and-set); remove 'update' from the policy, or set "
		    "keystore.vault.allow_unsafe_kv_v1_update: true to accept that risk",
		    kv);
		rc = KS_FAILED;
	}
	buf_free(&body);
	vault_response_free(&rs);
	return rc;
}
