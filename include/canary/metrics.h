/* The metrics adapter: reads each slot's cumulative counters and histograms, from the slot's /metrics page
 * (scrape) or from a Prometheus server's HTTP API. The core computes deltas; this module only reads. */
#ifndef CANARY_METRICS_H
#define CANARY_METRICS_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/metrics-t.h"
#include "canary/service-t.h"

#define CN_METRICS_DEFAULT_TIMEOUT_MS 5000

struct cn_metrics;   /* opaque */

struct cn_metrics_limits {
	size_t max_line;  /* longest line of a /metrics page; 0: 64 KiB */
	size_t max_page;  /* largest /metrics page or Prometheus answer; 0: 32 MiB */
};

/* Opens a metrics reader for a service (scrape or prometheus per svc->metrics.source); svc is copied. Returns a new
 * reader the caller closes with cn_metrics_close, or NULL with err set (CN_EINPUT: bad selector or URL). */
struct cn_metrics *cn_metrics_open(const struct cn_service *svc, struct cn_err *err);

/* As cn_metrics_open, with size limits (lim may be NULL for the defaults). */
struct cn_metrics *cn_metrics_open_limits(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					  struct cn_err *err);

/* Reads the cumulative counters of slot (0 or 1) into *out. A failed read is not an error: out->ok = false and
 * out->why says why; returns 0. Returns < 0 (-CN_EINTERNAL) only on internal failure or a bad slot. */
int cn_metrics_sample(struct cn_metrics *m, int slot, struct cn_sample *out);

/* Closes the reader and its connections; accepts NULL. */
void cn_metrics_close(struct cn_metrics *m);

#endif
