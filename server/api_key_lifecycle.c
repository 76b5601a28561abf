/*
 * api_key_lifecycle.c — kesc's routes that change a key after its creation (issue 14; KES has
 * none of them): rotate, rewrap, retire (minimum decryption version), restore and purge (for
 * deletion protection, key_lifecycle.h). Each is a read-modify-write of the key's record in the
 * keystore, so it runs on a worker; rewrap is a decrypt and an encrypt and runs wherever a
 * decrypt would. Errors come from api_errors.c; details go to the error log.
 *
 *   PUT|POST   /v1/key/rotate/<name>    → {"version":"v<n>"}
 *   PUT|POST   /v1/key/rewrap/<name>    {"ciphertext","context"} → {"ciphertext","version"}
 *   PUT|POST   /v1/key/retire/<name>    {"min_decryption_version":"v<n>"}
 *                                       → {"min_decryption_version":"v<n>","version":"v<m>"}
 *   PUT|POST   /v1/key/restore/<name>   → 200
 *   DELETE     /v1/key/purge/<name>     → 200
 */
#include <stdio.h>
#include <string.h>

#include "keystore/key_lifecycle.h"
#include "keystore/key_versions.h"
#include "server/api_key_internal.h"
#include "server/api_util.h"
#include "server/log.h"
#include "server/state.h"

/* The answers that are the same for every change; generic is the 502 of a store failure. */
static void change_failed(struct api_call *c, int rc, const char *op, const struct ks_err *err)
{
	switch (rc) {
	case KS_TOO_MANY:
		log_warn("%s '%s': refused: %s", op, c->arg, err->msg);
		api_error(c->resp, API_ERR_VERSIONS_MAX, NULL, NULL);
		return;
	case KS_EXISTS: /* restore or purge of a key that is not deleted */
		api_error(c->resp, API_ERR_KEY_NOT_DELETED, NULL, NULL);
		return;
	case KS_PURGED:
		log_info("%s '%s': refused: %s", op, c->arg, err->msg);
		api_error(c->resp, API_ERR_KEY_PURGED, NULL, NULL);
		return;
	case KS_NOT_FOUND:
		api_error(c->resp, API_ERR_KEY_NOT_FOUND, NULL, NULL);
		return;
	default:
		api_key_store_failure(c, rc, API_ERR_UPDATE_KEY, op, err);
	}
}

static void reply_version(struct api_call *c, uint32_t version)
{
	struct json_writer w;

	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	api_key_write_version(&w, "version", version);
	json_object_end(&w);
	api_reply_json_end(c->resp);
}

enum api_outcome api_key_rotate(struct api_call *c)
{
	struct ks_err err = {{0}};
	uint32_t version = 0;
	bool rotated;

	if (!api_key_check_name(c))
		return API_DONE;
	if (!c->may_block)
		return API_NEEDS_WORKER;
	int rc = key_lifecycle_rotate(server_state_cache(c->st), c->arg, c->identity, 0, 0,
	                              &rotated, &version, &err);
	if (rc != KS_OK) {
		change_failed(c, rc, "rotate key", &err);
		return API_DONE;
	}
	log_info("key '%s' rotated by %s: its current version is v%u", c->arg, c->identity,
	         version);
	reply_version(c, version);
	return API_DONE;
}

/* Decrypts with any version the key allows and encrypts again under its current version,
 * with the same context; the plaintext stays here. */
enum api_outcome api_key_rewrap(struct api_call *c)
{
	static const char *const names[] = {"ciphertext", "context"};
	struct bytes f[2] = {{0}}, pt = {0}, ct = {0};
	struct json_value *body = NULL;
	struct key_ref ref = {0};
	uint32_t used = 0, made = 0;
	struct api_crypt open = {.version_text = "", .failure = API_ERR_DECRYPT_INTERNAL};
	struct api_crypt seal = {.version_text = "", .failure = API_ERR_ENCRYPT};
	enum lookup l;

	if (!api_key_check_name(c) || api_key_read_fields(c, false, &body, names, f, 2) != 0)
		return API_DONE;
	if ((l = api_key_lookup(c, &ref)) != LOOKUP_OK)
		goto out;
	open = (struct api_crypt){.version_text = "",
	                          .data = f[0].data,
	                          .len = f[0].len,
	                          .ad = f[1].data,
	                          .ad_len = f[1].len,
	                          .failure = API_ERR_DECRYPT_INTERNAL};
	if ((l = api_key_open(c, &ref, &open, &pt, &used)) != LOOKUP_OK)
		goto out;
	seal.data = pt.data;
	seal.len = pt.len;
	seal.ad = f[1].data;
	seal.ad_len = f[1].len;
	if ((l = api_key_seal(c, &ref, &seal, &ct, &made)) != LOOKUP_OK)
		goto out;
	l = LOOKUP_DONE;
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "ciphertext");
	json_write_base64(&w, ct.data, ct.len);
	api_key_write_version(&w, "version", made);
	json_object_end(&w);
	api_reply_json_end(c->resp);
out:
	bytes_free(&pt);
	bytes_free(&ct);
	key_ref_release(&ref);
	api_key_free_fields(body, f, 2);
	return l == LOOKUP_WORKER ? API_NEEDS_WORKER : API_DONE;
}

/* The version the body names; -1 with the 400 written. */
static int read_min_version(struct api_call *c, uint32_t *min, char *text, size_t textlen)
{
	struct json_value *body = NULL;
	const char *s;
	size_t n;
	int rc = -1;

	if (api_parse_body(c->req, false, &body) != 0 ||
	    api_body_string(body, "min_decryption_version", &s, &n) != 0 || n == 0) {
		api_error(c->resp, API_ERR_BODY, NULL, NULL);
		goto out;
	}
	snprintf(text, textlen, "%.*s", (int)(n < textlen - 1 ? n : textlen - 1), s);
	if (memchr(s, '\0', n) || key_version_parse(s, n, min) != 0) {
		api_error(c->resp, API_ERR_VERSION_UNKNOWN, text, NULL);
		goto out;
	}
	rc = 0;
out:
	json_free(body);
	return rc;
}

enum api_outcome api_key_retire(struct api_call *c)
{
	struct ks_err err = {{0}};
	uint32_t min = 0, count = 0;
	char text[16];

	if (!api_key_check_name(c) || read_min_version(c, &min, text, sizeof text) != 0)
		return API_DONE;
	if (!c->may_block)
		return API_NEEDS_WORKER;
	int rc = key_lifecycle_retire(server_state_cache(c->st), c->arg, min, &count, &err);
	if (rc == KS_NO_VERSION) {
		api_error(c->resp, API_ERR_VERSION_UNKNOWN, text, NULL);
		return API_DONE;
	}
	if (rc != KS_OK) {
		change_failed(c, rc, "retire key versions", &err);
		return API_DONE;
	}
	log_info("key '%s': %s set its minimum decryption version to v%u (of v%u)", c->arg,
	         c->identity, min, count);
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	api_key_write_version(&w, "min_decryption_version", min);
	api_key_write_version(&w, "version", count);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	return API_DONE;
}

enum api_outcome api_key_restore(struct api_call *c)
{
	struct ks_err err = {{0}};

	if (!api_key_check_name(c))
		return API_DONE;
	if (!c->may_block)
		return API_NEEDS_WORKER;
	int rc = key_lifecycle_restore(server_state_cache(c->st), c->arg, keystore_now(), &err);
	if (rc != KS_OK) {
		change_failed(c, rc, "restore key", &err);
		return API_DONE;
	}
	log_info("key '%s' restored by %s", c->arg, c->identity);
	api_reply_empty(c->resp);
	return API_DONE;
}

enum api_outcome api_key_purge(struct api_call *c)
{
	struct ks_err err = {{0}};
	bool purged;

	if (!api_key_check_name(c))
		return API_DONE;
	if (!c->may_block)
		return API_NEEDS_WORKER;
	int rc = key_lifecycle_purge(server_state_cache(c->st), c->arg, false, keystore_now(),
	                             &purged, &err);
	if (rc != KS_OK) {
		change_failed(c, rc, "purge key", &err);
		return API_DONE;
	}
	log_info("key '%s' purged by %s: it cannot be restored any more", c->arg, c->identity);
	api_reply_empty(c->resp);
	return API_DONE;
}
