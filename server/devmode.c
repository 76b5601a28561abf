/*
 * devmode.c — the --dev directory: certificates, keystore and config (devmode.h).
 *
 * Whoever can write into the directory decides who the dev admin is (client.crt) and what the
 * server serves, so an existing directory is trusted only if nobody but the running user could
 * have prepared it: the directory, keys/ and every entry in them must belong to this user and
 * not be writable by group or others, hold no symbolic links, and private keys must not be
 * readable by others. Once that holds nobody else can change the entries, so the paths opened
 * afterwards are the ones checked. New files are created with O_EXCL|O_NOFOLLOW, private.
 */
#include "server/devmode.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/identity.h"
#include "server/certgen.h"

/* Ten years: a dev directory should not stop working after certgen's default 30 days. */
#define DEV_CERT_SECONDS ((int64_t)3650 * 24 * 3600)

static int path_join(char *out, size_t n, const char *dir, const char *name)
{
	int w = snprintf(out, n, "%s/%s", dir, name);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Whether name is a private key by its name (server.key, client.key). */
static bool is_key_file(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && strcmp(name + n - 4, ".key") == 0;
}

/*
 * Refuses path (described by st) unless it is what is expected (a directory or a regular
 * file), the running user's, not writable by group or others and, if secret, not readable by
 * them either. 0, or -1 with err filled.
 */
static int check_trusted(const char *path, const struct stat *st, bool want_dir, bool secret,
                         char *err, size_t errlen)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);

	if (S_ISLNK(st->st_mode)) {
		snprintf(err, errlen,
		         "dev: '%s' is a symbolic link; a dev directory holds only its own files "
		         "(remove the link)",
		         path);
		return -1;
	}
	if (want_dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "dev: '%s' is not a regular %s", path,
		         want_dir ? "directory" : "file");
		return -1;
	}
	if (st->st_uid != geteuid()) {
		snprintf(err, errlen,
		         "dev: '%s' is owned by uid %u, not by the user running kesc (uid %u): "
		         "refusing to trust it (use a directory of your own, or remove it)",
		         path, (unsigned)st->st_uid, (unsigned)geteuid());
		return -1;
	}
	if (mode & 022) {
		snprintf(
		    err, errlen,
		    "dev: '%s' is writable by group or others (mode %04o): anyone could have put "
		    "their own certificate or keys there; refusing to trust it (chmod go-w, or "
		    "remove the directory)",
		    path, mode);
		return -1;
	}
	if (secret && (mode & 077)) {
		snprintf(err, errlen,
		         "dev: '%s' is a private key readable by group or others (mode %04o); it "
		         "must be 0600",
		         path, mode);
		return -1;
	}
	return 0;
}

/* Checks every entry of dir (not recursively): keys/ as a directory, the rest as files;
 * *.key files, and everything in the keystore (secret_all), as private. */
static int check_entries(const char *dir, bool secret_all, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		snprintf(err, errlen, "dev: cannot read '%s': %s", dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (path_join(path, sizeof path, dir, de->d_name) < 0 ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			snprintf(err, errlen, "dev: cannot inspect '%s/%s': %s", dir, de->d_name,
			         strerror(errno));
			rc = -1;
			break;
		}
		bool is_keys = !secret_all && strcmp(de->d_name, "keys") == 0;
		rc = check_trusted(path, &st, is_keys, secret_all || is_key_file(de->d_name), err,
		                   errlen);
	}
	if (rc == 0 && errno != 0) {
		snprintf(err, errlen, "dev: cannot read '%s': %s", dir, strerror(errno));
		rc = -1;
	}
	closedir(d);
	return rc;
}

/* The directory itself, then keys/ and everything in both. */
static int check_dev_dir(const char *dir, const char *keys, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(dir, &st) != 0) {
		snprintf(err, errlen, "dev: '%s': %s", dir, strerror(errno));
		return -1;
	}
	if (check_trusted(dir, &st, true, false, err, errlen) < 0 ||
	    check_entries(dir, false, err, errlen) < 0)
		return -1;
	return exists(keys) ? check_entries(keys, true, err, errlen) : 0;
}

/* mkdir that leaves an existing directory to check_dev_dir; new ones are 0700 whatever the
 * umask. */
static int make_private_dir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) != 0) {
		if (errno == EEXIST)
			return 0;
		snprintf(err, errlen, "dev: cannot create '%s': %s", path, strerror(errno));
		return -1;
	}
	if (chmod(path, 0700) != 0) {
		snprintf(err, errlen, "dev: cannot set the mode of '%s': %s", path,
		         strerror(errno));
		return -1;
	}
	return 0;
}

static int make_cert(const char *dir, const char *key_name, const char *cert_name, bool server,
                     char *err, size_t errlen)
{
	char key[PATH_MAX], cert[PATH_MAX];
	if (path_join(key, sizeof(key), dir, key_name) < 0 ||
	    path_join(cert, sizeof(cert), dir, cert_name) < 0) {
		snprintf(err, errlen, "dev: directory path too long");
		return -1;
	}
	if (exists(key) && exists(cert))
		return 0;
	static const char *const dns[] = {"localhost"};
	static const char *const ips[] = {"127.0.0.1", "::1"};
	struct certgen_options o = {
	    .common_name = server ? "localhost" : "kesc-dev-admin",
	    .dns = server ? dns : NULL,
	    .dns_count = server ? 1 : 0,
	    .ips = server ? ips : NULL,
	    .ip_count = server ? 2 : 0,
	    .valid_seconds = DEV_CERT_SECONDS,
	    .server_auth = server,
	    .client_auth = !server,
	};
	return certgen_self_signed(&o, key, cert, true, NULL, err, errlen);
}

static int write_config(const char *path, const char *dir, const char *addr, const char *admin,
                        char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "dev: directory path too long");
		return -1;
	}
	/* A leftover of a crashed start (a file of ours: checked) goes; the new one is created,
	 * never opened through whatever is at the name. */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "dev: cannot remove '%s': %s", tmp, strerror(errno));
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		snprintf(err, errlen, "dev: cannot write '%s': %s", tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return -1;
	}
	if (fchmod(fd, 0600) != 0) { /* whatever the umask */
		snprintf(err, errlen, "dev: cannot set the mode of '%s': %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fprintf(f,
	        "# Written by `kesc server --dev` on every start; edits are overwritten.\n"
	        "version: v1\n"
	        "address: %s\n"
	        "admin:\n  identity: %s\n"
	        "tls:\n  key: %s/server.key\n  cert: %s/server.crt\n"
	        "cache:\n  expiry:\n    any: 5m\n    unused: 30s\n    offline: 0s\n"
	        "log:\n  error: on\n  audit: on\n"
	        "keystore:\n  fs:\n    path: %s/keys\n",
	        addr, admin, dir, dir, dir);
	if (fflush(f) != 0 || fsync(fd) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "dev: cannot write '%s': %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int devmode_prepare(const char *dir_in, const char *addr, char *config_path, size_t pathlen,
                    char *err, size_t errlen)
{
	char dir[PATH_MAX], keys[PATH_MAX], cert[PATH_MAX];
	if (make_private_dir(dir_in, err, errlen) < 0)
		return -1;
	if (!realpath(dir_in, dir)) {
		snprintf(err, errlen, "dev: '%s': %s", dir_in, strerror(errno));
		return -1;
	}
	if (path_join(keys, sizeof(keys), dir, "keys") < 0 ||
	    path_join(cert, sizeof(cert), dir, "client.crt") < 0 ||
	    path_join(config_path, pathlen, dir, "config.yml") < 0) {
		snprintf(err, errlen, "dev: directory path too long");
		return -1;
	}
	/* Checked before anything in it is used or written, and keys/ made only then. */
	if (check_dev_dir(dir, keys, err, errlen) < 0 || make_private_dir(keys, err, errlen) < 0)
		return -1;
	if (make_cert(dir, "server.key", "server.crt", true, err, errlen) < 0 ||
	    make_cert(dir, "client.key", "client.crt", false, err, errlen) < 0)
		return -1;
	char admin[IDENTITY_HEX_LEN + 1];
	if (identity_of_cert_file(cert, admin, err, errlen) < 0)
		return -1;
	return write_config(config_path, dir, addr, admin, err, errlen);
}

void devmode_print_usage(const char *dir_in, const char *bound)
{
	char dir[PATH_MAX];
	if (!realpath(dir_in, dir))
		snprintf(dir, sizeof(dir), "%s", dir_in);
	fprintf(stderr,
	        "\nDevelopment mode: do not use in production.\n"
	        "Talk to this server with:\n"
	        "  export KES_SERVER=https://%s\n"
	        "  export KES_CLIENT_CERT=%s/client.crt\n"
	        "  export KES_CLIENT_KEY=%s/client.key\n"
	        "  export KESC_CA=%s/server.crt   # lets the kesc client trust this server\n"
	        "  kesc key create my-key && kesc key dek my-key\n"
	        "  curl --cacert %s/server.crt --cert %s/client.crt --key %s/client.key "
	        "https://%s/v1/status\n\n",
	        bound, dir, dir, dir, dir, dir, dir, bound);
	fflush(stderr);
}
