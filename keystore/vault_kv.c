/*
 * vault_kv.c — KES's K/V layout: where a key lives and what its secret looks like.
 *
 *   v1: <engine>/<prefix>/<name>                          {"<name>": "<value>"}
 *   v2: <engine>/data/<prefix>/<name> {"options":{"cas":0},"data":{"<name>":"<value>"}}
 *       <engine>/metadata/<prefix>/<name>  (delete, list)
 *
 * The value is the stored record string (or its transit ciphertext). Paths are joined the way
 * Go's path.Join does it, so an empty prefix disappears and slashes never double.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/json.h"
#include "keystore/secmem.h"
#include "keystore/vault_internal.h"

bool vault_name_valid(const char *name)
{
	if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '/')
			return false;
	return strlen(name) <= 255;
}

static bool seg_char_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* Appends "/"+escaped segment at out+len; returns the new length or 0 if it does not fit. */
static size_t append_segment(char *out, size_t n, size_t len, const char *seg, size_t seglen)
{
	static const char hex[] = "0123456789ABCDEF";
	if (len > 0) {
		if (len + 1 >= n)
			return 0;
		out[len++] = '/';
	}
	for (size_t i = 0; i < seglen; i++) {
		unsigned char c = (unsigned char)seg[i];
		if (seg_char_plain(c)) {
			if (len + 1 >= n)
				return 0;
			out[len++] = (char)c;
		} else {
			if (len + 3 >= n)
				return 0;
			out[len++] = '%';
			out[len++] = hex[c >> 4];
			out[len++] = hex[c & 15];
		}
	}
	out[len] = 0;
	return len;
}

int vault_path_join(char *out, size_t n, const char *const *parts)
{
	/* Segment end offsets in out, so ".." can drop the previous segment. */
	size_t ends[256];
	size_t depth = 0, len = 0;
	if (n == 0)
		return -1;
	out[0] = 0;
	for (; *parts; parts++) {
		for (const char *p = *parts; *p;) {
			const char *slash = strchr(p, '/');
			size_t seglen = slash ? (size_t)(slash - p) : strlen(p);
			if (seglen == 2 && p[0] == '.' && p[1] == '.') {
				if (depth > 0) {
					depth--;
					len = depth > 0 ? ends[depth - 1] : 0;
					out[len] = 0;
				}
			} else if (seglen > 0 && !(seglen == 1 && p[0] == '.')) {
				size_t next = append_segment(out, n, len, p, seglen);
				if (next == 0 || depth == sizeof(ends) / sizeof(ends[0]))
					return -1;
				len = next;
				ends[depth++] = len;
			}
			p += seglen;
			if (*p == '/')
				p++;
		}
	}
	return 0;
}

static const char *opt(const char *s)
{
	return s ? s : "";
}

/* The path of name under sub ("" for v1, "data" or "metadata" for v2). */
static int kv_path(const struct vault_store *v, const char *sub, const char *name, char *out,
                   size_t n, struct ks_err *err)
{
	const char *parts[] = {v->engine, sub, opt(v->prefix), name, NULL};
	if (!vault_name_valid(name)) {
		ks_err_set(err, "vault: invalid key name");
		return KS_FAILED;
	}
	if (vault_path_join(out, n, parts) != 0) {
		ks_err_set(err, "vault: key path too long");
		return KS_FAILED;
	}
	return KS_OK;
}

int vault_kv_path(const struct vault_store *v, const char *name, char *out, size_t n,
                  struct ks_err *err)
{
	return kv_path(v, v->kv_version == 2 ? "data" : "", name, out, n, err);
}

/* Result for a Vault answer that is not the expected one. */
static int kv_status_result(const struct vault_response *rs, const char *what, const char *path,
                            struct ks_err *err)
{
	vault_http_error(rs, what, path, err);
	if (rs->status == 502 || rs->status == 503 || rs->status == 504)
		return KS_UNREACHABLE;
	return KS_FAILED;
}

/* Extracts the string field name from a v1 "data" or v2 "data.data" object. */
static int kv_field(const struct json_value *data, const char *name, const char *path,
                    struct bytes *value, struct ks_err *err)
{
	if (json_type(data) != JSON_OBJECT) {
		ks_err_set(err, "vault: invalid K/V format at '%s'", path);
		return KS_FAILED;
	}
	const struct json_value *field = json_get(data, name);
	size_t len;
	const char *s = json_string(field, &len);
	if (!field) {
		ks_err_set(
		    err,
		    "vault: invalid K/V format at '%s': entry exists but no secret key is present",
		    path);
		return KS_FAILED;
	}
	if (!s) {
		ks_err_set(err, "vault: invalid K/V format at '%s': value is not a string", path);
		return KS_FAILED;
	}
	if (len > 4 * (size_t)KS_MAX_RECORD) {
		ks_err_set(err, "vault: value at '%s' is too large", path);
		return KS_FAILED;
	}
	if (bytes_set(value, s, len) != 0) {
		ks_err_set(err, "vault: out of memory");
		return KS_FAILED;
	}
	return KS_OK;
}

int vault_kv_parse_read(int kv_version, const char *name, const char *body, size_t len,
                        struct bytes *value, struct ks_err *err)
{
	char perr[64];
	struct json_value *j = json_parse(body, len, perr, sizeof(perr));
	const struct json_value *data = json_get(j, "data");
	int rc;
	if (kv_version == 2)
		data = json_get(data, "data");
	if (!j || !data) {
		ks_err_set(err, "vault: invalid response reading '%s'", name);
		rc = KS_FAILED;
	} else if (json_type(data) == JSON_NULL) {
		rc = KS_NOT_FOUND; /* a deleted version */
	} else {
		rc = kv_field(data, name, name, value, err);
	}
	json_free(j);
	return rc;
}

/*
 * KV v2 reads the latest version (no ?version=). KES HEAD reads ?version=1. Keys are written
 * with cas=0, so a key has only version 1 and both agree — until a key is deleted and created
 * again: a metadata delete resets the version counter in Vault, but a soft delete or a
 * writer that does not delete metadata leaves version 1 gone and the record at version 2+,
 * where ?version=1 would answer "not found" for a key that exists. Latest is right in every
 * case a create-only writer produces.
 */
int vault_kv_read(struct vault_store *v, const char *name, struct bytes *value, struct ks_err *err)
{
	int64_t version;

	return vault_kv_read_entry(v, name, value, &version, err);
}

static int kv_body(const struct vault_store *v, const char *name, const struct bytes *value,
                   int64_t cas, struct buf *body)
{
	struct json_writer w;
	json_writer_init(&w, body);
	json_object_begin(&w);
	if (v->kv_version == 2) {
		json_key(&w, "options");
		json_object_begin(&w);
		json_key(&w, "cas");
		json_write_int(&w, cas);
		json_object_end(&w);
		json_key(&w, "data");
		json_object_begin(&w);
	}
	json_key(&w, name);
	json_write_string_n(&w, (const char *)value->data, value->len);
	if (v->kv_version == 2)
		json_object_end(&w);
	json_object_end(&w);
	return buf_failed(body) ? -1 : 0;
}

static bool kv_exists_now(struct vault_store *v, const char *name)
{
	struct bytes value = {0};
	struct ks_err err;
	int rc = vault_kv_read(v, name, &value, &err);
	bytes_free(&value);
	return rc == KS_OK;
}

int vault_kv_write(struct vault_store *v, const char *name, const struct bytes *value,
                   bool *maybe_stored, struct ks_err *err)
{
	char path[VAULT_PATH_MAX];
	*maybe_stored = false;
	int rc = kv_path(v, v->kv_version == 2 ? "data" : "", name, path, sizeof(path), err);
	if (rc != KS_OK)
		return rc;
	struct buf body;
	buf_init(&body, 8 * (size_t)KS_MAX_RECORD);
	struct vault_response rs;
	vault_response_init(&rs);
	if (kv_body(v, name, value, 0, &body) != 0) {
		ks_err_set(err, "vault: cannot encode secret for '%s'", path);
		rc = KS_FAILED;
		goto out;
	}
	struct vault_call call = {
	    .method = "PUT", .path = path, .body = body.data, .body_len = body.len};
	if ((rc = vault_store_call(v, &call, &rs, err)) != 0) {
		/* No answer: Vault may have stored it. A sealed Vault (known before or answered
		 * now) stored nothing. */
		*maybe_stored = rs.status == 0 && !atomic_load(&v->sealed);
		goto out;
	}
	if (rs.status == 200 || rs.status == 204)
		rc = KS_OK;
	else if (v->kv_version == 2 && rs.status == 400 &&
	         vault_http_error_contains(&rs, "check-and-set")) {
		ks_err_set(err, "vault: '%s' was created concurrently (check-and-set)", path);
		rc = KS_EXISTS;
	} else if (rs.status == 403 && kv_exists_now(v, name)) {
		/* With KES's policy (create but no update) Vault refuses to overwrite: another
		 * writer created the key between our read and our write. */
		ks_err_set(err, "vault: '%s' was created concurrently", path);
		rc = KS_EXISTS;
	} else {
		rc = kv_status_result(&rs, "failed to create", path, err);
		*maybe_stored = rs.status >= 500;
	}
out:
	buf_free(&body);
	vault_response_free(&rs);
	return rc;
}

int vault_kv_delete(struct vault_store *v, const char *name, struct ks_err *err)
{
	char path[VAULT_PATH_MAX];
	int rc = kv_path(v, v->kv_version == 2 ? "metadata" : "", name, path, sizeof(path), err);
	if (rc != KS_OK)
		return rc;
	struct vault_response rs;
	vault_response_init(&rs);
	struct vault_call call = {.method = "DELETE", .path = path};
	if ((rc = vault_store_call(v, &call, &rs, err)) == 0) {
		if (rs.status == 200 || rs.status == 204)
			rc = KS_OK;
		else
			rc = kv_status_result(&rs, "failed to delete", path, err);
	}
	vault_response_free(&rs);
	return rc;
}

int vault_kv_parse_list(const char *body, size_t len, const char *path, struct name_list *out,
                        struct ks_err *err)
{
	char perr[64];
	struct json_value *j = json_parse(body, len, perr, sizeof(perr));
	const struct json_value *keys = json_get(json_get(j, "data"), "keys");
	int rc = KS_OK;
	if (!j || (keys && json_type(keys) != JSON_ARRAY)) {
		ks_err_set(err, "vault: invalid list response for '%s'", path);
		rc = KS_FAILED;
	}
	for (size_t i = 0; rc == KS_OK && i < json_count(keys); i++) {
		size_t n;
		const char *s = json_string(json_at(keys, i), &n);
		if (!s || n == 0 || s[n - 1] == '/' || strlen(s) != n)
			continue; /* sub-folders and junk are not keys */
		if (name_list_add(out, s) != 0) {
			ks_err_set(err, "vault: out of memory");
			rc = KS_FAILED;
		}
	}
	json_free(j);
	return rc;
}

int vault_kv_list(struct vault_store *v, struct name_list *out, struct ks_err *err)
{
	char dir[VAULT_PATH_MAX], path[VAULT_PATH_MAX + 16];
	const char *parts[] = {v->engine, v->kv_version == 2 ? "metadata" : "", opt(v->prefix),
	                       NULL};
	if (vault_path_join(dir, sizeof(dir), parts) != 0) {
		ks_err_set(err, "vault: list path too long");
		return KS_FAILED;
	}
	snprintf(path, sizeof(path), "%s/?list=true", dir);
	struct vault_response rs;
	vault_response_init(&rs);
	struct vault_call call = {.method = "GET", .path = path};
	int rc = vault_store_call(v, &call, &rs, err);
	if (rc == 0) {
		if (rs.status == 404)
			rc = KS_OK; /* Vault's answer for an empty folder */
		else if (rs.status == 200)
			rc = vault_kv_parse_list(rs.body.data, rs.body.len, dir, out, err);
		else
			rc = kv_status_result(&rs, "failed to list", dir, err);
	}
	vault_response_free(&rs);
	return rc;
}

/* ---- tombstones (vault_tomb.c): reads with the version, writes with check-and-set,
 * destroying versions ---- */

#define KV_VERSION_MAX (INT64_C(1) << 53)

int vault_kv_parse_version(const char *body, size_t len, int64_t *version)
{
	char perr[64];
	struct json_value *j = json_parse(body, len, perr, sizeof(perr));
	const char *num =
	    json_number(json_get(json_get(json_get(j, "data"), "metadata"), "version"));
	char *end = NULL;
	errno = 0;
	long long n = num ? strtoll(num, &end, 10) : 0;
	/* Versions count writes: anything near the limit of the type is not a real answer. */
	int rc = num && end && *end == '\0' && errno == 0 && n > 0 && n < KV_VERSION_MAX ? 0 : -1;
	*version = rc == 0 ? n : 0;
	json_free(j);
	return rc;
}

int vault_kv_read_entry(struct vault_store *v, const char *name, struct bytes *value,
                        int64_t *version, struct ks_err *err)
{
	char path[VAULT_PATH_MAX];
	int rc = kv_path(v, v->kv_version == 2 ? "data" : "", name, path, sizeof(path), err);
	*version = 0;
	if (rc != KS_OK)
		return rc;
	struct vault_response rs;
	vault_response_init(&rs);
	struct vault_call call = {.method = "GET", .path = path};
	if ((rc = vault_store_call(v, &call, &rs, err)) != 0)
		goto out;
	if (rs.status != 200 && rs.status != 404) {
		rc = kv_status_result(&rs, "failed to read", path, err);
		goto out;
	}
	/* v2 says which version it answered, also for a deleted or destroyed one (404 with an
	 * envelope); a plain 404 has none: no entry at all. */
	if (v->kv_version == 2 && rs.body.len > 0 &&
	    vault_kv_parse_version(rs.body.data, rs.body.len, version) != 0 && rs.status == 200) {
		ks_err_set(err, "vault: read of '%s' answered without a version", path);
		rc = KS_FAILED;
		goto out;
	}
	if (rs.status == 404)
		rc = KS_NOT_FOUND;
	else
		rc =
		    vault_kv_parse_read(v->kv_version, name, rs.body.data, rs.body.len, value, err);
out:
	vault_response_free(&rs);
	return rc;
}

int vault_kv_write_cas(struct vault_store *v, const char *name, const struct bytes *value,
                       int64_t cas, bool *maybe_stored, struct ks_err *err)
{
	char path[VAULT_PATH_MAX];
	*maybe_stored = false;
	int rc = kv_path(v, v->kv_version == 2 ? "data" : "", name, path, sizeof(path), err);
	if (rc != KS_OK)
		return rc;
	struct buf body;
	buf_init(&body, 8 * (size_t)KS_MAX_RECORD);
	struct vault_response rs;
	vault_response_init(&rs);
	if (kv_body(v, name, value, cas, &body) != 0) {
		ks_err_set(err, "vault: cannot encode secret for '%s'", path);
		rc = KS_FAILED;
		goto out;
	}
	struct vault_call call = {
	    .method = "PUT", .path = path, .body = body.data, .body_len = body.len};
	if ((rc = vault_store_call(v, &call, &rs, err)) != 0) {
		*maybe_stored = rs.status == 0 && !atomic_load(&v->sealed);
		goto out;
	}
	if (rs.status == 200 || rs.status == 204) {
		rc = KS_OK;
	} else if (rs.status == 400 && vault_http_error_contains(&rs, "check-and-set")) {
		ks_err_set(err, "vault: '%s' changed concurrently (check-and-set)", path);
		rc = KS_EXISTS;
	} else if (rs.status == 403) {
		vault_http_error(&rs,
		                 "permission denied writing over an existing entry (kesc "
		                 "needs 'update' on the K/V data path: deletes leave "
		                 "tombstones)",
		                 path, err);
		rc = KS_FAILED;
	} else {
		rc = kv_status_result(&rs, "failed to write", path, err);
		*maybe_stored = rs.status >= 500;
	}
out:
	buf_free(&body);
	vault_response_free(&rs);
	return rc;
}

/* At most this many versions are named in one destroy: Vault keeps 10 by default, and a name
 * deleted and created this often has long lost its oldest ones. */
#define KV_DESTROY_MAX 1024

int vault_kv_destroy(struct vault_store *v, const char *name, int64_t upto, struct ks_err *err)
{
	char path[VAULT_PATH_MAX];
	int rc = kv_path(v, "destroy", name, path, sizeof(path), err);
	if (rc != KS_OK || upto < 1)
		return rc;
	struct buf body;
	struct json_writer w;
	buf_init(&body, 16 * KV_DESTROY_MAX + 64);
	json_writer_init(&w, &body);
	json_object_begin(&w);
	json_key(&w, "versions");
	json_array_begin(&w);
	int64_t first = upto > KV_DESTROY_MAX ? upto - KV_DESTROY_MAX + 1 : 1;
	for (int64_t i = 0; i <= upto - first; i++)
		json_write_int(&w, first + i);
	json_array_end(&w);
	json_object_end(&w);
	struct vault_response rs;
	vault_response_init(&rs);
	struct vault_call call = {
	    .method = "PUT", .path = path, .body = body.data, .body_len = body.len};
	if (buf_failed(&body)) {
		ks_err_set(err, "vault: out of memory");
		rc = KS_FAILED;
	} else if ((rc = vault_store_call(v, &call, &rs, err)) == 0) {
		if (rs.status == 200 || rs.status == 204)
			rc = KS_OK;
		else if (rs.status == 403) {
			vault_http_error(
			    &rs,
			    "permission denied destroying deleted versions (kesc needs "
			    "'update' on the K/V destroy path)",
			    path, err);
			rc = KS_FAILED;
		} else
			rc = kv_status_result(&rs, "failed to destroy versions", path, err);
	}
	buf_free(&body);
	vault_response_free(&rs);
	return rc;
}
