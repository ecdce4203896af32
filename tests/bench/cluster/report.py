#!/usr/bin/env python3
# The cluster benchmark's report (run.sh calls it): the side-by-side table
# (sse-relay --redis against Nchan with Redis, K nodes each), the scale
# run's table (one load client per node, merged), then the goals of issue
# 10, point 6, each with its ratio and met / NOT met.
#
#   report.py RESULTS.jsonl "TIERS" "LOADS" "SIDES" "SCALE_SIDES" K SCALE_K REPEAT
#
# RESULTS holds one JSON line per load client run (loadclient's): labels
# SIDE/N/LOAD for the side-by-side part, scale-SIDE/N/steady-R/I for the
# scale run's client I (client 0 publishes and reads the CPU time of every
# node and Redis; each client reads its own node's memory).
#
# SPDX-License-Identifier: MIT
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from goals import Goals  # noqa: E402 (tests/bench/goals.py)

path, tiers, loads, sides, scale_sides, nodes, scale_nodes, repeat = sys.argv[1:9]
tiers = [int(t) for t in tiers.split()]
loads = loads.split()
sides = sides.split()
scale_sides = scale_sides.split()

runs = {}    # (side, n, load) -> [run]
scale = {}   # side -> {client: run}
for line in open(path):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    parts = d["label"].split("/")
    if parts[0].startswith("scale-"):
        scale.setdefault(parts[0][6:], {})[int(parts[3])] = d
    else:
        runs.setdefault((parts[0], int(parts[1]), parts[2]), []).append(d)


def ok(d):
    return d is not None and not d.get("failed") and d.get("deliveries", 0) > 0


def best(side, n, load):
    good = [d for d in runs.get((side, n, load), []) if ok(d)]
    return max(good, key=lambda d: d["deliveries_per_cpu_s"]) if good else None


# The load client's histogram: log-linear, 32 buckets per power of two.
def hist_value(i):
    if i < 64:
        return i
    shift = i // 32 - 1
    return ((i - 32 * shift) << shift) + ((1 << shift) >> 1)


def quantile(hist, q):
    total = sum(hist.values())
    if total == 0:
        return None
    target = max(1, int(q * total))
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= target:
            return hist_value(i) / 1e3
    return None


def redis_net(d):
    """Redis CPU per event, us, less what it spends idle (its cron, the
    nodes' pings: redis_idle_us_per_s, measured before the run)."""
    if d is None or "redis_cpu_s" not in d or not d.get("published"):
        return None
    idle = d.get("redis_idle_us_per_s", 0) * d["duration_s"] / 1e6
    return round(max(0.0, d["redis_cpu_s"] - idle) * 1e6 / d["published"], 1)


print(f"Side by side: {nodes} nodes each, one redis-server; best of {repeat} run(s) by deliveries")
print("per CPU-second. CPU = utime+stime of every node process and Redis together, from the")
print("first publish to the last delivery (sys% the kernel's share); redis = Redis's part;")
print("redis us/ev = Redis CPU per event published (net: less Redis's idle CPU over the run,")
print("measured for 2 s before it with the nodes connected); ev/read = deliveries per read() in the load")
print("client; mem/sub = growth of the nodes' Private_Dirty per idle subscriber, N/2 to N")
print("[0 to N], all nodes together over all subscribers (= per node over its own)")
print()
hdr = ("subs", "load", "side", "ready", "deliver", "deliv/s", "CPU_s", "sys%", "redis",
       "deliv/CPUs", "redis us/ev (net)", "p50_us", "p99_us", "gaps", "dups", "ord", "err",
       "ev/read", "mem/sub B", "stall%", "conn_s")
fmt = ("{:<6} {:<9} {:<6} {:>6} {:>8} {:>8} {:>6} {:>4} {:>6} {:>10} {:>17} {:>9} {:>9} {:>5}"
       " {:>4} {:>4} {:>4} {:>7} {:>13} {:>6} {:>6}")
print(fmt.format(*hdr))
for n in tiers:
    for load in loads:
        for side in sides:
            d = best(side, n, load)
            if d is None:
                print(f"{n:<6} {load:<9} {side:<6} FAILED (see above)")
                continue
            cpu = d["server_cpu_s"]
            print(fmt.format(
                n, load, side, d["ready"], d["deliveries"], d["deliveries_per_s"], cpu,
                f"{100 * d['server_sys_s'] / cpu:.0f}" if cpu > 0 else "-", d.get("redis_cpu_s", "-"),
                d["deliveries_per_cpu_s"],
                f"{d.get('redis_cpu_us_per_event', '-')} ({redis_net(d)})", d["p50_us"],
                d["p99_us"], d["gaps"], d["dups"], d["reorders"], d["errors"], d["events_per_read"],
                f"{d['marginal_private_dirty_per_sub_b']} [{d['private_dirty_per_sub_b']}]",
                d["cpu_pressure_pct"], d["connect_s"]))

# ---- the scale run

scale_res = {}  # side -> (worst mem/sub, p99, p50)
for side in scale_sides:
    cl = scale.get(side, {})
    print()
    pub = cl.get(0)
    if not ok(pub):
        print(f"Scale run, {side}: FAILED (see above)")
        continue
    k = len(cl)
    print(f"Scale run, {side}: {sum(d.get('subscribers', 0) for d in cl.values())} subscribers over"
          f" {scale_nodes} nodes, one load client per node; client 0 publishes {pub['events']}"
          f" events at {pub['rate']:.0f}/s to the nodes in turn (latency from when each was due)")
    print("mem/sub = growth of the node's Private_Dirty per idle subscriber, N/2 to N [0 to N];"
          " rss/sub = its RSS, 0 to N")
    sfmt = "{:<6} {:>6} {:>9} {:>9} {:>5} {:>4} {:>4} {:>4} {:>13} {:>8} {:>9} {:>9} {:>9}"
    print(sfmt.format("node", "ready", "deliver", "expected", "gaps", "dups", "ord", "err",
                      "mem/sub B", "rss/sub", "p50_us", "p99_us", "conn_s"))
    hist, worst, tot = {}, None, {"ready": 0, "deliveries": 0, "expected": 0, "gaps": 0,
                                  "dups": 0, "reorders": 0, "errors": 0}
    for i in sorted(cl):
        d = cl[i]
        if d.get("failed"):
            print(f"{i:<6} FAILED")
            continue
        print(sfmt.format(i, d["ready"], d["deliveries"], d["expected"], d["gaps"], d["dups"],
                          d["reorders"], d["errors"],
                          f"{d['marginal_private_dirty_per_sub_b']} [{d['private_dirty_per_sub_b']}]",
                          d["rss_per_sub_b"], d["p50_us"], d["p99_us"], d["connect_s"]))
        for key in tot:
            tot[key] += d[key]
        for b, c in d.get("hist", {}).items():
            hist[int(b)] = hist.get(int(b), 0) + c
        m = d["marginal_private_dirty_per_sub_b"]
        worst = m if worst is None or m > worst else worst
    p50, p99 = quantile(hist, 0.50), quantile(hist, 0.99)
    print(sfmt.format("all", tot["ready"], tot["deliveries"], tot["expected"], tot["gaps"],
                      tot["dups"], tot["reorders"], tot["errors"], f"max {worst}", "",
                      f"{p50:.1f}" if p50 is not None else "n/a",
                      f"{p99:.1f}" if p99 is not None else "n/a", ""))
    cpu = pub["server_cpu_s"]
    print(f"CPU from the first publish to client 0's last delivery: {cpu} s, nodes and Redis "
          f"({pub.get('redis_cpu_s', 0)} s Redis, {pub.get('redis_cpu_us_per_event', 0)} us per event;"
          f" {redis_net(pub)} net of idle; sys {100 * pub['server_sys_s'] / cpu:.0f}%)"
          if cpu > 0 else "CPU: n/a")
    if cpu > 0 and pub["duration_s"] > 0:
        print(f"  = {cpu / pub['duration_s']:.2f} CPU over {pub['duration_s']} s;"
              f" {tot['deliveries'] / cpu:.0f} deliveries per CPU-second (all clients' deliveries);"
              f" stall% {pub['cpu_pressure_pct']}")
    scale_res[side] = (worst, p99, p50)

# ---- goals

goals = Goals()
goal = goals.add


def val(side, n, load, key):
    d = best(side, n, load)
    return d.get(key) if d is not None else None


if "relay" in sides and "nchan" in sides:
    for n in tiers:
        for load in loads:
            a, b = val("relay", n, load, "deliveries_per_cpu_s"), val("nchan", n, load, "deliveries_per_cpu_s")
            goal(f"deliv/CPU-s relay/nchan, {n} subs, {load}", a, b, ">=", 2, f"{a} vs {b}")
    for n in tiers:
        for load in loads:
            a, b = val("relay", n, load, "p99_us"), val("nchan", n, load, "p99_us")
            goal(f"p99 relay/nchan, {n} subs, {load}", a, b, "<=", 1, f"{a} vs {b} us")
if "relay" in scale_res and scale_res["relay"][0] is not None:
    m = scale_res["relay"][0]
    goal(f"mem per idle sub per node, scale run (worst node)", m, 1024, "<=", 1, f"{m} B vs 1024 B")

print()
print("Goals (relay = sse-relay --redis, nchan = Nchan with nchan_redis_server; ratios from the")
print("rows above):")
goals.print(50)
print()
print("Also (no goal):")
for n in tiers:
    for load in loads:
        parts = []
        for side in sides:
            v = redis_net(best(side, n, load))
            parts.append(f"{side} {v}" if v is not None else f"{side} n/a")
        print(f"  Redis CPU per event (net of idle), {n} subs, {load}: " + ", ".join(parts) + " us")
for side, (m, p99, p50) in scale_res.items():
    print(f"  scale run, {side}: p50 {p50} us, p99 {p99} us over every subscriber;"
          f" worst node {m} B per idle subscriber")
bad = [k for k, ds in runs.items() if k[0] == "relay" for d in ds
       if ok(d) and d["gaps"] + d["dups"] + d["reorders"] + d["errors"] > 0]
bad += [f"scale/{i}" for i, d in scale.get("relay", {}).items()
        if ok(d) and d["gaps"] + d["dups"] + d["reorders"] + d["errors"] > 0]
print("  relay gaps, duplicates, order errors, errors: "
      + ("none in any run (goal: zero: met)" if not bad else
         "in " + ", ".join(sorted({"/".join(map(str, k)) if isinstance(k, tuple) else k
                                   for k in bad})) + " (NOT met)"))
print()
print("Notes: per-event = one publish in flight (answered once Redis has it), the next as soon")
print("as the last is answered; steady-20 = 20 events/s, latency from when each was due. Both")
print("sides publish to the nodes in turn and spread subscribers round-robin over them. mem/sub")
print("counts user space only (no kernel socket buffers); nginx allocates its connection array")
print("at start. stall% = share of the run in which some task waited for a CPU: when it is")
print("high, latency figures are noise.")
