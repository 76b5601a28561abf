/*
 * tls.h — the server's TLS settings built from the configuration: certificate and key, client
 * certificate policy, session tickets, and one mbedtls_ssl_config per event loop (each with
 * its own random generator, so loops never share a DRBG lock).
 *
 * TLS 1.2 only, ECDHE with AEAD suites. Client certificates follow KES (kes.md §2.3):
 *   tls.auth off (default): a certificate is required but its chain is not verified
 *                           (RequireAnyClientCert); the identity is the SPKI hash;
 *   tls.auth on:            the chain must verify against tls.ca (RequireAndVerifyClientCert);
 *   any api.*.skip_auth:    "require" becomes "request": a client without certificate is let
 *                           in and the API refuses it on protected routes.
 *
 * A tls_server is immutable once built and reference counted: a SIGHUP builds a new one for
 * new connections while established ones keep theirs.
 */
#ifndef KESC_SERVER_TLS_H
#define KESC_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <mbedtls/ssl.h>

#include "policy/identity.h"
#include "server/api.h"
#include "server/config.h"

struct tls_server;

/* Loads certificate, key (tls.password for encrypted PEM) and CA from cfg and builds nloops
 * configurations. NULL with the reason in err (KES's texts where KES has one). */
struct tls_server *tls_server_new(const struct config *cfg, bool any_skip_auth, unsigned nloops,
                                  char *err, size_t errlen);
void tls_server_retain(struct tls_server *t);
void tls_server_release(struct tls_server *t);

/* The configuration for event loop i (< nloops). */
const mbedtls_ssl_config *tls_server_conf(const struct tls_server *t, unsigned loop);
/* One-line description for the start-up banner (subject, SANs, expiry, client auth mode). */
const char *tls_server_summary(const struct tls_server *t);

enum tls_step { TLS_STEP_DONE = 0, TLS_STEP_WANT_READ, TLS_STEP_WANT_WRITE, TLS_STEP_FAIL };

/*
 * Advances the handshake of ssl as far as the socket allows. The client certificate policy is
 * enforced inside the handshake, before our Finished is sent, so a client without a required
 * certificate sees the handshake fail (as with Go's RequireAnyClientCert).
 */
enum tls_step tls_handshake(const struct tls_server *t, mbedtls_ssl_context *ssl,
                            bool *cert_checked);

/* After the handshake: identity (64 hex + NUL; "" when none) and what was wrong, if anything. */
void tls_peer_identity(mbedtls_ssl_context *ssl, char identity[IDENTITY_HEX_LEN + 1],
                       enum api_cert_problem *problem);

/* Whether a certificate has a DNS or IP subjectAltName (KES refuses to start otherwise). */
bool tls_cert_has_san(const mbedtls_x509_crt *crt);

/* Frees the process-wide entropy source (at exit, for leak checkers). */
void tls_cleanup(void);

#endif
