#!/usr/bin/env bash
# Interop test 1: curl as the client. `curl -sN` subscribes to /events,
# every nasty class of payload is published with `curl --data-binary`, and
# the raw bytes curl received are compared with frames written here by hand
# from the WHATWG event-stream format: each line break of the payload (LF,
# CR or CRLF) starts a new "data:" line, "data: " always has its space, an
# empty line is "data:" (or "data: "), a trailing break gives a final empty
# data line, and a blank line ends the frame. Ids: the relay runs with its
# default ids, "<epoch>-<n>" (epoch: 8 characters of [0-9a-v], one per run);
# the epoch is learnt from the first /publish answer, which must be
# "<epoch>-1", and then every answer must be "<epoch>-n" and every frame
# carry exactly one "id: <epoch>-n", n = 1, 2, 3, ... in order.
#
#   bash curl-frames.sh PATH-TO-sse-relay
#
# SPDX-License-Identifier: MIT

. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed (bash .ci/deps.sh test installs it)"
export LC_ALL=C

relay_start --heartbeat 60000
subscribe "$TMP/stream2nd"
sub2=$SUB_PID
subscribe "$TMP/stream"

# The opening bytes come right after the head, before any event.
for ((i = 0; i < 40; i++)); do
	[ -s "$TMP/stream" ] && break
	sleep 0.05
done
[ -s "$TMP/stream" ] || fail "no opening bytes within 2 s of subscribing (a comment or retry is due at once)"
head -c 1 "$TMP/stream" | grep -q '[:r]' || fail "stream does not open with a comment or retry: $(head -c 40 "$TMP/stream" | od -c | head -3)"

# Response head.
tr -d '\r' <"$TMP/stream.head" >"$TMP/head"
grep -q '^HTTP/1\.1 200' "$TMP/head" || fail "status is not 200: $(head -1 "$TMP/head")"
grep -qi '^content-type: text/event-stream' "$TMP/head" || fail "no Content-Type: text/event-stream"
grep -qi '^cache-control:.*no-cache' "$TMP/head" || fail "no Cache-Control: no-cache"
grep -qi '^cache-control:.*no-transform' "$TMP/head" || fail "no Cache-Control: no-transform"
grep -qi '^x-accel-buffering: *no' "$TMP/head" || fail "no X-Accel-Buffering: no"
grep -qi '^content-length:' "$TMP/head" && fail "an event stream must not have a Content-Length"

: >"$TMP/expected"
n=0
# case TYPE PRINTF-FORMAT LINE...: publish the bytes printf makes of the
# format (with ?event=TYPE unless TYPE is empty) and expect one frame with
# "event: TYPE" (if any) and one data line per LINE, in order.
case_() {
	local type=$1 fmt=$2 q='' l
	shift 2
	printf "$fmt" >"$TMP/body"
	[ -n "$type" ] && q="?event=$type"
	publish "$TMP/body" "$q"
	n=$((n + 1))
	[ "$PUB_CODE" = 202 ] || fail "payload #$n ($(printf '%q' "$(printf "$fmt")")): /publish answered $PUB_CODE, want 202"
	[ $n -eq 1 ] && learn_epoch "$PUB_BODY" "the first /publish answer"
	check_id "$PUB_BODY" "$EPOCH" $n "payload #$n: the id /publish answered" || exit 1
	{
		[ -n "$type" ] && printf 'event: %s\n' "$type"
		for l in "$@"; do
			if [ -z "$l" ]; then printf 'data:\n'; else printf 'data: %s\n' "$l"; fi
		done
		printf '\n'
	} >>"$TMP/expected"
}

case_ '' 'hello' 'hello'
# Each kind of line break, and runs of them.
case_ '' 'a\nb' 'a' 'b'
case_ '' 'a\rb' 'a' 'b'
case_ '' 'a\r\nb' 'a' 'b'
case_ '' 'a\n\nb' 'a' '' 'b'
case_ '' 'a\r\rb' 'a' '' 'b'
case_ '' 'a\r\n\r\nb' 'a' '' 'b'
case_ '' 'a\n\rb' 'a' '' 'b'                  # LF then CR: two breaks, not one CRLF
case_ '' 'a\n\r\nb\r\rc' 'a' '' 'b' '' 'c'
case_ '' 'a\r\r\n\nb' 'a' '' '' 'b'           # CR, CRLF, LF
# Leading and trailing breaks: nothing may be dropped.
case_ '' '\nlead' '' 'lead'
case_ '' '\rlead' '' 'lead'
case_ '' '\r\nlead' '' 'lead'
case_ '' 'trail\n' 'trail' ''
case_ '' 'trail\r' 'trail' ''
case_ '' 'trail\r\n' 'trail' ''
case_ '' 'trail\n\n' 'trail' '' ''
case_ '' '\n' '' ''
case_ '' '\r' '' ''
case_ '' '\r\n' '' ''
case_ '' '\r\n\r\n\n' '' '' '' ''
# Leading spaces survive because "data: " always has its space.
case_ '' ' one space' ' one space'
case_ '' '  two spaces' '  two spaces'
case_ '' ' ' ' '
case_ '' 'x\n  indented\n\tTAB' 'x' '  indented' "$(printf '\tTAB')"
# Colons, field names and comments inside the text are only text.
case_ '' ':' ':'
case_ '' 'a: b' 'a: b'
case_ '' '::x::' '::x::'
case_ '' 'data: inside' 'data: inside'
case_ '' 'x\ndata: y\ndata:z' 'x' 'data: y' 'data:z'
case_ '' ': not a comment\n:also not' ': not a comment' ':also not'
case_ '' 'id: 999\nevent: bogus\nretry: 1\n\ndata: after a blank line' \
	'id: 999' 'event: bogus' 'retry: 1' '' 'data: after a blank line'
# Multi-byte UTF-8 (2, 3 and 4 bytes), a BOM that is not at the stream's
# start (only the first one is skipped), and a line separator (U+2028,
# not a line break in this format).
case_ '' 'h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80' \
	"$(printf 'h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80')"
case_ '' '\xef\xbb\xbfbom\xe2\x80\xa8ls' "$(printf '\xef\xbb\xbfbom\xe2\x80\xa8ls')"
# Event types from ?event=.
case_ update 'typed\nline 2' 'typed' 'line 2'
case_ 'x-y.z' 'dotted type' 'dotted type'
# The empty body: one (empty) data line, so that it still dispatches.
case_ '' '' ''
# A 100 KB line.
big=$(head -c 102400 /dev/zero | tr '\0' 'x')
case_ '' "$big" "$big"
case_ '' "$big\r\n$big" "$big" "$big"
case_ '' 'last' 'last'
total=$n

# Wait for the last frame's id line; on a timeout the comparison below
# shows what is missing.
wait_count "$TMP/stream" "id: $EPOCH-$total" 1 10 ||
	check_fail "no 'id: $EPOCH-$total' line within 10 s ($(wc -c <"$TMP/stream") bytes received)"
sleep 0.2
wait_count "$TMP/stream2nd" "id: $EPOCH-$total" 1 5 || check_fail "the second subscriber did not get 'id: $EPOCH-$total'"
kill "$SUB_PID" "$sub2" 2>/dev/null

# The stream is LF-only: a CR byte would mean a payload CR went out raw.
if tr -d -c '\r' <"$TMP/stream" | grep -q .; then
	fail "the stream contains CR bytes (every payload CR must become a new data: line, and the relay should end lines with LF)"
fi

# Split the stream into blocks (paragraph mode: blank lines end a block),
# drop comment lines (the opening ":" or a heartbeat) and a block holding
# only "retry:" (the opening bytes); id lines go to ids, the rest to frames.
awk 'BEGIN { RS = ""; ORS = "" }
{
	nl = split($0, line, "\n"); out = ""; id = ""; ids = 0; retry = 0
	for (i = 1; i <= nl; i++) {
		if (line[i] ~ /^:/) continue
		if (line[i] ~ /^id:/) { ids++; id = line[i]; continue }
		if (line[i] ~ /^retry:/ && NR == 1) { retry = 1; continue }
		if (line[i] == "data: ") line[i] = "data:"
		out = out line[i] "\n"
	}
	if (out == "" && ids == 0) next
	print out "\n" > "'"$TMP/frames"'"
	print ids " " id "\n" > "'"$TMP/ids"'"
}' "$TMP/stream"

if ! cmp -s "$TMP/expected" "$TMP/frames"; then
	echo "--- frames expected vs received (cat -A, lines cut at 120 characters) ---" >&2
	diff <(cat -A "$TMP/expected" | cut -c1-120) <(cat -A "$TMP/frames" | cut -c1-120) | head -60 >&2
	check_fail "the frames curl received differ from the WHATWG frames written by hand"
else
	echo "ok: $total frames byte-for-byte as expected"
fi

# A second subscriber, connected at the same time, got the same bytes
# (the opening bytes aside).
if ! cmp -s <(sed 1d "$TMP/stream") <(sed 1d "$TMP/stream2nd"); then
	check_fail "two subscribers got different streams ($(wc -c <"$TMP/stream") and $(wc -c <"$TMP/stream2nd") bytes)"
else
	echo "ok: a second subscriber got the same stream"
fi

i=0
while read -r cnt idline; do
	i=$((i + 1))
	[ "$cnt" = 1 ] || check_fail "frame $i has $cnt id lines, want exactly 1"
	[ "$idline" = "id: $EPOCH-$i" ] || check_fail "frame $i has '$idline', want 'id: $EPOCH-$i' (ids <epoch>-1, -2, ... in order)"
	[[ ${idline#id: } =~ $ID_RE ]] || check_fail "frame $i: '$idline' does not match $ID_RE"
done <"$TMP/ids"
[ "$i" = "$total" ] || check_fail "received $i frames, want $total"
[ $FAILED -eq 0 ] && echo "ok: ids $EPOCH-1..$EPOCH-$total in order, one per frame"

# Beyond the spec's examples: invalid UTF-8 and a type with a line break.
# Either refused (4xx), or delivered without breaking the stream.
subscribe "$TMP/stream2"
sleep 0.3
printf 'bad \xff\xfe utf-8 \xc3(' >"$TMP/body"
publish "$TMP/body"
echo "invalid UTF-8 body: /publish answered $PUB_CODE"
[[ $PUB_CODE =~ ^(202|400|415|422)$ ]] || check_fail "invalid UTF-8 body: answered $PUB_CODE, want 202 or a 4xx"
printf 'x' >"$TMP/body"
publish "$TMP/body" '?event=a%0Ab'
echo "?event=a%0Ab: /publish answered $PUB_CODE"
[[ $PUB_CODE =~ ^(202|400)$ ]] || check_fail "?event=a%0Ab: answered $PUB_CODE, want 400 (or 202 with the type kept literally)"
printf 'after' >"$TMP/body"
publish "$TMP/body"
[ "$PUB_CODE" = 202 ] || fail "publish after the odd ones answered $PUB_CODE"
wait_count "$TMP/stream2" 'data: after' 1 5 || fail "stream after the odd payloads: 'after' not received"
if grep -a -q '^event: a$' "$TMP/stream2" || grep -a -q '^b$' "$TMP/stream2"; then
	check_fail "a LF from ?event=a%0Ab reached the stream: $(grep -a -n -B1 -A2 '^event: a' "$TMP/stream2")"
fi
if tr -d -c '\r' <"$TMP/stream2" | grep -q .; then check_fail "CR bytes in the stream"; fi
grep -a -q '^data: bad ' "$TMP/stream2" && echo "invalid UTF-8 was passed through (clients show U+FFFD)"

finish curl-frames
