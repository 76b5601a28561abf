/*
 * cli.c — option parsing and messages shared by the client verbs (cli.h).
 */
#include "cmd/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "keystore/bytes.h"
#include "keystore/json.h"

static const char *const MESSAGES[] = {
    [CLI_MSG_API_KEY_UNSUPPORTED] =
        ("API keys (kes:v1:…) are not supported by kesc; use a client certificate "
         "(KES_CLIENT_CERT and KES_CLIENT_KEY, e.g. from 'kesc identity new')"),
    [CLI_MSG_CERT_WITHOUT_KEY] =
        "a client certificate is set but no private key (set KES_CLIENT_KEY)",
    [CLI_MSG_KEY_WITHOUT_CERT] =
        "a client private key is set but no certificate (set KES_CLIENT_CERT)",
    [CLI_MSG_NO_CLIENT_CERT_HINT] =
        "no client certificate configured (set KES_CLIENT_CERT and KES_CLIENT_KEY)",
    [CLI_MSG_CONNECT_FAILED] = "cannot connect to",
    [CLI_MSG_TLS_FAILED] = "TLS handshake with the server failed",
    [CLI_MSG_SERVER_CERT_UNTRUSTED] =
        "the server certificate is not trusted (use --ca FILE, or -k to skip verification)",
    [CLI_MSG_BAD_RESPONSE] = "the server sent a response kesc does not understand",
    [CLI_MSG_OUT_OF_MEMORY] = "out of memory",
    [CLI_MSG_KEYSTORE_UNREACHABLE] =
        "the server answers, but its keystore is unreachable (the server's error log says why)",
};

const char *cli_message(enum cli_msg m)
{
	if ((size_t)m >= sizeof MESSAGES / sizeof MESSAGES[0] || !MESSAGES[m])
		return "unknown error";
	return MESSAGES[m];
}

bool cli_stdout_is_terminal(void)
{
	return isatty(STDOUT_FILENO) == 1;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kesc: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ". See 'kesc %s --help'.\n", command);
	return EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kesc: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_exit_for(int parse_result)
{
	return parse_result == CLI_HELP ? 0 : EXIT_USAGE;
}

/* The options every client verb takes besides its own. */
static int client_flag(struct cli_args *out, const char *name, char short_name,
                       const char **value_needed)
{
	*value_needed = NULL;
	if ((name && !strcmp(name, "insecure")) || short_name == 'k') {
		out->client.insecure = true;
		return 1;
	}
	if ((name && !strcmp(name, "ca")))
		return *value_needed = "ca", 2;
	if ((name && !strcmp(name, "server")) || short_name == 's')
		return *value_needed = "server", 2;
	return 0;
}

static const struct cli_flag *find_flag(const struct cli_flag *flags, size_t n, const char *name,
                                        char short_name)
{
	for (size_t i = 0; i < n; i++) {
		if (name && !strcmp(flags[i].name, name))
			return &flags[i];
		if (!name && short_name && flags[i].short_name == short_name)
			return &flags[i];
	}
	return NULL;
}

static int set_flag(const struct cli_flag *f, const char *value)
{
	switch (f->kind) {
	case CLI_BOOL:
		*(bool *)f->target = true;
		return 0;
	case CLI_STRING:
		*(const char **)f->target = value;
		return 0;
	case CLI_LIST: {
		struct cli_list *l = f->target;
		if (l->count >= sizeof l->items / sizeof l->items[0])
			return -1;
		l->items[l->count++] = value;
		return 0;
	}
	}
	return -1;
}

/* One option at argv[*i]: "--name", "--name=value", "-x", "-x value", "-xvalue". */
static int parse_option(int argc, char **argv, int *i, const struct cli_flag *flags,
                        size_t flag_count, bool with_client, const char *command, const char *usage,
                        struct cli_args *out)
{
	/* Errors name the option as shown, never an inline value: a mistyped "--secret=…" or
	 * "-p…" must not put the value on the terminal or into a CI log. */
	const char *arg = argv[*i], *name = NULL, *inline_value = NULL;
	char short_name = 0, namebuf[64], shown[72];
	if (arg[1] == '-') {
		const char *eq = strchr(arg + 2, '=');
		size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		if (len >= sizeof namebuf)
			return cli_usage_error(command, "unknown option '--%.16s…'", arg + 2),
			       CLI_USAGE;
		memcpy(namebuf, arg + 2, len);
		namebuf[len] = '\0';
		name = namebuf;
		inline_value = eq ? eq + 1 : NULL;
		snprintf(shown, sizeof shown, "--%s", name);
	} else {
		short_name = arg[1];
		inline_value = arg[2] ? arg + 2 : NULL;
		snprintf(shown, sizeof shown, "-%c", short_name);
	}
	arg = shown;
	if ((name && !strcmp(name, "help")) || short_name == 'h') {
		fputs(usage, stdout);
		return CLI_HELP;
	}
	const struct cli_flag *f = find_flag(flags, flag_count, name, short_name);
	const char *client_value = NULL;
	int client_kind =
	    (!f && with_client) ? client_flag(out, name, short_name, &client_value) : 0;
	if (!f && !client_kind)
		return cli_usage_error(command, "unknown option '%s'", arg), CLI_USAGE;
	bool wants_value = f ? f->kind != CLI_BOOL : client_kind == 2;
	if (!wants_value) {
		if (inline_value)
			return cli_usage_error(command, "option '%s' takes no value", arg),
			       CLI_USAGE;
		return f ? (set_flag(f, NULL), CLI_OK) : CLI_OK;
	}
	const char *value = inline_value;
	if (!value) {
		if (*i + 1 >= argc)
			return cli_usage_error(command, "option '%s' needs a value", arg),
			       CLI_USAGE;
		value = argv[++*i];
	}
	if (f) {
		if (set_flag(f, value) < 0)
			return cli_usage_error(command, "option '%s' given too often", arg),
			       CLI_USAGE;
	} else if (!strcmp(client_value, "ca")) {
		out->client.ca = value;
	} else {
		out->client.server = value;
	}
	return CLI_OK;
}

int cli_parse(int argc, char **argv, const struct cli_flag *flags, size_t flag_count,
              bool with_client, const char *command, const char *usage, struct cli_args *out)
{
	memset(out, 0, sizeof *out);
	out->args = calloc((size_t)(argc > 0 ? argc : 1), sizeof *out->args);
	if (!out->args) {
		cli_fail("%s", cli_message(CLI_MSG_OUT_OF_MEMORY));
		return CLI_USAGE;
	}
	bool options_done = false;
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!options_done && !strcmp(arg, "--")) {
			options_done = true;
			continue;
		}
		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			out->args[out->count++] = argv[i];
			continue;
		}
		int rc = parse_option(argc, argv, &i, flags, flag_count, with_client, command,
		                      usage, out);
		if (rc != CLI_OK) {
			cli_args_free(out);
			return rc;
		}
	}
	return CLI_OK;
}

void cli_args_free(struct cli_args *a)
{
	free(a->args);
	a->args = NULL;
	a->count = 0;
}

int cli_dispatch(int argc, char **argv, const struct cli_subcommand *subs, const char *command,
                 const char *usage)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	for (const struct cli_subcommand *s = subs; s->name; s++)
		if (!strcmp(s->name, argv[1]))
			return s->run(argc - 1, argv + 1);
	return cli_usage_error(command, "'%s' is not a %s command", argv[1], command);
}

void cli_print_json_body(const char *body, size_t body_len)
{
	size_t n = body ? body_len : 0;
	while (n > 0 && (body[n - 1] == '\n' || body[n - 1] == '\r' || body[n - 1] == ' ' ||
	                 body[n - 1] == '\t'))
		n--;
	printf("%.*s\n", (int)n, n ? body : "");
}

struct json_value *cli_parse_reply(const char *body, size_t body_len, enum json_type type)
{
	char err[64];
	struct json_value *v = json_parse(body ? body : "", body_len, err, sizeof err);
	if (!v || json_type(v) != type) {
		json_free(v);
		cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
		return NULL;
	}
	return v;
}

void cli_print_member(const struct json_value *v, const char *key, const char *label)
{
	size_t n = 0;
	const char *s = json_string(json_get(v, key), &n);
	size_t klen = strlen(key);
	if (!s || n == 0)
		return;
	if (n >= 19 && s[10] == 'T' && klen > 3 && strcmp(key + klen - 3, "_at") == 0)
		printf("%-11s %.10s %.8s\n", label, s, s + 11);
	else
		printf("%-11s %.*s\n", label, (int)n, s);
}

int cli_run_list_verb(int argc, char **argv, const struct cli_list_verb *v)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, v->command, v->usage, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 1) {
		rc = cli_usage_error(v->command, "too many arguments");
	} else {
		struct client_reply reply;
		rc = client_get_or_report(&a.client, v->prefix, a.count ? a.args[0] : "*", &reply,
		                          v->what);
		if (rc == 0)
			rc = cli_print_names(reply.body.data, reply.body.len, v->member, v->header,
			                     json);
		client_reply_free(&reply);
	}
	cli_args_free(&a);
	return rc;
}

/* Prints the names of a list reply: a JSON array with --json, else one per line (with a
 * "Key" header on a terminal, as kes does). */
int cli_print_names(const char *body, size_t body_len, const char *member, const char *header,
                    bool json)
{
	char err[64];
	struct json_value *v = json_parse(body ? body : "", body_len, err, sizeof err);
	const struct json_value *names = json_get(v, member);
	if (!v || json_type(v) != JSON_OBJECT ||
	    (names && json_type(names) != JSON_ARRAY && json_type(names) != JSON_NULL)) {
		json_free(v);
		return cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
	}
	size_t count = names && json_type(names) == JSON_ARRAY ? json_count(names) : 0;
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	if (json) {
		struct json_writer w;
		json_writer_init(&w, &out);
		json_array_begin(&w);
		for (size_t i = 0; i < count; i++) {
			size_t n = 0;
			const char *s = json_string(json_at(names, i), &n);
			json_write_string_n(&w, s ? s : "", s ? n : 0);
		}
		json_array_end(&w);
		buf_append_char(&out, '\n');
	} else {
		if (count > 0 && cli_stdout_is_terminal())
			buf_printf(&out, "%s\n", header);
		for (size_t i = 0; i < count; i++) {
			size_t n = 0;
			const char *s = json_string(json_at(names, i), &n);
			if (s)
				buf_printf(&out, "%.*s\n", (int)n, s);
		}
	}
	size_t more = 0;
	const char *cont = json_string(json_get(v, "continue_at"), &more);
	if (cont && more > 0)
		fprintf(stderr, "kesc: the server listed only the first %zu names\n", count);
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_free(&out);
	json_free(v);
	return 0;
}

/* Sums the samples of one metric family in Prometheus text ("name{…} value" lines). */
double cli_metric_sum(const char *text, const char *name)
{
	double sum = 0;
	size_t len = strlen(name);
	for (const char *line = text; line && *line;) {
		const char *next = strchr(line, '\n');
		if (!strncmp(line, name, len) && (line[len] == ' ' || line[len] == '{')) {
			const char *value = line + len;
			if (*value == '{')
				value = strchr(value, '}');
			if (value && (!next || value < next))
				sum += strtod(value + 1, NULL);
		}
		line = next ? next + 1 : NULL;
	}
	return sum;
}
