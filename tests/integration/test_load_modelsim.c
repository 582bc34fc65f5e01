/* The load generator against the real simulator on loopback: the rate it achieves, streaming TTFT and inter-token
 * latency measured from the events, a server with a known fixed latency measured within a small overhead, a refused
 * port counted as errors (no crash), the long-prompt slowdown visible only in the long-tail band, and the
 * simulator's malformed tool calls. Loads are small and bounded (count and time). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/load.h"
#include "canary/profile.h"
#include "port_fixture.h"
#include "sim_proc.h"

static void start_sim(struct sim_proc *p, ...)
{
	char bin[1024], *argv[32];
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
}

static void profile(struct cn_profile *p, const char *yaml)
{
	struct cn_err err = { 0 };
	if (cn_profile_parse(yaml, strlen(yaml), "test", p, &err) < 0)
		fail_msg("%s", err.msg);
}

static struct cn_load_result *run(const struct cn_profile *pf, int port, uint64_t seed)
{
	char url[64];
	struct cn_err err = { 0 };
	struct cn_load_result *r = calloc(1, sizeof *r);
	assert_non_null(r);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
	struct cn_load_opts o = { .profile = pf, .base_url = url, .seed = seed };
	if (cn_load_run(&o, r, &err) < 0)
		fail_msg("%s", err.msg);
	return r;
}

/* 100/s for 2 s, answers at once: the rate is met (Poisson: within 15% over about 200 arrivals), nothing fails. */
static void test_rate(void **state)
{
	(void)state;
	struct sim_proc sim;
	struct cn_profile pf;
	start_sim(&sim, "--error-rate", "0", NULL);
	profile(&pf, "rate: 100\nduration: 2s\nprompt_tokens: { median: 20, p99: 200 }\n"
		     "output_tokens: { median: 8, p99: 16 }\n");
	struct cn_load_result *r = run(&pf, sim.port, 1);
	sim_proc_stop(&sim);
	print_message("rate: sent %ld in %.2fs = %.1f/s, ok %ld, errors %ld\n", r->sent, r->send_span_s,
		      r->achieved_rate, r->ok, r->errors);
	assert_true(r->sent > 160 && r->sent < 240);
	assert_true(fabs(r->achieved_rate - 100) < 15);
	assert_int_equal(r->errors, 0);
	assert_int_equal(r->ok, r->sent);
	assert_true(r->output_tokens_seen >= r->ok); /* usage read from the answers */
	long banded = 0;
	for (int b = 0; b < CN_NBANDS; b++)
		banded += r->bands[b].requests;
	assert_int_equal(banded, r->sent);
	assert_int_equal(r->send_lag.n, r->sent); /* every request's delay behind its schedule */
	free(r);
}

/* A server with a fixed latency of 50 ms: the client measures it within a few milliseconds. */
static void test_fixed_latency(void **state)
{
	(void)state;
	struct sim_proc sim;
	struct cn_profile pf;
	start_sim(&sim, "--sleep", "1", "--latency-median", "0.05", "--latency-sigma", "0", "--error-rate", "0", NULL);
	profile(&pf, "rate: 40\nduration: 1500ms\nprompt_tokens: { median: 20, p99: 40 }\n");
	struct cn_load_result *r = run(&pf, sim.port, 2);
	sim_proc_stop(&sim);
	double p50 = cn_lhist_quantile(&r->latency, 0.5), p99 = cn_lhist_quantile(&r->latency, 0.99);
	print_message("fixed 50 ms: p50 %.2f ms, p99 %.2f ms over %ld\n", p50 * 1e3, p99 * 1e3, r->ok);
	assert_int_equal(r->errors, 0);
	assert_true(r->ok >= 30);
	assert_true(p50 >= 0.049 && p50 < 0.070); /* 2 shared cores: bounds leave room for a busy machine */
	assert_true(p99 < 0.150); /* one scheduling hiccup on a shared machine is the p99 of 60 */
	free(r);
}

/* Streaming, paced by the simulator: TTFT 30 ms, then 7 more tokens over 70 ms (10 ms apart). */
static void test_stream_timing(void **state)
{
	(void)state;
	struct sim_proc sim;
	struct cn_profile pf;
	start_sim(&sim, "--sleep", "1", "--latency-median", "0.1", "--latency-sigma", "0", "--ttft-median", "0.03",
		  "--ttft-sigma", "0", "--tokens", "8", "--error-rate", "0", NULL);
	for (int chat = 0; chat < 2; chat++) {
		profile(&pf, chat ? "rate: 20\nduration: 1s\nstream: true\nendpoint: chat\n"
				    "prompt_tokens: { median: 20, p99: 40 }\noutput_tokens: { median: 64, p99: 64 }\n"
				  : "rate: 20\nduration: 1s\nstream: true\n"
				    "prompt_tokens: { median: 20, p99: 40 }\noutput_tokens: { median: 64, p99: 64 }\n");
		struct cn_load_result *r = run(&pf, sim.port, 3);
		struct cn_lhist ttft = { 0 }, itl = { 0 };
		for (int b = 0; b < CN_NBANDS; b++)
			for (int i = 0; i < CN_LHIST_BUCKETS; i++) {
				ttft.count[i] += r->bands[b].ttft.count[i];
				ttft.n += r->bands[b].ttft.count[i];
				itl.count[i] += r->bands[b].itl.count[i];
				itl.n += r->bands[b].itl.count[i];
			}
		ttft.max = itl.max = INFINITY;
		double t50 = cn_lhist_quantile(&ttft, 0.5), i50 = cn_lhist_quantile(&itl, 0.5);
		double l50 = cn_lhist_quantile(&r->latency, 0.5);
		print_message("%s stream: ttft p50 %.1f ms, itl p50 %.1f ms, latency p50 %.1f ms, tokens %ld over %ld\n",
			      chat ? "chat" : "completions", t50 * 1e3, i50 * 1e3, l50 * 1e3, r->output_tokens_seen, r->ok);
		assert_int_equal(r->errors, 0);
		assert_true(r->ok >= 8);
		assert_int_equal(r->output_tokens_seen, 8 * r->ok); /* min(max_tokens 64, --tokens 8) */
		double i90 = cn_lhist_quantile(&itl, 0.9);
		assert_true(t50 >= 0.029 && t50 < 0.080);
		assert_true(i90 >= 0.008 && i50 < 0.050); /* tokens read together on a busy machine share one gap */
		assert_true(l50 >= 0.099 && l50 < 0.250);
		assert_true(t50 < l50);
		free(r);
	}
	sim_proc_stop(&sim);
}

/* Nothing listens: every request is a counted transport error, and the run ends on time. */
static void test_refused(void **state)
{
	(void)state;
	struct cn_err err = { 0 };
	struct cn_profile pf;
	int port = port_reserve(&err);
	if (port <= 0)
		fail_msg("%s", err.msg);
	profile(&pf, "rate: 50\nduration: 1s\nstream: true\n");
	struct cn_load_result *r = run(&pf, port, 4);
	port_release(port);
	assert_true(r->sent > 20);
	assert_int_equal(r->errors, r->sent);
	assert_int_equal(r->transport_errors, r->sent);
	assert_int_equal(r->ok, 0);
	assert_true(r->elapsed_s < 3);
	free(r);
}

/* Prompts over 1,000 tokens are 5x slower: the long-tail band shows it, the short band does not. */
static void test_long_prompt_band(void **state)
{
	(void)state;
	struct sim_proc sim;
	struct cn_profile pf;
	start_sim(&sim, "--sleep", "1", "--latency-median", "0.02", "--latency-sigma", "0", "--error-rate", "0",
		  "--long-prompt-tokens", "1000", "--long-prompt-factor", "5", NULL);
	profile(&pf, "rate: 50\nduration: 3s\nprompt_tokens: { median: 100, p99: 5000 }\n");
	struct cn_load_result *r = run(&pf, sim.port, 5);
	sim_proc_stop(&sim);
	const struct cn_band_stats *s = &r->bands[CN_BAND_SHORT], *l = &r->bands[CN_BAND_LONG];
	double s99 = cn_lhist_quantile(&s->latency, 0.99), l99 = cn_lhist_quantile(&l->latency, 0.99);
	print_message("short: %ld req p99 %.1f ms; long tail (> %.0f tokens): %ld req p99 %.1f ms\n", s->requests,
		      s99 * 1e3, l->lo, l->requests, l99 * 1e3);
	assert_int_equal(r->errors, 0);
	assert_true(s->requests > 40 && l->requests >= 5);
	assert_true(l99 >= 0.095);
	assert_true(cn_lhist_quantile(&s->latency, 0.5) < 0.05);
	assert_true(cn_lhist_quantile(&l->latency, 0.95) > 2 * cn_lhist_quantile(&s->latency, 0.95));
	free(r);
}

/* A chat request with tools gets a tool call; with tool_call_malformed 1 (set through /admin) its arguments are not
 * JSON. Metrics keep counting. */
static void test_tool_calls(void **state)
{
	(void)state;
	struct sim_proc sim;
	struct sim_http_resp h = { 0 };
	struct cn_err err = { 0 };
	const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris\"}],"
			  "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
			  "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"enum\":"
			  "[\"c\",\"f\"]}},\"required\":[\"city\",\"unit\"]}}}]}";
	start_sim(&sim, "--error-rate", "0", NULL);
	for (int malformed = 0; malformed < 2; malformed++) {
		if (malformed) {
			assert_int_equal(sim_http_request(sim.port, "POST", "/admin", "{\"tool_call_malformed\":1}", 5000,
							  &h, &err), 0);
			assert_int_equal(h.status, 200);
			sim_http_free(&h);
		}
		assert_int_equal(sim_http_request(sim.port, "POST", "/v1/chat/completions", req, 5000, &h, &err), 0);
		assert_int_equal(h.status, 200);
		json_t *doc = json_loads(h.body, 0, NULL);
		json_t *fn = json_object_get(json_object_get(json_array_get(json_object_get(json_object_get(
			json_array_get(json_object_get(doc, "choices"), 0), "message"), "tool_calls"), 0), "function"),
			"name") ? json_object_get(json_array_get(json_object_get(json_object_get(json_array_get(
			json_object_get(doc, "choices"), 0), "message"), "tool_calls"), 0), "function") : NULL;
		assert_non_null(fn);
		assert_string_equal(json_string_value(json_object_get(fn, "name")), "get_weather");
		const char *args = json_string_value(json_object_get(fn, "arguments"));
		assert_non_null(args);
		json_t *a = json_loads(args, 0, NULL);
		if (malformed) {
			assert_null(a);
		} else {
			assert_string_equal(json_string_value(json_object_get(a, "city")), "x");
			assert_string_equal(json_string_value(json_object_get(a, "unit")), "c");
		}
		json_decref(a);
		json_decref(doc);
		sim_http_free(&h);
	}
	assert_int_equal(sim_http_request(sim.port, "GET", "/metrics", NULL, 5000, &h, &err), 0);
	double ok = 0;
	assert_int_equal(sim_prom_value(h.body, "http_requests_total{status=\"200\"}", &ok), 0);
	assert_true(ok == 2);
	sim_http_free(&h);
	sim_proc_stop(&sim);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate),          cmocka_unit_test(test_fixed_latency),
		cmocka_unit_test(test_stream_timing), cmocka_unit_test(test_refused),
		cmocka_unit_test(test_long_prompt_band), cmocka_unit_test(test_tool_calls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
