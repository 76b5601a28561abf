/*
 * server.h — the server process: load the configuration, build state and TLS, bind the one
 * listening socket the event loops share, run until SIGTERM/SIGINT (then drain), reload on
 * SIGHUP.
 */
#ifndef KESC_SERVER_SERVER_H
#define KESC_SERVER_SERVER_H

#include <stdbool.h>

struct server_options {
	const char *config_path;
	const char *addr; /* overrides the config's address when set */
	bool check_only;  /* --check-config: check without side effects (config_check.h), exit */
	/* Called once the sockets listen, with the bound "IP:PORT" (may be NULL). */
	void (*on_listening)(const char *bound, void *arg);
	void *on_listening_arg;
};

/* Runs the server; returns the process exit code (0 after a clean drain, 1 on a start-up
 * error). Start-up errors are printed to stderr. */
int server_run(const struct server_options *opt);

/* Splits "IP:PORT", "[IPv6]:PORT" or ":PORT" (all interfaces). 0 or -1. */
int server_parse_address(const char *addr, char *host, unsigned long hostlen, unsigned *port);

#endif
