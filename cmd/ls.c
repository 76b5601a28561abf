/*
 * ls.c — `kesc ls [-k] [--json] [-i|-p] [-s HOST[:PORT]] [PREFIX]` (cmd/kes/ls.go): lists
 * keys, identities (-i) or policies (-p) under the header "Key", "Identity" or "Policy", or
 * as a JSON array. kes's -a/--api-key is accepted for the usage text's sake and refused:
 * kesc cannot log in with an API key.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"

static const char LS_USAGE[] =
    "Usage:\n"
    "    kesc ls [-k] [--json] [-i] [-p] [-s HOST[:PORT]] [PREFIX]\n\n"
    "Options:\n"
    "    -a, --api-key KEY           Not supported: kesc cannot log in with a KES API key.\n"
    "    -s, --server HOST[:PORT]    Use the server HOST[:PORT] instead of $KES_SERVER.\n"
    "        --ca <file>             Trust the CA certificates in <file>.\n"
    "        --json                  Print output in JSON format.\n"
    "    -i, --identity              List identities.\n"
    "    -p, --policy                List policy names.\n"
    "    -k, --insecure              Skip server certificate verification.\n"
    "    -h, --help                  Print command line options.\n";

int cmd_ls(int argc, char **argv)
{
	bool json = false, identities = false, policies = false;
	const char *api_key = NULL;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json},
	                                 {"identity", 'i', CLI_BOOL, &identities},
	                                 {"policy", 'p', CLI_BOOL, &policies},
	                                 {"api-key", 'a', CLI_STRING, &api_key}};
	struct cli_args a;
	int rc =
	    cli_parse(argc, argv, flags, sizeof flags / sizeof flags[0], true, "ls", LS_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 1) {
		rc = cli_fail("too many arguments");
	} else if (identities && policies) {
		rc = cli_fail("'-p / --policy' and '-i / --identity' must not be used at the same "
		              "time");
	} else if (api_key && *api_key) {
		/* The key itself is a secret: it is not repeated. */
		rc = cli_fail("%s", cli_message(CLI_MSG_API_KEY_UNSUPPORTED));
	} else {
		const char *prefix = identities ? "/v1/identity/list/"
		                     : policies ? "/v1/policy/list/"
		                                : "/v1/key/list/";
		struct client_reply reply;
		rc = client_get_or_report(&a.client, prefix, a.count ? a.args[0] : "*", &reply,
		                          NULL);
		if (rc == 0)
			rc = cli_print_names(reply.body.data, reply.body.len,
			                     identities ? "identities" : "names",
			                     identities ? "Identity"
			                     : policies ? "Policy"
			                                : "Key",
			                     json);
		client_reply_free(&reply);
	}
	cli_args_free(&a);
	return rc;
}
