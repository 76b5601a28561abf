/* test_cli.c — the client side of `kesc`: option parsing as KES's pflag command line does it,
 * server and credential selection from KES's environment variables, path escaping, and the Go
 * text formats kes prints (goformat.c). */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/goformat.h"

static void test_parse_mixed_options(void)
{
	bool json = false;
	const char *cipher = NULL;
	struct cli_list ips = {0};
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json},
	                                 {"cipher", 0, CLI_STRING, &cipher},
	                                 {"ip", 0, CLI_LIST, &ips}};
	char *argv[] = {"ls",
	                "a",
	                "--json",
	                "-k",
	                "--cipher=ChaCha20",
	                "--ip",
	                "1.2.3.4",
	                "--ip=::1",
	                "--ca",
	                "ca.pem",
	                "-s",
	                "h:1",
	                "--",
	                "--not-an-option",
	                "b"};
	struct cli_args a;
	CHECK_EQ_INT(cli_parse(15, argv, flags, 3, true, "key ls", "usage\n", &a), CLI_OK);
	CHECK(json);
	CHECK_EQ_STR(cipher, "ChaCha20");
	CHECK_EQ_INT(ips.count, 2);
	CHECK_EQ_STR(ips.items[0], "1.2.3.4");
	CHECK_EQ_STR(ips.items[1], "::1");
	CHECK(a.client.insecure);
	CHECK_EQ_STR(a.client.ca, "ca.pem");
	CHECK_EQ_STR(a.client.server, "h:1");
	CHECK_EQ_INT(a.count, 3);
	CHECK_EQ_STR(a.args[0], "a");
	CHECK_EQ_STR(a.args[1], "--not-an-option");
	CHECK_EQ_STR(a.args[2], "b");
	cli_args_free(&a);
}

/* Runs cli_parse with stderr captured into out (NUL-terminated). */
static int parse_capturing_stderr(int argc, char **argv, const struct cli_flag *flags,
                                  size_t flag_count, char *out, size_t outlen)
{
	struct cli_args a;
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	if (!tmp || saved < 0)
		abort();
	fflush(stderr);
	if (dup2(fileno(tmp), STDERR_FILENO) < 0)
		abort();
	int rc = cli_parse(argc, argv, flags, flag_count, true, "key info", "usage\n", &a);
	fflush(stderr);
	if (dup2(saved, STDERR_FILENO) < 0)
		abort();
	close(saved);
	rewind(tmp);
	size_t n = fread(out, 1, outlen - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	if (rc == CLI_OK)
		cli_args_free(&a);
	return rc;
}

/* A mistyped option may carry a secret as its value; the usage error names only the option. */
static void test_parse_errors_never_echo_values(void)
{
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	char text[1024];
	char *unknown_long[] = {"info", "--pasword=hunter2-secret"};
	CHECK_EQ_INT(parse_capturing_stderr(2, unknown_long, flags, 1, text, sizeof text),
	             CLI_USAGE);
	CHECK(strstr(text, "--pasword") != NULL);
	CHECK(strstr(text, "hunter2") == NULL);
	char *unknown_short[] = {"info", "-phunter2-secret"};
	CHECK_EQ_INT(parse_capturing_stderr(2, unknown_short, flags, 1, text, sizeof text),
	             CLI_USAGE);
	CHECK(strstr(text, "unknown shorthand flag: 'p' in -p.") != NULL);
	CHECK(strstr(text, "hunter2") == NULL);
	char *bool_value[] = {"info", "--json=hunter2-secret"};
	CHECK_EQ_INT(parse_capturing_stderr(2, bool_value, flags, 1, text, sizeof text), CLI_USAGE);
	CHECK(strstr(text, "--json") != NULL);
	CHECK(strstr(text, "hunter2") == NULL);
}

static void test_parse_errors_and_help(void)
{
	struct cli_args a;
	bool json = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json}};
	char *unknown[] = {"info", "--nope", "x"};
	CHECK_EQ_INT(cli_parse(3, unknown, flags, 1, true, "key info", "usage\n", &a), CLI_USAGE);
	CHECK_EQ_INT(cli_exit_for(CLI_USAGE), 1); /* kes: cli.Fatalf, exit code 1 */
	char *missing[] = {"info", "--ca"};
	CHECK_EQ_INT(cli_parse(2, missing, flags, 1, true, "key info", "usage\n", &a), CLI_USAGE);
	char *bool_value[] = {"info", "--json=yes"};
	CHECK_EQ_INT(cli_parse(2, bool_value, flags, 1, true, "key info", "usage\n", &a),
	             CLI_USAGE);
	char *bad_color[] = {"info", "--color", "sometimes"};
	CHECK_EQ_INT(cli_parse(3, bad_color, flags, 1, true, "key info", "usage\n", &a), CLI_USAGE);
	/* Client options exist only where the verb talks to a server. */
	char *client_only[] = {"of", "-k", "x"};
	CHECK_EQ_INT(cli_parse(3, client_only, NULL, 0, false, "identity of", "usage\n", &a),
	             CLI_USAGE);
	char *help[] = {"info", "x", "--help"};
	CHECK_EQ_INT(cli_parse(3, help, flags, 1, true, "key info", "", &a), CLI_HELP);
	CHECK_EQ_INT(cli_exit_for(CLI_HELP), 0);
	char *dash[] = {"encrypt", "k", "-"};
	CHECK_EQ_INT(cli_parse(3, dash, flags, 1, true, "key encrypt", "", &a), CLI_OK);
	CHECK_EQ_INT(a.count, 2); /* a lone "-" is an argument */
	cli_args_free(&a);
}

/* pflag's forms: grouped short booleans, "-x=v", "-xv", "--bool=false", and kes's -e and
 * --color accepted on every client verb. */
static void test_parse_pflag_forms(void)
{
	bool json = true, shrt = false;
	const char *rate = NULL;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json},
	                                 {"short", 's', CLI_BOOL, &shrt},
	                                 {"rate", 0, CLI_STRING, &rate}};
	char *argv[] = {"status",        "-ks",       "--json=false", "-e",         "tenant",
	                "--color=NEVER", "--rate=1s", "--enclave=x",  "--ca=ca.pem"};
	struct cli_args a;
	CHECK_EQ_INT(cli_parse(9, argv, flags, 3, true, "status", "", &a), CLI_OK);
	CHECK(a.client.insecure && shrt && !json);
	CHECK_EQ_STR(a.client.enclave, "x");
	CHECK_EQ_STR(a.client.color, "NEVER");
	CHECK_EQ_STR(rate, "1s");
	CHECK_EQ_STR(a.client.ca, "ca.pem");
	CHECK(a.client.server == NULL); /* -s is the verb's --short here */
	cli_args_free(&a);
	char *values[] = {"ls", "-s=h:1", "-k=false", "-ecorp", "--json=1"};
	CHECK_EQ_INT(cli_parse(5, values, flags, 1, true, "key ls", "", &a), CLI_OK);
	CHECK_EQ_STR(a.client.server, "h:1");
	CHECK(!a.client.insecure && json);
	CHECK_EQ_STR(a.client.enclave, "corp");
	cli_args_free(&a);
}

static void test_go_quote_and_pad(void)
{
	struct buf b;
	buf_init(&b, 0);
	goformat_quote(&b, "cli-1");
	CHECK_EQ_STR(b.data, "\"cli-1\"");
	buf_reset(&b);
	goformat_quote(&b, "a\"b\\c\n\t\x01\x7f\xc3\xa9\xff\xc2\x85");
	CHECK_EQ_STR(b.data, "\"a\\\"b\\\\c\\n\\t\\x01\\x7f\xc3\xa9\\xff\\u0085\"");
	buf_reset(&b);
	goformat_pad(&b, "\xc2\xb7", 3); /* fmt pads "·" by runes: two spaces */
	CHECK_EQ_STR(b.data, "\xc2\xb7  ");
	buf_free(&b);
}

static void check_duration(int64_t ns, const char *want)
{
	struct buf b;
	buf_init(&b, 0);
	goformat_duration(&b, ns);
	CHECK_EQ_STR(b.data, want);
	buf_free(&b);
}

/* time.Duration's String and Round, and time.ParseDuration, on Go's own examples. */
static void test_go_durations(void)
{
	check_duration(0, "0s");
	check_duration(1, "1ns");
	check_duration(1100, "1.1\xc2\xb5s");
	check_duration(2200000, "2.2ms");
	check_duration(3300000000LL, "3.3s");
	check_duration(4 * 60 * GO_SECOND + 5 * GO_SECOND, "4m5s");
	check_duration(4 * 60 * GO_SECOND + 5001 * GO_MILLISECOND, "4m5.001s");
	check_duration(5 * 3600 * GO_SECOND + 6 * 60 * GO_SECOND + 7001 * GO_MILLISECOND,
	               "5h6m7.001s");
	check_duration(8 * 60 * GO_SECOND + 1, "8m0.000000001s");
	check_duration(60 * GO_SECOND, "1m0s");
	check_duration(-GO_MILLISECOND, "-1ms");
	check_duration(INT64_MAX, "2562047h47m16.854775807s");
	CHECK_EQ_INT(goformat_duration_round(1234567, GO_MILLISECOND), GO_MILLISECOND);
	CHECK_EQ_INT(goformat_duration_round(1500000, GO_MILLISECOND), 2 * GO_MILLISECOND);
	CHECK_EQ_INT(goformat_duration_round(-1500000, GO_MILLISECOND), -2 * GO_MILLISECOND);
	CHECK_EQ_INT(goformat_duration_round(12345, 0), 12345);

	char err[128];
	int64_t d = 0;
	CHECK_EQ_INT(goformat_parse_duration("5s", &d, err, sizeof err), 0);
	CHECK_EQ_INT(d, 5 * GO_SECOND);
	CHECK_EQ_INT(goformat_parse_duration("1h2m3.5s", &d, err, sizeof err), 0);
	CHECK_EQ_INT(d, 3723500 * GO_MILLISECOND);
	CHECK_EQ_INT(goformat_parse_duration("250ms", &d, err, sizeof err), 0);
	CHECK_EQ_INT(d, 250 * GO_MILLISECOND);
	CHECK_EQ_INT(goformat_parse_duration("1.5h", &d, err, sizeof err), 0);
	CHECK_EQ_INT(d, 5400 * GO_SECOND);
	CHECK_EQ_INT(goformat_parse_duration("-.5us", &d, err, sizeof err), 0);
	CHECK_EQ_INT(d, -500);
	CHECK_EQ_INT(goformat_parse_duration("0", &d, err, sizeof err), 0);
	CHECK_EQ_INT(d, 0);
	CHECK_EQ_INT(goformat_parse_duration("soon", &d, err, sizeof err), -1);
	CHECK_EQ_STR(err, "time: invalid duration \"soon\"");
	CHECK_EQ_INT(goformat_parse_duration("5", &d, err, sizeof err), -1);
	CHECK_EQ_STR(err, "time: missing unit in duration \"5\"");
	CHECK_EQ_INT(goformat_parse_duration("5x", &d, err, sizeof err), -1);
	CHECK_EQ_STR(err, "time: unknown unit \"x\" in duration \"5x\"");
	CHECK_EQ_INT(goformat_parse_duration("", &d, err, sizeof err), -1);
	CHECK_EQ_INT(goformat_parse_duration(".s", &d, err, sizeof err), -1);
	CHECK_EQ_INT(goformat_parse_duration("9999999999h", &d, err, sizeof err), -1);
}

/* time.Time's JSON form, Date()/Clock() and Local(), as kes prints dates. */
static void test_go_times(void)
{
	struct go_time t;
	struct buf b;
	buf_init(&b, 0);
	const char *in = "2024-01-02T03:04:05.120000000Z";
	CHECK_EQ_INT(goformat_parse_time(in, strlen(in), &t), 0);
	goformat_time_json(&b, &t);
	CHECK_EQ_STR(b.data, "2024-01-02T03:04:05.12Z");
	buf_reset(&b);
	goformat_time_clock(&b, &t, false);
	CHECK_EQ_STR(b.data, "2024-01-02 03:04:05");
	buf_reset(&b);
	in = "2024-02-29T23:30:00+05:30";
	CHECK_EQ_INT(goformat_parse_time(in, strlen(in), &t), 0);
	goformat_time_json(&b, &t);
	CHECK_EQ_STR(b.data, "2024-02-29T23:30:00+05:30");
	buf_reset(&b);
	setenv("TZ", "UTC", 1);
	tzset();
	goformat_time_clock(&b, &t, true);
	CHECK_EQ_STR(b.data, "2024-02-29 18:00:00");
	buf_reset(&b);
	in = "2024-01-01T00:00:00.5-00:00";
	CHECK_EQ_INT(goformat_parse_time(in, strlen(in), &t), 0);
	goformat_time_json(&b, &t);
	CHECK_EQ_STR(b.data, "2024-01-01T00:00:00.5Z");
	buf_reset(&b);
	goformat_zero_time(&t);
	CHECK(goformat_time_is_zero(&t));
	goformat_time_json(&b, &t);
	CHECK_EQ_STR(b.data, "0001-01-01T00:00:00Z");
	buf_free(&b);
	const char *bad[] = {"2024-13-01T00:00:00Z",     "2023-02-29T00:00:00Z",
	                     "2024-01-01 00:00:00Z",     "2024-01-01T00:00:60Z",
	                     "2024-01-01T00:00:00",      "2024-01-01T00:00:00.Z",
	                     "2024-01-01T00:00:00+0100", "x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_EQ_INT(goformat_parse_time(bad[i], strlen(bad[i]), &t), -1);
}

/* json.Encoder.SetIndent("", "  ") and aead.dev/mem's FormatSize(…, 'D', 1). */
static void test_go_json_indent_and_sizes(void)
{
	struct buf b;
	buf_init(&b, 0);
	const char *in = "{\"a\":{},\"b\":[],\"c\":{\"x,:{\":[1,\"\\\"]\"]},\"d\":true}";
	goformat_json_indent(&b, in, strlen(in));
	CHECK_EQ_STR(b.data,
	             "{\n  \"a\": {},\n  \"b\": [],\n  \"c\": {\n    \"x,:{\": [\n      1,\n"
	             "      \"\\\"]\"\n    ]\n  },\n  \"d\": true\n}");
	struct {
		uint64_t n;
		const char *want;
	} sizes[] = {{0, "0B"},           {512, "512.0B"},         {1000, "1.0KB"},
	             {135168, "135.2KB"}, {3145728, "3.1MB"},      {999999, "999.0KB"},
	             {2000000, "2.0MB"},  {1500000000000, "1.5TB"}};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		buf_reset(&b);
		goformat_size(&b, sizes[i].n);
		CHECK_EQ_STR(b.data, sizes[i].want);
	}
	buf_free(&b);
}

static void test_path_escaping(void)
{
	struct buf b;
	buf_init(&b, 0);
	client_path(&b, "/v1/key/list/", "my-key*");
	CHECK_EQ_STR(b.data, "/v1/key/list/my-key%2A");
	buf_reset(&b);
	client_path(&b, "/v1/key/describe/", "a b/c?d%_.~");
	CHECK_EQ_STR(b.data, "/v1/key/describe/a%20b%2Fc%3Fd%25_.~");
	buf_free(&b);
}

static void clear_env(void)
{
	const char *vars[] = {"MINIO_KES_SERVER",
	                      "KES_SERVER",
	                      "MINIO_KMS_KES_ENDPOINT",
	                      "MINIO_KES_CERT_FILE",
	                      "KES_CLIENT_CERT",
	                      "MINIO_KES_CLIENT_CERT",
	                      "MINIO_KES_KEY_FILE",
	                      "KES_CLIENT_KEY",
	                      "MINIO_KES_CLIENT_KEY",
	                      "MINIO_KES_API_KEY",
	                      "KES_API_KEY",
	                      "MINIO_KMS_KES_API_KEY",
	                      "KESC_CA"};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
}

static void test_server_from_environment(void)
{
	char err[512];
	struct client *c;
	clear_env();
	c = client_open(NULL, err, sizeof err);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_STR(client_server(c), "https://127.0.0.1:7373");
	client_close(c);

	/* First variable set wins; http:// is replaced by https://, trailing slashes dropped. */
	setenv("MINIO_KMS_KES_ENDPOINT", "https://third:1", 1);
	setenv("KES_SERVER", " http://second:7373/ ,other:1", 1);
	c = client_open(NULL, err, sizeof err);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_STR(client_server(c), "https://second:7373");
	client_close(c);
	setenv("MINIO_KES_SERVER", "first:7373", 1);
	c = client_open(NULL, err, sizeof err);
	if (c)
		CHECK_EQ_STR(client_server(c), "https://first:7373");
	client_close(c);

	/* --server overrides all of them. */
	struct client_options opt = {.server = "flag:1"};
	c = client_open(&opt, err, sizeof err);
	if (c)
		CHECK_EQ_STR(client_server(c), "https://flag:1");
	client_close(c);

	opt.server = " , ";
	CHECK(client_open(&opt, err, sizeof err) == NULL);
	CHECK(strstr(err, "no server address") != NULL);
	clear_env();
}

static void test_credentials_from_environment(void)
{
	char err[512];
	clear_env();
	setenv("KES_API_KEY", "kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", 1);
	CHECK(client_open(NULL, err, sizeof err) == NULL);
	CHECK(strstr(err, "API keys (kes:v1:") != NULL);
	CHECK(strstr(err, "not supported by kesc; use a client certificate") != NULL);
	clear_env();

	setenv("KES_CLIENT_CERT", "c.crt", 1);
	CHECK(client_open(NULL, err, sizeof err) == NULL);
	CHECK(strstr(err, "no private key") != NULL);
	clear_env();
	setenv("MINIO_KES_CLIENT_KEY", "c.key", 1);
	CHECK(client_open(NULL, err, sizeof err) == NULL);
	CHECK(strstr(err, "no certificate") != NULL);
	setenv("MINIO_KES_CERT_FILE", "c.crt", 1);
	struct client *c = client_open(NULL, err, sizeof err);
	CHECK(c != NULL);
	client_close(c);
	clear_env();
}

static void test_unreachable_server(void)
{
	/* Nothing listens on port 1: a clear connection error naming the server. */
	clear_env();
	char err[512];
	struct client_options opt = {.server = "127.0.0.1:1"};
	struct client *c = client_open(&opt, err, sizeof err);
	CHECK(c != NULL);
	if (!c)
		return;
	struct client_reply reply;
	CHECK_EQ_INT(client_call(c, "GET", "/v1/status", NULL, 0, &reply), -1);
	CHECK(strstr(reply.message, "cannot connect to https://127.0.0.1:1") != NULL);
	CHECK_EQ_INT(reply.status, 0);
	client_reply_free(&reply);
	client_close(c);
}

static void message_of(const char *body, const char *content_type, long status, char *out,
                       size_t outlen)
{
	struct client_reply r = {.status = status};
	buf_init(&r.body, 0);
	buf_append_str(&r.body, body);
	client_reply_message(&r, content_type);
	snprintf(out, outlen, "%s", r.message);
	client_reply_free(&r);
}

static void test_error_messages(void)
{
	char m[512];
	/* KES HEAD's error body: the JSON string followed by a newline inside the braces. */
	message_of("{\"message\":\"key does not exist\"\n}", "application/json", 404, m, sizeof m);
	CHECK_EQ_STR(m, "key does not exist");
	/* kms-go: a non-empty "error" wins over "message". */
	message_of("{\"message\":\"a\",\"error\":\"b\"}", "application/json; charset=utf-8", 400, m,
	           sizeof m);
	CHECK_EQ_STR(m, "b");
	message_of("{\"message\":\"a\",\"error\":\"\"}", "application/json", 400, m, sizeof m);
	CHECK_EQ_STR(m, "a");
	/* Anything else is shown as text, trimmed; an empty body names the status. */
	message_of("404 page not found\n", "text/plain; charset=utf-8", 404, m, sizeof m);
	CHECK_EQ_STR(m, "404 page not found");
	message_of("{not json", "application/json", 502, m, sizeof m);
	CHECK_EQ_STR(m, "{not json");
	message_of("", NULL, 503, m, sizeof m);
	CHECK_EQ_STR(m, "the server replied with HTTP status 503");
}

static void test_metric_sum(void)
{
	const char *text = "# HELP kes_http_request_success Number of requests.\n"
	                   "# TYPE kes_http_request_success counter\n"
	                   "kes_http_request_success{code=\"200\"} 20\n"
	                   "kes_http_request_success{code=\"201\"} 2\n"
	                   "kes_http_request_success_other 100\n"
	                   "kes_http_response_time_sum 0.25\n"
	                   "kes_http_response_time_count 5";
	CHECK(cli_metric_sum(text, "kes_http_request_success") == 22.0);
	CHECK(cli_metric_sum(text, "kes_http_response_time_sum") == 0.25);
	CHECK(cli_metric_sum(text, "kes_http_response_time_count") == 5.0);
	CHECK(cli_metric_sum(text, "kes_missing") == 0.0);
}

int main(void)
{
	RUN(test_parse_mixed_options);
	RUN(test_parse_errors_and_help);
	RUN(test_parse_errors_never_echo_values);
	RUN(test_parse_pflag_forms);
	RUN(test_go_quote_and_pad);
	RUN(test_go_durations);
	RUN(test_go_times);
	RUN(test_go_json_indent_and_sizes);
	RUN(test_path_escaping);
	RUN(test_server_from_environment);
	RUN(test_credentials_from_environment);
	RUN(test_unreachable_server);
	RUN(test_error_messages);
	RUN(test_metric_sum);
	return CHECK_DONE();
}
