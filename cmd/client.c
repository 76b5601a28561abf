/*
 * client.c — libcurl HTTPS client for the kesc verbs (client.h).
 */
#include "cmd/client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/curl_loader.h"

#include "keystore/json.h"
#include "keystore/secmem.h"

#define CLIENT_DEFAULT_SERVER    "127.0.0.1:7373"
#define CLIENT_BODY_MAX          ((size_t)64 * 1024 * 1024)
#define CLIENT_LINE_MAX          ((size_t)1024 * 1024)
#define CLIENT_CONNECT_TIMEOUT_S 10L
#define CLIENT_REQUEST_TIMEOUT_S 60L
#define CLIENT_MAX_SERVERS       64

static const char *const ENV_SERVER[] = {"MINIO_KES_SERVER", "KES_SERVER", "MINIO_KMS_KES_ENDPOINT",
                                         NULL};
static const char *const ENV_CERT[] = {"MINIO_KES_CERT_FILE", "KES_CLIENT_CERT",
                                       "MINIO_KES_CLIENT_CERT", NULL};
static const char *const ENV_KEY[] = {"MINIO_KES_KEY_FILE", "KES_CLIENT_KEY",
                                      "MINIO_KES_CLIENT_KEY", NULL};
/* kesc extension: a CA file for the server certificate, as --ca. */
static const char *const ENV_CA[] = {"KESC_CA", NULL};
static const char *const ENV_API_KEY[] = {"MINIO_KES_API_KEY", "KES_API_KEY",
                                          "MINIO_KMS_KES_API_KEY", NULL};

struct client {
	char *urls[CLIENT_MAX_SERVERS];
	size_t url_count;
	size_t current; /* index of the server that answered last */
	const char *cert;
	const char *key;
	const char *ca;
	bool insecure;
	const char *enclave; /* -e: sent as ?enclave=, as MinIO's MINIO_KMS_KES_ENCLAVE is */
	CURL *curl;
	char curl_err[CURL_ERROR_SIZE];
};

static const char *env_first(const char *const names[])
{
	for (size_t i = 0; names[i]; i++) {
		const char *v = getenv(names[i]);
		if (v && *v)
			return v;
	}
	return NULL;
}

/* "host:port", "http://host:port" or "https://host:port/" → "https://host:port". */
static char *server_url(const char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char)*s))
		s++, len--;
	while (len > 0 && (isspace((unsigned char)s[len - 1]) || s[len - 1] == '/'))
		len--;
	if (len >= 7 && !strncmp(s, "http://", 7))
		s += 7, len -= 7;
	else if (len >= 8 && !strncmp(s, "https://", 8))
		s += 8, len -= 8;
	if (len == 0)
		return NULL;
	char *url = malloc(len + 9);
	if (url)
		snprintf(url, len + 9, "https://%.*s", (int)len, s);
	return url;
}

static int servers_parse(struct client *c, const char *list, char *err, size_t errlen)
{
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char *url = server_url(p, len);
		if (url) {
			if (c->url_count == CLIENT_MAX_SERVERS) {
				free(url);
				snprintf(err, errlen, "too many servers (at most %d)",
				         CLIENT_MAX_SERVERS);
				return -1;
			}
			c->urls[c->url_count++] = url;
		}
		p += len + (comma ? 1 : 0);
	}
	if (c->url_count == 0) {
		snprintf(err, errlen, "no server address in '%s'", list);
		return -1;
	}
	return 0;
}

static int credentials_load(struct client *c, char *err, size_t errlen)
{
	c->cert = env_first(ENV_CERT);
	c->key = env_first(ENV_KEY);
	if (env_first(ENV_API_KEY)) {
		if (!c->cert && !c->key) {
			snprintf(err, errlen, "%s", cli_message(CLI_MSG_API_KEY_UNSUPPORTED));
			return -1;
		}
		fprintf(stderr, "kesc: ignoring the API key in the environment: %s\n",
		        cli_message(CLI_MSG_API_KEY_UNSUPPORTED));
	}
	if (c->cert && !c->key) {
		snprintf(err, errlen, "%s", cli_message(CLI_MSG_CERT_WITHOUT_KEY));
		return -1;
	}
	if (c->key && !c->cert) {
		snprintf(err, errlen, "%s", cli_message(CLI_MSG_KEY_WITHOUT_CERT));
		return -1;
	}
	return 0;
}

struct client *client_open(const struct client_options *opt, char *err, size_t errlen)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return NULL;
	}
	struct client *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "%s", cli_message(CLI_MSG_OUT_OF_MEMORY));
		return NULL;
	}
	const char *servers = opt && opt->server ? opt->server : env_first(ENV_SERVER);
	if (servers_parse(c, servers ? servers : CLIENT_DEFAULT_SERVER, err, errlen) < 0 ||
	    credentials_load(c, err, errlen) < 0)
		goto fail;
	c->insecure = opt && opt->insecure;
	c->ca = opt && opt->ca ? opt->ca : env_first(ENV_CA);
	c->enclave = opt && opt->enclave && opt->enclave[0] ? opt->enclave : NULL;
	c->curl = curl_easy_init();
	if (!c->curl) {
		snprintf(err, errlen, "cannot initialise libcurl");
		goto fail;
	}
	return c;
fail:
	client_close(c);
	return NULL;
}

struct client *client_open_or_report(const struct client_options *opt)
{
	char err[512];
	struct client *c = client_open(opt, err, sizeof err);
	if (!c)
		cli_fail("%s", err);
	return c;
}

void client_close(struct client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->url_count; i++)
		free(c->urls[i]);
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c);
}

const char *client_server(const struct client *c)
{
	return c->urls[c->current];
}

void client_path(struct buf *out, const char *prefix, const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_append_str(out, prefix);
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf_append_char(out, (char)*p);
		} else {
			buf_append_char(out, '%');
			buf_append_char(out, hex[*p >> 4]);
			buf_append_char(out, hex[*p & 15]);
		}
	}
}

void client_reply_free(struct client_reply *reply)
{
	buf_free(&reply->body);
}

/* What one transfer needs to hand back to the callbacks. */
struct transfer {
	struct client *client;
	struct client_reply *reply;
	int (*on_open)(void *arg);
	int (*on_line)(void *arg, const char *line, size_t len);
	void *arg;
	struct buf line;
	bool stopped;
	bool opened;
};

/* The end of a response head ("\r\n") with a 2xx status: the stream is open. */
static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * n;
	long status = 0;
	if (t->on_open && !t->opened && len == 2 && data[0] == '\r' && data[1] == '\n' &&
	    curl_easy_getinfo(t->client->curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
	    status >= 200 && status < 300) {
		t->opened = true;
		if (t->on_open(t->arg)) {
			t->stopped = true;
			return 0;
		}
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
	struct transfer *t = userdata;
	size_t len = size * n;
	long status = 0;
	/* A status libcurl cannot tell is treated as an error reply: the body is kept whole. */
	if (t->on_line &&
	    curl_easy_getinfo(t->client->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 999;
	if (!t->on_line || status >= 300) {
		buf_append(&t->reply->body, data, len);
		return buf_failed(&t->reply->body) ? 0 : len;
	}
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n') {
			buf_append_char(&t->line, data[i]);
			if (buf_failed(&t->line))
				return 0;
			continue;
		}
		int stop = t->on_line(t->arg, t->line.len ? t->line.data : "", t->line.len);
		buf_reset(&t->line);
		if (stop) {
			t->stopped = true;
			return 0;
		}
	}
	return len;
}

static int options_apply(struct client *c, const char *url, const char *method, const char *body,
                         size_t body_len, struct curl_slist *headers, struct transfer *t)
{
	CURL *h = c->curl;
	curl_easy_reset(h);
	c->curl_err[0] = '\0';
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_URL, url) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT, t->on_line ? 0L : CLIENT_REQUEST_TIMEOUT_S) !=
	       CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, t) != CURLE_OK;
	if (t->on_open) {
		bad |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_HEADERDATA, t) != CURLE_OK;
	}
	bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "kesc") != CURLE_OK;
	if (c->cert) {
		bad |= curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_SSLKEY, c->key) != CURLE_OK;
	}
	if (c->ca)
		bad |= curl_easy_setopt(h, CURLOPT_CAINFO, c->ca) != CURLE_OK;
	if (c->insecure) {
		bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
	}
	if (!strcmp(method, "GET")) {
		bad |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	} else if (!strcmp(method, "DELETE")) {
		bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE") != CURLE_OK;
	} else {
		/* POST/PUT with a body that may be empty: always a Content-Length. */
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "") != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		                        (curl_off_t)(body ? body_len : 0)) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
	}
	return bad ? -1 : 0;
}

/* Reads {"message"} (or {"error"}, which wins when set, as kms-go does) out of an error
 * reply; any other body is shown as text. */
void client_reply_message(struct client_reply *r, const char *content_type)
{
	const char *body = r->body.len ? r->body.data : "";
	if (content_type && !strncmp(content_type, "application/json", 16)) {
		char jerr[64];
		struct json_value *v = json_parse(body, r->body.len, jerr, sizeof jerr);
		size_t n = 0;
		const char *msg = json_string(json_get(v, "error"), &n);
		if (!msg || n == 0)
			msg = json_string(json_get(v, "message"), &n);
		if (msg && n > 0) {
			snprintf(r->message, sizeof r->message, "%.*s", (int)n, msg);
			json_free(v);
			return;
		}
		json_free(v);
	}
	size_t n = r->body.len;
	while (n > 0 && isspace((unsigned char)body[n - 1]))
		n--;
	if (n == 0)
		snprintf(r->message, sizeof r->message, "the server replied with HTTP status %ld",
		         r->status);
	else
		snprintf(r->message, sizeof r->message, "%.*s", (int)n, body);
}

/* Connection-level failures: nothing reached the server, so another server may be tried. */
static bool retry_elsewhere(CURLcode rc)
{
	return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT ||
	       rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_SSL_CONNECT_ERROR ||
	       rc == CURLE_PEER_FAILED_VERIFICATION;
}

static void transport_message(struct client *c, const char *url, CURLcode rc,
                              struct client_reply *r)
{
	const char *detail = c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc);
	const char *hint = c->cert ? "" : cli_message(CLI_MSG_NO_CLIENT_CERT_HINT);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(r->message, sizeof r->message, "%s %s: %s",
		         cli_message(CLI_MSG_CONNECT_FAILED), url, detail);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(r->message, sizeof r->message, "%s: %s: %s", url,
		         cli_message(CLI_MSG_SERVER_CERT_UNTRUSTED), detail);
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		snprintf(r->message, sizeof r->message, "%s: %s: %s%s%s", url,
		         cli_message(CLI_MSG_TLS_FAILED), detail, *hint ? "; " : "", hint);
		break;
	case CURLE_SSL_CERTPROBLEM:
		snprintf(r->message, sizeof r->message,
		         "cannot use the client certificate '%s': %s", c->cert ? c->cert : "",
		         detail);
		break;
	default:
		snprintf(r->message, sizeof r->message, "%s: %s", url, detail);
		break;
	}
}

static int transfer_run(struct client *c, const char *method, const char *path, const char *body,
                        size_t body_len, struct transfer *t)
{
	struct client_reply *r = t->reply;
	struct curl_slist *headers = NULL, *tmp;
	int rc = -1;
	const char *const header_lines[] = {"Expect:", "Accept: application/json",
	                                    body ? "Content-Type: application/json" : NULL};
	for (size_t i = 0; i < 3 && header_lines[i]; i++) {
		if (!(tmp = curl_slist_append(headers, header_lines[i]))) {
			snprintf(r->message, sizeof r->message, "%s",
			         cli_message(CLI_MSG_OUT_OF_MEMORY));
			goto out;
		}
		headers = tmp;
	}
	for (size_t i = 0; i < c->url_count; i++) {
		size_t idx = (c->current + i) % c->url_count;
		struct buf url;
		buf_init(&url, 8192);
		buf_printf(&url, "%s%s", c->urls[idx], path);
		if (c->enclave) /* a kesc server with tenants: the admin's view of one */
			client_path(&url,
			            strchr(path, '?') ? "&enclave=" : "?enclave=", c->enclave);
		buf_reset(&r->body);
		buf_reset(&t->line);
		r->status = 0;
		CURLcode cc = CURLE_FAILED_INIT;
		if (!buf_failed(&url) &&
		    options_apply(c, url.data, method, body, body_len, headers, t) == 0)
			cc = curl_easy_perform(c->curl);
		buf_free(&url);
		if (curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK)
			r->status = 0; /* not a 2xx: reported below as a failure */
		if (cc == CURLE_WRITE_ERROR && t->stopped)
			cc = CURLE_OK;
		if (cc != CURLE_OK) {
			transport_message(c, c->urls[idx], cc, r);
			if (retry_elsewhere(cc))
				continue;
			goto out;
		}
		c->current = idx;
		if (r->status >= 200 && r->status < 300) {
			rc = 0;
		} else {
			char *ct = NULL;
			if (curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK)
				ct = NULL; /* then the body is shown as text */
			client_reply_message(r, ct);
		}
		goto out;
	}
out:
	curl_slist_free_all(headers);
	return rc;
}

int client_call(struct client *c, const char *method, const char *path, const char *body,
                size_t body_len, struct client_reply *reply)
{
	memset(reply, 0, sizeof *reply);
	buf_init(&reply->body, CLIENT_BODY_MAX);
	struct transfer t = {.client = c, .reply = reply};
	buf_init(&t.line, CLIENT_LINE_MAX);
	int rc = transfer_run(c, method, path, body, body_len, &t);
	buf_free(&t.line);
	return rc;
}

int client_stream(struct client *c, const char *path, int (*on_open)(void *arg),
                  int (*on_line)(void *arg, const char *line, size_t len), void *arg,
                  struct client_reply *reply)
{
	memset(reply, 0, sizeof *reply);
	buf_init(&reply->body, CLIENT_BODY_MAX);
	struct transfer t = {
	    .client = c, .reply = reply, .on_open = on_open, .on_line = on_line, .arg = arg};
	buf_init(&t.line, CLIENT_LINE_MAX);
	int rc = transfer_run(c, "GET", path, NULL, 0, &t);
	buf_free(&t.line);
	return rc;
}

int client_get_or_report(const struct client_options *opt, const char *prefix, const char *name,
                         struct client_reply *reply, const char *what)
{
	memset(reply, 0, sizeof *reply);
	struct client *c = client_open_or_report(opt);
	if (!c)
		return 1;
	struct buf path;
	buf_init(&path, 4096);
	if (name)
		client_path(&path, prefix, name);
	else
		buf_append_str(&path, prefix);
	int rc = 0;
	if (buf_failed(&path) || client_call(c, "GET", path.data, NULL, 0, reply) < 0) {
		const char *why = reply->message[0] ? reply->message : "invalid name";
		rc = what ? cli_fail("%s: %s", what, why) : cli_fail("%s", why);
	}
	buf_free(&path);
	client_close(c);
	return rc;
}
