/*
 * backoff.c — jittered exponential backoff (backoff.h).
 */
#include "keystore/backoff.h"

#include <time.h>
#include <unistd.h>

/* Per thread, seeded from the clock, the thread and the process. */
static uint32_t jitter_next(void)
{
	static _Thread_local uint32_t state;
	if (state == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		state =
		    (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)&state ^ (uint32_t)getpid() << 16;
		state |= 1;
	}
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}

int64_t backoff_delay(int64_t base, int64_t max, int attempt)
{
	int64_t d = base << (attempt < 10 ? (attempt > 0 ? attempt : 0) : 10);
	if (d > max)
		d = max;
	if (d < 2)
		return d;
	return d / 2 + (int64_t)(jitter_next() % (uint32_t)(d / 2 + 1));
}
