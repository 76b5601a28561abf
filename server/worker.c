/* worker.c — a fixed pool of threads over one bounded FIFO (worker.h). */
#include "server/worker.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "server/loop.h"

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct worker_job *head, *tail;
	size_t queued, queue_max;
	unsigned group_running_max; /* 0: no group limits */
	size_t group_queued_max;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
};

/* May job start now? Not while its group runs its share already. Lock held. */
static bool job_may_run(const struct worker_pool *p, const struct worker_job *job)
{
	return !job->group || !p->group_running_max || job->group->running < p->group_running_max;
}

/* The first queued job that may run (FIFO otherwise), unlinked; NULL if none. Lock held. */
static struct worker_job *take_job(struct worker_pool *p)
{
	struct worker_job *prev = NULL;
	for (struct worker_job *job = p->head; job; prev = job, job = job->next) {
		if (!job_may_run(p, job) && !p->stopping)
			continue;
		if (prev)
			prev->next = job->next;
		else
			p->head = job->next;
		if (p->tail == job)
			p->tail = prev;
		p->queued--;
		if (job->group) {
			job->group->queued--;
			job->group->running++;
		}
		job->next = NULL;
		return job;
	}
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker_pool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct worker_job *job;
		while (!(job = take_job(p)) && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (!job)
			break; /* stopping and nothing left */
		pthread_mutex_unlock(&p->lock);
		struct worker_group *g = job->group;
		job->run(job);
		pthread_mutex_lock(&p->lock);
		if (g) {
			g->running--;
			/* a job of this group may have waited for a free share */
			if (p->group_running_max && p->head)
				pthread_cond_broadcast(&p->wake);
		}
		pthread_mutex_unlock(&p->lock);
		loop_post_job(job->loop, job); /* the job, and its group, are the loop's again */
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct worker_pool *worker_pool_new(unsigned threads, size_t queue_max, const char *name)
{
	struct worker_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->threads = calloc(threads ? threads : 1, sizeof(*p->threads));
	if (!p->threads || pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p->threads);
		free(p);
		return NULL;
	}
	pthread_cond_init(&p->wake, NULL);
	p->queue_max = queue_max;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
			break;
		char tname[32]; /* the kernel keeps the first 15 bytes */
		snprintf(tname, sizeof(tname), "%.11s%u", name, i);
		(void)pthread_setname_np(p->threads[i], tname);
		p->nthreads++;
	}
	if (!p->nthreads) {
		worker_pool_free(p);
		return NULL;
	}
	return p;
}

int worker_pool_submit(struct worker_pool *p, struct worker_job *job)
{
	int rc = -1;
	pthread_mutex_lock(&p->lock);
	bool group_full =
	    job->group && p->group_queued_max && job->group->queued >= p->group_queued_max;
	if (!p->stopping && p->queued < p->queue_max && !group_full) {
		if (job->group)
			job->group->queued++;
		job->next = NULL;
		if (p->tail)
			p->tail->next = job;
		else
			p->head = job;
		p->tail = job;
		p->queued++;
		pthread_cond_signal(&p->wake);
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

void worker_pool_set_group_limits(struct worker_pool *p, unsigned running, size_t queued)
{
	pthread_mutex_lock(&p->lock);
	p->group_running_max = running;
	p->group_queued_max = queued;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

void worker_pool_free(struct worker_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}
