/* Integration: webhook notifications are never lost. The real canaryd delivers the outbox of real rollouts (three
 * services, so three streams) to a real receiver on loopback (tests/support/bin/hooksink) that first answers 500,
 * then hangs past the hook's timeout, then drops connections, then recovers. Meanwhile operators pause and resume
 * the rollouts, so events keep coming. Checked afterwards, from the receiver's log and the outbox:
 *   - nothing lost: every outbox row is delivered and the receiver accepted (200) every key;
 *   - nothing invented: every request carries an outbox row's key in Idempotency-Key and in the body's "id", and
 *     a key accepted twice carried the same body;
 *   - signed: X-Canary-Signature verifies (HMAC-SHA256 of the body under the secret canaryd read from its env);
 *   - in order per rollout: no request for event N+1 of a rollout reached the receiver before event N was accepted;
 *   - retried with back-off: the failed attempts are in the rows' attempts and the receiver's log;
 *   - the control loop is not held up: a pause during the hang applies as fast as without one;
 *   - canaryd's /metrics shows the backlog during the outage and none after. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>

#include "canary/clock.h"
#include "canary/hmac.h"
#include "canary/store_rollouts.h"
#include "port_fixture.h"
#include "sim_proc.h"
#include "store_audit_support.h"

#define SECRET "s3cret-for-tests"
#define NSVC 3

static struct pg_fixture db;
static char dir[64] = "/tmp/canary-notify.XXXXXX";
static char sink_log[256], daemon_log[256];
static struct sim_proc sink;
static pid_t daemon_pid;
static int metrics_port;
static int64_t rollout[NSVC];

static void sink_mode(const char *query)
{
	struct sim_http_resp r = {0};
	struct cn_err err = {0};
	char path[128];
	snprintf(path, sizeof path, "/admin?%s", query);
	if (sim_http_request(sink.port, "POST", path, "", 5000, &r, &err) < 0 || r.status != 200)
		fail_msg("hooksink %s: %s (status %d)", query, err.msg, r.status);
	sim_http_free(&r);
}

/* canaryd with HOOK_SECRET in its environment, short back-off, /metrics on metrics_port; stderr to daemon_log. */
static void start_daemon(void)
{
	char bin[1024], listen[64];
	snprintf(bin, sizeof bin, "%s/canaryd", getenv("CANARY_BINARY_DIR"));
	snprintf(listen, sizeof listen, "127.0.0.1:%d", metrics_port);
	daemon_pid = fork();
	assert_true(daemon_pid >= 0);
	if (daemon_pid == 0) {
		int fd = open(daemon_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		setenv("HOOK_SECRET", SECRET, 1);
		execl(bin, bin, "--db", db.conninfo, "--poll", "200", "--listen", listen, "--notify-retry-max", "1500",
		      (char *)NULL);
		_exit(127);
	}
}

static void stop_daemon(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		int st;
		waitpid(daemon_pid, &st, 0);
		daemon_pid = 0;
	}
}

/* The value of one sample on canaryd's /metrics, or -1. */
static double daemon_metric(const char *name)
{
	struct sim_http_resp r = {0};
	struct cn_err err = {0};
	double v = -1;
	if (sim_http_request(metrics_port, "GET", "/metrics", NULL, 3000, &r, &err) == 0 && r.body) {
		char want[128];
		snprintf(want, sizeof want, "\n%s ", name); /* the sample line, not its # HELP */
		const char *p = strstr(r.body, want);
		if (p)
			v = strtod(p + strlen(want), NULL);
	}
	sim_http_free(&r);
	return v;
}

static int setup(void **state)
{
	(void)state;
	struct cn_err err = {0};
	char bin[1024], pol[256], svc[256], text[2048];
	check_env();
	assert_non_null(mkdtemp(dir));
	snprintf(sink_log, sizeof sink_log, "%s/sink.log", dir);
	snprintf(daemon_log, sizeof daemon_log, "%s/canaryd.log", dir);
	assert_int_equal(sim_bin_path("hooksink", bin, sizeof bin, &err), 0);
	char *argv[] = { bin, "--port", "0", "--log", sink_log, "--secret", SECRET, "--mode", "fail", NULL };
	if (sim_proc_start(argv, 10000, &sink, &err) < 0)
		fail_msg("hooksink: %s", err.msg);
	metrics_port = port_reserve(&err);
	assert_true(metrics_port > 0);
	setup_db(&db);
	snprintf(pol, sizeof pol, "%s/hooked.yaml", dir);
	snprintf(text, sizeof text,
		 "name: hooked\nsteps:\n  - weight: 5%%\n    hold: 1h\n  - weight: 100%%\n    hold: 1h\n"
		 "slos:\n  - name: errors\n    metric: error_rate\n    max: 2%%\n"
		 "notify:\n  - url: http://127.0.0.1:%d/hook\n    secret_env: HOOK_SECRET\n    timeout: 1s\n", sink.port);
	assert_int_equal(pg_fixture_write_file(pol, text), 0);
	static struct run r;
	ctl(&r, db.conninfo, (const char *[]){"policy", "apply", pol, NULL});
	expect_exit(&r, 0, "apply the hooked policy");
	for (int i = 0; i < NSVC; i++) {
		snprintf(svc, sizeof svc, "%s/svc%d.yaml", dir, i);
		snprintf(text, sizeof text,
			 "name: svc%d\ngateway: { kind: haproxy, runtime_api: %s/nothing%d.sock, backend: b }\n"
			 "slots:\n  blue: { server: blue, metrics_url: http://127.0.0.1:9/m }\n"
			 "  green: { server: green, metrics_url: http://127.0.0.1:9/m }\nlive: blue\n", i, dir, i);
		assert_int_equal(pg_fixture_write_file(svc, text), 0);
		ctl(&r, db.conninfo, (const char *[]){"service", "apply", svc, NULL});
		expect_exit(&r, 0, "apply a service");
	}
	start_daemon();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[256];
	stop_daemon();
	sim_proc_stop(&sink);
	pg_fixture_drop(&db);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return 0;
}

static const char *phase_of(int64_t id, char *buf, size_t len)
{
	char q[128], msg[256];
	snprintf(q, sizeof q, "SELECT CASE phase WHEN 'paused' THEN 1 ELSE 0 END FROM rollouts WHERE id = %lld",
		 (long long)id);
	long long v = pg_fixture_scalar(db.conninfo, q, msg, sizeof msg);
	snprintf(buf, len, "%s", v == 1 ? "paused" : v == 0 ? "other" : "?");
	return buf;
}

/* An operator pauses or resumes rollout id; waits until canaryd applied it. Returns the ms it took. */
static int64_t command(int64_t id, const char *kind)
{
	char ids[32], buf[16];
	snprintf(ids, sizeof ids, "%lld", (long long)id);
	static struct run r;
	int64_t t0 = cn_mono_ms();
	ctl(&r, db.conninfo, (const char *[]){"rollout", kind, ids, "--reason", "notification test", NULL});
	expect_exit(&r, 0, kind);
	bool want_paused = strcmp(kind, "pause") == 0;
	for (int i = 0; i < 200; i++) {
		if ((strcmp(phase_of(id, buf, sizeof buf), "paused") == 0) == want_paused)
			return cn_mono_ms() - t0;
		usleep(50 * 1000);
	}
	fail_msg("rollout %lld: %s was not applied within 10 s", (long long)id, kind);
	return -1;
}

static void pause_resume_all(void)
{
	for (int i = 0; i < NSVC; i++) {
		command(rollout[i], "pause");
		command(rollout[i], "resume");
	}
}

/* One accepted or refused request as the receiver logged it. */
struct seen {
	int64_t t_ms;
	int status;
	char key[64];
	int64_t rollout;
	bool sig_ok, id_matches;
	char *body;
};

static size_t read_log(struct seen **out)
{
	FILE *f = fopen(sink_log, "r");
	assert_non_null(f);
	size_t n = 0, cap = 0;
	struct seen *s = NULL;
	char line[16384];
	while (fgets(line, sizeof line, f)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		if (!o)
			fail_msg("hooksink wrote a line that is not JSON: %s", line);
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			s = realloc(s, cap * sizeof *s);
			assert_non_null(s);
		}
		struct seen *x = &s[n++];
		memset(x, 0, sizeof *x);
		x->t_ms = json_integer_value(json_object_get(o, "t_ms"));
		x->status = (int)json_integer_value(json_object_get(o, "status"));
		const char *key = json_string_value(json_object_get(o, "key"));
		snprintf(x->key, sizeof x->key, "%s", key ? key : "");
		x->sig_ok = json_is_true(json_object_get(o, "sig_ok"));
		const char *body = json_string_value(json_object_get(o, "body"));
		x->body = strdup(body ? body : "");
		json_t *b = json_loads(x->body, 0, &je);
		x->rollout = json_integer_value(json_object_get(json_object_get(b, "rollout"), "id"));
		const char *id = json_string_value(json_object_get(b, "id"));
		x->id_matches = id && strcmp(id, x->key) == 0;
		json_decref(b);
		json_decref(o);
	}
	fclose(f);
	*out = s;
	return n;
}

/* The outbox as the database has it, in id order. */
struct row {
	int64_t id, rollout;
	char key[64];
	int attempts;
	bool delivered;
};

static size_t read_outbox(struct row *rows, size_t max)
{
	PGconn *c = PQconnectdb(db.conninfo);
	PGresult *r = PQexec(c, "SELECT id, rollout_id, key, attempts, delivered_at IS NOT NULL FROM outbox ORDER BY id");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	size_t n = (size_t)PQntuples(r);
	assert_true(n <= max);
	for (size_t i = 0; i < n; i++) {
		rows[i].id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
		rows[i].rollout = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
		snprintf(rows[i].key, sizeof rows[i].key, "%s", PQgetvalue(r, (int)i, 2));
		rows[i].attempts = atoi(PQgetvalue(r, (int)i, 3));
		rows[i].delivered = PQgetvalue(r, (int)i, 4)[0] == 't';
	}
	PQclear(r);
	PQfinish(c);
	return n;
}

static void test_nothing_lost_through_an_outage(void **state)
{
	(void)state;
	struct cn_err err = {0};
	/* phase 1: the receiver answers 500 while three rollouts start and are paused and resumed */
	struct cn_store *st = cn_store_connect(db.conninfo, &err);
	assert_non_null(st);
	for (int i = 0; i < NSVC; i++) {
		char svc[16];
		snprintf(svc, sizeof svc, "svc%d", i);
		if (cn_store_rollout_create(st, svc, "v2", "hooked", "notification test", &rollout[i], &err) < 0)
			fail_msg("start: %s", err.msg);
	}
	cn_store_close(st);
	pause_resume_all();
	sleep(2);
	double backlog = daemon_metric("canaryd_notify_backlog");
	double oldest = daemon_metric("canaryd_notify_oldest_undelivered_seconds");
	assert_true(backlog >= 3 * NSVC);
	assert_true(oldest >= 1.0);
	/* phase 2: it hangs past the hook's 1 s timeout; a pause still applies at once */
	sink_mode("mode=hang&ms=3000");
	int64_t slowest = 0;
	for (int i = 0; i < NSVC; i++) {
		int64_t ms = command(rollout[i], "pause");
		slowest = ms > slowest ? ms : slowest;
		command(rollout[i], "resume");
	}
	print_message("pause applied within %lld ms while the receiver hung\n", (long long)slowest);
	assert_true(slowest < 3000);
	sleep(3);
	/* phase 3: it drops connections without an answer */
	sink_mode("mode=drop");
	pause_resume_all();
	sleep(2);
	/* phase 4: it recovers; everything arrives */
	sink_mode("mode=ok");
	int64_t t_ok = cn_wall_ms();
	struct row rows[256];
	size_t nrows = 0;
	bool all = false;
	for (int i = 0; i < 300 && !all; i++) {
		usleep(100 * 1000);
		nrows = read_outbox(rows, 256);
		all = nrows > 0;
		for (size_t j = 0; j < nrows; j++)
			all = all && rows[j].delivered;
	}
	if (!all)
		fail_msg("the outbox was not delivered within 30 s of the receiver's return");
	int64_t t_all = cn_wall_ms();
	/* started, and three pauses and resumes each (canaryd, whose gateway and metrics are away, adds none) */
	assert_true(nrows >= NSVC * 7);

	struct seen *seen = NULL;
	size_t nseen = read_log(&seen);
	size_t accepted = 0, failed = 0, dup = 0;
	int64_t last_accept = 0;
	for (size_t i = 0; i < nseen; i++) {
		if (!seen[i].sig_ok)
			fail_msg("request %zu: the signature does not verify", i);
		if (!seen[i].id_matches)
			fail_msg("request %zu: Idempotency-Key '%s' is not the body's id", i, seen[i].key);
		size_t j = 0;
		while (j < nrows && strcmp(rows[j].key, seen[i].key) != 0)
			j++;
		if (j == nrows)
			fail_msg("request %zu carries key '%s', which no outbox row has", i, seen[i].key);
		if (seen[i].rollout != rows[j].rollout)
			fail_msg("request %zu: rollout %lld in the body, %lld in the outbox", i, (long long)seen[i].rollout,
				 (long long)rows[j].rollout);
		/* order: every earlier row of its rollout was accepted before this request arrived */
		for (size_t k = 0; k < j; k++) {
			if (rows[k].rollout != rows[j].rollout)
				continue;
			bool before = false;
			for (size_t m = 0; m < i && !before; m++)
				before = seen[m].status == 200 && strcmp(seen[m].key, rows[k].key) == 0;
			if (!before)
				fail_msg("rollout %lld: outbox row %lld reached the receiver before row %lld was accepted",
					 (long long)rows[j].rollout, (long long)rows[j].id, (long long)rows[k].id);
		}
		if (seen[i].status == 200) {
			bool again = false;
			for (size_t m = 0; m < i; m++) {
				if (seen[m].status == 200 && strcmp(seen[m].key, seen[i].key) == 0) {
					again = true;
					assert_string_equal(seen[m].body, seen[i].body);
				}
			}
			dup += again;
			accepted += !again;
			last_accept = seen[i].t_ms > last_accept ? seen[i].t_ms : last_accept;
		} else {
			failed++;
		}
	}
	/* nothing lost: each row's key accepted */
	assert_int_equal(accepted, nrows);
	int retried = 0;
	for (size_t j = 0; j < nrows; j++)
		retried += rows[j].attempts > 1;
	print_message("%zu events, %zu refused or cut attempts seen by the receiver, %d rows retried, %zu duplicates "
		      "(same key); all delivered %lld ms after the receiver returned\n", nrows, failed, retried, dup,
		      (long long)(t_all - t_ok));
	assert_true(failed >= 3);      /* the 500s, hangs and drops reached it */
	assert_true(retried >= NSVC);  /* every stream's head was retried */
	double left = -1;
	for (int i = 0; i < 30 && left != 0; i++) {
		usleep(100 * 1000);
		left = daemon_metric("canaryd_notify_backlog");
	}
	assert_true(left == 0);
	assert_int_equal(count(&db, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].body);
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_lost_through_an_outage),
	};
	(void)expect_one_line_error;
	return cmocka_run_group_tests(tests, setup, teardown);
}
