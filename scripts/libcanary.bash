# Shared by scripts/pgtmp, scripts/demo and tests/e2e/lib.bash (source it): the sbin directories on PATH, and a
# registry of reserved loopback ports so that concurrent tests, throwaway Postgres servers and the demo never pick
# the same port. The C fixtures (tests/support/lib/port_fixture.c) follow the same protocol.
#
# The registry is a directory (CANARY_PORTS_DIR, default /tmp/canary-ports, mode 1777 so every user shares it) with
# one file per reserved port holding "PID START": the owner's process id and its start time (field 22 of
# /proc/PID/stat, so a reused pid is not mistaken for the owner). A reservation lasts until its owner releases it
# or exits; a dead owner's file is taken over by the next reserver. Every change holds an flock on DIR/.lock.
# Ports come from 10000 up to the bottom of the kernel's ephemeral range: a port in that range may be taken at any
# moment as the source port of an outgoing connection, and then cannot be bound.

# haproxy, runuser and friends live in the sbin directories, which a normal user's PATH often lacks (Debian).
canary_sbin_path() {
	local d
	for d in /usr/local/sbin /usr/sbin /sbin; do
		case ":$PATH:" in *":$d:"*) ;; *) [ -d "$d" ] && PATH="$PATH:$d" ;; esac
	done
	export PATH
}

CANARY_PORTS_DIR=${CANARY_PORTS_DIR:-/tmp/canary-ports}

# True when something on 127.0.0.1 accepts connections on PORT.
port_listening() { # PORT
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The start time of process PID (clock ticks after boot), or a failure when there is no such process (or only its
# zombie).
_port_proc_start() { # PID
	local stat
	local -a f
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -ra f <<<"${stat##*) }"
	case ${f[0]} in Z | X) return 1 ;; esac   # a zombie has closed its sockets already
	echo "${f[19]}"
}

# Runs "$@" holding the registry's lock. Returns what "$@" returned, or 2 when the registry is unusable.
_ports_locked() {
	local fd rc=0 dir=$CANARY_PORTS_DIR
	[ -d "$dir" ] || mkdir -p -m 1777 "$dir" 2>/dev/null || true
	# create the lock file once, readable by all; later users open it read-only (enough for flock, and allowed for
	# another user's file in a sticky directory)
	[ -e "$dir/.lock" ] || (umask 0 && : >>"$dir/.lock") 2>/dev/null || true
	{ exec {fd}<"$dir/.lock"; } 2>/dev/null || {
		echo "canary: cannot open the port registry '$dir/.lock' (remove '$dir' if it is stale)" >&2
		return 2
	}
	if ! flock -w 30 "$fd"; then
		exec {fd}<&-
		echo "canary: the port registry '$dir' stayed locked for 30 s" >&2
		return 2
	fi
	"$@" || rc=$?
	exec {fd}<&-
	return $rc
}

# Under the lock: reserves PORT for OWNER (start time START) unless a live process holds it (OWNER included) or
# something listens on it.
_port_take() { # PORT OWNER START
	local f="$CANARY_PORTS_DIR/$1" opid= ostart=
	if [ -e "$f" ]; then
		{ read -r opid ostart <"$f"; } 2>/dev/null || true
		[ -n "$opid" ] && [ "$(_port_proc_start "$opid")" = "$ostart" ] && return 1
		rm -f -- "$f" 2>/dev/null || return 1   # another user's stale file in the sticky directory: skip the port
		[ ! -e "$f" ] || return 1
	fi
	port_listening "$1" && return 1
	printf '%s %s\n' "$2" "$3" >"$f" 2>/dev/null
}

# Under the lock: makes OWNER (start time START) the holder of PORT, whoever held it.
_port_set() { # PORT OWNER START
	rm -f -- "$CANARY_PORTS_DIR/$1" 2>/dev/null || true
	printf '%s %s\n' "$2" "$3" >"$CANARY_PORTS_DIR/$1"
}

# Under the lock: removes the reservations of OWNER (all of them, or only PORTS).
_port_drop() { # OWNER [PORTS...]
	local owner=$1 f opid ostart
	shift
	if [ $# -eq 0 ]; then
		for f in "$CANARY_PORTS_DIR"/[0-9]*; do
			[ -f "$f" ] || continue
			opid=
			{ read -r opid ostart <"$f"; } 2>/dev/null || true
			[ "$opid" = "$owner" ] && rm -f -- "$f"
		done
	else
		for f in "$@"; do
			opid=
			{ read -r opid ostart <"$CANARY_PORTS_DIR/$f"; } 2>/dev/null || true
			[ "$opid" = "$owner" ] && rm -f -- "$CANARY_PORTS_DIR/$f"
		done
	fi
	return 0
}

# The lowest port of the kernel's ephemeral range.
_ports_ephemeral_low() {
	local low=32768
	{ read -r low _ </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null || true
	[ "$low" -gt 12000 ] 2>/dev/null || low=32768
	echo "$low"
}

# Reserves PORT for OWNER (default: this shell, $$). Fails when it is reserved by a live process or in use.
port_reserve() { # PORT [OWNER]
	local owner=${2:-$$} start
	start=$(_port_proc_start "$owner") || return 1
	_ports_locked _port_take "$1" "$owner" "$start"
}

# Picks a free port below the ephemeral range, reserves it for OWNER (default: this shell, $$; $$ is the calling
# script even inside $(...)) and prints it. A port handed out is never handed out again while its owner lives.
port_pick() { # [OWNER]
	local owner=${1:-$$} start low p i rc
	start=$(_port_proc_start "$owner") || { echo "canary: port_pick: no process $owner" >&2; return 1; }
	low=$(_ports_ephemeral_low)
	for i in $(seq 1 200); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
		rc=0
		_ports_locked _port_take "$p" "$owner" "$start" || rc=$?
		[ $rc -eq 0 ] && { echo "$p"; return 0; }
		[ $rc -eq 2 ] && return 1
	done
	echo "canary: no free loopback port below $low after 200 tries" >&2
	return 1
}

# Hands PORT over to process OWNER (e.g. the server that now listens on it).
port_handover() { # PORT OWNER
	local start
	start=$(_port_proc_start "$2") || return 1
	_ports_locked _port_set "$1" "$2" "$start"
}

# Releases OWNER's reservations: all of them, or only the PORTS given.
port_release() { # OWNER [PORTS...]
	_ports_locked _port_drop "$@"
}
