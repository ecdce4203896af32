#!/usr/bin/env bash
# Conformance over HTTP/2 for examples/sse-h2 (nghttp2): the checks of the
# interop suite, spoken as HTTP/2 by `curl --http2-prior-knowledge`, by
# `nghttp` (Debian nghttp2-client) and by a small nghttp2 client built here
# from the C source at the end of this file (it needs cc and libnghttp2-dev;
# without them that part is skipped):
#
#   1. exact frames of nasty payloads published over HTTP/2, received over
#      HTTP/2 (curl) and HTTP/1.1 (curl) alike; the response head has the
#      event-stream fields and no hop-by-hop field (connection, keep-alive,
#      proxy-connection, transfer-encoding, upgrade, te), as nghttp -v shows;
#   2. two /events streams multiplexed on ONE connection (nghttp), both
#      receiving every byte;
#   3. RST_STREAM: our client resets one of its two streams; the other
#      keeps receiving on the same connection. And the other way round: a
#      stream whose flow-control window is never given back is reset by
#      the server after --stall, the other one keeps receiving.
#      (Why not curl: Debian's curl 7.88 cannot reuse a prior-knowledge
#      connection for a second transfer, curl/curl#10634.)
#   4. resume with Last-Event-ID (header and ?lastEventId=), the sse-reset
#      event for an unknown id, 400 for a malformed escape;
#   5. 404, 405 (with allow), 413 over HTTP/2;
#   6. heartbeats on an idle HTTP/2 stream (--heartbeat 300);
#   7. HTTP/1.1 "Upgrade: h2c" (curl --http2): 101, then the stream on h2;
#   8. TLS with ALPN "h2" (needs the openssl command, and sse-h2 built with
#      OpenSSL; else skipped): curl and nghttp over https;
#   9. SIGTERM: every HTTP/2 stream ends (END_STREAM), GOAWAY, exit 0.
#
#   bash tests/conformance-h2.sh PATH-TO-sse-h2
#
# It starts the server with --port 0 and reads its first line,
# "sse-h2: listening on http://127.0.0.1:PORT/" (tests/interop/lib.sh, whose
# SSE_RELAY_WRAPPER runs it under valgrind too). Exit 0, 1, or 77 when curl
# has no HTTP/2 or nghttp is missing.
#
# SPDX-License-Identifier: MIT

. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || skip "curl is not installed"
curl -V | grep -qw HTTP2 || skip "this curl has no HTTP/2"
command -v nghttp >/dev/null || skip "nghttp is not installed (Debian nghttp2-client)"
export LC_ALL=C
H2=(--http2-prior-knowledge)

# h2pub FILE [QUERY] [CURL-ARGS...]: POST over HTTP/2; sets PUB_CODE, PUB_BODY.
h2pub() {
	local file=$1 q=${2:-} v
	shift 2 2>/dev/null || shift $#
	v=$(curl -sS "${H2[@]}" --noproxy '*' --max-time 10 --data-binary @"$file" "$@" \
		-o "$TMP/pub.body" -w '%{http_code} %{http_version}' "$BASE/publish$q") ||
		fail "curl could not publish $file over HTTP/2"
	PUB_CODE=${v% *}
	PUB_BODY=$(tr -d '\n' <"$TMP/pub.body")
	[ "${v#* }" = 2 ] || check_fail "/publish was answered over HTTP/${v#* }, not HTTP/2"
}

# h2sub FILE [PATH] [CURL-ARGS...]: an HTTP/2 subscriber (head in FILE.head).
h2sub() {
	local file=$1 path=${2:-/events}
	shift 2 2>/dev/null || shift $#
	curl -sN "${H2[@]}" --noproxy '*' --max-time 60 -D "$file.head" "$@" "$BASE$path" \
		>"$file" 2>"$file.err" &
	PIDS+=($!)
}

wait_bytes() { # FILE SECONDS: until FILE is not empty
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# frames FILE: the event blocks, comment lines and the opening retry
# dropped, "data: " written "data:".
frames() {
	awk 'BEGIN { RS = ""; ORS = "" }
	{
		n = split($0, l, "\n"); out = ""
		for (i = 1; i <= n; i++) {
			if (l[i] ~ /^:/ || (l[i] ~ /^retry:/ && NR == 1)) continue
			if (l[i] == "data: ") l[i] = "data:"
			out = out l[i] "\n"
		}
		if (out != "") print out "\n"
	}' "$1"
}

hop_by_hop='^(connection|keep-alive|proxy-connection|transfer-encoding|upgrade|te):'

main() {
# ---- 1, 2: frames, heads, two streams on one connection

relay_start --heartbeat 60000
h2sub "$TMP/h2"
h1=$TMP/h1
subscribe "$h1"
timeout 30 nghttp -v "$BASE/events" "$BASE/events?second" >"$TMP/nghttp" 2>&1 &
NGHTTP_PID=$!
PIDS+=($!)
wait_bytes "$TMP/h2" 5 || fail "the HTTP/2 subscriber got no opening bytes within 5 s"
wait_bytes "$h1" 5 || fail "the HTTP/1.1 subscriber got no opening bytes within 5 s"
sleep 0.3

tr -d '\r' <"$TMP/h2.head" >"$TMP/head"
grep -q '^HTTP/2 200' "$TMP/head" || fail "status is not HTTP/2 200: $(head -1 "$TMP/head")"
grep -qi '^content-type: text/event-stream' "$TMP/head" || check_fail "no content-type: text/event-stream"
grep -qi '^cache-control: no-cache, no-transform' "$TMP/head" || check_fail "no cache-control: no-cache, no-transform"
grep -qi '^x-accel-buffering: no' "$TMP/head" || check_fail "no x-accel-buffering: no"
grep -qi '^content-length:' "$TMP/head" && check_fail "an event stream with a content-length"
grep -Eqi "$hop_by_hop" "$TMP/head" && check_fail "a hop-by-hop field in the HTTP/2 head: $(grep -Ei "$hop_by_hop" "$TMP/head")"

: >"$TMP/expected"
n=0
case_() { # TYPE PRINTF-FORMAT LINE...: publish over HTTP/2, expect one frame
	local type=$1 fmt=$2 q='' l
	shift 2
	printf "$fmt" >"$TMP/body"
	[ -n "$type" ] && q="?event=$type"
	h2pub "$TMP/body" "$q"
	n=$((n + 1))
	[ "$PUB_CODE" = 202 ] || fail "payload #$n: /publish over HTTP/2 answered $PUB_CODE, want 202"
	[ $n -eq 1 ] && learn_epoch "$PUB_BODY" "the first /publish answer"
	check_id "$PUB_BODY" "$EPOCH" $n "payload #$n" || exit 1
	{
		printf 'id: %s-%d\n' "$EPOCH" $n
		[ -n "$type" ] && printf 'event: %s\n' "$type"
		for l in "$@"; do
			if [ -z "$l" ]; then printf 'data:\n'; else printf 'data: %s\n' "$l"; fi
		done
		printf '\n'
	} >>"$TMP/expected"
}
case_ '' 'hello' 'hello'
case_ '' 'a\nb' 'a' 'b'
case_ '' 'a\rb' 'a' 'b'
case_ '' 'a\r\nb' 'a' 'b'
case_ '' 'a\n\rb' 'a' '' 'b'
case_ '' 'a\r\r\n\nb' 'a' '' '' 'b'
case_ '' '\r\nlead' '' 'lead'
case_ '' 'trail\r' 'trail' ''
case_ '' '\r\n\r\n\n' '' '' '' ''
case_ '' ' one space' ' one space'
case_ '' ': not a comment\n:also not' ': not a comment' ':also not'
case_ '' 'id: 999\nevent: bogus\nretry: 1\n\ndata: x' 'id: 999' 'event: bogus' 'retry: 1' '' 'data: x'
case_ '' 'h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80' "$(printf 'h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80')"
case_ update 'typed\nline 2' 'typed' 'line 2'
case_ '' '' ''
big=$(head -c 102400 /dev/zero | tr '\0' 'x')
case_ '' "$big\r\n$big" "$big" "$big"
case_ '' 'last' 'last'
total=$n
wait_count "$TMP/h2" "id: $EPOCH-$total" 1 10 || check_fail "the HTTP/2 subscriber has no 'id: $EPOCH-$total' within 10 s"
wait_count "$h1" "id: $EPOCH-$total" 1 5 || check_fail "the HTTP/1.1 subscriber has no 'id: $EPOCH-$total'"
sleep 0.3
frames "$TMP/h2" >"$TMP/frames"
if cmp -s "$TMP/expected" "$TMP/frames"; then
	echo "ok: $total frames published and received over HTTP/2, byte for byte as expected"
else
	diff <(cat -A "$TMP/expected" | cut -c1-100) <(cat -A "$TMP/frames" | cut -c1-100) | head -30 >&2
	check_fail "the frames received over HTTP/2 differ from the WHATWG frames written by hand"
fi
if tr -d -c '\r' <"$TMP/h2" | grep -q .; then check_fail "CR bytes in the HTTP/2 stream"; fi
cmp -s <(sed 1d "$TMP/h2") <(sed 1d "$h1") && echo "ok: the HTTP/1.1 subscriber got the same bytes" ||
	check_fail "the HTTP/1.1 and HTTP/2 subscribers got different streams"

# nghttp: one connection, two streams, the same bytes on each; the head.
kill "$NGHTTP_PID" 2>/dev/null
wait "$NGHTTP_PID" 2>/dev/null
[ "$(grep -c '\] Connected' "$TMP/nghttp")" = 1 ] || check_fail "nghttp did not use exactly one connection"
sed -n 's/.*recv DATA frame <length=\([0-9]*\), flags=0x[0-9a-f]*, stream_id=\([0-9]*\)>.*/\2 \1/p' "$TMP/nghttp" |
	awk '{ b[$1] += $2 } END { for (s in b) print s, b[s] }' >"$TMP/per-stream"
want=$(wc -c <"$TMP/h2")
if [ "$(wc -l <"$TMP/per-stream")" = 2 ] && [ "$(awk '{ print $2 }' "$TMP/per-stream" | sort -u)" = "$want" ]; then
	echo "ok: two /events streams on one nghttp connection, $want bytes of DATA each: $(tr '\n' ' ' <"$TMP/per-stream")"
else
	check_fail "nghttp's two streams on one connection: DATA bytes per stream '$(tr '\n' ' ' <"$TMP/per-stream")', want two streams of $want"
fi
grep -Ei "recv \(stream_id=[0-9]+\) " "$TMP/nghttp" | sed 's/.*recv (stream_id=[0-9]*) //' >"$TMP/nghttp-fields"
grep -q '^:status: 200' "$TMP/nghttp-fields" || check_fail "nghttp saw no :status 200"
grep -Eqi "$hop_by_hop" "$TMP/nghttp-fields" && check_fail "nghttp -v shows a hop-by-hop field: $(grep -Ei "$hop_by_hop" "$TMP/nghttp-fields" | head -3)"
echo "ok: response fields (nghttp -v): $(sort -u "$TMP/nghttp-fields" | tr '\n' ';')"

# ---- 4, 5: resume, reset, errors over HTTP/2

E=$EPOCH
h2sub "$TMP/resume" /events -H "Last-Event-ID: $E-$((total - 2))"
h2sub "$TMP/resume-q" "/events?lastEventId=$E-$((total - 1))"
h2sub "$TMP/unknown" /events -H "Last-Event-ID: not-an-id"
for f in resume resume-q unknown; do wait_count "$TMP/$f" "id: $E-$total" 1 5 || check_fail "$f: no 'id: $E-$total'"; done
sleep 0.2
[ "$(grep -c '^id:' "$TMP/resume")" = 2 ] && grep -qx "id: $E-$((total - 1))" "$TMP/resume" &&
	echo "ok: Last-Event-ID: $E-$((total - 2)) over HTTP/2 replayed the two events after it" ||
	check_fail "Last-Event-ID: $E-$((total - 2)) got $(grep '^id:' "$TMP/resume" | tr '\n' ' ')"
[ "$(grep -c '^id:' "$TMP/resume-q")" = 1 ] && echo "ok: ?lastEventId= over HTTP/2 replayed the one event after it" ||
	check_fail "?lastEventId=$E-$((total - 1)) got $(grep '^id:' "$TMP/resume-q" | tr '\n' ' ')"
[ "$(frames "$TMP/unknown" | head -1)" = "id: $E-$total" ] && [ "$(frames "$TMP/unknown" | sed -n 2p)" = "event: sse-reset" ] &&
	echo "ok: an unknown Last-Event-ID got the sse-reset event with the newest id first" ||
	check_fail "unknown Last-Event-ID: got $(frames "$TMP/unknown" | head -3 | tr '\n' '|')"
code() { curl -s "${H2[@]}" -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$BASE/events?lastEventId=%zz")" = 400 ] || check_fail "a malformed %-escape in lastEventId: want 400"
[ "$(code "$BASE/nowhere")" = 404 ] || check_fail "/nowhere: want 404"
[ "$(code -X DELETE "$BASE/events")" = 405 ] || check_fail "DELETE /events: want 405"
curl -s "${H2[@]}" -D - -o /dev/null -X PUT "$BASE/publish" | tr -d '\r' | grep -qi '^allow: POST' ||
	check_fail "PUT /publish: no allow: POST"
head -c $(((1 << 20) + 1)) /dev/zero | tr '\0' 'b' >"$TMP/toobig"
h2pub "$TMP/toobig"
[ "$PUB_CODE" = 413 ] || check_fail "a body of 1 MiB + 1 over HTTP/2: $PUB_CODE, want 413"
head -c $((1 << 20)) /dev/zero | tr '\0' 'b' >"$TMP/max"
h2pub "$TMP/max"
[ "$PUB_CODE" = 202 ] || check_fail "a body of 1 MiB over HTTP/2: $PUB_CODE, want 202"
[ $FAILED -eq 0 ] && echo "ok: 400, 404, 405 (allow), 413, and 202 for 1 MiB over HTTP/2"

# ---- 7: Upgrade: h2c

# Resuming from the last nasty payload: the 1 MiB event comes first.
curl -sN --http2 --noproxy '*' --max-time 20 -D "$TMP/up.head" "$BASE/events?lastEventId=$E-$total" \
	>"$TMP/up" 2>/dev/null &
PIDS+=($!)
wait_bytes "$TMP/up" 5 || check_fail "Upgrade: h2c: no opening bytes"
printf 'upgraded' >"$TMP/body"
h2pub "$TMP/body"
wait_count "$TMP/up" "data: upgraded" 1 5 || check_fail "Upgrade: h2c: the event did not arrive"
[ "$(grep -m1 '^id:' "$TMP/up")" = "id: $E-$((total + 1))" ] || check_fail "Upgrade: h2c: ?lastEventId=$E-$total did not resume"
tr -d '\r' <"$TMP/up.head" | grep -q '^HTTP/1.1 101' && tr -d '\r' <"$TMP/up.head" | grep -q '^HTTP/2 200' &&
	echo "ok: Upgrade: h2c answered 101, then HTTP/2 200 on stream 1; resumed from ?lastEventId=, live events" ||
	check_fail "Upgrade: h2c: head $(tr -d '\r' <"$TMP/up.head" | grep HTTP | tr '\n' '|')"

# ---- 3: RST_STREAM, from the client and from the server

cc=$(command -v cc || command -v gcc || command -v clang)
if [ -z "$cc" ] || ! pkg-config --exists libnghttp2 2>/dev/null; then
	echo "SKIP (part): no C compiler or libnghttp2-dev: the RST_STREAM checks"
else
	h2rst_source >"$TMP/h2rst.c"
	# shellcheck disable=SC2046 # the flags are words
	"$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -o "$TMP/h2rst" "$TMP/h2rst.c" \
		$(pkg-config --cflags --libs libnghttp2) || fail "could not build the test client"
	rst_case() { # MODE: the first of two streams is reset (by us, or by the server)
		rm -f "$TMP/flag"
		"$TMP/h2rst" "$PORT" "$1" 2 6 "$TMP/s1" "$TMP/s2" "$TMP/flag" >"$TMP/h2rst.out" 2>&1 &
		local pid=$! i
		sleep 0.3
		for i in 1 2 3; do h2pub "$TMP/payload"; done
		for ((i = 0; i < 100; i++)); do [ -e "$TMP/flag" ] && break; sleep 0.05; done
		[ -e "$TMP/flag" ] || check_fail "$1: the first stream was not reset within 5 s"
		for i in 4 5 6; do h2pub "$TMP/payload"; done
		if wait "$pid"; then
			echo "ok: $1: $(cat "$TMP/h2rst.out"); the other stream got every event on the same connection"
		else
			check_fail "$1: $(cat "$TMP/h2rst.out")"
		fi
		cmp -s "$TMP/s1" <(head -c "$(wc -c <"$TMP/s1")" "$TMP/s2") ||
			check_fail "$1: the two streams' bytes differ before the reset"
	}
	relay_stop || fail "the server did not stop cleanly"
	relay_start --heartbeat 60000 --stall 1000
	printf 'x%.0s' {1..2000} >"$TMP/payload"
	rst_case rst
	rst_case stall
	grep -q 'dropped a slow subscriber: transport accepted nothing' "$RELAY_ERR" ||
		check_fail "stall: the server did not log the drop"
fi

# ---- 6: heartbeats on an idle HTTP/2 stream

relay_stop || fail "the server did not stop cleanly"
relay_start --heartbeat 300
timeout 2 nghttp -v "$BASE/events" >"$TMP/hb" 2>&1
beats=$(grep -c '^:' "$TMP/hb")
[ "$beats" -ge 4 ] && [ "$beats" -le 9 ] && echo "ok: $beats comments in 2 s on an idle HTTP/2 stream (--heartbeat 300; the first opens it)" ||
	check_fail "--heartbeat 300: $beats comment lines in 2 s over HTTP/2"

# ---- 9: SIGTERM ends every HTTP/2 stream cleanly

timeout 20 nghttp -v "$BASE/events" "$BASE/events?b" >"$TMP/term" 2>&1 &
pid=$!
sleep 0.5
relay_stop || check_fail "the server did not exit 0 on SIGTERM with HTTP/2 streams open"
wait "$pid"
st=$?
[ "$(grep -c 'recv DATA frame <length=0, flags=0x01' "$TMP/term")" = 2 ] && grep -q 'recv GOAWAY' "$TMP/term" && [ $st = 0 ] &&
	echo "ok: SIGTERM: both HTTP/2 streams ended with END_STREAM, GOAWAY, nghttp exit 0" ||
	check_fail "SIGTERM: nghttp (status $st) saw $(grep -c 'flags=0x01' "$TMP/term") END_STREAM, $(grep -c 'recv GOAWAY' "$TMP/term") GOAWAY"

# ---- 8: TLS with ALPN h2

if ! command -v openssl >/dev/null; then
	echo "SKIP (part): no openssl command: TLS"
elif ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null; then
	echo "SKIP (part): openssl could not make a certificate: TLS"
elif "$RELAY" --port 0 --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" --help 2>&1 | grep -q 'without OpenSSL'; then
	echo "SKIP (part): sse-h2 was built without OpenSSL: TLS"
else
	relay_start --heartbeat 60000 --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"
	S=https://127.0.0.1:$PORT
	curl -skvN --http2 --max-time 20 "$S/events" >"$TMP/tls" 2>"$TMP/tls.err" &
	PIDS+=($!)
	timeout 5 nghttp -v "$S/events" >"$TMP/tls-ng" 2>&1 &
	ngpid=$!
	wait_bytes "$TMP/tls" 5 || check_fail "TLS: no opening bytes"
	sleep 0.3
	printf 'secret' >"$TMP/body"
	v=$(curl -sk --http2 --data-binary @"$TMP/body" -o /dev/null -w '%{http_code} %{http_version}' "$S/publish")
	[ "$v" = "202 2" ] || check_fail "TLS: /publish over h2 answered '$v'"
	wait_count "$TMP/tls" "data: secret" 1 5 || check_fail "TLS: the event did not arrive"
	grep -q 'ALPN: server accepted h2' "$TMP/tls.err" || check_fail "TLS: ALPN did not select h2: $(grep ALPN "$TMP/tls.err")"
	wait "$ngpid"
	grep -q 'data: secret' "$TMP/tls-ng" || check_fail "TLS: nghttp over https did not get the event"
	grep -q 'h2 is negotiated\|Negotiated protocol: h2' "$TMP/tls-ng" || grep -q 'recv SETTINGS' "$TMP/tls-ng" ||
		check_fail "TLS: nghttp did not speak HTTP/2"
	plain=$(curl -s --max-time 2 -N "http://127.0.0.1:$PORT/events" | head -c 1)
	[ -n "$plain" ] || check_fail "TLS on: a cleartext client on the same port got nothing"
	[ $FAILED -eq 0 ] && echo "ok: TLS: ALPN h2 (curl, nghttp), an event over it; cleartext still served on the same port"
fi

finish conformance-h2
}

# The test client of part 3, built by main.
h2rst_source() {
	cat <<'EOF'
/* h2rst.c: the test client of part 3 of tests/conformance-h2.sh.
 * Two GET /events on one HTTP/2 connection (prior knowledge).
 *   h2rst PORT rst K N OUT1 OUT2 FLAG: once the first stream has K events
 *     we reset it (RST_STREAM CANCEL); FLAG is created then.
 *   h2rst PORT stall K N OUT1 OUT2 FLAG: the first stream's flow-control
 *     window (4 KiB) is never given back: the server must reset it
 *     (RST_STREAM CANCEL) after its stall time; FLAG is created then.
 * Either way the second stream must go on, on the same connection, until
 * it has N events ("id:" lines). The streams' bodies go to OUT1 and OUT2.
 * Exit 0 when so, 1 on an error, a GOAWAY, or after 15 s. */
#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct st {
	int32_t id;
	FILE *out;
	int events, closed;
	char line[4];
	size_t col;
};
static struct st sts[2];
static int fd, k_events, n_events, rst_sent, goaway, stall;
static const char *flag;

static struct st *find(int32_t id)
{
	return sts[0].id == id ? &sts[0] : sts[1].id == id ? &sts[1] : NULL;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *d, size_t n, int f, void *u)
{
	(void)s, (void)f, (void)u;
	return send(fd, d, n, MSG_NOSIGNAL) == (ssize_t)n ? (ssize_t)n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_data(nghttp2_session *s, uint8_t f, int32_t id, const uint8_t *d, size_t n, void *u)
{
	struct st *t = find(id);

	(void)f, (void)u;
	if (t == NULL)
		return 0;
	if (stall && t == &sts[1]) /* window back for the second stream and the connection only */
		nghttp2_session_consume(s, id, n);
	else if (stall)
		nghttp2_session_consume_connection(s, n);
	fwrite(d, 1, n, t->out);
	fflush(t->out);
	for (size_t i = 0; i < n; i++) {
		if (t->col < sizeof(t->line))
			t->line[t->col] = (char)d[i];
		t->col++;
		if (t->col == 3 && memcmp(t->line, "id:", 3) == 0)
			t->events++;
		if (d[i] == '\n')
			t->col = 0;
	}
	return 0;
}

static void raise_flag(void)
{
	FILE *f = fopen(flag, "w");

	if (f != NULL)
		fclose(f);
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
	struct st *t = find(id);

	(void)s, (void)u;
	if (t != NULL)
		t->closed = (int)code + 1;
	if (t == &sts[0] && stall && code == NGHTTP2_CANCEL) {
		rst_sent = 1; /* by the server */
		raise_flag();
	}
	return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
	(void)s, (void)u;
	if (f->hd.type == NGHTTP2_GOAWAY)
		goaway = 1;
	return 0;
}

static nghttp2_session *session(void)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session *s;
	nghttp2_option *opt;
	nghttp2_settings_entry small = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 4096};

	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	nghttp2_option_new(&opt);
	nghttp2_option_set_no_auto_window_update(opt, stall);
	nghttp2_session_client_new2(&s, cb, NULL, opt);
	nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, &small, stall ? 1 : 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return s;
}

static void request(nghttp2_session *s, const char *auth, int i, const char *out)
{
	const nghttp2_nv h[] = {
		{(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
		{(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
		{(uint8_t *)":authority", (uint8_t *)auth, 10, strlen(auth), 0},
		{(uint8_t *)":path", (uint8_t *)"/events", 5, 7, 0},
	};

	sts[i].out = fopen(out, "w");
	sts[i].id = nghttp2_submit_request(s, NULL, h, 4, NULL, NULL);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	nghttp2_session *s;
	char auth[32];
	time_t end = time(NULL) + 15;

	if (argc != 8)
		return 2;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	stall = strcmp(argv[2], "stall") == 0;
	k_events = atoi(argv[3]);
	n_events = atoi(argv[4]);
	flag = argv[7];
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return 1;
	snprintf(auth, sizeof(auth), "127.0.0.1:%s", argv[1]);
	s = session();
	request(s, auth, 0, argv[5]);
	request(s, auth, 1, argv[6]);
	while (time(NULL) < end && !goaway) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint8_t buf[16384];
		ssize_t n;

		if (nghttp2_session_send(s) != 0)
			break;
		if (!stall && !rst_sent && sts[0].events >= k_events) {
			nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sts[0].id, NGHTTP2_CANCEL);
			nghttp2_session_send(s);
			rst_sent = 1;
			raise_flag();
		}
		if (sts[1].events >= n_events || sts[1].closed)
			break;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || nghttp2_session_mem_recv(s, buf, (size_t)n) < 0)
			break;
	}
	printf("stream %d: %d events, stream %d: %d events%s%s%s\n", sts[0].id, sts[0].events,
	       sts[1].id, sts[1].events,
	       rst_sent ? (stall ? ", the first reset by the server" : ", the first reset by us") : "",
	       sts[1].closed ? ", the second closed" : "", goaway ? ", GOAWAY" : "");
	nghttp2_session_del(s);
	close(fd);
	return rst_sent && sts[1].events >= n_events && !sts[1].closed && !goaway ? 0 : 1;
}
EOF
}

main
