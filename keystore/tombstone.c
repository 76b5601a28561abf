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

/* A time member, or null past year 9999 (before 1970: 1970, long past). */
static void write_time(struct json_writer *w, const char *key, int64_t sec)
{
	char text[32];

	json_key(w, key);
	if (sec == TOMBSTONE_FOREVER || sec > TOMBSTONE_LAST_SECOND) {
		json_write_null(w);
		return;
	}
	tombstone_format_time(sec < 0 ? 0 : sec, text, sizeof(text));
	json_write_string(w, text);
}

static int encode(const struct tombstone *t, const struct bytes *key, struct bytes *out)
{
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
	if (t->deleted_at < 0 || t->deleted_at > TOMBSTONE_LAST_SECOND) {
		json_key(&w, "deleted_at");
		json_write_null(&w);
	} else {
		write_time(&w, "deleted_at", t->deleted_at);
	}
	json_key(&w, "deleted_by");
	json_write_string_n(&w, t->deleted_by, by_len);
	write_time(&w, "until", t->until);
	if (key) {
		write_time(&w, "restore_until", t->restore_until);
		json_key(&w, "key");
		json_write_string_n(&w, (const char *)key->data, key->len);
	}
	json_object_end(&w);
	int rc = buf_take(&b, out) == 0 ? 0 : KEY_ERR_NOMEM;
	buf_free(&b);
	return rc;
}

int tombstone_encode(const struct tombstone *t, struct bytes *out)
{
	return encode(t, NULL, out);
}

/* Whether s is UTF-8 that a JSON string carries unchanged (the writer replaces invalid
 * sequences, which would change a kept key). */
static bool utf8_exact(const uint8_t *s, size_t n)
{
	static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t extra;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			extra = 1;
			cp = c & 0x1fu;
		} else if ((c & 0xf0) == 0xe0) {
			extra = 2;
			cp = c & 0x0fu;
		} else if ((c & 0xf8) == 0xf0) {
			extra = 3;
			cp = c & 0x07u;
		} else {
			return false;
		}
		if (n - i - 1 < extra)
			return false;
		for (size_t j = 1; j <= extra; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3fu);
		}
		if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += extra + 1;
	}
	return true;
}

int tombstone_encode_with_key(const struct tombstone *t, const struct bytes *key, struct bytes *out)
{
	if (!key || !key->data || key->len == 0 || t->restore_until <= 0 ||
	    !utf8_exact(key->data, key->len)) {
		out->data = NULL;
		out->len = 0;
		return KEY_ERR_INVALID;
	}
	return encode(t, key, out);
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

/* The parsed record if it is a tombstone, else NULL. */
static struct json_value *parse_tombstone(const uint8_t *record, size_t len)
{
	char err[64];
	size_t n;

	if (!looks_like_object(record, len))
		return NULL;
	struct json_value *v =
	    json_parse_limited((const char *)record, len, TOMBSTONE_MAX_VALUES, err, sizeof(err));
	const char *alg = json_string(json_get(v, "algorithm"), &n);
	if (json_type(v) == JSON_OBJECT && alg && n == strlen(TOMBSTONE_ALGORITHM) &&
	    memcmp(alg, TOMBSTONE_ALGORITHM, n) == 0)
		return v;
	json_free(v);
	return NULL;
}

int tombstone_key(const uint8_t *record, size_t len, struct bytes *key)
{
	struct json_value *v = parse_tombstone(record, len);
	size_t n = 0;
	const char *s = json_string(json_get(v, "key"), &n);
	int rc = s && n > 0 && bytes_set(key, s, n) == 0 ? 0 : -1;

	json_free(v);
	return rc;
}

bool tombstone_parse(const uint8_t *record, size_t len, struct tombstone *t)
{
	struct json_value *v = parse_tombstone(record, len);
	size_t n;
	bool is = v != NULL;

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
		/* Restorable only with a key to restore and a window that can be read. */
		if (!json_string(json_get(v, "key"), &n) || n == 0 ||
		    !member_time(v, "restore_until", &t->restore_until) || t->restore_until <= 0)
			t->restore_until = 0;
	}
	json_free(v);
	return is;
}

bool tombstone_expired(const struct tombstone *t, int64_t now)
{
	return t->until != TOMBSTONE_FOREVER && now >= t->until;
}

bool tombstone_restorable(const struct tombstone *t, int64_t now)
{
	return t->restore_until > 0 && now < t->restore_until;
}

void tombstone_describe(const struct tombstone *t, char *out, size_t n)
{
	char at[32], until[32], restore[64] = "";

	if (t->restore_until > 0) {
		char when[32];

		tombstone_format_time(t->restore_until, when, sizeof(when));
		snprintf(restore, sizeof(restore), ", can be restored until %s", when);
	}
	if (t->deleted_at > 0)
		tombstone_format_time(t->deleted_at, at, sizeof(at));
	else
		snprintf(at, sizeof(at), "(unknown time)");
	if (t->until == TOMBSTONE_FOREVER)
		snprintf(until, sizeof(until), "it is purged");
	else
		tombstone_format_time(t->until, until, sizeof(until));
	snprintf(out, n, "deleted at %s by %s%s, name reserved until %s", at,
	         t->deleted_by[0] ? t->deleted_by : "(unknown)", restore, until);
}
