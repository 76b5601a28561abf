/* loop.c — per-core event loops: accept, epoll dispatch, timer heap, mailbox (loop.h). */
#include "server/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/conn.h"
#include "server/log.h"
#include "server/log_limit.h"
#include "server/metrics.h"
#include "server/state.h"
#include "server/tls.h"
#include "server/worker.h"

#define LOOP_EVENTS           256
#define LOOP_ACCEPTS_PER_WAKE 64
/* A loop hands a new connection to the least busy loop when it holds more than this many
 * connections above it: a small slack keeps short-lived connections on the loop that woke
 * (no cross-thread hop) while bursts of long-lived ones end up spread evenly. */
#define LOOP_BALANCE_SLACK 1
/* Out of file descriptors: the loop stops watching the listening socket for this long, doubling
 * up to the maximum while it lasts, instead of retrying accept in a tight loop. */
#define LOOP_ACCEPT_PAUSE_MIN_MS 100
#define LOOP_ACCEPT_PAUSE_MAX_MS 1000

/* An accepted connection on its way to another loop's mailbox; with evict, it is admitted
 * only if that loop can make room for it (conn_shed): the connection limit is reached. */
struct handoff {
	struct handoff *next;
	bool evict;
	int fd;
	socklen_t addrlen;
	struct sockaddr_storage addr;
};

struct loop {
	struct loop_env *env;
	unsigned index;
	int epfd;
	bool listening; /* env->listen_fd is in the epoll set */
	int event_fd;
	int spare_fd; /* kept open so accept can shed a connection when out of descriptors */
	struct loop_timer accept_timer; /* ends a pause in accepting (out of descriptors) */
	int64_t accept_pause_ms;        /* the next pause; 0 while descriptors are fine */
	pthread_t thread;
	bool started;
	atomic_bool finished;
	/* Connections this loop holds, and those handed to it not yet taken; read by other loops
	 * to balance (counting the ones in flight keeps a burst from tipping to one side). */
	atomic_uint nconns;
	atomic_uint nhandoffs;
	atomic_uint nshed; /* on the shed list */
	int64_t now_ms;
	struct loop_handler listen_handler;
	struct loop_handler event_handler;

	struct server_state *state;
	struct tls_server *tls;

	struct loop_timer **heap;
	size_t heap_len, heap_cap;

	struct loop_link conns;      /* sentinel */
	struct loop_link shed;       /* sentinel; newest first */
	struct loop_link streams;    /* sentinel */
	struct loop_link ready;      /* sentinel; connections that yielded, oldest first */
	struct loop_link *graveyard; /* singly linked through ->next */
	bool draining;
	int64_t drain_deadline_ms;

	/* Mailbox, guarded by lock. wake_pending: event_fd was written and the loop has not
	 * emptied the mailbox since, so a new item needs no second write. */
	pthread_mutex_t lock;
	bool wake_pending;
	struct worker_job *done_head, *done_tail;
	struct handoff *handoff_head, *handoff_tail;
	struct server_state *new_state;
	struct tls_server *new_tls;
	bool drain_requested;
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_now_ms(const struct loop *l)
{
	return l->now_ms;
}

unsigned loop_index(const struct loop *l)
{
	return l->index;
}

struct loop_env *loop_env(struct loop *l)
{
	return l->env;
}

struct server_state *loop_state(struct loop *l)
{
	return l->state;
}

struct tls_server *loop_tls(struct loop *l)
{
	return l->tls;
}

bool loop_draining(const struct loop *l)
{
	return l->draining;
}

int loop_watch(struct loop *l, int fd, struct loop_handler *h)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
	                         .data.ptr = h};
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void loop_unwatch(struct loop *l, int fd)
{
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* ---- timer heap (min-heap on deadline) ---- */

static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_index = a;
	l->heap[b]->heap_index = b;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (l->heap[parent]->deadline_ms <= l->heap[i]->deadline_ms)
			break;
		heap_swap(l, i, parent);
		i = parent;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t left = 2 * i + 1, right = left + 1, min = i;
		if (left < l->heap_len && l->heap[left]->deadline_ms < l->heap[min]->deadline_ms)
			min = left;
		if (right < l->heap_len && l->heap[right]->deadline_ms < l->heap[min]->deadline_ms)
			min = right;
		if (min == i)
			return;
		heap_swap(l, i, min);
		i = min;
	}
}

void loop_timer_clear(struct loop *l, struct loop_timer *t)
{
	size_t i = t->heap_index;
	if (i == SIZE_MAX || i >= l->heap_len || l->heap[i] != t)
		return;
	t->heap_index = SIZE_MAX;
	l->heap_len--;
	if (i == l->heap_len)
		return;
	l->heap[i] = l->heap[l->heap_len];
	l->heap[i]->heap_index = i;
	heap_up(l, i);
	heap_down(l, l->heap[i]->heap_index);
}

void loop_timer_set(struct loop *l, struct loop_timer *t, int64_t deadline_ms)
{
	loop_timer_clear(l, t);
	if (l->heap_len == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 256;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
		if (!h) {
			/* Without a slot the deadline cannot be kept: fire at once instead. */
			t->deadline_ms = l->now_ms;
			t->fire(t);
			return;
		}
		l->heap = h;
		l->heap_cap = cap;
	}
	t->deadline_ms = deadline_ms;
	t->heap_index = l->heap_len;
	l->heap[l->heap_len++] = t;
	heap_up(l, t->heap_index);
}

static void fire_timers(struct loop *l)
{
	while (l->heap_len && l->heap[0]->deadline_ms <= l->now_ms) {
		struct loop_timer *t = l->heap[0];
		loop_timer_clear(l, t);
		t->fire(t);
	}
}

/* ---- lists ---- */

static void list_init(struct loop_link *head)
{
	head->prev = head->next = head;
}

static void list_add(struct loop_link *head, struct loop_link *link)
{
	link->next = head->next;
	link->prev = head;
	head->next->prev = link;
	head->next = link;
}

static void list_remove(struct loop_link *link)
{
	if (!link->next)
		return;
	link->prev->next = link->next;
	link->next->prev = link->prev;
	link->prev = link->next = NULL;
}

void loop_conn_add(struct loop *l, struct loop_link *link)
{
	list_add(&l->conns, link);
	atomic_fetch_add_explicit(&l->nconns, 1, memory_order_relaxed);
}

void loop_conn_remove(struct loop *l, struct loop_link *link)
{
	if (!link->next)
		return;
	list_remove(link);
	atomic_fetch_sub_explicit(&l->nconns, 1, memory_order_relaxed);
}

void loop_shed_add(struct loop *l, struct loop_link *link)
{
	list_add(&l->shed, link);
	atomic_fetch_add_explicit(&l->nshed, 1, memory_order_relaxed);
}

void loop_shed_remove(struct loop *l, struct loop_link *link)
{
	if (!link->next)
		return;
	list_remove(link);
	atomic_fetch_sub_explicit(&l->nshed, 1, memory_order_relaxed);
}

void loop_stream_add(struct loop *l, struct loop_link *link)
{
	list_add(&l->streams, link);
}

void loop_stream_remove(struct loop *l, struct loop_link *link)
{
	(void)l;
	list_remove(link);
}

void loop_ready_add(struct loop *l, struct loop_link *link)
{
	if (!link->next)
		list_add(l->ready.prev, link); /* at the tail: round robin */
}

void loop_ready_remove(struct loop *l, struct loop_link *link)
{
	(void)l;
	list_remove(link);
}

/* Continues the connections that yielded before this round; those that yield again wait for
 * the next round, after the next look at epoll. */
static void run_ready(struct loop *l)
{
	struct loop_link round;
	if (l->ready.next == &l->ready)
		return;
	round.next = l->ready.next;
	round.prev = l->ready.prev;
	round.next->prev = &round;
	round.prev->next = &round;
	list_init(&l->ready);
	while (round.next != &round) {
		struct loop_link *link = round.next;
		list_remove(link);
		conn_resume(link);
	}
}

void loop_defer_free(struct loop *l, struct loop_link *link)
{
	link->prev = NULL;
	link->next = l->graveyard;
	l->graveyard = link;
}

static void bury(struct loop *l)
{
	while (l->graveyard) {
		struct loop_link *link = l->graveyard;
		l->graveyard = link->next;
		conn_free(link);
	}
}

/* ---- accepting ---- */

static unsigned conns_of(struct loop *l)
{
	return atomic_load_explicit(&l->nconns, memory_order_relaxed) +
	       atomic_load_explicit(&l->nhandoffs, memory_order_relaxed);
}

/* The loop that should take a new connection: this one unless another holds fewer by more
 * than the slack. */
static struct loop *pick_loop(struct loop *l)
{
	struct loop_env *env = l->env;
	struct loop *best = l;
	unsigned best_n = conns_of(l);
	unsigned nloops = atomic_load(&env->nloops);
	for (unsigned i = 0; i < nloops; i++) {
		struct loop *o = env->loops[i];
		unsigned n = conns_of(o);
		if (o != l && n + LOOP_BALANCE_SLACK < best_n && !atomic_load(&o->finished)) {
			best = o;
			best_n = n;
		}
	}
	return best;
}

static void wake_fd(struct loop *l);

/* Whether the caller, having put something in l's mailbox, must wake the loop. Lock held. */
static bool mailbox_arm_locked(struct loop *l)
{
	bool wake = !l->wake_pending;
	l->wake_pending = true;
	return wake;
}

/* Queues fd for loop o; false when out of memory (the caller keeps the connection). */
static bool hand_over(struct loop *o, int fd, const struct sockaddr_storage *addr, socklen_t len,
                      bool evict)
{
	struct handoff *h = malloc(sizeof(*h));
	if (!h)
		return false;
	h->next = NULL;
	h->evict = evict;
	h->fd = fd;
	h->addr = *addr;
	h->addrlen = len;
	atomic_fetch_add_explicit(&o->nhandoffs, 1, memory_order_relaxed);
	pthread_mutex_lock(&o->lock);
	if (o->handoff_tail)
		o->handoff_tail->next = h;
	else
		o->handoff_head = h;
	o->handoff_tail = h;
	bool wake = mailbox_arm_locked(o);
	pthread_mutex_unlock(&o->lock);
	if (wake)
		wake_fd(o);
	return true;
}

/* A connection counted in env->connections that will not be served. */
static void refuse(struct loop *l, int fd)
{
	close(fd);
	atomic_fetch_sub(&l->env->connections, 1);
}

/* Closes the oldest connection of this loop that conn_shed lets go. */
static bool make_room(struct loop *l)
{
	for (struct loop_link *c = l->shed.prev, *prev; c != &l->shed; c = prev) {
		prev = c->prev;
		if (conn_shed(c))
			return true;
	}
	return false;
}

/* At the limit with nothing to shed: every connection has proven a known identity (or is
 * busy), and those are kept rather than traded for a newcomer. */
static void refuse_at_limit(struct loop *l, int fd, const struct sockaddr_storage *addr)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	char ip[64];
	conn_format_ip((const struct sockaddr *)addr, ip, sizeof(ip));
	log_limited(&site, LOG_LEVEL_WARN,
	            "connection limit (server.max_connections %u) reached: refused a connection "
	            "from %s; every connection is authenticated or busy",
	            l->env->max_connections, ip[0] ? ip : "an unknown address");
	metrics_count_conn_refused(METRICS_REFUSED_MAX_CONNECTIONS);
	refuse(l, fd);
}

/* At the limit: this loop, or another one, closes a connection that has not proven it
 * belongs (conn_shed) to admit the new one. A loop that has none asks one that has. */
static void admit_at_limit(struct loop *l, int fd, struct sockaddr_storage *addr, socklen_t len)
{
	if (atomic_load_explicit(&l->nshed, memory_order_relaxed) && make_room(l)) {
		conn_accept(l, fd, (struct sockaddr *)addr, len);
		return;
	}
	unsigned nloops = atomic_load(&l->env->nloops);
	for (unsigned i = 0; i < nloops; i++) {
		struct loop *o = l->env->loops[i];
		if (o != l && atomic_load_explicit(&o->nshed, memory_order_relaxed) &&
		    !atomic_load(&o->finished) && hand_over(o, fd, addr, len, true))
			return;
	}
	refuse_at_limit(l, fd, addr);
}

static void admit(struct loop *l, int fd, struct sockaddr_storage *addr, socklen_t len)
{
	unsigned now = atomic_fetch_add(&l->env->connections, 1) + 1;
	if (now > l->env->max_connections) {
		admit_at_limit(l, fd, addr, len);
		return;
	}
	struct loop *target = pick_loop(l);
	if (target != l && hand_over(target, fd, addr, len, false))
		return;
	conn_accept(l, fd, (struct sockaddr *)addr, len);
}

/* ---- out of file descriptors ---- */

static bool watch_listener(struct loop *l)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE,
	                         .data.ptr = &l->listen_handler};
	l->listening = epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->env->listen_fd, &ev) == 0;
	return l->listening;
}

static void unwatch_listener(struct loop *l)
{
	if (l->listening)
		loop_unwatch(l, l->env->listen_fd);
	l->listening = false;
}

/* The reserve descriptor: the slot a connection is accepted into only to be closed. Another
 * thread may take the slot between close and reopen, so it is re-acquired after every pause
 * until that works. */
static bool reserve_acquire(struct loop *l)
{
	if (l->spare_fd < 0)
		l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return l->spare_fd >= 0;
}

/* Closes the first queued connection through the reserve's slot, so that one client learns at
 * once instead of waiting in the kernel's queue. */
static void shed_queued(struct loop *l)
{
	if (l->spare_fd < 0)
		return;
	close(l->spare_fd);
	l->spare_fd = -1;
	int fd = accept4(l->env->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		metrics_count_conn_refused(METRICS_REFUSED_DESCRIPTORS);
	}
	(void)reserve_acquire(l);
}

static void out_of_descriptors(struct loop *l, int err)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	struct rlimit rl;
	char limit[64] = "";
	if (err == EMFILE && getrlimit(RLIMIT_NOFILE, &rl) == 0)
		snprintf(limit, sizeof(limit), " (limit %llu)", (unsigned long long)rl.rlim_cur);
	log_limited(&site, LOG_LEVEL_WARN,
	            "accept: %s%s; new connections wait or are refused until descriptors are "
	            "free (raise the limit, e.g. LimitNOFILE=, or lower server.max_connections)",
	            strerror(err), limit);
	shed_queued(l);
	/* Level-triggered, the listener would wake this loop again at once: stop watching it
	 * for a while instead, and look again when the pause is over. */
	unwatch_listener(l);
	if (!l->accept_pause_ms)
		l->accept_pause_ms = LOOP_ACCEPT_PAUSE_MIN_MS;
	loop_timer_set(l, &l->accept_timer, l->now_ms + l->accept_pause_ms);
	l->accept_pause_ms *= 2;
	if (l->accept_pause_ms > LOOP_ACCEPT_PAUSE_MAX_MS)
		l->accept_pause_ms = LOOP_ACCEPT_PAUSE_MAX_MS;
}

static void accept_pause_over(struct loop_timer *t)
{
	struct loop *l = container_of(t, struct loop, accept_timer);
	if (l->draining || l->listening)
		return;
	if (!reserve_acquire(l) || !watch_listener(l))
		loop_timer_set(l, &l->accept_timer, l->now_ms + l->accept_pause_ms);
}

static void on_listen(struct loop_handler *h, uint32_t events)
{
	struct loop *l = container_of(h, struct loop, listen_handler);
	(void)events;
	for (int i = 0; i < LOOP_ACCEPTS_PER_WAKE && l->listening; i++) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		int fd = accept4(l->env->listen_fd, (struct sockaddr *)&addr, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				out_of_descriptors(l, errno);
				return;
			}
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN or a transient error: wait for the next event */
		}
		l->accept_pause_ms = 0;
		admit(l, fd, &addr, len);
	}
}

/* Connections other loops handed to this one. */
static void take_handoffs(struct loop *l, struct handoff *h)
{
	while (h) {
		struct handoff *next = h->next;
		atomic_fetch_sub_explicit(&l->nhandoffs, 1, memory_order_relaxed);
		if (l->draining)
			refuse(l, h->fd);
		else if (h->evict && !make_room(l))
			refuse_at_limit(l, h->fd, &h->addr);
		else
			conn_accept(l, h->fd, (struct sockaddr *)&h->addr, h->addrlen);
		free(h);
		h = next;
	}
}

/* ---- mailbox ---- */

static void wake_fd(struct loop *l)
{
	uint64_t one = 1;
	ssize_t n = write(l->event_fd, &one, sizeof(one));
	(void)n; /* EAGAIN means the counter is already non-zero: the loop will wake */
}

void loop_post_job(struct loop *l, struct worker_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&l->lock);
	if (l->done_tail)
		l->done_tail->next = job;
	else
		l->done_head = job;
	l->done_tail = job;
	bool wake = mailbox_arm_locked(l);
	pthread_mutex_unlock(&l->lock);
	if (wake)
		wake_fd(l);
}

void loop_wake(struct loop *l)
{
	wake_fd(l);
}

void loop_update(struct loop *l, struct server_state *st, struct tls_server *tls)
{
	server_state_retain(st);
	tls_server_retain(tls);
	pthread_mutex_lock(&l->lock);
	struct server_state *old_st = l->new_state;
	struct tls_server *old_tls = l->new_tls;
	l->new_state = st;
	l->new_tls = tls;
	pthread_mutex_unlock(&l->lock);
	if (old_st)
		server_state_release(old_st);
	if (old_tls)
		tls_server_release(old_tls);
	wake_fd(l);
}

void loop_drain(struct loop *l)
{
	pthread_mutex_lock(&l->lock);
	l->drain_requested = true;
	pthread_mutex_unlock(&l->lock);
	wake_fd(l);
}

static void start_draining(struct loop *l)
{
	l->draining = true;
	l->drain_deadline_ms = l->now_ms + l->env->drain_ms;
	unwatch_listener(l);
	loop_timer_clear(l, &l->accept_timer);
	for (struct loop_link *c = l->conns.next, *next; c != &l->conns; c = next) {
		next = c->next;
		const char *method, *route;
		(void)conn_drain(c, false, &method, &route);
	}
}

static void on_mailbox(struct loop_handler *h, uint32_t events)
{
	struct loop *l = container_of(h, struct loop, event_handler);
	(void)events;
	uint64_t count;
	/* One read resets the counter; a write after it makes event_fd readable again. */
	(void)!read(l->event_fd, &count, sizeof(count));
	pthread_mutex_lock(&l->lock);
	l->wake_pending = false;
	struct worker_job *jobs = l->done_head;
	l->done_head = l->done_tail = NULL;
	struct handoff *handoffs = l->handoff_head;
	l->handoff_head = l->handoff_tail = NULL;
	struct server_state *st = l->new_state;
	struct tls_server *tls = l->new_tls;
	l->new_state = NULL;
	l->new_tls = NULL;
	bool drain = l->drain_requested && !l->draining;
	pthread_mutex_unlock(&l->lock);

	if (st) {
		server_state_release(l->state);
		l->state = st;
	}
	if (tls) {
		tls_server_release(l->tls);
		l->tls = tls;
	}
	while (jobs) {
		struct worker_job *next = jobs->next;
		jobs->done(jobs);
		jobs = next;
	}
	take_handoffs(l, handoffs);
	for (struct loop_link *s = l->streams.next, *next; s != &l->streams; s = next) {
		next = s->next;
		conn_stream_pump(s);
	}
	if (drain)
		start_draining(l);
}

/* ---- the loop ---- */

/* How many requests of each route a forced close abandoned, for one log line. */
struct abandoned_route {
	const char *method, *route;
	unsigned count;
};

static void tally(struct abandoned_route *t, size_t cap, size_t *n, unsigned *other,
                  const char *method, const char *route)
{
	for (size_t i = 0; i < *n; i++) {
		if (!strcmp(t[i].method, method) && !strcmp(t[i].route, route)) {
			t[i].count++;
			return;
		}
	}
	if (*n == cap) {
		(*other)++;
		return;
	}
	t[(*n)++] = (struct abandoned_route){method, route, 1};
}

/* server.shutdown_timeout passed: close everything, and say what was left unanswered (the
 * connections closed now are freed after this iteration, so the names are still valid). */
static void force_close_all(struct loop *l)
{
	struct abandoned_route t[16];
	size_t n = 0;
	unsigned total = 0, other = 0;
	for (struct loop_link *c = l->conns.next, *next; c != &l->conns; c = next) {
		next = c->next;
		const char *method, *route;
		if (conn_drain(c, true, &method, &route)) {
			total++;
			tally(t, sizeof(t) / sizeof(t[0]), &n, &other, method, route);
		}
	}
	if (!total)
		return;
	char list[1024];
	size_t used = 0;
	list[0] = '\0';
	for (size_t i = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%u %s %s",
		                         i ? ", " : "", t[i].count, t[i].method, t[i].route);
	if (other && used < sizeof(list))
		snprintf(list + used, sizeof(list) - used, ", %u on other routes", other);
	log_warn("shutdown: server.shutdown_timeout (%.1f s) passed, closing %u request%s still "
	         "in progress on loop %u: %s",
	         (double)l->env->drain_ms / 1000.0, total, total == 1 ? "" : "s", l->index, list);
	atomic_fetch_add(&l->env->abandoned, total);
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct epoll_event events[LOOP_EVENTS];
	bool forced = false;
	l->now_ms = monotonic_ms();
	/* A connection waiting for a worker stays listed until its job is back, so the loop
	 * never exits with a job that would post to it. */
	while (!l->draining || l->conns.next != &l->conns) {
		int timeout = -1;
		if (l->ready.next != &l->ready)
			timeout = 0; /* connections are waiting for their turn */
		else if (l->heap_len) {
			int64_t wait = l->heap[0]->deadline_ms - l->now_ms;
			timeout = wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
		}
		if (l->draining && !forced) {
			int64_t wait = l->drain_deadline_ms - l->now_ms;
			if (timeout < 0 || wait < timeout)
				timeout = wait < 0 ? 0 : (int)wait;
		}
		int n = epoll_wait(l->epfd, events, LOOP_EVENTS, timeout);
		l->now_ms = monotonic_ms();
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct loop_handler *h = events[i].data.ptr;
			h->on_event(h, events[i].events);
		}
		run_ready(l);
		fire_timers(l);
		if (l->draining && !forced && l->now_ms >= l->drain_deadline_ms) {
			forced = true;
			force_close_all(l);
		}
		bury(l);
	}
	bury(l);
	atomic_store(&l->finished, true);
	return NULL;
}

bool loop_finished(struct loop *l)
{
	return atomic_load(&l->finished);
}

struct loop *loop_new(struct loop_env *env, unsigned index, struct server_state *st,
                      struct tls_server *tls)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->env = env;
	l->index = index;
	l->listen_handler.on_event = on_listen;
	l->event_handler.on_event = on_mailbox;
	list_init(&l->conns);
	list_init(&l->shed);
	list_init(&l->streams);
	list_init(&l->ready);
	pthread_mutex_init(&l->lock, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (l->epfd < 0 || l->event_fd < 0)
		goto fail;
	l->accept_timer.heap_index = SIZE_MAX;
	l->accept_timer.fire = accept_pause_over;
	/* EPOLLEXCLUSIVE: a new connection wakes one waiting loop, not every loop. */
	struct epoll_event eev = {.events = EPOLLIN, .data.ptr = &l->event_handler};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->event_fd, &eev) != 0 || !watch_listener(l))
		goto fail;
	server_state_retain(st);
	tls_server_retain(tls);
	l->state = st;
	l->tls = tls;
	return l;
fail:
	loop_free(l);
	return NULL;
}

int loop_start(struct loop *l)
{
	if (pthread_create(&l->thread, NULL, loop_main, l) != 0)
		return -1;
	l->started = true;
	char name[16];
	snprintf(name, sizeof(name), "kesc-loop%u", l->index);
	(void)pthread_setname_np(l->thread, name); /* for top -H and /proc/PID/task */
	return 0;
}

void loop_join(struct loop *l)
{
	if (l->started)
		pthread_join(l->thread, NULL);
	l->started = false;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (struct handoff *h = l->handoff_head, *next; h; h = next) {
		next = h->next;
		refuse(l, h->fd);
		free(h);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->event_fd >= 0)
		close(l->event_fd);
	if (l->spare_fd >= 0)
		close(l->spare_fd);
	if (l->state)
		server_state_release(l->state);
	if (l->tls)
		tls_server_release(l->tls);
	if (l->new_state)
		server_state_release(l->new_state);
	if (l->new_tls)
		tls_server_release(l->new_tls);
	pthread_mutex_destroy(&l->lock);
	free(l->heap);
	free(l);
}
