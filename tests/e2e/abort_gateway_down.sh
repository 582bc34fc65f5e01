#!/usr/bin/env bash
# e2e: the emergency brake works while the gateway is down. HAProxy dies while a rollout is at 5%; `rollout abort`
# is recorded at once (exit 0, within seconds) and warns that the gateway has not confirmed weight 0, saying why;
# the pipeline's `rollout start --wait` ends with 2 (aborted) although the gateway never confirms. HAProxy comes
# back still carrying 5% for the candidate: canaryd moves it to 0, and the audit shows the abort, the intent 0 and
# then the gateway's confirmation, in that order.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
start_load "$FE" 1000 150
start_canaryd

start_rollout_wait v2 demo-fast 150s
id=$(rollout_of v2)
wait_step "$id" 1 40
for _ in $(seq 1 100); do # the 5% step is on the gateway and confirmed
	[ "$(sql "SELECT applied_weight = weight FROM rollouts WHERE id = $id")" = t ] && break
	sleep 0.1
done
[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 5 ] || fail "the 5% step was not confirmed"
cand=$(hap_weight "$ADMIN" svc/green)
base=$(hap_weight "$ADMIN" svc/blue)
[ "$cand" -gt 0 ] || fail "green (candidate) has no weight at 5%"
kill "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true
log "haproxy stopped at 5% (green $cand, blue $base) of rollout $id"
sleep 2 # canaryd notices (a turn or two)

t0=$(date +%s%N)
set +e
"$CTL" rollout abort "$id" --reason "e2e: gateway down" >"$E2E_DIR/abort.out" 2>"$E2E_DIR/abort.err"
rc=$?
set -e
ms=$((($(date +%s%N) - t0) / 1000000))
cat "$E2E_DIR/abort.out" "$E2E_DIR/abort.err" >&2
[ "$rc" -eq 0 ] || fail "abort with the gateway down exited $rc, expected 0 (the abort is recorded)"
[ "$ms" -lt 9000 ] || fail "abort took ${ms}ms with the gateway down, expected a few seconds"
grep -q "warning" "$E2E_DIR/abort.err" || fail "abort did not warn that the gateway has not confirmed weight 0"
grep -q "not confirmed weight 0" "$E2E_DIR/abort.err" || fail "abort's warning does not say what is unconfirmed"
grep -q "gateway unavailable" "$E2E_DIR/abort.err" || fail "abort's warning does not say why (the gateway error)"
[ "$(sql "SELECT phase || ' ' || weight FROM rollouts WHERE id = $id")" = "aborted 0" ] ||
	fail "rollout is not aborted with intent 0: $(sql "SELECT phase, weight FROM rollouts WHERE id = $id")"
log "abort recorded in ${ms}ms while the gateway is down"

# The pipeline's wait: aborted is aborted (exit 2), even though the gateway never confirms while it waits.
set +e
wait "$ROLLOUT_PID"; rc=$?
set -e
cat "$E2E_DIR/wait-v2.log" >&2
[ "$rc" -eq 2 ] || fail "rollout start --wait exited $rc after the abort, expected 2 (aborted)"
grep -q "has not confirmed" "$E2E_DIR/wait-v2.log" || fail "wait does not say the gateway has not confirmed weight 0"
[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 5 ] || fail "weight 0 confirmed with no gateway?"

# The gateway comes back as it was when it died: the candidate still at 5%.
sed -i -e "s/server blue \(.*\) weight [0-9]*/server blue \1 weight $base/" \
	-e "s/server green \(.*\) weight [0-9]*/server green \1 weight $cand/" "$E2E_DIR/haproxy.cfg"
haproxy -db -f "$E2E_DIR/haproxy.cfg" >>"$E2E_DIR/haproxy.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$ADMIN"
# (canaryd retries every interval, so it may already have moved it to 0 by the time we look: either is right)
w=$(hap_weight "$ADMIN" svc/green)
[ "$w" -eq "$cand" ] || [ "$w" -eq 0 ] || fail "haproxy came back with the candidate at weight $w, not $cand (5%) or 0"
log "haproxy restarted with green at $cand (now $w)"
for _ in $(seq 1 100); do
	[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 0 ] && break
	sleep 0.1
done
[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 0 ] || fail "canaryd did not confirm weight 0"
[ "$(hap_weight "$ADMIN" svc/green)" -eq 0 ] || fail "green (candidate) still has weight after the gateway came back"
[ "$(hap_weight "$ADMIN" svc/blue)" -gt 0 ] || fail "blue (baseline) has no weight"

# The audit: the abort accepted, the intent 0, then the gateway's confirmation of 0 (in this order).
"$CTL" --output json audit "$id" >"$E2E_DIR/audit.json"
order=$(jq -r '.events | to_entries[] | .value as $e |
	if $e.kind == "command.accepted" and $e.data.command == "abort" then "\(.key) abort"
	elif $e.kind == "weight.intended" and ($e.data.to == 0) then "\(.key) intent0"
	elif ($e.kind == "weight.confirmed" or $e.kind == "weight.reconciled") and ($e.data.weight == 0) then "\(.key) confirmed0"
	else empty end' "$E2E_DIR/audit.json")
echo "$order" >&2
a=$(awk '$2 == "abort" {print $1; exit}' <<<"$order")
i=$(awk '$2 == "intent0" {print $1; exit}' <<<"$order")
c=$(awk -v i="${i:-0}" '$2 == "confirmed0" && $1 > i {print $1; exit}' <<<"$order") # (the start confirmed 0 too)
[ -n "$a" ] && [ -n "$i" ] && [ -n "$c" ] || fail "audit lacks the abort ($a), the intent 0 ($i) or the confirmation ($c)"
[ "$a" -le "$i" ] && [ "$i" -lt "$c" ] || fail "audit order is abort $a, intent $i, confirmation $c"
[ "$(jq '[.events[] | select(.kind == "hold" and (.reason | test("gateway unavailable")))] | length' \
	"$E2E_DIR/audit.json")" -ge 1 ] || fail "audit does not say the gateway was unavailable"
"$CTL" audit verify "$id" >/dev/null || fail "audit chain does not verify"
log "PASS: abort works with the gateway down; the gateway is reconciled to 0 when it returns"
