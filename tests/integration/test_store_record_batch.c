/* Integration: canary.record_batch (migration 0020) records what N single canary.record calls would. Two worlds of
 * eight rollouts each get the same documents, world "a" as batches from the controller's login, world "b" one
 * canary.record call (one transaction) per element; the rows each world ends with (rollouts, measurements,
 * decisions, verdicts, audit events, commands, services) must be the same, and so must each element's outcome:
 * plain ticks (recorded set-based), a lost lease, an ended rollout, a pause, a weight out of range, a promotion that
 * answers a queued command, a document one of whose verdicts does not fit (then every element goes one by one), and
 * a batch that names a rollout twice. Every audit chain verifies afterwards, and canary_audit_hash (plpgsql since
 * 0020) hashes the same bytes as 0004's SQL functions did. state_seq (0021) counts every write of a state, by
 * either path or an owner's SQL, and nothing else; the daemon's row read leaves out exactly the states it holds; a
 * tick judged on a version that is no longer the row's is refused (0024). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "canary/store_audit.h"
#include "canary/state_json.h"
#include "canary/store_rollouts.h"
#include "store_audit_support.h"

#define K 8 /* rollouts per world */

static struct pg_fixture db;
static char ctrl[64], as_ctrl[2300];
static long long ids[2][K + 1]; /* [world][1..K] */

/* One row of a superuser query as text ("" for NULL), into out. */
static void scalar_text(const char *sql, char *out, size_t len)
{
	PGconn *c = PQconnectdb(db.conninfo);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
}

/* The documents the tests send, by name: a hold (the steady state), its variants, and the ones that are not. */
static const char DOCS[] =
	"CREATE FUNCTION public.t_doc(kind text) RETURNS jsonb LANGUAGE sql AS $$"
	" SELECT jsonb_build_object('phase', 'progressing', 'step', 0, 'weight', 1,"
	"  'state', '{\"phase\": 2, \"seq\": {\"slos\": [1.5, 2, null]}, \"note\": \"gr\u00fc\u00dfe \u20ac\"}'::jsonb,"
	"  'status', jsonb_build_object('decision', 'hold', 'kind', kind),"
	"  'reason', 'holding: ' || kind || ' \u00e9', 'decision', 'hold', 'next_tick_ms', 10000, 'set_weight', false,"
	"  'slos', '[{\"slo\": \"errors\", \"verdict\": \"pass\"}]'::jsonb,"
	"  'verdicts', jsonb_build_array(jsonb_build_object('slo', 'errors', 'verdict',"
	"      CASE WHEN kind = 'poison' THEN 'maybe' ELSE 'pass' END, 'candidate', 0.01, 'baseline', 0.02,"
	"      'objective', 0.05, 'n_candidate', 10, 'n_baseline', 990, 'why', 'within'),"
	"    '{\"slo\": \"p99\", \"verdict\": \"inconclusive\", \"why\": \"too few\"}'::jsonb),"
	"  'measurement', '{\"at\": 1700000000.25, \"baseline\": {\"requests\": 990}, \"candidate\": {\"requests\": 10}}'::jsonb)"
	" || CASE kind"
	"    WHEN 'hold-nomeas' THEN '{}'::jsonb"
	"    WHEN 'pause' THEN '{\"phase\": \"paused\", \"decision\": \"pause\"}'"
	"    WHEN 'badweight' THEN '{\"weight\": 150}'"
	"    WHEN 'promote' THEN '{\"phase\": \"promoted\", \"step\": 2, \"weight\": 100, \"set_weight\": true,"
	"                          \"decision\": \"promote\"}'"
	"    WHEN 'hold-setw' THEN '{\"set_weight\": true}'"
	"    WHEN 'drift' THEN '{\"step\": 1, \"weight\": 5}'" /* plain: a weight that changes without a set */
	"    ELSE '{}' END"
	" - CASE WHEN kind = 'hold-nomeas' THEN 'measurement' ELSE '' END $$";

static int setup(void **state)
{
	(void)state;
	char sql[4096];
	setup_db(&db);
	make_login(&db, "t_rbctrl", "canary_controller", ctrl, sizeof ctrl, as_ctrl, sizeof as_ctrl);
	sql_ok(db.conninfo, DOCS);
	/* two worlds a1..a8 and b1..b8, copies of the service "demo", each rollout progressing at 1% and leased to
	 * d1; rollout 3 is leased to another daemon, rollout 4 has ended, rollout 7 has a command queued */
	sql_ok(db.conninfo,
	       "SELECT count(canary.apply_service(w || i, v.source, jsonb_set(v.spec, '{name}', to_jsonb(w || i)), "
	       "0::smallint)) FROM service_versions v, unnest(ARRAY['a', 'b']) w, generate_series(1, 8) i "
	       "WHERE v.service = 'demo';"
	       "SELECT count(canary.start_rollout(w || i, 'v2', 'default', 'test')) "
	       "FROM unnest(ARRAY['a', 'b']) w, generate_series(1, 8) i;"
	       "UPDATE rollouts SET phase = 'progressing', step = 0, weight = 1, lease_owner = 'd1', "
	       "lease_until = now() + interval '1 hour' WHERE service ~ '^[ab][0-9]$';"
	       "UPDATE rollouts SET lease_owner = 'other' WHERE service IN ('a3', 'b3');"
	       "UPDATE rollouts SET phase = 'aborted', finished_at = now() WHERE service IN ('a4', 'b4');"
	       "SELECT canary.queue_command(id, 'pause', 'operator wants a look') FROM rollouts "
	       "WHERE service IN ('a7', 'b7')");
	for (int w = 0; w < 2; w++)
		for (int k = 1; k <= K; k++) {
			snprintf(sql, sizeof sql, "SELECT id FROM rollouts WHERE service = '%c%d'", "ab"[w], k);
			ids[w][k] = count(&db, sql);
		}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_fixture_drop(&db);
	drop_login(&db, ctrl);
	return 0;
}

/* An element's outcome: "ok", or "SQLSTATE: message" with the rollout's id written as ID (the worlds' ids differ). */
static void outcome(char *out, size_t len, const char *state, const char *msg, long long id)
{
	if (!state || !*state) {
		snprintf(out, len, "ok");
		return;
	}
	char ids_[32], norm[600] = "";
	snprintf(ids_, sizeof ids_, "%lld", id);
	size_t o = 0, il = strlen(ids_);
	for (const char *p = msg; *p && o + 3 < sizeof norm;) {
		if (strncmp(p, ids_, il) == 0 && (p == msg || p[-1] == ' ') && (p[il] < '0' || p[il] > '9')) {
			o += (size_t)snprintf(norm + o, sizeof norm - o, "ID");
			p += il;
		} else {
			norm[o++] = *p++;
		}
	}
	norm[o] = '\0';
	snprintf(out, len, "%s: %s", state, norm);
}

/* Records elements (rollout index, document kind) in world "a" as one canary.record_batch and in world "b" one
 * canary.record at a time; each element's outcome must be the same in both and what `want` says ("ok" or a
 * SQLSTATE). */
static void record_both(int n, const int *k, const char *const *kind, const char *const *want)
{
	char sql[2048], a[16][700], b[16][700];
	size_t o = 0;
	o += (size_t)snprintf(sql + o, sizeof sql - o, "SELECT ok, err_state, err_message FROM canary.record_batch('d1', "
			      "ARRAY[");
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(sql + o, sizeof sql - o, "%s%lld", i ? ", " : "", ids[0][k[i]]);
	o += (size_t)snprintf(sql + o, sizeof sql - o, "]::bigint[], jsonb_build_array(");
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(sql + o, sizeof sql - o, "%spublic.t_doc('%s')", i ? ", " : "", kind[i]);
	snprintf(sql + o, sizeof sql - o, ")) ORDER BY idx");
	PGconn *c = PQconnectdb(as_ctrl);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != n)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	for (int i = 0; i < n; i++)
		outcome(a[i], sizeof a[i], strcmp(PQgetvalue(r, i, 0), "t") == 0 ? "" : PQgetvalue(r, i, 1),
			PQgetvalue(r, i, 2), ids[0][k[i]]);
	PQclear(r);
	for (int i = 0; i < n; i++) {
		snprintf(sql, sizeof sql, "SELECT canary.record(%lld, 'd1', public.t_doc('%s'))", ids[1][k[i]], kind[i]);
		r = PQexec(c, sql);
		bool good = PQresultStatus(r) == PGRES_TUPLES_OK;
		outcome(b[i], sizeof b[i], good ? "" : PQresultErrorField(r, PG_DIAG_SQLSTATE),
			good ? "" : PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), ids[1][k[i]]);
		PQclear(r);
	}
	PQfinish(c);
	for (int i = 0; i < n; i++) {
		if (strcmp(a[i], b[i]) != 0)
			fail_msg("element %d (rollout %d, %s): the batch says '%s', canary.record '%s'", i + 1, k[i],
				 kind[i], a[i], b[i]);
		if (strncmp(a[i], want[i], strlen(want[i])) != 0)
			fail_msg("element %d (rollout %d, %s): '%s', not '%s'", i + 1, k[i], kind[i], a[i], want[i]);
	}
}

/* Everything world w (a or b) holds, with its rollouts as 1..8, decisions as their rank in their rollout, and
 * times only where a document set them. */
static void world(char w, char *out, size_t len)
{
	char sql[6000];
	snprintf(sql, sizeof sql,
		 "WITH r AS (SELECT substr(service, 2) AS k, * FROM rollouts WHERE service ~ '^%c[0-9]$'),"
		 " d AS (SELECT d.*, r.k, rank() OVER (PARTITION BY d.rollout_id ORDER BY d.id) AS n"
		 "       FROM decisions d JOIN r ON r.id = d.rollout_id)"
		 " SELECT md5(string_agg(t, E'\\n' ORDER BY t)) || ' ' || count(*) FROM ("
		 " SELECT concat_ws(' ', 'r', k, phase, step, weight, state, status, reason, finished_at IS NULL,"
		 "   round(extract(epoch FROM next_tick_at - updated_at)), lease_owner, state_seq) AS t FROM r"
		 " UNION ALL SELECT concat_ws(' ', 'm', r.k, m.at, m.step, m.weight, m.baseline, m.candidate,"
		 "   rank() OVER (PARTITION BY m.rollout_id ORDER BY m.id)) FROM measurements m JOIN r ON r.id = m.rollout_id"
		 " UNION ALL SELECT concat_ws(' ', 'd', k, n, step, weight, decision, phase_before, phase_after, reason) FROM d"
		 " UNION ALL SELECT concat_ws(' ', 'v', d.k, d.n, v.slo, v.verdict, v.candidate, v.baseline, v.objective,"
		 "   v.n_candidate, v.n_baseline, v.why) FROM slo_verdicts v JOIN d ON d.id = v.decision_id"
		 " UNION ALL SELECT concat_ws(' ', 'a', r.k, rank() OVER (PARTITION BY e.rollout_id ORDER BY e.id), e.kind,"
		 "   e.actor, e.recorded_by, e.service = r.service, e.reason, e.data - 'decision_id',"
		 "   (SELECT d.n FROM d WHERE d.id = (e.data->>'decision_id')::bigint AND d.rollout_id = e.rollout_id))"
		 "   FROM audit_events e JOIN r ON r.id = e.rollout_id"
		 " UNION ALL SELECT concat_ws(' ', 'c', r.k, c.kind, c.actor, c.reason, c.result, c.handled_at IS NULL)"
		 "   FROM commands c JOIN r ON r.id = c.rollout_id"
		 " UNION ALL SELECT concat_ws(' ', 's', substr(s.name, 2), s.live_slot, s.live_version) FROM services s"
		 "   WHERE s.name ~ '^%c[0-9]$'"
		 " UNION ALL SELECT concat_ws(' ', 'o', r.k, o.event) FROM outbox o JOIN r ON r.id = o.rollout_id) x",
		 w, w);
	scalar_text(sql, out, len);
}

/* Whether, in world a, rollout ka's decision number dn was written before rollout kb's audit event number en
 * (the set-based path writes every decision of a batch before its tick events; one by one, element by element). */
static bool decision_before_event(int ka, int dn, int kb, int en)
{
	char sql[1024];
	snprintf(sql, sizeof sql,
		 "SELECT ((SELECT at FROM decisions WHERE rollout_id = %lld ORDER BY id OFFSET %d LIMIT 1)"
		 " < (SELECT at FROM audit_events WHERE rollout_id = %lld ORDER BY id OFFSET %d LIMIT 1))::int",
		 ids[0][ka], dn - 1, ids[0][kb], en - 1);
	return count(&db, sql) == 1;
}

static void test_batch_records_what_single_records_would(void **state)
{
	(void)state;
	char wa[128], wb[128];

	/* 1: plain ticks (one without a measurement, one that moves the step and weight) next to every kind of element that is not plain */
	record_both(8, (const int[]){1, 2, 3, 4, 5, 6, 7, 8},
		    (const char *const[]){"drift", "hold-nomeas", "hold", "hold", "pause", "badweight", "promote",
					  "hold-setw"},
		    (const char *const[]){"ok", "ok", "CNUN0: rollout ID: lease lost", "CNIN0: rollout ID has ended",
					  "ok", "CNIN0: rollout ID: weight 150", "ok", "ok"});
	world('a', wa, sizeof wa);
	world('b', wb, sizeof wb);
	assert_string_equal(wa, wb);
	/* the plain ticks went set-based: rollout 2's decision before rollout 1's tick event (event 1 is
	 * rollout.started) */
	assert_true(decision_before_event(2, 1, 1, 2));

	/* 2: a verdict that does not fit its column: the plain ticks go one by one and only that element fails */
	record_both(3, (const int[]){1, 2, 8}, (const char *const[]){"hold", "hold", "poison"},
		    (const char *const[]){"ok", "ok", "23514: "});
	world('a', wa, sizeof wa);
	world('b', wb, sizeof wb);
	assert_string_equal(wa, wb);
	assert_false(decision_before_event(2, 2, 1, 3)); /* one by one: rollout 1's tick event came first */

	/* 3: a rollout named twice: the second element sees the first's write */
	record_both(2, (const int[]){1, 1}, (const char *const[]){"hold", "hold2"}, (const char *const[]){"ok", "ok"});
	world('a', wa, sizeof wa);
	world('b', wb, sizeof wb);
	assert_string_equal(wa, wb);

	/* the worlds are not trivially equal: each holds what was recorded */
	assert_int_equal(count(&db, "SELECT count(*) FROM decisions d JOIN rollouts r ON r.id = d.rollout_id "
				    "WHERE r.service ~ '^a[0-9]$'"),
			 5 + 2 + 2);
	assert_int_equal(count(&db, "SELECT count(*) FROM services WHERE name = 'a7' AND live_slot = 1"), 1);
	assert_int_equal(count(&db, "SELECT count(*) FROM commands c JOIN rollouts r ON r.id = c.rollout_id WHERE "
				    "r.service = 'a7' AND c.result = 'refused: rollout has ended (promoted)'"),
			 1);

	struct cn_err err = {0};
	struct cn_audit_report rep;
	struct cn_store *st = cn_store_connect(db.conninfo, &err);
	if (!st || cn_store_audit_verify(st, 0, &rep, &err) < 0)
		fail_msg("audit verify: %s", err.msg);
	cn_store_close(st);
	assert_int_equal(rep.problem, CN_AUDIT_INTACT);
	assert_true(rep.events >= 2 * (8 + 5 + 2 + 2));
}

/* One number from a superuser statement. */
static long long num(const char *sql)
{
	char v[64];
	scalar_text(sql, v, sizeof v);
	return atoll(v);
}

/* state_seq (migration 0021): one more with every write of a rollout's state, whoever writes it and whatever it
 * asks for; never for leases, holds or confirmed weights. And cn_store_rollouts_get leaves out exactly the state
 * whose version the caller says it holds. */
static void test_state_seq(void **state)
{
	(void)state;
	char sql[1024];
	long long id = ids[0][2]; /* a2: progressing, leased to d1 */
	snprintf(sql, sizeof sql, "SELECT state_seq FROM rollouts WHERE id = %lld", id);
	long long s0 = num(sql);
	assert_true(s0 >= 2); /* test 1 and 2 recorded a tick each */

	/* a plain tick (set-based), then one canary.record: one each */
	char call[512];
	snprintf(call, sizeof call, "SELECT ok FROM canary.record_batch('d1', ARRAY[%lld]::bigint[], "
		 "jsonb_build_array(public.t_doc('hold')))", id);
	PGconn *c = PQconnectdb(as_ctrl);
	PGresult *r = PQexec(c, call);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	assert_int_equal(num(sql), s0 + 1);
	snprintf(call, sizeof call, "SELECT canary.record(%lld, 'd1', public.t_doc('hold-setw'))", id);
	r = PQexec(c, call);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	assert_int_equal(num(sql), s0 + 2);
	/* a lease renewed, a weight confirmed, a hold, a refused record: none */
	snprintf(call, sizeof call,
		 "SELECT canary.renew_lease(%lld, 'd1', 3600000); SELECT canary.confirm_weight(%lld, 'd1', 1, false, 1);"
		 "SELECT canary.hold(%lld, 'd1', 'metrics down', 10000)", id, id, id);
	r = PQexec(c, call);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	snprintf(call, sizeof call, "SELECT canary.record(%lld, 'd1', public.t_doc('badweight'))", id);
	r = PQexec(c, call);
	assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	PQfinish(c);
	assert_int_equal(num(sql), s0 + 2);

	/* an owner's SQL: the same state written again counts, a number of its own choosing does not stick */
	snprintf(call, sizeof call, "UPDATE rollouts SET state = state WHERE id = %lld", id);
	sql_ok(db.conninfo, call);
	assert_int_equal(num(sql), s0 + 3);
	snprintf(call, sizeof call, "UPDATE rollouts SET state_seq = 1000, state = '{}' WHERE id = %lld", id);
	sql_ok(db.conninfo, call);
	assert_int_equal(num(sql), s0 + 4);
	snprintf(call, sizeof call, "UPDATE rollouts SET state_seq = %lld WHERE id = %lld", s0, id);
	sql_ok(db.conninfo, call);
	assert_int_equal(num(sql), s0 + 5);
	assert_int_equal(num("INSERT INTO rollouts (service, service_version_id, policy_id, candidate, candidate_slot, "
			     "phase, state_seq) SELECT service, service_version_id, policy_id, 'x', 1, 'aborted', 99 "
			     "FROM rollouts WHERE service = 'a4' RETURNING state_seq"),
			 0);

	/* the state left out only where the version held is the stored one (states the daemon's decoder reads) */
	long long a1 = ids[0][1];
	struct cn_rollout_state cs;
	memset(&cs, 0, sizeof cs);
	cs.phase = CN_PHASE_PROGRESSING;
	cs.step = 1;
	cs.weight = 5;
	json_t *cj = cn_state_to_json(&cs);
	char *ct = cj ? json_dumps(cj, JSON_COMPACT) : NULL;
	assert_non_null(ct);
	char upd[8192];
	snprintf(upd, sizeof upd, "UPDATE rollouts SET state = '%s' WHERE id IN (%lld, %lld)", ct, a1, id);
	sql_ok(db.conninfo, upd);
	free(ct);
	json_decref(cj);
	snprintf(sql, sizeof sql, "SELECT state_seq FROM rollouts WHERE id = %lld", a1);
	long long s1 = num(sql), s2 = num((snprintf(call, sizeof call, "SELECT state_seq FROM rollouts WHERE id = %lld",
						    id), call));
	struct cn_err err = {0};
	struct cn_store *st = cn_store_connect(as_ctrl, &err);
	if (!st)
		fail_msg("%s", err.msg);
	const int64_t want[3] = {a1, id, ids[0][3]}, held[3] = {s1, s2 - 1, -1};
	struct cn_rollout_row *rows[3];
	if (cn_store_rollouts_get(st, want, held, 3, false, rows, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(s1 > 0);
	assert_true(rows[0]->state_elided);
	assert_false(rows[0]->has_state);
	assert_int_equal(rows[0]->state_seq, s1);
	assert_false(rows[1]->state_elided); /* an older version held: the stored state comes */
	assert_true(rows[1]->has_state);
	assert_int_equal(rows[1]->state.step, 1);
	assert_true(rows[1]->state.weight == 5);
	assert_int_equal(rows[1]->state_seq, s2);
	assert_false(rows[2]->state_elided); /* none held */
	for (int i = 0; i < 3; i++)
		cn_rollout_row_free(rows[i]);
	/* without versions held, every state comes */
	if (cn_store_rollouts_get(st, want, NULL, 3, false, rows, &err) < 0)
		fail_msg("%s", err.msg);
	for (int i = 0; i < 3; i++) {
		assert_false(rows[i]->state_elided);
		assert_true(rows[i]->has_state || i == 2);
		cn_rollout_row_free(rows[i]);
	}
	cn_store_close(st);
}

/* One canary.record_batch as the controller: rollouts a[i] with documents t_doc('hold') carrying state_seq seq[i]
 * (< 0: none); each element's "ok" or SQLSTATE into out[i]. */
static void batch_with_seqs(int n, const long long *a, const long long *seq, char (*out)[16])
{
	char sql[2048], docs[1024] = "";
	size_t o, d = 0;
	for (int i = 0; i < n; i++) {
		char one[160];
		if (seq[i] < 0)
			snprintf(one, sizeof one, "%spublic.t_doc('hold')", i ? ", " : "");
		else
			snprintf(one, sizeof one, "%spublic.t_doc('hold') || jsonb_build_object('state_seq', %lld)",
				 i ? ", " : "", seq[i]);
		d += (size_t)snprintf(docs + d, sizeof docs - d, "%s", one);
	}
	o = (size_t)snprintf(sql, sizeof sql, "SELECT ok, err_state FROM canary.record_batch('d1', ARRAY[");
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(sql + o, sizeof sql - o, "%s%lld", i ? ", " : "", a[i]);
	snprintf(sql + o, sizeof sql - o, "]::bigint[], jsonb_build_array(%s)) ORDER BY idx", docs);
	PGconn *c = PQconnectdb(as_ctrl);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != n)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	for (int i = 0; i < n; i++)
		snprintf(out[i], 16, "%s", strcmp(PQgetvalue(r, i, 0), "t") == 0 ? "ok" : PQgetvalue(r, i, 1));
	PQclear(r);
	PQfinish(c);
}

/* Migration 0024: a tick judged on a row that was written since it was read (an owner's SQL between the daemon's
 * read and its record) is refused with CNST0 on either path and writes nothing, not even next to a good element of
 * the same batch; judged on the current version it is recorded. Which writes move the version on: state, phase,
 * step, weight; not a reason, a lease or a hold. */
static void test_stale_record_refused(void **state)
{
	(void)state;
	long long a1 = ids[0][1], a2 = ids[0][2];
	char q1[256], q2[256], dq[256], out[2][16], call[512];
	snprintf(q1, sizeof q1, "SELECT state_seq FROM rollouts WHERE id = %lld", a1);
	snprintf(q2, sizeof q2, "SELECT state_seq FROM rollouts WHERE id = %lld", a2);
	snprintf(dq, sizeof dq, "SELECT count(*) FROM decisions WHERE rollout_id = %lld", a2);
	long long s1 = num(q1), s2 = num(q2), d0 = num(dq);

	/* the owner edits a2's state after the daemon read it (version s2) */
	snprintf(call, sizeof call, "UPDATE rollouts SET state = jsonb_set(state, '{op}', '\"edited\"') WHERE id = %lld",
		 a2);
	sql_ok(db.conninfo, call);
	assert_int_equal(num(q2), s2 + 1);
	/* a batch of a1 (current version: plain, set-based) and a2 (judged on s2): a1 recorded, a2 refused */
	batch_with_seqs(2, (const long long[]){a1, a2}, (const long long[]){s1, s2}, out);
	assert_string_equal(out[0], "ok");
	assert_string_equal(out[1], "CNST0");
	assert_int_equal(num(q1), s1 + 1);
	assert_int_equal(num(q2), s2 + 1);
	assert_int_equal(num(dq), d0);
	char v[64];
	snprintf(call, sizeof call, "SELECT state->>'op' FROM rollouts WHERE id = %lld", a2);
	scalar_text(call, v, sizeof v);
	assert_string_equal(v, "edited");
	/* canary.record the same, with the reason in words */
	snprintf(call, sizeof call, "SELECT canary.record(%lld, 'd1', public.t_doc('hold') || "
		 "jsonb_build_object('state_seq', %lld))", a2, s2);
	PGconn *c = PQconnectdb(as_ctrl);
	PGresult *r = PQexec(c, call);
	assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "CNST0");
	assert_non_null(strstr(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), "changed since this daemon read it"));
	PQclear(r);
	PQfinish(c);
	assert_int_equal(num(dq), d0);
	assert_int_equal(num(q2), s2 + 1);

	/* a phase, step or weight written counts too; a reason, a lease renewed or a hold does not */
	snprintf(call, sizeof call, "UPDATE rollouts SET phase = phase WHERE id = %lld; "
		 "UPDATE rollouts SET weight = weight, step = step WHERE id = %lld", a2, a2);
	sql_ok(db.conninfo, call);
	assert_int_equal(num(q2), s2 + 3);
	snprintf(call, sizeof call, "UPDATE rollouts SET reason = 'looked at' WHERE id = %lld", a2);
	sql_ok(db.conninfo, call);
	c = PQconnectdb(as_ctrl);
	snprintf(call, sizeof call, "SELECT canary.renew_lease(%lld, 'd1', 3600000); "
		 "SELECT canary.hold(%lld, 'd1', 'metrics down', 10000)", a2, a2);
	r = PQexec(c, call);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	PQclear(r);
	PQfinish(c);
	assert_int_equal(num(q2), s2 + 3);

	/* judged on the current version, or a document without one (as before 0024): recorded */
	batch_with_seqs(2, (const long long[]){a2, a1}, (const long long[]){s2 + 3, -1}, out);
	assert_string_equal(out[0], "ok");
	assert_string_equal(out[1], "ok");
	assert_int_equal(num(q2), s2 + 4);
	assert_int_equal(num(dq), d0 + 1);
	scalar_text((snprintf(call, sizeof call, "SELECT coalesce(state->>'op', '-') FROM rollouts WHERE id = %lld",
			      a2), call), v, sizeof v);
	assert_string_equal(v, "-"); /* the daemon's state, judged knowing the edit */
}

/* 0004's encoding, as its SQL functions computed it, against canary_audit_hash: NULLs, empty strings, multibyte
 * text, negative and pre-1970 times. */
static void test_hash_is_0004s(void **state)
{
	(void)state;
	char v[64];
	scalar_text(
		"WITH x AS ("
		" SELECT * FROM (VALUES"
		"  (repeat('0', 64), 1::bigint, '2026-12-02 04:31:43.123456+00'::timestamptz, 'alice', 'bob', 7::bigint,"
		"   'demo', 'tick', 'holding \u00fc\u20ac\U0001F600', '{\"a\": [1, 2.50, null], \"\u00e9\": \"x\"}'::jsonb),"
		"  (repeat('f', 64), 9223372036854775807, '1969-12-31 23:59:59.999999+00', '', '', NULL, NULL, '', NULL,"
		"   '{}'),"
		"  (md5('x') || md5('y'), 0, 'epoch', 'r\u00f6le', NULL, -1, 's', 'k', E'a\\nb:c', '[]')) t"
		"  (prev, id, at, recorded_by, actor, rollout_id, service, kind, reason, data))"
		" SELECT count(*) FILTER (WHERE canary_audit_hash(prev, id, at, recorded_by, actor, rollout_id, service,"
		"   kind, reason, data) IS DISTINCT FROM encode(sha256(convert_to(prev, 'UTF8')"
		"   || convert_to('canary.audit.v1' || chr(10), 'UTF8')"
		"   || (SELECT string_agg(CASE WHEN v IS NULL THEN '\\x2d0a'::bytea ELSE convert_to(octet_length("
		"        convert_to(v, 'UTF8'))::text || ':', 'UTF8') || convert_to(v, 'UTF8') || '\\x0a'::bytea END, ''"
		"        ORDER BY o) FROM unnest(ARRAY[id::text, ((extract(epoch FROM at) * 1000000)::bigint)::text,"
		"        recorded_by, actor, rollout_id::text, service, kind, reason, data::text]) WITH ORDINALITY u(v, o))),"
		"   'hex')) || '/' || count(*) FROM x",
		v, sizeof v);
	assert_string_equal(v, "0/3");
}

int main(void)
{
	check_env();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_records_what_single_records_would),
		cmocka_unit_test(test_hash_is_0004s),
		cmocka_unit_test(test_state_seq),
		cmocka_unit_test(test_stale_record_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
