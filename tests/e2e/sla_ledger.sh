#!/usr/bin/env bash
# e2e: canaryd records the SLA ledger from real simulators under real traffic. Two daemons observe one service with
# a 2-second ledger minute (CANARY_TEST_SLA_MINUTE_MS, tests only): every minute is recorded once (their counts of
# recorded minutes add up to the rows), each row's requests match the load, a latency regression shows as slow
# minutes, the live slot's server killed and restarted leaves minutes without numbers with the reason, and
# `canaryctl sla report` judges the month from those rows (its totals are the rows' sums).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
BLUE_PID=${E2E_PIDS[0]}
export CANARY_TEST_SLA_MINUTE_MS=2000
HA=$(free_port); HB=$(free_port)
start_canaryd --listen "127.0.0.1:$HA" --id a
PID_A=$CANARYD_PID
start_canaryd --listen "127.0.0.1:$HB" --id b --no-notify
PID_B=$CANARYD_PID
RATE=200
start_load "$FE" $RATE 34
sleep 12
modelsim_admin "$BLUE" '{"latency_median":1.5}'      # a regression on the live slot: p99 far above 800 ms
log "blue slow"
sleep 8
kill "$BLUE_PID"; wait "$BLUE_PID" 2>/dev/null || true  # the live slot's server goes away ...
log "blue killed"
sleep 4
start_modelsim blue "$BLUE" --error-rate 0.005 --latency-median 0.2 --seed 3   # ... and comes back, counters at 0
log "blue back"
sleep 8
# the observer is its own thread, named, that gives way to the loop: nice 5 where the loop runs at 0
sla_tid=$(grep -lx canaryd-sla /proc/"$PID_A"/task/*/comm | head -1 | cut -d/ -f5)
[ -n "$sla_tid" ] || fail "canaryd has no thread named canaryd-sla: $(cat /proc/"$PID_A"/task/*/comm | tr '\n' ' ')"
nice_of() { awk '{sub(/^.*\) /, ""); print $17}' "/proc/$PID_A/task/$1/stat"; }
[ "$(nice_of "$sla_tid")" = 5 ] && [ "$(nice_of "$PID_A")" = 0 ] ||
	fail "the SLA observer's nice is $(nice_of "$sla_tid") and the loop's $(nice_of "$PID_A"), not 5 and 0"
metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k {print $2}'; }
[ -n "$(metric "$HA" 'canaryd_sla_minutes_total{data="yes"}')" ] || fail "canaryd's /metrics has no canaryd_sla_minutes_total"
kill "$LOAD_PID" 2>/dev/null || true
# Both daemons stop; each says how many minutes it recorded (the first record of a minute wins).
kill -TERM "$PID_A" "$PID_B"
wait "$PID_A" "$PID_B" 2>/dev/null || true
stopped() { grep '"event":"stopped"' "$E2E_DIR/canaryd.log" | jq -r "select(.owner == \"$1\") | .$2"; }
ra=$(stopped a sla_minutes); rb=$(stopped b sla_minutes)
na=$(stopped a sla_minutes_no_data); nb=$(stopped b sla_minutes_no_data)
rows=$(sql "SELECT count(*) FROM sla_minutes WHERE service = 'svc'")
data=$(sql "SELECT count(*) FROM sla_minutes WHERE service = 'svc' AND requests IS NOT NULL")
log "rows $rows (with numbers $data); daemon a recorded $ra + $na, daemon b $rb + $nb"
[ "$rows" -ge 10 ] || fail "only $rows ledger minutes in ~32 s of 2 s minutes"
[ $((ra + rb)) -eq "$data" ] && [ $((na + nb)) -eq $((rows - data)) ] ||
	fail "the daemons recorded $((ra + rb)) + $((na + nb)) minutes for $data + $((rows - data)) rows: a minute counted twice or lost"
[ "$(sql "SELECT count(*) FROM sla_minutes WHERE (extract(epoch FROM minute) * 1000)::bigint % 2000 <> 0")" -eq 0 ] ||
	fail "a row's minute is not on a 2 s boundary"

# Each minute with numbers saw about RATE x 2 s requests (all to the live slot; loadgen is open-loop).
med=$(sql "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY requests) FROM sla_minutes WHERE requests IS NOT NULL")
log "median requests per recorded minute: $med (load $RATE/s x 2 s = $((RATE * 2)))"
[ "$med" -ge $((RATE * 2 * 7 / 10)) ] && [ "$med" -le $((RATE * 2 * 13 / 10)) ] ||
	fail "median $med requests per minute, expected about $((RATE * 2))"

# Fast minutes before the regression, slow ones during it (from the stored bucket counts: the share above 1 s).
sql "SELECT to_char(m.minute AT TIME ZONE 'UTC', 'HH24:MI:SS'), m.requests, m.errors,
        round(coalesce((SELECT sum(c) FROM unnest(m.lat[(SELECT count(*) FROM unnest(b.le) x WHERE x <= 1) + 1:]) c), 0)::numeric
              / nullif((SELECT sum(c) FROM unnest(m.lat) c), 0), 2), m.note, m.lat::text
     FROM sla_minutes m LEFT JOIN sla_bounds b ON b.id = m.lat_bounds ORDER BY m.minute" >"$E2E_DIR/ledger.txt"
cat "$E2E_DIR/ledger.txt" >&2
slow=$(awk -F'|' '$4 != "" && $4 > 0.5' "$E2E_DIR/ledger.txt" | wc -l)
fast=$(awk -F'|' '$4 != "" && $4 < 0.05' "$E2E_DIR/ledger.txt" | wc -l)
[ "$slow" -ge 2 ] && [ "$fast" -ge 3 ] || fail "$fast fast and $slow slow minutes, expected >= 3 and >= 2"
# The live slot's server away and back: minutes without numbers, with the reason.
sql "SELECT note FROM sla_minutes WHERE requests IS NULL" | grep -c '^live slot blue: ' >/dev/null ||
	fail "no minute without numbers names the live slot's failure"

# The report: a month-long p99 objective attains the share of requests under 800 ms; availability is the rows'.
MONTH=$(sql "SELECT to_char(min(minute) AT TIME ZONE 'UTC', 'YYYY-MM') FROM sla_minutes")
cat >"$E2E_DIR/contract.yaml" <<YAML
name: e2e
service: svc
price: 100
no_data: exclude
objectives:
  - { name: p99, metric: latency, quantile: 0.99, max: 800ms }
  - { name: p99-per-minute, metric: latency, quantile: 0.99, max: 800ms, window: 1m, target: 50% }
  - { name: availability, metric: availability, min: 99% }
credits:
  - { below: 99%, credit: 10% }
YAML
"$CTL" --output json sla report --service svc --month "$MONTH" --contract "$E2E_DIR/contract.yaml" >"$E2E_DIR/report.json" ||
	fail "sla report exited $?"
jq -c '.objectives[] | {name, attainment, ok, total, bad, met, missed, no_data}' "$E2E_DIR/report.json" >&2
want=$(sql "SELECT sum(requests) FROM sla_minutes WHERE requests IS NOT NULL AND to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM') = '$MONTH'")
[ "$(jq '.objectives[2].total' "$E2E_DIR/report.json")" = "$want" ] || fail "availability total is not the rows' $want"
jq -e '.objectives[0] | .ok == false and .attainment > 0.1 and .attainment < 0.95' "$E2E_DIR/report.json" >/dev/null ||
	fail "the month-long p99 objective should be missed with a partial attainment"
jq -e '.objectives[2] | .ok == true and .attainment > 0.98' "$E2E_DIR/report.json" >/dev/null ||
	fail "availability should be met (0.5% errors)"
jq -e '.credit == 0.1 and .credit_from == "p99"' "$E2E_DIR/report.json" >/dev/null || fail "credit should be 10% (p99)"
"$CTL" sla report --service svc --month "$MONTH" --contract "$E2E_DIR/contract.yaml" --html "$E2E_DIR/sla.html" >&2
grep -q 'id="chart-p99-per-minute"' "$E2E_DIR/sla.html" || fail "the HTML page has no chart of the windowed objective"
log "PASS: the ledger recorded $rows minutes once each from two daemons; the report judged them"
