#!/usr/bin/env bash
# e2e: a hung metrics endpoint. Once the rollout is at 1%, the candidate's /metrics accepts connections and never
# answers (metrics.timeout 12s); canaryd runs with a 3s lease, four times shorter than one scrape. While a scrape hangs, canaryd keeps its
# lease (no "lease.lost"), each tick comes when the scrape times out (inconclusive, with the reason), and an abort
# is applied at once, not after the scrape: `rollout abort` returns in seconds and HAProxy carries weight 0.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
# green's /metrics through a relay that starts hanging (accepts, never answers) once $E2E_DIR/hang exists
relay_green_metrics 12s
HUNG=$RELAY
start_load "$FE" 500 120
HTTP=$(free_port)
start_canaryd --lease 3000 --listen "127.0.0.1:$HTTP"

out=$("$CTL" rollout start --service svc --candidate v2 --policy demo-fast) || fail "start failed"
id=$(awk '{print $2}' <<<"$out")
wait_step "$id" 0 20
touch "$E2E_DIR/hang"
log "green's /metrics hangs from now on (rollout $id at step 1)"
for _ in $(seq 1 300); do # a tick that judged a hung reading (after the 12s timeout)
	[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'tick'
	          AND reason LIKE '%$HUNG%'")" -ge 1 ] && break
	sleep 0.1
done
"$CTL" rollout status "$id" | tee "$E2E_DIR/status.log" >&2
grep -q "inconclusive" "$E2E_DIR/status.log" || fail "status does not say the verdicts are inconclusive"
grep -q "$HUNG" "$E2E_DIR/status.log" || fail "status does not name the hung endpoint"
sleep 3 # the next scrape is out now, hanging

t0=$(date +%s%N)
"$CTL" rollout abort "$id" --reason "e2e: metrics hang" >"$E2E_DIR/abort.log" 2>&1 || fail "abort failed: $(cat "$E2E_DIR/abort.log")"
ms=$((($(date +%s%N) - t0) / 1000000))
log "abort returned after ${ms}ms while a scrape hung"
[ "$ms" -lt 6000 ] || fail "abort took ${ms}ms: it waited for the hung scrape (12s)"
grep -q "has not confirmed" "$E2E_DIR/abort.log" && fail "abort says the gateway did not confirm weight 0"
[ "$(hap_weight "$ADMIN" svc/green)" -eq 0 ] || fail "green (candidate) still has weight after the abort"
[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = aborted ] || fail "rollout is not aborted"
grep -q '"event":"lease.lost"' "$E2E_DIR/canaryd.log" && fail "canaryd lost its own lease during a long scrape"
[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'hold' AND reason LIKE '%lease%'")" = 0 ] ||
	fail "a hold mentions a lost lease"
timeouts=$(curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk '$1 == "canaryd_scrape_errors_total{cause=\"timeout\"}" {print $2}')
[ "${timeouts:-0}" -ge 1 ] || fail "canaryd_scrape_errors_total{cause=\"timeout\"} is '${timeouts:-missing}' after a hung scrape"
log "PASS: a hung endpoint costs neither the lease nor a prompt abort"
