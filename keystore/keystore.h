/*
 * keystore.h — the one interface every key store implements, and the helpers they share.
 *
 * A store moves opaque records: the stored-key encoding of key.h (base64 protobuf, or the
 * legacy JSON). It never parses them, so every store serves keys that KES wrote and KES can
 * read keys that kesc wrote. The cache (cache.h) wraps any store.
 *
 * Semantics every store keeps (the conformance suite, tests/unit/test_keystore.c, checks them
 * against each store):
 *   create  never replaces a key: KS_EXISTS if the name holds one. When it returns KS_OK the
 *           record is durable in the store; on any other result no partial record is visible.
 *           A name holding a tombstone (tombstone.h, what remove leaves) is taken until the
 *           tombstone expires: KS_DELETED, with the details in err. After that, create
 *           replaces the tombstone in one step that cannot replace anything else: if another
 *           writer got there first, KS_EXISTS. A store that cannot make that step safe
 *           refuses instead (Vault K/V v1: KS_DELETED until an operator purges the tombstone,
 *           vault.h).
 *   get     the stored record as it is, a key's or a tombstone's; KS_NOT_FOUND if absent.
 *           Callers use keystore_get, which answers KS_NOT_FOUND for a tombstone too.
 *   remove  replaces the key with the given tombstone record, durably and in one step (a
 *           reader sees the key or the tombstone, never neither; Vault K/V v1 cannot, vault.h).
 *           KS_NOT_FOUND if the name holds no key: nothing, or already a tombstone. Whatever
 *           is stored that is not a tombstone counts as a key, also a record that does not
 *           parse.
 *   replace replaces what name holds with record if it holds exactly expected now (byte for
 *           byte): in one step, so that a reader, a crash or a kill -9 finds the old record or
 *           the new one, never neither, and so that no other writer's change in between is
 *           overwritten. KS_EXISTS when name holds anything else now (it changed since the
 *           caller read it: read again and retry), KS_NOT_FOUND when it holds nothing. Keys
 *           are rotated, retired, scheduled for deletion, restored and purged this way
 *           (key_lifecycle.h). A store that cannot make the step safe refuses with KS_FAILED
 *           and says why (Vault K/V v1 unless the operator opted in, vault.h). As remove,
 *           a replace by a tombstone whose clean-up after the write failed (Vault versions
 *           not destroyed) answers KS_FAILED although the tombstone is written.
 *   list    every name starting with prefix ("" = all), sorted, each exactly once, names that
 *           hold a tombstone included: telling them apart takes a read per name, which
 *           ks_cache_list does for the API.
 *   status  KS_OK with a latency, or KS_UNREACHABLE.
 * Names given to a store are already validated by the API (1..80 of [0-9A-Za-z_-]), but a
 * store must still refuse anything that could escape its namespace (KS_FAILED).
 */
#ifndef KESC_KEYSTORE_KEYSTORE_H
#define KESC_KEYSTORE_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore/bytes.h"

enum ks_result {
	KS_OK = 0,
	KS_NOT_FOUND = -1,   /* API: 404 key does not exist */
	KS_EXISTS = -2,      /* API: 400 key already exists */
	KS_UNREACHABLE = -3, /* store down, sealed, timed out: API 502/504 with KES's texts */
	KS_FAILED = -4,      /* anything else: API 502 "failed to …" */
	KS_WOULD_BLOCK =
	    -5,          /* cache only: answer needs store I/O and the caller asked not to wait */
	KS_DELETED = -6, /* create: the name holds a tombstone that has not expired (API 409) */
	KS_NO_VERSION = -7, /* retire, rewrap: the key has no such version (API 400) */
	KS_TOO_MANY = -8,   /* rotate: the key has the most versions a key can have (API 409) */
	KS_PURGED = -9,     /* restore: deleted, and its restore window is over or it was purged */
};

/* Details of a failure, for the error log only: never shown to API clients, never holds key
 * material. */
struct ks_err {
	char msg[512]; /* room for an operator-readable reason with a path in it */
};

void ks_err_set(struct ks_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Background work inside a store (Vault token renewal and re-login, health polling) has no
 * caller to return an error to. It reports through this hook, which the server points at its
 * error log; without a hook the messages go nowhere. Messages never hold secrets.
 */
typedef void (*ks_log_fn)(const char *message);
void keystore_set_log(ks_log_fn fn);
void ks_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * The tenant the calling thread works for (NULL: none), so that what it logs reaches that
 * tenant's log stream (server/log.h) and names it. A request thread has it set around the
 * handler (server/router.c); a tenant store's own threads set it when they start. The string
 * must outlive its use on the thread.
 */
void keystore_thread_tag_set(const char *tenant);
const char *keystore_thread_tag(void);

/* "ok", "not found", "exists", "unreachable", "failed", "would block", "deleted", "no such
 * version", "too many versions", "purged". */
const char *ks_result_name(int result);

/* A list of owned names. */
struct name_list {
	char **names;
	size_t count;
	size_t cap;
};

int name_list_add(struct name_list *l, const char *name); /* 0 or -1 (no memory) */
void name_list_sort(struct name_list *l);                 /* byte order, duplicates removed */
void name_list_free(struct name_list *l);

struct ks_status {
	int64_t latency_us; /* time the status probe took */
};

struct keystore_ops {
	const char *name; /* "fs", "mem", "vault": for logs and status */
	int (*create)(void *self, const char *name, const struct bytes *record, struct ks_err *err);
	int (*get)(void *self, const char *name, struct bytes *record_out, struct ks_err *err);
	int (*remove)(void *self, const char *name, const struct bytes *tombstone,
	              struct ks_err *err);
	int (*list)(void *self, const char *prefix, struct name_list *out, struct ks_err *err);
	int (*status)(void *self, struct ks_status *out, struct ks_err *err);
	void (*close)(void *self);
	/* Optional: whether name holds a key (true) or a tombstone (false), as cheaply as the
	 * store can tell; KS_NOT_FOUND if absent. NULL: keystore_holds_key uses get. */
	int (*holds_key)(void *self, const char *name, bool *key, struct ks_err *err);
	/* Optional: NULL means the store cannot replace records (KS_FAILED). */
	int (*replace)(void *self, const char *name, const struct bytes *expected,
	               const struct bytes *record, struct ks_err *err);
};

/* A store instance: its table and its state. All operations are safe to call from several
 * threads at once. */
struct keystore {
	const struct keystore_ops *ops;
	void *self;
};

/* Convenience wrappers (ks->ops->create(ks->self, …)). */
int keystore_create(struct keystore *ks, const char *name, const struct bytes *record,
                    struct ks_err *err);
/* The key record of name: KS_NOT_FOUND for a name that holds a tombstone, with what the
 * tombstone says in err ("deleted at … by …, name reserved until …"). */
int keystore_get(struct keystore *ks, const char *name, struct bytes *record_out,
                 struct ks_err *err);
/* Whether name holds a key: KS_OK with *key true, KS_NOT_FOUND for a tombstone or nothing,
 * or an error (a record that is not a tombstone counts as a key: it is listed). */
int keystore_holds_key(struct keystore *ks, const char *name, struct ks_err *err);
/* tombstone: the record to leave in place of the key (tombstone_encode). */
int keystore_remove(struct keystore *ks, const char *name, const struct bytes *tombstone,
                    struct ks_err *err);
/* The stored record of name as it is, a tombstone included (the store's own get). */
int keystore_get_raw(struct keystore *ks, const char *name, struct bytes *record_out,
                     struct ks_err *err);
int keystore_replace(struct keystore *ks, const char *name, const struct bytes *expected,
                     const struct bytes *record, struct ks_err *err);
int keystore_list(struct keystore *ks, const char *prefix, struct name_list *out,
                  struct ks_err *err);
int keystore_status(struct keystore *ks, struct ks_status *out, struct ks_err *err);
/* Closes the store and frees ks itself. NULL is fine. */
void keystore_close(struct keystore *ks);

/* For stores, on create: may a new key take the name that now holds record? KS_EXISTS (a key,
 * or anything that is not a tombstone), KS_DELETED (a tombstone that has not expired at Unix
 * time now; err says until when), or KS_OK (an expired tombstone: replace it). */
int keystore_check_taken(const char *name, const struct bytes *record, int64_t now,
                         struct ks_err *err);
/* Unix seconds now (wall clock: tombstones carry wall-clock times). */
int64_t keystore_now(void);

/* The stores. Each returns a new store, or NULL with the reason in err. */
struct keystore *fs_keystore_open(const char *dir, struct ks_err *err); /* fs.c */
struct keystore *mem_keystore_open(void);                               /* mem.c */
/* vault_keystore_open is declared in vault.h. */

/* Largest record any store accepts or returns (KES: 1 MiB). */
#define KS_MAX_RECORD (1024 * 1024)

#endif
