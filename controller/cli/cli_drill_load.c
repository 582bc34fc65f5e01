/* Synthetic load beside a failover drill (`drill failover --profile F --url U`): the workload profile's open-loop
 * load (controller/load) on a thread of its own while canaryctl waits for the drill, so the secondary is judged
 * under a known load as well as real traffic. The load never decides anything: canaryd judges the slots' counters. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "canary/load.h"
#include "canary/profile.h"
#include "cli_drill_int.h"

struct cli_drill_load {
	struct cn_profile profile;
	struct cn_load_opts opts;
	struct cn_load_result result;
	struct cn_err err;
	int rc;
	pthread_t thread;
	bool started;
	atomic_bool done;
};

int cli_drill_load_prepare(const char *profile_path, struct cli_drill_load **out, struct cn_err *err)
{
	struct cli_drill_load *l = calloc(1, sizeof *l);
	if (!l)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	if (cn_profile_load_file(profile_path, &l->profile, err) < 0) {
		free(l);
		return -err->code;
	}
	*out = l;
	return 0;
}

static void *run(void *arg)
{
	struct cli_drill_load *l = arg;
	l->rc = cn_load_run(&l->opts, &l->result, &l->err);
	atomic_store(&l->done, true);
	return NULL;
}

int cli_drill_load_start(struct cli_drill_load *l, const char *url, int64_t max_ms, struct cn_err *err)
{
	double max_s = (double)max_ms / 1000;
	l->opts = (struct cn_load_opts){
		.profile = &l->profile,
		.base_url = url,
		.seed = 1,
		.duration_s = l->profile.duration_ms > 0 && (double)l->profile.duration_ms / 1000 < max_s
				      ? (double)l->profile.duration_ms / 1000
				      : max_s,
	};
	if (pthread_create(&l->thread, NULL, run, l) != 0)
		return cn_fail(err, CN_EINTERNAL, "cannot start the load's thread");
	l->started = true;
	return 0;
}

void cli_drill_load_finish(struct cli_drill_load *l, FILE *f)
{
	if (!l)
		return;
	if (!l->started) {
		free(l);
		return;
	}
	if (!atomic_load(&l->done)) {
		/* the drill ended before the load: the process's exit ends it (its thread still uses l) */
		if (f)
			fprintf(f, "  synthetic load: still running when the drill ended; stopped\n");
		return;
	}
	pthread_join(l->thread, NULL);
	if (l->rc < 0)
		fprintf(stderr, "canaryctl: warning: the synthetic load failed: %s\n", l->err.msg);
	else if (f)
		fprintf(f, "  synthetic load: %ld requests at %.1f/s, %ld errors, p99 %.3fs\n", l->result.sent,
			l->result.achieved_rate, l->result.errors, cn_lhist_quantile(&l->result.latency, 0.99));
	free(l);
}
