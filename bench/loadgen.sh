#!/usr/bin/env bash
# Benchmark: the load generator's figures (issue 12), through its CLI entry point (canaryctl preflight run --url).
#  1. Sustained rate through HAProxy on loopback in front of modelsim (--sleep 1: answers really take their time,
#     50 ms median latency, 10 ms TTFT, 16 tokens): open-loop Poisson at each rate of RATES for SECS seconds,
#     without and with streaming. Per rate: achieved rate (sent / time to the last send), errors, arrivals held
#     back by the in-flight cap (late), how far sends fell behind their schedule (send lag), client-measured latency
#     and TTFT, and canaryctl's own CPU time per request.
#  2. Client-side timing overhead against bench_fixed_server, whose latency is known and fixed (20 ms, TTFT 5 ms, 8
#     tokens): measured minus true, p50/p99 and mean, directly and through HAProxy, at OVERHEAD_RATE/s; with the
#     server's own lateness (its writes after their due time), which is part of "measured" but not the client's.
# Quantiles are the upper bounds of the generator's 4% buckets (at 20 ms a p50 may read up to 0.8 ms high); the
# means are exact. Figures only, never pass/fail. Every run is bounded (SECS seconds, 10 s request timeout).
#  1b. The generator's own ceiling: directly to modelsim answering at once, at CEILING_RATES.
# Usage: [CANARY_BINARY_DIR=build] [RATES="100 200 500 1000 2000"] [CEILING_RATES="2000 4000 8000"] [SECS=5]
#        [OVERHEAD_RATE=100] [OVERHEAD_FIFO=1 (also section 2 at SCHED_FIFO 1: root)] bench/loadgen.sh
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=${CANARY_BINARY_DIR:-$top/build}
RATES=${RATES:-100 200 500 1000 2000}
SECS=${SECS:-5}
OVERHEAD_RATE=${OVERHEAD_RATE:-100}
CEILING_RATES=${CEILING_RATES:-2000 4000 8000}
PATH=$PATH:/usr/sbin # haproxy
for f in "$B/canaryctl" "$B/tests/modelsim" "$B/bench/bench_fixed_server"; do
	[ -x "$f" ] || { echo "loadgen.sh: $f is missing; build first (scripts/build)" >&2; exit 69; }
done
command -v haproxy >/dev/null || { echo "loadgen.sh: haproxy is not installed" >&2; exit 69; }
tmp=$(mktemp -d /tmp/canary-loadgen.XXXXXX)
pids=()
PRIO=() # a prefix for the programs of a run (chrt -f 1 in section 2's fifo rows)
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start NAME CMD...: runs CMD in the background, waits for its "listening on 127.0.0.1:PORT" line, sets PORT
start() {
	local name=$1
	shift
	"$@" >"$tmp/$name.out" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do grep -q listening "$tmp/$name.out" 2>/dev/null && break; sleep 0.05; done
	PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/$name.out" | grep -o '[0-9]*$') ||
		{ echo "loadgen.sh: $name did not start:" >&2; cat "$tmp/$name.out" >&2; exit 69; }
}

# haproxy NAME BACKEND_PORT: HAProxy (2 threads, keep-alive both sides) on a free port in front of the backend; sets FE
haproxy_in_front() {
	local name=$1 be=$2
	FE=$(free_port)
	cat >"$tmp/$name.cfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    option http-no-delay    # stream events as they come: without it HAProxy holds small chunks (MSG_MORE) to the end of a stream
frontend fe
    bind 127.0.0.1:$FE
    default_backend be
backend be
    server s1 127.0.0.1:$be
CFG
	"${PRIO[@]}" haproxy -db -f "$tmp/$name.cfg" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$FE) 2>/dev/null && return 0; sleep 0.05; done
	echo "loadgen.sh: haproxy did not start (see $tmp/$name.log)" >&2
	exit 69
}

# cpu PID: its user+system CPU so far, in clock ticks (0 for no process)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# stops the servers started so far (by their pids) and forgets them
stop_servers() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}

# run URL RATE STREAM TOKENS: one canaryctl preflight run; its JSON in $tmp/run.json, its CPU seconds in $tmp/cpu
run() {
	printf 'rate: %s\nduration: %ss\nstream: %s\nendpoint: completions\nprompt_tokens: { median: 50, p99: 50 }\noutput_tokens: { median: %s, p99: %s }\ntimeout: 10s\n' \
		"$2" "$SECS" "$3" "$4" "$4" >"$tmp/p.yaml"
	"${PRIO[@]}" /usr/bin/time -f '%U %S' -o "$tmp/cpu" "$B/canaryctl" --output json preflight run --url "$1" --profile "$tmp/p.yaml" \
		>"$tmp/run.json"
}

echo "# bench/loadgen.sh on $(uname -n), $(nproc) cores, $(date -u +%FT%TZ); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# haproxy $(haproxy -v | head -1 | cut -d' ' -f3), libcurl $(curl-config --version 2>/dev/null | cut -d' ' -f2 || echo '?')"
echo
# ramp URL GEN_PID_A GEN_PID_B RATES...: a table per stream mode; the CPU columns are the generator (canaryctl, the
# whole process: start-up included), then the two server processes (HAProxy and modelsim, or modelsim alone)
ramp() {
	local url=$1 pa=$2 pb=$3 stream r
	shift 3
	for stream in false true; do
		echo "stream=$stream"
		printf '  %7s %9s %6s %6s %5s %17s %19s %19s %16s %6s\n' target achieved sent errors late \
			"send lag p50/p99" "latency p50/p99" "ttft p50/p99" "cpu us/request" load
		for r in "$@"; do
			local a0 b0 a1 b1
			a0=$(cpu "$pa") b0=$(cpu "$pb")
			run "$url" "$r" "$stream" 16
			a1=$(cpu "$pa") b1=$(cpu "$pb")
			python3 - "$tmp/run.json" "$tmp/cpu" "$r" "$((a1 - a0))" "$((b1 - b0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); c = d["candidate"]; rate = float(sys.argv[3])
u, s = (float(x) for x in open(sys.argv[2]).read().split()[-2:])
n = max(c["sent"], 1); hz = float(sys.argv[6])
cpus = f"{1e6*(u+s)/n:.0f}/{1e6*float(sys.argv[4])/hz/n:.0f}/{1e6*float(sys.argv[5])/hz/n:.0f}"
lat, lag = c["latency"] or {}, c["send_lag"] or {}
ttft = next((b["candidate"]["ttft"] for b in d["bands"] if b["candidate"]["ttft"]), None) or {}
f = lambda q, k: f"{q[k]:.1f}" if q.get(k) is not None else "-"
load = open("/proc/loadavg").read().split()[0]
print(f"  {rate:7.0f} {c['achieved_rate']:9.1f} {c['sent']:6d} {c['errors']:6d} {c['late']:5d} "
      f"{f(lag,'p50_ms')+'/'+f(lag,'p99_ms')+' ms':>17} {f(lat,'p50_ms')+'/'+f(lat,'p99_ms')+' ms':>19} "
      f"{f(ttft,'p50_ms')+'/'+f(ttft,'p99_ms')+' ms':>19} {cpus:>16} {load:>6}")
PY
		done
	done
}

echo "## 1. sustained rate through HAProxy -> modelsim (--sleep 1: latency median 50 ms sigma 0.3, TTFT 10 ms, 16 tokens), ${SECS} s per rate"
echo "(cpu us/request: the generator / HAProxy / modelsim)"
start sim "$B/tests/modelsim" --port 0 --error-rate 0 --threads 2 --sleep 1 --latency-median 0.05 --latency-sigma 0.3 \
	--ttft-median 0.01 --ttft-sigma 0.3 --tokens 16
sim_pid=${pids[-1]}
haproxy_in_front hap_sim "$PORT"
ramp "http://127.0.0.1:$FE" "${pids[-1]}" "$sim_pid" $RATES
stop_servers

echo
echo "## 1b. the generator's own ceiling: directly to modelsim answering at once (no sleep, no HAProxy), ${SECS} s per rate"
echo "(cpu us/request: the generator / modelsim / -)"
start sim "$B/tests/modelsim" --port 0 --error-rate 0 --threads 2 --tokens 16
ramp "http://127.0.0.1:$PORT" "${pids[-1]}" 0 $CEILING_RATES
stop_servers

echo
echo "## 2. client-side timing overhead: bench_fixed_server (latency 20 ms, TTFT 5 ms, 8 tokens), ${OVERHEAD_RATE}/s for ${SECS} s"
echo "(measured minus true; server late: its own writes after their due time, part of 'measured'; sched fifo: the"
echo " server, HAProxy and the generator at SCHED_FIFO 1, which takes the other processes' CPU contention out)"
printf '  %-6s %-8s %-6s %5s %28s %28s %20s\n' sched path stream ok "latency - 20ms p50/p99/mean" \
	"ttft - 5ms p50/p99/mean" "server late p50/p99"
scheds=normal
[ "${OVERHEAD_FIFO:-0}" = 1 ] && scheds="normal fifo"
for sched in $scheds; do
	PRIO=()
	[ "$sched" = fifo ] && PRIO=(chrt -f 1)
	for via in direct haproxy; do
		for stream in false true; do
			start fixed "${PRIO[@]}" "$B/bench/bench_fixed_server" --port 0 --latency 0.020 --ttft 0.005 --tokens 8
			sport=$PORT
			url="http://127.0.0.1:$sport"
			if [ "$via" = haproxy ]; then
				haproxy_in_front "hap_fixed" "$sport"
				url="http://127.0.0.1:$FE"
			fi
			run "$url" "$OVERHEAD_RATE" "$stream" 8
			python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$sport/stats').read().decode())" \
				>"$tmp/stats.json"
			python3 - "$tmp/run.json" "$tmp/stats.json" "$sched" "$via" "$stream" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); st = json.load(open(sys.argv[2])); c = d["candidate"]
lat = c["latency"] or {}
ttft = next((b["candidate"]["ttft"] for b in d["bands"] if b["candidate"]["ttft"]), None)
def over(q, true):
    return "-" if not q else f"+{q['p50_ms']-true:.2f}/+{q['p99_ms']-true:.2f}/+{q['mean_ms']-true:.2f} ms"
late = st["late_last_us"]
print(f"  {sys.argv[3]:<6} {sys.argv[4]:<8} {sys.argv[5]:<6} {c['ok']:5d} {over(lat, 20):>28} {over(ttft, 5):>28} "
      f"{late['p50']/1e3:>8.2f}/{late['p99']/1e3:.2f} ms")
PY
			stop_servers
		done
	done
done
PRIO=()
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
