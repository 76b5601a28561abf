/* main.c — `kesc`: dispatch to a verb (cmd.h). */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "kesc_version.h"

static const struct verb VERBS[] = {
    {"server", cmd_server, "start a kesc server"},
    {"key", cmd_key, "manage cryptographic keys"},
    {"identity", cmd_identity, "create and inspect identities (certificates)"},
    {"policy", cmd_policy, "inspect policies"},
    {"status", cmd_status, "print the server status"},
    {"metric", cmd_metric, "print server metrics"},
    {"log", cmd_log, "follow the server's audit or error log"},
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
	             "\nSee kesc(1) and kesc.yml(5).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "-v") || !strcmp(name, "--version")) {
		printf("kesc version %s\n", KESC_VERSION);
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
	fprintf(stderr, "kesc: '%s' is not a kesc command. See 'kesc --help'.\n", name);
	return EXIT_USAGE;
}
