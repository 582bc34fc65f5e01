/* Time from intent to confirmed weight, per gateway kind: 100 moves (1% -> 5% -> 100% -> 0% ...) through
 * cn_gateway_set_weights, which returns once the gateway has read the new shares back (HAProxy: set + show servers
 * state; nginx: render, nginx -t, SIGHUP, a new worker generation with the old ones no longer accepting, read back;
 * command: the shipped haproxy-socat script's set, then its get; gateway-api and kserve: GET, merge patch, GETs
 * until the simulated controller's status confirms). Real HAProxy and nginx on loopback (the test fixtures); the
 * Kubernetes kinds against tests/support/bin/k8sapi.py (its controller writes status after STATUS_DELAY_MS, default
 * 0). Prints p50/p99/max per kind. Usage: bench_gateway_moves [MOVES [STATUS_DELAY_MS]] (CANARY_SOURCE_DIR finds
 * the scripts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "canary/gateway.h"
#include "haproxy_fixture.h"
#include "nginx_fixture.h"
#include "sim_proc.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void tmpl(struct cn_argv_tmpl *t, const char *const *args)
{
	size_t used = 0;
	memset(t, 0, sizeof *t);
	for (; *args; args++) {
		size_t len = strlen(*args) + 1;
		memcpy(t->buf + used, *args, len);
		used += len;
		t->argc++;
	}
}

/* Moves the candidate (slot 1) n times through the ramp; prints the figures. Returns 0 or -1. */
static int run(const char *what, const struct cn_service *svc, int n)
{
	static const double ramp[] = { 1, 5, 100, 0 };
	struct cn_err err = { 0 };
	struct cn_gateway *gw = cn_gateway_open(svc, &err);
	double *t = calloc((size_t)n, sizeof *t);
	if (!gw || !t) {
		fprintf(stderr, "%s: %s\n", what, err.msg);
		free(t);
		return -1;
	}
	cn_gateway_set_candidate(gw, 1);
	double warm[2] = { 100, 0 };
	if (cn_gateway_set_weights(gw, warm, &err) < 0) {
		fprintf(stderr, "%s: %s\n", what, err.msg);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		double pct[2] = { 100 - ramp[i % 4], ramp[i % 4] };
		double t0 = now_ms();
		if (cn_gateway_set_weights(gw, pct, &err) < 0) {
			fprintf(stderr, "%s: move %d: %s\n", what, i, err.msg);
			cn_gateway_close(gw);
			free(t);
			return -1;
		}
		t[i] = now_ms() - t0;
	}
	qsort(t, (size_t)n, sizeof *t, cmp);
	printf("%-34s moves %4d  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n", what, n, t[n / 2],
	       t[(int)(0.99 * (n - 1) + 0.5)], t[n - 1]);
	cn_gateway_close(gw);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 100;
	int rc = 0;
	struct hap hap;
	struct ngx ngx;
	if (n < 1 || n > 100000) {
		fprintf(stderr, "usage: bench_gateway_moves [MOVES 1..100000]\n");
		return 64;
	}
	if (hap_start(&hap, "chat", "blue", "127.0.0.1:9", "green", "127.0.0.1:10") < 0) {
		fprintf(stderr, "haproxy: %s\n", hap.err);
		return 69;
	}
	struct ngx_opts o = { .upstream = "chat", .addr = { "127.0.0.1:9", "127.0.0.1:10" }, .weight = { 1, 0 } };
	if (ngx_start(&ngx, &o) < 0) {
		fprintf(stderr, "nginx: %s\n", ngx.err);
		hap_stop(&hap);
		return 69;
	}

	struct cn_service svc;
	memset(&svc, 0, sizeof svc);
	snprintf(svc.name, sizeof svc.name, "chat");
	snprintf(svc.slots[0].name, sizeof svc.slots[0].name, "blue");
	snprintf(svc.slots[1].name, sizeof svc.slots[1].name, "green");
	svc.gateway.timeout_ms = 10000;

	svc.gateway.kind = CN_GATEWAY_HAPROXY;
	snprintf(svc.gateway.runtime_api, sizeof svc.gateway.runtime_api, "%s", hap.runtime_api);
	snprintf(svc.gateway.backend, sizeof svc.gateway.backend, "chat");
	snprintf(svc.slots[0].server, sizeof svc.slots[0].server, "blue");
	snprintf(svc.slots[1].server, sizeof svc.slots[1].server, "green");
	rc |= run("haproxy (runtime api, unix socket)", &svc, n);

	char addr[64], script[4096];
	const char *src = getenv("CANARY_SOURCE_DIR");
	snprintf(script, sizeof script, "%s/policies/gateways/haproxy-socat", src ? src : ".");
	snprintf(addr, sizeof addr, "TCP:%s", hap.runtime_api_tcp);
	svc.gateway.kind = CN_GATEWAY_COMMAND;
	tmpl(&svc.gateway.set, (const char *[]){ script, "set", addr, "chat", "{candidate_server}",
						  "{candidate_percent}", "{baseline_server}", "{baseline_percent}", NULL });
	tmpl(&svc.gateway.get, (const char *[]){ script, "get", addr, "chat", "blue=blue", "green=green", NULL });
	rc |= run("command (haproxy-socat, set + get)", &svc, n);

	memset(&svc.gateway, 0, sizeof svc.gateway);
	svc.gateway.kind = CN_GATEWAY_NGINX;
	svc.gateway.timeout_ms = 10000;
	snprintf(svc.gateway.include, sizeof svc.gateway.include, "%s", ngx.include);
	snprintf(svc.gateway.config, sizeof svc.gateway.config, "%s", ngx.conf);
	snprintf(svc.gateway.pid_file, sizeof svc.gateway.pid_file, "%s", ngx.pid_file);
	snprintf(svc.gateway.nginx, sizeof svc.gateway.nginx, "%s", ngx.bin);
	snprintf(svc.gateway.prefix, sizeof svc.gateway.prefix, "%s", ngx.dir);
	snprintf(svc.gateway.error_log, sizeof svc.gateway.error_log, "%s", ngx.error_log);
	snprintf(svc.slots[0].server, sizeof svc.slots[0].server, "127.0.0.1:9");
	snprintf(svc.slots[1].server, sizeof svc.slots[1].server, "127.0.0.1:10");
	rc |= run("nginx (render, -t, reload, confirm)", &svc, n);

	ngx_stop(&ngx);
	hap_stop(&hap);

	/* the Kubernetes kinds against the test API server, through a kubeconfig with a token */
	char k8sapi[4096], fixtures[4096], kc[64] = "/tmp/canary-bench-kc-XXXXXX", delay[16];
	struct sim_proc api = { 0 };
	struct cn_err err = { 0 };
	snprintf(k8sapi, sizeof k8sapi, "%s/tests/support/bin/k8sapi.py", src ? src : ".");
	snprintf(fixtures, sizeof fixtures, "%s/tests/support/fixtures/k8s", src ? src : ".");
	snprintf(delay, sizeof delay, "%ld", argc > 2 ? strtol(argv[2], NULL, 10) : 0L);
	char *api_argv[] = { k8sapi, "--token", "bench", "--status-delay-ms", delay, "--fixtures", fixtures, NULL };
	int fd = mkstemp(kc);
	if (fd < 0 || sim_proc_start(api_argv, 30000, &api, &err) < 0) {
		fprintf(stderr, "k8sapi: %s\n", err.msg);
		return 69;
	}
	FILE *f = fdopen(fd, "w");
	fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n- name: b\n  cluster:\n    server: "
		   "http://127.0.0.1:%d\ncontexts:\n- name: b\n  context: {cluster: b, user: b}\nusers:\n- name: b\n"
		   "  user: {token: bench}\n", api.port);
	fclose(f);
	memset(&svc.gateway, 0, sizeof svc.gateway);
	svc.gateway.kind = CN_GATEWAY_GATEWAY_API;
	svc.gateway.timeout_ms = 10000;
	svc.gateway.rule = 1;
	snprintf(svc.gateway.k8s_namespace, sizeof svc.gateway.k8s_namespace, "models");
	snprintf(svc.gateway.k8s_name, sizeof svc.gateway.k8s_name, "foo-route");
	snprintf(svc.gateway.kubeconfig, sizeof svc.gateway.kubeconfig, "%s", kc);
	snprintf(svc.slots[0].server, sizeof svc.slots[0].server, "foo-v1");
	snprintf(svc.slots[1].server, sizeof svc.slots[1].server, "foo-v2");
	printf("(kubernetes kinds: the test API server's controller writes status %s ms after a change)\n", delay);
	rc |= run("gateway-api (patch, status confirms)", &svc, n);
	svc.gateway.kind = CN_GATEWAY_KSERVE;
	snprintf(svc.gateway.k8s_name, sizeof svc.gateway.k8s_name, "my-model");
	rc |= run("kserve (patch, traffic confirms)", &svc, n);
	sim_proc_stop(&api);
	unlink(kc);
	return rc ? 70 : 0;
}
