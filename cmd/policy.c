/*
 * policy.c — `kesc policy info|ls|show` (kes.md §1.7, §8): the read-only policy API.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "keystore/json.h"

#define CLIENT_OPTIONS_USAGE                                                  \
	"    -k, --insecure           Skip TLS certificate validation.\n"     \
	"        --ca <file>          Trust the CA certificates in <file>.\n" \
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

/* allow/deny are objects {"<pattern>":{}} in KES HEAD and arrays in older servers. */
static void print_rules(const struct json_value *v, const char *key, const char *label)
{
	const struct json_value *rules = json_get(v, key);
	size_t count = json_count(rules);
	if (count == 0)
		return;
	printf("%s:\n", label);
	for (size_t i = 0; i < count; i++) {
		const char *rule = json_type(rules) == JSON_OBJECT
		                       ? json_key_at(rules, i)
		                       : json_string(json_at(rules, i), NULL);
		if (rule)
			printf("  - %s\n", rule);
	}
}

static int policy_print(const struct client_reply *reply, bool json, bool rules)
{
	if (json) {
		cli_print_json_body(reply->body.data, reply->body.len);
		return 0;
	}
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	if (!v)
		return 1;
	if (rules) {
		print_rules(v, "allow", "Allow");
		print_rules(v, "deny", "Deny");
	} else {
		cli_print_member(v, "name", "Name");
		cli_print_member(v, "created_at", "Date");
		cli_print_member(v, "created_by", "Owner");
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
		rc = cli_usage_error(command,
		                     a.count ? "too many arguments" : "no policy name specified");
	} else {
		struct client_reply reply;
		rc = client_get_or_report(&a.client, prefix, a.args[0], &reply,
		                          "failed to read policy");
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
	static const struct cli_list_verb ls = {
	    "policy ls", LS_USAGE, "/v1/policy/list/",
	    "names",     "Policy", "failed to list policies matching",
	};
	return cli_run_list_verb(argc, argv, &ls);
}

int cmd_policy(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
	    {"info", policy_info},
	    {"ls", policy_ls},
	    {"show", policy_show},
	    {NULL, NULL},
	};
	return cli_dispatch(argc, argv, subs, "policy", POLICY_USAGE);
}
