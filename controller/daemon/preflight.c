/* canaryd's pre-flights (issue 12, items 3 and 4): a pending rollout whose policy has a preflight: section does not
 * start step 1 until its pre-flight passed. The run takes the profile's duration, so it goes on a thread of its own
 * with its own database connection, and the control loop keeps ticking every other rollout (and answers this one's
 * commands: an abort stops the run within a second). State is in the database (preflights, 0009): the daemon that
 * holds the rollout's lease opens an attempt, the thread records the outcome. A daemon that dies mid-run leaves the
 * attempt `running` under its name; whoever takes the rollout over starts a new attempt (a fixed-sample test is
 * judged on a whole run), at most CN_PREFLIGHT_MAX_ATTEMPTS times, then the rollout fails with the reason. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary/dynbuf.h"
#include "canary/preflight.h"
#include "canary/report_preflight.h"
#include "canary/rollout.h"
#include "canary/store.h"
#include "canary/store_preflight.h"
#include "canary/store_rollouts.h"
#include "daemon_int.h"
#include "daemon_preflight_int.h"

#define PF_CHECK_EVERY_S 1.0       /* the run looks at the rollout's state this often (an abort stops it) */
#define PF_HOLD_MS 1000            /* a rollout whose pre-flight runs is looked at again after this long */
#define PF_DOC_MAX (8 * 1024 * 1024)

struct pf_worker {
	int64_t id;
	int attempt;
	pthread_t thread;
	atomic_bool done, cancel;
	const char *db;
	char owner[128];
	struct cn_policy policy;
	struct cn_service service;
	int cand_slot;
	struct cn_store *store;      /* the thread's own connection */
	struct pf_worker *next;
};

struct daemon_preflights {
	struct pf_worker *head;
};

/* Every second of the run: stop when the rollout ended (an abort) or another attempt replaced this one. */
static void check_progress(const struct cn_load_progress *p, void *arg)
{
	struct pf_worker *w = arg;
	struct cn_preflight_row row;
	struct cn_err err = { 0 };
	(void)p;
	if (cn_store_preflight_get(w->store, w->id, &row, &err) < 0)
		return; /* the database away for a moment: the run goes on, its result is recorded or refused later */
	if (strcmp(row.phase, "pending") != 0 || row.state != CN_PF_RUNNING || row.attempt != w->attempt ||
	    strcmp(row.owner, w->owner) != 0)
		atomic_store(&w->cancel, true);
}

/* The outcome for canary.preflight_finish: {"verdict", "reason", "result"}. Returns a new string or NULL. */
static char *finish_doc(const char *verdict, const char *reason, const char *result)
{
	struct cn_dynbuf b;
	cn_dynbuf_init(&b, PF_DOC_MAX);
	cn_dynbuf_addf(&b, "{\"verdict\":\"%s\",\"reason\":", verdict);
	cn_dynbuf_add_json_string(&b, reason, strlen(reason));
	cn_dynbuf_addf(&b, ",\"result\":%s}", result && result[0] ? result : "null");
	char *s = cn_dynbuf_error(&b) ? NULL : cn_dynbuf_take(&b, NULL);
	cn_dynbuf_free(&b);
	return s;
}

static void *run(void *arg)
{
	struct pf_worker *w = arg;
	struct cn_err err = { 0 };
	struct cn_preflight_outcome *out = calloc(1, sizeof *out);
	char cand[512], base[512], why[CN_ERR_MSG_MAX + 128], became[32] = "";
	const char *verdict = "error";
	char *result = NULL, *doc = NULL;
	const struct cn_preflight *pf = &w->policy.preflight;
	const struct cn_slot *cs = &w->service.slots[w->cand_slot], *bs = &w->service.slots[1 - w->cand_slot];

	if (!(w->store = cn_store_connect(w->db, &err))) {
		dlog("error", "preflight.error", dint("rollout", w->id), dstr("error", err.msg));
		goto out; /* the attempt stays running: the next turn sees the thread done and starts another */
	}
	if (!out) {
		snprintf(why, sizeof why, "pre-flight could not run: out of memory");
	} else if (cn_slot_base_url(cs->metrics_url, cand, sizeof cand) < 0 ||
		   (pf->compare == CN_PF_COMPARE_BASELINE && cn_slot_base_url(bs->metrics_url, base, sizeof base) < 0)) {
		snprintf(why, sizeof why, "pre-flight could not run: slot '%s' or '%s' has no metrics_url whose server "
			 "to drive", cs->name, bs->name);
	} else {
		dlog("info", "preflight.running", dint("rollout", w->id), dint("attempt", w->attempt),
		     dstr("candidate", cand), dstr("baseline", pf->compare == CN_PF_COMPARE_BASELINE ? base : NULL),
		     dnum("rate", pf->profile.rate), dnum("duration_s", (double)pf->profile.duration_ms / 1e3));
		struct cn_preflight_opts o = {
			.profile = &pf->profile, .pf = pf, .budget = cn_policy_preflight_budget(&w->policy),
			.contract = &w->service.contract, .candidate_url = cand,
			.baseline_url = pf->compare == CN_PF_COMPARE_BASELINE ? base : NULL, .seed = (uint64_t)w->id,
			.cancel = &w->cancel, .progress = check_progress, .progress_arg = w,
			.progress_every_s = PF_CHECK_EVERY_S,
		};
		int rc = cn_preflight_run(&o, out, &err);
		if (rc < 0 && atomic_load(&w->cancel)) {
			verdict = "cancelled";
			snprintf(why, sizeof why, "pre-flight stopped: the rollout ended or the run was taken over");
		} else if (rc < 0) {
			snprintf(why, sizeof why, "pre-flight could not run: %s", err.msg);
		} else {
			verdict = out->res.passed ? "passed" : "failed";
			snprintf(why, sizeof why, "%s", out->res.reason);
			struct cn_preflight_view v = {
				.candidate_slot = cs->name, .candidate_url = cand,
				.baseline_slot = out->has_base ? bs->name : NULL, .baseline_url = out->has_base ? base : NULL,
				.profile = &pf->profile, .pf = pf, .cand = &out->cand,
				.base = out->has_base ? &out->base : NULL, .res = &out->res,
			};
			result = cn_report_preflight_json(&v);
		}
	}
	if (!(doc = finish_doc(verdict, why, result))) {
		dlog("error", "preflight.error", dint("rollout", w->id), dstr("error", "out of memory"));
		goto out;
	}
	if (cn_store_preflight_finish(w->store, w->id, w->owner, w->attempt, doc, became, sizeof became, &err) < 0)
		dlog(err.code == CN_EUNAVAIL ? "warn" : "error", "preflight.error", dint("rollout", w->id),
		     dint("attempt", w->attempt), dstr("error", err.msg));
	else
		dlog(strcmp(became, "passed") == 0 ? "info" : "warn", "preflight.done", dint("rollout", w->id),
		     dint("attempt", w->attempt), dstr("verdict", verdict), dstr("rollout_now", became),
		     dstr("reason", why));
out:
	free(result);
	free(doc);
	free(out);
	cn_store_close(w->store);
	w->store = NULL;
	atomic_store(&w->done, true);
	return NULL;
}

static struct daemon_preflights *set_of(struct daemon *d)
{
	if (!d->preflights)
		d->preflights = calloc(1, sizeof *d->preflights);
	return d->preflights;
}

/* Joins and frees the workers whose thread finished. */
static void reap(struct daemon_preflights *s)
{
	for (struct pf_worker **pp = &s->head; *pp;) {
		struct pf_worker *w = *pp;
		if (!atomic_load(&w->done)) {
			pp = &w->next;
			continue;
		}
		pthread_join(w->thread, NULL);
		*pp = w->next;
		free(w);
	}
}

int daemon_preflight_turn(struct daemon *d, const struct cn_policy *policy, const struct cn_service *service,
			  const struct cn_rollout_row *row, struct cn_err *err)
{
	struct daemon_preflights *s = set_of(d);
	struct cn_preflight_row pr;
	int rc;
	if (!s)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	reap(s);
	if ((rc = cn_store_preflight_get(d->store, row->id, &pr, err)) < 0)
		return rc;
	if (pr.state == CN_PF_PASSED)
		return 0;
	struct pf_worker *w = NULL;
	for (struct pf_worker *x = s->head; x; x = x->next)
		if (x->id == row->id)
			w = x;
	if (w && pr.state == CN_PF_RUNNING && pr.attempt == w->attempt && strcmp(pr.owner, d->cfg.owner) == 0)
		return cn_store_hold(d->store, row->id, d->cfg.owner, row->reason[0] ? row->reason : "pre-flight running",
				     PF_HOLD_MS, err) < 0 ? -err->code : 1;
	if (w) /* a thread of an older attempt: it stops within a second (its attempt is no longer the running one) */
		atomic_store(&w->cancel, true);
	/* none yet, or an attempt no thread of ours runs (its daemon died, or ours lost it): start one */
	int attempt = 0;
	if ((rc = cn_store_preflight_start(d->store, row->id, d->cfg.owner, CN_PREFLIGHT_MAX_ATTEMPTS, &attempt, err)) < 0)
		return rc;
	if (attempt == 0) {
		dlog("warn", "preflight.gave_up", dint("rollout", row->id), dint("attempts", CN_PREFLIGHT_MAX_ATTEMPTS));
		return 1;
	}
	if (!(w = calloc(1, sizeof *w)))
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	w->id = row->id;
	w->attempt = attempt;
	w->db = d->cfg.db;
	snprintf(w->owner, sizeof w->owner, "%s", d->cfg.owner);
	w->policy = *policy;
	w->service = *service;
	w->cand_slot = row->candidate_slot;
	if (pthread_create(&w->thread, NULL, run, w) != 0) {
		free(w);
		return cn_fail(err, CN_EINTERNAL, "rollout %lld: cannot start the pre-flight's thread", (long long)row->id);
	}
	w->next = s->head;
	s->head = w;
	dlog("info", "preflight.started", dint("rollout", row->id), dint("attempt", attempt));
	return 1;
}

void daemon_preflights_stop(struct daemon *d)
{
	struct daemon_preflights *s = d->preflights;
	if (!s)
		return;
	for (struct pf_worker *w = s->head; w; w = w->next)
		atomic_store(&w->cancel, true);
	for (struct pf_worker *w = s->head, *next; w; w = next) {
		next = w->next;
		pthread_join(w->thread, NULL);
		free(w);
	}
	free(s);
	d->preflights = NULL;
}
