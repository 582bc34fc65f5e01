#!/usr/bin/env bash
# e2e: canaryd holding more than FD_SETSIZE (1024) descriptors still answers /healthz and /metrics. With a select()
# HTTP server it stopped answering at about 170 rollouts (some 6 descriptors each): "New connection socket
# descriptor (1100) is not less than FD_SETSIZE", and a liveness probe would restart a healthy daemon. Here the
# descriptors are 1,100 inherited ones, so every socket the server accepts is numbered above 1024.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

fresh_db
"$CTL" migrate >/dev/null
HTTP=$(free_port)
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge 2048 ] ||
	fail "the hard descriptor limit is $hard; this test needs 2048 (raise it: ulimit -Hn, LimitNOFILE=)"
(
	ulimit -n 2048
	for _ in $(seq 1 1100); do exec {fd}</dev/null; done
	exec "$CANARYD" --poll 200 --listen "127.0.0.1:$HTTP" >>"$E2E_DIR/canaryd.log" 2>&1
) &
E2E_PIDS+=($!)
CANARYD_PID=$!
wait_port "$HTTP" 10
open=$(ls /proc/"$CANARYD_PID"/fd | wc -l)
[ "$open" -gt 1100 ] || fail "canaryd holds $open descriptors, expected more than 1100"
# ready first: /healthz says 503 until canaryd has its database connection
for _ in $(seq 1 100); do
	[ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP/healthz" || true)" = 200 ] && break
	sleep 0.2
done
for i in 1 2 3 4 5; do
	body=$(curl -fsS --max-time 5 "http://127.0.0.1:$HTTP/healthz") ||
		fail "/healthz did not answer (try $i) with $open descriptors open: $(tail -3 "$E2E_DIR/canaryd.log")"
	[ "$body" = ok ] || fail "/healthz answered '$body'"
done
# read whole first: `curl | grep -q` fails under pipefail when grep stops at its match before curl wrote everything
page=$(curl -fsS --max-time 5 "http://127.0.0.1:$HTTP/metrics") || fail "/metrics did not answer"
grep -q '^canaryd_' <<<"$page" || fail "/metrics did not answer with canaryd's metrics"
! grep -q "http.error" "$E2E_DIR/canaryd.log" || fail "canaryd logged HTTP errors: $(grep http.error "$E2E_DIR/canaryd.log" | head -2)"
log "OK: /healthz and /metrics answer with $open descriptors open"
