/* Inside the metrics adapter: the per-source function table and helpers shared by the sources and the parser. */
#ifndef CANARY_METRICS_INT_H
#define CANARY_METRICS_INT_H

#include <stddef.h>

#include "canary/metrics.h"
#include "canary/promtext.h"

struct cn_metrics_ops {
	/* Reads slot into out (already reset by cn_sample_reset); failures set out->ok/why and return 0. */
	int (*sample)(struct cn_metrics *m, int slot, struct cn_sample *out);
	/* Frees the source (the struct that embeds struct cn_metrics). */
	void (*close)(struct cn_metrics *m);
};

/* Every source embeds this first. */
struct cn_metrics {
	const struct cn_metrics_ops *ops;
	struct cn_service svc;
	struct cn_metrics_limits lim;
};

struct cn_metrics *cn_metrics_scrape_open(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					  struct cn_err *err);
struct cn_metrics *cn_metrics_prom_open(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					struct cn_err *err);

/* Sets s to ok with every series missing (NAN counters, empty histograms with NAN sums). */
void cn_sample_reset(struct cn_sample *s);

/* Marks s failed with a formatted one-line reason (the first failure wins). */
void cn_sample_fail(struct cn_sample *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sorts h's buckets by le and checks they are cumulative and end at +Inf. Returns 0, or -1 with why filled. */
int cn_hist_finish(struct cn_histogram *h, const char *name, char *why, size_t whylen);

/* Finds le in h or adds it (unsorted). Returns its index, or -1 if h is full. */
int cn_hist_slot(struct cn_histogram *h, double le);

#endif
