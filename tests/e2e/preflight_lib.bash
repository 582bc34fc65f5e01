# Shared by the pre-flight e2e tests (source after lib.bash): a policy with a pre-flight written into $E2E_DIR, and
# the checks every failed pre-flight must pass.

# Writes $E2E_DIR/NAME.yaml: demo-fast's steps and SLOs (or a 1% hold of HOLD with MIN live requests) and a
# pre-flight with the given profile and SLO lines (YAML, indented by 4).
write_preflight_policy() { # NAME PROFILE_FLOW_MAP SLO_LINES
	cat >"$E2E_DIR/$1.yaml" <<YAML
name: $1
steps:
  - { weight: 1%, hold: 6s }
  - { weight: 5%, hold: 6s }
  - { weight: 100%, hold: 3s }
analysis: { interval: 1s, min_requests: 20, failing_ticks: 3, inconclusive_timeout: 30s, judge: threshold }
slos:
  - { name: error-rate, metric: error_rate, max: 5% }
  - { name: p99-latency, metric: latency, quantile: 0.99, max: 2s }
preflight:
  profile: $2
  compare: baseline
  min_requests: 30
  slos:
$3
YAML
	"$CTL" policy apply "$E2E_DIR/$1.yaml" >/dev/null
}

# The pre-flight's table as canaryd recorded it, on stderr.
show_preflight() { # ID
	sql "SELECT result->>'table' FROM preflights WHERE rollout_id = $1" >&2
}

# A pre-flight that failed ended the rollout before step 1: `start --wait` exited 1, rolled back at step 0 of the
# policy (never progressing), HAProxy never gave the candidate weight, the audit has preflight.failed with the table
# and the state change, a decision with the verdicts per SLO and band, and the chain verifies.
expect_preflight_failed() { # ID WAIT_RC CSLOT WHY
	local id=$1 rc=$2 cslot=$3 why=$4
	[ "$rc" -eq 1 ] || fail "rollout $id: start --wait exited $rc, expected 1 (rolled back)"
	[ "$(sql "SELECT phase || ' ' || step FROM rollouts WHERE id = $id")" = "rolled_back -1" ] ||
		fail "rollout $id: not rolled back before step 1: $(sql "SELECT phase, step FROM rollouts WHERE id = $id")"
	[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'weight.intended'")" -eq 0 ] ||
		fail "rollout $id: a weight was intended before the pre-flight failed"
	[ "$(hap_weight "$ADMIN" "svc/$cslot")" -eq 0 ] || fail "rollout $id: $cslot (candidate) has weight"
	sql "SELECT reason FROM rollouts WHERE id = $id" | grep -q "$why" ||
		fail "rollout $id: reason lacks '$why': $(sql "SELECT reason FROM rollouts WHERE id = $id")"
	local n
	n=$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'preflight.failed'
	         AND data->>'table' LIKE '%long tail%'")
	[ "$n" -eq 1 ] || fail "rollout $id: expected one preflight.failed event with the per-band table, found $n"
	n=$(sql "SELECT count(*) FROM decisions d JOIN slo_verdicts v ON v.decision_id = d.id
	         WHERE d.rollout_id = $id AND v.slo LIKE 'preflight:%' AND v.verdict = 'fail'")
	[ "$n" -ge 1 ] || fail "rollout $id: no failing pre-flight verdict recorded with the decision"
	"$CTL" rollout audit "$id" >"$E2E_DIR/audit-$id.log"
	grep -q "preflight.failed" "$E2E_DIR/audit-$id.log" || fail "rollout $id: canaryctl audit lacks preflight.failed"
	grep -q "pending -> rolled_back" "$E2E_DIR/audit-$id.log" || fail "rollout $id: audit lacks the state change"
	"$CTL" audit verify "$id" >/dev/null || fail "rollout $id: the audit chain does not verify"
}
