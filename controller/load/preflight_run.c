/* A whole pre-flight (canary/preflight.h): the load on the candidate's server and, interleaved, the baseline's, the
 * answers checked against the service's contract, and the judgement. canaryctl preflight run and canaryd's
 * pre-flight thread both call it, so the hand-run table and the daemon's are the same. */
#include <stdio.h>
#include <string.h>

#include "canary/preflight.h"

int cn_slot_base_url(const char *metrics_url, char *buf, size_t size)
{
	const char *h = metrics_url ? strstr(metrics_url, "://") : NULL;
	if (!h || !h[3])
		return -1;
	const char *slash = strchr(h + 3, '/');
	size_t n = slash ? (size_t)(slash - metrics_url) : strlen(metrics_url);
	if (n >= size)
		return -1;
	memcpy(buf, metrics_url, n);
	buf[n] = '\0';
	return 0;
}

int cn_preflight_run(const struct cn_preflight_opts *o, struct cn_preflight_outcome *out, struct cn_err *err)
{
	struct cn_contract_rt *rt = NULL;
	int rc;
	memset(out, 0, sizeof *out);
	if (o->contract && o->contract->declared &&
	    !(rt = cn_contract_compile(o->contract, o->profile->endpoint, err)))
		return -err->code;
	struct cn_load_opts lo = {
		.profile = o->profile, .base_url = o->candidate_url, .seed = o->seed, .contract = rt,
		.baseline_url = o->baseline_url, .baseline_out = o->baseline_url ? &out->base : NULL,
		.cancel = o->cancel, .progress = o->progress, .progress_arg = o->progress_arg,
		.progress_every_s = o->progress_every_s,
	};
	rc = cn_load_run(&lo, &out->cand, err);
	cn_contract_rt_free(rt);
	if (rc < 0)
		return rc;
	out->has_base = o->baseline_url != NULL;
	if (o->pf) {
		cn_preflight_judge(o->pf, o->budget, &out->cand, out->has_base ? &out->base : NULL, &out->res);
		out->judged = true;
	}
	return 0;
}
