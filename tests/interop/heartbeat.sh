#!/usr/bin/env bash
# Interop test 4: heartbeats. With --heartbeat 300 an idle subscriber gets
# a comment line (":...") about every 300 ms and nothing else; while events
# flow (one every 100 ms) the heartbeat is reset by them and stays quiet;
# once idle again the heartbeats come back.
#
#   bash heartbeat.sh PATH-TO-sse-relay
#
# SPDX-License-Identifier: MIT

. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed (bash .ci/deps.sh test installs it)"
export LC_ALL=C

relay_start --heartbeat 300
t0=$EPOCHREALTIME
# Each line curl gets, stamped with milliseconds since t0.
curl -sN --noproxy '*' --max-time 6 "$BASE/events" 2>"$TMP/curl.err" |
	while IFS= read -r line; do
		now=$EPOCHREALTIME
		printf '%d %s\n' $(((${now/./} - ${t0/./}) / 1000)) "$line"
	done >"$TMP/log" &
PIDS+=($!)

ms() { echo $(((${EPOCHREALTIME/./} - ${t0/./}) / 1000)); }
sleep_until() { # MS since t0
	local left=$(($1 - $(ms)))
	[ $left -gt 20 ] && sleep "$((left / 1000)).$(printf '%03d' $((left % 1000)))"
	while [ "$(ms)" -lt "$1" ]; do sleep 0.01; done
}

sleep_until 1700
# Busy: an event every 100 ms for 1.5 s.
busy_from=$(ms)
printf 'tick' >"$TMP/body"
while [ "$(ms)" -lt $((busy_from + 1500)) ]; do
	publish "$TMP/body"
	[ "$PUB_CODE" = 202 ] || fail "publish: $PUB_CODE"
	sleep 0.1
done
busy_to=$(ms)
sleep_until $((busy_to + 1700))
wait_done=$(ms)
sleep 0.2

[ -s "$TMP/log" ] || fail "the subscriber got nothing at all ($(cat "$TMP/curl.err"))"
echo "--- lines received (ms since subscribing) ---"
cut -c1-60 "$TMP/log" | awk '{ a[NR] = $0 } END { for (i = 1; i <= NR; i++) if (i <= 12 || i > NR - 12) print a[i]; else if (i == 13) print "..." }'

# Heartbeats: comment lines, after the opening bytes (the first comment).
hb=$(awk '$2 ~ /^:/ { if (seen++) print $1 }' "$TMP/log")
open_ms=$(awk '$2 ~ /^:/ { print $1; exit }' "$TMP/log")
[ -n "$open_ms" ] || fail "no opening comment"
[ "$open_ms" -lt 1000 ] || check_fail "the opening comment came after $open_ms ms"

# Idle phase 1: from the opening to busy_from.
phase() { # FROM TO: heartbeat times within
	echo "$hb" | awk -v a="$1" -v b="$2" '$1 != "" && $1 >= a && $1 < b'
}
p1=$(phase 0 "$busy_from")
n1=$(echo "$p1" | grep -c .)
first=$(echo "$p1" | head -1)
in15=$(echo "$p1" | awk -v o="$open_ms" '$1 <= o + 1500' | grep -c .)
[ "$in15" -ge 2 ] || check_fail "idle: $in15 heartbeats within 1.5 s of subscribing, want >= 2 (--heartbeat 300)"
[ -n "$first" ] && { [ $((first - open_ms)) -ge 150 ] || check_fail "first heartbeat only $((first - open_ms)) ms after the opening (--heartbeat 300)"; }
# Spacing: each gap between 150 ms and 1000 ms.
gaps=$(echo "$p1" | awk 'NR > 1 { print $1 - prev } { prev = $1 }')
for g in $gaps; do
	{ [ "$g" -ge 150 ] && [ "$g" -le 1000 ]; } || check_fail "idle: heartbeats $g ms apart, want about 300 ($(echo $gaps))"
done
echo "idle: $n1 heartbeats in $busy_from ms, gaps: $(echo $gaps)"

# Nothing else while idle: only comments and blank lines before busy_from.
other=$(awk -v b="$busy_from" '$1 < b && NF > 1 && $2 !~ /^:/' "$TMP/log")
[ -z "$other" ] || check_fail "idle: lines other than comments: $other"

# Busy: at most one heartbeat while an event comes every 100 ms.
n2=$(phase $((busy_from + 150)) "$busy_to" | grep -c .)
[ "$n2" -le 1 ] || check_fail "busy: $n2 heartbeats while events flowed every 100 ms (traffic should reset the heartbeat)"
ev=$(grep -c ' data: tick$' "$TMP/log")
[ "$ev" -ge 5 ] || check_fail "busy: only $ev events received"
echo "busy: $ev events, $n2 heartbeats"

# Idle again.
n3=$(phase $((busy_to + 200)) "$wait_done" | grep -c .)
[ "$n3" -ge 2 ] || check_fail "idle again: $n3 heartbeats in $((wait_done - busy_to - 200)) ms, want >= 2"
echo "idle again: $n3 heartbeats"

finish heartbeat
