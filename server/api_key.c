/*
 * api_key.c — the handlers under /v1/key/ (kes.md §1.7). Replies and errors are KES HEAD's byte
 * for byte; the list route deliberately differs (see api_key_list). Keys that were rotated
 * (key_versions.h) answer with more: generate and encrypt say the "version" they used (the
 * member kms-go decodes), describe lists the versions; a key never rotated answers exactly as
 * KES does. The routes that change keys are in api_key_lifecycle.c.
 *
 * On a loop thread (may_block false) only cache hits are served; anything that needs the
 * store returns API_NEEDS_WORKER before touching the response, and runs again on a worker.
 * Plaintexts and data keys are zeroed once the reply holds them (the reply buffer is zeroed
 * when the transport frees it).
 */
#include <stdio.h>
#include <string.h>

#include "keystore/cache.h"
#include "keystore/key.h"
#include "keystore/key_lifecycle.h"
#include "keystore/key_versions.h"
#include "keystore/secmem.h"
#include "server/api_errors.h"
#include "server/api_key_internal.h"
#include "server/api_util.h"
#include "server/key_stats.h"
#include "server/log.h"
#include "server/router.h"
#include "server/state.h"

#define check_name    api_key_check_name
#define store_failure api_key_store_failure
#define key_lookup    api_key_lookup
#define read_fields   api_key_read_fields
#define free_fields   api_key_free_fields

bool api_key_check_name(struct api_call *c)
{
	if (api_valid_name(c->arg))
		return true;
	api_error(c->resp, API_ERR_KEY_NAME, c->arg, NULL);
	return false;
}

void api_key_store_failure(struct api_call *c, int rc, enum api_error_id generic, const char *op,
                           const struct ks_err *err)
{
	if (rc == KS_NOT_FOUND) {
		api_error(c->resp, API_ERR_KEY_NOT_FOUND, NULL, NULL);
		return;
	}
	if (rc == KS_EXISTS) {
		api_error(c->resp, API_ERR_KEY_EXISTS, NULL, NULL);
		return;
	}
	if (rc == KS_DELETED) {
		/* Not an error of the server, but an operator wants to know until when. */
		log_warn("%s '%s': refused: %s", op, c->arg, err->msg);
		api_error(c->resp, API_ERR_KEY_DELETED, NULL, NULL);
		return;
	}
	log_error("%s '%s': %s: %s", op, c->arg, ks_result_name(rc), err->msg);
	api_error(c->resp, generic, NULL, NULL);
}

enum lookup api_key_lookup(struct api_call *c, struct key_ref *ref)
{
	struct ks_err err = {{0}};
	unsigned flags = c->may_block ? 0 : KS_CACHE_NONBLOCK;
	int rc = ks_cache_get(server_state_cache(c->st), c->arg, flags, ref, &err);
	if (rc == KS_OK)
		return LOOKUP_OK;
	if (rc == KS_WOULD_BLOCK)
		return LOOKUP_WORKER;
	store_failure(c, rc, API_ERR_READ_KEY, "read key", &err);
	return LOOKUP_DONE;
}

enum lookup api_key_refresh(struct api_call *c, struct key_ref *ref)
{
	struct ks_err err = {{0}};

	key_ref_release(ref);
	if (!c->may_block)
		return LOOKUP_WORKER;
	int rc = ks_cache_get_fresh(server_state_cache(c->st), c->arg, ref, &err);
	if (rc == KS_OK)
		return LOOKUP_OK;
	store_failure(c, rc, API_ERR_READ_KEY, "read key", &err);
	return LOOKUP_DONE;
}

int api_key_read_version(struct api_call *c, const struct json_value *body, uint32_t *version,
                         char *text, size_t textlen)
{
	const char *s;
	size_t n;

	*version = 0;
	text[0] = '\0';
	if (api_body_string(body, "version", &s, &n) != 0) {
		api_error(c->resp, API_ERR_BODY, NULL, NULL);
		return -1;
	}
	if (n == 0)
		return 0; /* absent, null or "": the key decides, as KES does */
	snprintf(text, textlen, "%.*s", (int)(n < textlen - 1 ? n : textlen - 1), s);
	if (memchr(s, '\0', n) || key_version_parse(s, n, version) != 0) {
		api_error(c->resp, API_ERR_VERSION_UNKNOWN, text, NULL);
		return -1;
	}
	return 0;
}

enum lookup api_key_seal(struct api_call *c, struct key_ref *ref, const struct api_crypt *in,
                         struct bytes *ct, uint32_t *used)
{
	int rc =
	    key_set_encrypt(ref->set, in->version, in->data, in->len, in->ad, in->ad_len, ct, used);
	if (rc == KEY_ERR_NO_VERSION) {
		enum lookup l = api_key_refresh(c, ref);
		if (l != LOOKUP_OK)
			return l;
		rc = key_set_encrypt(ref->set, in->version, in->data, in->len, in->ad, in->ad_len,
		                     ct, used);
	}
	if (rc == 0)
		return LOOKUP_OK;
	if (rc == KEY_ERR_NO_VERSION)
		api_error(c->resp, API_ERR_VERSION_UNKNOWN, in->version_text, NULL);
	else if (rc == KEY_ERR_RETIRED)
		api_error(c->resp, API_ERR_VERSION_RETIRED, in->version_text, NULL);
	else
		api_error(c->resp, in->failure, NULL, NULL);
	return LOOKUP_DONE;
}

enum lookup api_key_open(struct api_call *c, struct key_ref *ref, const struct api_crypt *in,
                         struct bytes *pt, uint32_t *used)
{
	char name[16];
	int rc =
	    key_set_decrypt(ref->set, in->version, in->data, in->len, in->ad, in->ad_len, pt, used);
	if (rc == KEY_ERR_NO_VERSION) {
		enum lookup l = api_key_refresh(c, ref);
		if (l != LOOKUP_OK)
			return l;
		rc = key_set_decrypt(ref->set, in->version, in->data, in->len, in->ad, in->ad_len,
		                     pt, used);
	}
	if (rc == 0) {
		if (*used < ref->set->count)
			key_stats_old_version(server_state_tenant_name(c->st), c->arg, *used);
		return LOOKUP_OK;
	}
	if (rc == KEY_ERR_RETIRED) {
		key_version_format(*used, name, sizeof name);
		api_error(c->resp, API_ERR_VERSION_RETIRED, name, NULL);
	} else if (rc == KEY_ERR_NO_VERSION && in->version) {
		api_error(c->resp, API_ERR_VERSION_UNKNOWN, in->version_text, NULL);
	} else if (rc == KEY_ERR_NOT_AUTHENTIC || rc == KEY_ERR_INVALID ||
	           rc == KEY_ERR_NO_VERSION) {
		api_error(c->resp, API_ERR_DECRYPT, NULL, NULL);
	} else {
		api_error(c->resp, in->failure, NULL, NULL);
	}
	return LOOKUP_DONE;
}

void api_key_write_version(struct json_writer *w, const char *member, uint32_t version)
{
	char name[16];

	key_version_format(version, name, sizeof name);
	json_key(w, member);
	json_write_string(w, name);
}

static enum api_outcome store_new_key(struct api_call *c, struct secret_key *k)
{
	struct ks_err err = {{0}};
	int rc = ks_cache_create(server_state_cache(c->st), c->arg, k, &err);
	key_free(k);
	if (rc == KS_OK)
		api_reply_empty(c->resp);
	else
		store_failure(c, rc, API_ERR_CREATE_KEY, "create key", &err);
	return API_DONE;
}

enum api_outcome api_key_create(struct api_call *c)
{
	if (!check_name(c))
		return API_DONE;
	if (!c->may_block)
		return API_NEEDS_WORKER;
	struct secret_key *k = NULL;
	if (key_generate(key_default_algorithm(), c->identity, &k) != 0) {
		api_error(c->resp, API_ERR_GENERATE, NULL, NULL);
		return API_DONE;
	}
	return store_new_key(c, k);
}

enum api_outcome api_key_import(struct api_call *c)
{
	if (!check_name(c))
		return API_DONE;
	if (!c->may_block)
		return API_NEEDS_WORKER;
	struct json_value *body = NULL;
	struct bytes raw = {0};
	const char *cipher;
	size_t cipher_len;
	enum key_algorithm alg;
	struct secret_key *k = NULL;
	if (api_parse_body(c->req, false, &body) != 0 || json_get_base64(body, "key", &raw) < 0 ||
	    api_body_string(body, "cipher", &cipher, &cipher_len) != 0) {
		api_error(c->resp, API_ERR_IMPORT_BODY, NULL, NULL);
		goto out;
	}
	if (key_algorithm_parse(cipher, &alg) != 0) {
		api_error(c->resp, API_ERR_ALGORITHM, cipher, NULL);
		goto out;
	}
	if (raw.len != KEY_SIZE) {
		api_error(c->resp, API_ERR_KEY_SIZE, cipher, NULL);
		goto out;
	}
	if (key_import(alg, raw.data, raw.len, c->identity, &k) != 0) {
		api_error(c->resp, API_ERR_IMPORT_INTERNAL, NULL, NULL);
		goto out;
	}
	store_new_key(c, k);
out:
	bytes_free(&raw);
	json_free(body);
	return API_DONE;
}

/* describe's members for one version (or, top level, for the key). */
static void describe_created(struct json_writer *w, const struct secret_key *k)
{
	char created[40];

	api_format_time(created, sizeof created, k->created_at_sec, k->created_at_nsec);
	json_key(w, "created_at");
	json_write_string(w, created);
	if (k->created_by[0]) { /* omitempty */
		json_key(w, "created_by");
		json_write_string(w, k->created_by);
	}
}

/* A rotated key also says its current version, its minimum decryption version and every
 * version (a key never rotated answers exactly as KES). */
static void describe_versions(struct json_writer *w, const struct key_set *set)
{
	api_key_write_version(w, "version", set->count);
	api_key_write_version(w, "min_decryption_version", set->min_decryption);
	json_key(w, "versions");
	json_array_begin(w);
	for (uint32_t n = 1; n <= set->count; n++) {
		const struct secret_key *k = key_set_version(set, n);

		json_object_begin(w);
		api_key_write_version(w, "version", n);
		json_key(w, "algorithm");
		json_write_string(w, key_algorithm_name(k->algorithm));
		describe_created(w, k);
		json_object_end(w);
	}
	json_array_end(w);
}

enum api_outcome api_key_describe(struct api_call *c)
{
	if (!check_name(c))
		return API_DONE;
	struct key_ref ref;
	enum lookup l = key_lookup(c, &ref);
	if (l != LOOKUP_OK)
		return l == LOOKUP_WORKER ? API_NEEDS_WORKER : API_DONE;
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "name");
	json_write_string(&w, c->arg);
	json_key(&w, "algorithm"); /* what new ciphertexts are made with */
	json_write_string(&w, key_algorithm_name(ref.key->algorithm));
	describe_created(&w, key_set_version(ref.set, 1)); /* when the key was created */
	if (key_set_versioned(ref.set))
		describe_versions(&w, ref.set);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	key_ref_release(&ref);
	return API_DONE;
}

/*
 * Deliberate difference from KES HEAD: KES passes the pattern verbatim as a prefix (so
 * "my-key*" matches nothing), caps a reply at 1024 names and returns continue_at, which
 * kms-go then sends back as the next *prefix*, so paging past 1024 keys is broken. We strip
 * a trailing '*' as KES's policy and identity lists do, and return every match, sorted and
 * once each, in one reply, so continue_at is never needed and is omitted (omitempty in KES,
 * so clients already handle its absence).
 */
enum api_outcome api_key_list(struct api_call *c)
{
	if (!api_valid_pattern(c->arg)) {
		api_error(c->resp, API_ERR_PATTERN, c->arg, NULL);
		return API_DONE;
	}
	if (!c->may_block)
		return API_NEEDS_WORKER;
	char prefix[96];
	api_pattern_prefix(c->arg, prefix, sizeof prefix);
	struct name_list names = {0};
	struct ks_err err = {{0}};
	int rc = ks_cache_list(server_state_cache(c->st), prefix, &names, &err);
	if (rc != KS_OK) {
		store_failure(c, rc == KS_NOT_FOUND || rc == KS_EXISTS ? KS_FAILED : rc,
		              API_ERR_LIST_KEYS, "list keys", &err);
		name_list_free(&names);
		return API_DONE;
	}
	name_list_sort(&names);
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "names");
	json_array_begin(&w);
	for (size_t i = 0; i < names.count; i++)
		if (strncmp(names.names[i], prefix, strlen(prefix)) == 0)
			json_write_string(&w, names.names[i]);
	json_array_end(&w);
	json_object_end(&w);
	api_reply_json_end(c->resp);
	name_list_free(&names);
	return API_DONE;
}

enum api_outcome api_key_delete(struct api_call *c)
{
	if (!check_name(c))
		return API_DONE;
	if (!c->may_block)
		return API_NEEDS_WORKER;
	struct ks_err err = {{0}};
	int64_t window_ms = server_state_config(c->st)->lifecycle.delete_window_ms;
	int rc = window_ms > 0
	             ? key_lifecycle_schedule_delete(server_state_cache(c->st), c->arg, c->identity,
	                                             (window_ms + 999) / 1000, keystore_now(), &err)
	             : ks_cache_remove(server_state_cache(c->st), c->arg, c->identity, &err);
	if (rc == KS_OK && window_ms > 0)
		log_info("key '%s' deleted by %s: it can be restored for %llds, then it is purged",
		         c->arg, c->identity, (long long)((window_ms + 999) / 1000));
	if (rc == KS_OK)
		api_reply_empty(c->resp);
	else
		store_failure(c, rc == KS_EXISTS ? KS_FAILED : rc, API_ERR_DELETE_KEY, "delete key",
		              &err);
	return API_DONE;
}

/* Parses the body and the base64 members the route reads. Returns 0, or -1 with the
 * 400 "invalid request body" answer written. */
int api_key_read_fields(struct api_call *c, bool allow_empty, struct json_value **body,
                        const char *const *names, struct bytes *fields, size_t n)
{
	if (api_parse_body(c->req, allow_empty, body) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (json_get_base64(*body, names[i], &fields[i]) < 0)
			goto fail;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		bytes_free(&fields[i]);
	json_free(*body);
	*body = NULL;
	api_error(c->resp, API_ERR_BODY, NULL, NULL);
	return -1;
}

void api_key_free_fields(struct json_value *body, struct bytes *fields, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bytes_free(&fields[i]);
	json_free(body);
}

/* The lookup outcome as the handler's. */
static enum api_outcome outcome_of(enum lookup l)
{
	return l == LOOKUP_WORKER ? API_NEEDS_WORKER : API_DONE;
}

enum api_outcome api_key_generate(struct api_call *c)
{
	static const char *const names[] = {"context"};
	struct bytes f[1] = {{0}};
	struct json_value *body = NULL;
	struct key_ref ref = {0};
	uint8_t dek[32];
	struct bytes ct = {0};
	char vtext[16];
	uint32_t used = 0;
	struct api_crypt in = {.version_text = vtext, .failure = API_ERR_GENERATE};
	enum lookup l = LOOKUP_DONE;
	if (!check_name(c) || read_fields(c, true, &body, names, f, 1) != 0)
		return API_DONE;
	if (api_key_read_version(c, body, &in.version, vtext, sizeof vtext) != 0)
		goto out;
	if ((l = key_lookup(c, &ref)) != LOOKUP_OK)
		goto out;
	if (key_random(dek, sizeof dek) != 0) {
		api_error(c->resp, API_ERR_GENERATE, NULL, NULL);
		l = LOOKUP_DONE;
		goto out;
	}
	in.data = dek;
	in.len = sizeof dek;
	in.ad = f[0].data;
	in.ad_len = f[0].len;
	if ((l = api_key_seal(c, &ref, &in, &ct, &used)) != LOOKUP_OK)
		goto out;
	l = LOOKUP_DONE;
	struct json_writer w;
	api_reply_json_begin(c->resp, &w);
	json_object_begin(&w);
	json_key(&w, "plaintext");
	json_write_base64(&w, dek, sizeof dek);
	json_key(&w, "ciphertext");
	json_write_base64(&w, ct.data, ct.len);
	if (key_set_versioned(ref.set))
		api_key_write_version(&w, "version", used);
	json_object_end(&w);
	api_reply_json_end(c->resp);
out:
	secure_zero(dek, sizeof dek);
	bytes_free(&ct);
	key_ref_release(&ref);
	free_fields(body, f, 1);
	return outcome_of(l);
}

/* A reply of one base64 member, {"<name>":"<b64>"}: encrypt, decrypt and hmac answer so; a
 * rotated key's encrypt adds the version (version 0: none). */
static void reply_base64(struct api_response *resp, const char *name, const uint8_t *data,
                         size_t len, uint32_t version)
{
	struct json_writer w;
	api_reply_json_begin(resp, &w);
	json_object_begin(&w);
	json_key(&w, name);
	json_write_base64(&w, data, len);
	if (version)
		api_key_write_version(&w, "version", version);
	json_object_end(&w);
	api_reply_json_end(resp);
}

enum api_outcome api_key_encrypt(struct api_call *c)
{
	static const char *const names[] = {"plaintext", "context"};
	struct bytes f[2] = {{0}};
	struct json_value *body = NULL;
	struct key_ref ref = {0};
	struct bytes ct = {0};
	char vtext[16];
	uint32_t used = 0;
	struct api_crypt in = {.version_text = vtext, .failure = API_ERR_ENCRYPT};
	enum lookup l = LOOKUP_DONE;
	if (!check_name(c) || read_fields(c, false, &body, names, f, 2) != 0)
		return API_DONE;
	if (api_key_read_version(c, body, &in.version, vtext, sizeof vtext) != 0)
		goto out;
	if ((l = key_lookup(c, &ref)) != LOOKUP_OK)
		goto out;
	in.data = f[0].data;
	in.len = f[0].len;
	in.ad = f[1].data;
	in.ad_len = f[1].len;
	if ((l = api_key_seal(c, &ref, &in, &ct, &used)) == LOOKUP_OK) {
		reply_base64(c->resp, "ciphertext", ct.data, ct.len,
		             key_set_versioned(ref.set) ? used : 0);
		l = LOOKUP_DONE;
	}
out:
	bytes_free(&ct);
	key_ref_release(&ref);
	free_fields(body, f, 2);
	return outcome_of(l);
}

enum api_outcome api_key_decrypt(struct api_call *c)
{
	static const char *const names[] = {"ciphertext", "context"};
	struct bytes f[2] = {{0}};
	struct json_value *body = NULL;
	struct key_ref ref = {0};
	struct bytes pt = {0};
	char vtext[16];
	uint32_t used = 0;
	struct api_crypt in = {.version_text = vtext, .failure = API_ERR_DECRYPT_INTERNAL};
	enum lookup l = LOOKUP_DONE;
	if (!check_name(c) || read_fields(c, false, &body, names, f, 2) != 0)
		return API_DONE;
	if (api_key_read_version(c, body, &in.version, vtext, sizeof vtext) != 0)
		goto out;
	if ((l = key_lookup(c, &ref)) != LOOKUP_OK)
		goto out;
	in.data = f[0].data;
	in.len = f[0].len;
	in.ad = f[1].data;
	in.ad_len = f[1].len;
	if ((l = api_key_open(c, &ref, &in, &pt, &used)) == LOOKUP_OK) {
		reply_base64(c->resp, "plaintext", pt.data, pt.len, 0);
		l = LOOKUP_DONE;
	}
out:
	bytes_free(&pt);
	key_ref_release(&ref);
	free_fields(body, f, 2);
	return outcome_of(l);
}

enum api_outcome api_key_hmac(struct api_call *c)
{
	static const char *const names[] = {"message"};
	struct bytes f[1] = {{0}};
	struct json_value *body = NULL;
	struct key_ref ref;
	uint8_t mac[32];
	if (!check_name(c) || read_fields(c, false, &body, names, f, 1) != 0)
		return API_DONE;
	enum lookup l = key_lookup(c, &ref);
	if (l != LOOKUP_OK) {
		free_fields(body, f, 1);
		return l == LOOKUP_WORKER ? API_NEEDS_WORKER : API_DONE;
	}
	int rc = ref.key->has_hmac ? key_hmac(ref.key, f[0].data, f[0].len, mac) : KEY_ERR_NO_HMAC;
	if (rc == KEY_ERR_NO_HMAC) {
		api_error(c->resp, API_ERR_NO_HMAC, NULL, NULL);
	} else if (rc != 0) {
		api_error(c->resp, API_ERR_HMAC_INTERNAL, NULL, NULL);
	} else {
		reply_base64(c->resp, "hmac", mac, sizeof mac, 0);
	}
	secure_zero(mac, sizeof mac);
	key_ref_release(&ref);
	free_fields(body, f, 1);
	return API_DONE;
}
