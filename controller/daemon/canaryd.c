/* canaryd: the control loop. Claims due rollouts with leases in PostgreSQL, runs each one's turn, and sleeps until
 * the next tick is due or a NOTIFY says a rollout or a command arrived. SIGTERM finishes the turn in progress.
 * Which clock where: the core runs on daemon_now() (the database's clock at the last claim plus monotonic time since),
 * so daemons whose wall clocks disagree agree on holds and timeouts; poll intervals, back-off and cache ages use
 * cn_mono_ms(); only log stamps read the wall clock (now_ms(), which CANARY_TEST_CLOCK_OFFSET_MS shifts in tests). */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canary/bug.h"
#include "canary/json_arena.h"
#include "canary/gateway.h"
#include "canary/metrics.h"
#include "canary/parse.h"
#include "canary/store.h"
#include "canary/store_replicas.h"
#include "canary/store_gc.h"
#include "canary/store_rollouts.h"
#include "canary/zpack.h"
#include "daemon_drill_int.h"
#include "daemon_preflight_int.h"
#include "daemon_int.h"
#include "daemon_fault_int.h"
#include "daemon_fd_int.h"

#define MAX_CLAIM 256
#define TURNS_BETWEEN_TICKS 16 /* during a long claim, finished reads tick after this many turns */
#define TICKS_BETWEEN_LOOKS 16 /* while many finished reads tick, the loop looks for a NOTIFY this often */
#define GC_MIN_AGE_MS (24LL * 3600 * 1000)
#define GC_EVERY_MS (3600LL * 1000)  /* retention runs this often (--gc-older-than) */
#define GC_BATCH 1000                /* rollouts per gc call; a full call is followed by another at once */
#define NEXT_DUE_SLACK_MS 5     /* claim this long after the next rollout falls due (the claim compares with now()) */
#define GATEWAY_CHECK_SHARE_MS 1000 /* HAProxy checks share one snapshot of all backends at most this old */
#define TRIM_EVERY_MS 2000     /* trim_heap */
#define RECORDER_POLL_MS 10     /* while the recorder has batches out, the loop looks for answers this often */
#define MIN_CLAIM_GAP_MS 100    /* ... but not sooner than this after the last claim: with thousands of rollouts one
				 * falls due every few milliseconds, and a claim per rollout would cost a scan each
				 * and leave nothing to batch; a NOTIFY still claims at once */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: canaryd [--db CONNINFO] [--listen 127.0.0.1:PORT] [--id NAME] [--lease DURATION_MS]\n"
		   "               [--poll MS] [--once] [--no-notify] [--notify-retry-max MS] [--no-sla]\n"
		   "               [--sla-retention DAYS] [--gc-older-than D]\n"
		   "  --db CONNINFO   PostgreSQL connection (default: DATABASE_URL, else libpq's PG* variables)\n"
		   "  --listen ADDR   serve /healthz and /metrics on ADDR (IPv4:PORT)\n"
		   "  --id NAME       lease owner name (default: HOST:PID:NONCE)\n"
		   "  --lease MS      lease length in milliseconds (default 15000)\n"
		   "  --poll MS       longest sleep between rounds (default 500)\n"
		   "  --once          run one round and exit\n"
		   "  --no-notify     deliver no webhook notifications (other daemons do)\n"
		   "  --notify-retry-max MS  longest back-off between attempts at one notification (default 60000)\n"
		   "  --no-sla        record no SLA ledger minutes (other daemons do)\n"
		   "  --sla-retention DAYS  delete ledger minutes older than DAYS, never of the current month (default\n"
		   "                  396: 13 months, a year of reports and the current month; 0: keep everything)\n"
		   "  --gc-older-than D      every hour, delete the per-tick rows of rollouts that ended more than D ago\n"
		   "                         (at least 1d, e.g. 90d; as canaryctl gc; the audit trail stays)\n");
}

static long parse_long(const char *opt, const char *s, long min, long max)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || !end || *end || v < min || v > max) {
		fprintf(stderr, "canaryd: %s '%s' is not a whole number in %ld..%ld\n", opt, s, min, max);
		exit(64);
	}
	return v;
}

/* Reads what arrived on the store's connection and drains notifications. Returns how many, or -1 (err set) if the
 * connection failed. A notification read off the socket while the round ran its queries is already queued in libpq
 * (poll() would not see it), so this is called before every wait as well as when the socket is readable. */
static int drain_notify(struct daemon *d, struct cn_err *err)
{
	int n = cn_store_wait_notify(d->store, 0, err);
	int64_t now = cn_mono_ms();
	if (n > 0 && d->notify_seen_ms == 0) {
		d->notify_seen_ms = now;
		d->notify_seen_db_ms = daemon_now(d);
		d->notify_gap_ms = d->notify_look_ms > 0 ? now - d->notify_look_ms : -1;
	}
	d->notify_look_ms = now;
	return n < 0 ? -1 : n;
}

/* Says this daemon is alive between claims, at most every quarter lease: a long round (hundreds of turns or ticks
 * on a loaded machine) can outlast a lease, and the other replicas would take a working daemon for dead. */
static void heartbeat(struct daemon *d)
{
	int64_t now = cn_mono_ms();
	if (now - d->mono_seen_ms < d->cfg.lease_ms / 4)
		return;
	d->mono_seen_ms = now;
	struct cn_err herr = {0};
	if (cn_store_heartbeat(d->store, d->cfg.owner, d->cfg.lease_ms, &herr) < 0)
		dlog("warn", "store.error", dstr("error", herr.msg));
}

/* A NOTIFY came (read now or earlier) that no commands claim has answered yet: an operator may be waiting. */
static bool notify_waiting(struct daemon *d)
{
	struct cn_err err = {0};
	return drain_notify(d, &err) > 0 || d->notify_seen_ms != 0;
}

/* Ticks every rollout whose read finished; with timeout_ms >= 0, first moves the transfers on for up to that long
 * (the main loop has just done so: -1). Returns how many ticked. */
static int tick_ready(struct daemon *d, int timeout_ms)
{
	struct cn_metrics *m;
	int ticked = 0;
	if (timeout_ms >= 0) {
		bool fd_ready;
		struct cn_err werr = {0};
		if (cn_metrics_group_wait(d->group, -1, timeout_ms, &fd_ready, &werr) < 0 &&
		    !daemon_fd_check("metrics", werr.msg))
			dlog("error", "metrics.error", dstr("error", werr.msg));
	}
	for (int seen = 0;; seen++) {
		/* hundreds of reads can finish at once: an operator's abort does not wait behind all their ticks (the
		 * rest stay ready for the next call) */
		if (seen > 0 && seen % TICKS_BETWEEN_LOOKS == 0 && !d->cfg.once && notify_waiting(d))
			break;
		if ((m = cn_metrics_group_next(d->group)) == NULL)
			break;
		heartbeat(d);
		struct cn_err terr = {0};
		if (daemon_tick_ready(d, m, &terr) < 0 && !daemon_fd_check("rollout", terr.msg))
			dlog(terr.code == CN_EUNAVAIL ? "warn" : "error", "rollout.error", dstr("error", terr.msg));
		else
			ticked++;
	}
	daemon_flush_ticks(d, false);
	return ticked;
}

/* A claimed rollout's row between the round's read and its turn, packed (cn_zpack, its state still left out where
 * canaryd holds it: a few hundred bytes, not 32 kB): a round of MAX_CLAIM rows held whole was 8 MB of the loop's
 * heap, made and freed every round. Its sources, when read, stay owned by the packed row. */
struct claimed {
	unsigned char *z;  /* NULL: no row (the turn reads its own) */
	size_t len;
	bool commands_pending;
};

/* Packs row (taken over) into c; out of memory, c has none and the turn reads its row. */
static void claimed_keep(struct claimed *c, struct cn_rollout_row *row)
{
	c->commands_pending = row->commands_pending;
	if (cn_zpack(row, sizeof *row, &c->z, &c->len) < 0) {
		c->z = NULL;
		cn_rollout_row_free(row);
		return;
	}
	free(row); /* (its sources are the packed row's now) */
}

/* The row c holds, unpacked (the caller owns it), or NULL; c is left empty. */
static struct cn_rollout_row *claimed_take(struct claimed *c)
{
	static struct cn_rollout_row scratch; /* (the loop's thread only) */
	struct cn_rollout_row *row = NULL;
	if (!c->z)
		return NULL;
	row = malloc(sizeof *row);
	/* our own packing of a struct of this size: anything else is a bug, not bad input */
	CN_BUG_ON(cn_zunpack(c->z, c->len, row ? row : &scratch, sizeof *row) < 0);
	if (!row) { /* out of memory: its sources go, and the turn reads its row */
		free(scratch.policy_source);
		free(scratch.service_source);
	}
	free(c->z);
	c->z = NULL;
	return row;
}

static void claimed_drop(struct claimed *c)
{
	cn_rollout_row_free(claimed_take(c));
}

struct read_sink {
	struct claimed *out;
	const int *at; /* the claim's index of each row asked for */
};

static void sink_row(struct cn_rollout_row *row, int j, void *arg)
{
	const struct read_sink *s = arg;
	claimed_keep(&s->out[s->at[j]], row);
}

/* Reads the claimed rollouts' rows in one or two round trips (with the pinned sources only for rollouts this daemon
 * has no context for yet, without the state where it holds the stored one), skipping those whose turn has nothing
 * to do, and keeps each packed until its turn (row_for_turn). A failed read leaves rows empty: each turn then reads
 * its own row and says what failed. */
static void read_rows(struct daemon *d, const int64_t *ids, int n, struct claimed *rows)
{
	int64_t want[2][MAX_CLAIM], held[MAX_CLAIM];
	int at[2][MAX_CLAIM], nw[2] = {0, 0};
	for (int i = 0; i < n; i++) {
		rows[i] = (struct claimed){0};
		if (daemon_turn_idle(d, ids[i]))
			continue;
		int64_t seq;
		int k = daemon_held_seq(d, ids[i], &seq) ? 0 : 1; /* one lookup of the context per rollout */
		if (k == 0)
			held[nw[k]] = seq;
		at[k][nw[k]] = i;
		want[k][nw[k]++] = ids[i];
	}
	for (int k = 0; k < 2; k++) {
		struct cn_err err = {0};
		if (nw[k] == 0)
			continue;
		struct read_sink sink = {rows, at[k]};
		if (cn_store_rollouts_each(d->store, want[k], k == 0 ? held : NULL, nw[k], k == 1, sink_row, &sink,
					   &err) < 0) {
			dlog("warn", "store.error", dstr("error", err.msg));
			for (int j = 0; j < nw[k]; j++)
				claimed_drop(&rows[at[k][j]]);
		}
	}
}

/* The row of a claimed rollout for its turn (the caller owns it), with the state it recorded last where the read
 * left it out, as held; NULL when there is none (a row whose state this daemon no longer holds: the turn reads it
 * whole). */
static struct cn_rollout_row *row_for_turn(struct daemon *d, struct claimed *c)
{
	struct cn_rollout_row *row = claimed_take(c);
	bool elided = row && row->state_elided;
	if (elided && daemon_fill_state(d, row) < 0) {
		cn_rollout_row_free(row);
		return NULL;
	}
	if (row && row->has_state)
		atomic_fetch_add(elided ? &d->stats.state_held : &d->stats.state_read, 1);
	return row;
}

/* Puts the rollouts with a command waiting first, the others in claim order after them: an operator's abort is
 * answered before the turns of every tick that fell due with it. */
static void commands_first(int64_t *ids, bool *due, struct claimed *rows, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (!rows[i].z || !rows[i].commands_pending)
			continue;
		int64_t id = ids[i];
		bool du = due[i];
		struct claimed r = rows[i];
		memmove(ids + k + 1, ids + k, (size_t)(i - k) * sizeof *ids);
		memmove(due + k + 1, due + k, (size_t)(i - k) * sizeof *due);
		memmove(rows + k + 1, rows + k, (size_t)(i - k) * sizeof *rows);
		ids[k] = id;
		due[k] = du;
		rows[k] = r;
		k++;
	}
}

/* One retention call (--gc-older-than); returns when the next is due: at once while whole batches go. */
static int64_t run_gc(struct daemon *d, int64_t now)
{
	struct cn_gc_result r = {0};
	struct cn_err err = {0};
	if (cn_store_gc(d->store, d->cfg.gc_older_than_ms, GC_BATCH, &r, &err) < 0) {
		dlog("warn", "gc.error", dstr("error", err.msg));
		return now + GC_EVERY_MS;
	}
	if (r.rollouts > 0)
		dlog("info", "gc.done", dint("rollouts", r.rollouts), dint("measurements", r.measurements),
		     dint("decisions", r.decisions), dint("verdicts", r.verdicts));
	return r.rollouts == GC_BATCH ? now : now + GC_EVERY_MS;
}

/* Adds the statements the loop's connection sent since the last call to canaryd_db_round_trips_total (the
 * connection's own count restarts with each reconnect). */
static void sync_round_trips(struct daemon *d)
{
	static const struct cn_store *seen;
	static unsigned long long last;
	unsigned long long now = cn_store_round_trips(d->store);
	if (d->store != seen) {
		seen = d->store;
		last = 0;
	}
	if (now > last)
		atomic_fetch_add(&d->stats.db_round_trips, now - last);
	last = now;
}

/* Opens a new connection that LISTENs; only once it works does it replace the old one, so d->store is never NULL
 * after the first success (a failed reconnect keeps the broken handle, whose calls fail cleanly). */
static int connect_store(struct daemon *d, struct cn_err *err)
{
	struct cn_store *st = cn_store_connect(d->cfg.db, err);
	if (!st)
		return -err->code;
	if (cn_store_listen(st, "canary", err) < 0) {
		cn_store_close(st);
		return -err->code;
	}
	cn_store_close(d->store);
	d->store = st;
	return 0;
}

/* Sleeps ms in small slices, so SIGTERM is noticed at once. */
static void nap(int64_t ms)
{
	for (int64_t t = 0; t < ms && !stop_flag; t += 100)
		usleep(100 * 1000);
}

/* Gives the heap's free pages back to the kernel every TRIM_EVERY_MS. The loop frees as much as it allocates (rows,
 * samples, batches of ticks), but glibc returns only the top of each arena by itself: at N=10,000 the free pages in
 * between held about 10 MB of RSS (bench/scale.sh: 144 -> 134 MB). malloc_trim releases them in every arena; it
 * takes 0.3-4 ms at 10,000 rollouts, and every 2 s rather than every minute the SLA observer's minute of reads is
 * given back before it has stood long (2-5 MB at 10,000; every 10 s, the peak RSS over a minute at 10,000 was
 * 62.4-63.8 MB in three runs, every 2 s 61.7 MB, for 0.2 ms of CPU a second). */
static void trim_heap(struct daemon *d)
{
	static int64_t last;
	int64_t now = cn_mono_ms();
	if (last != 0 && now - last < TRIM_EVERY_MS)
		return;
	last = now;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	malloc_trim(0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	atomic_fetch_add(&d->stats.heap_trims, 1);
	atomic_fetch_add(&d->stats.heap_trim_us,
			 (unsigned long long)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000));
}

/* Blocks of 128 kB and more (a round's claimed rows, a batch's text, libpq's results for them) come from mmap and go
 * back whole when freed. glibc's default raises that threshold to the largest block freed so far, so after the first
 * large batch they came from the heap and left free holes of 0.2-1.4 MB between the long-lived records of rollouts:
 * at N = 3,000 the main arena's free space went 11.9 -> 6.3 MB (bench/scale.sh with SCALE_HEAP_DUMP). */
#define MMAP_THRESHOLD (128 * 1024)

int main(int argc, char **argv)
{
	mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
	struct daemon d;
	memset(&d, 0, sizeof d);
	d.cfg.lease_ms = 15000;
	d.cfg.poll_ms = 500;
	d.cfg.max_claim = MAX_CLAIM;
	d.cfg.notify = true;
	d.cfg.notify_retry_max_ms = 60000;
	d.cfg.sla = true;
	d.cfg.sla_minute_ms = 60000;
	d.cfg.sla_retention_days = 396;
	d.stop = &stop_flag;
	char host[64] = "canaryd";
	gethostname(host, sizeof host - 1);
	/* host:pid alone repeats across containers (every PID 1 on one host): a nonce keeps lease owners apart */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	unsigned nonce = (unsigned)(ts.tv_nsec ^ ((unsigned)getpid() * 2654435761u)) & 0xffffffu;
	snprintf(d.cfg.owner, sizeof d.cfg.owner, "%s:%ld:%06x", host, (long)getpid(), nonce);

	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},   {"listen", required_argument, NULL, 'l'},
		{"id", required_argument, NULL, 'i'},   {"lease", required_argument, NULL, 'L'},
		{"poll", required_argument, NULL, 'p'}, {"once", no_argument, NULL, 'o'},
		{"no-notify", no_argument, NULL, 'N'},  {"notify-retry-max", required_argument, NULL, 'R'},
		{"no-sla", no_argument, NULL, 'S'},     {"gc-older-than", required_argument, NULL, 'G'},
		{"sla-retention", required_argument, NULL, 'K'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': d.cfg.db = optarg; break;
		case 'l': d.cfg.listen = optarg; break;
		case 'i': snprintf(d.cfg.owner, sizeof d.cfg.owner, "%s", optarg); break;
		case 'L': d.cfg.lease_ms = parse_long("--lease", optarg, 1000, 3600000); break;
		case 'p': d.cfg.poll_ms = parse_long("--poll", optarg, 10, 60000); break;
		case 'o': d.cfg.once = true; break;
		case 'N': d.cfg.notify = false; break;
		case 'R': d.cfg.notify_retry_max_ms = parse_long("--notify-retry-max", optarg, 100, 3600000); break;
		case 'S': d.cfg.sla = false; break;
		case 'K': d.cfg.sla_retention_days = (int)parse_long("--sla-retention", optarg, 0, 36600); break;
		case 'G': {
			struct cn_err gerr = {0};
			if (cn_parse_duration_ms(optarg, 0, &d.cfg.gc_older_than_ms, &gerr) < 0 ||
			    d.cfg.gc_older_than_ms < GC_MIN_AGE_MS) {
				fprintf(stderr, "canaryd: --gc-older-than '%s': %s\n", optarg,
					gerr.msg[0] ? gerr.msg : "at least 1d (e.g. 90d)");
				return 64;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "canaryd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 64;
	}

	if (fault_init() < 0 || clock_init() < 0)
		return 64;
	cn_json_arena_install(); /* before any thread: the recorder's batches are encoded in an arena */
	daemon_fd_init(); /* before any thread or connection: the operator's LimitNOFILE is the limit in force */
	/* every rollout's turn checks its gateway: with thousands on one HAProxy, one read a second serves them all */
	cn_gateway_haproxy_share_checks(GATEWAY_CHECK_SHARE_MS);
	const char *tm = getenv("CANARY_TEST_SLA_MINUTE_MS"); /* tests only: a shorter ledger minute */
	if (tm && *tm)
		d.cfg.sla_minute_ms = parse_long("CANARY_TEST_SLA_MINUTE_MS", tm, 200, 60000);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct cn_err err = {0};
	void *http = NULL;
	int rc = 0;
	if (!(d.group = cn_metrics_group_new(&err))) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		return err.code;
	}
	if (d.cfg.listen && !(http = daemon_http_start(&d, &err))) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		rc = err.code;
		goto out;
	}
	if (connect_store(&d, &err) < 0) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		rc = err.code;
		goto out;
	}
	atomic_store(&d.stats.healthy, 1);
	dlog("info", "started", dstr("owner", d.cfg.owner), dstr("listen", d.cfg.listen));
	if (daemon_recorder_start(&d, &err) < 0) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		rc = err.code;
		goto out;
	}
	if (d.cfg.notify && !d.cfg.once && daemon_notifier_start(&d, &err) < 0) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		rc = err.code;
		goto out;
	}

	if (d.cfg.sla && !d.cfg.once && daemon_sla_start(&d, &err) < 0) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		rc = err.code;
		stop_flag = 1;
		daemon_notifier_join(&d);
		goto out;
	}

	/* One loop drives everything: claims (every poll interval, at once after a NOTIFY, and again while a full
	 * claim keeps making progress), the reads in flight, and the ticks of reads that finished. A claim also
	 * renews the leases of the rollouts it returns, and a rollout whose read is in flight stays due, so a slow
	 * endpoint never costs the daemon its lease. */
	int64_t backoff_ms = 200, next_claim = 0, next_gc = 0;
	bool claimed_once = false, full = false, commands_round = false;
	while (!stop_flag) {
		/* batches the recorder has answered: log, move gateways; a NOTIFY that found one of their rollouts
		 * with the recorder claims again now */
		if (daemon_recorder_collect(&d) > 0 && d.reclaim_after_record) {
			d.reclaim_after_record = false;
			d.notified = true;
			commands_round = true;
			next_claim = 0;
		}
		daemon_flush_ticks(&d, false); /* what gathered while the recorder was busy */
		int64_t now = cn_mono_ms();
		sync_round_trips(&d);
		if (d.cfg.gc_older_than_ms > 0 && now >= next_gc && atomic_load(&d.stats.healthy) && !d.cfg.once)
			next_gc = run_gc(&d, now);
		if (now >= next_claim && !(d.cfg.once && claimed_once)) {
			int64_t ids[MAX_CLAIM];
			bool due[MAX_CLAIM];
			struct cn_claim claim = {.ids = ids, .due = due};
			atomic_fetch_add(&d.stats.rounds, 1);
			/* after a NOTIFY, the rollouts with a command waiting first, however many ticks are due */
			bool cmd_round = commands_round;
			commands_round = false;
			if (cmd_round) {
				d.cmd_round.notified = d.notify_seen_ms ? d.notify_seen_ms : now;
				d.cmd_round.notified_db = d.notify_seen_ms ? d.notify_seen_db_ms : 0;
				d.cmd_round.look_gap = d.notify_seen_ms ? d.notify_gap_ms : -1;
				d.cmd_round.claim = cn_mono_ms();
				d.notify_seen_ms = 0;
			} else {
				memset(&d.cmd_round, 0, sizeof d.cmd_round); /* (command.timing gives no round parts) */
			}
			if ((cmd_round ? cn_store_claim_commands(d.store, d.cfg.owner, d.cfg.lease_ms, d.cfg.max_claim,
								 &claim, &err)
				       : cn_store_claim_batch(d.store, d.cfg.owner, d.cfg.lease_ms, d.cfg.max_claim, &claim,
							      &err)) < 0) {
				atomic_store(&d.stats.healthy, 0);
				if (!daemon_fd_check("database", err.msg))
					dlog("error", "store.error", dstr("error", err.msg));
				daemon_cancel_reads(&d); /* their ticks could not be recorded */
				if (d.cfg.once) {
					rc = err.code;
					break;
				}
				/* Reconnect with a growing pause; our leases expire meanwhile and another daemon may take
				 * over. */
				nap(backoff_ms);
				backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
				if (connect_store(&d, &err) == 0) {
					atomic_store(&d.stats.healthy, 1);
					backoff_ms = 200;
					dlog("info", "store.reconnected");
				} else if (!daemon_fd_check("database", err.msg)) {
					dlog("error", "store.error", dstr("error", err.msg));
				}
				continue;
			}
			if (!atomic_load(&d.stats.healthy)) {
				/* the database answers again on the connection we kept (every new one was refused) */
				atomic_store(&d.stats.healthy, 1);
				backoff_ms = 200;
				dlog("info", "store.recovered");
			}
			int n = claim.n;
			d.db_now_ms = claim.db_now_ms;
			d.mono_claim_ms = cn_mono_ms();
			d.mono_seen_ms = d.mono_claim_ms;
			claimed_once = true;
			atomic_fetch_add(&d.stats.claims, (unsigned long long)n);
			if (n > 0) CN_CRASH_POINT("after_claim");
			static struct claimed rows[MAX_CLAIM];
			read_rows(&d, ids, n, rows);
			if (cmd_round) {
				d.cmd_round.claimed = d.mono_claim_ms;
				d.cmd_round.rows = cn_mono_ms();
			}
			commands_first(ids, due, rows, n);
			int progress = 0;
			bool cut_short = false;
			for (int i = 0; i < n; i++) {
				if (stop_flag) {
					claimed_drop(&rows[i]);
					continue;
				}
				heartbeat(&d);
				struct cn_err perr = {0};
				int r = daemon_turn(&d, ids[i], due[i], row_for_turn(&d, &rows[i]), &perr);
				if (r < 0 && !daemon_fd_check("rollout", perr.msg))
					dlog(perr.code == CN_EUNAVAIL ? "warn" : "error", "rollout.error",
					     dint("rollout", ids[i]), dstr("error", perr.msg));
				else
					progress += r;
				/* a long claim: tick the reads that finished meanwhile instead of after the last turn, and
				 * end the round early when a NOTIFY came (an operator's abort waits for the next claim, not
				 * for up to MAX_CLAIM gateway calls; the rest stay ours and due, and are claimed again) */
				if (i % TURNS_BETWEEN_TICKS == TURNS_BETWEEN_TICKS - 1 && i + 1 < n) {
					tick_ready(&d, 0);
					if (notify_waiting(&d)) {
						for (int j = i + 1; j < n; j++)
							claimed_drop(&rows[j]);
						n = i + 1;
						cut_short = true;
						commands_round = true;
					}
				}
			}
			if (!stop_flag && daemon_drills_round(&d) > 0)
				progress++;
			d.notified = cut_short; /* the next round reads the rows a NOTIFY may concern */
			daemon_ctx_gc(&d, cn_mono_ms(), false);
			trim_heap(&d);
			if (n > 0)
				daemon_hist_observe(&d.stats.round, (double)(cn_mono_ms() - now) / 1000.0);
			/* more may be due; a claim with no progress (e.g. only reads in flight) waits like any other */
			full = n == d.cfg.max_claim && !cmd_round;
			next_claim = (full && progress > 0) || cut_short || cmd_round ? 0 : cn_mono_ms() + d.cfg.poll_ms;
			/* the next rollout falls due before the poll interval ends: claim it then, not up to --poll late */
			if (next_claim > 0 && claim.next_due_ms > 0) {
				int64_t at = d.mono_claim_ms + (claim.next_due_ms - claim.db_now_ms) + NEXT_DUE_SLACK_MS;
				if (at < now + MIN_CLAIM_GAP_MS)
					at = now + MIN_CLAIM_GAP_MS;
				if (at < next_claim)
					next_claim = at;
			}
		}
		if (d.cfg.once && claimed_once && cn_metrics_group_inflight(d.group) == 0) {
			tick_ready(&d, -1);
			break;
		}
		/* Wait for a read to progress, a NOTIFY, or the next claim. */
		struct cn_err nerr = {0};
		int notified = drain_notify(&d, &nerr);
		if (notified == 0 && d.notify_seen_ms != 0)
			notified = 1; /* one that a tick_ready saw */
		int64_t wait = next_claim - cn_mono_ms();
		if (d.cfg.once)
			wait = 100; /* only the reads are left to finish */
		else if (notified != 0)
			wait = 0;
		if (wait > RECORDER_POLL_MS && (d.npend > 0 || daemon_recorder_busy(&d)))
			wait = RECORDER_POLL_MS; /* the recorder's answers are collected at the top of the loop */
		if (wait < 0)
			wait = 0;
		bool fd_ready = false;
		struct cn_err werr = {0};
		if (cn_metrics_group_wait(d.group, notified < 0 ? -1 : cn_store_socket(d.store), (int)wait, &fd_ready, &werr) < 0) {
			dlog("error", "metrics.error", dstr("error", werr.msg));
			nap(100);
		}
		if (fd_ready && notified == 0)
			notified = drain_notify(&d, &nerr);
		if (notified > 0) {
			next_claim = 0; /* a command or a new rollout: claim now, commands first */
			d.notified = true;
			commands_round = true;
		}
		if (notified < 0 && !stop_flag) {
			atomic_store(&d.stats.healthy, 0);
			dlog("error", "store.error", dstr("error", nerr.msg));
			daemon_cancel_reads(&d);
			connect_store(&d, &err);
			next_claim = 0;
			d.notified = true; /* a NOTIFY may have been lost with the connection */
		}
		int ticked = tick_ready(&d, -1);
		if (full && ticked > 0)
			next_claim = 0; /* the claim was full: the ticks moved those rollouts on, claim the next ones */
	}
	if (d.npend > 0)
		daemon_flush_ticks(&d, true); /* judged ticks are recorded, also on SIGTERM */
	daemon_recorder_stop(&d); /* what was judged is recorded before the leases go */
	if (d.store) {
		struct cn_err rerr = {0};
		cn_store_release(d.store, d.cfg.owner, &rerr);
		daemon_drills_release(&d);
	}
	stop_flag = 1; /* also when the loop ended on its own (--once, an error): the notifier stops too */
	daemon_preflights_stop(&d);
	daemon_notifier_join(&d);
	daemon_sla_join(&d);
	dlog("info", "stopped", dstr("owner", d.cfg.owner),
	     dint("sla_minutes", (int64_t)atomic_load(&d.stats.sla_recorded)),
	     dint("sla_minutes_no_data", (int64_t)atomic_load(&d.stats.sla_nodata)));
out:
	daemon_recorder_stop(&d); /* (an early exit: started, nothing queued) */
	daemon_ctx_gc(&d, 0, true);
	daemon_drills_free(&d);
	cn_metrics_group_free(d.group);
	cn_curl_pool_drain();
	cn_json_arena_release();
	free(d.ctx);
	cn_store_close(d.store);
	daemon_http_stop(http);
	return rc;
}
