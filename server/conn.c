/* conn.c — the per-connection state machine (conn.h). Everything here runs on the owning
 * loop's thread, except job_run, which runs on a worker and touches only the request and
 * response of its connection while the loop leaves them alone (phase WORKER), and
 * handshake_job_run, which runs on a handshake thread and owns the TLS context and the socket
 * I/O state while hs_pending is set (the loop then only notes events and deadlines). */
#include "server/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ssl.h>

#include "keystore/secmem.h"
#include "server/api.h"
#include "server/api_errors.h"
#include "server/http.h"
#include "server/log.h"
#include "server/log_limit.h"
#include "server/loop.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/sock_io.h"
#include "server/state.h"
#include "server/tls.h"
#include "server/transport_limits.h"
#include "server/worker.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* The first input buffer; it doubles up to what the request needs. With its NUL byte it is
 * still small enough for glibc's per-thread cache (1032 bytes): it comes and goes with every
 * request. */
#define IN_INITIAL 1024
/* Largest plaintext mbedTLS takes in one write (one record). */
#define TLS_RECORD_MAX 16384

static const char MSG_BUSY[] = "server is busy, try again later";

enum phase {
	PHASE_HANDSHAKE,
	PHASE_READ_HEAD,
	PHASE_READ_BODY,
	PHASE_WORKER, /* a worker has the request */
	PHASE_AUDIT,  /* the response waits for its audit record (log.h) */
	PHASE_WRITE,  /* flushing responses */
	PHASE_STREAM, /* a log stream */
	PHASE_LINGER, /* answered, closing: drain what the client still sends */
	PHASE_CLOSED, /* socket gone; freed once no worker holds it */
};

struct conn {
	struct loop_handler handler;
	struct loop_timer timer;
	struct loop_link link; /* loop's list of connections, then its graveyard */
	struct loop_link stream_link;
	struct loop_link ready_link; /* on the loop's ready list after yielding */
	struct loop_link shed_link;  /* on the loop's shed list until it proves a known identity */
	struct worker_job job;
	struct loop *loop;
	int fd;
	enum phase phase;
	int64_t accepted_ms;
	bool cert_checked;
	bool tls_seen;  /* the first bytes looked like TLS, not plain HTTP */
	bool ssl_ready; /* mbedtls_ssl_setup done: on the first TLS bytes, not at accept */
	/* A handshake thread owns ssl and io (PHASE_HANDSHAKE); job is its job. Events that
	 * arrive meanwhile are kept in hs_events and given to io when the job is back. */
	bool hs_pending;
	uint32_t hs_events;
	atomic_bool hs_cancel; /* closed meanwhile: a job not yet started does nothing */
	enum tls_step hs_step; /* the job's result */
	enum tls_failure hs_why;
	bool job_pending;
	bool close_after; /* close once the output is flushed */
	bool draining;
	bool body_too_large;
	bool discard_body;
	bool counted_active;
	bool audited;      /* this request's audit record is submitted */
	bool metered_path; /* the request's path: is_metered_path, needs_audit_record */
	bool audit_path;
	bool idle_timer;      /* the armed timer is the keep-alive idle one */
	bool timed_out;       /* answered 504 while a worker still has the request */
	size_t pending_write; /* length of a write that returned WANT_*, to repeat exactly */
	size_t linger_bytes;

	struct tls_server *tls;
	mbedtls_ssl_context ssl;
	struct sock_io io;
	char ip[INET6_ADDRSTRLEN];
	char identity[IDENTITY_HEX_LEN + 1];
	enum api_cert_problem cert_problem;

	/* Input: unconsumed bytes; during a request the head is at the start (parsed in
	 * place), a Content-Length body right after it. */
	char *in;
	size_t in_len, in_cap;

	struct http_request req;
	struct http_chunked chunked;
	struct buf body; /* decoded chunked body */
	size_t body_len; /* Content-Length body */
	uint64_t body_limit;
	struct api_route_limits limits;
	struct server_state *req_state;
	struct api_request api_req;
	struct api_response resp;
	int64_t start_real_ns, start_mono_ns;

	struct buf out;
	size_t out_off;
	struct log_subscriber *sub;
	struct tenant_connection *tenant_conn; /* counted in its tenant's share (state.h) */
	enum log_kind sub_kind; /* what sub streams (the request is over once it streams) */
	struct log_audit_wait *audit_wait; /* PHASE_AUDIT: the record we wait for */
};

static void progress(struct conn *c);

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- buffers ---- */

/* Zeroes the old buffer before freeing it: request bodies carry plaintexts and keys. */
static int in_reserve(struct conn *c, size_t need)
{
	if (c->in_cap >= need)
		return 0;
	size_t cap = c->in_cap ? c->in_cap : IN_INITIAL;
	while (cap < need)
		cap *= 2;
	char *fresh = malloc(cap + 1);
	if (!fresh)
		return -1;
	if (c->in) {
		memcpy(fresh, c->in, c->in_len);
		/* The parsed head points into the buffer: move those pointers along. */
		char **ptrs[] = {&c->req.method, &c->req.path, &c->req.query, &c->req.accept};
		for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++)
			if (*ptrs[i] && *ptrs[i] >= c->in && *ptrs[i] < c->in + c->in_cap + 1)
				*ptrs[i] = fresh + (*ptrs[i] - c->in);
		secure_zero(c->in, c->in_cap);
		free(c->in);
	}
	c->in = fresh;
	c->in_cap = cap;
	return 0;
}

/* Drops the first n bytes of input. */
static void in_consume(struct conn *c, size_t n)
{
	if (n > c->in_len)
		n = c->in_len;
	if (!n)
		return;
	memmove(c->in, c->in + n, c->in_len - n);
	secure_zero(c->in + c->in_len - n, n);
	c->in_len -= n;
}

/* Idle connections keep only the TLS context: no input or output buffer. */
static void release_buffers(struct conn *c)
{
	if (c->in && !c->in_len) {
		secure_zero(c->in, c->in_cap);
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	if (c->out_off >= c->out.len) {
		buf_free(&c->out);
		buf_init(&c->out, 0);
		c->out_off = 0;
	}
	sock_io_release(&c->io);
}

/* ---- refusals in the error log ---- */

/* Each cause has its own rate limit (log_limited: a few lines per 10 s), so a flood of one
 * kind cannot hide the one expired certificate an operator is looking for. */

static enum metrics_handshake_failure handshake_metric(enum tls_failure why)
{
	switch (why) {
	case TLS_FAILURE_NO_CERT:
		return METRICS_HANDSHAKE_NO_CERT;
	case TLS_FAILURE_UNTRUSTED:
		return METRICS_HANDSHAKE_UNTRUSTED;
	case TLS_FAILURE_EXPIRED:
		return METRICS_HANDSHAKE_EXPIRED;
	case TLS_FAILURE_CA_CERT:
	case TLS_FAILURE_WEAK_KEY:
	case TLS_FAILURE_KEY_PROOF:
	case TLS_FAILURE_BAD_CERT:
		return METRICS_HANDSHAKE_BAD_CERT;
	case TLS_FAILURE_NO_COMMON_PARAMS:
	case TLS_FAILURE_ALERT:
	case TLS_FAILURE_PROTOCOL:
		return METRICS_HANDSHAKE_PROTOCOL;
	case TLS_FAILURE_CLOSED:
		return METRICS_HANDSHAKE_CLOSED;
	default:
		return METRICS_HANDSHAKE_OTHER;
	}
}

/* INFO with the reason, the peer and the certificate's subject when one was sent; a peer
 * that only went away (TCP health checks, port scans) is counted but logged at DEBUG. */
static void log_handshake_failure(struct conn *c, enum tls_failure why)
{
	static struct log_limit sites[TLS_FAILURE_COUNT] = {[0 ... TLS_FAILURE_COUNT - 1] =
	                                                        LOG_LIMIT_INIT};
	metrics_count_handshake_failure(handshake_metric(why));
	if ((unsigned)why >= TLS_FAILURE_COUNT)
		why = TLS_FAILURE_PROTOCOL;
	char subject[256];
	tls_peer_subject(&c->ssl, subject, sizeof(subject));
	log_limited(&sites[why], why == TLS_FAILURE_CLOSED ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
	            "tls: handshake with %s failed: %s%s%s%s", c->ip, tls_failure_text(why),
	            subject[0] ? " (certificate subject " : "", subject, subject[0] ? ")" : "");
}

static void log_handshake_timeout(struct conn *c)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	metrics_count_handshake_failure(METRICS_HANDSHAKE_TIMEOUT);
	log_limited(&site, LOG_LEVEL_INFO,
	            "tls: handshake with %s failed: not finished within %.1f s "
	            "(server.handshake_timeout)",
	            c->ip, (double)(loop_now_ms(c->loop) - c->accepted_ms) / 1000.0);
}

static void log_plain_http(struct conn *c)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	metrics_count_handshake_failure(METRICS_HANDSHAKE_PLAIN_HTTP);
	log_limited(&site, LOG_LEVEL_INFO,
	            "tls: %s sent plain HTTP to the TLS port (answered 400; use https://)", c->ip);
}

/* A 403: who asked for what, from where, and why the policy said no. */
static void log_forbidden(struct conn *c)
{
	static struct log_limit no_policy = LOG_LIMIT_INIT, not_allowed = LOG_LIMIT_INIT;
	bool has_policy = server_state_identity_has_policy(
	    c->req_state ? c->req_state : loop_state(c->loop), c->identity);
	log_limited(has_policy ? &not_allowed : &no_policy, LOG_LEVEL_INFO,
	            "api: 403 for %s %s from %s, identity %s: %s",
	            c->req.method ? c->req.method : "", c->req.path ? c->req.path : "", c->ip,
	            c->identity[0] ? c->identity : "(none)",
	            has_policy ? "its policy does not allow this path"
	                       : "not the admin, and no policy is assigned to it");
}

/* ---- timers ---- */

static void arm(struct conn *c, int64_t ms, bool idle)
{
	c->idle_timer = idle;
	loop_timer_set(c->loop, &c->timer, loop_now_ms(c->loop) + ms);
}

static void disarm(struct conn *c)
{
	c->idle_timer = false;
	loop_timer_clear(c->loop, &c->timer);
}

/* ---- closing ---- */

static void close_now(struct conn *c)
{
	if (c->phase == PHASE_CLOSED)
		return;
	struct loop_env *env = loop_env(c->loop);
	disarm(c);
	loop_ready_remove(c->loop, &c->ready_link);
	loop_shed_remove(c->loop, &c->shed_link);
	loop_unwatch(c->loop, c->fd);
	if (c->hs_pending) {
		/* A handshake thread still uses the socket: shut it down so its I/O fails at
		 * once, and close it when the job is back (until then the descriptor cannot be
		 * reused for another connection the thread would then write to). */
		atomic_store_explicit(&c->hs_cancel, true, memory_order_relaxed);
		(void)shutdown(c->fd, SHUT_RDWR);
	} else {
		close(c->fd);
		c->fd = -1;
		c->io.fd = -1; /* a late flush fails (EBADF) instead of reaching a reused number */
	}
	if (c->sub) {
		log_unsubscribe(c->sub);
		c->sub = NULL;
		loop_stream_remove(c->loop, &c->stream_link);
	}
	if (c->counted_active) {
		metrics_request_active(-1);
		c->counted_active = false;
	}
	if (c->audit_wait && !log_audit_abandon(c->audit_wait, false)) {
		c->audit_wait = NULL; /* its ready will not come */
		c->job_pending = false;
	}
	metrics_connection(-1);
	atomic_fetch_sub(&env->connections, 1);
	server_state_connection_leave(c->tenant_conn);
	c->tenant_conn = NULL;
	c->phase = PHASE_CLOSED;
	if (c->job_pending)
		return; /* job_done finishes the job */
	loop_conn_remove(c->loop, &c->link);
	loop_defer_free(c->loop, &c->link);
}

/* Answered and closing: tell the peer, then drain its input briefly so that our answer is
 * not destroyed by a reset when it is still sending (a body we refused, pipelined data). */
static void start_close(struct conn *c)
{
	(void)mbedtls_ssl_close_notify(&c->ssl);
	if (shutdown(c->fd, SHUT_WR) != 0) {
		close_now(c);
		return;
	}
	c->phase = PHASE_LINGER;
	arm(c, LIMIT_LINGER_MS, false);
	progress(c);
}

static void step_linger(struct conn *c)
{
	char scratch[4096];
	for (;;) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
		if (n > 0) {
			c->linger_bytes += (size_t)n;
			if (c->linger_bytes > LIMIT_LINGER_BYTES)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break;
	}
	close_now(c);
}

static void audit(struct conn *c, int status);

/*
 * The route's deadline passed while a worker still has the request (a keystore that is slow
 * to answer): the client gets KES's timeout answer now, not a closed connection, and the log
 * says so. The worker's buffers (request, response, input) stay untouched until it is done;
 * job_done then logs its late outcome — a create may well have taken effect — and drops it.
 */
static void answer_timeout(struct conn *c)
{
	int64_t latency = clock_ns(CLOCK_MONOTONIC) - c->start_mono_ns;
	log_warn("%s %s from %s: no result within the route's timeout (%lld ms); answered 504",
	         c->req.method, c->req.path, c->ip, (long long)(latency / 1000000));
	c->timed_out = true;
	http_write_error(&c->out, api_error_status(API_ERR_TIMEOUT),
	                 api_error_text(API_ERR_TIMEOUT), true);
	if (c->counted_active)
		metrics_request_done(api_error_status(API_ERR_TIMEOUT), latency);
	audit(c, api_error_status(API_ERR_TIMEOUT)); /* an error answer: best effort */
	c->close_after = true; /* the input still belongs to the worker: read no more */
	c->phase = PHASE_WRITE;
	arm(c, loop_env(c->loop)->header_timeout_ms, false);
	progress(c);
}
static void audit_timed_out(struct conn *c);

static void on_timer(struct loop_timer *t)
{
	struct conn *c = container_of(t, struct conn, timer);
	if (c->phase == PHASE_AUDIT) {
		audit_timed_out(c);
		return;
	}
	if (c->phase == PHASE_HANDSHAKE)
		log_handshake_timeout(c);
	if (c->phase == PHASE_WORKER) {
		answer_timeout(c);
		return;
	}
	close_now(c);
}

/* ---- output ---- */

enum { WRITE_DONE = 0, WRITE_WAIT = 1, WRITE_ERROR = -1 };

static int write_some(struct conn *c)
{
	while (c->out_off < c->out.len) {
		size_t len = c->pending_write;
		if (!len) {
			len = c->out.len - c->out_off;
			if (len > TLS_RECORD_MAX)
				len = TLS_RECORD_MAX;
		}
		int n = mbedtls_ssl_write(&c->ssl, (const unsigned char *)c->out.data + c->out_off,
		                          len);
		if (n == MBEDTLS_ERR_SSL_WANT_WRITE || n == MBEDTLS_ERR_SSL_WANT_READ) {
			c->pending_write = len;
			return WRITE_WAIT;
		}
		if (n < 0)
			return WRITE_ERROR;
		c->pending_write = 0;
		c->out_off += (size_t)n;
	}
	buf_reset(&c->out);
	c->out_off = 0;
	return WRITE_DONE;
}

/* ---- requests ---- */

static void fill_record(struct conn *c, struct audit_record *r, int status)
{
	memset(r, 0, sizeof(*r));
	r->time_ns = c->start_real_ns;
	r->ip = c->ip;
	r->method = c->req.method ? c->req.method : "";
	r->path = c->req.path ? c->req.path : "";
	r->identity = c->identity;
	r->tenant = c->resp.tenant;
	r->has_items = c->resp.audit_has_items;
	r->items = c->resp.audit_items;
	r->status = status;
	r->latency_ns = clock_ns(CLOCK_MONOTONIC) - c->start_mono_ns;
}

/* Best effort: requests refused before any work, whose answer does not depend on it. */
static void audit(struct conn *c, int status)
{
	struct audit_record r;
	fill_record(c, &r, status);
	log_audit(&r);
	c->audited = true;
}

/* Releases what a finished request held and drops its bytes from the input. */
static void end_request(struct conn *c)
{
	size_t used = c->req.head_len;
	if (!c->req.chunked && !c->body_too_large)
		used += c->body_len;
	in_consume(c, used);
	memset(&c->req, 0, sizeof(c->req));
	memset(&c->api_req, 0, sizeof(c->api_req));
	buf_free(&c->body);
	buf_free(&c->resp.body);
	memset(&c->resp, 0, sizeof(c->resp));
	c->body_len = 0;
	c->body_too_large = false;
	c->discard_body = false;
	c->audited = false;
	if (c->req_state) {
		server_state_release(c->req_state);
		c->req_state = NULL;
	}
	if (c->counted_active) {
		metrics_request_active(-1);
		c->counted_active = false;
	}
}

/* A request we refuse before it reaches the API: answer and close. */
static void fail_request(struct conn *c, int status, const char *message)
{
	if (!c->start_mono_ns) {
		c->start_real_ns = clock_ns(CLOCK_REALTIME);
		c->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	}
	http_write_error(&c->out, status, message, true);
	audit(c, status);
	c->req.head_len = 0; /* the input is not consumed: we close */
	c->body_len = 0;
	end_request(c);
	c->close_after = true;
	c->phase = PHASE_WRITE;
	arm(c, loop_env(c->loop)->header_timeout_ms, false);
}

static void stream_notify(void *arg)
{
	struct conn *c = arg;
	loop_wake(c->loop);
}

static void start_stream(struct conn *c)
{
	enum log_kind kind =
	    c->resp.stream == API_STREAM_AUDIT_LOG ? LOG_KIND_AUDIT : LOG_KIND_ERROR;
	http_write_head(&c->out, 200, "application/x-ndjson", 0, NULL, true, HTTP_CONN_DEFAULT);
	c->sub = log_subscribe_tenant(kind, c->resp.tenant, stream_notify, c);
	c->sub_kind = kind;
	end_request(c);
	if (!c->sub) {
		c->close_after = true;
		c->phase = PHASE_WRITE;
		return;
	}
	loop_stream_add(c->loop, &c->stream_link);
	disarm(c);
	c->phase = PHASE_STREAM;
}

static bool is_metered_path(const char *path)
{
	return !strncmp(path, "/v1/key/", 8) || !strncmp(path, "/v1/policy/", 11) ||
	       !strncmp(path, "/v1/identity/", 13);
}

/* Requests whose answer waits for their audit record: everything that touches keys,
 * policies, identities or reads the logs (the audit rule, log.h). */
static bool needs_audit_record(const char *path)
{
	return path && (is_metered_path(path) || !strncmp(path, "/v1/log/", 8));
}

/* The answer when the audit record cannot be written (or the audit log is failing). Its
 * own record, saying 503, is written best effort. */
static void refuse_for_audit(struct conn *c)
{
	api_error(&c->resp, API_ERR_AUDIT, NULL, NULL);
	c->resp.stream = API_STREAM_NONE;
	c->resp.metered = c->metered_path;
	audit(c, c->resp.status);
}

static void send_response(struct conn *c);

static void audit_done(struct worker_job *job)
{
	struct conn *c = container_of(job, struct conn, job);
	c->job_pending = false;
	bool written = log_audit_finish(c->audit_wait);
	c->audit_wait = NULL;
	if (c->phase == PHASE_CLOSED) {
		end_request(c);
		loop_conn_remove(c->loop, &c->link);
		loop_defer_free(c->loop, &c->link);
		return;
	}
	if (!written)
		refuse_for_audit(c);
	send_response(c);
	progress(c);
}

/* From the audit log's writer thread: hand the connection back to its loop. */
static void audit_ready(void *arg)
{
	struct conn *c = arg;
	c->job.done = audit_done;
	c->job.loop = c->loop;
	loop_post_job(c->loop, &c->job);
}

static void audit_timed_out(struct conn *c)
{
	if (log_audit_abandon(c->audit_wait, true))
		return; /* decided meanwhile: audit_done is on its way */
	c->audit_wait = NULL;
	c->job_pending = false;
	refuse_for_audit(c);
	send_response(c);
	progress(c);
}

/* Submits the record; true while the response waits for it (PHASE_AUDIT). */
static bool audit_before_answer(struct conn *c)
{
	struct audit_record rec;
	fill_record(c, &rec, c->resp.status);
	c->audited = true;
	switch (log_audit_submit(&rec, c->audit_path, audit_ready, c, &c->audit_wait)) {
	case LOG_AUDIT_PENDING:
		c->job_pending = true;
		c->phase = PHASE_AUDIT;
		arm(c, LOG_AUDIT_WAIT_MS, false);
		return true;
	case LOG_AUDIT_REFUSED:
		refuse_for_audit(c);
		return false;
	default:
		return false;
	}
}

/* The API answered: have it audited, then queue the response. */
static void finish_request(struct conn *c)
{
	struct api_response *r = &c->resp;
	if (buf_failed(&r->body)) {
		buf_reset(&r->body);
		r->status = 500;
		r->content_type = NULL;
		r->stream = API_STREAM_NONE;
	}
	if (!c->audited && audit_before_answer(c))
		return;
	send_response(c);
}

/* Queues the response and goes on with the next request or closes. */
static void send_response(struct conn *c)
{
	struct api_response *r = &c->resp;
	if (r->stream != API_STREAM_NONE && r->status == 200) {
		start_stream(c);
		return;
	}
	if (c->phase == PHASE_AUDIT) /* the write phase gets the header timeout */
		arm(c, loop_env(c->loop)->header_timeout_ms, false);
	if (!c->req.keep_alive || c->draining || c->body_too_large)
		c->close_after = true;
	int connection = c->close_after              ? HTTP_CONN_CLOSE
	                 : c->req.version_minor == 0 ? HTTP_CONN_KEEP_ALIVE
	                                             : HTTP_CONN_DEFAULT;
	http_write_head(&c->out, r->status, r->content_type, r->body.len, r->allow, false,
	                connection);
	buf_append(&c->out, r->body.data, r->body.len);
	int64_t latency = clock_ns(CLOCK_MONOTONIC) - c->start_mono_ns;
	if (r->metered) {
		metrics_request_done(r->status, latency);
		metrics_scope_request_done(r->scope, r->status, latency); /* its tenant's */
	}
	if (r->status == 403)
		log_forbidden(c);
	end_request(c);
	if (c->close_after || c->out.len >= LIMIT_PIPELINE_OUTPUT_BYTES)
		c->phase = PHASE_WRITE;
	else
		c->phase = PHASE_READ_HEAD; /* parses a pipelined request or flushes */
}

static void job_run(struct worker_job *job)
{
	struct conn *c = container_of(job, struct conn, job);
	if (api_handle(c->req_state, &c->api_req, &c->resp, true) != API_DONE) {
		buf_reset(&c->resp.body);
		c->resp.status = 500;
		c->resp.content_type = NULL;
	}
}

static void job_done(struct worker_job *job)
{
	struct conn *c = container_of(job, struct conn, job);
	c->job_pending = false;
	if (c->timed_out) {
		log_warn("%s %s from %s: finished after its 504 answer, %lld ms after it began, "
		         "with status %d (not sent)",
		         c->req.method, c->req.path, c->ip,
		         (long long)((clock_ns(CLOCK_MONOTONIC) - c->start_mono_ns) / 1000000),
		         c->resp.status);
		c->timed_out = false;
		if (c->phase != PHASE_CLOSED) {
			end_request(c); /* the 504 is queued; the connection closes after it */
			return;
		}
	}
	if (c->phase == PHASE_CLOSED) {
		end_request(c);
		loop_conn_remove(c->loop, &c->link);
		loop_defer_free(c->loop, &c->link);
		return;
	}
	finish_request(c);
	progress(c);
}

static void reset_response(struct conn *c)
{
	buf_free(&c->resp.body);
	memset(&c->resp, 0, sizeof(c->resp));
	buf_init(&c->resp.body, 0);
}

static void dispatch(struct conn *c)
{
	struct api_request *a = &c->api_req;
	memset(a, 0, sizeof(*a));
	a->method = c->req.method;
	a->path = c->req.path;
	a->query = c->req.query;
	a->accept = c->req.accept;
	a->identity = c->identity;
	a->cert_problem = c->cert_problem;
	a->remote_ip = c->ip;
	a->body_too_large = c->body_too_large;
	if (!c->body_too_large && !c->discard_body) {
		if (c->req.chunked) {
			a->body = (const uint8_t *)c->body.data;
			a->body_len = c->body.len;
		} else if (c->body_len) {
			a->body = (const uint8_t *)c->in + c->req.head_len;
			a->body_len = c->body_len;
		}
	}
	reset_response(c);
	if (api_handle(c->req_state, a, &c->resp, false) == API_NEEDS_WORKER) {
		c->job.group = c->resp.group; /* the tenant's share of the workers */
		reset_response(c);
		c->job.run = job_run;
		c->job.done = job_done;
		c->job.loop = c->loop;
		if (worker_pool_submit(loop_env(c->loop)->workers, &c->job) == 0) {
			c->job_pending = true;
			c->phase = PHASE_WORKER;
			return;
		}
		static struct log_limit site = LOG_LIMIT_INIT;
		log_limited(&site, LOG_LEVEL_WARN,
		            "worker queue full (%d jobs): request from %s refused with 503",
		            LIMIT_WORKER_QUEUE, c->ip);
		c->resp.status = 503;
		c->resp.content_type = "application/json";
		buf_append_str(&c->resp.body, "{\"message\":\"");
		buf_append_str(&c->resp.body, MSG_BUSY);
		buf_append_str(&c->resp.body, "\"\n}");
	}
	finish_request(c);
}

/* Route, method and policy checks on the head alone (api_precheck); on refusal c->resp
 * holds the answer. */
static bool precheck_passes(struct conn *c)
{
	struct api_request a;
	memset(&a, 0, sizeof(a));
	a.method = c->req.method;
	a.path = c->req.path;
	a.query = c->req.query;
	a.accept = c->req.accept;
	a.identity = c->identity;
	a.cert_problem = c->cert_problem;
	a.remote_ip = c->ip;
	reset_response(c);
	return api_precheck(c->req_state, &a, &c->resp);
}

/* A head was parsed: set up limits and the body, or dispatch at once. */
static void begin_request(struct conn *c)
{
	struct loop_env *env = loop_env(c->loop);
	c->start_real_ns = clock_ns(CLOCK_REALTIME);
	c->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	c->req_state = loop_state(c->loop);
	server_state_retain(c->req_state);
	api_route_limits(c->req_state, c->req.path, &c->limits);
	c->metered_path = is_metered_path(c->req.path);
	c->audit_path = needs_audit_record(c->req.path);
	if (c->metered_path) {
		metrics_request_active(1);
		c->counted_active = true;
	}
	c->discard_body = c->limits.max_body == 0;
	c->body_limit = c->discard_body ? API_MAX_BODY : c->limits.max_body;
	/* The route's deadline covers body, handler and writing the response (KES sets a write
	 * deadline); routes without one (log streams) still get the header timeout for a body. */
	if (c->limits.timeout_ms > 0)
		arm(c, c->limits.timeout_ms, false);
	else if (c->req.chunked || c->req.content_length)
		arm(c, env->header_timeout_ms, false);
	else
		disarm(c);

	bool has_body = c->req.chunked || c->req.content_length > 0;
	if (c->audit_path && !log_audit_accepting()) {
		/* The audit log is failing: refused before it runs (and before its body). */
		c->body_too_large = has_body;
		reset_response(c);
		refuse_for_audit(c);
		finish_request(c);
		return;
	}
	/* A body the client may not send is refused before it is read, so that nobody can make
	 * the server buffer a megabyte. One that came in full with its head costs nothing more to
	 * hold: the handler's own checks (the same ones) answer it, and a second pass over route,
	 * method and policy per request is saved. */
	bool body_here = !c->req.chunked && c->in_len - c->req.head_len >= c->req.content_length;
	if (has_body && !c->discard_body && !body_here && !precheck_passes(c)) {
		/* Refused before the body: answer and close without reading it. */
		c->body_too_large = true;
		finish_request(c);
		return;
	}
	if (c->req.has_content_length && c->req.content_length > c->body_limit)
		c->body_too_large = true;
	if (!has_body || c->body_too_large) {
		dispatch(c);
		return;
	}
	if (c->req.chunked) {
		http_chunked_init(&c->chunked);
		buf_init(&c->body, c->body_limit + 1);
	} else {
		c->body_len = (size_t)c->req.content_length;
	}
	if (c->req.expect_continue)
		buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
	c->phase = PHASE_READ_BODY;
}

/* ---- input ---- */

/* Drops n bytes right after the head (a body the route does not read). */
static void drop_after_head(struct conn *c, size_t n)
{
	size_t avail = c->in_len - c->req.head_len;
	memmove(c->in + c->req.head_len, c->in + c->req.head_len + n, avail - n);
	secure_zero(c->in + c->in_len - n, n);
	c->in_len -= n;
}

enum { READ_GOT = 0, READ_WAIT = 1, READ_CLOSED = -1 };

static int read_some(struct conn *c, size_t room)
{
	/* Nothing buffered and the socket known to be empty: wait for its next event. */
	if (!sock_io_may_read(&c->io) && !mbedtls_ssl_check_pending(&c->ssl))
		return READ_WAIT;
	int n = mbedtls_ssl_read(&c->ssl, (unsigned char *)c->in + c->in_len, room);
	if (n > 0) {
		c->in_len += (size_t)n;
		return READ_GOT;
	}
	if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
		return READ_WAIT;
	return READ_CLOSED; /* EOF, close_notify, reset, bad record */
}

/* Before waiting for input, send what is queued (responses, 100 Continue). */
static bool flush_before_wait(struct conn *c)
{
	if (c->out_off >= c->out.len)
		return true;
	int w = write_some(c);
	if (w == WRITE_ERROR) {
		close_now(c);
		return false;
	}
	return true;
}

/*
 * Before the first TLS byte is consumed: a client speaking plain HTTP to the TLS port gets
 * Go's plain-text 400 (what KES answers) instead of a bare reset, so the mistake is obvious.
 * Returns true once the handshake may go on; false to wait for bytes or after closing.
 */
static bool check_plain_http(struct conn *c)
{
	static const char ANSWER[] = "HTTP/1.0 400 Bad Request\r\n\r\n"
	                             "Client sent an HTTP request to an HTTPS server.\n";
	static const char *const METHODS[] = {"GET /", "HEAD ", "POST ", "PUT /",
	                                      "OPTIO", "DELET", "PATCH", "CONNE"};
	char first[5];
	ssize_t n = recv(c->fd, first, sizeof(first), MSG_PEEK | MSG_DONTWAIT);
	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? false : true;
	if (first[0] == 0x16 || (first[0] & 0x80)) { /* TLS handshake record (or SSLv2 hello) */
		c->tls_seen = true;
		return true;
	}
	if (n < (ssize_t)sizeof(first))
		return false; /* wait for five bytes; the handshake timer bounds this */
	for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]); i++) {
		if (memcmp(first, METHODS[i], sizeof(first)) == 0) {
			(void)!send(c->fd, ANSWER, sizeof(ANSWER) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			log_plain_http(c);
			close_now(c);
			return false;
		}
	}
	c->tls_seen = true; /* not HTTP: let mbedTLS reject it */
	return true;
}

/* The admin or an identity with a policy: a connection the limit keeps (conn_shed). */
static bool identity_is_known(const struct conn *c)
{
	if (!c->identity[0] || c->cert_problem != API_CERT_OK)
		return false;
	return server_state_identity_known(loop_state(c->loop), c->identity);
}

/* Counts the connection in its tenant's share; false (closed) when the share is full. */
static bool admit_tenant(struct conn *c)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	bool refused = false;
	if (c->cert_problem == API_CERT_OK)
		c->tenant_conn =
		    server_state_connection_admit(loop_state(c->loop), c->identity, &refused);
	if (!refused)
		return true;
	metrics_count_conn_refused(METRICS_REFUSED_TENANT);
	log_limited(&site, LOG_LEVEL_WARN,
	            "connection from %s, identity %s, closed: its tenant holds "
	            "server.tenant_max_connections already",
	            c->ip, c->identity);
	close_now(c);
	return false;
}

/* The TLS context needs two 16 KiB record buffers: only set up for a peer that sent TLS
 * bytes, not for port scans, health checks or plain-HTTP mistakes. */
static bool start_tls(struct conn *c)
{
	if (mbedtls_ssl_setup(&c->ssl, tls_server_conf(c->tls, loop_index(c->loop))) != 0) {
		close_now(c);
		return false;
	}
	mbedtls_ssl_set_bio(&c->ssl, &c->io, sock_io_send, sock_io_recv, NULL);
	c->ssl_ready = true;
	return true;
}

/* Where a handshake step left it (on the loop or back from a handshake thread): send the
 * flight it wrote, then go on. True when progress should be called again: the handshake is
 * done, or it waited only for the socket to take its output and it has. */
static bool handshake_advanced(struct conn *c, enum tls_step step, enum tls_failure why)
{
	if (sock_io_has_output(&c->io) && sock_io_flush(&c->io) == SOCK_IO_ERROR &&
	    step != TLS_STEP_FAIL) {
		step = TLS_STEP_FAIL;
		why = TLS_FAILURE_CLOSED;
	}
	switch (step) {
	case TLS_STEP_DONE:
		sock_io_uncork(&c->io); /* a flight still unsent goes out before the first reply */
		tls_peer_identity(&c->ssl, c->identity, &c->cert_problem);
		metrics_observe_client_cert_expiry(
		    metrics_cert_not_after(mbedtls_ssl_get_peer_cert(&c->ssl)));
		if (!admit_tenant(c))
			return false;
		if (identity_is_known(c))
			loop_shed_remove(c->loop, &c->shed_link);
		c->phase = PHASE_READ_HEAD;
		arm(c, loop_env(c->loop)->header_timeout_ms, false);
		return true;
	case TLS_STEP_WANT_WRITE:
		return !sock_io_has_output(&c->io);
	case TLS_STEP_WANT_READ:
		return false;
	default:
		log_handshake_failure(c, why);
		close_now(c);
		return false;
	}
}

/* On a handshake thread: the public-key steps, with the TLS context and socket state to
 * itself (the loop leaves them alone while hs_pending is set). */
static void handshake_job_run(struct worker_job *job)
{
	struct conn *c = container_of(job, struct conn, job);
	if (atomic_load_explicit(&c->hs_cancel, memory_order_relaxed)) {
		c->hs_step = TLS_STEP_FAIL;
		c->hs_why = TLS_FAILURE_CLOSED;
		return;
	}
	c->hs_step = tls_handshake(c->tls, &c->ssl, &c->cert_checked, &c->hs_why, true);
}

static void handshake_job_done(struct worker_job *job)
{
	struct conn *c = container_of(job, struct conn, job);
	c->job_pending = false;
	c->hs_pending = false;
	if (c->phase == PHASE_CLOSED) {
		close(c->fd);
		c->fd = -1;
		c->io.fd = -1;
		loop_conn_remove(c->loop, &c->link);
		loop_defer_free(c->loop, &c->link);
		return;
	}
	if (c->hs_events) {
		sock_io_readable(&c->io, c->hs_events);
		c->hs_events = 0;
	}
	if (handshake_advanced(c, c->hs_step, c->hs_why))
		progress(c);
	else if (c->phase == PHASE_HANDSHAKE && c->hs_step == TLS_STEP_WANT_READ &&
	         sock_io_may_read(&c->io))
		progress(c); /* input came while the job ran: no new event will say so */
}

/*
 * Full handshakes cost milliseconds of public-key work (signing, the key exchange, checking
 * the client's proof of its key). The loop runs the cheap steps itself (the hello, resumed
 * handshakes entirely) and hands the expensive ones to a handshake thread, so that the other
 * connections of this loop are not kept waiting. A step that reads waits on the loop until
 * its input is there.
 */
static bool step_handshake(struct conn *c)
{
	if (c->hs_pending)
		return false;
	if (!c->tls_seen && !check_plain_http(c))
		return false;
	if (!c->ssl_ready && !start_tls(c))
		return false;
	if (sock_io_has_output(&c->io)) {
		int f = sock_io_flush(&c->io);
		if (f == SOCK_IO_WAIT)
			return false;
		if (f == SOCK_IO_ERROR)
			return handshake_advanced(c, TLS_STEP_FAIL, TLS_FAILURE_CLOSED);
	}
	enum tls_failure why;
	sock_io_cork(&c->io); /* one send per flight */
	enum tls_step step = tls_handshake(c->tls, &c->ssl, &c->cert_checked, &why, false);
	if (step == TLS_STEP_HEAVY) {
		if (tls_handshake_reads_next(&c->ssl) && !sock_io_fill(&c->io))
			return false; /* the client's next flight is not here yet */
		struct worker_pool *pool = loop_env(c->loop)->handshakes;
		c->job.run = handshake_job_run;
		c->job.done = handshake_job_done;
		c->job.loop = c->loop;
		c->hs_events = 0;
		if (pool && worker_pool_submit(pool, &c->job) == 0) {
			c->hs_pending = true;
			c->job_pending = true;
			return false;
		}
		/* No handshake thread takes it: do it here rather than fail the client. */
		step = tls_handshake(c->tls, &c->ssl, &c->cert_checked, &why, true);
	}
	return handshake_advanced(c, step, why);
}

static bool step_read_head(struct conn *c)
{
	if (c->in_len) {
		c->start_mono_ns = 0;
		switch (http_parse_head(c->in, c->in_len, &c->req)) {
		case HTTP_PARSE_DONE:
			begin_request(c);
			return true;
		case HTTP_PARSE_FAIL:
			fail_request(c, c->req.error_status, c->req.error_message);
			return true;
		default:
			break;
		}
	}
	if (c->out_off < c->out.len) {
		c->phase = PHASE_WRITE;
		return true;
	}
	if (c->draining && !c->in_len) {
		close_now(c);
		return false;
	}
	if (in_reserve(c, c->in_len + 1) < 0) {
		close_now(c);
		return false;
	}
	size_t limit = c->in_cap < LIMIT_HEAD_BYTES ? c->in_cap : LIMIT_HEAD_BYTES;
	if (limit <= c->in_len && in_reserve(c, c->in_len * 2) < 0) {
		close_now(c);
		return false;
	}
	limit = c->in_cap < LIMIT_HEAD_BYTES ? c->in_cap : LIMIT_HEAD_BYTES;
	switch (read_some(c, limit - c->in_len)) {
	case READ_GOT:
		if (c->idle_timer) /* the first byte of a request: now the header clock runs */
			arm(c, loop_env(c->loop)->header_timeout_ms, false);
		return true;
	case READ_WAIT:
		if (!c->in_len)
			release_buffers(c);
		return false;
	default:
		close_now(c);
		return false;
	}
}

static bool step_read_body(struct conn *c)
{
	if (c->req.chunked) {
		size_t avail = c->in_len - c->req.head_len, used = 0;
		const char *message = NULL;
		int rc = HTTP_PARSE_MORE;
		if (avail) {
			rc = http_chunked_decode(&c->chunked, c->in + c->req.head_len, avail, &used,
			                         &c->body, c->body_limit, &message);
			drop_after_head(c, used);
			if (c->discard_body)
				buf_reset(&c->body); /* nobody reads it: keep memory flat */
		}
		if (rc == HTTP_PARSE_DONE || rc == HTTP_PARSE_TOO_LARGE) {
			c->body_too_large = rc == HTTP_PARSE_TOO_LARGE;
			if (c->body_too_large)
				buf_reset(&c->body);
			dispatch(c);
			return true;
		}
		if (rc == HTTP_PARSE_FAIL) {
			fail_request(c, 400, message);
			return true;
		}
	} else if (c->discard_body) {
		/* Counted and dropped as it arrives, never buffered whole. */
		size_t avail = c->in_len - c->req.head_len;
		size_t take = avail < c->body_len ? avail : c->body_len;
		drop_after_head(c, take);
		c->body_len -= take;
		if (!c->body_len) {
			dispatch(c);
			return true;
		}
	} else if (c->in_len - c->req.head_len >= c->body_len) {
		dispatch(c);
		return true;
	}
	if (!flush_before_wait(c))
		return false;
	size_t need = c->req.chunked || c->discard_body ? c->in_len + TLS_RECORD_MAX
	                                                : c->req.head_len + c->body_len;
	if (in_reserve(c, need) < 0) {
		close_now(c);
		return false;
	}
	size_t room = c->req.chunked || c->discard_body ? c->in_cap - c->in_len : need - c->in_len;
	switch (read_some(c, room)) {
	case READ_GOT:
		return true;
	case READ_WAIT:
		return false;
	default:
		close_now(c);
		return false;
	}
}

static bool step_write(struct conn *c)
{
	switch (write_some(c)) {
	case WRITE_WAIT:
		return false;
	case WRITE_ERROR:
		close_now(c);
		return false;
	default:
		break;
	}
	if (c->close_after) {
		start_close(c);
		return false;
	}
	c->phase = PHASE_READ_HEAD;
	if (c->in_len)
		arm(c, loop_env(c->loop)->header_timeout_ms, false);
	else
		arm(c, loop_env(c->loop)->idle_timeout_ms, true);
	/* Answered: let the other connections have a turn before reading the next request. A
	 * closed-loop client on the other core would otherwise have its next request here
	 * before every recv, and the loop would serve it alone (p99 20 ms at 64 connections). */
	loop_ready_add(c->loop, &c->ready_link);
	return false;
}

static void step_stream(struct conn *c)
{
	if (write_some(c) == WRITE_ERROR) {
		close_now(c);
		return;
	}
	/* Anything the client sends is ignored; its EOF ends the stream. */
	unsigned char scratch[256];
	for (;;) {
		int n = mbedtls_ssl_read(&c->ssl, scratch, sizeof(scratch));
		if (n > 0)
			continue;
		if (n == MBEDTLS_ERR_SSL_WANT_READ || n == MBEDTLS_ERR_SSL_WANT_WRITE)
			break;
		close_now(c);
		return;
	}
	if (c->close_after && c->out_off >= c->out.len)
		close_now(c);
}

static void progress(struct conn *c)
{
	/* The end of a handshake flight the socket did not take at once goes out first. */
	if (c->phase > PHASE_HANDSHAKE && c->phase < PHASE_LINGER && sock_io_has_output(&c->io) &&
	    sock_io_flush(&c->io) == SOCK_IO_ERROR) {
		close_now(c);
		return;
	}
	for (;;) {
		bool again = false;
		switch (c->phase) {
		case PHASE_HANDSHAKE:
			again = step_handshake(c);
			break;
		case PHASE_READ_HEAD:
			again = step_read_head(c);
			break;
		case PHASE_READ_BODY:
			again = step_read_body(c);
			break;
		case PHASE_WRITE:
			again = step_write(c);
			break;
		case PHASE_STREAM:
			step_stream(c);
			break;
		case PHASE_LINGER:
			step_linger(c);
			break;
		case PHASE_WORKER:
		case PHASE_AUDIT:
		case PHASE_CLOSED:
			break;
		}
		if (!again)
			return;
	}
}

static void on_event(struct loop_handler *h, uint32_t events)
{
	struct conn *c = container_of(h, struct conn, handler);
	if (c->hs_pending) {
		c->hs_events |= events; /* the handshake thread owns io: tell it afterwards */
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		sock_io_readable(&c->io, events);
	progress(c);
}

/* ---- lifecycle ---- */

void conn_format_ip(const struct sockaddr *addr, char *out, size_t n)
{
	out[0] = '\0';
	if (addr->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, out,
		          (socklen_t)n);
	} else if (addr->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a))
			inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)n);
		else
			inet_ntop(AF_INET6, a, out, (socklen_t)n);
	}
}

void conn_accept(struct loop *l, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct loop_env *env = loop_env(l);
	(void)addrlen;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->loop = l;
	c->fd = fd;
	c->handler.on_event = on_event;
	c->timer.heap_index = SIZE_MAX;
	c->timer.fire = on_timer;
	buf_init(&c->out, 0);
	buf_init(&c->body, 0);
	buf_init(&c->resp.body, 0);
	conn_format_ip(addr, c->ip, sizeof(c->ip));
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->tls = loop_tls(l);
	tls_server_retain(c->tls);
	mbedtls_ssl_init(&c->ssl); /* set up by start_tls once TLS bytes arrive */
	sock_io_init(&c->io, fd);
	atomic_init(&c->hs_cancel, false);
	if (loop_watch(l, fd, &c->handler) != 0) {
		mbedtls_ssl_free(&c->ssl);
		tls_server_release(c->tls);
		free(c);
		goto fail;
	}
	c->phase = PHASE_HANDSHAKE;
	c->accepted_ms = loop_now_ms(l);
	loop_conn_add(l, &c->link);
	loop_shed_add(l, &c->shed_link);
	metrics_connection(1);
	arm(c, env->handshake_timeout_ms, false);
	progress(c);
	return;
fail:
	close(fd);
	atomic_fetch_sub(&env->connections, 1);
}

bool conn_shed(struct loop_link *link)
{
	static struct log_limit site = LOG_LIMIT_INIT;
	struct conn *c = container_of(link, struct conn, shed_link);
	bool idle = c->phase == PHASE_READ_HEAD && !c->in_len && c->out_off >= c->out.len;
	if (c->phase != PHASE_HANDSHAKE && !idle)
		return false;
	log_limited(&site, LOG_LEVEL_WARN,
	            "connection limit (server.max_connections %u) reached: closed a connection "
	            "from %s %s after %.1f s, to admit a new one",
	            loop_env(c->loop)->max_connections, c->ip,
	            c->phase == PHASE_HANDSHAKE ? "that had not finished its TLS handshake"
	                                        : "idle with an identity that has no policy",
	            (double)(loop_now_ms(c->loop) - c->accepted_ms) / 1000.0);
	metrics_count_conn_refused(METRICS_REFUSED_SHED);
	close_now(c);
	return true;
}

bool conn_drain(struct loop_link *link, bool force, const char **method, const char **route)
{
	struct conn *c = container_of(link, struct conn, link);
	if (c->phase == PHASE_CLOSED)
		return false;
	c->draining = true;
	c->close_after = true;
	bool idle = c->phase == PHASE_HANDSHAKE || c->phase == PHASE_STREAM ||
	            (c->phase == PHASE_READ_HEAD && !c->in_len && c->out_off >= c->out.len);
	if (!force && !idle)
		return false;
	/* begin_request took a state reference that end_request gives back: in between, the
	 * request has no answer yet. */
	bool abandoned = c->req_state != NULL && !c->timed_out; /* a 504 is an answer */
	if (abandoned) {
		const char *arg;
		int i = router_match(c->req.path, &arg);
		*method = c->req.method;
		*route = i >= 0 ? router_route_at((size_t)i)->path : c->req.path;
	}
	close_now(c);
	return abandoned;
}

void conn_stream_pump(struct loop_link *link)
{
	struct conn *c = container_of(link, struct conn, stream_link);
	if (c->phase != PHASE_STREAM || !c->sub)
		return;
	/* Checked before every line: a reload may have taken the identity out of the view the
	 * stream was opened for, and the lines now queued may be another tenant's. */
	if (!router_stream_still_allowed(loop_state(c->loop), c->identity,
	                                 c->sub_kind == LOG_KIND_AUDIT ? "/v1/log/audit"
	                                                               : "/v1/log/error",
	                                 log_subscriber_tenant(c->sub))) {
		close_now(c);
		return;
	}
	struct buf lines;
	buf_init(&lines, 0);
	size_t events = log_subscriber_drain(c->sub, &lines);
	if (lines.len && c->out.len - c->out_off < LIMIT_STREAM_OUTPUT_BYTES) {
		buf_printf(&c->out, "%zx\r\n", lines.len);
		buf_append(&c->out, lines.data, lines.len);
		buf_append_str(&c->out, "\r\n");
		/* KES counts kes_log_*_events where it writes them to a subscriber. */
		metrics_log_streamed(c->sub_kind == LOG_KIND_AUDIT, events);
	}
	buf_free(&lines);
	progress(c);
}

void conn_resume(struct loop_link *link)
{
	progress(container_of(link, struct conn, ready_link));
}

void conn_free(struct loop_link *link)
{
	struct conn *c = container_of(link, struct conn, link);
	end_request(c);
	mbedtls_ssl_free(&c->ssl);
	sock_io_free(&c->io);
	tls_server_release(c->tls);
	if (c->in) {
		secure_zero(c->in, c->in_cap);
		free(c->in);
	}
	buf_free(&c->out);
	buf_free(&c->body);
	buf_free(&c->resp.body);
	free(c);
}
