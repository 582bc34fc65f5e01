#!/usr/bin/env bash
# e2e: operators steer a rollout, as themselves. Login roles alice and bob (canary_operator) and vera
# (canary_viewer). Policy demo-approval: the 100% step needs an approval by someone other than who started it.
# Checks: commands that make no sense (approve or resume a progressing rollout, approve while paused, anything on an
# ended rollout) exit 65 and write nothing; a viewer's abort exits 77 and changes nothing; `wait --exit-on-pause`
# exits 4 while the rollout awaits approval; `status --watch` says who it waits for; alice may not approve her own
# rollout (the CLI refuses with 77, and the daemon refuses a command row written past the CLI); pause and resume;
# bob's approval promotes it (wait exits 0); `promote --full` is recorded as an emergency.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

setup_world "$E2E_TOP/policies/demo-approval.yaml"
# Roles are cluster-wide and tests may run in parallel: names of our own, dropped at the end.
sfx="$$_$RANDOM"
ALICE="alice_$sfx" BOB="bob_$sfx" VERA="vera_$sfx"
psql -q "$E2E_ADMIN_URL" -v ON_ERROR_STOP=1 >/dev/null <<SQL || fail "cannot create the login roles"
CREATE ROLE $ALICE LOGIN IN ROLE canary_operator;
CREATE ROLE $BOB LOGIN IN ROLE canary_operator;
CREATE ROLE $VERA LOGIN IN ROLE canary_viewer;
SQL
e2e_extra_cleanup() {
	psql -q "$E2E_ADMIN_URL" -c "DROP ROLE IF EXISTS $ALICE, $BOB, $VERA" >/dev/null 2>&1 || true
}

# The test database's URL, logged in as ROLE (trust auth on the throwaway cluster).
url_as() { # ROLE
	local rest=${DATABASE_URL#*://}
	[[ "$rest" == *@* ]] && rest=${rest#*@}
	echo "postgresql://$1@$rest"
}
ctl_as() { # ROLE ARGS...
	local role=$1
	shift
	"$CTL" --db "$(url_as "$role")" "$@"
}
# Runs a command expected to exit with CODE; its stderr goes to $E2E_DIR/last.err.
expect_rc() { # CODE WHAT ARGS...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$E2E_DIR/last.out" 2>"$E2E_DIR/last.err" || rc=$?
	cat "$E2E_DIR/last.err" >&2
	[ "$rc" -eq "$want" ] || fail "$what exited $rc, expected $want"
	[ "$(wc -l <"$E2E_DIR/last.err")" -le 1 ] || fail "$what printed more than one line on stderr"
}
counts() { # ID -> commands and audit events of the rollout, and its phase
	sql "SELECT (SELECT count(*) FROM commands WHERE rollout_id = $1) || '/' ||
	            (SELECT count(*) FROM audit_events WHERE rollout_id = $1 AND kind LIKE 'command.%') || '/' ||
	            (SELECT phase FROM rollouts WHERE id = $1)"
}

start_load "$FE" 1000 170
start_canaryd

ctl_as "$ALICE" rollout start --service svc --candidate v2 --policy demo-approval --reason "e2e: release v2" \
	>/dev/null || fail "alice cannot start a rollout"
id=$(rollout_of v2)
[ "$(sql "SELECT created_by FROM rollouts WHERE id = $id")" = "$ALICE" ] || fail "rollout $id not created by $ALICE"
wait_step "$id" 0 20

# Nonsense on a progressing rollout: one line, exit 65, nothing written.
before=$(counts "$id")
expect_rc 65 "approve of a progressing rollout" ctl_as "$BOB" rollout approve "$id"
grep -q "not awaiting approval" "$E2E_DIR/last.err" || fail "approve refusal does not say why"
expect_rc 65 "resume of a progressing rollout" ctl_as "$BOB" rollout resume "$id"
expect_rc 65 "approve of an unknown rollout" ctl_as "$BOB" rollout approve 999999
expect_rc 64 "approve with a reason too long" ctl_as "$BOB" rollout approve "$id" --reason "$(printf 'x%.0s' $(seq 1 501))"
# A viewer may read but not steer.
expect_rc 77 "abort by a viewer" ctl_as "$VERA" rollout abort "$id" --reason "viewer tries"
grep -q "permission denied" "$E2E_DIR/last.err" || fail "viewer's abort does not say permission denied"
ctl_as "$VERA" rollout status "$id" >/dev/null || fail "a viewer cannot read the status"
after=$(counts "$id")
[ "${before%/*}" = "${after%/*}" ] || fail "refused commands wrote something: $before -> $after"
[ "$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id")" = 0 ] || fail "a refused command left a row"

# The pipeline's wait returns 4 once the rollout waits for a person.
rc=0
ctl_as "$BOB" rollout wait "$id" --exit-on-pause --timeout 60s >"$E2E_DIR/wait-pause.log" 2>&1 || rc=$?
cat "$E2E_DIR/wait-pause.log" >&2
[ "$rc" -eq 4 ] || fail "wait --exit-on-pause exited $rc, expected 4"
[ "$(sql "SELECT phase || ' ' || step FROM rollouts WHERE id = $id")" = "awaiting_approval 1" ] ||
	fail "rollout is not awaiting approval at step 2: $(sql "SELECT phase, step FROM rollouts WHERE id = $id")"
grep -q "awaiting_approval" "$E2E_DIR/wait-pause.log" || fail "wait did not print the awaiting_approval state"

# status --watch: bounded frames, each naming who may approve.
ctl_as "$VERA" rollout status --watch --count 2 >"$E2E_DIR/watch.log" || fail "status --watch failed"
cat "$E2E_DIR/watch.log" >&2
[ "$(grep -c "active rollout" "$E2E_DIR/watch.log")" = 2 ] || fail "status --watch --count 2 did not draw 2 frames"
grep -q "awaiting approval of step 3 since .* by someone other than $ALICE" "$E2E_DIR/watch.log" ||
	fail "status --watch does not say who the rollout waits for"

# alice may not approve her own rollout: the CLI refuses before writing anything...
expect_rc 77 "approve by the starter" ctl_as "$ALICE" rollout approve "$id"
grep -q "requires a different approver" "$E2E_DIR/last.err" || fail "self-approval refusal does not say why"
[ "$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id")" = 0 ] || fail "self-approval left a command row"
# ...and past the CLI with plain SQL: no table write, and the function refuses her approval (SQLSTATE 42501).
out=$(psql -qAt "$(url_as "$ALICE")" -c "INSERT INTO commands (rollout_id, kind) VALUES ($id, 'approve')" 2>&1) &&
	fail "alice inserted a command row by hand"
grep -q "permission denied for table commands" <<<"$out" || fail "hand-made command row: $out"
out=$(psql -qAt -v VERBOSITY=verbose "$(url_as "$ALICE")" -c "SELECT canary.queue_command($id, 'approve', NULL)" 2>&1) &&
	fail "alice queued her own approval through canary.queue_command"
grep -q "42501.*requires a different approver" <<<"$out" || fail "canary.queue_command self-approval: $out"
[ "$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id")" = 0 ] || fail "a refused self-approval left a row"
# The daemon checks again (defence in depth): a row in alice's name that only the database owner could have written
# (a database from before the write functions) is refused and the refusal audited.
sql "INSERT INTO commands (rollout_id, kind, actor) VALUES ($id, 'approve', '$ALICE')" >/dev/null
for _ in $(seq 1 50); do
	[ "$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id AND handled_at IS NOT NULL")" = 1 ] && break
	sleep 0.1
done
sql "SELECT result FROM commands WHERE rollout_id = $id" | grep -c "^refused: permission denied" >/dev/null ||
	fail "the daemon did not refuse alice's own approval: $(sql "SELECT result FROM commands WHERE rollout_id = $id")"
[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'command.refused' AND actor = '$ALICE'")" = 1 ] ||
	fail "the refused self-approval is not audited"
[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = awaiting_approval ] || fail "a refused approval moved the rollout"

# pause and resume; approve while paused makes no sense.
ctl_as "$BOB" rollout pause "$id" --reason "e2e: look first" || fail "pause was refused"
[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = paused ] || fail "rollout not paused"
rc=0
ctl_as "$BOB" rollout wait "$id" --exit-on-pause --timeout 10s >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 4 ] || fail "wait --exit-on-pause on a paused rollout exited $rc, expected 4"
n=$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id")
expect_rc 65 "approve of a paused rollout" ctl_as "$BOB" rollout approve "$id"
[ "$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id")" = "$n" ] || fail "approve while paused left a row"
ctl_as "$BOB" rollout resume "$id" || fail "resume was refused"
[ "$(sql "SELECT phase FROM rollouts WHERE id = $id")" = awaiting_approval ] || fail "resume did not go back to awaiting approval"

# bob approves: the 100% step is applied and the rollout is promoted.
ctl_as "$BOB" rollout approve "$id" --reason "e2e: numbers look fine" || fail "bob's approval was refused"
rc=0
ctl_as "$VERA" rollout wait "$id" --timeout 60s >"$E2E_DIR/wait-final.log" 2>&1 || rc=$?
cat "$E2E_DIR/wait-final.log" >&2
[ "$rc" -eq 0 ] || fail "wait after the approval exited $rc, expected 0 (promoted)"
[ "$(hap_weight "$ADMIN" svc/green)" -gt 0 ] && [ "$(hap_weight "$ADMIN" svc/blue)" -eq 0 ] ||
	fail "haproxy does not carry the promoted candidate alone"
[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'command.accepted'
        AND actor = '$BOB' AND data->>'command' = 'approve' AND reason = 'e2e: numbers look fine'")" = 1 ] ||
	fail "the audit lacks bob's approval with its reason"
n=$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id")
expect_rc 65 "abort of a promoted rollout" ctl_as "$BOB" rollout abort "$id"
grep -q "rollout $id has ended (promoted); nothing to abort" "$E2E_DIR/last.err" ||
	fail "the abort of an ended rollout does not say it has ended: $(cat "$E2E_DIR/last.err")"
[ "$(wc -l <"$E2E_DIR/last.err")" = 1 ] || fail "the abort of an ended rollout says more than one line"
expect_rc 65 "resume of a promoted rollout" ctl_as "$BOB" rollout resume "$id"
[ "$(sql "SELECT count(*) FROM commands WHERE rollout_id = $id")" = "$n" ] || fail "a command on an ended rollout left a row"

# The emergency path: promote --full skips the steps and is recorded as an emergency.
ctl_as "$ALICE" rollout start --service svc --candidate v3 --policy demo-approval >/dev/null || fail "cannot start v3"
id=$(rollout_of v3)
wait_step "$id" 0 20
ctl_as "$BOB" rollout promote "$id" --full --reason "e2e: hotfix" | grep -c "emergency" >/dev/null ||
	fail "promote --full does not say it is the emergency path"
ctl_as "$BOB" rollout wait "$id" --timeout 30s >/dev/null || fail "promote --full did not end promoted"
[ "$(sql "SELECT count(*) FROM audit_events WHERE rollout_id = $id AND kind = 'command.accepted'
        AND data->>'command' = 'promote_full' AND (data->>'emergency')::boolean AND actor = '$BOB'")" = 1 ] ||
	fail "promote --full is not audited as an emergency"
[ "$(sql "SELECT count(*) FROM audit_events WHERE kind = 'command.accepted' AND (data->>'emergency')::boolean")" = 1 ] ||
	fail "an ordinary command is marked as an emergency"
log "PASS: approvals by a second operator, refusals write nothing, viewers steer nothing, emergencies are marked"
