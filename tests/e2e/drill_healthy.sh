#!/usr/bin/env bash
# e2e: a failover drill to a healthy warm secondary passes. Under 400 requests/s through HAProxy, `canaryctl drill
# failover` (canaryd drives it) measures blue for 6 s (2,400 requests: enough for a bound on its p99), shifts all traffic to green, holds 8 s while the policy's
# SLOs judge green (with a workload profile's synthetic load beside the real traffic), and shifts back: exit 0, HAProxy back on blue, green served the hold, the timings recorded and
# printed, the audit chain intact, an HTML report. Meanwhile a rollout of the service is refused (enforced in SQL).
source "$(dirname "${BASH_SOURCE[0]}")/drill_lib.bash"

setup_world
start_load "$FE" 400 40
start_canaryd --lease 3000
cat >"$E2E_DIR/profile.yaml" <<YAML
rate: 50
duration: 30s
prompt_tokens: { median: 20, p99: 200 }
output_tokens: { median: 10, p99: 40 }
endpoint: completions
model: m
timeout: 5s
YAML
# synthetic load beside the real traffic, through the gateway (it follows the shift)
start_drill healthy 8s --profile "$E2E_DIR/profile.yaml" --url "http://127.0.0.1:$FE"
id=$(drill_id)
wait_drill_phase "$id" holding 20
[ "$(hap_weight "$ADMIN" svc/blue)" -eq 0 ] || fail "holding, but blue still has weight"
[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] || fail "holding, but green has no weight"
set +e
"$CTL" rollout start --service svc --candidate v2 --policy demo-fast --no-gateway-check >"$E2E_DIR/refused.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 65 ] || fail "a rollout during the drill: exit $rc, expected 65 ($(cat "$E2E_DIR/refused.log"))"
grep -q "failover drill running (drill $id)" "$E2E_DIR/refused.log" || fail "the refusal does not name the drill: $(cat "$E2E_DIR/refused.log")"
finish_drill healthy
[ "$DRILL_RC" -eq 0 ] || fail "drill failover exited $DRILL_RC, expected 0 (passed)"
expect_primary "after a passed drill"
[ "$(sql "SELECT phase FROM drills WHERE id = $id")" = passed ] || fail "phase is not passed"
hold_req=$(sql "SELECT (figures->'hold'->>'requests')::numeric::int FROM drills WHERE id = $id")
[ "$hold_req" -ge 1600 ] || fail "green served only $hold_req requests during the 8 s hold"
grep -q "shift to green: " "$E2E_DIR/drill-healthy.log" || fail "the timings were not printed"
grep -Eq "synthetic load: [1-9][0-9]* requests at" "$E2E_DIR/drill-healthy.log" || fail "the synthetic load did not run"
"$CTL" audit verify >/dev/null || fail "audit verify failed after the drill"
for ev in drill.started drill.weight.intended drill.weight.confirmed drill.ended; do
	[ "$(sql "SELECT count(*) FROM audit_events WHERE kind = '$ev' AND data->>'drill' = '$id'")" -ge 1 ] ||
		fail "no $ev event in the audit"
done
"$CTL" drill report "$id" --html "$E2E_DIR/drill.html" >/dev/null
grep -q "time to shift back" "$E2E_DIR/drill.html" || fail "the report lacks the timings"
grep -c "<polyline" "$E2E_DIR/drill.html" | grep -cv '^0$' >/dev/null || fail "the report has no chart"
log "drill $id passed: $(drill_timings "$id")"
log "PASS: a drill to a healthy secondary passed and traffic is back on the primary"
