/*
 * cmd.h — the verbs of the kesc command line. Each verb group lives in its own file and is
 * dispatched from the table in main.c. A verb returns the process exit code, as kes does:
 *   0 success; 1 the operation failed (server error, not found, denied…) or the command line
 *   was wrong; 2 a command group was called without its command (its usage is printed).
 */
#ifndef KESC_CMD_CMD_H
#define KESC_CMD_CMD_H

#define EXIT_USAGE 2

struct verb {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the verb name */
	const char *summary;
};

/* Client verbs (key.c, identity.c, policy.c, status.c, metric.c, log.c, ls.c), migrate.c. */
int cmd_server(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_identity(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_metric(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

#endif
