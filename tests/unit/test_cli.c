/* test_cli.c — the client side of `kesc`: option parsing as KES's pflag command line does it,
 * server and credential selection from KES's environment variables, and path escaping. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "cmd/cli.h"
#include "cmd/client.h"

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
	CHECK(strstr(text, "'-p'") != NULL);
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
	CHECK_EQ_INT(cli_exit_for(CLI_USAGE), 2);
	char *missing[] = {"info", "--ca"};
	CHECK_EQ_INT(cli_parse(2, missing, flags, 1, true, "key info", "usage\n", &a), CLI_USAGE);
	char *bool_value[] = {"info", "--json=yes"};
	CHECK_EQ_INT(cli_parse(2, bool_value, flags, 1, true, "key info", "usage\n", &a),
	             CLI_USAGE);
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
	RUN(test_path_escaping);
	RUN(test_server_from_environment);
	RUN(test_credentials_from_environment);
	RUN(test_unreachable_server);
	RUN(test_error_messages);
	RUN(test_metric_sum);
	return CHECK_DONE();
}
