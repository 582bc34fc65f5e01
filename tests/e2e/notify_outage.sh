#!/usr/bin/env bash
# e2e: a real rollout's notifications reach a webhook receiver through its outage. The policy sends every event to
# hooksink's /hook (signed with HOOK_SECRET from canaryd's environment); the service sends a Slack-style message to
# /slack. The receiver answers 500 when the rollout starts, hangs past the hook's timeout at step 1, is killed
# (connection refused) at step 2, and comes back. Checks: the rollout is promoted on time (the receiver never held
# up the control loop); every outbox row is delivered; the receiver accepted each key, in the order of the outbox
# per URL (started, step_advanced x3, promoted on /hook); every signature verifies; a key accepted twice carried
# the same body; the Slack bodies have text and blocks; canaryd's /metrics showed the backlog and ends at 0.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

HOOKSINK=$B/tests/hooksink
[ -x "$HOOKSINK" ] || fail "'$HOOKSINK' is not built; run scripts/build first"
SECRET="e2e-$RANDOM-secret"
SINK_PORT=$(free_port)
SINK_LOG=$E2E_DIR/sink.jsonl

start_sink() { # [MODE]
	"$HOOKSINK" --port "$SINK_PORT" --log "$SINK_LOG" --secret "$SECRET" --mode "${1:-ok}" >"$E2E_DIR/hooksink.log" 2>&1 &
	E2E_PIDS+=($!)
	SINK_PID=$!
	wait_port "$SINK_PORT" 5
}
sink_mode() { curl -fsS -X POST "http://127.0.0.1:$SINK_PORT/admin?$1" >/dev/null; }
metric() { curl -fsS "http://127.0.0.1:$HTTP/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

start_sink fail
sed "s/^name: demo-fast/name: demo-notify/" "$E2E_TOP/policies/demo-fast.yaml" >"$E2E_DIR/policy.yaml"
cat >>"$E2E_DIR/policy.yaml" <<YAML
notify:
  - url: http://127.0.0.1:$SINK_PORT/hook
    secret_env: HOOK_SECRET
    timeout: 1s
YAML
setup_world "$E2E_DIR/policy.yaml"
cat >>"$E2E_DIR/service.yaml" <<YAML
notify:
  - url: http://127.0.0.1:$SINK_PORT/slack
    events: [started, rolled_back, promoted, aborted]
    format: slack
    timeout: 1s
YAML
"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null

start_load "$FE" 1500 90
HTTP=$(free_port)
HOOK_SECRET=$SECRET start_canaryd --listen "127.0.0.1:$HTTP" --notify-retry-max 2000
t0=$(date +%s)
start_rollout_wait v2 demo-notify 90s
ID=$(rollout_of v2)

wait_step "$ID" 0 20
sleep 2
backlog=$(metric canaryd_notify_backlog)
[ "${backlog:-0}" -ge 1 ] || fail "canaryd_notify_backlog is '${backlog:-missing}' while the receiver answers 500"
log "receiver failing: backlog $backlog, oldest $(metric canaryd_notify_oldest_undelivered_seconds) s"
sink_mode "mode=hang&ms=4000"
wait_step "$ID" 1 30
log "step 2 reached while the receiver hangs; killing the receiver"
kill "$SINK_PID"
wait "$SINK_PID" 2>/dev/null || true
sleep 4
start_sink ok
log "receiver back"

set +e
wait "$ROLLOUT_PID"
rc=$?
set -e
took=$(($(date +%s) - t0))
[ "$rc" -eq 0 ] || fail "rollout start --wait exited $rc, expected 0 (promoted); $(tail -3 "$E2E_DIR/wait-v2.log")"
[ "$took" -le 60 ] || fail "the rollout took ${took}s; the receiver's outage held it up"

for _ in $(seq 1 150); do
	[ "$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")" = 0 ] && break
	sleep 0.2
done
[ "$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")" = 0 ] ||
	fail "undelivered after the receiver came back: $(sql "SELECT id, event, url, attempts, last_error FROM outbox WHERE delivered_at IS NULL")"

# Nothing lost, in order: per URL, the keys in the order the receiver first accepted them are the outbox's keys in id
# order.
for path in hook slack; do
	want=$(sql "SELECT key || ' ' || event FROM outbox WHERE url LIKE '%/$path' ORDER BY id")
	got=$(jq -r --arg p "/$path" 'select(.path == $p and .status == 200) | .key + " " + .event' "$SINK_LOG" | awk '!seen[$1]++')
	[ -n "$want" ] || fail "no outbox rows for /$path"
	[ "$want" = "$got" ] || fail "/$path: accepted $(echo "$got" | awk '{print $2}' | tr '\n' ' ') but the outbox has $(echo "$want" | awk '{print $2}' | tr '\n' ' ')"
done
events=$(sql "SELECT string_agg(event, ' ' ORDER BY id) FROM outbox WHERE url LIKE '%/hook'")
[ "$events" = "started step_advanced step_advanced step_advanced promoted" ] || fail "/hook events: $events"
# Every request came from an outbox row and is signed; a key accepted twice carried the same body.
bad=$(jq -r 'select(.path == "/hook" and .sig_ok != true) | .key' "$SINK_LOG" | head -3)
[ -z "$bad" ] || fail "signatures that do not verify: $bad"
keys=$(sql "SELECT key FROM outbox")
stray=$(jq -r '.key' "$SINK_LOG" | sort -u | grep -vxF "$keys" || true)
[ -z "$stray" ] || fail "requests with keys no outbox row has: $stray"
dups=$(jq -r 'select(.status == 200) | .key + " " + (.body | @base64)' "$SINK_LOG" | sort | uniq | awk '{print $1}' | uniq -d)
[ -z "$dups" ] || fail "a key accepted twice with different bodies: $dups"
ids=$(jq -r 'select(.path == "/hook") | (.body | fromjson | .id) == .key' "$SINK_LOG" | sort -u)
[ "$ids" = true ] || fail "a body's id is not its Idempotency-Key"
jq -e -s '[.[] | select(.path == "/slack" and .status == 200) | .body | fromjson | (.text | type == "string") and (.blocks | length == 2)] | all' "$SINK_LOG" >/dev/null ||
	fail "a Slack body lacks text or blocks"
jq -r 'select(.path == "/slack" and .status == 200) | .body | fromjson | .text' "$SINK_LOG" | grep -c "promoted" >/dev/null ||
	fail "no Slack message says promoted"

refused=$(jq -r 'select(.status != 200)' "$SINK_LOG" | jq -s length)
retried=$(sql "SELECT count(*) FROM outbox WHERE attempts > 1")
worst=$(sql "SELECT round(max(extract(epoch FROM delivered_at - created_at))::numeric, 1) FROM outbox")
[ "$retried" -ge 1 ] || fail "no row was retried, so the outage was not tested"
for _ in $(seq 1 20); do [ "$(metric canaryd_notify_backlog)" = 0 ] && break; sleep 0.2; done
[ "$(metric canaryd_notify_backlog)" = 0 ] || fail "canaryd_notify_backlog is $(metric canaryd_notify_backlog) at the end"
log "figure: $(sql "SELECT count(*) FROM outbox") events, $refused attempts refused/cut/timed out at the receiver, $retried rows retried, longest delay ${worst}s, 0 lost, rollout promoted in ${took}s"
log "PASS: notifications delivered through the receiver's outage, in order, signed"
