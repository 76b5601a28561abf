/* config_check.c — side-effect-free checks of a loaded configuration (config_check.h). */
#include "server/config_check.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore/keystore.h"
#include "keystore/vault.h"
#include "server/router.h"
#include "server/server.h"
#include "server/tls.h"
#include "server/tls_load.h"

struct checker {
	check_report_fn report;
	void *arg;
	unsigned errors;
};

static void say(struct checker *k, enum check_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(struct checker *k, enum check_level level, const char *fmt, ...)
{
	char message[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	if (level == CHECK_ERROR)
		k->errors++;
	if (k->report)
		k->report(k->arg, level, message);
}

/* access(2) for the effective user, which is who the server runs as. */
static int usable(const char *path, int mode)
{
	return faccessat(AT_FDCWD, path, mode, AT_EACCESS);
}

/* ---- warnings ---- */

static void check_key_mode(struct checker *k, const char *what, const char *path)
{
	struct stat st;
	if (!path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return; /* the loader reports what is missing */
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		say(k, CHECK_WARNING,
		    "%s '%s' is accessible by group or others (mode %04o): restrict it with "
		    "chmod 600",
		    what, path, (unsigned)(st.st_mode & 07777));
}

static void check_cert_dates(struct checker *k, const char *path)
{
	mbedtls_x509_crt crt;
	char ignored[512];
	mbedtls_x509_crt_init(&crt);
	if (path &&
	    tls_load_cert_file(&crt, path, "TLS certificate", ignored, sizeof ignored) == 0) {
		time_t now = time(NULL);
		int64_t left = tls_cert_seconds_left(&crt, now);
		int64_t until = tls_cert_seconds_until_valid(&crt, now);
		const mbedtls_x509_time *to = &crt.valid_to, *from = &crt.valid_from;
		if (left >= 0 && left < (int64_t)CHECK_CERT_EXPIRY_WARN_DAYS * 86400)
			say(k, CHECK_WARNING,
			    "TLS certificate '%s' expires on %04d-%02d-%02d %02d:%02d UTC (in %lld "
			    "days)",
			    path, to->year, to->mon, to->day, to->hour, to->min,
			    (long long)(left / 86400));
		if (until > 0)
			say(k, CHECK_WARNING,
			    "TLS certificate '%s' is not valid before %04d-%02d-%02d %02d:%02d "
			    "UTC; "
			    "clients refuse it until then (is the clock right?)",
			    path, from->year, from->mon, from->day, from->hour, from->min);
	}
	mbedtls_x509_crt_free(&crt);
}

/* KES ignores an api: key that is no route of its own; so does kesc, but it says so. */
static void check_api_routes(struct checker *k, const struct config *cfg)
{
	const char *keys[64];
	size_t n = 0;
	for (size_t i = 0; i < router_route_count() && n < 64; i++)
		keys[n++] = router_route_at(i)->path;
	for (size_t i = 0; i < cfg->api_count; i++) {
		const struct config_api *a = &cfg->api[i];
		if (router_find_key(a->path) >= 0)
			continue;
		const char *hint = config_suggest(a->path, keys, n);
		say(k, CHECK_WARNING,
		    "%s:%u: api.%s: kesc serves no such route, the entry is ignored (as KES "
		    "does)%s%s%s",
		    cfg->file, a->line, a->path, hint ? "; did you mean '" : "", hint ? hint : "",
		    hint ? "'?" : "");
	}
}

void config_check_warnings(const struct config *cfg, check_report_fn report, void *arg)
{
	struct checker k = {.report = report, .arg = arg};
	check_key_mode(&k, "TLS private key", cfg->tls.key);
	if (cfg->keystore == CONFIG_KEYSTORE_VAULT)
		check_key_mode(&k, "Vault client key (keystore.vault.tls.key)", cfg->vault.tls_key);
	check_cert_dates(&k, cfg->tls.cert);
	check_api_routes(&k, cfg);
}

/* ---- what starting would fail on ---- */

bool config_any_route_skips_auth(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->api_count; i++)
		if (cfg->api[i].skip_auth && router_find_key(cfg->api[i].path) >= 0)
			return true;
	return false;
}

static void check_tls(struct checker *k, const struct config *cfg)
{
	char err[1024];
	struct tls_server *tls =
	    tls_server_new(cfg, config_any_route_skips_auth(cfg), 1, err, sizeof err);
	if (!tls) {
		say(k, CHECK_ERROR, "%s", err);
		return;
	}
	tls_server_release(tls);
}

/* path without its last component ("a/b" → "a", "b" → ".", "/b" → "/"). */
static void parent_of(const char *path, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", path);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, outlen, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
}

/* keystore.fs.path: starting creates it with its parents (mode 0700, as KES's MkdirAll), so
 * it either is a usable directory or can be made one by this user. */
static void check_fs_dir(struct checker *k, const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			say(k, CHECK_ERROR, "keystore.fs.path '%s': exists but is not a directory",
			    path);
		else if (usable(path, R_OK | W_OK | X_OK) != 0)
			say(k, CHECK_ERROR, "keystore.fs.path '%s': %s", path, strerror(errno));
		return;
	}
	if (errno != ENOENT) {
		say(k, CHECK_ERROR, "keystore.fs.path '%s': %s", path, strerror(errno));
		return;
	}
	char existing[PATH_MAX], missing[PATH_MAX];
	unsigned levels = 1;
	snprintf(missing, sizeof missing, "%s", path);
	for (;;) {
		parent_of(missing, existing, sizeof existing);
		if (stat(existing, &st) == 0)
			break;
		if (errno != ENOENT || !strcmp(existing, missing)) {
			say(k, CHECK_ERROR, "keystore.fs.path '%s': %s", existing, strerror(errno));
			return;
		}
		snprintf(missing, sizeof missing, "%s", existing);
		levels++;
	}
	if (!S_ISDIR(st.st_mode)) {
		say(k, CHECK_ERROR, "keystore.fs.path '%s': '%s' is not a directory", path,
		    existing);
		return;
	}
	if (usable(existing, W_OK | X_OK) != 0) {
		say(k, CHECK_ERROR, "keystore.fs.path '%s': cannot be created in '%s': %s", path,
		    existing, strerror(errno));
		return;
	}
	if (levels == 1)
		say(k, CHECK_WARNING,
		    "keystore.fs.path '%s' does not exist; starting creates it (mode 0700)", path);
	else
		say(k, CHECK_WARNING,
		    "keystore.fs.path '%s' does not exist; starting creates it and %u missing "
		    "parent directories below '%s' (mode 0700): is the path right?",
		    path, levels - 1, existing);
}

/* A log file is opened for appending and created if missing, never its directory. */
static void check_log_file(struct checker *k, const char *field, const char *path)
{
	struct stat st;
	char dir[PATH_MAX];
	if (!path)
		return;
	/* As log_target_open: a log file is never opened through a symbolic link. */
	if (strcmp(path, "/dev/stdout") && strcmp(path, "/dev/stderr") && lstat(path, &st) == 0 &&
	    S_ISLNK(st.st_mode)) {
		say(k, CHECK_ERROR,
		    "%s '%s': is a symbolic link; kesc does not follow links for log files (name "
		    "the target instead)",
		    field, path);
		return;
	}
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			say(k, CHECK_ERROR, "%s '%s': is a directory", field, path);
		else if (usable(path, W_OK) != 0)
			say(k, CHECK_ERROR, "%s '%s': %s", field, path, strerror(errno));
		return;
	}
	if (errno != ENOENT) {
		say(k, CHECK_ERROR, "%s '%s': %s", field, path, strerror(errno));
		return;
	}
	parent_of(path, dir, sizeof dir);
	if (stat(dir, &st) != 0)
		say(k, CHECK_ERROR, "%s '%s': directory '%s': %s", field, path, dir,
		    strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		say(k, CHECK_ERROR, "%s '%s': '%s' is not a directory", field, path, dir);
	else if (usable(dir, W_OK | X_OK) != 0)
		say(k, CHECK_ERROR, "%s '%s': cannot be created in '%s': %s", field, path, dir,
		    strerror(errno));
	else
		say(k, CHECK_NOTE, "%s '%s' does not exist; starting creates it", field, path);
}

unsigned config_check_log_files(const struct config *cfg, check_report_fn report, void *arg)
{
	struct checker k = {.report = report, .arg = arg};
	check_log_file(&k, "log.error", cfg->log.error_file);
	check_log_file(&k, "log.audit", cfg->log.audit_file);
	return k.errors;
}

/* A file (or, for a CA, a directory) the Vault client reads at login. */
static void check_readable(struct checker *k, const char *field, const char *path)
{
	struct stat st;
	if (!path)
		return;
	if (stat(path, &st) != 0) {
		say(k, CHECK_ERROR, "%s '%s': %s", field, path, strerror(errno));
		return;
	}
	int mode = S_ISDIR(st.st_mode) ? R_OK | X_OK : R_OK;
	if (usable(path, mode) != 0)
		say(k, CHECK_ERROR, "%s '%s': %s", field, path, strerror(errno));
}

/* The address as the server binds it ("", 0.0.0.0 and localhost as in server.c). */
static int listen_sockaddr(const char *host, unsigned port, struct sockaddr_storage *ss,
                           socklen_t *len)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	if (!host[0] || !strcmp(host, "0.0.0.0")) {
		v4->sin_addr.s_addr = htonl(INADDR_ANY);
	} else if (!strcmp(host, "localhost")) {
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof *v6;
		return 0;
	} else if (inet_pton(AF_INET, host, &v4->sin_addr) != 1) {
		return -1;
	}
	v4->sin_family = AF_INET;
	v4->sin_port = htons((uint16_t)port);
	*len = sizeof *v4;
	return 0;
}

/* Binds the address the way a second server would and closes it again: SO_REUSEADDR (so a
 * port in TIME_WAIT is not "in use") but no SO_REUSEPORT, so another listener is found. */
static void check_listen(struct checker *k, const char *address)
{
	char host[128];
	unsigned port;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	if (server_parse_address(address, host, sizeof host, &port) < 0 ||
	    listen_sockaddr(host, port, &ss, &len) < 0) {
		say(k, CHECK_ERROR, "address '%s': not an IP:PORT address", address);
		return;
	}
	if (port == 0)
		return; /* any free port */
	int one = 1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1) != 0) {
		int e = errno;
		if (e == EADDRINUSE)
			say(k, CHECK_ERROR,
			    "address '%s': Address already in use (another process listens there; "
			    "a running kesc reloads on SIGHUP without binding again)",
			    address);
		else
			say(k, CHECK_ERROR, "address '%s': %s", address, strerror(e));
	}
	if (fd >= 0)
		close(fd);
}

/* Vault: log in (as the server would at start) and read each key of `keys:`. */
static void check_vault(struct checker *k, const struct config *cfg)
{
	struct ks_err kerr = {{0}};
	struct keystore *ks = vault_keystore_open(&cfg->vault, &kerr);
	if (!ks) {
		say(k, CHECK_ERROR, "keystore: %s", kerr.msg);
		return;
	}
	for (size_t i = 0; i < cfg->key_count; i++) {
		struct bytes record = {0};
		kerr.msg[0] = '\0';
		int rc = keystore_get(ks, cfg->keys[i], &record, &kerr);
		bytes_free(&record);
		if (rc == KS_NOT_FOUND)
			say(k, CHECK_NOTE,
			    "keys: '%s' does not exist in Vault; starting creates it",
			    cfg->keys[i]);
		else if (rc != KS_OK)
			say(k, CHECK_ERROR, "keys: cannot read '%s' from Vault: %s", cfg->keys[i],
			    kerr.msg[0] ? kerr.msg : ks_result_name(rc));
	}
	keystore_close(ks);
}

/* A tenant's directory: created at start below keystore.fs.path (checked above) when missing;
 * if it is there, it must be a directory this user can use. */
static void check_tenant_dir(struct checker *k, const struct config_tenant *t)
{
	struct stat st;
	if (stat(t->fs_path, &st) != 0) {
		if (errno != ENOENT)
			say(k, CHECK_ERROR, "tenants.%s: '%s': %s", t->name, t->fs_path,
			    strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode))
		say(k, CHECK_ERROR, "tenants.%s: '%s' exists but is not a directory", t->name,
		    t->fs_path);
	else if (usable(t->fs_path, R_OK | W_OK | X_OK) != 0)
		say(k, CHECK_ERROR, "tenants.%s: '%s': %s", t->name, t->fs_path, strerror(errno));
}

/* A tenant with its own Vault login: log in with it, in its namespace, and read its keys (the
 * server would log in on a thread of its own and only say so in the log). A tenant on the
 * top-level token: read its keys with that token. One tenant after the other. */
static void check_tenant_vault(struct checker *k, const struct config *cfg,
                               const struct config_tenant *t)
{
	struct ks_err kerr = {{0}};
	struct vault_config v = t->vault; /* the strings stay the config's */
	if (!t->vault_own_auth) /* the top-level token: logged in where the top level logs in */
		v.auth_namespace = cfg->vault.auth_namespace ? cfg->vault.auth_namespace
		                   : cfg->vault.namespace_   ? cfg->vault.namespace_
		                                             : (char *)"/";
	struct keystore *ks = vault_keystore_open(&v, &kerr);
	if (!ks) {
		say(k, CHECK_ERROR, "tenants.%s: keystore: %s", t->name, kerr.msg);
		return;
	}
	for (size_t i = 0; i < t->key_count; i++) {
		struct bytes record = {0};
		kerr.msg[0] = '\0';
		int rc = keystore_get(ks, t->keys[i], &record, &kerr);
		bytes_free(&record);
		if (rc != KS_OK && rc != KS_NOT_FOUND)
			say(k, CHECK_ERROR, "tenants.%s: keys: cannot read '%s' from Vault: %s",
			    t->name, t->keys[i], kerr.msg[0] ? kerr.msg : ks_result_name(rc));
	}
	keystore_close(ks);
}

static void check_tenants(struct checker *k, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->tenant_count; i++) {
		const struct config_tenant *t = &cfg->tenants[i];
		if (cfg->keystore == CONFIG_KEYSTORE_FS)
			check_tenant_dir(k, t);
		else if (cfg->keystore == CONFIG_KEYSTORE_VAULT)
			check_tenant_vault(k, cfg, t);
	}
}

static void check_keystore(struct checker *k, const struct config *cfg)
{
	unsigned before = k->errors;
	switch (cfg->keystore) {
	case CONFIG_KEYSTORE_FS:
		check_fs_dir(k, cfg->fs_path);
		break;
	case CONFIG_KEYSTORE_VAULT:
		check_readable(k, "keystore.vault.tls.ca", cfg->vault.tls_ca);
		check_readable(k, "keystore.vault.tls.cert", cfg->vault.tls_cert);
		check_readable(k, "keystore.vault.tls.key", cfg->vault.tls_key);
		if (k->errors == before) /* a login without its files only repeats the error */
			check_vault(k, cfg);
		break;
	default:
		break;
	}
	if (k->errors == before)
		check_tenants(k, cfg);
}

unsigned config_check_all(const struct config *cfg, check_report_fn report, void *arg)
{
	struct checker k = {.report = report, .arg = arg};
	config_check_warnings(cfg, report, arg);
	check_tls(&k, cfg);
	k.errors += config_check_log_files(cfg, report, arg);
	check_listen(&k, cfg->address);
	check_keystore(&k, cfg);
	return k.errors;
}
