/*
 * vault_health.c — knows whether Vault is up, sealed or down, so that requests fail fast
 * instead of waiting for a Vault that cannot answer, and serve again as soon as it can.
 *
 * A thread probes sys/health: every ping_ms while Vault is up (one probe at a time), and
 * every second while it is sealed or down — then a new probe starts each second even if
 * older ones are still waiting, because a probe sent into a Vault that was stalling only
 * returns when that stall ends or its timeout passes: waiting for it kept creates failing
 * fast for up to 20 s after Vault had recovered (issue 10 §3). Observations are numbered in
 * the order they started; one older than the state's own is stale and ignored (a slow probe
 * from the stall must not undo a newer success). Each change of state is logged once, with
 * its reason; repeated probes with the same outcome log nothing.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keystore/json.h"
#include "keystore/vault_internal.h"

/* While sealed or down, a new probe at least this often (bounded by ping_ms). */
#define DOWN_POLL_MS 1000

/* The SDK's query: every non-active state answers 299 so the body can always be read. */
#define HEALTH_PATH                                                                    \
	"sys/health?uninitcode=299&sealedcode=299&standbycode=299&drsecondarycode=299" \
	"&performancestandbycode=299"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_seq(struct vault_store *v)
{
	return atomic_fetch_add(&v->probe_seq, 1) + 1;
}

enum vault_health_state vault_health_judge(const struct vault_response *rs, char *reason, size_t n)
{
	char perr[64];
	struct json_value *j = json_parse(rs->body.data, rs->body.len, perr, sizeof(perr));
	enum vault_health_state st = VAULT_HEALTH_UP;
	if (rs->status < 200 || rs->status > 299 || !j) {
		struct ks_err e;
		vault_http_error(rs, "health check failed at", "sys/health", &e);
		/* A 4xx is a configuration matter, not an outage: requests go on and say why. */
		if (rs->status >= 500) {
			snprintf(reason, n, "%s", e.msg);
			st = VAULT_HEALTH_DOWN;
		}
	} else if (!json_bool(json_get(j, "initialized"))) {
		snprintf(reason, n, "vault: not initialized");
		st = VAULT_HEALTH_SEALED;
	} else if (json_bool(json_get(j, "sealed"))) {
		snprintf(reason, n, "vault: key store is sealed");
		st = VAULT_HEALTH_SEALED;
	}
	json_free(j);
	return st;
}

static const char *state_name(enum vault_health_state st)
{
	return st == VAULT_HEALTH_UP ? "reachable" : st == VAULT_HEALTH_SEALED ? "sealed" : "down";
}

/* Records observation seq; logs when the state changes. */
static void health_apply(struct vault_store *v, uint64_t seq, enum vault_health_state st,
                         const char *reason)
{
	pthread_mutex_lock(&v->health_lock);
	if (seq < v->health_seq) {
		pthread_mutex_unlock(&v->health_lock);
		return;
	}
	v->health_seq = seq;
	atomic_store(&v->sealed, st == VAULT_HEALTH_SEALED);
	atomic_store(&v->down, st == VAULT_HEALTH_DOWN);
	enum vault_health_state was = v->health;
	int64_t now = mono_ms(), for_ms = now - v->health_since_ms;
	if (st != VAULT_HEALTH_UP)
		snprintf(v->health_reason, sizeof(v->health_reason), "%s", reason);
	if (st != was) {
		v->health = st;
		v->health_since_ms = now;
	}
	pthread_mutex_unlock(&v->health_lock);
	if (st == was)
		return;
	if (st == VAULT_HEALTH_UP)
		ks_log("vault: reachable again (was %s for %lld.%01lld s)", state_name(was),
		       (long long)(for_ms / 1000), (long long)(for_ms % 1000 / 100));
	else if (st == VAULT_HEALTH_SEALED)
		ks_log("%s; requests fail fast until it is unsealed", reason);
	else
		ks_log("vault: unreachable: %s; requests fail fast until Vault answers again",
		       reason);
}

int vault_health_fail_fast(struct vault_store *v, struct ks_err *err)
{
	if (!atomic_load(&v->sealed) && !atomic_load(&v->down))
		return 0;
	pthread_mutex_lock(&v->health_lock);
	if (v->health == VAULT_HEALTH_SEALED)
		ks_err_set(err, "%s", v->health_reason);
	else if (v->health == VAULT_HEALTH_DOWN)
		ks_err_set(err, "vault: unreachable (health check failing: %s)", v->health_reason);
	enum vault_health_state st = v->health;
	pthread_mutex_unlock(&v->health_lock);
	return st == VAULT_HEALTH_UP ? 0 : KS_UNREACHABLE;
}

static void health_wake(struct vault_store *v)
{
	atomic_store(&v->poll_wake, true);
	if (v->poll_started)
		vault_probes_wakeup(v->probes);
}

void vault_health_saw_sealed(struct vault_store *v)
{
	health_apply(v, next_seq(v), VAULT_HEALTH_SEALED, "vault: key store is sealed");
	health_wake(v);
}

void vault_health_poke(struct vault_store *v)
{
	health_wake(v);
}

/* One probe's result into the state. */
static void health_observe(struct vault_store *v, const struct vault_probe_result *r,
                           const struct vault_response *rs)
{
	char reason[sizeof(r->err.msg)] = "";
	enum vault_health_state st = VAULT_HEALTH_DOWN;
	if (r->answered) {
		st = vault_health_judge(rs, reason, sizeof(reason));
		atomic_store(&v->health_latency_us, r->latency_us);
	} else
		snprintf(reason, sizeof(reason), "%s", r->err.msg);
	health_apply(v, r->id, st, reason);
}

static int64_t down_poll_ms(const struct vault_store *v)
{
	return v->ping_ms < DOWN_POLL_MS ? v->ping_ms : DOWN_POLL_MS;
}

static void *health_thread(void *arg)
{
	struct vault_store *v = arg;
	struct vault_response rs;
	vault_response_init(&rs);
	const int64_t never = INT64_MAX / 2;
	int64_t next = mono_ms(); /* when the next probe starts */
	while (!atomic_load(&v->stop)) {
		bool up = !atomic_load(&v->sealed) && !atomic_load(&v->down);
		size_t running = vault_probes_running(v->probes);
		int64_t now = mono_ms();
		bool wake = atomic_exchange(&v->poll_wake, false);
		/* Up: one probe at a time. Otherwise: a fresh one every second. */
		bool room = up ? running == 0 : running < VAULT_PROBES_MAX;
		if ((wake || now >= next) && room) {
			if (vault_probes_start(v->probes, HEALTH_PATH, next_seq(v)) == 0)
				next = up ? never : now + down_poll_ms(v);
			else
				next = now + down_poll_ms(v); /* out of memory: try again later */
		}
		/* Until the next start; with no room for one, until a probe ends. At most a
		 * second either way, which bounds how late a stop or a state change is seen. */
		int64_t wait = room ? next - mono_ms() : 1000;
		if (wait > 1000)
			wait = 1000;
		if (wait < 1)
			wait = 1;
		struct vault_probe_result r;
		while (vault_probes_run(v->probes, wait, &r, &rs) == 1) {
			health_observe(v, &r, &rs);
			wait = 0;
			bool now_up = !atomic_load(&v->sealed) && !atomic_load(&v->down);
			if (now_up && vault_probes_running(v->probes) == 0)
				next = mono_ms() + v->ping_ms;
			else if (!now_up && next >= never)
				next = mono_ms() + down_poll_ms(v);
		}
	}
	vault_response_free(&rs);
	return NULL;
}

int vault_health_start(struct vault_store *v, struct ks_err *err)
{
	v->health = VAULT_HEALTH_UP; /* we have just logged in */
	v->health_since_ms = mono_ms();
	if (!(v->probes = vault_probes_new(v->http))) {
		ks_err_set(err, "vault: cannot set up health probes (libcurl)");
		return -1;
	}
	if (pthread_create(&v->poll_thread, NULL, health_thread, v) != 0) {
		ks_err_set(err, "vault: cannot start health poll thread");
		return -1;
	}
	v->poll_started = true;
	return 0;
}

void vault_health_stop(struct vault_store *v)
{
	if (v->poll_started) {
		vault_probes_wakeup(v->probes);
		pthread_join(v->poll_thread, NULL);
		v->poll_started = false;
	}
	vault_probes_free(v->probes);
	v->probes = NULL;
}

int vault_health_status(struct vault_store *v, struct ks_status *out, struct ks_err *err)
{
	int rc = vault_health_fail_fast(v, err);
	if (rc != 0)
		return rc;
	/* Never with the namespace header: Vault rejects it on sys/health (kes#511). */
	struct vault_request rq = {.method = "GET", .path = HEALTH_PATH, .no_retry = true};
	struct vault_response rs;
	vault_response_init(&rs);
	struct vault_probe_result r = {.id = next_seq(v)};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r.answered = vault_http_do(v->http, &rq, &rs, &r.err) == 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	out->latency_us =
	    (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	long status = rs.status;
	health_observe(v, &r, &rs);
	vault_response_free(&rs);
	rc = vault_health_fail_fast(v, err);
	if (rc == 0 && r.answered && (status < 200 || status > 299)) {
		ks_err_set(err, "vault: health check answered %ld", status);
		rc = KS_FAILED;
	}
	return rc;
}
