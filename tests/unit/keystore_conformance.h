/*
 * keystore_conformance.h — the semantics every key store must keep (keystore.h), as one suite
 * that any store's unit test runs against itself: round trips byte for byte, create never
 * overwrites (also under a race), not-found, sorted prefix lists, status, and tombstones: a
 * remove leaves one in a single step, a create is refused until it expires and then replaces
 * it exactly once (also under a race); a replace lands only on the record it expects, in one
 * step, and concurrent read-modify-writes lose nothing.
 *
 * Compiled into each test that uses it (tests/unit/meson.build, conformance_users).
 */
#ifndef KESC_TESTS_KEYSTORE_CONFORMANCE_H
#define KESC_TESTS_KEYSTORE_CONFORMANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "keystore/keystore.h"

struct keystore_conformance {
	const char *label; /* printed with each case, e.g. "fs" */
	/* Returns a new, empty store (NULL fails the case). Called once per case. */
	struct keystore *(*open_store)(void *arg);
	/* Optional: called after each case's store was closed (e.g. to remove its directory). */
	void (*after_close)(void *arg);
	void *arg;
	/* Whether remove of a missing name answers KS_NOT_FOUND. */
	bool remove_reports_not_found;
	/* Whether create replaces an expired tombstone (Vault K/V v1 refuses: KS_DELETED). */
	bool refuses_expired_tombstones;
	/* Whether a reader may find nothing while remove replaces a key by its tombstone (Vault
	 * K/V v1 deletes, then writes). */
	bool remove_leaves_gap;
	/* Whether replace is refused (Vault K/V v1 without allow_unsafe_kv_v1_update). */
	bool refuses_replace;
	/* Largest record the round-trip case writes; 0 = KS_MAX_RECORD. */
	size_t max_record;
};

/* Runs every case; returns the number of failed checks (0 = the store conforms). Failures are
 * printed to stderr as they happen. */
int keystore_conformance_run(const struct keystore_conformance *c);

#endif
