#!/usr/bin/env bash
# Benchmark (issue 13): one canaryd carrying N concurrent rollouts at 10-second ticks. Prints figures, never
# pass/fail. Goals for one canaryd on a 2-core machine: under one core at N = 10,000, RSS <= 64 MB, tick lateness
# p99 <= 1 s, abort -> weight 0 on HAProxy p99 <= 200 ms at every N.
#   Each rollout has its own service (two slots), all behind one real HAProxy (a backend per service); every slot's
#   /metrics is a page of one multi-tenant simulator (tests/support/bin/metricsfarm.c: /metrics/<service>/<slot>,
#   counters advancing with time). The policy holds for an hour at 1%, so every rollout just ticks every 10 s with
#   three SLOs (error rate, p99 latency, p95 time to first token).
#   Setup: one service applied with canaryctl, the other N-1 copied from it by canary.apply_service (as the
#   database superuser, to save N canaryctl runs), the rollouts started by canary.start_rollout in one transaction.
#   Measured over WINDOW seconds once every rollout has ticked (or SETTLE seconds passed):
#     canaryd CPU (utime+stime from /proc, % of one core), RSS now and min/mean/peak over the window, Postgres
#     CPU (the postmaster and its children), tick lateness (time between two ticks of a rollout minus the interval, from the audit's tick
#     events: the database's clock), transactions and rows written per tick (pg_stat_database), canaryd's database
#     round trips per tick (its /metrics), database growth and WAL per rollout-hour; then ABORTS operators' aborts,
#     one after the other: canaryctl launched -> weight 0 on HAProxy.
#   CANARY_BINARY_DIR=build-rel DATABASE_URL=$(scripts/pgtmp start DIR) bench/scale.sh N [WINDOW] [ABORTS]
#   Environment: SCALE_REPLICAS=3 runs three canaryd (--lease 15000) on a policy that climbs a ladder of weights (a
#   step every 3 ticks) and adds the replica figures: ticks per replica and their spread, rollouts ticked by two;
#   replica1 SIGKILLed: time until each rollout it held ticks again, the survivors' spread; from the audit of every
#   rollout, steps applied out of order, twice or skipped, and ticks closer than the interval (two replicas at once);
#   SCALE_PAGE_BYTES=1048576 pads every page to 1 MB; SCALE_INTERVAL (default 10s); SCALE_CANARYD_ARGS;
#   SCALE_HEAP_DUMP=FILE saves each replica's /debug/heap as FILE.1.xml, ...;
#   SCALE_CANARYD_PREFIX runs canaryd under a tool (e.g. "valgrind --tool=massif --massif-out-file=/tmp/m.out").
# The machine is shared: the load average is printed next to the figures. A sanitizer build measures the sanitizer.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/farm_lib.bash"

N=${1:-100}
WINDOW=${2:-60}
ABORTS=${3:-20}
REPLICAS=${SCALE_REPLICAS:-1}
INTERVAL=${SCALE_INTERVAL:-10s}
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 20000 ] || fail "N '$N' is not a number in 1..20000"
[[ "$WINDOW" =~ ^[0-9]+$ ]] && [ "$WINDOW" -ge 10 ] || fail "WINDOW '$WINDOW' is not a number of seconds >= 10"
[[ "$ABORTS" =~ ^[0-9]+$ ]] && [ "$ABORTS" -lt "$N" ] || fail "ABORTS '$ABORTS' must be below N"
interval_s=${INTERVAL%s}

fresh_db
sql "ALTER DATABASE $E2E_DB SET synchronous_commit = off" >/dev/null
farm_start --rate 200 --error-rate 0.003 ${SCALE_PAGE_BYTES:+--page-bytes "$SCALE_PAGE_BYTES"}
farm_haproxy "$N"

farm_policy "$E2E_DIR/scale.yaml" "$INTERVAL" "$([ "$REPLICAS" -gt 1 ] && echo 1 || echo 0)"
farm_services "$N" "$E2E_DIR/scale.yaml"
log "N=$N: $N services copied; starting $N rollouts"
farm_rollouts "$N" scale

pg_pid=$(head -1 "$(sql "SHOW data_directory")/postmaster.pid")
cpu_of() { # PID...: utime+stime (+ children's, for the postmaster) in clock ticks
	local t=0 p f
	for p in "$@"; do
		f=$(cut -d' ' -f14-17 "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + $(echo "$f" | awk '{print $1 + $2 + $3 + $4}')))
	done
	echo "$t"
}
pg_procs() { echo "$pg_pid"; ps -o pid= --ppid "$pg_pid"; }
HZ=$(getconf CLK_TCK)

PIDS=()
METRICS_PORTS=()
for ((r = 1; r <= REPLICAS; r++)); do
	mp=$(free_port)
	METRICS_PORTS+=("$mp")
	# shellcheck disable=SC2086 # a prefix of words, e.g. "valgrind --tool=massif"
	${SCALE_CANARYD_PREFIX:-} "$CANARYD" --id "replica$r" --listen "127.0.0.1:$mp" --lease 15000 --poll 500 ${SCALE_CANARYD_ARGS:-} \
		>>"$E2E_DIR/canaryd$r.log" 2>&1 &
	E2E_PIDS+=($!)
	PIDS+=($!)
done
t_start=$(date +%s)
SETTLE=${SCALE_SETTLE:-$((60 + N / 100))}
for _ in $(seq 1 $((SETTLE * 2))); do
	[ "$(sql "SELECT count(*) FROM rollouts WHERE state IS NOT NULL")" -ge "$N" ] && break
	sleep 0.5
done
started=$(sql "SELECT count(*) FROM rollouts WHERE state IS NOT NULL")
log "$started of $N rollouts ticked at least once after $(($(date +%s) - t_start))s"
# A cold start of N rollouts at once leaves a backlog (every first tick sets a weight: the recorder's slow path, and
# a gateway call each): measured once it has drained, i.e. the ticks of the last 5 s were at most 1 s late at p99.
sleep "$interval_s"
for _ in $(seq 1 "$SETTLE"); do
	recent=$(sql "WITH t AS (SELECT at, lag(at) OVER (PARTITION BY rollout_id ORDER BY id) AS prev FROM audit_events
	                         WHERE kind = 'tick' AND at > clock_timestamp() - interval '$((interval_s * 6 + 60)) s')
	              SELECT coalesce(round(percentile_cont(0.99) WITHIN GROUP (ORDER BY
	                         extract(epoch FROM at - prev) * 1000 - $interval_s * 1000)::numeric), 999999)
	              FROM t WHERE prev IS NOT NULL AND at > clock_timestamp() - interval '5 s'")
	[ "$recent" -le 1000 ] && break
	sleep 1
done
log "caught up after $(($(date +%s) - t_start))s (the last 5 s of ticks at most ${recent} ms late at p99); measuring for ${WINDOW}s"

round_trips() { # total database round trips of every replica (canaryd_db_round_trips_total), or -
	local total=0 mp v
	for mp in "${METRICS_PORTS[@]}"; do
		v=$(curl -fsS "http://127.0.0.1:$mp/metrics" 2>/dev/null | awk '$1 == "canaryd_db_round_trips_total" {print $2}')
		[ -n "$v" ] || { echo -; return; }
		total=$((total + ${v%.*}))
	done
	echo "$total"
}
stat_db() {
	sql "SELECT xact_commit || ' ' || tup_inserted + tup_updated + tup_deleted || ' ' || pg_database_size('$E2E_DB')
	     || ' ' || pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint FROM pg_stat_database WHERE datname = '$E2E_DB'"
}
# bytes by what retention does to them: what `canaryctl gc --older-than` deletes once a rollout has ended, the audit
# trail (kept for ever), and everything else (the rollouts' rows, rewritten in place; services, the SLA ledger)
stat_kinds() {
	sql "SELECT sum(s) FILTER (WHERE k = 'gc') || ' ' || sum(s) FILTER (WHERE k = 'audit') || ' ' ||
	            coalesce(sum(s) FILTER (WHERE k = 'other'), 0)
	     FROM (SELECT CASE WHEN relname IN ('measurements', 'decisions', 'slo_verdicts') THEN 'gc'
	                       WHEN relname = 'audit_events' THEN 'audit' ELSE 'other' END AS k,
	                  pg_total_relation_size(relid) AS s FROM pg_stat_user_tables) x"
}
sql "SELECT pg_stat_clear_snapshot()" >/dev/null
read -r x0 w0 s0 l0 <<<"$(stat_db)"
read -r g0 a0 o0 <<<"$(stat_kinds)"
rt0=$(round_trips)
c0=$(cpu_of "${PIDS[@]}")
p0=$(cpu_of $(pg_procs))
t0=$(sql "SELECT clock_timestamp()")
m0=$(date +%s%N)
peak_rss=0 sum_rss=0 n_rss=0 min_rss=
for ((s = 0; s < WINDOW; s++)); do
	sleep 1
	for p in "${PIDS[@]}"; do
		rss=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status")
		[ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
		[ -z "$min_rss" ] || [ "$rss" -lt "$min_rss" ] && min_rss=$rss
		sum_rss=$((sum_rss + rss)) n_rss=$((n_rss + 1))
	done
done
m1=$(date +%s%N)
t1=$(sql "SELECT clock_timestamp()")
c1=$(cpu_of "${PIDS[@]}")
p1=$(cpu_of $(pg_procs))
rt1=$(round_trips)
sleep 1 # pg_stat_database lags by up to PGSTAT_MIN_INTERVAL
read -r x1 w1 s1 l1 <<<"$(stat_db)"
read -r g1 a1 o1 <<<"$(stat_kinds)"
load=$(cut -d' ' -f1-3 /proc/loadavg)
secs=$(awk -v a="$m0" -v b="$m1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')

ticks=$(sql "SELECT count(*) FROM audit_events WHERE kind = 'tick' AND at > '$t0' AND at <= '$t1'")
lat=$(sql "WITH t AS (SELECT at, lag(at) OVER (PARTITION BY rollout_id ORDER BY id) AS prev
                    FROM audit_events WHERE kind = 'tick' AND at > '$t0'::timestamptz - interval '$((interval_s * 3)) s'),
               l AS (SELECT extract(epoch FROM at - prev) * 1000 - $interval_s * 1000 AS ms FROM t
                    WHERE prev IS NOT NULL AND at > '$t0' AND at <= '$t1')
          SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric) || ' ' ||
                 round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric) || ' ' || round(max(ms)::numeric)
          FROM l")
read -r lat50 lat99 latmax <<<"$lat"
# the same p99 per 20 s of the window: a backlog that builds or drains shows here, a steady tail does not
lat_parts=$(sql "WITH t AS (SELECT at, lag(at) OVER (PARTITION BY rollout_id ORDER BY id) AS prev
                    FROM audit_events WHERE kind = 'tick' AND at > '$t0'::timestamptz - interval '$((interval_s * 3)) s'),
               l AS (SELECT floor(extract(epoch FROM at - '$t0'::timestamptz) / 20) AS part,
                            extract(epoch FROM at - prev) * 1000 - $interval_s * 1000 AS ms FROM t
                    WHERE prev IS NOT NULL AND at > '$t0' AND at <= '$t1')
          SELECT string_agg(round(p)::text, ' / ' ORDER BY part) FROM
              (SELECT part, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p FROM l GROUP BY part) x")
expected=$(awk -v n="$N" -v w="$secs" -v i="$interval_s" 'BEGIN {printf "%d", n * w / i}')
rh=$(awk -v n="$N" -v w="$secs" 'BEGIN {print n * w / 3600}')
per_tick() { awk -v a="$1" -v t="$ticks" 'BEGIN {if (t > 0 && a != "-") printf "%.1f", a / t; else print "-"}'; }
rt=-
[ "$rt0" != - ] && [ "$rt1" != - ] && rt=$((rt1 - rt0))

echo "== N=$N rollouts, $REPLICAS canaryd, interval ${interval_s}s, window ${secs}s, load average $load ($(nproc) cores)"
echo "ticks recorded:       $ticks of $expected due ($(awk -v t="$ticks" -v s="$secs" 'BEGIN {printf "%.1f", t / s}')/s; $started of $N ticked within ${SETTLE}s)"
echo "tick lateness:        p50 ${lat50:--} ms, p99 ${lat99:--} ms, max ${latmax:--} ms (interval-to-interval, database clock)"
echo "lateness p99 by 20 s: ${lat_parts:--} ms"
echo "canaryd CPU:          $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$secs" 'BEGIN {printf "%.1f", (b - a) / hz / s * 100}')% of one core (all replicas)"
echo "canaryd RSS:          $(for p in "${PIDS[@]}"; do awk '/^VmRSS/ {printf "%.1f MB ", $2 / 1024}' "/proc/$p/status"; done)now; over the window (each replica, every second) min $(awk -v k="${min_rss:-0}" 'BEGIN {printf "%.1f", k / 1024}'), mean $(awk -v s="$sum_rss" -v n="$n_rss" 'BEGIN {printf "%.1f", n ? s / n / 1024 : 0}'), peak $(awk -v k="$peak_rss" 'BEGIN {printf "%.1f", k / 1024}') MB; descriptors $(for p in "${PIDS[@]}"; do ls "/proc/$p/fd" | wc -l; done | tr '\n' ' ')"
heap() { # canaryd's heap in use and free (its /metrics), in MB per replica
	local mp
	for mp in "${METRICS_PORTS[@]}"; do
		curl -fsS "http://127.0.0.1:$mp/metrics" 2>/dev/null |
			awk '$1 == "canaryd_heap_in_use_bytes" {u = $2} $1 == "canaryd_heap_free_bytes" {f = $2}
			     $1 == "canaryd_heap_trims_total" {n = $2} $1 == "canaryd_heap_trim_seconds_total" {t = $2}
			     END {printf "%.1f MB in use, %.1f MB free, %d trims of %.1f ms on average; ", u / 1048576,
			          f / 1048576, n, (n > 0 ? t / n * 1000 : 0)}'
	done
}
echo "canaryd heap:         $(heap)(mallinfo2, every arena)"
if [ -n "${SCALE_HEAP_DUMP:-}" ]; then # every replica's /debug/heap (malloc_info: each arena's free chunks by size)
	for i in "${!METRICS_PORTS[@]}"; do
		curl -fsS "http://127.0.0.1:${METRICS_PORTS[$i]}/debug/heap" >"$SCALE_HEAP_DUMP.$((i + 1)).xml" 2>/dev/null || true
	done
fi
echo "postgres CPU:         $(awk -v a="$p0" -v b="$p1" -v hz="$HZ" -v s="$secs" 'BEGIN {printf "%.1f", (b - a) / hz / s * 100}')% of one core"
echo "per tick:             $(per_tick $((x1 - x0))) transactions, $(per_tick $((w1 - w0))) rows written, $(per_tick "$rt") round trips (canaryd's count)"
echo "per rollout-hour:     $(awk -v a="$s0" -v b="$s1" -v rh="$rh" 'BEGIN {printf "%.0f", (b - a) / rh / 1024}') kB database growth, $(awk -v a="$l0" -v b="$l1" -v rh="$rh" 'BEGIN {printf "%.0f", (b - a) / rh / 1024}') kB WAL"
echo "retention:            $(awk -v g="$((g1 - g0))" -v a="$((a1 - a0))" -v o="$((o1 - o0))" -v rh="$rh" 'BEGIN {
	printf "of that growth, %.0f kB a rollout-hour go with canaryctl gc --older-than once the rollout has ended", g / rh / 1024
	printf " (measurements, decisions, slo_verdicts); %.0f kB stay (audit_events, never deleted);", a / rh / 1024
	printf " %.0f kB the rest (rollouts rewritten in place and their dead versions until vacuum, the SLA ledger)", o / rh / 1024}')"
echo "by table (now):       $(sql "SELECT string_agg(relname || ' ' || pg_size_pretty(pg_total_relation_size(relid)), ', ' ORDER BY pg_total_relation_size(relid) DESC) FROM pg_stat_user_tables WHERE pg_total_relation_size(relid) > 1048576")"

if [ "$ABORTS" -gt 0 ]; then
	: >"$E2E_DIR/aborts"
	exec 7< <(exec sleep 3600 2>/dev/null) # a pipe that stays empty: read -t on it pauses without a fork
	pause_pid=$!
	: >"$E2E_DIR/abort_cli"
	: >"$E2E_DIR/abort_launch"
	for ((k = 1; k <= ABORTS; k++)); do
		i=$((k * N / (ABORTS + 1)))
		[ "$i" -ge 1 ] || i=1
		id=$(sql "SELECT id FROM rollouts WHERE service = 'svc$i'")
		# HAProxy is asked while canaryctl runs (canaryctl itself returns once canaryd confirmed the weight)
		a0=$(date +%s%N)
		"$CTL" rollout abort "$id" --reason "bench: abort under load" >/dev/null 2>>"$E2E_DIR/cli.log" &
		ctl=$!
		w=
		for _ in $(seq 1 2000); do
			# without a fork (bash's /dev/tcp and read): the poll must not slow canaryctl's start on 2 cores
			exec 9<>"/dev/tcp/127.0.0.1/$ADMIN"
			printf 'get weight svc%d/green\n' "$i" >&9
			read -r -t 2 w _ <&9 || w=
			exec 9<&-
			[ "$w" = 0 ] && break
			read -r -t 0.002 -u 7 _ || true # a 2 ms pause without forking sleep(1)
		done
		a1=$(date +%s%N)
		wait "$ctl" || { log "abort of svc$i failed: $(tail -1 "$E2E_DIR/cli.log")"; continue; }
		a2=$(date +%s%N)
		[ "$w" = 0 ] && echo $(((a1 - a0) / 1000000)) >>"$E2E_DIR/aborts"
		echo "$id $((a0 / 1000))" >>"$E2E_DIR/abort_launch" # microseconds, the machine's clock (the database's)
		echo $(((a2 - a0) / 1000000)) >>"$E2E_DIR/abort_cli"
	done
	kill "$pause_pid" 2>/dev/null || true
	exec 7<&-
	echo "abort -> weight 0:    $(sort -n "$E2E_DIR/aborts" | awk '{v[NR] = $1} END {if (NR == 0) {print "none reached 0"; exit}
		i50 = int(NR * 0.5 + 0.5); i99 = int(NR * 0.99 + 0.5); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
		printf "p50 %d ms, p99 %d ms, max %d ms (%d aborts, from launching canaryctl)", v[i50], v[i99], v[NR], NR}')"
	echo "canaryctl abort exits: $(sort -n "$E2E_DIR/abort_cli" | awk '{v[NR] = $1} END {if (NR == 0) {print "none"; exit}
		i50 = int(NR * 0.5 + 0.5); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1
		printf "p50 %d ms, p99 %d ms (accepted and weight 0 confirmed)", v[i50], v[i99]}')"
	# where an abort's time goes, by the database's clock: queued -> recorded by canaryd -> gateway confirmed
	echo "abort, by the database: $(sql "SELECT format('queued -> recorded p50 %s ms, max %s ms; recorded -> weight confirmed p50 %s ms, max %s ms',
		round(percentile_cont(0.5) WITHIN GROUP (ORDER BY q)), round(max(q)),
		round(percentile_cont(0.5) WITHIN GROUP (ORDER BY r)), round(max(r)))
		FROM (SELECT extract(epoch FROM c.handled_at - c.created_at) * 1000 AS q,
		             extract(epoch FROM (SELECT min(e.at) FROM audit_events e WHERE e.rollout_id = c.rollout_id
		                 AND e.kind = 'weight.confirmed' AND e.at >= c.handled_at) - c.handled_at) * 1000 AS r
		      FROM commands c WHERE c.kind = 'abort' AND c.reason LIKE 'bench:%') x")"
	# ... and before: canaryctl launched -> its command queued (its start, login, checks)
	launch=$(while read -r rid us; do
		sql "SELECT round(extract(epoch FROM created_at) * 1000 - $us / 1000.0) FROM commands
		     WHERE rollout_id = $rid AND kind = 'abort'"
	done <"$E2E_DIR/abort_launch" | sort -n | awk '{v[NR] = $1} END {if (NR) printf "p50 %d ms, max %d ms", v[int(NR * 0.5 + 0.5)], v[NR]}')
	echo "abort, canaryctl launched -> command queued: $launch"
	# ... and inside canaryd (its command.timing lines): the part of each abort's time, p50 / max in ms
	parts=$(cat "$E2E_DIR"/canaryd*.log | grep '"command.timing"' | jq -rs '
		[.[] | select(.command == "abort")] as $a | if ($a | length) == 0 then "none logged" else
		[("queued_ms", "to_seen_ms", "look_gap_ms", "to_claim_ms", "claim_ms", "rows_ms", "to_turn_ms", "read_ms", "to_record_ms", "record_ms",
		  "gateway_ms") as $k | [$a[][$k] | select(. >= 0)] | sort |
		 if length == 0 then "\($k | rtrimstr("_ms")) -" else
		 "\($k | rtrimstr("_ms")) \(.[((length - 1) / 2 | floor)])/\(.[-1])" end] | join(", ") end')
	echo "abort, inside canaryd (p50/max ms): $parts"
	echo "the slowest 3 aborts inside canaryd:"
	cat "$E2E_DIR"/canaryd*.log | grep '"command.timing"' | jq -c 'select(.command == "abort") | del(.ts, .level, .event)' |
		jq -sc 'sort_by(-.queued_ms) | .[:3][]' | sed 's/^/  /'
fi

if [ "$REPLICAS" -gt 1 ]; then
	per_replica() { # FROM TO: ticks per replica, spread around the mean, rollouts ticked by more than one replica
		sql "WITH c AS (SELECT data->>'daemon' AS d, count(*) AS n FROM audit_events
		                WHERE kind = 'tick' AND at > '$1' AND at <= '$2' GROUP BY 1),
		          m AS (SELECT count(*) AS k FROM (SELECT rollout_id FROM audit_events WHERE kind = 'tick'
		                AND at > '$1' AND at <= '$2' GROUP BY 1 HAVING count(DISTINCT data->>'daemon') > 1) x)
		     SELECT string_agg(d || ' ' || n, ', ' ORDER BY d) || '; spread ' ||
		            round(100 * (max(n) - avg(n)) / avg(n)) || '% above the mean, ' ||
		            round(100 * (avg(n) - min(n)) / avg(n)) || '% below; ' || min(m.k) || ' rollouts ticked by two'
		     FROM c, m"
	}
	echo "ticks per replica:    $(per_replica "$t0" "$t1") (the window above)"
	echo "leases held:          $(sql "SELECT string_agg(lease_owner || ' ' || c, ', ' ORDER BY lease_owner)
	    FROM (SELECT lease_owner, count(*) AS c FROM rollouts WHERE phase = 'progressing' GROUP BY 1) x")"
	victim=${PIDS[0]}
	kill -9 "$victim"
	tk=$(sql "SELECT clock_timestamp()")
	sql "CREATE TABLE bench_victim AS SELECT id FROM rollouts WHERE lease_owner = 'replica1' AND phase = 'progressing'" \
		>/dev/null
	owned=$(sql "SELECT count(*) FROM bench_victim")
	sleep $((15 + 2 * interval_s + 5))
	echo "SIGKILL of replica1:  it held $owned leases; their first tick by another replica $(sql "WITH f AS (
	    SELECT v.id, min(e.at) AS at FROM bench_victim v JOIN audit_events e ON e.rollout_id = v.id
	          AND e.kind = 'tick' AND e.at > '$tk' GROUP BY 1)
	    SELECT 'p50 ' || round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at - '$tk'))::numeric, 1)
	      || ' s, max ' || round(max(extract(epoch FROM at - '$tk'))::numeric, 1)
	      || ' s after the kill (lease 15 s + interval ${interval_s} s); ' || $owned - count(*) || ' not taken over' FROM f")"
	t2=$(sql "SELECT '$tk'::timestamptz + interval '$((15 + interval_s)) s'")
	t3=$(sql "SELECT clock_timestamp()")
	echo "after the takeover:   $(per_replica "$t2" "$t3")"
	# From the audit of every rollout: each rollout's weight.intended events are the policy's steps in order (a
	# step applied twice or skipped would break it; the aborted ones end at 0), ticks move the step by 0 or 1, and
	# two ticks of one rollout are never closer than the interval by the core's clock (measurements.at; less 50 ms).
	# The audit's own times also carry each record's wait for the chain's lock, so under load they come closer.
	ladder=$(IFS=,; echo "${FARM_STEPS[*]},100")
	echo "steps from the audit: $(sql "WITH w AS (SELECT rollout_id, (data->>'to')::double precision AS to_w,
	        row_number() OVER (PARTITION BY rollout_id ORDER BY id) AS k FROM audit_events WHERE kind = 'weight.intended'
	        AND rollout_id IN (SELECT id FROM rollouts WHERE phase = 'progressing')),
	    p AS (SELECT k, w FROM unnest(ARRAY[$ladder]::double precision[]) WITH ORDINALITY AS x(w, k)),
	    t AS (SELECT at, (data->>'step')::int AS step, lag((data->>'step')::int) OVER (PARTITION BY rollout_id ORDER BY id) AS prev,
	        lag(at) OVER (PARTITION BY rollout_id ORDER BY id) AS prev_at FROM audit_events WHERE kind = 'tick'),
	    mt AS (SELECT rollout_id, at, row_number() OVER (PARTITION BY rollout_id ORDER BY id) AS k FROM measurements),
	    tt AS (SELECT rollout_id, data->>'daemon' AS d, row_number() OVER (PARTITION BY rollout_id ORDER BY id) AS k
	        FROM audit_events WHERE kind = 'tick'),
	    m AS (SELECT mt.at - lag(mt.at) OVER x AS gap, tt.d, lag(tt.d) OVER x AS prev_d FROM mt JOIN tt USING (rollout_id, k)
	        WINDOW x AS (PARTITION BY mt.rollout_id ORDER BY mt.k))
	    SELECT (SELECT count(*) FROM w LEFT JOIN p ON p.k = w.k WHERE p.w IS DISTINCT FROM w.to_w) || ' weight moves out of order or twice, '
	      || count(*) FILTER (WHERE step > prev + 1) || ' skipped, ' || count(*) FILTER (WHERE step < prev) || ' backwards, '
	      || (SELECT count(*) FILTER (WHERE d <> prev_d) || ' double ticks by two replicas, ' || count(*) FILTER (WHERE d = prev_d)
	          || ' by one' FROM m WHERE gap < interval '$interval_s s' - interval '50 ms') || ' ('
	      || count(*) FILTER (WHERE at - prev_at < interval '$interval_s s' - interval '200 ms') || ' by the audit''s times); '
	      || (SELECT count(*) FROM w) || ' steps applied (' || (SELECT count(DISTINCT e.rollout_id) FROM audit_events e
	          JOIN bench_victim v ON v.id = e.rollout_id WHERE e.kind = 'weight.intended' AND e.at > '$tk') || ' of $owned'
	      || ' rollouts of replica1 stepped on after the kill)' FROM t WHERE prev IS NOT NULL")"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
