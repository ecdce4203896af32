#!/bin/bash
# The batching window (sse-relay --batch MS), measured: 1 000 subscribers,
# 2 000 events of 128 B published one at a time, each as soon as the last
# was answered (the regime where the window matters: a publisher faster
# than a pass over every subscriber). For each window, deliveries per
# server CPU-second and latency (p50/p99, publish to arrival), then the
# ratio of each to the same figures with no window, from the same run.
# Windows run in turn, ROUNDS times over (ABAB...), so drift in the machine's
# load hits them alike; the table shows each window's best round.
#
#   windows.sh LOADCLIENT SSE-RELAY [WINDOW...]     (default: 0 1 2 5)
#
# Environment: WINDOWS_SUBS (1000), WINDOWS_EVENTS (2000), WINDOWS_ROUNDS (2).
# Reports and always exits 0.
#
# SPDX-License-Identifier: MIT
set -u
LC=${1:?usage: windows.sh LOADCLIENT SSE-RELAY [WINDOW...]}
RELAY=${2:?usage: windows.sh LOADCLIENT SSE-RELAY [WINDOW...]}
shift 2
windows=("$@")
[ ${#windows[@]} -gt 0 ] || windows=(0 1 2 5)
subs=${WINDOWS_SUBS:-1000}
events=${WINDOWS_EVENTS:-2000}
rounds=${WINDOWS_ROUNDS:-2}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
pin_server=() pin_client=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_server=(taskset -c 0) pin_client=(taskset -c 1)
fi
tmp=$(mktemp -d /tmp/windows.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

run_one() { # WINDOW -> one JSON line from the load client, or nothing
	local port=""
	"${pin_server[@]}" "$RELAY" --port 0 --heartbeat 0 --replay-events 1000 --batch "$1" \
		>"$tmp/out" 2>"$tmp/err" &
	pid=$!
	for _ in $(seq 50); do
		port=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\)/.*|\1|p' "$tmp/out")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] && timeout 170 "${pin_client[@]}" "$LC" --port "$port" --subs "$subs" \
		--events "$events" --rate 1000000 --burst 1 --size 128 --server-pid "$pid" \
		--label "window $1" 2>/dev/null | tail -n 1
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=""
}

for r in $(seq "$rounds"); do
	for w in "${windows[@]}"; do
		echo "$w $(run_one "$w")" >>"$tmp/runs"
	done
done

echo "windows: sse-relay --batch MS, $subs subscribers, $events events published one at a time"
python3 - "$tmp/runs" <<'PY'
import json, sys
best = {}
for line in open(sys.argv[1]):
    w, _, j = line.strip().partition(' ')
    try:
        d = json.loads(j)
    except ValueError:
        print(f"  window {w}: a run failed")
        continue
    ok = d["gaps"] == 0 and d["dups"] == 0 and d["reorders"] == 0 and d["deliveries"] == d["expected"]
    if not ok:
        print(f"  window {w}: LOST OR DUPLICATED events: {j}")
        continue
    if w not in best or d["deliveries_per_cpu_s"] > best[w]["deliveries_per_cpu_s"]:
        best[w] = d
if "0" not in best:
    print("  no run without a window: no ratios")
    sys.exit(0)
base = best["0"]
print(f"  {'window':>6} {'deliv/CPU-s':>12} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99 ratio':>9} {'events/read':>11}")
for w in sorted(best, key=int):
    d = best[w]
    print(f"  {w + ' ms':>6} {d['deliveries_per_cpu_s']:>12} {d['deliveries_per_cpu_s'] / base['deliveries_per_cpu_s']:>6.2f} "
          f"{d['p50_us'] / 1000:>7.1f} {d['p99_us'] / 1000:>7.1f} {d['p99_us'] / base['p99_us']:>9.2f} {d['events_per_read']:>11.1f}")
print("  ratio: against no window in the same run; every run checked: no event lost, duplicated or reordered")
PY
exit 0
