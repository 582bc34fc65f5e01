/* The audit's events in words, for people (canaryctl audit, the HTML report): one line per event from its kind and
 * its data as stored. */
#include "canary/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "canary/line.h"

static const char *ev_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static double ev_num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A number for people: "0.123", "n/a" for null. */
static const char *num(double v, char *buf, size_t len)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.4g", v);
	return buf;
}

void cn_audit_describe(const char *kind, const char *data_json, char *buf, size_t size)
{
	json_t *d = data_json ? json_loads(data_json, JSON_DECODE_ANY, NULL) : NULL;
	char a[32], b[32], c[32], n[32];
	buf[0] = '\0';
	if (!kind)
		kind = "";
	if (strcmp(kind, "rollout.started") == 0) {
		cn_line_appendf(buf, size, "candidate %s in slot %lld, baseline %s, policy %s", ev_str(d, "candidate"),
		       (long long)json_integer_value(json_object_get(d, "candidate_slot")),
		       json_is_string(json_object_get(d, "baseline")) ? ev_str(d, "baseline") : "unknown",
		       ev_str(d, "policy"));
	} else if (strcmp(kind, "tick") == 0) {
		cn_line_appendf(buf, size, "%s at step %lld, weight %g%%", ev_str(d, "decision"),
		       (long long)json_integer_value(json_object_get(d, "step")) + 1, ev_num(d, "weight"));
		size_t i;
		const json_t *s;
		json_array_foreach(json_object_get(d, "slos"), i, s)
			cn_line_appendf(buf, size, "%s %s %s (candidate %s, baseline %s, objective %s, n=%s)", i ? ";" : ":",
			       ev_str(s, "slo"), ev_str(s, "verdict"), num(ev_num(s, "candidate"), a, sizeof a),
			       num(ev_num(s, "baseline"), b, sizeof b), num(ev_num(s, "objective"), c, sizeof c),
			       num(ev_num(s, "n_candidate"), n, sizeof n));
		json_array_foreach(json_object_get(d, "slos"), i, s)
			if (json_is_string(json_object_get(s, "features"))) {
				/* the per-feature breakdown, once (every economics SLO carries the same line) */
				cn_line_appendf(buf, size, "; per feature (candidate vs baseline): %s", ev_str(s, "features"));
				break;
			}
	} else if (strcmp(kind, "weight.intended") == 0) {
		cn_line_appendf(buf, size, "weight %g%% -> %g%%", ev_num(d, "from"), ev_num(d, "to"));
	} else if (strcmp(kind, "weight.confirmed") == 0) {
		cn_line_appendf(buf, size, "gateway confirmed weight %g%%", ev_num(d, "weight"));
	} else if (strcmp(kind, "weight.reconciled") == 0) {
		cn_line_appendf(buf, size, "gateway reset to weight %g%% (it had %s%%)", ev_num(d, "weight"),
		       num(ev_num(d, "found"), a, sizeof a));
	} else if (strcmp(kind, "state.changed") == 0) {
		cn_line_appendf(buf, size, "%s -> %s", ev_str(d, "from"), ev_str(d, "to"));
	} else if (strcmp(kind, "command.accepted") == 0) {
		cn_line_appendf(buf, size, "%s accepted", ev_str(d, "command"));
	} else if (strcmp(kind, "command.refused") == 0) {
		cn_line_appendf(buf, size, "%s refused: %s", ev_str(d, "command"), ev_str(d, "error"));
	} else if (strcmp(kind, "service.live_changed") == 0) {
		cn_line_appendf(buf, size, "slot %lld is live with %s",
		       (long long)json_integer_value(json_object_get(d, "live_slot")), ev_str(d, "live_version"));
	} else if (strcmp(kind, "preflight.passed") == 0 || strcmp(kind, "preflight.failed") == 0) {
		/* the per-band table is in the event's data ("table"); one line here */
		const json_t *cj = json_object_get(d, "candidate");
		cn_line_appendf(buf, size, "pre-flight %s", ev_str(d, "verdict"));
		if (cj)
			cn_line_appendf(buf, size, ": candidate %lld sent, %lld errors, %lld of %lld answers broke the contract",
					(long long)json_integer_value(json_object_get(cj, "sent")),
					(long long)json_integer_value(json_object_get(cj, "errors")),
					(long long)json_integer_value(json_object_get(cj, "contract_violations")),
					(long long)json_integer_value(json_object_get(cj, "contract_checked")));
	} else if (json_object_size(d) > 0) {
		char *txt = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		if (txt)
			cn_line_appendf(buf, size, "%.300s", txt);
		free(txt);
	}
	json_decref(d);
}
