#!/usr/bin/env bash
# e2e, gateway kind command: HAProxy (behind the socat script) dies at the 5% step: the rollout holds there with
# the script's words (socat's connection refused) and an abort is recorded; HAProxy comes back still carrying 5%,
# and canaryd sets 0% through the script and confirms it with get.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib_gateways.bash"
stop_haproxy() { kill "$HAPROXY_PID"; wait "$HAPROXY_PID" 2>/dev/null || true; }
restart_haproxy() {
	# as it was when it died: green at its 5% weight
	local g b
	g=$(awk -v p=5 'BEGIN { printf "%d", p * 2.56 + 0.5 }'); b=$(awk -v p=95 'BEGIN { printf "%d", p * 2.56 + 0.5 }')
	sed -i -e "s/server blue \(.*\) weight [0-9]*/server blue \1 weight $b/" \
		-e "s/server green \(.*\) weight [0-9]*/server green \1 weight $g/" "$E2E_DIR/haproxy.cfg"
	"$HAPROXY" -db -f "$E2E_DIR/haproxy.cfg" >>"$E2E_DIR/haproxy.log" 2>&1 &
	E2E_PIDS+=($!)
	wait_port "$ADMIN"
}
down_then_reconciled command stop_haproxy restart_haproxy "exited with status 1"
log "PASS: command: a lost gateway holds the rollout; it is reconciled when it returns"
