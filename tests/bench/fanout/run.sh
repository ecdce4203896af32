#!/bin/bash
# The fan-out benchmark: sse-relay against Nchan (nginx + nchan, one worker)
# and against a raw writev baseline, with 1 000 and 10 000 subscribers, in
# the per-event regime (one event at a time) and the batched one (events
# published in bursts), under the same load client. It reports and always
# exits 0.
#
#   run.sh LOADCLIENT RAWBASELINE SSE-RELAY
#
# (meson passes the three; run by hand, missing ones are looked for in
# ../../../build-fanout and ../../../build.) Each run starts its server
# afresh (Nchan through nchan.sh, with nchan.conf), and the load client
# reads, from /proc, the server's memory with 0, N/2 and N idle
# subscribers, and its CPU time (utime + stime, master + worker for
# nginx) from the first publish to the last delivery. With two CPUs or
# more, the server runs on CPU 0 and the load client on CPU 1. Nchan is
# installed with apt-get (nginx, libnginx-mod-nchan) when missing; its
# runs are skipped if that cannot be done.
#
# Environment: FANOUT_TIERS (default "1000 10000"), FANOUT_SERVERS
# (default "relay nchan raw"), FANOUT_REGIMES (default "per-event
# batched"), FANOUT_SCALE (a factor on the event counts, default 1),
# FANOUT_REPEAT (runs of each case, default 2: the table shows the one
# with the most deliveries per server CPU-second),
# FANOUT_NO_INSTALL=1 (never apt-get nginx), FANOUT_KEEP=1 (keep the
# temporary directory).
#
# FANOUT_MEMORY=1: only the memory per idle subscriber, the goal being
# <= 512 B at 10 000: sse-relay alone, 10 000 subscribers, one short
# per-event run, nothing installed (any setting above given too wins).
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

TIERS=${FANOUT_TIERS:-"1000 10000"}
SERVERS=${FANOUT_SERVERS:-"relay nchan raw"}
REGIMES=${FANOUT_REGIMES:-"per-event batched"}
SCALE=${FANOUT_SCALE:-1}
REPEAT=${FANOUT_REPEAT:-2}

tmp=$(mktemp -d /tmp/fanout.XXXXXX)
server_pid=""
cleanup() {
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
	echo "fanout: $cpus CPUs: server pinned to CPU 0, load client to CPU 1 (it competes for"
	echo "        the machine: it parses every delivery on one core; other load adds noise)."
else
	SERVER_PIN=()
	CLIENT_PIN=()
	nginx_cpu=""
	echo "fanout: $cpus CPU(s): no pinning; server and load client share the CPU."
fi
echo "fanout: RLIMIT_NOFILE $nofile; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- Nchan: Debian's nginx with libnginx-mod-nchan

NCHAN_MOD=/usr/lib/nginx/modules/ngx_nchan_module.so
have_nchan() { [ -x /usr/sbin/nginx ] && [ -e "$NCHAN_MOD" ]; }
wants_nchan() { case " $SERVERS " in *" nchan "*) return 0 ;; esac; return 1; }
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
	SERVERS=$(echo " $SERVERS " | sed 's/ nchan / /')
fi

# ---- loads: events, rate (events/s) and burst per tier and regime

load_for() { # TIER REGIME -> "EVENTS RATE BURST"
	local ev rate burst
	case "$1/$2" in
	1000/per-event) ev=600 rate=100 burst=1 ;;
	1000/batched) ev=2000 rate=1000 burst=20 ;;
	*/per-event) ev=100 rate=10 burst=1 ;;
	*/batched) ev=300 rate=100 burst=20 ;;
	esac
	if [ "$1" != 1000 ] && [ "$1" != 10000 ]; then # scale by 1000/TIER
		ev=$(( ev * 1000 / $1 )); [ "$ev" -lt 50 ] && ev=50
		rate=$(awk -v r="$rate" -v n="$1" 'BEGIN { r = r * 1000 / n; print (r < 1 ? 1 : r) }')
	fi
	ev=$(awk -v e="$ev" -v s="$SCALE" 'BEGIN { e = int(e * s); print (e < 20 ? 20 : e) }')
	echo "$ev $rate $burst"
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
	local srv=$1 n=$2 out="$tmp/$1.out"
	PIDS=()
	SUB_PATH=/events
	PUB_PATH="/publish?event=bench"
	case $srv in
	relay | raw)
		: > "$out"
		if [ "$srv" = relay ]; then
			# The ring holds as many events as Nchan's buffer (1000); no
			# heartbeats (Nchan sends none either).
			"${SERVER_PIN[@]}" "$RELAY" --port 0 --heartbeat 0 --replay-events 1000 \
				> "$out" 2> "$tmp/$srv.err" &
		else
			"${SERVER_PIN[@]}" "$RAW" --port 0 > "$out" 2> "$tmp/$srv.err" &
		fi
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
	nchan)
		local pids
		PORT=$(free_port)
		rm -rf "$tmp/nchan"
		# nginx runs out of connections (and closes subscribers to reuse
		# theirs) well before N + a few: give it twice N.
		pids=$("$here/nchan.sh" start "$tmp/nchan" "$PORT" $(( 2 * n + 512 )) $nginx_cpu) ||
			return 1
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
	nchan) "$here/nchan.sh" stop "$tmp/nchan" ;;
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

run_one() { # SERVER TIER REGIME
	local srv=$1 n=$2 regime=$3 ev rate burst pidargs=() json
	read -r ev rate burst <<< "$(load_for "$n" "$regime")"
	wait_quiet
	if ! start_server "$srv" "$n"; then
		echo "{\"label\":\"$srv/$n/$regime\",\"failed\":1}" >> "$results"
		return
	fi
	for p in "${PIDS[@]}"; do pidargs+=(--server-pid "$p"); done
	json=$(timeout 170 "${CLIENT_PIN[@]}" "$LC" --port "$PORT" --subs "$n" --events "$ev" \
		--rate "$rate" --burst "$burst" --pub-conns "$burst" --sub-path "$SUB_PATH" \
		--pub-path "$PUB_PATH" "${pidargs[@]}" --drain-timeout 30 --max-seconds 150 \
		--label "$srv/$n/$regime" 2>> "$tmp/loadclient.err" | tail -n 1)
	if [ -z "$json" ]; then
		json="{\"label\":\"$srv/$n/$regime\",\"failed\":1}"
		echo "fanout: $srv/$n/$regime: the load client reported nothing" \
			"($(tail -n 2 "$tmp/loadclient.err" | tr '\n' ' '))"
	fi
	echo "$json" >> "$results"
	local perr ready
	perr=$(jget "$json" publish_errors) ready=$(jget "$json" ready)
	if [ -n "$perr" ] && [ "$perr" != 0 ]; then
		echo "fanout: $srv/$n/$regime: $perr of $ev publishes failed with $ready subscribers" \
			"connected (the server closed the publisher's connection unanswered: a limit on" \
			"connections?)"
	fi
	stop_server "$srv"
	# Server-side complaints (slow subscribers dropped, errors) matter.
	if [ "$srv" != nchan ] && [ -s "$tmp/$srv.err" ] &&
		grep -qv 'stopped$' "$tmp/$srv.err"; then
		echo "fanout: $srv/$n/$regime: server stderr:"
		grep -v 'stopped$' "$tmp/$srv.err" | sort | uniq -c | head -n 5 | sed 's/^/        /'
	fi
	if [ "$srv" = nchan ] && grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$tmp/nchan/error.log" 2>/dev/null; then
		echo "fanout: nchan/$n/$regime: error.log:"
		grep '\[\(error\|crit\|alert\|emerg\)\]' "$tmp/nchan/error.log" | head -n 3 | sed 's/^/        /'
	fi
	printf 'fanout: done %-24s (%ds so far)\n' "$srv/$n/$regime" $(( SECONDS - t_start ))
}

for n in $TIERS; do
	for regime in $REGIMES; do
		read -r ev rate burst <<< "$(load_for "$n" "$regime")"
		echo "fanout: $n subscribers, $regime: $ev events of 96 bytes at $rate/s" \
			"in bursts of $burst ($burst publisher connection(s))"
		for _ in $(seq "$REPEAT"); do
			for srv in $SERVERS; do
				run_one "$srv" "$n" "$regime"
			done
		done
	done
done

# ---- the report

row_for() { # LABEL -> the JSON line of its best run (most deliveries per CPU-second)
	grep -F "\"label\":\"$1\"" "$results" | awk '
		{ v = 0; if (match($0, /"deliveries_per_cpu_s":[0-9.]+/))
			v = substr($0, RSTART + 23, RLENGTH - 23) + 0 }
		NR == 1 || v > best { best = v; line = $0 }
		END { if (NR) print line }'
}
mem_val() { # LABEL KEY: empty for a run that failed or had no idle subscribers
	local j
	j=$(row_for "$1")
	[ -n "$j" ] && [ -z "$(jget "$j" failed)" ] && [ "$(jget "$j" ready)" != 0 ] &&
		jget "$j" "$2"
}
val() { # LABEL KEY: empty for a run that failed or delivered nothing
	local j
	j=$(row_for "$1")
	[ -n "$j" ] && [ -z "$(jget "$j" failed)" ] && [ "$(jget "$j" deliveries)" != 0 ] &&
		jget "$j" "$2"
}

echo
echo "Results, best of $REPEAT run(s) by deliveries per server CPU-second (server CPU ="
echo "utime+stime from the first publish to the last delivery, sys% the kernel's share of it;"
echo "ev/read = deliveries per read() in the load client: how many events a send carried;"
echo "mem/sub = growth of the server's Private_Dirty per idle subscriber, from N/2 to N"
echo "subscribers (the marginal cost) and, in brackets, from 0 to N)"
echo
printf '%-6s %-9s %-5s %6s %9s %9s %7s %4s %10s %7s %8s %8s %5s %4s %4s %4s %13s %6s %6s\n' \
	subs regime srv ready deliver deliv/s srvCPU sys% deliv/CPUs ev/read p50_us p99_us gaps dups \
	ord err "mem/sub B" cliCPU stall%
for n in $TIERS; do
	for regime in $REGIMES; do
		for srv in $SERVERS; do
			l="$srv/$n/$regime"
			j=$(row_for "$l")
			if [ -z "$j" ] || [ -n "$(jget "$j" failed)" ]; then
				printf '%-6s %-9s %-5s %s\n' "$n" "$regime" "$srv" "FAILED (see above)"
				continue
			fi
			printf '%-6s %-9s %-5s %6s %9s %9s %7s %4s %10s %7s %8s %8s %5s %4s %4s %4s %13s %6s %6s\n' \
				"$n" "$regime" "$srv" "$(jget "$j" ready)" "$(jget "$j" deliveries)" \
				"$(jget "$j" deliveries_per_s)" "$(jget "$j" server_cpu_s)" \
				"$(awk -v s="$(jget "$j" server_sys_s)" -v c="$(jget "$j" server_cpu_s)" \
					'BEGIN { if (c + 0 > 0) printf "%.0f", 100 * s / c; else print "-" }')" \
				"$(jget "$j" deliveries_per_cpu_s)" "$(jget "$j" events_per_read)" \
				"$(jget "$j" p50_us)" \
				"$(jget "$j" p99_us)" "$(jget "$j" gaps)" "$(jget "$j" dups)" \
				"$(jget "$j" reorders)" "$(jget "$j" errors)" \
				"$(jget "$j" marginal_private_dirty_per_sub_b) [$(jget "$j" private_dirty_per_sub_b)]" \
				"$(jget "$j" client_cpu_s)" "$(jget "$j" cpu_pressure_pct)"
		done
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() { # VALUE OP LIMIT
	awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
		if (v == "n/a" || v == "") { print "n/a"; exit }
		ok = (op == ">=") ? (v + 0 >= l + 0) : (v + 0 <= l + 0)
		print ok ? "met" : "MISSED" }'
}

echo
echo "Ratios and goals (relay = sse-relay on libsse's hub):"
for n in $TIERS; do
	for regime in $REGIMES; do
		r=$(val "relay/$n/$regime" deliveries_per_cpu_s)
		c=$(val "nchan/$n/$regime" deliveries_per_cpu_s)
		b=$(val "raw/$n/$regime" deliveries_per_cpu_s)
		rp=$(val "relay/$n/$regime" p99_us)
		cp=$(val "nchan/$n/$regime" p99_us)
		x=$(ratio "$r" "$c")
		g=""
		[ "$n" = 1000 ] && g=" (goal >= 3: $(verdict "$x" '>=' 3))"
		printf '  %5s subs %-9s deliveries/CPU-s  relay/Nchan %5s%s\n' "$n" "$regime" "$x" "$g"
		x=$(ratio "$r" "$b")
		printf '  %5s subs %-9s deliveries/CPU-s  relay/raw   %5s (goal >= 0.8: %s)\n' \
			"$n" "$regime" "$x" "$(verdict "$x" '>=' 0.8)"
		x=$(ratio "$rp" "$cp")
		printf '  %5s subs %-9s p99 latency       relay/Nchan %5s (relay %s us, Nchan %s us; goal <= 1: %s)\n' \
			"$n" "$regime" "$x" "${rp:-n/a}" "${cp:-n/a}" "$(verdict "$x" '<=' 1)"
	done
done
for n in $TIERS; do
	regime=${REGIMES%% *}
	m=$(mem_val "relay/$n/$regime" marginal_private_dirty_per_sub_b)
	mc=$(mem_val "nchan/$n/$regime" marginal_private_dirty_per_sub_b)
	mb=$(mem_val "raw/$n/$regime" marginal_private_dirty_per_sub_b)
	m0=$(mem_val "relay/$n/$regime" private_dirty_per_sub_b)
	mc0=$(mem_val "nchan/$n/$regime" private_dirty_per_sub_b)
	mb0=$(mem_val "raw/$n/$regime" private_dirty_per_sub_b)
	printf '  %5s subs memory per idle subscriber, N/2 to N: relay %s B, Nchan %s B, raw %s B (goal relay <= 512: %s)\n' \
		"$n" "${m:-n/a}" "${mc:-n/a}" "${mb:-n/a}" "$(verdict "$m" '<=' 512)"
	printf '  %5s subs memory per idle subscriber,   0 to N: relay %s B, Nchan %s B, raw %s B (goal relay <= 512: %s)\n' \
		"$n" "${m0:-n/a}" "${mc0:-n/a}" "${mb0:-n/a}" "$(verdict "$m0" '<=' 512)"
done
bad=0 seen=0
for n in $TIERS; do
	for regime in $REGIMES; do
		j=$(row_for "relay/$n/$regime")
		[ -z "$j" ] || [ -n "$(jget "$j" failed)" ] && continue
		seen=1
		s=$(( $(jget "$j" gaps) + $(jget "$j" dups) + $(jget "$j" reorders) + $(jget "$j" errors) ))
		[ "$s" -gt 0 ] && bad=1
	done
done
if [ "$seen" = 0 ]; then
	echo "  relay gaps, duplicates, order errors, errors: n/a (no relay run completed)"
elif [ "$bad" = 0 ]; then
	echo "  relay gaps, duplicates, order errors, errors: none in any run (goal: zero: met)"
else
	echo "  relay gaps, duplicates, order errors or errors in some run: see the table (goal: zero: MISSED)"
fi
echo
echo "Notes: per-event = one publish in flight, so each event gets its own fan-out pass (one"
echo "send per subscriber per event); batched = bursts of concurrent publishes, which the relay"
echo "and the raw baseline gather into one send per subscriber per pass. sse-relay and the raw"
echo "baseline answer each publish and close (one TCP connection per event); Nchan keeps its"
echo "publisher connections alive. mem/sub counts user space only (no kernel socket buffers);"
echo "nginx allocates its connection array at start, so part of Nchan's cost per connection is"
echo "in its baseline. Latency is publish-to-arrival on one clock; under saturation it includes"
echo "queueing in the server and in the load client (cliCPU = its CPU seconds); stall% is the"
echo "share of the run in which some task on the machine waited for a CPU: other load, when it"
echo "is high, makes latency figures noise."
echo "fanout: total ${SECONDS}s wall; load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
