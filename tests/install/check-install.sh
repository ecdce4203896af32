#!/usr/bin/env bash
# Install libsse into a temporary DESTDIR and use it as a user would.
#
#   check-install.sh MESON PKG-CONFIG READELF BUILDDIR VERSION LIBDIR INCLUDEDIR SANITIZE ADAPTERS CC...
#
# LIBDIR and INCLUDEDIR are the absolute install paths (prefix included);
# SANITIZE is meson's b_sanitize, needed to link against an instrumented build;
# ADAPTERS the adapters built, space-separated (may be empty): each one's
# files are checked and tests/install/user-NAME.c is built against it.
#
# SPDX-License-Identifier: MIT
set -euo pipefail

if [ $# -lt 10 ]; then
	echo "usage: $0 MESON PKG-CONFIG READELF BUILDDIR VERSION LIBDIR INCLUDEDIR SANITIZE ADAPTERS CC..." >&2
	exit 2
fi
meson=$1 pkgconfig=$2 readelf=$3 builddir=$4 version=$5 libdir=$6 incdir=$7 sanitize=$8
read -ra adapters <<<"$9"
shift 9
here=$(cd "$(dirname "$0")" && pwd)
cc=("$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
fail=0

err() {
	echo "FAIL: $*" >&2
	fail=1
}
ok() { echo "ok:   $*"; }

"$meson" install -C "$builddir" --no-rebuild --destdir "$root" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log" >&2
	err "meson install failed"
	exit 1
}
ok "meson install --destdir"

# --- what is installed ---------------------------------------------------
L=$root$libdir
I=$root$incdir
major=${version%%.*}
for f in "$I/sse.h" "$I/sse/stream.h" "$I/sse/hub.h" "$L/libsse.so" "$L/libsse.so.$major" "$L/libsse.so.$version" \
	"$L/libsse.a" "$L/pkgconfig/libsse.pc"; do
	if [ -e "$f" ]; then ok "installed ${f#"$root"}"; else err "not installed: ${f#"$root"}"; fi
done
[ "$fail" -eq 0 ] || { find "$root" >&2; exit 1; }

soname=$("$readelf" -d "$L/libsse.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libsse.so.$major" ] && ok "SONAME is $soname" || err "SONAME is '$soname', want libsse.so.$major"
[ -L "$L/libsse.so" ] && [ "$(readlink -f "$L/libsse.so")" = "$(readlink -f "$L/libsse.so.$version")" ] &&
	ok "libsse.so links to libsse.so.$version" || err "libsse.so is not a link to libsse.so.$version"
if "$readelf" -d "$L/libsse.so.$version" | grep -q 'R\(UN\)\?PATH'; then
	err "the installed libsse.so keeps an RPATH/RUNPATH"
fi
# Only the public header: nothing from lib/ (sse-private.h, module headers).
others=$(find "$root" -name '*.h' ! -path "$I/sse.h" ! -path "$I/sse/*")
[ -z "$others" ] && ok "no private header installed" || err "headers installed besides sse.h: $others"

# --- pkg-config ------------------------------------------------------------
# Only our .pc file, seen through the DESTDIR as if installed; keep system
# paths in the output so the comparisons below are exact.
export PKG_CONFIG_LIBDIR=$L/pkgconfig PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR=$root
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
pc() { "$pkgconfig" "$@" libsse | sed 's/[[:space:]]*$//'; }
expect() { # WHAT GOT WANT
	if [ "$2" = "$3" ]; then ok "$1: $2"; else err "$1 is '$2', want '$3'"; fi
}
expect "pkg-config --modversion" "$(pc --modversion)" "$version"
expect "pkg-config --cflags" "$(pc --cflags)" "-I$I"
expect "pkg-config --libs" "$(pc --libs)" "-L$L -lsse"
static_libs=$(pc --static --libs)
case " $static_libs " in
*" -L$L "*) case " $static_libs " in *" -lsse "*) has_both=1 ;; *) has_both=0 ;; esac ;;
*) has_both=0 ;;
esac
[ "$has_both" = 1 ] && ok "pkg-config --static --libs: $static_libs" ||
	err "pkg-config --static --libs is '$static_libs', want -L$L and -lsse"
grep -q '^prefix=/' "$L/pkgconfig/libsse.pc" || err "libsse.pc has no absolute prefix"
if grep -qF "$builddir" "$L/pkgconfig/libsse.pc"; then err "libsse.pc mentions the build directory"; fi

# --- a user's program, built outside the tree ------------------------------
cat >"$tmp/user.c" <<'PROG'
#include <sse.h>
#include <stdio.h>
#include <string.h>

/* The bytes the event stream format prescribes for this event: one data
 * line per line of the payload, and a blank line to dispatch it. */
static const char want[] = "id: 7\n"
			   "event: greeting\n"
			   "retry: 1500\n"
			   "data: hello\n"
			   "data: world\n"
			   "\n";

struct capture {
	char buf[256];
	size_t len;
};

static int capture_write(const void *buf, size_t len, size_t *taken, void *ctx)
{
	struct capture *c = ctx;

	if (len > sizeof(c->buf) - c->len)
		return SSE_ERR_IO;
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	*taken = len;
	return 0;
}

int main(void)
{
	const struct sse_event ev = {"7", 1, "greeting", 8, "hello\nworld", 11, 1500};
	struct capture cap = {{0}, 0};
	const struct sse_transport out = {.size = sizeof(out), .write = capture_write, .ctx = &cap};
	struct sse_stream *s = NULL;
	char buf[256];
	size_t size = 0, written = 0;
	int rc;

	if (sse_version() != ((SSE_VERSION_MAJOR << 16) | (SSE_VERSION_MINOR << 8) | SSE_VERSION_PATCH)) {
		fprintf(stderr, "header and library versions differ\n");
		return 1;
	}
	rc = sse_encode_size(&ev, 0, &size);
	if (rc == 0)
		rc = sse_encode(&ev, 0, buf, sizeof(buf), &written);
	if (rc != 0) {
		fprintf(stderr, "sse_encode: %s\n", sse_strerror(rc));
		return 1;
	}
	if (size != sizeof(want) - 1 || written != size || memcmp(buf, want, written) != 0) {
		fprintf(stderr, "sse_encode wrote %zu bytes (size %zu): \"%.*s\"\n", written,
			size, (int)written, buf);
		return 1;
	}
	rc = sse_stream_new(&s, &out, NULL, NULL);
	if (rc == 0)
		rc = sse_stream_send(s, &ev);
	if (rc == 0 && sse_stream_pending(s) != 0)
		rc = SSE_ERR_WOULDBLOCK;
	sse_stream_free(s);
	if (rc != 0) {
		fprintf(stderr, "stream: %s\n", sse_strerror(rc));
		return 1;
	}
	if (cap.len != sizeof(want) - 1 || memcmp(cap.buf, want, cap.len) != 0) {
		fprintf(stderr, "sse_stream_send wrote \"%.*s\"\n", (int)cap.len, cap.buf);
		return 1;
	}
	printf("libsse %s: encoded and streamed as expected\n", SSE_VERSION_STRING);
	return 0;
}
PROG

san=()
[ "$sanitize" = none ] || [ -z "$sanitize" ] || san=(-fsanitize="$sanitize")
needed() { "$readelf" -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# Dynamic: exactly what the pkg-config man page tells a user to do.
read -ra flags <<<"$(pc --cflags --libs)"
if "${cc[@]}" -std=c11 -Wall -Wextra -Werror "${san[@]}" "$tmp/user.c" -o "$tmp/user-shared" \
	"${flags[@]}" 2>"$tmp/cc.log"; then
	ok "built against libsse.so: cc user.c \$(pkg-config --cflags --libs libsse)"
	needed "$tmp/user-shared" | grep -qx "libsse.so.$major" &&
		ok "it needs libsse.so.$major" || err "user-shared does not need libsse.so.$major"
	out=$(LD_LIBRARY_PATH=$L "$tmp/user-shared" 2>&1) && ok "it runs: $out" || err "user-shared failed: $out"
else
	cat "$tmp/cc.log" >&2
	err "cannot build against the installed libsse.so"
fi

# Static: the --static flags, with libsse taken from libsse.a.
read -ra cflags <<<"$(pc --static --cflags)"
read -ra ldirs <<<"$(pc --static --libs-only-L)"
libs=()
for l in $(pc --static --libs-only-l); do
	if [ "$l" = -lsse ]; then libs+=(-Wl,-Bstatic -lsse -Wl,-Bdynamic); else libs+=("$l"); fi
done
if "${cc[@]}" -std=c11 -Wall -Wextra -Werror "${san[@]}" "${cflags[@]}" "$tmp/user.c" \
	-o "$tmp/user-static" "${ldirs[@]}" "${libs[@]}" 2>"$tmp/cc.log"; then
	ok "built against libsse.a: pkg-config --static, -Wl,-Bstatic -lsse"
	if needed "$tmp/user-static" | grep -q '^libsse'; then
		err "user-static still needs a shared libsse"
	else
		ok "it needs no libsse.so"
	fi
	out=$(env -u LD_LIBRARY_PATH "$tmp/user-static" 2>&1) && ok "it runs: $out" || err "user-static failed: $out"
else
	cat "$tmp/cc.log" >&2
	err "cannot build against the installed libsse.a"
fi

# shellcheck source=tests/install/check-adapters.sh
. "$here/check-adapters.sh"

if [ "$fail" -ne 0 ]; then
	echo "install check FAILED"
	exit 1
fi
echo "install check passed (libdir $libdir, includedir $incdir)"
