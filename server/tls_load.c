/* tls_load.c — the server's TLS files, read with errors an operator understands (tls_load.h). */
#include "server/tls_load.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/error.h>

#include "keystore/secmem.h"

/* Larger than any real certificate bundle (Debian's is ~220 KB), small enough to refuse a
 * path that names something else by mistake. */
#define TLS_FILE_MAX ((size_t)16 * 1024 * 1024)

/* Go's certFiles and certDirectories for Linux (crypto/x509/root_linux.go). */
static const char *const SYSTEM_BUNDLES[] = {
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
};
static const char *const SYSTEM_DIRS[] = {"/etc/ssl/certs", "/etc/pki/tls/certs"};

/* A whole file, NUL-terminated one byte past len (PEM parsers want the NUL). */
struct file_text {
	unsigned char *data;
	size_t len;
};

static void file_text_free(struct file_text *t)
{
	if (t->data) {
		secure_zero(t->data, t->len); /* may have been a private key */
		free(t->data);
	}
	t->data = NULL;
	t->len = 0;
}

/* 0, or -1 with the reason ("No such file or directory", "is a directory") in reason. */
static int read_file(const char *path, struct file_text *out, char *reason, size_t reasonlen)
{
	out->data = NULL;
	out->len = 0;
	/* O_NONBLOCK: a FIFO at the path must not hang start-up; it is refused below. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		snprintf(reason, reasonlen, "%s", strerror(errno));
		return -1;
	}
	struct stat st;
	int rc = -1;
	if (fstat(fd, &st) != 0) {
		snprintf(reason, reasonlen, "%s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(reason, reasonlen, "is a directory");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(reason, reasonlen, "not a regular file");
		goto out;
	}
	if ((size_t)st.st_size > TLS_FILE_MAX) {
		snprintf(reason, reasonlen, "larger than %zu MiB", TLS_FILE_MAX >> 20);
		goto out;
	}
	size_t size = (size_t)st.st_size;
	out->data = malloc(size + 1);
	if (!out->data) {
		snprintf(reason, reasonlen, "out of memory");
		goto out;
	}
	while (out->len < size) {
		ssize_t n = read(fd, out->data + out->len, size - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(reason, reasonlen, "%s", strerror(errno));
			file_text_free(out);
			goto out;
		}
		if (n == 0)
			break; /* shrank while we read: what we have is the file */
		out->len += (size_t)n;
	}
	out->data[out->len] = '\0';
	rc = 0;
out:
	close(fd);
	return rc;
}

/* mbedTLS takes PEM with its NUL and DER without. */
static size_t parse_len(const struct file_text *t)
{
	return memmem(t->data, t->len, "-----BEGIN", 10) ? t->len + 1 : t->len;
}

static unsigned chain_length(const mbedtls_x509_crt *chain)
{
	unsigned n = 0;
	for (const mbedtls_x509_crt *c = chain; c && c->raw.p; c = c->next)
		n++;
	return n;
}

static void mbed_text(int rc, char *out, size_t outlen)
{
	mbedtls_strerror(rc, out, outlen);
}

int tls_load_cert_file(mbedtls_x509_crt *chain, const char *path, const char *what, char *err,
                       size_t errlen)
{
	struct file_text t;
	char reason[200];
	if (read_file(path, &t, reason, sizeof reason) < 0) {
		snprintf(err, errlen, "failed to load %s '%s': %s", what, path, reason);
		return -1;
	}
	unsigned before = chain_length(chain);
	int rc = mbedtls_x509_crt_parse(chain, t.data, parse_len(&t));
	file_text_free(&t);
	if (rc < 0 || chain_length(chain) == before) {
		char text[160];
		mbed_text(rc < 0 ? rc : MBEDTLS_ERR_X509_CERT_UNKNOWN_FORMAT, text, sizeof text);
		snprintf(err, errlen, "failed to load %s '%s': not a PEM or DER certificate (%s)",
		         what, path, text);
		return -1;
	}
	if (rc > 0) {
		snprintf(err, errlen,
		         "failed to load %s '%s': %d of its certificates cannot be parsed", what,
		         path, rc);
		return -1;
	}
	return 0;
}

int tls_load_key_file(mbedtls_pk_context *key, const char *path, const char *password, char *err,
                      size_t errlen)
{
	struct file_text t;
	char reason[200];
	if (read_file(path, &t, reason, sizeof reason) < 0) {
		snprintf(err, errlen, "failed to load TLS private key '%s': %s", path, reason);
		return -1;
	}
	size_t pwlen = password ? strlen(password) : 0;
	int rc = mbedtls_pk_parse_key(key, t.data, parse_len(&t), (const unsigned char *)password,
	                              pwlen);
	file_text_free(&t);
	if (rc == 0)
		return 0;
	if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
		snprintf(
		    err, errlen,
		    "failed to load TLS private key '%s': the key is encrypted and tls.password "
		    "is not set",
		    path);
	} else if (rc == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
		snprintf(err, errlen, "failed to load TLS private key '%s': wrong tls.password",
		         path);
	} else {
		char text[160];
		mbed_text(rc, text, sizeof text);
		snprintf(err, errlen,
		         "failed to load TLS private key '%s': not a PEM or DER private key (%s)",
		         path, text);
	}
	return -1;
}

static int join(char *out, size_t outlen, const char *dir, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Every non-directory entry of dir, as KES's CertPoolFromFile reads a tls.ca directory. */
static int load_ca_dir(mbedtls_x509_crt *ca, const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	if (!d) {
		snprintf(err, errlen, "failed to load CA certificates '%s': %s", dir,
		         strerror(errno));
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (join(path, sizeof path, dir, de->d_name) < 0) {
			snprintf(err, errlen, "failed to load CA certificates '%s': path too long",
			         dir);
			rc = -1;
		} else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			continue;
		} else {
			rc = tls_load_cert_file(ca, path, "CA certificates", err, errlen);
		}
	}
	closedir(d);
	if (rc == 0 && chain_length(ca) == 0) {
		snprintf(err, errlen,
		         "failed to load CA certificates '%s': the directory holds no "
		         "certificate",
		         dir);
		rc = -1;
	}
	return rc;
}

int tls_load_ca_path(mbedtls_x509_crt *ca, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "failed to load CA certificates '%s': %s", path,
		         strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return load_ca_dir(ca, path, err, errlen);
	return tls_load_cert_file(ca, path, "CA certificates", err, errlen);
}

/* ---- the system trust store ---- */

static bool chain_has(const mbedtls_x509_crt *chain, const mbedtls_x509_crt *crt)
{
	for (const mbedtls_x509_crt *c = chain; c && c->raw.p; c = c->next)
		if (c->raw.len == crt->raw.len && memcmp(c->raw.p, crt->raw.p, c->raw.len) == 0)
			return true;
	return false;
}

/* Adds the certificates of path that ca does not hold yet. -1 if the file cannot be read;
 * else the number added (a file that is not a certificate adds 0, as in Go). */
static int add_roots_from_file(mbedtls_x509_crt *ca, const char *path)
{
	struct file_text t;
	char reason[200];
	if (read_file(path, &t, reason, sizeof reason) < 0)
		return -1;
	mbedtls_x509_crt found;
	mbedtls_x509_crt_init(&found);
	(void)mbedtls_x509_crt_parse(&found, t.data, parse_len(&t)); /* partial is fine */
	file_text_free(&t);
	int added = 0;
	for (const mbedtls_x509_crt *c = &found; c && c->raw.p; c = c->next)
		if (!chain_has(ca, c) && mbedtls_x509_crt_parse_der(ca, c->raw.p, c->raw.len) == 0)
			added++;
	mbedtls_x509_crt_free(&found);
	return added;
}

/* Go's readUniqueDirectoryEntries: a symbolic link to a name in the same directory (the
 * OpenSSL hash links such as 3513523f.0) would only repeat a certificate. */
static bool is_same_dir_link(const char *path)
{
	struct stat st;
	char target[PATH_MAX];
	if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
		return false;
	ssize_t n = readlink(path, target, sizeof target - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strchr(target, '/') == NULL;
}

static int add_roots_from_dir(mbedtls_x509_crt *ca, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int added = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX];
		if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
			continue;
		if (join(path, sizeof path, dir, de->d_name) < 0 || is_same_dir_link(path))
			continue;
		int n = add_roots_from_file(ca, path);
		if (n > 0)
			added += n;
	}
	closedir(d);
	return added;
}

static void append_source(char *source, size_t sourcelen, const char *what)
{
	size_t used = strlen(source);
	if (used < sourcelen)
		snprintf(source + used, sourcelen - used, "%s%s", used ? ", " : "", what);
}

/* The directory list: SSL_CERT_DIR split at ':' into buf, or the defaults. */
static size_t system_dirs(const char **dirs, size_t max, char *buf, size_t buflen)
{
	const char *env = getenv("SSL_CERT_DIR");
	size_t n = 0;
	if (!env || !env[0]) {
		for (size_t i = 0; i < sizeof SYSTEM_DIRS / sizeof *SYSTEM_DIRS && n < max; i++)
			dirs[n++] = SYSTEM_DIRS[i];
		return n;
	}
	snprintf(buf, buflen, "%s", env);
	for (char *save = NULL, *p = strtok_r(buf, ":", &save); p && n < max;
	     p = strtok_r(NULL, ":", &save))
		dirs[n++] = p;
	return n;
}

int tls_load_system_roots(mbedtls_x509_crt *ca, char *source, size_t sourcelen, char *err,
                          size_t errlen)
{
	source[0] = '\0';
	int total = 0;
	const char *env_file = getenv("SSL_CERT_FILE");
	bool use_env = env_file && env_file[0];
	size_t nfiles = use_env ? 1 : sizeof SYSTEM_BUNDLES / sizeof *SYSTEM_BUNDLES;
	for (size_t i = 0; i < nfiles; i++) {
		const char *file = use_env ? env_file : SYSTEM_BUNDLES[i];
		int n = add_roots_from_file(ca, file);
		if (n < 0)
			continue;
		total += n;
		if (n > 0)
			append_source(source, sourcelen, file);
		break; /* Go reads the first bundle that exists */
	}
	const char *dirs[32];
	char dirbuf[4096];
	size_t ndirs = system_dirs(dirs, sizeof dirs / sizeof *dirs, dirbuf, sizeof dirbuf);
	for (size_t i = 0; i < ndirs; i++) {
		int n = add_roots_from_dir(ca, dirs[i]);
		if (n > 0) {
			total += n;
			append_source(source, sourcelen, dirs[i]);
		}
	}
	if (total > 0)
		return total;
	const char *env_dir = getenv("SSL_CERT_DIR");
	char file_desc[PATH_MAX + 32], dir_desc[PATH_MAX + 32];
	if (use_env)
		snprintf(file_desc, sizeof file_desc, "SSL_CERT_FILE=%s", env_file);
	else
		snprintf(file_desc, sizeof file_desc, "%s and the other default bundles",
		         SYSTEM_BUNDLES[0]);
	if (env_dir && env_dir[0])
		snprintf(dir_desc, sizeof dir_desc, "SSL_CERT_DIR=%s", env_dir);
	else
		snprintf(dir_desc, sizeof dir_desc, "%s, %s", SYSTEM_DIRS[0], SYSTEM_DIRS[1]);
	snprintf(err, errlen,
	         "tls.auth is on without tls.ca, and the system trust store has no certificate "
	         "(searched %s; %s): set tls.ca, or install the CA certificates",
	         file_desc, dir_desc);
	return -1;
}

/* ---- validity ---- */

static time_t x509_time_to_unix(const mbedtls_x509_time *t)
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

int64_t tls_cert_seconds_left(const mbedtls_x509_crt *crt, time_t now)
{
	return (int64_t)x509_time_to_unix(&crt->valid_to) - (int64_t)now;
}

int64_t tls_cert_seconds_until_valid(const mbedtls_x509_crt *crt, time_t now)
{
	return (int64_t)x509_time_to_unix(&crt->valid_from) - (int64_t)now;
}
