# shellcheck shell=bash disable=SC2034
# Helpers for the interop tests written in bash; source it, then call
# relay_start. Everything talks to 127.0.0.1 only.
#
#   relay_start ARGS...        start "$RELAY" --port 0 ARGS..., set PORT and BASE
#   relay_start_on P ARGS...   the same on port P (retried while P is busy)
#   relay_stop                 SIGTERM; the relay must exit 0 within the limit
#   finish NAME                relay_stop, then PASS (or not) and exit
#   publish BODYFILE [QUERY]   POST it to /publish; sets PUB_CODE, PUB_BODY
#                              (the answer without its final LF: the id)
#   learn_epoch ID             set EPOCH from a default-mode id
#   check_id ID EPOCH N        ID must be "<EPOCH>-N" (EPOCH "": plain "N")
#   fail MSG / skip MSG        exit 1 / 77 (meson counts 77 as skipped)
#
# Ids: by default every relay run has an epoch of its own (8 characters of
# [0-9a-v]) and its ids are "<epoch>-<n>", n = 1, 2, 3, ...; the epoch is
# learnt from the first /publish answer (learn_epoch). With --plain-ids they are
# "1", "2", "3", ...
#
# SSE_RELAY_WRAPPER: when set (e.g. "valgrind --leak-check=full
# --error-exitcode=99 -q"), the relay runs under it (the words of the
# variable, split on blanks, come before the relay's path), the waits for
# its listening line and its exit are longer, an exit status of 99 after
# SIGTERM is reported as the wrapper's errors, and every relay's stderr
# (the wrapper's report) is shown at the end, pass or fail.
#
# An EXIT trap stops everything the test started; the relay must exit 0 on
# SIGTERM (part of its spec), otherwise the test fails.
#
# SPDX-License-Identifier: MIT

set -uo pipefail

RELAY=$(realpath "${1:?usage: $0 PATH-TO-sse-relay}")
[ -x "$RELAY" ] || {
	echo "not executable: $RELAY" >&2
	exit 1
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sse-interop.XXXXXX")
RELAY_PID=
RELAY_RUN=0     # relays started so far; run N logs to relay-N.out/.err
RELAY_ERR=      # stderr of the current relay
RELAY_WRAPPER_FAILED=0 # SSE_RELAY_WRAPPER's tool reported errors (exit 99)
PIDS=()
FAILED=0

# The wrapper's words (no globbing: a '*' in it stays a '*').
read -r -a RELAY_WRAPPER <<<"${SSE_RELAY_WRAPPER:-}"
if [ ${#RELAY_WRAPPER[@]} -gt 0 ]; then
	LISTEN_WAIT_S=60 # valgrind needs seconds to start a program
	STOP_WAIT_S=60   # and to check for leaks at its exit
	echo "relay wrapper: ${RELAY_WRAPPER[*]}"
else
	LISTEN_WAIT_S=5
	STOP_WAIT_S=5
fi

# The id format of a default run, and of --plain-ids.
ID_RE='^[0-9a-v]{8}-[1-9][0-9]*$'
PLAIN_ID_RE='^[1-9][0-9]*$'

fail() {
	echo "FAIL: $*" >&2
	FAILED=1
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# Record a failure but go on (the exit status says it at the end).
check_fail() {
	echo "FAIL: $*" >&2
	FAILED=1
}

# Show every relay's stderr (the wrapper's report is in there too).
show_relay_logs() {
	local f max=${1:-4000}
	for f in "$TMP"/relay-*.err; do
		[ -s "$f" ] || continue
		echo "--- sse-relay stderr ($(basename "$f" .err)) ---" >&2
		tail -c "$max" "$f" >&2
	done
}

# relay_stop: SIGTERM the current relay; it must exit 0 within
# STOP_WAIT_S. Returns 0 when it did, 1 (with the reason said) otherwise.
relay_stop() {
	local i st pid=$RELAY_PID
	[ -n "$pid" ] || return 0
	RELAY_PID=
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		st=$?
		echo "FAIL: sse-relay died during the test (status $st)" >&2
		[ $st -eq 99 ] && [ ${#RELAY_WRAPPER[@]} -gt 0 ] && RELAY_WRAPPER_FAILED=1
		return 1
	fi
	kill -TERM "$pid"
	for ((i = 0; i < STOP_WAIT_S * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid"
		echo "FAIL: sse-relay did not exit within $STOP_WAIT_S s of SIGTERM" >&2
		return 1
	fi
	wait "$pid"
	st=$?
	if [ $st -eq 99 ] && [ ${#RELAY_WRAPPER[@]} -gt 0 ]; then
		echo "FAIL: the relay wrapper (${RELAY_WRAPPER[*]}) reported errors: exit status 99 after SIGTERM" >&2
		RELAY_WRAPPER_FAILED=1
		return 1
	fi
	if [ $st -ne 0 ]; then
		echo "FAIL: sse-relay exited with status $st after SIGTERM (want 0)" >&2
		return 1
	fi
	return 0
}

cleanup() {
	local rc=$? p
	trap - EXIT
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	if ! relay_stop && [ $rc -ne 77 ]; then
		[ $rc -eq 0 ] && rc=1
	fi
	[ $rc -eq 0 ] && [ $FAILED -ne 0 ] && rc=1
	if [ $RELAY_WRAPPER_FAILED -ne 0 ] || [ ${#RELAY_WRAPPER[@]} -gt 0 ]; then
		show_relay_logs 30000 # the wrapper's whole report, as far as is sane
	elif [ $rc -eq 1 ]; then
		show_relay_logs 4000
	fi
	wait 2>/dev/null
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT

# _relay_launch PORT ARGS...: start one relay; 0 with PORT set, 2 when it
# exited at once because the port is in use, 1 on other failures (said).
_relay_launch() {
	local want=$1 i line out
	shift
	RELAY_RUN=$((RELAY_RUN + 1))
	out=$TMP/relay-$RELAY_RUN.out
	RELAY_ERR=$TMP/relay-$RELAY_RUN.err
	"${RELAY_WRAPPER[@]}" "$RELAY" --port "$want" "$@" >"$out" 2>"$RELAY_ERR" &
	RELAY_PID=$!
	for ((i = 0; i < LISTEN_WAIT_S * 20; i++)); do
		line=$(grep -a -m1 -E '^[a-z0-9-]+: listening on ' "$out")
		[ -n "$line" ] && break
		if ! kill -0 "$RELAY_PID" 2>/dev/null; then
			wait "$RELAY_PID"
			RELAY_PID=
			grep -q 'cannot listen.*in use' "$RELAY_ERR" && return 2
			echo "FAIL: sse-relay --port $want $* exited before listening: $(head -c 2000 "$RELAY_ERR")" >&2
			return 1
		fi
		sleep 0.05
	done
	if [ -z "$line" ]; then
		echo "FAIL: sse-relay --port $want $* printed no 'NAME: listening on http://ADDR:PORT/' line within $LISTEN_WAIT_S s" >&2
		return 1
	fi
	if [[ $line =~ ^[a-z0-9-]+:\ listening\ on\ http://127\.0\.0\.1:([0-9]+)/$ ]]; then
		PORT=${BASH_REMATCH[1]}
	else
		echo "FAIL: unexpected listening line: '$line'" >&2
		return 1
	fi
	[ "$PORT" -gt 0 ] || {
		echo "FAIL: port 0 in '$line'" >&2
		return 1
	}
	[ "$want" = 0 ] || [ "$PORT" = "$want" ] || {
		echo "FAIL: asked for port $want, listening on $PORT" >&2
		return 1
	}
	BASE="http://127.0.0.1:$PORT"
	echo "sse-relay --port $want $* listening on $BASE (pid $RELAY_PID)"
	return 0
}

relay_start() {
	_relay_launch 0 "$@" || fail "could not start sse-relay $*"
}

# relay_start_on PORT ARGS...: on that port, as a restarted server does;
# tried for up to 5 s while the port is busy.
relay_start_on() {
	local want=$1 i rc
	shift
	for ((i = 0; i < 25; i++)); do
		_relay_launch "$want" "$@"
		rc=$?
		[ $rc -eq 0 ] && return 0
		[ $rc -eq 1 ] && fail "could not start sse-relay on port $want"
		sleep 0.2
	done
	fail "port $want still busy after 5 s"
}

# publish FILE [QUERY]: POST the file's bytes, exactly, to /publish.
# A 202 answer must be the id and one LF, nothing else.
publish() {
	local out
	out=$(curl -sS --noproxy '*' --max-time 10 -H 'Expect:' -H 'Content-Type: text/plain; charset=utf-8' \
		--data-binary @"$1" -o "$TMP/pub.body" -w '%{http_code}' "$BASE/publish${2:-}") ||
		fail "curl could not publish $1"
	PUB_CODE=$out
	PUB_BODY=$(tr -d '\n' <"$TMP/pub.body")
	if [ "$PUB_CODE" = 202 ] && ! printf '%s\n' "$PUB_BODY" | cmp -s - "$TMP/pub.body"; then
		check_fail "/publish answered 202 with $(od -An -c "$TMP/pub.body" | head -2), want the id and one LF"
	fi
}

# learn_epoch ID [WHAT]: set EPOCH to the epoch of a default-mode id (the
# test fails unless ID has the strict form).
learn_epoch() {
	[[ $1 =~ $ID_RE ]] || fail "${2:-id}: '$1' does not match $ID_RE (<epoch>-<n>)"
	EPOCH=${1%-*}
}

# check_id ID EPOCH N [WHAT]: ID must be exactly "<EPOCH>-N", in the strict
# format (or "N" when EPOCH is empty: --plain-ids); false and said if not.
check_id() {
	local want
	if [ -n "$2" ]; then
		want="$2-$3"
		[[ $1 =~ $ID_RE ]] || {
			check_fail "${4:-id}: '$1' does not match $ID_RE"
			return 1
		}
	else
		want=$3
		[[ $1 =~ $PLAIN_ID_RE ]] || {
			check_fail "${4:-id}: '$1' does not match $PLAIN_ID_RE (--plain-ids)"
			return 1
		}
	fi
	[ "$1" = "$want" ] || {
		check_fail "${4:-id}: '$1', want '$want'"
		return 1
	}
}

# finish NAME: stop the clients and the relay (which must exit 0), then
# say PASS (or not) and exit with the verdict.
finish() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	PIDS=()
	relay_stop || FAILED=1
	[ $FAILED -eq 0 ] && echo "PASS: $1"
	exit $FAILED
}

# subscribe FILE [PATH] [CURL-ARGS...]: curl -sN into FILE (headers in FILE.head).
subscribe() {
	local file=$1 path=${2:-/events}
	shift 2 2>/dev/null || shift $#
	curl -sN --noproxy '*' --max-time 60 -D "$file.head" "$@" "$BASE$path" >"$file" 2>"$file.err" &
	PIDS+=($!)
	SUB_PID=$!
}

# wait_count FILE LINE COUNT SECONDS: wait until FILE has the whole line
# LINE (a fixed string) at least COUNT times; false on a timeout.
wait_count() {
	local i n
	for ((i = 0; i < $4 * 20; i++)); do
		n=$(grep -a -c -x -F -- "$2" "$1" 2>/dev/null)
		[ "${n:-0}" -ge "$3" ] && return 0
		sleep 0.05
	done
	return 1
}
