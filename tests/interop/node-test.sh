#!/usr/bin/env bash
# Run one interop test written for Node:
#
#   bash node-test.sh [--npm] SCRIPT.mjs PATH-TO-sse-relay
#
# With --npm the test needs the packages of package.json (eventsource,
# playwright-core): they are installed into tests/interop/node_modules by
# `npm ci` from package-lock.json when missing or of another version (under
# a lock, since meson runs tests in parallel). Without Node.js, or when npm
# cannot install them (offline), the test is skipped (exit 77).
#
# SPDX-License-Identifier: MIT
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)

npm=0
if [ "${1:-}" = --npm ]; then
	npm=1
	shift
fi
script=${1:?usage: $0 [--npm] SCRIPT.mjs PATH-TO-sse-relay}
relay=$(realpath "${2:?usage: $0 [--npm] SCRIPT.mjs PATH-TO-sse-relay}")

command -v node >/dev/null || {
	echo "SKIP: Node.js is not installed (bash .ci/deps.sh test installs it)"
	exit 77
}

# Are the exact versions of package.json in node_modules?
deps_ok() {
	(cd "$here" && node -e '
		const deps = require("./package.json").dependencies;
		for (const [name, want] of Object.entries(deps)) {
			let got;
			try { got = require("./node_modules/" + name + "/package.json").version; } catch { got = "none"; }
			if (got !== want) { console.log(name + ": want " + want + ", have " + got); process.exit(1); }
		}' 2>&1)
}

if [ $npm -eq 1 ] && ! deps_ok >/dev/null; then
	command -v npm >/dev/null || {
		echo "SKIP: npm is not installed, and the packages of $here/package.json are missing"
		exit 77
	}
	exec 9>"${TMPDIR:-/tmp}/libsse-interop-npm.lock"
	flock -w 600 9 || true
	if ! deps_ok >/dev/null; then # another test may have installed them meanwhile
		echo "npm ci --prefix $here"
		if ! timeout 300 npm ci --prefix "$here" --no-audit --no-fund --loglevel=error \
			--fetch-retries=1 --fetch-timeout=30000 >"${TMPDIR:-/tmp}/libsse-interop-npm.log" 2>&1; then
			tail -20 "${TMPDIR:-/tmp}/libsse-interop-npm.log"
			echo "SKIP: npm ci could not install the packages of $here/package-lock.json (offline?)"
			exit 77
		fi
	fi
	why=$(deps_ok) || {
		echo "SKIP: npm ci ran but the packages are still not right: $why"
		exit 77
	}
	exec 9>&-
fi

exec node "$here/$(basename "$script")" "$relay"
