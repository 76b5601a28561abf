/* test_identity.c — certificate identities against the openssl CLI, and API-key parsing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keystore/bytes.h"
#include "policy/client_chain.h"
#include "policy/ed25519.h"
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

	/* Ed25519 (what KES and MinIO generate for API keys): mbedTLS 2.28 cannot parse the key,
	 * the identity is still the hash of the SubjectPublicKeyInfo */
	char ed[128], ed_want[65];
	snprintf(ed, sizeof ed, "%s/ed.pem", dir);
	CHECK_EQ_INT(sh("openssl req -x509 -newkey ed25519 -nodes -keyout edk.pem -out ed.pem "
	                "-days 1 -subj /CN=ed 2>/dev/null"),
	             0);
	openssl_identity(ed, ed_want);
	CHECK_EQ_INT(strlen(ed_want), 64);
	memset(got, 0, sizeof got);
	CHECK_EQ_INT(identity_of_cert_file(ed, got, err, sizeof err), 0);
	CHECK_EQ_STR(got, ed_want);

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
	CHECK(
	    identity_is_valid("c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d"));
	CHECK(
	    !identity_is_valid("C84CC9B91AE2399B043DA7ECA616048D4B4200EDF2FF418D8AF3835911DB945D"));
	CHECK(!identity_is_valid("disabled"));
	CHECK(!identity_is_valid(""));
	CHECK(
	    !identity_is_valid("c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945"));
	CHECK(!identity_is_valid(
	    "c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945dd"));
}

/* kms-go apikey_test.go: parse failures with KES's texts, and identities of valid keys. */
static void test_api_keys(void)
{
	char out[65], err[256];
	CHECK_EQ_INT(identity_of_api_key("v1:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E", out,
	                                 err, sizeof err),
	             -1);
	CHECK_EQ_STR(err, "invalid API key: invalid length");
	CHECK_EQ_INT(identity_of_api_key("kes:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E", out,
	                                 err, sizeof err),
	             -1);
	CHECK_EQ_STR(err, "invalid API key: invalid length");
	CHECK_EQ_INT(identity_of_api_key("kes:v1:sbDvZFqUPFFwxRS4EkuoEb2nyyInkdKSUEYHXFHeTouW", out,
	                                 err, sizeof err),
	             -1);
	CHECK_EQ_STR(err, "invalid API key: unsupported type");
	CHECK_EQ_INT(identity_of_api_key("kes:v1:AGaV6VXHasF0", out, err, sizeof err), -1);
	CHECK_EQ_STR(err, "invalid API key: invalid length");

	static const char *const vectors[][2] = {
	    {"kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
	     "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"},
	    {"kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw",
	     "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"},
	    {"kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ",
	     "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"},
	    {"kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc",
	     "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"},
	    /* KES trims the prefix only if present: bare base64 works too */
	    {"AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs",
	     "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"},
	};
	for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
		memset(out, 0, sizeof out);
		CHECK_EQ_INT(identity_of_api_key(vectors[i][0], out, err, sizeof err), 0);
		CHECK_EQ_STR(out, vectors[i][1]);
	}
	/* a parse-only vector of apikey_test.go */
	CHECK_EQ_INT(identity_of_api_key("kes:v1:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E", out,
	                                 err, sizeof err),
	             0);
	CHECK(identity_is_valid(out));
}

static void check_public(const char *seed_hex, const char *pub_hex)
{
	uint8_t seed[32], pub[32];
	char hex[65];
	CHECK_EQ_INT(hex_decode(seed, 32, seed_hex, 64), 0);
	CHECK_EQ_INT(ed25519_public_from_seed(pub, seed), 0);
	hex_encode(hex, pub, 32);
	CHECK_EQ_STR(hex, pub_hex);
}

/* RFC 8032 §7.1 test vectors 1-3 and the SHA(abc) one, plus the API key's SPKI of kes.md §2.2. */
static void test_ed25519(void)
{
	check_public("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	             "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	check_public("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	             "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
	check_public("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	             "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025");
	check_public("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
	             "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf");
	/* seed of kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs */
	check_public("6695e955c76ac174167681eb459d08e79367c7932038a42f8ce5375e9cf0d02c",
	             "97c655cdfa5829dcbf4d1e791f125ea552f0342cce061bf1d9976c5f7f7cafa7");
}

/* Parses the PEM files named (in the directory) into one chain, in order. */
static int load_chain(mbedtls_x509_crt *chain, const char *const *names, size_t n)
{
	mbedtls_x509_crt_init(chain);
	for (size_t i = 0; i < n; i++) {
		char path[160];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (mbedtls_x509_crt_parse_file(chain, path) != 0)
			return -1;
	}
	return 0;
}

static enum client_chain_verdict chain_verdict(const char *const *names, size_t n,
                                               char out[IDENTITY_HEX_LEN + 1])
{
	mbedtls_x509_crt chain;
	enum client_chain_verdict v = CLIENT_CHAIN_EMPTY;
	if (load_chain(&chain, names, n) == 0)
		v = client_chain_identity(&chain, out);
	else
		CHECK(!"a test certificate did not parse");
	mbedtls_x509_crt_free(&chain);
	return v;
}

#define CHAIN(...)        ((const char *const[]){__VA_ARGS__})
#define NCHAIN(...)       (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define VERDICT(out, ...) chain_verdict(CHAIN(__VA_ARGS__), NCHAIN(__VA_ARGS__), out)

/* The first certificate is the identity (its key is the one the handshake proves); a CA or
 * a weak key first is none; a second end-entity certificate is KES's "more than one". */
static void test_client_chain(void)
{
	char got[IDENTITY_HEX_LEN + 1], want[IDENTITY_HEX_LEN + 1];
	/* sh() takes one command of up to 1 KiB: one certificate per call. */
	static const char *const make[] = {
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
	    "-out ca.pem -days 1 -subj /CN=ca -addext basicConstraints=critical,CA:TRUE",
	    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key "
	    "-out leaf.csr -subj /CN=leaf && "
	    "printf 'basicConstraints=critical,CA:FALSE\\n' > leaf.ext && "
	    "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
	    "-extfile leaf.ext -out leaf.pem",
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
	    "other.key "
	    "-out other.pem -days 1 -subj /CN=other -addext basicConstraints=critical,CA:FALSE",
	    "openssl req -x509 -newkey rsa:1024 -nodes -keyout weak.key -out weak.pem -days 1 "
	    "-subj /CN=weak -addext basicConstraints=critical,CA:FALSE",
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-192 -nodes -keyout p192.key "
	    "-out p192.pem -days 1 -subj /CN=p192 -addext basicConstraints=critical,CA:FALSE",
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -days 1 "
	    "-subj /CN=rsa -addext basicConstraints=critical,CA:FALSE",
	};
	for (size_t i = 0; i < sizeof make / sizeof make[0]; i++) {
		char cmd[900];
		snprintf(cmd, sizeof cmd, "(%s) 2>/dev/null", make[i]);
		CHECK_EQ_INT(sh(cmd), 0);
	}
	char leaf[160];
	snprintf(leaf, sizeof leaf, "%s/leaf.pem", dir);
	openssl_identity(leaf, want);

	CHECK_EQ_INT(VERDICT(got, "leaf.pem"), CLIENT_CHAIN_OK);
	CHECK_EQ_STR(got, want);
	CHECK_EQ_INT(VERDICT(got, "leaf.pem", "ca.pem"), CLIENT_CHAIN_OK);
	CHECK_EQ_STR(got, want);
	/* The attack: a CA the client holds the key of, then someone else's certificate. */
	CHECK_EQ_INT(VERDICT(got, "ca.pem", "leaf.pem"), CLIENT_CHAIN_CA_FIRST);
	CHECK_EQ_STR(got, "");
	CHECK_EQ_INT(VERDICT(got, "ca.pem"), CLIENT_CHAIN_CA_FIRST);
	CHECK_EQ_INT(VERDICT(got, "leaf.pem", "other.pem"), CLIENT_CHAIN_SECOND_LEAF);
	CHECK_EQ_STR(got, "");
	CHECK_EQ_INT(VERDICT(got, "leaf.pem", "ca.pem", "other.pem"), CLIENT_CHAIN_SECOND_LEAF);
	CHECK_EQ_INT(VERDICT(got, "weak.pem"), CLIENT_CHAIN_WEAK_KEY);
	CHECK_EQ_INT(VERDICT(got, "p192.pem"), CLIENT_CHAIN_WEAK_KEY);
	CHECK_EQ_INT(VERDICT(got, "rsa.pem"), CLIENT_CHAIN_OK);
	CHECK_EQ_INT(client_chain_identity(NULL, got), CLIENT_CHAIN_EMPTY);
	mbedtls_x509_crt empty;
	mbedtls_x509_crt_init(&empty);
	CHECK_EQ_INT(client_chain_identity(&empty, got), CLIENT_CHAIN_EMPTY);
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/kesc-test-identity-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_cert_files);
	RUN(test_client_chain);
	RUN(test_is_valid);
	RUN(test_api_keys);
	RUN(test_ed25519);
	char rm[128];
	snprintf(rm, sizeof rm, "rm -rf %s", dir);
	if (system(rm) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return CHECK_DONE();
}
