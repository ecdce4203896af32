#!/usr/bin/env bash
# Prove that include/sse.h stands alone and is clean under pedantic flags.
#
#   check-header.sh c   INCDIR NM SANITIZE ''     COMPILER...
#   check-header.sh c++ INCDIR NM SANITIZE LIBRARY COMPILER...
#
# c:   sse.h compiles by itself, and included twice, at -std=c11 and -std=c99
#      with -Wall -Wextra -Wpedantic -Werror.
# c++: the same at -std=c++11 and -std=c++17; then a C++ program that takes
#      the address of every SSE_API function must reference them by their
#      unmangled C names (the extern "C" guards), link against LIBRARY and
#      run. SANITIZE is meson's b_sanitize value, needed to link against an
#      instrumented library.
#
# SPDX-License-Identifier: MIT
set -euo pipefail

if [ $# -lt 6 ]; then
	echo "usage: $0 c|c++ INCDIR NM SANITIZE LIBRARY COMPILER..." >&2
	exit 2
fi
lang=$1 inc=$2 nm=$3 sanitize=$4 lib=$5
shift 5
compiler=("$@")
header=$inc/sse.h
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
warn=(-Wall -Wextra -Wpedantic -Werror)
fail=0

run() { # DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@" >"$tmp/log" 2>&1; then
		echo "ok:   $what"
	else
		echo "FAIL: $what"
		echo "  \$ $*"
		sed 's/^/  /' "$tmp/log"
		fail=1
	fi
}

# The module headers sse.h includes (not the optional adapters' headers,
# which need their loop's headers and are checked by their own tests).
modules=$(grep -o '^#include <sse/[a-z0-9_]*\.h>' "$header" | sed -E "s|.*<(.*)>|$inc/\\1|")

# The SSE_API function names, as the export check reads them.
api_names() {
	# shellcheck disable=SC2086
	cat "$header" $modules | grep -v '^[[:space:]]*#' | tr '\n\t' '  ' |
		grep -o 'SSE_API[^;(]*(' |
		sed -E 's/[[:space:]]*\($//; s/.*[^A-Za-z0-9_]//' | sort -u
}

cat >"$tmp/twice.inc" <<'EOF'
#include <sse.h>
#include <sse.h> /* the include guard must hold */

/* Every public type is complete where it should be. */
size_t sse_test_sizes(void);
size_t sse_test_sizes(void)
{
	return sizeof(struct sse_event) + sizeof(struct sse_transport) +
	       sizeof(struct sse_parser_callbacks) + sizeof(struct sse_allocator) +
	       sizeof(struct sse_message) + sizeof(enum sse_error) +
	       (size_t)(SSE_RETRY_NONE < 0);
}
EOF

case $lang in
c)
	cp "$tmp/twice.inc" "$tmp/twice.c"
	for std in c11 c99; do
		for h in "$header" $modules; do
			run "${h#"$inc"/} alone, -std=$std" "${compiler[@]}" -std=$std "${warn[@]}" \
				-I"$inc" -fsyntax-only -x c "$h"
		done
		run "sse.h twice, -std=$std" "${compiler[@]}" -std=$std "${warn[@]}" \
			-Wstrict-prototypes -I"$inc" -c "$tmp/twice.c" -o "$tmp/twice.o"
	done
	;;
c++)
	cp "$tmp/twice.inc" "$tmp/twice.cc"
	for std in c++11 c++17; do
		for h in "$header" $modules; do
			run "${h#"$inc"/} alone, -std=$std" "${compiler[@]}" -std=$std "${warn[@]}" \
				-I"$inc" -fsyntax-only -x c++ "$h"
		done
		run "sse.h twice, -std=$std" "${compiler[@]}" -std=$std "${warn[@]}" \
			-I"$inc" -c "$tmp/twice.cc" -o "$tmp/twice.o"
	done

	names=$(api_names)
	{
		echo '#include <sse.h>'
		echo '#include <cstdio>'
		echo 'typedef void (*any_fn)(void);'
		echo 'static any_fn const api[] = {'
		for n in $names; do echo "	reinterpret_cast<any_fn>(&$n),"; done
		echo '};'
		cat <<'EOF'
int main()
{
	const unsigned want = (SSE_VERSION_MAJOR << 16) | (SSE_VERSION_MINOR << 8) | SSE_VERSION_PATCH;
	for (size_t i = 0; i < sizeof(api) / sizeof(api[0]); i++)
		if (api[i] == 0)
			return 1;
	if (sse_version() != want) {
		std::fprintf(stderr, "sse_version() = %#x, header says %#x\n", sse_version(), want);
		return 1;
	}
	return sse_strerror(SSE_ERR_NOMEM) != 0 ? 0 : 1;
}
EOF
	} >"$tmp/linkage.cc"
	run "C++ program using every SSE_API function compiles" "${compiler[@]}" -std=c++11 \
		"${warn[@]}" -I"$inc" -c "$tmp/linkage.cc" -o "$tmp/linkage.o"
	if [ -f "$tmp/linkage.o" ]; then
		"$nm" -u "$tmp/linkage.o" | awk '{ print $NF }' | sort -u >"$tmp/undef"
		missing=""
		for n in $names; do
			grep -qxF "$n" "$tmp/undef" || missing="$missing $n"
		done
		if [ -z "$missing" ]; then
			echo "ok:   C++ object references all $(echo "$names" | wc -w) functions by C name (extern \"C\")"
		else
			echo "FAIL: C++ object does not reference these by their C names (extern \"C\" guard?):$missing"
			fail=1
		fi
		san=()
		[ "$sanitize" = none ] || [ -z "$sanitize" ] || san=(-fsanitize="$sanitize")
		run "C++ program links against $(basename "$lib")" "${compiler[@]}" "${san[@]}" \
			"$tmp/linkage.o" "$lib" -o "$tmp/linkage"
		[ ! -x "$tmp/linkage" ] || run "C++ program runs" "$tmp/linkage"
	fi
	;;
*)
	echo "unknown language '$lang'" >&2
	exit 2
	;;
esac

if [ "$fail" -ne 0 ]; then
	echo "sse.h: $lang header check FAILED"
	exit 1
fi
echo "sse.h: $lang header check passed"
