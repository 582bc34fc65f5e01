# Shared by the e2e tests and the demo: start and stop the real parts (HAProxy, model-server simulators, canaryd)
# on loopback, a fresh database per run, and small checks. Source it; it sets a trap that stops what it started.
# Needs: CANARY_BINARY_DIR (the build dir), DATABASE_URL (a server where databases may be created).

set -euo pipefail
E2E_TOP=${CANARY_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
source "$E2E_TOP/scripts/libcanary.bash"
canary_sbin_path   # haproxy is in /usr/sbin, which a normal user's PATH lacks
HAPROXY=${HAPROXY_BIN:-haproxy}
B=${CANARY_BINARY_DIR:-$E2E_TOP/build}
CTL=$B/canaryctl
CANARYD=$B/canaryd
MODELSIM=$B/tests/modelsim
LOADGEN=$B/tests/loadgen
E2E_PIDS=()
E2E_DIR=${E2E_DIR:-$(mktemp -d /tmp/canary-e2e.XXXXXX)}
E2E_DB=
E2E_ADMIN_URL=${DATABASE_URL:-}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

e2e_cleanup() {
	local rc=$?
	for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	# A sanitizer or valgrind report from any program we ran fails the test, even if every check passed.
	if [ $rc -eq 0 ] && grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:|definitely lost: [1-9]|Invalid (read|write)' \
		"$E2E_DIR"/*.log >/dev/null 2>&1; then
		log "FAIL: a sanitizer or valgrind report in $(grep -lE 'Sanitizer|runtime error:|definitely lost: [1-9]|Invalid (read|write)' "$E2E_DIR"/*.log | tr '\n' ' ')"
		rc=1
	fi
	port_release "$$" 2>/dev/null || true
	if [ -n "$E2E_DB" ] && [ -n "$E2E_ADMIN_URL" ]; then
		psql -q "$E2E_ADMIN_URL" -c "DROP DATABASE IF EXISTS $E2E_DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ] && [ -d "$E2E_DIR" ]; then
		log "logs kept in $E2E_DIR"
		for f in "$E2E_DIR"/*.log; do [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 25 "$f" >&2; }; done
	else
		rm -rf "$E2E_DIR"
	fi
	if declare -F e2e_extra_cleanup >/dev/null; then e2e_extra_cleanup; fi
	exit $rc
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

for bin in "$CTL" "$CANARYD" "$MODELSIM" "$LOADGEN"; do
	[ -x "$bin" ] || fail "'$bin' is not built; run scripts/build first"
done
if ! command -v "$HAPROXY" >/dev/null; then
	[ -z "${HAPROXY_BIN:-}" ] || fail "HAPROXY_BIN '$HAPROXY_BIN' is not an executable"
	fail "haproxy is not installed (not found in $PATH); run scripts/deps"
fi

# A TCP port on 127.0.0.1 that nothing listens on, reserved for this test until it ends (scripts/libcanary.bash):
# never handed out twice, neither within this test nor to another test, pgtmp or the demo running at the same time.
# Below the kernel's ephemeral range. Servers we own (modelsim) take port 0 instead; see start_modelsim.
free_port() {
	port_pick "$$" || fail "no free port"
}

wait_port() { # PORT [SECONDS]
	local i
	for i in $(seq 1 $((${2:-10} * 20))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	fail "nothing listens on 127.0.0.1:$1"
}

# A database of our own on the server DATABASE_URL points to; exports DATABASE_URL for it.
fresh_db() {
	[ -n "$E2E_ADMIN_URL" ] || fail "DATABASE_URL is not set (scripts/test sets it from scripts/pgtmp)"
	E2E_DB="canary_e2e_$$_$RANDOM"
	psql -q "$E2E_ADMIN_URL" -c "CREATE DATABASE $E2E_DB" >/dev/null || fail "cannot create database $E2E_DB"
	local base=${E2E_ADMIN_URL%%\?*} query=
	[[ "$E2E_ADMIN_URL" == *\?* ]] && query="?${E2E_ADMIN_URL#*\?}"
	export DATABASE_URL="${base%/*}/$E2E_DB$query"
}

# Starts a simulator and waits for its ready line (so it is our simulator that listens, not anyone who holds the
# port); sets MODELSIM_PORT. PORT 0 lets it bind a free port itself (no race with anyone) and report it; any other
# PORT should come from free_port (or be reserved, as the demo does).
start_modelsim() { # NAME PORT [ARGS...]
	local name=$1 port=$2 log i line want='[0-9][0-9]*'
	shift 2
	log=$E2E_DIR/modelsim-$name.log
	"$MODELSIM" --name "$name" --port "$port" "$@" >"$log" 2>&1 &
	E2E_PIDS+=($!)
	local pid=$!
	[ "$port" = 0 ] || want=$port
	for i in $(seq 1 200); do
		line=$(grep -m1 -o "listening on [0-9.]*:$want\$" "$log" 2>/dev/null || true)
		if [ -n "$line" ]; then
			MODELSIM_PORT=${line##*:}
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	fail "modelsim $name did not start (port $port; see $log)"
}

# HAProxy with one frontend and a roundrobin backend SVC of two servers blue and green; blue live (weight 256).
start_haproxy() { # SVC FRONTEND_PORT ADMIN_PORT BLUE_PORT GREEN_PORT
	local svc=$1 fe=$2 admin=$3 blue=$4 green=$5
	cat >"$E2E_DIR/haproxy.cfg" <<CFG
global
    maxconn 4096
    stats socket ipv4@127.0.0.1:$admin level admin
    stats socket $E2E_DIR/haproxy.sock mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend fe_$svc
    bind 127.0.0.1:$fe
    default_backend $svc
backend $svc
    balance roundrobin
    server blue 127.0.0.1:$blue weight 256
    server green 127.0.0.1:$green weight 0
CFG
	"$HAPROXY" -db -f "$E2E_DIR/haproxy.cfg" >"$E2E_DIR/haproxy.log" 2>&1 &
	E2E_PIDS+=($!)
	HAPROXY_PID=$!
	wait_port "$fe"
	wait_port "$admin"
	# the admin port answers with our haproxy's pid, not some other process that holds the port
	hap "$admin" "show info" 2>/dev/null | grep -cx "Pid: $HAPROXY_PID" >/dev/null ||
		fail "haproxy did not start on 127.0.0.1:$fe/$admin (see $E2E_DIR/haproxy.log)"
}

# Sends one runtime API command to HAProxy's TCP admin socket and prints the answer.
hap() { # ADMIN_PORT COMMAND...
	local port=$1
	shift
	exec 9<>"/dev/tcp/127.0.0.1/$port"
	printf '%s\n' "$*" >&9
	cat <&9
	exec 9<&-
}

hap_weight() { # ADMIN_PORT BACKEND/SERVER -> current weight
	hap "$1" "get weight $2" | awk '{print $1}'
}

start_canaryd() { # [ARGS...]   (CANARYD_PREFIX, e.g. "valgrind --leak-check=full", runs it under a tool)
	${CANARYD_PREFIX:-} "$CANARYD" --poll 200 "$@" >>"$E2E_DIR/canaryd.log" 2>&1 &
	E2E_PIDS+=($!)
	CANARYD_PID=$!
}

# Bounded load through HAProxy: RATE requests/s for SECONDS, in the background.
start_load() { # PORT RATE SECONDS
	"$LOADGEN" --url "http://127.0.0.1:$1/" --rate "$2" --duration "$3" --concurrency 16 \
		>"$E2E_DIR/loadgen-$1.log" 2>&1 &
	E2E_PIDS+=($!)
	LOAD_PID=$!
}

modelsim_admin() { # PORT JSON
	curl -fsS -X POST -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$1/admin" >/dev/null
}

sql() { psql -qAt "$DATABASE_URL" -c "$1"; }

# Waits until `canaryctl rollout status ID` shows the rollout at STEP in PHASE (or later), up to SECONDS.
wait_step() { # ID STEP SECONDS
	local i
	for i in $(seq 1 $(($3 * 10))); do
		local s
		s=$(sql "SELECT step FROM rollouts WHERE id = $1 AND phase = 'progressing'")
		[ -n "$s" ] && [ "$s" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "rollout $1 did not reach step $2 in $3s"
}

# The whole world of one test: a fresh database, two simulated model servers (blue live, green idle), HAProxy in
# front of them, the service `svc` and the policy POLICY applied. Sets FE ADMIN BLUE GREEN.
setup_world() { # [POLICY_FILE] [MODELSIM ARGS...]
	local policy=${1:-$E2E_TOP/policies/demo-fast.yaml}
	shift || true
	fresh_db
	FE=$(free_port); ADMIN=$(free_port)
	start_modelsim blue 0 --error-rate 0.005 --latency-median 0.2 --seed 1 "$@"
	BLUE=$MODELSIM_PORT
	start_modelsim green 0 --error-rate 0.005 --latency-median 0.2 --seed 2 "$@"
	GREEN=$MODELSIM_PORT
	start_haproxy svc "$FE" "$ADMIN" "$BLUE" "$GREEN"
	cat >"$E2E_DIR/service.yaml" <<YAML
name: svc
gateway: { kind: haproxy, runtime_api: "127.0.0.1:$ADMIN", backend: svc, timeout: 2s }
slots:
  blue:  { server: blue,  metrics_url: "http://127.0.0.1:$BLUE/metrics" }
  green: { server: green, metrics_url: "http://127.0.0.1:$GREEN/metrics" }
live: blue
metrics: { source: scrape, preset: vllm, timeout: 1s }
YAML
	"$CTL" migrate >/dev/null
	"$CTL" policy apply "$policy" >/dev/null
	"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
}

# green's /metrics through tests/support/metrics_relay.py (hangs while $E2E_DIR/hang exists; one read 1.5 s late,
# touching $E2E_DIR/stalled, per $E2E_DIR/stall), with metrics.timeout TIMEOUT: applies the service, sets RELAY.
relay_green_metrics() { # TIMEOUT
	command -v python3 >/dev/null || fail "python3 is needed for the metrics relay"
	RELAY=$(free_port)
	python3 "$E2E_TOP/tests/support/metrics_relay.py" "$RELAY" "http://127.0.0.1:$GREEN/metrics" "$E2E_DIR" \
		>"$E2E_DIR/relay.log" 2>&1 &
	E2E_PIDS+=($!)
	wait_port "$RELAY"
	sed -e "s|green: { server: green, metrics_url: \"[^\"]*\" }|green: { server: green, metrics_url: \"http://127.0.0.1:$RELAY/metrics\" }|" \
		-e "s|timeout: 1s }|timeout: $1 }|" "$E2E_DIR/service.yaml" >"$E2E_DIR/service-relay.yaml"
	grep -q "$RELAY/metrics" "$E2E_DIR/service-relay.yaml" && grep -q "timeout: $1 }" "$E2E_DIR/service-relay.yaml" ||
		fail "could not point green's metrics at the relay"
	"$CTL" service apply "$E2E_DIR/service-relay.yaml" >/dev/null
}

# Runs `canaryctl rollout start --wait` in the background; ROLLOUT_PID, output in $E2E_DIR/wait-CANDIDATE.log.
start_rollout_wait() { # CANDIDATE POLICY TIMEOUT
	"$CTL" rollout start --service svc --candidate "$1" --policy "$2" --wait --timeout "$3" \
		>"$E2E_DIR/wait-$1.log" 2>&1 &
	ROLLOUT_PID=$!
	# for a watcher in another subshell of this test (pgrep could find another test's canaryctl of that name)
	echo "$ROLLOUT_PID" >"$E2E_DIR/wait-$1.pid"
}

# Waits for the rollout of CANDIDATE to exist and prints its id.
rollout_of() { # CANDIDATE
	local id
	for _ in $(seq 1 100); do
		id=$(sql "SELECT max(id) FROM rollouts WHERE candidate = '$1'")
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.1
	done
	fail "no rollout of '$1' was created"
}

# Starts a rollout of CANDIDATE (slot CSLOT served by the simulator on CPORT, against the live slot BSLOT), injects
# a regression into the candidate once its first step has begun, and checks the outcome every regression must have:
# `rollout start --wait` exits 1, HAProxy gives the candidate weight 0 and the baseline the rest, the live slot stays
# live, the phase is rolled_back, and the audit (written to $E2E_DIR/audit-ID.log) shows the rollback and the
# confirmed weight 0. Sets REGRESS_ID; the caller checks what is particular to its judge.
expect_regression_rolled_back() { # CANDIDATE POLICY TIMEOUT CSLOT CPORT BSLOT INJECT_JSON WHAT
	local cand=$1 policy=$2 timeout=$3 cslot=$4 cport=$5 bslot=$6 inject=$7 what=$8
	modelsim_admin "$cport" '{"latency_median":0.2,"error_rate":0.005}'
	start_rollout_wait "$cand" "$policy" "$timeout"
	REGRESS_ID=$(rollout_of "$cand")
	local id=$REGRESS_ID
	wait_step "$id" 0 20
	sleep 1
	log "injecting $what into $cslot (candidate) during step 1 of rollout $id"
	modelsim_admin "$cport" "$inject"
	set +e
	wait "$ROLLOUT_PID"
	local rc=$?
	set -e
	cat "$E2E_DIR/wait-$cand.log" >&2
	[ "$rc" -eq 1 ] || fail "$what: rollout start --wait exited $rc, expected 1 (rolled back)"
	[ "$(hap_weight "$ADMIN" "svc/$cslot")" -eq 0 ] || fail "$what: $cslot (candidate) still has weight"
	[ "$(hap_weight "$ADMIN" "svc/$bslot")" -gt 0 ] || fail "$what: $bslot (baseline) has no weight"
	[ "$("$CTL" --output json service show svc | jq -r .live.name)" = "$bslot" ] || fail "$what: $bslot is no longer live"
	[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = rolled_back ] || fail "$what: phase is not rolled_back"
	"$CTL" rollout audit "$id" >"$E2E_DIR/audit-$id.log"
	grep -q "rolled_back" "$E2E_DIR/audit-$id.log" || fail "$what: audit lacks the rollback"
	grep -q "weight.confirmed.*weight 0%" "$E2E_DIR/audit-$id.log" || fail "$what: audit lacks the confirmed weight 0"
}
