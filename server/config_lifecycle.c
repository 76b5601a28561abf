/*
 * config_lifecycle.c — the kesc-only `key_lifecycle:` section (issue 14): automatic rotation by
 * age and deletion protection (a restore window before a deleted key is purged).
 *
 *   key_lifecycle:
 *     rotate_after: 2160h     # rotate a key whose current version is older; absent/0: never
 *     delete_window: 168h     # a delete can be undone this long; absent/0: KES's delete
 *     check_interval: 1h      # how often the server looks for due rotations and purges
 *
 * Both change stored keys in place, which a Vault K/V v1 mount can only do by overwriting; with
 * such a mount they need keystore.vault.allow_unsafe_kv_v1_update (vault_replace.c says what
 * that costs), else the configuration is refused rather than failing every delete later.
 */
#include <stdio.h>

#include "server/config_internal.h"

/* The most either duration may be: ten years, far beyond any use and far from overflows. */
#define LIFECYCLE_MAX_MS ((int64_t)10 * 366 * 24 * 3600 * 1000)

static int lifecycle_duration(struct cfg_ctx *x, const struct ynode *sec, const char *key,
                              const char *field, int64_t min_ms, int64_t *slot)
{
	int64_t ms = 0;
	int r = cfg_get_duration(x, sec, key, field, &ms);

	if (r <= 0)
		return r;
	if (ms == 0) {
		*slot = 0;
		return 0;
	}
	if (ms < min_ms || ms > LIFECYCLE_MAX_MS)
		return cfg_fail(x, cfg_line_of(sec, key), field,
		                "must be 0 (off) or between %llds and 10 years",
		                (long long)(min_ms / 1000));
	*slot = ms;
	return 0;
}

int cfg_load_lifecycle(struct cfg_ctx *x, const struct ynode *root)
{
	struct config *c = x->c;
	const struct ynode *sec;
	int r = cfg_get_map(x, root, "key_lifecycle", "key_lifecycle", &sec);

	if (r <= 0)
		return r;
	if (lifecycle_duration(x, sec, "rotate_after", "key_lifecycle.rotate_after", 1000,
	                       &c->lifecycle.rotate_after_ms) < 0 ||
	    lifecycle_duration(x, sec, "delete_window", "key_lifecycle.delete_window", 1000,
	                       &c->lifecycle.delete_window_ms) < 0 ||
	    lifecycle_duration(x, sec, "check_interval", "key_lifecycle.check_interval", 1000,
	                       &c->lifecycle.check_interval_ms) < 0)
		return -1;
	if (c->lifecycle.check_interval_ms == 0)
		c->lifecycle.check_interval_ms = CONFIG_LIFECYCLE_CHECK_MS;
	bool changes = c->lifecycle.rotate_after_ms > 0 || c->lifecycle.delete_window_ms > 0;
	if (changes && c->keystore == CONFIG_KEYSTORE_VAULT && c->vault.kv_version != 2 &&
	    !c->vault.allow_unsafe_kv_v1_update)
		return cfg_fail(
		    x, sec->line, "key_lifecycle",
		    "rotation and deletion protection change stored keys in place, which a K/V v1 "
		    "mount can only do by overwriting them: use a K/V v2 mount, or set "
		    "keystore.vault.allow_unsafe_kv_v1_update (see kesc.yml(5))");
	return 0;
}
