/*
 * identity.c — `kesc identity [new|of|info|ls]` (kes.md §2, §8; cmd/kes/identity.go).
 *
 * `new` writes an ECDSA P-256 private key and a self-signed certificate that works as a
 * client certificate and, with its SANs, as a server certificate. KES makes an Ed25519 API
 * key there (and an Ed25519 certificate with --key/--cert); kesc cannot use Ed25519 in TLS
 * (mbedTLS 2.28), so its identities are certificates it can log in with. `kesc identity`
 * alone still makes a KES API key, as kes does, for KES clients that can use one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/apikey.h"
#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "keystore/json.h"
#include "keystore/secmem.h"
#include "policy/identity.h"
#include "server/certgen.h"
#include "server/config.h"

#define IDENTITY_DEFAULT_KEY  "private.key"
#define IDENTITY_DEFAULT_CERT "public.crt"

static const char IDENTITY_USAGE[] =
    "Usage:\n"
    "    kesc identity <command>\n"
    "    kesc identity [<api-key> | <file>]\n\n"
    "Commands:\n"
    "    new                      Create a new identity (private key and certificate).\n"
    "    of                       Compute the identity of a certificate or API key.\n"
    "    info                     Get information about an identity.\n"
    "    ls                       List identities.\n\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n\n"
    "Without arguments, creates a new KES API key (kes:v1:...) and prints it; on a\n"
    "terminal also its identity. kesc itself cannot log in with an API key (mbedTLS\n"
    "2.28 has no Ed25519 in TLS): use it with KES, MinIO or another KES client, and\n"
    "'kesc identity new' for certificates kesc can use. With an API key or a\n"
    "certificate file, prints its identity; with an Ed25519 private key file (PKCS#8\n"
    "PEM), prints its API key.\n";

static const char NEW_USAGE[] =
    "Usage:\n"
    "    kesc identity new [options] [<subject>]\n\n"
    "Options:\n"
    "        --key <file>         Private key file (default: ./private.key).\n"
    "        --cert <file>        Certificate file (default: ./public.crt).\n"
    "        --ip <ip>            Add an IP address SAN (repeatable).\n"
    "        --dns <name>         Add a DNS name SAN (repeatable).\n"
    "        --expiry <duration>  Validity of the certificate (default: 720h).\n"
    "    -f, --force              Overwrite existing files.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Unlike kes, which makes an Ed25519 API key here (and writes files only with\n"
    "--key and --cert), kesc always writes an ECDSA P-256 private key (mode 0600) and a\n"
    "self-signed certificate, by default ./private.key and ./public.crt, and prints the\n"
    "identity: mbedTLS 2.28 has no Ed25519 in TLS. 'kesc identity' alone makes an API\n"
    "key. The certificate allows client and server authentication. Without --ip and\n"
    "--dns it is valid for localhost, 127.0.0.1 and ::1; a subject that looks like a\n"
    "host name is added as a DNS name. kes's --encrypt is not supported.\n\n"
    "Examples:\n"
    "    $ kesc identity new\n"
    "    $ kesc identity new --key client.key --cert client.crt my-app\n"
    "    $ kesc identity new --ip 10.1.2.3 --dns kes.example.net kes.example.net\n";

static const char OF_USAGE[] =
    "Usage:\n"
    "    kesc identity of <api-key>\n"
    "    kesc identity of <certificate>...\n\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n\n"
    "Prints the identity (hex SHA-256 of the public key) of a certificate or KES API\n"
    "key (kes:v1:...), without a newline when not on a terminal. kesc extension: with\n"
    "several arguments, one \"<identity>  <argument>\" line each.\n\n"
    "Examples:\n"
    "    $ kesc identity of client.crt\n";

static const char INFO_USAGE[] =
    "Usage:\n"
    "    kesc identity info [options] [<identity>]\n\n"
    "Options:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the server's reply (JSON). kesc extension: kes\n"
    "                             accepts the flag and prints the text.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Without an identity, describes the identity of the client certificate in use.\n\n"
    "Examples:\n"
    "    $ kesc identity info\n"
    "    $ kesc identity info 3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22\n";

static const char LS_USAGE[] = "Usage:\n"
                               "    kesc identity ls [options] [<pattern>]\n\n"
                               "Options:\n" CLI_CLIENT_OPTIONS_USAGE
                               "        --json               Print identities in JSON format.\n\n"
                               "    -h, --help               Print command line options.\n\n"
                               "Examples:\n"
                               "    $ kesc identity ls\n"
                               "    $ kesc identity ls 'b0*'\n";

/* A subject goes into the SANs when it reads like a host name: letters, digits, '-', '.'. */
static bool looks_like_host(const char *s)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return false;
	return true;
}

static bool list_has(const struct cli_list *l, const char *s)
{
	for (size_t i = 0; i < l->count; i++)
		if (!strcmp(l->items[i], s))
			return true;
	return false;
}

static void print_new_identity(const char *key, const char *cert, const char *identity)
{
	if (!cli_stdout_is_terminal()) {
		fputs(identity, stdout);
		return;
	}
	printf("\n  Private key:  %s\n  Certificate:  %s\n  Identity:     %s\n\n", key, cert,
	       identity);
	printf(
	    "  The private key is ECDSA P-256. Use the identity in a policy or as admin.identity\n"
	    "  of the server configuration, and the key and certificate as KES_CLIENT_KEY and\n"
	    "  KES_CLIENT_CERT.\n");
}

static int identity_new(int argc, char **argv)
{
	const char *key = NULL, *cert = NULL, *expiry = NULL;
	bool force = false;
	struct cli_list ips = {0}, dns = {0};
	const struct cli_flag flags[] = {
	    {"key", 0, CLI_STRING, &key},       {"cert", 0, CLI_STRING, &cert},
	    {"ip", 0, CLI_LIST, &ips},          {"dns", 0, CLI_LIST, &dns},
	    {"expiry", 0, CLI_STRING, &expiry}, {"force", 'f', CLI_BOOL, &force},
	};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, sizeof flags / sizeof flags[0], false, "identity new",
	                   NEW_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	int64_t valid_ms = 0;
	if (a.count > 1) {
		rc = cli_usage_error("identity new", "too many arguments");
		goto out;
	}
	if (expiry && (config_parse_duration(expiry, &valid_ms) < 0 || valid_ms < 1000)) {
		rc = cli_usage_error("identity new", "invalid expiry '%s'", expiry);
		goto out;
	}
	const char *subject = a.count ? a.args[0] : NULL;
	/* Without explicit SANs the certificate works for this machine, so `identity new` alone
	 * gives a usable server certificate for a local test set-up. */
	if (dns.count == 0 && ips.count == 0) {
		dns.items[dns.count++] = "localhost";
		ips.items[ips.count++] = "127.0.0.1";
		ips.items[ips.count++] = "::1";
	}
	if (subject && looks_like_host(subject) && !list_has(&dns, subject) &&
	    dns.count < sizeof dns.items / sizeof dns.items[0])
		dns.items[dns.count++] = subject;
	if (!key && !cert) {
		key = IDENTITY_DEFAULT_KEY;
		cert = IDENTITY_DEFAULT_CERT;
	} else if (!key || !cert) {
		rc = cli_usage_error("identity new", "--key and --cert must be given together");
		goto out;
	}
	struct certgen_options opt = {
	    .common_name = subject,
	    .dns = dns.items,
	    .dns_count = dns.count,
	    .ips = ips.items,
	    .ip_count = ips.count,
	    .valid_seconds = valid_ms / 1000,
	    .server_auth = true,
	    .client_auth = true,
	};
	char identity[IDENTITY_HEX_LEN + 1], err[512];
	if (certgen_self_signed(&opt, key, cert, force, identity, err, sizeof err) < 0) {
		rc = cli_fail("failed to create identity: %s", err);
		goto out;
	}
	print_new_identity(key, cert, identity);
out:
	cli_args_free(&a);
	return rc;
}

/* kes prints an identity bare when not on a terminal, and as "Identity:" with the identity
 * indented below it on one. */
static void print_identity(const char *identity)
{
	if (cli_stdout_is_terminal())
		printf("Identity:\n\n   %s\n", identity);
	else
		fputs(identity, stdout);
}

/* One certificate file (or, for `kes` compatibility, an API key, whose identity needs no
 * Ed25519 signing). An API key is a private key: it is never echoed, in errors or labels, so
 * it cannot end up in a terminal scroll-back, a CI log or a shared screen. index is the
 * argument's position, which names the API key instead. */
static int identity_of_one(const char *arg, size_t index, bool label)
{
	char identity[IDENTITY_HEX_LEN + 1], err[512], shown[64] = "";
	bool api_key = !strncmp(arg, "kes:v1:", 7);
	int rc = api_key ? identity_of_api_key(arg, identity, err, sizeof err)
	                 : identity_of_cert_file(arg, identity, err, sizeof err);
	if (api_key)
		snprintf(shown, sizeof shown, "API key #%zu", index + 1);
	if (rc < 0)
		return api_key ? cli_fail("failed to compute the identity of %s: %s", shown, err)
		               : cli_fail("failed to parse certificate in '%s': %s", arg, err);
	if (label)
		printf("%s  %s\n", identity, api_key ? shown : arg);
	else
		print_identity(identity);
	return 0;
}

static int identity_of(int argc, char **argv)
{
	struct cli_args a;
	int rc = cli_parse(argc, argv, NULL, 0, false, "identity of", OF_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("identity of", "no API key or certificate specified");
	for (size_t i = 0; i < a.count; i++)
		if (identity_of_one(a.args[i], i, a.count > 1) != 0)
			rc = 1;
	cli_args_free(&a);
	return rc;
}

/* A rule set under its label, sorted (kes prints Go's random map order). */
static void print_rules(struct buf *out, const struct json_value *v, const char *key,
                        const char *label)
{
	const char **rules;
	size_t n = cli_rule_names(json_get(v, key), &rules);
	if (n > 0) {
		buf_printf(out, "%-11s\n", label);
		for (size_t i = 0; i < n; i++)
			buf_printf(out, "%-11s · %s\n", " ", rules[i]);
	}
	free(rules);
}

/* kes's infoIdentityCmd: "Identity", ["Policy"], "Created At", "Role", ["Created By"]; for the
 * caller's own identity the policy and its rules follow. */
static int identity_info_print(const struct client_reply *reply, const char *identity, bool json)
{
	if (json) {
		cli_print_json_body(reply->body.data, reply->body.len);
		return 0;
	}
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	if (!v)
		return 1;
	int rc = 1;
	const char *policy = cli_reply_string(v, "policy");
	const char *created_by = cli_reply_string(v, "created_by");
	const char *self = identity ? identity : cli_reply_string(v, "identity");
	struct go_time t;
	if (!policy || !created_by || !self || cli_reply_time(v, "created_at", &t) < 0)
		goto out;
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	buf_printf(&out, "%-11s %s\n", "Identity", self);
	if (identity && *policy)
		buf_printf(&out, "%-11s %s\n", "Policy", policy);
	buf_printf(&out, "%-11s ", "Created At");
	goformat_time_clock(&out, &t, false);
	buf_printf(&out, "\n%-11s %s\n", "Role",
	           json_bool(json_get(v, "admin")) ? "Admin" : "User");
	if (*created_by)
		buf_printf(&out, "%-11s %s\n", "Created By", created_by);
	if (!identity && *policy) {
		/* kms-go's DescribeSelf carries no date for the policy: kes prints Go's zero time.
		 */
		buf_printf(&out, "\n%-11s %s\n%-11s 0001-01-01 00:00:00\n", "Policy", policy,
		           "Created At");
		print_rules(&out, v, "allow", "Allow");
		print_rules(&out, v, "deny", "Deny");
	}
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_free(&out);
	rc = 0;
out:
	json_free(v);
	return rc;
}

static int identity_info(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "identity info", INFO_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 1) {
		rc = cli_usage_error("identity info", "too many arguments");
		goto out;
	}
	struct client_reply reply;
	rc =
	    a.count
	        ? client_get_or_report(&a.client, "/v1/identity/describe/", a.args[0], &reply, NULL)
	        : client_get_or_report(&a.client, "/v1/identity/self/describe", NULL, &reply, NULL);
	if (rc == 0)
		rc = identity_info_print(&reply, a.count ? a.args[0] : NULL, json);
	client_reply_free(&reply);
out:
	cli_args_free(&a);
	return rc;
}

static int identity_ls(int argc, char **argv)
{
	static const struct cli_list_verb ls = {
	    "identity ls", LS_USAGE, "/v1/identity/list/",        "identities",
	    "Identity",    NULL,     "failed to list identities",
	};
	return cli_run_list_verb(argc, argv, &ls);
}

/* `kesc identity` alone: a new API key, bare when not on a terminal (kes identityCmd). */
static int identity_api_key_new(void)
{
	char key[APIKEY_LEN + 1], identity[IDENTITY_HEX_LEN + 1], err[256];
	if (apikey_generate(key, err, sizeof err) < 0)
		return cli_fail("%s", err);
	int rc = 0;
	if (identity_of_api_key(key, identity, err, sizeof err) < 0) {
		rc = cli_fail("failed to generate API key: %s", err);
	} else if (!cli_stdout_is_terminal()) {
		fputs(key, stdout);
	} else {
		printf(
		    "\nYour API key:\n\n   %s\n\n"
		    "This is the only time it is shown. Keep it secret and secure!\n\n"
		    "Your API key's identity:\n\n   %s\n\n"
		    "The identity is not a secret and can be shared securely.\n"
		    "Peers need your identity in order to verify your API key.\n\n"
		    "This identity can be re-computed again via:\n\n"
		    "  $ kesc identity %s\n\n"
		    "KES, MinIO and other KES clients can log in with this API key; kesc cannot\n"
		    "(mbedTLS 2.28 has no Ed25519 in TLS). For kesc use 'kesc identity new'.\n\n",
		    key, identity, key);
	}
	fflush(stdout);
	secure_zero(key, sizeof key);
	return rc;
}

/* `kesc identity <api-key|file>` (kes identityCmd): the identity of an API key or certificate,
 * or the API key of an Ed25519 private key file. */
static int identity_bare(const char *arg)
{
	if (!strncmp(arg, "kes:v1:", 7))
		return identity_of_one(arg, 0, false);
	char key[APIKEY_LEN + 1], err[512];
	switch (apikey_of_file(arg, key, err, sizeof err)) {
	case APIKEY_FILE_CERTIFICATE:
		return identity_of_one(arg, 0, false);
	case APIKEY_FILE_PRIVATE_KEY:
		if (cli_stdout_is_terminal())
			printf("\nYour API key:\n\n   %s\n\nIt corresponds to the private key in: "
			       "%s.\nKeep it secret and secure!\n\n",
			       key, arg);
		else
			fputs(key, stdout);
		fflush(stdout);
		secure_zero(key, sizeof key);
		return 0;
	default:
		return cli_fail("%s", err);
	}
}

int cmd_identity(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	    {"new", identity_new}, {"of", identity_of}, {"info", identity_info},
	    {"ls", identity_ls},   {NULL, NULL},
	};
	for (const struct cli_subcommand *sub = subs; argc >= 2 && sub->name; sub++)
		if (!strcmp(sub->name, argv[1]))
			return sub->run(argc - 1, argv + 1);
	struct cli_args a;
	int rc = cli_parse(argc, argv, NULL, 0, false, "identity", IDENTITY_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 1)
		rc = cli_fail("too many arguments");
	else if (a.count == 1)
		rc = identity_bare(a.args[0]);
	else
		rc = identity_api_key_new();
	cli_args_free(&a);
	return rc;
}
