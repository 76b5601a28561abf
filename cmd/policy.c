/*
 * policy.c — `kesc policy info|ls|show` (kes.md §1.7, §8): the read-only policy API, printed
 * as kes prints it (cmd/kes/policy.go): `show` gives the policy as JSON when standard output
 * is not a terminal, `info` a "Name / Date / Created by" block in local time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "keystore/json.h"

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
    "Usage:\n    kesc policy info [options] <name>\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the policy in JSON format.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc policy info my-policy\n";
static const char LS_USAGE[] =
    "Usage:\n    kesc policy ls [options] [<pattern>]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print policies in JSON format.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc policy ls\n    $ kesc policy ls 'my-*'\n";
static const char SHOW_USAGE[] =
    "Usage:\n    kesc policy show [options] <name>\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --json               Print the policy in JSON format.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "When standard output is not a terminal the policy is printed as JSON.\n\n"
    "Examples:\n    $ kesc policy show my-policy\n";

/* kms-go's PolicyInfo: {"name","created_at","created_by" unless empty}; or kes's lines, the
 * date in the local time zone. */
static int policy_info_print(const struct client_reply *reply, const char *name, bool json)
{
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	if (!v)
		return 1;
	struct go_time t;
	const char *created_by = cli_reply_string(v, "created_by");
	int rc = 1;
	if (!created_by || cli_reply_time(v, "created_at", &t) < 0)
		goto out;
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	if (json) {
		struct json_writer w;
		json_writer_init(&w, &out);
		json_object_begin(&w);
		json_key(&w, "name");
		json_write_string(&w, name);
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
		json_object_end(&w);
		cli_write_json(&out, cli_stdout_is_terminal());
	} else {
		buf_printf(&out, "%-11s %s\n", "Name", name);
		if (!goformat_time_is_zero(&t)) {
			buf_printf(&out, "%-11s ", "Date");
			goformat_time_clock(&out, &t, true);
			buf_append_char(&out, '\n');
		}
		if (*created_by)
			buf_printf(&out, "%-11s %s\n", "Created by", created_by);
		fwrite(out.data ? out.data : "", 1, out.len, stdout);
	}
	buf_free(&out);
	rc = 0;
out:
	json_free(v);
	return rc;
}

static void write_rule_set(struct json_writer *w, const char *key, const char **rules, size_t n)
{
	if (n == 0) /* omitempty */
		return;
	json_key(w, key);
	json_object_begin(w);
	for (size_t i = 0; i < n; i++) {
		json_key(w, rules[i]);
		json_object_begin(w);
		json_object_end(w);
	}
	json_object_end(w);
}

/* The rules on a terminal, as kes prints them (sorted here; kes's order is random). */
static void print_rule_text(struct buf *out, const char *label, const char **rules, size_t n)
{
	buf_printf(out, "%s\n", label);
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "  · %s\n", rules[i]);
}

/* kes's showPolicyCmd: JSON {"allow","deny" (each unless empty),"created_at","created_by"
 * (unless empty)} when not on a terminal or with --json (indented on a terminal); else the
 * rules and who created the policy when. */
static int policy_show_print(const struct client_reply *reply, bool json)
{
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	if (!v)
		return 1;
	const char **allow = NULL, **deny = NULL;
	size_t allow_n = cli_rule_names(json_get(v, "allow"), &allow);
	size_t deny_n = cli_rule_names(json_get(v, "deny"), &deny);
	struct go_time t;
	const char *created_by = cli_reply_string(v, "created_by");
	int rc = 1;
	if (!allow || !deny)
		rc = cli_fail("%s", cli_message(CLI_MSG_OUT_OF_MEMORY));
	if (!allow || !deny || !created_by || cli_reply_time(v, "created_at", &t) < 0)
		goto out;
	struct buf out, when;
	buf_init(&out, BUF_DEFAULT_MAX);
	buf_init(&when, 64);
	bool terminal = cli_stdout_is_terminal();
	if (json || !terminal) {
		struct json_writer w;
		json_writer_init(&w, &out);
		json_object_begin(&w);
		write_rule_set(&w, "allow", allow, allow_n);
		write_rule_set(&w, "deny", deny, deny_n);
		goformat_time_json(&when, &t);
		json_key(&w, "created_at");
		json_write_string(&w, when.data ? when.data : "");
		if (*created_by) {
			json_key(&w, "created_by");
			json_write_string(&w, created_by);
		}
		json_object_end(&w);
		cli_write_json(&out, terminal);
	} else {
		if (allow_n)
			print_rule_text(&out, "Allow:", allow, allow_n);
		if (deny_n) {
			if (allow_n)
				buf_append_char(&out, '\n');
			print_rule_text(&out, "Deny:", deny, deny_n);
		}
		buf_append_char(&out, '\n');
		if (!goformat_time_is_zero(&t)) {
			buf_append_str(&out, "\nCreated at: ");
			goformat_time_clock(&out, &t, true);
			buf_append_char(&out, '\n');
		}
		buf_printf(&out, "Created by: %s\n", *created_by ? created_by : "<unknown>");
		fwrite(out.data ? out.data : "", 1, out.len, stdout);
	}
	buf_free(&when);
	buf_free(&out);
	rc = 0;
out:
	free(allow);
	free(deny);
	json_free(v);
	return rc;
}

static int policy_one(int argc, char **argv, const char *command, const char *usage,
                      const char *prefix, bool show)
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
		goto out;
	}
	struct client_reply reply;
	char what[256];
	snprintf(what, sizeof what, "failed to show policy '%s'", a.args[0]);
	rc = client_get_or_report(&a.client, prefix, a.args[0], &reply, show ? what : NULL);
	if (rc == 0)
		rc = show ? policy_show_print(&reply, json)
		          : policy_info_print(&reply, a.args[0], json);
	client_reply_free(&reply);
out:
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
	/* kes heads the list "Key" (a slip in policy.go that scripts now expect); on a terminal
	 * kesc says what the list is. */
	static const struct cli_list_verb ls = {
	    "policy ls", LS_USAGE, "/v1/policy/list/",        "names",
	    "Key",       "Policy", "failed to list policies",
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
