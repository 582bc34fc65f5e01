/* canaryd's SLA observer: a thread of its own with its own database connection, so the ledger never slows the
 * rollout loop (a hung /metrics page or a slow insert holds up only this thread). At every minute boundary of the
 * database's clock it reads both slots of every service at once (libcurl multi through a metrics group, each
 * transfer bounded by the service's metrics.timeout), takes the difference from the reading at the previous boundary
 * (the core's counter and histogram deltas), and records the minute through canary.sla_record, idempotent per
 * service and minute. A minute it cannot measure is recorded without numbers and with the reason; a minute between
 * readings that are not one minute apart (the first after a start, a late turn) is not recorded: no data either way.
 * The minute's length is 60 s; CANARY_TEST_SLA_MINUTE_MS shortens it for tests only. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "canary/bug.h"
#include "canary/judge.h"
#include "canary/metrics.h"
#include "canary/service.h"
#include "canary/sla.h"
#include "canary/store.h"
#include "canary/store_sla.h"
#include "canary/zpack.h"
#include "daemon_fd_int.h"
#include "daemon_int.h"

/* A histogram as kept between two boundaries: only the buckets it has (a struct cn_histogram holds 64). */
/* A histogram's bucket bounds, kept once for every reading that has them (the observer's thread only): a service's
 * four readings of two histograms all have the same few layouts, and 10,000 services kept 10,000 copies. */
struct layout {
	struct layout *next;
	uint64_t hash;
	int n, refs;
	double le[];
};

struct kept_hist {
	int n;                   /* buckets; 0: none */
	uint16_t zlen, zcap;
	double sum;
	struct layout *le;       /* n upper bounds, shared */
	unsigned char *z;        /* n cumulative counts, each against the one before (cn_znum_put): a bucket takes a
				  * byte or three, not 8 (at 10,000 services, the four kept histograms took 6 MB). A
				  * base's own allocation (zcap bytes); a boundary's reading's (zcap 0) is in a struct
				  * zscratch */
};

/* Room for the counts of one service's reading at a boundary (two slots, two histograms each, a byte to
 * CN_ZNUM_MAX a bucket): the reading lives only while its minute is recorded and it becomes the base (collect_ready).
 * Each service's pair of readings and four count blobs were made when its read ended and freed at the turn's end,
 * among the observer's long-lived blocks, and the holes they left held 4-5 MB of its heap at 10,000 services
 * (/debug/heap: 3,900 free chunks of 209 bytes). */
struct zscratch {
	size_t used;
	unsigned char b[4 * CN_MAX_BUCKETS * CN_ZNUM_MAX];
};

static struct layout *layouts; /* every layout a reading holds, with how many hold it */

static uint64_t layout_hash(const double *le, int n)
{
	uint64_t h = 1469598103934665603ull;
	const unsigned char *b = (const unsigned char *)le;
	for (size_t i = 0; i < (size_t)n * sizeof *le; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static struct layout *layout_get(const double *le, int n)
{
	uint64_t h = layout_hash(le, n);
	for (struct layout *l = layouts; l; l = l->next)
		if (l->hash == h && l->n == n && memcmp(l->le, le, (size_t)n * sizeof *le) == 0) {
			l->refs++;
			return l;
		}
	struct layout *l = malloc(sizeof *l + (size_t)n * sizeof *le);
	if (!l)
		return NULL;
	l->hash = h;
	l->n = n;
	l->refs = 1;
	memcpy(l->le, le, (size_t)n * sizeof *le);
	l->next = layouts;
	layouts = l;
	return l;
}

static void layout_put(struct layout *l)
{
	if (!l || --l->refs > 0)
		return;
	for (struct layout **pp = &layouts; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	free(l);
}

/* One slot's reading at a boundary: what a minute's deltas need, about 100 bytes and the buckets (a struct
 * cn_sample is 3.8 kB, and the observer keeps one per slot of every service). */
struct reading {
	bool ok;
	char *why;                 /* a failed read's reason (NULL: none, or out of memory) */
	double requests, errors;
	struct kept_hist lat, ttft;
};

/* What the observer keeps per service between two boundaries. */
struct watched {
	char name[CN_NAME_MAX];
	int64_t version_id;
	struct cn_metrics *m;
	char *slots;               /* the slots' names, for notes: "blue\0green\0" (slot_name); NULL until read */
	unsigned char *sla_z;      /* the service's SLA contract packed (cn_zpack: 12.6 kB, mostly empty objective and
				    * credit slots, in a few hundred bytes; sla_of unpacks it); NULL: no objectives */
	size_t sla_z_len;
	int live_slot;
	int64_t base_k;            /* the boundary of the base reading; -1: none */
	struct reading base[2];
	struct reading *cur;       /* [2]: this boundary's, while collect_ready records its minute and makes it the
				    * base; NULL otherwise: no service holds two pairs */
	bool read;                 /* this turn's read was started and not yet collected */
	bool got;                  /* cur holds this boundary's reading */
	bool seen;                 /* still a service (this turn's list) */
};

struct batch;

struct observer {
	struct daemon *d;
	struct cn_store *st;
	struct cn_metrics_group *group;
	struct watched *w;
	size_t n, cap;
	int64_t minute_ms;
	struct batch *batch;       /* NULL (out of memory at start): every minute is recorded alone */
	struct cn_sla_contract *sla_scratch; /* sla_of's; made at its first use */
	bool warned_alloc;         /* out of memory for the watched list was logged */
};

static void hist_drop(struct kept_hist *k)
{
	layout_put(k->le);
	if (k->zcap)
		free(k->z);
	memset(k, 0, sizeof *k);
}

#define KEPT_ROUND 16 /* a base's counts' allocation, in steps of this: the next minute's mostly fit in place */

/* Puts len bytes of counts into base histogram k's own allocation, in place while they fit. Returns 0, or -1 when
 * out of memory (k is then none). */
static int z_place(struct kept_hist *k, const unsigned char *buf, size_t len)
{
	CN_BUG_ON(!k->zcap && k->z);
	if (len > k->zcap || len + 4 * KEPT_ROUND < k->zcap) {
		size_t cap = (len + KEPT_ROUND - 1) / KEPT_ROUND * KEPT_ROUND;
		unsigned char *z = cap ? realloc(k->z, cap) : NULL;
		if (cap && !z) {
			hist_drop(k);
			return -1;
		}
		if (!cap)
			free(k->z);
		k->z = z;
		k->zcap = (uint16_t)cap;
	}
	if (len)
		memcpy(k->z, buf, len);
	k->zlen = (uint16_t)len;
	return 0;
}

/* Keeps h as the boundary's histogram k (empty), its counts in zs (out of memory for its bounds: as none, and that
 * minute has no figure from it). */
static void hist_keep(struct kept_hist *k, const struct cn_histogram *h, struct zscratch *zs)
{
	int n = h->nbuckets > 0 && h->nbuckets <= CN_MAX_BUCKETS ? h->nbuckets : 0;
	CN_BUG_ON(k->le || k->z);
	if (n && !(k->le = layout_get(h->le, n)))
		return;
	k->n = n;
	unsigned char buf[CN_MAX_BUCKETS * CN_ZNUM_MAX];
	size_t len = 0;
	for (int i = 0; i < k->n; i++)
		len = cn_znum_put(buf, len, i ? h->count[i - 1] : 0, h->count[i]);
	CN_BUG_ON(len > sizeof zs->b - zs->used);
	k->z = zs->b + zs->used;
	zs->used += len;
	memcpy(k->z, buf, len);
	k->zlen = (uint16_t)len;
	k->sum = h->sum;
}

/* Makes base histogram dst the boundary's src (whose layout reference it takes; src is left empty). */
static void hist_take(struct kept_hist *dst, struct kept_hist *src)
{
	if (dst->le != src->le) {
		layout_put(dst->le);
		dst->le = src->le;
	} else {
		layout_put(src->le);
	}
	src->le = NULL;
	dst->n = src->n;
	dst->sum = src->sum;
	if (z_place(dst, src->z, src->zlen) < 0)
		dst->n = 0;
	src->z = NULL;
	src->zlen = 0;
	src->n = 0;
}

static void hist_load(struct cn_histogram *h, const struct kept_hist *k)
{
	size_t at = 0;
	h->nbuckets = k->n;
	h->sum = k->sum;
	for (int i = 0; i < k->n; i++) {
		h->le[i] = k->le->le[i];
		CN_BUG_ON(cn_znum_get(k->z, k->zlen, &at, i ? h->count[i - 1] : 0, &h->count[i]) < 0);
	}
	CN_BUG_ON(at != k->zlen);
}

/* Keeps sample s as the boundary's reading r (empty), its counts in zs (a histogram out of memory is kept as none:
 * that minute has no latency figure). */
static void reading_keep(struct reading *r, const struct cn_sample *s, struct zscratch *zs)
{
	r->ok = s->ok;
	r->why = s->ok ? NULL : strdup(s->why);
	r->requests = s->requests;
	r->errors = s->errors;
	hist_keep(&r->lat, &s->latency, zs);
	hist_keep(&r->ttft, &s->ttft, zs);
}

/* Makes base reading dst the boundary's src, which is left empty. */
static void reading_take(struct reading *dst, struct reading *src)
{
	dst->ok = src->ok;
	free(dst->why);
	dst->why = src->why;
	src->why = NULL;
	dst->requests = src->requests;
	dst->errors = src->errors;
	hist_take(&dst->lat, &src->lat);
	hist_take(&dst->ttft, &src->ttft);
}

/* Back into the fields of s that slot_minute reads. */
static void reading_load(struct cn_sample *s, const struct reading *r)
{
	s->ok = r->ok;
	snprintf(s->why, sizeof s->why, "%s", r->why ? r->why : "");
	s->requests = r->requests;
	s->errors = r->errors;
	hist_load(&s->latency, &r->lat);
	hist_load(&s->ttft, &r->ttft);
}

static void reading_free(struct reading *r)
{
	free(r->why);
	hist_drop(&r->lat);
	hist_drop(&r->ttft);
	memset(r, 0, sizeof *r);
}

static void cur_free(struct watched *w)
{
	if (w->cur) /* (the pair is collect_ready's, its counts in its scratch) */
		for (int i = 0; i < 2; i++)
			reading_free(&w->cur[i]);
	w->cur = NULL;
}

static void watched_free(struct watched *w)
{
	cn_metrics_close(w->m);
	free(w->sla_z);
	free(w->slots);
	for (int i = 0; i < 2; i++)
		reading_free(&w->base[i]);
	cur_free(w);
	w->m = NULL;
	w->sla_z = NULL;
	w->sla_z_len = 0;
	w->slots = NULL;
}

static const char *slot_name(const struct watched *w, int i)
{
	if (!w->slots)
		return "?";
	return i == 0 ? w->slots : w->slots + strlen(w->slots) + 1;
}

/* The watched entry of target t: o->w[found], or new (found -1); its reader reopened when the service's version
 * changed. NULL when the stored service cannot be read (logged). */
static struct watched *watch(struct observer *o, const struct cn_sla_target *t, long found)
{
	struct watched *w = found >= 0 ? &o->w[found] : NULL;
	if (!w) {
		if (o->n == o->cap) {
			size_t cap = o->cap ? o->cap * 2 : 16;
			struct watched *nw = realloc(o->w, cap * sizeof *nw);
			if (!nw) {
				if (!o->warned_alloc)
					dlog("error", "sla.error", dstr("service", t->name),
					     dstr("error", "out of memory for the services the SLA ledger watches; "
						  "services beyond this one get no ledger minutes until memory is freed"));
				o->warned_alloc = true;
				return NULL;
			}
			o->w = nw;
			o->cap = cap;
		}
		w = &o->w[o->n++];
		memset(w, 0, sizeof *w);
		snprintf(w->name, sizeof w->name, "%s", t->name);
		w->base_k = -1;
	}
	w->seen = true;
	w->live_slot = t->live_slot;
	if (w->m && w->version_id == t->version_id)
		return w;
	watched_free(w);
	w->base_k = -1; /* another version may read other series: start again */
	struct cn_err err = {0};
	struct cn_service *svc = calloc(1, sizeof *svc);
	if (!svc || !t->source || cn_service_parse(t->source, strlen(t->source), "stored service", svc, &err) < 0 ||
	    !(w->m = cn_metrics_open(svc, &err)) ||
	    (svc->sla.nobjectives > 0 && cn_zpack(&svc->sla, sizeof svc->sla, &w->sla_z, &w->sla_z_len) < 0)) {
		dlog("error", "sla.error", dstr("service", t->name), dstr("error", err.msg[0] ? err.msg : "out of memory"));
		watched_free(w);
		free(svc);
		return NULL;
	}
	/* the reader keeps what it reads; of the service only the slots' names and the SLA stay */
	size_t l0 = strlen(svc->slots[0].name), l1 = strlen(svc->slots[1].name);
	if ((w->slots = malloc(l0 + l1 + 2))) {
		memcpy(w->slots, svc->slots[0].name, l0 + 1);
		memcpy(w->slots + l0 + 1, svc->slots[1].name, l1 + 1);
	}
	free(svc);
	w->version_id = t->version_id;
	return w;
}

/* Drops the services that are gone. */
static void forget_unseen(struct observer *o)
{
	for (size_t i = 0; i < o->n;) {
		if (!o->w[i].seen) {
			watched_free(&o->w[i]);
			o->w[i] = o->w[--o->n];
		} else {
			o->w[i++].seen = false;
		}
	}
}

/* The minute between base and cur of one slot: adds its deltas into rec. Returns NULL when it adds cleanly, else the
 * reason the slot's minute cannot be told. */
static const char *slot_minute(const struct cn_sample *base, const struct cn_sample *cur, double *req, double *errs,
			       struct cn_histogram *lat, bool *lat_ok, struct cn_histogram *ttft, bool *ttft_ok)
{
	double r, e;
	struct cn_histogram hl, ht;
	if (!cur->ok)
		return cur->why[0] ? cur->why : "the read failed";
	if (!base->ok)
		return "no reading at the minute's start";
	enum cn_delta dr = cn_counter_delta(cur->requests, base->requests, &r);
	enum cn_delta de = cn_counter_delta(cur->errors, base->errors, &e);
	if (dr == CN_DELTA_MISSING || de == CN_DELTA_MISSING)
		return "the request or error counter is missing";
	if (dr == CN_DELTA_RESET || de == CN_DELTA_RESET)
		return "a counter went down (a server restarted)";
	*req += r;
	*errs += e;
	enum cn_delta dl = cn_histogram_delta(&cur->latency, &base->latency, &hl);
	enum cn_delta dt = cn_histogram_delta(&cur->ttft, &base->ttft, &ht);
	if (dl != CN_DELTA_OK || !cn_histogram_accumulate(lat, &hl))
		*lat_ok = false;
	if (dt != CN_DELTA_OK || !cn_histogram_accumulate(ttft, &ht))
		*ttft_ok = false;
	return NULL;
}

#define US_PER_MIN 60000000LL
/* Reads out at once: a minute's readings need not be taken within milliseconds of each other (they start spread
 * over SLA_SPREAD_DIV of the minute, and a read out of time is only a minute without a figure), and each read out
 * holds its two samples (7.6 kB) and each of its transfers libcurl's buffers (16 kB and more) and a parser: about
 * 60 kB a read. The observer's thread runs niced, so on a busy machine its reads wait to be collected and as many
 * are out as this allows: at 128, canaryd's RSS rose by 9 MB for the 15 s of every turn at N = 10,000 (bench/scale.sh:
 * 62 -> 71 MB). At 32, 10,000 services are read in 3 s when pages answer within 10 ms, and a page that hangs holds
 * one of the 32 for its timeout. The loop's group keeps the default, CN_METRICS_GROUP_MAX_INFLIGHT. */
#define SLA_READS_AT_ONCE 32

/* "2026-11-30T23:55:00Z" for us since the epoch. */
static const char *iso_time(int64_t us, char *out, size_t size)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "1970-01-01T00:00:00Z");
	return out;
}

/* The document canary.sla_window_missed records for window win of objective ob (its real times start_us, end_us). */
static char *miss_json(const struct watched *w, const char *contract, const struct cn_sla_objective *ob,
		       const struct cn_sla_window *win, int64_t start_us, int64_t end_us)
{
	char ws[32], we[32], vt[64], lt[64];
	double limit = ob->metric == CN_SLA_AVAILABILITY ? ob->min : (double)ob->max_ms / 1000.0;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:f, s:f, s:i, s:I}", "contract",
			      contract, "objective", ob->name, "metric", cn_sla_metric_name(ob->metric), "window",
			      ob->window, "window_start", iso_time(start_us, ws, sizeof ws), "window_end",
			      iso_time(end_us, we, sizeof we), "state", cn_sla_wstate_name(win->state), "value_text",
			      cn_sla_value_text(ob, win->value, "no requests", vt, sizeof vt), "limit_text",
			      cn_sla_value_text(ob, limit, "-", lt, sizeof lt), "total", win->total, "bad", win->bad,
			      "nodata_minutes", win->nodata_minutes, "service_version", (json_int_t)w->version_id);
	if (!o)
		return NULL;
	json_object_set_new(o, "value", isfinite(win->value) ? json_real(win->value) : json_null());
	json_object_set_new(o, "limit", json_real(limit));
	if (ob->metric != CN_SLA_AVAILABILITY)
		json_object_set_new(o, "quantile", json_real(ob->quantile));
	char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

/* Service w's SLA contract, unpacked into the observer's scratch (valid until the next call), or NULL: none, or out
 * of memory (logged; its windows are then judged by `canaryctl sla report` alone). */
static const struct cn_sla_contract *sla_of(struct observer *o, const struct watched *w)
{
	if (!w->sla_z)
		return NULL;
	if (!o->sla_scratch && !(o->sla_scratch = malloc(sizeof *o->sla_scratch))) {
		dlog("error", "sla.error", dstr("service", w->name), dstr("error", "out of memory for its SLA contract"));
		return NULL;
	}
	/* our own packing of a struct of this size: anything else is a bug, not bad input */
	CN_BUG_ON(cn_zunpack(w->sla_z, w->sla_z_len, o->sla_scratch, sizeof *o->sla_scratch) < 0);
	return o->sla_scratch;
}

/* The longest window (in minutes) of contract c that minute m closes; 0: none (or no contract). */
static int64_t closing_window(const struct cn_sla_contract *c, int64_t m)
{
	int64_t longest = 0;
	for (int i = 0; c && i < c->nobjectives; i++) {
		int64_t per = c->objectives[i].window_ms / CN_SLA_MINUTE_MS;
		if (per > 0 && (m + 1) % per == 0 && per > longest)
			longest = per;
	}
	return longest;
}

/* In the transaction that recorded service w's minute m (minutes of o->minute_ms since the epoch): judges every
 * window of its contract's objectives that this minute closes, with the core's arithmetic (as `canaryctl sla report`
 * does), and records each missed one (canary.sla_window_missed: once per window). Month-long objectives are judged
 * by the report, not here. Returns 0 or -code. */
static int judge_closed_windows(struct observer *o, struct watched *w, int64_t m, struct cn_err *err)
{
	const struct cn_sla_contract *c = sla_of(o, w);
	int64_t longest = closing_window(c, m), unit_us = o->minute_ms * 1000;
	if (longest == 0)
		return 0;
	struct cn_sla_data *d = NULL;
	struct cn_sla_minute *rows = NULL;
	struct cn_sla_contract *one = malloc(sizeof *one);
	int rc = -CN_EINTERNAL;
	if (!one) {
		cn_fail(err, CN_EINTERNAL, "out of memory judging the SLA of service '%s'", w->name);
		goto out;
	}
	if ((rc = cn_store_sla_read(o->st, w->name, (m + 1 - longest) * unit_us, (m + 1) * unit_us, &d, err)) < 0)
		goto out;
	/* minutes of the ledger as the core counts them: a test's short minutes become whole ones */
	if (!(rows = calloc(d->ledger.n ? d->ledger.n : 1, sizeof *rows))) {
		rc = cn_fail(err, CN_EINTERNAL, "out of memory judging the SLA of service '%s'", w->name);
		goto out;
	}
	for (size_t i = 0; i < d->ledger.n; i++) {
		rows[i] = d->ledger.minutes[i];
		rows[i].minute_us = rows[i].minute_us / unit_us * US_PER_MIN;
	}
	struct cn_sla_ledger l = d->ledger;
	l.minutes = rows;
	for (int i = 0; i < c->nobjectives; i++) {
		const struct cn_sla_objective *ob = &c->objectives[i];
		int64_t per = ob->window_ms / CN_SLA_MINUTE_MS;
		if (per <= 0 || (m + 1) % per != 0)
			continue;
		*one = *c;
		one->objectives[0] = *ob;
		one->nobjectives = 1;
		struct cn_sla_result *r = NULL;
		int64_t end = (m + 1) * US_PER_MIN;
		if ((rc = cn_sla_evaluate(one, &l, end - per * US_PER_MIN, end, end, &r, err)) < 0)
			goto out;
		const struct cn_sla_window *win = &r->objectives[0].windows[0];
		/* a window without numbers is told only when canaryd looked and could not measure (a row without data,
		 * e.g. the live slot's /metrics down), not for minutes nobody observed (a restart of every daemon) */
		int unmeasured = 0;
		for (size_t j = 0; j < l.n; j++)
			unmeasured += !rows[j].data && rows[j].minute_us >= end - per * US_PER_MIN && rows[j].minute_us < end;
		bool missed = win->state == CN_SLA_MISSED ||
			      (win->state == CN_SLA_NODATA && c->no_data == CN_SLA_NODATA_MISS && unmeasured > 0);
		char *doc = missed ? miss_json(w, c->name, ob, win, (m + 1 - per) * unit_us, (m + 1) * unit_us) : NULL;
		if (missed && !doc) {
			cn_sla_result_free(r);
			rc = cn_fail(err, CN_EINTERNAL, "out of memory judging the SLA of service '%s'", w->name);
			goto out;
		}
		cn_sla_result_free(r);
		if (doc) {
			rc = cn_store_sla_window_missed(o->st, w->name, doc, err);
			if (rc == 1)
				dlog("warn", "sla.window_missed", dstr("service", w->name), dstr("objective", ob->name),
				     dstr("miss", doc));
			free(doc);
			if (rc < 0)
				goto out;
		}
	}
	rc = 0;
out:
	free(rows);
	free(one);
	cn_sla_data_free(d);
	return rc;
}

/* Service w's minute k - 1 from the readings at boundaries k - 1 (w->base) and k (w->cur), into *rec; the histograms
 * and the note it points to are the caller's. */
static void minute_of(const struct watched *w, struct cn_sla_record *rec, struct cn_histogram *lat,
		      struct cn_histogram *ttft, char *note, size_t note_size)
{
	bool lat_ok = true, ttft_ok = true;
	double req = 0, errs = 0;
	int live = w->live_slot == 1 ? 1 : 0;
	static _Thread_local struct cn_sample base[2], cur[2]; /* 15 kB: not on the thread's stack */
	lat->nbuckets = 0;
	ttft->nbuckets = 0;
	note[0] = '\0';
	CN_BUG_ON(!w->cur); /* a minute ends only at a boundary whose reading was collected */
	for (int i = 0; i < 2; i++) {
		reading_load(&base[i], &w->base[i]);
		reading_load(&cur[i], &w->cur[i]);
	}
	*rec = (struct cn_sla_record){.data = true};
	const char *why = slot_minute(&base[live], &cur[live], &req, &errs, lat, &lat_ok, ttft, &ttft_ok);
	if (why) {
		snprintf(note, note_size, "live slot %s: %s", slot_name(w, live), why);
		*rec = (struct cn_sla_record){.data = false, .note = note};
		return;
	}
	/* the idle slot counts when it answers both times (a rollout's candidate takes traffic there) */
	double r2 = req, e2 = errs;
	static _Thread_local struct cn_histogram l2, t2;
	l2 = *lat;
	t2 = *ttft;
	bool lok = lat_ok, tok = ttft_ok;
	if (!slot_minute(&base[1 - live], &cur[1 - live], &r2, &e2, &l2, &lok, &t2, &tok)) {
		req = r2;
		errs = e2;
		*lat = l2;
		*ttft = t2;
		lat_ok = lok;
		ttft_ok = tok;
	}
	rec->requests = req;
	rec->errors = errs;
	rec->latency = lat_ok && lat->nbuckets > 1 ? lat : NULL;
	rec->ttft = ttft_ok && ttft->nbuckets > 1 ? ttft : NULL;
}

/* Counts and logs how recording service w's minute went (rc as cn_store_sla_record returns). */
static void minute_done(struct observer *o, const struct watched *w, int64_t minute_us, bool data, const char *note,
			int rc, const struct cn_err *err)
{
	if (rc < 0) {
		atomic_fetch_add(&o->d->stats.sla_errors, 1);
		dlog("error", "sla.store_error", dstr("service", w->name), dstr("error", err->msg));
		return;
	}
	if (rc == 1) {
		atomic_fetch_add(data ? &o->d->stats.sla_recorded : &o->d->stats.sla_nodata, 1);
		if (!data)
			dlog("warn", "sla.no_data", dstr("service", w->name), dint("minute_ms", minute_us / 1000),
			     dstr("reason", note));
	}
}

/* Records service w's minute k - 1 with the windows it closes, in one transaction of its own. */
static void record_minute(struct observer *o, struct watched *w, int64_t k)
{
	static _Thread_local struct cn_histogram lat, ttft;
	char note[CN_WHY_MAX + 64];
	struct cn_sla_record rec;
	minute_of(w, &rec, &lat, &ttft, note, sizeof note);
	struct cn_err err = {0};
	int64_t minute_us = (k - 1) * o->minute_ms * 1000;
	int rc = cn_store_begin(o->st, &err);
	if (rc == 0)
		rc = cn_store_sla_record(o->st, w->name, minute_us, &rec, &err);
	if (rc == 1 && judge_closed_windows(o, w, k - 1, &err) < 0)
		rc = -err.code;
	if (rc >= 0 && cn_store_commit(o->st, &err) < 0)
		rc = -err.code;
	if (rc < 0)
		cn_store_rollback(o->st);
	minute_done(o, w, minute_us, rec.data, note, rc, &err);
}

/* Minutes recorded together (cn_store_sla_record_batch): one statement per SLA_BATCH services, not one each. */
#define SLA_BATCH 256

struct batch {
	struct cn_sla_batch *b;
	size_t w[SLA_BATCH];             /* the watched entry of each minute */
	bool data[SLA_BATCH];
	char note[SLA_BATCH][CN_WHY_MAX + 64];
	int rc[SLA_BATCH];
	struct cn_err err[SLA_BATCH];
};

static void batch_flush(struct observer *o, struct batch *bt, int64_t minute_us)
{
	size_t n = bt ? cn_sla_batch_len(bt->b) : 0;
	if (n == 0)
		return;
	if (cn_store_sla_record_batch(o->st, bt->b, bt->rc, bt->err) < 0) {
		/* the database is gone: one line for the batch, not one per service */
		atomic_fetch_add(&o->d->stats.sla_errors, n);
		dlog("error", "sla.store_error", dint("minutes", (int64_t)n), dstr("error", bt->err[0].msg));
		return;
	}
	for (size_t i = 0; i < n; i++)
		minute_done(o, &o->w[bt->w[i]], minute_us, bt->data[i], bt->note[i], bt->rc[i], &bt->err[i]);
}

/* Records service w's minute k - 1 in the batch when the minute closes none of its contract's windows (most
 * minutes), else at once in a transaction of its own with the windows it closes. */
static void minute_to_batch(struct observer *o, struct batch *bt, size_t wi, int64_t k)
{
	struct watched *w = &o->w[wi];
	int64_t minute_us = (k - 1) * o->minute_ms * 1000;
	if (!bt || closing_window(sla_of(o, w), k - 1) > 0) {
		record_minute(o, w, k);
		return;
	}
	static _Thread_local struct cn_histogram lat, ttft;
	size_t n = cn_sla_batch_len(bt->b);
	struct cn_sla_record rec;
	struct cn_err err = {0};
	minute_of(w, &rec, &lat, &ttft, bt->note[n], sizeof bt->note[n]);
	if (cn_sla_batch_add(bt->b, w->name, minute_us, &rec, &err) < 0) {
		minute_done(o, w, minute_us, rec.data, bt->note[n], -err.code, &err);
		return;
	}
	bt->w[n] = wi;
	bt->data[n] = rec.data;
	if (n + 1 == SLA_BATCH)
		batch_flush(o, bt, minute_us);
}

/* Collects the reads of boundary k that finished: each one's samples end its service's minute k - 1 at once (into the
 * batch, or recorded alone when they close a window) and become the service's base for the next minute, so the
 * observer holds no reading of this boundary beyond its read (a finished read's samples are 7.6 kB, its compact
 * readings about 200 bytes, and 10,000 services' were 3 MB for the turn). */
static void collect_ready(struct observer *o, int64_t k)
{
	static _Thread_local struct cn_sample cur[2]; /* 7.6 kB: not on the thread's stack */
	static _Thread_local struct reading now[2];
	static _Thread_local struct zscratch zs;
	struct cn_metrics *m;
	while ((m = cn_metrics_group_next(o->group)) != NULL) {
		size_t i = cn_metrics_tag(m);
		CN_BUG_ON(i >= o->n || o->w[i].m != m || !o->w[i].read);
		struct watched *w = &o->w[i];
		w->read = false;
		if (cn_metrics_collect(m, cur) < 0) {
			cn_metrics_cancel(m);
			continue;
		}
		CN_BUG_ON(w->cur);
		zs.used = 0;
		w->cur = now;
		reading_keep(&now[0], &cur[0], &zs);
		reading_keep(&now[1], &cur[1], &zs);
		/* the batch holds its minute's arguments as text: base and cur may move on */
		if (w->base_k == k - 1)
			minute_to_batch(o, o->batch, i, k);
		/* this boundary's reading is the next minute's base */
		for (int s = 0; s < 2; s++)
			reading_take(&w->base[s], &now[s]);
		cur_free(w);
		w->base_k = k;
		w->got = true;
	}
}

/* One boundary k: read every service's slots at once, then record each one's minute k - 1. */
/* Observers that read each service (rendezvous hashing over the live ones, canary.sla_observers): one may stop or
 * die and every service still has an observer with its previous reading. */
#define SLA_COPIES 2

/* The score of observer owner for service: the SLA_COPIES highest read it. The same on every replica. */
static uint64_t score(const char *owner, const char *service)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)owner; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	h = (h ^ 0xff) * 0x100000001b3ull; /* no byte of a name: "ab"+"c" and "a"+"bc" differ */
	for (const unsigned char *p = (const unsigned char *)service; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	h ^= h >> 33; /* FNV's low bits mix poorly: a final avalanche (MurmurHash3's fmix64) */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* Whether this daemon reads service: always when it is not in the list (its registration failed) or when there
 * are no more observers than copies. */
static bool mine(const struct cn_sla_targets *t, long self, const char *owner, const char *service)
{
	if (self < 0 || t->nobservers <= SLA_COPIES)
		return true;
	uint64_t s = score(owner, service);
	int above = 0;
	for (size_t j = 0; j < t->nobservers && above < SLA_COPIES; j++) {
		if ((long)j == self)
			continue;
		uint64_t sj = score(t->observers[j], service);
		above += sj > s || (sj == s && strcmp(t->observers[j], owner) < 0);
	}
	return above < SLA_COPIES;
}

struct by_name {
	const char *name;
	long i;
};

static int by_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct by_name *)a)->name, ((const struct by_name *)b)->name);
}

/* Watches the services of this turn: each one's entry is found by name (a sorted index, not a search of the list per
 * service: 10,000 services made that 50 million comparisons a minute), and the sources of the versions not parsed
 * yet (a new service, a new version) are read in one query, not every service's every minute. */
static bool watch_all(struct observer *o, struct cn_sla_targets *t)
{
	bool ok = false;
	struct cn_err err = {0};
	struct by_name *idx = malloc((o->n ? o->n : 1) * sizeof *idx);
	long *found = malloc((t->n ? t->n : 1) * sizeof *found);
	bool *need = calloc(t->n ? t->n : 1, sizeof *need);
	if (!idx || !found || !need) {
		dlog("error", "sla.error", dstr("error", "out of memory matching the services to observe; this minute "
						      "is not read"));
		goto out;
	}
	for (size_t i = 0; i < o->n; i++)
		idx[i] = (struct by_name){o->w[i].name, (long)i};
	qsort(idx, o->n, sizeof *idx, by_name_cmp);
	long self = -1;
	for (size_t j = 0; j < t->nobservers && self < 0; j++)
		if (strcmp(t->observers[j], o->d->cfg.owner) == 0)
			self = (long)j;
	for (size_t i = 0; i < t->n; i++) {
		if (!mine(t, self, o->d->cfg.owner, t->items[i].name)) {
			found[i] = -2; /* another observer's: not watched, its reader goes (forget_unseen) */
			continue;
		}
		struct by_name key = {t->items[i].name, -1};
		const struct by_name *hit = o->n ? bsearch(&key, idx, o->n, sizeof *idx, by_name_cmp) : NULL;
		found[i] = hit ? hit->i : -1;
		need[i] = !hit || !o->w[hit->i].m || o->w[hit->i].version_id != t->items[i].version_id;
	}
	if (cn_store_sla_sources(o->st, t, need, &err) < 0)
		dlog("error", "sla.store_error", dstr("error", err.msg));
	for (size_t i = 0; i < t->n; i++) {
		if (found[i] == -2)
			continue;
		if (need[i] && !t->items[i].source) {
			/* its source could not be read (logged once above): a new service waits for the next minute, a
			 * new version is read as the one it replaces for one more */
			if (found[i] >= 0)
				o->w[found[i]].seen = true;
			continue;
		}
		watch(o, &t->items[i], found[i]);
	}
	ok = true;
out:
	free(idx);
	free(found);
	free(need);
	return ok;
}

/* A minute's reads start spread over its first SLA_SPREAD_DIV-th (10 s of 60), each service at its own offset, the
 * same every minute (so each service's minute is still a minute long): a multi-tenant metrics server behind many
 * services, and the rollout loop sharing the CPU, get 20,000 reads over 10 s rather than all at once (bench/scale.sh
 * 10000: the loop's tick lateness p99 rose to 1-1.5 s in the 20 s around each boundary). */
#define SLA_SPREAD_DIV 6

struct start_at {
	int64_t at; /* ms after the turn's start */
	size_t i;
};

static int start_at_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct start_at *)a)->at, y = ((const struct start_at *)b)->at;
	return (x > y) - (x < y);
}

/* Takes t over: the services' list and its query result (1.4 MB at 10,000 services) go before the reads start,
 * which are the observer's peak (RSS 1-2 MB higher for the seconds of the reads when they overlapped). */
static void turn(struct observer *o, struct cn_sla_targets *t, int64_t k)
{
	struct cn_err err = {0};
	bool watching = watch_all(o, t);
	cn_sla_targets_free(t);
	if (!watching) {
		for (size_t i = 0; i < o->n; i++)
			o->w[i].base_k = -1; /* no reading at this boundary: the next one is a base */
		return;
	}
	forget_unseen(o); /* first: the watched list does not move while its reads are out */
	atomic_store(&o->d->stats.sla_watched, (unsigned long long)o->n);
	/* each service's read starts at its own offset into the spread (a hash of its name: the same every minute) */
	int64_t spread = o->minute_ms / SLA_SPREAD_DIV;
	struct start_at *order = malloc((o->n ? o->n : 1) * sizeof *order);
	for (size_t i = 0; i < o->n; i++) {
		o->w[i].got = false;
		o->w[i].read = false;
		int64_t at = spread > 0 ? (int64_t)(score("", o->w[i].name) % (uint64_t)spread) : 0;
		if (order) /* out of memory: every read at once, as with no spread */
			order[i] = (struct start_at){at, i};
	}
	if (order)
		qsort(order, o->n, sizeof *order, start_at_cmp);
	/* every transfer is bounded by its service's timeout; the loop by the spread and the longest of them, and
	 * SIGTERM */
	int64_t t0 = cn_mono_ms(), deadline = t0 + spread + 65000;
	size_t next = 0;
	while ((next < o->n || cn_metrics_group_pending(o->group) > 0) && !*o->d->stop && cn_mono_ms() < deadline) {
		int64_t into = cn_mono_ms() - t0;
		for (; next < o->n && (!order || order[next].at <= into); next++) {
			size_t i = order ? order[next].i : next;
			struct watched *w = &o->w[i];
			if (!w->m) /* its stored service could not be read (logged) */
				continue;
			cn_metrics_set_tag(w->m, i);
			w->read = cn_metrics_start(w->m, o->group, &err) == 0;
			if (!w->read) {
				w->base_k = -1; /* no reading at this boundary: the next one is a base, not a minute's end */
				dlog("error", "sla.error", dstr("service", w->name), dstr("error", err.msg));
			}
		}
		int64_t wait = next < o->n ? order[next].at - into : 200;
		bool fd_ready;
		if (cn_metrics_group_wait(o->group, -1, (int)(wait < 0 ? 0 : wait > 200 ? 200 : wait), &fd_ready,
					  &err) < 0) {
			dlog("error", "sla.error", dstr("error", err.msg));
			break;
		}
		collect_ready(o, k);
	}
	free(order);
	struct batch *bt = o->batch;
	for (size_t i = 0; i < o->n; i++) {
		struct watched *w = &o->w[i];
		if (w->read) { /* stopped or out of time: no reading at this boundary */
			cn_metrics_cancel(w->m);
			w->read = false;
		}
		if (!w->got)
			w->base_k = -1; /* no reading at this boundary: the next one is a base, not a minute's end */
		w->got = false;
	}
	batch_flush(o, bt, (k - 1) * o->minute_ms * 1000);
}

#define RETAIN_ROWS 10000  /* per call: one call holds its locks briefly */
#define RETAIN_CALLS 50    /* per pass: a huge backlog goes over several hours, never all at once */

/* Ledger retention (--sla-retention): at most RETAIN_CALLS x RETAIN_ROWS minutes per pass, each call audited by
 * canary.sla_retain. Returns 0 or -code. */
static int retain(struct observer *o, struct cn_err *err)
{
	for (int i = 0; i < RETAIN_CALLS && !*o->d->stop; i++) {
		int64_t rows = 0;
		int rc = cn_store_sla_retain(o->st, o->d->cfg.sla_retention_days, RETAIN_ROWS, &rows, err);
		if (rc < 0)
			return rc;
		atomic_fetch_add(&o->d->stats.sla_pruned, (unsigned long long)rows);
		if (rows > 0)
			dlog("info", "sla.retention", dint("rows", rows), dint("keep_days", o->d->cfg.sla_retention_days));
		if (rows < RETAIN_ROWS)
			break;
	}
	return 0;
}

static void disconnect(struct observer *o)
{
	cn_store_close(o->st);
	o->st = NULL;
}

/* The observer's nice value: it gives way to the rollout loop when both want the CPU. At 10,000 services a minute's
 * reads are 20,000 pages to parse at once, and the loop's ticks recorded in the 20 s around each boundary were up to a
 * second later at p99 (bench/scale.sh 10000); on a machine with CPU to spare a nice value changes nothing. */
#define SLA_NICE 5

static void *run(void *arg)
{
	struct observer o = {.d = arg, .minute_ms = ((struct daemon *)arg)->cfg.sla_minute_ms};
	struct cn_err err = {0};
	/* Linux gives each thread its own nice value and name (`top -H`, /proc/PID/task/TID/stat); where it refuses,
	 * the thread runs as the others do */
	prctl(PR_SET_NAME, "canaryd-sla", 0, 0, 0);
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SLA_NICE) < 0)
		dlog("warn", "sla.nice", dint("nice", SLA_NICE), dstr("error", strerror(errno)));
	int64_t backoff = 200, last_k = -1, last_retain = -1;
	bool warned_register = false;
	if (!(o.group = cn_metrics_group_new(&err))) {
		dlog("error", "sla.error", dstr("error", err.msg));
		return NULL;
	}
	cn_metrics_group_max_inflight(o.group, SLA_READS_AT_ONCE);
	if ((o.batch = calloc(1, sizeof *o.batch)) && !(o.batch->b = cn_sla_batch_new())) {
		free(o.batch);
		o.batch = NULL;
	}
	while (!*o.d->stop) {
		if (!o.st && !(o.st = cn_store_connect(o.d->cfg.db, &err))) {
			if (!daemon_fd_check("database", err.msg))
				dlog("error", "sla.store_error", dstr("error", err.msg));
			for (int64_t s = 0; s < backoff && !*o.d->stop; s += 100)
				usleep(100 * 1000);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			continue;
		}
		backoff = 200;
		struct cn_sla_targets *t = NULL;
		if (cn_store_sla_targets(o.st, &t, &err) < 0) {
			dlog("error", "sla.store_error", dstr("error", err.msg));
			disconnect(&o);
			continue;
		}
		/* live for three minutes: a missed boundary or two does not hand its share over */
		if (cn_store_sla_observers(o.st, o.d->cfg.owner, 3 * o.minute_ms, t, &err) < 0) {
			if (!warned_register)
				dlog("error", "sla.store_error", dstr("error", err.msg),
				     dstr("effect", "this daemon reads every service's pages until it can register"));
			warned_register = true;
		} else {
			warned_register = false;
		}
		int64_t mono0 = cn_mono_ms();
		int64_t now_ms = t->now_us / 1000, k = now_ms / o.minute_ms, into = now_ms - k * o.minute_ms;
		/* a reading belongs to boundary k only close to it (a quarter of a minute); later it starts again */
		if (k != last_k && into <= o.minute_ms / 4) {
			turn(&o, t, k);
			t = NULL;
		} else if (k != last_k) {
			for (size_t i = 0; i < o.n; i++)
				o.w[i].base_k = -1;
		}
		last_k = k;
		cn_sla_targets_free(t);
		/* retention once an hour (and at start), after the minute's work */
		if (o.d->cfg.sla_retention_days > 0 && (last_retain < 0 || cn_mono_ms() - last_retain >= 3600000)) {
			last_retain = cn_mono_ms();
			if (retain(&o, &err) < 0)
				dlog("error", "sla.store_error", dstr("error", err.msg));
		}
		/* sleep to the next boundary by the database's clock as read above, in slices: SIGTERM is seen at once */
		int64_t until = mono0 + (k + 1) * o.minute_ms - now_ms + 20;
		while (!*o.d->stop) {
			int64_t left = until - cn_mono_ms();
			if (left <= 0)
				break;
			usleep((useconds_t)(left > 100 ? 100 : left) * 1000);
		}
	}
	if (o.st && cn_store_sla_observer_leave(o.st, o.d->cfg.owner, &err) < 0)
		dlog("warn", "sla.store_error", dstr("error", err.msg),
		     dstr("effect", "the other observers take this daemon's services when its registration lapses"));
	for (size_t i = 0; i < o.n; i++)
		watched_free(&o.w[i]);
	free(o.w);
	free(o.sla_scratch);
	if (o.batch)
		cn_sla_batch_free(o.batch->b);
	free(o.batch);
	cn_metrics_group_free(o.group);
	cn_store_close(o.st);
	return NULL;
}

int daemon_sla_start(struct daemon *d, struct cn_err *err)
{
	int rc = daemon_spawn(d, &d->sla, run, "SLA observer", err);
	d->sla_running = rc == 0;
	return rc;
}

void daemon_sla_join(struct daemon *d)
{
	if (d->sla_running)
		pthread_join(d->sla, NULL);
	d->sla_running = false;
}
