/* http.c — strict HTTP/1.1 request parsing in place, chunked bodies, response heads. */
#include "server/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "keystore/json.h"
#include "server/transport_limits.h"

/* The texts clients see for malformed requests, in one table. */
static const char MSG_BAD_LINE[] = "malformed HTTP request line";
static const char MSG_BAD_METHOD[] = "malformed HTTP method";
static const char MSG_BAD_TARGET[] = "malformed HTTP request target";
static const char MSG_BAD_VERSION[] = "unsupported HTTP version";
static const char MSG_BAD_HEADER[] = "malformed HTTP header";
static const char MSG_TOO_MANY_HEADERS[] = "too many HTTP headers";
static const char MSG_HEAD_TOO_LARGE[] = "request header fields too large";
static const char MSG_BAD_LENGTH[] = "invalid Content-Length";
static const char MSG_BAD_TE[] = "unsupported transfer encoding";
static const char MSG_TE_AND_LENGTH[] = "both Transfer-Encoding and Content-Length";
static const char MSG_BAD_EXPECT[] = "unsupported Expect header";
/* Go's net/http answers these three before any handler runs, in its own plain-text format
 * (http_write_error sends them that way); the texts are Go's. */
static const char MSG_NO_HOST[] = "missing required Host header";
static const char MSG_DUP_HOST[] = "too many Host headers";
static const char MSG_BAD_HOST[] = "malformed Host header";
static const char MSG_BAD_ESCAPE[] = "invalid URL escape";
static const char MSG_BAD_PATH_CHAR[] = "invalid character in URL path";
static const char MSG_NONCANONICAL[] = "non-canonical URL path";
static const char MSG_BAD_CHUNK[] = "malformed chunked encoding";

static int fail(struct http_request *req, int status, const char *message)
{
	req->error_status = status;
	req->error_message = message;
	return HTTP_PARSE_FAIL;
}

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value bytes: VCHAR, obs-text, SP, HTAB. */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Finds CRLF CRLF within the first limit bytes; returns the head length or 0. */
static size_t find_head_end(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
		    buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

int http_decode_path(char *path, const char **message)
{
	char *w = path;
	for (const char *r = path; *r; r++) {
		unsigned char c = (unsigned char)*r;
		if (c == '%') {
			int hi = hex_value((unsigned char)r[1]);
			int lo = hi < 0 ? -1 : hex_value((unsigned char)r[2]);
			if (hi < 0 || lo < 0) {
				*message = MSG_BAD_ESCAPE;
				return -1;
			}
			c = (unsigned char)(hi << 4 | lo);
			r += 2;
		}
		if (c < 0x20 || c == 0x7f) {
			*message = MSG_BAD_PATH_CHAR;
			return -1;
		}
		*w++ = (char)c;
	}
	*w = '\0';
	if (path[0] != '/') {
		*message = MSG_NONCANONICAL;
		return -1;
	}
	/* Every segment between slashes must be non-empty and neither "." nor "..", except
	 * the final one, which may be empty (a trailing slash). */
	for (const char *seg = path + 1;;) {
		const char *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		if ((n == 0 && end) || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.')) {
			*message = MSG_NONCANONICAL;
			return -1;
		}
		if (!end)
			break;
		seg = end + 1;
	}
	return 0;
}

static int parse_request_line(char *line, struct http_request *req)
{
	char *sp1 = strchr(line, ' ');
	if (!sp1 || sp1 == line)
		return fail(req, 400, MSG_BAD_LINE);
	*sp1 = '\0';
	for (const char *p = line; *p; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(req, 400, MSG_BAD_METHOD);
	char *target = sp1 + 1;
	char *sp2 = strchr(target, ' ');
	if (!sp2 || sp2 == target)
		return fail(req, 400, MSG_BAD_LINE);
	*sp2 = '\0';
	const char *version = sp2 + 1;
	if (strncmp(version, "HTTP/", 5) != 0)
		return fail(req, 400, MSG_BAD_LINE);
	if (!strcmp(version, "HTTP/1.1"))
		req->version_minor = 1;
	else if (!strcmp(version, "HTTP/1.0"))
		req->version_minor = 0;
	else
		return fail(req, 505, MSG_BAD_VERSION);
	req->method = line;
	if (target[0] != '/')
		return fail(req, 400, MSG_BAD_TARGET);
	for (const char *p = target; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == '#')
			return fail(req, 400, MSG_BAD_TARGET);
	}
	char *q = strchr(target, '?');
	if (q) {
		*q = '\0';
		req->query = q + 1;
	} else {
		req->query = sp2; /* the NUL written above: "" */
	}
	const char *message = NULL;
	if (http_decode_path(target, &message) < 0)
		return fail(req, 400, message);
	req->path = target;
	return HTTP_PARSE_DONE;
}

/* Splits a comma-separated token list and reports close / keep-alive. */
static void parse_connection(const char *value, bool *close, bool *keep_alive)
{
	const char *p = value;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		const char *start = p;
		while (*p && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		size_t n = (size_t)(p - start);
		if (n == 5 && !strncasecmp(start, "close", 5))
			*close = true;
		else if (n == 10 && !strncasecmp(start, "keep-alive", 10))
			*keep_alive = true;
	}
}

static int parse_content_length(const char *value, struct http_request *req)
{
	uint64_t n = 0;
	if (!*value || strlen(value) > 18)
		return fail(req, 400, MSG_BAD_LENGTH);
	for (const char *p = value; *p; p++) {
		if (*p < '0' || *p > '9')
			return fail(req, 400, MSG_BAD_LENGTH);
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (req->has_content_length && req->content_length != n)
		return fail(req, 400, MSG_BAD_LENGTH);
	req->has_content_length = true;
	req->content_length = n;
	return HTTP_PARSE_DONE;
}

struct header_flags {
	bool close, keep_alive, host;
};

/* Go's httpguts.ValidHostHeader: any byte that may appear in a host, an IP literal or a port. */
static bool valid_host(const char *value)
{
	for (const char *p = value; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      strchr("!$%&'()*+,-.:;=[]_~", c)))
			return false;
	}
	return true;
}

static int apply_header(const char *name, const char *value, struct http_request *req,
                        struct header_flags *f)
{
	if (!strcasecmp(name, "content-length"))
		return parse_content_length(value, req);
	if (!strcasecmp(name, "transfer-encoding")) {
		if (req->chunked || strcasecmp(value, "chunked") != 0)
			return fail(req, 501, MSG_BAD_TE);
		req->chunked = true;
	} else if (!strcasecmp(name, "connection")) {
		parse_connection(value, &f->close, &f->keep_alive);
	} else if (!strcasecmp(name, "expect")) {
		if (strcasecmp(value, "100-continue") != 0)
			return fail(req, 417, MSG_BAD_EXPECT);
		req->expect_continue = true;
	} else if (!strcasecmp(name, "accept")) {
		req->accept = (char *)value;
	} else if (!strcasecmp(name, "host")) {
		if (f->host)
			return fail(req, 400, MSG_DUP_HOST);
		if (!valid_host(value))
			return fail(req, 400, MSG_BAD_HOST);
		f->host = true;
	}
	return HTTP_PARSE_DONE;
}

/* Parses one header line (no CRLF, NUL-terminated) in place. */
static int parse_header_line(char *line, struct http_request *req, struct header_flags *f)
{
	char *colon = line;
	while (is_tchar((unsigned char)*colon))
		colon++;
	if (colon == line || *colon != ':')
		return fail(req, 400, MSG_BAD_HEADER);
	*colon = '\0';
	char *value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	char *end = value + strlen(value);
	for (const char *p = value; p < end; p++)
		if (!is_value_char((unsigned char)*p))
			return fail(req, 400, MSG_BAD_HEADER);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return apply_header(line, value, req, f);
}

int http_parse_head(char *buf, size_t len, struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	size_t scan = len < LIMIT_HEAD_BYTES ? len : LIMIT_HEAD_BYTES;
	size_t head_len = find_head_end(buf, scan);
	if (!head_len) {
		/* NUL or a bare LF can never become valid: refuse early instead of waiting. */
		if (memchr(buf, '\0', scan))
			return fail(req, 400, MSG_BAD_LINE);
		if (len >= LIMIT_HEAD_BYTES)
			return fail(req, 431, MSG_HEAD_TOO_LARGE);
		return HTTP_PARSE_MORE;
	}
	if (memchr(buf, '\0', head_len))
		return fail(req, 400, MSG_BAD_LINE);
	req->head_len = head_len;
	buf[head_len - 2] = '\0'; /* the head is now lines separated by CRLF, NUL-terminated */

	struct header_flags f = {0};
	char *line = buf;
	unsigned count = 0;
	for (bool first = true; *line; first = false) {
		char *eol = strstr(line, "\r\n");
		if (!eol)
			return fail(req, 400, first ? MSG_BAD_LINE : MSG_BAD_HEADER);
		*eol = '\0';
		if (memchr(line, '\r', (size_t)(eol - line)) ||
		    memchr(line, '\n', (size_t)(eol - line)))
			return fail(req, 400, first ? MSG_BAD_LINE : MSG_BAD_HEADER);
		int rc;
		if (first) {
			rc = parse_request_line(line, req);
		} else if (++count > LIMIT_HEADER_COUNT) {
			rc = fail(req, 431, MSG_TOO_MANY_HEADERS);
		} else {
			rc = parse_header_line(line, req, &f);
		}
		if (rc != HTTP_PARSE_DONE)
			return rc;
		line = eol + 2;
	}
	if (!req->method)
		return fail(req, 400, MSG_BAD_LINE);
	if (req->chunked && req->has_content_length)
		return fail(req, 400, MSG_TE_AND_LENGTH);
	/* RFC 9112 §3.2 and Go: HTTP/1.1 requires Host (HTTP/1.0 does not; CONNECT names its
	 * authority in the target). */
	if (req->version_minor == 1 && !f.host && strcmp(req->method, "CONNECT") != 0)
		return fail(req, 400, MSG_NO_HOST);
	req->keep_alive = req->version_minor == 1 ? !f.close : (f.keep_alive && !f.close);
	return HTTP_PARSE_DONE;
}

/* Chunked decoder states. */
enum {
	CH_SIZE = 0, /* hex digits of the chunk size */
	CH_EXT,      /* chunk extensions up to CR */
	CH_SIZE_LF,  /* LF after the size line */
	CH_DATA,     /* remaining data bytes */
	CH_DATA_CR,  /* CR after the data */
	CH_DATA_LF,  /* LF after the data */
	CH_TRAILER,  /* start of a trailer line (or the final empty line) */
	CH_TRAILER_LINE,
	CH_TRAILER_LF,
	CH_FINAL_LF,
	CH_DONE,
};

void http_chunked_init(struct http_chunked *c)
{
	memset(c, 0, sizeof(*c));
}

static int chunk_fail(const char **message)
{
	*message = MSG_BAD_CHUNK;
	return HTTP_PARSE_FAIL;
}

/* One byte of the size line or trailers. Returns HTTP_PARSE_MORE to go on, or a result. */
static int chunked_step(struct http_chunked *c, unsigned char ch, uint64_t max_body,
                        const char **message)
{
	switch (c->state) {
	case CH_SIZE: {
		int v = hex_value(ch);
		if (v >= 0) {
			if (c->remaining >> 56)
				return chunk_fail(message);
			c->remaining = c->remaining << 4 | (uint64_t)v;
			c->digits = true;
			break;
		}
		if (!c->digits)
			return chunk_fail(message);
		if (c->remaining > max_body || c->total + c->remaining > max_body)
			return HTTP_PARSE_TOO_LARGE;
		if (ch == ';' || ch == ' ' || ch == '\t')
			c->state = CH_EXT;
		else if (ch == '\r')
			c->state = CH_SIZE_LF;
		else
			return chunk_fail(message);
		break;
	}
	case CH_EXT:
		if (ch == '\r')
			c->state = CH_SIZE_LF;
		else if (!is_value_char(ch))
			return chunk_fail(message);
		break;
	case CH_SIZE_LF:
		if (ch != '\n')
			return chunk_fail(message);
		c->total += c->remaining;
		c->line_len = 0;
		c->digits = false;
		c->state = c->remaining ? CH_DATA : CH_TRAILER;
		break;
	case CH_DATA_CR:
		if (ch != '\r')
			return chunk_fail(message);
		c->state = CH_DATA_LF;
		break;
	case CH_DATA_LF:
		if (ch != '\n')
			return chunk_fail(message);
		c->state = CH_SIZE;
		break;
	case CH_TRAILER:
		c->state = ch == '\r' ? CH_FINAL_LF : CH_TRAILER_LINE;
		if (ch != '\r' && !is_value_char(ch))
			return chunk_fail(message);
		break;
	case CH_TRAILER_LINE:
		if (ch == '\r')
			c->state = CH_TRAILER_LF;
		else if (!is_value_char(ch))
			return chunk_fail(message);
		break;
	case CH_TRAILER_LF:
		if (ch != '\n')
			return chunk_fail(message);
		c->state = CH_TRAILER;
		break;
	case CH_FINAL_LF:
		if (ch != '\n')
			return chunk_fail(message);
		c->state = CH_DONE;
		return HTTP_PARSE_DONE;
	default:
		return chunk_fail(message);
	}
	return HTTP_PARSE_MORE;
}

int http_chunked_decode(struct http_chunked *c, const char *in, size_t len, size_t *consumed,
                        struct buf *out, uint64_t max_body, const char **message)
{
	size_t i = 0;
	int rc = HTTP_PARSE_MORE;
	if (c->state == CH_DONE) {
		rc = HTTP_PARSE_DONE;
		goto out;
	}
	while (i < len) {
		if (c->state == CH_DATA) {
			size_t n = len - i;
			if ((uint64_t)n > c->remaining)
				n = (size_t)c->remaining;
			buf_append(out, in + i, n);
			i += n;
			c->remaining -= n;
			if (!c->remaining)
				c->state = CH_DATA_CR;
			continue;
		}
		if (c->state != CH_DATA_CR && c->state != CH_DATA_LF &&
		    ++c->line_len >
		        (c->state >= CH_TRAILER ? LIMIT_TRAILER_BYTES : LIMIT_CHUNK_LINE_BYTES)) {
			rc = chunk_fail(message);
			goto out;
		}
		int step = chunked_step(c, (unsigned char)in[i++], max_body, message);
		if (step != HTTP_PARSE_MORE) {
			rc = step;
			goto out;
		}
	}
out:
	*consumed = i;
	return rc;
}

/* Go's http.StatusText, so that every status line reads as KES's. */
struct http_status_text {
	int status;
	const char *text;
};
/* clang-format off: one status per line reads as the table it is */
static const struct http_status_text STATUS_TEXTS[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Request Entity Too Large"},
    {414, "Request URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Requested Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};
/* clang-format on */

const char *http_reason(int status)
{
	for (size_t i = 0; i < sizeof STATUS_TEXTS / sizeof STATUS_TEXTS[0]; i++)
		if (STATUS_TEXTS[i].status == status)
			return STATUS_TEXTS[i].text;
	return NULL;
}

/* Two digits of v (0..99) at p. */
static void put_2digits(char *p, int v)
{
	p[0] = (char)('0' + v / 10 % 10);
	p[1] = (char)('0' + v % 10);
}

void http_format_date(int64_t unix_seconds, char out[HTTP_DATE_LEN + 1])
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	/* The format has room for years 1970 to 9999 (the last second is 253402300799); a clock
	 * outside them cannot be right, and a date cut short is no date. */
	if (unix_seconds < 0)
		unix_seconds = 0;
	if (unix_seconds > 253402300799)
		unix_seconds = 253402300799;
	time_t t = (time_t)unix_seconds;
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	/* "Mon, 02 Jan 2006 15:04:05 GMT", field by field: every field has a fixed width. */
	memcpy(out, days[tm.tm_wday], 3);
	memcpy(out + 3, ", ", 2);
	put_2digits(out + 5, tm.tm_mday);
	out[7] = ' ';
	memcpy(out + 8, months[tm.tm_mon], 3);
	out[11] = ' ';
	put_2digits(out + 12, (tm.tm_year + 1900) / 100);
	put_2digits(out + 14, (tm.tm_year + 1900) % 100);
	out[16] = ' ';
	put_2digits(out + 17, tm.tm_hour);
	out[19] = ':';
	put_2digits(out + 20, tm.tm_min);
	out[22] = ':';
	put_2digits(out + 23, tm.tm_sec);
	memcpy(out + 25, " GMT", 4);
	out[HTTP_DATE_LEN] = '\0';
}

/* The Date header of every reply, as Go sends it. Formatted at most once a second on each
 * thread (each event loop is one thread), so a reply costs a clock read and a copy. */
static void append_date(struct buf *out)
{
	static __thread int64_t cached_second = -1;
	static __thread char cached[HTTP_DATE_LEN + 1];
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
		ts.tv_sec = time(NULL);
	if ((int64_t)ts.tv_sec != cached_second) {
		http_format_date((int64_t)ts.tv_sec, cached);
		cached_second = (int64_t)ts.tv_sec;
	}
	buf_append(out, "Date: ", 6);
	buf_append(out, cached, HTTP_DATE_LEN);
	buf_append(out, "\r\n", 2);
}

/* "Name: value\r\n" */
static void append_header(struct buf *out, const char *name_colon, const char *value)
{
	buf_append_str(out, name_colon);
	buf_append_str(out, value);
	buf_append(out, "\r\n", 2);
}

void http_write_head(struct buf *out, int status, const char *content_type, size_t body_len,
                     const char *allow, bool chunked, int connection)
{
	/* Appended piece by piece: vsnprintf (a sizing pass and a writing pass per call) cost
	 * 5,000 of a cached request's ~70,000 instructions. */
	const char *reason = http_reason(status);
	buf_append(out, "HTTP/1.1 ", 9);
	buf_append_decimal(out, status);
	if (reason) {
		buf_append_char(out, ' ');
		buf_append_str(out, reason);
	} else {
		buf_append_str(out, " status code ");
		buf_append_decimal(out, status);
	}
	buf_append(out, "\r\n", 2);
	/* The order Go writes them in: the handler's headers, then the ones it adds itself. */
	if (allow)
		append_header(out, "Accept: ", allow);
	if (content_type)
		append_header(out, "Content-Type: ", content_type);
	/* Go's http.Error (the 404 of an unknown path) is what sends this content type, and it
	 * always adds nosniff. */
	if (content_type && !strcmp(content_type, HTTP_CONTENT_TYPE_TEXT))
		buf_append_str(out, "X-Content-Type-Options: nosniff\r\n");
	if (connection == HTTP_CONN_CLOSE)
		buf_append_str(out, "Connection: close\r\n");
	else if (connection == HTTP_CONN_KEEP_ALIVE)
		buf_append_str(out, "Connection: keep-alive\r\n");
	if (chunked)
		buf_append_str(out, "Transfer-Encoding: chunked\r\n");
	append_date(out);
	if (!chunked) {
		buf_append_str(out, "Content-Length: ");
		buf_append_decimal(out, (int64_t)body_len);
		buf_append(out, "\r\n\r\n", 4);
	} else {
		buf_append(out, "\r\n", 2);
	}
}

void http_write_error(struct buf *out, int status, const char *message, bool close)
{
	if (message == MSG_NO_HOST || message == MSG_DUP_HOST || message == MSG_BAD_HOST) {
		/* Go's stock reply, written on the connection before it is closed: no Date, no
		 * Content-Length, the text in the status line and again as the body. */
		const char *reason = http_reason(status);
		buf_printf(out,
		           "HTTP/1.1 %d %s: %s\r\nContent-Type: " HTTP_CONTENT_TYPE_TEXT
		           "\r\nConnection: close\r\n\r\n%d %s: %s",
		           status, reason, message, status, reason, message);
		return;
	}
	struct buf body;
	buf_init(&body, 4096);
	buf_append_str(&body, "{\"message\":");
	json_escape_string(&body, message, strlen(message));
	buf_append_str(&body, "\n}");
	http_write_head(out, status, "application/json", body.len, NULL, false,
	                close ? HTTP_CONN_CLOSE : HTTP_CONN_DEFAULT);
	buf_append(out, body.data, body.len);
	buf_free(&body);
}
