# Shared by tests/e2e/daemon_crash_points.sh and bench/crash_soak.sh (source after lib.bash): a fast policy, canaryd
# armed with a crash point (CANARY_TEST_CRASH_AT, controller/daemon/fault.c), a sampler of HAProxy's weights, and the
# checks every rollout must pass however often canaryd was killed on the way.

# 1% -> 5% -> 100% in a few seconds at ~500 requests/s.
CRASH_POLICY=crash-fast
crash_setup() {
	cat >"$E2E_DIR/crash-fast.yaml" <<'YAML'
name: crash-fast
description: "1% -> 5% -> 100% in seconds: many rollouts, each killed somewhere"
steps:
  - weight: 1%
    hold: 2s
  - weight: 5%
    hold: 2s
  - weight: 100%
    hold: 1s
analysis:
  interval: 500ms
  min_requests: 10
  failing_ticks: 3
  inconclusive_timeout: 60s
  on_inconclusive: pause
  judge: threshold
slos:
  - name: error-rate
    metric: error_rate
    max: 5%
YAML
	setup_world "$E2E_DIR/crash-fast.yaml"
	start_load "$FE" 500 "${1:-600}"
	CRASH_STEPS="1 5 100"
}

# canaryd with a short lease (a killed daemon's rollouts are free again 2 s later), armed with KNOB (POINT:NTH) or
# not (empty). Sets CANARYD_PID.
crash_daemon() { # [KNOB]
	if [ -n "${1:-}" ]; then
		CANARY_TEST_CRASH_AT=$1 start_canaryd --lease 2000
	else
		start_canaryd --lease 2000
	fi
}

# True once PID has exited (within SECONDS).
wait_dead() { # PID SECONDS
	local i
	for i in $(seq 1 $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	return 1
}

stop_daemon() { # PID
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# Samples the candidate's share of HAProxy's weights every ~100 ms into $E2E_DIR/samples-ID: "EPOCH SHARE" lines, the
# time taken after the read (so any weight read was set, and its intent committed, before that time).
sampler_start() { # ID CSLOT BSLOT
	local id=$1 c=$2 b=$3
	: >"$E2E_DIR/sampling-$id"
	(
		for _ in $(seq 1 3000); do # at most ~5 minutes
			[ -e "$E2E_DIR/sampling-$id" ] || break
			state=$(hap "$ADMIN" "show servers state svc" 2>/dev/null) || state=
			awk -v c="$c" -v b="$b" -v t="$(date +%s.%N)" '
				/^# / { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
				col["srv_name"] && $col["srv_name"] == c { wc = $col["srv_uweight"] }
				col["srv_name"] && $col["srv_name"] == b { wb = $col["srv_uweight"] }
				END { if (wc + wb > 0) printf "%s %.4f\n", t, 100 * wc / (wc + wb) }' <<<"$state" >>"$E2E_DIR/samples-$id"
			sleep 0.1
		done
	) &
	SAMPLER_PID=$!
	E2E_PIDS+=("$SAMPLER_PID")
}

sampler_stop() { # ID
	rm -f "$E2E_DIR/sampling-$1"
	wait "$SAMPLER_PID" 2>/dev/null || true
}

# The checks, each printed when it fails; returns the number of failed checks (0: consistent).
#   the rollout is promoted; HAProxy carries the recorded intent; the intents (weight.intended, in order) are exactly
#   the policy's steps (none skipped, none twice); no sample of HAProxy's weights had the candidate above the intent
#   recorded at that time.
check_rollout() { # ID CSLOT BSLOT
	local id=$1 c=$2 b=$3 bad=0 phase weight intents share over
	phase=$(sql "SELECT phase FROM rollouts WHERE id = $id")
	[ "$phase" = promoted ] || { log "rollout $id: phase '$phase', expected promoted"; bad=$((bad + 1)); }
	weight=$(sql "SELECT weight FROM rollouts WHERE id = $id")
	share=$(hap "$ADMIN" "show servers state svc" | awk -v c="$c" -v b="$b" '
		/^# / { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
		col["srv_name"] && $col["srv_name"] == c { wc = $col["srv_uweight"] }
		col["srv_name"] && $col["srv_name"] == b { wb = $col["srv_uweight"] }
		END { printf "%.4f", (wc + wb > 0 ? 100 * wc / (wc + wb) : -1) }')
	awk -v s="$share" -v w="$weight" 'BEGIN { d = s - w; exit !(d < 0.25 && d > -0.25) }' ||
		{ log "rollout $id: HAProxy gives the candidate $share%, the recorded intent is $weight%"; bad=$((bad + 1)); }
	intents=$(sql "SELECT string_agg((data->>'to')::float8::text, ' ' ORDER BY id) FROM audit_events
	               WHERE rollout_id = $id AND kind = 'weight.intended'")
	[ "$intents" = "$CRASH_STEPS" ] ||
		{ log "rollout $id: intents '$intents', expected the steps '$CRASH_STEPS' once each"; bad=$((bad + 1)); }
	sql "SELECT extract(epoch FROM at), (data->>'to')::float8 FROM audit_events
	     WHERE rollout_id = $id AND kind = 'weight.intended' ORDER BY id" | tr '|' ' ' >"$E2E_DIR/intents-$id"
	over=$(awk 'BEGIN { n = 0 } NR == FNR { at[n] = $1; to[n] = $2; n++; next }
		{ allowed = 0; for (i = 0; i < n; i++) if (at[i] <= $1) allowed = to[i]
		  if ($2 > allowed + 0.25) { printf "%s:%s>%s ", $1, $2, allowed; k++ } }
		END { if (FNR == 0) print "no-samples" }' "$E2E_DIR/intents-$id" "$E2E_DIR/samples-$id")
	[ -z "$over" ] || { log "rollout $id: HAProxy's weight above the recorded intent: $over"; bad=$((bad + 1)); }
	return $bad
}
