/* Tests of the model-server simulator and the load tool that the e2e tests drive: the admin body parser and the
 * histograms (pure), then the real modelsim and loadgen binaries on loopback: completions, /metrics counts that match
 * what was sent, error and latency injection through /admin, counter reset, --sleep, loopback-only loadgen. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_model.h"
#include "sim_proc.h"

/* ---- pure parts ---- */

static void test_config_apply_table(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		int ok;
		double error_rate, latency_median;
		long tokens;
	} cases[] = {
		{ "{\"error_rate\": 0.05}", 1, 0.05, 0.2, 32 },
		{ "{\"error_rate\":1.0,\"latency_median\":0.4,\"tokens\":8}", 1, 1.0, 0.4, 8 },
		{ "{\"latency-median\":\"0.7\"}", 1, 0.005, 0.7, 32 },
		{ "  { }  ", 1, 0.005, 0.2, 32 },
		{ "error_rate=0.5&latency_median=1.5", 1, 0.5, 1.5, 32 },
		{ "error_rate=0.5\n", 1, 0.5, 0.2, 32 },
		{ "", 1, 0.005, 0.2, 32 },
		{ "{\"error_rate\":2}", 0, 0, 0, 0 },               /* out of range */
		{ "{\"error_rate\":-0.1}", 0, 0, 0, 0 },
		{ "{\"latency_median\":0}", 0, 0, 0, 0 },
		{ "{\"tokens\":1.5}", 0, 0, 0, 0 },                 /* not whole */
		{ "{\"error_rate\":0.1,\"hold\":3}", 0, 0, 0, 0 },  /* unknown key: nothing applied */
		{ "{\"error_rate\":abc}", 0, 0, 0, 0 },
		{ "{\"error_rate\":0.1", 0, 0, 0, 0 },              /* unterminated */
		{ "{\"error_rate\":0.1} x", 0, 0, 0, 0 },
		{ "error_rate", 0, 0, 0, 0 },
		{ "{\"error_rate\":nan}", 0, 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sim_config cfg;
		struct cn_err err = { 0 };
		sim_config_defaults(&cfg);
		int rc = sim_config_apply(&cfg, cases[i].body, strlen(cases[i].body), &err);
		if (cases[i].ok) {
			if (rc != 0)
				fail_msg("case %zu '%s': %s", i, cases[i].body, err.msg);
			assert_true(fabs(cfg.error_rate - cases[i].error_rate) < 1e-12);
			assert_true(fabs(cfg.latency_median - cases[i].latency_median) < 1e-12);
			assert_int_equal(cfg.tokens, cases[i].tokens);
		} else {
			if (rc == 0)
				fail_msg("case %zu '%s': accepted", i, cases[i].body);
			assert_int_equal(err.code, CN_EINPUT);
			/* all or nothing */
			assert_true(cfg.error_rate == 0.005 && cfg.latency_median == 0.2 && cfg.tokens == 32);
		}
	}
}

static void test_hist_render(void **state)
{
	(void)state;
	static const double le[] = { 0.1, 0.5, 1.0 };
	struct sim_hist h;
	char buf[4096];
	size_t off = 0;
	sim_hist_init(&h, le, 3);
	sim_hist_observe(&h, 0.05);
	sim_hist_observe(&h, 0.1);   /* on a bound: counts in that bucket (le is "less or equal") */
	sim_hist_observe(&h, 0.7);
	sim_hist_observe(&h, 30);
	assert_int_equal(sim_hist_render(&h, "x_seconds", "help", "model_name=\"m\"", buf, sizeof buf, &off), 0);
	double v;
	assert_int_equal(sim_prom_value(buf, "x_seconds_bucket{model_name=\"m\",le=\"0.1\"}", &v), 0);
	assert_true(v == 2);
	assert_int_equal(sim_prom_value(buf, "x_seconds_bucket{model_name=\"m\",le=\"0.5\"}", &v), 0);
	assert_true(v == 2);
	assert_int_equal(sim_prom_value(buf, "x_seconds_bucket{model_name=\"m\",le=\"1.0\"}", &v), 0);
	assert_true(v == 3);
	assert_int_equal(sim_prom_value(buf, "x_seconds_bucket{model_name=\"m\",le=\"+Inf\"}", &v), 0);
	assert_true(v == 4);
	assert_int_equal(sim_prom_value(buf, "x_seconds_count{model_name=\"m\"}", &v), 0);
	assert_true(v == 4);
	assert_int_equal(sim_prom_value(buf, "x_seconds_sum{model_name=\"m\"}", &v), 0);
	assert_true(fabs(v - 30.85) < 1e-6);
	/* a buffer too small leaves the offset alone */
	size_t off2 = 0;
	assert_int_equal(sim_hist_render(&h, "x_seconds", "help", "", buf, 64, &off2), -1);
	assert_int_equal(off2, 0);
	sim_hist_reset(&h);
	off = 0;
	assert_int_equal(sim_hist_render(&h, "x_seconds", "help", "", buf, sizeof buf, &off), 0);
	assert_int_equal(sim_prom_value(buf, "x_seconds_count{}", &v), 0);
	assert_true(v == 0);
}

static void test_lognormal_median(void **state)
{
	(void)state;
	struct sim_rng rng;
	int below = 0, n = 20000;
	sim_rng_seed(&rng, 42);
	for (int i = 0; i < n; i++)
		below += sim_rng_lognormal(&rng, 0.2, 0.3) <= 0.2;
	/* half the draws fall below the median; 20000 draws put 3 sigma at about 1% */
	assert_in_range(below, n / 2 - 300, n / 2 + 300);
	/* sigma: P(x <= median * e^sigma) = Phi(1) = 0.841 */
	int below1 = 0;
	for (int i = 0; i < n; i++)
		below1 += sim_rng_lognormal(&rng, 0.2, 0.3) <= 0.2 * exp(0.3);
	assert_in_range(below1, (int)(0.841 * n) - 300, (int)(0.841 * n) + 300);
}

/* ---- the real binaries ---- */

/* Starts modelsim with extra args (NULL-terminated) on a free port. */
static void start_sim(struct sim_proc *p, ...)
{
	char bin[1024];
	char *argv[32];
	int n = 0;
	struct cn_err err = { 0 };
	if (sim_bin_path("modelsim", bin, sizeof bin, &err) < 0)
		fail_msg("%s", err.msg);
	if (access(bin, X_OK) != 0)
		fail_msg("'%s' not found: build the modelsim target first", bin);
	argv[n++] = bin;
	argv[n++] = "--port";
	argv[n++] = "0";
	va_list ap;
	va_start(ap, p);
	for (char *a; n < 30 && (a = va_arg(ap, char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	if (sim_proc_start(argv, 10000, p, &err) < 0)
		fail_msg("%s", err.msg);
	assert_true(p->port > 0);
}

static void http(int port, const char *method, const char *path, const char *body, struct sim_http_resp *r)
{
	struct cn_err err = { 0 };
	if (sim_http_request(port, method, path, body, 10000, r, &err) < 0)
		fail_msg("%s %s: %s", method, path, err.msg);
}

/* Returns the value of one series on the simulator's /metrics page (fails the test if absent). */
static double metric(int port, const char *series)
{
	struct sim_http_resp r;
	double v = NAN;
	http(port, "GET", "/metrics", NULL, &r);
	assert_int_equal(r.status, 200);
	if (sim_prom_value(r.body, series, &v) < 0)
		fail_msg("series '%s' missing from /metrics", series);
	sim_http_free(&r);
	return v;
}

#define E2E "vllm:e2e_request_latency_seconds"
#define TTFT "vllm:time_to_first_token_seconds"
#define TPOT "vllm:time_per_output_token_seconds"
#define LBL "{model_name=\"blue\"}"

static void test_sim_counts_admin_reset(void **state)
{
	(void)state;
	struct sim_proc p;
	struct sim_http_resp r;
	char hdr[128];
	start_sim(&p, "--name", "blue", "--seed", "7", "--error-rate", "0", "--latency-median", "0.2",
		  "--latency-sigma", "0.3", (char *)NULL);
	char want[128];
	snprintf(want, sizeof want, "modelsim blue listening on 127.0.0.1:%d", p.port);
	assert_string_equal(p.line, want);

	/* 40 completions, 5 chat completions, 5 GET / */
	for (int i = 0; i < 50; i++) {
		const char *path = i < 40 ? "/v1/completions" : i < 45 ? "/v1/chat/completions" : "/";
		http(p.port, i < 45 ? "POST" : "GET", path, i < 45 ? "{\"model\":\"m\",\"prompt\":\"hi\"}" : NULL, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(sim_http_header(&r, "X-Served-By", hdr, sizeof hdr), 0);
		assert_string_equal(hdr, "blue");
		assert_non_null(strstr(r.body, "\"model\":\"blue\""));
		assert_non_null(strstr(r.body, "\"completion_tokens\":32"));
		assert_non_null(strstr(r.body, i >= 40 && i < 45 ? "\"chat.completion\"" : "\"text_completion\""));
		sim_http_free(&r);
	}
	/* /metrics and /admin are not counted as completions */
	http(p.port, "GET", "/admin", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"error_rate\":0,"));
	sim_http_free(&r);

	assert_true(metric(p.port, "http_requests_total{status=\"200\"}") == 50);
	assert_true(metric(p.port, "http_requests_total{status=\"500\"}") == 0);
	assert_true(metric(p.port, E2E "_count" LBL) == 50);
	assert_true(metric(p.port, E2E "_bucket{model_name=\"blue\",le=\"+Inf\"}") == 50);
	assert_true(metric(p.port, TTFT "_count" LBL) == 50);
	assert_true(metric(p.port, TPOT "_count" LBL) == 50);
	assert_true(metric(p.port, "vllm:request_success_total{finished_reason=\"length\",model_name=\"blue\"}") == 50);
	assert_true(metric(p.port, "vllm:num_requests_running" LBL) == 0);
	/* median 0.2, sigma 0.3: P(<= 0.3) = 0.91, P(<= 0.8) ~ 1; the mean is near 0.21 */
	double b03 = metric(p.port, E2E "_bucket{model_name=\"blue\",le=\"0.3\"}");
	assert_true(b03 >= 35 && b03 <= 50);
	assert_true(metric(p.port, E2E "_bucket{model_name=\"blue\",le=\"0.8\"}") == 50);
	double mean = metric(p.port, E2E "_sum" LBL) / 50;
	assert_true(mean > 0.15 && mean < 0.3);
	/* ttft stays below the latency: its mean is near 0.05 */
	double tmean = metric(p.port, TTFT "_sum" LBL) / 50;
	assert_true(tmean > 0.03 && tmean < 0.08);
	/* vLLM's bounds, as the Python client prints them */
	assert_true(metric(p.port, TTFT "_bucket{model_name=\"blue\",le=\"2560.0\"}") == 50);
	assert_true(metric(p.port, TPOT "_bucket{model_name=\"blue\",le=\"80.0\"}") == 50);

	/* inject errors: every answer is a 500 with a JSON error body; histograms only count successes */
	http(p.port, "POST", "/admin", "{\"error_rate\": 1.0}", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"error_rate\":1,"));
	sim_http_free(&r);
	for (int i = 0; i < 20; i++) {
		http(p.port, "POST", "/v1/completions", "{}", &r);
		assert_int_equal(r.status, 500);
		assert_non_null(strstr(r.body, "\"object\":\"error\""));
		sim_http_free(&r);
	}
	assert_true(metric(p.port, "http_requests_total{status=\"200\"}") == 50);
	assert_true(metric(p.port, "http_requests_total{status=\"500\"}") == 20);
	assert_true(metric(p.port, E2E "_count" LBL) == 50);

	/* bad admin bodies change nothing */
	http(p.port, "POST", "/admin", "{\"error_rate\": 0, \"latency_median\": -1}", &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "latency_median"));
	sim_http_free(&r);
	http(p.port, "PUT", "/admin/config", "hodl=3", &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "unknown key 'hodl'"));
	sim_http_free(&r);
	http(p.port, "GET", "/admin", NULL, &r);
	assert_non_null(strstr(r.body, "\"error_rate\":1,"));
	assert_non_null(strstr(r.body, "\"latency_median\":0.2,"));
	sim_http_free(&r);

	/* reset: a restarted server's counters */
	http(p.port, "POST", "/admin/reset", "", &r);
	assert_int_equal(r.status, 200);
	sim_http_free(&r);
	assert_true(metric(p.port, "http_requests_total{status=\"200\"}") == 0);
	assert_true(metric(p.port, "http_requests_total{status=\"500\"}") == 0);
	assert_true(metric(p.port, E2E "_count" LBL) == 0);
	assert_true(metric(p.port, E2E "_bucket{model_name=\"blue\",le=\"+Inf\"}") == 0);
	assert_true(metric(p.port, TTFT "_count" LBL) == 0);

	/* a latency regression through a form body: median 1.5 s puts (almost) nothing at or below 0.5 s */
	http(p.port, "PUT", "/admin/config", "error_rate=0&latency_median=1.5", &r);
	assert_int_equal(r.status, 200);
	sim_http_free(&r);
	for (int i = 0; i < 30; i++) {
		http(p.port, "POST", "/v1/completions", "{}", &r);
		assert_int_equal(r.status, 200);
		sim_http_free(&r);
	}
	assert_true(metric(p.port, E2E "_count" LBL) == 30);
	assert_true(metric(p.port, E2E "_bucket{model_name=\"blue\",le=\"0.5\"}") == 0);
	assert_true(metric(p.port, E2E "_bucket{model_name=\"blue\",le=\"5.0\"}") == 30);
	assert_true(metric(p.port, E2E "_sum" LBL) / 30 > 1.0);

	/* unknown paths and methods */
	http(p.port, "GET", "/nope", NULL, &r);
	assert_int_equal(r.status, 404);
	sim_http_free(&r);
	http(p.port, "DELETE", "/metrics", NULL, &r);
	assert_int_equal(r.status, 405);
	sim_http_free(&r);
	assert_true(metric(p.port, "http_requests_total{status=\"200\"}") == 30);

	assert_int_equal(sim_proc_stop(&p), 0);  /* SIGTERM: a clean exit */
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_sim_sleep(void **state)
{
	(void)state;
	struct sim_proc p;
	struct sim_http_resp r;
	/* --sleep 1 really waits the drawn latency (sigma 0: exactly the median) */
	start_sim(&p, "--sleep", "1", "--latency-median", "0.4", "--latency-sigma", "0", "--error-rate", "0",
		  (char *)NULL);
	double t0 = mono();
	http(p.port, "POST", "/v1/completions", "{}", &r);
	double took = mono() - t0;
	assert_int_equal(r.status, 200);
	sim_http_free(&r);
	assert_true(took >= 0.39);
	assert_int_equal(sim_proc_stop(&p), 0);

	/* --sleep 0 (the default) records 5 s but answers at once */
	start_sim(&p, "--latency-median", "5", "--latency-sigma", "0", "--error-rate", "0", (char *)NULL);
	t0 = mono();
	http(p.port, "POST", "/v1/completions", "{}", &r);
	took = mono() - t0;
	assert_int_equal(r.status, 200);
	sim_http_free(&r);
	assert_true(took < 4.0);
	assert_true(fabs(metric(p.port, E2E "_sum" LBL) - 5.0) < 1e-6);
	assert_int_equal(sim_proc_stop(&p), 0);
}

static void test_sim_bad_args(void **state)
{
	(void)state;
	char bin[1024];
	struct cn_err err = { 0 };
	struct sim_proc p;
	assert_int_equal(sim_bin_path("modelsim", bin, sizeof bin, &err), 0);
	char *bad_host[] = { bin, "--port", "0", "--host", "10.0.0.1", NULL };
	assert_true(sim_proc_start(bad_host, 5000, &p, &err) < 0);  /* refuses a non-loopback bind */
	char *bad_rate[] = { bin, "--port", "0", "--error-rate", "1.5", NULL };
	assert_true(sim_proc_start(bad_rate, 5000, &p, &err) < 0);
}

/* Runs argv to the end with stdout into out (bounded); returns its exit status. */
static int run(char *const argv[], char *out, size_t size)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	size_t len = 0;
	ssize_t n;
	while ((n = read(fds[0], out + len, size - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(fds[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_loadgen(void **state)
{
	(void)state;
	struct sim_proc p;
	char bin[1024], url[128], out[8192];
	struct cn_err err = { 0 };
	start_sim(&p, "--name", "blue", "--error-rate", "0", (char *)NULL);
	assert_int_equal(sim_bin_path("loadgen", bin, sizeof bin, &err), 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", p.port);

	/* bounded by --max-requests long before --duration */
	char *argv[] = { bin, "--url", url, "--rate", "400", "--duration", "20", "--max-requests", "120",
			 "--concurrency", "4", "--body", "{\"prompt\":\"x\"}", NULL };
	double t0 = mono();
	assert_int_equal(run(argv, out, sizeof out), 0);
	assert_true(mono() - t0 < 10);
	assert_non_null(strstr(out, "\"sent\":120,"));
	assert_non_null(strstr(out, "\"completed\":120,"));
	assert_non_null(strstr(out, "\"status\":{\"200\":120}"));
	assert_non_null(strstr(out, "\"served_by\":{\"blue\":120}"));
	assert_true(metric(p.port, "http_requests_total{status=\"200\"}") == 120);

	/* bounded by --duration: 0.5 s at 100/s is about 50 requests, never more than 51 */
	snprintf(url, sizeof url, "http://localhost:%d/", p.port);
	char *argv2[] = { bin, "--url", url, "--rate", "100", "--duration", "0.5", NULL };
	assert_int_equal(run(argv2, out, sizeof out), 0);
	const char *s = strstr(out, "\"sent\":");
	assert_non_null(s);
	long sent = strtol(s + 7, NULL, 10);
	assert_in_range(sent, 40, 51);
	assert_true(metric(p.port, "http_requests_total{status=\"200\"}") == 120 + sent);
	assert_int_equal(sim_proc_stop(&p), 0);

	/* only loopback: refused before any connection is made */
	static char *const hosts[] = { "http://192.0.2.1/", "http://example.invalid:8080/", "https://127.0.0.1/" };
	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
		char *argv3[] = { bin, "--url", hosts[i], "--rate", "1", "--duration", "1", NULL };
		assert_int_equal(run(argv3, out, sizeof out), 64);
		assert_string_equal(out, "");
	}
	/* no server: every request fails, exit 69 */
	char *argv4[] = { bin, "--url", "http://127.0.0.1:1/", "--rate", "10", "--duration", "0.2", NULL };
	assert_int_equal(run(argv4, out, sizeof out), 69);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_apply_table),
		cmocka_unit_test(test_hist_render),
		cmocka_unit_test(test_lognormal_median),
		cmocka_unit_test(test_sim_counts_admin_reset),
		cmocka_unit_test(test_sim_sleep),
		cmocka_unit_test(test_sim_bad_args),
		cmocka_unit_test(test_loadgen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
