#!/usr/bin/env bash
# e2e: a database failover mid-rollout. A primary with a synchronous streaming standby (scripts/pgtmp standby), every
# client on one multi-host URL (target_session_attrs=read-write). With real traffic through HAProxy, the primary
# crashes (immediate stop) during the rollout and the standby is promoted. canaryd must reconnect to the new primary
# and finish the rollout; `rollout start --wait` and `rollout wait`, both waiting through the failover, must say that
# they reconnect and exit 0 (promoted) instead of 69; no committed row may be lost; the audit chain must verify on the
# new primary. Prints "failover: resumed in X s ..., rows lost N" for the README.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

PGTMP=$E2E_TOP/scripts/pgtmp
PROMOTE_AFTER=2
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
url_a=$("$PGTMP" url "$pg_a")
url_a_db="${url_a%/*}/${DATABASE_URL##*/}"
for t in audit_events decisions measurements; do snap "$url_a_db" "$t" >"$E2E_DIR/before-$t.ids"; done
before_step=$(psql -qAt "$url_a_db" -c "SELECT step FROM rollouts WHERE id = $id")
t_stop=$(date +%s.%N)
log "crashing the primary (step $((before_step + 1)) of rollout $id); promoting the standby ${PROMOTE_AFTER}s later"
"$PGTMP" crash "$pg_a"
sleep "$PROMOTE_AFTER"   # as a failover manager would take to notice: meanwhile only a read-only standby answers
"$PGTMP" promote "$pg_b"
t_promoted=$(date +%s.%N)

# The new primary answers on the same multi-host URL. Its first tick after the stop is when canaryd resumed.
resumed=
for _ in $(seq 1 300); do
	resumed=$(sql "SELECT extract(epoch FROM min(at)) FROM audit_events WHERE rollout_id = $id AND kind = 'tick'
	               AND at > to_timestamp($t_stop)" 2>/dev/null || true)
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
grep -q '"event":"store.reconnected"' "$E2E_DIR/canaryd.log" || fail "canaryd did not log its reconnection"
"$CTL" audit verify >"$E2E_DIR/verify.log" 2>&1 || { cat "$E2E_DIR/verify.log" >&2; fail "audit verify failed on the new primary"; }

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
after_s=$(awk -v a="$t_promoted" -v b="$resumed" 'BEGIN { printf "%.2f", b - a }')
echo "failover: resumed in $res_s s (from the stop to canaryd's first tick on the new primary; the standby was" \
	"promoted ${PROMOTE_AFTER}s after the stop, the tick came $after_s s after the promotion), rows lost $lost of $rows"
[ "$lost" -eq 0 ] || fail "$lost committed row(s) lost in the failover"
log "PASS: canaryd and both waiting pipelines survived a database failover; the audit verifies on the new primary"
