/*
 * migrate.c — `kesc migrate --from A.yml --to B.yml [--merge] [<pattern>]`: copies keys from
 * the keystore of one configuration to the keystore of another, as `kes migrate` does.
 *
 * Records are moved as the stores hold them, never decrypted or re-encoded here: a key keeps
 * its bytes, its algorithm and its HMAC key, and kesc needs no access to the plaintext (the
 * Vault store unwraps and re-wraps transit itself). A key that already exists at the target is
 * never overwritten: it counts as failed, or as skipped with --merge, so running the same
 * migration twice with --merge is harmless.
 *
 * A deleted key (a tombstone at the source, tombstone.h) is not copied and counts as skipped:
 * the migration is the switch to another keystore, after which no server of the old one
 * serves keys from its cache, so its name need not stay reserved. A name the target still
 * reserves for a key deleted there fails, saying until when.
 *
 * Except a scheduled deletion that can still be restored (deletion protection, issue 14): it
 * is copied as it is, key and window included, so that it stays restorable at the target and
 * is purged there when its window ends. Not copying it would purge the key early, behind the
 * operator's back. Rotated keys are copied as they are too (every version).
 */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/cmd.h"
#include "keystore/keystore.h"
#include "keystore/tombstone.h"
#include "keystore/vault.h"
#include "server/config.h"

static const char MIGRATE_USAGE[] =
    "Usage:\n"
    "    kesc migrate [options] --from <config> --to <config> [<pattern>]\n\n"
    "Options:\n"
    "        --from <config>      Configuration file of the source keystore.\n"
    "        --to <config>        Configuration file of the target keystore.\n"
    "        --merge              Skip keys that already exist at the target.\n"
    "    -q, --quiet              Do not print progress.\n\n"
    "    -h, --help               Print command line options.\n\n"
    "The pattern is a glob (default '*'). Keys are copied as stored, without being\n"
    "decrypted, every version of a rotated key included; an existing key at the target\n"
    "is never replaced. Deleted keys are not copied (they count as skipped), except\n"
    "those scheduled for deletion that can still be restored: they are copied as such.\n\n"
    "Examples:\n"
    "    $ kesc migrate --from fs.yml --to vault.yml\n"
    "    $ kesc migrate --from fs.yml --to vault.yml --merge 'minio-*'\n";

struct migrate_counts {
	size_t copied, skipped, failed;
};

static void warn_config(void *arg, const char *message)
{
	(void)arg;
	fprintf(stderr, "kesc: warning: %s\n", message);
}

/* Loads a configuration and opens its keystore. NULL after printing why. */
static struct keystore *store_open(const char *path, struct config **cfg_out)
{
	char err[512];
	struct ks_err kerr = {{0}};
	struct keystore *ks = NULL;
	if (config_load(path, cfg_out, err, sizeof err, warn_config, NULL) < 0) {
		cli_fail("%s", err);
		return NULL;
	}
	const struct config *cfg = *cfg_out;
	switch (cfg->keystore) {
	case CONFIG_KEYSTORE_FS:
		ks = fs_keystore_open(cfg->fs_path, &kerr);
		break;
	case CONFIG_KEYSTORE_VAULT:
		ks = vault_keystore_open(&cfg->vault, &kerr);
		break;
	default:
		cli_fail("%s: the keystore cannot be migrated (only fs and vault)", path);
		return NULL;
	}
	if (!ks)
		cli_fail("%s: cannot open the keystore: %s", path, kerr.msg);
	return ks;
}

/* The literal part of a glob before its first metacharacter: what the store can pre-filter. */
static void glob_prefix(const char *pattern, char *out, size_t outlen)
{
	size_t n = strcspn(pattern, "*?[\\");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, pattern, n);
	out[n] = '\0';
}

static void progress(bool show, size_t done, size_t total)
{
	if (show) {
		fprintf(stderr, "\rMigrating keys: %zu / %zu", done, total);
		fflush(stderr);
	}
}

/* Whether name holds a scheduled deletion that can still be restored; if so, *record is it. */
static bool restorable(struct keystore *from, const char *name, struct bytes *record)
{
	struct ks_err ignored;
	struct tombstone t;

	bytes_free(record);
	if (keystore_get_raw(from, name, record, &ignored) == KS_OK &&
	    tombstone_parse(record->data, record->len, &t) &&
	    tombstone_restorable(&t, keystore_now()))
		return true;
	bytes_free(record);
	return false;
}

static void migrate_one(struct keystore *from, struct keystore *to, const char *name, bool merge,
                        struct migrate_counts *n, bool show, bool quiet)
{
	struct bytes record = {0};
	struct ks_err err = {{0}};
	int rc = keystore_get(from, name, &record, &err);
	if (rc == KS_NOT_FOUND && restorable(from, name, &record)) {
		char what[256];
		struct tombstone t;

		tombstone_parse(record.data, record.len, &t);
		tombstone_describe(&t, what, sizeof what);
		if (!quiet)
			fprintf(stderr, "%skesc: key '%s' is copied as it is: it was %s\n",
			        show ? "\n" : "", name, what);
		rc = KS_OK;
	}
	if (rc == KS_NOT_FOUND) { /* deleted (a tombstone), or since the listing */
		n->skipped++;
		if (!quiet && err.msg[0])
			fprintf(stderr, "%skesc: key '%s' is not copied: it was %s\n",
			        show ? "\n" : "", name, err.msg);
		return;
	}
	if (rc != KS_OK) {
		n->failed++;
		fprintf(stderr, "%skesc: failed to read key '%s': %s\n", show ? "\n" : "", name,
		        err.msg[0] ? err.msg : ks_result_name(rc));
		return;
	}
	rc = keystore_create(to, name, &record, &err);
	bytes_free(&record);
	if (rc == KS_OK) {
		n->copied++;
	} else if (rc == KS_EXISTS && merge) {
		n->skipped++;
	} else if (rc == KS_EXISTS) {
		n->failed++;
		fprintf(stderr,
		        "%skesc: key '%s' already exists at the target (use --merge to skip it)\n",
		        show ? "\n" : "", name);
	} else if (rc == KS_DELETED) {
		n->failed++;
		fprintf(stderr, "%skesc: key '%s' cannot be created at the target: %s\n",
		        show ? "\n" : "", name, err.msg);
	} else {
		n->failed++;
		fprintf(stderr, "%skesc: failed to create key '%s': %s\n", show ? "\n" : "", name,
		        err.msg[0] ? err.msg : ks_result_name(rc));
	}
}

static int migrate_run(struct keystore *from, struct keystore *to, const char *pattern, bool merge,
                       bool quiet)
{
	char prefix[256];
	struct name_list names = {0};
	struct ks_err err = {{0}};
	struct migrate_counts n = {0};
	bool show = !quiet && isatty(STDERR_FILENO) == 1;

	glob_prefix(pattern, prefix, sizeof prefix);
	int rc = keystore_list(from, prefix, &names, &err);
	if (rc != KS_OK) {
		cli_fail("failed to list the source keys: %s",
		         err.msg[0] ? err.msg : ks_result_name(rc));
		return 1;
	}
	size_t total = 0;
	for (size_t i = 0; i < names.count; i++)
		total += fnmatch(pattern, names.names[i], 0) == 0;
	size_t done = 0;
	for (size_t i = 0; i < names.count; i++) {
		if (fnmatch(pattern, names.names[i], 0) != 0)
			continue;
		migrate_one(from, to, names.names[i], merge, &n, show, quiet);
		progress(show, ++done, total);
	}
	if (show)
		fputc('\n', stderr);
	name_list_free(&names);
	printf("copied %zu, skipped %zu, failed %zu\n", n.copied, n.skipped, n.failed);
	return n.failed ? 1 : 0;
}

int cmd_migrate(int argc, char **argv)
{
	const char *from_path = NULL, *to_path = NULL;
	bool merge = false, quiet = false, force = false;
	const struct cli_flag flags[] = {
	    {"from", 0, CLI_STRING, &from_path}, {"to", 0, CLI_STRING, &to_path},
	    {"merge", 0, CLI_BOOL, &merge},      {"quiet", 'q', CLI_BOOL, &quiet},
	    {"force", 'f', CLI_BOOL, &force},
	};
	struct cli_args a;
	int rc = cli_parse(argc, argv, flags, sizeof flags / sizeof flags[0], false, "migrate",
	                   MIGRATE_USAGE, &a);
	if (rc != CLI_OK)
		return cli_exit_for(rc);
	struct config *from_cfg = NULL, *to_cfg = NULL;
	struct keystore *from = NULL, *to = NULL;
	if (force)
		rc = cli_usage_error("migrate",
		                     "--force (replacing keys at the target) is not "
		                     "supported: kesc never overwrites keys; use --merge");
	else if (!from_path || !to_path)
		rc = cli_usage_error("migrate", "both --from and --to are required");
	else if (a.count > 1)
		rc = cli_usage_error("migrate", "too many arguments");
	if (rc != 0)
		goto out;
	const char *pattern = a.count ? a.args[0] : "*";
	if (!(from = store_open(from_path, &from_cfg)) || !(to = store_open(to_path, &to_cfg))) {
		rc = 1;
		goto out;
	}
	rc = migrate_run(from, to, pattern, merge, quiet);
out:
	keystore_close(to);
	keystore_close(from);
	config_free(to_cfg);
	config_free(from_cfg);
	cli_args_free(&a);
	return rc;
}
