/*
 * api.h — the boundary between the transport (listener, TLS, HTTP: server/loop.c, conn.c,
 * http.c) and the KES API (router.c and the api_*.c handlers).
 *
 * The transport parses a request, then calls api_handle on its loop thread with may_block =
 * false. A handler that can answer without waiting (a cache hit, status, version, policy
 * views) answers at once. One that needs keystore I/O returns API_NEEDS_WORKER without side
 * effects; the transport then calls api_handle again for the same request on a worker thread
 * with may_block = true, and sends that answer. Nothing here blocks a loop thread.
 */
#ifndef KESC_SERVER_API_H
#define KESC_SERVER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"

struct server_state;
struct metrics_scope;
struct worker_group;

enum api_cert_problem {
	API_CERT_OK = 0,
	API_CERT_NONE = 1,     /* no usable first client certificate (none, CA:TRUE or weak) */
	API_CERT_MULTIPLE = 2, /* a second end-entity certificate follows the first */
};

struct api_request {
	const char *method;  /* as received: "GET", "PUT", … */
	const char *path;    /* percent-decoded; the transport has refused //, /./ and /../ */
	const char *query;   /* raw query string without '?', or "" */
	const uint8_t *body; /* may be NULL when body_len is 0 */
	size_t body_len;
	bool body_too_large;  /* more than API_MAX_BODY bytes were sent; body is empty */
	const char *identity; /* lowercase hex identity, or "" when no certificate */
	enum api_cert_problem cert_problem;
	const char *remote_ip; /* textual peer address */
	const char *accept;    /* Accept header, or NULL */
};

/* The largest request body any route reads (KES: 1 * mem.MB), except bulk decrypt, which
 * KES limited to 1 * mem.MiB. */
#define API_MAX_BODY      1000000
#define API_MAX_BULK_BODY (1 << 20)

enum api_stream { API_STREAM_NONE = 0, API_STREAM_AUDIT_LOG, API_STREAM_ERROR_LOG };

struct api_response {
	int status;
	const char *content_type; /* static string, or NULL for no Content-Type */
	struct buf body;          /* initialised by the transport with buf_init(&body, 0) */
	const char *allow;        /* for 405: value of the "Accept" header KES sends */
	/* When set (status 200, application/x-ndjson), the transport keeps the connection open
	 * and streams that log to it (log.h) until the client goes away. */
	enum api_stream stream;
	/* Whether this request counts in the kes_http_* metrics (key/policy/identity routes). */
	bool metered;
	/* For the audit record: how many items a bulk request held (when audit_has_items). */
	bool audit_has_items;
	size_t audit_items;
	/* The tenant the request was served for (tenants: section), or NULL: its audit record
	 * names it, its metered result counts in scope (may be NULL), and a log stream it
	 * starts shows that tenant's lines only. Valid while the request's state is held. */
	const char *tenant;
	struct metrics_scope *scope;
	/* The view's share of the worker pool, for a request that needs a worker (worker.h). */
	struct worker_group *group;
};

enum api_outcome { API_DONE = 0, API_NEEDS_WORKER = 1 };

/* Answers one request (see above). Always fills resp when it returns API_DONE. */
enum api_outcome api_handle(struct server_state *st, const struct api_request *req,
                            struct api_response *resp, bool may_block);

/*
 * The checks KES makes before a handler reads the body: route, method, authentication and
 * policy. The transport calls it with the head alone (body NULL) before it reads a body, so a
 * client that may not call the route gets its 403 at once and never makes the server buffer
 * a megabyte. Returns true to go on; false with resp filled with KES's answer.
 */
bool api_precheck(struct server_state *st, const struct api_request *req,
                  struct api_response *resp);

/* Per-route limits the transport needs before the body is read. Unknown paths get
 * max_body 0 and the default timeout. */
struct api_route_limits {
	size_t max_body;    /* 0: the route reads no body (one sent is discarded) */
	int64_t timeout_ms; /* 0: none (the log streams) */
};
void api_route_limits(const struct server_state *st, const char *path,
                      struct api_route_limits *out);

#endif
