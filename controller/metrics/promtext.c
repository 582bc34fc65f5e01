/* A streaming parser of the Prometheus text exposition format (0.0.4): it sums the wanted counters and histograms
 * and skips every other line without storing it. Only wanted lines are checked closely: a bad number in a series
 * nobody asked for does not make the page unusable. */
#include "canary/promtext.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/zpack.h"
#include "metrics_int.h"

#define LINE_START 256 /* first size of the line buffers; they double up to the line limit */
#define MAX_LABELS 128
#define NUM_MAX 64
#define ORIGIN_MAX 128

enum want_kind { WANT_COUNTER, WANT_HISTOGRAM };
enum part { PART_COUNTER, PART_BUCKET, PART_SUM, PART_COUNT };

struct want {
	enum want_kind kind;
	bool active;             /* a selector was given */
	const struct cn_promsel *sel; /* shared by every parser given the same selector text (sel_get) */
	size_t name_len;
	/* sums for the current page */
	bool seen;
	double value;            /* counter: sum of matching samples */
	struct cn_histogram *h;  /* histogram: the page's buckets, 1 kB: made at the page's first bucket line and freed
				  * when the page ends, so the thousands of idle parsers of a large daemon hold none */
	bool have_sum, have_count;
	double sum, count;
	/* the previous bucket line, to check each series is cumulative as it streams by */
	bool have_last;
	uint64_t last_key;
	double last_le, last_count;
	double unit;             /* histogram: seconds per unit of its le and _sum (cn_promtext_unit_seconds) */
};

enum { W_REQUESTS, W_ERRORS, W_LATENCY, W_TTFT, W_ITL, W_GEN, W_PROMPT, W_N };

#define OVERFLOW_NAMES 64 /* distinct features beyond the breakdown's cap, counted for the "N more" note */

/* The per-feature breakdown of the page: generation tokens and the latency histogram's _count and _sum by the
 * value of the feature label; the first CN_MAX_FEATURES - 1 values by name, the rest summed as "other". */
struct features {
	int n;
	struct cn_feature f[CN_MAX_FEATURES];
	uint64_t over[OVERFLOW_NAMES];
	int nover;
};

/* The labels of the line being parsed: scratch of one parse_line, per thread (3 kB that thousands of parsers, one per
 * slot, need not each hold). Values point into the parser's vals, names into the per-thread namebuf. */
static _Thread_local const char *t_lnames[MAX_LABELS];
static _Thread_local const char *t_lvals[MAX_LABELS];
static _Thread_local size_t t_lname_len[MAX_LABELS];

/* A sample of a wanted series, held until the page ends: a tracker may be shared by parsers on other threads (the
 * loop's and the SLA observer's readers of one page), so a page's samples go through it at once, under its lock. */
struct tobs {
	uint64_t series;
	double le, v;
	double *target;          /* the page's sum it goes to */
	double *ftarget;         /* a feature's figure (feature_add), times fscale; NULL: none */
	double fscale;
	unsigned char k, part;
};

struct cn_promtext {
	size_t max_line, max_page;
	struct want w[W_N];
	char origin[ORIGIN_MAX];
	/* page state */
	bool failed;
	char why[CN_WHY_MAX];
	size_t page_bytes;
	unsigned long lineno;
	bool content;            /* a sample line was seen on this page */
	char *line;              /* a line split across fed chunks: line_cap bytes, grown up to max_line; like vals,
				  * made at a page's first split line and kept for the next page up to KEEP_LINE */
	size_t line_len;
	char *vals;              /* unescaped label values of the current line: vals_cap bytes, grown up to
				  * max_line + 1 (lines are short: a parser per slot and thousands of slots per
				  * daemon must not cost max_line each) */
	size_t line_cap, vals_cap;
	int nlabels;
	struct cn_promtrack *track;   /* NULL: no reset tracking (cn_promtext_track_resets, cn_promtext_clone) */
	struct tobs *obs;        /* with a tracker: the page's samples of wanted series, added at its end (apply) */
	size_t nobs, obs_cap;
	uint64_t applied_at_begin; /* the tracker's count of applied pages when this page began */
	bool own_track;          /* track is the parser's own (freed with it), not lent by the caller */
	char feat_label[CN_NAME_MAX]; /* "": no breakdown */
	struct features *feat;   /* the page's breakdown (1 kB): made at its first line with feat_label, kept (and
				  * cleared at the next page's begin) */
};

/* Per-series memory across pages (cn_promtext_track_resets): one entry per wanted series and part (and le, for
 * buckets). A value below the series' last one is a reset of that series alone: its last value joins the entry's
 * offset, so the sum over series never falls because one server restarted. A series missing from a page keeps
 * adding its last value (a server that left does not take its past requests with it).
 *
 * A daemon holds one tracker per slot it reads (two per rollout), for as long as the rollout runs, so between pages a
 * tracker is packed (track_store): its entries grouped by series (the labels without le, which a page's wanted
 * metrics mostly share), each a varint of want, part and le index and its values as varints when they are whole
 * numbers (counters and bucket counts are). A vLLM page's 51 wanted series take about 250 bytes so, where the open
 * table they were kept in took 1.3 kB: 26 MB of canaryd's heap at 10,000 rollouts. A page unpacks its tracker into
 * a table on the stack (struct ttab, track_load), goes through it and packs it again, all under the tracker's lock.
 * le bounds are named by their index in the process's table of bounds (les_*), which every tracker shares. */
#define META_LE_NONE 0xffffu              /* a counter, _sum or _count: no le */
#define META_LE(m) ((m) & 0xffffu)
#define META_K(m) (((m) >> 16) & 0x7u)
#define META_PART(m) (((m) >> 19) & 0x3u)
#define META_SEEN 0x200000u               /* seen on the current page */

/* A tracker's working form for one page: open addressing over parallel arrays. */
struct ttab {
	uint64_t *key;           /* [cap], 0: free; key, series, last and meta are one allocation */
	uint64_t *series;        /* [cap]: the labels' key the entry's key was made from (the packed form keeps it) */
	double *last;            /* [cap] */
	uint32_t *meta;          /* [cap]: le index, want, part, seen */
	double *offset;          /* [cap] once a series has reset, else NULL (all zero) */
	size_t cap, n, max;      /* cap: a power of two, doubled while n > 7/8 cap */
	void *stack;             /* the caller's buffer for TAB_STACK_CAP slots; key is on the heap when it is not this */
};

#define TAB_SLOT (3 * sizeof(uint64_t) + sizeof(uint32_t))
#define TAB_STACK_CAP 128 /* slots a page's table takes from the stack (3.5 kB): a vLLM page's 51 fit in 64 */

/* Trackers' locks, held while a page's samples go through its tracker (apply): parsers may share a tracker. Striped
 * by the tracker's address: a mutex is 40 bytes, a daemon holds two trackers a rollout (0.8 MB of mutexes at 10,000),
 * and a page holds its tracker's lock for a few microseconds and never two at once. */
#define TRACK_LOCKS 64
static pthread_mutex_t track_locks[TRACK_LOCKS] = { [0 ... TRACK_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER };

static pthread_mutex_t *track_mu(const struct cn_promtrack *tr)
{
	return &track_locks[((uintptr_t)tr * 0x9e3779b97f4a7c15ull) >> 58];
}
_Static_assert(TRACK_LOCKS == 1 << (64 - 58), "track_mu's shift picks one of TRACK_LOCKS");

struct cn_promtrack {
	unsigned char *z;        /* the packed entries (track_store); NULL while there are none */
	uint32_t zlen, zcap;
	uint32_t n;              /* entries */
	bool has_offset;         /* each entry carries its offset too (some series has reset) */
	uint64_t applied;        /* pages applied so far */
	size_t max;              /* entries at most; a series beyond is summed as read */
};

/* The process's le bounds, each once, named by a 16-bit index; append-only (bounds are few: the buckets of the
 * histograms of the metric presets in use), so an index once given stays valid: a tracker reads les_val[i] for an
 * index it was given, without the lock. */
#define LES_MAX 0xffffu                   /* distinct bounds; a bucket beyond is summed as read */
#define LES_HASH (1u << 17)               /* open addressing over indices + 1, 0: free; kept under half full */
static double les_val[LES_MAX];
static unsigned les_n; /* under les_mu */
static uint16_t les_hash[LES_HASH];
static pthread_mutex_t les_mu = PTHREAD_MUTEX_INITIALIZER;

/* The index of bound le, added if new; -1 when LES_MAX are named already. */
static int le_index(double le)
{
	uint64_t bits = 0;
	memcpy(&bits, &le, sizeof bits);
	uint64_t h = bits * 0x9e3779b97f4a7c15ull;
	unsigned i = (unsigned)(h >> 47) & (LES_HASH - 1);
	int found = -1;

	pthread_mutex_lock(&les_mu);
	for (; les_hash[i] != 0; i = (i + 1) & (LES_HASH - 1))
		if (memcmp(&les_val[les_hash[i] - 1], &le, sizeof le) == 0) {
			found = les_hash[i] - 1;
			break;
		}
	if (found < 0 && les_n < LES_MAX) {
		found = (int)les_n;
		les_val[found] = le;
		les_hash[i] = (uint16_t)(found + 1);
		les_n++;
	}
	pthread_mutex_unlock(&les_mu);
	return found;
}

_Static_assert(W_N <= 8, "a want index must fit META_K's 3 bits");

#define TRACK_CAP_MIN 64 /* the first table's slots: a page of a few dozen series fits */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

/* The table key of series (labels without le), want k, part, bucket le (0 for other parts); never 0. */
static uint64_t track_key(uint64_t series, int k, int part, double le)
{
	uint64_t le_bits = 0;
	memcpy(&le_bits, &le, sizeof le_bits);
	uint64_t key = mix(mix(mix(series, (uint64_t)k), (uint64_t)part), le_bits);
	return key ? key : 1;
}

/* The slot of key, or the free one where it goes. */
static size_t track_find(const struct ttab *tab, uint64_t key)
{
	size_t i = (size_t)key & (tab->cap - 1);
	while (tab->key[i] != 0 && tab->key[i] != key)
		i = (i + 1) & (tab->cap - 1);
	return i;
}

/* Makes the arrays for cap slots (zeroed) into tab, from the stack buffer when it is free and big enough; the old
 * ones stay in the caller's copy. Returns 0 or -1. */
static int tab_alloc(struct ttab *tab, size_t cap, bool stack_free)
{
	unsigned char *b;
	if (stack_free && tab->stack && cap <= TAB_STACK_CAP) {
		b = tab->stack;
		memset(b, 0, cap * TAB_SLOT);
	} else if (!(b = calloc(cap, TAB_SLOT))) {
		return -1;
	}
	tab->key = (uint64_t *)b;
	tab->series = (uint64_t *)(b + cap * sizeof(uint64_t));
	tab->last = (double *)(b + 2 * cap * sizeof(uint64_t));
	tab->meta = (uint32_t *)(b + 3 * cap * sizeof(uint64_t));
	tab->offset = NULL;
	tab->cap = cap;
	return 0;
}

static void tab_free(struct ttab *tab)
{
	if ((void *)tab->key != tab->stack)
		free(tab->key);
	free(tab->offset);
	tab->key = NULL;
	tab->offset = NULL;
}

void cn_promtrack_free(struct cn_promtrack *tr)
{
	if (!tr)
		return;
	free(tr->z);
	free(tr);
}

size_t cn_promtrack_bytes(struct cn_promtrack *tr)
{
	pthread_mutex_lock(track_mu(tr));
	size_t n = sizeof *tr + tr->zcap;
	pthread_mutex_unlock(track_mu(tr));
	return n;
}

/* Doubles the table: memory follows the series a page really has, not the most it may have. */
static int track_grow(struct ttab *tab)
{
	struct ttab n = *tab;
	if (tab_alloc(&n, tab->cap * 2, false) < 0)
		return -1;
	if (tab->offset && !(n.offset = calloc(n.cap, sizeof n.offset[0]))) {
		free(n.key);
		return -1;
	}
	for (size_t i = 0; i < tab->cap; i++) {
		if (tab->key[i] == 0)
			continue;
		size_t j = track_find(&n, tab->key[i]);
		n.key[j] = tab->key[i];
		n.series[j] = tab->series[i];
		n.last[j] = tab->last[i];
		n.meta[j] = tab->meta[i];
		if (tab->offset)
			n.offset[j] = tab->offset[i];
	}
	tab_free(tab);
	*tab = n;
	return 0;
}

/* An entry in packing order: by series, then want, part and le (heapsort: qsort has no argument for a comparator,
 * and a page of thousands of series must not cost n^2). */
struct pent {
	uint64_t series;
	uint32_t meta, slot;
};

/* (want, part) of a meta, as one number: a run's key (track_store) */
#define META_RUN(m) (((m) >> 16) & 0x1fu)

/* By series, then want and part, then (buckets) upper bound: a histogram's cumulative counts then rise from one
 * entry to the next, and each is packed against the one before. */
static bool pent_less(const struct pent *a, const struct pent *b)
{
	if (a->series != b->series)
		return a->series < b->series;
	if (META_RUN(a->meta) != META_RUN(b->meta))
		return META_RUN(a->meta) < META_RUN(b->meta);
	double la = META_LE(a->meta) == META_LE_NONE ? 0 : les_val[META_LE(a->meta)];
	double lb = META_LE(b->meta) == META_LE_NONE ? 0 : les_val[META_LE(b->meta)];
	return la < lb;
}

static void pent_sift(struct pent *e, size_t root, size_t n)
{
	for (size_t c; (c = 2 * root + 1) < n; root = c) {
		if (c + 1 < n && pent_less(&e[c], &e[c + 1]))
			c++;
		if (!pent_less(&e[root], &e[c]))
			return;
		struct pent t = e[root];
		e[root] = e[c];
		e[c] = t;
	}
}

static void pent_sort(struct pent *e, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		pent_sift(e, i, n);
	for (size_t i = n; i-- > 1;) {
		struct pent t = e[0];
		e[0] = e[i];
		e[i] = t;
		pent_sift(e, 0, i);
	}
}

/* Packs tab into tr: groups of entries with the same series, each a varint count of entries, the series' 8 bytes and
 * its runs of entries of one want and part (a histogram's buckets, or one counter, _sum or _count): a varint of part,
 * want and the run's length, then each entry's le index + 1 as a varint (buckets only), its last value (a bucket's
 * against the bucket before in the run: cumulative counts rise, so the step takes a byte or two) and its offset when
 * some entry has one. The blob keeps its allocation (rounded up) while the next fits: a tracker's size hardly changes
 * from page to page. Out of memory: tr keeps its last packing (a page behind: a value then only looks larger than
 * its last one, never like a reset). */
#define Z_ROUND 64
static void track_store(const struct ttab *tab, struct cn_promtrack *tr)
{
	struct pent ent_stack[TAB_STACK_CAP], *ent = tab->n <= TAB_STACK_CAP ? ent_stack : malloc(tab->n * sizeof *ent);
	/* a group's count and series, a run's header, at most, and an entry's le index and values */
	enum { ENTRY_BOUND = 10 + 8 + 10 + 3 + 2 * CN_ZNUM_MAX };
	unsigned char out_stack[TAB_STACK_CAP * ENTRY_BOUND];
	size_t bound = tab->n * ENTRY_BOUND;
	unsigned char *out = tab->n <= TAB_STACK_CAP ? out_stack : malloc(bound);
	if (!ent || !out)
		goto done;
	size_t n = 0;
	for (size_t i = 0; i < tab->cap; i++)
		if (tab->key[i] != 0)
			ent[n++] = (struct pent){ tab->series[i], tab->meta[i] & ~META_SEEN, (uint32_t)i };
	CN_BUG_ON(n != tab->n);
	pent_sort(ent, n);
	size_t len = 0;
	for (size_t g = 0; g < n;) {
		size_t e = g + 1;
		while (e < n && ent[e].series == ent[g].series)
			e++;
		len = cn_varint_put(out, len, e - g);
		memcpy(out + len, &ent[g].series, sizeof ent[g].series);
		len += sizeof ent[g].series;
		while (g < e) {
			uint32_t run = META_RUN(ent[g].meta);
			bool bucket = META_PART(ent[g].meta) == PART_BUCKET;
			size_t r = g + 1;
			while (bucket && r < e && META_RUN(ent[r].meta) == run)
				r++;
			len = cn_varint_put(out, len, (uint64_t)run | (uint64_t)(r - g) << 5);
			for (double prev = 0; g < r; g++) {
				double last = tab->last[ent[g].slot];
				if (bucket)
					len = cn_varint_put(out, len, META_LE(ent[g].meta) + 1u);
				len = cn_znum_put(out, len, prev, last);
				prev = bucket ? last : 0;
				if (tab->offset)
					len = cn_znum_put(out, len, 0, tab->offset[ent[g].slot]);
			}
		}
	}
	CN_BUG_ON(len > bound);
	if (len > tr->zcap || len + 4 * Z_ROUND < tr->zcap) {
		size_t cap = (len + Z_ROUND - 1) / Z_ROUND * Z_ROUND;
		unsigned char *z = realloc(tr->z, cap ? cap : Z_ROUND);
		if (!z)
			goto done;
		tr->z = z;
		tr->zcap = (uint32_t)(cap ? cap : Z_ROUND);
	}
	if (len)
		memcpy(tr->z, out, len);
	tr->zlen = (uint32_t)len;
	tr->n = (uint32_t)n;
	tr->has_offset = tab->offset != NULL;
done:
	if (ent != ent_stack)
		free(ent);
	if (out != out_stack)
		free(out);
}

/* Unpacks tr into tab, its arrays in stack (TAB_STACK_CAP slots) when they fit. Returns 0, or -1 when out of
 * memory. The packing is this process's own: one that does not read back is a bug. */
static int track_load(const struct cn_promtrack *tr, struct ttab *tab, void *stack)
{
	size_t cap = TRACK_CAP_MIN;
	while (8 * ((size_t)tr->n + 1) > 7 * cap)
		cap *= 2;
	tab->stack = stack;
	tab->n = 0;
	tab->max = tr->max;
	if (tab_alloc(tab, cap, true) < 0)
		return -1;
	if (tr->has_offset && !(tab->offset = calloc(cap, sizeof tab->offset[0]))) {
		tab_free(tab);
		return -1;
	}
	const unsigned char *b = tr->z;
	size_t at = 0, len = tr->zlen;
	while (at < len) {
		uint64_t count, series, hdr, lep1;
		CN_BUG_ON(cn_varint_get(b, len, &at, &count) < 0 || count == 0 || len - at < sizeof series);
		memcpy(&series, b + at, sizeof series);
		at += sizeof series;
		while (count > 0) {
			CN_BUG_ON(cn_varint_get(b, len, &at, &hdr) < 0 || (hdr >> 5) == 0 || (hdr >> 5) > count);
			unsigned run = (unsigned)(hdr & 0x1f), part = run >> 3, k = run & 7;
			bool bucket = part == PART_BUCKET;
			CN_BUG_ON(!bucket && (hdr >> 5) != 1);
			count -= hdr >> 5;
			double prev = 0;
			for (uint64_t j = 0; j < hdr >> 5; j++) {
				double last, offset = 0;
				unsigned lei = META_LE_NONE;
				if (bucket) {
					CN_BUG_ON(cn_varint_get(b, len, &at, &lep1) < 0 || lep1 == 0 || lep1 > LES_MAX);
					lei = (unsigned)lep1 - 1;
				}
				CN_BUG_ON(cn_znum_get(b, len, &at, prev, &last) < 0 ||
					  (tab->offset && cn_znum_get(b, len, &at, 0, &offset) < 0));
				prev = bucket ? last : 0;
				double le = lei == META_LE_NONE ? 0 : les_val[lei];
				uint64_t key = track_key(series, (int)k, (int)part, le);
				size_t i = track_find(tab, key);
				CN_BUG_ON(tab->key[i] != 0 || tab->n >= tr->n);
				tab->key[i] = key;
				tab->series[i] = series;
				tab->last[i] = last;
				tab->meta[i] = lei | k << 16 | part << 19;
				if (tab->offset)
					tab->offset[i] = offset;
				tab->n++;
			}
		}
	}
	CN_BUG_ON(tab->n != tr->n);
	return 0;
}

/* The value to add for sample v of series `key` (labels without le), want k, part, bucket le. A stale page (another
 * parser's page went through the tracker while this one was read: which of the two the server wrote last is not
 * known) changes nothing and adds the tracker's value for the series, not its own: a value below the last one is
 * not taken for a reset, and a reset the other page carried (its offset) is not added to this page's value from
 * before it (1,100 read, then the server restarts and the other page's 5 makes the offset 1,000: 2,100 where the
 * tracker has 1,005, and the next fresh page's 1,020 would make the sum fall). The tracker's value only grows, so no
 * reader's sums fall and none counts a reset that was not one. */
static double track(struct ttab *tr, uint64_t series, int k, int part, double le, double v, bool stale)
{
	if (!isfinite(v))
		return v;
	uint64_t key = track_key(series, k, part, le);
	size_t i = track_find(tr, key);
	if (stale) {
		if (tr->key[i] == 0)
			return v;
		tr->meta[i] |= META_SEEN;
		return tr->last[i] + (tr->offset ? tr->offset[i] : 0);
	}
	if (tr->key[i] == 0) {
		if (tr->n >= tr->max)
			return v;   /* full: this series is summed as read */
		unsigned lei = META_LE_NONE;
		if (part == PART_BUCKET) {
			int l = le_index(le);
			if (l < 0)
				return v; /* too many distinct bounds: summed as read, like a full table */
			lei = (unsigned)l;
		}
		if (8 * (tr->n + 1) > 7 * tr->cap) {
			if (track_grow(tr) < 0)
				return v; /* out of memory: summed as read, like a full table */
			i = track_find(tr, key);
		}
		tr->n++;
		tr->key[i] = key;
		tr->series[i] = series;
		tr->meta[i] = lei | (uint32_t)k << 16 | (uint32_t)part << 19;
	} else if (v < tr->last[i]) {
		if (!tr->offset && !(tr->offset = calloc(tr->cap, sizeof tr->offset[0])))
			return v; /* out of memory: this reset is not carried */
		tr->offset[i] += tr->last[i];
	}
	tr->last[i] = v;
	tr->meta[i] |= META_SEEN;
	return v + (tr->offset ? tr->offset[i] : 0);
}

struct cn_promtrack *cn_promtrack_new(size_t max_series)
{
	struct cn_promtrack *tr = calloc(1, sizeof *tr);
	if (!tr)
		return NULL;
	tr->max = max_series;
	return tr;
}

int cn_promtext_track_resets(struct cn_promtext *p, size_t max_series, struct cn_err *err)
{
	if (p->track || max_series == 0)
		return 0;
	if (!(p->track = cn_promtrack_new(max_series)))
		return cn_fail(err, CN_EINTERNAL, "out of memory tracking %zu metric series", max_series);
	p->own_track = true;
	return 0;
}

void cn_sample_reset(struct cn_sample *s)
{
	memset(s, 0, sizeof *s);
	s->ok = true;
	s->requests = NAN;
	s->errors = NAN;
	s->latency.sum = NAN;
	s->ttft.sum = NAN;
	s->itl.sum = NAN;
	s->gen_tokens = NAN;
	s->prompt_tokens = NAN;
	s->cost.per_hour = s->cost.replicas = s->cost.per_1k_tokens = NAN;
}

void cn_sample_fail(struct cn_sample *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->ok)
		return;
	s->ok = false;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof s->why, fmt, ap);
	va_end(ap);
	for (char *c = s->why; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
}

int cn_hist_slot(struct cn_histogram *h, double le)
{
	for (int i = 0; i < h->nbuckets; i++)
		if (h->le[i] == le)
			return i;
	if (h->nbuckets == CN_MAX_BUCKETS)
		return -1;
	h->le[h->nbuckets] = le;
	h->count[h->nbuckets] = 0;
	return h->nbuckets++;
}

int cn_hist_finish(struct cn_histogram *h, const char *name, char *why, size_t whylen)
{
	for (int i = 1; i < h->nbuckets; i++) {   /* insertion sort: at most CN_MAX_BUCKETS */
		double le = h->le[i], c = h->count[i];
		int j = i - 1;
		for (; j >= 0 && h->le[j] > le; j--) {
			h->le[j + 1] = h->le[j];
			h->count[j + 1] = h->count[j];
		}
		h->le[j + 1] = le;
		h->count[j + 1] = c;
	}
	if (h->nbuckets == 0)
		return 0;
	if (!isinf(h->le[h->nbuckets - 1]) || h->le[h->nbuckets - 1] < 0) {
		snprintf(why, whylen, "histogram '%s' has no le=\"+Inf\" bucket", name);
		return -1;
	}
	for (int i = 1; i < h->nbuckets; i++) {
		if (h->count[i] < h->count[i - 1]) {
			snprintf(why, whylen, "histogram '%s' is not cumulative: le=%g has %g, le=%g has %g", name,
				 h->le[i], h->count[i], h->le[i - 1], h->count[i - 1]);
			return -1;
		}
	}
	return 0;
}

static const char *const want_field[W_N] = { "requests", "errors", "latency", "ttft", "itl", "gen_tokens",
					     "prompt_tokens" };

static bool want_is_counter(int i)
{
	return i < W_LATENCY || i >= W_GEN;
}

/* The entry of feature `name` (a new one, or "other" once the table is full); NULL for an empty name. */
static struct cn_feature *feature_of(struct features *fs, const char *name)
{
	if (!name || !name[0])
		return NULL;
	for (int i = 0; i < fs->n; i++)
		if (strncmp(fs->f[i].name, name, sizeof fs->f[i].name - 1) == 0)
			return &fs->f[i];
	int named = CN_MAX_FEATURES - 1;
	if (fs->n < named) {
		struct cn_feature *f = &fs->f[fs->n++];
		snprintf(f->name, sizeof f->name, "%s", name);
		f->gen_tokens = f->requests = f->latency_sum = NAN;
		return f;
	}
	uint64_t h = 1469598103934665603ull;
	for (const char *c = name; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	bool seen = false;
	for (int i = 0; i < fs->nover && !seen; i++)
		seen = fs->over[i] == h;
	if (!seen && fs->nover < OVERFLOW_NAMES)
		fs->over[fs->nover++] = h;
	if (fs->n == named) {
		struct cn_feature *f = &fs->f[fs->n++];
		snprintf(f->name, sizeof f->name, "other");
		f->gen_tokens = f->requests = f->latency_sum = NAN;
	}
	return &fs->f[named];
}

static void feature_add(double *field, double v)
{
	*field = isnan(*field) ? v : *field + v;
}

double cn_promtext_unit_seconds(const char *name)
{
	static const struct {
		const char *suffix;
		double unit;
	} units[] = { { "_ms", 1e-3 }, { "_milliseconds", 1e-3 }, { "_us", 1e-6 }, { "_microseconds", 1e-6 } };
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		size_t k = strlen(units[i].suffix);
		if (n > k && strcmp(name + n - k, units[i].suffix) == 0)
			return units[i].unit;
	}
	return 1.0;
}

/* Label names of the line being parsed (the parse of one line runs within one call on one thread). */
static _Thread_local char namebuf[MAX_LABELS][CN_SELECTOR_MAX];

/* Compiled selectors, shared by text and counted: a daemon with thousands of rollouts on the same preset holds
 * each selector (about 10 kB with its regexes) once, not twice per rollout. Parsers live on several threads. */
struct sel_entry {
	struct sel_entry *next;
	struct cn_promsel sel; /* first: sel_put finds the entry from the selector */
	int refs;
	char text[];
};
static pthread_mutex_t sel_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sel_entry *sel_head;

static const struct cn_promsel *sel_get(const char *text, struct cn_err *err)
{
	pthread_mutex_lock(&sel_mu);
	for (struct sel_entry *e = sel_head; e; e = e->next)
		if (strcmp(e->text, text) == 0) {
			e->refs++;
			pthread_mutex_unlock(&sel_mu);
			return &e->sel;
		}
	size_t len = strlen(text);
	struct sel_entry *e = calloc(1, sizeof *e + len + 1);
	if (!e) {
		pthread_mutex_unlock(&sel_mu);
		cn_fail(err, CN_EINTERNAL, "out of memory compiling selector '%s'", text);
		return NULL;
	}
	if (cn_promsel_parse(text, &e->sel, err) < 0) {
		pthread_mutex_unlock(&sel_mu);
		cn_promsel_free(&e->sel);
		free(e);
		return NULL;
	}
	memcpy(e->text, text, len + 1);
	e->refs = 1;
	e->next = sel_head;
	sel_head = e;
	pthread_mutex_unlock(&sel_mu);
	return &e->sel;
}

static void sel_put(const struct cn_promsel *sel)
{
	if (!sel)
		return;
	pthread_mutex_lock(&sel_mu);
	for (struct sel_entry **pp = &sel_head; *pp; pp = &(*pp)->next) {
		struct sel_entry *e = *pp;
		if (&e->sel != sel)
			continue;
		if (--e->refs == 0) {
			*pp = e->next;
			cn_promsel_free(&e->sel);
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&sel_mu);
}

struct cn_promtext *cn_promtext_new(const struct cn_metric_names *names, const struct cn_promtext_limits *lim,
				    struct cn_err *err)
{
	struct cn_promtext *p = calloc(1, sizeof *p);
	const char *text[W_N] = { names->requests, names->errors, names->latency, names->ttft, names->itl,
				  names->gen_tokens, names->prompt_tokens };

	if (!p) {
		cn_fail(err, CN_EINTERNAL, "out of memory creating a metrics parser");
		goto out;
	}
	p->max_line = lim && lim->max_line ? lim->max_line : CN_PROMTEXT_MAX_LINE;
	p->max_page = lim && lim->max_page ? lim->max_page : CN_PROMTEXT_MAX_PAGE;
	for (int i = 0; i < W_N; i++) {
		struct want *w = &p->w[i];
		w->kind = want_is_counter(i) ? WANT_COUNTER : WANT_HISTOGRAM;
		w->unit = 1.0;
		if (text[i][0] == '\0')
			continue;
		if (!(w->sel = sel_get(text[i], err))) {
			cn_err_prefix(err, "metric name '%s'", want_field[i]);
			goto out;
		}
		if (w->sel->name[0] == '\0') {
			cn_fail(err, CN_EINPUT, "metric name '%s': selector '%s' has no metric name", want_field[i],
				text[i]);
			goto out;
		}
		w->name_len = strlen(w->sel->name);
		w->active = true;
		w->unit = cn_promtext_unit_seconds(w->sel->name);
	}
	snprintf(p->feat_label, sizeof p->feat_label, "%s", names->feature_label);
	cn_promtext_begin(p, "");
	return p;
out:
	cn_promtext_free(p);
	return NULL;
}

struct cn_promtext *cn_promtext_clone(const struct cn_promtext *t, struct cn_promtrack *track, struct cn_err *err)
{
	struct cn_promtext *p = calloc(1, sizeof *p);

	if (!p) {
		cn_fail(err, CN_EINTERNAL, "out of memory creating a metrics parser");
		return NULL;
	}
	p->max_line = t->max_line;
	p->max_page = t->max_page;
	pthread_mutex_lock(&sel_mu);
	for (int i = 0; i < W_N; i++) {
		struct want *w = &p->w[i];
		const struct want *tw = &t->w[i];
		w->kind = tw->kind;
		w->unit = tw->unit;
		w->active = tw->active;
		w->name_len = tw->name_len;
		if ((w->sel = tw->sel))
			/* the template holds a reference, so the entry is there: one more for this parser */
			for (struct sel_entry *e = sel_head; e; e = e->next)
				if (&e->sel == w->sel) {
					e->refs++;
					break;
				}
	}
	pthread_mutex_unlock(&sel_mu);
	memcpy(p->feat_label, t->feat_label, sizeof p->feat_label);
	p->track = track;
	cn_promtext_begin(p, "");
	return p;
}

void cn_promtext_free(struct cn_promtext *p)
{
	if (!p)
		return;
	for (int i = 0; i < W_N; i++) {
		sel_put(p->w[i].sel);
		free(p->w[i].h);
	}
	if (p->own_track)
		cn_promtrack_free(p->track);
	free(p->feat);
	free(p->obs);
	free(p->line);
	free(p->vals);
	free(p);
}

void cn_promtext_begin(struct cn_promtext *p, const char *origin)
{
	snprintf(p->origin, sizeof p->origin, "%s", origin ? origin : "");
	p->failed = false;
	p->why[0] = '\0';
	p->page_bytes = 0;
	p->lineno = 0;
	p->content = false;
	p->line_len = 0;
	p->nobs = 0;
	if (p->track) {
		pthread_mutex_lock(track_mu(p->track));
		p->applied_at_begin = p->track->applied;
		pthread_mutex_unlock(track_mu(p->track));
	}
	if (p->feat) /* kept from the last page (cn_promtext_end): its entries go out whole with the sample */
		memset(p->feat, 0, sizeof *p->feat);
	for (int i = 0; i < W_N; i++) {
		struct want *w = &p->w[i];
		w->seen = false;
		w->value = 0;
		if (w->h) /* kept from the last page, or one that did not end (a read cancelled): empty is as none */
			memset(w->h, 0, sizeof *w->h);
		w->have_sum = w->have_count = false;
		w->sum = w->count = 0;
		w->have_last = false;
	}
}

bool cn_promtext_failed(const struct cn_promtext *p)
{
	return p->failed;
}

static int fail(struct cn_promtext *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct cn_promtext *p, const char *fmt, ...)
{
	char msg[CN_WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(p->why, sizeof p->why, "metrics page %s %s", p->origin, msg);
	for (char *c = p->why; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	p->failed = true;
	return -1;
}

/* Shows at most 32 bytes of s in an error, with non-printing bytes as '?'. */
static const char *shown(const char *s, size_t n, char *buf)
{
	size_t i;

	if (n > 32)
		n = 32;
	for (i = 0; i < n; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* Copies the n-byte number token s into buf as a C string for strtod/strtoll and clears errno; -1 when it is empty
 * or longer than any number we take. */
static int number_token(const char *s, size_t n, char buf[NUM_MAX])
{
	if (n == 0 || n >= NUM_MAX)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	return 0;
}

static int parse_double(const char *s, size_t n, double *out)
{
	char buf[NUM_MAX];
	char *end;

	if (number_token(s, n, buf) < 0)
		return -1;
	*out = strtod(buf, &end);
	if (end != buf + n || (errno == ERANGE && *out != 0 && !isinf(*out)))
		return -1;
	return 0;
}

static int parse_int64(const char *s, size_t n)
{
	char buf[NUM_MAX];
	char *end;

	if (number_token(s, n, buf) < 0)
		return -1;
	(void)strtoll(buf, &end, 10);
	return (end != buf + n || errno) ? -1 : 0;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
}

/* Which part of want w (if any) a sample line named s (n bytes) is. */
static int which_part(const struct want *w, const char *s, size_t n)
{
	if (!w->active || n < w->name_len || memcmp(s, w->sel->name, w->name_len) != 0)
		return -1;
	if (w->kind == WANT_COUNTER)
		return n == w->name_len ? PART_COUNTER : -1;
	s += w->name_len;
	n -= w->name_len;
	if (n == 7 && memcmp(s, "_bucket", 7) == 0)
		return PART_BUCKET;
	if (n == 4 && memcmp(s, "_sum", 4) == 0)
		return PART_SUM;
	if (n == 6 && memcmp(s, "_count", 6) == 0)
		return PART_COUNT;
	return -1;
}

/* Makes *buf hold at least need bytes (need <= the parser's limit, checked by the caller). Returns 0 or -1. */
static int grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : LINE_START;
	while (n < need)
		n *= 2;
	char *nb = realloc(*buf, n);
	if (!nb)
		return -1;
	*buf = nb;
	*cap = n;
	return 0;
}

/* Parses `{name="value",...}` starting at s[*i] == '{'; values are unescaped into p->vals. */
static int parse_labels(struct cn_promtext *p, const char *s, size_t n, size_t *i)
{
	size_t k = *i + 1, v = 0;
	char tmp[40];

	if (grow(&p->vals, &p->vals_cap, n + 1) < 0)
		return fail(p, "line %lu: out of memory holding label values of %zu bytes", p->lineno, n);
	p->nlabels = 0;
	for (;;) {
		size_t start;
		while (k < n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (k < n && s[k] == '}')
			break;
		start = k;
		while (k < n && is_name_char(s[k]))
			k++;
		if (k == start)
			return fail(p, "line %lu: expected a label name at '%s'", p->lineno,
				    shown(s + k, n - k, tmp));
		if (p->nlabels == MAX_LABELS)
			return fail(p, "line %lu: more than %d labels", p->lineno, MAX_LABELS);
		if (k - start >= CN_SELECTOR_MAX)
			return fail(p, "line %lu: label name '%s' too long", p->lineno,
				    shown(s + start, k - start, tmp));
		memcpy(namebuf[p->nlabels], s + start, k - start);
		namebuf[p->nlabels][k - start] = '\0';
		t_lname_len[p->nlabels] = k - start;
		while (k < n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (k >= n || s[k] != '=')
			return fail(p, "line %lu: expected '=' after label '%s'", p->lineno, namebuf[p->nlabels]);
		k++;
		while (k < n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (k >= n || s[k] != '"')
			return fail(p, "line %lu: expected '\"' after label '%s='", p->lineno, namebuf[p->nlabels]);
		k++;
		t_lvals[p->nlabels] = p->vals + v;
		for (; k < n && s[k] != '"'; k++) {
			char c = s[k];
			if (c == '\\' && k + 1 < n) {
				k++;
				c = s[k] == 'n' ? '\n' : s[k];   /* \\ \" \n; others keep the escaped byte */
			}
			p->vals[v++] = c;
		}
		if (k >= n)
			return fail(p, "line %lu: unterminated value of label '%s'", p->lineno,
				    namebuf[p->nlabels]);
		p->vals[v++] = '\0';
		t_lnames[p->nlabels] = namebuf[p->nlabels];
		p->nlabels++;
		k++;
		while (k < n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (k < n && s[k] == ',') {
			k++;
			continue;
		}
		if (k < n && s[k] == '}')
			break;
		return fail(p, "line %lu: expected ',' or '}' at '%s'", p->lineno, shown(s + k, n - k, tmp));
	}
	*i = k + 1;
	return 0;
}

/* A key for the label set without le, to tell one series' buckets from the next. FNV-1a. */
static uint64_t series_key(const struct cn_promtext *p)
{
	uint64_t h = 1469598103934665603ull;

	for (int i = 0; i < p->nlabels; i++) {
		if (strcmp(t_lnames[i], "le") == 0)
			continue;
		for (const char *c = t_lnames[i]; *c; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull;
		for (const char *c = t_lvals[i]; *c; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ull;
		h = (h ^ 0xfe) * 1099511628211ull;
	}
	return h;
}

/* Adds sample v of a wanted series (key series, want k, part, bucket le) to *target, and v x fscale to a feature's
 * *ftarget: at once without a tracker, else when the page ends (apply). Beyond twice the tracker's series, or out
 * of memory, a sample is summed as read (a full tracker does the same). */
static void add_sample(struct cn_promtext *p, uint64_t series, int k, int part, double le, double v, double *target,
		       double *ftarget, double fscale)
{
	if (p->track && p->nobs < 2 * p->track->max) {
		if (p->nobs == p->obs_cap) {
			size_t cap = p->obs_cap ? 2 * p->obs_cap : 64;
			struct tobs *n = realloc(p->obs, cap * sizeof *n);
			if (n) {
				p->obs = n;
				p->obs_cap = cap;
			}
		}
		if (p->nobs < p->obs_cap) {
			p->obs[p->nobs++] = (struct tobs){ .series = series, .le = le, .v = v, .target = target,
							   .ftarget = ftarget, .fscale = fscale,
							   .k = (unsigned char)k, .part = (unsigned char)part };
			return;
		}
	}
	*target += v;
	if (ftarget)
		feature_add(ftarget, v * fscale);
}

static int add_bucket(struct cn_promtext *p, struct want *w, double v)
{
	const char *le_text = NULL;
	double le;
	int slot;
	uint64_t key;
	char tmp[40];

	for (int i = 0; i < p->nlabels; i++)
		if (strcmp(t_lnames[i], "le") == 0)
			le_text = t_lvals[i];
	if (!le_text)
		return fail(p, "line %lu: '%s_bucket' has no 'le' label", p->lineno, w->sel->name);
	if (parse_double(le_text, strlen(le_text), &le) < 0 || isnan(le))
		return fail(p, "line %lu: bad le '%s'", p->lineno, shown(le_text, strlen(le_text), tmp));
	le *= w->unit; /* the core's bounds are seconds */
	key = series_key(p);
	if (w->have_last && key == w->last_key && le > w->last_le && v < w->last_count)
		return fail(p, "line %lu: histogram '%s' is not cumulative: le=%g has %g, le=%g has %g", p->lineno,
			    w->sel->name, le, v, w->last_le, w->last_count);
	w->have_last = true;
	w->last_key = key;
	w->last_le = le;
	w->last_count = v;
	if (!w->h && !(w->h = calloc(1, sizeof *w->h)))
		return fail(p, "line %lu: out of memory for histogram '%s'", p->lineno, w->sel->name);
	slot = cn_hist_slot(w->h, le);
	if (slot < 0)
		return fail(p, "line %lu: histogram '%s' has more than %d distinct le bounds", p->lineno,
			    w->sel->name, CN_MAX_BUCKETS);
	add_sample(p, key, (int)(w - p->w), PART_BUCKET, le, v, &w->h->count[slot], NULL, 1);
	return 0;
}

static int parse_line(struct cn_promtext *p, const char *s, size_t n)
{
	size_t i = 0, name_len, tok;
	int parts[W_N];
	bool any = false;
	double v;
	char tmp[40];

	if (n > 0 && s[n - 1] == '\r')
		n--;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i == n || s[i] == '#')
		return 0;
	s += i;
	n -= i;
	for (name_len = 0; name_len < n && is_name_char(s[name_len]); name_len++)
		;
	if (!p->content && (name_len == 0 || (s[0] >= '0' && s[0] <= '9')))
		/* the first sample line does not start with a metric name: an HTML error page, JSON, a login form */
		return fail(p, "is not Prometheus text: line %lu starts '%s'%s; check the metrics URL", p->lineno,
			    shown(s, n, tmp), s[0] == '<' ? " (HTML?)" : s[0] == '{' || s[0] == '[' ? " (JSON?)" : "");
	p->content = true;
	for (int k = 0; k < W_N; k++) {
		parts[k] = which_part(&p->w[k], s, name_len);
		any |= parts[k] >= 0;
	}
	if (!any)
		return 0;     /* the common case: a series nobody asked for */

	i = name_len;
	p->nlabels = 0;
	if (i < n && s[i] == '{' && parse_labels(p, s, n, &i) < 0)
		return -1;
	if (i < n && s[i] != ' ' && s[i] != '\t')
		return fail(p, "line %lu: unexpected '%s' after the series name", p->lineno,
			    shown(s + i, n - i, tmp));
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	for (tok = i; i < n && s[i] != ' ' && s[i] != '\t'; i++)
		;
	if (i == tok)
		return fail(p, "line %lu: '%s' has no value", p->lineno, shown(s, name_len, tmp));
	if (parse_double(s + tok, i - tok, &v) < 0)
		return fail(p, "line %lu: bad number '%s'", p->lineno, shown(s + tok, i - tok, tmp));
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i < n) {   /* an optional timestamp in milliseconds: ignored, the reader stamps its own time */
		for (tok = i; i < n && s[i] != ' ' && s[i] != '\t'; i++)
			;
		if (parse_int64(s + tok, i - tok) < 0)
			return fail(p, "line %lu: bad timestamp '%s'", p->lineno, shown(s + tok, i - tok, tmp));
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i < n)
			return fail(p, "line %lu: unexpected '%s' after the timestamp", p->lineno,
				    shown(s + i, n - i, tmp));
	}

	for (int k = 0; k < W_N; k++) {
		struct want *w = &p->w[k];
		if (parts[k] < 0 || !cn_promsel_match(w->sel, t_lnames, t_lvals, p->nlabels))
			continue;
		w->seen = true;
		uint64_t series = p->track && parts[k] != PART_BUCKET ? series_key(p) : 0;
		/* the breakdown: generation tokens and the latency's _count and _sum of a labelled series */
		struct cn_feature *f = NULL;
		if (p->feat_label[0] && (k == W_GEN || (k == W_LATENCY && parts[k] != PART_BUCKET)))
			for (int l = 0; l < p->nlabels && !f; l++) {
				if (strcmp(t_lnames[l], p->feat_label) != 0)
					continue;
				if (!p->feat && !(p->feat = calloc(1, sizeof *p->feat)))
					return fail(p, "line %lu: out of memory for the '%s' breakdown", p->lineno,
						    p->feat_label);
				f = feature_of(p->feat, t_lvals[l]);
			}
		switch (parts[k]) {
		case PART_COUNTER:
			add_sample(p, series, k, PART_COUNTER, 0, v, &w->value, f ? &f->gen_tokens : NULL, 1);
			break;
		case PART_BUCKET:
			if (add_bucket(p, w, v) < 0)
				return -1;
			break;
		case PART_SUM:
			w->have_sum = true;
			add_sample(p, series, k, PART_SUM, 0, v, &w->sum, f ? &f->latency_sum : NULL, w->unit);
			break;
		default:
			w->have_count = true;
			add_sample(p, series, k, PART_COUNT, 0, v, &w->count, f ? &f->requests : NULL, 1);
		}
	}
	return 0;
}

int cn_promtext_feed(struct cn_promtext *p, const char *data, size_t len)
{
	if (p->failed)
		return -1;
	if (len > p->max_page - p->page_bytes)
		return fail(p, "is larger than %zu bytes (raise the page limit or expose fewer series)", p->max_page);
	p->page_bytes += len;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t seg = nl ? (size_t)(nl - data) : len;
		int rc;

		if (p->line_len + seg > p->max_line)
			return fail(p, "line %lu: longer than %zu bytes", p->lineno + 1, p->max_line);
		if ((!nl || p->line_len > 0) && grow(&p->line, &p->line_cap, p->line_len + seg) < 0)
			return fail(p, "line %lu: out of memory holding a line of %zu bytes", p->lineno + 1,
				    p->line_len + seg);
		if (!nl) {
			memcpy(p->line + p->line_len, data, seg);
			p->line_len += seg;
			return 0;
		}
		p->lineno++;
		if (p->line_len > 0) {
			memcpy(p->line + p->line_len, data, seg);
			rc = parse_line(p, p->line, p->line_len + seg);
			p->line_len = 0;
		} else {
			rc = parse_line(p, data, seg);
		}
		if (rc < 0)
			return -1;
		data += seg + 1;
		len -= seg + 1;
	}
	return 0;
}

/* Series that were on earlier pages but not on this one keep adding what they had counted (if their metric is still
 * on the page at all: a metric that vanished entirely is missing, as without tracking). */
static void add_vanished(struct cn_promtext *p, const struct ttab *tr)
{

	for (size_t i = 0; i < tr->cap; i++) {
		unsigned m = tr->meta[i];
		struct want *w;
		int slot;
		if (tr->key[i] == 0 || (m & META_SEEN) || META_K(m) >= W_N)
			continue;
		w = &p->w[META_K(m)];
		if (!w->seen)
			continue;
		double v = tr->last[i] + (tr->offset ? tr->offset[i] : 0);
		switch (META_PART(m)) {
		case PART_COUNTER:
			w->value += v;
			break;
		case PART_BUCKET:
			if (!w->h && !(w->h = calloc(1, sizeof *w->h))) {
				fail(p, "out of memory for histogram '%s'", w->sel->name);
				return;
			}
			slot = META_LE(m) != META_LE_NONE ? cn_hist_slot(w->h, les_val[META_LE(m)]) : -1;
			if (slot >= 0)
				w->h->count[slot] += v;
			break;
		case PART_SUM:
			if (w->have_sum)
				w->sum += v;
			break;
		default:
			if (w->have_count)
				w->count += v;
		}
	}
}

/* The page's samples through the tracker, and the series it no longer shows, under the tracker's lock: another
 * parser's page never interleaves with this one's "seen on this page". A page during which another one was applied
 * is stale (track). */
static void apply(struct cn_promtext *p)
{
	struct cn_promtrack *tr = p->track;
	uint64_t stack[TAB_STACK_CAP * TAB_SLOT / sizeof(uint64_t)];
	struct ttab tab = { 0 };

	pthread_mutex_lock(track_mu(tr));
	bool stale = tr->applied != p->applied_at_begin;
	bool loaded = track_load(tr, &tab, stack) == 0;
	for (size_t i = 0; i < p->nobs; i++) {
		const struct tobs *o = &p->obs[i];
		/* out of memory for the table: the page's samples are summed as read, like a full table's */
		double tv = loaded ? track(&tab, o->series, o->k, o->part, o->le, o->v, stale) : o->v;
		*o->target += tv;
		if (o->ftarget)
			feature_add(o->ftarget, tv * o->fscale);
	}
	if (loaded) {
		add_vanished(p, &tab);
		if (!stale)
			track_store(&tab, tr);
		tab_free(&tab);
	}
	/* a stale page moved nothing: counted, it would make the pages that overlap its end stale too, and two readers
	 * whose reads keep overlapping would leave the tracker frozen (no reset carried, no new series) */
	if (!stale)
		tr->applied++;
	pthread_mutex_unlock(track_mu(tr));
}

static void end_page(struct cn_promtext *p, struct cn_sample *out)
{
	static const struct cn_histogram none; /* a histogram seen only by its _sum or _count */
	struct cn_histogram *hist[W_N] = { NULL, NULL, &out->latency, &out->ttft, &out->itl, NULL, NULL };
	double *counter[W_N] = { &out->requests, &out->errors, NULL, NULL, NULL, &out->gen_tokens, &out->prompt_tokens };
	struct want *lat = &p->w[W_LATENCY];

	cn_sample_reset(out);
	if (!p->failed && p->line_len > 0)
		fail(p, "line %lu: ends without a newline (truncated page?)", p->lineno + 1);
	if (!p->failed && p->page_bytes == 0)
		fail(p, "is empty");
	if (p->failed) {
		cn_sample_fail(out, "%s", p->why);
		return;
	}
	if (p->track)
		apply(p);
	if (p->failed) { /* (out of memory) */
		cn_sample_fail(out, "%s", p->why);
		return;
	}
	for (int k = 0; k < W_N; k++) {
		struct want *w = &p->w[k];
		char why[CN_WHY_MAX];
		if (!w->seen)
			continue;
		if (w->kind == WANT_COUNTER) {
			*counter[k] = w->value;
			continue;
		}
		*hist[k] = w->h ? *w->h : none;
		hist[k]->sum = w->have_sum ? w->sum * w->unit : NAN;
		if (cn_hist_finish(hist[k], w->sel->name, why, sizeof why) < 0) {
			cn_sample_reset(out);
			cn_sample_fail(out, "metrics page %s: %s", p->origin, why);
			return;
		}
	}
	/* vLLM and others may expose no request counter that a selector can name, while the latency histogram counts
	 * every finished request: fall back to its _count (or its +Inf bucket) when requests matched nothing. */
	if (!p->w[W_REQUESTS].seen && lat->seen) {
		if (lat->have_count)
			out->requests = lat->count;
		else if (out->latency.nbuckets > 0)
			out->requests = out->latency.count[out->latency.nbuckets - 1];
	}
	/* Client libraries create a labelled series at its first increment, so a server that never failed exposes no
	 * `status="5xx"` series at all: with requests known, no matching error series means no errors yet. */
	if (p->w[W_ERRORS].active && !p->w[W_ERRORS].seen && !isnan(out->requests))
		out->errors = 0;
	if (p->feat) {
		out->nfeatures = p->feat->n;
		memcpy(out->features, p->feat->f, sizeof p->feat->f);
		out->features_dropped = p->feat->nover;
	}
}

/* Page buffers an idle parser keeps for its next page, each at most this big: a daemon reuses a few dozen parsers
 * for thousands of pages a second (metrics_scrape.c's pool), and a buffer made and freed for every page (a line, its
 * label values, three 1 kB histograms, the page's samples) left holes among the long-lived blobs of its heap that
 * the next blobs did not fit. A page with longer lines or more series than these gives its bigger buffers back. */
#define KEEP_LINE 4096
#define KEEP_OBS 256

void cn_promtext_end(struct cn_promtext *p, struct cn_sample *out)
{
	end_page(p, out);
	if (p->obs_cap > KEEP_OBS) {
		free(p->obs);
		p->obs = NULL;
		p->obs_cap = 0;
	}
	p->nobs = 0;
	if (p->line_cap > KEEP_LINE) {
		free(p->line);
		p->line = NULL;
		p->line_cap = 0;
	}
	if (p->vals_cap > KEEP_LINE) {
		free(p->vals);
		p->vals = NULL;
		p->vals_cap = 0;
	}
	p->line_len = 0;
}

void cn_promtext_retrack(struct cn_promtext *p, struct cn_promtrack *track)
{
	if (p->own_track)
		cn_promtrack_free(p->track);
	p->own_track = false;
	p->track = track;
}

size_t cn_promtext_bytes(const struct cn_promtext *p)
{
	size_t n = sizeof *p + p->line_cap + p->vals_cap + p->obs_cap * sizeof *p->obs + (p->feat ? sizeof *p->feat : 0);
	for (int i = 0; i < W_N; i++)
		n += p->w[i].h ? sizeof *p->w[i].h : 0;
	return n;
}

void cn_promtext_parse(struct cn_promtext *p, const char *origin, const char *page, size_t len, struct cn_sample *out)
{
	cn_promtext_begin(p, origin);
	cn_promtext_feed(p, page, len);
	cn_promtext_end(p, out);
}
