#!/usr/bin/env bash
# e2e, gateway kind nginx: nginx dies (SIGKILL, stale pid file) at the 5% step: the rollout holds there with
# "nginx is not running" and an abort is recorded; nginx restarts with the include still at 5%, and canaryd
# renders 0%, reloads and confirms.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib_gateways.bash"
restart_nginx() { start_nginx "$FE" "$BLUE" "$GREEN"; }
down_then_reconciled nginx kill_nginx restart_nginx "nginx is not running"
log "PASS: nginx: a lost nginx holds the rollout; it is reconciled when it returns"
