#!/bin/bash
# The encode and replay benchmarks of a previous release against the
# current tree, measured in the same run on the same machine.
#
#   compare-release.sh [--rounds N] [--old REV] [--fanout] [--keep] [NEW_TREE]
#
# REV (default 6eefff6, the last commit before issue 8) is taken with
# `git archive` from the repository this script lives in, so neither its
# index nor its work tree changes. NEW_TREE (default: that repository's
# work tree) is built as it is on disk. Both are set up with meson
# -Dbuildtype=release in a temporary directory.
#
# bench-encode: both sides run the NEW tree's tests/bench/bench-encode.c,
# built for the old side with SSE_BENCH_BASELINE (public API only), so the
# two measure the same code paths; rows only the new side has (its private
# unchecked writer) have no old figure. If that source does not build
# against the old tree, the old tree's own bench-encode is used instead.
# bench-replay: each side runs its own (its API may change between them).
# --fanout: also tests/bench/fanout/run.sh (from NEW_TREE), sse-relay only,
# once per round and side, with the new side's load client for both (the
# old side's if the new one does not build); FANOUT_* variables pass
# through (FANOUT_TIERS, FANOUT_REGIMES, FANOUT_SCALE).
#
# The runs interleave, ABBA: round 1 runs old then new, round 2 new then
# old, and so on, so a drift of the machine's load or clock hits both
# sides alike. Each benchmark keeps its best of several runs inside one
# process; this script prints, per figure, the median over the rounds of
# each side, their ratio new/old, and the median of each round's own
# new/old ("paired", the steadier one under load). Higher is better for
# GB/s and deliveries per CPU-second, lower for microseconds. Shared
# machines are noisy: read a ratio within about 10% of 1 as "no change",
# and look at the memcpy rows, which no change of libsse can move, for how
# far noise alone goes. A second table sets the old size+encode (what
# sse_replay_publish did) beside the new size+unchecked (what it does with
# lib/encode.h).
#
# It reports and exits 0 unless a side cannot be built at all (exit 1);
# it asserts nothing about timing.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null) || {
	echo "compare-release: $here is not inside a git work tree" >&2
	exit 1
}

rounds=5
old_rev=6eefff6
fanout=0
keep=0
new_tree=$repo
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--old) old_rev=$2; shift 2 ;;
	--fanout) fanout=1; shift ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "compare-release: unknown option $1" >&2; exit 1 ;;
	*) new_tree=$(cd "$1" && pwd) || exit 1; shift ;;
	esac
done
if ! [ "$rounds" -ge 3 ] 2>/dev/null; then
	echo "compare-release: --rounds must be a number >= 3" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare-release.XXXXXX") || exit 1
cleanup() { [ "$keep" = 1 ] && echo "compare-release: kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM

log() { echo "compare-release: $*"; }

# ---- build

examples=false
[ "$fanout" = 1 ] && examples=true

# setup SRC BUILD [meson options...]: 0 when bench-encode and bench-replay built.
build_side() {
	local src=$1 bld=$2 targets
	shift 2
	meson setup "$bld" "$src" -Dbuildtype=release -Dtests=disabled -Dbenchmarks=true \
		-Dexamples=$examples "$@" > "$bld.log" 2>&1 || return 1
	targets=(tests/bench/bench-encode tests/bench/bench-replay)
	ninja -C "$bld" "${targets[@]}" >> "$bld.log" 2>&1 || return 1
	if [ "$fanout" = 1 ]; then
		ninja -C "$bld" examples/sse-relay >> "$bld.log" 2>&1 ||
			log "$(basename "$bld"): sse-relay did not build (see $bld.log)"
		ninja -C "$bld" tests/bench/fanout-loadclient tests/bench/fanout-rawbaseline \
			>> "$bld.log" 2>&1 ||
			log "$(basename "$bld"): the fan-out load client did not build"
	fi
	return 0
}

old_src=$tmp/old-src
mkdir -p "$old_src"
if ! git -C "$repo" archive "$old_rev" | tar -x -C "$old_src"; then
	echo "compare-release: cannot export $old_rev from $repo" >&2
	exit 1
fi
old_sha=$(git -C "$repo" rev-parse --short=12 "$old_rev^{commit}")

log "building old ($old_rev = $old_sha) and new ($new_tree) with -Dbuildtype=release"
enc_source="the new tree's bench-encode.c on both sides"
own_encode=$old_src/tests/bench/bench-encode.c.own
cp "$old_src/tests/bench/bench-encode.c" "$own_encode"
cp "$new_tree/tests/bench/bench-encode.c" "$old_src/tests/bench/bench-encode.c"
if ! build_side "$old_src" "$tmp/old" -Dc_args=-DSSE_BENCH_BASELINE; then
	log "the new bench-encode.c does not build against $old_rev; using its own"
	enc_source="each side's own bench-encode.c"
	cp "$own_encode" "$old_src/tests/bench/bench-encode.c"
	rm -rf "$tmp/old"
	if ! build_side "$old_src" "$tmp/old"; then
		echo "compare-release: the old tree does not build:" >&2
		tail -n 20 "$tmp/old.log" >&2
		exit 1
	fi
fi
if ! build_side "$new_tree" "$tmp/new"; then
	echo "compare-release: the new tree does not build:" >&2
	tail -n 20 "$tmp/new.log" >&2
	exit 1
fi

# ---- run

# Parse one bench-encode output into "bench-encode|case / api|GB/s|higher" lines.
parse_encode() {
	awk 'length($0) > 26 && substr($0, 1, 1) == "(" {
		name = substr($0, 1, 24); sub(/ +$/, "", name)
		split(substr($0, 26), f, " ")
		if (f[3] !~ /^[0-9.]+$/)
			next
		printf "bench-encode|%s  %s (GB/s)|%s|higher\n", name, f[1], f[3]
		if (f[1] == "encode")
			printf "bench-encode|%s  memcpy (GB/s)|%s|higher\n", name, f[4]
	}' "$1"
}

# bench-replay: every "  label  <number> us" line, under the first two
# words of the heading above it.
parse_replay() {
	awk '/^[a-z]/ { sec = $1 " " $2 }
	/^  [a-z].* [0-9.]+ us/ {
		label = $0; sub(/^  /, "", label); sub(/ +[0-9.]+ us.*/, "", label)
		for (i = 1; i <= NF; i++) if ($(i + 1) == "us") { v = $i; break }
		printf "bench-replay|%s: %s (us)|%s|lower\n", sec, label, v
	}' "$1"
}

# fanout table rows of sse-relay: deliveries per CPU-second and p99.
parse_fanout() {
	awk '$3 == "relay" && $1 ~ /^[0-9]+$/ && $4 ~ /^[0-9]+$/ {
		printf "fanout|%s subs %s: deliveries/CPU-s|%s|higher\n", $1, $2, $9
		printf "fanout|%s subs %s: p99 latency (us)|%s|lower\n", $1, $2, $12
	}' "$1"
}

fanout_client() { # the load client and raw baseline both sides use
	local d
	for d in "$tmp/new" "$tmp/old"; do
		if [ -x "$d/tests/bench/fanout-loadclient" ] && [ -x "$d/tests/bench/fanout-rawbaseline" ]; then
			echo "$d"
			return
		fi
	done
}

results=$tmp/results
: > "$results"
run_side() { # SIDE ROUND
	local side=$1 r=$2 out=$tmp/$1.$2 fc
	"$tmp/$side/tests/bench/bench-encode" > "$out.encode" 2>&1
	parse_encode "$out.encode" | sed "s/^/$side|$r|/" >> "$results"
	"$tmp/$side/tests/bench/bench-replay" > "$out.replay" 2>&1
	parse_replay "$out.replay" | sed "s/^/$side|$r|/" >> "$results"
	if [ "$fanout" = 1 ]; then
		fc=$(fanout_client)
		if [ -n "$fc" ] && [ -x "$tmp/$side/examples/sse-relay" ]; then
			FANOUT_SERVERS=relay FANOUT_REPEAT=1 FANOUT_NO_INSTALL=1 \
				bash "$new_tree/tests/bench/fanout/run.sh" \
				"$fc/tests/bench/fanout-loadclient" "$fc/tests/bench/fanout-rawbaseline" \
				"$tmp/$side/examples/sse-relay" > "$out.fanout" 2>&1
			parse_fanout "$out.fanout" | sed "s/^/$side|$r|/" >> "$results"
		fi
	fi
}

t0=$SECONDS
for r in $(seq "$rounds"); do
	if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
	for side in $order; do
		run_side "$side" "$r"
	done
	log "round $r of $rounds done ($order; $((SECONDS - t0)) s)"
done

# ---- report

echo
echo "old: $old_rev ($old_sha); new: $new_tree" \
	"($(git -C "$new_tree" describe --always --dirty 2>/dev/null || echo "not a git tree"))"
changed=$(git -C "$new_tree" status --short -- lib include tests/bench 2>/dev/null | tr '\n' ' ')
[ -n "$changed" ] && echo "new tree's uncommitted changes under lib, include, tests/bench: $changed"
echo "machine: $(uname -m), $(nproc) CPUs, $(cc --version | head -n 1);" \
	"load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "rounds: $rounds per side, interleaved ABBA; bench-encode: $enc_source"
echo
awk -F'|' '
	# side|round|benchmark|figure|value|higher or lower
	{ key = $3 "|" $4; dir[key] = $6; vals[$1, key] = vals[$1, key] " " $5; cnt[$1, key]++
	  at[$1, $2, key] = $5
	  if (!((1, key) in seen) && $1 == "new") { seen[1, key] = 1; order[++n] = key }
	  if (!((2, key) in seen) && $1 == "old") { seen[2, key] = 1; olds[++m] = key }
	  if ($2 > rounds) rounds = $2 }
	function median(s,    a, k, i, j, t) {
		k = split(s, a, " ")
		for (i = 2; i <= k; i++) {
			t = a[i] + 0
			for (j = i - 1; j >= 1 && a[j] + 0 > t; j--)
				a[j + 1] = a[j]
			a[j + 1] = t
		}
		if (k == 0) return ""
		return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	# The ratio of each round (its two runs were back to back), then their median.
	function paired(okey, nkey,    r, s) {
		s = ""
		for (r = 1; r <= rounds; r++)
			if ((("old", r, okey) in at) && (("new", r, nkey) in at) && at["old", r, okey] + 0 > 0)
				s = s " " at["new", r, nkey] / at["old", r, okey]
		s = median(s)
		return s == "" ? "-" : sprintf("%.2f", s)
	}
	function row(label, okey, nkey,    o, w, r, k) {
		split(nkey, k, "|")
		o = median(vals["old", okey]); w = median(vals["new", nkey])
		r = (o != "" && w != "" && o + 0 > 0) ? sprintf("%.2f", w / o) : "-"
		printf "%-12s %-50s %9s %9s %7s %7s  %s (n=%d/%d)\n", k[1], label, o == "" ? "-" : o, \
			w == "" ? "-" : w, r, paired(okey, nkey), dir[nkey], cnt["old", okey], cnt["new", nkey]
	}
	function header(title) {
		printf "%-12s %-50s %9s %9s %7s %7s  %s\n", "benchmark", title, "old", "new", "new/old", \
			"paired", "better"
	}
	END {
		for (i = 1; i <= m; i++) if (!((1, olds[i]) in seen)) order[++n] = olds[i]
		header("figure (the same code path on both sides)")
		for (i = 1; i <= n; i++) { split(order[i], k, "|"); row(k[2], order[i], order[i]) }
		# What publishing costs in the encoder: the old ring sized and then
		# encoded (two checks); the new one sizes and writes unchecked.
		hdr = 0
		for (i = 1; i <= n; i++) {
			if (order[i] !~ /size\+unchecked/) continue
			okey = order[i]; sub(/size\+unchecked/, "size+encode", okey)
			if (!hdr++) { print ""; header("publish: old size+encode, new size+unchecked") }
			split(order[i], k, "|"); label = k[2]; sub(/size\+unchecked/, "publish", label)
			row(label, okey, order[i])
		}
	}' "$results"
echo
echo "old, new: medians over the rounds of each side's best-of-N figure; new/old: their"
echo "ratio; paired: the median of each round's own new/old (its two runs ran back to back,"
echo "so it is the steadier one on a loaded machine). Above 1: a higher figure on the new"
echo "side, better for 'higher', worse for 'lower'."
exit 0
