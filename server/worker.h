/*
 * worker.h — a pool of threads that work for the event loops: blocking work (keystore I/O), and
 * separately the public-key steps of TLS handshakes (CPU work that would stall a loop).
 *
 * A loop submits a job; a worker runs job->run and hands the job back to its loop
 * (loop_post_job), which calls job->done on the loop thread. The queue is bounded: a full
 * queue refuses new jobs instead of growing, so overload shows up as 503s, not as memory.
 */
#ifndef KESC_SERVER_WORKER_H
#define KESC_SERVER_WORKER_H

#include <stddef.h>

struct loop;

/*
 * The jobs of one tenant (server/state.h). With group limits set, at most `running` jobs of a
 * group run at once and at most `queued` wait: a tenant whose keystore hangs holds some of the
 * workers for the length of its timeouts and its own share of the queue, never all of them,
 * so the other tenants' keystore work goes on. The caller keeps a group alive while its jobs
 * exist; the pool's lock guards the counts.
 */
struct worker_group {
	unsigned running;
	size_t queued;
};

struct worker_job {
	void (*run)(struct worker_job *job);  /* on a worker thread */
	void (*done)(struct worker_job *job); /* on the owning loop's thread */
	struct loop *loop;
	struct worker_group *group; /* NULL: no group limits */
	struct worker_job *next;    /* queue link, owned by whoever holds the job */
};

struct worker_pool;

/* Starts threads workers with at most queue_max waiting jobs, named name0, name1, … (for top
 * -H; name at most 11 characters). NULL on failure. */
struct worker_pool *worker_pool_new(unsigned threads, size_t queue_max, const char *name);
/* 0, or -1 when the queue (or the job's group's share of it) is full or the pool is stopping
 * (the job was not taken). */
int worker_pool_submit(struct worker_pool *p, struct worker_job *job);
/* Limits per group (0: none, the default): jobs of one group running at once, and waiting. */
void worker_pool_set_group_limits(struct worker_pool *p, unsigned running, size_t queued);
/* Runs the jobs still queued, then joins the threads and frees the pool. */
void worker_pool_free(struct worker_pool *p);

#endif
