/*
 * client_chain.h — which certificate of a client's TLS chain is its identity.
 *
 * Only the FIRST certificate a client sends is proven: its CertificateVerify signature is
 * checked against that certificate's key and no other. So the identity is the first
 * certificate's SPKI hash, and nothing else: certificates after it are chain material for
 * tls.auth on, never an identity. A first certificate that is a CA (CA:TRUE) or carries a
 * weak key is no identity at all. KES instead skips CA certificates and takes the identity
 * from the next one, which lets anyone send [own CA certificate, victim's public certificate]
 * with their own key and be the victim; kesc deliberately differs.
 */
#ifndef KESC_POLICY_CLIENT_CHAIN_H
#define KESC_POLICY_CLIENT_CHAIN_H

#include <mbedtls/x509_crt.h>

#include "policy/identity.h"

/* Client keys weaker than these never become identities: Go's x509 parses no EC curve below
 * P-224, and RSA below 2048 bits is within reach of a determined attacker. */
#define CLIENT_MIN_RSA_BITS 2048
#define CLIENT_MIN_EC_BITS  224

enum client_chain_verdict {
	CLIENT_CHAIN_OK = 0,     /* out holds the first certificate's identity */
	CLIENT_CHAIN_EMPTY,      /* no certificate */
	CLIENT_CHAIN_CA_FIRST,   /* the first certificate is CA:TRUE */
	CLIENT_CHAIN_WEAK_KEY,   /* RSA < 2048 bits, EC < 224 bits, or another key type */
	CLIENT_CHAIN_SECOND_LEAF /* an end-entity certificate follows the first (KES refuses) */
};

/* Whether the first certificate of chain (NULL or empty = none) can be an identity at all;
 * looks at the first certificate only. */
enum client_chain_verdict client_chain_first(const mbedtls_x509_crt *chain);

/* The whole rule: client_chain_first, then no second end-entity certificate. On
 * CLIENT_CHAIN_OK out holds 64 hex characters + NUL, else "". */
enum client_chain_verdict client_chain_identity(const mbedtls_x509_crt *chain,
                                                char out[IDENTITY_HEX_LEN + 1]);

#endif
