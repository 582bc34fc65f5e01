#!/usr/bin/env bash
# e2e: every database connection of canary is killed again and again (pg_terminate_backend, every 0.4-1.2 s) while
# rollouts run: canaryd's loop, its two recorder senders, the notifier, the SLA observer, and the `rollout wait` of
# the pipeline step. Any of them may die in the middle of a claim, a batch of ticks, a gateway confirmation or a
# command. A healthy rollout must still be promoted, each step applied once and in order, no tick recorded twice;
# then a regression injected mid-step must still be rolled back, once; the audit chain intact, HAProxy in agreement
# with the record, and canaryd alive and healthy afterwards.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
start_load "$FE" 1000 120
HTTP=$(free_port)
start_canaryd --listen "127.0.0.1:$HTTP"
start_rollout_wait v2 demo-fast 100s
id=$(rollout_of v2)

# The attacker: a bounded number of rounds, each killing every canary connection to this database but its own,
# while process PID lives; appends the count killed to FILE.
attack() { # PID FILE
	local rounds=0 k
	while kill -0 "$1" 2>/dev/null && [ "$rounds" -lt 150 ]; do
		k=$(sql "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		         WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = 'canary'" ||
			echo 0)
		echo "${k:-0}" >>"$2"
		rounds=$((rounds + 1))
		sleep "0.$((4 + RANDOM % 9))"
	done
}
attack "$ROLLOUT_PID" "$E2E_DIR/kills1"
kills=$(awk '{s += $1} END {print s + 0}' "$E2E_DIR/kills1") rounds=$(wc -l <"$E2E_DIR/kills1")
set +e
wait "$ROLLOUT_PID"
rc=$?
set -e
cat "$E2E_DIR/wait-v2.log" >&2
log "$kills connections killed in $rounds rounds"
[ "$kills" -ge 20 ] || fail "only $kills connections were killed: the attack did not happen"
[ "$rc" -eq 0 ] || fail "rollout wait exited $rc, expected 0 (promoted) with its connections killed"
kill -0 "$CANARYD_PID" 2>/dev/null || fail "canaryd died"

[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = promoted ] || fail "rollout $id is not promoted"
[ "$(hap_weight "$ADMIN" svc/blue)" -eq 0 ] || fail "HAProxy disagrees with the promoted record (blue has weight)"
[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] || fail "HAProxy disagrees with the promoted record (green has none)"
# each step's weight intended once, in the policy's order (a step applied twice or skipped shows here)
steps=$(sql "SELECT string_agg(data->>'to', ',' ORDER BY id) FROM audit_events
             WHERE rollout_id = $id AND kind = 'weight.intended'")
[ "$steps" = "1,5,100" ] || fail "intended weights were '$steps', expected 1,5,100"
# no tick twice: ticks of the rollout at least half an interval apart (the interval is 1 s)
close=$(sql "SELECT count(*) FROM (SELECT at - lag(at) OVER (ORDER BY id) AS gap FROM audit_events
             WHERE rollout_id = $id AND kind = 'tick') t WHERE gap < interval '500 ms'")
[ "$close" = 0 ] || fail "$close ticks came less than 500 ms after the previous one (a tick recorded twice?)"
# ticks whose batch died with its connection are judged again at the next turn; each step still had its own
decisions=$(sql "SELECT count(*) FROM decisions WHERE rollout_id = $id")
log "$decisions decisions recorded"
[ "$decisions" -ge 6 ] || fail "$decisions decisions, expected at least 6 (two a step)"
"$CTL" audit verify >"$E2E_DIR/verify.log" 2>&1 || { cat "$E2E_DIR/verify.log" >&2; fail "audit verify failed"; }
grep -Eq '"event":"store\.(reconnected|error)"' "$E2E_DIR/canaryd.log" || fail "canaryd never noticed a killed connection"
code=
for _ in $(seq 1 50); do
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP/healthz" || true)
	[ "$code" = 200 ] && break
	sleep 0.2
done
[ "$code" = 200 ] || fail "/healthz answers $code after the attack, expected 200"
log "promoted through $kills killed connections; steps once and in order, chain intact"

# A regression under the same attack: green is live now, the candidate goes to blue; its errors go 0.5% -> 5%.
# (the pid from the file start_rollout_wait writes: other tests running at the same time start a "--candidate v3" too)
( while [ ! -s "$E2E_DIR/wait-v3.pid" ] || [ ! -s "$E2E_DIR/wait-v3.log" ]; do
	[ -f "$E2E_DIR/attack2.stop" ] && exit 0
	sleep 0.1
  done
  attack "$(cat "$E2E_DIR/wait-v3.pid")" "$E2E_DIR/kills2" ) &
attacker=$!
expect_regression_rolled_back v3 demo-fast 100s blue "$BLUE" green '{"error_rate":0.05}' "an error regression under killed connections"
touch "$E2E_DIR/attack2.stop"
wait "$attacker" || true
kills2=$(awk '{s += $1} END {print s + 0}' "$E2E_DIR/kills2" 2>/dev/null || echo 0)
log "rolled back through $kills2 killed connections"
[ "$kills2" -ge 5 ] || fail "only $kills2 connections were killed during the regression: the attack did not happen"
[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $REGRESS_ID AND kind = 'state.changed'
           AND data->>'to' = 'rolled_back'")" = 1 ] || fail "the rollback was not recorded exactly once"
"$CTL" audit verify >"$E2E_DIR/verify2.log" 2>&1 || { cat "$E2E_DIR/verify2.log" >&2; fail "audit verify failed"; }
kill -0 "$CANARYD_PID" 2>/dev/null || fail "canaryd died"
log "PASS: promoted through $kills and rolled back through $kills2 killed connections; steps once, chains intact"
