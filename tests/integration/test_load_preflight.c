/* The load generator in a pre-flight's form, against real simulators on loopback: the baseline gets the same prompts
 * in the same order at the same moments (equal counts in every band), a slow long tail shows in the candidate's band
 * only, every answer is checked against the contract (tool calls that break the schema or are not JSON counted as
 * violations, a healthy server none), streams reset mid-way and a refused baseline count as errors, and a run is
 * cancelled promptly. Loads are small and bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "canary/contract.h"
#include "canary/load.h"
#include "canary/profile.h"
#include "canary/service.h"
#include "port_fixture.h"
#include "sim_proc.h"

static void start_sim(struct sim_proc *p, ...)
{
	char bin[1024], *argv[32];
	int n = 0;
	struct cn_err err = { 0 };
	if (sim_bin_path("modelsim", bin, sizeof bin, &err) < 0)
		fail_msg("%s", err.msg);
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

struct pair {
	struct cn_load_result cand, base;
	int rc;
	struct cn_err err;
};

static struct pair *run_pair(const struct cn_profile *pf, int cport, int bport, const struct cn_contract_rt *rt,
			     const atomic_bool *cancel)
{
	char url[64], url2[64];
	struct pair *p = calloc(1, sizeof *p);
	assert_non_null(p);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", cport);
	snprintf(url2, sizeof url2, "http://127.0.0.1:%d", bport);
	struct cn_load_opts o = { .profile = pf, .base_url = url, .seed = 7, .contract = rt, .baseline_url = url2,
				  .baseline_out = &p->base, .cancel = cancel };
	p->rc = cn_load_run(&o, &p->cand, &p->err);
	return p;
}

/* Prompts over 1,000 tokens are 10x slower on the candidate only: same band counts on both, the long tail differs. */
static void test_paired_long_tail(void **state)
{
	(void)state;
	struct sim_proc cand, base;
	struct cn_profile pf;
	start_sim(&cand, "--sleep", "1", "--latency-median", "0.05", "--latency-sigma", "0", "--error-rate", "0",
		  "--long-prompt-tokens", "1000", "--long-prompt-factor", "10", NULL);
	start_sim(&base, "--sleep", "1", "--latency-median", "0.05", "--latency-sigma", "0", "--error-rate", "0",
		  NULL);
	profile(&pf, "rate: 60\nduration: 3s\nprompt_tokens: { median: 100, p99: 5000 }\n");
	struct pair *p = run_pair(&pf, cand.port, base.port, NULL, NULL);
	sim_proc_stop(&cand);
	sim_proc_stop(&base);
	if (p->rc < 0)
		fail_msg("%s", p->err.msg);
	assert_int_equal(p->cand.sent, p->base.sent);
	for (int b = 0; b < CN_NBANDS; b++) {
		print_message("%-9s candidate %ld req p99 %.1f ms, baseline %ld req p99 %.1f ms\n",
			      cn_band_name((enum cn_band)b), p->cand.bands[b].requests,
			      1e3 * cn_lhist_quantile(&p->cand.bands[b].latency, 0.99), p->base.bands[b].requests,
			      1e3 * cn_lhist_quantile(&p->base.bands[b].latency, 0.99));
		assert_int_equal(p->cand.bands[b].requests, p->base.bands[b].requests); /* the same prompts */
	}
	const struct cn_band_stats *cl = &p->cand.bands[CN_BAND_LONG], *bl = &p->base.bands[CN_BAND_LONG];
	assert_int_equal(p->cand.errors + p->base.errors, 0);
	assert_true(cl->requests >= 5);
	assert_true(cn_lhist_quantile(&cl->latency, 0.5) > 3 * cn_lhist_quantile(&bl->latency, 0.5));
	assert_true(cn_lhist_quantile(&p->cand.bands[CN_BAND_SHORT].latency, 0.5) <
		    2 * cn_lhist_quantile(&p->base.bands[CN_BAND_SHORT].latency, 0.5));
	assert_int_equal(p->cand.contract_checked, 0); /* no contract, no checks */
	free(p);
}

static struct cn_contract_rt *example_contract(void)
{
	const char *dir = getenv("CANARY_SOURCE_DIR");
	char path[1024];
	struct cn_err err = { 0 };
	struct cn_service *s = calloc(1, sizeof *s);
	assert_non_null(s);
	assert_non_null(dir);
	snprintf(path, sizeof path, "%s/policies/chat-contract-service.yaml", dir);
	if (cn_service_load_file(path, s, NULL, &err) < 0)
		fail_msg("%s", err.msg);
	struct cn_contract_rt *rt = cn_contract_compile(&s->contract, CN_ENDPOINT_CHAT, &err);
	free(s);
	if (!rt)
		fail_msg("%s", err.msg);
	return rt;
}

/* One streamed chat request with the contract's tools to the simulator: its events must carry one tool call (named
 * in the first event) whose arguments come in at least two non-empty pieces that join to JSON with every required
 * property, and end with finish_reason "tool_calls" and [DONE]. So the streamed contract checks below are fed real
 * streamed tool calls, not text. */
static void check_streamed_tool_call(int port, const struct cn_contract_rt *rt)
{
	char body[4096];
	struct sim_http_resp resp = { 0 };
	struct cn_err err = { 0 };
	snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
		 "\"tools\":%s,\"max_tokens\":6,\"stream\":true}", cn_contract_tools_json(rt));
	if (sim_http_request(port, "POST", "/v1/chat/completions", body, 5000, &resp, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(resp.status, 200);
	char args[1024] = "";
	int pieces = 0, named = 0;
	bool finished = false, done = false;
	for (char *line = resp.body, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "data: ", 6) != 0)
			continue; /* blank lines, and the chunked encoding's sizes */
		if (strncmp(line + 6, "[DONE]", 6) == 0) {
			done = true;
			continue;
		}
		json_t *d = json_loads(line + 6, 0, NULL);
		assert_non_null(d);
		json_t *c = json_array_get(json_object_get(d, "choices"), 0);
		json_t *tc = json_array_get(json_object_get(json_object_get(c, "delta"), "tool_calls"), 0);
		const char *fr = json_string_value(json_object_get(c, "finish_reason"));
		finished |= fr && strcmp(fr, "tool_calls") == 0;
		if (tc) {
			json_t *fn = json_object_get(tc, "function");
			named += json_object_get(fn, "name") != NULL;
			const char *a = json_string_value(json_object_get(fn, "arguments"));
			assert_non_null(a);
			pieces += *a != '\0';
			assert_true(strlen(args) + strlen(a) < sizeof args);
			memcpy(args + strlen(args), a, strlen(a) + 1);
		}
		json_decref(d);
	}
	sim_http_free(&resp);
	print_message("streamed tool call: %d pieces, arguments %s\n", pieces, args);
	assert_int_equal(named, 1);
	assert_true(pieces >= 2);
	assert_true(finished && done);
	json_t *v = json_loads(args, 0, NULL);
	assert_non_null(v);
	assert_non_null(json_object_get(v, "city"));
	assert_non_null(json_object_get(v, "unit"));
	json_decref(v);
}

/* Tool calls, whole and streamed (the arguments' text split across chunk.delta events): the candidate leaves out a
 * required property in every call (or writes JSON that is cut off), the baseline answers by the schema; every
 * answer of both is checked, and only the candidate's count as violations. */
static void test_contract(void **state)
{
	(void)state;
	static const char *const knobs[] = { "tool_call_invalid", "tool_call_malformed" };
	static const char *const words[] = { "required property 'city' is missing", "arguments are not a JSON object" };
	struct cn_contract_rt *rt = example_contract();
	for (int k = 0; k < 4; k++) {
		struct sim_proc cand, base;
		struct cn_profile pf;
		char knob[64];
		bool stream = k >= 2;
		snprintf(knob, sizeof knob, "--%s", knobs[k % 2]);
		start_sim(&cand, "--error-rate", "0", knob, "1", NULL);
		start_sim(&base, "--error-rate", "0", NULL);
		if (stream && k == 2)
			check_streamed_tool_call(base.port, rt);
		profile(&pf, stream ? "rate: 100\nduration: 1s\nendpoint: chat\nstream: true\n"
				      "prompt_tokens: { median: 20, p99: 200 }\noutput_tokens: { median: 8, p99: 8 }\n"
				    : "rate: 100\nduration: 1s\nendpoint: chat\nprompt_tokens: { median: 20, p99: 200 }\n");
		struct pair *p = run_pair(&pf, cand.port, base.port, rt, NULL);
		sim_proc_stop(&cand);
		sim_proc_stop(&base);
		if (p->rc < 0)
			fail_msg("%s", p->err.msg);
		print_message("%s%s: candidate %ld of %ld answers broke the contract ('%s'); baseline %ld of %ld\n",
			      knobs[k % 2], stream ? " (streamed)" : "", p->cand.contract_violations,
			      p->cand.contract_checked, p->cand.contract_example, p->base.contract_violations,
			      p->base.contract_checked);
		if (stream) {
			/* every streamed call arrived whole (8 events each: the finishing chunk is no token) */
			assert_int_equal(p->cand.errors + p->base.errors, 0);
			assert_int_equal(p->base.output_tokens_seen, 8 * p->base.ok);
		}
		assert_true(p->cand.ok > 50);
		assert_int_equal(p->cand.contract_checked, p->cand.ok);
		assert_int_equal(p->cand.contract_violations, p->cand.ok);
		assert_non_null(strstr(p->cand.contract_example, words[k % 2]));
		assert_int_equal(p->base.contract_checked, p->base.ok);
		assert_int_equal(p->base.contract_violations, 0);
		long per_band = 0;
		for (int b = 0; b < CN_NBANDS; b++)
			per_band += p->cand.bands[b].contract_violations;
		assert_int_equal(per_band, p->cand.contract_violations);
		free(p);
	}
	cn_contract_rt_free(rt);
}

/* A candidate whose streams are reset after the first token, and a baseline port that refuses: all counted as
 * errors, nothing crashes, streamed chunks of a healthy server pass the shape checks. */
static void test_faults(void **state)
{
	(void)state;
	struct sim_proc cand, good;
	struct cn_profile pf;
	struct cn_err err = { 0 };
	struct cn_contract_rt *rt = example_contract();
	int refused = port_reserve(&err);
	if (refused <= 0)
		fail_msg("%s", err.msg);
	start_sim(&cand, "--sleep", "1", "--error-rate", "0", "--latency-median", "0.05", "--stream-cut", "1", NULL);
	start_sim(&good, "--sleep", "1", "--error-rate", "0", "--latency-median", "0.05", NULL);
	profile(&pf, "rate: 50\nduration: 1s\nstream: true\ntimeout: 3s\n");
	struct pair *p = run_pair(&pf, cand.port, refused, NULL, NULL);
	print_message("reset streams: %ld of %ld errors (%ld stream, %ld transport, %ld timeouts, %ld http); refused baseline: %ld of %ld (%ld transport)\n",
		      p->cand.errors, p->cand.sent, p->cand.stream_errors, p->cand.transport_errors, p->cand.timeouts, p->cand.http_errors, p->base.errors, p->base.sent,
		      p->base.transport_errors);
	assert_int_equal(p->rc, 0);
	assert_true(p->cand.sent > 20);
	assert_int_equal(p->cand.errors, p->cand.sent);
	/* a reset before the answer's head arrived is a transport error; a few cut streams the simulator leaves open
	 * until the request's timeout (3 s) */
	assert_int_equal(p->cand.stream_errors + p->cand.transport_errors + p->cand.timeouts, p->cand.sent);
	assert_true(p->cand.stream_errors >= p->cand.sent / 2);
	assert_int_equal(p->base.transport_errors, p->base.sent);
	free(p);

	/* streamed chat answers of a healthy server conform */
	profile(&pf, "rate: 50\nduration: 1s\nstream: true\nendpoint: chat\n");
	p = run_pair(&pf, good.port, good.port, NULL, NULL);
	assert_int_equal(p->rc, 0);
	free(p);
	struct cn_contract c = { .declared = true, .response = CN_RESPONSE_OPENAI };
	struct cn_contract_rt *shape = cn_contract_compile(&c, CN_ENDPOINT_CHAT, &err);
	assert_non_null(shape);
	p = run_pair(&pf, good.port, good.port, shape, NULL);
	assert_int_equal(p->rc, 0);
	assert_true(p->cand.contract_checked > 20);
	if (p->cand.contract_violations)
		fail_msg("healthy stream: %ld violations: %s", p->cand.contract_violations, p->cand.contract_example);
	free(p);
	cn_contract_rt_free(shape);
	sim_proc_stop(&cand);
	sim_proc_stop(&good);
	port_release(refused);
	cn_contract_rt_free(rt);
}

static void *cancel_later(void *arg)
{
	usleep(300 * 1000);
	atomic_store((atomic_bool *)arg, true);
	return NULL;
}

/* A run of 30 s is cancelled after 0.3 s and returns within a second, requests in flight abandoned. */
static void test_cancel(void **state)
{
	(void)state;
	struct sim_proc sim;
	struct cn_profile pf;
	atomic_bool cancel = false;
	pthread_t t;
	start_sim(&sim, "--sleep", "1", "--latency-median", "2", "--error-rate", "0", NULL);
	profile(&pf, "rate: 50\nduration: 30s\n");
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pthread_create(&t, NULL, cancel_later, &cancel);
	struct pair *p = run_pair(&pf, sim.port, sim.port, NULL, &cancel);
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(t, NULL);
	sim_proc_stop(&sim);
	double took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	print_message("cancelled after %.2f s: rc %d '%s'\n", took, p->rc, p->err.msg);
	assert_int_equal(p->rc, -CN_EUNAVAIL);
	assert_true(took < 1.5);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paired_long_tail),
		cmocka_unit_test(test_contract),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
