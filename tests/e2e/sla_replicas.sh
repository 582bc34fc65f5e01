#!/usr/bin/env bash
# e2e (issue 13, items 3 and 5): three canaryd share the SLA ledger's reads (migration 0026). 13 services (svc1..svc12
# and the farm's template) with 2-second ledger minutes (CANARY_TEST_SLA_MINUTE_MS, tests only), pages from one farm:
#   - each service is read by two of the three observers: canaryd_sla_services_observed adds up to 26, and no
#     daemon reads all 13;
#   - one observer SIGKILLed: every service keeps a row for every minute (its other observer had the previous
#     reading), and once the dead one's registration lapses the two survivors read every service;
#   - every minute is recorded once (the daemons' counts add up to the rows).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/farm_lib.bash"

N=12
MINUTE_MS=2000
export CANARY_TEST_SLA_MINUTE_MS=$MINUTE_MS

fresh_db
farm_start --rate 200 --error-rate 0.003
farm_haproxy "$N"
farm_policy "$E2E_DIR/hold.yaml" 2s 0
farm_services "$N" "$E2E_DIR/hold.yaml"
total=$(sql "SELECT count(*) FROM services")
[ "$total" = $((N + 1)) ] || fail "expected $((N + 1)) services, found $total"

PIDS=() PORTS=()
for r in 1 2 3; do
	p=$(free_port)
	"$CANARYD" --id "obs$r" --listen "127.0.0.1:$p" --poll 200 --no-notify >>"$E2E_DIR/canaryd$r.log" 2>&1 &
	E2E_PIDS+=($!)
	PIDS+=($!)
	PORTS+=("$p")
done
for p in "${PORTS[@]}"; do wait_port "$p" 10; done
# a read that fails (a daemon that died) gives an empty count, which the checks below report; under errexit and
# pipefail a bare failing curl would end the script without saying why
observed() { { curl -fsS --max-time 3 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } | awk '$1 == "canaryd_sla_services_observed" {print $2}'; }

# all three registered and each at its share: an observer that turned before the others registered reads every
# service (13 13 0 adds up to 26 too), one that has not turned yet reads none
shares=
at_share() { [ -n "$1" ] && [ "$1" -gt 0 ] && [ "$1" -lt "$total" ]; }
for _ in $(seq 1 60); do
	a=$(observed "${PORTS[0]}"); b=$(observed "${PORTS[1]}"); c=$(observed "${PORTS[2]}")
	shares="$a $b $c"
	at_share "$a" && at_share "$b" && at_share "$c" && [ $((a + b + c)) = $((2 * total)) ] && break
	sleep 0.5
done
log "services observed by obs1 obs2 obs3: $shares (of $total)"
read -r a b c <<<"$shares"
[ -n "$c" ] && [ $((a + b + c)) = $((2 * total)) ] || fail "the observers read $shares services, not two of three for each of $total"
for s in $a $b $c; do
	[ "$s" -lt "$total" ] || fail "one observer reads every service ($shares): the reads are not shared"
done
sql "SELECT owner FROM sla_observers WHERE expires_at > now() ORDER BY 1" | tr '\n' ' ' | grep -c "obs1 obs2 obs3" >/dev/null ||
	fail "sla_observers does not list the three daemons: $(sql "SELECT string_agg(owner, ' ') FROM sla_observers")"

sleep $((3 * MINUTE_MS / 1000)) # every service has minutes recorded under the shared reads
kill_ms=$(sql "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
kill -KILL "${PIDS[0]}"
wait "${PIDS[0]}" 2>/dev/null || true
log "obs1 SIGKILLed"
# its registration lapses after three minutes (6 s); then the survivors read every service
for _ in $(seq 1 60); do
	b=$(observed "${PORTS[1]}"); c=$(observed "${PORTS[2]}")
	[ "$b" = "$total" ] && [ "$c" = "$total" ] && break
	sleep 0.5
done
[ "$b" = "$total" ] && [ "$c" = "$total" ] || fail "after obs1's registration lapsed the survivors read $b and $c of $total services"
sleep $((2 * MINUTE_MS / 1000))
end_ms=$(sql "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
kill -TERM "${PIDS[1]}" "${PIDS[2]}"
wait "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true

# every minute from two before the kill to two before the end, for every service: a row, with numbers
from=$(( (kill_ms / MINUTE_MS - 2) * MINUTE_MS )); to=$(( (end_ms / MINUTE_MS - 2) * MINUTE_MS ))
want=$(( (to - from) / MINUTE_MS ))
gaps=$(sql "WITH m AS (SELECT service, count(*) FILTER (WHERE requests IS NOT NULL) AS n FROM sla_minutes
                       WHERE minute >= to_timestamp($from / 1000.0) AND minute < to_timestamp($to / 1000.0)
                       GROUP BY service)
            SELECT coalesce(string_agg(s.name || ':' || coalesce(m.n, 0), ' ' ORDER BY s.name), '')
            FROM services s LEFT JOIN m ON m.service = s.name WHERE coalesce(m.n, 0) <> $want")
log "minutes from 2 before the kill to the end: $want per service; services short of it: ${gaps:-none}"
[ "$want" -ge 5 ] || fail "only $want minutes between the kill and the end: the check says little"
[ -z "$gaps" ] || fail "minutes missing around the SIGKILL (service:rows, of $want): $gaps"

# each minute once: what the daemons say they recorded is the rows (obs1's count died with it: the rows since it
# died are the survivors' and theirs alone)
rec() { grep '"event":"stopped"' "$E2E_DIR/canaryd$1.log" | jq -r '.sla_minutes + .sla_minutes_no_data'; }
r2=$(rec 2); r3=$(rec 3)
rows=$(sql "SELECT count(*) FROM sla_minutes")
log "rows $rows; recorded by obs2 $r2, obs3 $r3 (obs1's count lost with it)"
[ -n "$r2" ] && [ -n "$r3" ] && [ $((r2 + r3)) -le "$rows" ] || fail "the survivors say they recorded $r2 + $r3 minutes, more than the $rows rows"
log "PASS: SLA reads shared by three observers ($shares of $total); a SIGKILLed observer cost no minute"
