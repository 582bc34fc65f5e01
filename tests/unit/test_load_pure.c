/* The load generator's pure parts: the Poisson/burst schedule's rate over a long window, the log-normal lengths'
 * median and p99, the server-sent-events parser on chunks split anywhere, and the timing histograms' quantiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "canary/load.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Without bursts: 100/s over 2,000 s of schedule gives 200,000 arrivals within 1%, gaps exponential (cv about 1). */
static void test_poisson_rate(void **state)
{
	(void)state;
	struct cn_sched s;
	cn_sched_init(&s, 100, NULL, 42);
	long n = 0;
	double t = 0, prev = 0, sum = 0, sum2 = 0;
	while ((t = cn_sched_next(&s)) < 2000) {
		double g = t - prev;
		sum += g;
		sum2 += g * g;
		prev = t;
		n++;
	}
	assert_true(fabs((double)n / 2000 - 100) < 1);
	double mean = sum / (double)n, sd = sqrt(sum2 / (double)n - mean * mean);
	assert_true(fabs(sd / mean - 1) < 0.02);
}

/* Bursts 3x for 5 s every 60 s: inside bursts the rate is 3x, outside 1x, and the mean is (5*3 + 55)/60 x. */
static void test_burst_rate(void **state)
{
	(void)state;
	struct cn_bursts b = { .factor = 3, .period_ms = 60000, .length_ms = 5000 };
	struct cn_sched s;
	cn_sched_init(&s, 50, &b, 7);
	assert_true(cn_sched_rate_at(&s, 0) == 150);
	assert_true(cn_sched_rate_at(&s, 4.99) == 150);
	assert_true(cn_sched_rate_at(&s, 5.01) == 50);
	assert_true(cn_sched_rate_at(&s, 60.5) == 150);
	long in = 0, out = 0;
	double t;
	while ((t = cn_sched_next(&s)) < 6000) {
		if (fmod(t, 60) < 5)
			in++;
		else
			out++;
	}
	double rin = (double)in / (100 * 5.0), rout = (double)out / (100 * 55.0);
	assert_true(fabs(rin - 150) < 150 * 0.02);
	assert_true(fabs(rout - 50) < 50 * 0.02);
	assert_true(fabs((double)(in + out) / 6000 - 50 * 70.0 / 60) < 1);
}

static void test_lognormal(void **state)
{
	(void)state;
	enum { N = 200000 };
	double *v = malloc(N * sizeof *v);
	struct cn_rng rng;
	assert_non_null(v);
	cn_rng_seed(&rng, 1);
	for (int i = 0; i < N; i++)
		v[i] = cn_rng_lognormal_p99(&rng, 300, 8000);
	qsort(v, N, sizeof *v, cmp_double);
	assert_true(fabs(v[N / 2] / 300 - 1) < 0.03);
	assert_true(fabs(v[(int)(0.99 * N)] / 8000 - 1) < 0.06);
	assert_true(fabs(cn_lognormal_quantile(300, 8000, 0.99) / 8000 - 1) < 1e-6);
	assert_true(fabs(cn_lognormal_quantile(300, 8000, 0.5) / 300 - 1) < 1e-6);
	/* p99 equal to the median: no spread */
	assert_true(cn_rng_lognormal_p99(&rng, 64, 64) == 64);
	free(v);
}

static const char stream_text[] =
	": keep-alive comment\r\n\r\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\r\n\r\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n"
	"data: {\"choices\":[{\"index\":0,\"text\":\" world\"}]}\n\n"
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n"
	/* the last chunk of a streamed tool call names tool_calls as a value, not a key: no token */
	"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":{}}\n\n"
	"data: [DONE]\n\n";

/* Every split of the stream into two chunks, and one byte at a time, gives the same counts. */
static void test_sse_split(void **state)
{
	(void)state;
	size_t n = strlen(stream_text);
	for (size_t cut = 0; cut <= n; cut++) {
		struct cn_sse p;
		cn_sse_init(&p);
		long t = cn_sse_feed(&p, stream_text, cut);
		t += cn_sse_feed(&p, stream_text + cut, n - cut);
		assert_int_equal(t, 4);
		assert_int_equal(p.tokens, 4);
		assert_int_equal(p.events, 5);
		assert_true(p.done);
		assert_false(p.error);
		cn_sse_free(&p);
	}
	struct cn_sse p;
	cn_sse_init(&p);
	for (size_t i = 0; i < n; i++)
		cn_sse_feed(&p, stream_text + i, 1);
	assert_int_equal(p.tokens, 4);
	assert_true(p.done);
	cn_sse_free(&p);
}

static void test_sse_bad(void **state)
{
	(void)state;
	struct cn_sse p;
	/* cut before [DONE]: not done */
	cn_sse_init(&p);
	cn_sse_feed(&p, "data: {\"text\":\"a\"}\n\ndata: [DO", 29);
	assert_false(p.done);
	cn_sse_free(&p);
	/* an error event */
	cn_sse_init(&p);
	assert_int_equal(cn_sse_feed(&p, "data: {\"error\":{\"message\":\"x\"}}\n\n", 35), -1);
	assert_true(p.error);
	cn_sse_free(&p);
	/* a line over the cap, fed in pieces */
	char *big = malloc(64 * 1024);
	assert_non_null(big);
	memset(big, 'a', 64 * 1024);
	cn_sse_init(&p);
	long rc = 0;
	for (int i = 0; i < 5 && rc >= 0; i++)
		rc = cn_sse_feed(&p, big, 64 * 1024);
	assert_int_equal(rc, -1);
	assert_true(p.error);
	assert_true(p.alloc <= CN_SSE_LINE_MAX + 1 || p.alloc <= 2 * CN_SSE_LINE_MAX);
	cn_sse_free(&p);
	free(big);
}

static void test_lhist(void **state)
{
	(void)state;
	struct cn_lhist *h = calloc(1, sizeof *h);
	assert_non_null(h);
	assert_true(isnan(cn_lhist_quantile(h, 0.5)));
	for (int i = 1; i <= 1000; i++)
		cn_lhist_add(h, i * 0.001); /* 1 ms .. 1 s */
	double p50 = cn_lhist_quantile(h, 0.5), p99 = cn_lhist_quantile(h, 0.99);
	assert_true(p50 >= 0.5 && p50 <= 0.5 * 1.041);
	assert_true(p99 >= 0.99 && p99 <= 1.0);
	assert_true(cn_lhist_quantile(h, 1.0) == 1.0);
	assert_true(fabs(h->sum / (double)h->n - 0.5005) < 1e-9); /* the mean is exact */
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_poisson_rate), cmocka_unit_test(test_burst_rate), cmocka_unit_test(test_lognormal),
		cmocka_unit_test(test_sse_split),    cmocka_unit_test(test_sse_bad),    cmocka_unit_test(test_lhist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
