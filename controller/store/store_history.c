/* Rollout history: one row per rollout with its outcome, where it ended, how long it took and who approved it. */
#include "canary/store_history.h"

#include <inttypes.h>
#include <stdio.h>

#include "canary/store.h"

#define ISO_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

int cn_store_history(struct cn_store *st, const struct cn_history_filter *f, json_t **out, struct cn_err *err)
{
	char since[32], limit[32];
	snprintf(since, sizeof since, "%" PRId64, f->since_ms);
	snprintf(limit, sizeof limit, "%" PRId64, f->limit);
	const char *p[] = {f->service, f->since_ms > 0 ? since : NULL, f->phase, f->limit > 0 ? limit : NULL};
	json_t *rows = cn_store_query_json(st, "read the rollout history",
		"SELECT r.id, r.service, r.candidate, r.baseline, p.name AS policy, p.version AS policy_version, "
		"r.phase AS outcome, r.step, "
		"(SELECT count(*) FROM policy_steps s WHERE s.policy_id = r.policy_id)::int AS steps, r.weight, "
		"r.created_by AS started_by, "
		"(SELECT coalesce(json_agg(c.actor ORDER BY c.id), '[]'::json) FROM commands c "
		"  WHERE c.rollout_id = r.id AND c.kind = 'approve' AND c.result = 'accepted') AS approved_by, "
		"(SELECT c.actor FROM commands c WHERE c.rollout_id = r.id AND c.kind = 'abort' "
		"  AND c.result = 'accepted' ORDER BY c.id LIMIT 1) AS aborted_by, "
		ISO_UTC("r.created_at") " AS created_at, " ISO_UTC("r.finished_at") " AS finished_at, "
		"(extract(epoch FROM coalesce(r.finished_at, now()) - r.created_at) * 1000)::bigint AS duration_ms, "
		"r.reason "
		"FROM rollouts r JOIN policies p ON p.id = r.policy_id "
		"WHERE ($1::text IS NULL OR r.service = $1) "
		"  AND ($2::bigint IS NULL OR r.created_at >= now() - $2::bigint * interval '1 ms') "
		"  AND ($3::text IS NULL OR r.phase = $3) "
		"ORDER BY r.id DESC LIMIT $4::bigint",
		4, p, err);
	if (!rows)
		return -err->code;
	*out = rows;
	return 0;
}
