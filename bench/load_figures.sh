#!/usr/bin/env bash
# Benchmark: the load generator's figures (issue 12). Against modelsim on loopback, directly (no HAProxy):
#  1. sustained rate: open-loop Poisson at 1,000, 2,000 and 4,000 requests/s for 5 s each, answers at once;
#  2. client-side timing overhead: a server with a fixed 50 ms latency (--sleep 1, sigma 0) at 100/s for 5 s,
#     streaming and not; overhead = measured p50/p99 - 50 ms.
# Prints figures, never pass/fail. Usage: CANARY_BINARY_DIR=build-h12 bench/load_figures.sh
set -euo pipefail
B=${CANARY_BINARY_DIR:-build}
tmp=$(mktemp -d /tmp/canary-loadbench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
sim() {
	[ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
	"$B/tests/modelsim" --port 0 --error-rate 0 --threads 2 "$@" >"$tmp/sim.out" &
	pid=$!
	for _ in $(seq 50); do grep -q listening "$tmp/sim.out" 2>/dev/null && break; sleep 0.1; done
	port=$(grep -o '[0-9]*$' "$tmp/sim.out")
}
run() { # rate stream
	printf 'rate: %s\nduration: 5s\nstream: %s\nprompt_tokens: { median: 50, p99: 400 }\noutput_tokens: { median: 16, p99: 16 }\n' \
		"$1" "$2" >"$tmp/p.yaml"
	"$B/canaryctl" --output json preflight run --url "http://127.0.0.1:$port" --profile "$tmp/p.yaml"
}
echo "sustained rate (5 s, open loop, modelsim answers at once):"
sim --tokens 16
for r in 1000 2000 4000; do
	run "$r" false | python3 -c "import json,sys; d=json.load(sys.stdin); print(f\"  target {d['rate']:>6.0f}/s: achieved {d['achieved_rate']:7.1f}/s, {d['ok']} ok, {d['errors']} errors\")"
done
echo "client-side timing overhead against a fixed 50 ms server (100/s, 5 s):"
sim --sleep 1 --latency-median 0.05 --latency-sigma 0 --ttft-median 0.01 --ttft-sigma 0 --tokens 16
for s in false true; do
	run 100 "$s" | python3 -c "
import json,sys
d=json.load(sys.stdin); lat=[b['latency'] for b in d['bands'] if b['latency']]
p50=max(l['p50_ms'] for l in lat); p99=max(l['p99_ms'] for l in lat)
print(f\"  stream={'$s':5}: {d['ok']} ok, latency p50 {p50:.1f} ms (+{p50-50:.1f}), p99 {p99:.1f} ms (+{p99-50:.1f})\")"
done
