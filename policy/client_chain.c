/* client_chain.c — the identity of a client's certificate chain (client_chain.h). */
#include "policy/client_chain.h"

#include <mbedtls/pk.h>

enum client_chain_verdict client_chain_first(const mbedtls_x509_crt *chain)
{
	if (!chain || !chain->raw.p)
		return CLIENT_CHAIN_EMPTY;
	if (chain->ca_istrue)
		return CLIENT_CHAIN_CA_FIRST;
	size_t bits = mbedtls_pk_get_bitlen(&chain->pk);
	switch (mbedtls_pk_get_type(&chain->pk)) {
	case MBEDTLS_PK_RSA:
		return bits >= CLIENT_MIN_RSA_BITS ? CLIENT_CHAIN_OK : CLIENT_CHAIN_WEAK_KEY;
	case MBEDTLS_PK_ECKEY:
	case MBEDTLS_PK_ECDSA:
		return bits >= CLIENT_MIN_EC_BITS ? CLIENT_CHAIN_OK : CLIENT_CHAIN_WEAK_KEY;
	default:
		return CLIENT_CHAIN_WEAK_KEY;
	}
}

enum client_chain_verdict client_chain_identity(const mbedtls_x509_crt *chain,
                                                char out[IDENTITY_HEX_LEN + 1])
{
	out[0] = '\0';
	enum client_chain_verdict v = client_chain_first(chain);
	if (v != CLIENT_CHAIN_OK)
		return v;
	/* A second end-entity certificate can never be chain material (it cannot sign); KES
	 * answers such a client with its own error, and so do we. */
	for (const mbedtls_x509_crt *c = chain->next; c && c->raw.p; c = c->next)
		if (!c->ca_istrue)
			return CLIENT_CHAIN_SECOND_LEAF;
	if (identity_of_crt(chain, out) < 0) {
		out[0] = '\0';
		return CLIENT_CHAIN_EMPTY;
	}
	return CLIENT_CHAIN_OK;
}
