#!/usr/bin/env bash
# e2e: two daemons share the work through leases. While both run, every tick of a rollout comes from one daemon;
# when that daemon is killed with SIGKILL mid-step, the other takes the rollout over once the lease expires,
# reconciles the gateway to the recorded intent, and finishes it: promoted, HAProxy consistent with the record.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
start_load "$FE" 1000 120
start_canaryd --id daemon-a --lease 3000
PID_A=$CANARYD_PID
start_canaryd --id daemon-b --lease 3000
PID_B=$CANARYD_PID

start_rollout_wait v2 demo-fast 120s
id=$(rollout_of v2)
wait_step "$id" 0 20
sleep 2
# With both daemons listening, an operator's command is handled once, by the lease holder, at once.
"$CTL" rollout pause "$id" --reason "failover e2e" >/dev/null || fail "pause refused with two daemons running"
"$CTL" rollout resume "$id" >/dev/null || fail "resume refused with two daemons running"
handled=$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id AND result = 'accepted'")
[ "$handled" = 2 ] || fail "expected 2 accepted commands, found $handled"
owner=$(sql "SELECT lease_owner FROM rollouts WHERE id = $id")
events=$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'command.accepted'")
[ "$events" = 2 ] || fail "$events command.accepted events, expected 2 (one per command, not one per daemon)"
owners=$(sql "SELECT count(DISTINCT data->>'daemon') FROM audit_events WHERE rollout_id = $id AND kind = 'tick'")
[ "$owners" = 1 ] || fail "ticks of rollout $id came from $owners daemons while both ran"
case "$owner" in
daemon-a) victim=$PID_A survivor=daemon-b ;;
daemon-b) victim=$PID_B survivor=daemon-a ;;
*) fail "unexpected lease owner '$owner'" ;;
esac
kill -KILL "$victim"
log "killed $owner (SIGKILL) during step 1; $survivor should take over"
# Meanwhile someone moves the gateway by hand: the survivor must put back the recorded intent.
hap "$ADMIN" "set server svc/green weight 50" >/dev/null

set +e
wait "$ROLLOUT_PID"; rc=$?
set -e
cat "$E2E_DIR/wait-v2.log" >&2
[ "$rc" -eq 0 ] || fail "rollout after failover exited $rc, expected 0"
last=$(sql "SELECT data->>'daemon' FROM audit_events WHERE rollout_id = $id AND kind = 'tick' ORDER BY id DESC LIMIT 1")
[ "$last" = "$survivor" ] || fail "the last tick came from '$last', expected $survivor"
[ "$(hap_weight "$ADMIN" svc/blue)" -eq 0 ] || fail "HAProxy disagrees with the promoted record"
# While the victim still held the lease, nobody acted: no tick from the survivor before the lease expired.
overlap=$(sql "SELECT count(*) FROM audit_events a JOIN audit_events b ON a.rollout_id = b.rollout_id
               WHERE a.rollout_id = $id AND a.kind = 'tick' AND b.kind = 'tick'
                 AND a.data->>'daemon' <> b.data->>'daemon' AND abs(extract(epoch FROM a.at - b.at)) < 0.5")
[ "$overlap" = 0 ] || fail "two daemons ticked rollout $id within 0.5s of each other"
log "PASS: failover by lease expiry, gateway reconciled, promoted"
