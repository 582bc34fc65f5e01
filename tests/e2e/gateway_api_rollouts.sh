#!/usr/bin/env bash
# e2e, gateway kind gateway-api: canaryd moves an HTTPRoute's backendRef weights on the test API server
# (tests/support/bin/k8sapi.py, merge patch, resourceVersion, status conditions), whose controller programs them into a
# real HAProxy as a gateway's data plane would: a healthy candidate goes 1% -> 5% -> 100% under real traffic and is
# promoted, the served share per step matching the weight; then an error regression in the next candidate is rolled
# back.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib_gateways.bash"
healthy_then_regression gateway-api
log "PASS: gateway-api: healthy promoted, regression rolled back"
