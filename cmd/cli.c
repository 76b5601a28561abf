/*
 * cli.c — option parsing and messages shared by the client verbs (cli.h).
 */
#include "cmd/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "keystore/bytes.h"
#include "keystore/json.h"

static const char *const MESSAGES[] = {
    [CLI_MSG_API_KEY_UNSUPPORTED] =
        ("API keys (kes:v1:…) are not supported by kesc; use a client certificate "
         "(KES_CLIENT_CERT and KES_CLIENT_KEY, e.g. from 'kesc identity new')"),
    [CLI_MSG_API_KEY_NOT_A_CREDENTIAL] =
        ("kesc cannot log in with an API key (mbedTLS 2.28 has no Ed25519 in TLS); KES, "
         "MinIO and other KES clients can, and servers accept its identity"),
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
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ". See 'kesc %s%s--help'\n", command, *command ? " " : "");
	return 1;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int cli_fail_named(const char *what, const char *name, const char *why)
{
	struct buf quoted;
	buf_init(&quoted, 16384);
	goformat_quote(&quoted, name);
	int rc = cli_fail("%s %s: %s", what, buf_failed(&quoted) ? "\"…\"" : quoted.data, why);
	buf_free(&quoted);
	return rc;
}

int cli_exit_for(int parse_result)
{
	return parse_result == CLI_HELP ? 0 : 1;
}

/* pflag's strconv.ParseBool. */
static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (!strcmp(v, yes[i]))
			return *out = true, 0;
		if (!strcmp(v, no[i]))
			return *out = false, 0;
	}
	return -1;
}

/* The options every client verb takes besides its own: kind 1 = boolean, 2 = with value. */
enum client_flag {
	CLIENT_NONE = 0,
	CLIENT_INSECURE,
	CLIENT_CA,
	CLIENT_SERVER,
	CLIENT_ENCLAVE,
	CLIENT_COLOR
};

static enum client_flag client_flag(const char *name, char short_name)
{
	static const struct {
		const char *name;
		char short_name;
		enum client_flag flag;
	} table[] = {{"insecure", 'k', CLIENT_INSECURE},
	             {"ca", 0, CLIENT_CA},
	             {"server", 's', CLIENT_SERVER},
	             {"enclave", 'e', CLIENT_ENCLAVE},
	             {"color", 0, CLIENT_COLOR}};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if ((name && !strcmp(name, table[i].name)) ||
		    (!name && short_name && short_name == table[i].short_name))
			return table[i].flag;
	return CLIENT_NONE;
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

/* kes's --color values (color-option.go), any case. */
static bool valid_color(const char *v)
{
	return !strcasecmp(v, "auto") || !strcasecmp(v, "never") || !strcasecmp(v, "always") || !*v;
}

/* Stores a value for a verb flag or a client option. The shown name is pflag's ("--color"). */
static int set_value(const struct cli_flag *f, enum client_flag cf, const char *value,
                     const char *shown, const char *command, struct cli_args *out)
{
	if (f) {
		if (f->kind == CLI_STRING) {
			*(const char **)f->target = value;
			return CLI_OK;
		}
		struct cli_list *l = f->target;
		if (l->count >= sizeof l->items / sizeof l->items[0])
			return cli_usage_error(command, "flag given too often: %s", shown),
			       CLI_USAGE;
		l->items[l->count++] = value;
		return CLI_OK;
	}
	switch (cf) {
	case CLIENT_CA:
		out->client.ca = value;
		break;
	case CLIENT_SERVER:
		out->client.server = value;
		break;
	case CLIENT_ENCLAVE:
		out->client.enclave = value;
		break;
	case CLIENT_COLOR:
		/* Not a secret, and pflag repeats it: so does kesc. */
		if (!valid_color(value))
			return cli_usage_error(command,
			                       "invalid argument \"%s\" for \"%s\" flag: invalid "
			                       "color option",
			                       value, shown),
			       CLI_USAGE;
		out->client.color = value;
		break;
	default:
		break;
	}
	return CLI_OK;
}

static int set_bool(const struct cli_flag *f, const char *inline_value, const char *shown,
                    const char *command, struct cli_args *out)
{
	bool v = true;
	/* The value is not repeated: a mistyped --flag=… may carry a secret. */
	if (inline_value && parse_bool(inline_value, &v) < 0)
		return cli_usage_error(command, "invalid argument for \"%s\" flag: not a boolean",
		                       shown),
		       CLI_USAGE;
	if (f)
		*(bool *)f->target = v;
	else
		out->client.insecure = v;
	return CLI_OK;
}

/* "--name", "--name=value", "--name value". */
static int parse_long(int argc, char **argv, int *i, const struct cli_flag *flags,
                      size_t flag_count, bool with_client, const char *command, const char *usage,
                      struct cli_args *out)
{
	/* Errors name the option, never an inline value a mistyped "--secret=…" might carry. */
	const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	char name[64], shown[72];
	if (len >= sizeof name)
		return cli_usage_error(command, "unknown flag: --%.16s…", arg), CLI_USAGE;
	memcpy(name, arg, len);
	name[len] = '\0';
	snprintf(shown, sizeof shown, "--%s", name);
	if (!strcmp(name, "help")) {
		fputs(usage, stdout);
		return CLI_HELP;
	}
	const struct cli_flag *f = find_flag(flags, flag_count, name, 0);
	enum client_flag cf = !f && with_client ? client_flag(name, 0) : CLIENT_NONE;
	if (!f && cf == CLIENT_NONE)
		return cli_usage_error(command, "unknown flag: %s", shown), CLI_USAGE;
	if ((f && f->kind == CLI_BOOL) || cf == CLIENT_INSECURE)
		return set_bool(f, eq ? eq + 1 : NULL, shown, command, out);
	const char *value = eq ? eq + 1 : NULL;
	if (!value) {
		if (*i + 1 >= argc)
			return cli_usage_error(command, "flag needs an argument: %s", shown),
			       CLI_USAGE;
		value = argv[++*i];
	}
	return set_value(f, cf, value, shown, command, out);
}

/* "-x", "-xvalue", "-x=value", "-x value", and groups of boolean ones ("-kf"). */
static int parse_short(int argc, char **argv, int *i, const struct cli_flag *flags,
                       size_t flag_count, bool with_client, const char *command, const char *usage,
                       struct cli_args *out)
{
	for (const char *p = argv[*i] + 1; *p; p++) {
		char c = *p, shown[8];
		snprintf(shown, sizeof shown, "-%c", c);
		if (c == 'h') {
			fputs(usage, stdout);
			return CLI_HELP;
		}
		const struct cli_flag *f = find_flag(flags, flag_count, NULL, c);
		enum client_flag cf = !f && with_client ? client_flag(NULL, c) : CLIENT_NONE;
		if (!f && cf == CLIENT_NONE)
			return cli_usage_error(command, "unknown shorthand flag: '%c' in -%c", c,
			                       c),
			       CLI_USAGE;
		if ((f && f->kind == CLI_BOOL) || cf == CLIENT_INSECURE) {
			if (p[1] == '=')
				return set_bool(f, p + 2, shown, command, out);
			set_bool(f, NULL, shown, command, out);
			continue; /* "-kf": the next letter is another flag */
		}
		const char *value = p[1] == '=' ? p + 2 : p[1] ? p + 1 : NULL;
		if (!value) {
			if (*i + 1 >= argc)
				return cli_usage_error(command,
				                       "flag needs an argument: '%c' in -%c", c, c),
				       CLI_USAGE;
			value = argv[++*i];
		}
		return set_value(f, cf, value, shown, command, out);
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
		int rc = arg[1] == '-' ? parse_long(argc, argv, &i, flags, flag_count, with_client,
		                                    command, usage, out)
		                       : parse_short(argc, argv, &i, flags, flag_count, with_client,
		                                     command, usage, out);
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
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		fputs(usage, stdout);
		return 0;
	}
	for (const struct cli_subcommand *s = subs; s->name; s++)
		if (!strcmp(s->name, sub))
			return s->run(argc - 1, argv + 1);
	/* kes parses the group's own (absent) flags first: an option is an unknown flag. */
	if (sub[0] == '-' && sub[1] == '-')
		return cli_usage_error(command, "unknown flag: --%.*s", (int)strcspn(sub + 2, "="),
		                       sub + 2);
	if (sub[0] == '-' && sub[1])
		return cli_usage_error(command, "unknown shorthand flag: '%c' in -%c", sub[1],
		                       sub[1]);
	struct buf quoted;
	buf_init(&quoted, 4096);
	goformat_quote(&quoted, sub);
	int rc = cli_fail("%s is not a %s command. See 'kesc %s --help'",
	                  buf_failed(&quoted) ? "\"…\"" : quoted.data, command, command);
	buf_free(&quoted);
	return rc;
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

const char *cli_reply_string(const struct json_value *v, const char *key)
{
	const struct json_value *m = json_get(v, key);
	if (!m || json_type(m) == JSON_NULL)
		return "";
	const char *s = json_string(m, NULL);
	if (!s)
		cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
	return s;
}

int cli_reply_time(const struct json_value *v, const char *key, struct go_time *t)
{
	const char *s = cli_reply_string(v, key);
	if (!s)
		return -1;
	if (!*s) {
		goformat_zero_time(t);
		return 0;
	}
	if (goformat_parse_time(s, strlen(s), t) < 0)
		return cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE)), -1;
	return 0;
}

void cli_write_json(const struct buf *compact, bool indent)
{
	if (buf_failed(compact)) {
		cli_fail("%s", cli_message(CLI_MSG_OUT_OF_MEMORY));
		return;
	}
	if (!indent) {
		fwrite(compact->data ? compact->data : "", 1, compact->len, stdout);
		fputc('\n', stdout);
		return;
	}
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	goformat_json_indent(&out, compact->data ? compact->data : "", compact->len);
	buf_append_char(&out, '\n');
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_free(&out);
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
		const char *header =
		    v->terminal_header && cli_stdout_is_terminal() ? v->terminal_header : v->header;
		if (rc == 0)
			rc = cli_print_names(reply.body.data, reply.body.len, v->member, header,
			                     json);
		client_reply_free(&reply);
	}
	cli_args_free(&a);
	return rc;
}

int cli_strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t cli_rule_names(const struct json_value *rules, const char ***out)
{
	size_t n = json_count(rules), m = 0;
	const char **names = calloc(n ? n : 1, sizeof *names);
	*out = names;
	if (!names)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *r = json_type(rules) == JSON_OBJECT
		                    ? json_key_at(rules, i)
		                    : json_string(json_at(rules, i), NULL);
		if (r)
			names[m++] = r;
	}
	qsort(names, m, sizeof *names, cli_strcmp_ptr);
	return m;
}

struct name_ref {
	const char *s;
	size_t n;
};

/* Go's string order: bytes, shorter first on a common prefix. */
static int name_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

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
	struct name_ref *sorted = calloc(count ? count : 1, sizeof *sorted);
	if (!sorted) {
		json_free(v);
		return cli_fail("%s", cli_message(CLI_MSG_OUT_OF_MEMORY));
	}
	for (size_t i = 0; i < count; i++) {
		sorted[i].s = json_string(json_at(names, i), &sorted[i].n);
		if (!sorted[i].s) {
			free(sorted);
			json_free(v);
			return cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
		}
	}
	qsort(sorted, count, sizeof *sorted, name_cmp);
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	if (json) {
		/* kes prints null for no names and then the table as well; kesc prints a list. */
		struct json_writer w;
		json_writer_init(&w, &out);
		json_array_begin(&w);
		for (size_t i = 0; i < count; i++)
			json_write_string_n(&w, sorted[i].s, sorted[i].n);
		json_array_end(&w);
		buf_append_char(&out, '\n');
	} else if (count > 0) {
		buf_printf(&out, "%s\n", header);
		for (size_t i = 0; i < count; i++)
			buf_printf(&out, "%.*s\n", (int)sorted[i].n, sorted[i].s);
	}
	size_t more = 0;
	const char *cont = json_string(json_get(v, "continue_at"), &more);
	if (cont && more > 0)
		fprintf(stderr, "Warning: the server listed only the first %zu names\n", count);
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	buf_free(&out);
	free(sorted);
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
