/* canaryd's failover drills: claim due drills with leases, and for each run one turn: apply an operator's abort,
 * make the gateway carry the recorded intent (write-ahead, as for rollouts: the intent is committed before the
 * gateway moves), read both slots' counters and run the core's drill tick, recording every step. A drill this
 * daemon has no memory of (it restarted, or took the drill over from a daemon that died) is resumed by the core's
 * cn_drill_resume: before the shift it measures again, after it the primary is restored and the drill fails.
 * The reads and gateway calls of a drill are synchronous (each bounded by the service's timeouts): drills are few. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/clock.h"
#include "canary/drill.h"
#include "canary/gateway.h"
#include "canary/metrics.h"
#include "canary/policy.h"
#include "canary/service.h"
#include "canary/store.h"
#include "canary/store_drills.h"
#include "daemon_drill_int.h"
#include "daemon_int.h"

#define DRILL_MAX_CLAIM 8
#define DRILL_WEIGHT_EPSILON 0.25     /* percent, as for rollouts: HAProxy's integer weights round shares */
#define DRILL_SCHEDULE_EVERY_MS 5000  /* how often scheduled drills are looked for */
#define DRILL_SHIFT_TIMEOUT_MIN_MS 10000
#define DRILL_TURN_STEPS 4            /* a turn goes on at once after a move: commit, move, confirm, close window */

struct drill_ctx {
	int64_t id;
	struct cn_policy policy;
	struct cn_service service;
	struct cn_gateway *gw;
	struct cn_metrics *metrics;
	struct cn_drill_config cfg;
	struct cn_drill_state st;
	bool has_earlier;            /* taken over: what the earlier daemon recorded */
	struct cn_drill_figures earlier;
	int primary, secondary;      /* slots */
	int64_t last_seen_ms;        /* monotonic */
};

struct daemon_drills {
	struct drill_ctx *ctx;
	int n, cap;
	int64_t db_now_ms, mono_ms;  /* the database's clock at the last drill claim, and the monotonic clock then */
	int64_t scheduled_ms;        /* monotonic: when scheduled drills were last looked for */
	int64_t sched_warned_ms;
};

static int64_t drill_now(const struct daemon_drills *dd)
{
	return dd->db_now_ms + (cn_mono_ms() - dd->mono_ms);
}

static void ctx_free(struct drill_ctx *c)
{
	cn_gateway_close(c->gw);
	cn_metrics_close(c->metrics);
	c->gw = NULL;
	c->metrics = NULL;
}

static void ctx_drop(struct daemon_drills *dd, int64_t id)
{
	for (int i = 0; i < dd->n; i++)
		if (dd->ctx[i].id == id) {
			ctx_free(&dd->ctx[i]);
			dd->ctx[i] = dd->ctx[--dd->n];
			return;
		}
}

void daemon_drills_free(struct daemon *d)
{
	struct daemon_drills *dd = d->drills;
	if (!dd)
		return;
	for (int i = 0; i < dd->n; i++)
		ctx_free(&dd->ctx[i]);
	free(dd->ctx);
	free(dd);
	d->drills = NULL;
}

static struct drill_ctx *ctx_find(struct daemon_drills *dd, int64_t id)
{
	for (int i = 0; i < dd->n; i++)
		if (dd->ctx[i].id == id)
			return &dd->ctx[i];
	return NULL;
}

/* A new context for the drill in row, its state from cn_drill_resume (a fresh drill: cn_drill_init). */
static struct drill_ctx *ctx_new(struct daemon *d, const struct cn_drill_row *row, struct cn_err *err)
{
	struct daemon_drills *dd = d->drills;
	if (dd->n == dd->cap) {
		int cap = dd->cap ? dd->cap * 2 : 4;
		struct drill_ctx *n = realloc(dd->ctx, (size_t)cap * sizeof *n);
		if (!n) {
			cn_fail(err, CN_EINTERNAL, "out of memory");
			return NULL;
		}
		dd->ctx = n;
		dd->cap = cap;
	}
	struct drill_ctx *c = &dd->ctx[dd->n];
	memset(c, 0, sizeof *c);
	c->id = row->id;
	c->primary = row->primary_slot;
	c->secondary = row->secondary_slot;
	if (cn_policy_parse(row->policy_source, strlen(row->policy_source), "stored policy", &c->policy, err) < 0 ||
	    cn_service_parse(row->service_source, strlen(row->service_source), "stored service", &c->service, err) < 0)
		return NULL;
	if (!(c->gw = cn_gateway_open(&c->service, err)))
		return NULL;
	cn_gateway_set_candidate(c->gw, c->secondary);
	if (!(c->metrics = cn_metrics_open(&c->service, err))) {
		cn_gateway_close(c->gw);
		return NULL;
	}
	c->cfg.hold_ms = row->hold_ms;
	c->cfg.baseline_ms = row->baseline_ms;
	c->cfg.shift_timeout_ms = 3 * c->service.gateway.timeout_ms > DRILL_SHIFT_TIMEOUT_MIN_MS
					  ? 3 * c->service.gateway.timeout_ms
					  : DRILL_SHIFT_TIMEOUT_MIN_MS;
	c->cfg.policy = &c->policy;
	if (row->phase == CN_DRILL_PENDING) {
		cn_drill_init(&c->st);
	} else {
		char why[200];
		snprintf(why, sizeof why, "canaryd '%s' took drill %lld over in phase %s (the daemon that ran it "
			 "stopped)", d->cfg.owner, (long long)row->id, cn_drill_phase_name(row->phase));
		cn_drill_resume(row->phase, row->outcome, row->weight, drill_now(dd), why, &c->st);
		c->has_earlier = row->has_figures;
		c->earlier = row->figures;
	}
	c->last_seen_ms = cn_mono_ms();
	dd->n++;
	return c;
}

static void figures(const struct drill_ctx *c, struct cn_drill_figures *f)
{
	cn_drill_figures(&c->st, f);
	if (c->has_earlier)
		cn_drill_figures_merge(f, &c->earlier);
}

static int record(struct daemon *d, struct drill_ctx *c, bool tick, struct cn_err *err)
{
	struct cn_drill_figures f;
	figures(c, &f);
	return cn_store_drill_record(d->store, c->id, d->cfg.owner, &c->st, &f, &c->policy, tick,
				     c->policy.analysis.interval_ms, err);
}

/* Makes the gateway carry the recorded intent row_weight (the state's weight, committed). Returns 1 when the
 * gateway carries it and that is confirmed in the database, 0 when it could not be done this turn (logged), < 0 on
 * a store error. */
static int reconcile(struct daemon *d, struct drill_ctx *c, double *applied, struct cn_err *err)
{
	double cur[2], want[2], w = c->st.weight;
	struct cn_err gerr = {0};
	want[c->secondary] = w;
	want[c->primary] = 100.0 - w;
	if (cn_gateway_get_weights(c->gw, cur, &gerr) < 0)
		goto gateway_down;
	bool matches = fabs(cur[c->secondary] - w) <= DRILL_WEIGHT_EPSILON &&
		       fabs(cur[c->primary] - (100.0 - w)) <= DRILL_WEIGHT_EPSILON;
	bool confirmed = !isnan(*applied) && *applied == w;
	if (matches && confirmed)
		return 1;
	if (!matches) {
		double intent;
		int rc = cn_store_drill_renew(d->store, c->id, d->cfg.owner, d->cfg.lease_ms, &intent, err);
		if (rc < 0)
			return rc;
		if (intent != w)
			return cn_fail(err, CN_EUNAVAIL, "drill %lld: the recorded intent is %g%%, not %g%%; not moving "
				       "the gateway", (long long)c->id, intent, w);
		if (cn_gateway_set_weights(c->gw, want, &gerr) < 0)
			goto gateway_down;
	}
	int rc = cn_store_drill_confirm(d->store, c->id, d->cfg.owner, w, confirmed && !matches, err);
	if (rc < 0)
		return rc;
	*applied = w;
	dlog("info", "drill.gateway.confirmed", dint("drill", c->id), dstr("service", c->service.name),
	     dnum("secondary_weight", w), dnum("found", cur[c->secondary]));
	return 1;
gateway_down:
	atomic_fetch_add(&d->stats.gateway_errors, 1);
	dlog("warn", "drill.gateway.error", dint("drill", c->id), dstr("service", c->service.name),
	     dstr("error", gerr.msg));
	return 0;
}

/* One slot's counters now (a failed read is a sample with ok false). */
static void sample(struct drill_ctx *c, int slot, struct cn_sample *out)
{
	if (cn_metrics_sample(c->metrics, slot, out) < 0) {
		memset(out, 0, sizeof *out);
		out->ok = false;
		snprintf(out->why, sizeof out->why, "metrics reader failed");
	}
}

static void log_state(const struct drill_ctx *c, const char *event)
{
	struct cn_drill_figures f;
	figures(c, &f);
	dlog("info", event, dint("drill", c->id), dstr("service", c->service.name),
	     dstr("phase", cn_drill_phase_name(c->st.phase)), dnum("weight", c->st.weight), dstr("reason", c->st.reason),
	     dnum("shift_s", f.shift_s), dnum("restore_s", f.restore_s));
}

/* One drill's turn. */
static int drill_turn(struct daemon *d, int64_t id, bool fresh, struct cn_err *err)
{
	struct daemon_drills *dd = d->drills;
	struct cn_drill_row *row = NULL;
	struct cn_drill_state next;
	bool set_weight;
	int rc = cn_store_drill_get(d->store, id, &row, err);
	if (rc < 0)
		return rc;
	if (cn_drill_ended(row->phase)) {
		ctx_drop(dd, id);
		goto out;
	}
	struct drill_ctx *c = ctx_find(dd, id);
	if (c && fresh) {
		/* the lease was someone else's meanwhile: what this daemon remembers may be stale */
		ctx_drop(dd, id);
		c = NULL;
	}
	if (!c) {
		if (!(c = ctx_new(d, row, err))) {
			rc = -err->code;
			goto out;
		}
		if (c->st.phase != row->phase || c->st.weight != row->weight) {
			log_state(c, "drill.resumed");
			if ((rc = record(d, c, false, err)) < 0)
				goto fail;
		}
	}
	c->last_seen_ms = cn_mono_ms();
	if (row->abort_requested && c->st.phase != CN_DRILL_RESTORING) {
		char why[700];
		snprintf(why, sizeof why, "aborted by %s%s%s", row->abort_by, row->abort_reason[0] ? ": " : "",
			 row->abort_reason);
		cn_drill_stop(&c->st, CN_DRILL_ABORTED, why, drill_now(dd), &next, &set_weight);
		c->st = next;
		log_state(c, "drill.aborting");
		if ((rc = record(d, c, false, err)) < 0)
			goto fail;
	}
	double applied = row->applied_weight;
	for (int step = 0; step < DRILL_TURN_STEPS; step++) {
		rc = reconcile(d, c, &applied, err);
		if (rc < 0)
			goto fail;
		if (rc == 1) {
			cn_drill_confirmed(&c->st, applied, drill_now(dd), &next);
			bool moved = next.phase != c->st.phase || next.window_open != c->st.window_open;
			c->st = next;
			if (moved) {
				log_state(c, "drill.confirmed");
				if ((rc = record(d, c, false, err)) < 0)
					goto fail;
			}
		}
		struct cn_sample ps, ss;
		sample(c, c->primary, &ps);
		sample(c, c->secondary, &ss);
		enum cn_drill_phase before = c->st.phase;
		cn_drill_tick(&c->cfg, &c->st, &ps, &ss, drill_now(dd), &next, &set_weight);
		c->st = next;
		atomic_fetch_add(&d->stats.ticks, 1);
		if ((rc = record(d, c, true, err)) < 0)
			goto fail;
		if (c->st.phase != before)
			log_state(c, cn_drill_ended(c->st.phase) ? "drill.ended" : "drill.phase");
		if (cn_drill_ended(c->st.phase)) {
			ctx_drop(dd, id);
			break;
		}
		/* a new intent is applied at once (and the tick after its confirmation closes the move's window) */
		if (!set_weight)
			break;
	}
	rc = 1;
	goto out;
fail:
	/* the lease was lost, or the store failed: what this daemon holds in memory may no longer be the truth */
	ctx_drop(dd, id);
out:
	cn_drill_row_free(row);
	return rc;
}

int daemon_drills_round(struct daemon *d)
{
	struct cn_err err = {0};
	if (!d->drills && !(d->drills = calloc(1, sizeof *d->drills)))
		return -CN_EINTERNAL;
	struct daemon_drills *dd = d->drills;
	int64_t mono = cn_mono_ms();
	if (dd->scheduled_ms == 0 || mono - dd->scheduled_ms >= DRILL_SCHEDULE_EVERY_MS) {
		int n = 0;
		dd->scheduled_ms = mono;
		if (cn_store_drill_start_scheduled(d->store, &n, &err) < 0) {
			if (dd->sched_warned_ms == 0 || mono - dd->sched_warned_ms > 60000) {
				dlog("warn", "drill.schedule.error", dstr("error", err.msg));
				dd->sched_warned_ms = mono;
			}
		} else if (n > 0) {
			dlog("info", "drill.scheduled", dint("started", n));
		}
	}
	int64_t ids[DRILL_MAX_CLAIM];
	bool fresh[DRILL_MAX_CLAIM];
	int n = 0;
	if (cn_store_drill_claim(d->store, d->cfg.owner, d->cfg.lease_ms, ids, fresh, DRILL_MAX_CLAIM, &n,
				 &dd->db_now_ms, &err) < 0) {
		dlog("error", "drill.error", dstr("error", err.msg));
		return -err.code;
	}
	dd->mono_ms = cn_mono_ms();
	int done = 0;
	for (int i = 0; i < n; i++) {
		struct cn_err terr = {0};
		int rc = drill_turn(d, ids[i], fresh[i], &terr);
		if (rc < 0)
			dlog(terr.code == CN_EUNAVAIL ? "warn" : "error", "drill.error", dint("drill", ids[i]),
			     dstr("error", terr.msg));
		else
			done += rc;
	}
	/* contexts of drills no longer claimed (another daemon took them, or they ended elsewhere) */
	for (int i = 0; i < dd->n;)
		if (mono - dd->ctx[i].last_seen_ms > 4 * d->cfg.lease_ms)
			ctx_drop(dd, dd->ctx[i].id);
		else
			i++;
	return done;
}

void daemon_drills_release(struct daemon *d)
{
	struct cn_err err = {0};
	if (d->store && cn_store_drill_release(d->store, d->cfg.owner, &err) < 0)
		dlog("warn", "drill.error", dstr("error", err.msg));
}
