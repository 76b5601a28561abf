/*
 * bulk_body.h — the request body of POST /v1/key/bulk/decrypt/<name>, read as KES read it
 * until its 2023-10-24 release: Go's json.Decoder decoding the first JSON value into
 *   []struct{ Ciphertext []byte `json:"ciphertext"`; Context []byte `json:"context"` }
 * so
 *   - the body is an array of objects, or null (no items); any other value is an error;
 *   - an element that is null is an item without ciphertext (it then fails to decrypt);
 *   - member names match case-insensitively (json_key_matches), the last match wins, and a
 *     member that is null leaves the field empty; unknown members are ignored, whatever
 *     they hold;
 *   - ciphertext and context are standard padded base64 strings;
 *   - whatever follows the first complete value is ignored unread.
 * Every element is checked, also past the item limit, so that a malformed body is refused
 * as malformed whatever its length (Go decodes the whole array before KES counted it).
 *
 * The reader streams: memory is bounded by the body (only the first BULK_MAX_ITEMS items are
 * kept), never by how many values it holds, so a megabyte of "[{},{},…]" costs no tree.
 */
#ifndef KESC_SERVER_BULK_BODY_H
#define KESC_SERVER_BULK_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"

/* KES: "For now, we limit the number of decryption requests in a single API call to 1000." */
#define BULK_MAX_ITEMS 1000

struct bulk_item {
	struct bytes ciphertext; /* empty when absent or null */
	struct bytes context;
};

struct bulk_body {
	struct bulk_item *items; /* the first min(total, BULK_MAX_ITEMS) items, in order */
	size_t count;
	size_t total; /* elements of the array */
};

enum bulk_parse_result {
	BULK_OK = 0,
	BULK_INVALID = -1,   /* not the JSON described above: 400 invalid request body */
	BULK_TOO_MANY = -2,  /* a valid body with more than BULK_MAX_ITEMS items (total set) */
	BULK_NO_MEMORY = -3, /* 500 */
};

/* Reads body (len bytes, not NUL-terminated) into out. On BULK_OK out holds total == count
 * items; on any other result out holds nothing to use but total (free it all the same). */
int bulk_body_parse(const uint8_t *body, size_t len, struct bulk_body *out);
/* Zeroes and frees the items; out is left empty. */
void bulk_body_free(struct bulk_body *b);

#endif
