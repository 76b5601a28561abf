/* fuzz_config.c — the config loader (server/config*.c, libyaml underneath) on arbitrary bytes:
 * it must never crash, leak or read out of bounds, whatever the YAML looks like; and what it
 * accepts must hold the invariants the server relies on. With -Dfuzzing=true the build defines
 * KESC_FUZZING, which keeps the loader from opening Kubernetes JWT files named by the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "tests/fuzz/fuzz.h"

static void check_invariants(const struct config *c)
{
	if (!c->address || !c->admin_identity || !c->admin_identity[0] || !c->tls.key ||
	    !c->tls.cert)
		abort();
	if (c->cache.expiry_any_ms <= 0 || c->cache.expiry_unused_ms <= 0 ||
	    c->cache.expiry_offline_ms < 0)
		abort();
	for (size_t i = 0; i < c->api_count; i++)
		if (!c->api[i].path || c->api[i].path[0] != '/' || c->api[i].timeout_ms < 0)
			abort();
	for (size_t i = 0; i < c->policy_count; i++)
		for (size_t j = 0; j < c->policies[i].identity_count; j++)
			if (strcmp(c->policies[i].identities[j], c->admin_identity) == 0)
				abort();
	if (c->keystore == CONFIG_KEYSTORE_FS && (!c->fs_path || !c->fs_path[0]))
		abort();
	if (c->keystore == CONFIG_KEYSTORE_VAULT &&
	    (!c->vault.endpoint || !c->vault.engine || !c->vault.auth_engine ||
	     (c->vault.kv_version != 1 && c->vault.kv_version != 2)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct config *c = NULL;
	if (config_parse_flags("fuzz.yml", (const char *)data, size, CONFIG_ALLOW_NO_KEYSTORE, &c,
	                       err, sizeof err, NULL, NULL) == 0) {
		check_invariants(c);
		config_free(c);
	}

	/* the scalar syntaxes on their own */
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int64_t ms;
	int level;
	(void)config_parse_duration(s, &ms);
	(void)config_parse_log_level(s, &level);
	free(s);
	return 0;
}
