#!/usr/bin/env bash
# e2e, gateway kind kserve: canaryd moves an InferenceService's spec.predictor.canaryTrafficPercent on the test API
# server (tests/support/bin/k8sapi.py: merge patch, resourceVersion, a simulated KServe that makes a predictor
# revision per model and splits status.components.predictor.traffic between the revision created last and the one
# rolled out), and programs that split into a real HAProxy as KServe's data plane (Knative) would: CI deploys
# green's model as a new revision at 0%, a healthy candidate goes 1% -> 5% -> 100% under real traffic and is
# promoted (KServe records it as rolled out), the served share per step matching the percent; then blue's model is
# deployed as the next revision and an error regression in it is rolled back to 0%.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
source "$(dirname "${BASH_SOURCE[0]}")/lib_gateways.bash"
healthy_then_regression kserve
rolled=$(curl -sf "http://127.0.0.1:$K8S_PORT/_fake/get/$K8S_ISVC" | jq -r '.status.components.predictor | "\(.latestCreatedRevision) \(.latestRolledoutRevision)"')
[ "$rolled" = "svc-predictor-00003 svc-predictor-00002" ] || fail "kserve: created/rolled-out revisions are '$rolled', expected svc-predictor-00003 (blue, rolled back) and svc-predictor-00002 (green)"
log "PASS: kserve: healthy promoted (revision 00002 rolled out), regression in revision 00003 rolled back"
