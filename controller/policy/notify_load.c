/* The `notify:` list a policy or a service file may hold: the key table of one webhook (shared by both loaders),
 * the event names, and the checks that need several keys. */
#include "policy_int.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "canary/notify-t.h"

#define F(type, field) .offset = offsetof(type, field), .size = sizeof(((type *)0)->field)

static const struct cn_enum_val event_words[] = {
	{ "started", CN_EV_STARTED },         { "step_advanced", CN_EV_STEP_ADVANCED },
	{ "awaiting_approval", CN_EV_AWAITING_APPROVAL },
	{ "paused", CN_EV_PAUSED },           { "resumed", CN_EV_RESUMED },
	{ "promoted", CN_EV_PROMOTED },       { "rolled_back", CN_EV_ROLLED_BACK },
	{ "aborted", CN_EV_ABORTED },         { "failed", CN_EV_FAILED },
	{ "drill_started", CN_EV_DRILL_STARTED }, { "drill_passed", CN_EV_DRILL_PASSED },
	{ "drill_cut_short", CN_EV_DRILL_CUT_SHORT }, { "drill_aborted", CN_EV_DRILL_ABORTED },
	{ "drill_failed", CN_EV_DRILL_FAILED }, { "sla_window_missed", CN_EV_SLA_WINDOW_MISSED },
	{ NULL, 0 },
};

static const struct cn_enum_val format_words[] = {
	{ "json", CN_NOTIFY_JSON }, { "slack", CN_NOTIFY_SLACK }, { NULL, 0 } };

const char *cn_notify_event_name(unsigned bit)
{
	for (const struct cn_enum_val *w = event_words; w->name; w++)
		if ((unsigned)w->value == bit)
			return w->name;
	return NULL;
}

const char *cn_notify_format_name(enum cn_notify_format f)
{
	return f == CN_NOTIFY_SLACK ? "slack" : "json";
}

/* events: a list of event names, each once. */
static int parse_events(struct cn_load *ld, const struct cn_key *key, void *obj, const struct cn_ynode *val)
{
	unsigned set = 0;
	if (val->kind != CN_Y_SEQ)
		return cn_ld_fail(ld, val, "'%s' must be a list of event names such as [rolled_back, promoted], got %s",
				  key->name, cn_ynode_kind_desc(val));
	if (val->n == 0)
		return cn_ld_fail(ld, val, "'%s' is empty; list at least one event, or leave the key out for all of them",
				  key->name);
	for (size_t i = 0; i < val->n; i++) {
		const struct cn_ynode *e = val->kids[i];
		const struct cn_enum_val *w = NULL;
		if (e->kind == CN_Y_SCALAR)
			for (w = event_words; w->name && strcmp(w->name, e->text) != 0; w++)
				;
		if (!w || !w->name) {
			char list[256];
			size_t used = 0;
			for (const struct cn_enum_val *x = event_words; x->name; x++) {
				int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", x->name);
				if (n > 0 && (size_t)n < sizeof list - used)
					used += (size_t)n;
			}
			list[used] = '\0';
			return cn_ld_fail(ld, e, "unknown event '%s'; one of %s", e->kind == CN_Y_SCALAR ? e->text : "(not text)",
					  list);
		}
		if (set & (unsigned)w->value)
			return cn_ld_fail(ld, e, "event '%s' is listed twice", w->name);
		set |= (unsigned)w->value;
	}
	memcpy((char *)obj + key->offset, &set, sizeof set);
	return 0;
}

static bool env_name_ok(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

const struct cn_key cn_notify_hook_keys[CN_NOTIFY_HOOK_NKEYS] = {
	{ .name = "url", .type = CN_KT_URL, .flags = CN_KEY_REQUIRED, F(struct cn_notify_hook, url), .min = NAN,
	  .max = NAN, .doc = "where canaryd POSTs each event (http:// or https://)" },
	{ .name = "events", .type = CN_KT_CUSTOM, F(struct cn_notify_hook, events), .min = NAN, .max = NAN,
	  .parse = parse_events,
	  .doc = "events to send, a list of started, step_advanced, awaiting_approval, paused, resumed, promoted, "
		 "rolled_back, aborted, failed; in a service file also drill_started, drill_passed, drill_cut_short, "
		 "drill_aborted, drill_failed, sla_window_missed; absent: all of them" },
	{ .name = "secret_env", .type = CN_KT_STRING, F(struct cn_notify_hook, secret_env), .min = NAN, .max = NAN,
	  .doc = "the environment variable of canaryd that holds the HMAC-SHA256 key for X-Canary-Signature "
		 "(preferred to secret)" },
	{ .name = "secret", .type = CN_KT_STRING, F(struct cn_notify_hook, secret), .min = NAN, .max = NAN,
	  .doc = "the HMAC-SHA256 key itself; it is stored with the file's source, which every canary_viewer reads" },
	{ .name = "format", .type = CN_KT_ENUM, F(struct cn_notify_hook, format), .def = "json", .min = NAN,
	  .max = NAN, .enums = format_words, .doc = "json (the event document) | slack (text and blocks)" },
	{ .name = "timeout", .type = CN_KT_DURATION, F(struct cn_notify_hook, timeout_ms), .def = "5s", .min = NAN,
	  .max = 30000, .doc = "time limit for one delivery attempt, at most 30s" },
};

static const struct cn_schema hook_schema_for_check = { .name = "notify", .keys = cn_notify_hook_keys,
							.nkeys = CN_NOTIFY_HOOK_NKEYS };

static int hook_check(struct cn_load *ld, void *obj, const struct cn_ynode *const *vals, unsigned all)
{
	struct cn_notify_hook *h = obj;
	const struct cn_ynode *secret = cn_schema_val(&hook_schema_for_check, vals, "secret");
	const struct cn_ynode *env = cn_schema_val(&hook_schema_for_check, vals, "secret_env");
	const struct cn_ynode *events = cn_schema_val(&hook_schema_for_check, vals, "events");
	if (secret && env)
		return cn_ld_fail(ld, env, "give either secret or secret_env, not both");
	if (secret && !h->secret[0])
		return cn_ld_fail(ld, secret, "secret is empty; give the key, name an environment variable with "
					      "secret_env, or leave both out to send unsigned");
	if (env && !env_name_ok(h->secret_env))
		return cn_ld_fail(ld, env, "secret_env '%s' is not an environment variable name (letters, digits and '_', "
					   "not starting with a digit)", h->secret_env);
	if (!events)
		h->events = all;
	for (size_t i = 0; events && i < events->n; i++) {
		unsigned bit = 0;
		for (const struct cn_enum_val *w = event_words; w->name && !bit; w++)
			if (strcmp(w->name, events->kids[i]->text) == 0)
				bit = (unsigned)w->value;
		if (bit & ~all)
			return cn_ld_fail(ld, events->kids[i], "event '%s' is a service's, not a rollout's: a policy's hooks "
					  "hear its rollouts; name the webhook in the service file's notify: instead",
					  events->kids[i]->text);
	}
	return 0;
}

int cn_notify_hook_check_policy(struct cn_load *ld, void *obj, const struct cn_ynode *map,
				const struct cn_ynode *const *vals)
{
	(void)map;
	return hook_check(ld, obj, vals, CN_EVENTS_ROLLOUT);
}

int cn_notify_hook_check_service(struct cn_load *ld, void *obj, const struct cn_ynode *map,
				 const struct cn_ynode *const *vals)
{
	(void)map;
	return hook_check(ld, obj, vals, CN_EVENTS_ALL);
}
