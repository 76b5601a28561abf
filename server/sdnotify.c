/* sdnotify.c — the sd_notify datagram to $NOTIFY_SOCKET (sdnotify.h). */
#include "server/sdnotify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server/log.h"

/* Fills addr from $NOTIFY_SOCKET; returns the address length, 0 when unset, -1 when invalid. */
static int notify_address(struct sockaddr_un *addr, char *err, size_t errlen)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !path[0])
		return 0;
	size_t n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2) {
		snprintf(err, errlen, "NOTIFY_SOCKET '%s' is neither an absolute path nor '@name'",
		         path);
		return -1;
	}
	if (n >= sizeof(addr->sun_path)) {
		snprintf(err, errlen, "NOTIFY_SOCKET is longer than a socket address can be");
		return -1;
	}
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, path, n);
	if (path[0] == '@') /* abstract namespace: a leading NUL, and no terminating one */
		addr->sun_path[0] = '\0';
	else
		n++; /* a path: the length includes its NUL */
	return (int)(offsetof(struct sockaddr_un, sun_path) + n);
}

int sdnotify_send(const char *state, char *err, size_t errlen)
{
	struct sockaddr_un addr;
	int len = notify_address(&addr, err, errlen);
	if (len <= 0)
		return len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	size_t n = strlen(state);
	ssize_t sent = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&addr, (socklen_t)len);
	int saved = errno;
	close(fd);
	if (sent != (ssize_t)n) {
		snprintf(err, errlen, "cannot notify '%s': %s", getenv("NOTIFY_SOCKET"),
		         sent < 0 ? strerror(saved) : "short write");
		return -1;
	}
	return 1;
}

static void send_or_warn(const char *state)
{
	char err[256];
	if (sdnotify_send(state, err, sizeof(err)) < 0)
		log_warn("service manager notification failed: %s", err);
}

void sdnotify_ready(const char *status)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "READY=1%s%s", status ? "\nSTATUS=" : "", status ? status : "");
	send_or_warn(msg);
}

void sdnotify_reloading(void)
{
	struct timespec now;
	char msg[128];
	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		now = (struct timespec){0};
	snprintf(msg, sizeof(msg),
	         "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
	         (unsigned long long)now.tv_sec * 1000000ULL +
	             (unsigned long long)now.tv_nsec / 1000);
	send_or_warn(msg);
}

void sdnotify_stopping(void)
{
	send_or_warn("STOPPING=1\nSTATUS=stopping, finishing requests in flight");
}
