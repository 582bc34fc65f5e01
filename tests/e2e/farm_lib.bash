# Shared by bench/scale.sh and the replica e2e (daemon_replicas.sh): N services in one world that costs little per
# service. Every slot's /metrics is a page of one multi-tenant simulator (tests/support/bin/metricsfarm.c:
# /metrics/<service>/<slot>, counters advancing with time), all services sit behind one real HAProxy (a backend per
# service, blue live), and the services svc1..svcN are copied from one applied file by canary.apply_service as the
# database superuser (N canaryctl runs would take minutes). Source lib.bash first.

# Starts the simulator; sets FARM_PORT.
farm_start() { # [METRICSFARM ARGS...]
	local farm=$B/tests/metricsfarm
	[ -x "$farm" ] || fail "'$farm' is not built; run scripts/build first"
	"$farm" --port 0 "$@" >"$E2E_DIR/farm.out" 2>"$E2E_DIR/farm.log" &
	E2E_PIDS+=($!)
	for _ in $(seq 1 100); do grep -q listening "$E2E_DIR/farm.out" 2>/dev/null && break; sleep 0.05; done
	FARM_PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$E2E_DIR/farm.out")
	[ -n "$FARM_PORT" ] || fail "metricsfarm did not start (see $E2E_DIR/farm.log)"
}

# HAProxy with backends svc1..svcN (blue weight 256, green 0, both the farm's port: only weights matter); sets ADMIN.
farm_haproxy() { # N
	ADMIN=$(free_port)
	{
		printf 'global\n    maxconn 4096\n    stats socket ipv4@127.0.0.1:%s level admin\n' "$ADMIN"
		printf 'defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n'
		for ((i = 1; i <= $1; i++)); do
			printf 'backend svc%d\n    server blue 127.0.0.1:%s weight 256\n    server green 127.0.0.1:%s weight 0\n' \
				"$i" "$FARM_PORT" "$FARM_PORT"
		done
	} >"$E2E_DIR/haproxy.cfg"
	"$HAPROXY" -db -f "$E2E_DIR/haproxy.cfg" >"$E2E_DIR/haproxy.log" 2>&1 &
	E2E_PIDS+=($!)
	wait_port "$ADMIN" 60
}

# The scale policy in FILE: three SLOs (error rate, p99 latency and p95 time to first token) judged every INTERVAL
# (e.g. 10s); LADDER 0: an hour at 1% with the sequential judge, so every rollout ticks and holds; LADDER 1: a ladder
# of weights, a step every three ticks (the threshold judge, with limits it passes within them), then an hour at
# 100%, so that a step applied twice or skipped (two replicas at once) shows in the audit. Sets FARM_STEPS (the
# weights before 100%).
farm_policy() { # FILE INTERVAL LADDER
	FARM_STEPS=(1)
	local hold=1h desc="an hour at 1%: every rollout ticks and holds" judge=sequential
	local inc="    max_increase: 1.5x"
	if [ "$3" = 1 ]; then
		FARM_STEPS=(1 2 3 4 5 6 7 8 9 10 20 30 40 50)
		hold=$((3 * ${2%s}))s
		desc="a ladder of weights, a step every 3 ticks, then an hour at 100%"
		judge=threshold inc=
	fi
	{
		printf 'name: scale\ndescription: "%s"\nsteps:\n' "$desc"
		for w in "${FARM_STEPS[@]}"; do printf '  - weight: %s%%\n    hold: %s\n' "$w" "$hold"; done
		printf '  - weight: 100%%\n    hold: 1h\n'
		cat <<YAML
analysis:
  interval: $2
  min_requests: 100
  inconclusive_timeout: 1h
  on_inconclusive: pause
  judge: $judge
slos:
  - name: error-rate
    metric: error_rate
    max: 2%
$inc
  - name: p99-latency
    metric: latency
    quantile: 0.99
    max: 2s
$inc
  - name: ttft-p95
    metric: ttft
    quantile: 0.95
    max: 1s
YAML
	} >"$1"
}

# Migrates (FARM_MIGRATIONS=DIR: that folder's migrations instead of the source's), applies POLICY_FILE and the
# services svc1..svcN (slots on the farm, gateway on HAProxy's ADMIN port).
farm_services() { # N POLICY_FILE
	cat >"$E2E_DIR/svc.yaml" <<YAML
name: svc-token-
gateway: { kind: haproxy, runtime_api: "127.0.0.1:$ADMIN", backend: svc-token-, timeout: 2s }
slots:
  blue:  { server: blue,  metrics_url: "http://127.0.0.1:$FARM_PORT/metrics/svc-token-/blue" }
  green: { server: green, metrics_url: "http://127.0.0.1:$FARM_PORT/metrics/svc-token-/green" }
live: blue
metrics: { source: scrape, preset: vllm, timeout: 2s }
YAML
	"$CTL" migrate ${FARM_MIGRATIONS:+--migrations "$FARM_MIGRATIONS"} >/dev/null
	"$CTL" policy apply "$2" >/dev/null
	"$CTL" service apply "$E2E_DIR/svc.yaml" >/dev/null 2>>"$E2E_DIR/cli.log" || fail "service apply failed"
	sql "SELECT count(canary.apply_service('svc' || i, replace(v.source, '-token-', i::text),
	                                       replace(v.spec::text, '-token-', i::text)::jsonb, 0::smallint))
	     FROM service_versions v, generate_series(1, $1) i WHERE v.service = 'svc-token-'" >/dev/null
}

# Starts a rollout of v2 on each of svc1..svcN with POLICY, in one transaction.
farm_rollouts() { # N POLICY
	sql "SELECT count(canary.start_rollout('svc' || i, 'v2', '$2', 'farm')) FROM generate_series(1, $1) i" >/dev/null
}
