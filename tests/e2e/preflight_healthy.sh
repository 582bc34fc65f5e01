#!/usr/bin/env bash
# e2e (issue 12, item 6): a healthy candidate passes its pre-flight (streaming chat at peak against the live slot,
# every answer and streamed chunk checked against the service's contract) and is then promoted through
# 1% -> 5% -> 100%; the pre-flight's event comes before any weight moved.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/preflight_lib.bash"

setup_world
cat >>"$E2E_DIR/service.yaml" <<'YAML'
contract:
  response: openai
YAML
"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
write_preflight_policy pf-healthy \
	'{ rate: 60, duration: 6s, prompt_tokens: { median: 100, p99: 4000 }, output_tokens: { median: 8, p99: 32 }, stream: true, endpoint: chat, timeout: 5s }' \
	'    - { name: errors, metric: error_rate, max: 5% }
    - { name: ttft-p90, metric: ttft, quantile: 0.9, max: 2s, max_increase: 3x }
    - { name: contract, metric: contract_violations, max: 1% }'
start_load "$FE" 1000 60
start_canaryd

t0=$(date +%s.%N)
set +e
"$CTL" rollout start --service svc --candidate v2 --policy pf-healthy --wait --timeout 50s >"$E2E_DIR/wait.log" 2>&1
rc=$?
set -e
t1=$(date +%s.%N)
cat "$E2E_DIR/wait.log" >&2
id=$(rollout_of v2)
show_preflight "$id"
[ "$rc" -eq 0 ] || fail "rollout $id: start --wait exited $rc, expected 0 (promoted)"
[ "$(sql "SELECT state FROM preflights WHERE rollout_id = $id")" = passed ] || fail "the pre-flight did not pass"
[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'preflight.passed'")" -eq 1 ] ||
	fail "no preflight.passed event"
# the pre-flight came before any weight: its event precedes the first weight.intended
[ "$(sql "SELECT min(id) FILTER (WHERE kind = 'preflight.passed') < min(id) FILTER (WHERE kind = 'weight.intended')
          FROM audit_events WHERE rollout_id = $id")" = t ] || fail "a weight moved before the pre-flight passed"
[ "$(sql "SELECT (result->'candidate'->>'contract_checked')::int > 0 FROM preflights WHERE rollout_id = $id")" = t ] ||
	fail "no answer was checked against the contract"
[ "$("$CTL" --output json service show svc | jq -r .live.name)" = green ] || fail "green is not live"
"$CTL" audit verify "$id" >/dev/null || fail "the audit chain does not verify"
log "PASS: pre-flight passed and rollout $id promoted in $(echo "$t1 - $t0" | bc) s"
