# shellcheck shell=bash disable=SC2154 # sourced: the variables are check-install.sh's
# The adapters' part of check-install.sh, sourced by it after libsse was
# checked: it uses that script's variables (root, L, I, tmp, here, cc, san,
# version, adapters, pkgconfig) and functions (ok, err, needed).
#
# For each adapter NAME that meson built: its header, libraries and
# libsse-NAME.pc are installed; tests/install/user-NAME.c builds outside
# the tree with `pkg-config --cflags --libs libsse-NAME` and runs; it
# builds and runs with libsse-NAME.a and libsse.a and the loop's shared
# library; and all static with `pkg-config --static` when the loop
# library's archives (and those of its private dependencies) are
# installed, else that part is skipped, saying which archives are missing.
#
# SPDX-License-Identifier: MIT

# libsse-NAME.pc requires the loop's .pc, which is not in the DESTDIR: a
# sysroot would be applied to the loop's paths too (pkgconf rewrites every
# -I and -L). So the installed .pc files are copied with their absolute
# paths moved into the DESTDIR, and the system's own .pc files stay as
# they are, as a user would see them.
adapter_pc=$tmp/pc
mkdir -p "$adapter_pc"
for f in "$L"/pkgconfig/libsse*.pc; do
	sed -E "s#^(prefix|exec_prefix|libdir|includedir)=/#\\1=$root/#" "$f" >"$adapter_pc/${f##*/}"
done
apc() { # pkg-config ARGS..., for the adapters
	env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR -u PKG_CONFIG_ALLOW_SYSTEM_CFLAGS \
		-u PKG_CONFIG_ALLOW_SYSTEM_LIBS PKG_CONFIG_PATH="$adapter_pc" "$pkgconfig" "$@" |
		sed 's/[[:space:]]*$//'
}

# archive_of LIB -L-FLAGS...: the path of libLIB.a the linker would find, or nothing.
archive_of() {
	local lib=$1 d found
	shift
	for d in "$@"; do
		d=${d#-L}
		[ -e "$d/lib$lib.a" ] && { echo "$d/lib$lib.a"; return; }
	done
	found=$("${cc[@]}" -print-file-name="lib$lib.a")
	[ "$found" != "lib$lib.a" ] && echo "$found"
}

# build_run NAME WHAT OUT FLAGS...: compile user-NAME.c into OUT and run it.
build_run() {
	local name=$1 what=$2 exe=$3 out
	shift 3
	if ! "${cc[@]}" -std=c11 -Wall -Wextra -Wpedantic -Werror "${san[@]}" "$here/user-$name.c" \
		-o "$exe" "$@" 2>"$tmp/cc.log"; then
		cat "$tmp/cc.log" >&2
		err "libsse-$name: cannot build $what: cc user-$name.c $*"
		return 1
	fi
	ok "libsse-$name: built $what"
	if out=$(env -u LD_LIBRARY_PATH LD_LIBRARY_PATH="${LIBPATH:-}" "$exe" 2>&1); then
		ok "libsse-$name: it runs: $out"
	else
		err "libsse-$name: user-$name ($what) failed: $out"
		return 1
	fi
}

check_adapter() {
	local name=$1 f missing=0 so soname l a
	local -a flags cflags ldirs libs ours loop lost
	so=$L/libsse-$name.so.$version
	for f in "$I/sse/$name.h" "$L/libsse-$name.so" "$L/libsse-$name.so.0" "$so" \
		"$L/libsse-$name.a" "$L/pkgconfig/libsse-$name.pc"; do
		if [ -e "$f" ]; then ok "installed ${f#"$root"}"; else err "not installed: ${f#"$root"}"; missing=1; fi
	done
	[ "$missing" -eq 0 ] || return 1
	[ -f "$here/user-$name.c" ] || { err "no tests/install/user-$name.c for adapter $name"; return 1; }

	soname=$("$readelf" -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ "$soname" = "libsse-$name.so.0" ] && ok "libsse-$name: SONAME is $soname" ||
		err "libsse-$name: SONAME is '$soname', want libsse-$name.so.0"
	if "$readelf" -d "$so" | grep -q 'R\(UN\)\?PATH'; then
		err "the installed libsse-$name.so keeps an RPATH/RUNPATH"
	fi
	expect "pkg-config --modversion libsse-$name" "$(apc --modversion "libsse-$name")" "$version"
	if grep -qF "$builddir" "$L/pkgconfig/libsse-$name.pc"; then err "libsse-$name.pc mentions the build directory"; fi

	# Dynamic: cc user.c $(pkg-config --cflags --libs libsse-NAME).
	read -ra flags <<<"$(apc --cflags --libs "libsse-$name")"
	if LIBPATH=$L build_run "$name" "against libsse-$name.so: \$(pkg-config --cflags --libs libsse-$name)" \
		"$tmp/user-$name" "${flags[@]}"; then
		needed "$tmp/user-$name" | grep -qx "libsse-$name.so.0" &&
			ok "libsse-$name: it needs libsse-$name.so.0" ||
			err "libsse-$name: user-$name does not need libsse-$name.so.0"
	fi

	# Ours static, the loop shared: the --libs flags, -lsse-NAME and -lsse
	# taken from their archives.
	libs=()
	for l in "${flags[@]}"; do
		case $l in
		-lsse | -lsse-*) libs+=(-Wl,-Bstatic "$l" -Wl,-Bdynamic) ;;
		*) libs+=("$l") ;;
		esac
	done
	if build_run "$name" "against libsse-$name.a and libsse.a, the loop shared" \
		"$tmp/user-$name-static" "${libs[@]}"; then
		if needed "$tmp/user-$name-static" | grep -q '^libsse'; then
			err "libsse-$name: user-$name-static still needs a shared libsse"
		else
			ok "libsse-$name: it needs no libsse*.so"
		fi
	fi

	# pkg-config --static: all static, when the loop's archives are installed.
	read -ra cflags <<<"$(apc --static --cflags "libsse-$name")"
	read -ra ldirs <<<"$(apc --static --libs-only-L "libsse-$name")"
	ours=() loop=()
	for l in $(apc --static --libs-only-l "libsse-$name"); do
		case $l in
		-lsse | -lsse-*) ours+=("$l") ;;
		*) loop+=("$l") ;;
		esac
	done
	[ "${ours[*]}" = "-lsse-$name -lsse" ] ||
		err "libsse-$name: pkg-config --static --libs-only-l gives '${ours[*]}' of ours, want -lsse-$name -lsse"
	lost=()
	for l in "${loop[@]}"; do
		a=$(archive_of "${l#-l}" "${ldirs[@]}")
		[ -n "$a" ] || [[ " ${lost[*]} " == *" lib${l#-l}.a "* ]] || lost+=("lib${l#-l}.a")
	done
	if [ "${#lost[@]}" -ne 0 ]; then
		ok "libsse-$name: SKIP pkg-config --static, all static: ${lost[*]} not installed (wanted: ${loop[*]})"
		return 0
	fi
	libs=(-Wl,-Bstatic "${ours[@]}" "${loop[@]}" -Wl,-Bdynamic)
	if build_run "$name" "all static: pkg-config --static, -Wl,-Bstatic ${ours[*]} ${loop[*]}" \
		"$tmp/user-$name-allstatic" "${cflags[@]}" "${ldirs[@]}" "${libs[@]}"; then
		for l in "${loop[@]}"; do
			if needed "$tmp/user-$name-allstatic" | grep -q "^lib${l#-l}\.so"; then
				err "libsse-$name: user-$name-allstatic still needs lib${l#-l}.so"
			fi
		done
	fi
}

[ "${#adapters[@]}" -ne 0 ] || ok "no adapter was built: none checked"
for adapter in "${adapters[@]}"; do
	check_adapter "$adapter" || true
done
