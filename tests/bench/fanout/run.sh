#!/bin/bash
# The fan-out benchmark, in one run: sse-relay (with its default batching
# window, and with --batch 0) against Nchan (nginx + nchan, 1 and 2
# workers) and against a raw writev baseline (with the relay's socket
# options, and as it was), at 1 000 and 10 000 subscribers, under three
# loads from the same load client:
#
#   per-event   one publish in flight, the next sent as soon as the last is
#               answered; subscribers read as soon as bytes arrive
#   batch-2ms   the same publisher; subscribers read every 2 ms
#               (loadclient --read-every-ms 2), all they have, then sleep
#   steady-20   a steady 20 events/s, one at a time; subscribers read at once;
#               latency from when each event was due (--stamp-scheduled), so
#               a server that answers a publish only after its fan-out has
#               its backlog counted as one that answers first and queues
#
# It prints a table (deliveries per server CPU-second, latency, connect
# time...) and the goals of the issue "Fan-out at the physical limit"
# (point 5), each with its ratio and met / NOT met. It always exits 0.
#
#   run.sh LOADCLIENT RAWBASELINE SSE-RELAY
#
# (meson passes the three; run by hand, missing ones are looked for in
# ../../../build-fanout and ../../../build.)
#
# Servers (FANOUT_SERVERS, default
# "relay relay2 relay0 nchan1 nchan2 raw rawauto"):
#   relay    sse-relay as it ships, on one core: the default window (2 ms),
#            one loop thread (--threads 1)
#   relay2   the same with two loop threads (--threads 2), on two cores
#   relay0   sse-relay --batch 0 --threads 1: every flush delivers
#   nchan1   Nchan, one worker (nchan.sh, nchan.conf); "nchan" means this
#   nchan2   Nchan, two workers, on two cores
#   raw      rawbaseline with the relay's socket options: TCP_NODELAY,
#            SO_SNDBUF 65536 on subscribers, publisher connections kept
#            alive (FANOUT_RAW_ARGS, default "--sndbuf 65536 --keep-alive 1")
#   rawauto  rawbaseline as it was: TCP_NODELAY, the kernel's autotuned
#            send buffer, one connection per publish
# Each run starts its server afresh; the load client reads from /proc the
# server's CPU time (utime + stime, nginx master + workers) from the first
# publish to the last delivery and its memory with 0, N/2 and N idle
# subscribers, and times the connecting of the N subscribers (less a
# pause at N/2). With two CPUs or more the server runs on CPU 0 and the
# load client on CPU 1; the two-thread and two-worker servers (relay2,
# nchan2) run on CPUs 0 and 1 (FANOUT_RELAY2_CPUS, FANOUT_NCHAN2_CPUS),
# sharing one with the load client: the goals compare relay with nchan1
# and relay2 with nchan2, like with like. Nchan is installed with apt-get (nginx,
# libnginx-mod-nchan) when missing; its runs are skipped if that cannot
# be done.
#
# Environment: FANOUT_TIERS (default "1000 10000"), FANOUT_REGIMES (the
# loads, default "per-event batch-2ms steady-20"), FANOUT_SCALE (a factor
# on the event counts, default 1; 0.3 makes a quick run), FANOUT_REPEAT
# (rounds over every case, default 1; the table shows each case's run with
# the most deliveries per server CPU-second, connect time the median),
# FANOUT_NO_INSTALL=1 (never apt-get nginx), FANOUT_KEEP=1 (keep the
# temporary directory), FANOUT_PERF=DIR (record a cpu-clock profile of
# every relay and raw baseline run, perf record -g, into DIR; Nchan, with
# several processes, is not profiled).
#
# FANOUT_MEMORY=1: only the memory per idle subscriber, the goal being
# <= 512 B at 10 000: sse-relay alone, 10 000 subscribers, one short
# per-event run, nothing installed (any setting above given too wins).
#
# A full run (defaults) takes about 16 minutes on a 2-core machine.
set -u

if [ "${FANOUT_MEMORY:-0}" = 1 ]; then
	: "${FANOUT_TIERS:=10000}" "${FANOUT_SERVERS:=relay}" "${FANOUT_REGIMES:=per-event}"
	: "${FANOUT_REPEAT:=1}" "${FANOUT_SCALE:=0.2}" "${FANOUT_NO_INSTALL:=1}"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)

find_bin() { # NAME RELPATH
	local d
	for d in "$root/build-fanout" "$root/build"; do
		[ -x "$d/$2" ] && { echo "$d/$2"; return; }
	done
	echo ""
}
LC=${1:-$(find_bin loadclient tests/bench/fanout-loadclient)}
RAW=${2:-$(find_bin rawbaseline tests/bench/fanout-rawbaseline)}
RELAY=${3:-$(find_bin relay examples/sse-relay)}
for b in "$LC" "$RAW" "$RELAY"; do
	if [ -z "$b" ] || [ ! -x "$b" ]; then
		echo "fanout: missing program (usage: run.sh LOADCLIENT RAWBASELINE SSE-RELAY)"
		exit 0
	fi
done
if ! command -v python3 >/dev/null; then
	echo "fanout: python3 is needed for the report: SKIPPED"
	exit 0
fi

TIERS=${FANOUT_TIERS:-"1000 10000"}
SERVERS=$(echo " ${FANOUT_SERVERS:-relay relay2 relay0 nchan1 nchan2 raw rawauto} " | sed 's/ nchan / nchan1 /')
REGIMES=${FANOUT_REGIMES:-"per-event batch-2ms steady-20"}
SCALE=${FANOUT_SCALE:-1}
REPEAT=${FANOUT_REPEAT:-1}
RAW_ARGS=${FANOUT_RAW_ARGS:-"--sndbuf 65536 --keep-alive 1"}
PERF_DIR=${FANOUT_PERF:-}
known=""
for l in $REGIMES; do
	case $l in
	per-event | batch-2ms | steady-20) known="$known $l" ;;
	*) echo "fanout: unknown load $l (loads: per-event batch-2ms steady-20): skipped" ;;
	esac
done
REGIMES=${known# }

tmp=$(mktemp -d /tmp/fanout.XXXXXX)
server_pid=""
perf_pid=""
cleanup() {
	[ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
	if [ -n "$server_pid" ]; then
		kill -TERM "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	[ -f "$tmp/nchan/master.pid" ] && "$here/nchan.sh" stop "$tmp/nchan"
	[ "${FANOUT_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

t_start=$SECONDS
echo "fanout: sse-relay vs Nchan vs a raw writev baseline (tests/bench/fanout)"

# ---- the machine

ulimit -n "$(ulimit -Hn)" 2>/dev/null
nofile=$(ulimit -n)
cpus=$(nproc 2>/dev/null || echo 1)
if [ "$cpus" -ge 2 ] && command -v taskset >/dev/null; then
	SERVER_PIN=(taskset -c 0)
	CLIENT_PIN=(taskset -c 1)
	nginx_cpu=0
	nginx2_cpus=${FANOUT_NCHAN2_CPUS:-0,1}
	RELAY2_PIN=(taskset -c "${FANOUT_RELAY2_CPUS:-0,1}")
	echo "fanout: $cpus CPUs: server pinned to CPU 0 (relay2: CPU(s) ${FANOUT_RELAY2_CPUS:-0,1};"
	echo "        Nchan's two workers: CPU(s) $nginx2_cpus), load client to CPU 1 (it parses every"
	echo "        delivery on one core; other load on the machine adds noise)."
else
	SERVER_PIN=()
	RELAY2_PIN=()
	CLIENT_PIN=()
	nginx_cpu=""
	nginx2_cpus=""
	echo "fanout: $cpus CPU(s): no pinning; server and load client share the CPU."
fi
echo "fanout: RLIMIT_NOFILE $nofile; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- Nchan: Debian's nginx with libnginx-mod-nchan

NCHAN_MOD=/usr/lib/nginx/modules/ngx_nchan_module.so
have_nchan() { [ -x /usr/sbin/nginx ] && [ -e "$NCHAN_MOD" ]; }
wants_nchan() { case " $SERVERS " in *" nchan1 "* | *" nchan2 "*) return 0 ;; esac; return 1; }
if wants_nchan && ! have_nchan && [ "${FANOUT_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] &&
	command -v apt-get >/dev/null; then
	echo "fanout: installing nginx and libnginx-mod-nchan with apt-get"
	# Keep the package from starting the system nginx on port 80.
	own_policy=0
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
	: # not asked for
elif have_nchan; then
	echo "fanout: Nchan: $(/usr/sbin/nginx -v 2>&1 | sed 's/.*: //') +" \
		"libnginx-mod-nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)"
else
	echo "fanout: Nchan is not installed and could not be (needs root, apt-get and the"
	echo "        Debian repositories): its runs are SKIPPED."
	SERVERS=$(echo " $SERVERS " | sed 's/ nchan[12] / /g; s/ nchan[12] / /g')
fi
echo "fanout: sse-relay $RELAY; raw baseline's socket options (raw): $RAW_ARGS"

# ---- loads: events, rate (events/s), read period (ms) per tier and load

load_for() { # TIER LOAD -> "EVENTS RATE READ_EVERY_MS"
	local ev rate every=0
	case $2 in
	per-event | batch-2ms)
		# As fast as answered: a publisher faster than a pass over every
		# subscriber, about 1 000 000 deliveries per run.
		ev=$(( 1000000 / $1 )) rate=1000000
		[ "$ev" -lt 50 ] && ev=50
		[ "$2" = batch-2ms ] && every=2
		;;
	*) ev=200 rate=20 ;; # steady-20: 10 s
	esac
	ev=$(awk -v e="$ev" -v s="$SCALE" 'BEGIN { e = int(e * s); print (e < 20 ? 20 : e) }')
	echo "$ev $rate $every"
}

# ---- one server at a time

free_port() {
	local p
	for _ in $(seq 100); do
		p=$(( 20000 + RANDOM % 12000 ))
		ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
	done
	echo 29999
}

# Start SERVER for N subscribers; sets PORT, PIDS (for the load client's
# --server-pid), SUB_PATH and PUB_PATH. Returns 1 if it did not start.
start_server() {
	local srv=$1 n=$2 out="$tmp/$1.out" args=()
	PIDS=()
	SUB_PATH=/events
	PUB_PATH="/publish?event=bench"
	case $srv in
	relay | relay2 | relay0 | raw | rawauto)
		: > "$out"
		local pin=("${SERVER_PIN[@]}")
		case $srv in
		# The ring holds as many events as Nchan's buffer (1000); no
		# heartbeats (Nchan sends none either).
		relay) args=("$RELAY" --port 0 --heartbeat 0 --replay-events 1000 --threads 1) ;;
		relay2) args=("$RELAY" --port 0 --heartbeat 0 --replay-events 1000 --threads 2)
			pin=("${RELAY2_PIN[@]}") ;;
		relay0) args=("$RELAY" --port 0 --heartbeat 0 --replay-events 1000 --batch 0 --threads 1) ;;
		raw) read -r -a args <<< "$RAW --port 0 $RAW_ARGS" ;;
		rawauto) args=("$RAW" --port 0) ;;
		esac
		"${pin[@]}" "${args[@]}" > "$out" 2> "$tmp/$srv.err" &
		server_pid=$!
		PORT=""
		for _ in $(seq 50); do
			PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\)/.*|\1|p' "$out")
			[ -n "$PORT" ] && break
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		if [ -z "$PORT" ]; then
			echo "fanout: $srv did not start: $(tail -n 3 "$tmp/$srv.err")"
			return 1
		fi
		PIDS=("$server_pid")
		;;
	nchan1 | nchan2)
		local pids workers=${srv#nchan} cpu=$nginx_cpu
		[ "$workers" = 2 ] && cpu=$nginx2_cpus
		PORT=$(free_port)
		rm -rf "$tmp/nchan"
		# nginx runs out of connections (and closes subscribers to reuse
		# theirs) well before N + a few: give each worker twice N.
		pids=$("$here/nchan.sh" start "$tmp/nchan" "$PORT" $(( 2 * n + 512 )) "$cpu" \
			"$workers") || return 1
		server_pid=""
		read -r -a PIDS <<< "$pids"
		SUB_PATH=/sub
		PUB_PATH=/pub
		;;
	esac
	return 0
}

stop_server() {
	case $1 in
	nchan*) "$here/nchan.sh" stop "$tmp/nchan" ;;
	*)
		if [ -n "$server_pid" ]; then
			kill -TERM "$server_pid" 2>/dev/null
			for _ in $(seq 50); do
				kill -0 "$server_pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$server_pid" 2>/dev/null
			wait "$server_pid" 2>/dev/null
			server_pid=""
		fi
		;;
	esac
}

# Other load on the machine (another build, a test under valgrind) delays
# both sides and shows in latency: wait a little for it to pass. The
# table's stall% column says how much of each run some task spent
# waiting for a CPU (/proc/pressure/cpu).
wait_quiet() {
	local avg
	[ -r /proc/pressure/cpu ] || return
	for _ in $(seq 30); do
		avg=$(sed -n 's/^some avg10=\([0-9.]*\).*/\1/p' /proc/pressure/cpu)
		awk -v a="${avg:-0}" 'BEGIN { exit !(a < 10) }' && return
		sleep 0.5
	done
}

jget() { # JSON KEY
	sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<< "$1"
}

results="$tmp/results.jsonl"
: > "$results"

run_one() { # SERVER TIER LOAD ROUND
	local srv=$1 n=$2 load=$3 round=$4 ev rate every pidargs=() json stamp=()
	local label="$srv/$n/$load"
	read -r ev rate every <<< "$(load_for "$n" "$load")"
	wait_quiet
	if ! start_server "$srv" "$n"; then
		echo "{\"label\":\"$label\",\"failed\":1}" >> "$results"
		return
	fi
	for p in "${PIDS[@]}"; do pidargs+=(--server-pid "$p"); done
	[ "$load" = steady-20 ] && stamp=(--stamp-scheduled)
	if [ -n "$PERF_DIR" ] && [ -n "$server_pid" ] && command -v perf >/dev/null; then
		mkdir -p "$PERF_DIR"
		perf record -e cpu-clock -g -p "$server_pid" \
			-o "$PERF_DIR/$srv-$n-$load-$round.data" > /dev/null 2>&1 &
		perf_pid=$!
	fi
	json=$(timeout 200 "${CLIENT_PIN[@]}" "$LC" --port "$PORT" --subs "$n" --events "$ev" \
		--rate "$rate" --burst 1 --read-every-ms "$every" "${stamp[@]}" --sub-path "$SUB_PATH" \
		--pub-path "$PUB_PATH" "${pidargs[@]}" --drain-timeout 30 --max-seconds 180 \
		--label "$label" 2>> "$tmp/loadclient.err" | tail -n 1)
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid" 2>/dev/null
		wait "$perf_pid" 2>/dev/null
		perf_pid=""
	fi
	if [ -z "$json" ]; then
		json="{\"label\":\"$label\",\"failed\":1}"
		echo "fanout: $label: the load client reported nothing" \
			"($(tail -n 2 "$tmp/loadclient.err" | tr '\n' ' '))"
	fi
	echo "$json" >> "$results"
	local perr ready
	perr=$(jget "$json" publish_errors) ready=$(jget "$json" ready)
	if [ -n "$perr" ] && [ "$perr" != 0 ]; then
		echo "fanout: $label: $perr of $ev publishes failed with $ready subscribers" \
			"connected (the server closed the publisher's connection unanswered: a limit on" \
			"connections?)"
	fi
	stop_server "$srv"
	# Server-side complaints (slow subscribers dropped, errors) matter.
	if [ "${srv#nchan}" = "$srv" ] && [ -s "$tmp/$srv.err" ] &&
		grep -qv 'stopped$' "$tmp/$srv.err"; then
		echo "fanout: $label: server stderr:"
		grep -v 'stopped$' "$tmp/$srv.err" | sort | uniq -c | head -n 5 | sed 's/^/        /'
	fi
	if [ "${srv#nchan}" != "$srv" ] &&
		grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$tmp/nchan/error.log" 2>/dev/null; then
		echo "fanout: $label: error.log:"
		grep '\[\(error\|crit\|alert\|emerg\)\]' "$tmp/nchan/error.log" | head -n 3 |
			sed 's/^/        /'
	fi
	printf 'fanout: done %-24s %8s deliveries/CPU-s, p99 %8s us (%ds so far)\n' "$label" \
		"$(jget "$json" deliveries_per_cpu_s)" "$(jget "$json" p99_us)" $(( SECONDS - t_start ))
}

for n in $TIERS; do
	for load in $REGIMES; do
		read -r ev rate every <<< "$(load_for "$n" "$load")"
		echo "fanout: $n subscribers, $load: $ev events of 96 bytes, one at a time," \
			"$( [ "$rate" = 1000000 ] && echo "each as soon as the last is answered" ||
				echo "$rate/s")," \
			"subscribers read $( [ "$every" = 0 ] && echo "at once" || echo "every $every ms")"
	done
done
for round in $(seq "$REPEAT"); do
	for n in $TIERS; do
		for load in $REGIMES; do
			for srv in $SERVERS; do
				run_one "$srv" "$n" "$load" "$round"
			done
		done
	done
done

# ---- the report

echo
python3 "$here/report.py" "$results" "$TIERS" "$REGIMES" "$SERVERS" "$REPEAT"
echo "fanout: total ${SECONDS}s wall; load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
