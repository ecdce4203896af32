#!/usr/bin/env bash
# Install the Debian packages libsse needs, only those missing.
#
#   bash .ci/deps.sh build    compile libsse, its examples and unit tests
#   bash .ci/deps.sh test     all of tests/run-all.sh (adds clang, valgrind, g++,
#                             curl, Node.js, Chromium for tests/interop, and the
#                             event loops of the example servers)
#
# Fast when everything is present: it asks dpkg and runs apt-get (update
# once, then install) only for what is missing. As non-root, or off Debian,
# it only says what is missing.
#
# SPDX-License-Identifier: MIT
set -euo pipefail

build=(meson ninja-build pkg-config gcc libc6-dev check binutils)
# tests/interop: curl, and Chromium for the browser test. Chromium is
# required, not best effort: the test skips without it, and a skip would
# hide a missing install step.
test=("${build[@]}" g++ clang libclang-rt-dev valgrind curl chromium doxygen mandoc)
# The example servers on other loops (each behind a meson feature that is
# auto: built when its package is there) and their conformance tests.
test+=(libmicrohttpd-dev libevent-dev libuv1-dev libnghttp2-dev libssl-dev nghttp2-client openssl)
# The Redis Streams provider (libsse-redis) and the redis-server its tests start.
test+=(libhiredis-dev redis-server)
test+=(libjwt-dev) # sse-relay's --jwt-* (JSON Web Tokens)
test+=(prometheus) # sse-relay's /metrics: promtool checks it, a Prometheus scrapes it
# Node.js and npm unless present (NodeSource's nodejs ships npm; Debian's is
# a package of its own). Debian 12's Node 18 will do: tests/interop pins
# packages that run on it.
command -v node >/dev/null 2>&1 || test+=(nodejs)
command -v npm >/dev/null 2>&1 || test+=(npm)

case ${1:-build} in
build) want=("${build[@]}") ;;
test) want=("${test[@]}") ;;
*)
	echo "usage: $0 build|test" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: not a Debian system; make sure these (or their equivalents) are installed: ${want[*]}"
	exit 0
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${want[@]}"; do
	installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
