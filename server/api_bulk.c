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

/* Decrypts every item into plain[]; on the first failure writes the single decrypt's answer
 * and returns false (what was decrypted is zeroed by the caller). */
static bool bulk_open_all(struct api_call *c, const struct secret_key *k, const struct bulk_body *b,
                          struct bytes *plain)
{
	for (size_t i = 0; i < b->count; i++) {
		const struct bulk_item *it = &b->items[i];
		int rc = key_decrypt(k, it->ciphertext.data, it->ciphertext.len, it->context.data,
		                     it->context.len, &plain[i]);
		if (rc == 0)
			continue;
		api_error(c->resp,
		          rc == KEY_ERR_NOT_AUTHENTIC || rc == KEY_ERR_INVALID
		              ? API_ERR_DECRYPT
		              : API_ERR_DECRYPT_INTERNAL,
		          NULL, NULL);
		return false;
	}
	return true;
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

/* Decodes the body and answers; the key is there. */
static void bulk_decrypt_with(struct api_call *c, const struct secret_key *k)
{
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
		return;
	}
	struct bytes *plain = b.count ? calloc(b.count, sizeof(*plain)) : NULL;
	if (b.count && !plain)
		api_error(c->resp, API_ERR_INTERNAL, NULL, NULL);
	else if (bulk_open_all(c, k, &b, plain))
		bulk_reply(c->resp, plain, b.count);
	for (size_t i = 0; plain && i < b.count; i++)
		bytes_free(&plain[i]); /* zeroes the plaintexts */
	free(plain);
	bulk_body_free(&b);
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
	bulk_decrypt_with(c, ref.key);
	key_ref_release(&ref);
	return API_DONE;
}
