/* Rollouts in PostgreSQL. Every change goes through one of the SECURITY DEFINER functions in schema canary
 * (migrations/0005_write_functions.sql), which takes the actor from session_user, checks the request and writes the
 * change with its audit events in one transaction; this file only reads rows and calls those functions. The daemon
 * commits the intended weight before it calls the gateway (write-ahead intent) and confirms it afterwards. */
#include "canary/store_rollouts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/dynbuf.h"
#include "canary/json_arena.h"
#include "canary/rollout.h"
#include "canary/state_json.h"
#include "store_int.h"

/* The first value of a one-row result as an int64 (the id a function returned). */
static int64_t first_int(const PGresult *r)
{
	return PQntuples(r) > 0 ? cn_col_int(r, 0, 0) : 0;
}

int cn_store_rollout_create(struct cn_store *st, const char *service, const char *candidate, const char *policy,
			    const char *reason, int64_t *id_out, struct cn_err *err)
{
	/* canary.start_rollout checks the service, the policy and that no other rollout is active, as the session's
	 * role, and audits rollout.started itself. */
	const char *p[] = {service, candidate, policy, reason};
	PGresult *r = cn_store_exec(st, "start a rollout", "SELECT canary.start_rollout($1, $2, $3, $4)", 4, p, err);
	if (!r)
		return -err->code;
	*id_out = first_int(r);
	PQclear(r);
	return 0;
}

int cn_store_claim_rows(struct cn_store *st, const char *what, const char *sql, const char *owner, int64_t lease_ms,
			int max, int64_t *ids, bool *flags, int *n, int64_t *db_now_ms, int64_t *next_due_ms,
			struct cn_err *err)
{
	CN_BUG_ON(!owner || max < 0 || (max > 0 && (!ids || !flags)) || !n);
	char lease[32], lim[16];
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	snprintf(lim, sizeof lim, "%d", max);
	const char *p[] = {owner, lease, lim};
	/* One row at least: the database's clock, with id NULL when nothing was due. */
	PGresult *r = cn_store_exec(st, what, sql, 3, p, err);
	if (!r)
		return -err->code;
	int k = 0;
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		if (PQgetisnull(r, i, 1))
			continue;
		ids[k] = cn_col_int(r, i, 1);
		flags[k] = cn_col_bool(r, i, 2);
		k++;
	}
	*n = k;
	if (db_now_ms)
		*db_now_ms = PQntuples(r) > 0 ? first_int(r) : 0;
	if (next_due_ms)
		*next_due_ms = PQntuples(r) > 0 && PQnfields(r) > 3 && !PQgetisnull(r, 0, 3) ? cn_col_int(r, 0, 3) : 0;
	PQclear(r);
	return 0;
}

int cn_store_claim_batch(struct cn_store *st, const char *owner, int64_t lease_ms, int max, struct cn_claim *c,
			 struct cn_err *err)
{
	CN_BUG_ON(!c);
	/* and when the next tick of a rollout not yet due falls (the partial index rollouts_due answers min() at
	 * once), so the caller can sleep until then instead of a whole poll interval */
	return cn_store_claim_rows(st, "claim due rollouts",
				   "SELECT now_ms, id, due, (SELECT (extract(epoch FROM min(next_tick_at)) * 1000)::bigint "
				   "  FROM rollouts WHERE phase IN ('pending', 'progressing', 'paused', 'awaiting_approval') "
				   "  AND next_tick_at > now()) FROM canary.claim($1, $2, $3)",
				   owner, lease_ms, max, c->ids, c->due, &c->n, &c->db_now_ms, &c->next_due_ms, err);
}

int cn_store_claim_commands(struct cn_store *st, const char *owner, int64_t lease_ms, int max, struct cn_claim *c,
			    struct cn_err *err)
{
	CN_BUG_ON(!c);
	c->next_due_ms = 0;
	return cn_store_claim_rows(st, "claim rollouts with commands",
				   "SELECT now_ms, id, due FROM canary.claim_commands($1, $2, $3)", owner, lease_ms, max,
				   c->ids, c->due, &c->n, &c->db_now_ms, NULL, err);
}

int cn_store_claim(struct cn_store *st, const char *owner, int64_t lease_ms, int64_t *ids, bool *due, int max,
		   int *n, int64_t *db_now_ms, struct cn_err *err)
{
	return cn_store_claim_rows(st, "claim due rollouts", "SELECT now_ms, id, due FROM canary.claim($1, $2, $3)",
				   owner, lease_ms, max, ids, due, n, db_now_ms, NULL, err);
}

int cn_store_release(struct cn_store *st, const char *owner, struct cn_err *err)
{
	CN_BUG_ON(!owner);
	const char *p[] = {owner};
	return cn_store_run(st, "release leases", "SELECT canary.release_leases($1)", 1, p, err);
}

void cn_rollout_row_free(struct cn_rollout_row *row)
{
	if (!row)
		return;
	free(row->policy_source);
	free(row->service_source);
	free(row);
}

static char *dup_value(PGresult *r, int i, int col)
{
	return strdup(PQgetisnull(r, i, col) ? "" : PQgetvalue(r, i, col));
}

static void copy_value(PGresult *r, int i, int col, char *dst, size_t size)
{
	snprintf(dst, size, "%s", PQgetisnull(r, i, col) ? "" : PQgetvalue(r, i, col));
}

/* The columns row_parse reads, in this order, with STATE the state column's expression (text or NULL). Sources are
 * NULL where the caller did not ask for them. */
#define ROW_SELECT(STATE) \
	"SELECT r.id, r.service, r.candidate, r.baseline, r.candidate_slot, r.phase, r.step, r.weight, " \
	"       r.applied_weight, r.policy_id, p.name, p.version, " \
	"       CASE WHEN $2 THEN p.source END, CASE WHEN $2 THEN v.source END, " STATE ", " \
	"       r.created_by, r.lease_owner, r.reason, " \
	"       EXISTS (SELECT 1 FROM commands c WHERE c.rollout_id = r.id AND c.handled_at IS NULL), " \
	"       (extract(epoch FROM r.next_tick_at) * 1000)::bigint, r.state_seq " \
	"FROM rollouts r JOIN policies p ON p.id = r.policy_id " \
	"JOIN service_versions v ON v.id = r.service_version_id "

/* Row i of a ROW_SELECT result as a new cn_rollout_row. */
static int row_parse(PGresult *r, int i, struct cn_rollout_row **out, struct cn_err *err)
{
	struct cn_rollout_row *row = NULL;
	json_t *js = NULL;
	int rc = 0;
	row = calloc(1, sizeof *row);
	if (!row)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	row->id = cn_col_int(r, i, 0);
	copy_value(r, i, 1, row->service, sizeof row->service);
	copy_value(r, i, 2, row->candidate, sizeof row->candidate);
	copy_value(r, i, 3, row->baseline, sizeof row->baseline);
	row->candidate_slot = (int)cn_col_int(r, i, 4);
	if (cn_phase_from_name(PQgetvalue(r, i, 5), &row->phase) < 0) {
		rc = cn_fail(err, CN_EINTERNAL, "rollout %lld has an unknown phase '%s'", (long long)row->id,
			     PQgetvalue(r, i, 5));
		goto out;
	}
	row->step = (int)cn_col_int(r, i, 6);
	row->weight = cn_col_real(r, i, 7);
	row->applied_weight = cn_col_real(r, i, 8);
	row->policy_id = cn_col_int(r, i, 9);
	copy_value(r, i, 10, row->policy_name, sizeof row->policy_name);
	row->policy_version = (int)cn_col_int(r, i, 11);
	if (!PQgetisnull(r, i, 12) && !PQgetisnull(r, i, 13)) {
		row->policy_source = dup_value(r, i, 12);
		row->service_source = dup_value(r, i, 13);
		if (!row->policy_source || !row->service_source) {
			rc = cn_fail(err, CN_EINTERNAL, "out of memory");
			goto out;
		}
	}
	if (!PQgetisnull(r, i, 14)) {
		json_error_t je;
		js = json_loads(PQgetvalue(r, i, 14), 0, &je);
		if (!js) {
			rc = cn_fail(err, CN_EINTERNAL, "rollout %lld: stored state is not JSON: %s", (long long)row->id,
				     je.text);
			goto out;
		}
		if ((rc = cn_state_from_json(js, &row->state, err)) < 0)
			goto out;
		row->has_state = true;
	}
	copy_value(r, i, 15, row->created_by, sizeof row->created_by);
	copy_value(r, i, 16, row->lease_owner, sizeof row->lease_owner);
	copy_value(r, i, 17, row->reason, sizeof row->reason);
	row->commands_pending = cn_col_bool(r, i, 18);
	row->next_tick_ms = cn_col_int(r, i, 19);
	row->state_seq = cn_col_int(r, i, 20);
	*out = row;
	row = NULL;
out:
	json_decref(js);
	cn_rollout_row_free(row);
	return rc;
}

int cn_store_rollout_get(struct cn_store *st, int64_t id, struct cn_rollout_row **out, struct cn_err *err)
{
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	const char *p[] = {ids, "true"};
	PGresult *r = cn_store_exec(st, "read the rollout", ROW_SELECT("r.state::text") "WHERE r.id = $1", 2, p, err);
	int rc = 0;
	if (!r)
		return -err->code;
	if (PQntuples(r) == 0)
		rc = cn_fail(err, CN_EINPUT, "no rollout with id %lld; 'canaryctl rollout status' lists them",
			     (long long)id);
	else
		rc = row_parse(r, 0, out, err);
	PQclear(r);
	return rc;
}

/* An array literal of n numbers, {1,2,3} (nothing to quote), or NULL when out of memory. */
static char *int_array(const int64_t *v, int n)
{
	size_t cap = (size_t)n * 21 + 3, off = 0;
	char *arr = malloc(cap);
	if (!arr)
		return NULL;
	arr[off++] = '{';
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(arr + off, cap - off, "%s%lld", i ? "," : "", (long long)v[i]);
	arr[off++] = '}';
	arr[off] = '\0';
	return arr;
}

/* cn_store_rollouts_get's sink: rows[at] */
static void into_rows(struct cn_rollout_row *row, int at, void *arg)
{
	((struct cn_rollout_row **)arg)[at] = row;
}

int cn_store_rollouts_get(struct cn_store *st, const int64_t *ids, const int64_t *held_seqs, int n, bool sources,
			  struct cn_rollout_row **rows, struct cn_err *err)
{
	CN_BUG_ON(n < 0 || (n > 0 && (!ids || !rows)));
	for (int i = 0; i < n; i++)
		rows[i] = NULL;
	int rc = cn_store_rollouts_each(st, ids, held_seqs, n, sources, into_rows, rows, err);
	if (rc < 0)
		for (int i = 0; i < n; i++) {
			cn_rollout_row_free(rows[i]);
			rows[i] = NULL;
		}
	return rc;
}

int cn_store_rollouts_each(struct cn_store *st, const int64_t *ids, const int64_t *held_seqs, int n, bool sources,
			   void (*each)(struct cn_rollout_row *row, int at, void *arg), void *arg, struct cn_err *err)
{
	CN_BUG_ON(n < 0 || (n > 0 && (!ids || !each)));
	if (n == 0)
		return 0;
	int64_t *none = NULL;
	if (!held_seqs) {
		held_seqs = none = malloc((size_t)n * sizeof *none);
		for (int i = 0; none && i < n; i++)
			none[i] = -1; /* no state_seq is negative */
	}
	char *arr = int_array(ids, n), *seqs = held_seqs ? int_array(held_seqs, n) : NULL;
	if (!arr || !seqs) {
		free(arr);
		free(seqs);
		free(none);
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	}
	const char *p[] = {arr, sources ? "true" : "false", seqs};
	PGresult *r = cn_store_exec(st, "read the claimed rollouts",
				    ROW_SELECT("CASE WHEN r.state_seq = k.seq THEN NULL ELSE r.state::text END")
				    "JOIN unnest($1::bigint[], $3::bigint[]) AS k(id, seq) ON k.id = r.id",
				    3, p, err);
	free(arr);
	free(seqs);
	if (!r) {
		free(none);
		return -err->code;
	}
	int rc = 0;
	bool *given = calloc((size_t)n, sizeof *given);
	if (!given)
		rc = cn_fail(err, CN_EINTERNAL, "out of memory");
	for (int k = 0; k < PQntuples(r) && rc == 0; k++) {
		struct cn_rollout_row *row = NULL;
		if ((rc = row_parse(r, k, &row, err)) < 0)
			break;
		int at = -1;
		for (int i = 0; i < n && at < 0; i++)
			if (ids[i] == row->id && !given[i])
				at = i;
		if (at < 0) {
			cn_rollout_row_free(row);
			continue;
		}
		/* no state, yet a stored one: the one the caller holds (a rollout before its first tick has none) */
		row->state_elided = !row->has_state && row->state_seq == held_seqs[at] && held_seqs[at] > 0;
		given[at] = true;
		each(row, at, arg);
	}
	PQclear(r);
	free(none);
	free(given);
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
			"SELECT id, kind, actor, coalesce(reason, ''), "
			"(extract(epoch FROM created_at) * 1000)::bigint FROM commands "
			"WHERE rollout_id = $1 AND handled_at IS NULL ORDER BY id LIMIT $2",
			2, p, err);
	if (!r)
		return -err->code;
	int k = 0;
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		struct cn_command_row *c = &cmds[k];
		c->id = cn_col_int(r, i, 0);
		if (cn_command_from_name(PQgetvalue(r, i, 1), &c->kind) < 0)
			continue;
		snprintf(c->actor, sizeof c->actor, "%s", PQgetvalue(r, i, 2));
		snprintf(c->reason, sizeof c->reason, "%s", PQgetvalue(r, i, 3));
		c->queued_ms = cn_col_int(r, i, 4);
		k++;
	}
	*n = k;
	PQclear(r);
	return 0;
}

/* The verdicts as rows for slo_verdicts (numbers that are not finite are left out: NULL). */
static json_t *verdict_rows(const struct cn_record *rec)
{
	const struct cn_tick_result *res = rec->res;
	json_t *arr = json_array();
	for (int i = 0; arr && i < res->nslos && i < rec->policy->nslos; i++) {
		const struct cn_slo_result *s = &res->slos[i];
		json_t *v = json_pack("{s:s, s:s, s:s}", "slo", rec->policy->slos[i].name, "verdict",
				      cn_verdict_name(s->verdict), "why", s->why);
		const char *keys[5] = {"candidate", "baseline", "objective", "n_candidate", "n_baseline"};
		const double nums[5] = {s->candidate, s->baseline, s->objective, s->n_candidate, s->n_baseline};
		for (int k = 0; v && k < 5; k++)
			if (isfinite(nums[k]))
				json_object_set_new(v, keys[k], json_real(nums[k]));
		if (!v || json_array_append_new(arr, v)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The document canary.record takes (see migrations/0005_write_functions.sql). Returns a new reference or NULL. */
static json_t *record_doc(const struct cn_record *rec)
{
	const struct cn_tick_result *res = rec->res;
	json_t *doc = json_object();
	if (!doc)
		return NULL;
	if (rec->command &&
	    json_object_set_new(doc, "command", json_pack("{s:I, s:s?}", "id", (json_int_t)rec->command->id, "error",
							  rec->command_error)))
		goto fail;
	if (rec->command && rec->command_error)
		return doc; /* a refused command changes nothing but its own row */
	json_t *status = json_pack("{s:s, s:s, s:o}", "decision", cn_decision_name(res->decision), "reason",
				   res->reason, "slos", cn_slo_results_to_json(rec->policy, res->slos, res->nslos));
	json_t *econ = cn_econ_view_to_json(&res->econ);
	if (status && econ)
		json_object_set_new(status, "economics", econ);
	else
		json_decref(econ);
	json_t *slos = cn_slo_results_to_json(rec->policy, res->slos, res->nslos);
	cn_slo_results_add_econ(slos, rec->policy, &res->econ); /* the tick's audit event carries the breakdown */
	json_t *state = cn_state_to_json(&res->next);
	if (state && rec->as_stored) {
		struct cn_err serr = {0};
		CN_BUG_ON(!rec->as_stored_scratch);
		/* a state that does not read back is not handed over: the next read of the row says what is wrong */
		if (cn_state_from_json(state, rec->as_stored_scratch, &serr) == 0)
			rec->as_stored(rec->as_stored_scratch, rec->as_stored_arg);
	}
	/* the row's version as judged: canary.record refuses the tick if anyone wrote the row since (0024) */
	if (json_object_set_new(doc, "state_seq", json_integer(rec->row->state_seq)) ||
	    json_object_set_new(doc, "phase", json_string(cn_phase_name(res->next.phase))) ||
	    json_object_set_new(doc, "step", json_integer(res->next.step)) ||
	    json_object_set_new(doc, "weight", json_real(res->next.weight)) ||
	    json_object_set_new(doc, "state", state) ||
	    json_object_set_new(doc, "status", status) ||
	    json_object_set_new(doc, "reason", json_string(res->reason)) ||
	    json_object_set_new(doc, "decision", json_string(cn_decision_name(res->decision))) ||
	    json_object_set_new(doc, "next_tick_ms", json_integer(rec->next_tick_ms)) ||
	    json_object_set_new(doc, "set_weight", json_boolean(res->set_weight)) ||
	    json_object_set_new(doc, "slos", slos) ||
	    json_object_set_new(doc, "verdicts", verdict_rows(rec)))
		goto fail;
	if (rec->obs &&
	    json_object_set_new(doc, "measurement",
				json_pack("{s:f, s:o, s:o}", "at", (double)rec->obs->at_ms / 1000.0, "baseline",
					  cn_sample_to_json(&rec->obs->baseline), "candidate",
					  cn_sample_to_json(&rec->obs->candidate))))
		goto fail;
	return doc;
fail:
	json_decref(doc);
	return NULL;
}

int cn_store_record(struct cn_store *st, const struct cn_record *rec, struct cn_err *err)
{
	CN_BUG_ON(!rec->row || !rec->policy || !rec->owner || (!rec->res && !rec->command_error));
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", (long long)rec->row->id);
	json_t *doc = record_doc(rec);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return cn_fail(err, CN_EINTERNAL, "rollout %s: cannot encode the record as json (out of memory)", ids);
	/* canary.record checks the lease, writes everything and its audit events in one statement (one transaction);
	 * the actor of a command's events is the command's own, as written when it was queued. */
	const char *p[] = {ids, rec->owner, text};
	int rc = cn_store_run(st, rec->command ? "record a command" : "record a tick",
			      "SELECT canary.record($1, $2, $3::jsonb)", 3, p, err);
	free(text);
	return rc;
}

/* json_dump_callback's sink: appends to the batch's text (a cn_dynbuf). */
static int dump_to_dynbuf(const char *buf, size_t size, void *data)
{
	return cn_dynbuf_add(data, buf, size) < 0 ? -1 : 0;
}

/* Appends rec's document to docs: its values (some 700, 50 kB of arena) dumped straight into the text, so the arena
 * never holds more than one record's and no text is copied twice. Returns 0, or -CN_EINTERNAL with err. */
static int encode_doc(const struct cn_record *rec, struct cn_dynbuf *docs, struct cn_err *err)
{
	cn_json_arena_begin();
	json_t *doc = record_doc(rec);
	int drc = doc ? json_dump_callback(doc, dump_to_dynbuf, docs, JSON_COMPACT) : -1;
	json_decref(doc);
	cn_json_arena_end();
	if (drc < 0)
		return cn_fail(err, CN_EINTERNAL, "rollout %lld: cannot encode the record as json (%s)",
			       (long long)rec->row->id,
			       cn_dynbuf_error(docs) == -CN_EINPUT ? "the batch's text would pass its cap" : "out of memory");
	return 0;
}

/* ids as a PostgreSQL array literal, "{1,2,...}" (a new string), or NULL when out of memory */
static char *id_array(const int64_t *ids, int n)
{
	size_t cap = (size_t)n * 21 + 3, off = 0;
	char *a = malloc(cap);
	if (!a)
		return NULL;
	a[off++] = '{';
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(a + off, cap - off, "%s%lld", i ? "," : "", (long long)ids[i]);
	a[off++] = '}';
	a[off] = '\0';
	return a;
}

int cn_store_record_batch_encode(const struct cn_record *recs, int n, struct cn_record_batch *out, struct cn_err *err)
{
	CN_BUG_ON(n <= 0 || n > CN_RECORD_BATCH_MAX || !recs || !out);
	memset(out, 0, sizeof *out);
	struct cn_dynbuf docs;
	cn_dynbuf_init(&docs, CN_RECORD_BATCH_TEXT_MAX);
	int rc = 0;
	snprintf(out->owner, sizeof out->owner, "%s", recs[0].owner);
	for (int i = 0; i < n; i++) {
		const struct cn_record *rec = &recs[i];
		CN_BUG_ON(!rec->row || !rec->policy || !rec->res || rec->command || strcmp(rec->owner, out->owner) != 0);
		out->ids[i] = rec->row->id;
		if (cn_dynbuf_adds(&docs, i ? "," : "[") < 0) {
			rc = cn_fail(err, CN_EINTERNAL, "cannot encode %d records (out of memory)", n);
			goto out;
		}
		if ((rc = encode_doc(rec, &docs, err)) < 0)
			goto out;
	}
	if (cn_dynbuf_adds(&docs, "]") < 0 || !(out->id_array = id_array(out->ids, n)) ||
	    !(out->docs = cn_dynbuf_take(&docs, NULL))) {
		rc = cn_fail(err, CN_EINTERNAL, "cannot encode %d records as json (out of memory)", n);
		goto out;
	}
	out->n = n;
out:
	if (rc < 0)
		cn_record_batch_free(out);
	cn_dynbuf_free(&docs);
	return rc;
}

int cn_store_record_doc(const struct cn_record *rec, char **doc, size_t *len, struct cn_err *err)
{
	CN_BUG_ON(!rec->row || !rec->policy || !rec->res || rec->command || !doc || !len);
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, CN_RECORD_BATCH_TEXT_MAX);
	int rc = encode_doc(rec, &b, err);
	*doc = rc == 0 ? cn_dynbuf_take(&b, len) : NULL;
	cn_dynbuf_free(&b);
	if (rc == 0 && !*doc)
		rc = cn_fail(err, CN_EINTERNAL, "rollout %lld: cannot encode the record (out of memory)",
			     (long long)rec->row->id);
	return rc;
}

int cn_store_record_batch_join(const int64_t *ids, char *const *docs, const size_t *lens, int n, const char *owner,
			       struct cn_record_batch *out, struct cn_err *err)
{
	CN_BUG_ON(n <= 0 || n > CN_RECORD_BATCH_MAX || !ids || !docs || !lens || !owner || !out);
	memset(out, 0, sizeof *out);
	size_t total = 2;
	for (int i = 0; i < n; i++)
		total += lens[i] + 1;
	if (total > CN_RECORD_BATCH_TEXT_MAX)
		return cn_fail(err, CN_EINTERNAL, "%d records: the batch's text would pass its cap", n);
	out->docs = malloc(total);
	out->id_array = id_array(ids, n);
	if (!out->docs || !out->id_array) {
		cn_record_batch_free(out);
		return cn_fail(err, CN_EINTERNAL, "cannot join %d records (out of memory)", n);
	}
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		CN_BUG_ON(!docs[i] || lens[i] == 0);
		out->docs[off++] = i ? ',' : '[';
		memcpy(out->docs + off, docs[i], lens[i]);
		off += lens[i];
		out->ids[i] = ids[i];
	}
	out->docs[off++] = ']';
	out->docs[off] = '\0';
	snprintf(out->owner, sizeof out->owner, "%s", owner);
	out->n = n;
	return 0;
}

void cn_record_batch_free(struct cn_record_batch *b)
{
	free(b->id_array);
	free(b->docs);
	b->id_array = b->docs = NULL;
	b->n = 0;
}

int cn_store_record_batch_send(struct cn_store *st, const struct cn_record_batch *b, int *rcs,
			       char (*msgs)[CN_ERR_MSG_MAX], struct cn_err *err)
{
	CN_BUG_ON(b->n <= 0 || !b->id_array || !b->docs || !rcs || !msgs);
	for (int i = 0; i < b->n; i++) {
		rcs[i] = -CN_EINTERNAL;
		snprintf(msgs[i], CN_ERR_MSG_MAX, "rollout %lld: the database did not answer for this tick",
			 (long long)b->ids[i]);
	}
	/* canary.record_batch runs canary.record for each, in a subtransaction each: one refusal costs one tick */
	const char *p[] = {b->owner, b->id_array, b->docs};
	PGresult *r = cn_store_exec(st, "record ticks", "SELECT idx, ok, err_state, err_message "
				    "FROM canary.record_batch($1, $2::bigint[], $3::jsonb)", 3, p, err);
	if (!r)
		return -err->code;
	for (int k = 0; k < PQntuples(r); k++) {
		int i = (int)cn_col_int(r, k, 0) - 1;
		if (i < 0 || i >= b->n)
			continue;
		if (cn_col_bool(r, k, 1)) {
			rcs[i] = 0;
			msgs[i][0] = '\0';
			continue;
		}
		const char *state = PQgetvalue(r, k, 2);
		rcs[i] = strcmp(state, CN_SQLSTATE_LEASE) == 0 || strcmp(state, CN_SQLSTATE_STALE) == 0 ||
				 strncmp(state, "40", 2) == 0
			 ? -CN_EUNAVAIL
			 : strcmp(state, CN_SQLSTATE_REFUSED) == 0			      ? -CN_EINPUT
												      : -CN_EINTERNAL;
		snprintf(msgs[i], CN_ERR_MSG_MAX, "%s", PQgetvalue(r, k, 3));
	}
	PQclear(r);
	return 0;
}

int cn_store_record_batch(struct cn_store *st, const struct cn_record *recs, int n, int *rcs, char (*msgs)[CN_ERR_MSG_MAX],
			  struct cn_err *err)
{
	CN_BUG_ON(n < 0 || (n > 0 && (!recs || !rcs || !msgs)));
	if (n == 0)
		return 0;
	struct cn_record_batch *b = malloc(sizeof *b);
	if (!b)
		return cn_fail(err, CN_EINTERNAL, "cannot encode %d records (out of memory)", n);
	int rc = cn_store_record_batch_encode(recs, n, b, err);
	if (rc == 0)
		rc = cn_store_record_batch_send(st, b, rcs, msgs, err);
	cn_record_batch_free(b);
	free(b);
	return rc;
}

int cn_store_weight_confirmed(struct cn_store *st, int64_t id, const char *owner, double weight, bool reconciled,
			      double found, struct cn_err *err)
{
	CN_BUG_ON(!owner);
	char ids[32], w[32], f[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(w, sizeof w, "%.17g", weight);
	snprintf(f, sizeof f, "%.17g", found);
	const char *p[] = {ids, owner, w, reconciled ? "t" : "f", isfinite(found) ? f : NULL};
	return cn_store_run(st, "confirm the weight", "SELECT canary.confirm_weight($1, $2, $3, $4, $5)", 5, p, err);
}

int cn_store_hold(struct cn_store *st, int64_t id, const char *owner, const char *reason, int64_t next_tick_ms,
		  struct cn_err *err)
{
	CN_BUG_ON(!owner || !reason);
	char ids[32], next[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(next, sizeof next, "%lld", (long long)next_tick_ms);
	const char *p[] = {ids, owner, reason, next};
	return cn_store_run(st, "record the hold", "SELECT canary.hold($1, $2, $3, $4)", 4, p, err);
}

int cn_store_command_add(struct cn_store *st, int64_t id, enum cn_command_kind kind, const char *reason,
			 int64_t *cmd_id, struct cn_err *err)
{
	char ids[32];
	if (reason && strlen(reason) > CN_REASON_MAX)
		return cn_fail(err, CN_EUSAGE, "--reason is %zu characters long; the limit is %d", strlen(reason),
			       CN_REASON_MAX);
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	/* canary.queue_command locks the rollout, refuses an ended one and an approval by the starter when the policy
	 * asks for a distinct approver, and writes session_user as the actor. */
	const char *p[] = {ids, cn_command_name(kind), reason};
	PGresult *r = cn_store_exec(st, "queue the command", "SELECT canary.queue_command($1, $2, $3)", 3, p, err);
	if (!r)
		return -err->code;
	*cmd_id = first_int(r);
	PQclear(r);
	return 0;
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
	*done = cn_col_bool(r, 0, 0);
	const char *res = PQgetvalue(r, 0, 1);
	*accepted = strcmp(res, "accepted") == 0;
	snprintf(msg, msgsize, "%s", strncmp(res, "refused: ", 9) == 0 ? res + 9 : res);
	PQclear(r);
	return 0;
}

/* The columns `status` shows; CN_SQL_US times. The operator's --reason (the rollout.started event's) is kept apart
 * from the controller's: the row's reason starts as the operator's text, so it is the controller's only once
 * canaryd has recorded something (a status, or a hold reason of its own). */
#define START_REASON_SQL                                                                                          \
	"(SELECT a.reason FROM audit_events a WHERE a.rollout_id = r.id AND a.kind = 'rollout.started' "          \
	"ORDER BY a.id LIMIT 1)"
#define STATUS_SQL                                                                                                \
	"SELECT r.id, r.service, r.candidate, r.baseline, r.candidate_slot, r.phase, r.step, "                   \
	"(SELECT count(*) FROM policy_steps s WHERE s.policy_id = r.policy_id)::int, r.weight, r.applied_weight, " \
	"p.name, p.version, CASE WHEN r.status IS NULL AND r.reason IS NOT DISTINCT FROM " START_REASON_SQL        \
	" THEN NULL ELSE r.reason END, r.status::text, " CN_SQL_US("r.created_at") ", r.created_by, "             \
	CN_SQL_US("r.updated_at") ", " CN_SQL_US("r.finished_at") ", r.lease_owner, " START_REASON_SQL " "        \
	"FROM rollouts r JOIN policies p ON p.id = r.policy_id "

enum { S_ID, S_SERVICE, S_CANDIDATE, S_BASELINE, S_SLOT, S_PHASE, S_STEP, S_STEPS, S_WEIGHT, S_APPLIED, S_POLICY,
       S_POLICY_VERSION, S_REASON, S_STATUS, S_CREATED, S_CREATED_BY, S_UPDATED, S_FINISHED, S_LEASE_OWNER,
       S_START_REASON };

/* Parses the stored status documents ({decision, reason, slos: [{slo, verdict, why, ...}]}) into the items'
 * verdicts. The documents stay in one array that l->rd keeps; the verdicts borrow their strings, in one array. */
static int status_documents(struct cn_status_list *l, struct cn_err *err)
{
	json_t *docs = json_array();
	size_t total = 0, k = 0;
	int rc;
	if (!docs)
		return cn_fail(err, CN_EINTERNAL, "out of memory reading the rollouts");
	if ((rc = cn_read_keep_doc(l->rd, docs, err)) < 0)
		return rc;
	for (size_t i = 0; i < l->n; i++) {
		struct cn_rollout_status *s = &l->items[i];
		json_t *doc = s->status_json ? json_loads(s->status_json, JSON_DECODE_ANY, NULL) : json_null();
		if (!doc || json_array_append_new(docs, doc) < 0)
			return cn_fail(err, CN_EINTERNAL, "rollout %lld: cannot read the stored status (not json, or out "
				       "of memory)", (long long)s->id);
		s->has_status = json_is_object(doc);
		total += json_array_size(json_object_get(doc, "slos"));
	}
	struct cn_status_slo *all = cn_read_alloc(l->rd, total, sizeof *all, err);
	if (!all)
		return -err->code;
	for (size_t i = 0; i < l->n; i++) {
		struct cn_rollout_status *s = &l->items[i];
		const json_t *slos = json_object_get(json_array_get(docs, i), "slos"), *v;
		size_t j;
		s->slos = all + k;
		s->features = json_string_value(json_object_get(json_object_get(json_array_get(docs, i), "economics"),
								"features_line"));
		if (s->features && !s->features[0])
			s->features = NULL;
		json_array_foreach(slos, j, v) {
			all[k++] = (struct cn_status_slo){json_string_value(json_object_get(v, "slo")),
							  json_string_value(json_object_get(v, "verdict")),
							  json_string_value(json_object_get(v, "why"))};
			s->nslos++;
		}
	}
	return 0;
}

void cn_status_list_free(struct cn_status_list *l)
{
	if (!l)
		return;
	cn_read_free(l->rd);
	free(l);
}

int cn_store_rollout_status(struct cn_store *st, int64_t id, struct cn_status_list **out, struct cn_err *err)
{
	char ids[32];
	const char *p[] = {ids};
	struct cn_status_list *l = calloc(1, sizeof *l);
	PGresult *r;
	int rc = 0;
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	if (!l || !(l->rd = cn_read_new())) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading the rollouts");
		goto out;
	}
	if (id > 0)
		r = cn_read_query(l->rd, st, "read the rollout", STATUS_SQL "WHERE r.id = $1", 1, p, err);
	else
		r = cn_read_query(l->rd, st, "list active rollouts",
				  STATUS_SQL "WHERE r.phase IN ('pending','progressing','paused','awaiting_approval') "
					     "ORDER BY r.id",
				  0, NULL, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	if (id > 0 && PQntuples(r) == 0) {
		rc = cn_fail(err, CN_EINPUT, "no rollout with id %s; 'canaryctl rollout status' lists them", ids);
		goto out;
	}
	l->n = (size_t)PQntuples(r);
	if (!(l->items = cn_read_alloc(l->rd, l->n, sizeof *l->items, err))) {
		rc = -err->code;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct cn_rollout_status *s = &l->items[i];
		*s = (struct cn_rollout_status){
			.id = cn_col_int(r, i, S_ID), .service = cn_col_str(r, i, S_SERVICE),
			.candidate = cn_col_str(r, i, S_CANDIDATE), .baseline = cn_col_str(r, i, S_BASELINE),
			.candidate_slot = (int)cn_col_int(r, i, S_SLOT), .step = (int)cn_col_int(r, i, S_STEP),
			.steps = (int)cn_col_int(r, i, S_STEPS), .weight = cn_col_real(r, i, S_WEIGHT),
			.applied_weight = cn_col_real(r, i, S_APPLIED), .policy = cn_col_str(r, i, S_POLICY),
			.policy_version = (int)cn_col_int(r, i, S_POLICY_VERSION), .reason = cn_col_str(r, i, S_REASON),
			.status_json = cn_col_str(r, i, S_STATUS), .created_us = cn_col_time(r, i, S_CREATED),
			.created_by = cn_col_str(r, i, S_CREATED_BY), .updated_us = cn_col_time(r, i, S_UPDATED),
			.finished_us = cn_col_time(r, i, S_FINISHED), .lease_owner = cn_col_str(r, i, S_LEASE_OWNER),
			.start_reason = cn_col_str(r, i, S_START_REASON),
		};
		if (cn_phase_from_name(PQgetvalue(r, i, S_PHASE), &s->phase) < 0) {
			rc = cn_fail(err, CN_EINTERNAL, "rollout %lld has an unknown phase '%s'", (long long)s->id,
				     PQgetvalue(r, i, S_PHASE));
			goto out;
		}
	}
	rc = status_documents(l, err);
	if (rc < 0)
		goto out;
	*out = l;
	l = NULL;
out:
	cn_status_list_free(l);
	return rc;
}

int cn_store_may_call(struct cn_store *st, const char *function, const char *what, struct cn_err *err)
{
	const char *p[] = {function};
	PGresult *r = cn_store_exec(st, "check the role's privileges", "SELECT has_function_privilege($1, 'EXECUTE')",
				    1, p, err);
	if (!r)
		return -err->code;
	bool may = PQntuples(r) == 1 && cn_col_bool(r, 0, 0);
	PQclear(r);
	if (!may)
		return cn_fail(err, CN_EPERM, "permission denied: role '%s' may not %s; it needs to be a member of "
			       "canary_operator", cn_store_user(st), what);
	return 0;
}

int cn_store_may_command(struct cn_store *st, struct cn_err *err)
{
	return cn_store_may_call(st, "canary.queue_command(bigint, text, text)", "steer rollouts", err);
}

int cn_store_lease_renew(struct cn_store *st, int64_t id, const char *owner, int64_t lease_ms, double *weight,
			 struct cn_err *err)
{
	CN_BUG_ON(!owner);
	char ids[32], lease[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	const char *p[] = {ids, owner, lease};
	PGresult *r = cn_store_exec(st, "renew the lease", "SELECT canary.renew_lease($1, $2, $3)", 3, p, err);
	if (!r)
		return -err->code;
	*weight = strtod(PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	return 0;
}
