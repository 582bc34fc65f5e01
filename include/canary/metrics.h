/* The metrics adapter: reads each slot's cumulative counters and histograms, from the slot's /metrics page
 * (scrape) or from a Prometheus server's HTTP API. The core computes deltas; this module only reads. */
#ifndef CANARY_METRICS_H
#define CANARY_METRICS_H

#include <stdbool.h>
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

/* Closes the reader and its connections (a read in flight is cancelled first); accepts NULL. */
void cn_metrics_close(struct cn_metrics *m);

/* Frees the HTTP handles that readers gave back and that wait for the next read (a process keeps a few dozen
 * between reads, whatever the number of readers); call at exit, when no reader reads. */
void cn_curl_pool_drain(void);

/* HTTP handles waiting in that pool now (at most CN_CURL_POOL_IDLE); for tests and diagnostics. */
int cn_curl_pool_idle(void);
#define CN_CURL_POOL_IDLE 64

/* ---- reading many services at once ----
 * A group drives the reads of many readers concurrently (libcurl's multi interface): start a read of each reader,
 * wait on the group (alongside one more socket of the caller's, e.g. the database's), take the readers whose read
 * finished, and collect their samples. Each transfer is bounded by its service's metrics.timeout, so one hung
 * endpoint delays nobody else. A source that cannot read asynchronously (prometheus, for now) reads at start. */
struct cn_metrics_group;   /* opaque */

/* Creates an empty group; the caller frees it with cn_metrics_group_free, or NULL with err set. */
struct cn_metrics_group *cn_metrics_group_new(struct cn_err *err);

/* Frees the group; readers still in flight are cancelled (they stay open). Accepts NULL. */
void cn_metrics_group_free(struct cn_metrics_group *g);

/* A number the caller keeps with reader m (0 until set), e.g. its index of the reader's owner: a finished read
 * from cn_metrics_group_next names its owner without a search. */
void cn_metrics_set_tag(struct cn_metrics *m, size_t tag);
size_t cn_metrics_tag(const struct cn_metrics *m);

/* Starts reading both slots of m in g. A reader has at most one read in flight: -CN_EINTERNAL if it has one. */
int cn_metrics_start(struct cn_metrics *m, struct cn_metrics_group *g, struct cn_err *err);

/* True while m has a read in flight or finished but not yet collected. */
bool cn_metrics_busy(const struct cn_metrics *m);

/* Cancels m's read, in flight or finished; nothing is collected. Accepts NULL or an idle reader. */
void cn_metrics_cancel(struct cn_metrics *m);

/* Moves transfers on, waiting up to timeout_ms for one to progress or for fd (>= 0; -1: none) to become
 * readable; *fd_ready says whether it did. Returns 0, or -CN_EINTERNAL if libcurl fails. */
int cn_metrics_group_wait(struct cn_metrics_group *g, int fd, int timeout_ms, bool *fd_ready, struct cn_err *err);

/* Returns one reader whose read finished (each once), or NULL when none is ready. */
struct cn_metrics *cn_metrics_group_next(struct cn_metrics_group *g);

/* At most n reads of g out at once (n <= 0: the default, CN_METRICS_GROUP_MAX_INFLIGHT, two transfers each);
 * more wait in order and begin as others end. */
#define CN_METRICS_GROUP_MAX_INFLIGHT 512
void cn_metrics_group_max_inflight(struct cn_metrics_group *g, int n);

/* Reads in flight in g (started, not yet finished), including those queued until one of the at most 512 that are
 * out ends. */
int cn_metrics_group_inflight(const struct cn_metrics_group *g);

/* Reads not yet collected: in flight, queued, and finished but not handed out by cn_metrics_group_next. Each holds
 * its two samples (7.6 kB), and canaryd the row it will tick on: the daemon starts no read past a cap of them. */
int cn_metrics_group_pending(const struct cn_metrics_group *g);

/* Writes the finished read's samples of both slots into out[0] and out[1] (as cn_metrics_sample would: a failed
 * read has ok = false and why) and makes m idle. -CN_EINTERNAL if m has no finished read. */
int cn_metrics_collect(struct cn_metrics *m, struct cn_sample out[2]);

#endif
