/* tls.c — mbedTLS server configuration and the client-certificate policy (tls.h). */
#include "server/tls.h"

#include "policy/client_chain.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "server/tls_load.h"

/* Handshake threads share a loop's configuration: its random generator, the session ticket
 * keys and an RSA key's blinding values are safe to share only under mbedTLS's own locks. */
#if !defined(MBEDTLS_THREADING_C)
#error "kesc needs mbedTLS built with MBEDTLS_THREADING_C (handshake threads share its contexts)"
#endif

/* ECDHE with AEAD only, as Go's defaults for TLS 1.2 (minus CBC). */
static const int CIPHERSUITES[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};
/* The server picks the first of these that the client offers. X25519 first: in mbedTLS 2.28
 * its key generation and shared secret (a fresh group per handshake, as TLS needs) cost less
 * than P-256's, and it is what Go's clients (MinIO, kms-go) offer first. */
static const mbedtls_ecp_group_id CURVES[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};
/* KES offers h2 as well; we speak HTTP/1.1 only, which every KES client falls back to. */
static const char *ALPN[] = {"http/1.1", NULL};

#define TICKET_LIFETIME_S 86400

static const char ERR_NO_SAN[] =
    "invalid TLS certificate: certificate does not contain any DNS or IP address as SAN";

struct tls_loop_conf {
	mbedtls_ssl_config conf;
	mbedtls_ctr_drbg_context drbg; /* locked by mbedTLS (MBEDTLS_THREADING_C) */
	/* A private copy of the key per loop, an EC key held as an ECDSA context (key_as_ecdsa)
	 * so that mbedTLS 2.28 keeps the comb table of the generator in it. The copy signs once
	 * when it is built (warm_key), so that the handshake threads, which may sign with one
	 * loop's key at the same time, only ever read it. */
	mbedtls_pk_context key;
};

struct tls_server {
	atomic_int refs;
	mbedtls_x509_crt cert;
	mbedtls_pk_context key;
	mbedtls_x509_crt ca;
	bool have_ca;
	char ca_source[400]; /* what verify_chain verifies against, for the banner */
	bool require_cert;   /* no certificate → handshake fails */
	bool verify_chain;   /* tls.auth on */
	mbedtls_ctr_drbg_context ticket_drbg;
	mbedtls_ssl_ticket_context ticket;
	unsigned nloops;
	struct tls_loop_conf *loops;
	char summary[1024];
};

static pthread_once_t g_entropy_once = PTHREAD_ONCE_INIT;
static mbedtls_entropy_context g_entropy;

static void entropy_init(void)
{
	mbedtls_entropy_init(&g_entropy);
}

void tls_cleanup(void)
{
	pthread_once(&g_entropy_once, entropy_init);
	mbedtls_entropy_free(&g_entropy);
}

static void mbed_error(char *err, size_t errlen, const char *what, const char *path, int rc)
{
	char text[160];
	mbedtls_strerror(rc, text, sizeof(text));
	snprintf(err, errlen, "%s '%s': %s", what, path ? path : "", text);
}

bool tls_cert_has_san(const mbedtls_x509_crt *crt)
{
	if (!(crt->ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME))
		return false;
	for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s && s->buf.p; s = s->next) {
		int type = s->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK;
		if (type == MBEDTLS_X509_SAN_DNS_NAME || type == MBEDTLS_X509_SAN_IP_ADDRESS)
			return true;
	}
	return false;
}

/* tls.auth off: any certificate is fine, the identity is what counts. */
static int verify_any(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	(void)arg;
	(void)crt;
	(void)depth;
	*flags = 0;
	return 0;
}

static int seed_drbg(mbedtls_ctr_drbg_context *drbg, const char *label)
{
	mbedtls_ctr_drbg_init(drbg);
	return mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, &g_entropy,
	                             (const unsigned char *)label, strlen(label));
}

static int load_credentials(struct tls_server *t, const struct config *cfg, char *err,
                            size_t errlen)
{
	if (!cfg->tls.cert || !cfg->tls.key) {
		snprintf(err, errlen, "no TLS certificate or private key specified");
		return -1;
	}
	if (tls_load_cert_file(&t->cert, cfg->tls.cert, "TLS certificate", err, errlen) < 0)
		return -1;
	if (!tls_cert_has_san(&t->cert)) {
		snprintf(err, errlen, "%s", ERR_NO_SAN);
		return -1;
	}
	/* Clients refuse an expired server certificate: starting with one only hides the
	 * outage until the first client connects. */
	if (tls_cert_seconds_left(&t->cert, time(NULL)) < 0) {
		const mbedtls_x509_time *to = &t->cert.valid_to;
		snprintf(err, errlen,
		         "TLS certificate '%s' expired on %04d-%02d-%02d %02d:%02d:%02d UTC",
		         cfg->tls.cert, to->year, to->mon, to->day, to->hour, to->min, to->sec);
		return -1;
	}
	const char *pw = cfg->tls.password && cfg->tls.password[0] ? cfg->tls.password : NULL;
	if (tls_load_key_file(&t->key, cfg->tls.key, pw, err, errlen) < 0)
		return -1;
	if (mbedtls_pk_check_pair(&t->cert.pk, &t->key) != 0) {
		snprintf(err, errlen, "TLS private key '%s' does not match the certificate '%s'",
		         cfg->tls.key, cfg->tls.cert);
		return -1;
	}
	if (cfg->tls.ca && cfg->tls.ca[0]) {
		if (tls_load_ca_path(&t->ca, cfg->tls.ca, err, errlen) < 0)
			return -1;
		t->have_ca = true;
		snprintf(t->ca_source, sizeof t->ca_source, "tls.ca (%s)", cfg->tls.ca);
	} else if (cfg->tls.auth == CONFIG_TLS_AUTH_ON) {
		/* As KES (Go's ClientCAs == nil): verify against the system trust store. */
		char where[sizeof t->ca_source - 64];
		int n = tls_load_system_roots(&t->ca, where, sizeof where, err, errlen);
		if (n < 0)
			return -1;
		t->have_ca = true;
		snprintf(t->ca_source, sizeof t->ca_source, "the system trust store (%s: %d CAs)",
		         where, n);
	}
	return 0;
}

static time_t x509_time_unix(const mbedtls_x509_time *x)
{
	struct tm tm = {.tm_year = x->year - 1900,
	                .tm_mon = x->mon - 1,
	                .tm_mday = x->day,
	                .tm_hour = x->hour,
	                .tm_min = x->min,
	                .tm_sec = x->sec};
	return timegm(&tm);
}

/*
 * Session tickets must not outlive the certificates they stand for. Go refuses to resume a
 * session whose client certificate has expired; a ticket carries only the first certificate,
 * so with tls.auth on a ticket is issued only when every certificate of the chain the client
 * sent stays valid for the ticket's whole lifetime, and every resumption checks the first
 * certificate's validity period again.
 */
static int ticket_write(void *arg, const mbedtls_ssl_session *session, unsigned char *start,
                        const unsigned char *end, size_t *tlen, uint32_t *lifetime)
{
	struct tls_server *t = arg;
	if (t->verify_chain) {
		time_t until = time(NULL) + TICKET_LIFETIME_S;
		for (const mbedtls_x509_crt *c = session->peer_cert; c && c->raw.p; c = c->next)
			if (x509_time_unix(&c->valid_to) < until)
				return MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED; /* send no ticket */
	}
	return mbedtls_ssl_ticket_write(&t->ticket, session, start, end, tlen, lifetime);
}

static int ticket_parse(void *arg, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
	struct tls_server *t = arg;
	int rc = mbedtls_ssl_ticket_parse(&t->ticket, session, buf, len);
	if (rc != 0)
		return rc;
	const mbedtls_x509_crt *first = session->peer_cert;
	if (first && first->raw.p &&
	    (mbedtls_x509_time_is_past(&first->valid_to) ||
	     mbedtls_x509_time_is_future(&first->valid_from)))
		return MBEDTLS_ERR_SSL_SESSION_TICKET_EXPIRED; /* a full handshake instead */
	return 0;
}

/*
 * A parsed EC key is an MBEDTLS_PK_ECKEY context, which mbedTLS 2.28 copies into a fresh ECDSA
 * context for every signature: the curve is loaded again and the comb table of the generator
 * (the larger half of a P-256 signature's cost) is recomputed and thrown away, per handshake.
 * An MBEDTLS_PK_ECDSA context signs in place and keeps the table. The parsed key is checked
 * against the certificate (load_credentials) before it is converted.
 */
static int key_as_ecdsa(mbedtls_pk_context *key)
{
	if (mbedtls_pk_get_type(key) != MBEDTLS_PK_ECKEY)
		return 0;
	mbedtls_pk_context ecdsa;
	mbedtls_pk_init(&ecdsa);
	int rc = mbedtls_pk_setup(&ecdsa, mbedtls_pk_info_from_type(MBEDTLS_PK_ECDSA));
	if (rc == 0)
		rc = mbedtls_ecdsa_from_keypair(mbedtls_pk_ec(ecdsa), mbedtls_pk_ec(*key));
	if (rc != 0) {
		mbedtls_pk_free(&ecdsa);
		return rc;
	}
	mbedtls_pk_free(key); /* zeroes the parsed copy */
	*key = ecdsa;
	return 0;
}

/* Builds the EC key's comb table now, on one thread (see struct tls_loop_conf). An RSA key
 * has no such table (its blinding values are updated under the context's lock). */
static int warm_key(struct tls_loop_conf *lc)
{
	if (!mbedtls_pk_can_do(&lc->key, MBEDTLS_PK_ECDSA))
		return 0;
	unsigned char hash[32] = {0}, sig[MBEDTLS_ECDSA_MAX_LEN];
	size_t len;
	return mbedtls_pk_sign(&lc->key, MBEDTLS_MD_SHA256, hash, sizeof(hash), sig, &len,
	                       mbedtls_ctr_drbg_random, &lc->drbg);
}

static int build_loop_conf(struct tls_server *t, const struct config *cfg, struct tls_loop_conf *lc,
                           char *err, size_t errlen)
{
	mbedtls_ssl_config *c = &lc->conf;
	int rc;
	const char *pw = cfg->tls.password && cfg->tls.password[0] ? cfg->tls.password : NULL;
	if ((rc = mbedtls_pk_parse_keyfile(&lc->key, cfg->tls.key, pw)) != 0) {
		mbed_error(err, errlen, "failed to load TLS private key", cfg->tls.key, rc);
		return -1;
	}
	if ((rc = key_as_ecdsa(&lc->key)) != 0 ||
	    (rc = seed_drbg(&lc->drbg, "kesc tls loop")) != 0 || (rc = warm_key(lc)) != 0 ||
	    (rc =
	         mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
	                                     MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
		mbed_error(err, errlen, "TLS setup failed", "", rc);
		return -1;
	}
	mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_ciphersuites(c, CIPHERSUITES);
	mbedtls_ssl_conf_curves(c, CURVES);
	mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &lc->drbg);
	mbedtls_ssl_conf_renegotiation(c, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
	if ((rc = mbedtls_ssl_conf_own_cert(c, &t->cert, &lc->key)) != 0 ||
	    (rc = mbedtls_ssl_conf_alpn_protocols(c, ALPN)) != 0) {
		mbed_error(err, errlen, "TLS setup failed", "", rc);
		return -1;
	}
	mbedtls_ssl_conf_session_tickets(c, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_conf_session_tickets_cb(c, ticket_write, ticket_parse, t);
	if (t->verify_chain) {
		/* OPTIONAL even when required: the policy is enforced in tls_handshake so that
		 * "request" (skip_auth) and "require" share one path. */
		mbedtls_ssl_conf_ca_chain(c, &t->ca, NULL);
		mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_OPTIONAL);
	} else {
		mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_OPTIONAL);
		mbedtls_ssl_conf_verify(c, verify_any, NULL);
	}
	return 0;
}

static void describe(struct tls_server *t)
{
	char subject[200] = "";
	int n = mbedtls_x509_dn_gets(subject, sizeof(subject), &t->cert.subject);
	if (n < 0)
		snprintf(subject, sizeof(subject), "?");
	const mbedtls_x509_time *to = &t->cert.valid_to;
	snprintf(t->summary, sizeof(t->summary),
	         "certificate %s, valid until %04d-%02d-%02d; client certificates %s%s%s", subject,
	         to->year, to->mon, to->day, t->require_cert ? "required" : "requested",
	         t->verify_chain ? " and verified against " : " (identity by public key)",
	         t->verify_chain ? t->ca_source : "");
}

struct tls_server *tls_server_new(const struct config *cfg, bool any_skip_auth, unsigned nloops,
                                  char *err, size_t errlen)
{
	pthread_once(&g_entropy_once, entropy_init);
	struct tls_server *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&t->refs, 1);
	mbedtls_x509_crt_init(&t->cert);
	mbedtls_pk_init(&t->key);
	mbedtls_x509_crt_init(&t->ca);
	mbedtls_ssl_ticket_init(&t->ticket);
	mbedtls_ctr_drbg_init(&t->ticket_drbg);
	t->verify_chain = cfg->tls.auth == CONFIG_TLS_AUTH_ON;
	t->require_cert = !any_skip_auth;
	if (load_credentials(t, cfg, err, errlen) < 0)
		goto fail;
	int rc;
	if ((rc = seed_drbg(&t->ticket_drbg, "kesc tls ticket")) != 0 ||
	    (rc = mbedtls_ssl_ticket_setup(&t->ticket, mbedtls_ctr_drbg_random, &t->ticket_drbg,
	                                   MBEDTLS_CIPHER_AES_256_GCM, TICKET_LIFETIME_S)) != 0) {
		mbed_error(err, errlen, "TLS session ticket setup failed", "", rc);
		goto fail;
	}
	t->loops = calloc(nloops ? nloops : 1, sizeof(*t->loops));
	if (!t->loops) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < nloops; i++) {
		mbedtls_ssl_config_init(&t->loops[i].conf);
		mbedtls_ctr_drbg_init(&t->loops[i].drbg);
		mbedtls_pk_init(&t->loops[i].key);
		t->nloops = i + 1;
		if (build_loop_conf(t, cfg, &t->loops[i], err, errlen) < 0)
			goto fail;
	}
	describe(t);
	return t;
fail:
	tls_server_release(t);
	return NULL;
}

void tls_server_retain(struct tls_server *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void tls_server_release(struct tls_server *t)
{
	if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (unsigned i = 0; i < t->nloops; i++) {
		mbedtls_ssl_config_free(&t->loops[i].conf);
		mbedtls_ctr_drbg_free(&t->loops[i].drbg);
		mbedtls_pk_free(&t->loops[i].key);
	}
	free(t->loops);
	mbedtls_ssl_ticket_free(&t->ticket);
	mbedtls_ctr_drbg_free(&t->ticket_drbg);
	mbedtls_x509_crt_free(&t->cert);
	mbedtls_pk_free(&t->key);
	mbedtls_x509_crt_free(&t->ca);
	free(t);
}

const mbedtls_ssl_config *tls_server_conf(const struct tls_server *t, unsigned loop)
{
	return &t->loops[loop % t->nloops].conf;
}

const mbedtls_x509_crt *tls_server_cert(const struct tls_server *t)
{
	return &t->cert;
}

const char *tls_server_summary(const struct tls_server *t)
{
	return t->summary;
}

/* The certificate the client sent in this handshake (or that its ticket carries). */
static const mbedtls_x509_crt *negotiated_peer(const mbedtls_ssl_context *ssl)
{
	if (ssl->session_negotiate)
		return ssl->session_negotiate->peer_cert;
	return mbedtls_ssl_get_peer_cert(ssl);
}

/* Whether the first certificate can be an identity (client_chain.h: only its key is
 * proven, so only it counts). */
static enum tls_failure first_cert_problem(const mbedtls_x509_crt *first)
{
	switch (client_chain_first(first)) {
	case CLIENT_CHAIN_OK:
	case CLIENT_CHAIN_SECOND_LEAF:
		return TLS_FAILURE_NONE;
	case CLIENT_CHAIN_CA_FIRST:
		return TLS_FAILURE_CA_CERT;
	case CLIENT_CHAIN_WEAK_KEY:
		return TLS_FAILURE_WEAK_KEY;
	case CLIENT_CHAIN_EMPTY:
	default:
		return TLS_FAILURE_NO_CERT;
	}
}

static enum tls_failure chain_failure(uint32_t flags)
{
	if (flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE))
		return TLS_FAILURE_EXPIRED;
	return TLS_FAILURE_UNTRUSTED;
}

/* Applies the client certificate policy once the client's Certificate message was read (or
 * the session was restored from a ticket). */
static enum tls_failure client_cert_problem(const struct tls_server *t,
                                            const mbedtls_ssl_context *ssl)
{
	const mbedtls_x509_crt *first = negotiated_peer(ssl);
	enum tls_failure problem = first_cert_problem(first);
	if (problem != TLS_FAILURE_NONE) {
		/* A certificate that cannot be an identity is no certificate: where requests
		 * without one are let in (skip_auth), the API answers them as such. */
		return t->require_cert ? problem : TLS_FAILURE_NONE;
	}
	if (t->verify_chain) {
		uint32_t flags = ssl->session_negotiate ? ssl->session_negotiate->verify_result
		                                        : mbedtls_ssl_get_verify_result(ssl);
		if (flags != 0)
			return chain_failure(flags);
	}
	return TLS_FAILURE_NONE;
}

/* What a failed mbedtls_ssl_handshake_step says about the peer. */
static enum tls_failure step_failure(int rc)
{
	switch (rc) {
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
	case MBEDTLS_ERR_NET_CONN_RESET:
	case MBEDTLS_ERR_SSL_CONN_EOF:
		return TLS_FAILURE_CLOSED;
	case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE_VERIFY:
		return TLS_FAILURE_KEY_PROOF;
	case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE:
		return TLS_FAILURE_BAD_CERT;
	case MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN:
	case MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION:
	case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE:
		return TLS_FAILURE_NO_COMMON_PARAMS;
	default:
		return rc == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE ? TLS_FAILURE_ALERT
		                                                 : TLS_FAILURE_PROTOCOL;
	}
}

/* States of a full handshake whose step does public-key work: writing ServerKeyExchange
 * (ECDHE key generation and its signature), then reading the client's Certificate (parsing,
 * and the chain's signatures with tls.auth on), ClientKeyExchange (the shared secret) and
 * CertificateVerify (checking its signature). The states between them are cheap, and a
 * resumed handshake goes from ServerHello straight to ChangeCipherSpec. */
static bool state_is_heavy(int state)
{
	return state >= MBEDTLS_SSL_SERVER_KEY_EXCHANGE && state <= MBEDTLS_SSL_CERTIFICATE_VERIFY;
}

bool tls_handshake_reads_next(const mbedtls_ssl_context *ssl)
{
	return ssl->state >= MBEDTLS_SSL_CLIENT_CERTIFICATE &&
	       ssl->state <= MBEDTLS_SSL_CLIENT_FINISHED;
}

enum tls_step tls_handshake(const struct tls_server *t, mbedtls_ssl_context *ssl,
                            bool *cert_checked, enum tls_failure *why, bool heavy_ok)
{
	*why = TLS_FAILURE_NONE;
	while (ssl->state != MBEDTLS_SSL_HANDSHAKE_OVER) {
		if (!heavy_ok && state_is_heavy(ssl->state))
			return TLS_STEP_HEAVY;
		int rc = mbedtls_ssl_handshake_step(ssl);
		if (rc == MBEDTLS_ERR_SSL_WANT_READ)
			return TLS_STEP_WANT_READ;
		if (rc == MBEDTLS_ERR_SSL_WANT_WRITE)
			return TLS_STEP_WANT_WRITE;
		if (rc != 0) {
			*why = step_failure(rc);
			return TLS_STEP_FAIL;
		}
		if (!*cert_checked && ssl->state > MBEDTLS_SSL_CLIENT_CERTIFICATE) {
			*cert_checked = true;
			enum tls_failure problem = client_cert_problem(t, ssl);
			if (problem != TLS_FAILURE_NONE) {
				/* Best effort: the socket may not take the alert, we close anyway.
				 */
				(void)mbedtls_ssl_send_alert_message(
				    ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
				    problem == TLS_FAILURE_EXPIRED
				        ? MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED
				    : problem == TLS_FAILURE_NO_CERT
				        ? MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE
				        : MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
				*why = problem;
				return TLS_STEP_FAIL;
			}
		}
	}
	return TLS_STEP_DONE;
}

const char *tls_failure_text(enum tls_failure why)
{
	switch (why) {
	case TLS_FAILURE_NONE:
		return "no failure";
	case TLS_FAILURE_NO_CERT:
		return "no client certificate";
	case TLS_FAILURE_CA_CERT:
		return "the first client certificate is a CA certificate";
	case TLS_FAILURE_WEAK_KEY:
		return "client key too weak (RSA below 2048 bits or EC below 224 bits)";
	case TLS_FAILURE_UNTRUSTED:
		return "client certificate not signed by a trusted CA (tls.ca)";
	case TLS_FAILURE_EXPIRED:
		return "client certificate expired or not yet valid";
	case TLS_FAILURE_KEY_PROOF:
		return "client did not prove the key of its certificate";
	case TLS_FAILURE_BAD_CERT:
		return "malformed client certificate";
	case TLS_FAILURE_NO_COMMON_PARAMS:
		return "no common TLS version or cipher suite";
	case TLS_FAILURE_ALERT:
		return "client sent a fatal alert";
	case TLS_FAILURE_CLOSED:
		return "connection closed during the handshake";
	case TLS_FAILURE_PROTOCOL:
	default:
		return "TLS protocol error";
	}
}

void tls_peer_subject(const mbedtls_ssl_context *ssl, char *out, size_t outlen)
{
	const mbedtls_x509_crt *first = negotiated_peer(ssl);
	if (!outlen)
		return;
	out[0] = '\0';
	if (first && first->raw.p && mbedtls_x509_dn_gets(out, outlen, &first->subject) < 0)
		out[0] = '\0';
}

void tls_peer_identity(mbedtls_ssl_context *ssl, char identity[IDENTITY_HEX_LEN + 1],
                       enum api_cert_problem *problem)
{
	switch (client_chain_identity(mbedtls_ssl_get_peer_cert(ssl), identity)) {
	case CLIENT_CHAIN_OK:
		*problem = API_CERT_OK;
		break;
	case CLIENT_CHAIN_SECOND_LEAF:
		*problem = API_CERT_MULTIPLE;
		break;
	default:
		*problem = API_CERT_NONE;
		break;
	}
}
