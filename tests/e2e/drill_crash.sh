#!/usr/bin/env bash
# e2e: canaryd is SIGKILLed while a drill holds all traffic on green; nothing restores it until a daemon runs again.
# The next canaryd takes the drill over when the dead one's lease (2 s) expires, restores blue and fails the drill
# (its evidence died with the daemon): the `drill failover` still waiting exits 70, HAProxy is back on blue, and the
# audit chain is intact. The time from the new daemon's start to blue confirmed is printed.
source "$(dirname "${BASH_SOURCE[0]}")/drill_lib.bash"

setup_world
start_load "$FE" 200 40
start_canaryd --lease 2000 --id first
start_drill crash 30s
id=$(drill_id)
wait_drill_phase "$id" holding 20
sleep 1
kill -9 "$CANARYD_PID"
wait "$CANARYD_PID" 2>/dev/null || true
sleep 3 # longer than the lease: nothing moves without a daemon
[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] || fail "green lost its weight with no daemon running"
[ "$(sql "SELECT phase FROM drills WHERE id = $id")" = holding ] || fail "the drill moved with no daemon running"
t0=$(date +%s%N)
start_canaryd --lease 2000 --id second
wait_drill_phase "$id" failed 20
t1=$(date +%s%N)
finish_drill crash
[ "$DRILL_RC" -eq 70 ] || fail "drill failover exited $DRILL_RC, expected 70 (failed, primary restored)"
expect_primary "after the next daemon took the drill over"
sql "SELECT reason FROM audit_events WHERE kind = 'drill.phase' AND data->>'to' = 'restoring' AND data->>'drill' = '$id'" |
	grep -q "canaryd 'second' took drill $id over in phase holding" || fail "the audit does not say the drill was taken over"
[ -n "$(sql "SELECT figures->>'shift_s' FROM drills WHERE id = $id")" ] || fail "the first daemon's time to shift was lost"
"$CTL" audit verify >/dev/null || fail "audit verify failed"
log "drill $id restored by the next daemon $(( (t1 - t0) / 1000000 )) ms after it started; $(drill_timings "$id")"
log "PASS: a drill interrupted by a canaryd crash was restored to the primary by the next daemon"
