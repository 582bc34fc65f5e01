/* The tamper-evident audit: recompute audit_events' hash chains in C (the encoding is fixed in
 * migrations/0004_audit_chain.sql) and read a rollout's timeline. Rows are streamed in single-row mode, so verifying
 * a large table needs no more memory than one row. */
#include "canary/store_audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/rollout.h"
#include "canary/store.h"
#include "store_int.h"

const char CN_AUDIT_GENESIS[CN_SHA256_HEX_LEN] = "0000000000000000000000000000000000000000000000000000000000000000";

/* One field: "<byte length>:<bytes>\n", or "-\n" for NULL. */
static void put_field(struct cn_sha256 *c, const char *v)
{
	char len[32];
	if (!v) {
		cn_sha256_update(c, "-\n", 2);
		return;
	}
	size_t n = strlen(v);
	int k = snprintf(len, sizeof len, "%zu:", n);
	cn_sha256_update(c, len, (size_t)k);
	cn_sha256_update(c, v, n);
	cn_sha256_update(c, "\n", 1);
}

static void put_int(struct cn_sha256 *c, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%" PRId64, v);
	put_field(c, buf);
}

char *cn_audit_hash(const char *prev_hash, const struct cn_audit_event *ev, char hex[CN_SHA256_HEX_LEN])
{
	static const char digits[] = "0123456789abcdef";
	static const char magic[] = "canary.audit.v1\n";
	struct cn_sha256 c;
	uint8_t md[CN_SHA256_LEN];

	cn_sha256_init(&c);
	cn_sha256_update(&c, prev_hash, strlen(prev_hash));
	cn_sha256_update(&c, magic, sizeof magic - 1);
	put_int(&c, ev->id);
	put_int(&c, ev->at_us);
	put_field(&c, ev->recorded_by);
	put_field(&c, ev->actor);
	if (ev->has_rollout)
		put_int(&c, ev->rollout_id);
	else
		put_field(&c, NULL);
	put_field(&c, ev->service);
	put_field(&c, ev->kind);
	put_field(&c, ev->reason);
	put_field(&c, ev->data);
	cn_sha256_final(&c, md);
	for (int i = 0; i < CN_SHA256_LEN; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * CN_SHA256_LEN] = '\0';
	return hex;
}

/* Fails with CN_EINPUT unless the rollout exists. */
static int rollout_exists(struct cn_store *st, const char *ids, struct cn_err *err)
{
	const char *p[] = {ids};
	PGresult *r = cn_store_exec(st, "read the rollout", "SELECT 1 FROM rollouts WHERE id = $1", 1, p, err);
	if (!r)
		return -err->code;
	int n = PQntuples(r);
	PQclear(r);
	if (n == 0)
		return cn_fail(err, CN_EINPUT, "no rollout with id %s; 'canaryctl history' lists them", ids);
	return 0;
}

#define VERIFY_SQL                                                                                                \
	"SELECT id, (extract(epoch FROM at) * 1000000)::bigint, recorded_by, actor, rollout_id, service, kind, "  \
	"reason, data::text, prev_hash, hash, "                                                                   \
	"to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM audit_events "

/* Checks one streamed row against the chain so far; fills rep and returns true when the row is bad. */
static bool check_row(const PGresult *r, int64_t *chains, bool *in_chain, bool *chain_has_rollout,
		      int64_t *chain_rollout, int64_t *prev_id, char prev_hash[CN_SHA256_HEX_LEN],
		      struct cn_audit_report *rep)
{
	struct cn_audit_event ev = {
		.id = cn_col_int(r, 0, 0),
		.at_us = cn_col_int(r, 0, 1),
		.recorded_by = cn_col_str(r, 0, 2),
		.actor = cn_col_str(r, 0, 3),
		.has_rollout = !PQgetisnull(r, 0, 4),
		.rollout_id = cn_col_int(r, 0, 4),
		.service = cn_col_str(r, 0, 5),
		.kind = cn_col_str(r, 0, 6),
		.reason = cn_col_str(r, 0, 7),
		.data = cn_col_str(r, 0, 8),
	};
	const char *stored_prev = cn_col_str(r, 0, 9), *stored = cn_col_str(r, 0, 10);
	char hex[CN_SHA256_HEX_LEN];

	if (!*in_chain || ev.has_rollout != *chain_has_rollout || ev.rollout_id != *chain_rollout) {
		(*chains)++;
		*in_chain = true;
		*chain_has_rollout = ev.has_rollout;
		*chain_rollout = ev.rollout_id;
		*prev_id = 0;
		memcpy(prev_hash, CN_AUDIT_GENESIS, CN_SHA256_HEX_LEN);
	}
	rep->events++;
	enum cn_audit_problem problem = CN_AUDIT_INTACT;
	cn_audit_hash(stored_prev ? stored_prev : "", &ev, hex);
	if (!stored || strcmp(hex, stored) != 0)
		problem = CN_AUDIT_CHANGED;
	else if (!stored_prev || strcmp(stored_prev, prev_hash) != 0)
		problem = CN_AUDIT_BROKEN;
	if (problem == CN_AUDIT_INTACT) {
		*prev_id = ev.id;
		snprintf(prev_hash, CN_SHA256_HEX_LEN, "%s", stored);
		return false;
	}
	rep->problem = problem;
	rep->bad_id = ev.id;
	rep->bad_has_rollout = ev.has_rollout;
	rep->bad_rollout_id = ev.rollout_id;
	rep->bad_prev_id = *prev_id;
	snprintf(rep->bad_kind, sizeof rep->bad_kind, "%s", ev.kind ? ev.kind : "");
	snprintf(rep->bad_at, sizeof rep->bad_at, "%s", cn_col_str(r, 0, 11) ? cn_col_str(r, 0, 11) : "");
	return true;
}

int cn_store_audit_verify(struct cn_store *st, int64_t rollout_id, struct cn_audit_report *rep, struct cn_err *err)
{
	static const char what[] = "read the audit events";
	PGconn *conn = cn_store_conn(st);
	struct cn_audit_report out = {0};
	PGresult *r = NULL;
	char ids[32];
	int rc = 0;
	bool bad = false, in_chain = false, chain_has_rollout = false;
	int64_t chain_rollout = 0, prev_id = 0;
	char prev_hash[CN_SHA256_HEX_LEN];

	snprintf(ids, sizeof ids, "%" PRId64, rollout_id);
	if (rollout_id > 0 && (rc = rollout_exists(st, ids, err)) < 0)
		return rc;
	/* The hash is over UTF-8 bytes: have the server send text as UTF-8 whatever the client's locale says. */
	const char *enc = PQparameterStatus(conn, "client_encoding");
	if ((!enc || strcmp(enc, "UTF8") != 0) && PQsetClientEncoding(conn, "UTF8") != 0)
		return cn_fail(err, CN_EUNAVAIL, "cannot set the client encoding to utf8 to %s", what);

	const char *p[] = {ids};
	int sent = rollout_id > 0
			   ? PQsendQueryParams(conn, VERIFY_SQL "WHERE rollout_id = $1 ORDER BY id", 1, NULL, p,
					       NULL, NULL, 0)
			   : PQsendQueryParams(conn, VERIFY_SQL "ORDER BY rollout_id, id", 0, NULL, NULL, NULL, NULL,
					       0);
	if (!sent)
		return cn_store_fail_result(st, NULL, what, err);
	PQsetSingleRowMode(conn);
	/* Every result is read to the end, even after a bad row, so the connection stays usable. */
	while ((r = PQgetResult(conn)) != NULL) {
		ExecStatusType s = PQresultStatus(r);
		if (s == PGRES_SINGLE_TUPLE) {
			if (!bad)
				bad = check_row(r, &out.chains, &in_chain, &chain_has_rollout, &chain_rollout, &prev_id,
						prev_hash, &out);
		} else if (s != PGRES_TUPLES_OK && rc == 0) {
			rc = cn_store_fail_result(st, r, what, err);
		}
		PQclear(r);
	}
	if (rc == 0)
		*rep = out;
	return rc;
}

void cn_timeline_free(struct cn_timeline *t)
{
	if (!t)
		return;
	cn_read_free(t->rd);
	free(t);
}

int cn_store_audit_timeline(struct cn_store *st, int64_t rollout_id, struct cn_timeline **out, struct cn_err *err)
{
	char ids[32];
	struct cn_timeline *t = calloc(1, sizeof *t);
	bool in_tx = false;
	int rc = 0;
	snprintf(ids, sizeof ids, "%" PRId64, rollout_id);
	const char *p[] = {ids};

	if (!t || !(t->rd = cn_read_new())) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory reading the timeline of rollout %s", ids);
		goto out;
	}
	if ((rc = cn_store_run(st, "begin a read-only snapshot", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0,
			       NULL, err)) < 0)
		goto out;
	in_tx = true;
	PGresult *h = cn_read_query(t->rd, st, "read the rollout",
		"SELECT r.id, r.service, r.candidate, r.baseline, p.name, p.version, r.phase, r.step, "
		"(SELECT count(*) FROM policy_steps s WHERE s.policy_id = r.policy_id)::int, r.weight, r.created_by, "
		CN_SQL_US("r.created_at") ", " CN_SQL_US("r.finished_at") ", r.reason "
		"FROM rollouts r JOIN policies p ON p.id = r.policy_id WHERE r.id = $1",
		1, p, err);
	if (!h) {
		rc = -err->code;
		goto out;
	}
	if (PQntuples(h) == 0) {
		rc = cn_fail(err, CN_EINPUT, "no rollout with id %s; 'canaryctl history' lists them", ids);
		goto out;
	}
	t->rollout = (struct cn_timeline_rollout){
		.id = cn_col_int(h, 0, 0), .service = cn_col_str(h, 0, 1), .candidate = cn_col_str(h, 0, 2),
		.baseline = cn_col_str(h, 0, 3), .policy = cn_col_str(h, 0, 4), .policy_version = (int)cn_col_int(h, 0, 5),
		.step = (int)cn_col_int(h, 0, 7), .steps = (int)cn_col_int(h, 0, 8), .weight = cn_col_real(h, 0, 9),
		.created_by = cn_col_str(h, 0, 10), .created_us = cn_col_time(h, 0, 11),
		.finished_us = cn_col_time(h, 0, 12), .reason = cn_col_str(h, 0, 13),
	};
	if (cn_phase_from_name(PQgetvalue(h, 0, 6), &t->rollout.phase) < 0) {
		rc = cn_fail(err, CN_EINTERNAL, "rollout %s has an unknown phase '%s'", ids, PQgetvalue(h, 0, 6));
		goto out;
	}
	PGresult *e = cn_read_query(t->rd, st, "read the audit events",
		"SELECT id, " CN_SQL_US("at") ", actor, recorded_by, kind, reason, data::text, hash FROM audit_events "
		"WHERE rollout_id = $1 ORDER BY id",
		1, p, err);
	if (!e) {
		rc = -err->code;
		goto out;
	}
	t->nevents = (size_t)PQntuples(e);
	if (!(t->events = cn_read_alloc(t->rd, t->nevents, sizeof *t->events, err))) {
		rc = -err->code;
		goto out;
	}
	for (int i = 0; i < PQntuples(e); i++)
		t->events[i] = (struct cn_timeline_event){
			.id = cn_col_int(e, i, 0), .at_us = cn_col_time(e, i, 1), .actor = cn_col_str(e, i, 2),
			.recorded_by = cn_col_str(e, i, 3), .kind = cn_col_str(e, i, 4), .reason = cn_col_str(e, i, 5),
			.data_json = cn_col_str(e, i, 6), .hash = cn_col_str(e, i, 7),
		};
	in_tx = false;
	if ((rc = cn_store_commit(st, err)) < 0)
		goto out;
	*out = t;
	t = NULL;
out:
	if (in_tx)
		cn_store_rollback(st);
	cn_timeline_free(t);
	return rc;
}
