/*
 * cli.h — what every client verb shares: option parsing in the style of KES's pflag command
 * line (options and arguments may be mixed, "--" ends options, -h/--help prints the usage),
 * the client connection options (-k/--insecure, --ca, -s/--server), terminal detection and
 * the user-visible error texts.
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
	bool insecure;      /* -k, --insecure: do not verify the server certificate */
	const char *ca;     /* --ca FILE: trust these CA certificates instead of the system's */
	const char *server; /* -s, --server HOST[:PORT][,…]: overrides the environment */
};

struct cli_args {
	struct client_options client;
	char **args; /* positional arguments (point into argv) */
	size_t count;
};

enum cli_parse_result { CLI_OK = 0, CLI_HELP = 1, CLI_USAGE = -1 };

/*
 * Parses argv[1..] (argv[0] is the verb or sub-verb name). flags may be NULL. The client
 * options are accepted when with_client is true. On CLI_HELP the usage was printed to stdout;
 * on CLI_USAGE an error naming `command` was printed to stderr. out->args is allocated; free
 * it with cli_args_free.
 */
int cli_parse(int argc, char **argv, const struct cli_flag *flags, size_t flag_count,
              bool with_client, const char *command, const char *usage, struct cli_args *out);
void cli_args_free(struct cli_args *a);

/* Sub-commands of a verb group ("kesc key create"). */
struct cli_subcommand {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the sub-command name */
};
/* Runs argv[1] from subs; prints usage (stdout for -h/--help → 0, stderr otherwise → 2) when
 * it is missing, or a usage error when unknown. */
int cli_dispatch(int argc, char **argv, const struct cli_subcommand *subs, const char *command,
                 const char *usage);

/* Maps a parse result to the exit code a verb returns (-1 → 2, 1 → 0). */
int cli_exit_for(int parse_result);

/* Usage error: "kesc: <message>. See 'kesc <command> --help'." and returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Operation error: "kesc: <message>" on stderr; returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True if standard output is a terminal: verbs then print for people, else for programs. */
bool cli_stdout_is_terminal(void);

/* Prints the names in member (an array) of a JSON list reply: a JSON array with --json,
 * else one per line, under header on a terminal. 0, or 1 (reported) if the body is not a
 * list reply. */
int cli_print_names(const char *body, size_t body_len, const char *member, const char *header,
                    bool json);

/* Prints a JSON reply body as --json output: as the server sent it, with its trailing white
 * space replaced by one newline. */
void cli_print_json_body(const char *body, size_t body_len);

/* Parses a reply body that must be a JSON value of the given type (JSON_OBJECT, JSON_ARRAY).
 * NULL, after printing "kesc: <bad response>", when it is not. Free with json_free. */
struct json_value *cli_parse_reply(const char *body, size_t body_len, enum json_type type);

/* Prints one string member of a reply as "<label>  <value>" for people; RFC 3339 times of
 * *_at members as "YYYY-MM-DD hh:mm:ss". Nothing when the member is absent or empty. */
void cli_print_member(const struct json_value *v, const char *key, const char *label);

/* A `<group> ls [--json] [<pattern>]` verb: GET prefix + pattern (default "*") and print the
 * names in member of the reply (cli_print_names). Returns the exit code. */
struct cli_list_verb {
	const char *command; /* "key ls" */
	const char *usage;
	const char *prefix; /* "/v1/key/list/" */
	const char *member; /* "names" */
	const char *header; /* "Key" */
	const char *what;   /* "failed to list keys matching" */
};
int cli_run_list_verb(int argc, char **argv, const struct cli_list_verb *v);

/* The sum of all samples of metric family name in Prometheus text ("name{…} value" or
 * "name value" lines); 0 if there are none. */
double cli_metric_sum(const char *text, const char *name);

/* The texts users see for client-side failures, from one table. */
enum cli_msg {
	CLI_MSG_API_KEY_UNSUPPORTED,
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
