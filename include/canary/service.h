/* Services: load and validate a service file (gateway binding, two slots, metrics source and names). */
#ifndef CANARY_SERVICE_H
#define CANARY_SERVICE_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/service-t.h"

/* Parses and validates a service from YAML text; like cn_policy_parse. Metric names are filled from the preset,
 * then overridden by any explicit names. */
int cn_service_parse(const char *text, size_t len, const char *origin, struct cn_service *out, struct cn_err *err);

/* Reads a file and parses it; *source_out as in cn_policy_load_file. */
int cn_service_load_file(const char *path, struct cn_service *out, char **source_out, struct cn_err *err);

/* Fills names with a preset's series names (vllm, tgi, triton); custom leaves them empty. */
void cn_metric_names_preset(enum cn_metrics_preset preset, struct cn_metric_names *names);

#endif
