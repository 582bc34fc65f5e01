/* Types of a policy's pre-flight (`preflight:`): the workload profile that drives the candidate's slot directly
 * before any live traffic moves, how it is compared (interleaved with the baseline's slot, or alone), and the SLOs
 * it must hold, judged per prompt-length band. Shared by the policy loader, the judge and canaryd. */
#ifndef CANARY_PREFLIGHT_T_H
#define CANARY_PREFLIGHT_T_H

#include <stdbool.h>

#include "canary/profile-t.h"

#define CN_PF_MAX_SLOS 8

enum cn_pf_metric {
	CN_PF_ERROR_RATE,          /* errors / requests: refused connections, resets, timeouts, HTTP errors */
	CN_PF_LATENCY,             /* end-to-end latency measured by the client */
	CN_PF_TTFT,                /* time to first token (streaming profiles) */
	CN_PF_ITL,                 /* inter-token latency (streaming profiles) */
	CN_PF_CONTRACT_VIOLATIONS, /* answers that break the service's contract / answers checked */
};

enum cn_pf_compare { CN_PF_COMPARE_BASELINE = 0, CN_PF_COMPARE_NONE = 1 };

struct cn_pf_slo {
	char name[64];
	int metric;              /* enum cn_pf_metric */
	double quantile;         /* latencies; NAN for rates */
	double max;              /* absolute: seconds, or a fraction for the rates; NAN if unset */
	double max_increase;     /* candidate / baseline, at least 1; NAN if unset */
};

struct cn_preflight {
	bool enabled;            /* the policy has a preflight: section */
	struct cn_profile profile;
	int compare;             /* enum cn_pf_compare */
	int64_t min_requests;    /* requests a band needs before a verdict may fail it */
	struct cn_pf_slo slos[CN_PF_MAX_SLOS];
	int nslos;
};

#endif
