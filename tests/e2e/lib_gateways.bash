# Shared by the e2e tests of the nginx and command gateways (source it after lib.bash): the same world as
# setup_world (a fresh database, two simulators, blue live) behind nginx (gateway.kind nginx) or behind HAProxy
# driven through policies/gateways/haproxy-socat (gateway.kind command), and the checks every kind must pass:
# a healthy rollout promoted with the served share per step, a regression rolled back, a lost gateway that holds
# the rollout and is reconciled when it returns.

NGINX=${NGINX_BIN:-nginx}
SOCAT_SCRIPT=$E2E_TOP/policies/gateways/haproxy-socat

# nginx in the foreground with its own prefix in $E2E_DIR/nginx, one worker, serving 127.0.0.1:FE from an upstream
# `svc` whose server lines are in $E2E_DIR/nginx/servers.conf (blue live). Sets NGINX_PID.
start_nginx() { # FE BLUE GREEN
	local fe=$1 blue=$2 green=$3 d=$E2E_DIR/nginx user=
	command -v "$NGINX" >/dev/null || fail "nginx is not installed (not found in $PATH); run scripts/deps"
	mkdir -p "$d"
	[ "$(id -u)" -eq 0 ] && user="user nobody nogroup;"
	[ -e "$d/servers.conf" ] || printf 'server 127.0.0.1:%s weight=1;\nserver 127.0.0.1:%s down;\n' "$blue" "$green" >"$d/servers.conf"
	cat >"$d/nginx.conf" <<CFG
$user
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log notice;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    upstream svc {
        include $d/servers.conf;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$fe;
        location / {
            proxy_pass http://svc;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CFG
	rm -f "$d/nginx.pid"
	"$NGINX" -p "$d" -c "$d/nginx.conf" >>"$E2E_DIR/nginx.log" 2>&1 &
	NGINX_PID=$!
	E2E_PIDS+=($NGINX_PID)
	wait_port "$fe"
	for _ in $(seq 1 100); do [ -s "$d/nginx.pid" ] && break; sleep 0.05; done
	[ "$(cat "$d/nginx.pid" 2>/dev/null)" = "$NGINX_PID" ] || fail "nginx did not start (see $E2E_DIR/nginx.log)"
}

# Kills nginx's master and workers at once (SIGKILL: the pid file stays, as after a crash).
kill_nginx() {
	local kids
	kids=$(cat "/proc/$NGINX_PID/task/$NGINX_PID/children" 2>/dev/null || true)
	kill -9 "$NGINX_PID" $kids 2>/dev/null || true
	wait "$NGINX_PID" 2>/dev/null || true
}

# gateway-api and kserve without a cluster: the test API server (tests/support/bin/k8sapi.py) holds an HTTPRoute
# `svc` in namespace models with backendRefs blue and green (gateway-api), or an InferenceService `svc` whose
# predictor revision 00001 is blue's model (kserve: storageUri pvc://models/blue; a revision's slot is the last part
# of its storageUri). Its simulated controller plays the data plane as a gateway controller does: 100 ms after a
# change it programs the real HAProxy (through the socat script) with the route's weights, or the InferenceService's
# status traffic per revision, and only then reports on the generation, so a weight canaryd confirms is served.
# (A mirror polling the API server from bash lagged 9-21 s behind under load 20.) Sets K8S_PORT and writes
# $E2E_DIR/kubeconfig.
K8S_ISVC=apis/serving.kserve.io/v1beta1/namespaces/models/inferenceservices/svc
start_k8s_api() { # KIND ADMIN
	local kind=$1 admin=$2 d=$E2E_DIR/k8s
	mkdir -p "$d"
	if [ "$kind" = kserve ]; then
		cat >"$d/object.json" <<JSON
{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
 "metadata": {"name": "svc", "namespace": "models"},
 "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "pvc://models/blue"}}}}
JSON
	else
		cat >"$d/object.json" <<JSON
{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
 "metadata": {"name": "svc", "namespace": "models"},
 "spec": {"parentRefs": [{"name": "e2e-gw"}],
          "rules": [{"backendRefs": [{"name": "blue", "port": 8000, "weight": 1}, {"name": "green", "port": 8000, "weight": 0}]}]}}
JSON
	fi
	"$E2E_TOP/tests/support/bin/k8sapi.py" --token e2e --status-delay-ms 100 --fixtures "$d/object.json" \
		--data-plane "[\"$SOCAT_SCRIPT\", \"set\", \"TCP:127.0.0.1:$admin\", \"svc\"]" >"$d/ready" 2>"$E2E_DIR/k8sapi.log" &
	E2E_PIDS+=($!)
	for _ in $(seq 1 600); do [ -s "$d/ready" ] && break; sleep 0.05; done # 30 s: python starts slowly under load
	K8S_PORT=$(awk -F: '{print $NF}' "$d/ready")
	[ -n "$K8S_PORT" ] || fail "k8sapi did not start (see $E2E_DIR/k8sapi.log)"
	cat >"$E2E_DIR/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: e2e
clusters: [{name: e2e, cluster: {server: "http://127.0.0.1:$K8S_PORT"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: canaryd}}]
users: [{name: canaryd, user: {token: e2e}}]
KC
}

# kserve: CI deploys SLOT's model as the InferenceService's new predictor with canaryTrafficPercent 0 (a new
# revision, created last: the candidate), and waits until KServe has reconciled it (the new revision at 0%).
kserve_deploy() { # SLOT
	local out gen
	out=$(curl -sf --max-time 5 -X PATCH -H 'Authorization: Bearer e2e' -H 'Content-Type: application/merge-patch+json' \
		--data "{\"spec\": {\"predictor\": {\"canaryTrafficPercent\": 0, \"model\": {\"storageUri\": \"pvc://models/$1\"}}}}" \
		"http://127.0.0.1:$K8S_PORT/$K8S_ISVC") || fail "kserve: deploying $1 was refused"
	gen=$(jq -r .metadata.generation <<<"$out")
	for _ in $(seq 1 100); do
		[ "$(curl -sf --max-time 2 "http://127.0.0.1:$K8S_PORT/_fake/get/$K8S_ISVC" | jq -r .status.observedGeneration)" = "$gen" ] && return 0
		sleep 0.05
	done
	fail "kserve: generation $gen with $1's model was not reconciled"
}

# The world of one test for gateway KIND (nginx | command | gateway-api | kserve): a fresh database, two simulators, the gateway in
# front of them (FE), the service `svc` and POLICY applied. Sets FE BLUE GREEN (and ADMIN for command).
setup_world_kind() { # KIND [POLICY_FILE] [MODELSIM ARGS...]
	local kind=$1 policy=${2:-$E2E_TOP/policies/demo-fast.yaml}
	shift 2 || shift $#
	fresh_db
	FE=$(free_port)
	start_modelsim blue 0 --error-rate 0.005 --latency-median 0.2 --seed 1 "$@"
	BLUE=$MODELSIM_PORT
	start_modelsim green 0 --error-rate 0.005 --latency-median 0.2 --seed 2 "$@"
	GREEN=$MODELSIM_PORT
	if [ "$kind" = nginx ]; then
		start_nginx "$FE" "$BLUE" "$GREEN"
		local d=$E2E_DIR/nginx
		cat >"$E2E_DIR/service.yaml" <<YAML
name: svc
gateway:
  kind: nginx
  include: $d/servers.conf
  config: $d/nginx.conf
  pid_file: $d/nginx.pid
  prefix: $d
  error_log: $d/error.log
  nginx: $(command -v "$NGINX")
  timeout: 5s
slots:
  blue:  { server: "127.0.0.1:$BLUE",  metrics_url: "http://127.0.0.1:$BLUE/metrics" }
  green: { server: "127.0.0.1:$GREEN", metrics_url: "http://127.0.0.1:$GREEN/metrics" }
live: blue
metrics: { source: scrape, preset: vllm, timeout: 1s }
YAML
	elif [ "$kind" = gateway-api ] || [ "$kind" = kserve ]; then
		command -v socat >/dev/null || fail "socat is not installed; run scripts/deps"
		ADMIN=$(free_port)
		start_haproxy svc "$FE" "$ADMIN" "$BLUE" "$GREEN"
		start_k8s_api "$kind" "$ADMIN"
		local blue_server="server: blue,  " green_server="server: green, "
		[ "$kind" = kserve ] && blue_server= green_server= # kserve slots are revisions, not servers
		cat >"$E2E_DIR/service.yaml" <<YAML
name: svc
gateway:
  kind: $kind
  namespace: models
  name: svc
  kubeconfig: $E2E_DIR/kubeconfig
  timeout: 5s
slots:
  blue:  { ${blue_server}metrics_url: "http://127.0.0.1:$BLUE/metrics" }
  green: { ${green_server}metrics_url: "http://127.0.0.1:$GREEN/metrics" }
live: blue
metrics: { source: scrape, preset: vllm, timeout: 1s }
YAML
	else
		command -v socat >/dev/null || fail "socat is not installed; run scripts/deps"
		ADMIN=$(free_port)
		start_haproxy svc "$FE" "$ADMIN" "$BLUE" "$GREEN"
		cat >"$E2E_DIR/service.yaml" <<YAML
name: svc
gateway:
  kind: command
  set: [$SOCAT_SCRIPT, set, "TCP:127.0.0.1:$ADMIN", svc,
        "{candidate_server}", "{candidate_percent}", "{baseline_server}", "{baseline_percent}"]
  get: [$SOCAT_SCRIPT, get, "TCP:127.0.0.1:$ADMIN", svc, "blue=blue", "green=green"]
  timeout: 5s
slots:
  blue:  { server: blue,  metrics_url: "http://127.0.0.1:$BLUE/metrics" }
  green: { server: green, metrics_url: "http://127.0.0.1:$GREEN/metrics" }
live: blue
metrics: { source: scrape, preset: vllm, timeout: 1s }
YAML
	fi
	"$CTL" migrate >/dev/null
	"$CTL" policy apply "$policy" >/dev/null
	"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
}

# The candidate's share of what the gateway carries now, as the gateway says it (canaryctl has no such command:
# read it the way each kind keeps it).
gateway_share() { # SLOT
	if [ -d "$E2E_DIR/nginx" ]; then
		awk -v want="127.0.0.1:$([ "$1" = blue ] && echo "$BLUE" || echo "$GREEN")" '
			$1 == "server" { w = 1; for (i = 3; i <= NF; i++) { if ($i ~ /^weight=/) { sub(/weight=/, "", $i); sub(/;/, "", $i); w = $i } if ($i ~ /^down/) w = 0 }
			                 sub(/;/, "", $2); all += w; if ($2 == want) mine = w }
			END { printf "%.2f\n", all ? 100 * mine / all : 0 }' "$E2E_DIR/nginx/servers.conf"
	else
		"$SOCAT_SCRIPT" get "TCP:127.0.0.1:$ADMIN" svc blue=blue green=green |
			jq -r --arg s "$1" '.[$s] / ((.blue + .green) | if . == 0 then 1 else . end) * 100' | awk '{ printf "%.2f\n", $1 }'
	fi
}

# Waits up to 5 s for SLOT's configured share to read SHARE (e.g. 0.00): the gateway-api world mirrors the HTTPRoute
# into HAProxy before it reports on the generation that canaryd confirms.
share_reaches() { # SLOT SHARE
	for _ in $(seq 1 50); do
		[ "$(gateway_share "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# Share of requests per step, from the counters canaryd recorded for rollout ID (first and last measurement of each
# step); prints "step|weight|served%|requests" lines and fails when a step is off by more than max(0.5 points, 15%
# of the weight). Both gateways balance deterministically (smooth weighted round robin), so the slack covers the
# requests in flight around a weight change.
check_served_shares() { # ID
	local shares
	shares=$(sql "WITH m AS (
	    SELECT step, weight,
	           (candidate->>'requests')::float8 AS c, (baseline->>'requests')::float8 AS b,
	           row_number() OVER (PARTITION BY step ORDER BY id) AS k,
	           count(*) OVER (PARTITION BY step) AS n
	    FROM measurements WHERE rollout_id = $1 AND step >= 0)
	  SELECT f.step, f.weight, round((100 * (l.c - f.c) / nullif((l.c - f.c) + (l.b - f.b), 0))::numeric, 2),
	         (l.c - f.c) + (l.b - f.b)
	  FROM m f JOIN m l ON l.step = f.step AND l.k = l.n AND f.k = 2
	  ORDER BY f.step")
	echo "step|weight|served%|requests" >&2
	echo "$shares" >&2
	[ "$(echo "$shares" | wc -l)" -ge 2 ] || fail "measurements for fewer than 2 steps"
	echo "$shares" | awk -F'|' '{ tol = ($2 * 0.15 > 0.5) ? $2 * 0.15 : 0.5;
	    d = $3 - $2; if (d < 0) d = -d;
	    if ($4 < 200 || d > tol) { printf "step %d: served %.2f%% for weight %g%% (%d requests, tolerance %.2f)\n", $1, $3, $2, $4, tol; bad = 1 } }
	    END { exit bad }' || fail "served share does not match the weight"
}

# A healthy candidate (green) is promoted through 1% -> 5% -> 100% with the served share per step; then a
# regression in the next candidate (blue, now idle) is rolled back: the gateway gives blue 0%, green stays live.
healthy_then_regression() { # KIND
	local kind=$1
	setup_world_kind "$kind"
	start_load "$FE" 1000 150
	start_canaryd
	[ "$kind" = kserve ] && kserve_deploy green
	set +e
	"$CTL" rollout start --service svc --candidate v2 --policy demo-fast --wait --timeout 90s >"$E2E_DIR/wait-v2.log" 2>&1
	local rc=$?
	set -e
	cat "$E2E_DIR/wait-v2.log" >&2
	[ "$rc" -eq 0 ] || fail "$kind: rollout start --wait exited $rc, expected 0 (promoted)"
	share_reaches green 100.00 || fail "$kind: green carries $(gateway_share green)% after promotion, not 100%"
	[ "$("$CTL" --output json service show svc | jq -r .live.name)" = green ] || fail "$kind: green is not live"
	check_served_shares 1
	"$CTL" rollout audit 1 >"$E2E_DIR/audit-1.log"
	grep -q "weight.confirmed" "$E2E_DIR/audit-1.log" || fail "$kind: audit lacks weight confirmations"
	log "$kind: healthy candidate promoted"

	modelsim_admin "$BLUE" '{"latency_median":0.2,"error_rate":0.005}'
	[ "$kind" = kserve ] && kserve_deploy blue
	start_rollout_wait v3 demo-fast 90s
	local id
	id=$(rollout_of v3)
	wait_step "$id" 0 20
	sleep 1
	log "$kind: injecting errors (0.5% -> 5%) into blue (candidate) during step 1 of rollout $id"
	modelsim_admin "$BLUE" '{"error_rate":0.05}'
	set +e
	wait "$ROLLOUT_PID"
	rc=$?
	set -e
	cat "$E2E_DIR/wait-v3.log" >&2
	[ "$rc" -eq 1 ] || fail "$kind: regression: rollout start --wait exited $rc, expected 1 (rolled back)"
	share_reaches blue 0.00 || fail "$kind: blue (candidate) still carries $(gateway_share blue)%"
	[ "$("$CTL" --output json service show svc | jq -r .live.name)" = green ] || fail "$kind: green is no longer live"
	"$CTL" rollout audit "$id" >"$E2E_DIR/audit-$id.log"
	grep -q "weight.confirmed.*weight 0%" "$E2E_DIR/audit-$id.log" || fail "$kind: audit lacks the confirmed weight 0"
	log "$kind: regression rolled back: $(sql "SELECT reason FROM rollouts WHERE id = $id")"
}

# The gateway goes away at the 5% step: the rollout holds there (never advances on an unconfirmed weight) and says
# why with the gateway's words; an abort is recorded meanwhile (intent 0). The gateway comes back as it was (the
# candidate at 5%): canaryd moves it to 0 and confirms, and the audit shows the intent 0 before the confirmation.
down_then_reconciled() { # KIND STOP_FN START_FN WORDS
	local kind=$1 stop=$2 start=$3 words=$4
	setup_world_kind "$kind"
	start_load "$FE" 1000 150
	start_canaryd
	start_rollout_wait v2 demo-fast 150s
	local id
	id=$(rollout_of v2)
	wait_step "$id" 1 40
	for _ in $(seq 1 100); do
		[ "$(sql "SELECT applied_weight = weight FROM rollouts WHERE id = $id")" = t ] && break
		sleep 0.1
	done
	[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 5 ] || fail "$kind: the 5% step was not confirmed"
	local share
	share=$(gateway_share green)
	$stop
	log "$kind: gateway stopped at 5% (green $share%) of rollout $id"
	sleep 10 # longer than the 5% step's hold (8s): it must not advance without a gateway
	[ "$(sql "SELECT step FROM rollouts WHERE id = $id")" = 1 ] || fail "$kind: the rollout advanced without a gateway"
	[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = progressing ] || fail "$kind: rollout is $(sql "SELECT phase FROM rollouts WHERE id = $id")"
	"$CTL" --output json audit "$id" >"$E2E_DIR/audit-held.json"
	jq -e --arg w "$words" '[.events[] | select(.kind == "hold" and (.reason | contains("gateway unavailable")) and (.reason | contains($w)))] | length >= 1' \
		"$E2E_DIR/audit-held.json" >/dev/null || fail "$kind: no hold event with the gateway's words '$words'"
	log "$kind: held at step 2 (5%) while the gateway was away"

	"$CTL" rollout abort "$id" --reason "e2e: gateway down" >"$E2E_DIR/abort.out" 2>"$E2E_DIR/abort.err" || fail "$kind: abort refused"
	set +e
	wait "$ROLLOUT_PID"
	local rc=$?
	set -e
	[ "$rc" -eq 2 ] || fail "$kind: rollout start --wait exited $rc after the abort, expected 2 (aborted)"
	[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 5 ] || fail "$kind: weight 0 confirmed with no gateway?"
	$start
	[ "$(gateway_share green)" = "$share" ] || [ "$(gateway_share green)" = "0.00" ] || fail "$kind: the gateway came back with green at $(gateway_share green)%"
	for _ in $(seq 1 150); do
		[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 0 ] && break
		sleep 0.1
	done
	[ "$(sql "SELECT applied_weight FROM rollouts WHERE id = $id")" = 0 ] || fail "$kind: canaryd did not confirm weight 0"
	share_reaches green 0.00 || fail "$kind: green still carries $(gateway_share green)%"
	"$CTL" --output json audit "$id" >"$E2E_DIR/audit.json"
	local order i c
	order=$(jq -r '.events | to_entries[] | .value as $e |
		if $e.kind == "weight.intended" and ($e.data.to == 0) then "\(.key) intent0"
		elif ($e.kind == "weight.confirmed" or $e.kind == "weight.reconciled") and ($e.data.weight == 0) then "\(.key) confirmed0"
		else empty end' "$E2E_DIR/audit.json")
	i=$(awk '$2 == "intent0" {print $1; exit}' <<<"$order")
	c=$(awk -v i="${i:-0}" '$2 == "confirmed0" && $1 > i {print $1; exit}' <<<"$order")
	[ -n "$i" ] && [ -n "$c" ] || fail "$kind: audit lacks the intent 0 ($i) or its confirmation ($c)"
	"$CTL" audit verify "$id" >/dev/null || fail "$kind: audit chain does not verify"
	log "$kind: gateway back; reconciled to 0 and confirmed"
}
