#!/usr/bin/env bash
# Quick start: install what is missing, build libsse and run the ticker.
#
#   bash examples/run-example.sh [COUNT [INTERVAL_MS]]
#
# Missing Debian packages (meson, ninja, gcc, pkg-config, check) are
# installed when run as root; the build goes to build-example/.
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
meson compile -C build-example ticker >/dev/null
echo "--- build-example/examples/ticker $* ---"
exec build-example/examples/ticker "$@"
