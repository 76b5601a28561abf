/* test_sock_io.c — server/sock_io.c over a real socket pair: mbedTLS's reads served from one
 * recv, no recv at all once the socket is known to be empty, corked writes sent as one, order
 * kept across partial sends. recv and send are replaced here to count the system calls. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "check.h"
#include "server/sock_io.h"

static int recv_calls, send_calls;

/* Override libc's for the code linked into this test (sock_io.c calls them by name). */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	recv_calls++;
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	send_calls++;
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

/* A non-blocking stream pair: [0] is the server's socket, [1] the peer. */
static void pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
}

static void peer_write(int fd, const void *data, size_t len)
{
	if (write(fd, data, len) != (ssize_t)len)
		abort();
}

/* A TLS record read the way mbedTLS does it: its 5-byte header, then the rest. */
static void test_record_in_one_recv(void)
{
	int sv[2];
	pair(sv);
	struct sock_io io;
	sock_io_init(&io, sv[0]);
	unsigned char rec[300], got[300];
	for (size_t i = 0; i < sizeof rec; i++)
		rec[i] = (unsigned char)i;
	peer_write(sv[1], rec, sizeof rec);
	recv_calls = 0;
	CHECK_EQ_INT(sock_io_recv(&io, got, 5), 5);
	CHECK_EQ_INT(sock_io_recv(&io, got + 5, sizeof rec - 5), (long long)sizeof rec - 5);
	CHECK_MEM(got, rec, sizeof rec);
	CHECK_EQ_INT(recv_calls, 1);
	/* The recv came back short: the socket is empty, and says so without a system call. */
	CHECK_EQ_INT(sock_io_recv(&io, got, 5), MBEDTLS_ERR_SSL_WANT_READ);
	CHECK(!sock_io_may_read(&io));
	CHECK(!sock_io_fill(&io));
	CHECK_EQ_INT(recv_calls, 1);
	/* The next record arrives; the loop reports the socket readable. */
	peer_write(sv[1], rec, 10);
	sock_io_readable(&io, EPOLLIN);
	CHECK(sock_io_may_read(&io));
	CHECK_EQ_INT(sock_io_recv(&io, got, 10), 10);
	CHECK_MEM(got, rec, 10);
	CHECK_EQ_INT(recv_calls, 2);
	sock_io_release(&io);
	CHECK(io.rbuf == NULL);
	sock_io_free(&io);
	close(sv[0]);
	close(sv[1]);
}

/* After a FIN no further event may come: reads go to the kernel until they see the end. */
static void test_end_of_stream(void)
{
	int sv[2];
	pair(sv);
	struct sock_io io;
	sock_io_init(&io, sv[0]);
	unsigned char got[64];
	peer_write(sv[1], "abc", 3);
	shutdown(sv[1], SHUT_WR);
	sock_io_readable(&io, EPOLLIN | EPOLLRDHUP);
	CHECK_EQ_INT(sock_io_recv(&io, got, 5), 3);
	CHECK(sock_io_may_read(&io));
	CHECK_EQ_INT(sock_io_recv(&io, got, 5), 0);
	sock_io_free(&io);
	close(sv[0]);
	close(sv[1]);
}

/* Data waiting in the kernel before the first read: sock_io_fill finds it. */
static void test_fill(void)
{
	int sv[2];
	pair(sv);
	struct sock_io io;
	sock_io_init(&io, sv[0]);
	CHECK(!sock_io_fill(&io)); /* nothing there yet: EAGAIN */
	CHECK(!sock_io_may_read(&io));
	peer_write(sv[1], "hello", 5);
	sock_io_readable(&io, EPOLLIN);
	CHECK(sock_io_fill(&io));
	unsigned char got[8];
	int before = recv_calls;
	CHECK_EQ_INT(sock_io_recv(&io, got, sizeof got), 5);
	CHECK_EQ_INT(recv_calls, before);
	CHECK_MEM(got, "hello", 5);
	sock_io_free(&io);
	close(sv[0]);
	close(sv[1]);
}

/* A body record larger than the read-ahead goes straight into the caller's buffer. */
static void test_large_read_bypasses(void)
{
	int sv[2];
	pair(sv);
	struct sock_io io;
	sock_io_init(&io, sv[0]);
	static unsigned char big[8000], got[8000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 7);
	peer_write(sv[1], big, sizeof big);
	size_t have = 0;
	while (have < sizeof big) {
		int n = sock_io_recv(&io, got + have, sizeof big - have);
		CHECK(n > 0);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	CHECK_MEM(got, big, sizeof big);
	CHECK(io.rbuf == NULL);
	sock_io_free(&io);
	close(sv[0]);
	close(sv[1]);
}

static size_t peer_read_all(int fd, unsigned char *out, size_t cap)
{
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, out + have, cap - have);
		if (n <= 0)
			return have;
		have += (size_t)n;
	}
}

/* A handshake flight: five records, one send. */
static void test_corked_flight_is_one_send(void)
{
	int sv[2];
	pair(sv);
	struct sock_io io;
	sock_io_init(&io, sv[0]);
	sock_io_cork(&io);
	send_calls = 0;
	const char *msgs[] = {"ServerHello.", "Certificate.", "KeyExchange.", "Request.", "Done."};
	for (size_t i = 0; i < 5; i++)
		CHECK_EQ_INT(sock_io_send(&io, (const unsigned char *)msgs[i], strlen(msgs[i])),
		             (long long)strlen(msgs[i]));
	CHECK_EQ_INT(send_calls, 0);
	CHECK(sock_io_has_output(&io));
	CHECK_EQ_INT(sock_io_flush(&io), SOCK_IO_FLUSHED);
	CHECK_EQ_INT(send_calls, 1);
	CHECK(!sock_io_has_output(&io));
	unsigned char got[128];
	size_t n = peer_read_all(sv[1], got, sizeof got);
	got[n] = 0;
	CHECK_EQ_STR((const char *)got, "ServerHello.Certificate.KeyExchange.Request.Done.");
	sock_io_uncork(&io);
	CHECK_EQ_INT(sock_io_send(&io, (const unsigned char *)"x", 1), 1);
	CHECK_EQ_INT(send_calls, 2);
	sock_io_free(&io);
	close(sv[0]);
	close(sv[1]);
}

/* A flight the socket does not take whole: the rest waits, and later writes queue behind it. */
static void test_partial_flush_keeps_order(void)
{
	int sv[2];
	pair(sv);
	int small = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	struct sock_io io;
	sock_io_init(&io, sv[0]);
	static unsigned char flight[200000], got[220000];
	for (size_t i = 0; i < sizeof flight; i++)
		flight[i] = (unsigned char)(i % 251);
	sock_io_cork(&io);
	CHECK_EQ_INT(sock_io_send(&io, flight, sizeof flight), (long long)sizeof flight);
	CHECK_EQ_INT(sock_io_flush(&io), SOCK_IO_WAIT);
	CHECK(sock_io_has_output(&io));
	sock_io_uncork(&io);
	/* While the flight is still going out, a new write must wait behind it. */
	CHECK_EQ_INT(sock_io_send(&io, (const unsigned char *)"tail", 4),
	             MBEDTLS_ERR_SSL_WANT_WRITE);
	size_t have = 0;
	for (int rounds = 0; rounds < 100000 && have < sizeof flight + 4; rounds++) {
		have += peer_read_all(sv[1], got + have, sizeof got - have);
		if (sock_io_has_output(&io)) {
			CHECK(sock_io_flush(&io) != SOCK_IO_ERROR);
		} else if (have == sizeof flight) {
			CHECK_EQ_INT(sock_io_send(&io, (const unsigned char *)"tail", 4), 4);
			have += peer_read_all(sv[1], got + have, sizeof got - have);
		}
	}
	CHECK_EQ_INT(have, (long long)sizeof flight + 4);
	CHECK_MEM(got, flight, sizeof flight);
	CHECK_MEM(got + sizeof flight, "tail", 4);
	sock_io_release(&io);
	CHECK(io.wbuf == NULL);
	sock_io_free(&io);
	close(sv[0]);
	close(sv[1]);
}

/* Errors map to mbedTLS's codes. */
static void test_errors(void)
{
	int sv[2];
	pair(sv);
	struct sock_io io;
	sock_io_init(&io, sv[0]);
	close(sv[1]);
	CHECK_EQ_INT(sock_io_send(&io, (const unsigned char *)"x", 1), MBEDTLS_ERR_NET_CONN_RESET);
	unsigned char got[4];
	CHECK_EQ_INT(sock_io_recv(&io, got, sizeof got), 0);
	sock_io_free(&io);
	close(sv[0]);
}

int main(void)
{
	RUN(test_record_in_one_recv);
	RUN(test_end_of_stream);
	RUN(test_fill);
	RUN(test_large_read_bypasses);
	RUN(test_corked_flight_is_one_send);
	RUN(test_partial_flush_keeps_order);
	RUN(test_errors);
	return CHECK_DONE();
}
