#!/usr/bin/env bash
# Lint the man pages: every warning fails (meson test --suite docs).
#
#   check-man.sh LINTER PAGE...
#
# LINTER is mandoc (-Tlint, style messages included) or groff (-man -ww
# -z, where any message on stderr counts). A page that is only a ".so"
# link must name a page given here, as man(1) resolves it.
#
# SPDX-License-Identifier: MIT
set -u

linter=$1
shift
fail=0
declare -A given
for page in "$@"; do
	given[$(basename "$page")]=1
done

lint() {
	local out
	case $(basename "$linter") in
	mandoc) out=$("$linter" -Tlint -W style "$1" 2>&1) || { echo "$out"; return 1; } ;;
	*) out=$("$linter" -man -ww -z "$1" 2>&1) ;;
	esac
	[ -z "$out" ] || { echo "$out"; return 1; }
}

for page in "$@"; do
	name=$(basename "$page")
	first=$(head -n 1 "$page")
	if [[ $first == .so\ * ]]; then
		target=$(basename "${first#.so }")
		if [ -z "${given[$target]:-}" ] || [ "$(wc -l <"$page")" -ne 1 ]; then
			echo "not ok $name: .so link to a page not installed ($target), or more than a link"
			fail=1
		else
			echo "ok $name -> $target"
		fi
		continue
	fi
	if lint "$page"; then
		echo "ok $name"
	else
		echo "not ok $name"
		fail=1
	fi
done
exit $fail
