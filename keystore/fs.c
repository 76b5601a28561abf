/*
 * fs.c — the filesystem key store, the embedded default. Layout as KES's fs keystore (kes.md
 * §6): one file per key, named by the key, holding the stored record bytes exactly. A
 * directory KES wrote is served as is, and KES can serve a directory kesc wrote.
 *
 * Unlike KES, a create cannot leave a half-written key behind: the record goes to a temp file
 * (a dot file, which list and get never see and no valid key name can equal), is fsync'ed and
 * then link()ed to the key name. link() fails with EEXIST if the name is taken, so create never
 * overwrites and needs no lock. Everything works relative to one directory descriptor.
 *
 * A delete leaves a tombstone (tombstone.h) in the key's file: written to a temp file, fsync'ed
 * and rename()d over the key, so a reader sees the key or the tombstone, never neither. A
 * create over an expired tombstone replaces it the same way, and so does a replace (a
 * rotation, a scheduled deletion, a restore: keystore.h). These steps read what is
 * there and then replace it, so they hold a lock on the directory while they do: flock() on an
 * open file description of their own, which excludes other threads of this process and other
 * processes serving the same directory alike (a second server, `kesc migrate --to`). A second
 * process on the directory is therefore safe and allowed, as with KES. The wait for the lock
 * is bounded; a holder that does not let go (a stopped process) makes the operation fail.
 * Whoever changes the directory without that lock (KES, an operator) can still race these
 * steps, as they could race KES's own.
 *
 * Only regular files are keys. Anything else under a key name is refused by every operation
 * with an error that says what it is, and is never opened in a way that can block (a FIFO
 * opened without O_NONBLOCK waits for a writer forever, holding a keystore worker), never
 * removed and never replaced. Symbolic links are refused too: a key is exactly the bytes of a
 * file in this directory, and a link would let a key name serve (or a delete leave behind)
 * a file anywhere the server can read, such as another tenant's key directory.
 *
 * The directory is held open, but every operation first checks that the configured path still
 * names it. A directory replaced at its path (moved aside and recreated, restored from a
 * backup) is reopened, once, with a log line; with nothing at the path every operation and the
 * status are KS_UNREACHABLE: an empty keystore would be a lie, and recreating the directory
 * could hide an unmounted volume. The status also checks that this process may read, write
 * and search the directory.
 */
#include "keystore/keystore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore/secmem.h"
#include "keystore/tombstone.h"

#define FS_NAME_MAX    255
#define FS_TEMP_PREFIX ".kesc-tmp-"
/* A temp file older than this cannot belong to a create still in progress. */
#define FS_TEMP_STALE_SEC 60
/* How long a delete or a create over a tombstone waits for the directory lock. */
#define FS_LOCK_WAIT_MS 10000

/* KES's text for a name that could escape the directory (API 502). */
static const char fs_err_invalid_name[] = "fs: key name contains invalid character";

struct fs_store {
	/* dirfd and its identity: every operation holds the read lock for as long as it uses
	 * dirfd, a reopen takes the write lock. */
	pthread_rwlock_t lock;
	int dirfd;
	dev_t dev;
	ino_t ino;
	atomic_bool missing; /* nothing usable at path (logged once per episode) */
	char *path;          /* absolute as configured: links in it are followed at every check */
};

/* How often an operation retries when the path changes while it reopens. */
#define FS_REOPEN_TRIES 3

static atomic_ulong fs_temp_counter;

/* Plain names only: nothing that is a path, a dot file or longer than a file name may be. */
static bool fs_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > FS_NAME_MAX)
		return false;
	return strpbrk(name, "/\\.") == NULL;
}

static int64_t fs_now_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0; /* cannot fail for CLOCK_MONOTONIC; a 0 latency is harmless */
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int fs_write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Stats the configured path: KS_OK if it names a directory, KS_UNREACHABLE (logged once per
 * episode) if not. */
static int fs_dir_stat(struct fs_store *fs, struct stat *st, struct ks_err *err)
{
	int e = 0;

	if (stat(fs->path, st) != 0)
		e = errno;
	else if (!S_ISDIR(st->st_mode))
		e = ENOTDIR;
	if (e == 0) {
		atomic_store(&fs->missing, false);
		return KS_OK;
	}
	ks_err_set(err, "fs: key directory %s: %s", fs->path, strerror(e));
	if (!atomic_exchange(&fs->missing, true))
		ks_log("fs: key directory %s: %s; the keystore is unreachable until it is back",
		       fs->path, strerror(e));
	return KS_UNREACHABLE;
}

/* Opens the directory now at the path in place of the old one. Caller holds the write lock. */
static int fs_dir_reopen(struct fs_store *fs, struct ks_err *err)
{
	struct stat st;
	int fd = open(fs->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0) {
		ks_err_set(err, "fs: reopen key directory %s: %s", fs->path, strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return KS_UNREACHABLE;
	}
	ks_log("fs: key directory %s was replaced by another directory; serving the new one "
	       "(keys left in the old one are no longer served)",
	       fs->path);
	(void)close(fs->dirfd); /* a directory opened read-only */
	fs->dirfd = fd;
	fs->dev = st.st_dev;
	fs->ino = st.st_ino;
	return KS_OK;
}

/* Every operation begins here. On KS_OK the read lock is held and dirfd is the directory the
 * path names; release with fs_dir_leave. */
static int fs_dir_enter(struct fs_store *fs, struct ks_err *err)
{
	struct stat st;
	int rc;

	for (int tries = 0; tries < FS_REOPEN_TRIES; tries++) {
		pthread_rwlock_rdlock(&fs->lock);
		rc = fs_dir_stat(fs, &st, err);
		if (rc == KS_OK && st.st_dev == fs->dev && st.st_ino == fs->ino)
			return KS_OK;
		pthread_rwlock_unlock(&fs->lock);
		if (rc != KS_OK)
			return rc;
		pthread_rwlock_wrlock(&fs->lock);
		rc = fs_dir_stat(fs, &st, err); /* another thread may have reopened it */
		if (rc == KS_OK && (st.st_dev != fs->dev || st.st_ino != fs->ino))
			rc = fs_dir_reopen(fs, err);
		pthread_rwlock_unlock(&fs->lock);
		if (rc != KS_OK)
			return rc;
	}
	ks_err_set(err, "fs: key directory %s keeps changing", fs->path);
	return KS_UNREACHABLE;
}

static void fs_dir_leave(struct fs_store *fs)
{
	pthread_rwlock_unlock(&fs->lock);
}

static int fs_sync_dir(struct fs_store *fs, struct ks_err *err)
{
	if (fsync(fs->dirfd) != 0) {
		ks_err_set(err, "fs: fsync %s: %s", fs->path, strerror(errno));
		return KS_FAILED;
	}
	return KS_OK;
}

/* Opens a fresh temp file (O_EXCL, 0600) and puts its name into tmp. */
static int fs_open_temp(struct fs_store *fs, char *tmp, size_t tmplen, struct ks_err *err)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		unsigned long n =
		    atomic_fetch_add_explicit(&fs_temp_counter, 1, memory_order_relaxed);
		int fd;

		snprintf(tmp, tmplen, FS_TEMP_PREFIX "%ld-%lu", (long)getpid(), n);
		fd = openat(fs->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		            0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST) {
			ks_err_set(err, "fs: create temp file in %s: %s", fs->path,
			           strerror(errno));
			return -1;
		}
	}
	ks_err_set(err, "fs: no free temp file name in %s", fs->path);
	return -1;
}

/* Writes the record to a new temp file and makes it durable. */
static int fs_write_temp(struct fs_store *fs, const struct bytes *record, char *tmp, size_t tmplen,
                         struct ks_err *err)
{
	int fd = fs_open_temp(fs, tmp, tmplen, err);

	if (fd < 0)
		return KS_FAILED;
	if (fs_write_all(fd, record->data, record->len) != 0 || fsync(fd) != 0) {
		ks_err_set(err, "fs: write temp file in %s: %s", fs->path, strerror(errno));
		(void)close(fd); /* already failing; the temp file goes below */
		goto fail;
	}
	if (close(fd) != 0) {
		ks_err_set(err, "fs: close temp file in %s: %s", fs->path, strerror(errno));
		goto fail;
	}
	return KS_OK;
fail:
	/* Best effort: a leftover temp file is invisible to get/list and removed at open. */
	(void)unlinkat(fs->dirfd, tmp, 0);
	return KS_FAILED;
}

/* What a non-regular file is, for an operator. */
static const char *fs_kind_name(mode_t mode)
{
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISLNK(mode))
		return "a symbolic link";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	return "of an unknown type";
}

static int fs_refuse_kind(struct fs_store *fs, const char *name, mode_t mode, struct ks_err *err)
{
	ks_err_set(err, "fs: '%s' in %s is %s, not a regular file: refused as a key", name,
	           fs->path, fs_kind_name(mode));
	return KS_FAILED;
}

/* Whether the entry name is a key file, without opening it: KS_OK (a regular file),
 * KS_NOT_FOUND, or KS_FAILED (something else, or the directory cannot be read). */
static int fs_check_entry(struct fs_store *fs, const char *name, struct ks_err *err)
{
	struct stat st;

	if (fstatat(fs->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return KS_NOT_FOUND;
		ks_err_set(err, "fs: stat key '%s' in %s: %s", name, fs->path, strerror(errno));
		return KS_FAILED;
	}
	if (!S_ISREG(st.st_mode))
		return fs_refuse_kind(fs, name, st.st_mode, err);
	return KS_OK;
}

/* Links a fresh temp file holding record to name: KS_OK, KS_EXISTS if the name was taken
 * meanwhile by a regular file, or an error. Caller holds the directory. */
static int fs_link_new(struct fs_store *fs, const char *name, const struct bytes *record,
                       struct ks_err *err)
{
	char tmp[64];
	int rc, link_errno;

	rc = fs_write_temp(fs, record, tmp, sizeof(tmp), err);
	if (rc != KS_OK)
		return rc;
	rc = linkat(fs->dirfd, tmp, fs->dirfd, name, 0);
	link_errno = errno;
	/* If this fails the key is still whole; the leftover is ignored and cleaned at open. */
	(void)unlinkat(fs->dirfd, tmp, 0);
	if (rc != 0) {
		if (link_errno == EEXIST) {
			/* Taken since the check: by a key, or by something that is refused. */
			rc = fs_check_entry(fs, name, err);
			return rc == KS_OK || rc == KS_NOT_FOUND ? KS_EXISTS : rc;
		}
		ks_err_set(err, "fs: link key '%s' in %s: %s", name, fs->path,
		           strerror(link_errno));
		return KS_FAILED;
	}
	return fs_sync_dir(fs, err);
}

/* Renames a fresh temp file holding record over name. Caller holds the directory and the
 * directory lock, and has just checked what name holds. (Something swapped in by someone
 * who does not take the lock, between that check and the rename, is replaced all the same:
 * rename has no "only if" flag.) */
static int fs_replace(struct fs_store *fs, const char *name, const struct bytes *record,
                      struct ks_err *err)
{
	char tmp[64];
	int rc = fs_write_temp(fs, record, tmp, sizeof(tmp), err);

	if (rc != KS_OK)
		return rc;
	if (renameat(fs->dirfd, tmp, fs->dirfd, name) != 0) {
		ks_err_set(err, "fs: replace '%s' in %s: %s", name, fs->path, strerror(errno));
		(void)unlinkat(fs->dirfd, tmp, 0);
		return KS_FAILED;
	}
	return fs_sync_dir(fs, err);
}

/* Takes the directory lock (see the top of the file) into *fd; fs_unlock_dir releases it. */
static int fs_lock_dir(struct fs_store *fs, int *fd, struct ks_err *err)
{
	long step_ms = 1, waited_ms = 0;

	*fd = openat(fs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0) {
		ks_err_set(err, "fs: open %s to lock it: %s", fs->path, strerror(errno));
		return KS_FAILED;
	}
	for (;;) {
		if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
			return KS_OK;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			ks_err_set(err, "fs: lock key directory %s: %s", fs->path, strerror(errno));
			break;
		}
		if (waited_ms >= FS_LOCK_WAIT_MS) {
			ks_err_set(err,
			           "fs: key directory %s stayed locked by another process for %d s",
			           fs->path, FS_LOCK_WAIT_MS / 1000);
			break;
		}
		struct timespec ts = {0, step_ms * 1000000};
		(void)nanosleep(&ts, NULL); /* an early wake-up only retries sooner */
		waited_ms += step_ms;
		step_ms = step_ms < 32 ? step_ms * 2 : 50;
	}
	(void)close(*fd); /* a directory opened read-only */
	*fd = -1;
	return KS_FAILED;
}

static void fs_unlock_dir(int fd)
{
	(void)close(fd); /* closing the description releases the flock */
}

static int fs_get_in_dir(struct fs_store *fs, const char *name, struct bytes *record_out,
                         struct ks_err *err);

/* Under the directory lock: name holds an expired tombstone (checked again, now that no
 * other delete or create can change it), so record takes its place. Caller holds the
 * directory. */
static int fs_create_over(struct fs_store *fs, const char *name, const struct bytes *record,
                          struct ks_err *err)
{
	struct bytes cur = {0};
	int lockfd, rc = fs_lock_dir(fs, &lockfd, err);

	if (rc != KS_OK)
		return rc;
	rc = fs_get_in_dir(fs, name, &cur, err);
	if (rc == KS_OK) {
		rc = keystore_check_taken(name, &cur, keystore_now(), err);
		bytes_free(&cur);
		if (rc == KS_OK)
			rc = fs_replace(fs, name, record, err);
	} else if (rc == KS_NOT_FOUND) {
		rc = fs_link_new(fs, name, record, err); /* removed by hand meanwhile */
	}
	fs_unlock_dir(lockfd);
	return rc;
}

/* Caller holds the directory (fs_dir_enter). */
static int fs_create_in_dir(struct fs_store *fs, const char *name, const struct bytes *record,
                            struct ks_err *err)
{
	struct bytes cur = {0};
	int rc;

	/* Cheap early answer; link() below is what decides. */
	rc = fs_check_entry(fs, name, err);
	if (rc == KS_NOT_FOUND) {
		rc = fs_link_new(fs, name, record, err);
		if (rc != KS_EXISTS)
			return rc;
	} else if (rc != KS_OK) {
		return rc;
	}
	/* Taken: by a key, or by a tombstone that may have expired. */
	rc = fs_get_in_dir(fs, name, &cur, err);
	if (rc == KS_NOT_FOUND)
		return fs_link_new(fs, name, record, err); /* removed by hand meanwhile */
	if (rc != KS_OK)
		return rc;
	rc = keystore_check_taken(name, &cur, keystore_now(), err);
	bytes_free(&cur);
	if (rc != KS_OK)
		return rc;
	return fs_create_over(fs, name, record, err);
}

static int fs_create(void *self, const char *name, const struct bytes *record, struct ks_err *err)
{
	struct fs_store *fs = self;
	int rc;

	if (!fs_name_valid(name)) {
		ks_err_set(err, "%s", fs_err_invalid_name);
		return KS_FAILED;
	}
	if (record->len > KS_MAX_RECORD) {
		ks_err_set(err, "fs: record for '%s' is larger than %d bytes", name, KS_MAX_RECORD);
		return KS_FAILED;
	}
	rc = fs_dir_enter(fs, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_create_in_dir(fs, name, record, err);
	fs_dir_leave(fs);
	return rc;
}

/* Reads the whole file, at most KS_MAX_RECORD bytes. */
static int fs_read_record(int fd, const char *name, struct bytes *out, struct ks_err *err)
{
	size_t cap = KS_MAX_RECORD + 2, len = 0;
	uint8_t *data = malloc(cap);

	if (!data) {
		ks_err_set(err, "fs: out of memory reading '%s'", name);
		return KS_FAILED;
	}
	while (len < cap - 1) {
		ssize_t n = read(fd, data + len, cap - 1 - len);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ks_err_set(err, "fs: read key '%s': %s", name, strerror(errno));
			goto fail;
		}
		len += (size_t)n;
	}
	if (len > KS_MAX_RECORD) {
		ks_err_set(err, "fs: key '%s' is larger than %d bytes", name, KS_MAX_RECORD);
		goto fail;
	}
	data[len] = 0;
	out->data = data;
	out->len = len;
	return KS_OK;
fail:
	secure_zero(data, len);
	free(data);
	return KS_FAILED;
}

/* Caller holds the directory (fs_dir_enter). */
static int fs_get_in_dir(struct fs_store *fs, const char *name, struct bytes *record_out,
                         struct ks_err *err)
{
	struct stat st;
	int fd, rc;

	/* Look before opening: opening a device can have effects of its own. */
	rc = fs_check_entry(fs, name, err);
	if (rc != KS_OK)
		return rc;
	/* It may have been swapped since: O_NONBLOCK so that a FIFO cannot make the open wait,
	 * O_NOFOLLOW for a link, and fstat decides. */
	fd = openat(fs->dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return KS_NOT_FOUND;
		if (errno == ELOOP)
			return fs_refuse_kind(fs, name, S_IFLNK, err);
		ks_err_set(err, "fs: open key '%s' in %s: %s", name, fs->path, strerror(errno));
		return KS_FAILED;
	}
	if (fstat(fd, &st) != 0) {
		ks_err_set(err, "fs: stat key '%s' in %s: %s", name, fs->path, strerror(errno));
		(void)close(fd);
		return KS_FAILED;
	}
	if (!S_ISREG(st.st_mode)) {
		(void)close(fd); /* opened read-only: nothing to lose */
		return fs_refuse_kind(fs, name, st.st_mode, err);
	}
	rc = fs_read_record(fd, name, record_out, err);
	(void)close(fd); /* read-only: nothing to lose on close */
	return rc;
}

static int fs_get(void *self, const char *name, struct bytes *record_out, struct ks_err *err)
{
	struct fs_store *fs = self;
	int rc;

	if (!fs_name_valid(name)) {
		ks_err_set(err, "%s", fs_err_invalid_name);
		return KS_FAILED;
	}
	rc = fs_dir_enter(fs, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_get_in_dir(fs, name, record_out, err);
	fs_dir_leave(fs);
	return rc;
}

/* Caller holds the directory (fs_dir_enter). */
static int fs_remove_in_dir(struct fs_store *fs, const char *name, const struct bytes *tombstone,
                            struct ks_err *err)
{
	struct bytes cur = {0};
	struct tombstone t;
	int lockfd, rc;

	/* Only a key is deleted: nothing else is read, replaced or removed. */
	rc = fs_check_entry(fs, name, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_lock_dir(fs, &lockfd, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_get_in_dir(fs, name, &cur, err);
	if (rc == KS_OK) {
		bool buried = tombstone_parse(cur.data, cur.len, &t);

		bytes_free(&cur);
		rc = buried ? KS_NOT_FOUND : fs_replace(fs, name, tombstone, err);
	}
	fs_unlock_dir(lockfd);
	return rc;
}

static int fs_remove(void *self, const char *name, const struct bytes *tombstone,
                     struct ks_err *err)
{
	struct fs_store *fs = self;
	int rc;

	if (!fs_name_valid(name)) {
		ks_err_set(err, "%s", fs_err_invalid_name);
		return KS_FAILED;
	}
	if (tombstone->len > KS_MAX_RECORD) {
		ks_err_set(err, "fs: tombstone for '%s' is larger than %d bytes", name,
		           KS_MAX_RECORD);
		return KS_FAILED;
	}
	rc = fs_dir_enter(fs, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_remove_in_dir(fs, name, tombstone, err);
	fs_dir_leave(fs);
	return rc;
}

/* Caller holds the directory (fs_dir_enter). Under the directory lock, so that no other
 * delete, create over a tombstone or replace of a kesc process can come in between the
 * comparison and the rename; the rename makes the change one step (temp + fsync + rename +
 * fsync of the directory): a kill -9 at any moment leaves the old file or the new one. */
static int fs_replace_in_dir(struct fs_store *fs, const char *name, const struct bytes *expected,
                             const struct bytes *record, struct ks_err *err)
{
	struct bytes cur = {0};
	int lockfd, rc;

	rc = fs_check_entry(fs, name, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_lock_dir(fs, &lockfd, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_get_in_dir(fs, name, &cur, err);
	if (rc == KS_OK) {
		bool same = cur.len == expected->len && ct_equal(cur.data, expected->data, cur.len);

		bytes_free(&cur);
		if (same) {
			rc = fs_replace(fs, name, record, err);
		} else {
			ks_err_set(err, "fs: '%s' in %s changed since it was read", name, fs->path);
			rc = KS_EXISTS;
		}
	}
	fs_unlock_dir(lockfd);
	return rc;
}

static int fs_replace_record(void *self, const char *name, const struct bytes *expected,
                             const struct bytes *record, struct ks_err *err)
{
	struct fs_store *fs = self;
	int rc;

	if (!fs_name_valid(name)) {
		ks_err_set(err, "%s", fs_err_invalid_name);
		return KS_FAILED;
	}
	if (record->len > KS_MAX_RECORD) {
		ks_err_set(err, "fs: record for '%s' is larger than %d bytes", name, KS_MAX_RECORD);
		return KS_FAILED;
	}
	rc = fs_dir_enter(fs, err);
	if (rc != KS_OK)
		return rc;
	rc = fs_replace_in_dir(fs, name, expected, record, err);
	fs_dir_leave(fs);
	return rc;
}

/* Whether a directory entry is a key: a regular file with a valid name. Decided from the entry
 * alone (d_type, or an fstatat that does not follow links): nothing is opened. */
static bool fs_entry_is_key(int dirfd, const struct dirent *de)
{
	struct stat st;

	if (!fs_name_valid(de->d_name))
		return false;
	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static DIR *fs_open_dir_stream(struct fs_store *fs, struct ks_err *err)
{
	int fd = openat(fs->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0) {
		ks_err_set(err, "fs: open %s: %s", fs->path, strerror(errno));
		return NULL;
	}
	d = fdopendir(fd);
	if (!d) {
		ks_err_set(err, "fs: open %s: %s", fs->path, strerror(errno));
		(void)close(fd);
	}
	return d;
}

/* Caller holds the directory (fs_dir_enter). */
static int fs_list_in_dir(struct fs_store *fs, const char *prefix, struct name_list *out,
                          struct ks_err *err)
{
	size_t plen = strlen(prefix);
	struct dirent *de;
	int rc = KS_OK;
	DIR *d = fs_open_dir_stream(fs, err);

	if (!d)
		return KS_FAILED;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno != 0) {
				ks_err_set(err, "fs: read %s: %s", fs->path, strerror(errno));
				rc = KS_FAILED;
			}
			break;
		}
		if (strncmp(de->d_name, prefix, plen) != 0 || !fs_entry_is_key(dirfd(d), de))
			continue;
		if (name_list_add(out, de->d_name) != 0) {
			ks_err_set(err, "fs: out of memory listing %s", fs->path);
			rc = KS_FAILED;
			break;
		}
	}
	(void)closedir(d); /* read-only */
	if (rc == KS_OK)
		name_list_sort(out);
	return rc;
}

static int fs_list(void *self, const char *prefix, struct name_list *out, struct ks_err *err)
{
	struct fs_store *fs = self;
	int rc = fs_dir_enter(fs, err);

	if (rc != KS_OK)
		return rc;
	rc = fs_list_in_dir(fs, prefix, out, err);
	fs_dir_leave(fs);
	return rc;
}

/*
 * Reachable means what the operations need: the path names a directory (reopened if it was
 * replaced) that this process may read, write and search. Two syscalls and no I/O, since
 * /v1/ready polls it. A permission check, not a probe write: a full disk still serves reads.
 */
static int fs_status(void *self, struct ks_status *out, struct ks_err *err)
{
	struct fs_store *fs = self;
	int64_t start = fs_now_us();
	int rc = fs_dir_enter(fs, err);

	if (rc != KS_OK)
		return rc;
	if (faccessat(fs->dirfd, ".", R_OK | W_OK | X_OK, AT_EACCESS) != 0) {
		ks_err_set(err,
		           "fs: key directory %s is not readable and writable by this process: %s",
		           fs->path, strerror(errno));
		rc = KS_UNREACHABLE;
	}
	fs_dir_leave(fs);
	out->latency_us = fs_now_us() - start;
	return rc;
}

static void fs_close(void *self)
{
	struct fs_store *fs = self;

	if (!fs)
		return;
	if (fs->dirfd >= 0)
		(void)close(fs->dirfd); /* a directory opened read-only */
	pthread_rwlock_destroy(&fs->lock);
	free(fs->path);
	free(fs);
}

static const struct keystore_ops fs_ops = {
    .name = "fs",
    .create = fs_create,
    .get = fs_get,
    .remove = fs_remove,
    .list = fs_list,
    .status = fs_status,
    .close = fs_close,
    .replace = fs_replace_record,
};

/* mkdir -p with mode 0700 for every directory it creates. */
static int fs_make_dirs(const char *dir, struct ks_err *err)
{
	char *p, *path = strdup(dir);
	int rc = 0;

	if (!path) {
		ks_err_set(err, "fs: out of memory");
		return -1;
	}
	for (p = path + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			ks_err_set(err, "fs: create directory %s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
	return rc;
}

/* Removes temp files that a crashed create left behind. Fresh ones may belong to another
 * process creating a key in the same directory right now, so only old ones go. */
static void fs_clean_temps(struct fs_store *fs)
{
	struct ks_err ignored;
	struct dirent *de;
	time_t now = time(NULL);
	DIR *d = fs_open_dir_stream(fs, &ignored);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strncmp(de->d_name, FS_TEMP_PREFIX, strlen(FS_TEMP_PREFIX)) != 0)
			continue;
		if (fstatat(fs->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime < FS_TEMP_STALE_SEC)
			continue;
		(void)unlinkat(fs->dirfd, de->d_name, 0); /* best effort; tried again next open */
	}
	(void)closedir(d);
}

/* dir made absolute without resolving links (a later chdir must not change its meaning, and
 * a link in it that is pointed elsewhere counts as a replaced directory). NULL: no memory. */
static char *fs_absolute_path(const char *dir)
{
	char *cwd, *abs;

	if (dir[0] == '/')
		return strdup(dir);
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	abs = malloc(strlen(cwd) + 1 + strlen(dir) + 1);
	if (abs)
		sprintf(abs, "%s/%s", cwd, dir);
	free(cwd);
	return abs;
}

/* A reopen must not wait behind a stream of readers. */
static int fs_lock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int rc;

	if (pthread_rwlockattr_init(&attr) != 0)
		return -1;
	rc = pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (rc == 0)
		rc = pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return rc == 0 ? 0 : -1;
}

static int fs_open_dir(struct fs_store *fs, const char *dir, struct ks_err *err)
{
	struct stat st;

	fs->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dirfd < 0 || fstat(fs->dirfd, &st) != 0) {
		ks_err_set(err, "fs: open %s: %s", dir,
		           errno == ENOTDIR ? "exists but is not a directory" : strerror(errno));
		return -1;
	}
	fs->dev = st.st_dev;
	fs->ino = st.st_ino;
	return 0;
}

struct keystore *fs_keystore_open(const char *dir, struct ks_err *err)
{
	struct keystore *ks = calloc(1, sizeof(*ks));
	struct fs_store *fs = calloc(1, sizeof(*fs));
	bool locked = false;

	if (fs)
		fs->dirfd = -1;
	if (!ks || !fs || !(fs->path = fs_absolute_path(dir))) {
		ks_err_set(err, "fs: out of memory");
		goto fail;
	}
	if (dir[0] == '\0') {
		ks_err_set(err, "fs: no directory given");
		goto fail;
	}
	if (fs_lock_init(&fs->lock) != 0) {
		ks_err_set(err, "fs: cannot create a lock");
		goto fail;
	}
	locked = true;
	if (fs_make_dirs(dir, err) != 0 || fs_open_dir(fs, dir, err) != 0)
		goto fail;
	fs_clean_temps(fs);
	ks->ops = &fs_ops;
	ks->self = fs;
	return ks;
fail:
	if (fs) {
		if (fs->dirfd >= 0)
			(void)close(fs->dirfd);
		if (locked)
			pthread_rwlock_destroy(&fs->lock);
		free(fs->path);
	}
	free(fs);
	free(ks);
	return NULL;
}
