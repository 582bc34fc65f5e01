#!/usr/bin/env bash
# Benchmark: how fast an operator's command reaches the gateway. Prints figures, never pass/fail (goal: p99 <= 200ms).
#   approve: from launching `canaryctl rollout approve ID` (a rollout awaiting approval of its first step) until
#            HAProxy's runtime API reports a non-zero weight for the candidate's server;
#   abort:   from launching `canaryctl rollout abort ID` (the same rollout, now at 1%) until it reports weight 0.
# Each run starts a rollout, waits until it awaits approval, approves (timed), waits until it progresses, aborts
# (timed). HAProxy is polled with `get weight` every 2ms, without forking (bash's /dev/tcp and read -t).
# Real parts on loopback: HAProxy, two modelsims with light load, canaryd (--poll 200), a fresh database.
#   CANARY_BINARY_DIR=build DATABASE_URL=$(scripts/pgtmp start) bench/command_latency.sh [RUNS]   (default 100)
# A sanitizer build measures the sanitizer too: use a Release build for figures that mean something.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"

RUNS=${1:-100}
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 1000 ] || fail "RUNS '$RUNS' is not a number in 1..1000"

cat >"$E2E_DIR/bench-approval.yaml" <<'YAML'
name: bench-approval
description: "the first step needs an approval; then an hour at 1%"
steps:
  - weight: 1%
    hold: 1h
    approval: required
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
setup_world "$E2E_DIR/bench-approval.yaml" --error-rate 0
start_load "$FE" 100 600 # load stops after 10 minutes; the counters stay readable
start_canaryd
mkfifo "$E2E_DIR/tick"
exec 8<>"$E2E_DIR/tick" # nothing is ever written: `read -t` on it is a sleep without a fork

now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
nap() { read -r -t "$1" -u 8 _ || true; }
# The candidate's HAProxy weight, read without forking; sets W.
get_weight() {
	exec 9<>"/dev/tcp/127.0.0.1/$ADMIN"
	printf 'get weight svc/green\n' >&9
	read -r W _ <&9 || W=
	exec 9<&-
}
# Polls every 2ms (at most 10s) until the candidate's weight satisfies TEST ("nonzero" or "zero"); prints the
# microseconds since T0, or fails.
time_until() { # T0 TEST
	local t0=$1 want=$2 i
	for ((i = 0; i < 5000; i++)); do
		get_weight
		case "$want:$W" in
		zero:0 | nonzero:[1-9]*)
			echo $(($(now_us) - t0))
			return 0
			;;
		esac
		nap 0.002
	done
	fail "the candidate's weight did not become $want within 10s"
}
wait_phase() { # ID PHASE
	for _ in $(seq 1 200); do
		[ "$(sql "SELECT phase FROM rollouts WHERE id = $1")" = "$2" ] && return 0
		nap 0.02
	done
	fail "rollout $1 did not reach $2: $(sql "SELECT phase, reason FROM rollouts WHERE id = $1")"
}

: >"$E2E_DIR/approve.us"
: >"$E2E_DIR/abort.us"
: >"$E2E_DIR/seen.sql"
log "$RUNS runs (approve, then abort)"
for ((run = 1; run <= RUNS; run++)); do
	out=$("$CTL" rollout start --service svc --candidate "bench-$run" --policy bench-approval) || fail "start failed"
	id=$(awk '{print $2}' <<<"$out")
	wait_phase "$id" awaiting_approval
	get_weight
	[ "$W" = 0 ] || fail "candidate weight is $W before the approval"

	t0=$(now_us)
	"$CTL" rollout approve "$id" >/dev/null 2>>"$E2E_DIR/cli.log" &
	cli=$!
	time_until "$t0" nonzero >>"$E2E_DIR/approve.us"
	echo "($id, 'approve', $(now_us))" >>"$E2E_DIR/seen.sql"
	wait "$cli" || fail "approve of rollout $id failed"
	wait_phase "$id" progressing

	t0=$(now_us)
	"$CTL" rollout abort "$id" >/dev/null 2>>"$E2E_DIR/cli.log" &
	cli=$!
	time_until "$t0" zero >>"$E2E_DIR/abort.us"
	echo "($id, 'abort', $(now_us))" >>"$E2E_DIR/seen.sql"
	wait "$cli" || fail "abort of rollout $id failed"
	for _ in $(seq 1 100); do # the gateway's final weight confirmed: the next rollout starts clean
		[ "$(sql "SELECT applied_weight = weight FROM rollouts WHERE id = $id")" = t ] && break
		nap 0.02
	done
	((run % 10 == 0)) && log "run $run of $RUNS"
done

summary() { # NAME FILE
	sort -n "$2" | awk -v name="$1" '{ v[NR] = $1 / 1000.0; s += v[NR] }
		function pct(p,  k) { k = int(p * NR + 0.999999); if (k < 1) k = 1; return v[k] }
		END { printf "%-8s n=%d  p50=%.1fms  p90=%.1fms  p99=%.1fms  max=%.1fms  mean=%.1fms  (goal p99 <= 200ms)\n",
		      name, NR, pct(0.50), pct(0.90), pct(0.99), v[NR], s / NR }'
}
echo "command -> weight on HAProxy, from launching canaryctl (includes its start-up and connection):"
summary approve "$E2E_DIR/approve.us"
summary abort "$E2E_DIR/abort.us"
# The part the daemon controls: from the command row's commit (created_at, the same host's clock) to the weight
# seen on HAProxy (an upper bound: the poll is taken a little after the change). Then to the command's handling.
seen=$(paste -sd, "$E2E_DIR/seen.sql")
echo "from the command row's insert (after canaryctl's start-up, connection and checks):"
sql "WITH seen (rollout_id, kind, us) AS (VALUES $seen),
          d AS (SELECT c.kind, s.us / 1000.0 - extract(epoch FROM c.created_at) * 1000 AS to_weight,
                       extract(epoch FROM c.handled_at - c.created_at) * 1000 AS to_handled
                FROM seen s JOIN commands c ON c.rollout_id = s.rollout_id AND c.kind = s.kind)
     SELECT rpad(kind, 8) || ' to weight on haproxy p50=' ||
            round(percentile_cont(0.5) WITHIN GROUP (ORDER BY to_weight)::numeric, 1) || 'ms  p99=' ||
            round(percentile_cont(0.99) WITHIN GROUP (ORDER BY to_weight)::numeric, 1) || 'ms;  to handled p50=' ||
            round(percentile_cont(0.5) WITHIN GROUP (ORDER BY to_handled)::numeric, 1) || 'ms  p99=' ||
            round(percentile_cont(0.99) WITHIN GROUP (ORDER BY to_handled)::numeric, 1) || 'ms'
     FROM d GROUP BY kind ORDER BY kind DESC"
