#!/usr/bin/env bash
# Benchmark: what the test rig carries. Two model-server simulators behind a real HAProxy (roundrobin, equal
# weights) on loopback, driven for 10 s by wrk (closed loop, as fast as it goes) and by loadgen at 2,500 requests/s
# (open loop, the e2e tests' tool). Prints figures, never pass/fail (the control-loop issue asks for >= 2,000/s).
#   CANARY_BINARY_DIR=build DATABASE_URL=... bench/sim_throughput.sh
# (DATABASE_URL is only needed because the shared e2e library checks it; nothing is written.)
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"
FE=$(free_port); ADMIN=$(free_port); BLUE=$(free_port); GREEN=$(free_port)
start_modelsim blue "$BLUE"
start_modelsim green "$GREEN"
start_haproxy svc "$FE" "$ADMIN" "$BLUE" "$GREEN"
hap "$ADMIN" "set server svc/green weight 256" >/dev/null
if command -v wrk >/dev/null; then
	echo "wrk -t2 -c32 -d10s through HAProxy:"
	wrk -t2 -c32 -d10s "http://127.0.0.1:$FE/" | grep -E "Requests/sec|requests in"
fi
echo "loadgen --rate 2500 --duration 10 through HAProxy:"
"$LOADGEN" --url "http://127.0.0.1:$FE/" --rate 2500 --duration 10 --concurrency 32 |
	jq -c '{sent, completed, transport_errors, rate, served_by, latency_ms}'
