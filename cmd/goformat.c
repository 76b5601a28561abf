/* goformat.c — Go's text formats as the kes command line prints them (goformat.h). */
#include "cmd/goformat.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes) and its code point; 0 if the
 * bytes are not valid UTF-8 (overlong forms and surrogates included). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len = (s[0] & 0xe0) == 0xc0   ? 2
	             : (s[0] & 0xf0) == 0xe0 ? 3
	             : (s[0] & 0xf8) == 0xf0 ? 4
	                                     : 0;
	if (!len || len > n)
		return 0;
	uint32_t c = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

void goformat_quote(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	buf_append_char(out, '"');
	for (size_t i = 0; i < n;) {
		uint32_t cp = 0;
		size_t len = utf8_decode(p + i, n - i, &cp);
		if (!len) {
			buf_printf(out, "\\x%02x", p[i]);
			i++;
			continue;
		}
		switch (cp) {
		case '"':
			buf_append_str(out, "\\\"");
			break;
		case '\\':
			buf_append_str(out, "\\\\");
			break;
		case '\a':
			buf_append_str(out, "\\a");
			break;
		case '\b':
			buf_append_str(out, "\\b");
			break;
		case '\f':
			buf_append_str(out, "\\f");
			break;
		case '\n':
			buf_append_str(out, "\\n");
			break;
		case '\r':
			buf_append_str(out, "\\r");
			break;
		case '\t':
			buf_append_str(out, "\\t");
			break;
		case '\v':
			buf_append_str(out, "\\v");
			break;
		default:
			if (cp < 0x20 || cp == 0x7f)
				buf_printf(out, "\\x%02x", (unsigned)cp);
			else if (cp >= 0x80 && cp < 0xa0) /* C1 controls are not printable */
				buf_printf(out, "\\u%04x", (unsigned)cp);
			else
				buf_append(out, p + i, len);
		}
		i += len;
	}
	buf_append_char(out, '"');
}

void goformat_pad(struct buf *out, const char *s, size_t width)
{
	size_t runes = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		runes += (*p & 0xc0) != 0x80;
	buf_append_str(out, s);
	for (; runes < width; runes++)
		buf_append_char(out, ' ');
}

/* Go's fmtFrac: writes the fraction of v/10^prec, without trailing zeros (and without the
 * point when it is zero), right to left ending at *w; returns v/10^prec. */
static uint64_t frac_right(char *buf, size_t *w, uint64_t v, int prec)
{
	bool print = false;
	for (int i = 0; i < prec; i++) {
		unsigned digit = (unsigned)(v % 10);
		print = print || digit != 0;
		if (print)
			buf[--*w] = (char)('0' + digit);
		v /= 10;
	}
	if (print)
		buf[--*w] = '.';
	return v;
}

static void int_right(char *buf, size_t *w, uint64_t v)
{
	if (v == 0) {
		buf[--*w] = '0';
		return;
	}
	for (; v > 0; v /= 10)
		buf[--*w] = (char)('0' + v % 10);
}

void goformat_duration(struct buf *out, int64_t ns)
{
	char buf[40];
	size_t w = sizeof buf;
	bool neg = ns < 0;
	uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	if (u < (uint64_t)GO_SECOND) {
		/* Below a second Go switches to smaller units: "1.2ms", "15µs", "850ns". */
		int prec = 0;
		buf[--w] = 's';
		if (u == 0) {
			buf_append_str(out, "0s");
			return;
		} else if (u < (uint64_t)GO_MICROSECOND) {
			buf[--w] = 'n';
		} else if (u < (uint64_t)GO_MILLISECOND) {
			prec = 3;
			buf[--w] = (char)0xb5; /* U+00B5 MICRO SIGN, as Go writes it */
			buf[--w] = (char)0xc2;
		} else {
			prec = 6;
			buf[--w] = 'm';
		}
		u = frac_right(buf, &w, u, prec);
		int_right(buf, &w, u);
	} else {
		buf[--w] = 's';
		u = frac_right(buf, &w, u, 9);
		int_right(buf, &w, u % 60);
		u /= 60;
		if (u > 0) {
			buf[--w] = 'm';
			int_right(buf, &w, u % 60);
			u /= 60;
			if (u > 0) {
				buf[--w] = 'h';
				int_right(buf, &w, u);
			}
		}
	}
	if (neg)
		buf[--w] = '-';
	buf_append(out, buf + w, sizeof buf - w);
}

int64_t goformat_duration_round(int64_t d, int64_t m)
{
	if (m <= 0)
		return d;
	int64_t r = d % m;
	if (d < 0) {
		r = -r;
		if (r + r < m)
			return d + r;
		int64_t d1 = d - m + r;
		return d1 < d ? d1 : INT64_MIN;
	}
	if (r + r < m)
		return d - r;
	int64_t d1 = d + m - r;
	return d1 > d ? d1 : INT64_MAX;
}

static void duration_error(char *err, size_t errlen, const char *what, const char *unit,
                           const char *orig)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_append_str(&b, "time: ");
	buf_append_str(&b, what);
	if (unit) {
		goformat_quote(&b, unit);
		buf_append_str(&b, " in duration ");
	}
	goformat_quote(&b, orig);
	snprintf(err, errlen, "%s", buf_failed(&b) ? "time: invalid duration" : b.data);
	buf_free(&b);
}

/* One "<number><unit>" element of a duration; advances *s. 0, or -1/-2/-3 for an invalid
 * element, a missing unit, an unknown unit (then *unit_out holds it). */
static int duration_element(const char **s, uint64_t *value, char *unit_out, size_t unit_len)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {{"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* U+00B5 */
	             {"\xce\xbcs", 1000},                                         /* U+03BC */
	             {"ms", 1000000},     {"s", 1000000000}, {"m", 60000000000},
	             {"h", 3600000000000}};
	const char *p = *s;
	if (!(*p == '.' || (*p >= '0' && *p <= '9')))
		return -1;
	uint64_t v = 0, f = 0;
	double scale = 1;
	bool pre = false, post = false, overflow = false;
	for (; *p >= '0' && *p <= '9'; p++, pre = true) {
		if (v > (UINT64_C(1) << 63) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT64_C(1) << 63)
			return -1;
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, post = true) {
			if (overflow || f > (UINT64_C(1) << 63) / 10) {
				overflow =
				    true; /* further digits are consumed but ignored, as Go */
				continue;
			}
			f = f * 10 + (uint64_t)(*p - '0');
			scale *= 10;
		}
	}
	if (!pre && !post)
		return -1;
	const char *u = p;
	while (*p && *p != '.' && !(*p >= '0' && *p <= '9'))
		p++;
	size_t ulen = (size_t)(p - u);
	if (ulen == 0)
		return -2;
	uint64_t unit = 0;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (strlen(units[i].name) == ulen && !memcmp(units[i].name, u, ulen))
			unit = units[i].ns;
	if (!unit) {
		snprintf(unit_out, unit_len, "%.*s", (int)ulen, u);
		return -3;
	}
	if (v > (UINT64_C(1) << 63) / unit)
		return -1;
	v *= unit;
	if (f > 0) {
		v += (uint64_t)((double)f * ((double)unit / scale));
		if (v > UINT64_C(1) << 63)
			return -1;
	}
	*value = v;
	*s = p;
	return 0;
}

int goformat_parse_duration(const char *orig, int64_t *ns, char *err, size_t errlen)
{
	const char *s = orig;
	bool neg = false;
	uint64_t d = 0;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (!strcmp(s, "0")) {
		*ns = 0;
		return 0;
	}
	if (!*s)
		goto invalid;
	while (*s) {
		uint64_t v = 0;
		char unit[64];
		int rc = duration_element(&s, &v, unit, sizeof unit);
		if (rc == -2) {
			duration_error(err, errlen, "missing unit in duration ", NULL, orig);
			return -1;
		}
		if (rc == -3) {
			duration_error(err, errlen, "unknown unit ", unit, orig);
			return -1;
		}
		if (rc < 0)
			goto invalid;
		d += v;
		if (d > UINT64_C(1) << 63)
			goto invalid;
	}
	if (!neg && d > (uint64_t)INT64_MAX)
		goto invalid;
	*ns = neg ? (int64_t)(0 - d) : (int64_t)d;
	return 0;
invalid:
	duration_error(err, errlen, "invalid duration ", NULL, orig);
	return -1;
}

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int days_in_month(int year, int month)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

int goformat_parse_time(const char *s, size_t n, struct go_time *t)
{
	memset(t, 0, sizeof *t);
	/* YYYY-MM-DDThh:mm:ss: 19 bytes, then an optional fraction, then Z or ±hh:mm. */
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	t->year = digits(s, 4);
	t->month = digits(s + 5, 2);
	t->day = digits(s + 8, 2);
	t->hour = digits(s + 11, 2);
	t->minute = digits(s + 14, 2);
	t->second = digits(s + 17, 2);
	if (t->year < 0 || t->month < 1 || t->month > 12 || t->day < 1 ||
	    t->day > days_in_month(t->year, t->month) || t->hour < 0 || t->hour > 23 ||
	    t->minute < 0 || t->minute > 59 || t->second < 0 || t->second > 59)
		return -1;
	size_t i = 19;
	if (i < n && s[i] == '.') {
		size_t start = ++i;
		int32_t scale = 100000000;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
			t->nsec += (s[i] - '0') * scale; /* digits past nanoseconds are dropped */
			scale /= 10;
		}
		if (i == start)
			return -1;
	}
	if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z'))
		return 0;
	if (i + 6 != n || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':')
		return -1;
	int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
	if (oh < 0 || oh > 23 || om < 0 || om > 59)
		return -1;
	t->offset = (s[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
	return 0;
}

void goformat_zero_time(struct go_time *t)
{
	memset(t, 0, sizeof *t);
	t->year = 1;
	t->month = 1;
	t->day = 1;
}

bool goformat_time_is_zero(const struct go_time *t)
{
	/* Go's IsZero is about the instant: 0001-01-01 00:00:00 UTC. */
	struct go_time z;
	goformat_zero_time(&z);
	return t->offset == 0 && t->year == z.year && t->month == z.month && t->day == z.day &&
	       !t->hour && !t->minute && !t->second && !t->nsec;
}

void goformat_time_json(struct buf *out, const struct go_time *t)
{
	buf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d", t->year, t->month, t->day, t->hour,
	           t->minute, t->second);
	if (t->nsec) {
		char frac[16];
		snprintf(frac, sizeof frac, "%09d", (int)t->nsec);
		size_t len = strlen(frac);
		while (len > 0 && frac[len - 1] == '0')
			len--;
		buf_append_char(out, '.');
		buf_append(out, frac, len);
	}
	if (t->offset == 0) {
		buf_append_char(out, 'Z');
	} else {
		int off = t->offset < 0 ? -t->offset : t->offset;
		buf_printf(out, "%c%02d:%02d", t->offset < 0 ? '-' : '+', off / 3600,
		           off / 60 % 60);
	}
}

void goformat_time_clock(struct buf *out, const struct go_time *t, bool local)
{
	struct go_time v = *t;
	if (local) {
		struct tm tm = {.tm_year = t->year - 1900,
		                .tm_mon = t->month - 1,
		                .tm_mday = t->day,
		                .tm_hour = t->hour,
		                .tm_min = t->minute,
		                .tm_sec = t->second};
		time_t unix_s = timegm(&tm) - t->offset;
		struct tm lt;
		if (localtime_r(&unix_s, &lt)) {
			v.year = lt.tm_year + 1900;
			v.month = lt.tm_mon + 1;
			v.day = lt.tm_mday;
			v.hour = lt.tm_hour;
			v.minute = lt.tm_min;
			v.second = lt.tm_sec;
		}
	}
	buf_printf(out, "%04d-%02d-%02d %02d:%02d:%02d", v.year, v.month, v.day, v.hour, v.minute,
	           v.second);
}

static void indent_newline(struct buf *out, int depth)
{
	buf_append_char(out, '\n');
	for (int i = 0; i < depth; i++)
		buf_append_str(out, "  ");
}

void goformat_json_indent(struct buf *out, const char *json, size_t n)
{
	bool in_string = false, escaped = false, need_indent = false;
	int depth = 0;
	for (size_t i = 0; i < n; i++) {
		char c = json[i];
		if (in_string) {
			buf_append_char(out, c);
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		if (need_indent && c != '}' && c != ']') {
			need_indent = false;
			indent_newline(out, ++depth);
		}
		switch (c) {
		case '{':
		case '[':
			/* The newline waits, so that empty ones stay "{}" and "[]". */
			need_indent = true;
			buf_append_char(out, c);
			break;
		case ',':
			buf_append_char(out, c);
			indent_newline(out, depth);
			break;
		case ':':
			buf_append_str(out, ": ");
			break;
		case '}':
		case ']':
			if (need_indent)
				need_indent = false;
			else
				indent_newline(out, --depth);
			buf_append_char(out, c);
			break;
		case '"':
			in_string = true;
			buf_append_char(out, c);
			break;
		default:
			buf_append_char(out, c);
		}
	}
}

void goformat_size(struct buf *out, uint64_t bytes)
{
	static const struct {
		uint64_t base;
		const char *unit;
	} units[] = {{1000000000000000ULL, "PB"}, {1000000000000ULL, "TB"}, {1000000000ULL, "GB"},
	             {1000000ULL, "MB"},          {1000ULL, "KB"},          {1ULL, "B"}};
	if (bytes == 0) {
		buf_append_str(out, "0B");
		return;
	}
	size_t i = 0;
	while (bytes < units[i].base)
		i++;
	uint64_t m = bytes / units[i].base, r = bytes % units[i].base;
	if (r == 0) {
		buf_printf(out, "%llu.0%s", (unsigned long long)m, units[i].unit);
		return;
	}
	/* Go formats r/base with one decimal and keeps what follows its leading digit: 0.95
	 * becomes "1.0" and so ".0" (mem's own rounding quirk, kept). */
	char frac[32];
	snprintf(frac, sizeof frac, "%.1f", (double)r / (double)units[i].base);
	buf_printf(out, "%llu%s%s", (unsigned long long)m, frac + 1, units[i].unit);
}
