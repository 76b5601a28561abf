/*
 * config_yaml.h — YAML text → a small tree that remembers line numbers, for config.c.
 *
 * libyaml's event stream is turned into nodes: scalars (raw text as written, quoted or plain),
 * mappings (key/value pairs in document order; duplicate keys are an error) and sequences.
 * Aliases are refused (a config has no use for them and they make line numbers ambiguous);
 * anchors and tags are ignored. Scalar text is zeroed when the tree is freed, because it may
 * hold secrets (passwords, AppRole secrets, JWTs).
 */
#ifndef KESC_SERVER_CONFIG_YAML_H
#define KESC_SERVER_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_kind kind;
	unsigned line; /* 1-based line where the node starts */
	bool plain;    /* scalar written without quotes */
	char *value;   /* scalar text, NUL-terminated (may contain NULs: len is the truth) */
	size_t len;
	struct ynode **items; /* SEQ: the items; MAP: key0, value0, key1, value1, ... */
	size_t count;         /* SEQ: items; MAP: number of pairs */
	size_t nitems;        /* entries used in items (builder bookkeeping) */
	size_t cap;
};

#define YAML_TREE_MAX_DEPTH 64

/* Parses exactly one document. An empty document gives *out == NULL and 0. On failure -1 with
 * "name:line: reason" in err. */
int yaml_tree_parse(const char *name, const char *text, size_t len, struct ynode **out, char *err,
                    size_t errlen);
void yaml_tree_free(struct ynode *n);

/* The value stored under key in map (NULL if map is not a mapping or lacks key). If key_out is
 * given it receives the key node (for its line). */
const struct ynode *ynode_get(const struct ynode *map, const char *key,
                              const struct ynode **key_out);
/* A YAML null: a plain scalar "", "~", "null", "Null" or "NULL" (or no node at all). */
bool ynode_is_null(const struct ynode *n);

#endif
