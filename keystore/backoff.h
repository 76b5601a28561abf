/*
 * backoff.h — how long to wait before trying again something that failed or collided: doubling
 * from a base, capped, with jitter, so that several servers (and threads) that failed together
 * do not retry in lockstep. Used by the Vault client's retries (vault_http.c) and the cache's
 * read-modify-write retries (cache.c). Not a source of secrets.
 */
#ifndef KESC_KEYSTORE_BACKOFF_H
#define KESC_KEYSTORE_BACKOFF_H

#include <stdint.h>

/* The wait before retry number attempt (0 for the first), in the caller's unit: d = base
 * doubled attempt times, at most max, then a random value in [d/2, d]. */
int64_t backoff_delay(int64_t base, int64_t max, int attempt);

#endif
