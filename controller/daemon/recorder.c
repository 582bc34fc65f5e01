/* canaryd's recorder: two threads, each with its own database connection, that record batches of judged ticks
 * (canary.record_batch), so the control loop goes on turning rollouts, starting reads and judging pages while
 * PostgreSQL writes. The loop encodes each batch (it owns the policies) and keeps what the batch is about; the
 * recorder only sends and reads the answers back. The loop collects finished batches (daemon_recorder_collect): it
 * logs each tick and moves the gateway of those whose weight changed, exactly as when it recorded them itself.
 * A rollout whose tick is with the recorder is left alone by the loop until the answer is back (its turn would
 * otherwise judge it again, or apply a command on a state about to be replaced): see rollout_ctx.recording. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/bug.h"
#include "canary/rollout.h"
#include "canary/store.h"
#include "canary/store_rollouts.h"
#include "daemon_int.h"

#define RECORDER_MAX_QUEUE 4 /* batches waiting or being sent; the loop waits for a place beyond that */
#define RECORDER_THREADS 2   /* senders, each with its own connection: PostgreSQL runs a statement on one core, and
			      * one sender kept one backend busy at N=10,000 while the other core idled. A rollout
			      * has at most one tick on its way, so two batches never touch the same rollout. */

struct rec_job {
	struct rec_job *next;
	struct cn_record_batch b;
	struct pending_tick pend[DAEMON_BATCH_MAX]; /* the loop's: briefs and packed states (the recorder never
						     * touches them) */
	int rcs[DAEMON_BATCH_MAX];
	char msgs[DAEMON_BATCH_MAX][CN_ERR_MSG_MAX];
	int code;                                   /* 0: the database answered for the batch (see rcs) */
	char msg[CN_ERR_MSG_MAX];
};

struct daemon_recorder {
	struct daemon *d;
	pthread_t t[RECORDER_THREADS];
	int nthreads;
	pthread_mutex_t mu;
	pthread_cond_t work, done_cv;
	struct rec_job *todo, *todo_tail, *done, *done_tail;
	int queued; /* batches not yet collected by the loop: waiting, being sent, or answered */
	bool stop;
};

static void job_free(struct rec_job *j)
{
	for (int i = 0; i < DAEMON_BATCH_MAX; i++)
		daemon_pending_free(&j->pend[i]);
	cn_record_batch_free(&j->b);
	free(j);
}

/* st: the sender's own connection; NULL until its first batch, and after a failure */
static void send_job(struct daemon_recorder *r, struct cn_store **stp, struct rec_job *j)
{
	struct cn_err err = {0};
	if (!*stp && !(*stp = cn_store_connect(r->d->cfg.db, &err))) {
		j->code = err.code ? err.code : CN_EUNAVAIL;
		snprintf(j->msg, sizeof j->msg, "%s", err.msg);
		return;
	}
	unsigned long long before = cn_store_round_trips(*stp);
	if (cn_store_record_batch_send(*stp, &j->b, j->rcs, j->msgs, &err) < 0) {
		j->code = err.code ? err.code : CN_EINTERNAL;
		snprintf(j->msg, sizeof j->msg, "%s", err.msg);
		/* the connection may be gone: the next batch opens a new one (rare, and cheap next to a lost tick) */
		cn_store_close(*stp);
		*stp = NULL;
		return;
	}
	atomic_fetch_add(&r->d->stats.db_round_trips, cn_store_round_trips(*stp) - before);
}

static void *recorder_main(void *arg)
{
	struct daemon_recorder *r = ((struct daemon *)arg)->recorder; /* set before the thread starts */
	struct cn_err err = {0};
	/* connected before the first batch, so the first ticks do not wait for a login (a failure here is retried by
	 * the first batch, which then says what failed) */
	struct cn_store *st = cn_store_connect(r->d->cfg.db, &err);
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->todo && !r->stop)
			pthread_cond_wait(&r->work, &r->mu);
		if (!r->todo)
			break; /* stop, and nothing left to send */
		struct rec_job *j = r->todo;
		r->todo = j->next;
		if (!r->todo)
			r->todo_tail = NULL;
		j->next = NULL;
		pthread_mutex_unlock(&r->mu);
		send_job(r, &st, j);
		pthread_mutex_lock(&r->mu);
		if (r->done_tail)
			r->done_tail->next = j;
		else
			r->done = j;
		r->done_tail = j;
		pthread_cond_broadcast(&r->done_cv);
	}
	pthread_mutex_unlock(&r->mu);
	cn_store_close(st);
	return NULL;
}

int daemon_recorder_start(struct daemon *d, struct cn_err *err)
{
	struct daemon_recorder *r = calloc(1, sizeof *r);
	if (!r)
		return cn_fail(err, CN_EINTERNAL, "out of memory starting the recorder");
	r->d = d;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->done_cv, NULL);
	d->recorder = r;
	for (int i = 0; i < RECORDER_THREADS; i++) {
		if (daemon_spawn(d, &r->t[i], recorder_main, "recorder", err) < 0) {
			if (r->nthreads > 0)
				break; /* fewer senders, still correct */
			d->recorder = NULL;
			pthread_mutex_destroy(&r->mu);
			pthread_cond_destroy(&r->work);
			pthread_cond_destroy(&r->done_cv);
			free(r);
			return -err->code;
		}
		r->nthreads++;
	}
	return 0;
}

bool daemon_recorder_busy(const struct daemon *d)
{
	struct daemon_recorder *r = d->recorder;
	if (!r)
		return false;
	pthread_mutex_lock(&r->mu);
	bool busy = r->queued > 0;
	pthread_mutex_unlock(&r->mu);
	return busy;
}

bool daemon_recorder_saturated(const struct daemon *d)
{
	struct daemon_recorder *r = d->recorder;
	if (!r)
		return false;
	pthread_mutex_lock(&r->mu);
	bool full = r->queued >= r->nthreads;
	pthread_mutex_unlock(&r->mu);
	return full;
}

static struct rollout_ctx *ctx_of(struct daemon *d, int64_t id)
{
	for (int i = 0; i < d->nctx; i++)
		if (d->ctx[i].id == id)
			return &d->ctx[i];
	return NULL;
}

/* The loop's half of a finished batch: counts, logs, and gateway moves. */
static void finish_job(struct daemon *d, struct rec_job *j)
{
	if (j->code != 0) {
		atomic_fetch_add(&d->stats.tick_errors, (unsigned long long)j->b.n);
		dlog(j->code == CN_EUNAVAIL ? "warn" : "error", "store.error", dint("ticks", j->b.n),
		     dstr("error", j->msg));
		/* nothing recorded: each rollout ticks again when it is next claimed */
	}
	for (int i = 0; i < j->b.n; i++) {
		struct pending_tick *p = &j->pend[i];
		struct rollout_ctx *c = ctx_of(d, p->id);
		if (c && c->recording > 0)
			c->recording--;
		if (j->code != 0)
			continue;
		if (j->rcs[i] < 0) {
			atomic_fetch_add(&d->stats.tick_errors, 1);
			dlog(j->rcs[i] == -CN_EUNAVAIL ? "warn" : "error", "rollout.error", dint("rollout", p->id),
			     dstr("error", j->msgs[i]));
			continue;
		}
		atomic_fetch_add(&d->stats.ticks, 1);
		daemon_tick_recorded(d, c, p);
	}
	job_free(j);
}

int daemon_recorder_collect(struct daemon *d)
{
	struct daemon_recorder *r = d->recorder;
	if (!r)
		return 0;
	pthread_mutex_lock(&r->mu);
	struct rec_job *j = r->done;
	r->done = r->done_tail = NULL;
	pthread_mutex_unlock(&r->mu);
	int n = 0;
	while (j) {
		struct rec_job *next = j->next;
		finish_job(d, j);
		pthread_mutex_lock(&r->mu);
		r->queued--;
		pthread_cond_broadcast(&r->done_cv);
		pthread_mutex_unlock(&r->mu);
		j = next;
		n++;
	}
	return n;
}

int daemon_recorder_submit(struct daemon *d, struct pending_tick *pend, int n, struct cn_err *err)
{
	struct daemon_recorder *r = d->recorder;
	CN_BUG_ON(!r || n <= 0 || n > DAEMON_BATCH_MAX);
	struct rec_job *j = calloc(1, sizeof *j);
	if (!j)
		return cn_fail(err, CN_EINTERNAL, "out of memory queueing %d ticks", n);
	if (daemon_pending_join(d, pend, n, &j->b, err) < 0) {
		free(j);
		return -err->code;
	}
	for (int i = 0; i < n; i++) { /* (their rollouts were marked recording when judged) */
		j->pend[i] = pend[i];
		memset(&pend[i], 0, sizeof pend[i]);
	}
	/* a place in the queue: while PostgreSQL is behind, the loop collects what is done and waits (backpressure:
	 * it starts no new reads meanwhile, so judged ticks never pile up in memory) */
	for (;;) {
		pthread_mutex_lock(&r->mu);
		bool room = r->queued < RECORDER_MAX_QUEUE;
		if (room) {
			r->queued++;
			if (r->todo_tail)
				r->todo_tail->next = j;
			else
				r->todo = j;
			r->todo_tail = j;
			pthread_cond_signal(&r->work);
		} else if (!r->done) {
			pthread_cond_wait(&r->done_cv, &r->mu);
		}
		pthread_mutex_unlock(&r->mu);
		if (room)
			return 0;
		daemon_recorder_collect(d);
	}
}

void daemon_recorder_stop(struct daemon *d)
{
	struct daemon_recorder *r = d->recorder;
	if (!r)
		return;
	/* everything queued is sent and its follow-ups done (SIGTERM finishes the work in progress) */
	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (r->queued > 0 && !r->done)
			pthread_cond_wait(&r->done_cv, &r->mu);
		bool empty = r->queued == 0;
		pthread_mutex_unlock(&r->mu);
		if (empty)
			break;
		daemon_recorder_collect(d);
	}
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->nthreads; i++)
		pthread_join(r->t[i], NULL);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->done_cv);
	free(r);
	d->recorder = NULL;
}
