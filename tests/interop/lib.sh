# shellcheck shell=bash disable=SC2034
# Helpers for the interop tests written in bash; source it, then call
# relay_start. Everything talks to 127.0.0.1 only.
#
#   relay_start ARGS...   start "$RELAY" --port 0 ARGS..., set PORT and BASE
#   publish BODYFILE [QUERY]   POST it to /publish; sets PUB_CODE, PUB_BODY
#   fail MSG / skip MSG   exit 1 / 77 (meson counts 77 as skipped)
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
PIDS=()
FAILED=0

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

cleanup() {
	local rc=$? p
	trap - EXIT
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	if [ -n "$RELAY_PID" ] && ! kill -0 "$RELAY_PID" 2>/dev/null; then
		wait "$RELAY_PID"
		echo "FAIL: sse-relay died during the test (status $?)" >&2
		[ $rc -eq 0 ] && rc=1
	elif [ -n "$RELAY_PID" ]; then
		kill -TERM "$RELAY_PID"
		local i st
		for ((i = 0; i < 50; i++)); do
			kill -0 "$RELAY_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$RELAY_PID" 2>/dev/null; then
			kill -KILL "$RELAY_PID" 2>/dev/null
			echo "FAIL: sse-relay did not exit within 5 s of SIGTERM" >&2
			[ $rc -eq 0 ] && rc=1
		fi
		wait "$RELAY_PID"
		st=$?
		if [ $st -ne 0 ] && [ $rc -ne 77 ]; then
			echo "FAIL: sse-relay exited with status $st after SIGTERM (want 0)" >&2
			[ $rc -eq 0 ] && rc=1
		fi
	fi
	[ $rc -eq 0 ] && [ $FAILED -ne 0 ] && rc=1
	if [ $rc -eq 1 ] && [ -s "$TMP/relay.err" ]; then
		echo "--- sse-relay stderr ---" >&2
		tail -c 4000 "$TMP/relay.err" >&2
	fi
	wait 2>/dev/null
	rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT

relay_start() {
	: >"$TMP/relay.out"
	"$RELAY" --port 0 "$@" >"$TMP/relay.out" 2>"$TMP/relay.err" &
	RELAY_PID=$!
	local i line
	for ((i = 0; i < 100; i++)); do
		line=$(grep -a -m1 '^sse-relay: listening on ' "$TMP/relay.out")
		[ -n "$line" ] && break
		kill -0 "$RELAY_PID" 2>/dev/null || fail "sse-relay $* exited before listening"
		sleep 0.05
	done
	[ -n "$line" ] || fail "sse-relay $* printed no 'sse-relay: listening on http://ADDR:PORT/' line within 5 s"
	if [[ $line =~ ^sse-relay:\ listening\ on\ http://127\.0\.0\.1:([0-9]+)/$ ]]; then
		PORT=${BASH_REMATCH[1]}
	else
		fail "unexpected listening line: '$line'"
	fi
	[ "$PORT" -gt 0 ] || fail "port 0 in '$line'"
	BASE="http://127.0.0.1:$PORT"
	echo "sse-relay $* listening on $BASE (pid $RELAY_PID)"
}

# publish FILE [QUERY]: POST the file's bytes, exactly, to /publish.
publish() {
	local out
	out=$(curl -sS --noproxy '*' --max-time 10 -H 'Expect:' -H 'Content-Type: text/plain; charset=utf-8' \
		--data-binary @"$1" -o "$TMP/pub.body" -w '%{http_code}' "$BASE/publish${2:-}") ||
		fail "curl could not publish $1"
	PUB_CODE=$out
	PUB_BODY=$(grep -a -o '[0-9]\+' "$TMP/pub.body" | head -1)
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
