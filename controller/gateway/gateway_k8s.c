/* Kubernetes gateway adapters. gateway-api: the weights of the two slots' backendRefs in one rule of an HTTPRoute,
 * written with a JSON merge patch that carries the resourceVersion it was computed from (409: read again, bounded)
 * and confirmed when every parent's Accepted and ResolvedRefs conditions are True for that generation; a False one
 * fails with the gateway's message. kserve: an InferenceService's spec.predictor.canaryTrafficPercent (the
 * candidate is the revision KServe created last), confirmed when status.components.predictor.traffic gives that
 * revision the share for the observed generation. Every exchange is bounded by gateway.timeout; so is the wait
 * for the controller's status. */
#include "canary/gateway.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canary/bug.h"
#include "gateway_int.h"
#include "gateway_k8s_int.h"

#define CONFLICT_TRIES 5     /* PATCHes tried when another writer keeps changing the object */
#define HTTPROUTE_TOTAL 10000 /* gateway-api: the two weights total 10000 (hundredths of a percent) */
#define PCT_SUM_SLACK 1e-6
#define POLL_MIN_MS 20
#define POLL_MAX_MS 500

struct k8s_gw {
	struct cn_gateway base;
	struct cn_service svc;
	struct cn_k8s *api;
	char path[CN_PATH_MAX + 3 * 256]; /* /apis/.../namespaces/NS/PLURAL/NAME */
	char what[CN_PATH_MAX + 64];       /* "httproute models/foo-route", for messages */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int check_pct(const double pct[2], struct cn_err *err)
{
	if (!isfinite(pct[0]) || !isfinite(pct[1]) || pct[0] < 0 || pct[1] < 0 || pct[0] > 100 || pct[1] > 100 ||
	    fabs(pct[0] + pct[1] - 100.0) > PCT_SUM_SLACK)
		return cn_fail(err, CN_EINPUT, "shares %g/%g must be 0..100 and sum to 100", pct[0], pct[1]);
	return 0;
}

/* GETs the object. 2xx: 0 with *obj. Another answer fails with the server's words (-CN_EUNAVAIL). */
static int get_obj(struct k8s_gw *g, json_t **obj, struct cn_err *err)
{
	long code = 0;
	json_t *doc = NULL;
	char words[CN_ERR_MSG_MAX / 2];
	int rc = cn_k8s_request(g->api, "GET", g->path, NULL, &code, &doc, err);
	if (rc < 0)
		return rc;
	if (code / 100 != 2 || !json_is_object(doc)) {
		char hint[CN_PATH_MAX + 200] = "";
		if (code == 401)
			cn_k8s_auth_hint(g->api, hint, sizeof hint);
		rc = cn_fail(err, CN_EUNAVAIL, "GET %s on %s: %s%s", g->what, cn_k8s_server(g->api),
			     code / 100 == 2 ? "the answer is not a JSON object" : cn_k8s_status_words(code, doc, words,
													 sizeof words), hint);
		json_decref(doc);
		return rc;
	}
	*obj = doc;
	return 0;
}

/* PATCHes the merge patch; *conflict is set on 409. Another non-2xx answer fails with the server's words. */
static int patch_obj(struct k8s_gw *g, json_t *patch, bool *conflict, struct cn_err *err)
{
	long code = 0;
	json_t *doc = NULL;
	char words[CN_ERR_MSG_MAX / 2];
	char *body = json_dumps(patch, JSON_COMPACT);
	if (!body)
		return cn_fail(err, CN_EINTERNAL, "out of memory");
	int rc = cn_k8s_request(g->api, "PATCH", g->path, body, &code, &doc, err);
	free(body);
	*conflict = false;
	if (rc < 0)
		return rc;
	if (code == 409) {
		*conflict = true;
		rc = cn_fail(err, CN_EUNAVAIL, "PATCH %s: %s", g->what, cn_k8s_status_words(code, doc, words, sizeof words));
	} else if (code / 100 != 2) {
		char hint[CN_PATH_MAX + 200] = "";
		if (code == 401)
			cn_k8s_auth_hint(g->api, hint, sizeof hint);
		rc = cn_fail(err, CN_EUNAVAIL, "PATCH %s on %s: %s%s", g->what, cn_k8s_server(g->api),
			     cn_k8s_status_words(code, doc, words, sizeof words), hint);
	}
	json_decref(doc);
	return rc;
}

static json_int_t generation(const json_t *obj)
{
	return json_integer_value(json_object_get(json_object_get(obj, "metadata"), "generation"));
}

/* --- gateway-api --------------------------------------------------------------------------------------------- */

/* The rule's backendRefs array, and the index of each slot's backendRef in it. Refuses a rule with another
 * backendRef that takes traffic (the shares would not be the slots' alone). */
static int route_refs(struct k8s_gw *g, json_t *obj, json_t **refs_out, size_t idx[2], struct cn_err *err)
{
	json_t *rules = json_object_get(json_object_get(obj, "spec"), "rules");
	int rule = g->svc.gateway.rule;
	if (!json_is_array(rules) || (size_t)rule >= json_array_size(rules))
		return cn_fail(err, CN_EINTERNAL, "%s has %zu rules; gateway.rule %d is not one of them", g->what,
			       json_array_size(rules), rule);
	json_t *refs = json_object_get(json_array_get(rules, (size_t)rule), "backendRefs");
	size_t i;
	json_t *ref;
	bool found[2] = { false, false };
	json_array_foreach(refs, i, ref) {
		const char *name = json_string_value(json_object_get(ref, "name"));
		json_t *w = json_object_get(ref, "weight");
		int s = -1;
		for (int k = 0; k < 2; k++)
			if (name && strcmp(name, g->svc.slots[k].server) == 0)
				s = k;
		if (s >= 0 && found[s])
			return cn_fail(err, CN_EINTERNAL, "rule %d of %s names backendRef '%s' twice", rule, g->what, name);
		if (s >= 0) {
			found[s] = true;
			idx[s] = i;
		} else if (!w || json_integer_value(w) != 0) {
			return cn_fail(err, CN_EINTERNAL, "rule %d of %s has a third backendRef '%s' that takes traffic "
				       "(weight %lld); canary splits between exactly two, so give it weight 0 or remove it",
				       rule, g->what, name ? name : "?", w ? (long long)json_integer_value(w) : 1LL);
		}
	}
	for (int k = 0; k < 2; k++)
		if (!found[k])
			return cn_fail(err, CN_EINTERNAL, "rule %d of %s has no backendRef named '%s' (slot %s)", rule,
				       g->what, g->svc.slots[k].server, g->svc.slots[k].name);
	*refs_out = refs;
	return 0;
}

/* The weights of the two backendRefs (absent: 1, the API's default). */
static void route_weights(json_t *refs, const size_t idx[2], json_int_t w[2])
{
	for (int k = 0; k < 2; k++) {
		json_t *v = json_object_get(json_array_get(refs, idx[k]), "weight");
		w[k] = v ? json_integer_value(v) : 1;
	}
}

/* Reads status.parents[].conditions for the object's generation: 0 when every parent has Accepted and
 * ResolvedRefs True; 1 (why says what is missing) when the controller has not yet reported on this generation;
 * -CN_EUNAVAIL with the condition's words when one is False. */
static int route_status(struct k8s_gw *g, json_t *obj, char *why, size_t whysz, struct cn_err *err)
{
	json_int_t gen = generation(obj);
	json_t *parents = json_object_get(json_object_get(obj, "status"), "parents");
	size_t i, j;
	json_t *p, *c;
	if (json_array_size(parents) == 0) {
		snprintf(why, whysz, "status.parents is empty: no gateway has accepted generation %lld",
			 (long long)gen);
		return 1;
	}
	int pending = 0;
	json_array_foreach(parents, i, p) {
		const char *pname = json_string_value(json_object_get(json_object_get(p, "parentRef"), "name"));
		const char *types[2] = { "Accepted", "ResolvedRefs" };
		for (int t = 0; t < 2; t++) {
			json_t *found = NULL;
			json_array_foreach(json_object_get(p, "conditions"), j, c) {
				const char *type = json_string_value(json_object_get(c, "type"));
				if (type && strcmp(type, types[t]) == 0)
					found = c;
			}
			json_int_t seen = found ? json_integer_value(json_object_get(found, "observedGeneration")) : 0;
			const char *st = found ? json_string_value(json_object_get(found, "status")) : NULL;
			if (!found || seen < gen || !st) {
				if (!pending)
					snprintf(why, whysz, "parent %s has not reported %s for generation %lld (last: %lld)",
						 pname ? pname : "?", types[t], (long long)gen, (long long)seen);
				pending = 1;
				continue;
			}
			if (strcmp(st, "True") != 0) {
				const char *reason = json_string_value(json_object_get(found, "reason"));
				const char *msg = json_string_value(json_object_get(found, "message"));
				return cn_fail(err, CN_EUNAVAIL, "%s: parent %s says %s %s (%s): %s", g->what,
					       pname ? pname : "?", types[t], st, reason ? reason : "", msg ? msg : "");
			}
		}
	}
	return pending;
}

static int route_set(struct cn_gateway *base, const double pct[2], struct cn_err *err)
{
	struct k8s_gw *g = (struct k8s_gw *)base;
	json_t *obj = NULL;
	int rc;
	if ((rc = check_pct(pct, err)) < 0)
		return rc;
	json_int_t want[2];
	want[0] = (json_int_t)llround(pct[0] * HTTPROUTE_TOTAL / 100.0);
	want[1] = HTTPROUTE_TOTAL - want[0];
	int64_t start = mono_ms();

	for (int attempt = 0;; attempt++) {
		json_t *refs = NULL;
		size_t idx[2];
		json_int_t cur[2];
		bool conflict = false;
		json_decref(obj);
		obj = NULL;
		if ((rc = get_obj(g, &obj, err)) < 0 || (rc = route_refs(g, obj, &refs, idx, err)) < 0)
			goto out;
		route_weights(refs, idx, cur);
		if (cur[0] == want[0] && cur[1] == want[1])
			break;
		if (attempt >= CONFLICT_TRIES) {
			rc = cn_fail(err, CN_EUNAVAIL, "%s: gave up after %d conflicting writes (409); another writer "
				     "keeps changing it", g->what, CONFLICT_TRIES);
			goto out;
		}
		for (int k = 0; k < 2; k++)
			json_object_set_new(json_array_get(refs, idx[k]), "weight", json_integer(want[k]));
		/* a merge patch replaces arrays whole: send every rule as read, with only the two weights changed, and
		 * the resourceVersion they were read at, so a concurrent change is a 409 instead of a lost update */
		json_t *md = json_object_get(obj, "metadata");
		json_t *patch = json_pack("{s:{s:O}, s:{s:O}}", "metadata", "resourceVersion",
					  json_object_get(md, "resourceVersion"), "spec", "rules",
					  json_object_get(json_object_get(obj, "spec"), "rules"));
		if (!patch) {
			rc = cn_fail(err, CN_EINTERNAL, "%s has no metadata.resourceVersion", g->what);
			goto out;
		}
		rc = patch_obj(g, patch, &conflict, err);
		json_decref(patch);
		if (rc == 0)
			break;
		if (!conflict)
			goto out;
		sleep_ms(10 * (attempt + 1));
	}

	/* read back until the gateway controller has accepted this generation (or says why not), within the timeout */
	char why[256] = "";
	for (int64_t wait = POLL_MIN_MS, n = 0; n < 100000; n++) {
		json_t *refs = NULL;
		size_t idx[2];
		json_int_t cur[2];
		json_decref(obj);
		obj = NULL;
		if ((rc = get_obj(g, &obj, err)) < 0 || (rc = route_refs(g, obj, &refs, idx, err)) < 0)
			goto out;
		route_weights(refs, idx, cur);
		if (cur[0] != want[0] || cur[1] != want[1]) {
			rc = cn_fail(err, CN_EINTERNAL, "%s: read back weights %lld/%lld, not %lld/%lld (another writer?)",
				     g->what, (long long)cur[0], (long long)cur[1], (long long)want[0], (long long)want[1]);
			goto out;
		}
		if ((rc = route_status(g, obj, why, sizeof why, err)) <= 0)
			goto out;
		int64_t left = g->svc.gateway.timeout_ms - (mono_ms() - start);
		if (left <= 0) {
			rc = cn_fail(err, CN_EUNAVAIL, "%s: weights %lld/%lld written but not confirmed in %lld ms: %s",
				     g->what, (long long)want[0], (long long)want[1], (long long)g->svc.gateway.timeout_ms,
				     why);
			goto out;
		}
		sleep_ms(wait < left ? wait : left);
		wait = wait * 2 > POLL_MAX_MS ? POLL_MAX_MS : wait * 2;
	}
	rc = cn_fail(err, CN_EINTERNAL, "%s: status wait did not end", g->what);
out:
	json_decref(obj);
	return rc;
}

static int route_get(struct cn_gateway *base, double pct[2], struct cn_err *err)
{
	struct k8s_gw *g = (struct k8s_gw *)base;
	json_t *obj = NULL, *refs = NULL;
	size_t idx[2];
	json_int_t w[2];
	char why[256];
	int rc;
	if ((rc = get_obj(g, &obj, err)) < 0 || (rc = route_refs(g, obj, &refs, idx, err)) < 0)
		goto out;
	route_weights(refs, idx, w);
	if ((rc = route_status(g, obj, why, sizeof why, err)) < 0)
		goto out;
	if (rc == 1) { /* not yet reconciled: what it serves is unknown, so a reconcile sets (and waits) again */
		pct[0] = pct[1] = NAN;
	} else if (w[0] + w[1] <= 0) {
		pct[0] = pct[1] = 0;
	} else {
		pct[0] = 100.0 * (double)w[0] / (double)(w[0] + w[1]);
		pct[1] = 100.0 - pct[0];
	}
	rc = 0;
out:
	json_decref(obj);
	return rc;
}

/* --- kserve -------------------------------------------------------------------------------------------------- */

/* canaryTrafficPercent is an integer: the nearest, but never 0 for a share above 0 nor 100 for one below. */
static json_int_t kserve_percent(double cand)
{
	json_int_t v = (json_int_t)llround(cand);
	if (cand > 0 && v == 0)
		v = 1;
	if (cand < 100 && v == 100)
		v = 99;
	return v;
}

/* The split KServe reports for the observed generation: the candidate (latestCreatedRevision) and the rest.
 * Returns 0 with *cand; 1 when status is older than the object's generation (why says so); -CN_EINTERNAL when
 * the traffic list is not what KServe writes. */
static int isvc_split(struct k8s_gw *g, json_t *obj, json_int_t *cand, char *why, size_t whysz, struct cn_err *err)
{
	json_t *status = json_object_get(obj, "status");
	json_int_t gen = generation(obj), seen = json_integer_value(json_object_get(status, "observedGeneration"));
	if (seen < gen) {
		snprintf(why, whysz, "KServe has not reconciled generation %lld yet (observedGeneration %lld)",
			 (long long)gen, (long long)seen);
		return 1;
	}
	json_t *pred = json_object_get(json_object_get(status, "components"), "predictor");
	const char *created = json_string_value(json_object_get(pred, "latestCreatedRevision"));
	const char *ready = json_string_value(json_object_get(pred, "latestReadyRevision"));
	json_t *traffic = json_object_get(pred, "traffic"), *t;
	size_t i;
	json_int_t c = 0, total = 0;
	if (!created || !json_is_array(traffic) || json_array_size(traffic) == 0)
		return cn_fail(err, CN_EINTERNAL, "%s: status.components.predictor has no latestCreatedRevision or no "
			       "traffic", g->what);
	json_array_foreach(traffic, i, t) {
		const char *rev = json_string_value(json_object_get(t, "revisionName"));
		json_int_t p = json_integer_value(json_object_get(t, "percent"));
		total += p;
		if (rev && strcmp(rev, created) == 0)
			c += p;
	}
	if (total != 100)
		return cn_fail(err, CN_EINTERNAL, "%s: status.components.predictor.traffic totals %lld%%, not 100%%",
			       g->what, (long long)total);
	if (ready && strcmp(ready, created) != 0)
		snprintf(why, whysz, "the candidate revision %s is not ready (latest ready: %s) and gets %lld%%", created,
			 ready, (long long)c);
	else
		snprintf(why, whysz, "status.components.predictor.traffic gives revision %s %lld%%", created,
			 (long long)c);
	*cand = c;
	return 0;
}

static int isvc_set(struct cn_gateway *base, const double pct[2], struct cn_err *err)
{
	struct k8s_gw *g = (struct k8s_gw *)base;
	json_t *obj = NULL;
	int rc;
	if ((rc = check_pct(pct, err)) < 0)
		return rc;
	json_int_t want = kserve_percent(pct[g->base.candidate]);
	int64_t start = mono_ms();

	for (int attempt = 0;; attempt++) {
		bool conflict = false;
		json_decref(obj);
		obj = NULL;
		if ((rc = get_obj(g, &obj, err)) < 0)
			goto out;
		json_t *cur = json_object_get(json_object_get(json_object_get(obj, "spec"), "predictor"),
					      "canaryTrafficPercent");
		if (json_is_integer(cur) && json_integer_value(cur) == want)
			break;
		if (attempt >= CONFLICT_TRIES) {
			rc = cn_fail(err, CN_EUNAVAIL, "%s: gave up after %d conflicting writes (409); another writer "
				     "keeps changing it", g->what, CONFLICT_TRIES);
			goto out;
		}
		json_t *patch = json_pack("{s:{s:O}, s:{s:{s:I}}}", "metadata", "resourceVersion",
					  json_object_get(json_object_get(obj, "metadata"), "resourceVersion"), "spec",
					  "predictor", "canaryTrafficPercent", want);
		if (!patch) {
			rc = cn_fail(err, CN_EINTERNAL, "%s has no metadata.resourceVersion", g->what);
			goto out;
		}
		rc = patch_obj(g, patch, &conflict, err);
		json_decref(patch);
		if (rc == 0)
			break;
		if (!conflict)
			goto out;
		sleep_ms(10 * (attempt + 1));
	}

	char why[300] = "";
	for (int64_t wait = POLL_MIN_MS, n = 0; n < 100000; n++) {
		json_int_t got = -1;
		json_decref(obj);
		obj = NULL;
		if ((rc = get_obj(g, &obj, err)) < 0)
			goto out;
		json_t *cur = json_object_get(json_object_get(json_object_get(obj, "spec"), "predictor"),
					      "canaryTrafficPercent");
		if (!json_is_integer(cur) || json_integer_value(cur) != want) {
			rc = cn_fail(err, CN_EINTERNAL, "%s: read back canaryTrafficPercent %s, not %lld (another writer?)",
				     g->what, json_is_integer(cur) ? "changed" : "unset", (long long)want);
			goto out;
		}
		if ((rc = isvc_split(g, obj, &got, why, sizeof why, err)) < 0)
			goto out;
		if (rc == 0 && got == want)
			goto out;
		int64_t left = g->svc.gateway.timeout_ms - (mono_ms() - start);
		if (left <= 0) {
			rc = cn_fail(err, CN_EUNAVAIL, "%s: canaryTrafficPercent %lld written but not confirmed in %lld ms: %s",
				     g->what, (long long)want, (long long)g->svc.gateway.timeout_ms, why);
			goto out;
		}
		sleep_ms(wait < left ? wait : left);
		wait = wait * 2 > POLL_MAX_MS ? POLL_MAX_MS : wait * 2;
	}
	rc = cn_fail(err, CN_EINTERNAL, "%s: status wait did not end", g->what);
out:
	json_decref(obj);
	return rc;
}

static int isvc_get(struct cn_gateway *base, double pct[2], struct cn_err *err)
{
	struct k8s_gw *g = (struct k8s_gw *)base;
	json_t *obj = NULL;
	json_int_t cand = 0;
	char why[300];
	int rc;
	if ((rc = get_obj(g, &obj, err)) < 0 || (rc = isvc_split(g, obj, &cand, why, sizeof why, err)) < 0)
		goto out;
	int c = g->base.candidate;
	if (rc == 1) {
		pct[0] = pct[1] = NAN;
	} else {
		pct[c] = (double)cand;
		pct[1 - c] = 100.0 - (double)cand;
	}
	rc = 0;
out:
	json_decref(obj);
	return rc;
}

/* --- both ---------------------------------------------------------------------------------------------------- */

static void k8s_close(struct cn_gateway *base)
{
	struct k8s_gw *g = (struct k8s_gw *)base;
	cn_k8s_close(g->api);
	free(g);
}

static const struct cn_gateway_ops route_ops = { "gateway-api", route_set, route_get, k8s_close };
static const struct cn_gateway_ops isvc_ops = { "kserve", isvc_set, isvc_get, k8s_close };

struct cn_gateway *cn_gateway_k8s_open(const struct cn_service *svc, struct cn_err *err)
{
	struct cn_k8s_auth auth = { 0 };
	bool route = svc->gateway.kind == CN_GATEWAY_GATEWAY_API;
	CN_BUG_ON(!route && svc->gateway.kind != CN_GATEWAY_KSERVE);
	struct k8s_gw *g = calloc(1, sizeof *g);
	if (!g) {
		cn_fail(err, CN_EINTERNAL, "out of memory");
		return NULL;
	}
	g->base.ops = route ? &route_ops : &isvc_ops;
	g->svc = *svc;
	snprintf(g->path, sizeof g->path, route ? "/apis/gateway.networking.k8s.io/v1/namespaces/%s/httproutes/%s"
						: "/apis/serving.kserve.io/v1beta1/namespaces/%s/inferenceservices/%s",
		 svc->gateway.k8s_namespace, svc->gateway.k8s_name);
	snprintf(g->what, sizeof g->what, "%s %s/%s", route ? "httproute" : "inferenceservice",
		 svc->gateway.k8s_namespace, svc->gateway.k8s_name);
	if (cn_k8s_auth_load(svc->gateway.kubeconfig, svc->gateway.k8s_context, NULL, &auth, err) < 0 ||
	    !(g->api = cn_k8s_open(&auth, svc->gateway.timeout_ms, err))) {
		cn_k8s_auth_free(&auth);
		free(g);
		return NULL;
	}
	return &g->base;
}

int cn_gateway_k8s_server(const struct cn_service *svc, char *server, size_t server_size, char *origin,
			  size_t origin_size, struct cn_err *err)
{
	struct cn_k8s_auth auth = { 0 };
	CN_BUG_ON(svc->gateway.kind != CN_GATEWAY_GATEWAY_API && svc->gateway.kind != CN_GATEWAY_KSERVE);
	int rc = cn_k8s_auth_load(svc->gateway.kubeconfig, svc->gateway.k8s_context, NULL, &auth, err);
	if (rc == 0) {
		snprintf(server, server_size, "%s", auth.server);
		snprintf(origin, origin_size, "%s", auth.origin);
	}
	cn_k8s_auth_free(&auth);
	return rc;
}
