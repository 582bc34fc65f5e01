/* Failover drills in PostgreSQL. Every change goes through the functions of migrations/0010_drills.sql (the actor
 * from session_user, the lease checked, the audit written in the same transaction); this file calls them, builds
 * the documents canaryd hands them from the core's state, and reads drills back into typed rows. */
#include "canary/store_drills.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/rollout.h"
#include "store_int.h"

static void fmt_id(char *buf, size_t size, int64_t v)
{
	snprintf(buf, size, "%lld", (long long)v);
}

int cn_store_drill_start(struct cn_store *st, const char *service, const char *to, const char *policy,
			 int64_t hold_ms, int64_t baseline_ms, const char *reason, int64_t *id_out,
			 struct cn_err *err)
{
	char hold[32], base[32];
	fmt_id(hold, sizeof hold, hold_ms);
	fmt_id(base, sizeof base, baseline_ms);
	const char *p[] = {service, to, policy, hold, base, reason};
	PGresult *r = cn_store_exec(st, "start a drill", "SELECT canary.start_drill($1, $2, $3, $4, $5, $6)", 6, p,
				    err);
	if (!r)
		return -err->code;
	*id_out = cn_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int cn_store_drill_abort(struct cn_store *st, int64_t id, const char *reason, struct cn_err *err)
{
	char ids[32];
	fmt_id(ids, sizeof ids, id);
	const char *p[] = {ids, reason};
	return cn_store_run(st, "abort a drill", "SELECT canary.abort_drill($1, $2)", 2, p, err);
}

int cn_store_drill_claim(struct cn_store *st, const char *owner, int64_t lease_ms, int64_t *ids, bool *fresh,
			 int max, int *n, int64_t *db_now_ms, struct cn_err *err)
{
	return cn_store_claim_rows(st, "claim due drills", "SELECT now_ms, id, fresh FROM canary.drill_claim($1, $2, $3)",
				   owner, lease_ms, max, ids, fresh, n, db_now_ms, NULL, err);
}

int cn_store_drill_renew(struct cn_store *st, int64_t id, const char *owner, int64_t lease_ms, double *weight,
			 struct cn_err *err)
{
	char ids[32], lease[32];
	fmt_id(ids, sizeof ids, id);
	fmt_id(lease, sizeof lease, lease_ms);
	const char *p[] = {ids, owner, lease};
	PGresult *r = cn_store_exec(st, "renew a drill's lease", "SELECT canary.drill_renew($1, $2, $3)", 3, p, err);
	if (!r)
		return -err->code;
	*weight = cn_col_real(r, 0, 0);
	PQclear(r);
	return 0;
}

int cn_store_drill_release(struct cn_store *st, const char *owner, struct cn_err *err)
{
	const char *p[] = {owner};
	return cn_store_run(st, "release drill leases", "SELECT canary.drill_release_leases($1)", 1, p, err);
}

/* A number, or null when it is not finite. */
static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *numbers_json(const struct cn_drill_numbers *n)
{
	return json_pack("{s:o, s:o, s:o, s:o}", "requests", num(n->requests), "errors", num(n->errors), "error_rate",
			 num(n->error_rate), "p99_s", num(n->p99_s));
}

static json_t *figures_json(const struct cn_drill_figures *f)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "shift_s", num(f->shift_s), "hold_s",
			 num(f->hold_s), "restore_s", num(f->restore_s), "baseline", numbers_json(&f->baseline),
			 "shift", numbers_json(&f->shift), "hold", numbers_json(&f->hold), "hold_primary",
			 numbers_json(&f->hold_primary), "restore", numbers_json(&f->restore));
}

static json_t *status_json(const struct cn_drill_state *s, const struct cn_policy *policy)
{
	json_t *arr = json_array();
	for (int i = 0; arr && i < s->nslos && i < policy->nslos; i++) {
		const struct cn_slo_result *v = &s->slos[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "slo", policy->slos[i].name, "verdict",
				      cn_verdict_name(v->verdict), "why", v->why, "secondary", num(v->candidate),
				      "primary", num(v->baseline), "objective", num(v->objective));
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr ? json_pack("{s:o}", "slos", arr) : NULL;
}

int cn_store_drill_record(struct cn_store *st, int64_t id, const char *owner, const struct cn_drill_state *s,
			  const struct cn_drill_figures *f, const struct cn_policy *policy, bool tick,
			  int64_t next_tick_ms, struct cn_err *err)
{
	CN_BUG_ON(!s || !f || !policy || !owner);
	struct cn_drill_numbers tp, ts;
	char *text = NULL, ids[32];
	int rc = 0;
	json_t *doc = json_pack("{s:s, s:o, s:f, s:s, s:I, s:o, s:o}", "phase", cn_drill_phase_name(s->phase),
				"outcome", cn_drill_ended(s->outcome) ? json_string(cn_drill_phase_name(s->outcome))
								       : json_null(),
				"weight", s->weight, "reason", s->reason, "next_tick_ms", (json_int_t)next_tick_ms,
				"figures", figures_json(f), "status", status_json(s, policy));
	if (doc && tick) {
		cn_drill_numbers(&s->tick_pri, &tp);
		cn_drill_numbers(&s->tick_sec, &ts);
		if (json_object_set_new(doc, "tick", json_pack("{s:o, s:o}", "primary", numbers_json(&tp), "secondary",
								numbers_json(&ts)))) {
			json_decref(doc);
			doc = NULL;
		}
	}
	if (!doc || !(text = json_dumps(doc, JSON_COMPACT))) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	fmt_id(ids, sizeof ids, id);
	const char *p[] = {ids, owner, text};
	rc = cn_store_run(st, "record a drill's turn", "SELECT canary.drill_record($1, $2, $3)", 3, p, err);
out:
	free(text);
	json_decref(doc);
	return rc;
}

int cn_store_drill_confirm(struct cn_store *st, int64_t id, const char *owner, double weight, bool reconciled,
			   struct cn_err *err)
{
	char ids[32], w[32];
	fmt_id(ids, sizeof ids, id);
	snprintf(w, sizeof w, "%.17g", weight);
	const char *p[] = {ids, owner, w, reconciled ? "t" : "f"};
	return cn_store_run(st, "confirm a drill's gateway share", "SELECT canary.drill_confirm_weight($1, $2, $3, $4)",
			    4, p, err);
}

int cn_store_drill_start_scheduled(struct cn_store *st, int *n, struct cn_err *err)
{
	PGresult *r = cn_store_exec(st, "start scheduled drills", "SELECT * FROM canary.start_scheduled_drills()", 0,
				    NULL, err);
	if (!r)
		return -err->code;
	if (n)
		*n = PQntuples(r);
	PQclear(r);
	return 0;
}

void cn_drill_row_free(struct cn_drill_row *row)
{
	if (!row)
		return;
	free(row->policy_source);
	free(row->service_source);
	free(row);
}

static void copy_col(const PGresult *r, int row, int col, char *dst, size_t size)
{
	const char *v = cn_col_str(r, row, col);
	snprintf(dst, size, "%s", v ? v : "");
}

/* A number of a stored document: NAN when absent or null. */
static double doc_num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A string of a stored document: "" when absent. */
static const char *jstr(const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : "";
}

static void numbers_from(const json_t *o, struct cn_drill_numbers *n)
{
	n->requests = doc_num(o, "requests");
	n->errors = doc_num(o, "errors");
	n->error_rate = doc_num(o, "error_rate");
	n->p99_s = doc_num(o, "p99_s");
}

static int parse_doc(const char *text, json_t **out, struct cn_err *err)
{
	json_error_t je;
	*out = text ? json_loads(text, 0, &je) : NULL;
	if (text && !*out)
		return cn_fail(err, CN_EINTERNAL, "a stored drill document is not JSON: %s", je.text);
	return 0;
}

int cn_store_drill_get(struct cn_store *st, int64_t id, struct cn_drill_row **out, struct cn_err *err)
{
	char ids[32];
	struct cn_drill_row *row = NULL;
	json_t *fig = NULL, *status = NULL;
	int rc = 0;
	fmt_id(ids, sizeof ids, id);
	const char *p[] = {ids};
	PGresult *r = cn_store_exec(st, "read the drill",
			"SELECT d.service, d.primary_slot, d.secondary_slot, v.spec->'slots'->d.primary_slot->>'name', "
			"       v.spec->'slots'->d.secondary_slot->>'name', d.hold_ms, d.baseline_ms, d.phase, d.outcome, "
			"       d.weight, d.applied_weight, d.reason, d.scheduled, d.abort_requested_at IS NOT NULL, "
			"       d.abort_requested_by, d.abort_reason, d.created_by, " CN_SQL_US("d.created_at") ", "
			CN_SQL_US("d.finished_at") ", d.policy_id, p.name, p.version, p.source, v.source, "
			"       d.figures::text, d.status::text "
			"FROM drills d JOIN policies p ON p.id = d.policy_id "
			"JOIN service_versions v ON v.id = d.service_version_id WHERE d.id = $1",
			1, p, err);
	if (!r)
		return -err->code;
	if (PQntuples(r) == 0) {
		rc = cn_fail(err, CN_EINPUT, "no drill with id %lld; 'canaryctl drill status' lists them", (long long)id);
		goto out;
	}
	if (!(row = calloc(1, sizeof *row))) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	row->id = id;
	copy_col(r, 0, 0, row->service, sizeof row->service);
	row->primary_slot = (int)cn_col_int(r, 0, 1);
	row->secondary_slot = (int)cn_col_int(r, 0, 2);
	copy_col(r, 0, 3, row->primary, sizeof row->primary);
	copy_col(r, 0, 4, row->secondary, sizeof row->secondary);
	row->hold_ms = cn_col_int(r, 0, 5);
	row->baseline_ms = cn_col_int(r, 0, 6);
	row->outcome = CN_DRILL_PENDING;
	if (cn_drill_phase_parse(cn_col_str(r, 0, 7), &row->phase) < 0 ||
	    (cn_col_str(r, 0, 8) && cn_drill_phase_parse(cn_col_str(r, 0, 8), &row->outcome) < 0)) {
		rc = cn_fail(err, CN_EINTERNAL, "drill %lld has an unknown phase '%s'", (long long)id,
			     cn_col_str(r, 0, 7));
		goto out;
	}
	row->weight = cn_col_real(r, 0, 9);
	row->applied_weight = cn_col_real(r, 0, 10);
	copy_col(r, 0, 11, row->reason, sizeof row->reason);
	row->scheduled = cn_col_bool(r, 0, 12);
	row->abort_requested = cn_col_bool(r, 0, 13);
	copy_col(r, 0, 14, row->abort_by, sizeof row->abort_by);
	copy_col(r, 0, 15, row->abort_reason, sizeof row->abort_reason);
	copy_col(r, 0, 16, row->created_by, sizeof row->created_by);
	row->created_us = cn_col_time(r, 0, 17);
	row->finished_us = cn_col_time(r, 0, 18);
	row->policy_id = cn_col_int(r, 0, 19);
	copy_col(r, 0, 20, row->policy_name, sizeof row->policy_name);
	row->policy_version = (int)cn_col_int(r, 0, 21);
	row->policy_source = strdup(cn_col_str(r, 0, 22) ? cn_col_str(r, 0, 22) : "");
	row->service_source = strdup(cn_col_str(r, 0, 23) ? cn_col_str(r, 0, 23) : "");
	if (!row->policy_source || !row->service_source) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	if ((rc = parse_doc(cn_col_str(r, 0, 24), &fig, err)) < 0 ||
	    (rc = parse_doc(cn_col_str(r, 0, 25), &status, err)) < 0)
		goto out;
	if (fig) {
		row->has_figures = true;
		row->figures.shift_s = doc_num(fig, "shift_s");
		row->figures.hold_s = doc_num(fig, "hold_s");
		row->figures.restore_s = doc_num(fig, "restore_s");
		numbers_from(json_object_get(fig, "baseline"), &row->figures.baseline);
		numbers_from(json_object_get(fig, "shift"), &row->figures.shift);
		numbers_from(json_object_get(fig, "hold"), &row->figures.hold);
		numbers_from(json_object_get(fig, "hold_primary"), &row->figures.hold_primary);
		numbers_from(json_object_get(fig, "restore"), &row->figures.restore);
	}
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(status, "slos"), i, v)
	{
		if (row->nslos >= CN_MAX_SLOS)
			break;
		snprintf(row->slos[row->nslos].slo, sizeof row->slos[0].slo, "%s",
			 jstr(v, "slo"));
		snprintf(row->slos[row->nslos].verdict, sizeof row->slos[0].verdict, "%s",
			 jstr(v, "verdict"));
		snprintf(row->slos[row->nslos].why, sizeof row->slos[0].why, "%s",
			 jstr(v, "why"));
		row->nslos++;
	}
	*out = row;
	row = NULL;
out:
	json_decref(fig);
	json_decref(status);
	cn_drill_row_free(row);
	PQclear(r);
	return rc;
}

int cn_store_drill_ids(struct cn_store *st, const char *service, bool active_only, int64_t *ids, int max, int *n,
		       struct cn_err *err)
{
	char lim[16];
	snprintf(lim, sizeof lim, "%d", max);
	const char *p[] = {service, active_only ? "t" : "f", lim};
	PGresult *r = cn_store_exec(st, "list drills",
			"SELECT id FROM drills WHERE ($1::text IS NULL OR service = $1) "
			"AND (NOT $2::boolean OR phase IN ('pending', 'baseline', 'shifting', 'holding', 'restoring')) "
			"ORDER BY id DESC LIMIT $3",
			3, p, err);
	if (!r)
		return -err->code;
	int k = 0;
	for (int i = 0; i < PQntuples(r) && k < max; i++)
		ids[k++] = cn_col_int(r, i, 0);
	*n = k;
	PQclear(r);
	return 0;
}

int cn_store_drill_ticks(struct cn_store *st, int64_t id, struct cn_drill_tick_row **out, int *n, struct cn_err *err)
{
	char ids[32];
	fmt_id(ids, sizeof ids, id);
	const char *p[] = {ids};
	int rc = 0;
	struct cn_drill_tick_row *rows = NULL;
	PGresult *r = cn_store_exec(st, "read a drill's ticks",
				    "SELECT " CN_SQL_US("at") ", phase, weight, data::text FROM drill_ticks "
				    "WHERE drill_id = $1 ORDER BY id",
				    1, p, err);
	if (!r)
		return -err->code;
	int nt = PQntuples(r);
	if (nt > 0 && !(rows = calloc((size_t)nt, sizeof *rows))) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
		goto out;
	}
	for (int i = 0; i < nt; i++) {
		json_t *d = NULL;
		rows[i].at_us = cn_col_time(r, i, 0);
		if (cn_drill_phase_parse(cn_col_str(r, i, 1), &rows[i].phase) < 0)
			rows[i].phase = CN_DRILL_PENDING;
		rows[i].weight = cn_col_real(r, i, 2);
		if ((rc = parse_doc(cn_col_str(r, i, 3), &d, err)) < 0)
			goto out;
		numbers_from(json_object_get(d, "primary"), &rows[i].primary);
		numbers_from(json_object_get(d, "secondary"), &rows[i].secondary);
		json_decref(d);
	}
	*out = rows;
	*n = nt;
	rows = NULL;
out:
	free(rows);
	PQclear(r);
	return rc;
}

int cn_store_drill_events(struct cn_store *st, int64_t id, struct cn_drill_event **out, int *n, struct cn_err *err)
{
	char ids[32];
	fmt_id(ids, sizeof ids, id);
	const char *p[] = {ids};
	struct cn_drill_event *ev = NULL;
	PGresult *r = cn_store_exec(st, "read a drill's audit events",
				    "SELECT " CN_SQL_US("at") ", actor, kind, reason FROM audit_events "
				    "WHERE rollout_id IS NULL AND kind LIKE 'drill.%' AND data->>'drill' = $1 ORDER BY id",
				    1, p, err);
	if (!r)
		return -err->code;
	int ne = PQntuples(r);
	if (ne > 0 && !(ev = calloc((size_t)ne, sizeof *ev))) {
		PQclear(r);
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	}
	for (int i = 0; i < ne; i++) {
		ev[i].at_us = cn_col_time(r, i, 0);
		copy_col(r, i, 1, ev[i].actor, sizeof ev[i].actor);
		copy_col(r, i, 2, ev[i].kind, sizeof ev[i].kind);
		copy_col(r, i, 3, ev[i].reason, sizeof ev[i].reason);
	}
	PQclear(r);
	*out = ev;
	*n = ne;
	return 0;
}
