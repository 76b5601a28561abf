/*
 * api_bulk.c — POST /v1/key/bulk/decrypt/<name>, which KES served until its 2023-10-24
 * release and MinIO releases of that time still call (when DescribeSelf shows a policy that
 * allows /v1/key/bulk/decrypt/…): a JSON array of {"ciphertext","context"} in, a JSON array
 * of {"plaintext"} out, in the same order.
 *
 * KES's contract, kept exactly: the name is checked, the key looked up, then the body decoded
 * (bulk_body.h; more than BULK_MAX_ITEMS items is 400 "too many ciphertexts"), and the items
 * are decrypted in order; the first that fails fails the whole request with the single
 * decrypt's error, and no plaintext is sent. One audit record covers the request and says how
 * many items it held (api_response.audit_items).
 *
 * Small bodies are answered on the loop thread like a single decrypt; a large one (up to a
 * mebibyte of JSON and a thousand AEAD opens) goes to a worker, so that it never holds up the
 * other connections of its loop.
 */
#include <stdlib.h>
#include <string.h>

#include "keystore/cache.h"
#include "keystore/key.h"
#include "server/api_errors.h"
#include "server/api_key_internal.h"
#include "server/api_util.h"
#include "server/bulk_body.h"
#include "server/log.h"
#include "server/router.h"
#include "server/state.h"

/* Bodies up to this size are decrypted on the loop thread (about 16 items of MinIO's). */
#define BULK_LOOP_BODY_MAX 2048

/* The key, from the cache; false with the answer written (or *worker set). */
static bool bulk_key(struct api_call *c, struct key_ref *ref, bool *worker)
{
	struct ks_err err = {{0}};
	unsigned flags = c->may_block ? 0 : KS_CACHE_NONBLOCK;
	int rc = ks_cache_get(server_state_cache(c->st), c->arg, flags, ref, &err);
	*worker = rc == KS_WOULD_BLOCK;
	if (rc == KS_OK || rc == KS_WOULD_BLOCK)
		return rc == KS_OK;
	if (rc == KS_NOT_FOUND) {
		api_error(c->resp, API_ERR_KEY_NOT_FOUND, NULL, NULL);
	} else {
		log_error("read key '%s': %s: %s", c->arg, ks_result_name(rc), err.msg);
		api_error(c->resp, API_ERR_READ_KEY, NULL, NULL);
	}
	return false;
}

/* Decrypts every item into plain[] under the key's versions, as a single decrypt without a
 * version does (api_key_open). On the first failure its answer is written (LOOKUP_DONE), or
 * the request must go to a worker (LOOKUP_WORKER: a ciphertext names a version newer than the
 * cached key's, to read again); what was decrypted is zeroed by the caller. */
static enum lookup bulk_open_all(struct api_call *c, struct key_ref *ref, const struct bulk_body *b,
                                 struct bytes *plain)
{
	for (size_t i = 0; i < b->count; i++) {
		const struct bulk_item *it = &b->items[i];
		struct api_crypt in = {.version = 0,
		                       .version_text = "",
		                       .data = it->ciphertext.data,
		                       .len = it->ciphertext.len,
		                       .ad = it->context.data,
		                       .ad_len = it->context.len,
		                       .failure = API_ERR_DECRYPT_INTERNAL};
		uint32_t used = 0;
		enum lookup l = api_key_open(c, ref, &in, &plain[i], &used);
		if (l != LOOKUP_OK)
			return l;
	}
	return LOOKUP_OK;
}

static void bulk_reply(struct api_response *resp, const struct bytes *plain, size_t n)
{
	struct json_writer w;
	api_reply_json_begin(resp, &w);
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		json_object_begin(&w);
		json_key(&w, "plaintext");
		json_write_base64(&w, plain[i].data, plain[i].len);
		json_object_end(&w);
	}
	json_array_end(&w);
	api_reply_json_end(resp);
}

/* Decodes the body and answers; the key is there. LOOKUP_WORKER: nothing was answered, the
 * request is to be served again on a worker. */
static enum lookup bulk_decrypt_with(struct api_call *c, struct key_ref *ref)
{
	enum lookup l = LOOKUP_DONE;
	struct bulk_body b = {0};
	int rc = c->req->body_too_large ? BULK_INVALID
	                                : bulk_body_parse(c->req->body, c->req->body_len, &b);
	if (rc == BULK_OK || rc == BULK_TOO_MANY) {
		c->resp->audit_items = b.total;
		c->resp->audit_has_items = true;
	}
	if (rc != BULK_OK) {
		bulk_body_free(&b);
		api_error(c->resp,
		          rc == BULK_TOO_MANY  ? API_ERR_BULK_COUNT
		          : rc == BULK_INVALID ? API_ERR_BODY
		                               : API_ERR_INTERNAL,
		          NULL, NULL);
		return LOOKUP_DONE;
	}
	struct bytes *plain = b.count ? calloc(b.count, sizeof(*plain)) : NULL;
	if (b.count && !plain)
		api_error(c->resp, API_ERR_INTERNAL, NULL, NULL);
	else if ((l = bulk_open_all(c, ref, &b, plain)) == LOOKUP_OK)
		bulk_reply(c->resp, plain, b.count);
	for (size_t i = 0; plain && i < b.count; i++)
		bytes_free(&plain[i]); /* zeroes the plaintexts */
	free(plain);
	bulk_body_free(&b);
	return l == LOOKUP_WORKER ? LOOKUP_WORKER : LOOKUP_DONE;
}

enum api_outcome api_key_bulk_decrypt(struct api_call *c)
{
	if (!api_valid_name(c->arg)) {
		api_error(c->resp, API_ERR_KEY_NAME, c->arg, NULL);
		return API_DONE;
	}
	if (!c->may_block && c->req->body_len > BULK_LOOP_BODY_MAX)
		return API_NEEDS_WORKER;
	struct key_ref ref;
	bool worker = false;
	if (!bulk_key(c, &ref, &worker))
		return worker ? API_NEEDS_WORKER : API_DONE;
	enum lookup l = bulk_decrypt_with(c, &ref);
	key_ref_release(&ref);
	return l == LOOKUP_WORKER ? API_NEEDS_WORKER : API_DONE;
}
