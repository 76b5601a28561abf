/*
 * sdnotify.h — readiness notification to the service manager (systemd's sd_notify protocol).
 *
 * Under `Type=notify` systemd passes $NOTIFY_SOCKET, an AF_UNIX datagram socket (a path, or
 * "@name" for the abstract namespace), and waits for "READY=1" before it counts the service
 * as started. One datagram per state change; newline-separated VARIABLE=value lines. Written
 * here (a few dozen lines) rather than linking libsystemd: kesc needs no other part of it.
 */
#ifndef KESC_SERVER_SDNOTIFY_H
#define KESC_SERVER_SDNOTIFY_H

#include <stddef.h>

/* Sends state (e.g. "READY=1\nSTATUS=listening") to $NOTIFY_SOCKET. Returns 1 when sent, 0
 * when $NOTIFY_SOCKET is unset or empty (not run by a service manager: nothing to do), -1 on
 * failure with a message in err. */
int sdnotify_send(const char *state, char *err, size_t errlen);

/* The three states the server reports; each logs a warning when sending fails. status is a
 * short human-readable line for `systemctl status` (may be NULL). */
void sdnotify_ready(const char *status);
void sdnotify_reloading(void); /* adds MONOTONIC_USEC=, which systemd ≥ 253 expects */
void sdnotify_stopping(void);

#endif
