#!/usr/bin/env bash
# e2e, gateway kind nginx: a healthy candidate goes 1% -> 5% -> 100% through a real nginx (include rendered,
# nginx -t, reload) under real traffic and is promoted, the served share per step matching the weight; then an
# error regression in the next candidate is rolled back (the include gives it `down`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib_gateways.bash"
healthy_then_regression nginx
log "PASS: nginx: healthy promoted, regression rolled back"
