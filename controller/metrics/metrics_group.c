/* Reads many services' metrics at once: a group owns one libcurl multi handle, the sources add their transfers to
 * it, and the caller drives it (with one socket of its own, so the daemon hears NOTIFY while pages download). A
 * reader whose read finished waits in the ready list until the caller takes it; each transfer carries its own
 * timeout, so a hung endpoint holds back only its own reader. At most GROUP_MAX_INFLIGHT reads are out at once;
 * more wait in a queue, in order, and begin as others end: the SLA observer starts every service's read at the
 * same moment, and 10,000 reads at once were 20,000 connections and libcurl handles (about 50 kB a read). */
#include <stdlib.h>
#include <string.h>

#include "canary/metrics.h"
#include "metrics_int.h"

#define GROUP_MAX_READY (1 << 20) /* readers in a list (pointers): far more than rollouts or services */
#define GROUP_MAX_INFLIGHT CN_METRICS_GROUP_MAX_INFLIGHT /* a hung endpoint holds a place for its timeout, so
							     * 512 hung at once are needed before a healthy read waits */

struct cn_metrics_group {
	CURLM *multi;
	bool curl_inited;
	struct cn_metrics **ready;   /* finished, not yet handed out */
	int nready, capready;
	struct cn_metrics **fl;      /* in flight; at most GROUP_MAX_INFLIGHT */
	int nfl, capfl;
	struct cn_metrics **wq;      /* queued: wq[wq_head .. nwq - 1], oldest first */
	int nwq, capwq, wq_head;
	int max_inflight;            /* GROUP_MAX_INFLIGHT unless cn_metrics_group_max_inflight said otherwise */
};

struct cn_metrics_group *cn_metrics_group_new(struct cn_err *err)
{
	struct cn_metrics_group *g = calloc(1, sizeof *g);
	if (!g) {
		cn_fail(err, CN_EINTERNAL, "out of memory creating a metrics group");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cn_fail(err, CN_EINTERNAL, "cannot initialise libcurl");
		free(g);
		return NULL;
	}
	g->curl_inited = true;
	g->max_inflight = GROUP_MAX_INFLIGHT;
	g->multi = curl_multi_init();
	if (!g->multi) {
		cn_fail(err, CN_EINTERNAL, "cannot create a libcurl multi handle");
		cn_metrics_group_free(g);
		return NULL;
	}
	return g;
}

static void list_remove(struct cn_metrics **list, int *n, const struct cn_metrics *m)
{
	for (int i = 0; i < *n; i++)
		if (list[i] == m) {
			memmove(&list[i], &list[i + 1], (size_t)(*n - i - 1) * sizeof list[0]);
			(*n)--;
			return;
		}
}

static int list_push(struct cn_metrics ***list, int *n, int *cap, struct cn_metrics *m)
{
	if (*n == *cap) {
		int c = *cap ? *cap * 2 : 32;
		if (c > GROUP_MAX_READY)
			return -CN_EINTERNAL;
		struct cn_metrics **l = realloc(*list, (size_t)c * sizeof *l);
		if (!l)
			return -CN_EINTERNAL;
		*list = l;
		*cap = c;
	}
	(*list)[(*n)++] = m;
	return 0;
}

static void ready_remove(struct cn_metrics_group *g, const struct cn_metrics *m)
{
	list_remove(g->ready, &g->nready, m);
}

/* Marks m finished and queues it for the caller. */
static int ready_push(struct cn_metrics_group *g, struct cn_metrics *m)
{
	if (list_push(&g->ready, &g->nready, &g->capready, m) < 0)
		return -CN_EINTERNAL;
	m->read = CN_READ_READY;
	return 0;
}

/* The read's samples are gone (collected or cancelled), or the read did not start. */
static void result_drop(struct cn_metrics *m)
{
	free(m->result);
	m->result = NULL;
	m->group = NULL;
}

void cn_metrics_cancel(struct cn_metrics *m)
{
	if (!m || m->read == CN_READ_IDLE)
		return;
	struct cn_metrics_group *g = m->group;
	if (m->read == CN_READ_QUEUED) {
		for (int i = g->wq_head; i < g->nwq; i++)
			if (g->wq[i] == m) {
				memmove(&g->wq[i], &g->wq[i + 1], (size_t)(g->nwq - i - 1) * sizeof g->wq[0]);
				g->nwq--;
				break;
			}
	} else if (m->read == CN_READ_INFLIGHT) {
		if (m->ops->cancel)
			m->ops->cancel(m, g->multi);
		list_remove(g->fl, &g->nfl, m);
	} else {
		ready_remove(g, m);
	}
	m->read = CN_READ_IDLE;
	result_drop(m);
}

void cn_metrics_group_free(struct cn_metrics_group *g)
{
	if (!g)
		return;
	while (g->nready > 0)
		cn_metrics_cancel(g->ready[g->nready - 1]);
	while (g->nfl > 0)
		cn_metrics_cancel(g->fl[g->nfl - 1]);
	while (g->nwq > g->wq_head)
		cn_metrics_cancel(g->wq[g->nwq - 1]);
	if (g->multi)
		curl_multi_cleanup(g->multi);
	if (g->curl_inited)
		curl_global_cleanup();
	free(g->fl);
	free(g->ready);
	free(g->wq);
	free(g);
}

/* Begins m's read now: its transfers join the multi handle. */
static int start_now(struct cn_metrics *m, struct cn_metrics_group *g, struct cn_err *err)
{
	if (!(m->result = malloc(2 * sizeof *m->result))) {
		m->read = CN_READ_IDLE;
		result_drop(m);
		return cn_fail(err, CN_EINTERNAL, "service '%s': out of memory starting a metrics read", m->name);
	}
	cn_sample_reset(&m->result[0]);
	cn_sample_reset(&m->result[1]);
	if (list_push(&g->fl, &g->nfl, &g->capfl, m) < 0) {
		m->read = CN_READ_IDLE;
		result_drop(m);
		return cn_fail(err, CN_EINTERNAL, "too many metric reads in flight");
	}
	int rc = m->ops->start(m, g->multi, err);
	if (rc < 0) {
		if (m->ops->cancel)
			m->ops->cancel(m, g->multi);
		list_remove(g->fl, &g->nfl, m);
		m->read = CN_READ_IDLE;
		result_drop(m);
		return rc;
	}
	m->read = CN_READ_INFLIGHT;
	return 0;
}

/* Begins queued reads while there is room. One that cannot begin (out of memory) ends as a failed read, so its
 * caller hears of it like of any other. */
static void start_queued(struct cn_metrics_group *g)
{
	while (g->nfl < g->max_inflight && g->wq_head < g->nwq) {
		struct cn_metrics *m = g->wq[g->wq_head++];
		if (g->wq_head == g->nwq)
			g->wq_head = g->nwq = 0;
		struct cn_err err = {0};
		if (start_now(m, g, &err) < 0 && (m->result = malloc(2 * sizeof *m->result)) != NULL) {
			m->group = g;
			for (int i = 0; i < 2; i++) {
				cn_sample_reset(&m->result[i]);
				cn_sample_fail(&m->result[i], "%s", err.msg);
			}
			if (ready_push(g, m) < 0) {
				m->read = CN_READ_IDLE;
				result_drop(m);
			}
		}
	}
}

int cn_metrics_start(struct cn_metrics *m, struct cn_metrics_group *g, struct cn_err *err)
{
	if (!m || !g || m->read != CN_READ_IDLE)
		return cn_fail(err, CN_EINTERNAL, "metrics read started twice");
	m->group = g;
	if (!m->ops->start) {
		/* a synchronous source: read now, and hand the reader out at the next wait */
		if (!(m->result = malloc(2 * sizeof *m->result))) {
			result_drop(m);
			return cn_fail(err, CN_EINTERNAL, "service '%s': out of memory starting a metrics read", m->name);
		}
		for (int i = 0; i < 2; i++) {
			cn_sample_reset(&m->result[i]);
			if (m->ops->sample(m, i, &m->result[i]) < 0) {
				result_drop(m);
				return cn_fail(err, CN_EINTERNAL, "service '%s': reading metrics failed", m->name);
			}
		}
		if (ready_push(g, m) < 0) {
			result_drop(m);
			return cn_fail(err, CN_EINTERNAL, "too many finished metric reads waiting to be collected");
		}
		return 0;
	}
	if (g->nfl < g->max_inflight && g->wq_head == g->nwq)
		return start_now(m, g, err);
	/* wait for a place, behind those already waiting */
	if (list_push(&g->wq, &g->nwq, &g->capwq, m) < 0) {
		result_drop(m);
		return cn_fail(err, CN_EINTERNAL, "too many metric reads waiting to start");
	}
	m->read = CN_READ_QUEUED;
	return 0;
}

bool cn_metrics_busy(const struct cn_metrics *m)
{
	return m && m->read != CN_READ_IDLE;
}

int cn_metrics_group_wait(struct cn_metrics_group *g, int fd, int timeout_ms, bool *fd_ready, struct cn_err *err)
{
	struct curl_waitfd extra = {.fd = fd, .events = CURL_WAIT_POLLIN, .revents = 0};
	int running = 0, numfds = 0;
	*fd_ready = false;
	start_queued(g);
	if (g->nready > 0)
		timeout_ms = 0; /* someone is waiting to be collected: do not sleep */
	CURLMcode mc = curl_multi_poll(g->multi, fd >= 0 ? &extra : NULL, fd >= 0 ? 1 : 0, timeout_ms, &numfds);
	if (mc != CURLM_OK)
		return cn_fail(err, CN_EINTERNAL, "libcurl: %s", curl_multi_strerror(mc));
	*fd_ready = fd >= 0 && (extra.revents & (CURL_WAIT_POLLIN | CURL_WAIT_POLLPRI)) != 0;
	mc = curl_multi_perform(g->multi, &running);
	if (mc != CURLM_OK)
		return cn_fail(err, CN_EINTERNAL, "libcurl: %s", curl_multi_strerror(mc));
	CURLMsg *msg;
	int left = 0;
	while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *easy = msg->easy_handle;
		CURLcode code = msg->data.result;
		struct cn_metrics *m = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&m);
		curl_multi_remove_handle(g->multi, easy);
		if (!m || m->group != g || m->read != CN_READ_INFLIGHT)
			continue;
		if (m->ops->done(m, easy, code) == 1) {
			list_remove(g->fl, &g->nfl, m);
			if (ready_push(g, m) < 0) {
				m->read = CN_READ_IDLE;
				m->group = NULL;
				return cn_fail(err, CN_EINTERNAL, "too many finished metric reads waiting to be collected");
			}
		}
	}
	start_queued(g);
	return 0;
}

struct cn_metrics *cn_metrics_group_next(struct cn_metrics_group *g)
{
	if (!g || g->nready == 0)
		return NULL;
	struct cn_metrics *m = g->ready[0];
	memmove(&g->ready[0], &g->ready[1], (size_t)(g->nready - 1) * sizeof g->ready[0]);
	g->nready--;
	/* handed out: no longer in the list, still READY until collected */
	return m;
}

void cn_metrics_group_max_inflight(struct cn_metrics_group *g, int n)
{
	g->max_inflight = n > 0 ? n : GROUP_MAX_INFLIGHT;
}

int cn_metrics_group_inflight(const struct cn_metrics_group *g)
{
	return g ? g->nfl + (g->nwq - g->wq_head) : 0;
}

int cn_metrics_group_pending(const struct cn_metrics_group *g)
{
	return g ? cn_metrics_group_inflight(g) + g->nready : 0;
}

int cn_metrics_collect(struct cn_metrics *m, struct cn_sample out[2])
{
	if (!m || m->read != CN_READ_READY)
		return -CN_EINTERNAL;
	if (m->group)
		ready_remove(m->group, m);
	out[0] = m->result[0];
	out[1] = m->result[1];
	m->read = CN_READ_IDLE;
	result_drop(m);
	return 0;
}
