/* log_sink.c — a log destination's queue and writer thread (log_sink.h). */
#include "server/log_sink.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Entries written with one system call at most (a regular file takes them all at once). */
#define BATCH_ENTRIES    256
#define BATCH_FILE_BYTES (256 * 1024)
#define POLL_SLICE_MS    200
#define TICK_MS          1000
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   2000
#define NOTICE_MAX       256

struct retired_target {
	struct log_target target;
	struct retired_target *next;
};

struct log_sink {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the writer: work, a new target, stop */
	pthread_cond_t idle; /* flushers: a batch ended */
	pthread_t thread;
	struct log_sink_hooks hooks;
	size_t max_bytes;

	struct log_target target; /* fd -1: none */
	unsigned generation;      /* bumped by every new target */
	struct retired_target *retired;

	struct log_entry *head, *tail; /* QUEUED and WITHDRAWN entries, in order */
	size_t queued_bytes;
	/* The entry a stream took only in part; its rest goes first (WRITING). */
	struct log_entry *partial;
	size_t partial_off;
	bool in_flight;   /* the writer is writing a batch */
	uint64_t batches; /* batches finished, for flush */

	/* Written with the lock held, read without it on every audited request
	 * (log_sink_failing), so that the gate costs no lock. */
	atomic_bool failing;
	bool stalled, torn;
	int64_t retry_at_ms;
	int backoff_ms;
	uint64_t lost_while_failing;
	uint64_t dropped_unreported; /* for the drop notice */
	bool stop, stopped;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

struct log_entry *log_entry_new(const char *data, size_t len)
{
	struct log_entry *e = malloc(sizeof(*e) + len);
	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->len = len;
	memcpy(e->data, data, len);
	return e;
}

void log_entry_free(struct log_entry *e)
{
	free(e);
}

/* Drops one reference; frees at zero. Lock held (or the entry is private). */
static void unref(struct log_entry *e)
{
	if (--e->refs <= 0)
		free(e);
}

static void lost(struct log_sink *s, size_t n, enum log_loss why)
{
	if (n && s->hooks.lost)
		s->hooks.lost(n, why);
}

/* ---- the queue (lock held) ---- */

static void push_back(struct log_sink *s, struct log_entry *e)
{
	e->next = NULL;
	if (s->tail)
		s->tail->next = e;
	else
		s->head = e;
	s->tail = e;
	s->queued_bytes += e->len;
}

/* Puts a list of entries (in order) back at the front. */
static void push_front_list(struct log_sink *s, struct log_entry *first, struct log_entry *last)
{
	if (!first)
		return;
	last->next = s->head;
	s->head = first;
	if (!s->tail)
		s->tail = last;
	for (struct log_entry *e = first;; e = e->next) {
		s->queued_bytes += e->len;
		if (e == last)
			break;
	}
}

static struct log_entry *pop_front(struct log_sink *s)
{
	struct log_entry *e = s->head;
	if (!e)
		return NULL;
	s->head = e->next;
	if (!s->head)
		s->tail = NULL;
	e->next = NULL;
	if (e->state != LOG_ENTRY_WITHDRAWN)
		s->queued_bytes -= e->len;
	return e;
}

/* Whether a queued entry (not withdrawn) exists. */
static bool has_work(const struct log_sink *s)
{
	if (s->partial)
		return true;
	for (const struct log_entry *e = s->head; e; e = e->next)
		if (e->state == LOG_ENTRY_QUEUED)
			return true;
	return false;
}

/* WRITTEN or FAILED: tell the waiter, drop the sink's reference. */
static void complete(struct log_sink *s, struct log_entry *e, enum log_entry_state state)
{
	(void)s;
	e->state = state;
	if (e->done)
		e->done(e->arg);
	unref(e);
}

/* ---- public, any thread ---- */

static ssize_t write_iov(const struct log_target *t, struct iovec *iov, int n);

/* The caller writes e itself when nothing is ahead of it and the target never blocks (a pipe,
 * terminal or socket: standard output under systemd or a container runtime). That saves two
 * thread hand-offs per line. A regular file is always left to the writer thread: a write there
 * can wait for the disk. Lock held. */
static int write_inline_locked(struct log_sink *s, struct log_entry *e)
{
	if ((s->target.kind != LOG_TARGET_STREAM && s->target.kind != LOG_TARGET_SOCKET) ||
	    s->head || s->partial || s->in_flight || s->torn || s->stalled ||
	    atomic_load_explicit(&s->failing, memory_order_relaxed) ||
	    (s->dropped_unreported && s->hooks.drop_notice) || e->len > PIPE_BUF)
		return 0;
	struct iovec iov = {.iov_base = e->data, .iov_len = e->len};
	ssize_t n = write_iov(&s->target, &iov, 1);
	if (n == (ssize_t)e->len)
		return 1;
	if (n > 0) { /* a terminal or socket took part: the writer finishes the line */
		e->state = LOG_ENTRY_WRITING;
		e->refs = e->done ? 2 : 1;
		s->partial = e;
		s->partial_off = (size_t)n;
		pthread_cond_signal(&s->wake);
		return -1;
	}
	return 0; /* would block, or failed: queued, and the writer deals with it */
}

int log_sink_submit(struct log_sink *s, struct log_entry *e)
{
	pthread_mutex_lock(&s->lock);
	if (s->target.fd < 0 || s->stop || s->queued_bytes + e->len > s->max_bytes) {
		if (s->target.fd >= 0)
			s->dropped_unreported++;
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	int inline_result = write_inline_locked(s, e);
	if (inline_result == 0) {
		e->state = LOG_ENTRY_QUEUED;
		e->refs = e->done ? 2 : 1;
		push_back(s, e);
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
	if (inline_result == 1) {
		free(e);
		if (s->hooks.written)
			s->hooks.written(1);
		return 1;
	}
	return 0;
}

enum log_entry_state log_sink_finish(struct log_sink *s, struct log_entry *e)
{
	pthread_mutex_lock(&s->lock);
	enum log_entry_state state = e->state;
	unref(e);
	pthread_mutex_unlock(&s->lock);
	return state;
}

bool log_sink_abandon(struct log_sink *s, struct log_entry *e, bool timed_out)
{
	pthread_mutex_lock(&s->lock);
	if (e->state == LOG_ENTRY_WRITTEN || e->state == LOG_ENTRY_FAILED) {
		pthread_mutex_unlock(&s->lock);
		return true;
	}
	e->done = NULL;
	e->abandoned = true;
	if (e->state == LOG_ENTRY_QUEUED) {
		e->state = LOG_ENTRY_WITHDRAWN; /* the writer frees it when it reaches it */
		s->queued_bytes -= e->len;
	}
	unref(e); /* the waiter's */
	if (timed_out) {
		s->failing = true;
		s->lost_while_failing++;
	}
	pthread_mutex_unlock(&s->lock);
	if (timed_out)
		lost(s, 1, LOG_LOSS_TIMEOUT);
	return false;
}

bool log_sink_failing(struct log_sink *s)
{
	return atomic_load_explicit(&s->failing, memory_order_acquire);
}

bool log_sink_has_target(struct log_sink *s)
{
	pthread_mutex_lock(&s->lock);
	bool on = s->target.fd >= 0;
	pthread_mutex_unlock(&s->lock);
	return on;
}

void log_sink_set_target(struct log_sink *s, const struct log_target *t)
{
	struct retired_target *old = calloc(1, sizeof(*old));
	pthread_mutex_lock(&s->lock);
	if (old) {
		old->target = s->target;
		old->next = s->retired;
		s->retired = old;
	} else {
		log_target_close(&s->target); /* out of memory: the writer may see EBADF once */
	}
	if (t) {
		s->target = *t;
	} else {
		memset(&s->target, 0, sizeof(s->target));
		s->target.fd = -1;
	}
	s->generation++;
	s->failing = s->stalled = s->torn = false;
	s->backoff_ms = 0;
	s->retry_at_ms = 0;
	s->lost_while_failing = 0;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

void log_sink_flush(struct log_sink *s, int timeout_ms)
{
	struct timespec until;
	deadline_in(&until, timeout_ms);
	pthread_mutex_lock(&s->lock);
	/* Done when nothing writable is left, or the sink cannot make progress now. */
	while (s->target.fd >= 0 && !s->failing && !s->stalled && (has_work(s) || s->in_flight)) {
		if (pthread_cond_timedwait(&s->idle, &s->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- the writer ---- */

struct batch {
	struct log_entry *entries[BATCH_ENTRIES + 2];
	size_t first_off; /* bytes of entries[0] already written (a partial one) */
	size_t count, bytes;
	unsigned generation;
	struct log_target target;
};

enum write_outcome { WRITE_ALL, WRITE_AGAIN, WRITE_ERROR };

/* A newline to end a torn line, a drop notice: entries of their own, without waiter. */
static struct log_entry *make_internal(const char *data, size_t len, uint64_t notice_count)
{
	struct log_entry *e = log_entry_new(data, len);
	if (e) {
		e->refs = 1;
		e->internal = true;
		e->notice_count = notice_count;
	}
	return e;
}

static void add(struct batch *b, struct log_entry *e, size_t off)
{
	e->state = LOG_ENTRY_WRITING;
	b->entries[b->count++] = e;
	b->bytes += e->len - off;
}

/* Takes what to write next. Lock held. */
static void collect(struct log_sink *s, struct batch *b)
{
	memset(b, 0, sizeof(*b));
	b->generation = s->generation;
	b->target = s->target;
	if (s->partial) {
		b->first_off = s->partial_off;
		add(b, s->partial, s->partial_off);
		s->partial = NULL;
		return;
	}
	size_t limit = b->target.kind == LOG_TARGET_FILE ? BATCH_FILE_BYTES : PIPE_BUF;
	if (s->torn) {
		struct log_entry *nl = make_internal("\n", 1, 0);
		if (nl)
			add(b, nl, 0);
	}
	if (s->dropped_unreported && s->hooks.drop_notice) {
		char text[NOTICE_MAX];
		int n = s->hooks.drop_notice(s->dropped_unreported, text, sizeof(text));
		struct log_entry *notice =
		    n > 0 ? make_internal(text, (size_t)n, s->dropped_unreported) : NULL;
		if (notice)
			add(b, notice, 0);
	}
	while (s->head && b->count < BATCH_ENTRIES) {
		struct log_entry *e = s->head;
		if (e->state == LOG_ENTRY_WITHDRAWN) {
			pop_front(s);
			unref(e);
			continue;
		}
		if (b->count && b->bytes + e->len > limit)
			break;
		pop_front(s);
		add(b, e, 0);
	}
}

static ssize_t write_iov(const struct log_target *t, struct iovec *iov, int n)
{
	if (t->kind == LOG_TARGET_SOCKET) {
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		return sendmsg(t->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	return writev(t->fd, iov, n);
}

/* Writes the batch; *done is how many of its bytes were taken. A blocking target is written
 * to the end or the first error; a non-blocking one stops when it would block. */
static enum write_outcome write_batch(struct batch *b, size_t *done, int *err)
{
	struct iovec iov[BATCH_ENTRIES + 2];
	*done = 0;
	*err = 0;
	for (;;) {
		int n = 0;
		size_t skip = *done + b->first_off;
		for (size_t i = 0; i < b->count; i++) {
			struct log_entry *e = b->entries[i];
			if (skip >= e->len) {
				skip -= e->len;
				continue;
			}
			iov[n].iov_base = e->data + skip;
			iov[n].iov_len = e->len - skip;
			skip = 0;
			n++;
		}
		if (!n)
			return WRITE_ALL;
		ssize_t w = write_iov(&b->target, iov, n);
		if (w > 0) {
			*done += (size_t)w;
			if (*done >= b->bytes)
				return WRITE_ALL;
			if (b->target.kind == LOG_TARGET_STREAM ||
			    b->target.kind == LOG_TARGET_SOCKET)
				return WRITE_AGAIN; /* took part: the pipe is full */
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return WRITE_AGAIN;
		*err = w < 0 ? errno : EIO;
		return WRITE_ERROR;
	}
}

/* Of the first done bytes of the batch, how many end on an entry's end. */
static size_t whole_lines(const struct batch *b, size_t done)
{
	size_t off = 0;
	for (size_t i = 0; i < b->count; i++) {
		size_t need = b->entries[i]->len - (i == 0 ? b->first_off : 0);
		if (off + need > done)
			break;
		off += need;
	}
	return off;
}

/* Applies the outcome of a batch. Lock held. Returns how many lines were written and, in
 * *lost_now, how many were lost. */
static size_t settle(struct log_sink *s, struct batch *b, size_t done, enum write_outcome out,
                     size_t *lost_now)
{
	size_t written = 0, off = 0;
	struct log_entry *back_first = NULL, *back_last = NULL;
	bool same_target = b->generation == s->generation;
	*lost_now = 0;
	for (size_t i = 0; i < b->count; i++) {
		struct log_entry *e = b->entries[i];
		size_t start = i == 0 ? b->first_off : 0;
		size_t need = e->len - start;
		if (done >= off + need) {
			off += need;
			if (!e->internal)
				written++;
			else if (!e->notice_count)
				s->torn = false; /* the newline that ends a cut line */
			else
				s->dropped_unreported -= e->notice_count;
			complete(s, e, LOG_ENTRY_WRITTEN);
			continue;
		}
		if (done > off || start > 0) { /* the line was cut (or still is) */
			size_t taken = done - off;
			off = done;
			if (out != WRITE_ERROR && same_target) {
				s->partial = e;
				s->partial_off = start + taken;
				continue;
			}
			if (same_target)
				s->torn = true;
			*lost_now += !e->internal;
			complete(s, e, LOG_ENTRY_FAILED);
			continue;
		}
		if (e->internal) { /* made again for the next batch */
			unref(e);
			continue;
		}
		if (e->abandoned) { /* its waiter gave up: it must not appear later */
			complete(s, e, LOG_ENTRY_WITHDRAWN);
			continue;
		}
		if (out == WRITE_ERROR && !e->retry) {
			(*lost_now)++;
			complete(s, e, LOG_ENTRY_FAILED);
			continue;
		}
		if (out == WRITE_ERROR && !e->failed_once) {
			e->failed_once =
			    true; /* kept for a retry, but its write failed: count it once */
			(*lost_now)++;
		}
		e->state = LOG_ENTRY_QUEUED;
		e->next = NULL;
		if (back_last)
			back_last->next = e;
		else
			back_first = e;
		back_last = e;
	}
	push_front_list(s, back_first, back_last);
	return written;
}

static void close_retired(struct log_sink *s)
{
	while (s->retired) {
		struct retired_target *r = s->retired;
		s->retired = r->next;
		log_target_close(&r->target);
		free(r);
	}
}

/* Waits for POLLOUT on a stalled stream, a slice at a time. Lock not held. */
static void wait_writable(const struct log_target *t)
{
	struct pollfd p = {.fd = t->fd, .events = POLLOUT};
	(void)poll(&p, 1, POLL_SLICE_MS);
}

struct events {
	size_t written, lost;
	bool failed, recovered;
	int err;
	uint64_t lost_before;
	char target[256];
};

static void report(struct log_sink *s, const struct events *ev)
{
	if (ev->written && s->hooks.written)
		s->hooks.written(ev->written);
	lost(s, ev->lost, LOG_LOSS_ERROR);
	if (ev->failed && s->hooks.failed)
		s->hooks.failed(ev->target, ev->err);
	if (ev->recovered && s->hooks.recovered)
		s->hooks.recovered(ev->target, ev->lost_before);
}

/* One batch: collect (locked), write (unlocked), settle (locked). Lock held on entry and exit. */
static void write_one_batch(struct log_sink *s)
{
	struct batch b;
	struct events ev;
	memset(&ev, 0, sizeof(ev));
	collect(s, &b);
	if (!b.count)
		return;
	s->in_flight = true;
	pthread_mutex_unlock(&s->lock);

	size_t done = 0;
	int err = 0;
	/* A file we opened (O_APPEND) ends here; a write cut short by a full disk is cut back to
	 * the last whole line, so the file never holds half a record. */
	off_t end = b.target.kind == LOG_TARGET_FILE && b.target.owned
	                ? lseek(b.target.fd, 0, SEEK_END)
	                : -1;
	enum write_outcome out = write_batch(&b, &done, &err);
	if (out == WRITE_ERROR && done > 0 && end >= 0) {
		size_t whole = whole_lines(&b, done);
		if (ftruncate(b.target.fd, end + (off_t)whole) == 0)
			done = whole;
	}

	pthread_mutex_lock(&s->lock);
	ev.written = settle(s, &b, done, out, &ev.lost);
	bool same_target = b.generation == s->generation;
	snprintf(ev.target, sizeof(ev.target), "%s", b.target.name);
	if (out == WRITE_ERROR && same_target) {
		ev.failed = !s->failing;
		ev.err = err;
		s->failing = true;
		s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_FIRST_MS;
		if (s->backoff_ms > BACKOFF_MAX_MS)
			s->backoff_ms = BACKOFF_MAX_MS;
		s->retry_at_ms = mono_ms() + s->backoff_ms;
	}
	if (out == WRITE_ERROR)
		s->lost_while_failing += ev.lost;
	s->dropped_unreported += ev.lost;
	if (done > 0 && out != WRITE_ERROR && same_target) {
		ev.recovered = s->failing;
		ev.lost_before = s->lost_while_failing;
		s->failing = false;
		s->lost_while_failing = 0;
		s->backoff_ms = 0;
		s->retry_at_ms = 0;
	}
	s->stalled = out == WRITE_AGAIN && done == 0 && same_target;
	s->in_flight = false;
	s->batches++;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	report(s, &ev);
	/* Stalled: wait for room with the entries back in the queue, where their waiters can
	 * still withdraw them. */
	if (out == WRITE_AGAIN)
		wait_writable(&b.target);
	pthread_mutex_lock(&s->lock);
}

static void *sink_main(void *arg)
{
	struct log_sink *s = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all,
	                NULL); /* signals are the main thread's; EPIPE, not SIGPIPE */
	int64_t next_tick = mono_ms() + TICK_MS;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		close_retired(s);
		int64_t now = mono_ms();
		if (now >= next_tick) {
			next_tick = now + TICK_MS;
			if (s->hooks.tick) {
				pthread_mutex_unlock(&s->lock);
				s->hooks.tick();
				pthread_mutex_lock(&s->lock);
			}
			continue;
		}
		bool work = s->target.fd >= 0 && has_work(s);
		bool waiting_retry = s->failing && s->retry_at_ms && now < s->retry_at_ms;
		if (s->stop && (!work || s->failing || s->stalled))
			break;
		if (work && !waiting_retry) {
			write_one_batch(s);
			continue;
		}
		/* Nothing to do now: sleep until work arrives, the retry is due or the tick. */
		int64_t until = next_tick;
		if (work && waiting_retry && s->retry_at_ms < until)
			until = s->retry_at_ms;
		struct timespec ts;
		deadline_in(&ts, until - now > 0 ? until - now : 0);
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	s->stopped = true;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

struct log_sink *log_sink_start(size_t max_bytes, const struct log_sink_hooks *hooks)
{
	struct log_sink *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &attr);
	pthread_cond_init(&s->idle, &attr);
	pthread_condattr_destroy(&attr);
	s->max_bytes = max_bytes;
	if (hooks)
		s->hooks = *hooks;
	s->target.fd = -1;
	if (pthread_create(&s->thread, NULL, sink_main, s) != 0) {
		pthread_cond_destroy(&s->wake);
		pthread_cond_destroy(&s->idle);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	return s;
}

static void free_queue(struct log_sink *s)
{
	struct log_entry *e;
	while ((e = pop_front(s)))
		unref(e);
	if (s->partial) {
		unref(s->partial);
		s->partial = NULL;
	}
}

void log_sink_stop(struct log_sink *s, int timeout_ms)
{
	if (!s)
		return;
	log_sink_flush(s, timeout_ms);
	struct timespec until;
	deadline_in(&until, 1000);
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_signal(&s->wake);
	while (!s->stopped)
		if (pthread_cond_timedwait(&s->idle, &s->lock, &until) == ETIMEDOUT)
			break;
	bool stopped = s->stopped;
	pthread_mutex_unlock(&s->lock);
	if (!stopped) {
		/* Stuck in a blocking write (a regular file on a hung file system): leave it. */
		pthread_detach(s->thread);
		return;
	}
	pthread_join(s->thread, NULL);
	free_queue(s);
	close_retired(s);
	log_target_close(&s->target);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
