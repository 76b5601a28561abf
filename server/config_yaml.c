/*
 * config_yaml.c — libyaml events → struct ynode tree with line numbers (see config_yaml.h).
 * The builder is iterative with a bounded stack, so hostile nesting cannot exhaust the C stack.
 */
#include "server/config_yaml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "keystore/secmem.h"

struct builder {
	const char *name;
	char *err;
	size_t errlen;
	struct ynode *root;
	struct ynode *stack[YAML_TREE_MAX_DEPTH];
	size_t depth;
	int documents;
};

void yaml_tree_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nitems; i++)
		yaml_tree_free(n->items[i]);
	free(n->items);
	if (n->value) {
		secure_zero(n->value, n->len);
		free(n->value);
	}
	free(n);
}

static struct ynode *node_new(enum ynode_kind kind, const yaml_event_t *ev)
{
	struct ynode *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->kind = kind;
	n->line = (unsigned)ev->start_mark.line + 1;
	return n;
}

static int fail(struct builder *b, unsigned line, const char *reason, const char *arg)
{
	if (arg)
		snprintf(b->err, b->errlen, "%s:%u: %s '%s'", b->name, line, reason, arg);
	else
		snprintf(b->err, b->errlen, "%s:%u: %s", b->name, line, reason);
	return -1;
}

static int check_duplicate_key(struct builder *b, const struct ynode *map, const struct ynode *key)
{
	for (size_t i = 0; i < map->count; i++) {
		const struct ynode *k = map->items[2 * i];
		if (k->len == key->len && memcmp(k->value, key->value, k->len) == 0) {
			snprintf(b->err, b->errlen, "%s:%u: duplicate key '%s' (first at line %u)",
			         b->name, key->line, key->value, k->line);
			return -1;
		}
	}
	return 0;
}

/* Hands n to the innermost open container (or makes it the root); frees it on failure. */
static int attach(struct builder *b, struct ynode *n)
{
	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	struct ynode *top = b->stack[b->depth - 1];
	if (top->kind == YNODE_MAP && top->nitems % 2 == 0) {
		if (n->kind != YNODE_SCALAR) {
			fail(b, n->line, "mapping keys must be plain strings", NULL);
			yaml_tree_free(n);
			return -1;
		}
		if (check_duplicate_key(b, top, n) < 0) {
			yaml_tree_free(n);
			return -1;
		}
	}
	if (top->nitems == top->cap) {
		size_t grow = top->cap ? 2 * top->cap : 8;
		struct ynode **v = realloc(top->items, grow * sizeof *v);
		if (!v) {
			yaml_tree_free(n);
			return fail(b, n->line, "out of memory", NULL);
		}
		top->items = v;
		top->cap = grow;
	}
	top->items[top->nitems++] = n;
	top->count = top->kind == YNODE_MAP ? top->nitems / 2 : top->nitems;
	return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	struct ynode *n = node_new(YNODE_SCALAR, ev);
	if (!n)
		return fail(b, (unsigned)ev->start_mark.line + 1, "out of memory", NULL);
	n->len = ev->data.scalar.length;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->value = malloc(n->len + 1);
	if (!n->value) {
		free(n);
		return fail(b, (unsigned)ev->start_mark.line + 1, "out of memory", NULL);
	}
	memcpy(n->value, ev->data.scalar.value, n->len);
	n->value[n->len] = '\0';
	return attach(b, n);
}

static int on_open(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;
	if (b->depth == YAML_TREE_MAX_DEPTH)
		return fail(b, line, "nesting too deep", NULL);
	struct ynode *n = node_new(kind, ev);
	if (!n)
		return fail(b, line, "out of memory", NULL);
	if (attach(b, n) < 0)
		return -1;
	b->stack[b->depth++] = n;
	return 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->documents > 1)
			return fail(b, line, "more than one YAML document in the file", NULL);
		return 0;
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_MAPPING_START_EVENT:
		return on_open(b, ev, YNODE_MAP);
	case YAML_SEQUENCE_START_EVENT:
		return on_open(b, ev, YNODE_SEQ);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	case YAML_ALIAS_EVENT:
		snprintf(b->err, b->errlen,
		         "%s:%u: YAML aliases (*%s) are not supported; write the "
		         "value out",
		         b->name, line, (const char *)ev->data.alias.anchor);
		return -1;
	default:
		return 0;
	}
}

int yaml_tree_parse(const char *name, const char *text, size_t len, struct ynode **out, char *err,
                    size_t errlen)
{
	struct builder b = {.name = name, .err = err, .errlen = errlen};
	yaml_parser_t parser;
	*out = NULL;
	if (!yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	int rc = -1;
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			snprintf(err, errlen, "%s:%zu: invalid YAML: %s%s%s", name,
			         parser.problem_mark.line + 1,
			         parser.problem ? parser.problem : "error",
			         parser.context ? " " : "", parser.context ? parser.context : "");
			goto out;
		}
		bool end = ev.type == YAML_STREAM_END_EVENT;
		int r = on_event(&b, &ev);
		yaml_event_delete(&ev);
		if (r < 0)
			goto out;
		if (end)
			break;
	}
	*out = b.root;
	b.root = NULL;
	rc = 0;
out:
	yaml_tree_free(b.root);
	yaml_parser_delete(&parser);
	return rc;
}

const struct ynode *ynode_get(const struct ynode *map, const char *key,
                              const struct ynode **key_out)
{
	if (key_out)
		*key_out = NULL;
	if (!map || map->kind != YNODE_MAP)
		return NULL;
	size_t n = strlen(key);
	for (size_t i = 0; i < map->count; i++) {
		const struct ynode *k = map->items[2 * i];
		if (k->len == n && memcmp(k->value, key, n) == 0) {
			if (key_out)
				*key_out = k;
			return map->items[2 * i + 1];
		}
	}
	return NULL;
}

bool ynode_is_null(const struct ynode *n)
{
	if (!n)
		return true;
	if (n->kind != YNODE_SCALAR || !n->plain)
		return false;
	return n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
	       strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}
