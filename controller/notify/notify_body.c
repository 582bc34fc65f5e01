/* The body of one webhook event: the event document as the outbox holds it plus its idempotency key, or the same
 * event as a Slack message (text for notifications and blocks for the channel). */
#include "canary/notify.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static const char *event_words(const char *ev)
{
	static const struct {
		const char *ev, *words;
	} w[] = {
		{ "started", "started" },         { "step_advanced", "advanced" },
		{ "awaiting_approval", "is waiting for an approval" },
		{ "paused", "paused" },           { "resumed", "resumed" },
		{ "promoted", "promoted" },       { "rolled_back", "ROLLED BACK" },
		{ "aborted", "aborted" },         { "failed", "FAILED" },
	};
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
		if (strcmp(w[i].ev, ev) == 0)
			return w[i].words;
	return ev;
}

static double num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A service's own event (a drill or an SLA window) in words: text and the context line. */
static void service_words(json_t *doc, const char *key, char *text, size_t tsize, char *ctx, size_t csize)
{
	const char *ev = str(doc, "event"), *reason = str(doc, "reason");
	json_t *dr = json_object_get(doc, "drill"), *sla = json_object_get(doc, "sla");
	if (dr) {
		json_t *f = json_object_get(dr, "figures");
		json_t *sh = json_object_get(f, "shift"), *ho = json_object_get(f, "hold");
		const char *what = strcmp(ev, "drill_started") == 0 ? "started" : strcmp(ev, "drill_passed") == 0 ? "PASSED"
				   : strcmp(ev, "drill_cut_short") == 0 ? "CUT SHORT" : strcmp(ev, "drill_aborted") == 0
				   ? "aborted" : "FAILED";
		int n = snprintf(text, tsize, "%s: failover drill %lld to %s %s", str(doc, "service"),
				 (long long)json_integer_value(json_object_get(dr, "id")), str(dr, "secondary"), what);
		if (n > 0 && (size_t)n < tsize && f)
			snprintf(text + n, tsize - (size_t)n, "; time to shift %.3f s, shift: %.0f errors of %.0f, p99 %.3f s; "
				 "hold: %.0f errors of %.0f, p99 %.3f s; time to shift back %.3f s%s%s", num(f, "shift_s"),
				 num(sh, "errors"), num(sh, "requests"), num(sh, "p99_s"), num(ho, "errors"),
				 num(ho, "requests"), num(ho, "p99_s"), num(f, "restore_s"), reason[0] ? ": " : "", reason);
		snprintf(ctx, csize, "primary %s · policy %s · by %s · %s · key %s", str(dr, "primary"), str(dr, "policy"),
			 str(doc, "actor"), str(doc, "at"), key);
	} else {
		snprintf(text, tsize, "%s: SLA window MISSED: %s of contract %s, %s .. %s: %s (limit %s)",
			 str(doc, "service"), str(sla, "objective"), str(sla, "contract"), str(sla, "window_start"),
			 str(sla, "window_end"), str(sla, "value_text"), str(sla, "limit_text"));
		snprintf(ctx, csize, "%s · by %s · %s · key %s", str(sla, "state"), str(doc, "actor"), str(doc, "at"), key);
	}
}

static json_t *slack_message(json_t *doc, const char *key)
{
	json_t *ro = json_object_get(doc, "rollout");
	if (!ro) {
		char text[1024], ctx[512];
		service_words(doc, key, text, sizeof text, ctx, sizeof ctx);
		return json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}, {s:s, s:[{s:s, s:s}]}]}", "text", text, "blocks", "type",
				 "section", "text", "type", "mrkdwn", "text", text, "type", "context", "elements", "type",
				 "mrkdwn", "text", ctx);
	}
	const char *ev = str(doc, "event"), *reason = str(doc, "reason");
	char text[1024], ctx[512];
	double weight = json_number_value(json_object_get(ro, "weight"));
	snprintf(text, sizeof text, "%s: rollout %lld of %s %s, step %lld/%lld, candidate at %g%%%s%s",
		 str(doc, "service"), (long long)json_integer_value(json_object_get(ro, "id")), str(ro, "candidate"),
		 event_words(ev), (long long)json_integer_value(json_object_get(ro, "step")),
		 (long long)json_integer_value(json_object_get(ro, "steps")), weight, reason[0] ? ": " : "", reason);
	snprintf(ctx, sizeof ctx, "policy %s v%lld · by %s · %s · key %s", str(ro, "policy"),
		 (long long)json_integer_value(json_object_get(ro, "policy_version")), str(doc, "actor"), str(doc, "at"),
		 key);
	return json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}, {s:s, s:[{s:s, s:s}]}]}", "text", text, "blocks", "type",
			 "section", "text", "type", "mrkdwn", "text", text, "type", "context", "elements", "type", "mrkdwn",
			 "text", ctx);
}

char *cn_notify_body(enum cn_notify_format fmt, const char *key, const char *payload_json, struct cn_err *err)
{
	json_error_t jerr;
	json_t *doc = json_loads(payload_json, 0, &jerr), *msg = NULL;
	char *body = NULL;
	if (!json_is_object(doc)) {
		cn_fail(err, CN_EINPUT, "the outbox payload is not a JSON object: %s", doc ? "(another type)" : jerr.text);
		goto out;
	}
	if (fmt == CN_NOTIFY_SLACK) {
		msg = slack_message(doc, key);
	} else {
		msg = json_incref(doc);
		json_object_set_new(msg, "id", json_string(key));
	}
	if (!msg || !(body = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS))) {
		cn_fail(err, CN_EINTERNAL, "out of memory rendering a notification");
		goto out;
	}
	if (strlen(body) > CN_NOTIFY_BODY_MAX) {
		cn_fail(err, CN_EINPUT, "the notification body is %zu bytes; the limit is %d", strlen(body),
			CN_NOTIFY_BODY_MAX);
		free(body);
		body = NULL;
	}
out:
	json_decref(msg);
	json_decref(doc);
	return body;
}
