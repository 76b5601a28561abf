/* fuzz_http.c — the request parser (server/http.c) on arbitrary bytes: heads, then whatever
 * follows as a chunked body. It must never crash or read out of bounds, a parsed head must
 * lie within the input, and a decoded path must be canonical. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http.h"
#include "tests/fuzz/fuzz.h"

static void check_path(const char *path)
{
	/* What the parser hands to the router must never contain these. */
	if (path[0] != '/' || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../"))
		abort();
	size_t n = strlen(path);
	if ((n >= 2 && !strcmp(path + n - 2, "/.")) || (n >= 3 && !strcmp(path + n - 3, "/..")))
		abort();
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	struct http_request req;
	int rc = http_parse_head(copy, size, &req);
	if (rc == HTTP_PARSE_DONE) {
		if (req.head_len > size)
			abort();
		check_path(req.path);
		struct http_chunked ch;
		struct buf out;
		const char *msg = NULL;
		size_t used = 0;
		buf_init(&out, 0);
		http_chunked_init(&ch);
		(void)http_chunked_decode(&ch, copy + req.head_len, size - req.head_len, &used,
		                          &out, 1000000, &msg);
		if (used > size - req.head_len)
			abort();
		buf_free(&out);
	} else if (rc == HTTP_PARSE_FAIL) {
		if (!req.error_message || req.error_status < 400)
			abort();
	}
	free(copy);
	return 0;
}
