/* The notification outbox: lease due rows, record attempts, measure the backlog (canary/store_outbox.h). */
#include "canary/store_outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "store_int.h"

int cn_store_outbox_claim(struct cn_store *s, const char *owner, int64_t lease_ms, int max,
			  struct cn_outbox_batch **out, struct cn_err *err)
{
	CN_BUG_ON(!owner || !out || max < 0);
	char lease[32], maxs[16];
	snprintf(lease, sizeof lease, "%lld", (long long)lease_ms);
	snprintf(maxs, sizeof maxs, "%d", max);
	const char *p[] = {owner, lease, maxs};
	struct cn_outbox_batch *b = calloc(1, sizeof *b);
	int rc = -CN_EINTERNAL;
	if (!b || !(b->rd = cn_read_new())) {
		cn_fail(err, CN_EINTERNAL, "out of memory reading the outbox");
		goto out;
	}
	PGresult *r = cn_read_query(b->rd, s, "lease notifications",
				    "SELECT id, key, event, url, attempts, created_us, payload, hook, source_kind, source "
				    "FROM canary.outbox_claim($1, $2, $3)", 3, p, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	b->n = (size_t)PQntuples(r);
	if (!(b->items = cn_read_alloc(b->rd, b->n, sizeof *b->items, err))) {
		rc = -err->code;
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct cn_outbox_item *it = &b->items[i];
		int row = (int)i;
		it->id = cn_col_int(r, row, 0);
		it->key = cn_col_str(r, row, 1);
		it->event = cn_col_str(r, row, 2);
		it->url = cn_col_str(r, row, 3);
		it->attempts = (int)cn_col_int(r, row, 4);
		it->created_us = cn_col_int(r, row, 5);
		it->payload = cn_col_str(r, row, 6);
		it->hook = (int)cn_col_int(r, row, 7);
		it->from_service = strcmp(cn_col_str(r, row, 8), "service") == 0;
		it->source = cn_col_str(r, row, 9);
	}
	*out = b;
	b = NULL;
	rc = 0;
out:
	cn_outbox_batch_free(b);
	return rc;
}

void cn_outbox_batch_free(struct cn_outbox_batch *b)
{
	if (!b)
		return;
	cn_read_free(b->rd);
	free(b);
}

int cn_store_outbox_result(struct cn_store *s, int64_t id, const char *owner, bool delivered, int status,
			   const char *error, int64_t retry_ms, struct cn_err *err)
{
	CN_BUG_ON(!owner);
	char ids[32], st[16], retry[32];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	snprintf(st, sizeof st, "%d", status);
	snprintf(retry, sizeof retry, "%lld", (long long)retry_ms);
	const char *p[] = {ids, owner, delivered ? "true" : "false", st, error, retry};
	PGresult *r = cn_store_exec(s, "record a notification attempt",
				    "SELECT canary.outbox_result($1, $2, $3, $4, $5, $6)", 6, p, err);
	if (!r)
		return -err->code;
	int changed = cn_col_bool(r, 0, 0) ? 1 : 0;
	PQclear(r);
	return changed;
}

int cn_store_outbox_backlog(struct cn_store *s, int64_t *count, int64_t *oldest_ms, struct cn_err *err)
{
	PGresult *r = cn_store_exec(s, "read the outbox backlog",
				    "SELECT count(*), coalesce((extract(epoch FROM clock_timestamp() - min(created_at)) "
				    "* 1000)::bigint, 0) FROM outbox WHERE delivered_at IS NULL", 0, NULL, err);
	if (!r)
		return -err->code;
	*count = cn_col_int(r, 0, 0);
	*oldest_ms = cn_col_int(r, 0, 1);
	PQclear(r);
	return 0;
}
