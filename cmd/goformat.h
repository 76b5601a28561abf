/*
 * goformat.h — the text formats the kes command line prints, which are Go's: fmt's %q and
 * rune-counted padding, time.Duration's String and Round, time.ParseDuration, time.Time's JSON
 * form and calendar fields, json.Encoder's indentation, and aead.dev/mem's decimal sizes.
 * kesc prints what kes prints where scripts read it, so these are reproduced once, here.
 */
#ifndef KESC_CMD_GOFORMAT_H
#define KESC_CMD_GOFORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"

#define GO_NANOSECOND  1LL
#define GO_MICROSECOND 1000LL
#define GO_MILLISECOND 1000000LL
#define GO_SECOND      1000000000LL

/* fmt's %q of a string: double quotes, Go escapes for '"', '\\' and control bytes. */
void goformat_quote(struct buf *out, const char *s);

/* fmt's %-*s: s padded with spaces to width runes (UTF-8 characters), not bytes. */
void goformat_pad(struct buf *out, const char *s, size_t width);

/* time.Duration's String ("1.5s", "2m0s", "15µs", "0s") and Round(m). */
void goformat_duration(struct buf *out, int64_t ns);
int64_t goformat_duration_round(int64_t ns, int64_t m);

/* time.ParseDuration ("5s", "1m30s", "250ms", "1.5h"). 0, or -1 with Go's error text in err
 * ("time: invalid duration \"soon\"", "time: missing unit in duration \"5\"", …). */
int goformat_parse_duration(const char *s, int64_t *ns, char *err, size_t errlen);

/* A time.Time as decoded from RFC 3339 JSON text: its calendar fields in its own offset. */
struct go_time {
	int year, month, day, hour, minute, second;
	int32_t nsec;
	int32_t offset; /* seconds east of UTC */
};

/* Parses RFC 3339 ("2024-01-02T03:04:05.123Z", "…+01:00") as time.Time's UnmarshalJSON
 * does. 0, or -1 if it is not such a time. */
int goformat_parse_time(const char *s, size_t n, struct go_time *t);
/* Go's zero time.Time, 0001-01-01T00:00:00Z: what a reply without the member decodes to. */
void goformat_zero_time(struct go_time *t);
bool goformat_time_is_zero(const struct go_time *t);
/* time.Time's MarshalJSON text without quotes: RFC 3339 with nanoseconds, trailing zeros
 * dropped, "Z" for offset 0. */
void goformat_time_json(struct buf *out, const struct go_time *t);
/* "YYYY-MM-DD hh:mm:ss" from Date() and Clock(): in the time's own offset, or with local
 * true converted to the local time zone first (Local()), as kes prints dates. */
void goformat_time_clock(struct buf *out, const struct go_time *t, bool local);

/* json.Indent(out, json, "", "  ") of compact JSON (as json.Encoder.SetIndent("", "  ")
 * prints it): empty objects and arrays stay "{}" and "[]". */
void goformat_json_indent(struct buf *out, const char *json, size_t n);

/* aead.dev/mem FormatSize(size, 'D', 1): decimal units with one decimal ("3.1MB", "512B",
 * "0B"). */
void goformat_size(struct buf *out, uint64_t bytes);

#endif
