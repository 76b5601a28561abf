/*
 * tls_load.h — reading the server's TLS files: the certificate chain (tls.cert), the private
 * key (tls.key, tls.password), the client CAs (tls.ca: a file, or every file in a directory,
 * as KES reads it) and, for `tls.auth: on` without tls.ca, the system trust store found the
 * way Go finds it on Linux (so that kesc trusts what KES trusts):
 *
 *   bundle file: $SSL_CERT_FILE if set, else the first that exists of
 *                /etc/ssl/certs/ca-certificates.crt (Debian, Ubuntu), /etc/pki/tls/certs/
 *                ca-bundle.crt (Fedora, RHEL 6), /etc/ssl/ca-bundle.pem (openSUSE),
 *                /etc/pki/tls/cacert.pem (OpenELEC), /etc/pki/ca-trust/extracted/pem/
 *                tls-ca-bundle.pem (CentOS, RHEL 7), /etc/ssl/cert.pem (Alpine);
 *   directories: $SSL_CERT_DIR (':'-separated) if set, else /etc/ssl/certs and
 *                /etc/pki/tls/certs; every file in them, except symbolic links to a file in
 *                the same directory (the OpenSSL hash links).
 *
 * Certificates found twice (the Debian bundle repeats the directory) are kept once; files
 * that are not certificates are skipped, as Go does. A store without any certificate is an
 * error: with tls.auth on it would refuse every client.
 *
 * Errors name the file and say what is wrong in words ("No such file or directory",
 * "Permission denied", "not a PEM or DER certificate"), never an mbedTLS code alone. Buffers
 * that held a private key are zeroed before they are freed.
 */
#ifndef KESC_SERVER_TLS_LOAD_H
#define KESC_SERVER_TLS_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

/* Appends the certificates in path to chain. what names the file in errors ("TLS
 * certificate"). 0 or -1 with "failed to load <what> '<path>': <reason>" in err. */
int tls_load_cert_file(mbedtls_x509_crt *chain, const char *path, const char *what, char *err,
                       size_t errlen);

/* Parses the private key in path (password may be NULL). 0 or -1 with the reason in err. */
int tls_load_key_file(mbedtls_pk_context *key, const char *path, const char *password, char *err,
                      size_t errlen);

/* tls.ca: the certificates of a file, or of every non-directory entry of a directory (each
 * must hold at least one certificate). 0 or -1. */
int tls_load_ca_path(mbedtls_x509_crt *ca, const char *path, char *err, size_t errlen);

/* The system trust store (see above). Returns the number of certificates added, with where
 * they came from in source ("/etc/ssl/certs/ca-certificates.crt, /etc/ssl/certs"), or -1
 * with the reason in err (nothing found, or no certificate in what was found). */
int tls_load_system_roots(mbedtls_x509_crt *ca, char *source, size_t sourcelen, char *err,
                          size_t errlen);

/* Seconds from now until crt's notAfter (negative once expired), and until its notBefore. */
int64_t tls_cert_seconds_left(const mbedtls_x509_crt *crt, time_t now);
int64_t tls_cert_seconds_until_valid(const mbedtls_x509_crt *crt, time_t now);

#endif
