/* Integration: the SLA ledger in a real Postgres (DATABASE_URL). A synthetic month (2026-11, 43,200 minutes) written
 * through canary.sla_record as the controller role, read back and judged: the report's numbers (windows met, missed
 * and without data, attainment, the credit) are the ones the month was built to give; a minute is recorded once
 * (a second record changes nothing); only the controller role writes, and only through the function; a viewer reads;
 * canaryd's record path stores a histogram per bucket and reads it back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/sla_contract.h"
#include "canary/service.h"
#include "canary/sla.h"
#include "canary/store.h"
#include "canary/store_sla.h"
#include "store_fixture.h"

static const char service_text[] = "name: shop\n"
				   "gateway:\n"
				   "  runtime_api: 127.0.0.1:9999\n"
				   "  backend: shop\n"
				   "slots:\n"
				   "  blue:  { server: b1, metrics_url: http://127.0.0.1:18001/metrics }\n"
				   "  green: { server: g1, metrics_url: http://127.0.0.1:18002/metrics }\n"
				   "live: green\n";

static const char contract_text[] = "name: gold\n"
				    "service: shop\n"
				    "price: 12000\n"
				    "objectives:\n"
				    "  - { name: p99, metric: latency, quantile: 0.99, max: 800ms, window: 5m, target: 99% }\n"
				    "  - { name: ttft, metric: ttft, quantile: 0.95, max: 1s, window: 1h, target: 99% }\n"
				    "  - { name: availability, metric: availability, min: 99.9% }\n"
				    "credits:\n"
				    "  - { below: 99.9%, credit: 10% }\n"
				    "  - { below: 99%, credit: 25% }\n"
				    "  - { below: 95%, credit: 100% }\n";

/* Every minute of 2026-11 but 1000..1004 (not recorded: window 200 has no data); minutes 5, 10005 ... 40005 are
 * recorded without numbers (a failed scrape); each other minute has 1,000 requests, 1 error, and latencies all
 * under 100 ms except in windows 7, 107, 207 ... (2% above 1 s there). No TTFT histogram at all. */
static const char month_sql[] =
	"SET ROLE canary_controller; "
	"SELECT count(*) FILTER (WHERE canary.sla_record('shop', '2026-11-01T00:00:00Z'::timestamptz + i * interval "
	"'1 minute', CASE WHEN i % 10000 = 5 THEN NULL ELSE 1000 END, CASE WHEN i % 10000 = 5 THEN NULL ELSE 1 END, "
	"CASE WHEN i % 10000 = 5 THEN NULL ELSE '{0.1,0.2,0.5,1,Infinity}'::float8[] END, "
	"CASE WHEN i % 10000 = 5 THEN NULL WHEN (i / 5) % 100 = 7 THEN '{980,0,0,0,20}'::int[] "
	"ELSE '{1000}'::int[] END, NULL, NULL, "
	"CASE WHEN i % 10000 = 5 THEN 'scrape failed' END)) FROM generate_series(0, 43199) i "
	"WHERE i NOT BETWEEN 1000 AND 1004";

static void apply_service(struct store_ctx *c)
{
	struct cn_service sv;
	struct cn_err err = {0};
	char *src = NULL;
	int version;
	bool created;
	const char *path = store_ctx_temp_file("canary-service", service_text);
	if (cn_service_load_file(path, &sv, &src, &err) != 0)
		fail_msg("load: %s", err.msg);
	unlink(path);
	assert_int_equal(cn_store_service_apply(c->s, &sv, src, &version, &created, &err), 0);
	free(src);
}

/* Every statement of sql fails with a message that holds want. */
static void expect_refused(const struct store_ctx *c, const char *const *sql, size_t n, const char *want)
{
	char msg[512];
	for (size_t i = 0; i < n; i++) {
		msg[0] = '\0';
		if (pg_fixture_exec(c->db.conninfo, sql[i], msg, sizeof msg) == 0 || !strstr(msg, want))
			fail_msg("%s: %s", sql[i], msg[0] ? msg : "accepted");
	}
}

static void test_month(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	char msg[512] = "";
	apply_service(c);
	long long n = pg_fixture_scalar(c->db.conninfo, month_sql, msg, sizeof msg);
	if (n != 43195)
		fail_msg("recorded %lld minutes: %s", n, msg);

	struct cn_sla_contract ct;
	assert_int_equal(cn_sla_contract_parse(contract_text, strlen(contract_text), "gold.yaml", &ct, &err), 0);
	int64_t s, e;
	int days;
	assert_int_equal(cn_sla_month("2026-11", &s, &e, &days, &err), 0);
	struct cn_sla_data *d = NULL;
	if (cn_store_sla_read(c->s, "shop", s, e, &d, &err) != 0)
		fail_msg("read: %s", err.msg);
	assert_int_equal(d->ledger.n, 43195);
	assert_int_equal(d->ledger.nbounds, 1);
	assert_true(d->now_us > e); /* the database's clock: after November 2026 */
	struct cn_sla_result *r = NULL;
	assert_int_equal(cn_sla_evaluate(&ct, &d->ledger, s, e, d->now_us, &r, &err), 0);
	assert_int_equal(r->days, 30);
	assert_int_equal(r->minutes_elapsed, 43200);
	assert_int_equal(r->minutes_nodata, 10);

	const struct cn_sla_objective_result *p99 = &r->objectives[0];
	assert_int_equal(p99->nwindows, 8640);
	assert_int_equal(p99->missed, 87);  /* windows 7, 107, ... 8607 */
	assert_int_equal(p99->nodata, 6);   /* windows 1, 2001, 4001, 6001, 8001 and 200 */
	assert_int_equal(p99->met, 8547);
	assert_true(fabs(p99->attainment - 8547.0 / 8640) < 1e-12);
	assert_false(p99->ok);
	assert_true(fabs(p99->credit - 0.25) < 1e-12);
	const struct cn_sla_window *w7 = &p99->windows[7];
	assert_int_equal(w7->state, CN_SLA_MISSED);
	assert_true(w7->total == 5000 && w7->bad == 100);
	assert_true(w7->value > 0.5 && w7->value <= 1.0); /* the p99 of the window's summed buckets */
	assert_int_equal(p99->windows[1].state, CN_SLA_NODATA);
	assert_int_equal(p99->windows[1].nodata_minutes, 1);
	assert_int_equal(p99->windows[200].nodata_minutes, 5);

	/* no TTFT was ever measured: every window is no data, attainment 0, never a silent pass */
	const struct cn_sla_objective_result *ttft = &r->objectives[1];
	assert_int_equal(ttft->nwindows, 720);
	assert_int_equal(ttft->nodata, 720);
	assert_true(ttft->attainment == 0);
	assert_true(fabs(ttft->credit - 1.0) < 1e-12);

	const struct cn_sla_objective_result *av = &r->objectives[2];
	assert_true(av->total == 43190000.0 && av->bad == 43190.0);
	assert_true(fabs(av->attainment - 0.999 * 43190 / 43200) < 1e-12);
	assert_false(av->ok);
	assert_true(fabs(av->credit - 0.10) < 1e-12);

	assert_true(fabs(r->credit - 1.0) < 1e-12);
	assert_int_equal(r->credit_from, 1);
	assert_true(fabs(r->credit_amount - 12000) < 1e-9);
	cn_sla_result_free(r);
	cn_sla_data_free(d);

	/* the month's storage, for the record */
	printf("sla_minutes for one service-month: %lld bytes (table, TOAST and indexes)\n",
	       store_ctx_scalar(c, "SELECT pg_total_relation_size('sla_minutes')"));
}

static void test_once_per_minute_and_roles(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	char msg[512] = "";
	apply_service(c);
	const char *rec = "SELECT canary.sla_record('shop', '2026-11-02T10:00:00Z', %s, 0, NULL, NULL, NULL, NULL, NULL)";
	char sql[512];
	snprintf(sql, sizeof sql, "SET ROLE canary_controller; SELECT count(*) FROM (%s) x WHERE x.sla_record", rec);
	char q[700];
	snprintf(q, sizeof q, sql, "100");
	assert_int_equal(pg_fixture_scalar(c->db.conninfo, q, msg, sizeof msg), 1);
	snprintf(q, sizeof q, sql, "999"); /* another daemon, or a restart: the first record stands */
	assert_int_equal(pg_fixture_scalar(c->db.conninfo, q, msg, sizeof msg), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT requests FROM sla_minutes WHERE service = 'shop'"), 100);

	/* nobody writes the table directly; viewers read it and may not record */
	const char *refused[] = {
		"SET ROLE canary_controller; INSERT INTO sla_minutes (service, minute, requests, errors) "
		"VALUES ('shop', now() - interval '1 day', 1, 0)",
		"SET ROLE canary_controller; UPDATE sla_minutes SET requests = 1",
		"SET ROLE canary_controller; DELETE FROM sla_minutes",
		"SET ROLE canary_operator; SELECT canary.sla_record('shop', now(), 1, 0, NULL, NULL, NULL, NULL, NULL)",
		"SET ROLE canary_viewer; SELECT canary.sla_record('shop', now(), 1, 0, NULL, NULL, NULL, NULL, NULL)",
		"SET ROLE canary_viewer; INSERT INTO sla_bounds (le) VALUES ('{1,Infinity}')",
		"SET ROLE canary_controller; SELECT canary.sla_gc(now() - interval '1 year', 'x')",
	};
	expect_refused(c, refused, sizeof refused / sizeof refused[0], "permission denied");
	assert_int_equal(pg_fixture_scalar(c->db.conninfo, "SET ROLE canary_viewer; SELECT count(*) FROM sla_minutes",
					   msg, sizeof msg), 1);

	/* canaryd's path: a cumulative histogram is stored per bucket, trailing empty buckets left out */
	struct cn_histogram h = {.nbuckets = 5, .le = {0.1, 0.2, 0.5, 1, INFINITY}, .count = {3, 5, 5, 9, 9}};
	struct cn_sla_record one = {.data = true, .requests = 9, .errors = 2, .latency = &h};
	int64_t s, e;
	int days;
	assert_int_equal(cn_sla_month("2026-11", &s, &e, &days, &err), 0);
	int64_t minute = s + 3 * 60000000LL;
	assert_int_equal(cn_store_sla_record(c->s, "shop", minute, &one, &err), 1);
	assert_int_equal(cn_store_sla_record(c->s, "shop", minute, &one, &err), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT array_length(lat, 1) FROM sla_minutes WHERE minute = "
					     "'2026-11-01T00:03:00Z'"), 4);
	struct cn_sla_record none = {.data = false, .note = "scrape failed: connection refused"};
	assert_int_equal(cn_store_sla_record(c->s, "shop", minute + 60000000LL, &none, &err), 1);
	struct cn_sla_data *d = NULL;
	assert_int_equal(cn_store_sla_read(c->s, "shop", s, e, &d, &err), 0);
	assert_int_equal(d->ledger.n, 3);
	const struct cn_sla_minute *m = &d->ledger.minutes[0];
	assert_int_equal(m->minute_us, minute);
	assert_true(m->data && m->requests == 9 && m->errors == 2);
	int32_t want[5] = {3, 2, 0, 4, 0};
	assert_non_null(m->lat);
	assert_memory_equal(m->lat, want, sizeof want);
	assert_null(m->ttft);
	assert_false(d->ledger.minutes[1].data);
	assert_string_equal(d->ledger.minutes[1].note, "scrape failed: connection refused");
	cn_sla_data_free(d);

	/* a minute in the future, or one of a service nobody applied, is refused as bad input */
	assert_int_equal(cn_store_sla_record(c->s, "shop", (int64_t)4102444800 * 1000000, &one, &err), -CN_EINPUT);
	assert_int_equal(cn_store_sla_record(c->s, "nosuch", minute, &one, &err), -CN_EINPUT);

	/* gc: operators delete old minutes, audited; the recent past stays */
	int64_t rows = -1;
	assert_int_equal(cn_store_sla_gc(c->s, e, "test", &rows, &err), 0);
	assert_int_equal(rows, 3);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'sla.gc' AND "
					     "(data->>'rows')::int = 3"), 1);
}

/* canaryd's batch (cn_store_sla_record_batch): many minutes in one statement, each stored as its own call would store
 * it (histogram per bucket, note, no-data row); one that is refused (a minute in the future, a service nobody
 * applied) costs only itself, with its own error (the one its own call gets); a minute already recorded answers 0; the batch is empty after. */
static void test_batch(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	apply_service(c);
	int64_t s, e;
	int days;
	assert_int_equal(cn_sla_month("2026-11", &s, &e, &days, &err), 0);
	struct cn_histogram h = {.nbuckets = 5, .le = {0.1, 0.2, 0.5, 1, INFINITY}, .count = {3, 5, 5, 9, 9}};
	struct cn_sla_record one = {.data = true, .requests = 9, .errors = 2, .latency = &h, .ttft = &h};
	struct cn_sla_record none = {.data = false, .note = "live slot blue: \"quoted\", {braced}, comma"};
	struct cn_sla_batch *b = cn_sla_batch_new();
	assert_non_null(b);
	assert_int_equal(cn_store_sla_record(c->s, "shop", s, &one, &err), 1); /* recorded before: 0 in the batch */
	const int64_t future = (int64_t)4102444800 * 1000000;
	struct {
		const char *svc;
		int64_t minute;
		const struct cn_sla_record *rec;
		int want;
	} in[] = {
		{"shop", s, &one, 0},
		{"shop", s + 60000000LL, &one, 1},
		{"shop", future, &one, -CN_EINPUT},
		{"shop", s + 120000000LL, &none, 1},
		{"nosuch", s, &one, -CN_EINPUT},
		{"shop", s + 180000000LL, &one, 1},
	};
	enum { N = sizeof in / sizeof in[0] };
	int rc[N];
	struct cn_err errs[N];
	for (int i = 0; i < N; i++)
		assert_int_equal(cn_sla_batch_add(b, in[i].svc, in[i].minute, in[i].rec, &err), 0);
	assert_int_equal(cn_sla_batch_len(b), N);
	assert_int_equal(cn_store_sla_record_batch(c->s, b, rc, errs), 0);
	assert_int_equal(cn_sla_batch_len(b), 0);
	for (int i = 0; i < N; i++)
		if (rc[i] != in[i].want)
			fail_msg("minute %d: %d, not %d (%s)", i, rc[i], in[i].want, rc[i] < 0 ? errs[i].msg : "");
	assert_non_null(strstr(errs[2].msg, "future"));
	struct cn_sla_data *d = NULL;
	assert_int_equal(cn_store_sla_read(c->s, "shop", s, e, &d, &err), 0);
	assert_int_equal(d->ledger.n, 4);
	int32_t want[5] = {3, 2, 0, 4, 0};
	for (int i = 0; i < 4; i++) {
		const struct cn_sla_minute *m = &d->ledger.minutes[i];
		assert_int_equal(m->minute_us, s + i * 60000000LL);
		if (i == 2) {
			assert_false(m->data);
			assert_string_equal(m->note, none.note);
			continue;
		}
		assert_true(m->data && m->requests == 9 && m->errors == 2);
		assert_non_null(m->lat);
		assert_memory_equal(m->lat, want, sizeof want);
		assert_non_null(m->ttft);
	}
	cn_sla_data_free(d);
	/* all accepted: one statement, and the same answers */
	assert_int_equal(cn_sla_batch_add(b, "shop", s + 240000000LL, &one, &err), 0);
	assert_int_equal(cn_sla_batch_add(b, "shop", s + 60000000LL, &one, &err), 0);
	unsigned long long trips = cn_store_round_trips(c->s);
	assert_int_equal(cn_store_sla_record_batch(c->s, b, rc, errs), 0);
	assert_true(cn_store_round_trips(c->s) - trips <= 2); /* a first use prepares the statement */
	assert_int_equal(rc[0], 1);
	assert_int_equal(rc[1], 0);
	/* an empty batch costs nothing */
	trips = cn_store_round_trips(c->s);
	assert_int_equal(cn_store_sla_record_batch(c->s, b, rc, errs), 0);
	assert_int_equal(cn_store_round_trips(c->s), trips);
	/* the database drops the connection just before a batch: every minute fails alike, with one error and not one
	 * round trip each, nothing is written, and the batch is empty for the next boundary */
	assert_int_equal(cn_sla_batch_add(b, "shop", s + 300000000LL, &one, &err), 0);
	assert_int_equal(cn_sla_batch_add(b, "shop", s + 360000000LL, &none, &err), 0);
	assert_true(store_ctx_scalar(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
				       "WHERE datname = current_database() AND pid <> pg_backend_pid()") >= 1);
	trips = cn_store_round_trips(c->s);
	assert_int_equal(cn_store_sla_record_batch(c->s, b, rc, errs), -CN_EUNAVAIL);
	assert_true(cn_store_round_trips(c->s) - trips <= 1);
	assert_int_equal(rc[0], -CN_EUNAVAIL);
	assert_int_equal(rc[1], -CN_EUNAVAIL);
	assert_int_equal(cn_sla_batch_len(b), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM sla_minutes WHERE minute >= '2026-11-01T00:05:00Z'"),
			 0);
	cn_sla_batch_free(b);
}

static char *observers_of(struct cn_store *s, const char *owner, int64_t ttl_ms)
{
	static char out[256];
	struct cn_err err = {0};
	struct cn_sla_targets *t = NULL;
	if (cn_store_sla_targets(s, &t, &err) < 0 || cn_store_sla_observers(s, owner, ttl_ms, t, &err) < 0)
		fail_msg("sla observers: %s", err.msg);
	out[0] = '\0';
	for (size_t i = 0; i < t->nobservers; i++)
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? " " : "", t->observers[i]);
	cn_sla_targets_free(t);
	return out;
}

/* Migration 0026: observers register with a time to live and read the live list, in one order for all; one that
 * leaves is gone at once, one whose time lapsed is not listed; a negative time is refused; only the controller may
 * register. */
static void test_observers(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	assert_string_equal(observers_of(c->s, "obs-b", 60000), "obs-b");
	assert_string_equal(observers_of(c->s, "obs-a", 60000), "obs-a obs-b");
	assert_string_equal(observers_of(c->s, "obs-c", 60000), "obs-a obs-b obs-c");
	assert_int_equal(cn_store_sla_observer_leave(c->s, "obs-b", &err), 0);
	assert_string_equal(observers_of(c->s, "obs-a", 60000), "obs-a obs-c");
	/* obs-c's time lapses */
	assert_int_equal(store_ctx_scalar(c, "WITH u AS (UPDATE sla_observers SET expires_at = now() - interval '1 s' "
					     "WHERE owner = 'obs-c' RETURNING 1) SELECT count(*) FROM u"), 1);
	assert_string_equal(observers_of(c->s, "obs-a", 60000), "obs-a");
	/* a negative time (canaryd's code asserts it never sends one) or no owner: refused as bad input */
	const char *bad[] = {"SET ROLE canary_controller; SELECT * FROM canary.sla_observers('x', -1)",
			     "SET ROLE canary_controller; SELECT * FROM canary.sla_observers('', 60000)"};
	expect_refused(c, bad, 2, "time to live");
	const char *refused[] = {
		"SET ROLE canary_operator; SELECT * FROM canary.sla_observers('x', 60000)",
		"SET ROLE canary_viewer; SELECT * FROM canary.sla_observers('x', 60000)",
		"SET ROLE canary_controller; INSERT INTO sla_observers VALUES ('x', now() + interval '1 day')",
	};
	expect_refused(c, refused, sizeof refused / sizeof refused[0], "permission denied");
}

/* canaryd's retention (--sla-retention): old minutes go, bounded per call and audited; recent ones and the current
 * month stay; only the controller may call it. */
static void test_retention(void **state)
{
	struct store_ctx *c = *state;
	struct cn_err err = {0};
	char msg[512] = "";
	apply_service(c);
	const char *fill =
		"SELECT count(*) FROM (SELECT canary.sla_record('shop', t, 10, 0, NULL, NULL, NULL, NULL, NULL) FROM ("
		"SELECT date_trunc('minute', now() - interval '400 days') + i * interval '1 minute' FROM generate_series(0, 2) i "
		"UNION ALL SELECT date_trunc('minute', now() - interval '300 days') + i * interval '1 minute' FROM generate_series(0, 1) i "
		"UNION ALL SELECT date_trunc('minute', now() - interval '1 hour') "
		"UNION ALL SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') x(t)) y";
	assert_int_equal(store_ctx_scalar(c, fill), 7);
	/* a missed window of 400 days ago goes with its minutes */
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM (SELECT canary.sla_window_missed('shop', "
					     "jsonb_build_object('contract', 'c', 'objective', 'o', 'window_start', "
					     "now() - interval '400 days', 'window_end', now() - interval '400 days' + "
					     "interval '5 minutes', 'service_version', (SELECT max(id) FROM service_versions "
					     "WHERE service = 'shop')))) x"), 1);
	int64_t rows = -1;
	assert_int_equal(cn_store_sla_retain(c->s, 396, 2, &rows, &err), 0);
	assert_int_equal(rows, 2); /* bounded: two per call */
	assert_int_equal(cn_store_sla_retain(c->s, 396, 2, &rows, &err), 0);
	assert_int_equal(rows, 1);
	assert_int_equal(cn_store_sla_retain(c->s, 396, 2, &rows, &err), 0);
	assert_int_equal(rows, 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM sla_minutes WHERE minute < now() - interval '396 days'"), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM sla_minutes"), 4);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM sla_window_misses"), 0);
	/* audited per call that deleted something, with the cut and the count */
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM audit_events WHERE kind = 'sla.retention'"), 2);
	assert_int_equal(store_ctx_scalar(c, "SELECT sum((data->>'rows')::int) FROM audit_events WHERE kind = "
					     "'sla.retention'"), 3);
	/* keeping one day still keeps the current month (UTC) */
	assert_int_equal(cn_store_sla_retain(c->s, 1, 1000, &rows, &err), 0);
	assert_int_equal(store_ctx_scalar(c, "SELECT count(*) FROM sla_minutes WHERE minute = date_trunc('month', now() "
					     "AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"), 1);
	assert_int_equal(cn_store_sla_retain(c->s, 0, 10, &rows, &err), -CN_EINPUT);
	assert_int_equal(cn_store_sla_retain(c->s, 30, 0, &rows, &err), -CN_EINPUT);
	const char *refused[] = {
		"SET ROLE canary_operator; SELECT canary.sla_retain(30, 10)",
		"SET ROLE canary_viewer; SELECT canary.sla_retain(30, 10)",
		"SET ROLE canary_viewer; SELECT canary.sla_window_missed('shop', '{}')",
	};
	expect_refused(c, refused, sizeof refused / sizeof refused[0], "permission denied");
	assert_int_equal(pg_fixture_scalar(c->db.conninfo, "SET ROLE canary_controller; SELECT canary.sla_retain(30, 10)",
					   msg, sizeof msg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_month, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_once_per_minute_and_roles, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_retention, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_batch, store_ctx_setup, store_ctx_teardown),
		cmocka_unit_test_setup_teardown(test_observers, store_ctx_setup, store_ctx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
