/* test_key_random.c — key_random (keystore/key.c): random bytes for keys, data keys and
 * ciphertext nonces from a per-thread CTR-DRBG that the kernel seeds, so that a request does
 * not cost a system call, yet every thread, every reseed period and every forked child draws
 * fresh kernel entropy. getrandom is replaced here to count (and fail) the kernel calls. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "keystore/key.h"
#include "keystore/key_internal.h"

static atomic_int getrandom_calls;
static atomic_bool getrandom_fails;

/* Overrides libc's for the code linked into this test (key.c calls it by name). */
ssize_t getrandom(void *buf, size_t len, unsigned flags)
{
	atomic_fetch_add(&getrandom_calls, 1);
	if (atomic_load(&getrandom_fails)) {
		errno = ENOSYS;
		return -1;
	}
	return syscall(SYS_getrandom, buf, len, flags);
}

static void test_no_system_call_per_call(void)
{
	uint8_t b[32];
	CHECK_EQ_INT(key_random(b, sizeof b), 0); /* seeds this thread */
	int before = atomic_load(&getrandom_calls);
	for (int i = 0; i < 1000; i++)
		CHECK_EQ_INT(key_random(b, sizeof b), 0);
	/* At most one reseed falls into these 1000 calls. */
	CHECK(atomic_load(&getrandom_calls) - before <= 1);
}

static void test_reseeds_periodically(void)
{
	static uint8_t b[600]; /* more than is drawn ahead: one generator call each */
	int before = atomic_load(&getrandom_calls);
	for (int i = 0; i < 3 * KEY_RANDOM_RESEED_INTERVAL; i++)
		CHECK_EQ_INT(key_random(b, sizeof b), 0);
	CHECK(atomic_load(&getrandom_calls) - before >= 2);
}

static void test_outputs_differ(void)
{
	uint8_t a[32], b[32];
	CHECK_EQ_INT(key_random(a, sizeof a), 0);
	CHECK_EQ_INT(key_random(b, sizeof b), 0);
	CHECK(memcmp(a, b, sizeof a) != 0);
	/* Longer than one CTR-DRBG request (1024 bytes): filled in pieces, all of it. */
	static uint8_t big[5000], zero[64];
	CHECK_EQ_INT(key_random(big, sizeof big), 0);
	CHECK(memcmp(big + sizeof big - sizeof zero, zero, sizeof zero) != 0);
	CHECK(memcmp(big + 1024, zero, sizeof zero) != 0);
}

struct thread_draw {
	uint8_t out[32];
	int rc, calls;
};

static void *draw(void *arg)
{
	struct thread_draw *d = arg;
	int before = atomic_load(&getrandom_calls);
	d->rc = key_random(d->out, sizeof d->out);
	d->calls = atomic_load(&getrandom_calls) - before;
	return NULL;
}

/* Each thread seeds its own generator from the kernel (no lock shared by the threads). */
static void test_each_thread_seeds_its_own(void)
{
	struct thread_draw a = {{0}}, b = {{0}};
	pthread_t t;
	CHECK_EQ_INT(pthread_create(&t, NULL, draw, &a), 0);
	pthread_join(t, NULL);
	CHECK_EQ_INT(pthread_create(&t, NULL, draw, &b), 0);
	pthread_join(t, NULL);
	CHECK_EQ_INT(a.rc, 0);
	CHECK_EQ_INT(b.rc, 0);
	CHECK(a.calls >= 1);
	CHECK(b.calls >= 1);
	CHECK(memcmp(a.out, b.out, sizeof a.out) != 0);
}

/* Fail closed: a thread that cannot seed gets an error, never unseeded bytes. */
static void test_seed_failure_is_an_error(void)
{
	struct thread_draw d = {{0}};
	pthread_t t;
	atomic_store(&getrandom_fails, true);
	CHECK_EQ_INT(pthread_create(&t, NULL, draw, &d), 0);
	pthread_join(t, NULL);
	atomic_store(&getrandom_fails, false);
	CHECK_EQ_INT(d.rc, KEY_ERR_CRYPTO);
}

/* A forked child must not repeat its parent's stream (a copied DRBG state would). */
static void test_fork_child_draws_fresh(void)
{
	uint8_t warm[8], parent[32], child[32];
	CHECK_EQ_INT(key_random(warm, sizeof warm), 0);
	int fds[2];
	CHECK_EQ_INT(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		uint8_t out[32];
		int rc = key_random(out, sizeof out);
		ssize_t n = write(fds[1], out, sizeof out);
		_exit(rc == 0 && n == (ssize_t)sizeof out ? 0 : 1);
	}
	CHECK(pid > 0);
	CHECK_EQ_INT(key_random(parent, sizeof parent), 0);
	CHECK_EQ_INT(read(fds[0], child, sizeof child), (long long)sizeof child);
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(memcmp(parent, child, sizeof parent) != 0);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	RUN(test_no_system_call_per_call);
	RUN(test_reseeds_periodically);
	RUN(test_outputs_differ);
	RUN(test_each_thread_seeds_its_own);
	RUN(test_seed_failure_is_an_error);
	RUN(test_fork_child_draws_fresh);
	return CHECK_DONE();
}
