/* The SLA ledger in Postgres: record a service-minute through canary.sla_record, read a period back as the core's
 * ledger, list the services to observe, delete old minutes (canary/store_sla.h). Histograms travel as arrays: the
 * bounds once per layout (sla_bounds), each minute's counts per bucket with trailing empty buckets left out. */
#include "canary/store_sla.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/dynbuf.h"
#include "store_int.h"

#define ARRAY_TEXT_MAX (64 * 32)
#define US_SQL(p) "('epoch'::timestamptz + " p "::bigint * interval '1 microsecond')"

/* "{le0,le1,...,Infinity}" into buf. */
static const char *bounds_text(const struct cn_histogram *h, char *buf, size_t size)
{
	size_t used = 0;
	buf[used++] = '{';
	for (int i = 0; i < h->nbuckets && used < size; i++) {
		int n = isinf(h->le[i]) ? snprintf(buf + used, size - used, "%sInfinity", i ? "," : "")
					: snprintf(buf + used, size - used, "%s%.17g", i ? "," : "", h->le[i]);
		if (n < 0 || (size_t)n >= size - used)
			return NULL;
		used += (size_t)n;
	}
	if (used + 2 > size)
		return NULL;
	buf[used++] = '}';
	buf[used] = '\0';
	return buf;
}

/* The per-bucket counts of a cumulative histogram, trailing zeros left out: "{12,3}". */
static const char *counts_text(const struct cn_histogram *h, char *buf, size_t size)
{
	int last = -1;
	double prev = 0;
	for (int i = 0; i < h->nbuckets; i++) {
		if (h->count[i] - prev >= 0.5)
			last = i;
		prev = h->count[i];
	}
	size_t used = 0;
	buf[used++] = '{';
	prev = 0;
	for (int i = 0; i <= last; i++) {
		double c = h->count[i] - prev;
		prev = h->count[i];
		long long v = c > 0 ? llround(c) : 0;
		if (v > 2147483647LL)
			v = 2147483647LL;
		int n = snprintf(buf + used, size - used, "%s%lld", i ? "," : "", v);
		if (n < 0 || (size_t)n >= size - used)
			return NULL;
		used += (size_t)n;
	}
	if (used + 2 > size)
		return NULL;
	buf[used++] = '}';
	buf[used] = '\0';
	return buf;
}

/* The text of canary.sla_record's arguments for one minute (NULL: SQL NULL), in buffers of the caller. */
struct record_args {
	char minute[32], req[32], errs[32], lle[ARRAY_TEXT_MAX], lc[ARRAY_TEXT_MAX], tle[ARRAY_TEXT_MAX],
		tc[ARRAY_TEXT_MAX];
	const char *p[9];
};

static void record_args(struct record_args *a, const char *service, int64_t minute_us, const struct cn_sla_record *rec)
{
	CN_BUG_ON(!service || !rec);
	const char *p[9] = {service, a->minute, NULL, NULL, NULL, NULL, NULL, NULL, rec->note};
	memcpy(a->p, p, sizeof p);
	snprintf(a->minute, sizeof a->minute, "%lld", (long long)minute_us);
	if (!rec->data)
		return;
	snprintf(a->req, sizeof a->req, "%lld", (long long)llround(rec->requests > 0 ? rec->requests : 0));
	snprintf(a->errs, sizeof a->errs, "%lld", (long long)llround(rec->errors > 0 ? rec->errors : 0));
	a->p[2] = a->req;
	a->p[3] = a->errs;
	if (rec->latency && rec->latency->nbuckets > 1) {
		a->p[4] = bounds_text(rec->latency, a->lle, sizeof a->lle);
		a->p[5] = a->p[4] ? counts_text(rec->latency, a->lc, sizeof a->lc) : NULL;
	}
	if (rec->ttft && rec->ttft->nbuckets > 1) {
		a->p[6] = bounds_text(rec->ttft, a->tle, sizeof a->tle);
		a->p[7] = a->p[6] ? counts_text(rec->ttft, a->tc, sizeof a->tc) : NULL;
	}
}

int cn_store_sla_record(struct cn_store *s, const char *service, int64_t minute_us, const struct cn_sla_record *rec,
			struct cn_err *err)
{
	static _Thread_local struct record_args a; /* 8 kB of array text: not on the observer thread's stack */
	record_args(&a, service, minute_us, rec);
	PGresult *r = cn_store_exec(s, "record an SLA minute",
				    "SELECT canary.sla_record($1, " US_SQL("$2") ", $3, $4, $5, $6, $7, $8, $9)", 9, a.p,
				    err);
	if (!r)
		return -err->code;
	int recorded = cn_col_bool(r, 0, 0) ? 1 : 0;
	PQclear(r);
	return recorded;
}

struct cn_sla_batch {
	json_t *docs; /* one array of canary.sla_record's nine arguments (strings or null) per minute */
};

struct cn_sla_batch *cn_sla_batch_new(void)
{
	struct cn_sla_batch *b = calloc(1, sizeof *b);
	if (b && !(b->docs = json_array())) {
		free(b);
		b = NULL;
	}
	return b;
}

void cn_sla_batch_free(struct cn_sla_batch *b)
{
	if (!b)
		return;
	json_decref(b->docs);
	free(b);
}

size_t cn_sla_batch_len(const struct cn_sla_batch *b)
{
	return json_array_size(b->docs);
}

static json_t *args_json(const char *const *p)
{
	json_t *e = json_array();
	for (int i = 0; e && i < 9; i++)
		if (json_array_append_new(e, p[i] ? json_string(p[i]) : json_null()) < 0) {
			json_decref(e);
			return NULL;
		}
	return e;
}

int cn_sla_batch_add(struct cn_sla_batch *b, const char *service, int64_t minute_us, const struct cn_sla_record *rec,
		     struct cn_err *err)
{
	static _Thread_local struct record_args a;
	record_args(&a, service, minute_us, rec);
	json_t *e = args_json(a.p);
	if (!e || json_array_append_new(b->docs, e) < 0)
		return cn_fail(err, CN_EINTERNAL, "out of memory recording the SLA minute of service '%s'", service);
	return 0;
}

/* Every element of docs in one statement: out[k] = 1 or 0 as canary.sla_record answered. */
static int record_docs(struct cn_store *s, const json_t *docs, int *out, struct cn_err *err)
{
	char *text = json_dumps(docs, JSON_COMPACT);
	if (!text)
		return cn_fail(err, CN_EINTERNAL, "out of memory recording SLA minutes");
	const char *p[1] = {text};
	PGresult *r = cn_store_exec(s, "record SLA minutes",
				    "SELECT t.k, canary.sla_record(t.e->>0, " US_SQL("(t.e->>1)") ", (t.e->>2)::bigint, "
				    "(t.e->>3)::bigint, (t.e->>4)::double precision[], (t.e->>5)::integer[], "
				    "(t.e->>6)::double precision[], (t.e->>7)::integer[], t.e->>8) "
				    "FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(e, k)",
				    1, p, err);
	free(text);
	if (!r)
		return -err->code;
	size_t n = json_array_size(docs);
	for (int i = 0; i < PQntuples(r); i++) {
		long long k = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		CN_BUG_ON(k < 1 || (size_t)k > n);
		out[k - 1] = cn_col_bool(r, i, 1) ? 1 : 0;
	}
	PQclear(r);
	return 0;
}

int cn_store_sla_record_batch(struct cn_store *s, struct cn_sla_batch *b, int *rc, struct cn_err *errs)
{
	size_t n = json_array_size(b->docs);
	struct cn_err err = {0};
	if (n == 0)
		return 0;
	if (record_docs(s, b->docs, rc, &err) == 0) {
		json_array_clear(b->docs);
		return 0;
	}
	/* The statement wrote nothing. With the connection gone every minute failed alike; otherwise one of them was
	 * refused (or does not fit a column): each is sent alone, so a refusal costs that minute only. */
	bool down = PQstatus(cn_store_conn(s)) != CONNECTION_OK;
	for (size_t i = 0; i < n; i++) {
		errs[i] = err;
		rc[i] = -err.code;
		if (down)
			continue;
		json_t *one = json_array();
		int v = 0;
		if (!one || json_array_append(one, json_array_get(b->docs, i)) < 0)
			rc[i] = cn_fail(&errs[i], CN_EINTERNAL, "out of memory recording SLA minutes");
		else
			rc[i] = record_docs(s, one, &v, &errs[i]) < 0 ? -errs[i].code : v;
		json_decref(one);
	}
	json_array_clear(b->docs);
	return down ? -err.code : 0;
}

int cn_store_sla_targets(struct cn_store *s, struct cn_sla_targets **out, struct cn_err *err)
{
	struct cn_sla_targets *t = calloc(1, sizeof *t);
	int rc = -CN_EINTERNAL;
	if (!t || !(t->rd = cn_read_new())) {
		cn_fail(err, CN_EINTERNAL, "out of memory reading the services");
		goto out;
	}
	PGresult *r = cn_read_query(t->rd, s, "read the services to observe",
				    "SELECT s.name, s.live_slot, v.id, NULL, " CN_SQL_US("clock_timestamp()")
				    " FROM services s JOIN LATERAL (SELECT id FROM service_versions"
				    " WHERE service = s.name ORDER BY version DESC LIMIT 1) v ON true ORDER BY s.name",
				    0, NULL, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	t->n = (size_t)PQntuples(r);
	if (!(t->items = cn_read_alloc(t->rd, t->n, sizeof *t->items, err))) {
		rc = -err->code;
		goto out;
	}
	t->now_us = CN_TIME_NONE;
	for (int i = 0; i < (int)t->n; i++) {
		t->items[i] = (struct cn_sla_target){cn_col_str(r, i, 0), (int)cn_col_int(r, i, 1), cn_col_int(r, i, 2),
						     cn_col_str(r, i, 3)};
		t->now_us = cn_col_int(r, i, 4);
	}
	if (t->n == 0) {
		PGresult *c = cn_read_query(t->rd, s, "read the database clock",
					    "SELECT " CN_SQL_US("clock_timestamp()"), 0, NULL, err);
		if (!c) {
			rc = -err->code;
			goto out;
		}
		t->now_us = cn_col_int(c, 0, 0);
	}
	*out = t;
	t = NULL;
	rc = 0;
out:
	cn_sla_targets_free(t);
	return rc;
}

struct by_id {
	int64_t id;
	size_t item;
};

static int by_id_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct by_id *)a)->id, y = ((const struct by_id *)b)->id;
	return (x > y) - (x < y);
}

int cn_store_sla_sources(struct cn_store *s, struct cn_sla_targets *t, const bool *need, struct cn_err *err)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += need[i];
	if (n == 0)
		return 0;
	struct by_id *ids = cn_read_alloc(t->rd, n, sizeof *ids, err);
	/* "{1,2,...}": ids are numbers, the literal needs no quoting */
	struct cn_dynbuf lit;
	cn_dynbuf_init(&lit, 24 * n + 16);
	if (!ids)
		return -err->code;
	bool ok = cn_dynbuf_add(&lit, "{", 1) == 0;
	for (size_t i = 0, k = 0; i < t->n; i++) {
		if (!need[i])
			continue;
		ids[k] = (struct by_id){t->items[i].version_id, i};
		ok = ok && cn_dynbuf_addf(&lit, "%s%lld", k ? "," : "", (long long)t->items[i].version_id) == 0;
		k++;
	}
	ok = ok && cn_dynbuf_add(&lit, "}", 1) == 0;
	if (!ok) {
		cn_dynbuf_free(&lit);
		return cn_fail(err, CN_EINTERNAL, "out of memory reading the services' sources");
	}
	qsort(ids, n, sizeof *ids, by_id_cmp);
	const char *p[1] = {cn_dynbuf_ptr(&lit)};
	PGresult *r = cn_read_query(t->rd, s, "read the services' sources",
				    "SELECT id, source FROM service_versions WHERE id = ANY($1::bigint[])", 1, p, err);
	cn_dynbuf_free(&lit);
	if (!r)
		return -err->code;
	for (int i = 0; i < PQntuples(r); i++) {
		struct by_id key = {cn_col_int(r, i, 0), 0};
		const struct by_id *hit = bsearch(&key, ids, n, sizeof *ids, by_id_cmp);
		if (hit)
			t->items[hit->item].source = cn_col_str(r, i, 1);
	}
	return 0;
}

int cn_store_sla_observers(struct cn_store *s, const char *owner, int64_t ttl_ms, struct cn_sla_targets *t,
			   struct cn_err *err)
{
	CN_BUG_ON(!owner || !t || ttl_ms < 0);
	char ttl[32];
	snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
	const char *p[2] = {owner, ttl};
	PGresult *r = cn_read_query(t->rd, s, "register as an SLA observer",
				    "SELECT o FROM canary.sla_observers($1, $2::bigint) AS o", 2, p, err);
	if (!r)
		return -err->code;
	size_t n = (size_t)PQntuples(r);
	const char **names = cn_read_alloc(t->rd, n, sizeof *names, err);
	if (!names)
		return -err->code;
	for (size_t i = 0; i < n; i++)
		names[i] = cn_col_str(r, (int)i, 0);
	t->observers = names;
	t->nobservers = n;
	return 0;
}

int cn_store_sla_observer_leave(struct cn_store *s, const char *owner, struct cn_err *err)
{
	const char *p[1] = {owner};
	return cn_store_run(s, "stop observing the SLA", "SELECT count(*) FROM canary.sla_observers($1, 0)", 1, p, err);
}

void cn_sla_targets_free(struct cn_sla_targets *t)
{
	if (!t)
		return;
	cn_read_free(t->rd);
	free(t);
}

/* Parses a Postgres array's text "{a,b,...}" of numbers into out (at most max); returns how many, or -1. */
static int parse_array(const char *s, double *out, int max)
{
	int n = 0;
	if (!s || *s != '{')
		return -1;
	s++;
	if (*s == '}')
		return 0;
	for (;;) {
		char *end = NULL;
		errno = 0;
		double v = strtod(s, &end);
		if (end == s || errno == ERANGE || n >= max)
			return -1;
		out[n++] = v;
		if (*end == '}')
			return n;
		if (*end != ',')
			return -1;
		s = end + 1;
	}
}

static const struct cn_sla_bounds *bounds_of(const struct cn_sla_ledger *l, int id)
{
	for (size_t i = 0; i < l->nbounds; i++)
		if (l->bounds[i].id == id)
			return &l->bounds[i];
	return NULL;
}

/* Expands a minute's stored counts (trailing zeros left out) to its bounds' length into arena; NULL when absent. */
static const int32_t *expand(const struct cn_sla_ledger *l, int id, const char *text, int32_t **arena)
{
	const struct cn_sla_bounds *b = id > 0 ? bounds_of(l, id) : NULL;
	double v[CN_MAX_BUCKETS];
	if (!b || !text)
		return NULL;
	int n = parse_array(text, v, b->n);
	if (n < 0)
		return NULL;
	int32_t *c = *arena;
	for (int i = 0; i < b->n; i++)
		c[i] = i < n ? (int32_t)v[i] : 0;
	*arena += b->n;
	return c;
}

int cn_store_sla_read(struct cn_store *s, const char *service, int64_t from_us, int64_t to_us,
		      struct cn_sla_data **out, struct cn_err *err)
{
	struct cn_sla_data *d = calloc(1, sizeof *d);
	char from[32], to[32];
	int rc = -CN_EINTERNAL;
	snprintf(from, sizeof from, "%lld", (long long)from_us);
	snprintf(to, sizeof to, "%lld", (long long)to_us);
	const char *p[3] = {service, from, to};
	if (!d || !(d->rd = cn_read_new())) {
		cn_fail(err, CN_EINTERNAL, "out of memory reading the SLA ledger");
		goto out;
	}
	PGresult *b = cn_read_query(d->rd, s, "read the SLA ledger's bucket bounds",
				    "SELECT id, le::text, " CN_SQL_US("clock_timestamp()") " FROM sla_bounds WHERE id IN"
				    " (SELECT lat_bounds FROM sla_minutes WHERE service = $1 AND minute >= " US_SQL("$2")
				    " AND minute < " US_SQL("$3") " UNION SELECT ttft_bounds FROM sla_minutes WHERE"
				    " service = $1 AND minute >= " US_SQL("$2") " AND minute < " US_SQL("$3") ")"
				    " UNION ALL SELECT 0, NULL, " CN_SQL_US("clock_timestamp()") " ORDER BY 1",
				    3, p, err);
	if (!b) {
		rc = -err->code;
		goto out;
	}
	int nb = PQntuples(b) - 1; /* the first row (id 0) only carries the clock */
	struct cn_sla_bounds *bounds = cn_read_alloc(d->rd, (size_t)(nb > 0 ? nb : 1), sizeof *bounds, err);
	double *les = cn_read_alloc(d->rd, (size_t)(nb > 0 ? nb : 1) * CN_MAX_BUCKETS, sizeof *les, err);
	if (!bounds || !les) {
		rc = -err->code;
		goto out;
	}
	d->now_us = cn_col_int(b, 0, 2);
	for (int i = 0; i < nb; i++) {
		struct cn_sla_bounds *x = &bounds[i];
		x->id = (int)cn_col_int(b, i + 1, 0);
		x->le = les + (size_t)i * CN_MAX_BUCKETS;
		x->n = parse_array(cn_col_str(b, i + 1, 1), les + (size_t)i * CN_MAX_BUCKETS, CN_MAX_BUCKETS);
		if (x->n < 2) {
			rc = cn_fail(err, CN_EINTERNAL, "sla_bounds %d: cannot read its bounds", x->id);
			goto out;
		}
	}
	d->ledger.bounds = bounds;
	d->ledger.nbounds = (size_t)(nb > 0 ? nb : 0);
	PGresult *r = cn_read_query(d->rd, s, "read the SLA ledger",
				    "SELECT " CN_SQL_US("minute") ", requests, errors, lat_bounds, lat::text,"
				    " ttft_bounds, ttft::text, note FROM sla_minutes WHERE service = $1"
				    " AND minute >= " US_SQL("$2") " AND minute < " US_SQL("$3") " ORDER BY minute",
				    3, p, err);
	if (!r) {
		rc = -err->code;
		goto out;
	}
	size_t n = (size_t)PQntuples(r), ncounts = 0;
	for (int i = 0; i < (int)n; i++) {
		const struct cn_sla_bounds *lb = bounds_of(&d->ledger, (int)cn_col_int(r, i, 3));
		const struct cn_sla_bounds *tb = bounds_of(&d->ledger, (int)cn_col_int(r, i, 5));
		ncounts += (size_t)(lb ? lb->n : 0) + (size_t)(tb ? tb->n : 0);
	}
	struct cn_sla_minute *m = cn_read_alloc(d->rd, n, sizeof *m, err);
	int32_t *arena = cn_read_alloc(d->rd, ncounts, sizeof *arena, err);
	if (!m || !arena) {
		rc = -err->code;
		goto out;
	}
	for (int i = 0; i < (int)n; i++) {
		struct cn_sla_minute *x = &m[i];
		x->minute_us = cn_col_int(r, i, 0);
		x->data = !PQgetisnull(r, i, 1);
		x->requests = x->data ? cn_col_real(r, i, 1) : NAN;
		x->errors = x->data ? cn_col_real(r, i, 2) : NAN;
		x->lat_bounds = (int)cn_col_int(r, i, 3);
		x->lat = expand(&d->ledger, x->lat_bounds, cn_col_str(r, i, 4), &arena);
		x->ttft_bounds = (int)cn_col_int(r, i, 5);
		x->ttft = expand(&d->ledger, x->ttft_bounds, cn_col_str(r, i, 6), &arena);
		x->note = cn_col_str(r, i, 7);
	}
	d->ledger.minutes = m;
	d->ledger.n = n;
	*out = d;
	d = NULL;
	rc = 0;
out:
	cn_sla_data_free(d);
	return rc;
}

void cn_sla_data_free(struct cn_sla_data *d)
{
	if (!d)
		return;
	cn_read_free(d->rd);
	free(d);
}

int cn_store_sla_gc(struct cn_store *s, int64_t before_us, const char *reason, int64_t *rows, struct cn_err *err)
{
	char before[32];
	snprintf(before, sizeof before, "%lld", (long long)before_us);
	const char *p[2] = {before, reason};
	PGresult *r = cn_store_exec(s, "delete old SLA minutes", "SELECT canary.sla_gc(" US_SQL("$1") ", $2)", 2, p,
				    err);
	if (!r)
		return -err->code;
	*rows = cn_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int cn_store_sla_window_missed(struct cn_store *s, const char *service, const char *miss_json, struct cn_err *err)
{
	CN_BUG_ON(!service || !miss_json);
	const char *p[2] = {service, miss_json};
	PGresult *r = cn_store_exec(s, "record a missed SLA window", "SELECT canary.sla_window_missed($1, $2::jsonb)", 2,
				    p, err);
	if (!r)
		return -err->code;
	int fresh = cn_col_bool(r, 0, 0) ? 1 : 0;
	PQclear(r);
	return fresh;
}

int cn_store_sla_retain(struct cn_store *s, int keep_days, int max_rows, int64_t *rows, struct cn_err *err)
{
	char keep[16], max[16];
	snprintf(keep, sizeof keep, "%d", keep_days);
	snprintf(max, sizeof max, "%d", max_rows);
	const char *p[2] = {keep, max};
	PGresult *r = cn_store_exec(s, "prune the SLA ledger", "SELECT canary.sla_retain($1::integer, $2::integer)", 2,
				    p, err);
	if (!r)
		return -err->code;
	*rows = cn_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}
