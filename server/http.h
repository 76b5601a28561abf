/*
 * http.h — a strict HTTP/1.1 request parser and the response head writer.
 *
 * The parser works in place on the connection's input buffer: it does not allocate, it
 * NUL-terminates tokens inside the buffer and percent-decodes the path over its own bytes.
 * Nothing that is not plainly HTTP/1.x is accepted: bare LF line ends, obsolete line folding,
 * control characters, conflicting or malformed Content-Length, transfer codings other than
 * chunked, and paths that are not in canonical form (//, /./, /../ after decoding) are refused
 * with a status and a message the connection sends back before it closes.
 */
#ifndef KESC_SERVER_HTTP_H
#define KESC_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"

enum http_parse_result {
	HTTP_PARSE_DONE = 0,      /* a complete element was parsed */
	HTTP_PARSE_MORE = 1,      /* need more input; nothing was modified */
	HTTP_PARSE_FAIL = -1,     /* malformed: answer error_status / error_message and close */
	HTTP_PARSE_TOO_LARGE = -2 /* chunked body beyond the limit */
};

struct http_request {
	char *method;
	char *path;        /* percent-decoded, canonical, NUL-terminated */
	char *query;       /* raw, without '?'; "" when absent */
	char *accept;      /* Accept header value, or NULL */
	int version_minor; /* 0 or 1 */
	size_t head_len;   /* bytes of the head, including the final CRLF CRLF */
	bool has_content_length;
	uint64_t content_length;
	bool chunked;
	bool keep_alive; /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive */
	bool expect_continue;
	int error_status;          /* on HTTP_PARSE_FAIL: 400, 417, 431, 501 or 505 */
	const char *error_message; /* on HTTP_PARSE_FAIL: static text for {"message": …} */
};

/*
 * Parses one request head at the start of buf (len bytes). On HTTP_PARSE_DONE the first
 * req->head_len bytes of buf have been rewritten and req points into them; the bytes after
 * the head are untouched (body, pipelined requests). On HTTP_PARSE_MORE buf is unchanged.
 */
int http_parse_head(char *buf, size_t len, struct http_request *req);

/* Percent-decodes path in place and checks it is canonical. 0, or -1 with *message set. */
int http_decode_path(char *path, const char **message);

/* Incremental decoder of a chunked body. */
struct http_chunked {
	int state;
	uint64_t remaining; /* bytes left in the current chunk */
	uint64_t total;     /* declared data bytes so far */
	size_t line_len;    /* bytes of the current size or trailer line(s) */
	bool digits;
};
void http_chunked_init(struct http_chunked *c);
/*
 * Consumes input from in[0..len), appending chunk data to out. *consumed is set to the bytes
 * used. Returns DONE after the last chunk and trailers, MORE when input ran out, FAIL on bad
 * syntax (message in *message), TOO_LARGE once the declared sizes pass max_body.
 */
int http_chunked_decode(struct http_chunked *c, const char *in, size_t len, size_t *consumed,
                        struct buf *out, uint64_t max_body, const char **message);

/* Reason phrase for a status code as Go's http.StatusText has it ("OK", "Not Acceptable", …);
 * NULL for a code without one (the status line then reads "status code N", as Go's). */
const char *http_reason(int status);

/* Go's http.TimeFormat of a time: "Mon, 02 Jan 2006 15:04:05 GMT" (29 characters). */
#define HTTP_DATE_LEN 29
void http_format_date(int64_t unix_seconds, char out[HTTP_DATE_LEN + 1]);

/* The content type of Go's plain-text replies (http.Error, its stock errors). A reply with it
 * gets "X-Content-Type-Options: nosniff", as http.Error adds. */
#define HTTP_CONTENT_TYPE_TEXT "text/plain; charset=utf-8"

/* The Connection header of a response: none (HTTP/1.1 default), close, or keep-alive (what an
 * HTTP/1.0 client that asked for keep-alive needs to see). */
enum http_connection { HTTP_CONN_DEFAULT = 0, HTTP_CONN_CLOSE = 1, HTTP_CONN_KEEP_ALIVE = 2 };

/*
 * Appends a response head with the headers Go's net/http adds (Date; nosniff for plain text).
 * content_type may be NULL (omitted); allow is the value of the "Accept" header KES sends
 * with 405 (NULL = none); chunked selects Transfer-Encoding: chunked instead of
 * Content-Length (log streams); connection is an enum http_connection.
 */
void http_write_head(struct buf *out, int status, const char *content_type, size_t body_len,
                     const char *allow, bool chunked, int connection);
/* Appends a complete JSON error response {"message":"<text>"\n} with KES's body layout; for
 * the parser's Host errors (missing, repeated, malformed) Go's plain-text stock reply, which
 * must be followed by closing the connection. */
void http_write_error(struct buf *out, int status, const char *message, bool close);

#endif
