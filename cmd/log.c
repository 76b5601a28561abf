/*
 * log.c — `kesc log [--audit|--error] [--json]`: follows the server's audit or error log
 * (/v1/log/audit, /v1/log/error; ndjson) until interrupted. For programs the lines pass
 * through unchanged; on a terminal audit events become a table (Time Status Identity IP API
 * Latency) and error events their message.
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
	"    -s, --server <host:port> Server to use (default: $KES_SERVER or 127.0.0.1:7373).\n"

static const char LOG_USAGE[] = "Usage:\n    kesc log [options]\n\nOptions:\n" CLIENT_OPTIONS_USAGE
                                "        --audit              Follow the audit log (default).\n"
                                "        --error              Follow the error log.\n"
                                "        --json               Print events as JSON lines.\n\n"
                                "    -h, --help               Print command line options.\n\n"
                                "Examples:\n    $ kesc log\n    $ kesc log --error --json\n";

struct log_view {
	bool table; /* human-readable output */
	bool audit;
	bool header_done;
};

/* Audit latency: kesc and KES before 2023-11 send nanoseconds (kms-go decodes a Duration). */
static void format_latency(double ns, char *out, size_t len)
{
	if (ns >= 1e9)
		snprintf(out, len, "%.2fs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(out, len, "%.2fms", ns / 1e6);
	else
		snprintf(out, len, "%.1fµs", ns / 1e3);
}

/* Copies a server-supplied string for the terminal: control characters (escape sequences a
 * hostile server could use to rewrite the screen) become '?'. */
static const char *term_safe(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t i = 0;
	for (; src && i < n && i + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[i] = '\0';
	return dst;
}

static void audit_row(struct log_view *view, const struct json_value *v)
{
	const struct json_value *req = json_get(v, "request"), *res = json_get(v, "response");
	size_t tn = 0, idn = 0;
	const char *time = json_string(json_get(v, "time"), &tn);
	const char *identity = json_string(json_get(req, "identity"), &idn);
	const char *ip = json_string(json_get(req, "ip"), NULL);
	const char *path = json_string(json_get(req, "path"), NULL);
	const char *code = json_number(json_get(res, "code"));
	const char *latency = json_number(json_get(res, "time"));
	char lat[32] = "";
	if (latency)
		format_latency(strtod(latency, NULL), lat, sizeof lat);
	if (!view->header_done) {
		printf("%-8s  %-6s  %-16s  %-15s  %-32s  %s\n", "Time", "Status", "Identity", "IP",
		       "API", "Latency");
		view->header_done = true;
	}
	/* Time of day from RFC 3339 ("…T15:04:05…"); identities shortened like git hashes. */
	char t_time[16], t_code[16], t_id[24], t_ip[64], t_path[512];
	printf("%-8.8s  %-6s  %-16s  %-15s  %-32s  %s\n",
	       term_safe(t_time, sizeof t_time, time && tn >= 19 ? time + 11 : "", 8),
	       term_safe(t_code, sizeof t_code, code, code ? strlen(code) : 0),
	       term_safe(t_id, sizeof t_id, identity, idn > 16 ? 16 : idn),
	       term_safe(t_ip, sizeof t_ip, ip, ip ? strlen(ip) : 0),
	       term_safe(t_path, sizeof t_path, path, path ? strlen(path) : 0), lat);
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct log_view *view = arg;
	if (len == 0)
		return 0;
	if (!view->table) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		return 0;
	}
	char err[64];
	struct json_value *v = json_parse(line, len, err, sizeof err);
	char safe[4096];
	if (!v || json_type(v) != JSON_OBJECT) {
		printf("%s\n", term_safe(safe, sizeof safe, line, len));
	} else if (view->audit) {
		audit_row(view, v);
	} else {
		size_t n = 0;
		const char *msg = json_string(json_get(v, "message"), &n);
		printf("%s\n", term_safe(safe, sizeof safe, msg, msg ? n : 0));
	}
	json_free(v);
	fflush(stdout);
	return 0;
}

int cmd_log(int argc, char **argv)
{
	bool audit = false, error = false, json = false;
	const struct cli_flag flags[] = {{"audit", 0, CLI_BOOL, &audit},
	                                 {"error", 0, CLI_BOOL, &error},
	                                 {"json", 0, CLI_BOOL, &json}};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, 3, true, "log", LOG_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	if (a.count > 0 || (audit && error)) {
		rc = cli_usage_error("log", a.count ? "too many arguments"
		                                    : "--audit and --error cannot be combined");
		goto out;
	}
	struct client *c = client_open_or_report(&a.client);
	if (!c) {
		rc = 1;
		goto out;
	}
	struct log_view view = {.table = !json && cli_stdout_is_terminal(), .audit = !error};
	struct client_reply reply;
	if (client_stream(c, error ? "/v1/log/error" : "/v1/log/audit", on_line, &view, &reply) < 0)
		rc = cli_fail("failed to follow the %s log: %s", error ? "error" : "audit",
		              reply.message);
	client_reply_free(&reply);
	client_close(c);
out:
	cli_args_free(&a);
	return rc;
}
