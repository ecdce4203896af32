#!/usr/bin/env bash
# Quick start: install what is missing, build libsse and start sse-relay.
#
#   bash examples/run-example.sh [sse-relay options]     default: --port 8080
#   bash examples/run-example.sh ticker [COUNT [MS]]      the small stdout example
#
# Missing Debian packages (meson, ninja, gcc, pkg-config, check) are
# installed when run as root; the build goes to build-example/. The relay
# listens on 127.0.0.1: open http://127.0.0.1:8080/ and publish with
#   curl --data-binary 'hello' http://127.0.0.1:8080/publish
#
# SPDX-License-Identifier: MIT
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/deps.sh build
if [ -f build-example/meson-private/coredata.dat ]; then
	meson setup --reconfigure build-example >/dev/null
else
	meson setup build-example -Dtests=disabled -Dbenchmarks=false >/dev/null
fi

if [ "${1:-}" = ticker ]; then
	shift
	meson compile -C build-example ticker >/dev/null
	exec build-example/examples/ticker "$@"
fi
meson compile -C build-example sse-relay >/dev/null
[ $# -gt 0 ] || set -- --port 8080
echo "sse-relay $* (Ctrl-C stops it)"
exec build-example/examples/sse-relay "$@"
