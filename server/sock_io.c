/* sock_io.c — read-ahead and coalesced writes under mbedTLS (sock_io.h). */
#include "server/sock_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

/* A request record in one recv (a client's handshake flight in two or three). Small enough for
 * glibc's per-thread cache (1032 bytes), as buffers come and go with every request: an idle
 * connection keeps none. */
#define READ_AHEAD 1024
/* Collected output while corked: a handshake flight with a long certificate chain fits. */
#define OUTPUT_INITIAL 4096
#define OUTPUT_MAX     (256 * 1024)

void sock_io_init(struct sock_io *io, int fd)
{
	memset(io, 0, sizeof(*io));
	io->fd = fd;
}

void sock_io_free(struct sock_io *io)
{
	free(io->rbuf);
	free(io->wbuf);
	io->rbuf = io->wbuf = NULL;
	io->roff = io->rlen = io->woff = io->wlen = io->wcap = 0;
}

void sock_io_readable(struct sock_io *io, uint32_t events)
{
	io->drained = false;
	/* After a FIN or an error no further edge may come: a short read then says nothing
	 * about the next one, which must reach the kernel to see the end. */
	if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		io->eof_seen = true;
}

bool sock_io_may_read(const struct sock_io *io)
{
	return io->roff < io->rlen || !io->drained;
}

static int recv_error(void)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_READ;
	if (errno == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* One recv of up to len bytes; a short one marks the socket empty. */
static ssize_t recv_once(struct sock_io *io, void *into, size_t len)
{
	for (;;) {
		ssize_t n = recv(io->fd, into, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			io->drained = !io->eof_seen;
		else if (n > 0 && (size_t)n < len)
			io->drained = !io->eof_seen;
		return n;
	}
}

bool sock_io_fill(struct sock_io *io)
{
	if (io->roff < io->rlen)
		return true;
	if (io->drained)
		return false;
	if (!io->rbuf && !(io->rbuf = malloc(READ_AHEAD)))
		return true; /* let the read itself report it */
	io->roff = io->rlen = 0;
	ssize_t n = recv_once(io, io->rbuf, READ_AHEAD);
	if (n > 0) {
		io->rlen = (size_t)n;
		return true;
	}
	/* 0 (EOF) and errors other than EAGAIN: the next read must see them. */
	return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

int sock_io_recv(void *ctx, unsigned char *data, size_t len)
{
	struct sock_io *io = ctx;
	if (io->roff < io->rlen) {
		size_t n = io->rlen - io->roff;
		if (n > len)
			n = len;
		memcpy(data, io->rbuf + io->roff, n);
		io->roff += n;
		return (int)n;
	}
	if (io->drained)
		return MBEDTLS_ERR_SSL_WANT_READ;
	/* A large read (a body record) goes straight into mbedTLS's buffer. */
	if (len >= READ_AHEAD || (!io->rbuf && !(io->rbuf = malloc(READ_AHEAD)))) {
		ssize_t n = recv_once(io, data, len);
		return n >= 0 ? (int)n : recv_error();
	}
	io->roff = io->rlen = 0;
	ssize_t n = recv_once(io, io->rbuf, READ_AHEAD);
	if (n <= 0)
		return n == 0 ? 0 : recv_error();
	io->rlen = (size_t)n;
	return sock_io_recv(ctx, data, len);
}

static int send_error(void)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	if (errno == EPIPE || errno == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static ssize_t send_once(struct sock_io *io, const void *data, size_t len)
{
	for (;;) {
		ssize_t n = send(io->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

int sock_io_flush(struct sock_io *io)
{
	while (io->woff < io->wlen) {
		ssize_t n = send_once(io, io->wbuf + io->woff, io->wlen - io->woff);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? SOCK_IO_WAIT
			                                               : SOCK_IO_ERROR;
		io->woff += (size_t)n;
	}
	io->woff = io->wlen = 0;
	return SOCK_IO_FLUSHED;
}

bool sock_io_has_output(const struct sock_io *io)
{
	return io->woff < io->wlen;
}

/* Appends to the collected output; false when it would pass OUTPUT_MAX or out of memory. */
static bool collect(struct sock_io *io, const unsigned char *data, size_t len)
{
	if (io->woff == io->wlen)
		io->woff = io->wlen = 0;
	if (len > OUTPUT_MAX - io->wlen)
		return false;
	if (io->wlen + len > io->wcap) {
		size_t cap = io->wcap ? io->wcap : OUTPUT_INITIAL;
		while (cap < io->wlen + len)
			cap *= 2;
		unsigned char *fresh = realloc(io->wbuf, cap);
		if (!fresh)
			return false;
		io->wbuf = fresh;
		io->wcap = cap;
	}
	memcpy(io->wbuf + io->wlen, data, len);
	io->wlen += len;
	return true;
}

int sock_io_send(void *ctx, const unsigned char *data, size_t len)
{
	struct sock_io *io = ctx;
	if (io->corked) {
		if (collect(io, data, len))
			return (int)len;
		/* Full: send what is collected first, then take more. */
		int f = sock_io_flush(io);
		if (f == SOCK_IO_ERROR)
			return send_error();
		if (f == SOCK_IO_WAIT || !collect(io, data, len))
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		return (int)len;
	}
	/* Bytes collected earlier go out first, in order. */
	if (io->woff < io->wlen) {
		int f = sock_io_flush(io);
		if (f == SOCK_IO_ERROR)
			return send_error();
		if (f == SOCK_IO_WAIT)
			return MBEDTLS_ERR_SSL_WANT_WRITE;
	}
	ssize_t n = send_once(io, data, len);
	return n >= 0 ? (int)n : send_error();
}

void sock_io_cork(struct sock_io *io)
{
	io->corked = true;
}

void sock_io_uncork(struct sock_io *io)
{
	io->corked = false;
}

void sock_io_release(struct sock_io *io)
{
	if (io->rbuf && io->roff >= io->rlen) {
		free(io->rbuf);
		io->rbuf = NULL;
		io->roff = io->rlen = 0;
	}
	if (io->wbuf && io->woff >= io->wlen) {
		free(io->wbuf);
		io->wbuf = NULL;
		io->woff = io->wlen = io->wcap = 0;
	}
}
