#!/usr/bin/env bash
# e2e: an operator aborts a failover drill during its hold: `drill abort` returns once canaryd has restored the
# primary, the waiting `drill failover` exits 2, HAProxy is back on blue, and the audit names who aborted and why.
source "$(dirname "${BASH_SOURCE[0]}")/drill_lib.bash"

setup_world
start_load "$FE" 200 40
start_canaryd --lease 3000
start_drill abort 30s
id=$(drill_id)
wait_drill_phase "$id" holding 20
t0=$(date +%s%N)
"$CTL" drill abort "$id" --reason "stop the drill" >"$E2E_DIR/abort.log" 2>&1 || fail "drill abort failed: $(cat "$E2E_DIR/abort.log")"
t1=$(date +%s%N)
cat "$E2E_DIR/abort.log" >&2
grep -q "aborted; blue carries all traffic again" "$E2E_DIR/abort.log" || fail "drill abort did not report the primary restored"
expect_primary "right after drill abort returned"
finish_drill abort
[ "$DRILL_RC" -eq 2 ] || fail "drill failover exited $DRILL_RC, expected 2 (aborted)"
[ "$(sql "SELECT phase FROM drills WHERE id = $id")" = aborted ] || fail "phase is not aborted"
me=$(sql "SELECT session_user")
[ "$(sql "SELECT count(*) FROM audit_events WHERE kind = 'drill.abort_requested' AND actor = '$me' AND reason = 'stop the drill' AND data->>'drill' = '$id'")" = 1 ] ||
	fail "the audit lacks the abort request by $me"
sql "SELECT actor || ': ' || reason FROM audit_events WHERE kind = 'drill.phase' AND data->>'to' = 'restoring' AND data->>'drill' = '$id'" |
	grep -q "^$me: aborted by $me: stop the drill" || fail "the restore is not attributed to the operator"
set +e
"$CTL" drill abort "$id" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 65 ] || fail "aborting an ended drill exited $rc, expected 65"
"$CTL" audit verify >/dev/null || fail "audit verify failed"
log "drill $id aborted: drill abort returned in $(( (t1 - t0) / 1000000 )) ms with blue confirmed; $(drill_timings "$id")"
log "PASS: an aborted drill exits 2 with the primary restored"
