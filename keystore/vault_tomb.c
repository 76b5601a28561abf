/*
 * vault_tomb.c — deletes that leave a tombstone in Vault, and creates over one (keystore.h,
 * tombstone.h). The tombstone is stored as plain text where the key was (never transit
 * wrapped: it holds no secret, and an operator can read it with `vault kv get`).
 *
 * K/V v2 (Vault keeps versions and enforces check-and-set):
 *   delete  read the latest version n; if it holds a key, write the tombstone as version n+1
 *           with cas=n, so the delete lands on exactly the key it read, then destroy versions
 *           1..n: their data is gone for good, and KES, which reads version 1, finds it
 *           destroyed and answers "not found". A delete of a name that already holds a
 *           tombstone destroys the older versions again (finishing a delete whose destroy
 *           failed) and answers "not found".
 *   create  over an expired tombstone at version t: write the key with cas=t. Of two servers
 *           doing that at once Vault lets one win and the other gets "exists". Never a
 *           metadata delete followed by a write: a second server doing the same would delete
 *           the first one's new key. KES reads version 1 (destroyed) and answers "not found"
 *           for a key created again this way: it refuses it cleanly, it never serves the old.
 *   Beyond KES's policy this needs "update" on <engine>/data/… (always with check-and-set,
 *   so it can never overwrite a key) and on <engine>/destroy/….
 *
 * K/V v1 (no versions, no conditional write; the token must not have "update", vault_caps.c):
 *   delete  DELETE the key, then create the tombstone. In between the name is free: a create
 *           by another server in that window of one round trip binds it to a new key at once;
 *           the tombstone write then finds the name taken, which is logged loudly.
 *   create  over a tombstone is refused (KS_DELETED) also after it expired: replacing it
 *           needs a DELETE and then a write, and two servers doing that at once would delete
 *           each other's new key. An operator removes an expired tombstone by hand
 *           (`vault kv delete <engine>/<prefix>/<name>`).
 */
#include <stdio.h>
#include <string.h>

#include "keystore/secmem.h"
#include "keystore/tombstone.h"
#include "keystore/vault_internal.h"

/* How often a v2 delete starts over when the entry changes between its read and its write. */
#define TOMB_TRIES 3

static bool same_bytes(const struct bytes *a, const struct bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int vault_tomb_create_check(struct vault_store *v, const char *name, int64_t *cas,
                            struct ks_err *err)
{
	struct bytes cur = {0};
	struct tombstone t;
	int64_t version;
	int rc = vault_kv_read_entry(v, name, &cur, &version, err);

	*cas = 0;
	if (rc == KS_NOT_FOUND)
		return KS_OK; /* a v2 version deleted by other means: cas=0 finds the name taken */
	if (rc != KS_OK)
		return rc;
	if (!tombstone_parse(cur.data, cur.len, &t)) {
		bytes_free(&cur);
		ks_err_set(err, "vault: key '%s' already exists", name);
		return KS_EXISTS;
	}
	rc = keystore_check_taken(name, &cur, keystore_now(), err);
	bytes_free(&cur);
	if (rc == KS_OK && v->kv_version == 1) {
		char what[256];

		tombstone_describe(&t, what, sizeof(what));
		ks_err_set(
		    err,
		    "key '%s' was %s; it has expired, but on a K/V v1 mount kesc cannot "
		    "replace it safely: remove it by hand once no server can have the old key "
		    "cached (vault kv delete)",
		    name, what);
		return KS_DELETED;
	}
	if (rc == KS_OK)
		*cas = version;
	return rc;
}

/* After the tombstone took version `tomb`: the versions before it go for good. */
static int tomb_destroy_older(struct vault_store *v, const char *name, int64_t tomb,
                              struct ks_err *err)
{
	struct ks_err why = {{0}};
	int rc = vault_kv_destroy(v, name, tomb - 1, &why);

	if (rc != KS_OK)
		ks_err_set(
		    err,
		    "vault: key '%s' is deleted (its tombstone is written), but versions up to "
		    "%lld were not destroyed and Vault can still show them; deleting it again "
		    "finishes the job: %s",
		    name, (long long)tomb - 1, why.msg);
	return rc;
}

static int tomb_remove_v2(struct vault_store *v, const char *name, const struct bytes *tombstone,
                          struct ks_err *err)
{
	bool maybe_ours = false; /* a write of ours got no clear answer */

	for (int attempt = 0; attempt < TOMB_TRIES; attempt++) {
		struct bytes cur = {0};
		struct tombstone t;
		int64_t version;
		bool maybe_stored = false;
		int rc = vault_kv_read_entry(v, name, &cur, &version, err);

		if (rc == KS_NOT_FOUND || (rc != KS_OK && !(rc == KS_FAILED && version > 0)))
			return rc; /* absent, or not readable at all; a malformed entry is a key */
		if (rc == KS_OK && tombstone_parse(cur.data, cur.len, &t)) {
			/* Ours when a write of this very delete landed without our hearing it. */
			bool ours = maybe_ours && same_bytes(&cur, tombstone);

			bytes_free(&cur);
			rc = tomb_destroy_older(v, name, version, err);
			return rc == KS_OK && !ours ? KS_NOT_FOUND : rc;
		}
		bytes_free(&cur);
		rc = vault_kv_write_cas(v, name, tombstone, version, &maybe_stored, err);
		if (rc == KS_OK)
			return tomb_destroy_older(v, name, version + 1, err);
		if (rc != KS_EXISTS && !maybe_stored)
			return rc;
		maybe_ours |= maybe_stored;
		/* Changed since the read, or the answer was lost: look again. */
	}
	ks_err_set(err, "vault: key '%s' kept changing while it was being deleted", name);
	return KS_FAILED;
}

static int tomb_remove_v1(struct vault_store *v, const char *name, const struct bytes *tombstone,
                          struct ks_err *err)
{
	struct bytes cur = {0};
	struct tombstone t;
	bool maybe_stored = false;
	int rc = vault_kv_read(v, name, &cur, err);

	if (rc == KS_OK && tombstone_parse(cur.data, cur.len, &t))
		rc = KS_NOT_FOUND;
	bytes_free(&cur);
	/* KS_FAILED for a malformed entry still lets the entry be deleted. */
	if (rc == KS_NOT_FOUND || rc == KS_UNREACHABLE)
		return rc;
	if ((rc = vault_kv_delete(v, name, err)) != KS_OK)
		return rc;
	rc = vault_kv_write(v, name, tombstone, &maybe_stored, err);
	if (rc != KS_OK && maybe_stored) {
		struct ks_err ignored;

		if (vault_kv_read(v, name, &cur, &ignored) == KS_OK && same_bytes(&cur, tombstone))
			rc = KS_OK;
		bytes_free(&cur);
	}
	if (rc == KS_EXISTS) {
		ks_log(
		    "vault: key '%s' was deleted, but another server created the name again "
		    "before its tombstone was written (a K/V v1 mount has no conditional write): "
		    "servers that had the deleted key cached may serve it until their cache "
		    "expires, and data keys they issue then do not decrypt under the new key",
		    name);
		return KS_OK;
	}
	if (rc != KS_OK) {
		char why[sizeof(err->msg)];

		snprintf(why, sizeof(why), "%s", err->msg);
		ks_err_set(
		    err,
		    "vault: key '%s' was deleted, but its tombstone could not be written, so "
		    "the name is not reserved: %s",
		    name, why);
	}
	return rc;
}

int vault_tomb_remove(struct vault_store *v, const char *name, const struct bytes *tombstone,
                      struct ks_err *err)
{
	if (tombstone->len > KS_MAX_RECORD) {
		ks_err_set(err, "vault: tombstone for '%s' is too large", name);
		return KS_FAILED;
	}
	return v->kv_version == 2 ? tomb_remove_v2(v, name, tombstone, err)
	                          : tomb_remove_v1(v, name, tombstone, err);
}
