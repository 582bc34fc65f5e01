/* Rollouts in PostgreSQL. Every change of a rollout is one transaction together with its audit events; the daemon
 * commits the intended weight before it calls the gateway (write-ahead intent) and confirms it afterwards. */
#include "canary/store_rollouts.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/rollout.h"
#include "canary/state_json.h"
#include "canary/store.h"

static int audit(struct cn_store *st, int64_t id, const char *service, const char *actor, const char *kind,
		 const char *reason, json_t *data /* stolen */, struct cn_err *err)
{
	char ids[32];
	if (!data)
		data = json_object();
	char *djson = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	const char *p[] = {ids, service, actor, kind, reason, djson};
	int rc = cn_store_run(st, "record an audit event",
		       "INSERT INTO audit_events (rollout_id, service, actor, kind, reason, data) "
		       "VALUES ($1, $2, coalesce($3, session_user), $4, $5, $6::jsonb)",
		       6, p, err);
	free(djson);
	return rc;
}

int cn_store_rollout_create(struct cn_store *st, const char *service, const char *candidate, const char *policy,
			    const char *reason, int64_t *id_out, struct cn_err *err)
{
	PGresult *r = NULL;
	int rc;
	char slot[8];
	if ((rc = cn_store_begin(st, err)) < 0)
		return rc;
	const char *p1[] = {service};
	r = cn_store_exec(st, "read the service",
	      "SELECT s.live_slot, s.live_version, v.id FROM services s "
	      "JOIN service_versions v ON v.service = s.name "
	      "WHERE s.name = $1 ORDER BY v.version DESC LIMIT 1 FOR UPDATE OF s",
	      1, p1, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(r) == 0) {
		rc = cn_fail(err, CN_EINPUT, "unknown service '%s'; apply it first with 'canaryctl service apply FILE'",
			     service);
		goto out;
	}
	int cslot = 1 - (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	snprintf(slot, sizeof slot, "%d", cslot);
	char baseline[CN_VERSION_MAX] = "";
	if (!PQgetisnull(r, 0, 1))
		snprintf(baseline, sizeof baseline, "%s", PQgetvalue(r, 0, 1));
	char svid[32];
	snprintf(svid, sizeof svid, "%s", PQgetvalue(r, 0, 2));
	PQclear(r);

	const char *p2[] = {policy};
	r = cn_store_exec(st, "read the policy", "SELECT id FROM policies WHERE name = $1 ORDER BY version DESC LIMIT 1", 1, p2,
	      err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(r) == 0) {
		rc = cn_fail(err, CN_EINPUT, "unknown policy '%s'; apply it first with 'canaryctl policy apply FILE'",
			     policy);
		goto out;
	}
	char pid[32];
	snprintf(pid, sizeof pid, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);

	const char *p3[] = {service, svid, pid, candidate, baseline[0] ? baseline : NULL, slot, reason};
	r = cn_store_exec(st, "create the rollout",
	      "INSERT INTO rollouts (service, service_version_id, policy_id, candidate, baseline, candidate_slot, reason) "
	      "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
	      7, p3, err);
	if (!r) {
		if (strstr(err->msg, "rollouts_one_active"))
			cn_fail(err, CN_EINPUT,
				"service '%s' already has an active rollout; wait for it, or abort it with "
				"'canaryctl rollout abort ID'",
				service);
		rc = -err->code;
		goto out;
	}
	int64_t id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	json_t *d = json_pack("{s:s, s:s?, s:i, s:s, s:s}", "candidate", candidate,
			      "baseline", baseline[0] ? baseline : NULL, "candidate_slot", cslot, "policy",
			      policy, "policy_id", pid);
	if ((rc = audit(st, id, service, NULL, "rollout.started", reason, d, err)) < 0)
		goto out;
	if ((rc = cn_store_commit(st, err)) < 0)
		goto out;
	*id_out = id;
	return 0;
out:
	PQclear(r);
	cn_store_rollback(st);
	return rc;
}

int cn_store_claim(struct cn_store *st, const char *owner, int64_t lease_ms, int64_t *ids, bool *due, int max,
		   int *n, int64_t *db_now_ms, struct cn_err *err)
{
	char lease[32], lim[16];
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	snprintf(lim, sizeof lim, "%d", max);
	const char *p[] = {owner, lease, lim};
	/* Due: an active rollout whose tick is due or that has an unhandled command, or an ended one whose weight the
	 * gateway has not confirmed. Free: no lease, an expired lease, or ours. SKIP LOCKED keeps daemons apart.
	 * The first column is the database's clock: the one clock every daemon's core runs on. */
	PGresult *r = cn_store_exec(st, "claim due rollouts",
			"WITH c AS (UPDATE rollouts SET lease_owner = $1, "
			"  lease_until = now() + $2::bigint * interval '1 ms' "
			"WHERE id IN (SELECT id FROM rollouts r "
			"  WHERE ((r.phase IN ('pending','progressing','paused','awaiting_approval') AND "
			"          (r.next_tick_at <= now() OR EXISTS (SELECT 1 FROM commands c "
			"             WHERE c.rollout_id = r.id AND c.handled_at IS NULL))) "
			"      OR (r.phase IN ('promoted','rolled_back','aborted','failed') "
			"          AND r.applied_weight IS DISTINCT FROM r.weight AND r.next_tick_at <= now())) "
			"    AND (r.lease_owner IS NULL OR r.lease_owner = $1 OR r.lease_until < now()) "
			"  ORDER BY r.next_tick_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
			"RETURNING id, next_tick_at <= now() AS due) "
			"SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, c.id, c.due "
			"FROM (SELECT 1) one LEFT JOIN c ON true",
			3, p, err);
	if (!r)
		return -err->code;
	int k = 0;
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		if (PQgetisnull(r, i, 1))
			continue;
		ids[k] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		due[k] = PQgetvalue(r, i, 2)[0] == 't';
		k++;
	}
	if (db_now_ms && PQntuples(r) > 0)
		*db_now_ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	*n = k;
	PQclear(r);
	return 0;
}

int cn_store_release(struct cn_store *st, const char *owner, struct cn_err *err)
{
	const char *p[] = {owner};
	return cn_store_run(st, "release leases", "UPDATE rollouts SET lease_owner = NULL, lease_until = NULL "
					   "WHERE lease_owner = $1", 1, p, err);
}

void cn_rollout_row_free(struct cn_rollout_row *row)
{
	if (!row)
		return;
	free(row->policy_source);
	free(row->service_source);
	free(row);
}

static char *dup_value(PGresult *r, int col)
{
	return strdup(PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

static void copy_value(PGresult *r, int col, char *dst, size_t size)
{
	snprintf(dst, size, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

int cn_store_rollout_get(struct cn_store *st, int64_t id, struct cn_rollout_row **out, struct cn_err *err)
{
	char ids[32];
	struct cn_rollout_row *row = NULL;
	json_t *js = NULL;
	int rc = 0;
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	const char *p[] = {ids};
	PGresult *r = cn_store_exec(st, "read the rollout",
			"SELECT r.service, r.candidate, r.baseline, r.candidate_slot, r.phase, r.step, r.weight, "
			"       r.applied_weight, r.policy_id, p.name, p.version, p.source, v.source, r.state::text, "
			"       r.created_by, r.lease_owner, r.reason "
			"FROM rollouts r JOIN policies p ON p.id = r.policy_id "
			"JOIN service_versions v ON v.id = r.service_version_id WHERE r.id = $1",
			1, p, err);
	if (!r)
		return -err->code;
	if (PQntuples(r) == 0) {
		rc = cn_fail(err, CN_EINPUT, "no rollout with id %lld; 'canaryctl rollout status' lists them",
			     (long long)id);
		goto out;
	}
	row = calloc(1, sizeof *row);
	if (!row) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	row->id = id;
	copy_value(r, 0, row->service, sizeof row->service);
	copy_value(r, 1, row->candidate, sizeof row->candidate);
	copy_value(r, 2, row->baseline, sizeof row->baseline);
	row->candidate_slot = (int)strtol(PQgetvalue(r, 0, 3), NULL, 10);
	if (cn_phase_from_name(PQgetvalue(r, 0, 4), &row->phase) < 0) {
		rc = cn_fail(err, CN_EINTERNAL, "rollout %lld has an unknown phase '%s'", (long long)id,
			     PQgetvalue(r, 0, 4));
		goto out;
	}
	row->step = (int)strtol(PQgetvalue(r, 0, 5), NULL, 10);
	row->weight = strtod(PQgetvalue(r, 0, 6), NULL);
	row->applied_weight = PQgetisnull(r, 0, 7) ? NAN : strtod(PQgetvalue(r, 0, 7), NULL);
	row->policy_id = strtoll(PQgetvalue(r, 0, 8), NULL, 10);
	copy_value(r, 9, row->policy_name, sizeof row->policy_name);
	row->policy_version = (int)strtol(PQgetvalue(r, 0, 10), NULL, 10);
	row->policy_source = dup_value(r, 11);
	row->service_source = dup_value(r, 12);
	if (!row->policy_source || !row->service_source) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	if (!PQgetisnull(r, 0, 13)) {
		json_error_t je;
		js = json_loads(PQgetvalue(r, 0, 13), 0, &je);
		if (!js) {
			rc = cn_fail(err, CN_EINTERNAL, "rollout %lld: stored state is not JSON: %s", (long long)id,
				     je.text);
			goto out;
		}
		if ((rc = cn_state_from_json(js, &row->state, err)) < 0)
			goto out;
		row->has_state = true;
	}
	copy_value(r, 14, row->created_by, sizeof row->created_by);
	copy_value(r, 15, row->lease_owner, sizeof row->lease_owner);
	copy_value(r, 16, row->reason, sizeof row->reason);
	*out = row;
	row = NULL;
out:
	json_decref(js);
	cn_rollout_row_free(row);
	PQclear(r);
	return rc;
}

int cn_store_commands_pending(struct cn_store *st, int64_t id, struct cn_command_row *cmds, int max, int *n,
			      struct cn_err *err)
{
	char ids[32], lim[16];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(lim, sizeof lim, "%d", max);
	const char *p[] = {ids, lim};
	PGresult *r = cn_store_exec(st, "read pending commands",
			"SELECT id, kind, actor, coalesce(reason, '') FROM commands "
			"WHERE rollout_id = $1 AND handled_at IS NULL ORDER BY id LIMIT $2",
			2, p, err);
	if (!r)
		return -err->code;
	int k = 0;
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		struct cn_command_row *c = &cmds[k];
		c->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		if (cn_command_from_name(PQgetvalue(r, i, 1), &c->kind) < 0)
			continue;
		snprintf(c->actor, sizeof c->actor, "%s", PQgetvalue(r, i, 2));
		snprintf(c->reason, sizeof c->reason, "%s", PQgetvalue(r, i, 3));
		k++;
	}
	*n = k;
	PQclear(r);
	return 0;
}

/* Checks, inside the transaction, that owner still holds the lease; locks the row. */
static int check_lease(struct cn_store *st, const char *ids, const char *owner, struct cn_err *err)
{
	const char *p[] = {ids, owner};
	PGresult *r = cn_store_exec(st, "check the lease",
			"SELECT 1 FROM rollouts WHERE id = $1 AND lease_owner = $2 AND lease_until > now() FOR UPDATE",
			2, p, err);
	if (!r)
		return -err->code;
	int ok = PQntuples(r) == 1;
	PQclear(r);
	if (!ok)
		return cn_fail(err, CN_EUNAVAIL, "rollout %s: lease lost to another daemon; skipping this tick", ids);
	return 0;
}

static int mark_command(struct cn_store *st, int64_t cmd_id, const char *result, struct cn_err *err)
{
	char cid[32];
	snprintf(cid, sizeof cid, "%lld", (long long)cmd_id);
	const char *p[] = {cid, result};
	return cn_store_run(st, "mark the command handled",
		     "UPDATE commands SET handled_at = clock_timestamp(), result = $2 WHERE id = $1", 2, p, err);
}

static int insert_decision(struct cn_store *st, const struct cn_record *rec, const char *ids, int64_t *dec_id,
			   struct cn_err *err)
{
	const struct cn_tick_result *res = rec->res;
	char step[16], weight[32];
	snprintf(step, sizeof step, "%d", res->next.step);
	snprintf(weight, sizeof weight, "%.6g", res->next.weight);
	const char *p[] = {ids, step, weight, cn_decision_name(res->decision), cn_phase_name(rec->row->phase),
			   cn_phase_name(res->next.phase), res->reason};
	PGresult *r = cn_store_exec(st, "record the decision",
			"INSERT INTO decisions (rollout_id, step, weight, decision, phase_before, phase_after, reason) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
			7, p, err);
	if (!r)
		return -err->code;
	*dec_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	char did[32];
	snprintf(did, sizeof did, "%lld", (long long)*dec_id);
	for (int i = 0; i < res->nslos && i < rec->policy->nslos; i++) {
		const struct cn_slo_result *s = &res->slos[i];
		char v[5][32];
		const double nums[5] = {s->candidate, s->baseline, s->objective, s->n_candidate, s->n_baseline};
		const char *pv[9] = {did, rec->policy->slos[i].name, cn_verdict_name(s->verdict)};
		for (int k = 0; k < 5; k++) {
			snprintf(v[k], sizeof v[k], "%.9g", nums[k]);
			pv[3 + k] = isfinite(nums[k]) ? v[k] : NULL;
		}
		pv[8] = s->why;
		int rc = cn_store_run(st, "record an slo verdict",
			       "INSERT INTO slo_verdicts (decision_id, slo, verdict, candidate, baseline, objective, "
			       "n_candidate, n_baseline, why) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			       9, pv, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int insert_measurement(struct cn_store *st, const struct cn_record *rec, const char *ids, struct cn_err *err)
{
	char step[16], weight[32], at[32];
	snprintf(step, sizeof step, "%d", rec->row->step);
	snprintf(weight, sizeof weight, "%.6g", rec->row->weight);
	snprintf(at, sizeof at, "%.3f", (double)rec->obs->at_ms / 1000.0);
	json_t *b = cn_sample_to_json(&rec->obs->baseline);
	json_t *c = cn_sample_to_json(&rec->obs->candidate);
	char *bs = json_dumps(b, JSON_COMPACT);
	char *cs = json_dumps(c, JSON_COMPACT);
	const char *p[] = {ids, at, step, weight, bs, cs};
	int rc = cn_store_run(st, "record the measurement",
		       "INSERT INTO measurements (rollout_id, at, step, weight, baseline, candidate) "
		       "VALUES ($1, to_timestamp($2::double precision), $3, $4, $5::jsonb, $6::jsonb)",
		       6, p, err);
	free(bs);
	free(cs);
	json_decref(b);
	json_decref(c);
	return rc;
}

int cn_store_record(struct cn_store *st, const struct cn_record *rec, struct cn_err *err)
{
	const struct cn_rollout_row *row = rec->row;
	const char *actor = rec->command ? rec->command->actor : NULL;
	char ids[32];
	int rc;
	snprintf(ids, sizeof ids, "%lld", (long long)row->id);
	if ((rc = cn_store_begin(st, err)) < 0)
		return rc;
	if ((rc = check_lease(st, ids, rec->owner, err)) < 0)
		goto out;

	if (rec->command && rec->command_error) {
		/* A refused command changes nothing but its own row, and is audited with the reason. */
		char msg[CN_ERR_MSG_MAX + 16];
		snprintf(msg, sizeof msg, "refused: %s", rec->command_error);
		if ((rc = mark_command(st, rec->command->id, msg, err)) < 0)
			goto out;
		json_t *d = json_pack("{s:s, s:s}", "command", cn_command_name(rec->command->kind), "error",
				      rec->command_error);
		if ((rc = audit(st, row->id, row->service, actor, "command.refused", rec->command->reason, d, err)) < 0)
			goto out;
		return cn_store_commit(st, err);
	}

	const struct cn_tick_result *res = rec->res;
	bool terminal = cn_phase_is_terminal(res->next.phase);
	json_t *sj = cn_state_to_json(&res->next);
	json_t *status = json_pack("{s:s, s:s, s:o}", "decision", cn_decision_name(res->decision), "reason",
				   res->reason, "slos", cn_slo_results_to_json(rec->policy, res->slos, res->nslos));
	char *state_s = json_dumps(sj, JSON_COMPACT);
	char *status_s = json_dumps(status, JSON_COMPACT);
	json_decref(sj);
	json_decref(status);
	char step[16], weight[32], next[32];
	snprintf(step, sizeof step, "%d", res->next.step);
	snprintf(weight, sizeof weight, "%.17g", res->next.weight);
	snprintf(next, sizeof next, "%lld", (long long)rec->next_tick_ms);
	const char *p[] = {ids, cn_phase_name(res->next.phase), step, weight, state_s, status_s, res->reason, next,
			   terminal ? "t" : "f"};
	rc = cn_store_run(st, "update the rollout",
		   "UPDATE rollouts SET phase = $2, step = $3, weight = $4, state = $5::jsonb, status = $6::jsonb, "
		   "reason = $7, updated_at = clock_timestamp(), "
		   "next_tick_at = clock_timestamp() + $8::bigint * interval '1 ms', "
		   "finished_at = CASE WHEN $9::boolean THEN clock_timestamp() END WHERE id = $1",
		   9, p, err);
	free(state_s);
	free(status_s);
	if (rc < 0)
		goto out;

	if (rec->obs && (rc = insert_measurement(st, rec, ids, err)) < 0)
		goto out;
	int64_t dec_id = 0;
	if ((rc = insert_decision(st, rec, ids, &dec_id, err)) < 0)
		goto out;

	if (rec->command) {
		if ((rc = mark_command(st, rec->command->id, "accepted", err)) < 0)
			goto out;
		/* promote --full skips the remaining steps and analysis: the emergency path, marked as such. */
		json_t *d = json_pack("{s:s, s:I, s:b}", "command", cn_command_name(rec->command->kind), "decision_id",
				      (json_int_t)dec_id, "emergency", rec->command->kind == CN_CMD_PROMOTE_FULL);
		if ((rc = audit(st, row->id, row->service, actor, "command.accepted", rec->command->reason, d, err)) < 0)
			goto out;
	} else {
		json_t *d = json_pack("{s:I, s:s, s:i, s:f, s:s, s:o}", "decision_id", (json_int_t)dec_id, "decision",
				      cn_decision_name(res->decision), "step", res->next.step, "weight",
				      res->next.weight, "daemon", rec->owner,
				      "slos", cn_slo_results_to_json(rec->policy, res->slos, res->nslos));
		if ((rc = audit(st, row->id, row->service, NULL, "tick", res->reason, d, err)) < 0)
			goto out;
	}
	if (res->next.phase != row->phase) {
		json_t *d = json_pack("{s:s, s:s}", "from", cn_phase_name(row->phase), "to",
				      cn_phase_name(res->next.phase));
		if ((rc = audit(st, row->id, row->service, actor, "state.changed", res->reason, d, err)) < 0)
			goto out;
	}
	if (res->set_weight && res->weight != row->weight) {
		json_t *d = json_pack("{s:f, s:f}", "from", row->weight, "to", res->weight);
		if ((rc = audit(st, row->id, row->service, actor, "weight.intended", res->reason, d, err)) < 0)
			goto out;
	}
	if (terminal && !cn_phase_is_terminal(row->phase)) {
		/* Commands still queued can no longer apply: answer them now, so no operator waits on them. */
		char msg[64];
		snprintf(msg, sizeof msg, "refused: rollout has ended (%s)", cn_phase_name(res->next.phase));
		const char *pc[] = {ids, msg};
		if ((rc = cn_store_run(st, "refuse the queued commands",
				       "UPDATE commands SET handled_at = clock_timestamp(), result = $2 "
				       "WHERE rollout_id = $1 AND handled_at IS NULL",
				       2, pc, err)) < 0)
			goto out;
	}
	if (res->next.phase == CN_PHASE_PROMOTED && row->phase != CN_PHASE_PROMOTED) {
		char slot[8];
		snprintf(slot, sizeof slot, "%d", row->candidate_slot);
		const char *ps[] = {row->service, slot, row->candidate};
		if ((rc = cn_store_run(st, "make the candidate's slot live",
				"UPDATE services SET live_slot = $2, live_version = $3, updated_at = now() "
				"WHERE name = $1",
				3, ps, err)) < 0)
			goto out;
		json_t *d = json_pack("{s:i, s:s}", "live_slot", row->candidate_slot, "live_version", row->candidate);
		if ((rc = audit(st, row->id, row->service, actor, "service.live_changed", NULL, d, err)) < 0)
			goto out;
	}
	return cn_store_commit(st, err);
out:
	cn_store_rollback(st);
	return rc;
}

int cn_store_weight_confirmed(struct cn_store *st, int64_t id, const char *owner, double weight, bool reconciled,
			      double found, struct cn_err *err)
{
	char ids[32], w[32];
	int rc;
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(w, sizeof w, "%.17g", weight);
	if ((rc = cn_store_begin(st, err)) < 0)
		return rc;
	const char *p[] = {ids, w, owner};
	/* Only the lease holder confirms, and only the intent still recorded: a daemon that lost its lease, or that
	 * acted on an intent someone has since changed, must not mark the gateway as settled. */
	PGresult *r = cn_store_exec(st, "confirm the weight",
			"UPDATE rollouts SET applied_weight = $2, updated_at = clock_timestamp() "
			"WHERE id = $1 AND weight = $2::double precision AND lease_owner = $3 AND lease_until > now() "
			"RETURNING service",
			3, p, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		rc = cn_fail(err, CN_EUNAVAIL, "rollout %s: lease lost or intent changed before the gateway was "
			     "confirmed; the lease holder reconciles", ids);
		goto out;
	}
	char service[CN_NAME_MAX] = "";
	snprintf(service, sizeof service, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	json_t *d = reconciled ? json_pack("{s:f, s:o}", "weight", weight, "found", cn_json_real(found))
			       : json_pack("{s:f}", "weight", weight);
	if ((rc = audit(st, id, service, NULL, reconciled ? "weight.reconciled" : "weight.confirmed", NULL, d, err)) < 0)
		goto out;
	return cn_store_commit(st, err);
out:
	cn_store_rollback(st);
	return rc;
}

int cn_store_hold(struct cn_store *st, int64_t id, const char *owner, const char *reason, int64_t next_tick_ms,
		  struct cn_err *err)
{
	char ids[32], next[32];
	int rc;
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(next, sizeof next, "%lld", (long long)next_tick_ms);
	if ((rc = cn_store_begin(st, err)) < 0)
		return rc;
	if ((rc = check_lease(st, ids, owner, err)) < 0)
		goto out;
	const char *p[] = {ids, reason, next};
	PGresult *r = cn_store_exec(st, "record the hold",
			"UPDATE rollouts r SET reason = CASE WHEN r.phase IN ('promoted','rolled_back','aborted','failed') "
			"THEN r.reason ELSE $2 END, updated_at = clock_timestamp(), "
			"next_tick_at = clock_timestamp() + $3::bigint * interval '1 ms' "
			"FROM (SELECT reason AS old FROM rollouts WHERE id = $1) o "
			"WHERE r.id = $1 RETURNING o.old IS DISTINCT FROM $2, r.service",
			3, p, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	bool changed = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	char service[CN_NAME_MAX] = "";
	if (PQntuples(r) == 1)
		snprintf(service, sizeof service, "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (changed && (rc = audit(st, id, service, NULL, "hold", reason, NULL, err)) < 0)
		goto out;
	return cn_store_commit(st, err);
out:
	cn_store_rollback(st);
	return rc;
}

int cn_store_command_add(struct cn_store *st, int64_t id, enum cn_command_kind kind, const char *reason,
			 int64_t *cmd_id, struct cn_err *err)
{
	char ids[32];
	int rc;
	if (reason && strlen(reason) > CN_REASON_MAX)
		return cn_fail(err, CN_EUSAGE, "--reason is %zu characters long; the limit is %d", strlen(reason),
			       CN_REASON_MAX);
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	if ((rc = cn_store_begin(st, err)) < 0)
		return rc;
	const char *p1[] = {ids};
	PGresult *r = cn_store_exec(st, "read the rollout", "SELECT phase, service FROM rollouts WHERE id = $1", 1, p1, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(r) == 0) {
		PQclear(r);
		rc = cn_fail(err, CN_EINPUT, "no rollout with id %lld; 'canaryctl rollout status' lists them",
			     (long long)id);
		goto out;
	}
	enum cn_phase ph = CN_PHASE_FAILED;
	cn_phase_from_name(PQgetvalue(r, 0, 0), &ph);
	PQclear(r);
	if (cn_phase_is_terminal(ph)) {
		rc = cn_fail(err, CN_EINPUT, "rollout %lld has ended (%s); nothing to %s", (long long)id,
			     cn_phase_name(ph), cn_command_name(kind));
		goto out;
	}
	const char *p2[] = {ids, cn_command_name(kind), reason};
	r = cn_store_exec(st, "queue the command", "INSERT INTO commands (rollout_id, kind, reason) VALUES ($1, $2, $3) RETURNING id",
	      3, p2, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	*cmd_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return cn_store_commit(st, err);
out:
	cn_store_rollback(st);
	return rc;
}

int cn_store_command_result(struct cn_store *st, int64_t cmd_id, bool *done, bool *accepted, char *msg,
			    size_t msgsize, struct cn_err *err)
{
	char cid[32];
	snprintf(cid, sizeof cid, "%lld", (long long)cmd_id);
	const char *p[] = {cid};
	PGresult *r = cn_store_exec(st, "read the command", "SELECT handled_at IS NOT NULL, coalesce(result, '') FROM commands "
						"WHERE id = $1", 1, p, err);
	if (!r)
		return -err->code;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return cn_fail(err, CN_EINTERNAL, "command %lld vanished", (long long)cmd_id);
	}
	*done = PQgetvalue(r, 0, 0)[0] == 't';
	const char *res = PQgetvalue(r, 0, 1);
	*accepted = strcmp(res, "accepted") == 0;
	snprintf(msg, msgsize, "%s", strncmp(res, "refused: ", 9) == 0 ? res + 9 : res);
	PQclear(r);
	return 0;
}

/* Runs a query that returns one json column per row; collects the rows into an array (or the first row). */
static int json_query(struct cn_store *st, const char *what, const char *sql, int n, const char *const *params,
		      bool one, json_t **out, struct cn_err *err)
{
	PGresult *r = cn_store_exec(st, what, sql, n, params, err);
	if (!r)
		return -err->code;
	json_t *arr = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_error_t je;
		json_t *o = json_loads(PQgetvalue(r, i, 0), JSON_DECODE_ANY, &je);
		if (o)
			json_array_append_new(arr, o);
	}
	PQclear(r);
	if (one) {
		json_t *first = json_incref(json_array_get(arr, 0));
		json_decref(arr);
		if (!first)
			return cn_fail(err, CN_EINPUT, "no rollout with id %s; 'canaryctl rollout status' lists them",
				       params[0]);
		*out = first;
		return 0;
	}
	*out = arr;
	return 0;
}

#define STATUS_JSON                                                                                               \
	"SELECT json_build_object('id', r.id, 'service', r.service, 'candidate', r.candidate, "                 \
	"'baseline', r.baseline, 'candidate_slot', r.candidate_slot, 'phase', r.phase, 'step', r.step, "         \
	"'steps', (SELECT count(*) FROM policy_steps s WHERE s.policy_id = r.policy_id), "                       \
	"'weight', r.weight, 'applied_weight', r.applied_weight, 'policy', p.name, 'policy_version', p.version, " \
	"'reason', r.reason, 'status', r.status, 'created_at', r.created_at, 'created_by', r.created_by, "        \
	"'updated_at', r.updated_at, 'finished_at', r.finished_at, 'lease_owner', r.lease_owner)::text "          \
	"FROM rollouts r JOIN policies p ON p.id = r.policy_id "

int cn_store_rollout_status(struct cn_store *st, int64_t id, json_t **out, struct cn_err *err)
{
	if (id > 0) {
		char ids[32];
		snprintf(ids, sizeof ids, "%lld", (long long)id);
		const char *p[] = {ids};
		return json_query(st, "read the rollout", STATUS_JSON "WHERE r.id = $1", 1, p, true, out, err);
	}
	return json_query(st, "list active rollouts",
			  STATUS_JSON "WHERE r.phase IN ('pending','progressing','paused','awaiting_approval') "
				      "ORDER BY r.id",
			  0, NULL, false, out, err);
}

int cn_store_may_command(struct cn_store *st, struct cn_err *err)
{
	PGresult *r = cn_store_exec(st, "check the role's privileges",
				    "SELECT has_table_privilege('commands', 'INSERT')", 0, NULL, err);
	if (!r)
		return -err->code;
	bool may = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!may)
		return cn_fail(err, CN_EPERM, "permission denied: role '%s' may not steer rollouts; it needs to be a "
			       "member of canary_operator", cn_store_user(st));
	return 0;
}

int cn_store_lease_renew(struct cn_store *st, int64_t id, const char *owner, int64_t lease_ms, double *weight,
			 struct cn_err *err)
{
	char ids[32], lease[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	const char *p[] = {ids, owner, lease};
	PGresult *r = cn_store_exec(st, "renew the lease",
				    "UPDATE rollouts SET lease_until = now() + $3::bigint * interval '1 ms' "
				    "WHERE id = $1 AND lease_owner = $2 AND lease_until > now() RETURNING weight",
				    3, p, err);
	if (!r)
		return -err->code;
	int ok = PQntuples(r) == 1;
	if (ok)
		*weight = strtod(PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	if (!ok)
		return cn_fail(err, CN_EUNAVAIL, "rollout %s: lease lost to another daemon; not touching the gateway", ids);
	return 0;
}
