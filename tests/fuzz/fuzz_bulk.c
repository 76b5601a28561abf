/* fuzz_bulk.c — the bulk decrypt body reader (server/bulk_body.c) on arbitrary bytes: it must
 * never crash, leak or read out of bounds, keeps at most BULK_MAX_ITEMS items, and what it
 * accepts holds exactly as many items as the array had. */
#include <stdint.h>
#include <stdlib.h>

#include "server/bulk_body.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bulk_body b;
	int rc = bulk_body_parse(data, size, &b);
	if (rc == BULK_OK && (b.count != b.total || b.count > BULK_MAX_ITEMS))
		abort();
	if (rc == BULK_TOO_MANY && (b.total <= BULK_MAX_ITEMS || b.items))
		abort();
	bulk_body_free(&b);
	return 0;
}
