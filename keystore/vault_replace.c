/*
 * vault_replace.c — the store's replace (keystore.h) on Vault: a key's record changes in one
 * write that lands only on the record it was computed from. Rotations, retirements, scheduled
 * deletions, restores and purges go through here (key_lifecycle.h).
 *
 * K/V v2: read the latest version n and its record; if it is not the expected record, another
 * writer came first (KS_EXISTS: the caller reads again). Else write the new record with
 * cas=n: Vault accepts it only while n is still the latest version, so of two servers changing
 * a key at once one wins and the other starts over from the winner's record, and no version is
 * lost. Then destroy versions 1..n: KES reads version 1, and must find nothing there rather than
 * a key that is no longer the key (an older record, or a key now scheduled for deletion); every
 * older record is contained in the new one (a rotation keeps every version), so nothing is
 * lost. A destroy that fails leaves the change done; it is logged and done again by the next
 * change of the key, except after a scheduled deletion or a purge, whose older versions are the
 * key itself: then the replace fails and says how to finish (the change stays written). A
 * write whose answer is lost is read back: our exact value (a transit ciphertext or a record
 * with a fresh random key) means it landed.
 *
 * K/V v1 has no conditional write. A replace is an overwrite, which needs "update" on the key
 * path: kesc refuses a token with that grant unless keystore.vault.allow_unsafe_kv_v1_update is
 * set (vault_caps.c), and then replaces are serialised within this process only. Two servers
 * rotating the same key at the same moment can then lose one of the two new versions (the last
 * write wins) — with the data keys issued under it in the meantime. A crash is safe (a Vault
 * write is atomic). Without the opt-in a replace is refused with the reason.
 */
#include <stdio.h>
#include <string.h>

#include "keystore/secmem.h"
#include "keystore/tombstone.h"
#include "keystore/vault_internal.h"

#define REPLACE_V1_REFUSED                                                                       \
	"vault: key '%s' cannot be changed on a K/V v1 mount: kesc would have to overwrite it, " \
	"and K/V v1 has no conditional write, so two servers could overwrite each other's "      \
	"change; set keystore.vault.allow_unsafe_kv_v1_update to accept that (and change keys "  \
	"through one server only), or use a K/V v2 mount"

static bool same(const struct bytes *a, const struct bytes *b)
{
	return a->len == b->len && ct_equal(a->data, b->data, a->len);
}

/* The record stored at name now, with its K/V version (v2). */
static int read_record(struct vault_store *v, const char *name, struct bytes *record,
                       int64_t *version, struct ks_err *err)
{
	struct bytes value = {0};
	int rc = vault_kv_read_entry(v, name, &value, version, err);

	if (rc == KS_OK)
		rc = vault_store_unwrap(v, &value, record, err);
	bytes_free(&value);
	return rc;
}

/* After a write whose answer was lost or was a 5xx: is our exact value stored? */
static bool landed(struct vault_store *v, const char *name, const struct bytes *value)
{
	struct bytes got = {0};
	struct ks_err ignored;
	bool ours = vault_kv_read(v, name, &got, &ignored) == KS_OK && same(&got, value);

	bytes_free(&got);
	return ours;
}

/* After the change took version upto + 1. A rotation, retirement or restore leaves older
 * records of the same key behind when this fails: logged, and the next change destroys them.
 * A scheduled deletion or a purge (record is a tombstone) leaves the key itself readable in
 * Vault's history, where KES finds it: that change is not done, and the caller hears so, as
 * for a delete (vault_tomb.c). */
static int destroy_older(struct vault_store *v, const char *name, const struct bytes *record,
                         int64_t upto, struct ks_err *err)
{
	struct ks_err why = {{0}};
	struct tombstone t;
	struct bytes key = {0};
	bool scheduled;

	if (vault_kv_destroy(v, name, upto, &why) == KS_OK)
		return KS_OK;
	if (!tombstone_parse(record->data, record->len, &t)) {
		ks_log("vault: key '%s' was changed, but its versions up to %lld were not "
		       "destroyed, so KES (which reads version 1) may still find an older record "
		       "of it; the next change of the key destroys them: %s",
		       name, (long long)upto, why.msg);
		return KS_OK;
	}
	scheduled = tombstone_key(record->data, record->len, &key) == 0;
	bytes_free(&key);
	ks_err_set(err,
	           "vault: key '%s' is %s (its tombstone is written), but its versions up to %lld "
	           "were not destroyed, so Vault still holds the key and KES (which reads version "
	           "1) may serve it; destroy them with 'vault kv destroy -versions=1-%lld' on the "
	           "key's path with a token that may: %s",
	           name, scheduled ? "scheduled for deletion" : "purged", (long long)upto,
	           (long long)upto, why.msg);
	return KS_FAILED;
}

/* The first half of every replace: name still holds expected (else KS_EXISTS: another writer
 * came first), its Vault version in *version, and record wrapped for the store in *value. */
static int still_expected_wrap(struct vault_store *v, const char *name,
                               const struct bytes *expected, const struct bytes *record,
                               int64_t *version, struct bytes *value, struct ks_err *err)
{
	struct bytes cur = {0};
	int rc = read_record(v, name, &cur, version, err);

	if (rc == KS_OK && !same(&cur, expected)) {
		ks_err_set(err, "vault: key '%s' changed since it was read", name);
		rc = KS_EXISTS;
	}
	bytes_free(&cur);
	return rc == KS_OK ? vault_store_wrap(v, record, value, err) : rc;
}

static int replace_v2(struct vault_store *v, const char *name, const struct bytes *expected,
                      const struct bytes *record, struct ks_err *err)
{
	struct bytes value = {0};
	int64_t version = 0;
	bool maybe_stored = false;
	int rc = still_expected_wrap(v, name, expected, record, &version, &value, err);

	if (rc != KS_OK)
		goto out;
	rc = vault_kv_write_cas(v, name, &value, version, &maybe_stored, err);
	if (rc != KS_OK && rc != KS_EXISTS && maybe_stored && landed(v, name, &value)) {
		ks_log("vault: change of key '%s': %s; read back: it was stored", name, err->msg);
		rc = KS_OK;
	}
	if (rc == KS_OK)
		rc = destroy_older(v, name, record, version, err);
out:
	bytes_free(&value);
	return rc;
}

static int replace_v1_locked(struct vault_store *v, const char *name, const struct bytes *expected,
                             const struct bytes *record, struct ks_err *err)
{
	struct bytes value = {0};
	int64_t version;
	bool maybe_stored = false;
	int rc = still_expected_wrap(v, name, expected, record, &version, &value, err);

	if (rc != KS_OK)
		goto out;
	rc = vault_kv_write(v, name, &value, &maybe_stored, err);
	if (rc == KS_EXISTS) {
		/* Vault refused to overwrite: the token has no "update". */
		ks_err_set(
		    err,
		    "vault: key '%s' cannot be changed: the token may not update the K/V "
		    "path (allow_unsafe_kv_v1_update is set, but the policy does not grant it)",
		    name);
		rc = KS_FAILED;
	} else if (rc != KS_OK && maybe_stored && landed(v, name, &value)) {
		rc = KS_OK;
	}
out:
	bytes_free(&value);
	return rc;
}

int vault_replace(void *self, const char *name, const struct bytes *expected,
                  const struct bytes *record, struct ks_err *err)
{
	struct vault_store *v = self;
	char path[VAULT_PATH_MAX];
	int rc;

	if (record->len > KS_MAX_RECORD) {
		ks_err_set(err, "vault: record for '%s' is too large", name);
		return KS_FAILED;
	}
	if (v->kv_version == 2)
		return replace_v2(v, name, expected, record, err);
	if (!v->allow_v1_update) {
		ks_err_set(err, REPLACE_V1_REFUSED, name);
		return KS_FAILED;
	}
	if ((rc = vault_kv_path(v, name, path, sizeof(path), err)) != KS_OK)
		return rc;
	pthread_mutex_t *m = vault_create_lock(v, path);
	pthread_mutex_lock(m);
	rc = replace_v1_locked(v, name, expected, record, err);
	pthread_mutex_unlock(m);
	return rc;
}
