#!/usr/bin/env bash
# Private headers stay private: a file under controller/ includes "canary/x.h" (public, include/canary/) or a header
# of its own folder, never another module's private header; public headers include only public ones.
# One naming rule: a private header is controller/MODULE/MODULE_int.h (or MODULE_WHAT_int.h), so its name says
# whose it is and that it is private.
set -euo pipefail
top=${CANARY_SOURCE_DIR:?}
cd "$top"
rc=0
while IFS= read -r -d '' h; do
	dir=$(dirname "$h")
	module=$(basename "$dir")
	name=$(basename "$h")
	if [[ "$dir" != controller/* || "$dir" == controller/*/* || ! "$name" =~ ^${module}(_[a-z0-9]+)*_int\.h$ ]]; then
		echo "$h: a private header is named controller/$module/${module}_int.h (or ${module}_WHAT_int.h);" \
			"rename it, or make it public in include/canary/" >&2
		rc=1
	fi
done < <(find controller -name '*.h' -print0 | sort -z)
while IFS=: read -r f n line; do
	[[ "$line" =~ \"([^\"]+)\" ]] || continue
	h=${BASH_REMATCH[1]}
	if [[ "$h" == canary/* ]]; then
		[ -f "include/$h" ] || { echo "$f:$n: \"$h\" is not a public header in include/" >&2; rc=1; }
	elif [[ "$f" == include/* ]]; then
		echo "$f:$n: public header includes \"$h\"; public headers include only \"canary/...\"" >&2
		rc=1
	elif [ ! -f "$(dirname "$f")/$h" ]; then
		echo "$f:$n: \"$h\" is not in $(dirname "$f")/: another module's private header (make it public in" \
			"include/canary/)" >&2
		rc=1
	fi
done < <(find controller include -name '*.[ch]' -print0 | sort -z |
	xargs -0 grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' || true)
exit $rc
