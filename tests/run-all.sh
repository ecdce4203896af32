#!/usr/bin/env bash
# Build and test libsse the way CI does (.ci/run calls exactly this).
#
#   bash tests/run-all.sh [STEP...]      STEP: gcc clang sanitize valgrind tsan
#
#   gcc       gcc, -Dwerror=true, build-ci: meson test, every suite
#             (benchmarks are not tests: meson test --benchmark runs them)
#   clang     clang, -Dwerror=true, build-ci-clang: unit, adapters and abi suites
#   sanitize  ASan+UBSan (clang, or gcc when clang's runtime is missing),
#             build-ci-san-CC: unit, adapters and abi suites, then every
#             example server under the sanitizers: conformance and interop
#   valgrind  build-ci under valgrind: meson test --setup valgrind --suite unit --suite adapters
#   tsan      ThreadSanitizer (clang), build-ci-tsan: the handoff, hub, share
#             and threads (sse-relay --threads) tests, the ones that start
#             threads; skipped with a message when clang cannot build and
#             run a -fsanitize=thread program
#
# Build directories are build-ci, build-ci-clang, build-ci-san-CC and
# build-ci-tsan; set
# SSE_BUILD_PREFIX to use another prefix than build-ci.
#
# Every step runs even when an earlier one fails; the last lines name each
# test that failed, with the end of its output, and sum up; the exit
# status is non-zero if any step failed. Missing Debian packages
# are installed first when running as root (.ci/deps.sh).
#
# SPDX-License-Identifier: MIT
set -euo pipefail
cd "$(dirname "$0")/.."

b=${SSE_BUILD_PREFIX:-build-ci}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(gcc clang sanitize valgrind tsan)

bash .ci/deps.sh test

# Reuse a build directory when it exists (fast reruns), else create it.
# Note: set -e does not apply inside functions used as conditions, so
# every function below chains its commands with &&.
setup() { # DIR ARGS...
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$@" || meson setup --wipe "$dir" "$@"
	else
		rm -rf "$dir" && meson setup "$dir" "$@"
	fi
}

# meson test, keeping its summary lines for the closing count and, when a
# test fails, its name and the end of its output for the closing lines (a
# CI log is often cut in the middle; the end is what gets read).
counts=$(mktemp)
failures=$(mktemp)
trap 'rm -f "$counts" "$failures"' EXIT
mtest() { # -C DIR ARGS...
	meson test "$@" 2>&1 | tee -a "$counts"
	local rc=${PIPESTATUS[0]}
	[ "$rc" -eq 0 ] || failed_tests "$2" >>"$failures"
	return "$rc"
}

# The tests that did not pass in DIR's last meson test, each with the last
# lines of its output.
failed_tests() { # DIR
	python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
try:
    runs = [json.loads(line) for line in open(sys.argv[1])]
except OSError as e:
    sys.exit(f"run-all: no test log: {e}")
for r in runs:
    if r.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
        continue
    print(f"--- {sys.argv[1].split('/')[0]}: {r['name']}: {r['result']}"
          f" ({r.get('duration', 0):.1f} s), the end of its output:")
    out = (r.get("stdout") or "") + (r.get("stderr") or "")
    for line in out.splitlines()[-25:]:
        print("    " + line)
PY
}

# The sum of one summary field ("Ok", "Fail", ...) over every step.
count() { # FIELD
	awk -v f="$1:" '$1 == f || ($1 " " $2) == f { n += $NF } END { print n + 0 }' "$counts"
}

step_gcc() {
	CC=gcc CXX=g++ setup "$b" -Dwerror=true -Dtests=enabled &&
		meson compile -C "$b" &&
		mtest -C "$b" --print-errorlogs
}

step_clang() {
	CC=clang CXX=clang++ setup "$b-clang" -Dwerror=true -Dtests=enabled &&
		meson compile -C "$b-clang" &&
		mtest -C "$b-clang" --print-errorlogs --suite unit --suite adapters --suite abi
}

# Can CC build and run a program with these sanitizers (default: ASan and UBSan)?
sanitizers_work() { # CC [SANITIZERS]
	local t
	t=$(mktemp -d) &&
		echo 'int main(void) { return 0; }' >"$t/probe.c" &&
		"$1" -fsanitize="${2:-address,undefined}" "$t/probe.c" -o "$t/probe" >/dev/null 2>&1 &&
		"$t/probe" >/dev/null 2>&1
	local rc=$?
	rm -rf "$t"
	return $rc
}

step_sanitize() {
	local cc cxx
	if command -v clang >/dev/null && sanitizers_work clang; then
		cc=clang cxx=clang++
	elif sanitizers_work gcc; then
		cc=gcc cxx=g++
	else
		echo "neither clang nor gcc can build with -fsanitize=address,undefined" >&2
		return 1
	fi
	echo "sanitizers: using $cc"
	CC=$cc CXX=$cxx setup "$b-san-$cc" -Dtests=enabled -Dbenchmarks=false \
		-Db_sanitize=address,undefined -Db_lundef=false &&
		meson compile -C "$b-san-$cc" &&
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
			mtest -C "$b-san-$cc" --print-errorlogs --suite unit --suite adapters --suite abi &&
		# Every example server under the sanitizers, driven by the real
		# clients. A small quarantine: the slow-consumer test bounds the
		# server's memory, and ASan keeps 256 MiB of freed blocks by default.
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=1 \
			mtest -C "$b-san-$cc" --print-errorlogs --suite conformance --suite interop
}

step_valgrind() {
	# Reuses the gcc build; sets it up if the gcc step was not run.
	{ [ -f "$b/meson-private/coredata.dat" ] ||
		CC=gcc CXX=g++ setup "$b" -Dwerror=true -Dtests=enabled; } &&
		mtest -C "$b" --print-errorlogs --setup valgrind --suite unit --suite adapters
}

# Only these tests start threads (sse-relay's threads test runs the relay
# with several loop threads); the rest would just run slower.
step_tsan() {
	if ! command -v clang >/dev/null || ! sanitizers_work clang thread; then
		echo "tsan: skipped: clang cannot build and run a -fsanitize=thread program"
		return 0
	fi
	CC=clang CXX=clang++ setup "$b-tsan" -Dtests=enabled -Dbenchmarks=false \
		-Db_sanitize=thread -Db_lundef=false &&
		meson compile -C "$b-tsan" &&
		TSAN_OPTIONS=halt_on_error=1 CK_FORK=no \
			mtest -C "$b-tsan" --print-errorlogs handoff hub share threads
}

passed=() failed=()
start=$SECONDS
for s in "${steps[@]}"; do
	if ! declare -F "step_$s" >/dev/null; then
		echo "run-all: unknown step '$s' (steps: gcc clang sanitize valgrind tsan)" >&2
		exit 2
	fi
	t0=$SECONDS
	echo
	echo "=== run-all: $s ==="
	if "step_$s"; then
		passed+=("$s")
		echo "=== run-all: $s passed ($((SECONDS - t0)) s) ==="
	else
		failed+=("$s")
		echo "=== run-all: $s FAILED ($((SECONDS - t0)) s) ==="
	fi
done

echo
# Every test run in every step, as "N passed, N failed, N skipped".
echo "run-all: $(($(count Ok) + $(count "Expected Fail"))) passed," \
	"$(($(count Fail) + $(count Timeout) + $(count "Unexpected Pass"))) failed," \
	"$(count Skipped) skipped"
if [ ${#failed[@]} -eq 0 ]; then
	echo "run-all: PASSED: ${passed[*]} ($((SECONDS - start)) s)"
	exit 0
fi
cat "$failures"
echo "run-all: FAILED: ${failed[*]}${passed[*]:+; passed: ${passed[*]}} ($((SECONDS - start)) s)"
exit 1
