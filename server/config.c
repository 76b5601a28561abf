/*
 * config.c — entry points of the config loader: read the file, build the YAML tree, fill a
 * struct config with defaults and then the sections (config_sections.c, config_keystore.c),
 * and free it again. Also the typed scalar getters with KES's ${ENV} rule, and the duration
 * and log-level syntaxes.
 */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore/bytes.h"
#include "keystore/secmem.h"
#include "server/config_internal.h"

#define CONFIG_FILE_MAX ((size_t)4 * 1024 * 1024)

int cfg_fail(struct cfg_ctx *x, unsigned line, const char *field, const char *fmt, ...)
{
	char reason[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (field && field[0])
		snprintf(x->err, x->errlen, "%s:%u: %s: %s", x->name, line, field, reason);
	else
		snprintf(x->err, x->errlen, "%s:%u: %s", x->name, line, reason);
	return -1;
}

void cfg_warn(struct cfg_ctx *x, unsigned line, const char *fmt, ...)
{
	if (!x->warn)
		return;
	char text[768], message[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	snprintf(message, sizeof message, "%s:%u: %s", x->name, line, text);
	x->warn(x->warn_arg, message);
}

unsigned cfg_line_of(const struct ynode *map, const char *key)
{
	const struct ynode *k;
	ynode_get(map, key, &k);
	if (k)
		return k->line;
	return map ? map->line : 1;
}

unsigned cfg_line_in(const struct ynode *parent, const char *section, const char *key)
{
	const struct ynode *sk, *k;
	const struct ynode *sec = ynode_get(parent, section, &sk);
	ynode_get(sec, key, &k);
	if (k)
		return k->line;
	if (sk)
		return sk->line;
	return parent ? parent->line : 1;
}

int cfg_set_string(struct cfg_ctx *x, char **slot, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return cfg_fail(x, 0, NULL, "out of memory");
	cfg_free_secret(*slot);
	*slot = copy;
	return 0;
}

void cfg_free_secret(char *s)
{
	if (!s)
		return;
	secure_zero(s, strlen(s));
	free(s);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* KES env[T]: the whole scalar, trimmed, must read "${NAME}"; NAME is trimmed too. */
static int env_lookup(struct cfg_ctx *x, const struct ynode *n, const char *field,
                      const char **text)
{
	const char *s = n->value;
	size_t len = n->len;
	while (len && is_space(*s))
		s++, len--;
	while (len && is_space(s[len - 1]))
		len--;
	if (len < 3 || s[0] != '$' || s[1] != '{' || s[len - 1] != '}')
		return 0;
	const char *name = s + 2;
	size_t nlen = len - 3;
	while (nlen && is_space(*name))
		name++, nlen--;
	while (nlen && is_space(name[nlen - 1]))
		nlen--;
	char var[256];
	if (nlen >= sizeof var)
		return cfg_fail(x, n->line, field, "env. variable name too long");
	memcpy(var, name, nlen);
	var[nlen] = '\0';
	const char *v = getenv(var);
	if (!v)
		return cfg_fail(x, n->line, field, "referenced env. variable '%s' not found", var);
	*text = v;
	return 1;
}

int cfg_scalar_text(struct cfg_ctx *x, const struct ynode *n, const char *field, enum cfg_env env,
                    const char **text)
{
	if (n->kind != YNODE_SCALAR)
		return cfg_fail(x, n->line, field, "expected a single value, not a %s",
		                n->kind == YNODE_MAP ? "mapping" : "list");
	if (memchr(n->value, '\0', n->len))
		return cfg_fail(x, n->line, field, "value contains a NUL character");
	*text = ynode_is_null(n) ? "" : n->value;
	if (env == CFG_ENV && env_lookup(x, n, field, text) < 0)
		return -1;
	return 0;
}

/* The node under key, or NULL (absent or YAML null). */
static const struct ynode *value_of(const struct ynode *map, const char *key)
{
	const struct ynode *v = ynode_get(map, key, NULL);
	return ynode_is_null(v) ? NULL : v;
}

/* The shared start of every scalar getter: 0 when key is absent or null, -1 (reported) when it
 * is not a usable scalar, else 1 with its node and text (after the ${ENV} rule). */
static int get_scalar(struct cfg_ctx *x, const struct ynode *map, const char *key,
                      const char *field, enum cfg_env env, const struct ynode **node,
                      const char **text)
{
	*node = value_of(map, key);
	if (!*node)
		return 0;
	return cfg_scalar_text(x, *node, field, env, text) < 0 ? -1 : 1;
}

int cfg_get_string(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                   enum cfg_env env, char **out)
{
	const struct ynode *v;
	const char *text;
	int r = get_scalar(x, map, key, field, env, &v, &text);
	if (r <= 0)
		return r;
	return cfg_set_string(x, out, text) < 0 ? -1 : 1;
}

static bool all_digits(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int cfg_get_duration(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                     int64_t *ms_out)
{
	const struct ynode *v;
	const char *text;
	int r = get_scalar(x, map, key, field, CFG_ENV, &v, &text);
	if (r <= 0)
		return r;
	if (!text[0])
		return 0; /* ${VAR} set but empty: as if unset */
	if (config_parse_duration(text, ms_out) == 0)
		return 1;
	if (all_digits(text))
		return cfg_fail(x, v->line, field,
		                "invalid duration '%s': missing unit (for example '%ss')", text,
		                text);
	return cfg_fail(x, v->line, field,
	                "invalid duration '%s' (use Go syntax such as '30s', '5m', '1h30m')", text);
}

int cfg_get_bool(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                 bool *out)
{
	static const char *const yes[] = {"true", "on", "yes"};
	static const char *const no[] = {"false", "off", "no"};
	const struct ynode *v;
	const char *text;
	int r = get_scalar(x, map, key, field, CFG_ENV, &v, &text);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = true;
			return 1;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = false;
			return 1;
		}
	}
	return cfg_fail(x, v->line, field, "invalid boolean '%s' (use true or false)", text);
}

int cfg_get_uint(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                 unsigned *out)
{
	const struct ynode *v;
	const char *text;
	int r = get_scalar(x, map, key, field, CFG_ENV, &v, &text);
	if (r <= 0)
		return r;
	char *end;
	errno = 0;
	unsigned long n = strtoul(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || *end || errno || n > UINT_MAX)
		return cfg_fail(x, v->line, field, "invalid number '%s'", text);
	*out = (unsigned)n;
	return 1;
}

static int get_container(struct cfg_ctx *x, const struct ynode *map, const char *key,
                         const char *field, enum ynode_kind kind, const struct ynode **out)
{
	const struct ynode *v = value_of(map, key);
	*out = NULL;
	if (!v)
		return 0;
	if (v->kind != kind)
		return cfg_fail(x, v->line, field, "expected a %s",
		                kind == YNODE_MAP ? "mapping (key: value lines)" : "list");
	*out = v;
	return 1;
}

int cfg_get_map(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                const struct ynode **out)
{
	return get_container(x, map, key, field, YNODE_MAP, out);
}

int cfg_get_seq(struct cfg_ctx *x, const struct ynode *map, const char *key, const char *field,
                const struct ynode **out)
{
	return get_container(x, map, key, field, YNODE_SEQ, out);
}

/* ---- durations: Go time.ParseDuration ---- */

static const struct {
	const char *name;
	uint64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
    {"ms", 1000000},
    {"s", 1000000000ull},
    {"m", 60ull * 1000000000ull},
    {"h", 3600ull * 1000000000ull},
};

/* One "<number><unit>" term; adds its nanoseconds to *total. Returns the rest or NULL. */
static const char *duration_term(const char *s, uint64_t *total)
{
	const uint64_t limit = (uint64_t)1 << 63;
	uint64_t whole = 0, frac = 0;
	double scale = 1;
	bool pre = false, post = false;
	for (; isdigit((unsigned char)*s); s++, pre = true) {
		if (whole > (limit - 9) / 10)
			return NULL;
		whole = whole * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, post = true) {
			if (frac <=
			    (limit - 9) / 10) { /* extra digits only lose precision, as Go */
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
	}
	if (!pre && !post)
		return NULL;
	size_t ulen = 0;
	while (s[ulen] && s[ulen] != '.' && !isdigit((unsigned char)s[ulen]))
		ulen++;
	uint64_t unit = 0;
	for (size_t i = 0; i < sizeof duration_units / sizeof *duration_units; i++)
		if (strlen(duration_units[i].name) == ulen &&
		    memcmp(duration_units[i].name, s, ulen) == 0)
			unit = duration_units[i].ns;
	if (!unit || whole > limit / unit)
		return NULL;
	uint64_t v = whole * unit;
	if (post)
		v += (uint64_t)((double)frac * ((double)unit / scale));
	if (v > limit || *total > limit - v)
		return NULL;
	*total += v;
	return s + ulen;
}

int config_parse_duration(const char *s, int64_t *ms_out)
{
	bool neg = false;
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ms_out = 0;
		return 0;
	}
	if (!*s)
		return -1;
	uint64_t ns = 0;
	while (*s) {
		s = duration_term(s, &ns);
		if (!s)
			return -1;
	}
	if (!neg && ns > (uint64_t)INT64_MAX)
		return -1;
	/* Milliseconds, but a positive sub-millisecond value must not turn into "unset". */
	int64_t ms = (int64_t)(ns / 1000000);
	if (ms == 0 && ns > 0)
		ms = 1;
	*ms_out = neg ? -ms : ms;
	return 0;
}

/* ---- log levels: KES parseLogLevel ---- */

static int parse_go_int(const char *s, int *out)
{
	char *end;
	if (!*s || is_space(*s))
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*end || errno || v < INT_MIN / 2 || v > INT_MAX / 2)
		return -1;
	*out = (int)v;
	return 0;
}

int config_parse_log_level(const char *s, int *level_out)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {{"DEBUG", LOG_LEVEL_DEBUG},
	              {"INFO", LOG_LEVEL_INFO},
	              {"WARN", LOG_LEVEL_WARN},
	              {"ERROR", LOG_LEVEL_ERROR}};
	char up[64];
	while (is_space(*s))
		s++;
	size_t n = strlen(s);
	while (n && is_space(s[n - 1]))
		n--;
	if (n >= sizeof up)
		return -1;
	for (size_t i = 0; i < n; i++)
		up[i] = (char)toupper((unsigned char)s[i]);
	up[n] = '\0';
	if (n == 0 || strcmp(up, "ON") == 0) {
		*level_out = LOG_LEVEL_INFO;
		return 0;
	}
	if (strcmp(up, "OFF") == 0) {
		*level_out = LOG_LEVEL_OFF;
		return 0;
	}
	for (size_t i = 0; i < sizeof levels / sizeof *levels; i++) {
		size_t ln = strlen(levels[i].name);
		if (strncmp(up, levels[i].name, ln) != 0)
			continue;
		int offset = 0;
		if (up[ln] == '\0') {
			*level_out = levels[i].level;
			return 0;
		}
		/* "<LEVEL>+N" only; N is Go strconv.Atoi, which takes its own sign. */
		if (up[ln] != '+' || parse_go_int(up + ln + 1, &offset) < 0)
			return -1;
		*level_out = levels[i].level + offset;
		return 0;
	}
	return parse_go_int(up, level_out);
}

/* ---- load / free ---- */

static void config_set_defaults(struct config *c)
{
	c->tls.auth = CONFIG_TLS_AUTH_OFF;
	c->cache.expiry_any_ms = 5 * 60 * 1000;
	c->cache.expiry_unused_ms = 30 * 1000;
	c->cache.expiry_offline_ms = 0;
	c->log.error_level = LOG_LEVEL_INFO;
	c->log.audit_level = LOG_LEVEL_INFO;
	c->keystore = CONFIG_KEYSTORE_NONE;
	c->vault.kv_version = 1;
	c->vault.ping_ms = 15000;
	c->vault.max_retries = -1;
	c->server.max_connections = 10240;
	c->server.handshake_timeout_ms = 5000;
	c->server.header_timeout_ms = 5000;
	c->server.idle_timeout_ms = 90000;
	c->server.shutdown_timeout_ms = 10000;
	c->server.threads = 0;
	c->lifecycle.check_interval_ms = CONFIG_LIFECYCLE_CHECK_MS;
}

static int config_fill(struct cfg_ctx *x, const struct ynode *root)
{
	if (root && root->kind != YNODE_MAP && !ynode_is_null(root))
		return cfg_fail(x, root->line, NULL,
		                "the configuration must be a YAML mapping (key: value lines)");
	if (ynode_is_null(root))
		root = NULL;
	x->root_line = root ? root->line : 1;
	if (cfg_check_fields(x, root) < 0)
		return -1;
	if (cfg_set_string(x, &x->c->file, x->name) < 0 ||
	    cfg_set_string(x, &x->c->address, "0.0.0.0:7373") < 0 ||
	    cfg_set_string(x, &x->c->tls.proxy_cert_header, "X-Tls-Client-Cert") < 0)
		return -1;
	if (cfg_load_top(x, root) < 0 || cfg_load_policies(x, root) < 0 ||
	    cfg_load_keystore(x, root) < 0 || cfg_load_lifecycle(x, root) < 0 ||
	    cfg_load_tenants(x, root) < 0)
		return -1;
	return 0;
}

int config_parse_flags(const char *name, const char *text, size_t len, unsigned flags,
                       struct config **out, char *err, size_t errlen, config_warn_fn warn,
                       void *warn_arg)
{
	struct ynode *root = NULL;
	*out = NULL;
	err[0] = '\0';
	if (yaml_tree_parse(name, text, len, &root, err, errlen) < 0)
		return -1;
	struct config *c = calloc(1, sizeof *c);
	if (!c) {
		yaml_tree_free(root);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	config_set_defaults(c);
	struct cfg_ctx x = {.name = name,
	                    .err = err,
	                    .errlen = errlen,
	                    .warn = warn,
	                    .warn_arg = warn_arg,
	                    .flags = flags,
	                    .c = c};
	int rc = config_fill(&x, root);
	yaml_tree_free(root);
	if (rc < 0) {
		config_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

int config_parse(const char *name, const char *text, size_t len, struct config **out, char *err,
                 size_t errlen, config_warn_fn warn, void *warn_arg)
{
	return config_parse_flags(name, text, len, 0, out, err, errlen, warn, warn_arg);
}

static int read_config_file(const char *path, struct buf *b, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	/* Unbuffered: stdio's own buffer would keep a copy of the secrets in the file (TLS
	 * password, AppRole secret, JWT) that fclose frees without zeroing. */
	if (setvbuf(f, NULL, _IONBF, 0) != 0) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		fclose(f);
		return -1;
	}
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(b, chunk, n);
	int failed = ferror(f);
	secure_zero(chunk, sizeof chunk);
	fclose(f);
	if (failed) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	if (buf_failed(b)) {
		snprintf(err, errlen, "%s: file too large (limit %zu bytes)", path,
		         CONFIG_FILE_MAX);
		return -1;
	}
	return 0;
}

int config_load_flags(const char *path, unsigned flags, struct config **out, char *err,
                      size_t errlen, config_warn_fn warn, void *warn_arg)
{
	struct buf b;
	buf_init(&b, CONFIG_FILE_MAX);
	*out = NULL;
	int rc = -1;
	if (read_config_file(path, &b, err, errlen) == 0)
		rc = config_parse_flags(path, b.data ? b.data : "", b.len, flags, out, err, errlen,
		                        warn, warn_arg);
	buf_free(&b); /* zeroes: the text may hold secrets */
	return rc;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen,
                config_warn_fn warn, void *warn_arg)
{
	return config_load_flags(path, 0, out, err, errlen, warn, warn_arg);
}

static void free_string_list(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void cfg_vault_free_auth(struct vault_config *v)
{
	free(v->auth_engine);
	free(v->auth_namespace);
	free(v->approle_id);
	cfg_free_secret(v->approle_secret);
	free(v->k8s_role);
	cfg_free_secret(v->k8s_jwt);
	v->auth_engine = v->auth_namespace = v->approle_id = v->approle_secret = NULL;
	v->k8s_role = v->k8s_jwt = NULL;
	v->k8s_jwt_is_file = false;
}

void cfg_vault_free(struct vault_config *v)
{
	free(v->endpoint);
	free(v->engine);
	free(v->namespace_);
	free(v->prefix);
	free(v->transit_engine);
	free(v->transit_key);
	cfg_vault_free_auth(v);
	free(v->tls_ca);
	free(v->tls_cert);
	free(v->tls_key);
	memset(v, 0, sizeof(*v));
}

static int dup_field(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

int cfg_vault_copy(struct vault_config *dst, const struct vault_config *src)
{
	*dst = *src;
	char **fields[] = {&dst->endpoint,       &dst->engine,         &dst->namespace_,
	                   &dst->prefix,         &dst->transit_engine, &dst->transit_key,
	                   &dst->auth_engine,    &dst->auth_namespace, &dst->approle_id,
	                   &dst->approle_secret, &dst->k8s_role,       &dst->k8s_jwt,
	                   &dst->tls_ca,         &dst->tls_cert,       &dst->tls_key};
	const char *from[] = {src->endpoint,       src->engine,         src->namespace_,
	                      src->prefix,         src->transit_engine, src->transit_key,
	                      src->auth_engine,    src->auth_namespace, src->approle_id,
	                      src->approle_secret, src->k8s_role,       src->k8s_jwt,
	                      src->tls_ca,         src->tls_cert,       src->tls_key};
	int rc = 0;
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++)
		rc |= dup_field(fields[i], from[i]);
	if (rc != 0)
		cfg_vault_free(dst);
	return rc;
}

static void free_policies(struct config_policy *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct config_policy *p = &list[i];
		free(p->name);
		free_string_list(p->allow, p->allow_count);
		free_string_list(p->deny, p->deny_count);
		free_string_list(p->identities, p->identity_count);
	}
	free(list);
}

static void free_tenants(struct config_tenant *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].name);
		free(t[i].fs_path);
		cfg_vault_free(&t[i].vault);
		free_policies(t[i].policies, t[i].policy_count);
		free_string_list(t[i].keys, t[i].key_count);
	}
	free(t);
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->address);
	free(c->admin_identity);
	free(c->tls.key);
	free(c->tls.cert);
	cfg_free_secret(c->tls.password);
	free(c->tls.ca);
	free_string_list(c->tls.proxy_identities, c->tls.proxy_identity_count);
	free(c->tls.proxy_cert_header);
	free_policies(c->policies, c->policy_count);
	free_tenants(c->tenants, c->tenant_count);
	free(c->log.error_file);
	free(c->log.audit_file);
	for (size_t i = 0; i < c->api_count; i++)
		free(c->api[i].path);
	free(c->api);
	free_string_list(c->keys, c->key_count);
	free(c->fs_path);
	cfg_vault_free(&c->vault);
	secure_zero(c, sizeof *c);
	free(c);
}
