/* Benchmark: the cost of one judge + state-machine tick (cn_tick) on realistic inputs: vLLM-like histograms of
 * 30 buckets for latency, ttft and itl on both variants, 4 SLOs, counters moving every tick. Prints ns per tick.
 * Usage: bench_tick [TICKS [sequential|threshold]]   (default 1000000 sequential) */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/rollout.h"

#define NB 30

/* per-tick increments of the cumulative bucket counts, one array per histogram kind and variant */
struct shape {
	double le[NB];
	double inc[NB];
};

/* Log-normal-ish shape on geometric bounds: `median` in seconds, `per_tick` observations per tick. */
static void make_shape(struct shape *s, double first, double factor, double median, double per_tick)
{
	for (int i = 0; i < NB; i++)
		s->le[i] = i == NB - 1 ? INFINITY : first * pow(factor, i);
	for (int i = 0; i < NB; i++) {
		double x = isinf(s->le[i]) ? 1.0 : 0.5 * erfc(-(log(s->le[i] / median) / 0.6) / sqrt(2.0));
		s->inc[i] = floor(x * per_tick + 0.5);
	}
}

static void hist_init(struct cn_histogram *h, const struct shape *s)
{
	h->nbuckets = NB;
	memcpy(h->le, s->le, sizeof s->le);
	memset(h->count, 0, sizeof h->count);
	h->sum = 0;
}

static void hist_add(struct cn_histogram *h, const struct shape *s, double sum_inc)
{
	for (int i = 0; i < NB; i++)
		h->count[i] += s->inc[i];
	h->sum += sum_inc;
}

struct variant {
	struct shape lat, ttft, itl;
	double requests, errors;
};

static void sample_init(struct cn_sample *x, const struct variant *v)
{
	memset(x, 0, sizeof *x);
	x->ok = true;
	hist_init(&x->latency, &v->lat);
	hist_init(&x->ttft, &v->ttft);
	hist_init(&x->itl, &v->itl);
}

static void sample_move(struct cn_sample *x, const struct variant *v)
{
	x->requests += v->requests;
	x->errors += v->errors;
	hist_add(&x->latency, &v->lat, v->requests * 1.2);
	hist_add(&x->ttft, &v->ttft, v->requests * 0.08);
	hist_add(&x->itl, &v->itl, v->requests * 200 * 0.02);
}

static struct cn_slo slo(const char *name, enum cn_slo_metric m, double q, double max, double max_increase)
{
	struct cn_slo s;
	memset(&s, 0, sizeof s);
	snprintf(s.name, sizeof s.name, "%s", name);
	s.metric = m;
	s.quantile = q;
	s.max = max;
	s.max_increase = max_increase;
	s.tolerance = NAN;
	return s;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long ticks = 1000000;
	if (argc > 1) {
		char *end;
		errno = 0;
		ticks = strtol(argv[1], &end, 10);
		if (errno || *end || ticks < 1) {
			fprintf(stderr, "bench_tick: '%s' is not a positive number of ticks\n", argv[1]);
			return 64;
		}
	}

	static struct cn_policy p;
	snprintf(p.name, sizeof p.name, "bench");
	static const double w[] = {1, 5, 100};
	for (int i = 0; i < 3; i++) {
		p.steps[i].weight = w[i];
		p.steps[i].hold_ms = INT64_C(1) << 50; /* stay in the step: steady-state ticks are what we time */
	}
	p.nsteps = 3;
	p.analysis.interval_ms = 10000;
	p.analysis.min_requests = 500;
	p.analysis.failing_ticks = 3;
	p.analysis.inconclusive_timeout_ms = 600000;
	p.analysis.on_inconclusive = CN_FALLBACK_PAUSE;
	p.analysis.judge = argc > 2 && strcmp(argv[2], "threshold") == 0 ? CN_JUDGE_THRESHOLD : CN_JUDGE_SEQUENTIAL;
	p.analysis.false_rollback_budget = 0.01;
	p.slos[0] = slo("errors", CN_METRIC_ERROR_RATE, NAN, 0.05, 1.5);
	p.slos[1] = slo("p99-latency", CN_METRIC_LATENCY, 0.99, NAN, 1.2);
	p.slos[2] = slo("p95-ttft", CN_METRIC_TTFT, 0.95, 2.0, 1.2);
	p.slos[3] = slo("p99-itl", CN_METRIC_ITL, 0.99, NAN, 1.2);
	p.nslos = 4;
	p.on_failure = CN_FALLBACK_ROLLBACK;

	/* vLLM-like: 30 geometric buckets; baseline 990 requests per tick, candidate 10 (1%) */
	static struct variant base, cand;
	make_shape(&base.lat, 0.01, 1.4, 1.0, 990);
	make_shape(&base.ttft, 0.001, 1.45, 0.08, 990);
	make_shape(&base.itl, 0.001, 1.3, 0.02, 990 * 200);
	base.requests = 990;
	base.errors = 5;
	/* the threshold judge tolerates the candidate's 5% slower shape; the sequential judge would (rightly) roll
	 * it back within a few ticks at this traffic, so it gets the baseline's shape: steady state is what we time */
	double slower = p.analysis.judge == CN_JUDGE_THRESHOLD ? 1.05 : 1.0;
	make_shape(&cand.lat, 0.01, 1.4, 1.0 * slower, 10);
	make_shape(&cand.ttft, 0.001, 1.45, 0.08 * slower, 10);
	make_shape(&cand.itl, 0.001, 1.3, 0.02 * slower, 10 * 200);
	cand.requests = 10;
	cand.errors = 0.05;

	static struct cn_observation obs;
	sample_init(&obs.baseline, &base);
	sample_init(&obs.candidate, &cand);

	static struct cn_tick_result r[2];
	cn_rollout_init(&r[0].next);
	int64_t now = INT64_C(1700000000000);
	int cur = 0;
	long decisions[16] = {0};

	/* warm up: start the rollout and gather some evidence */
	for (int i = 0; i < 100; i++) {
		sample_move(&obs.baseline, &base);
		sample_move(&obs.candidate, &cand);
		obs.at_ms = now;
		cn_tick(&p, &r[cur].next, &obs, now, &r[!cur]);
		cur = !cur;
		now += 10000;
	}

	/* the cost of moving the counters alone, subtracted below */
	static struct cn_observation scratch;
	scratch = obs;
	double t0 = now_ns();
	for (long i = 0; i < ticks; i++) {
		sample_move(&scratch.baseline, &base);
		sample_move(&scratch.candidate, &cand);
		scratch.at_ms = i;
	}
	double t_move = now_ns() - t0;

	t0 = now_ns();
	for (long i = 0; i < ticks; i++) {
		sample_move(&obs.baseline, &base);
		sample_move(&obs.candidate, &cand);
		obs.at_ms = now;
		cn_tick(&p, &r[cur].next, &obs, now, &r[!cur]);
		cur = !cur;
		decisions[r[cur].decision & 15]++;
		now += 10000;
	}
	double t_all = now_ns() - t0;

	const struct cn_tick_result *last = &r[cur];
	printf("bench_tick: %ld ticks, 3 histograms x 30 buckets x 2 variants, %d slos\n", ticks, p.nslos);
	printf("  per tick (cn_tick + moving counters): %8.0f ns\n", t_all / (double)ticks);
	printf("  moving counters alone:                %8.0f ns\n", t_move / (double)ticks);
	printf("  cn_tick:                              %8.0f ns  (goal <= 50000 ns)\n",
	       (t_all - t_move) / (double)ticks);
	printf("  state size %zu bytes, result size %zu bytes\n", sizeof(struct cn_rollout_state),
	       sizeof(struct cn_tick_result));
	printf("  last tick: %s, %s, %.0f%%: %s\n", cn_decision_name(last->decision), cn_phase_name(last->next.phase),
	       last->weight, last->reason);
	for (int i = 0; i < last->nslos; i++)
		printf("    %-12s %-12s %s\n", p.slos[i].name, cn_verdict_name(last->slos[i].verdict), last->slos[i].why);
	printf("  checksum %ld\n", decisions[CN_DECIDE_HOLD]);
	return 0;
}
