/* log_target.c — opening the error and audit log destinations (log_sink.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/log_sink.h"

/* A pipe or terminal inherited as standard output/error is shared with whoever started us:
 * setting O_NONBLOCK on it would change it for them too (a shell would then see EAGAIN). Opening
 * /proc/self/fd/N gives a description of our own for the same pipe or terminal. */
static int reopen_private(int fd)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
}

static void describe_std(struct log_target *t, int std_fd)
{
	snprintf(t->name, sizeof(t->name), "%s",
	         std_fd == 1 ? "standard output" : "standard error");
}

static int open_std(int std_fd, struct log_target *t)
{
	struct stat st;
	describe_std(t, std_fd);
	t->fd = std_fd;
	t->owned = false;
	t->kind = LOG_TARGET_BLOCKING;
	if (fstat(std_fd, &st) != 0)
		return 0; /* closed: every write fails with EBADF, which is the truth */
	if (S_ISREG(st.st_mode)) {
		t->kind = LOG_TARGET_FILE;
	} else if (S_ISSOCK(st.st_mode)) {
		t->kind = LOG_TARGET_SOCKET;
	} else {
		int fd = reopen_private(std_fd);
		if (fd >= 0) {
			t->fd = fd;
			t->owned = true;
			t->kind = LOG_TARGET_STREAM;
		}
		/* else: no /proc, or a FIFO whose reader is gone; blocking writes on the writer
		 * thread still never block anything else. */
	}
	return 0;
}

int log_target_open(const char *path, int std_fd, struct log_target *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (!path)
		return open_std(std_fd, t);
	if (!strcmp(path, "/dev/stdout"))
		return open_std(1, t);
	if (!strcmp(path, "/dev/stderr"))
		return open_std(2, t);
	/* 0600: the audit log names identities, addresses and keys, the error log key names; who
	 * needs more (a log shipper's group) sets the mode once: an existing file keeps its own.
	 * O_NOFOLLOW: a symbolic link planted at the path must not make kesc append to its target.
	 * O_NONBLOCK: a FIFO without reader fails now instead of hanging the start-up. */
	int fd = open(
	    path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	    0600);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			snprintf(err, errlen,
			         "log: '%s' is a symbolic link; kesc does not follow links for log "
			         "files (name the target instead)",
			         path);
		else if (e == ENXIO)
			snprintf(err, errlen, "log: '%s' is a FIFO that nobody reads", path);
		else
			snprintf(err, errlen, "log: cannot open '%s': %s", path, strerror(e));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "log: '%s' is not a file", path);
		close(fd);
		return -1;
	}
	t->fd = fd;
	t->owned = true;
	t->kind = S_ISREG(st.st_mode) ? LOG_TARGET_FILE : LOG_TARGET_STREAM;
	if (t->kind == LOG_TARGET_FILE) {
		int flags = fcntl(fd, F_GETFL);
		if (flags >= 0)
			(void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	}
	snprintf(t->name, sizeof(t->name), "'%s'", path);
	return 0;
}

void log_target_close(struct log_target *t)
{
	if (t->owned && t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	t->owned = false;
}
