#!/usr/bin/env bash
# e2e: canaryd's loop under valgrind: a full healthy rollout, an aborted one, a gateway outage and SIGTERM, with
# no leak and no invalid access (valgrind's exit code and its report are checked).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
command -v valgrind >/dev/null || fail "valgrind is not installed; run scripts/deps"

setup_world
start_load "$FE" 500 120
CANARYD_PREFIX="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99" \
	start_canaryd --poll 300

set +e
"$CTL" rollout start --service svc --candidate v2 --policy demo-fast --wait --timeout 120s >"$E2E_DIR/wait-v2.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "healthy rollout under valgrind exited $rc"

start_rollout_wait v3 demo-fast 60s
id=$(rollout_of v3)
wait_step "$id" 0 30
kill -STOP "$HAPROXY_PID"            # the gateway stops answering: timeouts, holds
sleep 4
kill -CONT "$HAPROXY_PID"
"$CTL" rollout abort "$id" --reason "valgrind e2e" >/dev/null || fail "abort refused"
set +e
wait "$ROLLOUT_PID"; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "aborted rollout exited $rc, expected 2"

kill -TERM "$CANARYD_PID"
set +e
wait "$CANARYD_PID"; drc=$?
set -e
E2E_PIDS=("${E2E_PIDS[@]/$CANARYD_PID}")
[ "$drc" -ne 99 ] || { cat "$E2E_DIR/canaryd.log" >&2; fail "valgrind found errors or leaks in canaryd"; }
[ "$drc" -eq 0 ] || fail "canaryd exited $drc after SIGTERM"
grep -q '"event":"stopped"' "$E2E_DIR/canaryd.log" || fail "canaryd did not log its clean stop"
log "PASS: canaryd under valgrind: no leaks, no invalid accesses, clean SIGTERM"
