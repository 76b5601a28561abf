/* fuzz_cli.c — what the kesc CLI reads from a server or a user: error bodies, list replies,
 * Prometheus text, RFC 3339 times (re-encoded as kes prints them) and Go durations (--rate).
 * The first input byte picks the parser; the rest is the input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/goformat.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	if (!sink) /* the list printer writes to stdout; keep the fuzzer's output readable */
		sink = freopen("/dev/null", "w", stdout);
	if (size < 1)
		return 0;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	switch (data[0] % 6) {
	case 0:
	case 1: {
		struct client_reply r = {.status = 400};
		buf_init(&r.body, 1 << 20);
		buf_append(&r.body, body, len);
		client_reply_message(&r, data[0] % 4 ? "application/json" : "text/plain");
		if (strlen(r.message) >= sizeof r.message)
			abort();
		client_reply_free(&r);
		break;
	}
	case 2:
		cli_print_names(body, len, "names", "Key", data[0] & 0x10);
		break;
	case 3: {
		char *text = malloc(len + 1);
		if (!text)
			return 0;
		memcpy(text, body, len);
		text[len] = '\0';
		(void)cli_metric_sum(text, "kes_http_request_success");
		(void)cli_metric_sum(text, "kes_http_response_time_sum");
		free(text);
		break;
	}
	case 4: {
		/* A time that parses re-encodes to a time that parses to the same fields. */
		struct go_time t, again;
		if (goformat_parse_time(body, len, &t) < 0)
			break;
		struct buf out;
		buf_init(&out, 0);
		goformat_time_json(&out, &t);
		goformat_time_clock(&out, &t, true);
		buf_reset(&out);
		goformat_time_json(&out, &t);
		if (goformat_parse_time(out.data, out.len, &again) < 0 ||
		    memcmp(&t, &again, sizeof t) != 0)
			abort();
		buf_free(&out);
		break;
	}
	case 5: {
		char *text = malloc(len + 1), err[256];
		if (!text)
			return 0;
		memcpy(text, body, len);
		text[len] = '\0';
		int64_t ns;
		struct buf out;
		buf_init(&out, 0);
		if (goformat_parse_duration(text, &ns, err, sizeof err) == 0)
			goformat_duration(&out, goformat_duration_round(ns, GO_MILLISECOND));
		goformat_quote(&out, text);
		goformat_json_indent(&out, text, len);
		buf_free(&out);
		free(text);
		break;
	}
	}
	return 0;
}
