/* test_policy.c — policy matching and the policy set (kes.md §3, kms-go policy_test.go). */
#include <stdlib.h>

#include "policy/directory.h"
#include "policy/policy.h"
#include "tests/unit/check.h"

#define ADMIN "c84cc9b91ae2399b043da7eca616048d4b4200edf2ff418d8af3835911db945d"
#define ID_A  "df7281ca3fed4ef7d06297eb7cb9d590a4edc863b4425f4762bb2afaebfd3258"
#define ID_B  "c0ecd5962eaf937422268b80a93dde4786dc9783fb2480ddea0f3e5fe471a731"
#define ID_C  "7ec8095a5308a535b72b35c7ccd4ce1d7c14af713acd22e2935a9d6e4fe18127"

static void test_match_vectors(void)
{
	CHECK(policy_pattern_matches("/v1/status", "/v1/status"));
	CHECK(!policy_pattern_matches("/v1/status", "/v1/status/"));
	CHECK(!policy_pattern_matches("/v1/status", "/v1/statu"));
	CHECK(policy_pattern_matches("/v1/key/create/*", "/v1/key/create/a"));
	CHECK(policy_pattern_matches("/v1/key/create/*", "/v1/key/create/"));
	/* the prefix may span '/' in HEAD */
	CHECK(policy_pattern_matches("/v1/*", "/v1/key/create/a"));
	CHECK(policy_pattern_matches("*", "/anything"));
	CHECK(!policy_pattern_matches("", ""));
	CHECK(!policy_pattern_matches("", "/v1/status"));
	/* a '*' not at the end is literal */
	CHECK(!policy_pattern_matches("/v1/key/*/my-key", "/v1/key/create/my-key"));
	CHECK(policy_pattern_matches("/v1/key/*/my-key", "/v1/key/*/my-key"));
	/* MinIO's documented bulk pattern never matched the real route */
	CHECK(!policy_pattern_matches("/v1/key/bulk/decrypt", "/v1/key/bulk/decrypt/k"));
}

static void test_useful(void)
{
	CHECK(policy_pattern_is_useful("/v1/status"));
	CHECK(policy_pattern_is_useful("/v1/key/*"));
	CHECK(policy_pattern_is_useful("*"));
	CHECK(!policy_pattern_is_useful(""));
	CHECK(!policy_pattern_is_useful("/v1/key/*/x"));
	CHECK(!policy_pattern_is_useful("*-*"));
}

/* kms-go/kes policy_test.go */
static void test_kes_vectors(void)
{
	const char *allow[] = {"/v1/key/create/my*", "/v1/key/create/your*"};
	const char *deny[] = {"/v1/key/create/my-key*"};
	struct policy p = {"p", (char **)allow, 2, (char **)deny, 1};
	CHECK(!policy_allows(&p, "/v1/key/create/my-key"));
	CHECK(!policy_allows(&p, "/v1/key/create/my-key1"));
	CHECK(policy_allows(&p, "/v1/key/create/my-minio-key"));
	CHECK(policy_allows(&p, "/v1/key/create/your-minio-key"));
	CHECK(!policy_allows(&p, "/v1/key/delete/my-minio-key"));

	const char *allow2[] = {"/v1/status"};
	struct policy q = {"q", (char **)allow2, 1, NULL, 0};
	CHECK(policy_allows(&q, "/v1/status"));
	CHECK(!policy_allows(&q, "/v1/key/create/my-key"));
	CHECK(!policy_allows(&q, "/v1/identity/list/a"));

	struct policy empty = {"e", NULL, 0, NULL, 0};
	CHECK(!policy_allows(&empty, "/v1/status"));
	CHECK(!policy_allows(NULL, "/v1/status"));
}

static void test_set(void)
{
	char err[256];
	struct policy_set *s = policy_set_new(ADMIN);
	CHECK(s != NULL);
	const char *allow[] = {"/v1/key/create/my-app*", "/v1/key/generate/my-app*"};
	const char *deny[] = {"/v1/key/generate/my-app-internal*"};
	const char *ids[] = {ID_A, ID_B};
	CHECK_EQ_INT(policy_set_add(s, "my-app", allow, 2, deny, 1, ids, 2, err, sizeof err), 0);
	const char *allow2[] = {"/v1/key/delete/my-app*"};
	const char *ids2[] = {ID_C};
	CHECK_EQ_INT(policy_set_add(s, "my-app-ops", allow2, 1, NULL, 0, ids2, 1, err, sizeof err),
	             0);

	CHECK_EQ_STR(policy_set_admin(s), ADMIN);
	CHECK(policy_set_is_admin(s, ADMIN));
	CHECK(!policy_set_is_admin(s, ID_A));
	CHECK(!policy_set_is_admin(s, ""));
	CHECK(policy_set_allows(s, ADMIN, "/v1/anything/at/all"));
	CHECK(policy_set_allows(s, ID_A, "/v1/key/create/my-app-1"));
	CHECK(policy_set_allows(s, ID_B, "/v1/key/generate/my-app-1"));
	CHECK(!policy_set_allows(s, ID_B, "/v1/key/generate/my-app-internal-1"));
	CHECK(!policy_set_allows(s, ID_C, "/v1/key/create/my-app-1"));
	CHECK(policy_set_allows(s, ID_C, "/v1/key/delete/my-app-1"));
	/* unknown identity, a prefix of a known one, and one with a trailing extra char */
	CHECK(!policy_set_allows(s, "deadbeef", "/v1/key/create/my-app-1"));
	CHECK(policy_set_policy_of(s, "df7281ca3fed4ef7") == NULL);
	CHECK(policy_set_policy_of(s, ID_A "0") == NULL);
	CHECK_EQ_STR(policy_set_policy_of(s, ID_C)->name, "my-app-ops");
	CHECK(policy_set_find(s, "my-app") != NULL);
	CHECK(policy_set_find(s, "nope") == NULL);

	const char **names;
	CHECK_EQ_INT(policy_set_names(s, &names), 2);
	CHECK_EQ_STR(names[0], "my-app");
	CHECK_EQ_STR(names[1], "my-app-ops");
	const char **list;
	CHECK_EQ_INT(policy_set_identities(s, &list), 3);
	CHECK_EQ_STR(list[0], ID_C);
	CHECK_EQ_STR(list[1], ID_B);
	CHECK_EQ_STR(list[2], ID_A);

	/* errors with KES's texts */
	const char *dup[] = {ID_A};
	CHECK_EQ_INT(policy_set_add(s, "other", NULL, 0, NULL, 0, dup, 1, err, sizeof err), -1);
	CHECK_EQ_STR(err,
	             "cannot assign policy 'other' to '" ID_A "': identity already has a policy");
	const char *adm[] = {ADMIN};
	CHECK_EQ_INT(policy_set_add(s, "other", NULL, 0, NULL, 0, adm, 1, err, sizeof err), -1);
	CHECK_EQ_STR(err, "invalid policy 'other': identity '" ADMIN "' is already admin");
	CHECK_EQ_INT(policy_set_add(s, "my.app", NULL, 0, NULL, 0, NULL, 0, err, sizeof err), -1);
	CHECK_EQ_STR(err, "policy name 'my.app' is empty, too long or contains invalid characters");
	CHECK_EQ_INT(policy_set_add(s, "my-app", NULL, 0, NULL, 0, NULL, 0, err, sizeof err), -1);
	CHECK_EQ_STR(err, "policy 'my-app' is defined multiple times");
	const char *bad[] = {"a/b"};
	CHECK_EQ_INT(policy_set_add(s, "other", NULL, 0, NULL, 0, bad, 1, err, sizeof err), -1);
	CHECK_EQ_STR(err, "identity 'a/b' is empty, too long or contains invalid characters");
	const char *twice[] = {"abc", "abc"};
	CHECK_EQ_INT(policy_set_add(s, "other", NULL, 0, NULL, 0, twice, 2, err, sizeof err), -1);
	/* a failed add leaves the set unchanged */
	CHECK_EQ_INT(policy_set_names(s, &names), 2);
	policy_set_free(s);
}

static void test_names(void)
{
	char err[256];
	const char *valid[] = {"my-key",    "abc123", "0",   "123ABC321",
	                       "_-___---_", "_0",     "0-Z", "my_key-0"};
	const char *invalid[] = {
	    "",
	    "my.key",
	    "key/",
	    "-a",
	    "a-",
	    "_",
	    "hel<lo",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaa"};
	struct policy_set *s = policy_set_new("disabled");
	for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
		CHECK_EQ_INT(
		    policy_set_add(s, valid[i], NULL, 0, NULL, 0, NULL, 0, err, sizeof err), 0);
	for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
		CHECK_EQ_INT(
		    policy_set_add(s, invalid[i], NULL, 0, NULL, 0, NULL, 0, err, sizeof err), -1);
	/* a disabled admin never matches anything, not even its own spelling via policies */
	CHECK(policy_set_is_admin(s, "disabled")); /* plain string compare, as KES */
	CHECK(!policy_set_allows(s, ID_A, "/v1/status"));
	policy_set_free(s);

	struct policy_set *none = policy_set_new("");
	CHECK(!policy_set_is_admin(none, ""));
	CHECK(!policy_set_allows(none, "", "/v1/status"));
	policy_set_free(none);
}

/* policy/directory.c: identity → (tenant, policy) for many identities, each found, nothing
 * else found, no identity twice. */
static void test_directory(void)
{
	struct policy_set *ps = policy_set_new("");
	char err[256];
	const char *allow[] = {"/v1/key/*"};
	CHECK_EQ_INT(policy_set_add(ps, "p", allow, 1, NULL, 0, NULL, 0, err, sizeof err), 0);
	const struct policy *p = policy_set_find(ps, "p");
	struct identity_directory *d = identity_directory_new(3000);
	CHECK(d != NULL);
	char id[80];
	for (size_t i = 0; i < 3000; i++) {
		snprintf(id, sizeof id, "%064zx", i * 7919);
		CHECK_EQ_INT(identity_directory_add(d, id, i % 1000, p), 0);
	}
	snprintf(id, sizeof id, "%064zx", (size_t)7919);
	CHECK_EQ_INT(identity_directory_add(d, id, 5, p), -1); /* already there */
	size_t tenant = 99;
	const struct policy *found = NULL;
	for (size_t i = 0; i < 3000; i++) {
		snprintf(id, sizeof id, "%064zx", i * 7919);
		CHECK(identity_directory_find(d, id, &tenant, &found));
		CHECK(tenant == i % 1000 && found == p);
	}
	snprintf(id, sizeof id, "%064zx", (size_t)7918);
	CHECK(!identity_directory_find(d, id, &tenant, &found));
	CHECK(!identity_directory_find(d, "", &tenant, &found));
	/* a prefix or an extension of a configured identity is another identity */
	snprintf(id, sizeof id, "%064zx", (size_t)7919);
	id[63] = '\0';
	CHECK(!identity_directory_find(d, id, &tenant, &found));
	identity_directory_free(d);
	policy_set_free(ps);
}

int main(void)
{
	RUN(test_match_vectors);
	RUN(test_useful);
	RUN(test_kes_vectors);
	RUN(test_set);
	RUN(test_names);
	RUN(test_directory);
	return CHECK_DONE();
}
