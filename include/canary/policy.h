/* Policies: load and validate a policy from YAML; defaults; the key table the loader, lint and docs share. */
#ifndef CANARY_POLICY_H
#define CANARY_POLICY_H

#include <stddef.h>

#include "canary/err.h"
#include "canary/policy-t.h"

/* Parses and validates a policy from YAML text. `origin` names the text in error messages (a file path).
 * On success fills *out and returns 0; on failure returns -CN_EINPUT with err->msg = "ORIGIN:LINE:COL: message". */
int cn_policy_parse(const char *text, size_t len, const char *origin, struct cn_policy *out, struct cn_err *err);

/* Reads a file and parses it as above. If source_out is not NULL, *source_out receives the file's text
 * (a new NUL-terminated string; the caller frees it). A file that cannot be read is -CN_EINPUT too. */
int cn_policy_load_file(const char *path, struct cn_policy *out, char **source_out, struct cn_err *err);

/* Name of a metric / judge / fallback as written in YAML ("error_rate", "sequential", "rollback" ...). */
const char *cn_metric_name(enum cn_slo_metric m);
const char *cn_judge_name(enum cn_judge_kind j);
const char *cn_fallback_name(enum cn_fallback f);

/* Name of a webhook event bit (CN_EV_*, "rolled_back") or NULL for anything else, and of a body format ("json",
 * "slack"), as written in a `notify:` list. Static strings. */
const char *cn_notify_event_name(unsigned bit);
const char *cn_notify_format_name(enum cn_notify_format f);

#endif
