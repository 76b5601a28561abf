/*
 * certgen.c — a fresh ECDSA P-256 key and a self-signed certificate for it, as `kesc identity
 * new` and `kesc server --dev` need them. The certificate is shaped like the ones KES's
 * tooling makes (128-bit random serial, CN, DNS/IP SANs, CA:false, digitalSignature and the
 * requested extended key usages), so Go, OpenSSL and mbedTLS peers all accept it.
 *
 * mbedTLS 2.28 has no helper for subjectAltName or extendedKeyUsage, so both extensions are
 * encoded here with the asn1write primitives (which write backwards from the buffer end).
 */
#include "server/certgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "keystore/bytes.h"
#include "keystore/secmem.h"
#include "policy/identity.h"

#define CERTGEN_DEFAULT_VALIDITY ((int64_t)720 * 3600)
#define CERTGEN_PEM_MAX          8192
#define CERTGEN_DER_MAX          4096
#define CERTGEN_SAN_MAX          4096
#define CERTGEN_MAX_NAMES        64
#define CERTGEN_CN_MAX           64 /* RFC 5280 ub-common-name */

/* Everything one run owns; released by certgen_state_free on every path. */
struct certgen_state {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_context key;
	mbedtls_x509write_cert crt;
	mbedtls_mpi serial;
	unsigned char key_der[CERTGEN_DER_MAX]; /* secret */
	unsigned char key_pem[CERTGEN_PEM_MAX]; /* secret */
	unsigned char crt_pem[CERTGEN_PEM_MAX];
	unsigned char san[CERTGEN_SAN_MAX];
	size_t san_len;
	unsigned char eku[64];
	size_t eku_len;
};

static void certgen_state_init(struct certgen_state *s)
{
	memset(s, 0, sizeof *s);
	mbedtls_entropy_init(&s->entropy);
	mbedtls_ctr_drbg_init(&s->drbg);
	mbedtls_pk_init(&s->key);
	mbedtls_x509write_crt_init(&s->crt);
	mbedtls_mpi_init(&s->serial);
}

static void certgen_state_free(struct certgen_state *s)
{
	mbedtls_mpi_free(&s->serial);
	mbedtls_x509write_crt_free(&s->crt);
	mbedtls_pk_free(&s->key);
	mbedtls_ctr_drbg_free(&s->drbg);
	mbedtls_entropy_free(&s->entropy);
	secure_zero(s->key_der, sizeof s->key_der);
	secure_zero(s->key_pem, sizeof s->key_pem);
}

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Writes one GeneralName ([tag] IMPLICIT value) in front of *p. Returns its length or < 0. */
static int san_write_name(unsigned char **p, unsigned char *start, int tag,
                          const unsigned char *value, size_t len)
{
	int ret, n = 0;
	if ((ret = mbedtls_asn1_write_raw_buffer(p, start, value, len)) < 0)
		return ret;
	n += ret;
	if ((ret = mbedtls_asn1_write_len(p, start, len)) < 0)
		return ret;
	n += ret;
	if ((ret = mbedtls_asn1_write_tag(
	         p, start, (unsigned char)(MBEDTLS_ASN1_CONTEXT_SPECIFIC | tag))) < 0)
		return ret;
	return n + ret;
}

/* A DNS SAN must be IA5 text a resolver could use: printable ASCII without blanks. */
static int dns_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

/* SEQUENCE OF GeneralName: dNSName [2] IA5String, iPAddress [7] OCTET STRING (4 or 16 bytes).
 * Written last-to-first so the certificate lists them in the order given. */
static int san_encode(struct certgen_state *s, const struct certgen_options *opt, char *err,
                      size_t errlen)
{
	unsigned char *start = s->san, *p = s->san + sizeof s->san;
	int ret;
	size_t total = 0;

	for (size_t i = opt->ip_count; i-- > 0;) {
		unsigned char addr[16];
		size_t alen = 4;
		if (inet_pton(AF_INET, opt->ips[i], addr) != 1) {
			alen = 16;
			if (inet_pton(AF_INET6, opt->ips[i], addr) != 1) {
				set_err(err, errlen, "invalid IP address '%s'", opt->ips[i]);
				return -1;
			}
		}
		if ((ret = san_write_name(&p, start, 7, addr, alen)) < 0)
			goto too_long;
		total += (size_t)ret;
	}
	for (size_t i = opt->dns_count; i-- > 0;) {
		if (!dns_name_valid(opt->dns[i])) {
			set_err(err, errlen, "invalid DNS name '%s'", opt->dns[i]);
			return -1;
		}
		ret = san_write_name(&p, start, 2, (const unsigned char *)opt->dns[i],
		                     strlen(opt->dns[i]));
		if (ret < 0)
			goto too_long;
		total += (size_t)ret;
	}
	if ((ret = mbedtls_asn1_write_len(&p, start, total)) < 0)
		goto too_long;
	total += (size_t)ret;
	if ((ret = mbedtls_asn1_write_tag(&p, start,
	                                  MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
		goto too_long;
	total += (size_t)ret;
	memmove(s->san, p, total);
	s->san_len = total;
	return 0;
too_long:
	set_err(err, errlen, "%s", "too many subject alternative names");
	return -1;
}

/* ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId. */
static int eku_encode(struct certgen_state *s, const struct certgen_options *opt)
{
	unsigned char *start = s->eku, *p = s->eku + sizeof s->eku;
	int ret;
	size_t total = 0;
	if (opt->client_auth) {
		if ((ret = mbedtls_asn1_write_oid(&p, start, MBEDTLS_OID_CLIENT_AUTH,
		                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH))) < 0)
			return ret;
		total += (size_t)ret;
	}
	if (opt->server_auth) {
		if ((ret = mbedtls_asn1_write_oid(&p, start, MBEDTLS_OID_SERVER_AUTH,
		                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))) < 0)
			return ret;
		total += (size_t)ret;
	}
	if ((ret = mbedtls_asn1_write_len(&p, start, total)) < 0)
		return ret;
	total += (size_t)ret;
	if ((ret = mbedtls_asn1_write_tag(&p, start,
	                                  MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) < 0)
		return ret;
	total += (size_t)ret;
	memmove(s->eku, p, total);
	s->eku_len = total;
	return 0;
}

/* Identity of the new public key, computed like identity.c does for a parsed certificate. */
static int key_identity(mbedtls_pk_context *key, char out[IDENTITY_HEX_LEN + 1])
{
	unsigned char der[512], sum[32];
	int len = mbedtls_pk_write_pubkey_der(key, der, sizeof der);
	if (len <= 0)
		return -1;
	if (mbedtls_sha256_ret(der + sizeof der - (size_t)len, (size_t)len, sum, 0) != 0)
		return -1;
	hex_encode(out, sum, sizeof sum);
	return 0;
}

/* "YYYYMMDDhhmmss" in UTC, as mbedtls_x509write_crt_set_validity wants. */
static int format_time(time_t t, char out[16])
{
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		return -1;
	return strftime(out, 16, "%Y%m%d%H%M%S", &tm) == 14 ? 0 : -1;
}

/* "CN=<name>" with ',' escaped. mbedTLS 2.28's name parser accepts no other escape, so a
 * backslash (which it would read as one) is refused here with a clear error. */
static int subject_string(const char *cn, char *out, size_t outlen)
{
	size_t n = 0, cn_len = strlen(cn);
	if (cn_len == 0 || cn_len > CERTGEN_CN_MAX)
		return -1;
	if (outlen < 4)
		return -1;
	memcpy(out, "CN=", 3);
	n = 3;
	for (size_t i = 0; i < cn_len; i++) {
		if ((unsigned char)cn[i] < 0x20 || cn[i] == 0x7f || cn[i] == '\\')
			return -1;
		if (n + 3 >= outlen)
			return -1;
		if (cn[i] == ',')
			out[n++] = '\\';
		out[n++] = cn[i];
	}
	out[n] = '\0';
	return 0;
}

static int rng_setup(struct certgen_state *s)
{
	static const unsigned char pers[] = "kesc certgen";
	return mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy, pers,
	                             sizeof pers - 1);
}

static int key_generate(struct certgen_state *s)
{
	int ret = mbedtls_pk_setup(&s->key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (ret != 0)
		return ret;
	return mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(s->key),
	                           mbedtls_ctr_drbg_random, &s->drbg);
}

/* 128 random bits with the top bit cleared, so the DER INTEGER stays ≤ 16 bytes, positive and
 * non-zero-length as RFC 5280 asks. */
static int serial_generate(struct certgen_state *s)
{
	unsigned char raw[16];
	int ret = mbedtls_ctr_drbg_random(&s->drbg, raw, sizeof raw);
	if (ret != 0)
		return ret;
	raw[0] &= 0x7f;
	return mbedtls_mpi_read_binary(&s->serial, raw, sizeof raw);
}

static int crt_fill(struct certgen_state *s, const struct certgen_options *opt, const char *subject,
                    char *err, size_t errlen)
{
	char not_before[16], not_after[16];
	int64_t valid = opt->valid_seconds > 0 ? opt->valid_seconds : CERTGEN_DEFAULT_VALIDITY;
	time_t now = time(NULL);
	if (valid > (int64_t)100 * 365 * 24 * 3600 || format_time(now, not_before) < 0 ||
	    format_time(now + (time_t)valid, not_after) < 0) {
		set_err(err, errlen, "%s", "invalid certificate validity");
		return -1;
	}
	mbedtls_x509write_crt_set_version(&s->crt, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&s->crt, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&s->crt, &s->key);
	mbedtls_x509write_crt_set_issuer_key(&s->crt, &s->key);
	if (mbedtls_x509write_crt_set_serial(&s->crt, &s->serial) != 0 ||
	    mbedtls_x509write_crt_set_validity(&s->crt, not_before, not_after) != 0 ||
	    mbedtls_x509write_crt_set_subject_name(&s->crt, subject) != 0 ||
	    mbedtls_x509write_crt_set_issuer_name(&s->crt, subject) != 0 ||
	    mbedtls_x509write_crt_set_basic_constraints(&s->crt, 0, -1) != 0 ||
	    mbedtls_x509write_crt_set_subject_key_identifier(&s->crt) != 0 ||
	    mbedtls_x509write_crt_set_key_usage(&s->crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE) != 0) {
		set_err(err, errlen, "%s", "cannot build certificate");
		return -1;
	}
	if (opt->dns_count + opt->ip_count > 0) {
		if (opt->dns_count + opt->ip_count > CERTGEN_MAX_NAMES) {
			set_err(err, errlen, "%s", "too many subject alternative names");
			return -1;
		}
		if (san_encode(s, opt, err, errlen) < 0)
			return -1;
		if (mbedtls_x509write_crt_set_extension(
		        &s->crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
		        MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0, s->san,
		        s->san_len) != 0) {
			set_err(err, errlen, "%s", "cannot build certificate");
			return -1;
		}
	}
	if (opt->server_auth || opt->client_auth) {
		if (eku_encode(s, opt) < 0 || mbedtls_x509write_crt_set_extension(
		                                  &s->crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
		                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
		                                  0, s->eku, s->eku_len) != 0) {
			set_err(err, errlen, "%s", "cannot build certificate");
			return -1;
		}
	}
	return 0;
}

/* Opens path for a fresh write. Without force an existing file is an error; with force it is
 * unlinked first so the new file gets our mode, not the old one's. */
static int open_new(const char *path, mode_t mode, bool force, char *err, size_t errlen)
{
	if (force && unlink(path) < 0 && errno != ENOENT) {
		set_err(err, errlen, "cannot replace '%s'", path);
		return -1;
	}
	/* O_EXCL already refuses a link at path; O_NOFOLLOW says so. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		if (errno == EEXIST)
			set_err(err, errlen, "'%s' already exists (use --force to overwrite)",
			        path);
		else
			set_err(err, errlen, "cannot create '%s'", path);
		return -1;
	}
	if (fchmod(fd, mode) < 0) { /* the umask may have narrowed or widened nothing; be exact */
		close(fd);
		unlink(path);
		set_err(err, errlen, "cannot set the mode of '%s'", path);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const unsigned char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return fsync(fd);
}

static int write_file(const char *path, mode_t mode, bool force, const unsigned char *data,
                      size_t len, char *err, size_t errlen)
{
	int fd = open_new(path, mode, force, err, errlen);
	if (fd < 0)
		return -1;
	int rc = write_all(fd, data, len);
	if (close(fd) < 0)
		rc = -1;
	if (rc < 0) {
		unlink(path);
		set_err(err, errlen, "cannot write '%s'", path);
		return -1;
	}
	return 0;
}

/* Parses the finished certificate back and takes the identity the way a server will, so what
 * we print is what the server computes. */
static int crt_identity(const unsigned char *pem, size_t len, char out[IDENTITY_HEX_LEN + 1])
{
	mbedtls_x509_crt parsed;
	mbedtls_x509_crt_init(&parsed);
	int rc = -1;
	if (mbedtls_x509_crt_parse(&parsed, pem, len + 1) == 0 &&
	    identity_of_crt(&parsed, out) == 0)
		rc = 0;
	mbedtls_x509_crt_free(&parsed);
	return rc;
}

/*
 * The private key as "EC PRIVATE KEY" PEM, byte for byte what mbedtls_pk_write_key_pem writes.
 * Done here because mbedTLS 2.28.3's version leaves the key's DER in a stack buffer and
 * mbedtls_pem_write_buffer leaves its base64 in freed heap, neither zeroed; here both live in
 * the state (zeroed on free) and in a zeroing struct buf.
 */
static int key_pem_write(struct certgen_state *s)
{
	static const char begin[] = "-----BEGIN EC PRIVATE KEY-----\n";
	static const char end[] = "-----END EC PRIVATE KEY-----\n";
	int len = mbedtls_pk_write_key_der(&s->key, s->key_der, sizeof s->key_der);
	if (len <= 0)
		return -1;
	const unsigned char *der = s->key_der + sizeof s->key_der - (size_t)len;
	struct buf pem;
	buf_init(&pem, sizeof s->key_pem - 1);
	buf_append_str(&pem, begin);
	for (size_t off = 0; off < (size_t)len; off += 48) { /* 64 base64 characters a line */
		size_t n = (size_t)len - off < 48 ? (size_t)len - off : 48;
		base64_encode(&pem, der + off, n);
		buf_append_char(&pem, '\n');
	}
	buf_append_str(&pem, end);
	int rc = buf_failed(&pem) ? -1 : 0;
	if (rc == 0)
		memcpy(s->key_pem, pem.data, pem.len + 1);
	buf_free(&pem);
	return rc;
}

/* Builds key and certificate PEMs in memory. */
static int certgen_build(struct certgen_state *s, const struct certgen_options *opt,
                         char identity[IDENTITY_HEX_LEN + 1], char *err, size_t errlen)
{
	char subject[3 + 2 * CERTGEN_CN_MAX + 1];
	char check[IDENTITY_HEX_LEN + 1];

	if (rng_setup(s) != 0 || key_generate(s) != 0 || serial_generate(s) != 0 ||
	    key_identity(&s->key, identity) < 0) {
		set_err(err, errlen, "%s", "cannot generate a private key");
		return -1;
	}
	const char *cn = opt->common_name && opt->common_name[0] ? opt->common_name : identity;
	if (subject_string(cn, subject, sizeof subject) < 0) {
		set_err(err, errlen, "invalid subject '%s' (1 to 64 printable characters, no '\\')",
		        cn);
		return -1;
	}
	if (crt_fill(s, opt, subject, err, errlen) < 0)
		return -1;
	if (mbedtls_x509write_crt_pem(&s->crt, s->crt_pem, sizeof s->crt_pem,
	                              mbedtls_ctr_drbg_random, &s->drbg) != 0 ||
	    key_pem_write(s) < 0) {
		set_err(err, errlen, "%s", "cannot encode the certificate");
		return -1;
	}
	if (crt_identity(s->crt_pem, strlen((const char *)s->crt_pem), check) < 0 ||
	    !ct_streq(check, identity)) {
		set_err(err, errlen, "%s", "the generated certificate does not parse back");
		return -1;
	}
	return 0;
}

int certgen_self_signed(const struct certgen_options *opt, const char *key_path,
                        const char *cert_path, bool force, char identity_out[65], char *err,
                        size_t errlen)
{
	char identity[IDENTITY_HEX_LEN + 1];
	int rc = -1;
	struct certgen_state *s = calloc(1, sizeof *s);
	if (!s) {
		set_err(err, errlen, "%s", "out of memory");
		return -1;
	}
	certgen_state_init(s);
	if (!opt || !key_path || !cert_path) {
		set_err(err, errlen, "%s", "missing key or certificate path");
		goto out;
	}
	/* Refuse early, before spending entropy, when the files are there and force is off. */
	if (!force && (access(key_path, F_OK) == 0 || access(cert_path, F_OK) == 0)) {
		set_err(err, errlen, "'%s' already exists (use --force to overwrite)",
		        access(key_path, F_OK) == 0 ? key_path : cert_path);
		goto out;
	}
	if (certgen_build(s, opt, identity, err, errlen) < 0)
		goto out;
	if (write_file(key_path, 0600, force, s->key_pem, strlen((const char *)s->key_pem), err,
	               errlen) < 0)
		goto out;
	if (write_file(cert_path, 0644, force, s->crt_pem, strlen((const char *)s->crt_pem), err,
	               errlen) < 0) {
		unlink(key_path); /* a key without its certificate is only confusing */
		goto out;
	}
	if (identity_out)
		memcpy(identity_out, identity, sizeof identity);
	rc = 0;
out:
	certgen_state_free(s);
	free(s);
	return rc;
}
