/* api_log.c — /v1/log/error and /v1/log/audit: the transport streams the log (log.h) as
 * ndjson for as long as the client stays connected. */
#include "keystore/bytes.h"
#include "server/router.h"

static enum api_outcome start_stream(struct api_call *c, enum api_stream which)
{
	buf_reset(&c->resp->body);
	c->resp->status = 200;
	c->resp->content_type = "application/x-ndjson";
	c->resp->stream = which;
	return API_DONE;
}

enum api_outcome api_log_error(struct api_call *c)
{
	return start_stream(c, API_STREAM_ERROR_LOG);
}

enum api_outcome api_log_audit(struct api_call *c)
{
	return start_stream(c, API_STREAM_AUDIT_LOG);
}
