/*
 * config_check.h — what can be found out about a loaded configuration without changing
 * anything: the checks behind `kesc server --check-config` and the warnings every start and
 * reload logs. Nothing here creates, writes or removes a file, a directory or a key; the only
 * outside effects are a listen socket bound and closed again (without SO_REUSEPORT, so an
 * address another process listens on is found) and, for Vault, a login and reads.
 *
 * Levels: an error is something starting would fail on (or, for an expired certificate,
 * refuses to do); a warning is something that works but is probably not what was meant; a note
 * says what starting would do that --check-config did not (create a directory, a key).
 */
#ifndef KESC_SERVER_CONFIG_CHECK_H
#define KESC_SERVER_CONFIG_CHECK_H

#include "server/config.h"

enum check_level { CHECK_NOTE, CHECK_WARNING, CHECK_ERROR };

typedef void (*check_report_fn)(void *arg, enum check_level level, const char *message);

/* Certificates expiring within this many days are a warning. */
#define CHECK_CERT_EXPIRY_WARN_DAYS 30

/*
 * The warnings a start and a reload log: a private key file (tls.key, the Vault client key)
 * that group or others may access, a server certificate that expires within 30 days or is not
 * valid yet, and api: keys that name no route kesc serves (KES ignores those too). Files that
 * cannot be read are left to the loaders, which report them as errors.
 */
void config_check_warnings(const struct config *cfg, check_report_fn report, void *arg);

/* The log files of cfg can be opened for appending by this user (each exists and is
 * writable, or its directory is). A reload checks this before it builds anything, so that a
 * reload refused for its log file has not created the keys of its `keys:` either. Returns the
 * number of errors reported. */
unsigned config_check_log_files(const struct config *cfg, check_report_fn report, void *arg);

/* Whether an api: entry for a route kesc serves sets skip_auth: then the TLS layer requests
 * instead of requires a client certificate, as in KES. Entries for other paths are ignored
 * whole, so they relax nothing. */
bool config_any_route_skips_auth(const struct config *cfg);

/*
 * Everything --check-config checks after loading the file: the warnings above; the TLS
 * certificate, key and CAs as the server loads them; the keystore directory (usable, or
 * creatable by this user) or the Vault client files; the log files; the listen address; and,
 * for Vault, a login and a read of each `keys:` entry. Returns the number of errors reported.
 */
unsigned config_check_all(const struct config *cfg, check_report_fn report, void *arg);

#endif
