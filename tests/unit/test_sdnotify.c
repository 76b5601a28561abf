/* test_sdnotify.c — the sd_notify datagram (server/sdnotify.c) against real AF_UNIX sockets:
 * a filesystem path and an abstract-namespace "@name", as systemd may pass either. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "server/sdnotify.h"

/* A datagram socket bound to name ("@x" = abstract); returns the fd or -1. */
static int listen_at(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	if (n >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, name, n);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if (name[0] == '@')
		a.sun_path[0] = '\0';
	else
		len++;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Receives one datagram (without blocking: sendto on AF_UNIX DGRAM has delivered it). */
static const char *receive(int fd, char *buf, size_t n)
{
	ssize_t got = recv(fd, buf, n - 1, MSG_DONTWAIT);
	if (got < 0)
		return "(nothing received)";
	buf[got] = '\0';
	return buf;
}

static void test_path_socket(void)
{
	char dir[] = "/tmp/kesc-sdnotify-XXXXXX", path[128], buf[512], err[256];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listen_at(path);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_EQ_INT(sdnotify_send("READY=1", err, sizeof(err)), 1);
	CHECK_EQ_STR(receive(fd, buf, sizeof(buf)), "READY=1");
	sdnotify_ready("listening on 127.0.0.1:7373");
	CHECK_EQ_STR(receive(fd, buf, sizeof(buf)), "READY=1\nSTATUS=listening on 127.0.0.1:7373");
	sdnotify_ready(NULL);
	CHECK_EQ_STR(receive(fd, buf, sizeof(buf)), "READY=1");
	sdnotify_stopping();
	CHECK(strncmp(receive(fd, buf, sizeof(buf)), "STOPPING=1\n", 11) == 0);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* RELOADING=1 carries MONOTONIC_USEC= close to now (systemd ≥ 253 checks it is present). */
static void test_reloading_has_monotonic_time(void)
{
	char name[64], buf[512];
	snprintf(name, sizeof(name), "@kesc-sdnotify-test-%ld-r", (long)getpid());
	int fd = listen_at(name);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", name, 1);
	struct timespec before, after;
	clock_gettime(CLOCK_MONOTONIC, &before);
	sdnotify_reloading();
	clock_gettime(CLOCK_MONOTONIC, &after);
	const char *m = receive(fd, buf, sizeof(buf));
	CHECK(strncmp(m, "RELOADING=1\n", 12) == 0);
	const char *t = strstr(m, "\nMONOTONIC_USEC=");
	CHECK(t != NULL);
	if (t) {
		unsigned long long us = strtoull(t + 16, NULL, 10);
		unsigned long long lo = (unsigned long long)before.tv_sec * 1000000ULL +
		                        (unsigned long long)before.tv_nsec / 1000;
		unsigned long long hi = (unsigned long long)after.tv_sec * 1000000ULL +
		                        (unsigned long long)after.tv_nsec / 1000;
		CHECK(us >= lo && us <= hi);
	}
	close(fd);
}

static void test_abstract_socket(void)
{
	char name[64], buf[512], err[256];
	snprintf(name, sizeof(name), "@kesc-sdnotify-test-%ld", (long)getpid());
	int fd = listen_at(name);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK_EQ_INT(sdnotify_send("READY=1\nSTATUS=x", err, sizeof(err)), 1);
	CHECK_EQ_STR(receive(fd, buf, sizeof(buf)), "READY=1\nSTATUS=x");
	close(fd);
}

static void test_unset_is_a_no_op(void)
{
	char err[256] = "";
	unsetenv("NOTIFY_SOCKET");
	CHECK_EQ_INT(sdnotify_send("READY=1", err, sizeof(err)), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_EQ_INT(sdnotify_send("READY=1", err, sizeof(err)), 0);
	CHECK_EQ_STR(err, "");
}

static void test_bad_addresses_fail_with_a_reason(void)
{
	char err[256], long_path[200];
	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	CHECK_EQ_INT(sdnotify_send("READY=1", err, sizeof(err)), -1);
	CHECK(strstr(err, "neither an absolute path") != NULL);
	setenv("NOTIFY_SOCKET", "@", 1);
	CHECK_EQ_INT(sdnotify_send("READY=1", err, sizeof(err)), -1);
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	long_path[sizeof(long_path) - 1] = '\0';
	setenv("NOTIFY_SOCKET", long_path, 1);
	CHECK_EQ_INT(sdnotify_send("READY=1", err, sizeof(err)), -1);
	CHECK(strstr(err, "longer") != NULL);
	/* Nobody listening: the error names the socket and the reason. */
	setenv("NOTIFY_SOCKET", "/nonexistent-kesc-dir/notify", 1);
	CHECK_EQ_INT(sdnotify_send("READY=1", err, sizeof(err)), -1);
	CHECK(strstr(err, "/nonexistent-kesc-dir/notify") != NULL);
	CHECK(strstr(err, strerror(ENOENT)) != NULL);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	RUN(test_path_socket);
	RUN(test_reloading_has_monotonic_time);
	RUN(test_abstract_socket);
	RUN(test_unset_is_a_no_op);
	RUN(test_bad_addresses_fail_with_a_reason);
	return CHECK_DONE();
}
