#!/usr/bin/env bash
# e2e: a database failover mid-rollout. A primary with a synchronous streaming standby (scripts/pgtmp standby), every
# client on one multi-host URL (target_session_attrs=read-write). With real traffic through HAProxy, the primary
# crashes (immediate stop) during the rollout and the standby is promoted. canaryd must reconnect to the new primary
# and finish the rollout; `rollout start --wait` and `rollout wait`, both waiting through the failover, must say that
# they reconnect and exit 0 (promoted) instead of 69; no committed row may be lost; the audit chain must verify on the
# new primary. First, the primary turns read-only for 2 s: canaryd must leave it and come back once it accepts writes.
# Prints "failover: resumed in X s ..., rows lost N" for the README.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

PGTMP=$E2E_TOP/scripts/pgtmp
PROMOTE_AFTER=${PROMOTE_AFTER:-2} # seconds between the crash and the promotion
pg_a=$(mktemp -d /tmp/canary-pga.XXXXXX)
pg_b=$(mktemp -d /tmp/canary-pgb.XXXXXX)
e2e_extra_cleanup() {
	"$PGTMP" stop "$pg_a" >/dev/null 2>&1 || rm -rf "$pg_a"
	"$PGTMP" stop "$pg_b" >/dev/null 2>&1 || rm -rf "$pg_b"
}
"$PGTMP" start "$pg_a" >/dev/null
"$PGTMP" standby "$pg_a" "$pg_b" >/dev/null
E2E_ADMIN_URL=$("$PGTMP" url "$pg_a" "$pg_b")
setup_world
[[ "$DATABASE_URL" == *,* ]] || fail "DATABASE_URL '$DATABASE_URL' is not the multi-host URL"
start_load "$FE" 500 150
start_canaryd
url_a=$("$PGTMP" url "$pg_a")
url_a_db="${url_a%/*}/${DATABASE_URL##*/}"

# A primary that turns read-only (as a demoted one does) must not keep canaryd: its writes fail with 25006, it
# reconnects, and target_session_attrs=read-write refuses every read-only server until one accepts writes again.
grep -q '"event":"started"' "$E2E_DIR/canaryd.log" || sleep 1
psql -qAt "$url_a" -c "ALTER SYSTEM SET default_transaction_read_only = on" -c "SELECT pg_reload_conf()" >/dev/null
sleep 2
psql -qAt "$url_a" -c "SET default_transaction_read_only = off" -c "ALTER SYSTEM RESET default_transaction_read_only" \
	-c "SELECT pg_reload_conf()" >/dev/null
grep -q 'the database is read-only' "$E2E_DIR/canaryd.log" || fail "canaryd did not notice that the primary turned read-only"
grep -q 'session is read-only' "$E2E_DIR/canaryd.log" || fail "canaryd did not try to reconnect to a server that accepts writes"
# canaryd's reconnect back-off grows to 5 s, and a loaded machine (CI runs two suites' worth of e2e) adds to it
# It goes on either on a new connection (store.reconnected) or, when every new one was refused while the server was
# read-only, on the one it kept, once that accepts writes again (store.recovered): which comes first is a race.
for _ in $(seq 1 300); do grep -qE '"event":"store.(reconnected|recovered)"' "$E2E_DIR/canaryd.log" && break; sleep 0.1; done
grep -qE '"event":"store.(reconnected|recovered)"' "$E2E_DIR/canaryd.log" ||
	fail "canaryd did not go on once the primary accepted writes again"
lines_ro=$(wc -l <"$E2E_DIR/canaryd.log")

start_rollout_wait v2 demo-fast 150s
id=$(rollout_of v2)
"$CTL" rollout wait "$id" --timeout 150s >"$E2E_DIR/wait-id.log" 2>&1 &
WAIT_PID=$!
E2E_PIDS+=("$ROLLOUT_PID" "$WAIT_PID")
wait_step "$id" 1 40
sleep 2   # mid-step 2: its intent committed and a few ticks recorded

# What the primary holds right before it dies: every audit event, decision and measurement row id.
snap() { # URL TABLE MAX_ID -> ids up to MAX_ID (all when empty)
	psql -qAt "$1" -c "SELECT id FROM $2 ${3:+WHERE id <= $3} ORDER BY id"
}
for t in audit_events decisions measurements; do snap "$url_a_db" "$t" >"$E2E_DIR/before-$t.ids"; done
before_step=$(psql -qAt "$url_a_db" -c "SELECT step FROM rollouts WHERE id = $id")
t_stop=$(date +%s.%N)
log "crashing the primary (step $((before_step + 1)) of rollout $id); promoting the standby ${PROMOTE_AFTER}s later"
"$PGTMP" crash "$pg_a"
sleep "$PROMOTE_AFTER"   # as a failover manager would take to notice: meanwhile only a read-only standby answers
t_promote=$(date +%s.%N) # the old primary is down (crash waits for it): a row stamped later is the new primary's
"$PGTMP" promote "$pg_b"

# The new primary answers on the same multi-host URL. Its first tick is when canaryd resumed.
resumed=
for _ in $(seq 1 300); do
	resumed=$(sql "SELECT extract(epoch FROM min(at)) FROM audit_events WHERE rollout_id = $id AND kind = 'tick'
	               AND at > to_timestamp($t_promote)" 2>/dev/null || true)
	[ -n "$resumed" ] && break
	sleep 0.1
done
[ -n "$resumed" ] || fail "canaryd recorded no tick on the new primary within 30s of the failover"
[ "$(sql "SELECT pg_is_in_recovery()")" = f ] || fail "the URL does not lead to the new primary"

set +e
wait "$ROLLOUT_PID"
rc_start=$?
wait "$WAIT_PID"
rc_wait=$?
set -e
cat "$E2E_DIR/wait-v2.log" "$E2E_DIR/wait-id.log" >&2
[ "$rc_start" -eq 0 ] || fail "rollout start --wait exited $rc_start through the failover, expected 0 (promoted)"
[ "$rc_wait" -eq 0 ] || fail "rollout wait exited $rc_wait through the failover, expected 0 (promoted)"
for f in wait-v2 wait-id; do
	grep -q 'lost the database.*reconnecting' "$E2E_DIR/$f.log" || fail "$f: no word that it reconnects"
	grep -q 'reconnected to the database' "$E2E_DIR/$f.log" || fail "$f: no word that it reconnected"
done
[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = promoted ] || fail "rollout $id is not promoted"
[ "$(hap_weight "$ADMIN" svc/blue)" -eq 0 ] || fail "HAProxy disagrees with the promoted record"
[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] || fail "HAProxy gives the promoted candidate no weight"
tail -n +"$((lines_ro + 1))" "$E2E_DIR/canaryd.log" | grep -c '"event":"store.reconnected"' >/dev/null ||
	fail "canaryd did not log its reconnection after the failover"
"$CTL" audit verify >"$E2E_DIR/verify.log" 2>&1 || { cat "$E2E_DIR/verify.log" >&2; fail "audit verify failed on the new primary"; }

# No database at the very start is another matter (a wrong URL looks the same): 69 at once, not at the timeout.
set +e
t0=$(date +%s)
"$CTL" --db "$url_a_db" rollout wait "$id" --timeout 60s >"$E2E_DIR/wait-down.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 69 ] && [ $(($(date +%s) - t0)) -lt 15 ] ||
	fail "rollout wait with the database down from the start exited $rc after $(($(date +%s) - t0))s, expected 69 at once"

# Rows lost: rows the old primary held before the stop that the new primary lacks (synchronous replication: 0).
lost=0
for t in audit_events decisions measurements; do
	max=$(tail -n 1 "$E2E_DIR/before-$t.ids")
	snap "$DATABASE_URL" "$t" "${max:-0}" >"$E2E_DIR/after-$t.ids"
	n=$(comm -23 "$E2E_DIR/before-$t.ids" "$E2E_DIR/after-$t.ids" | wc -l)
	[ "$n" -eq 0 ] || log "$t: $n row(s) lost: $(comm -23 "$E2E_DIR/before-$t.ids" "$E2E_DIR/after-$t.ids" | head -5 | tr '\n' ' ')"
	lost=$((lost + n))
done
rows=$(cat "$E2E_DIR"/before-*.ids | wc -l)
res_s=$(awk -v a="$t_stop" -v b="$resumed" 'BEGIN { printf "%.2f", b - a }')
after_s=$(awk -v a="$t_promote" -v b="$resumed" 'BEGIN { printf "%.2f", b - a }')
echo "failover: resumed in $res_s s (from the stop to canaryd's first tick on the new primary; promotion began" \
	"${PROMOTE_AFTER}s after the stop, the tick came $after_s s after that), rows lost $lost of $rows"
[ "$lost" -eq 0 ] || fail "$lost committed row(s) lost in the failover"
log "PASS: canaryd and both waiting pipelines survived a database failover; the audit verifies on the new primary"
