/*
 * test_tls_load.c — server/tls_load.c: file errors in words (never an mbedTLS code alone, never
 * a hang on a FIFO), and the system trust store found as Go finds it: SSL_CERT_FILE first,
 * then every file of the SSL_CERT_DIR directories, same-directory hash links skipped,
 * duplicates kept once, non-certificates ignored, an empty store refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/certgen.h"
#include "server/tls_load.h"
#include "tests/unit/check.h"

static char dir[64];

static void path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* A self-signed certificate <name>.crt with its key <name>.key in dir. */
static void make_cert(const char *name, int64_t valid_seconds)
{
	char key[PATH_MAX], crt[PATH_MAX], err[256];
	char file[64];
	snprintf(file, sizeof file, "%s.key", name);
	path_in(key, sizeof key, file);
	snprintf(file, sizeof file, "%s.crt", name);
	path_in(crt, sizeof crt, file);
	const char *dns[] = {"localhost"};
	struct certgen_options o = {.common_name = name,
	                            .dns = dns,
	                            .dns_count = 1,
	                            .valid_seconds = valid_seconds,
	                            .server_auth = true};
	int rc = certgen_self_signed(&o, key, crt, true, NULL, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "certgen: %s\n", err);
	CHECK_EQ_INT(rc, 0);
}

static void copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	CHECK(in && out);
	char b[4096];
	size_t n;
	while (in && out && (n = fread(b, 1, sizeof b, in)) > 0)
		fwrite(b, 1, n, out);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
}

static void test_file_errors(void)
{
	char err[512], want[3 * PATH_MAX], path[2 * PATH_MAX];
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&key);

	path_in(path, sizeof path, "missing.crt");
	CHECK_EQ_INT(tls_load_cert_file(&crt, path, "TLS certificate", err, sizeof err), -1);
	snprintf(want, sizeof want,
	         "failed to load TLS certificate '%s': No such file or directory", path);
	CHECK_EQ_STR(err, want);
	CHECK_EQ_INT(tls_load_key_file(&key, path, NULL, err, sizeof err), -1);
	snprintf(want, sizeof want,
	         "failed to load TLS private key '%s': No such file or directory", path);
	CHECK_EQ_STR(err, want);

	CHECK_EQ_INT(tls_load_cert_file(&crt, dir, "TLS certificate", err, sizeof err), -1);
	snprintf(want, sizeof want, "failed to load TLS certificate '%s': is a directory", dir);
	CHECK_EQ_STR(err, want);

	/* A FIFO nobody writes to: refused at once instead of blocking start-up. */
	path_in(path, sizeof path, "fifo");
	CHECK_EQ_INT(mkfifo(path, 0600), 0);
	CHECK_EQ_INT(tls_load_key_file(&key, path, NULL, err, sizeof err), -1);
	snprintf(want, sizeof want, "failed to load TLS private key '%s': not a regular file",
	         path);
	CHECK_EQ_STR(err, want);
	unlink(path);

	/* A key where the certificate belongs, a certificate where the key belongs. */
	path_in(path, sizeof path, "a.key");
	CHECK_EQ_INT(tls_load_cert_file(&crt, path, "TLS certificate", err, sizeof err), -1);
	snprintf(want, sizeof want,
	         "failed to load TLS certificate '%s': not a PEM or DER "
	         "certificate (",
	         path);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	path_in(path, sizeof path, "a.crt");
	CHECK_EQ_INT(tls_load_key_file(&key, path, NULL, err, sizeof err), -1);
	snprintf(want, sizeof want,
	         "failed to load TLS private key '%s': not a PEM or DER private "
	         "key (",
	         path);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	/* And the right way round. */
	CHECK_EQ_INT(tls_load_cert_file(&crt, path, "TLS certificate", err, sizeof err), 0);
	path_in(path, sizeof path, "a.key");
	CHECK_EQ_INT(tls_load_key_file(&key, path, NULL, err, sizeof err), 0);
	mbedtls_x509_crt_free(&crt);
	mbedtls_pk_free(&key);
}

static void test_ca_dir(void)
{
	char err[512], want[3 * PATH_MAX], cas[PATH_MAX], path[2 * PATH_MAX], from[PATH_MAX];
	mbedtls_x509_crt ca;
	mbedtls_x509_crt_init(&ca);
	path_in(cas, sizeof cas, "cas");
	CHECK_EQ_INT(mkdir(cas, 0700), 0);
	CHECK_EQ_INT(tls_load_ca_path(&ca, cas, err, sizeof err), -1);
	snprintf(want, sizeof want,
	         "failed to load CA certificates '%s': the directory holds no certificate", cas);
	CHECK_EQ_STR(err, want);

	path_in(from, sizeof from, "a.crt");
	snprintf(path, sizeof path, "%s/a.pem", cas);
	copy_file(from, path);
	CHECK_EQ_INT(tls_load_ca_path(&ca, cas, err, sizeof err), 0);
	mbedtls_x509_crt_free(&ca);

	/* As KES: every file in the directory must be a certificate. */
	mbedtls_x509_crt_init(&ca);
	snprintf(path, sizeof path, "%s/notes.txt", cas);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("hello\n", f);
		fclose(f);
	}
	CHECK_EQ_INT(tls_load_ca_path(&ca, cas, err, sizeof err), -1);
	CHECK(strstr(err, "notes.txt': not a PEM or DER certificate") != NULL);
	unlink(path);
	snprintf(path, sizeof path, "%s/a.pem", cas);
	unlink(path);
	rmdir(cas);
	mbedtls_x509_crt_free(&ca);
}

static void test_system_roots(void)
{
	char err[1024], source[512], want[6 * PATH_MAX], store[PATH_MAX], path[2 * PATH_MAX],
	    from[PATH_MAX], empty[PATH_MAX];
	mbedtls_x509_crt ca;

	/* SSL_CERT_FILE = a.crt; SSL_CERT_DIR = an empty dir and one with a copy of a.crt (a
	 * duplicate), b.crt, a hash link to it and a file that is no certificate. */
	path_in(store, sizeof store, "store");
	path_in(empty, sizeof empty, "empty");
	CHECK_EQ_INT(mkdir(store, 0700), 0);
	CHECK_EQ_INT(mkdir(empty, 0700), 0);
	path_in(from, sizeof from, "a.crt");
	snprintf(path, sizeof path, "%s/a-copy.pem", store);
	copy_file(from, path);
	path_in(from, sizeof from, "b.crt");
	snprintf(path, sizeof path, "%s/b.pem", store);
	copy_file(from, path);
	snprintf(path, sizeof path, "%s/1a2b3c4d.0", store);
	CHECK_EQ_INT(symlink("b.pem", path), 0);
	snprintf(path, sizeof path, "%s/README", store);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", f);
		fclose(f);
	}

	path_in(from, sizeof from, "a.crt");
	setenv("SSL_CERT_FILE", from, 1);
	char dirs[2 * PATH_MAX + 2];
	snprintf(dirs, sizeof dirs, "%s:%s", empty, store);
	setenv("SSL_CERT_DIR", dirs, 1);
	mbedtls_x509_crt_init(&ca);
	CHECK_EQ_INT(tls_load_system_roots(&ca, source, sizeof source, err, sizeof err), 2);
	snprintf(want, sizeof want, "%s, %s", from, store);
	CHECK_EQ_STR(source, want);
	mbedtls_x509_crt_free(&ca);

	/* A missing SSL_CERT_FILE is skipped, as in Go; the directories still count. */
	path_in(path, sizeof path, "none.pem");
	setenv("SSL_CERT_FILE", path, 1);
	mbedtls_x509_crt_init(&ca);
	CHECK_EQ_INT(tls_load_system_roots(&ca, source, sizeof source, err, sizeof err), 2);
	CHECK_EQ_STR(source, store);
	mbedtls_x509_crt_free(&ca);

	/* Nothing at all: refused, saying where it looked. */
	setenv("SSL_CERT_DIR", empty, 1);
	mbedtls_x509_crt_init(&ca);
	CHECK_EQ_INT(tls_load_system_roots(&ca, source, sizeof source, err, sizeof err), -1);
	snprintf(want, sizeof want,
	         "tls.auth is on without tls.ca, and the system trust store has no certificate "
	         "(searched SSL_CERT_FILE=%s; SSL_CERT_DIR=%s): set tls.ca, or install the CA "
	         "certificates",
	         path, empty);
	CHECK_EQ_STR(err, want);
	mbedtls_x509_crt_free(&ca);
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");

	const char *names[] = {"a-copy.pem", "b.pem", "1a2b3c4d.0", "README"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", store, names[i]);
		unlink(path);
	}
	rmdir(store);
	rmdir(empty);
}

static void test_validity(void)
{
	char err[256], path[2 * PATH_MAX];
	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	path_in(path, sizeof path, "a.crt");
	CHECK_EQ_INT(tls_load_cert_file(&crt, path, "TLS certificate", err, sizeof err), 0);
	time_t now = time(NULL);
	int64_t left = tls_cert_seconds_left(&crt, now);
	CHECK(left > 86400 - 120 && left <= 86400 + 120); /* made valid for one day */
	CHECK(tls_cert_seconds_left(&crt, now + 2 * 86400) < 0);
	CHECK(tls_cert_seconds_until_valid(&crt, now) <= 0);
	mbedtls_x509_crt_free(&crt);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/kesc-test-tls-load-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	make_cert("a", 86400);
	make_cert("b", 86400);
	RUN(test_file_errors);
	RUN(test_ca_dir);
	RUN(test_system_roots);
	RUN(test_validity);
	const char *files[] = {"a.key", "a.crt", "b.key", "b.crt"};
	for (size_t i = 0; i < 4; i++) {
		char path[2 * PATH_MAX];
		path_in(path, sizeof path, files[i]);
		unlink(path);
	}
	rmdir(dir);
	return CHECK_DONE();
}
