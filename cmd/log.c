/*
 * log.c — `kesc log [--audit|--error] [--json]` (cmd/kes/log.go): follows the server's audit
 * or error log (/v1/log/audit, /v1/log/error; ndjson) until interrupted. As kes does: audit
 * events as a table under the header "Time Status Identity IP API Latency", error events as
 * their message, or with --json each event re-encoded as kms-go's type for it.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/client.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "keystore/json.h"

static const char LOG_USAGE[] =
    "Usage:\n    kesc log [options]\n\nOptions:\n" CLI_CLIENT_OPTIONS_USAGE
    "        --audit              Print audit logs. (default)\n"
    "        --error              Print error logs.\n"
    "        --json               Print log events as JSON.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "Examples:\n    $ kesc log\n    $ kesc log --error --json\n";

#define AUDIT_HEADER                                                                               \
	"Time        Status    Identity                IP                 API                    " \
	"           Latency"

struct log_view {
	bool json;
	bool audit;
	bool terminal;
	bool failed; /* an event could not be read: the stream was stopped */
};

/* Go's Duration of the audit "time" (nanoseconds, as kms-go decodes it), rounded as kes
 * rounds it for the table. */
static void format_latency(struct buf *out, int64_t ns)
{
	int64_t m = ns >= GO_SECOND             ? 100 * GO_MILLISECOND
	            : ns >= 10 * GO_MILLISECOND ? GO_MILLISECOND
	            : ns >= GO_MILLISECOND      ? 100 * GO_MICROSECOND
	            : ns >= 10 * GO_MICROSECOND ? GO_MICROSECOND
	                                        : 0;
	goformat_duration(out, m ? goformat_duration_round(ns, m) : ns);
}

/* net.IP's String of a decoded address: IPv4 (also IPv4-mapped IPv6) dotted, IPv6 in RFC
 * 5952 form; "" stays "" (kms-go's nil IP). -1 if it is not an address (kms-go fails). */
static int format_ip(const char *in, char *out, size_t outlen)
{
	unsigned char a[16];
	if (!*in) {
		out[0] = '\0';
		return 0;
	}
	if (inet_pton(AF_INET, in, a) == 1)
		return inet_ntop(AF_INET, a, out, (socklen_t)outlen) ? 0 : -1;
	if (inet_pton(AF_INET6, in, a) != 1)
		return -1;
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (!memcmp(a, mapped, 12))
		return inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen) ? 0 : -1;
	return inet_ntop(AF_INET6, a, out, (socklen_t)outlen) ? 0 : -1;
}

/* Copies a server-supplied string for a terminal: control characters (escape sequences a
 * hostile server could use to rewrite the screen) become '?'. Scripts get it as sent. */
static void append_safe(struct buf *out, const char *s, size_t n, bool terminal)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		buf_append_char(out, terminal && (c < 0x20 || c == 0x7f) ? '?' : (char)c);
	}
}

/* The first width characters (runes) of s, as lipgloss's MaxWidth cuts them. */
static size_t rune_prefix(const char *s, size_t n, size_t width)
{
	size_t i = 0, runes = 0;
	while (i < n && runes < width) {
		i++;
		while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		runes++;
	}
	return i;
}

/* A decoded audit event (kms-go's AuditEvent). */
struct audit_event {
	struct go_time time;
	char ip[64];
	const char *path, *identity;
	int64_t code, latency;
};

static int audit_decode(const struct json_value *v, struct audit_event *e)
{
	const struct json_value *req = json_get(v, "request"), *res = json_get(v, "response");
	const char *ip = cli_reply_string(req, "ip");
	e->path = cli_reply_string(req, "path");
	e->identity = cli_reply_string(req, "identity");
	if (!ip || !e->path || !e->identity || cli_reply_time(v, "time", &e->time) < 0)
		return -1;
	if (format_ip(ip, e->ip, sizeof e->ip) < 0)
		return cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE)), -1;
	const char *code = json_number(json_get(res, "code"));
	const char *latency = json_number(json_get(res, "time"));
	e->code = code ? strtoll(code, NULL, 10) : 0;
	e->latency = latency ? strtoll(latency, NULL, 10) : 0;
	return 0;
}

static void audit_json(struct buf *out, const struct audit_event *e)
{
	struct json_writer w;
	struct buf when;
	buf_init(&when, 64);
	goformat_time_json(&when, &e->time);
	json_writer_init(&w, out);
	json_object_begin(&w);
	json_key(&w, "time");
	json_write_string(&w, when.data ? when.data : "");
	json_key(&w, "request");
	json_object_begin(&w);
	json_key(&w, "ip");
	json_write_string(&w, e->ip);
	json_key(&w, "path");
	json_write_string(&w, e->path);
	json_key(&w, "identity");
	json_write_string(&w, e->identity);
	json_object_end(&w);
	json_key(&w, "response");
	json_object_begin(&w);
	json_key(&w, "code");
	json_write_int(&w, e->code);
	json_key(&w, "time");
	json_write_int(&w, e->latency);
	json_object_end(&w);
	json_object_end(&w);
	buf_append_char(out, '\n');
	buf_free(&when);
}

/* One table row, with kes's widths: status 5, identity cut to 20, IP 15, API 30. */
static void audit_row(struct buf *out, const struct audit_event *e, bool terminal)
{
	char code[24];
	snprintf(code, sizeof code, "%" PRId64, e->code);
	buf_printf(out, "%02d:%02d:%02d    ", e->time.hour, e->time.minute, e->time.second);
	goformat_pad(out, code, 5);
	buf_append_str(out, "     ");
	size_t id_len = strlen(e->identity);
	append_safe(out, e->identity, rune_prefix(e->identity, id_len, 20), terminal);
	buf_append_str(out, "    ");
	goformat_pad(out, e->ip[0] ? e->ip : "<unknown>", 15);
	buf_append_str(out, "    ");
	struct buf path;
	buf_init(&path, BUF_DEFAULT_MAX);
	append_safe(&path, e->path, strlen(e->path), terminal);
	goformat_pad(out, path.data ? path.data : "", 30);
	buf_free(&path);
	buf_append_str(out, "    ");
	format_latency(out, e->latency);
	buf_append_char(out, '\n');
}

static int on_open(void *arg)
{
	struct log_view *view = arg;
	if (view->audit && !view->json) {
		puts(AUDIT_HEADER);
		fflush(stdout);
	}
	return 0;
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct log_view *view = arg;
	if (len == 0)
		return 0;
	char err[64];
	struct json_value *v = json_parse(line, len, err, sizeof err);
	struct buf out;
	buf_init(&out, BUF_DEFAULT_MAX);
	int rc = 0;
	if (!v || json_type(v) != JSON_OBJECT) {
		rc = cli_fail("%s", cli_message(CLI_MSG_BAD_RESPONSE));
	} else if (view->audit) {
		struct audit_event e;
		if (audit_decode(v, &e) < 0) /* reported */
			rc = 1;
		else if (view->json)
			audit_json(&out, &e);
		else
			audit_row(&out, &e, view->terminal);
	} else {
		const char *msg = cli_reply_string(v, "message");
		if (!msg) {
			rc = 1;
		} else if (view->json) {
			struct json_writer w;
			json_writer_init(&w, &out);
			json_object_begin(&w);
			json_key(&w, "message");
			json_write_string(&w, msg);
			json_object_end(&w);
			buf_append_char(&out, '\n');
		} else {
			append_safe(&out, msg, strlen(msg), view->terminal);
			buf_append_char(&out, '\n');
		}
	}
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	fflush(stdout);
	buf_free(&out);
	json_free(v);
	view->failed |= rc != 0;
	return rc; /* a stream kesc cannot read ends, as kes's does */
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
	if (a.count > 0) {
		rc = cli_usage_error("log", "too many arguments");
		goto out;
	}
	if (audit && error) {
		rc = cli_fail("cannot display audit and error logs at the same time");
		goto out;
	}
	struct client *c = client_open_or_report(&a.client);
	if (!c) {
		rc = 1;
		goto out;
	}
	struct log_view view = {
	    .json = json, .audit = !error, .terminal = cli_stdout_is_terminal()};
	struct client_reply reply;
	if (client_stream(c, error ? "/v1/log/error" : "/v1/log/audit", on_open, on_line, &view,
	                  &reply) < 0)
		rc = cli_fail("failed to connect to %s log: %s", error ? "error" : "audit",
		              reply.message);
	else if (view.failed)
		rc = 1;
	client_reply_free(&reply);
	client_close(c);
out:
	cli_args_free(&a);
	return rc;
}
