#!/usr/bin/env bash
# scripts/systemd/canaryd.service is a unit systemd accepts, with the limits and sandbox the README promises.
# `systemd-analyze verify` needs no running systemd (CI is a container as root); it checks that ExecStart's binary
# exists, so it runs on a copy whose ExecStart points at the canaryd just built. verify exits 0 on unknown keys and
# bad values (it only warns), so any output at all fails the test. `systemd-analyze security --offline` scores the
# sandbox: a lost hardening line raises the exposure above the bound.
set -euo pipefail
top=${CANARY_SOURCE_DIR:?}
bin=${CANARY_BINARY_DIR:?}
unit=$top/scripts/systemd/canaryd.service
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing: install the Debian package systemd (scripts/deps test)"
[ -x "$bin/canaryd" ] || fail "$bin/canaryd is not built"
tmp=$(mktemp -d /tmp/canary-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
grep -q '^ExecStart=/usr/local/bin/canaryd ' "$unit" || fail "ExecStart is not /usr/local/bin/canaryd (the Dockerfile's path)"
sed "s|^ExecStart=/usr/local/bin/canaryd |ExecStart=$bin/canaryd |" "$unit" >"$tmp/canaryd.service"

out=$(cd "$tmp" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify ./canaryd.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warned: $out"

# What the unit must keep (issue 13, item 6), one line each.
for want in 'User=canary' 'Restart=on-failure' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
	'PrivateTmp=yes' 'EnvironmentFile=/etc/canary/canaryd.env'; do
	grep -qx "$want" "$unit" || fail "the unit lacks '$want'"
done
limit=$(sed -n 's/^LimitNOFILE=//p' "$unit")
[[ "$limit" =~ ^[0-9]+$ ]] && [ "$limit" -ge 4096 ] || fail "LimitNOFILE='$limit': want a number >= 4096 (see its comment)"
grep -q 'LimitNOFILE >= ' "$unit" || fail "the unit's LimitNOFILE has no comment with the formula"
# the descriptor limit is raised at start: the syscall filter must keep setrlimit
grep -q '^SystemCallFilter=~.*@resources' "$unit" && fail "SystemCallFilter removes @resources (setrlimit)"

sec=$(cd "$tmp" && systemd-analyze security --offline=yes --no-pager ./canaryd.service 2>&1) ||
	fail "systemd-analyze security: $(tail -3 <<<"$sec")"
level=$(sed -n 's/.*Overall exposure level for canaryd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
[ -n "$level" ] || fail "no exposure level in: $(tail -3 <<<"$sec")"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || fail "exposure level $level (want <= 2.0; it was 1.6): $(grep '✗' <<<"$sec" | head -5)"
echo "ok: systemd-analyze verify is silent; exposure level $level; LimitNOFILE=$limit"
