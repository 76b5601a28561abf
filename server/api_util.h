/*
 * api_util.h — small pieces the API handlers share: KES's name and pattern rules, Go's time
 * format, JSON replies, request-body decoding.
 */
#ifndef KESC_SERVER_API_UTIL_H
#define KESC_SERVER_API_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/json.h"
#include "server/api.h"

/* KES validName: 1..80 of [0-9A-Za-z_-], '-' not first or last, "_" alone invalid. */
bool api_valid_name(const char *s);
/* KES validPattern: "" and "*" valid; else validName's rules plus '*' as the last byte. */
bool api_valid_pattern(const char *s);
/* The list prefix a valid pattern stands for: "*" → "", trailing '*' stripped. out must hold
 * strlen(pattern) + 1 bytes. */
void api_pattern_prefix(const char *pattern, char *out, size_t outlen);

/* Go's time.Time JSON form (RFC 3339 with nanoseconds, trailing zeros dropped) in UTC, e.g.
 * "2024-01-12T10:39:20.886816Z". sec == 0 && nsec == 0 is Go's zero time
 * "0001-01-01T00:00:00Z". out should hold 40 bytes. */
void api_format_time(char *out, size_t outlen, int64_t sec, int32_t nsec);
void api_format_time_ns(char *out, size_t outlen, int64_t unix_ns);

/* Starts a 200 application/json reply in resp (body emptied) and a writer on it. */
void api_reply_json_begin(struct api_response *resp, struct json_writer *w);
/* Ends it as Go's json.Encoder does: a trailing newline. */
void api_reply_json_end(struct api_response *resp);
/* 200 without body and without Content-Type. */
void api_reply_empty(struct api_response *resp);

/*
 * Decodes a request body the way Go's json.Decoder into a struct does: the first JSON value
 * must be an object (or null, meaning no fields) and whatever follows it is ignored; anything
 * else, or a body that was too large, is an error.
 * Returns 0 with *out set (NULL for an empty or null body when allow_empty), -1 on error.
 */
int api_parse_body(const struct api_request *req, bool allow_empty, struct json_value **out);
/* A string member per Go: absent or null → "" (returns 0); other types → -1. */
int api_body_string(const struct json_value *body, const char *key, const char **s, size_t *n);

#endif
