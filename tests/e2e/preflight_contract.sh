#!/usr/bin/env bash
# e2e (issue 12, item 6): the service declares an inference contract (a get_weather tool with required city and unit);
# a candidate whose tool calls leave out a required property is rolled back before step 1 on contract violations,
# while the live slot, driven with the same prompts, keeps the contract.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/preflight_lib.bash"

setup_world
cat >>"$E2E_DIR/service.yaml" <<'YAML'
contract:
  tools:
    - name: get_weather
      parameters:
        type: object
        properties:
          city: { type: string }
          unit: { type: string, enum: [c, f] }
        required: [city, unit]
YAML
"$CTL" service apply "$E2E_DIR/service.yaml" >/dev/null
modelsim_admin "$GREEN" '{"tool_call_invalid":1}'
write_preflight_policy pf-contract \
	'{ rate: 60, duration: 8s, prompt_tokens: { median: 50, p99: 2000 }, endpoint: chat, timeout: 5s }' \
	'    - { name: errors, metric: error_rate, max: 5% }
    - { name: contract, metric: contract_violations, max: 1% }'
start_load "$FE" 1000 60
start_canaryd

set +e
"$CTL" rollout start --service svc --candidate v2 --policy pf-contract --wait --timeout 45s >"$E2E_DIR/wait.log" 2>&1
rc=$?
set -e
cat "$E2E_DIR/wait.log" >&2
id=$(rollout_of v2)
show_preflight "$id"
expect_preflight_failed "$id" "$rc" green "contract"
[ "$(sql "SELECT result->'baseline'->>'contract_violations' FROM preflights WHERE rollout_id = $id")" = 0 ] ||
	fail "the baseline broke the contract too"
sql "SELECT result->'candidate'->>'contract_example' FROM preflights WHERE rollout_id = $id" |
	grep -q "required property 'city' is missing" || fail "the first violation is not in words"
log "PASS: contract violations rolled back rollout $id before step 1: $(sql "SELECT reason FROM rollouts WHERE id = $id")"
