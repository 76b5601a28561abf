/*
 * loadgen.c — closed-loop HTTPS load with a client certificate (OpenSSL), for comparing kesc
 * with an nginx mTLS baseline on the same machine with the same certificates.
 *
 *   loadgen --port 7373 --path /v1/key/generate/k --method POST --body '{}'
 *           --cert client.crt --key client.key [-c 64] [-t THREADS] [-d 10] [--warmup 1]
 *           [--mode keepalive|handshake|resume] [--groups X25519:P-256] [--storm N]
 *           [--idle N] [--total N] [--burst] [--server-pid PID]
 *
 * Why OpenSSL: the client runs on the same cores as the server, so it must cost less per
 * request than the server or it, not the server, sets the rate. An mbedTLS client spent more
 * CPU per request than either server and capped both at the same rate. The report therefore
 * carries the client's own CPU per request (getrusage of this process) next to the server's
 * (/proc/PID/stat of --server-pid and its children), both over exactly the measured window.
 *
 * Modes:
 *  keepalive  every connection stays open; requests go back to back (closed loop). The
 *             connections are spread over -t threads (default 1 per 16 connections, at most
 *             the number of cores), each an edge-triggered epoll loop: one epoll_wait serves
 *             every connection that is ready, so the client pays a write and a read per
 *             request and not a thread wake-up.
 *  handshake  a new TCP connection and full TLS 1.2 mTLS handshake per request, one blocking
 *             thread per connection (the handshake's crypto dwarfs a thread switch).
 *  resume     the same, resuming the first session's ticket (abbreviated handshake).
 * --storm N   adds N threads doing full handshakes back to back during the run, measured
 *             separately (storm_*): the reconnect storm whose effect on the main group's
 *             latency is the point.
 * --idle N    opens N extra connections before the run (8 threads, resuming one session per
 *             thread), sends one request on each so the server treats them as idle keep-alive
 *             connections, holds them during the run and counts those still open at the end.
 * --total N   stops after N requests in all (no warm-up; the run is the whole time). A "%d" in
 *             --path is replaced by a sequence number 0..N-1, one per request: creating or
 *             reading N distinct keys.
 * --burst     every connection first connects, then all send at once (a burst on one key);
 *             with --total N and -c N each connection sends exactly one request.
 *
 * The client offers X25519 then P-256 (--groups), as Go's crypto/tls does, and the suites of
 * Go's TLS 1.2 defaults that both servers have; both servers follow the client's order.
 *
 * Prints one line of key=value pairs: requests, errors, seconds, rps, p50_us, p99_us, p999_us,
 * max_us, wmin/wmax (fewest and most requests one connection completed: fairness), client_cpu_s
 * and client_us (client CPU per completed request, main and storm group together), server_cpu_s
 * and server_us (likewise, with --server-pid), storm_requests, storm_errors, storm_rps,
 * storm_p50_us, storm_p99_us, idle_open, idle_alive, cipher and group (of the last handshake).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

enum mode { MODE_KEEPALIVE, MODE_HANDSHAKE, MODE_RESUME };

struct options {
	const char *host, *path, *method, *body, *cert, *key, *groups;
	int port, conns, threads, idle, storm, server_pid;
	double duration, warmup;
	long total;
	bool burst;
	enum mode mode;
};

static struct options opt = {
    .host = "127.0.0.1",
    .port = 7373,
    .path = "/v1/status",
    .method = "GET",
    .body = "",
    .groups = "X25519:P-256",
    .conns = 1,
    .duration = 5,
    .warmup = 1,
    .mode = MODE_KEEPALIVE,
};

#define IDLE_THREADS 8
#define RESPONSE_MAX 65536
#define SUITES                                                         \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305"

static SSL_CTX *ctx;
static bool path_has_seq;
static atomic_long next_seq;
static atomic_bool measuring, stopping;
static pthread_barrier_t burst_start;
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_cipher[64] = "-", last_group[32] = "-";

/* Latencies of one group of connections, in microseconds. */
struct samples {
	uint32_t *lat;
	size_t n, cap;
	long requests, errors;
};

struct conn {
	int fd;
	SSL *ssl;
	double t0;
	size_t len;
	long done; /* requests completed while measuring */
	bool busy; /* a request is outstanding */
	char req[8192];
	size_t req_len;
	char buf[RESPONSE_MAX];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void samples_add(struct samples *s, double seconds)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 65536;
		s->lat = realloc(s->lat, s->cap * sizeof *s->lat);
		if (!s->lat)
			die("out of memory");
	}
	s->lat[s->n++] = (uint32_t)(seconds * 1e6);
}

static void samples_merge(struct samples *into, const struct samples *from)
{
	for (size_t i = 0; i < from->n; i++)
		samples_add(into, from->lat[i] / 1e6);
	into->requests += from->requests;
	into->errors += from->errors;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static uint32_t samples_pct(const struct samples *s, double p)
{
	return s->n ? s->lat[(size_t)((double)(s->n - 1) * p)] : 0;
}

static int tcp_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
	inet_pton(AF_INET, opt.host, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* Ends the connection. keep: the SSL object stays for the next connection (SSL_clear), which
 * spares the client an SSL_new and SSL_free per handshake. */
static void conn_end(struct conn *c, bool keep)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* close_notify, as Go sends; no wait for the peer's */
		if (!keep) {
			SSL_free(c->ssl);
			c->ssl = NULL;
		}
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void conn_close(struct conn *c)
{
	conn_end(c, false);
}

static void note_handshake(SSL *ssl)
{
	pthread_mutex_lock(&last_lock);
	snprintf(last_cipher, sizeof last_cipher, "%s", SSL_get_cipher_name(ssl));
	/* The server's ephemeral key names the key exchange (a resumed session has none). */
	EVP_PKEY *tmp = NULL;
	if (SSL_get_peer_tmp_key(ssl, &tmp) == 1 && tmp) {
		char g[32];
		size_t glen;
		if (EVP_PKEY_get_group_name(tmp, g, sizeof g, &glen) == 1)
			snprintf(last_group, sizeof last_group, "%s", g);
		else
			snprintf(last_group, sizeof last_group, "%s", EVP_PKEY_get0_type_name(tmp));
		EVP_PKEY_free(tmp);
	}
	pthread_mutex_unlock(&last_lock);
}

/* Connects and handshakes on a blocking socket. *session: resume it if set; store the new
 * session there if it was NULL. */
static int conn_open(struct conn *c, SSL_SESSION **session)
{
	c->fd = tcp_connect();
	if (c->fd < 0)
		return -1;
	if (!c->ssl)
		c->ssl = SSL_new(ctx);
	else if (!SSL_clear(c->ssl))
		goto fail;
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
		goto fail;
	/* SSL_clear keeps the last session: a full handshake must not offer it. */
	if (!SSL_set_session(c->ssl, session ? *session : NULL))
		goto fail;
	if (SSL_connect(c->ssl) != 1)
		goto fail;
	if (session && !*session)
		*session = SSL_get1_session(c->ssl);
	return 0;
fail:
	ERR_clear_error();
	conn_close(c);
	return -1;
}

/* Builds the next request into c->req; false when --total is reached. */
static bool conn_next_request(struct conn *c)
{
	long seq = 0;
	if (opt.total || path_has_seq) {
		seq = atomic_fetch_add(&next_seq, 1);
		if (opt.total && seq >= opt.total)
			return false;
	}
	if (c->req_len && !path_has_seq)
		return true; /* the same bytes every time */
	char path[1024];
	if (path_has_seq) {
		const char *pct = strstr(opt.path, "%d");
		snprintf(path, sizeof path, "%.*s%ld%s", (int)(pct - opt.path), opt.path, seq,
		         pct + 2);
	} else {
		snprintf(path, sizeof path, "%s", opt.path);
	}
	int n = snprintf(c->req, sizeof c->req,
	                 "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\n\r\n%s",
	                 opt.method, path, opt.host, strlen(opt.body), opt.body);
	if (n < 0 || (size_t)n >= sizeof c->req)
		die("request too long");
	c->req_len = (size_t)n;
	return true;
}

static int conn_send(struct conn *c)
{
	/* SSL_MODE_ENABLE_PARTIAL_WRITE is off: one call writes the whole request or fails. */
	int n = SSL_write(c->ssl, c->req, (int)c->req_len);
	return n == (int)c->req_len ? 0 : -1;
}

/* 1 when c->buf holds a whole response (status 2xx: *ok = true), 0 when more is needed. */
static int response_complete(struct conn *c, bool *ok)
{
	c->buf[c->len] = 0;
	char *end = strstr(c->buf, "\r\n\r\n");
	if (!end)
		return 0;
	size_t head = (size_t)(end - c->buf) + 4, body = 0;
	char *cl = strcasestr(c->buf, "\r\ncontent-length:");
	if (cl && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	if (c->len - head < body)
		return 0;
	*ok = c->len > 12 && c->buf[9] == '2';
	return 1;
}

/* Blocking: reads one whole response. 0 on a 2xx. */
static int conn_read_response(struct conn *c)
{
	c->len = 0;
	for (;;) {
		if (c->len >= sizeof c->buf - 1)
			return -1;
		int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - 1 - c->len));
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
		bool ok;
		if (response_complete(c, &ok))
			return ok ? 0 : -1;
	}
}

static void set_nonblocking(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* ---- keep-alive: epoll loops ---------------------------------------------------------- */

struct loop_thread {
	pthread_t thread;
	struct conn *conns;
	int nconns;
	struct samples s;
};

/* (Re)opens c blocking, then makes it non-blocking and registers it. */
static int ka_open(int ep, struct conn *c)
{
	if (conn_open(c, NULL) != 0)
		return -1;
	set_nonblocking(c->fd, true);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = c};
	note_handshake(c->ssl);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static void ka_start_request(struct loop_thread *lt, int ep, struct conn *c)
{
	c->busy = false;
	while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
		if (!conn_next_request(c))
			return;
		if (c->fd < 0 && ka_open(ep, c) != 0) {
			if (atomic_load(&measuring) || opt.total)
				lt->s.requests++, lt->s.errors++;
			usleep(1000);
			continue;
		}
		c->len = 0;
		c->t0 = now_s();
		if (conn_send(c) == 0) {
			c->busy = true;
			return;
		}
		ERR_clear_error();
		conn_close(c);
	}
}

/* Reads what the socket has (edge-triggered: until WANT_READ); on a whole response, records it
 * and sends the next request. */
static void ka_readable(struct loop_thread *lt, int ep, struct conn *c)
{
	while (c->busy) {
		if (c->len >= sizeof c->buf - 1)
			goto failed;
		int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - 1 - c->len));
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				return;
			goto failed;
		}
		c->len += (size_t)n;
		bool ok;
		if (!response_complete(c, &ok))
			continue;
		if (atomic_load_explicit(&measuring, memory_order_relaxed) || opt.total) {
			lt->s.requests++;
			c->done++;
			if (ok)
				samples_add(&lt->s, now_s() - c->t0);
			else
				lt->s.errors++;
		}
		/* The next response arrives as a new edge: no read that would find nothing now. */
		ka_start_request(lt, ep, c);
		return;
	}
	return;
failed:
	ERR_clear_error();
	if (atomic_load(&measuring) || opt.total)
		lt->s.requests++, lt->s.errors++;
	conn_close(c); /* close() removes it from the epoll set */
	ka_start_request(lt, ep, c);
}

static bool ka_any_busy(const struct loop_thread *lt)
{
	for (int i = 0; i < lt->nconns; i++)
		if (lt->conns[i].busy)
			return true;
	return false;
}

static void *ka_main(void *arg)
{
	struct loop_thread *lt = arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	for (int i = 0; i < lt->nconns; i++) {
		struct conn *c = &lt->conns[i];
		c->fd = -1;
		if (ka_open(ep, c) != 0)
			c->fd = -1; /* retried (and counted) when it sends */
	}
	if (opt.burst)
		pthread_barrier_wait(&burst_start);
	for (int i = 0; i < lt->nconns; i++)
		ka_start_request(lt, ep, &lt->conns[i]);
	struct epoll_event evs[64];
	while (!atomic_load_explicit(&stopping, memory_order_relaxed) && ka_any_busy(lt)) {
		int n = epoll_wait(ep, evs, 64, 100);
		for (int i = 0; i < n; i++)
			ka_readable(lt, ep, evs[i].data.ptr);
	}
	for (int i = 0; i < lt->nconns; i++)
		conn_close(&lt->conns[i]);
	close(ep);
	return NULL;
}

/* ---- handshake per request: blocking threads ------------------------------------------ */

struct hs_thread {
	pthread_t thread;
	bool resume, noted;
	long done;
	struct conn c;
	struct samples s;
};

static void *hs_main(void *arg)
{
	struct hs_thread *h = arg;
	SSL_SESSION *session = NULL;
	struct conn *c = &h->c;
	c->fd = -1;
	while (!atomic_load(&stopping)) {
		if (!conn_next_request(c))
			break;
		double t0 = now_s();
		int ok = conn_open(c, h->resume ? &session : NULL);
		if (ok == 0) {
			if (!h->noted)
				note_handshake(c->ssl), h->noted = true;
			ok = conn_send(c) == 0 ? conn_read_response(c) : -1;
		}
		conn_end(c, true);
		ERR_clear_error();
		double t1 = now_s();
		if (atomic_load(&measuring) || opt.total) {
			h->s.requests++;
			h->done++;
			if (ok == 0)
				samples_add(&h->s, t1 - t0);
			else
				h->s.errors++;
		}
		if (ok != 0 && !opt.total)
			usleep(1000);
	}
	conn_close(c);
	if (session)
		SSL_SESSION_free(session);
	return NULL;
}

/* ---- idle connections ------------------------------------------------------------------ */

struct idle_thread {
	pthread_t thread;
	struct conn *conns;
	int from, to, opened;
};

static void *idle_main(void *arg)
{
	struct idle_thread *it = arg;
	SSL_SESSION *session = NULL;
	for (int i = it->from; i < it->to; i++) {
		struct conn *c = &it->conns[i];
		c->fd = -1;
		if (conn_open(c, &session) != 0)
			continue;
		conn_next_request(c);
		if (conn_send(c) != 0 || conn_read_response(c) != 0) {
			conn_close(c);
			continue;
		}
		it->opened++;
	}
	if (session)
		SSL_SESSION_free(session);
	return NULL;
}

/* ---- CPU accounting -------------------------------------------------------------------- */

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long proc_ticks(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long utime = 0, stime = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
	                 &stime) != 2)
		return 0;
	return (long)(utime + stime);
}

/* User + system CPU seconds of the server and its children (nginx: master and workers). */
static double server_cpu_s(void)
{
	if (!opt.server_pid)
		return 0;
	long ticks = proc_ticks(opt.server_pid);
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", opt.server_pid, opt.server_pid);
	FILE *f = fopen(path, "r");
	if (f) {
		int child;
		while (fscanf(f, "%d", &child) == 1)
			ticks += proc_ticks(child);
		fclose(f);
	}
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* ---- main ------------------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
	        "usage: loadgen [--host H] [--port P] [--path P] [--method M] [--body B]\n"
	        "  --cert F --key F [-c CONNS] [-t THREADS] [-d SECONDS] [--warmup S]\n"
	        "  [--mode keepalive|handshake|resume] [--groups G1:G2] [--storm N] [--idle N]\n"
	        "  [--total N] [--burst] [--server-pid PID]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--burst")) {
			opt.burst = true;
			continue;
		}
		const char *v = i + 1 < argc ? argv[++i] : NULL;
		if (!v)
			usage();
		if (!strcmp(a, "--host"))
			opt.host = v;
		else if (!strcmp(a, "--port"))
			opt.port = atoi(v);
		else if (!strcmp(a, "--path"))
			opt.path = v;
		else if (!strcmp(a, "--method"))
			opt.method = v;
		else if (!strcmp(a, "--body"))
			opt.body = v;
		else if (!strcmp(a, "--cert"))
			opt.cert = v;
		else if (!strcmp(a, "--key"))
			opt.key = v;
		else if (!strcmp(a, "--groups"))
			opt.groups = v;
		else if (!strcmp(a, "-c"))
			opt.conns = atoi(v);
		else if (!strcmp(a, "-t"))
			opt.threads = atoi(v);
		else if (!strcmp(a, "-d"))
			opt.duration = atof(v);
		else if (!strcmp(a, "--warmup"))
			opt.warmup = atof(v);
		else if (!strcmp(a, "--idle"))
			opt.idle = atoi(v);
		else if (!strcmp(a, "--storm"))
			opt.storm = atoi(v);
		else if (!strcmp(a, "--total"))
			opt.total = atol(v);
		else if (!strcmp(a, "--server-pid"))
			opt.server_pid = atoi(v);
		else if (!strcmp(a, "--mode")) {
			if (!strcmp(v, "keepalive"))
				opt.mode = MODE_KEEPALIVE;
			else if (!strcmp(v, "handshake"))
				opt.mode = MODE_HANDSHAKE;
			else if (!strcmp(v, "resume"))
				opt.mode = MODE_RESUME;
			else
				usage();
		} else
			usage();
	}
	if (opt.conns < 1 || opt.storm < 0 || opt.idle < 0 || opt.total < 0)
		usage();
	if (opt.burst && opt.mode != MODE_KEEPALIVE)
		usage();
	const char *pct = strchr(opt.path, '%');
	if (pct) {
		/* Exactly one %d and nothing else a format would read. */
		if (pct[1] != 'd' || strchr(pct + 2, '%'))
			usage();
		path_has_seq = true;
	}
}

static void ctx_init(void)
{
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new");
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION))
		die("TLS 1.2");
	if (!SSL_CTX_set_cipher_list(ctx, SUITES))
		die("cipher suites");
	if (!SSL_CTX_set1_groups_list(ctx, opt.groups))
		die("--groups: unknown group");
	if (opt.cert && SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1)
		die(opt.cert);
	if (opt.key && SSL_CTX_use_PrivateKey_file(ctx, opt.key, SSL_FILETYPE_PEM) != 1)
		die(opt.key);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* Read whole records (and what follows) in one recv instead of header then body. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* Sessions are kept by hand (resume mode); none is cached behind the run's back. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

static int open_idle(struct idle_thread *it, struct conn **idle)
{
	int opened = 0;
	*idle = calloc((size_t)opt.idle, sizeof **idle);
	if (!*idle)
		die("out of memory");
	for (int t = 0; t < IDLE_THREADS; t++) {
		it[t].conns = *idle;
		it[t].from = opt.idle * t / IDLE_THREADS;
		it[t].to = opt.idle * (t + 1) / IDLE_THREADS;
		pthread_create(&it[t].thread, NULL, idle_main, &it[t]);
	}
	for (int t = 0; t < IDLE_THREADS; t++) {
		pthread_join(it[t].thread, NULL);
		opened += it[t].opened;
	}
	fprintf(stderr, "loadgen: holding %d idle connections\n", opened);
	return opened;
}

static int idle_count_alive(const struct conn *idle)
{
	int alive = 0;
	for (int i = 0; i < opt.idle; i++) {
		if (idle[i].fd < 0)
			continue;
		char b;
		ssize_t r = recv(idle[i].fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			alive++;
	}
	return alive;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	struct rlimit rl = {200000, 200000};
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ctx_init();

	struct idle_thread it[IDLE_THREADS];
	struct conn *idle = NULL;
	int idle_open = opt.idle > 0 ? open_idle(it, &idle) : 0;

	/* Main group. */
	int nthreads = 0;
	struct loop_thread *lts = NULL;
	struct hs_thread *hss = NULL;
	if (opt.mode == MODE_KEEPALIVE) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = opt.threads > 0 ? opt.threads : (opt.conns + 15) / 16;
		if (!opt.threads && nthreads > cores)
			nthreads = (int)cores;
		if (nthreads > opt.conns)
			nthreads = opt.conns;
		lts = calloc((size_t)nthreads, sizeof *lts);
		struct conn *conns = calloc((size_t)opt.conns, sizeof *conns);
		if (!lts || !conns)
			die("out of memory");
		if (opt.burst)
			pthread_barrier_init(&burst_start, NULL, (unsigned)nthreads + 1);
		for (int t = 0; t < nthreads; t++) {
			int from = opt.conns * t / nthreads, to = opt.conns * (t + 1) / nthreads;
			lts[t].conns = conns + from;
			lts[t].nconns = to - from;
			pthread_create(&lts[t].thread, NULL, ka_main, &lts[t]);
		}
	} else {
		nthreads = opt.conns;
		hss = calloc((size_t)nthreads, sizeof *hss);
		if (!hss)
			die("out of memory");
		for (int t = 0; t < nthreads; t++) {
			hss[t].resume = opt.mode == MODE_RESUME;
			pthread_create(&hss[t].thread, NULL, hs_main, &hss[t]);
		}
	}
	struct hs_thread *storm = opt.storm ? calloc((size_t)opt.storm, sizeof *storm) : NULL;
	for (int t = 0; t < opt.storm; t++)
		pthread_create(&storm[t].thread, NULL, hs_main, &storm[t]);

	double start, elapsed = 0, cpu0, srv0;
	if (opt.total) {
		if (opt.burst)
			pthread_barrier_wait(&burst_start);
		start = now_s();
		cpu0 = self_cpu_s();
		srv0 = server_cpu_s();
	} else {
		usleep((useconds_t)(opt.warmup * 1e6));
		start = now_s();
		cpu0 = self_cpu_s();
		srv0 = server_cpu_s();
		atomic_store(&measuring, true);
		usleep((useconds_t)(opt.duration * 1e6));
		atomic_store(&measuring, false);
	}
	double cpu1 = 0, srv1 = 0;
	if (!opt.total) {
		cpu1 = self_cpu_s();
		srv1 = server_cpu_s();
		elapsed = now_s() - start;
		atomic_store(&stopping, true);
	}

	struct samples all = {0}, st = {0};
	long wmin = -1, wmax = 0;
	if (lts) {
		for (int t = 0; t < nthreads; t++) {
			pthread_join(lts[t].thread, NULL);
			samples_merge(&all, &lts[t].s);
			for (int i = 0; i < lts[t].nconns; i++) {
				long d = lts[t].conns[i].done;
				wmin = wmin < 0 || d < wmin ? d : wmin;
				wmax = d > wmax ? d : wmax;
			}
		}
	} else {
		for (int t = 0; t < nthreads; t++) {
			pthread_join(hss[t].thread, NULL);
			samples_merge(&all, &hss[t].s);
			wmin = wmin < 0 || hss[t].done < wmin ? hss[t].done : wmin;
			wmax = hss[t].done > wmax ? hss[t].done : wmax;
		}
	}
	if (opt.total) {
		/* The storm (if any) runs as long as the main group. */
		atomic_store(&stopping, true);
		cpu1 = self_cpu_s();
		srv1 = server_cpu_s();
		elapsed = now_s() - start;
	}
	for (int t = 0; t < opt.storm; t++) {
		pthread_join(storm[t].thread, NULL);
		samples_merge(&st, &storm[t].s);
	}
	if (all.n)
		qsort(all.lat, all.n, sizeof *all.lat, cmp_u32);
	if (st.n)
		qsort(st.lat, st.n, sizeof *st.lat, cmp_u32);
	int idle_alive = idle ? idle_count_alive(idle) : 0;
	long done = (all.requests - all.errors) + (st.requests - st.errors);
	double per = done > 0 ? 1e6 / (double)done : 0;
	pthread_mutex_lock(&last_lock);
	printf("requests=%ld errors=%ld seconds=%.3f rps=%.0f p50_us=%u p99_us=%u p999_us=%u"
	       " max_us=%u wmin=%ld wmax=%ld client_cpu_s=%.3f client_us=%.1f server_cpu_s=%.3f"
	       " server_us=%.1f storm_requests=%ld storm_errors=%ld storm_rps=%.0f"
	       " storm_p50_us=%u storm_p99_us=%u idle_open=%d idle_alive=%d cipher=%s group=%s\n",
	       all.requests, all.errors, elapsed, (double)(all.requests - all.errors) / elapsed,
	       samples_pct(&all, 0.50), samples_pct(&all, 0.99), samples_pct(&all, 0.999),
	       samples_pct(&all, 1.0), wmin < 0 ? 0 : wmin, wmax, cpu1 - cpu0, (cpu1 - cpu0) * per,
	       srv1 - srv0, (srv1 - srv0) * per, st.requests, st.errors,
	       (double)(st.requests - st.errors) / elapsed, samples_pct(&st, 0.50),
	       samples_pct(&st, 0.99), idle_open, idle_alive, last_cipher, last_group);
	pthread_mutex_unlock(&last_lock);
	fflush(stdout);

	for (int i = 0; i < opt.idle; i++)
		conn_close(&idle[i]);
	free(idle);
	if (lts) {
		for (int t = 0; t < nthreads; t++)
			free(lts[t].s.lat);
		free(lts[0].conns); /* one array, spread over the threads */
		free(lts);
	}
	for (int t = 0; hss && t < nthreads; t++)
		free(hss[t].s.lat);
	for (int t = 0; t < opt.storm; t++)
		free(storm[t].s.lat);
	free(hss);
	free(storm);
	free(all.lat);
	free(st.lat);
	SSL_CTX_free(ctx);
	return all.errors && all.requests == all.errors ? 1 : 0;
}
