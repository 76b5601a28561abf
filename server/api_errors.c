/* api_errors.c — the table of user-visible error texts and KES's error body writer. */
#include "server/api_errors.h"

#include <string.h>

#include "keystore/json.h"

struct api_error_entry {
	int status;
	const char *text;
};

/* clang-format off: one entry per line reads as the table it is */
static const struct api_error_entry ERRORS[API_ERR_COUNT] = {
    [API_ERR_PAGE_NOT_FOUND] = {404, "404 page not found\n"},
    [API_ERR_METHOD] = {405, "received method '%s' expected '%s'"},
    [API_ERR_CERT_REQUIRED] = {400, "tls: client certificate is required"},
    [API_ERR_CERT_MULTIPLE] = {400, "tls: received more than one client certificate"},
    [API_ERR_NOT_ALLOWED] = {403, "not authorized: insufficient permissions"},
    [API_ERR_KEY_NAME] = {400, "key name '%s' is empty, too long or contains invalid characters"},
    [API_ERR_POLICY_NAME] = {400,
                             "policy name '%s' is empty, too long or contains invalid characters"},
    [API_ERR_IDENTITY_NAME] = {400,
                               "identity '%s' is empty, too long or contains invalid characters"},
    [API_ERR_PATTERN] = {400, "listing pattern '%s' is empty, too long or is invalid"},
    [API_ERR_BODY] = {400, "invalid request body"},
    [API_ERR_IMPORT_BODY] = {400, "invalid import key request body"},
    /* KES's bulk decrypt, until its 2023-10-24 release: more than 1000 items. */
    [API_ERR_BULK_COUNT] = {400, "too many ciphertexts"},
    /* KES's text when enclaves existed (kes-go ErrEnclaveNotFound): the admin named a tenant
     * the configuration does not have. */
    [API_ERR_NO_ENCLAVE] = {404, "enclave does not exist"},
    [API_ERR_ALGORITHM] = {406, "algorithm '%s' is not supported"},
    [API_ERR_KEY_SIZE] = {406, "invalid key size for '%s'"},
    [API_ERR_KEY_NOT_FOUND] = {404, "key does not exist"},
    [API_ERR_KEY_EXISTS] = {400, "key already exists"},
    /* kesc only: not KES's 400 "key already exists", which MinIO takes for success when it
     * creates its default key, although no key exists; any other answer makes MinIO fail
     * loudly instead. */
    [API_ERR_KEY_DELETED] = {409, "key was deleted recently: its name cannot be used again yet"},
    [API_ERR_DECRYPT] = {400, "decryption failed: ciphertext is not authentic"},
    [API_ERR_NO_HMAC] = {409, "key does not support HMAC"},
    [API_ERR_POLICY_NOT_FOUND] = {404, "policy does not exist"},
    [API_ERR_IDENTITY_NOT_FOUND] = {404, "identity does not exist"},
    [API_ERR_CREATE_KEY] = {502, "failed to create key"},
    [API_ERR_READ_KEY] = {502, "failed to read key"},
    [API_ERR_DELETE_KEY] = {502, "failed to delete key"},
    [API_ERR_LIST_KEYS] = {502, "failed to list keys"},
    [API_ERR_IMPORT_INTERNAL] = {500, "failed to create key"},
    [API_ERR_GENERATE] = {500, "failed to generate encryption key"},
    [API_ERR_ENCRYPT] = {500, "failed to encrypt plaintext"},
    [API_ERR_DECRYPT_INTERNAL] = {500, "failed to decrypt ciphertext"},
    [API_ERR_HMAC_INTERNAL] = {500, "failed to compute HMAC"},
    [API_ERR_STORE_UNREACHABLE] = {504, "key store is not reachable"},
    [API_ERR_STORE_UNAVAILABLE] = {502, "key store is unavailable"},
    /* KES's timeout handler text (kes.md §1.2: G2's http.TimeoutHandler); 504 as a gateway
     * that gave up waiting says, so clients retry instead of seeing a dropped connection. */
    [API_ERR_TIMEOUT] = {504, "request timeout exceeded"},
    [API_ERR_INTERNAL] = {500, "internal server error"},
    /* kesc: the audit rule (log.h). 503 so that MinIO's client retries and, with several
     * endpoints, tries another server. */
    [API_ERR_AUDIT] = {503, "audit log unavailable: request not served"},
    /* kesc: key versions (issue 14). A version a request names that the key does not have,
     * or one older than the key's minimum decryption version: 400, as the request is what
     * cannot be served, and a ciphertext of a retired version is told apart from one that is
     * not authentic (it authenticated). */
    [API_ERR_VERSION_UNKNOWN] = {400, "key version '%s' does not exist"},
    [API_ERR_VERSION_RETIRED] = {400, "key version '%s' is retired"},
    [API_ERR_VERSIONS_MAX] = {409, "key has the maximum number of versions"},
    /* kesc: deletion protection. Restore and purge act on a key scheduled for deletion only. */
    [API_ERR_KEY_NOT_DELETED] = {409, "key is not scheduled for deletion"},
    [API_ERR_KEY_PURGED] = {404, "key was deleted and cannot be restored"},
    [API_ERR_UPDATE_KEY] = {502, "failed to update key"},
};
/* clang-format on */

int api_error_status(enum api_error_id id)
{
	return ERRORS[id].status;
}

const char *api_error_text(enum api_error_id id)
{
	return ERRORS[id].text;
}

/* Expands the "%s" slots of text into out (unescaped). */
static void expand(struct buf *out, const char *text, const char *a, const char *b)
{
	const char *args[2] = {a ? a : "", b ? b : ""};
	int used = 0;
	const char *p = text;
	const char *slot;
	while ((slot = strstr(p, "%s")) != NULL) {
		buf_append(out, p, (size_t)(slot - p));
		if (used < 2)
			buf_append_str(out, args[used++]);
		p = slot + 2;
	}
	buf_append_str(out, p);
}

void api_error(struct api_response *resp, enum api_error_id id, const char *a, const char *b)
{
	buf_reset(&resp->body);
	resp->status = ERRORS[id].status;
	resp->stream = API_STREAM_NONE;
	if (id == API_ERR_PAGE_NOT_FOUND) {
		resp->content_type = "text/plain; charset=utf-8";
		buf_append_str(&resp->body, ERRORS[id].text);
		return;
	}
	/* KES: {"message": + json.Encoder.Encode(msg) + } — the encoder's newline lands inside
	 * the braces. */
	struct buf msg;
	buf_init(&msg, 0);
	expand(&msg, ERRORS[id].text, a, b);
	resp->content_type = "application/json";
	buf_append_str(&resp->body, "{\"message\":");
	json_escape_string(&resp->body, msg.data ? msg.data : "", msg.len);
	buf_append_str(&resp->body, "\n}");
	buf_free(&msg);
}
