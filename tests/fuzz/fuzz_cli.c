/* fuzz_cli.c — what the kesc CLI reads from a server: error bodies, list replies and
 * Prometheus text. The first input byte picks the parser; the rest is the server's body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
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
	switch (data[0] % 4) {
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
	}
	return 0;
}
