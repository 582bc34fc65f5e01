/* Versioned policies in Postgres: apply (new immutable version when the source changed), list, show. */
#include "canary/policy.h"
#include "canary/spec_json.h"
#include "canary/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int cn_store_policy_apply(struct cn_store *s, const struct cn_policy *p, const char *source, int *version_out,
			  bool *created_out, struct cn_err *err)
{
	json_t *spec = cn_policy_to_json(p);
	if (!spec)
		return cn_fail(err, CN_EINTERNAL, "cannot encode policy '%s' as json", p->name);
	return cn_store_apply_version(s, "apply policies", "SELECT version, created FROM canary.apply_policy($1, $2, $3)",
				      p->name, source, spec, NULL, version_out, created_out, err);
}

void cn_policy_list_free(struct cn_policy_list *l)
{
	if (!l)
		return;
	cn_read_free(l->rd);
	free(l);
}

int cn_store_policy_list(struct cn_store *s, struct cn_policy_list **out, struct cn_err *err)
{
	struct cn_policy_list *l = calloc(1, sizeof *l);
	int rc = 0;
	if (!l || !(l->rd = cn_read_new())) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory listing policies");
		goto out;
	}
	PGresult *r = cn_read_query(l->rd, s, "list policies",
			  "SELECT p.name, p.version, c.versions, p.content_sha256, " CN_SQL_US("p.created_at") ","
			  " p.created_by,"
			  " (SELECT count(*) FROM policy_steps WHERE policy_id = p.id)::int,"
			  " (SELECT count(*) FROM policy_slos WHERE policy_id = p.id)::int"
			  " FROM policies p"
			  " JOIN (SELECT name, max(version) AS version, count(*)::int AS versions FROM policies"
			  "       GROUP BY name) c USING (name, version)"
			  " ORDER BY p.name",
			  0, NULL, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	l->n = (size_t)PQntuples(r);
	if (!(l->items = cn_read_alloc(l->rd, l->n, sizeof *l->items, err))) {
		rc = -err->code;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++)
		l->items[i] = (struct cn_policy_info){
			.name = cn_col_str(r, i, 0), .version = (int)cn_col_int(r, i, 1),
			.versions = (int)cn_col_int(r, i, 2), .content_sha256 = cn_col_str(r, i, 3),
			.created_us = cn_col_time(r, i, 4), .created_by = cn_col_str(r, i, 5),
			.steps = (int)cn_col_int(r, i, 6), .slos = (int)cn_col_int(r, i, 7),
		};
	*out = l;
	l = NULL;
out:
	cn_policy_list_free(l);
	return rc;
}

void cn_policy_version_free(struct cn_policy_version *v)
{
	if (!v)
		return;
	cn_read_free(v->rd);
	free(v);
}

enum { V_ID, V_NAME, V_VERSION, V_LATEST, V_SHA, V_CREATED, V_CREATED_BY, V_SOURCE, V_SPEC, V_DESCRIPTION,
       V_ON_FAILURE, V_HAS_ANALYSIS, V_INTERVAL, V_MIN_REQUESTS, V_FAILING_TICKS, V_INCONCLUSIVE_TIMEOUT, V_JUDGE,
       V_ON_INCONCLUSIVE };

int cn_store_policy_show(struct cn_store *s, const char *name, int version, struct cn_policy_version **out,
			 struct cn_err *err)
{
	const char *what = "show policies";
	char ver[16], id[32];
	struct cn_policy_version *v = calloc(1, sizeof *v);
	PGresult *r, *steps, *slos;
	int rc = 0;
	snprintf(ver, sizeof ver, "%d", version);
	const char *q[2] = {name, ver};
	const char *qi[1] = {id};

	if (!v || !(v->rd = cn_read_new())) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading policy '%s'", name);
		goto out;
	}
	r = cn_read_query(v->rd, s, what,
			  "SELECT p.id, p.name, p.version,"
			  " (SELECT max(version) FROM policies WHERE name = $1),"
			  " p.content_sha256, " CN_SQL_US("p.created_at") ", p.created_by, p.source, p.spec::text,"
			  " p.spec->>'description', p.spec->>'on_failure', p.spec ? 'analysis',"
			  " (p.spec->'analysis'->>'interval_ms')::bigint, (p.spec->'analysis'->>'min_requests')::bigint,"
			  " (p.spec->'analysis'->>'failing_ticks')::bigint,"
			  " (p.spec->'analysis'->>'inconclusive_timeout_ms')::bigint,"
			  " p.spec->'analysis'->>'judge', p.spec->'analysis'->>'on_inconclusive'"
			  " FROM policies p WHERE p.name = $1 AND ($2::int = 0 OR p.version = $2::int)"
			  " ORDER BY p.version DESC LIMIT 1",
			  2, q, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(r) == 0) {
		PGresult *latest = cn_read_query(v->rd, s, what, "SELECT max(version) FROM policies WHERE name = $1", 1,
						 q, err);
		if (!latest)
			rc = -err->code;
		else if (version == 0 || PQntuples(latest) == 0 || PQgetisnull(latest, 0, 0))
			rc = cn_fail(err, CN_EINPUT, "no policy '%s'; see 'canaryctl policy list', or apply it with "
				     "'canaryctl policy apply FILE'", name);
		else
			rc = cn_fail(err, CN_EINPUT, "policy '%s' has no version %d (versions 1 to %lld exist)", name,
				     version, (long long)cn_col_int(latest, 0, 0));
		goto out;
	}
	*v = (struct cn_policy_version){
		.name = cn_col_str(r, 0, V_NAME), .version = (int)cn_col_int(r, 0, V_VERSION),
		.latest_version = (int)cn_col_int(r, 0, V_LATEST), .content_sha256 = cn_col_str(r, 0, V_SHA),
		.created_us = cn_col_time(r, 0, V_CREATED), .created_by = cn_col_str(r, 0, V_CREATED_BY),
		.source = cn_col_str(r, 0, V_SOURCE), .spec_json = cn_col_str(r, 0, V_SPEC),
		.description = cn_col_str(r, 0, V_DESCRIPTION), .on_failure = cn_col_str(r, 0, V_ON_FAILURE),
		.has_analysis = cn_col_bool(r, 0, V_HAS_ANALYSIS), .interval_ms = cn_col_int(r, 0, V_INTERVAL),
		.min_requests = cn_col_int(r, 0, V_MIN_REQUESTS), .failing_ticks = cn_col_int(r, 0, V_FAILING_TICKS),
		.inconclusive_timeout_ms = cn_col_int(r, 0, V_INCONCLUSIVE_TIMEOUT), .judge = cn_col_str(r, 0, V_JUDGE),
		.on_inconclusive = cn_col_str(r, 0, V_ON_INCONCLUSIVE), .rd = v->rd,
	};
	snprintf(id, sizeof id, "%lld", (long long)cn_col_int(r, 0, V_ID));
	steps = cn_read_query(v->rd, s, what,
			      "SELECT idx, weight_pct, hold_ms, approval FROM policy_steps WHERE policy_id = $1 "
			      "ORDER BY idx", 1, qi, err);
	slos = steps ? cn_read_query(v->rd, s, what,
				     "SELECT idx, name, metric, quantile, max_value, max_increase, tolerance "
				     "FROM policy_slos WHERE policy_id = $1 ORDER BY idx", 1, qi, err)
		     : NULL;
	if (!slos) {
		rc = -err->code;
		goto out;
	}
	v->nsteps = (size_t)PQntuples(steps);
	v->nslos = (size_t)PQntuples(slos);
	if (!(v->steps = cn_read_alloc(v->rd, v->nsteps, sizeof *v->steps, err)) ||
	    !(v->slos = cn_read_alloc(v->rd, v->nslos, sizeof *v->slos, err))) {
		rc = -err->code;
		goto out;
	}
	for (int i = 0; i < PQntuples(steps); i++)
		v->steps[i] = (struct cn_policy_step_row){(int)cn_col_int(steps, i, 0), cn_col_real(steps, i, 1),
							  cn_col_int(steps, i, 2), cn_col_bool(steps, i, 3)};
	for (int i = 0; i < PQntuples(slos); i++)
		v->slos[i] = (struct cn_policy_slo_row){(int)cn_col_int(slos, i, 0), cn_col_str(slos, i, 1),
							cn_col_str(slos, i, 2), cn_col_real(slos, i, 3),
							cn_col_real(slos, i, 4), cn_col_real(slos, i, 5),
							cn_col_real(slos, i, 6)};
	*out = v;
	v = NULL;
out:
	cn_policy_version_free(v);
	return rc;
}
