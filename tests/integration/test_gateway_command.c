/* Integration tests of the command gateway adapter: the shipped policies/gateways/haproxy-socat script driving a
 * real HAProxy (tests/support haproxy fixture) through socat, with the placeholders of each move; and real
 * programs that fail: a non-zero exit (stderr quoted, one line), a hang (killed at the timeout with everything it
 * started), output that is not the shares' JSON, too much output, a read-back that differs from the set, a program
 * that does not exist. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "canary/gateway.h"
#include "haproxy_fixture.h"

struct env {
	struct hap hap;
	char script[4096];
	char dir[64];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	if (!e)
		return -1;
	const char *src = getenv("CANARY_SOURCE_DIR");
	snprintf(e->script, sizeof e->script, "%s/policies/gateways/haproxy-socat", src ? src : ".");
	snprintf(e->dir, sizeof e->dir, "/tmp/canary-cmd-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	/* the servers' addresses do not matter here: no traffic, only weights */
	if (hap_start(&e->hap, "chat", "blue", "127.0.0.1:9", "green", "127.0.0.1:9") < 0) {
		fprintf(stderr, "cannot start haproxy: %s\n", e->hap.err);
		hap_stop(&e->hap);
		return -1;
	}
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (!e)
		return 0;
	hap_stop(&e->hap);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", e->dir);
	free(e);
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Packs argv items into a template. */
static void tmpl(struct cn_argv_tmpl *t, const char *const *args)
{
	size_t used = 0;
	memset(t, 0, sizeof *t);
	for (; *args; args++) {
		size_t len = strlen(*args) + 1;
		assert_true(used + len <= sizeof t->buf);
		memcpy(t->buf + used, *args, len);
		used += len;
		t->argc++;
	}
}

static void make_svc(struct cn_service *svc, const char *const *set, const char *const *get, int64_t timeout_ms)
{
	memset(svc, 0, sizeof *svc);
	snprintf(svc->name, sizeof svc->name, "chat");
	svc->gateway.kind = CN_GATEWAY_COMMAND;
	svc->gateway.timeout_ms = timeout_ms;
	tmpl(&svc->gateway.set, set);
	tmpl(&svc->gateway.get, get);
	snprintf(svc->slots[0].name, sizeof svc->slots[0].name, "blue");
	snprintf(svc->slots[0].server, sizeof svc->slots[0].server, "blue");
	snprintf(svc->slots[1].name, sizeof svc->slots[1].name, "green");
	snprintf(svc->slots[1].server, sizeof svc->slots[1].server, "green");
	svc->initial_live = 0;
}

static struct cn_gateway *open_svc(const struct cn_service *svc)
{
	struct cn_err err = { 0 };
	struct cn_gateway *gw = cn_gateway_open(svc, &err);
	if (!gw)
		fail_msg("open: %s", err.msg);
	return gw;
}

/* The shipped script against a real HAProxy: the candidate (green) moves 1 -> 5 -> 100 -> 0 %, HAProxy holds
 * percent x 2.56 as weights, get reads them back. */
static void test_haproxy_through_socat(void **state)
{
	struct env *e = *state;
	char addr[64];
	snprintf(addr, sizeof addr, "TCP:%s", e->hap.runtime_api_tcp);
	const char *set[] = { e->script, "set", addr, "chat", "{candidate_server}", "{candidate_percent}",
			      "{baseline_server}", "{baseline_percent}", NULL };
	const char *get[] = { e->script, "get", addr, "chat", "blue=blue", "green=green", NULL };
	struct cn_service svc;
	make_svc(&svc, set, get, 5000);
	struct cn_gateway *gw = open_svc(&svc);
	cn_gateway_set_candidate(gw, 1);
	static const struct {
		double green;
		int wb, wg;
	} steps[] = { { 1, 253, 3 }, { 5, 243, 13 }, { 100, 0, 256 }, { 0, 256, 0 }, { 50, 128, 128 } };
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct cn_err err = { 0 };
		double pct[2] = { 100 - steps[i].green, steps[i].green }, got[2];
		long t0 = now_ms();
		if (cn_gateway_set_weights(gw, pct, &err) != 0)
			fail_msg("set green %g %%: %s", steps[i].green, err.msg);
		print_message("green %g %%: set + get %ld ms\n", steps[i].green, now_ms() - t0);
		assert_int_equal(hap_get_weight(&e->hap, "blue"), steps[i].wb);
		assert_int_equal(hap_get_weight(&e->hap, "green"), steps[i].wg);
		assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
		assert_true(fabs(got[1] - steps[i].green) <= 0.2);
	}
	/* HAProxy's own words when it refuses: a backend it does not have */
	const char *badset[] = { e->script, "set", addr, "nope", "{candidate_server}", "{candidate_percent}",
				 "{baseline_server}", "{baseline_percent}", NULL };
	make_svc(&svc, badset, get, 5000);
	struct cn_gateway *bad = open_svc(&svc);
	struct cn_err err = { 0 };
	double pct[2] = { 90, 10 };
	assert_int_equal(cn_gateway_set_weights(bad, pct, &err), -CN_EUNAVAIL);
	print_message("refused: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "exited with status 1"));
	assert_non_null(strstr(err.msg, "No such backend"));
	assert_null(strchr(err.msg, '\n'));
	cn_gateway_close(bad);
	cn_gateway_close(gw);
}

/* Placeholders reach the program as single arguments, whatever they hold; the candidate slot decides them. */
static void test_placeholders(void **state)
{
	struct env *e = *state;
	char out[128], script[160];
	snprintf(out, sizeof out, "%s/args", e->dir);
	snprintf(script, sizeof script, "printf '%%s|' \"$@\" > %s", out);
	const char *set[] = { "sh", "-c", script, "sh", "{candidate_slot}={candidate_percent}",
			      "{baseline_slot}={baseline_percent}", "{service} {percent:blue}/{percent:green}",
			      "{{\"w\": {candidate_percent}}}", "{candidate_server}", NULL };
	const char *get[] = { "echo", "{{\"blue\": 66.67, \"green\": 33.33}}", NULL };
	struct cn_service svc;
	make_svc(&svc, set, get, 5000);
	struct cn_gateway *gw = open_svc(&svc);
	cn_gateway_set_candidate(gw, 1);
	struct cn_err err = { 0 };
	double pct[2] = { 200.0 / 3, 100.0 / 3 };
	if (cn_gateway_set_weights(gw, pct, &err) != 0)
		fail_msg("%s", err.msg);
	char text[256] = "";
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof text, f));
	fclose(f);
	assert_string_equal(text, "green=33.33|blue=66.67|chat 66.67/33.33|{\"w\": 33.33}|green|");
	cn_gateway_close(gw);
}

static void expect_fail(const char *const *set, const char *const *get, int64_t timeout, int code, const char *part,
			long max_ms)
{
	struct cn_service svc;
	make_svc(&svc, set, get, timeout);
	struct cn_gateway *gw = open_svc(&svc);
	struct cn_err err = { 0 };
	double pct[2] = { 95, 5 };
	long t0 = now_ms();
	int rc = cn_gateway_set_weights(gw, pct, &err);
	long dt = now_ms() - t0;
	print_message("%ld ms: %s\n", dt, err.msg);
	if (rc != -code)
		fail_msg("rc %d, want %d: %s", rc, -code, err.msg);
	if (!strstr(err.msg, part))
		fail_msg("message '%s' lacks '%s'", err.msg, part);
	assert_null(strchr(err.msg, '\n'));
	assert_true(dt < max_ms);
	cn_gateway_close(gw);
}

static void test_failures(void **state)
{
	(void)state;
	const char *ok_get[] = { "echo", "{{\"blue\": 95, \"green\": 5}}", NULL };
	const char *ok_set[] = { "true", NULL };
	/* non-zero exit: stderr quoted, first line, with a mark that more followed */
	expect_fail((const char *[]){ "sh", "-c", "echo 'error: the server is unreachable' >&2; echo more >&2; exit 3",
				      NULL }, ok_get, 5000, CN_EUNAVAIL,
		    "exited with status 3: 'error: the server is unreachable ...'", 3000);
	/* a hang is killed at the timeout */
	expect_fail((const char *[]){ "sleep", "30", NULL }, ok_get, 300, CN_EUNAVAIL, "did not finish within 300 ms",
		    1500);
	/* not JSON, not the slots, too much, a different share */
	expect_fail(ok_set, (const char *[]){ "echo", "weights: blue 95 green 5", NULL }, 5000, CN_EINTERNAL,
		    "get printed 'weights: blue 95 green 5', not a JSON object", 3000);
	expect_fail(ok_set, (const char *[]){ "echo", "{{\"blue\": 95, \"red\": 5}}", NULL }, 5000, CN_EINTERNAL,
		    "share for 'red', which is neither slot", 3000);
	expect_fail(ok_set, (const char *[]){ "sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x", NULL }, 5000,
		    CN_EINTERNAL, "printed more than 16383 bytes", 3000);
	expect_fail(ok_set, (const char *[]){ "echo", "{{\"blue\": 50, \"green\": 50}}", NULL }, 5000, CN_EINTERNAL,
		    "gateway get reports blue 50% and green 50% after set was asked for 95% and 5%", 3000);
	/* a program that is not there */
	expect_fail((const char *[]){ "/nonexistent/kubectl", NULL }, ok_get, 5000, CN_EUNAVAIL,
		    "cannot run '/nonexistent/kubectl': No such file or directory", 3000);
}

/* True while pid runs: a zombie (killed, its parent gone, not yet reaped by init) counts as dead. */
static bool alive(pid_t pid)
{
	char path[64], buf[256];
	if (kill(pid, 0) != 0)
		return false;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *close = strrchr(buf, ')'); /* the state follows the command name in parentheses */
	return !(close && close[1] == ' ' && close[2] == 'Z');
}

/* What a hung program started is killed with it: the process group goes. */
static void test_timeout_kills_group(void **state)
{
	struct env *e = *state;
	char marker[128], script[256];
	snprintf(marker, sizeof marker, "%s/bg.pid", e->dir);
	snprintf(script, sizeof script, "sleep 30 & echo $! > %s; wait", marker);
	const char *set[] = { "sh", "-c", script, NULL };
	const char *get[] = { "echo", "{{}}", NULL };
	struct cn_service svc;
	make_svc(&svc, set, get, 300);
	struct cn_gateway *gw = open_svc(&svc);
	struct cn_err err = { 0 };
	double pct[2] = { 95, 5 };
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	FILE *f = fopen(marker, "r");
	assert_non_null(f);
	long bg = 0;
	assert_int_equal(fscanf(f, "%ld", &bg), 1);
	fclose(f);
	long until = now_ms() + 5000;
	while (alive((pid_t)bg) && now_ms() < until)
		usleep(10000);
	assert_false(alive((pid_t)bg));
	cn_gateway_close(gw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_haproxy_through_socat),
		cmocka_unit_test(test_placeholders),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_timeout_kills_group),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
