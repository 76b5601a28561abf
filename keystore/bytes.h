/*
 * bytes.h — owned byte strings, a bounded growable buffer, and the base64 / hex codecs.
 *
 * These are the lowest primitives of kesc; everything else builds on them. Every buffer carries
 * its length. Buffers that may hold key material are zeroed before their memory is released,
 * always: it costs little and removes a whole class of mistakes.
 */
#ifndef KESC_KEYSTORE_BYTES_H
#define KESC_KEYSTORE_BYTES_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An owned heap byte string. data is NUL-terminated one byte past len for convenience (so a
 * stored record can be handed to string functions), but len is the truth. */
struct bytes {
	uint8_t *data;
	size_t len;
};

/* Copy len bytes into a fresh owned string. Returns 0, or -1 if out of memory. */
int bytes_set(struct bytes *out, const void *data, size_t len);
/* Zero and free; leaves {NULL, 0}. Safe on an already-empty value. */
void bytes_free(struct bytes *b);

/*
 * A growable output buffer with a hard ceiling. Appends never overflow: once an append would
 * pass max (or malloc fails) the buffer is marked failed, later appends are ignored, and the
 * caller checks buf_failed() once at the end. The content is always NUL-terminated.
 */
struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
	bool failed;
};

#define BUF_DEFAULT_MAX ((size_t)64 * 1024 * 1024)

void buf_init(struct buf *b, size_t max);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_append_char(struct buf *b, char c);
/* v in decimal ("-" for negatives): for numbers on the request path, where printf's machinery
 * costs more than the rest of the line. */
void buf_append_decimal(struct buf *b, int64_t v);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static inline bool buf_failed(const struct buf *b)
{
	return b->failed;
}
/* Keeps the allocation, zeroes the content, len = 0, clears the failed flag. */
void buf_reset(struct buf *b);
/* Zero and free. */
void buf_free(struct buf *b);
/* Move the content out as an owned struct bytes (the buffer is left empty). -1 if failed. */
int buf_take(struct buf *b, struct bytes *out);

/* Standard base64 with padding (Go's base64.StdEncoding, which is what KES's JSON uses). */
size_t base64_encoded_len(size_t n);
void base64_encode(struct buf *out, const uint8_t *in, size_t n);
/* Decodes standard padded base64; CR and LF are skipped as Go does. Returns 0, or -1 on any
 * invalid character, bad padding or truncated input. out is zeroed/freed on failure. */
int base64_decode(struct bytes *out, const char *in, size_t n);

/* Lowercase hex. out must hold 2n+1 bytes; it is NUL-terminated. */
void hex_encode(char *out, const uint8_t *in, size_t n);
/* Decodes exactly outlen bytes from 2*outlen hex digits (either case). 0 or -1. */
int hex_decode(uint8_t *out, size_t outlen, const char *in, size_t n);

#endif
