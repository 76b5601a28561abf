/*
 * vault_transit.c — optional wrapping of stored records with a Vault transit key, as KES does
 * since 2023-10: the K/V value is the transit ciphertext "vault:vN:…" of the record.
 *
 * Unlike KES (which accepts only "vault:v1:"), any key version is accepted in both directions,
 * so records stay readable and writable after the transit key is rotated.
 */
#include <string.h>

#include "keystore/json.h"
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
	struct vault_call call = {.method = "POST", .path = path, .body = body.data, .body_len = body.len};
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
	int rc = transit_call(v, "decrypt", "ciphertext", ciphertext, false, "plaintext", &b64, err);
	if (rc == KS_OK && base64_decode(out, (const char *)b64.data, b64.len) != 0) {
		ks_err_set(err, "vault: invalid transit plaintext from Vault");
		rc = KS_FAILED;
	}
	bytes_free(&b64);
	return rc;
}
