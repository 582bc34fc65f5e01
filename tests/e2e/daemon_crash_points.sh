#!/usr/bin/env bash
# e2e: kill -9 at every named point of canaryd's turn (CANARY_TEST_CRASH_AT, controller/daemon/fault.c), one rollout
# per kill, real traffic through HAProxy, and a fresh canaryd (a new lease owner) after each kill. Every rollout must
# be promoted with HAProxy carrying the recorded intent, the candidate's weight never above the intent recorded at
# the time (HAProxy sampled every ~100 ms), the weight.intended events exactly the policy's steps (none skipped, none
# done twice), and the audit chain intact. Points are hit at different turns (POINT:NTH): at the start, mid-ramp.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/crash_lib.bash"

# POINT:NTH. after_intent/after_gateway count moves of the weight (1: to 1%, 2: to 5%, 3: to 100%); before_confirm
# also counts the first turn's confirmation of weight 0; mid_record counts recorded ticks and commands; command
# counts operator commands (a pause is sent for it, and a resume after the restart).
POINTS=${CRASH_POINTS:-"after_claim:4 after_claim:9 after_intent:1 after_intent:3 after_gateway:1 after_gateway:2 before_confirm:1
	before_confirm:3 mid_record:1 mid_record:8 command:1"}

crash_setup 600
survived=0 runs=0
for knob in $POINTS; do
	runs=$((runs + 1))
	point=${knob%%:*}
	cand="v$runs"
	cslot=$("$CTL" --output json service show svc | jq -r .idle.name)
	bslot=$("$CTL" --output json service show svc | jq -r .live.name)
	kills_before=$(grep -c '"event":"fault.crash"' "$E2E_DIR/canaryd.log" 2>/dev/null || true)
	crash_daemon "$knob"
	armed=$CANARYD_PID
	"$CTL" rollout start --service svc --candidate "$cand" --policy "$CRASH_POLICY" >/dev/null
	id=$(rollout_of "$cand")
	sampler_start "$id" "$cslot" "$bslot"
	if [ "$point" = command ]; then
		wait_step "$id" 0 20
		"$CTL" rollout pause "$id" --reason "crash test" >"$E2E_DIR/pause-$id.log" 2>&1 &
		pause_pid=$!
		E2E_PIDS+=("$pause_pid")
	fi
	wait_dead "$armed" 40 || fail "$knob: canaryd was not killed within 40s (rollout $id: the point was not reached)"
	kills=$(grep -c '"event":"fault.crash"' "$E2E_DIR/canaryd.log")
	[ "$kills" -eq $((kills_before + 1)) ] || fail "$knob: canaryd died, but not at the crash point (see canaryd.log)"
	where=$(grep '"event":"fault.crash"' "$E2E_DIR/canaryd.log" | tail -n 1 | jq -r .where)
	log "$knob: canaryd killed ($where) during rollout $id ($cslot to $(sql "SELECT weight FROM rollouts WHERE id = $id")%); restarting it"
	crash_daemon
	if [ "$point" = command ]; then
		wait "$pause_pid" || { cat "$E2E_DIR/pause-$id.log" >&2; fail "$knob: the pause was not applied after the restart"; }
		[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = paused ] || fail "$knob: rollout $id is not paused"
		[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'command.accepted'")" -eq 1 ] ||
			fail "$knob: the pause was not accepted exactly once"
		"$CTL" rollout resume "$id" >/dev/null || fail "$knob: resume failed"
	fi
	set +e
	"$CTL" rollout wait "$id" --timeout 90s >"$E2E_DIR/wait-$id.log" 2>&1
	rc=$?
	set -e
	sampler_stop "$id"
	[ "$rc" -eq 0 ] || { cat "$E2E_DIR/wait-$id.log" >&2; fail "$knob: rollout wait $id exited $rc, expected 0"; }
	check_rollout "$id" "$cslot" "$bslot" || fail "$knob: rollout $id is inconsistent after the kill"
	log "$knob: rollout $id promoted and consistent ($(wc -l <"$E2E_DIR/samples-$id") weight samples)"
	survived=$((survived + 1))
	stop_daemon "$CANARYD_PID"
done
"$CTL" audit verify >"$E2E_DIR/verify.log" 2>&1 || { cat "$E2E_DIR/verify.log" >&2; fail "audit verify failed"; }
echo "crash points: $survived of $runs kills survived ($(echo $POINTS | tr '\n' ' '))"
log "PASS: a kill -9 at every crash point left every rollout consistent and the audit intact"
