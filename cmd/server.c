/* server.c — `kesc server`: run the key server (server/server.h), or --dev / --check-config. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "cmd/cmd.h"
#include "server/devmode.h"
#include "server/server.h"

#define DEV_DIR_DEFAULT  ".kesc-dev"
#define DEV_ADDR_DEFAULT "127.0.0.1:7373"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: kesc server --config FILE [--addr IP:PORT]\n"
	        "       kesc server --dev [--addr IP:PORT] [--dir DIR]\n"
	        "       kesc server --check-config --config FILE\n\n"
	        "  --config FILE    KES configuration file (YAML)\n"
	        "  --addr IP:PORT   listen address; overrides the config (port 0: any free port)\n"
	        "  --dev            development server with certificates in DIR (default %s)\n"
	        "  --dir DIR        the --dev directory\n"
	        "  --check-config   check the configuration and what starting needs, change\n"
	        "                   nothing, then exit (0: would start, 1: would not)\n"
	        "  -h, --help       print this help\n\n"
	        "Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT stop after finishing\n"
	        "the requests in flight.\n",
	        DEV_DIR_DEFAULT);
}

/* "--name VALUE" or "--name=VALUE"; advances *i. NULL if arg is not this option. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);
	const char *arg = argv[*i];
	if (strncmp(arg, name, n) != 0)
		return NULL;
	if (arg[n] == '=')
		return arg + n + 1;
	if (arg[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

static void print_dev_usage(const char *bound, void *arg)
{
	devmode_print_usage(arg, bound);
}

int cmd_server(int argc, char **argv)
{
	struct server_options opt = {0};
	const char *dir = NULL;
	bool dev = false;
	for (int i = 1; i < argc; i++) {
		bool missing = false;
		const char *v, *opt_name = argv[i];
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--dev")) {
			dev = true;
		} else if (!strcmp(argv[i], "--check-config")) {
			opt.check_only = true;
		} else if ((v = option_value(argc, argv, &i, "--config", &missing))) {
			opt.config_path = v;
		} else if ((v = option_value(argc, argv, &i, "--addr", &missing))) {
			opt.addr = v;
		} else if ((v = option_value(argc, argv, &i, "--dir", &missing))) {
			dir = v;
		} else if ((v = option_value(argc, argv, &i, "--auth", &missing)) ||
		           (v = option_value(argc, argv, &i, "--key", &missing)) ||
		           (v = option_value(argc, argv, &i, "--cert", &missing))) {
			fprintf(stderr,
			        "kesc: warning: '%s' is deprecated and ignored (as in KES); "
			        "use the config file\n",
			        opt_name);
		} else if (missing) {
			return cli_usage_error("server", "flag needs an argument: %s", argv[i]);
		} else {
			/* Only the name: a mistyped "--secret=…" must not be repeated. */
			const char *arg = argv[i];
			int dashes = arg[0] == '-' ? arg[1] == '-' ? 2 : 1 : 0;
			if (dashes == 0)
				return cli_usage_error("server", "too many arguments");
			if (dashes == 1)
				return cli_usage_error("server",
				                       "unknown shorthand flag: '%c' in -%c",
				                       arg[1], arg[1]);
			return cli_usage_error("server", "unknown flag: --%.*s",
			                       (int)strcspn(arg + 2, "="), arg + 2);
		}
		if (missing)
			return cli_usage_error("server", "flag needs an argument: %s", opt_name);
	}
	/* --dev writes its directory first: that is no check without side effects. */
	if (dev && opt.check_only)
		return cli_usage_error("server", "'--check-config' needs '--config', not '--dev'");
	if (dev && opt.config_path)
		return cli_usage_error("server", "'--dev' and '--config' cannot be used together");
	if (!dev && dir)
		return cli_usage_error("server", "'--dir' requires '--dev'");
	char dev_config[PATH_MAX];
	if (dev) {
		char err[1024];
		if (!dir)
			dir = DEV_DIR_DEFAULT;
		if (!opt.addr)
			opt.addr = DEV_ADDR_DEFAULT;
		if (devmode_prepare(dir, opt.addr, dev_config, sizeof(dev_config), err,
		                    sizeof(err)) < 0) {
			fprintf(stderr, "Error: %s\n", err);
			return 1;
		}
		opt.config_path = dev_config;
		opt.on_listening = print_dev_usage;
		opt.on_listening_arg = (void *)dir;
	}
	if (!opt.config_path)
		return cli_usage_error("server",
		                       "no config file specified (--config FILE, or --dev)");
	return server_run(&opt);
}
