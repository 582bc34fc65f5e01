/* Benchmark (issue 13): the PostgreSQL side of recording judged ticks through canary.record_batch, as canaryd's
 * recorder does. Claims every due rollout for OWNER (one long lease), then, ROUNDS + 1 times, ticks each rollout
 * with the core (cn_tick, a policy from POLICY_FILE, vLLM's latency and ttft histograms moving every round), encodes the records
 * in batches of BATCH with cn_store_record_batch_encode (the documents canaryd sends) and sends each batch as
 * cn_store_record_batch_send does. Round 0 (the first tick: pending -> progressing) is not measured.
 * Prints, per recorded tick: the backend's CPU (utime+stime of its /proc/PID/stat, so the server must run on this
 * machine) and the part of it that reading the documents into jsonb takes (measured apart), wall time per batch, rows inserted/updated, HOT share of the rollouts' updates, WAL and table growth.
 * Usage: DATABASE_URL=... bench_record_batch POLICY_FILE OWNER ROUNDS [BATCH]   (BATCH default 64) */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "canary/policy.h"
#include "canary/rollout.h"
#include "canary/store_rollouts.h"

/* vLLM's bucket bounds, as tests/support/bin/metricsfarm.c serves them to bench/scale.sh (no itl histogram there) */
static const double e2e_le[] = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
				120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
static const double ttft_le[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
				 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
#define NLE_MAX 32

struct shape {
	int n; /* buckets, +Inf included */
	double le[NLE_MAX];
	double inc[NLE_MAX];
};

/* Log-normal shares on the bounds le[0..nle) and +Inf: `median` in seconds, `per_tick` observations per tick. */
static void make_shape(struct shape *s, const double *le, int nle, double median, double per_tick)
{
	s->n = nle + 1;
	for (int i = 0; i < s->n; i++) {
		s->le[i] = i == nle ? INFINITY : le[i];
		double x = isinf(s->le[i]) ? 1.0 : 0.5 * erfc(-(log(s->le[i] / median) / 0.6) / sqrt(2.0));
		s->inc[i] = floor(x * per_tick + 0.5);
	}
}

struct variant {
	struct shape lat, ttft;
	double requests, errors;
};

static void hist_init(struct cn_histogram *h, const struct shape *s)
{
	h->nbuckets = s->n;
	memcpy(h->le, s->le, sizeof s->le[0] * (size_t)s->n);
	memset(h->count, 0, sizeof h->count);
	h->sum = 0;
}

static void sample_init(struct cn_sample *x, const struct variant *v)
{
	memset(x, 0, sizeof *x);
	x->ok = true;
	x->cost.per_hour = NAN;
	x->cost.per_1k_tokens = NAN;
	hist_init(&x->latency, &v->lat);
	hist_init(&x->ttft, &v->ttft);
}

static void sample_move(struct cn_sample *x, const struct variant *v)
{
	x->requests += v->requests;
	x->errors += v->errors;
	for (int i = 0; i < v->lat.n; i++)
		x->latency.count[i] += v->lat.inc[i];
	for (int i = 0; i < v->ttft.n; i++)
		x->ttft.count[i] += v->ttft.inc[i];
	x->gen_tokens += v->requests * 200;
	x->prompt_tokens += v->requests * 500;
	x->latency.sum += v->requests * 1.2;
	x->ttft.sum += v->requests * 0.08;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of process pid, in clock ticks; -1 if unreadable. */
static long long cpu_ticks(int pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p)
		return -1;
	unsigned long long ut = 0, st = 0;
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static PGresult *q(PGconn *c, const char *sql, int n, const char *const *p, ExecStatusType want)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != want) {
		fprintf(stderr, "bench_record_batch: %s: %s", sql, PQerrorMessage(c));
		exit(70);
	}
	return r;
}

/* One number from a one-row, one-column query. */
static double q1(PGconn *c, const char *sql)
{
	PGresult *r = q(c, sql, 0, NULL, PGRES_TUPLES_OK);
	double v = PQntuples(r) ? strtod(PQgetvalue(r, 0, 0), NULL) : NAN;
	PQclear(r);
	return v;
}

struct dbstat {
	double ins, upd, hot, rollout_upd, wal, bytes, commits;
};

static void db_stat(PGconn *mon, PGconn *rec, struct dbstat *s)
{
	/* the recording backend's counters reach shared memory at its next statement's end */
	PQclear(q(rec, "SELECT pg_stat_force_next_flush()", 0, NULL, PGRES_TUPLES_OK));
	PQclear(q(rec, "SELECT 1", 0, NULL, PGRES_TUPLES_OK));
	PQclear(q(mon, "SELECT pg_stat_clear_snapshot()", 0, NULL, PGRES_TUPLES_OK));
	s->ins = q1(mon, "SELECT tup_inserted FROM pg_stat_database WHERE datname = current_database()");
	s->upd = q1(mon, "SELECT tup_updated FROM pg_stat_database WHERE datname = current_database()");
	s->commits = q1(mon, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
	s->rollout_upd = q1(mon, "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'rollouts'");
	s->hot = q1(mon, "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'rollouts'");
	s->wal = q1(mon, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')");
	s->bytes = q1(mon, "SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['rollouts', 'measurements', "
			   "'decisions', 'slo_verdicts', 'audit_events', 'outbox', 'commands']::regclass[]) c");
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: DATABASE_URL=... bench_record_batch POLICY_FILE OWNER ROUNDS [BATCH]\n");
		return 64;
	}
	char *end;
	errno = 0;
	long rounds = strtol(argv[3], &end, 10);
	if (errno || *end || rounds < 1 || rounds > 1000) {
		fprintf(stderr, "bench_record_batch: ROUNDS '%s' is not a number in 1..1000\n", argv[3]);
		return 64;
	}
	long batch = CN_RECORD_BATCH_MAX;
	if (argc == 5) {
		errno = 0;
		batch = strtol(argv[4], &end, 10);
		if (errno || *end || batch < 1 || batch > CN_RECORD_BATCH_MAX) {
			fprintf(stderr, "bench_record_batch: BATCH '%s' is not a number in 1..%d\n", argv[4],
				CN_RECORD_BATCH_MAX);
			return 64;
		}
	}
	const char *owner = argv[2];

	static struct cn_policy pol;
	struct cn_err err = {0};
	char *source = NULL;
	if (cn_policy_load_file(argv[1], &pol, &source, &err) < 0) {
		fprintf(stderr, "bench_record_batch: %s\n", err.msg);
		return 65;
	}
	free(source);

	const char *url = getenv("DATABASE_URL");
	PGconn *rec = PQconnectdb(url ? url : "");
	PGconn *mon = PQconnectdb(url ? url : "");
	if (PQstatus(rec) != CONNECTION_OK || PQstatus(mon) != CONNECTION_OK) {
		fprintf(stderr, "bench_record_batch: cannot connect: %s", PQerrorMessage(rec));
		return 69;
	}
	int pid = (int)q1(rec, "SELECT pg_backend_pid()");
	if (cpu_ticks(pid) < 0) {
		fprintf(stderr, "bench_record_batch: cannot read /proc/%d/stat (is the server on this machine?)\n", pid);
		return 69;
	}

	const char *cp[] = {owner};
	PGresult *cr = q(mon, "SELECT id FROM canary.claim($1, 36000000, 1000000) ORDER BY id", 1, cp, PGRES_TUPLES_OK);
	int n = PQntuples(cr);
	if (n == 0) {
		fprintf(stderr, "bench_record_batch: no rollout to claim\n");
		return 65;
	}
	struct cn_rollout_row *rows = calloc((size_t)n, sizeof *rows);
	struct cn_tick_result *res = calloc((size_t)n, sizeof *res);
	struct cn_rollout_state *st = calloc((size_t)n, sizeof *st);
	struct cn_record *recs = calloc((size_t)batch, sizeof *recs);
	struct cn_record_batch *b = calloc(1, sizeof *b);
	if (!rows || !res || !st || !recs || !b) {
		fprintf(stderr, "bench_record_batch: out of memory\n");
		return 70;
	}
	for (int i = 0; i < n; i++) {
		rows[i].id = strtoll(PQgetvalue(cr, i, 0), NULL, 10);
		rows[i].applied_weight = NAN;
		cn_rollout_init(&st[i]);
	}
	PQclear(cr);

	/* baseline 990 requests per tick, candidate 10: a healthy candidate at 1% */
	static struct variant base, cand;
	const int ne = (int)(sizeof e2e_le / sizeof e2e_le[0]), nt = (int)(sizeof ttft_le / sizeof ttft_le[0]);
	make_shape(&base.lat, e2e_le, ne, 1.0, 990);
	make_shape(&base.ttft, ttft_le, nt, 0.08, 990);
	base.requests = 990;
	base.errors = 3;
	make_shape(&cand.lat, e2e_le, ne, 1.0, 10);
	make_shape(&cand.ttft, ttft_le, nt, 0.08, 10);
	cand.requests = 10;
	cand.errors = 0.03;
	static struct cn_observation obs;
	sample_init(&obs.baseline, &base);
	sample_init(&obs.candidate, &cand);
	int64_t now = (int64_t)q1(mon, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");

	struct dbstat s0 = {0}, s1 = {0};
	long long cpu = 0, cpu_parse = 0, ticks = 0, refused = 0, batches = 0;
	double wall = 0, wall_max = 0, doc_bytes = 0;
	char first_refusal[256] = "";
	for (long round = 0; round <= rounds; round++) {
		if (round == 1)
			db_stat(mon, rec, &s0);
		sample_move(&obs.baseline, &base);
		sample_move(&obs.candidate, &cand);
		obs.at_ms = now;
		for (int i = 0; i < n; i++)
			cn_tick(&pol, &st[i], &obs, now, &res[i]);
		for (int i0 = 0; i0 < n; i0 += (int)batch) {
			int k = n - i0 < batch ? n - i0 : (int)batch;
			for (int j = 0; j < k; j++)
				recs[j] = (struct cn_record){.row = &rows[i0 + j], .policy = &pol, .res = &res[i0 + j],
							     .obs = &obs, .next_tick_ms = 10000, .owner = owner};
			if (cn_store_record_batch_encode(recs, k, b, &err) < 0) {
				fprintf(stderr, "bench_record_batch: %s\n", err.msg);
				return 70;
			}
			const char *p[] = {b->owner, b->id_array, b->docs};
			long long c0 = cpu_ticks(pid);
			double t0 = now_s();
			PGresult *r = q(rec, "SELECT idx, ok, err_state, err_message "
					     "FROM canary.record_batch($1, $2::bigint[], $3::jsonb)",
					3, p, PGRES_TUPLES_OK);
			double dt = now_s() - t0;
			long long c1 = cpu_ticks(pid);
			/* what reading the documents into jsonb alone costs (part of every record_batch call); after the
			 * call, so that it is this statement that finds them in the CPU's caches, if any */
			PQclear(q(rec, "SELECT jsonb_array_length($1::jsonb)", 1, &p[2], PGRES_TUPLES_OK));
			long long cp1 = cpu_ticks(pid);
			for (int j = 0; j < PQntuples(r); j++)
				if (strcmp(PQgetvalue(r, j, 1), "t") != 0) {
					refused += round > 0;
					if (!first_refusal[0])
						snprintf(first_refusal, sizeof first_refusal, "%s %s", PQgetvalue(r, j, 2),
							 PQgetvalue(r, j, 3));
				}
			PQclear(r);
			if (round > 0) {
				cpu += c1 - c0;
				cpu_parse += cp1 - c1;
				wall += dt;
				wall_max = dt > wall_max ? dt : wall_max;
				doc_bytes += (double)strlen(b->docs);
				ticks += k;
				batches++;
			}
			cn_record_batch_free(b);
		}
		for (int i = 0; i < n; i++)
			st[i] = res[i].next;
		now += 10000;
	}
	db_stat(mon, rec, &s1);

	double hz = (double)sysconf(_SC_CLK_TCK), t = (double)ticks;
	printf("bench_record_batch: %d rollouts, %ld measured rounds, batches of %ld: %lld ticks in %lld batches, "
	       "%lld refused%s%s\n", n, rounds, batch, ticks, batches, refused, refused ? ": " : "", first_refusal);
	printf("  postgres backend CPU per tick:   %8.3f ms  (utime+stime of pid %d, %.0f Hz)\n",
	       (double)cpu / hz * 1000.0 / t, pid, hz);
	printf("  of which reading the documents:  %8.3f ms  (the same documents, SELECT jsonb_array_length($1::jsonb))\n",
	       (double)cpu_parse / hz * 1000.0 / t);
	printf("  wall per batch:                  %8.2f ms  (max %.2f ms); per tick %.3f ms\n",
	       wall * 1000.0 / (double)batches, wall_max * 1000.0, wall * 1000.0 / t);
	printf("  rows per tick:                   %8.2f inserted, %.2f updated\n", (s1.ins - s0.ins) / t,
	       (s1.upd - s0.upd) / t);
	printf("  rollouts updates per tick:       %8.2f, HOT %.0f%%\n", (s1.rollout_upd - s0.rollout_upd) / t,
	       s1.rollout_upd > s0.rollout_upd ? 100.0 * (s1.hot - s0.hot) / (s1.rollout_upd - s0.rollout_upd) : 0.0);
	printf("  transactions per tick:           %8.3f\n", (s1.commits - s0.commits) / t);
	printf("  WAL per tick:                    %8.0f bytes\n", (s1.wal - s0.wal) / t);
	printf("  tables + indexes growth per tick:%8.0f bytes  (rollouts, measurements, decisions, slo_verdicts, "
	       "audit_events, outbox, commands)\n", (s1.bytes - s0.bytes) / t);
	printf("  document sent per tick:          %8.0f bytes of JSON\n", doc_bytes / t);
	free(rows);
	free(res);
	free(st);
	free(recs);
	free(b);
	PQfinish(rec);
	PQfinish(mon);
	return refused ? 1 : 0;
}
