#!/usr/bin/env bash
# Benchmark: the SLA ledger's storage per service-month and the report's run time for one service-month. Prints
# figures, never pass/fail.
#   A fresh database gets one service and one month (2026-11: 30 days, 43,200 minutes) recorded through
#   canary.sla_record as the controller role, as canaryd records them: per minute REQ requests (+-10%), 0.1% errors,
#   vLLM's e2e latency histogram (22 buckets) for a log-normal latency (median 2.5 s, sigma 0.6) and its TTFT
#   histogram (23 buckets; median 150 ms, sigma 0.5), one window in 50 ten times slower.
#   Then: the table's size in bytes (heap, TOAST and index), bytes per row, the ledger query alone (psql), and
#   `canaryctl sla report` for the month (text, json, csv, html; RUNS runs each, the median and the slowest) against a
#   contract for that service (p99 <= 15 s per 5 minutes, TTFT p95 <= 500 ms per hour, availability >= 99.8%).
#   CANARY_BINARY_DIR=build-rel DATABASE_URL=$(scripts/pgtmp start) bench/sla_month.sh [RUNS [REQ]]
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"

RUNS=${1:-5}
REQ=${2:-1000}
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 100 ] || fail "RUNS '$RUNS' is not in 1..100"
[[ "$REQ" =~ ^[0-9]+$ ]] && [ "$REQ" -ge 1 ] && [ "$REQ" -le 10000000 ] || fail "REQ '$REQ' is not in 1..10000000"
fresh_db
"$CTL" migrate >/dev/null
"$CTL" service apply "$E2E_TOP/policies/demo-service.yaml" >/dev/null 2>&1

# Bucket shares of a log-normal distribution (python3's math.erf), as SQL arrays.
shares() { # MEDIAN SIGMA BOUNDS...
	python3 - "$@" <<'PY'
import math, sys
med, sig = float(sys.argv[1]), float(sys.argv[2])
les = [float(x) for x in sys.argv[3:]]
cdf = lambda x: 0.5 * (1 + math.erf((math.log(x) - math.log(med)) / (sig * math.sqrt(2))))
prev, out = 0.0, []
for le in les:
    c = cdf(le)
    out.append(c - prev)
    prev = c
out.append(1 - prev)
print("{" + ",".join("%.9f" % v for v in out) + "}")
PY
}
LAT_LE="0.3 0.5 0.8 1.0 1.5 2.0 2.5 5.0 10.0 15.0 20.0 30.0 40.0 50.0 60.0 120.0 240.0 480.0 960.0 1920.0 7680.0"
TTFT_LE="0.001 0.005 0.01 0.02 0.04 0.06 0.08 0.1 0.25 0.5 0.75 1.0 2.5 5.0 7.5 10.0 20.0 40.0 80.0 160.0 640.0 2560.0"
lat=$(shares 2.5 0.6 $LAT_LE); slow=$(shares 25 0.6 $LAT_LE); ttft=$(shares 0.15 0.5 $TTFT_LE)
lat_le="{$(echo $LAT_LE | tr ' ' ,),Infinity}"; ttft_le="{$(echo $TTFT_LE | tr ' ' ,),Infinity}"
counts() { # SHARES_SQL N_SQL: per-bucket counts of N requests, each bucket +-10%, trailing empty buckets left out
	local a="(SELECT array_agg(round(s * $2 * (0.9 + 0.2 * random()))::int ORDER BY k) FROM unnest('$1'::float8[]) WITH ORDINALITY u(s, k))"
	echo "(SELECT a[1:coalesce((SELECT max(k) FROM unnest(a) WITH ORDINALITY v(c, k) WHERE c > 0), 0)] FROM (SELECT $a AS a) z)"
}
t0=$(date +%s.%N)
sql "SET ROLE canary_controller;
     SELECT count(*) FILTER (WHERE canary.sla_record('demo', '2026-11-01T00:00:00Z'::timestamptz + i * interval '1 minute',
         n, round(n * 0.001 * random() * 2)::bigint, '$lat_le'::float8[],
         CASE WHEN (i / 5) % 50 = 7 THEN $(counts "$slow" n) ELSE $(counts "$lat" n) END,
         '$ttft_le'::float8[], $(counts "$ttft" n), NULL))
     FROM (SELECT i, round($REQ * (0.9 + 0.2 * random()))::bigint AS n FROM generate_series(0, 43199) i) x" >"$E2E_DIR/fill.txt"
t1=$(date +%s.%N)
rows=$(sql "SELECT count(*) FROM sla_minutes")
sql "VACUUM ANALYZE sla_minutes" 2>/dev/null || psql -qAt "$DATABASE_URL" -c "VACUUM ANALYZE sla_minutes"
total=$(sql "SELECT pg_total_relation_size('sla_minutes')")
heap=$(sql "SELECT pg_relation_size('sla_minutes')")
idx=$(sql "SELECT pg_indexes_size('sla_minutes')")
avg_lat=$(sql "SELECT round(avg(array_length(lat, 1)), 1) FROM sla_minutes")
avg_ttft=$(sql "SELECT round(avg(array_length(ttft, 1)), 1) FROM sla_minutes")
printf 'rows: %s (one service-month); filled through canary.sla_record in %.1f s\n' "$rows" "$(echo "$t1 - $t0" | bc)"
printf 'sla_minutes: %s bytes total (heap %s, indexes %s), %s bytes per row; stored buckets per row: latency %s of 22, ttft %s of 23\n' \
	"$total" "$heap" "$idx" "$((total / rows))" "$avg_lat" "$avg_ttft"

time_runs() { # LABEL ARGS...
	local label=$1 i s e ms=()
	shift
	for i in $(seq 1 "$RUNS"); do
		s=$(date +%s%N)
		"$CTL" "$@" >/dev/null || fail "canaryctl $* failed"
		e=$(date +%s%N)
		ms+=($(((e - s) / 1000000)))
	done
	printf '%s\n' "${ms[@]}" | sort -n | awk -v l="$label" '{a[NR] = $1} END { printf "report %-5s median %d ms, slowest %d ms (%d runs)\n", l, a[int((NR + 1) / 2)], a[NR], NR }'
}
C=$E2E_DIR/contract.yaml
cat >"$C" <<YAML
name: bench
service: demo
price: 12000
objectives:
  - { name: p99-latency, metric: latency, quantile: 0.99, max: 15s, window: 5m, target: 99% }
  - { name: p95-ttft, metric: ttft, quantile: 0.95, max: 500ms, window: 1h, target: 99% }
  - { name: availability, metric: availability, min: 99.8% }
credits:
  - { below: 99.9%, credit: 10% }
  - { below: 99%, credit: 25% }
  - { below: 95%, credit: 100% }
YAML
q0=$(date +%s%N)
psql -qAt "$DATABASE_URL" -c "SELECT (extract(epoch FROM minute) * 1000000)::bigint, requests, errors, lat_bounds, lat::text,
    ttft_bounds, ttft::text, note FROM sla_minutes WHERE service = 'demo' ORDER BY minute" >"$E2E_DIR/rows.txt"
q1=$(date +%s%N)
printf 'the ledger query alone (psql, %s bytes of text): %d ms\n' "$(stat -c %s "$E2E_DIR/rows.txt")" $(((q1 - q0) / 1000000))
time_runs text sla report --service demo --month 2026-11 --contract "$C"
time_runs json --output json sla report --service demo --month 2026-11 --contract "$C"
time_runs csv sla report --service demo --month 2026-11 --contract "$C" --output csv
time_runs html sla report --service demo --month 2026-11 --contract "$C" --output csv --html "$E2E_DIR/sla.html"
printf 'html page: %s bytes\n' "$(stat -c %s "$E2E_DIR/sla.html")"
TIMEFORMAT='%R %U %S'
cpu=$({ time "$CTL" --output json sla report --service demo --month 2026-11 --contract "$C" >/dev/null; } 2>&1)
read -r wall usr sys <<<"$cpu"
printf 'one json report: %s s wall, canaryctl CPU %s s user + %s s system (the rest is the database and the wait)\n' \
	"$wall" "$usr" "$sys"
"$CTL" sla report --service demo --month 2026-11 --contract "$C" | sed -n 1,8p
