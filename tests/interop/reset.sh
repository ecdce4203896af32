#!/usr/bin/env bash
# Interop test 3b: resuming from a Last-Event-ID the replay ring no longer
# holds, or never held. The relay runs with its default ids, "<epoch>-<n>"
# (a fresh epoch per run, learnt here from the first /publish answer) and
# keeps 5 events (--replay-events 5); 20 are published; curl subscribers
# then come with various resume points. An id that is too old, or not one
# this run gave (a future n, another epoch, a plain "n" of --plain-ids, no
# id form at all) must get an "sse-reset" event first, whose id is the
# newest id ("<epoch>-20"), and then live events; a retained id gets exactly
# the events after it; no id gets live events only. A second relay (a new
# run: a new epoch) bounds the ring by bytes (--replay-bytes) instead; before
# anything is published there, the reset event's id is "<epoch>-0", and an
# id of the first run is unknown to it.
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
	[ "$PUB_CODE" = 202 ] || fail "publish $i: $PUB_CODE '$PUB_BODY'"
	[ $i -eq 1 ] && learn_epoch "$PUB_BODY" "the first /publish answer"
	check_id "$PUB_BODY" "$EPOCH" $i "publish $i" || exit 1
done
E=$EPOCH
# An epoch of another run: this one with its first character changed.
case ${E:0:1} in 0) O=1${E:1} ;; *) O=0${E:1} ;; esac

# name | how to resume (curl arguments) | path
cases=(
	"old|-H|Last-Event-ID: $E-1|/events"
	"gap-edge|-H|Last-Event-ID: $E-14|/events"
	"oldest-kept|-H|Last-Event-ID: $E-15|/events"
	"newest|-H|Last-Event-ID: $E-20|/events"
	"before-first|-H|Last-Event-ID: $E-0|/events"
	"future|-H|Last-Event-ID: $E-999|/events"
	"leading-zero|-H|Last-Event-ID: $E-017|/events"
	"other-epoch|-H|Last-Event-ID: $O-17|/events"
	"plain|-H|Last-Event-ID: 17|/events"
	"foreign|-H|Last-Event-ID: not-an-id|/events"
	"query-old|-H|X-None: 1|/events?lastEventId=$E-1"
	"query2-old|-H|X-None: 1|/events?last_event_id=$E-3"
	"query-kept|-H|X-None: 1|/events?lastEventId=$E-17"
	"query-other-epoch|-H|X-None: 1|/events?lastEventId=$O-18"
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

reset="type=sse-reset id=$E-20"
live="type=message id=$E-21 data=event 21"
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
	for ((i = $1; i <= $2; i++)); do echo "type=message id=$E-$i data=event $i"; done
}
expect old "$reset" "$live"
expect gap-edge "$reset" "$live"
expect oldest-kept "$(replayed 16 20)" "$live"
expect newest "$live"
expect before-first "$reset" "$live" # "<epoch>-0" is before event 1, dropped
expect future "$reset" "$live"
expect leading-zero "$reset" "$live"
expect other-epoch "$reset" "$live"
expect plain "$reset" "$live"
expect foreign "$reset" "$live"
expect query-old "$reset" "$live"
expect query2-old "$reset" "$live"
expect query-kept "$(replayed 18 20)" "$live"
expect query-other-epoch "$reset" "$live"
expect none "$live"

# The reset is a complete event block of type sse-reset with the newest id.
awk 'BEGIN { RS = "" } /(^|\n)event: sse-reset(\n|$)/ { print; exit }' "$TMP/old" >"$TMP/reset-frame"
grep -q -x "id: $E-20" "$TMP/reset-frame" || check_fail "the sse-reset block has no 'id: $E-20': $(cat "$TMP/reset-frame")"

# A new run: bounded by bytes, 4 KiB hold at most four 1000-byte events.
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
PIDS=()
relay_stop || fail "the first relay did not stop cleanly"
relay_start --replay-events 1000 --replay-bytes 4096 --heartbeat 60000 --retry 1234
# Nothing published yet: the reset names "<epoch>-0", the point before event 1.
subscribe "$TMP/empty-reset" /events -H "Last-Event-ID: $E-20"
wait_count "$TMP/empty-reset" "event: sse-reset" 1 5 || check_fail "an id of the first run got no sse-reset from the new run before any publish"
kill "$SUB_PID" 2>/dev/null
wait "$SUB_PID" 2>/dev/null # gone before anything is published
for ((i = 1; i <= 10; i++)); do
	{
		printf 'big %d ' "$i"
		head -c 1000 /dev/zero | tr '\0' 'y'
	} >"$body"
	publish "$body"
	[ "$PUB_CODE" = 202 ] || fail "publish big $i: $PUB_CODE"
	[ $i -eq 1 ] && learn_epoch "$PUB_BODY" "the new run's first /publish answer"
	check_id "$PUB_BODY" "$EPOCH" $i "new run: publish $i" || exit 1
done
F=$EPOCH
[ "$F" != "$E" ] || check_fail "the new run has the epoch of the first ($E): ids of the first run would resume wrongly"
echo "ok: epochs $E (first run), $F (second run)"
got=$(blocks "$TMP/empty-reset" | sed 's/^\(type=sse-reset id=[^ ]*\) .*/\1/')
[ "$got" = "type=sse-reset id=$F-0" ] ||
	check_fail "before any publish, Last-Event-ID: $E-20 (another run's) got
$got
want the sse-reset alone, with id $F-0"
subscribe "$TMP/bytes-old" /events -H "Last-Event-ID: $F-2"
subscribe "$TMP/bytes-kept" /events -H "Last-Event-ID: $F-9"
subscribe "$TMP/bytes-first-run" /events -H "Last-Event-ID: $E-9"
sleep 0.7
# --retry: the stream opens with it.
[ "$(head -c 12 "$TMP/bytes-kept")" = "$(printf 'retry: 1234\n')" ] ||
	check_fail "with --retry 1234 the stream opens with $(head -c 20 "$TMP/bytes-kept" | od -An -c | head -2)"
want="type=sse-reset id=$F-10"
got=$(blocks "$TMP/bytes-old" | cut -c1-${#want})
[ "$got" = "$want" ] ||
	check_fail "--replay-bytes 4096, Last-Event-ID: $F-2 (dropped): got
$got
want the sse-reset (id $F-10) alone"
got=$(blocks "$TMP/bytes-first-run" | cut -c1-${#want})
[ "$got" = "$want" ] ||
	check_fail "new run, Last-Event-ID: $E-9 (an id of the first run, a number this run also has): got
$got
want the sse-reset (id $F-10) alone"
want="type=message id=$F-10 data=big 10 y"
got=$(blocks "$TMP/bytes-kept" | cut -c1-${#want})
[ "$got" = "$want" ] ||
	check_fail "--replay-bytes 4096, Last-Event-ID: $F-9: got '$got', want event $F-10 only"

finish reset
