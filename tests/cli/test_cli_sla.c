/* CLI: `canaryctl sla` against a real Postgres: a synthetic month (2026-11) recorded through canary.sla_record as
 * the controller, reported as text, json and csv with the numbers it was built to give and drawn as HTML (one red mark
 * per missed window); bad input is one line: a bad contract FILE:LINE:COL and 65, a contract for another service 65,
 * an objective the service's metrics cannot compute FILE:LINE:COL and 65, a bad month 64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <unistd.h>

#include "canary/store_history.h"
#include "store_audit_support.h"

static struct pg_fixture db;
static char example[1024];

/* Minutes 1000..1004 unrecorded, 5, 10005 ... 40005 without numbers; 1,000 requests and 1 error a minute; windows
 * 7, 107 ... 8607 with 2% of latencies in the +Inf bucket; TTFT p95 200 ms everywhere. */
static const char month_sql[] =
	"SET ROLE canary_controller; "
	"SELECT count(*) FILTER (WHERE canary.sla_record('demo', '2026-11-01T00:00:00Z'::timestamptz + i * interval "
	"'1 minute', CASE WHEN i % 10000 = 5 THEN NULL ELSE 1000 END, CASE WHEN i % 10000 = 5 THEN NULL ELSE 1 END, "
	"CASE WHEN i % 10000 = 5 THEN NULL ELSE '{0.1,0.2,0.5,1,Infinity}'::float8[] END, "
	"CASE WHEN i % 10000 = 5 THEN NULL WHEN (i / 5) % 100 = 7 THEN '{980,0,0,0,20}'::int[] ELSE '{1000}'::int[] END, "
	"CASE WHEN i % 10000 = 5 THEN NULL ELSE '{0.05,0.1,0.3,1,Infinity}'::float8[] END, "
	"CASE WHEN i % 10000 = 5 THEN NULL ELSE '{500,400,100}'::int[] END, "
	"CASE WHEN i % 10000 = 5 THEN 'scrape failed' END)) FROM generate_series(0, 43199) i "
	"WHERE i NOT BETWEEN 1000 AND 1004";

static int setup(void **state)
{
	(void)state;
	check_env();
	setup_db(&db);
	char msg[512];
	if (pg_fixture_scalar(db.conninfo, month_sql, msg, sizeof msg) != 43195)
		fail_msg("%s", msg);
	snprintf(example, sizeof example, "%s/policies/sla-contract.yaml", getenv("CANARY_SOURCE_DIR"));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_fixture_drop(&db);
	return 0;
}

static void test_text_json_csv(void **state)
{
	(void)state;
	struct run r;
	const char *text[] = {"sla", "report", "--service", "demo", "--month", "2026-11", "--contract", example, NULL};
	ctl(&r, db.conninfo, text);
	expect_exit(&r, 0, "sla report");
	assert_int_equal(count(&db, "SELECT count(*) FROM sla_minutes"), 43195);
	assert_non_null(strstr(r.out, "minutes: 43200 elapsed, 43190 with data, 10 without (no_data: miss)"));
	assert_non_null(strstr(r.out, "credit owed: 25% of 12000.00 USD = 3000.00 USD (objective 'p99-latency')"));
	assert_non_null(strstr(r.out, "2026-11-01T00:35:00Z .. 2026-11-01T00:40:00Z  value 1 s, 5000 observations, "
				      "100 above the limit"));
	assert_non_null(strstr(r.out, "2026-11-01T16:40:00Z .. 2026-11-01T16:45:00Z  no data (5 minutes without "
				      "numbers)"));

	const char *json[] = {"--output", "json", "sla", "report", "--service", "demo", "--month", "2026-11",
			      "--contract", example, NULL};
	ctl(&r, db.conninfo, json);
	assert_int_equal(r.status, 0);
	json_error_t je;
	json_t *doc = json_loads(r.out, 0, &je);
	if (!doc)
		fail_msg("not json: %s", je.text);
	json_t *p99 = json_array_get(json_object_get(doc, "objectives"), 0);
	assert_int_equal(json_integer_value(json_object_get(p99, "windows")), 8640);
	assert_int_equal(json_integer_value(json_object_get(p99, "met")), 8547);
	assert_int_equal(json_integer_value(json_object_get(p99, "missed")), 87);
	assert_int_equal(json_integer_value(json_object_get(p99, "no_data")), 6);
	assert_int_equal(json_array_size(json_object_get(p99, "missed_windows")), 93);
	json_t *ttft = json_array_get(json_object_get(doc, "objectives"), 1);
	assert_int_equal(json_integer_value(json_object_get(ttft, "no_data")), 6);
	assert_true(json_is_true(json_object_get(ttft, "ok")));
	assert_true(json_real_value(json_object_get(doc, "credit")) == 0.25);
	assert_true(json_real_value(json_object_get(doc, "credit_amount")) == 3000);
	assert_string_equal(json_string_value(json_object_get(doc, "credit_from")), "p99-latency");
	assert_string_equal(json_string_value(json_object_get(doc, "start")), "2026-11-01T00:00:00Z");
	json_decref(doc);

	const char *csv[] = {"sla", "report", "--service", "demo", "--month", "2026-11", "--contract", example,
			     "--output", "csv", NULL};
	ctl(&r, db.conninfo, csv);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "service,month,contract,objective,metric,window,target_pct,attainment_pct,"
				      "windows,met,missed,no_data,pending,ok,credit_pct,credit_amount,currency\r\n"));
	assert_non_null(strstr(r.out, "demo,2026-11,demo-gold,p99-latency,latency,5m,99,98.923611,8640,8547,87,6,0,"
				      "false,25,3000.00,USD\r\n"));
	assert_non_null(strstr(r.out, "demo,2026-11,demo-gold,p95-ttft,ttft,1h,99,99.166667,720,714,0,6,0,true,10,"
				      "1200.00,USD\r\n"));
	assert_non_null(strstr(r.out, "demo,2026-11,demo-gold,availability,availability,month,99.9,99.876875,1,0,1,0,"
				      "0,false,10,1200.00,USD\r\n"));
}

static int occurrences(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void test_html(void **state)
{
	(void)state;
	struct run r;
	char path[] = "/tmp/canary-sla-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	const char *args[] = {"sla", "report", "--service", "demo", "--month", "2026-11", "--contract", example,
			      "--html", path, NULL};
	ctl(&r, db.conninfo, args);
	assert_int_equal(r.status, 0);
	static char page[4 << 20];
	ctl_slurp(path, page, sizeof page);
	unlink(path);
	assert_non_null(strstr(page, "<!DOCTYPE html>"));
	assert_non_null(strstr(page, "id=\"chart-p99-latency\""));
	assert_non_null(strstr(page, "id=\"chart-p95-ttft\""));
	assert_null(strstr(page, "id=\"chart-availability\"")); /* month-long: numbers, no chart */
	assert_int_equal(occurrences(page, "<circle class=\"miss\""), 87);
	assert_int_equal(occurrences(page, "<rect class=\"nodata\""), 12); /* 6 five-minute and 6 one-hour windows */
	assert_non_null(strstr(page, "</html>"));
}

static const char *temp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/canary-sla-contract-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_bad_input(void **state)
{
	(void)state;
	struct run r;
	char want[256];
	const char *bad = temp("name: x\nprice: -1\nobjectives:\n  - { name: a, metric: availability, min: 99% }\n");
	const char *a1[] = {"sla", "report", "--service", "demo", "--month", "2026-11", "--contract", bad, NULL};
	ctl(&r, db.conninfo, a1);
	assert_int_equal(r.status, 65);
	snprintf(want, sizeof want, "canaryctl: %s:2:8: price '-1' must be at least 0\n", bad);
	assert_string_equal(r.err, want);
	const char *a2[] = {"sla", "lint", bad, NULL};
	ctl(&r, NULL, a2);
	assert_int_equal(r.status, 65);
	unlink(bad);

	const char *other = temp("name: x\nservice: chat\nobjectives:\n  - { name: a, metric: availability, min: 99% }\n");
	const char *a3[] = {"sla", "report", "--service", "demo", "--month", "2026-11", "--contract", other, NULL};
	ctl(&r, db.conninfo, a3);
	assert_int_equal(r.status, 65);
	snprintf(want, sizeof want, "canaryctl: %s:2:10: contract 'x' covers service 'chat', not 'demo'\n", other);
	assert_string_equal(r.err, want);
	unlink(other);

	/* a TGI service exports no time-to-first-token histogram */
	sql_ok(db.conninfo, "INSERT INTO services (name, live_slot) VALUES ('tgi', 0);"
			    "INSERT INTO service_versions (service, version, content_sha256, source, spec) SELECT 'tgi', 1, "
			    "'x', replace(replace(source, 'preset: vllm', 'preset: tgi'), 'name: demo', 'name: tgi'), spec "
			    "FROM service_versions WHERE service = 'demo'");
	const char *ttft = temp("name: x\nobjectives:\n  - name: ttft\n    metric: ttft\n    quantile: 0.9\n"
				"    max: 1s\n    window: 1h\n    target: 99%\n");
	const char *a4[] = {"sla", "report", "--service", "tgi", "--month", "2026-11", "--contract", ttft, NULL};
	ctl(&r, db.conninfo, a4);
	assert_int_equal(r.status, 65);
	snprintf(want, sizeof want, "canaryctl: %s:4:13: objective 'ttft' cannot be computed: service 'tgi' has no "
				    "time-to-first-token histogram (metrics.ttft); configure it in the service or drop "
				    "the objective\n", ttft);
	assert_string_equal(r.err, want);
	unlink(ttft);

	const char *a5[] = {"sla", "report", "--service", "demo", "--month", "2026-13", "--contract", example, NULL};
	ctl(&r, db.conninfo, a5);
	expect_exit(&r, 64, "a bad month");
	expect_one_line_error(&r, "month '2026-13' is out of range");
	const char *a6[] = {"sla", "report", "--service", "nosuch", "--month", "2026-11", "--contract", example, NULL};
	ctl(&r, db.conninfo, a6);
	assert_int_equal(r.status, 65);
	const char *a7[] = {"sla", "lint", example, NULL};
	ctl(&r, NULL, a7);
	assert_int_equal(r.status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_json_csv),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
