/*
 * sock_io.h — a connection's socket as mbedTLS sees it (its f_send / f_recv), with fewer system
 * calls than mbedTLS would make on its own:
 *
 *  - Read-ahead. mbedTLS 2.28 asks for a record's 5-byte header and then for its body, two
 *    recv(2)s per record, and a third that says EAGAIN. One recv into a small buffer serves both;
 *    a recv that came back short means the socket is empty, so the next read says "wait" without
 *    asking the kernel, until the event loop reports the socket readable again (edge-triggered
 *    epoll reports every arrival after that read). Large reads bypass the buffer.
 *  - Coalesced writes while corked. A handshake flight is five records that mbedTLS flushes one
 *    at a time (five sends, five wake-ups of the client); corked, they are collected and sent
 *    with one send when the flight is complete (sock_io_flush).
 *
 * Not thread-safe: one thread at a time (the loop, or a handshake thread that owns the
 * connection's TLS context for the duration of its job).
 */
#ifndef KESC_SERVER_SOCK_IO_H
#define KESC_SERVER_SOCK_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sock_io {
	int fd;
	bool drained;  /* the last recv came back short: empty until sock_io_readable */
	bool eof_seen; /* the peer half-closed or failed: always ask the kernel */
	bool corked;
	/* Read-ahead: bytes [roff, rlen) of rbuf are not consumed yet. */
	unsigned char *rbuf;
	size_t roff, rlen;
	/* Written while corked (or left over from a partial send): [woff, wlen) of wbuf. */
	unsigned char *wbuf;
	size_t woff, wlen, wcap;
};

void sock_io_init(struct sock_io *io, int fd);
/* Frees the buffers (unsent output is dropped). */
void sock_io_free(struct sock_io *io);

/* mbedTLS callbacks (mbedtls_ssl_set_bio with ctx = the struct sock_io). */
int sock_io_send(void *ctx, const unsigned char *data, size_t len);
int sock_io_recv(void *ctx, unsigned char *data, size_t len);

/* The event loop saw the socket readable (events: the epoll mask). */
void sock_io_readable(struct sock_io *io, uint32_t events);
/* Whether a read could return bytes without waiting for an event: buffered input, or a
 * socket not known to be empty. */
bool sock_io_may_read(const struct sock_io *io);
/* Reads into the buffer if it is empty and the socket is not known to be empty. Returns true
 * when buffered input is waiting afterwards; false means wait for readability (or the peer
 * closed: the next read reports it). */
bool sock_io_fill(struct sock_io *io);

/* While corked, sends only collect the bytes (up to a bound); sock_io_flush sends them. */
void sock_io_cork(struct sock_io *io);
void sock_io_uncork(struct sock_io *io);
enum { SOCK_IO_FLUSHED = 0, SOCK_IO_WAIT = 1, SOCK_IO_ERROR = -1 };
/* Sends what was collected: FLUSHED, WAIT (the rest waits for writability), ERROR. */
int sock_io_flush(struct sock_io *io);
/* Whether collected bytes are still unsent. */
bool sock_io_has_output(const struct sock_io *io);

/* Frees buffers that hold nothing (an idle connection keeps no I/O memory). */
void sock_io_release(struct sock_io *io);

#endif
