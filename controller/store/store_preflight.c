/* Pre-flight rows and their write functions (canary/store_preflight.h). */
#include <stdio.h>
#include <string.h>

#include "canary/store_preflight.h"
#include "store_int.h"

int cn_store_preflight_get(struct cn_store *st, int64_t id, struct cn_preflight_row *out, struct cn_err *err)
{
	char ids[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	const char *p[] = { ids };
	PGresult *r = cn_store_exec(st, "read the pre-flight", "SELECT p.state, p.attempt, p.owner, r.phase FROM rollouts r "
				    "LEFT JOIN preflights p ON p.rollout_id = r.id WHERE r.id = $1", 1, p, err);
	if (!r)
		return -err->code;
	struct cn_preflight_row row = { .state = CN_PF_NONE };
	if (PQntuples(r) != 1) {
		PQclear(r);
		return cn_fail(err, CN_EINPUT, "no rollout with id %lld", (long long)id);
	}
	snprintf(row.phase, sizeof row.phase, "%s", cn_col_str(r, 0, 3) ? cn_col_str(r, 0, 3) : "");
	if (cn_col_str(r, 0, 0)) {
		const char *s = cn_col_str(r, 0, 0);
		row.state = !s ? CN_PF_NONE : strcmp(s, "running") == 0 ? CN_PF_RUNNING : strcmp(s, "passed") == 0 ? CN_PF_PASSED
			    : strcmp(s, "failed") == 0 ? CN_PF_FAILED : CN_PF_CANCELLED;
		row.attempt = (int)cn_col_int(r, 0, 1);
		snprintf(row.owner, sizeof row.owner, "%s", cn_col_str(r, 0, 2) ? cn_col_str(r, 0, 2) : "");
	}
	PQclear(r);
	*out = row;
	return 0;
}

int cn_store_preflight_start(struct cn_store *st, int64_t id, const char *owner, int max_attempts, int *attempt,
			     struct cn_err *err)
{
	char ids[32], max[16];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(max, sizeof max, "%d", max_attempts);
	const char *p[] = { ids, owner, max };
	PGresult *r = cn_store_exec(st, "start the pre-flight", "SELECT canary.preflight_start($1, $2, $3)", 3, p, err);
	if (!r)
		return -err->code;
	*attempt = (int)cn_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int cn_store_preflight_finish(struct cn_store *st, int64_t id, const char *owner, int attempt, const char *doc_json,
			      char *became, size_t size, struct cn_err *err)
{
	char ids[32], att[16];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(att, sizeof att, "%d", attempt);
	const char *p[] = { ids, owner, att, doc_json };
	PGresult *r = cn_store_exec(st, "record the pre-flight", "SELECT canary.preflight_finish($1, $2, $3, $4)", 4, p,
				    err);
	if (!r)
		return -err->code;
	snprintf(became, size, "%s", cn_col_str(r, 0, 0) ? cn_col_str(r, 0, 0) : "");
	PQclear(r);
	return 0;
}
