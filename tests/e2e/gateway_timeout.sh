#!/usr/bin/env bash
# e2e: no silent waits on a lost gateway. HAProxy goes away during a rollout's first step: canaryd holds, logs the
# gateway error once (not twice a second), and after the policy's inconclusive_timeout (6s here) pauses the rollout
# for a person with a reason that says why. HAProxy comes back, an operator resumes, and the rollout is promoted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

sed -e 's/^name: demo-fast/name: gw-timeout/' -e 's/inconclusive_timeout: 30s/inconclusive_timeout: 6s/' \
	"$E2E_TOP/policies/demo-fast.yaml" >"$E2E_DIR/gw-timeout.yaml"
grep -q "inconclusive_timeout: 6s" "$E2E_DIR/gw-timeout.yaml" || fail "could not derive the policy from demo-fast"
setup_world "$E2E_DIR/gw-timeout.yaml"
start_load "$FE" 1000 150
start_canaryd

out=$("$CTL" rollout start --service svc --candidate v2 --policy gw-timeout) || fail "start failed"
id=$(awk '{print $2}' <<<"$out")
wait_step "$id" 0 20
kill "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true
t0=$(date +%s)
log "haproxy stopped during step 1 of rollout $id"
for _ in $(seq 1 300); do
	[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = paused ] && break
	sleep 0.1
done
waited=$(($(date +%s) - t0))
[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = paused ] || fail "rollout $id did not pause within 30s"
[ "$waited" -ge 5 ] || fail "rollout paused after ${waited}s, before the 6s limit"
log "paused after ~${waited}s without a gateway"
[ "$(sql "SELECT step FROM rollouts WHERE id = $id")" = 0 ] || fail "rollout advanced without a gateway"
reason=$(sql "SELECT reason FROM audit_events WHERE rollout_id = $id AND kind = 'state.changed'
              AND data->>'to' = 'paused' ORDER BY id DESC LIMIT 1")
log "reason: $reason"
grep -q "gateway has been unavailable" <<<"$reason" || fail "the pause does not say the gateway was unavailable"
grep -q "inconclusive_timeout" <<<"$reason" || fail "the pause does not name the limit it applied"
grep -q "haproxy" <<<"$reason" || fail "the pause does not carry the gateway's error"
"$CTL" rollout status "$id" | grep -Ec "gateway (has been )?unavailable" >/dev/null || fail "status does not say the gateway is unavailable"
sleep 3 # more failed turns: still one warning in the log
warnings=$(grep -c "\"event\":\"gateway.error\",\"rollout\":$id," "$E2E_DIR/canaryd.log" || true)
[ "$warnings" -eq 1 ] || fail "canaryd logged $warnings gateway warnings for rollout $id in ${waited}s+3s, expected 1"

haproxy -db -f "$E2E_DIR/haproxy.cfg" >>"$E2E_DIR/haproxy.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$ADMIN"
log "haproxy restarted; resuming"
for _ in $(seq 1 50); do # the weight is reconciled first (the paused rollout is claimed every interval)
	[ "$(sql "SELECT applied_weight = weight FROM rollouts WHERE id = $id")" = t ] && break
	sleep 0.1
done
"$CTL" rollout resume "$id" --reason "gateway is back" >/dev/null || fail "resume refused"
set +e
"$CTL" rollout wait "$id" --timeout 90s >"$E2E_DIR/wait.log" 2>&1
rc=$?
set -e
cat "$E2E_DIR/wait.log" >&2
[ "$rc" -eq 0 ] || fail "rollout after the gateway came back exited $rc, expected 0 (promoted)"
grep -q '"event":"gateway.recovered"' "$E2E_DIR/canaryd.log" || fail "canaryd did not log the gateway's return"
log "PASS: a lost gateway pauses the rollout after the policy's limit, with the reason; one warning in the log"
