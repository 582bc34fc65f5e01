#!/usr/bin/env bash
# Benchmark: tick lateness of many healthy rollouts on one canaryd while one rollout's metrics endpoint hangs.
# Prints figures, never pass/fail (goal: p99 lateness under one interval, 1s here).
#   N services on one HAProxy (one backend each), N rollouts on one canaryd (--poll 200), policy interval 1s.
#   Every slot's /metrics is one of two modelsims, except the candidate slot of rollout 1, which is a socket that
#   accepts connections and never answers (its service's metrics.timeout is 20s).
#   Lateness of a tick = (time since the rollout's previous tick) - interval, from the audit's tick events (the
#   database's clock), over a window of SECONDS after every rollout has ticked once.
#   At the end the hung rollout is aborted: the time until canaryctl returns and until HAProxy carries weight 0.
#   CANARY_BINARY_DIR=build DATABASE_URL=$(scripts/pgtmp start DIR) bench/scrape_lateness.sh [N] [SECONDS]
# A sanitizer build measures the sanitizer too: use a Release build for figures that mean something.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"

N=${1:-200}
SECS=${2:-60}
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 2 ] && [ "$N" -le 1000 ] || fail "N '$N' is not a number in 2..1000"
[[ "$SECS" =~ ^[0-9]+$ ]] && [ "$SECS" -ge 5 ] && [ "$SECS" -le 3600 ] || fail "SECONDS '$SECS' is not in 5..3600"
command -v python3 >/dev/null || fail "python3 is needed for the hung endpoint"

fresh_db
BLUE=$(free_port); GREEN=$(free_port); HUNG=$(free_port); ADMIN=$(free_port)
start_modelsim blue "$BLUE" --error-rate 0 --latency-median 0.05 --seed 1
start_modelsim green "$GREEN" --error-rate 0 --latency-median 0.05 --seed 2
# A metrics endpoint that hangs: the kernel completes every connection into the listen backlog, nobody reads.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096); time.sleep(3600)' "$HUNG" &
E2E_PIDS+=($!)
wait_port "$HUNG"

{
	printf 'global\n    maxconn 4096\n    stats socket ipv4@127.0.0.1:%s level admin\n' "$ADMIN"
	printf 'defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n'
	for ((i = 1; i <= N; i++)); do
		printf 'backend svc%d\n    server blue 127.0.0.1:%s weight 256\n    server green 127.0.0.1:%s weight 0\n' \
			"$i" "$BLUE" "$GREEN"
	done
} >"$E2E_DIR/haproxy.cfg"
haproxy -db -f "$E2E_DIR/haproxy.cfg" >"$E2E_DIR/haproxy.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$ADMIN"

cat >"$E2E_DIR/lateness.yaml" <<'YAML'
name: lateness
description: "an hour per step: every rollout just ticks once a second"
steps:
  - weight: 1%
    hold: 1h
  - weight: 100%
    hold: 1h
analysis:
  interval: 1s
  min_requests: 1
  inconclusive_timeout: 1h
  on_inconclusive: pause
slos:
  - name: error-rate
    metric: error_rate
    max: 50%
YAML
"$CTL" migrate >/dev/null
"$CTL" policy apply "$E2E_DIR/lateness.yaml" >/dev/null
log "applying $N services and starting $N rollouts"
for ((i = 1; i <= N; i++)); do
	green_url="http://127.0.0.1:$GREEN/metrics" timeout=2s
	if [ "$i" -eq 1 ]; then green_url="http://127.0.0.1:$HUNG/metrics" timeout=20s; fi
	cat >"$E2E_DIR/svc.yaml" <<YAML
name: svc$i
gateway: { kind: haproxy, runtime_api: "127.0.0.1:$ADMIN", backend: svc$i, timeout: 2s }
slots:
  blue:  { server: blue,  metrics_url: "http://127.0.0.1:$BLUE/metrics" }
  green: { server: green, metrics_url: "$green_url" }
live: blue
metrics: { source: scrape, preset: vllm, timeout: $timeout }
YAML
	"$CTL" service apply "$E2E_DIR/svc.yaml" >/dev/null 2>>"$E2E_DIR/cli.log" || fail "service apply svc$i failed"
	"$CTL" rollout start --service "svc$i" --candidate "v$i" --policy lateness >/dev/null 2>>"$E2E_DIR/cli.log" ||
		fail "rollout start on svc$i failed"
done
hung_id=$(sql "SELECT id FROM rollouts WHERE service = 'svc1'")

start_canaryd --lease 15000
for _ in $(seq 1 600); do
	[ "$(sql "SELECT count(DISTINCT rollout_id) FROM audit_events WHERE kind = 'tick'")" -ge "$N" ] && break
	sleep 0.1
done
ticked=$(sql "SELECT count(DISTINCT rollout_id) FROM audit_events WHERE kind = 'tick'")
[ "$ticked" -ge "$N" ] || fail "only $ticked of $N rollouts ticked within 60s"
t0=$(sql "SELECT clock_timestamp()")
log "all $N rollouts tick; measuring for ${SECS}s"
sleep "$SECS"
t1=$(sql "SELECT clock_timestamp()")

echo "tick lateness, $N rollouts on one canaryd, interval 1s, one metrics endpoint hanging (timeout 20s), ${SECS}s:"
q="WITH t AS (SELECT rollout_id, at, lag(at) OVER (PARTITION BY rollout_id ORDER BY id) AS prev
             FROM audit_events WHERE kind = 'tick' AND at > '$t0'::timestamptz - interval '5 s')
   SELECT rollout_id = $hung_id AS hung, extract(epoch FROM at - prev) * 1000 - 1000 AS late_ms
   FROM t WHERE prev IS NOT NULL AND at > '$t0' AND at <= '$t1'"
sql "WITH l AS ($q)
     SELECT 'healthy: ticks=' || count(*) || '  lateness p50=' ||
            round(percentile_cont(0.5) WITHIN GROUP (ORDER BY late_ms)::numeric) || 'ms  p90=' ||
            round(percentile_cont(0.9) WITHIN GROUP (ORDER BY late_ms)::numeric) || 'ms  p99=' ||
            round(percentile_cont(0.99) WITHIN GROUP (ORDER BY late_ms)::numeric) || 'ms  max=' ||
            round(max(late_ms)::numeric) || 'ms  (goal p99 < 1000ms)'
     FROM l WHERE NOT hung"
sql "WITH l AS ($q)
     SELECT 'hung:    ticks=' || count(*) || '  gap between ticks p50=' ||
            coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY late_ms + 1000)::numeric)::text, '-') ||
            'ms (its own 20s timeout, inconclusive)'
     FROM l WHERE hung"
expected=$((N * SECS))
echo "ticks expected at 1/s for the healthy ones: $((expected - SECS)); lease.lost in canaryd's log: $(grep -c '"event":"lease.lost"' "$E2E_DIR/canaryd.log" || true)"

# Where the database's time goes (only when the server tracks functions: ALTER SYSTEM SET track_functions = 'pl').
sql "SELECT 'database: ' || string_agg(funcname || ' ' || calls || ' calls, ' || round((self_time / calls)::numeric, 2)
            || ' ms each', '; ' ORDER BY self_time DESC)
     FROM (SELECT * FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 4) f" | grep -v '^database: $' || true
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"

# Abort the hung rollout while its scrape is in flight.
a0=$(date +%s%N)
"$CTL" rollout abort "$hung_id" --reason "bench: hung metrics" >/dev/null 2>>"$E2E_DIR/cli.log" || fail "abort failed"
a1=$(date +%s%N)
for _ in $(seq 1 1000); do
	w=$(hap "$ADMIN" "get weight svc1/green" | awk '{print $1}')
	[ "$w" = 0 ] && break
	sleep 0.01
done
a2=$(date +%s%N)
[ "$w" = 0 ] || fail "the hung rollout's candidate still has weight $w after its abort"
echo "abort of the hung rollout: canaryctl returned in $(((a1 - a0) / 1000000))ms; weight 0 on HAProxy after $(((a2 - a0) / 1000000))ms"
