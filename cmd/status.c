/*
 * status.c — `kesc status [-s] [--api] [--json]` (kes.md §1.7, §8), printed as kes prints it
 * (cmd/kes/status.go): the server's version, uptime, latency, OS, CPUs and memory; with --api
 * its routes; with --json kms-go's State (or API list) re-encoded as kes does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "keystore/json.h"

static const char STATUS_USAGE[] =
    "Usage:\n    kesc status [options]\n\nOptions:\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "        --ca <file>          Trust the CA certificates in <file>.\n"
    "        --server <host:port> Server to use (default: $KES_SERVER or 127.0.0.1:7373).\n"
    "    -e, --enclave <name>     The admin's view of a tenant (kesc); KES ignores it.\n"
    "        --color <when>       auto, never or always: accepted for kes compatibility.\n"
    "    -s, --short              Print status information in a short summary format.\n"
    "        --api                List all server APIs.\n"
    "        --ready              Only ask /v1/ready: exit 0 when the server can serve keys.\n"
    "        --json               Print status information in JSON format.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "The exit status is 1 when the server's keystore is unreachable, after the status was\n"
    "printed.\n\n"
    "Examples:\n    $ kesc status\n    $ kesc status --api\n"
    "    $ kesc status --ready --insecure --server 127.0.0.1:7373   # a health check\n";

/* kms-go's State as decoded from /v1/status. */
struct state {
	const char *version, *os, *arch;
	int64_t uptime_ns, keystore_latency;
	int64_t cpus, usable_cpus;
	uint64_t heap, stack;
	bool unreachable, unavailable;
};

/* A JSON number member as Go decodes it into an integer field: absent is 0, a fraction or a
 * negative number into an unsigned field is an error. */
static int member_int(const struct json_value *v, const char *key, bool is_unsigned, int64_t *out)
{
	const struct json_value *m = json_get(v, key);
	*out = 0;
	if (!m || json_type(m) == JSON_NULL)
		return 0;
	const char *n = json_number(m);
	char *end = NULL;
	if (!n || strpbrk(n, ".eE") || (is_unsigned && n[0] == '-'))
		return -1;
	long long x = strtoll(n, &end, 10);
	if (!end || *end)
		return -1;
	*out = x;
	return 0;
}

static int state_decode(const struct json_value *v, struct state *s)
{
	memset(s, 0, sizeof *s);
	s->version = cli_reply_string(v, "version");
	s->os = cli_reply_string(v, "os");
	s->arch = cli_reply_string(v, "arch");
	if (!s->version || !s->os || !s->arch)
		return -1;
	const struct json_value *up = json_get(v, "uptime");
	double uptime = up && json_number(up) ? strtod(json_number(up), NULL) : 0;
	s->uptime_ns = (int64_t)(uptime * (double)GO_SECOND);
	int64_t heap, stack;
	if (member_int(v, "num_cpu", false, &s->cpus) < 0 ||
	    member_int(v, "num_cpu_used", false, &s->usable_cpus) < 0 ||
	    member_int(v, "mem_heap_used", true, &heap) < 0 ||
	    member_int(v, "mem_stack_used", true, &stack) < 0 ||
	    member_int(v, "keystore_latency", false, &s->keystore_latency) < 0 || s->cpus < 0 ||
	    s->usable_cpus < 0)
		return cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE)), -1;
	s->heap = (uint64_t)heap;
	s->stack = (uint64_t)stack;
	s->unreachable = json_bool(json_get(v, "keystore_unreachable"));
	s->unavailable = json_bool(json_get(v, "keystore_unavailable"));
	/* kms-go refuses this combination (HEAD KES sends it while its keystore is down). */
	if (s->unreachable && !s->unavailable)
		return cli_fail("kes: keystore is unreachable but not unavailable"), -1;
	return 0;
}

/* State.MarshalJSON: its fields in its order, zero values left out. */
static void state_json(struct buf *out, const struct state *s)
{
	struct json_writer w;
	json_writer_init(&w, out);
	json_object_begin(&w);
	const struct {
		const char *key, *value;
	} strings[] = {{"version", s->version}, {"os", s->os}, {"arch", s->arch}};
	for (size_t i = 0; i < 3; i++)
		if (*strings[i].value) {
			json_key(&w, strings[i].key);
			json_write_string(&w, strings[i].value);
		}
	int64_t uptime = goformat_duration_round(s->uptime_ns, GO_SECOND) / GO_SECOND;
	const struct {
		const char *key;
		long long value;
	} numbers[] = {{"uptime", uptime},
	               {"num_cpu", s->cpus},
	               {"num_cpu_used", s->usable_cpus},
	               {"mem_heap_used", (long long)s->heap},
	               {"mem_stack_used", (long long)s->stack},
	               {"keystore_latency", s->keystore_latency}};
	for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
		if (numbers[i].value) {
			json_key(&w, numbers[i].key);
			json_write_int(&w, numbers[i].value);
		}
	if (s->unreachable) {
		json_key(&w, "keystore_unreachable");
		json_write_bool(&w, true);
	}
	if (s->unavailable) {
		json_key(&w, "keystore_unavailable");
		json_write_bool(&w, true);
	}
	json_object_end(&w);
}

static void status_text(struct buf *out, const struct state *s, int64_t latency_ns)
{
	double hours = (double)s->uptime_ns / 3600e9;
	buf_printf(out, "  %-8s %s\n  %-8s ", "Version", s->version, "Uptime");
	if (s->uptime_ns > 24 * 3600 * GO_SECOND)
		buf_printf(out, "%.0f days %.0f hours\n", hours / 24,
		           hours - 24 * (double)(int64_t)(hours / 24)); /* math.Mod(hours, 24) */
	else if (s->uptime_ns > 3600 * GO_SECOND)
		buf_printf(out, "%.0f hours\n", hours);
	else if (s->uptime_ns > 60 * GO_SECOND)
		buf_printf(out, "%.0f minutes\n", (double)s->uptime_ns / 60e9);
	else
		buf_printf(out, "%.0f seconds\n", (double)s->uptime_ns / 1e9);
	buf_printf(out, "  %-8s ", "Latency");
	goformat_duration(out, goformat_duration_round(latency_ns, GO_MILLISECOND));
	buf_printf(out, "\n  %-8s %s\n  %-8s %" PRId64 " %s\n  %-8s\n", "OS", s->os, "CPUs",
	           s->usable_cpus, s->arch, "Memory");
	buf_append_str(out, "  · Heap   ");
	goformat_size(out, s->heap);
	buf_append_str(out, "\n  · Stack  ");
	goformat_size(out, s->stack);
	buf_append_char(out, '\n');
}

/* kms-go's API list: method, path, max_body and timeout (seconds), zero ones left out. */
static int api_print(const struct client_reply *reply, struct buf *out, bool json)
{
	struct json_value *v = cli_parse_reply(reply->body.data, reply->body.len, JSON_ARRAY);
	if (!v)
		return 1;
	struct json_writer w;
	json_writer_init(&w, out);
	if (json)
		json_array_begin(&w);
	else
		buf_printf(out, "\n  %-7s %-28s %s\n", "Method", "API", "Timeout");
	for (size_t i = 0; i < json_count(v); i++) {
		const struct json_value *e = json_at(v, i);
		const char *method = cli_reply_string(e, "method"),
		           *path = cli_reply_string(e, "path");
		int64_t max_body, timeout;
		if (!method || !path || member_int(e, "max_body", false, &max_body) < 0 ||
		    member_int(e, "timeout", false, &timeout) < 0) {
			json_free(v);
			return cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
		}
		if (!json) {
			buf_printf(out, "  %-7s %-28s ", method, path);
			if (timeout > 0)
				goformat_duration(out, timeout * GO_SECOND);
			else
				buf_append_str(out, "Inf");
			buf_append_char(out, '\n');
			continue;
		}
		json_object_begin(&w);
		if (*method) {
			json_key(&w, "method");
			json_write_string(&w, method);
		}
		if (*path) {
			json_key(&w, "path");
			json_write_string(&w, path);
		}
		if (max_body) {
			json_key(&w, "max_body");
			json_write_int(&w, max_body);
		}
		if (timeout) {
			json_key(&w, "timeout");
			json_write_int(&w, timeout);
		}
		json_object_end(&w);
	}
	if (json)
		json_array_end(&w);
	json_free(v);
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * GO_SECOND + ts.tv_nsec;
}

/* "https://host:port" → "host:port", as kes prints the endpoint. */
static const char *endpoint_of(const char *url)
{
	return strncmp(url, "https://", 8) ? url : url + 8;
}

static int status_run(struct client *c, bool json, bool api, bool short_out)
{
	struct client_reply reply, apis = {0};
	buf_init(&apis.body, 0);
	int64_t start = now_ns();
	if (client_call(c, "GET", "/v1/status", NULL, 0, &reply) < 0) {
		client_reply_free(&reply);
		return cli_fail("%s", reply.message);
	}
	int64_t latency = now_ns() - start;
	struct json_value *v = cli_parse_reply(reply.body.data, reply.body.len, JSON_OBJECT);
	struct state s;
	int rc = 1;
	if (!v || state_decode(v, &s) < 0)
		goto out;
	if (api) {
		client_reply_free(&apis);
		if (client_call(c, "GET", "/v1/api", NULL, 0, &apis) < 0) {
			rc = cli_fail("%s", apis.message);
			goto out;
		}
	}
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	rc = 0;
	if (json) {
		if (api)
			rc = api_print(&apis, &out, true);
		else
			state_json(&out, &s);
		if (rc == 0)
			cli_write_json(&out, cli_stdout_is_terminal() && !short_out);
	} else {
		buf_printf(&out, "● %s\n", endpoint_of(client_server(c)));
		if (!short_out)
			status_text(&out, &s, latency);
		if (api)
			rc = api_print(&apis, &out, false);
		if (rc == 0)
			fwrite(out.data ? out.data : "", 1, out.len, stdout);
	}
	buf_free(&out);
	/* A server that answers but cannot serve keys is not healthy, and scripts read the exit
	 * status (kes fails too, against KES, whose reply kms-go cannot decode then). */
	if (rc == 0 && (s.unreachable || s.unavailable))
		rc = cli_fail("%s", cli_message(CLI_MSG_KEYSTORE_UNREACHABLE));
out:
	json_free(v);
	client_reply_free(&apis);
	client_reply_free(&reply);
	return rc;
}

/* --ready, a kesc extension for health checks: /v1/ready answers without a client
 * certificate when the configuration sets api./v1/ready.skip_auth (/v1/status never does),
 * and 504 while the keystore is unreachable, so the exit code says whether this server can
 * serve keys. */
static int ready_run(struct client *c)
{
	struct client_reply reply;
	int rc = 0;
	if (client_call(c, "GET", "/v1/ready", NULL, 0, &reply) < 0)
		rc = cli_fail("%s is not ready: %s", client_server(c), reply.message);
	else
		printf("%s ready\n", client_server(c));
	client_reply_free(&reply);
	return rc;
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
	} else if (ready && (api || json || short_out)) {
		rc = cli_usage_error("status", "--ready cannot be combined with other options");
	} else {
		struct client *c = client_open_or_report(&a.client);
		rc = !c ? 1 : ready ? ready_run(c) : status_run(c, json, api, short_out);
		client_close(c);
	}
	cli_args_free(&a);
	return rc;
}
