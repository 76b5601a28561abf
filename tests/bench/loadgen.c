/*
 * loadgen.c — closed-loop HTTPS load with a client certificate, for comparing kesc with an
 * nginx mTLS baseline on the same machine with the same certificates.
 *
 *   loadgen --host 127.0.0.1 --port 7373 --path /v1/key/generate/k --method POST --body '{}'
 *           --cert client.crt --key client.key [--ca ca.crt] [-c 64] [-d 10] [--warmup 1]
 *           [--mode keepalive|handshake|resume] [--idle N] [--requests N]
 *
 * Modes: keepalive sends every request of a worker on one connection; handshake opens a new
 * connection with a full TLS handshake for every request; resume does the same but resumes
 * the first session (session ticket), measuring abbreviated handshakes. --idle N opens N extra
 * connections before the run (from IDLE_THREADS threads, resuming one session per thread so
 * that opening 10,000 takes seconds, not a minute of full handshakes), sends one request on
 * each so that the server treats it as an idle keep-alive connection (idle timeout, 90 s)
 * rather than one that never sent a request (header timeout, 5 s), and holds them during the
 * run. --requests N makes each worker stop after N requests (for burst tests) instead of
 * running for the duration; its workers connect first and then start together, so that the
 * first requests of all workers arrive at once (a burst on one key).
 *
 * The client offers X25519 and P-256 only, in that order, as Go's crypto/tls does: the
 * baseline (OpenSSL honours the client's order) and kesc then do the same key exchange.
 *
 * Prints one line of key=value pairs: requests, errors, seconds, rps, p50_us, p99_us, p999_us,
 * idle_open, idle_alive, and wmin/wmax, the fewest and most requests one worker completed
 * (a server that serves some connections and starves others shows wmin far below wmax).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

enum mode { MODE_KEEPALIVE, MODE_HANDSHAKE, MODE_RESUME };

struct options {
	const char *host, *path, *method, *body, *cert, *key, *ca;
	int port, conns, idle;
	double duration, warmup;
	long requests;
	enum mode mode;
};

static struct options opt = {
    .host = "127.0.0.1",
    .port = 7373,
    .path = "/v1/status",
    .method = "GET",
    .body = "",
    .conns = 1,
    .duration = 5,
    .warmup = 1,
    .mode = MODE_KEEPALIVE,
};

#define IDLE_THREADS 8

static const mbedtls_ecp_group_id CLIENT_CURVES[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_NONE,
};

static mbedtls_x509_crt client_crt, ca_crt;
static mbedtls_pk_context client_key;
static char request[8192];
static size_t request_len;
static atomic_bool measuring, stopping;
/* --requests: every worker connects first, then all send at once (a burst on one key). */
static pthread_barrier_t burst_start;

struct worker {
	pthread_t thread;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_ssl_session session;
	bool have_session;
	uint32_t *lat; /* microseconds */
	size_t nlat, cap;
	long requests, errors;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int ret)
{
	char buf[128];
	mbedtls_strerror(ret, buf, sizeof buf);
	fprintf(stderr, "loadgen: %s: %s (%d)\n", what, buf, ret);
	exit(1);
}

static int tcp_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
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

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);
	return n < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)n;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	ssize_t n = recv(*(int *)ctx, buf, len, 0);
	if (n == 0)
		return MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY;
	return n < 0 ? MBEDTLS_ERR_NET_RECV_FAILED : (int)n;
}

struct conn {
	int fd;
	mbedtls_ssl_context ssl;
};

static int conn_open(struct worker *w, struct conn *c, bool resume)
{
	c->fd = tcp_connect();
	if (c->fd < 0)
		return -1;
	mbedtls_ssl_init(&c->ssl);
	if (mbedtls_ssl_setup(&c->ssl, &w->conf) != 0)
		goto fail;
	mbedtls_ssl_set_bio(&c->ssl, &c->fd, bio_send, bio_recv, NULL);
	if (resume && w->have_session && mbedtls_ssl_set_session(&c->ssl, &w->session) != 0)
		goto fail;
	int ret;
	while ((ret = mbedtls_ssl_handshake(&c->ssl)) != 0)
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			goto fail;
	if (resume && !w->have_session) {
		if (mbedtls_ssl_get_session(&c->ssl, &w->session) == 0)
			w->have_session = true;
	}
	return 0;
fail:
	mbedtls_ssl_free(&c->ssl);
	close(c->fd);
	c->fd = -1;
	return -1;
}

static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	mbedtls_ssl_close_notify(&c->ssl);
	mbedtls_ssl_free(&c->ssl);
	close(c->fd);
	c->fd = -1;
}

/* Sends the request and reads one response (headers + Content-Length body). 0 on a 2xx. */
static int conn_roundtrip(struct conn *c)
{
	size_t off = 0;
	while (off < request_len) {
		int n = mbedtls_ssl_write(&c->ssl, (const unsigned char *)request + off,
		                          request_len - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	char buf[65536];
	size_t len = 0;
	char *end = NULL;
	while (!end) {
		if (len == sizeof buf - 1)
			return -1;
		int n = mbedtls_ssl_read(&c->ssl, (unsigned char *)buf + len, sizeof buf - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = 0;
		end = strstr(buf, "\r\n\r\n");
	}
	int status = atoi(buf + 9);
	size_t header_len = (size_t)(end - buf) + 4;
	size_t body = 0;
	char *cl = strcasestr(buf, "\r\ncontent-length:");
	if (cl && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	while (len - header_len < body) {
		int n = mbedtls_ssl_read(&c->ssl, (unsigned char *)buf,
		                         body - (len - header_len) < sizeof buf
		                             ? body - (len - header_len)
		                             : sizeof buf);
		if (n <= 0)
			return -1;
		len += (size_t)n;
	}
	return status >= 200 && status < 300 ? 0 : -1;
}

static void record(struct worker *w, double seconds)
{
	if (w->nlat == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 65536;
		w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
		if (!w->lat)
			exit(1);
	}
	w->lat[w->nlat++] = (uint32_t)(seconds * 1e6);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn c = {.fd = -1};
	long done = 0;
	if (opt.requests) {
		if (opt.mode == MODE_KEEPALIVE && conn_open(w, &c, false) != 0)
			c.fd = -1; /* retried (and counted) in the loop */
		pthread_barrier_wait(&burst_start);
	}
	while (!atomic_load(&stopping)) {
		if (opt.requests && done >= opt.requests)
			break;
		double t0 = now_s();
		int ok = 0;
		if (opt.mode == MODE_KEEPALIVE) {
			if (c.fd < 0 && conn_open(w, &c, false) != 0) {
				ok = -1;
			} else {
				ok = conn_roundtrip(&c);
				if (ok != 0)
					conn_close(&c);
			}
		} else {
			ok = conn_open(w, &c, opt.mode == MODE_RESUME);
			if (ok == 0)
				ok = conn_roundtrip(&c);
			conn_close(&c);
		}
		double t1 = now_s();
		done++;
		if (atomic_load(&measuring) || opt.requests) {
			w->requests++;
			if (ok != 0)
				w->errors++;
			else
				record(w, t1 - t0);
		}
		if (ok != 0 && !opt.requests)
			usleep(1000);
	}
	conn_close(&c);
	return NULL;
}

static void worker_init(struct worker *w)
{
	memset(w, 0, sizeof *w);
	mbedtls_entropy_init(&w->entropy);
	mbedtls_ctr_drbg_init(&w->drbg);
	if (mbedtls_ctr_drbg_seed(&w->drbg, mbedtls_entropy_func, &w->entropy, NULL, 0) != 0)
		die("drbg", 0);
	mbedtls_ssl_config_init(&w->conf);
	int ret =
	    mbedtls_ssl_config_defaults(&w->conf, MBEDTLS_SSL_IS_CLIENT,
	                                MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret)
		die("ssl config", ret);
	mbedtls_ssl_conf_rng(&w->conf, mbedtls_ctr_drbg_random, &w->drbg);
	mbedtls_ssl_conf_min_version(&w->conf, 3, 3);
	mbedtls_ssl_conf_curves(&w->conf, CLIENT_CURVES);
	if (opt.ca) {
		mbedtls_ssl_conf_ca_chain(&w->conf, &ca_crt, NULL);
		mbedtls_ssl_conf_authmode(&w->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	} else {
		mbedtls_ssl_conf_authmode(&w->conf, MBEDTLS_SSL_VERIFY_NONE);
	}
	if (opt.cert && (ret = mbedtls_ssl_conf_own_cert(&w->conf, &client_crt, &client_key)))
		die("own cert", ret);
	mbedtls_ssl_conf_session_tickets(&w->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_session_init(&w->session);
}

static void worker_free(struct worker *w)
{
	mbedtls_ssl_session_free(&w->session);
	mbedtls_ssl_config_free(&w->conf);
	mbedtls_ctr_drbg_free(&w->drbg);
	mbedtls_entropy_free(&w->entropy);
}

struct idle_worker {
	pthread_t thread;
	struct worker w;
	struct conn *conns;
	int from, to, opened;
};

/* Opens conns[from, to): the first with a full handshake, the rest resuming its session. */
static void *idle_main(void *arg)
{
	struct idle_worker *iw = arg;
	for (int i = iw->from; i < iw->to; i++) {
		struct conn *c = &iw->conns[i];
		c->fd = -1;
		if (conn_open(&iw->w, c, true) != 0)
			continue;
		if (conn_roundtrip(c) != 0) {
			conn_close(c);
			continue;
		}
		iw->opened++;
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen [--host H] [--port P] [--path P] [--method M] [--body B]\n"
	                "  [--cert F --key F] [--ca F] [-c CONNS] [-d SECONDS] [--warmup S]\n"
	                "  [--mode keepalive|handshake|resume] [--idle N] [--requests N]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
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
		else if (!strcmp(a, "--ca"))
			opt.ca = v;
		else if (!strcmp(a, "-c"))
			opt.conns = atoi(v);
		else if (!strcmp(a, "-d"))
			opt.duration = atof(v);
		else if (!strcmp(a, "--warmup"))
			opt.warmup = atof(v);
		else if (!strcmp(a, "--idle"))
			opt.idle = atoi(v);
		else if (!strcmp(a, "--requests"))
			opt.requests = atol(v);
		else if (!strcmp(a, "--mode"))
			opt.mode = !strcmp(v, "handshake") ? MODE_HANDSHAKE
			           : !strcmp(v, "resume")  ? MODE_RESUME
			                                   : MODE_KEEPALIVE;
		else
			usage();
	}
	if (opt.conns < 1)
		usage();
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
	mbedtls_x509_crt_init(&client_crt);
	mbedtls_x509_crt_init(&ca_crt);
	mbedtls_pk_init(&client_key);
	int ret;
	if (opt.cert && (ret = mbedtls_x509_crt_parse_file(&client_crt, opt.cert)))
		die(opt.cert, ret);
	if (opt.key && (ret = mbedtls_pk_parse_keyfile(&client_key, opt.key, NULL)))
		die(opt.key, ret);
	if (opt.ca && (ret = mbedtls_x509_crt_parse_file(&ca_crt, opt.ca)))
		die(opt.ca, ret);
	size_t body_len = strlen(opt.body);
	int n = snprintf(request, sizeof request,
	                 "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\n\r\n%s",
	                 opt.method, opt.path, opt.host, body_len, opt.body);
	if (n < 0 || (size_t)n >= sizeof request)
		die("request too long", 0);
	request_len = (size_t)n;

	/* Idle connections: handshaken, one request answered, then left alone for the run. */
	struct idle_worker iw[IDLE_THREADS];
	struct conn *idle = NULL;
	int idle_open = 0;
	if (opt.idle > 0) {
		idle = calloc((size_t)opt.idle, sizeof *idle);
		if (!idle)
			die("out of memory", 0);
		for (int t = 0; t < IDLE_THREADS; t++) {
			iw[t].conns = idle;
			iw[t].from = opt.idle * t / IDLE_THREADS;
			iw[t].to = opt.idle * (t + 1) / IDLE_THREADS;
			worker_init(&iw[t].w);
			pthread_create(&iw[t].thread, NULL, idle_main, &iw[t]);
		}
		for (int t = 0; t < IDLE_THREADS; t++) {
			pthread_join(iw[t].thread, NULL);
			idle_open += iw[t].opened;
		}
		fprintf(stderr, "loadgen: holding %d idle connections\n", idle_open);
	}

	struct worker *workers = calloc((size_t)opt.conns, sizeof *workers);
	if (opt.requests)
		pthread_barrier_init(&burst_start, NULL, (unsigned)opt.conns + 1);
	for (int i = 0; i < opt.conns; i++) {
		worker_init(&workers[i]);
		pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
	}
	double start;
	if (opt.requests) {
		pthread_barrier_wait(&burst_start);
		start = now_s();
	} else {
		usleep((useconds_t)(opt.warmup * 1e6));
		atomic_store(&measuring, true);
		start = now_s();
		usleep((useconds_t)(opt.duration * 1e6));
		atomic_store(&measuring, false);
		atomic_store(&stopping, true);
	}
	long requests = 0, errors = 0, wmin = -1, wmax = 0;
	size_t total = 0;
	for (int i = 0; i < opt.conns; i++) {
		pthread_join(workers[i].thread, NULL);
		if (wmin < 0 || workers[i].requests < wmin)
			wmin = workers[i].requests;
		if (workers[i].requests > wmax)
			wmax = workers[i].requests;
		requests += workers[i].requests;
		errors += workers[i].errors;
		total += workers[i].nlat;
	}
	double elapsed = opt.requests ? now_s() - start : opt.duration;
	uint32_t *all = malloc((total ? total : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < opt.conns; i++) {
		memcpy(all + k, workers[i].lat, workers[i].nlat * sizeof *all);
		k += workers[i].nlat;
	}
	qsort(all, total, sizeof *all, cmp_u32);
#define PCT(p) (total ? all[(size_t)((double)(total - 1) * (p))] : 0)
	int idle_alive = 0;
	for (int i = 0; i < opt.idle; i++) {
		if (idle[i].fd >= 0) {
			/* Still open if the server has not closed it. */
			char b;
			ssize_t r = recv(idle[i].fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				idle_alive++;
		}
	}
	printf("requests=%ld errors=%ld seconds=%.2f rps=%.0f p50_us=%u p99_us=%u p999_us=%u"
	       " idle_open=%d idle_alive=%d wmin=%ld wmax=%ld\n",
	       requests, errors, elapsed, (double)(requests - errors) / elapsed, PCT(0.50),
	       PCT(0.99), PCT(0.999), idle_open, idle_alive, wmin, wmax);
	fflush(stdout);

	for (int i = 0; i < opt.idle; i++)
		conn_close(&idle[i]);
	free(idle);
	for (int i = 0; i < opt.conns; i++) {
		free(workers[i].lat);
		worker_free(&workers[i]);
	}
	if (opt.idle > 0)
		for (int t = 0; t < IDLE_THREADS; t++)
			worker_free(&iw[t].w);
	free(workers);
	free(all);
	mbedtls_x509_crt_free(&client_crt);
	mbedtls_x509_crt_free(&ca_crt);
	mbedtls_pk_free(&client_key);
	return errors && requests == errors ? 1 : 0;
}
