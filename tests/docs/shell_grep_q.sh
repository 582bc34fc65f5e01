#!/usr/bin/env bash
# The shell scripts run under `set -o pipefail` (tests/e2e/lib.bash, bench/, scripts/): `producer | grep -q PATTERN`
# fails there whenever grep stops at its match before the producer has written everything (the producer dies of
# SIGPIPE, and the pipeline's status is its 141), so a check that should pass fails now and then under load
# (e2e/daemon_db_failover failed so in CI's sanitizer pass). `grep -c PATTERN >/dev/null` reads all of its input.
set -euo pipefail
top=${CANARY_SOURCE_DIR:?}
cd "$top"
hits=$(grep -nE '\|[[:space:]]*grep[[:space:]]+-[a-zA-Z]*q' tests/e2e/*.sh tests/docs/*.sh bench/*.sh scripts/* 2>/dev/null |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' || true)
if [ -n "$hits" ]; then
	echo "$hits" >&2
	echo "a pipe into grep -q fails under pipefail when grep stops early; use grep -c ... >/dev/null" >&2
	exit 1
fi
