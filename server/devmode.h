/*
 * devmode.h — `kesc server --dev`: a ready-to-use development server in a persistent
 * directory. On first use it creates a self-signed server certificate (127.0.0.1, localhost),
 * an admin client key and certificate, and a filesystem keystore; every start rewrites
 * <dir>/config.yml from them, so the same client certificate keeps working across restarts.
 * Not for production: the keys lie unencrypted next to each other.
 */
#ifndef KESC_SERVER_DEVMODE_H
#define KESC_SERVER_DEVMODE_H

#include <stddef.h>

/* Prepares dir for listen address addr; config_path receives <dir>/config.yml. 0, or -1 with
 * err filled. */
int devmode_prepare(const char *dir, const char *addr, char *config_path, size_t pathlen, char *err,
                    size_t errlen);
/* Prints how to talk to the server at bound ("IP:PORT"): the KES_* exports and a curl line. */
void devmode_print_usage(const char *dir, const char *bound);

#endif
