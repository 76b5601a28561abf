/* test_certgen.c — the self-signed certificates of `kesc identity new` and `kesc server --dev`:
 * parsed back with mbedTLS, their SANs, usages, validity, identity and key file checked. */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "check.h"
#include "policy/identity.h"
#include "server/certgen.h"

static char dir[] = "/tmp/kesc-certgen-XXXXXX";
static char key_path[256], crt_path[256];

static void paths(const char *name)
{
	snprintf(key_path, sizeof key_path, "%s/%s.key", dir, name);
	snprintf(crt_path, sizeof crt_path, "%s/%s.crt", dir, name);
}

/* Collects the dNSName and iPAddress entries of the subjectAltName extension by walking the
 * raw extensions (mbedTLS 2.28 lists only DNS names in crt->subject_alt_names). */
struct sans {
	char dns[8][64];
	int dns_count;
	unsigned char ip[8][16];
	size_t ip_len[8];
	int ip_count;
};

static int find_san(const mbedtls_x509_crt *crt, struct sans *out)
{
	unsigned char *p = crt->v3_ext.p, *end = p + crt->v3_ext.len;
	size_t len;
	memset(out, 0, sizeof *out);
	/* v3_ext starts inside the [3] EXPLICIT wrapper, at the Extensions SEQUENCE. */
	if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
	    0)
		return -1;
	while (p < end) {
		unsigned char *ext_end;
		if (mbedtls_asn1_get_tag(&p, end, &len,
		                         MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
			return -1;
		ext_end = p + len;
		if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OID) != 0)
			return -1;
		int is_san = len == MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME) &&
		             memcmp(p, MBEDTLS_OID_SUBJECT_ALT_NAME, len) == 0;
		p += len;
		if (!is_san) {
			p = ext_end;
			continue;
		}
		int critical = 0;
		if (mbedtls_asn1_get_bool(&p, ext_end, &critical) != 0 && critical)
			return -1;
		if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0 ||
		    mbedtls_asn1_get_tag(&p, ext_end, &len,
		                         MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
			return -1;
		while (p < ext_end) {
			unsigned char tag = *p++;
			if (mbedtls_asn1_get_len(&p, ext_end, &len) != 0)
				return -1;
			if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2) && out->dns_count < 8 &&
			    len < 64)
				memcpy(out->dns[out->dns_count++], p, len);
			else if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && out->ip_count < 8 &&
			         len <= 16) {
				memcpy(out->ip[out->ip_count], p, len);
				out->ip_len[out->ip_count++] = len;
			} else
				return -1;
			p += len;
		}
		return 0;
	}
	return -1;
}

static time_t x509_time_to_epoch(const mbedtls_x509_time *t)
{
	struct tm tm = {0};
	tm.tm_year = t->year - 1900;
	tm.tm_mon = t->mon - 1;
	tm.tm_mday = t->day;
	tm.tm_hour = t->hour;
	tm.tm_min = t->min;
	tm.tm_sec = t->sec;
	return timegm(&tm);
}

static void test_server_and_client_cert(void)
{
	const char *dns[] = {"localhost", "kes.example.net"};
	const char *ips[] = {"127.0.0.1", "::1"};
	struct certgen_options opt = {
	    .common_name = "my-app, inc",
	    .dns = dns,
	    .dns_count = 2,
	    .ips = ips,
	    .ip_count = 2,
	    .valid_seconds = 3600,
	    .server_auth = true,
	    .client_auth = true,
	};
	char identity[65] = "", from_file[65] = "", err[256] = "";
	paths("both");
	time_t before = time(NULL);
	CHECK_EQ_INT(
	    certgen_self_signed(&opt, key_path, crt_path, false, identity, err, sizeof err), 0);
	CHECK_EQ_INT(identity_is_valid(identity), 1);
	CHECK_EQ_INT(identity_of_cert_file(crt_path, from_file, err, sizeof err), 0);
	CHECK_EQ_STR(identity, from_file);

	struct stat st;
	CHECK_EQ_INT(stat(key_path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);

	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	CHECK_EQ_INT(mbedtls_x509_crt_parse_file(&crt, crt_path), 0);
	CHECK_EQ_INT(crt.version, 3);
	CHECK_EQ_INT(crt.ca_istrue, 0);
	CHECK(crt.ext_types & MBEDTLS_X509_EXT_BASIC_CONSTRAINTS);
	CHECK(crt.ext_types & MBEDTLS_X509_EXT_KEY_USAGE);
	CHECK_EQ_INT(crt.key_usage, MBEDTLS_X509_KU_DIGITAL_SIGNATURE);
	CHECK_EQ_INT(mbedtls_x509_crt_check_extended_key_usage(
	                 &crt, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
	             0);
	CHECK_EQ_INT(mbedtls_x509_crt_check_extended_key_usage(
	                 &crt, MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)),
	             0);
	CHECK_EQ_INT(mbedtls_pk_get_type(&crt.pk), MBEDTLS_PK_ECKEY);
	CHECK_EQ_INT(mbedtls_pk_get_bitlen(&crt.pk), 256);
	CHECK(crt.serial.len >= 8 && crt.serial.len <= 16);

	/* Subject CN with the comma kept, issuer = subject. */
	char name[256];
	CHECK(mbedtls_x509_dn_gets(name, sizeof name, &crt.subject) > 0);
	CHECK_EQ_STR(name, "CN=my-app\\, inc"); /* dn_gets escapes the comma */
	CHECK_EQ_INT(crt.issuer_raw.len, crt.subject_raw.len);
	CHECK_MEM(crt.issuer_raw.p, crt.subject_raw.p, crt.subject_raw.len);

	struct sans sans;
	CHECK_EQ_INT(find_san(&crt, &sans), 0);
	CHECK_EQ_INT(sans.dns_count, 2);
	CHECK_EQ_STR(sans.dns[0], "localhost");
	CHECK_EQ_STR(sans.dns[1], "kes.example.net");
	CHECK_EQ_INT(sans.ip_count, 2);
	CHECK_EQ_INT(sans.ip_len[0], 4);
	CHECK_MEM(sans.ip[0], "\x7f\x00\x00\x01", 4);
	CHECK_EQ_INT(sans.ip_len[1], 16);
	CHECK_MEM(sans.ip[1], "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);

	time_t from = x509_time_to_epoch(&crt.valid_from), to = x509_time_to_epoch(&crt.valid_to);
	CHECK(from >= before - 1 && from <= time(NULL) + 1);
	CHECK_EQ_INT(to - from, 3600);

	/* Self-signed: the signature verifies with the certificate's own key. */
	unsigned char hash[32];
	CHECK_EQ_INT(
	    mbedtls_md(mbedtls_md_info_from_type(crt.sig_md), crt.tbs.p, crt.tbs.len, hash), 0);
	CHECK_EQ_INT(mbedtls_pk_verify(&crt.pk, crt.sig_md, hash, 32, crt.sig.p, crt.sig.len), 0);

	/* The private key file belongs to the certificate. */
	mbedtls_pk_context key;
	mbedtls_pk_init(&key);
	CHECK_EQ_INT(mbedtls_pk_parse_keyfile(&key, key_path, NULL), 0);
	CHECK_EQ_INT(mbedtls_pk_check_pair(&crt.pk, &key), 0);
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&crt);
}

static void test_refuses_overwrite(void)
{
	struct certgen_options opt = {.client_auth = true};
	char first[65] = "", second[65] = "", now[65] = "", err[256] = "";
	paths("overwrite");
	CHECK_EQ_INT(certgen_self_signed(&opt, key_path, crt_path, false, first, err, sizeof err),
	             0);
	CHECK_EQ_INT(certgen_self_signed(&opt, key_path, crt_path, false, second, err, sizeof err),
	             -1);
	CHECK(strstr(err, "already exists") != NULL);
	CHECK_EQ_INT(identity_of_cert_file(crt_path, now, err, sizeof err), 0);
	CHECK_EQ_STR(now, first);

	/* Only the certificate present: still refused, and no key appears. */
	unlink(key_path);
	CHECK_EQ_INT(certgen_self_signed(&opt, key_path, crt_path, false, second, err, sizeof err),
	             -1);
	CHECK(access(key_path, F_OK) != 0);

	/* force replaces both, with a new key, and the key file gets 0600 even if it was 0644. */
	FILE *f = fopen(key_path, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	CHECK_EQ_INT(chmod(key_path, 0644), 0);
	CHECK_EQ_INT(certgen_self_signed(&opt, key_path, crt_path, true, second, err, sizeof err),
	             0);
	CHECK(strcmp(first, second) != 0);
	struct stat st;
	CHECK_EQ_INT(stat(key_path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(identity_of_cert_file(crt_path, now, err, sizeof err), 0);
	CHECK_EQ_STR(now, second);
}

static void test_default_subject_is_identity(void)
{
	struct certgen_options opt = {.client_auth = true};
	char identity[65] = "", err[256] = "", name[256];
	paths("default-cn");
	CHECK_EQ_INT(
	    certgen_self_signed(&opt, key_path, crt_path, false, identity, err, sizeof err), 0);
	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	CHECK_EQ_INT(mbedtls_x509_crt_parse_file(&crt, crt_path), 0);
	CHECK(mbedtls_x509_dn_gets(name, sizeof name, &crt.subject) > 0);
	CHECK(strncmp(name, "CN=", 3) == 0 && strcmp(name + 3, identity) == 0);
	/* Client only: serverAuth not granted; no SAN extension at all. */
	CHECK(mbedtls_x509_crt_check_extended_key_usage(
	          &crt, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) != 0);
	CHECK((crt.ext_types & MBEDTLS_X509_EXT_SUBJECT_ALT_NAME) == 0);
	/* Default validity is 720h. */
	CHECK_EQ_INT(x509_time_to_epoch(&crt.valid_to) - x509_time_to_epoch(&crt.valid_from),
	             720 * 3600);
	mbedtls_x509_crt_free(&crt);
}

/* The key file is written by kesc's own PEM encoder (which zeroes its buffers): it must be
 * byte for byte what mbedtls_pk_write_key_pem makes of the same key, so every tool reads it. */
static void test_key_pem_matches_mbedtls(void)
{
	struct certgen_options opt = {.client_auth = true};
	char err[256] = "";
	paths("pem");
	CHECK_EQ_INT(certgen_self_signed(&opt, key_path, crt_path, false, NULL, err, sizeof err),
	             0);
	FILE *f = fopen(key_path, "rb");
	unsigned char file[4096] = {0}, again[4096] = {0};
	size_t n = f ? fread(file, 1, sizeof file - 1, f) : 0;
	if (f)
		fclose(f);
	mbedtls_pk_context pk;
	mbedtls_pk_init(&pk);
	CHECK_EQ_INT(mbedtls_pk_parse_key(&pk, file, n + 1, NULL, 0), 0);
	CHECK_EQ_INT(mbedtls_pk_write_key_pem(&pk, again, sizeof again), 0);
	CHECK_EQ_INT(strlen((char *)again), n);
	CHECK(strcmp((char *)file, (char *)again) == 0);
	CHECK(strncmp((char *)file, "-----BEGIN EC PRIVATE KEY-----\n", 31) == 0);
	mbedtls_pk_free(&pk);
}

static void test_rejects_bad_input(void)
{
	const char *bad_ip[] = {"300.1.1.1"};
	const char *bad_dns[] = {"has space"};
	char err[256] = "";
	struct certgen_options opt = {.ips = bad_ip, .ip_count = 1, .server_auth = true};
	paths("bad");
	CHECK_EQ_INT(certgen_self_signed(&opt, key_path, crt_path, false, NULL, err, sizeof err),
	             -1);
	CHECK(strstr(err, "invalid IP address '300.1.1.1'") != NULL);
	CHECK(access(key_path, F_OK) != 0 && access(crt_path, F_OK) != 0);

	struct certgen_options opt2 = {.dns = bad_dns, .dns_count = 1};
	CHECK_EQ_INT(certgen_self_signed(&opt2, key_path, crt_path, false, NULL, err, sizeof err),
	             -1);
	CHECK(strstr(err, "invalid DNS name") != NULL);

	struct certgen_options opt3 = {.common_name = "a-subject-that-is-far-too-long-for-the-"
	                                              "common-name-attribute-of-x509"};
	CHECK_EQ_INT(certgen_self_signed(&opt3, key_path, crt_path, false, NULL, err, sizeof err),
	             -1);
	CHECK(access(key_path, F_OK) != 0 && access(crt_path, F_OK) != 0);

	/* mbedTLS 2.28 can escape only ',' in a name: a backslash is refused up front with the
	 * subject error, not as an unexplained "cannot build certificate". */
	struct certgen_options opt4 = {.common_name = "a\\b"};
	CHECK_EQ_INT(certgen_self_signed(&opt4, key_path, crt_path, false, NULL, err, sizeof err),
	             -1);
	CHECK(strstr(err, "invalid subject") != NULL);
	CHECK(access(key_path, F_OK) != 0 && access(crt_path, F_OK) != 0);

	/* A directory that does not exist: clear error, nothing left behind. */
	CHECK_EQ_INT(certgen_self_signed(&opt2, "/nonexistent/dir/k", "/nonexistent/dir/c", false,
	                                 NULL, err, sizeof err),
	             -1);
}

static void cleanup(void)
{
	const char *names[] = {"both", "overwrite", "default-cn", "bad", "pem"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		paths(names[i]);
		unlink(key_path);
		unlink(crt_path);
	}
	rmdir(dir);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_server_and_client_cert);
	RUN(test_refuses_overwrite);
	RUN(test_default_subject_is_identity);
	RUN(test_key_pem_matches_mbedtls);
	RUN(test_rejects_bad_input);
	cleanup();
	return CHECK_DONE();
}
