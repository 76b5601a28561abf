/*
 * loop.h — one event loop thread per core: an epoll set, a timer heap, and a mailbox through
 * which other threads hand it finished worker jobs, accepted connections, configuration
 * updates (SIGHUP) and the drain order (SIGTERM).
 *
 * All loops accept from one listening socket (no SO_REUSEPORT: a second process must not be
 * able to bind the address and take a share of the connections). Each loop watches it with
 * EPOLLEXCLUSIVE, so a new connection wakes one idle loop, not all; the kernel prefers the
 * same idle loop, so a loop that holds more connections than the least busy one hands a new
 * connection over to that loop (through its mailbox), which keeps long-lived keep-alive
 * connections spread evenly across the cores.
 *
 * Everything a loop owns (its connections, their TLS contexts and buffers) is touched only by
 * the loop's own thread. The functions marked "any thread" are the only way in from outside.
 */
#ifndef KESC_SERVER_LOOP_H
#define KESC_SERVER_LOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server_state;
struct tls_server;
struct worker_job;
struct worker_pool;

/* Settings and counters shared by all loops; owned by server.c, outlives the loops. The
 * settings are atomics because a SIGHUP changes them while the loops run. */
struct loop_env {
	struct worker_pool *workers;
	struct worker_pool *handshakes; /* the public-key steps of full TLS handshakes (conn.c) */
	int listen_fd;                  /* shared by all loops; owned (and closed) by server.c */
	struct loop **loops;            /* for handing connections over */
	_Atomic unsigned nloops;        /* loops[0 .. nloops-1] are running */
	atomic_uint connections;
	_Atomic unsigned max_connections;
	_Atomic int64_t handshake_timeout_ms;
	_Atomic int64_t header_timeout_ms;
	_Atomic int64_t idle_timeout_ms;
	_Atomic int64_t drain_ms; /* server.shutdown_timeout */
	atomic_uint abandoned;    /* requests closed unanswered when drain_ms passed */
};

/* Something registered with epoll: its callback gets the event mask. */
struct loop_handler {
	void (*on_event)(struct loop_handler *h, uint32_t events);
};

/* A deadline in the loop's heap; fire runs on the loop thread when it passes. */
struct loop_timer {
	int64_t deadline_ms;
	size_t heap_index; /* SIZE_MAX when not armed */
	void (*fire)(struct loop_timer *t);
};

/* Intrusive list link for the loop's connection lists. */
struct loop_link {
	struct loop_link *prev, *next;
};

struct loop;

/* Creates a loop that accepts from env->listen_fd (non-blocking, listening; the loop watches
 * it but never closes it). It takes one reference to st and tls of its own. NULL on failure. */
struct loop *loop_new(struct loop_env *env, unsigned index, struct server_state *st,
                      struct tls_server *tls);
int loop_start(struct loop *l);
/* Any thread: use st/tls for new requests/handshakes (the loop takes its own references). */
void loop_update(struct loop *l, struct server_state *st, struct tls_server *tls);
/* Any thread: stop accepting (the loop stops watching env->listen_fd), finish in-flight
 * requests, close idle connections. When env->drain_ms has passed, every connection left is
 * closed and its request abandoned (logged, counted in env->abandoned); the thread ends once
 * no connection is left — which a request stuck in a worker delays until its job returns
 * (server.c stops waiting for that). */
void loop_drain(struct loop *l);
/* Any thread: whether the loop thread has ended (after loop_drain). */
bool loop_finished(struct loop *l);
void loop_join(struct loop *l);
void loop_free(struct loop *l);
/* Any thread: hand a finished job back; job->done runs on the loop thread. */
void loop_post_job(struct loop *l, struct worker_job *job);
/* Any thread: run the stream pumps of this loop soon (a log line is waiting). */
void loop_wake(struct loop *l);

/* Loop thread only. */
int64_t loop_now_ms(const struct loop *l);
unsigned loop_index(const struct loop *l);
struct loop_env *loop_env(struct loop *l);
struct server_state *loop_state(struct loop *l);
struct tls_server *loop_tls(struct loop *l);
bool loop_draining(const struct loop *l);
int loop_watch(struct loop *l, int fd, struct loop_handler *h);
void loop_unwatch(struct loop *l, int fd);
void loop_timer_set(struct loop *l, struct loop_timer *t, int64_t deadline_ms);
void loop_timer_clear(struct loop *l, struct loop_timer *t);
/* All connections (for draining and balancing) and those streaming a log (for loop_wake). */
void loop_conn_add(struct loop *l, struct loop_link *link);
void loop_conn_remove(struct loop *l, struct loop_link *link);
/* Connections that may be closed to make room at the connection limit (conn_shed), oldest
 * first: added on accept, removed once the handshake proved a known identity or on close. */
void loop_shed_add(struct loop *l, struct loop_link *link);
void loop_shed_remove(struct loop *l, struct loop_link *link);
void loop_stream_add(struct loop *l, struct loop_link *link);
void loop_stream_remove(struct loop *l, struct loop_link *link);
/* Frees a connection after the current batch of events (it may still have one queued). */
void loop_defer_free(struct loop *l, struct loop_link *link);
/* Fairness: a connection that just answered a request goes to the back of the ready list and
 * is continued (conn_resume) after the loop has looked at every other connection's events,
 * so one fast client cannot keep the loop to itself. Removing an unlisted link is a no-op. */
void loop_ready_add(struct loop *l, struct loop_link *link);
void loop_ready_remove(struct loop *l, struct loop_link *link);

#endif
