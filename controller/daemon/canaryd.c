/* canaryd: the control loop. Claims due rollouts with leases in PostgreSQL, runs each one's turn, and sleeps until
 * the next tick is due or a NOTIFY says a rollout or a command arrived. SIGTERM finishes the turn in progress. */
#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canary/store.h"
#include "canary/store_rollouts.h"
#include "daemon.h"

#define MAX_CLAIM 64

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: canaryd [--db CONNINFO] [--listen 127.0.0.1:PORT] [--id NAME] [--lease DURATION_MS]\n"
		   "               [--poll MS] [--once]\n"
		   "  --db CONNINFO   PostgreSQL connection (default: DATABASE_URL, else libpq's PG* variables)\n"
		   "  --listen ADDR   serve /healthz and /metrics on ADDR (IPv4:PORT)\n"
		   "  --id NAME       lease owner name (default: HOST:PID:NONCE)\n"
		   "  --lease MS      lease length in milliseconds (default 15000)\n"
		   "  --poll MS       longest sleep between rounds (default 500)\n"
		   "  --once          run one round and exit\n");
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

/* Waits until a notification arrives on the store's connection or timeout_ms passes; drains notifications. */
static int wait_notify(PGconn *conn, int timeout_ms)
{
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
	int got = 0;
	if (p.fd < 0)
		return -1;
	/* A notification that arrived while the round ran its queries is already read off the socket and queued in
	 * libpq: poll() would not see it, and the command it announces would wait for the whole timeout. */
	if (!PQconsumeInput(conn))
		return -1;
	PGnotify *q = PQnotifies(conn);
	if (q) {
		PQfreemem(q);
		got++;
		timeout_ms = 0;
	}
	int r = poll(&p, 1, timeout_ms);
	if (r > 0) {
		if (!PQconsumeInput(conn))
			return -1;
	}
	PGnotify *n;
	while ((n = PQnotifies(conn)) != NULL) {
		got++;
		PQfreemem(n);
	}
	return got;
}

/* Opens a new connection that LISTENs; only once it works does it replace the old one, so d->store is never NULL
 * after the first success (a failed reconnect keeps the broken handle, whose calls fail cleanly). */
static int connect_store(struct daemon *d, struct cn_err *err)
{
	struct cn_store *st = cn_store_connect(d->cfg.db, err);
	if (!st)
		return -err->code;
	if (cn_store_run(st, "listen for notifications", "LISTEN canary", 0, NULL, err) < 0) {
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

int main(int argc, char **argv)
{
	struct daemon d;
	memset(&d, 0, sizeof d);
	d.cfg.lease_ms = 15000;
	d.cfg.poll_ms = 500;
	d.cfg.max_claim = MAX_CLAIM;
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
		{"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
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
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "canaryd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 64;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct cn_err err = {0};
	void *http = NULL;
	int rc = 0;
	if (d.cfg.listen && !(http = daemon_http_start(&d, &err))) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		return err.code;
	}
	if (connect_store(&d, &err) < 0) {
		fprintf(stderr, "canaryd: %s\n", err.msg);
		rc = err.code;
		goto out;
	}
	atomic_store(&d.stats.healthy, 1);
	dlog("info", "started", "owner", 's', d.cfg.owner, "listen", 's', d.cfg.listen, NULL);

	int64_t backoff_ms = 200;
	while (!stop_flag) {
		int64_t ids[MAX_CLAIM];
		bool due[MAX_CLAIM];
		int n = 0;
		atomic_fetch_add(&d.stats.rounds, 1);
		if (cn_store_claim(d.store, d.cfg.owner, d.cfg.lease_ms, ids, due, d.cfg.max_claim, &n, NULL, &err) < 0) {
			atomic_store(&d.stats.healthy, 0);
			dlog("error", "store.error", "error", 's', err.msg, NULL);
			if (d.cfg.once) {
				rc = err.code;
				break;
			}
			/* Reconnect with a growing pause; our leases expire meanwhile and another daemon may take over. */
			nap(backoff_ms);
			backoff_ms = backoff_ms * 2 > 5000 ? 5000 : backoff_ms * 2;
			if (connect_store(&d, &err) == 0) {
				atomic_store(&d.stats.healthy, 1);
				backoff_ms = 200;
				dlog("info", "store.reconnected", NULL);
			} else {
				dlog("error", "store.error", "error", 's', err.msg, NULL);
			}
			continue;
		}
		atomic_fetch_add(&d.stats.claims, (unsigned long long)n);
		int done = 0;
		for (int i = 0; i < n && !stop_flag; i++) {
			struct cn_err perr = {0};
			if (daemon_process(&d, ids[i], due[i], &perr) < 0)
				dlog(perr.code == CN_EUNAVAIL ? "warn" : "error", "rollout.error", "rollout", 'I',
				     ids[i], "error", 's', perr.msg, NULL);
			else
				done++;
		}
		daemon_ctx_gc(&d, now_ms(), false);
		if (d.cfg.once)
			break;
		if (n == d.cfg.max_claim && done > 0)
			continue; /* more may be due; a round with no progress waits like any other */
		if (wait_notify(cn_store_conn(d.store), (int)d.cfg.poll_ms) < 0 && !stop_flag) {
			atomic_store(&d.stats.healthy, 0);
			dlog("error", "store.error", "error", 's', PQerrorMessage(cn_store_conn(d.store)), NULL);
			connect_store(&d, &err);
		}
	}
	if (d.store) {
		struct cn_err rerr = {0};
		cn_store_release(d.store, d.cfg.owner, &rerr);
	}
	dlog("info", "stopped", "owner", 's', d.cfg.owner, NULL);
out:
	daemon_ctx_gc(&d, 0, true);
	free(d.ctx);
	cn_store_close(d.store);
	daemon_http_stop(http);
	return rc;
}
