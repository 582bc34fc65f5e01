#!/usr/bin/env bash
# e2e: a missed SLA window is notified once (issue 14: SLA window missed). The service file carries its contract
# (sla: p99 latency <= 800 ms per 5-minute window) and a webhook for sla_window_missed; two daemons observe it with
# a 1-second ledger minute (CANARY_TEST_SLA_MINUTE_MS, tests only; a window is 5 such minutes). The live slot is slow
# (median 1.5 s) for about 12 s in the middle of the run. Checks: the slow stretch gives several slow minutes but
# one event per missed window (never one per minute, never twice from two daemons), each window 5 minutes long on
# a 5-minute boundary, recorded with its minute (the window's last minute is in the ledger); the receiver accepted
# each key and the body names the contract, the objective, the window and its p99 against the limit. Also: the
# daemons prune a ledger minute of 400 days ago at their start (--sla-retention 396 by default), audited.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

HOOKSINK=$B/tests/hooksink
[ -x "$HOOKSINK" ] || fail "'$HOOKSINK' is not built; run scripts/build first"
SINK_PORT=$(free_port)
SINK_LOG=$E2E_DIR/sink.jsonl
"$HOOKSINK" --port "$SINK_PORT" --log "$SINK_LOG" --secret unused >"$E2E_DIR/hooksink.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$SINK_PORT" 5

setup_world
cat >>"$E2E_DIR/service.yaml" <<YAML
notify:
  - url: http://127.0.0.1:$SINK_PORT/sla
    events: [sla_window_missed]
    timeout: 1s
sla:
  name: gold
  no_data: exclude
  objectives:
    - { name: p99-latency, metric: latency, quantile: 0.99, max: 800ms, window: 5m, target: 99% }
YAML
"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
# Retention (canaryd --sla-retention, default 396 days): a minute of 400 days ago goes when the daemons start, one of
# 300 days ago stays.
sql "SELECT canary.sla_record('svc', date_trunc('minute', now()) - interval '400 days', 1, 0, NULL, NULL, NULL, NULL, NULL),
            canary.sla_record('svc', date_trunc('minute', now()) - interval '300 days', 1, 0, NULL, NULL, NULL, NULL, NULL)" >/dev/null
export CANARY_TEST_SLA_MINUTE_MS=1000
start_canaryd --id a
start_canaryd --id b --no-notify
start_load "$FE" 200 36
sleep 10
modelsim_admin "$BLUE" '{"latency_median":1.5}'
log "blue slow"
sleep 12
modelsim_admin "$BLUE" '{"latency_median":0.05}'
log "blue fast again"
sleep 12

[ "$(sql "SELECT count(*) FROM sla_minutes WHERE minute < now() - interval '396 days'")" = 0 ] || fail "canaryd kept a minute of 400 days ago"
[ "$(sql "SELECT count(*) FROM sla_minutes WHERE minute < now() - interval '299 days'")" = 1 ] || fail "canaryd deleted a minute of 300 days ago"
[ "$(sql "SELECT sum((data->>'rows')::int) FROM audit_events WHERE kind = 'sla.retention' AND (data->>'keep_days')::int = 396")" = 1 ] ||
	fail "the retention is not audited once with its row: $(sql "SELECT data FROM audit_events WHERE kind = 'sla.retention'")"
sql "SELECT to_char(m.minute AT TIME ZONE 'UTC', 'HH24:MI:SS'), m.requests,
        round(coalesce((SELECT sum(c) FROM unnest(m.lat[(SELECT count(*) FROM unnest(b.le) x WHERE x <= 0.8) + 1:]) c), 0)::numeric
              / nullif((SELECT sum(c) FROM unnest(m.lat) c), 0), 2)
     FROM sla_minutes m LEFT JOIN sla_bounds b ON b.id = m.lat_bounds ORDER BY m.minute" >"$E2E_DIR/ledger.txt"
slow=$(awk -F'|' '$3 != "" && $3 > 0.05' "$E2E_DIR/ledger.txt" | wc -l)
misses=$(sql "SELECT count(*) FROM sla_window_misses WHERE service = 'svc'")
sql "SELECT objective, to_char(window_start AT TIME ZONE 'UTC', 'HH24:MI:SS'), to_char(window_end AT TIME ZONE 'UTC', 'HH24:MI:SS'), data->>'value_text', data->>'state' FROM sla_window_misses ORDER BY window_start" >&2
log "$slow slow ledger minutes, $misses missed windows"
[ "$slow" -ge 6 ] || fail "only $slow slow minutes in a 12 s slow stretch of 1 s minutes: $(cat "$E2E_DIR/ledger.txt")"
[ "$misses" -ge 2 ] && [ "$misses" -le 4 ] || fail "$misses missed windows for a 12 s slow stretch of 5 s windows"
[ "$misses" -lt "$slow" ] || fail "$misses events for $slow slow minutes: one per minute, not per window"
[ "$(sql "SELECT count(*) FROM sla_window_misses WHERE (extract(epoch FROM window_start) * 1000)::bigint % 5000 <> 0
            OR window_end - window_start <> interval '5 s'")" = 0 ] || fail "a window is not 5 minutes on a 5-minute boundary"
[ "$(sql "SELECT count(*) FROM sla_window_misses w WHERE NOT EXISTS (SELECT 1 FROM sla_minutes m WHERE m.service = w.service
            AND m.minute = w.window_end - interval '1 s')")" = 0 ] || fail "a missed window without its last minute in the ledger"
[ "$(sql "SELECT count(*) FROM audit_events WHERE kind = 'sla.window_missed'")" = "$misses" ] || fail "audit events are not one per window"
rows=$(sql "SELECT count(*) FROM outbox WHERE event = 'sla_window_missed'")
[ "$rows" = "$misses" ] || fail "$rows outbox rows for $misses missed windows"
for _ in $(seq 1 50); do
	[ "$(sql "SELECT count(*) FROM outbox WHERE delivered_at IS NULL")" = 0 ] && break
	sleep 0.2
done
got=$(jq -r 'select(.path == "/sla" and .status == 200) | .key' "$SINK_LOG" | sort -u | wc -l)
[ "$got" = "$misses" ] || fail "the receiver accepted $got keys for $misses missed windows"
dupwin=$(jq -r 'select(.path == "/sla" and .status == 200) | .body | fromjson | .sla.window_start' "$SINK_LOG" | sort | uniq -c | awk '$1 > 1')
[ -z "$dupwin" ] || log "note: a window delivered more than once (the same key, at least once): $dupwin"
b=$(jq -c 'select(.path == "/sla" and .status == 200) | .body | fromjson' "$SINK_LOG" | head -1)
jq -e '.event == "sla_window_missed" and .service == "svc" and .sla.contract == "gold" and .sla.objective == "p99-latency"
       and .sla.state == "missed" and .sla.value > 0.8 and .sla.limit == 0.8 and .sla.bad > 0 and (.sla.window_start | type == "string")' <<<"$b" >/dev/null ||
	fail "the body lacks the window's numbers: $b"
log "first body: $(jq -c .sla <<<"$b")"
# The report without --contract judges the service's own sla: section, and sees the windows canaryd told about.
MONTH=$(sql "SELECT to_char(max(minute) AT TIME ZONE 'UTC', 'YYYY-MM') FROM sla_minutes")
"$CTL" --output json sla report --service svc --month "$MONTH" >"$E2E_DIR/report.json" || fail "sla report without --contract exited $?"
[ "$(jq -r '.objectives[0].name' "$E2E_DIR/report.json")" = p99-latency ] || fail "the report did not use the service's contract: $(head -c 300 "$E2E_DIR/report.json")"
# (its windows are real 5-minute ones over the test's 1-s rows, still pending: only the contract is compared)
jq -e '.objectives | length == 1' "$E2E_DIR/report.json" >/dev/null || fail "the report has other objectives"
log "PASS: $slow slow minutes made $misses missed 5-minute windows, each notified once"
