/*
 * key.c — `kesc key create|import|info|ls|rm|encrypt|decrypt|dek` (kes.md §8): the key API of
 * a kesc or KES server, with KES's argument order, output and error lines (cmd/kes/key.go).
 * The crypto verbs print a single JSON object without a trailing newline when standard output
 * is not a terminal (or with --json, a kesc extension), "label: value" lines on a terminal.
 *
 * kesc's own verbs for key versions and deletion protection (issue 14): rotate, rewrap, retire,
 * restore, purge. `info` of a key that was rotated adds its versions; of a key never rotated it
 * prints exactly what kes prints.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "keystore/bytes.h"
#include "keystore/json.h"

static const char KEY_USAGE[] =
    "Usage:\n"
    "    kesc key <command>\n\n"
    "Commands:\n"
    "    create                   Create a new crypto key.\n"
    "    import                   Import a crypto key.\n"
    "    info                     Get information about a crypto key.\n"
    "    ls                       List crypto keys.\n"
    "    rm                       Delete a crypto key.\n\n"
    "    encrypt                  Encrypt a message.\n"
    "    decrypt                  Decrypt an encrypted message.\n"
    "    dek                      Generate a new data encryption key.\n\n"
    "    rotate                   Add a new version to a key (kesc).\n"
    "    rewrap                   Re-encrypt a ciphertext under the current version (kesc).\n"
    "    retire                   Refuse decryption under versions older than one (kesc).\n"
    "    restore                  Undo a scheduled deletion (kesc).\n"
    "    purge                    Destroy a key scheduled for deletion now (kesc).\n\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n";

static const char CREATE_USAGE[] =
    "Usage:\n    kesc key create [options] <name>...\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc key create my-key\n    $ kesc key create my-key1 my-key2\n";
static const char IMPORT_USAGE[] =
    "Usage:\n    kesc key import [options] <name> <key>\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --cipher <alg>       AES256 (default) or ChaCha20.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc key import my-key-2 Xlnr/nOgAWE5cA7GAsl3L2goCvmfs6KE0gNgB1T93wE=\n";
static const char INFO_USAGE[] =
    "Usage:\n    kesc key info [options] <name>\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the key in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc key info my-key\n";
static const char LS_USAGE[] =
    "Usage:\n    kesc key ls [options] [<pattern>]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print keys in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc key ls\n    $ kesc key ls 'my-key*'\n";
static const char RM_USAGE[] =
    "Usage:\n    kesc key rm [options] <name>...\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc key rm my-key\n    $ kesc key rm my-key1 my-key2\n";
static const char ENCRYPT_USAGE[] =
    "Usage:\n    kesc key encrypt [options] <name> <message> "
    "[<context>]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the result in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "The optional context is base64 and must be given again to decrypt.\n\n"
    "Examples:\n    $ kesc key encrypt my-key \"Hello World\"\n";
static const char DECRYPT_USAGE[] =
    "Usage:\n    kesc key decrypt [options] <name> <ciphertext> "
    "[<context>]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the result in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ CIPHERTEXT=$(kesc key dek my-key | jq -r .ciphertext)\n"
    "    $ kesc key decrypt my-key \"$CIPHERTEXT\"\n";
static const char ROTATE_USAGE[] =
    "Usage:\n    kesc key rotate [options] <name>...\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the new versions in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "New data keys and ciphertexts use the new version; those made before keep decrypting.\n\n"
    "Examples:\n    $ kesc key rotate my-key\n";
static const char REWRAP_USAGE[] =
    "Usage:\n    kesc key rewrap [options] <name> <ciphertext> "
    "[<context>]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the result in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "The ciphertext is decrypted and encrypted again under the key's current version, with the\n"
    "same context, on the server: the plaintext is never sent.\n\n"
    "Examples:\n    $ kesc key rewrap my-key \"$CIPHERTEXT\"\n";
static const char RETIRE_USAGE[] =
    "Usage:\n    kesc key retire [options] <name> <version>\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the result in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "Ciphertexts of versions older than <version> are refused from now on (v1 undoes it).\n\n"
    "Examples:\n    $ kesc key retire my-key v3\n";
static const char RESTORE_USAGE[] =
    "Usage:\n    kesc key restore [options] <name>...\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc key restore my-key\n";
static const char PURGE_USAGE[] =
    "Usage:\n    kesc key purge [options] <name>...\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "\n    -h, --help               Print command line options.\n\n"
    "The key, deleted and scheduled for deletion, is destroyed now: it cannot be restored.\n\n"
    "Examples:\n    $ kesc key purge my-key\n";
static const char DEK_USAGE[] =
    "Usage:\n    kesc key dek [options] <name> [<context>]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the result in JSON format.\n"
    "\n    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc key dek my-key\n";

/* How kes words a failed call: "<what> \"<name>\": <reason>" with the name quoted as Go's %q
 * (create, import, rm), or "<what>: <reason>" (the others). */
struct key_failure {
	const char *what;
	bool with_name;
};

/* Runs one call and reports a failure as kes does. */
static int key_call(struct client *c, const char *method, const char *prefix, const char *name,
                    const struct buf *body, struct client_reply *reply,
                    const struct key_failure *failure)
{
	struct buf path;
	buf_init(&path, 4096);
	client_path(&path, prefix, name);
	int rc = buf_failed(&path) ? -1
	                           : client_call(c, method, path.data, body ? body->data : NULL,
	                                         body ? body->len : 0, reply);
	buf_free(&path);
	if (rc < 0) {
		const char *why = reply->message[0] ? reply->message : "invalid name";
		if (failure->with_name)
			return cli_fail_named(failure->what, name, why);
		return cli_fail("%s: %s", failure->what, why);
	}
	return 0;
}

/* Checks that arg is valid standard base64 (what the server's JSON []byte fields expect). */
static int valid_base64(const char *arg)
{
	struct bytes b = {0};
	int rc = base64_decode(&b, arg, strlen(arg));
	bytes_free(&b);
	return rc == 0;
}

/* create and rm: one call per name on one connection, stopping at the first failure. */
static int key_each(int argc, char **argv, const char *command, const char *usage,
                    const char *method, const char *prefix, const struct key_failure *what)
{
	struct cli_args a;
	int rc = cli_parse(argc, argv, NULL, 0, true, command, usage, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	rc = 0;
	if (a.count == 0) {
		rc = cli_usage_error(command, "no key name specified");
		goto out;
	}
	struct client *c = client_open_or_report(&a.client);
	if (!c) {
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < a.count && rc == 0; i++) {
		struct client_reply reply;
		rc = key_call(c, method, prefix, a.args[i], NULL, &reply, what);
		client_reply_free(&reply);
	}
	client_close(c);
out:
	cli_args_free(&a);
	return rc;
}

static int key_create(int argc, char **argv)
{
	static const struct key_failure failure = {"failed to create key", true};
	return key_each(argc, argv, "key create", CREATE_USAGE, "POST", "/v1/key/create/",
	                &failure);
}

static int key_import(int argc, char **argv)
{
	const char *cipher = "AES256";
	const struct cli_flag flags[] = {{"cipher", 0, CLI_STRING, &cipher}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key import", IMPORT_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("key import", "no key name specified");
	else if (a.count == 1)
		rc = cli_usage_error("key import", "no crypto key specified");
	else if (a.count > 2)
		rc = cli_usage_error("key import", "too many arguments");
	else if (!valid_base64(a.args[1]))
		rc = cli_usage_error("key import", "invalid key: not base64");
	if (rc != 0)
		goto out;
	struct buf body;
	struct json_writer w;
	buf_init(&body, 4096);
	json_writer_init(&w, &body);
	json_object_begin(&w);
	json_key(&w, "key");
	json_write_string(&w, a.args[1]);
	json_key(&w, "cipher");
	json_write_string(&w, cipher);
	json_object_end(&w);
	struct client *c = client_open_or_report(&a.client);
	if (!c) {
		rc = 1;
	} else {
		struct client_reply reply;
		static const struct key_failure failure = {"failed to import", true};
		rc = key_call(c, "POST", "/v1/key/import/", a.args[0], &body, &reply, &failure);
		client_reply_free(&reply);
		client_close(c);
	}
	buf_free(&body);
out:
	cli_args_free(&a);
	return rc;
}

/* kms-go's KeyAlgorithm: 0 AES256 (also "AES256-GCM_SHA256"), 1 ChaCha20 (also
 * "XCHACHA20-POLY1305"); -1 for anything else, which kms-go refuses to decode. */
static int key_algorithm(const char *s)
{
	if (!strcmp(s, "") || !strcmp(s, "AES256") || !strcmp(s, "AES256-GCM_SHA256"))
		return 0;
	if (!strcmp(s, "ChaCha20") || !strcmp(s, "XCHACHA20-POLY1305"))
		return 1;
	return -1;
}

/* A rotated key's describe members (api_key.c): version, min_decryption_version and versions,
 * each version with its version, algorithm and created_at (created_by optional). */
static bool key_versions_valid(const struct json_value *v)
{
	const struct json_value *list = json_get(v, "versions");
	struct go_time t;

	if (!cli_reply_string(v, "version") || !cli_reply_string(v, "min_decryption_version") ||
	    json_type(list) != JSON_ARRAY)
		return false;
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json_value *x = json_at(list, i);
		if (!cli_reply_string(x, "version") || !cli_reply_string(x, "algorithm") ||
		    cli_reply_time(x, "created_at", &t) < 0)
			return false;
	}
	return true;
}

static void key_versions_json(struct json_writer *w, const struct json_value *v)
{
	const struct json_value *list = json_get(v, "versions");

	json_key(w, "version");
	json_write_string(w, cli_reply_string(v, "version"));
	json_key(w, "min_decryption_version");
	json_write_string(w, cli_reply_string(v, "min_decryption_version"));
	json_key(w, "versions");
	json_array_begin(w);
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json_value *x = json_at(list, i);
		const char *by = cli_reply_string(x, "created_by");
		struct go_time t;
		struct buf when;

		cli_reply_time(x, "created_at", &t);
		buf_init(&when, 64);
		goformat_time_json(&when, &t);
		json_object_begin(w);
		json_key(w, "version");
		json_write_string(w, cli_reply_string(x, "version"));
		json_key(w, "algorithm");
		json_write_string(w, cli_reply_string(x, "algorithm"));
		json_key(w, "created_at");
		json_write_string(w, when.data ? when.data : "");
		if (by && *by) {
			json_key(w, "created_by");
			json_write_string(w, by);
		}
		json_object_end(w);
		buf_free(&when);
	}
	json_array_end(w);
}

/* After kes's four lines: "Version", the retired range if any, one line per version. */
static void key_versions_text(struct buf *out, const struct json_value *v)
{
	const struct json_value *list = json_get(v, "versions");
	const char *cur = cli_reply_string(v, "version"),
	           *min = cli_reply_string(v, "min_decryption_version");

	buf_printf(out, "\n%-11s %s", "Version", cur);
	if (strcmp(min, "v1") != 0)
		buf_printf(out, " (older than %s retired)", min);
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json_value *x = json_at(list, i);
		const char *by = cli_reply_string(x, "created_by");
		struct go_time t;

		cli_reply_time(x, "created_at", &t);
		buf_printf(out, "\n%-11s %-4s %-8s ", i ? "" : "Versions",
		           cli_reply_string(x, "version"), cli_reply_string(x, "algorithm"));
		goformat_time_clock(out, &t, false);
		if (by && *by)
			buf_printf(out, "  %s", by);
	}
}

/* The reply as kes's describeKeyCmd prints it: kms-go's KeyInfo as JSON (name, algorithm
 * unless AES256, created_at, created_by unless empty) or four lines, the last without a
 * newline. */
static int key_info_print(const struct client_reply *reply, bool json)
{
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	if (!v)
		return 1;
	int rc = 1;
	const char *name = cli_reply_string(v, "name"), *alg = cli_reply_string(v, "algorithm");
	const char *created_by = cli_reply_string(v, "created_by");
	struct go_time t;
	if (!name || !alg || !created_by || cli_reply_time(v, "created_at", &t) < 0)
		goto out;
	int algorithm = key_algorithm(alg);
	if (algorithm < 0) {
		rc = cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
		goto out;
	}
	const struct json_value *versions = json_get(v, "versions");
	if (versions && !key_versions_valid(v)) {
		rc = cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
		goto out;
	}
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	if (json) {
		struct json_writer w;
		json_writer_init(&w, &out);
		json_object_begin(&w);
		json_key(&w, "name");
		json_write_string(&w, name);
		if (algorithm != 0) {
			json_key(&w, "algorithm");
			json_write_string(&w, "ChaCha20");
		}
		struct buf when;
		buf_init(&when, 64);
		goformat_time_json(&when, &t);
		json_key(&w, "created_at");
		json_write_string(&w, when.data ? when.data : "");
		buf_free(&when);
		if (*created_by) {
			json_key(&w, "created_by");
			json_write_string(&w, created_by);
		}
		if (versions)
			key_versions_json(&w, v);
		json_object_end(&w);
		buf_append_char(&out, '\n');
	} else {
		buf_printf(&out, "%-11s %s\n%-11s %s\n%-11s ", "Name", name, "Algorithm",
		           algorithm ? "ChaCha20" : "AES256", "Date");
		goformat_time_clock(&out, &t, false);
		buf_printf(&out, "\n%-11s %s", "Owner", created_by);
		if (versions)
			key_versions_text(&out, v);
	}
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_free(&out);
	rc = 0;
out:
	json_free(v);
	return rc;
}

static int key_info(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key info", INFO_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count != 1) {
		rc = cli_usage_error("key info",
		                     a.count ? "too many arguments" : "no key name specified");
		goto out;
	}
	struct client *c = client_open_or_report(&a.client);
	if (!c) {
		rc = 1;
		goto out;
	}
	struct client_reply reply;
	static const struct key_failure failure = {"failed to describe keys", false};
	rc = key_call(c, "GET", "/v1/key/describe/", a.args[0], NULL, &reply, &failure);
	if (rc == 0)
		rc = key_info_print(&reply, json);
	client_reply_free(&reply);
	client_close(c);
out:
	cli_args_free(&a);
	return rc;
}

static int key_ls(int argc, char **argv)
{
	static const struct cli_list_verb ls = {
	    "key ls", LS_USAGE, "/v1/key/list/", "names", "Key", NULL, "failed to list keys",
	};
	return cli_run_list_verb(argc, argv, &ls);
}

static int key_rm(int argc, char **argv)
{
	static const struct key_failure failure = {"failed to remove key", true};
	return key_each(argc, argv, "key rm", RM_USAGE, "DELETE", "/v1/key/delete/", &failure);
}

/* The crypto verbs' output: on a terminal "\n<label>: <value>" lines (dek aligns its two
 * labels), else one JSON object without a trailing newline (kes.md §8). fields are the reply
 * members to show, in order. */
static int print_crypto(const struct client_reply *reply, const char *const *fields, size_t n,
                        bool json)
{
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	int rc = 0;
	if (!v)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (!json_string(json_get(v, fields[i]), NULL)) {
			rc = cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
			goto out;
		}
	if (json || !cli_stdout_is_terminal()) {
		struct buf out;
		struct json_writer w;
		buf_init(&out, BUF_DEFAULT_MAX);
		json_writer_init(&w, &out);
		json_object_begin(&w);
		for (size_t i = 0; i < n; i++) {
			size_t len = 0;
			const char *s = json_string(json_get(v, fields[i]), &len);
			json_key(&w, fields[i]);
			json_write_string_n(&w, s, len);
		}
		json_object_end(&w);
		fwrite(out.data, 1, out.len, stdout);
		buf_free(&out);
	} else {
		fputc('\n', stdout);
		for (size_t i = 0; i < n; i++) {
			size_t len = 0;
			const char *s = json_string(json_get(v, fields[i]), &len);
			int pad = n > 1 ? (int)(11 - strlen(fields[i])) : 1;
			if (pad < 1)
				pad = 1; /* a label longer than kes's own (retire's) */
			printf("%s:%*s%.*s\n", fields[i], pad, "", (int)len, s);
		}
	}
	fflush(stdout);
out:
	json_free(v);
	return rc;
}

/* Builds {"<k0>":"<v0>",…} from base64 values; NULL values are left out. */
static void crypto_body(struct buf *body, const char *k0, const char *v0, const char *k1,
                        const char *v1)
{
	struct json_writer w;
	json_writer_init(&w, body);
	json_object_begin(&w);
	if (v0) {
		json_key(&w, k0);
		json_write_string(&w, v0);
	}
	if (v1) {
		json_key(&w, k1);
		json_write_string(&w, v1);
	}
	json_object_end(&w);
}

/* Shared by encrypt, decrypt and dek: POST body to prefix+name, print fields. */
static int crypto_call(const struct cli_args *a, const char *prefix, const struct buf *body,
                       const char *const *fields, size_t n, bool json,
                       const struct key_failure *what)
{
	if (buf_failed(body))
		return cli_fail("%s", cli_message(CLI_MSG_OUT_OF_MEMORY));
	struct client *c = client_open_or_report(&a->client);
	if (!c)
		return 1;
	struct client_reply reply;
	int rc = key_call(c, "POST", prefix, a->args[0], body, &reply, what);
	if (rc == 0)
		rc = print_crypto(&reply, fields, n, json);
	client_reply_free(&reply);
	client_close(c);
	return rc;
}

static int key_encrypt(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	static const char *const fields[] = {"ciphertext"};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key encrypt", ENCRYPT_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("key encrypt", "no key name specified");
	else if (a.count == 1)
		rc = cli_usage_error("key encrypt", "no message specified");
	else if (a.count > 3)
		rc = cli_usage_error("key encrypt", "too many arguments");
	else if (a.count == 3 && !valid_base64(a.args[2]))
		rc = cli_usage_error("key encrypt", "invalid context: not base64");
	if (rc != 0)
		goto out;
	struct buf message, body;
	buf_init(&message, BUF_DEFAULT_MAX);
	buf_init(&body, BUF_DEFAULT_MAX);
	base64_encode(&message, (const uint8_t *)a.args[1], strlen(a.args[1]));
	crypto_body(&body, "plaintext", message.len ? message.data : "", "context",
	            a.count == 3 ? a.args[2] : NULL);
	static const struct key_failure failure = {"failed to encrypt message", false};
	rc = crypto_call(&a, "/v1/key/encrypt/", &body, fields, 1, json, &failure);
	buf_free(&message);
	buf_free(&body);
out:
	cli_args_free(&a);
	return rc;
}

static int key_decrypt(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	static const char *const fields[] = {"plaintext"};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key decrypt", DECRYPT_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("key decrypt", "no key name specified");
	else if (a.count == 1)
		rc = cli_usage_error("key decrypt", "no ciphertext specified");
	else if (a.count > 3)
		rc = cli_usage_error("key decrypt", "too many arguments");
	else if (!valid_base64(a.args[1]))
		rc = cli_usage_error("key decrypt", "invalid ciphertext: not base64");
	else if (a.count == 3 && !valid_base64(a.args[2]))
		rc = cli_usage_error("key decrypt", "invalid context: not base64");
	if (rc != 0)
		goto out;
	struct buf body;
	buf_init(&body, BUF_DEFAULT_MAX);
	crypto_body(&body, "ciphertext", a.args[1], "context", a.count == 3 ? a.args[2] : NULL);
	static const struct key_failure failure = {"failed to decrypt ciphertext", false};
	rc = crypto_call(&a, "/v1/key/decrypt/", &body, fields, 1, json, &failure);
	buf_free(&body);
out:
	cli_args_free(&a);
	return rc;
}

static int key_dek(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	static const char *const fields[] = {"plaintext", "ciphertext"};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key dek", DEK_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("key dek", "no key name specified");
	else if (a.count > 2)
		rc = cli_usage_error("key dek", "too many arguments");
	else if (a.count == 2 && !valid_base64(a.args[1]))
		rc = cli_usage_error("key dek", "invalid context: not base64");
	if (rc != 0)
		goto out;
	struct buf body;
	buf_init(&body, BUF_DEFAULT_MAX);
	crypto_body(&body, "context", a.count == 2 ? a.args[1] : NULL, NULL, NULL);
	static const struct key_failure failure = {"failed to derive key", false};
	rc = crypto_call(&a, "/v1/key/generate/", &body, fields, 2, json, &failure);
	buf_free(&body);
out:
	cli_args_free(&a);
	return rc;
}

/* rotate: one call per name; prints each new version ("<name>: v<n>", or JSON lines). */
static int key_rotate(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	static const struct key_failure failure = {"failed to rotate key", true};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key rotate", ROTATE_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0) {
		rc = cli_usage_error("key rotate", "no key name specified");
		goto out;
	}
	struct client *c = client_open_or_report(&a.client);
	if (!c) {
		rc = 1;
		goto out;
	}
	json = json || !cli_stdout_is_terminal();
	for (size_t i = 0; i < a.count && rc == 0; i++) {
		struct client_reply reply;
		rc = key_call(c, "POST", "/v1/key/rotate/", a.args[i], NULL, &reply, &failure);
		struct json_value *v =
		    rc ? NULL : cli_parse_reply(reply.body.data, reply.body.len, JSON_OBJECT);
		const char *version = cli_reply_string(v, "version");
		if (rc == 0 && !version) {
			rc = cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
		} else if (rc == 0 && json) {
			struct buf out;
			struct json_writer w;
			buf_init(&out, 4096);
			json_writer_init(&w, &out);
			json_object_begin(&w);
			json_key(&w, "name");
			json_write_string(&w, a.args[i]);
			json_key(&w, "version");
			json_write_string(&w, version);
			json_object_end(&w);
			printf("%s\n", out.data ? out.data : "");
			buf_free(&out);
		} else if (rc == 0) {
			printf("%s: %s\n", a.args[i], version);
		}
		json_free(v);
		client_reply_free(&reply);
	}
	fflush(stdout);
	client_close(c);
out:
	cli_args_free(&a);
	return rc;
}

static int key_rewrap(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	static const char *const fields[] = {"ciphertext", "version"};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key rewrap", REWRAP_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("key rewrap", "no key name specified");
	else if (a.count == 1)
		rc = cli_usage_error("key rewrap", "no ciphertext specified");
	else if (a.count > 3)
		rc = cli_usage_error("key rewrap", "too many arguments");
	else if (!valid_base64(a.args[1]))
		rc = cli_usage_error("key rewrap", "invalid ciphertext: not base64");
	else if (a.count == 3 && !valid_base64(a.args[2]))
		rc = cli_usage_error("key rewrap", "invalid context: not base64");
	if (rc != 0)
		goto out;
	struct buf body;
	buf_init(&body, BUF_DEFAULT_MAX);
	crypto_body(&body, "ciphertext", a.args[1], "context", a.count == 3 ? a.args[2] : NULL);
	static const struct key_failure failure = {"failed to rewrap ciphertext", false};
	rc = crypto_call(&a, "/v1/key/rewrap/", &body, fields, 2, json, &failure);
	buf_free(&body);
out:
	cli_args_free(&a);
	return rc;
}

static int key_retire(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	static const char *const fields[] = {"min_decryption_version", "version"};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "key retire", RETIRE_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("key retire", "no key name specified");
	else if (a.count == 1)
		rc = cli_usage_error("key retire", "no version specified");
	else if (a.count > 2)
		rc = cli_usage_error("key retire", "too many arguments");
	if (rc != 0)
		goto out;
	struct buf body;
	buf_init(&body, 4096);
	crypto_body(&body, "min_decryption_version", a.args[1], NULL, NULL);
	static const struct key_failure failure = {"failed to retire key versions", false};
	rc = crypto_call(&a, "/v1/key/retire/", &body, fields, 2, json, &failure);
	buf_free(&body);
out:
	cli_args_free(&a);
	return rc;
}

static int key_restore(int argc, char **argv)
{
	static const struct key_failure failure = {"failed to restore key", true};
	return key_each(argc, argv, "key restore", RESTORE_USAGE, "POST", "/v1/key/restore/",
	                &failure);
}

static int key_purge(int argc, char **argv)
{
	static const struct key_failure failure = {"failed to purge key", true};
	return key_each(argc, argv, "key purge", PURGE_USAGE, "DELETE", "/v1/key/purge/", &failure);
}

int cmd_key(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	    {"create", key_create},   {"import", key_import}, {"info", key_info},
	    {"ls", key_ls},           {"rm", key_rm},         {"encrypt", key_encrypt},
	    {"decrypt", key_decrypt}, {"dek", key_dek},       {"rotate", key_rotate},
	    {"rewrap", key_rewrap},   {"retire", key_retire}, {"restore", key_restore},
	    {"purge", key_purge},     {NULL, NULL},
	};
	return cli_dispatch(argc, argv, subs, "key", KEY_USAGE);
}
