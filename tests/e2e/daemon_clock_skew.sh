#!/usr/bin/env bash
# e2e: one clock. Three daemons whose wall clocks are wrong by minutes (CANARY_TEST_CLOCK_OFFSET_MS: +10 min,
# -10 min, +10 min) hand one rollout to each other by SIGKILL and lease expiry. The core runs on the database's
# clock, so the first step's 12s hold, begun under the fast daemon and finished under the slow one, is neither
# stretched (by 20 minutes) nor skipped; and the 15s approval timeout, begun under the slow daemon and finished under
# the fast one, neither fires at once nor waits 20 minutes. Times are read from the audit (the database's clock).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

cat >"$E2E_DIR/skew.yaml" <<'YAML'
name: skew
description: "a 12s hold, then a step that needs an approval which times out after 15s"
steps:
  - weight: 1%
    hold: 12s
  - weight: 100%
    hold: 1h
    approval: required
analysis:
  interval: 1s
  min_requests: 1
  inconclusive_timeout: 1h
  on_inconclusive: pause
slos:
  - name: error-rate
    metric: error_rate
    max: 50%
approval:
  timeout: 15s
  on_timeout: rollback
YAML
setup_world "$E2E_DIR/skew.yaml" --error-rate 0
start_load "$FE" 300 120
MIN=60000
CANARY_TEST_CLOCK_OFFSET_MS=$((10 * MIN)) start_canaryd --id fast-a --lease 3000
PID_A=$CANARYD_PID

# a time from the audit, in seconds since the epoch (the database's clock)
at() { sql "SELECT extract(epoch FROM at) FROM audit_events WHERE rollout_id = $id AND $1 ORDER BY id LIMIT 1"; }
wait_phase() { # PHASE SECONDS
	for _ in $(seq 1 $(($2 * 10))); do
		[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = "$1" ] && return 0
		sleep 0.1
	done
	fail "rollout $id is not $1 after $2s: $(sql "SELECT phase, reason FROM rollouts WHERE id = $id")"
}
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'; }

out=$("$CTL" rollout start --service svc --candidate v2 --policy skew) || fail "start failed"
id=$(awk '{print $2}' <<<"$out")
wait_step "$id" 0 20
[ "$(sql "SELECT lease_owner FROM rollouts WHERE id = $id")" = fast-a ] || fail "fast-a does not hold rollout $id"
CANARY_TEST_CLOCK_OFFSET_MS=$((-10 * MIN)) start_canaryd --id slow-b --lease 3000
PID_B=$CANARYD_PID
sleep 4
kill -KILL "$PID_A"
log "killed fast-a (clock +10 min) 4s into the 12s hold; slow-b (clock -10 min) takes over"

wait_phase awaiting_approval 40
t_step=$(at "kind = 'weight.intended' AND (data->>'to')::float = 1")
t_wait=$(at "kind = 'state.changed' AND data->>'to' = 'awaiting_approval'")
held=$(awk -v a="$t_step" -v b="$t_wait" 'BEGIN { printf "%.2f", b - a }')
log "the 12s hold lasted ${held}s across the failover"
# from 11.0: the hold counts from the core's clock when the tick was judged; its weight.intended event is written
# when canaryd's recorder commits the tick's batch, which can be later by a batch's time in the database under load
# (11.37 s measured once in CI), while the end's event may be written at once; a leaked daemon clock would be 10
# minutes off
between "$held" 11.0 19 || fail "the 12s hold lasted ${held}s: the daemons' clocks leaked into the core"
[ "$(sql "SELECT count(DISTINCT data->>'daemon') FROM audit_events WHERE rollout_id = $id AND kind = 'tick'")" = 2 ] ||
	fail "the hold was not judged by both daemons"
[ "$(sql "SELECT lease_owner FROM rollouts WHERE id = $id")" = slow-b ] || fail "slow-b does not hold rollout $id"

CANARY_TEST_CLOCK_OFFSET_MS=$((10 * MIN)) start_canaryd --id fast-c --lease 3000
sleep 5
kill -KILL "$PID_B"
log "killed slow-b (clock -10 min) 5s into the 15s approval wait; fast-c (clock +10 min) takes over"
wait_phase rolled_back 40
t_end=$(at "kind = 'state.changed' AND data->>'to' = 'rolled_back'")
waited=$(awk -v a="$t_wait" -v b="$t_end" 'BEGIN { printf "%.2f", b - a }')
log "the 15s approval timeout fired after ${waited}s"
# from 14.0, as the hold above: the wait's start event is written when its tick's batch commits, which can be later
# than the core's clock at that tick by a batch's time in the database (14.97 s measured once in CI, on a loaded
# machine); a leaked daemon clock would be 10 minutes off
between "$waited" 14.0 22 || fail "the 15s approval timeout fired after ${waited}s: the daemons' clocks leaked into the core"
[ "$(sql "SELECT data->>'daemon' FROM audit_events WHERE rollout_id = $id AND kind = 'tick' ORDER BY id DESC LIMIT 1")" = fast-c ] ||
	fail "the timeout was not judged by fast-c"
grep -q '"event":"lease.lost"' "$E2E_DIR/canaryd.log" && fail "a daemon lost a lease it held"
log "PASS: a hold and an approval timeout run on the database's clock across daemons 20 minutes apart"
