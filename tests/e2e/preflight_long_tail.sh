#!/usr/bin/env bash
# e2e (issue 12, item 6): a candidate that is fine on short prompts but 8x slower on prompts over 1,000 tokens. Live
# traffic is short prompts: with a policy without a pre-flight it passes the 1% step (and the 5% one begins); with a
# pre-flight at peak (streaming chat, long-tailed prompts, the live slot driven with the same prompts, interleaved)
# it is rolled back before step 1, and the table per prompt-length band shows why.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/preflight_lib.bash"

setup_world "$E2E_TOP/policies/demo-fast.yaml" --sleep 1 --latency-median 0.05 --ttft-median 0.02 --error-rate 0
modelsim_admin "$GREEN" '{"long_prompt_tokens":1000,"long_prompt_factor":8}'
write_preflight_policy pf-long \
	'{ rate: 60, duration: 10s, prompt_tokens: { median: 100, p99: 6000 }, output_tokens: { median: 16, p99: 64 }, stream: true, endpoint: chat, timeout: 10s }' \
	'    - { name: errors, metric: error_rate, max: 5% }
    - { name: ttft-p90, metric: ttft, quantile: 0.9, max: 150ms }
    - { name: latency-p90, metric: latency, quantile: 0.9, max_increase: 2x }'
write_preflight_policy live-only '{ rate: 1, duration: 1s }' '    - { name: e, metric: error_rate, max: 50% }'
sed -i '/^preflight:/,$d' "$E2E_DIR/live-only.yaml"   # the same steps and SLOs, no pre-flight
"$CTL" policy apply "$E2E_DIR/live-only.yaml" >/dev/null
"$LOADGEN" --url "http://127.0.0.1:$FE/" --rate 400 --duration 60 --concurrency 48 >"$E2E_DIR/loadgen.log" 2>&1 &
E2E_PIDS+=($!)
start_canaryd

log "rollout of v2 (slow long tail) with policy live-only: short live traffic at 1%"
"$CTL" rollout start --service svc --candidate v2 --policy live-only --reason "live only" >/dev/null
id=$(rollout_of v2)
wait_step "$id" 1 40
log "rollout $id passed the 1% step on short traffic: $(sql "SELECT reason FROM rollouts WHERE id = $id")"
"$CTL" rollout abort "$id" --reason "e2e: the 1% step was the point" >/dev/null
for _ in $(seq 1 50); do [ "$(hap_weight "$ADMIN" svc/green)" -eq 0 ] && break; sleep 0.1; done

log "rollout of v2 with policy pf-long: pre-flight first"
t0=$(date +%s.%N)
set +e
"$CTL" rollout start --service svc --candidate v2b --policy pf-long --wait --timeout 50s >"$E2E_DIR/wait.log" 2>&1
rc=$?
set -e
t1=$(date +%s.%N)
cat "$E2E_DIR/wait.log" >&2
id2=$(rollout_of v2b)
show_preflight "$id2"
expect_preflight_failed "$id2" "$rc" green "long tail"
log "PASS: live 1% step passed (rollout $id), pre-flight rolled back rollout $id2 before step 1 in $(echo "$t1 - $t0" | bc) s"
