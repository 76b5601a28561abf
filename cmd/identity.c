/*
 * identity.c — `kesc identity new|of|info|ls` (kes.md §2, §8).
 *
 * `new` writes an ECDSA P-256 private key and a self-signed certificate that works as a
 * client certificate and, with its SANs, as a server certificate. KES makes Ed25519 keys and
 * API keys here; mbedTLS 2.28 cannot, so kesc does not (the man page says so).
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "keystore/json.h"
#include "policy/identity.h"
#include "server/certgen.h"
#include "server/config.h"

#define IDENTITY_DEFAULT_KEY  "private.key"
#define IDENTITY_DEFAULT_CERT "public.crt"

static const char IDENTITY_USAGE[] =
    "Usage:\n"
    "    kesc identity <command>\n"
    "    kesc identity <cert-file>\n\n"
    "Commands:\n"
    "    new                      Create a new identity (private key and certificate).\n"
    "    of                       Print the identity of a certificate.\n"
    "    info                     Get information about an identity.\n"
    "    ls                       List identities.\n\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n";

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
    "The key is ECDSA P-256 (kesc does not create Ed25519 keys or KES API keys). The\n"
    "certificate allows client and server authentication. Without --ip and --dns it is\n"
    "valid for localhost, 127.0.0.1 and ::1; a subject that looks like a host name is\n"
    "added as a DNS name.\n\n"
    "Examples:\n"
    "    $ kesc identity new\n"
    "    $ kesc identity new --key client.key --cert client.crt my-app\n"
    "    $ kesc identity new --ip 10.1.2.3 --dns kes.example.net kes.example.net\n";

static const char OF_USAGE[] =
    "Usage:\n"
    "    kesc identity of <cert-file|api-key>...\n\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n\n"
    "Prints the identity (hex SHA-256 of the public key) of each certificate or KES\n"
    "API key (kes:v1:...).\n\n"
    "Examples:\n"
    "    $ kesc identity of client.crt\n";

#define CLIENT_OPTIONS_USAGE                                                  \
	"    -k, --insecure           Skip TLS certificate validation.\n"     \
	"        --ca <file>          Trust the CA certificates in <file>.\n" \
	"    -s, --server <host:port> Server to use (default: $KES_SERVER or 127.0.0.1:7373).\n"

static const char INFO_USAGE[] =
    "Usage:\n"
    "    kesc identity info [options] [<identity>]\n\n"
    "Options:\n" CLIENT_OPTIONS_USAGE
    "        --json               Print the identity in JSON format.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Without an identity, describes the identity of the client certificate in use.\n\n"
    "Examples:\n"
    "    $ kesc identity info\n"
    "    $ kesc identity info 3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22\n";

static const char LS_USAGE[] = "Usage:\n"
                               "    kesc identity ls [options] [<pattern>]\n\n"
                               "Options:\n" CLIENT_OPTIONS_USAGE
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
		               : cli_fail("failed to compute the identity of '%s': %s", arg, err);
	if (label)
		printf("%s  %s\n", identity, api_key ? shown : arg);
	else if (cli_stdout_is_terminal())
		printf("%s\n", identity);
	else
		fputs(identity, stdout);
	return 0;
}

static int identity_of(int argc, char **argv)
{
	struct cli_args a;
	int rc = cli_parse(argc, argv, NULL, 0, false, "identity of", OF_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count == 0)
		rc = cli_usage_error("identity of", "no certificate specified");
	for (size_t i = 0; i < a.count; i++)
		if (identity_of_one(a.args[i], i, a.count > 1) != 0)
			rc = 1;
	cli_args_free(&a);
	return rc;
}

static int identity_info_print(const struct client_reply *reply, const char *identity, bool json)
{
	if (json) {
		cli_print_json_body(reply->body.data, reply->body.len);
		return 0;
	}
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	if (!v)
		return 1;
	if (identity)
		printf("%-11s %s\n", "Identity", identity);
	else
		cli_print_member(v, "identity", "Identity");
	const struct json_value *policy = json_get(v, "policy");
	if (json_type(policy) == JSON_OBJECT)
		cli_print_member(policy, "name", "Policy");
	else
		cli_print_member(v, "policy", "Policy");
	if (json_bool(json_get(v, "admin")))
		printf("%-11s %s\n", "Admin", "yes");
	cli_print_member(v, "created_at", "Date");
	cli_print_member(v, "created_by", "Owner");
	json_free(v);
	return 0;
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
	rc = a.count ? client_get_or_report(&a.client, "/v1/identity/describe/", a.args[0], &reply,
	                                    "failed to describe identity")
	             : client_get_or_report(&a.client, "/v1/identity/self/describe", NULL, &reply,
	                                    "failed to describe the identity in use");
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
	    "identity ls", LS_USAGE,   "/v1/identity/list/",
	    "identities",  "Identity", "failed to list identities matching",
	};
	return cli_run_list_verb(argc, argv, &ls);
}

/* `kesc identity <file>` without a sub-command, as `kes identity <file>`. */
static int identity_bare(int argc, char **argv)
{
	if (argc == 2 && argv[1][0] != '-')
		return identity_of_one(argv[1], 0, false);
	return -1;
}

int cmd_identity(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	    {"new", identity_new}, {"of", identity_of}, {"info", identity_info},
	    {"ls", identity_ls},   {NULL, NULL},
	};
	if (argc == 2) {
		bool is_sub = false;
		for (const struct cli_subcommand *s = subs; s->name; s++)
			is_sub |= !strcmp(s->name, argv[1]);
		int rc = is_sub ? -1 : identity_bare(argc, argv);
		if (rc >= 0)
			return rc;
	}
	if (argc < 2) {
		fputs(IDENTITY_USAGE, stderr);
		fprintf(stderr, "\nkesc: %s\n", cli_message(CLI_MSG_API_KEY_UNSUPPORTED));
		return EXIT_USAGE;
	}
	return cli_dispatch(argc, argv, subs, "identity", IDENTITY_USAGE);
}
