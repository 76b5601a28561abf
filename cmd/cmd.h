/*
 * cmd.h — the verbs of the kesc command line. Each verb group lives in its own file and is
 * dispatched from the table in main.c. A verb returns the process exit code:
 *   0 success, 1 the operation failed (server error, not found, denied…), 2 usage error.
 */
#ifndef KESC_CMD_CMD_H
#define KESC_CMD_CMD_H

#define EXIT_USAGE 2

struct verb {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the verb name */
	const char *summary;
};

/* Client verbs (key.c, identity.c, policy.c, status.c, log.c) and migrate.c. */
int cmd_server(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_identity(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_metric(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

#endif
