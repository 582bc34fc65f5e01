#!/usr/bin/env bash
# e2e: a failover drill to a secondary that errors is cut short with the primary restored. green answers 20% errors
# (demo-fast's error-rate max is 2%); under 400 requests/s through HAProxy the drill shifts to green, the first
# failing verdict ends it at once: `drill failover` exits 1 within 10 s of its 30 s hold, HAProxy is back on blue, and
# the reason names the SLO with its numbers.
source "$(dirname "${BASH_SOURCE[0]}")/drill_lib.bash"

setup_world
modelsim_admin "$GREEN" '{"error_rate":0.2}'
start_load "$FE" 400 40
start_canaryd --lease 3000
start_drill cut 30s
id=$(drill_id)
finish_drill cut
[ "$DRILL_RC" -eq 1 ] || fail "drill failover exited $DRILL_RC, expected 1 (cut short)"
expect_primary "after a cut-short drill"
[ "$(sql "SELECT phase FROM drills WHERE id = $id")" = cut_short ] || fail "phase is not cut_short"
reason=$(sql "SELECT reason FROM drills WHERE id = $id")
grep -q "^cut_short: slo 'error-rate' breached on the secondary" <<<"$reason" || fail "the drill's reason does not say which slo: $reason"
sql "SELECT reason FROM audit_events WHERE kind = 'drill.phase' AND data->>'drill' = '$id' AND data->>'to' = 'restoring'" |
	grep -q "slo 'error-rate' breached on the secondary" || fail "the audit does not say which slo was breached"
cut_after=$(sql "SELECT round((figures->>'hold_s')::numeric, 1) FROM drills WHERE id = $id")
awk -v h="$cut_after" 'BEGIN { exit !(h < 10) }' || fail "the breach ended the hold only after $cut_after s"
[ "$(sql "SELECT applied_weight FROM drills WHERE id = $id")" = 0 ] || fail "the primary is not confirmed in the row"
"$CTL" audit verify >/dev/null || fail "audit verify failed"
log "drill $id cut short after $cut_after s on green: $reason"
log "timings: $(drill_timings "$id")"
log "PASS: a drill to an erroring secondary was cut short and blue carries the traffic again"
