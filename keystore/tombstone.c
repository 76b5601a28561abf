/*
 * tombstone.c — the tombstone record (tombstone.h): encode, parse, expiry, a description for
 * logs. Parsing is bounded: only records of at most TOMBSTONE_MAX_LEN bytes that start like a
 * JSON object are parsed, with at most TOMBSTONE_MAX_VALUES values.
 */
#include "keystore/tombstone.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keystore/json.h"
#include "keystore/key_internal.h"

/* The object and its members, with room for members a later format adds. */
#define TOMBSTONE_MAX_VALUES 32
/* 9999-12-31T23:59:59Z: the last second RFC 3339's four-digit year can say. */
#define TOMBSTONE_LAST_SECOND 253402300799LL

/* What deleted_by may hold: an identity (hex) or any name made of these, nothing a log line
 * could be fooled by. */
static bool by_char_ok(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '_' || c == '.' || c == ':';
}

static bool by_valid(const char *s, size_t n)
{
	if (n > KEY_CREATED_BY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!by_char_ok(s[i]))
			return false;
	return true;
}

void tombstone_format_time(int64_t sec, char *out, size_t n)
{
	struct tm tm;
	time_t t = (time_t)sec;

	if (sec < 0 || sec > TOMBSTONE_LAST_SECOND || !gmtime_r(&t, &tm) ||
	    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "(unknown time)");
}

int tombstone_encode(const struct tombstone *t, struct bytes *out)
{
	char at[32], until[32];
	size_t by_len = strnlen(t->deleted_by, sizeof(t->deleted_by));
	struct json_writer w;
	struct buf b;

	out->data = NULL;
	out->len = 0;
	if (!by_valid(t->deleted_by, by_len))
		return KEY_ERR_INVALID;
	buf_init(&b, TOMBSTONE_MAX_LEN);
	json_writer_init(&w, &b);
	json_object_begin(&w);
	json_key(&w, "algorithm");
	json_write_string(&w, TOMBSTONE_ALGORITHM);
	json_key(&w, "deleted_at");
	if (t->deleted_at < 0 || t->deleted_at > TOMBSTONE_LAST_SECOND) {
		json_write_null(&w);
	} else {
		tombstone_format_time(t->deleted_at, at, sizeof(at));
		json_write_string(&w, at);
	}
	json_key(&w, "deleted_by");
	json_write_string_n(&w, t->deleted_by, by_len);
	json_key(&w, "until");
	if (t->until == TOMBSTONE_FOREVER || t->until > TOMBSTONE_LAST_SECOND) {
		json_write_null(&w);
	} else {
		/* Before 1970: long expired, and RFC 3339 has no years before 0000. */
		tombstone_format_time(t->until < 0 ? 0 : t->until, until, sizeof(until));
		json_write_string(&w, until);
	}
	json_object_end(&w);
	int rc = buf_take(&b, out) == 0 ? 0 : KEY_ERR_NOMEM;
	buf_free(&b);
	return rc;
}

/* A time member as Unix seconds, rounded up (a reserved name stays reserved a little longer
 * rather than shorter). false when absent, null or not a timestamp. */
static bool member_time(const struct json_value *v, const char *key, int64_t *sec)
{
	size_t n;
	int32_t nsec = 0;
	const char *s = json_string(json_get(v, key), &n);

	if (!s || key_parse_rfc3339(s, n, sec, &nsec) != 0)
		return false;
	if (nsec > 0 && *sec < INT64_MAX)
		(*sec)++;
	return true;
}

/* Cheap test before any parsing: a JSON object, short. */
static bool looks_like_object(const uint8_t *p, size_t len)
{
	if (len == 0 || len > TOMBSTONE_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')
			continue;
		return p[i] == '{';
	}
	return false;
}

bool tombstone_parse(const uint8_t *record, size_t len, struct tombstone *t)
{
	char err[64];
	size_t n;

	if (!looks_like_object(record, len))
		return false;
	struct json_value *v =
	    json_parse_limited((const char *)record, len, TOMBSTONE_MAX_VALUES, err, sizeof(err));
	const char *alg = json_string(json_get(v, "algorithm"), &n);
	bool is = json_type(v) == JSON_OBJECT && alg && n == strlen(TOMBSTONE_ALGORITHM) &&
	          memcmp(alg, TOMBSTONE_ALGORITHM, n) == 0;

	if (is) {
		memset(t, 0, sizeof(*t));
		if (!member_time(v, "deleted_at", &t->deleted_at))
			t->deleted_at = 0;
		/* Unreadable or absent: never expires by itself (fail closed). */
		if (!member_time(v, "until", &t->until))
			t->until = TOMBSTONE_FOREVER;
		const char *by = json_string(json_get(v, "deleted_by"), &n);
		if (by && by_valid(by, n)) {
			memcpy(t->deleted_by, by, n);
			t->deleted_by[n] = '\0';
		}
	}
	json_free(v);
	return is;
}

bool tombstone_expired(const struct tombstone *t, int64_t now)
{
	return t->until != TOMBSTONE_FOREVER && now >= t->until;
}

void tombstone_describe(const struct tombstone *t, char *out, size_t n)
{
	char at[32], until[32];

	if (t->deleted_at > 0)
		tombstone_format_time(t->deleted_at, at, sizeof(at));
	else
		snprintf(at, sizeof(at), "(unknown time)");
	if (t->until == TOMBSTONE_FOREVER)
		snprintf(until, sizeof(until), "it is purged");
	else
		tombstone_format_time(t->until, until, sizeof(until));
	snprintf(out, n, "deleted at %s by %s, name reserved until %s", at,
	         t->deleted_by[0] ? t->deleted_by : "(unknown)", until);
}
