#!/usr/bin/env python3
# The fan-out benchmark's report (run.sh calls it): the table of every
# case, then the goals of the issue "Fan-out at the physical limit"
# (point 5), each with its ratio and met / NOT met.
#
#   report.py RESULTS.jsonl "TIERS" "LOADS" "SERVERS" REPEAT
#
# RESULTS holds one JSON line per run (loadclient's, label SERVER/N/LOAD).
# Per case, the table shows the run with the most deliveries per server
# CPU-second; the connect time of a server at a tier is the median over
# all its runs there (every run connects N subscribers afresh).
#
# SPDX-License-Identifier: MIT
import json
import statistics
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from goals import Goals  # noqa: E402 (tests/bench/goals.py)

path, tiers, loads, servers, repeat = sys.argv[1:6]
tiers = [int(t) for t in tiers.split()]
loads = loads.split()
servers = servers.split()

runs = {}
for line in open(path):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    srv, n, load = d["label"].split("/")
    runs.setdefault((srv, int(n), load), []).append(d)


def ok(d):
    return not d.get("failed") and d.get("deliveries", 0) > 0


def best(srv, n, load):
    good = [d for d in runs.get((srv, n, load), []) if ok(d)]
    return max(good, key=lambda d: d["deliveries_per_cpu_s"]) if good else None


def connect_s(srv, n):
    v = [d["connect_s"] for (s, t, _), ds in runs.items() if s == srv and t == n
         for d in ds if not d.get("failed") and d.get("never_ready", 1) == 0]
    return statistics.median(v) if v else None


print(f"Results, best of {repeat} run(s) by deliveries per server CPU-second (server CPU =")
print("utime+stime from the first publish to the last delivery, sys% the kernel's share of it;")
print("ev/read = deliveries per read() in the load client: how many events a send carried;")
print("mem/sub = growth of the server's Private_Dirty per idle subscriber, from N/2 to N")
print("subscribers (the marginal cost) and, in brackets, from 0 to N; conn_s = time to connect")
print("the N subscribers (this run); pubconn = publisher connections opened)")
print()
hdr = ("subs", "load", "srv", "ready", "deliver", "deliv/s", "srvCPU", "sys%", "deliv/CPUs",
       "ev/read", "p50_us", "p99_us", "gaps", "dups", "ord", "err", "mem/sub B", "cliCPU",
       "stall%", "conn_s", "pubconn")
fmt = ("{:<6} {:<9} {:<7} {:>6} {:>9} {:>9} {:>7} {:>4} {:>10} {:>7} {:>8} {:>8} {:>5} {:>4}"
       " {:>4} {:>4} {:>13} {:>6} {:>6} {:>6} {:>7}")
print(fmt.format(*hdr))
for n in tiers:
    for load in loads:
        for srv in servers:
            d = best(srv, n, load)
            if d is None:
                print(f"{n:<6} {load:<9} {srv:<7} FAILED (see above)")
                continue
            cpu = d["server_cpu_s"]
            print(fmt.format(
                n, load, srv, d["ready"], d["deliveries"], d["deliveries_per_s"], cpu,
                f"{100 * d['server_sys_s'] / cpu:.0f}" if cpu > 0 else "-",
                d["deliveries_per_cpu_s"], d["events_per_read"], d["p50_us"], d["p99_us"],
                d["gaps"], d["dups"], d["reorders"], d["errors"],
                f"{d['marginal_private_dirty_per_sub_b']} [{d['private_dirty_per_sub_b']}]",
                d["client_cpu_s"], d["cpu_pressure_pct"], d["connect_s"], d["pub_connects"]))

goals = Goals()
goal = goals.add


def val(srv, n, load, key):
    d = best(srv, n, load)
    return d[key] if d is not None else None


# Like with like: one loop thread against one worker, two against two
# (relay against nchan2 when relay2 was not run).
pairs = [(r, c) for r, c in (("relay", "nchan1"), ("relay2" if "relay2" in servers else "relay", "nchan2"))
         if r in servers and c in servers]
# 1. The default window against Nchan, deliveries per CPU-second, at 1 000.
for load in loads:
    for r, c in pairs:
        if 1000 in tiers:
            a, b = val(r, 1000, load, "deliveries_per_cpu_s"), val(c, 1000, load, "deliveries_per_cpu_s")
            goal(f"deliv/CPU-s {r}/{c}, 1000 subs, {load}", a, b, ">=", 3, f"{a} vs {b}")
# 2. The default window's p99 latency no worse than Nchan's, everywhere.
for n in tiers:
    for load in loads:
        for r, c in pairs:
            a, b = val(r, n, load, "p99_us"), val(c, n, load, "p99_us")
            goal(f"p99 {r}/{c}, {n} subs, {load}", a, b, "<=", 1, f"{a} vs {b} us")
# 3. No window against the raw baseline with the relay's socket options.
for n in tiers:
    for load in loads:
        if "relay0" in servers and "raw" in servers:
            a, b = val("relay0", n, load, "deliveries_per_cpu_s"), val("raw", n, load, "deliveries_per_cpu_s")
            goal(f"deliv/CPU-s relay0/raw, {n} subs, {load}", a, b, ">=", 0.9, f"{a} vs {b}")
# 4. Connecting 10 000 subscribers (the largest tier) no slower than Nchan.
big = max(tiers) if tiers else None
for r, c in pairs:
    if big is not None:
        a, b = connect_s(r, big), connect_s(c, big)
        goal(f"connect {big} subs {r}/{c} (median)", a, b, "<=", 1,
             f"{a:.3f} vs {b:.3f} s" if a is not None and b is not None else "")

print()
print("Goals (relay = sse-relay with its default 2 ms window, relay2 = the same on two loop")
print("threads, relay0 = --batch 0; raw = the raw baseline with the relay's socket options;")
print("ratios from the rows above):")
goals.print(46)
# For information: the baseline as it was, and connect times of all.
print()
print("Also (no goal):")
for n in tiers:
    for load in loads:
        if "relay0" in servers and "rawauto" in servers:
            a, b = val("relay0", n, load, "deliveries_per_cpu_s"), val("rawauto", n, load, "deliveries_per_cpu_s")
            if a and b:
                print(f"  deliv/CPU-s relay0/rawauto, {n} subs, {load}: {a / b:.2f}")
for n in tiers:
    parts = []
    for s in servers:
        c = connect_s(s, n)
        parts.append(f"{s} {c:.3f}" if c is not None else f"{s} n/a")
    print(f"  connect {n} subs, median s: " + ", ".join(parts))
for n in tiers:
    d = best("relay", n, loads[0]) if loads and "relay" in servers else None
    if d is not None and d["ready"]:
        m = d["marginal_private_dirty_per_sub_b"]
        print(f"  memory per idle subscriber, relay, {n} subs: {m} B N/2 to N,"
              f" {d['private_dirty_per_sub_b']} B 0 to N (goal <= 512: "
              f"{'met' if m <= 512 else 'NOT met'})")
bad = [(k, d) for k, ds in runs.items() if k[0].startswith("relay") for d in ds
       if ok(d) and d["gaps"] + d["dups"] + d["reorders"] + d["errors"] > 0]
seen = any(ok(d) for k, ds in runs.items() if k[0].startswith("relay") for d in ds)
if not seen:
    print("  relay gaps, duplicates, order errors, errors: n/a (no relay run completed)")
elif not bad:
    print("  relay gaps, duplicates, order errors, errors: none in any run (goal: zero: met)")
else:
    print("  relay gaps, duplicates, order errors or errors in: "
          + ", ".join(sorted({"/".join(map(str, k)) for k, _ in bad})) + " (goal: zero: NOT met)")
print()
print("Notes: per-event = one publish in flight, the next as soon as the last is answered:")
print("a publisher faster than a pass over every subscriber, so latency includes queueing;")
print("batch-2ms = the same publisher, subscribers that read every 2 ms (latency includes")
print("up to 2 ms of the client's sleep, for every server alike); steady-20 = 20 events/s.")
print("sse-relay and raw keep the publisher's connection alive (pubconn 1), rawauto opens")
print("one per publish, Nchan keeps its. mem/sub counts user space only (no kernel socket")
print("buffers); nginx allocates its connection array at start. cliCPU = the load client's")
print("CPU seconds; stall% = share of the run in which some task on the machine waited for")
print("a CPU: when it is high, latency figures are noise.")
