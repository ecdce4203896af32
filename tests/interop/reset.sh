#!/usr/bin/env bash
# Interop test 3b: resuming from a Last-Event-ID the replay ring no longer
# holds. The relay keeps 5 events (--replay-events 5); 20 are published;
# curl subscribers then come with various resume points. An id that is too
# old or not one of the ring's must get an "sse-reset" event first, whose id
# is the newest id (20), and then live events; a retained id gets exactly
# the events after it; no id gets live events only. A second relay bounds
# the ring by bytes (--replay-bytes) instead.
#
#   bash reset.sh PATH-TO-sse-relay
#
# SPDX-License-Identifier: MIT

. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed (bash .ci/deps.sh test installs it)"
export LC_ALL=C

# blocks FILE: one line per event block (comments dropped):
# "type=T id=I data=FIRST-DATA-LINE".
blocks() {
	awk 'BEGIN { RS = "" }
	{
		nl = split($0, line, "\n"); t = "message"; id = "-"; d = "-"; any = 0
		for (i = 1; i <= nl; i++) {
			if (line[i] ~ /^event: /) { t = substr(line[i], 8); any = 1 }
			else if (line[i] ~ /^id: /) { id = substr(line[i], 5); any = 1 }
			else if (line[i] ~ /^data/ && d == "-") { d = substr(line[i], 7); any = 1 }
			else if (line[i] ~ /^data/) any = 1
		}
		if (any) print "type=" t " id=" id " data=" d
	}' "$1"
}

relay_start --replay-events 5 --heartbeat 60000
body=$TMP/body
for ((i = 1; i <= 20; i++)); do
	printf 'event %d' "$i" >"$body"
	publish "$body"
	[ "$PUB_CODE" = 202 ] && [ "$PUB_BODY" = "$i" ] || fail "publish $i: $PUB_CODE '$PUB_BODY'"
done

# name | how to resume (curl arguments) | path
cases=(
	"old|-H|Last-Event-ID: 1|/events"
	"gap-edge|-H|Last-Event-ID: 14|/events"
	"oldest-kept|-H|Last-Event-ID: 15|/events"
	"newest|-H|Last-Event-ID: 20|/events"
	"future|-H|Last-Event-ID: 999|/events"
	"foreign|-H|Last-Event-ID: not-an-id|/events"
	"query-old|-H|X-None: 1|/events?lastEventId=1"
	"query2-old|-H|X-None: 1|/events?last_event_id=3"
	"query-kept|-H|X-None: 1|/events?lastEventId=17"
	"none|-H|X-None: 1|/events"
)
for c in "${cases[@]}"; do
	IFS='|' read -r name opt arg path <<<"$c"
	subscribe "$TMP/$name" "$path" "$opt" "$arg"
done
# All are connected once each has its opening bytes.
for c in "${cases[@]}"; do
	name=${c%%|*}
	for ((i = 0; i < 60; i++)); do
		[ -s "$TMP/$name" ] && break
		sleep 0.05
	done
	[ -s "$TMP/$name" ] || fail "$name: nothing received within 3 s"
done
sleep 0.3
printf 'event 21' >"$body"
publish "$body"
[ "$PUB_CODE" = 202 ] || fail "publish 21: $PUB_CODE"
sleep 0.5

reset='type=sse-reset id=20'
live='type=message id=21 data=event 21'
expect() { # NAME LINE...: the blocks NAME must have got, in order
	local name=$1 got want
	shift
	got=$(blocks "$TMP/$name" | sed 's/^\(type=sse-reset id=[^ ]*\) .*/\1/')
	want=$(printf '%s\n' "$@")
	if [ "$got" = "$want" ]; then
		echo "ok: $name: $(echo "$got" | head -1 | cut -c1-40)... ($(echo "$got" | wc -l) events)"
	else
		check_fail "$name: got
$got
want
$want"
	fi
}
replayed() { # FROM TO
	local i
	for ((i = $1; i <= $2; i++)); do echo "type=message id=$i data=event $i"; done
}
expect old "$reset" "$live"
expect gap-edge "$reset" "$live"
expect oldest-kept "$(replayed 16 20)" "$live"
expect newest "$live"
expect future "$reset" "$live"
expect foreign "$reset" "$live"
expect query-old "$reset" "$live"
expect query2-old "$reset" "$live"
expect query-kept "$(replayed 18 20)" "$live"
expect none "$live"

# The reset is a complete event block of type sse-reset with id 20.
awk 'BEGIN { RS = "" } /(^|\n)event: sse-reset(\n|$)/ { print; exit }' "$TMP/old" >"$TMP/reset-frame"
grep -q -x 'id: 20' "$TMP/reset-frame" || check_fail "the sse-reset block has no 'id: 20': $(cat "$TMP/reset-frame")"

# Bounded by bytes: 4 KiB hold at most four 1000-byte events.
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
PIDS=()
kill -TERM "$RELAY_PID"
wait "$RELAY_PID" || fail "sse-relay exited with $? after SIGTERM"
RELAY_PID=
relay_start --replay-events 1000 --replay-bytes 4096 --heartbeat 60000 --retry 1234
for ((i = 1; i <= 10; i++)); do
	{
		printf 'big %d ' "$i"
		head -c 1000 /dev/zero | tr '\0' 'y'
	} >"$body"
	publish "$body"
	[ "$PUB_CODE" = 202 ] || fail "publish big $i: $PUB_CODE"
done
subscribe "$TMP/bytes-old" /events -H 'Last-Event-ID: 2'
subscribe "$TMP/bytes-kept" /events -H 'Last-Event-ID: 9'
sleep 0.7
# --retry: the stream opens with it.
[ "$(head -c 12 "$TMP/bytes-kept")" = "$(printf 'retry: 1234\n')" ] ||
	check_fail "with --retry 1234 the stream opens with $(head -c 20 "$TMP/bytes-kept" | od -An -c | head -2)"
got=$(blocks "$TMP/bytes-old" | cut -c1-20)
[ "$got" = "type=sse-reset id=10" ] ||
	check_fail "--replay-bytes 4096, Last-Event-ID: 2 (dropped): got
$got
want the sse-reset (id 10) alone"
got=$(blocks "$TMP/bytes-kept" | cut -c1-24)
[ "$got" = "type=message id=10 data=" ] ||
	check_fail "--replay-bytes 4096, Last-Event-ID: 9: got '$got', want event 10 only"

[ $FAILED -eq 0 ] && echo "PASS: reset"
exit $FAILED
