/*
 * api_key_internal.h — what the key handlers (api_key.c: KES's routes; api_key_lifecycle.c:
 * rotate, rewrap, retire, restore, purge; api_bulk.c: bulk decrypt) share. Not used outside
 * those.
 */
#ifndef KESC_SERVER_API_KEY_INTERNAL_H
#define KESC_SERVER_API_KEY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/cache.h"
#include "keystore/json.h"
#include "server/api_errors.h"
#include "server/router.h"

enum lookup { LOOKUP_OK, LOOKUP_DONE, LOOKUP_WORKER };

/* The key name in c->arg is valid, else the 400 is written. */
bool api_key_check_name(struct api_call *c);
/* Maps a store failure to its answer (KES's where KES has one); the detail goes to the error
 * log only. */
void api_key_store_failure(struct api_call *c, int rc, enum api_error_id generic, const char *op,
                           const struct ks_err *err);
/* The cached key named c->arg: on a loop thread only a hit (else LOOKUP_WORKER). */
enum lookup api_key_lookup(struct api_call *c, struct key_ref *ref);
/* ref named a version the cached key does not have: read the key again (on a worker; a loop
 * thread gets LOOKUP_WORKER). ref is released first, and filled again on LOOKUP_OK. */
enum lookup api_key_refresh(struct api_call *c, struct key_ref *ref);
/* The optional "version" member ("v<n>"; absent, null or "" = 0). -1 with the 400 written.
 * text (for error messages) gets what the client sent. */
int api_key_read_version(struct api_call *c, const struct json_value *body, uint32_t *version,
                         char *text, size_t textlen);

/* Parses the body (allow_empty: an empty body is no fields) and decodes the base64 members
 * names[0..n) into fields. -1 with 400 "invalid request body" written (nothing to free). */
int api_key_read_fields(struct api_call *c, bool allow_empty, struct json_value **body,
                        const char *const *names, struct bytes *fields, size_t n);
void api_key_free_fields(struct json_value *body, struct bytes *fields, size_t n);

/* One encryption or decryption under a key's versions. */
struct api_crypt {
	uint32_t version;         /* asked for; 0 = none */
	const char *version_text; /* as the client sent it */
	const uint8_t *data;      /* plaintext or ciphertext */
	size_t len;
	const uint8_t *ad;
	size_t ad_len;
	enum api_error_id failure; /* the answer to anything not the client's fault */
};
/* key_set_encrypt / key_set_decrypt with the answers for their errors written (LOOKUP_DONE),
 * reading the key again when the request or ciphertext names a newer version (possibly
 * LOOKUP_WORKER). open counts decrypts under old versions (key_stats.h). */
enum lookup api_key_seal(struct api_call *c, struct key_ref *ref, const struct api_crypt *in,
                         struct bytes *ct, uint32_t *used);
enum lookup api_key_open(struct api_call *c, struct key_ref *ref, const struct api_crypt *in,
                         struct bytes *pt, uint32_t *used);
/* "member":"v<version>" */
void api_key_write_version(struct json_writer *w, const char *member, uint32_t version);

#endif
