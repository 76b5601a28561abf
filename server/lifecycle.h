/*
 * lifecycle.h — what a server does by itself for key_lifecycle: (config_lifecycle.c): a
 * thread that, every check_interval, goes over every name in the keystore and rotates the keys
 * whose current version is older than rotate_after, and purges the scheduled deletions whose
 * restore window is over. Each step is one read-modify-write that decides again on the record
 * it replaces (key_lifecycle.h), so any number of replicas may run the pass at once: a key is
 * rotated once per period, never twice, and a purge happens once. Each step is logged and has
 * an audit record (identity "kesc:key_lifecycle", no IP); while the audit log refuses records
 * (log.audit_failure: refuse) the pass changes nothing.
 */
#ifndef KESC_SERVER_LIFECYCLE_H
#define KESC_SERVER_LIFECYCLE_H

#include "keystore/cache.h"
#include "server/config.h"

/* The identity in the audit records and created_by of the versions the pass makes. */
#define LIFECYCLE_IDENTITY "kesc:key_lifecycle"

struct lifecycle;

/* One keystore the pass tends: the top-level one (tenant NULL) or a tenant's, whose name goes
 * into its audit records and error lines. */
struct lifecycle_target {
	struct ks_cache *cache;
	const char *tenant;
};

/* Starts the pass for cfg's settings over the count targets (copied; their caches, names and
 * cfg must outlive it). One thread for all of them, so that 1,000 tenants cost no more threads
 * than one. NULL when there is nothing to do (no rotate_after, no delete_window), or the thread
 * cannot start (logged). */
struct lifecycle *lifecycle_start(const struct lifecycle_target *targets, size_t count,
                                  const struct config *cfg);
/* Stops the thread: at once between names, after the current one otherwise. NULL is fine. */
void lifecycle_stop(struct lifecycle *l);
/* One pass now, on the caller's thread (tests): the numbers of keys rotated and purged. */
void lifecycle_pass(struct ks_cache *cache, const struct config *cfg, int *rotated, int *purged);

#endif
