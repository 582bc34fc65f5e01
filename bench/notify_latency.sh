#!/usr/bin/env bash
# Benchmark: webhook notification latency, and what a receiver outage does to it. Prints figures, never pass/fail.
#   latency: from the change's commit (the outbox row's created_at, the database's clock, written in the change's
#            transaction) until the receiver (tests/support/bin/hooksink, loopback) has the request (its wall clock;
#            same machine), first accepted attempt of each key;
#   outage:  the receiver is killed for OUTAGE seconds while events keep coming, then restarted: how late those
#            events arrive, how long after its return the backlog is empty, lost and duplicated events.
# Events: an operator pauses and resumes one rollout over and over (each command is one event, applied by canaryd
# at once); real parts on loopback: HAProxy, two modelsims, canaryd (--poll 200, default back-off), a fresh database.
#   CANARY_BINARY_DIR=build-rel DATABASE_URL=$(scripts/pgtmp start) bench/notify_latency.sh [EVENTS [OUTAGE]]
#   (default 200 events, then a 10 s outage; NOTIFY_RETRY_MAX=MS sets canaryd's --notify-retry-max, default 60000)
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"

EVENTS=${1:-200}
OUTAGE=${2:-10}
[[ "$EVENTS" =~ ^[0-9]+$ ]] && [ "$EVENTS" -ge 10 ] && [ "$EVENTS" -le 5000 ] || fail "EVENTS '$EVENTS' is not in 10..5000"
[[ "$OUTAGE" =~ ^[0-9]+$ ]] && [ "$OUTAGE" -ge 1 ] && [ "$OUTAGE" -le 600 ] || fail "OUTAGE '$OUTAGE' is not in 1..600 s"
HOOKSINK=$B/tests/hooksink
[ -x "$HOOKSINK" ] || fail "'$HOOKSINK' is not built"
SINK_PORT=$(free_port)
SINK_LOG=$E2E_DIR/sink.jsonl
start_sink() {
	"$HOOKSINK" --port "$SINK_PORT" --log "$SINK_LOG" --secret bench >"$E2E_DIR/hooksink.log" 2>&1 &
	E2E_PIDS+=($!)
	SINK_PID=$!
	wait_port "$SINK_PORT" 5
}

cat >"$E2E_DIR/bench-notify.yaml" <<YAML
name: bench-notify
steps:
  - weight: 1%
    hold: 1h
  - weight: 100%
    hold: 1h
analysis:
  interval: 1s
  min_requests: 1
  inconclusive_timeout: 1h
slos:
  - name: error-rate
    metric: error_rate
    max: 50%
notify:
  - url: http://127.0.0.1:$SINK_PORT/hook
    secret_env: HOOK_SECRET
YAML
start_sink
setup_world "$E2E_DIR/bench-notify.yaml" --error-rate 0
start_load "$FE" 100 900
HOOK_SECRET=bench start_canaryd --notify-retry-max "${NOTIFY_RETRY_MAX:-60000}"
"$CTL" rollout start --service svc --candidate v2 --policy bench-notify --no-gateway-check >/dev/null
ID=$(rollout_of v2)
wait_step "$ID" 0 30

phase() { sql "SELECT phase FROM rollouts WHERE id = $ID"; }
# One event: pause or resume, whichever fits, and wait until canaryd applied it.
flip() {
	local want
	if [ "$(phase)" = paused ]; then "$CTL" rollout resume "$ID" >/dev/null; want=progressing
	else "$CTL" rollout pause "$ID" >/dev/null; want=paused; fi
	for _ in $(seq 1 100); do [ "$(phase)" = "$want" ] && return 0; sleep 0.02; done
	fail "rollout $ID did not become $want"
}
wait_drained() { # SECONDS -> prints the seconds it took
	local t0=$EPOCHREALTIME
	for _ in $(seq 1 $(($1 * 20))); do
		[ "$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")" = 0 ] &&
			{ echo "$EPOCHREALTIME $t0" | awk '{printf "%.1f", $1 - $2}'; return 0; }
		sleep 0.05
	done
	fail "the outbox was not drained within $1 s"
}
# "key created_ms" of outbox rows (SQL WHERE), joined with the receiver's first accepted time: "latency_ms" lines.
latencies() { # WHERE
	sql "SELECT key || ' ' || (extract(epoch FROM created_at) * 1000)::bigint FROM outbox WHERE $1" >"$E2E_DIR/rows"
	jq -r 'select(.status == 200) | .key + " " + (.t_ms | tostring)' "$SINK_LOG" |
		awk 'NR == FNR { if (!($1 in got)) got[$1] = $2; next } ($1 in got) { print got[$1] - $2 }' - "$E2E_DIR/rows"
}
stats() { # label (latencies on stdin)
	sort -n | awk -v l="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { printf "%s: none\n", l; exit }
		n = NR
		i50 = int(0.50 * n + 0.999); i95 = int(0.95 * n + 0.999); i99 = int(0.99 * n + 0.999)
		printf "%s: %d events, p50 %d ms, p95 %d ms, p99 %d ms, max %d ms\n", l, n, v[i50], v[i95], v[i99], v[n] }'
}

log "phase 1: $EVENTS events to a healthy receiver"
first=$(sql "SELECT coalesce(max(id), 0) FROM outbox")
for _ in $(seq 1 "$EVENTS"); do flip; done
wait_drained 60 >/dev/null
healthy=$(latencies "id > $first" | stats "healthy receiver")
last1=$(sql "SELECT max(id) FROM outbox")

log "phase 2: the receiver is down for ${OUTAGE}s while events keep coming"
kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true
down_at=$EPOCHREALTIME
while awk -v a="$EPOCHREALTIME" -v b="$down_at" -v o="$OUTAGE" 'BEGIN { exit !(a - b < o) }'; do flip; sleep 0.2; done
during=$(sql "SELECT count(*) FROM outbox WHERE id > $last1")
backlog=$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
start_sink
drain=$(wait_drained 120)
outage=$(latencies "id > $last1" | stats "written during the outage")
total=$(sql "SELECT count(*) FROM outbox")
accepted=$(jq -r 'select(.status == 200) | .key' "$SINK_LOG" | sort -u | wc -l)
dups=$(jq -r 'select(.status == 200) | .key' "$SINK_LOG" | sort | uniq -d | wc -l)
lost=$((total - accepted))
order=$(jq -r 'select(.status == 200) | .key' "$SINK_LOG" | awk '!seen[$1]++' >"$E2E_DIR/got"
	sql "SELECT key FROM outbox ORDER BY id" | cmp -s - "$E2E_DIR/got" && echo "in outbox order" || echo "OUT OF ORDER")
attempts=$(sql "SELECT max(attempts) FROM outbox")

echo "notification latency, change committed -> receiver has it (canaryd, loopback, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)):"
echo "  $healthy"
echo "  outage of ${OUTAGE}s: $during events written meanwhile, backlog $backlog at the receiver's return, drained ${drain}s after it"
echo "  $outage"
echo "  $total events in all: $lost lost, $dups accepted twice (same key), $order; at most $attempts attempts for one event"
