/* The data of a rollout's HTML report: a few read-only queries in one snapshot, turned into the plain structs the
 * renderer (controller/util/report_html.c) takes. Strings stay in the query results (JSON), which the report data
 * owns; the structs borrow them. */
#include "canary/store_report.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "canary/store_audit.h"
#include "store_int.h"

struct cn_report_data {
	struct cn_report report;
	json_t *head, *slos, *weights, *points, *markers, *events;
	struct cn_report_weight *w;
	struct cn_report_slo *s;
	struct cn_report_slo_point *p;
	struct cn_report_marker *m;
	struct cn_report_event *e;
};

#define CN_STR_(x) #x
#define CN_STR(x) CN_STR_(x)
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static double jnum(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static int64_t jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

static json_t *query(struct cn_store *st, const char *what, const char *sql, const char *ids, struct cn_err *err)
{
	const char *p[] = {ids};
	return cn_store_query_json(st, what, sql, 1, p, err);
}

static int fill(struct cn_report_data *d, struct cn_err *err)
{
	struct cn_report *r = &d->report;
	const json_t *h = json_array_get(d->head, 0);
	size_t i;
	const json_t *row;

	r->rollout = (struct cn_report_rollout){
		.id = jint(h, "id"), .service = jstr(h, "service"), .candidate = jstr(h, "candidate"),
		.baseline = jstr(h, "baseline"), .policy = jstr(h, "policy"),
		.policy_version = (int)jint(h, "policy_version"), .phase = jstr(h, "phase"), .step = (int)jint(h, "step"),
		.steps = (int)jint(h, "steps"), .weight = jnum(h, "weight"), .created_by = jstr(h, "created_by"),
		.approved_by = jstr(h, "approved_by"), .reason = jstr(h, "reason"), .started_ms = jint(h, "started_ms"),
		.finished_ms = jint(h, "finished_ms"), .now_ms = jint(h, "now_ms"),
	};

	size_t nw = json_array_size(d->weights), ns = json_array_size(d->slos), np = json_array_size(d->points);
	size_t nm = json_array_size(d->markers), ne = json_array_size(d->events);
	d->w = calloc(nw ? nw : 1, sizeof *d->w);
	d->s = calloc(ns ? ns : 1, sizeof *d->s);
	d->p = calloc(np ? np : 1, sizeof *d->p);
	d->m = calloc(nm ? nm : 1, sizeof *d->m);
	d->e = calloc(ne ? ne : 1, sizeof *d->e);
	if (!d->w || !d->s || !d->p || !d->m || !d->e)
		return cn_fail(err, CN_EINTERNAL, "out of memory reading the report of rollout %" PRId64,
			       r->rollout.id);

	json_array_foreach(d->weights, i, row)
		d->w[i] = (struct cn_report_weight){jint(row, "at_ms"), jnum(row, "weight")};

	/* Points come ordered by SLO, then time; each SLO's points are one slice of d->p. */
	json_array_foreach(d->slos, i, row)
		d->s[i] = (struct cn_report_slo){jstr(row, "name"), jstr(row, "metric"), NULL, 0};
	size_t k = 0;
	for (size_t j = 0; j < ns; j++) {
		const char *name = d->s[j].name ? d->s[j].name : "";
		d->s[j].points = d->p + k;
		for (; k < np; k++) {
			row = json_array_get(d->points, k);
			const char *slo = jstr(row, "slo");
			if (!slo || strcmp(slo, name) != 0)
				break;
			d->p[k] = (struct cn_report_slo_point){jint(row, "at_ms"), jnum(row, "candidate"),
							       jnum(row, "baseline"), jnum(row, "objective"),
							       jstr(row, "verdict")};
			d->s[j].npoints++;
		}
	}

	json_array_foreach(d->markers, i, row)
		d->m[i] = (struct cn_report_marker){jint(row, "at_ms"), jstr(row, "kind"), jstr(row, "actor"),
						    jstr(row, "detail")};

	json_array_foreach(d->events, i, row) {
		char what[1024];
		cn_audit_describe(jstr(row, "kind"), jstr(row, "data"), what, sizeof what);
		/* The description lives in the row, so the JSON owns it; no UTF-8 check (it may be cut mid-character
		 * only at 1023 bytes, and the renderer copies bytes). */
		json_t *ws = json_string_nocheck(what);
		if (!ws || json_object_set_new((json_t *)row, "what", ws) < 0)
			return cn_fail(err, CN_EINTERNAL, "out of memory reading the report of rollout %" PRId64,
				       r->rollout.id);
		d->e[i] = (struct cn_report_event){jint(row, "id"), jint(row, "at_ms"), jstr(row, "actor"),
						   jstr(row, "kind"), jstr(row, "what"), jstr(row, "reason"),
						   jstr(row, "hash")};
	}

	r->weights = d->w, r->nweights = nw;
	r->slos = d->s, r->nslos = ns;
	r->markers = d->m, r->nmarkers = nm;
	r->events = d->e, r->nevents = ne;
	r->events_total = (size_t)jint(h, "events_total");
	return 0;
}

int cn_store_report(struct cn_store *st, int64_t id, struct cn_report_data **out, struct cn_err *err)
{
	char ids[32];
	int rc = 0;
	bool in_tx = false;
	struct cn_report_data *d = calloc(1, sizeof *d);
	snprintf(ids, sizeof ids, "%" PRId64, id);
	if (!d)
		return cn_fail(err, CN_EINTERNAL, "out of memory reading the report of rollout %s", ids);

	if ((rc = cn_store_run(st, "begin a read-only snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
			       NULL, err)) < 0)
		goto out;
	in_tx = true;

	d->head = query(st, "read the rollout",
		"SELECT r.id, r.service, r.candidate, r.baseline, p.name AS policy, p.version AS policy_version, "
		"r.phase, r.step, (SELECT count(*) FROM policy_steps s WHERE s.policy_id = r.policy_id)::int AS steps, "
		"r.weight, r.created_by, r.reason, "
		MS("r.created_at") " AS started_ms, " MS("r.finished_at") " AS finished_ms, "
		MS("clock_timestamp()") " AS now_ms, "
		"(SELECT string_agg(DISTINCT c.actor, ', ') FROM commands c WHERE c.rollout_id = r.id "
		"  AND c.kind = 'approve' AND c.result = 'accepted') AS approved_by, "
		"(SELECT count(*) FROM audit_events e WHERE e.rollout_id = r.id) AS events_total "
		"FROM rollouts r JOIN policies p ON p.id = r.policy_id WHERE r.id = $1",
		ids, err);
	if (!d->head) {
		rc = -err->code;
		goto out;
	}
	if (json_array_size(d->head) == 0) {
		rc = cn_fail(err, CN_EINPUT, "no rollout with id %s; 'canaryctl history' lists them", ids);
		goto out;
	}

	d->slos = query(st, "read the rollout's slos",
		"SELECT s.name, s.metric FROM policy_slos s JOIN rollouts r ON r.policy_id = s.policy_id "
		"WHERE r.id = $1 ORDER BY s.idx",
		ids, err);
	/* The weight from each decision that changed it (the first decision always counts). */
	d->weights = d->slos ? query(st, "read the weight changes",
		"SELECT at_ms, weight FROM (SELECT " MS("at") " AS at_ms, weight, "
		"  lag(weight) OVER (ORDER BY id) AS prev FROM decisions WHERE rollout_id = $1) d "
		"WHERE prev IS NULL OR prev <> weight ORDER BY at_ms LIMIT 10000",
		ids, err) : NULL;
	/* Each SLO's verdicts in time order; a long rollout is thinned to about CN_REPORT_SLO_POINTS_MAX points per
	 * SLO, keeping every failure and the last point. The SLO order matches the policy's. */
	d->points = d->weights ? query(st, "read the slo verdicts",
		"SELECT x.slo, x.at_ms, x.candidate, x.baseline, x.objective, x.verdict FROM ("
		"  SELECT v.slo, " MS("d.at") " AS at_ms, v.candidate, v.baseline, v.objective, v.verdict, d.id, "
		"    row_number() OVER w AS rn, count(*) OVER (PARTITION BY v.slo) AS n "
		"  FROM slo_verdicts v JOIN decisions d ON d.id = v.decision_id WHERE d.rollout_id = $1 "
		"  WINDOW w AS (PARTITION BY v.slo ORDER BY d.id)) x "
		"JOIN rollouts r ON r.id = $1 JOIN policy_slos s ON s.policy_id = r.policy_id AND s.name = x.slo "
		"WHERE x.verdict = 'fail' OR x.rn = x.n "
		"  OR (x.rn - 1) % greatest(1, ceil(x.n / " CN_STR(CN_REPORT_SLO_POINTS_MAX) ".0))::bigint = 0 "
		"ORDER BY s.idx, x.id",
		ids, err) : NULL;
	/* Decision points: the daemon's decisions other than hold (those a command caused appear as the command),
	 * and every operator command with its result. */
	d->markers = d->points ? query(st, "read the decision points",
		"SELECT at_ms, kind, actor, detail FROM ("
		"  SELECT " MS("d.at") " AS at_ms, d.decision AS kind, 'canaryd' AS actor, d.reason AS detail "
		"  FROM decisions d WHERE d.rollout_id = $1 AND d.decision <> 'hold' AND NOT EXISTS ("
		"    SELECT 1 FROM audit_events e WHERE e.rollout_id = d.rollout_id AND e.kind = 'command.accepted' "
		"      AND e.data->>'decision_id' = d.id::text) "
		"  UNION ALL "
		"  SELECT " MS("coalesce(c.handled_at, c.created_at)") ", "
		"    CASE WHEN c.kind IN ('approve', 'promote_full') THEN c.kind ELSE 'cmd:' || c.kind END, c.actor, "
		"    concat_ws(': ', coalesce(c.result, 'not handled yet'), nullif(c.reason, '')) "
		"  FROM commands c WHERE c.rollout_id = $1) m "
		"ORDER BY at_ms LIMIT " CN_STR(CN_REPORT_MARKERS_MAX),
		ids, err) : NULL;
	d->events = d->markers ? query(st, "read the audit events",
		"SELECT id, " MS("at") " AS at_ms, actor, kind, reason, data::text AS data, hash FROM audit_events "
		"WHERE rollout_id = $1 ORDER BY id LIMIT " CN_STR(CN_REPORT_EVENTS_MAX),
		ids, err) : NULL;
	if (!d->events) {
		rc = -err->code;
		goto out;
	}
	in_tx = false;
	if ((rc = cn_store_commit(st, err)) < 0)
		goto out;
	if ((rc = fill(d, err)) < 0)
		goto out;
	*out = d;
	d = NULL;
out:
	if (in_tx)
		cn_store_rollback(st);
	cn_report_data_free(d);
	return rc;
}

const struct cn_report *cn_report_data_get(const struct cn_report_data *d)
{
	return &d->report;
}

void cn_report_data_free(struct cn_report_data *d)
{
	if (!d)
		return;
	json_decref(d->head);
	json_decref(d->slos);
	json_decref(d->weights);
	json_decref(d->points);
	json_decref(d->markers);
	json_decref(d->events);
	free(d->w);
	free(d->s);
	free(d->p);
	free(d->m);
	free(d->e);
	free(d);
}
