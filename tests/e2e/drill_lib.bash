# Shared by the failover drill e2e tests (drill_*.sh): the world of lib.bash (blue live, green the warm secondary,
# HAProxy in front, real traffic from loadgen) and helpers to start a drill and watch it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

# Runs `canaryctl drill failover` in the background; DRILL_PID, output in $E2E_DIR/drill-NAME.log.
start_drill() { # NAME HOLD [ARGS...]
	local name=$1 hold=$2
	shift 2
	"$CTL" drill failover --service svc --policy demo-fast --hold "$hold" --baseline "${DRILL_BASELINE:-6s}" --timeout 55s "$@" \
		>"$E2E_DIR/drill-$name.log" 2>&1 &
	DRILL_PID=$!
}

# Prints the id of the newest drill once there is one.
drill_id() {
	local id
	for _ in $(seq 1 100); do
		id=$(sql "SELECT max(id) FROM drills")
		[ -n "$id" ] && { echo "$id"; return 0; }
		sleep 0.1
	done
	fail "no drill was created"
}

# Waits until drill ID is in PHASE, up to SECONDS (by the clock: a loaded machine's psql is slow).
wait_drill_phase() { # ID PHASE SECONDS
	local deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		[ "$(sql "SELECT phase FROM drills WHERE id = $1")" = "$2" ] && return 0
		sleep 0.1
	done
	fail "drill $1 did not reach phase $2 in $3s (it is $(sql "SELECT phase || ': ' || reason FROM drills WHERE id = $1"))"
}

# Waits for the background `drill failover`; prints its output; sets DRILL_RC.
finish_drill() { # NAME
	set +e
	wait "$DRILL_PID"
	DRILL_RC=$?
	set -e
	cat "$E2E_DIR/drill-$1.log" >&2
}

# HAProxy carries all traffic on blue (the primary) again.
expect_primary() { # WHAT
	[ "$(hap_weight "$ADMIN" svc/green)" -eq 0 ] || fail "$1: green (the secondary) still has weight $(hap_weight "$ADMIN" svc/green)"
	[ "$(hap_weight "$ADMIN" svc/blue)" -gt 0 ] || fail "$1: blue (the primary) has no weight"
	[ "$("$CTL" --output json service show svc | jq -r .live.name)" = blue ] || fail "$1: blue is no longer live"
}

# The drill's timings as one line (from the stored figures).
drill_timings() { # ID
	sql "SELECT format('time to shift %s s, hold %s s, time to shift back %s s; shift: %s requests, %s errors, p99 %s s; hold on green: %s requests, %s errors, p99 %s s',
	        round((figures->>'shift_s')::numeric, 3), round((figures->>'hold_s')::numeric, 1),
	        round((figures->>'restore_s')::numeric, 3), figures->'shift'->>'requests', figures->'shift'->>'errors',
	        round((figures->'shift'->>'p99_s')::numeric, 3), figures->'hold'->>'requests', figures->'hold'->>'errors',
	        round((figures->'hold'->>'p99_s')::numeric, 3)) FROM drills WHERE id = $1"
}
