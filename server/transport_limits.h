/*
 * transport_limits.h — every hard limit of the transport in one place (DESIGN.md §1: "every limit
 * is explicit and named"). Timeouts that the configuration can change (server: section of the
 * config) have their defaults in config.c; the values here are the fixed ones and fallbacks.
 */
#ifndef KESC_SERVER_TRANSPORT_LIMITS_H
#define KESC_SERVER_TRANSPORT_LIMITS_H

/* Request line plus all header lines, including the final empty line. */
#define LIMIT_HEAD_BYTES 16384
/* Header lines per request (the head byte limit applies as well). */
#define LIMIT_HEADER_COUNT 100
/* A chunk-size line with its extensions, and all trailer lines together. */
#define LIMIT_CHUNK_LINE_BYTES 1024
#define LIMIT_TRAILER_BYTES    4096
/* Request bodies: API_MAX_BODY (api.h), 1,000,000 bytes as in KES. */

/* Fallbacks when the configuration says 0. */
#define LIMIT_DEFAULT_MAX_CONNECTIONS 10240
#define LIMIT_HANDSHAKE_TIMEOUT_MS    5000  /* KES: Go uses the header timeout */
#define LIMIT_HEADER_TIMEOUT_MS       5000  /* KES ReadHeaderTimeout */
#define LIMIT_IDLE_TIMEOUT_MS         90000 /* KES IdleTimeout */

/* After an error that closes the connection, unread input is drained (not answered) for at
 * most this long / this many bytes, so the client can read our answer instead of an RST. */
#define LIMIT_LINGER_MS    2000
#define LIMIT_LINGER_BYTES (4 * 1000 * 1000)

/* Responses queued for pipelined requests before the connection stops parsing more. */
#define LIMIT_PIPELINE_OUTPUT_BYTES (256 * 1024)
/* A log stream whose client does not read: queued output beyond this is dropped. */
#define LIMIT_STREAM_OUTPUT_BYTES (1024 * 1024)

/* Worker pool: threads per core and queued jobs before requests are refused with 503. */
#define LIMIT_WORKERS_PER_CORE 2
#define LIMIT_WORKER_QUEUE     4096
/* With tenants: more workers (a tenant's keystore that hangs holds its workers for its
 * timeouts), of which one tenant runs at most a quarter at once and queues at most an eighth
 * of the queue (worker.h, worker groups), so that four tenants can hang before the others
 * wait. */
#define LIMIT_TENANT_WORKERS_MIN      16
#define LIMIT_TENANT_WORKERS_PER_CORE 4
#define LIMIT_TENANT_RUNNING_SHARE    4 /* a tenant: workers / 4 at once */
#define LIMIT_TENANT_QUEUE_SHARE      8 /* a tenant: queue / 8 waiting */

/* SIGTERM: how long in-flight requests may take before they are abandoned and the process
 * exits (server.shutdown_timeout). 10 s lets every request that is not stuck finish (cache
 * hits take microseconds, the fs keystore milliseconds, a Vault call a few seconds), ends well
 * within systemd's TimeoutStopSec (90 s by default, 30 s in deploy/systemd/kesc.service.in) with
 * the grace periods below, and still gets a log line out before any SIGKILL. */
#define LIMIT_DRAIN_MS 10000
/* After it: a moment for the loops to close what is left and for jobs about to return. */
#define LIMIT_DRAIN_GRACE_MS 1000
/* Then at most this long for the rest of the way out (closing the keystore) before _exit. */
#define LIMIT_EXIT_GRACE_MS 2000

#endif
