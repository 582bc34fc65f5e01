#!/usr/bin/env bash
# e2e: canaryd's loop under a memory checker: a full healthy rollout, an aborted one, a gateway outage and SIGTERM,
# with no leak and no invalid access. In a plain build the checker is valgrind (its exit code and report are
# checked); in an ASan+UBSan build (CANARY_SANITIZE=ON) valgrind cannot run the binary, and the sanitizers' own
# reports in canaryd's log fail the test instead (lib.bash checks every log on exit).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
if [ "${CANARY_SANITIZE:-OFF}" = ON ]; then
	checker="AddressSanitizer+LeakSanitizer"
	prefix=
else
	command -v valgrind >/dev/null || fail "valgrind is not installed; run scripts/deps"
	checker=valgrind
	prefix="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
fi

setup_world
start_load "$FE" 500 120
CANARYD_PREFIX=$prefix start_canaryd --poll 300

set +e
"$CTL" rollout start --service svc --candidate v2 --policy demo-fast --wait --timeout 120s >"$E2E_DIR/wait-v2.log" 2>&1
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "healthy rollout under $checker exited $rc"

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
[ "$drc" -ne 99 ] || { cat "$E2E_DIR/canaryd.log" >&2; fail "$checker found errors or leaks in canaryd"; }
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$E2E_DIR/canaryd.log"; then
	cat "$E2E_DIR/canaryd.log" >&2
	fail "$checker found errors or leaks in canaryd"
fi
[ "$drc" -eq 0 ] || fail "canaryd exited $drc after SIGTERM"
grep -q '"event":"stopped"' "$E2E_DIR/canaryd.log" || fail "canaryd did not log its clean stop"
log "PASS: canaryd under $checker: no leaks, no invalid accesses, clean SIGTERM"
