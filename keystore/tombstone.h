/*
 * tombstone.h — what a delete leaves in the keystore in place of the key, so that the name is
 * not bound to a new key while another replica may still have the old one in its cache
 * (issue 11). A tombstone is a small JSON record stored exactly where the key was:
 *
 *   {"algorithm":"kesc-tombstone","deleted_at":"2025-06-01T12:00:00Z",
 *    "deleted_by":"<identity>","until":"2025-06-01T12:10:00Z"}
 *
 * For kesc a name holding a tombstone is no key: reads answer "not found", lists skip it, and
 * a create is refused until `until` has passed (null or absent: never by itself). Whoever
 * stores a tombstone decides `until` (cache.h says how the server does).
 *
 * KES, reading the same keystore, refuses it cleanly: the record is valid JSON, so KES takes
 * it for a legacy key, and its algorithm is unknown ("crypto: secret key type
 * 'kesc-tombstone' is not supported"; KES before 2023: "key: invalid algorithm") and it has no
 * key bytes. key_record_decode refuses it for the same reason (no "bytes"), so no path can
 * take a tombstone for a key.
 *
 * Members a reader does not know are ignored, so a later format still reads as deleted. A
 * record that names the tombstone algorithm but whose times cannot be read is a tombstone
 * that never expires: when unsure, the name stays reserved.
 *
 * A scheduled deletion (deletion protection, issue 14) is the same tombstone carrying the key
 * record it replaced and the end of its restore window:
 *
 *   {…,"until":"2025-06-08T12:10:00Z","restore_until":"2025-06-08T12:00:00Z","key":"<record>"}
 *
 * It reads as deleted everywhere (the key stops serving at once); a restore puts "key" back in
 * its place until restore_until, a purge (or the server once the window is over) replaces it by
 * a tombstone without "key". until covers the window, so the name stays reserved meanwhile.
 * Code that predates this ignores both members and sees a deleted key: fail closed.
 */
#ifndef KESC_KEYSTORE_TOMBSTONE_H
#define KESC_KEYSTORE_TOMBSTONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"
#include "keystore/key.h"

#define TOMBSTONE_ALGORITHM "kesc-tombstone"
/* until of a tombstone that does not expire by itself. */
#define TOMBSTONE_FOREVER INT64_MAX
/* Larger records are never tombstones (they are not parsed as such): a plain one is ~250 bytes,
 * one that carries a key at most the largest record a store takes. */
#define TOMBSTONE_MAX_LEN (1024 * 1024)

struct tombstone {
	int64_t deleted_at;                      /* Unix seconds, UTC; 0 = unknown */
	int64_t until;                           /* Unix seconds, UTC, or TOMBSTONE_FOREVER */
	char deleted_by[KEY_CREATED_BY_MAX + 1]; /* identity, may be "" */
	int64_t restore_until; /* Unix seconds: a scheduled deletion carrying its key; 0: none */
};

/* The record for t (compact JSON, members in the order above). A time past year 9999 (and a
 * deletion time before 1970) is written as null, an until before 1970 as 1970. 0, KEY_ERR_INVALID
 * (deleted_by too long or not printable) or KEY_ERR_NOMEM. */
int tombstone_encode(const struct tombstone *t, struct bytes *out);
/* A scheduled deletion: t (with restore_until > 0) and the key record it keeps, which must be
 * UTF-8 text (every key record is: base64 or JSON) so that it comes back byte for byte;
 * KEY_ERR_INVALID otherwise. */
int tombstone_encode_with_key(const struct tombstone *t, const struct bytes *key,
                              struct bytes *out);
/* Whether record is a tombstone; if so t is filled (restore_until 0 unless it carries a key
 * and says until when it may be restored). Never allocates more than a bounded JSON tree of
 * one record. */
bool tombstone_parse(const uint8_t *record, size_t len, struct tombstone *t);
/* The key record a scheduled deletion carries, into key (zeroed when freed): 0, or -1 when
 * record is no tombstone, carries no key, or no memory. */
int tombstone_key(const uint8_t *record, size_t len, struct bytes *key);
/* Whether a create may replace it at Unix time now. */
bool tombstone_expired(const struct tombstone *t, int64_t now);
/* Whether it carries a key that may still be restored at Unix time now. */
bool tombstone_restorable(const struct tombstone *t, int64_t now);
/* "deleted at 2025-…Z by <identity>, reserved until 2025-…Z" (or "… until purged"), for logs
 * and error details. */
void tombstone_describe(const struct tombstone *t, char *out, size_t n);
/* Unix seconds as RFC 3339 ("2025-06-01T12:00:00Z") into out (at least 32 bytes). */
void tombstone_format_time(int64_t sec, char *out, size_t n);

#endif
