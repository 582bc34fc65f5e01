#!/usr/bin/env bash
# e2e: what a pipeline and a person at a terminal see from `rollout start --wait` / `rollout wait`.
# (1) On a terminal (script(1) gives it a pty) a live line redraws in place (\r + clear-line) with the step, the
# weight, each SLO's verdict and the hold's time left; exit 0 on promotion. (2) Without a terminal: plain lines, no
# escape codes, one per change. (3) --output json: stdout is exactly one JSON document, the final state.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

# No injected errors: this test is about what is printed, and a noisy 1% step could roll back.
setup_world "$E2E_TOP/policies/demo-fast.yaml" --error-rate 0
start_load "$FE" 1000 140
start_canaryd

# (1) a terminal
rc=0
script -qefc "$CTL rollout start --service svc --candidate v2 --policy demo-fast --wait --timeout 60s" \
	"$E2E_DIR/tty.typescript" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "start --wait on a terminal exited $rc, expected 0 (promoted)"
tty=$E2E_DIR/tty.typescript
redraws=$(grep -o $'\r\e\\[K' "$tty" | wc -l)
log "terminal output: $redraws redraws"
[ "$redraws" -ge 20 ] || fail "the live line was redrawn $redraws times, expected one per poll (>= 20)"
grep -q "hold [0-9a-z]* left" "$tty" || fail "the live line does not show the hold's time left"
grep -q "step 1/3, 1%" "$tty" && grep -q "step 2/3, 5%" "$tty" || fail "the live line does not show step and weight"
grep -q "error-rate pass, p99-latency pass" "$tty" || fail "the live line does not show each slo's verdict"
tail -c 400 "$tty" | tr '\r' '\n' | grep -c "promoted, step 3/3" >/dev/null || fail "the last line is not the promoted state"

# (2) no terminal: plain lines
id=$(rollout_of v2)
"$CTL" rollout wait "$id" >"$E2E_DIR/plain.log" 2>&1 || fail "wait on a promoted rollout failed"
start_rollout_wait v3 demo-fast 60s
set +e
wait "$ROLLOUT_PID"; rc=$?
set -e
plain=$E2E_DIR/wait-v3.log
cat "$plain" >&2
[ "$rc" -eq 0 ] || fail "plain start --wait exited $rc, expected 0"
! grep -q $'[\r\e]' "$plain" || fail "plain output carries terminal escapes"
[ "$(grep -c '^rollout [0-9]* svc: ' "$plain")" -ge 4 ] || fail "plain output has fewer lines than events"
[ "$(grep -c 'promoted' "$plain")" -ge 1 ] || fail "plain output lacks the outcome"

# (3) json: one document
rc=0
"$CTL" --output json rollout start --service svc --candidate v4 --policy demo-fast --wait --timeout 60s \
	>"$E2E_DIR/out.json" 2>"$E2E_DIR/json.err" || rc=$?
[ "$rc" -eq 0 ] || fail "json start --wait exited $rc"
[ "$(jq -s 'length' "$E2E_DIR/out.json")" = 1 ] || fail "--output json printed more than one document"
[ "$(jq -r '.phase + " " + (.exit_code|tostring) + " " + .candidate' "$E2E_DIR/out.json")" = "promoted 0 v4" ] ||
	fail "json document is not the final state: $(cat "$E2E_DIR/out.json")"
log "PASS: live line on a terminal, plain lines without, one json document with --output json"
