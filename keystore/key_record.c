/*
 * key_record.c — the stored form of a key (reference kes.md §7.1). KES HEAD writes
 * base64(protobuf KeyVersion); older KES wrote a JSON object. Both are read, only the protobuf
 * form is written, byte-identical to Go's encoder (field order 1..4, zero values omitted).
 * Every intermediate buffer holds key bytes and is zeroed on the way out.
 */
#include <string.h>

#include "keystore/json.h"
#include "keystore/key.h"
#include "keystore/key_internal.h"
#include "keystore/secmem.h"

#define PB_MAX 256 /* largest KeyVersion we write: 2+36 + 2+36 + 2+22 + 3+128 */

/* ---- protobuf writer ---- */

struct pb_writer {
	uint8_t buf[PB_MAX];
	size_t len;
};

static void pb_put_varint(struct pb_writer *w, uint64_t v)
{
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		w->buf[w->len++] = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
}

static void pb_put_bytes(struct pb_writer *w, unsigned field, const void *data, size_t n)
{
	pb_put_varint(w, (uint64_t)field << 3 | 2);
	pb_put_varint(w, n);
	memcpy(w->buf + w->len, data, n);
	w->len += n;
}

/* SecretKey{Key, Type} or HMACKey{Key, Hash}: both are bytes 1 + uint32 2. */
static void pb_put_key_message(struct pb_writer *w, unsigned field, const uint8_t key[32],
                               uint32_t kind)
{
	struct pb_writer inner = {.len = 0};
	pb_put_bytes(&inner, 1, key, 32);
	if (kind) {
		pb_put_varint(&inner, 2 << 3 | 0);
		pb_put_varint(&inner, kind);
	}
	pb_put_bytes(w, field, inner.buf, inner.len);
	secure_zero(&inner, sizeof inner);
}

static void pb_put_timestamp(struct pb_writer *w, int64_t sec, int32_t nsec)
{
	struct pb_writer inner = {.len = 0};
	if (sec) {
		pb_put_varint(&inner, 1 << 3 | 0);
		pb_put_varint(&inner, (uint64_t)sec);
	}
	if (nsec) {
		pb_put_varint(&inner, 2 << 3 | 0);
		pb_put_varint(&inner, (uint64_t)(int64_t)nsec); /* int32: sign-extended */
	}
	pb_put_bytes(w, 3, inner.buf, inner.len);
}

int key_record_encode(const struct secret_key *k, struct bytes *out)
{
	struct pb_writer *w;
	struct buf b;
	int ret = KEY_ERR_INVALID;

	out->data = NULL;
	out->len = 0;
	/* KES refuses to write a key without its HMAC key (encodeSecretKeyVersionTests). */
	if (!k->has_hmac || (k->algorithm != KEY_ALG_AES256 && k->algorithm != KEY_ALG_CHACHA20))
		return KEY_ERR_INVALID;
	size_t by_len = strnlen(k->created_by, sizeof k->created_by);
	if (by_len > KEY_CREATED_BY_MAX)
		return KEY_ERR_INVALID;

	w = secure_alloc(sizeof *w);
	if (!w)
		return KEY_ERR_NOMEM;
	w->len = 0;
	pb_put_key_message(w, 1, k->key, (uint32_t)k->algorithm);
	pb_put_key_message(w, 2, k->hmac_key, 1); /* Hash 1 = SHA256 */
	pb_put_timestamp(w, k->created_at_sec, k->created_at_nsec);
	if (by_len)
		pb_put_bytes(w, 4, k->created_by, by_len);

	buf_init(&b, 0);
	base64_encode(&b, w->buf, w->len);
	ret = buf_take(&b, out) == 0 ? 0 : KEY_ERR_NOMEM;
	buf_free(&b);
	secure_free(w, sizeof *w);
	return ret;
}

/* ---- protobuf reader ---- */

struct pb_reader {
	const uint8_t *p;
	size_t left;
};

/* A varint of at most 10 bytes whose value fits 64 bits, as Go's protowire requires. */
static int pb_get_varint(struct pb_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < 10; i++) {
		if (r->left == 0)
			return -1;
		uint8_t b = *r->p++;
		r->left--;
		if (i == 9 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

struct pb_field {
	uint64_t num;
	unsigned type;
	uint64_t varint;     /* wire type 0 */
	const uint8_t *data; /* wire type 2 */
	size_t len;
};

/* Reads the next field of any wire type, consuming its value. Groups (3, 4) are refused:
 * nothing KES writes has them. */
static int pb_next(struct pb_reader *r, struct pb_field *f)
{
	uint64_t tag, n;
	if (pb_get_varint(r, &tag) != 0)
		return -1;
	f->num = tag >> 3;
	f->type = (unsigned)(tag & 7);
	if (f->num == 0 || f->num > 0x1fffffff)
		return -1;
	switch (f->type) {
	case 0:
		return pb_get_varint(r, &f->varint);
	case 1:
	case 5:
		n = f->type == 1 ? 8 : 4;
		break;
	case 2:
		if (pb_get_varint(r, &n) != 0)
			return -1;
		break;
	default:
		return -1;
	}
	if (n > r->left)
		return -1;
	f->data = r->p;
	f->len = (size_t)n;
	r->p += n;
	r->left -= (size_t)n;
	return 0;
}

/* SecretKey or HMACKey: fields 1 (bytes, must end up 32 long) and 2 (uint32). Repeated
 * messages merge, so this updates the outputs rather than resetting them. */
static int pb_read_key_message(const uint8_t *data, size_t len, const uint8_t **key,
                               size_t *key_len, uint32_t *kind)
{
	struct pb_reader r = {data, len};
	struct pb_field f;
	while (r.left) {
		if (pb_next(&r, &f) != 0)
			return -1;
		if (f.num == 1 && f.type == 2) {
			*key = f.data;
			*key_len = f.len;
		} else if (f.num == 2 && f.type == 0) {
			*kind = (uint32_t)f.varint;
		}
	}
	return 0;
}

static int pb_read_timestamp(const uint8_t *data, size_t len, int64_t *sec, int32_t *nsec)
{
	struct pb_reader r = {data, len};
	struct pb_field f;
	while (r.left) {
		if (pb_next(&r, &f) != 0)
			return -1;
		if (f.num == 1 && f.type == 0)
			*sec = (int64_t)f.varint;
		else if (f.num == 2 && f.type == 0)
			*nsec = (int32_t)(uint32_t)f.varint;
	}
	return 0;
}

/* Go's time.Unix(sec, nsec) carries nanoseconds outside [0, 1e9) into the seconds. Go's int64
 * arithmetic wraps; a record may hold any seconds value, so the carry is done in unsigned
 * arithmetic (wrapping as Go does) instead of overflowing a signed integer. */
static void normalise_time(int64_t *sec, int32_t *nsec)
{
	int64_t n = *nsec;
	uint64_t s = (uint64_t)*sec + (uint64_t)(n / 1000000000);
	n %= 1000000000;
	if (n < 0) {
		n += 1000000000;
		s -= 1;
	}
	*sec = (int64_t)s;
	*nsec = (int32_t)n;
}

/* Go's proto3 decoder rejects string fields that are not valid UTF-8; NUL is refused too
 * because created_by is a C string here. */
static bool utf8_valid_no_nul(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t extra;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			extra = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			extra = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			extra = 3;
			cp = c & 0x07;
		} else
			return false;
		if (n - i - 1 < extra)
			return false;
		for (size_t j = 1; j <= extra; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
		if (cp < min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += extra + 1;
	}
	return true;
}

static int set_created_by(struct secret_key *k, const uint8_t *s, size_t n)
{
	if (n > KEY_CREATED_BY_MAX || !utf8_valid_no_nul(s, n))
		return -1;
	if (n)
		memcpy(k->created_by, s, n);
	k->created_by[n] = 0;
	return 0;
}

/* The parts of a KeyVersion as they are read, validated once all fields are seen. */
struct pb_key_version {
	const uint8_t *key, *hmac;
	size_t key_len, hmac_len;
	uint32_t type, hash;
	bool has_key, has_hmac;
	int64_t sec;
	int32_t nsec;
	const uint8_t *by;
	size_t by_len;
};

static int pb_read_key_version(const uint8_t *data, size_t len, struct pb_key_version *v)
{
	struct pb_reader r = {data, len};
	struct pb_field f;
	while (r.left) {
		if (pb_next(&r, &f) != 0)
			return -1;
		if (f.type != 2)
			continue; /* every known field is length-delimited; others are unknown */
		int bad = 0;
		if (f.num == 1) {
			v->has_key = true;
			bad = pb_read_key_message(f.data, f.len, &v->key, &v->key_len, &v->type);
		} else if (f.num == 2) {
			v->has_hmac = true;
			bad = pb_read_key_message(f.data, f.len, &v->hmac, &v->hmac_len, &v->hash);
		} else if (f.num == 3) {
			bad = pb_read_timestamp(f.data, f.len, &v->sec, &v->nsec);
		} else if (f.num == 4) {
			v->by = f.data;
			v->by_len = f.len;
		}
		if (bad)
			return -1;
	}
	return 0;
}

static int decode_protobuf(const uint8_t *data, size_t len, struct secret_key *k)
{
	struct pb_key_version v;
	memset(&v, 0, sizeof v);
	if (pb_read_key_version(data, len, &v) != 0)
		return KEY_ERR_INVALID;
	/* KES requires both keys: 32 bytes each, a known type and hash. */
	if (!v.has_key || v.key_len != KEY_SIZE || (v.type != 1 && v.type != 2))
		return KEY_ERR_INVALID;
	if (!v.has_hmac || v.hmac_len != KEY_HMAC_SIZE || v.hash != 1)
		return KEY_ERR_INVALID;
	if (set_created_by(k, v.by, v.by_len) != 0)
		return KEY_ERR_INVALID;
	memcpy(k->key, v.key, KEY_SIZE);
	memcpy(k->hmac_key, v.hmac, KEY_HMAC_SIZE);
	k->algorithm = (enum key_algorithm)v.type;
	k->typed = true;
	k->has_hmac = true;
	normalise_time(&v.sec, &v.nsec);
	k->created_at_sec = v.sec;
	k->created_at_nsec = v.nsec;
	return 0;
}

/* ---- legacy JSON ---- */

/* A string member, or absent/null as NULL. -1 for any other type (Go's Unmarshal fails). */
static int json_member_string(const struct json_value *v, const char *key, const char **s,
                              size_t *n)
{
	const struct json_value *m = json_get(v, key);
	*s = NULL;
	*n = 0;
	if (!m || json_type(m) == JSON_NULL)
		return 0;
	*s = json_string(m, n);
	return *s ? 0 : -1;
}

static int decode_json_fields(const struct json_value *v, struct secret_key *k)
{
	const char *alg, *at, *by;
	size_t alg_len, at_len, by_len;
	struct bytes raw = {NULL, 0};
	int ret = KEY_ERR_INVALID;

	if (json_type(v) != JSON_OBJECT)
		goto out;
	if (json_get_base64(v, "bytes", &raw) != 0 || raw.len != KEY_SIZE)
		goto out;
	if (json_member_string(v, "algorithm", &alg, &alg_len) != 0 ||
	    json_member_string(v, "created_at", &at, &at_len) != 0 ||
	    json_member_string(v, "created_by", &by, &by_len) != 0)
		goto out;
	k->algorithm = KEY_ALG_AES256; /* what KES assumes when no algorithm was recorded */
	k->typed = alg_len > 0;
	if (k->typed && (strlen(alg) != alg_len || key_algorithm_parse(alg, &k->algorithm) != 0))
		goto out;
	/* null or absent is Go's zero time; "" is a parse error there too */
	if (at && key_parse_rfc3339(at, at_len, &k->created_at_sec, &k->created_at_nsec) != 0)
		goto out;
	if (by && set_created_by(k, (const uint8_t *)by, by_len) != 0)
		goto out;
	memcpy(k->key, raw.data, KEY_SIZE);
	k->has_hmac = false;
	ret = 0;
out:
	bytes_free(&raw);
	return ret;
}

/*
 * The most values a legacy JSON record is parsed with: the object and its members (bytes,
 * algorithm, created_at, created_by, version), with room for others. A record is read on a
 * cache miss, so without a bound a 1 MiB record of tiny values would build a ~50 MB tree on a
 * keystore worker. A document with more values is not a legacy record; as it is not base64
 * either, it is refused as malformed.
 */
#define JSON_RECORD_MAX_VALUES 16

int key_record_decode(const uint8_t *record, size_t len, struct secret_key **out)
{
	char err[64];
	struct bytes pb = {NULL, 0};
	int ret;

	*out = NULL;
	struct secret_key *k = key_alloc();
	if (!k)
		return KEY_ERR_NOMEM;
	/* As KES: whatever is valid JSON is a legacy record, everything else base64 protobuf. */
	struct json_value *v =
	    json_parse_limited((const char *)record, len, JSON_RECORD_MAX_VALUES, err, sizeof err);
	if (v) {
		ret = decode_json_fields(v, k);
		json_free(v);
	} else if (base64_decode(&pb, (const char *)record, len) != 0) {
		ret = KEY_ERR_INVALID;
	} else {
		ret = decode_protobuf(pb.data, pb.len, k);
	}
	bytes_free(&pb);
	if (ret != 0) {
		key_free(k);
		return ret;
	}
	*out = k;
	return 0;
}

/* ---- RFC 3339 timestamps (legacy "created_at") ---- */

/* n decimal digits at s, or -1. */
static int parse_digits(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Fractional seconds after '.', as Go accepts them even when the layout has none: one or
 * more digits, of which the first nine count. Advances *i. */
static int parse_fraction(const char *s, size_t n, size_t *i, int32_t *nsec)
{
	size_t start = ++*i;
	int32_t v = 0;
	while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
		if (*i - start < 9)
			v = v * 10 + (s[*i] - '0');
		++*i;
	}
	size_t digits = *i - start;
	if (digits == 0)
		return -1;
	for (size_t d = digits; d < 9; d++)
		v *= 10;
	*nsec = v;
	return 0;
}

/* "Z" or ±hh:mm, as seconds east of UTC. */
static int parse_zone(const char *s, size_t n, int *offset)
{
	if (n == 1 && s[0] == 'Z') {
		*offset = 0;
		return 0;
	}
	if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':')
		return -1;
	int hh = parse_digits(s + 1, 2), mm = parse_digits(s + 4, 2);
	if (hh < 0 || mm < 0 || hh > 23 || mm > 59)
		return -1;
	*offset = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
	return 0;
}

int key_parse_rfc3339(const char *s, size_t n, int64_t *sec, int32_t *nsec)
{
	int32_t frac = 0;
	int offset;
	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
		return KEY_ERR_INVALID;
	int year = parse_digits(s, 4), mon = parse_digits(s + 5, 2), day = parse_digits(s + 8, 2);
	int hh = parse_digits(s + 11, 2), mm = parse_digits(s + 14, 2),
	    ss = parse_digits(s + 17, 2);
	if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
	    hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 59)
		return KEY_ERR_INVALID;
	size_t i = 19;
	if (s[i] == '.' && parse_fraction(s, n, &i, &frac) != 0)
		return KEY_ERR_INVALID;
	if (i >= n || parse_zone(s + i, n - i, &offset) != 0)
		return KEY_ERR_INVALID;
	*sec = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss - offset;
	*nsec = frac;
	return 0;
}
