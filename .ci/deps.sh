#!/usr/bin/env bash
# Install the Debian packages libsse needs, only those missing.
#
#   bash .ci/deps.sh build    compile libsse, its examples and unit tests
#   bash .ci/deps.sh test     all of tests/run-all.sh (adds clang, valgrind, g++,
#                             and curl, Node.js, Chromium for tests/interop)
#
# Fast when everything is present: it asks dpkg and runs apt-get (update
# once, then install) only for what is missing. As non-root, or off Debian,
# it only says what is missing.
#
# SPDX-License-Identifier: MIT
set -euo pipefail

build=(meson ninja-build pkg-config gcc libc6-dev check binutils)
test=("${build[@]}" g++ clang libclang-rt-dev valgrind curl)
# tests/interop: Node.js and npm unless present (NodeSource's nodejs ships
# npm; Debian's is a package of its own); Chromium when it can be had (the
# browser test skips without it).
command -v node >/dev/null 2>&1 || test+=(nodejs)
command -v npm >/dev/null 2>&1 || test+=(npm)
optional=()

case ${1:-build} in
build) want=("${build[@]}") ;;
test) want=("${test[@]}") optional=(chromium) ;;
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
missing=() missing_optional=()
for p in "${want[@]}"; do
	installed "$p" || missing+=("$p")
done
for p in "${optional[@]}"; do
	installed "$p" || missing_optional+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if [ ${#missing[@]} -eq 0 ]; then
		echo "deps: missing optional packages (their tests skip): ${missing_optional[*]}"
		exit 0
	fi
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]} ${missing_optional[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
	apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
if [ ${#missing_optional[@]} -gt 0 ]; then
	apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" </dev/null ||
		echo "deps: could not install ${missing_optional[*]}; the tests that need them skip" >&2
fi
