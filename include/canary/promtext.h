/* Prometheus series selectors and a streaming parser of the text exposition format (pure: no I/O, no clock).
 * The parser keeps only the sums it was asked for, so a page with millions of series costs constant memory. */
#ifndef CANARY_PROMTEXT_H
#define CANARY_PROMTEXT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/service-t.h"

#define CN_PROMSEL_MAX_MATCHERS 16
#define CN_PROMTEXT_MAX_LINE (64u * 1024u)           /* default longest line, bytes */
#define CN_PROMTEXT_MAX_PAGE (32u * 1024u * 1024u)   /* default largest page, bytes */

enum cn_match_op { CN_MATCH_EQ, CN_MATCH_NE, CN_MATCH_RE, CN_MATCH_NRE };

struct cn_matcher {
	char label[CN_SELECTOR_MAX];
	char value[CN_SELECTOR_MAX];  /* unescaped */
	enum cn_match_op op;
	bool compiled;                /* re holds the anchored regex (=~, !~) */
	regex_t re;
};

/* A parsed selector: `name{label="v", label=~"re", ...}`. The name may be empty (`{slot="blue"}`). Regexes are
 * POSIX extended, anchored at both ends as PromQL anchors them. */
struct cn_promsel {
	char name[CN_SELECTOR_MAX];
	int nmatchers;
	struct cn_matcher m[CN_PROMSEL_MAX_MATCHERS];
};

/* Parses text into *out and compiles its regexes; the caller releases out with cn_promsel_free. "" gives an empty
 * selector (no name, no matchers). Returns 0, or -CN_EINPUT with err naming the selector and the column. */
int cn_promsel_parse(const char *text, struct cn_promsel *out, struct cn_err *err);

/* Frees the compiled regexes of sel (accepts a zeroed or already freed selector). */
void cn_promsel_free(struct cn_promsel *sel);

/* True if a series with these labels (parallel arrays of NUL-terminated names and values) matches sel's
 * matchers; a label that is absent matches as "", as in PromQL. The name is not compared. */
bool cn_promsel_match(const struct cn_promsel *sel, const char *const *names, const char *const *values, int n);

/* Writes sel as PromQL into buf: its name followed by suffix (e.g. "_bucket"), then its matchers and those of extra
 * (may be NULL), values escaped. Returns 0, or -CN_EINPUT if it does not fit in size bytes. */
int cn_promsel_format(const struct cn_promsel *sel, const char *suffix, const struct cn_promsel *extra, char *buf,
		      size_t size, struct cn_err *err);

struct cn_promtext_limits {
	size_t max_line;  /* 0: CN_PROMTEXT_MAX_LINE */
	size_t max_page;  /* 0: CN_PROMTEXT_MAX_PAGE */
};

struct cn_promtext;

/* Creates a parser that sums the series named in names (requests, errors: counters; latency, ttft, itl:
 * histograms by base name; "" means not wanted). lim may be NULL for the defaults. Returns a new parser that the
 * caller frees with cn_promtext_free, or NULL with err set (bad selector: CN_EINPUT; no memory: CN_EINTERNAL). */
/* Seconds per unit of a histogram named name: 1e-3 for a name ending _ms or _milliseconds (Triton's
 * nv_inference_first_response_histogram_ms), 1e-6 for _us or _microseconds, else 1 (seconds, the Prometheus
 * convention). Its le bounds and _sum are multiplied by it, so the core always sees seconds. */
double cn_promtext_unit_seconds(const char *name);

struct cn_promtext *cn_promtext_new(const struct cn_metric_names *names, const struct cn_promtext_limits *lim,
				    struct cn_err *err);

/* Starts a new page; origin (copied, e.g. the URL) prefixes the reasons of failures. */
void cn_promtext_begin(struct cn_promtext *p, const char *origin);

/* Feeds the next len bytes of the page. Returns 0, or -1 once the page is unusable (the reason comes out of
 * cn_promtext_end); further bytes are then ignored. */
int cn_promtext_feed(struct cn_promtext *p, const char *data, size_t len);

/* Ends the page and writes the sums into *out: out->ok is false with out->why on any error. Missing series give NAN
 * counters and histograms with nbuckets == 0. If the requests series is missing, requests is the latency
 * histogram's count. The parser keeps its page buffers for the next page, up to a few kB (cn_promtext_bytes). */
void cn_promtext_end(struct cn_promtext *p, struct cn_sample *out);

struct cn_promtrack;
/* Makes the parser track resets in track from its next page on (lent, as with cn_promtext_clone; NULL: none), for a
 * caller that reuses parsers across slots. A tracker of the parser's own is freed. */
void cn_promtext_retrack(struct cn_promtext *p, struct cn_promtrack *track);

/* The bytes the parser holds, itself and its buffers (for pools that bound what idle parsers keep, and tests). */
size_t cn_promtext_bytes(const struct cn_promtext *p);

/* True if the last page fed has failed already (e.g. to stop a download early). */
bool cn_promtext_failed(const struct cn_promtext *p);

/* Frees the parser; accepts NULL. */
void cn_promtext_free(struct cn_promtext *p);

/* Makes p remember each wanted series (at most max_series; more are summed as read) from page to page, so that the
 * sums it reports do not fall when one of several servers behind a slot restarts: a series whose value drops is
 * counted as reset on its own (its last value is carried), and a series that leaves the page keeps its last value.
 * The sums then only fall when the reader itself starts afresh. Returns 0, or -CN_EINTERNAL (no memory). */
int cn_promtext_track_resets(struct cn_promtext *p, size_t max_series, struct cn_err *err);

/* A reset tracker on its own (what cn_promtext_track_resets gives a parser), for a caller that makes a parser per
 * page with cn_promtext_clone and keeps only the tracker between pages. new: NULL when out of memory. free accepts
 * NULL (and no parser may use it after). Parsers on several threads may share one tracker (readers of the same page
 * with the same metric names): each page's samples go through it at the page's end, under its lock, and a page
 * during which another parser's page went through is stale: it moves nothing, reports for each series the
 * tracker already has the tracker's value (its own may predate a reset the other page carried), and counts no reset
 * (which page the server wrote last is not known). A stale page does not make the pages that overlap it stale. */
struct cn_promtrack;
struct cn_promtrack *cn_promtrack_new(size_t max_series);
void cn_promtrack_free(struct cn_promtrack *t);
/* The bytes t holds between pages (itself and its packed series), for figures and tests. */
size_t cn_promtrack_bytes(struct cn_promtrack *t);

/* A new parser with the selectors (shared, not compiled again), limits and breakdown label of tmpl, and none of its
 * page or tracker: it tracks resets in track (lent: the caller frees it after the parser; NULL: no tracking). A
 * daemon keeps one template per set of metric names and makes a parser for each page it reads, so thousands of
 * idle readers hold no parser (1.2 kB each). Returns NULL with err (CN_EINTERNAL) when out of memory. */
struct cn_promtext *cn_promtext_clone(const struct cn_promtext *tmpl, struct cn_promtrack *track, struct cn_err *err);

/* Convenience: parses a whole page held in memory, as begin + feed + end. */
void cn_promtext_parse(struct cn_promtext *p, const char *origin, const char *page, size_t len, struct cn_sample *out);

#endif
