#!/usr/bin/env bash
# Benchmark (issue 13): what PostgreSQL spends on one recorded tick. N running rollouts (three SLOs, an hour at 1%,
# the policy of bench/scale.sh) are leased to one owner; bench_record_batch (bench/record_batch.c) ticks each with the
# core ROUNDS + 1 times and records the ticks as canaryd's recorder does (canary.record_batch, batches of BATCH
# documents built by cn_store_record_batch_encode). Prints the recording backend's CPU per tick (from /proc, so the
# server must run on this machine), wall time per batch, rows, HOT updates, WAL and table growth per tick, then checks
# every audit chain with `canaryctl audit verify`. No gateway or metrics are contacted: only the database works.
#   CANARY_BINARY_DIR=build DATABASE_URL=$(scripts/pgtmp start DIR) bench/record_batch.sh [N [ROUNDS [BATCH]]]
#   (defaults 2000 5 64). PERF=1 also runs `perf record -g` on the backend during the measured rounds and prints
#   the top of `perf report` (needs perf and the right to trace the server's processes). BENCH_KEEP=1 keeps the
#   database.
# The machine is shared: the load average is printed next to the figures.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/farm_lib.bash"

N=${1:-2000}
ROUNDS=${2:-5}
BATCH=${3:-64}
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 20000 ] || fail "N '$N' is not a number in 1..20000"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 100 ] || fail "ROUNDS '$ROUNDS' is not in 1..100"
BENCH=$B/bench/bench_record_batch
[ -x "$BENCH" ] || fail "'$BENCH' is not built; run scripts/build first"

fresh_db
sql "ALTER DATABASE $E2E_DB SET synchronous_commit = off" >/dev/null # as bench/scale.sh
farm_policy "$E2E_DIR/scale.yaml" 10s 0
# the services as bench/scale.sh has them, with a gateway and metrics nobody contacts here (port 1), and the
# migrations of BENCH_MIGRATIONS (default: the source's), so that one build can measure an older schema:
# BENCH_MIGRATIONS=DIR holding copies of 0001..0019 measures main before 0020
FARM_PORT=1 ADMIN=1 FARM_MIGRATIONS=${BENCH_MIGRATIONS:-} farm_services "$N" "$E2E_DIR/scale.yaml"
farm_rollouts "$N" scale
log "$(sql "SELECT max(name) FROM schema_migrations"): N=$N rollouts started; $ROUNDS measured rounds in batches of $BATCH; load $(cut -d' ' -f1-3 /proc/loadavg)"

perf_pid=
if [ -n "${PERF:-}" ]; then
	# the backend that will record: the bench's first connection is the newest backend once it has connected
	( sleep 1.5; bp=$(sql "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND
	                           pid <> pg_backend_pid() AND backend_type = 'client backend' ORDER BY backend_start LIMIT 1")
	  exec perf record ${PERF_ARGS:--g} -o "$E2E_DIR/perf.data" -p "$bp" ) >"$E2E_DIR/perf.log" 2>&1 &
	perf_pid=$!
fi
"$BENCH" "$E2E_DIR/scale.yaml" bench-owner "$ROUNDS" "$BATCH"
if [ -n "$perf_pid" ]; then
	kill -INT "$perf_pid" 2>/dev/null || true
	wait "$perf_pid" 2>/dev/null || true
	perf report -i "$E2E_DIR/perf.data" --no-children -g none --sort dso,symbol --percent-limit 0.7 --stdio 2>/dev/null | grep -E "^ +[0-9]" | head -45
fi
echo "  stored per tick (bytes, as stored / as text): $(sql "SELECT string_agg(k || ' ' || round(s) || '/' || round(t), ', ')
     FROM (SELECT 'rollouts.state' k, avg(pg_column_size(state)) s, avg(length(state::text)) t FROM rollouts
           UNION ALL SELECT 'rollouts.status', avg(pg_column_size(status)), avg(length(status::text)) FROM rollouts
           UNION ALL SELECT 'measurement', avg(pg_column_size(baseline) + pg_column_size(candidate)),
                            avg(length(baseline::text) + length(candidate::text)) FROM measurements
           UNION ALL SELECT 'tick event data', avg(pg_column_size(data)), avg(length(data::text))
                     FROM audit_events WHERE kind = 'tick') x")"
t0=$(date +%s%N)
"$CTL" audit verify >"$E2E_DIR/verify.out" 2>&1 || { cat "$E2E_DIR/verify.out" >&2; fail "audit verify failed"; }
log "canaryctl audit verify: every chain intact ($(sql "SELECT count(*) FROM audit_events") events, $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${BENCH_KEEP:-}" ]; then # keep the database for a look (dropped with the server)
	log "database kept: $DATABASE_URL"
	E2E_DB=
fi
