#!/usr/bin/env python3
"""The pause-against-heap-size table of docs/benchmarks.md ("Pauses by heap size").

Runs uffdgc-bench once per heap size (every workload and backend of that size in one run,
so they share the machine's state) and prints, per (workload, backend, size): the longest
pause of any kind, the longest marking and compaction pauses, the stall p99 and maximum,
and for latency the unit p99 during a cycle (and apart: overlapping marking only, or a
compaction) and idle.

usage: tools/pause_table.py [--bench PATH] [--sizes 256M,1G,4G] [--backends copy,move]
                            [--workloads compact,frag,latency] [--threads 2] [--scale N]
                            [--json-dir DIR]
"""
import argparse
import json
import os
import subprocess
import sys


def us(dist, key="max"):
    return dist.get(key, 0.0) if dist else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default="build/tools/uffdgc-bench")
    ap.add_argument("--sizes", default="256M,1G,4G")
    ap.add_argument("--backends", default="copy,move")
    ap.add_argument("--workloads", default="compact,frag,latency")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--scale", default=None)
    ap.add_argument("--json-dir", default=".")
    args = ap.parse_args()
    rows = []
    for size in args.sizes.split(","):
        out = os.path.join(args.json_dir, "pause_table_%s.json" % size)
        cmd = [args.bench, "--workload", args.workloads, "--backend", args.backends,
               "--heap", size, "--threads", args.threads, "--json", out]
        if args.scale:
            cmd += ["--scale", args.scale]
        print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL)
        if done.returncode != 0 or not os.path.exists(out):
            print("pause_table: the bench failed at %s (exit %d)" % (size, done.returncode),
                  file=sys.stderr)
            return 1
        for r in json.load(open(out)):
            if not r.get("ok"):
                continue
            kinds = r.get("pause_kind_us", {})
            rows.append((r["workload"], r["backend"], size, us(r["pause_us"]),
                         us(kinds.get("mark")), us(kinds.get("compact")),
                         us(r.get("stall_us"), "p99"), us(r.get("stall_us")),
                         us(r.get("unit_during_cycle_us"), "p99"),
                         us(r.get("unit_marking_us"), "p99"),
                         us(r.get("unit_compacting_us"), "p99"), us(r.get("unit_idle_us"), "p99"),
                         r["wall_s"]))
    print("| workload | backend | heap | max pause ms | mark ms | compaction ms | stall p99 us "
          "| stall max ms | unit p99 during / marking / compacting / idle us | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (w, b, size, pause, mark, compact, s99, smax, during, marking, compacting, idle,
         wall) in sorted(rows, key=lambda r: (r[0], r[1])):
        units = "%.0f / %.0f / %.0f / %.0f" % (during, marking, compacting, idle) if idle else "-"
        print("| %s | %s | %s | %.2f | %.2f | %.2f | %.1f | %.2f | %s | %.1f |" % (
            w, b, size, pause / 1e3, mark / 1e3, compact / 1e3, s99, smax / 1e3, units, wall))
    return 0


if __name__ == "__main__":
    sys.exit(main())
