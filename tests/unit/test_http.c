/* test_http.c — the request parser (server/http.c): what it accepts, what it refuses, and that
 * it never reads past a head or a body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"
#include "server/transport_limits.h"
#include "tests/unit/check.h"

/* Parses a copy of s (the parser writes into its input). */
static int parse(const char *s, struct http_request *req, char **copy)
{
	size_t n = strlen(s);
	*copy = malloc(n + 1);
	memcpy(*copy, s, n + 1);
	return http_parse_head(*copy, n, req);
}

static int parse_status(const char *s)
{
	struct http_request req;
	char *copy;
	int rc = parse(s, &req, &copy);
	free(copy);
	return rc == HTTP_PARSE_FAIL ? req.error_status : rc;
}

static void test_request_line(void)
{
	struct http_request req;
	char *c;
	CHECK_EQ_INT(parse("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", &req, &c),
	             HTTP_PARSE_DONE);
	CHECK_EQ_STR(req.method, "GET");
	CHECK_EQ_STR(req.path, "/v1/status");
	CHECK_EQ_STR(req.query, "");
	CHECK_EQ_INT(req.version_minor, 1);
	CHECK(req.keep_alive);
	CHECK(!req.has_content_length && !req.chunked);
	free(c);

	CHECK_EQ_INT(parse("PUT /v1/key/list/a%2Ab?x=1&y HTTP/1.1\r\nHost: x\r\n\r\n", &req, &c),
	             HTTP_PARSE_DONE);
	CHECK_EQ_STR(req.path, "/v1/key/list/a*b");
	CHECK_EQ_STR(req.query, "x=1&y");
	free(c);

	CHECK_EQ_INT(parse_status("GET /v1/status HTTP/2.0\r\n\r\n"), 505);
	CHECK_EQ_INT(parse_status("GET /v1/status\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET  /v1/status HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/status HTTP/1.1 \r\n\r\n"), 505);
	CHECK_EQ_INT(parse_status("G(T /v1/status HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET http://x/v1/status HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET * HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /a\x01 HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /a#b HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/status HTTP/1.1\n\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("hello"), HTTP_PARSE_MORE);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\n"), HTTP_PARSE_MORE);
}

static void test_nul_refused_early(void)
{
	struct http_request req;
	char data[] = "GET /\0 HTTP/1.1";
	CHECK_EQ_INT(http_parse_head(data, sizeof(data) - 1, &req), HTTP_PARSE_FAIL);
	CHECK_EQ_INT(req.error_status, 400);
}

static void test_paths(void)
{
	CHECK_EQ_INT(parse_status("GET /v1/key/create/a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n"),
	             HTTP_PARSE_DONE);
	CHECK_EQ_INT(parse_status("GET /v1/key/create/ HTTP/1.1\r\nHost: x\r\n\r\n"),
	             HTTP_PARSE_DONE);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), HTTP_PARSE_DONE);
	CHECK_EQ_INT(parse_status("GET /v1//status HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/./status HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/../status HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/.. HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/. HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET //v1/status HTTP/1.1\r\n\r\n"), 400);
	/* Decoding happens before the checks: escaped dots and slashes do not sneak through. */
	CHECK_EQ_INT(parse_status("GET /v1/key/%2E%2E/status HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/a%2F%2Fb HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/a%2F..%2Fb HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/%00 HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/%0a HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/%7f HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/%zz HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/% HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET /v1/key/%4 HTTP/1.1\r\n\r\n"), 400);
	/* ".x" and "..." are ordinary names. */
	CHECK_EQ_INT(parse_status("GET /v1/key/.x/... HTTP/1.1\r\nHost: x\r\n\r\n"),
	             HTTP_PARSE_DONE);

	const char *msg = NULL;
	char p[] = "/a%41%c3%a9";
	CHECK_EQ_INT(http_decode_path(p, &msg), 0);
	CHECK_EQ_STR(p, "/aA\xc3\xa9");
}

static void test_headers(void)
{
	struct http_request req;
	char *c;
	CHECK_EQ_INT(
	    parse("PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length:  12 \r\nAccept: text/plain\r\n"
	          "Expect: 100-Continue\r\nX-Other: a\tb\r\n\r\nBODY",
	          &req, &c),
	    HTTP_PARSE_DONE);
	CHECK(req.has_content_length);
	CHECK_EQ_INT(req.content_length, 12);
	CHECK_EQ_STR(req.accept, "text/plain");
	CHECK(req.expect_continue);
	CHECK_MEM(c + req.head_len, "BODY", 4);
	free(c);

	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nNo Colon\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\n: empty\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nName : v\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nExpect: something\r\n\r\n"), 417);
}

static void test_header_limits(void)
{
	/* A head exactly at the limit parses; one byte more is refused with 431. */
	size_t cap = LIMIT_HEAD_BYTES + 64;
	char *big = malloc(cap);
	const char *start = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
	size_t n = strlen(start);
	memcpy(big, start, n);
	size_t fill = LIMIT_HEAD_BYTES - n - 4;
	memset(big + n, 'a', fill);
	memcpy(big + n + fill, "\r\n\r\n", 4);
	struct http_request req;
	CHECK_EQ_INT(http_parse_head(big, LIMIT_HEAD_BYTES, &req), HTTP_PARSE_DONE);

	memcpy(big, start, n);
	memset(big + n, 'a', fill + 1);
	memcpy(big + n + fill + 1, "\r\n\r\n", 4);
	CHECK_EQ_INT(http_parse_head(big, LIMIT_HEAD_BYTES + 1, &req), HTTP_PARSE_FAIL);
	CHECK_EQ_INT(req.error_status, 431);
	/* Without any line end, waiting stops at the limit. */
	memset(big, 'a', LIMIT_HEAD_BYTES);
	CHECK_EQ_INT(http_parse_head(big, LIMIT_HEAD_BYTES - 1, &req), HTTP_PARSE_MORE);
	CHECK_EQ_INT(http_parse_head(big, LIMIT_HEAD_BYTES, &req), HTTP_PARSE_FAIL);
	CHECK_EQ_INT(req.error_status, 431);
	free(big);

	/* Too many header lines. */
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= LIMIT_HEADER_COUNT; i++)
		buf_printf(&b, "X-%d: y\r\n", i);
	buf_append_str(&b, "\r\n");
	CHECK_EQ_INT(parse_status(b.data), 431);
	buf_free(&b);
}

static void test_length_and_chunked(void)
{
	struct http_request req;
	char *c;
	CHECK_EQ_INT(
	    parse("PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &req, &c),
	    HTTP_PARSE_DONE);
	CHECK(req.chunked);
	free(c);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: "
	                          "chunked\r\n\r\n"),
	             400);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
	             501);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
	                          "Transfer-Encoding: chunked\r\n\r\n"),
	             501);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nContent-Length: \r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("PUT / HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n"),
	             400);
	CHECK_EQ_INT(
	    parse_status("PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), 400);
	CHECK_EQ_INT(
	    parse_status(
	        "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
	    HTTP_PARSE_DONE);
}

static int decode_all(const char *in, size_t len, uint64_t max, struct buf *out, size_t *used,
                      size_t step)
{
	struct http_chunked ch;
	http_chunked_init(&ch);
	const char *msg = NULL;
	size_t off = 0;
	int rc = HTTP_PARSE_MORE;
	while (off < len) {
		size_t n = len - off < step ? len - off : step, c = 0;
		rc = http_chunked_decode(&ch, in + off, n, &c, out, max, &msg);
		off += c;
		if (rc != HTTP_PARSE_MORE)
			break;
	}
	*used = off;
	return rc;
}

static void test_chunked_body(void)
{
	const char *body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
	                   "Trailer: x\r\n\r\nGET /next";
	size_t len = strlen(body);
	for (size_t step = 1; step <= len; step += 7) {
		struct buf out;
		buf_init(&out, 0);
		size_t used = 0;
		CHECK_EQ_INT(decode_all(body, len, 1000, &out, &used, step), HTTP_PARSE_DONE);
		CHECK_EQ_STR(out.data, "Wikipedia in\r\n\r\nchunks.");
		CHECK_EQ_STR(body + used, "GET /next");
		buf_free(&out);
	}
	struct {
		const char *in;
		int rc;
	} bad[] = {
	    {"x\r\n", HTTP_PARSE_FAIL},
	    {"\r\n", HTTP_PARSE_FAIL},
	    {"4\nWiki\r\n0\r\n\r\n", HTTP_PARSE_FAIL},
	    {"4\r\nWikiX\r\n0\r\n\r\n", HTTP_PARSE_FAIL},
	    {"-4\r\n", HTTP_PARSE_FAIL},
	    {"4\r\nWiki\r\n0\r\n\r\r", HTTP_PARSE_FAIL},
	    {"fffffffffffffffffff\r\n", HTTP_PARSE_FAIL},
	    {"3e9\r\n", HTTP_PARSE_TOO_LARGE},
	    {"200\r\n", HTTP_PARSE_MORE},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf out;
		buf_init(&out, 0);
		size_t used;
		int rc = decode_all(bad[i].in, strlen(bad[i].in), 1000, &out, &used, 1);
		CHECK_EQ_INT(rc, bad[i].rc);
		buf_free(&out);
	}
	/* The sum of chunks counts, not each chunk alone. */
	struct buf out;
	buf_init(&out, 0);
	size_t used;
	struct buf many;
	buf_init(&many, 0);
	for (int i = 0; i < 3; i++) {
		buf_append_str(&many, "190\r\n");
		for (int j = 0; j < 400; j++)
			buf_append_char(&many, 'z');
		buf_append_str(&many, "\r\n");
	}
	buf_append_str(&many, "0\r\n\r\n");
	CHECK_EQ_INT(decode_all(many.data, many.len, 1000, &out, &used, 100), HTTP_PARSE_TOO_LARGE);
	buf_reset(&out);
	CHECK_EQ_INT(decode_all(many.data, many.len, 1200, &out, &used, 100), HTTP_PARSE_DONE);
	CHECK_EQ_INT(out.len, 1200);
	buf_free(&many);
	buf_free(&out);
}

static void test_pipelining(void)
{
	char data[] =
	    "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: "
	    "2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t len = strlen(data), off = 0;
	struct http_request req;
	CHECK_EQ_INT(http_parse_head(data, len, &req), HTTP_PARSE_DONE);
	CHECK_EQ_STR(req.path, "/a");
	off += req.head_len;
	CHECK_EQ_INT(http_parse_head(data + off, len - off, &req), HTTP_PARSE_DONE);
	CHECK_EQ_STR(req.path, "/b");
	CHECK_EQ_STR(req.method, "PUT");
	off += req.head_len;
	CHECK_MEM(data + off, "hi", 2);
	off += req.content_length;
	CHECK_EQ_INT(http_parse_head(data + off, len - off, &req), HTTP_PARSE_DONE);
	CHECK_EQ_STR(req.path, "/c");
	CHECK_EQ_INT(off + req.head_len, len);
}

static void test_keep_alive(void)
{
	struct http_request req;
	char *c;
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", &req, &c), HTTP_PARSE_DONE);
	CHECK(!req.keep_alive);
	CHECK_EQ_INT(req.version_minor, 0);
	free(c);
	CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req, &c),
	             HTTP_PARSE_DONE);
	CHECK(req.keep_alive);
	free(c);
	CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n", &req, &c),
	             HTTP_PARSE_DONE);
	CHECK(!req.keep_alive);
	free(c);
}

/* The head of a reply: Go's header set (Date on every reply, nosniff with http.Error's plain
 * text) and Go's reason phrases. */
static void test_response_head(void)
{
	struct buf out;
	buf_init(&out, 0);
	http_write_head(&out, 405, "application/json", 3, "PUT", false, HTTP_CONN_CLOSE);
	/* "Date: " + 29 characters of Go's http.TimeFormat. */
	const char *date = strstr(out.data, "Date: ");
	CHECK(date != NULL);
	char masked[512];
	snprintf(masked, sizeof masked, "%s", out.data);
	if (date)
		memset(masked + (date - out.data) + 6, '*', HTTP_DATE_LEN);
	CHECK_EQ_STR(masked, "HTTP/1.1 405 Method Not Allowed\r\nAccept: PUT\r\n"
	                     "Content-Type: application/json\r\nConnection: close\r\n"
	                     "Date: *****************************\r\nContent-Length: 3\r\n\r\n");
	buf_reset(&out);
	http_write_head(&out, 404, "text/plain; charset=utf-8", 19, NULL, false, HTTP_CONN_DEFAULT);
	CHECK(strstr(out.data,
	             "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; "
	             "charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: ") == out.data);
	buf_reset(&out);
	http_write_head(&out, 406, "application/json", 0, NULL, false, HTTP_CONN_DEFAULT);
	CHECK(strncmp(out.data, "HTTP/1.1 406 Not Acceptable\r\n", 29) == 0);
	CHECK(strstr(out.data, "nosniff") == NULL);
	buf_reset(&out);
	http_write_head(&out, 299, NULL, 0, NULL, false, HTTP_CONN_DEFAULT);
	CHECK(strncmp(out.data, "HTTP/1.1 299 status code 299\r\n", 30) == 0);
	buf_reset(&out);
	http_write_head(&out, 200, "application/x-ndjson", 0, NULL, true, HTTP_CONN_DEFAULT);
	CHECK(strstr(out.data, "Transfer-Encoding: chunked\r\nDate: ") != NULL);
	CHECK(strstr(out.data, "Content-Length") == NULL);
	buf_reset(&out);
	http_write_error(&out, 400, "a \"b\"", false);
	CHECK(strncmp(out.data, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n",
	              57) == 0);
	CHECK(strstr(out.data, "Content-Length: 22\r\n\r\n{\"message\":\"a \\\"b\\\"\"\n}") !=
	      NULL);
	buf_free(&out);
}

/* http.TimeFormat: "Mon, 02 Jan 2006 15:04:05 GMT", always in GMT, day and hour zero-padded. */
static void test_date_format(void)
{
	char d[HTTP_DATE_LEN + 1];
	http_format_date(1136214245, d); /* Go's reference time */
	CHECK_EQ_STR(d, "Mon, 02 Jan 2006 15:04:05 GMT");
	http_format_date(0, d);
	CHECK_EQ_STR(d, "Thu, 01 Jan 1970 00:00:00 GMT");
	http_format_date(1709251199, d);
	CHECK_EQ_STR(d, "Thu, 29 Feb 2024 23:59:59 GMT");
	/* A five-digit year does not fit the format: the last second that does, not a date cut
	 * short. Before 1970 (a clock that cannot be right), the epoch. */
	http_format_date(253402300800, d);
	CHECK_EQ_STR(d, "Fri, 31 Dec 9999 23:59:59 GMT");
	http_format_date(INT64_MAX, d);
	CHECK_EQ_STR(d, "Fri, 31 Dec 9999 23:59:59 GMT");
	http_format_date(-1, d);
	CHECK_EQ_STR(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

/* Every code of Go's http.StatusText has its text; others have none. */
static void test_reason_phrases(void)
{
	CHECK_EQ_STR(http_reason(200), "OK");
	CHECK_EQ_STR(http_reason(406), "Not Acceptable");
	CHECK_EQ_STR(http_reason(409), "Conflict");
	CHECK_EQ_STR(http_reason(413), "Request Entity Too Large");
	CHECK_EQ_STR(http_reason(418), "I'm a teapot");
	CHECK_EQ_STR(http_reason(502), "Bad Gateway");
	CHECK_EQ_STR(http_reason(504), "Gateway Timeout");
	CHECK_EQ_STR(http_reason(505), "HTTP Version Not Supported");
	CHECK_EQ_STR(http_reason(511), "Network Authentication Required");
	CHECK(http_reason(299) == NULL);
	CHECK(http_reason(0) == NULL);
	int known = 0;
	for (int code = 100; code < 600; code++)
		known += http_reason(code) != NULL;
	CHECK_EQ_INT(known, 62);
}

/* Go's readRequest: HTTP/1.1 needs exactly one valid Host; HTTP/1.0 needs none. */
static void test_host_rules(void)
{
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nX: y\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.0\r\n\r\n"), HTTP_PARSE_DONE);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nHost:\r\n\r\n"), HTTP_PARSE_DONE);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nhOsT: [fe80::1%25en0]:7373\r\n\r\n"),
	             HTTP_PARSE_DONE);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n"), 400);
	CHECK_EQ_INT(parse_status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);

	/* Each is answered with Go's stock text, which the connection then closes. */
	const char *cases[][2] = {
	    {"GET / HTTP/1.1\r\n\r\n", "missing required Host header"},
	    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "too many Host headers"},
	    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "malformed Host header"},
	};
	for (size_t i = 0; i < 3; i++) {
		struct http_request req;
		char *c;
		CHECK_EQ_INT(parse(cases[i][0], &req, &c), HTTP_PARSE_FAIL);
		struct buf out;
		buf_init(&out, 0);
		http_write_error(&out, req.error_status, req.error_message, true);
		char want[256];
		snprintf(want, sizeof want,
		         "HTTP/1.1 400 Bad Request: %s\r\nContent-Type: text/plain; "
		         "charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: %s",
		         cases[i][1], cases[i][1]);
		CHECK_EQ_STR(out.data, want);
		buf_free(&out);
		free(c);
	}
}

int main(void)
{
	RUN(test_request_line);
	RUN(test_date_format);
	RUN(test_reason_phrases);
	RUN(test_host_rules);
	RUN(test_nul_refused_early);
	RUN(test_paths);
	RUN(test_headers);
	RUN(test_header_limits);
	RUN(test_length_and_chunked);
	RUN(test_chunked_body);
	RUN(test_pipelining);
	RUN(test_keep_alive);
	RUN(test_response_head);
	return CHECK_DONE();
}
