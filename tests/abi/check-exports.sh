#!/usr/bin/env bash
# Compare what a built libsse exports with lib/libsse.map and include/sse.h.
#
#   check-exports.sh NM MAP HEADER shared LIBSSE.so
#   check-exports.sh NM MAP HEADER static LIBSSE.a
#
# shared: the defined dynamic symbols must be exactly the names in the map's
#         global sections, each a function bound to its version node.
# static: every name of the map is defined once, as a function; any other
#         global symbol is an sse__ internal (a static user links them all
#         into one namespace, so nothing else may be global).
# Both:   the map lists exactly the functions sse.h declares with SSE_API.
#
# Exit status: 0 pass, 1 fail, 77 skip (meson's convention).
#
# SPDX-License-Identifier: MIT
set -euo pipefail

if [ $# -ne 5 ]; then
	echo "usage: $0 NM MAP HEADER shared|static LIBRARY" >&2
	exit 2
fi
nm=$1 map=$2 header=$3 kind=$4 lib=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

err() {
	echo "FAIL: $*" >&2
	fail=1
}

# "NODE name" for each name in a global section of the version script.
# Handles /* */ and # comments and several nodes; wildcards are refused,
# since a "sse_*" pattern would also export the sse__ internals.
map_symbols() {
	awk '
	{
		line = $0; out = ""
		while (line != "") {
			if (incomment) {
				i = index(line, "*/")
				if (!i) { line = ""; break }
				line = substr(line, i + 2); incomment = 0
			} else {
				i = index(line, "/*")
				if (!i) { out = out line; break }
				out = out substr(line, 1, i - 1)
				line = substr(line, i + 2); incomment = 1
			}
		}
		sub(/#.*/, "", out)
		text = text " " out
	}
	END {
		gsub(/[{};:]/, " & ", text)
		n = split(text, t, /[ \t]+/)
		depth = 0; scope = ""; node = ""; prev = ""
		for (k = 1; k <= n; k++) {
			tok = t[k]
			if (tok == "") continue
			if (tok == "{") { depth++; if (depth == 1) { node = prev; scope = "" }; prev = tok; continue }
			if (tok == "}") { depth--; prev = tok; continue }
			if (depth == 1 && (tok == "global" || tok == "local") && t[k + 1] == ":") {
				scope = tok; k++; prev = ":"; continue
			}
			if (depth == 1 && scope == "global" && tok != ";") {
				if (tok ~ /[*?\[]/) { print "WILDCARD " tok; continue }
				if (tok == "extern") { print "EXTERN " tok; continue }
				print node " " tok
			}
			prev = tok
		}
	}' "$1"
}

# The headers of a library: the umbrella sse.h and the module headers it
# includes, or an adapter's one header (include/sse/NAME.h).
headers_of() {
	echo "$1"
	if [ "$(basename "$1")" = sse.h ]; then
		grep -o '^#include <sse/[a-z0-9_]*\.h>' "$1" | sed -E 's|.*<(.*)>|\1|' |
			sed "s|^|$(dirname "$1")/|"
	fi
}

# Names of the functions declared with SSE_API in those headers.
header_symbols() {
	# shellcheck disable=SC2046
	cat $(headers_of "$1") | grep -v '^[[:space:]]*#' | tr '\n\t' '  ' |
		grep -o 'SSE_API[^;(]*(' |
		sed -E 's/[[:space:]]*\($//; s/.*[^A-Za-z0-9_]//' | sort -u
}

map_symbols "$map" >"$tmp/map.nodes"
if grep -q '^WILDCARD\|^EXTERN' "$tmp/map.nodes"; then
	err "$map: wildcard or extern block in a global section:" \
		"$(grep '^WILDCARD\|^EXTERN' "$tmp/map.nodes" | cut -d' ' -f2 | tr '\n' ' ')"
fi
grep -v '^WILDCARD\|^EXTERN' "$tmp/map.nodes" | sort -k2 >"$tmp/map.nodes.sorted" || true
cut -d' ' -f2 "$tmp/map.nodes.sorted" | sort >"$tmp/map.names"
if [ ! -s "$tmp/map.names" ]; then
	err "$map: no global symbols found (parse error?)"
fi
dups=$(uniq -d "$tmp/map.names")
[ -z "$dups" ] || err "$map lists a name twice: $dups"
sort -u -o "$tmp/map.names" "$tmp/map.names"

header_symbols "$header" >"$tmp/header.names"
comm -23 "$tmp/header.names" "$tmp/map.names" | while read -r s; do
	echo "FAIL: $s is declared SSE_API in $(basename "$header") but missing from $(basename "$map")" >&2
	echo x
done >"$tmp/f1"
comm -13 "$tmp/header.names" "$tmp/map.names" | while read -r s; do
	echo "FAIL: $s is in $(basename "$map") but not declared SSE_API in $(basename "$header")" >&2
	echo x
done >"$tmp/f2"
[ ! -s "$tmp/f1" ] && [ ! -s "$tmp/f2" ] || fail=1

# Prefix rule, on the map itself and on whatever the library defines.
check_prefix() { # NAME WHAT
	case $1 in
	sse__*) err "$2: $1 is an sse__ internal" ;;
	sse_*) ;;
	*) err "$2: $1 lacks the sse_ prefix" ;;
	esac
}
while read -r s; do check_prefix "$s" "libsse.map"; done <"$tmp/map.names"

if [ ! -f "$lib" ]; then
	err "$lib does not exist"
	exit 1
fi

case $kind in
shared)
	# "addr T name@@NODE"; the node itself shows as "addr A NODE".
	"$nm" -D --defined-only "$lib" >"$tmp/nm.out"
	awk 'NF == 3 && !($2 == "A" && $3 !~ /@/) { print $2, $3 }' "$tmp/nm.out" >"$tmp/lib.syms"
	: >"$tmp/lib.names"
	while read -r type sym; do
		name=${sym%%@*}
		echo "$name" >>"$tmp/lib.names"
		check_prefix "$name" "$(basename "$lib") exports"
		case $type in
		T | i) ;;
		*) err "$(basename "$lib") exports $name as '$type', not a function" ;;
		esac
		if [ "$sym" != "$name" ]; then
			node=${sym#*@}
			node=${node#@}
			want=$(awk -v s="$name" '$2 == s { print $1 }' "$tmp/map.nodes.sorted")
			if [ -n "$want" ] && [ "$node" != "$want" ]; then
				err "$name is bound to version $node, libsse.map says $want"
			fi
		fi
	done <"$tmp/lib.syms"
	sort -o "$tmp/lib.names" "$tmp/lib.names"
	dups=$(uniq -d "$tmp/lib.names")
	[ -z "$dups" ] || err "exported twice (several versions?): $dups"
	sort -u -o "$tmp/lib.names" "$tmp/lib.names"
	;;
static)
	"$nm" -g --defined-only "$lib" >"$tmp/nm.out"
	if grep -q '__gnu_lto_' "$tmp/nm.out"; then
		echo "SKIP: $lib holds LTO objects; nm cannot list their symbols"
		exit 77
	fi
	awk 'NF == 3 { print $2, $3 }' "$tmp/nm.out" >"$tmp/lib.syms"
	: >"$tmp/lib.all"
	while read -r type name; do
		echo "$name" >>"$tmp/lib.all"
		if grep -qxF "$name" "$tmp/map.names"; then
			case $type in
			T | i) ;;
			*) err "$(basename "$lib") defines $name as '$type', not a function" ;;
			esac
			continue
		fi
		case $name in
		sse__*) ;; # internals: global in the archive, hidden in the .so
		# Instrumentation (sanitizers, coverage) adds its own globals.
		__asan_* | __odr_asan* | __ubsan_* | __sancov_* | __llvm_* | __gcov* | __profc_* | __profd_*) ;;
		*) err "$(basename "$lib") defines global $name: neither public (libsse.map) nor sse__" ;;
		esac
	done <"$tmp/lib.syms"
	sort -o "$tmp/lib.all" "$tmp/lib.all"
	dups=$(uniq -d "$tmp/lib.all")
	[ -z "$dups" ] || err "$(basename "$lib") defines these in several objects: $dups"
	grep -xF -f "$tmp/map.names" "$tmp/lib.all" | sort -u >"$tmp/lib.names" || true
	;;
*)
	echo "usage: kind must be shared or static, not '$kind'" >&2
	exit 2
	;;
esac

missing=$(comm -23 "$tmp/map.names" "$tmp/lib.names" | tr '\n' ' ')
extra=$(comm -13 "$tmp/map.names" "$tmp/lib.names" | tr '\n' ' ')
[ -z "$missing" ] || err "in libsse.map but not defined by $(basename "$lib"): $missing"
[ -z "$extra" ] || err "exported by $(basename "$lib") but not in libsse.map: $extra"

count=$(wc -l <"$tmp/map.names")
if [ "$fail" -ne 0 ]; then
	echo "$(basename "$lib"): export check FAILED ($count names in libsse.map)"
	exit 1
fi
echo "$(basename "$lib"): exports match $(basename "$map") and $(basename "$header") ($count functions)"
