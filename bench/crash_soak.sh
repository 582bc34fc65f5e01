#!/usr/bin/env bash
# Soak: random SIGKILLs of canaryd across many rollouts. Each rollout starts with canaryd armed at a random crash
# point and turn (CANARY_TEST_CRASH_AT=POINT:NTH, controller/daemon/fault.c); every time it dies it is restarted at
# once, armed again at another random point, until KILLS kills were done. Operators' commands run meanwhile (a pause
# and a resume in about a third of the rollouts, and always when the command point is armed). Real parts on
# loopback: HAProxy with ~500 requests/s through it, two modelsims, a fresh database.
# Prints the counts (figures, never pass/fail): kills by point, rollouts by outcome, inconsistencies found by the
# checks of tests/e2e/crash_lib.bash (outcome, HAProxy vs the record, steps once each, weight never above the
# intent), and the result of `canaryctl audit verify`.
#   CANARY_BINARY_DIR=build DATABASE_URL=$(scripts/pgtmp start) bench/crash_soak.sh [KILLS]   (default 50)
# SEED=N repeats a run's choices.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/crash_lib.bash"

KILLS=${1:-50}
[[ "$KILLS" =~ ^[0-9]+$ ]] && [ "$KILLS" -ge 1 ] && [ "$KILLS" -le 1000 ] || fail "KILLS '$KILLS' is not a number in 1..1000"
SEED=${SEED:-$$}
RANDOM=$SEED
MAX_ROLLOUTS=$((KILLS * 2 + 10))
DEADLINE=$(($(date +%s) + 60 * 60))   # an hour at most, however it goes

# point and the largest NTH that still falls inside one rollout of crash-fast
POINTS=(after_claim:12 after_intent:3 after_gateway:3 before_confirm:4 mid_record:12 command:1)
pick() {
	local p=${POINTS[$((RANDOM % ${#POINTS[@]}))]}
	echo "${p%%:*}:$((1 + RANDOM % ${p##*:}))"
}

crash_setup 600
kills=0 rollouts=0 bad=0 bad_rollouts=0 deaths=0 stuck=0
declare -A by_point=() by_outcome=()
knob=$(pick)
crash_daemon "$knob"
while [ "$kills" -lt "$KILLS" ] && [ "$rollouts" -lt "$MAX_ROLLOUTS" ] && [ "$(date +%s)" -lt "$DEADLINE" ]; do
	rollouts=$((rollouts + 1))
	kill -0 "$LOAD_PID" 2>/dev/null || start_load "$FE" 500 600 # the load tool runs 10 minutes at most
	cslot=$("$CTL" --output json service show svc | jq -r .idle.name)
	bslot=$("$CTL" --output json service show svc | jq -r .live.name)
	"$CTL" rollout start --service svc --candidate "s$rollouts" --policy "$CRASH_POLICY" >/dev/null
	id=$(rollout_of "s$rollouts")
	sampler_start "$id" "$cslot" "$bslot"
	commands=0
	[ "${knob%%:*}" = command ] || [ $((RANDOM % 3)) -eq 0 ] && commands=1
	cmd_pid= paused_once=0 phase=
	for _ in $(seq 1 600); do # 120 s at most per rollout
		phase=$(sql "SELECT phase FROM rollouts WHERE id = $id" 2>/dev/null || true)
		if ! kill -0 "$CANARYD_PID" 2>/dev/null; then
			wait "$CANARYD_PID" 2>/dev/null || true
			if [ "$(grep -c '"event":"fault.crash"' "$E2E_DIR/canaryd.log")" -gt "$kills" ]; then
				kills=$((kills + 1))
				by_point[${knob%%:*}]=$((${by_point[${knob%%:*}]:-0} + 1))
			else
				deaths=$((deaths + 1)) # died without being told to: a finding
				log "canaryd died outside a crash point (rollout $id); see canaryd.log"
			fi
			if [ "$kills" -lt "$KILLS" ]; then knob=$(pick); else knob=; fi
			crash_daemon "$knob"
		fi
		case $phase in promoted | rolled_back | aborted | failed) break ;; esac
		if [ -n "$cmd_pid" ] && ! kill -0 "$cmd_pid" 2>/dev/null; then
			wait "$cmd_pid" 2>/dev/null || true
			cmd_pid=
		fi
		if [ "$commands" = 1 ] && [ -z "$cmd_pid" ]; then
			if [ "$phase" = progressing ] && [ "$paused_once" = 0 ]; then
				"$CTL" rollout pause "$id" --reason soak >>"$E2E_DIR/commands.log" 2>&1 &
				cmd_pid=$!
				E2E_PIDS+=("$cmd_pid")
				paused_once=1
			elif [ "$phase" = paused ]; then
				"$CTL" rollout resume "$id" --reason soak >>"$E2E_DIR/commands.log" 2>&1 &
				cmd_pid=$!
				E2E_PIDS+=("$cmd_pid")
			fi
		fi
		sleep 0.2
	done
	[ -z "$cmd_pid" ] || wait "$cmd_pid" 2>/dev/null || true
	sampler_stop "$id"
	case $phase in
	promoted | rolled_back | aborted | failed) ;;
	*) # make room for the next rollout of the service
		stuck=$((stuck + 1))
		"$CTL" rollout abort "$id" --reason "soak: unfinished after 120s" >>"$E2E_DIR/commands.log" 2>&1 || true
		phase="unfinished($phase)"
		;;
	esac
	by_outcome[$phase]=$((${by_outcome[$phase]:-0} + 1))
	if [[ "$phase" == promoted ]]; then
		set +e
		check_rollout "$id" "$cslot" "$bslot"
		n=$?
		set -e
	else
		log "rollout $id ended '$phase': a healthy candidate should be promoted"
		n=1
	fi
	bad=$((bad + n))
	[ "$n" -eq 0 ] || bad_rollouts=$((bad_rollouts + 1))
	log "rollout $id: $phase; $kills kills so far"
done
stop_daemon "$CANARYD_PID"
verify=intact
"$CTL" audit verify >"$E2E_DIR/verify.log" 2>&1 || verify="FAILED: $(head -n 1 "$E2E_DIR/verify.log")"

echo "crash soak (seed $SEED): $kills SIGKILLs across $rollouts rollouts, each followed by a restart"
printf '  kills by point:'; for p in "${!by_point[@]}"; do printf ' %s %s' "$p" "${by_point[$p]}"; done; echo
printf '  rollouts by outcome:'; for o in "${!by_outcome[@]}"; do printf ' %s %s' "$o" "${by_outcome[$o]}"; done; echo
echo "  inconsistencies found: $bad (in $bad_rollouts rollouts); unexpected canaryd deaths: $deaths; unfinished: $stuck"
echo "  audit verify: $verify"
if [ "$bad" -gt 0 ] || [ "$deaths" -gt 0 ] || [ "$verify" != intact ]; then
	kept=$(mktemp -d /tmp/canary-soak.XXXXXX)
	cp -r "$E2E_DIR"/. "$kept"/
	echo "  logs of this run: $kept"
fi
