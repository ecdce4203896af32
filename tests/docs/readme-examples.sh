#!/usr/bin/env bash
# Every ```c block of README.md compiles as printed, links against the
# built libsse, and, when it is a whole program, runs and exits 0.
#
#   readme-examples.sh README LIBSSE_SO INCLUDE_DIR B_SANITIZE CC...
#
# The convention, by the block's text:
#   - it defines main(): a program. Compiled, linked, run.
#   - its first line is "/* fragment NAME: ..." : statements from inside
#     a server. tests/docs/NAME.prelude declares what they use and opens
#     a function; the block becomes that function's body. Compiled and
#     linked (a main that does not call it), not run.
#   - anything else: a translation unit (functions, declarations).
#     Compiled and linked with a main that does not call it.
# Flags: cc -std=c11 -Wall -Wextra -Wpedantic -Werror, as a user would.
#
# SPDX-License-Identifier: MIT
set -u

readme=$1 lib=$2 incdir=$3 sanitize=$4
shift 4
cc=("$@")
here=$(cd "$(dirname "$0")" && pwd)
libdir=$(dirname "$lib")
flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -I"$incdir")
[ "$sanitize" = none ] || [ -z "$sanitize" ] || flags+=(-fsanitize="$sanitize")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Split the blocks out: block-1.c, block-2.c, ...
awk -v dir="$tmp" '
	/^```c[ \t]*$/ { inside = 1; n++; next }
	/^```/ { inside = 0; next }
	inside { print > (dir "/block-" n ".c") }
' "$readme"
blocks=("$tmp"/block-*.c)
[ -e "${blocks[0]}" ] || { echo "not ok: no \`\`\`c block in $readme"; exit 1; }

printf 'int main(void)\n{\n\treturn 0;\n}\n' >"$tmp/stub-main.c"
fail=0 count=0

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
		  printf '#line 1 "README.md %s"\n' "$name"
		  cat "$src"
		  printf '}\n'; } >"$unit"
	else
		kind="translation unit"
	fi
	local objs=("$unit")
	[ "$kind" = program ] || objs+=("$tmp/stub-main.c")
	if ! out=$("${cc[@]}" "${flags[@]}" "${objs[@]}" "$lib" -o "$exe" 2>&1); then
		echo "not ok $name ($kind) does not compile or link:"
		echo "$out"
		sed 's/^/  | /' "$src"
		return 1
	fi
	if [ "$kind" = program ]; then
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
