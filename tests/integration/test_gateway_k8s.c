/* Integration tests of the gateway-api and kserve adapters against the local Kubernetes API server
 * (tests/support/bin/k8sapi.py) loaded with the upstream example HTTPRoute and InferenceService: set and get
 * through a kubeconfig with a bearer token, only the two weights of the chosen rule change, 409 conflicts retried
 * (and given up on, bounded), 401/403/404 failing with the server's own words, a False condition holding with the
 * controller's message, a controller that never confirms and a server that hangs bounded by the timeout, and the
 * KServe split read from status.components.predictor.traffic. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <errno.h>
#include <sys/stat.h>

#include "canary/gateway.h"
#include "canary/service.h"
#include "sim_proc.h"

#define ROUTE "/apis/gateway.networking.k8s.io/v1/namespaces/models/httproutes/foo-route"
#define ISVC "/apis/serving.kserve.io/v1beta1/namespaces/models/inferenceservices/my-model"

struct env {
	struct sim_proc api;
	char dir[64];
	char kc_ok[128], kc_bad[128], kc_ro[128];
};

static void write_kubeconfig(const char *path, int port, const char *token)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: local\n  cluster:\n"
		   "    server: http://127.0.0.1:%d/\ncontexts:\n- name: test\n  context:\n    cluster: local\n"
		   "    user: canaryd\n    namespace: models\nusers:\n- name: canaryd\n  user:\n    token: %s\n",
		port, token);
	fclose(f);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	struct cn_err err = { 0 };
	char script[1024], fixtures[1024];
	const char *src = getenv("CANARY_SOURCE_DIR");
	if (!e)
		return -1;
	snprintf(script, sizeof script, "%s/tests/support/bin/k8sapi.py", src ? src : ".");
	snprintf(fixtures, sizeof fixtures, "%s/tests/support/fixtures/k8s", src ? src : ".");
	char *argv[] = { script, "--token", "s3cret", "--readonly-token", "viewer", "--status-delay-ms",
			 "30", "--fixtures", fixtures, NULL };
	if (sim_proc_start(argv, 30000, &e->api, &err) < 0) {
		fprintf(stderr, "cannot start k8sapi: %s\n", err.msg);
		free(e);
		return -1;
	}
	snprintf(e->dir, sizeof e->dir, "/tmp/canary-k8s-XXXXXX");
	if (!mkdtemp(e->dir))
		return -1;
	snprintf(e->kc_ok, sizeof e->kc_ok, "%s/ok.kubeconfig", e->dir);
	snprintf(e->kc_bad, sizeof e->kc_bad, "%s/bad.kubeconfig", e->dir);
	snprintf(e->kc_ro, sizeof e->kc_ro, "%s/ro.kubeconfig", e->dir);
	write_kubeconfig(e->kc_ok, e->api.port, "s3cret");
	write_kubeconfig(e->kc_bad, e->api.port, "wrong");
	write_kubeconfig(e->kc_ro, e->api.port, "viewer");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (!e)
		return 0;
	sim_proc_stop(&e->api);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", e->dir);
	free(e);
	return 0;
}

/* A control request to the server (no auth); fails the test unless it answers 200. */
static void fake(struct env *e, const char *method, const char *path, const char *body, json_t **out)
{
	struct sim_http_resp r = { 0 };
	struct cn_err err = { 0 };
	if (sim_http_request(e->api.port, method, path, body, 5000, &r, &err) < 0)
		fail_msg("%s %s: %s", method, path, err.msg);
	if (r.status != 200)
		fail_msg("%s %s: %d %s", method, path, r.status, r.body);
	if (out)
		*out = json_loads(r.body, 0, NULL);
	sim_http_free(&r);
}

static void reset_fake(struct env *e)
{
	fake(e, "POST", "/_fake/config", "{\"controller\": true, \"conditions\": {}, \"fail\": null, \"conflicts\": 0, "
	     "\"hang_ms\": 0, \"status_delay_ms\": 30}", NULL);
}

/* Counts the logged requests with method and code since the log had `from` entries. */
static int logged(struct env *e, size_t from, const char *method, long code)
{
	json_t *log = NULL, *it;
	size_t i;
	int n = 0;
	fake(e, "GET", "/_fake/log", NULL, &log);
	json_array_foreach(log, i, it) {
		if (i >= from && strcmp(json_string_value(json_object_get(it, "method")), method) == 0 &&
		    json_integer_value(json_object_get(it, "code")) == code)
			n++;
	}
	json_decref(log);
	return n;
}

static size_t log_len(struct env *e)
{
	json_t *log = NULL;
	fake(e, "GET", "/_fake/log", NULL, &log);
	size_t n = json_array_size(log);
	json_decref(log);
	return n;
}

/* A gateway of kind on object name with the kubeconfig kc (NULL: none, credentials found as client-go does). */
static struct cn_gateway *open_kind(const char *kind, const char *name, const char *kc, int64_t timeout_ms)
{
	char yaml[2048];
	struct cn_service svc;
	struct cn_err err = { 0 };
	snprintf(yaml, sizeof yaml,
		 "name: foo\ngateway:\n  kind: %s\n  namespace: models\n  name: %s\n%s%s%s%s"
		 "  timeout: %lldms\nslots:\n  v1: {server: foo-v1, metrics_url: 'http://127.0.0.1:9/metrics'}\n"
		 "  v2: {server: foo-v2, metrics_url: 'http://127.0.0.1:9/metrics'}\nlive: v1\n",
		 kind, name, strcmp(kind, "gateway-api") == 0 ? "  rule: 1\n" : "", kc ? "  kubeconfig: " : "",
		 kc ? kc : "", kc ? "\n" : "", (long long)timeout_ms);
	if (cn_service_parse(yaml, strlen(yaml), "test.yaml", &svc, &err) < 0)
		fail_msg("parse: %s", err.msg);
	struct cn_gateway *gw = cn_gateway_open(&svc, &err);
	if (!gw)
		fail_msg("open: %s", err.msg);
	cn_gateway_set_candidate(gw, 1);
	return gw;
}

static json_t *route_obj(struct env *e)
{
	json_t *o = NULL;
	fake(e, "GET", "/_fake/get" ROUTE, NULL, &o);
	return o;
}

static json_int_t route_weight(json_t *o, size_t rule, size_t ref)
{
	json_t *rules = json_object_get(json_object_get(o, "spec"), "rules");
	return json_integer_value(
		json_object_get(json_array_get(json_object_get(json_array_get(rules, rule), "backendRefs"), ref), "weight"));
}

/* Moves 1 -> 5 -> 50 -> 100 -> 0: weights in hundredths of a percent, rule 0 and the rest untouched, merge patches
 * that carry the resourceVersion, and get reads the shares back. */
static void test_route_set_get(void **state)
{
	struct env *e = *state;
	reset_fake(e);
	struct cn_gateway *gw = open_kind("gateway-api", "foo-route", e->kc_ok, 5000);
	json_t *before = route_obj(e);
	size_t from = log_len(e);
	static const double cand[] = { 1, 5, 50, 100, 0, 10 };
	for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
		struct cn_err err = { 0 };
		double pct[2] = { 100 - cand[i], cand[i] }, got[2];
		if (cn_gateway_set_weights(gw, pct, &err) != 0)
			fail_msg("set %g: %s", cand[i], err.msg);
		json_t *o = route_obj(e);
		assert_int_equal(route_weight(o, 1, 0), (json_int_t)llround((100 - cand[i]) * 100));
		assert_int_equal(route_weight(o, 1, 1), (json_int_t)llround(cand[i] * 100));
		/* everything else as it was: rule 0, hostnames, parentRefs */
		assert_true(json_equal(json_array_get(json_object_get(json_object_get(o, "spec"), "rules"), 0),
				       json_array_get(json_object_get(json_object_get(before, "spec"), "rules"), 0)));
		assert_true(json_equal(json_object_get(json_object_get(o, "spec"), "hostnames"),
				       json_object_get(json_object_get(before, "spec"), "hostnames")));
		json_decref(o);
		assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
		assert_true(fabs(got[1] - cand[i]) < 1e-9 && fabs(got[0] - (100 - cand[i])) < 1e-9);
	}
	/* a set that changes nothing writes nothing */
	size_t mid = log_len(e);
	struct cn_err err = { 0 };
	double same[2] = { 90, 10 };
	assert_int_equal(cn_gateway_set_weights(gw, same, &err), 0);
	assert_int_equal(logged(e, mid, "PATCH", 200), 0);
	/* every write was a merge patch with the bearer token; one per move took. The fake's controller bumps the
	 * resourceVersion when it reports on a generation: a move read just before that report is refused (409) and
	 * written again, which a slow machine sees now and then */
	json_t *log = NULL, *it;
	size_t i;
	int patches = 0, conflicts = 0;
	fake(e, "GET", "/_fake/log", NULL, &log);
	json_array_foreach(log, i, it) {
		if (i < from || strcmp(json_string_value(json_object_get(it, "method")), "PATCH") != 0)
			continue;
		long code = (long)json_integer_value(json_object_get(it, "code"));
		patches += code == 200;
		conflicts += code == 409;
		assert_true(code == 200 || code == 409);
		assert_string_equal(json_string_value(json_object_get(it, "content_type")), "application/merge-patch+json");
		assert_string_equal(json_string_value(json_object_get(it, "auth")), "Bearer s3cret");
	}
	assert_int_equal(patches, 6);
	assert_true(conflicts <= 6);
	json_decref(log);
	json_decref(before);
	cn_gateway_close(gw);
}

/* Another writer changes the route between our GET and PATCH: 409, read again, patch again (bounded). */
static void test_route_conflicts(void **state)
{
	struct env *e = *state;
	reset_fake(e);
	struct cn_gateway *gw = open_kind("gateway-api", "foo-route", e->kc_ok, 5000);
	struct cn_err err = { 0 };
	double pct[2] = { 80, 20 }, got[2];
	size_t from = log_len(e);
	fake(e, "POST", "/_fake/config", "{\"conflicts\": 2}", NULL);
	if (cn_gateway_set_weights(gw, pct, &err) != 0)
		fail_msg("set through 2 conflicts: %s", err.msg);
	assert_int_equal(logged(e, from, "PATCH", 409), 2);
	assert_int_equal(logged(e, from, "PATCH", 200), 1);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_true(fabs(got[1] - 20) < 1e-9);
	/* the other writer's change survived */
	json_t *o = route_obj(e);
	assert_non_null(json_object_get(json_object_get(json_object_get(o, "metadata"), "annotations"),
					"example.com/other-writer"));
	json_decref(o);
	/* a writer that always wins: given up on after a bounded number of tries, saying so */
	fake(e, "POST", "/_fake/config", "{\"conflicts\": 100}", NULL);
	pct[0] = 70, pct[1] = 30;
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "gave up after 5 conflicting writes"));
	print_message("%s\n", err.msg);
	cn_gateway_close(gw);
}

/* 401, 403 and 404 fail with the API server's words. */
static void test_auth_and_missing(void **state)
{
	struct env *e = *state;
	reset_fake(e);
	struct cn_err err = { 0 };
	double pct[2] = { 60, 40 }, got[2];
	struct cn_gateway *gw = open_kind("gateway-api", "foo-route", e->kc_bad, 5000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "401 Unauthorized: Unauthorized"));
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	cn_gateway_close(gw);

	gw = open_kind("gateway-api", "foo-route", e->kc_ro, 5000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "403 Forbidden: httproutes.gateway.networking.k8s.io \"foo-route\" is forbidden: "
				     "User \"system:serviceaccount:models:viewer\" cannot patch resource \"httproutes\""));
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0); /* may read */
	cn_gateway_close(gw);

	gw = open_kind("kserve", "nope", e->kc_ok, 5000);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "404 NotFound: inferenceservices.serving.kserve.io \"nope\" not found"));
	cn_gateway_close(gw);

	/* a server error is quoted too */
	fake(e, "POST", "/_fake/config", "{\"fail\": {\"code\": 500, \"count\": 1, \"method\": \"GET\", "
	     "\"message\": \"etcdserver: request timed out\"}}", NULL);
	gw = open_kind("gateway-api", "foo-route", e->kc_ok, 5000);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "etcdserver: request timed out"));
	cn_gateway_close(gw);
}

/* A False Accepted or ResolvedRefs for the new generation holds with the controller's message; so does get. */
static void test_route_condition_false(void **state)
{
	struct env *e = *state;
	reset_fake(e);
	struct cn_gateway *gw = open_kind("gateway-api", "foo-route", e->kc_ok, 5000);
	struct cn_err err = { 0 };
	double pct[2] = { 75, 25 }, got[2];
	fake(e, "POST", "/_fake/config", "{\"conditions\": {\"ResolvedRefs\": {\"status\": \"False\", \"reason\": "
	     "\"BackendNotFound\", \"message\": \"service \\\"models/foo-v2\\\" not found\"}}}", NULL);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "parent prod-web-gw says ResolvedRefs False (BackendNotFound): service "
				     "\"models/foo-v2\" not found"));
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "BackendNotFound"));
	fake(e, "POST", "/_fake/config", "{\"conditions\": {\"Accepted\": {\"status\": \"False\", \"reason\": "
	     "\"NotAllowedByListeners\", \"message\": \"no listener allows routes from namespace models\"}}}", NULL);
	pct[0] = 70, pct[1] = 30;
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	assert_non_null(strstr(err.msg, "Accepted False (NotAllowedByListeners): no listener allows"));
	/* the controller recovers: the same set confirms */
	reset_fake(e);
	if (cn_gateway_set_weights(gw, pct, &err) != 0) {
		/* the spec already holds 70/30, so nothing is patched and no new generation is reconciled: nudge it */
		double other[2] = { 69, 31 };
		if (cn_gateway_set_weights(gw, other, &err) != 0)
			fail_msg("after recovery: %s", err.msg);
	}
	cn_gateway_close(gw);
}

/* No controller confirms: the set fails at the timeout saying what is missing; a hung server: curl's timeout. */
static void test_timeouts(void **state)
{
	struct env *e = *state;
	reset_fake(e);
	struct cn_gateway *gw = open_kind("gateway-api", "foo-route", e->kc_ok, 400);
	struct cn_err err = { 0 };
	double pct[2] = { 66, 34 }, got[2];
	fake(e, "POST", "/_fake/config", "{\"controller\": false}", NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	print_message("%s (%ld ms)\n", err.msg, ms);
	assert_non_null(strstr(err.msg, "not confirmed in 400 ms: parent prod-web-gw has not reported Accepted"));
	assert_true(ms >= 400 && ms < 2000);
	/* get cannot tell what is served until the controller reports on this generation */
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
	assert_true(isnan(got[0]) && isnan(got[1]));

	fake(e, "POST", "/_fake/config", "{\"controller\": true, \"hang_ms\": 1500}", NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	print_message("%s (%ld ms)\n", err.msg, ms);
	assert_non_null(strstr(err.msg, "timed out"));
	assert_true(ms < 1200);
	fake(e, "POST", "/_fake/config", "{\"hang_ms\": 0}", NULL);
	sleep(2); /* let the hung handler finish before the next test */
	cn_gateway_close(gw);
}

/* KServe: canaryTrafficPercent is the candidate's share (slot v2), confirmed from status traffic; a share below
 * 1% is 1%; 100% rolls the revision out. */
static void test_kserve(void **state)
{
	struct env *e = *state;
	reset_fake(e);
	struct cn_gateway *gw = open_kind("kserve", "my-model", e->kc_ok, 5000);
	static const struct {
		double cand;
		int want;
	} steps[] = { { 5, 5 }, { 0.4, 1 }, { 25, 25 }, { 0, 0 }, { 100, 100 } };
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct cn_err err = { 0 };
		double pct[2] = { 100 - steps[i].cand, steps[i].cand }, got[2];
		if (cn_gateway_set_weights(gw, pct, &err) != 0)
			fail_msg("set %g: %s", steps[i].cand, err.msg);
		json_t *o = NULL;
		fake(e, "GET", "/_fake/get" ISVC, NULL, &o);
		json_t *pred = json_object_get(json_object_get(o, "spec"), "predictor");
		assert_int_equal(json_integer_value(json_object_get(pred, "canaryTrafficPercent")), steps[i].want);
		assert_non_null(json_object_get(pred, "tensorflow")); /* the rest of the predictor is kept */
		json_decref(o);
		assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
		assert_true(fabs(got[1] - steps[i].want) < 1e-9 && fabs(got[0] + got[1] - 100) < 1e-9);
	}
	json_t *o = NULL;
	fake(e, "GET", "/_fake/get" ISVC, NULL, &o);
	const char *rolled = json_string_value(json_object_get(
		json_object_get(json_object_get(json_object_get(o, "status"), "components"), "predictor"),
		"latestRolledoutRevision"));
	assert_string_equal(rolled, "my-model-predictor-00002");
	json_decref(o);
	/* no controller: the set holds at the timeout with KServe's status in words */
	cn_gateway_close(gw);
	gw = open_kind("kserve", "my-model", e->kc_ok, 300);
	fake(e, "POST", "/_fake/config", "{\"controller\": false}", NULL);
	struct cn_err err = { 0 };
	double pct[2] = { 50, 50 };
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "canaryTrafficPercent 50 written but not confirmed in 300 ms: KServe has not "
				     "reconciled generation"));
	reset_fake(e);
	cn_gateway_close(gw);
}

/* https: the CA from a file named relative to the kubeconfig, or inline as certificate-authority-data; without
 * it the server's self-signed certificate is refused with curl's words. */
static void test_tls(void **state)
{
	struct env *e = *state;
	char cmd[1024], cert[128], key[128], b64[128], fixtures[1024];
	const char *src = getenv("CANARY_SOURCE_DIR");
	snprintf(cert, sizeof cert, "%s/cert.pem", e->dir);
	snprintf(key, sizeof key, "%s/key.pem", e->dir);
	snprintf(b64, sizeof b64, "%s/cert.b64", e->dir);
	snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 -subj "
		 "/CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 && openssl base64 -A -in %s -out %s",
		 key, cert, cert, b64);
	if (system(cmd) != 0)
		skip();
	char script[1024];
	snprintf(script, sizeof script, "%s/tests/support/bin/k8sapi.py", src ? src : ".");
	snprintf(fixtures, sizeof fixtures, "%s/tests/support/fixtures/k8s", src ? src : ".");
	char *argv[] = { script, "--token", "s3cret", "--status-delay-ms", "0", "--fixtures", fixtures, "--tls-cert", cert,
			 "--tls-key", key, NULL };
	struct sim_proc tls = { 0 };
	struct cn_err err = { 0 };
	if (sim_proc_start(argv, 30000, &tls, &err) < 0)
		fail_msg("k8sapi with tls: %s", err.msg);
	char data[4096] = "";
	FILE *f = fopen(b64, "r");
	assert_non_null(f);
	size_t n = fread(data, 1, sizeof data - 1, f);
	data[n] = '\0';
	fclose(f);
	static const char *const names[] = { "file", "data", "none" };
	for (int i = 0; i < 3; i++) {
		char kc[128];
		snprintf(kc, sizeof kc, "%s/tls-%s.kubeconfig", e->dir, names[i]);
		f = fopen(kc, "w");
		assert_non_null(f);
		fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n  cluster:\n"
			   "    server: https://127.0.0.1:%d\n", tls.port);
		if (i == 0)
			fprintf(f, "    certificate-authority: cert.pem\n");
		if (i == 1)
			fprintf(f, "    certificate-authority-data: %s\n", data);
		fprintf(f, "contexts:\n- name: t\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: s3cret}\n");
		fclose(f);
		struct cn_gateway *gw = open_kind("gateway-api", "foo-route", kc, 5000);
		double pct[2] = { 97, 3 }, got[2];
		int rc = cn_gateway_set_weights(gw, pct, &err);
		if (i < 2) {
			if (rc != 0)
				fail_msg("https with the CA as %s: %s", names[i], err.msg);
			assert_int_equal(cn_gateway_get_weights(gw, got, &err), 0);
			assert_true(fabs(got[1] - 3) < 1e-9);
		} else {
			assert_int_equal(rc, -CN_EUNAVAIL);
			print_message("%s\n", err.msg);
			assert_non_null(strstr(err.msg, "certificate"));
		}
		cn_gateway_close(gw);
	}
	sim_proc_stop(&tls);
}

/* Credentials that cannot work are refused when the client is opened, naming the file. */
static void test_bad_kubeconfig(void **state)
{
	struct env *e = *state;
	char kc[128], yaml[1024];
	struct cn_service svc;
	struct cn_err err = { 0 };
	snprintf(kc, sizeof kc, "%s/exec.kubeconfig", e->dir);
	FILE *f = fopen(kc, "w");
	assert_non_null(f);
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n  cluster: {server: "
		   "'https://127.0.0.1:1'}\ncontexts:\n- name: t\n  context: {cluster: c, user: u}\nusers:\n- name: u\n"
		   "  user:\n    exec: {command: aws, args: [eks, get-token]}\n");
	fclose(f);
	snprintf(yaml, sizeof yaml, "name: foo\ngateway:\n  kind: kserve\n  namespace: models\n  name: m\n  kubeconfig: %s\n"
		 "slots:\n  a: {metrics_url: 'http://127.0.0.1:9/m'}\n  b: {metrics_url: 'http://127.0.0.1:9/m'}\nlive: a\n", kc);
	assert_int_equal(cn_service_parse(yaml, strlen(yaml), "t.yaml", &svc, &err), 0);
	assert_null(cn_gateway_open(&svc, &err));
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "user 'u' gets its credentials from a program (exec or auth-provider)"));
	snprintf(svc.gateway.k8s_context, sizeof svc.gateway.k8s_context, "elsewhere");
	assert_null(cn_gateway_open(&svc, &err));
	assert_non_null(strstr(err.msg, "no context named 'elsewhere'"));
	snprintf(svc.gateway.kubeconfig, sizeof svc.gateway.kubeconfig, "%s/missing", e->dir);
	assert_null(cn_gateway_open(&svc, &err));
	assert_non_null(strstr(err.msg, "missing"));
}


/* A throwaway PKI in dir (openssl CLI): ca.crt/key, a server certificate for IP 127.0.0.1 and a client certificate
 * (CN canaryd) signed by it, and another CA (other-ca.crt) with a client certificate of its own (other-client.*);
 * *.b64 are the base64 of each PEM on one line. Returns 0, or -1 when openssl is missing or fails. */
static int make_pki(const char *dir)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
		 "set -e; cd %s; exec >pki.log 2>&1;"
		 "for ca in ca other-ca; do openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.crt -days 1"
		 " -subj /CN=canary-test-$ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign,cRLSign; done;"
		 "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' >server.ext;"
		 "printf 'extendedKeyUsage=clientAuth\\n' >client.ext;"
		 "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1;"
		 "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile server.ext"
		 " -out server.crt;"
		 "for c in client:ca other-client:other-ca; do n=${c%%:*}; a=${c#*:};"
		 " openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=canaryd;"
		 " openssl x509 -req -in $n.csr -CA $a.crt -CAkey $a.key -CAcreateserial -days 1 -extfile client.ext"
		 " -out $n.crt; done;"
		 "for f in ca.crt client.crt client.key; do openssl base64 -A -in $f -out $f.b64; done",
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Starts k8sapi.py over https with the PKI in dir and the extra arguments (NULL-terminated, at most 8). */
static void start_tls_api(const char *dir, struct sim_proc *p, const char *const extra[])
{
	char script[1024], fixtures[1024], cert[256], key[256];
	const char *src = getenv("CANARY_SOURCE_DIR");
	snprintf(script, sizeof script, "%s/tests/support/bin/k8sapi.py", src ? src : ".");
	snprintf(fixtures, sizeof fixtures, "%s/tests/support/fixtures/k8s", src ? src : ".");
	snprintf(cert, sizeof cert, "%s/server.crt", dir);
	snprintf(key, sizeof key, "%s/server.key", dir);
	char *argv[24] = { script, "--status-delay-ms", "0", "--fixtures", fixtures, "--tls-cert", cert, "--tls-key", key };
	size_t n = 9;
	for (size_t i = 0; extra[i] && n < 22; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	struct cn_err err = { 0 };
	if (sim_proc_start(argv, 30000, p, &err) < 0)
		fail_msg("k8sapi with tls: %s", err.msg);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Reads a small file (the base64 of a PEM) into buf. */
static void read_text(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Sets 97/3 then 90/10 through gw and reads it back; fails the test with the error otherwise. */
static void set_and_get(struct cn_gateway *gw, const char *what)
{
	static const double cand[] = { 3, 10 };
	for (int i = 0; i < 2; i++) {
		struct cn_err err = { 0 };
		double pct[2] = { 100 - cand[i], cand[i] }, got[2];
		if (cn_gateway_set_weights(gw, pct, &err) != 0)
			fail_msg("%s: set %g: %s", what, cand[i], err.msg);
		if (cn_gateway_get_weights(gw, got, &err) != 0)
			fail_msg("%s: get: %s", what, err.msg);
		assert_true(fabs(got[1] - cand[i]) < 1e-9);
	}
}

/* In a pod: no kubeconfig, KUBERNETES_SERVICE_HOST/_PORT set, the token and ca.crt in the service account
 * directory (CANARY_K8S_SA_DIR stands in for /var/run/secrets/kubernetes.io/serviceaccount). Both kinds set and
 * read over https, verifying the API server against ca.crt with the token as bearer; the token is read at each
 * request (a rotated one is used at once); an expired one gets the API server's 401 words and says whose token it
 * was; a ca.crt of another cluster is refused naming the server and what to check. */
static void test_in_cluster(void **state)
{
	struct env *e = *state;
	char pki[128], sa[160], path[256], accepted[256], port[16];
	snprintf(pki, sizeof pki, "%s/pki-sa", e->dir);
	snprintf(sa, sizeof sa, "%s/serviceaccount", e->dir);
	if (mkdir(pki, 0700) < 0 || mkdir(sa, 0700) < 0)
		fail_msg("mkdir: %s", strerror(errno));
	if (make_pki(pki) < 0)
		fail_msg("openssl could not make the test PKI (see %s/pki.log)", pki);
	/* the API server accepts the token in this file, so the test can rotate it */
	snprintf(accepted, sizeof accepted, "%s/accepted-token", e->dir);
	write_text(accepted, "sa-token-1\n");
	snprintf(path, sizeof path, "%s/token", sa);
	write_text(path, "sa-token-1\n");
	snprintf(path, sizeof path, "%s/namespace", sa);
	write_text(path, "models");
	char cmd[512];
	snprintf(cmd, sizeof cmd, "cp %s/ca.crt %s/ca.crt", pki, sa);
	assert_int_equal(system(cmd), 0);
	struct sim_proc api = { 0 };
	const char *extra[] = { "--token-file", accepted, NULL };
	start_tls_api(pki, &api, extra);

	snprintf(port, sizeof port, "%d", api.port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	setenv("CANARY_K8S_SA_DIR", sa, 1);
	unsetenv("KUBECONFIG");

	struct cn_gateway *gw = open_kind("gateway-api", "foo-route", NULL, 5000);
	set_and_get(gw, "in-cluster gateway-api");
	cn_gateway_close(gw);
	gw = open_kind("kserve", "my-model", NULL, 5000);
	set_and_get(gw, "in-cluster kserve");

	/* the kubelet rotates the projected token: the next request carries the new one */
	write_text(accepted, "sa-token-2\n");
	snprintf(path, sizeof path, "%s/token", sa);
	write_text(path, "sa-token-2\n");
	set_and_get(gw, "rotated token");

	/* an expired token: the API server's 401, and whose token it was */
	write_text(path, "sa-token-1-expired\n");
	struct cn_err err = { 0 };
	double pct[2] = { 50, 50 }, got[2];
	assert_int_equal(cn_gateway_set_weights(gw, pct, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "401 Unauthorized: Unauthorized"));
	assert_non_null(strstr(err.msg, "the token of the service account in "));
	assert_non_null(strstr(err.msg, sa));
	assert_null(strchr(err.msg, '\n'));
	cn_gateway_close(gw);

	/* the token file is gone: said so, not sent without one */
	assert_int_equal(unlink(path), 0);
	gw = open_kind("gateway-api", "foo-route", NULL, 5000);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "cannot read the service account token"));
	assert_non_null(strstr(err.msg, "No such file or directory; mount it (automountServiceAccountToken)"));
	write_text(path, "sa-token-2\n");

	/* ca.crt of another cluster: refused, naming the server and what to check */
	snprintf(cmd, sizeof cmd, "cp %s/other-ca.crt %s/ca.crt", pki, sa);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	char server[64];
	snprintf(server, sizeof server, "https://127.0.0.1:%d/", api.port);
	assert_non_null(strstr(err.msg, server));
	assert_non_null(strstr(err.msg, "certificate"));
	assert_non_null(strstr(err.msg, "not signed by the service account's ca.crt"));
	assert_null(strchr(err.msg, '\n'));
	cn_gateway_close(gw);

	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("CANARY_K8S_SA_DIR");
	sim_proc_stop(&api);
}

/* Writes a kubeconfig for an https server at port whose cluster and user lines are given. */
static void write_tls_kubeconfig(const char *path, int port, const char *cluster_extra, const char *user)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n  cluster:\n"
		   "    server: https://127.0.0.1:%d\n%scontexts:\n- name: t\n  context: {cluster: c, user: u}\n"
		   "users:\n- name: u\n  user:\n%s",
		port, cluster_extra, user);
	fclose(f);
}

/* A kubeconfig user with a client certificate against an API server that requires one (x509 client
 * authentication, no token): inline (client-certificate-data/client-key-data with certificate-authority-data)
 * and as files relative to the kubeconfig; without a certificate, or with one from another CA, the handshake is
 * refused with curl's words. */
static void test_client_cert(void **state)
{
	struct env *e = *state;
	char pki[128], kc[256], ca[160], cluster[8192], user[16384], ca64[4096], crt64[4096], key64[8192];
	snprintf(pki, sizeof pki, "%s/pki-cc", e->dir);
	if (mkdir(pki, 0700) < 0)
		fail_msg("mkdir: %s", strerror(errno));
	if (make_pki(pki) < 0)
		fail_msg("openssl could not make the test PKI (see %s/pki.log)", pki);
	snprintf(ca, sizeof ca, "%s/ca.crt", pki);
	struct sim_proc api = { 0 };
	const char *extra[] = { "--client-ca", ca, "--require-client-cert", NULL };
	start_tls_api(pki, &api, extra);
	char path[256];
	snprintf(path, sizeof path, "%s/ca.crt.b64", pki);
	read_text(path, ca64, sizeof ca64);
	snprintf(path, sizeof path, "%s/client.crt.b64", pki);
	read_text(path, crt64, sizeof crt64);
	snprintf(path, sizeof path, "%s/client.key.b64", pki);
	read_text(path, key64, sizeof key64);

	/* inline, base64 */
	snprintf(kc, sizeof kc, "%s/inline.kubeconfig", pki);
	snprintf(cluster, sizeof cluster, "    certificate-authority-data: %s\n", ca64);
	snprintf(user, sizeof user, "    client-certificate-data: %s\n    client-key-data: %s\n", crt64, key64);
	write_tls_kubeconfig(kc, api.port, cluster, user);
	struct cn_gateway *gw = open_kind("gateway-api", "foo-route", kc, 5000);
	set_and_get(gw, "client certificate inline");
	cn_gateway_close(gw);
	gw = open_kind("kserve", "my-model", kc, 5000);
	set_and_get(gw, "client certificate inline, kserve");
	cn_gateway_close(gw);

	/* files, relative to the kubeconfig */
	snprintf(kc, sizeof kc, "%s/files.kubeconfig", pki);
	write_tls_kubeconfig(kc, api.port, "    certificate-authority: ca.crt\n",
			     "    client-certificate: client.crt\n    client-key: client.key\n");
	gw = open_kind("gateway-api", "foo-route", kc, 5000);
	set_and_get(gw, "client certificate files");
	cn_gateway_close(gw);

	/* no client certificate: the server refuses the handshake */
	struct cn_err err = { 0 };
	double got[2];
	snprintf(kc, sizeof kc, "%s/nocert.kubeconfig", pki);
	write_tls_kubeconfig(kc, api.port, "    certificate-authority: ca.crt\n", "    token: not-enough\n");
	gw = open_kind("gateway-api", "foo-route", kc, 5000);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "if the API server asks for a client certificate, give the user"));
	assert_null(strchr(err.msg, '\n'));
	cn_gateway_close(gw);

	/* a certificate from another CA */
	snprintf(kc, sizeof kc, "%s/othercert.kubeconfig", pki);
	write_tls_kubeconfig(kc, api.port, "    certificate-authority: ca.crt\n",
			     "    client-certificate: other-client.crt\n    client-key: other-client.key\n");
	gw = open_kind("gateway-api", "foo-route", kc, 5000);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "if the API server refused the client certificate, check that the cluster's CA"));
	cn_gateway_close(gw);

	/* a key that is not PEM: curl's words and what to check */
	snprintf(path, sizeof path, "%s/garbage.key", pki);
	write_text(path, "not a key\n");
	snprintf(kc, sizeof kc, "%s/badkey.kubeconfig", pki);
	write_tls_kubeconfig(kc, api.port, "    certificate-authority: ca.crt\n",
			     "    client-certificate: client.crt\n    client-key: garbage.key\n");
	gw = open_kind("gateway-api", "foo-route", kc, 5000);
	assert_int_equal(cn_gateway_get_weights(gw, got, &err), -CN_EUNAVAIL);
	print_message("%s\n", err.msg);
	assert_non_null(strstr(err.msg, "client-certificate/client-key"));
	cn_gateway_close(gw);
	sim_proc_stop(&api);
}

/* A context naming a user or a cluster the kubeconfig does not have: FILE:LINE:COL, 65, what to do. */
static void test_kubeconfig_dangling(void **state)
{
	struct env *e = *state;
	char kc[128], yaml[1024];
	struct cn_service svc;
	struct cn_err err = { 0 };
	static const struct {
		const char *contexts, *want;
	} cases[] = {
		{ "- name: t\n  context:\n    cluster: c\n    user: nobody\n",
		  "dangling.kubeconfig:11:11: context 't' names user 'nobody', which is not in users; add it or pick "
		  "another context (gateway.context)" },
		{ "- name: t\n  context:\n    cluster: elsewhere\n    user: u\n",
		  "dangling.kubeconfig:10:14: context 't' names cluster 'elsewhere', which is not in clusters" },
		{ "- name: t\n  context:\n    user: u\n", "dangling.kubeconfig:10:5: context 't' names no cluster" },
	};
	snprintf(kc, sizeof kc, "%s/dangling.kubeconfig", e->dir);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		FILE *f = fopen(kc, "w");
		assert_non_null(f);
		fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n  cluster: {server: "
			   "'https://127.0.0.1:1'}\ncontexts:\n%susers:\n- name: u\n  user: {token: x}\n", cases[i].contexts);
		fclose(f);
		snprintf(yaml, sizeof yaml, "name: foo\ngateway:\n  kind: gateway-api\n  namespace: models\n  name: r\n"
			 "  kubeconfig: %s\nslots:\n  a: {server: a, metrics_url: 'http://127.0.0.1:9/m'}\n"
			 "  b: {server: b, metrics_url: 'http://127.0.0.1:9/m'}\nlive: a\n", kc);
		assert_int_equal(cn_service_parse(yaml, strlen(yaml), "t.yaml", &svc, &err), 0);
		assert_null(cn_gateway_open(&svc, &err));
		print_message("%s\n", err.msg);
		assert_int_equal(err.code, CN_EINPUT);
		assert_non_null(strstr(err.msg, cases[i].want));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_set_get),
		cmocka_unit_test(test_route_conflicts),
		cmocka_unit_test(test_auth_and_missing),
		cmocka_unit_test(test_route_condition_false),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_kserve),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_bad_kubeconfig),
		cmocka_unit_test(test_in_cluster),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_kubeconfig_dangling),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
