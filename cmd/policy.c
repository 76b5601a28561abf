/*
 * policy.c — `kesc policy info|ls|show` (kes.md §1.7, §8): the read-only policy API.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "keystore/json.h"

#define CLIENT_OPTIONS_USAGE                                                                   \
	"    -k, --insecure           Skip TLS certificate validation.\n"                        \
	"        --ca <file>          Trust the CA certificates in <file>.\n"                    \
	"    -s, --server <host:port> Server to use (default: $KES_SERVER or 127.0.0.1:7373).\n"

static const char POLICY_USAGE[] =
	"Usage:\n"
	"    kesc policy <command>\n\n"
	"Commands:\n"
	"    info                     Get information about a policy.\n"
	"    ls                       List policies.\n"
	"    show                     Print a policy's allow and deny rules.\n\n"
	"Options:\n"
	"    -h, --help               Print command line options.\n";

static const char INFO_USAGE[] =
	"Usage:\n    kesc policy info [options] <name>\n\nOptions:\n" CLIENT_OPTIONS_USAGE
	"        --json               Print the policy in JSON format.\n\n"
	"    -h, --help               Print command line options.\n\n"
	"Examples:\n    $ kesc policy info my-policy\n";
static const char LS_USAGE[] =
	"Usage:\n    kesc policy ls [options] [<pattern>]\n\nOptions:\n" CLIENT_OPTIONS_USAGE
	"        --json               Print policies in JSON format.\n\n"
	"    -h, --help               Print command line options.\n\n"
	"Examples:\n    $ kesc policy ls\n    $ kesc policy ls 'my-*'\n";
static const char SHOW_USAGE[] =
	"Usage:\n    kesc policy show [options] <name>\n\nOptions:\n" CLIENT_OPTIONS_USAGE
	"        --json               Print the policy in JSON format.\n\n"
	"    -h, --help               Print command line options.\n\n"
	"Examples:\n    $ kesc policy show my-policy\n";

/* GET prefix+name (name may be NULL for "*"), reporting failures as "<what>: <message>". */
static int policy_get(const struct cli_args *a, const char *prefix, const char *name,
                      struct client_reply *reply, const char *what)
{
	memset(reply, 0, sizeof *reply);
	struct client *c = client_open_or_report(&a->client);
	if (!c)
		return 1;
	struct buf path;
	buf_init(&path, 4096);
	client_path(&path, prefix, name);
	int rc = 0;
	if (buf_failed(&path) || client_call(c, "GET", path.data, NULL, 0, reply) < 0)
		rc = cli_fail("%s '%s': %s", what, name, reply->message);
	buf_free(&path);
	client_close(c);
	return rc;
}

static void print_json_body(const struct client_reply *reply)
{
	size_t n = reply->body.len;
	while (n > 0 && reply->body.data[n - 1] == '\n')
		n--;
	printf("%.*s\n", (int)n, n ? reply->body.data : "");
}

static void print_string(const struct json_value *v, const char *key, const char *label)
{
	size_t n = 0;
	const char *s = json_string(json_get(v, key), &n);
	if (!s || n == 0)
		return;
	if (n >= 19 && s[10] == 'T')
		printf("%-11s %.10s %.8s\n", label, s, s + 11);
	else
		printf("%-11s %.*s\n", label, (int)n, s);
}

/* allow/deny are objects {"<pattern>":{}} in KES HEAD and arrays in older servers. */
static void print_rules(const struct json_value *v, const char *key, const char *label)
{
	const struct json_value *rules = json_get(v, key);
	size_t count = json_count(rules);
	if (count == 0)
		return;
	printf("%s:\n", label);
	for (size_t i = 0; i < count; i++) {
		const char *rule = json_type(rules) == JSON_OBJECT ? json_key_at(rules, i)
		                                                    : json_string(json_at(rules, i), NULL);
		if (rule)
			printf("  - %s\n", rule);
	}
}

static int policy_print(const struct client_reply *reply, bool json, bool rules)
{
	if (json) {
		print_json_body(reply);
		return 0;
	}
	char err[64];
	struct json_value *v = json_parse(reply->body.data, reply->body.len, err, sizeof err);
	if (!v || json_type(v) != JSON_OBJECT) {
		json_free(v);
		return cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
	}
	if (rules) {
		print_rules(v, "allow", "Allow");
		print_rules(v, "deny", "Deny");
	} else {
		print_string(v, "name", "Name");
		print_string(v, "created_at", "Date");
		print_string(v, "created_by", "Owner");
	}
	json_free(v);
	return 0;
}

static int policy_one(int argc, char **argv, const char *command, const char *usage,
                      const char *prefix, bool rules)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, command, usage, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count != 1) {
		rc = cli_usage_error(command, a.count ? "too many arguments" : "no policy name specified");
	} else {
		struct client_reply reply;
		rc = policy_get(&a, prefix, a.args[0], &reply, "failed to read policy");
		if (rc == 0)
			rc = policy_print(&reply, json, rules);
		client_reply_free(&reply);
	}
	cli_args_free(&a);
	return rc;
}

static int policy_info(int argc, char **argv)
{
	return policy_one(argc, argv, "policy info", INFO_USAGE, "/v1/policy/describe/", false);
}

static int policy_show(int argc, char **argv)
{
	return policy_one(argc, argv, "policy show", SHOW_USAGE, "/v1/policy/read/", true);
}

static int policy_ls(int argc, char **argv)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "policy ls", LS_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 1) {
		rc = cli_usage_error("policy ls", "too many arguments");
	} else {
		struct client_reply reply;
		rc = policy_get(&a, "/v1/policy/list/", a.count ? a.args[0] : "*", &reply,
		                "failed to list policies matching");
		if (rc == 0)
			rc = cli_print_names(reply.body.data, reply.body.len, "names", "Policy", json);
		client_reply_free(&reply);
	}
	cli_args_free(&a);
	return rc;
}

int cmd_policy(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{"info", policy_info}, {"ls", policy_ls}, {"show", policy_show}, {NULL, NULL},
	};
	return cli_dispatch(argc, argv, subs, "policy", POLICY_USAGE);
}
