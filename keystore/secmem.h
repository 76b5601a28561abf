/*
 * secmem.h — handling of secret memory: zeroing, constant-time comparison, and a small
 * allocator for key material that keeps it out of swap (mlock) and out of core dumps
 * (MADV_DONTDUMP).
 *
 * mbedTLS 2.28 has no public constant-time compare and its zeroize is a volatile memset, so
 * these are our own.
 */
#ifndef KESC_KEYSTORE_SECMEM_H
#define KESC_KEYSTORE_SECMEM_H

#include <stdbool.h>
#include <stddef.h>

/* Zero n bytes in a way the compiler may not remove. n == 0 and p == NULL are fine. */
void secure_zero(void *p, size_t n);

/* 1 if the n bytes at a and b are equal, else 0, in time independent of the contents. */
int ct_equal(const void *a, const void *b, size_t n);
/* Constant-time equality of two NUL-terminated strings of possibly different length: the time
 * depends only on the lengths, never on where they differ. Used for identities. */
int ct_streq(const char *a, const char *b);

/*
 * Secret allocations: memory from pages that are mlock'ed (when the OS allows it) and marked
 * MADV_DONTDUMP. secure_free zeroes before releasing. Both are thread-safe. Returns NULL when
 * out of memory (never because mlock was refused: then the memory is just not locked).
 */
void *secure_alloc(size_t n);
void secure_free(void *p, size_t n);

/*
 * Process-wide hardening, called once at server start-up: disables core dumps of the process
 * (PR_SET_DUMPABLE 0, RLIMIT_CORE 0). Fills msg with a one-line human summary of what was
 * applied and whether secret pages can be locked, for the start-up banner.
 */
void secmem_harden_process(char *msg, size_t msglen);
/* Whether secret pages were successfully mlock'ed so far (false if any mlock was refused). */
bool secmem_locking_works(void);

#endif
