/* test_identity.c — certificate identities against the openssl CLI, and API-key parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/identity.h"
#include "tests/unit/check.h"

static char dir[64];

/* Runs a shell command inside the test's temporary directory. */
static int sh(const char *command)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "cd %s && %s", dir, command);
	return system(cmd);
}

/* openssl's view: SHA-256 of the DER SubjectPublicKeyInfo, printed as bare hex. */
static void openssl_identity(const char *cert, char out[65])
{
	char cmd[1024], path[128];
	snprintf(path, sizeof path, "%s/expected", dir);
	snprintf(cmd, sizeof cmd,
	         "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform DER | "
	         "openssl dgst -sha256 -r | cut -c1-64 > %s",
	         cert, path);
	out[0] = 0;
	CHECK_EQ_INT(system(cmd), 0);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fgets(out, 65, f) != NULL);
	fclose(f);
}

static void test_cert_files(void)
{
	char pem[128], der[128], mixed[128], got[65], want[65], err[256];
	snprintf(pem, sizeof pem, "%s/c.pem", dir);
	snprintf(der, sizeof der, "%s/c.der", dir);
	snprintf(mixed, sizeof mixed, "%s/mixed.pem", dir);
	CHECK_EQ_INT(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	                "-nodes -keyout k.pem -out c.pem -days 1 -subj /CN=test 2>/dev/null"),
	             0);
	CHECK_EQ_INT(sh("openssl x509 -in c.pem -outform DER -out c.der"), 0);
	/* a key block first, then the certificate, then another certificate */
	CHECK_EQ_INT(sh("openssl req -x509 -newkey rsa:2048 -nodes -keyout k2.pem "
	                "-out c2.pem -days 1 -subj /CN=other 2>/dev/null && "
	                "cat k.pem c.pem c2.pem > mixed.pem"),
	             0);
	openssl_identity(pem, want);
	CHECK_EQ_INT(strlen(want), 64);

	CHECK_EQ_INT(identity_of_cert_file(pem, got, err, sizeof err), 0);
	CHECK_EQ_STR(got, want);
	CHECK(identity_is_valid(got));
	memset(got, 0, sizeof got);
	CHECK_EQ_INT(identity_of_cert_file(der, got, err, sizeof err), 0);
	CHECK_EQ_STR(got, want);
	memset(got, 0, sizeof got);
	CHECK_EQ_INT(identity_of_cert_file(mixed, got, err, sizeof err), 0);
	CHECK_EQ_STR(got, want);

	char rsa[128], rsa_want[65];
	snprintf(rsa, sizeof rsa, "%s/c2.pem", dir);
	openssl_identity(rsa, rsa_want);
	CHECK_EQ_INT(identity_of_cert_file(rsa, got, err, sizeof err), 0);
	CHECK_EQ_STR(got, rsa_want);

	char key[128];
	snprintf(key, sizeof key, "%s/k.pem", dir);
	CHECK_EQ_INT(identity_of_cert_file(key, got, err, sizeof err), -1);
	CHECK(strstr(err, "no valid X.509 certificate") != NULL);
	char missing[128];
	snprintf(missing, sizeof missing, "%s/missing.pem", dir);
	CHECK_EQ_INT(identity_of_cert_file(missing, got, err, sizeof err), -1);
	CHECK(strstr(err, "cannot open") != NULL);
}

static void test_is_valid(void)
{
	CHECK(identity_is_valid("c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d"));
	CHECK(!identity_is_valid("C84CC9B91AE2399B043DA7ECA616048D4B4200EDF2FF418D8AF3835911DB945D"));
	CHECK(!identity_is_valid("disabled"));
	CHECK(!identity_is_valid(""));
	CHECK(!identity_is_valid("c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945"));
	CHECK(!identity_is_valid("c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945dd"));
}

/* kms-go apikey_test.go parse cases; identities need Ed25519, which kesc reports as missing. */
static void test_api_keys(void)
{
	char out[65], err[256];
	CHECK_EQ_INT(identity_of_api_key("v1:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E", out, err,
	                                 sizeof err),
	             -1);
	CHECK_EQ_STR(err, "invalid API key: invalid length");
	CHECK_EQ_INT(identity_of_api_key("kes:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E", out, err,
	                                 sizeof err),
	             -1);
	CHECK_EQ_STR(err, "invalid API key: invalid length");
	CHECK_EQ_INT(identity_of_api_key("kes:v1:sbDvZFqUPFFwxRS4EkuoEb2nyyInkdKSUEYHXFHeTouW", out,
	                                 err, sizeof err),
	             -1);
	CHECK_EQ_STR(err, "invalid API key: unsupported type");
	CHECK_EQ_INT(identity_of_api_key("kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", out,
	                                 err, sizeof err),
	             -1);
	CHECK_EQ_STR(err, "API keys (Ed25519) are not supported by kesc");
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/kesc-test-identity-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_cert_files);
	RUN(test_is_valid);
	RUN(test_api_keys);
	char rm[128];
	snprintf(rm, sizeof rm, "rm -rf %s", dir);
	if (system(rm) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return CHECK_DONE();
}
