/* api_util.c — name rules, Go time formatting and JSON reply helpers for the handlers. */
#include "server/api_util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define API_NAME_MAX 80

static bool name_byte_ok(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       c == '_' || c == '-';
}

/* The shared rule: every byte allowed, '-' never at either end; a '*' allowed last when
 * star_ok. Multi-byte UTF-8 characters are never allowed, so checking bytes is enough. */
static bool chars_ok(const char *s, size_t n, bool star_ok)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '-' && (i == 0 || i == n - 1))
			return false;
		if (c == '*' && star_ok && i == n - 1)
			continue;
		if (!name_byte_ok(c))
			return false;
	}
	return true;
}

bool api_valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > API_NAME_MAX || strcmp(s, "_") == 0)
		return false;
	return chars_ok(s, n, false);
}

bool api_valid_pattern(const char *s)
{
	size_t n = strlen(s);
	if (strcmp(s, "*") == 0)
		return true;
	if (n > API_NAME_MAX || strcmp(s, "_") == 0)
		return false;
	return chars_ok(s, n, true);
}

void api_pattern_prefix(const char *pattern, char *out, size_t outlen)
{
	size_t n = strlen(pattern);
	if (n > 0 && pattern[n - 1] == '*')
		n--;
	if (n >= outlen)
		n = outlen ? outlen - 1 : 0;
	if (outlen) {
		memcpy(out, pattern, n);
		out[n] = '\0';
	}
}

void api_format_time(char *out, size_t outlen, int64_t sec, int32_t nsec)
{
	if (sec == 0 && nsec == 0) {
		snprintf(out, outlen, "0001-01-01T00:00:00Z");
		return;
	}
	if (nsec < 0 || nsec >= 1000000000)
		nsec = 0;
	time_t t = (time_t)sec;
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		snprintf(out, outlen, "0001-01-01T00:00:00Z");
		return;
	}
	char frac[11] = "";
	if (nsec > 0) {
		/* Go's RFC3339Nano: ".999999999" — up to nine digits, trailing zeros dropped. */
		snprintf(frac, sizeof frac, ".%09d", (int)nsec);
		size_t n = strlen(frac);
		while (n > 1 && frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	/* Go's encoder refuses years outside 0..9999; show such a timestamp as unknown. */
	long long year = (long long)tm.tm_year + 1900;
	if (year < 0 || year > 9999) {
		snprintf(out, outlen, "0001-01-01T00:00:00Z");
		return;
	}
	snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d%sZ", year, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

void api_format_time_ns(char *out, size_t outlen, int64_t unix_ns)
{
	int64_t sec = unix_ns / 1000000000;
	int64_t nsec = unix_ns % 1000000000;
	if (nsec < 0) {
		nsec += 1000000000;
		sec--;
	}
	api_format_time(out, outlen, sec, (int32_t)nsec);
}

void api_reply_json_begin(struct api_response *resp, struct json_writer *w)
{
	buf_reset(&resp->body);
	resp->status = 200;
	resp->content_type = "application/json";
	resp->stream = API_STREAM_NONE;
	json_writer_init(w, &resp->body);
}

void api_reply_json_end(struct api_response *resp)
{
	buf_append_char(&resp->body, '\n');
}

void api_reply_empty(struct api_response *resp)
{
	buf_reset(&resp->body);
	resp->status = 200;
	resp->content_type = NULL;
	resp->stream = API_STREAM_NONE;
}

/* Most JSON values (scalars and containers) a request body may hold. */
#define API_BODY_MAX_JSON_VALUES 4096

int api_parse_body(const struct api_request *req, bool allow_empty, struct json_value **out)
{
	*out = NULL;
	if (req->body_too_large)
		return -1;
	if (req->body_len == 0)
		return allow_empty ? 0 : -1; /* Go's Decode: EOF */
	char err[64];
	/* KES's bodies have a handful of members; no client needs thousands of values, and the
	 * cap keeps a hostile body from costing a loop thread a large tree. */
	struct json_value *v = json_parse_first((const char *)req->body, req->body_len,
	                                        API_BODY_MAX_JSON_VALUES, err, sizeof err);
	if (!v)
		return -1;
	if (json_type(v) == JSON_NULL) {
		json_free(v);
		return 0;
	}
	if (json_type(v) != JSON_OBJECT) {
		json_free(v);
		return -1;
	}
	*out = v;
	return 0;
}

int api_body_string(const struct json_value *body, const char *key, const char **s, size_t *n)
{
	*s = "";
	*n = 0;
	const struct json_value *m = json_get(body, key);
	if (!m || json_type(m) == JSON_NULL)
		return 0;
	if (json_type(m) != JSON_STRING)
		return -1;
	*s = json_string(m, n);
	return 0;
}
