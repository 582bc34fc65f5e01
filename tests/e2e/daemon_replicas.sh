#!/usr/bin/env bash
# e2e (issue 13, item 3): three canaryd share N rollouts (45 by default) that step through a ladder of weights at
# 2-second ticks, every service behind one HAProxy with metrics from one farm (as bench/scale.sh, at a smaller N).
#   - spread: over five intervals each daemon does its share of the ticks, within +-20% of the mean, and no rollout
#     changes hands meanwhile (no leases moving back and forth);
#   - SIGKILL of one: each rollout it held ticks again, by another daemon, within lease + interval (+ 2 s for a loaded
#     machine) of the kill, and the two survivors then share the work within +-20%;
#   - from the audit of every rollout: no step applied twice or skipped (each rollout's weight.intended events are the
#     policy's weights in order, ticks move the step by 0 or 1), and no two ticks of a rollout closer than the interval
#     less 50 ms by the core's clock (two daemons ticking one rollout); every rollout climbed at least 3 steps, so
#     these say something.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/farm_lib.bash"

N=${REPLICAS_N:-45}
INTERVAL=2    # seconds between ticks
LEASE=4000    # ms
MARGIN=2      # seconds of scheduling slack on a loaded machine, beyond lease + interval
WEIGHTS=(1 2 3 4 5 10 20 30 40 50 100)

fresh_db
farm_start --rate 200 --error-rate 0.003
farm_haproxy "$N"
{
	printf 'name: ladder\ndescription: "a step every 3 ticks, then an hour at 100%%"\nsteps:\n'
	for w in "${WEIGHTS[@]}"; do
		[ "$w" = 100 ] && printf '  - weight: 100%%\n    hold: 1h\n' || printf '  - weight: %s%%\n    hold: 6s\n' "$w"
	done
	cat <<YAML
analysis:
  interval: ${INTERVAL}s
  min_requests: 50
  failing_ticks: 3
  inconclusive_timeout: 1h
  on_inconclusive: pause
  judge: threshold
  false_rollback_budget: 1%
slos:
  - name: error-rate
    metric: error_rate
    max: 2%
  - name: p99-latency
    metric: latency
    quantile: 0.99
    max: 2s
YAML
} >"$E2E_DIR/ladder.yaml"
farm_services "$N" "$E2E_DIR/ladder.yaml"

PIDS=()
for r in 1 2 3; do
	"$CANARYD" --id "replica$r" --lease "$LEASE" --poll 200 --no-sla --no-notify >>"$E2E_DIR/canaryd$r.log" 2>&1 &
	E2E_PIDS+=($!)
	PIDS+=($!)
done
sleep 1 # every daemon has claimed (nothing) once
farm_rollouts "$N" ladder
log "$N rollouts started with 3 daemons (lease ${LEASE} ms, interval ${INTERVAL} s)"

for _ in $(seq 1 300); do
	[ "$(sql "SELECT count(*) FROM rollouts WHERE state IS NOT NULL")" -ge "$N" ] && break
	sleep 0.1
done
[ "$(sql "SELECT count(*) FROM rollouts WHERE state IS NOT NULL")" -ge "$N" ] || fail "not every rollout ticked in 30 s"
sleep $((2 * INTERVAL)) # a daemon that took more than its share at the start gives the excess back within an interval

# Ticks per daemon over five intervals, and rollouts ticked by more than one daemon in that window.
w0=$(sql "SELECT clock_timestamp()")
sleep $((5 * INTERVAL))
w1=$(sql "SELECT clock_timestamp()")
spread_check() { # FROM TO DAEMONS WHAT
	local per
	per=$(sql "SELECT string_agg(d || ' ' || c, ', ' ORDER BY d) FROM (SELECT data->>'daemon' AS d, count(*) AS c
	           FROM audit_events WHERE kind = 'tick' AND at > '$1' AND at <= '$2' GROUP BY 1) x")
	log "$4: ticks per daemon: $per; leases held now: $(sql "SELECT string_agg(lease_owner || ' ' || c, ', ' ORDER BY lease_owner)
	     FROM (SELECT lease_owner, count(*) AS c FROM rollouts WHERE phase = 'progressing' GROUP BY 1) x")"
	local bad
	bad=$(sql "WITH d(name) AS (SELECT unnest(string_to_array('$3', ' '))),
	                c AS (SELECT d.name, count(e.id) AS n FROM d LEFT JOIN audit_events e ON e.data->>'daemon' = d.name
	                      AND e.kind = 'tick' AND e.at > '$1' AND e.at <= '$2' GROUP BY 1),
	                m AS (SELECT avg(n) AS mean FROM c)
	           SELECT string_agg(c.name || ' ' || c.n || ' (mean ' || round(m.mean, 1) || ')', ', ')
	           FROM c, m WHERE m.mean = 0 OR abs(c.n - m.mean) > 0.2 * m.mean")
	[ -z "$bad" ] || fail "$4: ticks outside +-20% of the mean: $bad (per daemon: $per)"
	local moved
	moved=$(sql "SELECT count(*) FROM (SELECT rollout_id FROM audit_events WHERE kind = 'tick' AND at > '$1' AND at <= '$2'
	             GROUP BY 1 HAVING count(DISTINCT data->>'daemon') > 1) x")
	[ "$moved" = 0 ] || fail "$4: $moved rollouts were ticked by more than one daemon (leases moving)"
}
spread_check "$w0" "$w1" "replica1 replica2 replica3" "three daemons"

# SIGKILL one: the others must take its rollouts over within lease + interval.
victim_held=$(sql "SELECT count(*) FROM rollouts WHERE lease_owner = 'replica1' AND phase = 'progressing'")
kill -KILL "${PIDS[0]}"
tk=$(sql "SELECT clock_timestamp()")
sql "CREATE TABLE victim_rollouts AS SELECT id FROM rollouts WHERE lease_owner = 'replica1' AND phase = 'progressing'" \
	>/dev/null
log "SIGKILLed replica1, which held $victim_held leases"
[ "$victim_held" -ge $((N / 5)) ] || fail "replica1 held only $victim_held of $N rollouts before the kill"
limit=$((LEASE / 1000 + INTERVAL + MARGIN))
sleep "$limit"
taken=$(sql "SELECT count(*) || ' ' || coalesce(round(max(s)::numeric, 2), -1) || ' ' ||
                    coalesce(round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s)::numeric, 2), -1)
             FROM (SELECT v.id, extract(epoch FROM min(e.at) - '$tk'::timestamptz) AS s FROM victim_rollouts v
                   JOIN audit_events e ON e.rollout_id = v.id AND e.kind = 'tick' AND e.at > '$tk'
                   GROUP BY 1) x WHERE s <= $limit")
read -r n_taken t_max t_p50 <<<"$taken"
log "taken over: $n_taken of $victim_held, first ticks p50 ${t_p50} s, max ${t_max} s after the kill (limit $limit s)"
[ "$n_taken" = "$victim_held" ] ||
	fail "only $n_taken of replica1's $victim_held rollouts ticked again within lease + interval + ${MARGIN} s"
by_victim=$(sql "SELECT count(*) FROM audit_events WHERE kind = 'tick' AND at > '$tk' AND data->>'daemon' = 'replica1'")
[ "$by_victim" = 0 ] || fail "$by_victim ticks by replica1 after its SIGKILL"

sleep "$INTERVAL"
w2=$(sql "SELECT clock_timestamp()")
sleep $((4 * INTERVAL))
w3=$(sql "SELECT clock_timestamp()")
spread_check "$w2" "$w3" "replica2 replica3" "two survivors"
kill -TERM "${PIDS[1]}" "${PIDS[2]}"
wait "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true

# The audit of every rollout.
weights=$(IFS=,; echo "${WEIGHTS[*]}")
bad=$(sql "WITH w AS (SELECT rollout_id, (data->>'to')::double precision AS to_w,
                             row_number() OVER (PARTITION BY rollout_id ORDER BY id) AS k
                      FROM audit_events WHERE kind = 'weight.intended'),
                p AS (SELECT k, w FROM unnest(ARRAY[$weights]::double precision[]) WITH ORDINALITY AS x(w, k))
           SELECT string_agg(DISTINCT w.rollout_id::text, ' ') FROM w LEFT JOIN p ON p.k = w.k
           WHERE p.w IS DISTINCT FROM w.to_w")
[ -z "$bad" ] || fail "rollouts whose weight.intended events are not the policy's weights in order: $bad"
# A tick's time is the core's (measurements.at: the database's clock as the daemon that ticked saw it); the next
# tick falls due an interval after the record, so two ticks closer than that were two daemons at once. (The audit's
# own times also carry how long each record waited for the chain's lock.)
bad=$(sql "WITH t AS (SELECT rollout_id, (data->>'step')::int AS step,
                             lag((data->>'step')::int) OVER (PARTITION BY rollout_id ORDER BY id) AS prev_step
                      FROM audit_events WHERE kind = 'tick'),
                m AS (SELECT at - lag(at) OVER (PARTITION BY rollout_id ORDER BY id) AS gap FROM measurements)
           SELECT count(*) FILTER (WHERE step > prev_step + 1) || ' skipped, ' ||
                  count(*) FILTER (WHERE step < prev_step) || ' backwards, ' ||
                  (SELECT count(*) FROM m WHERE gap < interval '$INTERVAL s' - interval '50 ms') || ' double ticks'
           FROM t WHERE prev_step IS NOT NULL")
log "ticks from the audit: $bad"
[ "$bad" = "0 skipped, 0 backwards, 0 double ticks" ] || fail "ticks from the audit: $bad"
climbed=$(sql "SELECT min(n) || ' ' || max(n) FROM (SELECT r.id, count(e.id) AS n FROM rollouts r
               LEFT JOIN audit_events e ON e.rollout_id = r.id AND e.kind = 'weight.intended' GROUP BY 1) x")
read -r cmin cmax <<<"$climbed"
log "steps applied per rollout: $cmin..$cmax"
[ "$cmin" -ge 3 ] || fail "a rollout applied only $cmin steps: the step checks above would say little"
after=$(sql "SELECT count(*) FROM victim_rollouts v WHERE EXISTS (SELECT 1 FROM audit_events e WHERE e.rollout_id = v.id
             AND e.kind = 'weight.intended' AND e.at > '$tk')")
[ "$after" = "$victim_held" ] || fail "only $after of replica1's $victim_held rollouts stepped on after the takeover"
log "PASS: $N rollouts on 3 daemons within +-20%, replica1's $victim_held taken over in at most ${t_max} s, no double or skipped step"
