#!/usr/bin/env bash
# e2e, gateway kind command: the shipped policies/gateways/haproxy-socat drives a real HAProxy through socat; a
# healthy candidate goes 1% -> 5% -> 100% under real traffic and is promoted, the served share per step matching
# the weight; then an error regression in the next candidate is rolled back.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib_gateways.bash"
healthy_then_regression command
log "PASS: command: healthy promoted, regression rolled back"
