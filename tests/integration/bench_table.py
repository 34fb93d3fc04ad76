#!/usr/bin/env python3
"""bench/table: uffdgc-bench's table can be read without the source.

usage: bench_table.py UFFDGC_BENCH JSON_OUT

Runs gcbench and frag at --scale 1 on every backend with --compare bdw, then checks the
printed table against the --json results of the same run:
- a legend follows the table (every column named) with a pointer to docs/benchmarks.md;
- the "best per workload" table names, for every workload that ran, the row with the
  lowest max pause, wall time and RSS after GC, as the JSON has them;
- rows of backends uffdgc does not have yet say "not implemented yet", never "in this
  build"; rows a machine cannot run say why;
- when bdw rows were asked for, a line says why only gcbench and frag have them."""
import json
import re
import subprocess
import sys


def main():
    exe, json_out = sys.argv[1], sys.argv[2]
    run = subprocess.run([exe, "--workload", "gcbench,frag", "--backend", "all", "--compare",
                          "bdw", "--scale", "1", "--json", json_out],
                         capture_output=True, text=True, timeout=600)
    out = run.stdout
    problems = []
    if run.returncode != 0:
        sys.exit(f"FAIL: uffdgc-bench exited {run.returncode}:\n{out}\n{run.stderr}")
    rows = json.load(open(json_out))
    table = out[out.index("\nworkload "):]
    if "best per workload" not in table:
        sys.exit(f"FAIL: no 'best per workload' table after the results:\n{out}")

    # The legend: after the table's closing rule, before the winners.
    legend = table[table.rindex("-----\n") + 6:table.index("best per workload")]
    for column in ("wall s:", "gcs:", "pause:", "stall:", "unit p99:", "sys%:", "minflt k:",
                   "pk/live:", "RSS pk:",
                   "RSS aft GC:", "t/bdw", "docs/benchmarks.md"):
        if column not in legend:
            problems.append(f"the legend does not explain {column!r}")
    if "in this build" in out:
        problems.append("a row still says 'in this build'")
    for row in rows:
        reason = row.get("skipped")
        if reason is None:
            continue
        if row["backend"] in ("sigsegv", "minor", "move") and "not implemented yet" in reason:
            continue
        if row["backend"] == "bdw" and "libgc-dev" in reason:
            continue
        if reason.startswith("cannot run on this machine: ") and len(reason) > 28:
            continue
        problems.append(f"{row['workload']}/{row['backend']}: unclear skip reason {reason!r}")
    if not re.search(r"^bdw rows: only gcbench and frag have them", out, re.M):
        problems.append("no line says why only gcbench and frag have bdw rows")

    # The CPU, fault and memory columns hold the JSON's values of the same row.
    # Cells after workload and backend: wall s, gcs, pause p50, p99, max, stall50, stall99,
    # unit p99, sys%, minflt k, RSS pk, pk/live, RSS aft GC, then the bdw ratios.
    position = {"sys%": 8, "minflt k": 9, "pk/live": 11}
    for row in rows:
        if "skipped" in row or not row.get("ok"):
            continue
        line = re.search(rf"^{row['workload']} +{re.escape(row['backend'])} +(.*)$", table, re.M)
        if not line:
            problems.append(f"no table row for {row['workload']}/{row['backend']}")
            continue
        cells = line.group(1).split()
        expect = {"sys%": 100 * row["sys_cpu_share"], "minflt k": row["minor_faults"] / 1e3,
                  "pk/live": row["rss_peak_over_live"]}
        for name, value in expect.items():
            if name not in table.split("\n")[1]:
                problems.append(f"the table has no {name!r} column")
                continue
            cell = cells[position[name]] if len(cells) > position[name] else "?"
            shown = 0.0 if cell == "-" else float(cell) if re.fullmatch(r"[0-9.]+", cell) else None
            if shown is None or abs(shown - value) > 0.051 + 0.001 * value:
                problems.append(f"{row['workload']}/{row['backend']} {name}: table "
                                f"{cell}, JSON {value}")

    def label(row):
        return row["backend"]

    metrics = (("pause", lambda r: r["pause_us"]["max"] / 1e3 if r["pause_us"]["count"] else None),
               ("time", lambda r: r["wall_s"]),
               ("memory", lambda r: r["rss_after_gc_bytes"] / 1e6))
    best_section = out[out.index("best per workload"):]
    for workload in ("gcbench", "frag"):
        ran = [r for r in rows if r["workload"] == workload and "skipped" not in r]
        line = re.search(rf"^{workload} +(.*)$", best_section, re.M)
        if not ran:
            continue
        if not line:
            problems.append(f"no 'best per workload' line for {workload}")
            continue
        cells = re.findall(r"(\S+) ([0-9.]+) (?:ms|s|MB)", line.group(1))
        if len(cells) != 3:
            problems.append(f"{workload}: cannot read {line.group(0)!r}")
            continue
        for (name, value), (metric, get) in zip(cells, metrics):
            values = {label(r): get(r) for r in ran if get(r) is not None}
            lowest = min(values.values())
            if name not in values or values[name] > lowest * 1.01 + 0.01:
                problems.append(f"{workload} {metric}: table says {name} {value}, JSON has "
                                f"{values}")

    for p in problems:
        print("FAIL:", p)
    if problems:
        print(out)
        sys.exit(1)
    print("bench table readable:", best_section.strip())


main()
