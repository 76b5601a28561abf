/*
 * test_devmode.c — `kesc server --dev`'s directory (server/devmode.c): what it creates, and
 * that it refuses to trust an existing directory that someone else could have prepared
 * (issue 9): one that is not the running user's, or that group or others may write, or that
 * holds such a file, a symbolic link or a private key others may read.
 *
 * The attacks need a second user: the cases that plant files as another user fork a child
 * that becomes nobody (65534). They need root to do that; sessions and CI run as root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "policy/identity.h"
#include "server/certgen.h"
#include "server/devmode.h"

#define NOBODY 65534

static char top[] = "/tmp/kesc-devmode-XXXXXX";
static char dev[256], config[512], err[1024];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A fresh dev directory path (not created) under top, readable by nobody on the way. */
static void fresh(const char *name)
{
	snprintf(dev, sizeof dev, "%s/%s", top, name);
	nftw(dev, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	err[0] = 0;
}

static int prepare(void)
{
	err[0] = 0;
	return devmode_prepare(dev, "127.0.0.1:7373", config, sizeof config, err, sizeof err);
}

static char *path_in(const char *name)
{
	static char p[4][512];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", dev, name);
	return p[i];
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0xffff;
}

static bool err_has(const char *a, const char *b)
{
	bool ok = strstr(err, a) != NULL && (!b || strstr(err, b) != NULL);
	if (!ok)
		fprintf(stderr, "  error was: %s\n", err);
	return ok;
}

/* Runs fn in a child as nobody; returns the child's exit status (0 = fn returned 0). */
static int as_nobody(int (*fn)(void))
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
		    setresuid(NOBODY, NOBODY, NOBODY) != 0)
			_exit(100);
		_exit(fn() == 0 ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static bool is_root(const char *what)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "  note: %s needs root (to act as a second user); not exercised\n", what);
	return false;
}

/* A first start creates everything private to the user, and a second start trusts it. */
static void test_fresh_directory(void)
{
	char id1[IDENTITY_HEX_LEN + 1] = "", id2[IDENTITY_HEX_LEN + 1] = "";
	mode_t old = umask(0); /* modes must not depend on the umask */

	fresh("fresh");
	CHECK_EQ_INT(prepare(), 0);
	umask(old);
	CHECK_EQ_INT(mode_of(dev), 0700);
	CHECK_EQ_INT(mode_of(path_in("keys")), 0700);
	CHECK_EQ_INT(mode_of(path_in("server.key")), 0600);
	CHECK_EQ_INT(mode_of(path_in("client.key")), 0600);
	CHECK_EQ_INT(mode_of(path_in("config.yml")), 0600);
	CHECK_EQ_INT(mode_of(path_in("client.crt")) & 022, 0);
	CHECK(access(path_in("config.yml.tmp"), F_OK) != 0);
	CHECK_EQ_INT(identity_of_cert_file(path_in("client.crt"), id1, err, sizeof err), 0);

	/* What the keystore writes in keys/ is trusted on the next start. */
	FILE *f = fopen(path_in("keys/a-key"), "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	CHECK(chmod(path_in("keys/a-key"), 0600) == 0);
	CHECK_EQ_INT(prepare(), 0);
	CHECK_EQ_INT(identity_of_cert_file(path_in("client.crt"), id2, err, sizeof err), 0);
	CHECK_EQ_STR(id1, id2);

	/* A stale temp file of a crashed start (a regular file of ours) is no obstacle. */
	f = fopen(path_in("config.yml.tmp"), "w");
	if (f)
		fclose(f);
	CHECK(chmod(path_in("config.yml.tmp"), 0600) == 0);
	CHECK_EQ_INT(prepare(), 0);
}

/* The attack of the issue: a world-writable dev directory into which another user put their
 * own client key and certificate, to become the dev server's admin. */
static int plant_client_cert(void)
{
	struct certgen_options o = {.common_name = "attacker", .client_auth = true};
	char e[256];
	return certgen_self_signed(&o, path_in("client.key"), path_in("client.crt"), true, NULL, e,
	                           sizeof e);
}

static void test_world_writable_with_planted_cert(void)
{
	char planted[IDENTITY_HEX_LEN + 1];

	fresh("planted");
	CHECK(mkdir(dev, 0700) == 0 && chmod(dev, 0777) == 0);
	if (is_root("planting as another user")) {
		CHECK_EQ_INT(as_nobody(plant_client_cert), 0);
		CHECK_EQ_INT(identity_of_cert_file(path_in("client.crt"), planted, err, sizeof err),
		             0);
	}
	CHECK_EQ_INT(prepare(), -1);
	CHECK(err_has(dev, "writable by group or others"));
	CHECK(access(config, F_OK) != 0 || access(path_in("config.yml"), F_OK) != 0);

	/* Group-writable is refused as well. */
	fresh("group");
	CHECK(mkdir(dev, 0700) == 0 && chmod(dev, 0770) == 0);
	CHECK_EQ_INT(prepare(), -1);
	CHECK(err_has(dev, "writable by group or others"));
}

/* Files of another user in the user's own directory. */
static void test_foreign_owner(void)
{
	fresh("foreign-file");
	CHECK_EQ_INT(prepare(), 0);
	if (!is_root("chown to another user"))
		return;
	CHECK(chown(path_in("client.crt"), NOBODY, NOBODY) == 0);
	CHECK_EQ_INT(prepare(), -1);
	CHECK(err_has(path_in("client.crt"), "owned by uid 65534"));

	fresh("foreign-key-file");
	CHECK_EQ_INT(prepare(), 0);
	CHECK(chown(path_in("keys"), NOBODY, NOBODY) == 0);
	CHECK_EQ_INT(prepare(), -1);
	CHECK(err_has(path_in("keys"), "owned by uid 65534"));

	/* The directory itself belongs to someone else. */
	fresh("foreign-dir");
	CHECK_EQ_INT(prepare(), 0);
	CHECK(chown(dev, NOBODY, NOBODY) == 0);
	CHECK_EQ_INT(prepare(), -1);
	CHECK(err_has(dev, "owned by uid 65534, not by the user running kesc (uid 0)"));
}

/* nobody runs --dev on a directory root made: refused for its owner, not a later EACCES. */
static int prepare_as_nobody(void)
{
	int rc = prepare();
	if (rc == 0)
		return 1;
	return err_has(dev, "owned by uid 0, not by the user running kesc (uid 65534)") ? 0 : 2;
}

static void test_directory_of_another_user(void)
{
	fresh("roots");
	CHECK_EQ_INT(prepare(), 0);
	CHECK(chmod(dev, 0755) == 0);
	if (is_root("running as another user"))
		CHECK_EQ_INT(as_nobody(prepare_as_nobody), 0);
}

static void test_modes_of_files(void)
{
	static const struct {
		const char *name;
		unsigned mode;
		const char *why;
	} cases[] = {
	    {"client.crt", 0664, "writable by group or others"},
	    {"config.yml", 0606, "writable by group or others"},
	    {"keys", 0770, "writable by group or others"},
	    {"client.key", 0640, "private key readable by group or others"},
	    {"server.key", 0604, "private key readable by group or others"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fresh("modes");
		CHECK_EQ_INT(prepare(), 0);
		CHECK(chmod(path_in(cases[i].name), cases[i].mode) == 0);
		CHECK_EQ_INT(prepare(), -1);
		CHECK(err_has(path_in(cases[i].name), cases[i].why));
	}

	/* A key file of the keystore that others may read or write. */
	fresh("modes");
	CHECK_EQ_INT(prepare(), 0);
	FILE *f = fopen(path_in("keys/k"), "w");
	if (f)
		fclose(f);
	CHECK(chmod(path_in("keys/k"), 0644) == 0);
	CHECK_EQ_INT(prepare(), -1);
	CHECK(err_has(path_in("keys/k"), "readable by group or others"));
}

/* A symbolic link at config.yml.tmp used to have its target overwritten by the config. Any
 * link in the directory is refused now, and nothing is written through it. */
static void test_symlinks(void)
{
	char victim[512];
	struct stat st;

	snprintf(victim, sizeof victim, "%s/victim", top);
	FILE *f = fopen(victim, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("precious\n", f);
		fclose(f);
	}
	static const char *const names[] = {"config.yml.tmp", "config.yml", "client.crt"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		fresh("links");
		CHECK_EQ_INT(prepare(), 0);
		unlink(path_in(names[i]));
		CHECK(symlink(victim, path_in(names[i])) == 0);
		CHECK_EQ_INT(prepare(), -1);
		CHECK(err_has(path_in(names[i]), "symbolic link"));
		CHECK(stat(victim, &st) == 0 && st.st_size == 9);
	}
	/* A directory where a file belongs. */
	fresh("links");
	CHECK_EQ_INT(prepare(), 0);
	unlink(path_in("client.crt"));
	CHECK(mkdir(path_in("client.crt"), 0700) == 0);
	CHECK_EQ_INT(prepare(), -1);
	CHECK(err_has(path_in("client.crt"), "not a regular file"));
}

int main(void)
{
	if (!mkdtemp(top) || chmod(top, 0755) != 0) { /* nobody must reach the dev dirs */
		perror("mkdtemp");
		return 1;
	}
	RUN(test_fresh_directory);
	RUN(test_world_writable_with_planted_cert);
	RUN(test_foreign_owner);
	RUN(test_directory_of_another_user);
	RUN(test_modes_of_files);
	RUN(test_symlinks);
	nftw(top, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return CHECK_DONE();
}
