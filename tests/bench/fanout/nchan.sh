#!/bin/bash
# Run Nchan (Debian's nginx + libnginx-mod-nchan) with nchan.conf under a
# private prefix: never the system configuration, never the system logs.
#
#   nchan.sh start PREFIX PORT CONNS [CPUS [WORKERS]]
#                       prints "MASTER_PID WORKER_PID..."
#   nchan.sh stop PREFIX
#
# NCHAN_CONF names another template (the cluster benchmark's Redis mode,
# tests/bench/cluster/nchan-redis.conf); NCHAN_REDIS fills in its @REDIS@
# (HOST:PORT).
#
# start writes PREFIX/nginx.conf for WORKERS worker processes (default 1;
# CONNS connections each), starts nginx in the foreground (daemon off) in
# the background, pinned to CPUS (a taskset list, "" for none) if given,
# and waits until every worker is up and it listens on 127.0.0.1:PORT
# (5 s at most). Subscribers: GET /sub (event
# stream); publisher: POST /pub. stop sends SIGTERM to the master whose
# pid it wrote and waits for it (5 s at most, then SIGKILL).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}

case ${1:-} in
start)
	prefix=$2 port=$3 conns=$4 cpu=${5:-} workers=${6:-1}
	mkdir -p "$prefix/tmp"
	nofile=$(( conns + 1024 ))
	hard=$(ulimit -Hn)
	[ "$hard" != unlimited ] && [ "$nofile" -gt "$hard" ] && nofile=$hard
	sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" \
	    -e "s|@CONNS@|$conns|g" -e "s|@NOFILE@|$nofile|g" -e "s|@WORKERS@|$workers|g" \
	    -e "s|@REDIS@|${NCHAN_REDIS:-}|g" \
	    "${NCHAN_CONF:-$here/nchan.conf}" > "$prefix/nginx.conf"
	pin=()
	[ -n "$cpu" ] && pin=(taskset -c "$cpu")
	"${pin[@]}" "$NGINX" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" \
		> "$prefix/stdout.log" 2>&1 &
	master=$!
	echo "$master" > "$prefix/master.pid"
	for _ in $(seq 50); do
		mapfile -t wk < <(pgrep -P "$master")
		if [ "${#wk[@]}" -ge "$workers" ] && ss -Htln "sport = :$port" | grep -q .; then
			echo "$master ${wk[*]}"
			exit 0
		fi
		kill -0 "$master" 2>/dev/null || break
		sleep 0.1
	done
	echo "nchan.sh: nginx did not start; $prefix/error.log says:" >&2
	tail -n 5 "$prefix/error.log" "$prefix/stdout.log" >&2 2>/dev/null
	kill "$master" 2>/dev/null
	exit 1
	;;
stop)
	prefix=$2
	master=$(cat "$prefix/master.pid" 2>/dev/null) || exit 0
	kill -TERM "$master" 2>/dev/null || exit 0
	for _ in $(seq 50); do
		kill -0 "$master" 2>/dev/null || exit 0
		sleep 0.1
	done
	kill -KILL "$master" 2>/dev/null
	exit 0
	;;
*)
	echo "usage: nchan.sh start PREFIX PORT CONNS [CPUS [WORKERS]] | stop PREFIX" >&2
	exit 2
	;;
esac
