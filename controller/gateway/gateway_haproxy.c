/* HAProxy gateway adapter: maps shares onto server weights (0..256, `balance roundrobin`), writes them with
 * `set server B/S weight N` in an order that never overshoots the growing slot, makes the servers ready, and
 * confirms by reading `show servers state B` (one snapshot of both servers' weights and admin states).
 * In a process that opted in (cn_gateway_haproxy_share_checks: canaryd), reads that only check (get_weights: the
 * reconcile before every tick) share one `show servers state` of all backends per runtime API, at most the given
 * age and begun after this gateway's last write: one HAProxy connection a second instead of one per rollout turn
 * when a daemon carries thousands of rollouts. Writes always read their own backend, before and after. */
#include "canary/gateway.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/clock.h"
#include "canary/dynbuf.h"
#include "gateway_int.h"

struct hap_gw {
	struct cn_gateway base;
	const struct cn_addr *addr; /* shared by the gateways of one runtime API (addr_get) */
	const char *backend;      /* into names */
	const char *server[2];    /* into names */
	int64_t timeout_ms;
	uint64_t written_seq; /* snap_seq when this gateway last wrote: older snapshots do not answer for it */
	char names[];         /* "backend\0server0\0server1\0", as long as they are: a daemon holds a gateway per rollout
			       * (3 x CN_NAME_MAX bytes each were 1.9 MB at N = 10,000) */
};

#define SNAP_SLOTS 4                /* runtime APIs remembered at once */
#define SNAP_MAX_BYTES (64u << 20)  /* largest `show servers state` read (about 250 bytes a server) */

struct snap_entry {
	uint64_t key; /* backend and server name hashed (snap_key) */
	int w, admin;
};

/* One runtime API's servers as of one `show servers state` (all backends). */
struct snap {
	char addr[sizeof ((struct cn_addr *)0)->text];
	uint64_t seq;         /* snap_seq when the read began */
	int64_t taken_ms;     /* monotonic, when it was read; 0: empty slot */
	struct snap_entry *e; /* sorted by key */
	size_t n;
};

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct snap snaps[SNAP_SLOTS];
static uint64_t snap_seq; /* rises with every snapshot begun and every write */
static int64_t snap_ttl_ms; /* 0: checks read their own backend (cn_gateway_haproxy_share_checks) */

void cn_gateway_haproxy_share_checks(int64_t ttl_ms)
{
	pthread_mutex_lock(&snap_mu);
	snap_ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
	pthread_mutex_unlock(&snap_mu);
}

#define DEFAULT_TIMEOUT_MS 2000
#define PCT_SUM_SLACK 1e-6

/* ---- weight mapping (pure) ---- */

int cn_haproxy_weights_from_pct(double pct0, int w[2], struct cn_err *err)
{
	return cn_weights_from_pct(pct0, CN_HAPROXY_WEIGHT_MAX, w, err);
}

int cn_weights_from_pct(double pct0, int max_total, int w[2], struct cn_err *err)
{
	if (!(pct0 >= 0.0 && pct0 <= 100.0))
		return cn_fail(err, CN_EINPUT, "traffic share %g %% is outside 0..100", pct0);
	if (max_total < 2)
		return cn_fail(err, CN_EINPUT, "weights must be allowed to sum to at least 2, not %d", max_total);

	/* Work on the smaller share so that p and 100 - p map to mirrored weights; exact .5 ties round the
	 * smaller share down. */
	double m = pct0 <= 50.0 ? pct0 : 100.0 - pct0;
	int best_a = 0, best_n = 1;
	if (m > 0.0) {
		double best_e = INFINITY;
		for (int n = 2; n <= max_total; n++) {
			double exact = m * n / 100.0;
			int lo = (int)floor(exact);
			for (int a = lo; a <= lo + 1; a++) {
				if (a < 1 || a > n - 1)
					continue;
				double e = fabs(100.0 * a / n - m);
				if (e < best_e - 1e-9) { /* strict: ties keep the smaller total / smaller a */
					best_e = e;
					best_a = a;
					best_n = n;
				}
			}
		}
	}
	if (pct0 <= 50.0) {
		w[0] = best_a;
		w[1] = best_n - best_a;
	} else {
		w[0] = best_n - best_a;
		w[1] = best_a;
	}
	return 0;
}

void cn_haproxy_pct_from_weights(const int w[2], double pct[2])
{
	int sum = w[0] + w[1];
	if (sum <= 0) {
		pct[0] = pct[1] = 0.0;
		return;
	}
	pct[0] = 100.0 * w[0] / sum;
	pct[1] = 100.0 * w[1] / sum;
}

/* How far slot 0's share under weights (x0, x1) lies outside [lo, hi]; both weights zero (HAProxy answers 503)
 * is infinitely far. */
static double overshoot(int x0, int x1, double lo, double hi)
{
	if (x0 + x1 <= 0)
		return INFINITY;
	double s = (double)x0 / (x0 + x1);
	return s < lo ? lo - s : s > hi ? s - hi : 0.0;
}

int cn_haproxy_first_write(const int cur[2], const int next[2])
{
	/* Writing slot 0 first passes through (next0, cur1), slot 1 first through (cur0, next1). When one weight
	 * rises and the other falls, both states lie between the old and the new shares. When both rise or both
	 * fall, one of them gives slot 0 more than either end and the other gives slot 1 more than either end, so
	 * pick the one that strays least outside [old, new]; with the mapping's weights (0/1, 1/99, 1/19, 1/0 ...)
	 * that is always a state on the path (e.g. 0/1 -> 1/99 goes via 0/99, 1/99 -> 0/1 via 0/99). On a tie,
	 * give less to the slot whose new share is smaller: the canary while ramping, the loser on rollback. */
	int nsum = next[0] + next[1] > 0 ? next[0] + next[1] : 1;
	double sn = (double)next[0] / nsum;
	double so = cur[0] + cur[1] > 0 ? (double)cur[0] / (cur[0] + cur[1]) : sn;
	double lo = so < sn ? so : sn, hi = so < sn ? sn : so;
	double via0 = overshoot(next[0], cur[1], lo, hi);
	double via1 = overshoot(cur[0], next[1], lo, hi);
	if (via0 < via1 - 1e-12)
		return 0;
	if (via1 < via0 - 1e-12)
		return 1;
	int minority = sn <= 0.5 ? 0 : 1;
	/* writing the minority slot first moves it to its (smaller) new weight before the other grows */
	double m_via0 = next[0] + cur[1] <= 0 ? INFINITY
			: (double)(minority == 0 ? next[0] : cur[1]) / (next[0] + cur[1]);
	double m_via1 = cur[0] + next[1] <= 0 ? INFINITY
			: (double)(minority == 0 ? cur[0] : next[1]) / (cur[0] + next[1]);
	return m_via0 <= m_via1 ? 0 : 1;
}

/* ---- the adapter ---- */

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == ';' || *s == '/' || *s == '\\' || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* Returns 1 if the answer is blank: HAProxy's "done" for set commands. */
static int blank(const char *s)
{
	for (; *s; s++)
		if (*s != '\n' && *s != '\r' && *s != ' ')
			return 0;
	return 1;
}

/* Splits line (modified in place) into at most max whitespace-separated tokens; returns the count. */
static int split(char *line, char **tok, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	return n;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

#define MAX_COLS 64

/* One server's row of a `show servers state` answer: its backend and name, and its user weight and admin state as
 * text and, when ok, as numbers. */
struct state_row {
	const char *be, *name, *w_text, *admin_text;
	bool ok; /* w and admin parsed (a weight in 0..CN_HAPROXY_WEIGHT_MAX, an admin state in 0..0xffff) */
	int w, admin;
};

/* Walks a `show servers state` answer ("1\n# be_id be_name srv_id srv_name ...\n<rows>\n"; text is modified): the
 * header names the columns, then row(arg, r) runs for each server row that has them, and a result < 0 stops the
 * walk with that result. Returns 0, -1 when the first line is not format version 1 (e.g. "Can't find backend.": text
 * is then that line), or -2 when a row comes before a header naming be_name, srv_name, srv_admin_state and
 * srv_uweight. */
static int state_walk(char *text, int (*row)(void *arg, const struct state_row *r), void *arg)
{
	int col_be = -1, col_name = -1, col_admin = -1, col_w = -1;
	char *save = NULL;
	char *line = strtok_r(text, "\n", &save);
	long version;
	if (!line || parse_int(line, 1, 1, &version) < 0)
		return -1;
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok[MAX_COLS];
		if (line[0] == '#') {
			int nt = split(line + 1, tok, MAX_COLS);
			for (int i = 0; i < nt; i++) {
				if (strcmp(tok[i], "be_name") == 0)
					col_be = i;
				else if (strcmp(tok[i], "srv_name") == 0)
					col_name = i;
				else if (strcmp(tok[i], "srv_admin_state") == 0)
					col_admin = i;
				else if (strcmp(tok[i], "srv_uweight") == 0)
					col_w = i;
			}
			continue;
		}
		if (col_be < 0 || col_name < 0 || col_admin < 0 || col_w < 0)
			return -2;
		int nt = split(line, tok, MAX_COLS);
		if (nt <= col_be || nt <= col_name || nt <= col_admin || nt <= col_w)
			continue;
		long wv = 0, av = 0;
		struct state_row r = {.be = tok[col_be], .name = tok[col_name], .w_text = tok[col_w],
				      .admin_text = tok[col_admin]};
		r.ok = parse_int(tok[col_w], 0, CN_HAPROXY_WEIGHT_MAX, &wv) == 0 &&
		       parse_int(tok[col_admin], 0, 0xffff, &av) == 0;
		r.w = (int)wv;
		r.admin = (int)av;
		int rc = row(arg, &r);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* read_state's walk: picks g's two servers. */
struct own_read {
	struct hap_gw *g;
	int *w, *admin, found[2];
	struct cn_err *err;
};

static int own_row(void *arg, const struct state_row *r)
{
	struct own_read *o = arg;
	char q[64];
	for (int s = 0; s < 2; s++) {
		if (strcmp(r->name, o->g->server[s]) != 0)
			continue;
		if (!r->ok)
			return cn_fail(o->err, CN_EINTERNAL, "haproxy runtime api '%s': unexpected weight '%s' or admin "
				       "state '%s' for server '%s/%s'", o->g->addr->text, cn_hap_quote(r->w_text, q, 40),
				       r->admin_text, o->g->backend, o->g->server[s]);
		o->w[s] = r->w;
		o->admin[s] = r->admin;
		o->found[s] = 1;
	}
	return 0;
}

/* Reads both servers' user weights and admin states from one `show servers state BACKEND` snapshot. */
static int read_state(struct hap_gw *g, int w[2], int admin[2], struct cn_err *err)
{
	char cmd[CN_NAME_MAX + 32], q[200];
	char *ans = malloc(CN_HAP_ANSWER_MAX);
	struct own_read o = {.g = g, .w = w, .admin = admin, .err = err};
	int rc;

	snprintf(cmd, sizeof cmd, "show servers state %s", g->backend);
	if (!ans)
		return cn_fail(err, CN_EINTERNAL, "out of memory reading haproxy state");
	if ((rc = cn_hap_cmd(g->addr, cmd, g->timeout_ms, ans, CN_HAP_ANSWER_MAX, err)) != 0)
		goto out;
	/* anything but the state (e.g. "Can't find backend.") is HAProxy telling us what is wrong */
	int walked = state_walk(ans, own_row, &o);
	if (walked == -1)
		rc = cn_fail(err, CN_EINTERNAL, "haproxy runtime api '%s' answered '%s' to '%s'; check the service's "
			     "gateway.backend", g->addr->text, cn_hap_quote(ans, q, sizeof q), cmd);
	else if (walked == -2)
		rc = cn_fail(err, CN_EINTERNAL, "haproxy runtime api '%s' answered '%s' without a header naming "
			     "be_name, srv_name, srv_admin_state and srv_uweight", g->addr->text, cmd);
	else if (walked < 0)
		rc = walked; /* own_row said why */
	for (int s = 0; s < 2 && rc == 0; s++)
		if (!o.found[s])
			rc = cn_fail(err, CN_EINTERNAL, "haproxy backend '%s' has no server '%s' (runtime api '%s'); check "
				     "the service's slots[%d].server", g->backend, g->server[s], g->addr->text, s);
out:
	free(ans);
	return rc;
}

/* ---- the shared snapshot for checks ---- */

static uint64_t snap_key(const char *backend, const char *server)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over "backend/server" */
	for (const char *p = backend; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = server; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static int entry_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct snap_entry *)a)->key, y = ((const struct snap_entry *)b)->key;
	return x < y ? -1 : x > y;
}

/* snap_parse's walk: every understood row into a growing array. */
struct snap_build {
	struct snap_entry *e;
	size_t n, cap;
};

static int snap_row(void *arg, const struct state_row *r)
{
	struct snap_build *b = arg;
	if (!r->ok)
		return 0; /* a row this reader does not understand: its backend is read on its own */
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 256;
		struct snap_entry *ne = realloc(b->e, nc * sizeof *ne);
		if (!ne)
			return -3;
		b->e = ne;
		b->cap = nc;
	}
	b->e[b->n++] = (struct snap_entry){.key = snap_key(r->be, r->name), .w = r->w, .admin = r->admin};
	return 0;
}

/* Parses `show servers state` of every backend (text is modified) into a new sorted array. Returns the count, or
 * -1 when the answer does not have the expected shape (the per-backend read then says what is wrong). */
static long snap_parse(char *text, struct snap_entry **out)
{
	struct snap_build b = {0};
	if (state_walk(text, snap_row, &b) < 0) {
		free(b.e);
		return -1;
	}
	qsort(b.e, b.n, sizeof *b.e, entry_cmp);
	*out = b.e;
	return (long)b.n;
}

/* Answers a check from a snapshot of g's runtime API that is fresh and newer than g's last write; snap_mu held. */
static bool snap_answer(const struct hap_gw *g, int w[2], int admin[2])
{
	int64_t now = cn_mono_ms();
	for (int i = 0; i < SNAP_SLOTS; i++) {
		const struct snap *sn = &snaps[i];
		if (sn->taken_ms == 0 || strcmp(sn->addr, g->addr->text) != 0)
			continue;
		if (now - sn->taken_ms > snap_ttl_ms || sn->seq <= g->written_seq)
			return false;
		for (int s = 0; s < 2; s++) {
			struct snap_entry key = {.key = snap_key(g->backend, g->server[s])};
			const struct snap_entry *f = bsearch(&key, sn->e, sn->n, sizeof *sn->e, entry_cmp);
			if (!f)
				return false;
			w[s] = f->w;
			admin[s] = f->admin;
		}
		return true;
	}
	return false;
}

/* Keeps a new snapshot in the slot of its runtime API (or the oldest); snap_mu held. Takes e over. */
static void snap_store(const struct hap_gw *g, uint64_t seq, struct snap_entry *e, size_t n)
{
	struct snap *slot = NULL;
	for (int i = 0; i < SNAP_SLOTS && !slot; i++)
		if (snaps[i].taken_ms != 0 && strcmp(snaps[i].addr, g->addr->text) == 0)
			slot = &snaps[i];
	for (int i = 0; i < SNAP_SLOTS && !slot; i++)
		if (snaps[i].taken_ms == 0)
			slot = &snaps[i];
	if (!slot) {
		slot = &snaps[0];
		for (int i = 1; i < SNAP_SLOTS; i++)
			if (snaps[i].taken_ms < slot->taken_ms)
				slot = &snaps[i];
	}
	if (slot->taken_ms != 0 && strcmp(slot->addr, g->addr->text) == 0 && slot->seq > seq) {
		free(e); /* another thread stored a newer one meanwhile */
		return;
	}
	free(slot->e);
	snprintf(slot->addr, sizeof slot->addr, "%s", g->addr->text);
	slot->seq = seq;
	slot->taken_ms = cn_mono_ms();
	slot->e = e;
	slot->n = n;
}

static void note_write(struct hap_gw *g)
{
	pthread_mutex_lock(&snap_mu);
	g->written_seq = ++snap_seq;
	pthread_mutex_unlock(&snap_mu);
}

/* Both servers' weights and admin states for a check: from the shared snapshot when it can answer, else from a new
 * one, else (a backend the snapshot lacks, an answer it does not understand) from this backend's own read. */
static int check_state(struct hap_gw *g, int w[2], int admin[2], struct cn_err *err)
{
	pthread_mutex_lock(&snap_mu);
	bool shared = snap_ttl_ms > 0;
	bool ok = shared && snap_answer(g, w, admin);
	uint64_t seq = ++snap_seq;
	pthread_mutex_unlock(&snap_mu);
	if (ok)
		return 0;
	if (!shared)
		return read_state(g, w, admin, err);
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, SNAP_MAX_BYTES);
	int rc = cn_hap_cmd_buf(g->addr, "show servers state", g->timeout_ms, &b, err);
	if (rc == -CN_EUNAVAIL) {
		cn_dynbuf_free(&b);
		return rc; /* HAProxy is away: asking again for the backend alone would only wait twice */
	}
	if (rc == 0) {
		char *text = cn_dynbuf_take(&b, NULL);
		struct snap_entry *e = NULL;
		long n = text ? snap_parse(text, &e) : -1;
		free(text);
		if (n >= 0) {
			pthread_mutex_lock(&snap_mu);
			snap_store(g, seq, e, (size_t)n);
			ok = snap_answer(g, w, admin);
			pthread_mutex_unlock(&snap_mu);
		}
	}
	cn_dynbuf_free(&b);
	return ok ? 0 : read_state(g, w, admin, err);
}

/* Sends a set command; a blank answer is success, any text is HAProxy's error. */
static int set_cmd(struct hap_gw *g, const char *cmd, struct cn_err *err)
{
	char ans[1024], q[200];
	int rc = cn_hap_cmd(g->addr, cmd, g->timeout_ms, ans, sizeof ans, err);
	if (rc)
		return rc;
	if (!blank(ans))
		return cn_fail(err, CN_EINTERNAL, "haproxy runtime api '%s' refused '%s': '%s'", g->addr->text, cmd,
			       cn_hap_quote(ans, q, sizeof q));
	return 0;
}

static int set_weight(struct hap_gw *g, int slot, int weight, struct cn_err *err)
{
	char cmd[2 * CN_NAME_MAX + 48];
	snprintf(cmd, sizeof cmd, "set server %s/%s weight %d", g->backend, g->server[slot], weight);
	return set_cmd(g, cmd, err);
}

static int set_ready(struct hap_gw *g, int slot, struct cn_err *err)
{
	char cmd[2 * CN_NAME_MAX + 48];
	snprintf(cmd, sizeof cmd, "set server %s/%s state ready", g->backend, g->server[slot]);
	return set_cmd(g, cmd, err);
}

static int hap_set_weights(struct cn_gateway *base, const double pct[2], struct cn_err *err)
{
	struct hap_gw *g = (struct hap_gw *)base;
	int next[2], cur[2], admin[2], rc;

	if (!pct || !isfinite(pct[0]) || !isfinite(pct[1]) || pct[0] < 0 || pct[1] < 0 ||
	    fabs(pct[0] + pct[1] - 100.0) > PCT_SUM_SLACK)
		return cn_fail(err, CN_EINPUT, "traffic shares %g %% / %g %% must be within 0..100 and sum to 100",
			       pct ? pct[0] : NAN, pct ? pct[1] : NAN);
	rc = cn_haproxy_weights_from_pct(pct[0], next, err);
	if (rc)
		return rc;

	note_write(g); /* from here on, only a snapshot begun after the write answers this gateway's checks */
	rc = read_state(g, cur, admin, err);
	if (rc)
		return rc;
	if (cur[0] != next[0] || cur[1] != next[1]) {
		int first = cn_haproxy_first_write(cur, next);
		int order[2] = { first, 1 - first };
		for (int i = 0; i < 2; i++) {
			int s = order[i];
			if (cur[s] == next[s])
				continue;
			rc = set_weight(g, s, next[s], err);
			if (rc)
				return rc;
		}
	}
	/* Weights first, then readiness: a server leaving maintenance starts at its new weight. */
	for (int s = 0; s < 2; s++) {
		if (admin[s] != 0) {
			rc = set_ready(g, s, err);
			if (rc)
				return rc;
		}
	}

	note_write(g);
	rc = read_state(g, cur, admin, err);
	if (rc)
		return rc;
	if (cur[0] != next[0] || cur[1] != next[1] || admin[0] != 0 || admin[1] != 0)
		return cn_fail(err, CN_EINTERNAL, "haproxy backend '%s' reads back weights %s=%d %s=%d (admin state "
			       "%d/%d) after setting %d/%d; another client may be changing them", g->backend,
			       g->server[0], cur[0], g->server[1], cur[1], admin[0], admin[1], next[0], next[1]);
	return 0;
}

static int hap_get_weights(struct cn_gateway *base, double pct[2], struct cn_err *err)
{
	struct hap_gw *g = (struct hap_gw *)base;
	int w[2], admin[2];
	int rc = check_state(g, w, admin, err);
	if (rc)
		return rc;
	/* A server in maintenance or drain takes no new traffic, whatever its weight says. */
	for (int s = 0; s < 2; s++)
		if (admin[s] != 0)
			w[s] = 0;
	cn_haproxy_pct_from_weights(w, pct);
	return 0;
}

/* Runtime API addresses, each once (900 bytes): every service behind one HAProxy names the same socket, and a
 * daemon with 10,000 rollouts holds 10,000 gateways. */
struct addr_entry {
	struct addr_entry *next;
	struct cn_addr addr;
	int refs;
};
static struct addr_entry *addr_head;
static pthread_mutex_t addr_mu = PTHREAD_MUTEX_INITIALIZER;

static const struct cn_addr *addr_get(const struct cn_addr *a)
{
	struct addr_entry *e;
	pthread_mutex_lock(&addr_mu);
	for (e = addr_head; e; e = e->next)
		if (strcmp(e->addr.text, a->text) == 0) {
			e->refs++;
			break;
		}
	if (!e && (e = malloc(sizeof *e))) {
		e->addr = *a;
		e->refs = 1;
		e->next = addr_head;
		addr_head = e;
	}
	pthread_mutex_unlock(&addr_mu);
	return e ? &e->addr : NULL;
}

static void addr_put(const struct cn_addr *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&addr_mu);
	for (struct addr_entry **pp = &addr_head; *pp; pp = &(*pp)->next) {
		struct addr_entry *e = *pp;
		if (&e->addr != a)
			continue;
		if (--e->refs == 0) {
			*pp = e->next;
			free(e);
		}
		break;
	}
	pthread_mutex_unlock(&addr_mu);
}

static void hap_close(struct cn_gateway *base)
{
	addr_put(((struct hap_gw *)base)->addr);
	free(base);
}

static const struct cn_gateway_ops hap_ops = {
	.name = "haproxy",
	.set_weights = hap_set_weights,
	.get_weights = hap_get_weights,
	.close = hap_close,
};

struct cn_gateway *cn_gateway_haproxy_open(const struct cn_service *svc, struct cn_err *err)
{
	struct hap_gw *g = NULL;
	struct cn_addr addr;

	if (cn_addr_parse(svc->gateway.runtime_api, "gateway runtime_api", CN_ADDR_UNIX, &addr, err) < 0) {
		cn_err_prefix(err, "service '%s'", svc->name);
		return NULL;
	}
	if (!valid_name(svc->gateway.backend)) {
		cn_fail(err, CN_EINPUT, "service '%s': gateway backend '%s' must be a non-empty haproxy name without "
			"spaces, '/' or ';'", svc->name, svc->gateway.backend);
		return NULL;
	}
	for (int s = 0; s < 2; s++) {
		if (!valid_name(svc->slots[s].server)) {
			cn_fail(err, CN_EINPUT, "service '%s': slots[%d].server '%s' must be a non-empty haproxy name "
				"without spaces, '/' or ';'", svc->name, s, svc->slots[s].server);
			return NULL;
		}
	}
	if (strcmp(svc->slots[0].server, svc->slots[1].server) == 0) {
		cn_fail(err, CN_EINPUT, "service '%s': both slots use server '%s'; give each slot its own server",
			svc->name, svc->slots[0].server);
		return NULL;
	}
	size_t lb = strlen(svc->gateway.backend) + 1, l0 = strlen(svc->slots[0].server) + 1,
	       l1 = strlen(svc->slots[1].server) + 1;
	g = calloc(1, sizeof *g + lb + l0 + l1);
	if (!g || !(g->addr = addr_get(&addr))) {
		free(g);
		cn_fail(err, CN_EINTERNAL, "out of memory opening the gateway of service '%s'", svc->name);
		return NULL;
	}
	g->base.ops = &hap_ops;
	memcpy(g->names, svc->gateway.backend, lb);
	memcpy(g->names + lb, svc->slots[0].server, l0);
	memcpy(g->names + lb + l0, svc->slots[1].server, l1);
	g->backend = g->names;
	g->server[0] = g->names + lb;
	g->server[1] = g->names + lb + l0;
	g->timeout_ms = svc->gateway.timeout_ms > 0 ? svc->gateway.timeout_ms : DEFAULT_TIMEOUT_MS;
	return &g->base;
}
