/*
 * vault_transit.c — optional wrapping of stored records with a Vault transit key, as KES does
 * since 2023-10: the K/V value is the transit ciphertext "vault:vN:…" of the record.
 *
 * Unlike KES (which accepts only "vault:v1:"), any key version is accepted in both directions,
 * so records stay readable and writable after the transit key is rotated.
 */
#include <string.h>

#include "keystore/json.h"
#include "keystore/secmem.h"
#include "keystore/vault_internal.h"

bool vault_transit_is_ciphertext(const struct bytes *value)
{
	const char *s = (const char *)value->data;
	size_t i = 7;
	if (value->len < 9 || memcmp(s, "vault:v", 7) != 0)
		return false;
	while (i < value->len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i > 7 && i < value->len && s[i] == ':';
}

/* POSTs {"<field>": value-or-base64} to <engine>/<op>/<key>; returns data.<out_field>. */
static int transit_call(struct vault_store *v, const char *op, const char *field,
                        const struct bytes *in, bool in_base64, const char *out_field,
                        struct bytes *out, struct ks_err *err)
{
	char path[VAULT_PATH_MAX];
	const char *parts[] = {v->transit_engine, op, v->transit_key, NULL};
	if (vault_path_join(path, sizeof(path), parts) != 0) {
		ks_err_set(err, "vault: transit path too long");
		return KS_FAILED;
	}
	struct buf body;
	buf_init(&body, 8 * (size_t)KS_MAX_RECORD);
	struct json_writer w;
	json_writer_init(&w, &body);
	json_object_begin(&w);
	json_key(&w, field);
	if (in_base64)
		json_write_base64(&w, in->data, in->len);
	else
		json_write_string_n(&w, (const char *)in->data, in->len);
	json_object_end(&w);

	struct vault_response rs;
	vault_response_init(&rs);
	struct json_value *j = NULL;
	int rc = KS_FAILED;
	if (buf_failed(&body)) {
		ks_err_set(err, "vault: cannot encode transit request");
		goto out;
	}
	struct vault_call call = {
	    .method = "POST", .path = path, .body = body.data, .body_len = body.len};
	if ((rc = vault_store_call(v, &call, &rs, err)) != 0)
		goto out;
	if (rs.status != 200) {
		vault_http_error(&rs, op, path, err);
		rc = rs.status == 503 || rs.status == 502 ? KS_UNREACHABLE : KS_FAILED;
		goto out;
	}
	char perr[64];
	j = json_parse(rs.body.data, rs.body.len, perr, sizeof(perr));
	size_t len;
	const char *s = json_string(json_get(json_get(j, "data"), out_field), &len);
	rc = KS_FAILED;
	if (!s)
		ks_err_set(err, "vault: invalid transit %s response from '%s'", op, path);
	else if (bytes_set(out, s, len) != 0)
		ks_err_set(err, "vault: out of memory");
	else
		rc = KS_OK;
out:
	json_free(j);
	vault_response_free(&rs);
	buf_free(&body);
	return rc;
}

int vault_transit_encrypt(struct vault_store *v, const struct bytes *plain, struct bytes *out,
                          struct ks_err *err)
{
	int rc = transit_call(v, "encrypt", "plaintext", plain, true, "ciphertext", out, err);
	if (rc == KS_OK && !vault_transit_is_ciphertext(out)) {
		bytes_free(out);
		ks_err_set(err, "vault: invalid transit ciphertext from Vault");
		rc = KS_FAILED;
	}
	return rc;
}

int vault_transit_decrypt(struct vault_store *v, const struct bytes *ciphertext, struct bytes *out,
                          struct ks_err *err)
{
	struct bytes b64 = {0};
	int rc =
	    transit_call(v, "decrypt", "ciphertext", ciphertext, false, "plaintext", &b64, err);
	if (rc == KS_OK && base64_decode(out, (const char *)b64.data, b64.len) != 0) {
		ks_err_set(err, "vault: invalid transit plaintext from Vault");
		rc = KS_FAILED;
	}
	bytes_free(&b64);
	return rc;
}

/*
 * Vault stores JSON strings, which cannot carry arbitrary bytes. Records KES writes (base64
 * protobuf, JSON) are plain text and are stored verbatim, so KES and kesc read each other's
 * keys. Anything else — invalid UTF-8, NUL, or text that would be mistaken for a transit
 * ciphertext or for this marker — is stored as RAW_MARKER + base64. KES never writes such
 * records, so the layout stays KES's for every key KES could read.
 */
#define RAW_MARKER "kesc:base64:"

static bool utf8_plain(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		size_t len = c < 0x80             ? 1
		             : (c & 0xe0) == 0xc0 ? 2
		             : (c & 0xf0) == 0xe0 ? 3
		             : (c & 0xf8) == 0xf0 ? 4
		                                  : 0;
		if (c == 0 || len == 0 || i + len > n)
			return false;
		uint32_t cp = len == 1 ? c : (uint32_t)(c & (0x7f >> len));
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static bool has_prefix(const struct bytes *b, const char *prefix)
{
	size_t n = strlen(prefix);
	return b->len >= n && memcmp(b->data, prefix, n) == 0;
}

int vault_record_encode(const struct bytes *record, struct bytes *value)
{
	if (utf8_plain(record->data, record->len) && !has_prefix(record, RAW_MARKER) &&
	    !vault_transit_is_ciphertext(record))
		return bytes_set(value, record->data, record->len) == 0 ? KS_OK : KS_FAILED;
	struct buf b;
	buf_init(&b, 4 * (size_t)KS_MAX_RECORD);
	buf_append_str(&b, RAW_MARKER);
	base64_encode(&b, record->data, record->len);
	return buf_take(&b, value) == 0 ? KS_OK : KS_FAILED;
}

int vault_record_decode(struct bytes *value, struct bytes *record, struct ks_err *err)
{
	if (!has_prefix(value, RAW_MARKER)) {
		*record = *value;
		*value = (struct bytes){0};
		return KS_OK;
	}
	size_t n = strlen(RAW_MARKER);
	if (base64_decode(record, (const char *)value->data + n, value->len - n) == 0)
		return KS_OK;
	ks_err_set(err, "vault: invalid encoded record");
	return KS_FAILED;
}
