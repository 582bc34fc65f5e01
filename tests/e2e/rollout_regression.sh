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
	expect_regression_rolled_back "$cand" demo-fast 90s green "$GREEN" blue "$inject" "$what"
	local id=$REGRESS_ID
	# The threshold judge confirms with failing_ticks (3) failing verdicts, each with its numbers.
	local fails
	fails=$(sql "SELECT count(*) FROM decisions d JOIN slo_verdicts v ON v.decision_id = d.id
	             WHERE d.rollout_id = $id AND v.slo = '$slo' AND v.verdict = 'fail'
	               AND v.candidate > v.objective AND v.n_candidate > 0")
	[ "$fails" -ge 3 ] || fail "$what: expected >= 3 failing '$slo' verdicts with numbers, found $fails"
	log "$what rolled back: $(sql "SELECT reason FROM rollouts WHERE id = $id")"
}

regress v2 '{"latency_median":0.4}' "latency regression (p99 x2)" p99-latency
regress v3 '{"error_rate":0.05}' "error regression (0.5% -> 5%)" error-rate
log "PASS: both regressions rolled back"
