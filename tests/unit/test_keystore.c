/*
 * test_keystore.c — the mem and fs stores against the conformance suite, plus what only the fs
 * store promises: it serves a directory KES wrote, refuses names that leave the directory,
 * ignores and cleans temp files, never replaces a record file, keeps files private, and keeps
 * tombstones safe against a second process on the same directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sys/file.h>

#include "keystore/key.h"
#include "keystore/keystore.h"
#include "keystore/tombstone.h"
#include "tests/unit/check.h"
#include "tests/unit/keystore_conformance.h"

static const char invalid_name_text[] = "fs: key name contains invalid character";

#define TOMB_TEXT "{\"algorithm\":\"kesc-tombstone\",\"until\":null}"
/* A tombstone that never expires, for removes whose tombstone does not matter. */
static const struct bytes TOMB = {(uint8_t *)TOMB_TEXT, sizeof(TOMB_TEXT) - 1};

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *dir)
{
	CHECK(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

static void make_temp_dir(char *out, size_t len)
{
	snprintf(out, len, "/tmp/kesc-test-keystore-XXXXXX");
	CHECK(mkdtemp(out) != NULL);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ_INT(fwrite(data, 1, len, f), len);
	CHECK(fclose(f) == 0);
}

static struct keystore *open_fs(const char *dir)
{
	struct ks_err err = {{0}};
	struct keystore *ks = fs_keystore_open(dir, &err);

	if (!ks)
		fprintf(stderr, "fs_keystore_open %s: %s\n", dir, err.msg);
	CHECK(ks != NULL);
	return ks;
}

/* Conformance: mem. */
static struct keystore *open_mem_store(void *arg)
{
	(void)arg;
	return mem_keystore_open();
}

/* Conformance: fs, each case in a fresh directory that the store itself has to create. */
struct fs_case {
	char root[64];
};

static struct keystore *open_fs_store(void *arg)
{
	struct fs_case *fc = arg;
	char dir[128];

	make_temp_dir(fc->root, sizeof(fc->root));
	snprintf(dir, sizeof(dir), "%s/keys", fc->root);
	return open_fs(dir);
}

static void remove_fs_store(void *arg)
{
	struct fs_case *fc = arg;

	remove_tree(fc->root);
}

static void test_mem_conformance(void)
{
	struct keystore_conformance c = {
	    .label = "mem",
	    .open_store = open_mem_store,
	    .remove_reports_not_found = true,
	};

	CHECK_EQ_INT(keystore_conformance_run(&c), 0);
}

/* KES's in-memory store reports a fixed status latency of 1 ms (kes.md §6); latency_us is in
 * microseconds, so the mem store says 1000, which /v1/status and the metrics both show. */
static void test_mem_status_latency(void)
{
	struct keystore *ks = mem_keystore_open();
	struct ks_status st = {0};
	struct ks_err err = {{0}};

	CHECK(ks != NULL);
	if (!ks)
		return;
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	CHECK_EQ_INT(st.latency_us, 1000);
	keystore_close(ks);
}

static void test_fs_conformance(void)
{
	struct fs_case fc;
	struct keystore_conformance c = {
	    .label = "fs",
	    .open_store = open_fs_store,
	    .after_close = remove_fs_store,
	    .arg = &fc,
	    .remove_reports_not_found = true,
	};

	CHECK_EQ_INT(keystore_conformance_run(&c), 0);
}

/* What the store served is a record key.c reads. */
static void check_record_parses(const struct bytes *record)
{
	struct secret_key *k = NULL;

	CHECK_EQ_INT(key_record_decode(record->data, record->len, &k), 0);
	key_free(k);
}

/* A directory as KES's fs keystore leaves it: HEAD records (base64 protobuf), a legacy JSON
 * record, and things that are not keys. */
static void test_fs_serves_kes_directory(void)
{
	/* KES's own vectors (internal/crypto/key_test.go, kes.md §7.1). */
	static const char head_record[] = "CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAog"
	                                  "nLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20Y"
	                                  "QZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyN"
	                                  "mExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MGFl"
	                                  "NmI1Nzg2OThhOTdjNTlmZDIy";
	static const char legacy_record[] =
	    "{\"bytes\":\"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=\",\"algorithm\":"
	    "\"AES256-GCM_SHA256\",\"created_at\":\"2009-11-10T23:00:00Z\",\"created_by\":"
	    "\"40235905b7b83e0537a002db523cd019d6709b899adc249c957860cd00fa9f78\"}";
	static const char *const names[] = {"legacy-key", "minio-default", "my_key"};
	char dir[64], path[128];
	struct name_list l = {0};
	struct bytes got = {0};
	struct ks_err err = {{0}};
	struct keystore *ks;

	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "my_key", head_record, strlen(head_record));
	write_file(dir, "minio-default", head_record, strlen(head_record));
	write_file(dir, "legacy-key", legacy_record, strlen(legacy_record));
	write_file(dir, ".hidden", "x", 1);
	snprintf(path, sizeof(path), "%s/subdir", dir);
	CHECK(mkdir(path, 0700) == 0);

	ks = open_fs(dir);
	if (!ks)
		goto out;
	CHECK_EQ_INT(keystore_list(ks, "", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 3);
	for (size_t i = 0; i < 3 && i < l.count; i++)
		CHECK_EQ_STR(l.names[i], names[i]);
	name_list_free(&l);

	CHECK_EQ_INT(keystore_get(ks, "my_key", &got, &err), KS_OK);
	CHECK_EQ_INT(got.len, strlen(head_record));
	CHECK_MEM(got.data, head_record, strlen(head_record));
	check_record_parses(&got);
	bytes_free(&got);
	CHECK_EQ_INT(keystore_get(ks, "legacy-key", &got, &err), KS_OK);
	CHECK_EQ_STR((const char *)got.data, legacy_record);
	check_record_parses(&got);
	bytes_free(&got);
	CHECK_EQ_INT(keystore_get(ks, "subdir", &got, &err), KS_FAILED);
	CHECK_EQ_INT(keystore_create(ks, "my_key", &(struct bytes){(uint8_t *)"x", 1}, &err),
	             KS_EXISTS);

	/* A record kesc writes is a plain file KES would read: the bytes, no newline. */
	CHECK_EQ_INT(keystore_create(ks, "new-key",
	                             &(struct bytes){(uint8_t *)head_record, strlen(head_record)},
	                             &err),
	             KS_OK);
	snprintf(path, sizeof(path), "%s/new-key", dir);
	{
		char content[512] = {0};
		FILE *f = fopen(path, "rb");
		size_t n = 0;

		CHECK(f != NULL);
		if (f) {
			n = fread(content, 1, sizeof(content) - 1, f);
			fclose(f);
		}
		CHECK_EQ_INT(n, strlen(head_record));
		CHECK_EQ_STR(content, head_record);
	}
	keystore_close(ks);
out:
	remove_tree(dir);
}

static void check_name_refused(struct keystore *ks, const char *name)
{
	struct bytes rec = {(uint8_t *)"x", 1}, got = {0};
	struct ks_err err = {{0}};

	CHECK_EQ_INT(keystore_create(ks, name, &rec, &err), KS_FAILED);
	CHECK_EQ_STR(err.msg, invalid_name_text);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(keystore_get(ks, name, &got, &err), KS_FAILED);
	CHECK_EQ_STR(err.msg, invalid_name_text);
	memset(&err, 0, sizeof(err));
	CHECK_EQ_INT(keystore_remove(ks, name, &TOMB, &err), KS_FAILED);
	CHECK_EQ_STR(err.msg, invalid_name_text);
}

static void test_fs_invalid_names(void)
{
	static const char *const bad[] = {"",        "/",   "a/b",  "../escape",   "..", ".",
	                                  ".hidden", "a.b", "a\\b", "/etc/passwd", "k/"};
	char dir[64], sub[128], outside[128], longname[300];
	struct ks_err err = {{0}};
	struct bytes got = {0};
	struct keystore *ks;

	make_temp_dir(dir, sizeof(dir));
	snprintf(sub, sizeof(sub), "%s/store", dir);
	/* A file next to the store that an escaping name would reach. */
	write_file(dir, "victim", "secret", 6);
	ks = open_fs(sub);
	if (!ks)
		goto out;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_name_refused(ks, bad[i]);
	check_name_refused(ks, "../victim");
	memset(longname, 'a', 256);
	longname[256] = '\0';
	check_name_refused(ks, longname);
	longname[255] = '\0';
	CHECK_EQ_INT(keystore_create(ks, longname, &(struct bytes){(uint8_t *)"x", 1}, &err),
	             KS_OK);
	CHECK_EQ_INT(keystore_get(ks, longname, &got, &err), KS_OK);
	bytes_free(&got);

	snprintf(outside, sizeof(outside), "%s/victim", dir);
	CHECK(access(outside, F_OK) == 0);
	keystore_close(ks);
out:
	remove_tree(dir);
}

static void test_fs_temp_files(void)
{
	static const char stale[] = ".kesc-tmp-99999-1";
	static const char fresh[] = ".kesc-tmp-99999-2";
	char dir[64], path[128];
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	struct name_list l = {0};
	struct ks_err err = {{0}};
	struct keystore *ks;

	make_temp_dir(dir, sizeof(dir));
	write_file(dir, stale, "half-writ", 9);
	write_file(dir, fresh, "in-flight", 9);
	write_file(dir, "real", "record", 6);
	snprintf(path, sizeof(path), "%s/%s", dir, stale);
	CHECK(utimensat(AT_FDCWD, path, old, 0) == 0);

	ks = open_fs(dir);
	if (!ks)
		goto out;
	/* A crash leftover goes at open; a fresh one may be another process's create. */
	CHECK(access(path, F_OK) != 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/%s", dir, fresh);
	CHECK(access(path, F_OK) == 0);
	CHECK_EQ_INT(keystore_list(ks, "", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 1);
	if (l.count == 1)
		CHECK_EQ_STR(l.names[0], "real");
	name_list_free(&l);
	CHECK_EQ_INT(keystore_list(ks, ".", &l, &err), KS_OK);
	CHECK_EQ_INT(l.count, 0);
	name_list_free(&l);

	/* Creating keys leaves no temp files of its own behind. */
	CHECK_EQ_INT(keystore_create(ks, "k2", &(struct bytes){(uint8_t *)"v", 1}, &err), KS_OK);
	CHECK(unlink(path) == 0);
	{
		int entries = 0;
		DIR *d = opendir(dir);
		struct dirent *de;

		CHECK(d != NULL);
		while (d && (de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				entries++;
			else if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				CHECK(!"temp file left behind");
		if (d)
			closedir(d);
		CHECK_EQ_INT(entries, 2);
	}
	keystore_close(ks);
out:
	remove_tree(dir);
}

static void test_fs_never_replaces(void)
{
	char dir[64], path[128];
	struct stat before, after;
	struct ks_err err = {{0}};
	struct keystore *ks;

	make_temp_dir(dir, sizeof(dir));
	ks = open_fs(dir);
	if (!ks)
		goto out;
	CHECK_EQ_INT(keystore_create(ks, "k", &(struct bytes){(uint8_t *)"first", 5}, &err), KS_OK);
	snprintf(path, sizeof(path), "%s/k", dir);
	CHECK(stat(path, &before) == 0);
	CHECK_EQ_INT(keystore_create(ks, "k", &(struct bytes){(uint8_t *)"second!", 7}, &err),
	             KS_EXISTS);
	CHECK(stat(path, &after) == 0);
	CHECK_EQ_INT(after.st_ino, before.st_ino);
	CHECK_EQ_INT(after.st_size, 5);
	CHECK_EQ_INT(after.st_nlink, 1); /* the temp link is gone */
	keystore_close(ks);
out:
	remove_tree(dir);
}

static void test_fs_permissions(void)
{
	char dir[64], store[128], path[192];
	struct stat st;
	struct ks_err err = {{0}};
	struct keystore *ks;
	mode_t old_umask = umask(0); /* the store must not rely on the umask */

	make_temp_dir(dir, sizeof(dir));
	snprintf(store, sizeof(store), "%s/a/b/keys", dir);
	ks = open_fs(store);
	if (!ks)
		goto out;
	CHECK(stat(store, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_EQ_INT(st.st_mode & 07777, 0700);
	snprintf(path, sizeof(path), "%s/a", dir);
	CHECK(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0700);
	CHECK_EQ_INT(keystore_create(ks, "k", &(struct bytes){(uint8_t *)"v", 1}, &err), KS_OK);
	snprintf(path, sizeof(path), "%s/k", store);
	CHECK(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0600);
	keystore_close(ks);

	/* An existing directory is used as it is. */
	CHECK(chmod(store, 0750) == 0);
	ks = open_fs(store);
	CHECK(stat(store, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 07777, 0750);
	keystore_close(ks);
out:
	umask(old_umask);
	remove_tree(dir);
}

static void test_fs_open_errors(void)
{
	char dir[64], path[128];
	struct ks_err err = {{0}};

	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "file", "x", 1);
	snprintf(path, sizeof(path), "%s/file", dir);
	CHECK(fs_keystore_open(path, &err) == NULL);
	CHECK(strstr(err.msg, "not a directory") != NULL);
	snprintf(path, sizeof(path), "%s/file/below", dir);
	CHECK(fs_keystore_open(path, &err) == NULL);
	CHECK(fs_keystore_open("", &err) == NULL);
	remove_tree(dir);
}

static void test_fs_record_limits(void)
{
	char dir[64];
	struct bytes big = {0}, got = {0};
	struct ks_err err = {{0}};
	struct keystore *ks;

	make_temp_dir(dir, sizeof(dir));
	big.len = KS_MAX_RECORD + 1;
	big.data = calloc(1, big.len);
	write_file(dir, "huge", big.data, big.len);
	ks = open_fs(dir);
	if (!ks)
		goto out;
	CHECK_EQ_INT(keystore_get(ks, "huge", &got, &err), KS_FAILED);
	CHECK(got.data == NULL);
	CHECK_EQ_INT(keystore_create(ks, "too-big", &big, &err), KS_FAILED);
	CHECK_EQ_INT(keystore_get(ks, "too-big", &got, &err), KS_NOT_FOUND);
	/* An empty record is a record. */
	CHECK_EQ_INT(keystore_create(ks, "empty", &(struct bytes){(uint8_t *)"", 0}, &err), KS_OK);
	CHECK_EQ_INT(keystore_get(ks, "empty", &got, &err), KS_OK);
	CHECK_EQ_INT(got.len, 0);
	bytes_free(&got);
	keystore_close(ks);
out:
	free(big.data);
	remove_tree(dir);
}

static void test_fs_status_unreachable(void)
{
	char dir[64], store[128];
	struct ks_status st = {0};
	struct ks_err err = {{0}};
	struct keystore *ks;

	make_temp_dir(dir, sizeof(dir));
	snprintf(store, sizeof(store), "%s/keys", dir);
	ks = open_fs(store);
	if (!ks)
		goto out;
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	CHECK(rmdir(store) == 0);
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_UNREACHABLE);
	CHECK(err.msg[0] != '\0');
	keystore_close(ks);
out:
	remove_tree(dir);
}

/* One store operation, run on its own thread so that a store that blocks cannot hang the test. */
enum fs_op_kind { OP_GET, OP_CREATE, OP_REMOVE, OP_LIST };

struct fs_op {
	struct keystore *ks;
	enum fs_op_kind kind;
	const char *name;
	int rc;
	struct ks_err err;
	struct name_list list;
};

static void *fs_op_run(void *arg)
{
	struct fs_op *op = arg;
	struct bytes got = {0};
	static const struct bytes rec = {(uint8_t *)"planted?", 8};

	switch (op->kind) {
	case OP_GET:
		op->rc = keystore_get(op->ks, op->name, &got, &op->err);
		bytes_free(&got);
		break;
	case OP_CREATE:
		op->rc = keystore_create(op->ks, op->name, &rec, &op->err);
		break;
	case OP_REMOVE:
		op->rc = keystore_remove(op->ks, op->name, &TOMB, &op->err);
		break;
	case OP_LIST:
		op->rc = keystore_list(op->ks, "", &op->list, &op->err);
		break;
	}
	return NULL;
}

/*
 * Runs op and returns its result. An operation that has not returned after 30 s (it takes
 * microseconds) is blocked on the FIFO: that is a failure, and the test then opens the FIFO's
 * write side so the blocked open returns and the thread can be joined.
 */
static int fs_op_bounded(struct fs_op *op, const char *fifo)
{
	pthread_t th;
	struct timespec until;

	op->rc = -99;
	op->err.msg[0] = '\0';
	CHECK_EQ_INT(pthread_create(&th, NULL, fs_op_run, op), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	if (pthread_timedjoin_np(th, NULL, &until) != 0) {
		int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		CHECK(!"the store operation blocked on a FIFO");
		pthread_join(th, NULL);
		if (fd >= 0)
			close(fd);
	}
	return op->rc;
}

/*
 * issue 9: a FIFO in the key directory must not block a store operation (an open without
 * O_NONBLOCK waits for a writer forever, and each describe of it took a keystore worker), and
 * nothing but a regular file is a key: FIFOs, directories and symbolic links are refused with
 * a clear error by every operation and never removed or replaced.
 */
static void test_fs_refuses_special_files(void)
{
	char dir[64], path[192], fifo[192];
	struct keystore *ks;
	struct stat st;
	static const char *const odd[] = {"fifo", "inlink", "outlink", "subdir"};
	struct fs_op op = {0};

	make_temp_dir(dir, sizeof(dir));
	write_file(dir, "good", "record", 6);
	write_file(dir, "..outside", "secret", 6); /* a dot file: never a key itself */
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	CHECK(mkfifo(fifo, 0600) == 0);
	snprintf(path, sizeof(path), "%s/inlink", dir);
	CHECK(symlink("good", path) == 0);
	snprintf(path, sizeof(path), "%s/outlink", dir);
	CHECK(symlink("..outside", path) == 0);
	snprintf(path, sizeof(path), "%s/subdir", dir);
	CHECK(mkdir(path, 0700) == 0);
	ks = open_fs(dir);
	if (!ks)
		goto out;
	op.ks = ks;

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		op.name = odd[i];
		op.kind = OP_GET;
		CHECK_EQ_INT(fs_op_bounded(&op, fifo), KS_FAILED);
		CHECK(strstr(op.err.msg, "not a regular file") != NULL);
		op.kind = OP_CREATE;
		CHECK_EQ_INT(fs_op_bounded(&op, fifo), KS_FAILED);
		CHECK(strstr(op.err.msg, "not a regular file") != NULL);
		op.kind = OP_REMOVE;
		CHECK_EQ_INT(fs_op_bounded(&op, fifo), KS_FAILED);
		CHECK(strstr(op.err.msg, "not a regular file") != NULL);
		snprintf(path, sizeof(path), "%s/%s", dir, odd[i]);
		CHECK(lstat(path, &st) == 0); /* still there, untouched */
	}
	CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
	snprintf(path, sizeof(path), "%s/..outside", dir);
	CHECK(stat(path, &st) == 0 && st.st_size == 6); /* the link target was not written */

	op.kind = OP_LIST;
	CHECK_EQ_INT(fs_op_bounded(&op, fifo), KS_OK);
	CHECK_EQ_INT(op.list.count, 1);
	if (op.list.count == 1)
		CHECK_EQ_STR(op.list.names[0], "good");
	name_list_free(&op.list);

	/* The regular key next to them is served as before. */
	op.kind = OP_GET;
	op.name = "good";
	CHECK_EQ_INT(fs_op_bounded(&op, fifo), KS_OK);
	keystore_close(ks);
out:
	remove_tree(dir);
}

/* What the store reported through the keystore log hook. */
static char logged[8][256];
static int logged_count;

static void capture_log(const char *message)
{
	if (logged_count < 8)
		snprintf(logged[logged_count], sizeof(logged[0]), "%s", message);
	logged_count++;
}

static bool list_is(struct keystore *ks, const char *a, const char *b)
{
	struct name_list l = {0};
	struct ks_err err = {{0}};
	bool same = keystore_list(ks, "", &l, &err) == KS_OK &&
	            l.count == (b   ? 2u
	                        : a ? 1u
	                            : 0u) &&
	            (!a || strcmp(l.names[0], a) == 0) && (!b || strcmp(l.names[1], b) == 0);

	name_list_free(&l);
	return same;
}

/*
 * issue 10: the key directory replaced at its path (restored from a backup, moved aside and
 * recreated) used to leave the store on the old directory: keys 404, list empty, creates
 * failing, status OK. Now every operation notices that the path names another directory,
 * reopens it once and says so; and when nothing is at the path any more the store is
 * unreachable, not empty.
 */
static void test_fs_directory_replaced(void)
{
	char dir[64], store[128], old[128], path[192];
	struct bytes got = {0};
	struct ks_status st = {0};
	struct ks_err err = {{0}};
	struct keystore *ks;

	make_temp_dir(dir, sizeof(dir));
	snprintf(store, sizeof(store), "%s/keys", dir);
	snprintf(old, sizeof(old), "%s/keys.old", dir);
	ks = open_fs(store);
	if (!ks)
		goto out;
	logged_count = 0;
	keystore_set_log(capture_log);
	CHECK_EQ_INT(keystore_create(ks, "a", &(struct bytes){(uint8_t *)"A", 1}, &err), KS_OK);

	/* Moved aside, a new directory with other keys put in its place. */
	CHECK(rename(store, old) == 0);
	CHECK(mkdir(store, 0700) == 0);
	write_file(store, "b", "B", 1);
	CHECK_EQ_INT(keystore_get(ks, "b", &got, &err), KS_OK);
	CHECK(got.len == 1 && got.data[0] == 'B');
	bytes_free(&got);
	CHECK_EQ_INT(keystore_get(ks, "a", &got, &err), KS_NOT_FOUND);
	bytes_free(&got);
	CHECK(list_is(ks, "b", NULL));
	CHECK_EQ_INT(keystore_create(ks, "c", &(struct bytes){(uint8_t *)"C", 1}, &err), KS_OK);
	snprintf(path, sizeof(path), "%s/c", store);
	CHECK(access(path, F_OK) == 0);
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	CHECK_EQ_INT(logged_count, 1);
	CHECK(strstr(logged[0], store) != NULL && strstr(logged[0], "replaced") != NULL);

	/* Removed and recreated (rm -r, restore): the same. */
	remove_tree(store);
	CHECK(mkdir(store, 0700) == 0);
	write_file(store, "d", "D", 1);
	CHECK(list_is(ks, "d", NULL));
	CHECK_EQ_INT(logged_count, 2);

	/* Gone: not an empty keystore but an unreachable one, for every operation. */
	remove_tree(store);
	CHECK_EQ_INT(keystore_get(ks, "d", &got, &err), KS_UNREACHABLE);
	CHECK(strstr(err.msg, store) != NULL);
	CHECK_EQ_INT(keystore_create(ks, "e", &(struct bytes){(uint8_t *)"E", 1}, &err),
	             KS_UNREACHABLE);
	CHECK_EQ_INT(keystore_remove(ks, "d", &TOMB, &err), KS_UNREACHABLE);
	{
		struct name_list l = {0};

		CHECK_EQ_INT(keystore_list(ks, "", &l, &err), KS_UNREACHABLE);
		name_list_free(&l);
	}
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_UNREACHABLE);
	CHECK(access(store, F_OK) != 0); /* and the store did not recreate it */

	/* Back: served again. */
	CHECK(mkdir(store, 0700) == 0);
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	CHECK(list_is(ks, NULL, NULL));
	keystore_set_log(NULL);
	keystore_close(ks);
out:
	remove_tree(dir);
}

/* Runs in a child that is not root (root may read and write anything): the status of a store
 * whose directory this process cannot read and write must say unreachable. Returns the
 * child's failure count. */
static int status_checks_as_user(void)
{
	char dir[64] = "/tmp/kesc-test-access-XXXXXX", store[128];
	struct ks_status st = {0};
	struct ks_err err = {{0}};
	struct keystore *ks;
	int before = check_failures;

	if (!mkdtemp(dir))
		return 1;
	snprintf(store, sizeof(store), "%s/keys", dir);
	ks = open_fs(store);
	if (!ks)
		return 1;
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	CHECK(chmod(store, 0) == 0);
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_UNREACHABLE);
	CHECK(strstr(err.msg, store) != NULL && strstr(err.msg, "Permission denied") != NULL);
	CHECK(chmod(store, 0500) == 0); /* readable, not writable */
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_UNREACHABLE);
	CHECK(chmod(store, 0700) == 0);
	CHECK_EQ_INT(keystore_status(ks, &st, &err), KS_OK);
	keystore_close(ks);
	remove_tree(dir);
	return check_failures - before;
}

/* issue 10: status said OK while the key directory was unreadable (chmod 000). */
static void test_fs_status_access(void)
{
	pid_t pid = fork();
	int status = 0;

	CHECK(pid >= 0);
	if (pid == 0) {
		/* nobody/nogroup when root; as any other user the checks run as that user. */
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
		     setresuid(65534, 65534, 65534) != 0))
			_exit(100);
		_exit(status_checks_as_user() ? 1 : 0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ_INT(WEXITSTATUS(status), 0);
}

/* A delete leaves the tombstone in the key's own file, private like a key, and no temp file;
 * KES would read it and refuse it. */
static void test_fs_tombstone_on_disk(void)
{
	char dir[64], path[128], buf[256];
	struct stat st;
	struct ks_err err = {{0}};
	struct keystore *ks;
	FILE *f;
	size_t n;

	make_temp_dir(dir, sizeof(dir));
	ks = open_fs(dir);
	if (!ks)
		goto out;
	CHECK_EQ_INT(keystore_create(ks, "k", &(struct bytes){(uint8_t *)"record", 6}, &err),
	             KS_OK);
	CHECK_EQ_INT(keystore_remove(ks, "k", &TOMB, &err), KS_OK);
	snprintf(path, sizeof(path), "%s/k", dir);
	CHECK(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(st.st_nlink, 1);
	f = fopen(path, "rb");
	CHECK(f != NULL);
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		fclose(f);
		CHECK_EQ_STR(buf, TOMB_TEXT);
	}
	{
		DIR *d = opendir(dir);
		struct dirent *de;
		int entries = 0;

		while (d && (de = readdir(d)) != NULL)
			entries += de->d_name[0] != '.';
		if (d)
			closedir(d);
		CHECK_EQ_INT(entries, 1); /* k only: no temp file left */
	}
	keystore_close(ks);
out:
	remove_tree(dir);
}

/* Rounds of: one key, expired tombstone, then both processes create over it at once. */
#define TWO_PROC_ROUNDS 40

static int child_race(const char *dir, int fd_go, int fd_out)
{
	struct keystore *ks = open_fs(dir);
	char name[32], c;
	int rc;

	for (int round = 0; ks && round < TWO_PROC_ROUNDS; round++) {
		snprintf(name, sizeof(name), "twice-%d", round);
		if (read(fd_go, &c, 1) != 1)
			break;
		rc = keystore_create(ks, name, &(struct bytes){(uint8_t *)"child", 5},
		                     &(struct ks_err){{0}});
		c = (char)(rc == KS_OK ? 'o' : rc == KS_EXISTS ? 'e' : 'x');
		if (write(fd_out, &c, 1) != 1)
			break;
	}
	keystore_close(ks);
	return 0;
}

/*
 * Two processes on one directory (two servers, or a server and `kesc migrate --to`): a create
 * over an expired tombstone reads and then replaces, so both could believe they won and one
 * key would be lost. The directory lock lets exactly one win every round.
 */
static void test_fs_two_processes(void)
{
	char dir[64];
	int go[2], out[2], wins = 0, exists = 0;
	struct keystore *ks;
	pid_t pid;

	make_temp_dir(dir, sizeof(dir));
	ks = open_fs(dir);
	CHECK(pipe(go) == 0 && pipe(out) == 0);
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		close(out[0]);
		keystore_close(ks);
		_exit(child_race(dir, go[0], out[1]));
	}
	close(go[0]);
	close(out[1]);
	for (int round = 0; ks && round < TWO_PROC_ROUNDS; round++) {
		struct bytes tomb = {0}, got = {0};
		struct tombstone t = {.deleted_at = 1, .until = 2}; /* long expired */
		char name[32], c = 'g';
		int rc;

		snprintf(name, sizeof(name), "twice-%d", round);
		CHECK_EQ_INT(keystore_create(ks, name, &(struct bytes){(uint8_t *)"first", 5},
		                             &(struct ks_err){{0}}),
		             KS_OK);
		CHECK_EQ_INT(tombstone_encode(&t, &tomb), 0);
		CHECK_EQ_INT(keystore_remove(ks, name, &tomb, &(struct ks_err){{0}}), KS_OK);
		bytes_free(&tomb);
		CHECK(write(go[1], &c, 1) == 1);
		rc = keystore_create(ks, name, &(struct bytes){(uint8_t *)"parent", 6},
		                     &(struct ks_err){{0}});
		CHECK(read(out[0], &c, 1) == 1);
		wins += (rc == KS_OK) + (c == 'o');
		exists += (rc == KS_EXISTS) + (c == 'e');
		CHECK_EQ_INT((rc == KS_OK) + (c == 'o'), 1);
		/* The winner's key is what the file holds. */
		CHECK_EQ_INT(keystore_get(ks, name, &got, &(struct ks_err){{0}}), KS_OK);
		CHECK(got.len == (rc == KS_OK ? 6u : 5u));
		bytes_free(&got);
	}
	close(go[1]);
	close(out[0]);
	CHECK(waitpid(pid, NULL, 0) == pid);
	CHECK_EQ_INT(wins, TWO_PROC_ROUNDS);
	CHECK_EQ_INT(exists, TWO_PROC_ROUNDS);
	keystore_close(ks);
	remove_tree(dir);
}

/* A delete waits while another process holds the directory lock, then goes ahead. */
static void test_fs_waits_for_lock(void)
{
	char dir[64];
	struct ks_err err = {{0}};
	struct keystore *ks;
	struct timespec t0, t1;
	int fd, hold[2];
	pid_t pid;
	char c;

	make_temp_dir(dir, sizeof(dir));
	ks = open_fs(dir);
	if (!ks)
		goto out;
	CHECK_EQ_INT(keystore_create(ks, "k", &(struct bytes){(uint8_t *)"record", 6}, &err),
	             KS_OK);
	CHECK(pipe(hold) == 0);
	pid = fork();
	if (pid == 0) {
		struct timespec ts = {0, 300 * 1000000};

		fd = open(dir, O_RDONLY | O_DIRECTORY);
		if (fd < 0 || flock(fd, LOCK_EX) != 0 || write(hold[1], "l", 1) != 1)
			_exit(1);
		nanosleep(&ts, NULL);
		_exit(0); /* the lock goes with the process */
	}
	CHECK(read(hold[0], &c, 1) == 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ_INT(keystore_remove(ks, "k", &TOMB, &err), KS_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* It waited (not a timing bound: only that it did not go ahead under the lock). */
	CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 100);
	CHECK(waitpid(pid, NULL, 0) == pid);
	close(hold[0]);
	close(hold[1]);
	keystore_close(ks);
out:
	remove_tree(dir);
}

static void test_name_list(void)
{
	struct name_list l = {0};

	CHECK(name_list_add(&l, "b") == 0);
	CHECK(name_list_add(&l, "a") == 0);
	CHECK(name_list_add(&l, "b") == 0);
	CHECK(name_list_add(&l, "B") == 0);
	name_list_sort(&l);
	CHECK_EQ_INT(l.count, 3);
	if (l.count == 3) {
		CHECK_EQ_STR(l.names[0], "B");
		CHECK_EQ_STR(l.names[1], "a");
		CHECK_EQ_STR(l.names[2], "b");
	}
	name_list_free(&l);
	CHECK(l.names == NULL && l.count == 0);
	name_list_free(&l);

	/* Already in order: kept as is; in order but with a duplicate: still deduplicated. */
	const char *sorted[] = {"a", "b", "c"}, *dup[] = {"a", "b", "b"};
	for (int i = 0; i < 3; i++)
		CHECK(name_list_add(&l, sorted[i]) == 0);
	name_list_sort(&l);
	CHECK_EQ_INT(l.count, 3);
	if (l.count == 3)
		CHECK_EQ_STR(l.names[2], "c");
	name_list_free(&l);
	for (int i = 0; i < 3; i++)
		CHECK(name_list_add(&l, dup[i]) == 0);
	name_list_sort(&l);
	CHECK_EQ_INT(l.count, 2);
	if (l.count == 2)
		CHECK_EQ_STR(l.names[1], "b");
	name_list_free(&l);

	CHECK_EQ_STR(ks_result_name(KS_EXISTS), "exists");
	CHECK_EQ_STR(ks_result_name(KS_WOULD_BLOCK), "would block");
}

int main(void)
{
	RUN(test_name_list);
	RUN(test_mem_conformance);
	RUN(test_mem_status_latency);
	RUN(test_fs_conformance);
	RUN(test_fs_serves_kes_directory);
	RUN(test_fs_invalid_names);
	RUN(test_fs_temp_files);
	RUN(test_fs_never_replaces);
	RUN(test_fs_permissions);
	RUN(test_fs_open_errors);
	RUN(test_fs_record_limits);
	RUN(test_fs_status_unreachable);
	RUN(test_fs_refuses_special_files);
	RUN(test_fs_directory_replaced);
	RUN(test_fs_status_access);
	RUN(test_fs_tombstone_on_disk);
	RUN(test_fs_two_processes);
	RUN(test_fs_waits_for_lock);
	return CHECK_DONE();
}
