#!/usr/bin/env bash
# e2e: faults hold the weight and say why. (1) HAProxy goes away mid-step: no advance, `status` says the gateway is
# unavailable; when HAProxy comes back (with its config's weights) canaryd reconciles it to the recorded intent and
# the rollout goes on to promotion. (2) The candidate's metrics endpoint answers garbage: verdicts are inconclusive,
# the rollout holds at 1% past its hold time and `status` says why; an operator aborts it (wait exits 2, weight 0).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
start_load "$FE" 1000 150
start_canaryd

# (1) the gateway goes away
start_rollout_wait v2 demo-fast 120s
id=$(rollout_of v2)
wait_step "$id" 0 20
# the step is recorded before HAProxy is moved (the intent first): wait until green carries it, so what comes back
# below is a gateway that drifted from an applied weight (a restart with its config's weights), not a first move
for _ in $(seq 1 100); do
	[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] && break
	sleep 0.1
done
[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] || fail "HAProxy never carried step 1's weight"
kill "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true
log "haproxy stopped during step 1 of rollout $id"
sleep 12   # longer than the 8s hold: a healthy rollout would have advanced
[ "$(sql "SELECT step FROM rollouts WHERE id = $id")" = 0 ] || fail "rollout advanced while the gateway was away"
"$CTL" rollout status "$id" | tee "$E2E_DIR/status-gw.log" >&2
grep -q "gateway unavailable" "$E2E_DIR/status-gw.log" || fail "status does not say the gateway is unavailable"
haproxy -db -f "$E2E_DIR/haproxy.cfg" >>"$E2E_DIR/haproxy.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$ADMIN"
log "haproxy restarted"
set +e
wait "$ROLLOUT_PID"; rc=$?
set -e
cat "$E2E_DIR/wait-v2.log" >&2
[ "$rc" -eq 0 ] || fail "rollout after the gateway came back exited $rc, expected 0 (promoted)"
"$CTL" rollout audit "$id" >"$E2E_DIR/audit-$id.log"
grep -q "weight.reconciled" "$E2E_DIR/audit-$id.log" || fail "audit lacks the reconciliation"

# (2) garbage metrics from the candidate (now blue, the idle slot), injected after the 1% step began.
start_rollout_wait v3 demo-fast 120s
id=$(rollout_of v3)
wait_step "$id" 0 20
modelsim_admin "$BLUE" '{"metrics_garbage":1}'
log "blue's /metrics answers garbage during step 1 of rollout $id"
sleep 12
[ "$(sql "SELECT step FROM rollouts WHERE id = $id")" = 0 ] || fail "rollout advanced on garbage metrics"
"$CTL" rollout status "$id" | tee "$E2E_DIR/status-metrics.log" >&2
grep -q "inconclusive" "$E2E_DIR/status-metrics.log" || fail "status does not say the verdicts are inconclusive"
grep -qi "metrics" "$E2E_DIR/status-metrics.log" || fail "status does not name the metrics problem"
"$CTL" rollout abort "$id" --reason "e2e: metrics broken" || fail "abort was refused"
set +e
wait "$ROLLOUT_PID"; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "wait after abort exited $rc, expected 2"
[ "$(hap_weight "$ADMIN" svc/blue)" -eq 0 ] || fail "candidate (blue) still has weight after abort"
[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'command.accepted'
        AND reason = 'e2e: metrics broken' AND actor = current_user")" = 1 ] || fail "audit lacks the abort with its reason"
# canaryd says where the abort's time went: parts that are times, none longer than the whole (queued -> moved,
# the database's clock; 20 ms for the two clocks' drift)
t=$(grep '"command.timing"' "$E2E_DIR/canaryd.log" | jq -c "select(.rollout == $id and .command == \"abort\")" | tail -1)
[ -n "$t" ] || fail "canaryd logged no command.timing for the abort"
echo "$t" | jq -e '[.read_ms, .to_record_ms, .record_ms, .gateway_ms] | all(. >= 0)' >/dev/null ||
	fail "command.timing has a negative part: $t"
echo "$t" | jq -e '.queued_ms + 20 >= .read_ms + .to_record_ms + .record_ms + .gateway_ms' >/dev/null ||
	fail "command.timing's parts outlast the whole: $t"
log "abort: $t"
log "PASS: gateway loss and garbage metrics hold the rollout; reconcile and abort work"
