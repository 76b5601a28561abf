/*
 * conn.h — one client connection: TLS handshake, request parsing under the limits, the call
 * into the API (on the loop, or through the worker pool), the response, keep-alive,
 * pipelining, log streams, and the timeouts of each phase.
 */
#ifndef KESC_SERVER_CONN_H
#define KESC_SERVER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct loop;
struct loop_link;

/* Takes over fd (accepted, non-blocking); closes it on failure. Loop thread. */
void conn_accept(struct loop *l, int fd, const struct sockaddr *addr, socklen_t addrlen);
/* At the connection limit, to make room for a new connection: closes this one if it has not
 * proven it belongs here — it is still in its TLS handshake, or it is idle and its identity is
 * neither the admin nor assigned to a policy — and returns true; false leaves it alone.
 * link is the one given to loop_shed_add. */
bool conn_shed(struct loop_link *link);
/* The peer address as text (IPv4-mapped IPv6 addresses as IPv4); "" if unknown. */
void conn_format_ip(const struct sockaddr *addr, char *out, size_t n);
/* Shutdown: close the connection if idle, otherwise close after the request in flight; with
 * force, close it now (a request waiting for a worker is dropped when its job returns).
 * Returns true when that abandons a request that was begun and not answered; *method and
 * *route (a route key such as "/v1/key/describe/", or the path of an unknown route) then
 * say which, valid until the next loop iteration. link is the one given to loop_conn_add. */
bool conn_drain(struct loop_link *link, bool force, const char **method, const char **route);
/* A log line may be waiting for this streaming connection (link from loop_stream_add). */
void conn_stream_pump(struct loop_link *link);
/* Continues a connection that yielded the loop (link from loop_ready_add). */
void conn_resume(struct loop_link *link);
/* Releases a closed connection (link from loop_defer_free). */
void conn_free(struct loop_link *link);

#endif
