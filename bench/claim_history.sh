#!/usr/bin/env bash
# Benchmark (issue 13): what a claim costs once the rollouts table holds history. N running rollouts (the services
# and policy of bench/scale.sh, of which DUE are due) beside H finished ones (rows that are never deleted), then six
# `canary.claim` calls of one owner in one session (as canaryd's: the first plans), each in a transaction rolled
# back, timed by psql; twice: with the functions as migrated (0022: SET jit = off) and with that setting reset on
# canary.claim, the server's default JIT applying. Prints each call's time; nothing is contacted but the database.
#   CANARY_BINARY_DIR=build DATABASE_URL=$(scripts/pgtmp start DIR) bench/claim_history.sh [N [H [DUE]]]
#   (defaults 10000 450000 100). BENCH_KEEP=1 keeps the database.
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/farm_lib.bash"

N=${1:-10000}
H=${2:-450000}
DUE=${3:-100}
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 20000 ] || fail "N '$N' is not a number in 1..20000"
[[ "$H" =~ ^[0-9]+$ ]] && [ "$H" -le 2000000 ] || fail "H '$H' is not a number in 0..2000000"
[[ "$DUE" =~ ^[0-9]+$ ]] && [ "$DUE" -le "$N" ] || fail "DUE '$DUE' is not a number in 0..N"

fresh_db
farm_policy "$E2E_DIR/scale.yaml" 10s 0
FARM_PORT=1 ADMIN=1 farm_services "$N" "$E2E_DIR/scale.yaml"
farm_rollouts "$N" scale
# history: H finished rollouts of the same services; the running ones progressing, due in an hour but DUE of them
sql "INSERT INTO rollouts (service, service_version_id, policy_id, candidate, candidate_slot, phase, weight,
                           applied_weight, finished_at, next_tick_at)
     SELECT r.service, r.service_version_id, r.policy_id, 'old', 1, 'aborted', 0, 0, now() - interval '1 day',
            now() - interval '1 day'
     FROM generate_series(1, $H) g JOIN rollouts r ON r.id = 1 + g % $N" >/dev/null
sql "UPDATE rollouts SET phase = 'progressing', step = 0, weight = 1,
            next_tick_at = now() + interval '1 hour' + random() * interval '10 s' WHERE phase = 'pending'" >/dev/null
sql "UPDATE rollouts SET next_tick_at = now() - interval '1 s'
     WHERE id IN (SELECT id FROM rollouts WHERE phase = 'progressing' ORDER BY id LIMIT $DUE)" >/dev/null
sql "VACUUM ANALYZE rollouts" >/dev/null
log "$(sql "SELECT max(name) FROM schema_migrations"): $N running rollouts ($DUE due), $H finished; server jit=$(sql 'SHOW jit'), jit_above_cost=$(sql 'SHOW jit_above_cost'); load $(cut -d' ' -f1-3 /proc/loadavg)"

claims() { # LABEL: six claims in one session (as canaryd's, whose plans stay cached); the first plans them
	local ms
	ms=$(for i in 1 2 3 4 5 6; do
		printf '%s\n' 'BEGIN;' "SELECT count(*) FROM canary.claim('bench', 15000, 256);" 'ROLLBACK;'
	done | psql -qAt "$DATABASE_URL" -c '\timing on' -f - 2>&1 | awk '/^Time:/ {n++; if (n % 3 == 2) printf "%s ", $2}')
	log "$1: claims took $ms ms (the first plans; each claims $(sql "BEGIN; SELECT count(*) FROM canary.claim('bench', 15000, 256); ROLLBACK" | tail -1) rollouts)"
}
claims "as migrated (jit = off in canary's functions)"
sql "ALTER FUNCTION canary.claim(text, bigint, integer) RESET jit" >/dev/null
claims "canary.claim with the server's default jit"
if [ -n "${BENCH_KEEP:-}" ]; then # keep the database for a look (dropped with the server)
	log "database kept: $DATABASE_URL"
	E2E_DB=
fi
