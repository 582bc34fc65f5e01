/* Versioned policies in Postgres: apply (new immutable version when the source changed), list, show. */
#include "canary/policy.h"
#include "canary/sha256.h"
#include "canary/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_xact_lock(class, hashtext(name)) classes: one per kind of object applied. */
#define LOCK_CLASS_POLICY "1668178288" /* "canp" */

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

/* A double as a SQL parameter: shortest round-tripping text, or SQL NULL for NaN. */
static const char *num_param(double v, char *buf, size_t len)
{
	if (!isfinite(v))
		return NULL;
	snprintf(buf, len, "%.17g", v);
	return buf;
}

int cn_store_policy_apply(struct cn_store *s, const struct cn_policy *p, const char *source, int *version_out,
			  bool *created_out, struct cn_err *err)
{
	const char *what = "apply policies";
	char sha[CN_SHA256_HEX_LEN], ver[16], id[32] = "", idx[16], b1[40], b2[40], b3[40], b4[40], b5[40];
	json_t *spec = NULL;
	char *spec_text = NULL;
	PGresult *res = NULL;
	int rc, version = 1;
	bool created = false;

	cn_sha256_hex(source, strlen(source), sha);
	spec = cn_policy_to_json(p);
	spec_text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
	if (!spec_text)
		return cn_fail(err, CN_EINTERNAL, "cannot encode policy '%s' as json", p->name);

	rc = cn_store_begin(s, err);
	if (rc)
		goto out;
	const char *lk[2] = {LOCK_CLASS_POLICY, p->name};
	rc = cn_store_run(s, what, "SELECT pg_advisory_xact_lock($1::int, hashtext($2))", 2, lk, err);
	if (rc)
		goto out;
	const char *q1[1] = {p->name};
	res = cn_store_exec(s, what,
			    "SELECT version, content_sha256 FROM policies WHERE name = $1 ORDER BY version DESC LIMIT 1",
			    1, q1, err);
	if (!res) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(res) == 1) {
		version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
		if (strcmp(PQgetvalue(res, 0, 1), sha) == 0) {
			rc = cn_store_commit(s, err);
			goto out;
		}
		version++;
	}
	PQclear(res);
	snprintf(ver, sizeof ver, "%d", version);
	const char *q2[5] = {p->name, ver, sha, source, spec_text};
	res = cn_store_exec(s, what,
			    "INSERT INTO policies (name, version, content_sha256, source, spec)"
			    " VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id",
			    5, q2, err);
	if (!res) {
		rc = -err->code;
		goto out;
	}
	snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
	for (int i = 0; i < p->nsteps; i++) {
		const struct cn_step *st = &p->steps[i];
		snprintf(idx, sizeof idx, "%d", i);
		snprintf(b2, sizeof b2, "%lld", (long long)st->hold_ms);
		const char *q3[5] = {id, idx, num_param(st->weight, b1, sizeof b1), b2, st->approval ? "t" : "f"};
		rc = cn_store_run(s, what,
				  "INSERT INTO policy_steps (policy_id, idx, weight_pct, hold_ms, approval)"
				  " VALUES ($1, $2, $3, $4, $5)",
				  5, q3, err);
		if (rc)
			goto out;
	}
	for (int i = 0; i < p->nslos; i++) {
		const struct cn_slo *sl = &p->slos[i];
		snprintf(idx, sizeof idx, "%d", i);
		const char *q4[8] = {id,
				     idx,
				     sl->name,
				     cn_metric_name(sl->metric),
				     num_param(sl->quantile, b3, sizeof b3),
				     num_param(sl->max, b4, sizeof b4),
				     num_param(sl->max_increase, b5, sizeof b5),
				     num_param(sl->tolerance, b1, sizeof b1)};
		rc = cn_store_run(s, what,
				  "INSERT INTO policy_slos (policy_id, idx, name, metric, quantile, max_value,"
				  " max_increase, tolerance) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
				  8, q4, err);
		if (rc)
			goto out;
	}
	const char *q5[3] = {p->name, ver, sha};
	rc = cn_store_run(s, what,
			  "INSERT INTO audit_events (kind, data) VALUES ('policy.applied',"
			  " jsonb_build_object('policy', $1::text, 'version', $2::int, 'content_sha256', $3::text))",
			  3, q5, err);
	if (rc)
		goto out;
	rc = cn_store_commit(s, err);
	created = true;
out:
	PQclear(res);
	free(spec_text);
	json_decref(spec);
	if (rc) {
		cn_store_rollback(s);
		return rc;
	}
	*version_out = version;
	*created_out = created;
	return 0;
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
