#!/usr/bin/env bash
# e2e: unit economics as SLOs (issue 14, item 1). Both simulators count tokens and label their answers with three
# features; the service gives each slot a cost (4 replicas at 12.40 an hour). A policy that judges cost per 1k
# tokens is refused (65, with the SLO's FILE:LINE:COL) while the service has no cost. Then a healthy candidate is
# promoted, and a candidate as fast on latency (p99 within its 1.5x) but needing 30% more time per generated token
# (generation_factor 1.3) is rolled back by cost_per_1k_tokens; status, the audit and the report show the economics
# and the per-feature breakdown.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world "$E2E_TOP/policies/demo-econ.yaml" --features 3

# the service as setup_world applied it has no cost: the policy and the service do not meet
set +e
"$CTL" rollout start --service svc --candidate v0 --policy demo-econ >"$E2E_DIR/refused.log" 2>&1
rc=$?
set -e
cat "$E2E_DIR/refused.log" >&2
[ "$rc" -eq 65 ] || fail "a cost SLO against a service without costs: exit $rc, expected 65"
grep -q "policy 'demo-econ' version 1:[0-9]*:[0-9]*: slo 'cost-per-1k': cost_per_1k_tokens needs each slot's cost" \
	"$E2E_DIR/refused.log" || fail "the refusal does not say where and why"
[ "$(sql "SELECT count(*) FROM rollouts")" -eq 0 ] || fail "a refused rollout was created"

sed -i -e 's|metrics_url: "\(http://127.0.0.1:[0-9]*/metrics\)" }|metrics_url: "\1", cost_per_hour: 12.40, replicas: 4 }|' \
	"$E2E_DIR/service.yaml"
grep -q "cost_per_hour: 12.40, replicas: 4" "$E2E_DIR/service.yaml" || fail "could not add costs to the service"
"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
"$CTL" policy lint "$E2E_TOP/policies/demo-econ.yaml" --service "$E2E_DIR/service.yaml" >/dev/null

start_load "$FE" 1500 60
start_canaryd

# a healthy candidate in green: promoted, its cost and throughput within the limits
start_rollout_wait v1 demo-econ 40s
id=$(rollout_of v1)
set +e
wait "$ROLLOUT_PID"
rc=$?
set -e
cat "$E2E_DIR/wait-v1.log" >&2
[ "$rc" -eq 0 ] || fail "healthy candidate: exit $rc, expected 0 (promoted)"
pass=$(sql "SELECT count(*) FROM decisions d JOIN slo_verdicts v ON v.decision_id = d.id
            WHERE d.rollout_id = $id AND v.slo = 'cost-per-1k' AND v.verdict = 'pass'")
[ "$pass" -ge 3 ] || fail "healthy candidate: only $pass passing cost-per-1k verdicts"
log "healthy candidate promoted: $(sql "SELECT reason FROM rollouts WHERE id = $id")"

# the next release in blue (now idle) needs 30% more time per generated token from the start
expect_regression_rolled_back v2 demo-econ 40s blue "$BLUE" green '{"generation_factor":1.3}' \
	"30% more time per generated token"
id=$REGRESS_ID
reason=$(sql "SELECT reason FROM rollouts WHERE id = $id")
log "costly candidate: $reason"
case $reason in *"slo 'cost-per-1k'"*"costlier than baseline"*) ;; *) fail "not rolled back by cost-per-1k: $reason" ;; esac
lat=$(sql "SELECT count(*) FROM decisions d JOIN slo_verdicts v ON v.decision_id = d.id
           WHERE d.rollout_id = $id AND v.slo = 'p99-latency' AND v.verdict = 'fail'")
[ "$lat" -eq 0 ] || fail "the costly candidate also failed its latency SLO ($lat ticks): not 'as fast on latency'"
ratio=$(sql "SELECT round((v.candidate / v.baseline)::numeric, 2) FROM decisions d JOIN slo_verdicts v ON v.decision_id = d.id
             WHERE d.rollout_id = $id AND v.slo = 'cost-per-1k' AND v.verdict = 'fail' ORDER BY d.id DESC LIMIT 1")
log "cost per 1k tokens, candidate / baseline: $ratio"

# status, the audit and the report say it, with the per-feature breakdown (three features from the simulators)
"$CTL" rollout status "$id" >"$E2E_DIR/status-$id.log"
grep -q "cost-per-1k.*cost/1k tokens" "$E2E_DIR/status-$id.log" || fail "status lacks the economics"
grep -Eq "per feature \(candidate vs baseline\): search: cost/1k [0-9.e-]+ vs [0-9.e-]+ \([0-9.]+x\), latency .*; chat: .*; summarize: " \
	"$E2E_DIR/status-$id.log" || fail "status lacks the per-feature breakdown: $(cat "$E2E_DIR/status-$id.log")"
grep -q "cost/1k tokens" "$E2E_DIR/audit-$id.log" || fail "audit lacks the economics"
grep -q "per feature (candidate vs baseline): search: cost/1k" "$E2E_DIR/audit-$id.log" || fail "audit lacks the breakdown"
"$CTL" report "$id" --html "$E2E_DIR/report-$id.html"
grep -q 'id="features".*search: cost/1k' "$E2E_DIR/report-$id.html" || fail "the report lacks the breakdown"
grep -q 'data-slo="cost-per-1k"' "$E2E_DIR/report-$id.html" || fail "the report lacks the cost chart"
log "per feature: $(grep -o 'per feature.*' "$E2E_DIR/status-$id.log")"
log "PASS: refused without costs, healthy promoted, 30% costlier per 1k tokens rolled back"
