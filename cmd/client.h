/*
 * client.h — the HTTPS client the kesc verbs use to call a kesc or KES server (kes.md §1).
 *
 * Where to connect and with which certificate comes from the environment, as with KES's CLI
 * (first variable set wins):
 *   server:      MINIO_KES_SERVER, KES_SERVER, MINIO_KMS_KES_ENDPOINT (comma list; "http://"
 *                is stripped and "https://" added; default 127.0.0.1:7373), or -s/--server
 *   certificate: MINIO_KES_CERT_FILE, KES_CLIENT_CERT, MINIO_KES_CLIENT_CERT
 *   private key: MINIO_KES_KEY_FILE, KES_CLIENT_KEY, MINIO_KES_CLIENT_KEY
 *   CA file:     KESC_CA (kesc extension; --ca wins), else the system trust store
 * KES API keys (MINIO_KES_API_KEY, KES_API_KEY, MINIO_KMS_KES_API_KEY) need Ed25519, which
 * kesc's TLS stack cannot do: they are refused with a clear message.
 *
 * Servers are tried in order; the next one is tried only when a connection could not be
 * established, so a request is never sent twice.
 */
#ifndef KESC_CMD_CLIENT_H
#define KESC_CMD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "cmd/cli.h"
#include "keystore/bytes.h"

struct client;

struct client_reply {
	long status;       /* HTTP status; 0 if no response was received */
	struct buf body;   /* response body (zeroed on free: it may carry plaintext) */
	char message[512]; /* on failure: the server's {"message"} or the transport error */
};

/* Reads the environment, applies opt (may be NULL). NULL with a reason in err on failure. */
struct client *client_open(const struct client_options *opt, char *err, size_t errlen);
void client_close(struct client *c);

/*
 * One request. path is the escaped URL path ("/v1/key/create/my-key"); body may be NULL.
 * Returns 0 on a 2xx reply; -1 otherwise, with reply->message set to what the user should
 * read (the server's message for HTTP errors, else the connection problem). The caller frees
 * the reply with client_reply_free in both cases.
 */
int client_call(struct client *c, const char *method, const char *path, const char *body,
                size_t body_len, struct client_reply *reply);
void client_reply_free(struct client_reply *reply);
/* Sets reply->message from an error reply's body and Content-Type: {"error"} (when set) or
 * {"message"} of a JSON body as kms-go reads them, else the body text, else the status. */
void client_reply_message(struct client_reply *reply, const char *content_type);

/* A streaming GET (the log routes): on_open (may be NULL) is called once when the server
 * accepted the stream (2xx head received, before any line); on_line gets each '\n'-terminated
 * line without the newline; returning non-zero from either stops the stream. Returns 0 when
 * the server ends the stream or a callback stopped it, -1 with reply->message set otherwise. */
int client_stream(struct client *c, const char *path, int (*on_open)(void *arg),
                  int (*on_line)(void *arg, const char *line, size_t len), void *arg,
                  struct client_reply *reply);

/* client_open for a verb: prints "Error: <reason>" and returns NULL on failure. */
struct client *client_open_or_report(const struct client_options *opt);

/*
 * The one-request shape of most verbs: opens a client from opt, GETs prefix followed by the
 * escaped name (prefix alone when name is NULL) and closes the client. On failure prints
 * "Error: <what>: <reason>" (or "Error: <reason>" when what is NULL) and returns 1, else 0.
 * reply is always initialised; free it with client_reply_free.
 */
int client_get_or_report(const struct client_options *opt, const char *prefix, const char *name,
                         struct client_reply *reply, const char *what);

/* The server URL the last successful request went to ("https://127.0.0.1:7373"). */
const char *client_server(const struct client *c);

/* Appends prefix and name percent-escaped as Go's url.PathEscape does for KES names
 * (everything but A-Z a-z 0-9 - . _ ~ is escaped, so '*' becomes %2A). */
void client_path(struct buf *out, const char *prefix, const char *name);

#endif
