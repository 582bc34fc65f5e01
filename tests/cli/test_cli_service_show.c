/* `canaryctl service show` names each gateway kind's own target, in text and in --output json: HAProxy's runtime
 * API and backend, nginx's upstream servers and include file, the command gateway's set and get argv, the
 * HTTPRoute (namespace/name, rule, backendRefs) or InferenceService with the API server its credentials name on
 * this host, or why none is found. Runs the canaryctl binary against a throwaway database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_run.h"
#include "pg_fixture.h"

static const char *path_in(const char *env, const char *rel)
{
	static char buf[2][1024];
	static int k;
	const char *base = getenv(env);
	k = (k + 1) % 2;
	snprintf(buf[k], sizeof buf[k], "%s/%s", base ? base : ".", rel);
	return buf[k];
}

static void expect_status(const struct run *r, int want)
{
	if (r->status != want)
		fail_msg("canaryctl exited %d, not %d; stderr: %s", r->status, want, r->err);
}

/* One kind's service file (NAME is the service name), the line `service show` must print for its gateway, and
 * the JSON gateway object's fields that must be there (key=value; value "null" for JSON null). */
struct kind_case {
	const char *name;
	const char *yaml; /* %1$s: the temp directory */
	const char *line;
	const char *json[8];
};

static void check_json(const json_t *gw, const char *const want[8])
{
	for (int i = 0; i < 8 && want[i]; i++) {
		char key[64];
		const char *eq = strchr(want[i], '=');
		assert_non_null(eq);
		snprintf(key, sizeof key, "%.*s", (int)(eq - want[i]), want[i]);
		json_t *v = json_object_get(gw, key);
		if (!v)
			fail_msg("gateway json lacks '%s'", key);
		if (strcmp(eq + 1, "null") == 0) {
			assert_true(json_is_null(v));
			continue;
		}
		char *text = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (strcmp(text, eq + 1) != 0)
			fail_msg("gateway json '%s' is %s, not %s", key, text, eq + 1);
		free(text);
	}
}

static void test_show_each_kind(void **state)
{
	(void)state;
	static struct run r;
	struct pg_fixture db;
	char msg[512], dir[] = "/tmp/canary-show.XXXXXX";
	if (pg_fixture_create(&db, msg, sizeof msg) != 0)
		fail_msg("%s", msg);
	assert_non_null(mkdtemp(dir));
	ctl_run(&r, db.conninfo, (const char *[]){"migrate", "--migrations", path_in("CANARY_SOURCE_DIR", "migrations"),
						  NULL});
	expect_status(&r, 0);

	/* a kubeconfig that names an API server nobody listens on (apply probes it and only warns) */
	char kc[256], text[2048];
	snprintf(kc, sizeof kc, "%s/kubeconfig", dir);
	snprintf(text, sizeof text, "apiVersion: v1\nkind: Config\ncurrent-context: prod\nclusters:\n- name: c\n"
		 "  cluster: {server: 'https://127.0.0.1:1'}\ncontexts:\n- name: prod\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {token: t}\n");
	assert_int_equal(pg_fixture_write_file(kc, text), 0);

	char want_line[1024];
	static const struct kind_case cases[] = {
		{ "hap",
		  "name: hap\ngateway: {kind: haproxy, runtime_api: 'unix:%1$s/none.sock', backend: be_hap}\n"
		  "slots:\n  blue: {server: s1, metrics_url: 'http://127.0.0.1:9/m'}\n"
		  "  green: {server: s2, metrics_url: 'http://127.0.0.1:9/m'}\nlive: blue\n",
		  "gateway: haproxy unix:%1$s/none.sock backend be_hap\n",
		  { "kind=haproxy", "runtime_api=unix:%1$s/none.sock", "backend=be_hap" } },
		{ "ngx",
		  "name: ngx\ngateway: {kind: nginx, include: '%1$s/chat.servers', config: '%1$s/nginx.conf', "
		  "pid_file: '%1$s/nginx.pid'}\nslots:\n  blue: {server: '127.0.0.1:8001', metrics_url: 'http://127.0.0.1:9/m'}\n"
		  "  green: {server: '127.0.0.1:8002', metrics_url: 'http://127.0.0.1:9/m'}\nlive: blue\n",
		  "gateway: nginx upstream servers 127.0.0.1:8001 and 127.0.0.1:8002 written to include %1$s/chat.servers "
		  "(config %1$s/nginx.conf, pid file %1$s/nginx.pid)\n",
		  { "kind=nginx", "include=%1$s/chat.servers", "config=%1$s/nginx.conf",
		    "upstream_servers=[\"127.0.0.1:8001\",\"127.0.0.1:8002\"]" } },
		{ "cmd",
		  "name: cmd\ngateway:\n  kind: command\n  set: ['%1$s/gw', set, '{candidate_slot}={candidate_percent}', "
		  "'it''s {{x}}']\n  get: ['%1$s/gw', get]\n  timeout: 2s\n"
		  "slots:\n  blue: {metrics_url: 'http://127.0.0.1:9/m'}\n  green: {metrics_url: 'http://127.0.0.1:9/m'}\n"
		  "live: blue\n",
		  "gateway: command set: %1$s/gw set {candidate_slot}={candidate_percent} 'it'\\''s {{x}}'; get: %1$s/gw get\n",
		  { "kind=command", "get=[\"%1$s/gw\",\"get\"]", "timeout_ms=2000" } },
		{ "route",
		  "name: route\ngateway: {kind: gateway-api, namespace: models, name: chat-route, rule: 1, kubeconfig: '%1$s/kubeconfig'}\n"
		  "slots:\n  blue: {server: chat-blue, metrics_url: 'http://127.0.0.1:9/m'}\n"
		  "  green: {server: chat-green, metrics_url: 'http://127.0.0.1:9/m'}\nlive: blue\n",
		  "gateway: gateway-api httproute models/chat-route rule 1, backendRefs chat-blue and chat-green on "
		  "https://127.0.0.1:1 (credentials: %1$s/kubeconfig (context prod))\n",
		  { "kind=gateway-api", "resource=httproute", "namespace=models", "name=chat-route", "rule=1",
		    "backend_refs={\"blue\":\"chat-blue\",\"green\":\"chat-green\"}", "api_server=https://127.0.0.1:1",
		    "api_server_error=null" } },
		{ "isvc",
		  "name: isvc\ngateway: {kind: kserve, namespace: models, name: flowers, kubeconfig: '%1$s/missing/kubeconfig'}\n"
		  "slots:\n  blue: {metrics_url: 'http://127.0.0.1:9/m'}\n  green: {metrics_url: 'http://127.0.0.1:9/m'}\n"
		  "live: blue\n",
		  "gateway: kserve inferenceservice models/flowers on an API server not found from this host (",
		  { "kind=kserve", "resource=inferenceservice", "namespace=models", "name=flowers", "api_server=null",
		    "kubeconfig=%1$s/missing/kubeconfig" } },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct kind_case *c = &cases[i];
		char file[256];
		snprintf(file, sizeof file, "%s/%s.yaml", dir, c->name);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(text, sizeof text, c->yaml, dir);
		snprintf(want_line, sizeof want_line, c->line, dir);
#pragma GCC diagnostic pop
		assert_int_equal(pg_fixture_write_file(file, text), 0);
		ctl_run(&r, db.conninfo, (const char *[]){"service", "apply", file, NULL});
		expect_status(&r, 0);
		ctl_run(&r, db.conninfo, (const char *[]){"service", "show", c->name, NULL});
		expect_status(&r, 0);
		print_message("%s", strstr(r.out, "gateway: "));
		if (!strstr(r.out, want_line))
			fail_msg("service show %s does not say\n%s\nit says:\n%s", c->name, want_line, r.out);
		/* the old HAProxy-style line is gone for the other kinds */
		if (i > 0)
			assert_null(strstr(r.out, "backend -"));
		ctl_run(&r, db.conninfo, (const char *[]){"--output", "json", "service", "show", c->name, NULL});
		expect_status(&r, 0);
		json_t *j = json_loads(r.out, 0, NULL);
		assert_non_null(j);
		json_t *gw = json_object_get(j, "gateway");
		assert_non_null(gw);
		/* the JSON's target is the text's line */
		const char *target = json_string_value(json_object_get(gw, "target"));
		assert_non_null(target);
		assert_memory_equal(target, want_line + strlen("gateway: "), strlen(want_line) - strlen("gateway: ") -
			(want_line[strlen(want_line) - 1] == '\n'));
		const char *fields[8] = { 0 };
		char bufs[8][512];
		for (int k = 0; k < 8 && c->json[k]; k++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(bufs[k], sizeof bufs[k], c->json[k], dir);
#pragma GCC diagnostic pop
			fields[k] = bufs[k];
		}
		check_json(gw, fields);
		json_decref(j);
	}
	/* kserve slots have no server; gateway-api's server is a backendRef */
	ctl_run(&r, db.conninfo, (const char *[]){"service", "show", "isvc", NULL});
	assert_non_null(strstr(r.out, "live: blue (metrics http://127.0.0.1:9/m)\n"));
	ctl_run(&r, db.conninfo, (const char *[]){"service", "show", "route", NULL});
	assert_non_null(strstr(r.out, "live: blue (backendRef chat-blue, metrics http://127.0.0.1:9/m)\n"));
	ctl_run(&r, db.conninfo, (const char *[]){"service", "show", "isvc", NULL});
	assert_non_null(strstr(r.out, "missing/kubeconfig"));

	pg_fixture_drop(&db);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_show_each_kind),
	};
	if (!getenv("CANARY_BINARY_DIR") || !getenv("DATABASE_URL") || !*getenv("DATABASE_URL")) {
		fprintf(stderr, "run this test through scripts/test (it needs CANARY_BINARY_DIR and DATABASE_URL)\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
