/* Retention through canary.gc (migrations/0018_gc.sql): the function checks the age, deletes and audits. */
#include "canary/store_gc.h"

#include <stdio.h>

#include "canary/bug.h"
#include "store_int.h"

int cn_store_gc(struct cn_store *st, int64_t older_than_ms, int max_rollouts, struct cn_gc_result *out,
		struct cn_err *err)
{
	CN_BUG_ON(!out);
	char age[48], lim[16];
	snprintf(age, sizeof age, "%lld milliseconds", (long long)older_than_ms);
	snprintf(lim, sizeof lim, "%d", max_rollouts);
	const char *p[] = {age, lim};
	PGresult *r = cn_store_exec(st, "collect old rollouts' rows",
				    "SELECT rollouts, measurements, decisions, verdicts FROM canary.gc($1::interval, $2)",
				    2, p, err);
	if (!r)
		return -err->code;
	int rows = PQntuples(r);
	if (rows != 1) {
		PQclear(r);
		return cn_fail(err, CN_EINTERNAL, "canary.gc returned %d rows, expected one", rows);
	}
	out->rollouts = (int)cn_col_int(r, 0, 0);
	out->measurements = cn_col_int(r, 0, 1);
	out->decisions = cn_col_int(r, 0, 2);
	out->verdicts = cn_col_int(r, 0, 3);
	PQclear(r);
	return 0;
}
