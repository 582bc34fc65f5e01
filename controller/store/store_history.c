/* Rollout history: one row per rollout with its outcome, where it ended, how long it took and who approved it. */
#include "canary/store_history.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "canary/rollout.h"
#include "canary/store.h"
#include "store_int.h"

enum { H_ID, H_SERVICE, H_CANDIDATE, H_BASELINE, H_POLICY, H_POLICY_VERSION, H_PHASE, H_STEP, H_STEPS, H_WEIGHT,
       H_STARTED_BY, H_ABORTED_BY, H_CREATED, H_FINISHED, H_DURATION, H_REASON };

/* The matching rollouts; $1 service, $2 since (ms), $3 phase, $4 limit, each NULL when it does not filter. */
#define HISTORY_SQL                                                                                               \
	"SELECT r.id, r.service, r.candidate, r.baseline, p.name, p.version, r.phase, r.step, "                  \
	"(SELECT count(*) FROM policy_steps s WHERE s.policy_id = r.policy_id)::int, r.weight, r.created_by, "   \
	"(SELECT c.actor FROM commands c WHERE c.rollout_id = r.id AND c.kind = 'abort' "                         \
	"  AND c.result = 'accepted' ORDER BY c.id LIMIT 1), "                                                    \
	CN_SQL_US("r.created_at") ", " CN_SQL_US("r.finished_at") ", "                                            \
	"(extract(epoch FROM coalesce(r.finished_at, now()) - r.created_at) * 1000)::bigint, r.reason "          \
	"FROM rollouts r JOIN policies p ON p.id = r.policy_id "                                                  \
	"WHERE ($1::text IS NULL OR r.service = $1) "                                                             \
	"  AND ($2::bigint IS NULL OR r.created_at >= now() - $2::bigint * interval '1 ms') "                     \
	"  AND ($3::text IS NULL OR r.phase = $3) "                                                               \
	"ORDER BY r.id DESC LIMIT $4::bigint"

void cn_history_free(struct cn_history *h)
{
	if (!h)
		return;
	cn_read_free(h->rd);
	free(h);
}

/* The accepted approvals of the rollouts in h (ordered by rollout, then command), one slice of one array per row. */
static int approvals(struct cn_store *st, struct cn_history *h, struct cn_err *err)
{
	/* $1: the ids as a bigint[] literal; ids are numbers, so the literal needs no quoting. */
	size_t cap = 2 + h->n * 21;
	char *ids = cn_read_alloc(h->rd, cap, 1, err);
	size_t used = 0;
	if (!ids)
		return -err->code;
	ids[used++] = '{';
	for (size_t i = 0; i < h->n; i++)
		used += (size_t)snprintf(ids + used, cap - used, "%s%" PRId64, i ? "," : "", h->rows[i].id);
	snprintf(ids + used, cap - used, "}");
	const char *p[] = {ids};
	PGresult *r = cn_read_query(h->rd, st, "read the rollout history",
				    "SELECT c.rollout_id, c.actor FROM commands c WHERE c.rollout_id = ANY($1::bigint[]) "
				    "AND c.kind = 'approve' AND c.result = 'accepted' ORDER BY c.rollout_id, c.id",
				    1, p, err);
	if (!r)
		return -err->code;
	const char **all = cn_read_alloc(h->rd, (size_t)PQntuples(r), sizeof *all, err);
	if (!all)
		return -err->code;
	for (int k = 0; k < PQntuples(r); k++)
		all[k] = cn_col_str(r, k, 1);
	/* rows are newest first, approvals by ascending rollout: find each row's slice */
	for (size_t i = 0; i < h->n; i++) {
		struct cn_history_row *row = &h->rows[i];
		int k = 0;
		while (k < PQntuples(r) && cn_col_int(r, k, 0) < row->id)
			k++;
		row->approved_by = all + k;
		while (k < PQntuples(r) && cn_col_int(r, k, 0) == row->id) {
			row->napproved++;
			k++;
		}
	}
	return 0;
}

int cn_store_history(struct cn_store *st, const struct cn_history_filter *f, struct cn_history **out,
		     struct cn_err *err)
{
	char since[32], limit[32];
	struct cn_history *h = calloc(1, sizeof *h);
	bool in_tx = false;
	int rc = 0;
	snprintf(since, sizeof since, "%" PRId64, f->since_ms);
	snprintf(limit, sizeof limit, "%" PRId64, f->limit);
	const char *p[] = {f->service, f->since_ms > 0 ? since : NULL, f->phase, f->limit > 0 ? limit : NULL};
	if (!h || !(h->rd = cn_read_new())) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading the rollout history");
		goto out;
	}
	/* the rollouts and their approvals from one snapshot */
	if ((rc = cn_store_run(st, "begin a read-only snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
			       NULL, err)) < 0)
		goto out;
	in_tx = true;
	PGresult *r = cn_read_query(h->rd, st, "read the rollout history", HISTORY_SQL, 4, p, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	h->n = (size_t)PQntuples(r);
	if (!(h->rows = cn_read_alloc(h->rd, h->n, sizeof *h->rows, err))) {
		rc = -err->code;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct cn_history_row *row = &h->rows[i];
		*row = (struct cn_history_row){
			.id = cn_col_int(r, i, H_ID), .service = cn_col_str(r, i, H_SERVICE),
			.candidate = cn_col_str(r, i, H_CANDIDATE), .baseline = cn_col_str(r, i, H_BASELINE),
			.policy = cn_col_str(r, i, H_POLICY), .policy_version = (int)cn_col_int(r, i, H_POLICY_VERSION),
			.step = (int)cn_col_int(r, i, H_STEP), .steps = (int)cn_col_int(r, i, H_STEPS),
			.weight = cn_col_real(r, i, H_WEIGHT), .started_by = cn_col_str(r, i, H_STARTED_BY),
			.aborted_by = cn_col_str(r, i, H_ABORTED_BY), .created_us = cn_col_time(r, i, H_CREATED),
			.finished_us = cn_col_time(r, i, H_FINISHED), .duration_ms = cn_col_int(r, i, H_DURATION),
			.reason = cn_col_str(r, i, H_REASON),
		};
		if (cn_phase_from_name(PQgetvalue(r, i, H_PHASE), &row->outcome) < 0) {
			rc = cn_fail(err, CN_EINTERNAL, "rollout %" PRId64 " has an unknown phase '%s'", row->id,
				     PQgetvalue(r, i, H_PHASE));
			goto out;
		}
	}
	if (h->n > 0 && (rc = approvals(st, h, err)) < 0)
		goto out;
	in_tx = false;
	if ((rc = cn_store_commit(st, err)) < 0)
		goto out;
	*out = h;
	h = NULL;
out:
	if (in_tx)
		cn_store_rollback(st);
	cn_history_free(h);
	return rc;
}
