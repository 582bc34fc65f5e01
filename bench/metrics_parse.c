/* Benchmark: parse speed of the Prometheus text-format parser on a 10 MB vLLM-like page (many models and label
 * sets, wanted histograms and counters among unrelated series). Prints MB/s; never a pass/fail test. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/promtext.h"

static const double les[] = { 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0 };

int main(void)
{
	size_t cap = 11u * 1000 * 1000, len = 0;
	char *page = malloc(cap + 4096);
	struct cn_metric_names names;
	struct cn_err err = { 0 };
	struct cn_promtext *p;
	struct cn_sample s;
	struct timespec t0, t1;
	double secs;
	int runs = 20, model = 0;

	if (!page)
		return 1;
	while (len < 10u * 1000 * 1000) {
		size_t n = 0;
		char *o = page + len;
		size_t room = cap + 4096 - len;
		model++;
		for (size_t i = 0; i < sizeof les / sizeof les[0]; i++)
			n += (size_t)snprintf(o + n, room - n, "vllm:e2e_request_latency_seconds_bucket{le=\"%g\","
					      "model_name=\"model-%d\"} %d\n", les[i], model, (int)(i + 1) * 10);
		n += (size_t)snprintf(o + n, room - n, "vllm:e2e_request_latency_seconds_bucket{le=\"+Inf\","
				      "model_name=\"model-%d\"} 200\nvllm:e2e_request_latency_seconds_sum{model_name="
				      "\"model-%d\"} 123.5\nvllm:e2e_request_latency_seconds_count{model_name=\"model-%d\"}"
				      " 200\n", model, model, model);
		n += (size_t)snprintf(o + n, room - n, "http_requests_total{handler=\"/v1/completions\",status=\"2xx\","
				      "pod=\"model-%d\"} 195\nhttp_requests_total{handler=\"/v1/completions\","
				      "status=\"5xx\",pod=\"model-%d\"} 5\n", model, model);
		for (int k = 0; k < 40; k++)
			n += (size_t)snprintf(o + n, room - n, "vllm:cache_config_info{block_size=\"16\",id=\"%d-%d\","
					      "gpu_memory_utilization=\"0.9\"} 1.0\n", model, k);
		len += n;
	}
	memset(&names, 0, sizeof names);
	snprintf(names.requests, sizeof names.requests, "http_requests_total");
	snprintf(names.errors, sizeof names.errors, "http_requests_total{status=~\"5..\"}");
	snprintf(names.latency, sizeof names.latency, "vllm:e2e_request_latency_seconds");
	p = cn_promtext_new(&names, NULL, &err);
	if (!p) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < runs; r++)
		cn_promtext_parse(p, "bench", page, len, &s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (!s.ok) {
		fprintf(stderr, "%s\n", s.why);
		return 1;
	}
	printf("metrics_parse: %.1f MB page, %d models, %d runs: %.1f ms per page, %.0f MB/s (requests %.0f, "
	       "errors %.0f, %d buckets)\n", (double)len / 1e6, model, runs, secs * 1e3 / runs,
	       (double)len * runs / 1e6 / secs, s.requests, s.errors, s.latency.nbuckets);

	/* the worst case: every line wanted (labels parsed, matchers run) */
	snprintf(names.errors, sizeof names.errors, "vllm:cache_config_info{block_size=~\"1.\"}");
	cn_promtext_free(p);
	p = cn_promtext_new(&names, NULL, &err);
	if (!p)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < runs; r++)
		cn_promtext_parse(p, "bench", page, len, &s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("metrics_parse: every line wanted: %.1f ms per page, %.0f MB/s\n", secs * 1e3 / runs,
	       (double)len * runs / 1e6 / secs);
	cn_promtext_free(p);
	bool ok = s.ok;

	/* what canaryd does per slot every tick: one model's page (three histograms of 15 buckets, two counters, 53
	 * wanted series) through a parser cloned for the page and the slot's reset tracker, packed between pages */
	len = 0;
	for (int k = 0; k < 3; k++) {
		static const char *const h[] = { "vllm:e2e_request_latency_seconds", "vllm:time_to_first_token_seconds",
						  "vllm:time_per_output_token_seconds" };
		for (size_t i = 0; i < sizeof les / sizeof les[0]; i++)
			len += (size_t)snprintf(page + len, cap - len, "%s_bucket{le=\"%g\",model_name=\"m\"} %d\n", h[k],
						les[i], (int)(i + 1) * 1000);
		len += (size_t)snprintf(page + len, cap - len, "%s_bucket{le=\"+Inf\",model_name=\"m\"} 20000\n"
					"%s_sum{model_name=\"m\"} 12345.5\n%s_count{model_name=\"m\"} 20000\n", h[k], h[k], h[k]);
	}
	len += (size_t)snprintf(page + len, cap - len, "http_requests_total{status=\"2xx\",model_name=\"m\"} 19950\n"
				"http_requests_total{status=\"5xx\",model_name=\"m\"} 50\n");
	snprintf(names.errors, sizeof names.errors, "http_requests_total{status=~\"5..\"}");
	snprintf(names.ttft, sizeof names.ttft, "vllm:time_to_first_token_seconds");
	snprintf(names.itl, sizeof names.itl, "vllm:time_per_output_token_seconds");
	struct cn_promtext *tmpl = cn_promtext_new(&names, NULL, &err);
	struct cn_promtrack *tr = cn_promtrack_new(4096);
	if (!tmpl || !tr)
		return 1;
	int pages = 200000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < pages && ok; r++) {
		if (!(p = cn_promtext_clone(tmpl, tr, &err)))
			return 1;
		cn_promtext_parse(p, "bench", page, len, &s);
		ok = s.ok;
		cn_promtext_free(p);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("metrics_parse: one model's page (%zu bytes) with a reset tracker: %.1f us per page, tracker %zu bytes\n",
	       len, secs * 1e6 / pages, cn_promtrack_bytes(tr));
	cn_promtrack_free(tr);
	cn_promtext_free(tmpl);
	free(page);
	return ok ? 0 : 1;
}
