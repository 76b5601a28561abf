/*
 * cli.h — what every client verb shares: option parsing as KES's pflag command line does it
 * (options and arguments may be mixed, "--" ends options, short options group, a boolean
 * takes "=false", -h/--help prints the usage), the client connection options (-k/--insecure,
 * --ca, -s/--server, kes's -e/--enclave (sent as ?enclave=) and --color (accepted and
 * ignored)), terminal detection, kes's "Error: " lines and the user-visible error texts.
 */
#ifndef KESC_CMD_CLI_H
#define KESC_CMD_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "keystore/json.h"

enum cli_kind {
	CLI_BOOL,   /* target: bool * */
	CLI_STRING, /* target: const char ** (points into argv) */
	CLI_LIST,   /* target: struct cli_list * (repeatable) */
};

struct cli_list {
	const char *items[32];
	size_t count;
};

struct cli_flag {
	const char *name; /* long name without "--" */
	char short_name;  /* 0 if none */
	enum cli_kind kind;
	void *target;
};

/* Connection options, filled from the common flags; NULL/false = from the environment. */
struct client_options {
	bool insecure;       /* -k, --insecure: do not verify the server certificate */
	const char *ca;      /* --ca FILE: trust these CA certificates instead of the system's */
	const char *server;  /* -s, --server HOST[:PORT][,…]: overrides the environment */
	const char *enclave; /* -e, --enclave NAME: sent as ?enclave=NAME (KES ignores it) */
	const char *color;   /* --color auto|never|always: kes's, checked and ignored */
};

struct cli_args {
	struct client_options client;
	char **args; /* positional arguments (point into argv) */
	size_t count;
};

/* The usage lines of the client options, shared by every verb that talks to a server. */
#define CLI_CLIENT_OPTIONS_USAGE                                                                 \
	"    -k, --insecure           Skip TLS certificate validation.\n"                        \
	"        --ca <file>          Trust the CA certificates in <file>.\n"                    \
	"    -s, --server <host:port> Server to use (default: $KES_SERVER or 127.0.0.1:7373).\n" \
	"    -e, --enclave <name>     The admin's view of a tenant (kesc); KES ignores it.\n"    \
	"        --color <when>       auto, never or always: accepted for kes compatibility.\n"

enum cli_parse_result { CLI_OK = 0, CLI_HELP = 1, CLI_USAGE = -1 };

/*
 * Parses argv[1..] (argv[0] is the verb or sub-verb name). flags may be NULL; a verb's own
 * flag wins over a client option with the same letter (status -s is --short). The client
 * options are accepted when with_client is true. On CLI_HELP the usage was printed to stdout;
 * on CLI_USAGE pflag's error ("unknown flag: --x") was printed as kes prints it. out->args is
 * allocated; free it with cli_args_free.
 */
int cli_parse(int argc, char **argv, const struct cli_flag *flags, size_t flag_count,
              bool with_client, const char *command, const char *usage, struct cli_args *out);
void cli_args_free(struct cli_args *a);

/* Sub-commands of a verb group ("kesc key create"). */
struct cli_subcommand {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the sub-command name */
};
/* Runs argv[1] from subs. Without one, the usage goes to stderr and the result is EXIT_USAGE
 * (2), as kes; -h/--help prints it to stdout (0); an unknown one is an error (1). */
int cli_dispatch(int argc, char **argv, const struct cli_subcommand *subs, const char *command,
                 const char *usage);

/* Maps a parse result to the exit code a verb returns (usage error → 1, help → 0). */
int cli_exit_for(int parse_result);

/* Usage error as kes prints it: "Error: <message>. See 'kesc <command> --help'"; returns 1. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Operation error as kes prints it: "Error: <message>" on stderr; returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "Error: <what> \"<name>\": <why>" with the name quoted as Go's %q; returns 1. */
int cli_fail_named(const char *what, const char *name, const char *why);

/* True if standard output is a terminal: verbs then print for people, else for programs. */
bool cli_stdout_is_terminal(void);

/* Prints the names in member (an array) of a JSON list reply, sorted as kes sorts them: a JSON
 * array with --json ("[]" when empty), else header and one name per line (nothing when
 * empty). 0, or 1 (reported) if the body is not a list reply. */
int cli_print_names(const char *body, size_t body_len, const char *member, const char *header,
                    bool json);

/* Prints a JSON reply body as --json output: as the server sent it, with its trailing white
 * space replaced by one newline. */
void cli_print_json_body(const char *body, size_t body_len);

/* Parses a reply body that must be a JSON value of the given type (JSON_OBJECT, JSON_ARRAY).
 * NULL, after printing the bad-response error, when it is not. Free with json_free. */
struct json_value *cli_parse_reply(const char *body, size_t body_len, enum json_type type);

/* A string member of a reply ("" when absent or null, as Go decodes it); NULL, after the
 * bad-response error, when it has another type. */
const char *cli_reply_string(const struct json_value *v, const char *key);

/* A time member of a reply as kms-go decodes it into a time.Time: absent or null is Go's zero
 * time. 0, or -1 after the bad-response error when it is not an RFC 3339 time. */
struct go_time;
int cli_reply_time(const struct json_value *v, const char *key, struct go_time *t);

/* Re-encodes compact JSON text into out as kes's json.Encoder prints it: indented on a
 * terminal when indent is true, and followed by a newline. */
void cli_write_json(const struct buf *compact, bool indent);

/* A `<group> ls [--json] [<pattern>]` verb: GET prefix + pattern (default "*") and print the
 * names in member of the reply (cli_print_names). Returns the exit code. */
struct cli_list_verb {
	const char *command; /* "key ls" */
	const char *usage;
	const char *prefix;          /* "/v1/key/list/" */
	const char *member;          /* "names" */
	const char *header;          /* "Key": what kes prints above the names */
	const char *terminal_header; /* NULL, or kesc's own header on a terminal */
	const char *what;            /* "failed to list keys" */
};
int cli_run_list_verb(int argc, char **argv, const struct cli_list_verb *v);

/* The sum of all samples of metric family name in Prometheus text ("name{…} value" or
 * "name value" lines); 0 if there are none. */
double cli_metric_sum(const char *text, const char *name);

/* The patterns of a policy rule set ({"<pattern>":{}} in KES HEAD, a list in older servers),
 * sorted; *out is allocated (free it; NULL when out of memory) and points into rules. */
size_t cli_rule_names(const struct json_value *rules, const char ***out);

/* qsort comparator for an array of C strings (byte order, as Go compares strings). */
int cli_strcmp_ptr(const void *a, const void *b);

/* The texts users see for client-side failures, from one table. */
enum cli_msg {
	CLI_MSG_API_KEY_UNSUPPORTED,
	CLI_MSG_API_KEY_NOT_A_CREDENTIAL,
	CLI_MSG_CERT_WITHOUT_KEY,
	CLI_MSG_KEY_WITHOUT_CERT,
	CLI_MSG_NO_CLIENT_CERT_HINT,
	CLI_MSG_CONNECT_FAILED,
	CLI_MSG_TLS_FAILED,
	CLI_MSG_SERVER_CERT_UNTRUSTED,
	CLI_MSG_BAD_RESPONSE,
	CLI_MSG_OUT_OF_MEMORY,
	CLI_MSG_KEYSTORE_UNREACHABLE,
};
const char *cli_message(enum cli_msg m);

#endif
