/*
 * status.c — `kesc status [--api] [--json] [--short]` and `kesc metric` (kes.md §1.7, §9.1).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "keystore/json.h"

#define CLIENT_OPTIONS_USAGE                                                  \
	"    -k, --insecure           Skip TLS certificate validation.\n"     \
	"        --ca <file>          Trust the CA certificates in <file>.\n" \
	"        --server <host:port> Server to use (default: $KES_SERVER or 127.0.0.1:7373).\n"

static const char STATUS_USAGE[] =
    "Usage:\n    kesc status [options]\n\nOptions:\n" CLIENT_OPTIONS_USAGE
    "    -s, --short              Print only whether the server is reachable.\n"
    "        --api                List the server's APIs.\n"
    "        --ready              Only ask /v1/ready: exit 0 when the server can serve keys.\n"
    "        --json               Print the status in JSON format.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc status\n    $ kesc status --api\n"
    "    $ kesc status --ready --insecure --server 127.0.0.1:7373   # a health check\n";

static const char METRIC_USAGE[] =
    "Usage:\n    kesc metric [options]\n\nOptions:\n" CLIENT_OPTIONS_USAGE
    "        --raw                Print the Prometheus exposition text as sent.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "On a terminal a summary is printed; otherwise the Prometheus text.\n\n"
    "Examples:\n    $ kesc metric\n";

static void print_duration(int width, const char *label, uint64_t seconds)
{
	uint64_t d = seconds / 86400, h = seconds / 3600 % 24, m = seconds / 60 % 60,
	         s = seconds % 60;
	printf("%-*s ", width, label);
	if (d)
		printf("%" PRIu64 "d ", d);
	printf("%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s\n", h, m, s);
}

static double number(const struct json_value *v, const char *key)
{
	const char *n = json_number(json_get(v, key));
	return n ? strtod(n, NULL) : 0;
}

static void status_print(const struct client *c, const struct json_value *v)
{
	size_t n = 0;
	const char *version = json_string(json_get(v, "version"), &n);
	printf("%-15s %s\n", "Endpoint", client_server(c));
	printf("%-15s %.*s\n", "Version", (int)n, version ? version : "");
	print_duration(15, "Uptime", (uint64_t)number(v, "uptime"));
	printf("%-15s %.0f / %.0f\n", "CPUs used", number(v, "num_cpu_used"), number(v, "num_cpu"));
	printf("%-15s %.1f MiB heap, %.1f KiB stack\n", "Memory",
	       number(v, "mem_heap_used") / (1024 * 1024), number(v, "mem_stack_used") / 1024);
	if (json_bool(json_get(v, "keystore_unreachable")))
		printf("%-15s unreachable\n", "Keystore");
	else
		printf("%-15s reachable, latency %.0f ms\n", "Keystore",
		       number(v, "keystore_latency"));
}

/*
 * Prints /v1/status as asked. Exits 1 when the keystore is down, in every form: a server that
 * answers but cannot serve keys is not healthy, and scripts look at the exit status.
 */
static int status_report(const struct client *c, const struct client_reply *reply, bool json,
                         bool short_out)
{
	if (json)
		cli_print_json_body(reply->body.data, reply->body.len);
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_OBJECT);
	if (!v)
		return 1;
	if (short_out && !json)
		printf("%s online\n", client_server(c));
	else if (!json)
		status_print(c, v);
	bool down = json_bool(json_get(v, "keystore_unreachable")) ||
	            json_bool(json_get(v, "keystore_unavailable"));
	json_free(v);
	return down ? cli_fail("%s", cli_message(CLI_MSG_KEYSTORE_UNREACHABLE)) : 0;
}

static int api_print(const struct client_reply *reply)
{
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_ARRAY);
	if (!v)
		return 1;
	printf("%-8s %-28s %10s %8s\n", "Method", "API", "Max body", "Timeout");
	for (size_t i = 0; i < json_count(v); i++) {
		const struct json_value *e = json_at(v, i);
		const char *method = json_string(json_get(e, "method"), NULL);
		const char *path = json_string(json_get(e, "path"), NULL);
		printf("%-8s %-28s %10.0f %7.0fs\n", method ? method : "", path ? path : "",
		       number(e, "max_body"), number(e, "timeout"));
	}
	json_free(v);
	return 0;
}

int cmd_status(int argc, char **argv)
{
	bool json = false, api = false, short_out = false, ready = false;
	const struct cli_flag flags[] = {{"json", 0, CLI_BOOL, &json},
	                                 {"api", 0, CLI_BOOL, &api},
	                                 {"short", 's', CLI_BOOL, &short_out},
	                                 {"ready", 0, CLI_BOOL, &ready}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 4, true, "status", STATUS_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 0) {
		rc = cli_usage_error("status", "too many arguments");
		goto out;
	}
	if (ready && (api || json || short_out)) {
		rc = cli_usage_error("status", "--ready cannot be combined with other options");
		goto out;
	}
	struct client *c = client_open_or_report(&a.client);
	if (!c) {
		rc = 1;
		goto out;
	}
	struct client_reply reply;
	/* --ready: the container health check. /v1/ready answers without a client certificate
	 * when the configuration sets api./v1/ready.skip_auth (/v1/status never does), and 504
	 * while the keystore is unreachable, so the exit code says whether this server can
	 * serve keys. */
	const char *path = ready ? "/v1/ready" : api ? "/v1/api" : "/v1/status";
	if (client_call(c, "GET", path, NULL, 0, &reply) < 0) {
		rc = ready ? cli_fail("%s is not ready: %s", client_server(c), reply.message)
		           : cli_fail("failed to read the server %s: %s", api ? "APIs" : "status",
		                      reply.message);
	} else if (ready) {
		printf("%s ready\n", client_server(c));
	} else if (!api) {
		rc = status_report(c, &reply, json, short_out);
	} else if (json) {
		cli_print_json_body(reply.body.data, reply.body.len);
	} else {
		rc = api_print(&reply);
	}
	client_reply_free(&reply);
	client_close(c);
out:
	cli_args_free(&a);
	return rc;
}

static void metric_summary(const char *text)
{
	double ok = cli_metric_sum(text, "kes_http_request_success");
	double bad = cli_metric_sum(text, "kes_http_request_error");
	double fail = cli_metric_sum(text, "kes_http_request_failure");
	double count = cli_metric_sum(text, "kes_http_response_time_count");
	double sum = cli_metric_sum(text, "kes_http_response_time_sum");
	printf("%-22s %.0f\n", "Requests OK (2xx)", ok);
	printf("%-22s %.0f\n", "Requests denied (4xx)", bad);
	printf("%-22s %.0f\n", "Requests failed (5xx)", fail);
	printf("%-22s %.0f\n", "Requests active", cli_metric_sum(text, "kes_http_request_active"));
	printf("%-22s %.3f ms\n", "Mean response time", count > 0 ? sum / count * 1000 : 0.0);
	printf("%-22s %.0f\n", "Audit events", cli_metric_sum(text, "kes_log_audit_events"));
	printf("%-22s %.0f\n", "Error events", cli_metric_sum(text, "kes_log_error_events"));
	print_duration(22, "Uptime", (uint64_t)cli_metric_sum(text, "kes_system_up_time"));
}

int cmd_metric(int argc, char **argv)
{
	bool raw = false;
	const struct cli_flag flags[] = {{"raw", 0, CLI_BOOL, &raw}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 1, true, "metric", METRIC_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 0) {
		rc = cli_usage_error("metric", "too many arguments");
		goto out;
	}
	struct client_reply reply;
	rc = client_get_or_report(&a.client, "/v1/metrics", NULL, &reply,
	                          "failed to read the server metrics");
	if (rc == 0 && (raw || !cli_stdout_is_terminal()))
		fwrite(reply.body.data ? reply.body.data : "", 1, reply.body.len, stdout);
	else if (rc == 0)
		metric_summary(reply.body.data ? reply.body.data : "");
	client_reply_free(&reply);
out:
	cli_args_free(&a);
	return rc;
}
