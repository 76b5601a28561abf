/*
 * fuzz_vault.c — what the Vault keystore parses or builds from outside input: K/V read and
 * list responses (and the version a v2 read answers, for tombstones), login/renew responses,
 * capabilities-self and sys/health answers, the record ↔ K/V value codec (must round-trip), and
 * path joining (must never produce "..", empty segments or unescaped bytes). The first input byte
 * picks the part; the rest is the input.
 */
#include <stdlib.h>
#include <string.h>

#include "keystore/secmem.h"
#include "keystore/vault_internal.h"
#include "tests/fuzz/fuzz.h"

static void fuzz_path(const char *s)
{
	char out[512];
	const char *parts[] = {"kv", s, "name", NULL};
	if (vault_path_join(out, sizeof(out), parts) != 0)
		return;
	if (strstr(out, "//") || out[0] == '/' || strstr(out, "/../") ||
	    strncmp(out, "../", 3) == 0)
		abort();
	for (const char *p = out; *p; p++)
		if (!(*p == '/' || *p == '%' || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
		      (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			abort();
}

static void fuzz_codec(const uint8_t *data, size_t size)
{
	struct bytes rec = {(uint8_t *)data, size}, value = {0}, back = {0};
	struct ks_err err;
	if (vault_record_encode(&rec, &value) != KS_OK)
		return;
	if (vault_transit_is_ciphertext(&value))
		abort(); /* would be misread as a transit ciphertext */
	if (vault_record_decode(&value, &back, &err) != KS_OK || back.len != size ||
	    (size && memcmp(back.data, data, size) != 0))
		abort();
	bytes_free(&value);
	bytes_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 7;
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct ks_err err;
	if (mode == 0 || mode == 1) {
		struct bytes value = {0};
		int64_t version = -1;
		vault_kv_parse_read(mode + 1, "key", body, len, &value, &err);
		bytes_free(&value);
		if (mode == 1 && vault_kv_parse_version(body, len, &version) == 0 && version < 1)
			abort();
		if (mode == 1 && version < 0)
			abort(); /* always set, 0 when there is none */
	} else if (mode == 2) {
		struct name_list l = {0};
		vault_kv_parse_list(body, len, "kv", &l, &err);
		name_list_free(&l);
	} else if (mode == 3) {
		char token[VAULT_TOKEN_MAX];
		int64_t ttl;
		bool renewable;
		if (vault_auth_parse(body, len, token, sizeof(token), &ttl, &renewable) == 0 &&
		    (ttl < 0 || strlen(token) == 0))
			abort();
		secure_zero(token, sizeof(token));
	} else if (mode == 5) {
		bool update = false;
		int rc = vault_caps_parse(body, len, "kv/key", &update, &err);
		if (rc != KS_OK && rc != KS_FAILED)
			abort();
	} else if (mode == 6) {
		struct vault_response rs;
		vault_response_init(&rs);
		buf_append(&rs.body, body, len);
		char reason[64];
		for (long status = 199; status <= 599; status += 100) {
			rs.status = status;
			reason[0] = 0;
			if (vault_health_judge(&rs, reason, sizeof(reason)) != VAULT_HEALTH_UP &&
			    !reason[0])
				abort(); /* not up without a reason */
		}
		vault_response_free(&rs);
	} else {
		/* body is not NUL-terminated: copy it into a string of exactly len bytes. */
		char *s = malloc(len + 1);
		if (s) {
			memcpy(s, body, len);
			s[len] = '\0';
			fuzz_path(s);
		}
		free(s);
		fuzz_codec(data + 1, len);
	}
	return 0;
}
