/* Inside the metrics adapter: the per-source function table and helpers shared by the sources and the parser. */
#ifndef CANARY_METRICS_INT_H
#define CANARY_METRICS_INT_H

#include <curl/curl.h>
#include <stddef.h>

#include "canary/metrics.h"
#include "canary/promtext.h"

struct cn_metrics_ops {
	/* Reads slot into out (already reset by cn_sample_reset); failures set out->ok/why and return 0. */
	int (*sample)(struct cn_metrics *m, int slot, struct cn_sample *out);
	/* Frees the source (the struct that embeds struct cn_metrics); any read was cancelled before. */
	void (*close)(struct cn_metrics *m);
	/* Asynchronous reads (NULL: the group reads synchronously with sample at start). start adds the source's
	 * transfers to multi, each with CURLOPT_PRIVATE = m, and returns how many (>= 1) or < 0 with err. */
	int (*start)(struct cn_metrics *m, CURLM *multi, struct cn_err *err);
	/* One of m's transfers ended with code: write the slot's sample into m->result; return 1 when the whole read
	 * is done. The group has already removed the transfer from multi. */
	int (*done)(struct cn_metrics *m, CURL *easy, CURLcode code);
	/* Removes m's transfers that are still in multi. */
	void (*cancel)(struct cn_metrics *m, CURLM *multi);
};

/* QUEUED: started while the group had GROUP_MAX_INFLIGHT reads out; it begins when one of them ends. */
enum cn_read_state { CN_READ_IDLE, CN_READ_QUEUED, CN_READ_INFLIGHT, CN_READ_READY };

/* Every source embeds this first. */
struct cn_metrics {
	const struct cn_metrics_ops *ops;
	const char *name;                 /* the service's, for messages (the reader keeps no copy of the service): the
					   * adapter's own copy, in its allocation */
	struct cn_metrics_limits lim;
	/* the read driven by a group */
	struct cn_metrics_group *group;   /* set while not idle */
	enum cn_read_state read;
	struct cn_sample *result;         /* [2] while a read is in flight or ready (7.6 kB a reader need not hold
					   * between reads); NULL when idle */
	size_t tag;                       /* the caller's (cn_metrics_set_tag) */
};

struct cn_metrics *cn_metrics_scrape_open(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					  struct cn_err *err);
struct cn_metrics *cn_metrics_prom_open(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					struct cn_err *err);

/* A process-wide pool of idle libcurl easy handles (a mutex guards it; any thread may use it). A reader holds a
 * handle only while a transfer runs, so a daemon with 10,000 rollouts holds as many handles as it has reads in
 * flight, not two per rollout (an easy handle is about 6 kB, and 16 kB more once it has read). acquire: a handle
 * with every option at its default (curl_easy_reset), or NULL when out of memory. release: resets c and keeps it
 * (up to CN_CURL_POOL_IDLE idle, canary/metrics.h; more are freed); NULL is ignored. A released handle must not be in a multi. */
CURL *cn_curl_acquire(void);
void cn_curl_release(CURL *c);

/* Sets s to ok with every series missing (NAN counters, empty histograms with NAN sums). */
void cn_sample_reset(struct cn_sample *s);

/* CURLOPT_OPENSOCKETFUNCTION with CURLOPT_OPENSOCKETDATA an int *: opens the socket (close-on-exec) and stores why
 * socket() failed there (0 otherwise). libcurl 7.88 reports that failure as "Couldn't connect to server" and loses
 * errno, so a reader out of descriptors could not say so ("Too many open files") and canaryd could not hold. */
curl_socket_t cn_metrics_open_socket(void *errno_out, curlsocktype purpose, struct curl_sockaddr *a);

/* Marks s failed with a formatted one-line reason (the first failure wins). */
void cn_sample_fail(struct cn_sample *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sorts h's buckets by le and checks they are cumulative and end at +Inf. Returns 0, or -1 with why filled. */
int cn_hist_finish(struct cn_histogram *h, const char *name, char *why, size_t whylen);

/* Finds le in h or adds it (unsorted). Returns its index, or -1 if h is full. */
int cn_hist_slot(struct cn_histogram *h, double le);

#endif
