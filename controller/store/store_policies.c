/* Versioned policies in Postgres: apply (new immutable version when the source changed), list, show. */
#include "canary/policy.h"
#include "canary/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *cn_policy_to_json(const struct cn_policy *p)
{
	json_t *steps = json_array(), *slos = json_array(), *doc = NULL;
	if (!steps || !slos)
		goto out;
	for (int i = 0; i < p->nsteps; i++) {
		const struct cn_step *st = &p->steps[i];
		if (json_array_append_new(steps, json_pack("{s:o, s:I, s:b}", "weight", num_or_null(st->weight),
							   "hold_ms", (json_int_t)st->hold_ms, "approval",
							   st->approval)))
			goto out;
	}
	for (int i = 0; i < p->nslos; i++) {
		const struct cn_slo *sl = &p->slos[i];
		if (json_array_append_new(slos, json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "name", sl->name, "metric",
							  cn_metric_name(sl->metric), "quantile",
							  num_or_null(sl->quantile), "max", num_or_null(sl->max),
							  "max_increase", num_or_null(sl->max_increase), "tolerance",
							  num_or_null(sl->tolerance))))
			goto out;
	}
	const struct cn_analysis *a = &p->analysis;
	doc = json_pack("{s:s, s:s, s:O, s:{s:I, s:I, s:i, s:I, s:s, s:s, s:o}, s:O, s:s, s:I, s:s, s:b}",
			"name", p->name, "description", p->description, "steps", steps, "analysis",
			"interval_ms", (json_int_t)a->interval_ms, "min_requests", (json_int_t)a->min_requests,
			"failing_ticks", a->failing_ticks, "inconclusive_timeout_ms",
			(json_int_t)a->inconclusive_timeout_ms, "on_inconclusive", cn_fallback_name(a->on_inconclusive),
			"judge", cn_judge_name(a->judge), "false_rollback_budget", num_or_null(a->false_rollback_budget),
			"slos", slos, "on_failure", cn_fallback_name(p->on_failure), "approval_timeout_ms",
			(json_int_t)p->approval_timeout_ms, "on_approval_timeout",
			cn_fallback_name(p->on_approval_timeout), "approver_must_differ", p->approver_must_differ);
out:
	json_decref(steps);
	json_decref(slos);
	return doc;
}

int cn_store_policy_apply(struct cn_store *s, const struct cn_policy *p, const char *source, int *version_out,
			  bool *created_out, struct cn_err *err)
{
	json_t *spec = cn_policy_to_json(p);
	if (!spec)
		return cn_fail(err, CN_EINTERNAL, "cannot encode policy '%s' as json", p->name);
	return cn_store_apply_version(s, "apply policies", "SELECT version, created FROM canary.apply_policy($1, $2, $3)",
				      p->name, source, spec, NULL, version_out, created_out, err);
}

json_t *cn_store_policy_list(struct cn_store *s, struct cn_err *err)
{
	return cn_store_query_json(s, "list policies",
			  "SELECT p.name, p.version, c.versions, p.content_sha256,"
			  " to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at,"
			  " p.created_by,"
			  " (SELECT count(*) FROM policy_steps WHERE policy_id = p.id)::int AS steps,"
			  " (SELECT count(*) FROM policy_slos WHERE policy_id = p.id)::int AS slos"
			  " FROM policies p"
			  " JOIN (SELECT name, max(version) AS version, count(*)::int AS versions FROM policies"
			  "       GROUP BY name) c USING (name, version)"
			  " ORDER BY p.name",
			  0, NULL, err);
}

json_t *cn_store_policy_show(struct cn_store *s, const char *name, int version, struct cn_err *err)
{
	const char *what = "show policies";
	char ver[16];
	json_t *rows = NULL, *doc = NULL, *steps = NULL, *slos = NULL;
	snprintf(ver, sizeof ver, "%d", version);
	const char *q[2] = {name, ver};

	rows = cn_store_query_json(s, what,
			  "SELECT p.id, p.name, p.version,"
			  " (SELECT max(version) FROM policies WHERE name = $1) AS latest_version,"
			  " p.content_sha256,"
			  " to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created_at,"
			  " p.created_by, p.source, p.spec"
			  " FROM policies p WHERE p.name = $1 AND ($2::int = 0 OR p.version = $2::int)"
			  " ORDER BY p.version DESC LIMIT 1",
			  2, q, err);
	if (!rows)
		goto out;
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		rows = cn_store_query_json(s, what, "SELECT max(version) AS latest FROM policies WHERE name = $1", 1, q, err);
		if (!rows)
			goto out;
		json_t *latest = json_object_get(json_array_get(rows, 0), "latest");
		if (version == 0 || !json_is_integer(latest))
			cn_fail(err, CN_EINPUT, "no policy '%s'; see 'canaryctl policy list', or apply it with "
				"'canaryctl policy apply FILE'", name);
		else
			cn_fail(err, CN_EINPUT, "policy '%s' has no version %d (versions 1 to %lld exist)", name,
				version, (long long)json_integer_value(latest));
		goto out;
	}
	doc = json_incref(json_array_get(rows, 0));
	char id[32];
	snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(doc, "id")));
	const char *qi[1] = {id};
	steps = cn_store_query_json(s, what,
			   "SELECT idx, weight_pct, hold_ms, approval FROM policy_steps WHERE policy_id = $1 ORDER BY idx",
			   1, qi, err);
	if (!steps)
		goto fail;
	slos = cn_store_query_json(s, what,
			  "SELECT idx, name, metric, quantile, max_value, max_increase, tolerance FROM policy_slos"
			  " WHERE policy_id = $1 ORDER BY idx",
			  1, qi, err);
	if (!slos)
		goto fail;
	json_object_del(doc, "id");
	if (json_object_set(doc, "steps", steps) || json_object_set(doc, "slos", slos)) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		goto fail;
	}
	goto out;
fail:
	json_decref(doc);
	doc = NULL;
out:
	json_decref(rows);
	json_decref(steps);
	json_decref(slos);
	return doc;
}
