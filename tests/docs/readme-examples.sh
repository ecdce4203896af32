#!/usr/bin/env bash
# Every ```c block of a page (README.md, doc/*.md) compiles as printed,
# links against the built libsse, and, when it is a whole program, runs
# and exits 0.
#
#   readme-examples.sh [OPTION]... PAGE LIBSSE_SO INCLUDE_DIR B_SANITIZE CC...
#
#   --link LIB        also link LIB (an adapter's library), before LIBSSE_SO
#   --pkg MODULE      also compile and link with `pkg-config --cflags --libs MODULE`
#   --pkg-config PROG the pkg-config to ask (default: pkg-config)
#   --no-run          compile and link programs, do not run them (servers)
#   --skip WHY        check nothing: say WHY and exit 77 (meson's SKIP)
#
# The convention, by the block's text:
#   - it defines main(): a program. Compiled, linked, run (unless --no-run).
#   - its first line is "/* fragment NAME: ..." : a piece of a server.
#     tests/docs/NAME.prelude declares what it uses. If the prelude leaves
#     a function open (more "{" than "}"), the block (statements) becomes
#     that function's body; else the block (functions, declarations)
#     follows the prelude at file scope. tests/docs/NAME.postlude, if
#     there, follows the block (what a server does next with the names it
#     declares). Compiled and linked (a main that does not call it), not run.
#   - anything else: a translation unit (functions, declarations).
#     Compiled and linked with a main that does not call it.
# Flags: cc -std=c11 -Wall -Wextra -Wpedantic -Werror, as a user would.
#
# SPDX-License-Identifier: MIT
set -u

links=() pkgs=() pkgconfig=pkg-config run=1
while [ $# -gt 0 ]; do
	case $1 in
	--link) links+=("$2"); shift 2 ;;
	--pkg) pkgs+=("$2"); shift 2 ;;
	--pkg-config) pkgconfig=$2; shift 2 ;;
	--no-run) run=0; shift ;;
	--skip) echo "skipped: $2"; exit 77 ;;
	*) break ;;
	esac
done
readme=$1 lib=$2 incdir=$3 sanitize=$4
shift 4
cc=("$@")
here=$(cd "$(dirname "$0")" && pwd)
page=$(basename "$readme")
libdir=$(dirname "$lib")
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -I"$incdir")
[ "$sanitize" = none ] || [ -z "$sanitize" ] || flags+=(-fsanitize="$sanitize")
loop_cflags=() loop_libs=()
if [ "${#pkgs[@]}" -ne 0 ]; then
	read -ra loop_cflags <<<"$("$pkgconfig" --cflags "${pkgs[@]}")" &&
		read -ra loop_libs <<<"$("$pkgconfig" --libs "${pkgs[@]}")" ||
		{ echo "not ok: pkg-config ${pkgs[*]} failed"; exit 1; }
fi
flags+=("${loop_cflags[@]}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Split the blocks out: block-1.c, block-2.c, ...
awk -v dir="$tmp" '
	/^```c[ \t]*$/ { inside = 1; n++; next }
	/^```/ { inside = 0; next }
	inside { print > (dir "/block-" n ".c") }
' "$readme"
blocks=()
while [ -e "$tmp/block-$((${#blocks[@]} + 1)).c" ]; do
	blocks+=("$tmp/block-$((${#blocks[@]} + 1)).c") # in the page's order
done
[ "${#blocks[@]}" -ne 0 ] || { echo "not ok: no \`\`\`c block in $readme"; exit 1; }

printf 'int main(void)\n{\n\treturn 0;\n}\n' >"$tmp/stub-main.c"
fail=0 count=0

# braces FILE: how many more "{" than "}" FILE has.
braces() {
	echo $(($(tr -cd '{' <"$1" | wc -c) - $(tr -cd '}' <"$1" | wc -c)))
}

# One block: its kind, then compile (and link, and maybe run) it.
check() {
	local src=$1 name kind unit exe out
	name=$(basename "$src" .c)
	unit=$src
	exe=$tmp/$name
	if grep -Eq '(^|[^a-z_])main[[:space:]]*\(' "$src"; then
		kind=program
	elif [[ $(head -n 1 "$src") =~ ^/\*\ fragment\ ([a-z0-9-]+) ]]; then
		kind="fragment ${BASH_REMATCH[1]}"
		[ -f "$here/${BASH_REMATCH[1]}.prelude" ] ||
			{ echo "not ok $name: no tests/docs/${BASH_REMATCH[1]}.prelude"; return 1; }
		unit=$tmp/$name-wrapped.c
		{ printf '#line 1 "%s.prelude"\n' "${BASH_REMATCH[1]}"
		  cat "$here/${BASH_REMATCH[1]}.prelude"
		  printf '#line 1 "%s %s"\n' "$page" "$name"
		  cat "$src"
		  if [ -f "$here/${BASH_REMATCH[1]}.postlude" ]; then
			printf '#line 1 "%s.postlude"\n' "${BASH_REMATCH[1]}"
			cat "$here/${BASH_REMATCH[1]}.postlude"
		  fi
		  # A prelude that opens a function: close it after the body.
		  [ "$(braces "$here/${BASH_REMATCH[1]}.prelude")" -le 0 ] || printf '}\n'; } >"$unit"
	else
		kind="translation unit"
	fi
	local objs=("$unit")
	[ "$kind" = program ] || objs+=("$tmp/stub-main.c")
	if ! out=$("${cc[@]}" "${flags[@]}" "${objs[@]}" "${links[@]}" "$lib" "${loop_libs[@]}" \
		-o "$exe" 2>&1); then
		echo "not ok $name ($kind) does not compile or link:"
		echo "$out"
		sed 's/^/  | /' "$src"
		return 1
	fi
	if [ "$kind" = program ] && [ "$run" = 0 ]; then
		kind="program, not run"
	elif [ "$kind" = program ]; then
		if ! out=$(LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$exe" 2>&1 </dev/null); then
			echo "not ok $name (program) exits non-zero:"
			echo "$out"
			return 1
		fi
	fi
	echo "ok $name ($kind)"
}

for src in "${blocks[@]}"; do
	count=$((count + 1))
	check "$src" || fail=$((fail + 1))
done
echo "$((count - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
