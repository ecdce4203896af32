#!/bin/bash
# The cluster benchmark (issue 10, point 6), in one run:
#
# 1. Side by side, K nodes each (CLUSTER_NODES, default 2) sharing one
#    redis-server on loopback: sse-relay --redis, against Nchan in its
#    Redis mode (Debian's nginx + libnginx-mod-nchan, one worker per node,
#    nchan_redis_server pointing at the same redis-server). Subscribers are
#    spread round-robin over the nodes, events published to the nodes in
#    turn, under two loads from the fan-out benchmark's load client:
#      per-event  one publish in flight, the next sent as soon as the last
#                 is answered
#      steady-20  a steady 20 events/s; latency from when each was due
#    at 1 000 and 10 000 subscribers in all (CLUSTER_TIERS). Reported:
#    deliveries per server CPU-second (the nodes and Redis together),
#    p50/p99 publish-to-delivery latency, Redis CPU per event.
# 2. The scale run: 60 000 subscribers (CLUSTER_SCALE_SUBS) over 4 relay
#    nodes (CLUSTER_SCALE_NODES), one load client per node (each process
#    may hold about 20 000 descriptors), the first of them also publishing
#    to every node in turn at a steady CLUSTER_SCALE_RATE events/s
#    (default 1) for CLUSTER_SCALE_SECONDS (default 30): memory per idle
#    subscriber per node (the growth of each node's Private_Dirty from N/2
#    to N subscribers), p99 latency over all 60 000, CPU. The rate is low
#    because every event is 60 000 sends on the one server CPU: at about
#    7 us of kernel time each (loopback TCP, both ends' work charged to
#    the sender), 2 events/s already fill it, and latency then measures
#    the backlog.
#
# It prints a table, then the goals of the issue (at least 2x Nchan-with-
# Redis in deliveries per CPU-second, p99 no worse, <= 1 KiB of user-space
# memory per idle subscriber per node), each met / NOT met. Always exits 0.
#
#   run.sh LOADCLIENT SSE-RELAY
#
# (meson passes both; run by hand, missing ones are looked for in
# ../../../build-fanout and ../../../build.)
#
# Redis runs once for the whole run, private directory, no persistence;
# FLUSHALL before every run, and every run starts its nodes afresh. With
# two CPUs or more the nodes and Redis run on CPU 0, the load clients on
# CPU 1 (CLUSTER_SERVER_CPUS / CLUSTER_CLIENT_CPUS change that).
#
# Environment: CLUSTER_NODES (2), CLUSTER_TIERS ("1000 10000"),
# CLUSTER_LOADS ("per-event steady-20"), CLUSTER_SIDES ("relay nchan"),
# CLUSTER_SCALE (a factor on event counts and the scale run's subscribers
# and length, default 1; 0.3 makes a quick run), CLUSTER_REPEAT (rounds of
# the side-by-side part, default 1; the table shows the run with the most
# deliveries per CPU-second), CLUSTER_SCALE_SUBS (60000), CLUSTER_SCALE_NODES
# (4), CLUSTER_SCALE_RATE (1), CLUSTER_SCALE_SECONDS (30),
# CLUSTER_SCALE_SIDES ("relay"; add nchan to scale Nchan too; none: no
# scale run),
# CLUSTER_NO_INSTALL=1 (never apt-get nginx), CLUSTER_KEEP=1 (keep the
# temporary directory), CLUSTER_PERF=DIR (perf record -g of every relay
# node and of Redis, per run, into DIR).
#
# A full run (defaults) takes about 5 minutes on a 2-core machine.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NCHAN_SH="$here/../fanout/nchan.sh" # with NCHAN_CONF: the Redis mode
root=$(cd "$here/../../.." && pwd)

find_bin() { # RELPATH
	local d
	for d in "$root/build-fanout" "$root/build"; do
		[ -x "$d/$1" ] && { echo "$d/$1"; return; }
	done
	echo ""
}
LC=${1:-$(find_bin tests/bench/fanout-loadclient)}
RELAY=${2:-$(find_bin examples/sse-relay)}
for b in "$LC" "$RELAY"; do
	if [ -z "$b" ] || [ ! -x "$b" ]; then
		echo "cluster: missing program (usage: run.sh LOADCLIENT SSE-RELAY)"
		exit 0
	fi
done
for p in python3 redis-server redis-cli; do
	if ! command -v "$p" > /dev/null; then
		echo "cluster: $p is needed: SKIPPED"
		exit 0
	fi
done
if ! "$RELAY" --help 2>&1 | grep -q -- '--redis URL  *run as one node'; then
	echo "cluster: $RELAY was built without hiredis (no --redis): SKIPPED"
	exit 0
fi

NODES=${CLUSTER_NODES:-2}
TIERS=${CLUSTER_TIERS:-"1000 10000"}
LOADS=${CLUSTER_LOADS:-"per-event steady-20"}
SIDES=${CLUSTER_SIDES:-"relay nchan"}
SCALE=${CLUSTER_SCALE:-1}
REPEAT=${CLUSTER_REPEAT:-1}
SCALE_NODES=${CLUSTER_SCALE_NODES:-4}
SCALE_SUBS=${CLUSTER_SCALE_SUBS:-$(awk -v s="$SCALE" 'BEGIN { print int(60000 * (s < 1 ? s : 1)) }')}
SCALE_RATE=${CLUSTER_SCALE_RATE:-1}
SCALE_SECONDS=${CLUSTER_SCALE_SECONDS:-$(awk -v s="$SCALE" 'BEGIN { t = int(30 * s); print t < 5 ? 5 : t }')}
SCALE_SIDES=${CLUSTER_SCALE_SIDES:-relay}
[ "$SCALE_SIDES" = none ] && SCALE_SIDES=""
for s in $SIDES $SCALE_SIDES; do
	case $s in
	relay | nchan) ;;
	*) echo "cluster: unknown side '$s' (relay, nchan; CLUSTER_SCALE_SIDES=none: no scale run)" >&2
	   exit 2 ;;
	esac
done
PERF_DIR=${CLUSTER_PERF:-}

tmp=$(mktemp -d /tmp/cluster.XXXXXX)
redis_pid=""
NODE_PIDS=()   # every process of the nodes running (sse-relay, nginx master + worker)
RELAY_PIDS=()  # the sse-relay processes among them
NCHAN_PREFIXES=()
perf_pids=()
bg_pids=()

stop_perf() {
	local p
	for p in "${perf_pids[@]}"; do
		kill -INT "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	perf_pids=()
}

stop_nodes() {
	local p pre
	stop_perf
	for p in "${RELAY_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${RELAY_PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for pre in "${NCHAN_PREFIXES[@]}"; do "$NCHAN_SH" stop "$pre"; done
	RELAY_PIDS=() NODE_PIDS=() NCHAN_PREFIXES=() PORTS=()
}

cleanup() {
	local p
	for p in "${bg_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	stop_nodes
	if [ -n "$redis_pid" ]; then
		kill -TERM "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
	[ "${CLUSTER_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

t_start=$SECONDS
echo "cluster: sse-relay --redis vs Nchan with Redis, K nodes sharing one redis-server (tests/bench/cluster)"

# ---- the machine

ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
cpus=$(nproc 2>/dev/null || echo 1)
SERVER_PIN=() CLIENT_PIN=() server_cpus=""
if command -v taskset > /dev/null; then
	if [ -n "${CLUSTER_SERVER_CPUS:-}" ]; then
		server_cpus=$CLUSTER_SERVER_CPUS
	elif [ "$cpus" -ge 2 ]; then
		server_cpus=0
	fi
	client_cpus=${CLUSTER_CLIENT_CPUS:-$([ "$cpus" -ge 2 ] && echo 1)}
	[ -n "$server_cpus" ] && SERVER_PIN=(taskset -c "$server_cpus")
	[ -n "$client_cpus" ] && CLIENT_PIN=(taskset -c "$client_cpus")
fi
if [ ${#SERVER_PIN[@]} -gt 0 ]; then
	echo "cluster: $cpus CPUs: nodes and Redis pinned to CPU(s) $server_cpus, load clients to" \
		"CPU(s) ${client_cpus:-any}"
else
	echo "cluster: $cpus CPU(s): no pinning; nodes, Redis and load clients share the CPU."
fi
echo "cluster: RLIMIT_NOFILE $nofile per process; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- Nchan: Debian's nginx with libnginx-mod-nchan

NCHAN_MOD=/usr/lib/nginx/modules/ngx_nchan_module.so
have_nchan() { [ -x /usr/sbin/nginx ] && [ -e "$NCHAN_MOD" ]; }
wants_nchan() { case " $SIDES $SCALE_SIDES " in *" nchan "*) return 0 ;; esac; return 1; }
if wants_nchan && ! have_nchan && [ "${CLUSTER_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] &&
	command -v apt-get > /dev/null; then
	echo "cluster: installing nginx and libnginx-mod-nchan with apt-get"
	own_policy=0 # keep the package from starting the system nginx on port 80
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		own_policy=1
	fi
	DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q nginx libnginx-mod-nchan \
		> "$tmp/apt.log" 2>&1 ||
		{ timeout 120 apt-get update -q > /dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q nginx \
			libnginx-mod-nchan >> "$tmp/apt.log" 2>&1; }
	[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
if ! wants_nchan; then
	:
elif have_nchan; then
	echo "cluster: Nchan: $(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //') +" \
		"libnginx-mod-nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)"
else
	echo "cluster: Nchan is not installed and could not be (needs root, apt-get and the"
	echo "        Debian repositories): its runs are SKIPPED."
	SIDES=$(echo " $SIDES " | sed 's/ nchan / /g')
	SCALE_SIDES=$(echo " $SCALE_SIDES " | sed 's/ nchan / /g')
fi

# ---- Redis: one redis-server on loopback for the whole run

free_port() {
	local p
	for _ in $(seq 100); do
		p=$(( 20000 + RANDOM % 12000 ))
		ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
	echo 29999
}

REDIS_PORT=$(free_port)
mkdir -p "$tmp/redis"
"${SERVER_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$tmp/redis" \
	--save '' --appendonly no --maxclients 1000 > "$tmp/redis/log" 2>&1 &
redis_pid=$!
for _ in $(seq 50); do
	redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
	sleep 0.1
done
if ! redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
	echo "cluster: redis-server did not start: $(tail -n 3 "$tmp/redis/log"): SKIPPED"
	exit 0
fi
echo "cluster: $(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$REDIS_PORT (pid" \
	"$redis_pid, no persistence); sse-relay $RELAY"

# ---- nodes

# Start N nodes of SIDE for SUBS subscribers in all: sets PORTS, NODE_PIDS,
# RELAY_PIDS, SUB_PATH, PUB_PATH. Returns 1 if one did not start.
start_nodes() { # SIDE N SUBS
	local side=$1 n=$2 subs=$3 i port pids out
	PORTS=()
	redis-cli -p "$REDIS_PORT" flushall > /dev/null
	case $side in
	relay)
		SUB_PATH=/events PUB_PATH="/publish?event=bench"
		for i in $(seq "$n"); do
			out="$tmp/relay$i"
			# The ring holds as many events as Nchan's buffer (1000); no
			# heartbeats (Nchan sends none either).
			"${SERVER_PIN[@]}" "$RELAY" --port 0 --heartbeat 0 --replay-events 1000 \
				--redis "redis://127.0.0.1:$REDIS_PORT/bench" > "$out.out" 2> "$out.err" &
			RELAY_PIDS+=($!)
			NODE_PIDS+=($!)
		done
		for i in $(seq "$n"); do
			out="$tmp/relay$i" port=""
			for _ in $(seq 50); do
				port=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\)/.*|\1|p' "$out.out")
				[ -n "$port" ] && break
				sleep 0.1
			done
			if [ -z "$port" ]; then
				echo "cluster: relay node $i did not start: $(tail -n 3 "$out.err")"
				return 1
			fi
			PORTS+=("$port")
		done
		# Every node follows the log (GET /ready) before any load.
		command -v curl > /dev/null || { sleep 1; return 0; }
		for port in "${PORTS[@]}"; do
			for _ in $(seq 50); do
				curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready" 2>/dev/null |
					grep -q 200 && break
				sleep 0.1
			done
		done
		;;
	nchan)
		SUB_PATH=/sub PUB_PATH=/pub
		for i in $(seq "$n"); do
			port=$(free_port)
			rm -rf "$tmp/nchan$i"
			# nginx closes subscribers to reuse their connections well
			# before it is out of them: room for twice its share.
			pids=$(NCHAN_CONF="$here/nchan-redis.conf" NCHAN_REDIS="127.0.0.1:$REDIS_PORT" \
				"$NCHAN_SH" start "$tmp/nchan$i" "$port" $(( 2 * subs / n + 512 )) \
				"$server_cpus" 1) || return 1
			NCHAN_PREFIXES+=("$tmp/nchan$i")
			read -r -a pids <<< "$pids"
			NODE_PIDS+=("${pids[@]}")
			PORTS+=("$port")
		done
		;;
	esac
	return 0
}

start_perf() { # TAG
	local p
	[ -n "$PERF_DIR" ] && command -v perf > /dev/null || return 0
	mkdir -p "$PERF_DIR"
	for p in "${RELAY_PIDS[@]}" "$redis_pid"; do
		perf record -e cpu-clock -g -p "$p" -o "$PERF_DIR/$1-$p.data" > /dev/null 2>&1 &
		perf_pids+=($!)
	done
}

# Other load on the machine delays both sides and shows in latency: wait
# a little for it to pass (stall% in the table says how much remained).
wait_quiet() {
	local avg
	[ -r /proc/pressure/cpu ] || return
	for _ in $(seq 30); do
		avg=$(sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu)
		awk -v a="${avg:-0}" 'BEGIN { exit !(a < 10) }' && return
		sleep 0.5
	done
}

# Redis's CPU nanoseconds so far (every thread's run time, schedstat).
redis_ns() {
	local f t=0 ns
	for f in /proc/"$redis_pid"/task/*/schedstat; do
		read -r ns _ < "$f" 2>/dev/null && t=$(( t + ns ))
	done
	echo "$t"
}

# Redis's CPU while the nodes are connected and idle (its cron, the
# nodes' pings), in us per second: what a low event rate's per-event
# figure holds besides the events. Adds redis_idle_us_per_s to the JSON.
redis_idle() { # -> sets REDIS_IDLE
	local a b
	a=$(redis_ns)
	sleep 2
	b=$(redis_ns)
	REDIS_IDLE=$(( (b - a) / 2000 ))
}

jget() { # JSON KEY
	sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<< "$1"
}

# Server-side complaints (nodes dropping subscribers, errors) matter.
node_complaints() { # LABEL
	local f
	for f in "$tmp"/relay*.err; do
		[ -s "$f" ] && grep -qv 'stopped$' "$f" || continue
		echo "cluster: $1: $(basename "$f" .err) stderr:"
		grep -v 'stopped$' "$f" | sort | uniq -c | head -n 5 | sed 's/^/        /'
	done
	for f in "$tmp"/nchan*/error.log; do
		grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$f" 2>/dev/null || continue
		echo "cluster: $1: $(basename "$(dirname "$f")") error.log:"
		grep '\[\(error\|crit\|alert\|emerg\)\]' "$f" | head -n 3 | sed 's/^/        /'
	done
	rm -f "$tmp"/relay*.err "$tmp"/nchan*/error.log
}

results="$tmp/results.jsonl"
: > "$results"

load_for() { # SUBS LOAD -> "EVENTS RATE"
	local ev rate
	case $2 in
	per-event) ev=$(( 1000000 / $1 )) rate=1000000 ;; # about 1 000 000 deliveries
	*) ev=200 rate=20 ;;                              # steady-20: 10 s
	esac
	ev=$(awk -v e="$ev" -v s="$SCALE" 'BEGIN { e = int(e * s); print (e < 20 ? 20 : e) }')
	echo "$ev $rate"
}

# The load client's arguments for the nodes: subscribers and publishes
# over every port in turn, CPU of every node process and Redis.
node_args() {
	local p
	LC_NODE_ARGS=()
	for p in "${PORTS[@]}"; do LC_NODE_ARGS+=(--sub-port "$p" --pub-port "$p"); done
	for p in "${NODE_PIDS[@]}"; do LC_NODE_ARGS+=(--server-pid "$p"); done
	LC_NODE_ARGS+=(--redis-pid "$redis_pid" --sub-path "$SUB_PATH" --pub-path "$PUB_PATH")
}

run_one() { # SIDE SUBS LOAD ROUND
	local side=$1 n=$2 load=$3 round=$4 ev rate json stamp=()
	local label="$side/$n/$load"
	read -r ev rate <<< "$(load_for "$n" "$load")"
	wait_quiet
	if ! start_nodes "$side" "$NODES" "$n"; then
		echo "{\"label\":\"$label\",\"failed\":1}" >> "$results"
		stop_nodes
		return
	fi
	node_args
	redis_idle
	[ "$load" = steady-20 ] && stamp=(--stamp-scheduled)
	start_perf "$side-$n-$load-$round"
	json=$(timeout 240 "${CLIENT_PIN[@]}" "$LC" "${LC_NODE_ARGS[@]}" --subs "$n" --events "$ev" \
		--rate "$rate" --burst 1 "${stamp[@]}" --drain-timeout 30 --max-seconds 200 \
		--label "$label" 2>> "$tmp/loadclient.err" | tail -n 1)
	if [ -z "$json" ]; then
		json="{\"label\":\"$label\",\"failed\":1}"
		echo "cluster: $label: the load client reported nothing" \
			"($(tail -n 2 "$tmp/loadclient.err" | tr '\n' ' '))"
	else
		json="${json%\}},\"redis_idle_us_per_s\":$REDIS_IDLE}"
	fi
	echo "$json" >> "$results"
	local perr
	perr=$(jget "$json" publish_errors)
	[ -n "$perr" ] && [ "$perr" != 0 ] &&
		echo "cluster: $label: $perr of $ev publishes failed"
	stop_nodes
	node_complaints "$label"
	printf 'cluster: done %-22s %8s deliveries/CPU-s, p99 %9s us, Redis %6s us/event (%ds so far)\n' \
		"$label" "$(jget "$json" deliveries_per_cpu_s)" "$(jget "$json" p99_us)" \
		"$(jget "$json" redis_cpu_us_per_event)" $(( SECONDS - t_start ))
}

# ---- the scale run: one load client per node, the first also publishing

wait_ready() { # FILE... : until each says its subscribers are ready (180 s at most)
	local f all
	for _ in $(seq 1800); do
		all=1
		for f in "$@"; do grep -q 'subscribers ready' "$f" 2>/dev/null || all=0; done
		[ "$all" = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

scale_run() { # SIDE
	local side=$1 k=$SCALE_NODES n=$SCALE_SUBS per i p json ev lcargs
	local label="scale-$side/$n/steady-$SCALE_RATE"
	per=$(( n / k ))
	ev=$(awk -v r="$SCALE_RATE" -v t="$SCALE_SECONDS" 'BEGIN { print int(r * t) }')
	echo "cluster: scale run, $side: $n subscribers over $k nodes ($per each, one load client" \
		"per node), $ev events at $SCALE_RATE/s published to the nodes in turn"
	wait_quiet
	if ! start_nodes "$side" "$k" "$n"; then
		echo "{\"label\":\"$label/0\",\"failed\":1}" >> "$results"
		stop_nodes
		return
	fi
	# The nodes' shares: node i's processes (a relay: one; nginx: two).
	local per_node=$(( ${#NODE_PIDS[@]} / k ))
	for i in $(seq 1 $(( k - 1 ))); do
		lcargs=(--sub-port "${PORTS[$i]}" --sub-path "$SUB_PATH")
		for p in "${NODE_PIDS[@]:$(( i * per_node )):$per_node}"; do lcargs+=(--server-pid "$p"); done
		"${CLIENT_PIN[@]}" "$LC" "${lcargs[@]}" --subs "$per" --events "$ev" --rate "$SCALE_RATE" \
			--no-publish --print-hist --drain-timeout 15 --max-seconds 400 \
			--connect-timeout 120 --label "$label/$i" > "$tmp/scale$i.json" \
			2> "$tmp/scale$i.err" &
		bg_pids+=($!)
		# One at a time: each connects its share, then the next.
		wait_ready "$tmp/scale$i.err" || break
	done
	if ! wait_ready "$tmp"/scale*.err; then
		echo "cluster: $label: the subscribers did not all connect: $(tail -qn 1 "$tmp"/scale*.err)"
	fi
	lcargs=(--sub-port "${PORTS[0]}" --sub-path "$SUB_PATH" --pub-path "$PUB_PATH")
	for p in "${NODE_PIDS[@]:0:$per_node}"; do lcargs+=(--server-pid "$p"); done
	for p in "${NODE_PIDS[@]:$per_node}"; do lcargs+=(--cpu-pid "$p"); done
	for p in "${PORTS[@]}"; do lcargs+=(--pub-port "$p"); done
	redis_idle
	start_perf "scale-$side"
	json=$(timeout 400 "${CLIENT_PIN[@]}" "$LC" "${lcargs[@]}" --redis-pid "$redis_pid" \
		--subs "$per" --events "$ev" --rate "$SCALE_RATE" --burst 1 --stamp-scheduled \
		--print-hist --drain-timeout 15 --max-seconds 400 --connect-timeout 120 \
		--label "$label/0" 2>> "$tmp/loadclient.err" | tail -n 1)
	if [ -n "$json" ]; then
		json="${json%\}},\"redis_idle_us_per_s\":$REDIS_IDLE}"
	else
		json="{\"label\":\"$label/0\",\"failed\":1}"
	fi
	echo "$json" >> "$results"
	for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null; done
	bg_pids=()
	for i in $(seq 1 $(( k - 1 ))); do
		json=$(tail -n 1 "$tmp/scale$i.json" 2>/dev/null)
		[ -n "$json" ] || json="{\"label\":\"$label/$i\",\"failed\":1}"
		echo "$json" >> "$results"
	done
	stop_nodes
	node_complaints "$label"
	echo "cluster: done $label ($(( SECONDS - t_start ))s so far)"
}

for n in $TIERS; do
	for load in $LOADS; do
		read -r ev rate <<< "$(load_for "$n" "$load")"
		echo "cluster: $n subscribers over $NODES nodes, $load: $ev events of 96 bytes," \
			"$( [ "$rate" = 1000000 ] && echo "one in flight, each as soon as the last is answered" ||
				echo "$rate/s")"
	done
done
for round in $(seq "$REPEAT"); do
	for n in $TIERS; do
		for load in $LOADS; do
			for side in $SIDES; do
				run_one "$side" "$n" "$load" "$round"
			done
		done
	done
done
for side in $SCALE_SIDES; do
	scale_run "$side"
done

# ---- the report

echo
python3 "$here/report.py" "$results" "$TIERS" "$LOADS" "$SIDES" "$SCALE_SIDES" "$NODES" \
	"$SCALE_NODES" "$REPEAT"
echo "cluster: total ${SECONDS}s wall; load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
