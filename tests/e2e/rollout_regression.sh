#!/usr/bin/env bash
# e2e: regressions injected after the 1% step began are rolled back by themselves: first a latency regression
# (candidate p99 x2), then an error regression (candidate errors 0.5% -> 5%). Each time `rollout start --wait` exits
# 1, HAProxy's candidate weight is 0, the live slot stays live, and the audit shows the numbers that triggered it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world
start_load "$FE" 1500 150
start_canaryd

regress() { # CANDIDATE ADMIN_JSON WHAT SLO
	local cand=$1 inject=$2 what=$3 slo=$4
	modelsim_admin "$GREEN" '{"latency_median":0.2,"error_rate":0.005}'
	start_rollout_wait "$cand" demo-fast 90s
	local id
	id=$(rollout_of "$cand")
	wait_step "$id" 0 20
	sleep 1
	log "injecting $what into green (candidate) during step 1 of rollout $id"
	modelsim_admin "$GREEN" "$inject"
	set +e
	wait "$ROLLOUT_PID"
	local rc=$?
	set -e
	cat "$E2E_DIR/wait-$cand.log" >&2
	[ "$rc" -eq 1 ] || fail "$what: rollout start --wait exited $rc, expected 1 (rolled back)"
	[ "$(hap_weight "$ADMIN" svc/green)" -eq 0 ] || fail "$what: green (candidate) still has weight"
	[ "$(hap_weight "$ADMIN" svc/blue)" -gt 0 ] || fail "$what: blue (baseline) has no weight"
	[ "$("$CTL" --output json service show svc | jq -r .live.name)" = blue ] || fail "$what: blue is no longer live"
	[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = rolled_back ] || fail "$what: phase is not rolled_back"
	# The audit holds the failing verdicts with their numbers, the rollback and the confirmed weight 0.
	local fails
	fails=$(sql "SELECT count(*) FROM decisions d JOIN slo_verdicts v ON v.decision_id = d.id
	             WHERE d.rollout_id = $id AND v.slo = '$slo' AND v.verdict = 'fail'
	               AND v.candidate > v.objective AND v.n_candidate > 0")
	[ "$fails" -ge 3 ] || fail "$what: expected >= 3 failing '$slo' verdicts with numbers, found $fails"
	"$CTL" rollout audit "$id" >"$E2E_DIR/audit-$id.log"
	grep -q "rolled_back" "$E2E_DIR/audit-$id.log" || fail "$what: audit lacks the rollback"
	grep -q "weight.confirmed.*weight 0%" "$E2E_DIR/audit-$id.log" || fail "$what: audit lacks the confirmed weight 0"
	log "$what rolled back: $(sql "SELECT reason FROM rollouts WHERE id = $id")"
}

regress v2 '{"latency_median":0.4}' "latency regression (p99 x2)" p99-latency
regress v3 '{"error_rate":0.05}' "error regression (0.5% -> 5%)" error-rate
log "PASS: both regressions rolled back"
