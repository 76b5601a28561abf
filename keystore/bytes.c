/* bytes.c — owned byte strings, bounded buffers, base64 and hex. See bytes.h. */
#include "keystore/bytes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/secmem.h"

int bytes_set(struct bytes *out, const void *data, size_t len)
{
	uint8_t *p = malloc(len + 1);
	if (!p)
		return -1;
	if (len)
		memcpy(p, data, len);
	p[len] = 0;
	out->data = p;
	out->len = len;
	return 0;
}

void bytes_free(struct bytes *b)
{
	if (!b || !b->data)
		return;
	secure_zero(b->data, b->len + 1);
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : BUF_DEFAULT_MAX;
	b->failed = false;
}

/* Grow so that extra more bytes plus a NUL fit. Growing copies into fresh memory and zeroes
 * the old block, because realloc would leave secrets behind in freed memory. */
static bool buf_reserve(struct buf *b, size_t extra)
{
	if (b->failed)
		return false;
	if (extra > b->max || b->len > b->max - extra) {
		b->failed = true;
		return false;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = malloc(cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	if (b->data) {
		memcpy(p, b->data, b->len + 1);
		secure_zero(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
	if (!buf_reserve(b, len))
		return;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
}

void buf_append_str(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_append_char(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void buf_append_decimal(struct buf *b, int64_t v)
{
	char digits[21];
	size_t n = sizeof(digits);
	/* In unsigned arithmetic, so that INT64_MIN has a magnitude too. */
	uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		digits[--n] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (v < 0)
		digits[--n] = '-';
	buf_append(b, digits + n, sizeof(digits) - n);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_reset(struct buf *b)
{
	if (b->data) {
		secure_zero(b->data, b->cap);
		b->data[0] = 0;
	}
	b->len = 0;
	b->failed = false;
}

void buf_free(struct buf *b)
{
	if (b->data) {
		secure_zero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

int buf_take(struct buf *b, struct bytes *out)
{
	if (b->failed) {
		buf_free(b);
		return -1;
	}
	if (!b->data && bytes_set(out, "", 0) != 0)
		return -1;
	if (b->data) {
		out->data = (uint8_t *)b->data;
		out->len = b->len;
	}
	b->data = NULL;
	b->len = b->cap = 0;
	return 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void base64_encode(struct buf *out, const uint8_t *in, size_t n)
{
	size_t olen = base64_encoded_len(n);
	if (!buf_reserve(out, olen))
		return;
	char *o = out->data + out->len;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = B64[v >> 18];
		*o++ = B64[(v >> 12) & 63];
		*o++ = B64[(v >> 6) & 63];
		*o++ = B64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		*o++ = B64[v >> 18];
		*o++ = B64[(v >> 12) & 63];
		*o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	out->len += olen;
	out->data[out->len] = 0;
}

/* Branch-free per character so that decoding key material leaks no timing about its value. */
static int b64_value(unsigned char c)
{
	int v = -1;
	v += (((0x40 - c) & (c - 0x5b)) >> 8) & (c - 64); /* A-Z -> 1..26 */
	v += (((0x60 - c) & (c - 0x7b)) >> 8) & (c - 70); /* a-z -> 27..52 */
	v += (((0x2f - c) & (c - 0x3a)) >> 8) & (c + 5);  /* 0-9 -> 53..62 */
	v += (((0x2a - c) & (c - 0x2c)) >> 8) & 63;       /* +   -> 63 */
	v += (((0x2e - c) & (c - 0x30)) >> 8) & 64;       /* /   -> 64 */
	return v;
}

int base64_decode(struct bytes *out, const char *in, size_t n)
{
	out->data = NULL;
	out->len = 0;
	uint8_t *p = malloc(n / 4 * 3 + 4);
	if (!p)
		return -1;
	size_t olen = 0, quad = 0, pad = 0;
	uint32_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			if (quad < 2 || quad + pad > 4)
				goto fail;
			continue;
		}
		if (pad)
			goto fail; /* data after padding */
		int v = b64_value(c);
		if (v < 0)
			goto fail;
		acc = acc << 6 | (uint32_t)v;
		if (++quad == 4) {
			p[olen++] = (uint8_t)(acc >> 16);
			p[olen++] = (uint8_t)(acc >> 8);
			p[olen++] = (uint8_t)acc;
			quad = 0;
			acc = 0;
		}
	}
	if (pad) {
		if (quad + pad != 4)
			goto fail;
		if (quad == 2) {
			p[olen++] = (uint8_t)(acc >> 4);
		} else { /* quad == 3 */
			p[olen++] = (uint8_t)(acc >> 10);
			p[olen++] = (uint8_t)(acc >> 2);
		}
	} else if (quad != 0) {
		goto fail;
	}
	p[olen] = 0;
	out->data = p;
	out->len = olen;
	acc = 0;
	return 0;
fail:
	secure_zero(p, n / 4 * 3 + 4);
	free(p);
	return -1;
}

void hex_encode(char *out, const uint8_t *in, size_t n)
{
	static const char HEX[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = HEX[in[i] >> 4];
		out[2 * i + 1] = HEX[in[i] & 15];
	}
	out[2 * n] = 0;
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

int hex_decode(uint8_t *out, size_t outlen, const char *in, size_t n)
{
	if (n != 2 * outlen)
		return -1;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hex_value((unsigned char)in[2 * i]);
		int lo = hex_value((unsigned char)in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
