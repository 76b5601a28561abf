/* secmem.c — secret memory. See secmem.h. */
#include "keystore/secmem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

void secure_zero(void *p, size_t n)
{
	if (!p || n == 0)
		return;
	explicit_bzero(p, n);
}

int ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(x[i] ^ y[i]);
	/* 1 when diff == 0, computed without a branch on diff. */
	return (int)(1 & (((unsigned)diff - 1) >> 8));
}

int ct_streq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t n = la > lb ? la : lb;
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < n; i++) {
		unsigned char ca = i < la ? (unsigned char)a[i] : 0;
		unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
		diff |= (unsigned char)(ca ^ cb);
	}
	return (int)(1 & (((unsigned)diff - 1) >> 8));
}

/*
 * Slab of fixed 256-byte slots on locked pages for the common small secrets (a key record is
 * far below that); larger requests get their own locked mapping. Slots are reused through a
 * free list; pages are never returned, which bounds the work and is fine for a key cache.
 */
#define SLOT_SIZE  256
#define SLAB_PAGES 4

static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;
static void *slab_free_list;
static atomic_bool lock_refused;

static void *map_secret(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_DONTDUMP
	(void)madvise(p, len, MADV_DONTDUMP);
#endif
	if (mlock(p, len) != 0)
		atomic_store(&lock_refused, true);
	return p;
}

static size_t page_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (n + page - 1) / page * page;
}

void *secure_alloc(size_t n)
{
	if (n == 0)
		n = 1;
	if (n > SLOT_SIZE)
		return map_secret(page_round(n));
	pthread_mutex_lock(&slab_lock);
	if (!slab_free_list) {
		size_t len = page_round(1) * SLAB_PAGES;
		char *slab = map_secret(len);
		if (!slab) {
			pthread_mutex_unlock(&slab_lock);
			return NULL;
		}
		for (size_t off = 0; off + SLOT_SIZE <= len; off += SLOT_SIZE) {
			*(void **)(slab + off) = slab_free_list;
			slab_free_list = slab + off;
		}
	}
	void *p = slab_free_list;
	slab_free_list = *(void **)p;
	pthread_mutex_unlock(&slab_lock);
	memset(p, 0, SLOT_SIZE);
	return p;
}

void secure_free(void *p, size_t n)
{
	if (!p)
		return;
	if (n == 0)
		n = 1;
	if (n > SLOT_SIZE) {
		size_t len = page_round(n);
		secure_zero(p, len);
		/* Both only fail for a range that was never mapped, which would be a caller bug;
		 * the contents are already zeroed either way. */
		(void)munlock(p, len);
		(void)munmap(p, len);
		return;
	}
	secure_zero(p, SLOT_SIZE);
	pthread_mutex_lock(&slab_lock);
	*(void **)p = slab_free_list;
	slab_free_list = p;
	pthread_mutex_unlock(&slab_lock);
}

bool secmem_locking_works(void)
{
	return !atomic_load(&lock_refused);
}

void secmem_harden_process(char *msg, size_t msglen)
{
	bool dump_off = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
	struct rlimit none = {0, 0};
	bool core_off = setrlimit(RLIMIT_CORE, &none) == 0;
	/* Probe locking once now so the banner tells the truth before the first key arrives. */
	void *probe = secure_alloc(1);
	secure_free(probe, 1);
	snprintf(msg, msglen, "core dumps %s; key memory %s and excluded from core dumps",
	         dump_off && core_off ? "disabled" : "NOT disabled",
	         secmem_locking_works() ? "locked in RAM (mlock)"
	                                : "NOT locked (mlock refused: raise RLIMIT_MEMLOCK)");
}
