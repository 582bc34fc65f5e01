/* canaryd's webhook delivery: a thread of its own with its own database connection, so a slow or dead receiver
 * never holds up the control loop. It leases due outbox rows (canary.outbox_claim: the head of each stream, FOR
 * UPDATE SKIP LOCKED, so any number of daemons share the work), POSTs them all at once on libcurl's multi
 * interface (each bounded by its hook's timeout), and records each attempt: delivered, or failed with the next
 * attempt after an exponential back-off (canary.outbox_result). It wakes on NOTIFY canary_outbox (a change was
 * committed with notifications), on a finished POST, and every poll interval (retries that fell due). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "canary/notify.h"
#include "canary/policy.h"
#include "canary/service.h"
#include "canary/store.h"
#include "canary/store_outbox.h"
#include "daemon_fd_int.h"
#include "daemon_int.h"

#define NOTIFY_MAX_INFLIGHT 32
#define NOTIFY_LEASE_MS 40000       /* longer than any hook's timeout (at most 30s) */
#define NOTIFY_RETRY_BASE_MS 500
#define NOTIFY_BACKLOG_EVERY_MS 1000

struct inflight {
	int64_t id;
	int attempts;             /* before this one */
	char event[32];
	char url[CN_NOTIFY_URL_MAX];
};

struct notifier {
	struct daemon *d;
	struct cn_store *st;
	struct cn_notify_group *group;
	struct inflight slots[NOTIFY_MAX_INFLIGHT];
	int nslots;
	unsigned rand_state;
};

/* The back-off before attempt attempts+2: base * 2^attempts, at most the configured maximum, with +-20% jitter so
 * that daemons retrying the same receiver spread out. */
static int64_t retry_ms(struct notifier *n, int attempts)
{
	int64_t max = n->d->cfg.notify_retry_max_ms, ms = NOTIFY_RETRY_BASE_MS;
	for (int i = 0; i < attempts && ms < max; i++)
		ms *= 2;
	if (ms > max)
		ms = max;
	n->rand_state = n->rand_state * 1103515245u + 12345u;
	int64_t jitter = (int64_t)((n->rand_state >> 8) % 41) - 20; /* -20 .. 20 percent */
	return ms + ms * jitter / 100;
}

static void record(struct notifier *n, const struct inflight *f, bool delivered, int status, const char *error)
{
	struct cn_err err = {0};
	int64_t retry = delivered ? 0 : retry_ms(n, f->attempts);
	int rc = cn_store_outbox_result(n->st, f->id, n->d->cfg.owner, delivered, status, delivered ? NULL : error,
					retry, &err);
	if (rc < 0) {
		/* the lease runs out and the row is tried again: at least once, never lost */
		dlog("error", "notify.store_error", dint("outbox", f->id), dstr("error", err.msg));
		return;
	}
	if (delivered) {
		atomic_fetch_add(&n->d->stats.notify_delivered, 1);
		dlog("info", "notify.delivered", dint("outbox", f->id), dstr("notification", f->event), dstr("url", f->url),
		     dint("attempt", f->attempts + 1));
	} else {
		atomic_fetch_add(&n->d->stats.notify_failed, 1);
		dlog("warn", "notify.failed", dint("outbox", f->id), dstr("notification", f->event), dstr("url", f->url),
		     dint("attempt", f->attempts + 1), dint("status", status), dstr("error", error),
		     dint("retry_ms", retry));
	}
}

/* The webhook an outbox row names, read from its source (the policy or service version's YAML). */
static int find_hook(const struct cn_outbox_item *it, struct cn_notify_hook *out, struct cn_err *err)
{
	const struct cn_notify *nt = NULL;
	struct cn_policy *p = NULL;
	struct cn_service *s = NULL;
	int rc = -CN_EINTERNAL;
	if (!it->source) {
		rc = cn_fail(err, CN_EINPUT, "the webhook's source is missing");
		goto out;
	}
	if (it->from_service) {
		if (!(s = calloc(1, sizeof *s))) {
			rc = cn_fail(err, CN_EINTERNAL, "out of memory");
			goto out;
		}
		if ((rc = cn_service_parse(it->source, strlen(it->source), "stored service", s, err)) < 0)
			goto out;
		nt = &s->notify;
	} else {
		if (!(p = calloc(1, sizeof *p))) {
			rc = cn_fail(err, CN_EINTERNAL, "out of memory");
			goto out;
		}
		if ((rc = cn_policy_parse(it->source, strlen(it->source), "stored policy", p, err)) < 0)
			goto out;
		nt = &p->notify;
	}
	if (it->hook < 0 || it->hook >= nt->nhooks) {
		rc = cn_fail(err, CN_EINPUT, "the webhook %d is not in its source", it->hook);
		goto out;
	}
	*out = nt->hooks[it->hook];
	rc = 0;
out:
	free(p);
	free(s);
	return rc;
}

/* Starts the POST of one leased row, or records at once why it cannot be made (and retries it later). */
static void start(struct notifier *n, const struct cn_outbox_item *it)
{
	struct inflight f = { .id = it->id, .attempts = it->attempts };
	snprintf(f.event, sizeof f.event, "%s", it->event);
	snprintf(f.url, sizeof f.url, "%s", it->url);
	struct cn_notify_hook hook;
	struct cn_err err = {0};
	char *body = NULL;
	const char *secret = NULL;
	if (find_hook(it, &hook, &err) < 0)
		goto fail;
	if (hook.secret_env[0]) {
		secret = getenv(hook.secret_env);
		if (!secret || !*secret) {
			cn_fail(&err, CN_EINPUT, "secret_env '%s' is not set in canaryd's environment; set it and restart "
				"canaryd (the event waits)", hook.secret_env);
			goto fail;
		}
	} else if (hook.secret[0]) {
		secret = hook.secret;
	}
	if (!(body = cn_notify_body(hook.format, it->key, it->payload, &err)))
		goto fail;
	struct cn_notify_request req = {
		.tag = it->id, .url = it->url, .body = body, .key = it->key, .event = it->event, .secret = secret,
		.secret_len = secret ? strlen(secret) : 0, .timeout_ms = hook.timeout_ms,
	};
	if (cn_notify_group_add(n->group, &req, &err) < 0)
		goto fail;
	free(body);
	n->slots[n->nslots++] = f;
	return;
fail:
	free(body);
	record(n, &f, false, 0, err.msg);
}

static struct inflight *take_slot(struct notifier *n, int64_t id, struct inflight *out)
{
	for (int i = 0; i < n->nslots; i++) {
		if (n->slots[i].id == id) {
			*out = n->slots[i];
			n->slots[i] = n->slots[--n->nslots];
			return out;
		}
	}
	return NULL;
}

/* Leases what fits in the free slots and starts it. Returns how many were leased, or -1 (the connection failed). */
static int claim(struct notifier *n)
{
	struct cn_outbox_batch *b = NULL;
	struct cn_err err = {0};
	int room = NOTIFY_MAX_INFLIGHT - n->nslots;
	if (room <= 0)
		return 0;
	if (cn_store_outbox_claim(n->st, n->d->cfg.owner, NOTIFY_LEASE_MS, room, &b, &err) < 0) {
		dlog("error", "notify.store_error", dstr("error", err.msg));
		return -1;
	}
	int got = (int)b->n;
	for (size_t i = 0; i < b->n && n->nslots < NOTIFY_MAX_INFLIGHT; i++)
		start(n, &b->items[i]);
	cn_outbox_batch_free(b);
	return got;
}

static void update_backlog(struct notifier *n)
{
	int64_t count = 0, oldest = 0;
	struct cn_err err = {0};
	if (cn_store_outbox_backlog(n->st, &count, &oldest, &err) < 0) {
		dlog("error", "notify.store_error", dstr("error", err.msg));
		return;
	}
	atomic_store(&n->d->stats.notify_backlog, (unsigned long long)count);
	atomic_store(&n->d->stats.notify_oldest_ms, (unsigned long long)oldest);
}

static void finish_results(struct notifier *n, bool *claim_now)
{
	struct cn_notify_result res;
	while (cn_notify_group_next(n->group, &res) == 1) {
		struct inflight f;
		if (!take_slot(n, res.tag, &f))
			continue;
		record(n, &f, res.delivered, res.status, res.error);
		if (res.delivered)
			*claim_now = true; /* the next event of its stream may go now */
	}
}

static void disconnect(struct notifier *n)
{
	cn_store_close(n->st);
	n->st = NULL;
}

static void *run(void *arg)
{
	struct notifier n = { .d = arg };
	struct cn_err err = {0};
	n.rand_state = (unsigned)getpid() ^ (unsigned)cn_mono_ms();
	if (!(n.group = cn_notify_group_new(&err))) {
		dlog("error", "notify.error", dstr("error", err.msg));
		return NULL;
	}
	int64_t backoff = 200, next_claim = 0, next_backlog = 0;
	while (!*n.d->stop) {
		if (!n.st) {
			struct cn_store *st = cn_store_connect(n.d->cfg.db, &err);
			if (st && cn_store_listen(st, "canary_outbox", &err) < 0) {
				cn_store_close(st);
				st = NULL;
			}
			if (!st) {
				if (!daemon_fd_check("database", err.msg))
					dlog("error", "notify.store_error", dstr("error", err.msg));
				for (int64_t t = 0; t < backoff && !*n.d->stop; t += 100)
					usleep(100 * 1000);
				backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
				continue;
			}
			n.st = st;
			backoff = 200;
			next_claim = 0;
		}
		int64_t now = cn_mono_ms();
		if (now >= next_claim) {
			int got = claim(&n);
			if (got < 0) {
				disconnect(&n);
				continue;
			}
			/* a full claim: more may be waiting */
			next_claim = got > 0 && n.nslots < NOTIFY_MAX_INFLIGHT ? now + 50 : now + n.d->cfg.poll_ms;
		}
		if (now >= next_backlog) {
			update_backlog(&n);
			next_backlog = now + NOTIFY_BACKLOG_EVERY_MS;
		}
		int64_t wait = (next_claim < next_backlog ? next_claim : next_backlog) - cn_mono_ms();
		wait = wait < 0 ? 0 : wait > 500 ? 500 : wait; /* short slices: SIGTERM is seen at once */
		bool fd_ready = false;
		if (cn_notify_group_wait(n.group, cn_store_socket(n.st), (int)wait, &fd_ready, &err) < 0) {
			dlog("error", "notify.error", dstr("error", err.msg));
			usleep(100 * 1000);
		}
		int notified = cn_store_wait_notify(n.st, 0, &err);
		if (notified < 0) {
			dlog("error", "notify.store_error", dstr("error", err.msg));
			disconnect(&n);
			continue;
		}
		bool claim_now = notified > 0;
		finish_results(&n, &claim_now);
		if (claim_now)
			next_claim = 0;
	}
	/* Stopping: what is in flight is given back for the next attempt at once (the receiver may have it: the same
	 * key then tells it so). */
	for (int i = 0; i < n.nslots && n.st; i++)
		record(&n, &n.slots[i], false, 0, "canaryd stopped during the attempt");
	cn_notify_group_free(n.group);
	cn_store_close(n.st);
	return NULL;
}

int daemon_spawn(struct daemon *d, pthread_t *t, void *(*fn)(void *), const char *what, struct cn_err *err)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main loop; the thread inherits the mask */
	int rc = pthread_create(t, NULL, fn, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return cn_fail(err, CN_EINTERNAL, "cannot start the %s thread: %s", what, strerror(rc));
	return 0;
}

int daemon_notifier_start(struct daemon *d, struct cn_err *err)
{
	int rc = daemon_spawn(d, &d->notifier, run, "notification", err);
	d->notifier_running = rc == 0;
	return rc;
}

void daemon_notifier_join(struct daemon *d)
{
	if (d->notifier_running)
		pthread_join(d->notifier, NULL);
	d->notifier_running = false;
}
