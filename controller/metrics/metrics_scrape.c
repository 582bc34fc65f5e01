/* Scrape source: GETs each slot's /metrics with libcurl and streams the body through the text-format parser, so
 * the page is never held in memory. A slot takes a libcurl handle from the process's pool for one transfer and
 * gives it back (cn_curl_acquire), and takes its parser (a clone of the process's template for its metric names)
 * and error buffer from the template's pool for that transfer too: between reads a reader holds its URLs and its
 * two reset trackers, not two handles and two parsers. Reads run one at a time (cn_metrics_sample) or both slots at once in a group's multi handle
 * (cn_metrics_start), whose connection cache keeps connections alive between ticks. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "canary/metrics.h"
#include "canary/promtext.h"
#include "metrics_int.h"

#define SCRAPE_TRACK_SERIES 4096 /* series remembered per slot for per-server counter resets */
#define POOL_MAX 64              /* idle parsers kept per template (struct tmpl); reads in flight at 1,000 ticks/s: ~40 */

/* What a slot needs only while a transfer runs. */
struct slot_read {
	struct cn_promtext *parser; /* a clone of the reader's template, tracking resets in the slot's tracker */
	bool checked;     /* the status was looked at when the body began */
	long status;
	int sock_errno;   /* why socket() failed in this transfer; 0: it did not */
	char errbuf[CURL_ERROR_SIZE];
};

/* What a slot keeps between reads: a daemon holds two readers a rollout (its loop's and the SLA observer's), so
 * what is only needed while a transfer runs is in struct slot_read. */
struct scrape_slot {
	CURL *curl;       /* from the pool (cn_curl_acquire) while a transfer runs; NULL between reads */
	struct slot_read *rd; /* while a transfer runs; NULL between reads */
	const char *url;  /* the slot's metrics_url (in struct scrape's text) */
	struct cn_promtrack *track; /* per-series memory from page to page (several servers behind one page), shared
				     * by the process's readers of this page with these metric names (track_get) */
	bool in_multi;    /* its transfer is in a group's multi handle */
};

/* A parser with no page, shared by every reader of the same metric names and limits (a daemon reading 10,000
 * services on one preset holds one); readers clone it for each page. */
struct tmpl {
	struct tmpl *next;
	struct cn_metric_names names;
	struct cn_promtext_limits lim;
	struct cn_promtext *parser;
	int refs;
	/* Parsers (with their error buffers) of reads that ended, for the next reads: at 2,000 pages a second, a parser
	 * and its page buffers made and freed for each page were half a dozen blocks of 0.3-4 kB each time, and the
	 * holes they left among the daemon's long-lived blobs held megabytes of free heap that no trim gives back. At
	 * most POOL_MAX, each within cn_promtext_end's buffer caps: a few hundred kB at most. Under tmpl_mu. */
	struct slot_read *pool[POOL_MAX];
	int npool;
};

struct scrape {
	struct cn_metrics base;   /* first: the adapter casts between the two */
	struct tmpl *tmpl;
	long timeout_ms;          /* each transfer's */
	struct scrape_slot s[2];
	char text[];              /* base.name and the slots' URLs, "name\0url0\0url1\0": a daemon holds two readers a
				   * rollout, and a name of CN_NAME_MAX and two URLs of their own were 1.6 MB of 20,000 */
};

static pthread_mutex_t tmpl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tmpl *tmpl_head;

static void read_free(struct slot_read *rd)
{
	if (rd)
		cn_promtext_free(rd->parser);
	free(rd);
}

/* A read of t's metric names for a transfer that tracks resets in track: one that ended (t's pool), or a new one.
 * NULL when out of memory. */
static struct slot_read *read_take(struct tmpl *t, struct cn_promtrack *track)
{
	struct slot_read *rd = NULL;
	struct cn_err err = { 0 };

	pthread_mutex_lock(&tmpl_mu);
	if (t->npool > 0)
		rd = t->pool[--t->npool];
	pthread_mutex_unlock(&tmpl_mu);
	if (rd) {
		cn_promtext_retrack(rd->parser, track);
		return rd;
	}
	if (!(rd = calloc(1, sizeof *rd)) || !(rd->parser = cn_promtext_clone(t->parser, track, &err))) {
		free(rd);
		return NULL;
	}
	return rd;
}

/* Gives back a read whose transfer is over: to t's pool while it has room, else freed. */
static void read_give(struct tmpl *t, struct slot_read *rd)
{
	if (!rd)
		return;
	cn_promtext_retrack(rd->parser, NULL); /* the slot's tracker may go before the pool does */
	pthread_mutex_lock(&tmpl_mu);
	if (t && t->npool < POOL_MAX) {
		t->pool[t->npool++] = rd;
		rd = NULL;
	}
	pthread_mutex_unlock(&tmpl_mu);
	read_free(rd);
}

static bool same_names(const struct cn_metric_names *a, const struct cn_metric_names *b)
{
	return strcmp(a->requests, b->requests) == 0 && strcmp(a->errors, b->errors) == 0 &&
	       strcmp(a->latency, b->latency) == 0 && strcmp(a->ttft, b->ttft) == 0 && strcmp(a->itl, b->itl) == 0 &&
	       strcmp(a->gen_tokens, b->gen_tokens) == 0 && strcmp(a->prompt_tokens, b->prompt_tokens) == 0 &&
	       strcmp(a->feature_label, b->feature_label) == 0;
}

/* The template for names and lim, made (selectors compiled, checked) when no reader has it. NULL with err. */
static struct tmpl *tmpl_get(const struct cn_metric_names *names, const struct cn_promtext_limits *lim,
			     struct cn_err *err)
{
	struct tmpl *t;

	pthread_mutex_lock(&tmpl_mu);
	for (t = tmpl_head; t; t = t->next)
		if (t->lim.max_line == lim->max_line && t->lim.max_page == lim->max_page && same_names(&t->names, names)) {
			t->refs++;
			goto out;
		}
	if (!(t = calloc(1, sizeof *t))) {
		cn_fail(err, CN_EINTERNAL, "out of memory creating a metrics parser");
		goto out;
	}
	if (!(t->parser = cn_promtext_new(names, lim, err))) {
		free(t);
		t = NULL;
		goto out;
	}
	t->names = *names;
	t->lim = *lim;
	t->refs = 1;
	t->next = tmpl_head;
	tmpl_head = t;
out:
	pthread_mutex_unlock(&tmpl_mu);
	return t;
}

static void tmpl_put(struct tmpl *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&tmpl_mu);
	if (--t->refs == 0) {
		for (struct tmpl **pp = &tmpl_head; *pp; pp = &(*pp)->next)
			if (*pp == t) {
				*pp = t->next;
				break;
			}
		cn_promtext_free(t->parser);
		for (int i = 0; i < t->npool; i++)
			read_free(t->pool[i]);
		free(t);
	}
	pthread_mutex_unlock(&tmpl_mu);
}

/* Reset trackers by page and metric names: the loop's reader of a rollout and the SLA observer's reader of its
 * service read the same two pages, and share one tracker a page (400 bytes packed for a vLLM page; a daemon with
 * 10,000 rollouts held 40,000 before they were shared). The parser puts a page's samples through the tracker at the page's end, under its lock, and a page read while another
 * went through is stale and changes nothing (promtext.c, track). Readers with other metric names want other series
 * and keep their own. Chained hash by URL. */
struct shared_track {
	struct shared_track *next;
	const struct tmpl *tmpl;
	struct cn_promtrack *t;
	int refs;
	char url[];
};

#define TRACK_BUCKETS 8192
static struct shared_track *track_tab[TRACK_BUCKETS];
static pthread_mutex_t track_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t url_bucket(const char *url)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *c = url; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	return (size_t)(h % TRACK_BUCKETS);
}

static struct cn_promtrack *track_get(const char *url, const struct tmpl *tmpl)
{
	size_t b = url_bucket(url), len = strlen(url);
	struct shared_track *e;

	pthread_mutex_lock(&track_mu);
	for (e = track_tab[b]; e; e = e->next)
		if (e->tmpl == tmpl && strcmp(e->url, url) == 0) {
			e->refs++;
			break;
		}
	if (!e && (e = calloc(1, sizeof *e + len + 1))) {
		if ((e->t = cn_promtrack_new(SCRAPE_TRACK_SERIES))) {
			memcpy(e->url, url, len + 1);
			e->tmpl = tmpl;
			e->refs = 1;
			e->next = track_tab[b];
			track_tab[b] = e;
		} else {
			free(e);
			e = NULL;
		}
	}
	pthread_mutex_unlock(&track_mu);
	return e ? e->t : NULL;
}

static void track_put(const char *url, struct cn_promtrack *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&track_mu);
	for (struct shared_track **pp = &track_tab[url_bucket(url)]; *pp; pp = &(*pp)->next) {
		struct shared_track *e = *pp;
		if (e->t != t)
			continue;
		if (--e->refs == 0) {
			*pp = e->next;
			cn_promtrack_free(e->t);
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&track_mu);
}

static struct curl_slist *accept_hdr; /* one list for every transfer, made once (pthread_once) */
static pthread_once_t accept_once = PTHREAD_ONCE_INIT;

static void accept_init(void)
{
	accept_hdr = curl_slist_append(NULL, "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1");
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct scrape_slot *ss = arg;
	size_t n = size * nmemb;

	if (!ss->rd->checked) {
		ss->rd->checked = true;
		if (curl_easy_getinfo(ss->curl, CURLINFO_RESPONSE_CODE, &ss->rd->status) != CURLE_OK)
			ss->rd->status = 0;
	}
	if (ss->rd->status != 200)
		return 0;   /* do not read an error page: stop here */
	if (cn_promtext_feed(ss->rd->parser, data, n) < 0)
		return 0;   /* the page is unusable already (too big, bad line): stop the download */
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg);

/* Takes a handle from the pool and sets it for one transfer of ss, with a parser cloned from tmpl and an error
 * buffer (tmpl NULL: only the handle, to check the URL); private: what CURLOPT_PRIVATE carries (the reader, for a
 * group). Returns 0, or -1 when out of memory (ss->curl and ss->rd stay NULL). */
static int slot_handle(struct scrape_slot *ss, struct tmpl *tmpl, long timeout_ms, void *private)
{
	CURL *c = cn_curl_acquire();

	pthread_once(&accept_once, accept_init);
	if (!c || !accept_hdr)
		goto fail;
	if (tmpl) {
		if (!(ss->rd = read_take(tmpl, ss->track)))
			goto fail;
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ss->rd->errbuf);
	}
	if (curl_easy_setopt(c, CURLOPT_URL, ss->url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
		goto fail;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, accept_hdr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "canary-metrics/0.1");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, ss);
	if (ss->rd) {
		curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, cn_metrics_open_socket); /* says "Too many open files" */
		curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &ss->rd->sock_errno);
	}
	curl_easy_setopt(c, CURLOPT_PRIVATE, private); /* a group finds the reader of a finished transfer */
	ss->curl = c;
	return 0;
fail:
	cn_curl_release(c);
	read_free(ss->rd);
	ss->rd = NULL;
	return -1;
}

/* Gives the slot's handle and parser back to their pools (its transfer is over and out of any multi). */
static void slot_release(struct scrape_slot *ss, struct tmpl *tmpl)
{
	cn_curl_release(ss->curl);
	ss->curl = NULL;
	read_give(tmpl, ss->rd);
	ss->rd = NULL;
}

static void slot_begin(struct scrape_slot *ss)
{
	ss->rd->errbuf[0] = '\0';
	ss->rd->sock_errno = 0;
	ss->rd->checked = false;
	ss->rd->status = 0;
	cn_promtext_begin(ss->rd->parser, ss->url);
}

/* Turns a finished transfer into the slot's sample. */
static void slot_end(struct scrape_slot *ss, const char *url, CURLcode res, struct cn_sample *out)
{
	long status = 0;

	if (res == CURLE_OK || res == CURLE_WRITE_ERROR) {
		if (curl_easy_getinfo(ss->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
			status = 0;
		if (status != 200) {
			cn_sample_fail(out, "metrics page %s: http status %ld, expected 200", url, status);
			return;
		}
		if (res == CURLE_OK || cn_promtext_failed(ss->rd->parser)) {
			cn_promtext_end(ss->rd->parser, out);
			return;
		}
	}
	if (ss->rd->sock_errno != 0)
		cn_sample_fail(out, "cannot open a socket (%s) for metrics page %s", strerror(ss->rd->sock_errno), url);
	else
		cn_sample_fail(out, "metrics page %s: %s", url, ss->rd->errbuf[0] ? ss->rd->errbuf : curl_easy_strerror(res));
}

static int scrape_sample(struct cn_metrics *m, int slot, struct cn_sample *out)
{
	struct scrape *sc = (struct scrape *)m;
	struct scrape_slot *ss = &sc->s[slot];

	if (slot_handle(ss, sc->tmpl, sc->timeout_ms, m) < 0)
		return -CN_EINTERNAL;
	slot_begin(ss);
	slot_end(ss, ss->url, curl_easy_perform(ss->curl), out);
	slot_release(ss, sc->tmpl);
	return 0;
}

static int scrape_start(struct cn_metrics *m, CURLM *multi, struct cn_err *err)
{
	struct scrape *sc = (struct scrape *)m;

	for (int i = 0; i < 2; i++) {
		struct scrape_slot *ss = &sc->s[i];
		if (slot_handle(ss, sc->tmpl, sc->timeout_ms, m) < 0)
			return cn_fail(err, CN_EINTERNAL, "service '%s': out of memory starting to read %s", m->name,
				       ss->url);
		slot_begin(ss);
		CURLMcode mc = curl_multi_add_handle(multi, ss->curl);
		if (mc != CURLM_OK) {
			slot_release(ss, sc->tmpl);
			return cn_fail(err, CN_EINTERNAL, "service '%s': cannot start reading %s: %s", m->name,
				       ss->url, curl_multi_strerror(mc));
		}
		ss->in_multi = true;
	}
	return 2;
}

static int scrape_done(struct cn_metrics *m, CURL *easy, CURLcode code)
{
	struct scrape *sc = (struct scrape *)m;

	for (int i = 0; i < 2; i++) {
		struct scrape_slot *ss = &sc->s[i];
		if (ss->curl != easy || !ss->in_multi)
			continue;
		ss->in_multi = false;
		slot_end(ss, ss->url, code, &m->result[i]);
		slot_release(ss, sc->tmpl);
	}
	return !sc->s[0].in_multi && !sc->s[1].in_multi;
}

static void scrape_cancel(struct cn_metrics *m, CURLM *multi)
{
	struct scrape *sc = (struct scrape *)m;

	for (int i = 0; i < 2; i++)
		if (sc->s[i].in_multi) {
			curl_multi_remove_handle(multi, sc->s[i].curl);
			sc->s[i].in_multi = false;
			slot_release(&sc->s[i], sc->tmpl);
		}
}

static void scrape_close(struct cn_metrics *m)
{
	struct scrape *sc = (struct scrape *)m;

	for (int i = 0; i < 2; i++) {
		slot_release(&sc->s[i], sc->tmpl);
		track_put(sc->s[i].url, sc->s[i].track);
	}
	tmpl_put(sc->tmpl);
	free(sc);
}

static const struct cn_metrics_ops scrape_ops = {
	.sample = scrape_sample, .close = scrape_close, .start = scrape_start, .done = scrape_done,
	.cancel = scrape_cancel,
};

static int setup_slot(struct scrape *sc, const struct cn_service *svc, int i, struct cn_err *err)
{
	struct scrape_slot *ss = &sc->s[i];

	if (svc->slots[i].metrics_url[0] == '\0')
		return cn_fail(err, CN_EINPUT, "service '%s' slot '%s': no metrics_url to scrape (set it, or use the "
			       "prometheus source)", svc->name, svc->slots[i].name);
	/* several servers may stand behind one page (an aggregating exporter): one restarting must not count the
	 * others' totals as new traffic */
	if (!(ss->track = track_get(ss->url, sc->tmpl)))
		return cn_fail(err, CN_EINTERNAL, "out of memory opening metrics of service '%s'", svc->name);
	/* a URL libcurl refuses is said now, not at the first read */
	if (slot_handle(ss, NULL, sc->timeout_ms, &sc->base) < 0)
		return cn_fail(err, CN_EINPUT, "service '%s' slot '%s': bad metrics_url '%s' (use http:// or https://)",
			       svc->name, svc->slots[i].name, svc->slots[i].metrics_url);
	slot_release(ss, NULL);
	return 0;
}

struct cn_metrics *cn_metrics_scrape_open(const struct cn_service *svc, const struct cn_metrics_limits *lim,
					  struct cn_err *err)
{
	size_t ln = strlen(svc->name) + 1, l0 = strlen(svc->slots[0].metrics_url) + 1,
	       l1 = strlen(svc->slots[1].metrics_url) + 1;
	struct scrape *sc = calloc(1, sizeof *sc + ln + l0 + l1);

	if (!sc) {
		cn_fail(err, CN_EINTERNAL, "out of memory opening metrics of service '%s'", svc->name);
		return NULL;
	}
	sc->base.ops = &scrape_ops;
	sc->timeout_ms = svc->metrics.timeout_ms > 0 ? (long)svc->metrics.timeout_ms : CN_METRICS_DEFAULT_TIMEOUT_MS;
	memcpy(sc->text, svc->name, ln);
	memcpy(sc->text + ln, svc->slots[0].metrics_url, l0);
	memcpy(sc->text + ln + l0, svc->slots[1].metrics_url, l1);
	sc->base.name = sc->text;
	sc->s[0].url = sc->text + ln;
	sc->s[1].url = sc->text + ln + l0;
	if (lim)
		sc->base.lim = *lim;
	struct cn_promtext_limits plim = { sc->base.lim.max_line, sc->base.lim.max_page };
	if (!(sc->tmpl = tmpl_get(&svc->metrics.names, &plim, err))) {
		cn_err_prefix(err, "service '%s'", svc->name);
		goto out;
	}
	for (int i = 0; i < 2; i++)
		if (setup_slot(sc, svc, i, err) < 0)
			goto out;
	return &sc->base;
out:
	scrape_close(&sc->base);
	return NULL;
}
