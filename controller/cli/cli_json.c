/* Every `--output json` document of canaryctl, in one place: the read commands' from the store's read models (and
 * the audit check's, the migrations' and the HTML report's results), and what the write commands acknowledge.
 * The documents keep the shapes they had when SQL built them: the same keys in the same order, floating-point
 * columns as reals (and as json_build_object printed them in `rollout status`), times as ISO 8601 strings. Documents
 * the database stores as such (a policy's spec, a tick's status, an audit event's data) are shown as stored. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "canary/dynbuf.h"
#include "canary/report.h"
#include "canary/rollout.h"
#include "canary/service.h"
#include "canary/sla.h"
#include "canary/store.h"
#include "canary/store_audit.h"
#include "canary/store_gc.h"
#include "canary/store_history.h"
#include "canary/store_rollouts.h"
#include "canary/store_drills.h"
#include "cli_drill_int.h"
#include "cli_int.h"

/* A string or null. */
static json_t *str(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A float column: a real, null for NaN (SQL NULL) and infinities. */
static json_t *real(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* A float as json_build_object printed it: without a fraction when it has none (100, not 100.0). */
static json_t *real_pg(double v)
{
	if (isfinite(v) && v == floor(v) && fabs(v) < 1e15)
		return json_integer((json_int_t)v);
	return real(v);
}

static json_t *time_of(int64_t us, enum cli_time_fmt fmt)
{
	char buf[48];
	return us == CN_TIME_NONE ? json_null() : json_string(cli_time(us, fmt, buf, sizeof buf));
}

/* A document stored as such (jsonb's text), as it is; null when there is none. */
static json_t *doc(const char *text)
{
	json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
	return j ? j : json_null();
}

/* Sets key to v (a new reference) in o; on failure drops o. Returns o or NULL. */
static json_t *put(json_t *o, const char *key, json_t *v)
{
	if (!o || !v || json_object_set_new(o, key, v) < 0) {
		json_decref(v);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Appends v (a new reference) to a; on failure drops a. Returns a or NULL. */
static json_t *add(json_t *a, json_t *v)
{
	if (!a || !v || json_array_append_new(a, v) < 0) {
		json_decref(v);
		json_decref(a);
		return NULL;
	}
	return a;
}

json_t *cli_json_status(const struct cn_rollout_status *s)
{
	json_t *o = json_object();
	o = put(o, "id", json_integer(s->id));
	o = put(o, "service", str(s->service));
	o = put(o, "candidate", str(s->candidate));
	o = put(o, "baseline", str(s->baseline));
	o = put(o, "candidate_slot", json_integer(s->candidate_slot));
	o = put(o, "phase", json_string(cn_phase_name(s->phase)));
	o = put(o, "step", json_integer(s->step));
	o = put(o, "steps", json_integer(s->steps));
	o = put(o, "weight", real_pg(s->weight));
	o = put(o, "applied_weight", real_pg(s->applied_weight));
	o = put(o, "policy", str(s->policy));
	o = put(o, "policy_version", json_integer(s->policy_version));
	o = put(o, "reason", str(s->reason));
	o = put(o, "start_reason", str(s->start_reason));
	o = put(o, "status", doc(s->status_json));
	o = put(o, "created_at", time_of(s->created_us, CLI_TIME_US_OFFSET));
	o = put(o, "created_by", str(s->created_by));
	o = put(o, "updated_at", time_of(s->updated_us, CLI_TIME_US_OFFSET));
	o = put(o, "finished_at", time_of(s->finished_us, CLI_TIME_US_OFFSET));
	o = put(o, "lease_owner", str(s->lease_owner));
	return o;
}

json_t *cli_json_status_list(const struct cn_status_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < l->n; i++)
		a = add(a, cli_json_status(&l->items[i]));
	return a;
}

json_t *cli_json_history(const struct cn_history *h)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < h->n; i++) {
		const struct cn_history_row *r = &h->rows[i];
		json_t *o = json_object(), *ap = json_array();
		for (size_t k = 0; ap && k < r->napproved; k++)
			ap = add(ap, str(r->approved_by[k]));
		o = put(o, "id", json_integer(r->id));
		o = put(o, "service", str(r->service));
		o = put(o, "candidate", str(r->candidate));
		o = put(o, "baseline", str(r->baseline));
		o = put(o, "policy", str(r->policy));
		o = put(o, "policy_version", json_integer(r->policy_version));
		o = put(o, "outcome", json_string(cn_phase_name(r->outcome)));
		o = put(o, "step", json_integer(r->step));
		o = put(o, "steps", json_integer(r->steps));
		o = put(o, "weight", real(r->weight));
		o = put(o, "started_by", str(r->started_by));
		o = put(o, "approved_by", ap);
		o = put(o, "aborted_by", str(r->aborted_by));
		o = put(o, "created_at", time_of(r->created_us, CLI_TIME_MS));
		o = put(o, "finished_at", time_of(r->finished_us, CLI_TIME_MS));
		o = put(o, "duration_ms", json_integer(r->duration_ms));
		o = put(o, "reason", str(r->reason));
		a = add(a, o);
	}
	return a;
}

json_t *cli_json_policy_list(const struct cn_policy_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < l->n; i++) {
		const struct cn_policy_info *p = &l->items[i];
		json_t *o = json_object();
		o = put(o, "name", str(p->name));
		o = put(o, "version", json_integer(p->version));
		o = put(o, "versions", json_integer(p->versions));
		o = put(o, "content_sha256", str(p->content_sha256));
		o = put(o, "created_at", time_of(p->created_us, CLI_TIME_S));
		o = put(o, "created_by", str(p->created_by));
		o = put(o, "steps", json_integer(p->steps));
		o = put(o, "slos", json_integer(p->slos));
		a = add(a, o);
	}
	return a;
}

json_t *cli_json_policy_version(const struct cn_policy_version *v)
{
	json_t *o = json_object(), *steps = json_array(), *slos = json_array();
	for (size_t i = 0; steps && i < v->nsteps; i++) {
		const struct cn_policy_step_row *s = &v->steps[i];
		json_t *so = json_object();
		so = put(so, "idx", json_integer(s->idx));
		so = put(so, "weight_pct", real(s->weight_pct));
		so = put(so, "hold_ms", json_integer(s->hold_ms));
		so = put(so, "approval", json_boolean(s->approval));
		steps = add(steps, so);
	}
	for (size_t i = 0; slos && i < v->nslos; i++) {
		const struct cn_policy_slo_row *s = &v->slos[i];
		json_t *so = json_object();
		so = put(so, "idx", json_integer(s->idx));
		so = put(so, "name", str(s->name));
		so = put(so, "metric", str(s->metric));
		so = put(so, "quantile", real(s->quantile));
		so = put(so, "max_value", real(s->max_value));
		so = put(so, "max_increase", real(s->max_increase));
		so = put(so, "tolerance", real(s->tolerance));
		slos = add(slos, so);
	}
	o = put(o, "name", str(v->name));
	o = put(o, "version", json_integer(v->version));
	o = put(o, "latest_version", json_integer(v->latest_version));
	o = put(o, "content_sha256", str(v->content_sha256));
	o = put(o, "created_at", time_of(v->created_us, CLI_TIME_S));
	o = put(o, "created_by", str(v->created_by));
	o = put(o, "source", str(v->source));
	o = put(o, "spec", doc(v->spec_json));
	o = put(o, "steps", steps);
	o = put(o, "slos", slos);
	return o;
}

/* A slot in the order the database's jsonb gave its keys (shortest first). */
static json_t *slot(const struct cn_slot_info *s)
{
	json_t *o = json_object();
	o = put(o, "name", str(s->name));
	o = put(o, "index", json_integer(s->index));
	o = put(o, "server", str(s->server));
	o = put(o, "selector", str(s->selector));
	o = put(o, "metrics_url", str(s->metrics_url));
	return o;
}

json_t *cli_json_service(const struct cn_service_info *sv, bool show)
{
	json_t *o = json_object();
	o = put(o, "name", str(sv->name));
	o = put(o, "version", json_integer(sv->version));
	o = put(o, "content_sha256", str(sv->content_sha256));
	o = put(o, "live_slot", json_integer(sv->live_slot));
	o = put(o, "live_version", str(sv->live_version));
	o = put(o, "created_at", time_of(sv->created_us, CLI_TIME_S));
	o = put(o, "updated_at", time_of(sv->updated_us, CLI_TIME_S));
	o = put(o, "live", slot(&sv->live));
	o = put(o, "idle", slot(&sv->idle));
	if (!show)
		return o;
	o = put(o, "created_by", str(sv->created_by));
	o = put(o, "spec", doc(sv->spec_json));
	o = put(o, "source", str(sv->source));
	return o;
}

/* An argv template as an array of its arguments. */
static json_t *argv_json(const struct cn_argv_tmpl *t)
{
	json_t *a = json_array();
	const char *p = t->buf;
	for (int i = 0; a && i < t->argc; i++, p += strlen(p) + 1)
		a = add(a, json_string(p));
	return a;
}

json_t *cli_json_gateway(const struct cli_gateway_view *v)
{
	const struct cn_service *sv = v->spec;
	json_t *o = json_object();
	if (!sv)
		return put(o, "kind", json_null());
	struct cn_dynbuf target;
	cn_dynbuf_init(&target, 64 * 1024);
	cli_gateway_target(v, &target);
	o = put(o, "kind", json_string(cn_gateway_kind_name(sv->gateway.kind)));
	o = put(o, "target", json_string(cn_dynbuf_len(&target) ? cn_dynbuf_ptr(&target) : ""));
	cn_dynbuf_free(&target);
	o = put(o, "timeout_ms", json_integer(sv->gateway.timeout_ms));
	switch (sv->gateway.kind) {
	case CN_GATEWAY_HAPROXY:
		o = put(o, "runtime_api", json_string(sv->gateway.runtime_api));
		o = put(o, "backend", json_string(sv->gateway.backend));
		break;
	case CN_GATEWAY_NGINX:
		o = put(o, "upstream_servers", json_pack("[ss]", sv->slots[0].server, sv->slots[1].server));
		o = put(o, "include", json_string(sv->gateway.include));
		o = put(o, "config", json_string(sv->gateway.config));
		o = put(o, "pid_file", json_string(sv->gateway.pid_file));
		break;
	case CN_GATEWAY_COMMAND:
		o = put(o, "set", argv_json(&sv->gateway.set));
		o = put(o, "get", argv_json(&sv->gateway.get));
		break;
	case CN_GATEWAY_GATEWAY_API:
	case CN_GATEWAY_KSERVE: {
		bool route = sv->gateway.kind == CN_GATEWAY_GATEWAY_API;
		o = put(o, "resource", json_string(route ? "httproute" : "inferenceservice"));
		o = put(o, "namespace", json_string(sv->gateway.k8s_namespace));
		o = put(o, "name", json_string(sv->gateway.k8s_name));
		if (route) {
			o = put(o, "rule", json_integer(sv->gateway.rule));
			o = put(o, "backend_refs", json_pack("{ss ss}", sv->slots[0].name, sv->slots[0].server,
							     sv->slots[1].name, sv->slots[1].server));
		}
		o = put(o, "kubeconfig", str(sv->gateway.kubeconfig[0] ? sv->gateway.kubeconfig : NULL));
		o = put(o, "context", str(sv->gateway.k8s_context[0] ? sv->gateway.k8s_context : NULL));
		o = put(o, "api_server", str(v->api_server));
		o = put(o, "credentials", str(v->api_origin));
		o = put(o, "api_server_error", str(v->api_error));
		break;
	}
	}
	return o;
}

json_t *cli_json_service_list(const struct cn_service_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < l->n; i++)
		a = add(a, cli_json_service(&l->items[i], false));
	return a;
}

json_t *cli_json_timeline(const struct cn_timeline *t)
{
	const struct cn_timeline_rollout *r = &t->rollout;
	json_t *ro = json_object(), *events = json_array();
	ro = put(ro, "id", json_integer(r->id));
	ro = put(ro, "service", str(r->service));
	ro = put(ro, "candidate", str(r->candidate));
	ro = put(ro, "baseline", str(r->baseline));
	ro = put(ro, "policy", str(r->policy));
	ro = put(ro, "policy_version", json_integer(r->policy_version));
	ro = put(ro, "phase", json_string(cn_phase_name(r->phase)));
	ro = put(ro, "step", json_integer(r->step));
	ro = put(ro, "steps", json_integer(r->steps));
	ro = put(ro, "weight", real(r->weight));
	ro = put(ro, "created_by", str(r->created_by));
	ro = put(ro, "created_at", time_of(r->created_us, CLI_TIME_MS));
	ro = put(ro, "finished_at", time_of(r->finished_us, CLI_TIME_MS));
	ro = put(ro, "reason", str(r->reason));
	for (size_t i = 0; events && i < t->nevents; i++) {
		const struct cn_timeline_event *e = &t->events[i];
		json_t *o = json_object();
		o = put(o, "id", json_integer(e->id));
		o = put(o, "at", time_of(e->at_us, CLI_TIME_MS));
		o = put(o, "actor", str(e->actor));
		o = put(o, "recorded_by", str(e->recorded_by));
		o = put(o, "kind", str(e->kind));
		o = put(o, "reason", str(e->reason));
		o = put(o, "data", doc(e->data_json));
		o = put(o, "hash", str(e->hash));
		events = add(events, o);
	}
	json_t *o = json_object();
	o = put(o, "rollout", ro);
	o = put(o, "events", events);
	return o;
}

json_t *cli_json_audit_verify(const struct cn_audit_report *rep, int64_t id, const char *msg)
{
	json_t *o = json_object();
	o = put(o, "intact", json_boolean(rep->problem == CN_AUDIT_INTACT));
	o = put(o, "events", json_integer(rep->events));
	o = put(o, "chains", json_integer(rep->chains));
	o = put(o, "message", json_string(msg));
	if (id > 0)
		o = put(o, "rollout", json_integer(id));
	if (rep->problem == CN_AUDIT_INTACT)
		return o;
	json_t *bad = json_object();
	bad = put(bad, "id", json_integer(rep->bad_id));
	bad = put(bad, "rollout_id", rep->bad_has_rollout ? json_integer(rep->bad_rollout_id) : json_null());
	bad = put(bad, "kind", json_string(rep->bad_kind));
	bad = put(bad, "at", json_string(rep->bad_at));
	bad = put(bad, "problem", json_string(rep->problem == CN_AUDIT_CHANGED ? "changed" : "chain_broken"));
	bad = put(bad, "prev_id", rep->bad_prev_id > 0 ? json_integer(rep->bad_prev_id) : json_null());
	return put(o, "first_bad", bad);
}

json_t *cli_json_gc(const char *older_than, const struct cn_gc_result *r)
{
	json_t *o = json_object();
	o = put(o, "older_than", json_string(older_than));
	o = put(o, "rollouts", json_integer(r->rollouts));
	o = put(o, "measurements", json_integer(r->measurements));
	o = put(o, "decisions", json_integer(r->decisions));
	o = put(o, "verdicts", json_integer(r->verdicts));
	return o;
}

json_t *cli_json_migrate(const char *dir, const struct cn_migrate_report *rep)
{
	json_t *o = json_object(), *names = json_array();
	for (int i = 0; names && i < rep->applied; i++)
		names = add(names, json_string(rep->names[i]));
	o = put(o, "directory", json_string(dir));
	o = put(o, "found", json_integer(rep->found));
	o = put(o, "applied", names);
	return o;
}

json_t *cli_json_report(const struct cn_report *r, int64_t id, const char *path, size_t bytes)
{
	json_t *o = json_object();
	o = put(o, "rollout", json_integer(id));
	o = put(o, "file", json_string(path));
	o = put(o, "bytes", json_integer((json_int_t)bytes));
	o = put(o, "outcome", json_string(r->rollout.phase ? r->rollout.phase : ""));
	o = put(o, "slos", json_integer((json_int_t)r->nslos));
	o = put(o, "decision_points", json_integer((json_int_t)r->nmarkers));
	o = put(o, "events", json_integer((json_int_t)r->nevents));
	return o;
}

json_t *cli_json_lint(const char *file, const char *error, const char *name, json_t *spec)
{
	json_t *o = json_object();
	o = put(o, "file", json_string(file));
	o = put(o, "ok", json_boolean(!error));
	if (error) {
		json_decref(spec);
		return put(o, "error", json_string(error));
	}
	o = put(o, "name", str(name));
	return put(o, "spec", spec);
}

json_t *cli_json_applied(const char *name, int version, bool created, const char *file, const char *warning)
{
	json_t *o = json_object();
	o = put(o, "name", str(name));
	o = put(o, "version", json_integer(version));
	o = put(o, "created", json_boolean(created));
	o = put(o, "file", str(file));
	return put(o, "warning", str(warning));
}

json_t *cli_json_started(int64_t id, const char *service, const char *candidate)
{
	json_t *o = json_object();
	o = put(o, "id", json_integer(id));
	o = put(o, "service", str(service));
	return put(o, "candidate", str(candidate));
}

json_t *cli_json_command(int64_t id, const char *command, bool emergency, bool gateway_confirmed)
{
	json_t *o = json_object();
	o = put(o, "id", json_integer(id));
	o = put(o, "command", str(command));
	o = put(o, "accepted", json_true());
	o = put(o, "emergency", json_boolean(emergency));
	return put(o, "gateway_confirmed", json_boolean(gateway_confirmed));
}

json_t *cli_json_waited(const struct cn_rollout_status *s, int exit_code)
{
	return put(cli_json_status(s), "exit_code", json_integer(exit_code));
}

static json_t *drill_numbers(const struct cn_drill_numbers *n)
{
	return json_pack("{s:o, s:o, s:o, s:o}", "requests", real(n->requests), "errors",
			 real(n->errors), "error_rate", real(n->error_rate), "p99_s", real(n->p99_s));
}

json_t *cli_json_drill(const struct cn_drill_row *d, int exit_code)
{
	const struct cn_drill_figures *f = &d->figures;
	json_t *slos = json_array();
	for (int i = 0; slos && i < d->nslos; i++)
		json_array_append_new(slos, json_pack("{s:s, s:s, s:s}", "slo", d->slos[i].slo, "verdict",
						      d->slos[i].verdict, "why", d->slos[i].why));
	json_t *doc = json_pack(
		"{s:I, s:s, s:s, s:s, s:s, s:s?, s:I, s:I, s:f, s:o, s:s, s:b, s:s, s:s, s:i, s:o, s:o, s:o}", "id",
		(json_int_t)d->id, "service", d->service, "primary", d->primary, "secondary", d->secondary, "phase",
		cn_drill_phase_name(d->phase), "outcome",
		cn_drill_ended(d->outcome) ? cn_drill_phase_name(d->outcome) : NULL, "hold_ms", (json_int_t)d->hold_ms,
		"baseline_ms", (json_int_t)d->baseline_ms, "weight", d->weight, "applied_weight",
		real(d->applied_weight), "reason", d->reason, "scheduled", d->scheduled, "created_by",
		d->created_by, "policy", d->policy_name, "policy_version", d->policy_version, "timings",
		json_pack("{s:o, s:o, s:o}", "shift_s", real(f->shift_s), "hold_s", real(f->hold_s),
			  "restore_s", real(f->restore_s)),
		"windows",
		json_pack("{s:o, s:o, s:o, s:o, s:o}", "baseline", drill_numbers(&f->baseline), "shift",
			  drill_numbers(&f->shift), "hold", drill_numbers(&f->hold), "hold_primary",
			  drill_numbers(&f->hold_primary), "restore", drill_numbers(&f->restore)),
		"slos", slos ? slos : json_null());
	if (doc && exit_code >= 0)
		json_object_set_new(doc, "exit_code", json_integer(exit_code));
	return doc;
}

json_t *cli_json_sla(const char *service, const char *month, const struct cn_sla_contract *c,
		     const struct cn_sla_result *r)
{
	json_t *objs = json_array();
	for (int k = 0; k < r->nobjectives; k++) {
		const struct cn_sla_objective_result *o = &r->objectives[k];
		json_t *wins = json_array();
		for (size_t i = 0; i < o->nwindows; i++) {
			const struct cn_sla_window *w = &o->windows[i];
			if (w->state != CN_SLA_MISSED && w->state != CN_SLA_NODATA && o->obj->window_ms != 0)
				continue;
			json_array_append_new(wins, json_pack("{s:o, s:o, s:s, s:o, s:f, s:f, s:i, s:b}", "start",
							      time_of(w->start_us, CLI_TIME_S), "end",
							      time_of(w->end_us, CLI_TIME_S), "state",
							      cn_sla_wstate_name(w->state), "value", real(w->value),
							      "total", w->total, "bad", w->bad, "nodata_minutes",
							      w->nodata_minutes, "mixed_bounds", w->mixed_bounds));
		}
		json_array_append_new(
			objs, json_pack("{s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:b, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
					"s:I, s:I, s:o}",
					"name", o->obj->name, "metric", cn_sla_metric_name(o->obj->metric), "quantile",
					real(o->obj->metric == CN_SLA_AVAILABILITY ? NAN : o->obj->quantile), "max_ms",
					o->obj->metric == CN_SLA_AVAILABILITY ? json_null()
									      : json_integer((json_int_t)o->obj->max_ms),
					"min", real(o->obj->metric == CN_SLA_AVAILABILITY ? o->obj->min : NAN), "window",
					o->obj->window, "target", real(o->obj->target), "attainment", real(o->attainment),
					"ok", o->ok, "windows", (json_int_t)o->nwindows, "met", (json_int_t)o->met,
					"missed", (json_int_t)o->missed, "no_data", (json_int_t)o->nodata, "pending",
					(json_int_t)o->pending, "credit", o->credit, "total", o->total, "bad", o->bad,
					"minutes_data", (json_int_t)o->minutes_data, "minutes_no_data",
					(json_int_t)o->minutes_nodata, "missed_windows", wins));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:i, s:I, s:I, s:I, s:s, s:o, s:f, s:f, s:s, s:o}", "service",
			 service, "month", month, "contract", c->name, "start", time_of(r->month_start_us, CLI_TIME_S),
			 "end", time_of(r->month_end_us, CLI_TIME_S), "as_of", time_of(r->now_us, CLI_TIME_S), "days",
			 r->days, "minutes_elapsed", (json_int_t)r->minutes_elapsed, "minutes_data",
			 (json_int_t)r->minutes_data, "minutes_no_data", (json_int_t)r->minutes_nodata, "no_data",
			 c->no_data == CN_SLA_NODATA_MISS ? "miss" : "exclude", "objectives", objs, "credit", r->credit,
			 "credit_amount", r->credit_amount, "currency", c->currency, "credit_from",
			 r->credit_from >= 0 ? json_string(r->objectives[r->credit_from].obj->name) : json_null());
}
