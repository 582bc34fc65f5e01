/* One rollout's turn in canaryd, in two halves so that many rollouts' metrics download at once:
 * - daemon_turn (every claim): reconcile the gateway to the recorded intent, apply operators' commands, and, when
 *   the tick is due, start reading both variants' counters in the daemon's metrics group. Commands never wait for
 *   the gateway or the metrics: with the gateway away they are committed (abort: intent 0) and the gateway is
 *   reconciled to them when it returns.
 * - daemon_tick_ready (when a read finished): run the core on the counters, record the outcome, move the gateway.
 * Order matters for crash safety: the intended weight is committed before the gateway is called, and the gateway is
 * reconciled to the recorded intent on every turn, so a kill -9 anywhere leaves nothing inconsistent.
 * Every time the core sees is the database's clock (daemon_now). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/gateway.h"
#include "canary/metrics.h"
#include "canary/parse.h"
#include "canary/bug.h"
#include "canary/policy.h"
#include "canary/rollout.h"
#include "canary/service.h"
#include "canary/store.h"
#include "canary/store_rollouts.h"
#include "canary/zpack.h"
#include "daemon_int.h"
#include "daemon_fault_int.h"
#include "daemon_fd_int.h"
#include "daemon_preflight_int.h"

#define MAX_COMMANDS 16

#define CTX_RETRY_MS 10000 /* a rollout the daemon cannot act on is looked at again after this long */
#define WEIGHT_EPSILON 0.25 /* percent; HAProxy's integer weights round shares by up to 0.2 points */
#define GATEWAY_WARN_EVERY_MS 60000 /* a gateway that stays away is logged once, then at most once a minute */
#define GATEWAY_DEFAULT_LIMIT_MS (5 * 60 * 1000) /* hold on a lost gateway this long when the policy sets no
							 * inconclusive_timeout, then pause for a person */

/* Where an operator's command spent its time, for the on-call engineer asking why an abort took as long as it did:
 * canaryd_command_seconds (queued -> recorded and the gateway moved, the database's clock) and a command.timing
 * line with the parts: from the NOTIFY the loop saw to the commands claim, the claim, its rows, this rollout's turn
 * in the round, reading its commands, the record's transaction and the gateway (ms; the round's parts only when a
 * NOTIFY started the round). */
static void command_timing(struct daemon *d, int64_t id, const struct cn_command_row *cmd, int64_t t_turn,
			   int64_t t_read, int64_t t_record, int64_t t_recorded, int64_t t_moved)
{
	int64_t total = cmd->queued_ms > 0 ? daemon_now(d) - cmd->queued_ms : -1;
	if (total >= 0)
		daemon_hist_observe(&d->stats.command, (double)total / 1000.0);
	bool round = d->cmd_round.claim > 0;
	dlog("info", "command.timing", dint("rollout", id), dstr("command", cn_command_name(cmd->kind)),
	     dint("queued_ms", total),
	     dint("to_seen_ms", round && d->cmd_round.notified_db > 0 && cmd->queued_ms > 0
					? d->cmd_round.notified_db - cmd->queued_ms : -1),
	     dint("look_gap_ms", round ? d->cmd_round.look_gap : -1),
	     dint("to_claim_ms", round ? d->cmd_round.claim - d->cmd_round.notified : -1),
	     dint("claim_ms", round ? d->cmd_round.claimed - d->cmd_round.claim : -1),
	     dint("rows_ms", round ? d->cmd_round.rows - d->cmd_round.claimed : -1),
	     dint("to_turn_ms", round ? t_turn - d->cmd_round.rows : -1), dint("read_ms", t_read - t_turn),
	     dint("to_record_ms", t_record - t_read), dint("record_ms", t_recorded - t_record),
	     dint("gateway_ms", t_moved - t_recorded));
}

const double daemon_hist_bounds[DAEMON_HIST_N] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, INFINITY};

void daemon_hist_observe(struct daemon_hist *h, double seconds)
{
	int i = 0;
	while (i < DAEMON_HIST_N - 1 && seconds > daemon_hist_bounds[i])
		i++;
	atomic_fetch_add(&h->count[i], 1);
	atomic_fetch_add(&h->sum_us, (unsigned long long)(seconds * 1e6));
}

/* The cause of a failed read, from the words the metrics adapter gave it (curl's and ours). */
static enum scrape_cause scrape_cause_of(const char *why)
{
	if (strstr(why, "imed out") || strstr(why, "imeout"))
		return SCRAPE_TIMEOUT;
	if (strstr(why, "http status"))
		return SCRAPE_STATUS;
	if (strstr(why, "onnect") || strstr(why, "resolve") || strstr(why, "refused"))
		return SCRAPE_CONNECT;
	return SCRAPE_PAGE;
}

/* The parsed policy version policy_id, from source when no context has it yet; NULL with err if it does not load. */
static struct policy_ref *policy_get(struct daemon *d, int64_t policy_id, const char *source, struct cn_err *err)
{
	for (struct policy_ref *p = d->policies; p; p = p->next)
		if (p->policy_id == policy_id) {
			p->refs++;
			return p;
		}
	if (!source) {
		cn_fail(err, CN_EINTERNAL, "policy %lld: its source was not read", (long long)policy_id);
		return NULL;
	}
	struct policy_ref *p = calloc(1, sizeof *p);
	if (!p) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		return NULL;
	}
	if (cn_policy_parse(source, strlen(source), "stored policy", &p->policy, err) < 0) {
		free(p);
		return NULL;
	}
	p->policy_id = policy_id;
	p->refs = 1;
	p->next = d->policies;
	d->policies = p;
	return p;
}

static void policy_put(struct daemon *d, struct policy_ref *ref)
{
	if (!ref || --ref->refs > 0)
		return;
	for (struct policy_ref **pp = &d->policies; *pp; pp = &(*pp)->next)
		if (*pp == ref) {
			*pp = ref->next;
			break;
		}
	free(ref);
}

static void ctx_free(struct daemon *d, struct rollout_ctx *c)
{
	cn_metrics_close(c->metrics); /* cancels a read in flight */
	cn_gateway_close(c->gw);
	free(c->row_z);
	free(c->service);
	free(c->held);
	c->held = NULL;
	c->held_len = c->held_cap = 0;
	policy_put(d, c->pref);
	c->gw = NULL;
	c->metrics = NULL;
	c->row_z = NULL;
	c->service = NULL;
	c->pref = NULL;
	c->policy = NULL;
}

void daemon_ctx_gc(struct daemon *d, int64_t mono, bool all)
{
	int k = 0;
	for (int i = 0; i < d->nctx; i++) {
		/* a context with a read in flight is in use, however long the endpoint takes */
		bool busy = cn_metrics_busy(d->ctx[i].metrics) || d->ctx[i].recording > 0;
		if (all || (!busy && mono - d->ctx[i].last_seen_ms > 4 * d->cfg.lease_ms))
			ctx_free(d, &d->ctx[i]);
		else
			d->ctx[k++] = d->ctx[i];
	}
	d->nctx = k;
	atomic_store(&d->stats.rollouts_owned, (unsigned long long)k);
}

static void ctx_drop(struct daemon *d, int64_t id)
{
	for (int i = 0; i < d->nctx; i++)
		if (d->ctx[i].id == id) {
			ctx_free(d, &d->ctx[i]);
			d->ctx[i] = d->ctx[--d->nctx];
			break;
		}
	atomic_store(&d->stats.rollouts_owned, (unsigned long long)d->nctx);
}

void daemon_cancel_reads(struct daemon *d)
{
	daemon_drop_ticks(d);
	for (int i = 0; i < d->nctx; i++)
		cn_metrics_cancel(d->ctx[i].metrics);
}

/* Finds or builds the context of a rollout: its pinned policy and service parsed from the stored sources. */
static struct rollout_ctx *ctx_get(struct daemon *d, const struct cn_rollout_row *row, struct cn_err *err)
{
	for (int i = 0; i < d->nctx; i++)
		if (d->ctx[i].id == row->id) {
			d->ctx[i].last_seen_ms = cn_mono_ms();
			return &d->ctx[i];
		}
	if (d->nctx == d->capctx) {
		int cap = d->capctx ? d->capctx * 2 : 16;
		struct rollout_ctx *n = realloc(d->ctx, (size_t)cap * sizeof *n);
		if (!n) {
			cn_fail(err, CN_EINTERNAL, "out of memory");
			return NULL;
		}
		d->ctx = n;
		d->capctx = cap;
	}
	struct rollout_ctx *c = &d->ctx[d->nctx];
	memset(c, 0, sizeof *c);
	c->id = row->id;
	c->policy_id = row->policy_id;
	struct cn_service *svc = malloc(sizeof *svc);
	if (!svc) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		return NULL;
	}
	if (!row->service_source) {
		cn_fail(err, CN_EINTERNAL, "rollout %lld: its service's source was not read", (long long)row->id);
		goto fail;
	}
	if (!(c->pref = policy_get(d, row->policy_id, row->policy_source, err)))
		goto fail;
	c->policy = &c->pref->policy;
	if (cn_service_parse(row->service_source, strlen(row->service_source), "stored service", svc, err) < 0)
		goto fail;
	if (!(c->gw = cn_gateway_open(svc, err)))
		goto fail;
	cn_gateway_set_candidate(c->gw, row->candidate_slot); /* the command gateway's {candidate_*} */
	if (!(c->metrics = cn_metrics_open(svc, err)))
		goto fail;
	cn_service_slot_cost(svc, 0, &c->cost[0]);
	cn_service_slot_cost(svc, 1, &c->cost[1]);
	/* the gateway and the reader keep what they need; the pre-flight (which runs before step 1) reads more */
	if (row->phase == CN_PHASE_PENDING && c->policy->preflight.enabled)
		c->service = svc;
	else
		free(svc);
	c->last_seen_ms = cn_mono_ms();
	d->nctx++;
	atomic_store(&d->stats.rollouts_owned, (unsigned long long)d->nctx);
	return c;
fail:
	free(svc);
	c->service = NULL;
	ctx_free(d, c);
	return NULL;
}

static void shares(int candidate_slot, double cand, double pct[2])
{
	pct[candidate_slot] = cand;
	pct[1 - candidate_slot] = 100.0 - cand;
}

/* Renews the lease and checks that `weight` is still the recorded intent, right before the gateway is moved: a
 * daemon whose turn outlived its lease, or whose row is stale, must not touch the gateway. */
static int may_move(struct daemon *d, int64_t id, double weight, struct cn_err *err)
{
	double intent;
	int rc = cn_store_lease_renew(d->store, id, d->cfg.owner, d->cfg.lease_ms, &intent, err);
	if (rc < 0)
		return rc;
	if (fabs(intent - weight) > 1e-9)
		return cn_fail(err, CN_EUNAVAIL, "rollout %lld: the recorded intent is now %g%%, not %g%%; not moving "
			       "the gateway on a stale view", (long long)id, intent, weight);
	return 0;
}

/* Logs a gateway failure: the first of a run at once, then at most once a minute with the count in between. */
static void gateway_warn(struct daemon *d, struct rollout_ctx *c, const char *service, const char *msg)
{
	int64_t now = cn_mono_ms();
	atomic_fetch_add(&d->stats.gateway_errors, 1);
	if (daemon_fd_check("gateway", msg))
		return; /* the daemon's own shortage, said once a minute for all rollouts */
	c->gw_failures++;
	if (c->gw_warned_ms != 0 && now - c->gw_warned_ms < GATEWAY_WARN_EVERY_MS) {
		c->gw_unlogged++;
		return;
	}
	dlog("warn", "gateway.error", dint("rollout", c->id), dstr("service", service), dstr("error", msg),
	     dint("failures", c->gw_failures), dint("unlogged", c->gw_unlogged));
	c->gw_warned_ms = now;
	c->gw_unlogged = 0;
}

static void gateway_back(struct rollout_ctx *c, const char *service)
{
	if (c->gw_failures > 0)
		dlog("info", "gateway.recovered", dint("rollout", c->id), dstr("service", service),
		     dint("failures", c->gw_failures));
	c->gw_failures = c->gw_unlogged = 0;
	c->gw_warned_ms = 0;
	c->gw_down_since_ms = 0;
}

/* Makes the gateway carry the recorded intent. Returns 0 when it already did, 1 when it does now and the row was
 * updated (the caller's copy is stale), < 0 when it could not. */
static int reconcile(struct daemon *d, struct rollout_ctx *c, const struct cn_rollout_row *row, struct cn_err *err)
{
	double cur[2];
	int rc = cn_gateway_get_weights(c->gw, cur, err);
	if (rc < 0)
		return rc;
	bool matches = fabs(cur[row->candidate_slot] - row->weight) <= WEIGHT_EPSILON &&
		       fabs(cur[1 - row->candidate_slot] - (100.0 - row->weight)) <= WEIGHT_EPSILON;
	bool confirmed = !isnan(row->applied_weight) && fabs(row->applied_weight - row->weight) < 1e-9;
	if (matches && confirmed)
		return 0;
	if (!matches) {
		double want[2];
		shares(row->candidate_slot, row->weight, want);
		if ((rc = may_move(d, row->id, row->weight, err)) < 0 ||
		    (rc = cn_gateway_set_weights(c->gw, want, err)) < 0)
			return rc;
	}
	/* Drift (the gateway differed from an intent it had confirmed) is recorded as a reconciliation. */
	CN_CRASH_POINT("before_confirm");
	rc = cn_store_weight_confirmed(d->store, row->id, d->cfg.owner, row->weight, confirmed && !matches,
				       cur[row->candidate_slot], err);
	if (rc == 0)
		dlog("info", confirmed ? "gateway.reconciled" : "gateway.confirmed", dint("rollout", row->id),
		     dstr("service", row->service), dnum("weight", row->weight),
		     dnum("found", cur[row->candidate_slot]));
	return rc < 0 ? rc : 1;
}

/* After a committed decision that moved the weight: call the gateway and confirm. A failure is not fatal: the
 * intent is recorded, and the next turn reconciles. */
static void apply_weight(struct daemon *d, struct rollout_ctx *c, int64_t id, const char *service, int candidate_slot,
			 double weight)
{
	struct cn_err err = {0};
	double want[2];
	shares(candidate_slot, weight, want);
	CN_CRASH_POINT("after_intent");
	if (may_move(d, id, weight, &err) < 0) {
		dlog("warn", "lease.lost", dint("rollout", id), dstr("error", err.msg));
		return;
	}
	if (cn_gateway_set_weights(c->gw, want, &err) < 0) {
		gateway_warn(d, c, service, err.msg);
		return;
	}
	CN_CRASH_POINT("after_gateway");
	CN_CRASH_POINT("before_confirm");
	if (cn_store_weight_confirmed(d->store, id, d->cfg.owner, weight, false, weight, &err) < 0) {
		dlog("error", "store.error", dint("rollout", id), dstr("error", err.msg));
		return;
	}
	dlog("info", "weight.applied", dint("rollout", id), dstr("service", service), dnum("weight", weight));
}

static void brief_of(const struct cn_rollout_row *row, const struct cn_tick_result *res, struct tick_brief *b)
{
	*b = (struct tick_brief){
		.id = row->id, .state_seq = row->state_seq, .candidate_slot = row->candidate_slot,
		.next_step = res->next.step, .next_phase = res->next.phase, .decision = res->decision,
		.set_weight = res->set_weight, .weight = res->weight, .next_weight = res->next.weight,
	};
	snprintf(b->service, sizeof b->service, "%s", row->service);
	snprintf(b->reason, sizeof b->reason, "%s", res->reason);
}

static void log_brief(const char *event, const struct tick_brief *b)
{
	dlog(b->decision == CN_DECIDE_ROLLBACK ? "warn" : "info", event, dint("rollout", b->id),
	     dstr("service", b->service), dstr("phase", cn_phase_name(b->next_phase)),
	     dstr("decision", cn_decision_name(b->decision)), dint("step", b->next_step), dnum("weight", b->next_weight),
	     dstr("reason", b->reason));
}

static void log_result(const char *event, const struct cn_rollout_row *row, const struct cn_tick_result *res)
{
	struct tick_brief b;
	brief_of(row, res, &b);
	log_brief(event, &b);
}

static int reload(struct daemon *d, int64_t id, struct cn_rollout_row **row, struct cn_err *err)
{
	cn_rollout_row_free(*row);
	*row = NULL;
	return cn_store_rollout_get(d->store, id, row, err);
}

static void state_of(const struct cn_rollout_row *row, struct cn_rollout_state *st)
{
	if (row->has_state)
		*st = row->state;
	else
		cn_rollout_init(st);
}

/* The policy's approval.distinct_approver: the approver may not be the role that started the rollout. The CLI checks
 * this too, but only the daemon's check is authoritative (a command row can be inserted by hand). */
static int check_approver(const struct rollout_ctx *c, const struct cn_rollout_row *row,
			  const struct cn_command_row *cmd, struct cn_err *err)
{
	if (cmd->kind != CN_CMD_APPROVE || !c->policy->approver_must_differ || strcmp(cmd->actor, row->created_by) != 0)
		return 0;
	return cn_fail(err, CN_EPERM,
		       "permission denied: '%s' started rollout %lld and policy '%s' requires a different approver "
		       "(approval.distinct_approver); ask another operator to approve",
		       cmd->actor, (long long)row->id, c->policy->name);
}

/* Applies the pending commands in order; *handled counts them. Sets *tick_now when an approval was accepted: the next
 * step is then applied at once (if every slo still passes) instead of at the next interval, so an approval acts in
 * milliseconds. With gw_ok false the gateway is not called: the committed intent waits for the reconcile. */
static int run_commands(struct daemon *d, struct rollout_ctx *c, struct cn_rollout_row **rowp, bool gw_ok,
			bool *tick_now, int *handled, struct cn_err *err)
{
	struct cn_command_row cmds[MAX_COMMANDS];
	int n = 0, rc;
	int64_t t_turn = cn_mono_ms();
	if ((rc = cn_store_commands_pending(d->store, (*rowp)->id, cmds, MAX_COMMANDS, &n, err)) < 0)
		return rc;
	int64_t t_read = cn_mono_ms();
	for (int i = 0; i < n; i++) {
		struct cn_rollout_row *row = *rowp;
		struct cn_rollout_state cur;
		state_of(row, &cur);
		struct cn_tick_result *res = calloc(1, sizeof *res);
		struct cn_err cerr = {0};
		if (!res)
			return cn_fail(err, CN_EINTERNAL, "out of memory");
		CN_CRASH_POINT("command");
		int crc = cn_command(c->policy, &cur, cmds[i].kind, daemon_now(d), res, &cerr);
		if (crc == 0)
			crc = check_approver(c, row, &cmds[i], &cerr);
		struct cn_record rec = {
			.row = row, .policy = c->policy, .res = res, .command = &cmds[i],
			.command_error = crc < 0 ? cerr.msg : NULL, .next_tick_ms = c->policy->analysis.interval_ms,
			.owner = d->cfg.owner,
		};
		CN_CRASH_POINT("mid_record");
		int64_t t_record = cn_mono_ms();
		rc = cn_store_record(d->store, &rec, err);
		int64_t t_recorded = cn_mono_ms();
		atomic_fetch_add(&d->stats.commands, 1);
		(*handled)++;
		if (rc == 0) {
			if (crc < 0)
				dlog("info", "command.refused", dint("rollout", row->id),
				     dstr("command", cn_command_name(cmds[i].kind)), dstr("actor", cmds[i].actor),
				     dstr("error", cerr.msg));
			else
				log_result("command.accepted", row, res);
		}
		bool move = rc == 0 && crc == 0 && res->set_weight && gw_ok;
		if (rc == 0 && crc == 0 && cmds[i].kind == CN_CMD_APPROVE)
			*tick_now = true;
		double w = res->weight;
		free(res);
		if (rc < 0)
			return rc;
		int64_t t_moved = t_recorded;
		if (move) {
			apply_weight(d, c, row->id, row->service, row->candidate_slot, w);
			t_moved = cn_mono_ms();
		}
		command_timing(d, row->id, &cmds[i], t_turn, t_read, t_record, t_recorded, t_moved);
		t_turn = t_read = cn_mono_ms(); /* (the next command's own) */
		if ((rc = reload(d, row->id, rowp, err)) < 0)
			return rc;
	}
	return 0;
}

/* The gateway is away: hold where we are and say why (never advance on an unconfirmed weight). Held longer than the
 * policy's inconclusive_timeout (or GATEWAY_DEFAULT_LIMIT_MS without one), an active rollout pauses for a person. */
static int gateway_hold(struct daemon *d, struct rollout_ctx *c, const struct cn_rollout_row *row, const char *msg,
			struct cn_err *err)
{
	int64_t now = daemon_now(d);
	if (c->gw_down_since_ms == 0)
		c->gw_down_since_ms = now;
	int64_t limit = c->policy->analysis.inconclusive_timeout_ms > 0 ? c->policy->analysis.inconclusive_timeout_ms
								   : GATEWAY_DEFAULT_LIMIT_MS;
	int64_t lasted = now - c->gw_down_since_ms;
	bool active = row->phase == CN_PHASE_PENDING || row->phase == CN_PHASE_PROGRESSING ||
		      row->phase == CN_PHASE_AWAITING_APPROVAL;
	char why[CN_ERR_MSG_MAX + 64];
	if (daemon_fd_exhausted(msg)) {
		/* canaryd's shortage, not the gateway's: hold (no pause for a person) until descriptors are free */
		daemon_fd_reason(why, sizeof why);
		return cn_store_hold(d->store, row->id, d->cfg.owner, why, c->policy->analysis.interval_ms, err);
	}
	if (active && lasted >= limit) {
		struct cn_rollout_state cur;
		struct cn_err cerr = {0};
		struct cn_tick_result *res = calloc(1, sizeof *res);
		if (!res)
			return cn_fail(err, CN_EINTERNAL, "out of memory");
		state_of(row, &cur);
		cur.phase = row->phase;
		int rc = cn_command(c->policy, &cur, CN_CMD_PAUSE, now, res, &cerr);
		if (rc == 0) {
			char d1[32], d2[32];
			cn_format_duration(lasted - lasted % 1000, d1, sizeof d1); /* whole seconds read better */
			cn_format_duration(limit, d2, sizeof d2);
			snprintf(res->reason, sizeof res->reason,
				 "paused: the gateway has been unavailable for %s (limit %s, the policy's "
				 "inconclusive_timeout): %s; resume once it answers", d1, d2, msg);
			res->set_weight = false;
			struct cn_record rec = {
				.row = row, .policy = c->policy, .res = res,
				.next_tick_ms = c->policy->analysis.interval_ms, .owner = d->cfg.owner,
			};
			CN_CRASH_POINT("mid_record");
			rc = cn_store_record(d->store, &rec, err);
			if (rc == 0)
				log_result("gateway.timeout", row, res);
		}
		free(res);
		if (rc == 0)
			return 0;
		if (rc != -CN_EINPUT)
			return rc;
		/* the core would not pause it: hold as below */
	}
	/* (an ended rollout keeps its reason in the row; the hold's audit event says why its weight is unconfirmed) */
	snprintf(why, sizeof why, "%s: gateway unavailable: %s", row->phase == CN_PHASE_PAUSED ? "paused" : "holding",
		 msg);
	return cn_store_hold(d->store, row->id, d->cfg.owner, why, c->policy->analysis.interval_ms, err);
}

bool daemon_turn_idle(struct daemon *d, int64_t id)
{
	for (int i = 0; i < d->nctx; i++) {
		if (d->ctx[i].id != id)
			continue;
		if (d->ctx[i].recording > 0) {
			/* its tick is with the recorder: a command waits for the answer (it would apply to a state about
			 * to be replaced), and the loop claims again as soon as the answer is back */
			d->ctx[i].last_seen_ms = cn_mono_ms();
			if (d->notified)
				d->reclaim_after_record = true;
			return true;
		}
		/* its read is out, or its tick was recorded after this round's claim (the batch came back while the
		 * round ran): nothing to do unless a NOTIFY says a command may wait */
		if ((cn_metrics_busy(d->ctx[i].metrics) || d->ctx[i].recorded_ms >= d->mono_claim_ms) && !d->notified) {
			d->ctx[i].last_seen_ms = cn_mono_ms();
			return true;
		}
		return false;
	}
	return false;
}

bool daemon_has_ctx(const struct daemon *d, int64_t id)
{
	for (int i = 0; i < d->nctx; i++)
		if (d->ctx[i].id == id)
			return true;
	return false;
}

bool daemon_held_seq(const struct daemon *d, int64_t id, int64_t *seq)
{
	*seq = -1;
	for (int i = 0; i < d->nctx; i++)
		if (d->ctx[i].id == id) {
			if (d->ctx[i].held)
				*seq = d->ctx[i].held_seq;
			return true;
		}
	return false;
}

int daemon_fill_state(const struct daemon *d, struct cn_rollout_row *row)
{
	CN_BUG_ON(!row->state_elided);
	for (int i = 0; i < d->nctx; i++) {
		const struct rollout_ctx *c = &d->ctx[i];
		if (c->id != row->id)
			continue;
		if (!c->held || c->held_seq != row->state_seq)
			return -1;
		/* our own packing of a struct of this size: anything else is a bug, not bad input */
		CN_BUG_ON(cn_zunpack(c->held, c->held_len, &row->state, sizeof row->state) < 0);
		row->has_state = true;
		row->state_elided = false;
		return 0;
	}
	return -1;
}

/* Holds row (taken over) packed in c until the read finishes, in place of the one it held. Its sources are not
 * needed past ctx_get. Out of memory, nothing is held: the tick waits for the next claim. */
static void keep_row(struct rollout_ctx *c, struct cn_rollout_row *row)
{
	free(c->row_z);
	c->row_z = NULL;
	c->row_z_len = 0;
	free(row->policy_source);
	free(row->service_source);
	row->policy_source = row->service_source = NULL;
	if (cn_zpack(row, sizeof *row, &c->row_z, &c->row_z_len) < 0)
		c->row_z = NULL;
	free(row);
}

/* The row keep_row held (the caller owns it now), or NULL. */
static struct cn_rollout_row *take_row(struct rollout_ctx *c)
{
	struct cn_rollout_row *row = NULL;
	if (c->row_z && (row = malloc(sizeof *row)))
		CN_BUG_ON(cn_zunpack(c->row_z, c->row_z_len, row, sizeof *row) < 0);
	free(c->row_z);
	c->row_z = NULL;
	c->row_z_len = 0;
	return row;
}

int daemon_turn(struct daemon *d, int64_t id, bool due, struct cn_rollout_row *row, struct cn_err *err)
{
	/* A rollout whose read is out stays due until its tick is recorded, so every claim returns it (which renews
	 * its lease). Unless a NOTIFY says a command may be waiting, there is nothing to do for it until the read ends. */
	if (daemon_turn_idle(d, id)) {
		cn_rollout_row_free(row);
		return 0;
	}
	int rc = 0;
	int did = 0;
	/* the row comes from the round's batch read; a rollout new to this daemon needs its pinned sources */
	if (!row || (!row->policy_source && !daemon_has_ctx(d, id))) {
		cn_rollout_row_free(row);
		row = NULL;
		if ((rc = cn_store_rollout_get(d->store, id, &row, err)) < 0)
			return rc;
	}
	struct rollout_ctx *c = ctx_get(d, row, err);
	if (!c) {
		/* Nothing can be done for it (its pinned policy or service does not load, an adapter cannot open): say
		 * so where operators look, and come back later instead of re-claiming it at once. */
		char why[CN_ERR_MSG_MAX + 64];
		struct cn_err herr = {0};
		if (daemon_fd_exhausted(err->msg))
			daemon_fd_reason(why, sizeof why);
		else
			snprintf(why, sizeof why, "holding: canaryd cannot act on this rollout: %s", err->msg);
		if (cn_store_hold(d->store, id, d->cfg.owner, why, CTX_RETRY_MS, &herr) < 0)
			dlog("error", "store.error", dint("rollout", id), dstr("error", herr.msg));
		rc = -err->code;
		goto out;
	}
	struct cn_err gerr = {0};
	int rec = reconcile(d, c, row, &gerr);
	bool gw_ok = rec >= 0;
	if (!gw_ok) {
		gateway_warn(d, c, row->service, gerr.msg);
		if (cn_phase_is_terminal(row->phase)) {
			/* ended, its final weight not yet on the gateway: come back in an interval */
			rc = gateway_hold(d, c, row, gerr.msg, err);
			did = 1;
			goto out;
		}
	} else {
		gateway_back(c, row->service);
	}
	if (rec > 0) {
		did = 1;
		if ((rc = reload(d, id, &row, err)) < 0)
			goto out;
	}
	if (cn_phase_is_terminal(row->phase)) {
		ctx_drop(d, id);
		did = 1;
		goto out;
	}
	bool tick_now = false;
	int handled = 0;
	/* The row says whether commands wait (read after the claim committed: a command queued later NOTIFYs and is
	 * claimed again), so turns without any save the query. */
	int64_t mono = cn_mono_ms();
	if (row->commands_pending) {
		rc = run_commands(d, c, &row, gw_ok, &tick_now, &handled, err);
		if (rc == 0)
			c->commands_checked_ms = mono;
	}
	if (handled > 0)
		did = 1;
	if (rc < 0)
		goto out;
	if (cn_phase_is_terminal(row->phase)) {
		/* ended by a command: with the gateway away, keep the context (and its failure count) until the
		 * final weight is confirmed */
		if (gw_ok)
			ctx_drop(d, id);
		else
			rc = gateway_hold(d, c, row, gerr.msg, err);
		goto out;
	}
	if (!gw_ok) {
		/* commands are in; the tick waits for the gateway (a read in flight is of no use now) */
		cn_metrics_cancel(c->metrics);
		rc = gateway_hold(d, c, row, gerr.msg, err);
		did = 1;
		goto out;
	}
	/* a pre-flight first (preflight.c): step 1 waits until it passed; meanwhile the loop goes on */
	if (row->phase != CN_PHASE_PENDING && c->service) {
		free(c->service); /* past its pre-flight */
		c->service = NULL;
	}
	if (row->phase == CN_PHASE_PENDING && c->policy->preflight.enabled) {
		/* ctx_get kept the service: the context was built while pending, and the pinned policy never changes */
		CN_BUG_ON(!c->service);
		int pr = daemon_preflight_turn(d, c->policy, c->service, row, err);
		if (pr != 0) {
			did = 1;
			rc = pr < 0 ? pr : 0;
			goto out;
		}
	}
	/* a tick recorded after the claim (its batch came back during this round) moved the next one on: the claim's
	 * `due` is stale */
	if (c->recorded_ms >= d->mono_claim_ms)
		due = false;
	/* `due` comes from the database's clock (the claim), so daemons whose clocks disagree still tick on time. */
	if ((due || tick_now || !row->has_state) && !cn_metrics_busy(c->metrics)) {
		if (cn_metrics_group_pending(d->group) >= DAEMON_READS_MAX) {
			/* behind (more rollouts due than the loop ticks): it stays due and is claimed again, instead of
			 * holding its row (32 kB) and samples in a queue that would grow with N */
			atomic_fetch_add(&d->stats.reads_deferred, 1);
			goto out;
		}
		if ((rc = cn_metrics_start(c->metrics, d->group, err)) < 0)
			goto out;
		c->read_started_ms = cn_mono_ms();
		did = 1;
	}
	/* the newest row goes with the context: the tick runs on it when the read finishes */
	keep_row(c, row);
	row = NULL;
out:
	cn_rollout_row_free(row);
	return rc < 0 ? rc : did;
}

/* cn_record's as_stored: the state this tick writes, packed, for the context once the tick is recorded */
static void keep_stored(const struct cn_rollout_state *st, void *arg)
{
	struct pending_tick *p = arg;
	free(p->stored);
	if (cn_zpack(st, sizeof *st, &p->stored, &p->stored_len) < 0)
		p->stored = NULL; /* out of memory: the next round reads the state */
}

static struct cn_rollout_state stored_scratch; /* keep_stored's (the loop's thread only) */

int daemon_tick_ready(struct daemon *d, struct cn_metrics *m, struct cn_err *err)
{
	struct rollout_ctx *c = NULL;
	for (int i = 0; i < d->nctx && !c; i++)
		if (d->ctx[i].metrics == m)
			c = &d->ctx[i];
	if (!c) {
		cn_metrics_cancel(m);
		return 0;
	}
	/* scratch of the loop's thread (38 kB a tick from the heap made glibc consolidate its small chunks) */
	static struct cn_sample s[2];
	static struct cn_rollout_state cur_scratch;
	struct cn_rollout_state *cur = &cur_scratch;
	memset(s, 0, sizeof s);
	memset(cur, 0, sizeof *cur);
	struct cn_observation *obs = calloc(1, sizeof *obs);
	struct cn_tick_result *res = calloc(1, sizeof *res);
	struct cn_rollout_row *row = take_row(c);
	int rc = 0;
	if (!obs || !res) {
		cn_metrics_cancel(m);
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	if (cn_metrics_collect(m, s) < 0) {
		rc = cn_fail(err, CN_EINTERNAL, "rollout %lld: reading metrics failed", (long long)c->id);
		goto out;
	}
	/* the gateway went away while the pages downloaded: the hold is recorded, no tick on an unknown weight */
	if (!row || c->gw_down_since_ms != 0 || cn_phase_is_terminal(row->phase))
		goto out;
	state_of(row, cur);
	int cand = row->candidate_slot;
	obs->baseline = s[1 - cand];
	obs->candidate = s[cand];
	obs->baseline.cost = c->cost[1 - cand];
	obs->candidate.cost = c->cost[cand];
	if (!obs->baseline.ok || !obs->candidate.ok)
		atomic_fetch_add(&d->stats.metrics_errors, 1);
	for (int k = 0; k < 2; k++)
		if (!s[k].ok)
			atomic_fetch_add(&d->stats.scrape_errors[scrape_cause_of(s[k].why)], 1);
	if (daemon_fd_exhausted(obs->baseline.why) || daemon_fd_exhausted(obs->candidate.why)) {
		/* no tick on pages canaryd could not open for want of descriptors: hold, never judge them missing */
		char why[CN_ERR_MSG_MAX];
		daemon_fd_check("metrics", daemon_fd_exhausted(obs->baseline.why) ? obs->baseline.why : obs->candidate.why);
		daemon_fd_reason(why, sizeof why);
		rc = cn_store_hold(d->store, c->id, d->cfg.owner, why, c->policy->analysis.interval_ms, err);
		goto out;
	}
	int64_t t = daemon_now(d);
	if (row->next_tick_ms > 0)
		daemon_hist_observe(&d->stats.lateness, t > row->next_tick_ms ? (double)(t - row->next_tick_ms) / 1000.0 : 0);
	obs->at_ms = t;
	cn_tick(c->policy, cur, obs, t, res);
	/* recorded with the others that finished in this pass, in one round trip (daemon_flush_ticks); until then the
	 * tick holds its record's text and brief, not its row, result and observation (76 kB) */
	struct pending_tick *p = &d->pend[d->npend];
	*p = (struct pending_tick){ .id = c->id, .row = row, .res = res, .obs = obs };
	struct cn_record rec = {
		.row = row, .policy = c->policy, .res = res, .obs = obs, .next_tick_ms = c->policy->analysis.interval_ms,
		.owner = d->cfg.owner, .as_stored = keep_stored, .as_stored_arg = p, .as_stored_scratch = &stored_scratch,
	};
	row = NULL;
	res = NULL;
	obs = NULL;
	if ((rc = cn_store_record_doc(&rec, &p->doc, &p->doc_len, err)) < 0) {
		daemon_pending_free(p); /* (row, result and observation with it) */
		goto out;
	}
	daemon_pending_brief(p);
	d->npend++;
	c->recording++; /* judged: no turn touches it until its record is back (recorder.c) */
	if (d->npend == DAEMON_BATCH_MAX)
		daemon_flush_ticks(d, true);
out:
	/* the row is now stale: the next turn loads it again */
	cn_rollout_row_free(row);
	free(obs);
	free(res);
	return rc;
}

void daemon_pending_brief(struct pending_tick *p)
{
	if (p->briefed)
		return;
	brief_of(p->row, p->res, &p->brief);
	cn_rollout_row_free(p->row);
	free(p->res);
	free(p->obs);
	p->row = NULL;
	p->res = NULL;
	p->obs = NULL;
	p->briefed = true;
}

void daemon_pending_free(struct pending_tick *p)
{
	cn_rollout_row_free(p->row);
	free(p->res);
	free(p->obs);
	free(p->stored);
	free(p->doc);
	memset(p, 0, sizeof *p);
}


/* The tick of rollout id is no longer on its way to the database (recorded, failed or dropped). */
static void unmark(struct daemon *d, int64_t id)
{
	for (int i = 0; i < d->nctx; i++)
		if (d->ctx[i].id == id) {
			if (d->ctx[i].recording > 0)
				d->ctx[i].recording--;
			return;
		}
}

void daemon_drop_ticks(struct daemon *d)
{
	for (int i = 0; i < d->npend; i++) {
		unmark(d, d->pend[i].id);
		daemon_pending_free(&d->pend[i]);
	}
	d->npend = 0;
}

#define HELD_ROUND 128 /* a held state's allocation, in steps of this: the next one fits in place */

/* Takes p's packed state as c's. A held state lives for the rollout's life and the next tick's is much the same
 * size: copied into the same allocation (rounded up), it stays put. Swapped for a new blob every tick, the old
 * ones, a few bytes apart in size, were left as holes the next blobs did not fit: about 7,000 free chunks of 640
 * bytes in the loop's heap at N = 10,000 (/debug/heap). */
static void hold_state(struct rollout_ctx *c, struct pending_tick *p)
{
	if (c->held && c->held_cap >= p->stored_len) {
		memcpy(c->held, p->stored, p->stored_len);
		free(p->stored);
	} else {
		free(c->held);
		size_t cap = (p->stored_len + HELD_ROUND - 1) / HELD_ROUND * HELD_ROUND;
		unsigned char *b = cap >= p->stored_len ? realloc(p->stored, cap) : NULL;
		c->held = b ? b : p->stored;
		c->held_cap = b ? cap : p->stored_len;
	}
	c->held_len = p->stored_len;
	p->stored = NULL;
}

void daemon_tick_recorded(struct daemon *d, struct rollout_ctx *c, struct pending_tick *p)
{
	if (c)
		c->recorded_ms = cn_mono_ms();
	daemon_pending_brief(p);
	const struct tick_brief *b = &p->brief;
	if (c && p->stored) {
		/* the record's one write of the state moved its version on by exactly one (migration 0021); were
		 * there another write meanwhile, the versions differ and the next read brings the stored state */
		hold_state(c, p);
		c->held_seq = b->state_seq + 1;
	}
	log_brief("tick", b);
	if (c && b->set_weight)
		apply_weight(d, c, b->id, b->service, b->candidate_slot, b->weight);
}

int daemon_pending_join(struct daemon *d, struct pending_tick *pend, int n, struct cn_record_batch *b,
			struct cn_err *err)
{
	int64_t ids[DAEMON_BATCH_MAX] = {0};
	char *docs[DAEMON_BATCH_MAX] = {0};
	size_t lens[DAEMON_BATCH_MAX] = {0};
	CN_BUG_ON(n <= 0 || n > DAEMON_BATCH_MAX);
	for (int i = 0; i < n; i++) {
		CN_BUG_ON(!pend[i].doc);
		ids[i] = pend[i].id;
		docs[i] = pend[i].doc;
		lens[i] = pend[i].doc_len;
	}
	if (cn_store_record_batch_join(ids, docs, lens, n, d->cfg.owner, b, err) < 0)
		return -err->code;
	for (int i = 0; i < n; i++) { /* in the batch's text now */
		free(pend[i].doc);
		pend[i].doc = NULL;
	}
	return 0;
}

void daemon_flush_ticks(struct daemon *d, bool force)
{
	int n = d->npend;
	/* while every sender of the recorder is busy, ticks gather into the next batch (group commit: the busier the database, the
	 * bigger the batches), unless the batch is full or the caller must have them on their way */
	if (!force && d->recorder && n < DAEMON_BATCH_MAX && daemon_recorder_saturated(d))
		return;
	int rcs[DAEMON_BATCH_MAX];
	static char msgs[DAEMON_BATCH_MAX][CN_ERR_MSG_MAX];
	struct rollout_ctx *ctxs[DAEMON_BATCH_MAX];
	int k = 0;
	if (n == 0)
		return;
	for (int i = 0; i < n; i++) {
		struct pending_tick *p = &d->pend[i];
		struct rollout_ctx *c = NULL;
		for (int j = 0; j < d->nctx && !c; j++)
			if (d->ctx[j].id == p->id)
				c = &d->ctx[j];
		if (!c) { /* dropped meanwhile (it ended by a command): its tick is of no use */
			daemon_pending_free(p);
			continue;
		}
		struct pending_tick moved = *p;
		memset(p, 0, sizeof *p);
		d->pend[k] = moved;
		ctxs[k] = c;
		k++;
	}
	d->npend = 0;
	if (k == 0)
		return;
	struct cn_err err = {0};
	CN_CRASH_POINT("mid_record");
	int rc;
	if (d->recorder) {
		/* the recorder's thread sends them; the loop goes on and finishes them when the answer is back */
		rc = daemon_recorder_submit(d, d->pend, k, &err);
	} else {
		struct cn_record_batch b;
		rc = daemon_pending_join(d, d->pend, k, &b, &err);
		if (rc == 0) {
			rc = cn_store_record_batch_send(d->store, &b, rcs, msgs, &err);
			cn_record_batch_free(&b);
		}
		for (int i = 0; rc == 0 && i < k; i++) {
			struct pending_tick *p = &d->pend[i];
			if (rcs[i] < 0) {
				atomic_fetch_add(&d->stats.tick_errors, 1);
				dlog(rcs[i] == -CN_EUNAVAIL ? "warn" : "error", "rollout.error", dint("rollout", p->id),
				     dstr("error", msgs[i]));
				continue;
			}
			atomic_fetch_add(&d->stats.ticks, 1);
			daemon_tick_recorded(d, ctxs[i], p);
		}
	}
	if (rc < 0) {
		/* nothing recorded: each rollout ticks again when it is next claimed */
		atomic_fetch_add(&d->stats.tick_errors, (unsigned long long)k);
		dlog(err.code == CN_EUNAVAIL ? "warn" : "error", "store.error", dint("ticks", k), dstr("error", err.msg));
	}
	if (rc < 0 || !d->recorder)
		for (int i = 0; i < k; i++) {
			unmark(d, d->pend[i].id);
			daemon_pending_free(&d->pend[i]);
		}
}
