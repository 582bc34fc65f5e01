#!/usr/bin/env bash
# The README's policy, service and SLA contract reference tables are exactly what `canaryctl policy keys` /
# `service keys` / `sla keys` generate from the loaders' key tables.
set -euo pipefail
top=${CANARY_SOURCE_DIR:?}
ctl=${CANARY_BINARY_DIR:?}/canaryctl
rc=0
for kind in policy service sla; do
	want=$("$ctl" "$kind" keys)
	have=$(sed -n "/<!-- $kind-keys:begin -->/,/<!-- $kind-keys:end -->/p" "$top/README.md" | sed '1d;$d')
	if [ "$want" != "$have" ]; then
		echo "README.md: the $kind reference differs from 'canaryctl $kind keys'; regenerate it:" >&2
		diff <(echo "$have") <(echo "$want") >&2 || true
		rc=1
	fi
done
exit $rc
