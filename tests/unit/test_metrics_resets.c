/* Unit tests of per-series counter resets (cn_promtext_track_resets): several servers behind one slot's page, one of
 * them restarts or leaves; the sums the parser reports, and the deltas the core takes from them, count only the new
 * traffic. Table-driven: each case is a sequence of pages and the sums expected after each. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "canary/judge.h"
#include "canary/promtext.h"

#define ORIGIN "http://127.0.0.1:8001/metrics"
#define MAX_PAGES 5

static bool same(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= 1e-9 * (1 + fabs(b));
}

static struct cn_promtext *parser(size_t track)
{
	struct cn_err err = { 0 };
	struct cn_metric_names n;
	memset(&n, 0, sizeof n);
	snprintf(n.requests, sizeof n.requests, "req_total");
	snprintf(n.errors, sizeof n.errors, "err_total");
	snprintf(n.latency, sizeof n.latency, "lat");
	struct cn_promtext *p = cn_promtext_new(&n, NULL, &err);
	assert_non_null(p);
	if (track)
		assert_int_equal(cn_promtext_track_resets(p, track, &err), 0);
	return p;
}

static void parse(struct cn_promtext *p, const char *page, struct cn_sample *out)
{
	cn_promtext_parse(p, ORIGIN, page, strlen(page), out);
	assert_true(out->ok);
}

/* req_total and err_total of two servers a and b, and a's latency histogram (le 1 and +Inf). */
#define PAGE2(ra, ea, rb, eb, l1, linf)                                                                               \
	"req_total{server=\"a\"} " #ra "\nreq_total{server=\"b\"} " #rb "\nerr_total{server=\"a\"} " #ea               \
	"\nerr_total{server=\"b\"} " #eb "\nlat_bucket{server=\"a\",le=\"1\"} " #l1                                     \
	"\nlat_bucket{server=\"a\",le=\"+Inf\"} " #linf "\nlat_sum{server=\"a\"} " #linf "\nlat_count{server=\"a\"} " #linf "\n"

struct reset_case {
	const char *name;
	size_t track;                 /* series remembered; 0: tracking off (the old behaviour) */
	const char *pages[MAX_PAGES];
	double requests[MAX_PAGES];   /* the sums expected after each page */
	double errors[MAX_PAGES];
	double lat_inf[MAX_PAGES];    /* the latency histogram's +Inf bucket */
};

static const struct reset_case cases[] = {
	{ "steady growth is summed as read", 64,
	  { PAGE2(100, 1, 1000, 10, 90, 100), PAGE2(110, 2, 1010, 11, 99, 110) },
	  { 1100, 1120 }, { 11, 13 }, { 100, 110 } },
	{ "server a restarts: its count goes on from where it was, b's total is not new traffic", 64,
	  { PAGE2(100, 1, 1000, 10, 90, 100), PAGE2(5, 0, 1010, 11, 4, 5), PAGE2(8, 1, 1020, 11, 7, 8) },
	  { 1100, 1115, 1128 }, { 11, 12, 13 }, { 100, 105, 108 } },
	{ "server a restarts twice", 64,
	  { PAGE2(100, 1, 1000, 10, 90, 100), PAGE2(5, 0, 1000, 10, 4, 5), PAGE2(3, 0, 1000, 10, 2, 3) },
	  { 1100, 1105, 1108 }, { 11, 11, 11 }, { 100, 105, 108 } },
	{ "server b leaves: its past requests stay counted",
	  64,
	  { PAGE2(100, 1, 1000, 10, 90, 100),
	    "req_total{server=\"a\"} 120\nerr_total{server=\"a\"} 1\nlat_bucket{server=\"a\",le=\"1\"} 100\n"
	    "lat_bucket{server=\"a\",le=\"+Inf\"} 120\n" },
	  { 1100, 1120 }, { 11, 11 }, { 100, 120 } },
	{ "a new server joins: everything it served is new", 64,
	  { "req_total{server=\"a\"} 100\nerr_total{server=\"a\"} 1\nlat_bucket{server=\"a\",le=\"1\"} 90\n"
	    "lat_bucket{server=\"a\",le=\"+Inf\"} 100\n",
	    PAGE2(110, 1, 7, 0, 95, 110) },
	  { 100, 117 }, { 1, 1 }, { 100, 110 } },
	{ "without tracking a restart makes the sum fall (the core then sees a reset)", 0,
	  { PAGE2(100, 1, 1000, 10, 90, 100), PAGE2(5, 0, 1010, 11, 4, 5) },
	  { 1100, 1015 }, { 11, 11 }, { 100, 5 } },
	{ "more series than remembered: the extra ones are summed as read", 2,
	  { PAGE2(100, 1, 1000, 10, 90, 100), PAGE2(5, 0, 1010, 11, 4, 5) },
	  { 1100, 1115 }, { 11, 11 }, { 100, 5 } },
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		const struct reset_case *tc = &cases[c];
		struct cn_promtext *p = parser(tc->track);
		print_message("%s\n", tc->name);
		for (int i = 0; i < MAX_PAGES && tc->pages[i]; i++) {
			struct cn_sample s;
			parse(p, tc->pages[i], &s);
			if (!same(s.requests, tc->requests[i]) || !same(s.errors, tc->errors[i]) ||
			    !same(s.latency.count[s.latency.nbuckets - 1], tc->lat_inf[i]))
				fail_msg("%s: page %d: requests %g errors %g +Inf %g, expected %g %g %g", tc->name, i + 1,
					 s.requests, s.errors, s.latency.count[s.latency.nbuckets - 1], tc->requests[i],
					 tc->errors[i], tc->lat_inf[i]);
		}
		cn_promtext_free(p);
	}
}

/* A failed page changes no sums: the next good page is compared with the last good one. */
static void test_failed_page(void **state)
{
	(void)state;
	struct cn_promtext *p = parser(64);
	struct cn_sample s;
	parse(p, PAGE2(100, 1, 1000, 10, 90, 100), &s);
	cn_promtext_parse(p, ORIGIN, "req_total{server=\"a\"} 12abc\n", 28, &s);
	assert_false(s.ok);
	parse(p, PAGE2(110, 1, 1010, 10, 99, 110), &s);
	assert_true(same(s.requests, 1120));
	cn_promtext_free(p);
}

/* End to end through the core: the step's evidence after server a restarts is the new traffic (15 requests), not
 * server b's whole history, and the core does not flag a reset. */
static void test_core_delta(void **state)
{
	(void)state;
	struct cn_promtext *p = parser(64);
	struct cn_sample s1, s2, base;
	struct cn_counters acc;
	struct cn_series_status st;
	parse(p, PAGE2(100, 1, 1000, 10, 90, 100), &s1);
	parse(p, PAGE2(5, 0, 1010, 11, 4, 5), &s2);
	cn_counters_reset(&acc);
	cn_ingest_sample(&s1, &s2, &acc, &base, &st);
	assert_true(same(acc.requests, 15));
	assert_true(same(acc.errors, 1)); /* b's one new error; a's reset to 0 adds none */
	assert_int_equal(st.reset & CN_SERIES_REQUESTS, 0);
	cn_promtext_free(p);

	/* the same pages without tracking: the core takes all 1015 requests as new */
	p = parser(0);
	parse(p, PAGE2(100, 1, 1000, 10, 90, 100), &s1);
	parse(p, PAGE2(5, 0, 1010, 11, 4, 5), &s2);
	cn_counters_reset(&acc);
	cn_ingest_sample(&s1, &s2, &acc, &base, &st);
	assert_true(same(acc.requests, 1015));
	assert_int_not_equal(st.reset & CN_SERIES_REQUESTS, 0);
	cn_promtext_free(p);
}

/* A page of many servers: the table grows from its small start (entries kept through every doubling), one server's
 * restart still adds only its own new requests, and series beyond the limit are summed as read. */
static void page_of(char *buf, size_t size, int servers, int restarted, double value)
{
	size_t off = 0;
	for (int i = 0; i < servers; i++) {
		int n = snprintf(buf + off, size - off, "req_total{server=\"s%d\"} %g\n", i, i == restarted ? 5.0 : value);
		assert_true(n > 0 && (size_t)n < size - off);
		off += (size_t)n;
	}
}

static void test_many_series(void **state)
{
	(void)state;
	size_t size = 64 * 1024;
	char *page = malloc(size);
	assert_non_null(page);
	struct cn_sample s;
	struct cn_promtext *p = parser(4096);
	page_of(page, size, 1000, -1, 100);
	parse(p, page, &s);
	assert_true(same(s.requests, 1000 * 100.0));
	page_of(page, size, 1000, 500, 110);
	parse(p, page, &s);
	assert_true(same(s.requests, 999 * 110.0 + 100 + 5)); /* s500 restarted: its 100 stay counted */
	cn_promtext_free(p);

	/* a reset carried while the table is small stays carried when 990 more servers make it grow */
	p = parser(4096);
	page_of(page, size, 10, -1, 100);
	parse(p, page, &s);
	page_of(page, size, 10, 3, 100);
	parse(p, page, &s);
	assert_true(same(s.requests, 9 * 100.0 + 100 + 5));
	page_of(page, size, 1000, -1, 110);
	parse(p, page, &s);
	assert_true(same(s.requests, 1000 * 110.0 + 100)); /* s3 counts from its restart on, past the growth */
	page_of(page, size, 1000, -1, 120);
	parse(p, page, &s);
	assert_true(same(s.requests, 1000 * 120.0 + 100)); /* and on the page after the growth */
	cn_promtext_free(p);

	/* 300 remembered: the other 700 are summed as read, so s500's restart makes the sum fall by its 95 */
	p = parser(300);
	page_of(page, size, 1000, -1, 100);
	parse(p, page, &s);
	page_of(page, size, 1000, 500, 110);
	parse(p, page, &s);
	assert_true(same(s.requests, 999 * 110.0 + 5));
	cn_promtext_free(p);
	free(page);
}

/* What a scrape reader does: a parser cloned from a template for each page, the tracker kept between pages. The
 * clones count resets as one parser does, and keep their selectors when the template is freed first. */
static void test_clone_per_page(void **state)
{
	(void)state;
	struct cn_err err = { 0 };
	struct cn_promtext *tmpl = parser(0);
	struct cn_promtrack *tr = cn_promtrack_new(64);
	assert_non_null(tr);
	const char *pages[] = { PAGE2(100, 1, 1000, 10, 90, 100), PAGE2(5, 0, 1010, 11, 4, 5),
				PAGE2(8, 1, 1020, 11, 7, 8) };
	const double want[] = { 1100, 1115, 1128 }, want_inf[] = { 100, 105, 108 };
	for (int i = 0; i < 3; i++) {
		struct cn_promtext *p = cn_promtext_clone(tmpl, tr, &err);
		assert_non_null(p);
		if (i == 2) {
			cn_promtext_free(tmpl); /* the last clone outlives its template */
			tmpl = NULL;
		}
		struct cn_sample s;
		parse(p, pages[i], &s);
		assert_true(same(s.requests, want[i]));
		assert_true(same(s.latency.count[s.latency.nbuckets - 1], want_inf[i]));
		cn_promtext_free(p);
	}
	/* without the tracker, a clone sums as read */
	tmpl = parser(0);
	struct cn_promtext *p = cn_promtext_clone(tmpl, NULL, &err);
	struct cn_sample s;
	parse(p, pages[1], &s);
	assert_true(same(s.requests, 1015));
	cn_promtext_free(p);
	cn_promtext_free(tmpl);
	cn_promtrack_free(tr);
}

/* Two parsers of one page sharing one tracker, as the loop's reader and the SLA observer's are. */
struct two {
	struct cn_promtext *tmpl, *a, *b;
	struct cn_promtrack *tr;
};

static struct two two_readers(void)
{
	struct cn_err err = { 0 };
	struct two r = { .tmpl = parser(0), .tr = cn_promtrack_new(64) };
	assert_non_null(r.tr);
	r.a = cn_promtext_clone(r.tmpl, r.tr, &err);
	r.b = cn_promtext_clone(r.tmpl, r.tr, &err);
	assert_non_null(r.a);
	assert_non_null(r.b);
	return r;
}

static void two_free(struct two *r)
{
	cn_promtext_free(r->a);
	cn_promtext_free(r->b);
	cn_promtext_free(r->tmpl);
	cn_promtrack_free(r->tr);
}

/* Two parsers share one tracker (the loop's and the SLA observer's readers of one page). Pages one after the other
 * count as one parser's would. A page read while the other parser's went through is stale: it must not take the
 * other page's newer values for a reset (server a at 100 after 110 is an older page, not a restart), and it moves
 * nothing; the next page after it judges resets against the newer values again. */
static void test_shared_tracker(void **state)
{
	(void)state;
	struct two r = two_readers();
	struct cn_promtext *a = r.a, *b = r.b;
	struct cn_sample s;

	/* one after the other: a restart of server a seen by b, carried for a */
	parse(a, PAGE2(100, 1, 1000, 10, 90, 100), &s);
	assert_true(same(s.requests, 1100));
	parse(b, PAGE2(5, 0, 1010, 11, 4, 5), &s);
	assert_true(same(s.requests, 1115));
	parse(a, PAGE2(8, 1, 1020, 11, 7, 8), &s);
	assert_true(same(s.requests, 1128));
	assert_true(same(s.latency.count[s.latency.nbuckets - 1], 108));

	/* overlapped: a's page begins (older counters), b's newer page goes through, then a's ends */
	const char *older = PAGE2(10, 1, 1030, 11, 9, 10), *newer = PAGE2(20, 1, 1040, 12, 19, 20);
	cn_promtext_begin(a, ORIGIN);
	assert_int_equal(cn_promtext_feed(a, older, strlen(older)), 0);
	parse(b, newer, &s);
	assert_true(same(s.requests, 100 + 20 + 1040));
	cn_promtext_end(a, &s);
	assert_true(s.ok);
	/* the larger of each series: not 100 + 20 (offset) + 10 + ... as if a had restarted once more */
	assert_true(same(s.requests, 100 + 20 + 1040));
	assert_true(same(s.errors, 1 + 1 + 12)); /* a: 1 carried from before its restart and 1 since, b: 12 */
	assert_true(same(s.latency.count[s.latency.nbuckets - 1], 100 + 20));
	/* nothing moved: the next page judges against b's values */
	parse(a, PAGE2(25, 2, 1050, 12, 24, 25), &s);
	assert_true(same(s.requests, 100 + 25 + 1050));

	/* a real restart inside an overlap is taken at the next page */
	const char *restarted = PAGE2(3, 0, 1060, 12, 3, 3);
	cn_promtext_begin(a, ORIGIN);
	assert_int_equal(cn_promtext_feed(a, restarted, strlen(restarted)), 0);
	parse(b, PAGE2(30, 2, 1060, 12, 29, 30), &s);
	cn_promtext_end(a, &s);
	assert_true(same(s.requests, 100 + 30 + 1060)); /* stale: b's 30 stands */
	parse(a, PAGE2(4, 0, 1070, 12, 4, 4), &s);
	assert_true(same(s.requests, 100 + 30 + 4 + 1070)); /* a restarted after 30 */

	two_free(&r);
}

/* Between pages a tracker is packed: whole numbers as varints, anything else as its 8 bytes. Values of every kind
 * come back exact: a fractional _sum, one that resets (its offset fractional too), counts past 2^52 (2^53 + 2 is not
 * a varint's), and 0. */
static void test_packed_values(void **state)
{
	(void)state;
	struct cn_promtext *p = parser(64);
	struct cn_sample s;
	parse(p, "req_total 9007199254740994\nerr_total 0\nlat_bucket{le=\"+Inf\"} 3\nlat_sum 12.75\nlat_count 3\n", &s);
	parse(p, "req_total 9007199254741000\nerr_total 0\nlat_bucket{le=\"+Inf\"} 4\nlat_sum 0.1\nlat_count 4\n", &s);
	assert_true(s.requests == 9007199254741000.0);
	assert_true(s.errors == 0);
	assert_true(s.latency.sum == 12.75 + 0.1); /* the sum fell: a reset of that series, 12.75 carried */
	parse(p, "req_total 9007199254741002\nerr_total 1\nlat_bucket{le=\"+Inf\"} 5\nlat_sum 0.30000000000000004\n"
		 "lat_count 5\n", &s);
	assert_true(s.requests == 9007199254741002.0);
	assert_true(s.errors == 1);
	assert_true(s.latency.sum == 12.75 + 0.30000000000000004);
	cn_promtext_free(p);
}

/* Buckets are packed in order of their bounds, each against the one before: two servers whose histograms have
 * different bounds (so the process's le indices of one are not in the order of its bounds), one restarting, come back
 * with every bucket carried. */
static void test_packed_buckets_by_bound(void **state)
{
	(void)state;
	struct cn_promtext *p = parser(64);
	struct cn_sample s;
#define HPAGE(a1, a2, a3, b1, b2, b3, b4)                                                                              \
	"req_total 1\nerr_total 0\n"                                                                                   \
	"lat_bucket{s=\"a\",le=\"0.5\"} " #a1 "\nlat_bucket{s=\"a\",le=\"2\"} " #a2 "\n"                                \
	"lat_bucket{s=\"a\",le=\"+Inf\"} " #a3 "\nlat_bucket{s=\"b\",le=\"0.25\"} " #b1 "\n"                            \
	"lat_bucket{s=\"b\",le=\"1\"} " #b2 "\nlat_bucket{s=\"b\",le=\"2\"} " #b3 "\nlat_bucket{s=\"b\",le=\"+Inf\"} " #b4 "\n"
	parse(p, HPAGE(10, 20, 30, 5, 15, 25, 35), &s);
	parse(p, HPAGE(11, 21, 31, 1, 2, 3, 4), &s); /* b restarted: its last counts carried */
	const double want2[] = { 6, 11, 17, 49, 70 };
	assert_int_equal(s.latency.nbuckets, 5);
	for (int i = 0; i < 5; i++)
		assert_true(same(s.latency.count[i], want2[i]));
	parse(p, HPAGE(12, 22, 32, 2, 4, 6, 8), &s);
	const double want3[] = { 7, 12, 19, 53, 75 };
	for (int i = 0; i < 5; i++)
		assert_true(same(s.latency.count[i], want3[i]));
#undef HPAGE
	cn_promtext_free(p);
}

/* What a tracker holds between pages is what a daemon holds per slot it reads: a vLLM-like page (two counters and
 * three histograms of 15 buckets with their _sum and _count, 53 series, one set of labels) packs into a few hundred
 * bytes (336 with buckets against the bucket before, 400 without); the open table it was kept in took 1.3 kB. */
static void test_packed_size(void **state)
{
	(void)state;
	struct cn_err err = { 0 };
	struct cn_metric_names n;
	memset(&n, 0, sizeof n);
	snprintf(n.requests, sizeof n.requests, "req_total");
	snprintf(n.errors, sizeof n.errors, "err_total");
	snprintf(n.latency, sizeof n.latency, "lat");
	snprintf(n.ttft, sizeof n.ttft, "ttft");
	snprintf(n.itl, sizeof n.itl, "itl");
	struct cn_promtext *tmpl = cn_promtext_new(&n, NULL, &err);
	assert_non_null(tmpl);
	struct cn_promtrack *tr = cn_promtrack_new(4096);
	assert_non_null(tr);
	char page[16384];
	size_t bytes[3] = { 0 };
	for (int round = 0; round < 3; round++) {
		size_t off = 0;
		double reqs = 123456 + 1000 * round;
#define ADD(...) (off += (size_t)snprintf(page + off, sizeof page - off, __VA_ARGS__))
		ADD("req_total{model_name=\"m\"} %.0f\nerr_total{model_name=\"m\"} %d\n", reqs, 17 + round);
		const char *h[] = { "lat", "ttft", "itl" };
		for (int k = 0; k < 3; k++) {
			for (int b = 0; b < 14; b++)
				ADD("%s_bucket{model_name=\"m\",le=\"%g\"} %.0f\n", h[k], 0.001 * (1 << b), reqs * (b + 1) / 16);
			ADD("%s_bucket{model_name=\"m\",le=\"+Inf\"} %.0f\n%s_sum{model_name=\"m\"} %.3f\n"
			    "%s_count{model_name=\"m\"} %.0f\n", h[k], reqs, h[k], reqs * 0.123, h[k], reqs);
		}
#undef ADD
		assert_true(off < sizeof page);
		struct cn_promtext *p = cn_promtext_clone(tmpl, tr, &err);
		assert_non_null(p);
		struct cn_sample s;
		parse(p, page, &s);
		assert_true(same(s.requests, reqs));
		assert_true(same(s.ttft.count[s.ttft.nbuckets - 1], reqs));
		cn_promtext_free(p);
		bytes[round] = cn_promtrack_bytes(tr);
	}
	print_message("tracker of 53 series: %zu bytes\n", bytes[2]);
	assert_true(bytes[2] <= 384);
	assert_true(bytes[1] == bytes[2]); /* the blob keeps its allocation from page to page */
	cn_promtext_free(tmpl);
	cn_promtrack_free(tr);
}

/* A stale page that was read before a restart the other parser's page carried: it reports the tracker's value, not
 * its own pre-restart count plus the offset the restart made (1,100 + 1,000), so its reader's sums never fall. */
static void test_stale_page_before_a_reset(void **state)
{
	(void)state;
	struct two r = two_readers();
	struct cn_promtext *a = r.a, *b = r.b;
	struct cn_sample s;
	parse(a, PAGE2(1000, 1, 0, 0, 900, 1000), &s);
	assert_true(same(s.requests, 1000));
	const char *before = PAGE2(1100, 1, 0, 0, 990, 1100); /* read by a; then server a restarts */
	cn_promtext_begin(a, ORIGIN);
	assert_int_equal(cn_promtext_feed(a, before, strlen(before)), 0);
	parse(b, PAGE2(5, 0, 0, 0, 5, 5), &s);
	assert_true(same(s.requests, 1005));
	cn_promtext_end(a, &s);
	assert_true(s.ok);
	assert_true(same(s.requests, 1005)); /* not 2,100 */
	assert_true(same(s.latency.count[s.latency.nbuckets - 1], 1005));
	parse(a, PAGE2(20, 1, 0, 0, 19, 20), &s);
	assert_true(same(s.requests, 1020)); /* a's sums: 1,000, 1,005, 1,020: never down */
	two_free(&r);
}

/* Staleness does not spread: a's page overlaps b's stale one but no page that went through, so it is fresh and
 * carries the restart it shows. (Counting stale pages as gone through made a's page stale too, and two readers
 * whose reads keep overlapping froze the tracker.) */
static void test_stale_does_not_spread(void **state)
{
	(void)state;
	struct two r = two_readers();
	struct cn_promtext *a = r.a, *b = r.b;
	struct cn_sample s;
	parse(a, PAGE2(100, 1, 1000, 10, 90, 100), &s);
	const char *b1 = PAGE2(105, 1, 1005, 10, 95, 105), *a1 = PAGE2(110, 1, 1010, 10, 99, 110),
		   *a2 = PAGE2(3, 0, 1020, 10, 3, 3);
	cn_promtext_begin(b, ORIGIN);                  /* b's page begins ... */
	assert_int_equal(cn_promtext_feed(b, b1, strlen(b1)), 0);
	parse(a, a1, &s);                              /* ... a's goes through ... */
	assert_true(same(s.requests, 1120));
	cn_promtext_begin(a, ORIGIN);                  /* ... a's next begins (server a has restarted) ... */
	assert_int_equal(cn_promtext_feed(a, a2, strlen(a2)), 0);
	cn_promtext_end(b, &s);                        /* ... b's ends stale ... */
	assert_true(same(s.requests, 1120));
	cn_promtext_end(a, &s);                        /* ... and a's is fresh: the restart is carried */
	assert_true(s.ok);
	assert_true(same(s.requests, 110 + 3 + 1020));
	parse(b, PAGE2(4, 0, 1030, 10, 4, 4), &s);      /* and b goes on from it */
	assert_true(same(s.requests, 110 + 4 + 1030));
	two_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_failed_page),
		cmocka_unit_test(test_core_delta),
		cmocka_unit_test(test_many_series),
		cmocka_unit_test(test_clone_per_page),
		cmocka_unit_test(test_shared_tracker),
		cmocka_unit_test(test_packed_values),
		cmocka_unit_test(test_stale_page_before_a_reset),
		cmocka_unit_test(test_stale_does_not_spread),
		cmocka_unit_test(test_packed_size),
		cmocka_unit_test(test_packed_buckets_by_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
