/* The rows of a rollout's report: a few read-only queries in one snapshot, turned into typed rows (the report
 * module, controller/report/, makes the page from them). Strings stay in the query results, which the rows own
 * (struct cn_read); the structs borrow them. */
#include "canary/store_report.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define CN_STR_(x) #x
#define CN_STR(x) CN_STR_(x)
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* The query results fill() reads, in the order cn_store_report runs them. */
struct report_rows {
	PGresult *head, *slos, *weights, *points, *markers, *events;
};

enum { R_ID, R_SERVICE, R_CANDIDATE, R_BASELINE, R_POLICY, R_POLICY_VERSION, R_PHASE, R_STEP, R_STEPS, R_WEIGHT,
       R_CREATED_BY, R_REASON, R_STARTED, R_FINISHED, R_NOW, R_APPROVED_BY, R_EVENTS_TOTAL, R_FEATURES };
enum { P_SLO, P_AT, P_CANDIDATE, P_BASELINE, P_OBJECTIVE, P_VERDICT };
enum { E_ID, E_AT, E_ACTOR, E_KIND, E_REASON, E_DATA, E_HASH };

static int fill(struct cn_report_rows *r, const struct report_rows *q, struct cn_err *err)
{
	const PGresult *h = q->head;

	r->rollout = (struct cn_report_rollout){
		.id = cn_col_int(h, 0, R_ID), .service = cn_col_str(h, 0, R_SERVICE),
		.candidate = cn_col_str(h, 0, R_CANDIDATE), .baseline = cn_col_str(h, 0, R_BASELINE),
		.policy = cn_col_str(h, 0, R_POLICY), .policy_version = (int)cn_col_int(h, 0, R_POLICY_VERSION),
		.phase = cn_col_str(h, 0, R_PHASE), .step = (int)cn_col_int(h, 0, R_STEP),
		.steps = (int)cn_col_int(h, 0, R_STEPS), .weight = cn_col_real(h, 0, R_WEIGHT),
		.created_by = cn_col_str(h, 0, R_CREATED_BY), .approved_by = cn_col_str(h, 0, R_APPROVED_BY),
		.reason = cn_col_str(h, 0, R_REASON), .started_ms = cn_col_int(h, 0, R_STARTED),
		.finished_ms = cn_col_int(h, 0, R_FINISHED), .now_ms = cn_col_int(h, 0, R_NOW),
		.features = cn_col_str(h, 0, R_FEATURES),
	};

	size_t nw = (size_t)PQntuples(q->weights), ns = (size_t)PQntuples(q->slos), np = (size_t)PQntuples(q->points);
	size_t nm = (size_t)PQntuples(q->markers), ne = (size_t)PQntuples(q->events);
	struct cn_report_weight *w = cn_read_alloc(r->rd, nw, sizeof *w, err);
	struct cn_report_slo *s = w ? cn_read_alloc(r->rd, ns, sizeof *s, err) : NULL;
	struct cn_report_slo_point *p = s ? cn_read_alloc(r->rd, np, sizeof *p, err) : NULL;
	struct cn_report_marker *m = p ? cn_read_alloc(r->rd, nm, sizeof *m, err) : NULL;
	struct cn_report_audit_row *e = m ? cn_read_alloc(r->rd, ne, sizeof *e, err) : NULL;
	if (!e)
		return -err->code;

	for (size_t i = 0; i < nw; i++)
		w[i] = (struct cn_report_weight){cn_col_int(q->weights, (int)i, 0), cn_col_real(q->weights, (int)i, 1)};

	/* Points come ordered by SLO, then time; each SLO's points are one slice of p. */
	for (size_t i = 0; i < ns; i++)
		s[i] = (struct cn_report_slo){cn_col_str(q->slos, (int)i, 0), cn_col_str(q->slos, (int)i, 1), NULL, 0};
	size_t k = 0;
	for (size_t j = 0; j < ns; j++) {
		const char *name = s[j].name ? s[j].name : "";
		s[j].points = p + k;
		for (; k < np; k++) {
			const char *slo = cn_col_str(q->points, (int)k, P_SLO);
			if (!slo || strcmp(slo, name) != 0)
				break;
			p[k] = (struct cn_report_slo_point){
				cn_col_int(q->points, (int)k, P_AT), cn_col_real(q->points, (int)k, P_CANDIDATE),
				cn_col_real(q->points, (int)k, P_BASELINE), cn_col_real(q->points, (int)k, P_OBJECTIVE),
				cn_col_str(q->points, (int)k, P_VERDICT)};
			s[j].npoints++;
		}
	}

	for (size_t i = 0; i < nm; i++)
		m[i] = (struct cn_report_marker){cn_col_int(q->markers, (int)i, 0), cn_col_str(q->markers, (int)i, 1),
						 cn_col_str(q->markers, (int)i, 2), cn_col_str(q->markers, (int)i, 3)};

	for (size_t i = 0; i < ne; i++) {
		int row = (int)i;
		e[i] = (struct cn_report_audit_row){
			cn_col_int(q->events, row, E_ID), cn_col_int(q->events, row, E_AT),
			cn_col_str(q->events, row, E_ACTOR), cn_col_str(q->events, row, E_KIND),
			cn_col_str(q->events, row, E_REASON), cn_col_str(q->events, row, E_DATA),
			cn_col_str(q->events, row, E_HASH)};
	}

	r->weights = w, r->nweights = nw;
	r->slos = s, r->nslos = ns;
	r->markers = m, r->nmarkers = nm;
	r->events = e, r->nevents = ne;
	r->events_total = (size_t)cn_col_int(h, 0, R_EVENTS_TOTAL);
	return 0;
}

int cn_store_report(struct cn_store *st, int64_t id, struct cn_report_rows **out, struct cn_err *err)
{
	char ids[32];
	int rc = 0;
	bool in_tx = false;
	struct cn_report_rows *d = calloc(1, sizeof *d);
	struct report_rows q = {0};
	snprintf(ids, sizeof ids, "%" PRId64, id);
	const char *p[] = {ids};
	if (!d || !(d->rd = cn_read_new())) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading the report of rollout %s", ids);
		goto out;
	}

	if ((rc = cn_store_run(st, "begin a read-only snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
			       NULL, err)) < 0)
		goto out;
	in_tx = true;

	q.head = cn_read_query(d->rd, st, "read the rollout",
		"SELECT r.id, r.service, r.candidate, r.baseline, p.name AS policy, p.version AS policy_version, "
		"r.phase, r.step, (SELECT count(*) FROM policy_steps s WHERE s.policy_id = r.policy_id)::int AS steps, "
		"r.weight, r.created_by, r.reason, "
		MS("r.created_at") " AS started_ms, " MS("r.finished_at") " AS finished_ms, "
		MS("clock_timestamp()") " AS now_ms, "
		"(SELECT string_agg(DISTINCT c.actor, ', ') FROM commands c WHERE c.rollout_id = r.id "
		"  AND c.kind = 'approve' AND c.result = 'accepted') AS approved_by, "
		"(SELECT count(*) FROM audit_events e WHERE e.rollout_id = r.id) AS events_total, "
		"nullif(r.status->'economics'->>'features_line', '') AS features "
		"FROM rollouts r JOIN policies p ON p.id = r.policy_id WHERE r.id = $1",
		1, p, err);
	if (!q.head) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(q.head) == 0) {
		rc = cn_fail(err, CN_EINPUT, "no rollout with id %s; 'canaryctl history' lists them", ids);
		goto out;
	}

	q.slos = cn_read_query(d->rd, st, "read the rollout's slos",
		"SELECT s.name, s.metric FROM policy_slos s JOIN rollouts r ON r.policy_id = s.policy_id "
		"WHERE r.id = $1 ORDER BY s.idx",
		1, p, err);
	/* The weight from each decision that changed it (the first decision always counts). */
	q.weights = q.slos ? cn_read_query(d->rd, st, "read the weight changes",
		"SELECT at_ms, weight FROM (SELECT " MS("at") " AS at_ms, weight, "
		"  lag(weight) OVER (ORDER BY id) AS prev FROM decisions WHERE rollout_id = $1) d "
		"WHERE prev IS NULL OR prev <> weight ORDER BY at_ms LIMIT 10000",
		1, p, err) : NULL;
	/* Each SLO's verdicts in time order; a long rollout is thinned to about CN_REPORT_SLO_POINTS_MAX points per
	 * SLO, keeping every failure and the last point. The SLO order matches the policy's. */
	q.points = q.weights ? cn_read_query(d->rd, st, "read the slo verdicts",
		"SELECT x.slo, x.at_ms, x.candidate, x.baseline, x.objective, x.verdict FROM ("
		"  SELECT v.slo, " MS("d.at") " AS at_ms, v.candidate, v.baseline, v.objective, v.verdict, d.id, "
		"    row_number() OVER w AS rn, count(*) OVER (PARTITION BY v.slo) AS n "
		"  FROM slo_verdicts v JOIN decisions d ON d.id = v.decision_id WHERE d.rollout_id = $1 "
		"  WINDOW w AS (PARTITION BY v.slo ORDER BY d.id)) x "
		"JOIN rollouts r ON r.id = $1 JOIN policy_slos s ON s.policy_id = r.policy_id AND s.name = x.slo "
		"WHERE x.verdict = 'fail' OR x.rn = x.n "
		"  OR (x.rn - 1) % greatest(1, ceil(x.n / " CN_STR(CN_REPORT_SLO_POINTS_MAX) ".0))::bigint = 0 "
		"ORDER BY s.idx, x.id",
		1, p, err) : NULL;
	/* Decision points: the daemon's decisions other than hold (those a command caused appear as the command),
	 * and every operator command with its result. */
	q.markers = q.points ? cn_read_query(d->rd, st, "read the decision points",
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
		1, p, err) : NULL;
	q.events = q.markers ? cn_read_query(d->rd, st, "read the audit events",
		"SELECT id, " MS("at") " AS at_ms, actor, kind, reason, data::text AS data, hash FROM audit_events "
		"WHERE rollout_id = $1 ORDER BY id LIMIT " CN_STR(CN_REPORT_EVENTS_MAX),
		1, p, err) : NULL;
	if (!q.events) {
		rc = -err->code;
		goto out;
	}
	in_tx = false;
	if ((rc = cn_store_commit(st, err)) < 0)
		goto out;
	if ((rc = fill(d, &q, err)) < 0)
		goto out;
	*out = d;
	d = NULL;
out:
	if (in_tx)
		cn_store_rollback(st);
	cn_report_rows_free(d);
	return rc;
}

void cn_report_rows_free(struct cn_report_rows *rows)
{
	if (!rows)
		return;
	cn_read_free(rows->rd);
	free(rows);
}
