#!/usr/bin/env bash
# e2e: failover drills notify the service's webhooks (issue 14: drill results), never lost. The service file sends
# every event to hooksink's /hook (signed with HOOK_SECRET from canaryd's environment) and drill results to /slack
# as Slack messages, but the receiver is down while a drill to a healthy green passes and a drill to an erroring green
# is cut short. Checks: the outbox holds drill_started, drill_passed, drill_started, drill_cut_short for /hook and the
# two results for /slack, each tried and refused while the receiver is away; once it is back every row is delivered,
# the keys first accepted per URL are the outbox's in order, none is unknown, a key accepted twice carried the same
# body, every signature verifies, and the bodies carry each drill's figures (time to shift, errors and p99 during the
# shift and the hold, time to shift back; the cut-short drill's hold has errors) and the Slack texts say it in words.
source "$(dirname "${BASH_SOURCE[0]}")/drill_lib.bash"

HOOKSINK=$B/tests/hooksink
[ -x "$HOOKSINK" ] || fail "'$HOOKSINK' is not built; run scripts/build first"
SECRET="e2e-$RANDOM-secret"
SINK_PORT=$(free_port)
SINK_LOG=$E2E_DIR/sink.jsonl

setup_world
cat >>"$E2E_DIR/service.yaml" <<YAML
notify:
  - url: http://127.0.0.1:$SINK_PORT/hook
    secret_env: HOOK_SECRET
    timeout: 1s
  - url: http://127.0.0.1:$SINK_PORT/slack
    events: [drill_passed, drill_cut_short, drill_aborted, drill_failed]
    format: slack
    timeout: 1s
YAML
"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
start_load "$FE" 400 60
HOOK_SECRET=$SECRET start_canaryd --lease 3000 --notify-retry-max 1000

DRILL_BASELINE=4s start_drill pass 4s
pass=$(drill_id)
finish_drill pass
[ "$DRILL_RC" -eq 0 ] || fail "the healthy drill exited $DRILL_RC, expected 0 (passed)"
modelsim_admin "$GREEN" '{"error_rate":0.2}'
DRILL_BASELINE=4s start_drill cut 30s
cut=$(sql "SELECT max(id) FROM drills")
for _ in $(seq 1 50); do [ "$cut" != "$pass" ] && break; sleep 0.1; cut=$(sql "SELECT max(id) FROM drills"); done
finish_drill cut
[ "$DRILL_RC" -eq 1 ] || fail "the drill to an erroring green exited $DRILL_RC, expected 1 (cut short)"
expect_primary "after both drills"

events=$(sql "SELECT string_agg(event || ':' || (payload->'drill'->>'id'), ' ' ORDER BY id) FROM outbox WHERE url LIKE '%/hook'")
[ "$events" = "drill_started:$pass drill_passed:$pass drill_started:$cut drill_cut_short:$cut" ] || fail "/hook outbox: $events"
events=$(sql "SELECT string_agg(event, ' ' ORDER BY id) FROM outbox WHERE url LIKE '%/slack'")
[ "$events" = "drill_passed drill_cut_short" ] || fail "/slack outbox: $events"
sleep 2
[ "$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND attempts >= 1 AND last_status = 0")" -ge 1 ] ||
	fail "no row was tried and refused while the receiver was down: $(sql "SELECT id, attempts, last_status FROM outbox")"
down=$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
[ "$down" -eq 6 ] || fail "$down of 6 rows undelivered while the receiver is down"

"$HOOKSINK" --port "$SINK_PORT" --log "$SINK_LOG" --secret "$SECRET" >"$E2E_DIR/hooksink.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$SINK_PORT" 5
log "receiver up"
for _ in $(seq 1 100); do
	[ "$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")" = 0 ] && break
	sleep 0.2
done
[ "$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")" = 0 ] ||
	fail "undelivered after the receiver came back: $(sql "SELECT id, event, url, attempts, last_error FROM outbox WHERE delivered_at IS NULL")"
for path in hook slack; do
	want=$(sql "SELECT key || ' ' || event FROM outbox WHERE url LIKE '%/$path' ORDER BY id")
	got=$(jq -r --arg p "/$path" 'select(.path == $p and .status == 200) | .key + " " + .event' "$SINK_LOG" | awk '!seen[$1]++')
	[ "$want" = "$got" ] || fail "/$path: accepted $(echo "$got" | awk '{print $2}' | tr '\n' ' ') but the outbox has $(echo "$want" | awk '{print $2}' | tr '\n' ' ')"
done
keys=$(sql "SELECT key FROM outbox")
stray=$(jq -r '.key' "$SINK_LOG" | sort -u | grep -vxF "$keys" || true)
[ -z "$stray" ] || fail "requests with keys no outbox row has: $stray"
dups=$(jq -r 'select(.status == 200) | .key + " " + (.body | @base64)' "$SINK_LOG" | sort | uniq | awk '{print $1}' | uniq -d)
[ -z "$dups" ] || fail "a key accepted twice with different bodies: $dups"
bad=$(jq -r 'select(.path == "/hook" and .sig_ok != true) | .key' "$SINK_LOG" | head -3)
[ -z "$bad" ] || fail "signatures that do not verify: $bad"

body() { jq -c --arg e "$1" 'select(.path == "/hook" and .status == 200 and .event == $e) | .body | fromjson' "$SINK_LOG" | head -1; }
for ev in drill_passed drill_cut_short; do
	b=$(body $ev)
	[ -n "$b" ] || fail "no $ev body at /hook"
	jq -e '.service == "svc" and .drill.secondary == "green" and .drill.primary == "blue" and
	       (.drill.figures.shift_s | type == "number") and (.drill.figures.restore_s | type == "number") and
	       (.drill.figures.shift.requests | type == "number") and (.drill.figures.shift.errors | type == "number") and
	       (.drill.figures.hold.p99_s | type == "number") and (.drill.figures.hold.errors | type == "number") and
	       (.id | type == "string")' <<<"$b" >/dev/null || fail "$ev body lacks the drill's figures: $b"
	log "$ev: $(jq -c '.drill.figures | {shift_s, restore_s, hold_s, shift, hold}' <<<"$b")"
done
body drill_cut_short | jq -e '.drill.figures.hold.errors > 0 and .drill.outcome == "cut_short"' >/dev/null ||
	fail "the cut-short drill's hold has no errors: $(body drill_cut_short)"
body drill_passed | jq -e --arg id "$pass" '.drill.id == ($id | tonumber) and .drill.outcome == "passed"' >/dev/null ||
	fail "the passed body names another drill: $(body drill_passed)"
[ "$(sql "SELECT round((figures->>'restore_s')::numeric, 6) FROM drills WHERE id = $cut")" = \
  "$(body drill_cut_short | jq -r '.drill.figures.restore_s * 1000000 | round / 1000000')" ] ||
	log "note: restore_s rounding differs between the row and the body"
texts=$(jq -r 'select(.path == "/slack" and .status == 200) | .body | fromjson | .text' "$SINK_LOG")
grep -q "svc: failover drill $pass to green PASSED; time to shift" <<<"$texts" || fail "no Slack text for the pass: $texts"
grep -q "svc: failover drill $cut to green CUT SHORT; time to shift .*hold: [1-9][0-9]* errors of" <<<"$texts" ||
	fail "no Slack text for the cut-short drill: $texts"
refused=$(jq -s '[.[] | select(.status != 200)] | length' "$SINK_LOG")
log "figure: 6 drill notifications held while the receiver was down (attempts before it returned: $(sql "SELECT sum(attempts) FROM outbox") in total), delivered in $(sql "SELECT round(max(extract(epoch FROM delivered_at - created_at))::numeric, 1) FROM outbox") s at most, $refused refused at the receiver, 0 lost"
log "PASS: drill results reached the service's webhooks through the receiver's outage, in order, signed, with figures"
