#!/usr/bin/env bash
# e2e: canaryd out of file descriptors says so once, holds what it cannot serve, and does not spin (issue 13).
# canaryd runs under `ulimit -n 64` (soft and hard, so it cannot raise it) with more rollouts than fit, all behind one
# real HAProxy (a backend per service) with their pages served by one multi-tenant simulator (metricsfarm). Over
# WINDOW seconds: its stderr stays small (no line per failed call or accept), the line says the limit and what to
# do, the rollouts it cannot serve hold with that reason, it uses little CPU (no busy loop on accept() or on the
# claim), and /healthz answers every probe. Before: 3,830 gateway errors in 35 s and libmicrohttpd writing about a
# million lines (238 MB) while it spun on accept().
#   FD_LIMIT_N (default 60) rollouts; FD_LIMIT_WINDOW (default 20) seconds; FD_LIMIT_FARMS (default 20) simulators;
#   FD_LIMIT_INHERIT (default 24) descriptors canaryd inherits.
#   FD_LIMIT_UNLIMITED=1 measures instead: no limit, and prints the descriptors canaryd holds (README figures).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

N=${FD_LIMIT_N:-60}
WINDOW=${FD_LIMIT_WINDOW:-20}
FARMS=${FD_LIMIT_FARMS:-20}
INHERIT=${FD_LIMIT_INHERIT:-24}
LIMIT=64
FARM=$B/tests/metricsfarm
[ -x "$FARM" ] || fail "'$FARM' is not built; run scripts/build first"

fresh_db
# Several simulators, the services spread over them, so pages come from many endpoints (as in production, where
# every model server has its own /metrics) and canaryd needs a connection per endpoint read at once.
FARM_PORTS=()
for ((i = 1; i <= FARMS; i++)); do
	"$FARM" --port 0 --rate 200 --error-rate 0.003 >"$E2E_DIR/farm$i.out" 2>"$E2E_DIR/farm$i.log" &
	E2E_PIDS+=($!)
done
for ((i = 1; i <= FARMS; i++)); do
	for _ in $(seq 1 100); do grep -q listening "$E2E_DIR/farm$i.out" 2>/dev/null && break; sleep 0.05; done
	p=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$E2E_DIR/farm$i.out")
	[ -n "$p" ] || fail "metricsfarm $i did not start (see $E2E_DIR/farm$i.log)"
	FARM_PORTS+=("$p")
done
FARM_PORT=${FARM_PORTS[0]}
PORTS_SQL="ARRAY[$(IFS=,; echo "${FARM_PORTS[*]}")]"

ADMIN=$(free_port)
{
	printf 'global\n    maxconn 4096\n    stats socket ipv4@127.0.0.1:%s level admin\n' "$ADMIN"
	printf 'defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n'
	for ((i = 1; i <= N; i++)); do
		printf 'backend svc%d\n    server blue 127.0.0.1:%s weight 256\n    server green 127.0.0.1:%s weight 0\n' \
			"$i" "${FARM_PORTS[$(((i - 1) % FARMS))]}" "${FARM_PORTS[$(((i - 1) % FARMS))]}"
	done
} >"$E2E_DIR/haproxy.cfg"
"$HAPROXY" -db -f "$E2E_DIR/haproxy.cfg" >"$E2E_DIR/haproxy.log" 2>&1 &
E2E_PIDS+=($!)
wait_port "$ADMIN" 20

cat >"$E2E_DIR/hold.yaml" <<YAML
name: hold
description: "ten minutes at 1%: every rollout ticks every second and holds"
steps:
  - weight: 1%
    hold: 10m
  - weight: 100%
    hold: 10m
analysis:
  interval: 1s
  min_requests: 100
  inconclusive_timeout: 10m
  on_inconclusive: pause
  judge: threshold
slos:
  - name: error-rate
    metric: error_rate
    max: 2%
YAML
cat >"$E2E_DIR/svc.yaml" <<YAML
name: svc-token-
gateway: { kind: haproxy, runtime_api: "127.0.0.1:$ADMIN", backend: svc-token-, timeout: 2s }
slots:
  blue:  { server: blue,  metrics_url: "http://127.0.0.1:$FARM_PORT/metrics/svc-token-/blue" }
  green: { server: green, metrics_url: "http://127.0.0.1:$FARM_PORT/metrics/svc-token-/green" }
live: blue
metrics: { source: scrape, preset: vllm, timeout: 2s }
YAML
"$CTL" migrate >/dev/null
"$CTL" policy apply "$E2E_DIR/hold.yaml" >/dev/null
"$CTL" service apply "$E2E_DIR/svc.yaml" >/dev/null 2>&1 # the template itself has no backend: a warning
# N services copied from that one (their own names, backends and simulator) and N rollouts, each in one statement
# (as bench/scale.sh does)
sql "SELECT count(canary.apply_service('svc' || i,
         replace(replace(v.source, '-token-', i::text), ':$FARM_PORT/', ':' || ($PORTS_SQL)[1 + (i - 1) % $FARMS] || '/'),
         replace(replace(v.spec::text, '-token-', i::text), ':$FARM_PORT/', ':' || ($PORTS_SQL)[1 + (i - 1) % $FARMS] || '/')::jsonb,
         0::smallint))
     FROM service_versions v, generate_series(1, $N) i WHERE v.service = 'svc-token-'" >/dev/null
sql "SELECT count(canary.start_rollout('svc' || i, 'v2', 'hold', 'e2e')) FROM generate_series(1, $N) i" >/dev/null

HTTP=$(free_port)
t_start=$(date +%s)
if [ "${FD_LIMIT_UNLIMITED:-}" = 1 ]; then # measuring descriptors per rollout: no limit in the way
	start_canaryd --listen "127.0.0.1:$HTTP"
else
	(
		ulimit -n "$LIMIT" # soft and hard: canaryd cannot raise it
		# descriptors it inherits and never closes, so it runs at its limit the whole time, /healthz's accept()
		# included (libmicrohttpd's own accept() spun there, a core and a line per try)
		for _ in $(seq 1 "$INHERIT"); do exec {fd}</dev/null; done
		exec "$CANARYD" --poll 200 --listen "127.0.0.1:$HTTP" >>"$E2E_DIR/canaryd.log" 2>&1
	) &
	E2E_PIDS+=($!)
	CANARYD_PID=$!
fi
wait_port "$HTTP" 10
HZ=$(getconf CLK_TCK)
cpu() { cut -d' ' -f14,15 "/proc/$CANARYD_PID/stat" | awk '{print $1 + $2}'; }
cpu0=$(cpu)
bad_probes=0 probes=0 max_fds=0
for ((t = 0; t < WINDOW * 2; t++)); do
	sleep 0.5
	kill -0 "$CANARYD_PID" 2>/dev/null || fail "canaryd exited: $(tail -3 "$E2E_DIR/canaryd.log")"
	fds=$(ls "/proc/$CANARYD_PID/fd" 2>/dev/null | wc -l)
	[ "$fds" -gt "$max_fds" ] && max_fds=$fds
	probes=$((probes + 1))
	code=$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP/healthz" 2>/dev/null || true)
	[ "$code" = 200 ] || { bad_probes=$((bad_probes + 1)); log "/healthz answered '$code' at $fds descriptors"; }
done
cpu1=$(cpu)
cpu_pct=$(((cpu1 - cpu0) * 100 / HZ / WINDOW))
lines=$(wc -l <"$E2E_DIR/canaryd.log")
bytes=$(wc -c <"$E2E_DIR/canaryd.log")
noisy=$(grep -cE '"level":"(warn|error)"' "$E2E_DIR/canaryd.log" || true)
ticked=$(sql "SELECT count(*) FROM rollouts WHERE state IS NOT NULL")
# (a hold lasts until the rollout's next turn finds descriptors: the audit keeps every one)
held=$(sql "SELECT count(DISTINCT rollout_id) FROM audit_events WHERE kind = 'hold'
            AND reason LIKE 'holding: out of file descriptors%'")
# a page canaryd could not open is no evidence about the candidate: never a tick on it
# (the simulators all run, so a page that could not be reached was one canaryd could not open)
leaked=$(sql "SELECT count(*) FROM audit_events WHERE kind <> 'hold'
              AND (reason LIKE '%Too many open files%' OR reason LIKE '%connect to server%')")
exhausted=$(curl -fsS --max-time 3 "http://127.0.0.1:$HTTP/metrics" | awk '$1 == "canaryd_fd_exhausted_total" {print $2}')
owned=$(curl -fsS --max-time 3 "http://127.0.0.1:$HTTP/metrics" | awk '$1 == "canaryd_rollouts_owned" {print $2}')
log "N=$N limit=$LIMIT window=${WINDOW}s: canaryd ${cpu_pct}% CPU, up to $max_fds descriptors, $owned rollouts owned," \
	"$ticked ticked, $held held for descriptors ($exhausted calls failed, $leaked in other events); stderr $lines lines ($bytes bytes, $noisy warn/error);" \
	"/healthz failed $bad_probes of $probes"
if [ "${FD_LIMIT_UNLIMITED:-}" = 1 ]; then
	base=$(grep -m1 '"event":"fd.limit"' "$E2E_DIR/canaryd.log" || true)
	log "descriptors with $owned rollouts: $(ls "/proc/$CANARYD_PID/fd" | wc -l) between reads, up to $max_fds;" \
		"$(grep -E '^VmRSS|^VmHWM' "/proc/$CANARYD_PID/status" | tr -s ' \t' ' ' | tr '\n' ' ')($base)"
	exit 0
fi

[ "$bad_probes" = 0 ] || fail "/healthz did not answer 200 to $bad_probes of $probes probes"
grep -q '"event":"fd.limit".*"limit":64' "$E2E_DIR/canaryd.log" || fail "canaryd did not log its descriptor limit (64)"
want="out of file descriptors (limit $LIMIT): raise LimitNOFILE / ulimit -n; each rollout needs about"
grep -qF "$want" "$E2E_DIR/canaryd.log" || fail "no line says '$want'"
said=$(grep -c '"event":"fd.exhausted"' "$E2E_DIR/canaryd.log" || true)
# once a minute over canaryd's life so far (a slow start, e.g. under ASan, makes it longer than the window)
life=$(($(date +%s) - t_start))
[ "$said" -ge 1 ] && [ "$said" -le $((life / 60 + 1)) ] || fail "fd.exhausted said $said times in ${life}s (want once a minute)"
[ "$held" -ge 1 ] || fail "no rollout holds with the out-of-descriptors reason"
[ "$leaked" = 0 ] || fail "$leaked audit events other than holds carry 'Too many open files': $(sql "SELECT kind, reason FROM audit_events WHERE kind <> 'hold' AND (reason LIKE '%Too many open files%' OR reason LIKE '%connect to server%') LIMIT 2")"
[ "$ticked" -ge 1 ] || fail "no rollout ticked: the rollouts that fit should go on"
# every failed call is counted, not logged: a few warn/error lines (start, the fd line, libmicrohttpd's) at most
[ "$noisy" -le 20 ] || fail "$noisy warn/error lines in ${WINDOW}s: $(grep -E '"level":"(warn|error)"' "$E2E_DIR/canaryd.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -5)"
[ "$bytes" -le 500000 ] || fail "stderr grew to $bytes bytes in ${WINDOW}s"
# no busy loop: a spinning accept() or claim takes a whole core (17% measured; 40% under ASan+UBSan)
max_cpu=50
[ "${CANARY_SANITIZE:-}" = ON ] && max_cpu=80
[ "$cpu_pct" -le "$max_cpu" ] || fail "canaryd used ${cpu_pct}% of a core out of descriptors (a busy loop?)"
log "OK: out of descriptors said $said time(s), $held rollouts held, /healthz answered $probes probes"
