#!/usr/bin/env bash
# e2e: an owner edits a rollout's row by hand-written SQL at the worst moment: after canaryd read the row for a tick
# and before it records that tick (while the candidate's /metrics is being read). The edit restarts the hold of
# step 1 (state.step_started_ms set to now). canaryd holds the state it recorded last (0021) and records what it
# judged; the tick judged on the row as it was before the edit must be refused (0024, CNST0: nothing of it
# written), the next turn must read the edited state instead of the one canaryd holds, and the step must then last
# its whole hold from the edit. Without either, step 2 comes at the hold's original end, seconds too early.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
# green's /metrics through a relay: after `touch $E2E_DIR/stall`, the next read is answered 1.5 s late, and the relay
# touches $E2E_DIR/stalled as it starts waiting (the row of that tick was read before the read began)
relay_green_metrics 5s
start_load "$FE" 1000 100
HTTP=$(free_port)
start_canaryd --listen "127.0.0.1:$HTTP"
start_rollout_wait v2 demo-fast 100s
id=$(rollout_of v2)
wait_step "$id" 0 20

# three ticks into step 1, canaryd holds the state it recorded (the row's state is not read back)
held() { curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk -v s="$1" '$1 == "canaryd_state_reads_total{source=\"" s "\"}" {print $2}'; }
for _ in $(seq 1 100); do
	[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'tick' AND (data->>'step')::int = 0")" -ge 3 ] &&
		[ "$(held held)" -ge 1 ] && break
	sleep 0.1
done
[ "$(held held)" -ge 1 ] || fail "canaryd never used the state it holds (canaryd_state_reads_total{source=\"held\"} is '$(held held)')"
s0=$(sql "SELECT state->>'step_started_ms' FROM rollouts WHERE id = $id")
reads0=$(held database)

# the worst moment: a tick's row is read, its candidate read is out
touch "$E2E_DIR/stall"
for _ in $(seq 1 100); do [ -f "$E2E_DIR/stalled" ] && break; sleep 0.05; done
[ -f "$E2E_DIR/stalled" ] || fail "canaryd did not read green's metrics within 5 s"
edit=$(sql "UPDATE rollouts SET state = jsonb_set(state, '{step_started_ms}',
                   to_jsonb((extract(epoch FROM clock_timestamp()) * 1000)::bigint))
            WHERE id = $id AND phase = 'progressing' AND step = 0 RETURNING state->>'step_started_ms'")
[ -n "$edit" ] || fail "rollout $id left step 1 before the edit"
log "an owner restarted the hold of step 1 by SQL at $edit, $((edit - s0)) ms into it, while a tick was being judged"
[ $((edit - s0)) -ge 2000 ] || fail "the edit came only $((edit - s0)) ms into the step: too early to tell a restarted hold"

set +e
wait "$ROLLOUT_PID"
rc=$?
set -e
cat "$E2E_DIR/wait-v2.log" >&2
[ "$rc" -eq 0 ] || fail "rollout wait exited $rc, expected 0 (promoted)"

# the tick judged before the edit was refused, not written over it
grep -q '"event":"rollout.error".*changed since this daemon read it' "$E2E_DIR/canaryd.log" ||
	fail "no tick was refused for a row changed since it was read (the edit was not caught between read and record)"
# the next turn read the edited state, not the one canaryd held
[ "$(held database)" -gt "$reads0" ] || fail "canaryd never read the stored state after the edit (held it instead)"
# step 2 came a whole hold (8 s) after the edit, not at the hold's original end
t5=$(sql "SELECT (extract(epoch FROM at) * 1000)::bigint FROM audit_events
          WHERE rollout_id = $id AND kind = 'weight.intended' AND (data->>'to')::float = 5")
[ -n "$t5" ] || fail "no weight.intended 5"
log "step 2 began $((t5 - edit)) ms after the edit ($((t5 - s0)) ms after step 1 began)"
[ $((t5 - edit)) -ge 7500 ] || fail "step 2 began $((t5 - edit)) ms after the edit: the hold was not restarted (lost update?)"
steps=$(sql "SELECT string_agg(data->>'to', ',' ORDER BY id) FROM audit_events
             WHERE rollout_id = $id AND kind = 'weight.intended'")
[ "$steps" = "1,5,100" ] || fail "intended weights were '$steps', expected 1,5,100"
"$CTL" audit verify >"$E2E_DIR/verify.log" 2>&1 || { cat "$E2E_DIR/verify.log" >&2; fail "audit verify failed"; }
log "PASS: the owner's edit between read and record was kept: a tick refused, the edited state read, the hold restarted"
