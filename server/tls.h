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
/* The server's own certificate (for its expiry in the metrics); lives as long as t. */
const mbedtls_x509_crt *tls_server_cert(const struct tls_server *t);
/* One-line description for the start-up banner (subject, SANs, expiry, client auth mode). */
const char *tls_server_summary(const struct tls_server *t);

enum tls_step {
	TLS_STEP_DONE = 0,
	TLS_STEP_WANT_READ,
	TLS_STEP_WANT_WRITE,
	TLS_STEP_FAIL,
	TLS_STEP_HEAVY, /* the next step is public-key work (see tls_handshake) */
};

/* Why a handshake failed (for the log and the metrics; tls_failure_text words it). */
enum tls_failure {
	TLS_FAILURE_NONE = 0,
	TLS_FAILURE_NO_CERT,          /* a certificate is required and none was sent */
	TLS_FAILURE_CA_CERT,          /* the first certificate is CA:TRUE: not an identity */
	TLS_FAILURE_WEAK_KEY,         /* RSA < 2048 bits, EC < 224 bits */
	TLS_FAILURE_UNTRUSTED,        /* tls.auth on: the chain does not verify against tls.ca */
	TLS_FAILURE_EXPIRED,          /* tls.auth on: expired or not yet valid */
	TLS_FAILURE_KEY_PROOF,        /* CertificateVerify does not match the first certificate */
	TLS_FAILURE_BAD_CERT,         /* the Certificate message did not parse */
	TLS_FAILURE_NO_COMMON_PARAMS, /* no common version, cipher suite or curve */
	TLS_FAILURE_ALERT,            /* the client aborted with a fatal alert */
	TLS_FAILURE_CLOSED,           /* the client went away mid-handshake */
	TLS_FAILURE_PROTOCOL,         /* anything else mbedTLS refused */
	TLS_FAILURE_COUNT
};
const char *tls_failure_text(enum tls_failure why);

/*
 * Advances the handshake of ssl as far as the socket allows. The client certificate policy is
 * enforced inside the handshake, before our Finished is sent, so a client without a required
 * certificate sees the handshake fail (as with Go's RequireAnyClientCert). On TLS_STEP_FAIL,
 * why says what went wrong.
 *
 * The identity is the first certificate of the client's chain, the only one whose key the
 * handshake proves. A first certificate that is CA:TRUE or has a weak key is treated as no
 * certificate at all; certificates after the first are chain material for tls.auth on only.
 */
enum tls_step tls_handshake(const struct tls_server *t, mbedtls_ssl_context *ssl,
                            bool *cert_checked, enum tls_failure *why, bool heavy_ok);
/*
 * With heavy_ok false, tls_handshake stops with TLS_STEP_HEAVY before a step of a full
 * handshake that does public-key work (our key exchange and its signature; the client's
 * certificate, key exchange and CertificateVerify), so that an event loop can hand the rest
 * to another thread; a resumed handshake never gets there. The caller may then run the rest
 * on any one thread at a time (the configuration's random generator is locked and the
 * signing key's tables are built in advance, see tls.c). tls_handshake_reads_next says
 * whether that step first needs input from the client.
 */
bool tls_handshake_reads_next(const mbedtls_ssl_context *ssl);

/* After the handshake: identity (64 hex + NUL; "" when none) and what was wrong, if anything. */
void tls_peer_identity(mbedtls_ssl_context *ssl, char identity[IDENTITY_HEX_LEN + 1],
                       enum api_cert_problem *problem);
/* The subject of the client's first certificate, during or after the handshake ("" if
 * none), for log lines about refused clients. */
void tls_peer_subject(const mbedtls_ssl_context *ssl, char *out, size_t outlen);

/* Whether a certificate has a DNS or IP subjectAltName (KES refuses to start otherwise). */
bool tls_cert_has_san(const mbedtls_x509_crt *crt);

/* Frees the process-wide entropy source (at exit, for leak checkers). */
void tls_cleanup(void);

#endif
