#!/usr/bin/env bash
# e2e: the Prometheus metrics source against a real Prometheus (Debian's), which scrapes the two simulators and labels
# them by slot; the service's selectors pick the slots, and the vllm preset's queries run in the real PromQL engine.
# 1. A healthy rollout is promoted while Prometheus scrapes every 3 s and canaryd ticks every second: the ticks that
#    see no new sample must not read as a reset, a regression or a pass on no evidence (no rollback, no reset said).
# 2. Prometheus is killed mid-rollout: the rollout holds (metrics unusable) and goes on when it is back (same data).
# 3. A latency regression injected into the candidate is rolled back.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

PROMETHEUS=$(command -v prometheus) || fail "prometheus is not installed (scripts/packages.txt lists it)"
fresh_db
FE=$(free_port); ADMIN=$(free_port); PROM=$(free_port)
start_modelsim blue 0 --error-rate 0.005 --latency-median 0.2 --seed 1
BLUE=$MODELSIM_PORT
start_modelsim green 0 --error-rate 0.005 --latency-median 0.2 --seed 2
GREEN=$MODELSIM_PORT
start_haproxy svc "$FE" "$ADMIN" "$BLUE" "$GREEN"

cat >"$E2E_DIR/prometheus.yml" <<YAML
global: { scrape_interval: 3s, scrape_timeout: 2s, evaluation_interval: 3s }
scrape_configs:
  - job_name: model
    static_configs:
      - { targets: ["127.0.0.1:$BLUE"], labels: { slot: blue } }
      - { targets: ["127.0.0.1:$GREEN"], labels: { slot: green } }
YAML
start_prometheus() {
	"$PROMETHEUS" --config.file="$E2E_DIR/prometheus.yml" --storage.tsdb.path="$E2E_DIR/prom-data" \
		--web.listen-address="127.0.0.1:$PROM" >>"$E2E_DIR/prometheus.log" 2>&1 &
	E2E_PIDS+=($!)
	PROM_PID=$!
	for _ in $(seq 1 200); do
		curl -fsS --max-time 1 "http://127.0.0.1:$PROM/-/ready" >/dev/null 2>&1 && return 0
		kill -0 "$PROM_PID" 2>/dev/null || break
		sleep 0.1
	done
	fail "prometheus did not start (see $E2E_DIR/prometheus.log)"
}
start_prometheus

cat >"$E2E_DIR/service.yaml" <<YAML
name: svc
gateway: { kind: haproxy, runtime_api: "127.0.0.1:$ADMIN", backend: svc, timeout: 2s }
slots:
  blue:  { server: blue,  selector: '{slot="blue"}' }
  green: { server: green, selector: '{slot="green"}' }
live: blue
metrics: { source: prometheus, prometheus_url: "http://127.0.0.1:$PROM", preset: vllm, timeout: 2s }
YAML
"$CTL" migrate >/dev/null
"$CTL" policy apply "$E2E_TOP/policies/demo-fast.yaml" >/dev/null
"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
start_load "$FE" 400 150
# both slots' series are in Prometheus before anything starts
for _ in $(seq 1 100); do
	n=$(curl -fsS "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode 'query=count(http_requests_total)' |
		jq -r '.data.result[0].value[1] // 0')
	[ "${n:-0}" -ge 2 ] && break
	sleep 0.2
done
[ "${n:-0}" -ge 2 ] || fail "prometheus has no http_requests_total of both slots"
start_canaryd

# 1 and 2: a healthy rollout through slow scrapes and a Prometheus restart
start_rollout_wait v2 demo-fast 150s
id=$(rollout_of v2)
wait_step "$id" 1 40
log "killing prometheus during step 2 of rollout $id"
kill -9 "$PROM_PID"
sleep 4
[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = progressing ] || fail "rollout $id did not hold while prometheus was gone"
reason=$(sql "SELECT reason FROM rollouts WHERE id = $id")
[[ "$reason" == *prometheus* ]] || fail "while prometheus was gone the reason did not say so: $reason"
start_prometheus
set +e
wait "$ROLLOUT_PID"
rc=$?
set -e
cat "$E2E_DIR/wait-v2.log" >&2
[ "$rc" -eq 0 ] || fail "healthy rollout through the prometheus source exited $rc, expected 0 (promoted)"
"$CTL" rollout audit "$id" >"$E2E_DIR/audit-$id.log"
! grep -q "went down (server restart?)" "$E2E_DIR/audit-$id.log" || fail "a tick without a new sample read as a reset"
grep -q "prometheus" "$E2E_DIR/audit-$id.log" || fail "the audit does not record the time prometheus was gone"
[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] || fail "green (promoted) has no weight"

# 3: a latency regression in the new candidate (blue, now idle) is rolled back
expect_regression_rolled_back v3 demo-fast 150s blue "$BLUE" green '{"latency_median":0.6}' "a latency regression"
grep -q "p99-latency" "$E2E_DIR/audit-$REGRESS_ID.log" || fail "the rollback does not name the p99 latency slo"
log "OK: promoted through 3 s scrapes and a prometheus restart; the latency regression rolled back"
