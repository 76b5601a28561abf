/* devmode.c — the --dev directory: certificates, keystore and config (devmode.h). */
#include "server/devmode.h"

#include <errno.h>
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
	FILE *f = fopen(tmp, "we");
	if (!f) {
		snprintf(err, errlen, "dev: cannot write '%s': %s", tmp, strerror(errno));
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
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
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
	if (mkdir(dir_in, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "dev: cannot create '%s': %s", dir_in, strerror(errno));
		return -1;
	}
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
	if (mkdir(keys, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "dev: cannot create '%s': %s", keys, strerror(errno));
		return -1;
	}
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
