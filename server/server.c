/* server.c — process lifecycle: start-up, SIGHUP reload, SIGTERM drain (server.h). */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kesc_version.h"
#include "keystore/keystore.h"
#include "keystore/secmem.h"
#include "policy/identity.h"
#include "server/config_check.h"
#include "server/log.h"
#include "server/loop.h"
#include "server/metrics.h"
#include "server/sdnotify.h"
#include "server/state.h"
#include "server/tls.h"
#include "server/transport_limits.h"
#include "server/worker.h"

#define ERR_LEN 1024
/* How often the certificate and key files are checked for a change (KES re-reads them every
 * 15 minutes; a stat every few seconds is cheaper than that and picks rotations up sooner). */
#define CERT_CHECK_INTERVAL_S 10
#define MAX_LOOPS             256

struct server {
	const struct server_options *opt;
	struct server_state *state; /* current generation (the main thread's reference) */
	struct tls_server *tls;
	unsigned nloops;
	unsigned nworkers;
	struct loop *loops[MAX_LOOPS];
	int listen_fd; /* shared by the loops (loop.h) */
	struct loop_env env;
	char bound[300];
	/* The TLS files as last loaded: rotated certificates are picked up without SIGHUP. */
	struct timespec cert_mtime, key_mtime;
	time_t next_cert_check;
};

static void warn_to_log(void *arg, const char *message)
{
	(void)arg;
	log_warn("%s", message);
}

/* Start-up and reload: what config_check finds goes to the error log. */
static void check_to_log(void *arg, enum check_level level, const char *message)
{
	(void)arg;
	if (level == CHECK_ERROR)
		log_error("%s", message);
	else if (level == CHECK_WARNING)
		log_warn("%s", message);
	else
		log_info("%s", message);
}

/* --check-config: plain lines on stderr, no log set-up (it could create the log file). */
static void check_to_stderr(void *arg, enum check_level level, const char *message)
{
	static const char *const prefix[] = {"Note", "Warning", "Error"};
	(void)arg;
	fprintf(stderr, "%s: %s\n", prefix[level], message);
}

/* Keeps the first error a check reports (for a one-line reload failure). */
struct first_error {
	char *text;
	size_t len;
	bool set;
};

static void keep_first_error(void *arg, enum check_level level, const char *message)
{
	struct first_error *f = arg;
	if (level == CHECK_ERROR && !f->set) {
		snprintf(f->text, f->len, "%s", message);
		f->set = true;
	}
}

static void warn_to_stderr(void *arg, const char *message)
{
	check_to_stderr(arg, CHECK_WARNING, message);
}

int server_parse_address(const char *addr, char *host, unsigned long hostlen, unsigned *port)
{
	const char *colon;
	const char *h = addr;
	size_t hl;
	if (addr[0] == '[') {
		const char *end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return -1;
		h = addr + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - addr);
	}
	if (hl >= hostlen)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p > 65535)
		return -1;
	*port = (unsigned)p;
	return 0;
}

/* "IP:PORT" or "[IPv6]:PORT" as operators write it (an empty host is every interface). */
static void format_address(char *out, size_t n, const char *host, unsigned port)
{
	bool v6 = strchr(host, ':') != NULL;
	snprintf(out, n, "%s%s%s:%u", v6 ? "[" : "", host[0] ? host : "0.0.0.0", v6 ? "]" : "",
	         port);
}

/* The one listening socket of the process. Deliberately without SO_REUSEPORT: with it, any
 * other process of the same user could bind the same address and silently take a share of
 * the connections (and answer them from another keystore). SO_REUSEADDR only lets a restart
 * bind while old connections linger in TIME_WAIT. */
static int bind_listener(const char *host, unsigned port, struct sockaddr_storage *bound, char *err,
                         size_t errlen)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
	char where[300];
	format_address(where, sizeof(where), host, port);
	if (!host[0] || !strcmp(host, "0.0.0.0")) {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_ANY);
		v4->sin_port = htons((uint16_t)port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		len = sizeof(*v6);
	} else if (!strcmp(host, "localhost")) {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		v4->sin_port = htons((uint16_t)port);
		len = sizeof(*v4);
	} else {
		snprintf(err, errlen, "invalid listen address '%s': not an IP address", host);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		if (e == EADDRINUSE)
			snprintf(err, errlen,
			         "cannot listen on %s: address already in use (is another kesc or "
			         "another program listening there?)",
			         where);
		else
			snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	socklen_t blen = sizeof(*bound);
	if (getsockname(fd, (struct sockaddr *)bound, &blen) != 0) {
		snprintf(err, errlen, "getsockname: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static unsigned bound_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static int bind_all(struct server *s, const char *address, char *err, size_t errlen)
{
	char host[128];
	unsigned port;
	if (server_parse_address(address, host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "invalid listen address '%s'", address);
		return -1;
	}
	struct sockaddr_storage bound;
	s->listen_fd = bind_listener(host, port, &bound, err, errlen);
	if (s->listen_fd < 0)
		return -1;
	format_address(s->bound, sizeof(s->bound), host, bound_port(&bound));
	return 0;
}

/* Background keystore events (Vault re-login failures, …) into the error log. */
static void log_keystore_event(const char *message)
{
	log_error("keystore: %s", message);
}

static int load_config(const struct server_options *opt, config_warn_fn warn, struct config **out,
                       char *err, size_t errlen)
{
	if (config_load(opt->config_path, out, err, errlen, warn, NULL) < 0)
		return -1;
	if (opt->addr) {
		char *a = strdup(opt->addr);
		if (!a) {
			config_free(*out);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		free((*out)->address);
		(*out)->address = a;
	}
	return 0;
}

/* A generation: the state (owning cfg) and its TLS settings; prev (the running one, or NULL)
 * lends the views that did not change. On failure cfg is freed. */
static int build_generation(struct config *cfg, struct server_state *prev, unsigned nloops,
                            struct server_state **st_out, struct tls_server **tls_out, char *err,
                            size_t errlen)
{
	/* TLS first: it is cheap and its errors (a certificate without SAN) need no keystore. */
	struct tls_server *tls =
	    tls_server_new(cfg, config_any_route_skips_auth(cfg), nloops, err, errlen);
	if (!tls) {
		config_free(cfg);
		return -1;
	}
	struct server_state *st = server_state_new_from(cfg, prev, err, errlen);
	if (!st) {
		tls_server_release(tls);
		config_free(cfg);
		return -1;
	}
	*st_out = st;
	*tls_out = tls;
	return 0;
}

static const char *keystore_description(const struct config *cfg, char *out, size_t n)
{
	switch (cfg->keystore) {
	case CONFIG_KEYSTORE_FS:
		snprintf(out, n, "filesystem (%s)", cfg->fs_path ? cfg->fs_path : "");
		break;
	case CONFIG_KEYSTORE_VAULT:
		snprintf(out, n, "Hashicorp Vault (%s)",
		         cfg->vault.endpoint ? cfg->vault.endpoint : "");
		break;
	case CONFIG_KEYSTORE_MEM:
		snprintf(out, n, "in-memory (keys are lost on exit)");
		break;
	default:
		snprintf(out, n, "none");
	}
	return out;
}

static void print_banner(const struct server *s, const char *hardening)
{
	const struct config *cfg = server_state_config(s->state);
	char ks[512];
	char tenants[96] = "";
	if (cfg->tenant_count)
		snprintf(tenants, sizeof(tenants), "Tenants:  %zu, a quarter of the workers each\n",
		         cfg->tenant_count);
	const char *admin = cfg->admin_identity && identity_is_valid(cfg->admin_identity)
	                        ? cfg->admin_identity
	                        : "<disabled>";
	fprintf(stderr,
	        "kesc %s\n"
	        "Address:  https://%s\n"
	        "Keystore: %s\n"
	        "Admin:    %s\n"
	        "TLS:      %s\n"
	        "Memory:   %s\n"
	        "Loops:    %u event loops, %u workers, %u handshake threads\n"
	        "%s"
	        "listening on %s\n",
	        KESC_VERSION, s->bound, keystore_description(cfg, ks, sizeof(ks)), admin,
	        tls_server_summary(s->tls), hardening, s->nloops, s->nworkers, s->nloops, tenants,
	        s->bound);
	fflush(stderr);
}

/* Worker threads: more with tenants (transport_limits.h), fixed at start. */
static unsigned worker_count(const struct config *cfg, unsigned nloops)
{
	unsigned n = nloops * LIMIT_WORKERS_PER_CORE;
	if (cfg->tenant_count > 0 && n < nloops * LIMIT_TENANT_WORKERS_PER_CORE)
		n = nloops * LIMIT_TENANT_WORKERS_PER_CORE;
	if (cfg->tenant_count > 0 && n < LIMIT_TENANT_WORKERS_MIN)
		n = LIMIT_TENANT_WORKERS_MIN;
	return n < 4 ? 4 : n;
}

/* The server: section; SIGHUP applies it again (except threads, fixed at start). With tenants,
 * each tenant's keystore work gets a share of the workers (worker.h). */
static void apply_settings(struct server *s, const struct config *cfg)
{
	struct loop_env *env = &s->env;
	if (env->workers && cfg->tenant_count > 0) {
		unsigned share = s->nworkers / LIMIT_TENANT_RUNNING_SHARE;
		worker_pool_set_group_limits(env->workers, share ? share : 1,
		                             LIMIT_WORKER_QUEUE / LIMIT_TENANT_QUEUE_SHARE);
	} else if (env->workers) {
		worker_pool_set_group_limits(env->workers, 0, 0);
	}
	env->max_connections = cfg->server.max_connections ? cfg->server.max_connections
	                                                   : LIMIT_DEFAULT_MAX_CONNECTIONS;
	env->handshake_timeout_ms = cfg->server.handshake_timeout_ms > 0
	                                ? cfg->server.handshake_timeout_ms
	                                : LIMIT_HANDSHAKE_TIMEOUT_MS;
	env->header_timeout_ms = cfg->server.header_timeout_ms > 0 ? cfg->server.header_timeout_ms
	                                                           : LIMIT_HEADER_TIMEOUT_MS;
	env->idle_timeout_ms =
	    cfg->server.idle_timeout_ms > 0 ? cfg->server.idle_timeout_ms : LIMIT_IDLE_TIMEOUT_MS;
	env->drain_ms =
	    cfg->server.shutdown_timeout_ms > 0 ? cfg->server.shutdown_timeout_ms : LIMIT_DRAIN_MS;
}

static void file_mtime(const char *path, struct timespec *out)
{
	struct stat st;
	if (path && stat(path, &st) == 0)
		*out = st.st_mtim;
	else
		*out = (struct timespec){0};
}

static void remember_tls_files(struct server *s)
{
	const struct config *cfg = server_state_config(s->state);
	file_mtime(cfg->tls.cert, &s->cert_mtime);
	file_mtime(cfg->tls.key, &s->key_mtime);
	s->next_cert_check = time(NULL) + CERT_CHECK_INTERVAL_S;
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* A rotated certificate or key file: new handshakes use it, established ones are unaffected.
 * A file caught half-written fails to load and is retried once it changes again. */
static void check_tls_files(struct server *s)
{
	if (time(NULL) < s->next_cert_check)
		return;
	struct timespec cert_before = s->cert_mtime, key_before = s->key_mtime;
	remember_tls_files(s);
	if (same_time(&cert_before, &s->cert_mtime) && same_time(&key_before, &s->key_mtime))
		return;
	const struct config *cfg = server_state_config(s->state);
	char err[ERR_LEN];
	struct tls_server *tls =
	    tls_server_new(cfg, server_state_any_skip_auth(s->state), s->nloops, err, sizeof(err));
	if (!tls) {
		log_error(
		    "TLS certificate changed but cannot be loaded, keeping the current one: %s",
		    err);
		return;
	}
	for (unsigned i = 0; i < s->nloops; i++)
		loop_update(s->loops[i], s->state, tls);
	tls_server_release(s->tls);
	s->tls = tls;
	metrics_set_server_cert_expiry(metrics_cert_not_after(tls_server_cert(tls)));
	log_info("TLS certificate reloaded from '%s'", cfg->tls.cert);
}

static void reload(struct server *s)
{
	char err[ERR_LEN];
	struct config *cfg = NULL;
	struct server_state *st;
	struct tls_server *tls;
	log_info("SIGHUP: reloading '%s'", s->opt->config_path);
	/* Fail closed: a config with any error (an unknown field included) changes nothing;
	 * the running configuration stays in force, whole. */
	if (load_config(s->opt, warn_to_log, &cfg, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		metrics_count_reload(false);
		return;
	}
	config_check_warnings(cfg, check_to_log, NULL);
	struct first_error first = {.text = err, .len = sizeof(err)};
	if (config_check_log_files(cfg, keep_first_error, &first) > 0) {
		config_free(cfg);
		log_error("reload failed, keeping the running configuration: %s", err);
		metrics_count_reload(false);
		return;
	}
	if (build_generation(cfg, s->state, s->nloops, &st, &tls, err, sizeof(err)) < 0) {
		log_error("reload failed, keeping the running configuration: %s", err);
		metrics_count_reload(false);
		return;
	}
	/* The last step that can fail: log_configure leaves the old sinks alone on error. */
	if (log_configure(server_state_config(st), err, sizeof(err)) < 0) {
		server_state_release(st);
		tls_server_release(tls);
		log_error("reload failed, keeping the running configuration: %s", err);
		metrics_count_reload(false);
		return;
	}
	const struct config *old = server_state_config(s->state);
	if (strcmp(old->address ? old->address : "", cfg->address ? cfg->address : ""))
		log_warn("reload: a new listen address needs a restart; still on %s", s->bound);
	if (cfg->server.threads != old->server.threads)
		log_warn("reload: server.threads takes effect after a restart");
	apply_settings(s, cfg);
	for (unsigned i = 0; i < s->nloops; i++)
		loop_update(s->loops[i], st, tls);
	server_state_release(s->state);
	tls_server_release(s->tls);
	s->state = st;
	s->tls = tls;
	remember_tls_files(s);
	metrics_set_server_cert_expiry(metrics_cert_not_after(tls_server_cert(tls)));
	metrics_count_reload(true);
	log_info("configuration reloaded");
}

static unsigned loop_count(const struct config *cfg)
{
	long n = cfg->server.threads ? (long)cfg->server.threads : sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > MAX_LOOPS)
		n = MAX_LOOPS;
	return (unsigned)n;
}

static int start_loops(struct server *s, char *err, size_t errlen)
{
	const struct config *cfg = server_state_config(s->state);
	s->nworkers = worker_count(cfg, s->nloops);
	s->env.workers = worker_pool_new(s->nworkers, LIMIT_WORKER_QUEUE, "kesc-work");
	/* One handshake thread per loop: the work is CPU only. A connection has at most one
	 * job queued, so server.max_connections bounds the queue. */
	s->env.handshakes = worker_pool_new(s->nloops, SIZE_MAX, "kesc-tls");
	if (!s->env.workers || !s->env.handshakes) {
		snprintf(err, errlen, "failed to start the worker threads");
		return -1;
	}
	atomic_init(&s->env.connections, 0);
	apply_settings(s, cfg);
	s->env.listen_fd = s->listen_fd;
	s->env.loops = s->loops;
	for (unsigned i = 0; i < s->nloops; i++) {
		s->loops[i] = loop_new(&s->env, i, s->state, s->tls);
		if (!s->loops[i]) {
			snprintf(err, errlen, "failed to create event loop %u", i);
			goto unstarted;
		}
	}
	/* A loop hands connections only to loops below env.nloops: those already running. */
	for (unsigned i = 0; i < s->nloops; i++) {
		if (loop_start(s->loops[i]) < 0) {
			snprintf(err, errlen, "failed to start event loop %u", i);
			goto unstarted;
		}
		atomic_store(&s->env.nloops, i + 1);
	}
	return 0;
unstarted:
	for (unsigned i = atomic_load(&s->env.nloops); i < s->nloops; i++) {
		loop_free(s->loops[i]);
		s->loops[i] = NULL;
	}
	return -1;
}

/* The main thread waits for signals here (the logs write themselves: log.h). */
static void wait_for_signals(struct server *s, int sfd)
{
	for (;;) {
		struct pollfd p = {.fd = sfd, .events = POLLIN};
		int n = poll(&p, 1, 1000);
		check_tls_files(s);
		if (n <= 0)
			continue;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			sdnotify_reloading();
			reload(s);
			/* Ready again: on the new configuration, or on the old one if it failed. */
			sdnotify_ready(NULL);
			continue;
		}
		sdnotify_stopping();
		log_info("%s: stopping, finishing requests in flight",
		         si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		return;
	}
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for the loops to finish; a second SIGTERM/SIGINT ends the process at once. False when
 * server.shutdown_timeout (and a moment for the loops to close what was left) has passed and a
 * loop still waits for a request stuck in a worker: that request may never come back. */
static bool wait_for_drain(struct server *s, int sfd)
{
	int64_t deadline = monotonic_ms() + s->env.drain_ms + LIMIT_DRAIN_GRACE_MS;
	for (unsigned i = 0; i < s->nloops; i++) {
		while (s->loops[i] && !loop_finished(s->loops[i])) {
			if (monotonic_ms() >= deadline)
				return false;
			struct pollfd p = {.fd = sfd, .events = POLLIN};
			if (poll(&p, sfd >= 0 ? 1 : 0, 100) <= 0)
				continue;
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
			    si.ssi_signo != SIGHUP) {
				log_warn("second signal: exiting without waiting for requests");
				log_flush();
				_exit(1);
			}
		}
	}
	return true;
}

static void stop_all(struct server *s, int sfd)
{
	for (unsigned i = 0; i < s->nloops; i++)
		if (s->loops[i])
			loop_drain(s->loops[i]);
	/* Refuse new connections at once (a listening socket shut down for reading stops
	 * listening); it stays open until no loop watches it any more. */
	if (s->listen_fd >= 0)
		(void)shutdown(s->listen_fd, SHUT_RD);
	if (!wait_for_drain(s, sfd)) {
		/* A worker is stuck (a keystore that does not answer): its loop cannot be freed
		 * while the job may still come back, and the pool cannot be joined. Leave. */
		unsigned n = atomic_load(&s->env.abandoned);
		log_error(
		    "stopped after server.shutdown_timeout (%.1f s) with a keystore call still "
		    "running: %u unanswered request%s abandoned",
		    (double)s->env.drain_ms / 1000.0, n, n == 1 ? "" : "s");
		log_flush();
		_exit(1);
	}
	for (unsigned i = 0; i < s->nloops; i++) {
		if (s->loops[i]) {
			loop_join(s->loops[i]);
			loop_free(s->loops[i]);
			s->loops[i] = NULL;
		}
	}
	worker_pool_free(s->env.workers);
	s->env.workers = NULL;
	worker_pool_free(s->env.handshakes);
	s->env.handshakes = NULL;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
}

/* After SIGTERM, the process ends within server.shutdown_timeout plus a few seconds whatever
 * else may hang on the way out (closing the keystore waits for its background requests). */
static void *exit_watchdog(void *arg)
{
	int64_t ms = *(const int64_t *)arg;
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	log_error("stopped: shutting down took longer than server.shutdown_timeout + %d s; "
	          "exiting now",
	          (LIMIT_DRAIN_GRACE_MS + LIMIT_EXIT_GRACE_MS) / 1000);
	log_flush();
	_exit(1);
	return NULL;
}

static void start_exit_watchdog(struct server *s)
{
	static int64_t ms;
	ms = s->env.drain_ms + LIMIT_DRAIN_GRACE_MS + LIMIT_EXIT_GRACE_MS;
	pthread_t t;
	if (pthread_create(&t, NULL, exit_watchdog, &ms) == 0)
		pthread_detach(t);
}

static int block_signals(sigset_t *set)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	/* Only the main thread's signalfd sees these. */
	if (pthread_sigmask(SIG_BLOCK, set, NULL) != 0)
		return -1;
	return signalfd(-1, set, SFD_CLOEXEC);
}

/* mbedTLS 2.28 (Debian's build has no MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH) callocs two
 * 16.7 KB record buffers per connection. From the heap, calloc writes every byte of them, so an
 * idle keep-alive connection cost ~37 KiB resident and the memory stayed with the process
 * after the connections closed. Above 16 KiB glibc maps fresh zero pages instead, which calloc
 * need not clear: only the pages TLS really used (about one per buffer) become resident, and
 * closing a connection returns them. Costs an mmap/munmap pair per buffer per connection. */
static void tune_malloc(void)
{
	if (mallopt(M_MMAP_THRESHOLD, 16 * 1024) != 1)
		log_warn("mallopt(M_MMAP_THRESHOLD) refused; idle connections use more memory");
}

/* --check-config: loads the configuration and checks what starting would need, creating
 * nothing (config_check.h). 0 when starting would work (warnings allowed), else 1. */
static int check_config(const struct server_options *opt)
{
	char err[ERR_LEN];
	struct config *cfg = NULL;
	if (load_config(opt, warn_to_stderr, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "Error: %s\n", err);
		return 1;
	}
	unsigned errors = config_check_all(cfg, check_to_stderr, NULL);
	config_free(cfg);
	tls_cleanup();
	if (errors > 0)
		return 1;
	printf("OK\n");
	return 0;
}

int server_run(const struct server_options *opt)
{
	char err[ERR_LEN];
	char hardening[256] = "";
	struct config *cfg = NULL;
	struct server s = {.opt = opt, .listen_fd = -1};
	int rc = 1, sfd = -1;
	if (opt->check_only)
		return check_config(opt);
	metrics_init();
	sigset_t set;
	/* Before anything starts a thread (the keystore may): all threads inherit the mask. */
	if ((sfd = block_signals(&set)) < 0) {
		snprintf(err, sizeof(err), "signalfd: %s", strerror(errno));
		goto fail;
	}

	if (load_config(opt, warn_to_log, &cfg, err, sizeof(err)) < 0)
		goto fail;
	if (log_configure(cfg, err, sizeof(err)) < 0) {
		config_free(cfg);
		goto fail;
	}
	config_check_warnings(cfg, check_to_log, NULL);
	keystore_set_log(log_keystore_event);
	s.nloops = loop_count(cfg);
	secmem_harden_process(hardening, sizeof(hardening));
	tune_malloc();
	if (build_generation(cfg, NULL, s.nloops, &s.state, &s.tls, err, sizeof(err)) < 0)
		goto fail;
	if (bind_all(&s, server_state_config(s.state)->address, err, sizeof(err)) < 0 ||
	    start_loops(&s, err, sizeof(err)) < 0)
		goto fail;
	remember_tls_files(&s);
	metrics_set_server_cert_expiry(metrics_cert_not_after(tls_server_cert(s.tls)));
	print_banner(&s, hardening);
	if (opt->on_listening)
		opt->on_listening(s.bound, opt->on_listening_arg);
	char status[sizeof(s.bound) + 16];
	snprintf(status, sizeof(status), "listening on %s", s.bound);
	sdnotify_ready(status);
	wait_for_signals(&s, sfd);
	start_exit_watchdog(&s);
	stop_all(&s, sfd);
	unsigned abandoned = atomic_load(&s.env.abandoned);
	if (abandoned) {
		log_warn("stopped after server.shutdown_timeout: %u unanswered request%s abandoned",
		         abandoned, abandoned == 1 ? "" : "s");
		rc = 1;
	} else {
		log_info("stopped");
		rc = 0;
	}
	goto out;
fail:
	fprintf(stderr, "Error: %s\n", err);
	stop_all(&s, sfd);
out:
	if (sfd >= 0)
		close(sfd);
	server_state_quiesce(s.state); /* tenants' keys still being created */
	server_state_release(s.state);
	if (s.tls)
		tls_server_release(s.tls);
	log_flush();
	tls_cleanup();
	return rc;
}
