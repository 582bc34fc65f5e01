/* One rollout's turn in canaryd: reconcile the gateway to the recorded intent, apply operators' commands, and, when
 * the tick is due, read both variants' counters, run the core, record the outcome, then move the gateway.
 * Order matters for crash safety: the intended weight is committed before the gateway is called, and the gateway is
 * reconciled to the recorded intent on every turn, so a kill -9 anywhere leaves nothing inconsistent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canary/gateway.h"
#include "canary/metrics.h"
#include "canary/policy.h"
#include "canary/rollout.h"
#include "canary/service.h"
#include "canary/store.h"
#include "canary/store_rollouts.h"
#include "daemon.h"

#define MAX_COMMANDS 16
#define CTX_RETRY_MS 10000 /* a rollout the daemon cannot act on is looked at again after this long */
#define WEIGHT_EPSILON 0.25 /* percent; HAProxy's integer weights round shares by up to 0.2 points */

static void ctx_free(struct rollout_ctx *c)
{
	cn_gateway_close(c->gw);
	cn_metrics_close(c->metrics);
	c->gw = NULL;
	c->metrics = NULL;
}

void daemon_ctx_gc(struct daemon *d, int64_t now, bool all)
{
	int k = 0;
	for (int i = 0; i < d->nctx; i++) {
		if (all || now - d->ctx[i].last_seen_ms > 4 * d->cfg.lease_ms)
			ctx_free(&d->ctx[i]);
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
			ctx_free(&d->ctx[i]);
			d->ctx[i] = d->ctx[--d->nctx];
			break;
		}
	atomic_store(&d->stats.rollouts_owned, (unsigned long long)d->nctx);
}

/* Finds or builds the context of a rollout: its pinned policy and service parsed from the stored sources. */
static struct rollout_ctx *ctx_get(struct daemon *d, const struct cn_rollout_row *row, struct cn_err *err)
{
	for (int i = 0; i < d->nctx; i++)
		if (d->ctx[i].id == row->id) {
			d->ctx[i].last_seen_ms = now_ms();
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
	if (cn_policy_parse(row->policy_source, strlen(row->policy_source), "stored policy", &c->policy, err) < 0 ||
	    cn_service_parse(row->service_source, strlen(row->service_source), "stored service", &c->service, err) <
		    0)
		return NULL;
	c->gw = cn_gateway_open(&c->service, err);
	if (!c->gw)
		return NULL;
	c->metrics = cn_metrics_open(&c->service, err);
	if (!c->metrics) {
		cn_gateway_close(c->gw);
		return NULL;
	}
	c->last_seen_ms = now_ms();
	d->nctx++;
	atomic_store(&d->stats.rollouts_owned, (unsigned long long)d->nctx);
	return c;
}

static void shares(const struct cn_rollout_row *row, double cand, double pct[2])
{
	pct[row->candidate_slot] = cand;
	pct[1 - row->candidate_slot] = 100.0 - cand;
}

/* Renews the lease and checks that `weight` is still the recorded intent, right before the gateway is moved: a
 * daemon whose turn outlived its lease, or whose row is stale, must not touch the gateway. */
static int may_move(struct daemon *d, const struct cn_rollout_row *row, double weight, struct cn_err *err)
{
	double intent;
	int rc = cn_store_lease_renew(d->store, row->id, d->cfg.owner, d->cfg.lease_ms, &intent, err);
	if (rc < 0)
		return rc;
	if (fabs(intent - weight) > 1e-9)
		return cn_fail(err, CN_EUNAVAIL, "rollout %lld: the recorded intent is now %g%%, not %g%%; not moving "
			       "the gateway on a stale view", (long long)row->id, intent, weight);
	return 0;
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
		shares(row, row->weight, want);
		if ((rc = may_move(d, row, row->weight, err)) < 0 ||
		    (rc = cn_gateway_set_weights(c->gw, want, err)) < 0)
			return rc;
	}
	/* Drift (the gateway differed from an intent it had confirmed) is recorded as a reconciliation. */
	rc = cn_store_weight_confirmed(d->store, row->id, d->cfg.owner, row->weight, confirmed && !matches,
				       cur[row->candidate_slot], err);
	if (rc == 0)
		dlog("info", confirmed ? "gateway.reconciled" : "gateway.confirmed", "rollout", 'I', row->id,
		     "service", 's', row->service, "weight", 'f', row->weight, "found", 'f', cur[row->candidate_slot],
		     NULL);
	return rc < 0 ? rc : 1;
}

/* After a committed decision that moved the weight: call the gateway and confirm. A failure is not fatal: the
 * intent is recorded, and the next turn reconciles. */
static void apply_weight(struct daemon *d, struct rollout_ctx *c, const struct cn_rollout_row *row, double weight)
{
	struct cn_err err = {0};
	double want[2];
	shares(row, weight, want);
	if (may_move(d, row, weight, &err) < 0) {
		dlog("warn", "lease.lost", "rollout", 'I', row->id, "error", 's', err.msg, NULL);
		return;
	}
	if (cn_gateway_set_weights(c->gw, want, &err) < 0) {
		atomic_fetch_add(&d->stats.gateway_errors, 1);
		dlog("warn", "gateway.error", "rollout", 'I', row->id, "service", 's', row->service, "error", 's',
		     err.msg, NULL);
		return;
	}
	if (cn_store_weight_confirmed(d->store, row->id, d->cfg.owner, weight, false, weight, &err) < 0) {
		dlog("error", "store.error", "rollout", 'I', row->id, "error", 's', err.msg, NULL);
		return;
	}
	dlog("info", "weight.applied", "rollout", 'I', row->id, "service", 's', row->service, "weight", 'f', weight,
	     NULL);
}

static void log_result(const char *event, const struct cn_rollout_row *row, const struct cn_tick_result *res)
{
	dlog(res->decision == CN_DECIDE_ROLLBACK ? "warn" : "info", event, "rollout", 'I', row->id, "service", 's',
	     row->service, "phase", 's', cn_phase_name(res->next.phase), "decision", 's',
	     cn_decision_name(res->decision), "step", 'I', (int64_t)res->next.step, "weight", 'f', res->next.weight,
	     "reason", 's', res->reason, NULL);
}

static int reload(struct daemon *d, int64_t id, struct cn_rollout_row **row, struct cn_err *err)
{
	cn_rollout_row_free(*row);
	*row = NULL;
	return cn_store_rollout_get(d->store, id, row, err);
}

/* The policy's approval.distinct_approver: the approver may not be the role that started the rollout. The CLI checks
 * this too, but only the daemon's check is authoritative (a command row can be inserted by hand). */
static int check_approver(const struct rollout_ctx *c, const struct cn_rollout_row *row,
			  const struct cn_command_row *cmd, struct cn_err *err)
{
	if (cmd->kind != CN_CMD_APPROVE || !c->policy.approver_must_differ || strcmp(cmd->actor, row->created_by) != 0)
		return 0;
	return cn_fail(err, CN_EPERM,
		       "permission denied: '%s' started rollout %lld and policy '%s' requires a different approver "
		       "(approval.distinct_approver); ask another operator to approve",
		       cmd->actor, (long long)row->id, c->policy.name);
}

/* Applies the pending commands in order. Sets *tick_now when an approval was accepted: the next step is then
 * applied at once (if every slo still passes) instead of at the next interval, so an approval acts in milliseconds. */
static int run_commands(struct daemon *d, struct rollout_ctx *c, struct cn_rollout_row **rowp, bool *tick_now,
			struct cn_err *err)
{
	struct cn_command_row cmds[MAX_COMMANDS];
	int n = 0, rc;
	if ((rc = cn_store_commands_pending(d->store, (*rowp)->id, cmds, MAX_COMMANDS, &n, err)) < 0)
		return rc;
	for (int i = 0; i < n; i++) {
		struct cn_rollout_row *row = *rowp;
		struct cn_rollout_state cur;
		if (row->has_state)
			cur = row->state;
		else
			cn_rollout_init(&cur);
		struct cn_tick_result *res = calloc(1, sizeof *res);
		struct cn_err cerr = {0};
		if (!res)
			return cn_fail(err, CN_EINTERNAL, "out of memory");
		int64_t t = now_ms();
		int crc = cn_command(&c->policy, &cur, cmds[i].kind, t, res, &cerr);
		if (crc == 0)
			crc = check_approver(c, row, &cmds[i], &cerr);
		struct cn_record rec = {
			.row = row, .policy = &c->policy, .res = res, .command = &cmds[i],
			.command_error = crc < 0 ? cerr.msg : NULL, .next_tick_ms = c->policy.analysis.interval_ms,
			.owner = d->cfg.owner,
		};
		rc = cn_store_record(d->store, &rec, err);
		atomic_fetch_add(&d->stats.commands, 1);
		if (rc == 0) {
			if (crc < 0)
				dlog("info", "command.refused", "rollout", 'I', row->id, "command", 's',
				     cn_command_name(cmds[i].kind), "actor", 's', cmds[i].actor, "error", 's', cerr.msg,
				     NULL);
			else
				log_result("command.accepted", row, res);
		}
		bool move = rc == 0 && crc == 0 && res->set_weight;
		if (rc == 0 && crc == 0 && cmds[i].kind == CN_CMD_APPROVE)
			*tick_now = true;
		double w = res->weight;
		free(res);
		if (rc < 0)
			return rc;
		if (move)
			apply_weight(d, c, row, w);
		if ((rc = reload(d, row->id, rowp, err)) < 0)
			return rc;
	}
	return 0;
}

static int run_tick(struct daemon *d, struct rollout_ctx *c, const struct cn_rollout_row *row, struct cn_err *err)
{
	struct cn_observation *obs = calloc(1, sizeof *obs);
	struct cn_tick_result *res = calloc(1, sizeof *res);
	struct cn_rollout_state *cur = calloc(1, sizeof *cur);
	int rc = 0;
	if (!obs || !res || !cur) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	if (row->has_state)
		*cur = row->state;
	else
		cn_rollout_init(cur);
	int cand = row->candidate_slot;
	obs->at_ms = now_ms();
	if (cn_metrics_sample(c->metrics, 1 - cand, &obs->baseline) < 0 ||
	    cn_metrics_sample(c->metrics, cand, &obs->candidate) < 0) {
		rc = cn_fail(err, CN_EINTERNAL, "rollout %lld: reading metrics failed", (long long)row->id);
		goto out;
	}
	if (!obs->baseline.ok || !obs->candidate.ok)
		atomic_fetch_add(&d->stats.metrics_errors, 1);
	int64_t t = now_ms();
	cn_tick(&c->policy, cur, obs, t, res);
	struct cn_record rec = {
		.row = row, .policy = &c->policy, .res = res, .obs = obs,
		.next_tick_ms = c->policy.analysis.interval_ms, .owner = d->cfg.owner,
	};
	if ((rc = cn_store_record(d->store, &rec, err)) < 0)
		goto out;
	atomic_fetch_add(&d->stats.ticks, 1);
	log_result("tick", row, res);
	if (res->set_weight)
		apply_weight(d, c, row, res->weight);
out:
	free(obs);
	free(res);
	free(cur);
	return rc;
}

int daemon_process(struct daemon *d, int64_t id, bool due, struct cn_err *err)
{
	struct cn_rollout_row *row = NULL;
	int rc = cn_store_rollout_get(d->store, id, &row, err);
	if (rc < 0)
		return rc;
	struct rollout_ctx *c = ctx_get(d, row, err);
	if (!c) {
		/* Nothing can be done for it (its pinned policy or service does not load, an adapter cannot open): say
		 * so where operators look, and come back later instead of re-claiming it at once. */
		char why[CN_ERR_MSG_MAX + 64];
		struct cn_err herr = {0};
		snprintf(why, sizeof why, "holding: canaryd cannot act on this rollout: %s", err->msg);
		if (cn_store_hold(d->store, id, d->cfg.owner, why, CTX_RETRY_MS, &herr) < 0)
			dlog("error", "store.error", "rollout", 'I', id, "error", 's', herr.msg, NULL);
		rc = -err->code;
		goto out;
	}
	struct cn_err gerr = {0};
	int rec = reconcile(d, c, row, &gerr);
	if (rec < 0) {
		/* The gateway is away: hold where we are and say why; never advance on an unconfirmed weight. */
		atomic_fetch_add(&d->stats.gateway_errors, 1);
		char why[CN_ERR_MSG_MAX + 64];
		snprintf(why, sizeof why, "holding: gateway unavailable: %s", gerr.msg);
		dlog("warn", "gateway.error", "rollout", 'I', id, "service", 's', row->service, "error", 's', gerr.msg,
		     NULL);
		rc = cn_store_hold(d->store, id, d->cfg.owner, why, c->policy.analysis.interval_ms, err);
		goto out;
	}
	if (rec > 0 && (rc = reload(d, id, &row, err)) < 0)
		goto out;
	if (cn_phase_is_terminal(row->phase)) {
		ctx_drop(d, id);
		goto out;
	}
	bool tick_now = false;
	if ((rc = run_commands(d, c, &row, &tick_now, err)) < 0)
		goto out;
	if (cn_phase_is_terminal(row->phase)) {
		ctx_drop(d, id);
		goto out;
	}
	/* `due` comes from the database's clock (the claim), so daemons whose clocks disagree still tick on time. */
	if (due || tick_now || !row->has_state) {
		rc = run_tick(d, c, row, err);
		if (rc < 0)
			atomic_fetch_add(&d->stats.tick_errors, 1);
	}
out:
	cn_rollout_row_free(row);
	return rc;
}
