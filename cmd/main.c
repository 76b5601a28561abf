/* main.c — `kesc`: dispatch to a verb (cmd.h). */
#include <gnu/libc-version.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd/cli.h"
#include "cmd/cmd.h"
#include "cmd/goformat.h"
#include "kesc_commit.h"
#include "kesc_version.h"

static const struct verb VERBS[] = {
    {"server", cmd_server, "start a kesc server"},
    {"ls", cmd_ls, "list keys, policies and identities"},
    {"key", cmd_key, "manage cryptographic keys"},
    {"policy", cmd_policy, "inspect policies"},
    {"identity", cmd_identity, "create and inspect identities (certificates, API keys)"},
    {"log", cmd_log, "follow the server's audit or error log"},
    {"status", cmd_status, "print the server status"},
    {"metric", cmd_metric, "print server metrics"},
    {"migrate", cmd_migrate, "copy keys from one keystore to another"},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: kesc <command> [options] [arguments]\n\n"
	             "kesc is a key encryption service compatible with MinIO KES.\n\nCommands:\n");
	for (const struct verb *v = VERBS; v->name; v++)
		fprintf(out, "  %-10s %s\n", v->name, v->summary);
	fprintf(out, "\n  -v, --version  print the version\n  -h, --help     print this help\n"
	             "\nSee kesc(1), kesc.yml(5) and kesc-differences(7).\n");
}

#if defined(__x86_64__)
#define KESC_ARCH "amd64"
#elif defined(__aarch64__)
#define KESC_ARCH "arm64"
#elif defined(__i386__)
#define KESC_ARCH "386"
#elif defined(__arm__)
#define KESC_ARCH "arm"
#else
#define KESC_ARCH "unknown"
#endif

#if defined(__clang__)
#define KESC_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define KESC_COMPILER "gcc " __VERSION__
#else
#define KESC_COMPILER "unknown"
#endif

/* kes -v: four lines "Label      value                  detail" (main.go). */
static void print_version(void)
{
	char runtime[64], copyright[64];
	time_t now = time(NULL);
	struct tm tm;
	int year = gmtime_r(&now, &tm) ? tm.tm_year + 1900 : 2026;
	snprintf(runtime, sizeof runtime, "glibc %s linux/%s", gnu_get_libc_version(), KESC_ARCH);
	snprintf(copyright, sizeof copyright, "2024-%d kesc authors", year);
	printf("Version    %-22s commit=%s\n", KESC_VERSION, KESC_COMMIT);
	printf("Runtime    %-22s compiler=%s\n", runtime, KESC_COMPILER);
	printf("License    %-22s %s\n", "Apache-2.0",
	       "https://www.apache.org/licenses/LICENSE-2.0");
	printf("Copyright  %-22s %s\n", copyright, "not affiliated with MinIO, Inc.");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "-v") || !strcmp(name, "--version")) {
		print_version();
		return 0;
	}
	if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
		usage(stdout);
		return 0;
	}
	/* `kesc help VERB [SUB]` is `kesc VERB [SUB] --help`. */
	char help_flag[] = "--help", *help_argv[8];
	if (!strcmp(name, "help")) {
		if (argc < 3 || argc > 5) {
			usage(argc < 3 ? stdout : stderr);
			return argc < 3 ? 0 : EXIT_USAGE;
		}
		help_argv[0] = argv[0];
		for (int i = 2; i < argc; i++)
			help_argv[i - 1] = argv[i];
		help_argv[argc - 1] = help_flag;
		help_argv[argc] = NULL;
		argv = help_argv;
		name = argv[1];
	}
	for (const struct verb *v = VERBS; v->name; v++)
		if (!strcmp(v->name, name))
			return v->run(argc - 1, argv + 1);
	if (name[0] == '-' && name[1] == '-')
		return cli_fail("unknown flag: --%.*s. See 'kesc --help'",
		                (int)strcspn(name + 2, "="), name + 2);
	if (name[0] == '-')
		return cli_fail("unknown shorthand flag: '%c' in -%c. See 'kesc --help'", name[1],
		                name[1]);
	struct buf quoted;
	buf_init(&quoted, 4096);
	goformat_quote(&quoted, name);
	int rc = cli_fail("%s is not a kesc command. See 'kesc --help'",
	                  buf_failed(&quoted) ? "\"…\"" : quoted.data);
	buf_free(&quoted);
	return rc;
}
